/*
 * auth/verdict_cache, as the token and chain caches use it: hits and misses, expiry at the
 * entry's time, the cap (max_ttl), replacement of the entry expiring first in a full set, the
 * flag, entries without a value (a verified chain), references (values outlive their entry), a
 * NULL cache, and several threads at once (run under ASan). get and put below key by the
 * SHA-256 of a string, as the token cache does.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auth/verdict_cache.h"

#define NOW 1800000000
#define MAX_TTL 600

/* The claims put under token, or NULL on a miss. */
static json_t *get(struct kp_verdict_cache *cache, const char *token, size_t len, int64_t now,
                   bool *flag)
{
    unsigned char key[KP_VERDICT_KEY_SIZE];
    assert_true(kp_verdict_key(token, len, key));
    json_t *value = NULL;
    return kp_verdict_cache_get(cache, key, now, &value, flag, NULL) ? value : NULL;
}

static void put(struct kp_verdict_cache *cache, const char *token, size_t len, json_t *value,
                bool flag, int64_t expires_at, int64_t now)
{
    unsigned char key[KP_VERDICT_KEY_SIZE];
    assert_true(kp_verdict_key(token, len, key));
    kp_verdict_cache_put(cache, key, value, flag, expires_at, now);
}

static json_t *claims_named(const char *name)
{
    json_t *claims = json_pack("{s:s}", "sub", name);
    assert_non_null(claims);
    return claims;
}

static void test_hit_miss_expiry(void **state)
{
    (void)state;
    struct kp_verdict_cache *cache = kp_verdict_cache_new(16, MAX_TTL);
    assert_non_null(cache);
    json_t *claims = claims_named("a");
    put(cache, "token-a", 7, claims, false, NOW + 100, NOW);
    bool legacy = true;
    json_t *got = get(cache, "token-a", 7, NOW + 99, &legacy);
    assert_ptr_equal(got, claims);
    assert_false(legacy);
    json_decref(got);
    assert_null(get(cache, "token-a", 7, NOW + 100, &legacy)); /* expired */
    assert_null(get(cache, "token-b", 7, NOW, &legacy));       /* never put */
    assert_null(get(cache, "token-a", 6, NOW, &legacy));       /* a prefix */
    /* Already expired: not kept. */
    put(cache, "token-c", 7, claims, false, NOW, NOW);
    assert_null(get(cache, "token-c", 7, NOW - 1, &legacy));
    uint64_t hits, misses;
    kp_verdict_cache_stats(cache, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 4);
    json_decref(claims);
    kp_verdict_cache_free(cache);
}

static void test_cap_and_legacy(void **state)
{
    (void)state;
    struct kp_verdict_cache *cache = kp_verdict_cache_new(4, MAX_TTL);
    json_t *claims = claims_named("legacy");
    put(cache, "legacy", 6, claims, true, INT64_MAX, NOW);
    bool legacy = false;
    json_t *got = get(cache, "legacy", 6, NOW + MAX_TTL - 1, &legacy);
    assert_non_null(got);
    assert_true(legacy);
    json_decref(got);
    assert_null(get(cache, "legacy", 6, NOW + MAX_TTL, &legacy));
    json_decref(claims);
    kp_verdict_cache_free(cache);
}

static void test_full_set_replaces_first_expiring(void **state)
{
    (void)state;
    struct kp_verdict_cache *cache = kp_verdict_cache_new(4, MAX_TTL); /* one set of four */
    char name[16];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        json_t *claims = claims_named(name);
        put(cache, name, strlen(name), claims, false, NOW + 100 + i, NOW);
        json_decref(claims); /* the cache holds its own reference */
    }
    json_t *claims = claims_named("t4");
    put(cache, "t4", 2, claims, false, NOW + 500, NOW);
    json_decref(claims);
    bool legacy;
    assert_null(get(cache, "t0", 2, NOW, &legacy)); /* expired first: replaced */
    for (int i = 1; i <= 4; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        json_t *got = get(cache, name, strlen(name), NOW, &legacy);
        assert_non_null(got);
        assert_string_equal(json_string_value(json_object_get(got, "sub")), name);
        json_decref(got);
    }
    /* The same token put again replaces its own entry, not another one. */
    claims = claims_named("t1-again");
    put(cache, "t1", 2, claims, false, NOW + 50, NOW);
    json_decref(claims);
    json_t *got = get(cache, "t1", 2, NOW, &legacy);
    assert_string_equal(json_string_value(json_object_get(got, "sub")), "t1-again");
    json_decref(got);
    got = get(cache, "t2", 2, NOW, &legacy);
    assert_non_null(got);
    /* A reference from the cache outlives the cache. */
    kp_verdict_cache_free(cache);
    assert_string_equal(json_string_value(json_object_get(got, "sub")), "t2");
    json_decref(got);
}

static void test_null_cache(void **state)
{
    (void)state;
    json_t *claims = claims_named("x");
    put(NULL, "x", 1, claims, false, NOW + 10, NOW);
    bool legacy;
    assert_null(get(NULL, "x", 1, NOW, &legacy));
    uint64_t hits = 1, misses = 1;
    kp_verdict_cache_stats(NULL, &hits, &misses);
    assert_int_equal(hits + misses, 0);
    json_decref(claims);
    kp_verdict_cache_free(NULL);
}

struct worker_arg {
    struct kp_verdict_cache *cache;
    int id;
};

static void *worker(void *p)
{
    struct worker_arg *arg = p;
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "tok-%d", (i * 7 + arg->id) % 97);
        json_t *claims = claims_named(name);
        put(arg->cache, name, strlen(name), claims, false, NOW + 1 + i % 50, NOW);
        json_decref(claims);
        bool legacy;
        json_t *got = get(arg->cache, name, strlen(name), NOW, &legacy);
        if (got && strcmp(json_string_value(json_object_get(got, "sub")), name) != 0)
            return (void *)1; /* another token's claims */
        json_decref(got);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct kp_verdict_cache *cache = kp_verdict_cache_new(32, MAX_TTL);
    pthread_t threads[4];
    struct worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct worker_arg){cache, i};
        assert_int_equal(pthread_create(&threads[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *result = NULL;
        pthread_join(threads[i], &result);
        assert_null(result);
    }
    kp_verdict_cache_free(cache);
}

/* A chain's verdict has no value: a hit must still say so, with the flag and the entry's end. */
static void test_verdict_without_value(void **state)
{
    (void)state;
    struct kp_verdict_cache *cache = kp_verdict_cache_new(8, 60);
    unsigned char key[KP_VERDICT_KEY_SIZE], other[KP_VERDICT_KEY_SIZE];
    assert_true(kp_verdict_key("chain", 5, key));
    assert_true(kp_verdict_key("chain2", 6, other));
    kp_verdict_cache_put(cache, key, NULL, true, NOW + 3600, NOW); /* capped at NOW + 60 */
    json_t *value = json_true();
    bool flag = false;
    int64_t until = 0;
    assert_true(kp_verdict_cache_get(cache, key, NOW + 59, &value, &flag, &until));
    assert_null(value);
    assert_true(flag);
    assert_int_equal(until, NOW + 60);
    assert_false(kp_verdict_cache_get(cache, key, NOW + 60, &value, &flag, &until));
    assert_false(kp_verdict_cache_get(cache, other, NOW, &value, &flag, &until));
    kp_verdict_cache_free(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_expiry),
        cmocka_unit_test(test_cap_and_legacy),
        cmocka_unit_test(test_full_set_replaces_first_expiring),
        cmocka_unit_test(test_null_cache),
        cmocka_unit_test(test_verdict_without_value),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
