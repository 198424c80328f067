/*
 * kpki-loadgen - the project's HTTPS load generator (bench/README.md has the manual).
 *
 * main sets the run up, starts the worker threads, and brackets the measured window with
 * samples of its own CPU time and the server's (see loadgen.h for the timeline and its four
 * barriers). Exit codes: 0 the run happened (errors are in the report), 2 bad usage, 3 could
 * not run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "loadgen.h"

static double cpu_seconds_of_self(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) {
        return 0;
    }
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

/* Each connection is a descriptor: raise the soft limit towards the hard one if needed. When
 * even the hard limit is too low, the run goes on and the connections past it show up as
 * connect errors ("Too many open files"), which the warning explains. */
static void raise_descriptor_limit(int connections)
{
    struct rlimit limit;
    rlim_t needed = (rlim_t)connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= needed) {
        return;
    }
    limit.rlim_cur =
        limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= needed ? needed : limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < needed) {
        fprintf(stderr,
                "kpki-loadgen: warning: %d connections need %llu descriptors, the limit is %llu; "
                "the rest will fail with connect errors\n",
                connections, (unsigned long long)needed, (unsigned long long)limit.rlim_cur);
    }
}

/* The workers, each with its share of the connections (the first ones take the remainder). */
static bool make_workers(struct lg_run *run, struct lg_worker **workers)
{
    const struct lg_options *options = run->options;
    for (int i = 0; i < options->threads; i++) {
        int share = options->connections / options->threads +
                    (i < options->connections % options->threads ? 1 : 0);
        workers[i] = lg_worker_new(run, i, share);
        if (workers[i] == NULL) {
            return false;
        }
    }
    return true;
}

static int by_due(const void *a, const void *b)
{
    const struct lg_trace_record *x = a, *y = b;
    return x->due_ns < y->due_ns ? -1 : x->due_ns > y->due_ns;
}

/* --trace: every thread's records, by due time, times from the window's start. */
static bool write_trace(FILE *file, struct lg_worker **workers, int thread_count,
                        uint64_t start_ns)
{
    size_t total = 0;
    uint64_t dropped = 0;
    for (int i = 0; i < thread_count; i++) {
        size_t count = 0;
        uint64_t thread_dropped = 0;
        (void)lg_worker_trace(workers[i], &count, &thread_dropped);
        total += count;
        dropped += thread_dropped;
    }
    struct lg_trace_record *all = calloc(total ? total : 1, sizeof(*all));
    if (all == NULL) {
        return false;
    }
    size_t at = 0;
    for (int i = 0; i < thread_count; i++) {
        size_t count = 0;
        uint64_t thread_dropped = 0;
        const struct lg_trace_record *records = lg_worker_trace(workers[i], &count, &thread_dropped);
        memcpy(all + at, records, count * sizeof(*all));
        at += count;
    }
    qsort(all, total, sizeof(*all), by_due);
    if (dropped > 0) {
        fprintf(stderr, "kpki-loadgen: --trace holds %zu operations; %llu more were measured but "
                        "not traced (at most %u per thread)\n",
                total, (unsigned long long)dropped, LG_TRACE_MAX_RECORDS);
        fprintf(file, "# %llu operations of the window are not in this trace\n",
                (unsigned long long)dropped);
    }
    fprintf(file, "# due_ns sent_ns end_ns latency_ns thread connection outcome\n");
    for (size_t i = 0; i < total; i++) {
        const struct lg_trace_record *r = &all[i];
        fprintf(file, "%llu %llu %llu %llu %d %u %s\n",
                (unsigned long long)(r->due_ns - start_ns),
                (unsigned long long)(r->sent_ns - start_ns),
                (unsigned long long)(r->end_ns - start_ns),
                (unsigned long long)(r->end_ns - r->due_ns), r->thread, r->conn,
                r->kind < 0 ? "ok" : lg_error_kind_name((enum lg_error_kind)r->kind));
    }
    free(all);
    return fflush(file) == 0 && !ferror(file);
}

