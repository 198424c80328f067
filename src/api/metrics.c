/*
 * /metrics in the Prometheus text format (version 0.0.4): requests by verb, resource and code,
 * their latency, authentication attempts by method and result, TLS connections and handshake
 * failures by reason, the serving certificate's and the client CAs' expiry, and the process's
 * CPU, memory and descriptors. Names follow kube-apiserver where it has the metric
 * (apiserver_request_total, apiserver_request_duration_seconds, process_*); kpki's own are
 * kpki_*. docs/api.md lists them.
 *
 * Recording is lock-free: every series is an atomic counter in fixed arrays indexed by the
 * resource table row, the subresource, the verb and the status code, so a request costs a few
 * atomic adds and the label sets are bounded by construction.
 */
#include <dirent.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "core/log.h"

/* ---- the label spaces ---- */

static const char *const verbs[] = {"GET",    "LIST",   "WATCH",            "POST", "PUT",
                                    "PATCH",  "DELETE", "DELETECOLLECTION", "OTHER"};
#define VERBS (sizeof(verbs) / sizeof(verbs[0]))

static const int codes[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 406, 409,
                            410, 413, 415, 422, 429, 500, 503, 504};
#define CODES (sizeof(codes) / sizeof(codes[0]) + 1) /* + "other" */

/* Slot 0 is non-resource requests; then per resource row, the resource itself and up to
 * MAX_SUBS subresources. */
#define MAX_RESOURCES 32
#define MAX_SUBS 3
#define SLOTS (1 + MAX_RESOURCES * (1 + MAX_SUBS))

/* Upstream's buckets up to a minute (a subset of apiserver_request_duration_seconds'). */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                 1,     2.5,  5,     10,   30,  60};
#define BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static const char *const authn_methods[] = {"x509",      "requestheader", "serviceaccount",
                                            "bootstrap-token", "anonymous", "token", "none"};
#define AUTHN_METHODS (sizeof(authn_methods) / sizeof(authn_methods[0]))
static const char *const authn_results[] = {"success", "failure", "error"};
#define AUTHN_RESULTS (sizeof(authn_results) / sizeof(authn_results[0]))

struct latency {
    atomic_uint_fast64_t buckets[BUCKETS]; /* not cumulative here; summed when written */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
};

struct kp_metrics {
    atomic_uint_fast64_t requests[SLOTS][VERBS][CODES];
    struct latency latency[SLOTS][VERBS];
    atomic_uint_fast64_t authn[AUTHN_METHODS][AUTHN_RESULTS];
    int64_t started_at; /* unix seconds */
};

struct kp_metrics *kp_metrics_new(int64_t now)
{
    size_t count = 0;
    kp_resources(&count);
    if (count > MAX_RESOURCES) {
        kp_log_error("metrics: the resource table has %zu rows, more than %d", count,
                     MAX_RESOURCES);
        return NULL;
    }
    struct kp_metrics *m = calloc(1, sizeof(*m)); /* zeroed atomics are valid zeros */
    if (m)
        m->started_at = now;
    return m;
}

void kp_metrics_free(struct kp_metrics *metrics)
{
    free(metrics);
}

/* ---- recording ---- */

static size_t slot_of(const struct kp_call *call)
{
    if (!call->resource)
        return 0;
    size_t count = 0;
    const struct kp_resource *table = kp_resources(&count);
    size_t row = (size_t)(call->resource - table);
    size_t sub = call->subresource ? (size_t)(call->subresource - call->resource->subresources) + 1
                                   : 0;
    if (row >= MAX_RESOURCES || sub > MAX_SUBS)
        return 0;
    return 1 + row * (1 + MAX_SUBS) + sub;
}

