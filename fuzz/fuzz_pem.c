/*
 * fuzz_pem - PEM input of certificates and keys (crypto/crypto.h): kp_certs_from_pem,
 * kp_key_from_pem and kp_pubkey_from_pem, on a NUL-terminated copy of the input (kp_key_from_pem
 * scans the text as a C string), then the questions kpki asks of what they return.
 *
 * Inputs without "-----BEGIN" are taken as DER: the harness wraps them into CERTIFICATE,
 * PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1), EC PRIVATE KEY (SEC1) and PUBLIC KEY blocks,
 * so that mutations reach the ASN.1 and the accessors instead of dying in base64. The corpus
 * holds both PEM files and raw DER.
 *
 * Invariants checked beyond "no crash, no leak, no UB":
 *   - an accepted certificate file yields at least one certificate, and the first one, written
 *     back with kp_cert_to_pem, reads back as the same certificate;
 *   - an accepted RSA or ECDSA key of a type kpki supports writes back (kp_key_to_pem,
 *     kp_pubkey_to_pem) and reads back as the same key.
 * Nothing here reads the clock: chain verification runs with KP_VERIFY_ANY_TIME.
 */
#include <stdbool.h>

#include "crypto/crypto.h"
#include "fuzz.h"

static void inspect_cert(X509 *cert, STACK_OF(X509) *chain, X509 *anchor)
{
    struct kp_error err;
    char name[256];
    kp_cert_common_name(cert, name, sizeof(name));
    char tiny[2];
    kp_cert_common_name(cert, tiny, sizeof(tiny));

    struct kp_strlist organizations = {0};
    struct kp_strlist dns = {0};
    struct kp_strlist ips = {0};
    /* Invalid: more names than a kp_strlist holds (KP_STRLIST_MAX). */
    enum kp_result rc = kp_cert_organizations(cert, &organizations, &err);
    FUZZ_CHECK(rc == KP_OK || rc == KP_ERR_INVALID);
    rc = kp_cert_sans(cert, &dns, &ips, &err);
    FUZZ_CHECK(rc == KP_OK || rc == KP_ERR_INVALID);
    kp_strlist_wipe(&organizations);
    kp_strlist_wipe(&dns);
    kp_strlist_wipe(&ips);

    (void)kp_cert_not_before(cert);
    (void)kp_cert_not_after(cert);
    (void)kp_cert_is_ca(cert);
    bool has_eku = false;
    (void)kp_cert_ext_key_usage(cert, &has_eku);
    (void)kp_cert_key_usage(cert);
    (void)kp_cert_covers_dns(cert, "kubernetes.default.svc.cluster.local");
    struct kp_ip loopback;
    if (kp_ip_parse("127.0.0.1", &loopback)) {
        (void)kp_cert_covers_ip(cert, &loopback);
    }

    bool ok = false;
    char reason[256];
    /* A verdict either way is fine; "could not run" is too, for a certificate OpenSSL cannot
     * set up a verification for. Only consistency is checked. */
    if (kp_cert_verify_chain(cert, anchor, chain, KP_VERIFY_ANY_TIME, &ok, reason, sizeof(reason),
                             &err) == KP_OK) {
        FUZZ_CHECK(ok == (reason[0] == '\0'));
    } else {
        FUZZ_CHECK(!ok);
    }
}

static void check_certs(const char *text, size_t len, EVP_PKEY *key)
{
    struct kp_error err;
    STACK_OF(X509) *certs = NULL;
    if (kp_certs_from_pem(text, len, "fuzz.crt", &certs, &err) != KP_OK) {
        FUZZ_CHECK(certs == NULL);
        return;
    }
    int count = sk_X509_num(certs);
    FUZZ_CHECK(count >= 1);
    X509 *anchor = sk_X509_value(certs, count - 1);
    for (int i = 0; i < count; i++) {
        X509 *cert = sk_X509_value(certs, i);
        inspect_cert(cert, certs, anchor);
        if (key != NULL) {
            (void)kp_cert_matches_key(cert, key);
        }
    }

    X509 *first = sk_X509_value(certs, 0);
    char *pem = NULL;
    size_t pem_len = 0;
    if (kp_cert_to_pem(first, &pem, &pem_len, &err) == KP_OK) {
        X509 *again = NULL;
        if (kp_cert_from_pem(pem, pem_len, "rewritten", &again, &err) != KP_OK) {
            fprintf(stderr, "rewritten certificate does not read back: %s\n", err.message);
            abort();
        }
        FUZZ_CHECK(X509_cmp(first, again) == 0);
        X509_free(again);
        free(pem);
    }
    sk_X509_pop_free(certs, X509_free);
}

