/*
 * Certificate revocation lists (RFC 5280 §5): v2, AuthorityKeyIdentifier and CRLNumber
 * extensions, one reasonCode per entry unless unspecified.
 */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto/crypto.h"
#include "crypto/internal.h"

static const struct {
    enum kp_crl_reason reason;
    const char *name;
} reasons[] = {
    {KP_CRL_UNSPECIFIED, "unspecified"},
    {KP_CRL_KEY_COMPROMISE, "keyCompromise"},
    {KP_CRL_CA_COMPROMISE, "cACompromise"},
    {KP_CRL_AFFILIATION_CHANGED, "affiliationChanged"},
    {KP_CRL_SUPERSEDED, "superseded"},
    {KP_CRL_CESSATION_OF_OPERATION, "cessationOfOperation"},
    {KP_CRL_CERTIFICATE_HOLD, "certificateHold"},
    {KP_CRL_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"},
};

/* Reasons found in CRLs kpki reads but never writes (RFC 5280 §5.3.1). */
static const struct {
    int code;
    const char *name;
} foreign_reasons[] = {{8, "removeFromCRL"}, {10, "aACompromise"}};

bool kp_crl_reason_parse(const char *text, enum kp_crl_reason *reason)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strcasecmp(text, reasons[i].name) == 0) {
            *reason = reasons[i].reason;
            return true;
        }
    }
    return false;
}

const char *kp_crl_reason_name(enum kp_crl_reason reason)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].reason == reason) {
            return reasons[i].name;
        }
    }
    for (size_t i = 0; i < sizeof(foreign_reasons) / sizeof(foreign_reasons[0]); i++) {
        if (foreign_reasons[i].code == (int)reason) {
            return foreign_reasons[i].name;
        }
    }
    return "unknown";
}

static X509_REVOKED *make_entry(const struct kp_crl_entry *entry)
{
    X509_REVOKED *revoked = X509_REVOKED_new();
    BIGNUM *serial = NULL;
    ASN1_INTEGER *number = NULL;
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)entry->revoked_at);
    ASN1_ENUMERATED *code = NULL;
    int ok = revoked != NULL && when != NULL && BN_hex2bn(&serial, entry->serial_hex) > 0 &&
             (number = BN_to_ASN1_INTEGER(serial, NULL)) != NULL &&
             X509_REVOKED_set_serialNumber(revoked, number) &&
             X509_REVOKED_set_revocationDate(revoked, when);
    if (ok && entry->reason != KP_CRL_UNSPECIFIED) {
        /* RFC 5280 §5.3.1: omit the extension rather than write "unspecified". */
        code = ASN1_ENUMERATED_new();
        ok = code != NULL && ASN1_ENUMERATED_set(code, entry->reason) &&
             X509_REVOKED_add1_ext_i2d(revoked, NID_crl_reason, code, 0, 0) == 1;
    }
    ASN1_ENUMERATED_free(code);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(number);
    BN_free(serial);
    if (!ok) {
        X509_REVOKED_free(revoked);
        return NULL;
    }
    return revoked;
}

static int add_crl_extensions(X509_CRL *crl, X509 *ca, uint64_t number)
{
    int ok = 1;
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ca);
    if (skid != NULL) {
        AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
        ok = akid != NULL && (akid->keyid = ASN1_OCTET_STRING_dup(skid)) != NULL &&
             X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) == 1;
        AUTHORITY_KEYID_free(akid);
    }
    ASN1_INTEGER *value = ASN1_INTEGER_new();
    ok = ok && value != NULL && ASN1_INTEGER_set_uint64(value, number) &&
         X509_CRL_add1_ext_i2d(crl, NID_crl_number, value, 0, 0) == 1;
    ASN1_INTEGER_free(value);
    return ok;
}

enum kp_result kp_crl_build(X509 *ca, EVP_PKEY *ca_key, const struct kp_crl_entry *entries,
                            size_t count, uint64_t number, int64_t this_update,
                            int64_t next_update, X509_CRL **out, struct kp_error *err)
{
    *out = NULL;
    if (next_update <= this_update) {
        return kp_error_set(err, KP_ERR_INVALID, "CRL nextUpdate must follow thisUpdate");
    }
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)this_update);
    ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)next_update);
    if (crl == NULL || last == NULL || next == NULL || !X509_CRL_set_version(crl, 1) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) ||
        !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot build the CRL");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        X509_REVOKED *revoked = make_entry(&entries[i]);
        if (revoked == NULL || !X509_CRL_add0_revoked(crl, revoked)) {
            X509_REVOKED_free(revoked);
            rc = kp_error_openssl(err, KP_ERR_INVALID, "cannot add serial '%s' to the CRL",
                                  entries[i].serial_hex);
            goto done;
        }
    }
    if (!X509_CRL_sort(crl) || !add_crl_extensions(crl, ca, number) ||
        X509_CRL_sign(crl, ca_key, kp_crypto_digest_for(ca_key)) <= 0) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot sign the CRL");
        goto done;
    }
    *out = crl;
    crl = NULL;
