/*
 * net/http.c - the HTTPS server: libevent 2.1's evhttp over OpenSSL bufferevents.
 *
 * Implementation notes
 *
 * Threads. One listening socket per worker, all bound to the same port with SO_REUSEPORT (the
 * kernel spreads connections across them); each worker has its own event_base and evhttp and
 * owns every connection it accepted: all libevent calls for a connection happen on its worker.
 * Only four things cross threads: kp_http_server_set_ssl_ctx (a mutex around one pointer),
 * kp_http_stream_send/_end (a per-stream mutex, a per-worker queue, event_active on the
 * worker's wake event), the connection count (atomic) and kp_http_server_stop (event_active on
 * each worker's stop event, then pthread_join).
 *
 * A connection. evhttp asks our bevcb for a bufferevent; we make an SSL from the current
 * SSL_CTX (SSL_new takes its own reference on the context, so a swap never pulls a context
 * from under a live connection) and a BUFFEREVENT_SSL_ACCEPTING bufferevent that owns the SSL
 * and the socket (BEV_OPT_CLOSE_ON_FREE). Our per-connection state (struct conn) hangs off the
 * SSL as ex_data and is freed by OpenSSL's ex_data free callback when libevent frees the SSL:
 * that is the one moment libevent tells us a connection is gone for good, whatever path it
 * took (handshake failure, timeout, keep-alive close, evhttp_free).
 *
 * evhttp owns the bufferevent's callbacks, so we never see its event callback. What we use
 * instead: evhttp_connection_set_closecb (set when the first request arrives) for client
 * disconnects, evhttp_request_set_on_complete_cb for "response written", a callback on the
 * bufferevent's input evbuffer for "the first byte of the next request arrived", and our own
 * timer per connection for the whole-request deadline. OpenSSL errors: libevent drains the
 * thread's queue into the bufferevent when a TLS read/write fails; we drain those saved errors
 * in the close callback (logged at debug) and clear the thread's queue before calling into the
 * handler, so its own kp_error_openssl messages never carry a stale reason.
 *
 * Connection states (struct conn.state) and timers:
 *   ACCEPTED  -> handshake and first request; deadline timer = read timeout (from accept)
 *   READING   -> first byte of a later request seen; deadline = read timeout
 *   HANDLING  -> the handler runs / the response is written; bufferevent write timeout only
 *   IDLE      -> between requests; bufferevent read timeout = idle timeout
 *   STREAMING -> a chunked response; no read timeout, write timeout (a stalled reader)
 *   DROPPING  -> we shut the socket down; evhttp frees the connection on the next EOF
 * Dropping is shutdown(2) on the socket (plus a 1 µs bufferevent timeout as a backstop): the
 * client sees the connection closed at once and evhttp frees it through its own EOF path.
 *
 * A request as the handler sees it, its accessors and the response are in request.c; streams
 * (chunked responses, for watches) in stream.c, with their own notes. The types and the calls
 * the three files make in each other are in http_internal.h.
 */
#include <sys/queue.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* the request's HTTP version (no accessor in 2.1) */
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
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

/* ------------------------------------------------------------------ process-wide set-up */

static int conn_ex_index = -1;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ok;

static void conn_free(struct conn *conn);

struct conn *http_conn_of(const SSL *ssl)
{
    return ssl != NULL ? SSL_get_ex_data(ssl, conn_ex_index) : NULL;
}

/* OpenSSL calls this for every SSL it frees (ours and everyone else's, with ptr NULL), before
 * it looks at how the connection ended. libevent frees the SSL without a close_notify of ours,
 * which OpenSSL takes for an unclean end and drops the session from the cache: a connection
 * whose handshake completed and that saw no TLS error is marked shut down, however it ended
 * (closed, reset, timed out, refused by the authenticator), so its session stays resumable
 * (when resumption is on at all, kp_tls_server_ctx_set_resumption). A fatal alert, sent or
 * received, has already dropped the session. A resumed connection has no memo yet, so its
 * chain is verified against the current trust on its first request. */
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    struct conn *conn = ptr;
    if (conn != NULL) {
        if (conn->handshake_done && conn->tls_error[0] == '\0')
            SSL_set_shutdown(parent, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        conn_free(conn);
    }
}

