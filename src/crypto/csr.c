/*
 * PKCS#10 certificate signing requests, as kubeadm's `certs generate-csr` writes them: subject
 * and SANs only, no usages (the signer decides them).
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/internal.h"

enum kp_result kp_csr_create(const struct kp_cert_template *tmpl, EVP_PKEY *key, X509_REQ **out,
                             struct kp_error *err)
{
    *out = NULL;
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    X509_REQ *csr = X509_REQ_new();
    X509_NAME *subject = kp_crypto_subject(tmpl);
    GENERAL_NAMES *names = NULL;
    STACK_OF(X509_EXTENSION) *extensions = NULL;
    if (csr == NULL || subject == NULL || !X509_REQ_set_version(csr, 0) ||
        !X509_REQ_set_subject_name(csr, subject) || !X509_REQ_set_pubkey(csr, key)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot build a request for '%s'",
                              tmpl->common_name);
        goto done;
    }
    if (tmpl->dns_count + tmpl->ip_count > 0) {
        names = kp_crypto_general_names(tmpl);
        extensions = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *san = names != NULL ? X509V3_EXT_i2d(NID_subject_alt_name, 0, names)
                                            : NULL;
        if (san == NULL || extensions == NULL || sk_X509_EXTENSION_push(extensions, san) <= 0 ||
            !X509_REQ_add_extensions(csr, extensions)) {
            X509_EXTENSION_free(san);
            rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot add SANs to the request for '%s'",
                                  tmpl->common_name);
            goto done;
        }
    }
    if (X509_REQ_sign(csr, key, kp_crypto_digest_for(key)) <= 0) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot sign the request for '%s'",
                              tmpl->common_name);
        goto done;
    }
    *out = csr;
    csr = NULL;
done:
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    GENERAL_NAMES_free(names);
    X509_NAME_free(subject);
    X509_REQ_free(csr);
    return rc;
}

/* The certificate request kind for crypto/internal.h's PEM and DER helpers. */
static int csr_write_pem(BIO *bio, const void *object)
{
    return PEM_write_bio_X509_REQ(bio, object);
}

static void *csr_read_pem(BIO *bio)
{
    return PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
}

static void *csr_read_der(const unsigned char **cursor, long len)
{
    return d2i_X509_REQ(NULL, cursor, len);
}

static void csr_free(void *object)
{
    X509_REQ_free(object);
}

static const struct kp_crypto_codec csr_codec = {"certificate request", csr_write_pem, csr_read_pem,
                                                    csr_read_der, csr_free};

enum kp_result kp_csr_to_pem(X509_REQ *csr, char **pem, size_t *len, struct kp_error *err)
{
    return kp_crypto_object_to_pem(&csr_codec, csr, pem, len, err);
}

enum kp_result kp_csr_from_pem(const char *pem, size_t len, const char *what, X509_REQ **out,
                               struct kp_error *err)
{
    void *object = NULL;
    enum kp_result rc = kp_crypto_object_from_pem(&csr_codec, pem, len, what, &object, err);
    *out = object;
    return rc;
}

enum kp_result kp_csr_sans(X509_REQ *csr, struct kp_strlist *dns, struct kp_strlist *ips,
                           struct kp_error *err)
{
    STACK_OF(X509_EXTENSION) *extensions = X509_REQ_get_extensions(csr);
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    for (int i = 0; rc == KP_OK && i < sk_X509_EXTENSION_num(extensions); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(extensions, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) {
            continue;
        }
        GENERAL_NAMES *names = X509V3_EXT_d2i(ext);
        for (int j = 0; rc == KP_OK && names != NULL && j < sk_GENERAL_NAME_num(names); j++) {
            int type = 0;
            ASN1_STRING *value = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, j), &type);
            if (type == GEN_DNS && dns != NULL) {
                rc = kp_strlist_addn(dns, (const char *)ASN1_STRING_get0_data(value),
                                     (size_t)ASN1_STRING_length(value), err);
            } else if (type == GEN_IPADD && ips != NULL &&
                       (ASN1_STRING_length(value) == 4 || ASN1_STRING_length(value) == 16)) {
                struct kp_ip ip = {.family = ASN1_STRING_length(value) == 4 ? AF_INET : AF_INET6};
                memcpy(ip.bytes, ASN1_STRING_get0_data(value), (size_t)ASN1_STRING_length(value));
                char text[KP_IP_TEXT_MAX];
                kp_ip_format(&ip, text, sizeof(text));
                rc = kp_strlist_add(ips, text, err);
            }
        }
        GENERAL_NAMES_free(names);
    }
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    ERR_clear_error();
    return rc;
}
