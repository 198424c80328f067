#include "testutil.h"

#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

static void test_type_names(void **state)
{
    (void)state;
    enum kp_key_type type;
    assert_true(kp_key_type_parse("rsa-2048", &type));
    assert_int_equal(type, KP_KEY_RSA_2048);
    assert_true(kp_key_type_parse("ECDSA-P256", &type)); /* kubeadm's spelling */
    assert_int_equal(type, KP_KEY_ECDSA_P256);
    assert_true(kp_key_type_parse("ecdsa-p384", &type));
    assert_false(kp_key_type_parse("rsa-1024", &type));
    assert_false(kp_key_type_parse("ed25519", &type));
    assert_false(kp_key_type_parse("", &type));
    assert_string_equal(kp_key_type_name(KP_KEY_RSA_4096), "rsa-4096");
    assert_true(kp_key_type_is_rsa(KP_KEY_RSA_3072));
    assert_false(kp_key_type_is_rsa(KP_KEY_ECDSA_P256));
}

/* Every key type: generated, of its type, encoded as Kubernetes writes it, and read back. */
static void test_generate_encode_parse(void **state)
{
    (void)state;
    const struct {
        enum kp_key_type type;
        const char *pem_header;
        const char *description;
    } rows[] = {
        {KP_KEY_RSA_2048, "-----BEGIN RSA PRIVATE KEY-----", "RSA 2048"},
        {KP_KEY_RSA_3072, "-----BEGIN RSA PRIVATE KEY-----", "RSA 3072"},
        {KP_KEY_RSA_4096, "-----BEGIN RSA PRIVATE KEY-----", "RSA 4096"},
        {KP_KEY_ECDSA_P256, "-----BEGIN EC PRIVATE KEY-----", "ECDSA P-256"},
        {KP_KEY_ECDSA_P384, "-----BEGIN EC PRIVATE KEY-----", "ECDSA P-384"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        EVP_PKEY *key = NULL;
        struct kp_error err;
        assert_int_equal(kp_key_generate(rows[i].type, &key, &err), KP_OK);
        assert_int_equal(kp_key_type_of(key), rows[i].type);
        char description[32];
        kp_key_describe(key, description, sizeof(description));
        assert_string_equal(description, rows[i].description);
        /* OpenSSL's own full key check (for RSA: primality of p and q, d, CRT values). */
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new(key, NULL);
        assert_int_equal(EVP_PKEY_check(check), 1);
        EVP_PKEY_CTX_free(check);
        char *pem = NULL;
        size_t len = 0;
        assert_int_equal(kp_key_to_pem(key, &pem, &len, &err), KP_OK);
        assert_int_equal(strncmp(pem, rows[i].pem_header, strlen(rows[i].pem_header)), 0);
        EVP_PKEY *parsed = NULL;
        assert_int_equal(kp_key_from_pem(pem, len, "test", &parsed, &err), KP_OK);
        assert_true(kp_key_public_equal(key, parsed));
        char *pub = NULL;
        size_t pub_len = 0;
        assert_int_equal(kp_pubkey_to_pem(key, &pub, &pub_len, &err), KP_OK);
        assert_int_equal(strncmp(pub, "-----BEGIN PUBLIC KEY-----", 26), 0);
        EVP_PKEY *public_only = NULL;
        assert_int_equal(kp_pubkey_from_pem(pub, pub_len, "pub", &public_only, &err), KP_OK);
        assert_true(kp_key_public_equal(key, public_only));
        EVP_PKEY_free(public_only);
        free(pub);
        kp_secret_free(pem, len);
        EVP_PKEY_free(parsed);
        EVP_PKEY_free(key);
    }
}

static void test_rsa_keys_differ_and_are_well_formed(void **state)
{
    (void)state;
    EVP_PKEY *a = NULL, *b = NULL;
    struct kp_error err;
    assert_int_equal(kp_rsa_generate(2048, &a, &err), KP_OK);
    assert_int_equal(kp_rsa_generate(2048, &b, &err), KP_OK);
    assert_false(kp_key_public_equal(a, b));
    BIGNUM *e = NULL;
    assert_true(EVP_PKEY_get_bn_param(a, "e", &e));
    assert_true(BN_is_word(e, 65537));
    BN_free(e);
    assert_int_equal(EVP_PKEY_get_bits(a), 2048);
    EVP_PKEY *small = NULL;
    assert_int_equal(kp_rsa_generate(1024, &small, &err), KP_ERR_INVALID);
    assert_null(small);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

/* PKCS#8 and the other encodings kubeadm's readers accept. */
static void test_parse_pkcs8(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    struct kp_error err;
    assert_int_equal(kp_key_generate(KP_KEY_ECDSA_P256, &key, &err), KP_OK);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL));
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *text = strndup(data, (size_t)len);
    assert_non_null(strstr(text, "BEGIN PRIVATE KEY"));
    EVP_PKEY *parsed = NULL;
    assert_int_equal(kp_key_from_pem(text, strlen(text), "pkcs8", &parsed, &err), KP_OK);
    assert_true(kp_key_public_equal(key, parsed));
    EVP_PKEY_free(parsed);
    free(text);
    BIO_free(bio);
    EVP_PKEY_free(key);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    const struct {
        const char *text;
        const char *message;
    } rows[] = {
        {"", "no PEM private key block"},
        {"not a key", "no PEM private key block"},
        {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
         "no PEM private key block"},
        {"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n",
         "cannot parse the private key"},
        {"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n", "cannot parse the private key"},
        {"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
         "encrypted"},
        {"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
         "00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
         "encrypted"},
        /* "ENCRYPTED" in a comment before an ordinary key is not an encrypted key */
        {"ENCRYPTED? no.\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
         "cannot parse the private key"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        EVP_PKEY *key = NULL;
        struct kp_error err;
        kp_error_clear(&err);
        assert_int_equal(kp_key_from_pem(rows[i].text, strlen(rows[i].text), "f.key", &key, &err),
                         KP_ERR_INVALID);
        assert_null(key);
        if (strstr(err.message, rows[i].message) == NULL ||
            strstr(err.message, "f.key") == NULL) {
            fail_msg("row %zu: unexpected message '%s'", i, err.message);
        }
    }
    EVP_PKEY *key = NULL;
    struct kp_error err;
    assert_int_equal(kp_pubkey_from_pem("junk", 4, "p.pub", &key, &err), KP_ERR_INVALID);
}

/* ---- kp_pubkeys_from_pem: a --service-account-key-file bundle ---- */

static void append(char **text, const char *more, size_t more_len)
{
    size_t used = *text ? strlen(*text) : 0;
    char *grown = realloc(*text, used + more_len + 1);
    assert_non_null(grown);
    memcpy(grown + used, more, more_len);
    grown[used + more_len] = '\0';
    *text = grown;
}

/* Appends what a BIO holds (PEM written by OpenSSL) to text. */
static void append_bio(char **text, BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    assert_true(len > 0);
    append(text, data, (size_t)len);
    BIO_free(bio);
}

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)"bundle", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    return cert;
}

