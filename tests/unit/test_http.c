/*
 * net/http: the HTTPS server, driven over real TLS on loopback by a small OpenSSL client written
 * here (plus curl when present). The server's certificates come from kpki's own helpers.
 *
 * What is pinned: request parsing (method, decoded path, raw and decoded query, headers with
 * repeats, body with a NUL, peer chain, remote), keep-alive, ALPN (h2 offered -> http/1.1),
 * client certificates passed through and absent, TLS 1.1 refused, each limit with exactly what
 * the client sees (413 for bodies; 431 for headers; connection closed for a
 * stalled, trickling or idle client, for garbage instead of a ClientHello and beyond
 * max_connections), streams written from another thread, a client leaving mid-stream
 * (on_close), a slow stream consumer, server stop with an open stream (terminating chunk,
 * on_close), and a certificate swap (new connections get the new certificate, an old one keeps
 * working). Run under ASan for the lifetime rules.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "net/http.h"

/* ------------------------------------------------------------------ test PKI */

static struct {
    char dir[512];
    char ca_cert[700], ca_key[700];
    char server1_cert[700], server1_key[700];
    char server2_cert[700], server2_key[700];
    char client_cert[700], client_key[700], client_chain[700];
} pki;

static void write_cert(X509 *cert, const char *path, bool append)
{
    char *pem = NULL;
    size_t len = 0;
    struct kp_error err;
    assert_int_equal(kp_cert_to_pem(cert, &pem, &len, &err), KP_OK);
    FILE *file = fopen(path, append ? "a" : "w");
    assert_non_null(file);
    assert_int_equal(fwrite(pem, 1, len, file), len);
    fclose(file);
    free(pem);
}

static void write_key(EVP_PKEY *key, const char *path)
{
    char *pem = NULL;
    size_t len = 0;
    struct kp_error err;
    assert_int_equal(kp_key_to_pem(key, &pem, &len, &err), KP_OK);
    test_write_file(path, pem);
    kp_secret_free(pem, len);
}

static X509 *issue(const char *cn, bool is_ca, unsigned eku, EVP_PKEY *key, X509 *issuer,
                   EVP_PKEY *issuer_key)
{
    struct kp_ip loopback;
    assert_true(kp_ip_parse("127.0.0.1", &loopback));
    const char *dns[] = {"localhost"};
    const char *orgs[] = {"kpki-test"};
    int64_t now = (int64_t)time(NULL);
    struct kp_cert_template tmpl = {
        .common_name = cn,
        .organizations = orgs,
        .organization_count = 1,
        .dns_names = is_ca ? NULL : dns,
        .dns_count = is_ca ? 0 : 1,
        .ips = is_ca ? NULL : &loopback,
        .ip_count = is_ca ? 0 : 1,
        .is_ca = is_ca,
        .key_usage = is_ca ? (KP_KU_CERT_SIGN | KP_KU_DIGITAL_SIGNATURE)
                           : (KP_KU_DIGITAL_SIGNATURE | KP_KU_KEY_ENCIPHERMENT),
        .ext_key_usage = eku,
        .not_before = now - 3600,
        .not_after = now + 86400,
    };
    X509 *cert = NULL;
    struct kp_error err;
    assert_int_equal(kp_cert_issue(&tmpl, key, issuer, issuer_key, &cert, &err), KP_OK);
    return cert;
}

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *key = NULL;
    struct kp_error err;
    assert_int_equal(kp_key_generate(KP_KEY_ECDSA_P256, &key, &err), KP_OK);
    return key;
}

static int make_pki(void **state)
{
    (void)state;
    test_make_dir("http", pki.dir, sizeof(pki.dir));
    test_path(pki.ca_cert, sizeof(pki.ca_cert), pki.dir, "ca.crt");
    test_path(pki.ca_key, sizeof(pki.ca_key), pki.dir, "ca.key");
    test_path(pki.server1_cert, sizeof(pki.server1_cert), pki.dir, "server1.crt");
    test_path(pki.server1_key, sizeof(pki.server1_key), pki.dir, "server1.key");
    test_path(pki.server2_cert, sizeof(pki.server2_cert), pki.dir, "server2.crt");
    test_path(pki.server2_key, sizeof(pki.server2_key), pki.dir, "server2.key");
    test_path(pki.client_cert, sizeof(pki.client_cert), pki.dir, "client.crt");
    test_path(pki.client_key, sizeof(pki.client_key), pki.dir, "client.key");
    test_path(pki.client_chain, sizeof(pki.client_chain), pki.dir, "client-chain.crt");

    EVP_PKEY *ca_key = new_key();
    X509 *ca = issue("kpki-test-ca", true, 0, ca_key, NULL, NULL);
    write_cert(ca, pki.ca_cert, false);
    write_key(ca_key, pki.ca_key);

    EVP_PKEY *key1 = new_key();
    X509 *server1 = issue("kpki-test-server-1", false, KP_EKU_SERVER_AUTH, key1, ca, ca_key);
    write_cert(server1, pki.server1_cert, false);
    write_cert(ca, pki.server1_cert, true); /* a chain file: leaf then CA */
    write_key(key1, pki.server1_key);

    EVP_PKEY *key2 = new_key();
    X509 *server2 = issue("kpki-test-server-2", false, KP_EKU_SERVER_AUTH, key2, ca, ca_key);
    write_cert(server2, pki.server2_cert, false);
    write_key(key2, pki.server2_key);

    EVP_PKEY *client_key = new_key();
    X509 *client = issue("alice", false, KP_EKU_CLIENT_AUTH, client_key, ca, ca_key);
    write_cert(client, pki.client_cert, false);
    write_cert(client, pki.client_chain, false);
    write_cert(ca, pki.client_chain, true);
    write_key(client_key, pki.client_key);

    X509_free(ca);
    X509_free(server1);
    X509_free(server2);
    X509_free(client);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key1);
    EVP_PKEY_free(key2);
    EVP_PKEY_free(client_key);
    signal(SIGPIPE, SIG_IGN); /* the client writes to sockets the server closes */
    return 0;
}

static int remove_pki(void **state)
{
    (void)state;
    test_remove_tree(pki.dir);
    return 0;
}

/* ------------------------------------------------------------------ shared test state */

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    struct kp_http_stream *stream; /* the last stream /stream started */
    int streams_started;
    int on_close_calls;
    bool end_in_on_close; /* on_close ends the stream itself */
} g = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void reset_state(void)
{
    pthread_mutex_lock(&g.mutex);
    g.stream = NULL;
    g.streams_started = 0;
    g.on_close_calls = 0;
    g.end_in_on_close = false;
    pthread_mutex_unlock(&g.mutex);
}

static bool wait_count(const int *counter, int value, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g.mutex);
    while (*counter < value) {
        if (pthread_cond_timedwait(&g.cond, &g.mutex, &deadline) != 0) {
            break;
        }
    }
    bool reached = *counter >= value;
    pthread_mutex_unlock(&g.mutex);
    return reached;
}

static struct kp_http_stream *current_stream(void)
{
    pthread_mutex_lock(&g.mutex);
    struct kp_http_stream *stream = g.stream;
    pthread_mutex_unlock(&g.mutex);
    return stream;
}

static void on_stream_close(void *context)
{
    struct kp_http_stream *stream = context;
    pthread_mutex_lock(&g.mutex);
    g.on_close_calls++;
    bool end = g.end_in_on_close;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.mutex);
    /* Whatever the stream's state, sending now fails. */
    assert_false(kp_http_stream_send(stream, "x", 1));
    if (end) {
        kp_http_stream_end(stream);
    }
}

/* ------------------------------------------------------------------ the handler */

static json_t *maybe_string(const char *text)
{
    return text != NULL ? json_string(text) : json_null();
}

static void echo(struct kp_http_request *request)
{
    json_t *reply = json_object();
    json_object_set_new(reply, "method", json_string(kp_http_method(request)));
    json_object_set_new(reply, "path", json_string(kp_http_path(request)));
    json_object_set_new(reply, "raw_query", json_string(kp_http_raw_query(request)));
    json_t *query = json_object();
    static const char *const names[] = {"a", "b", "c", "watch", "sp", "missing"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_object_set_new(query, names[i], maybe_string(kp_http_query(request, names[i])));
    }
    json_object_set_new(reply, "query", query);
    const char *values[8];
    size_t count = kp_http_header_values(request, "x-test", values, 8);
    json_t *x_test = json_array();
    for (size_t i = 0; i < count; i++) {
        json_array_append_new(x_test, json_string(values[i]));
    }
    json_object_set_new(reply, "x_test", x_test);
    json_object_set_new(reply, "x_test_first", maybe_string(kp_http_header(request, "X-TEST")));
    json_object_set_new(reply, "user_agent", maybe_string(kp_http_header(request, "USER-AGENT")));
    const char *header_names[64];
    const char *header_values[64];
    json_object_set_new(
        reply, "header_count",
        json_integer((json_int_t)kp_http_headers(request, header_names, header_values, 64)));
    size_t body_len = 0;
    const char *body = kp_http_body(request, &body_len);
    assert_non_null(body);
    assert_int_equal(body[body_len], '\0');
    json_object_set_new(reply, "body", json_stringn(body, body_len));
    json_object_set_new(reply, "body_len", json_integer((json_int_t)body_len));
    STACK_OF(X509) *chain = kp_http_peer_chain(request);
    json_t *chain_cns = json_array();
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        char cn[256];
        kp_cert_common_name(sk_X509_value(chain, i), cn, sizeof(cn));
        json_array_append_new(chain_cns, json_string(cn));
    }
    json_object_set_new(reply, "peer_cn",
                        json_array_size(chain_cns) > 0 ? json_incref(json_array_get(chain_cns, 0))
                                                       : json_null());
    json_object_set_new(reply, "chain_cns", chain_cns);
    /* Which provider decoded the leaf's key: the TLS library context's (tls_libctx.c). */
    EVP_PKEY *peer_key = chain != NULL && sk_X509_num(chain) > 0
                             ? X509_get0_pubkey(sk_X509_value(chain, 0))
                             : NULL;
    const OSSL_PROVIDER *provider = peer_key != NULL ? EVP_PKEY_get0_provider(peer_key) : NULL;
    json_object_set_new(reply, "peer_key_provider",
                        provider != NULL ? json_string(OSSL_PROVIDER_get0_name(provider))
                                         : json_null());
    json_object_set_new(reply, "remote", json_string(kp_http_remote(request)));
    char *text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    kp_http_add_header(request, "X-Echo", "yes");
    if (kp_http_header(request, "X-Inject") != NULL) {
        kp_http_add_header(request, "X-Bad", "a\r\nInjected: yes"); /* refused: CR LF */
    }
    kp_http_respond(request, 200, "application/json", text, strlen(text));
    free(text);
}

