/*
 * Certificates built the way Go's crypto/x509 CreateCertificate builds them for kubeadm
 * (k8s.io/kubernetes cmd/kubeadm/app/util/pkiutil/pki_helpers.go), so a kpki tree and a kubeadm
 * tree differ only in keys, serials and times.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "crypto/internal.h"

/* ASN.1 PrintableString alphabet (X.680 §41.4); Go picks it when a value fits, else UTF8. */
static bool printable(const char *text)
{
    for (const char *c = text; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || strchr(" '()+,-./:=?", *c) != NULL;
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int add_name_entry(X509_NAME *name, int nid, const char *value, int set)
{
    int type = printable(value) ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING;
    return X509_NAME_add_entry_by_NID(name, nid, type, (const unsigned char *)value, -1, -1, set);
}

/* Subject = O values (one multi-valued RDN, as Go's pkix.Name marshals a slice) then CN. */
X509_NAME *kp_crypto_subject(const struct kp_cert_template *tmpl)
{
    X509_NAME *name = X509_NAME_new();
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < tmpl->organization_count; i++) {
        if (!add_name_entry(name, NID_organizationName, tmpl->organizations[i], i == 0 ? 0 : -1)) {
            X509_NAME_free(name);
            return NULL;
        }
    }
    if (tmpl->common_name != NULL && tmpl->common_name[0] != '\0' &&
        !add_name_entry(name, NID_commonName, tmpl->common_name, 0)) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

static int set_serial(X509 *cert, uint64_t fixed)
{
    BIGNUM *serial = BN_new();
    BIGNUM *range = BN_new();
    int ok = serial != NULL && range != NULL;
    if (ok && fixed != 0) {
        ok = BN_set_word(serial, (BN_ULONG)fixed);
    } else if (ok) {
        /* kubeadm: rand.Int(rand.Reader, MaxInt64-1) + 1, i.e. uniform in [1, 2^63-1). */
        ok = BN_set_word(range, 0x7fffffffffffffffULL - 1) && BN_rand_range(serial, range) &&
             BN_add_word(serial, 1);
    }
    ok = ok && BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) != NULL;
    BN_free(serial);
    BN_free(range);
    return ok;
}

static int add_key_usage(X509 *cert, unsigned usage)
{
    /* RFC 5280 §4.2.1.3 bit positions. */
    static const struct {
        unsigned flag;
        int bit;
    } bits[] = {{KP_KU_DIGITAL_SIGNATURE, 0},
                {KP_KU_KEY_ENCIPHERMENT, 2},
                {KP_KU_CERT_SIGN, 5},
                {KP_KU_CRL_SIGN, 6}};
    ASN1_BIT_STRING *value = ASN1_BIT_STRING_new();
    int ok = value != NULL;
    for (size_t i = 0; ok && i < sizeof(bits) / sizeof(bits[0]); i++) {
        if (usage & bits[i].flag) {
            ok = ASN1_BIT_STRING_set_bit(value, bits[i].bit, 1);
        }
    }
    ok = ok && X509_add1_ext_i2d(cert, NID_key_usage, value, 1, X509V3_ADD_REPLACE) == 1;
    ASN1_BIT_STRING_free(value);
    return ok;
}

static int add_ext_key_usage(X509 *cert, unsigned usage)
{
    EXTENDED_KEY_USAGE *value = sk_ASN1_OBJECT_new_null();
    int ok = value != NULL;
    if (ok && (usage & KP_EKU_SERVER_AUTH)) {
        ok = sk_ASN1_OBJECT_push(value, OBJ_nid2obj(NID_server_auth)) > 0;
    }
    if (ok && (usage & KP_EKU_CLIENT_AUTH)) {
        ok = sk_ASN1_OBJECT_push(value, OBJ_nid2obj(NID_client_auth)) > 0;
    }
    ok = ok && X509_add1_ext_i2d(cert, NID_ext_key_usage, value, 0, X509V3_ADD_REPLACE) == 1;
    sk_ASN1_OBJECT_free(value); /* the objects are static (OBJ_nid2obj) */
    return ok;
}

static int add_basic_constraints(X509 *cert, bool is_ca)
{
    BASIC_CONSTRAINTS *value = BASIC_CONSTRAINTS_new();
    int ok = value != NULL;
    if (ok) {
        value->ca = is_ca ? 0xff : 0;
        ok = X509_add1_ext_i2d(cert, NID_basic_constraints, value, 1, X509V3_ADD_REPLACE) == 1;
    }
    BASIC_CONSTRAINTS_free(value);
    return ok;
}

static int add_subject_key_id(X509 *cert)
{
    /* RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING, as Go computes it. */
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    int ok = value != NULL && X509_pubkey_digest(cert, EVP_sha1(), digest, &digest_len) &&
             ASN1_OCTET_STRING_set(value, digest, (int)digest_len) &&
             X509_add1_ext_i2d(cert, NID_subject_key_identifier, value, 0, X509V3_ADD_REPLACE) ==
                 1;
    ASN1_OCTET_STRING_free(value);
    return ok;
}

static int add_authority_key_id(X509 *cert, X509 *issuer)
{
    const ASN1_OCTET_STRING *issuer_skid = X509_get0_subject_key_id(issuer);
    if (issuer_skid == NULL) {
        return 1; /* Go omits the extension when the parent has no SKID */
    }
    AUTHORITY_KEYID *value = AUTHORITY_KEYID_new();
    int ok = value != NULL && (value->keyid = ASN1_OCTET_STRING_dup(issuer_skid)) != NULL &&
             X509_add1_ext_i2d(cert, NID_authority_key_identifier, value, 0,
                               X509V3_ADD_REPLACE) == 1;
    AUTHORITY_KEYID_free(value);
    return ok;
}

static int push_general_name(GENERAL_NAMES *names, int type, const unsigned char *data, int len)
{
    GENERAL_NAME *name = GENERAL_NAME_new();
    ASN1_STRING *value = ASN1_STRING_type_new(type == GEN_DNS ? V_ASN1_IA5STRING
                                                              : V_ASN1_OCTET_STRING);
    if (name == NULL || value == NULL || !ASN1_STRING_set(value, data, len)) {
        GENERAL_NAME_free(name);
        ASN1_STRING_free(value);
        return 0;
    }
    GENERAL_NAME_set0_value(name, type, value);
    if (sk_GENERAL_NAME_push(names, name) <= 0) {
        GENERAL_NAME_free(name);
        return 0;
    }
    return 1;
}

GENERAL_NAMES *kp_crypto_general_names(const struct kp_cert_template *tmpl)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    int ok = names != NULL;
    /* Go's order: DNS names, e-mail addresses, IP addresses, URIs. */
    for (size_t i = 0; ok && i < tmpl->dns_count; i++) {
        ok = push_general_name(names, GEN_DNS, (const unsigned char *)tmpl->dns_names[i],
                               (int)strlen(tmpl->dns_names[i]));
    }
    for (size_t i = 0; ok && i < tmpl->ip_count; i++) {
        ok = push_general_name(names, GEN_IPADD, tmpl->ips[i].bytes,
                               (int)kp_ip_len(&tmpl->ips[i]));
    }
    if (!ok) {
        GENERAL_NAMES_free(names);
        return NULL;
    }
    return names;
}

