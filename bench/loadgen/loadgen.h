/*
 * loadgen.h - the pieces of kpki-loadgen and what passes between them.
 *
 *   options.c   the option table, --help, parsing and checking (exit 2 on bad usage)
 *   target.c    the URL, the request bytes, the TLS client context and the client identities
 *   worker.c    one thread: its connections, non-blocking, driven by epoll
 *   proc.c      the server's CPU time and resident memory from /proc
 *   report.c    text and JSON output
 *   main.c      sets up, runs the threads through the measured window, reports
 *
 * Timeline of a run (main.c): the workers open their connections (request mode) and wait at a
 * barrier; main samples the server and its own CPU and starts the window; the workers run until
 * the duration ends or the request budget is spent and wait at a barrier again; main samples
 * again (connections still open, so the server's RSS is the loaded one); the workers close
 * everything and leave. Only operations that complete inside the window are counted.
 */
#ifndef KPKI_LOADGEN_H
#define KPKI_LOADGEN_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "histogram.h"

/* Exit codes (documented in bench/README.md and --help). */
enum {
    LG_EXIT_RAN = 0,        /* the run happened; errors, if any, are counted in the report */
    LG_EXIT_USAGE = 2,      /* a bad flag or value */
    LG_EXIT_CANNOT_RUN = 3, /* a file, the address, /proc/PID or a thread could not be had */
};

#define LG_MAX_HEADERS 32
#define LG_MAX_SERVER_PIDS 16
#define LG_MAX_BODY_BYTES (1024 * 1024)
#define LG_ERROR_TEXT 160

enum lg_mode {
    LG_MODE_HANDSHAKE, /* every operation is a new connection and a full handshake */
    LG_MODE_REQUEST,   /* every operation is a request on a kept-alive connection */
};

enum lg_output {
    LG_OUTPUT_TEXT,
    LG_OUTPUT_JSON,
};

/* What the command line asked for. Strings are borrowed from argv (valid for the whole run). */
struct lg_options {
    const char *url;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    const char *cert_dir;
    int threads;
    int connections;
    double duration_s; /* 0 when --requests is given */
    uint64_t requests; /* 0 when --duration is given */
    enum lg_mode mode;
    bool handshake_request; /* handshake mode: one request (Connection: close) per connection */
    bool no_warmup;         /* request mode: open with the handshake only, no warm-up request */
    int tls_version;        /* 0: 1.2 or 1.3 as negotiated; else TLS1_2_VERSION or TLS1_3_VERSION */
    const char *headers[LG_MAX_HEADERS];
    size_t header_count;
    const char *method;
    const char *body_file;
    const char *trace_file; /* --trace: one line per operation of the window; NULL: none */
    double rate;      /* operations per second for the whole run; 0: closed loop */
    double timeout_s; /* per operation */
    int server_pids[LG_MAX_SERVER_PIDS];
    size_t server_pid_count;
    enum lg_output output;
};

/* A client certificate (with any intermediates after it in its file) and its key. */
struct lg_identity {
    X509 *cert;             /* owned */
    STACK_OF(X509) * chain; /* owned; intermediates, possibly empty */
    EVP_PKEY *key;          /* owned */
};

/* Everything the workers share, read-only once the threads start, except the atomics and the
 * barrier. Built by target.c and main.c; freed by lg_run_wipe. */
struct lg_run {
    const struct lg_options *options; /* borrowed */
    char host[256];                   /* from the URL, without IPv6 brackets */
    char port[8];
    char path[2048];
    bool host_is_ip; /* no SNI for an IP address; the SAN checked is an IP */
    struct sockaddr_storage address;
    socklen_t address_len;
    SSL_CTX *ssl_ctx;               /* owned; shared by every connection (thread-safe for use) */
    struct lg_identity *identities; /* owned array; NULL when no client certificate is sent */
    size_t identity_count;
    char *request; /* owned; the bytes of one request */
    size_t request_len;
    bool head_request;
    uint64_t window_end_ns;             /* duration mode: set by main before the start barrier */
    atomic_uint_fast64_t next_identity; /* round-robin over the identities, per connection */
    atomic_uint_fast64_t ops_issued;    /* --requests: the budget taken so far */
    pthread_barrier_t barrier;          /* main + every worker; see the timeline above */
};

enum lg_error_kind {
    LG_ERR_CONNECT,  /* socket() or connect() failed: refused, unreachable, no descriptors */
    LG_ERR_TLS,      /* a TLS failure or alert; the detail is OpenSSL's reason */
    LG_ERR_HTTP,     /* an answer whose status is not 2xx; the detail is the status */
    LG_ERR_TIMEOUT,  /* the operation took longer than --timeout */
    LG_ERR_CLOSED,   /* the server closed or reset the connection mid-operation */
    LG_ERR_PROTOCOL, /* a response that is not HTTP/1.1 as this reader knows it */
    LG_ERR_KIND_COUNT,
};

