/*
 * jws: signing and verifying compact JWS service-account tokens (jwt/jwt.h, src/jwt/jws.c).
 *
 * Tokens under test are mostly built here, independently of kpki: base64url by OpenSSL's
 * EVP_EncodeBlock with the alphabet swapped, signatures by EVP_DigestSign (and EVP_Q_mac for the
 * HMAC confusion attack), ECDSA R || S by ECDSA_SIG. The rejection table pins one verdict per
 * row. Every bit flip of a kpki token is refused. The JWKS parameters are checked by rebuilding
 * the key from them.
 *
 * Run as `test_jws tool <command> ...` the program is the helper tests/integration/it_jws.sh
 * drives (kid, sign, verify, jwks on PEM files); see tool_main.
 */
#include "testutil.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "jwt/jwt.h"

#define NOW 1750000000
#define LEEWAY 60

/* ---- independent helpers (no kpki code) ---- */

/* base64url without padding by OpenSSL's base64 encoder. Free with free(). */
static char *b64url(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    assert_non_null(out);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=') {
        n--;
    }
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+') {
            out[i] = '-';
        } else if (out[i] == '/') {
            out[i] = '_';
        }
    }
    return out;
}

/* Decodes base64url (kp_jwt_base64url_decode is tested in test_jwt). Free with free().
 * noinline: once inlined, GCC 12's -Wdangling-pointer mistakes the returned buffer for the
 * local variable whose address was passed to the decoder. */
__attribute__((noinline)) static unsigned char *unb64url(const char *text, size_t len, size_t *out_len)
{
    unsigned char *out = NULL;
    struct kp_error err;
    assert_int_equal(kp_jwt_base64url_decode(text, len, &out, out_len, &err), KP_OK);
    return out;
}

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t size = strlen(a) + strlen(b) + strlen(c) + 3;
    char *out = malloc(size);
    assert_non_null(out);
    snprintf(out, size, "%s.%s.%s", a, b, c);
    return out;
}

/* A signature by EVP_DigestSign (DER for ECDSA); pss selects RSASSA-PSS. */
static unsigned char *sign_bytes(EVP_PKEY *key, const char *digest, bool pss, const char *input,
                                 size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, digest, NULL, NULL, key, NULL), 1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    }
    assert_int_equal(
        EVP_DigestSign(ctx, NULL, sig_len, (const unsigned char *)input, strlen(input)), 1);
    unsigned char *sig = malloc(*sig_len);
    assert_non_null(sig);
    assert_int_equal(EVP_DigestSign(ctx, sig, sig_len, (const unsigned char *)input, strlen(input)),
                     1);
    EVP_MD_CTX_free(ctx);
    return sig;
}

/* RSASSA-PKCS1-v1_5 by EVP_PKEY_sign over SHA-256(input), wrapped in a DigestInfo naming
 * digest_info_md (say "SHA512-256", another 32-byte digest), or bare (NULL: no DigestInfo at
 * all). Both are signatures a verifier that does not check the DigestInfo would accept. */
static unsigned char *sign_sha256_as(EVP_PKEY *key, const char *digest_info_md, const char *input,
                                     size_t *sig_len)
{
    unsigned char digest[32];
    unsigned int digest_len = 0;
    assert_int_equal(EVP_Digest(input, strlen(input), digest, &digest_len, EVP_sha256(), NULL), 1);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    EVP_MD *md = digest_info_md ? EVP_MD_fetch(NULL, digest_info_md, NULL) : NULL;
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_sign_init(pctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
    if (digest_info_md != NULL) {
        assert_non_null(md);
        assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, md), 1);
    }
    assert_int_equal(EVP_PKEY_sign(pctx, NULL, sig_len, digest, digest_len), 1);
    unsigned char *sig = malloc(*sig_len);
    assert_non_null(sig);
    assert_int_equal(EVP_PKEY_sign(pctx, sig, sig_len, digest, digest_len), 1);
    EVP_MD_free(md);
    EVP_PKEY_CTX_free(pctx);
    return sig;
}

/* DER ECDSA-Sig-Value -> R || S of 2 * half bytes, in place into out. */
static void der_to_raw(const unsigned char *der, size_t der_len, size_t half, unsigned char *out)
{
    const unsigned char *cursor = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &cursor, (long)der_len);
    assert_non_null(sig);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, (int)half), (int)half);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + half, (int)half), (int)half);
    ECDSA_SIG_free(sig);
}

/* Independent key id: SHA-256 of i2d_PUBKEY, base64url. */
static void independent_kid(EVP_PKEY *key, char *out, size_t size)
{
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(key, &der);
    assert_true(der_len > 0);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    assert_int_equal(EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL), 1);
    OPENSSL_free(der);
    char *text = b64url(md, md_len);
    snprintf(out, size, "%s", text);
    free(text);
}

/* ---- fixture keys ---- */

struct test_key {
    EVP_PKEY *priv;
    EVP_PKEY *pub; /* public only, read back from PKIX PEM as sa.pub would be */
    char *pub_pem;
    size_t pub_pem_len;
    char kid[64];
};

static struct test_key rsa, rsa_other, p256, p384;

static void make_key(enum kp_key_type type, struct test_key *key)
{
    struct kp_error err;
    memset(key, 0, sizeof(*key));
    if (kp_key_generate(type, &key->priv, &err) != KP_OK ||
        kp_pubkey_to_pem(key->priv, &key->pub_pem, &key->pub_pem_len, &err) != KP_OK ||
        kp_pubkey_from_pem(key->pub_pem, key->pub_pem_len, "test", &key->pub, &err) != KP_OK ||
        kp_jwt_key_id(key->pub, key->kid, sizeof(key->kid), &err) != KP_OK) {
        fail_msg("key setup: %s", err.message);
    }
}

static void drop_key(struct test_key *key)
{
    EVP_PKEY_free(key->priv);
    EVP_PKEY_free(key->pub);
    free(key->pub_pem);
}

static int group_setup(void **state)
{
    (void)state;
    make_key(KP_KEY_RSA_2048, &rsa);
    make_key(KP_KEY_RSA_2048, &rsa_other);
    make_key(KP_KEY_ECDSA_P256, &p256);
    make_key(KP_KEY_ECDSA_P384, &p384);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    drop_key(&rsa);
    drop_key(&rsa_other);
    drop_key(&p256);
    drop_key(&p384);
    return 0;
}

static struct kp_jwt_key verification_key(const struct test_key *key)
{
    struct kp_jwt_key out;
    memset(&out, 0, sizeof(out));
    out.key = key->pub;
    snprintf(out.kid, sizeof(out.kid), "%s", key->kid);
    return out;
}

/* Verifies and checks what every outcome promises; returns the verdict. */
static enum kp_jwt_verdict verify_token(const char *token, const struct kp_jwt_key *keys,
                                        size_t key_count, int64_t now, int64_t leeway)
{
    struct kp_jwt jwt;
    enum kp_jwt_verdict verdict = KP_JWT_VALID;
    struct kp_error err;
    kp_error_clear(&err);
    enum kp_result rc =
        kp_jwt_verify(token, strlen(token), keys, key_count, now, leeway, &jwt, &verdict, &err);
    if (rc != KP_OK) {
        fail_msg("kp_jwt_verify did not run: %s", err.message);
    }
    assert_int_equal(err.code, KP_OK);
    if (verdict == KP_JWT_VALID) {
        assert_true(json_is_object(jwt.header));
        assert_true(json_is_object(jwt.claims));
        assert_string_equal(err.message, "");
    } else {
        assert_null(jwt.header);
        assert_null(jwt.claims);
        assert_true(err.message[0] != '\0');
        /* The reason never quotes the token: no part of 8 characters or more appears. */
        const char *part = token;
        while (*part != '\0') {
            size_t part_len = strcspn(part, ".");
            if (part_len >= 8) {
                char copy[KP_ERROR_MESSAGE_MAX];
                snprintf(copy, sizeof(copy), "%.*s", (int)(part_len < 64 ? part_len : 64), part);
                if (strstr(err.message, copy) != NULL) {
                    fail_msg("message quotes the token: %s", err.message);
                }
            }
            part += part_len;
            if (*part == '.') {
                part++;
            }
        }
    }
    kp_jwt_wipe(&jwt);
    return verdict;
}

/* ---- tests ---- */