static void handler(void *context, struct kp_http_request *request)
{
    (void)context;
    const char *path = kp_http_path(request);
    if (strncmp(path, "/echo", 5) == 0) {
        echo(request);
    } else if (strcmp(path, "/status") == 0) {
        int code = atoi(kp_http_query(request, "code"));
        kp_http_respond(request, code, "text/plain", "status\n", 7);
    } else if (strcmp(path, "/big") == 0) {
        /* size bytes of a pattern that shows a lost or repeated byte: 'a' + i % 26 */
        size_t size = strtoul(kp_http_query(request, "size"), NULL, 10);
        char *body = malloc(size + 1);
        assert_non_null(body);
        for (size_t i = 0; i < size; i++)
            body[i] = (char)('a' + i % 26);
        kp_http_respond(request, 200, "text/plain", body, size);
        free(body);
    } else if (strcmp(path, "/noreply") == 0) {
        /* returns without responding: the server answers 500 */
    } else if (strcmp(path, "/stream") == 0) {
        struct kp_http_stream *stream = kp_http_stream_start(request, 200, "application/json");
        assert_non_null(stream);
        kp_http_stream_on_close(stream, on_stream_close, stream);
        pthread_mutex_lock(&g.mutex);
        g.stream = stream;
        g.streams_started++;
        pthread_cond_broadcast(&g.cond);
        pthread_mutex_unlock(&g.mutex);
    } else if (strcmp(path, "/stream-now") == 0) {
        /* A whole stream from the handler itself, on the worker thread. */
        struct kp_http_stream *stream = kp_http_stream_start(request, 200, "text/plain");
        assert_non_null(stream);
        assert_true(kp_http_stream_send(stream, "first,", 6));
        assert_true(kp_http_stream_send(stream, "second", 6));
        kp_http_stream_end(stream);
    } else {
        kp_http_respond(request, 404, "text/plain", "not found\n", 10);
    }
}

/* ------------------------------------------------------------------ servers */

struct fixture {
    struct kp_http_server *server;
    SSL_CTX *ctx;
    int port;
};

static void start_server(struct fixture *fixture, const struct kp_http_limits *limits, int threads)
{
    struct kp_error err;
    memset(fixture, 0, sizeof(*fixture));
    assert_int_equal(kp_tls_server_ctx_new(pki.server1_cert, pki.server1_key, &fixture->ctx, &err),
                     KP_OK);
    struct kp_http_server_config config = {
        .bind_address = "127.0.0.1",
        .port = 0,
        .threads = threads,
        .ssl_ctx = fixture->ctx,
        .handler = handler,
    };
    if (limits != NULL) {
        config.limits = *limits;
    } else {
        kp_http_limits_default(&config.limits);
    }
    enum kp_result result = kp_http_server_start(&config, &fixture->server, &err);
    if (result != KP_OK) {
        fail_msg("server start: %s", err.message);
    }
    fixture->port = kp_http_server_port(fixture->server);
    assert_true(fixture->port > 0);
    reset_state();
}

/* A server with the default limits but for its read and idle timeouts. */
static void start_server_with_timeouts(struct fixture *fixture, int read_timeout_s,
                                       int idle_timeout_s, int threads)
{
    struct kp_http_limits limits;
    kp_http_limits_default(&limits);
    limits.read_timeout_s = read_timeout_s;
    limits.idle_timeout_s = idle_timeout_s;
    start_server(fixture, &limits, threads);
}

static void stop_server(struct fixture *fixture)
{
    kp_http_server_stop(fixture->server);
    SSL_CTX_free(fixture->ctx);
}

/* ------------------------------------------------------------------ the client */

struct client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[65536];
    size_t len;
    size_t pos;
};

struct client_options {
    const char *cert_chain; /* client certificate chain file, or NULL */
    const char *key;
    const char *alpn; /* ALPN wire format, or NULL */
    size_t alpn_len;
    int max_version; /* 0: default */
    bool legacy;     /* security level 0, to be able to offer TLS 1.1 */
    int rcvbuf;      /* the socket's receive buffer; 0: the system's */
    const char *groups;       /* key-exchange groups offered, or NULL (OpenSSL's) */
    const char *ciphers;      /* TLS 1.2 cipher list, or NULL */
    const char *ciphersuites; /* TLS 1.3 suites, or NULL */
    const char *sigalgs;      /* signature algorithms, or NULL */
};

/* rcvbuf: the socket's receive buffer (0: the system's), set before connecting so that the
 * window the server sees is that small. */
static int tcp_connect_rcvbuf(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    struct timeval timeout = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    return fd;
}

static int tcp_connect(int port)
{
    return tcp_connect_rcvbuf(port, 0);
}

static void client_close(struct client *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c);
}

/* Connects and handshakes; NULL when the handshake fails (the reason stays in OpenSSL's error
 * queue for the caller to look at). */
/* The client context for options (the caller frees it): it verifies the server against the
 * test CA and sends exactly the chain file, if any. */
static SSL_CTX *client_ctx_new(const struct client_options *options)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, pki.ca_cert, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN); /* send exactly the chain file */
    if (options->legacy) {
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    }
    if (options->max_version != 0) {
        SSL_CTX_set_max_proto_version(ctx, options->max_version);
    }
    if (options->cert_chain != NULL) {
        assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, options->cert_chain), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, options->key, SSL_FILETYPE_PEM), 1);
    }
    if (options->groups != NULL)
        assert_int_equal(SSL_CTX_set1_groups_list(ctx, options->groups), 1);
    if (options->ciphers != NULL)
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, options->ciphers), 1);
    if (options->ciphersuites != NULL)
        assert_int_equal(SSL_CTX_set_ciphersuites(ctx, options->ciphersuites), 1);
    if (options->sigalgs != NULL)
        assert_int_equal(SSL_CTX_set1_sigalgs_list(ctx, options->sigalgs), 1);
    if (options->alpn != NULL) {
        assert_int_equal(SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)options->alpn,
                                                 (unsigned)options->alpn_len),
                         0);
    }
    return ctx;
}

static struct client *client_open(int port, const struct client_options *options)
{
    static const struct client_options defaults = {0};
    if (options == NULL) {
        options = &defaults;
    }
    struct client *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->fd = tcp_connect_rcvbuf(port, options->rcvbuf);
    c->ctx = client_ctx_new(options);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set1_host(c->ssl, "127.0.0.1");
    ERR_clear_error();
    if (SSL_connect(c->ssl) != 1) {
        client_close(c);
        return NULL;
    }
    return c;
}

static void client_write(struct client *c, const void *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        int n = SSL_write(c->ssl, (const char *)data + done, (int)(len - done));
        assert_true(n > 0);
        done += (size_t)n;
    }
}

static void client_send(struct client *c, const char *text)
{
    client_write(c, text, strlen(text));
}

/* Reads more bytes; false at EOF, error or timeout. */
static bool client_fill(struct client *c)
{
    if (c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == sizeof(c->buf)) {
        return false;
    }
    int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
    if (n <= 0) {
        return false;
    }
    c->len += (size_t)n;
    return true;
}

/* True if the server closed the connection (no more bytes: EOF or reset) within 5 s. */
static bool client_sees_close(struct client *c)
{
    c->pos = c->len = 0;
    char byte;
    int n = SSL_read(c->ssl, &byte, 1);
    if (n > 0) {
        return false;
    }
    int error = SSL_get_error(c->ssl, n);
    /* A receive timeout is SSL_ERROR_SYSCALL with EAGAIN: not a close. */
    return error == SSL_ERROR_ZERO_RETURN ||
           (error == SSL_ERROR_SYSCALL && errno != EAGAIN && errno != EWOULDBLOCK) ||
           error == SSL_ERROR_SSL;
}

/* True if no application data arrives within ms (TLS 1.3 session tickets do not count). */
static bool client_quiet_for(struct client *c, int ms)
{
    struct timeval timeout = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    bool quiet = c->pos == c->len && !client_fill(c);
    struct timeval normal = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &normal, sizeof(normal));
    return quiet && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static char *client_line(struct client *c)
{
    for (;;) {
        char *start = c->buf + c->pos;
        char *end = memchr(start, '\n', c->len - c->pos);
        if (end != NULL) {
            size_t line_len = (size_t)(end - start);
            char *line = malloc(line_len + 1);
            memcpy(line, start, line_len);
            line[line_len] = '\0';
            if (line_len > 0 && line[line_len - 1] == '\r') {
                line[line_len - 1] = '\0';
            }
            c->pos += line_len + 1;
            return line;
        }
        if (!client_fill(c)) {
            return NULL;
        }
    }
}

static bool client_exact(struct client *c, char *out, size_t n)
{
    size_t done = 0;
    while (done < n) {
        if (c->pos == c->len && !client_fill(c)) {
            return false;
        }
        size_t take = c->len - c->pos < n - done ? c->len - c->pos : n - done;
        memcpy(out + done, c->buf + c->pos, take);
        c->pos += take;
        done += take;
    }
    return true;
}

struct response {
    int minor; /* HTTP/1.minor on the status line */
    int status;
    char reason[64];
    char *names[64];
    char *values[64];
    size_t header_count;
    char *body;
    size_t body_len;
};

