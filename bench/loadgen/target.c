/*
 * target.c - what every connection of a run shares: the address from --url, the request bytes,
 * the TLS client context and the client identities.
 *
 * The TLS context is set up so that every handshake is a full one, which is what handshake mode
 * measures: no session cache (SSL_SESS_CACHE_OFF, and no session is ever set on a connection)
 * and no tickets (SSL_OP_NO_TICKET), so the client never offers a session id, a ticket or a
 * TLS 1.3 PSK. The server's chain is verified against --ca, and its name against the URL's host
 * (an IP SAN for an IP address), as kubectl does.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "loadgen.h"

#define MAX_IDENTITIES 1000000

static int set_error(char *error, size_t error_size, int exit_code, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static int set_error(char *error, size_t error_size, int exit_code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(error, error_size, format, args);
    va_end(args);
    return exit_code;
}

/* OpenSSL's most recent reason, then an empty queue. */
static const char *openssl_reason(char *buffer, size_t size)
{
    unsigned long code = ERR_peek_last_error();
    if (code == 0) {
        snprintf(buffer, size, "no detail from OpenSSL");
    } else {
        ERR_error_string_n(code, buffer, size);
    }
    ERR_clear_error();
    return buffer;
}

/* ---- the URL ---- */

static int parse_url(struct lg_run *run, const char *url, char *error, size_t error_size)
{
    static const char scheme[] = "https://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        return set_error(error, error_size, LG_EXIT_USAGE,
                         "--url '%s': want https://HOST:PORT/PATH", url);
    }
    const char *authority = url + sizeof(scheme) - 1;
    const char *path = strchr(authority, '/');
    size_t authority_len = path != NULL ? (size_t)(path - authority) : strlen(authority);
    const char *host = authority;
    size_t host_len = authority_len;
    const char *port = NULL;
    if (authority[0] == '[') {
        const char *close = memchr(authority, ']', authority_len);
        if (close == NULL) {
            return set_error(error, error_size, LG_EXIT_USAGE,
                             "--url '%s': an IPv6 address needs its closing ']'", url);
        }
        host = authority + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < authority + authority_len) {
            if (close[1] != ':') {
                return set_error(error, error_size, LG_EXIT_USAGE,
                                 "--url '%s': want ':PORT' after ']'", url);
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(authority, ':', authority_len);
        if (colon != NULL) {
            host_len = (size_t)(colon - authority);
            port = colon + 1;
        }
    }
    if (host_len == 0 || host_len >= sizeof(run->host)) {
        return set_error(error, error_size, LG_EXIT_USAGE, "--url '%s': no usable host", url);
    }
    memcpy(run->host, host, host_len);
    run->host[host_len] = '\0';

    size_t port_len = port != NULL ? (size_t)(authority + authority_len - port) : 0;
    long port_number = 443;
    if (port != NULL) {
        char digits[8] = "";
        char *end = NULL;
        if (port_len == 0 || port_len >= sizeof(digits) || strspn(port, "0123456789") < port_len) {
            return set_error(error, error_size, LG_EXIT_USAGE,
                             "--url '%s': the port is not a number", url);
        }
        memcpy(digits, port, port_len);
        port_number = strtol(digits, &end, 10);
        if (port_number < 1 || port_number > 65535) {
            return set_error(error, error_size, LG_EXIT_USAGE,
                             "--url '%s': the port must be 1 to 65535", url);
        }
    }
    snprintf(run->port, sizeof(run->port), "%ld", port_number);

    const char *request_path = path != NULL ? path : "/";
    if (strlen(request_path) >= sizeof(run->path)) {
        return set_error(error, error_size, LG_EXIT_USAGE, "--url: the path is too long");
    }
    for (const char *p = request_path; *p != '\0'; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#') {
            return set_error(error, error_size, LG_EXIT_USAGE,
                             "--url '%s': the path has a space, a control character or a "
                             "fragment; percent-encode it",
                             url);
        }
    }
    snprintf(run->path, sizeof(run->path), "%s", request_path);

    unsigned char probe[sizeof(struct in6_addr)];
    run->host_is_ip =
        inet_pton(AF_INET, run->host, probe) == 1 || inet_pton(AF_INET6, run->host, probe) == 1;
    return LG_EXIT_RAN;
}

