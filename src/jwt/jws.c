/*
 * JWS signing and verification for service-account tokens (see jwt.h; docs/jwt.md).
 *
 * Implementation notes. kp_jwt_verify runs these steps in order; the first that fails decides
 * the verdict, and nothing after it runs:
 *  1. shape: at most KP_JWT_MAX bytes, then kp_jwt_decode (three parts, unpadded base64url,
 *     JSON objects, no duplicate names)                                      -> MALFORMED
 *  2. header: "alg" a string, "kid" a string when present, no "crit"          -> MALFORMED
 *     "alg" one of RS256, ES256, ES384 (so never none, HS*, PS*, ...)         -> BAD_ALG
 *  3. keys: with a kid, only the keys carrying that kid (none: UNKNOWN_KEY); without one, every
 *     key. Of those, only the keys whose own algorithm (kp_jwt_alg_for_key, or the one recorded
 *     by kp_jwt_key_prepare) is the header's alg are tried (none: BAD_ALG). The header picks
 *     among OUR keys; it never chooses how a key is used (RFC 8725 §3.1: the
 *     HS256-with-the-RSA-public-key confusion cannot happen, because no key here has an HMAC
 *     algorithm).
 *  4. signature: RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3); ES256/ES384 are R || S
 *     of exactly 2 x 32 / 2 x 48 bytes (RFC 7518 §3.4), re-encoded as a DER ECDSA-Sig-Value
 *     for OpenSSL; checked by EVP_PKEY_verify of the digest on a copy of the key's prepared
 *     template (kp_jwt_key_prepare; a key not prepared is prepared for the call). No
 *     candidate verifies: BAD_SIGNATURE when a kid named the key, UNKNOWN_KEY when there was
 *     no kid (the token was signed by no key we hold, as jwt.h says).
 *  5. time claims, read only from a payload whose signature verified: exp, nbf and iat absent
 *     or JSON numbers (else MALFORMED); then go-jose's order: nbf > now + leeway ->
 *     NOT_YET_VALID, exp + leeway <= now -> EXPIRED, iat > now + leeway -> NOT_YET_VALID.
 * Invariants: the token and its decoded signature never reach a message or a log, and the
 * decoded signature is cleansed; work is bounded by KP_JWT_MAX and the caller's key count;
 * the signature comparison itself is OpenSSL's. A verdict is data: KP_OK is returned whenever
 * the check ran, with err->code KP_OK and err->message a one-line reason (empty when valid).
 */
#include "jwt/jwt.h"

#include "crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An algorithm kpki signs and verifies with. */
struct jws_alg {
    const char *name;      /* JWS "alg" */
    const char *digest;    /* OpenSSL digest name */
    size_t coordinate_len; /* ECDSA: bytes of R and of S in the JWS form; 0 for RSA */
    const char *curve;     /* JWK "crv"; NULL for RSA */
};

static const struct jws_alg ALG_RS256 = {"RS256", "SHA256", 0, NULL};
static const struct jws_alg ALG_ES256 = {"ES256", "SHA256", 32, "P-256"};
static const struct jws_alg ALG_ES384 = {"ES384", "SHA384", 48, "P-384"};

/* Go's crypto/rsa (1.24 and later) refuses RSA keys under 1024 bits; so does kpki. Kubernetes
 * puts no other bound on the size of a service-account RSA key. */
#define MIN_RSA_BITS 1024

/* The algorithm a key is used with, or NULL. Decided by the key alone (docs/jwt.md). */
static const struct jws_alg *alg_of_key(EVP_PKEY *key)
{
    if (key == NULL) {
        return NULL;
    }
    /* "RSA" is not "RSA-PSS": a PSS-restricted key cannot make RS256 signatures. */
    if (EVP_PKEY_is_a(key, "RSA")) {
        return EVP_PKEY_get_bits(key) >= MIN_RSA_BITS ? &ALG_RS256 : NULL;
    }
    if (!EVP_PKEY_is_a(key, "EC")) {
        return NULL;
    }
    char group[80];
    size_t group_len = 0;
    if (!EVP_PKEY_get_group_name(key, group, sizeof(group), &group_len)) {
        ERR_clear_error(); /* explicit curve parameters: not a named curve, not for us */
        return NULL;
    }
    int nid = OBJ_sn2nid(group);
    if (nid == NID_undef) {
        nid = EC_curve_nist2nid(group);
    }
    if (nid == NID_X9_62_prime256v1) {
        return &ALG_ES256;
    }
    if (nid == NID_secp384r1) {
        return &ALG_ES384;
    }
    return NULL;
}

