/*
 * Kubeconfig files in the shape client-go's clientcmd writes (keys sorted as Go's YAML
 * marshalling sorts struct fields by their JSON names), through libyaml so values are always
 * quoted correctly.
 */
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"

void kp_kubeconfig_wipe(struct kp_kubeconfig *kubeconfig)
{
    free(kubeconfig->cluster_name);
    free(kubeconfig->server);
    free(kubeconfig->ca_data);
    free(kubeconfig->ca_file);
    free(kubeconfig->user_name);
    free(kubeconfig->cert_data);
    free(kubeconfig->cert_file);
    kp_secret_free(kubeconfig->key_data, kubeconfig->key_len);
    free(kubeconfig->key_file);
    if (kubeconfig->token != NULL) {
        kp_secret_free(kubeconfig->token, strlen(kubeconfig->token));
    }
    free(kubeconfig->context_name);
    memset(kubeconfig, 0, sizeof(*kubeconfig));
}

static void pair(struct kp_yaml_writer *writer, const char *key, const char *value)
{
    if (value != NULL) {
        kp_yaml_writer_scalar(writer, key);
        kp_yaml_writer_scalar(writer, value);
    }
}

/* Writes key: base64(data) if data is set. */
static enum kp_result data_pair(struct kp_yaml_writer *writer, const char *key,
                                const unsigned char *data, size_t len, struct kp_error *err)
{
    if (data == NULL) {
        return KP_OK;
    }
    char *encoded = NULL;
    size_t encoded_len = 0;
    enum kp_result rc = kp_base64_encode(data, len, &encoded, &encoded_len, err);
    if (rc == KP_OK) {
        pair(writer, key, encoded);
        kp_secret_free(encoded, encoded_len);
    }
    return rc;
}

/* Where the private key goes in the rendered text: libyaml's emitter never sees the key (its
 * buffers are not cleansed), the marker is replaced in kpki's own buffer, which is. */
#define KEY_MARKER "KPKI-CLIENT-KEY-DATA"

