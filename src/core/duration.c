#include "core/duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct unit {
    const char *name;
    int64_t nanoseconds;
};

/* Longest names first so "ms" is not read as "m" followed by garbage. */
static const struct unit units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign, as Go accepts */
    {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
    {"ms", 1000000},
    {"s", 1000000000LL},
    {"m", 60LL * 1000000000LL},
    {"h", 3600LL * 1000000000LL},
    {"d", 86400LL * 1000000000LL},
    {"y", 365LL * 86400LL * 1000000000LL},
};

static const struct unit *match_unit(const char *cursor, size_t *len)
{
    const struct unit *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t unit_len = strlen(units[i].name);
        if (strncmp(cursor, units[i].name, unit_len) == 0 && unit_len > best_len) {
            best = &units[i];
            best_len = unit_len;
        }
    }
    *len = best_len;
    return best;
}

enum kp_result kp_duration_parse(const char *text, int64_t *seconds, struct kp_error *err)
{
    *seconds = 0;
    if (text == NULL || *text == '\0') {
        return kp_error_set(err, KP_ERR_INVALID, "invalid duration '': empty");
    }
    /* Accumulate in nanoseconds as a long double-free fixed point: whole and fractional parts
     * per component, checked against the maximum before every addition. */
    const long double max_ns = (long double)KP_DURATION_MAX_SECONDS * 1e9L;
    long double total_ns = 0;
    const char *cursor = text;
    while (*cursor != '\0') {
        if (!isdigit((unsigned char)*cursor) && *cursor != '.') {
            return kp_error_set(err, KP_ERR_INVALID,
                                "invalid duration '%s': expected a number at '%s' (use units "
                                "like 8760h, 30m, 90s, 365d)",
                                text, cursor);
        }
        long double value = 0;
        int digits = 0;
        while (isdigit((unsigned char)*cursor)) {
            value = value * 10 + (*cursor - '0');
            digits++;
            cursor++;
            if (value > max_ns) {
                return kp_error_set(err, KP_ERR_INVALID, "invalid duration '%s': too long", text);
            }
        }
        if (*cursor == '.') {
            cursor++;
            long double scale = 0.1L;
            while (isdigit((unsigned char)*cursor)) {
                value += (*cursor - '0') * scale;
                scale /= 10;
                digits++;
                cursor++;
            }
        }
        if (digits == 0) {
            return kp_error_set(err, KP_ERR_INVALID, "invalid duration '%s': lone '.'", text);
        }
        size_t unit_len = 0;
        const struct unit *unit = match_unit(cursor, &unit_len);
        if (unit == NULL) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "invalid duration '%s': missing or unknown unit at '%s' (valid: "
                                "ns, us, ms, s, m, h, d, y)",
                                text, cursor);
        }
        cursor += unit_len;
        total_ns += value * (long double)unit->nanoseconds;
        if (total_ns > max_ns) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "invalid duration '%s': longer than the maximum of 1000y", text);
        }
    }
    long double whole_seconds = total_ns / 1e9L;
    /* Round to the nearest second and allow a microsecond either way for decimal fractions
     * that binary floating point cannot hold exactly ("0.1h"). */
    int64_t rounded = (int64_t)(whole_seconds + 0.5L);
    long double off = whole_seconds - (long double)rounded;
    if (off > 1e-6L || off < -1e-6L) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid duration '%s': must be a whole number of seconds", text);
    }
    if (rounded <= 0) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid duration '%s': must be positive", text);
    }
    *seconds = rounded;
    return KP_OK;
}

void kp_duration_format(int64_t seconds, char *out, size_t size)
{
    const char *sign = seconds < 0 ? "-" : "";
    int64_t magnitude = seconds < 0 ? -seconds : seconds;
    int64_t hours = magnitude / 3600;
    int64_t minutes = (magnitude % 3600) / 60;
    int64_t secs = magnitude % 60;
    if (hours > 0) {
        snprintf(out, size, "%s%lldh%lldm%llds", sign, (long long)hours, (long long)minutes,
                 (long long)secs);
    } else if (minutes > 0) {
        snprintf(out, size, "%s%lldm%llds", sign, (long long)minutes, (long long)secs);
    } else {
        snprintf(out, size, "%s%llds", sign, (long long)secs);
    }
}

