/*
 * jwt: splitting and decoding compact JWS tokens (never verifying). Table-driven: each bad
 * token pins the message fragment it must produce.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "jwt/jwt.h"

/* {"alg":"RS256","kid":"k1"} */
#define HEADER "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0"
/* {"sub":"system:serviceaccount:default:builder","exp":1800000000} */
#define PAYLOAD                                                                                    \
    "eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpidWlsZGVyIiwiZXhwIjoxODAwMDAwMDAwfQ"
/* 32 bytes (fb ff bf ...): exercises '-' and '_' */
#define SIGNATURE "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8"

static void test_decodes_a_token(void **state)
{
    (void)state;
    const char *token = HEADER "." PAYLOAD "." SIGNATURE;
    struct kp_jwt jwt;
    struct kp_error err;
    assert_int_equal(kp_jwt_decode(token, strlen(token), &jwt, &err), KP_OK);
    assert_string_equal(json_string_value(json_object_get(jwt.header, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(jwt.header, "kid")), "k1");
    assert_string_equal(json_string_value(json_object_get(jwt.claims, "sub")),
                        "system:serviceaccount:default:builder");
    assert_int_equal(json_integer_value(json_object_get(jwt.claims, "exp")), 1800000000);
    assert_int_equal(jwt.signature_len, 32);
    kp_jwt_wipe(&jwt);
    assert_null(jwt.header);
    assert_null(jwt.claims);
    kp_jwt_wipe(&jwt); /* twice is harmless */
}

static void test_unsecured_token_has_empty_signature(void **state)
{
    (void)state;
    /* {"alg":"none"} . {"a":1} . (empty): RFC 7519 §6.1 */
    const char *token = "eyJhbGciOiJub25lIn0.eyJhIjoxfQ.";
    struct kp_jwt jwt;
    struct kp_error err;
    assert_int_equal(kp_jwt_decode(token, strlen(token), &jwt, &err), KP_OK);
    assert_int_equal(jwt.signature_len, 0);
    assert_int_equal(json_integer_value(json_object_get(jwt.claims, "a")), 1);
    kp_jwt_wipe(&jwt);
}

static void test_base64url(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *decoded; /* NULL: must fail */
    } rows[] = {
        {"", ""},           {"Zg", "f"},        {"Zm8", "fo"},
        {"Zm9v", "foo"},    {"Zm9vYg", "foob"}, {"Pz8_", "\x3f\x3f\x3f"}, /* '_' is 63 */
        {"-w", "\xfb"},                                                   /* '-' is 62 */
        {"Zm9vYg==", NULL},                                               /* padding */
        {"Zm9vY", NULL},                                                  /* 1 mod 4 */
        {"Zm9+", NULL},                                                   /* standard alphabet */
        {"Zm9/", NULL},     {"Zm 9v", NULL},                              /* whitespace */
        {"Zm9v\n", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        unsigned char *out = NULL;
        size_t out_len = 0;
        struct kp_error err;
        enum kp_result rc =
            kp_jwt_base64url_decode(rows[i].text, strlen(rows[i].text), &out, &out_len, &err);
        if (rows[i].decoded == NULL) {
            if (rc != KP_ERR_INVALID) {
                fail_msg("row %zu '%s' should fail", i, rows[i].text);
            }
            assert_null(out);
        } else {
            if (rc != KP_OK) {
                fail_msg("row %zu '%s': %s", i, rows[i].text, err.message);
            }
            assert_int_equal(out_len, strlen(rows[i].decoded));
            assert_memory_equal(out, rows[i].decoded, out_len);
            assert_int_equal(out[out_len], '\0');
        }
        free(out);
    }
}

/* Every byte value as the last of four characters: only the 64 of RFC 4648 §5 decode, each to
 * its place in the alphabet (the low six bits of the third byte). */
static void test_base64url_alphabet(void **state)
{
    (void)state;
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int c = 0; c < 256; c++) {
        char text[4] = {'A', 'A', 'A', (char)c};
        unsigned char *out = NULL;
        size_t out_len = 0;
        struct kp_error err;
        enum kp_result rc = kp_jwt_base64url_decode(text, 4, &out, &out_len, &err);
        const char *at = c != 0 ? strchr(alphabet, c) : NULL;
        if (at == NULL) {
            if (rc != KP_ERR_INVALID) {
                fail_msg("byte %d decoded", c);
            }
            assert_null(out);
            continue;
        }
        assert_int_equal(rc, KP_OK);
        assert_int_equal(out_len, 3);
        assert_int_equal(out[0], 0);
        assert_int_equal(out[1], 0);
        assert_int_equal(out[2], at - alphabet);
        assert_int_equal(kp_jwt_looks_like(text, 4), false); /* no '.' */
        free(out);
    }
}

