/*
 * net/request.c - a request as the handler sees it: evhttp's request turned into
 * struct kp_http_request (the method, the percent-decoded path, the query decoded as Go
 * does, the body), the accessors (kp_http_method ... kp_http_remote), and the response
 * (kp_http_respond, and the way a small response is written at once). Separate from http.c,
 * which owns the server, its workers and connections and hands each request over here; the
 * types both use are in http_internal.h.
 */
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "net/http.h"
#include "net/http_internal.h"

/* ------------------------------------------------------------------ parsing */

static const char *method_name(enum evhttp_cmd_type type)
{
    switch (type) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "UNKNOWN";
    }
}

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
    free(request->body);
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
 * name without '=' has the value "" ("?watch"), '+' is a space. (evhttp_parse_query_str
 * rejects the whole query for a name without '='.) */
static bool parse_query(struct kp_http_request *request, const char *query)
{
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

void http_send_plain(struct evhttp_request *req, int status, const char *text, bool close)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
    if (close) {
        evhttp_add_header(headers, "Connection", "close");
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
    evhttp_send_reply(req, status, http_status_reason(status), NULL);
}

static size_t header_count(struct evkeyvalq *headers, const char *name)
{
    size_t count = 0;
    struct evkeyval *header;
    TAILQ_FOREACH(header, headers, next)
    {
        count += evutil_ascii_strcasecmp(header->key, name) == 0;
    }
    return count;
}

/* Message framing evhttp accepted but we will not guess at (RFC 9112 §6.1, §6.3): a
 * Transfer-Encoding other than exactly "chunked", or with a Content-Length beside it, or
 * conflicting Content-Lengths. Answered 400 and the connection closed. */
bool http_framing_ok(struct evhttp_request *req)
{
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    size_t te = header_count(headers, "Transfer-Encoding");
    size_t cl = header_count(headers, "Content-Length");
    if (te > 1 || (te == 1 && cl > 0)) {
        return false;
    }
    if (te == 1 &&
        evutil_ascii_strcasecmp(evhttp_find_header(headers, "Transfer-Encoding"), "chunked") != 0) {
        return false;
    }
    if (cl > 1) {
        const char *first = evhttp_find_header(headers, "Content-Length");
        struct evkeyval *header;
        TAILQ_FOREACH(header, headers, next)
        {
            if (evutil_ascii_strcasecmp(header->key, "Content-Length") == 0 &&
                strcmp(header->value, first) != 0) {
                return false;
            }
        }
    }
    return true;
}

/* Builds the handler's view; on failure answers the request itself and returns NULL. */
struct kp_http_request *http_request_new(struct evhttp_request *req, struct conn *conn)
{
    struct kp_http_request *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        http_send_plain(req, 503, "out of memory\n", true);
        return NULL;
    }
    request->req = req;
    request->conn = conn;
    request->method = method_name(evhttp_request_get_command(req));

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw_path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (raw_path == NULL || raw_path[0] == '\0') {
        raw_path = "/";
    }
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    request->raw_query = query != NULL ? query : "";
    request->path = decode_component(raw_path, strlen(raw_path), false);
    if (request->path == NULL) {
        http_send_plain(req, 400, "invalid request path\n", true);
        goto fail;
    }
    if (!parse_query(request, request->raw_query)) {
        http_send_plain(req, 400, "invalid query string\n", true);
        goto fail;
    }
    if (!http_framing_ok(req)) {
        http_send_plain(req, 400, "invalid message framing (Transfer-Encoding / Content-Length)\n",
                        true);
        goto fail;
    }
    /* evhttp has checked the size against max_body_bytes. */
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    request->body_len = evbuffer_get_length(input);
    request->body = malloc(request->body_len + 1);
    if (request->body == NULL) {
        http_send_plain(req, 503, "out of memory\n", true);
        goto fail;
    }
    evbuffer_copyout(input, request->body, request->body_len);
    request->body[request->body_len] = '\0';
    return request;

fail:
    http_request_free(request);
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
    return evhttp_find_header(evhttp_request_get_input_headers(request->req), name);
}

size_t kp_http_header_values(struct kp_http_request *request, const char *name, const char **values,
                             size_t max)
{
    size_t count = 0;
    struct evkeyval *header;
    TAILQ_FOREACH(header, evhttp_request_get_input_headers(request->req), next)
    {
        if (count < max && evutil_ascii_strcasecmp(header->key, name) == 0) {
            values[count++] = header->value;
        }
    }
    return count;
}

