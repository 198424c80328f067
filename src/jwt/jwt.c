/*
 * JWS compact serialization: splitting and decoding, never verifying (see jwt.h).
 *
 * The decoder is strict where the JOSE RFCs are: unpadded base64url only (RFC 7515 §2), JSON
 * objects for both header and claims (RFC 7515 §4, RFC 7519 §7.2 step 10), and duplicate member
 * names refused (RFC 7515 §5.2 step 4 allows either refusing or taking the last; two readers
 * taking different ones is how claim-smuggling bugs start, so kpki refuses).
 */
#include "jwt/jwt.h"

#include "crypto/crypto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One more than each base64url character's value (RFC 4648 §5); 0 for characters outside the
 * alphabet. A table, because every bearer token of every request is scanned and decoded. */
static const unsigned char BASE64URL_PLUS_ONE[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64};

/* -1 for characters outside the base64url alphabet. */
static int base64url_value(unsigned char c)
{
    return (int)BASE64URL_PLUS_ONE[c] - 1;
}

enum kp_result kp_jwt_base64url_decode(const char *text, size_t len, unsigned char **out,
                                       size_t *out_len, struct kp_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (len % 4 == 1) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid base64url: a length of %zu characters "
                            "cannot be an encoding",
                            len);
    }
    unsigned char *data = malloc(len / 4 * 3 + 3);
    if (data == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    size_t used = 0;
    uint32_t bits = 0;
    int bit_count = 0;
    for (size_t i = 0; i < len; i++) {
        int value = base64url_value((unsigned char)text[i]);
        if (value < 0) {
            free(data);
            if (text[i] == '=') {
                return kp_error_set(err, KP_ERR_INVALID,
                                    "invalid base64url: padding ('=') is "
                                    "not allowed in a JWT (RFC 7515 §2)");
            }
            return kp_error_set(err, KP_ERR_INVALID,
                                "invalid base64url: unexpected character at "
                                "offset %zu",
                                i);
        }
        bits = (bits << 6) | (uint32_t)value;
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            data[used++] = (unsigned char)(bits >> bit_count);
            bits &= (1u << bit_count) - 1;
        }
    }
    /* Leftover bits (2 or 4) are padding bits; Go's RawURLEncoding, which Kubernetes' token
     * libraries use, ignores their value, and so does kpki. */
    data[used] = '\0';
    *out = data;
    *out_len = used;
    return KP_OK;
}

bool kp_jwt_looks_like(const char *text, size_t len)
{
    bool has_dot = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '.') {
            has_dot = true;
        } else if (base64url_value(c) < 0 && c != '=') {
            return false;
        }
    }
    return has_dot;
}

/* Decodes one part into a JSON object. `part` names it in messages ("header", "payload"). */
static enum kp_result decode_object(const char *text, size_t len, const char *part, json_t **out,
                                    struct kp_error *err)
{
    *out = NULL;
    if (len == 0) {
        return kp_error_set(err, KP_ERR_INVALID, "JWT %s is empty", part);
    }
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    enum kp_result rc = kp_jwt_base64url_decode(text, len, &raw, &raw_len, err);
    if (rc != KP_OK) {
        return kp_error_prefix(err, "JWT %s", part);
    }
    json_error_t json_err;
    /* JSON_DECODE_ANY only so that a scalar gets the clearer "not an object" message. */
    json_t *value =
        json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &json_err);
    free(raw);
    if (value == NULL) {
        /* jansson ends some messages with "near '<token text>'": cut it, messages never
         * quote a token. */
        char *near = strstr(json_err.text, " near '");
        if (near != NULL) {
            *near = '\0';
        }
        return kp_error_set(err, KP_ERR_INVALID, "JWT %s is not JSON: %s (at byte %d)", part,
                            json_err.text, json_err.position);
    }
    if (!json_is_object(value)) {
        json_decref(value);
        return kp_error_set(err, KP_ERR_INVALID, "JWT %s is JSON but not an object", part);
    }
    *out = value;
    return KP_OK;
}

enum kp_result kp_jwt_decode(const char *token, size_t len, struct kp_jwt *jwt,
                             struct kp_error *err)
{
    memset(jwt, 0, sizeof(*jwt));
    if (len > KP_JWT_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "JWT too large (%zu bytes, at most %d)", len,
                            KP_JWT_MAX);
    }
    if (len == 0) {
        return kp_error_set(err, KP_ERR_INVALID, "JWT is empty");
    }
    const char *dots[2] = {NULL, NULL};
    size_t dot_count = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (dot_count < 2) {
                dots[dot_count] = token + i;
            }
            dot_count++;
        }
    }
    if (dot_count != 2) {
        /* Five parts is a JWE (RFC 7516 §7.1): encrypted, nothing to show without the key. */
        return kp_error_set(err, KP_ERR_INVALID,
                            "a JWT (compact JWS) has 3 parts separated by "
                            "'.', this has %zu%s",
                            dot_count + 1, dot_count == 4 ? " (an encrypted JWE?)" : "");
    }
    const char *payload = dots[0] + 1;
    const char *signature = dots[1] + 1;
    size_t header_len = (size_t)(dots[0] - token);
    size_t payload_len = (size_t)(dots[1] - payload);
    size_t signature_len = len - (size_t)(signature - token);

    json_t *header = NULL;
    json_t *claims = NULL;
    unsigned char *signature_raw = NULL;
    size_t signature_raw_len = 0;
    enum kp_result rc = decode_object(token, header_len, "header", &header, err);
    if (rc == KP_OK) {
        rc = decode_object(payload, payload_len, "payload", &claims, err);
    }
    if (rc == KP_OK) {
        rc = kp_jwt_base64url_decode(signature, signature_len, &signature_raw, &signature_raw_len,
                                     err);
        if (rc != KP_OK) {
            rc = kp_error_prefix(err, "JWT signature");
        }
    }
    /* With the header and payload (shown to anyone) the signature completes a usable bearer
     * token: cleansed, and never kept. */
    kp_secret_free(signature_raw, signature_raw_len);
    if (rc != KP_OK) {
        json_decref(header);
        json_decref(claims);
        return rc;
    }
    jwt->header = header;
    jwt->claims = claims;
    jwt->signature_len = signature_raw_len;
    return KP_OK;
}

void kp_jwt_wipe(struct kp_jwt *jwt)
{
    json_decref(jwt->header);
    json_decref(jwt->claims);
    memset(jwt, 0, sizeof(*jwt));
}
