/*
 * net/http_internal.h - private to net/http.c, net/conn.c, net/request.c and net/stream.c: the
 * server's types and the functions the files call in each other.
 *
 *   http.c     the server: workers, listeners, accepting, stopping, statistics;
 *   conn.c     one TLS connection: its socket and SSL, the handshake, reading, writing and
 *              closing, its timers, and the order of the requests on it;
 *   request.c  HTTP/1.1 parsing (http_parser), a request as the handler sees it, the response;
 *   stream.c   chunked responses (kp_http_stream_*), which run partly on other threads.
 *
 * Everything here belongs to the worker thread that accepted the connection, except where a
 * field says otherwise (the stream's mutex-guarded part). The rules are in the files' comments.
 */
#ifndef KP_NET_HTTP_INTERNAL_H
#define KP_NET_HTTP_INTERNAL_H

#include <event2/event.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "net/http.h"

/* A stream's queued bytes move into the connection's output while it holds less than this. */
#define STREAM_OUTPUT_HIGH ((size_t)256 * 1024)
/* During a stream the client should send nothing; one that sends more than this is dropped
 * (so a client cannot grow our memory by writing during a watch). */
#define STREAM_INPUT_HIGH ((size_t)16 * 1024)
/* The most plaintext handed to one SSL_write: one TLS record, written by one write(2). */
#define TLS_RECORD_MAX 16384

struct worker;
struct conn;

/* A growable byte buffer: bytes data[off, off + len). Owned by its holder. */
struct http_buf {
    char *data;
    size_t off;
    size_t len;
    size_t cap;
};

bool http_buf_reserve(struct http_buf *buf, size_t more); /* room for `more` after the end */
bool http_buf_append(struct http_buf *buf, const void *bytes, size_t len);
void http_buf_consume(struct http_buf *buf, size_t len); /* from the front */
void http_buf_free(struct http_buf *buf);

enum conn_state {
    CONN_HANDSHAKE, /* TLS handshake; deadline: the read timeout from accept */
    CONN_IDLE,      /* between requests; deadline: the idle timeout */
    CONN_READING,   /* part of a request is here; deadline: the read timeout from its first byte */
    CONN_HANDLING,  /* a request is being answered; the write deadline while output is blocked
                     * (an error answered mid-request keeps the read deadline) */
    CONN_STREAMING, /* a chunked response; the same */
    CONN_LINGERING, /* answered and closing: reading what the client still sends, then close */
    CONN_CLOSING,   /* freed in the next pass of the loop */
};

/* One TLS connection. Owned by its worker (the worker's list); freed by conn.c only, from the
 * loop, never from inside a call that still uses it. */
struct conn {
    struct worker *worker;
    struct conn *prev, *next; /* the worker's connections */
    int fd;                   /* owned */
    SSL *ssl;                 /* owned */
    struct event *io;         /* fd, read and write, edge-triggered, persistent */
    struct event *timer;      /* the state's deadline; also "close now" */
    enum conn_state state;
    bool handshake_done;
    bool rx_drained;       /* the last read(2) emptied the socket: wait for the next edge */
    bool rx_hup;           /* the client's FIN has arrived: no edge will follow, always read */
    bool rx_eof;           /* the client closed its side (or the TLS session) */
    bool write_blocked;    /* output waits for the socket to become writable */
    bool close_after;      /* close once the current response has been written */
    bool refused_early;    /* answered before its request was read whole: linger on close */
    bool in_run;           /* inside http_conn_run: do not recurse */
    bool response_pending; /* the current response waits until out has drained */
    bool corked;           /* TCP_CORK set: the last answer leaves with the shutdown */
    http_parser parser;
    int parse_status;        /* the answer a parser callback chose, 0 for the parser's own */
    const char *parse_error; /* its text */
    struct kp_http_request *parsing; /* the request being received (headers, body) */
    struct http_buf in;              /* plaintext from the client; parsed up to `parsed` */
    size_t parsed;
    struct http_buf out;           /* plaintext to the client, not yet taken by SSL_write */
    size_t write_attempt;          /* bytes of a retried SSL_write (OpenSSL wants them again) */
    STACK_OF(X509) * peer_chain;   /* owned, leaf first; NULL when none */
    struct kp_http_stream *stream; /* the stream answering the current request, if any */
    char tls_error[160];           /* why the handshake failed (debug log) */
    char tls_reason[64];           /* the same, short, for kp_http_server_stats */
    void *app_data;                /* kp_http_conn_set_data; freed with the conn */
    char remote[INET6_ADDRSTRLEN + 8];
};

struct query_param {
    char *name;
    char *value;
};

struct header_ref {
    size_t name_off, name_len;
    size_t value_off, value_len;
};

/* What the handler sees. Worker thread only; freed after its response has been handed to the
 * connection, or for a stream when the connection is done with it (after on_close, if any). */
