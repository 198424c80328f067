/*
 * net/stream.c - chunked responses (kp_http_stream_*), what watches are answered with: the
 * public calls, which producers make from any thread, and the worker side that moves queued
 * bytes into evhttp as the client reads them. Separate from http.c, the server and its
 * requests, because it is the one part with its own threading and lifetime rules.
 *
 * A stream has up to three references: the handler's (released by kp_http_stream_end), the
 * connection's (released when the response is complete or the connection is gone, on the
 * worker thread) and one while it sits in the worker's wake queue. kp_http_stream_send/_end
 * lock the stream, queue it and wake the worker; the worker moves the queued bytes into evhttp
 * (one chunk per wake-up) while the bufferevent's output is below STREAM_OUTPUT_HIGH, and
 * otherwise waits for evhttp's "chunk written" callback: a slow client backs data up into the
 * stream's queue, and past max_stream_buffer_bytes it is disconnected. `closed` (under the
 * stream mutex) is set before a worker may go away, so a producer thread only touches the
 * worker while the stream is open - and it holds the stream mutex while it does, which the
 * worker takes to close the stream.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* the request's HTTP version (no accessor in 2.1) */
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "net/http.h"
#include "net/http_internal.h"

/*
 * libevent 2.1: bufferevent_openssl runs its write callback deferred (do_write triggers it with
 * BEV_OPT_DEFER_CALLBACKS), and evhttp's write callback takes "called" to mean "the output has
 * drained" without looking. When a stream's output drains, a deferred callback is queued; if
 * our wake or stop event (activated from another thread, straight into the current pass of the
 * loop) adds a chunk and calls evhttp_send_reply_end before it runs, that stale callback runs
 * evhttp_send_done with the chunks still in the output: evhttp then disables writing to read
 * the next request and the end of the stream is never sent. So on a connection answering with
 * a stream, evhttp's write callback is wrapped and forwarded only when the output really is
 * empty; the suppressed call is always followed by a real one (writing stays enabled while
 * there is output). evhttp resets the callbacks itself whenever it sets them, so the wrapper is
 * put back after each call into evhttp that writes.
 */
static void guarded_write_cb(struct bufferevent *bev, void *arg)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    struct conn *conn = http_conn_of(ssl);
    if (conn == NULL || conn->evhttp_write_cb == NULL) {
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        return; /* stale: not drained */
    }
    conn->evhttp_write_cb(bev, arg);
}

static void guard_write_cb(struct conn *conn)
{
    if (!http_conn_bev_alive(conn)) {
        return;
    }
    bufferevent_data_cb read_cb = NULL;
    bufferevent_data_cb write_cb = NULL;
    bufferevent_event_cb event_cb = NULL;
    void *arg = NULL;
    bufferevent_getcb(conn->bev, &read_cb, &write_cb, &event_cb, &arg);
    if (write_cb != NULL && write_cb != guarded_write_cb) {
        conn->evhttp_write_cb = write_cb;
        bufferevent_setcb(conn->bev, read_cb, guarded_write_cb, event_cb, arg);
    }
}

/* ------------------------------------------------------------------ streams (worker side) */

static void stream_free(struct kp_http_stream *stream)
{
    evbuffer_free(stream->pending);
    pthread_cond_destroy(&stream->on_close_done);
    pthread_mutex_destroy(&stream->mutex);
    free(stream);
}

/* Drops one reference (taken under the mutex). */
void http_stream_release(struct kp_http_stream *stream)
{
    pthread_mutex_lock(&stream->mutex);
    bool last = --stream->refs == 0;
    pthread_mutex_unlock(&stream->mutex);
    if (last) {
        stream_free(stream);
    }
}

static void worker_check_stopped(struct worker *worker)
{
    if (worker->stopping && worker->flushing == 0) {
        event_base_loopbreak(worker->base);
    }
}

/* The connection side lets go of the stream: its response is complete, or the connection is
 * gone. Worker thread. */