static int resolve(struct lg_run *run, char *error, size_t error_size)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int status = getaddrinfo(run->host, run->port, &hints, &found);
    if (status != 0 || found == NULL) {
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "--url: cannot resolve '%s': %s",
                         run->host, gai_strerror(status));
    }
    memcpy(&run->address, found->ai_addr, found->ai_addrlen);
    run->address_len = found->ai_addrlen;
    freeaddrinfo(found);
    return LG_EXIT_RAN;
}

/* ---- the request ---- */

/* Reads --body-file into *body (owned by the caller, free with free). */
static int read_body(const char *path, char **body, size_t *body_len, char *error,
                     size_t error_size)
{
    *body = NULL;
    *body_len = 0;
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "--body-file '%s': %s", path,
                         strerror(errno));
    }
    char *buffer = malloc(LG_MAX_BODY_BYTES + 1);
    if (buffer == NULL) {
        fclose(file);
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "out of memory");
    }
    size_t len = fread(buffer, 1, LG_MAX_BODY_BYTES + 1, file);
    int read_error = ferror(file);
    fclose(file);
    if (read_error) {
        free(buffer);
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "--body-file '%s': read error",
                         path);
    }
    if (len > LG_MAX_BODY_BYTES) {
        free(buffer);
        return set_error(error, error_size, LG_EXIT_USAGE, "--body-file '%s': larger than 1 MiB",
                         path);
    }
    *body = buffer;
    *body_len = len;
    return LG_EXIT_RAN;
}

static bool user_sent_header(const struct lg_options *options, const char *name)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < options->header_count; i++) {
        if (strncasecmp(options->headers[i], name, name_len) == 0 &&
            options->headers[i][name_len] == ':') {
            return true;
        }
    }
    return false;
}

static int build_request(struct lg_run *run, char *error, size_t error_size)
{
    const struct lg_options *options = run->options;
    char *body = NULL;
    size_t body_len = 0;
    if (options->body_file != NULL) {
        int status = read_body(options->body_file, &body, &body_len, error, error_size);
        if (status != LG_EXIT_RAN) {
            return status;
        }
    }
    size_t capacity = 512 + strlen(run->path) + strlen(run->host) + body_len;
    for (size_t i = 0; i < options->header_count; i++) {
        capacity += strlen(options->headers[i]) + 2;
    }
    char *request = malloc(capacity);
    if (request == NULL) {
        free(body);
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "out of memory");
    }
    size_t len =
        (size_t)snprintf(request, capacity, "%s %s HTTP/1.1\r\n", options->method, run->path);
    if (!user_sent_header(options, "Host")) {
        bool ipv6 = strchr(run->host, ':') != NULL;
        len += (size_t)snprintf(request + len, capacity - len, "Host: %s%s%s:%s\r\n",
                                ipv6 ? "[" : "", run->host, ipv6 ? "]" : "", run->port);
    }
    if (!user_sent_header(options, "User-Agent")) {
        len += (size_t)snprintf(request + len, capacity - len,
                                "User-Agent: kpki-loadgen/" KPKI_VERSION "\r\n");
    }
    for (size_t i = 0; i < options->header_count; i++) {
        len += (size_t)snprintf(request + len, capacity - len, "%s\r\n", options->headers[i]);
    }
    bool has_payload_method = strcmp(options->method, "POST") == 0 ||
                              strcmp(options->method, "PUT") == 0 ||
                              strcmp(options->method, "PATCH") == 0;
    if (body != NULL || has_payload_method) {
        len += (size_t)snprintf(request + len, capacity - len, "Content-Length: %zu\r\n", body_len);
    }
    if (options->handshake_request) {
        len += (size_t)snprintf(request + len, capacity - len, "Connection: close\r\n");
    }
    len += (size_t)snprintf(request + len, capacity - len, "\r\n");
    if (body_len > 0) {
        memcpy(request + len, body, body_len);
        len += body_len;
    }
    free(body);
    run->request = request;
    run->request_len = len;
    run->head_request = strcmp(options->method, "HEAD") == 0;
    return LG_EXIT_RAN;
}

/* ---- identities ---- */

static int refuse_password(char *buffer, int size, int rwflag, void *userdata)
{
    (void)buffer;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1; /* an encrypted key is an error, never a prompt */
}

