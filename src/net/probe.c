/*
 * Fetching a TLS server's certificate. The verify callback records the leaf as soon as the
 * server's Certificate message is processed and accepts everything, so the certificate is known
 * even when the server then refuses us for lack of a client certificate (etcd, kube-apiserver
 * with required client auth).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int leaf_index(void)
{
    static int index = -1;
    if (index < 0) {
        index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    return index;
}

static int record_leaf(int preverify, X509_STORE_CTX *store)
{
    (void)preverify;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(store);
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    if (ssl != NULL && leaf != NULL && SSL_get_ex_data(ssl, leaf_index()) == NULL &&
        X509_up_ref(leaf)) {
        SSL_set_ex_data(ssl, leaf_index(), leaf);
    }
    (void)chain;
    return 1; /* record, never judge: the caller compares */
}

/* Non-blocking connect to the first address that answers before the deadline. */
static int connect_to(const char *host, int port, int64_t deadline, struct kp_error *err)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    struct addrinfo *addresses = NULL;
    int status = getaddrinfo(host, service, &hints, &addresses);
    if (status != 0) {
        kp_error_set(err, KP_ERR_IO, "cannot resolve '%s': %s", host, gai_strerror(status));
        return -1;
    }
    int fd = -1;
    int last_errno = ECONNREFUSED;
    for (struct addrinfo *each = addresses; each != NULL && fd < 0; each = each->ai_next) {
        fd = socket(each->ai_family, each->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    each->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, each->ai_addr, each->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last_errno = errno;
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd wait = {.fd = fd, .events = POLLOUT};
        int remaining = (int)(deadline - monotonic_ms());
        int ready = remaining > 0 ? poll(&wait, 1, remaining) : 0;
        int so_error = 0;
        socklen_t len = sizeof(so_error);
        if (ready <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 ||
            so_error != 0) {
            last_errno = ready == 0 ? ETIMEDOUT : (so_error != 0 ? so_error : errno);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(addresses);
    if (fd < 0) {
        kp_error_errno(err, last_errno, "cannot connect to %s:%d", host, port);
    }
    return fd;
}

/* Drives SSL_connect on a non-blocking socket until it finishes, fails or times out. */
static void handshake(SSL *ssl, int fd, int64_t deadline)
{
    for (;;) {
        int result = SSL_connect(ssl);
        if (result == 1) {
            return;
        }
        int reason = SSL_get_error(ssl, result);
        if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) {
            return; /* failed: the leaf may have been recorded already */
        }
        struct pollfd wait = {.fd = fd, .events = reason == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
        int remaining = (int)(deadline - monotonic_ms());
        if (remaining <= 0 || poll(&wait, 1, remaining) <= 0) {
            return;
        }
    }
}

enum kp_result kp_net_peer_certificate(const char *host, int port, int timeout_ms, X509 **leaf,
                                       struct kp_error *err)
{
    *leaf = NULL;
    int64_t deadline = monotonic_ms() + timeout_ms;
    int fd = connect_to(host, port, deadline, err);
    if (fd < 0) {
        return err != NULL ? err->code : KP_ERR_IO;
    }
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    struct kp_ip ip;
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        (ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd) ||
        (!kp_ip_parse(host, &ip) && !SSL_set_tlsext_host_name(ssl, host))) {
        rc = kp_error_openssl(err, KP_ERR_IO, "cannot set up TLS to %s:%d", host, port);
        goto done;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, record_leaf);
    handshake(ssl, fd, deadline);
    *leaf = SSL_get_ex_data(ssl, leaf_index());
    SSL_set_ex_data(ssl, leaf_index(), NULL);
    if (*leaf == NULL) {
        rc = kp_error_openssl(err, KP_ERR_IO,
                              "%s:%d presented no certificate (is it a TLS "
                              "server?)",
                              host, port);
    }
done:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}

enum kp_result kp_net_parse_https_url(const char *url, char *host, size_t host_size, int *port,
                                      struct kp_error *err)
{
    if (strncmp(url, "https://", 8) != 0) {
        return kp_error_set(err, KP_ERR_INVALID, "'%s' is not an https:// URL", url);
    }
    char authority[300];
    snprintf(authority, sizeof(authority), "%s", url + 8);
    authority[strcspn(authority, "/")] = '\0';
    enum kp_result rc = kp_host_port_parse(authority, host, host_size, port, err);
    if (rc != KP_OK) {
        return kp_error_prefix(err, "'%s'", url);
    }
    if (*port == 0) {
        *port = 443;
    }
    return KP_OK;
}
