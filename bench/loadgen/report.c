/*
 * report.c - counting errors, merging the workers' tallies, and printing the report as text or
 * JSON. Figures per operation divide by every operation that completed in the window (ok and
 * errors alike: a refused request costs the server work too).
 */
#include <stdio.h>
#include <string.h>

#include "loadgen.h"

static const char *const KIND_NAMES[LG_ERR_KIND_COUNT] = {
    [LG_ERR_CONNECT] = "connect", [LG_ERR_TLS] = "tls",       [LG_ERR_HTTP] = "http",
    [LG_ERR_TIMEOUT] = "timeout", [LG_ERR_CLOSED] = "closed", [LG_ERR_PROTOCOL] = "protocol",
};

const char *lg_error_kind_name(enum lg_error_kind kind)
{
    return kind < LG_ERR_KIND_COUNT ? KIND_NAMES[kind] : "?";
}

void lg_tally_init(struct lg_tally *tally)
{
    memset(tally, 0, sizeof(*tally));
    lg_histogram_init(&tally->latency);
}

static void add_error_rows(struct lg_tally *tally, enum lg_error_kind kind, const char *detail,
                           uint64_t count)
{
    for (size_t i = 0; i < tally->row_count; i++) {
        if (tally->rows[i].kind == kind && strcmp(tally->rows[i].detail, detail) == 0) {
            tally->rows[i].count += count;
            return;
        }
    }
    if (tally->row_count == LG_MAX_ERROR_ROWS) {
        tally->other_details += count;
        return;
    }
    struct lg_error_row *row = &tally->rows[tally->row_count++];
    row->kind = kind;
    snprintf(row->detail, sizeof(row->detail), "%s", detail);
    row->count = count;
}

void lg_tally_error(struct lg_tally *tally, enum lg_error_kind kind, const char *detail)
{
    tally->errors++;
    tally->errors_by_kind[kind]++;
    add_error_rows(tally, kind, detail, 1);
}

void lg_tally_merge(struct lg_tally *into, const struct lg_tally *from)
{
    into->ok += from->ok;
    into->errors += from->errors;
    for (int kind = 0; kind < LG_ERR_KIND_COUNT; kind++) {
        into->errors_by_kind[kind] += from->errors_by_kind[kind];
    }
    for (size_t i = 0; i < from->row_count; i++) {
        add_error_rows(into, from->rows[i].kind, from->rows[i].detail, from->rows[i].count);
    }
    into->other_details += from->other_details;
    into->reconnects += from->reconnects;
    into->idle_closed += from->idle_closed;
    into->open_before += from->open_before;
    if (into->first_open_error[0] == '\0') {
        memcpy(into->first_open_error, from->first_open_error, sizeof(into->first_open_error));
    }
    lg_histogram_merge(&into->latency, &from->latency);
}

/* ---- shared figures ---- */

struct figures {
    uint64_t operations;
    double rate;
    double p50_ms, p90_ms, p99_ms, max_ms, min_ms, mean_ms;
    double client_cpu_ms_per_op;
    bool server; /* --server-pid was given and both samples were read */
    double server_cpu_seconds;
    double server_cpu_ms_per_op;
};

static double ns_to_ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void compute_figures(const struct lg_run *run, const struct lg_tally *tally,
                            const struct lg_window *window, struct figures *f)
{
    memset(f, 0, sizeof(*f));
    f->operations = tally->ok + tally->errors;
    f->rate = window->seconds > 0 ? (double)tally->ok / window->seconds : 0;
    const struct lg_histogram *latency = &tally->latency;
    f->p50_ms = ns_to_ms(lg_histogram_quantile(latency, 0.50));
    f->p90_ms = ns_to_ms(lg_histogram_quantile(latency, 0.90));
    f->p99_ms = ns_to_ms(lg_histogram_quantile(latency, 0.99));
    f->max_ms = ns_to_ms(latency->max_ns);
    f->min_ms = latency->total > 0 ? ns_to_ms(latency->min_ns) : 0;
    f->mean_ms = latency->total > 0 ? latency->sum_ns / (double)latency->total / 1e6 : 0;
    double per_op = f->operations > 0 ? 1000.0 / (double)f->operations : 0;
    f->client_cpu_ms_per_op = window->client_cpu_seconds * per_op;
    f->server =
        run->options->server_pid_count > 0 && window->server_before.ok && window->server_after.ok;
    if (f->server) {
        f->server_cpu_seconds =
            window->server_after.cpu_seconds - window->server_before.cpu_seconds;
        f->server_cpu_ms_per_op = f->server_cpu_seconds * per_op;
    }
}