static void identity_wipe(struct lg_identity *identity)
{
    X509_free(identity->cert);
    sk_X509_pop_free(identity->chain, X509_free);
    EVP_PKEY_free(identity->key);
    memset(identity, 0, sizeof(*identity));
}

static int load_identity(const char *cert_path, const char *key_path, struct lg_identity *identity,
                         char *error, size_t error_size)
{
    char reason[256];
    memset(identity, 0, sizeof(*identity));
    BIO *bio = BIO_new_file(cert_path, "r");
    if (bio == NULL) {
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "cannot read certificate '%s': %s",
                         cert_path, openssl_reason(reason, sizeof(reason)));
    }
    identity->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    identity->chain = sk_X509_new_null();
    while (identity->cert != NULL && identity->chain != NULL) {
        X509 *intermediate = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (intermediate == NULL) {
            break;
        }
        if (sk_X509_push(identity->chain, intermediate) == 0) {
            X509_free(intermediate);
            break;
        }
    }
    ERR_clear_error(); /* the end of the file ends the loop with a "no start line" error */
    BIO_free(bio);
    if (identity->cert == NULL || identity->chain == NULL) {
        identity_wipe(identity);
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "'%s' holds no PEM certificate",
                         cert_path);
    }
    bio = BIO_new_file(key_path, "r");
    if (bio != NULL) {
        identity->key = PEM_read_bio_PrivateKey(bio, NULL, refuse_password, NULL);
        BIO_free(bio);
    }
    if (identity->key == NULL) {
        identity_wipe(identity);
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN,
                         "cannot read private key '%s' (PEM, unencrypted): %s", key_path,
                         openssl_reason(reason, sizeof(reason)));
    }
    if (X509_check_private_key(identity->cert, identity->key) != 1) {
        ERR_clear_error();
        identity_wipe(identity);
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN,
                         "the key '%s' does not match the certificate '%s'", key_path, cert_path);
    }
    return LG_EXIT_RAN;
}

static int compare_numbers(const void *a, const void *b)
{
    unsigned long left = *(const unsigned long *)a, right = *(const unsigned long *)b;
    return left < right ? -1 : left > right;
}

/* The numbers N of the N.crt files in dir that have an N.key beside them, sorted. *numbers is
 * owned by the caller (free). */
static int list_identity_numbers(const char *dir, unsigned long **numbers, size_t *count,
                                 char *error, size_t error_size)
{
    *numbers = NULL;
    *count = 0;
    DIR *listing = opendir(dir);
    if (listing == NULL) {
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "--cert-dir '%s': %s", dir,
                         strerror(errno));
    }
    size_t capacity = 0;
    unsigned long *found = NULL;
    int status = LG_EXIT_RAN;
    for (;;) {
        const struct dirent *entry = readdir(listing);
        if (entry == NULL) {
            break;
        }
        char *end = NULL;
        if (!isdigit((unsigned char)entry->d_name[0])) {
            continue;
        }
        unsigned long number = strtoul(entry->d_name, &end, 10);
        if (strcmp(end, ".crt") != 0) {
            continue;
        }
        char key_path[4096];
        snprintf(key_path, sizeof(key_path), "%s/%lu.key", dir, number);
        if (access(key_path, R_OK) != 0) {
            continue;
        }
        if (*count == MAX_IDENTITIES) {
            status = set_error(error, error_size, LG_EXIT_USAGE,
                               "--cert-dir '%s': more than %d identities", dir, MAX_IDENTITIES);
            break;
        }
        if (*count == capacity) {
            capacity = capacity == 0 ? 64 : capacity * 2;
            unsigned long *grown = realloc(found, capacity * sizeof(*found));
            if (grown == NULL) {
                status = set_error(error, error_size, LG_EXIT_CANNOT_RUN, "out of memory");
                break;
            }
            found = grown;
        }
        found[(*count)++] = number;
    }
    closedir(listing);
    if (status == LG_EXIT_RAN && *count == 0) {
        status = set_error(error, error_size, LG_EXIT_CANNOT_RUN,
                           "--cert-dir '%s': no N.crt with its N.key", dir);
    }
    if (status != LG_EXIT_RAN) {
        free(found);
        *count = 0;
        return status;
    }
    qsort(found, *count, sizeof(*found), compare_numbers);
    *numbers = found;
    return LG_EXIT_RAN;
}

