/*
 * api/objcache: hits and misses; nothing served or kept while the store is ahead of the events
 * seen; an event between the read and the fill keeps the read out; a write forgets its key and
 * no other; a skipped revision forgets everything; the entry cap; shared references that outlive their entry; several threads at once
 * (run under ASan and UBSan).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>

#include "api/objcache.h"

static json_t *object_named(const char *name)
{
    json_t *object = json_pack("{s:{s:s}}", "metadata", "name", name);
    assert_non_null(object);
    return object;
}

/* What kp_registry_lookup_cached does, with `stored` as the store's answer. */
static json_t *read_through(struct kp_objcache *cache, const char *key, json_t *stored,
                            int64_t store_revision)
{
    json_t *object = kp_objcache_get(cache, key, store_revision);
    if (object)
        return object;
    int64_t token = kp_objcache_fill_begin(cache, store_revision);
    kp_objcache_fill(cache, key, stored, token);
    return json_incref(stored);
}

static void test_hit_and_miss(void **state)
{
    (void)state;
    struct kp_objcache *cache = kp_objcache_new(16, 7);
    assert_non_null(cache);
    json_t *sa = object_named("robot");
    assert_null(kp_objcache_get(cache, "/registry/serviceaccounts/default/robot", 7));
    json_t *got = read_through(cache, "/registry/serviceaccounts/default/robot", sa, 7);
    assert_ptr_equal(got, sa);
    json_decref(got);
    got = kp_objcache_get(cache, "/registry/serviceaccounts/default/robot", 7);
    assert_ptr_equal(got, sa); /* the same object, shared */
    json_decref(got);
    assert_null(kp_objcache_get(cache, "/registry/serviceaccounts/default/other", 7));
    uint64_t hits = 0, misses = 0;
    kp_objcache_stats(cache, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 3); /* before the fill, the fill's own look, another key */
    json_decref(sa);
    kp_objcache_free(cache);
}

static void test_store_ahead_serves_and_keeps_nothing(void **state)
{
    (void)state;
    struct kp_objcache *cache = kp_objcache_new(16, 7);
    json_t *sa = object_named("robot");
    json_decref(read_through(cache, "/k", sa, 7));
    /* A write at revision 8 whose event has not been delivered yet. */
    assert_null(kp_objcache_get(cache, "/k", 8));
    assert_int_equal(kp_objcache_fill_begin(cache, 8), -1);
    json_t *newer = object_named("robot-v2");
    kp_objcache_fill(cache, "/other", newer, -1);
    /* Its event arrives (another key): the cache is current again, /k still held. */
    kp_objcache_changed(cache, "/x", 8);
    json_t *got = kp_objcache_get(cache, "/k", 8);
    assert_ptr_equal(got, sa);
    json_decref(got);
    assert_null(kp_objcache_get(cache, "/other", 8));
    json_decref(newer);
    json_decref(sa);
    kp_objcache_free(cache);
}

static void test_write_forgets_its_key_only(void **state)
{
    (void)state;
    struct kp_objcache *cache = kp_objcache_new(16, 1);
    json_t *a = object_named("a"), *b = object_named("b");
    json_decref(read_through(cache, "/a", a, 1));
    json_decref(read_through(cache, "/b", b, 1));
    kp_objcache_changed(cache, "/a", 2); /* a deleted (or updated) at revision 2 */
    assert_null(kp_objcache_get(cache, "/a", 2));
    json_t *got = kp_objcache_get(cache, "/b", 2);
    assert_ptr_equal(got, b);
    json_decref(got);
    /* An event older than the one seen does not move the revision back. */
    kp_objcache_changed(cache, "/zzz", 1);
    got = kp_objcache_get(cache, "/b", 2);
    assert_ptr_equal(got, b);
    json_decref(got);
    json_decref(a);
    json_decref(b);
    kp_objcache_free(cache);
}

/* A revision skipped (a write whose event never came) empties the cache: what that write
 * changed may be in it. */