void http_stream_detach(struct kp_http_stream *stream)
{
    struct worker *worker = stream->conn->worker;
    if (stream->open_prev != NULL) {
        stream->open_prev->open_next = stream->open_next;
    } else {
        worker->open_streams = stream->open_next;
    }
    if (stream->open_next != NULL) {
        stream->open_next->open_prev = stream->open_prev;
    }
    stream->open_prev = stream->open_next = NULL;
    stream->conn->stream = NULL;
    stream->conn = NULL;
    http_request_free(stream->request);
    stream->request = NULL;
    if (stream->flushing) {
        stream->flushing = false;
        worker->flushing--;
        worker_check_stopped(worker);
    }
    http_stream_release(stream);
}

/* Marks the stream closed and runs on_close unless the handler already ended it. */
void http_stream_close(struct kp_http_stream *stream)
{
    pthread_mutex_lock(&stream->mutex);
    stream->closed = true;
    bool call = stream->on_close != NULL && !stream->end_requested && !stream->on_close_called;
    stream->on_close_called = stream->on_close_called || call;
    stream->on_close_running = call;
    stream->on_close_thread = pthread_self();
    void (*on_close)(void *) = stream->on_close;
    void *context = stream->on_close_context;
    evbuffer_drain(stream->pending, evbuffer_get_length(stream->pending));
    stream->pending_bytes = 0;
    pthread_mutex_unlock(&stream->mutex);
    if (call) {
        ERR_clear_error();
        on_close(context);
        /* A kp_http_stream_end racing with us waits for this, so that its caller may free
         * on_close's context as soon as end returns. */
        pthread_mutex_lock(&stream->mutex);
        stream->on_close_running = false;
        pthread_cond_broadcast(&stream->on_close_done);
        pthread_mutex_unlock(&stream->mutex);
    }
}

/* The connection under a stream is gone (client disconnect, timeout, drop, evhttp_free). */
void http_stream_connection_gone(struct kp_http_stream *stream)
{
    http_stream_close(stream);
    if (!stream->end_sent) {
        /* evhttp detached the request from the dead connection (it does when the response
         * was not finished); evhttp_send_reply_end frees a detached request. */
        stream->end_sent = true;
        evhttp_send_reply_end(stream->request->req);
    }
    http_stream_detach(stream);
}

/* The terminating chunk; the response completes (on_request_complete) once it is written. */
void http_stream_send_end(struct kp_http_stream *stream)
{
    /* evhttp may complete the response right here (no body to end: HEAD, HTTP/1.0), which
     * detaches the stream and drops the connection's reference: hold one meanwhile. */
    pthread_mutex_lock(&stream->mutex);
    stream->refs++;
    pthread_mutex_unlock(&stream->mutex);
    struct conn *conn = stream->conn;
    stream->end_sent = true;
    evhttp_send_reply_end(stream->request->req);
    if (stream->conn == conn && conn->stream == stream) {
        guard_write_cb(conn);
    }
    http_stream_release(stream);
}

static void stream_flush(struct kp_http_stream *stream);

/* evhttp: the output buffer drained after a chunk (evcon->cb). */
static void on_chunk_written(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct conn *conn = arg;
    if (conn->stream != NULL) {
        stream_flush(conn->stream);
    }
}