static void test_rejects_bad_tokens(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *token;
        const char *message; /* a fragment the message must hold */
    } rows[] = {
        {"empty", "", "JWT is empty"},
        {"one part", HEADER, "has 3 parts separated by '.', this has 1"},
        {"two parts", HEADER "." PAYLOAD, "this has 2"},
        {"four parts", HEADER "." PAYLOAD "." SIGNATURE ".x", "this has 4"},
        {"JWE (five parts)", "a.b.c.d.e", "encrypted JWE"},
        {"empty header", "." PAYLOAD "." SIGNATURE, "JWT header is empty"},
        {"empty payload", HEADER ".." SIGNATURE, "JWT payload is empty"},
        {"padded header", "eyJhbGciOiJub25lIn0=." PAYLOAD ".",
         "JWT header: invalid base64url: "
         "padding"},
        {"padded signature", HEADER "." PAYLOAD ".c2lnbg==",
         "JWT signature: invalid base64url: "
         "padding"},
        {"standard alphabet", HEADER "." PAYLOAD ".ab+/", "JWT signature: invalid base64url"},
        {"bad character", HEADER ".eyJ!fQ." SIGNATURE,
         "JWT payload: invalid base64url: "
         "unexpected character at offset 3"},
        {"impossible length", HEADER ".eyJhI." SIGNATURE, "cannot be an encoding"},
        {"header not JSON", "bm90IGpzb24." PAYLOAD ".", "JWT header is not JSON"},
        {"payload not JSON", HEADER ".bm90IGpzb24.", "JWT payload is not JSON"},
        {"header an array", "WzFd." PAYLOAD ".", "JWT header is JSON but not an object"},
        {"payload a string", HEADER ".ImEi.", "JWT payload is JSON but not an object"},
        /* {"a":1,"a":2} */
        {"duplicate claim", HEADER ".eyJhIjoxLCJhIjoyfQ.", "JWT payload is not JSON: duplicate"},
        /* {"a":"\u0000"} is fine JSON, but a raw NUL byte inside the payload is not */
        {"NUL in payload", HEADER ".eyJhIjoiAA.", "JWT payload is not JSON"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_jwt jwt;
        struct kp_error err;
        kp_error_clear(&err);
        enum kp_result rc = kp_jwt_decode(rows[i].token, strlen(rows[i].token), &jwt, &err);
        if (rc != KP_ERR_INVALID) {
            fail_msg("%s: accepted", rows[i].name);
        }
        if (strstr(err.message, rows[i].message) == NULL) {
            fail_msg("%s: message '%s' lacks '%s'", rows[i].name, err.message, rows[i].message);
        }
        assert_null(jwt.header);
        assert_null(jwt.claims);
        kp_jwt_wipe(&jwt);
    }
}

static void test_messages_never_quote_the_token(void **state)
{
    (void)state;
    /* {"secret":"hunter2" - cut short: jansson would say "near 'hunter2'". */
    const char *token = HEADER ".eyJzZWNyZXQiOiJodW50ZXIy.";
    struct kp_jwt jwt;
    struct kp_error err;
    assert_int_equal(kp_jwt_decode(token, strlen(token), &jwt, &err), KP_ERR_INVALID);
    assert_null(strstr(err.message, "hunter2"));
    assert_null(strstr(err.message, "eyJ"));
    kp_jwt_wipe(&jwt);
}

static void test_size_limit(void **state)
{
    (void)state;
    /* A valid token of exactly KP_JWT_MAX bytes passes; one byte more is refused before any
     * decoding. The padding goes into the signature part. */
    size_t prefix_len = strlen(HEADER "." PAYLOAD ".");
    char *token = malloc(KP_JWT_MAX + 2);
    assert_non_null(token);
    memcpy(token, HEADER "." PAYLOAD ".", prefix_len);
    memset(token + prefix_len, 'A', KP_JWT_MAX - prefix_len);
    size_t len = KP_JWT_MAX;
    while ((len - prefix_len) % 4 == 1) { /* keep the signature's length decodable */
        len--;
    }
    struct kp_jwt jwt;
    struct kp_error err;
    assert_int_equal(kp_jwt_decode(token, len, &jwt, &err), KP_OK);
    kp_jwt_wipe(&jwt);
    token[KP_JWT_MAX] = 'A';
    assert_int_equal(kp_jwt_decode(token, KP_JWT_MAX + 1, &jwt, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "JWT too large"));
    assert_null(jwt.header);
    free(token);
}

static void test_looks_like(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool looks;
    } rows[] = {
        {HEADER "." PAYLOAD "." SIGNATURE, true},
        {"a.b", true},       /* wrong shape, but kp_jwt_decode explains why */
        {"eyJh=.b.c", true}, /* padded: decode explains */
        {"hello", false},    /* no dot */
        {"hello world.x", false},
        {"a.b.c\n", false}, /* the caller trims */
        {"", false},
        {"-----BEGIN X-----", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (kp_jwt_looks_like(rows[i].text, strlen(rows[i].text)) != rows[i].looks) {
            fail_msg("row %zu '%s'", i, rows[i].text);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decodes_a_token),
        cmocka_unit_test(test_unsecured_token_has_empty_signature),
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_base64url_alphabet),
        cmocka_unit_test(test_rejects_bad_tokens),
        cmocka_unit_test(test_messages_never_quote_the_token),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_looks_like),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
