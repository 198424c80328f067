/*
 * core/filewatch: stamps and the poll rules, on real files in a temporary directory. Every
 * kind of change a reloader meets: an atomic replacement (rename over), an in-place rewrite, a
 * deletion and re-creation, a symlink pointed elsewhere, a stat that fails (a symlink loop); a
 * pair of files changing one after the other; a rejected set not offered twice.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/filewatch.h"

static char dir[512];
static char cert[600], key[600], tmp[600];

static int setup(void **state)
{
    (void)state;
    test_make_dir("filewatch", dir, sizeof(dir));
    test_path(cert, sizeof(cert), dir, "a.crt");
    test_path(key, sizeof(key), dir, "a.key");
    test_path(tmp, sizeof(tmp), dir, ".a.tmp");
    test_write_file(cert, "certificate one\n");
    test_write_file(key, "key one\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_remove_tree(dir);
    return 0;
}

/* What kpki's writers do: a new file renamed over the old one. */
static void replace_atomically(const char *path, const char *text)
{
    test_write_file(tmp, text);
    assert_int_equal(rename(tmp, path), 0);
}

/* Polls until the watch offers the files (at most `polls` times): how many polls it took, or 0
 * if it never did. */
static int polls_until_offered(struct kp_file_watch *watch, int polls)
{
    for (int i = 1; i <= polls; i++)
        if (kp_file_watch_poll(watch))
            return i;
    return 0;
}

static void test_stamps(void **state)
{
    (void)state;
    struct kp_file_stamp a, b;
    kp_file_stamp_read(cert, &a);
    assert_true(a.present);
    assert_int_equal(a.size, strlen("certificate one\n"));
    kp_file_stamp_read(cert, &b);
    assert_true(kp_file_stamp_equal(&a, &b));

    replace_atomically(cert, "certificate one\n"); /* same bytes, new inode */
    kp_file_stamp_read(cert, &b);
    assert_false(kp_file_stamp_equal(&a, &b));
    assert_int_not_equal(a.ino, b.ino);

    char missing[600];
    test_path(missing, sizeof(missing), dir, "missing");
    kp_file_stamp_read(missing, &a);
    assert_false(a.present);
    assert_int_equal(a.error, ENOENT);
    kp_file_stamp_read(missing, &b);
    assert_true(kp_file_stamp_equal(&a, &b));
}

static void test_unchanged_is_never_offered(void **state)
{
    (void)state;
    const char *paths[] = {cert, key};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 2);
    assert_int_equal(polls_until_offered(&watch, 5), 0);
}

static void test_atomic_replacement_is_offered_once_settled(void **state)
{
    (void)state;
    const char *paths[] = {cert};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 1);
    replace_atomically(cert, "certificate two\n");
    /* The first poll sees it move, the second sees it settled. */
    assert_int_equal(polls_until_offered(&watch, 5), 2);
    kp_file_watch_accept(&watch);
    assert_int_equal(polls_until_offered(&watch, 5), 0);
}

static void test_in_place_rewrite_is_offered(void **state)
{
    (void)state;
    const char *paths[] = {cert};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 1);
    struct kp_file_stamp before = *kp_file_watch_seen(&watch, 0);
    FILE *f = fopen(cert, "a");
    assert_non_null(f);
    fputs("more\n", f);
    fclose(f);
    assert_int_equal(polls_until_offered(&watch, 5), 2);
    assert_int_equal(kp_file_watch_seen(&watch, 0)->ino, before.ino);
    assert_true(kp_file_watch_seen(&watch, 0)->size > before.size);
}

static void test_a_moving_file_waits(void **state)
{
    (void)state;
    const char *paths[] = {cert};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 1);
    /* A writer still at work between every poll: nothing is offered until it stops. */
    for (int i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof(text), "version %d\n", i);
        replace_atomically(cert, text);
        assert_false(kp_file_watch_poll(&watch));
    }
    assert_true(kp_file_watch_poll(&watch));
}

