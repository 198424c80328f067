/*
 * worker.c - one load-generating thread: its connections, non-blocking, driven by one epoll set.
 *
 * Implementation notes.
 *
 * A connection is a small state machine:
 *
 *   DOWN -> CONNECTING -> HANDSHAKING -> WRITING -> READING -> IDLE (request mode, kept alive)
 *                                    \-> CLOSING (handshake mode without --handshake-request)
 *
 * An operation starts on a connection that has none (start_operation) and ends in exactly one
 * of finish_ok / finish_error, which count it, record its latency, and put the connection back
 * on the idle ring (closed first when it cannot be reused). Each step function runs its state
 * until OpenSSL or the socket would block, then says which readiness to wait for
 * (want_events); epoll is level-triggered, so nothing is lost between steps.
 *
 * What an operation is:
 *  - handshake mode: connect, a full TLS handshake with the client certificate, then either one
 *    request with Connection: close and its answer (--handshake-request), or close_notify and
 *    the wait for the server to close. The wait matters: in TLS 1.3 the client's handshake ends
 *    before the server has read the client's Certificate and Finished, so ending there would
 *    count handshakes whose server side had not run yet.
 *  - request mode: one request and its whole answer on a connection opened before the window
 *    (reopened inside the operation if the server closed it; that counts in reconnects).
 *    Opening, before the window, is the handshake and one warm-up request (unless --no-warmup):
 *    a server may defer per-connection work to the first request (kpki verifies the client's
 *    chain there; nginx in the handshake), and the window is meant to measure kept-alive
 *    requests, not the tail of the connections' set-up. A warm-up answer is not judged.
 *
 * Open loop (--rate): operations are due every 1/rate_of_this_thread seconds; a due operation
 * starts as soon as a connection is idle, and its latency counts from when it was due, so a
 * server that falls behind shows it (no coordinated omission). Closed loop: every idle
 * connection starts its next operation at once.
 *
 * Every SSL_get_error is translated in one function (ssl_outcome); OpenSSL's error queue is
 * cleared before each call and drained into the error's detail after it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "http_response.h"
#include "loadgen.h"

#define READ_CHUNK 16384
#define EPOLL_BATCH 256
/* How often deadlines are checked (and the longest an idle loop sleeps). */
#define TICK_NS (50 * 1000 * 1000ULL)
/* Before the window, connections are opened at most this many at a time per thread: ten
 * thousand SYNs at once would overflow the server's accept backlog and turn into one-second
 * SYN retransmits and timeouts that say nothing about the server. */
#define OPEN_CONCURRENCY 64

enum conn_state {
    CONN_DOWN,
    CONN_CONNECTING,
    CONN_HANDSHAKING,
    CONN_WRITING,
    CONN_READING,
    CONN_CLOSING,
    CONN_IDLE,
};

enum operation {
    OP_NONE,
    OP_OPEN,      /* request mode, before the window: connect, handshake, warm-up request */
    OP_HANDSHAKE, /* handshake mode */
    OP_REQUEST,   /* request mode */
};

struct conn {
    int fd;   /* -1 when down */
    SSL *ssl; /* owned; NULL when down */
    enum conn_state state;
    enum operation operation;
    uint64_t started_ns; /* latency origin: when the operation started or was due */
    uint64_t sent_ns;    /* when the operation started (--trace) */
    uint64_t deadline_ns;
    size_t request_sent; /* bytes of run->request written so far */
    uint32_t events;     /* the epoll interest registered; 0 when not registered */
    struct lg_http_response response;
};

struct lg_worker {
    struct lg_run *run; /* borrowed; outlives the worker */
    int id;
    int epoll_fd;
    struct conn *conns; /* owned array */
    size_t conn_count;
    size_t *idle_ring; /* owned; indexes of connections with no operation, FIFO */
    size_t idle_head;
    size_t idle_count;
    size_t in_flight;
    size_t opens_started; /* request mode, before the window: connections tried so far */
    bool issuing_done;    /* no new operation will start (budget spent or window over) */
    uint64_t interval_ns; /* open loop: between two due operations of this thread */
    uint64_t next_due_ns;
    uint64_t next_tick_ns;
    struct lg_tally tally;
    struct lg_trace_record *trace; /* owned; --trace only */
    size_t trace_count, trace_capacity;
    uint64_t trace_dropped; /* operations past LG_TRACE_MAX_RECORDS or memory */
    char read_buffer[READ_CHUNK];
};

