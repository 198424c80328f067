/*
 * The store's contract suite (store/store.h), written against the public interface only and run
 * once per backend listed in `backends` (today SQLite; etcd is to pass the same tests), plus a
 * few tests of what only the SQLite backend promises (file mode, the one-process lock, the
 * schema, what compaction leaves on disk, a write the disk refuses).
 *
 * Adding a backend: give `backends` a row whose open function reopens the same data when given
 * the same directory; every contract test then runs against it.
 *
 * The program has three more modes. Two are used by tests/integration/it_store_crash.sh:
 *   test_store --writer DB COUNT   writes to the store and prints each acknowledged write
 *                                  ("C|U|D <revision> <key> <value length>") with fflush
 *   test_store --check DB ACKS...  reopens the store and checks that every acknowledged write
 *                                  is in its history at its revision, revisions are dense and
 *                                  acknowledged ones increasing, and the file's integrity
 * and one measures (docs/store.md):
 *   test_store --bench DB COUNT SIZE
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

/* ---- the backends under test ---- */

struct backend {
    const char *name;
    /* Opens the store kept in dir; the same dir again gives the same data. */
    enum kp_result (*open)(const char *dir, struct kp_store **store, struct kp_error *err);
};

static const char *sqlite_path(const char *dir, char *out, size_t size)
{
    return test_path(out, size, dir, "store.db");
}

static enum kp_result open_sqlite(const char *dir, struct kp_store **store, struct kp_error *err)
{
    char path[600];
    return kp_store_open_sqlite(sqlite_path(dir, path, sizeof(path)), store, err);
}

static const struct backend backends[] = {
    {"sqlite", open_sqlite},
};

static const struct backend *backend; /* the one the running group tests */

struct fixture {
    char dir[512];
    struct kp_store *store;
};

static int setup(void **state)
{
    struct fixture *fixture = calloc(1, sizeof(*fixture));
    assert_non_null(fixture);
    test_make_dir("store", fixture->dir, sizeof(fixture->dir));
    struct kp_error err;
    if (backend->open(fixture->dir, &fixture->store, &err) != KP_OK) {
        fail_msg("cannot open the %s store: %s", backend->name, err.message);
    }
    *state = fixture;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fixture = *state;
    kp_store_close(fixture->store);
    test_remove_tree(fixture->dir);
    free(fixture);
    return 0;
}

static void reopen(struct fixture *fixture)
{
    kp_store_close(fixture->store);
    fixture->store = NULL;
    struct kp_error err;
    if (backend->open(fixture->dir, &fixture->store, &err) != KP_OK) {
        fail_msg("cannot reopen the %s store: %s", backend->name, err.message);
    }
}

/* ---- helpers ---- */

static int64_t create(struct kp_store *store, const char *key, const char *value)
{
    struct kp_error err;
    int64_t revision = 0;
    if (kp_store_create(store, key, value, strlen(value), &revision, &err) != KP_OK) {
        fail_msg("create %s: %s", key, err.message);
    }
    return revision;
}

static int64_t update(struct kp_store *store, const char *key, const char *value, int64_t expected)
{
    struct kp_error err;
    int64_t revision = 0;
    if (kp_store_update(store, key, value, strlen(value), expected, &revision, &err) != KP_OK) {
        fail_msg("update %s: %s", key, err.message);
    }
    return revision;
}

static int64_t delete (struct kp_store *store, const char *key)
{
    struct kp_error err;
    int64_t revision = 0;
    if (kp_store_delete(store, key, 0, &revision, NULL, &err) != KP_OK) {
        fail_msg("delete %s: %s", key, err.message);
    }
    return revision;
}

static void expect_kv(struct kp_store *store, const char *key, const char *value,
                      int64_t create_revision, int64_t mod_revision)
{
    struct kp_store_kv kv;
    struct kp_error err;
    if (kp_store_get(store, key, &kv, &err) != KP_OK) {
        fail_msg("get %s: %s", key, err.message);
    }
    assert_string_equal(kv.key, key);
    assert_int_equal(kv.value_len, strlen(value));
    assert_string_equal(kv.value, value);
    assert_int_equal(kv.create_revision, create_revision);
    assert_int_equal(kv.mod_revision, mod_revision);
    kp_store_kv_wipe(&kv);
}

static void expect_absent(struct kp_store *store, const char *key)
{
    struct kp_store_kv kv;
    struct kp_error err;
    assert_int_equal(kp_store_get(store, key, &kv, &err), KP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, key));
    assert_null(kv.key);
}

/* "key=value@mod,key=value@mod" for a list, for compact assertions. */
static char *list_text(const struct kp_store_list *list)
{
    size_t size = 1;
    for (size_t i = 0; i < list->count; i++) {
        size += strlen(list->items[i].key) + list->items[i].value_len + 32;
    }
    char *text = malloc(size);
    assert_non_null(text);
    text[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < list->count; i++) {
        used += (size_t)snprintf(text + used, size - used, "%s%s=%s@%lld", i > 0 ? "," : "",
                                 list->items[i].key, list->items[i].value,
                                 (long long)list->items[i].mod_revision);
    }
    return text;
}

static void expect_list(struct kp_store *store, const char *prefix, const char *start_after,
                        size_t limit, int64_t revision, const char *expected, bool more)
{
    struct kp_store_list list;
    struct kp_error err;
    if (kp_store_list(store, prefix, start_after, limit, revision, &list, &err) != KP_OK) {
        fail_msg("list %s at %lld: %s", prefix, (long long)revision, err.message);
    }
    char *text = list_text(&list);
    if (strcmp(text, expected) != 0 || list.more != more) {
        fail_msg("list '%s' after '%s' limit %zu at %lld:\n got  %s (more %d)\n want %s (more "
                 "%d)",
                 prefix, start_after != NULL ? start_after : "", limit, (long long)revision, text,
                 list.more, expected, more);
    }
    assert_int_equal(list.revision, revision != 0 ? revision : kp_store_revision(store));
    for (size_t i = 1; i < list.count; i++) {
        assert_true(strcmp(list.items[i - 1].key, list.items[i].key) < 0);
    }
    free(text);
    kp_store_list_wipe(&list);
}

/* A value that can be recognised from its key and length: {"key":"<key>","pad":"...."}. */
static char *make_value(const char *key, size_t len)
{
    char *value = malloc(len + 1);
    if (value == NULL) {
        abort();
    }
    int head = snprintf(value, len + 1, "{\"key\":\"%s\",\"pad\":\"", key);
    for (size_t i = (size_t)head; i < len; i++) {
        value[i] = (char)('a' + (i * 7 + strlen(key)) % 26);
    }
    if (len >= (size_t)head + 2) {
        value[len - 2] = '"';
        value[len - 1] = '}';
    }
    value[len] = '\0';
    return value;
}

/* ---- recording watch events ---- */

struct seen {
    enum kp_store_event_type type;
    char *key;
    char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    char *prev_value; /* NULL when the event had no prev */
    int64_t prev_mod_revision;
};

struct recorder {
    pthread_mutex_t lock;
    struct seen *events;
    size_t count;
    size_t capacity;
    atomic_bool unwatched; /* set right after kp_store_unwatch returned */
    atomic_int late;       /* callbacks seen after that: must stay 0 */
};

static char *copy_bytes(const char *data, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        abort();
    }
    if (len > 0) {
        memcpy(copy, data, len);
    }
    copy[len] = '\0';
    return copy;
}

static void record(void *context, const struct kp_store_event *event)
{
    struct recorder *recorder = context;
    if (atomic_load(&recorder->unwatched)) {
        atomic_fetch_add(&recorder->late, 1);
        return;
    }
    pthread_mutex_lock(&recorder->lock);
    if (recorder->count == recorder->capacity) {
        recorder->capacity = recorder->capacity == 0 ? 64 : recorder->capacity * 2;
        recorder->events = realloc(recorder->events, recorder->capacity * sizeof(struct seen));
        if (recorder->events == NULL) {
            abort();
        }
    }
    struct seen *seen = &recorder->events[recorder->count++];
    memset(seen, 0, sizeof(*seen));
    seen->type = event->type;
    seen->key = copy_bytes(event->kv.key, strlen(event->kv.key));
    seen->value = copy_bytes(event->kv.value, event->kv.value_len);
    seen->value_len = event->kv.value_len;
    seen->create_revision = event->kv.create_revision;
    seen->mod_revision = event->kv.mod_revision;
    if (event->prev.key != NULL) {
        seen->prev_value = copy_bytes(event->prev.value, event->prev.value_len);
        seen->prev_mod_revision = event->prev.mod_revision;
    }
    pthread_mutex_unlock(&recorder->lock);
}

static void recorder_init(struct recorder *recorder)
{
    memset(recorder, 0, sizeof(*recorder));
    pthread_mutex_init(&recorder->lock, NULL);
}