static void test_pair_changing_one_after_the_other(void **state)
{
    (void)state;
    const char *paths[] = {cert, key};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 2);
    replace_atomically(key, "key two\n");
    assert_false(kp_file_watch_poll(&watch)); /* the key moved */
    replace_atomically(cert, "certificate two\n");
    assert_false(kp_file_watch_poll(&watch)); /* then the certificate */
    assert_true(kp_file_watch_poll(&watch));  /* both settled: offered together */
    kp_file_watch_accept(&watch);
    assert_false(kp_file_watch_poll(&watch));
}

static void test_rejected_set_is_not_offered_again(void **state)
{
    (void)state;
    const char *paths[] = {cert, key};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 2);
    replace_atomically(cert, "garbage\n");
    assert_int_equal(polls_until_offered(&watch, 5), 2);
    kp_file_watch_reject(&watch);
    assert_int_equal(polls_until_offered(&watch, 5), 0);
    /* A later change (here to the key) offers the set again. */
    replace_atomically(key, "key two\n");
    assert_int_equal(polls_until_offered(&watch, 5), 2);
    kp_file_watch_accept(&watch);
    assert_int_equal(polls_until_offered(&watch, 5), 0);
}

static void test_deleted_and_recreated(void **state)
{
    (void)state;
    const char *paths[] = {cert};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 1);
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(polls_until_offered(&watch, 5), 2);
    assert_false(kp_file_watch_seen(&watch, 0)->present);
    assert_int_equal(kp_file_watch_seen(&watch, 0)->error, ENOENT);
    kp_file_watch_reject(&watch); /* a consumer that keeps what it had */
    assert_int_equal(polls_until_offered(&watch, 5), 0);
    test_write_file(cert, "certificate three\n");
    assert_int_equal(polls_until_offered(&watch, 5), 2);
    assert_true(kp_file_watch_seen(&watch, 0)->present);
}

static void test_absent_at_start_then_created(void **state)
{
    (void)state;
    char crl[600];
    test_path(crl, sizeof(crl), dir, "ca.crl");
    const char *paths[] = {crl};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 1);
    assert_false(kp_file_watch_seen(&watch, 0)->present);
    assert_int_equal(polls_until_offered(&watch, 3), 0);
    replace_atomically(crl, "a CRL\n");
    assert_int_equal(polls_until_offered(&watch, 5), 2);
}

static void test_symlink_pointed_elsewhere(void **state)
{
    (void)state;
    char link[600];
    test_path(link, sizeof(link), dir, "current.pem");
    assert_int_equal(symlink("a.crt", link), 0);
    const char *paths[] = {link};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 1);
    assert_int_equal(kp_file_watch_seen(&watch, 0)->size, strlen("certificate one\n"));
    /* The kubelet's way: a new file, and the link swapped to it atomically. */
    char other[600], link_tmp[600];
    test_path(other, sizeof(other), dir, "b.crt");
    test_path(link_tmp, sizeof(link_tmp), dir, ".current.tmp");
    test_write_file(other, "certificate b\n");
    assert_int_equal(symlink("b.crt", link_tmp), 0);
    assert_int_equal(rename(link_tmp, link), 0);
    assert_int_equal(polls_until_offered(&watch, 5), 2);
    assert_int_equal(kp_file_watch_seen(&watch, 0)->size, strlen("certificate b\n"));
}

static void test_stat_error_other_than_absent(void **state)
{
    (void)state;
    const char *paths[] = {cert};
    struct kp_file_watch watch;
    kp_file_watch_init(&watch, paths, 1);
    /* A symlink loop in its place: stat fails with ELOOP (root or not), a change like any. */
    char loop_tmp[600];
    test_path(loop_tmp, sizeof(loop_tmp), dir, ".loop");
    assert_int_equal(symlink("a.crt", loop_tmp), 0);
    assert_int_equal(rename(loop_tmp, cert), 0);
    assert_int_equal(polls_until_offered(&watch, 5), 2);
    assert_false(kp_file_watch_seen(&watch, 0)->present);
    assert_int_equal(kp_file_watch_seen(&watch, 0)->error, ELOOP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_is_never_offered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replacement_is_offered_once_settled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_in_place_rewrite_is_offered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_moving_file_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pair_changing_one_after_the_other, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rejected_set_is_not_offered_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deleted_and_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_at_start_then_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_pointed_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stat_error_other_than_absent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