/* Moves what producers queued into evhttp, and the terminating chunk once asked and drained. */
static void stream_flush(struct kp_http_stream *stream)
{
    struct conn *conn = stream->conn;
    if (conn == NULL || stream->end_sent) {
        return;
    }
    struct worker *worker = conn->worker;
    struct evbuffer *output = bufferevent_get_output(conn->bev);
    pthread_mutex_lock(&stream->mutex);
    bool drop = stream->overflow && !stream->dropped;
    bool closed = stream->closed;
    bool moved = false;
    if (!closed && stream->pending_bytes > 0 && evbuffer_get_length(output) < STREAM_OUTPUT_HIGH) {
        evbuffer_add_buffer(worker->scratch, stream->pending);
        stream->pending_bytes = 0;
        moved = true;
    }
    bool end_now = !closed && stream->end_requested && stream->pending_bytes == 0;
    pthread_mutex_unlock(&stream->mutex);

    if (drop) {
        stream->dropped = true;
        http_conn_drop(conn, "a stream's client reads too slowly");
        return;
    }
    if (closed) {
        return;
    }
    if (moved) {
        evhttp_send_reply_chunk_with_cb(stream->request->req, worker->scratch, on_chunk_written,
                                        conn);
        /* evhttp leaves the data where it was for a response without a body (HEAD). */
        evbuffer_drain(worker->scratch, evbuffer_get_length(worker->scratch));
        guard_write_cb(conn);
    }
    if (end_now) {
        http_stream_send_end(stream);
    }
}

/* Adds a stream to its worker's wake queue. Stream mutex held; the stream is open, so the
 * worker is alive (it closes every stream under this mutex before it goes away). */
static void stream_enqueue_locked(struct kp_http_stream *stream)
{
    if (stream->queued) {
        return;
    }
    struct worker *worker = stream->worker;
    stream->queued = true;
    stream->refs++;
    pthread_mutex_lock(&worker->queue_mutex);
    stream->queue_next = NULL;
    if (worker->queue_tail != NULL) {
        worker->queue_tail->queue_next = stream;
    } else {
        worker->queue_head = stream;
    }
    worker->queue_tail = stream;
    pthread_mutex_unlock(&worker->queue_mutex);
    event_active(worker->wake, EV_READ, 0);
}

static struct kp_http_stream *take_queue(struct worker *worker)
{
    pthread_mutex_lock(&worker->queue_mutex);
    struct kp_http_stream *list = worker->queue_head;
    worker->queue_head = worker->queue_tail = NULL;
    pthread_mutex_unlock(&worker->queue_mutex);
    return list;
}

/* Empties the worker's wake queue: each stream is flushed (or, at teardown, only let go) and
 * the queue's reference on it dropped. */
static void drain_queue(struct worker *worker, bool flush)
{
    struct kp_http_stream *stream = take_queue(worker);
    while (stream != NULL) {
        struct kp_http_stream *next = stream->queue_next;
        pthread_mutex_lock(&stream->mutex);
        stream->queued = false;
        pthread_mutex_unlock(&stream->mutex);
        if (flush)
            stream_flush(stream);
        http_stream_release(stream);
        stream = next;
    }
}

void http_worker_process_queue(struct worker *worker)
{
    drain_queue(worker, true);
}

void http_worker_discard_queue(struct worker *worker)
{
    drain_queue(worker, false);
}

void http_on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ERR_clear_error();
    http_worker_process_queue(arg);
}

/* ------------------------------------------------------------------ streams (public) */

