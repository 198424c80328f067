/*
 * net/request.c - HTTP/1.1 requests and responses: the request head and body parsed from a
 * connection's input with http_parser (Debian's libhttp-parser, the parser Node.js used until
 * llhttp, which Debian 12 does not ship), a request as the handler sees it (kp_http_method ...
 * kp_http_remote), and the response (kp_http_respond) written into the connection's output.
 *
 * The parser runs over conn->in as bytes arrive and reports pieces of the request-target and of
 * the headers; they are kept as offsets into conn->in (which may move when it grows), and at the
 * end of the head copied into one block the request owns, NUL-terminated, so the input can go
 * as soon as the request is complete. The body is copied as it comes (a chunked body arrives
 * between chunk headers). The parser pauses at the end of each request, so pipelined requests
 * are taken one at a time. What the parser refuses and the limits kpki adds are answered here,
 * with a text/plain body, and the connection closes (docs/net.md has the table).
 */
#include <errno.h>
#include <event2/http.h> /* evhttp_uridecode */
#include <http_parser.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "net/http.h"
#include "net/http_internal.h"

/* ------------------------------------------------------------------ requests */

void http_request_free(struct kp_http_request *request)
{
    if (request == NULL) {
        return;
    }
    for (size_t i = 0; i < request->param_count; i++) {
        free(request->params[i].name);
        free(request->params[i].value);
    }
    free(request->params);
    free(request->path);
    free(request->refs);
    free(request->head);
    http_buf_free(&request->body);
    http_buf_free(&request->extra);
    free(request);
}

/* Percent-decodes text[0..len) (plus as space when asked). NULL when the result would hold a
 * NUL byte (C strings cannot carry it faithfully) or on allocation failure. */
static char *decode_component(const char *text, size_t len, bool plus_is_space)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (memchr(copy, '%', len) == NULL && (!plus_is_space || memchr(copy, '+', len) == NULL)) {
        return copy; /* nothing to decode: the common case */
    }
    size_t decoded_len = 0;
    char *decoded = evhttp_uridecode(copy, plus_is_space ? 1 : 0, &decoded_len);
    free(copy);
    if (decoded != NULL && strlen(decoded) != decoded_len) {
        free(decoded);
        return NULL;
    }
    return decoded;
}

/* Go's url.ParseQuery, which Kubernetes clients are written against: pairs split on '&', a
 * name without '=' has the value "" ("?watch"), '+' is a space. */