static void recorder_wipe(struct recorder *recorder)
{
    for (size_t i = 0; i < recorder->count; i++) {
        free(recorder->events[i].key);
        free(recorder->events[i].value);
        free(recorder->events[i].prev_value);
    }
    free(recorder->events);
    pthread_mutex_destroy(&recorder->lock);
}

static struct kp_store_watch *watch(struct kp_store *store, const char *prefix, int64_t from,
                                    struct recorder *recorder)
{
    struct kp_store_watch *handle = NULL;
    struct kp_error err;
    if (kp_store_watch(store, prefix, from, record, recorder, &handle, &err) != KP_OK) {
        fail_msg("watch %s from %lld: %s", prefix, (long long)from, err.message);
    }
    return handle;
}

static void expect_event(const struct recorder *recorder, size_t index,
                         enum kp_store_event_type type, const char *key, const char *value,
                         int64_t create_revision, int64_t mod_revision, const char *prev_value,
                         int64_t prev_mod_revision)
{
    assert_true(index < recorder->count);
    const struct seen *seen = &recorder->events[index];
    assert_int_equal(seen->type, type);
    assert_string_equal(seen->key, key);
    assert_string_equal(seen->value, value);
    assert_int_equal(seen->create_revision, create_revision);
    assert_int_equal(seen->mod_revision, mod_revision);
    if (prev_value == NULL) {
        assert_null(seen->prev_value);
    } else {
        assert_non_null(seen->prev_value);
        assert_string_equal(seen->prev_value, prev_value);
        assert_int_equal(seen->prev_mod_revision, prev_mod_revision);
    }
}

/* Two recordings of the same changes are identical (live against replayed). */
static void expect_same_events(const struct recorder *a, size_t a_from, const struct recorder *b,
                               size_t b_from, size_t count)
{
    assert_true(a_from + count <= a->count);
    assert_true(b_from + count <= b->count);
    for (size_t i = 0; i < count; i++) {
        const struct seen *x = &a->events[a_from + i];
        const struct seen *y = &b->events[b_from + i];
        assert_int_equal(x->mod_revision, y->mod_revision);
        assert_int_equal(x->type, y->type);
        assert_string_equal(x->key, y->key);
        assert_int_equal(x->value_len, y->value_len);
        assert_memory_equal(x->value, y->value, x->value_len);
        assert_int_equal(x->create_revision, y->create_revision);
        assert_int_equal(x->prev_value == NULL, y->prev_value == NULL);
        if (x->prev_value != NULL) {
            assert_string_equal(x->prev_value, y->prev_value);
            assert_int_equal(x->prev_mod_revision, y->prev_mod_revision);
        }
    }
}

/* ---- basic operations ---- */

static void test_empty(void **state)
{
    struct fixture *fixture = *state;
    assert_int_equal(kp_store_revision(fixture->store), 0);
    assert_int_equal(kp_store_compacted(fixture->store), 0);
    expect_absent(fixture->store, "/registry/pods/default/a");
    expect_list(fixture->store, "/", NULL, 0, 0, "", false);
}

static void test_create_get(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    assert_int_equal(create(fixture->store, "/registry/pods/default/a", "{\"a\":1}"), 1);
    expect_kv(fixture->store, "/registry/pods/default/a", "{\"a\":1}", 1, 1);
    assert_int_equal(kp_store_revision(fixture->store), 1);

    int64_t revision = 99;
    assert_int_equal(
        kp_store_create(fixture->store, "/registry/pods/default/a", "{}", 2, &revision, &err),
        KP_ERR_CONFLICT);
    assert_int_equal(revision, 0);
    assert_non_null(strstr(err.message, "'/registry/pods/default/a' already exists"));
    assert_int_equal(kp_store_revision(fixture->store), 1);
    expect_kv(fixture->store, "/registry/pods/default/a", "{\"a\":1}", 1, 1);

    /* Values are bytes: an empty one, and one with a NUL inside, come back exactly. */
    assert_int_equal(kp_store_create(fixture->store, "/empty", NULL, 0, &revision, &err), KP_OK);
    assert_int_equal(revision, 2);
    expect_kv(fixture->store, "/empty", "", 2, 2);
    const char binary[] = {'a', '\0', 'b', '\xff'};
    assert_int_equal(kp_store_create(fixture->store, "/binary", binary, sizeof(binary), NULL, &err),
                     KP_OK);
    struct kp_store_kv kv;
    assert_int_equal(kp_store_get(fixture->store, "/binary", &kv, &err), KP_OK);
    assert_int_equal(kv.value_len, sizeof(binary));
    assert_memory_equal(kv.value, binary, sizeof(binary));
    assert_int_equal(kv.value[kv.value_len], '\0');
    kp_store_kv_wipe(&kv);
    kp_store_kv_wipe(&kv); /* twice is harmless */
}

static void test_update_cas(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    int64_t created = create(fixture->store, "/k", "v1");
    int64_t revision = update(fixture->store, "/k", "v2", created);
    assert_int_equal(revision, created + 1);
    expect_kv(fixture->store, "/k", "v2", created, revision);

    /* A stale expected revision: conflict, nothing written, no revision used. */
    assert_int_equal(kp_store_update(fixture->store, "/k", "v3", 2, created, &revision, &err),
                     KP_ERR_CONFLICT);
    assert_non_null(strstr(err.message, "'/k'"));
    assert_non_null(strstr(err.message, "mod revision 2"));
    assert_int_equal(kp_store_revision(fixture->store), 2);
    expect_kv(fixture->store, "/k", "v2", 1, 2);

    /* 0: any revision. */
    assert_int_equal(update(fixture->store, "/k", "v3", 0), 3);
    expect_kv(fixture->store, "/k", "v3", 1, 3);

    assert_int_equal(kp_store_update(fixture->store, "/missing", "x", 1, 0, &revision, &err),
                     KP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "'/missing' not found"));
    assert_int_equal(kp_store_update(fixture->store, "/k", "x", 1, -1, &revision, &err),
                     KP_ERR_INVALID);
    assert_int_equal(kp_store_revision(fixture->store), 3);
}

static void test_delete(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    struct kp_store_kv deleted;
    int64_t revision = 0;
    create(fixture->store, "/k", "v1");
    update(fixture->store, "/k", "v2", 1);

    assert_int_equal(kp_store_delete(fixture->store, "/k", 1, &revision, &deleted, &err),
                     KP_ERR_CONFLICT);
    assert_null(deleted.key);
    assert_non_null(strstr(err.message, "'/k'"));
    expect_kv(fixture->store, "/k", "v2", 1, 2);

    assert_int_equal(kp_store_delete(fixture->store, "/k", 2, &revision, &deleted, &err), KP_OK);
    assert_int_equal(revision, 3);
    assert_string_equal(deleted.key, "/k");
    assert_string_equal(deleted.value, "v2");
    assert_int_equal(deleted.create_revision, 1);
    assert_int_equal(deleted.mod_revision, 3);
    kp_store_kv_wipe(&deleted);
    expect_absent(fixture->store, "/k");

    assert_int_equal(kp_store_delete(fixture->store, "/k", 0, &revision, NULL, &err),
                     KP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "'/k' not found"));
    assert_int_equal(kp_store_revision(fixture->store), 3);

    /* Created again: a new life, a new create revision. */
    assert_int_equal(create(fixture->store, "/k", "v3"), 4);
    expect_kv(fixture->store, "/k", "v3", 4, 4);
}

static void test_revisions_increase(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    int64_t last = 0;
    for (int i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof(key), "/k/%02d", i % 10);
        int64_t revision = 0;
        enum kp_result rc = KP_OK;
        if (i < 10) {
            revision = create(fixture->store, key, "v");
        } else if (i % 3 == 0) {
            revision = update(fixture->store, key, "w", 0);
        } else if (i % 3 == 1) {
            rc = kp_store_create(fixture->store, key, "x", 1, &revision, &err);
            assert_int_equal(rc, KP_ERR_CONFLICT);
        } else {
            revision = delete (fixture->store, key);
            create(fixture->store, key, "again");
            revision = kp_store_revision(fixture->store);
        }
        if (rc == KP_OK) {
            assert_true(revision > last);
            last = revision;
        }
        assert_int_equal(kp_store_revision(fixture->store), last);
    }
}

/* ---- list ---- */