static int add_subject_alt_names(X509 *cert, const struct kp_cert_template *tmpl)
{
    if (tmpl->dns_count == 0 && tmpl->ip_count == 0) {
        return 1;
    }
    GENERAL_NAMES *names = kp_crypto_general_names(tmpl);
    int ok = names != NULL &&
             X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_REPLACE) == 1;
    GENERAL_NAMES_free(names);
    return ok;
}

/*
 * Sets the certificate's SubjectPublicKeyInfo. For EC keys kpki writes the algorithm, the named
 * curve and the encoded point directly: X509_set_pubkey() in OpenSSL 3.0 round-trips the key
 * through an OSSL_ENCODER and an OSSL_DECODER, about 2.2 million instructions per certificate -
 * half of a whole ECDSA tree. RSA keys keep X509_set_pubkey (their generation dwarfs it).
 */
static int set_public_key(X509 *cert, EVP_PKEY *key)
{
    enum kp_key_type type = kp_key_type_of(key);
    int curve = type == KP_KEY_ECDSA_P256   ? NID_X9_62_prime256v1
                : type == KP_KEY_ECDSA_P384 ? NID_secp384r1
                                            : NID_undef;
    if (curve == NID_undef) {
        return X509_set_pubkey(cert, key);
    }
    unsigned char point[1 + 2 * 66];
    size_t point_len = 0;
    if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof(point), &point_len)) {
        return 0;
    }
    unsigned char *owned = OPENSSL_memdup(point, point_len);
    if (owned == NULL) {
        return 0;
    }
    /* set0: the X509_PUBKEY takes the encoding; the OIDs are static. */
    if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                V_ASN1_OBJECT, OBJ_nid2obj(curve), owned, (int)point_len)) {
        OPENSSL_free(owned);
        return 0;
    }
    return 1;
}