static const char *mode_name(const struct lg_options *options)
{
    if (options->mode == LG_MODE_REQUEST) {
        return "request";
    }
    return options->handshake_request ? "handshake+request" : "handshake";
}

static const char *tls_name(const struct lg_options *options)
{
    return options->tls_version == TLS1_2_VERSION   ? "1.2"
           : options->tls_version == TLS1_3_VERSION ? "1.3"
                                                    : "1.2-1.3";
}

/* ---- text ---- */

static void print_text(const struct lg_run *run, const struct lg_tally *tally,
                       const struct lg_window *window, const struct figures *f)
{
    const struct lg_options *options = run->options;
    printf("kpki-loadgen: %s mode, %s %s, TLS %s, %d thread%s, %d connection%s, ",
           mode_name(options), options->method, options->url, tls_name(options), window->threads,
           window->threads == 1 ? "" : "s", window->connections,
           window->connections == 1 ? "" : "s");
    if (options->rate > 0) {
        printf("open loop at %.1f/s\n", options->rate);
    } else {
        printf("closed loop\n");
    }
    printf("window        %.3f s\n", window->seconds);
    printf("operations    %llu ok, %llu errors\n", (unsigned long long)tally->ok,
           (unsigned long long)tally->errors);
    printf("rate          %.1f ok/s\n", f->rate);
    printf(
        "latency       p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms (min %.3f, mean %.3f)\n",
        f->p50_ms, f->p90_ms, f->p99_ms, f->max_ms, f->min_ms, f->mean_ms);
    printf("client CPU    %.4f ms/op (%.3f s user+sys)\n", f->client_cpu_ms_per_op,
           window->client_cpu_seconds);
    if (f->server) {
        printf("server CPU    %.4f ms/op (%.3f s user+sys)\n", f->server_cpu_ms_per_op,
               f->server_cpu_seconds);
        printf("server RSS    %llu KiB before, %llu KiB after (connections still open)\n",
               (unsigned long long)window->server_before.rss_kib,
               (unsigned long long)window->server_after.rss_kib);
    } else if (options->server_pid_count > 0) {
        printf("server        not measured: %s\n",
               window->server_after.ok ? window->server_before.error : window->server_after.error);
    }
    if (options->mode == LG_MODE_REQUEST) {
        char warmup[48] = "no warm-up";
        if (!options->no_warmup) {
            /* A connection counts as open only once its warm-up request was answered. */
            snprintf(warmup, sizeof(warmup), "%llu warm-up requests answered",
                     (unsigned long long)tally->open_before);
        }
        printf("connections   %llu of %d open before the window (%s), %llu reopened in it, %llu "
               "idle ones closed by the server\n",
               (unsigned long long)tally->open_before, window->connections, warmup,
               (unsigned long long)tally->reconnects, (unsigned long long)tally->idle_closed);
        if (tally->first_open_error[0] != '\0') {
            printf("              first failure to open: %s\n", tally->first_open_error);
        }
    }
    if (tally->errors > 0) {
        printf("errors\n");
        for (size_t i = 0; i < tally->row_count; i++) {
            printf("  %-9s %10llu  %s\n", lg_error_kind_name(tally->rows[i].kind),
                   (unsigned long long)tally->rows[i].count, tally->rows[i].detail);
        }
        if (tally->other_details > 0) {
            printf("  (other) %12llu  (more distinct details than the report keeps)\n",
                   (unsigned long long)tally->other_details);
        }
    }
}

/* ---- JSON ---- */

static void print_json_string(const char *text)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

