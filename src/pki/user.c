/*
 * kpki kubeconfig user: a kubeconfig for a new user, signed by the cluster CA on disk
 * (kubeadm's `kubeconfig user`, cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go).
 */
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"

#define BACKDATE_SECONDS (5 * 60)

/* A user or group name: non-empty UTF-8 without control characters (kube-apiserver takes the
 * CN and O values as they are). */
static enum kp_result check_name(const char *what, const char *value, struct kp_error *err)
{
    size_t len = strlen(value);
    bool ok = len > 0 && len <= 253 && kp_utf8_valid(value);
    for (size_t i = 0; ok && i < len; i++) {
        ok = (unsigned char)value[i] >= 0x20 && value[i] != 0x7f;
    }
    return ok ? KP_OK
              : kp_error_set(err, KP_ERR_INVALID, "invalid %s '%s': 1 to 253 characters of "
                             "UTF-8, no control characters", what, value);
}

static enum kp_result load_cluster_ca(const struct kp_pki_config *config, X509 **ca,
                                      EVP_PKEY **key, struct kp_error *err)
{
    struct kp_cert_request request;
    struct kp_existing_pair pair = {0};
    enum kp_result rc = kp_cert_resolve(kp_cert_spec_find("ca"), config, config->key_type,
                                        &request, err);
    if (rc == KP_OK) {
        rc = kp_existing_pair_load(request.cert_path, request.key_path, &pair, err);
    }
    if (rc == KP_OK && !pair.cert_present) {
        rc = kp_error_set(err, KP_ERR_NOT_FOUND, "the cluster CA '%s' is missing",
                          request.cert_path);
    } else if (rc == KP_OK && !pair.key_present) {
        rc = kp_error_set(err, KP_ERR_FORBIDDEN, "the cluster CA key '%s' is not on this node "
                          "(an external CA signs user certificates itself)", request.key_path);
    }
    if (rc == KP_OK) {
        *ca = sk_X509_shift(pair.certs);
        *key = pair.key;
        pair.key = NULL;
    }
    kp_existing_pair_wipe(&pair);
    kp_cert_request_wipe(&request);
    return rc;
}

