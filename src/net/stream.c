/*
 * net/stream.c - chunked responses (kp_http_stream_*), what watches are answered with: the
 * public calls, which producers make from any thread, and the worker side that moves queued
 * bytes into the connection's output as the client reads them. Separate from conn.c because it
 * is the one part with its own threading and lifetime rules.
 *
 * A stream has up to three references: the handler's (released by kp_http_stream_end), the
 * connection's (released when the response is complete or the connection is gone, on the
 * worker thread) and one while it sits in the worker's wake queue. kp_http_stream_send/_end
 * lock the stream, queue it and wake the worker; the worker moves the queued bytes into the
 * connection's output as one chunk while that output holds less than STREAM_OUTPUT_HIGH, and
 * otherwise waits until it has drained (http_stream_output_drained): a slow client backs data
 * up into the stream's queue, and past max_stream_buffer_bytes it is disconnected. `closed`
 * (under the stream mutex) is set before a worker may go away, so a producer thread only
 * touches the worker while the stream is open - and it holds the stream mutex while it does,
 * which the worker takes to close the stream.
 */
#include <errno.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "net/http.h"
#include "net/http_internal.h"

/* ------------------------------------------------------------------ streams (worker side) */

static void stream_free(struct kp_http_stream *stream)
{
    http_buf_free(&stream->pending);
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
    http_buf_free(&stream->pending);
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

/* The connection under a stream is gone (client disconnect, timeout, drop, server stop). */
void http_stream_connection_gone(struct kp_http_stream *stream)
{
    http_stream_close(stream);
    stream->end_sent = true;
    http_stream_detach(stream);
}

/* The terminating chunk; the response completes (conn.c, response_done) once it is written. An
 * HTTP/1.0 stream ends with the connection. */
void http_stream_send_end(struct kp_http_stream *stream)
{
    struct conn *conn = stream->conn;
    stream->end_sent = true;
    if (stream->chunked && !stream->no_body && !http_buf_append(&conn->out, "0\r\n\r\n", 5)) {
        http_conn_drop(conn, "out of memory ending a stream");
        return;
    }
    if (!stream->chunked) {
        conn->close_after = true;
    }
    http_conn_response_queued(conn);
}

/* One chunk: its size in hex, the bytes, CRLF (RFC 9112 §7.1). */
static bool append_chunk(struct kp_http_stream *stream, struct http_buf *out)
{
    const struct http_buf *pending = &stream->pending;
    if (stream->no_body) {
        return true;
    }
    if (!stream->chunked) {
        return http_buf_append(out, pending->data + pending->off, pending->len);
    }
    char size[24];
    int n = snprintf(size, sizeof(size), "%zx\r\n", pending->len);
    return http_buf_reserve(out, (size_t)n + pending->len + 2) &&
           http_buf_append(out, size, (size_t)n) &&
           http_buf_append(out, pending->data + pending->off, pending->len) &&
           http_buf_append(out, "\r\n", 2);
}

/* Moves what producers queued into the connection's output (while it holds less than
 * STREAM_OUTPUT_HIGH), and the terminating chunk once asked. Returns whether output was added. */
static bool stream_move(struct kp_http_stream *stream, size_t output_high)
{
    struct conn *conn = stream->conn;
    if (conn == NULL || stream->end_sent) {
        return false;
    }
    pthread_mutex_lock(&stream->mutex);
    bool drop = stream->overflow && !stream->dropped;
    bool closed = stream->closed;
    bool moved = false;
    bool failed = false;
    if (!closed && stream->pending.len > 0 && conn->out.len < output_high) {
        failed = !append_chunk(stream, &conn->out);
        http_buf_consume(&stream->pending, stream->pending.len);
        if (stream->pending.cap > STREAM_INPUT_HIGH * 4) {
            http_buf_free(&stream->pending); /* a burst's buffer is not kept */
        }
        moved = true;
    }
    bool end_now = !closed && stream->end_requested && stream->pending.len == 0;
    pthread_mutex_unlock(&stream->mutex);

    if (drop || failed) {
        stream->dropped = true;
        http_conn_drop(conn, failed ? "out of memory writing a stream"
                                    : "a stream's client reads too slowly");
        return false;
    }
    if (closed) {
        return false;
    }
    if (end_now) {
        http_stream_send_end(stream);
    }
    return moved || end_now;
}

static bool stream_flush(struct kp_http_stream *stream)
{
    return stream_move(stream, STREAM_OUTPUT_HIGH);
}

void http_stream_output_drained(struct kp_http_stream *stream)
{
    (void)stream_flush(stream);
}

void http_stream_flush_all(struct kp_http_stream *stream)
{
    (void)stream_move(stream, SIZE_MAX);
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
        if (flush && stream_flush(stream)) {
            http_conn_run(stream->conn); /* writes it now */
        }
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
    if (stream == NULL || pthread_mutex_init(&stream->mutex, NULL) != 0) {
        free(stream);
        kp_http_respond(request, 503, "text/plain; charset=utf-8", "out of memory\n", 14);
        return NULL;
    }
    if (pthread_cond_init(&stream->on_close_done, NULL) != 0) {
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
    /* HTTP/1.0 has no chunks: the body ends when the connection does. */
    stream->chunked = request->http_minor >= 1;
    stream->no_body = request->method_id == HTTP_HEAD;
    if (!stream->chunked) {
        conn->close_after = true;
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
    /* A watch lasts as long as it likes: no read deadline; the write deadline still catches a
     * client that stopped reading (conn.c). */
    http_write_head(conn, request, status, content_type,
                    stream->chunked ? "Transfer-Encoding: chunked\r\n" : NULL);
    return stream;
}

bool kp_http_stream_send(struct kp_http_stream *stream, const char *data, size_t len)
{
    pthread_mutex_lock(&stream->mutex);
    bool open = !stream->closed && !stream->end_requested;
    if (open && len > 0) {
        if (stream->pending.len + len > stream->max_pending) {
            /* The client reads too slowly: let the worker disconnect it. */
            stream->overflow = true;
            stream->closed = true;
            stream_enqueue_locked(stream);
            open = false;
        } else if (!http_buf_append(&stream->pending, data, len)) {
            open = false;
            stream->overflow = true;
            stream->closed = true;
            stream_enqueue_locked(stream);
        } else {
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