static void libevent_log(int severity, const char *msg)
{
    /* libevent's warnings are mostly about clients (a bad Content-Length, accept errors); they
     * are worth seeing when debugging, not in a normal log. */
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
    conn_ex_index = SSL_get_ex_new_index(0, "kpki http connection", NULL, NULL, conn_ex_free);
    global_ok = conn_ex_index >= 0;
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

void http_conn_set_timeouts(struct conn *conn, const struct timeval *read_tv)
{
    bufferevent_set_timeouts(conn->bev, read_tv, &conn->worker->server->write_tv);
}

/* False once evhttp has freed the bufferevent: its memory lives on until libevent's finalizer
 * runs (and frees this conn with the SSL), but it must not be used - bufferevent_enable, for
 * one, takes and drops a reference and would run the free path a second time, losing the
 * finalizer (a whole connection leaked). bufferevent_free clears the callbacks first, and
 * evhttp keeps its event callback set for as long as it owns the bufferevent. */
bool http_conn_bev_alive(const struct conn *conn)
{
    bufferevent_data_cb read_cb = NULL;
    bufferevent_data_cb write_cb = NULL;
    bufferevent_event_cb event_cb = NULL;
    void *arg = NULL;
    bufferevent_getcb(conn->bev, &read_cb, &write_cb, &event_cb, &arg);
    return event_cb != NULL;
}

/* Closes the connection at once: shutdown(2) makes the client see the close now and makes our
 * next read return EOF, which evhttp handles by freeing the connection (conn_free follows).
 * Reading is (re)enabled so the EOF is seen; a 1 µs timeout is the backstop. */
void http_conn_drop(struct conn *conn, const char *why)
{
    if (conn->state == CONN_DROPPING || !http_conn_bev_alive(conn)) {
        return; /* already going, or evhttp freed it (without telling us: no request yet) */
    }
    kp_log_debug("http: closing the connection from %s: %s",
                 conn->remote[0] != '\0' ? conn->remote : "(unknown)", why);
    conn->state = CONN_DROPPING;
    evtimer_del(conn->deadline);
    evutil_socket_t fd = bufferevent_getfd(conn->bev);
    if (fd >= 0) {
        shutdown(fd, SHUT_RDWR);
    }
    struct timeval now = {0, 1};
    bufferevent_setwatermark(conn->bev, EV_READ, 0, 0);
    bufferevent_enable(conn->bev, EV_READ);
    bufferevent_set_timeouts(conn->bev, &now, &now);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *conn = arg;
    if (conn->rejected) {
        http_conn_drop(conn, "too many connections");
    } else if (conn->state == CONN_ACCEPTED || conn->state == CONN_READING) {
        http_conn_drop(conn, "no complete request within the read timeout");
    }
}

/* Output up to one TLS record's worth (COALESCE_MAX_BYTES) is made contiguous as it is added,
 * so that a response leaves in one record and one write(): evhttp adds a response's head and
 * its body as separate chains, and bufferevent_openssl encrypts and writes each chain on its
 * own (two records, two system calls for every small response). The copy is small; a big body
 * or a stream's backlog is left alone. evbuffer_pullup changes no length, so it runs no
 * callback. */
static void coalesce_output(struct evbuffer *buffer, const struct evbuffer_cb_info *info, void *arg)
{
    (void)arg;
    if (info->n_added > 0 && evbuffer_get_length(buffer) <= COALESCE_MAX_BYTES &&
        evbuffer_peek(buffer, -1, NULL, NULL, 0) > 1) {
        (void)evbuffer_pullup(buffer, -1);
    }
}

/* The first byte of a new request ends the idle wait; the request must then arrive whole within
 * the read timeout (net/http's ReadTimeout semantics; a trickling client is cut off too). */
static void on_input(struct evbuffer *buffer, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buffer;
    struct conn *conn = arg;
    if (info->n_added > 0 && conn->state == CONN_IDLE) {
        const struct kp_http_server *server = conn->worker->server;
        conn->state = CONN_READING;
        http_conn_set_timeouts(conn, &server->read_tv);
        evtimer_add(conn->deadline, &server->read_tv);
    }
}

static void fill_remote(struct conn *conn, const struct sockaddr *addr, socklen_t addr_len)
{
    char host[INET6_ADDRSTRLEN];
    char port[8];
    if (getnameinfo(addr, addr_len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(conn->remote, sizeof(conn->remote), "(unknown)");
        return;
    }
    const char *shown = host;
    /* A dual-stack "::" listener sees IPv4 clients as ::ffff:a.b.c.d; show them as IPv4. */
    if (strncmp(host, "::ffff:", 7) == 0 && strchr(host + 7, ':') == NULL) {
        shown = host + 7;
    }
    if (strchr(shown, ':') != NULL) {
        snprintf(conn->remote, sizeof(conn->remote), "[%s]:%s", shown, port);
    } else {
        snprintf(conn->remote, sizeof(conn->remote), "%s:%s", shown, port);
    }
}

static void fill_remote_from_fd(struct conn *conn, evutil_socket_t fd)
{
    struct sockaddr_storage addr;
    socklen_t addr_len = sizeof(addr);
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&addr, &addr_len) == 0) {
        fill_remote(conn, (struct sockaddr *)&addr, addr_len);
    }
}

