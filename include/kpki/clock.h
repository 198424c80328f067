/*
 * kpki/clock.h - time as an input.
 *
 * Nothing in libkpki reads the system clock directly: every function that needs "now" takes a
 * const struct kp_clock *, so that tests pin the time (certificate validity, rotation deadlines)
 * and production passes kp_clock_system().
 */
#ifndef KPKI_CLOCK_H
#define KPKI_CLOCK_H

#include <stdint.h>

struct kp_clock {
    /* Returns the current time in nanoseconds since the Unix epoch. */
    int64_t (*now_ns)(const struct kp_clock *clock);
    int64_t fixed_ns; /* used by the fixed clock only */
};

/* The real-time clock (CLOCK_REALTIME). The returned object is static; never free it. */
const struct kp_clock *kp_clock_system(void);

/* Initialises a caller-owned clock that always answers unix_seconds. */
void kp_clock_fixed_init(struct kp_clock *clock, int64_t unix_seconds);

/* Seconds since the epoch according to clock. */
int64_t kp_clock_now(const struct kp_clock *clock);

#endif
