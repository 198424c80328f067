/*
 * store/store.c - the generic front of the store: argument checks, the write lock, the watch hub,
 * and the _wipe functions. Backends (store/sqlite.c) implement struct kp_store_ops.
 *
 * Implementation notes (the watch hub):
 *
 * Two locks, always taken in this order:
 *   write_lock  serialises create, update, delete and compact, and the last step of a watch's
 *               set-up. A write's events are delivered before it is released, so deliveries
 *               happen in revision order, one write at a time.
 *   hub_lock    guards the list of watchers and is held while callbacks run. kp_store_unwatch
 *               takes only this lock: once it has unlinked the watcher, no callback for it is
 *               running and none can start, and it never waits for a disk sync.
 *
 * A new watch first replays history in chunks without any lock (writers keep going), chasing
 * the current revision; when it is close (REPLAY_LOCKED_MAX revisions), it takes write_lock,
 * replays the rest, which no writer can extend now, and links itself into the hub before
 * releasing it. The first live event it can get is therefore the revision right after the last
 * one replayed: no gap, no duplicate, whatever writers do meanwhile. Compaction in the middle of
 * the unlocked replay is detected by the backend (KP_ERR_EXPIRED), never silently skipped.
 *
 * A write asks its backend for the event only when some watcher's prefix matches the key (or
 * the caller of delete wants the old value), so a store nobody watches never reads old values.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "store/internal.h"

/* Replay without the write lock while more than this many revisions remain. */
#define REPLAY_LOCKED_MAX 64
/* Events per backend history call (one read transaction each). */
#define REPLAY_CHUNK 512
/* Rounds of unlocked replay before taking the lock anyway (bounds set-up under heavy writes). */
#define REPLAY_ROUNDS_MAX 64
/* Keys shown in messages are cut here (a key may be 1 KiB, a message holds 768 bytes). */
#define KEY_SHOWN_MAX 200

struct kp_store_watch {
    struct kp_store *store; /* borrowed: the store outlives its watches */
    char *prefix;           /* owned, "" for every key */
    size_t prefix_len;
    kp_store_watch_fn callback;
    void *context; /* borrowed, the caller's */
    struct kp_store_watch *prev;
    struct kp_store_watch *next;
};

struct kp_store {
    const struct kp_store_ops *ops;
    void *backend; /* owned: ops->close */
    pthread_mutex_t write_lock;
    pthread_mutex_t hub_lock;
    struct kp_store_watch *watchers; /* guarded by hub_lock */
};

/* ---- values and events ---- */

void kp_store_kv_wipe(struct kp_store_kv *kv)
{
    if (kv == NULL) {
        return;
    }
    free(kv->key);
    if (kv->value != NULL) {
        /* Values are Secrets as often as not: do not leave them in freed memory. */
        explicit_bzero(kv->value, kv->value_len);
        free(kv->value);
    }
    memset(kv, 0, sizeof(*kv));
}