static bool has_private_part(EVP_PKEY *key)
{
    BIGNUM *bn = NULL;
    bool has = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1 ||
               EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_D, &bn) == 1;
    BN_clear_free(bn);
    return has;
}

static void test_pubkey_bundle(void **state)
{
    (void)state;
    struct kp_error err;
    EVP_PKEY *rsa = NULL, *p256 = NULL, *p384 = NULL, *rsa2 = NULL;
    assert_int_equal(kp_key_generate(KP_KEY_RSA_2048, &rsa, &err), KP_OK);
    assert_int_equal(kp_key_generate(KP_KEY_ECDSA_P256, &p256, &err), KP_OK);
    assert_int_equal(kp_key_generate(KP_KEY_ECDSA_P384, &p384, &err), KP_OK);
    assert_int_equal(kp_key_generate(KP_KEY_RSA_2048, &rsa2, &err), KP_OK);
    /* In order: a PKIX public key, EC parameters (skipped), a SEC1 private key, a certificate,
     * a PKCS#1 "RSA PUBLIC KEY", with text between blocks as bundles often have. */
    char *text = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa), 1);
    append_bio(&text, bio);
    const char *params = "# the curve\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
                         "-----END EC PARAMETERS-----\n";
    append(&text, params, strlen(params));
    char *private_pem = NULL;
    size_t private_len = 0;
    assert_int_equal(kp_key_to_pem(p256, &private_pem, &private_len, &err), KP_OK);
    append(&text, private_pem, private_len);
    kp_secret_free(private_pem, private_len);
    X509 *cert = self_signed(p384);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    append_bio(&text, bio);
    X509_free(cert);
    OSSL_ENCODER_CTX *encoder = OSSL_ENCODER_CTX_new_for_pkey(rsa2, EVP_PKEY_PUBLIC_KEY, "PEM",
                                                              "type-specific", NULL);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(OSSL_ENCODER_to_bio(encoder, bio), 1);
    OSSL_ENCODER_CTX_free(encoder);
    append_bio(&text, bio);
    assert_non_null(strstr(text, "-----BEGIN RSA PUBLIC KEY-----"));

    EVP_PKEY **keys = NULL;
    size_t count = 0;
    assert_int_equal(kp_pubkeys_from_pem(text, strlen(text), "bundle.pub", &keys, &count, &err),
                     KP_OK);
    assert_int_equal(count, 4);
    EVP_PKEY *want[] = {rsa, p256, p384, rsa2};
    for (size_t i = 0; i < count; i++) {
        assert_true(kp_key_public_equal(keys[i], want[i]));
        assert_false(has_private_part(keys[i]));
        EVP_PKEY_free(keys[i]);
    }
    free(keys);
    assert_true(has_private_part(p256)); /* the check above can tell */

    /* One block that does not parse spoils the file: no key is dropped silently. */
    const char *bad = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n"
                      "-----END PUBLIC KEY-----\n";
    append(&text, bad, strlen(bad));
    assert_int_equal(kp_pubkeys_from_pem(text, strlen(text), "bundle.pub", &keys, &count, &err),
                     KP_ERR_INVALID);
    assert_null(keys);
    assert_int_equal(count, 0);
    assert_non_null(strstr(err.message, "bundle.pub: PEM block 6 (PUBLIC KEY) does not parse"));
    free(text);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa2);
}