static void test_list_pages(void **state)
{
    struct fixture *fixture = *state;
    for (int i = 0; i < 25; i++) {
        char key[32];
        snprintf(key, sizeof(key), "/a/%02d", i);
        create(fixture->store, key, "v");
    }
    create(fixture->store, "/b/00", "v");
    create(fixture->store, "/", "root");

    struct kp_store_list page;
    struct kp_error err;
    char after[64] = "";
    size_t total = 0;
    int64_t at = 0;
    int pages = 0;
    do {
        assert_int_equal(kp_store_list(fixture->store, "/a/", after[0] != '\0' ? after : NULL, 10,
                                       at, &page, &err),
                         KP_OK);
        if (at == 0) {
            at = page.revision;
            /* A write between pages changes nothing at the pinned revision. */
            create(fixture->store, "/a/99", "late");
            delete (fixture->store, "/a/20");
        }
        assert_int_equal(page.revision, at);
        for (size_t i = 0; i < page.count; i++) {
            char want[32];
            snprintf(want, sizeof(want), "/a/%02zu", total + i);
            assert_string_equal(page.items[i].key, want);
        }
        total += page.count;
        pages++;
        assert_int_equal(page.more, total < 25);
        if (page.count > 0) {
            snprintf(after, sizeof(after), "%s", page.items[page.count - 1].key);
        }
        kp_store_list_wipe(&page);
    } while (total < 25 && pages < 10);
    assert_int_equal(total, 25);
    assert_int_equal(pages, 3);

    /* Now: /a/20 gone, /a/99 there. */
    expect_list(fixture->store, "/a/", "/a/18", 0, 0,
                "/a/19=v@20,/a/21=v@22,/a/22=v@23,"
                "/a/23=v@24,/a/24=v@25,/a/99=late@28",
                false);
    /* Exactly `limit` left: more is false. */
    expect_list(fixture->store, "/a/", "/a/22", 3, 0, "/a/23=v@24,/a/24=v@25,/a/99=late@28", false);
    expect_list(fixture->store, "/a/", "/a/22", 2, 0, "/a/23=v@24,/a/24=v@25", true);
    /* At the pinned revision, /a/20 was still there and /a/99 not yet. */
    expect_list(fixture->store, "/a/", "/a/18", 2, 27, "/a/19=v@20,/a/20=v@21", true);
    expect_list(fixture->store, "/a/", "/a/23", 0, 27, "/a/24=v@25", false);
    /* The last live key is followed only by a deleted one: more is false. */
    delete (fixture->store, "/a/99");
    expect_list(fixture->store, "/a/", "/a/23", 1, 0, "/a/24=v@25", false);
    expect_list(fixture->store, "/a/", "/a/19", 1, 0, "/a/21=v@22", true);
    expect_list(fixture->store, "/b", NULL, 0, 0, "/b/00=v@26", false);
    expect_list(fixture->store, "/a/", "/a/99", 0, 0, "", false);
    expect_list(fixture->store, "/a/", "/zzz", 0, 0, "", false);
    /* start_after before the prefix: from the prefix's first key. */
    expect_list(fixture->store, "/b/", "/a/05", 0, 0, "/b/00=v@26", false);
    /* The empty prefix (and NULL) is everything. */
    struct kp_store_list all;
    assert_int_equal(kp_store_list(fixture->store, NULL, NULL, 0, 0, &all, &err), KP_OK);
    assert_int_equal(all.count, 26);
    assert_string_equal(all.items[0].key, "/");
    kp_store_list_wipe(&all);
    assert_int_equal(kp_store_list(fixture->store, "", NULL, 1, 0, &all, &err), KP_OK);
    assert_int_equal(all.count, 1);
    assert_true(all.more);
    kp_store_list_wipe(&all);
}

static void test_list_prefix_bounds(void **state)
{
    struct fixture *fixture = *state;
    const char *keys[] = {"/a",          "/a/",      "/a/x", "/a0", "/a/\xff",
                          "/a/\xff\xff", "/a/\xff!", "/b",   "/a.", "/a/\x7e"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        create(fixture->store, keys[i], "v");
    }
    /* Byte order; "/a0" ("0" follows "/") and "/a." are outside "/a/". */
    expect_list(fixture->store, "/a/", NULL, 0, 0,
                "/a/=v@2,/a/x=v@3,/a/~=v@10,/a/\xff=v@5,/a/\xff!=v@7,/a/\xff\xff=v@6", false);
    /* A prefix ending in 0xff has its successor one byte up. */
    expect_list(fixture->store, "/a/\xff", NULL, 0, 0, "/a/\xff=v@5,/a/\xff!=v@7,/a/\xff\xff=v@6",
                false);
    expect_list(fixture->store, "/a/\xff\xff", NULL, 0, 0, "/a/\xff\xff=v@6", false);
    expect_list(fixture->store, "/a", NULL, 0, 0,
                "/a=v@1,/a.=v@9,/a/=v@2,/a/x=v@3,/a/~=v@10,/a/\xff=v@5,/a/\xff!=v@7,"
                "/a/\xff\xff=v@6,/a0=v@4",
                false);
    expect_list(fixture->store, "/c", NULL, 0, 0, "", false);
}

static void test_list_at_revision(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    struct kp_store_list list;
    create(fixture->store, "/k/1", "a1");    /* 1 */
    create(fixture->store, "/k/2", "b1");    /* 2 */
    update(fixture->store, "/k/1", "a2", 1); /* 3 */
    delete (fixture->store, "/k/2");         /* 4 */
    create(fixture->store, "/k/3", "c1");    /* 5 */
    create(fixture->store, "/k/2", "b2");    /* 6 */

    expect_list(fixture->store, "/k/", NULL, 0, 1, "/k/1=a1@1", false);
    expect_list(fixture->store, "/k/", NULL, 0, 2, "/k/1=a1@1,/k/2=b1@2", false);
    /* Updated after the revision: the old value; deleted after it: still listed. */
    expect_list(fixture->store, "/k/", NULL, 0, 3, "/k/1=a2@3,/k/2=b1@2", false);
    expect_list(fixture->store, "/k/", NULL, 0, 4, "/k/1=a2@3", false);
    expect_list(fixture->store, "/k/", NULL, 1, 4, "/k/1=a2@3", false);
    expect_list(fixture->store, "/k/", NULL, 0, 5, "/k/1=a2@3,/k/3=c1@5", false);
    expect_list(fixture->store, "/k/", NULL, 0, 6, "/k/1=a2@3,/k/2=b2@6,/k/3=c1@5", false);
    expect_list(fixture->store, "/k/", NULL, 0, 0, "/k/1=a2@3,/k/2=b2@6,/k/3=c1@5", false);
    expect_list(fixture->store, "/k/", "/k/1", 1, 5, "/k/3=c1@5", false);

    /* The future is refused, and so is a negative revision. */
    assert_int_equal(kp_store_list(fixture->store, "/k/", NULL, 0, 7, &list, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "revision 7"));
    assert_null(list.items);
    assert_int_equal(kp_store_list(fixture->store, "/k/", NULL, 0, -1, &list, &err),
                     KP_ERR_INVALID);
}

static void test_list_limits(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    struct kp_store_list list;
    assert_int_equal(
        kp_store_list(fixture->store, "/", NULL, KP_STORE_LIST_MAX + 1, 0, &list, &err),
        KP_ERR_TOO_LARGE);
    assert_non_null(strstr(err.message, "10001"));
    assert_int_equal(kp_store_list(fixture->store, "/", NULL, KP_STORE_LIST_MAX, 0, &list, &err),
                     KP_OK);
    kp_store_list_wipe(&list);
    assert_int_equal(kp_store_list(fixture->store, "/", NULL, 0, 0, NULL, &err), KP_ERR_INVALID);
}

/* A page stops at KP_STORE_LIST_BYTES_MAX of values, with more set. */
static void test_list_bytes_budget(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    size_t count = KP_STORE_LIST_BYTES_MAX / KP_STORE_VALUE_MAX + 3;
    for (size_t i = 0; i < count; i++) {
        char key[32];
        snprintf(key, sizeof(key), "/big/%02zu", i);
        char *value = make_value(key, KP_STORE_VALUE_MAX);
        assert_int_equal(
            kp_store_create(fixture->store, key, value, KP_STORE_VALUE_MAX, NULL, &err), KP_OK);
        free(value);
    }
    struct kp_store_list list;
    assert_int_equal(kp_store_list(fixture->store, "/big/", NULL, 0, 0, &list, &err), KP_OK);
    assert_true(list.count < count);
    assert_true(list.count * (size_t)KP_STORE_VALUE_MAX >= KP_STORE_LIST_BYTES_MAX);
    assert_true(list.more);
    size_t first = list.count;
    char after[32];
    snprintf(after, sizeof(after), "%s", list.items[list.count - 1].key);
    kp_store_list_wipe(&list);
    assert_int_equal(kp_store_list(fixture->store, "/big/", after, 0, 0, &list, &err), KP_OK);
    assert_int_equal(first + list.count, count);
    assert_false(list.more);
    kp_store_list_wipe(&list);
}

/* ---- watch ---- */

