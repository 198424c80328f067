/*
 * fuzz_jws - kp_jwt_verify (jwt/jwt.h, src/jwt/jws.c), the check the API server runs on every
 * bearer token, with three fixed public keys (RSA-2048, P-256, P-384) and a fixed clock.
 *
 * The keys are throwaway ones made for this corpus with `openssl genpkey` (the private halves
 * were discarded after signing the seeds in corpus/jws/). They are read once and kept for the
 * process's life: reading a key costs about 1 ms in OpenSSL 3.0, far more than a verification.
 *
 * Invariants beyond "no crash, no leak, no UB": the check always runs (KP_OK) and gives a
 * verdict with a reason, or VALID with an empty one; a refused token leaves jwt empty; a valid
 * one decodes (kp_jwt_decode), names an alg that is one of the keys' algs, carries no time
 * claim that puts it outside [nbf - leeway, exp + leeway) at the fixed clock, and verifies
 * with the keys given in reverse order too; with no keys at all nothing is ever valid. The keys
 * are prepared (kp_jwt_key_prepare), as the API server's are.
 */
#include <string.h>

#include "crypto/crypto.h"
#include "fuzz.h"
#include "jwt/jwt.h"

#define FUZZ_NOW 1750000000
#define FUZZ_LEEWAY 60

static const char *const PUBLIC_KEYS[] = {
    /* RSA-2048 */
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkSaC53NxewVQqzC+arVH\n"
    "m8m18v7vLwGmPmIRz7TauqkglGwbwzg2wdRdtA5Li6/2CXr+VvWHkLfRko3BlBR1\n"
    "uIvQCy7CDr5vdpe3/QuwhDTUeUtpNSiM6/KTWtZW7KCXSp+Rjn2Z+9JdHbqyCkPG\n"
    "WPqTULcvv+YqHaI52656cL/tKMSVYWtEu6+aCyiRkq+LZtjt4FceAVtqFujLJYGY\n"
    "lbj4GQFTkF/j1BOQivBOGJtKmdgvwxBITqQgF2b1EQ75wpYE1DGaCYpWh+3XaQPe\n"
    "0RtLlUQQGAYoJqfINAXU+UvAs95cd4KvTrOMDV+UVivdcL40CQgMzLB4StvHAHPi\n"
    "YwIDAQAB\n"
    "-----END PUBLIC KEY-----\n",
    /* P-256 */
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEH2EV2z4xOYPB34mQtQZESE8VdAM/\n"
    "BfRqt6/4Iwqu36ivPtHOYRFggVKMAYYTBBKetm5QCeiaTpw2eCa4KdIdNw==\n"
    "-----END PUBLIC KEY-----\n",
    /* P-384 */
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEZBAL3LvsDrXt1/DU0cOrOLMf5/5kIzdD\n"
    "FLA06s/Fx3BXqh7X+K13UCqZEuCnMYSr7a/fohFax35AvzxTr/TqJ3hN9vLswsny\n"
    "BpMmetzCdu51uTDIRgzNIMhRlTj7j/NL\n"
    "-----END PUBLIC KEY-----\n",
};
#define KEY_COUNT (sizeof(PUBLIC_KEYS) / sizeof(PUBLIC_KEYS[0]))

/* Loaded on the first input; never freed (reachable until exit, so not a leak). */
static struct kp_jwt_key keys[KEY_COUNT];
static struct kp_jwt_key keys_reversed[KEY_COUNT];