void kp_store_list_wipe(struct kp_store_list *list)
{
    if (list == NULL) {
        return;
    }
    for (size_t i = 0; i < list->count; i++) {
        kp_store_kv_wipe(&list->items[i]);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}

void kp_store_event_wipe(struct kp_store_event *event)
{
    if (event == NULL) {
        return;
    }
    kp_store_kv_wipe(&event->kv);
    kp_store_kv_wipe(&event->prev);
    memset(event, 0, sizeof(*event));
}

enum kp_result kp_store_kv_set(struct kp_store_kv *kv, const char *key, const char *value,
                               size_t value_len, int64_t create_revision, int64_t mod_revision,
                               struct kp_error *err)
{
    memset(kv, 0, sizeof(*kv));
    size_t key_len = strlen(key);
    char *key_copy = malloc(key_len + 1);
    char *value_copy = malloc(value_len + 1);
    if (key_copy == NULL || value_copy == NULL) {
        free(key_copy);
        free(value_copy);
        return kp_error_set(err, KP_ERR_IO, "out of memory copying a %zu-byte store value",
                            value_len);
    }
    memcpy(key_copy, key, key_len + 1);
    if (value_len > 0) {
        memcpy(value_copy, value, value_len);
    }
    value_copy[value_len] = '\0';
    kv->key = key_copy;
    kv->value = value_copy;
    kv->value_len = value_len;
    kv->create_revision = create_revision;
    kv->mod_revision = mod_revision;
    return KP_OK;
}

/* ---- argument checks ---- */

static int shown_len(size_t len)
{
    return (int)(len < KEY_SHOWN_MAX ? len : KEY_SHOWN_MAX);
}

/* Keys and prefixes: at most KP_STORE_KEY_MAX bytes, no control characters (they would make
 * keys that sort and print in surprising ways; Kubernetes' names never contain them). `what`
 * is "key", "prefix" or "start_after". */
static enum kp_result check_text(const char *text, const char *what, bool allow_empty,
                                 struct kp_error *err)
{
    if (text == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "store %s is missing", what);
    }
    size_t len = strnlen(text, KP_STORE_KEY_MAX + 1);
    if (len == 0 && !allow_empty) {
        return kp_error_set(err, KP_ERR_INVALID, "store %s is empty", what);
    }
    if (len > KP_STORE_KEY_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "store %s '%.*s...' is longer than %d bytes", what,
                            shown_len(len), text, KP_STORE_KEY_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char byte = (unsigned char)text[i];
        if (byte < 0x20 || byte == 0x7f) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "store %s '%.*s' contains a control character (0x%02x at byte "
                                "%zu)",
                                what, shown_len(i), text, byte, i);
        }
    }
    return KP_OK;
}

static enum kp_result check_value(const char *key, const char *value, size_t value_len,
                                  struct kp_error *err)
{
    if (value == NULL && value_len > 0) {
        return kp_error_set(err, KP_ERR_INVALID, "value for store key '%.*s' is missing",
                            shown_len(strlen(key)), key);
    }
    if (value_len > KP_STORE_VALUE_MAX) {
        return kp_error_set(err, KP_ERR_TOO_LARGE,
                            "value for store key '%.*s' is %zu bytes, the maximum is %d",
                            shown_len(strlen(key)), key, value_len, KP_STORE_VALUE_MAX);
    }
    return KP_OK;
}

static enum kp_result check_revision(int64_t revision, const char *what, struct kp_error *err)
{
    if (revision < 0) {
        return kp_error_set(err, KP_ERR_INVALID, "store %s %lld is negative", what,
                            (long long)revision);
    }
    return KP_OK;
}

static enum kp_result check_store(const struct kp_store *store, struct kp_error *err)
{
    if (store == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "no store given");
    }
    return KP_OK;
}

/* Backend failures (I/O, internal) get the operation and key in front of the backend's message
 * ("cannot update store key '/registry/pods/a': store '/var/lib/kpki/store.db': cannot commit:
 * disk I/O error"); the other kinds already name the key. */
static enum kp_result name_failure(enum kp_result rc, const char *operation, const char *key,
                                   struct kp_error *err)
{
    if (rc == KP_ERR_IO || rc == KP_ERR_INTERNAL) {
        kp_error_prefix(err, "cannot %s '%.*s'", operation, shown_len(strlen(key)), key);
    }
    return rc;
}

/* ---- the hub ---- */

static bool watch_matches(const struct kp_store_watch *watch, const char *key)
{
    return strncmp(key, watch->prefix, watch->prefix_len) == 0;
}

/* Whether any watcher wants events for key. Called under write_lock, so no watcher can be
 * added before the write's events are delivered (one can only go away, which is harmless). */
static bool hub_wants(struct kp_store *store, const char *key)
{
    bool wanted = false;
    pthread_mutex_lock(&store->hub_lock);
    for (struct kp_store_watch *watch = store->watchers; watch != NULL && !wanted;
         watch = watch->next) {
        wanted = watch_matches(watch, key);
    }
    pthread_mutex_unlock(&store->hub_lock);
    return wanted;
}

/* Called under write_lock right after the write committed. */
static void hub_deliver(struct kp_store *store, const struct kp_store_event *event)
{
    pthread_mutex_lock(&store->hub_lock);
    for (struct kp_store_watch *watch = store->watchers; watch != NULL; watch = watch->next) {
        if (watch_matches(watch, event->kv.key)) {
            watch->callback(watch->context, event);
        }
    }
    pthread_mutex_unlock(&store->hub_lock);
}