static void test_alg_for_key(void **state)
{
    (void)state;
    assert_string_equal(kp_jwt_alg_for_key(rsa.priv), "RS256");
    assert_string_equal(kp_jwt_alg_for_key(rsa.pub), "RS256");
    assert_string_equal(kp_jwt_alg_for_key(p256.pub), "ES256");
    assert_string_equal(kp_jwt_alg_for_key(p384.pub), "ES384");
    assert_null(kp_jwt_alg_for_key(NULL));

    EVP_PKEY *ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    EVP_PKEY *rsa512 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
    EVP_PKEY *pss = NULL;
    EVP_PKEY_CTX *pss_ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    assert_non_null(pss_ctx);
    assert_int_equal(EVP_PKEY_keygen_init(pss_ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(pss_ctx, 1024), 1);
    assert_int_equal(EVP_PKEY_keygen(pss_ctx, &pss), 1);
    EVP_PKEY_CTX_free(pss_ctx);
    assert_non_null(ed25519);
    assert_non_null(p521);
    assert_non_null(rsa512);
    assert_non_null(pss);
    assert_null(kp_jwt_alg_for_key(ed25519));
    assert_null(kp_jwt_alg_for_key(p521));
    assert_null(kp_jwt_alg_for_key(rsa512)); /* Go refuses RSA under 1024 bits */
    assert_null(kp_jwt_alg_for_key(pss));    /* a PSS-only key cannot make RS256 signatures */

    /* Keys kpki does not use are refused for signing, for the JWKS and never verify. */
    struct kp_error err;
    json_t *claims = json_pack("{s:s}", "sub", "x");
    char *token = NULL;
    size_t token_len = 0;
    assert_int_equal(kp_jwt_sign(ed25519, "k", claims, &token, &token_len, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "ED25519"));
    assert_null(token);
    assert_int_equal(kp_jwt_sign(NULL, "k", claims, &token, &token_len, &err), KP_ERR_INVALID);
    struct kp_jwt_key entry = {.key = p521, .kid = "p521"};
    json_t *jwks = NULL;
    assert_int_equal(kp_jwt_jwks(&entry, 1, &jwks, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "p521"));
    assert_null(jwks);
    json_decref(claims);
    EVP_PKEY_free(ed25519);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(rsa512);
    EVP_PKEY_free(pss);
}

static void test_key_id(void **state)
{
    (void)state;
    const struct test_key *keys[] = {&rsa, &rsa_other, &p256, &p384};
    for (size_t i = 0; i < 4; i++) {
        char expected[64];
        independent_kid(keys[i]->pub, expected, sizeof(expected));
        assert_string_equal(keys[i]->kid, expected);
        assert_int_equal(strlen(keys[i]->kid), 43);
        /* The private key has the same id: it is the public key's. */
        char from_private[44];
        struct kp_error err;
        assert_int_equal(kp_jwt_key_id(keys[i]->priv, from_private, sizeof(from_private), &err),
                         KP_OK);
        assert_string_equal(from_private, expected);
    }
    assert_string_not_equal(rsa.kid, rsa_other.kid);
    char small[43];
    struct kp_error err;
    assert_int_equal(kp_jwt_key_id(rsa.pub, small, sizeof(small), &err), KP_ERR_INTERNAL);
    assert_string_equal(small, "");
}

/* kpki signs; kpki verifies; an independent EVP_DigestVerify agrees; the header is exactly
 * {"alg":...,"kid":...} and the payload the claims' compact JSON. */
static void test_sign_verify_round_trip(void **state)
{
    (void)state;
    const struct {
        const struct test_key *key;
        const char *alg;
        const char *digest;
        size_t signature_len;
    } rows[] = {
        {&rsa, "RS256", "SHA256", 256},
        {&p256, "ES256", "SHA256", 64},
        {&p384, "ES384", "SHA384", 96},
    };
    struct kp_jwt_key keys[] = {verification_key(&rsa), verification_key(&p256),
                                verification_key(&p384)};
    for (size_t i = 0; i < 3; i++) {
        json_t *claims = json_pack("{s:s, s:s, s:[s], s:I, s:I, s:I, s:{s:s}}", "iss",
                                   "https://kubernetes.default.svc.cluster.local", "sub",
                                   "system:serviceaccount:default:builder", "aud", "api", "exp",
                                   (json_int_t)NOW + 3600, "iat", (json_int_t)NOW, "nbf",
                                   (json_int_t)NOW, "kubernetes.io", "namespace", "default");
        assert_non_null(claims);
        char *token = NULL;
        size_t token_len = 0;
        struct kp_error err;
        if (kp_jwt_sign(rows[i].key->priv, rows[i].key->kid, claims, &token, &token_len, &err) !=
            KP_OK) {
            fail_msg("sign %s: %s", rows[i].alg, err.message);
        }
        assert_int_equal(token_len, strlen(token));

        /* Exact header and payload bytes. */
        const char *dot1 = strchr(token, '.');
        const char *dot2 = strchr(dot1 + 1, '.');
        assert_non_null(dot2);
        assert_null(strchr(dot2 + 1, '.'));
        size_t len = 0;
        unsigned char *header = unb64url(token, (size_t)(dot1 - token), &len);
        char expected_header[128];
        snprintf(expected_header, sizeof(expected_header), "{\"alg\":\"%s\",\"kid\":\"%s\"}",
                 rows[i].alg, rows[i].key->kid);
        assert_string_equal((char *)header, expected_header);
        free(header);
        unsigned char *payload = unb64url(dot1 + 1, (size_t)(dot2 - dot1 - 1), &len);
        char *compact = json_dumps(claims, JSON_COMPACT);
        assert_string_equal((char *)payload, compact);
        assert_null(strchr(compact, ' '));
        free(compact);
        free(payload);

        /* The signature, checked without kpki. */
        unsigned char *signature = unb64url(dot2 + 1, strlen(dot2 + 1), &len);
        assert_int_equal(len, rows[i].signature_len);
        unsigned char *to_verify = signature;
        size_t to_verify_len = len;
        unsigned char *der = NULL;
        if (rows[i].key != &rsa) {
            ECDSA_SIG *sig = ECDSA_SIG_new();
            assert_non_null(sig);
            assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(signature, (int)len / 2, NULL),
                                            BN_bin2bn(signature + len / 2, (int)len / 2, NULL)),
                             1);
            int der_len = i2d_ECDSA_SIG(sig, &der);
            assert_true(der_len > 0);
            ECDSA_SIG_free(sig);
            to_verify = der;
            to_verify_len = (size_t)der_len;
        }
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(
            EVP_DigestVerifyInit_ex(ctx, NULL, rows[i].digest, NULL, NULL, rows[i].key->pub, NULL),
            1);
        assert_int_equal(EVP_DigestVerify(ctx, to_verify, to_verify_len,
                                          (const unsigned char *)token, (size_t)(dot2 - token)),
                         1);
        EVP_MD_CTX_free(ctx);
        OPENSSL_free(der);
        free(signature);

        /* kpki verifies it and hands back header and claims. */
        struct kp_jwt jwt;
        enum kp_jwt_verdict verdict;
        assert_int_equal(
            kp_jwt_verify(token, token_len, keys, 3, NOW + 10, LEEWAY, &jwt, &verdict, &err), KP_OK);
        assert_int_equal(verdict, KP_JWT_VALID);
        assert_true(json_equal(jwt.claims, claims));
        assert_string_equal(json_string_value(json_object_get(jwt.header, "alg")), rows[i].alg);
        kp_jwt_wipe(&jwt);
        /* Only the one key is tried: kid picks it. Without the right key it is unknown. */
        assert_int_equal(verify_token(token, &keys[i], 1, NOW, LEEWAY), KP_JWT_VALID);
        assert_int_equal(verify_token(token, &keys[(i + 1) % 3], 1, NOW, LEEWAY),
                         KP_JWT_UNKNOWN_KEY);
        free(token);

        /* Without a kid the header is {"alg":...} and every key is tried. */
        assert_int_equal(kp_jwt_sign(rows[i].key->priv, NULL, claims, &token, NULL, &err), KP_OK);
        dot1 = strchr(token, '.');
        header = unb64url(token, (size_t)(dot1 - token), &len);
        snprintf(expected_header, sizeof(expected_header), "{\"alg\":\"%s\"}", rows[i].alg);
        assert_string_equal((char *)header, expected_header);
        free(header);
        assert_int_equal(verify_token(token, keys, 3, NOW, LEEWAY), KP_JWT_VALID);
        /* No key of the token's algorithm: the alg does not fit the keys. */
        assert_int_equal(verify_token(token, &keys[(i + 1) % 3], 1, NOW, LEEWAY), KP_JWT_BAD_ALG);
        free(token);
        json_decref(claims);
    }
}

