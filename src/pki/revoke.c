/*
 * Revocation: one CRL per CA (pki/ca.crl, pki/front-proxy-ca.crl, pki/etcd/ca.crl), signed by
 * that CA, holding every serial ever revoked under it. Each change re-signs the whole list with
 * the next CRL number and writes it atomically. Consumers (the API server, the kubelet, etcd via
 * its --client-crl-file, `kpki verify --crl`, `kpki check`) only ever see a complete, signed list.
 */
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"

static const struct kp_cert_spec *ca_spec(const char *ca_name, struct kp_error *err)
{
    const struct kp_cert_spec *spec = ca_name != NULL ? kp_cert_spec_find(ca_name) : NULL;
    if (spec == NULL || spec->kind != KP_ART_CA) {
        kp_error_set(err, KP_ERR_INVALID, "'%s' is not one of the tree's CAs (ca, etcd-ca, "
                     "front-proxy-ca)", ca_name != NULL ? ca_name : "");
        return NULL;
    }
    return spec;
}

static enum kp_result crl_path(const struct kp_pki_config *config,
                               const struct kp_cert_spec *spec, char *path, size_t size,
                               char *rel, size_t rel_size, struct kp_error *err)
{
    snprintf(rel, rel_size, "%s.crl", spec->file);
    return kp_path_join(path, size, config->root, rel, err);
}

/* The CA's certificate, and its key when need_key. */
static enum kp_result load_ca(const struct kp_pki_config *config, const struct kp_cert_spec *spec,
                              bool need_key, X509 **cert, EVP_PKEY **key, struct kp_error *err)
{
    struct kp_cert_request request;
    struct kp_existing_pair pair = {0};
    enum kp_result rc = kp_cert_resolve(spec, config, config->key_type, &request, err);
    if (rc == KP_OK) {
        rc = kp_existing_pair_load(request.cert_path, need_key ? request.key_path : NULL, &pair,
                                   err);
    }
    if (rc == KP_OK && !pair.cert_present) {
        rc = kp_error_set(err, KP_ERR_NOT_FOUND, "the %s CA certificate '%s' is missing",
                          spec->name, request.cert_path);
    } else if (rc == KP_OK && need_key && !pair.key_present) {
        rc = kp_error_set(err, KP_ERR_FORBIDDEN,
                          "cannot sign the %s CRL: the CA key '%s' is not on this node (an "
                          "external CA signs its own CRLs)",
                          spec->name, request.key_path);
    }
    if (rc == KP_OK) {
        *cert = sk_X509_shift(pair.certs);
        if (key != NULL) {
            *key = pair.key;
            pair.key = NULL;
        }
    }
    kp_existing_pair_wipe(&pair);
    kp_cert_request_wipe(&request);
    return rc;
}

enum kp_result kp_pki_crl_load(const struct kp_pki_config *config, const char *ca_name,
                               X509_CRL **crl, struct kp_error *err)
{
    *crl = NULL;
    const struct kp_cert_spec *spec = ca_spec(ca_name, err);
    if (spec == NULL) {
        return KP_ERR_INVALID;
    }
    char path[KP_PATH_MAX];
    char rel[512];
    enum kp_result rc = crl_path(config, spec, path, sizeof(path), rel, sizeof(rel), err);
    if (rc != KP_OK || !kp_path_exists(path)) {
        return rc;
    }
    X509 *ca = NULL;
    char *text = NULL;
    size_t len = 0;
    rc = load_ca(config, spec, false, &ca, NULL, err);
    if (rc == KP_OK) {
        rc = kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, err);
    }
    if (rc == KP_OK) {
        rc = kp_crl_from_pem(text, len, path, crl, err);
    }
    if (rc == KP_OK && !kp_crl_signed_by(*crl, ca)) {
        X509_CRL_free(*crl);
        *crl = NULL;
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' is not signed by the %s CA", path,
                          spec->name);
    }
    free(text);
    X509_free(ca);
    return rc;
}