static void test_gap_empties(void **state)
{
    (void)state;
    struct kp_objcache *cache = kp_objcache_new(16, 1);
    json_t *a = object_named("a"), *b = object_named("b");
    json_decref(read_through(cache, "/a", a, 1));
    json_decref(read_through(cache, "/b", b, 1));
    kp_objcache_changed(cache, "/c", 3); /* revision 2 never arrived */
    assert_null(kp_objcache_get(cache, "/a", 3));
    assert_null(kp_objcache_get(cache, "/b", 3));
    json_decref(read_through(cache, "/a", a, 3)); /* and it fills again */
    json_t *got = kp_objcache_get(cache, "/a", 3);
    assert_ptr_equal(got, a);
    json_decref(got);
    json_decref(a);
    json_decref(b);
    kp_objcache_free(cache);
}

static void test_event_between_read_and_fill(void **state)
{
    (void)state;
    struct kp_objcache *cache = kp_objcache_new(16, 5);
    int64_t token = kp_objcache_fill_begin(cache, 5);
    assert_int_equal(token, 5);
    json_t *old = object_named("old");
    /* The store read returned `old`, then the key was written and its event delivered. */
    kp_objcache_changed(cache, "/k", 6);
    kp_objcache_fill(cache, "/k", old, token);
    assert_null(kp_objcache_get(cache, "/k", 6));
    json_decref(old);
    kp_objcache_free(cache);
}

static void test_cap_and_references(void **state)
{
    (void)state;
    struct kp_objcache *cache = kp_objcache_new(1, 0);
    json_t *a = object_named("a"), *b = object_named("b");
    json_decref(read_through(cache, "/a", a, 0));
    json_decref(read_through(cache, "/b", b, 0)); /* full: served, not kept */
    assert_null(kp_objcache_get(cache, "/b", 0));
    json_t *held = kp_objcache_get(cache, "/a", 0);
    json_decref(a);                      /* the store's reference gone */
    kp_objcache_changed(cache, "/a", 1); /* and the cache's */
    assert_string_equal(json_string_value(json_object_get(json_object_get(held, "metadata"),
                                                          "name")),
                        "a"); /* the caller's reference still holds it */
    json_decref(held);
    json_decref(b);
    kp_objcache_free(cache);

    struct kp_objcache *none = kp_objcache_new(0, 0);
    json_t *c = object_named("c");
    json_decref(read_through(none, "/c", c, 0));
    assert_null(kp_objcache_get(none, "/c", 0));
    json_decref(c);
    kp_objcache_free(none);
    kp_objcache_free(NULL);
}

#define THREADS 4
#define ROUNDS 2000

struct shared {
    struct kp_objcache *cache;
    json_t *objects[8];
    int64_t _Atomic revision;
};

static void *reader(void *arg)
{
    struct shared *s = arg;
    char key[32];
    for (int i = 0; i < ROUNDS; i++) {
        int n = i % 8;
        snprintf(key, sizeof(key), "/k%d", n);
        json_t *got = read_through(s->cache, key, s->objects[n], s->revision);
        assert_non_null(json_object_get(got, "metadata"));
        json_decref(got);
    }
    return NULL;
}

static void *writer(void *arg)
{
    struct shared *s = arg;
    char key[32];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(key, sizeof(key), "/k%d", i % 8);
        kp_objcache_changed(s->cache, key, ++s->revision);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct shared s = {.cache = kp_objcache_new(8, 0)};
    for (int i = 0; i < 8; i++) {
        char name[8];
        snprintf(name, sizeof(name), "o%d", i);
        s.objects[i] = object_named(name);
    }
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, i == 0 ? writer : reader, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    uint64_t hits = 0, misses = 0;
    kp_objcache_stats(s.cache, &hits, &misses);
    assert_int_equal(hits + misses, (uint64_t)(THREADS - 1) * ROUNDS);
    kp_objcache_free(s.cache);
    for (int i = 0; i < 8; i++)
        json_decref(s.objects[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss),
        cmocka_unit_test(test_store_ahead_serves_and_keeps_nothing),
        cmocka_unit_test(test_write_forgets_its_key_only),
        cmocka_unit_test(test_event_between_read_and_fill),
        cmocka_unit_test(test_gap_empties),
        cmocka_unit_test(test_cap_and_references),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