static size_t verb_of(const struct kp_call *call)
{
    static const char *const resource_verbs[] = {"get",    "list",   "watch",
                                                 "create", "update", "patch",
                                                 "delete", "deletecollection"};
    if (call->info.resource_request) {
        for (size_t i = 0; i < sizeof(resource_verbs) / sizeof(resource_verbs[0]); i++) {
            if (strcmp(call->info.verb, resource_verbs[i]) == 0)
                return i;
        }
        return VERBS - 1;
    }
    const char *method = call->method ? call->method : "";
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return 0;
    if (strcmp(method, "POST") == 0)
        return 3;
    if (strcmp(method, "PUT") == 0)
        return 4;
    if (strcmp(method, "PATCH") == 0)
        return 5;
    if (strcmp(method, "DELETE") == 0)
        return 6;
    return VERBS - 1;
}

static size_t code_of(int status)
{
    for (size_t i = 0; i < CODES - 1; i++) {
        if (codes[i] == status)
            return i;
    }
    return CODES - 1;
}

void kp_metrics_request(struct kp_metrics *metrics, const struct kp_call *call, int status,
                        int64_t elapsed_us)
{
    if (!metrics)
        return;
    size_t slot = slot_of(call), verb = verb_of(call);
    atomic_fetch_add_explicit(&metrics->requests[slot][verb][code_of(status)], 1,
                              memory_order_relaxed);
    if (verb == 2)
        return; /* a watch lasts as long as the client wants: no latency, as upstream */
    struct latency *l = &metrics->latency[slot][verb];
    double seconds = (double)elapsed_us / 1e6;
    size_t b = 0;
    while (b < BUCKETS && seconds > buckets[b])
        b++;
    if (b < BUCKETS)
        atomic_fetch_add_explicit(&l->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->sum_us, (uint64_t)(elapsed_us > 0 ? elapsed_us : 0),
                              memory_order_relaxed);
}

void kp_metrics_authn(struct kp_metrics *metrics, const char *method, const char *result)
{
    if (!metrics)
        return;
    size_t m = AUTHN_METHODS - 1, r = 0;
    for (size_t i = 0; method && i < AUTHN_METHODS; i++) {
        if (strcmp(method, authn_methods[i]) == 0)
            m = i;
    }
    for (size_t i = 0; i < AUTHN_RESULTS; i++) {
        if (strcmp(result, authn_results[i]) == 0)
            r = i;
    }
    atomic_fetch_add_explicit(&metrics->authn[m][r], 1, memory_order_relaxed);
}

/* ---- writing ---- */

/* A growing text buffer; a failed allocation marks it broken (the scrape then gets 500). */
struct out {
    char *text;
    size_t len, cap;
    bool broken;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !o->broken; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->text ? o->text + o->len : NULL, o->text ? o->cap - o->len : 0, fmt,
                          ap);
        va_end(ap);
        if (n < 0) {
            o->broken = true;
            return;
        }
        if (o->text && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap ? o->cap : 16384);
        while (cap <= o->len + (size_t)n)
            cap *= 2;
        char *grown = realloc(o->text, cap);
        if (!grown) {
            o->broken = true;
            return;
        }
        o->text = grown;
        o->cap = cap;
    }
}

static void resource_labels(size_t slot, char *out, size_t size)
{
    if (slot == 0) {
        snprintf(out, size, "group=\"\",version=\"\",resource=\"\",subresource=\"\"");
        return;
    }
    size_t count = 0;
    const struct kp_resource *table = kp_resources(&count);
    size_t row = (slot - 1) / (1 + MAX_SUBS), sub = (slot - 1) % (1 + MAX_SUBS);
    const struct kp_resource *r = &table[row];
    snprintf(out, size, "group=\"%s\",version=\"%s\",resource=\"%s\",subresource=\"%s\"",
             r->group, r->version, r->plural, sub ? r->subresources[sub - 1].name : "");
}

