#include "testutil.h"

#include <string.h>

#include "core/core.h"

static void test_parse_valid(void **state)
{
    (void)state;
    const struct {
        const char *text;
        int64_t seconds;
    } rows[] = {
        {"8760h", 8760LL * 3600}, {"87600h", 87600LL * 3600}, {"1h30m", 5400},
        {"90s", 90},              {"2h45m30s", 9930},         {"365d", 365LL * 86400},
        {"1y", 365LL * 86400},    {"1.5h", 5400},             {"1000ms", 1},
        {"60000000000ns", 60},    {"0.5m", 30},               {"1d12h", 129600},
        {"0.1h", 360},            {"0.9999999s", 1},          {"1.0000001s", 1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t seconds = 0;
        struct kp_error err;
        assert_int_equal(kp_duration_parse(rows[i].text, &seconds, &err), KP_OK);
        assert_int_equal(seconds, rows[i].seconds);
    }
}

static void test_parse_invalid(void **state)
{
    (void)state;
    const char *rows[] = {"", "0h", "0", "10", "h", "-1h", "+1h", "1x", "1h 2m", "1.h2",
                          ".", "1.5s5", "500ms", "1001y", "99999999999999999999h", "1hh",
                          "abc", " 1h", "1h ", "0.0000001s"};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t seconds = 42;
        struct kp_error err;
        kp_error_clear(&err);
        enum kp_result rc = kp_duration_parse(rows[i], &seconds, &err);
        if (rc != KP_ERR_INVALID) {
            fail_msg("'%s' should be rejected", rows[i]);
        }
        assert_non_null(strstr(err.message, "invalid duration"));
    }
}

static void test_format(void **state)
{
    (void)state;
    char out[64];
    kp_duration_format(8760LL * 3600, out, sizeof(out));
    assert_string_equal(out, "8760h0m0s");
    kp_duration_format(90, out, sizeof(out));
    assert_string_equal(out, "1m30s");
    kp_duration_format(5, out, sizeof(out));
    assert_string_equal(out, "5s");
}

static void test_short_human(void **state)
{
    (void)state;
    const struct {
        int64_t seconds;
        const char *text;
    } rows[] = {{-5, "<invalid>"},  {-1, "0s"},        {0, "0s"},
                {59, "59s"},        {60, "1m"},        {3599, "59m"},
                {3600, "1h"},   {86399, "23h"},    {86400, "1d"},
                {364 * 86400LL, "364d"}, {365 * 86400LL, "1y"}, {10 * 365 * 86400LL, "10y"}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char out[32];
        kp_duration_short_human(rows[i].seconds, out, sizeof(out));
        assert_string_equal(out, rows[i].text);
    }
}

static void test_rfc3339(void **state)
{
    (void)state;
    char out[32];
    kp_time_format_rfc3339(0, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    int64_t t = 0;
    struct kp_error err;
    assert_int_equal(kp_time_parse_rfc3339("2026-11-29T18:55:57Z", &t, &err), KP_OK);
    kp_time_format_rfc3339(t, out, sizeof(out));
    assert_string_equal(out, "2026-11-29T18:55:57Z");
    assert_int_equal(kp_time_parse_rfc3339("2026-11-29T20:55:57.123+02:00", &t, &err), KP_OK);
    kp_time_format_rfc3339(t, out, sizeof(out));
    assert_string_equal(out, "2026-11-29T18:55:57Z");
    assert_int_equal(kp_time_parse_rfc3339("2024-02-29T00:00:00Z", &t, &err), KP_OK);
    const char *bad[] = {"",
                         "2026-11-29",
                         "2026-11-29T18:55:57",
                         "2026-13-01T00:00:00Z",
                         "2026-02-30T00:00:00Z",
                         "2025-02-29T00:00:00Z",
                         "2026-11-29T24:00:00Z",
                         "2026-11-29T18:55:57Zjunk",
                         "2026-11-29T18:55:57+2:00",
                         "2026-11-29T18:55:57.Z",
                         "26-11-29T18:55:57Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kp_time_parse_rfc3339(bad[i], &t, &err) != KP_ERR_INVALID) {
            fail_msg("'%s' should be rejected", bad[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),   cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_format),        cmocka_unit_test(test_short_human),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