/* How the rejection table signs. */
enum signer {
    SIGN_EMPTY,       /* no signature */
    SIGN_RSA,         /* RS256 by rsa */
    SIGN_RSA_OTHER,   /* RS256 by rsa_other */
    SIGN_RSA_PSS,     /* PS256 by rsa */
    SIGN_RSA_SHORT,   /* RS256 by rsa, last byte cut */
    SIGN_RSA_SHA384,  /* PKCS#1 v1.5 by rsa over SHA-384 */
    SIGN_RSA_BARE,    /* PKCS#1 v1.5 by rsa over the SHA-256 digest, no DigestInfo */
    SIGN_RSA_OID,     /* the SHA-256 digest in a DigestInfo naming SHA-512/256 */
    SIGN_P256,        /* ES256 by p256, R || S */
    SIGN_P256_DER,    /* ES256 by p256, DER as OpenSSL returns it */
    SIGN_P256_SHORT,  /* R || S without its last byte */
    SIGN_P256_LONG,   /* R || S and a zero byte */
    SIGN_P256_ZERO,   /* R = S = 0 */
    SIGN_P256_FF,     /* R = S = 2^256 - 1 (above the group order) */
    SIGN_P256_SHA384, /* P-256 key, SHA-384 digest */
    SIGN_P384,        /* ES384 by p384 */
    SIGN_HMAC_PEM,    /* HMAC-SHA256 keyed with rsa's PKIX PEM text */
    SIGN_HMAC_DER,    /* HMAC-SHA256 keyed with rsa's PKIX DER */
    SIGN_GARBAGE,     /* 256 bytes of 0x5a */
};

enum key_set { KEYS_ALL, KEYS_RSA, KEYS_EC };

static char *sign_with(enum signer signer, const char *input)
{
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    unsigned char raw[96];
    switch (signer) {
    case SIGN_EMPTY:
        return b64url("", 0);
    case SIGN_RSA:
    case SIGN_RSA_SHORT:
        sig = sign_bytes(rsa.priv, "SHA256", false, input, &sig_len);
        if (signer == SIGN_RSA_SHORT) {
            sig_len--;
        }
        break;
    case SIGN_RSA_OTHER:
        sig = sign_bytes(rsa_other.priv, "SHA256", false, input, &sig_len);
        break;
    case SIGN_RSA_SHA384:
        sig = sign_bytes(rsa.priv, "SHA384", false, input, &sig_len);
        break;
    case SIGN_RSA_BARE:
    case SIGN_RSA_OID:
        sig =
            sign_sha256_as(rsa.priv, signer == SIGN_RSA_OID ? "SHA512-256" : NULL, input, &sig_len);
        break;
    case SIGN_RSA_PSS:
        sig = sign_bytes(rsa.priv, "SHA256", true, input, &sig_len);
        break;
    case SIGN_P256:
    case SIGN_P256_SHORT:
    case SIGN_P256_LONG:
    case SIGN_P256_SHA384:
        sig = sign_bytes(p256.priv, signer == SIGN_P256_SHA384 ? "SHA384" : "SHA256", false, input,
                         &sig_len);
        der_to_raw(sig, sig_len, 32, raw);
        free(sig);
        raw[64] = 0;
        return b64url(raw, signer == SIGN_P256_SHORT ? 63 : signer == SIGN_P256_LONG ? 65 : 64);
    case SIGN_P256_DER:
        sig = sign_bytes(p256.priv, "SHA256", false, input, &sig_len);
        break;
    case SIGN_P256_ZERO:
    case SIGN_P256_FF:
        memset(raw, signer == SIGN_P256_ZERO ? 0 : 0xff, 64);
        return b64url(raw, 64);
    case SIGN_P384:
        sig = sign_bytes(p384.priv, "SHA384", false, input, &sig_len);
        der_to_raw(sig, sig_len, 48, raw);
        free(sig);
        return b64url(raw, 96);
    case SIGN_HMAC_PEM:
    case SIGN_HMAC_DER: {
        unsigned char *der = NULL;
        int der_len = i2d_PUBKEY(rsa.pub, &der);
        const void *secret = signer == SIGN_HMAC_PEM ? (const void *)rsa.pub_pem : der;
        size_t secret_len = signer == SIGN_HMAC_PEM ? rsa.pub_pem_len : (size_t)der_len;
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t mac_len = 0;
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len,
                                  (const unsigned char *)input, strlen(input), mac, sizeof(mac),
                                  &mac_len));
        OPENSSL_free(der);
        return b64url(mac, mac_len);
    }
    case SIGN_GARBAGE:
        sig = malloc(256);
        assert_non_null(sig);
        memset(sig, 0x5a, 256);
        sig_len = 256;
        break;
    }
    char *text = b64url(sig, sig_len);
    free(sig);
    return text;
}

/* Replaces each "KID:rsa", "KID:other", "KID:p256", "KID:p384" with that key's id. */
static char *with_kids(const char *text)
{
    static const struct {
        const char *marker;
        const struct test_key *key;
    } markers[] = {
        {"KID:rsa", &rsa}, {"KID:other", &rsa_other}, {"KID:p256", &p256}, {"KID:p384", &p384}};
    char *out = malloc(strlen(text) * 8 + 1);
    assert_non_null(out);
    size_t used = 0;
    while (*text != '\0') {
        bool replaced = false;
        for (size_t i = 0; i < 4 && !replaced; i++) {
            size_t marker_len = strlen(markers[i].marker);
            if (strncmp(text, markers[i].marker, marker_len) == 0 && text[marker_len] == '"') {
                memcpy(out + used, markers[i].key->kid, strlen(markers[i].key->kid));
                used += strlen(markers[i].key->kid);
                text += marker_len;
                replaced = true;
            }
        }
        if (!replaced) {
            out[used++] = *text++;
        }
    }
    out[used] = '\0';
    return out;
}

/* header and payload as JSON (KID:<key> markers replaced), signed by signer. */
static char *forge(const char *header_json, const char *payload_json, enum signer signer)
{
    char *header_text = with_kids(header_json);
    char *header = b64url(header_text, strlen(header_text));
    char *payload = b64url(payload_json, strlen(payload_json));
    size_t input_size = strlen(header) + strlen(payload) + 2;
    char *input = malloc(input_size);
    assert_non_null(input);
    snprintf(input, input_size, "%s.%s", header, payload);
    char *signature = sign_with(signer, input);
    char *token = concat3(header, payload, signature);
    free(header_text);
    free(header);
    free(payload);
    free(input);
    free(signature);
    return token;
}

#define H_RS256 "{\"alg\":\"RS256\",\"kid\":\"KID:rsa\"}"
#define H_ES256 "{\"alg\":\"ES256\",\"kid\":\"KID:p256\"}"
#define H_ES384 "{\"alg\":\"ES384\",\"kid\":\"KID:p384\"}"
#define CLAIMS                                                                                     \
    "{\"iss\":\"kubernetes/serviceaccount\",\"sub\":\"system:serviceaccount:default:builder\","    \
    "\"iat\":1750000000,\"nbf\":1750000000,\"exp\":1750003600}"
#define LEGACY                                                                                     \
    "{\"iss\":\"kubernetes/serviceaccount\",\"kubernetes.io/serviceaccount/namespace\":"           \
    "\"default\",\"sub\":\"system:serviceaccount:default:builder\"}"

