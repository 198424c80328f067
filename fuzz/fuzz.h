/*
 * fuzz/fuzz.h - what every harness and the replay driver share.
 *
 * A harness defines LLVMFuzzerTestOneInput(): it must be deterministic (no clock, no randomness,
 * no files, no environment), free everything it acquires, and abort() when an invariant the
 * parser promises does not hold, so that libFuzzer and the replay driver both report it.
 */
#ifndef KP_FUZZ_FUZZ_H
#define KP_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libFuzzer entry point; returns 0 (libFuzzer reserves other values). data is borrowed for
 * the call. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated heap copy of the input, for parsers that take C strings (an embedded NUL
 * simply ends the string early). Free with free(). Aborts on allocation failure: a harness has
 * no better way to report it. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL) {
        abort();
    }
    if (size > 0) {
        memcpy(text, data, size);
    }
    text[size] = '\0';
    return text;
}

/* Reports a broken invariant on stderr and aborts. */
#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #condition);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