const EVP_MD *kp_crypto_digest_for(EVP_PKEY *signing_key)
{
    return kp_key_type_of(signing_key) == KP_KEY_ECDSA_P384 ? EVP_sha384() : EVP_sha256();
}

enum kp_result kp_cert_issue(const struct kp_cert_template *tmpl, EVP_PKEY *subject_key,
                             X509 *issuer_cert, EVP_PKEY *issuer_key, X509 **out,
                             struct kp_error *err)
{
    *out = NULL;
    if (tmpl->not_after <= tmpl->not_before) {
        return kp_error_set(err, KP_ERR_INVALID, "certificate '%s': NotAfter is not after "
                            "NotBefore", tmpl->common_name);
    }
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    X509 *cert = X509_new();
    X509_NAME *subject = kp_crypto_subject(tmpl);
    EVP_PKEY *signing_key = issuer_cert != NULL ? issuer_key : subject_key;
    if (cert == NULL || subject == NULL || !X509_set_version(cert, X509_VERSION_3) ||
        !set_serial(cert, tmpl->serial) || !X509_set_subject_name(cert, subject) ||
        !X509_set_issuer_name(cert, issuer_cert != NULL ? X509_get_subject_name(issuer_cert)
                                                        : subject) ||
        ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)tmpl->not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)tmpl->not_after) == NULL ||
        !set_public_key(cert, subject_key)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot build certificate '%s'",
                              tmpl->common_name);
        goto done;
    }
    if (!add_key_usage(cert, tmpl->key_usage) ||
        (tmpl->ext_key_usage != 0 && !add_ext_key_usage(cert, tmpl->ext_key_usage)) ||
        !add_basic_constraints(cert, tmpl->is_ca) || (tmpl->is_ca && !add_subject_key_id(cert)) ||
        (issuer_cert != NULL && !add_authority_key_id(cert, issuer_cert)) ||
        !add_subject_alt_names(cert, tmpl)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot add extensions to certificate '%s'",
                              tmpl->common_name);
        goto done;
    }
    if (X509_sign(cert, signing_key, kp_crypto_digest_for(signing_key)) <= 0) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot sign certificate '%s'",
                              tmpl->common_name);
        goto done;
    }
    *out = cert;
    cert = NULL;
done:
    X509_NAME_free(subject);
    X509_free(cert);
    return rc;
}

enum kp_result kp_cert_reissue(X509 *existing, EVP_PKEY *subject_key, X509 *issuer_cert,
                               EVP_PKEY *issuer_key, int64_t not_before, int64_t not_after,
                               X509 **out, struct kp_error *err)
{
    *out = NULL;
    char subject_text[256];
    kp_name_to_string(X509_get_subject_name(existing), subject_text, sizeof(subject_text));
    if (not_after <= not_before) {
        return kp_error_set(err, KP_ERR_INVALID, "certificate '%s': NotAfter is not after "
                            "NotBefore", subject_text);
    }
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    X509 *cert = X509_new();
    if (cert == NULL || !X509_set_version(cert, X509_VERSION_3) || !set_serial(cert, 0) ||
        !X509_set_subject_name(cert, X509_get_subject_name(existing)) ||
        !X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert)) ||
        ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) == NULL ||
        !set_public_key(cert, subject_key)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot build certificate '%s'",
                              subject_text);
        goto done;
    }
    /* Go's extension order; the AKID (new issuer key) goes between BasicConstraints and SAN. */
    static const int copied_before_akid[] = {NID_key_usage, NID_ext_key_usage,
                                             NID_basic_constraints};
    for (size_t i = 0; i < sizeof(copied_before_akid) / sizeof(copied_before_akid[0]); i++) {
        int index = X509_get_ext_by_NID(existing, copied_before_akid[i], -1);
        if (index >= 0 && !X509_add_ext(cert, X509_get_ext(existing, index), -1)) {
            rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot copy extensions of '%s'",
                                  subject_text);
            goto done;
        }
    }
    int san = X509_get_ext_by_NID(existing, NID_subject_alt_name, -1);
    if (!add_authority_key_id(cert, issuer_cert) ||
        (san >= 0 && !X509_add_ext(cert, X509_get_ext(existing, san), -1))) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot copy extensions of '%s'",
                              subject_text);
        goto done;
    }
    if (X509_sign(cert, issuer_key, kp_crypto_digest_for(issuer_key)) <= 0) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot sign certificate '%s'", subject_text);
        goto done;
    }
    *out = cert;
    cert = NULL;