static int run_window(struct lg_run *run, struct lg_worker **workers, pthread_t *threads,
                      FILE *trace)
{
    const struct lg_options *options = run->options;
    int thread_count = options->threads;
    if (pthread_barrier_init(&run->barrier, NULL, (unsigned)thread_count + 1) != 0) {
        fprintf(stderr, "kpki-loadgen: cannot create a barrier\n");
        return LG_EXIT_CANNOT_RUN;
    }
    for (int i = 0; i < thread_count; i++) {
        int status = pthread_create(&threads[i], NULL, lg_worker_main, workers[i]);
        if (status != 0) {
            /* Threads already started wait at the first barrier forever; leave at once. */
            fprintf(stderr, "kpki-loadgen: cannot start thread %d: %s\n", i, strerror(status));
            exit(LG_EXIT_CANNOT_RUN);
        }
    }
    struct lg_window window = {.connections = options->connections, .threads = thread_count};
    pthread_barrier_wait(&run->barrier); /* the workers have opened their connections */
    lg_proc_sample_take(options->server_pids, options->server_pid_count, &window.server_before);
    double cpu_before = cpu_seconds_of_self();
    uint64_t start_ns = lg_now_ns();
    run->window_end_ns = start_ns + (uint64_t)(options->duration_s * 1e9);
    pthread_barrier_wait(&run->barrier); /* go */
    pthread_barrier_wait(&run->barrier); /* the workers are done */
    window.seconds = (double)(lg_now_ns() - start_ns) / 1e9;
    window.client_cpu_seconds = cpu_seconds_of_self() - cpu_before;
    lg_proc_sample_take(options->server_pids, options->server_pid_count, &window.server_after);
    pthread_barrier_wait(&run->barrier); /* the workers may close their connections */

    struct lg_tally total;
    lg_tally_init(&total);
    for (int i = 0; i < thread_count; i++) {
        pthread_join(threads[i], NULL);
        lg_tally_merge(&total, lg_worker_tally(workers[i]));
    }
    pthread_barrier_destroy(&run->barrier);
    lg_report_print(run, &total, &window);
    if (trace != NULL && !write_trace(trace, workers, thread_count, start_ns)) {
        fprintf(stderr, "kpki-loadgen: --trace '%s': cannot write the trace: %s\n",
                options->trace_file, strerror(errno));
        return LG_EXIT_CANNOT_RUN;
    }
    return LG_EXIT_RAN;
}

int main(int argc, char **argv)
{
    /* A server that closes while we write must be an error we count, not SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    struct lg_options options;
    int status = lg_options_parse(argc, argv, &options);
    if (status != LG_EXIT_RAN) {
        return status < 0 ? 0 : status;
    }
    struct lg_proc_sample probe;
    lg_proc_sample_take(options.server_pids, options.server_pid_count, &probe);
    if (!probe.ok) {
        fprintf(stderr, "kpki-loadgen: --server-pid: %s\n", probe.error);
        return LG_EXIT_CANNOT_RUN;
    }
    struct lg_run run;
    char error[512] = "";
    status = lg_run_prepare(&run, &options, error, sizeof(error));
    if (status != LG_EXIT_RAN) {
        fprintf(stderr, "kpki-loadgen: %s\n", error);
        lg_run_wipe(&run);
        return status;
    }
    raise_descriptor_limit(options.connections);
    FILE *trace = NULL;
    if (options.trace_file != NULL && (trace = fopen(options.trace_file, "w")) == NULL) {
        fprintf(stderr, "kpki-loadgen: --trace '%s': %s\n", options.trace_file, strerror(errno));
        lg_run_wipe(&run);
        return LG_EXIT_CANNOT_RUN;
    }

    struct lg_worker **workers = calloc((size_t)options.threads, sizeof(*workers));
    pthread_t *threads = calloc((size_t)options.threads, sizeof(*threads));
    if (workers == NULL || threads == NULL || !make_workers(&run, workers)) {
        fprintf(stderr, "kpki-loadgen: out of memory for %d connections\n", options.connections);
        status = LG_EXIT_CANNOT_RUN;
    } else {
        status = run_window(&run, workers, threads, trace);
    }
    for (int i = 0; workers != NULL && i < options.threads; i++) {
        lg_worker_free(workers[i]);
    }
    free(workers);
    free(threads);
    if (trace != NULL && fclose(trace) != 0 && status == LG_EXIT_RAN) {
        fprintf(stderr, "kpki-loadgen: --trace '%s': %s\n", options.trace_file, strerror(errno));
        status = LG_EXIT_CANNOT_RUN;
    }
    lg_run_wipe(&run);
    return status;
}