static void response_free(struct response *r)
{
    for (size_t i = 0; i < r->header_count; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static const char *header_of(const struct response *r, const char *name)
{
    for (size_t i = 0; i < r->header_count; i++) {
        if (strcasecmp(r->names[i], name) == 0) {
            return r->values[i];
        }
    }
    return NULL;
}

static bool read_head(struct client *c, struct response *r)
{
    memset(r, 0, sizeof(*r));
    char *line = client_line(c);
    if (line == NULL) {
        return false;
    }
    int consumed = 0;
    if (sscanf(line, "HTTP/1.%d %d %n", &r->minor, &r->status, &consumed) < 2) {
        free(line);
        return false;
    }
    snprintf(r->reason, sizeof(r->reason), "%s", line + consumed);
    free(line);
    while ((line = client_line(c)) != NULL && line[0] != '\0') {
        char *colon = strchr(line, ':');
        if (colon != NULL && r->header_count < 64) {
            *colon = '\0';
            const char *value = colon + 1;
            value += strspn(value, " ");
            r->names[r->header_count] = strdup(line);
            r->values[r->header_count] = strdup(value);
            r->header_count++;
        }
        free(line);
    }
    bool ok = line != NULL;
    free(line);
    return ok;
}

/* One chunk of a chunked body: *len 0 is the last chunk (trailers consumed). */
static bool read_chunk(struct client *c, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    char *line = client_line(c);
    if (line == NULL) {
        return false;
    }
    size_t size = strtoul(line, NULL, 16);
    free(line);
    if (size == 0) {
        while ((line = client_line(c)) != NULL) {
            bool empty = line[0] == '\0';
            free(line);
            if (empty) {
                return true;
            }
        }
        return false;
    }
    *data = malloc(size + 1);
    if (!client_exact(c, *data, size)) {
        free(*data);
        *data = NULL;
        return false;
    }
    (*data)[size] = '\0';
    *len = size;
    line = client_line(c);
    free(line);
    return line != NULL;
}

static bool read_response(struct client *c, struct response *r, bool head)
{
    if (!read_head(c, r)) {
        return false;
    }
    const char *te = header_of(r, "Transfer-Encoding");
    const char *cl = header_of(r, "Content-Length");
    if (head || r->status == 204 || r->status == 304) {
        r->body = strdup("");
        return true;
    }
    if (te != NULL && strcasecmp(te, "chunked") == 0) {
        r->body = strdup("");
        for (;;) {
            char *data = NULL;
            size_t len = 0;
            if (!read_chunk(c, &data, &len)) {
                return false;
            }
            if (len == 0) {
                return true;
            }
            r->body = realloc(r->body, r->body_len + len + 1);
            memcpy(r->body + r->body_len, data, len);
            r->body_len += len;
            r->body[r->body_len] = '\0';
            free(data);
        }
    }
    if (cl != NULL) {
        r->body_len = strtoul(cl, NULL, 10);
        r->body = malloc(r->body_len + 1);
        r->body[r->body_len] = '\0';
        return client_exact(c, r->body, r->body_len);
    }
    /* Until the connection closes. */
    r->body = strdup("");
    for (;;) {
        if (c->pos == c->len && !client_fill(c)) {
            return true;
        }
        size_t take = c->len - c->pos;
        r->body = realloc(r->body, r->body_len + take + 1);
        memcpy(r->body + r->body_len, c->buf + c->pos, take);
        r->body_len += take;
        r->body[r->body_len] = '\0';
        c->pos = c->len;
    }
}

static void must_request(struct client *c, const char *text, struct response *r)
{
    client_send(c, text);
    assert_true(read_response(c, r, strncmp(text, "HEAD ", 5) == 0));
}

static json_t *body_json(const struct response *r)
{
    json_error_t error;
    json_t *json = json_loadb(r->body, r->body_len, JSON_ALLOW_NUL, &error);
    if (json == NULL) {
        fail_msg("not JSON (%s): %.*s", error.text, (int)r->body_len, r->body);
    }
    return json;
}

static const char *jstr(json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ------------------------------------------------------------------ tests: requests */

/* POSTs a chunked body (the chunks as they go on the wire) to /echo; the echo, a 200's. */
static json_t *post_chunked_echo(struct client *c, const char *chunks)
{
    client_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    client_send(c, chunks);
    struct response r;
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 200);
    json_t *echo = body_json(&r);
    response_free(&r);
    return echo;
}

static void test_get_and_post(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 2);
    struct client *c = client_open(f.port, NULL);
    assert_non_null(c);
    struct response r;
    must_request(c,
                 "GET /echo/a%20b/%2Fc?a=1&b=x%20y+z&c=&watch&sp=%2B HTTP/1.1\r\n"
                 "Host: 127.0.0.1\r\nX-Test: one\r\nUser-Agent: kpki-test\r\nx-test: two\r\n"
                 "X-Inject: 1\r\n\r\n",
                 &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.reason, "OK");
    assert_string_equal(header_of(&r, "Content-Type"), "application/json");
    assert_string_equal(header_of(&r, "X-Echo"), "yes");
    assert_null(header_of(&r, "X-Bad"));
    assert_null(header_of(&r, "Injected"));
    assert_int_equal(strtoul(header_of(&r, "Content-Length"), NULL, 10), r.body_len);
    json_t *echo = body_json(&r);
    assert_string_equal(jstr(echo, "method"), "GET");
    assert_string_equal(jstr(echo, "path"), "/echo/a b//c");
    assert_string_equal(jstr(echo, "raw_query"), "a=1&b=x%20y+z&c=&watch&sp=%2B");
    json_t *query = json_object_get(echo, "query");
    assert_string_equal(jstr(query, "a"), "1");
    assert_string_equal(jstr(query, "b"), "x y z");
    assert_string_equal(jstr(query, "c"), "");
    assert_string_equal(jstr(query, "watch"), "");
    assert_string_equal(jstr(query, "sp"), "+");
    assert_true(json_is_null(json_object_get(query, "missing")));
    json_t *x_test = json_object_get(echo, "x_test");
    assert_int_equal(json_array_size(x_test), 2);
    assert_string_equal(json_string_value(json_array_get(x_test, 0)), "one");
    assert_string_equal(json_string_value(json_array_get(x_test, 1)), "two");
    assert_string_equal(jstr(echo, "x_test_first"), "one");
    assert_string_equal(jstr(echo, "user_agent"), "kpki-test");
    assert_int_equal(json_integer_value(json_object_get(echo, "header_count")), 5);
    assert_int_equal(json_integer_value(json_object_get(echo, "body_len")), 0);
    assert_true(json_is_null(json_object_get(echo, "peer_cn")));
    assert_int_equal(strncmp(jstr(echo, "remote"), "127.0.0.1:", 10), 0);
    json_decref(echo);
    response_free(&r);

    /* A body with a NUL in it, and every method the API server needs. */
    client_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                   "Content-Length: 11\r\n\r\n");
    client_write(c, "hello\0world", 11);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 200);
    echo = body_json(&r);
    assert_string_equal(jstr(echo, "method"), "POST");
    assert_int_equal(json_integer_value(json_object_get(echo, "body_len")), 11);
    assert_int_equal(json_string_length(json_object_get(echo, "body")), 11);
    assert_memory_equal(jstr(echo, "body"), "hello\0world", 11);
    json_decref(echo);
    response_free(&r);

    static const char *const methods[] = {"PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "%s /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
                 methods[i]);
        must_request(c, text, &r);
        assert_int_equal(r.status, 200);
        echo = body_json(&r);
        assert_string_equal(jstr(echo, "method"), methods[i]);
        json_decref(echo);
        response_free(&r);
    }

    /* A chunked request body is de-chunked. */
    echo = post_chunked_echo(c, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_string_equal(jstr(echo, "body"), "hello world");
    json_decref(echo);

    /* Chunk extensions and trailer fields are read past: the trailer is not a header. */
    echo = post_chunked_echo(c, "5;name=value\r\nhello\r\n0\r\nX-Test: trailer\r\n\r\n");
    assert_string_equal(jstr(echo, "body"), "hello");
    assert_int_equal(json_array_size(json_object_get(echo, "x_test")), 0);
    assert_int_equal(json_integer_value(json_object_get(echo, "header_count")), 2);
    json_decref(echo);

    /* HTTP/1.x past 1.1 is answered as HTTP/1.1 (RFC 9110 §6.2). */
    client_send(c, "GET /echo HTTP/1.9\r\nHost: x\r\n\r\n");
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.minor, 1);
    response_free(&r);

    client_close(c);
    stop_server(&f);
}

