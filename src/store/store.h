/*
 * store/store.h - the storage interface of the API server (DESIGN.md §5).
 *
 * A revisioned key-value store in the shape of etcd v3, which Kubernetes' storage layer is built
 * on: keys like "/registry/secrets/default/token", values the objects' JSON, one global revision
 * that every write increments and that becomes each object's metadata.resourceVersion.
 * Operations: get, list (a prefix, at a revision, paginated), create (fails if the key exists),
 * compare-and-swap update and delete (on the key's mod revision), watch (every change after a
 * revision, in revision order), compact (forget history before a revision; reading or watching
 * before it is KP_ERR_EXPIRED, HTTP 410).
 *
 * Backends implement struct kp_store_ops (a small vtable, as Redis' ConnectionType): SQLite is
 * the embedded default (store/sqlite.c); an etcd backend comes later and must pass the same
 * contract suite (tests/unit/test_store.c).
 *
 * Threads: every function is safe to call from any thread. Watch callbacks run on the writing
 * thread, after the write is durable and in revision order, and must not call back into the
 * store; they should only queue the event and wake their consumer.
 * Ownership: values passed in are borrowed for the call; everything returned is owned by the
 * caller and released with the matching _wipe / _free function.
 */
#ifndef KP_STORE_STORE_H
#define KP_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kpki/error.h"

/* Limits: keys up to 1 KiB, values up to 3 MiB (etcd's default request limit is 1.5 MiB; the
 * API server refuses bigger objects first), list pages up to 10000 items. */
#define KP_STORE_KEY_MAX 1024
#define KP_STORE_VALUE_MAX (3 * 1024 * 1024)
#define KP_STORE_LIST_MAX 10000
/* Added with the SQLite backend: a list page also stops once the values it holds pass 64 MiB
 * (it always holds at least one item, and `more` is set), so no single call can be made to hold
 * 10000 values of 3 MiB in memory. Clients page on `more` as usual. */
#define KP_STORE_LIST_BYTES_MAX (64 * 1024 * 1024)
/* Clarification: keys (and prefixes, start_after) are 1..KP_STORE_KEY_MAX bytes without control
 * characters (bytes below 0x20, and 0x7f): KP_ERR_INVALID otherwise. Values are bytes; an empty
 * one is allowed (value may then be NULL). */

struct kp_store_kv {
    char *key;              /* NUL-terminated */
    char *value;            /* value_len bytes plus a NUL (values are JSON text) */
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
};

void kp_store_kv_wipe(struct kp_store_kv *kv);

struct kp_store_list {
    struct kp_store_kv *items; /* sorted by key */
    size_t count;
    int64_t revision;      /* the revision the list is consistent at */
    bool more;             /* more keys after the last one returned (use it as start_after) */
};

void kp_store_list_wipe(struct kp_store_list *list);

enum kp_store_event_type { KP_STORE_PUT, KP_STORE_DELETE };

struct kp_store_event {
    enum kp_store_event_type type;
    struct kp_store_kv kv;      /* for DELETE: the key, the value before deletion, and
                                   mod_revision = the deletion's revision */
    struct kp_store_kv prev;    /* the previous version for a PUT over an existing key (key NULL
                                   when created) */
};

/* Called once per event; `event` is borrowed for the call (copy what you keep). */
typedef void (*kp_store_watch_fn)(void *context, const struct kp_store_event *event);

struct kp_store;
struct kp_store_watch;

/* ---- the operations ---- */

/* Current revision (0 for an empty store). */
int64_t kp_store_revision(struct kp_store *store);
/* The oldest revision still readable (history before it was compacted away). */
int64_t kp_store_compacted(struct kp_store *store);

/* KP_ERR_NOT_FOUND when absent. */
KP_MUST_CHECK enum kp_result kp_store_get(struct kp_store *store, const char *key,
                                          struct kp_store_kv *out, struct kp_error *err);