/* Copies text with KEY_MARKER replaced by base64(key) into a fresh buffer. */
static enum kp_result splice_key(const char *text, size_t text_len, const unsigned char *key,
                                 size_t key_len, char **out, size_t *out_len,
                                 struct kp_error *err)
{
    const char *mark = strstr(text, KEY_MARKER);
    if (mark == NULL) {
        return kp_error_set(err, KP_ERR_INTERNAL, "kubeconfig key marker lost");
    }
    char *encoded = NULL;
    size_t encoded_len = 0;
    enum kp_result rc = kp_base64_encode(key, key_len, &encoded, &encoded_len, err);
    if (rc != KP_OK) {
        return rc;
    }
    size_t before = (size_t)(mark - text);
    size_t after = text_len - before - strlen(KEY_MARKER);
    char *joined = malloc(before + encoded_len + after + 1);
    if (joined == NULL) {
        kp_secret_free(encoded, encoded_len);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    memcpy(joined, text, before);
    memcpy(joined + before, encoded, encoded_len);
    memcpy(joined + before + encoded_len, mark + strlen(KEY_MARKER), after);
    joined[before + encoded_len + after] = '\0';
    kp_secret_free(encoded, encoded_len);
    *out = joined;
    *out_len = before + encoded_len + after;
    return KP_OK;
}

enum kp_result kp_kubeconfig_render(const struct kp_kubeconfig *kubeconfig, char **out,
                                    size_t *len, struct kp_error *err)
{
    struct kp_yaml_writer writer;
    enum kp_result rc = kp_yaml_writer_init(&writer, err);
    if (rc != KP_OK) {
        return rc;
    }
    kp_yaml_writer_map_start(&writer);
    pair(&writer, "apiVersion", "v1");

    kp_yaml_writer_scalar(&writer, "clusters");
    kp_yaml_writer_seq_start(&writer);
    kp_yaml_writer_map_start(&writer);
    kp_yaml_writer_scalar(&writer, "cluster");
    kp_yaml_writer_map_start(&writer);
    pair(&writer, "certificate-authority", kubeconfig->ca_file);
    rc = data_pair(&writer, "certificate-authority-data", kubeconfig->ca_data, kubeconfig->ca_len,
                   err);
    pair(&writer, "server", kubeconfig->server);
    kp_yaml_writer_map_end(&writer);
    pair(&writer, "name", kubeconfig->cluster_name);
    kp_yaml_writer_map_end(&writer);
    kp_yaml_writer_seq_end(&writer);

    kp_yaml_writer_scalar(&writer, "contexts");
    kp_yaml_writer_seq_start(&writer);
    kp_yaml_writer_map_start(&writer);
    kp_yaml_writer_scalar(&writer, "context");
    kp_yaml_writer_map_start(&writer);
    pair(&writer, "cluster", kubeconfig->cluster_name);
    pair(&writer, "user", kubeconfig->user_name);
    kp_yaml_writer_map_end(&writer);
    pair(&writer, "name", kubeconfig->context_name);
    kp_yaml_writer_map_end(&writer);
    kp_yaml_writer_seq_end(&writer);

    pair(&writer, "current-context", kubeconfig->context_name);
    pair(&writer, "kind", "Config");
    kp_yaml_writer_scalar(&writer, "preferences");
    kp_yaml_writer_empty_map(&writer);

    kp_yaml_writer_scalar(&writer, "users");
    kp_yaml_writer_seq_start(&writer);
    kp_yaml_writer_map_start(&writer);
    pair(&writer, "name", kubeconfig->user_name);
    kp_yaml_writer_scalar(&writer, "user");
    kp_yaml_writer_map_start(&writer);
    pair(&writer, "client-certificate", kubeconfig->cert_file);
    if (rc == KP_OK) {
        rc = data_pair(&writer, "client-certificate-data", kubeconfig->cert_data,
                       kubeconfig->cert_len, err);
    }
    pair(&writer, "client-key", kubeconfig->key_file);
    if (kubeconfig->key_data != NULL) {
        /* The key never passes through libyaml (whose buffers are freed uncleansed): a
         * marker is emitted and replaced in kpki's own buffer below. base64 needs no
         * quoting, so the substitution cannot change the YAML's structure. */
        pair(&writer, "client-key-data", KEY_MARKER);
    }
    pair(&writer, "token", kubeconfig->token);
    kp_yaml_writer_map_end(&writer);
    kp_yaml_writer_map_end(&writer);
    kp_yaml_writer_seq_end(&writer);
    kp_yaml_writer_map_end(&writer);
    if (rc != KP_OK) {
        kp_yaml_writer_wipe(&writer);
        return rc;
    }
    char *text = NULL;
    size_t text_len = 0;
    rc = kp_yaml_writer_finish(&writer, &text, &text_len, err);
    if (rc != KP_OK || kubeconfig->key_data == NULL) {
        *out = text;
        *len = text_len;
        return rc;
    }
    rc = splice_key(text, text_len, kubeconfig->key_data, kubeconfig->key_len, out, len, err);
    free(text); /* holds only the marker */
    return rc;
}

/* ---- parsing ---- */

/* The entry of list `section` whose name is `name`, returning its `field` mapping (0 if none). */
static int find_named(struct kp_yaml_doc *doc, int root, const char *section, const char *name,
                      const char *field)
{
    int list = kp_yaml_map_get(doc, root, section);
    for (size_t i = 0; i < kp_yaml_seq_len(doc, list); i++) {
        int entry = kp_yaml_seq_item(doc, list, i);
        const char *entry_name = kp_yaml_scalar(doc, kp_yaml_map_get(doc, entry, "name"));
        if (entry_name != NULL && strcmp(entry_name, name) == 0) {
            return kp_yaml_map_get(doc, entry, field);
        }
    }
    return 0;
}

static enum kp_result copy_scalar(struct kp_yaml_doc *doc, int mapping, const char *key,
                                  char **out, struct kp_error *err)
{
    const char *value = kp_yaml_scalar(doc, kp_yaml_map_get(doc, mapping, key));
    if (value == NULL || value[0] == '\0') {
        return KP_OK;
    }
    *out = strdup(value);
    return *out != NULL ? KP_OK : kp_error_set(err, KP_ERR_IO, "out of memory");
}

static enum kp_result decode_field(struct kp_yaml_doc *doc, int mapping, const char *key,
                                   const char *source, unsigned char **out, size_t *len,
                                   struct kp_error *err)
{
    int node = kp_yaml_map_get(doc, mapping, key);
    const char *value = kp_yaml_scalar(doc, node);
    if (value == NULL || value[0] == '\0') {
        return KP_OK;
    }
    enum kp_result rc = kp_base64_decode(value, strlen(value), out, len, err);
    if (rc != KP_OK) {
        return kp_error_prefix(err, "%s: line %d: %s", source, kp_yaml_line(doc, node), key);
    }
    return KP_OK;
}

/* The nodes current-context leads to (0 where something is missing). */
struct current {
    const char *context;
    const char *cluster;
    const char *user;
    int context_node;
    int cluster_node;
    int user_node;
};

static void find_current(struct kp_yaml_doc *doc, struct current *current)
{
    int root = kp_yaml_root(doc);
    memset(current, 0, sizeof(*current));
    current->context = kp_yaml_scalar(doc, kp_yaml_map_get(doc, root, "current-context"));
    if (current->context != NULL) {
        current->context_node = find_named(doc, root, "contexts", current->context, "context");
    }
    current->cluster = kp_yaml_scalar(doc, kp_yaml_map_get(doc, current->context_node, "cluster"));
    current->user = kp_yaml_scalar(doc, kp_yaml_map_get(doc, current->context_node, "user"));
    if (current->cluster != NULL) {
        current->cluster_node = find_named(doc, root, "clusters", current->cluster, "cluster");
    }
    if (current->user != NULL) {
        current->user_node = find_named(doc, root, "users", current->user, "user");
    }
}

enum kp_result kp_kubeconfig_parse(const char *text, size_t len, const char *source,
                                   struct kp_kubeconfig *kubeconfig, struct kp_error *err)
{
    memset(kubeconfig, 0, sizeof(*kubeconfig));
    struct kp_yaml_doc doc;
    enum kp_result rc = kp_yaml_load(&doc, text, len, source, err);
    if (rc != KP_OK) {
        return rc;
    }
    struct current current;
    find_current(&doc, &current);
    const char *context = current.context, *cluster = current.cluster, *user = current.user;
    int context_node = current.context_node, cluster_node = current.cluster_node,
        user_node = current.user_node;
    if (context == NULL || context[0] == '\0') {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: no current-context", source);
    } else if (context_node == 0) {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: current-context '%s' is not in contexts",
                          source, context);
    } else if (cluster_node == 0) {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: context '%s' names cluster '%s', which is "
                          "not in clusters", source, context, cluster != NULL ? cluster : "");
    } else if (user_node == 0) {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: context '%s' names user '%s', which is not "
                          "in users", source, context, user != NULL ? user : "");
    }
    if (rc == KP_OK) {
        kubeconfig->context_name = strdup(context);
        kubeconfig->cluster_name = strdup(cluster);
        kubeconfig->user_name = strdup(user);
        if (kubeconfig->context_name == NULL || kubeconfig->cluster_name == NULL ||
            kubeconfig->user_name == NULL) {
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        }
    }
    if (rc == KP_OK) {
        rc = copy_scalar(&doc, cluster_node, "server", &kubeconfig->server, err);
    }
    if (rc == KP_OK) {
        rc = copy_scalar(&doc, cluster_node, "certificate-authority", &kubeconfig->ca_file, err);
    }
    if (rc == KP_OK) {
        rc = decode_field(&doc, cluster_node, "certificate-authority-data", source,
                          &kubeconfig->ca_data, &kubeconfig->ca_len, err);
    }
    if (rc == KP_OK) {
        rc = copy_scalar(&doc, user_node, "client-certificate", &kubeconfig->cert_file, err);
    }
    if (rc == KP_OK) {
        rc = decode_field(&doc, user_node, "client-certificate-data", source,
                          &kubeconfig->cert_data, &kubeconfig->cert_len, err);
    }
    if (rc == KP_OK) {
        rc = copy_scalar(&doc, user_node, "client-key", &kubeconfig->key_file, err);
    }
    if (rc == KP_OK) {
        rc = decode_field(&doc, user_node, "client-key-data", source, &kubeconfig->key_data,
                          &kubeconfig->key_len, err);
    }
    if (rc == KP_OK) {
        rc = copy_scalar(&doc, user_node, "token", &kubeconfig->token, err);
    }
    kp_yaml_free(&doc);
    if (rc != KP_OK) {
        kp_kubeconfig_wipe(kubeconfig);
    }
    return rc;
}