static int load_identities(struct lg_run *run, char *error, size_t error_size)
{
    const struct lg_options *options = run->options;
    if (options->cert_file != NULL) {
        run->identities = calloc(1, sizeof(*run->identities));
        if (run->identities == NULL) {
            return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "out of memory");
        }
        run->identity_count = 1;
        return load_identity(options->cert_file, options->key_file, &run->identities[0], error,
                             error_size);
    }
    if (options->cert_dir == NULL) {
        return LG_EXIT_RAN; /* no client certificate: tokens, or a test of the refusal */
    }
    unsigned long *numbers = NULL;
    size_t count = 0;
    int status = list_identity_numbers(options->cert_dir, &numbers, &count, error, error_size);
    if (status != LG_EXIT_RAN) {
        return status;
    }
    run->identities = calloc(count, sizeof(*run->identities));
    if (run->identities == NULL) {
        free(numbers);
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "out of memory");
    }
    for (size_t i = 0; i < count && status == LG_EXIT_RAN; i++) {
        char cert_path[4096], key_path[4096];
        snprintf(cert_path, sizeof(cert_path), "%s/%lu.crt", options->cert_dir, numbers[i]);
        snprintf(key_path, sizeof(key_path), "%s/%lu.key", options->cert_dir, numbers[i]);
        status = load_identity(cert_path, key_path, &run->identities[i], error, error_size);
        if (status == LG_EXIT_RAN) {
            run->identity_count = i + 1;
        }
    }
    free(numbers);
    return status;
}

/* ---- the TLS context ---- */

static int make_ssl_ctx(struct lg_run *run, char *error, size_t error_size)
{
    const struct lg_options *options = run->options;
    char reason[256];
    if (access(options->ca_file, R_OK) != 0) {
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "--ca '%s': %s", options->ca_file,
                         strerror(errno));
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "cannot create a TLS context: %s",
                         openssl_reason(reason, sizeof(reason)));
    }
    run->ssl_ctx = ctx;
    int min_version = options->tls_version != 0 ? options->tls_version : TLS1_2_VERSION;
    int max_version = options->tls_version != 0 ? options->tls_version : TLS1_3_VERSION;
    static const unsigned char alpn[] = "\x08http/1.1";
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    int name_set = run->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, run->host)
                                   : X509_VERIFY_PARAM_set1_host(param, run->host, 0);
    if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, max_version) != 1 || name_set != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN, "cannot set the TLS policy: %s",
                         openssl_reason(reason, sizeof(reason)));
    }
    /* Every handshake a full one: nothing kept to resume (see the file comment). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Ten thousand idle connections should not hold 34 KiB of record buffers each. Send the
     * client chain as given (the certificate file's), as kubectl and the kubelet (Go) do:
     * OpenSSL would otherwise complete it from --ca and send the root as well, which every
     * server then decodes for nothing (about a tenth of a P-256 handshake's cost). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, options->ca_file, NULL) != 1) {
        return set_error(error, error_size, LG_EXIT_CANNOT_RUN,
                         "--ca '%s': no PEM certificate could be loaded: %s", options->ca_file,
                         openssl_reason(reason, sizeof(reason)));
    }
    return LG_EXIT_RAN;
}

int lg_run_prepare(struct lg_run *run, const struct lg_options *options, char *error,
                   size_t error_size)
{
    memset(run, 0, sizeof(*run));
    run->options = options;
    atomic_init(&run->next_identity, 0);
    atomic_init(&run->ops_issued, 0);
    int status = parse_url(run, options->url, error, error_size);
    if (status == LG_EXIT_RAN) {
        status = build_request(run, error, error_size);
    }
    if (status == LG_EXIT_RAN) {
        status = make_ssl_ctx(run, error, error_size);
    }
    if (status == LG_EXIT_RAN) {
        status = load_identities(run, error, error_size);
    }
    if (status == LG_EXIT_RAN) {
        status = resolve(run, error, error_size);
    }
    return status;
}

void lg_run_wipe(struct lg_run *run)
{
    for (size_t i = 0; i < run->identity_count; i++) {
        identity_wipe(&run->identities[i]);
    }
    free(run->identities);
    SSL_CTX_free(run->ssl_ctx);
    free(run->request);
    memset(run, 0, sizeof(*run));
}
