/*
 * net/http.c - the HTTPS server: workers, their listening sockets, accepting, stopping and the
 * statistics. One connection's life is in conn.c, requests and responses in request.c, streams
 * in stream.c; the types the four share are in http_internal.h.
 *
 * Threads. One listening socket per worker, all bound to the same port with SO_REUSEPORT (the
 * kernel spreads connections across them); each worker has its own libevent event_base and owns
 * every connection it accepted: every call for a connection happens on its worker. Only four
 * things cross threads: kp_http_server_set_ssl_ctx (a mutex around one pointer),
 * kp_http_stream_send/_end (a per-stream mutex, a per-worker queue, event_active on the
 * worker's wake event), the connection count (atomic) and kp_http_server_stop (event_active on
 * each worker's stop event, then pthread_join).
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "crypto/crypto.h"
#include "net/http.h"
#include "net/http_internal.h"

#define DEFAULT_MAX_HEADER_BYTES ((size_t)64 * 1024)
#define DEFAULT_MAX_BODY_BYTES ((size_t)3 * 1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS 10000
#define DEFAULT_READ_TIMEOUT_S 60
#define DEFAULT_IDLE_TIMEOUT_S 90
#define DEFAULT_MAX_STREAM_BUFFER ((size_t)8 * 1024 * 1024)

#define MAX_WORKERS 256
#define LISTEN_BACKLOG 1024
/* kp_http_server_stop: time given to the terminating chunks of open streams to reach clients. */
#define STOP_GRACE_MS 1000
/* After accept(2) fails for lack of descriptors: pause accepting this long. */
#define ACCEPT_RETRY_MS 100
/* Connections taken per wake-up of a listener, so one busy port cannot starve the others. */
#define ACCEPTS_PER_PASS 64
/* Longest lingering close (conn.c): what a client still sends after its answer is read away
 * for at most this long (or the read timeout, when shorter). */
#define LINGER_S 5

/* ------------------------------------------------------------------ process-wide set-up */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ok;

static void libevent_log(int severity, const char *msg)
{
    if (severity >= EVENT_LOG_ERR) {
        kp_log_error("libevent: %s", msg);
    } else {
        kp_log_debug("libevent: %s", msg);
    }
}

static void global_init(void)
{
    if (evthread_use_pthreads() != 0) {
        return;
    }
    event_set_log_callback(libevent_log);
    http_parser_setup();
    global_ok = http_conn_init_global();
}

void kp_http_limits_default(struct kp_http_limits *limits)
{
    limits->max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    limits->max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    limits->max_connections = DEFAULT_MAX_CONNECTIONS;
    limits->read_timeout_s = DEFAULT_READ_TIMEOUT_S;
    limits->idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S;
    limits->max_stream_buffer_bytes = DEFAULT_MAX_STREAM_BUFFER;
}

/* ------------------------------------------------------------------ status lines */