uint64_t lg_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
}

/* ---- the idle ring ---- */

static void idle_push(struct lg_worker *worker, struct conn *conn)
{
    size_t slot = (worker->idle_head + worker->idle_count) % worker->conn_count;
    worker->idle_ring[slot] = (size_t)(conn - worker->conns);
    worker->idle_count++;
}

static struct conn *idle_pop(struct lg_worker *worker)
{
    struct conn *conn = &worker->conns[worker->idle_ring[worker->idle_head]];
    worker->idle_head = (worker->idle_head + 1) % worker->conn_count;
    worker->idle_count--;
    return conn;
}

/* ---- epoll interest ---- */

static void want_events(struct lg_worker *worker, struct conn *conn, uint32_t events)
{
    if (conn->events == events) {
        return;
    }
    struct epoll_event event = {.events = events, .data.ptr = conn};
    int op = conn->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(worker->epoll_fd, op, conn->fd, &event) == 0) {
        conn->events = events;
    } else {
        /* Only possible when the kernel is out of memory; the deadline will end the operation. */
        fprintf(stderr, "kpki-loadgen: epoll_ctl: %s\n", strerror(errno));
    }
}

static void close_conn(struct conn *conn)
{
    if (conn->ssl != NULL) {
        SSL_free(conn->ssl);
        conn->ssl = NULL;
    }
    if (conn->fd >= 0) {
        close(conn->fd); /* also drops it from the epoll set */
        conn->fd = -1;
    }
    conn->events = 0;
    conn->state = CONN_DOWN;
}

/* ---- the end of an operation ---- */

static void end_operation(struct lg_worker *worker, struct conn *conn)
{
    conn->operation = OP_NONE;
    worker->in_flight--;
    idle_push(worker, conn);
    if (conn->state == CONN_IDLE) {
        /* Watch an idle kept-alive connection so that a server closing it is noticed. */
        want_events(worker, conn, EPOLLIN);
    }
}

/* Records a window's operation that ended at end_ns, for --trace. */
static void trace_operation(struct lg_worker *worker, const struct conn *conn, int kind,
                            uint64_t end_ns)
{
    if (worker->run->options->trace_file == NULL) {
        return;
    }
    if (worker->trace_count == worker->trace_capacity) {
        size_t capacity = worker->trace_capacity ? worker->trace_capacity * 2 : 4096;
        struct lg_trace_record *grown = capacity <= LG_TRACE_MAX_RECORDS
                                            ? realloc(worker->trace, capacity * sizeof(*grown))
                                            : NULL;
        if (grown == NULL) {
            worker->trace_dropped++; /* the report still counts it */
            return;
        }
        worker->trace = grown;
        worker->trace_capacity = capacity;
    }
    worker->trace[worker->trace_count++] = (struct lg_trace_record){
        .due_ns = conn->started_ns,
        .sent_ns = conn->sent_ns,
        .end_ns = end_ns,
        .conn = (uint32_t)(conn - worker->conns),
        .thread = (int16_t)worker->id,
        .kind = (int16_t)kind,
    };
}

static void finish_ok(struct lg_worker *worker, struct conn *conn, bool keep_open)
{
    if (conn->operation == OP_OPEN) {
        worker->tally.open_before++;
    } else {
        worker->tally.ok++;
        uint64_t now = lg_now_ns();
        lg_histogram_record(&worker->tally.latency, now - conn->started_ns);
        trace_operation(worker, conn, -1, now);
    }
    if (keep_open) {
        conn->state = CONN_IDLE;
    } else {
        close_conn(conn);
    }
    end_operation(worker, conn);
}

static void finish_error(struct lg_worker *worker, struct conn *conn, enum lg_error_kind kind,
                         const char *detail)
{
    if (conn->operation == OP_OPEN) {
        if (worker->tally.first_open_error[0] == '\0') {
            snprintf(worker->tally.first_open_error, sizeof(worker->tally.first_open_error),
                     "%s: %s", lg_error_kind_name(kind), detail);
        }
    } else {
        lg_tally_error(&worker->tally, kind, detail);
        trace_operation(worker, conn, (int)kind, lg_now_ns());
    }
    close_conn(conn);
    end_operation(worker, conn);
}

