#include "core/fault.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong operations;
static unsigned long fail_at_op;
static int fail_with_errno = ENOSPC;
static unsigned long kill_at_op;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static unsigned long parse_count(const char *text, const char **rest)
{
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || end == text) {
        value = 0;
    }
    *rest = end;
    return value;
}

static void arm_from_environment(void)
{
    const char *fail = getenv("KPKI_FAULT_FAIL_AT");
    const char *kill_spec = getenv("KPKI_FAULT_KILL_AT");
    const char *rest = NULL;
    if (fail != NULL && *fail != '\0') {
        fail_at_op = parse_count(fail, &rest);
        if (rest != NULL && *rest == ':') {
            unsigned long errno_value = parse_count(rest + 1, &rest);
            if (errno_value > 0 && errno_value < 4096) {
                fail_with_errno = (int)errno_value;
            }
        }
    }
    if (kill_spec != NULL && *kill_spec != '\0') {
        kill_at_op = parse_count(kill_spec, &rest);
    }
}

int kp_fault_check(const char *op)
{
    (void)op;
    pthread_once(&env_once, arm_from_environment);
    unsigned long index = atomic_fetch_add_explicit(&operations, 1, memory_order_relaxed) + 1;
    if (kill_at_op != 0 && index == kill_at_op) {
        raise(SIGKILL);
    }
    if (fail_at_op != 0 && index == fail_at_op) {
        return fail_with_errno;
    }
    return 0;
}

void kp_fault_arm(unsigned long fail_at, int fail_errno, unsigned long kill_at)
{
    pthread_once(&env_once, arm_from_environment);
    fail_at_op = fail_at;
    fail_with_errno = fail_errno != 0 ? fail_errno : ENOSPC;
    kill_at_op = kill_at;
    atomic_store(&operations, 0);
}

unsigned long kp_fault_count(void)
{
    return atomic_load(&operations);
}
