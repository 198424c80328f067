/*
 * http_response.c - the incremental response reader (see http_response.h).
 *
 * Framing follows RFC 9112 §6.3: Transfer-Encoding: chunked wins over Content-Length; a
 * Transfer-Encoding other than plain chunked cannot be framed by a client and is an error;
 * conflicting Content-Length values are an error; without either, the body runs until the
 * connection ends (and the connection cannot be reused).
 */
#include "http_response.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A chunk-size line is hex digits plus optional extensions; more than this is not a server
 * behaving. */
#define MAX_CHUNK_LINE_BYTES 1024

void lg_http_response_reset(struct lg_http_response *response, bool head_request)
{
    memset(response, 0, sizeof(*response));
    response->state = LG_HTTP_STATUS_LINE;
    response->head_request = head_request;
}

static enum lg_http_feed fail(struct lg_http_response *response, const char *reason)
{
    snprintf(response->error, sizeof(response->error), "%s", reason);
    response->state = LG_HTTP_FAILED;
    return LG_HTTP_ERROR;
}

static const char *skip_spaces(const char *text)
{
    while (*text == ' ' || *text == '\t') {
        text++;
    }
    return text;
}

/* The value without trailing optional white space, into out (truncated to fit). */
static void trimmed_value(const char *value, char *out, size_t out_size)
{
    value = skip_spaces(value);
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        len--;
    }
    if (len >= out_size) {
        len = out_size - 1;
    }
    memcpy(out, value, len);
    out[len] = '\0';
}

static enum lg_http_feed parse_status_line(struct lg_http_response *response)
{
    const char *line = response->line;
    if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ') {
        return fail(response, "malformed status line");
    }
    if (!isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
        !isdigit((unsigned char)line[11]) || (line[12] != ' ' && line[12] != '\0')) {
        return fail(response, "malformed status code");
    }
    response->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (response->status < 100) {
        return fail(response, "malformed status code");
    }
    /* HTTP/1.1 persists by default; HTTP/1.0 only with Connection: keep-alive. */
    response->keep_alive = line[7] == '1';
    response->state = LG_HTTP_HEADERS;
    return LG_HTTP_NEED_MORE;
}

static enum lg_http_feed parse_content_length(struct lg_http_response *response, const char *value)
{
    char text[32];
    trimmed_value(value, text, sizeof(text));
    if (text[0] == '\0' || strlen(text) > 18) {
        return fail(response, "malformed Content-Length");
    }
    uint64_t length = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p)) {
            return fail(response, "malformed Content-Length");
        }
        length = length * 10 + (uint64_t)(*p - '0');
    }
    if (response->has_length && response->remaining != length) {
        return fail(response, "conflicting Content-Length headers");
    }
    response->has_length = true;
    response->remaining = length;
    return LG_HTTP_NEED_MORE;
}

static void parse_connection(struct lg_http_response *response, const char *value)
{
    char tokens[sizeof(response->line)];
    trimmed_value(value, tokens, sizeof(tokens));
    char *cursor = tokens;
    while (*cursor != '\0') {
        char *comma = strchr(cursor, ',');
        if (comma != NULL) {
            *comma = '\0';
        }
        char token[32];
        trimmed_value(cursor, token, sizeof(token));
        if (strcasecmp(token, "close") == 0) {
            response->keep_alive = false;
        } else if (strcasecmp(token, "keep-alive") == 0) {
            response->keep_alive = true;
        }
        if (comma == NULL) {
            break;
        }
        cursor = comma + 1;
    }
}