void kp_duration_short_human(int64_t seconds, char *out, size_t size)
{
    /* apimachinery/pkg/util/duration.ShortHumanDuration */
    if (seconds < -1) {
        snprintf(out, size, "<invalid>");
    } else if (seconds < 0) {
        snprintf(out, size, "0s");
    } else if (seconds < 60) {
        snprintf(out, size, "%llds", (long long)seconds);
    } else if (seconds < 3600) {
        snprintf(out, size, "%lldm", (long long)(seconds / 60));
    } else if (seconds < 86400) {
        snprintf(out, size, "%lldh", (long long)(seconds / 3600));
    } else if (seconds < 365LL * 86400) {
        snprintf(out, size, "%lldd", (long long)(seconds / 86400));
    } else {
        snprintf(out, size, "%lldy", (long long)(seconds / 3600 / 24 / 365));
    }
}

void kp_time_format_rfc3339(int64_t unix_seconds, char *out, size_t size)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, size, "(invalid time)");
    }
}

static int parse_digits(const char **cursor, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++) {
        if (!isdigit((unsigned char)(*cursor)[i])) {
            return -1;
        }
        *value = *value * 10 + ((*cursor)[i] - '0');
    }
    *cursor += count;
    return 0;
}

static int expect(const char **cursor, char c)
{
    if (**cursor != c) {
        return -1;
    }
    (*cursor)++;
    return 0;
}

enum kp_result kp_time_parse_rfc3339(const char *text, int64_t *unix_seconds,
                                     struct kp_error *err)
{
    const char *cursor = text;
    int year, month, day, hour, minute, second;
    if (parse_digits(&cursor, 4, &year) || expect(&cursor, '-') ||
        parse_digits(&cursor, 2, &month) || expect(&cursor, '-') ||
        parse_digits(&cursor, 2, &day) || (*cursor != 'T' && *cursor != 't') || !++cursor ||
        parse_digits(&cursor, 2, &hour) || expect(&cursor, ':') ||
        parse_digits(&cursor, 2, &minute) || expect(&cursor, ':') ||
        parse_digits(&cursor, 2, &second)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid time '%s': expected RFC 3339 like 2026-01-02T15:04:05Z", text);
    }
    if (*cursor == '.') {
        cursor++;
        if (!isdigit((unsigned char)*cursor)) {
            return kp_error_set(err, KP_ERR_INVALID, "invalid time '%s': bad fraction", text);
        }
        while (isdigit((unsigned char)*cursor)) {
            cursor++;
        }
    }
    int offset_seconds = 0;
    if (*cursor == 'Z' || *cursor == 'z') {
        cursor++;
    } else if (*cursor == '+' || *cursor == '-') {
        int sign = *cursor == '-' ? -1 : 1;
        int off_hour, off_minute;
        cursor++;
        if (parse_digits(&cursor, 2, &off_hour) || expect(&cursor, ':') ||
            parse_digits(&cursor, 2, &off_minute) || off_hour > 23 || off_minute > 59) {
            return kp_error_set(err, KP_ERR_INVALID, "invalid time '%s': bad offset", text);
        }
        offset_seconds = sign * (off_hour * 3600 + off_minute * 60);
    } else {
        return kp_error_set(err, KP_ERR_INVALID, "invalid time '%s': missing zone (Z or +hh:mm)",
                            text);
    }
    if (*cursor != '\0') {
        return kp_error_set(err, KP_ERR_INVALID, "invalid time '%s': trailing characters", text);
    }
    static const int days_in_month[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1 || day > days_in_month[month - 1] || hour > 23 ||
        minute > 59 || second > 60) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid time '%s': field out of range", text);
    }
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid time '%s': %d is not a leap year", text,
                            year);
    }
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second == 60 ? 59 : second;
    *unix_seconds = (int64_t)timegm(&tm) - offset_seconds;
    return KP_OK;
}
