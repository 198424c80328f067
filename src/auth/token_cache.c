/*
 * auth/token_cache.c - see token_cache.h.
 */
#include "auth/token_cache.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

struct entry {
    unsigned char hash[32];
    int64_t expires_at; /* 0: empty */
    bool legacy;
    json_t *claims;     /* a reference */
};

struct set {
    pthread_mutex_t lock;
    struct entry ways[WAYS];
};

struct kp_token_cache {
    size_t set_count;
    struct set *sets;
    atomic_uint_fast64_t hits, misses;
};

struct kp_token_cache *kp_token_cache_new(size_t entries)
{
    struct kp_token_cache *cache = calloc(1, sizeof(*cache));
    if (!cache)
        return NULL;
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

void kp_token_cache_free(struct kp_token_cache *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < cache->set_count; i++) {
        for (size_t w = 0; w < WAYS; w++)
            json_decref(cache->sets[i].ways[w].claims);
        pthread_mutex_destroy(&cache->sets[i].lock);
    }
    free(cache->sets);
    free(cache);
}

/* The token's SHA-256, and the set it falls in (from the hash's first bytes). */
static struct set *set_for(struct kp_token_cache *cache, const char *token, size_t len,
                           unsigned char hash[32])
{
    unsigned int hash_len = 0;
    if (EVP_Digest(token, len, hash, &hash_len, EVP_sha256(), NULL) != 1 || hash_len != 32)
        return NULL;
    uint64_t index = 0;
    memcpy(&index, hash, sizeof(index));
    return &cache->sets[index % cache->set_count];
}

json_t *kp_token_cache_get(struct kp_token_cache *cache, const char *token, size_t len,
                           int64_t now, bool *legacy)
{
    if (!cache)
        return NULL;
    unsigned char hash[32];
    struct set *set = set_for(cache, token, len, hash);
    json_t *claims = NULL;
    if (set) {
        pthread_mutex_lock(&set->lock);
        for (size_t w = 0; w < WAYS; w++) {
            struct entry *e = &set->ways[w];
            if (e->expires_at > now && memcmp(e->hash, hash, sizeof(hash)) == 0) {
                claims = json_incref(e->claims);
                *legacy = e->legacy;
                break;
            }
        }
        pthread_mutex_unlock(&set->lock);
    }
    atomic_fetch_add_explicit(claims ? &cache->hits : &cache->misses, 1, memory_order_relaxed);
    return claims;
}

void kp_token_cache_put(struct kp_token_cache *cache, const char *token, size_t len,
                        json_t *claims, bool legacy, int64_t expires_at, int64_t now)
{
    if (!cache || expires_at <= now)
        return;
    if (expires_at > now + KP_TOKEN_CACHE_MAX_TTL)
        expires_at = now + KP_TOKEN_CACHE_MAX_TTL;
    unsigned char hash[32];
    struct set *set = set_for(cache, token, len, hash);
    if (!set)
        return;
    pthread_mutex_lock(&set->lock);
    /* The same token again, else an expired or empty way, else the one expiring first. */
    struct entry *victim = &set->ways[0];
    for (size_t w = 0; w < WAYS; w++) {
        struct entry *e = &set->ways[w];
        if (memcmp(e->hash, hash, sizeof(hash)) == 0 || e->expires_at <= now) {
            victim = e;
            break;
        }
        if (e->expires_at < victim->expires_at)
            victim = e;
    }
    json_t *old = victim->claims;
    memcpy(victim->hash, hash, sizeof(hash));
    victim->claims = json_incref(claims);
    victim->legacy = legacy;
    victim->expires_at = expires_at;
    pthread_mutex_unlock(&set->lock);
    json_decref(old); /* outside the lock: freeing a claims object may take a while */
}

void kp_token_cache_stats(struct kp_token_cache *cache, uint64_t *hits, uint64_t *misses)
{
    *hits = cache ? atomic_load(&cache->hits) : 0;
    *misses = cache ? atomic_load(&cache->misses) : 0;
}
