#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "core/core.h"

static void test_set_and_prefix(void **state)
{
    (void)state;
    struct kp_error err;
    kp_error_clear(&err);
    assert_int_equal(err.code, KP_OK);
    assert_int_equal(kp_error_set(&err, KP_ERR_INVALID, "bad value '%s'", "x"), KP_ERR_INVALID);
    assert_string_equal(err.message, "bad value 'x'");
    assert_int_equal(kp_error_prefix(&err, "--flag"), KP_ERR_INVALID);
    assert_string_equal(err.message, "--flag: bad value 'x'");
}

static void test_errno_kinds(void **state)
{
    (void)state;
    struct kp_error err;
    const struct {
        int errno_value;
        enum kp_result code;
    } rows[] = {
        {ENOENT, KP_ERR_NOT_FOUND}, {EACCES, KP_ERR_FORBIDDEN}, {EPERM, KP_ERR_FORBIDDEN},
        {EEXIST, KP_ERR_CONFLICT},  {EISDIR, KP_ERR_INVALID},   {ENOSPC, KP_ERR_IO},
        {EIO, KP_ERR_IO},           {EROFS, KP_ERR_FORBIDDEN},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(kp_error_errno(&err, rows[i].errno_value, "cannot write '%s'", "f"),
                         rows[i].code);
        assert_non_null(strstr(err.message, "cannot write 'f': "));
        assert_non_null(strstr(err.message, strerror(rows[i].errno_value)));
    }
}

static void test_kinds_map_to_status_and_exit(void **state)
{
    (void)state;
    assert_int_equal(kp_result_exit_code(KP_OK), 0);
    assert_int_equal(kp_result_exit_code(KP_ERR_INVALID), 1);
    assert_int_equal(kp_result_http_status(KP_ERR_INVALID), 400);
    assert_int_equal(kp_result_http_status(KP_ERR_UNAUTHENTICATED), 401);
    assert_int_equal(kp_result_http_status(KP_ERR_FORBIDDEN), 403);
    assert_int_equal(kp_result_http_status(KP_ERR_NOT_FOUND), 404);
    assert_int_equal(kp_result_http_status(KP_ERR_CONFLICT), 409);
    assert_int_equal(kp_result_http_status(KP_ERR_IO), 503);
    assert_int_equal(kp_result_http_status(KP_ERR_INTERNAL), 500);
    assert_int_equal(kp_result_http_status(KP_ERR_EXPIRED), 410);
    assert_int_equal(kp_result_http_status(KP_ERR_TOO_LARGE), 413);
    assert_int_equal(kp_result_exit_code((enum kp_result)99), 7);
    assert_int_equal(kp_result_exit_code(KP_ERR_TOO_LARGE), 9);
    assert_string_equal(kp_result_name(KP_ERR_CONFLICT), "conflict");
}

static void test_truncation_is_safe(void **state)
{
    (void)state;
    struct kp_error err;
    char big[4000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kp_error_set(&err, KP_ERR_INVALID, "%s", big);
    assert_int_equal(strlen(err.message), KP_ERROR_MESSAGE_MAX - 1);
    kp_error_prefix(&err, "%s", big);
    assert_int_equal(strlen(err.message), KP_ERROR_MESSAGE_MAX - 1);
    /* NULL error objects are allowed everywhere. */
    assert_int_equal(kp_error_set(NULL, KP_ERR_IO, "x"), KP_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_prefix),
        cmocka_unit_test(test_errno_kinds),
        cmocka_unit_test(test_kinds_map_to_status_and_exit),
        cmocka_unit_test(test_truncation_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
