/*
 * net/conn.c - one TLS connection of the HTTPS server: its socket and SSL, the handshake,
 * reading, writing, deadlines and closing, and the order of the requests on it.
 *
 * Why kpki runs its own connection loop (and not libevent's evhttp over bufferevent_openssl,
 * which it used before): a keep-alive request cost evhttp two read(2)s (the record header, then
 * the record), an epoll_ctl (it turns reading off while a request is handled), a wake-up for
 * EPOLLOUT before the response was written, and a dozen allocations and printf/scanf calls.
 * Here a request that arrives in one TLS record and whose response fits in one costs one
 * epoll_wait, one read(2) and one write(2) (docs/net.md, docs/benchmarks.md):
 *
 *  - The socket is registered once, for reading and writing, edge-triggered (EV_ET), and never
 *    changed: no epoll_ctl per request. Edge-triggered means a connection must read until the
 *    socket is empty before it waits again. OpenSSL reads ahead (SSL_set_read_ahead: one
 *    read(2) of up to a whole buffer, not a 5-byte header and then the rest), and a callback on
 *    the socket BIO notes when a read(2) came back short or with EAGAIN: the socket is then
 *    known to be empty (rx_drained), and no read(2) is made just to hear EAGAIN, by kpki or by
 *    OpenSSL (the callback answers OpenSSL's reads itself, watch_reads). Any byte that arrives
 *    later raises a new edge.
 *  - A response is written at once, in the same pass of the loop: plaintext up to one record
 *    (16 KiB) goes to one SSL_write, which is one record and one write(2). Only when the socket
 *    takes less does the connection wait for the EPOLLOUT edge (write_blocked).
 *  - Reading stops while a response is waiting for the socket: a client cannot make the server
 *    buffer without bound by pipelining requests it does not read the answers to. A client
 *    that sends more than STREAM_INPUT_HIGH during a stream is dropped.
 *
 * Deadlines (one timer per connection, libevent common timeouts, so arming one is O(1)):
 *   HANDSHAKE       the read timeout, from accept: the handshake and the first request;
 *   READING         the read timeout, from the first byte of the request (or from accept);
 *   IDLE            the idle timeout, from the end of the last response;
 *   HANDLING/STREAMING  the write timeout while output is blocked (a client not reading);
 *   LINGERING       a short time to read what the client still sends before the close.
 *
 * Closing. A connection is freed only from its timer callback (state CLOSING, the timer made
 * active): never from inside a handler, a parser callback or a stream flush that still holds
 * it. After an answer that ends the connection (Connection: close, an error, HTTP/1.0) the
 * server sends close_notify, shuts its side down and reads away what the client still sends
 * (LINGERING) before closing: closing a socket with unread data sends a reset, which can
 * destroy the answer before the client has read it (a 413 to a client still sending its body).
 */
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "net/http.h"
#include "net/http_internal.h"

/* What a lingering close reads away per pass of the loop, at most, before yielding. */
#define LINGER_READ_PER_PASS ((size_t)256 * 1024)
/* Input is read in pieces of this much room (one TLS record's plaintext). */
#define READ_ROOM ((size_t)16384)

static int conn_ex_index = -1;

bool http_conn_init_global(void)
{
    conn_ex_index = SSL_get_ex_new_index(0, "kpki http connection", NULL, NULL, NULL);
    return conn_ex_index >= 0;
}

/* The connection state hanging off one of our SSLs; NULL for any other SSL. */
static struct conn *http_conn_of(const SSL *ssl)
{
    return ssl != NULL ? SSL_get_ex_data(ssl, conn_ex_index) : NULL;
}

/* ------------------------------------------------------------------ buffers */

bool http_buf_reserve(struct http_buf *buf, size_t more)
{
    if (buf->cap - buf->off - buf->len >= more) {
        return true;
    }
    if (buf->off > 0 && buf->cap - buf->len >= more) {
        memmove(buf->data, buf->data + buf->off, buf->len);
        buf->off = 0;
        return true;
    }
    size_t want = buf->len + more;
    size_t cap = buf->cap > 0 ? buf->cap : 1024;
    while (cap < want) {
        cap *= 2;
    }
    char *data = malloc(cap);
    if (data == NULL) {
        return false;
    }
    if (buf->len > 0) {
        memcpy(data, buf->data + buf->off, buf->len);
    }
    free(buf->data);
    buf->data = data;
    buf->off = 0;
    buf->cap = cap;
    return true;
}

