/*
 * fuzz_base64 - kp_base64_decode and kp_base64_encode (crypto/crypto.h), the codec of
 * kubeconfig's *-data fields.
 *
 * The input is passed as it is, without a terminating NUL, so an over-read past `size` is
 * caught by ASan.
 *
 * Invariants checked beyond "no crash, no leak, no UB": decoded output is NUL-terminated as the
 * header promises and no longer than 3/4 of the input; encoding it gives padded text of the
 * expected length, and decoding that text gives the same bytes back.
 */
#include <stdbool.h>

#include "crypto/crypto.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kp_error err;
    unsigned char *decoded = NULL;
    size_t decoded_len = 0;
    if (kp_base64_decode((const char *)data, size, &decoded, &decoded_len, &err) != KP_OK) {
        FUZZ_CHECK(decoded == NULL && decoded_len == 0);
        return 0;
    }
    FUZZ_CHECK(decoded != NULL);
    FUZZ_CHECK(decoded[decoded_len] == '\0');
    FUZZ_CHECK(decoded_len <= size / 4 * 3);

    char *encoded = NULL;
    size_t encoded_len = 0;
    FUZZ_CHECK(kp_base64_encode(decoded, decoded_len, &encoded, &encoded_len, &err) == KP_OK);
    FUZZ_CHECK(encoded != NULL && strlen(encoded) == encoded_len);
    FUZZ_CHECK(encoded_len == (decoded_len + 2) / 3 * 4);

    unsigned char *again = NULL;
    size_t again_len = 0;
    if (kp_base64_decode(encoded, encoded_len, &again, &again_len, &err) != KP_OK) {
        fprintf(stderr, "re-decoding '%s' failed: %s\n", encoded, err.message);
        abort();
    }
    FUZZ_CHECK(again_len == decoded_len);
    FUZZ_CHECK(decoded_len == 0 || memcmp(again, decoded, decoded_len) == 0);

    free(again);
    free(encoded);
    free(decoded);
    return 0;
}
