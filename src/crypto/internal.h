/*
 * crypto/internal.h - helpers shared by the files of the crypto area only (certificates, CSRs
 * and CRLs are built from the same pieces). Not for other areas: use crypto/crypto.h.
 */
#ifndef KP_CRYPTO_INTERNAL_H
#define KP_CRYPTO_INTERNAL_H

#include <openssl/x509v3.h>

#include "crypto/crypto.h"

/* Subject from tmpl: O values (one multi-valued RDN, as Go) then CN; PrintableString when a
 * value fits, else UTF8String. NULL on failure. Free with X509_NAME_free. */
X509_NAME *kp_crypto_subject(const struct kp_cert_template *tmpl);
/* tmpl's DNS names then IPs. NULL on failure. Free with GENERAL_NAMES_free. */
GENERAL_NAMES *kp_crypto_general_names(const struct kp_cert_template *tmpl);
/* SHA-384 for a P-384 signing key, else SHA-256 (Go's choice for the key). */
const EVP_MD *kp_crypto_digest_for(EVP_PKEY *signing_key);

/* How to encode and decode one kind of ASN.1 object (a CRL, a certificate request) as PEM or
 * DER, for kp_crypto_object_to_pem and kp_crypto_object_from_pem. */
struct kp_crypto_codec {
    const char *noun;                                 /* "CRL", "certificate request" */
    int (*write_pem)(BIO *bio, const void *object);   /* PEM_write_bio_X */
    void *(*read_pem)(BIO *bio);                      /* PEM_read_bio_X */
    void *(*read_der)(const unsigned char **cursor, long len); /* d2i_X */
    void (*free_object)(void *object);                /* X_free */
};

/* The object in PEM (*pem NUL-terminated, free with free()). */
KP_MUST_CHECK enum kp_result kp_crypto_object_to_pem(const struct kp_crypto_codec *codec,
                                                     const void *object, char **pem, size_t *len,
                                                     struct kp_error *err);
/* One object from PEM or DER (DER when the first byte is a SEQUENCE; bytes after it are refused,
 * as Go does). what names the input in errors. */
KP_MUST_CHECK enum kp_result kp_crypto_object_from_pem(const struct kp_crypto_codec *codec,
                                                       const char *pem, size_t len,
                                                       const char *what, void **out,
                                                       struct kp_error *err);

#endif