static void print_json_errors(const struct lg_tally *tally)
{
    printf("\"errors\":{");
    for (int kind = 0; kind < LG_ERR_KIND_COUNT; kind++) {
        printf("%s\"%s\":{\"total\":%llu,\"by_detail\":{", kind == 0 ? "" : ",",
               lg_error_kind_name((enum lg_error_kind)kind),
               (unsigned long long)tally->errors_by_kind[kind]);
        bool first = true;
        for (size_t i = 0; i < tally->row_count; i++) {
            if (tally->rows[i].kind != (enum lg_error_kind)kind) {
                continue;
            }
            printf("%s", first ? "" : ",");
            print_json_string(tally->rows[i].detail);
            printf(":%llu", (unsigned long long)tally->rows[i].count);
            first = false;
        }
        printf("}}");
    }
    printf(",\"other_details\":%llu}", (unsigned long long)tally->other_details);
}

static void print_json_server(const struct lg_run *run, const struct lg_window *window,
                              const struct figures *f)
{
    const struct lg_options *options = run->options;
    printf("\"server\":");
    if (options->server_pid_count == 0) {
        printf("null");
        return;
    }
    printf("{\"pids\":[");
    for (size_t i = 0; i < options->server_pid_count; i++) {
        printf("%s%d", i == 0 ? "" : ",", options->server_pids[i]);
    }
    printf("]");
    if (f->server) {
        printf(",\"cpu_seconds\":%.3f,\"cpu_ms_per_op\":%.5f,\"rss_kib_before\":%llu,"
               "\"rss_kib_after\":%llu}",
               f->server_cpu_seconds, f->server_cpu_ms_per_op,
               (unsigned long long)window->server_before.rss_kib,
               (unsigned long long)window->server_after.rss_kib);
    } else {
        printf(",\"error\":");
        print_json_string(window->server_after.ok ? window->server_before.error
                                                  : window->server_after.error);
        printf("}");
    }
}

static void print_json(const struct lg_run *run, const struct lg_tally *tally,
                       const struct lg_window *window, const struct figures *f)
{
    const struct lg_options *options = run->options;
    printf("{\"mode\":\"%s\",\"url\":", mode_name(options));
    print_json_string(options->url);
    printf(",\"method\":\"%s\",\"tls\":\"%s\",\"threads\":%d,\"connections\":%d,"
           "\"target_rate\":",
           options->method, tls_name(options), window->threads, window->connections);
    if (options->rate > 0) {
        printf("%.3f", options->rate);
    } else {
        printf("null");
    }
    printf(",\"window_seconds\":%.4f,\"ok\":%llu,\"error_count\":%llu,", window->seconds,
           (unsigned long long)tally->ok, (unsigned long long)tally->errors);
    print_json_errors(tally);
    printf(",\"rate_per_second\":%.2f,\"latency_ms\":{\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,"
           "\"max\":%.4f,\"min\":%.4f,\"mean\":%.4f},",
           f->rate, f->p50_ms, f->p90_ms, f->p99_ms, f->max_ms, f->min_ms, f->mean_ms);
    printf("\"client_cpu_seconds\":%.3f,\"client_cpu_ms_per_op\":%.5f,", window->client_cpu_seconds,
           f->client_cpu_ms_per_op);
    print_json_server(run, window, f);
    printf(",\"connections_open_before\":%llu,\"warmup_answers\":%llu,\"reconnects\":%llu,"
           "\"idle_closed\":%llu,\"first_open_error\":",
           (unsigned long long)tally->open_before,
           (unsigned long long)(options->mode == LG_MODE_REQUEST && !options->no_warmup
                                    ? tally->open_before
                                    : 0),
           (unsigned long long)tally->reconnects, (unsigned long long)tally->idle_closed);
    print_json_string(tally->first_open_error);
    printf("}\n");
}

void lg_report_print(const struct lg_run *run, const struct lg_tally *tally,
                     const struct lg_window *window)
{
    struct figures f;
    compute_figures(run, tally, window, &f);
    if (run->options->output == LG_OUTPUT_JSON) {
        print_json(run, tally, window, &f);
    } else {
        print_text(run, tally, window, &f);
    }
    fflush(stdout);
}
