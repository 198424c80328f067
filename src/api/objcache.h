/*
 * api/objcache.h - the authenticators' cache of stored objects (service accounts, the secrets
 * and pods tokens are bound to, nodes), so that a request carrying a service-account token does
 * not read SQLite and parse JSON for each lookup.
 *
 * Coherence: strict, not eventual. kube-apiserver reads these through informer caches, which
 * lag the store; this cache never serves an object older than a write that has returned. The
 * store delivers every write's events on the writing thread before the write returns
 * (store/store.h), and the server's internal watch passes each one to kp_objcache_changed,
 * which forgets the key and records the revision. A cached object is only served while the
 * store's revision equals the last revision seen, and a miss is only filled if no event
 * arrived between the revision read before the store read and the fill. The one window left is
 * a write in progress, between its commit and its event: a lookup then may still see the
 * object as it was, as it could had it run a moment earlier. An event whose revision skips one
 * (a write that never reached the watch) empties the cache.
 *
 * Threads: every function is safe from any thread (one mutex). Objects are shared: a cached
 * object is handed out as a new reference to the same json_t, so callers must not modify it
 * (jansson's reference counts are atomic; its reads do not write).
 * Ownership: kp_objcache_get returns a new reference (the caller decrefs); kp_objcache_fill
 * borrows `object` and takes its own reference.
 */
#ifndef KP_API_OBJCACHE_H
#define KP_API_OBJCACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct kp_objcache;

/* The API server's size: service accounts, bound secrets and pods, and nodes of a small or
 * edge cluster (a few KiB each); beyond it, lookups just go to the store. */
#define KP_OBJCACHE_ENTRIES 4096

/* A cache of at most max_entries objects (0: a cache that never holds anything). The revision
 * seen starts at store_revision, the store's revision when its watch starts. NULL when out of
 * memory. */
struct kp_objcache *kp_objcache_new(size_t max_entries, int64_t store_revision);
void kp_objcache_free(struct kp_objcache *cache);

/* The object stored under key, as a new reference; NULL when it is not cached or when the
 * store is ahead of the events seen (store_revision: kp_store_revision now). */
json_t *kp_objcache_get(struct kp_objcache *cache, const char *key, int64_t store_revision);

/* Before a store read meant to fill the cache: a token for kp_objcache_fill, or -1 when the
 * store is ahead of the events seen (a fill could not be trusted). */
int64_t kp_objcache_fill_begin(struct kp_objcache *cache, int64_t store_revision);

/* Keeps object (read from the store after kp_objcache_fill_begin returned token) under key,
 * unless an event arrived since then, token is -1 or the cache is full. */
void kp_objcache_fill(struct kp_objcache *cache, const char *key, json_t *object, int64_t token);

/* The store wrote key at revision (an event of the internal watch): forgets the key, or
 * everything when revision is past the one after the last seen. */
void kp_objcache_changed(struct kp_objcache *cache, const char *key, int64_t revision);

/* Hits and misses so far (gets that found nothing or could not be trusted). */
void kp_objcache_stats(struct kp_objcache *cache, uint64_t *hits, uint64_t *misses);

#endif
