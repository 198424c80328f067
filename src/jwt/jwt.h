/*
 * jwt/jwt.h - JSON Web Tokens (RFC 7519) in the JWS compact serialization (RFC 7515 §7.1):
 * BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature).
 *
 * kp_jwt_decode splits a token and decodes its header and claims WITHOUT verifying anything (for
 * `kpki inspect`: a decoded token is a claim by whoever wrote it, not an identity).
 * kp_jwt_sign and kp_jwt_verify are the signing and the verification the API server uses for
 * service-account tokens: the algorithm always comes from the key (RSA -> RS256, P-256 -> ES256,
 * P-384 -> ES384), never from the token (RFC 7515 §10.7, RFC 8725 §3.1).
 *
 * Thread-safe: no shared state, except a prepared key's verifier, which is only read after
 * kp_jwt_key_prepare and so shared by any number of threads. Messages never contain the token or
 * any part of it.
 */
#ifndef KP_JWT_JWT_H
#define KP_JWT_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kpki/error.h"

/* Largest token kp_jwt_decode accepts, in bytes (Kubernetes' service-account tokens are about
 * 1 KiB; anything near this is not a token). */
#define KP_JWT_MAX (64 * 1024)

/* A decoded, unverified token. Caller-owned: zero it or fill it with kp_jwt_decode, release
 * it with kp_jwt_wipe. */
struct kp_jwt {
    json_t *header;       /* JOSE header, a JSON object; reference owned by the struct */
    json_t *claims;       /* the payload, a JSON object (the claims set); owned by the struct */
    size_t signature_len; /* bytes in the decoded signature (0 for an unsecured "alg":"none") */
};

/* Splits a compact JWS of exactly `len` bytes (no surrounding whitespace: trimming a file's
 * final newline is the caller's business) and decodes it. Rules, each a KP_ERR_INVALID with a
 * message saying which part is wrong:
 *  - at most KP_JWT_MAX bytes;
 *  - exactly three parts separated by '.'; header and payload non-empty;
 *  - each part base64url (RFC 4648 §5) without padding ('=' is refused, as RFC 7515 §2 says);
 *  - header and payload decode to JSON objects (UTF-8, no duplicate member names, no NUL).
 * token is borrowed for the call. On success jwt holds new references; on failure jwt is
 * zeroed. Either way call kp_jwt_wipe when done. */
KP_MUST_CHECK enum kp_result kp_jwt_decode(const char *token, size_t len, struct kp_jwt *jwt,
                                           struct kp_error *err);

/* Releases the header and claims and zeroes jwt. Safe on a zeroed or wiped struct. */
void kp_jwt_wipe(struct kp_jwt *jwt);

/* True if text (len bytes) has the shape of a compact JWS: only base64url characters and '.'
 * (and '=' so that padded tokens reach kp_jwt_decode's clearer message), with at least one '.'.
 * A cheap test for callers that must guess what an input is; kp_jwt_decode decides. */
bool kp_jwt_looks_like(const char *text, size_t len);

/* Decodes unpadded base64url. *out is heap memory with a NUL after the *out_len bytes (not
 * counted); ownership transferred, free with free(). Refuses '=', whitespace, characters
 * outside the alphabet and a length of 1 mod 4 (KP_ERR_INVALID; the message does not quote the
 * data). */
KP_MUST_CHECK enum kp_result kp_jwt_base64url_decode(const char *text, size_t len,
                                                     unsigned char **out, size_t *out_len,
                                                     struct kp_error *err);

/* ---- signing and verification ---- */

#include <openssl/evp.h>

/* The key id Kubernetes gives a service-account key: base64url (no padding) of the SHA-256 of
 * its PKIX (SubjectPublicKeyInfo) DER. out must hold 44 bytes. */
KP_MUST_CHECK enum kp_result kp_jwt_key_id(EVP_PKEY *key, char *out, size_t size,
                                           struct kp_error *err);

/* "RS256", "ES256" or "ES384" for the key; NULL for a key kpki does not sign with. */
const char *kp_jwt_alg_for_key(EVP_PKEY *key);

/* Signs claims (borrowed) with key: header {"alg":..., "kid": kid}, compact serialization;
 * ECDSA signatures in the JWS form (R || S, RFC 7518 §3.4), not DER. *token: free with free(). */