/* Writes the CRL of spec with entries, numbered after the previous one. */
static enum kp_result write_crl(const struct kp_pki_config *config,
                                const struct kp_cert_spec *spec, int64_t now, int64_t validity,
                                const struct kp_crl_entry *entries, size_t count,
                                uint64_t previous_number, struct kp_revoke_result *result,
                                struct kp_error *err)
{
    X509 *ca = NULL;
    EVP_PKEY *key = NULL;
    X509_CRL *crl = NULL;
    char *pem = NULL;
    size_t len = 0;
    char path[KP_PATH_MAX];
    enum kp_result rc = crl_path(config, spec, path, sizeof(path), result->crl_path,
                                 sizeof(result->crl_path), err);
    if (rc == KP_OK) {
        rc = load_ca(config, spec, true, &ca, &key, err);
    }
    if (rc == KP_OK) {
        result->crl_number = previous_number + 1;
        result->entries = count;
        rc = kp_crl_build(ca, key, entries, count, result->crl_number, now, now + validity, &crl,
                          err);
    }
    if (rc == KP_OK) {
        rc = kp_crl_to_pem(crl, &pem, &len, err);
    }
    if (rc == KP_OK) {
        rc = kp_file_write_atomic(path, pem, len, 0644, err);
    }
    free(pem);
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
    X509_free(ca);
    return rc;
}

/* The current entries (empty when there is no CRL yet) and number. */
static enum kp_result current_entries(const struct kp_pki_config *config, const char *ca_name,
                                      struct kp_crl_entry **entries, size_t *count,
                                      uint64_t *number, struct kp_error *err)
{
    X509_CRL *crl = NULL;
    *entries = NULL;
    *count = 0;
    *number = 0;
    enum kp_result rc = kp_pki_crl_load(config, ca_name, &crl, err);
    if (rc == KP_OK && crl != NULL) {
        rc = kp_crl_entries(crl, entries, count, err);
        *number = kp_crl_number(crl);
    }
    X509_CRL_free(crl);
    return rc;
}

enum kp_result kp_pki_revoke(const struct kp_pki_config *config, const struct kp_clock *clock,
                             const char *ca_name, const char *serial_hex,
                             enum kp_crl_reason reason, int64_t validity,
                             struct kp_revoke_result *result, struct kp_error *err)
{
    memset(result, 0, sizeof(*result));
    const struct kp_cert_spec *spec = ca_spec(ca_name, err);
    if (spec == NULL) {
        return KP_ERR_INVALID;
    }
    size_t hex_len = strlen(serial_hex);
    if (hex_len == 0 || hex_len >= sizeof(((struct kp_crl_entry *)0)->serial_hex) ||
        strspn(serial_hex, "0123456789ABCDEF") != hex_len) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid serial '%s': expected hex digits",
                            serial_hex);
    }
    struct kp_crl_entry *entries = NULL;
    size_t count = 0;
    uint64_t number = 0;
    enum kp_result rc = current_entries(config, ca_name, &entries, &count, &number, err);
    if (rc != KP_OK) {
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        /* BN_bn2hex may write a leading zero the caller's form lacks: compare numerically. */
        const char *a = entries[i].serial_hex, *b = serial_hex;
        while (*a == '0' && a[1] != '\0') {
            a++;
        }
        while (*b == '0' && b[1] != '\0') {
            b++;
        }
        result->already_revoked = result->already_revoked || strcmp(a, b) == 0;
    }
    if (!result->already_revoked) {
        struct kp_crl_entry *grown = realloc(entries, (count + 1) * sizeof(*grown));
        if (grown == NULL) {
            free(entries);
            return kp_error_set(err, KP_ERR_IO, "out of memory");
        }
        entries = grown;
        struct kp_crl_entry *entry = &entries[count++];
        memset(entry, 0, sizeof(*entry));
        snprintf(entry->serial_hex, sizeof(entry->serial_hex), "%s", serial_hex);
        entry->revoked_at = kp_clock_now(clock);
        entry->reason = reason;
    }
    bool already = result->already_revoked;
    rc = write_crl(config, spec, kp_clock_now(clock), validity, entries, count, number, result,
                   err);
    result->already_revoked = already;
    free(entries);
    return rc;
}

enum kp_result kp_pki_crl_sign(const struct kp_pki_config *config, const struct kp_clock *clock,
                               const char *ca_name, int64_t validity,
                               struct kp_revoke_result *result, struct kp_error *err)
{
    memset(result, 0, sizeof(*result));
    const struct kp_cert_spec *spec = ca_spec(ca_name, err);
    if (spec == NULL) {
        return KP_ERR_INVALID;
    }
    struct kp_crl_entry *entries = NULL;
    size_t count = 0;
    uint64_t number = 0;
    enum kp_result rc = current_entries(config, ca_name, &entries, &count, &number, err);
    if (rc == KP_OK) {
        rc = write_crl(config, spec, kp_clock_now(clock), validity, entries, count, number,
                       result, err);
    }
    free(entries);
    return rc;
}

