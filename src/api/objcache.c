/*
 * api/objcache.c - the authenticators' cache of stored objects (coherence in objcache.h).
 *
 * The map is a jansson object (key -> the stored object): jansson's hash table is already a
 * dependency and does what is needed. When the cache is full a miss is simply not kept; every
 * write forgets its key, so entries are live objects and space comes back as they change.
 */
#include "api/objcache.h"

#include <pthread.h>
#include <stdlib.h>

struct kp_objcache {
    pthread_mutex_t lock;
    json_t *map;       /* key -> object */
    size_t max_entries;
    int64_t seen;      /* the revision of the last event delivered */
    uint64_t hits, misses;
};

struct kp_objcache *kp_objcache_new(size_t max_entries, int64_t store_revision)
{
    struct kp_objcache *cache = calloc(1, sizeof(*cache));
    if (!cache)
        return NULL;
    cache->map = json_object();
    if (!cache->map || pthread_mutex_init(&cache->lock, NULL) != 0) {
        json_decref(cache->map);
        free(cache);
        return NULL;
    }
    cache->max_entries = max_entries;
    cache->seen = store_revision;
    return cache;
}

void kp_objcache_free(struct kp_objcache *cache)
{
    if (!cache)
        return;
    json_decref(cache->map);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

json_t *kp_objcache_get(struct kp_objcache *cache, const char *key, int64_t store_revision)
{
    json_t *object = NULL;
    pthread_mutex_lock(&cache->lock);
    if (store_revision == cache->seen)
        object = json_incref(json_object_get(cache->map, key));
    if (object)
        cache->hits++;
    else
        cache->misses++;
    pthread_mutex_unlock(&cache->lock);
    return object;
}

int64_t kp_objcache_fill_begin(struct kp_objcache *cache, int64_t store_revision)
{
    pthread_mutex_lock(&cache->lock);
    int64_t token = store_revision == cache->seen ? cache->seen : -1;
    pthread_mutex_unlock(&cache->lock);
    return token;
}

void kp_objcache_fill(struct kp_objcache *cache, const char *key, json_t *object, int64_t token)
{
    if (!object || token < 0)
        return;
    pthread_mutex_lock(&cache->lock);
    /* An event since the token: the object read may already be stale, or be newer than what
     * the events say; either way it is not kept. */
    if (token == cache->seen && json_object_size(cache->map) < cache->max_entries)
        (void)json_object_set(cache->map, key, object);
    pthread_mutex_unlock(&cache->lock);
}

void kp_objcache_changed(struct kp_objcache *cache, const char *key, int64_t revision)
{
    pthread_mutex_lock(&cache->lock);
    /* Revisions are dense (one per write): a gap is a write whose event never came here, and
     * whatever it changed may be cached. Start again rather than trust any entry. */
    if (revision > cache->seen + 1)
        (void)json_object_clear(cache->map);
    else
        (void)json_object_del(cache->map, key);
    if (revision > cache->seen)
        cache->seen = revision;
    pthread_mutex_unlock(&cache->lock);
}

void kp_objcache_stats(struct kp_objcache *cache, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&cache->lock);
    *hits = cache->hits;
    *misses = cache->misses;
    pthread_mutex_unlock(&cache->lock);
}