enum kp_result kp_pki_kubeconfig_user(const struct kp_pki_config *config,
                                      const struct kp_clock *clock, const char *user,
                                      const struct kp_strlist *orgs, int64_t validity,
                                      const char *server, char **yaml, size_t *len,
                                      struct kp_error *err)
{
    *yaml = NULL;
    *len = 0;
    enum kp_result rc = check_name("user name", user, err);
    for (size_t i = 0; rc == KP_OK && i < orgs->count; i++) {
        rc = check_name("organization", orgs->items[i], err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    char *ca_pem = NULL, *cert_pem = NULL, *key_pem = NULL;
    size_t ca_len = 0, cert_len = 0, key_len = 0;
    rc = load_cluster_ca(config, &ca, &ca_key, err);
    if (rc == KP_OK) {
        rc = kp_key_generate(config->key_type, &key, err);
    }
    if (rc == KP_OK) {
        int64_t now = kp_clock_now(clock);
        int64_t not_after = now + validity;
        int64_t ca_not_after = kp_cert_not_after(ca);
        struct kp_cert_template tmpl = {
            .common_name = user,
            .organizations = (const char *const *)orgs->items,
            .organization_count = orgs->count,
            .key_usage = KP_KU_DIGITAL_SIGNATURE | KP_KU_KEY_ENCIPHERMENT,
            .ext_key_usage = KP_EKU_CLIENT_AUTH,
            .not_before = now - BACKDATE_SECONDS,
            .not_after = not_after < ca_not_after ? not_after : ca_not_after,
        };
        rc = tmpl.not_after > now ? kp_cert_issue(&tmpl, key, ca, ca_key, &cert, err)
                                  : kp_error_set(err, KP_ERR_CONFLICT, "the cluster CA has "
                                                 "expired");
    }
    if (rc == KP_OK) {
        rc = kp_cert_to_pem(ca, &ca_pem, &ca_len, err);
    }
    if (rc == KP_OK) {
        rc = kp_cert_to_pem(cert, &cert_pem, &cert_len, err);
    }
    if (rc == KP_OK) {
        rc = kp_key_to_pem(key, &key_pem, &key_len, err);
    }
    char context[600];
    snprintf(context, sizeof(context), "%s@%s", user, config->cluster_name);
    if (rc == KP_OK) {
        struct kp_kubeconfig kubeconfig = {
            .cluster_name = config->cluster_name,
            .server = (char *)(server != NULL ? server : config->endpoint_url),
            .ca_data = (unsigned char *)ca_pem,
            .ca_len = ca_len,
            .user_name = (char *)user,
            .cert_data = (unsigned char *)cert_pem,
            .cert_len = cert_len,
            .key_data = (unsigned char *)key_pem,
            .key_len = key_len,
            .context_name = context,
        };
        rc = kp_kubeconfig_render(&kubeconfig, yaml, len, err);
    }
    free(ca_pem);
    free(cert_pem);
    kp_secret_free(key_pem, key_len);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- bootstrap kubeconfigs ---- */

enum kp_result kp_pki_kubeconfig_bootstrap(const struct kp_pki_config *config, const char *token,
                                           const char *server, char **yaml, size_t *len,
                                           struct kp_error *err)
{
    *yaml = NULL;
    *len = 0;
    /* [a-z0-9]{6}.[a-z0-9]{16}: checked here too, so a typo is not written into a file. */
    bool ok = token != NULL && strlen(token) == 23 && token[6] == '.';
    for (size_t i = 0; ok && i < 23; i++) {
        char c = token[i];
        ok = i == 6 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    }
    if (!ok) {
        return kp_error_set(err, KP_ERR_INVALID, "the bootstrap token must have the form "
                            "[a-z0-9]{6}.[a-z0-9]{16}");
    }
    struct kp_cert_request request;
    enum kp_result rc = kp_cert_resolve(kp_cert_spec_find("ca"), config, config->key_type,
                                        &request, err);
    char *ca_pem = NULL;
    size_t ca_len = 0;
    if (rc == KP_OK) {
        rc = kp_file_read(request.cert_path, 1024 * 1024, &ca_pem, &ca_len, err);
    }
    if (rc == KP_OK) {
        X509 *ca = NULL;
        rc = kp_cert_from_pem(ca_pem, ca_len, request.cert_path, &ca, err);
        X509_free(ca);
    }
    char context[300];
    snprintf(context, sizeof(context), "tls-bootstrap-token-user@%s", config->cluster_name);
    if (rc == KP_OK) {
        struct kp_kubeconfig kubeconfig = {
            .cluster_name = config->cluster_name,
            .server = (char *)(server != NULL ? server : config->endpoint_url),
            .ca_data = (unsigned char *)ca_pem,
            .ca_len = ca_len,
            .user_name = "tls-bootstrap-token-user",
            .token = (char *)token,
            .context_name = context,
        };
        rc = kp_kubeconfig_render(&kubeconfig, yaml, len, err);
    }
    free(ca_pem);
    kp_cert_request_wipe(&request);
    return rc;
}

/* ---- credentials for clients ---- */

void kp_kubeconfig_credentials_wipe(struct kp_kubeconfig_credentials *c)
{
    free(c->server);
    free(c->ca_pem);
    free(c->cert_pem);
    kp_secret_free(c->key_pem, c->key_len);
    if (c->token != NULL) {
        kp_secret_free(c->token, strlen(c->token));
    }
    memset(c, 0, sizeof(*c));
}

/* Embedded data, or the file (relative to dir when not absolute). */
static enum kp_result credential_part(const char *dir, const unsigned char *data, size_t data_len,
                                      const char *file, char **out, size_t *out_len,
                                      struct kp_error *err)
{
    if (data != NULL) {
        *out = malloc(data_len + 1);
        if (*out == NULL) {
            return kp_error_set(err, KP_ERR_IO, "out of memory");
        }
        memcpy(*out, data, data_len);
        (*out)[data_len] = '\0';
        *out_len = data_len;
        return KP_OK;
    }
    if (file == NULL) {
        return KP_OK;
    }
    char path[KP_PATH_MAX];
    enum kp_result rc = KP_OK;
    if (file[0] == '/') {
        snprintf(path, sizeof(path), "%s", file);
    } else {
        rc = kp_path_join(path, sizeof(path), dir, file, err);
    }
    if (rc == KP_OK) {
        rc = kp_file_read(path, 4 * 1024 * 1024, out, out_len, err);
    }
    return rc;
}

enum kp_result kp_kubeconfig_credentials_load(const char *path,
                                              struct kp_kubeconfig_credentials *out,
                                              struct kp_error *err)
{
    memset(out, 0, sizeof(*out));
    char *text = NULL;
    size_t len = 0;
    struct kp_kubeconfig kc = {0};
    char dir[KP_PATH_MAX];
    enum kp_result rc = kp_file_read(path, 4 * 1024 * 1024, &text, &len, err);
    if (rc == KP_OK) {
        rc = kp_kubeconfig_parse(text, len, path, &kc, err);
    }
    if (rc == KP_OK) {
        rc = kp_path_dirname(dir, sizeof(dir), path, err);
    }
    if (rc == KP_OK && kc.server == NULL) {
        rc = kp_error_set(err, KP_ERR_INVALID, "kubeconfig '%s' names no server", path);
    }
    if (rc == KP_OK) {
        out->server = strdup(kc.server);
        out->token = kc.token != NULL ? strdup(kc.token) : NULL;
        if (out->server == NULL || (kc.token != NULL && out->token == NULL)) {
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        }
    }
    if (rc == KP_OK) {
        rc = credential_part(dir, kc.ca_data, kc.ca_len, kc.ca_file, &out->ca_pem, &out->ca_len,
                             err);
    }
    if (rc == KP_OK) {
        rc = credential_part(dir, kc.cert_data, kc.cert_len, kc.cert_file, &out->cert_pem,
                             &out->cert_len, err);
    }
    if (rc == KP_OK) {
        rc = credential_part(dir, kc.key_data, kc.key_len, kc.key_file, &out->key_pem,
                             &out->key_len, err);
    }
    kp_kubeconfig_wipe(&kc);
    if (text != NULL) {
        kp_secret_free(text, len);
    }
    if (rc != KP_OK) {
        kp_kubeconfig_credentials_wipe(out);
        kp_error_prefix(err, "kubeconfig '%s'", path);
    }
    return rc;
}
