/*
 * kpki inspect: a kubeconfig, described into the document (every cluster, user and context;
 * embedded certificates described by inspect_cert.c; keys, tokens and passwords only as
 * present) and rendered as text. Private to the inspect command (cli/inspect.h).
 */
#include <jansson.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/inspect.h"
#include "core/core.h"
#include "crypto/crypto.h"

/* Most entries shown per kubeconfig list: YAML aliases can repeat one big entry many times
 * without making the file any larger. */
#define KUBECONFIG_LIST_MAX 256

static const char *yaml_text(struct kp_yaml_doc *yaml, int mapping, const char *key)
{
    const char *value = kp_yaml_scalar(yaml, kp_yaml_map_get(yaml, mapping, key));
    return value != NULL && value[0] != '\0' ? value : NULL;
}

static void put_yaml_text(struct inspect *in, json_t *object, const char *json_key,
                          struct kp_yaml_doc *yaml, int mapping, const char *yaml_key)
{
    const char *value = yaml_text(yaml, mapping, yaml_key);
    if (value != NULL) {
        inspect_put_text(in, object, json_key, value);
    }
}

/* The certificates of a base64 *-data field, each described. `what` names the field. */
static enum kp_result embedded_certs(struct inspect *in, const char *base64, const char *what,
                                     json_t **out, struct kp_error *err)
{
    *out = NULL;
    unsigned char *pem = NULL;
    size_t pem_len = 0;
    STACK_OF(X509) *certs = NULL;
    enum kp_result rc = kp_base64_decode(base64, strlen(base64), &pem, &pem_len, err);
    if (rc != KP_OK) {
        rc = kp_error_prefix(err, "%s", what);
    } else {
        rc = kp_certs_parse((const char *)pem, pem_len, what, &certs, err);
    }
    if (rc == KP_OK) {
        *out = json_array();
        for (int i = 0; i < sk_X509_num(certs); i++) {
            inspect_push(in, *out, inspect_cert_json(in, sk_X509_value(certs, i)));
        }
    }
    sk_X509_pop_free(certs, X509_free);
    free(pem);
    return rc;
}

static enum kp_result kubeconfig_cluster(struct inspect *in, struct kp_yaml_doc *yaml, int entry,
                                         json_t *object, struct kp_error *err)
{
    int cluster = kp_yaml_map_get(yaml, entry, "cluster");
    put_yaml_text(in, object, "server", yaml, cluster, "server");
    put_yaml_text(in, object, "tlsServerName", yaml, cluster, "tls-server-name");
    put_yaml_text(in, object, "proxyUrl", yaml, cluster, "proxy-url");
    const char *insecure = yaml_text(yaml, cluster, "insecure-skip-tls-verify");
    if (insecure != NULL && strcmp(insecure, "true") == 0) {
        inspect_put(in, object, "insecureSkipTlsVerify", json_true());
    }
    put_yaml_text(in, object, "certificateAuthority", yaml, cluster, "certificate-authority");
    const char *ca_data = yaml_text(yaml, cluster, "certificate-authority-data");
    if (ca_data == NULL) {
        return KP_OK;
    }
    char what[512];
    snprintf(what, sizeof(what), "%s: cluster '%s': certificate-authority-data", in->what,
             json_string_value(json_object_get(object, "name")));
    json_t *certs = NULL;
    enum kp_result rc = embedded_certs(in, ca_data, what, &certs, err);
    if (rc == KP_OK) {
        inspect_put(in, object, "certificateAuthorityData", certs);
    }
    return rc;
}

/* Whether client-key-data holds the key of the client certificate. The key is decoded only to
 * compare public keys, and cleansed; a key that does not parse is reported, never shown. */