/* Go's net/http spellings (libevent's own table stops at 417). */
static const struct {
    int status;
    const char *reason;
} REASONS[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Request Entity Too Large"},
    {414, "Request URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Requested Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {507, "Insufficient Storage"},
    {511, "Network Authentication Required"},
    {1, "Informational"},
    {2, "Success"},
    {3, "Redirection"},
    {4, "Client Error"},
};

const char *http_status_reason(int status)
{
    for (size_t i = 0; i < sizeof(REASONS) / sizeof(REASONS[0]); i++) {
        if (REASONS[i].status == status) {
            return REASONS[i].reason;
        }
    }
    static const char *const classes[] = {"Informational", "Success", "Redirection", "Client Error",
                                          "Server Error"};
    int class_index = status / 100 - 1;
    return class_index >= 0 && class_index < 5 ? classes[class_index] : "Unknown";
}

/* ------------------------------------------------------------------ connections */

const char *http_worker_date(struct worker *worker)
{
    time_t now = time(NULL);
    if (now != worker->date_second) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(worker->date, sizeof(worker->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        worker->date_second = now;
    }
    return worker->date;
}

/* ------------------------------------------------------------------ handshake statistics */

/* Counts a failed handshake under its reason; the first KP_HTTP_FAILURE_REASONS - 1 distinct
 * reasons get their own counter, later ones share "other". */
void http_count_handshake_failure(struct kp_http_server *server, const char *reason)
{
    atomic_fetch_add(&server->handshake_failures, 1);
    pthread_mutex_lock(&server->reasons_mutex);
    size_t i = 0;
    while (i < server->reason_count && strcmp(server->reasons[i].reason, reason) != 0) {
        i++;
    }
    if (i == server->reason_count && i >= KP_HTTP_FAILURE_REASONS - 1) {
        /* the last slot, "other", is shared by every reason beyond the first ones */
        i = KP_HTTP_FAILURE_REASONS - 1;
        reason = "other";
        if (server->reason_count == KP_HTTP_FAILURE_REASONS) {
            server->reasons[i].count++;
            pthread_mutex_unlock(&server->reasons_mutex);
            return;
        }
    }
    if (i == server->reason_count) {
        snprintf(server->reasons[i].reason, sizeof(server->reasons[i].reason), "%s", reason);
        server->reason_count++;
    }
    server->reasons[i].count++;
    pthread_mutex_unlock(&server->reasons_mutex);
}

/* ------------------------------------------------------------------ workers */

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *worker = arg;
    if (worker->listener != NULL && !worker->stopping) {
        event_add(worker->listener, NULL);
    }
}

/* The listening socket is readable: take what is waiting (up to ACCEPTS_PER_PASS; the socket
 * stays readable, level-triggered, for the rest). accept(2) failing for lack of descriptors
 * or memory leaves the connection in the backlog, where it would wake the loop at once again:
 * accepting pauses for ACCEPT_RETRY_MS instead. */
static void on_listener(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *worker = arg;
    for (int i = 0; i < ACCEPTS_PER_PASS && !worker->stopping; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int client = accept4(fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client >= 0) {
            http_conn_accept(worker, client, (const struct sockaddr *)&peer, peer_len);
            continue;
        }
        int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK) {
            return;
        }
        if (error == EINTR || error == ECONNABORTED || error == EPROTO || error == EPERM) {
            continue; /* that client is gone (or refused by a firewall rule); next */
        }
        kp_log_warn("http: accept failed: %s; pausing accepts for %d ms", strerror(error),
                    ACCEPT_RETRY_MS);
        event_del(worker->listener);
        struct timeval retry = {0, ACCEPT_RETRY_MS * 1000};
        evtimer_add(worker->accept_retry, &retry);
        return;
    }
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *worker = arg;
    event_base_loopbreak(worker->base);
}

/* Stop, on the worker: no more accepts; what producers queued goes out; every open stream is
 * closed (on_close) and ended with its terminating chunk; then a short grace period lets those
 * chunks reach the clients before every connection is closed. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *worker = arg;
    ERR_clear_error();
    worker->stopping = true;
    if (worker->listener != NULL) {
        event_del(worker->listener);
    }
    evtimer_del(worker->accept_retry);
    /* Held while the streams are walked: one ending at once must not break the loop (its
     * detach sees flushing reach zero) before the others have been given their grace. */
    worker->flushing++;
    http_worker_process_queue(worker);
    struct kp_http_stream *stream = worker->open_streams;
    while (stream != NULL) {
        struct kp_http_stream *next = stream->open_next;
        http_stream_flush_all(stream); /* what producers queued goes before the end */
        http_stream_close(stream);
        struct conn *conn = stream->conn;
        if (conn != NULL && conn->state != CONN_CLOSING) {
            if (!stream->end_sent) {
                http_stream_send_end(stream);
            }
            stream->flushing = true; /* until its response is complete (detach) */
            worker->flushing++;
            http_conn_run(conn); /* may detach (and free) the stream */
        }
        stream = next;
    }
    worker->flushing--;
    if (worker->flushing > 0) {
        struct timeval grace = {STOP_GRACE_MS / 1000, (STOP_GRACE_MS % 1000) * 1000};
        evtimer_add(worker->grace, &grace);
    } else {
        event_base_loopbreak(worker->base);
    }
}

/* After the loop: close every connection, release what producers still had queued. */
static void worker_teardown(struct worker *worker)
{
    while (worker->conns != NULL) {
        http_conn_free(worker->conns); /* open streams get their on_close */
    }
    http_worker_discard_queue(worker);
    http_worker_free_spares(worker);
    struct event **events[] = {&worker->listener, &worker->wake, &worker->stop, &worker->grace,
                               &worker->accept_retry};
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        if (*events[i] != NULL) {
            event_free(*events[i]);
            *events[i] = NULL;
        }
    }
    if (worker->base != NULL) {
        event_base_free(worker->base);
        worker->base = NULL;
    }
    if (worker->listen_fd >= 0) {
        close(worker->listen_fd);
        worker->listen_fd = -1;
    }
}