/* An event base whose epoll backend coalesces interest changes made within one loop pass: a
 * response that fits the socket buffer enables and disables EV_WRITE in the same pass, which
 * otherwise costs two epoll_ctl calls per request. (The changelist's caveat, a descriptor
 * closed and reused between the change and the pass, does not arise: libevent owns every
 * descriptor of the base and applies pending changes before closing one.) */
static struct event_base *new_event_base(void)
{
    struct event_config *config = event_config_new();
    if (config == NULL) {
        return NULL;
    }
    event_config_set_flag(config, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(config);
    event_config_free(config);
    return base;
}

/* A response leaves in more than one write (headers, body, TLS records): without TCP_NODELAY
 * the second waits for the client's delayed ACK, up to 40 ms per keep-alive request. */
static void set_nodelay(int fd)
{
    int on = 1;
    if (fd >= 0) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    }
}

/* Records why a handshake failed and that one succeeded (for the debug log only). */
static void on_tls_info(const SSL *ssl, int where, int ret)
{
    struct conn *conn = SSL_get_ex_data(ssl, conn_ex_index);
    if (conn == NULL) {
        return;
    }
    if (conn->remote[0] == '\0') {
        /* The first callback of a connection: its socket is known now. */
        fill_remote_from_fd(conn, SSL_get_fd(ssl));
        set_nodelay(SSL_get_fd(ssl));
    }
    if (where & SSL_CB_HANDSHAKE_DONE) {
        if (!conn->handshake_done) {
            atomic_fetch_add(&conn->worker->server->handshakes, 1);
        }
        conn->handshake_done = true;
    } else if ((where & SSL_CB_EXIT) && ret <= 0 && conn->tls_error[0] == '\0') {
        /* -1 is also "wants more bytes"; only a failure leaves an error queued (libevent
         * clears the queue before each SSL_do_handshake). */
        unsigned long code = ERR_peek_last_error();
        if (code != 0) {
            ERR_error_string_n(code, conn->tls_error, sizeof(conn->tls_error));
            const char *reason = ERR_reason_error_string(code);
            snprintf(conn->tls_reason, sizeof(conn->tls_reason), "%s",
                     reason != NULL ? reason : "unknown");
        }
    } else if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE) && conn->tls_error[0] == '\0') {
        snprintf(conn->tls_error, sizeof(conn->tls_error), "sent alert: %s",
                 SSL_alert_desc_string_long(ret));
        snprintf(conn->tls_reason, sizeof(conn->tls_reason), "alert %s",
                 SSL_alert_desc_string_long(ret));
    }
}

