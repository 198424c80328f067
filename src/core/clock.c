#include "kpki/clock.h"

#include <time.h>

static int64_t system_now_ns(const struct kp_clock *clock)
{
    (void)clock;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const struct kp_clock system_clock = {system_now_ns, 0};

const struct kp_clock *kp_clock_system(void)
{
    return &system_clock;
}

static int64_t fixed_now_ns(const struct kp_clock *clock)
{
    return clock->fixed_ns;
}

void kp_clock_fixed_init(struct kp_clock *clock, int64_t unix_seconds)
{
    clock->now_ns = fixed_now_ns;
    clock->fixed_ns = unix_seconds * 1000000000;
}

int64_t kp_clock_now(const struct kp_clock *clock)
{
    return clock->now_ns(clock) / 1000000000;
}
