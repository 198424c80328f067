/*
 * Watch: `?watch=true` streams {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":...}
 * lines over a chunked response (k8s.io/apiserver/pkg/endpoints/handlers/watch.go).
 *
 * From resourceVersion N the events are the store's changes after N; without one (or "0")
 * the current objects come first as ADDED, then the changes after the list's revision. Label
 * and field selectors are applied to the old and the new version of each change, so an object
 * that starts matching arrives as ADDED and one that stops matching as DELETED (upstream's
 * cacher does the same). kubectl's `get --watch` asks for Tables: each event then carries a
 * one-row Table, with the column definitions in the first one only.
 *
 * Threads and lifetime. Events are formatted on the thread that wrote them (the store calls
 * back under its write lock) and queued on the HTTP stream, which any thread may do. Every
 * watch is in api->watches; the housekeeping thread is the only one that ends and frees
 * watches: when the client went away (the stream's on_close only raises a flag), when the
 * watch's time is up (timeoutSeconds, or a random time in [min-request-timeout,
 * 2*min-request-timeout) as kube-apiserver), or when the server stops. It also sends
 * BOOKMARK events (allowWatchBookmarks=true) about once a minute, and compacts the store's
 * history every five minutes to the revision it saw five minutes before (upstream's
 * compaction interval), so history does not grow without bound.
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "core/log.h"
#include "proto/proto.h"

#define BOOKMARK_INTERVAL_MS (60 * 1000)
#define COMPACT_INTERVAL_MS (300 * 1000)
#define HOUSEKEEPING_MS 1000 /* the longest the housekeeper sleeps */

struct kp_watch_entry {
    struct kp_watch_entry *next; /* api->watches, under watches_lock */
    struct kp_api *api;
    struct kp_http_stream *stream;
    struct kp_store_watch *store_watch;
    const struct kp_resource *resource;
    char name[256];             /* "" or the one object watched */
    struct kp_selector label, field;
    bool has_label, has_field;
    bool table;
    bool protobuf;              /* length-prefixed WatchEvent frames instead of JSON lines */
    bool dropped_logged;        /* a protobuf event left fields out (logged once) */
    bool bookmarks;
    bool columns_sent;          /* Table column definitions go in the first event only */
    int64_t deadline;           /* monotonic milliseconds */
    int64_t last_bookmark;      /* monotonic milliseconds */
    atomic_int_fast64_t progress; /* highest revision seen on this watch's prefix */
    atomic_bool gone;           /* client disconnected or a send failed */
    pthread_mutex_t send_lock;  /* one event at a time, in order */
};

/* In milliseconds: a watch's timeoutSeconds counts from its own start, not from a whole second
 * (with seconds, timeoutSeconds=1 could end a watch a few milliseconds after it began). */
static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- formatting ---- */

static bool entry_matches(const struct kp_watch_entry *w, const json_t *object)
{
    if (!object)
        return false;
    if (w->name[0]) {
        const char *name = kp_meta_str(object, "name");
        if (!name || strcmp(name, w->name) != 0)
            return false;
    }
    struct kp_call fake = {
        .resource = w->resource,
        .label_selector = w->label,
        .field_selector = w->field,
        .has_label_selector = w->has_label,
        .has_field_selector = w->has_field,
    };
    return kp_object_matches(&fake, object);
}

static json_t *typed_object(const struct kp_resource *resource, json_t *object)
{
    char api_version[128];
    json_object_set_new(object, "apiVersion",
                        json_string(kp_resource_api_version(resource, api_version,
                                                            sizeof(api_version))));
    json_object_set_new(object, "kind", json_string(resource->kind));
    return object;
}

/* Sends one protobuf watch frame (object borrowed). Caller holds send_lock. */
static void send_frame(struct kp_watch_entry *w, const char *type, const json_t *object)
{
    struct kp_strlist dropped = {0};
    struct kp_error err;
    unsigned char *frame = NULL;
    size_t len = 0;
    if (kp_proto_watch_frame(type, object, &frame, &len, &dropped, &err) != KP_OK) {
        kp_log_warn("watch %s: %s; closing the stream", w->resource->plural, err.message);
        atomic_store(&w->gone, true);
    } else {
        if (dropped.count && !w->dropped_logged) {
            kp_log_warn("watch %s (protobuf): an event left out %s", w->resource->plural,
                        dropped.items[0]);
            w->dropped_logged = true;
        }
        if (!kp_http_stream_send(w->stream, (const char *)frame, len))
            atomic_store(&w->gone, true);
    }
    free(frame);
    kp_strlist_wipe(&dropped);
}