/* Counts a failed handshake under its reason; the first KP_HTTP_FAILURE_REASONS - 1 distinct
 * reasons get their own counter, later ones share "other". */
static void count_handshake_failure(struct kp_http_server *server, const char *reason)
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

static void conn_free(struct conn *conn)
{
    struct kp_http_server *server = conn->worker->server;
    if (conn->stream != NULL) {
        /* evhttp freed the connection without its close callback (it skips it for a
         * connection it never considered connected); the request is gone with it. */
        conn->stream->end_sent = true;
        http_stream_connection_gone(conn->stream);
    }
    if (!conn->handshake_done && !conn->rejected) {
        /* No error and no alert: the client went away (or timed out) mid-handshake. */
        count_handshake_failure(server, conn->tls_reason[0] != '\0' ? conn->tls_reason
                                                                    : "closed before completion");
    }
    if (!conn->handshake_done && !conn->rejected && kp_log_get_level() >= KP_LOG_DEBUG) {
        kp_log_debug("http: TLS handshake from %s did not complete%s%s",
                     conn->remote[0] != '\0' ? conn->remote : "(unknown)",
                     conn->tls_error[0] != '\0' ? ": " : "", conn->tls_error);
    }
    if (conn->deadline != NULL) {
        event_free(conn->deadline);
    }
    if (conn->peer_chain != NULL) {
        sk_X509_pop_free(conn->peer_chain, X509_free);
    }
    free(conn->app_data);
    atomic_fetch_sub(&server->connections, 1);
    free(conn);
}

/* Never returns NULL: evhttp would fall back to a plain-text socket bufferevent, i.e. serve
 * HTTP without TLS on the TLS port. On allocation failure we return an unconnected
 * bufferevent_pair end instead: evhttp sets its fd (which the pair ignores) and closes it at
 * the read timeout; nothing is ever read from or written to that client. */
static struct bufferevent *fallback_bev(struct event_base *base)
{
    struct bufferevent *pair[2] = {NULL, NULL};
    if (bufferevent_pair_new(base, 0, pair) != 0) {
        kp_log_error("http: out of memory accepting a connection");
        return NULL; /* nothing left to allocate with: evhttp's own allocation fails too */
    }
    bufferevent_free(pair[1]);
    return pair[0];
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    struct worker *worker = arg;
    struct kp_http_server *server = worker->server;
    struct conn *conn = NULL;
    SSL *ssl = NULL;

    ERR_clear_error();
    int count = atomic_fetch_add(&server->connections, 1) + 1;
    conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        atomic_fetch_sub(&server->connections, 1);
        return fallback_bev(base);
    }
    conn->worker = worker;
    conn->state = CONN_ACCEPTED;
    conn->rejected = count > server->limits.max_connections;
    atomic_fetch_add(conn->rejected ? &server->rejected : &server->accepted, 1);
    conn->deadline = evtimer_new(base, on_deadline, conn);
    pthread_mutex_lock(&server->ctx_mutex);
    ssl = SSL_new(server->ssl_ctx); /* holds its own reference on the context */
    pthread_mutex_unlock(&server->ctx_mutex);
    if (conn->deadline == NULL || ssl == NULL || SSL_set_ex_data(ssl, conn_ex_index, conn) != 1) {
        kp_log_error("http: cannot set up a TLS connection (out of memory)");
        ERR_clear_error();
        if (ssl != NULL && SSL_get_ex_data(ssl, conn_ex_index) == conn) {
            SSL_free(ssl); /* frees conn through the ex_data callback */
        } else {
            SSL_free(ssl);
            conn_free(conn);
        }
        return fallback_bev(base);
    }
    SSL_set_info_callback(ssl, on_tls_info);
    /* coalesce_output may move data that a write interrupted by a full socket buffer will be
     * retried with (never shorter): OpenSSL must accept the retry from its new address. */
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        /* Whether libevent freed the SSL on this path differs between 2.1 releases: leak it
         * (and conn) rather than risk a double free. Allocation failure only. */
        kp_log_error("http: cannot create a TLS bufferevent (out of memory)");
        return fallback_bev(base);
    }
    conn->bev = bev;
    /* Clients rarely send close_notify before closing; that is an EOF, not an error. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    evbuffer_add_cb(bufferevent_get_input(bev), on_input, conn);
    evbuffer_add_cb(bufferevent_get_output(bev), coalesce_output, NULL);
    if (conn->rejected) {
        /* Runs in this same pass of the loop, after evhttp has given the bufferevent its
         * socket and before any byte is read from it. */
        event_active(conn->deadline, EV_TIMEOUT, 0);
    } else {
        evtimer_add(conn->deadline, &server->read_tv);
    }
    return bev;
}