const char *kp_jwt_alg_for_key(EVP_PKEY *key)
{
    const struct jws_alg *alg = alg_of_key(key);
    return alg != NULL ? alg->name : NULL;
}

/* Unpadded base64url (RFC 4648 §5) into out, which holds base64url_length(len) + 1 bytes. */
static size_t base64url_length(size_t len)
{
    return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

static void base64url_encode(const unsigned char *data, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t used = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t bits = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[used++] = alphabet[bits >> 18 & 63];
        out[used++] = alphabet[bits >> 12 & 63];
        out[used++] = alphabet[bits >> 6 & 63];
        out[used++] = alphabet[bits & 63];
    }
    if (len - i == 1) {
        uint32_t bits = (uint32_t)data[i] << 16;
        out[used++] = alphabet[bits >> 18 & 63];
        out[used++] = alphabet[bits >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t bits = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        out[used++] = alphabet[bits >> 18 & 63];
        out[used++] = alphabet[bits >> 12 & 63];
        out[used++] = alphabet[bits >> 6 & 63];
    }
    out[used] = '\0';
}

/* A new JSON string holding the base64url of data, or NULL when out of memory. */
static json_t *base64url_json(const unsigned char *data, size_t len)
{
    char *text = malloc(base64url_length(len) + 1);
    if (text == NULL) {
        return NULL;
    }
    base64url_encode(data, len, text);
    json_t *value = json_string(text);
    free(text);
    return value;
}

enum kp_result kp_jwt_key_id(EVP_PKEY *key, char *out, size_t size, struct kp_error *err)
{
    if (size > 0) {
        out[0] = '\0';
    }
    /* 32 digest bytes are 43 base64url characters, plus the NUL. */
    if (size < base64url_length(32) + 1) {
        return kp_error_set(err, KP_ERR_INTERNAL, "key id buffer too small (%zu bytes, need 44)",
                            size);
    }
    ERR_clear_error();
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(key, &der);
    if (der_len <= 0) {
        return kp_error_openssl(err, KP_ERR_INVALID, "cannot encode the public key for its key id");
    }
    unsigned char digest[32];
    unsigned int digest_len = 0;
    int ok = EVP_Digest(der, (size_t)der_len, digest, &digest_len, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok || digest_len != sizeof(digest)) {
        return kp_error_openssl(err, KP_ERR_INTERNAL, "cannot hash the public key for its key id");
    }
    base64url_encode(digest, digest_len, out);
    return KP_OK;
}

/* ---- signing ---- */

/* The JWS form of an ECDSA signature: DER ECDSA-Sig-Value -> R || S, each left-padded to
 * coordinate_len bytes (RFC 7518 §3.4). out holds 2 * coordinate_len bytes. */
static bool ecdsa_der_to_raw(const unsigned char *der, size_t der_len, size_t coordinate_len,
                             unsigned char *out)
{
    const unsigned char *cursor = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &cursor, (long)der_len);
    if (sig == NULL) {
        return false;
    }
    const BIGNUM *r = NULL;
    const BIGNUM *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    bool ok = BN_bn2binpad(r, out, (int)coordinate_len) == (int)coordinate_len &&
              BN_bn2binpad(s, out + coordinate_len, (int)coordinate_len) == (int)coordinate_len;
    ECDSA_SIG_free(sig);
    return ok;
}