static void test_verdict_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *header;
        const char *payload;
        enum signer signer;
        enum key_set keys;
        enum kp_jwt_verdict expected;
    } rows[] = {
        /* independently made tokens kpki must accept */
        {"RS256", H_RS256, CLAIMS, SIGN_RSA, KEYS_ALL, KP_JWT_VALID},
        {"ES256", H_ES256, CLAIMS, SIGN_P256, KEYS_ALL, KP_JWT_VALID},
        {"ES384", H_ES384, CLAIMS, SIGN_P384, KEYS_ALL, KP_JWT_VALID},
        {"RS256 without kid", "{\"alg\":\"RS256\"}", CLAIMS, SIGN_RSA, KEYS_ALL, KP_JWT_VALID},
        {"ES384 without kid", "{\"alg\":\"ES384\"}", CLAIMS, SIGN_P384, KEYS_ALL, KP_JWT_VALID},
        {"empty kid is no kid", "{\"alg\":\"RS256\",\"kid\":\"\"}", CLAIMS, SIGN_RSA, KEYS_ALL,
         KP_JWT_VALID},
        {"typ and other members", "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"KID:rsa\",\"x\":1}",
         CLAIMS, SIGN_RSA, KEYS_ALL, KP_JWT_VALID},
        {"legacy: no time claims", H_RS256, LEGACY, SIGN_RSA, KEYS_ALL, KP_JWT_VALID},
        {"header jwk ignored", "{\"alg\":\"RS256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AA\"}}", CLAIMS,
         SIGN_RSA, KEYS_RSA, KP_JWT_VALID},

        /* alg: decided by the key */
        {"none, no signature", "{\"alg\":\"none\"}", CLAIMS, SIGN_EMPTY, KEYS_ALL, KP_JWT_BAD_ALG},
        {"none with kid", "{\"alg\":\"none\",\"kid\":\"KID:rsa\"}", CLAIMS, SIGN_EMPTY, KEYS_ALL,
         KP_JWT_BAD_ALG},
        {"none with a valid RS256 signature", "{\"alg\":\"none\",\"kid\":\"KID:rsa\"}", CLAIMS,
         SIGN_RSA, KEYS_ALL, KP_JWT_BAD_ALG},
        {"None", "{\"alg\":\"None\"}", CLAIMS, SIGN_EMPTY, KEYS_ALL, KP_JWT_BAD_ALG},
        {"NONE", "{\"alg\":\"NONE\"}", CLAIMS, SIGN_EMPTY, KEYS_ALL, KP_JWT_BAD_ALG},
        {"HS256 keyed with the public key PEM", "{\"alg\":\"HS256\",\"kid\":\"KID:rsa\"}", CLAIMS,
         SIGN_HMAC_PEM, KEYS_ALL, KP_JWT_BAD_ALG},
        {"HS256 keyed with the public key PEM, no kid", "{\"alg\":\"HS256\"}", CLAIMS,
         SIGN_HMAC_PEM, KEYS_RSA, KP_JWT_BAD_ALG},
        {"HS256 keyed with the public key DER", "{\"alg\":\"HS256\",\"kid\":\"KID:rsa\"}", CLAIMS,
         SIGN_HMAC_DER, KEYS_ALL, KP_JWT_BAD_ALG},
        {"HS384", "{\"alg\":\"HS384\",\"kid\":\"KID:rsa\"}", CLAIMS, SIGN_HMAC_PEM, KEYS_ALL,
         KP_JWT_BAD_ALG},
        {"HS512", "{\"alg\":\"HS512\"}", CLAIMS, SIGN_HMAC_PEM, KEYS_ALL, KP_JWT_BAD_ALG},
        {"PS256 by the RSA key", "{\"alg\":\"PS256\",\"kid\":\"KID:rsa\"}", CLAIMS, SIGN_RSA_PSS,
         KEYS_ALL, KP_JWT_BAD_ALG},
        {"RS384", "{\"alg\":\"RS384\",\"kid\":\"KID:rsa\"}", CLAIMS, SIGN_RSA, KEYS_ALL,
         KP_JWT_BAD_ALG},
        {"ES512", "{\"alg\":\"ES512\",\"kid\":\"KID:p256\"}", CLAIMS, SIGN_P256, KEYS_ALL,
         KP_JWT_BAD_ALG},
        {"EdDSA", "{\"alg\":\"EdDSA\"}", CLAIMS, SIGN_P256, KEYS_ALL, KP_JWT_BAD_ALG},
        {"lower-case rs256", "{\"alg\":\"rs256\",\"kid\":\"KID:rsa\"}", CLAIMS, SIGN_RSA, KEYS_ALL,
         KP_JWT_BAD_ALG},
        {"RS256 naming the P-256 key", "{\"alg\":\"RS256\",\"kid\":\"KID:p256\"}", CLAIMS, SIGN_RSA,
         KEYS_ALL, KP_JWT_BAD_ALG},
        {"RS256 without kid, EC keys only", "{\"alg\":\"RS256\"}", CLAIMS, SIGN_RSA, KEYS_EC,
         KP_JWT_BAD_ALG},
        {"ES256 naming the RSA key", "{\"alg\":\"ES256\",\"kid\":\"KID:rsa\"}", CLAIMS, SIGN_P256,
         KEYS_ALL, KP_JWT_BAD_ALG},
        {"ES384 naming the P-256 key", "{\"alg\":\"ES384\",\"kid\":\"KID:p256\"}", CLAIMS,
         SIGN_P256_SHA384, KEYS_ALL, KP_JWT_BAD_ALG},
        {"ES256 naming the P-384 key", "{\"alg\":\"ES256\",\"kid\":\"KID:p384\"}", CLAIMS,
         SIGN_P384, KEYS_ALL, KP_JWT_BAD_ALG},

        /* kid */
        {"unknown kid", "{\"alg\":\"RS256\",\"kid\":\"no-such-key\"}", CLAIMS, SIGN_RSA, KEYS_ALL,
         KP_JWT_UNKNOWN_KEY},
        {"other key, its own kid", "{\"alg\":\"RS256\",\"kid\":\"KID:other\"}", CLAIMS,
         SIGN_RSA_OTHER, KEYS_ALL, KP_JWT_UNKNOWN_KEY},
        {"other key, no kid", "{\"alg\":\"RS256\"}", CLAIMS, SIGN_RSA_OTHER, KEYS_ALL,
         KP_JWT_UNKNOWN_KEY},
        {"other key, our kid", H_RS256, CLAIMS, SIGN_RSA_OTHER, KEYS_ALL, KP_JWT_BAD_SIGNATURE},
        {"kid of a key not configured", H_RS256, CLAIMS, SIGN_RSA, KEYS_EC, KP_JWT_UNKNOWN_KEY},

        /* signatures */
        {"RS256 empty signature", H_RS256, CLAIMS, SIGN_EMPTY, KEYS_ALL, KP_JWT_BAD_SIGNATURE},
        {"RS256 signature one byte short", H_RS256, CLAIMS, SIGN_RSA_SHORT, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        {"RS256 garbage signature", H_RS256, CLAIMS, SIGN_GARBAGE, KEYS_ALL, KP_JWT_BAD_SIGNATURE},
        {"ES256 signature in DER", H_ES256, CLAIMS, SIGN_P256_DER, KEYS_ALL, KP_JWT_BAD_SIGNATURE},
        {"ES256 signature of 63 bytes", H_ES256, CLAIMS, SIGN_P256_SHORT, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        {"ES256 signature of 65 bytes", H_ES256, CLAIMS, SIGN_P256_LONG, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        {"ES256 with ES384's 96 bytes", H_ES256, CLAIMS, SIGN_P384, KEYS_ALL, KP_JWT_BAD_SIGNATURE},
        {"ES256 r = s = 0", H_ES256, CLAIMS, SIGN_P256_ZERO, KEYS_ALL, KP_JWT_BAD_SIGNATURE},
        {"ES256 r, s above the order", H_ES256, CLAIMS, SIGN_P256_FF, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        {"ES256 made over SHA-384", H_ES256, CLAIMS, SIGN_P256_SHA384, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        /* RS256 is the DigestInfo of SHA-256: any other digest, or none, is refused. */
        {"RS256 made over SHA-384", H_RS256, CLAIMS, SIGN_RSA_SHA384, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        {"RS256 over the bare SHA-256 digest", H_RS256, CLAIMS, SIGN_RSA_BARE, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        {"RS256 digest under SHA-512/256's OID", H_RS256, CLAIMS, SIGN_RSA_OID, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        {"ES256 empty signature", H_ES256, CLAIMS, SIGN_EMPTY, KEYS_ALL, KP_JWT_BAD_SIGNATURE},
        {"ES256 no kid, DER", "{\"alg\":\"ES256\"}", CLAIMS, SIGN_P256_DER, KEYS_ALL,
         KP_JWT_UNKNOWN_KEY},

        /* header shape */
        {"no alg", "{\"kid\":\"KID:rsa\"}", CLAIMS, SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"alg a number", "{\"alg\":256}", CLAIMS, SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"alg null", "{\"alg\":null}", CLAIMS, SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"kid a number", "{\"alg\":\"RS256\",\"kid\":7}", CLAIMS, SIGN_RSA, KEYS_ALL,
         KP_JWT_MALFORMED},
        {"crit", "{\"alg\":\"RS256\",\"kid\":\"KID:rsa\",\"crit\":[\"exp\"],\"exp\":1}", CLAIMS,
         SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"duplicate alg", "{\"alg\":\"none\",\"alg\":\"RS256\"}", CLAIMS, SIGN_RSA, KEYS_ALL,
         KP_JWT_MALFORMED},

        /* time claims (now 1750000000, leeway 60) */
        {"exp 61 s ago", H_RS256, "{\"exp\":1749999939}", SIGN_RSA, KEYS_ALL, KP_JWT_EXPIRED},
        {"exp 60 s ago: exp + leeway = now", H_RS256, "{\"exp\":1749999940}", SIGN_RSA, KEYS_ALL,
         KP_JWT_EXPIRED},
        {"exp 59 s ago: within leeway", H_RS256, "{\"exp\":1749999941}", SIGN_RSA, KEYS_ALL,
         KP_JWT_VALID},
        {"exp long ago", H_RS256, "{\"exp\":1}", SIGN_RSA, KEYS_ALL, KP_JWT_EXPIRED},
        {"exp fraction", H_RS256, "{\"exp\":1749999940.9}", SIGN_RSA, KEYS_ALL, KP_JWT_EXPIRED},
        {"exp fraction, valid", H_RS256, "{\"exp\":1749999941.5}", SIGN_RSA, KEYS_ALL,
         KP_JWT_VALID},
        {"exp exponent form", H_RS256, "{\"exp\":1.76e9}", SIGN_RSA, KEYS_ALL, KP_JWT_VALID},
        {"exp at int64 max", H_RS256, "{\"exp\":9223372036854775807}", SIGN_RSA, KEYS_ALL,
         KP_JWT_VALID},
        {"nbf 61 s ahead", H_RS256, "{\"nbf\":1750000061}", SIGN_RSA, KEYS_ALL,
         KP_JWT_NOT_YET_VALID},
        {"nbf 60 s ahead: within leeway", H_RS256, "{\"nbf\":1750000060}", SIGN_RSA, KEYS_ALL,
         KP_JWT_VALID},
        {"nbf at int64 min", H_RS256, "{\"nbf\":-9223372036854775808}", SIGN_RSA, KEYS_ALL,
         KP_JWT_VALID},
        {"iat 61 s ahead", H_RS256, "{\"iat\":1750000061}", SIGN_RSA, KEYS_ALL,
         KP_JWT_NOT_YET_VALID},
        {"iat 60 s ahead", H_RS256, "{\"iat\":1750000060}", SIGN_RSA, KEYS_ALL, KP_JWT_VALID},
        {"nbf ahead and expired: nbf first (go-jose)", H_RS256,
         "{\"nbf\":1750000100,\"exp\":1700000000}", SIGN_RSA, KEYS_ALL, KP_JWT_NOT_YET_VALID},
        {"expired and iat ahead: exp first", H_RS256, "{\"iat\":1750000100,\"exp\":1700000000}",
         SIGN_RSA, KEYS_ALL, KP_JWT_EXPIRED},
        {"exp a string", H_RS256, "{\"exp\":\"1750003600\"}", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"exp null", H_RS256, "{\"exp\":null}", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"exp an object", H_RS256, "{\"exp\":{}}", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"exp out of range", H_RS256, "{\"exp\":1e300}", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"exp too big an integer", H_RS256, "{\"exp\":9223372036854775808}", SIGN_RSA, KEYS_ALL,
         KP_JWT_MALFORMED},
        {"nbf a boolean", H_RS256, "{\"nbf\":true}", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"iat an array", H_RS256, "{\"iat\":[1]}", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"bad iat, good exp", H_RS256, "{\"exp\":1750003600,\"iat\":\"now\"}", SIGN_RSA, KEYS_ALL,
         KP_JWT_MALFORMED},
        /* the signature is checked before any claim is read */
        {"expired and badly signed", H_RS256, "{\"exp\":1}", SIGN_RSA_OTHER, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},
        {"exp a string, badly signed", H_RS256, "{\"exp\":\"x\"}", SIGN_GARBAGE, KEYS_ALL,
         KP_JWT_BAD_SIGNATURE},

        /* payload shape (signed, so only the shape is wrong) */
        {"claims an array", H_RS256, "[]", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"claims a string", H_RS256, "\"sub\"", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"claims a number", H_RS256, "5", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"claims not JSON", H_RS256, "{sub}", SIGN_RSA, KEYS_ALL, KP_JWT_MALFORMED},
        {"duplicate exp", H_RS256, "{\"exp\":1,\"exp\":1750003600}", SIGN_RSA, KEYS_ALL,
         KP_JWT_MALFORMED},
    };
    struct kp_jwt_key all[] = {verification_key(&p256), verification_key(&rsa),
                               verification_key(&p384)};
    struct kp_jwt_key ec[] = {verification_key(&p256), verification_key(&p384)};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *token = forge(rows[i].header, rows[i].payload, rows[i].signer);
        enum kp_jwt_verdict got;
        switch (rows[i].keys) {
        case KEYS_ALL:
            got = verify_token(token, all, 3, NOW, LEEWAY);
            break;
        case KEYS_RSA:
            got = verify_token(token, &all[1], 1, NOW, LEEWAY);
            break;
        case KEYS_EC:
        default:
            got = verify_token(token, ec, 2, NOW, LEEWAY);
            break;
        }
        if (got != rows[i].expected) {
            fail_msg("%s: got %s, want %s", rows[i].name, kp_jwt_verdict_name(got),
                     kp_jwt_verdict_name(rows[i].expected));
        }
        free(token);
    }
}

/* Tokens that are not a compact JWS with JSON parts: MALFORMED before any key is touched. */
static void test_malformed(void **state)
{
    (void)state;
    char *good = forge(H_RS256, CLAIMS, SIGN_RSA);
    struct kp_jwt_key keys[] = {verification_key(&rsa)};
    assert_int_equal(verify_token(good, keys, 1, NOW, LEEWAY), KP_JWT_VALID);
    const char *dot1 = strchr(good, '.');
    const char *dot2 = strchr(dot1 + 1, '.');
    char header[256];
    char payload[512];
    char signature[512];
    snprintf(header, sizeof(header), "%.*s", (int)(dot1 - good), good);
    snprintf(payload, sizeof(payload), "%.*s", (int)(dot2 - dot1 - 1), dot1 + 1);
    snprintf(signature, sizeof(signature), "%s", dot2 + 1);

    struct {
        const char *name;
        char text[2048];
    } rows[16];
    size_t count = 0;
#define ROW(label, ...)                                                                            \
    do {                                                                                           \
        rows[count].name = (label);                                                                \
        snprintf(rows[count].text, sizeof(rows[count].text), __VA_ARGS__);                         \
        count++;                                                                                   \
    } while (0)
    ROW("empty", "%s", "");
    ROW("one part", "%s", header);
    ROW("two parts", "%s.%s", header, payload);
    ROW("four parts", "%s.%s.%s.%s", header, payload, signature, signature);
    ROW("five parts (JWE)", "%s.%s.%s.%s.%s", header, payload, signature, payload, signature);
    ROW("padded signature", "%s.%s.%s==", header, payload, signature);
    ROW("bad base64 in signature", "%s.%s.%s*", header, payload, signature);
    ROW("bad base64 in header", "%s!.%s.%s", header, payload, signature);
    ROW("standard alphabet", "%s.%s.ab+/", header, payload);
    ROW("empty header", ".%s.%s", payload, signature);
    ROW("empty payload", "%s..%s", header, signature);
    ROW("header not JSON", "bm90IGpzb24.%s.%s", payload, signature);
    ROW("header an array", "WzFd.%s.%s", payload, signature);
    ROW("surrounding whitespace", " %s.%s.%s", header, payload, signature);
    ROW("trailing newline", "%s.%s.%s\n", header, payload, signature);
#undef ROW
    for (size_t i = 0; i < count; i++) {
        enum kp_jwt_verdict got = verify_token(rows[i].text, keys, 1, NOW, LEEWAY);
        if (got != KP_JWT_MALFORMED) {
            fail_msg("%s: got %s", rows[i].name, kp_jwt_verdict_name(got));
        }
    }

    /* Over KP_JWT_MAX: refused by size alone (the valid token padded with a long header is
     * still refused by its length, before decoding). */
    size_t big_len = KP_JWT_MAX + 1;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'A', big_len);
    big[10] = '.';
    big[20] = '.';
    big[big_len] = '\0';
    struct kp_jwt jwt;
    enum kp_jwt_verdict verdict;
    struct kp_error err;
    assert_int_equal(kp_jwt_verify(big, big_len, keys, 1, NOW, LEEWAY, &jwt, &verdict, &err), KP_OK);
    assert_int_equal(verdict, KP_JWT_MALFORMED);
    assert_non_null(strstr(err.message, "too large"));
    free(big);

    /* len is honoured: the good token followed by bytes not counted. */
    char *longer = malloc(strlen(good) + 8);
    assert_non_null(longer);
    snprintf(longer, strlen(good) + 8, "%sXXXX", good);
    assert_int_equal(kp_jwt_verify(longer, strlen(good), keys, 1, NOW, LEEWAY, &jwt, &verdict, &err),
                     KP_OK);
    assert_int_equal(verdict, KP_JWT_VALID);
    kp_jwt_wipe(&jwt);
    free(longer);
    free(good);
}

/* Flipping any single bit of a kpki token's header, payload or signature never yields a valid
 * token; flipped signature bits are BAD_SIGNATURE. Pinned cases say which verdict. */
static void test_bit_flips(void **state)
{
    (void)state;
    const struct test_key *signers[] = {&rsa, &p256, &p384};
    struct kp_jwt_key keys[] = {verification_key(&rsa), verification_key(&p256),
                                verification_key(&p384)};
    for (size_t k = 0; k < 3; k++) {
        json_t *claims = json_pack("{s:s, s:I}", "sub", "system:serviceaccount:ns:sa", "exp",
                                   (json_int_t)NOW + 600);
        char *token = NULL;
        size_t token_len = 0;
        struct kp_error err;
        assert_int_equal(
            kp_jwt_sign(signers[k]->priv, signers[k]->kid, claims, &token, &token_len, &err),
            KP_OK);
        json_decref(claims);
        assert_int_equal(verify_token(token, keys, 3, NOW, LEEWAY), KP_JWT_VALID);
        const char *dots[2] = {strchr(token, '.'), NULL};
        dots[1] = strchr(dots[0] + 1, '.');
        const char *starts[3] = {token, dots[0] + 1, dots[1] + 1};
        const size_t lens[3] = {(size_t)(dots[0] - token), (size_t)(dots[1] - dots[0] - 1),
                                strlen(dots[1] + 1)};
        for (size_t part = 0; part < 3; part++) {
            size_t raw_len = 0;
            unsigned char *raw = unb64url(starts[part], lens[part], &raw_len);
            for (size_t bit = 0; bit < raw_len * 8; bit++) {
                raw[bit / 8] ^= (unsigned char)(1u << (bit % 8));
                char *encoded = b64url(raw, raw_len);
                raw[bit / 8] ^= (unsigned char)(1u << (bit % 8));
                char *parts[3];
                for (size_t p = 0; p < 3; p++) {
                    parts[p] = p == part ? encoded : strndup(starts[p], lens[p]);
                }
                char *flipped = concat3(parts[0], parts[1], parts[2]);
                enum kp_jwt_verdict got = verify_token(flipped, keys, 3, NOW, LEEWAY);
                if (got == KP_JWT_VALID || (part == 2 && got != KP_JWT_BAD_SIGNATURE)) {
                    fail_msg("key %zu part %zu bit %zu: %s", k, part, bit,
                             kp_jwt_verdict_name(got));
                }
                for (size_t p = 0; p < 3; p++) {
                    free(parts[p]);
                }
                free(flipped);
            }
            free(raw);
        }

        /* Pinned: a flipped letter of the subject (still valid JSON) breaks the signature. */
        char *sub_at = NULL;
        size_t payload_len = 0;
        unsigned char *payload = unb64url(starts[1], lens[1], &payload_len);
        sub_at = strstr((char *)payload, "ns:sa");
        assert_non_null(sub_at);
        sub_at[0] ^= 0x01; /* 'n' -> 'o' */
        char *payload_text = b64url(payload, payload_len);
        char *header_text = strndup(starts[0], lens[0]);
        char *tampered = concat3(header_text, payload_text, starts[2]);
        assert_int_equal(verify_token(tampered, keys, 3, NOW, LEEWAY), KP_JWT_BAD_SIGNATURE);
        free(tampered);
        free(payload_text);
        free(payload);

        /* Pinned: changing only the unused low bits of a part's last base64url character
         * leaves the decoded JSON the same but not the signed bytes. */
        for (size_t part = 0; part < 2; part++) {
            if (lens[part] % 4 == 0) {
                continue;
            }
            char *copy = strdup(token);
            assert_non_null(copy);
            char *last = copy + (starts[part] - token) + lens[part] - 1;
            /* 'A'..'Z' differ from their neighbour by one in value: flip bit 0. */
            static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            size_t value = (size_t)(strchr(alphabet, *last) - alphabet);
            *last = alphabet[value ^ 1];
            assert_int_equal(verify_token(copy, keys, 3, NOW, LEEWAY), KP_JWT_BAD_SIGNATURE);
            free(copy);
        }

        /* Pinned header flips: alg RS256 -> RS257 is no algorithm; a kid changed is unknown. */
        size_t header_len = 0;
        unsigned char *header = unb64url(starts[0], lens[0], &header_len);
        char *alg_digit = strstr((char *)header, "256\"");
        if (alg_digit == NULL) {
            alg_digit = strstr((char *)header, "384\"");
        }
        assert_non_null(alg_digit);
        alg_digit[2] ^= 0x01;
        char *header_b64 = b64url(header, header_len);
        char *payload_b64 = strndup(starts[1], lens[1]);
        tampered = concat3(header_b64, payload_b64, starts[2]);
        assert_int_equal(verify_token(tampered, keys, 3, NOW, LEEWAY), KP_JWT_BAD_ALG);
        free(tampered);
        free(header_b64);
        alg_digit[2] ^= 0x01;
        char *kid_at = strstr((char *)header, signers[k]->kid);
        assert_non_null(kid_at);
        kid_at[0] ^= 0x01;
        header_b64 = b64url(header, header_len);
        tampered = concat3(header_b64, payload_b64, starts[2]);
        assert_int_equal(verify_token(tampered, keys, 3, NOW, LEEWAY), KP_JWT_UNKNOWN_KEY);
        free(tampered);
        free(header_b64);
        free(payload_b64);
        free(header_text);
        free(header);
        free(token);
    }
}

/* Keys of one algorithm tried in turn when there is no kid; with several keys sharing a kid,
 * each of them. */
static void test_several_keys(void **state)
{
    (void)state;
    struct kp_jwt_key keys[] = {verification_key(&rsa_other), verification_key(&p256),
                                verification_key(&rsa)};
    char *token = forge("{\"alg\":\"RS256\"}", CLAIMS, SIGN_RSA);
    assert_int_equal(verify_token(token, keys, 3, NOW, LEEWAY), KP_JWT_VALID);
    free(token);
    snprintf(keys[0].kid, sizeof(keys[0].kid), "%s", rsa.kid); /* two keys claim rsa's kid */
    token = forge(H_RS256, CLAIMS, SIGN_RSA);
    assert_int_equal(verify_token(token, keys, 3, NOW, LEEWAY), KP_JWT_VALID);
    free(token);
    /* No keys at all. */
    token = forge("{\"alg\":\"RS256\"}", CLAIMS, SIGN_RSA);
    assert_int_equal(verify_token(token, NULL, 0, NOW, LEEWAY), KP_JWT_UNKNOWN_KEY);
    free(token);
}

/* kp_jwt_key_prepare: a key kpki does not verify with stays unprepared (and is skipped, as
 * before); release is safe twice; and one set of prepared keys serves several threads at once,
 * as the API server's workers share them. */
struct shared_verify {
    const struct kp_jwt_key *keys;
    const char *tokens[4];
    enum kp_jwt_verdict expected[4];
    int wrong;
};

static void *verify_many(void *arg)
{
    struct shared_verify *s = arg;
    int wrong = 0;
    for (int round = 0; round < 150; round++) {
        for (size_t t = 0; t < 4; t++) {
            struct kp_jwt jwt;
            enum kp_jwt_verdict verdict;
            struct kp_error err;
            if (kp_jwt_verify(s->tokens[t], strlen(s->tokens[t]), s->keys, 3, NOW, LEEWAY, &jwt,
                              &verdict, &err) != KP_OK ||
                verdict != s->expected[t]) {
                wrong++;
            }
            kp_jwt_wipe(&jwt);
        }
    }
    return (void *)(intptr_t)wrong;
}

static void test_prepared_keys(void **state)
{
    (void)state;
    struct kp_error err;
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    struct kp_jwt_key unusable = {.key = ed, .kid = "ed"};
    assert_int_equal(kp_jwt_key_prepare(&unusable, &err), KP_OK);
    assert_null(unusable.verifier);
    kp_jwt_key_release(&unusable);
    EVP_PKEY_free(ed);

    struct kp_jwt_key keys[] = {verification_key(&rsa), verification_key(&p256),
                                verification_key(&p384)};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(kp_jwt_key_prepare(&keys[i], &err), KP_OK);
        assert_non_null(keys[i].verifier);
    }
    /* Again: refused, the verifier kept (a copy released twice would be a double free). */
    struct kp_jwt_verifier *first = keys[0].verifier;
    assert_int_equal(kp_jwt_key_prepare(&keys[0], &err), KP_ERR_INTERNAL);
    assert_ptr_equal(keys[0].verifier, first);

    char *good_rsa = forge(H_RS256, CLAIMS, SIGN_RSA);
    char *good_p256 = forge(H_ES256, CLAIMS, SIGN_P256);
    char *good_p384 = forge(H_ES384, CLAIMS, SIGN_P384);
    char *bad = strdup(good_rsa);
    assert_non_null(bad);
    char *last = bad + strlen(bad) - 2; /* a signature character, not the last (its low bits) */
    *last = *last == 'A' ? 'B' : 'A';
    struct shared_verify shared = {
        .keys = keys,
        .tokens = {good_rsa, good_p256, good_p384, bad},
        .expected = {KP_JWT_VALID, KP_JWT_VALID, KP_JWT_VALID, KP_JWT_BAD_SIGNATURE},
    };
    pthread_t threads[4];
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, verify_many, &shared), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        void *wrong = NULL;
        pthread_join(threads[i], &wrong);
        assert_int_equal((intptr_t)wrong, 0);
    }
    for (size_t i = 0; i < 3; i++) {
        kp_jwt_key_release(&keys[i]);
        kp_jwt_key_release(&keys[i]);
        assert_null(keys[i].verifier);
    }
    free(good_rsa);
    free(good_p256);
    free(good_p384);
    free(bad);
}

/* Leeway is a parameter: 0 makes exp exact; caller mistakes are errors, not verdicts. */
static void test_leeway_and_arguments(void **state)
{
    (void)state;
    struct kp_jwt_key keys[] = {verification_key(&rsa)};
    /* valid from NOW - 10 until just before NOW */
    char *token = forge(H_RS256, "{\"exp\":1750000000,\"nbf\":1749999990}", SIGN_RSA);
    assert_int_equal(verify_token(token, keys, 1, NOW, 0), KP_JWT_EXPIRED);
    assert_int_equal(verify_token(token, keys, 1, NOW - 1, 0), KP_JWT_VALID);
    assert_int_equal(verify_token(token, keys, 1, NOW - 10, 0), KP_JWT_VALID);
    assert_int_equal(verify_token(token, keys, 1, NOW - 11, 0), KP_JWT_NOT_YET_VALID);
    assert_int_equal(verify_token(token, keys, 1, NOW - 11, 1), KP_JWT_VALID);
    assert_int_equal(verify_token(token, keys, 1, NOW, 1), KP_JWT_VALID);
    /* Clock extremes do not overflow (UBSan watches). */
    assert_int_equal(verify_token(token, keys, 1, INT64_MAX, INT64_MAX), KP_JWT_VALID);
    assert_int_equal(verify_token(token, keys, 1, INT64_MAX, 0), KP_JWT_EXPIRED);
    assert_int_equal(verify_token(token, keys, 1, INT64_MIN, 0), KP_JWT_NOT_YET_VALID);

    struct kp_jwt jwt;
    enum kp_jwt_verdict verdict;
    struct kp_error err;
    assert_int_equal(kp_jwt_verify(token, strlen(token), keys, 1, NOW, -1, &jwt, &verdict, &err),
                     KP_ERR_INTERNAL);
    assert_null(jwt.header);
    assert_int_equal(
        kp_jwt_verify(token, strlen(token), NULL, 1, NOW, LEEWAY, &jwt, &verdict, &err),
        KP_ERR_INTERNAL);
    /* err may be NULL. */
    assert_int_equal(kp_jwt_verify(token, strlen(token), keys, 1, NOW - 1, 0, &jwt, &verdict, NULL),
                     KP_OK);
    assert_int_equal(verdict, KP_JWT_VALID);
    kp_jwt_wipe(&jwt);
    assert_int_equal(kp_jwt_verify("x", 1, keys, 1, NOW, 0, &jwt, &verdict, NULL), KP_OK);
    assert_int_equal(verdict, KP_JWT_MALFORMED);
    free(token);
}

static void test_sign_errors(void **state)
{
    (void)state;
    struct kp_error err;
    char *token = NULL;
    size_t token_len = 7;
    json_t *array = json_array();
    assert_int_equal(kp_jwt_sign(rsa.priv, rsa.kid, array, &token, &token_len, &err),
                     KP_ERR_INVALID);
    assert_null(token);
    assert_int_equal(token_len, 0);
    json_decref(array);

    /* A public key cannot sign. */
    json_t *claims = json_pack("{s:s}", "sub", "x");
    assert_int_equal(kp_jwt_sign(p256.pub, p256.kid, claims, &token, &token_len, &err),
                     KP_ERR_INTERNAL);
    assert_null(token);
    assert_non_null(strstr(err.message, "ES256"));

    /* A kid that is not UTF-8. */
    assert_int_equal(kp_jwt_sign(p256.priv, "\xff", claims, &token, &token_len, &err),
                     KP_ERR_INVALID);

    /* Claims that would make a token kpki refuses to verify. */
    char *filler = malloc(KP_JWT_MAX);
    assert_non_null(filler);
    memset(filler, 'a', KP_JWT_MAX - 1);
    filler[KP_JWT_MAX - 1] = '\0';
    json_object_set_new(claims, "filler", json_string(filler));
    assert_int_equal(kp_jwt_sign(p256.priv, p256.kid, claims, &token, &token_len, &err),
                     KP_ERR_TOO_LARGE);
    assert_null(token);
    /* Just under the limit is fine and verifies. */
    filler[KP_JWT_MAX * 3 / 4 - 400] = '\0';
    json_object_set_new(claims, "filler", json_string(filler));
    assert_int_equal(kp_jwt_sign(rsa.priv, rsa.kid, claims, &token, &token_len, &err), KP_OK);
    assert_true(token_len <= KP_JWT_MAX);
    struct kp_jwt_key keys[] = {verification_key(&rsa)};
    assert_int_equal(verify_token(token, keys, 1, NOW, LEEWAY), KP_JWT_VALID);
    free(token);
    free(filler);
    json_decref(claims);
}

static void test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(kp_jwt_verdict_name(KP_JWT_VALID), "valid");
    assert_string_equal(kp_jwt_verdict_name(KP_JWT_MALFORMED), "malformed");
    assert_string_equal(kp_jwt_verdict_name(KP_JWT_BAD_ALG), "bad-alg");
    assert_string_equal(kp_jwt_verdict_name(KP_JWT_UNKNOWN_KEY), "unknown-key");
    assert_string_equal(kp_jwt_verdict_name(KP_JWT_BAD_SIGNATURE), "bad-signature");
    assert_string_equal(kp_jwt_verdict_name(KP_JWT_EXPIRED), "expired");
    assert_string_equal(kp_jwt_verdict_name(KP_JWT_NOT_YET_VALID), "not-yet-valid");
    assert_string_equal(kp_jwt_verdict_name((enum kp_jwt_verdict)99), "unknown");
}

/* Rebuilds a public key from its JWK and compares it with the original. */
static void check_jwk(json_t *jwk, const struct test_key *key)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), key->kid);
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")),
                        kp_jwt_alg_for_key(key->pub));
    OSSL_PARAM_BLD *build = OSSL_PARAM_BLD_new();
    assert_non_null(build);
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    unsigned char point[1 + 2 * 48];
    const char *type;
    if (strcmp(kty, "RSA") == 0) {
        type = "RSA";
        size_t len = 0;
        const char *n_text = json_string_value(json_object_get(jwk, "n"));
        unsigned char *bytes = unb64url(n_text, strlen(n_text), &len);
        assert_int_equal(len, 256);
        assert_true(bytes[0] != 0); /* no leading zero */
        n = BN_bin2bn(bytes, (int)len, NULL);
        free(bytes);
        assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
        e = BN_new();
        assert_int_equal(BN_set_word(e, 65537), 1);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_N, n), 1);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_E, e), 1);
        assert_null(json_object_get(jwk, "crv"));
    } else {
        assert_string_equal(kty, "EC");
        type = "EC";
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        size_t half = strcmp(crv, "P-256") == 0 ? 32 : 48;
        assert_string_equal(crv, half == 32 ? "P-256" : "P-384");
        point[0] = 0x04;
        const char *names[] = {"x", "y"};
        for (size_t i = 0; i < 2; i++) {
            const char *text = json_string_value(json_object_get(jwk, names[i]));
            size_t len = 0;
            unsigned char *bytes = unb64url(text, strlen(text), &len);
            assert_int_equal(len, half); /* fixed length, leading zeros kept */
            memcpy(point + 1 + i * half, bytes, half);
            free(bytes);
        }
        assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(build, OSSL_PKEY_PARAM_GROUP_NAME,
                                                         half == 32 ? "P-256" : "P-384", 0),
                         1);
        assert_int_equal(
            OSSL_PARAM_BLD_push_octet_string(build, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * half),
            1);
        assert_null(json_object_get(jwk, "n"));
    }
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(build);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *rebuilt = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &rebuilt, EVP_PKEY_PUBLIC_KEY, params), 1);
    assert_int_equal(EVP_PKEY_eq(rebuilt, key->pub), 1);
    EVP_PKEY_free(rebuilt);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(build);
    BN_free(n);
    BN_free(e);
}

