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
