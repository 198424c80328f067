/*
 * RSA key generation.
 *
 * Why kpki assembles RSA keys itself: for 2048 bits or more with e = 65537, OpenSSL 3.0's
 * EVP_PKEY_keygen takes the SP 800-56B route (ossl_rsa_sp800_56b_generate_key), which builds
 * each prime from auxiliary primes (FIPS 186-4 B.3.6) and then re-validates the key; it costs
 * about 180 ms per RSA-2048 key on the reference machine, ~1.5x Go and ~3x OpenSSL 1.1.1
 * (openssl/openssl issue 15183). A kubeadm-like tree has 17 keys, so that cost is the run.
 *
 * What stays with OpenSSL: the primes. Each comes from BN_generate_prime_ex2 - OpenSSL's own
 * generator: CSPRNG candidates with the top two bits set, a sieve of small primes, then 64 rounds
 * of Miller-Rabin (more than FIPS 186-5 Table B.1 asks for). What kpki does is only the
 * arithmetic that turns two primes into a key, with the checks of FIPS 186-5 A.1.3 / SP 800-56B
 * 6.3.1: gcd(p-1, e) = gcd(q-1, e) = 1, |p - q| > 2^(nlen/2 - 100), p and q >= sqrt(2)*2^(nlen/2-1)
 * (implied by the top two bits), n of exactly nlen bits, d = e^-1 mod lcm(p-1, q-1) with
 * 2^(nlen/2) < d. The result is loaded through EVP_PKEY_fromdata and must pass a sign/verify
 * pairwise test before it is returned. The measured cost is ~65 ms per RSA-2048 key.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <string.h>

#include "crypto/crypto.h"

#define RSA_PUBLIC_EXPONENT 65537

struct rsa_parts {
    BIGNUM *p, *q, *n, *e, *d, *dp, *dq, *qinv;
};

static void rsa_parts_free(struct rsa_parts *parts)
{
    BN_clear_free(parts->p);
    BN_clear_free(parts->q);
    BN_free(parts->n);
    BN_free(parts->e);
    BN_clear_free(parts->d);
    BN_clear_free(parts->dp);
    BN_clear_free(parts->dq);
    BN_clear_free(parts->qinv);
    memset(parts, 0, sizeof(*parts));
}

/* A prime of `bits` bits with gcd(prime - 1, e) = 1 (e is prime, so: (prime - 1) mod e != 0). */
static int generate_prime(BIGNUM *prime, int bits, BN_CTX *ctx)
{
    for (;;) {
        if (!BN_generate_prime_ex2(prime, bits, 0, NULL, NULL, NULL, ctx)) {
            return 0;
        }
        BN_ULONG remainder = BN_mod_word(prime, RSA_PUBLIC_EXPONENT);
        if (remainder == (BN_ULONG)-1) {
            return 0;
        }
        if (remainder != 1) {
            return 1;
        }
    }
}

/* Fills parts->n, d, dp, dq, qinv from p, q, e. Returns 1 if the pair is acceptable, 0 if a
 * new pair must be drawn, -1 on an OpenSSL failure. */
static int derive_key(struct rsa_parts *parts, int bits, BN_CTX *ctx)
{
    int result = -1;
    BN_CTX_start(ctx);
    BIGNUM *diff = BN_CTX_get(ctx);
    BIGNUM *bound = BN_CTX_get(ctx);
    BIGNUM *p1 = BN_CTX_get(ctx);
    BIGNUM *q1 = BN_CTX_get(ctx);
    BIGNUM *gcd = BN_CTX_get(ctx);
    BIGNUM *lcm = BN_CTX_get(ctx);
    BIGNUM *product = BN_CTX_get(ctx);
    if (product == NULL) {
        goto done;
    }
    /* |p - q| > 2^(nlen/2 - 100) */
    if (!BN_sub(diff, parts->p, parts->q) || !BN_set_word(bound, 0) ||
        !BN_set_bit(bound, bits / 2 - 100)) {
        goto done;
    }
    BN_set_negative(diff, 0);
    if (BN_cmp(diff, bound) <= 0) {
        result = 0;
        goto done;
    }
    if (!BN_mul(parts->n, parts->p, parts->q, ctx)) {
        goto done;
    }
    if (BN_num_bits(parts->n) != bits) {
        result = 0;
        goto done;
    }
    /* lambda = lcm(p-1, q-1) = (p-1)(q-1) / gcd(p-1, q-1) */
    BN_set_flags(p1, BN_FLG_CONSTTIME);
    BN_set_flags(q1, BN_FLG_CONSTTIME);
    if (!BN_sub(p1, parts->p, BN_value_one()) || !BN_sub(q1, parts->q, BN_value_one()) ||
        !BN_mul(product, p1, q1, ctx) || !BN_gcd(gcd, p1, q1, ctx) ||
        !BN_div(lcm, NULL, product, gcd, ctx)) {
        goto done;
    }
    BN_set_flags(lcm, BN_FLG_CONSTTIME);
    if (BN_mod_inverse(parts->d, parts->e, lcm, ctx) == NULL) {
        result = 0; /* e not invertible: cannot happen after generate_prime's check */
        ERR_clear_error();
        goto done;
    }
    /* 2^(nlen/2) < d */
    if (!BN_set_word(bound, 0) || !BN_set_bit(bound, bits / 2)) {
        goto done;
    }
    if (BN_cmp(parts->d, bound) <= 0) {
        result = 0;
        goto done;
    }
    BN_set_flags(parts->d, BN_FLG_CONSTTIME);
    if (!BN_mod(parts->dp, parts->d, p1, ctx) || !BN_mod(parts->dq, parts->d, q1, ctx)) {
        goto done;
    }
    BN_set_flags(parts->p, BN_FLG_CONSTTIME);
    if (BN_mod_inverse(parts->qinv, parts->q, parts->p, ctx) == NULL) {
        goto done;
    }
    result = 1;
done:
    BN_CTX_end(ctx);
    return result;
}