/* Sends one event (object borrowed). Caller holds send_lock. */
static void send_event(struct kp_watch_entry *w, const char *type, json_t *object)
{
    json_t *payload = object;
    json_t *table = NULL;
    if (w->table && strcmp(type, "ERROR") != 0 && strcmp(type, "BOOKMARK") != 0) {
        json_t *items = json_pack("[O]", object);
        table = kp_table_from_items(w->resource, items, kp_meta_str(object, "resourceVersion"),
                                    NULL, kp_clock_now(w->api->clock));
        json_decref(items);
        if (w->columns_sent)
            json_object_set_new(table, "columnDefinitions", json_array());
        w->columns_sent = true;
        payload = table;
    }
    if (w->protobuf) {
        send_frame(w, type, payload);
        json_decref(table);
        return;
    }
    json_t *event = json_pack("{s:s, s:O}", "type", type, "object", payload);
    char *line = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);
    json_decref(table);
    if (!line) {
        atomic_store(&w->gone, true);
        return;
    }
    size_t len = strlen(line);
    line[len] = '\n'; /* replaces the NUL; length includes the newline */
    if (!kp_http_stream_send(w->stream, line, len + 1))
        atomic_store(&w->gone, true);
    free(line);
}

static void on_store_event(void *context, const struct kp_store_event *event)
{
    struct kp_watch_entry *w = context;
    atomic_store(&w->progress, event->kv.mod_revision);
    if (atomic_load(&w->gone))
        return;
    json_t *now = kp_object_decode(event->kv.value, event->kv.value_len, event->kv.mod_revision);
    json_t *before = event->type == KP_STORE_PUT && event->prev.key
                         ? kp_object_decode(event->prev.value, event->prev.value_len,
                                            event->kv.mod_revision)
                         : NULL;
    bool now_matches = entry_matches(w, now);
    bool before_matches = entry_matches(w, before);
    const char *type = NULL;
    json_t *object = now;
    if (event->type == KP_STORE_DELETE)
        type = now_matches ? "DELETED" : NULL;
    else if (!event->prev.key)
        type = now_matches ? "ADDED" : NULL;
    else if (now_matches)
        type = before_matches ? "MODIFIED" : "ADDED";
    else if (before_matches) {
        type = "DELETED"; /* stopped matching: the last state the client could have seen, */
        object = before;  /* at the revision of the change */
    }
    if (type) {
        pthread_mutex_lock(&w->send_lock);
        send_event(w, type, typed_object(w->resource, object));
        pthread_mutex_unlock(&w->send_lock);
    }
    json_decref(now);
    json_decref(before);
}

static void on_stream_close(void *context)
{
    struct kp_watch_entry *w = context;
    atomic_store(&w->gone, true);
    pthread_mutex_lock(&w->api->watches_lock);
    pthread_cond_broadcast(&w->api->housekeeper_wake);
    pthread_mutex_unlock(&w->api->watches_lock);
}

static void entry_free(struct kp_watch_entry *w)
{
    kp_selector_wipe(&w->label);
    kp_selector_wipe(&w->field);
    pthread_mutex_destroy(&w->send_lock);
    free(w);
}

/* Ends a watch: no more store callbacks, the stream's last chunk, the memory. Only the
 * housekeeper (or the stopping server) calls this, after unlinking w. */
static void entry_finish(struct kp_watch_entry *w)
{
    if (w->store_watch)
        kp_store_unwatch(w->store_watch);
    /* kp_http_stream_end waits for an on_close already running, so w may go after it. */
    kp_http_stream_end(w->stream);
    entry_free(w);
}

/* ---- starting ---- */

static void send_error(struct kp_watch_entry *w, int code, const char *reason,
                       const char *message)
{
    json_t *status = kp_status_object(code, reason, message, NULL, NULL, NULL);
    pthread_mutex_lock(&w->send_lock);
    send_event(w, "ERROR", status);
    pthread_mutex_unlock(&w->send_lock);
    json_decref(status);
}

static void initial_event(void *context, json_t *object)
{
    struct kp_watch_entry *w = context;
    if (!entry_matches(w, object))
        return;
    pthread_mutex_lock(&w->send_lock);
    send_event(w, "ADDED", typed_object(w->resource, object));
    pthread_mutex_unlock(&w->send_lock);
}