/* ---- finding a row's certificate ---- */

static enum kp_result kubeconfig_certificate(const struct kp_cert_request *request, X509 **cert,
                                             struct kp_error *err)
{
    char *text = NULL;
    size_t len = 0;
    struct kp_kubeconfig kubeconfig;
    enum kp_result rc = kp_file_read(request->key_path, KP_PKI_FILE_MAX, &text, &len, err);
    if (rc == KP_OK) {
        rc = kp_kubeconfig_parse(text, len, request->key_path, &kubeconfig, err);
        kp_secret_free(text, len);
        text = NULL;
    }
    if (rc != KP_OK) {
        free(text);
        return rc;
    }
    if (kubeconfig.cert_data != NULL) {
        rc = kp_cert_from_pem((const char *)kubeconfig.cert_data, kubeconfig.cert_len,
                              request->key_path, cert, err);
    } else if (kubeconfig.cert_file != NULL) {
        rc = kp_file_read(kubeconfig.cert_file, KP_PKI_FILE_MAX, &text, &len, err);
        if (rc == KP_OK) {
            rc = kp_cert_from_pem(text, len, kubeconfig.cert_file, cert, err);
        }
        free(text);
    } else {
        rc = kp_error_set(err, KP_ERR_NOT_FOUND, "'%s' holds no client certificate",
                          request->key_path);
    }
    kp_kubeconfig_wipe(&kubeconfig);
    return rc;
}

static enum kp_result certificate_file(const char *path, X509 **cert, struct kp_error *err)
{
    char *text = NULL;
    size_t len = 0;
    enum kp_result rc = kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, err);
    if (rc == KP_OK) {
        rc = kp_cert_from_pem(text, len, path, cert, err);
    }
    free(text);
    return rc;
}

/* Which of the tree's CAs signed cert. */
static enum kp_result issuer_of(const struct kp_pki_config *config, X509 *cert, char *ca_name,
                                size_t size, struct kp_error *err)
{
    size_t count = 0;
    const struct kp_cert_spec *specs = kp_cert_specs(&count);
    for (size_t i = 0; i < count; i++) {
        X509 *ca = NULL;
        if (specs[i].kind != KP_ART_CA || load_ca(config, &specs[i], false, &ca, NULL, NULL) !=
                                               KP_OK) {
            continue;
        }
        bool ok = false;
        char reason[128];
        enum kp_result rc = kp_cert_verify_chain(cert, ca, NULL, KP_VERIFY_ANY_TIME, &ok, reason,
                                                 sizeof(reason), NULL);
        X509_free(ca);
        if (rc == KP_OK && ok) {
            snprintf(ca_name, size, "%s", specs[i].name);
            return KP_OK;
        }
    }
    return kp_error_set(err, KP_ERR_NOT_FOUND, "no CA of the tree under '%s' signed this "
                        "certificate", config->root);
}

enum kp_result kp_pki_find_certificate(const struct kp_pki_config *config,
                                       const char *name_or_path, X509 **cert, char *ca_name,
                                       size_t ca_name_size, struct kp_error *err)
{
    *cert = NULL;
    if (strchr(name_or_path, '/') != NULL) {
        enum kp_result rc = certificate_file(name_or_path, cert, err);
        if (rc == KP_OK) {
            rc = issuer_of(config, *cert, ca_name, ca_name_size, err);
        }
        if (rc != KP_OK) {
            X509_free(*cert);
            *cert = NULL;
        }
        return rc;
    }
    const struct kp_cert_spec *spec = kp_cert_spec_find(name_or_path);
    if (spec == NULL || spec->kind == KP_ART_SA) {
        return kp_error_set(err, KP_ERR_INVALID, "'%s' is not a certificate of the tree (see kpki "
                            "check for the names), nor a path", name_or_path);
    }
    struct kp_cert_request request;
    enum kp_result rc = kp_cert_resolve(spec, config, config->key_type, &request, err);
    if (rc == KP_OK) {
        rc = spec->kind == KP_ART_KUBECONFIG ? kubeconfig_certificate(&request, cert, err)
                                             : certificate_file(request.cert_path, cert, err);
    }
    if (rc == KP_OK) {
        snprintf(ca_name, ca_name_size, "%s", spec->ca != NULL ? spec->ca : spec->name);
    }
    kp_cert_request_wipe(&request);
    return rc;
}