/* Leaf first: on the server side SSL_get_peer_cert_chain excludes the leaf. */
static void conn_load_peer(struct conn *conn, SSL *ssl)
{
    X509 *leaf = SSL_get1_peer_certificate(ssl);
    if (leaf == NULL) {
        return;
    }
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (chain == NULL || sk_X509_push(chain, leaf) <= 0) {
        X509_free(leaf);
        sk_X509_free(chain);
        kp_log_error("http: out of memory keeping a client certificate");
        return;
    }
    STACK_OF(X509) *rest = SSL_get_peer_cert_chain(ssl);
    for (int i = 0; rest != NULL && i < sk_X509_num(rest); i++) {
        X509 *cert = sk_X509_value(rest, i);
        if (X509_cmp(cert, leaf) == 0) {
            continue; /* defensive: some versions include the leaf */
        }
        if (!X509_up_ref(cert)) {
            continue;
        }
        if (sk_X509_push(chain, cert) <= 0) {
            X509_free(cert);
        }
    }
    conn->peer_chain = chain;
}

/* evhttp's close callback: the client went away, a timeout fired, or evhttp_free. */
static void on_connection_close(struct evhttp_connection *evcon, void *arg)
{
    struct conn *conn = arg;
    unsigned long code;
    while ((code = bufferevent_get_openssl_error(conn->bev)) != 0) {
        char text[160];
        ERR_error_string_n(code, text, sizeof(text));
        kp_log_debug("http: TLS error on the connection from %s: %s", conn->remote, text);
    }
    (void)evcon;
    conn->evcon = NULL;
    if (conn->state != CONN_DROPPING) {
        conn->state = CONN_DROPPING;
    }
    evtimer_del(conn->deadline);
    if (conn->stream != NULL) {
        http_stream_connection_gone(conn->stream);
    }
}

/* ------------------------------------------------------------------ requests */