static void load_keys(void)
{
    if (keys[0].key != NULL) {
        return;
    }
    for (size_t i = 0; i < KEY_COUNT; i++) {
        struct kp_error err;
        EVP_PKEY *key = NULL;
        FUZZ_CHECK(kp_pubkey_from_pem(PUBLIC_KEYS[i], strlen(PUBLIC_KEYS[i]), "fuzz key", &key,
                                      &err) == KP_OK);
        keys[i].key = key;
        FUZZ_CHECK(kp_jwt_key_id(key, keys[i].kid, sizeof(keys[i].kid), &err) == KP_OK);
        FUZZ_CHECK(kp_jwt_alg_for_key(key) != NULL);
        FUZZ_CHECK(kp_jwt_key_prepare(&keys[i], &err) == KP_OK);
        keys_reversed[KEY_COUNT - 1 - i] = keys[i];
        keys_reversed[KEY_COUNT - 1 - i].verifier = NULL; /* owned by keys[i]; prepared per call */
    }
}

/* The time claim name as an integer (the harness only checks whole-second values). */
static bool time_claim(json_t *claims, const char *name, json_int_t *value)
{
    json_t *claim = json_object_get(claims, name);
    if (!json_is_integer(claim)) {
        return false;
    }
    *value = json_integer_value(claim);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_keys();
    const char *token = (const char *)data;
    struct kp_jwt jwt;
    enum kp_jwt_verdict verdict = KP_JWT_VALID;
    struct kp_error err;
    FUZZ_CHECK(kp_jwt_verify(token, size, keys, KEY_COUNT, FUZZ_NOW, FUZZ_LEEWAY, &jwt, &verdict,
                             &err) == KP_OK);
    FUZZ_CHECK(err.code == KP_OK);
    FUZZ_CHECK(strcmp(kp_jwt_verdict_name(verdict), "unknown") != 0);
    if (verdict != KP_JWT_VALID) {
        FUZZ_CHECK(jwt.header == NULL && jwt.claims == NULL);
        FUZZ_CHECK(err.message[0] != '\0');
    } else {
        FUZZ_CHECK(err.message[0] == '\0');
        FUZZ_CHECK(json_is_object(jwt.header) && json_is_object(jwt.claims));
        const char *alg = json_string_value(json_object_get(jwt.header, "alg"));
        FUZZ_CHECK(alg != NULL);
        bool alg_of_a_key = false;
        for (size_t i = 0; i < KEY_COUNT; i++) {
            alg_of_a_key = alg_of_a_key || strcmp(alg, kp_jwt_alg_for_key(keys[i].key)) == 0;
        }
        FUZZ_CHECK(alg_of_a_key);
        json_int_t value = 0;
        if (time_claim(jwt.claims, "exp", &value)) {
            FUZZ_CHECK(value > FUZZ_NOW - FUZZ_LEEWAY);
        }
        if (time_claim(jwt.claims, "nbf", &value)) {
            FUZZ_CHECK(value <= FUZZ_NOW + FUZZ_LEEWAY);
        }
        if (time_claim(jwt.claims, "iat", &value)) {
            FUZZ_CHECK(value <= FUZZ_NOW + FUZZ_LEEWAY);
        }
        struct kp_jwt decoded;
        FUZZ_CHECK(kp_jwt_decode(token, size, &decoded, &err) == KP_OK);
        FUZZ_CHECK(json_equal(decoded.claims, jwt.claims));
        kp_jwt_wipe(&decoded);

        /* The key order does not matter. */
        struct kp_jwt again;
        enum kp_jwt_verdict again_verdict = KP_JWT_MALFORMED;
        FUZZ_CHECK(kp_jwt_verify(token, size, keys_reversed, KEY_COUNT, FUZZ_NOW, FUZZ_LEEWAY,
                                 &again, &again_verdict, &err) == KP_OK);
        FUZZ_CHECK(again_verdict == KP_JWT_VALID);
        kp_jwt_wipe(&again);
    }
    kp_jwt_wipe(&jwt);

    /* Without keys nothing verifies. */
    FUZZ_CHECK(kp_jwt_verify(token, size, NULL, 0, FUZZ_NOW, FUZZ_LEEWAY, &jwt, &verdict, &err) ==
               KP_OK);
    FUZZ_CHECK(verdict != KP_JWT_VALID);
    FUZZ_CHECK(jwt.header == NULL);
    return 0;
}