static void *worker_main(void *arg)
{
    struct worker *worker = arg;
    event_base_loop(worker->base, EVLOOP_NO_EXIT_ON_EMPTY);
    worker_teardown(worker);
    return NULL;
}

/* A listening socket on the address; port 0 lets the kernel pick (the first worker's). */
static enum kp_result open_listener(const struct sockaddr *addr, socklen_t addr_len,
                                    const char *address, int port, evutil_socket_t *out,
                                    int *bound_port, struct kp_error *err)
{
    struct sockaddr_storage bind_addr;
    memcpy(&bind_addr, addr, addr_len);
    if (bind_addr.ss_family == AF_INET) {
        ((struct sockaddr_in *)&bind_addr)->sin_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in6 *)&bind_addr)->sin6_port = htons((uint16_t)port);
    }
    int fd = socket(bind_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return kp_error_errno(err, errno, "cannot create a socket for %s", address);
    }
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
        int saved = errno;
        close(fd);
        return kp_error_errno(err, saved, "cannot set SO_REUSEPORT on %s", address);
    }
    /* A response leaves in one write, but a stream's chunks and a big body in several: without
     * TCP_NODELAY the next would wait for the client's delayed ACK. Set here, once: Linux
     * gives accepted sockets the listener's TCP_NODELAY (a system call less per connection). */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) {
        int saved = errno;
        close(fd);
        return kp_error_errno(err, saved, "cannot set TCP_NODELAY on %s", address);
    }
    /* A connection is handed to accept(2) once its first bytes (the ClientHello) are there, as
     * nginx's "listen ... deferred": the loop does not wake for a socket it can only wait on.
     * A client that connects and sends nothing is accepted after about a second (one SYN-ACK
     * retransmission; nginx's value too), and the handshake deadline runs from then. Where the
     * option does not exist, or is refused, connections are accepted at once. */
    int defer_seconds = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof(defer_seconds)) != 0) {
        kp_log_debug("http: no TCP_DEFER_ACCEPT on %s: %s", address, strerror(errno));
    }
    if (bind(fd, (struct sockaddr *)&bind_addr, addr_len) != 0) {
        int saved = errno;
        close(fd);
        enum kp_result code = saved == EADDRNOTAVAIL ? KP_ERR_INVALID : KP_ERR_IO;
        return kp_error_set(err, code, "cannot listen on %s port %d: %s", address, port,
                            strerror(saved));
    }
    if (listen(fd, LISTEN_BACKLOG) != 0) {
        int saved = errno;
        close(fd);
        return kp_error_set(err, KP_ERR_IO, "cannot listen on %s port %d: %s", address, port,
                            strerror(saved));
    }
    struct sockaddr_storage got;
    socklen_t got_len = sizeof(got);
    if (getsockname(fd, (struct sockaddr *)&got, &got_len) != 0) {
        int saved = errno;
        close(fd);
        return kp_error_errno(err, saved, "getsockname on %s", address);
    }
    *bound_port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                 : ((struct sockaddr_in6 *)&got)->sin6_port);
    *out = fd;
    return KP_OK;
}

/* A libevent "common timeout" of the base: timers of one duration kept in a queue, so arming
 * one of the connection deadlines is O(1) whatever the number of connections. */
static const struct timeval *common_timeout(struct event_base *base, int seconds)
{
    struct timeval duration = {seconds, 0};
    return event_base_init_common_timeout(base, &duration);
}