/* Signs input with key; *signature (JWS form) is heap memory, free with free(). */
static enum kp_result sign_input(EVP_PKEY *key, const struct jws_alg *alg,
                                 const unsigned char *input, size_t input_len,
                                 unsigned char **signature, size_t *signature_len,
                                 struct kp_error *err)
{
    *signature = NULL;
    *signature_len = 0;
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *raw = NULL;
    unsigned char *jws = NULL;
    size_t raw_len = 0;
    if (ctx == NULL || EVP_DigestSignInit_ex(ctx, NULL, alg->digest, NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(ctx, NULL, &raw_len, input, input_len) != 1) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot sign the JWT with %s", alg->name);
        goto done;
    }
    raw = malloc(raw_len);
    if (raw == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto done;
    }
    if (EVP_DigestSign(ctx, raw, &raw_len, input, input_len) != 1) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot sign the JWT with %s", alg->name);
        goto done;
    }
    if (alg->coordinate_len == 0) {
        *signature = raw;
        *signature_len = raw_len;
        raw = NULL;
        goto done;
    }
    jws = malloc(2 * alg->coordinate_len);
    if (jws == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto done;
    }
    if (!ecdsa_der_to_raw(raw, raw_len, alg->coordinate_len, jws)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot convert the %s signature", alg->name);
        goto done;
    }
    *signature = jws;
    *signature_len = 2 * alg->coordinate_len;
    jws = NULL;
done:
    free(raw);
    free(jws);
    EVP_MD_CTX_free(ctx);
    return rc;
}

enum kp_result kp_jwt_sign(EVP_PKEY *key, const char *kid, json_t *claims, char **token,
                           size_t *token_len, struct kp_error *err)
{
    *token = NULL;
    if (token_len != NULL) {
        *token_len = 0;
    }
    const struct jws_alg *alg = alg_of_key(key);
    if (alg == NULL) {
        char described[64] = "no key";
        if (key != NULL) {
            kp_key_describe(key, described, sizeof(described));
        }
        return kp_error_set(err, KP_ERR_INVALID,
                            "cannot sign a JWT with %s: kpki signs with RSA (RS256), "
                            "ECDSA P-256 (ES256) and P-384 (ES384) keys",
                            described);
    }
    if (!json_is_object(claims)) {
        return kp_error_set(err, KP_ERR_INVALID, "JWT claims must be a JSON object");
    }
    enum kp_result rc = KP_OK;
    json_t *header = NULL;
    char *header_json = NULL;
    char *payload_json = NULL;
    char *text = NULL;
    size_t text_size = 0;
    unsigned char *signature = NULL;
    size_t signature_len = 0;

    /* alg first, then kid: the order and spelling of Kubernetes' signer (go-jose). */
    header = json_object();
    if (header == NULL || json_object_set_new(header, "alg", json_string(alg->name)) != 0 ||
        (kid != NULL && kid[0] != '\0' &&
         json_object_set_new(header, "kid", json_string(kid)) != 0)) {
        rc = kp_error_set(err, KP_ERR_INVALID, "cannot build the JWT header (is the kid UTF-8?)");
        goto done;
    }
    header_json = json_dumps(header, JSON_COMPACT);
    payload_json = json_dumps(claims, JSON_COMPACT);
    if (header_json == NULL || payload_json == NULL) {
        rc = kp_error_set(err, KP_ERR_INVALID, "cannot serialize the JWT claims");
        goto done;
    }
    size_t header_len = strlen(header_json);
    size_t payload_len = strlen(payload_json);
    /* Longest signature: the RSA modulus, or for ECDSA the largest DER form (longer than
     * R || S). */
    size_t signature_max = (size_t)EVP_PKEY_get_size(key);
    size_t input_len = base64url_length(header_len) + 1 + base64url_length(payload_len);
    if (payload_len > KP_JWT_MAX || input_len + 1 + base64url_length(signature_max) > KP_JWT_MAX) {
        rc = kp_error_set(err, KP_ERR_TOO_LARGE,
                          "JWT claims too large: the token would exceed %d bytes", KP_JWT_MAX);
        goto done;
    }
    text_size = input_len + 1 + base64url_length(signature_max) + 1;
    text = malloc(text_size);
    if (text == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto done;
    }
    base64url_encode((const unsigned char *)header_json, header_len, text);
    text[base64url_length(header_len)] = '.';
    base64url_encode((const unsigned char *)payload_json, payload_len,
                     text + base64url_length(header_len) + 1);
    rc = sign_input(key, alg, (const unsigned char *)text, input_len, &signature, &signature_len,
                    err);
    if (rc != KP_OK) {
        goto done;
    }
    if (signature_len > signature_max) {
        rc = kp_error_set(err, KP_ERR_INTERNAL, "%s signature longer than the key allows",
                          alg->name);
        goto done;
    }
    text[input_len] = '.';
    base64url_encode(signature, signature_len, text + input_len + 1);
    *token = text;
    if (token_len != NULL) {
        *token_len = input_len + 1 + base64url_length(signature_len);
    }
    text = NULL;
done:
    kp_secret_free(text, text_size); /* a failed token might already be usable */
    free(signature);
    free(header_json);
    free(payload_json);
    json_decref(header);
    return rc;
}