/* What the headers say the body is, once the empty line has arrived. */
static enum lg_http_feed end_of_headers(struct lg_http_response *response)
{
    if (response->status == 101) {
        return fail(response, "unexpected 101 Switching Protocols");
    }
    if (response->status < 200) {
        /* An interim response (100 Continue, 103 Early Hints): the real one follows. */
        bool head_request = response->head_request;
        lg_http_response_reset(response, head_request);
        return LG_HTTP_NEED_MORE;
    }
    if (response->head_request || response->status == 204 || response->status == 304) {
        response->state = LG_HTTP_DONE;
    } else if (response->chunked) {
        response->state = LG_HTTP_CHUNK_SIZE;
    } else if (response->has_length) {
        response->state = response->remaining == 0 ? LG_HTTP_DONE : LG_HTTP_BODY_LENGTH;
    } else {
        response->keep_alive = false;
        response->state = LG_HTTP_BODY_UNTIL_CLOSE;
    }
    return LG_HTTP_NEED_MORE;
}

static enum lg_http_feed parse_header_line(struct lg_http_response *response)
{
    const char *line = response->line;
    if (response->line_len == 0 && !response->line_too_long) {
        return end_of_headers(response);
    }
    if (line[0] == ' ' || line[0] == '\t') {
        return fail(response, "obsolete header line folding");
    }
    const char *colon = strchr(line, ':');
    if (colon == NULL || colon == line) {
        return fail(response, "malformed header line");
    }
    size_t name_len = (size_t)(colon - line);
    const char *value = colon + 1;
    bool framing = (name_len == 14 && strncasecmp(line, "content-length", 14) == 0) ||
                   (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) ||
                   (name_len == 10 && strncasecmp(line, "connection", 10) == 0);
    if (!framing) {
        return LG_HTTP_NEED_MORE;
    }
    if (response->line_too_long) {
        return fail(response, "a framing header too long to read");
    }
    if (name_len == 14) {
        return parse_content_length(response, value);
    }
    if (name_len == 17) {
        char coding[32];
        trimmed_value(value, coding, sizeof(coding));
        if (strcasecmp(coding, "chunked") != 0) {
            return fail(response, "unsupported Transfer-Encoding (only chunked)");
        }
        response->chunked = true;
        return LG_HTTP_NEED_MORE;
    }
    parse_connection(response, value);
    return LG_HTTP_NEED_MORE;
}

static enum lg_http_feed parse_chunk_size(struct lg_http_response *response)
{
    if (response->line_too_long) {
        return fail(response, "chunk-size line too long");
    }
    const char *p = response->line;
    uint64_t size = 0;
    int digits = 0;
    for (; isxdigit((unsigned char)*p); p++) {
        if (++digits > 15) {
            return fail(response, "chunk size too large");
        }
        int nibble = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        size = (size << 4) | (uint64_t)nibble;
    }
    p = skip_spaces(p);
    if (digits == 0 || (*p != '\0' && *p != ';')) {
        return fail(response, "malformed chunk size");
    }
    if (size == 0) {
        response->state = LG_HTTP_TRAILERS;
    } else {
        response->remaining = size;
        response->state = LG_HTTP_CHUNK_DATA;
    }
    return LG_HTTP_NEED_MORE;
}

static enum lg_http_feed handle_line(struct lg_http_response *response)
{
    switch (response->state) {
    case LG_HTTP_STATUS_LINE:
        if (response->line_too_long) {
            return fail(response, "status line too long");
        }
        return parse_status_line(response);
    case LG_HTTP_HEADERS:
        return parse_header_line(response);
    case LG_HTTP_CHUNK_SIZE:
        return parse_chunk_size(response);
    case LG_HTTP_CHUNK_DATA_END:
        if (response->line_len != 0 || response->line_too_long) {
            return fail(response, "chunk data longer than its size");
        }
        response->state = LG_HTTP_CHUNK_SIZE;
        return LG_HTTP_NEED_MORE;
    case LG_HTTP_TRAILERS:
        if (response->line_len == 0 && !response->line_too_long) {
            response->state = LG_HTTP_DONE;
        }
        return LG_HTTP_NEED_MORE;
    default:
        return fail(response, "internal: a line in a body state");
    }
}

/* Appends bytes of the current line up to and including its LF. Returns true when the line is
 * complete (CR LF or a bare LF stripped), having consumed *used bytes. */