KP_MUST_CHECK enum kp_result kp_jwt_sign(EVP_PKEY *key, const char *kid, json_t *claims,
                                         char **token, size_t *token_len, struct kp_error *err);

struct kp_jwt_verifier; /* private to jws.c */

/* A verification key: the public key and its kid. A key that verifies many tokens (the API
 * server's) is made ready once with kp_jwt_key_prepare; a key with a NULL verifier verifies
 * too, prepared for each verification (slower: OpenSSL looks its algorithms up each time). */
struct kp_jwt_key {
    EVP_PKEY *key; /* borrowed */
    char kid[64];
    struct kp_jwt_verifier *verifier; /* owned: kp_jwt_key_prepare / kp_jwt_key_release */
};

/* Makes entry->key ready to verify: its algorithm decided and OpenSSL's digest and
 * verification context built once, then shared (read-only) by every thread's verifications.
 * A key kpki does not verify with (kp_jwt_alg_for_key NULL) is left as it is: KP_OK, and
 * verifications skip it as before. Errors: out of memory or OpenSSL refusing the key
 * (KP_ERR_IO, with OpenSSL's reason); an entry already prepared is KP_ERR_INTERNAL. The entry
 * owns the verifier (which holds its own reference to the key): release it with
 * kp_jwt_key_release, and release then prepare again after changing entry->key. A copy of a
 * prepared entry must not be released (zero its verifier first). */
KP_MUST_CHECK enum kp_result kp_jwt_key_prepare(struct kp_jwt_key *entry, struct kp_error *err);

/* Frees what kp_jwt_key_prepare built; entry->key and kid are untouched. Safe when none. */
void kp_jwt_key_release(struct kp_jwt_key *entry);

/* Why a token was refused (data, not an error: the check ran). */
enum kp_jwt_verdict {
    KP_JWT_VALID = 0,
    KP_JWT_MALFORMED,      /* not a compact JWS with JSON header and claims */
    KP_JWT_BAD_ALG,        /* "none", HMAC, or an alg that does not match the key */
    KP_JWT_UNKNOWN_KEY,    /* kid names no key (or no key verifies when there is no kid) */
    KP_JWT_BAD_SIGNATURE,
    KP_JWT_EXPIRED,        /* exp + leeway <= now */
    KP_JWT_NOT_YET_VALID,  /* nbf - leeway > now (or iat - leeway > now) */
};

const char *kp_jwt_verdict_name(enum kp_jwt_verdict verdict);

/* Verifies token (len bytes) against keys (the one whose kid the header names; every key when
 * the header has no kid), then the time claims exp/nbf/iat with leeway seconds (go-jose's
 * default is 60). On KP_JWT_VALID, jwt holds header and claims (wipe it); otherwise jwt is
 * zeroed. Issuer, audience and the Kubernetes claims are the caller's to check.
 * Returns KP_OK when the check ran. */
KP_MUST_CHECK enum kp_result kp_jwt_verify(const char *token, size_t len,
                                           const struct kp_jwt_key *keys, size_t key_count,
                                           int64_t now, int64_t leeway, struct kp_jwt *jwt,
                                           enum kp_jwt_verdict *verdict, struct kp_error *err);

/* kp_jwt_verify for a token already decoded by kp_jwt_decode (decoded is taken: wiped here),
 * so a caller that looked at the unverified claims first does not decode twice. */
KP_MUST_CHECK enum kp_result kp_jwt_verify_decoded(const char *token, size_t len,
                                                   struct kp_jwt *decoded,
                                                   const struct kp_jwt_key *keys,
                                                   size_t key_count, int64_t now, int64_t leeway,
                                                   struct kp_jwt *jwt,
                                                   enum kp_jwt_verdict *verdict,
                                                   struct kp_error *err);

/* The JWKS document of keys ({"keys":[{"use":"sig","kty":...,"alg":...,"kid":...,...}]}), as
 * kube-apiserver serves at /openid/v1/jwks. A new reference. */
KP_MUST_CHECK enum kp_result kp_jwt_jwks(const struct kp_jwt_key *keys, size_t key_count,
                                         json_t **jwks, struct kp_error *err);

#endif
