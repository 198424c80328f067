/*
 * net/http.h - the HTTPS server of the daemons: kpki's own HTTP/1.1 connection loop over
 * OpenSSL, on libevent event loops (docs/net.md).
 *
 * One listening port, N worker threads (each its own event loop, all on the port via
 * SO_REUSEPORT); TLS 1.2 or later with ALPN http/1.1; client certificates requested but not
 * required and NOT judged here: the chain the client presented is handed to the handler, whose
 * authenticator decides (kube-apiserver's RequestClientCert + x509 authenticator split).
 * Limits on header bytes, body bytes, connections and time are enforced before the handler runs.
 *
 * Threads: the handler runs on the worker thread that owns the connection and must not block
 * for long. A request object belongs to that thread. Streams (chunked responses, for watch) may
 * be written from any thread.
 */
#ifndef KP_NET_HTTP_H
#define KP_NET_HTTP_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kpki/error.h"

struct kp_http_limits {
    size_t max_header_bytes; /* request line + headers; over it: 431, then the close */
    size_t max_body_bytes;   /* over it: 413 */
    int max_connections;     /* beyond it new connections are closed at once */
    int read_timeout_s;      /* to receive a whole request; a stalled client is dropped */
    int idle_timeout_s;      /* keep-alive connections idle longer are closed */
    /* Added with the implementation: bytes a stream may hold queued but not yet sent (a watch
     * whose client reads too slowly); over it kp_http_stream_send returns false and the client
     * is disconnected (on_close runs). 0 means the default, 8 MiB. */
    size_t max_stream_buffer_bytes;
};

/* Defaults: 64 KiB headers, 3 MiB bodies, 10000 connections, 60 s read, 90 s idle, 8 MiB per
 * stream. A zero in any field of a config's limits also means its default. */
void kp_http_limits_default(struct kp_http_limits *limits);

struct kp_http_request;
struct kp_http_stream;

/* The handler must answer (kp_http_respond) or start a stream before it returns; if it does
 * neither the server answers 500. A plain response cannot be sent from another thread. */
typedef void (*kp_http_handler_fn)(void *context, struct kp_http_request *request);

struct kp_http_server_config {
    const char *bind_address; /* "0.0.0.0", "127.0.0.1", "::" */
    int port;                 /* 0: an ephemeral port (see kp_http_server_port) */
    int threads;              /* worker threads; 0: one per CPU */
    struct kp_http_limits limits;
    SSL_CTX *ssl_ctx;         /* from kp_tls_server_ctx_new; a reference is taken */
    kp_http_handler_fn handler;
    void *handler_context;
};

struct kp_http_server;

/* Binds, starts the worker threads and returns; requests are served until kp_http_server_stop.
 * Errors: the address is in use or invalid, TLS set-up failed. */
KP_MUST_CHECK enum kp_result kp_http_server_start(const struct kp_http_server_config *config,
                                                  struct kp_http_server **server,
                                                  struct kp_error *err);
int kp_http_server_port(const struct kp_http_server *server);
/* Stops accepting, closes every connection (ending open streams), joins the threads, frees. */
void kp_http_server_stop(struct kp_http_server *server);

/* How many handshakes failed for one reason: OpenSSL's reason string ("certificate verify
 * failed", "wrong version number"), "alert <description>" for an alert kpki sent, "closed
 * before completion" when the client left or timed out, "other" past the first ones. */
#define KP_HTTP_FAILURE_REASONS 16
struct kp_http_failure_reason {
    char reason[64];
    uint64_t count;
};

/* Counters since the server started (a snapshot; each is monotonic except open). */
struct kp_http_stats {
    uint64_t accepted;           /* connections taken on */
    uint64_t rejected;           /* dropped at once: over max_connections */
    uint64_t open;               /* connections now open */
    uint64_t handshakes;         /* TLS handshakes completed */
    uint64_t handshake_failures; /* connections that ended before completing one */
    struct kp_http_failure_reason reasons[KP_HTTP_FAILURE_REASONS];
    size_t reason_count;
};

/* Thread-safe. */
void kp_http_server_stats(struct kp_http_server *server, struct kp_http_stats *stats);

/* The SSL_CTX new connections get now (a new reference: SSL_CTX_free it). Thread-safe. */
SSL_CTX *kp_http_server_ssl_ctx(struct kp_http_server *server);

/* Replaces the SSL_CTX used for new connections (live ones keep theirs): a certificate reload
 * is a pointer swap. Thread-safe. A reference is taken. */
void kp_http_server_set_ssl_ctx(struct kp_http_server *server, SSL_CTX *ssl_ctx);