/* ---- the front ---- */

enum kp_result kp_store_new(const struct kp_store_ops *ops, void *backend, struct kp_store **store,
                            struct kp_error *err)
{
    *store = NULL;
    struct kp_store *created = calloc(1, sizeof(*created));
    if (created == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory creating a store");
    }
    created->ops = ops;
    created->backend = backend;
    pthread_mutex_init(&created->write_lock, NULL);
    pthread_mutex_init(&created->hub_lock, NULL);
    *store = created;
    return KP_OK;
}

void kp_store_close(struct kp_store *store)
{
    if (store == NULL) {
        return;
    }
    if (store->watchers != NULL) {
        /* A watch outliving its store would call into freed memory later: a bug in the caller
         * that must not go unnoticed. */
        kp_log_error("kp_store_close: the store still has watches (prefix '%.*s'); "
                     "call kp_store_unwatch first",
                     shown_len(store->watchers->prefix_len), store->watchers->prefix);
        abort();
    }
    store->ops->close(store->backend);
    pthread_mutex_destroy(&store->write_lock);
    pthread_mutex_destroy(&store->hub_lock);
    free(store);
}

int64_t kp_store_revision(struct kp_store *store)
{
    return store == NULL ? 0 : store->ops->revision(store->backend);
}

int64_t kp_store_compacted(struct kp_store *store)
{
    return store == NULL ? 0 : store->ops->compacted(store->backend);
}