static void test_keep_alive_and_close(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 1);
    struct client *c = client_open(f.port, NULL);
    assert_non_null(c);
    struct response r;
    char remote[64] = "";
    for (int i = 0; i < 3; i++) {
        must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        assert_null(header_of(&r, "Connection"));
        json_t *echo = body_json(&r);
        if (i == 0) {
            snprintf(remote, sizeof(remote), "%s", jstr(echo, "remote"));
        } else {
            assert_string_equal(jstr(echo, "remote"), remote); /* the same connection */
        }
        json_decref(echo);
        response_free(&r);
    }
    /* Pipelined: two requests in one write, two answers in order. */
    client_send(c, "GET /status?code=201 HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /status?code=202 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 201);
    response_free(&r);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 202);
    response_free(&r);
    /* HEAD: the length the body would have, no body (the next response parses). */
    must_request(c, "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_true(strtoul(header_of(&r, "Content-Length"), NULL, 10) > 0);
    response_free(&r);
    must_request(c, "GET /status?code=204 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 204);
    assert_null(header_of(&r, "Content-Length"));
    response_free(&r);
    /* Connection: close is honoured. */
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header_of(&r, "Connection"), "close");
    response_free(&r);
    assert_true(client_sees_close(c));
    client_close(c);

    /* HTTP/1.0 without keep-alive: closed after the response; with it: kept. */
    c = client_open(f.port, NULL);
    must_request(c, "GET /echo HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(client_sees_close(c));
    client_close(c);
    c = client_open(f.port, NULL);
    must_request(c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    must_request(c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(c);
    stop_server(&f);
}

static void test_statuses(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *reason;
    } rows[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {409, "Conflict"},
        {410, "Gone"},
        {413, "Request Entity Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Entity"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    struct fixture f;
    start_server(&f, NULL, 1);
    struct client *c = client_open(f.port, NULL);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "GET /status?code=%d HTTP/1.1\r\nHost: x\r\n\r\n",
                 rows[i].code);
        struct response r;
        must_request(c, text, &r);
        assert_int_equal(r.status, rows[i].code);
        assert_string_equal(r.reason, rows[i].reason);
        assert_string_equal(r.body, "status\n");
        response_free(&r);
    }
    /* A handler that does not respond: 500 from the server. */
    struct response r;
    must_request(c, "GET /noreply HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 500);
    response_free(&r);
    /* Still usable. */
    must_request(c, "GET /status?code=200 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(c);
    stop_server(&f);
}

/* Each request on a fresh connection: what the client gets back, and whether the connection
 * is closed after. */
static void test_refused_requests(void **state)
{
    (void)state;
    static const struct {
        const char *request;
        int status; /* 0: the connection is closed without an answer */
    } rows[] = {
        /* A NUL byte cannot be carried in a C string faithfully. */
        {"GET /echo?a=%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /ec%00ho HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        /* Framing we will not guess at (RFC 9112 §6). */
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
         "0\r\n\r\n",
         400},
        {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        /* Methods the server does not implement, versions it does not speak, bad syntax. */
        {"TRACE /echo HTTP/1.1\r\nHost: x\r\n\r\n", 501},
        {"BREW /echo HTTP/1.1\r\nHost: x\r\n\r\n", 501},
        {"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 501},
        {"GET /echo HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET /echo HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400},
        {"GET /echo HTTP/1.1\r\nBad Header: x\r\n\r\n", 400},
        {"GET echo HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417},
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"this is not http\r\n\r\n", 400},
        {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
    };
    struct fixture f;
    start_server(&f, NULL, 1);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct client *c = client_open(f.port, NULL);
        assert_non_null(c);
        client_send(c, rows[i].request);
        struct response r;
        bool answered = read_response(c, &r, false);
        if (rows[i].status == 0) {
            assert_false(answered);
        } else {
            if (!answered || r.status != rows[i].status) {
                fail_msg("row %zu (%s): got %d", i, rows[i].request, answered ? r.status : -1);
            }
            assert_true(client_sees_close(c));
        }
        response_free(&r);
        client_close(c);
    }
    /* A 501 names the method it refuses and the ones served, known to the parser or not. */
    static const char *const unserved[] = {"BREW", "TRACE"};
    for (size_t i = 0; i < 2; i++) {
        char line[64];
        snprintf(line, sizeof(line), "%s /echo HTTP/1.1\r\nHost: x\r\n\r\n", unserved[i]);
        struct client *c = client_open(f.port, NULL);
        client_send(c, line);
        struct response r;
        assert_true(read_response(c, &r, false));
        assert_int_equal(r.status, 501);
        char want[64];
        snprintf(want, sizeof(want), "the method %s is not implemented", unserved[i]);
        assert_non_null(strstr(r.body, want));
        assert_non_null(strstr(r.body, "GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS"));
        response_free(&r);
        client_close(c);
    }
    stop_server(&f);
}

/* ------------------------------------------------------------------ tests: TLS */

static void test_alpn(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 1);
    /* kubectl offers h2 first: it gets http/1.1. */
    struct client_options options = {.alpn = "\x02h2\x08http/1.1", .alpn_len = 12};
    struct client *c = client_open(f.port, &options);
    assert_non_null(c);
    const unsigned char *selected = NULL;
    unsigned selected_len = 0;
    SSL_get0_alpn_selected(c->ssl, &selected, &selected_len);
    assert_int_equal(selected_len, 8);
    assert_memory_equal(selected, "http/1.1", 8);
    struct response r;
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(c);

    /* No ALPN at all: HTTP/1.1 without a selected protocol. */
    c = client_open(f.port, NULL);
    assert_non_null(c);
    SSL_get0_alpn_selected(c->ssl, &selected, &selected_len);
    assert_int_equal(selected_len, 0);
    client_close(c);

    /* h2 only: no protocol in common, a fatal alert (RFC 7301 §3.2). */
    struct client_options h2_only = {.alpn = "\x02h2", .alpn_len = 3};
    assert_null(client_open(f.port, &h2_only));
    assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()),
                     SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
    ERR_clear_error();
    stop_server(&f);
}

static void test_client_certificate(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 2);
    struct client_options options = {.cert_chain = pki.client_chain, .key = pki.client_key};
    struct client *c = client_open(f.port, &options);
    assert_non_null(c);
    struct response r;
    for (int i = 0; i < 2; i++) { /* the chain is kept for the whole connection */
        must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        json_t *echo = body_json(&r);
        assert_string_equal(jstr(echo, "peer_cn"), "alice");
        assert_string_equal(jstr(echo, "peer_key_provider"), "kpki-tls");
        json_t *chain = json_object_get(echo, "chain_cns");
        assert_int_equal(json_array_size(chain), 2);
        assert_string_equal(json_string_value(json_array_get(chain, 0)), "alice");
        assert_string_equal(json_string_value(json_array_get(chain, 1)), "kpki-test-ca");
        json_decref(echo);
        response_free(&r);
    }
    client_close(c);

    /* Only the leaf. */
    struct client_options leaf_only = {.cert_chain = pki.client_cert, .key = pki.client_key};
    c = client_open(f.port, &leaf_only);
    assert_non_null(c);
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    json_t *echo = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(echo, "chain_cns")), 1);
    json_decref(echo);
    response_free(&r);
    client_close(c);

    /* A certificate is requested, never required: none -> NULL chain. Over TLS 1.2 too. */
    struct client_options tls12 = {.max_version = TLS1_2_VERSION};
    c = client_open(f.port, &tls12);
    assert_non_null(c);
    assert_int_equal(SSL_version(c->ssl), TLS1_2_VERSION);
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    echo = body_json(&r);
    assert_true(json_is_null(json_object_get(echo, "peer_cn")));
    json_decref(echo);
    response_free(&r);
    client_close(c);
    stop_server(&f);
}

static void test_old_tls_refused(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 1);
    static const int versions[] = {TLS1_1_VERSION, TLS1_VERSION};
    for (size_t i = 0; i < 2; i++) {
        struct client_options old = {.max_version = versions[i], .legacy = true};
        ERR_clear_error();
        assert_null(client_open(f.port, &old));
        /* The server's protocol_version alert, not a client-side refusal. */
        assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
        ERR_clear_error();
    }
    struct client *c = client_open(f.port, NULL);
    assert_non_null(c);
    assert_int_equal(SSL_version(c->ssl), TLS1_3_VERSION);
    client_close(c);
    stop_server(&f);
}

static void test_garbage_instead_of_tls(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 1);
    static const struct {
        const char *bytes;
        size_t len;
    } garbage[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27},   /* plain HTTP on the TLS port */
        {"\x16\x03\x01\xff\xff\x01\x00\x00\x00", 9}, /* a ClientHello record that lies */
        {"\x00\x01\x02\x03\x04\x05\x06\x07\xff\xfe", 10},
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        int fd = tcp_connect(f.port);
        assert_int_equal(send(fd, garbage[i].bytes, garbage[i].len, MSG_NOSIGNAL),
                         (ssize_t)garbage[i].len);
        /* The server answers with at most a TLS alert, never HTTP, and closes. */
        char buf[512];
        ssize_t total = 0, n;
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
            assert_true(buf[0] == 0x15); /* alert record */
            total += n;
        }
        assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
        assert_true(total < 64);
        close(fd);
    }
    /* The server keeps serving. */
    struct client *c = client_open(f.port, NULL);
    assert_non_null(c);
    struct response r;
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(c);
    stop_server(&f);
}

/* Sends what the client's SSL wrote into its memory BIO in three TCP segments, 50 ms apart:
 * 3 bytes (part of the first record's header), up to the middle (inside a record's body),
 * the rest. */
static void send_split(int fd, BIO *written)
{
    char *data = NULL;
    long len = BIO_get_mem_data(written, &data);
    if (len <= 0) {
        return;
    }
    size_t cuts[] = {len < 3 ? (size_t)len : 3, (size_t)len / 2, (size_t)len};
    size_t sent = 0;
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        if (cuts[i] <= sent) {
            continue;
        }
        if (sent > 0) {
            usleep(50 * 1000);
        }
        assert_int_equal(send(fd, data + sent, cuts[i] - sent, MSG_NOSIGNAL),
                         (ssize_t)(cuts[i] - sent));
        sent = cuts[i];
    }
    (void)BIO_reset(written);
}

/* Runs one SSL call to completion, sending each flight the client writes split in three. */
static int split_until_done(SSL *ssl, int fd, BIO *written, int (*call)(SSL *, void *), void *arg)
{
    for (int rounds = 0; rounds < 100; rounds++) {
        int ret = call(ssl, arg);
        send_split(fd, written);
        if (ret > 0) {
            return ret;
        }
        int error = SSL_get_error(ssl, ret);
        if (error != SSL_ERROR_WANT_READ) {
            return ret;
        }
        struct pollfd poll_fd = {.fd = fd, .events = POLLIN};
        if (poll(&poll_fd, 1, 5000) != 1) {
            return -1; /* the server never answered */
        }
    }
    return -1;
}

/* A client SSL that reads the socket fd (made non-blocking) and writes into a memory BIO,
 * which the test sends as it likes; *written is owned by the SSL. */
static SSL *client_over_memory(SSL_CTX *ctx, int fd, BIO **written)
{
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    BIO *in = BIO_new_socket(fd, BIO_NOCLOSE);
    *written = BIO_new(BIO_s_mem());
    assert_true(in != NULL && *written != NULL);
    SSL_set_bio(ssl, in, *written); /* ssl owns both */
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    return ssl;
}

static int call_connect(SSL *ssl, void *arg)
{
    (void)arg;
    return SSL_connect(ssl);
}

static int call_write(SSL *ssl, void *arg)
{
    return SSL_write(ssl, arg, (int)strlen(arg));
}

static int call_read(SSL *ssl, void *arg)
{
    return SSL_read(ssl, arg, 4096);
}

/* Every flight the client sends (the ClientHello, the second ClientHello after a
 * HelloRetryRequest, its second flight, the request) arrives in three segments: the server,
 * which skips a read(2) while the socket is known to be empty (conn.c, watch_reads), must wake
 * for the rest of a record header and of a record body. The first segment is only part of the
 * ClientHello, which TCP_DEFER_ACCEPT hands to accept(2) as it is. */
static void test_split_records(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 1);
    /* The server takes P-256 only and the client's key share is X25519: a HelloRetryRequest. */
    assert_int_equal(SSL_CTX_set1_groups_list(f.ctx, "P-256"), 1);
    int fd = tcp_connect(f.port);
    int on = 1;
    assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)), 0);
    struct client_options options = {
        .cert_chain = pki.client_cert, .key = pki.client_key, .groups = "X25519:P-256"};
    SSL_CTX *ctx = client_ctx_new(&options);
    BIO *written = NULL;
    SSL *ssl = client_over_memory(ctx, fd, &written);

    assert_int_equal(split_until_done(ssl, fd, written, call_connect, NULL), 1);
    assert_string_equal(SSL_group_to_name(ssl, SSL_get_negotiated_group(ssl)), "secp256r1");
    char request[] = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_true(split_until_done(ssl, fd, written, call_write, request) > 0);
    char answer[4096];
    int n = split_until_done(ssl, fd, written, call_read, answer);
    assert_true(n > 12);
    assert_memory_equal(answer, "HTTP/1.1 200", 12);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    stop_server(&f);
}

/* A client that half-closes (FIN) right after its last bytes raises no edge after them: the
 * server must read on to the EOF (EV_CLOSED, rx_hup) and close at once, not wait for a
 * deadline (30 s here, longer than the client waits). The client corks its socket so that the
 * bytes and the FIN arrive in one segment, hence in one edge. */
static void test_half_close(void **state)
{
    (void)state;
    struct fixture f;
    start_server_with_timeouts(&f, 30, 30, 1);

    /* A request, then the FIN: the answer, then the close. */
    int on = 1;
    struct client *c = client_open(f.port, NULL);
    assert_non_null(c);
    assert_int_equal(setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)), 0);
    client_send(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
    struct response r;
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(client_sees_close(c));
    client_close(c);

    /* The ClientHello, then the FIN: the server's flight, then the close. */
    int fd = tcp_connect(f.port);
    struct client_options options = {.cert_chain = pki.client_cert, .key = pki.client_key};
    SSL_CTX *ctx = client_ctx_new(&options);
    BIO *written = NULL;
    SSL *ssl = client_over_memory(ctx, fd, &written);
    assert_int_equal(SSL_connect(ssl), -1); /* the ClientHello is in `written` */
    char *hello = NULL;
    long hello_len = BIO_get_mem_data(written, &hello);
    assert_true(hello_len > 0);
    assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)), 0);
    assert_int_equal(send(fd, hello, (size_t)hello_len, MSG_NOSIGNAL), (ssize_t)hello_len);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    int flags = fcntl(fd, F_GETFL);
    assert_int_equal(fcntl(fd, F_SETFL, flags & ~O_NONBLOCK), 0); /* SO_RCVTIMEO: 5 s */
    char buf[4096];
    ssize_t got, total = 0;
    while ((got = recv(fd, buf, sizeof(buf), 0)) > 0) {
        total += got;
    }
    assert_true(total > 0);                                    /* the server's flight */
    assert_true(got == 0 || (got < 0 && errno == ECONNRESET)); /* not EAGAIN: a timeout */
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    stop_server(&f);
}

