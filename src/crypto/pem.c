#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/internal.h"

static int cert_write_pem(BIO *bio, const void *cert)
{
    return PEM_write_bio_X509(bio, cert);
}

enum kp_result kp_cert_to_pem(X509 *cert, char **pem, size_t *len, struct kp_error *err)
{
    /* Only the writer is needed: certificates are read as chains (kp_certs_from_pem). */
    static const struct kp_crypto_codec cert_codec = {"certificate", cert_write_pem, NULL, NULL,
                                                      NULL};
    return kp_crypto_object_to_pem(&cert_codec, cert, pem, len, err);
}

enum kp_result kp_cert_reload(X509 **cert, struct kp_error *err)
{
    ERR_clear_error();
    unsigned char *der = NULL;
    int len = i2d_X509(*cert, &der);
    if (len <= 0) {
        return kp_error_openssl(err, KP_ERR_INTERNAL, "cannot encode certificate");
    }
    const unsigned char *cursor = der;
    X509 *parsed = d2i_X509(NULL, &cursor, len);
    OPENSSL_free(der);
    if (parsed == NULL) {
        return kp_error_openssl(err, KP_ERR_INTERNAL, "cannot re-read certificate");
    }
    X509_free(*cert);
    *cert = parsed;
    return KP_OK;
}

enum kp_result kp_certs_from_pem(const char *pem, size_t len, const char *what,
                                 STACK_OF(X509) **out, struct kp_error *err)
{
    *out = NULL;
    if (len > INT32_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: too large", what);
    }
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    STACK_OF(X509) *certs = sk_X509_new_null();
    if (bio == NULL || certs == NULL) {
        BIO_free(bio);
        sk_X509_free(certs);
        return kp_error_openssl(err, KP_ERR_IO, "%s: cannot read certificates", what);
    }
    enum kp_result rc = KP_OK;
    for (;;) {
        /* PEM_read_bio_X509 skips blocks of other types (a key after the certificate). */
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert == NULL) {
            unsigned long last = ERR_peek_last_error();
            bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM &&
                             ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
            if (!clean_end) {
                rc = kp_error_openssl(err, KP_ERR_INVALID,
                                      "%s: corrupt or truncated PEM certificate (block %d)", what,
                                      sk_X509_num(certs) + 1);
            }
            ERR_clear_error();
            break;
        }
        if (sk_X509_push(certs, cert) <= 0) {
            X509_free(cert);
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
            break;
        }
    }
    BIO_free(bio);
    if (rc == KP_OK && sk_X509_num(certs) == 0) {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: no PEM CERTIFICATE block found", what);
    }
    if (rc != KP_OK) {
        sk_X509_pop_free(certs, X509_free);
        return rc;
    }
    *out = certs;
    return KP_OK;
}

/* True when data looks like PEM rather than DER (a DER structure starts with 0x30). */
static bool looks_like_pem(const char *data, size_t len)
{
    return len == 0 || (unsigned char)data[0] != 0x30;
}

enum kp_result kp_certs_parse(const char *data, size_t len, const char *what,
                              STACK_OF(X509) **out, struct kp_error *err)
{
    if (looks_like_pem(data, len)) {
        return kp_certs_from_pem(data, len, what, out, err);
    }
    *out = NULL;
    if (len > INT32_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: too large", what);
    }
    ERR_clear_error();
    const unsigned char *cursor = (const unsigned char *)data;
    X509 *cert = d2i_X509(NULL, &cursor, (long)len);
    if (cert != NULL && cursor != (const unsigned char *)data + len) {
        X509_free(cert); /* bytes after the certificate: refused, as Go does */
        cert = NULL;
    }
    STACK_OF(X509) *certs = cert != NULL ? sk_X509_new_null() : NULL;
    if (certs == NULL || sk_X509_push(certs, cert) <= 0) {
        X509_free(cert);
        sk_X509_free(certs);
        return kp_error_openssl(err, KP_ERR_INVALID, "%s: not a PEM or DER certificate", what);
    }
    *out = certs;
    return KP_OK;
}

