#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void test_load_and_navigate(void **state)
{
    (void)state;
    const char *text = "a: 1\nlist:\n- x\n- y\nmap:\n  k: v\nempty:\nquoted: \"null\"\n";
    struct kp_yaml_doc doc;
    struct kp_error err;
    assert_int_equal(kp_yaml_load(&doc, text, strlen(text), "t.yaml", &err), KP_OK);
    int root = kp_yaml_root(&doc);
    assert_string_equal(kp_yaml_scalar(&doc, kp_yaml_map_get(&doc, root, "a")), "1");
    int list = kp_yaml_map_get(&doc, root, "list");
    assert_int_equal(kp_yaml_seq_len(&doc, list), 2);
    assert_string_equal(kp_yaml_scalar(&doc, kp_yaml_seq_item(&doc, list, 1)), "y");
    assert_int_equal(kp_yaml_seq_item(&doc, list, 2), 0);
    int map = kp_yaml_map_get(&doc, root, "map");
    assert_string_equal(kp_yaml_scalar(&doc, kp_yaml_map_get(&doc, map, "k")), "v");
    assert_int_equal(kp_yaml_line(&doc, map), 6);
    assert_true(kp_yaml_is_null(&doc, kp_yaml_map_get(&doc, root, "empty")));
    assert_false(kp_yaml_is_null(&doc, kp_yaml_map_get(&doc, root, "quoted")));
    assert_int_equal(kp_yaml_map_get(&doc, root, "missing"), 0);
    assert_null(kp_yaml_scalar(&doc, list));
    assert_int_equal(kp_yaml_map_get(&doc, list, "a"), 0);
    kp_yaml_free(&doc);
}

static void test_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"a: [1, 2\n", "a: b: c\n", "- a\nb: c\n", "a: 1\n---\nb: 2\n",
                         "\t- tab\n", "a: *undefined\n",
                         /* a key twice, at any depth: readers disagree on which one wins */
                         "a: 1\na: 2\n", "m:\n  k: 1\n  k: 2\n", "- {x: 1, x: 1}\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kp_yaml_doc doc;
        struct kp_error err;
        kp_error_clear(&err);
        if (kp_yaml_load(&doc, bad[i], strlen(bad[i]), "bad.yaml", &err) != KP_ERR_INVALID) {
            fail_msg("'%s' should be rejected", bad[i]);
        }
        assert_non_null(strstr(err.message, "bad.yaml"));
    }
}

static void test_empty_document(void **state)
{
    (void)state;
    struct kp_yaml_doc doc;
    struct kp_error err;
    assert_int_equal(kp_yaml_load(&doc, "", 0, "e.yaml", &err), KP_OK);
    assert_int_equal(kp_yaml_root(&doc), 0);
    kp_yaml_free(&doc);
}

static void test_writer_round_trip(void **state)
{
    (void)state;
    struct kp_yaml_writer writer;
    struct kp_error err;
    assert_int_equal(kp_yaml_writer_init(&writer, &err), KP_OK);
    kp_yaml_writer_map_start(&writer);
    kp_yaml_writer_scalar(&writer, "name");
    kp_yaml_writer_scalar(&writer, "system:node:n1");
    kp_yaml_writer_scalar(&writer, "tricky");
    kp_yaml_writer_scalar(&writer, "yes: no # not a comment");
    kp_yaml_writer_scalar(&writer, "items");
    kp_yaml_writer_seq_start(&writer);
    kp_yaml_writer_scalar(&writer, "true");
    kp_yaml_writer_scalar(&writer, "- dash");
    kp_yaml_writer_seq_end(&writer);
    kp_yaml_writer_scalar(&writer, "preferences");
    kp_yaml_writer_empty_map(&writer);
    kp_yaml_writer_map_end(&writer);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(kp_yaml_writer_finish(&writer, &text, &len, &err), KP_OK);
    assert_non_null(strstr(text, "name: system:node:n1\n"));
    assert_non_null(strstr(text, "preferences: {}\n"));
    struct kp_yaml_doc doc;
    assert_int_equal(kp_yaml_load(&doc, text, len, "w.yaml", &err), KP_OK);
    int root = kp_yaml_root(&doc);
    assert_string_equal(kp_yaml_scalar(&doc, kp_yaml_map_get(&doc, root, "tricky")),
                        "yes: no # not a comment");
    int items = kp_yaml_map_get(&doc, root, "items");
    assert_string_equal(kp_yaml_scalar(&doc, kp_yaml_seq_item(&doc, items, 1)), "- dash");
    kp_yaml_free(&doc);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_navigate),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_empty_document),
        cmocka_unit_test(test_writer_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