/* The listening socket of the server on `port` in this process, found by its address. */
static int listener_of(int port)
{
    DIR *dir = opendir("/proc/self/fd");
    assert_non_null(dir);
    int found = -1;
    struct dirent *entry;
    while (found < 0 && (entry = readdir(dir)) != NULL) {
        int fd = atoi(entry->d_name);
        struct sockaddr_in addr;
        socklen_t len = sizeof(addr);
        int listening = 0;
        socklen_t opt_len = sizeof(listening);
        if (entry->d_name[0] != '.' && getsockname(fd, (struct sockaddr *)&addr, &len) == 0 &&
            addr.sin_family == AF_INET && ntohs(addr.sin_port) == port &&
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &opt_len) == 0 && listening) {
            found = fd;
        }
    }
    closedir(dir);
    return found;
}

/* The server's listener defers accept(2) until the client's first bytes (docs/net.md). */
static void test_listener_defers_accept(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 2);
    int fd = listener_of(f.port);
    assert_true(fd >= 0);
    int defer = 0;
    socklen_t len = sizeof(defer);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len), 0);
    assert_true(defer > 0);
    stop_server(&f);
}

static void test_ssl_ctx_swap(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 2);
    struct client *old = client_open(f.port, NULL);
    assert_non_null(old);
    char cn[128];
    X509 *peer = SSL_get1_peer_certificate(old->ssl);
    kp_cert_common_name(peer, cn, sizeof(cn));
    X509_free(peer);
    assert_string_equal(cn, "kpki-test-server-1");

    SSL_CTX *second = NULL;
    struct kp_error err;
    assert_int_equal(kp_tls_server_ctx_new(pki.server2_cert, pki.server2_key, &second, &err),
                     KP_OK);
    kp_http_server_set_ssl_ctx(f.server, second);
    SSL_CTX_free(second); /* the server holds its own reference */

    for (int i = 0; i < 4; i++) { /* whichever worker takes it */
        struct client *fresh = client_open(f.port, NULL);
        assert_non_null(fresh);
        peer = SSL_get1_peer_certificate(fresh->ssl);
        kp_cert_common_name(peer, cn, sizeof(cn));
        X509_free(peer);
        assert_string_equal(cn, "kpki-test-server-2");
        struct response r;
        must_request(fresh, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        response_free(&r);
        client_close(fresh);
    }
    /* The old connection keeps its context and keeps working. */
    struct response r;
    must_request(old, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(old);
    /* The first context was released by the swap; the server still runs on the second. */
    SSL_CTX_free(f.ctx);
    f.ctx = NULL;
    kp_http_server_stop(f.server);
}

/* Responses the socket cannot take at once: a client with a tiny receive window pipelines many
 * requests for bodies of up to a TLS record and reads nothing until they are all answered, so
 * the server's immediate write (write_now) meets a full socket and leaves the rest to
 * bufferevent_openssl. Every answer must still arrive whole, in order, byte for byte. */
static void test_pipelined_backpressure(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 1);
    struct client_options options = {.rcvbuf = 4096};
    struct client *c = client_open(f.port, &options);
    assert_non_null(c);
    /* 6.3 MB of answers: more than a socket send buffer holds (4 MiB at most, tcp_wmem) while
     * the client's window is shut. */
    enum { REQUESTS = 400 };
    char text[REQUESTS * 64];
    size_t used = 0;
    for (int i = 0; i < REQUESTS; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used,
                                 "GET /big?size=%d HTTP/1.1\r\nHost: x\r\n\r\n",
                                 16000 - (i % 8) * 37);
    client_write(c, text, used);
    usleep(200 * 1000); /* the server fills the window and waits for it */
    for (int i = 0; i < REQUESTS; i++) {
        struct response r;
        assert_true(read_response(c, &r, false));
        assert_int_equal(r.status, 200);
        size_t size = (size_t)(16000 - (i % 8) * 37);
        assert_int_equal(r.body_len, size);
        for (size_t k = 0; k < size; k++)
            if (r.body[k] != (char)('a' + k % 26))
                fail_msg("answer %d: byte %zu is '%c'", i, k, r.body[k]);
        response_free(&r);
    }
    client_close(c);
    stop_server(&f);
}

/* Two connections from one client context that keeps sessions, the second offering the first's
 * session (a request on the first reads a TLS 1.3 ticket, which arrives after the handshake).
 * Whether the second resumed; the client chain must be there either way. */
static bool second_connection_resumes(int port, int version)
{
    struct client_options options = {.cert_chain = pki.client_chain, .key = pki.client_key,
                                      .max_version = version};
    struct client *first = client_open(port, &options);
    assert_non_null(first);
    struct response r;
    must_request(first, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    response_free(&r);
    SSL_SESSION *session = SSL_get1_session(first->ssl);
    assert_non_null(session);
    (void)SSL_shutdown(first->ssl); /* without close_notify the session would be unresumable */
    client_close(first);

    struct client *second = calloc(1, sizeof(*second));
    assert_non_null(second);
    second->fd = tcp_connect(port);
    second->ctx = client_ctx_new(&options); /* a new context: no session of its own */
    second->ssl = SSL_new(second->ctx);
    SSL_set_fd(second->ssl, second->fd);
    assert_int_equal(SSL_set_session(second->ssl, session), 1);
    assert_int_equal(SSL_connect(second->ssl), 1);
    bool resumed = SSL_session_reused(second->ssl) == 1;
    must_request(second, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    json_t *echo = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(echo, "chain_cns")), 2);
    json_decref(echo);
    response_free(&r);
    client_close(second);
    SSL_SESSION_free(session);
    return resumed;
}

/* No resumption by default (client-go never resumes); with a cache, both versions resume and
 * a resumed connection still carries the whole client chain. */
static void test_session_resumption(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 1);
    assert_false(second_connection_resumes(f.port, TLS1_2_VERSION));
    assert_false(second_connection_resumes(f.port, TLS1_3_VERSION));
    SSL_CTX *resuming = NULL;
    struct kp_error err;
    assert_int_equal(kp_tls_server_ctx_new(pki.server1_cert, pki.server1_key, &resuming, &err),
                     KP_OK);
    kp_tls_server_ctx_set_resumption(resuming, 8);
    kp_http_server_set_ssl_ctx(f.server, resuming);
    SSL_CTX_free(resuming);
    assert_true(second_connection_resumes(f.port, TLS1_2_VERSION));
    assert_true(second_connection_resumes(f.port, TLS1_3_VERSION));
    SSL_CTX_free(f.ctx);
    f.ctx = NULL;
    kp_http_server_stop(f.server);
}

static void test_tls_ctx_errors(void **state)
{
    (void)state;
    SSL_CTX *ctx = NULL;
    struct kp_error err;
    char missing[700];
    test_path(missing, sizeof(missing), pki.dir, "absent.crt");
    assert_int_equal(kp_tls_server_ctx_new(missing, pki.server1_key, &ctx, &err), KP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "absent.crt"));
    assert_null(ctx);
    /* The key of another certificate. */
    assert_int_equal(kp_tls_server_ctx_new(pki.server1_cert, pki.server2_key, &ctx, &err),
                     KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "does not match"));
    /* A key file that is a certificate. */
    assert_int_equal(kp_tls_server_ctx_new(pki.server1_cert, pki.server1_cert, &ctx, &err),
                     KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "private key"));
    /* A certificate file that is a key. */
    assert_int_equal(kp_tls_server_ctx_new(pki.server1_key, pki.server1_key, &ctx, &err),
                     KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "certificate chain"));

    /* Server start errors. */
    assert_int_equal(kp_tls_server_ctx_new(pki.server1_cert, pki.server1_key, &ctx, &err), KP_OK);
    struct kp_http_server_config config = {
        .bind_address = "not-an-address", .ssl_ctx = ctx, .handler = handler, .threads = 1};
    struct kp_http_server *server = NULL;
    assert_int_equal(kp_http_server_start(&config, &server, &err), KP_ERR_INVALID);
    assert_null(server);
    config.bind_address = "127.0.0.1";
    assert_int_equal(kp_http_server_start(&config, &server, &err), KP_OK);
    struct kp_http_server *second = NULL;
    config.port = kp_http_server_port(server);
    /* The port is taken by another server (SO_REUSEPORT does not make that work... for a
     * different process; within one process the kernel allows it, so use a non-reuseport
     * socket to hold a port instead). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd, (struct sockaddr *)&addr, &len);
    config.port = ntohs(addr.sin_port);
    assert_int_equal(kp_http_server_start(&config, &second, &err), KP_ERR_IO);
    assert_non_null(strstr(err.message, "in use"));
    assert_null(second);
    close(fd);
    kp_http_server_stop(server);
    SSL_CTX_free(ctx);
}

/* What the servers' filtered library context (tls_libctx.c) must keep: every key exchange
 * group, cipher suite and client key type a TLS 1.2 or 1.3 client may pick completes a
 * handshake with a client certificate, and the server decodes the client's key. */