static void on_request_complete(struct evhttp_request *req, void *arg)
{
    (void)req;
    struct conn *conn = arg;
    if (conn->stream != NULL) {
        bufferevent_setwatermark(conn->bev, EV_READ, 0, 0);
        http_stream_close(conn->stream); /* ended by the handler: no on_close */
        http_stream_detach(conn->stream);
    }
    if (conn->state != CONN_DROPPING) {
        const struct kp_http_server *server = conn->worker->server;
        if (evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0) {
            /* The next request is already (partly) here: pipelined. */
            conn->state = CONN_READING;
            http_conn_set_timeouts(conn, &server->read_tv);
            evtimer_add(conn->deadline, &server->read_tv);
        } else {
            conn->state = CONN_IDLE;
            http_conn_set_timeouts(conn, &server->idle_tv);
        }
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct worker *worker = arg;
    ERR_clear_error();
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    struct conn *conn = ssl != NULL ? SSL_get_ex_data(ssl, conn_ex_index) : NULL;
    if (conn == NULL) {
        /* Not one of our TLS connections: never happens (see fallback_bev); refuse. */
        http_send_plain(req, 500, "internal error\n", true);
        return;
    }
    if (conn->evcon == NULL) {
        conn->evcon = evcon;
        evhttp_connection_set_closecb(evcon, on_connection_close, conn);
        char *address = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &address, &port);
        fill_remote_from_fd(conn, bufferevent_getfd(bev));
        set_nodelay(bufferevent_getfd(bev)); /* again, in case no TLS callback came first */
        if (conn->remote[0] == '\0' && address != NULL) {
            snprintf(conn->remote, sizeof(conn->remote), "%s:%u", address, (unsigned)port);
        }
        conn_load_peer(conn, ssl);
    }
    evtimer_del(conn->deadline);
    if (conn->state == CONN_DROPPING) {
        http_send_plain(req, 408, "request timeout\n", true);
        return;
    }
    if (worker->stopping) {
        http_send_plain(req, 503, "the server is shutting down\n", true);
        return;
    }
    conn->state = CONN_HANDLING;
    http_conn_set_timeouts(conn, &worker->server->read_tv);
    evhttp_request_set_on_complete_cb(req, on_request_complete, conn);

    struct kp_http_request *request = http_request_new(req, conn);
    if (request == NULL) {
        return;
    }
    worker->server->handler(worker->server->handler_context, request);
    if (!request->responded && !request->streaming) {
        kp_log_error("http: the handler returned without responding to %s %s", request->method,
                     request->path);
        kp_http_respond(request, 500, "text/plain; charset=utf-8", "internal error: no response\n",
                        28);
    }
    if (!request->streaming) {
        http_request_free(request);
    }
}

/* ------------------------------------------------------------------ workers */

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *worker = arg;
    if (worker->bound != NULL) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(worker->bound));
    }
}