static void test_jwks(void **state)
{
    (void)state;
    const struct test_key *order[] = {&rsa, &p256, &p384};
    struct kp_jwt_key keys[] = {verification_key(&rsa), verification_key(&p256),
                                verification_key(&p384)};
    json_t *jwks = NULL;
    struct kp_error err;
    assert_int_equal(kp_jwt_jwks(keys, 3, &jwks, &err), KP_OK);
    json_t *list = json_object_get(jwks, "keys");
    assert_int_equal(json_array_size(list), 3);
    for (size_t i = 0; i < 3; i++) {
        check_jwk(json_array_get(list, i), order[i]);
    }
    /* go-jose's member order, as kube-apiserver serves it. */
    char *text = json_dumps(jwks, JSON_COMPACT);
    char prefix[256];
    snprintf(prefix, sizeof(prefix),
             "{\"keys\":[{\"use\":\"sig\",\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"RS256\",\"n\":",
             rsa.kid);
    assert_memory_equal(text, prefix, strlen(prefix));
    snprintf(prefix, sizeof(prefix),
             "{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"P-256\",\"alg\":\"ES256\","
             "\"x\":",
             p256.kid);
    assert_non_null(strstr(text, prefix));
    free(text);
    json_decref(jwks);

    /* Private keys publish only their public half; no keys is an empty list. */
    struct kp_jwt_key private_key = {.key = p384.priv};
    snprintf(private_key.kid, sizeof(private_key.kid), "%s", p384.kid);
    assert_int_equal(kp_jwt_jwks(&private_key, 1, &jwks, &err), KP_OK);
    json_t *jwk = json_array_get(json_object_get(jwks, "keys"), 0);
    check_jwk(jwk, &p384);
    assert_null(json_object_get(jwk, "d"));
    json_decref(jwks);
    /* An empty kid is left out; a kid that is not UTF-8 cannot be written. */
    private_key.kid[0] = '\0';
    assert_int_equal(kp_jwt_jwks(&private_key, 1, &jwks, &err), KP_OK);
    assert_null(json_object_get(json_array_get(json_object_get(jwks, "keys"), 0), "kid"));
    json_decref(jwks);
    snprintf(private_key.kid, sizeof(private_key.kid), "%s", "\xc3(");
    assert_int_equal(kp_jwt_jwks(&private_key, 1, &jwks, &err), KP_ERR_INVALID);
    assert_null(jwks);
    assert_int_equal(kp_jwt_jwks(NULL, 0, &jwks, &err), KP_OK);
    text = json_dumps(jwks, JSON_COMPACT);
    assert_string_equal(text, "{\"keys\":[]}");
    free(text);
    json_decref(jwks);
}