/* A key of OpenSSL's type name (RSA ones 2048 bits), or NULL. */
static EVP_PKEY *any_key(const char *type)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1 &&
        (strncmp(type, "RSA", 3) != 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) == 1))
        EVP_PKEY_generate(ctx, &key);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static void test_tls_algorithms(void **state)
{
    (void)state;
    const struct {
        const char *row;
        const char *key_type; /* the client key: "EC" (P-256), "P-384", or an OpenSSL name */
        int max_version;
        const char *groups, *ciphers, *ciphersuites, *sigalgs;
        const char *want_cipher; /* the suite negotiated */
    } rows[] = {
        {"TLS 1.3 X25519 AES-128-GCM", "EC", 0, "X25519", NULL, "TLS_AES_128_GCM_SHA256", NULL,
         "TLS_AES_128_GCM_SHA256"},
        {"TLS 1.3 X448 ChaCha20", "EC", 0, "X448", NULL, "TLS_CHACHA20_POLY1305_SHA256", NULL,
         "TLS_CHACHA20_POLY1305_SHA256"},
        {"TLS 1.3 P-256 AES-256-GCM", "EC", 0, "P-256", NULL, "TLS_AES_256_GCM_SHA384", NULL,
         "TLS_AES_256_GCM_SHA384"},
        {"TLS 1.3 OpenSSL's client order: the server's AES-128-GCM", "EC", 0, NULL, NULL,
         "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256", NULL,
         "TLS_AES_128_GCM_SHA256"},
        {"TLS 1.3 ChaCha20 first: ChaCha20", "EC", 0, NULL, NULL,
         "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256", NULL,
         "TLS_CHACHA20_POLY1305_SHA256"},
        {"TLS 1.3 P-384", "P-384", 0, "P-384", NULL, NULL, NULL, NULL},
        {"TLS 1.3 P-521", "EC", 0, "P-521", NULL, NULL, NULL, NULL},
        {"TLS 1.3 ffdhe2048", "EC", 0, "ffdhe2048", NULL, NULL, NULL, NULL},
        {"TLS 1.3 RSA client, rsa_pss_rsae", "RSA", 0, NULL, NULL, NULL, NULL, NULL},
        {"TLS 1.3 RSA-PSS client key, rsa_pss_pss", "RSA-PSS", 0, NULL, NULL, NULL, NULL, NULL},
        {"TLS 1.3 Ed25519 client", "ED25519", 0, NULL, NULL, NULL, NULL, NULL},
        {"TLS 1.3 Ed448 client", "ED448", 0, NULL, NULL, NULL, NULL, NULL},
        {"TLS 1.2 ECDHE-ECDSA-AES128-GCM", "EC", TLS1_2_VERSION, NULL,
         "ECDHE-ECDSA-AES128-GCM-SHA256", NULL, NULL, "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {"TLS 1.2 ECDHE-ECDSA-AES256-GCM, P-384 client", "P-384", TLS1_2_VERSION, NULL,
         "ECDHE-ECDSA-AES256-GCM-SHA384", NULL, NULL, "ECDHE-ECDSA-AES256-GCM-SHA384"},
        {"TLS 1.2 ECDHE-ECDSA-CHACHA20", "EC", TLS1_2_VERSION, NULL,
         "ECDHE-ECDSA-CHACHA20-POLY1305", NULL, NULL, "ECDHE-ECDSA-CHACHA20-POLY1305"},
        {"TLS 1.2 ChaCha20 first: ChaCha20", "EC", TLS1_2_VERSION, NULL,
         "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256", NULL, NULL,
         "ECDHE-ECDSA-CHACHA20-POLY1305"},
        {"TLS 1.2 AES-256-GCM first: the server's AES-128-GCM", "EC", TLS1_2_VERSION, NULL,
         "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256", NULL, NULL,
         "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {"TLS 1.2 RSA client, PKCS#1 v1.5", "RSA", TLS1_2_VERSION, NULL, NULL, NULL,
         "RSA+SHA256:ECDSA+SHA256", NULL},
        {"TLS 1.2 RSA client, rsa_pss_rsae", "RSA", TLS1_2_VERSION, NULL, NULL, NULL,
         "rsa_pss_rsae_sha256:ECDSA+SHA256", NULL},
        {"TLS 1.2 Ed25519 client", "ED25519", TLS1_2_VERSION, NULL, NULL, NULL, NULL, NULL},
    };
    struct fixture f;
    start_server(&f, NULL, 1);
    BIO *ca_bio = BIO_new_file(pki.ca_cert, "r");
    assert_non_null(ca_bio);
    X509 *ca = PEM_read_bio_X509(ca_bio, NULL, NULL, NULL);
    BIO_free(ca_bio);
    EVP_PKEY *ca_key = NULL;
    struct kp_error err;
    assert_int_equal(kp_key_from_file(pki.ca_key, &ca_key, &err), KP_OK);
    char cert_path[760], key_path[760];
    test_path(cert_path, sizeof(cert_path), pki.dir, "algorithms.crt");
    test_path(key_path, sizeof(key_path), pki.dir, "algorithms.key");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        EVP_PKEY *key =
            strcmp(rows[i].key_type, "EC") == 0      ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
            : strcmp(rows[i].key_type, "P-384") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")
                                                     : any_key(rows[i].key_type);
        if (key == NULL)
            fail_msg("%s: cannot make a %s key", rows[i].row, rows[i].key_type);
        X509 *cert = issue("bob", false, KP_EKU_CLIENT_AUTH, key, ca, ca_key);
        write_cert(cert, cert_path, false);
        BIO *key_bio = BIO_new_file(key_path, "w");
        assert_non_null(key_bio);
        assert_int_equal(PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL), 1);
        BIO_free(key_bio);
        struct client_options options = {
            .cert_chain = cert_path,
            .key = key_path,
            .max_version = rows[i].max_version,
            .groups = rows[i].groups,
            .ciphers = rows[i].ciphers,
            .ciphersuites = rows[i].ciphersuites,
            .sigalgs = rows[i].sigalgs,
        };
        struct client *c = client_open(f.port, &options);
        if (c == NULL)
            fail_msg("%s: the handshake failed", rows[i].row);
        assert_int_equal(SSL_version(c->ssl),
                         rows[i].max_version ? rows[i].max_version : TLS1_3_VERSION);
        if (rows[i].want_cipher != NULL)
            assert_string_equal(SSL_get_cipher_name(c->ssl), rows[i].want_cipher);
        struct response r;
        must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        json_t *echo = body_json(&r);
        if (strcmp(jstr(echo, "peer_cn"), "bob") != 0 ||
            strcmp(jstr(echo, "peer_key_provider"), "kpki-tls") != 0)
            fail_msg("%s: the server saw %s", rows[i].row, r.body);
        json_decref(echo);
        response_free(&r);
        client_close(c);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    stop_server(&f);
}

/* libctx offers the algorithm kept of the kind KIND (EVP_MD, EVP_KDF ...) and not dropped. */
#define EXPECT_OFFERED(KIND, libctx, kept, dropped)                                                \
    do {                                                                                           \
        KIND *offered = KIND##_fetch(libctx, kept, NULL);                                          \
        if (offered == NULL)                                                                       \
            fail_msg("no %s %s in the TLS library context", #KIND, kept);                          \
        KIND##_free(offered);                                                                      \
        if ((offered = KIND##_fetch(libctx, dropped, NULL)) != NULL)                               \
            fail_msg("%s %s is still offered in the TLS library context", #KIND, dropped);         \
    } while (0)

/* kpki's TLS library context (tls_libctx.c): the algorithms libssl uses for TLS 1.2 and 1.3
 * and the decoders of SubjectPublicKeyInfo for certificate keys, nothing else. A certificate
 * decodes there and its key is that provider's. */
static void test_tls_libctx(void **state)
{
    (void)state;
    OSSL_LIB_CTX *libctx = kp_tls_libctx();
    assert_non_null(libctx);
    assert_ptr_equal(kp_tls_libctx(), libctx); /* built once */
    /* (test_client_certificate checks that a served client's key comes from this context.) */
    const char *kept[] = {"EC", "RSA", "RSA-PSS", "DSA", "X25519", "X448", "ED25519", "DH", "HMAC"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        EVP_KEYMGMT *keymgmt = EVP_KEYMGMT_fetch(libctx, kept[i], NULL);
        if (keymgmt == NULL)
            fail_msg("no key manager for %s in the TLS library context", kept[i]);
        EVP_KEYMGMT_free(keymgmt);
    }
    const char *dropped[] = {"SM2", "SCRYPT", "SIPHASH", "HKDF", "TLS1-PRF"};
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
        EVP_KEYMGMT *keymgmt = EVP_KEYMGMT_fetch(libctx, dropped[i], NULL);
        if (keymgmt != NULL)
            fail_msg("%s is still offered in the TLS library context", dropped[i]);
    }
    /* The other operations: what TLS uses, and not the rest of the default provider (which
     * OpenSSL 3.0 would copy on every key decoding, tls_libctx.c). */
    const struct {
        const char *name;
        bool offered;
    } ciphers[] = {
        {"AES-128-GCM", true},       {"AES-256-GCM", true},   {"ChaCha20-Poly1305", true},
        {"CAMELLIA-128-CBC", false}, {"DES-EDE3-CBC", false}, {"SM4-CBC", false},
        {"AES-128-CBC", false},
    };
    for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
        EVP_CIPHER *cipher = EVP_CIPHER_fetch(libctx, ciphers[i].name, NULL);
        if ((cipher != NULL) != ciphers[i].offered)
            fail_msg("the cipher %s is %s in the TLS library context", ciphers[i].name,
                     cipher != NULL ? "offered" : "missing");
        EVP_CIPHER_free(cipher);
    }
    EXPECT_OFFERED(EVP_MD, libctx, "SHA2-384", "SHA3-256");
    EXPECT_OFFERED(EVP_KDF, libctx, "TLS13-KDF", "SCRYPT");
    EXPECT_OFFERED(EVP_MAC, libctx, "HMAC", "CMAC");
    EXPECT_OFFERED(EVP_SIGNATURE, libctx, "ECDSA", "SM2");
    ERR_clear_error();
    /* A certificate decodes, and its key belongs to the filtering provider. */
    BIO *bio = BIO_new_file(pki.client_cert, "r");
    assert_non_null(bio);
    X509 *cert = X509_new_ex(libctx, NULL);
    assert_non_null(PEM_read_bio_X509(bio, &cert, NULL, NULL));
    BIO_free(bio);
    EVP_PKEY *key = X509_get0_pubkey(cert);
    assert_non_null(key);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(key)), "kpki-tls");
    X509_free(cert);
    /* Decoders: SubjectPublicKeyInfo only. */
    OSSL_DECODER *decoder = OSSL_DECODER_fetch(libctx, "EC", "structure=SubjectPublicKeyInfo");
    assert_non_null(decoder);
    OSSL_DECODER_free(decoder);
    assert_null(OSSL_DECODER_fetch(libctx, "EC", "structure=PrivateKeyInfo"));
    assert_null(OSSL_DECODER_fetch(libctx, "SM2", "structure=SubjectPublicKeyInfo"));
    /* Keys that cannot sign a CertificateVerify are no certificate keys for a TLS client. */
    assert_null(OSSL_DECODER_fetch(libctx, "X25519", "structure=SubjectPublicKeyInfo"));
    /* d2i_X509 names the key type itself: no generic decoder routing by the type. */
    assert_null(OSSL_DECODER_fetch(libctx, "DER", "structure=SubjectPublicKeyInfo"));
    assert_null(OSSL_DECODER_fetch(libctx, "DER", "input=pem"));
    ERR_clear_error();
}

/* ------------------------------------------------------------------ tests: limits */

static void test_body_limit(void **state)
{
    (void)state;
    struct kp_http_limits limits;
    kp_http_limits_default(&limits);
    limits.max_body_bytes = 1024;
    struct fixture f;
    start_server(&f, &limits, 1);
    char *body = malloc(100000);
    memset(body, 'x', 100000);
    struct response r;

    /* At the limit: fine. */
    struct client *c = client_open(f.port, NULL);
    client_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n");
    client_write(c, body, 1024);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(c);

    /* One over, sent whole: 413, then the connection is closed. */
    c = client_open(f.port, NULL);
    client_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n");
    client_write(c, body, 1025);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 413);
    assert_string_equal(header_of(&r, "Connection"), "close");
    response_free(&r);
    assert_true(client_sees_close(c));
    client_close(c);

    /* Far over, the whole body sent before reading: the server reads it away (lingering close)
     * so the client sees the 413 rather than a reset. */
    c = client_open(f.port, NULL);
    client_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    client_write(c, body, 100000);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 413);
    response_free(&r);
    client_close(c);

    /* Expect: 100-continue with a Content-Length over the limit: 413 at once, no "100
     * Continue", so the client need not send the body at all. */
    c = client_open(f.port, NULL);
    client_send(c, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                   "Expect: 100-continue\r\n\r\n");
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 413);
    response_free(&r);
    assert_true(client_sees_close(c));
    client_close(c);

    /* Within the limit, Expect gets its "100 Continue" and the request is served. */
    c = client_open(f.port, NULL);
    client_send(c, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                   "Expect: 100-continue\r\n\r\n");
    assert_true(read_head(c, &r));
    assert_int_equal(r.status, 100);
    response_free(&r);
    assert_true(client_quiet_for(c, 200)); /* the answer waits for the body */
    client_write(c, body, 10);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(c);

    /* Chunked over the limit: 413 once the chunk sizes pass it. */
    c = client_open(f.port, NULL);
    client_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "400\r\n");
    client_write(c, body, 1024);
    client_send(c, "\r\n1\r\n");
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 413);
    response_free(&r);
    assert_true(client_sees_close(c));
    client_close(c);

    free(body);
    stop_server(&f);
}