/* ---- verification ---- */

const char *kp_jwt_verdict_name(enum kp_jwt_verdict verdict)
{
    switch (verdict) {
    case KP_JWT_VALID:
        return "valid";
    case KP_JWT_MALFORMED:
        return "malformed";
    case KP_JWT_BAD_ALG:
        return "bad-alg";
    case KP_JWT_UNKNOWN_KEY:
        return "unknown-key";
    case KP_JWT_BAD_SIGNATURE:
        return "bad-signature";
    case KP_JWT_EXPIRED:
        return "expired";
    case KP_JWT_NOT_YET_VALID:
        return "not-yet-valid";
    }
    return "unknown";
}

/* Records a verdict and its reason; the check ran, so the result is KP_OK. */
KP_PRINTF(4, 5)
static enum kp_result decide(enum kp_jwt_verdict *verdict, enum kp_jwt_verdict value,
                             struct kp_error *err, const char *fmt, ...)
{
    *verdict = value;
    va_list ap;
    va_start(ap, fmt);
    kp_error_vset(err, KP_OK, fmt, ap);
    va_end(ap);
    return KP_OK;
}

/* The header's alg if it is one kpki verifies, else NULL. */
static const struct jws_alg *alg_by_name(const char *name)
{
    static const struct jws_alg *const known[] = {&ALG_RS256, &ALG_ES256, &ALG_ES384};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(name, known[i]->name) == 0) {
            return known[i];
        }
    }
    return NULL;
}

/* DER ECDSA-Sig-Value from R || S; *der: free with OPENSSL_free. False if it cannot be built
 * (out of memory: the caller treats it as "does not verify", which refuses the token). */
static bool ecdsa_raw_to_der(const unsigned char *raw, size_t coordinate_len, unsigned char **der,
                             size_t *der_len)
{
    *der = NULL;
    *der_len = 0;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)coordinate_len, NULL);
    BIGNUM *s = BN_bin2bn(raw + coordinate_len, (int)coordinate_len, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return false;
    }
    /* sig owns r and s now. */
    int len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    if (len <= 0) {
        *der = NULL;
        return false;
    }
    *der_len = (size_t)len;
    return true;
}

/* A key made ready to verify (kp_jwt_key_prepare). In OpenSSL 3.0, EVP_DigestVerifyInit
 * fetches the digest and the signature implementation by name on every call: about 5 us per
 * token here, against 15 us for the RSA-2048 operation itself (docs/jwt.md). Here they are
 * fetched once: each verification hashes with the fetched digest and duplicates a context
 * already initialised for verification. The template is never changed after
 * kp_jwt_key_prepare; EVP_PKEY_CTX_dup only reads it and takes references (atomic counts), so
 * every thread shares it. */
struct kp_jwt_verifier {
    const struct jws_alg *alg;
    EVP_MD *md;             /* fetched; owned */
    EVP_PKEY_CTX *template; /* EVP_PKEY_verify_init'ed with padding and digest; owned */
};

void kp_jwt_key_release(struct kp_jwt_key *entry)
{
    if (entry == NULL || entry->verifier == NULL) {
        return;
    }
    EVP_PKEY_CTX_free(entry->verifier->template);
    EVP_MD_free(entry->verifier->md);
    free(entry->verifier);
    entry->verifier = NULL;
}