done:
    X509_free(cert);
    return rc;
}

void kp_name_to_string(const X509_NAME *name, char *out, size_t size)
{
    snprintf(out, size, "%s", "");
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return;
    }
    /* RFC 2253 escaping, but UTF-8 characters printed as they are. */
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);
        snprintf(out, size, "%.*s", (int)len, data);
    }
    BIO_free(bio);
    ERR_clear_error();
}

void kp_cert_serial_hex(X509 *cert, char *out, size_t size)
{
    snprintf(out, size, "%s", "");
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = serial != NULL ? BN_bn2hex(serial) : NULL;
    if (hex != NULL) {
        snprintf(out, size, "%s", hex);
    }
    OPENSSL_free(hex);
    BN_free(serial);
}

static void hex_encode(const unsigned char *data, size_t len, char *out, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    size_t used = 0;
    for (size_t i = 0; i < len && used + 2 < size; i++) {
        out[used++] = digits[data[i] >> 4];
        out[used++] = digits[data[i] & 0xf];
    }
    if (size > 0) {
        out[used] = '\0';
    }
}

void kp_cert_fingerprint(X509 *cert, const char *digest, char *out, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const EVP_MD *type = strcmp(digest, "sha1") == 0 ? EVP_sha1() : EVP_sha256();
    if (!X509_digest(cert, type, md, &md_len)) {
        ERR_clear_error();
        snprintf(out, size, "%s", "");
        return;
    }
    hex_encode(md, md_len, out, size);
}

enum kp_result kp_key_spki_sha256(EVP_PKEY *key, char *out, size_t size, struct kp_error *err)
{
    ERR_clear_error();
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    if (len <= 0) {
        return kp_error_openssl(err, KP_ERR_INTERNAL, "cannot encode the public key");
    }
    unsigned char md[32];
    unsigned int md_len = 0;
    int ok = EVP_Digest(der, (size_t)len, md, &md_len, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok) {
        return kp_error_openssl(err, KP_ERR_INTERNAL, "cannot hash the public key");
    }
    hex_encode(md, md_len, out, size);
    return KP_OK;
}

static void name_entry_text(X509_NAME_ENTRY *entry, char *out, size_t size)
{
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (len < 0) {
        snprintf(out, size, "%s", "");
        ERR_clear_error();
        return;
    }
    snprintf(out, size, "%.*s", len, (const char *)utf8);
    OPENSSL_free(utf8);
}

void kp_cert_common_name(X509 *cert, char *out, size_t size)
{
    X509_NAME *subject = X509_get_subject_name(cert);
    /* Go takes the last CN when there are several; so do we. */
    int index = -1;
    int found = -1;
    while ((index = X509_NAME_get_index_by_NID(subject, NID_commonName, index)) >= 0) {
        found = index;
    }
    if (found < 0) {
        snprintf(out, size, "%s", "");
        return;
    }
    name_entry_text(X509_NAME_get_entry(subject, found), out, size);
}