/* EC coordinates keep their leading zero bytes (RFC 7518 §6.2.1.2): look for such a key. */
static void test_jwks_leading_zero(void **state)
{
    (void)state;
    struct kp_keygen *gen = NULL;
    struct kp_error err;
    assert_int_equal(kp_keygen_new(KP_KEY_ECDSA_P256, &gen, &err), KP_OK);
    struct test_key found;
    memset(&found, 0, sizeof(found));
    for (int attempt = 0; attempt < 20000 && found.pub == NULL; attempt++) {
        EVP_PKEY *key = NULL;
        assert_int_equal(kp_keygen_next(gen, &key, &err), KP_OK);
        BIGNUM *x = NULL;
        BIGNUM *y = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        if (BN_num_bytes(x) < 32 || BN_num_bytes(y) < 32) {
            found.pub = key;
            key = NULL;
        }
        BN_free(x);
        BN_free(y);
        EVP_PKEY_free(key);
    }
    kp_keygen_free(gen);
    if (found.pub == NULL) {
        skip(); /* about 1 in 10^34: not a failure of kpki */
    }
    assert_int_equal(kp_jwt_key_id(found.pub, found.kid, sizeof(found.kid), &err), KP_OK);
    struct kp_jwt_key entry = verification_key(&found);
    json_t *jwks = NULL;
    assert_int_equal(kp_jwt_jwks(&entry, 1, &jwks, &err), KP_OK);
    check_jwk(json_array_get(json_object_get(jwks, "keys"), 0), &found);
    json_decref(jwks);
    EVP_PKEY_free(found.pub);
}