/* ---- replacing credentials in place ---- */

struct replacement {
    int user;    /* the mapping holding client-certificate-data */
    int cluster; /* the mapping holding certificate-authority-data */
    const char *cert_b64;
    const char *ca_b64;
};

static const char *replace_value(void *context, int mapping, const char *key)
{
    const struct replacement *r = context;
    if (mapping == r->user && strcmp(key, "client-certificate-data") == 0) {
        return r->cert_b64;
    }
    if (mapping == r->user && strcmp(key, "client-key-data") == 0) {
        return KEY_MARKER;
    }
    if (mapping == r->cluster && r->ca_b64 != NULL &&
        strcmp(key, "certificate-authority-data") == 0) {
        return r->ca_b64;
    }
    return NULL;
}

enum kp_result kp_kubeconfig_replace_credentials(const char *text, size_t len, const char *source,
                                                 const char *cert_pem, size_t cert_len,
                                                 const char *key_pem, size_t key_len,
                                                 const char *ca_pem, size_t ca_len, char **out,
                                                 size_t *out_len, struct kp_error *err)
{
    *out = NULL;
    *out_len = 0;
    struct kp_yaml_doc doc;
    enum kp_result rc = kp_yaml_load(&doc, text, len, source, err);
    if (rc != KP_OK) {
        return rc;
    }
    struct current current;
    find_current(&doc, &current);
    struct replacement r = {.user = current.user_node, .cluster = current.cluster_node};
    char *cert_b64 = NULL, *ca_b64 = NULL, *rewritten = NULL;
    size_t cert_b64_len = 0, ca_b64_len = 0, rewritten_len = 0;
    if (r.user == 0 || kp_yaml_map_get(&doc, r.user, "client-certificate-data") == 0 ||
        kp_yaml_map_get(&doc, r.user, "client-key-data") == 0) {
        /* kubeadm: renewal needs an embedded certificate. */
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: the current context's user has no embedded "
                          "client-certificate-data and client-key-data to renew", source);
    }
    if (rc == KP_OK) {
        rc = kp_base64_encode(cert_pem, cert_len, &cert_b64, &cert_b64_len, err);
    }
    if (rc == KP_OK && ca_pem != NULL) {
        rc = kp_base64_encode(ca_pem, ca_len, &ca_b64, &ca_b64_len, err);
    }
    r.cert_b64 = cert_b64;
    r.ca_b64 = ca_b64;
    if (rc == KP_OK) {
        rc = kp_yaml_rewrite(&doc, replace_value, &r, &rewritten, &rewritten_len, err);
    }
    if (rc == KP_OK) {
        rc = splice_key(rewritten, rewritten_len, (const unsigned char *)key_pem, key_len, out,
                        out_len, err);
    }
    /* Other users of the file may carry keys of their own: cleanse the intermediate text. */
    kp_secret_free(rewritten, rewritten_len);
    free(cert_b64);
    free(ca_b64);
    kp_yaml_free(&doc);
    return rc;
}
