#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

static char dir[512];

static int setup(void **state)
{
    (void)state;
    test_make_dir("file", dir, sizeof(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kp_fault_arm(0, 0, 0);
    test_remove_tree(dir);
    return 0;
}

static int count_temps(const char *where)
{
    DIR *handle = opendir(where);
    int count = 0;
    struct dirent *entry;
    while (handle != NULL && (entry = readdir(handle)) != NULL) {
        count += strstr(entry->d_name, KP_FILE_TEMP_MARKER) != NULL;
    }
    if (handle != NULL) {
        closedir(handle);
    }
    return count;
}

static void test_read_limits(void **state)
{
    (void)state;
    char path[600];
    struct kp_error err;
    char *data = NULL;
    size_t len = 0;
    test_path(path, sizeof(path), dir, "small");
    test_write_file(path, "hello");
    assert_int_equal(kp_file_read(path, 5, &data, &len, &err), KP_OK);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
    assert_int_equal(kp_file_read(path, 4, &data, &len, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "too large"));
    assert_null(data);
    assert_int_equal(kp_file_read(dir, 100, &data, &len, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "is a directory"));
    test_path(path, sizeof(path), dir, "missing");
    assert_int_equal(kp_file_read(path, 100, &data, &len, &err), KP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, path));
    test_path(path, sizeof(path), dir, "empty");
    test_write_file(path, "");
    assert_int_equal(kp_file_read(path, 100, &data, &len, &err), KP_OK);
    assert_int_equal(len, 0);
    free(data);
}

static void test_mkdirs(void **state)
{
    (void)state;
    char path[600];
    struct kp_error err;
    test_path(path, sizeof(path), dir, "a/b/c");
    assert_int_equal(kp_file_mkdirs(path, 0750, &err), KP_OK);
    assert_int_equal(test_mode(path), 0750);
    assert_int_equal(kp_file_mkdirs(path, 0750, &err), KP_OK);
    char file[600];
    test_path(file, sizeof(file), dir, "plain");
    test_write_file(file, "x");
    test_path(path, sizeof(path), dir, "plain/sub");
    assert_int_equal(kp_file_mkdirs(path, 0755, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "is not a directory"));
}

static void test_write_atomic(void **state)
{
    (void)state;
    char path[600];
    struct kp_error err;
    test_path(path, sizeof(path), dir, "key");
    umask(0);
    assert_int_equal(kp_file_write_atomic(path, "secret", 6, 0600, &err), KP_OK);
    umask(022);
    assert_int_equal(test_mode(path), 0600);
    char *text = test_read_file(path, NULL);
    assert_string_equal(text, "secret");
    free(text);
    assert_int_equal(kp_file_write_atomic(path, "second", 6, 0644, &err), KP_OK);
    assert_int_equal(test_mode(path), 0644);
    assert_int_equal(count_temps(dir), 0);
    assert_int_equal(kp_file_write_atomic(dir, "x", 1, 0600, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "is a directory"));
}

/* Every single operation of an atomic write, failed in turn: the old content survives. */
static void test_write_atomic_faults(void **state)
{
    (void)state;
    char path[600];
    struct kp_error err;
    test_path(path, sizeof(path), dir, "victim");
    assert_int_equal(kp_file_write_atomic(path, "old", 3, 0600, &err), KP_OK);
    kp_fault_arm(0, 0, 0);
    assert_int_equal(kp_file_write_atomic(path, "new!", 4, 0600, &err), KP_OK);
    unsigned long operations = kp_fault_count();
    assert_true(operations >= 4);
    for (unsigned long n = 1; n <= operations; n++) {
        assert_int_equal(kp_file_write_atomic(path, "old", 3, 0600, &err), KP_OK);
        kp_fault_arm(n, ENOSPC, 0);
        enum kp_result rc = kp_file_write_atomic(path, "new!", 4, 0600, &err);
        kp_fault_arm(0, 0, 0);
        char *text = test_read_file(path, NULL);
        if (rc == KP_OK) {
            /* only the directory sync may fail after the rename; then rc is an error */
            assert_string_equal(text, "new!");
        } else {
            assert_true(strcmp(text, "old") == 0 || strcmp(text, "new!") == 0);
            assert_non_null(strstr(err.message, "No space left on device"));
        }
        free(text);
        assert_int_equal(count_temps(dir), 0);
    }
}

static void add(struct kp_file_batch *batch, const char *name, const char *text, mode_t mode)
{
    char path[600];
    struct kp_error err;
    test_path(path, sizeof(path), dir, name);
    assert_int_equal(kp_file_batch_add(batch, path, text, strlen(text), mode, &err), KP_OK);
}

static void test_batch_commit(void **state)
{
    (void)state;
    struct kp_file_batch *batch = kp_file_batch_new();
    struct kp_error err;
    add(batch, "one.key", "key-one", 0600);
    add(batch, "one.crt", "cert-one", 0644);
    char link[600];
    test_path(link, sizeof(link), dir, "current.pem");
    assert_int_equal(kp_file_batch_add_symlink(batch, link, "one.crt", &err), KP_OK);
    assert_int_equal(kp_file_batch_count(batch), 3);
    assert_int_equal(kp_file_batch_commit(batch, &err), KP_OK);
    kp_file_batch_free(batch);
    char path[600];
    assert_int_equal(test_mode(test_path(path, sizeof(path), dir, "one.key")), 0600);
    assert_int_equal(test_mode(test_path(path, sizeof(path), dir, "one.crt")), 0644);
    char target[64] = {0};
    assert_true(readlink(link, target, sizeof(target) - 1) > 0);
    assert_string_equal(target, "one.crt");
    /* Replacing the link is atomic too. */
    batch = kp_file_batch_new();
    assert_int_equal(kp_file_batch_add_symlink(batch, link, "one.key", &err), KP_OK);
    assert_int_equal(kp_file_batch_commit(batch, &err), KP_OK);
    kp_file_batch_free(batch);
    memset(target, 0, sizeof(target));
    assert_true(readlink(link, target, sizeof(target) - 1) > 0);
    assert_string_equal(target, "one.key");
    assert_int_equal(count_temps(dir), 0);
}

static void test_batch_refuses_directory_destination(void **state)
{
    (void)state;
    char path[600];
    struct kp_error err;
    test_path(path, sizeof(path), dir, "isdir");
    mkdir(path, 0755);
    struct kp_file_batch *batch = kp_file_batch_new();
    add(batch, "first", "1", 0600);
    add(batch, "isdir", "2", 0600);
    assert_int_equal(kp_file_batch_commit(batch, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "isdir"));
    kp_file_batch_free(batch);
    /* Nothing at all was written. */
    assert_false(test_exists(test_path(path, sizeof(path), dir, "first")));
    assert_int_equal(count_temps(dir), 0);
}

/* Fail each operation of a batch in turn: every destination is absent or complete, and no
 * temporary file stays behind. */
static void test_batch_faults(void **state)
{
    (void)state;
    struct kp_error err;
    kp_fault_arm(0, 0, 0);
    struct kp_file_batch *batch = kp_file_batch_new();
    add(batch, "f1", "content-1", 0600);
    add(batch, "f2", "content-2", 0644);
    add(batch, "f3", "content-3", 0600);
    assert_int_equal(kp_file_batch_commit(batch, &err), KP_OK);
    kp_file_batch_free(batch);
    unsigned long operations = kp_fault_count();
    for (unsigned long n = 1; n <= operations; n++) {
        for (int i = 1; i <= 3; i++) {
            char path[600];
            char name[8];
            snprintf(name, sizeof(name), "f%d", i);
            unlink(test_path(path, sizeof(path), dir, name));
        }
        batch = kp_file_batch_new();
        add(batch, "f1", "content-1", 0600);
        add(batch, "f2", "content-2", 0644);
        add(batch, "f3", "content-3", 0600);
        kp_fault_arm(n, EIO, 0);
        enum kp_result rc = kp_file_batch_commit(batch, &err);
        kp_fault_arm(0, 0, 0);
        kp_file_batch_free(batch);
        assert_int_not_equal(rc, KP_OK);
        for (int i = 1; i <= 3; i++) {
            char path[600];
            char name[8];
            char expected[16];
            snprintf(name, sizeof(name), "f%d", i);
            snprintf(expected, sizeof(expected), "content-%d", i);
            test_path(path, sizeof(path), dir, name);
            if (test_exists(path)) {
                char *text = test_read_file(path, NULL);
                assert_string_equal(text, expected);
                free(text);
            }
        }
        assert_int_equal(count_temps(dir), 0);
    }
}

static void test_new_destination_is_never_replaced(void **state)
{
    (void)state;
    char path[600];
    struct kp_error err;
    struct kp_file_batch *batch = kp_file_batch_new();
    test_path(path, sizeof(path), dir, "ca.key");
    assert_int_equal(kp_file_batch_add_new(batch, path, "ours", 4, 0600, &err), KP_OK);
    test_write_file(path, "theirs"); /* someone else got there first */
    assert_int_equal(kp_file_batch_commit(batch, &err), KP_ERR_CONFLICT);
    assert_non_null(strstr(err.message, "appeared while kpki was working"));
    kp_file_batch_free(batch);
    char *text = test_read_file(path, NULL);
    assert_string_equal(text, "theirs");
    free(text);
    assert_int_equal(count_temps(dir), 0);
}

static void test_fifo_is_refused_without_waiting(void **state)
{
    (void)state;
    char path[600];
    test_path(path, sizeof(path), dir, "fifo");
    assert_int_equal(mkfifo(path, 0600), 0);
    char *data = NULL;
    size_t len = 0;
    struct kp_error err;
    assert_int_equal(kp_file_read(path, 100, &data, &len, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "not a regular file"));
    char link[600];
    test_path(link, sizeof(link), dir, "dangling");
    assert_int_equal(symlink("nowhere", link), 0);
    assert_int_equal(kp_file_read(link, 100, &data, &len, &err), KP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "symbolic link to a missing file"));
    assert_true(kp_path_is_dangling_link(link));
    assert_false(kp_path_is_dangling_link(path));
}