/* ---- helper mode for tests/integration/it_jws.sh ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    char *data = malloc(KP_JWT_MAX * 2 + 1);
    if (data == NULL) {
        exit(2);
    }
    *len = fread(data, 1, KP_JWT_MAX * 2, file);
    fclose(file);
    data[*len] = '\0';
    return data;
}

static EVP_PKEY *load_key(const char *path)
{
    size_t len = 0;
    char *pem = slurp(path, &len);
    EVP_PKEY *key = NULL;
    struct kp_error err;
    if (strstr(pem, "PRIVATE KEY") != NULL) {
        if (kp_key_from_pem(pem, len, path, &key, &err) != KP_OK) {
            key = NULL;
        }
    } else if (kp_pubkey_from_pem(pem, len, path, &key, &err) != KP_OK) {
        key = NULL;
    }
    free(pem);
    if (key == NULL) {
        fprintf(stderr, "%s\n", err.message);
        exit(2);
    }
    return key;
}

/* test_jws tool kid KEY.pem
 * test_jws tool sign KEY.pem CLAIMS.json            (prints the token, kid from the key)
 * test_jws tool verify KEY.pem TOKEN-FILE NOW       (prints the verdict; leeway 60)
 * test_jws tool jwks KEY.pem...                     (prints the JWKS, compact) */