/* A complete answer: ok when 2xx, an http error otherwise; the connection is kept only when
 * the server keeps it and the mode reuses connections. */
static void finish_response(struct lg_worker *worker, struct conn *conn)
{
    if (conn->operation == OP_OPEN) {
        /* The warm-up answer: whatever its status, the window's requests will say it again. */
        if (!conn->response.keep_alive) {
            finish_error(worker, conn, LG_ERR_CLOSED,
                         "the server closed the connection after the warm-up request");
            return;
        }
        finish_ok(worker, conn, true);
        return;
    }
    bool keep_open = conn->operation == OP_REQUEST && conn->response.keep_alive;
    int status = conn->response.status;
    if (status >= 200 && status < 300) {
        finish_ok(worker, conn, keep_open);
        return;
    }
    char detail[16];
    snprintf(detail, sizeof(detail), "%d", status);
    lg_tally_error(&worker->tally, LG_ERR_HTTP, detail);
    trace_operation(worker, conn, LG_ERR_HTTP, lg_now_ns());
    if (keep_open) {
        conn->state = CONN_IDLE;
    } else {
        close_conn(conn);
    }
    end_operation(worker, conn);
}

/* ---- OpenSSL outcomes ---- */

enum outcome {
    OUTCOME_DONE, /* the call succeeded */
    OUTCOME_WANT_READ,
    OUTCOME_WANT_WRITE,
    OUTCOME_EOF,    /* close_notify, or the TCP connection ended */
    OUTCOME_FAILED, /* kind and detail say what */
};

/* The one place SSL_get_error is read. For a failure, *kind and detail are set: a TLS error
 * carries OpenSSL's reason (and the verification result when the chain was refused); an
 * unexpected end or a reset is "closed". */
static enum outcome ssl_outcome(SSL *ssl, int ret, enum lg_error_kind *kind, char *detail,
                                size_t detail_size)
{
    int saved_errno = errno;
    int code = SSL_get_error(ssl, ret);
    switch (code) {
    case SSL_ERROR_NONE:
        return OUTCOME_DONE;
    case SSL_ERROR_WANT_READ:
        return OUTCOME_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return OUTCOME_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return OUTCOME_EOF;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (saved_errno == 0) {
            return OUTCOME_EOF;
        }
        *kind = LG_ERR_CLOSED;
        snprintf(detail, detail_size, "%s", strerror(saved_errno));
        return OUTCOME_FAILED;
    default: {
        unsigned long error = ERR_peek_error();
        ERR_clear_error();
        if (ERR_GET_LIB(error) == ERR_LIB_SSL &&
            ERR_GET_REASON(error) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            return OUTCOME_EOF;
        }
        *kind = LG_ERR_TLS;
        const char *reason = error != 0 ? ERR_reason_error_string(error) : NULL;
        long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            snprintf(detail, detail_size, "%s: %s", reason ? reason : "verification failed",
                     X509_verify_cert_error_string(verify));
        } else {
            snprintf(detail, detail_size, "%s", reason ? reason : "TLS failure (no reason)");
        }
        return OUTCOME_FAILED;
    }
    }
}

/* ---- the steps ---- */

static void step(struct lg_worker *worker, struct conn *conn);

static const char *closed_detail(const struct conn *conn)
{
    switch (conn->state) {
    case CONN_HANDSHAKING:
        return "during the TLS handshake";
    case CONN_WRITING:
        return "while the request was sent";
    default:
        return "before the answer was complete";
    }
}

/* Maps a non-DONE outcome: wait for readiness, or end the operation. */
static void wait_or_fail(struct lg_worker *worker, struct conn *conn, enum outcome outcome,
                         enum lg_error_kind kind, const char *detail)
{
    if (outcome == OUTCOME_WANT_READ) {
        want_events(worker, conn, EPOLLIN);
    } else if (outcome == OUTCOME_WANT_WRITE) {
        want_events(worker, conn, EPOLLOUT);
    } else if (outcome == OUTCOME_EOF) {
        finish_error(worker, conn, LG_ERR_CLOSED, closed_detail(conn));
    } else {
        finish_error(worker, conn, kind, detail);
    }
}

