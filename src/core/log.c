#include "core/log.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static enum kp_log_level current_level = KP_LOG_INFO;
static int log_fd = 2;

void kp_log_set_level(enum kp_log_level level)
{
    current_level = level;
}

enum kp_log_level kp_log_get_level(void)
{
    return current_level;
}

void kp_log_set_fd(int fd)
{
    log_fd = fd;
}

void kp_log(enum kp_log_level level, const char *fmt, ...)
{
    static const char *const prefixes[] = {"kpki: error: ", "kpki: warning: ", "kpki: ",
                                           "kpki: debug: "};
    if (level > current_level) {
        return;
    }
    char line[1024];
    size_t used = strlen(prefixes[level]);
    memcpy(line, prefixes[level], used);
    va_list ap;
    va_start(ap, fmt);
    int written = vsnprintf(line + used, sizeof(line) - used - 1, fmt, ap);
    va_end(ap);
    if (written < 0) {
        return;
    }
    used += (size_t)written < sizeof(line) - used - 1 ? (size_t)written : sizeof(line) - used - 2;
    line[used++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    ssize_t ignored = write(log_fd, line, used);
    (void)ignored;
}
