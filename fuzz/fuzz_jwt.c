/*
 * fuzz_jwt - kp_jwt_decode and kp_jwt_looks_like (jwt/jwt.h), the reader kpki inspect uses on
 * bearer tokens.
 *
 * Invariants beyond "no crash, no leak, no UB": a decoded token has JSON objects for header and
 * claims; a rejected one leaves the struct empty; kp_jwt_looks_like never claims an input that
 * has no '.'.
 */
#include <string.h>

#include "fuzz.h"
#include "jwt/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kp_jwt jwt;
    memset(&jwt, 0, sizeof(jwt));
    struct kp_error err;
    bool looks = kp_jwt_looks_like((const char *)data, size);
    if (looks) {
        FUZZ_CHECK(memchr(data, '.', size) != NULL);
    }
    if (kp_jwt_decode((const char *)data, size, &jwt, &err) == KP_OK) {
        FUZZ_CHECK(json_is_object(jwt.header));
        FUZZ_CHECK(json_is_object(jwt.claims));
    } else {
        FUZZ_CHECK(jwt.header == NULL && jwt.claims == NULL);
        FUZZ_CHECK(err.message[0] != '\0');
    }
    kp_jwt_wipe(&jwt);
    return 0;
}