static void test_watch_replay_and_live(void **state)
{
    struct fixture *fixture = *state;
    struct kp_store *store = fixture->store;
    create(store, "/w/a", "a1");    /* 1 */
    update(store, "/w/a", "a2", 1); /* 2 */
    create(store, "/w/b", "b1");    /* 3 */
    delete (store, "/w/a");         /* 4 */

    struct recorder recorder;
    recorder_init(&recorder);
    struct kp_store_watch *handle = watch(store, "/w/", 0, &recorder);
    assert_int_equal(recorder.count, 4); /* replayed before kp_store_watch returned */
    expect_event(&recorder, 0, KP_STORE_PUT, "/w/a", "a1", 1, 1, NULL, 0);
    expect_event(&recorder, 1, KP_STORE_PUT, "/w/a", "a2", 1, 2, "a1", 1);
    expect_event(&recorder, 2, KP_STORE_PUT, "/w/b", "b1", 3, 3, NULL, 0);
    expect_event(&recorder, 3, KP_STORE_DELETE, "/w/a", "a2", 1, 4, NULL, 0);

    create(store, "/w/a", "a3");    /* 5: created again, no prev */
    update(store, "/w/b", "b2", 3); /* 6 */
    delete (store, "/w/b");         /* 7 */
    struct kp_store_kv deleted;
    struct kp_error err;
    assert_int_equal(kp_store_delete(store, "/w/a", 5, NULL, &deleted, &err), KP_OK); /* 8 */
    assert_string_equal(deleted.value, "a3");
    kp_store_kv_wipe(&deleted);
    assert_int_equal(recorder.count, 8);
    expect_event(&recorder, 4, KP_STORE_PUT, "/w/a", "a3", 5, 5, NULL, 0);
    expect_event(&recorder, 5, KP_STORE_PUT, "/w/b", "b2", 3, 6, "b1", 3);
    expect_event(&recorder, 6, KP_STORE_DELETE, "/w/b", "b2", 3, 7, NULL, 0);
    expect_event(&recorder, 7, KP_STORE_DELETE, "/w/a", "a3", 5, 8, NULL, 0);

    /* Failed writes deliver nothing. */
    assert_int_equal(kp_store_update(store, "/w/a", "x", 1, 0, NULL, &err), KP_ERR_NOT_FOUND);
    assert_int_equal(recorder.count, 8);
    kp_store_unwatch(handle);

    /* A replay of the same range gives the same events as the live ones. */
    struct recorder again;
    recorder_init(&again);
    handle = watch(store, "/w/", 0, &again);
    assert_int_equal(again.count, 8);
    expect_same_events(&recorder, 0, &again, 0, 8);
    kp_store_unwatch(handle);
    /* From a revision: only what follows; from now: nothing yet. */
    recorder_wipe(&again);
    recorder_init(&again);
    handle = watch(store, "/w/", 5, &again);
    assert_int_equal(again.count, 3);
    expect_same_events(&recorder, 5, &again, 0, 3);
    kp_store_unwatch(handle);
    recorder_wipe(&again);
    recorder_init(&again);
    handle = watch(store, "/w/", 8, &again);
    assert_int_equal(again.count, 0);
    create(store, "/w/c", "c");
    assert_int_equal(again.count, 1);
    kp_store_unwatch(handle);
    recorder_wipe(&again);
    recorder_wipe(&recorder);
}

static void test_watch_prefix(void **state)
{
    struct fixture *fixture = *state;
    struct kp_store *store = fixture->store;
    create(store, "/registry/pods/a", "p");
    create(store, "/registry/podsecuritypolicies/x", "psp");
    create(store, "/registry/secrets/s", "s");

    struct recorder pods, secrets, everything;
    recorder_init(&pods);
    recorder_init(&secrets);
    recorder_init(&everything);
    struct kp_store_watch *pods_watch = watch(store, "/registry/pods/", 0, &pods);
    struct kp_store_watch *secrets_watch = watch(store, "/registry/secrets/", 1, &secrets);
    struct kp_store_watch *all_watch = watch(store, NULL, 3, &everything);
    create(store, "/registry/pods/b", "p");
    create(store, "/registry/pods", "not under /registry/pods/");
    update(store, "/registry/secrets/s", "s2", 0);
    delete (store, "/registry/podsecuritypolicies/x");

    assert_int_equal(pods.count, 2);
    expect_event(&pods, 0, KP_STORE_PUT, "/registry/pods/a", "p", 1, 1, NULL, 0);
    expect_event(&pods, 1, KP_STORE_PUT, "/registry/pods/b", "p", 4, 4, NULL, 0);
    assert_int_equal(secrets.count, 2);
    expect_event(&secrets, 0, KP_STORE_PUT, "/registry/secrets/s", "s", 3, 3, NULL, 0);
    expect_event(&secrets, 1, KP_STORE_PUT, "/registry/secrets/s", "s2", 3, 6, "s", 3);
    assert_int_equal(everything.count, 4);
    for (size_t i = 0; i < everything.count; i++) {
        assert_int_equal(everything.events[i].mod_revision, 4 + (int64_t)i);
    }
    kp_store_unwatch(pods_watch);
    kp_store_unwatch(all_watch);
    create(store, "/registry/secrets/t", "t");
    assert_int_equal(secrets.count, 3);
    assert_int_equal(everything.count, 4);
    kp_store_unwatch(secrets_watch);
    kp_store_unwatch(NULL);
    recorder_wipe(&pods);
    recorder_wipe(&secrets);
    recorder_wipe(&everything);
}

static void test_watch_arguments(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    struct kp_store_watch *handle = (struct kp_store_watch *)&err;
    struct recorder recorder;
    recorder_init(&recorder);
    create(fixture->store, "/k", "v");
    assert_int_equal(kp_store_watch(fixture->store, "/", 2, record, &recorder, &handle, &err),
                     KP_ERR_INVALID);
    assert_null(handle);
    assert_non_null(strstr(err.message, "revision 2"));
    assert_int_equal(kp_store_watch(fixture->store, "/", -1, record, &recorder, &handle, &err),
                     KP_ERR_INVALID);
    assert_int_equal(kp_store_watch(fixture->store, "/", 0, NULL, &recorder, &handle, &err),
                     KP_ERR_INVALID);
    assert_int_equal(kp_store_watch(NULL, "/", 0, record, &recorder, &handle, &err),
                     KP_ERR_INVALID);
    assert_int_equal(kp_store_watch(fixture->store, "/", 0, record, &recorder, NULL, &err),
                     KP_ERR_INVALID);
    assert_int_equal(recorder.count, 0);
    recorder_wipe(&recorder);
}

/* Writers on several threads while watches start at various moments: each watch sees exactly
 * the revisions after its start, in order, and what it saw live equals a later replay. */
struct writer {
    struct kp_store *store;
    int id;
    int count;
    atomic_int *failures;
    char last_error[KP_ERROR_MESSAGE_MAX];
};

static void *writer_run(void *arg)
{
    struct writer *writer = arg;
    struct kp_error err;
    for (int i = 0; i < writer->count; i++) {
        char key[64];
        /* Two prefixes, a handful of keys each: creates, updates and deletes all happen. */
        snprintf(key, sizeof(key), "/%s/%d/%d", i % 3 == 0 ? "x" : "y", writer->id, i % 5);
        char value[64];
        snprintf(value, sizeof(value), "{\"writer\":%d,\"i\":%d}", writer->id, i);
        enum kp_result rc =
            kp_store_update(writer->store, key, value, strlen(value), 0, NULL, &err);
        if (rc == KP_ERR_NOT_FOUND) {
            rc = kp_store_create(writer->store, key, value, strlen(value), NULL, &err);
        } else if (rc == KP_OK && i % 7 == 0) {
            rc = kp_store_delete(writer->store, key, 0, NULL, NULL, &err);
        }
        if (rc != KP_OK) {
            snprintf(writer->last_error, sizeof(writer->last_error), "%s", err.message);
            atomic_fetch_add(writer->failures, 1);
        }
    }
    return NULL;
}

static void expect_dense(const struct recorder *recorder, int64_t from, int64_t to)
{
    if (recorder->count != (size_t)(to - from)) {
        fail_msg("watch from %lld saw %zu events, expected %lld", (long long)from, recorder->count,
                 (long long)(to - from));
    }
    for (size_t i = 0; i < recorder->count; i++) {
        if (recorder->events[i].mod_revision != from + 1 + (int64_t)i) {
            fail_msg("watch from %lld: event %zu has revision %lld, expected %lld", (long long)from,
                     i, (long long)recorder->events[i].mod_revision,
                     (long long)(from + 1 + (int64_t)i));
        }
    }
}