static int tool_main(int argc, char **argv)
{
    struct kp_error err;
    if (argc == 4 && strcmp(argv[2], "kid") == 0) {
        EVP_PKEY *key = load_key(argv[3]);
        char kid[64];
        if (kp_jwt_key_id(key, kid, sizeof(kid), &err) != KP_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 2;
        }
        printf("%s\n", kid);
        EVP_PKEY_free(key);
        return 0;
    }
    if (argc == 5 && strcmp(argv[2], "sign") == 0) {
        EVP_PKEY *key = load_key(argv[3]);
        json_error_t json_err;
        json_t *claims = json_load_file(argv[4], 0, &json_err);
        char kid[64];
        char *token = NULL;
        size_t token_len = 0;
        if (claims == NULL || kp_jwt_key_id(key, kid, sizeof(kid), &err) != KP_OK ||
            kp_jwt_sign(key, kid, claims, &token, &token_len, &err) != KP_OK) {
            fprintf(stderr, "cannot sign: %s\n", claims == NULL ? json_err.text : err.message);
            return 2;
        }
        printf("%s\n", token);
        free(token);
        json_decref(claims);
        EVP_PKEY_free(key);
        return 0;
    }
    if (argc == 6 && strcmp(argv[2], "verify") == 0) {
        struct kp_jwt_key entry;
        memset(&entry, 0, sizeof(entry));
        entry.key = load_key(argv[3]);
        if (kp_jwt_key_id(entry.key, entry.kid, sizeof(entry.kid), &err) != KP_OK) {
            return 2;
        }
        size_t len = 0;
        char *token = slurp(argv[4], &len);
        while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r')) {
            len--;
        }
        struct kp_jwt jwt;
        enum kp_jwt_verdict verdict;
        int64_t now = strtoll(argv[5], NULL, 10);
        if (kp_jwt_verify(token, len, &entry, 1, now, 60, &jwt, &verdict, &err) != KP_OK) {
            fprintf(stderr, "verify did not run: %s\n", err.message);
            return 2;
        }
        printf("%s\n", kp_jwt_verdict_name(verdict));
        if (verdict != KP_JWT_VALID) {
            fprintf(stderr, "%s\n", err.message);
        }
        kp_jwt_wipe(&jwt);
        free(token);
        EVP_PKEY_free(entry.key);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[2], "jwks") == 0) {
        size_t count = (size_t)argc - 3;
        struct kp_jwt_key *keys = calloc(count, sizeof(*keys));
        if (keys == NULL) {
            return 2;
        }
        for (size_t i = 0; i < count; i++) {
            keys[i].key = load_key(argv[3 + i]);
            if (kp_jwt_key_id(keys[i].key, keys[i].kid, sizeof(keys[i].kid), &err) != KP_OK) {
                return 2;
            }
        }
        json_t *jwks = NULL;
        if (kp_jwt_jwks(keys, count, &jwks, &err) != KP_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 2;
        }
        char *text = json_dumps(jwks, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(jwks);
        for (size_t i = 0; i < count; i++) {
            EVP_PKEY_free(keys[i].key);
        }
        free(keys);
        return 0;
    }
    fprintf(stderr, "usage: test_jws tool kid|sign|verify|jwks ...\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "tool") == 0) {
        return tool_main(argc, argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alg_for_key),
        cmocka_unit_test(test_key_id),
        cmocka_unit_test(test_sign_verify_round_trip),
        cmocka_unit_test(test_verdict_table),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_several_keys),
        cmocka_unit_test(test_prepared_keys),
        cmocka_unit_test(test_leeway_and_arguments),
        cmocka_unit_test(test_sign_errors),
        cmocka_unit_test(test_verdict_names),
        cmocka_unit_test(test_jwks),
        cmocka_unit_test(test_jwks_leading_zero),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