static void test_header_limit(void **state)
{
    (void)state;
    struct kp_http_limits limits;
    kp_http_limits_default(&limits);
    limits.max_header_bytes = 4096;
    struct fixture f;
    start_server(&f, &limits, 1);
    char *big = malloc(8192);
    memset(big, 'a', 8191);
    big[8191] = '\0';
    char *text = malloc(20000);
    struct response r;

    /* Just under: fine. */
    snprintf(text, 20000, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: %.3900s\r\n\r\n", big);
    struct client *c = client_open(f.port, NULL);
    must_request(c, text, &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(c);

    /* One header over: 431 Request Header Fields Too Large, and the connection closes. */
    snprintf(text, 20000, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big);
    c = client_open(f.port, NULL);
    client_send(c, text);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 431);
    assert_string_equal(header_of(&r, "Connection"), "close");
    response_free(&r);
    assert_true(client_sees_close(c));
    client_close(c);

    /* Many small headers adding up over: the same. */
    size_t used = (size_t)snprintf(text, 20000, "GET /echo HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 300; i++) {
        used += (size_t)snprintf(text + used, 20000 - used, "X-H%d: 0123456789\r\n", i);
    }
    snprintf(text + used, 20000 - used, "\r\n");
    c = client_open(f.port, NULL);
    client_send(c, text);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 431);
    response_free(&r);
    client_close(c);

    /* A request line over (a long URL): the same. */
    snprintf(text, 20000, "GET /echo?a=%s HTTP/1.1\r\nHost: x\r\n\r\n", big);
    c = client_open(f.port, NULL);
    client_send(c, text);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 431);
    response_free(&r);
    client_close(c);

    /* A chunk extension that never ends (after the head, so not a header): refused once what is
     * neither head nor body passes the bound (max_header_bytes + 16 KiB + 16 per chunk + the
     * body), not kept in memory until the read timeout. */
    c = client_open(f.port, NULL);
    client_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;e=");
    for (int i = 0; i < 4; i++) {
        client_write(c, big, 8191);
    }
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "too much non-data"));
    response_free(&r);
    client_close(c);

    /* Headers that never end: answered as soon as the limit is passed, not at a timeout. */
    c = client_open(f.port, NULL);
    client_send(c, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Endless: ");
    client_write(c, big, 8191);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_true(read_response(c, &r, false));
    assert_int_equal(r.status, 431);
    assert_true(elapsed_s(&start) < 10.0); /* the read timeout is 60 s (and read_response gives
                                            * up at the client's 5 s receive timeout) */
    response_free(&r);
    client_close(c);

    free(text);
    free(big);
    stop_server(&f);
}

/* The client waits up to 20 s for a close. The bounds below are wide for a loaded machine (an
 * ASan build beside other tests), yet each still tells the read timeout (2 s) from the idle
 * timeout (8 s). */
static void wait_longer(int fd)
{
    struct timeval longer = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &longer, sizeof(longer));
}

static void test_timeouts(void **state)
{
    (void)state;
    struct fixture f;
    start_server_with_timeouts(&f, 2, 8, 2);
    struct timespec start;

    /* Connects and says nothing: closed after the read timeout, which runs from the accept;
     * the kernel hands a silent connection to accept(2) after about a second
     * (TCP_DEFER_ACCEPT, docs/net.md), so about 3 s. */
    int fd = tcp_connect(f.port);
    wait_longer(fd);
    clock_gettime(CLOCK_MONOTONIC, &start);
    char byte;
    assert_true(recv(fd, &byte, 1, 0) <= 0);
    double waited = elapsed_s(&start);
    assert_true(waited > 2.5 && waited < 7.0);
    close(fd);

    /* Handshakes, sends half a request and stalls: closed after the read timeout, which runs
     * from the accept, so the clock starts before the connect. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct client *c = client_open(f.port, NULL);
    assert_non_null(c); /* the handshake, too, must end within the read timeout */
    wait_longer(c->fd);
    client_send(c, "GET /echo HTTP/1.1\r\nHost: x\r\n");
    assert_true(client_sees_close(c));
    waited = elapsed_s(&start);
    assert_true(waited > 1.9 && waited < 7.0);
    client_close(c);

    /* Trickles a byte every 200 ms: still cut off when the whole request took too long. */
    c = client_open(f.port, NULL);
    assert_non_null(c);
    const char *slow = "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n";
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool cut = false;
    for (size_t i = 0; slow[i] != '\0' && !cut; i++) {
        if (SSL_write(c->ssl, &slow[i], 1) != 1) {
            cut = true;
            break;
        }
        struct pollfd poll_fd = {.fd = c->fd, .events = POLLIN};
        if (poll(&poll_fd, 1, 200) > 0) {
            cut = client_sees_close(c);
        }
    }
    assert_true(cut || client_sees_close(c));
    waited = elapsed_s(&start);
    assert_true(waited > 1.5 && waited < 7.0); /* the whole request would take 13 s */
    client_close(c);

    /* Idle keep-alive: closed after the idle timeout (8 s), not the read timeout (2 s). */
    c = client_open(f.port, NULL);
    assert_non_null(c);
    struct response r;
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    response_free(&r);
    clock_gettime(CLOCK_MONOTONIC, &start);
    wait_longer(c->fd);
    assert_true(client_sees_close(c));
    waited = elapsed_s(&start);
    assert_true(waited > 7.5 && waited < 18.0);
    client_close(c);

    /* Idle for longer than the read timeout, then a request: served (the read deadline starts
     * at its first byte), with 5.5 s to spare before the idle timeout. */
    c = client_open(f.port, NULL);
    assert_non_null(c);
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    response_free(&r);
    usleep(2500 * 1000);
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(c);
    stop_server(&f);
}