done:
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    return rc;
}

/* The CRL kind for crypto/internal.h's PEM and DER helpers. */
static int crl_write_pem(BIO *bio, const void *object)
{
    return PEM_write_bio_X509_CRL(bio, object);
}

static void *crl_read_pem(BIO *bio)
{
    return PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
}

static void *crl_read_der(const unsigned char **cursor, long len)
{
    return d2i_X509_CRL(NULL, cursor, len);
}

static void crl_free(void *object)
{
    X509_CRL_free(object);
}

static const struct kp_crypto_codec crl_codec = {"CRL", crl_write_pem, crl_read_pem,
                                                    crl_read_der, crl_free};

enum kp_result kp_crl_to_pem(X509_CRL *crl, char **pem, size_t *len, struct kp_error *err)
{
    return kp_crypto_object_to_pem(&crl_codec, crl, pem, len, err);
}

enum kp_result kp_crl_from_pem(const char *pem, size_t len, const char *what, X509_CRL **out,
                               struct kp_error *err)
{
    void *object = NULL;
    enum kp_result rc = kp_crypto_object_from_pem(&crl_codec, pem, len, what, &object, err);
    *out = object;
    return rc;
}

static int64_t time_of(const ASN1_TIME *value)
{
    struct tm tm;
    if (value == NULL || !ASN1_TIME_to_tm(value, &tm)) {
        ERR_clear_error();
        return 0;
    }
    return (int64_t)timegm(&tm);
}

enum kp_result kp_crl_entries(X509_CRL *crl, struct kp_crl_entry **entries, size_t *count,
                              struct kp_error *err)
{
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
    int total = sk_X509_REVOKED_num(revoked);
    *count = 0;
    *entries = calloc(total > 0 ? (size_t)total : 1, sizeof(**entries));
    if (*entries == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    for (int i = 0; i < total; i++) {
        X509_REVOKED *item = sk_X509_REVOKED_value(revoked, i);
        struct kp_crl_entry *entry = &(*entries)[(*count)++];
        BIGNUM *serial = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(item), NULL);
        char *hex = serial != NULL ? BN_bn2hex(serial) : NULL;
        snprintf(entry->serial_hex, sizeof(entry->serial_hex), "%s", hex != NULL ? hex : "?");
        OPENSSL_free(hex);
        BN_free(serial);
        entry->revoked_at = time_of(X509_REVOKED_get0_revocationDate(item));
        ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i(item, NID_crl_reason, NULL, NULL);
        entry->reason = code != NULL ? (enum kp_crl_reason)ASN1_ENUMERATED_get(code)
                                     : KP_CRL_UNSPECIFIED;
        ASN1_ENUMERATED_free(code);
    }
    ERR_clear_error();
    return KP_OK;
}

uint64_t kp_crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    uint64_t value = 0;
    if (number == NULL || !ASN1_INTEGER_get_uint64(&value, number)) {
        value = 0;
    }
    ASN1_INTEGER_free(number);
    ERR_clear_error();
    return value;
}

int64_t kp_crl_this_update(X509_CRL *crl)
{
    return time_of(X509_CRL_get0_lastUpdate(crl));
}

int64_t kp_crl_next_update(X509_CRL *crl)
{
    return time_of(X509_CRL_get0_nextUpdate(crl));
}

bool kp_crl_signed_by(X509_CRL *crl, X509 *ca)
{
    EVP_PKEY *key = X509_get0_pubkey(ca);
    bool ok = key != NULL && X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0 &&
              X509_CRL_verify(crl, key) == 1;
    ERR_clear_error();
    return ok;
}

bool kp_crl_lists(X509_CRL *crl, X509 *cert)
{
    X509_REVOKED *entry = NULL;
    /* 1: listed; 2: listed as removeFromCRL (a delta-CRL notion: not revoked). */
    return X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(cert)) == 1;
}
