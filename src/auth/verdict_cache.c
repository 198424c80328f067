/*
 * auth/verdict_cache.c - see verdict_cache.h.
 */
#include "auth/verdict_cache.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

struct entry {
    unsigned char key[KP_VERDICT_KEY_SIZE];
    int64_t expires_at; /* 0: empty */
    bool flag;
    json_t *value; /* a reference, or NULL */
};

struct set {
    pthread_mutex_t lock;
    struct entry ways[WAYS];
};

struct kp_verdict_cache {
    size_t set_count;
    struct set *sets;
    int64_t max_ttl;
    atomic_uint_fast64_t hits, misses;
};

struct kp_verdict_cache *kp_verdict_cache_new(size_t entries, int64_t max_ttl)
{
    struct kp_verdict_cache *cache = calloc(1, sizeof(*cache));
    if (!cache)
        return NULL;
    cache->max_ttl = max_ttl;
    cache->set_count = entries / WAYS + (entries % WAYS != 0);
    if (cache->set_count == 0)
        cache->set_count = 1;
    cache->sets = calloc(cache->set_count, sizeof(*cache->sets));
    if (!cache->sets) {
        free(cache);
        return NULL;
    }
    for (size_t i = 0; i < cache->set_count; i++)
        pthread_mutex_init(&cache->sets[i].lock, NULL);
    return cache;
}

void kp_verdict_cache_free(struct kp_verdict_cache *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < cache->set_count; i++) {
        for (size_t w = 0; w < WAYS; w++)
            json_decref(cache->sets[i].ways[w].value);
        pthread_mutex_destroy(&cache->sets[i].lock);
    }
    free(cache->sets);
    free(cache);
}

bool kp_verdict_key(const void *data, size_t len, unsigned char key[KP_VERDICT_KEY_SIZE])
{
    unsigned int key_len = 0;
    return EVP_Digest(data, len, key, &key_len, EVP_sha256(), NULL) == 1 &&
           key_len == KP_VERDICT_KEY_SIZE;
}

/* The set a key falls in (from its first bytes: the key is a hash already). */
static struct set *set_for(struct kp_verdict_cache *cache, const unsigned char *key)
{
    uint64_t index = 0;
    memcpy(&index, key, sizeof(index));
    return &cache->sets[index % cache->set_count];
}

bool kp_verdict_cache_get(struct kp_verdict_cache *cache,
                          const unsigned char key[KP_VERDICT_KEY_SIZE], int64_t now, json_t **value,
                          bool *flag, int64_t *expires_at)
{
    if (!cache)
        return false;
    struct set *set = set_for(cache, key);
    bool hit = false;
    pthread_mutex_lock(&set->lock);
    for (size_t w = 0; w < WAYS; w++) {
        struct entry *e = &set->ways[w];
        if (e->expires_at > now && memcmp(e->key, key, KP_VERDICT_KEY_SIZE) == 0) {
            *value = json_incref(e->value);
            *flag = e->flag;
            if (expires_at)
                *expires_at = e->expires_at;
            hit = true;
            break;
        }
    }
    pthread_mutex_unlock(&set->lock);
    atomic_fetch_add_explicit(hit ? &cache->hits : &cache->misses, 1, memory_order_relaxed);
    return hit;
}

void kp_verdict_cache_put(struct kp_verdict_cache *cache,
                          const unsigned char key[KP_VERDICT_KEY_SIZE], json_t *value, bool flag,
                          int64_t expires_at, int64_t now)
{
    if (!cache || expires_at <= now)
        return;
    if (expires_at - now > cache->max_ttl)
        expires_at = now + cache->max_ttl;
    struct set *set = set_for(cache, key);
    pthread_mutex_lock(&set->lock);
    /* The same key again, else an expired or empty way, else the one expiring first. */
    struct entry *victim = &set->ways[0];
    for (size_t w = 0; w < WAYS; w++) {
        struct entry *e = &set->ways[w];
        if (memcmp(e->key, key, KP_VERDICT_KEY_SIZE) == 0 || e->expires_at <= now) {
            victim = e;
            break;
        }
        if (e->expires_at < victim->expires_at)
            victim = e;
    }
    json_t *old = victim->value;
    memcpy(victim->key, key, KP_VERDICT_KEY_SIZE);
    victim->value = json_incref(value);
    victim->flag = flag;
    victim->expires_at = expires_at;
    pthread_mutex_unlock(&set->lock);
    json_decref(old); /* outside the lock: freeing a claims object may take a while */
}

void kp_verdict_cache_stats(struct kp_verdict_cache *cache, uint64_t *hits, uint64_t *misses)
{
    *hits = cache ? atomic_load(&cache->hits) : 0;
    *misses = cache ? atomic_load(&cache->misses) : 0;
}