enum kp_result kp_jwt_key_prepare(struct kp_jwt_key *entry, struct kp_error *err)
{
    if (entry->verifier != NULL) {
        /* Releasing it here would free a copied entry's verifier under its owner. */
        return kp_error_set(err, KP_ERR_INTERNAL,
                            "kp_jwt_key_prepare: the key %s is prepared already", entry->kid);
    }
    const struct jws_alg *alg = alg_of_key(entry->key);
    if (alg == NULL) {
        return KP_OK;
    }
    struct kp_jwt_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    v->alg = alg;
    v->md = EVP_MD_fetch(NULL, alg->digest, NULL);
    v->template = EVP_PKEY_CTX_new_from_pkey(NULL, entry->key, NULL);
    bool ok = v->md != NULL && v->template != NULL && EVP_PKEY_verify_init(v->template) == 1 &&
              EVP_PKEY_CTX_set_signature_md(v->template, v->md) == 1 &&
              (alg->coordinate_len != 0 ||
               EVP_PKEY_CTX_set_rsa_padding(v->template, RSA_PKCS1_PADDING) == 1);
    entry->verifier = v;
    if (!ok) {
        kp_jwt_key_release(entry);
        return kp_error_openssl(err, KP_ERR_IO, "cannot prepare the %s key %s for verification",
                                alg->name, entry->kid);
    }
    return KP_OK;
}

/* The algorithm the entry's key verifies with (its verifier's, or decided now), or NULL. */
static const struct jws_alg *entry_alg(const struct kp_jwt_key *entry)
{
    return entry->verifier != NULL ? entry->verifier->alg : alg_of_key(entry->key);
}