static void test_watch_concurrent_writers(void **state)
{
    struct fixture *fixture = *state;
    struct kp_store *store = fixture->store;
    enum { WRITERS = 3, WRITES = 200, WATCHES = 6 };
    atomic_int failures = 0;
    struct writer writers[WRITERS];
    pthread_t threads[WRITERS];
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof(key), "/x/seed/%d", i);
        create(store, key, "seed");
    }
    for (int i = 0; i < WRITERS; i++) {
        writers[i] = (struct writer){store, i, WRITES, &failures, ""};
        assert_int_equal(pthread_create(&threads[i], NULL, writer_run, &writers[i]), 0);
    }
    struct recorder all[WATCHES], some[WATCHES];
    struct kp_store_watch *handles[2 * WATCHES];
    int64_t starts[WATCHES];
    for (int i = 0; i < WATCHES; i++) {
        recorder_init(&all[i]);
        recorder_init(&some[i]);
        /* Some from the start (long replays), some from "now" (racing the writers). */
        int64_t now = kp_store_revision(store);
        starts[i] = i % 2 == 0 ? i : now;
        handles[2 * i] = watch(store, "", starts[i], &all[i]);
        handles[2 * i + 1] = watch(store, "/x/", starts[i], &some[i]);
        struct timespec pause = {0, 3 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(threads[i], NULL);
    }
    for (int i = 0; i < WRITERS; i++) {
        if (writers[i].last_error[0] != '\0') {
            fail_msg("writer %d: %s", i, writers[i].last_error);
        }
    }
    assert_int_equal(atomic_load(&failures), 0);
    for (int i = 0; i < 2 * WATCHES; i++) {
        kp_store_unwatch(handles[i]);
    }
    int64_t final = kp_store_revision(store);
    assert_true(final > 20 + WRITERS * WRITES);

    /* The reference: one replay of everything. */
    struct recorder reference;
    recorder_init(&reference);
    struct kp_store_watch *handle = watch(store, "", 0, &reference);
    kp_store_unwatch(handle);
    expect_dense(&reference, 0, final);
    for (int i = 0; i < WATCHES; i++) {
        expect_dense(&all[i], starts[i], final);
        expect_same_events(&reference, (size_t)starts[i], &all[i], 0, all[i].count);
        /* The prefix watch: exactly the reference's /x/ events after the start. */
        size_t matched = 0;
        for (size_t e = (size_t)starts[i]; e < reference.count; e++) {
            if (strncmp(reference.events[e].key, "/x/", 3) == 0) {
                assert_true(matched < some[i].count);
                expect_same_events(&reference, e, &some[i], matched, 1);
                matched++;
            }
        }
        assert_int_equal(matched, some[i].count);
        recorder_wipe(&all[i]);
        recorder_wipe(&some[i]);
    }
    recorder_wipe(&reference);
}

/* kp_store_unwatch while writers write: after it returns, the callback never runs again (the
 * recorder, freed right after, would be a use after free under ASan besides). */
static void test_unwatch_while_writing(void **state)
{
    struct fixture *fixture = *state;
    struct kp_store *store = fixture->store;
    enum { WRITERS = 2, WRITES = 300, ROUNDS = 40 };
    atomic_int failures = 0;
    struct writer writers[WRITERS];
    pthread_t threads[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        writers[i] = (struct writer){store, i, WRITES, &failures, ""};
        assert_int_equal(pthread_create(&threads[i], NULL, writer_run, &writers[i]), 0);
    }
    int late = 0;
    size_t seen = 0;
    for (int round = 0; round < ROUNDS; round++) {
        struct recorder *recorder = malloc(sizeof(*recorder));
        assert_non_null(recorder);
        recorder_init(recorder);
        int64_t from = kp_store_revision(store);
        struct kp_store_watch *handle = watch(store, round % 2 ? "/x/" : "", from, recorder);
        struct timespec pause = {0, (round % 4) * 1000 * 1000};
        nanosleep(&pause, NULL);
        kp_store_unwatch(handle);
        atomic_store(&recorder->unwatched, true);
        struct timespec settle = {0, 200 * 1000};
        nanosleep(&settle, NULL);
        late += atomic_load(&recorder->late);
        seen += recorder->count;
        for (size_t i = 1; i < recorder->count; i++) {
            assert_true(recorder->events[i].mod_revision > recorder->events[i - 1].mod_revision);
        }
        recorder_wipe(recorder);
        free(recorder);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(threads[i], NULL);
    }
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(late, 0);
    assert_true(seen > 0);
}

/* Readers on other threads while a writer writes: a list at a pinned revision never changes,
 * and get never fails. */
struct reader {
    struct kp_store *store;
    atomic_bool *stop;
    int mismatches;
    int errors;
    int lists;
    char last_error[KP_ERROR_MESSAGE_MAX];
};

static void *reader_run(void *arg)
{
    struct reader *reader = arg;
    struct kp_error err;
    while (!atomic_load(reader->stop)) {
        struct kp_store_list first, second;
        if (kp_store_list(reader->store, "/", NULL, 0, 0, &first, &err) != KP_OK) {
            reader->errors++;
            snprintf(reader->last_error, sizeof(reader->last_error), "%s", err.message);
            continue;
        }
        if (first.revision == 0) { /* before the first write: 0 would mean "now" again */
            kp_store_list_wipe(&first);
            continue;
        }
        if (kp_store_list(reader->store, "/", NULL, 0, first.revision, &second, &err) != KP_OK) {
            reader->errors++;
            snprintf(reader->last_error, sizeof(reader->last_error), "%s", err.message);
            kp_store_list_wipe(&first);
            continue;
        }
        bool same = first.count == second.count;
        for (size_t i = 0; same && i < first.count; i++) {
            same = strcmp(first.items[i].key, second.items[i].key) == 0 &&
                   first.items[i].mod_revision == second.items[i].mod_revision &&
                   strcmp(first.items[i].value, second.items[i].value) == 0;
        }
        reader->mismatches += !same;
        reader->lists++;
        kp_store_list_wipe(&first);
        kp_store_list_wipe(&second);
        struct kp_store_kv kv;
        enum kp_result rc = kp_store_get(reader->store, "/x/0/0", &kv, &err);
        if (rc != KP_OK && rc != KP_ERR_NOT_FOUND) {
            reader->errors++;
            snprintf(reader->last_error, sizeof(reader->last_error), "%s", err.message);
        }
        kp_store_kv_wipe(&kv);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    struct fixture *fixture = *state;
    atomic_int failures = 0;
    atomic_bool stop = false;
    struct writer writer = {fixture->store, 0, 300, &failures, ""};
    struct reader readers[3];
    pthread_t reader_threads[3], writer_thread;
    for (int i = 0; i < 3; i++) {
        readers[i] = (struct reader){fixture->store, &stop, 0, 0, 0, ""};
        assert_int_equal(pthread_create(&reader_threads[i], NULL, reader_run, &readers[i]), 0);
    }
    assert_int_equal(pthread_create(&writer_thread, NULL, writer_run, &writer), 0);
    pthread_join(writer_thread, NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++) {
        pthread_join(reader_threads[i], NULL);
    }
    for (int i = 0; i < 3; i++) {
        if (readers[i].errors != 0) {
            fail_msg("reader %d: %d errors, the last: %s", i, readers[i].errors,
                     readers[i].last_error);
        }
        assert_int_equal(readers[i].mismatches, 0);
        assert_true(readers[i].lists > 0);
    }
    assert_int_equal(atomic_load(&failures), 0);
}

/* ---- compaction ---- */

static void test_compaction(void **state)
{
    struct fixture *fixture = *state;
    struct kp_store *store = fixture->store;
    struct kp_error err;
    struct kp_store_list list;
    struct kp_store_watch *handle = NULL;
    struct recorder recorder;
    create(store, "/k/a", "a1");    /* 1 */
    update(store, "/k/a", "a2", 1); /* 2 */
    update(store, "/k/a", "a3", 2); /* 3 */
    create(store, "/k/b", "b1");    /* 4 */
    delete (store, "/k/b");         /* 5 */
    create(store, "/k/c", "c1");    /* 6 */
    create(store, "/k/d", "d1");    /* 7 */
    update(store, "/k/d", "d2", 7); /* 8 */
    delete (store, "/k/c");         /* 9 */
    create(store, "/k/b", "b2");    /* 10 */

    assert_int_equal(kp_store_compact(store, 11, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "11"));
    assert_int_equal(kp_store_compact(store, -1, &err), KP_ERR_INVALID);
    assert_int_equal(kp_store_compact(store, 8, &err), KP_OK);
    assert_int_equal(kp_store_compacted(store), 8);
    assert_int_equal(kp_store_revision(store), 10);

    assert_int_equal(kp_store_list(store, "/k/", NULL, 0, 7, &list, &err), KP_ERR_EXPIRED);
    assert_non_null(strstr(err.message, "revision 7"));
    assert_null(list.items);
    expect_list(store, "/k/", NULL, 0, 8, "/k/a=a3@3,/k/c=c1@6,/k/d=d2@8", false);
    expect_list(store, "/k/", NULL, 0, 9, "/k/a=a3@3,/k/d=d2@8", false);
    expect_list(store, "/k/", NULL, 0, 0, "/k/a=a3@3,/k/b=b2@10,/k/d=d2@8", false);
    expect_kv(store, "/k/a", "a3", 1, 3);
    expect_kv(store, "/k/d", "d2", 7, 8);

    recorder_init(&recorder);
    assert_int_equal(kp_store_watch(store, "/k/", 6, record, &recorder, &handle, &err),
                     KP_ERR_EXPIRED);
    assert_null(handle);
    assert_int_equal(recorder.count, 0);
    /* From compacted - 1: the write at the compaction revision, with its prev. */
    handle = watch(store, "/k/", 7, &recorder);
    assert_int_equal(recorder.count, 3);
    expect_event(&recorder, 0, KP_STORE_PUT, "/k/d", "d2", 7, 8, "d1", 7);
    expect_event(&recorder, 1, KP_STORE_DELETE, "/k/c", "c1", 6, 9, NULL, 0);
    expect_event(&recorder, 2, KP_STORE_PUT, "/k/b", "b2", 10, 10, NULL, 0);
    kp_store_unwatch(handle);
    recorder_wipe(&recorder);

    /* Compacting at the deletion keeps the deleted value for the DELETE event. */
    assert_int_equal(kp_store_compact(store, 9, &err), KP_OK);
    recorder_init(&recorder);
    handle = watch(store, "/k/", 8, &recorder);
    assert_int_equal(recorder.count, 2);
    expect_event(&recorder, 0, KP_STORE_DELETE, "/k/c", "c1", 6, 9, NULL, 0);
    kp_store_unwatch(handle);
    recorder_wipe(&recorder);

    /* Older or equal: nothing to do. */
    assert_int_equal(kp_store_compact(store, 5, &err), KP_OK);
    assert_int_equal(kp_store_compact(store, 9, &err), KP_OK);
    assert_int_equal(kp_store_compacted(store), 9);

    /* Up to now: the latest values stay, writes continue. */
    assert_int_equal(kp_store_compact(store, 10, &err), KP_OK);
    expect_list(store, "/k/", NULL, 0, 0, "/k/a=a3@3,/k/b=b2@10,/k/d=d2@8", false);
    assert_int_equal(update(store, "/k/a", "a4", 3), 11);
    expect_kv(store, "/k/a", "a4", 1, 11);
    reopen(fixture);
    assert_int_equal(kp_store_compacted(fixture->store), 10);
    assert_int_equal(kp_store_list(fixture->store, "/k/", NULL, 0, 9, &list, &err), KP_ERR_EXPIRED);
    expect_list(fixture->store, "/k/", NULL, 0, 10, "/k/a=a3@3,/k/b=b2@10,/k/d=d2@8", false);
}

/* A compaction while a watch replays a long history: the watch fails with KP_ERR_EXPIRED or
 * succeeds complete, never with a hole. */
struct compactor {
    struct kp_store *store;
    int64_t revision;
    enum kp_result rc;
};

static void *compactor_run(void *arg)
{
    struct compactor *compactor = arg;
    struct kp_error err;
    compactor->rc = kp_store_compact(compactor->store, compactor->revision, &err);
    return NULL;
}

static void test_compaction_during_replay(void **state)
{
    struct fixture *fixture = *state;
    struct kp_store *store = fixture->store;
    for (int i = 0; i < 1500; i++) {
        char key[32];
        snprintf(key, sizeof(key), "/r/%d", i % 50);
        if (i < 50) {
            create(store, key, "v");
        } else {
            update(store, key, "w", 0);
        }
    }
    struct recorder recorder;
    recorder_init(&recorder);
    struct compactor compactor = {store, 1000, KP_OK};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, compactor_run, &compactor), 0);
    struct kp_store_watch *handle = NULL;
    struct kp_error err;
    enum kp_result rc = kp_store_watch(store, "/r/", 0, record, &recorder, &handle, &err);
    pthread_join(thread, NULL);
    assert_int_equal(compactor.rc, KP_OK);
    if (rc == KP_OK) {
        expect_dense(&recorder, 0, 1500);
        kp_store_unwatch(handle);
    } else {
        assert_int_equal(rc, KP_ERR_EXPIRED);
        assert_null(handle);
    }
    recorder_wipe(&recorder);
}

