/*
 * net/http_internal.h - private to net/http.c, net/request.c and net/stream.c: the server's
 * types and the functions the files call in each other. http.c is the server, its workers and
 * connections; request.c a request as the handler sees it and its response; stream.c the
 * chunked responses (kp_http_stream_*) that watches use, which run partly on other threads.
 * The rules are in the files' comments.
 */
#ifndef KP_NET_HTTP_INTERNAL_H
#define KP_NET_HTTP_INTERNAL_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "net/http.h"

/* A stream's bytes move into the bufferevent while its output holds less than this. */
#define STREAM_OUTPUT_HIGH ((size_t)256 * 1024)
/* During a stream the client should send nothing; what it sends is buffered up to this and
 * then reading pauses (so a client cannot grow our memory by writing during a watch). */
#define STREAM_INPUT_HIGH ((size_t)16 * 1024)

struct worker;
struct conn;

enum conn_state {
    CONN_ACCEPTED,
    CONN_READING,
    CONN_HANDLING,
    CONN_IDLE,
    CONN_STREAMING,
    CONN_DROPPING,
};

/* One TLS connection; owned by its SSL (ex_data), freed when libevent frees the SSL. Worker
 * thread only. */
struct conn {
    struct worker *worker;
    struct bufferevent *bev;         /* borrowed from libevent; valid while this lives */
    struct evhttp_connection *evcon; /* set at the first request; NULL after the close cb */
    struct event *deadline;          /* whole-request deadline, and "drop now" */
    enum conn_state state;
    bool rejected; /* over max_connections: dropped before the handshake */
    bool handshake_done;
    STACK_OF(X509) * peer_chain;         /* owned, leaf first; NULL when none */
    struct kp_http_stream *stream;       /* the stream answering the current request, if any */
    bufferevent_data_cb evhttp_write_cb; /* evhttp's own, behind guarded_write_cb */
    char tls_error[160];                 /* why the handshake failed (debug log) */
    char tls_reason[64];                 /* the same, short, for kp_http_server_stats */
    void *app_data;                      /* kp_http_conn_set_data; freed with the conn */
    char remote[INET6_ADDRSTRLEN + 8];
};

struct query_param {
    char *name;
    char *value;
};

/* What the handler sees. Worker thread only; freed after the handler returns, or for a stream
 * when the connection is done with it (after on_close, if that runs). */
struct kp_http_request {
    struct evhttp_request *req; /* libevent's; alive while this is */
    struct conn *conn;
    int status; /* of the response or stream sent; 0 before */
    const char *method;
    char *path;
    const char *raw_query;
    struct query_param *params;
    size_t param_count;
    char *body;
    size_t body_len;
    bool responded;
    bool streaming;
};

struct kp_http_stream {
    pthread_mutex_t mutex;
    /* ---- under mutex ---- */
    int refs;
    struct worker *worker; /* dereferenced only while !closed */
    struct evbuffer *pending;
    size_t pending_bytes;
    size_t max_pending;
    bool queued; /* in worker's wake queue (holds a reference) */
    bool end_requested;
    bool closed;   /* no more sends: client gone, server stopping, or overflow */
    bool overflow; /* closed because the client read too slowly: drop it */
    bool on_close_called;
    bool on_close_running;        /* on_close is executing (outside the mutex), */
    pthread_t on_close_thread;    /* on this thread */
    pthread_cond_t on_close_done; /* signalled when it returns */
    void (*on_close)(void *context);
    void *on_close_context;
    struct kp_http_stream *queue_next; /* under worker->queue_mutex */
    /* ---- worker thread only ---- */
    struct conn *conn; /* NULL once the connection side let go */
    struct kp_http_request *request;
    bool end_sent; /* evhttp_send_reply_end called */
    bool flushing; /* counted in worker->flushing (server stop) */
    bool dropped;
    struct kp_http_stream *open_prev, *open_next;
};

struct worker {
    struct kp_http_server *server;
    int index;
    pthread_t thread;
    bool thread_started;
    evutil_socket_t listen_fd; /* until handed to the listener */
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *wake;
    struct event *stop;
    struct event *grace;
    struct event *accept_retry;
    struct evbuffer *scratch; /* one chunk on its way into evhttp */
    pthread_mutex_t queue_mutex;
    bool queue_mutex_ready;
    struct kp_http_stream *queue_head, *queue_tail; /* under queue_mutex */
    struct kp_http_stream *open_streams;            /* worker thread */
    int flushing;
    bool stopping;
};

struct kp_http_server {
    struct kp_http_limits limits;
    kp_http_handler_fn handler;
    void *handler_context;
    pthread_mutex_t ctx_mutex;
    SSL_CTX *ssl_ctx; /* a reference; under ctx_mutex */
    atomic_int connections;
    /* Counters for kp_http_server_stats. */
    atomic_uint_fast64_t accepted, rejected, handshakes, handshake_failures;
    pthread_mutex_t reasons_mutex;
    struct kp_http_failure_reason reasons[KP_HTTP_FAILURE_REASONS]; /* under reasons_mutex */
    size_t reason_count;
    int port;
    int worker_count;
    struct worker *workers;
    struct timeval read_tv;
    struct timeval idle_tv;
    struct timeval write_tv;
};

/* Output up to one TLS record is made contiguous (http.c, coalesce_output), and a complete
 * response up to it is written at once (request.c, write_now). */
#define COALESCE_MAX_BYTES 16384

/* ---- http.c, for stream.c and request.c ---- */

const char *http_status_reason(int status);
void http_conn_set_timeouts(struct conn *conn, const struct timeval *read_tv);
/* Whether the connection's bufferevent may still be touched (see http.c). */
bool http_conn_bev_alive(const struct conn *conn);
void http_conn_drop(struct conn *conn, const char *why);
void http_request_free(struct kp_http_request *request);
/* Removes a handler's own Content-Length and Transfer-Encoding (and Content-Type when the
 * response names one): the server sets the framing. */
void http_remove_framing_headers(struct evkeyvalq *headers, bool content_type_given);
/* The connection state hanging off one of our SSLs; NULL for any other SSL. */
struct conn *http_conn_of(const SSL *ssl);

/* ---- request.c, for http.c (worker thread) ---- */

/* Builds the handler's view of req on conn; on failure answers the request itself and returns
 * NULL. */
struct kp_http_request *http_request_new(struct evhttp_request *req, struct conn *conn);
/* Message framing evhttp accepted but kpki will not guess at (request.c). */
bool http_framing_ok(struct evhttp_request *req);
/* A text/plain answer the server gives itself, closing the connection when close. */
void http_send_plain(struct evhttp_request *req, int status, const char *text, bool close);

/* ---- stream.c, for http.c (worker thread) ---- */

/* The connection side lets go of the stream: its response is complete, or the connection is
 * gone. */
void http_stream_detach(struct kp_http_stream *stream);
void http_stream_close(struct kp_http_stream *stream);
void http_stream_connection_gone(struct kp_http_stream *stream);
void http_stream_send_end(struct kp_http_stream *stream);
/* Drops one reference. */
void http_stream_release(struct kp_http_stream *stream);
/* Flushes the streams producers queued for the worker. */
void http_worker_process_queue(struct worker *worker);
/* At teardown: lets the queued streams go unflushed. */
void http_worker_discard_queue(struct worker *worker);
/* The worker's wake event: producers queued streams. */
void http_on_wake(evutil_socket_t fd, short what, void *arg);

#endif