static void client_key_check(struct inspect *in, const char *base64, json_t *certs,
                             json_t *key_object)
{
    unsigned char *pem = NULL;
    size_t pem_len = 0;
    EVP_PKEY *key = NULL;
    struct kp_error err;
    enum kp_result rc = kp_base64_decode(base64, strlen(base64), &pem, &pem_len, &err);
    if (rc == KP_OK) {
        rc = kp_key_from_pem((const char *)pem, pem_len, "client-key-data", &key, &err);
    }
    kp_secret_free(pem, pem_len);
    char pin[2 * 32 + 1];
    if (rc == KP_OK) {
        rc = kp_key_spki_sha256(key, pin, sizeof(pin), &err);
    }
    if (rc == KP_OK) {
        char description[128];
        kp_key_describe(key, description, sizeof(description));
        inspect_put_text(in, key_object, "key", description);
        const char *cert_pin =
            json_string_value(json_object_get(json_array_get(certs, 0), "publicKeySha256"));
        if (cert_pin != NULL) {
            inspect_put(in, key_object, "matchesCertificate",
                        json_boolean(strcmp(pin, cert_pin) == 0));
        }
    } else {
        /* Messages never carry key material (kpki/error.h). */
        inspect_put_text(in, key_object, "problem", err.message);
    }
    EVP_PKEY_free(key);
    ERR_clear_error();
}

static enum kp_result kubeconfig_user(struct inspect *in, struct kp_yaml_doc *yaml, int entry,
                                      json_t *object, struct kp_error *err)
{
    int user = kp_yaml_map_get(yaml, entry, "user");
    put_yaml_text(in, object, "clientCertificate", yaml, user, "client-certificate");
    const char *cert_data = yaml_text(yaml, user, "client-certificate-data");
    json_t *certs = NULL;
    if (cert_data != NULL) {
        char what[512];
        snprintf(what, sizeof(what), "%s: user '%s': client-certificate-data", in->what,
                 json_string_value(json_object_get(object, "name")));
        enum kp_result rc = embedded_certs(in, cert_data, what, &certs, err);
        if (rc != KP_OK) {
            return rc;
        }
        inspect_put(in, object, "clientCertificateData", certs);
    }
    put_yaml_text(in, object, "clientKey", yaml, user, "client-key");
    const char *key_data = yaml_text(yaml, user, "client-key-data");
    if (key_data != NULL) {
        json_t *key = json_object();
        inspect_put(in, key, "present", json_true());
        client_key_check(in, key_data, certs, key);
        inspect_put(in, object, "clientKeyData", key);
    }
    const char *token = yaml_text(yaml, user, "token");
    if (token != NULL) {
        json_t *summary = json_object();
        inspect_put(in, summary, "present", json_true());
        inspect_put(in, summary, "length", json_integer((json_int_t)strlen(token)));
        inspect_put(in, object, "token", summary);
    }
    put_yaml_text(in, object, "tokenFile", yaml, user, "tokenFile");
    put_yaml_text(in, object, "username", yaml, user, "username");
    if (yaml_text(yaml, user, "password") != NULL) {
        json_t *summary = json_object();
        inspect_put(in, summary, "present", json_true());
        inspect_put(in, object, "password", summary);
    }
    int exec = kp_yaml_map_get(yaml, user, "exec");
    if (exec != 0) {
        json_t *summary = json_object();
        put_yaml_text(in, summary, "command", yaml, exec, "command");
        put_yaml_text(in, summary, "apiVersion", yaml, exec, "apiVersion");
        inspect_put(in, object, "exec", summary);
    }
    int provider = kp_yaml_map_get(yaml, user, "auth-provider");
    if (provider != 0) {
        json_t *summary = json_object();
        put_yaml_text(in, summary, "name", yaml, provider, "name");
        inspect_put(in, object, "authProvider", summary);
    }
    return KP_OK;
}

/* Every entry of one of the kubeconfig's lists, described by describe_entry (NULL: contexts,
 * described here). */