static bool take_line_bytes(struct lg_http_response *response, const char *data, size_t len,
                            size_t *used)
{
    const char *newline = memchr(data, '\n', len);
    size_t take = newline != NULL ? (size_t)(newline - data) + 1 : len;
    size_t content = newline != NULL ? take - 1 : take;
    size_t room = sizeof(response->line) - 1 - response->line_len;
    if (content > room) {
        response->line_too_long = true;
    }
    size_t copy = content < room ? content : room;
    memcpy(response->line + response->line_len, data, copy);
    response->line_len += copy;
    response->line[response->line_len] = '\0';
    *used = take;
    if (newline == NULL) {
        return false;
    }
    if (response->line_len > 0 && response->line[response->line_len - 1] == '\r' &&
        !response->line_too_long) {
        response->line[--response->line_len] = '\0';
    }
    return true;
}

static bool is_line_state(enum lg_http_state state)
{
    return state == LG_HTTP_STATUS_LINE || state == LG_HTTP_HEADERS ||
           state == LG_HTTP_CHUNK_SIZE || state == LG_HTTP_CHUNK_DATA_END ||
           state == LG_HTTP_TRAILERS;
}

/* Bounds what a line may cost: headers and trailers share LG_HTTP_MAX_HEADER_BYTES, a chunk-size
 * line has its own limit. */
static bool line_within_limits(struct lg_http_response *response, size_t used)
{
    response->line_bytes += used;
    if (response->state == LG_HTTP_CHUNK_SIZE || response->state == LG_HTTP_CHUNK_DATA_END) {
        return response->line_bytes <= MAX_CHUNK_LINE_BYTES;
    }
    response->header_bytes += used;
    return response->header_bytes <= LG_HTTP_MAX_HEADER_BYTES;
}

enum lg_http_feed lg_http_response_feed(struct lg_http_response *response, const char *data,
                                        size_t len, size_t *consumed)
{
    size_t offset = 0;
    *consumed = 0;
    if (response->state == LG_HTTP_FAILED) {
        return LG_HTTP_ERROR;
    }
    while (offset < len && response->state != LG_HTTP_DONE) {
        if (is_line_state(response->state)) {
            size_t used = 0;
            bool complete = take_line_bytes(response, data + offset, len - offset, &used);
            offset += used;
            if (!line_within_limits(response, used)) {
                return fail(response, "response headers too large");
            }
            if (!complete) {
                continue;
            }
            enum lg_http_feed result = handle_line(response);
            response->line_len = 0;
            response->line_bytes = 0;
            response->line_too_long = false;
            response->line[0] = '\0';
            if (result == LG_HTTP_ERROR) {
                return result;
            }
        } else if (response->state == LG_HTTP_BODY_UNTIL_CLOSE) {
            response->body_bytes += len - offset;
            offset = len;
        } else {
            /* BODY_LENGTH or CHUNK_DATA: take what is left of it. */
            uint64_t available = len - offset;
            uint64_t take = available < response->remaining ? available : response->remaining;
            response->remaining -= take;
            response->body_bytes += take;
            offset += (size_t)take;
            if (response->remaining == 0) {
                response->state =
                    response->state == LG_HTTP_BODY_LENGTH ? LG_HTTP_DONE : LG_HTTP_CHUNK_DATA_END;
            }
        }
    }
    *consumed = offset;
    return response->state == LG_HTTP_DONE ? LG_HTTP_COMPLETE : LG_HTTP_NEED_MORE;
}

enum lg_http_feed lg_http_response_eof(struct lg_http_response *response)
{
    if (response->state == LG_HTTP_BODY_UNTIL_CLOSE || response->state == LG_HTTP_DONE) {
        response->state = LG_HTTP_DONE;
        return LG_HTTP_COMPLETE;
    }
    if (response->state == LG_HTTP_FAILED) {
        return LG_HTTP_ERROR;
    }
    return fail(response, response->state == LG_HTTP_STATUS_LINE && response->line_len == 0
                              ? "closed before any response"
                              : "closed in the middle of the response");
}