static void start_connect(struct lg_worker *worker, struct conn *conn)
{
    const struct lg_run *run = worker->run;
    conn->fd = socket(run->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (conn->fd < 0) {
        char detail[96];
        snprintf(detail, sizeof(detail), "socket: %s", strerror(errno));
        finish_error(worker, conn, LG_ERR_CONNECT, detail);
        return;
    }
    /* Small requests and answers: do not let Nagle hold them back. */
    int one = 1;
    (void)setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(conn->fd, (const struct sockaddr *)&run->address, run->address_len) != 0 &&
        errno != EINPROGRESS) {
        finish_error(worker, conn, LG_ERR_CONNECT, strerror(errno));
        return;
    }
    conn->state = CONN_CONNECTING;
    want_events(worker, conn, EPOLLOUT);
}

/* The next identity in the round-robin (one per connection), set on the new SSL. */
static bool set_identity(struct lg_worker *worker, SSL *ssl)
{
    struct lg_run *run = worker->run;
    if (run->identity_count == 0) {
        return true;
    }
    uint64_t n = atomic_fetch_add(&run->next_identity, 1);
    const struct lg_identity *identity = &run->identities[n % run->identity_count];
    return SSL_use_certificate(ssl, identity->cert) == 1 &&
           SSL_use_PrivateKey(ssl, identity->key) == 1 &&
           (sk_X509_num(identity->chain) == 0 || SSL_set1_chain(ssl, identity->chain) == 1);
}

static void after_connect(struct lg_worker *worker, struct conn *conn)
{
    int socket_error = 0;
    socklen_t len = sizeof(socket_error);
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &socket_error, &len) != 0) {
        socket_error = errno;
    }
    if (socket_error != 0) {
        finish_error(worker, conn, LG_ERR_CONNECT, strerror(socket_error));
        return;
    }
    ERR_clear_error();
    conn->ssl = SSL_new(worker->run->ssl_ctx);
    bool ready =
        conn->ssl != NULL && SSL_set_fd(conn->ssl, conn->fd) == 1 &&
        set_identity(worker, conn->ssl) &&
        (worker->run->host_is_ip || SSL_set_tlsext_host_name(conn->ssl, worker->run->host) == 1);
    if (!ready) {
        char detail[96];
        ERR_error_string_n(ERR_peek_last_error(), detail, sizeof(detail));
        ERR_clear_error();
        finish_error(worker, conn, LG_ERR_TLS, detail);
        return;
    }
    conn->state = CONN_HANDSHAKING;
    step(worker, conn);
}

static void start_request(struct lg_worker *worker, struct conn *conn)
{
    conn->state = CONN_WRITING;
    conn->request_sent = 0;
    lg_http_response_reset(&conn->response, worker->run->head_request);
    step(worker, conn);
}

static void handshake(struct lg_worker *worker, struct conn *conn)
{
    enum lg_error_kind kind = LG_ERR_TLS;
    char detail[96] = "";
    ERR_clear_error();
    errno = 0;
    int ret = SSL_connect(conn->ssl);
    enum outcome outcome =
        ret == 1 ? OUTCOME_DONE : ssl_outcome(conn->ssl, ret, &kind, detail, sizeof(detail));
    if (outcome != OUTCOME_DONE) {
        wait_or_fail(worker, conn, outcome, kind, detail);
        return;
    }
    if (conn->operation == OP_OPEN && worker->run->options->no_warmup) {
        finish_ok(worker, conn, true);
    } else if (conn->operation != OP_HANDSHAKE || worker->run->options->handshake_request) {
        start_request(worker, conn);
    } else {
        /* Handshake only: say goodbye and wait for the server to close (see the notes). */
        ERR_clear_error();
        (void)SSL_shutdown(conn->ssl);
        ERR_clear_error();
        conn->state = CONN_CLOSING;
        want_events(worker, conn, EPOLLIN);
    }
}

static void write_request(struct lg_worker *worker, struct conn *conn)
{
    const struct lg_run *run = worker->run;
    while (conn->request_sent < run->request_len) {
        enum lg_error_kind kind = LG_ERR_TLS;
        char detail[96] = "";
        size_t left = run->request_len - conn->request_sent;
        int chunk = left > (size_t)INT32_MAX ? INT32_MAX : (int)left;
        ERR_clear_error();
        errno = 0;
        int ret = SSL_write(conn->ssl, run->request + conn->request_sent, chunk);
        if (ret > 0) {
            conn->request_sent += (size_t)ret;
            continue;
        }
        wait_or_fail(worker, conn, ssl_outcome(conn->ssl, ret, &kind, detail, sizeof(detail)), kind,
                     detail);
        return;
    }
    conn->state = CONN_READING;
    step(worker, conn);
}