static enum kp_result
kubeconfig_list(struct inspect *in, struct kp_yaml_doc *yaml, int root, const char *section,
                enum kp_result (*describe_entry)(struct inspect *, struct kp_yaml_doc *, int,
                                                 json_t *, struct kp_error *),
                json_t **out, struct kp_error *err)
{
    int list = kp_yaml_map_get(yaml, root, section);
    size_t count = kp_yaml_seq_len(yaml, list);
    *out = json_array();
    if (count > KUBECONFIG_LIST_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: more than %d %s", in->what,
                            KUBECONFIG_LIST_MAX, section);
    }
    for (size_t i = 0; i < count; i++) {
        int entry = kp_yaml_seq_item(yaml, list, i);
        json_t *object = json_object();
        const char *name = yaml_text(yaml, entry, "name");
        inspect_put_text(in, object, "name", name != NULL ? name : "");
        enum kp_result rc = KP_OK;
        if (describe_entry != NULL) {
            rc = describe_entry(in, yaml, entry, object, err);
        } else {
            int context = kp_yaml_map_get(yaml, entry, "context");
            put_yaml_text(in, object, "cluster", yaml, context, "cluster");
            put_yaml_text(in, object, "user", yaml, context, "user");
            put_yaml_text(in, object, "namespace", yaml, context, "namespace");
        }
        inspect_push(in, *out, object);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

/* True if list holds an entry named name. */
static bool has_named(json_t *list, const char *name)
{
    size_t index;
    json_t *entry;
    json_array_foreach(list, index, entry)
    {
        const char *entry_name = json_string_value(json_object_get(entry, "name"));
        if (name != NULL && entry_name != NULL && strcmp(entry_name, name) == 0) {
            return true;
        }
    }
    return false;
}

/* What kubectl would trip over: a current context, or a context's cluster or user, missing. */
static json_t *kubeconfig_warnings(struct inspect *in, json_t *object)
{
    json_t *warnings = json_array();
    json_t *contexts = json_object_get(object, "contexts");
    const char *current = json_string_value(json_object_get(object, "currentContext"));
    if (current == NULL) {
        inspect_push(in, warnings, json_string("no current-context"));
    } else if (!has_named(contexts, current)) {
        inspect_push(in, warnings,
                     json_sprintf("current-context '%s' is not in contexts", current));
    }
    size_t index;
    json_t *context;
    json_array_foreach(contexts, index, context)
    {
        const char *name = json_string_value(json_object_get(context, "name"));
        const char *cluster = json_string_value(json_object_get(context, "cluster"));
        const char *user = json_string_value(json_object_get(context, "user"));
        if (!has_named(json_object_get(object, "clusters"), cluster)) {
            inspect_push(in, warnings,
                         json_sprintf("context '%s' names cluster '%s', which is not in "
                                      "clusters",
                                      name, cluster != NULL ? cluster : ""));
        }
        if (user != NULL && !has_named(json_object_get(object, "users"), user)) {
            inspect_push(in, warnings,
                         json_sprintf("context '%s' names user '%s', which is not in "
                                      "users",
                                      name, user));
        }
    }
    return warnings;
}

/* yaml is a loaded document whose root is a mapping with clusters, users or contexts. */
enum kp_result inspect_describe_kubeconfig(struct inspect *in, struct kp_yaml_doc *yaml,
                                           json_t *doc, struct kp_error *err)
{
    int root = kp_yaml_root(yaml);
    json_t *object = json_object();
    inspect_put_text(in, object, "kind", "kubeconfig");
    put_yaml_text(in, object, "currentContext", yaml, root, "current-context");
    json_t *clusters = NULL;
    json_t *users = NULL;
    json_t *contexts = NULL;
    enum kp_result rc =
        kubeconfig_list(in, yaml, root, "clusters", kubeconfig_cluster, &clusters, err);
    if (rc == KP_OK) {
        rc = kubeconfig_list(in, yaml, root, "users", kubeconfig_user, &users, err);
    }
    if (rc == KP_OK) {
        rc = kubeconfig_list(in, yaml, root, "contexts", NULL, &contexts, err);
    }
    inspect_put(in, object, "clusters", clusters);
    inspect_put(in, object, "users", users);
    inspect_put(in, object, "contexts", contexts);
    if (rc != KP_OK) {
        json_decref(object);
        return rc;
    }
    json_t *warnings = kubeconfig_warnings(in, object);
    if (json_array_size(warnings) > 0) {
        inspect_put(in, object, "warnings", warnings);
    } else {
        json_decref(warnings);
    }
    json_t *objects = json_array();
    inspect_push(in, objects, object);
    inspect_put_text(in, doc, "format", "kubeconfig");
    inspect_put(in, doc, "objects", objects);
    return KP_OK;
}

/* ---- text output, rendered from the document ---- */

void inspect_print_kubeconfig(int indent, json_t *config)
{
    inspect_print_field(indent, "current context", config, "currentContext");
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(config, "clusters"), index, entry)
    {
        printf("%*scluster '", indent, "");
        inspect_print_value(json_object_get(entry, "name"));
        printf("'\n");
        inspect_print_field(indent + 2, "server", entry, "server");
        inspect_print_field(indent + 2, "TLS server name", entry, "tlsServerName");
        inspect_print_field(indent + 2, "proxy URL", entry, "proxyUrl");
        if (json_is_true(json_object_get(entry, "insecureSkipTlsVerify"))) {
            inspect_print_label(indent + 2, "warning");
            printf("insecure-skip-tls-verify: the server's certificate is not checked\n");
        }
        inspect_print_field(indent + 2, "CA file", entry, "certificateAuthority");
        size_t cert_index;
        json_t *cert;
        json_array_foreach(json_object_get(entry, "certificateAuthorityData"), cert_index, cert)
        {
            printf("%*sCA certificate %zu (embedded):\n", indent + 2, "", cert_index + 1);
            inspect_print_cert(indent + 4, cert);
        }
    }
    json_array_foreach(json_object_get(config, "users"), index, entry)
    {
        printf("%*suser '", indent, "");
        inspect_print_value(json_object_get(entry, "name"));
        printf("'\n");
        inspect_print_field(indent + 2, "client cert file", entry, "clientCertificate");
        size_t cert_index;
        json_t *cert;
        json_array_foreach(json_object_get(entry, "clientCertificateData"), cert_index, cert)
        {
            printf("%*sclient certificate%s (embedded):\n", indent + 2, "",
                   cert_index == 0 ? "" : " (chain)");
            inspect_print_cert(indent + 4, cert);
        }
        inspect_print_field(indent + 2, "client key file", entry, "clientKey");
        json_t *key = json_object_get(entry, "clientKeyData");
        if (key != NULL) {
            inspect_print_label(indent + 2, "client key");
            printf("present (not shown)");
            if (json_object_get(key, "key") != NULL) {
                printf(", %s", inspect_field_text(key, "key"));
            }
            json_t *matches = json_object_get(key, "matchesCertificate");
            if (matches != NULL) {
                printf(", %s the client certificate",
                       json_is_true(matches) ? "matches" : "DOES NOT match");
            }
            if (json_object_get(key, "problem") != NULL) {
                printf(", unusable: ");
                inspect_print_value(json_object_get(key, "problem"));
            }
            printf("\n");
        }
        json_t *token = json_object_get(entry, "token");
        if (token != NULL) {
            inspect_print_label(indent + 2, "token");
            printf("present (%lld characters)\n",
                   (long long)json_integer_value(json_object_get(token, "length")));
        }
        inspect_print_field(indent + 2, "token file", entry, "tokenFile");
        inspect_print_field(indent + 2, "username", entry, "username");
        if (json_object_get(entry, "password") != NULL) {
            inspect_print_label(indent + 2, "password");
            printf("present (not shown)\n");
        }
        inspect_print_field(indent + 2, "exec command", json_object_get(entry, "exec"), "command");
        inspect_print_field(indent + 2, "auth provider", json_object_get(entry, "authProvider"),
                            "name");
    }
    const char *current = inspect_field_text(config, "currentContext");
    json_array_foreach(json_object_get(config, "contexts"), index, entry)
    {
        const char *name = inspect_field_text(entry, "name");
        printf("%*scontext '", indent, "");
        inspect_print_value(json_object_get(entry, "name"));
        printf("'%s\n", current != NULL && strcmp(name, current) == 0 ? " (current)" : "");
        inspect_print_field(indent + 2, "cluster", entry, "cluster");
        inspect_print_field(indent + 2, "user", entry, "user");
        inspect_print_field(indent + 2, "namespace", entry, "namespace");
    }
    inspect_print_warnings(indent, config);
}
