/*
 * core/duration.h - durations and timestamps as people and Kubernetes write them.
 */
#ifndef KP_CORE_DURATION_H
#define KP_CORE_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "kpki/error.h"

/* Longest duration kpki accepts anywhere: 1000 years, far below int64 overflow in ns. */
#define KP_DURATION_MAX_SECONDS (1000LL * 365 * 24 * 3600)

/* Parses a positive duration in Go's syntax ("8760h", "1h30m", "90s", "2h45m30s"), also
 * accepting "d" (24h) and "y" (365d) units, into whole seconds. Fractions ("1.5h") are accepted
 * when the result is a whole number of seconds. Rejects empty strings, signs, zero, unknown
 * units, and anything over KP_DURATION_MAX_SECONDS, with a message quoting the text. */
KP_MUST_CHECK enum kp_result kp_duration_parse(const char *text, int64_t *seconds,
                                               struct kp_error *err);

/* Formats seconds the way Go prints a time.Duration of whole seconds ("8760h0m0s"). */
void kp_duration_format(int64_t seconds, char *out, size_t size);

/* Kubernetes' ShortHumanDuration ("<invalid>", "0s", "45s", "12m", "5h", "200d", "9y"). */
void kp_duration_short_human(int64_t seconds, char *out, size_t size);

/* RFC 3339 UTC timestamp "2026-11-29T18:55:57Z". */
void kp_time_format_rfc3339(int64_t unix_seconds, char *out, size_t size);

/* Parses RFC 3339 with "Z" or a numeric offset, optional fractional seconds (dropped). */
KP_MUST_CHECK enum kp_result kp_time_parse_rfc3339(const char *text, int64_t *unix_seconds,
                                                   struct kp_error *err);

#endif