/* A watch's length in seconds. timeoutSeconds is capped at about 68 years, so that the
 * deadline in milliseconds cannot overflow (strtoll gives LLONG_MAX for longer numbers). */
#define WATCH_TIMEOUT_MAX_S INT32_MAX
static int64_t watch_timeout(struct kp_call *call)
{
    const char *text = kp_http_query(call->http, "timeoutSeconds");
    if (text && *text) {
        char *end;
        long long t = strtoll(text, &end, 10);
        if (!*end && t > 0)
            return t < WATCH_TIMEOUT_MAX_S ? t : WATCH_TIMEOUT_MAX_S;
    }
    int64_t min = call->api->config.min_request_timeout > 0
                      ? call->api->config.min_request_timeout
                      : 1800;
    return min + (int64_t)(rand() % (int)min);
}

void kp_watch_handle(struct kp_call *call)
{
    for (size_t i = 0; call->has_field_selector && i < call->field_selector.count; i++) {
        if (!kp_field_supported(call->resource, call->field_selector.requirements[i].key)) {
            char message[300];
            snprintf(message, sizeof(message), "field label not supported: %.200s",
                     call->field_selector.requirements[i].key);
            kp_call_bad_request(call, message);
            return;
        }
    }
    const char *rv_text = kp_http_query(call->http, "resourceVersion");
    int64_t from = 0;
    if (rv_text && *rv_text) {
        char *end;
        long long v = strtoll(rv_text, &end, 10);
        if (*end || v < 0) {
            kp_call_bad_request(call, "resourceVersion must be an integer");
            return;
        }
        from = v;
        if (from > kp_store_revision(call->api->store)) {
            kp_call_status(call, 504, "Timeout", "Too large resource version", NULL, NULL, NULL);
            return;
        }
    }
    struct kp_watch_entry *w = calloc(1, sizeof(*w));
    if (!w) {
        kp_call_error(call, KP_ERR_IO, "out of memory");
        return;
    }
    pthread_mutex_init(&w->send_lock, NULL);
    w->api = call->api;
    w->resource = call->resource;
    /* A watch of one object: by URL name or by fieldSelector metadata.name (server.c puts
     * both in info.name). The selector, when given, is applied anyway. */
    snprintf(w->name, sizeof(w->name), "%s", call->info.name);
    w->label = call->label_selector;
    w->field = call->field_selector;
    w->has_label = call->has_label_selector;
    w->has_field = call->has_field_selector;
    memset(&call->label_selector, 0, sizeof(call->label_selector)); /* moved into w */
    memset(&call->field_selector, 0, sizeof(call->field_selector));
    call->has_label_selector = call->has_field_selector = false;
    w->table = call->want_table;
    w->protobuf = call->encoding == KP_ENCODING_PROTOBUF;
    const char *bookmarks = kp_http_query(call->http, "allowWatchBookmarks");
    w->bookmarks = bookmarks && strcmp(bookmarks, "true") == 0;
    w->last_bookmark = monotonic_ms();
    w->deadline = w->last_bookmark + watch_timeout(call) * 1000;

    w->stream = kp_http_stream_start(call->http, 200,
                                     w->protobuf ? KP_PROTO_MEDIA_TYPE ";stream=watch"
                                                 : "application/json");
    call->responded = true;
    if (!w->stream) {
        entry_free(w);
        return;
    }
    kp_http_stream_on_close(w->stream, on_stream_close, w);

    char prefix[KP_STORE_KEY_MAX];
    kp_object_prefix(w->resource, call->info.namespace_, prefix, sizeof(prefix));
    struct kp_error err;
    enum kp_result rc = KP_OK;
    if (from == 0)
        rc = kp_registry_scan(call->api, prefix, initial_event, w, &from, &err);
    atomic_store(&w->progress, from);
    if (rc == KP_OK)
        rc = kp_store_watch(call->api->store, prefix, from, on_store_event, w, &w->store_watch,
                            &err);
    if (rc != KP_OK) {
        char message[600];
        if (rc == KP_ERR_EXPIRED)
            snprintf(message, sizeof(message), "too old resource version: %lld (%lld)",
                     (long long)from, (long long)kp_store_compacted(call->api->store));
        else
            snprintf(message, sizeof(message), "%s", err.message);
        send_error(w, rc == KP_ERR_EXPIRED ? 410 : 500, rc == KP_ERR_EXPIRED ? "Expired"
                                                                             : "InternalError",
                   message);
        w->store_watch = NULL;
        /* Ends at once: the housekeeper finishes it. */
        atomic_store(&w->gone, true);
    }
    pthread_mutex_lock(&call->api->watches_lock);
    w->next = call->api->watches;
    call->api->watches = w;
    pthread_cond_broadcast(&call->api->housekeeper_wake);
    pthread_mutex_unlock(&call->api->watches_lock);
}