enum kp_result kp_crls_parse(const char *data, size_t len, const char *what,
                             STACK_OF(X509_CRL) **out, struct kp_error *err)
{
    *out = NULL;
    if (len > INT32_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: too large", what);
    }
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    if (crls == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    if (!looks_like_pem(data, len)) {
        const unsigned char *cursor = (const unsigned char *)data;
        X509_CRL *crl = d2i_X509_CRL(NULL, &cursor, (long)len);
        if (crl != NULL && cursor != (const unsigned char *)data + len) {
            X509_CRL_free(crl);
            crl = NULL;
        }
        if (crl == NULL || sk_X509_CRL_push(crls, crl) <= 0) {
            X509_CRL_free(crl);
            rc = kp_error_openssl(err, KP_ERR_INVALID, "%s: not a PEM or DER CRL", what);
        }
    } else {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        for (;;) {
            X509_CRL *crl = bio != NULL ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
            if (crl == NULL) {
                unsigned long last = ERR_peek_last_error();
                if (!(ERR_GET_LIB(last) == ERR_LIB_PEM &&
                      ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
                    rc = kp_error_openssl(err, KP_ERR_INVALID, "%s: corrupt or truncated PEM CRL",
                                          what);
                }
                break;
            }
            if (sk_X509_CRL_push(crls, crl) <= 0) {
                X509_CRL_free(crl);
                rc = kp_error_set(err, KP_ERR_IO, "out of memory");
                break;
            }
        }
        BIO_free(bio);
    }
    ERR_clear_error();
    if (rc == KP_OK && sk_X509_CRL_num(crls) == 0) {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: no PEM X509 CRL block found", what);
    }
    if (rc != KP_OK) {
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
        return rc;
    }
    *out = crls;
    return KP_OK;
}

enum kp_result kp_cert_from_pem(const char *pem, size_t len, const char *what, X509 **out,
                                struct kp_error *err)
{
    *out = NULL;
    STACK_OF(X509) *certs = NULL;
    enum kp_result rc = kp_certs_from_pem(pem, len, what, &certs, err);
    if (rc != KP_OK) {
        return rc;
    }
    *out = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    return KP_OK;
}

enum kp_result kp_base64_encode(const void *data, size_t len, char **out, size_t *out_len,
                                struct kp_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (len > (size_t)INT32_MAX / 2) {
        return kp_error_set(err, KP_ERR_INVALID, "data too large to encode");
    }
    size_t capacity = 4 * ((len + 2) / 3) + 1;
    char *text = malloc(capacity);
    if (text == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    int written = EVP_EncodeBlock((unsigned char *)text, data, (int)len);
    text[written] = '\0';
    *out = text;
    *out_len = (size_t)written;
    return KP_OK;
}

enum kp_result kp_base64_decode(const char *text, size_t len, unsigned char **out,
                                size_t *out_len, struct kp_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (len > (size_t)INT32_MAX / 2) {
        return kp_error_set(err, KP_ERR_INVALID, "base64 data too large");
    }
    /* EVP_DecodeUpdate, unlike EVP_DecodeBlock, rejects padding in the middle ("Y=Q=") and
     * accounts for trailing padding; EVP_DecodeFinal rejects an incomplete last quad. */
    unsigned char *data = malloc(len / 4 * 3 + 4);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (data == NULL || ctx == NULL) {
        free(data);
        EVP_ENCODE_CTX_free(ctx);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    /* OpenSSL's decoder stops at '-' (a PEM boundary) and would report success on the bytes
     * before it; in base64 data it is simply invalid. */
    if (memchr(text, '-', len) != NULL) {
        free(data);
        EVP_ENCODE_CTX_free(ctx);
        return kp_error_set(err, KP_ERR_INVALID, "invalid base64 data");
    }
    int used = 0;
    int tail = 0;
    EVP_DecodeInit(ctx);
    int update = EVP_DecodeUpdate(ctx, data, &used, (const unsigned char *)text, (int)len);
    int final = update >= 0 ? EVP_DecodeFinal(ctx, data + used, &tail) : -1;
    EVP_ENCODE_CTX_free(ctx);
    ERR_clear_error();
    if (update < 0 || final < 0) {
        explicit_bzero(data, len / 4 * 3 + 4); /* may hold part of a key */
        free(data);
        return kp_error_set(err, KP_ERR_INVALID, "invalid base64 data");
    }
    data[used + tail] = '\0'; /* PEM parsers downstream want text */
    *out = data;
    *out_len = (size_t)(used + tail);
    return KP_OK;
}

/* ---- one ASN.1 object of a given kind, PEM or DER (crypto/internal.h) ---- */

enum kp_result kp_crypto_object_to_pem(const struct kp_crypto_codec *codec, const void *object,
                                       char **pem, size_t *len, struct kp_error *err)
{
    *pem = NULL;
    *len = 0;
    ERR_clear_error();
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long size = 0;
    enum kp_result rc = KP_OK;
    if (bio == NULL || !codec->write_pem(bio, object) ||
        (size = BIO_get_mem_data(bio, &data)) <= 0) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot encode the %s", codec->noun);
    } else if ((*pem = malloc((size_t)size + 1)) == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
    } else {
        memcpy(*pem, data, (size_t)size);
        (*pem)[size] = '\0';
        *len = (size_t)size;
    }
    BIO_free(bio);
    return rc;
}

enum kp_result kp_crypto_object_from_pem(const struct kp_crypto_codec *codec, const char *pem,
                                         size_t len, const char *what, void **out,
                                         struct kp_error *err)
{
    *out = NULL;
    if (len > INT32_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: too large", what);
    }
    ERR_clear_error();
    if (len > 0 && (unsigned char)pem[0] == 0x30) {
        const unsigned char *cursor = (const unsigned char *)pem;
        *out = codec->read_der(&cursor, (long)len);
        if (*out != NULL && cursor != (const unsigned char *)pem + len) {
            codec->free_object(*out); /* bytes after the object: refused, as Go does */
            *out = NULL;
        }
    } else {
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        *out = bio != NULL ? codec->read_pem(bio) : NULL;
        BIO_free(bio);
    }
    if (*out == NULL) {
        return kp_error_openssl(err, KP_ERR_INVALID, "%s: no valid %s", what, codec->noun);
    }
    return KP_OK;
}