struct kp_http_request {
    struct conn *conn;
    int status; /* of the response or stream sent; 0 before */
    const char *method;
    enum http_method method_id;
    unsigned short http_minor; /* HTTP/1.x */
    bool keep_alive;           /* what the request asked for (RFC 9112 §9.3) */
    bool responded;
    bool streaming;
    bool in_value;         /* parsing: the last piece was a header value */
    const char *target;    /* into head: the request-target as sent */
    char *path;            /* owned: percent-decoded */
    const char *raw_query; /* into head */
    struct query_param *params;
    size_t param_count;
    /* While parsing: the request-target and the headers as offsets into conn->in. */
    size_t url_off, url_len;
    struct header_ref *refs;
    size_t ref_count, ref_cap;
    size_t head_start; /* offset in conn->in where this request began */
    size_t head_end;   /* the end of the last piece of the head seen so far */
    size_t consumed;   /* bytes of input the parser has taken for this request */
    size_t chunks;     /* chunks of a chunked body so far */
    /* From headers complete: the target and headers, NUL-terminated, in one owned block. */
    char *head;
    const char **names;
    const char **values;
    size_t header_count;
    struct http_buf body;  /* owned; NUL-terminated once complete */
    struct http_buf extra; /* the handler's response headers, as "Name: value\r\n" lines */
};

struct kp_http_stream {
    pthread_mutex_t mutex;
    /* ---- under mutex ---- */
    int refs;
    struct worker *worker; /* dereferenced only while !closed */
    struct http_buf pending;
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
    bool chunked;  /* HTTP/1.1: chunks; HTTP/1.0: the body ends with the connection */
    bool no_body;  /* HEAD: the head only */
    bool end_sent; /* the terminating chunk is in the output */
    bool flushing; /* counted in worker->flushing (server stop) */
    bool dropped;
    struct kp_http_stream *open_prev, *open_next;
};

struct worker {
    struct kp_http_server *server;
    int index;
    pthread_t thread;
    bool thread_started;
    int listen_fd; /* owned */
    struct event_base *base;
    struct event *listener;
    struct event *wake;
    struct event *stop;
    struct event *grace;
    struct event *accept_retry;
    const struct timeval *read_tv; /* libevent common timeouts of this base */
    const struct timeval *idle_tv;
    const struct timeval *write_tv;
    const struct timeval *linger_tv;
    struct conn *conns; /* every open connection */
    /* Buffers connections gave back on going idle, reused by the next ones (no malloc and free
     * of a 16 KiB buffer per request); owned. */
    struct http_buf spare[8];
    int spare_count;
    pthread_mutex_t queue_mutex;
    bool queue_mutex_ready;
    struct kp_http_stream *queue_head, *queue_tail; /* under queue_mutex */
    struct kp_http_stream *open_streams;
    int flushing;
    bool stopping;
    time_t date_second; /* the Date header, rebuilt once a second */
    char date[40];
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
};

/* ---- http.c ---- */

const char *http_status_reason(int status);
void http_count_handshake_failure(struct kp_http_server *server, const char *reason);
/* "Date: ...\r\n" for now, cached per second. */
const char *http_worker_date(struct worker *worker);

/* ---- conn.c ---- */

/* A new connection on an accepted socket fd (owned from here on, closed on failure); peer is
 * the client's address as accept(2) gave it (read, not kept). */
void http_conn_accept(struct worker *worker, int fd, const struct sockaddr *peer,
                      socklen_t peer_len);
/* Drives the connection as far as it can go now: handshake, reading, requests, writing. */
void http_conn_run(struct conn *conn);
/* Closes the connection at once (freed in the next pass of the loop). */
void http_conn_drop(struct conn *conn, const char *why);
/* The current response is complete in out: the connection moves on once it has drained. */
void http_conn_response_queued(struct conn *conn);
/* Makes room for `more` bytes in one of the connection's buffers, starting from a spare one
 * of the worker's when the buffer has none; false on allocation failure. */
bool http_conn_reserve(struct conn *conn, struct http_buf *buf, size_t more);
/* Frees the worker's spare buffers (teardown). */
void http_worker_free_spares(struct worker *worker);
/* Frees the connection now (worker teardown only). */
void http_conn_free(struct conn *conn);
bool http_conn_init_global(void);

/* ---- request.c ---- */

/* Parses what conn->in holds past conn->parsed: returns a complete request (taken from
 * conn->parsing), NULL when more input is needed or the connection was answered and is
 * closing (the connection's state says which). */
struct kp_http_request *http_parse_next(struct conn *conn);
void http_request_free(struct kp_http_request *request);
/* A text/plain answer the server gives itself, then the connection closes. */
void http_send_error(struct conn *conn, int status, const char *text);
/* Appends the status line and the common headers (Date, the handler's, Connection). */
void http_write_head(struct conn *conn, struct kp_http_request *request, int status,
                     const char *content_type, const char *framing);
void http_parser_setup(void);

/* ---- stream.c, for http.c and conn.c (worker thread) ---- */

/* The connection side lets go of the stream: its response is complete, or the connection is
 * gone. */
void http_stream_detach(struct kp_http_stream *stream);
void http_stream_close(struct kp_http_stream *stream);
void http_stream_connection_gone(struct kp_http_stream *stream);
/* Queues the terminating chunk. */
void http_stream_send_end(struct kp_http_stream *stream);
/* At server stop: everything producers queued goes into the output, whatever it holds. */
void http_stream_flush_all(struct kp_http_stream *stream);
/* The connection's output drained: more of the stream may go. */
void http_stream_output_drained(struct kp_http_stream *stream);
/* Drops one reference. */
void http_stream_release(struct kp_http_stream *stream);
/* Flushes the streams producers queued for the worker. */
void http_worker_process_queue(struct worker *worker);
/* At teardown: lets the queued streams go unflushed. */
void http_worker_discard_queue(struct worker *worker);
/* The worker's wake event: producers queued streams. */
void http_on_wake(evutil_socket_t fd, short what, void *arg);

#endif