/* ---- housekeeping ---- */

static void send_bookmark(struct kp_watch_entry *w, int64_t revision)
{
    char rv[32], api_version[128];
    snprintf(rv, sizeof(rv), "%lld", (long long)revision);
    json_t *object = json_pack("{s:s, s:s, s:{s:s}}", "kind", w->resource->kind, "apiVersion",
                               kp_resource_api_version(w->resource, api_version,
                                                       sizeof(api_version)),
                               "metadata", "resourceVersion", rv);
    pthread_mutex_lock(&w->send_lock);
    send_event(w, "BOOKMARK", object);
    pthread_mutex_unlock(&w->send_lock);
    json_decref(object);
}

/* Takes the watches that are done out of the list (under watches_lock). */
static struct kp_watch_entry *collect_finished(struct kp_api *api, int64_t now, bool all)
{
    struct kp_watch_entry *done = NULL, **link = &api->watches;
    while (*link) {
        struct kp_watch_entry *w = *link;
        if (all || atomic_load(&w->gone) || now >= w->deadline) {
            *link = w->next;
            w->next = done;
            done = w;
        } else {
            link = &w->next;
        }
    }
    return done;
}

static void compact(struct kp_api *api, int64_t *mark, int64_t *mark_time, int64_t now)
{
    if (now - *mark_time < COMPACT_INTERVAL_MS)
        return;
    struct kp_error err;
    if (*mark > 0 && kp_store_compact(api->store, *mark, &err) != KP_OK)
        kp_log_warn("compacting the store to revision %lld: %s", (long long)*mark, err.message);
    *mark = kp_store_revision(api->store);
    *mark_time = now;
}

/* When the housekeeper wakes next (CLOCK_MONOTONIC, housekeeper_wake's clock): in a second,
 * or at the first watch's deadline if that is sooner, so a watch ends on time. Under
 * watches_lock. */
static struct timespec wake_time(const struct kp_api *api, int64_t now)
{
    int64_t at = now + HOUSEKEEPING_MS;
    for (const struct kp_watch_entry *w = api->watches; w; w = w->next) {
        if (w->deadline < at)
            at = w->deadline;
    }
    struct timespec until = {.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000L};
    return until;
}

void *kp_watch_housekeeper(void *context)
{
    struct kp_api *api = context;
    int64_t mark = 0, mark_time = monotonic_ms();
    pthread_mutex_lock(&api->watches_lock);
    while (!api->stopping) {
        struct timespec until = wake_time(api, monotonic_ms());
        pthread_cond_timedwait(&api->housekeeper_wake, &api->watches_lock, &until);
        if (api->stopping)
            break;
        int64_t now = monotonic_ms();
        struct kp_watch_entry *done = collect_finished(api, now, false);
        /* Bookmarks: progress is read under the lock that keeps w alive. */
        for (struct kp_watch_entry *w = api->watches; w; w = w->next) {
            if (w->bookmarks && now - w->last_bookmark >= BOOKMARK_INTERVAL_MS) {
                w->last_bookmark = now;
                send_bookmark(w, atomic_load(&w->progress));
            }
        }
        pthread_mutex_unlock(&api->watches_lock);
        while (done) {
            struct kp_watch_entry *next = done->next;
            entry_finish(done);
            done = next;
        }
        compact(api, &mark, &mark_time, now);
        pthread_mutex_lock(&api->watches_lock);
    }
    pthread_mutex_unlock(&api->watches_lock);
    return NULL;
}

void kp_watch_stop_all(struct kp_api *api)
{
    pthread_mutex_lock(&api->watches_lock);
    struct kp_watch_entry *done = collect_finished(api, 0, true);
    pthread_mutex_unlock(&api->watches_lock);
    while (done) {
        struct kp_watch_entry *next = done->next;
        entry_finish(done);
        done = next;
    }
}