/* ---- durability across reopen ---- */

static void test_reopen(void **state)
{
    struct fixture *fixture = *state;
    create(fixture->store, "/k/a", "a1");
    create(fixture->store, "/k/b", "b1");
    update(fixture->store, "/k/a", "a2", 1);
    delete (fixture->store, "/k/b");
    reopen(fixture);
    assert_int_equal(kp_store_revision(fixture->store), 4);
    expect_kv(fixture->store, "/k/a", "a2", 1, 3);
    expect_absent(fixture->store, "/k/b");
    expect_list(fixture->store, "/k/", NULL, 0, 2, "/k/a=a1@1,/k/b=b1@2", false);
    assert_int_equal(create(fixture->store, "/k/c", "c1"), 5);

    struct recorder recorder;
    recorder_init(&recorder);
    struct kp_store_watch *handle = watch(fixture->store, "/k/", 1, &recorder);
    assert_int_equal(recorder.count, 4);
    expect_event(&recorder, 2, KP_STORE_DELETE, "/k/b", "b1", 2, 4, NULL, 0);
    kp_store_unwatch(handle);
    recorder_wipe(&recorder);
}

/* ---- limits and bad input ---- */

static void test_big_values(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    char *value = make_value("/big", KP_STORE_VALUE_MAX + 1);
    int64_t revision = 0;
    assert_int_equal(
        kp_store_create(fixture->store, "/big", value, KP_STORE_VALUE_MAX + 1, &revision, &err),
        KP_ERR_TOO_LARGE);
    assert_non_null(strstr(err.message, "'/big'"));
    assert_non_null(strstr(err.message, "3145729"));
    assert_int_equal(kp_store_revision(fixture->store), 0);
    assert_int_equal(
        kp_store_create(fixture->store, "/big", value, KP_STORE_VALUE_MAX, &revision, &err), KP_OK);
    assert_int_equal(
        kp_store_update(fixture->store, "/big", value, KP_STORE_VALUE_MAX + 1, 0, &revision, &err),
        KP_ERR_TOO_LARGE);
    struct kp_store_kv kv;
    assert_int_equal(kp_store_get(fixture->store, "/big", &kv, &err), KP_OK);
    assert_int_equal(kv.value_len, KP_STORE_VALUE_MAX);
    assert_memory_equal(kv.value, value, KP_STORE_VALUE_MAX);
    kp_store_kv_wipe(&kv);
    assert_int_equal(kp_store_create(fixture->store, "/null", NULL, 5, &revision, &err),
                     KP_ERR_INVALID);
    free(value);
}