/* Keys with `prefix`, strictly after start_after (NULL: from the first), at most limit (0: the
 * maximum) in key order, as of `revision` (0: now; older than compacted: KP_ERR_EXPIRED; newer
 * than the current revision: KP_ERR_INVALID). out->revision is the revision used. */
KP_MUST_CHECK enum kp_result kp_store_list(struct kp_store *store, const char *prefix,
                                           const char *start_after, size_t limit,
                                           int64_t revision, struct kp_store_list *out,
                                           struct kp_error *err);

/* KP_ERR_CONFLICT if the key exists. *revision: the new global revision. */
KP_MUST_CHECK enum kp_result kp_store_create(struct kp_store *store, const char *key,
                                             const char *value, size_t value_len,
                                             int64_t *revision, struct kp_error *err);

/* Replaces the value if the key's mod revision is expected_mod_revision (0: any).
 * KP_ERR_NOT_FOUND when absent, KP_ERR_CONFLICT when the revision differs. */
KP_MUST_CHECK enum kp_result kp_store_update(struct kp_store *store, const char *key,
                                             const char *value, size_t value_len,
                                             int64_t expected_mod_revision, int64_t *revision,
                                             struct kp_error *err);

/* Deletes the key (same conditions as update); *deleted (may be NULL) receives the last value. */
KP_MUST_CHECK enum kp_result kp_store_delete(struct kp_store *store, const char *key,
                                             int64_t expected_mod_revision, int64_t *revision,
                                             struct kp_store_kv *deleted, struct kp_error *err);

/* Delivers every change to keys with `prefix` after from_revision (history first, then live),
 * until kp_store_unwatch. from_revision older than compacted - 1: KP_ERR_EXPIRED.
 * *watch: release with kp_store_unwatch (which waits until no callback is running).
 * Clarifications (SQLite backend): the history is replayed on the calling thread before
 * kp_store_watch returns (so the callback may run before *watch is set); if it fails part way
 * (KP_ERR_EXPIRED when a compaction overtakes the replay, KP_ERR_IO), some events may already
 * have been delivered and the caller should discard them. from_revision newer than the current
 * revision: KP_ERR_INVALID, as for list. A DELETE event's prev is empty (kv has the value). */
KP_MUST_CHECK enum kp_result kp_store_watch(struct kp_store *store, const char *prefix,
                                            int64_t from_revision, kp_store_watch_fn callback,
                                            void *context, struct kp_store_watch **watch,
                                            struct kp_error *err);
void kp_store_unwatch(struct kp_store_watch *watch);

/* Forgets history before `revision` (the latest version of every live key stays).
 * Clarifications: `revision` newer than the current revision is KP_ERR_INVALID; at or before
 * the current compaction it does nothing (KP_OK). Lists at `revision` and watches from
 * revision - 1 keep working, with prev and deleted values. */
KP_MUST_CHECK enum kp_result kp_store_compact(struct kp_store *store, int64_t revision,
                                              struct kp_error *err);

/* Closes and frees the store (every watch must be gone). NULL is a no-op.
 * Clarification: closing with a watch left is a bug in the caller and aborts the process (the
 * watch would otherwise call into freed memory later). */
void kp_store_close(struct kp_store *store);

/* ---- backends ---- */

/* Opens (creating if needed) an SQLite store at path: WAL mode, synchronous=FULL, so an
 * acknowledged write survives a crash of the process or of the machine.
 * Clarifications: a new file is created with mode 0600 (the store holds Secrets). One open
 * store per file: an exclusive lock on "<path>-lock" is held until kp_store_close, and a second
 * open (in this or another process) fails with KP_ERR_CONFLICT. A file that is not a kpki store,
 * or of an unknown schema version, is KP_ERR_INVALID. */
KP_MUST_CHECK enum kp_result kp_store_open_sqlite(const char *path, struct kp_store **store,
                                                  struct kp_error *err);

#endif