enum kp_result kp_store_get(struct kp_store *store, const char *key, struct kp_store_kv *out,
                            struct kp_error *err)
{
    if (out == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "kp_store_get: no output given");
    }
    memset(out, 0, sizeof(*out));
    enum kp_result rc = check_store(store, err);
    if (rc == KP_OK) {
        rc = check_text(key, "key", false, err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    return name_failure(store->ops->get(store->backend, key, out, err), "read store key", key, err);
}

enum kp_result kp_store_list(struct kp_store *store, const char *prefix, const char *start_after,
                             size_t limit, int64_t revision, struct kp_store_list *out,
                             struct kp_error *err)
{
    if (out == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "kp_store_list: no output given");
    }
    memset(out, 0, sizeof(*out));
    if (prefix == NULL) {
        prefix = "";
    }
    if (start_after != NULL && start_after[0] == '\0') {
        start_after = NULL;
    }
    enum kp_result rc = check_store(store, err);
    if (rc == KP_OK) {
        rc = check_text(prefix, "prefix", true, err);
    }
    if (rc == KP_OK && start_after != NULL) {
        rc = check_text(start_after, "start_after", false, err);
    }
    if (rc == KP_OK) {
        rc = check_revision(revision, "list revision", err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    if (limit > KP_STORE_LIST_MAX) {
        return kp_error_set(err, KP_ERR_TOO_LARGE, "list limit %zu is over the maximum of %d",
                            limit, KP_STORE_LIST_MAX);
    }
    if (limit == 0) {
        limit = KP_STORE_LIST_MAX;
    }
    return name_failure(
        store->ops->list(store->backend, prefix, start_after, limit, revision, out, err),
        "list store prefix", prefix, err);
}

/* Checks shared by create and update. */
static enum kp_result check_write(struct kp_store *store, const char *key, const char *value,
                                  size_t value_len, struct kp_error *err)
{
    enum kp_result rc = check_store(store, err);
    if (rc == KP_OK) {
        rc = check_text(key, "key", false, err);
    }
    if (rc == KP_OK) {
        rc = check_value(key, value, value_len, err);
    }
    return rc;
}

enum kp_result kp_store_create(struct kp_store *store, const char *key, const char *value,
                               size_t value_len, int64_t *revision, struct kp_error *err)
{
    if (revision != NULL) {
        *revision = 0;
    }
    enum kp_result rc = check_write(store, key, value, value_len, err);
    if (rc != KP_OK) {
        return rc;
    }
    struct kp_store_event event;
    memset(&event, 0, sizeof(event));
    int64_t new_revision = 0;
    pthread_mutex_lock(&store->write_lock);
    bool wanted = hub_wants(store, key);
    rc = store->ops->create(store->backend, key, value, value_len, &new_revision,
                            wanted ? &event : NULL, err);
    if (rc == KP_OK && wanted) {
        hub_deliver(store, &event);
    }
    pthread_mutex_unlock(&store->write_lock);
    kp_store_event_wipe(&event);
    if (rc == KP_OK && revision != NULL) {
        *revision = new_revision;
    }
    return name_failure(rc, "create store key", key, err);
}

enum kp_result kp_store_update(struct kp_store *store, const char *key, const char *value,
                               size_t value_len, int64_t expected_mod_revision, int64_t *revision,
                               struct kp_error *err)
{
    if (revision != NULL) {
        *revision = 0;
    }
    enum kp_result rc = check_write(store, key, value, value_len, err);
    if (rc == KP_OK) {
        rc = check_revision(expected_mod_revision, "expected mod revision", err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    struct kp_store_event event;
    memset(&event, 0, sizeof(event));
    int64_t new_revision = 0;
    pthread_mutex_lock(&store->write_lock);
    bool wanted = hub_wants(store, key);
    rc = store->ops->update(store->backend, key, value, value_len, expected_mod_revision,
                            &new_revision, wanted ? &event : NULL, err);
    if (rc == KP_OK && wanted) {
        hub_deliver(store, &event);
    }
    pthread_mutex_unlock(&store->write_lock);
    kp_store_event_wipe(&event);
    if (rc == KP_OK && revision != NULL) {
        *revision = new_revision;
    }
    return name_failure(rc, "update store key", key, err);
}

enum kp_result kp_store_delete(struct kp_store *store, const char *key,
                               int64_t expected_mod_revision, int64_t *revision,
                               struct kp_store_kv *deleted, struct kp_error *err)
{
    if (revision != NULL) {
        *revision = 0;
    }
    if (deleted != NULL) {
        memset(deleted, 0, sizeof(*deleted));
    }
    enum kp_result rc = check_store(store, err);
    if (rc == KP_OK) {
        rc = check_text(key, "key", false, err);
    }
    if (rc == KP_OK) {
        rc = check_revision(expected_mod_revision, "expected mod revision", err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    struct kp_store_event event;
    memset(&event, 0, sizeof(event));
    int64_t new_revision = 0;
    pthread_mutex_lock(&store->write_lock);
    bool watched = hub_wants(store, key);
    rc = store->ops->delete_key(store->backend, key, expected_mod_revision, &new_revision,
                                watched || deleted != NULL ? &event : NULL, err);
    if (rc == KP_OK && watched) {
        hub_deliver(store, &event);
    }
    pthread_mutex_unlock(&store->write_lock);
    if (rc == KP_OK && deleted != NULL) {
        *deleted = event.kv; /* ownership moves to the caller */
        memset(&event.kv, 0, sizeof(event.kv));
    }
    kp_store_event_wipe(&event);
    if (rc == KP_OK && revision != NULL) {
        *revision = new_revision;
    }
    return name_failure(rc, "delete store key", key, err);
}

enum kp_result kp_store_compact(struct kp_store *store, int64_t revision, struct kp_error *err)
{
    enum kp_result rc = check_store(store, err);
    if (rc == KP_OK) {
        rc = check_revision(revision, "compaction revision", err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    pthread_mutex_lock(&store->write_lock);
    int64_t current = store->ops->revision(store->backend);
    int64_t compacted = store->ops->compacted(store->backend);
    if (revision > current) {
        rc = kp_error_set(err, KP_ERR_INVALID,
                          "cannot compact the store at revision %lld: the current revision is "
                          "%lld",
                          (long long)revision, (long long)current);
    } else if (revision > compacted) {
        rc = store->ops->compact(store->backend, revision, err);
    }
    /* else: compacted at or after it already; nothing to do. */
    pthread_mutex_unlock(&store->write_lock);
    if (rc == KP_ERR_IO || rc == KP_ERR_INTERNAL) {
        kp_error_prefix(err, "cannot compact the store at revision %lld", (long long)revision);
    }
    return rc;
}

/* Replays (position, up_to] in chunks; advances *position. */
static enum kp_result replay(struct kp_store *store, struct kp_store_watch *watch,
                             int64_t *position, int64_t up_to, struct kp_error *err)
{
    while (*position < up_to) {
        enum kp_result rc =
            store->ops->history(store->backend, watch->prefix, *position, up_to, REPLAY_CHUNK,
                                watch->callback, watch->context, position, err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

enum kp_result kp_store_watch(struct kp_store *store, const char *prefix, int64_t from_revision,
                              kp_store_watch_fn callback, void *context,
                              struct kp_store_watch **watch, struct kp_error *err)
{
    if (watch == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "kp_store_watch: no output given");
    }
    *watch = NULL;
    if (prefix == NULL) {
        prefix = "";
    }
    enum kp_result rc = check_store(store, err);
    if (rc == KP_OK) {
        rc = check_text(prefix, "prefix", true, err);
    }
    if (rc == KP_OK) {
        rc = check_revision(from_revision, "watch revision", err);
    }
    if (rc == KP_OK && callback == NULL) {
        rc = kp_error_set(err, KP_ERR_INVALID, "kp_store_watch: no callback given");
    }
    if (rc != KP_OK) {
        return rc;
    }
    int64_t current = store->ops->revision(store->backend);
    int64_t compacted = store->ops->compacted(store->backend);
    if (from_revision > current) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "cannot watch '%.*s' from revision %lld: the current revision is "
                            "%lld",
                            shown_len(strlen(prefix)), prefix, (long long)from_revision,
                            (long long)current);
    }
    if (from_revision < compacted - 1) {
        return kp_error_set(err, KP_ERR_EXPIRED,
                            "cannot watch '%.*s' from revision %lld: history before revision "
                            "%lld has been compacted",
                            shown_len(strlen(prefix)), prefix, (long long)from_revision,
                            (long long)compacted);
    }

    struct kp_store_watch *created = calloc(1, sizeof(*created));
    char *prefix_copy = strdup(prefix);
    if (created == NULL || prefix_copy == NULL) {
        free(created);
        free(prefix_copy);
        return kp_error_set(err, KP_ERR_IO, "out of memory creating a watch");
    }
    created->store = store;
    created->prefix = prefix_copy;
    created->prefix_len = strlen(prefix_copy);
    created->callback = callback;
    created->context = context;

    /* History without the lock, until the current revision is within reach. */
    int64_t position = from_revision;
    for (int round = 0; rc == KP_OK && round < REPLAY_ROUNDS_MAX; round++) {
        int64_t target = store->ops->revision(store->backend);
        if (target - position <= REPLAY_LOCKED_MAX) {
            break;
        }
        rc = replay(store, created, &position, target, err);
    }
    /* The rest under the write lock, then go live before any writer can move on. */
    if (rc == KP_OK) {
        pthread_mutex_lock(&store->write_lock);
        rc = replay(store, created, &position, store->ops->revision(store->backend), err);
        if (rc == KP_OK) {
            pthread_mutex_lock(&store->hub_lock);
            created->next = store->watchers;
            if (store->watchers != NULL) {
                store->watchers->prev = created;
            }
            store->watchers = created;
            pthread_mutex_unlock(&store->hub_lock);
        }
        pthread_mutex_unlock(&store->write_lock);
    }
    if (rc != KP_OK) {
        free(created->prefix);
        free(created);
        return name_failure(rc, "watch store prefix", prefix, err);
    }
    *watch = created;
    return KP_OK;
}

void kp_store_unwatch(struct kp_store_watch *watch)
{
    if (watch == NULL) {
        return;
    }
    struct kp_store *store = watch->store;
    /* hub_lock is held while callbacks run: once we have it, none of ours is running. */
    pthread_mutex_lock(&store->hub_lock);
    if (watch->prev != NULL) {
        watch->prev->next = watch->next;
    } else {
        store->watchers = watch->next;
    }
    if (watch->next != NULL) {
        watch->next->prev = watch->prev;
    }
    pthread_mutex_unlock(&store->hub_lock);
    free(watch->prefix);
    free(watch);
}