static EVP_PKEY *build_pkey(const struct rsa_parts *parts)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *builder = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (builder == NULL || !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, parts->n) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, parts->e) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_D, parts->d) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_FACTOR1, parts->p) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_FACTOR2, parts->q) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_EXPONENT1, parts->dp) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_EXPONENT2, parts->dq) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, parts->qinv)) {
        goto done;
    }
    params = OSSL_PARAM_BLD_to_param(builder);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params); /* clears secret values */
    OSSL_PARAM_BLD_free(builder);
    return pkey;
}

/* Signs a random digest and verifies it: proves the assembled key is consistent. */
static int pairwise_test(EVP_PKEY *pkey)
{
    unsigned char digest[32];
    unsigned char signature[512];
    size_t signature_len = sizeof(signature);
    int ok = 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL || RAND_bytes(digest, sizeof(digest)) != 1 || EVP_PKEY_sign_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_sign(ctx, signature, &signature_len, digest, sizeof(digest)) <= 0 ||
        EVP_PKEY_verify_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0) {
        goto done;
    }
    ok = EVP_PKEY_verify(ctx, signature, signature_len, digest, sizeof(digest)) == 1;
done:
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

enum kp_result kp_rsa_generate(int bits, EVP_PKEY **out, struct kp_error *err)
{
    *out = NULL;
    if (bits != 2048 && bits != 3072 && bits != 4096) {
        return kp_error_set(err, KP_ERR_INVALID, "unsupported RSA key size %d", bits);
    }
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    struct rsa_parts parts = {0};
    BN_CTX *ctx = BN_CTX_secure_new();
    parts.p = BN_secure_new();
    parts.q = BN_secure_new();
    parts.n = BN_new();
    parts.e = BN_new();
    parts.d = BN_secure_new();
    parts.dp = BN_secure_new();
    parts.dq = BN_secure_new();
    parts.qinv = BN_secure_new();
    if (ctx == NULL || parts.p == NULL || parts.q == NULL || parts.n == NULL || parts.e == NULL ||
        parts.d == NULL || parts.dp == NULL || parts.dq == NULL || parts.qinv == NULL ||
        !BN_set_word(parts.e, RSA_PUBLIC_EXPONENT)) {
        rc = kp_error_openssl(err, KP_ERR_IO, "cannot generate an RSA-%d key", bits);
        goto done;
    }
    for (int attempt = 0;; attempt++) {
        if (attempt == 100) {
            rc = kp_error_set(err, KP_ERR_INTERNAL, "cannot generate an RSA-%d key: no valid "
                              "prime pair after 100 attempts", bits);
            goto done;
        }
        if (!generate_prime(parts.p, bits / 2, ctx) || !generate_prime(parts.q, bits / 2, ctx)) {
            rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot generate an RSA-%d key", bits);
            goto done;
        }
        /* Keep p > q, the order PKCS#1 implementations conventionally store. */
        if (BN_cmp(parts.p, parts.q) < 0) {
            BIGNUM *swap = parts.p;
            parts.p = parts.q;
            parts.q = swap;
        }
        int derived = derive_key(&parts, bits, ctx);
        if (derived < 0) {
            rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot generate an RSA-%d key", bits);
            goto done;
        }
        if (derived == 1) {
            break;
        }
    }
    *out = build_pkey(&parts);
    if (*out == NULL) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot assemble an RSA-%d key", bits);
        goto done;
    }
    if (!pairwise_test(*out)) {
        EVP_PKEY_free(*out);
        *out = NULL;
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "RSA-%d key failed its pairwise test", bits);
    }
done:
    rsa_parts_free(&parts);
    BN_CTX_free(ctx);
    return rc;
}
