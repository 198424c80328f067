/*
 * store/internal.h - what a storage backend implements (struct kp_store_ops) and what the generic
 * front (store.c) gives it. Private to src/store/.
 *
 * Split of work:
 *   the front (store.c)  argument checks, the write lock, the watch hub (registration, live
 *                        delivery, unwatch), the history-then-live hand-over of a new watch,
 *                        the _wipe functions;
 *   a backend            durable storage: the operations below on already checked arguments.
 *
 * Locking contract: the front calls create, update, delete and compact with its write lock
 * held, so a backend sees at most one of them at a time and may keep its own "current revision"
 * in memory. Every other operation may be called from any thread at any time, concurrently with
 * each other and with one write.
 *
 * A backend reports durable history through `history`, which the front uses to replay a new
 * watch; live events it returns from the writes themselves (the `event` out-parameters), and
 * the front delivers them after the write returns, still under the write lock, so watchers see
 * revisions in order. (An etcd backend, whose writes can come from other API servers, would
 * instead feed the hub from etcd's own watch stream; that needs one more op and comes with it.)
 */
#ifndef KP_STORE_INTERNAL_H
#define KP_STORE_INTERNAL_H

#include "store/store.h"

struct kp_store_ops {
    const char *name; /* "sqlite" */

    /* The cached current and compacted revisions (never fail; any thread). */
    int64_t (*revision)(void *backend);
    int64_t (*compacted)(void *backend);

    /* As kp_store_get / kp_store_list, arguments checked: key valid, prefix non-NULL (maybe
     * ""), start_after NULL or non-empty, 1 <= limit <= KP_STORE_LIST_MAX, revision >= 0.
     * The backend checks revision against compacted and current inside its read snapshot,
     * ends a page early (more = true) once its values pass KP_STORE_LIST_BYTES_MAX, and leaves
     * *out empty on failure. */
    enum kp_result (*get)(void *backend, const char *key, struct kp_store_kv *out,
                          struct kp_error *err);
    enum kp_result (*list)(void *backend, const char *prefix, const char *start_after, size_t limit,
                           int64_t revision, struct kp_store_list *out, struct kp_error *err);

    /* Writes, called under the front's write lock, arguments checked. Each is one durable
     * transaction that takes the next revision, stored in *revision. `event` is NULL when
     * nobody needs it; otherwise, on success, the backend fills it (owned: the front wipes it):
     * type, kv (the new version; for a delete the deleted value with mod_revision = the
     * deletion's revision) and, for an update, prev (the replaced version). On failure nothing
     * changed and *event is left zeroed. */
    enum kp_result (*create)(void *backend, const char *key, const char *value, size_t value_len,
                             int64_t *revision, struct kp_store_event *event, struct kp_error *err);
    enum kp_result (*update)(void *backend, const char *key, const char *value, size_t value_len,
                             int64_t expected_mod_revision, int64_t *revision,
                             struct kp_store_event *event, struct kp_error *err);
    enum kp_result (*delete_key)(void *backend, const char *key, int64_t expected_mod_revision,
                                 int64_t *revision, struct kp_store_event *event,
                                 struct kp_error *err);
    /* compacted < revision <= current (the front handles the rest). */
    enum kp_result (*compact)(void *backend, int64_t revision, struct kp_error *err);

    /* History replay for a new watch, any thread: calls callback for each change to a key
     * starting with `prefix` whose revision is in (after, up_to], in revision order, at most
     * max_events of them, each in the shape of a live event (PUT with prev when it replaced a
     * version; DELETE with the deleted value). *scanned_to receives the revision up to which
     * history has been read: up_to when fewer than max_events matched, else the last delivered
     * revision. KP_ERR_EXPIRED when part of (after, up_to] has been compacted away
     * (compacted > after + 1); up_to must not exceed the current revision. */
    enum kp_result (*history)(void *backend, const char *prefix, int64_t after, int64_t up_to,
                              size_t max_events, kp_store_watch_fn callback, void *context,
                              int64_t *scanned_to, struct kp_error *err);

    /* Frees everything (no operation is running). */
    void (*close)(void *backend);
};

/* Wraps an opened backend in the front. On success the store owns `backend` (ops->close runs in
 * kp_store_close); on failure the caller still owns it. */
KP_MUST_CHECK enum kp_result kp_store_new(const struct kp_store_ops *ops, void *backend,
                                          struct kp_store **store, struct kp_error *err);

/* Releases what an event owns and zeroes it. NULL is a no-op. */
void kp_store_event_wipe(struct kp_store_event *event);

/* Fills kv with copies of key and value (value gets a terminating NUL). KP_ERR_IO when out of
 * memory, with kv left zeroed. */
KP_MUST_CHECK enum kp_result kp_store_kv_set(struct kp_store_kv *kv, const char *key,
                                             const char *value, size_t value_len,
                                             int64_t create_revision, int64_t mod_revision,
                                             struct kp_error *err);

#endif