size_t kp_http_headers(struct kp_http_request *request, const char **names, const char **values,
                       size_t max)
{
    size_t count = 0;
    struct evkeyval *header;
    TAILQ_FOREACH(header, evhttp_request_get_input_headers(request->req), next)
    {
        if (count == max) {
            break;
        }
        names[count] = header->key;
        values[count] = header->value;
        count++;
    }
    return count;
}

const char *kp_http_body(struct kp_http_request *request, size_t *len)
{
    if (len != NULL) {
        *len = request->body_len;
    }
    return request->body;
}

STACK_OF(X509) * kp_http_peer_chain(struct kp_http_request *request)
{
    return request->conn->peer_chain;
}

const char *kp_http_remote(struct kp_http_request *request)
{
    return request->conn->remote;
}

void kp_http_add_header(struct kp_http_request *request, const char *name, const char *value)
{
    if (request->responded || request->streaming) {
        kp_log_error("http: header '%s' added after the response started; ignored", name);
        return;
    }
    if (evhttp_add_header(evhttp_request_get_output_headers(request->req), name, value) != 0) {
        kp_log_warn("http: response header '%s' refused (CR or LF in it)", name);
    }
}

/* The handler does not frame the message: we do. */
void http_remove_framing_headers(struct evkeyvalq *headers, bool content_type_given)
{
    while (evhttp_remove_header(headers, "Content-Length") == 0) {
    }
    while (evhttp_remove_header(headers, "Transfer-Encoding") == 0) {
    }
    while (content_type_given && evhttp_remove_header(headers, "Content-Type") == 0) {
    }
}

/* Sends a small response straight away instead of through the loop. evhttp leaves it in the
 * bufferevent's output and enables writing; bufferevent_openssl would then wait for EPOLLOUT
 * and write it: two epoll_ctl calls and a wake-up more per keep-alive request. A connection's
 * socket is nearly always writable, so the response is written here and the write event
 * cancelled before the loop applies it (libevent's changelist: no system call at all). Then
 * evhttp's write callback runs from the loop, deferred, as if bufferevent had written it. If
 * the socket takes only part (or none) of it, nothing is drained and bufferevent_openssl
 * retries the same bytes when the socket is writable, which OpenSSL allows (one write in
 * progress; SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, coalesce_output). */
static void write_now(struct conn *conn)
{
    struct bufferevent *bev = conn->bev;
    struct evbuffer *output = bufferevent_get_output(bev);
    size_t len = evbuffer_get_length(output);
    if (len == 0 || len > COALESCE_MAX_BYTES) {
        return;
    }
    unsigned char *data = evbuffer_pullup(output, -1);
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (data == NULL || ssl == NULL || !SSL_is_init_finished(ssl)) {
        return;
    }
    ERR_clear_error();
    int written = SSL_write(ssl, data, (int)len);
    if (written <= 0) {
        ERR_clear_error(); /* bufferevent_openssl meets the same condition on its own write */
        return;
    }
    (void)evbuffer_drain(output, (size_t)written);
    if (evbuffer_get_length(output) == 0) {
        bufferevent_disable(bev, EV_WRITE);
        bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
    }
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
    struct evhttp_request *req = request->req;
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    http_remove_framing_headers(headers, content_type != NULL);
    if (content_type != NULL) {
        evhttp_add_header(headers, "Content-Type", content_type);
    }
    /* RFC 9110 §8.6: no Content-Length on 204 and 304; a HEAD answer carries the length the
     * body would have and no body (evhttp would send one). */
    bool bodyless = status == 204 || status == 304;
    bool head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    if (!bodyless) {
        char length[32];
        snprintf(length, sizeof(length), "%zu", len);
        evhttp_add_header(headers, "Content-Length", length);
        if (!head && len > 0 && evbuffer_add(evhttp_request_get_output_buffer(req), body, len)) {
            kp_log_error("http: out of memory copying a %zu-byte response", len);
            evhttp_remove_header(headers, "Content-Length");
            evhttp_add_header(headers, "Connection", "close");
            status = 503;
        }
    }
    request->status = status;
    struct conn *conn = request->conn;
    /* Only onto an empty output: bytes still there (a "100 Continue" the socket did not take)
     * may be a write bufferevent_openssl has begun and will retry with its own length, which
     * OpenSSL refuses once a longer write of ours has gone through part of it. */
    bool nothing_pending = evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0;
    evhttp_send_reply(req, status, http_status_reason(status), NULL);
    if (nothing_pending)
        write_now(conn);
}

int kp_http_response_status(const struct kp_http_request *request)
{
    return request->status;
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