bool http_buf_append(struct http_buf *buf, const void *bytes, size_t len)
{
    if (len == 0) {
        return true;
    }
    if (!http_buf_reserve(buf, len)) {
        return false;
    }
    memcpy(buf->data + buf->off + buf->len, bytes, len);
    buf->len += len;
    return true;
}

void http_buf_consume(struct http_buf *buf, size_t len)
{
    if (len >= buf->len) {
        buf->off = 0;
        buf->len = 0;
        return;
    }
    buf->off += len;
    buf->len -= len;
}

void http_buf_free(struct http_buf *buf)
{
    free(buf->data);
    *buf = (struct http_buf){0};
}

/* ------------------------------------------------------------------ the worker's spare buffers */

/* Spare buffers hold at least one read's room and at most this (bigger ones are freed). */
#define SPARE_MAX_CAP ((size_t)64 * 1024)

bool http_conn_reserve(struct conn *conn, struct http_buf *buf, size_t more)
{
    struct worker *worker = conn->worker;
    if (buf->cap == 0 && worker->spare_count > 0) {
        *buf = worker->spare[--worker->spare_count];
    }
    return http_buf_reserve(buf, more);
}

/* An empty buffer goes back to the worker (or is freed). */
static void give_back(struct conn *conn, struct http_buf *buf)
{
    struct worker *worker = conn->worker;
    int max = (int)(sizeof(worker->spare) / sizeof(worker->spare[0]));
    if (buf->len == 0 && buf->cap >= READ_ROOM && buf->cap <= SPARE_MAX_CAP &&
        worker->spare_count < max) {
        worker->spare[worker->spare_count++] =
            (struct http_buf){.data = buf->data, .cap = buf->cap};
        *buf = (struct http_buf){0};
        return;
    }
    http_buf_free(buf);
}

void http_worker_free_spares(struct worker *worker)
{
    while (worker->spare_count > 0) {
        http_buf_free(&worker->spare[--worker->spare_count]);
    }
}

/* ------------------------------------------------------------------ TLS callbacks */

/* The socket BIO's reads. After one: a read(2) that returned less than asked, or nothing, left
 * the socket empty (rx_drained). Before one: while the socket is known to be empty, OpenSSL is
 * told "try again" (EAGAIN) without the read(2), which could only hear EAGAIN; any byte that
 * arrives raises a new edge, and on_io clears rx_drained. That spares the read(2) after the
 * server's handshake flight (made before the client can have answered) and the one for the
 * rest of a record split across segments. A FIN raises no edge after the bytes it came with,
 * so once it has been seen (rx_hup) every read is made, down to the EOF. */
static long watch_reads(BIO *bio, int oper, const char *argp, size_t len, int argi, long argl,
                        int ret, size_t *processed)
{
    (void)argp;
    (void)argi;
    (void)argl;
    struct conn *conn = (struct conn *)BIO_get_callback_arg(bio);
    if (conn == NULL) {
        return ret;
    }
    if (oper == BIO_CB_READ && conn->rx_drained && !conn->rx_hup) {
        BIO_clear_retry_flags(bio);
        BIO_set_retry_read(bio);
        return -1; /* BIO_read returns this without calling the socket BIO */
    }
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) &&
        (ret <= 0 || processed == NULL || *processed < len)) {
        conn->rx_drained = true;
    }
    return ret;
}

