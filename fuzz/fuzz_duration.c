/*
 * fuzz_duration - kp_duration_parse and kp_time_parse_rfc3339 (core/duration.h).
 *
 * Invariants checked beyond "no crash, no leak, no UB":
 *   - an accepted duration is in (0, KP_DURATION_MAX_SECONDS], and Go's text for it
 *     (kp_duration_format, "8760h0m0s") parses back to the same number of seconds;
 *   - an accepted timestamp between 1970 and 9999 (the range %Y prints with four digits),
 *     formatted by kp_time_format_rfc3339, parses back to the same instant.
 */
#include "core/duration.h"
#include "fuzz.h"

/* 9999-12-31T23:59:59Z */
#define LAST_FOUR_DIGIT_YEAR_SECOND 253402300799LL

static void check_duration(const char *text)
{
    struct kp_error err;
    int64_t seconds = -1;
    if (kp_duration_parse(text, &seconds, &err) != KP_OK) {
        FUZZ_CHECK(seconds == 0);
        FUZZ_CHECK(err.code == KP_ERR_INVALID);
        return;
    }
    FUZZ_CHECK(seconds > 0 && seconds <= KP_DURATION_MAX_SECONDS);

    char go_text[64];
    kp_duration_format(seconds, go_text, sizeof(go_text));
    int64_t again = 0;
    FUZZ_CHECK(kp_duration_parse(go_text, &again, &err) == KP_OK);
    FUZZ_CHECK(again == seconds);

    /* Truncating output buffers must stay in bounds. */
    char tiny[4];
    kp_duration_format(seconds, tiny, sizeof(tiny));
    char human[16];
    kp_duration_short_human(seconds, human, sizeof(human));
    kp_duration_short_human(seconds, tiny, sizeof(tiny));
}

static void check_time(const char *text)
{
    struct kp_error err;
    int64_t unix_seconds = 0;
    if (kp_time_parse_rfc3339(text, &unix_seconds, &err) != KP_OK) {
        FUZZ_CHECK(err.code == KP_ERR_INVALID);
        return;
    }
    if (unix_seconds < 0 || unix_seconds > LAST_FOUR_DIGIT_YEAR_SECOND) {
        return;
    }
    char formatted[64];
    kp_time_format_rfc3339(unix_seconds, formatted, sizeof(formatted));
    int64_t again = -1;
    FUZZ_CHECK(kp_time_parse_rfc3339(formatted, &again, &err) == KP_OK);
    FUZZ_CHECK(again == unix_seconds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    check_duration(text);
    check_time(text);
    free(text);
    return 0;
}