/* One SSL_read into the worker's buffer. Returns the bytes read (> 0), or 0 with *outcome set
 * (and *kind, detail for a failure). */
static size_t read_once(struct lg_worker *worker, struct conn *conn, enum outcome *outcome,
                        enum lg_error_kind *kind, char *detail, size_t detail_size)
{
    ERR_clear_error();
    errno = 0;
    int ret = SSL_read(conn->ssl, worker->read_buffer, sizeof(worker->read_buffer));
    if (ret > 0) {
        return (size_t)ret;
    }
    *outcome = ssl_outcome(conn->ssl, ret, kind, detail, detail_size);
    return 0;
}

/* Reads and drops everything until OpenSSL would block or the connection ends. */
static enum outcome drain(struct lg_worker *worker, struct conn *conn, enum lg_error_kind *kind,
                          char *detail, size_t detail_size)
{
    enum outcome outcome = OUTCOME_DONE;
    while (read_once(worker, conn, &outcome, kind, detail, detail_size) > 0) {
    }
    return outcome;
}

static void read_response(struct lg_worker *worker, struct conn *conn)
{
    enum lg_error_kind kind = LG_ERR_TLS;
    char detail[96] = "";
    enum outcome outcome = OUTCOME_DONE;
    for (;;) {
        size_t len = read_once(worker, conn, &outcome, &kind, detail, sizeof(detail));
        if (len == 0) {
            break;
        }
        size_t consumed = 0;
        enum lg_http_feed feed =
            lg_http_response_feed(&conn->response, worker->read_buffer, len, &consumed);
        if (feed == LG_HTTP_ERROR) {
            finish_error(worker, conn, LG_ERR_PROTOCOL, conn->response.error);
            return;
        }
        if (feed == LG_HTTP_COMPLETE) {
            if (consumed != len) {
                finish_error(worker, conn, LG_ERR_PROTOCOL, "bytes after the response");
            } else {
                finish_response(worker, conn);
            }
            return;
        }
    }
    if (outcome != OUTCOME_EOF) {
        wait_or_fail(worker, conn, outcome, kind, detail);
    } else if (lg_http_response_eof(&conn->response) == LG_HTTP_COMPLETE) {
        conn->response.keep_alive = false; /* a body delimited by the end of the connection */
        finish_response(worker, conn);
    } else {
        finish_error(worker, conn, LG_ERR_CLOSED, conn->response.error);
    }
}

/* Handshake only: read (and drop) whatever comes - TLS 1.3 session tickets, the server's
 * close_notify - until the server closes. A reset at this point still ends a handshake the
 * server finished. */
static void await_close(struct lg_worker *worker, struct conn *conn)
{
    enum lg_error_kind kind = LG_ERR_TLS;
    char detail[96] = "";
    enum outcome outcome = drain(worker, conn, &kind, detail, sizeof(detail));
    if (outcome == OUTCOME_EOF || (outcome == OUTCOME_FAILED && kind == LG_ERR_CLOSED)) {
        finish_ok(worker, conn, false);
    } else {
        wait_or_fail(worker, conn, outcome, kind, detail);
    }
}

/* An idle kept-alive connection became readable: TLS 1.3 tickets (read and dropped), or the
 * server closing it, which is noted and not an error: the next operation reopens it. */
static void idle_readable(struct lg_worker *worker, struct conn *conn)
{
    enum lg_error_kind kind = LG_ERR_TLS;
    char detail[96] = "";
    enum outcome outcome = drain(worker, conn, &kind, detail, sizeof(detail));
    if (outcome == OUTCOME_WANT_READ) {
        want_events(worker, conn, EPOLLIN); /* drop EPOLLOUT if an earlier pass asked for it */
        return;
    }
    if (outcome == OUTCOME_WANT_WRITE) {
        want_events(worker, conn, EPOLLIN | EPOLLOUT);
        return;
    }
    worker->tally.idle_closed++;
    close_conn(conn);
}

