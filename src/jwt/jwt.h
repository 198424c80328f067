/*
 * jwt/jwt.h - JSON Web Tokens (RFC 7519) in the JWS compact serialization (RFC 7515 §7.1):
 * BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature).
 *
 * For now only what `kpki inspect` needs: split a token and decode its header and claims.
 * NOTHING HERE VERIFIES A SIGNATURE: a decoded token is a claim by whoever wrote it, not an
 * identity. The signature is checked for well-formed base64url and then cleansed; it is never
 * kept, returned or printed.
 *
 * Thread-safe: no shared state. Messages never contain the token or any part of it.
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

#endif