static void test_pubkey_bundle_rejects(void **state)
{
    (void)state;
    const struct {
        const char *text;
        const char *message;
    } rows[] = {
        {"", "sa.pub: no public key, private key or certificate found"},
        {"garbage\n", "sa.pub: no public key, private key or certificate found"},
        {"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
         "sa.pub: no public key, private key or certificate found"},
        {"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
         "sa.pub: no public key, private key or certificate found"},
        {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
         "sa.pub: PEM block 1 (CERTIFICATE) does not parse"},
        {"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n",
         "sa.pub: PEM block 1 (RSA PRIVATE KEY) does not parse"},
        {"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n", "sa.pub: corrupt or truncated PEM"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        EVP_PKEY **keys = NULL;
        size_t count = 0;
        struct kp_error err;
        kp_error_clear(&err);
        assert_int_equal(kp_pubkeys_from_pem(rows[i].text, strlen(rows[i].text), "sa.pub", &keys,
                                             &count, &err),
                         KP_ERR_INVALID);
        assert_null(keys);
        if (strstr(err.message, rows[i].message) == NULL) {
            fail_msg("row %zu: unexpected message '%s'", i, err.message);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_generate_encode_parse),
        cmocka_unit_test(test_rsa_keys_differ_and_are_well_formed),
        cmocka_unit_test(test_parse_pkcs8),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_pubkey_bundle),
        cmocka_unit_test(test_pubkey_bundle_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
