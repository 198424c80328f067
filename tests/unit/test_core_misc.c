/* core: the clock, string lists and logging. */
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

static void test_clocks(void **state)
{
    (void)state;
    struct kp_clock fixed;
    kp_clock_fixed_init(&fixed, 1700000000);
    assert_int_equal(kp_clock_now(&fixed), 1700000000);
    int64_t now = kp_clock_now(kp_clock_system());
    assert_true(now > 1700000000);
}

static void test_strlist(void **state)
{
    (void)state;
    struct kp_strlist list = {0};
    struct kp_error err;
    assert_int_equal(kp_strlist_add_split(&list, " b, a ,,c,a ", &err), KP_OK);
    assert_int_equal(list.count, 4);
    assert_string_equal(list.items[0], "b");
    assert_string_equal(list.items[1], "a");
    assert_true(kp_strlist_contains(&list, "c"));
    assert_false(kp_strlist_contains(&list, "d"));
    kp_strlist_sort_unique(&list);
    assert_int_equal(list.count, 3);
    assert_string_equal(list.items[0], "a");
    assert_string_equal(list.items[2], "c");
    struct kp_strlist copy = {0};
    assert_int_equal(kp_strlist_copy(&copy, &list, &err), KP_OK);
    assert_int_equal(copy.count, 3);
    kp_strlist_wipe(&copy);
    kp_strlist_wipe(&list);
    assert_int_equal(list.count, 0);
}

static void test_strlist_limit(void **state)
{
    (void)state;
    struct kp_strlist list = {0};
    struct kp_error err;
    for (int i = 0; i < KP_STRLIST_MAX; i++) {
        assert_int_equal(kp_strlist_add(&list, "x", &err), KP_OK);
    }
    assert_int_equal(kp_strlist_add(&list, "x", &err), KP_ERR_INVALID);
    kp_strlist_wipe(&list);
}

static void test_log_levels_and_lines(void **state)
{
    (void)state;
    char path[512];
    char dir[256];
    test_make_dir("log", dir, sizeof(dir));
    test_path(path, sizeof(path), dir, "log.txt");
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    kp_log_set_fd(fd);
    kp_log_set_level(KP_LOG_WARN);
    kp_log_info("hidden");
    kp_log_warn("shown %d", 1);
    kp_log_error("also shown");
    kp_log_set_fd(2);
    kp_log_set_level(KP_LOG_INFO);
    close(fd);
    char *text = test_read_file(path, NULL);
    assert_string_equal(text, "kpki: warning: shown 1\nkpki: error: also shown\n");
    free(text);
    test_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_strlist),
        cmocka_unit_test(test_strlist_limit),
        cmocka_unit_test(test_log_levels_and_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