static void test_bad_keys(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    struct kp_store_kv kv;
    struct kp_store_list list;
    struct kp_store_watch *handle = NULL;
    char long_key[KP_STORE_KEY_MAX + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[0] = '/';
    long_key[KP_STORE_KEY_MAX + 1] = '\0';
    const char *bad[] = {NULL, "", long_key, "/a\nb", "/tab\t", "/del\x7f", "\x1b[31m"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(kp_store_create(fixture->store, bad[i], "v", 1, NULL, &err),
                         KP_ERR_INVALID);
        assert_non_null(strstr(err.message, "store key"));
        assert_int_equal(kp_store_update(fixture->store, bad[i], "v", 1, 0, NULL, &err),
                         KP_ERR_INVALID);
        assert_int_equal(kp_store_delete(fixture->store, bad[i], 0, NULL, NULL, &err),
                         KP_ERR_INVALID);
        assert_int_equal(kp_store_get(fixture->store, bad[i], &kv, &err), KP_ERR_INVALID);
        if (bad[i] != NULL && bad[i][0] != '\0') {
            assert_int_equal(kp_store_list(fixture->store, bad[i], NULL, 0, 0, &list, &err),
                             KP_ERR_INVALID);
            assert_non_null(strstr(err.message, "prefix"));
            assert_int_equal(kp_store_list(fixture->store, "/", bad[i], 0, 0, &list, &err),
                             KP_ERR_INVALID);
            assert_int_equal(kp_store_watch(fixture->store, bad[i], 0, record, NULL, &handle, &err),
                             KP_ERR_INVALID);
        }
    }
    assert_non_null(strstr(err.message, "control character"));
    assert_int_equal(kp_store_revision(fixture->store), 0);
    /* Exactly the maximum is fine, and so is UTF-8. */
    long_key[KP_STORE_KEY_MAX] = '\0';
    create(fixture->store, long_key, "v");
    expect_kv(fixture->store, long_key, "v", 1, 1);
    create(fixture->store, "/registry/configmaps/default/caf\xc3\xa9", "v");
    expect_list(fixture->store, "/registry/", NULL, 0, 0,
                "/registry/configmaps/default/caf\xc3\xa9=v@2", false);

    /* Other bad arguments. */
    assert_int_equal(kp_store_get(NULL, "/k", &kv, &err), KP_ERR_INVALID);
    assert_int_equal(kp_store_get(fixture->store, "/k", NULL, &err), KP_ERR_INVALID);
    assert_int_equal(kp_store_create(NULL, "/k", "v", 1, NULL, &err), KP_ERR_INVALID);
    assert_int_equal(kp_store_delete(fixture->store, "/k", -5, NULL, NULL, &err), KP_ERR_INVALID);
    assert_int_equal(kp_store_revision(NULL), 0);
    kp_store_close(NULL);
}

/* Closing a store that still has a watch is a caller's bug: the process aborts rather than
 * leave the watch pointing at freed memory. (In a child, with a store of its own: SQLite
 * connections must not cross fork.) */
static void test_close_with_watch_aborts(void **state)
{
    struct fixture *fixture = *state;
    char dir[600];
    test_path(dir, sizeof(dir), fixture->dir, "child");
    assert_int_equal(mkdir(dir, 0700), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 2);
        }
        struct kp_store *store = NULL;
        struct kp_store_watch *handle = NULL;
        struct kp_error err;
        struct recorder recorder;
        recorder_init(&recorder);
        if (backend->open(dir, &store, &err) != KP_OK ||
            kp_store_watch(store, "/", 0, record, &recorder, &handle, &err) != KP_OK) {
            _exit(3);
        }
        kp_store_close(store);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ---- SQLite only ---- */

static void test_sqlite_file(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    char path[600];
    sqlite_path(fixture->dir, path, sizeof(path));
    create(fixture->store, "/registry/secrets/default/token", "{\"data\":\"c2VjcmV0\"}");
    /* Secrets inside: nobody else may read the file or its WAL. */
    assert_int_equal(test_mode(path), 0600);
    char wal[640];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    assert_true(test_exists(wal));
    assert_int_equal(test_mode(wal), 0600);

    /* One open store per file. */
    struct kp_store *second = NULL;
    assert_int_equal(kp_store_open_sqlite(path, &second, &err), KP_ERR_CONFLICT);
    assert_null(second);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "already open"));
    reopen(fixture); /* the lock went with the close */

    /* Not a store. */
    char other[600];
    test_path(other, sizeof(other), fixture->dir, "garbage.db");
    test_write_file(other, "this is not an SQLite database, not even close to one......"
                           "................................................................");
    assert_int_equal(kp_store_open_sqlite(other, &second, &err), KP_ERR_IO);
    assert_non_null(strstr(err.message, other));
    assert_null(second);
    test_path(other, sizeof(other), fixture->dir, "foreign.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(kp_store_open_sqlite(other, &second, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "not a kpki store"));
    /* A newer schema. */
    kp_store_close(fixture->store);
    fixture->store = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(kp_store_open_sqlite(path, &second, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "schema version 2"));
    assert_int_equal(kp_store_open_sqlite("", &second, &err), KP_ERR_INVALID);
    char missing[600];
    test_path(missing, sizeof(missing), fixture->dir, "no/such/dir/store.db");
    assert_int_equal(kp_store_open_sqlite(missing, &second, &err), KP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, missing));
    assert_int_equal(backend->open(fixture->dir, &fixture->store, &err), KP_ERR_INVALID);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    reopen(fixture);
}

static long long count_rows(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    long long count = sqlite3_column_int64(stmt, 0);
    assert_int_equal(sqlite3_finalize(stmt), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return count;
}

/* Compaction really removes the rows it should, and only those. */
static void test_sqlite_compaction_rows(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    char path[600];
    sqlite_path(fixture->dir, path, sizeof(path));
    for (int i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "/k/%d", i % 10);
        if (i < 10) {
            create(fixture->store, key, "v");
        } else if (i % 10 == 9 && i < 90) {
            delete (fixture->store, key);
            create(fixture->store, key, "again");
        } else {
            update(fixture->store, key, "w", 0);
        }
    }
    delete (fixture->store, "/k/0");
    int64_t current = kp_store_revision(fixture->store);
    assert_int_equal(kp_store_compact(fixture->store, current, &err), KP_OK);
    kp_store_close(fixture->store);
    fixture->store = NULL;
    /* Each key's newest row below the compaction, except /k/0 (its deletion is the row at the
     * compaction revision itself, kept; the version it deleted stays as the one below). */
    assert_int_equal(count_rows(path, "SELECT count(*) FROM history"), 11);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM history WHERE value IS NULL"), 1);
    assert_int_equal(count_rows(path, "SELECT count(DISTINCT key) FROM history"), 10);
    assert_int_equal(count_rows(path, "SELECT compacted FROM meta"), current);
    reopen(fixture);
    assert_int_equal(create(fixture->store, "/k/x", "v"), current + 1);
    assert_int_equal(kp_store_compact(fixture->store, current + 1, &err), KP_OK);
    kp_store_close(fixture->store);
    fixture->store = NULL;
    assert_int_equal(count_rows(path, "SELECT count(*) FROM history"), 10);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM history WHERE value IS NULL"), 0);
    reopen(fixture);
}

/* A write the disk refuses (RLIMIT_FSIZE: the WAL cannot grow) fails with KP_ERR_IO naming the
 * store, changes nothing, delivers nothing, and the store goes on once the disk has room. */
static void test_sqlite_write_error(void **state)
{
    struct fixture *fixture = *state;
    struct kp_error err;
    char path[600];
    sqlite_path(fixture->dir, path, sizeof(path));
    create(fixture->store, "/k/a", "a1");
    struct recorder recorder;
    recorder_init(&recorder);
    struct kp_store_watch *handle = watch(fixture->store, "/k/", 1, &recorder);

    char wal[640];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    struct rlimit saved, limited;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    limited = saved;
    limited.rlim_cur = (rlim_t)st.st_size + 4096;
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limited), 0);
    char *value = make_value("/k/b", 1024 * 1024);
    enum kp_result created =
        kp_store_create(fixture->store, "/k/b", value, 1024 * 1024, NULL, &err);
    enum kp_result updated =
        kp_store_update(fixture->store, "/k/a", value, 1024 * 1024, 0, NULL, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, previous);
    assert_int_equal(created, KP_ERR_IO);
    assert_int_equal(updated, KP_ERR_IO);
    assert_non_null(strstr(err.message, "cannot update store key '/k/a': store '"));
    assert_non_null(strstr(err.message, path));

    assert_int_equal(kp_store_revision(fixture->store), 1);
    assert_int_equal(recorder.count, 0);
    expect_absent(fixture->store, "/k/b");
    expect_kv(fixture->store, "/k/a", "a1", 1, 1);
    assert_int_equal(kp_store_create(fixture->store, "/k/b", value, 1024 * 1024, NULL, &err),
                     KP_OK);
    assert_int_equal(kp_store_revision(fixture->store), 2);
    assert_int_equal(recorder.count, 1);
    assert_int_equal(recorder.events[0].mod_revision, 2);
    free(value);
    kp_store_unwatch(handle);
    recorder_wipe(&recorder);
    reopen(fixture);
    assert_int_equal(kp_store_revision(fixture->store), 2);
}

/* ---- the crash test's modes ---- */

static int crash_writer(const char *path, long count)
{
    struct kp_store *store = NULL;
    struct kp_error err;
    if (kp_store_open_sqlite(path, &store, &err) != KP_OK) {
        fprintf(stderr, "writer: %s\n", err.message);
        return 1;
    }
    char previous[64] = "";
    for (long i = 0; i < count; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/crash/%ld/%ld", (long)getpid(), i);
        char op = 'C';
        const char *target = key;
        if (i % 10 == 5 && previous[0] != '\0') {
            op = 'U';
            target = previous;
        } else if (i % 10 == 9 && previous[0] != '\0') {
            op = 'D';
            target = previous;
        }
        /* Mostly small values, some spanning many pages (and growing the WAL). */
        size_t len = i % 50 == 7 ? 300000 + (size_t)i % 1000 : 60 + ((size_t)i * 7919) % 4000;
        char *value = make_value(target, len);
        int64_t revision = 0;
        enum kp_result rc;
        if (op == 'C') {
            rc = kp_store_create(store, target, value, len, &revision, &err);
        } else if (op == 'U') {
            rc = kp_store_update(store, target, value, len, 0, &revision, &err);
        } else {
            rc = kp_store_delete(store, target, 0, &revision, NULL, &err);
            len = 0;
        }
        free(value);
        if (rc != KP_OK) {
            fprintf(stderr, "writer: %s\n", err.message);
            kp_store_close(store);
            return 1;
        }
        /* Acknowledged: the write is durable now. */
        printf("%c %lld %s %zu\n", op, (long long)revision, target, len);
        fflush(stdout);
        if (op == 'C') {
            snprintf(previous, sizeof(previous), "%s", key);
        } else if (op == 'D') {
            previous[0] = '\0';
        }
    }
    kp_store_close(store);
    return 0;
}

struct replayed {
    char type; /* 0: no event at this revision */
    char *key;
    size_t value_len;
    bool value_ok;
};

struct replay_check {
    struct replayed *events;
    int64_t size;
    int problems;
};