/* The prepared way: hash with the fetched digest, verify with a copy of the template. */
static bool verifier_verifies(const struct kp_jwt_verifier *v, const unsigned char *input,
                              size_t input_len, const unsigned char *signature,
                              size_t signature_len)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_Digest(input, input_len, digest, &digest_len, v->md, NULL) != 1) {
        return false;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_dup(v->template);
    bool ok =
        ctx != NULL && EVP_PKEY_verify(ctx, signature, signature_len, digest, digest_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* Whether signature (JWS form) over input verifies with the entry's key under alg. Anything
 * that goes wrong inside OpenSSL counts as "does not verify": the input is the attacker's. */
static bool signature_verifies(const struct kp_jwt_key *entry, const struct jws_alg *alg,
                               const unsigned char *input, size_t input_len,
                               const unsigned char *signature, size_t signature_len)
{
    ERR_clear_error();
    unsigned char *der = NULL;
    size_t der_len = 0;
    if (alg->coordinate_len != 0) {
        if (signature_len != 2 * alg->coordinate_len ||
            !ecdsa_raw_to_der(signature, alg->coordinate_len, &der, &der_len)) {
            ERR_clear_error();
            return false;
        }
        signature = der;
        signature_len = der_len;
    }
    bool ok;
    if (entry->verifier != NULL) {
        ok = verifier_verifies(entry->verifier, input, input_len, signature, signature_len);
    } else {
        /* A key its caller did not prepare (tools, tests): prepared for this verification only,
         * so there is one way to verify. */
        struct kp_jwt_key once = {.key = entry->key};
        ok = kp_jwt_key_prepare(&once, NULL) == KP_OK && once.verifier != NULL &&
             verifier_verifies(once.verifier, input, input_len, signature, signature_len);
        kp_jwt_key_release(&once);
    }
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

enum time_read { TIME_ABSENT, TIME_PRESENT, TIME_BAD };

/* A NumericDate claim (RFC 7519 §2): absent, or a JSON number of seconds. Fractions are cut
 * toward zero, as go-jose's NumericDate does; null, strings and out-of-range values are bad. */
static enum time_read read_time(json_t *claims, const char *name, int64_t *value)
{
    json_t *claim = json_object_get(claims, name);
    if (claim == NULL) {
        return TIME_ABSENT;
    }
    if (json_is_integer(claim)) {
        *value = (int64_t)json_integer_value(claim);
        return TIME_PRESENT;
    }
    if (json_is_real(claim)) {
        double real = json_real_value(claim);
        /* 2^63 is exact as a double; the range test also refuses NaN. */
        if (!(real > -9223372036854775808.0 && real < 9223372036854775808.0)) {
            return TIME_BAD;
        }
        *value = (int64_t)real;
        return TIME_PRESENT;
    }
    return TIME_BAD;
}

/* Step 5 of the notes; claims come from a verified payload. */
static enum kp_result check_times(json_t *claims, int64_t now, int64_t leeway,
                                  enum kp_jwt_verdict *verdict, struct kp_error *err)
{
    static const char *const names[] = {"exp", "nbf", "iat"};
    int64_t values[3] = {0, 0, 0};
    enum time_read reads[3];
    for (size_t i = 0; i < 3; i++) {
        reads[i] = read_time(claims, names[i], &values[i]);
        if (reads[i] == TIME_BAD) {
            return decide(verdict, KP_JWT_MALFORMED, err,
                          "JWT claim '%s' is not a NumericDate (a JSON number of seconds)",
                          names[i]);
        }
    }
    /* now + leeway and exp + leeway without overflow (leeway >= 0). */
    bool now_late_saturates = now > INT64_MAX - leeway;
    int64_t latest_now = now_late_saturates ? INT64_MAX : now + leeway;
    if (reads[1] == TIME_PRESENT && !now_late_saturates && values[1] > latest_now) {
        return decide(verdict, KP_JWT_NOT_YET_VALID, err,
                      "JWT not valid yet: nbf %lld is after now %lld plus %lld s leeway",
                      (long long)values[1], (long long)now, (long long)leeway);
    }
    if (reads[0] == TIME_PRESENT && values[0] <= INT64_MAX - leeway && values[0] + leeway <= now) {
        return decide(verdict, KP_JWT_EXPIRED, err,
                      "JWT expired: exp %lld plus %lld s leeway is not after now %lld",
                      (long long)values[0], (long long)leeway, (long long)now);
    }
    /* go-jose: iat is optional, but one in the future means a misconfigured issuer. */
    if (reads[2] == TIME_PRESENT && !now_late_saturates && values[2] > latest_now) {
        return decide(verdict, KP_JWT_NOT_YET_VALID, err,
                      "JWT issued in the future: iat %lld is after now %lld plus %lld s leeway",
                      (long long)values[2], (long long)now, (long long)leeway);
    }
    return decide(verdict, KP_JWT_VALID, err, "%s", "");
}

/* Steps 2 to 4 of the notes on a decoded token. input_len: bytes of header "." payload. */
static enum kp_result check_signature(const char *token, size_t len, const struct kp_jwt *decoded,
                                      const struct kp_jwt_key *keys, size_t key_count,
                                      enum kp_jwt_verdict *verdict, struct kp_error *err)
{
    json_t *alg_value = json_object_get(decoded->header, "alg");
    json_t *kid_value = json_object_get(decoded->header, "kid");
    if (!json_is_string(alg_value)) {
        return decide(verdict, KP_JWT_MALFORMED, err, "JWT header has no \"alg\" string");
    }
    if (kid_value != NULL && !json_is_string(kid_value)) {
        return decide(verdict, KP_JWT_MALFORMED, err, "JWT header \"kid\" is not a string");
    }
    /* RFC 7515 §4.1.11: extensions marked critical must be understood; kpki knows none. */
    if (json_object_get(decoded->header, "crit") != NULL) {
        return decide(verdict, KP_JWT_MALFORMED, err,
                      "JWT header has \"crit\" extensions, which kpki does not implement");
    }
    const struct jws_alg *alg = alg_by_name(json_string_value(alg_value));
    if (alg == NULL) {
        /* The value is attacker text: name it only when it is short and printable. */
        const char *name = json_string_value(alg_value);
        bool printable = json_string_length(alg_value) <= 16;
        for (const char *c = name; printable && *c != '\0'; c++) {
            printable = *c >= 0x21 && *c <= 0x7e && *c != '"';
        }
        return decide(verdict, KP_JWT_BAD_ALG, err,
                      "JWT alg \"%s\" is not accepted: the key decides (RS256, ES256 or ES384)",
                      printable ? name : "?");
    }
    /* An empty kid is no kid (go-jose omits it; Kubernetes treats "" as "try every key"). */
    const char *kid = kid_value != NULL ? json_string_value(kid_value) : "";
    bool has_kid = kid[0] != '\0';

    size_t named = 0;
    size_t candidates = 0;
    for (size_t i = 0; i < key_count; i++) {
        if (has_kid && strcmp(keys[i].kid, kid) != 0) {
            continue;
        }
        named++;
        if (entry_alg(&keys[i]) == alg) {
            candidates++;
        }
    }
    if (named == 0) {
        return decide(verdict, KP_JWT_UNKNOWN_KEY, err,
                      has_kid ? "JWT kid names none of the %zu verification keys"
                              : "no verification key (%zu configured)",
                      key_count);
    }
    if (candidates == 0) {
        return decide(verdict, KP_JWT_BAD_ALG, err,
                      "JWT alg %s does not match the algorithm of the key%s it names", alg->name,
                      has_kid ? "" : "s");
    }

    /* kp_jwt_decode checked the three parts; find them again. */
    const char *first_dot = memchr(token, '.', len);
    const char *second_dot = memchr(first_dot + 1, '.', len - (size_t)(first_dot + 1 - token));
    size_t input_len = (size_t)(second_dot - token);
    unsigned char *signature = NULL;
    size_t signature_len = 0;
    enum kp_result rc = kp_jwt_base64url_decode(second_dot + 1, len - input_len - 1, &signature,
                                                &signature_len, err);
    if (rc != KP_OK) {
        return rc; /* decoded once already: only out of memory gets here */
    }
    bool verified = false;
    for (size_t i = 0; i < key_count && !verified; i++) {
        if ((has_kid && strcmp(keys[i].kid, kid) != 0) || entry_alg(&keys[i]) != alg) {
            continue;
        }
        verified = signature_verifies(&keys[i], alg, (const unsigned char *)token, input_len,
                                      signature, signature_len);
    }
    kp_secret_free(signature, signature_len);
    if (verified) {
        return decide(verdict, KP_JWT_VALID, err, "%s", "");
    }
    if (has_kid) {
        return decide(verdict, KP_JWT_BAD_SIGNATURE, err,
                      "JWT %s signature does not verify with the key its kid names", alg->name);
    }
    return decide(verdict, KP_JWT_UNKNOWN_KEY, err,
                  "JWT has no kid and its %s signature verifies with none of the %zu keys",
                  alg->name, candidates);
}

enum kp_result kp_jwt_verify(const char *token, size_t len, const struct kp_jwt_key *keys,
                             size_t key_count, int64_t now, int64_t leeway, struct kp_jwt *jwt,
                             enum kp_jwt_verdict *verdict, struct kp_error *err)
{
    memset(jwt, 0, sizeof(*jwt));
    *verdict = KP_JWT_MALFORMED;
    if (leeway < 0 || (keys == NULL && key_count > 0)) {
        return kp_error_set(err, KP_ERR_INTERNAL,
                            "kp_jwt_verify: leeway must be >= 0 and keys non-NULL");
    }
    if (len > KP_JWT_MAX) {
        return decide(verdict, KP_JWT_MALFORMED, err, "JWT too large (%zu bytes, at most %d)", len,
                      KP_JWT_MAX);
    }
    struct kp_jwt decoded;
    enum kp_result rc = kp_jwt_decode(token, len, &decoded, err);
    if (rc == KP_ERR_INVALID) {
        /* kp_jwt_decode's message says what is wrong and never quotes the token. */
        *verdict = KP_JWT_MALFORMED;
        if (err != NULL) {
            err->code = KP_OK;
        }
        return KP_OK;
    }
    if (rc != KP_OK) {
        return rc;
    }
    return kp_jwt_verify_decoded(token, len, &decoded, keys, key_count, now, leeway, jwt, verdict,
                                 err);
}

enum kp_result kp_jwt_verify_decoded(const char *token, size_t len, struct kp_jwt *decoded_in,
                                     const struct kp_jwt_key *keys, size_t key_count,
                                     int64_t now, int64_t leeway, struct kp_jwt *jwt,
                                     enum kp_jwt_verdict *verdict, struct kp_error *err)
{
    struct kp_jwt decoded = *decoded_in;
    memset(decoded_in, 0, sizeof(*decoded_in)); /* taken */
    memset(jwt, 0, sizeof(*jwt));
    *verdict = KP_JWT_MALFORMED;
    if (leeway < 0 || (keys == NULL && key_count > 0) || len > KP_JWT_MAX) {
        kp_jwt_wipe(&decoded);
        return kp_error_set(err, KP_ERR_INTERNAL,
                            "kp_jwt_verify_decoded: leeway must be >= 0, keys non-NULL and the "
                            "token decoded by kp_jwt_decode");
    }
    enum kp_result rc = check_signature(token, len, &decoded, keys, key_count, verdict, err);
    if (rc == KP_OK && *verdict == KP_JWT_VALID) {
        rc = check_times(decoded.claims, now, leeway, verdict, err);
    }
    if (rc == KP_OK && *verdict == KP_JWT_VALID) {
        *jwt = decoded;
    } else {
        kp_jwt_wipe(&decoded);
    }
    return rc;
}

/* ---- JWKS ---- */

/* The public parameters of one key as a JWK (RFC 7517 §4, RFC 7518 §6), members in go-jose's
 * order: use, kty, kid, crv, alg, x, y, n, e. */
static enum kp_result jwk_of(const struct kp_jwt_key *entry, json_t **out, struct kp_error *err)
{
    *out = NULL;
    const struct jws_alg *alg = alg_of_key(entry->key);
    if (alg == NULL) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "key '%s' cannot be published: kpki verifies RSA, ECDSA P-256 and "
                            "P-384 keys only",
                            entry->kid);
    }
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    json_t *jwk = json_object();
    BIGNUM *first = NULL;  /* RSA n, or EC x */
    BIGNUM *second = NULL; /* RSA e, or EC y */
    unsigned char *bytes = NULL;
    if (jwk == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto done;
    }
    bool is_rsa = alg->coordinate_len == 0;
    if (!EVP_PKEY_get_bn_param(entry->key,
                               is_rsa ? OSSL_PKEY_PARAM_RSA_N : OSSL_PKEY_PARAM_EC_PUB_X, &first) ||
        !EVP_PKEY_get_bn_param(
            entry->key, is_rsa ? OSSL_PKEY_PARAM_RSA_E : OSSL_PKEY_PARAM_EC_PUB_Y, &second)) {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot read the public key '%s'", entry->kid);
        goto done;
    }
    /* RSA: big-endian without leading zeros (RFC 7518 §6.3.1); EC: the full coordinate
     * length even when it starts with zeros (RFC 7518 §6.2.1.2). */
    size_t first_len = is_rsa ? (size_t)BN_num_bytes(first) : alg->coordinate_len;
    size_t second_len = is_rsa ? (size_t)BN_num_bytes(second) : alg->coordinate_len;
    bytes = malloc(first_len + second_len + 1);
    if (bytes == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto done;
    }
    if (BN_bn2binpad(first, bytes, (int)first_len) != (int)first_len ||
        BN_bn2binpad(second, bytes + first_len, (int)second_len) != (int)second_len) {
        rc =
            kp_error_openssl(err, KP_ERR_INTERNAL, "cannot encode the public key '%s'", entry->kid);
        goto done;
    }
    bool ok =
        json_object_set_new(jwk, "use", json_string("sig")) == 0 &&
        json_object_set_new(jwk, "kty", json_string(is_rsa ? "RSA" : "EC")) == 0 &&
        (entry->kid[0] == '\0' || json_object_set_new(jwk, "kid", json_string(entry->kid)) == 0) &&
        (is_rsa || json_object_set_new(jwk, "crv", json_string(alg->curve)) == 0) &&
        json_object_set_new(jwk, "alg", json_string(alg->name)) == 0 &&
        json_object_set_new(jwk, is_rsa ? "n" : "x", base64url_json(bytes, first_len)) == 0 &&
        json_object_set_new(jwk, is_rsa ? "e" : "y",
                            base64url_json(bytes + first_len, second_len)) == 0;
    if (!ok) {
        rc = kp_error_set(err, KP_ERR_INVALID,
                          "cannot build the JWK of key '%s' (is the kid UTF-8?)", entry->kid);
        goto done;
    }
    *out = jwk;
    jwk = NULL;
done:
    free(bytes);
    BN_free(first);
    BN_free(second);
    json_decref(jwk);
    return rc;
}

enum kp_result kp_jwt_jwks(const struct kp_jwt_key *keys, size_t key_count, json_t **jwks,
                           struct kp_error *err)
{
    *jwks = NULL;
    json_t *list = json_array();
    json_t *document = json_object();
    if (list == NULL || document == NULL) {
        json_decref(list);
        json_decref(document);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    for (size_t i = 0; i < key_count; i++) {
        json_t *jwk = NULL;
        enum kp_result rc = jwk_of(&keys[i], &jwk, err);
        if (rc == KP_OK && json_array_append_new(list, jwk) != 0) {
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        }
        if (rc != KP_OK) {
            json_decref(list);
            json_decref(document);
            return rc;
        }
    }
    if (json_object_set_new(document, "keys", list) != 0) {
        json_decref(document);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    *jwks = document;
    return KP_OK;
}