static void test_stale_temps(void **state)
{
    (void)state;
    char path[600];
    test_write_file(test_path(path, sizeof(path), dir, ".ca.key" KP_FILE_TEMP_MARKER "abc123"),
                    "partial");
    test_write_file(test_path(path, sizeof(path), dir, "keep.me"), "x");
    assert_int_equal(kp_file_remove_stale_temps(dir), 1);
    assert_int_equal(count_temps(dir), 0);
    assert_true(test_exists(path));
    assert_int_equal(kp_file_remove_stale_temps("/nonexistent/dir"), 0);
}

static void test_paths(void **state)
{
    (void)state;
    char out[16];
    struct kp_error err;
    assert_int_equal(kp_path_join(out, sizeof(out), "/a/", "b", &err), KP_OK);
    assert_string_equal(out, "/a/b");
    assert_int_equal(kp_path_join(out, sizeof(out), "/a", "b", &err), KP_OK);
    assert_string_equal(out, "/a/b");
    assert_int_equal(kp_path_join(out, sizeof(out), "/aaaaaaaaaa", "bbbbbbbb", &err),
                     KP_ERR_INVALID);
    assert_int_equal(kp_path_dirname(out, sizeof(out), "/a/b", &err), KP_OK);
    assert_string_equal(out, "/a");
    assert_int_equal(kp_path_dirname(out, sizeof(out), "b", &err), KP_OK);
    assert_string_equal(out, ".");
    assert_int_equal(kp_path_dirname(out, sizeof(out), "/b", &err), KP_OK);
    assert_string_equal(out, "/");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_refuses_directory_destination, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_destination_is_never_replaced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fifo_is_refused_without_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_temps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
