/*
 * Loading what is already on disk, so that init (and later check and renew) can decide whether
 * each file is absent, reusable, or inconsistent.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pki/pki.h"

void kp_existing_pair_wipe(struct kp_existing_pair *pair)
{
    if (pair->certs != NULL) {
        sk_X509_pop_free(pair->certs, X509_free);
    }
    EVP_PKEY_free(pair->key);
    /* The kubelet's pem holds its key after the certificate. */
    kp_secret_free(pair->cert_pem, pair->cert_pem_len);
    kp_secret_free(pair->key_pem, pair->key_pem_len);
    memset(pair, 0, sizeof(*pair));
}

enum kp_result kp_existing_pair_load(const char *cert_path, const char *key_path,
                                     struct kp_existing_pair *pair, struct kp_error *err)
{
    memset(pair, 0, sizeof(*pair));
    enum kp_result rc = KP_OK;
    if (cert_path != NULL && kp_path_exists(cert_path)) {
        pair->cert_present = true;
        rc = kp_file_read(cert_path, KP_PKI_FILE_MAX, &pair->cert_pem, &pair->cert_pem_len, err);
        if (rc == KP_OK) {
            rc = kp_certs_from_pem(pair->cert_pem, pair->cert_pem_len, cert_path, &pair->certs,
                                   err);
        }
    }
    if (rc == KP_OK && key_path != NULL && kp_path_exists(key_path)) {
        pair->key_present = true;
        rc = kp_file_read(key_path, KP_PKI_FILE_MAX, &pair->key_pem, &pair->key_pem_len, err);
        if (rc == KP_OK) {
            rc = kp_key_from_pem(pair->key_pem, pair->key_pem_len, key_path, &pair->key, err);
        }
    }
    if (rc != KP_OK) {
        kp_existing_pair_wipe(pair);
    }
    return rc;
}