/* ---- TLS ---- */

/* A server context: the certificate chain and key from PEM files, TLS 1.2 minimum, ALPN
 * http/1.1 only, client certificates requested (never required, never verified here), no
 * compression, no renegotiation. *ctx: free with SSL_CTX_free. */
KP_MUST_CHECK enum kp_result kp_tls_server_ctx_new(const char *cert_file, const char *key_file,
                                                   SSL_CTX **ctx, struct kp_error *err);
/* The OpenSSL library context the server contexts are made in (tls_libctx.c: the default
 * provider without the key types and decoders TLS never uses, which makes decoding a client's
 * certificate cheaper); built once; NULL (OpenSSL's default context) if it could not be. */
OSSL_LIB_CTX *kp_tls_libctx(void);
/* Session resumption for a context from kp_tls_server_ctx_new, which has none: 0 keeps it off
 * (no session cache, no tickets); N > 0 keeps up to N sessions (each holds the client's chain)
 * for TLS 1.2 session ids and one TLS 1.3 stateful ticket per handshake. See tls.c for why off
 * is the default. */
void kp_tls_server_ctx_set_resumption(SSL_CTX *ctx, size_t cache_entries);

/* ---- a request (valid until kp_http_respond or kp_http_stream_end; owned by the server) ---- */

const char *kp_http_method(struct kp_http_request *request);   /* "GET" ... */
const char *kp_http_path(struct kp_http_request *request);     /* percent-decoded, no query */
const char *kp_http_raw_query(struct kp_http_request *request);/* undecoded, "" if none */
/* A query parameter, decoded; NULL if absent. Borrowed until the request ends. */
const char *kp_http_query(struct kp_http_request *request, const char *name);
/* A request header (case-insensitive); the first if repeated; NULL if absent. */
const char *kp_http_header(struct kp_http_request *request, const char *name);
/* Every value of a repeated header, in order: returns how many; values[i] borrowed. */
size_t kp_http_header_values(struct kp_http_request *request, const char *name,
                             const char **values, size_t max);
/* Every request header in the order received: returns how many were stored (at most max);
 * names[i] and values[i] are borrowed until the request ends. */
size_t kp_http_headers(struct kp_http_request *request, const char **names, const char **values,
                       size_t max);
/* The body (NUL-terminated for convenience; len excludes it). */
const char *kp_http_body(struct kp_http_request *request, size_t *len);
/* The certificates the client presented, leaf first (NULL when none). Borrowed. */
STACK_OF(X509) *kp_http_peer_chain(struct kp_http_request *request);
/* "10.0.0.1:54321". */
const char *kp_http_remote(struct kp_http_request *request);

/* Adds a response header (before responding). Copies. */
void kp_http_add_header(struct kp_http_request *request, const char *name, const char *value);
/* Sends the whole response and ends the request. body is copied. */
void kp_http_respond(struct kp_http_request *request, int status, const char *content_type,
                     const char *body, size_t len);

/* One pointer of the application's per TLS connection (what the connection's client chain
 * was verified as, say), NULL until set. Set takes ownership: the data is freed with free()
 * when the connection goes, or when it is set again. The worker thread of the request only;
 * a connection's requests run one at a time. */
void *kp_http_conn_data(struct kp_http_request *request);
void kp_http_conn_set_data(struct kp_http_request *request, void *data);

/* The status of the response or stream sent for request, 0 if none yet. */
int kp_http_response_status(const struct kp_http_request *request);

/* Starts a chunked response (watch). The request ends when the stream is ended. NULL only if
 * the request was already answered, or on allocation failure (a 503 has then been sent). */
struct kp_http_stream *kp_http_stream_start(struct kp_http_request *request, int status,
                                            const char *content_type);
/* Queues a chunk; safe from any thread; copies. Returns false once the client has gone. */
bool kp_http_stream_send(struct kp_http_stream *stream, const char *data, size_t len);
/* Called once, on the worker thread, when the client goes away or the server stops. Set it in
 * the handler. Not called if kp_http_stream_end came first; when another thread calls
 * kp_http_stream_end just as the client goes away, end waits for the on_close under way, so
 * after end returns on_close has run or never will and its context may be freed. The caller
 * of end must therefore not hold a lock that on_close takes. */
void kp_http_stream_on_close(struct kp_http_stream *stream, void (*on_close)(void *context),
                             void *context);
/* Ends the response (the terminating chunk) and releases the caller's reference; safe from any
 * thread. The stream must not be used afterwards. */
void kp_http_stream_end(struct kp_http_stream *stream);

#endif