static bool parse_query(struct kp_http_request *request, const char *query)
{
    if (query[0] == '\0') {
        return true;
    }
    size_t pieces = 1;
    for (const char *p = query; *p != '\0'; p++) {
        pieces += *p == '&';
    }
    request->params = calloc(pieces, sizeof(*request->params));
    if (request->params == NULL) {
        return false;
    }
    const char *cursor = query;
    while (*cursor != '\0') {
        size_t piece_len = strcspn(cursor, "&");
        if (piece_len > 0) {
            const char *equals = memchr(cursor, '=', piece_len);
            size_t name_len = equals != NULL ? (size_t)(equals - cursor) : piece_len;
            const char *value = equals != NULL ? equals + 1 : cursor + piece_len;
            size_t value_len = (size_t)(cursor + piece_len - value);
            struct query_param *param = &request->params[request->param_count];
            param->name = decode_component(cursor, name_len, true);
            param->value = decode_component(value, value_len, true);
            if (param->name == NULL || param->value == NULL) {
                free(param->name);
                free(param->value);
                param->name = param->value = NULL;
                return false;
            }
            request->param_count++;
        }
        cursor += piece_len;
        if (*cursor == '&') {
            cursor++;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ parsing */

static struct conn *conn_of(http_parser *parser)
{
    return parser->data;
}

static const char *input_start(const struct conn *conn)
{
    return conn->in.data + conn->in.off;
}

/* The parser stops with an answer for the client: status and why. */
static int refuse(struct conn *conn, int status, const char *why)
{
    conn->parse_status = status;
    conn->parse_error = why;
    return -1;
}

/* Adds a piece the parser reported to a run of input: pieces of one item are adjacent (the
 * parser is only ever split where one read ended), except for a header value folded over
 * lines (obs-fold, RFC 9112 §5.2), which is refused. */
static int extend_run(struct conn *conn, size_t *off, size_t *len, const char *at, size_t n)
{
    size_t at_off = (size_t)(at - input_start(conn));
    if (at_off + n > conn->parsing->head_end) {
        conn->parsing->head_end = at_off + n;
    }
    if (*len == 0) {
        *off = at_off;
        *len = n;
        return 0;
    }
    if (*off + *len != at_off) {
        return refuse(conn, 400, "obsolete line folding in a header");
    }
    *len += n;
    return 0;
}

static int on_message_begin(http_parser *parser)
{
    struct conn *conn = conn_of(parser);
    struct kp_http_request *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        return refuse(conn, 503, "out of memory");
    }
    request->conn = conn;
    request->head_start = conn->parsed; /* give or take the empty lines before a request */
    conn->parsing = request;
    return 0;
}

static int on_url(http_parser *parser, const char *at, size_t len)
{
    struct conn *conn = conn_of(parser);
    return extend_run(conn, &conn->parsing->url_off, &conn->parsing->url_len, at, len);
}

static int on_header_field(http_parser *parser, const char *at, size_t len)
{
    struct conn *conn = conn_of(parser);
    struct kp_http_request *request = conn->parsing;
    if (request->head != NULL) {
        return 0; /* a chunked body's trailer fields: not kept (counted as overhead) */
    }
    if (request->ref_count == 0 || request->in_value) {
        if (request->ref_count == request->ref_cap) {
            size_t cap = request->ref_cap > 0 ? request->ref_cap * 2 : 16;
            struct header_ref *refs = realloc(request->refs, cap * sizeof(*refs));
            if (refs == NULL) {
                return refuse(conn, 503, "out of memory");
            }
            request->refs = refs;
            request->ref_cap = cap;
        }
        request->refs[request->ref_count++] = (struct header_ref){0};
        request->in_value = false;
    }
    struct header_ref *ref = &request->refs[request->ref_count - 1];
    return extend_run(conn, &ref->name_off, &ref->name_len, at, len);
}

static int on_header_value(http_parser *parser, const char *at, size_t len)
{
    struct conn *conn = conn_of(parser);
    struct kp_http_request *request = conn->parsing;
    if (request->head != NULL) {
        return 0;
    }
    request->in_value = true;
    struct header_ref *ref = &request->refs[request->ref_count - 1];
    return extend_run(conn, &ref->value_off, &ref->value_len, at, len);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 §5.6.2: a field name is a token. (The Debian build of http_parser lets spaces and
 * some separators through; Go's server refuses them, and so does kpki.) */
static bool is_token(const char *text, size_t len)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && (c == '\0' || strchr(extra, c) == NULL)) {
            return false;
        }
    }
    return true;
}

/* The target and the headers, copied into one NUL-terminated block the request owns. */
static int copy_head(struct conn *conn, struct kp_http_request *request)
{
    const char *input = input_start(conn);
    size_t count = request->ref_count;
    size_t bytes = request->url_len + 1;
    for (size_t i = 0; i < count; i++) {
        bytes += request->refs[i].name_len + request->refs[i].value_len + 2;
    }
    char *block = malloc(2 * count * sizeof(char *) + bytes);
    if (block == NULL) {
        return refuse(conn, 503, "out of memory");
    }
    request->head = block;
    request->names = (const char **)(void *)block;
    request->values = request->names + count;
    char *text = (char *)(request->values + count);
    memcpy(text, input + request->url_off, request->url_len);
    text[request->url_len] = '\0';
    request->target = text;
    text += request->url_len + 1;
    for (size_t i = 0; i < count; i++) {
        const struct header_ref *ref = &request->refs[i];
        if (!is_token(input + ref->name_off, ref->name_len)) {
            return refuse(conn, 400, "invalid header name");
        }
        memcpy(text, input + ref->name_off, ref->name_len);
        text[ref->name_len] = '\0';
        request->names[i] = text;
        text += ref->name_len + 1;
        /* Optional whitespace around the value is not part of it (RFC 9110 §5.5). */
        const char *value = input + ref->value_off;
        size_t value_len = ref->value_len;
        while (value_len > 0 && is_space(value[0])) {
            value++;
            value_len--;
        }
        while (value_len > 0 && is_space(value[value_len - 1])) {
            value_len--;
        }
        memcpy(text, value, value_len);
        text[value_len] = '\0';
        request->values[i] = text;
        text += value_len + 1;
    }
    request->header_count = count;
    free(request->refs);
    request->refs = NULL;
    request->ref_count = request->ref_cap = 0;
    return 0;
}

/* The path (percent-decoded) and the query (raw, and decoded as Go does) from the target:
 * origin-form "/p?q", absolute-form "https://host/p?q" (RFC 9112 §3.2.2), or "*". */
static int split_target(struct conn *conn, struct kp_http_request *request)
{
    const char *target = request->target;
    const char *path = target;
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        const char *authority = strstr(target, "//") + 2;
        path = authority + strcspn(authority, "/?");
    } else if (target[0] != '/' && strcmp(target, "*") != 0) {
        return refuse(conn, 400, "invalid request target");
    }
    const char *question = strchr(path, '?');
    size_t path_len = question != NULL ? (size_t)(question - path) : strlen(path);
    request->raw_query = question != NULL ? question + 1 : "";
    request->path = path_len > 0 ? decode_component(path, path_len, false) : strdup("/");
    if (request->path == NULL) {
        return refuse(conn, 400, "invalid request path");
    }
    if (!parse_query(request, request->raw_query)) {
        return refuse(conn, 400, "invalid query string");
    }
    return 0;
}