static void replay_record(void *context, const struct kp_store_event *event)
{
    struct replay_check *check = context;
    int64_t revision = event->kv.mod_revision;
    if (revision <= 0 || revision >= check->size || check->events[revision].type != 0) {
        fprintf(stderr, "check: unexpected or repeated revision %lld\n", (long long)revision);
        check->problems++;
        return;
    }
    struct replayed *slot = &check->events[revision];
    slot->type = event->type == KP_STORE_PUT ? 'P' : 'D';
    slot->key = strdup(event->kv.key);
    slot->value_len = event->kv.value_len;
    char *expected = make_value(event->kv.key, event->kv.value_len);
    slot->value_ok = memcmp(expected, event->kv.value, event->kv.value_len) == 0;
    free(expected);
}

static int crash_check(const char *path, int ack_count, char **ack_files)
{
    struct kp_store *store = NULL;
    struct kp_error err;
    if (kp_store_open_sqlite(path, &store, &err) != KP_OK) {
        fprintf(stderr, "check: the store does not reopen: %s\n", err.message);
        return 1;
    }
    int64_t current = kp_store_revision(store);
    struct replay_check check = {calloc((size_t)current + 1, sizeof(struct replayed)), current + 1,
                                 0};
    if (check.events == NULL) {
        return 1;
    }
    struct kp_store_watch *handle = NULL;
    if (kp_store_watch(store, "", 0, replay_record, &check, &handle, &err) != KP_OK) {
        fprintf(stderr, "check: cannot replay the history: %s\n", err.message);
        return 1;
    }
    kp_store_unwatch(handle);
    for (int64_t revision = 1; revision <= current; revision++) {
        if (check.events[revision].type == 0) {
            fprintf(stderr, "check: revision %lld is missing from the history\n",
                    (long long)revision);
            check.problems++;
        } else if (!check.events[revision].value_ok) {
            fprintf(stderr, "check: the value at revision %lld is damaged\n", (long long)revision);
            check.problems++;
        }
    }
    long acknowledged = 0;
    int64_t last = 0;
    for (int f = 0; f < ack_count; f++) {
        FILE *file = fopen(ack_files[f], "r");
        if (file == NULL) {
            fprintf(stderr, "check: cannot read %s: %s\n", ack_files[f], strerror(errno));
            return 1;
        }
        char line[256];
        while (fgets(line, sizeof(line), file) != NULL) {
            if (strchr(line, '\n') == NULL) {
                break; /* cut by the kill: never acknowledged */
            }
            char op = 0;
            long long revision = 0;
            char key[128];
            size_t len = 0;
            if (sscanf(line, "%c %lld %127s %zu", &op, &revision, key, &len) != 4) {
                fprintf(stderr, "check: bad line in %s: %s", ack_files[f], line);
                check.problems++;
                continue;
            }
            acknowledged++;
            if (revision <= last) {
                fprintf(stderr, "check: revision %lld acknowledged after %lld\n", revision,
                        (long long)last);
                check.problems++;
            }
            last = revision;
            const struct replayed *event = revision <= current ? &check.events[revision] : NULL;
            char want = op == 'D' ? 'D' : 'P';
            if (event == NULL || event->type != want || strcmp(event->key, key) != 0 ||
                (op != 'D' && event->value_len != len)) {
                fprintf(stderr, "check: acknowledged write lost: %s", line);
                check.problems++;
            }
        }
        fclose(file);
    }
    for (int64_t revision = 0; revision <= current; revision++) {
        free(check.events[revision].key);
    }
    free(check.events);
    kp_store_close(store);

    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") != 0) {
        fprintf(stderr, "check: integrity_check failed: %s\n", sqlite3_errmsg(db));
        check.problems++;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    printf("revision %lld, %ld acknowledged writes checked, %d problems\n", (long long)current,
           acknowledged, check.problems);
    return check.problems == 0 ? 0 : 1;
}

/* test_store --bench DB COUNT SIZE: COUNT creates of SIZE-byte values on one thread, then the
 * same on four threads, then COUNT gets and COUNT/100 lists of 100; prints the rates. Informative
 * only (docs/store.md); not run by ctest. */
static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

struct bench_writer {
    struct kp_store *store;
    int id;
    long count;
    size_t size;
    int failures;
};

static void *bench_write(void *arg)
{
    struct bench_writer *writer = arg;
    struct kp_error err;
    for (long i = 0; i < writer->count; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/bench/%d/%08ld", writer->id, i);
        char *value = make_value(key, writer->size);
        writer->failures +=
            kp_store_create(writer->store, key, value, writer->size, NULL, &err) != KP_OK;
        free(value);
    }
    return NULL;
}

static int bench(const char *path, long count, size_t size)
{
    struct kp_store *store = NULL;
    struct kp_error err;
    if (kp_store_open_sqlite(path, &store, &err) != KP_OK) {
        fprintf(stderr, "bench: %s\n", err.message);
        return 1;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct bench_writer one = {store, 0, count, size, 0};
    bench_write(&one);
    double elapsed = seconds_since(&start);
    printf("creates, 1 thread:  %ld of %zu bytes in %.2f s: %.0f/s\n", count, size, elapsed,
           (double)count / elapsed);
    struct bench_writer four[4];
    pthread_t threads[4];
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < 4; i++) {
        four[i] = (struct bench_writer){store, i + 1, count / 4, size, 0};
        pthread_create(&threads[i], NULL, bench_write, &four[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        one.failures += four[i].failures;
    }
    elapsed = seconds_since(&start);
    printf("creates, 4 threads: %ld in %.2f s: %.0f/s\n", count / 4 * 4, elapsed,
           (double)(count / 4 * 4) / elapsed);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < count; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/bench/0/%08ld", i);
        struct kp_store_kv kv;
        one.failures += kp_store_get(store, key, &kv, &err) != KP_OK;
        kp_store_kv_wipe(&kv);
    }
    elapsed = seconds_since(&start);
    printf("gets:               %ld in %.2f s: %.0f/s\n", count, elapsed, (double)count / elapsed);
    clock_gettime(CLOCK_MONOTONIC, &start);
    char after[64] = "";
    long items = 0;
    for (long i = 0; i < count / 100; i++) {
        struct kp_store_list list;
        one.failures += kp_store_list(store, "/bench/0/", after[0] != '\0' ? after : NULL, 100, 0,
                                      &list, &err) != KP_OK;
        if (list.count > 0) {
            snprintf(after, sizeof(after), "%s", list.items[list.count - 1].key);
        }
        items += (long)list.count;
        kp_store_list_wipe(&list);
    }
    elapsed = seconds_since(&start);
    printf("list pages of 100:  %ld items in %.2f s: %.0f items/s\n", items, elapsed,
           (double)items / elapsed);
    kp_store_close(store);
    printf("failures: %d\n", one.failures);
    return one.failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--bench") == 0) {
        return bench(argv[2], strtol(argv[3], NULL, 10), (size_t)strtoul(argv[4], NULL, 10));
    }
    if (argc == 4 && strcmp(argv[1], "--writer") == 0) {
        return crash_writer(argv[2], strtol(argv[3], NULL, 10));
    }
    if (argc >= 3 && strcmp(argv[1], "--check") == 0) {
        return crash_check(argv[2], argc - 3, argv + 3);
    }
#define STORE_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest contract[] = {
        STORE_TEST(test_empty),
        STORE_TEST(test_create_get),
        STORE_TEST(test_update_cas),
        STORE_TEST(test_delete),
        STORE_TEST(test_revisions_increase),
        STORE_TEST(test_list_pages),
        STORE_TEST(test_list_prefix_bounds),
        STORE_TEST(test_list_at_revision),
        STORE_TEST(test_list_limits),
        STORE_TEST(test_list_bytes_budget),
        STORE_TEST(test_watch_replay_and_live),
        STORE_TEST(test_watch_prefix),
        STORE_TEST(test_watch_arguments),
        STORE_TEST(test_watch_concurrent_writers),
        STORE_TEST(test_unwatch_while_writing),
        STORE_TEST(test_concurrent_readers),
        STORE_TEST(test_compaction),
        STORE_TEST(test_compaction_during_replay),
        STORE_TEST(test_reopen),
        STORE_TEST(test_big_values),
        STORE_TEST(test_bad_keys),
        STORE_TEST(test_close_with_watch_aborts),
    };
    const struct CMUnitTest sqlite_only[] = {
        STORE_TEST(test_sqlite_file),
        STORE_TEST(test_sqlite_compaction_rows),
        STORE_TEST(test_sqlite_write_error),
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        backend = &backends[i];
        char name[64];
        snprintf(name, sizeof(name), "store contract (%s)", backend->name);
        failed += _cmocka_run_group_tests(name, contract, sizeof(contract) / sizeof(contract[0]),
                                          NULL, NULL);
    }
    backend = &backends[0];
    failed += cmocka_run_group_tests_name("store (sqlite only)", sqlite_only, NULL, NULL);
    return failed;
}