/* Records why a handshake failed, and counts the ones that complete. */
static void on_tls_info(const SSL *ssl, int where, int ret)
{
    struct conn *conn = http_conn_of(ssl);
    if (conn == NULL) {
        return;
    }
    if (where & SSL_CB_HANDSHAKE_DONE) {
        if (!conn->handshake_done) {
            atomic_fetch_add(&conn->worker->server->handshakes, 1);
        }
        conn->handshake_done = true;
    } else if ((where & SSL_CB_EXIT) && ret <= 0 && conn->tls_error[0] == '\0') {
        /* -1 is also "wants more bytes"; only a failure leaves an error queued (the queue is
         * cleared before each SSL_do_handshake). */
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

/* Logs (at debug) and clears what OpenSSL queued about a failed read or write. */
static void log_tls_errors(const struct conn *conn)
{
    unsigned long code;
    while ((code = ERR_get_error()) != 0) {
        char text[160];
        ERR_error_string_n(code, text, sizeof(text));
        kp_log_debug("http: TLS error on the connection from %s: %s", conn->remote, text);
    }
}

/* A connection that failed in TLS after its handshake does not keep its session. */
static void mark_tls_failed(struct conn *conn, const char *what)
{
    if (conn->tls_error[0] == '\0') {
        snprintf(conn->tls_error, sizeof(conn->tls_error), "%s", what);
    }
}

/* ------------------------------------------------------------------ set-up and teardown */

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
    snprintf(conn->remote, sizeof(conn->remote), strchr(shown, ':') != NULL ? "[%s]:%s" : "%s:%s",
             shown, port);
}

static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

void http_conn_accept(struct worker *worker, int fd, const struct sockaddr *peer,
                      socklen_t peer_len)
{
    struct kp_http_server *server = worker->server;
    int count = atomic_fetch_add(&server->connections, 1) + 1;
    if (count > server->limits.max_connections) {
        atomic_fetch_sub(&server->connections, 1);
        atomic_fetch_add(&server->rejected, 1);
        close(fd);
        return;
    }
    atomic_fetch_add(&server->accepted, 1);
    struct conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        goto fail;
    }
    conn->worker = worker;
    conn->fd = fd;
    conn->state = CONN_HANDSHAKE;
    fill_remote(conn, peer, peer_len); /* TCP_NODELAY came from the listener (http.c) */

    pthread_mutex_lock(&server->ctx_mutex);
    conn->ssl = SSL_new(server->ssl_ctx); /* holds its own reference on the context */
    pthread_mutex_unlock(&server->ctx_mutex);
    if (conn->ssl == NULL || SSL_set_ex_data(conn->ssl, conn_ex_index, conn) != 1 ||
        SSL_set_fd(conn->ssl, fd) != 1) {
        goto fail;
    }
    BIO *bio = SSL_get_rbio(conn->ssl);
    BIO_set_callback_ex(bio, watch_reads);
    BIO_set_callback_arg(bio, (char *)conn);
    SSL_set_accept_state(conn->ssl);
    SSL_set_info_callback(conn->ssl, on_tls_info);
    SSL_set_read_ahead(conn->ssl, 1);
    /* Most clients close without close_notify; OpenSSL 3 would call that an error ("unexpected
     * eof while reading") and drop the session. It is an ordinary end: SSL_ERROR_ZERO_RETURN. */
    SSL_set_options(conn->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* out may be reallocated (a stream appending) between a blocked SSL_write and its retry,
     * and a write of up to one record is complete when one record has gone. */
    SSL_set_mode(conn->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);

    /* EV_CLOSED (EPOLLRDHUP): a FIN that arrives with the last bytes raises no later edge, so
     * the connection must learn of it to read on to the EOF (rx_hup). */
    conn->io = event_new(worker->base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET,
                         on_io, conn);
    conn->timer = evtimer_new(worker->base, on_timer, conn);
    if (conn->io == NULL || conn->timer == NULL || event_add(conn->io, NULL) != 0) {
        goto fail;
    }
    evtimer_add(conn->timer, worker->read_tv);
    conn->next = worker->conns;
    if (worker->conns != NULL) {
        worker->conns->prev = conn;
    }
    worker->conns = conn;
    return;

fail:
    kp_log_error("http: cannot set up a TLS connection (out of memory)");
    ERR_clear_error();
    if (conn != NULL) {
        if (conn->io != NULL) {
            event_free(conn->io);
        }
        if (conn->timer != NULL) {
            event_free(conn->timer);
        }
        SSL_free(conn->ssl);
        free(conn);
    }
    close(fd);
    atomic_fetch_sub(&server->connections, 1);
}

void http_conn_free(struct conn *conn)
{
    struct worker *worker = conn->worker;
    struct kp_http_server *server = worker->server;
    if (conn->stream != NULL) {
        http_stream_connection_gone(conn->stream); /* on_close; frees the request */
    }
    http_request_free(conn->parsing);
    if (!conn->handshake_done) {
        /* No error and no alert: the client went away (or timed out) mid-handshake. */
        http_count_handshake_failure(
            server, conn->tls_reason[0] != '\0' ? conn->tls_reason : "closed before completion");
        if (kp_log_get_level() >= KP_LOG_DEBUG) {
            kp_log_debug("http: TLS handshake from %s did not complete%s%s", conn->remote,
                         conn->tls_error[0] != '\0' ? ": " : "", conn->tls_error);
        }
    } else if (conn->tls_error[0] == '\0') {
        /* However it ended (closed, reset, timed out, refused by the authenticator), a
         * connection that saw no TLS error keeps its session resumable (when resumption is on
         * at all, kp_tls_server_ctx_set_resumption): without this, OpenSSL takes a free without
         * a close_notify of ours for an unclean end and drops the session. A resumed
         * connection has no memo yet, so its chain is verified against the current trust on
         * its first request. */
        SSL_set_shutdown(conn->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        worker->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    event_free(conn->io);
    event_free(conn->timer);
    SSL_free(conn->ssl);
    close(conn->fd);
    give_back(conn, &conn->in);
    give_back(conn, &conn->out);
    if (conn->peer_chain != NULL) {
        sk_X509_pop_free(conn->peer_chain, X509_free);
    }
    free(conn->app_data);
    free(conn);
    atomic_fetch_sub(&server->connections, 1);
}

void http_conn_drop(struct conn *conn, const char *why)
{
    if (conn->state == CONN_CLOSING) {
        return;
    }
    kp_log_debug("http: closing the connection from %s: %s", conn->remote, why);
    conn->state = CONN_CLOSING;
    event_del(conn->io);
    event_active(conn->timer, EV_TIMEOUT, 0); /* freed from the loop, see on_timer */
}

/* ------------------------------------------------------------------ the peer's chain */

/* Leaf first: on the server side SSL_get_peer_cert_chain excludes the leaf. */
static void load_peer_chain(struct conn *conn)
{
    X509 *leaf = SSL_get1_peer_certificate(conn->ssl);
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
    STACK_OF(X509) *rest = SSL_get_peer_cert_chain(conn->ssl);
    for (int i = 0; rest != NULL && i < sk_X509_num(rest); i++) {
        X509 *cert = sk_X509_value(rest, i);
        if (X509_cmp(cert, leaf) == 0 || !X509_up_ref(cert)) {
            continue; /* defensive: some versions include the leaf */
        }
        if (sk_X509_push(chain, cert) <= 0) {
            X509_free(cert);
        }
    }
    conn->peer_chain = chain;
}

/* ------------------------------------------------------------------ I/O steps */

static bool do_handshake(struct conn *conn)
{
    ERR_clear_error();
    int ret = SSL_do_handshake(conn->ssl);
    if (ret == 1) {
        conn->handshake_done = true;
        load_peer_chain(conn);
        conn->state = CONN_READING; /* the deadline from accept still runs */
        return true;
    }
    switch (SSL_get_error(conn->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return false;
    case SSL_ERROR_WANT_WRITE:
        conn->write_blocked = true;
        return false;
    default:
        ERR_clear_error();
        http_conn_drop(conn, "TLS handshake failed");
        return false;
    }
}

/* Arms the write deadline while output is blocked; progress re-arms it. */
static void arm_write_deadline(struct conn *conn, bool progress)
{
    if (progress || !evtimer_pending(conn->timer, NULL)) {
        evtimer_add(conn->timer, conn->worker->write_tv);
    }
}

/* Writes what out holds as far as the socket takes it; false if the connection failed. */
static bool flush_output(struct conn *conn)
{
    if (conn->state == CONN_CLOSING || conn->write_blocked || !conn->handshake_done) {
        return conn->state != CONN_CLOSING;
    }
    if (conn->close_after && conn->stream == NULL && !conn->corked && conn->out.len > 0) {
        /* The connection ends with this answer: its last records and the close_notify alert
         * leave together, with the FIN, when begin_close shuts the socket down, instead of as
         * three segments. Full segments still go at once. Not for a stream, whose chunks must
         * not wait. (A write deadline or an error drops the connection, and its close sends
         * what is queued.) */
        int on = 1;
        conn->corked = setsockopt(conn->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) == 0;
    }
    bool progress = false;
    while (conn->out.len > 0) {
        size_t n = conn->out.len < TLS_RECORD_MAX ? conn->out.len : TLS_RECORD_MAX;
        if (n < conn->write_attempt) {
            n = conn->write_attempt; /* a retry is never shorter than the blocked write */
        }
        size_t written = 0;
        ERR_clear_error();
        if (SSL_write_ex(conn->ssl, conn->out.data + conn->out.off, n, &written) == 1) {
            http_buf_consume(&conn->out, written);
            conn->write_attempt = 0;
            progress = true;
            continue;
        }
        int error = SSL_get_error(conn->ssl, 0);
        if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
            conn->write_attempt = n;
            conn->write_blocked = error == SSL_ERROR_WANT_WRITE;
            arm_write_deadline(conn, progress);
            return true;
        }
        log_tls_errors(conn);
        mark_tls_failed(conn, "TLS write failed");
        http_conn_drop(conn, error == SSL_ERROR_SYSCALL ? "the client went away while being "
                                                          "written to"
                                                        : "TLS write failed");
        return false;
    }
    if (progress && (conn->state == CONN_HANDLING || conn->state == CONN_STREAMING)) {
        evtimer_del(conn->timer); /* the write deadline */
    }
    if (conn->out.cap > READ_ROOM * 4) {
        http_buf_free(&conn->out); /* a big body's buffer is not kept for the next response */
    }
    return true;
}

/* Reads what the socket and OpenSSL hold into conn->in (up to READ_ROOM at a time). Returns
 * true if bytes came; false if none are there now (wait for the next edge), or on EOF
 * (rx_eof) or an error (the connection is dropped). */
static bool read_more(struct conn *conn)
{
    if (conn->rx_drained && !conn->rx_hup && SSL_has_pending(conn->ssl) == 0) {
        return false;
    }
    if (!http_conn_reserve(conn, &conn->in, READ_ROOM)) {
        http_conn_drop(conn, "out of memory reading a request");
        return false;
    }
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(conn->ssl, conn->in.data + conn->in.off + conn->in.len, READ_ROOM, &got) == 1) {
        conn->in.len += got;
        return true;
    }
    switch (SSL_get_error(conn->ssl, 0)) {
    case SSL_ERROR_WANT_READ:
        /* Only part of a record was there (SSL_has_pending counts such a part too; watch_reads
         * answers the read for the rest without a read(2) until the next edge). */
        conn->rx_drained = true;
        if (conn->in.len == 0) {
            give_back(conn, &conn->in);
        }
        return false;
    case SSL_ERROR_WANT_WRITE:
        conn->write_blocked = true;
        return false;
    case SSL_ERROR_ZERO_RETURN: /* close_notify */
        conn->rx_eof = true;
        return false;
    case SSL_ERROR_SYSCALL:
        /* The connection was reset. */
        ERR_clear_error();
        conn->rx_eof = true;
        return false;
    default:
        log_tls_errors(conn);
        mark_tls_failed(conn, "TLS read failed");
        http_conn_drop(conn, "TLS read failed");
        return false;
    }
}

/* After an answer that ends the connection: close_notify, then the close. When the client may
 * still be sending (an error answered before its request was read whole, or input not yet
 * parsed), our side is shut down and what it sends is read away until it closes or the linger
 * time runs out (nginx's "lingering_close auto"): closing with unread data would send a reset.
 * A request read whole, with nothing after it, is closed at once. */
static void begin_close(struct conn *conn)
{
    (void)SSL_shutdown(conn->ssl); /* sends close_notify; the out buffer is empty */
    ERR_clear_error();
    bool unread = conn->refused_early || conn->in.len > 0 || SSL_has_pending(conn->ssl) != 0;
    if (conn->rx_eof || !unread) {
        /* A corked answer (flush_output) leaves now, with the alert and the FIN. Not at the
         * close: bytes the client sends meanwhile (a pipelined request, a stray CRLF) would
         * make that close a reset, which throws away what is still queued. */
        if (conn->corked)
            shutdown(conn->fd, SHUT_WR);
        http_conn_drop(conn, "closed after the answer");
        return;
    }
    shutdown(conn->fd, SHUT_WR);
    conn->state = CONN_LINGERING;
    evtimer_add(conn->timer, conn->worker->linger_tv);
}

static void linger_read(struct conn *conn)
{
    char scratch[4096];
    size_t total = 0;
    while (total < LINGER_READ_PER_PASS) {
        ssize_t n = recv(conn->fd, scratch, sizeof(scratch), 0);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return;
        }
        http_conn_drop(conn, "closed after the answer");
        return;
    }
    event_active(conn->io, EV_READ, 0); /* more later: let other connections run */
}

/* The response in out has drained: the connection moves on to the next request, or closes. */
static void response_done(struct conn *conn)
{
    struct worker *worker = conn->worker;
    conn->response_pending = false;
    if (conn->stream != NULL) {
        struct kp_http_stream *stream = conn->stream;
        http_stream_close(stream); /* ended by the handler: no on_close */
        http_stream_detach(stream);
    }
    if (conn->close_after || conn->rx_eof || worker->stopping) {
        begin_close(conn);
        return;
    }
    if (conn->in.len > 0) {
        conn->state = CONN_READING; /* the next request is (partly) here: pipelined */
        evtimer_add(conn->timer, worker->read_tv);
    } else {
        conn->state = CONN_IDLE;
        evtimer_add(conn->timer, worker->idle_tv);
        give_back(conn, &conn->in); /* an idle connection holds no buffers */
        give_back(conn, &conn->out);
    }
}

void http_conn_response_queued(struct conn *conn)
{
    conn->response_pending = true;
}

static void dispatch(struct conn *conn, struct kp_http_request *request)
{
    struct worker *worker = conn->worker;
    struct kp_http_server *server = worker->server;
    evtimer_del(conn->timer);
    /* The request has its own copy of its head and body: the input it came from goes. */
    http_buf_consume(&conn->in, conn->parsed);
    conn->parsed = 0;
    conn->state = CONN_HANDLING;
    if (worker->stopping) {
        http_request_free(request);
        http_send_error(conn, 503, "the server is shutting down\n");
        return;
    }
    ERR_clear_error();
    server->handler(server->handler_context, request);
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

/* During a stream: input is read to notice the client going away, and kept for a request
 * pipelined behind the stream; a client that sends more than STREAM_INPUT_HIGH meanwhile is
 * not speaking HTTP/1.1 as a watch client does, and is dropped. */
static bool stream_read(struct conn *conn)
{
    if (read_more(conn)) {
        if (conn->in.len > STREAM_INPUT_HIGH) {
            http_conn_drop(conn, "the client sent more than 16 KiB during a stream");
            return false;
        }
        return true;
    }
    if (conn->rx_eof) {
        http_conn_drop(conn, "the client closed a stream");
    }
    return false;
}

/* One step of the connection's work; true when there may be more to do at once. */
static bool step(struct conn *conn)
{
    switch (conn->state) {
    case CONN_CLOSING:
        return false;
    case CONN_LINGERING:
        linger_read(conn);
        return false;
    case CONN_HANDSHAKE:
        return do_handshake(conn);
    default:
        break;
    }
    if (conn->out.len > 0) {
        if (!flush_output(conn) || conn->out.len > 0) {
            return false; /* dropped, or waiting for the socket */
        }
    }
    if (conn->response_pending) {
        response_done(conn);
        return true;
    }
    if (conn->state == CONN_STREAMING) {
        if (conn->stream != NULL) {
            http_stream_output_drained(conn->stream);
            if (conn->out.len > 0 || conn->response_pending) {
                return true;
            }
        }
        return stream_read(conn);
    }
    if (conn->state == CONN_HANDLING) {
        return false; /* not reached: a handled request has been answered */
    }
    struct kp_http_request *request = http_parse_next(conn);
    if (request != NULL) {
        dispatch(conn, request);
        return true;
    }
    if (conn->out.len > 0) {
        return true; /* a "100 Continue" or an error answer goes out first */
    }
    if (conn->state != CONN_IDLE && conn->state != CONN_READING) {
        return true; /* the parser answered an error */
    }
    if (conn->rx_eof) {
        http_conn_drop(conn, conn->in.len > 0 ? "the client closed in the middle of a request"
                                              : "the client closed the connection");
        return false;
    }
    if (read_more(conn)) {
        if (conn->state == CONN_IDLE) {
            conn->state = CONN_READING; /* the read deadline runs from the first byte */
            evtimer_add(conn->timer, conn->worker->read_tv);
        }
        return true;
    }
    return conn->rx_eof; /* at EOF, the next step closes */
}

void http_conn_run(struct conn *conn)
{
    if (conn->in_run) {
        return; /* the running step picks up what the caller added */
    }
    conn->in_run = true;
    while (step(conn)) {
    }
    conn->in_run = false;
}

/* ------------------------------------------------------------------ events */

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct conn *conn = arg;
    if (what & EV_CLOSED) {
        conn->rx_hup = true;
    }
    if (what & (EV_READ | EV_CLOSED)) {
        conn->rx_drained = false;
    }
    if (what & EV_WRITE) {
        conn->write_blocked = false;
    }
    http_conn_run(conn);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *conn = arg;
    switch (conn->state) {
    case CONN_CLOSING:
        http_conn_free(conn);
        return;
    case CONN_HANDSHAKE:
    case CONN_READING:
        http_conn_drop(conn, "no complete request within the read timeout");
        return;
    case CONN_IDLE:
        http_conn_drop(conn, "idle for the idle timeout");
        return;
    case CONN_HANDLING:
    case CONN_STREAMING:
        http_conn_drop(conn, "the client read nothing within the write timeout");
        return;
    case CONN_LINGERING:
        http_conn_drop(conn, "closed after the answer (linger time over)");
        return;
    }
}