static void step(struct lg_worker *worker, struct conn *conn)
{
    switch (conn->state) {
    case CONN_CONNECTING:
        after_connect(worker, conn);
        break;
    case CONN_HANDSHAKING:
        handshake(worker, conn);
        break;
    case CONN_WRITING:
        write_request(worker, conn);
        break;
    case CONN_READING:
        read_response(worker, conn);
        break;
    case CONN_CLOSING:
        await_close(worker, conn);
        break;
    case CONN_IDLE:
        idle_readable(worker, conn);
        break;
    case CONN_DOWN:
        break;
    }
}

/* ---- starting operations ---- */

static void start_operation(struct lg_worker *worker, struct conn *conn, enum operation operation,
                            uint64_t origin_ns)
{
    uint64_t now = lg_now_ns();
    conn->operation = operation;
    conn->started_ns = origin_ns;
    conn->sent_ns = now;
    conn->deadline_ns = now + (uint64_t)(worker->run->options->timeout_s * 1e9);
    worker->in_flight++;
    if (conn->state == CONN_IDLE) {
        start_request(worker, conn);
        return;
    }
    if (operation == OP_REQUEST) {
        worker->tally.reconnects++;
    }
    close_conn(conn);
    start_connect(worker, conn);
}

/* Takes one operation from the budget: the window's end (duration) or the shared count. */
static bool take_budget(struct lg_worker *worker, uint64_t now)
{
    const struct lg_run *run = worker->run;
    if (run->options->requests == 0) {
        if (now >= run->window_end_ns) {
            worker->issuing_done = true;
        }
    } else if (atomic_fetch_add(&worker->run->ops_issued, 1) >= run->options->requests) {
        worker->issuing_done = true;
    }
    return !worker->issuing_done;
}

static void issue_operations(struct lg_worker *worker)
{
    enum operation operation =
        worker->run->options->mode == LG_MODE_HANDSHAKE ? OP_HANDSHAKE : OP_REQUEST;
    while (!worker->issuing_done && worker->idle_count > 0) {
        uint64_t now = lg_now_ns();
        uint64_t origin = now;
        if (worker->interval_ns != 0) {
            if (worker->next_due_ns > now) {
                return;
            }
            origin = worker->next_due_ns;
        }
        if (!take_budget(worker, now)) {
            return;
        }
        worker->next_due_ns += worker->interval_ns;
        start_operation(worker, idle_pop(worker), operation, origin);
    }
}

/* ---- the loop ---- */

static void expire_deadlines(struct lg_worker *worker, uint64_t now)
{
    for (size_t i = 0; i < worker->conn_count; i++) {
        struct conn *conn = &worker->conns[i];
        if (conn->operation != OP_NONE && now >= conn->deadline_ns) {
            finish_error(worker, conn, LG_ERR_TIMEOUT, closed_detail(conn));
        }
    }
}

/* Request mode, before the window: start opening connections, OPEN_CONCURRENCY at a time.
 * The idle ring is FIFO and an opened connection goes to its back, so conn_count pops reach
 * every connection once. */
static void issue_opens(struct lg_worker *worker)
{
    while (worker->opens_started < worker->conn_count && worker->in_flight < OPEN_CONCURRENCY) {
        worker->opens_started++;
        start_operation(worker, idle_pop(worker), OP_OPEN, lg_now_ns());
    }
}

enum phase {
    PHASE_OPEN,   /* opening connections; nothing is counted as an operation */
    PHASE_WINDOW, /* operations are issued and counted */
};

/* How long epoll may sleep: until the next due operation, deadline check or window end. */
static struct timespec sleep_budget(const struct lg_worker *worker, uint64_t now, enum phase phase)
{
    uint64_t wake = worker->next_tick_ns;
    if (phase == PHASE_WINDOW) {
        if (worker->interval_ns != 0 && worker->idle_count > 0 && !worker->issuing_done &&
            worker->next_due_ns < wake) {
            wake = worker->next_due_ns;
        }
        if (worker->run->options->requests == 0 && worker->run->window_end_ns < wake) {
            wake = worker->run->window_end_ns;
        }
    }
    uint64_t wait = wake > now ? wake - now : 0;
    struct timespec timeout = {.tv_sec = (time_t)(wait / 1000000000ULL),
                               .tv_nsec = (long)(wait % 1000000000ULL)};
    return timeout;
}