static bool slot_exists(size_t slot)
{
    if (slot == 0)
        return true;
    size_t count = 0;
    const struct kp_resource *table = kp_resources(&count);
    size_t row = (slot - 1) / (1 + MAX_SUBS), sub = (slot - 1) % (1 + MAX_SUBS);
    return row < count && sub <= table[row].subresource_count;
}

static void write_requests(struct out *o, struct kp_metrics *m)
{
    put(o, "# HELP apiserver_request_total Counter of apiserver requests broken out for each "
           "verb, API resource and HTTP response code.\n"
           "# TYPE apiserver_request_total counter\n");
    char labels[300];
    for (size_t s = 0; s < SLOTS; s++) {
        if (!slot_exists(s))
            continue;
        resource_labels(s, labels, sizeof(labels));
        for (size_t v = 0; v < VERBS; v++) {
            for (size_t c = 0; c < CODES; c++) {
                uint64_t n = atomic_load_explicit(&m->requests[s][v][c], memory_order_relaxed);
                if (!n)
                    continue;
                char code[16];
                if (c < CODES - 1)
                    snprintf(code, sizeof(code), "%d", codes[c]);
                else
                    snprintf(code, sizeof(code), "other");
                put(o, "apiserver_request_total{verb=\"%s\",%s,code=\"%s\"} %llu\n", verbs[v],
                    labels, code, (unsigned long long)n);
            }
        }
    }
    put(o, "# HELP apiserver_request_duration_seconds Response latency distribution in seconds "
           "for each verb and resource (watches excluded).\n"
           "# TYPE apiserver_request_duration_seconds histogram\n");
    for (size_t s = 0; s < SLOTS; s++) {
        if (!slot_exists(s))
            continue;
        resource_labels(s, labels, sizeof(labels));
        for (size_t v = 0; v < VERBS; v++) {
            struct latency *l = &m->latency[s][v];
            /* Buckets first and the count last (recording adds the other way round), and +Inf
             * never below the last bucket: a request recorded meanwhile cannot make the
             * histogram decrease. */
            uint64_t per_bucket[BUCKETS], cumulative = 0;
            for (size_t b = 0; b < BUCKETS; b++)
                per_bucket[b] = atomic_load_explicit(&l->buckets[b], memory_order_relaxed);
            uint64_t count = atomic_load_explicit(&l->count, memory_order_relaxed);
            if (!count)
                continue;
            for (size_t b = 0; b < BUCKETS; b++) {
                cumulative += per_bucket[b];
                put(o, "apiserver_request_duration_seconds_bucket{verb=\"%s\",%s,le=\"%g\"} %llu\n",
                    verbs[v], labels, buckets[b], (unsigned long long)cumulative);
            }
            if (count < cumulative)
                count = cumulative;
            put(o, "apiserver_request_duration_seconds_bucket{verb=\"%s\",%s,le=\"+Inf\"} %llu\n",
                verbs[v], labels, (unsigned long long)count);
            put(o, "apiserver_request_duration_seconds_sum{verb=\"%s\",%s} %.6f\n", verbs[v],
                labels,
                (double)atomic_load_explicit(&l->sum_us, memory_order_relaxed) / 1e6);
            put(o, "apiserver_request_duration_seconds_count{verb=\"%s\",%s} %llu\n", verbs[v],
                labels, (unsigned long long)count);
        }
    }
}

/* A cache's lookups as a counter by result (hit, miss). */
static void write_cache_lookups(struct out *o, const char *name, const char *help, uint64_t hits,
                                uint64_t misses)
{
    put(o, "# HELP %s %s, by result.\n# TYPE %s counter\n%s{result=\"hit\"} %llu\n"
           "%s{result=\"miss\"} %llu\n",
        name, help, name, name, (unsigned long long)hits, name, (unsigned long long)misses);
}

/* The authenticator's two verdict caches, read from one trust snapshot (their counts start
 * again when the snapshot is rebuilt). */