static void check_key_round_trip(EVP_PKEY *key)
{
    struct kp_error err;
    char *pem = NULL;
    size_t pem_len = 0;
    if (kp_key_to_pem(key, &pem, &pem_len, &err) != KP_OK) {
        fprintf(stderr, "supported key does not write: %s\n", err.message);
        abort();
    }
    EVP_PKEY *again = NULL;
    if (kp_key_from_pem(pem, pem_len, "rewritten", &again, &err) != KP_OK) {
        fprintf(stderr, "rewritten key does not read back: %s\n", err.message);
        abort();
    }
    FUZZ_CHECK(kp_key_public_equal(key, again));
    FUZZ_CHECK(kp_key_type_of(again) == kp_key_type_of(key));
    EVP_PKEY_free(again);
    kp_secret_free(pem, pem_len);
}

static void check_pubkey_round_trip(EVP_PKEY *key, bool must_succeed)
{
    struct kp_error err;
    char *pem = NULL;
    size_t pem_len = 0;
    if (kp_pubkey_to_pem(key, &pem, &pem_len, &err) != KP_OK) {
        FUZZ_CHECK(!must_succeed);
        return;
    }
    EVP_PKEY *again = NULL;
    if (kp_pubkey_from_pem(pem, pem_len, "rewritten", &again, &err) != KP_OK) {
        FUZZ_CHECK(!must_succeed);
    } else {
        FUZZ_CHECK(!must_succeed || kp_key_public_equal(key, again));
        EVP_PKEY_free(again);
    }
    free(pem);
}

static void check_text(const char *text, size_t len)
{
    struct kp_error err;
    EVP_PKEY *key = NULL;
    if (kp_key_from_pem(text, len, "fuzz.key", &key, &err) == KP_OK) {
        char description[64];
        kp_key_describe(key, description, sizeof(description));
        bool supported = kp_key_type_of(key) != KP_KEY_UNKNOWN;
        if (supported) {
            check_key_round_trip(key);
        }
        check_pubkey_round_trip(key, supported);
    } else {
        FUZZ_CHECK(key == NULL);
    }

    EVP_PKEY *public_key = NULL;
    if (kp_pubkey_from_pem(text, len, "fuzz.pub", &public_key, &err) == KP_OK) {
        char description[64];
        kp_key_describe(public_key, description, sizeof(description));
        check_pubkey_round_trip(public_key, kp_key_type_of(public_key) != KP_KEY_UNKNOWN);
        if (key != NULL) {
            (void)kp_key_public_equal(key, public_key);
        }
        EVP_PKEY_free(public_key);
    }

    check_certs(text, len, key);
    EVP_PKEY_free(key);
}

/* Wraps DER bytes into a PEM block with 64-column lines, as PEM writers do. */
static void check_der_as(const uint8_t *data, size_t size, const char *label)
{
    struct kp_error err;
    char *encoded = NULL;
    size_t encoded_len = 0;
    if (kp_base64_encode(data, size, &encoded, &encoded_len, &err) != KP_OK) {
        return;
    }
    size_t capacity = encoded_len + encoded_len / 64 + 2 * strlen(label) + 64;
    char *pem = malloc(capacity);
    FUZZ_CHECK(pem != NULL);
    size_t used = (size_t)snprintf(pem, capacity, "-----BEGIN %s-----\n", label);
    for (size_t offset = 0; offset < encoded_len; offset += 64) {
        size_t line = encoded_len - offset < 64 ? encoded_len - offset : 64;
        memcpy(pem + used, encoded + offset, line);
        used += line;
        pem[used++] = '\n';
    }
    used += (size_t)snprintf(pem + used, capacity - used, "-----END %s-----\n", label);
    FUZZ_CHECK(used < capacity);
    check_text(pem, used);
    free(pem);
    free(encoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    if (strstr(text, "-----BEGIN") != NULL || size == 0) {
        check_text(text, size);
    } else {
        static const char *const labels[] = {"CERTIFICATE", "PRIVATE KEY", "RSA PRIVATE KEY",
                                             "EC PRIVATE KEY", "PUBLIC KEY"};
        for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
            check_der_as(data, size, labels[i]);
        }
    }
    free(text);
    return 0;
}