static enum kp_result worker_init(struct worker *worker, int listen_fd, struct kp_error *err)
{
    const struct kp_http_limits *limits = &worker->server->limits;
    worker->listen_fd = listen_fd;
    if (pthread_mutex_init(&worker->queue_mutex, NULL) != 0) {
        return kp_error_set(err, KP_ERR_IO, "cannot create a mutex");
    }
    worker->queue_mutex_ready = true;
    worker->base = event_base_new();
    if (worker->base == NULL) {
        return kp_error_set(err, KP_ERR_IO, "cannot create an event loop");
    }
    /* A client that reads nothing of its response (or stream) for the read timeout is gone. */
    int linger = limits->read_timeout_s < LINGER_S ? limits->read_timeout_s : LINGER_S;
    worker->read_tv = common_timeout(worker->base, limits->read_timeout_s);
    worker->idle_tv = common_timeout(worker->base, limits->idle_timeout_s);
    worker->write_tv = worker->read_tv;
    worker->linger_tv = common_timeout(worker->base, linger);
    worker->listener =
        event_new(worker->base, listen_fd, EV_READ | EV_PERSIST, on_listener, worker);
    worker->wake = event_new(worker->base, -1, EV_PERSIST, http_on_wake, worker);
    worker->stop = event_new(worker->base, -1, 0, on_stop, worker);
    worker->grace = evtimer_new(worker->base, on_grace, worker);
    worker->accept_retry = evtimer_new(worker->base, on_accept_retry, worker);
    if (worker->read_tv == NULL || worker->idle_tv == NULL || worker->linger_tv == NULL ||
        worker->listener == NULL || worker->wake == NULL || worker->stop == NULL ||
        worker->grace == NULL || worker->accept_retry == NULL ||
        event_add(worker->listener, NULL) != 0) {
        return kp_error_set(err, KP_ERR_IO, "cannot create the HTTP server (out of memory)");
    }
    return KP_OK;
}

static void server_free(struct kp_http_server *server)
{
    for (int i = 0; i < server->worker_count; i++) {
        struct worker *worker = &server->workers[i];
        if (worker->thread_started) {
            event_active(worker->stop, EV_READ, 0);
        }
    }
    for (int i = 0; i < server->worker_count; i++) {
        struct worker *worker = &server->workers[i];
        if (worker->thread_started) {
            pthread_join(worker->thread, NULL);
        } else {
            worker_teardown(worker);
        }
        if (worker->queue_mutex_ready) {
            pthread_mutex_destroy(&worker->queue_mutex);
        }
    }
    free(server->workers);
    SSL_CTX_free(server->ssl_ctx);
    pthread_mutex_destroy(&server->ctx_mutex);
    pthread_mutex_destroy(&server->reasons_mutex);
    free(server);
}

/* Go raises the soft descriptor limit to the hard one at start-up; so do we, when the soft
 * limit cannot hold max_connections. */
static void raise_fd_limit(int max_connections)
{
    struct rlimit limit;
    rlim_t wanted = (rlim_t)max_connections + 256;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted) {
        return;
    }
    rlim_t target =
        limit.rlim_max == RLIM_INFINITY || limit.rlim_max > wanted ? wanted : limit.rlim_max;
    if (target > limit.rlim_cur) {
        limit.rlim_cur = target;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur < wanted) {
        kp_log_warn("http: the descriptor limit (%llu) is below max_connections (%d); accepts "
                    "will fail before the limit is reached",
                    (unsigned long long)limit.rlim_cur, max_connections);
    }
}

static void apply_defaults(struct kp_http_limits *limits)
{
    struct kp_http_limits defaults;
    kp_http_limits_default(&defaults);
    if (limits->max_header_bytes == 0) {
        limits->max_header_bytes = defaults.max_header_bytes;
    }
    if (limits->max_body_bytes == 0) {
        limits->max_body_bytes = defaults.max_body_bytes;
    }
    if (limits->max_connections <= 0) {
        limits->max_connections = defaults.max_connections;
    }
    if (limits->read_timeout_s <= 0) {
        limits->read_timeout_s = defaults.read_timeout_s;
    }
    if (limits->idle_timeout_s <= 0) {
        limits->idle_timeout_s = defaults.idle_timeout_s;
    }
    if (limits->max_stream_buffer_bytes == 0) {
        limits->max_stream_buffer_bytes = defaults.max_stream_buffer_bytes;
    }
}

enum kp_result kp_http_server_start(const struct kp_http_server_config *config,
                                    struct kp_http_server **out, struct kp_error *err)
{
    enum kp_result result = KP_OK;
    struct kp_http_server *server = NULL;
    struct addrinfo *address = NULL;
    *out = NULL;