/* What a 501 answer lists; allowed_method below is the same set. */
#define SERVED_METHODS "GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS"

static const char *allowed_method(enum http_method method)
{
    switch (method) {
    case HTTP_GET:
        return "GET";
    case HTTP_HEAD:
        return "HEAD";
    case HTTP_POST:
        return "POST";
    case HTTP_PUT:
        return "PUT";
    case HTTP_PATCH:
        return "PATCH";
    case HTTP_DELETE:
        return "DELETE";
    case HTTP_OPTIONS:
        return "OPTIONS";
    default:
        return NULL;
    }
}

static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* "Expect: 100-continue" is answered before the body comes (a client waits for it, up to its
 * own timeout: curl 1 s, Go's ExpectContinueTimeout); any other expectation gets 417. */
static int handle_expect(struct conn *conn, struct kp_http_request *request, http_parser *parser)
{
    const char *expect = kp_http_header(request, "Expect");
    if (expect == NULL || request->http_minor == 0) {
        return 0;
    }
    if (strcasecmp(expect, "100-continue") != 0) {
        return refuse(conn, 417, "unsupported expectation");
    }
    bool body_coming = (parser->flags & F_CHUNKED) != 0 ||
                       ((parser->flags & F_CONTENTLENGTH) != 0 && parser->content_length > 0);
    if (body_coming && !http_buf_append(&conn->out, CONTINUE, sizeof(CONTINUE) - 1)) {
        return refuse(conn, 503, "out of memory");
    }
    return 0;
}

static int on_headers_complete(http_parser *parser)
{
    struct conn *conn = conn_of(parser);
    struct kp_http_request *request = conn->parsing;
    const struct kp_http_limits *limits = &conn->worker->server->limits;
    if (request->head_end - request->head_start > limits->max_header_bytes) {
        return refuse(conn, 431, "request header fields too large");
    }
    if (parser->http_major != 1) {
        return refuse(conn, 505, "HTTP version not supported");
    }
    request->method_id = (enum http_method)parser->method;
    request->method = allowed_method(request->method_id);
    if (request->method == NULL) {
        return refuse(conn, 501, NULL); /* answer_parse_error names the method */
    }
    request->http_minor = parser->http_minor;
    request->keep_alive = http_should_keep_alive(parser) != 0;
    if (copy_head(conn, request) != 0 || split_target(conn, request) != 0) {
        return -1;
    }
    if ((parser->flags & F_CONTENTLENGTH) != 0 &&
        parser->content_length > (uint64_t)limits->max_body_bytes) {
        return refuse(conn, 413, "request body too large");
    }
    return handle_expect(conn, request, parser);
}

static int on_body(http_parser *parser, const char *at, size_t len)
{
    struct conn *conn = conn_of(parser);
    struct http_buf *body = &conn->parsing->body;
    if (body->len + len > conn->worker->server->limits.max_body_bytes) {
        return refuse(conn, 413, "request body too large");
    }
    if (!http_buf_append(body, at, len)) {
        return refuse(conn, 503, "out of memory");
    }
    return 0;
}

/* A chunk over the limit is refused at its size line, before its bytes come. */
static int on_chunk_header(http_parser *parser)
{
    struct conn *conn = conn_of(parser);
    conn->parsing->chunks++;
    if (conn->parsing->body.len + parser->content_length >
        conn->worker->server->limits.max_body_bytes) {
        return refuse(conn, 413, "request body too large");
    }
    return 0;
}

static int on_message_complete(http_parser *parser)
{
    http_parser_pause(parser, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings SETTINGS = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

void http_parser_setup(void)
{
    /* kpki enforces its own limit (max_header_bytes, answered 431); the library's compiled-in
     * 80 KiB must not cut in first. */
    http_parser_set_max_header_size(UINT32_MAX);
}

/* The method token that starts the request ("BREW" of "BREW /x HTTP/1.1"), copied to out;
 * false when the input does not start with one ("this is not http": not a request, 400). */
static bool leading_method(const struct conn *conn, char *out, size_t size)
{
    const char *input = input_start(conn);
    size_t start = 0;
    while (start < conn->in.len && (input[start] == '\r' || input[start] == '\n')) {
        start++; /* empty lines before a request are allowed */
    }
    size_t i = start;
    while (i < conn->in.len && i - start < 32 && input[i] >= 'A' && input[i] <= 'Z') {
        i++;
    }
    if (i == start || i >= conn->in.len || input[i] != ' ' || i - start >= size) {
        return false;
    }
    memcpy(out, input + start, i - start);
    out[i - start] = '\0';
    return true;
}

static void answer_parse_error(struct conn *conn)
{
    enum http_errno error = HTTP_PARSER_ERRNO(&conn->parser);
    int status = conn->parse_status;
    char method[33] = "";
    if (status == 501) { /* refused by on_headers_complete: the parser knows the method */
        snprintf(method, sizeof(method), "%s",
                 http_method_str((enum http_method)conn->parser.method));
    }
    const char *why = conn->parse_error;
    if (status == 0) {
        status = 400;
        why = http_errno_description(error);
        if (error == HPE_INVALID_METHOD && leading_method(conn, method, sizeof(method))) {
            status = 501;
        } else if (error == HPE_HEADER_OVERFLOW) {
            status = 431;
        }
    }
    char text[192];
    if (status == 501) {
        snprintf(text, sizeof(text), "the method %s is not implemented; kpki serves %s\n",
                 method[0] != '\0' ? method : "in the request line", SERVED_METHODS);
    } else {
        snprintf(text, sizeof(text), "%s\n", why);
    }
    http_request_free(conn->parsing);
    conn->parsing = NULL;
    http_send_error(conn, status, text);
}

/* What a request may spend on bytes that are neither its head nor its body - chunk-size lines,
 * chunk extensions, trailers - is bounded, or a client could keep a connection parsing without
 * end: 16 KiB, plus 16 bytes per chunk, plus the body's own size (Go's net/http allows as much
 * since its fix for CVE-2023-39326). The head counts against max_header_bytes on top. */
static bool overhead_too_large(const struct kp_http_request *request,
                               const struct kp_http_limits *limits)
{
    size_t non_body = request->consumed - request->body.len;
    size_t allowed = limits->max_header_bytes + 16384 + 16 * request->chunks + request->body.len;
    return non_body > allowed;
}

struct kp_http_request *http_parse_next(struct conn *conn)
{
    if (conn->parsed == conn->in.len) {
        return NULL;
    }
    if (conn->parsing == NULL) {
        http_parser_init(&conn->parser, HTTP_REQUEST);
        conn->parser.data = conn;
        conn->parse_status = 0;
        conn->parse_error = NULL;
    }
    size_t fed = conn->in.len - conn->parsed;
    size_t used =
        http_parser_execute(&conn->parser, &SETTINGS, input_start(conn) + conn->parsed, fed);
    conn->parsed += used;
    if (conn->parsing != NULL) {
        conn->parsing->consumed += used;
    }
    enum http_errno error = HTTP_PARSER_ERRNO(&conn->parser);
    if (error == HPE_PAUSED) {
        http_parser_pause(&conn->parser, 0);
        struct kp_http_request *request = conn->parsing;
        conn->parsing = NULL;
        if (request == NULL || request->head == NULL) {
            conn->parse_status = 400; /* not reached: a message ends after its head */
            conn->parse_error = "incomplete request";
            answer_parse_error(conn);
            return NULL;
        }
        if (request->body.len > 0) { /* an empty body is "" (kp_http_body): no buffer */
            if (!http_buf_reserve(&request->body, 1)) {
                http_request_free(request);
                http_send_error(conn, 503, "out of memory\n");
                return NULL;
            }
            request->body.data[request->body.off + request->body.len] = '\0';
        }
        return request;
    }
    if (error != HPE_OK) {
        answer_parse_error(conn);
        return NULL;
    }
    struct kp_http_request *request = conn->parsing;
    const struct kp_http_limits *limits = &conn->worker->server->limits;
    if (request != NULL && request->head == NULL) {
        /* Headers that never end are answered as soon as they pass the limit. */
        if (conn->parsed - request->head_start > limits->max_header_bytes) {
            conn->parse_status = 431;
            conn->parse_error = "request header fields too large";
            answer_parse_error(conn);
        }
        return NULL; /* the head's pieces are offsets into the input: keep it */
    }
    if (request != NULL && overhead_too_large(request, limits)) {
        conn->parse_status = 400;
        conn->parse_error = "chunked encoding contains too much non-data";
        answer_parse_error(conn);
        return NULL;
    }
    /* Nothing parsed is needed any more (the head is copied, the body too): the input holds only
     * what the parser has not seen, so a body never sits in memory twice. */
    http_buf_consume(&conn->in, conn->parsed);
    conn->parsed = 0;
    return NULL;
}

/* ------------------------------------------------------------------ request accessors */

const char *kp_http_method(struct kp_http_request *request)
{
    return request->method;
}

const char *kp_http_path(struct kp_http_request *request)
{
    return request->path;
}

const char *kp_http_raw_query(struct kp_http_request *request)
{
    return request->raw_query;
}

const char *kp_http_query(struct kp_http_request *request, const char *name)
{
    for (size_t i = 0; i < request->param_count; i++) {
        if (strcmp(request->params[i].name, name) == 0) {
            return request->params[i].value;
        }
    }
    return NULL;
}

const char *kp_http_header(struct kp_http_request *request, const char *name)
{
    for (size_t i = 0; i < request->header_count; i++) {
        if (strcasecmp(request->names[i], name) == 0) {
            return request->values[i];
        }
    }
    return NULL;
}

size_t kp_http_header_values(struct kp_http_request *request, const char *name, const char **values,
                             size_t max)
{
    size_t count = 0;
    for (size_t i = 0; i < request->header_count && count < max; i++) {
        if (strcasecmp(request->names[i], name) == 0) {
            values[count++] = request->values[i];
        }
    }
    return count;
}

size_t kp_http_headers(struct kp_http_request *request, const char **names, const char **values,
                       size_t max)
{
    size_t count = request->header_count < max ? request->header_count : max;
    for (size_t i = 0; i < count; i++) {
        names[i] = request->names[i];
        values[i] = request->values[i];
    }
    return count;
}

const char *kp_http_body(struct kp_http_request *request, size_t *len)
{
    if (len != NULL) {
        *len = request->body.len;
    }
    return request->body.data != NULL ? request->body.data + request->body.off : "";
}

STACK_OF(X509) * kp_http_peer_chain(struct kp_http_request *request)
{
    return request->conn->peer_chain;
}

const char *kp_http_remote(struct kp_http_request *request)
{
    return request->conn->remote;
}

void *kp_http_conn_data(struct kp_http_request *request)
{
    return request->conn->app_data;
}

void kp_http_conn_set_data(struct kp_http_request *request, void *data)
{
    free(request->conn->app_data);
    request->conn->app_data = data;
}

int kp_http_response_status(const struct kp_http_request *request)
{
    return request->status;
}

/* ------------------------------------------------------------------ responses */

static bool valid_header_text(const char *text, bool name)
{
    if (name && text[0] == '\0') {
        return false;
    }
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\r' || *p == '\n' || (name && (*p == ':' || is_space(*p)))) {
            return false;
        }
    }
    return true;
}

void kp_http_add_header(struct kp_http_request *request, const char *name, const char *value)
{
    if (request->responded || request->streaming) {
        kp_log_error("http: header '%s' added after the response started; ignored", name);
        return;
    }
    if (!valid_header_text(name, true) || !valid_header_text(value, false)) {
        kp_log_warn("http: response header '%s' refused (CR or LF in it)", name);
        return;
    }
    struct http_buf *extra = &request->extra;
    if (!http_buf_append(extra, name, strlen(name)) || !http_buf_append(extra, ": ", 2) ||
        !http_buf_append(extra, value, strlen(value)) || !http_buf_append(extra, "\r\n", 2)) {
        kp_log_error("http: out of memory adding response header '%s'", name);
    }
}

/* Whether the connection stays open after the answer to request. */
static bool keeps_alive(const struct conn *conn, const struct kp_http_request *request)
{
    return request != NULL && request->keep_alive && !conn->close_after && !conn->rx_eof &&
           !conn->worker->stopping;
}

static bool append_text(struct http_buf *buf, const char *text)
{
    return http_buf_append(buf, text, strlen(text));
}

/* Whether the line "Name: value\r\n" names a header the server sets itself. */
static bool framing_line(const char *line, size_t len, bool content_type_given)
{
    static const char *const ours[] = {
        "Content-Length:", "Transfer-Encoding:", "Connection:", "Date:"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        size_t n = strlen(ours[i]);
        if (len >= n && strncasecmp(line, ours[i], n) == 0) {
            return true;
        }
    }
    return content_type_given && len >= 13 && strncasecmp(line, "Content-Type:", 13) == 0;
}

/* The handler's headers, without the ones the server sets (framing, Connection, Date, and
 * Content-Type when the response names one). */
static bool append_extra(struct http_buf *out, const struct http_buf *extra,
                         bool content_type_given)
{
    const char *cursor = extra->data + extra->off;
    const char *end = cursor + extra->len;
    while (cursor < end) {
        const char *line_end = memchr(cursor, '\n', (size_t)(end - cursor));
        size_t len = (size_t)(line_end - cursor) + 1;
        if (!framing_line(cursor, len, content_type_given) && !http_buf_append(out, cursor, len)) {
            return false;
        }
        cursor += len;
    }
    return true;
}

void http_write_head(struct conn *conn, struct kp_http_request *request, int status,
                     const char *content_type, const char *framing)
{
    bool keep = keeps_alive(conn, request);
    if (!keep) {
        conn->close_after = true;
    }
    /* HTTP/1.0 is answered as 1.0, any later 1.x as 1.1 (RFC 9110 §6.2, as Go does). */
    unsigned minor = request != NULL && request->http_minor == 0 ? 0 : 1;
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.%u %d ", minor, status);
    struct http_buf *out = &conn->out;
    bool ok = http_buf_append(out, line, (size_t)n) &&
              append_text(out, http_status_reason(status)) && http_buf_append(out, "\r\n", 2);
    if (content_type != NULL) {
        ok = ok && append_text(out, "Content-Type: ") && append_text(out, content_type) &&
             http_buf_append(out, "\r\n", 2);
    }
    if (framing != NULL) {
        ok = ok && append_text(out, framing);
    }
    if (request != NULL) {
        ok = ok && append_extra(out, &request->extra, content_type != NULL);
    }
    ok = ok && append_text(out, http_worker_date(conn->worker));
    if (!keep) {
        ok = ok && append_text(out, "Connection: close\r\n");
    } else if (minor == 0) {
        ok = ok && append_text(out, "Connection: keep-alive\r\n");
    }
    ok = ok && http_buf_append(out, "\r\n", 2);
    if (!ok) {
        http_conn_drop(conn, "out of memory writing a response");
    }
}

void http_send_error(struct conn *conn, int status, const char *text)
{
    conn->close_after = true;
    conn->refused_early = true;
    conn->state = CONN_HANDLING;
    char framing[48];
    size_t len = strlen(text);
    snprintf(framing, sizeof(framing), "Content-Length: %zu\r\n", len);
    http_write_head(conn, NULL, status, "text/plain; charset=utf-8", framing);
    if (!http_buf_append(&conn->out, text, len)) {
        http_conn_drop(conn, "out of memory writing a response");
        return;
    }
    http_conn_response_queued(conn);
}

void kp_http_respond(struct kp_http_request *request, int status, const char *content_type,
                     const char *body, size_t len)
{
    if (request->responded || request->streaming) {
        kp_log_error("http: second response to %s %s ignored", request->method, request->path);
        return;
    }
    request->responded = true;
    if (status < 200 || status > 999) {
        kp_log_error("http: status %d is not a final response; sending 500", status);
        status = 500;
        content_type = "text/plain; charset=utf-8";
        body = "internal error: bad status\n";
        len = strlen(body);
    }
    request->status = status;
    struct conn *conn = request->conn;
    if (conn->state == CONN_CLOSING) {
        return; /* dropped meanwhile (out of memory): nobody to answer */
    }
    /* RFC 9110 §8.6: no Content-Length on 204 and 304; a HEAD answer carries the length the
     * body would have and no body. */
    bool bodyless = status == 204 || status == 304;
    bool send_body = !bodyless && request->method_id != HTTP_HEAD;
    char framing[48];
    snprintf(framing, sizeof(framing), "Content-Length: %zu\r\n", len);
    if (!http_conn_reserve(conn, &conn->out, 512 + request->extra.len + (send_body ? len : 0))) {
        http_conn_drop(conn, "out of memory writing a response");
        return;
    }
    http_write_head(conn, request, status, content_type, bodyless ? NULL : framing);
    if (send_body && !http_buf_append(&conn->out, body, len)) {
        http_conn_drop(conn, "out of memory writing a response");
        return;
    }
    http_conn_response_queued(conn);
}
