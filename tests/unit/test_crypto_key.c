#include "testutil.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_generate_encode_parse),
        cmocka_unit_test(test_rsa_keys_differ_and_are_well_formed),
        cmocka_unit_test(test_parse_pkcs8),
        cmocka_unit_test(test_parse_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
