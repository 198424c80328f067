/*
 * http_response.h - an incremental HTTP/1.1 response reader, just enough for keep-alive:
 * the status line, Content-Length, Transfer-Encoding: chunked (with extensions and trailers),
 * Connection: close, bodies delimited by the connection's end, 1xx interim responses skipped,
 * and no body for HEAD, 1xx, 204 and 304 (RFC 9112 §6.3).
 *
 * It keeps no body and no header values, only what framing needs, in fixed memory: each line
 * (status, header, chunk size) is read into a 256-byte buffer and the rest of a longer line is
 * skipped, which is safe because the fields it needs are short. That keeps the per-connection
 * state small when a load generator holds ten thousand connections.
 */
#ifndef KPKI_LOADGEN_HTTP_RESPONSE_H
#define KPKI_LOADGEN_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Headers above this (all lines together) are a protocol error: a server gone wrong. */
#define LG_HTTP_MAX_HEADER_BYTES (64 * 1024)

enum lg_http_state {
    LG_HTTP_STATUS_LINE,
    LG_HTTP_HEADERS,
    LG_HTTP_BODY_LENGTH,
    LG_HTTP_CHUNK_SIZE,
    LG_HTTP_CHUNK_DATA,
    LG_HTTP_CHUNK_DATA_END,
    LG_HTTP_TRAILERS,
    LG_HTTP_BODY_UNTIL_CLOSE,
    LG_HTTP_DONE,
    LG_HTTP_FAILED,
};

enum lg_http_feed {
    LG_HTTP_NEED_MORE, /* everything given was consumed; the response is not complete yet */
    LG_HTTP_COMPLETE,  /* the response ended; *consumed says where */
    LG_HTTP_ERROR,     /* malformed; the reason is in error[] */
};

struct lg_http_response {
    enum lg_http_state state;
    bool head_request; /* the request was HEAD: no body whatever the headers say */
    int status;        /* of the final (non-1xx) response */
    bool keep_alive;   /* false: the server closes after this response */
    bool chunked;
    bool has_length;
    uint64_t remaining;  /* bytes left in the body or in the current chunk */
    uint64_t body_bytes; /* body bytes seen (chunk payloads only, for chunked) */
    size_t header_bytes; /* of this response, bounded by LG_HTTP_MAX_HEADER_BYTES */
    char line[256];      /* the current line, truncated to fit */
    size_t line_len;
    size_t line_bytes;  /* bytes of the current line as received, truncated part included */
    bool line_too_long; /* the current line did not fit; only the start was kept */
    char error[128];
};

/* Ready for a new response (the caller owns the struct). */
void lg_http_response_reset(struct lg_http_response *response, bool head_request);

/* Feeds `len` bytes that follow what was fed before. On LG_HTTP_COMPLETE, *consumed is how
 * many of them belonged to the response (more after it means the server sent more than one
 * answer); on LG_HTTP_NEED_MORE it is len. */
enum lg_http_feed lg_http_response_feed(struct lg_http_response *response, const char *data,
                                        size_t len, size_t *consumed);

/* The connection ended: COMPLETE when the body was delimited by the end, else ERROR. */
enum lg_http_feed lg_http_response_eof(struct lg_http_response *response);

#endif