const char *lg_error_kind_name(enum lg_error_kind kind);

/* At most this many operations per thread are traced (128 MiB of records); the rest are
 * measured, not traced, and the trace says how many it left out. */
#define LG_TRACE_MAX_RECORDS (4u * 1024 * 1024)

/* One operation of the window, for --trace (monotonic clock, ns). */
struct lg_trace_record {
    uint64_t due_ns;  /* when it was due (open loop) or started (closed loop) */
    uint64_t sent_ns; /* when it started */
    uint64_t end_ns;  /* when it ended, ok or not */
    uint32_t conn;    /* the connection's index in its thread */
    int16_t thread;
    int16_t kind; /* -1: ok; else an enum lg_error_kind */
};

#define LG_MAX_ERROR_ROWS 32

/* Errors by kind and detail. Rows past LG_MAX_ERROR_ROWS distinct details are only counted in
 * other_details. */
struct lg_error_row {
    enum lg_error_kind kind;
    char detail[96];
    uint64_t count;
};

/* What one worker (then the merge of all) measured. Caller-owned; lg_tally_init zeroes it. */
struct lg_tally {
    uint64_t ok;
    uint64_t errors;
    uint64_t errors_by_kind[LG_ERR_KIND_COUNT];
    struct lg_error_row rows[LG_MAX_ERROR_ROWS];
    size_t row_count;
    uint64_t other_details;
    uint64_t reconnects;  /* request mode: connections (re)opened inside the window */
    uint64_t idle_closed; /* request mode: idle connections the server closed */
    uint64_t open_before; /* request mode: connections open when the window started */
    char first_open_error[LG_ERROR_TEXT]; /* why the first one that failed to open failed */
    struct lg_histogram latency;          /* of successful operations */
};

void lg_tally_init(struct lg_tally *tally);
void lg_tally_error(struct lg_tally *tally, enum lg_error_kind kind, const char *detail);
void lg_tally_merge(struct lg_tally *into, const struct lg_tally *from);

/* ---- options.c ---- */

/* Parses argv into options (borrowing argv's strings). Returns LG_EXIT_RAN to go on, or the
 * exit code to leave with: LG_EXIT_USAGE after printing the error naming the flag, or -1 after
 * printing --help (exit 0). */
int lg_options_parse(int argc, char **argv, struct lg_options *options);

/* ---- target.c ---- */

/* Fills run from options: the URL, the address, the request, the TLS context, the identities.
 * On failure writes a message naming the flag or file into error and returns the exit code
 * (LG_EXIT_USAGE for a bad URL or header, LG_EXIT_CANNOT_RUN for what cannot be read or
 * resolved). */
int lg_run_prepare(struct lg_run *run, const struct lg_options *options, char *error,
                   size_t error_size);

/* Frees what lg_run_prepare made; safe on a partly prepared run. */
void lg_run_wipe(struct lg_run *run);

/* ---- worker.c ---- */

struct lg_worker;

/* A worker for `connection_count` connections; NULL when out of memory. The tally it fills is
 * read by main after the worker thread has ended. */
struct lg_worker *lg_worker_new(struct lg_run *run, int id, int connection_count);
void lg_worker_free(struct lg_worker *worker);
const struct lg_tally *lg_worker_tally(const struct lg_worker *worker);
/* The worker's --trace records (borrowed until lg_worker_free); *count of them, and *dropped
 * operations it could not keep (its limit, or memory). */
const struct lg_trace_record *lg_worker_trace(const struct lg_worker *worker, size_t *count,
                                             uint64_t *dropped);

/* The thread body (pthread_create's start routine; argument: the struct lg_worker *). */
void *lg_worker_main(void *worker);

uint64_t lg_now_ns(void);

/* ---- proc.c ---- */

/* CPU time (user + system) and resident memory of a set of processes at one moment. */
struct lg_proc_sample {
    double cpu_seconds;
    uint64_t rss_kib;
    bool ok;
    char error[LG_ERROR_TEXT]; /* when !ok: which process and why */
};

void lg_proc_sample_take(const int *pids, size_t pid_count, struct lg_proc_sample *sample);

/* ---- report.c ---- */

/* What main measured around the window, for the report. */
struct lg_window {
    double seconds;
    double client_cpu_seconds;
    struct lg_proc_sample server_before;
    struct lg_proc_sample server_after;
    int connections;
    int threads;
};

void lg_report_print(const struct lg_run *run, const struct lg_tally *tally,
                     const struct lg_window *window);

#endif