static void test_many_connections(void **state)
{
    (void)state;
    enum { COUNT = 200 };
    struct fixture f;
    start_server(&f, NULL, 4);
    struct client **clients = calloc(COUNT, sizeof(*clients));
    for (int i = 0; i < COUNT; i++) {
        clients[i] = client_open(f.port, NULL);
        assert_non_null(clients[i]);
    }
    for (int i = 0; i < COUNT; i++) {
        client_send(clients[i], "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    for (int i = 0; i < COUNT; i++) {
        struct response r;
        assert_true(read_response(clients[i], &r, false));
        assert_int_equal(r.status, 200);
        response_free(&r);
        client_close(clients[i]);
    }
    free(clients);
    stop_server(&f);
}

static void test_connection_limit(void **state)
{
    (void)state;
    struct kp_http_limits limits;
    kp_http_limits_default(&limits);
    limits.max_connections = 4;
    struct fixture f;
    start_server(&f, &limits, 2);
    struct client *held[4];
    for (int i = 0; i < 4; i++) {
        held[i] = client_open(f.port, NULL);
        assert_non_null(held[i]);
    }
    /* The fifth is closed before its handshake. */
    ERR_clear_error();
    assert_null(client_open(f.port, NULL));
    ERR_clear_error();
    /* The held ones still work. */
    struct response r;
    must_request(held[0], "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    /* Once one goes, a new one gets in (the server notices the close asynchronously). */
    client_close(held[3]);
    struct client *late = NULL;
    for (int attempt = 0; attempt < 200 && late == NULL; attempt++) {
        usleep(50 * 1000);
        late = client_open(f.port, NULL);
        ERR_clear_error();
    }
    assert_non_null(late);
    must_request(late, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);
    client_close(late);
    for (int i = 0; i < 3; i++) {
        client_close(held[i]);
    }
    stop_server(&f);
}

/* ------------------------------------------------------------------ tests: streams */

struct producer {
    struct kp_http_stream *stream;
    int events;
    bool end;
};

static void *produce(void *arg)
{
    struct producer *producer = arg;
    for (int i = 0; i < producer->events; i++) {
        char line[64];
        int len = snprintf(line, sizeof(line), "{\"event\":%d}\n", i);
        assert_true(kp_http_stream_send(producer->stream, line, (size_t)len));
        if (i % 10 == 0) {
            usleep(1000);
        }
    }
    if (producer->end) {
        kp_http_stream_end(producer->stream);
    }
    return NULL;
}

static char *expected_events(int count)
{
    char *text = malloc((size_t)count * 20 + 1);
    size_t used = 0;
    for (int i = 0; i < count; i++) {
        used += (size_t)sprintf(text + used, "{\"event\":%d}\n", i);
    }
    return text;
}

static struct kp_http_stream *open_stream(struct client *c)
{
    client_send(c, "GET /stream?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    struct response head;
    assert_true(read_head(c, &head));
    assert_int_equal(head.status, 200);
    assert_string_equal(header_of(&head, "Transfer-Encoding"), "chunked");
    assert_string_equal(header_of(&head, "Content-Type"), "application/json");
    assert_null(header_of(&head, "Content-Length"));
    response_free(&head);
    assert_true(wait_count(&g.streams_started, 1, 5000));
    return current_stream();
}

static void test_stream_from_another_thread(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 2);
    struct client *c = client_open(f.port, NULL);
    struct kp_http_stream *stream = open_stream(c);
    struct producer producer = {.stream = stream, .events = 500, .end = true};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, produce, &producer), 0);
    char *got = strdup("");
    size_t got_len = 0;
    for (;;) {
        char *data = NULL;
        size_t len = 0;
        assert_true(read_chunk(c, &data, &len));
        if (len == 0) {
            break;
        }
        got = realloc(got, got_len + len + 1);
        memcpy(got + got_len, data, len);
        got_len += len;
        got[got_len] = '\0';
        free(data);
    }
    pthread_join(thread, NULL);
    char *expected = expected_events(500);
    assert_string_equal(got, expected);
    free(expected);
    free(got);
    assert_int_equal(g.on_close_calls, 0); /* ended by the handler: no on_close */

    /* The connection is reusable after the stream. */
    struct response r;
    must_request(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    response_free(&r);

    /* A stream written and ended inside the handler. */
    must_request(c, "GET /stream-now HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "first,second");
    response_free(&r);
    client_close(c);
    stop_server(&f);
}

/* A stream ended right after it started, from another thread, many times on one connection:
 * pins the guard against libevent's stale deferred write callback (see guarded_write_cb in
 * http.c), which used to complete the response with its tail still unsent. */
static void test_stream_quick_end(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 1);
    struct client *c = client_open(f.port, NULL);
    for (int i = 0; i < 200; i++) {
        client_send(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_true(wait_count(&g.streams_started, i + 1, 5000));
        struct kp_http_stream *stream = current_stream();
        char line[32];
        int len = snprintf(line, sizeof(line), "round %d\n", i);
        assert_true(kp_http_stream_send(stream, line, (size_t)len));
        kp_http_stream_end(stream);
        struct response r;
        assert_true(read_response(c, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, line);
        response_free(&r);
    }
    client_close(c);
    assert_int_equal(g.on_close_calls, 0);
    stop_server(&f);
}

static void test_stream_client_disconnects(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 2);
    for (int round = 0; round < 2; round++) {
        reset_state();
        g.end_in_on_close = round == 1; /* round 1: on_close ends the stream itself */
        struct client *c = client_open(f.port, NULL);
        struct kp_http_stream *stream = open_stream(c);
        assert_true(kp_http_stream_send(stream, "hello\n", 6));
        char *data = NULL;
        size_t len = 0;
        assert_true(read_chunk(c, &data, &len));
        assert_string_equal(data, "hello\n");
        free(data);
        /* Gone without a word (no close_notify). */
        client_close(c);
        assert_true(wait_count(&g.on_close_calls, 1, 5000));
        if (round == 0) { /* in round 1 on_close ended it: ours to touch no more */
            assert_false(kp_http_stream_send(stream, "late\n", 5));
            kp_http_stream_end(stream);
        }
        usleep(20 * 1000);
        assert_int_equal(g.on_close_calls, 1); /* once */
    }
    stop_server(&f);
}

static void test_stream_slow_consumer(void **state)
{
    (void)state;
    struct kp_http_limits limits;
    kp_http_limits_default(&limits);
    limits.max_stream_buffer_bytes = 64 * 1024;
    struct fixture f;
    start_server(&f, &limits, 1);
    struct client *c = client_open(f.port, NULL);
    struct kp_http_stream *stream = open_stream(c);
    /* The client reads nothing; the producer keeps going until the server gives up. */
    char chunk[4096];
    memset(chunk, 'z', sizeof(chunk));
    size_t sent = 0;
    bool refused = false;
    for (int i = 0; i < 100000 && !refused; i++) {
        if (!kp_http_stream_send(stream, chunk, sizeof(chunk))) {
            refused = true;
        } else {
            sent += sizeof(chunk);
        }
        if (i % 16 == 0) {
            usleep(1000);
        }
    }
    assert_true(refused);
    assert_true(sent < 64 * 1024 * 1024); /* socket buffers plus the stream's limit */
    assert_true(wait_count(&g.on_close_calls, 1, 5000));
    kp_http_stream_end(stream);
    /* The client's connection was dropped. */
    for (;;) {
        if (c->pos == c->len && !client_fill(c)) {
            break;
        }
        c->pos = c->len;
    }
    client_close(c);
    stop_server(&f);
}

static void test_stop_with_open_stream(void **state)
{
    (void)state;
    struct fixture f;
    start_server(&f, NULL, 2);
    struct client *c = client_open(f.port, NULL);
    struct client *idle = client_open(f.port, NULL);
    struct kp_http_stream *stream = open_stream(c);
    assert_true(kp_http_stream_send(stream, "last words\n", 11));
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    stop_server(&f); /* the handler still holds the stream */
    assert_true(elapsed_s(&start) < 10.0); /* not the 90 s idle timeout */
    assert_int_equal(g.on_close_calls, 1);
    assert_false(kp_http_stream_send(stream, "too late\n", 9));
    kp_http_stream_end(stream);
    /* The client got what was queued, then a clean end of the body, then the close. */
    char *data = NULL;
    size_t len = 0;
    assert_true(read_chunk(c, &data, &len));
    assert_string_equal(data, "last words\n");
    free(data);
    assert_true(read_chunk(c, &data, &len));
    assert_int_equal(len, 0);
    assert_true(client_sees_close(c));
    assert_true(client_sees_close(idle));
    client_close(c);
    client_close(idle);
}

/* Stop while producer threads hammer open streams: nothing may crash or leak. */
struct hammer {
    struct kp_http_stream *stream;
    atomic_bool *stop;
};

static void *hammer_stream(void *arg)
{
    struct hammer *hammer = arg;
    while (!atomic_load(hammer->stop)) {
        kp_http_stream_send(hammer->stream, "0123456789abcdef\n", 17);
    }
    return NULL;
}

static void test_stop_races_producers(void **state)
{
    (void)state;
    enum { STREAMS = 4 };
    struct fixture f;
    start_server(&f, NULL, 2);
    struct client *clients[STREAMS];
    struct kp_http_stream *streams[STREAMS];
    for (int i = 0; i < STREAMS; i++) {
        clients[i] = client_open(f.port, NULL);
        client_send(clients[i], "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_true(wait_count(&g.streams_started, i + 1, 5000));
        streams[i] = current_stream();
    }
    atomic_bool stop = false;
    struct hammer hammers[STREAMS];
    pthread_t threads[STREAMS];
    for (int i = 0; i < STREAMS; i++) {
        hammers[i] = (struct hammer){.stream = streams[i], .stop = &stop};
        assert_int_equal(pthread_create(&threads[i], NULL, hammer_stream, &hammers[i]), 0);
    }
    usleep(50 * 1000);
    stop_server(&f);
    atomic_store(&stop, true);
    for (int i = 0; i < STREAMS; i++) {
        pthread_join(threads[i], NULL);
        assert_false(kp_http_stream_send(streams[i], "x", 1));
        kp_http_stream_end(streams[i]);
        client_close(clients[i]);
    }
    assert_int_equal(g.on_close_calls, STREAMS);
}

/* ------------------------------------------------------------------ curl (a real client) */

static void test_curl(void **state)
{
    (void)state;
    if (system("command -v curl >/dev/null 2>&1") != 0) {
        skip();
    }
    struct fixture f;
    start_server(&f, NULL, 2);
    char command[2048];
    /* --http2: curl offers h2 and http/1.1 over ALPN, like kubectl; it must fall back. */
    snprintf(command, sizeof(command),
             "curl -sS --http2 --cacert '%s' --cert '%s' --key '%s' "
             "-w '\\n%%{http_version} %%{http_code}' "
             "'https://127.0.0.1:%d/echo?a=curl' -H 'X-Test: c' 2>&1",
             pki.ca_cert, pki.client_cert, pki.client_key, f.port);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    char output[8192];
    size_t len = fread(output, 1, sizeof(output) - 1, pipe);
    output[len] = '\0';
    assert_int_equal(pclose(pipe), 0);
    char *last_line = strrchr(output, '\n');
    assert_non_null(last_line);
    assert_string_equal(last_line + 1, "1.1 200");
    *last_line = '\0';
    json_t *echo = json_loads(output, 0, NULL);
    assert_non_null(echo);
    assert_string_equal(jstr(echo, "peer_cn"), "alice");
    assert_string_equal(jstr(json_object_get(echo, "query"), "a"), "curl");
    json_decref(echo);

    /* A body over the limit through curl (which sends Expect: 100-continue for large ones). */
    snprintf(command, sizeof(command),
             "head -c 4000000 /dev/zero | curl -sS --cacert '%s' -o /dev/null "
             "-w '%%{http_code}' --data-binary @- 'https://127.0.0.1:%d/echo' 2>&1",
             pki.ca_cert, f.port);
    pipe = popen(command, "r");
    len = fread(output, 1, sizeof(output) - 1, pipe);
    output[len] = '\0';
    pclose(pipe);
    assert_string_equal(output, "413");
    stop_server(&f);
}

/* kubectl (Go's client) offers h2 and http/1.1, falls back, and presents its client
 * certificate; every kubectl on the machine. */
static void test_kubectl(void **state)
{
    (void)state;
    if (system("command -v kubectl >/dev/null 2>&1") != 0) {
        skip();
    }
    struct fixture f;
    start_server(&f, NULL, 2);
    const char *versions[] = {"kubectl", "/usr/lib/google-cloud-sdk/bin/kubectl.1.27",
                              "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (i > 0 && access(versions[i], X_OK) != 0) {
            continue;
        }
        char command[2048];
        snprintf(command, sizeof(command),
                 "%s --kubeconfig=/dev/null --server=https://127.0.0.1:%d "
                 "--certificate-authority='%s' --client-certificate='%s' --client-key='%s' "
                 "get --raw '/echo?a=kubectl' </dev/null 2>&1",
                 versions[i], f.port, pki.ca_cert, pki.client_cert, pki.client_key);
        FILE *pipe = popen(command, "r");
        assert_non_null(pipe);
        char output[8192];
        size_t len = fread(output, 1, sizeof(output) - 1, pipe);
        output[len] = '\0';
        int status = pclose(pipe);
        if (status != 0) {
            fail_msg("%s: %s", versions[i], output);
        }
        json_t *echo = json_loads(output, 0, NULL);
        assert_non_null(echo);
        assert_string_equal(jstr(echo, "peer_cn"), "alice");
        assert_string_equal(jstr(json_object_get(echo, "query"), "a"), "kubectl");
        assert_string_equal(jstr(echo, "method"), "GET");
        json_decref(echo);
    }
    stop_server(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post),
        cmocka_unit_test(test_keep_alive_and_close),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_refused_requests),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_old_tls_refused),
        cmocka_unit_test(test_garbage_instead_of_tls),
        cmocka_unit_test(test_ssl_ctx_swap),
        cmocka_unit_test(test_session_resumption),
        cmocka_unit_test(test_pipelined_backpressure),
        cmocka_unit_test(test_tls_ctx_errors),
        cmocka_unit_test(test_tls_libctx),
        cmocka_unit_test(test_tls_algorithms),
        cmocka_unit_test(test_split_records),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_listener_defers_accept),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_many_connections),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_stream_from_another_thread),
        cmocka_unit_test(test_stream_quick_end),
        cmocka_unit_test(test_stream_client_disconnects),
        cmocka_unit_test(test_stream_slow_consumer),
        cmocka_unit_test(test_stop_with_open_stream),
        cmocka_unit_test(test_stop_races_producers),
        cmocka_unit_test(test_curl),
        cmocka_unit_test(test_kubectl),
    };
    const char *filter = getenv("KPKI_TEST_FILTER"); /* e.g. "test_stream*" */
    if (filter != NULL) {
        cmocka_set_test_filter(filter);
    }
    if (getenv("KPKI_TEST_DEBUG") != NULL) {
        kp_log_set_level(KP_LOG_DEBUG);
    }
    return cmocka_run_group_tests(tests, make_pki, remove_pki);
}