static void write_authn_caches(struct out *o, struct kp_api *api)
{
    struct kp_trust *trust = kp_api_trust(api);
    uint64_t token_hits = 0, token_misses = 0, chain_hits = 0, chain_misses = 0;
    if (trust) {
        kp_authn_token_cache_stats(trust->authn, &token_hits, &token_misses);
        kp_authn_chain_cache_stats(trust->authn, &chain_hits, &chain_misses);
    }
    kp_trust_unref(trust);
    write_cache_lookups(o, "kpki_token_cache_requests_total",
                        "Service-account tokens looked up in the verified-token cache (since the "
                        "last reload of a CA, CRL or key)",
                        token_hits, token_misses);
    write_cache_lookups(o, "kpki_client_cert_cache_requests_total",
                        "Client certificate chains looked up in the verified-chain cache, once "
                        "per CA checked on a connection's first request (since the last reload "
                        "of a CA, CRL or key)",
                        chain_hits, chain_misses);
}

static void write_object_cache(struct out *o, struct kp_api *api)
{
    uint64_t hits = 0, misses = 0;
    if (api->objcache)
        kp_objcache_stats(api->objcache, &hits, &misses);
    write_cache_lookups(o, "kpki_object_cache_requests_total",
                        "Objects the authenticators looked up in the object cache (service "
                        "accounts, bound pods, nodes)",
                        hits, misses);
}

static void write_authn(struct out *o, struct kp_metrics *m)
{
    put(o, "# HELP kpki_authentication_attempts_total Authentication attempts by method (for a "
           "refusal, the credential presented) and result.\n"
           "# TYPE kpki_authentication_attempts_total counter\n");
    for (size_t i = 0; i < AUTHN_METHODS; i++) {
        for (size_t r = 0; r < AUTHN_RESULTS; r++) {
            put(o, "kpki_authentication_attempts_total{method=\"%s\",result=\"%s\"} %llu\n",
                authn_methods[i], authn_results[r],
                (unsigned long long)atomic_load_explicit(&m->authn[i][r],
                                                         memory_order_relaxed));
        }
    }
}