/* Whether the phase is over: every connection tried (open), or the window's end or budget. */
static bool phase_over(const struct lg_worker *worker, enum phase phase, uint64_t now)
{
    if (phase == PHASE_OPEN) {
        return worker->in_flight == 0 && worker->opens_started == worker->conn_count;
    }
    if (worker->run->options->requests == 0 && now >= worker->run->window_end_ns) {
        return true; /* the window is over; whatever is in flight is not counted */
    }
    return worker->in_flight == 0 && worker->issuing_done;
}

static void run_loop(struct lg_worker *worker, enum phase phase)
{
    struct epoll_event events[EPOLL_BATCH];
    worker->next_tick_ns = lg_now_ns() + TICK_NS;
    for (;;) {
        if (phase == PHASE_OPEN) {
            issue_opens(worker);
        } else {
            issue_operations(worker);
        }
        uint64_t now = lg_now_ns();
        if (phase_over(worker, phase, now)) {
            return;
        }
        struct timespec timeout = sleep_budget(worker, now, phase);
        int ready = epoll_pwait2(worker->epoll_fd, events, EPOLL_BATCH, &timeout, NULL);
        for (int i = 0; i < ready; i++) {
            step(worker, events[i].data.ptr);
        }
        now = lg_now_ns();
        if (now >= worker->next_tick_ns) {
            expire_deadlines(worker, now);
            worker->next_tick_ns = now + TICK_NS;
        }
    }
}

void *lg_worker_main(void *arg)
{
    struct lg_worker *worker = arg;
    struct lg_run *run = worker->run;
    if (run->options->mode == LG_MODE_REQUEST) {
        run_loop(worker, PHASE_OPEN);
    }
    pthread_barrier_wait(&run->barrier); /* connections open */
    pthread_barrier_wait(&run->barrier); /* main sampled: the window starts */
    if (run->options->rate > 0) {
        worker->interval_ns = (uint64_t)(1e9 * run->options->threads / run->options->rate);
        if (worker->interval_ns == 0) {
            worker->interval_ns = 1;
        }
        /* Spread the threads' schedules over one interval so they do not fire together. */
        worker->next_due_ns = lg_now_ns() + worker->interval_ns * (uint64_t)worker->id /
                                                (uint64_t)run->options->threads;
    }
    run_loop(worker, PHASE_WINDOW);
    pthread_barrier_wait(&run->barrier); /* the window is over */
    pthread_barrier_wait(&run->barrier); /* main sampled: close everything */
    for (size_t i = 0; i < worker->conn_count; i++) {
        close_conn(&worker->conns[i]);
    }
    return NULL;
}

struct lg_worker *lg_worker_new(struct lg_run *run, int id, int connection_count)
{
    struct lg_worker *worker = calloc(1, sizeof(*worker));
    if (worker == NULL) {
        return NULL;
    }
    worker->run = run;
    worker->id = id;
    worker->conn_count = (size_t)connection_count;
    lg_tally_init(&worker->tally);
    worker->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    worker->conns = calloc(worker->conn_count, sizeof(*worker->conns));
    worker->idle_ring = calloc(worker->conn_count, sizeof(*worker->idle_ring));
    if (worker->epoll_fd < 0 || worker->conns == NULL || worker->idle_ring == NULL) {
        lg_worker_free(worker);
        return NULL;
    }
    for (size_t i = 0; i < worker->conn_count; i++) {
        worker->conns[i].fd = -1;
        worker->conns[i].state = CONN_DOWN;
        idle_push(worker, &worker->conns[i]);
    }
    return worker;
}

void lg_worker_free(struct lg_worker *worker)
{
    if (worker == NULL) {
        return;
    }
    for (size_t i = 0; worker->conns != NULL && i < worker->conn_count; i++) {
        close_conn(&worker->conns[i]);
    }
    if (worker->epoll_fd >= 0) {
        close(worker->epoll_fd);
    }
    free(worker->conns);
    free(worker->idle_ring);
    free(worker->trace);
    free(worker);
}

const struct lg_trace_record *lg_worker_trace(const struct lg_worker *worker, size_t *count,
                                             uint64_t *dropped)
{
    *count = worker->trace_count;
    *dropped = worker->trace_dropped;
    return worker->trace;
}

const struct lg_tally *lg_worker_tally(const struct lg_worker *worker)
{
    return &worker->tally;
}
