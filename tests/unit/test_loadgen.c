/*
 * kpki-loadgen's two pure parts (bench/loadgen): the incremental HTTP/1.1 response reader and
 * the latency histogram. Every response is fed whole and then one byte at a time, since a
 * TLS record can end anywhere; the refusals are a table with the reason pinned.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "histogram.h"
#include "http_response.h"

struct feed_result {
    enum lg_http_feed status;
    size_t consumed;
};

/* Feeds text in pieces of `step` bytes (0: all at once) until the reader says complete or
 * error; consumed counts from the start of the text. */
static struct feed_result feed(struct lg_http_response *response, const char *text, size_t step,
                               bool head_request)
{
    lg_http_response_reset(response, head_request);
    size_t len = strlen(text), offset = 0;
    struct feed_result result = {LG_HTTP_NEED_MORE, 0};
    while (offset < len) {
        size_t piece = step == 0 || step > len - offset ? len - offset : step;
        size_t consumed = 0;
        result.status = lg_http_response_feed(response, text + offset, piece, &consumed);
        result.consumed = offset + consumed;
        if (result.status != LG_HTTP_NEED_MORE) {
            return result;
        }
        assert_int_equal(consumed, piece);
        offset += piece;
    }
    return result;
}

static void test_complete_responses(void **state)
{
    (void)state;
    const struct {
        const char *name;
        const char *text;
        bool head_request;
        int status;
        bool keep_alive;
        unsigned body_bytes;
    } rows[] = {
        {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, true,
         5},
        {"no reason phrase", "HTTP/1.1 204\r\n\r\n", false, 204, true, 0},
        {"zero length", "HTTP/1.1 201 Created\r\ncontent-length:0\r\n\r\n", false, 201, true, 0},
        {"bare LF lines", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false, 200, true, 2},
        {"connection close",
         "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n"
         "Content-Length: 3\r\n\r\nno!",
         false, 401, false, 3},
        {"connection token list",
         "HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\n"
         "Content-Length: 0\r\n\r\n",
         false, 200, false, 0},
        {"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, 200, false, 1},
        {"HTTP/1.0 keep-alive",
         "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
         "Content-Length: 1\r\n\r\nx",
         false, 200, true, 1},
        {"chunked, extensions, trailers",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\n"
         "Trailer: x\r\n\r\n",
         false, 200, true, 15},
        {"chunked wins over length",
         "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
         "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
         false, 200, true, 1},
        {"100 Continue first",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
         "Content-Length: 2\r\n\r\nok",
         false, 200, true, 2},
        {"HEAD has no body", "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", true, 200, true, 0},
        {"304 has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, 304,
         true, 0},
        {"a long irrelevant header",
         "HTTP/1.1 200 OK\r\nWarning: 299 - \""
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxx\"\r\nContent-Length: 1\r\n\r\nx",
         false, 200, true, 1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        for (size_t step = 0; step <= 1; step++) {
            struct lg_http_response response;
            struct feed_result result = feed(&response, rows[i].text, step, rows[i].head_request);
            if (result.status != LG_HTTP_COMPLETE) {
                fail_msg("%s (step %zu): status %d, error '%s'", rows[i].name, step, result.status,
                         response.error);
            }
            assert_int_equal(result.consumed, strlen(rows[i].text));
            assert_int_equal(response.status, rows[i].status);
            assert_int_equal(response.keep_alive, rows[i].keep_alive);
            assert_int_equal(response.body_bytes, rows[i].body_bytes);
        }
    }
}

static void test_refused_responses(void **state)
{
    (void)state;
    const struct {
        const char *text;
        const char *reason;
    } rows[] = {
        {"HTTP/2 200 OK\r\n\r\n", "malformed status line"},
        {"HTTP/1.1 20 OK\r\n\r\n", "malformed status code"},
        {"HTTP/1.1 099 Early\r\n\r\n", "malformed status code"},
        {"ICY 200 OK\r\n\r\n", "malformed status line"},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "malformed Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "malformed Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "conflicting Content-Length headers"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         "unsupported Transfer-Encoding (only chunked)"},
        {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"},
        {"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", "malformed header line"},
        {"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "obsolete header line folding"},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", "unexpected 101 Switching Protocols"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "malformed chunk size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
         "chunk size too large"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n",
         "chunk data longer than its size"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        for (size_t step = 0; step <= 1; step++) {
            struct lg_http_response response;
            struct feed_result result = feed(&response, rows[i].text, step, false);
            if (result.status != LG_HTTP_ERROR || strcmp(response.error, rows[i].reason) != 0) {
                fail_msg("row %zu (step %zu): status %d, error '%s', want '%s'", i, step,
                         result.status, response.error, rows[i].reason);
            }
        }
    }
}

static void test_limits_and_ends(void **state)
{
    (void)state;
    struct lg_http_response response;

    /* Headers past 64 KiB in all are refused, whatever they say. */
    lg_http_response_reset(&response, false);
    const char status[] = "HTTP/1.1 200 OK\r\n";
    size_t consumed = 0;
    assert_int_equal(lg_http_response_feed(&response, status, strlen(status), &consumed),
                     LG_HTTP_NEED_MORE);
    char line[1024];
    memset(line, 'a', sizeof(line));
    memcpy(line, "X-Filler: ", 10);
    line[sizeof(line) - 2] = '\r';
    line[sizeof(line) - 1] = '\n';
    enum lg_http_feed status_of_feed = LG_HTTP_NEED_MORE;
    for (int i = 0; i < 80 && status_of_feed == LG_HTTP_NEED_MORE; i++) {
        status_of_feed = lg_http_response_feed(&response, line, sizeof(line), &consumed);
    }
    assert_int_equal(status_of_feed, LG_HTTP_ERROR);
    assert_string_equal(response.error, "response headers too large");

    /* A body without a length ends with the connection, and then the connection is done. */
    struct feed_result result = feed(&response, "HTTP/1.1 200 OK\r\n\r\npartial body", 0, false);
    assert_int_equal(result.status, LG_HTTP_NEED_MORE);
    assert_int_equal(lg_http_response_eof(&response), LG_HTTP_COMPLETE);
    assert_false(response.keep_alive);
    assert_int_equal(response.body_bytes, 12);

    /* The end of the connection in the middle of a framed body is an error. */
    result = feed(&response, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 0, false);
    assert_int_equal(result.status, LG_HTTP_NEED_MORE);
    assert_int_equal(lg_http_response_eof(&response), LG_HTTP_ERROR);
    assert_string_equal(response.error, "closed in the middle of the response");
    lg_http_response_reset(&response, false);
    assert_int_equal(lg_http_response_eof(&response), LG_HTTP_ERROR);
    assert_string_equal(response.error, "closed before any response");

    /* A second response in the same bytes: the first ends where it ends. */
    const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n";
    result = feed(&response, two, 0, false);
    assert_int_equal(result.status, LG_HTTP_COMPLETE);
    assert_int_equal(result.consumed, strlen("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"));
}

static void test_histogram(void **state)
{
    (void)state;
    static struct lg_histogram histogram, other;
    lg_histogram_init(&histogram);
    assert_int_equal(lg_histogram_quantile(&histogram, 0.5), 0);

    /* 1..100000 ns: each quantile within the bucket error (1/128) of the exact value. */
    for (uint64_t v = 1; v <= 100000; v++) {
        lg_histogram_record(&histogram, v);
    }
    const double quantiles[] = {0.01, 0.5, 0.9, 0.99, 0.999, 1.0};
    for (size_t i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++) {
        double exact = quantiles[i] * 100000;
        double got = (double)lg_histogram_quantile(&histogram, quantiles[i]);
        if (got < exact * (1 - 1.0 / 128) - 1 || got > exact * (1 + 1.0 / 128) + 1) {
            fail_msg("q%.3f: %.0f, exact %.0f", quantiles[i], got, exact);
        }
    }
    assert_int_equal(histogram.min_ns, 1);
    assert_int_equal(histogram.max_ns, 100000);
    assert_int_equal(lg_histogram_quantile(&histogram, 1.0), 100000);

    /* Merging adds; huge values land in the last bucket but the max stays exact. */
    lg_histogram_init(&other);
    lg_histogram_record(&other, UINT64_C(1) << 50);
    lg_histogram_merge(&histogram, &other);
    assert_int_equal(histogram.total, 100001);
    assert_int_equal(histogram.max_ns, UINT64_C(1) << 50);
    assert_int_equal(lg_histogram_quantile(&histogram, 1.0), UINT64_C(1) << 50);
    assert_true(lg_histogram_quantile(&histogram, 0.5) < 60000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_responses),
        cmocka_unit_test(test_refused_responses),
        cmocka_unit_test(test_limits_and_ends),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