struct kp_http_stream *kp_http_stream_start(struct kp_http_request *request, int status,
                                            const char *content_type)
{
    if (request->responded || request->streaming) {
        kp_log_error("http: stream started after a response to %s %s", request->method,
                     request->path);
        return NULL;
    }
    struct conn *conn = request->conn;
    struct worker *worker = conn->worker;
    struct kp_http_stream *stream = calloc(1, sizeof(*stream));
    if (stream == NULL || (stream->pending = evbuffer_new()) == NULL ||
        pthread_mutex_init(&stream->mutex, NULL) != 0) {
        if (stream != NULL && stream->pending != NULL) {
            evbuffer_free(stream->pending);
        }
        free(stream);
        kp_http_respond(request, 503, "text/plain; charset=utf-8", "out of memory\n", 14);
        return NULL;
    }
    if (pthread_cond_init(&stream->on_close_done, NULL) != 0) {
        evbuffer_free(stream->pending);
        pthread_mutex_destroy(&stream->mutex);
        free(stream);
        kp_http_respond(request, 503, "text/plain; charset=utf-8", "out of memory\n", 14);
        return NULL;
    }
    stream->refs = 2; /* the handler's and the connection's */
    stream->worker = worker;
    stream->max_pending = worker->server->limits.max_stream_buffer_bytes;
    stream->conn = conn;
    stream->request = request;

    struct evhttp_request *req = request->req;
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    http_remove_framing_headers(headers, content_type != NULL);
    if (content_type != NULL) {
        evhttp_add_header(headers, "Content-Type", content_type);
    }
    if (req->major == 1 && req->minor == 0) {
        /* HTTP/1.0 has no chunks: the body ends when the connection does. Make evhttp close
         * it, and not answer a "Connection: keep-alive" with keep-alive. */
        struct evkeyvalq *input = evhttp_request_get_input_headers(req);
        while (evhttp_remove_header(input, "Connection") == 0) {
        }
        evhttp_add_header(headers, "Connection", "close");
    }
    request->streaming = true;
    request->status = status;
    conn->stream = stream;
    conn->state = CONN_STREAMING;
    stream->open_next = worker->open_streams;
    if (worker->open_streams != NULL) {
        worker->open_streams->open_prev = stream;
    }
    worker->open_streams = stream;

    evhttp_send_reply_start(req, status, http_status_reason(status));
    guard_write_cb(conn);
    /* A watch lasts as long as it likes: no read timeout; the write timeout still catches a
     * client that stopped reading. Keep reading (a GET still has reading on) so a disconnect
     * is noticed, but never buffer more than STREAM_INPUT_HIGH of what the client sends. */
    http_conn_set_timeouts(conn, NULL);
    bufferevent_setwatermark(conn->bev, EV_READ, 0, STREAM_INPUT_HIGH);
    bufferevent_enable(conn->bev, EV_READ);
    return stream;
}

bool kp_http_stream_send(struct kp_http_stream *stream, const char *data, size_t len)
{
    pthread_mutex_lock(&stream->mutex);
    bool open = !stream->closed && !stream->end_requested;
    if (open && len > 0) {
        if (stream->pending_bytes + len > stream->max_pending) {
            /* The client reads too slowly: let the worker disconnect it. */
            stream->overflow = true;
            stream->closed = true;
            stream_enqueue_locked(stream);
            open = false;
        } else if (evbuffer_add(stream->pending, data, len) != 0) {
            open = false;
            stream->overflow = true;
            stream->closed = true;
            stream_enqueue_locked(stream);
        } else {
            stream->pending_bytes += len;
            stream_enqueue_locked(stream);
        }
    }
    pthread_mutex_unlock(&stream->mutex);
    return open;
}

void kp_http_stream_on_close(struct kp_http_stream *stream, void (*on_close)(void *context),
                             void *context)
{
    pthread_mutex_lock(&stream->mutex);
    stream->on_close = on_close;
    stream->on_close_context = context;
    pthread_mutex_unlock(&stream->mutex);
}

void kp_http_stream_end(struct kp_http_stream *stream)
{
    pthread_mutex_lock(&stream->mutex);
    if (stream->end_requested) {
        pthread_mutex_unlock(&stream->mutex);
        kp_log_error("http: kp_http_stream_end called twice on one stream");
        return;
    }
    stream->end_requested = true;
    if (!stream->closed) {
        stream_enqueue_locked(stream);
    }
    /* An on_close already under way on another thread finishes first: after end returns,
     * on_close has run or never will (the caller must not hold a lock on_close takes). From
     * inside on_close itself, end does not wait. */
    while (stream->on_close_running && !pthread_equal(stream->on_close_thread, pthread_self())) {
        pthread_cond_wait(&stream->on_close_done, &stream->mutex);
    }
    bool last = --stream->refs == 0;
    pthread_mutex_unlock(&stream->mutex);
    if (last) {
        stream_free(stream);
    }
}