enum kp_result kp_cert_organizations(X509 *cert, struct kp_strlist *list, struct kp_error *err)
{
    X509_NAME *subject = X509_get_subject_name(cert);
    int index = -1;
    while ((index = X509_NAME_get_index_by_NID(subject, NID_organizationName, index)) >= 0) {
        char value[1024];
        name_entry_text(X509_NAME_get_entry(subject, index), value, sizeof(value));
        enum kp_result rc = kp_strlist_add(list, value, err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

enum kp_result kp_cert_sans(X509 *cert, struct kp_strlist *dns, struct kp_strlist *ips,
                            struct kp_error *err)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    ERR_clear_error();
    if (names == NULL) {
        return KP_OK;
    }
    enum kp_result rc = KP_OK;
    for (int i = 0; rc == KP_OK && i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        int type = 0;
        ASN1_STRING *value = GENERAL_NAME_get0_value(name, &type);
        if (type == GEN_DNS && dns != NULL) {
            rc = kp_strlist_addn(dns, (const char *)ASN1_STRING_get0_data(value),
                                 (size_t)ASN1_STRING_length(value), err);
        } else if (type == GEN_IPADD && ips != NULL) {
            struct kp_ip ip = {0};
            int len = ASN1_STRING_length(value);
            if (len == 4 || len == 16) {
                ip.family = len == 4 ? AF_INET : AF_INET6;
                memcpy(ip.bytes, ASN1_STRING_get0_data(value), (size_t)len);
                char text[KP_IP_TEXT_MAX];
                kp_ip_format(&ip, text, sizeof(text));
                rc = kp_strlist_add(ips, text, err);
            }
        }
    }
    GENERAL_NAMES_free(names);
    return rc;
}

static int64_t asn1_time_to_unix(const ASN1_TIME *value)
{
    struct tm tm;
    if (value == NULL || !ASN1_TIME_to_tm(value, &tm)) {
        ERR_clear_error();
        return 0;
    }
    return (int64_t)timegm(&tm);
}

int64_t kp_cert_not_before(X509 *cert)
{
    return asn1_time_to_unix(X509_get0_notBefore(cert));
}

int64_t kp_cert_not_after(X509 *cert)
{
    return asn1_time_to_unix(X509_get0_notAfter(cert));
}

bool kp_cert_is_ca(X509 *cert)
{
    /* X509_get_extension_flags caches the parsed extensions; EXFLAG_CA = BasicConstraints CA. */
    return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
}

unsigned kp_cert_ext_key_usage(X509 *cert, bool *has_extension)
{
    uint32_t flags = X509_get_extension_flags(cert);
    *has_extension = (flags & EXFLAG_XKUSAGE) != 0;
    uint32_t usage = X509_get_extended_key_usage(cert);
    unsigned result = 0;
    if (*has_extension && (usage & XKU_SSL_SERVER)) {
        result |= KP_EKU_SERVER_AUTH;
    }
    if (*has_extension && (usage & XKU_SSL_CLIENT)) {
        result |= KP_EKU_CLIENT_AUTH;
    }
    return result;
}

unsigned kp_cert_key_usage(X509 *cert)
{
    uint32_t usage = X509_get_key_usage(cert);
    if (usage == UINT32_MAX) {
        return 0; /* no extension */
    }
    unsigned result = 0;
    result |= (usage & KU_DIGITAL_SIGNATURE) ? KP_KU_DIGITAL_SIGNATURE : 0;
    result |= (usage & KU_KEY_ENCIPHERMENT) ? KP_KU_KEY_ENCIPHERMENT : 0;
    result |= (usage & KU_KEY_CERT_SIGN) ? KP_KU_CERT_SIGN : 0;
    result |= (usage & KU_CRL_SIGN) ? KP_KU_CRL_SIGN : 0;
    return result;
}

bool kp_cert_covers_dns(X509 *cert, const char *name)
{
    int result = X509_check_host(cert, name, strlen(name), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                                 NULL);
    ERR_clear_error();
    return result == 1;
}

bool kp_cert_covers_ip(X509 *cert, const struct kp_ip *ip)
{
    int result = X509_check_ip(cert, ip->bytes, kp_ip_len(ip), 0);
    ERR_clear_error();
    return result == 1;
}

bool kp_cert_matches_key(X509 *cert, EVP_PKEY *key)
{
    EVP_PKEY *public_key = X509_get0_pubkey(cert);
    return public_key != NULL && kp_key_public_equal(public_key, key);
}

enum kp_result kp_cert_verify_chain(X509 *leaf, X509 *ca, STACK_OF(X509) *untrusted, int64_t at,
                                    bool *ok, char *reason, size_t reason_size,
                                    struct kp_error *err)
{
    *ok = false;
    snprintf(reason, reason_size, "%s", "");
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL || !X509_STORE_add_cert(store, ca) ||
        !X509_STORE_CTX_init(ctx, store, leaf, untrusted)) {
        rc = kp_error_openssl(err, KP_ERR_IO, "cannot set up certificate verification");
        goto done;
    }
    /* The given CA is the anchor even if it is not self-signed (an intermediate kept as CA). */
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
    if (at == KP_VERIFY_ANY_TIME) {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    } else {
        X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
    }
    int verdict = X509_verify_cert(ctx);
    if (verdict == 1) {
        *ok = true;
    } else if (verdict == 0) {
        int code = X509_STORE_CTX_get_error(ctx);
        snprintf(reason, reason_size, "%s", X509_verify_cert_error_string(code));
    } else {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "certificate verification could not run");
    }
    ERR_clear_error();
done:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}