/* accept(2) failed with something libevent does not retry (EMFILE, ENFILE, ENOBUFS...). The
 * pending connection stays in the backlog, so the listener would spin: pause it. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct worker *worker = arg;
    int error = EVUTIL_SOCKET_ERROR();
    kp_log_warn("http: accept failed: %s; pausing accepts for %d ms", strerror(error),
                ACCEPT_RETRY_MS);
    evconnlistener_disable(listener);
    struct timeval retry = {0, ACCEPT_RETRY_MS * 1000};
    evtimer_add(worker->accept_retry, &retry);
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
 * chunks reach the clients before evhttp_free closes every connection. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *worker = arg;
    ERR_clear_error();
    worker->stopping = true;
    if (worker->bound != NULL) {
        evhttp_del_accept_socket(worker->http, worker->bound);
        worker->bound = NULL;
    }
    evtimer_del(worker->accept_retry);
    http_worker_process_queue(worker);
    struct kp_http_stream *stream = worker->open_streams;
    while (stream != NULL) {
        struct kp_http_stream *next = stream->open_next;
        http_stream_close(stream);
        if (!stream->end_sent && stream->conn != NULL && stream->conn->state != CONN_DROPPING) {
            stream->flushing = true;
            worker->flushing++;
            http_stream_send_end(stream);
        }
        stream = next;
    }
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
    if (worker->grace != NULL) {
        evtimer_del(worker->grace);
    }
    if (worker->accept_retry != NULL) {
        evtimer_del(worker->accept_retry);
    }
    if (worker->http != NULL) {
        evhttp_free(worker->http); /* close callbacks run for live connections */
        worker->http = NULL;
        worker->bound = NULL;
    }
    /* libevent holds a reference on a bufferevent while one of its deferred callbacks is
     * pending, and event_base_free cancels such callbacks without running them, so the
     * reference is never dropped and the connection (bufferevent, SSL, conn) leaks. The loop
     * was broken out of with callbacks still queued: run them, and the finalizers they lead
     * to, before freeing the base. */
    for (int round = 0; worker->base != NULL && round < 100; round++) {
        if (event_base_get_num_events(worker->base, EVENT_BASE_COUNT_ACTIVE) == 0) {
            break;
        }
        event_base_loop(worker->base, EVLOOP_NONBLOCK);
    }
    http_worker_discard_queue(worker);
    if (worker->wake != NULL) {
        event_free(worker->wake);
    }
    if (worker->stop != NULL) {
        event_free(worker->stop);
    }
    if (worker->grace != NULL) {
        event_free(worker->grace);
    }
    if (worker->accept_retry != NULL) {
        event_free(worker->accept_retry);
    }
    worker->wake = worker->stop = worker->grace = worker->accept_retry = NULL;
    if (worker->base != NULL) {
        event_base_free(worker->base); /* runs libevent's finalizers: the last conn_free */
        worker->base = NULL;
    }
    if (worker->scratch != NULL) {
        evbuffer_free(worker->scratch);
        worker->scratch = NULL;
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

static enum kp_result worker_init(struct worker *worker, evutil_socket_t listen_fd,
                                  struct kp_error *err)
{
    const struct kp_http_limits *limits = &worker->server->limits;
    worker->listen_fd = listen_fd;
    if (pthread_mutex_init(&worker->queue_mutex, NULL) != 0) {
        return kp_error_set(err, KP_ERR_IO, "cannot create a mutex");
    }
    worker->queue_mutex_ready = true;
    worker->base = new_event_base();
    worker->scratch = evbuffer_new();
    if (worker->base == NULL || worker->scratch == NULL) {
        return kp_error_set(err, KP_ERR_IO, "cannot create an event loop");
    }
    worker->http = evhttp_new(worker->base);
    worker->wake = event_new(worker->base, -1, EV_PERSIST, http_on_wake, worker);
    worker->stop = event_new(worker->base, -1, 0, on_stop, worker);
    worker->grace = evtimer_new(worker->base, on_grace, worker);
    worker->accept_retry = evtimer_new(worker->base, on_accept_retry, worker);
    if (worker->http == NULL || worker->wake == NULL || worker->stop == NULL ||
        worker->grace == NULL || worker->accept_retry == NULL) {
        return kp_error_set(err, KP_ERR_IO, "cannot create the HTTP server (out of memory)");
    }
    evhttp_set_max_headers_size(worker->http, (ev_ssize_t)limits->max_header_bytes);
    evhttp_set_max_body_size(worker->http, (ev_ssize_t)limits->max_body_bytes);
    evhttp_set_timeout(worker->http, limits->read_timeout_s);
    evhttp_set_allowed_methods(worker->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(worker->http, NULL);
    /* Read (and discard) an oversized body up to its Content-Length before answering 413, so
     * a client still sending sees the answer rather than a reset (closing a socket with unread
     * data sends RST, which can destroy the 413 in flight). Bounded by the read deadline.
     * The price: "Expect: 100-continue" with an oversized Content-Length is not answered at
     * once - libevent waits for the body, which clients send after their expect timeout (curl
     * 1 s, Go's ExpectContinueTimeout), then answers 413; see docs/net.md. */
    evhttp_set_flags(worker->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_bevcb(worker->http, make_bev, worker);
    evhttp_set_gencb(worker->http, on_request, worker);

    struct evconnlistener *listener = evconnlistener_new(
        worker->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, listen_fd);
    if (listener == NULL) {
        return kp_error_set(err, KP_ERR_IO, "cannot create a listener");
    }
    worker->listen_fd = -1; /* the listener owns it now */
    worker->bound = evhttp_bind_listener(worker->http, listener);
    if (worker->bound == NULL) {
        evconnlistener_free(listener);
        return kp_error_set(err, KP_ERR_IO, "cannot bind the listener");
    }
    evconnlistener_set_error_cb(listener, on_accept_error);
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
    server->read_tv = (struct timeval){server->limits.read_timeout_s, 0};
    server->idle_tv = (struct timeval){server->limits.idle_timeout_s, 0};
    /* A client that reads nothing of its response (or stream) for this long is gone. */
    server->write_tv = (struct timeval){server->limits.read_timeout_s, 0};

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