/* A label value: backslash, quote and newline escaped. */
static void label_value(const char *text, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = text; *p && n + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            out[n++] = '\\';
            out[n++] = *p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

static void write_tls(struct out *o, struct kp_api *api)
{
    if (!api->http)
        return;
    struct kp_http_stats stats;
    kp_http_server_stats(api->http, &stats);
    put(o, "# HELP kpki_tls_connections_total TLS connections accepted.\n"
           "# TYPE kpki_tls_connections_total counter\n"
           "kpki_tls_connections_total %llu\n"
           "# HELP kpki_tls_connections_rejected_total Connections dropped over the connection "
           "limit.\n"
           "# TYPE kpki_tls_connections_rejected_total counter\n"
           "kpki_tls_connections_rejected_total %llu\n"
           "# HELP kpki_tls_open_connections Connections open now.\n"
           "# TYPE kpki_tls_open_connections gauge\n"
           "kpki_tls_open_connections %llu\n"
           "# HELP kpki_tls_handshakes_total TLS handshakes completed.\n"
           "# TYPE kpki_tls_handshakes_total counter\n"
           "kpki_tls_handshakes_total %llu\n"
           "# HELP kpki_tls_handshake_failures_total Connections that ended before completing "
           "a TLS handshake, by reason.\n"
           "# TYPE kpki_tls_handshake_failures_total counter\n",
        (unsigned long long)stats.accepted, (unsigned long long)stats.rejected,
        (unsigned long long)stats.open, (unsigned long long)stats.handshakes);
    for (size_t i = 0; i < stats.reason_count; i++) {
        char reason[160];
        label_value(stats.reasons[i].reason, reason, sizeof(reason));
        put(o, "kpki_tls_handshake_failures_total{reason=\"%s\"} %llu\n", reason,
            (unsigned long long)stats.reasons[i].count);
    }
}

static void write_expiry(struct out *o, const char *certificate, X509 *cert)
{
    const ASN1_TIME *not_after = cert ? X509_get0_notAfter(cert) : NULL;
    struct tm tm;
    if (!not_after || ASN1_TIME_to_tm(not_after, &tm) != 1)
        return;
    char subject[256] = "", escaped[300];
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    label_value(subject, escaped, sizeof(escaped));
    put(o, "kpki_certificate_expiration_timestamp_seconds{certificate=\"%s\",subject=\"%s\"} %lld\n",
        certificate, escaped, (long long)timegm(&tm));
}

static void write_certificates(struct out *o, struct kp_api *api)
{
    put(o, "# HELP kpki_certificate_expiration_timestamp_seconds When the serving certificate "
           "and each client CA the server uses now expire (unix time).\n"
           "# TYPE kpki_certificate_expiration_timestamp_seconds gauge\n");
    if (api->http) {
        SSL_CTX *ctx = kp_http_server_ssl_ctx(api->http);
        write_expiry(o, "serving", SSL_CTX_get0_certificate(ctx));
        SSL_CTX_free(ctx);
    }
    STACK_OF(X509) *cas = kp_api_client_cas(api);
    for (int i = 0; i < sk_X509_num(cas); i++)
        write_expiry(o, "client-ca", sk_X509_value(cas, i));
    sk_X509_pop_free(cas, X509_free);
}

/* process_* from /proc/self, as every Prometheus client library exports them. */
static void write_process(struct out *o, struct kp_metrics *m)
{
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long utime = 0, stime = 0, vsize = 0;
    long long rss = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        /* Fields after the command (which may hold spaces): skip to the last ')'. */
        char line[1024];
        if (fgets(line, sizeof(line), f)) {
            const char *p = strrchr(line, ')');
            if (p && sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
                            "%*d %*d %*d %*u %llu %lld",
                            &utime, &stime, &vsize, &rss) != 4)
                utime = stime = vsize = 0, rss = 0;
        }
        fclose(f);
    }
    size_t fds = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        for (struct dirent *e; (e = readdir(dir));)
            fds += e->d_name[0] != '.';
        closedir(dir);
    }
    put(o, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
           "# TYPE process_cpu_seconds_total counter\n"
           "process_cpu_seconds_total %.2f\n"
           "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
           "# TYPE process_resident_memory_bytes gauge\n"
           "process_resident_memory_bytes %lld\n"
           "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
           "# TYPE process_virtual_memory_bytes gauge\n"
           "process_virtual_memory_bytes %llu\n"
           "# HELP process_open_fds Number of open file descriptors.\n"
           "# TYPE process_open_fds gauge\n"
           "process_open_fds %zu\n"
           "# HELP process_start_time_seconds Start time of the process since unix epoch in "
           "seconds.\n"
           "# TYPE process_start_time_seconds gauge\n"
           "process_start_time_seconds %lld\n",
        ticks > 0 ? (double)(utime + stime) / (double)ticks : 0.0, rss * (long long)page, vsize,
        fds > 0 ? fds - 1 : 0 /* the directory's own descriptor */, (long long)m->started_at);
}

void kp_metrics_handle(struct kp_call *call)
{
    struct kp_api *api = call->api;
    struct out o = {0};
    if (api->metrics) {
        write_requests(&o, api->metrics);
        write_authn(&o, api->metrics);
        write_authn_caches(&o, api);
        write_object_cache(&o, api);
        write_process(&o, api->metrics);
    }
    write_tls(&o, api);
    write_certificates(&o, api);
    if (o.broken || !o.text) {
        free(o.text);
        kp_call_status(call, 500, "InternalError", "out of memory writing the metrics", NULL,
                       NULL, NULL);
        return;
    }
    kp_http_respond(call->http, 200, "text/plain; version=0.0.4; charset=utf-8", o.text, o.len);
    call->responded = true;
    free(o.text);
}
