/*
 * proc.c - a server's CPU time and resident memory, read from /proc.
 *
 * CPU: fields 14 and 15 (utime, stime) of /proc/PID/stat, which cover every thread of the
 * process (proc(5)), in clock ticks (sysconf(_SC_CLK_TCK), 100 per second on Linux): a 10 ms
 * resolution, so a measured window should hold at least a second of server CPU. Memory: VmRSS of
 * /proc/PID/status. With several PIDs (nginx's workers) the figures are summed; RSS summed over
 * processes counts pages they share once per process, so it is an upper bound.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

static bool read_file(const char *path, char *buffer, size_t size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        return false;
    }
    size_t len = fread(buffer, 1, size - 1, file);
    fclose(file);
    buffer[len] = '\0';
    return len > 0;
}

/* utime + stime of one process, in ticks. The command name (field 2) may hold spaces and
 * parentheses, so fields are counted from the last ')'. */
static bool read_cpu_ticks(int pid, unsigned long long *ticks, char *error, size_t error_size)
{
    char path[64], text[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (!read_file(path, text, sizeof(text))) {
        snprintf(error, error_size, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    const char *cursor = strrchr(text, ')');
    unsigned long long utime = 0, stime = 0;
    /* After ')': field 3 (state) ... field 14 utime, field 15 stime. */
    if (cursor == NULL ||
        sscanf(cursor + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2) {
        snprintf(error, error_size, "cannot parse %s", path);
        return false;
    }
    *ticks = utime + stime;
    return true;
}

static bool read_rss_kib(int pid, uint64_t *rss_kib, char *error, size_t error_size)
{
    char path[64], text[8192];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if (!read_file(path, text, sizeof(text))) {
        snprintf(error, error_size, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    const char *line = strstr(text, "\nVmRSS:");
    unsigned long long kib = 0;
    if (line == NULL || sscanf(line + 7, " %llu kB", &kib) != 1) {
        snprintf(error, error_size, "no VmRSS in %s (a zombie?)", path);
        return false;
    }
    *rss_kib = kib;
    return true;
}

void lg_proc_sample_take(const int *pids, size_t pid_count, struct lg_proc_sample *sample)
{
    memset(sample, 0, sizeof(*sample));
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    if (ticks_per_second <= 0) {
        ticks_per_second = 100;
    }
    unsigned long long ticks = 0;
    for (size_t i = 0; i < pid_count; i++) {
        unsigned long long process_ticks = 0;
        uint64_t rss_kib = 0;
        if (!read_cpu_ticks(pids[i], &process_ticks, sample->error, sizeof(sample->error)) ||
            !read_rss_kib(pids[i], &rss_kib, sample->error, sizeof(sample->error))) {
            return;
        }
        ticks += process_ticks;
        sample->rss_kib += rss_kib;
    }
    sample->cpu_seconds = (double)ticks / (double)ticks_per_second;
    sample->ok = true;
}