    const char *bind_address = config->bind_address != NULL ? config->bind_address : "0.0.0.0";
    if (config->ssl_ctx == NULL || config->handler == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "HTTPS server: no TLS context or no handler");
    }
    if (config->port < 0 || config->port > 65535) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid port %d", config->port);
    }
    pthread_once(&global_once, global_init);
    if (!global_ok) {
        return kp_error_set(err, KP_ERR_INTERNAL, "cannot initialise libevent threading");
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    int status = getaddrinfo(bind_address, NULL, &hints, &address);
    if (status != 0 || address == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid bind address '%s': %s", bind_address,
                            status != 0 ? gai_strerror(status) : "no address");
    }

    server = calloc(1, sizeof(*server));
    if (server == NULL) {
        freeaddrinfo(address);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    server->limits = config->limits;
    apply_defaults(&server->limits);
    server->handler = config->handler;
    server->handler_context = config->handler_context;
    pthread_mutex_init(&server->ctx_mutex, NULL);
    pthread_mutex_init(&server->reasons_mutex, NULL);
    SSL_CTX_up_ref(config->ssl_ctx);
    server->ssl_ctx = config->ssl_ctx;
    atomic_init(&server->connections, 0);

    int threads = config->threads;
    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
    }
    if (threads > MAX_WORKERS) {
        threads = MAX_WORKERS;
    }
    server->workers = calloc((size_t)threads, sizeof(*server->workers));
    if (server->workers == NULL) {
        result = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto fail;
    }
    raise_fd_limit(server->limits.max_connections);

    int port = config->port;
    for (int i = 0; i < threads; i++) {
        struct worker *worker = &server->workers[i];
        worker->server = server;
        worker->index = i;
        worker->listen_fd = -1;
        server->worker_count = i + 1;
        evutil_socket_t fd = -1;
        int bound_port = 0;
        result = open_listener(address->ai_addr, address->ai_addrlen, bind_address, port, &fd,
                               &bound_port, err);
        if (result != KP_OK) {
            goto fail;
        }
        port = bound_port; /* port 0: the others join the port the first one got */
        result = worker_init(worker, fd, err);
        if (result != KP_OK) {
            goto fail;
        }
    }
    server->port = port;

    /* Workers take no signals: the daemon's main thread handles them, and SIGPIPE from a
     * write to a closed socket stays pending (write returns EPIPE). */
    sigset_t all, saved;
    sigfillset(&all);
    static const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof(synchronous) / sizeof(synchronous[0]); i++) {
        sigdelset(&all, synchronous[i]); /* faults must still kill (and be reported) */
    }
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    for (int i = 0; i < threads; i++) {
        struct worker *worker = &server->workers[i];
        if (pthread_create(&worker->thread, NULL, worker_main, worker) != 0) {
            pthread_sigmask(SIG_SETMASK, &saved, NULL);
            result = kp_error_set(err, KP_ERR_IO, "cannot start HTTP worker thread %d", i);
            goto fail;
        }
        worker->thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    freeaddrinfo(address);
    kp_log_debug("http: serving on %s port %d with %d threads", bind_address, port, threads);
    *out = server;
    return KP_OK;

fail:
    freeaddrinfo(address);
    server_free(server);
    return result;
}

int kp_http_server_port(const struct kp_http_server *server)
{
    return server->port;
}

void kp_http_server_stop(struct kp_http_server *server)
{
    if (server != NULL) {
        server_free(server);
    }
}

void kp_http_server_set_ssl_ctx(struct kp_http_server *server, SSL_CTX *ssl_ctx)
{
    if (ssl_ctx == NULL || !SSL_CTX_up_ref(ssl_ctx)) {
        return;
    }
    pthread_mutex_lock(&server->ctx_mutex);
    SSL_CTX *old = server->ssl_ctx;
    server->ssl_ctx = ssl_ctx;
    pthread_mutex_unlock(&server->ctx_mutex);
    SSL_CTX_free(old);
}

void kp_http_server_stats(struct kp_http_server *server, struct kp_http_stats *stats)
{
    memset(stats, 0, sizeof(*stats));
    stats->accepted = atomic_load(&server->accepted);
    stats->rejected = atomic_load(&server->rejected);
    stats->open = (uint64_t)atomic_load(&server->connections);
    stats->handshakes = atomic_load(&server->handshakes);
    stats->handshake_failures = atomic_load(&server->handshake_failures);
    pthread_mutex_lock(&server->reasons_mutex);
    stats->reason_count = server->reason_count;
    memcpy(stats->reasons, server->reasons, sizeof(stats->reasons));
    pthread_mutex_unlock(&server->reasons_mutex);
}

SSL_CTX *kp_http_server_ssl_ctx(struct kp_http_server *server)
{
    pthread_mutex_lock(&server->ctx_mutex);
    SSL_CTX *ctx = server->ssl_ctx;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&server->ctx_mutex);
    return ctx;
}
