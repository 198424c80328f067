/*
 * meta/patch: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch
 * (k8s.io/apimachinery/pkg/util/strategicpatch). Table-driven: every row pins the result or,
 * for a refused patch, a fragment of the message.
 *
 * Every run also checks that the inputs are unchanged and that the result shares no node with
 * them; test_allocation_failures runs representative patches with jansson's allocator failing
 * at every step.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/patch.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value =
        json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &error);
    if (value == NULL) {
        fail_msg("test input is not JSON (%s): %s", error.text, text);
    }
    return value;
}

static char *dump(const json_t *value)
{
    return json_dumps(value, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_COMPACT);
}

/* Singletons (true, false, null) are shared by design in jansson; any other node of result
 * found in input is a node the patch function failed to copy. */
static bool holds_node(const json_t *haystack, const json_t *needle)
{
    if (haystack == needle) {
        return true;
    }
    if (json_is_object(haystack)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)haystack, key, member)
        {
            if (holds_node(member, needle)) {
                return true;
            }
        }
    } else if (json_is_array(haystack)) {
        for (size_t i = 0; i < json_array_size(haystack); i++) {
            if (holds_node(json_array_get(haystack, i), needle)) {
                return true;
            }
        }
    }
    return false;
}

static void assert_no_shared_nodes(const json_t *result, const json_t *input)
{
    if (!json_is_true(result) && !json_is_false(result) && !json_is_null(result) &&
        holds_node(input, result)) {
        char *text = dump(result);
        fail_msg("the result shares a node with an input: %s", text);
    }
    if (json_is_object(result)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)result, key, member)
        {
            assert_no_shared_nodes(member, input);
        }
    } else if (json_is_array(result)) {
        for (size_t i = 0; i < json_array_size(result); i++) {
            assert_no_shared_nodes(json_array_get(result, i), input);
        }
    }
}

enum patch_type { MERGE, STRATEGIC, JSON_PATCH };

struct row {
    const char *name;
    const char *target;
    const char *patch;
    const char *expected; /* NULL: must fail */
    const char *fragment; /* failing rows: part of the message */
    enum kp_result code;  /* failing rows: 0 means KP_ERR_INVALID */
};

static enum kp_result apply(enum patch_type type, const struct kp_smp_schema *schema,
                            const json_t *target, const json_t *patch, json_t **out,
                            struct kp_error *err)
{
    switch (type) {
    case MERGE:
        return kp_merge_patch(target, patch, out, err);
    case STRATEGIC:
        return kp_strategic_merge_patch(target, patch, schema, out, err);
    default:
        return kp_json_patch(target, patch, out, err);
    }
}

static void run_row(enum patch_type type, const struct kp_smp_schema *schema, const struct row *row)
{
    json_t *target = parse(row->target);
    json_t *patch = parse(row->patch);
    char *target_before = dump(target);
    char *patch_before = dump(patch);
    json_t *out = (json_t *)1;
    struct kp_error err;
    kp_error_clear(&err);
    enum kp_result rc = apply(type, schema, target, patch, &out, &err);
    if (row->expected != NULL) {
        if (rc != KP_OK) {
            fail_msg("'%s': failed: %s", row->name, err.message);
        }
        json_t *expected = parse(row->expected);
        if (!json_equal(out, expected)) {
            char *got = dump(out);
            fail_msg("'%s':\n  expected %s\n  got      %s", row->name, row->expected, got);
        }
        /* list order matters: json_equal compares arrays in order, objects by key */
        assert_no_shared_nodes(out, target);
        assert_no_shared_nodes(out, patch);
        json_decref(expected);
        json_decref(out);
    } else {
        enum kp_result want = row->code == KP_OK ? KP_ERR_INVALID : row->code;
        if (rc != want) {
            fail_msg("'%s': want %s, got %s (%s)", row->name, kp_result_name(want),
                     kp_result_name(rc), err.message);
        }
        if (out != NULL) {
            fail_msg("'%s': a failure must leave *out NULL", row->name);
        }
        if (row->fragment != NULL && strstr(err.message, row->fragment) == NULL) {
            fail_msg("'%s': message '%s' lacks '%s'", row->name, err.message, row->fragment);
        }
    }
    char *target_after = dump(target);
    char *patch_after = dump(patch);
    if (strcmp(target_before, target_after) != 0 || strcmp(patch_before, patch_after) != 0) {
        fail_msg("'%s': an input changed", row->name);
    }
    free(target_before);
    free(patch_before);
    free(target_after);
    free(patch_after);
    json_decref(target);
    json_decref(patch);
}

static void run_rows(enum patch_type type, const struct kp_smp_schema *schema,
                     const struct row *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        run_row(type, schema, &rows[i]);
    }
}

/* --- RFC 7386 ----------------------------------------------------------------------------- */

static void test_merge_patch_rfc7386_appendix_a(void **state)
{
    (void)state;
    /* RFC 7386 Appendix A, every example, in order */
    static const struct row rows[] = {
        {"A1", "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}", NULL, 0},
        {"A2", "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}", NULL, 0},
        {"A3", "{\"a\":\"b\"}", "{\"a\":null}", "{}", NULL, 0},
        {"A4", "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}", NULL, 0},
        {"A5", "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}", NULL, 0},
        {"A6", "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}", NULL, 0},
        {"A7", "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}",
         NULL, 0},
        {"A8", "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}", NULL, 0},
        {"A9", "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]", NULL, 0},
        {"A10", "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]", NULL, 0},
        {"A11", "{\"a\":\"foo\"}", "null", "null", NULL, 0},
        {"A12", "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"", NULL, 0},
        {"A13", "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}", NULL, 0},
        {"A14", "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}", NULL, 0},
        {"A15", "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}", NULL, 0},
        /* RFC 7386 §3 */
        {"section 3",
         "{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
         "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
         "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\",\"author\":{\"familyName\":"
         "null},\"tags\":[\"example\"]}",
         "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
         "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}",
         NULL, 0},
        /* arrays are values: nulls inside them stay */
        {"null in a list", "{}", "{\"a\":[null,{\"b\":null}]}", "{\"a\":[null,{\"b\":null}]}", NULL,
         0},
        {"scalar target, object patch", "7", "{\"a\":{\"b\":null}}", "{\"a\":{}}", NULL, 0},
    };
    run_rows(MERGE, NULL, rows, COUNT(rows));
}

/* A value nesting `levels` objects: {"a":{"a":...{}}}. Free with free(). */
static char *nested(size_t levels)
{
    char *text = malloc(levels * 6 + 1);
    assert_non_null(text);
    size_t used = 0;
    for (size_t i = 0; i + 1 < levels; i++) {
        memcpy(text + used, "{\"a\":", 5);
        used += 5;
    }
    text[used++] = '{';
    for (size_t i = 0; i < levels; i++) {
        text[used++] = '}';
    }
    text[used] = '\0';
    return text;
}

static void test_merge_patch_depth(void **state)
{
    (void)state;
    char *ok = nested(KP_PATCH_MAX_DEPTH);
    char *deep = nested(KP_PATCH_MAX_DEPTH + 1);
    const struct row rows[] = {
        {"64 levels", ok, ok, ok, NULL, 0},
        {"65-level patch", "{}", deep, NULL, "the patch nests more than 64 levels", 0},
        {"65-level object", deep, "{}", NULL, "the object nests more than 64 levels", 0},
    };
    run_rows(MERGE, NULL, rows, COUNT(rows));
    free(ok);
    free(deep);
}

/* --- RFC 6902 ----------------------------------------------------------------------------- */

static void test_json_patch_rfc6902_appendix_a(void **state)
{
    (void)state;
    /* RFC 6902 Appendix A, every example (A.13 is in test_json_patch_duplicate_members) */
    static const struct row rows[] = {
        {"A.1 adding an object member", "{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
         "{\"baz\":\"qux\",\"foo\":\"bar\"}", NULL, 0},
        {"A.2 adding an array element", "{\"foo\":[\"bar\",\"baz\"]}",
         "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
         "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", NULL, 0},
        {"A.3 removing an object member", "{\"baz\":\"qux\",\"foo\":\"bar\"}",
         "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}", NULL, 0},
        {"A.4 removing an array element", "{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
         "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]", "{\"foo\":[\"bar\",\"baz\"]}", NULL, 0},
        {"A.5 replacing a value", "{\"baz\":\"qux\",\"foo\":\"bar\"}",
         "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
         "{\"baz\":\"boo\",\"foo\":\"bar\"}", NULL, 0},
        {"A.6 moving a value",
         "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
         "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
         "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}", NULL, 0},
        {"A.7 moving an array element", "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
         "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
         "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}", NULL, 0},
        {"A.8 testing a value: success", "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
         "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
         "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
         "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}", NULL, 0},
        {"A.9 testing a value: error", "{\"baz\":\"qux\"}",
         "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", NULL,
         "json patch operation 0 (test '/baz'): the value at the path differs", KP_ERR_CONFLICT},
        {"A.10 adding a nested member object", "{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
         "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}", NULL, 0},
        {"A.11 ignoring unrecognized elements", "{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
         "{\"foo\":\"bar\",\"baz\":\"qux\"}", NULL, 0},
        {"A.12 adding to a nonexistent target", "{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", NULL,
         "(add '/baz/bat'): the path does not exist: no member 'baz'", 0},
        {"A.14 ~ escape ordering", "{\"/\":9,\"~1\":10}",
         "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]", "{\"/\":9,\"~1\":10}", NULL, 0},
        {"A.15 comparing strings and numbers", "{\"/\":9,\"~1\":10}",
         "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", NULL, "differs",
         KP_ERR_CONFLICT},
        {"A.16 adding an array value", "{\"foo\":[\"bar\"]}",
         "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
         "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}", NULL, 0},
    };
    run_rows(JSON_PATCH, NULL, rows, COUNT(rows));
}

static void test_json_patch_duplicate_members(void **state)
{
    (void)state;
    /* RFC 6902 A.13: an operation with "op" twice is an error. A json_t cannot show duplicates,
     * so the refusal is the parser's: kpki parses bodies with JSON_REJECT_DUPLICATES. */
    json_error_t error;
    json_t *patch = json_loads("[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"op\":"
                               "\"remove\"}]",
                               JSON_REJECT_DUPLICATES, &error);
    assert_null(patch);
    assert_non_null(strstr(error.text, "duplicate"));
}

static void test_json_patch_pointers(void **state)
{
    (void)state;
    static const struct row rows[] = {
        {"~0 and ~1", "{\"a/b\":1,\"m~n\":2}",
         "[{\"op\":\"remove\",\"path\":\"/a~1b\"},{\"op\":\"replace\",\"path\":\"/m~0n\","
         "\"value\":3}]",
         "{\"m~n\":3}", NULL, 0},
        {"empty key", "{\"\":1}", "[{\"op\":\"replace\",\"path\":\"/\",\"value\":2}]", "{\"\":2}",
         NULL, 0},
        {"whole document add", "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":[1]}]", "[1]",
         NULL, 0},
        {"whole document replace", "{\"a\":1}",
         "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"b\":2}}]", "{\"b\":2}", NULL, 0},
        {"whole document test", "{\"a\":[1,{\"b\":2.0}]}",
         "[{\"op\":\"test\",\"path\":\"\",\"value\":{\"a\":[1.0,{\"b\":2}]}}]",
         "{\"a\":[1,{\"b\":2.0}]}", NULL, 0},
        {"test: numbers compare by value, objects by member", "{\"a\":{\"x\":1,\"y\":2}}",
         "[{\"op\":\"test\",\"path\":\"/a\",\"value\":{\"y\":2.0,\"x\":1}}]",
         "{\"a\":{\"x\":1,\"y\":2}}", NULL, 0},
        {"test: 1 is not 1.5", "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1.5}]",
         NULL, "differs", KP_ERR_CONFLICT},
        {"test: sizes differ", "{\"a\":[1,2]}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":[1]}]",
         NULL, "differs", KP_ERR_CONFLICT},
        {"test: missing member", "{\"a\":{\"x\":1}}",
         "[{\"op\":\"test\",\"path\":\"/a\",\"value\":{\"y\":1}}]", NULL, "differs",
         KP_ERR_CONFLICT},
        {"test: null is a value", "{\"a\":null}",
         "[{\"op\":\"test\",\"path\":\"/a\",\"value\":null}]", "{\"a\":null}", NULL, 0},
        {"test: missing path", "{}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":null}]", NULL,
         "the path does not exist", 0},
        {"index 0 and append", "[1]",
         "[{\"op\":\"add\",\"path\":\"/0\",\"value\":0},{\"op\":\"add\",\"path\":\"/-\","
         "\"value\":2},{\"op\":\"add\",\"path\":\"/3\",\"value\":3}]",
         "[0,1,2,3]", NULL, 0},
        {"leading zero", "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/01\"}]", NULL,
         "list index '01' has a leading zero", 0},
        {"leading zero on add", "[1]", "[{\"op\":\"add\",\"path\":\"/00\",\"value\":0}]", NULL,
         "leading zero", 0},
        {"negative index", "[1]", "[{\"op\":\"remove\",\"path\":\"/-1\"}]", NULL,
         "'-1' is not a list index", 0},
        {"index past the end", "[1]", "[{\"op\":\"add\",\"path\":\"/2\",\"value\":0}]", NULL,
         "list index 2 is past the end of the list (1 elements)", 0},
        {"replace past the end", "[1]", "[{\"op\":\"replace\",\"path\":\"/1\",\"value\":0}]", NULL,
         "past the end", 0},
        {"'-' on remove", "[1]", "[{\"op\":\"remove\",\"path\":\"/-\"}]", NULL,
         "'-' names no existing element", 0},
        {"'-' in the middle", "[[1]]", "[{\"op\":\"add\",\"path\":\"/-/0\",\"value\":0}]", NULL,
         "'-' names no existing element", 0},
        {"huge index", "[1]", "[{\"op\":\"remove\",\"path\":\"/99999999999999999999\"}]", NULL,
         "is not a list index", 0},
        {"~2", "{}", "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":0}]", NULL,
         "'~' must be followed by 0 or 1", 0},
        {"~ at the end", "{}", "[{\"op\":\"add\",\"path\":\"/a~\",\"value\":0}]", NULL,
         "'~' must be followed by 0 or 1", 0},
        {"no leading slash", "{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":0}]", NULL,
         "is not a JSON pointer", 0},
        {"through a scalar", "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":0}]", NULL,
         "the parent of the path is not an object or a list", 0},
        {"through a scalar, deeper", "{\"a\":1}",
         "[{\"op\":\"add\",\"path\":\"/a/b/c\",\"value\":0}]", NULL,
         "goes through a value that is not an object or a list", 0},
        {"bad from", "{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"a\",\"path\":\"/b\"}]", NULL,
         "\"from\" 'a' is not a JSON pointer", 0},
    };
    run_rows(JSON_PATCH, NULL, rows, COUNT(rows));
}

static void test_json_patch_operations(void **state)
{
    (void)state;
    static const struct row rows[] = {
        {"copy", "{\"a\":{\"b\":[1]}}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"}]",
         "{\"a\":{\"b\":[1]},\"c\":{\"b\":[1]}}", NULL, 0},
        {"copy into itself", "{\"a\":{\"b\":1}}",
         "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a/c\"}]",
         "{\"a\":{\"b\":1,\"c\":{\"b\":1}}}", NULL, 0},
        {"copy the whole document", "{\"a\":1}",
         "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/b\"}]", "{\"a\":1,\"b\":{\"a\":1}}", NULL, 0},
        {"move onto itself", "{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]",
         "{\"a\":1}", NULL, 0},
        {"move into its child", "{\"a\":{\"b\":1}}",
         "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]", NULL,
         "cannot move a value into one of its own children", 0},
        {"move: prefix of a name is not a parent", "{\"a\":1,\"ab\":{}}",
         "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/ab/x\"}]", "{\"ab\":{\"x\":1}}", NULL, 0},
        {"move replaces an existing member", "{\"a\":1,\"b\":2}",
         "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]", "{\"b\":1}", NULL, 0},
        {"move to the root", "{\"a\":{\"b\":1}}",
         "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"\"}]", "{\"b\":1}", NULL, 0},
        {"move from a missing path", "{}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]",
         NULL, "(move '/b'): the path does not exist: no member 'a'", 0},
        {"add replaces a member", "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":2}]",
         "{\"a\":2}", NULL, 0},
        {"add null", "{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":null}]", "{\"a\":null}",
         NULL, 0},
        {"remove the whole document", "{}", "[{\"op\":\"remove\",\"path\":\"\"}]", NULL,
         "cannot remove the whole document", 0},
        {"remove a missing member", "{}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", NULL,
         "(remove '/a'): the path does not exist", 0},
        {"replace a missing member", "{}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":1}]",
         NULL, "(replace '/a'): the path does not exist", 0},
        {"empty patch", "{\"a\":1}", "[]", "{\"a\":1}", NULL, 0},
        {"the second operation is named", "{}",
         "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},{\"op\":\"remove\",\"path\":\"/b\"}]", NULL,
         "json patch operation 1 (remove '/b')", 0},
        {"patch not a list", "{}", "{\"op\":\"add\"}", NULL, "must be a JSON list of operations",
         0},
        {"operation not an object", "{}", "[1]", NULL, "json patch operation 0: not an object", 0},
        {"no op", "{}", "[{\"path\":\"/a\"}]", NULL, "no \"op\"", 0},
        {"op not a string", "{}", "[{\"op\":1,\"path\":\"/a\"}]", NULL, "\"op\" must be a string",
         0},
        {"unknown op", "{}", "[{\"op\":\"merge\",\"path\":\"/a\"}]", NULL, "unknown \"op\" 'merge'",
         0},
        {"op with a NUL", "{}", "[{\"op\":\"add\\u0000x\",\"path\":\"/a\",\"value\":1}]", NULL,
         "unknown \"op\" 'add?x'", 0},
        {"no path", "{}", "[{\"op\":\"add\",\"value\":1}]", NULL, "no \"path\"", 0},
        {"path not a string", "{}", "[{\"op\":\"add\",\"path\":1,\"value\":1}]", NULL,
         "\"path\" must be a string", 0},
        {"no value", "{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", NULL, "no \"value\"", 0},
        {"no value for test", "{}", "[{\"op\":\"test\",\"path\":\"\"}]", NULL, "no \"value\"", 0},
        {"no from", "{}", "[{\"op\":\"copy\",\"path\":\"/a\"}]", NULL, "no \"from\"", 0},
        {"target not an object", "[1,2]", "[{\"op\":\"remove\",\"path\":\"/0\"}]", "[2]", NULL, 0},
    };
    run_rows(JSON_PATCH, NULL, rows, COUNT(rows));
}

static void test_json_patch_limits(void **state)
{
    (void)state;
    /* more operations than kube-apiserver's limit */
    json_t *many = json_array();
    for (size_t i = 0; i <= KP_JSON_PATCH_MAX_OPS; i++) {
        assert_int_equal(json_array_append_new(many, parse("{\"op\":\"test\",\"path\":\"\","
                                                           "\"value\":{}}")),
                         0);
    }
    json_t *target = parse("{}");
    json_t *out = NULL;
    struct kp_error err;
    assert_int_equal(kp_json_patch(target, many, &out, &err), KP_ERR_TOO_LARGE);
    assert_non_null(strstr(err.message, "10001 operations, at most 10000 allowed"));
    assert_null(out);
    /* exactly the limit is fine */
    assert_int_equal(json_array_remove(many, 0), 0);
    assert_int_equal(kp_json_patch(target, many, &out, &err), KP_OK);
    json_decref(out);
    json_decref(many);

    /* copying the document into itself doubles it each time: the copy budget stops it */
    json_t *big = json_array();
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(json_array_append_new(big, json_string("some text")), 0);
    }
    json_t *doubling_target = json_pack("{so}", "a", big);
    json_t *doubling = json_array();
    for (int i = 0; i < 40; i++) {
        char op[96];
        snprintf(op, sizeof(op), "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c%d\"}", i);
        assert_int_equal(json_array_append_new(doubling, parse(op)), 0);
    }
    assert_int_equal(kp_json_patch(doubling_target, doubling, &out, &err), KP_ERR_TOO_LARGE);
    assert_non_null(strstr(err.message, "copies more than 4194304 bytes"));
    assert_null(out);
    json_decref(doubling);
    json_decref(doubling_target);
    json_decref(target);

    /* depth: a value nesting 63 levels fits at /a (63 + 1), not at /x/a (63 + 2) */
    char *deep = nested(KP_PATCH_MAX_DEPTH - 1);
    char fits[4096];
    char too_deep[4096];
    snprintf(fits, sizeof(fits), "[{\"op\":\"add\",\"path\":\"/a\",\"value\":%s}]", deep);
    snprintf(too_deep, sizeof(too_deep), "[{\"op\":\"add\",\"path\":\"/x/a\",\"value\":%s}]", deep);
    /* a move deeper measures what it moves */
    char move_deeper[4096];
    snprintf(move_deeper, sizeof(move_deeper),
             "[{\"op\":\"add\",\"path\":\"/a\",\"value\":%s},"
             "{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/x/a\"}]",
             deep);
    char *too_deep_object = nested(KP_PATCH_MAX_DEPTH + 1);
    char *deep_value = nested(KP_PATCH_MAX_DEPTH + 1);
    char too_deep_patch[4096];
    snprintf(too_deep_patch, sizeof(too_deep_patch),
             "[{\"op\":\"add\",\"path\":\"\",\"value\":%s}]", deep_value);
    const struct row rows[] = {
        {"63 levels at /a", "{\"x\":{}}", fits, NULL, NULL, KP_OK},
        {"63 levels at /x/a", "{\"x\":{}}", too_deep, NULL,
         "(add '/x/a'): the result would nest more than 64 levels", 0},
        {"move deeper", "{\"x\":{}}", move_deeper, NULL,
         "json patch operation 1 (move '/x/a'): the result would nest more than 64 levels", 0},
        {"object too deep", too_deep_object, "[]", NULL, "the object nests more than 64 levels", 0},
        {"patch too deep", "{}", too_deep_patch, NULL,
         "a value in the patch nests more than 64 levels", 0},
    };
    /* the first row succeeds: check it by hand (its expected document is long) */
    json_t *fits_target = parse(rows[0].target);
    json_t *fits_patch = parse(rows[0].patch);
    assert_int_equal(kp_json_patch(fits_target, fits_patch, &out, &err), KP_OK);
    json_decref(out);
    json_decref(fits_target);
    json_decref(fits_patch);
    run_rows(JSON_PATCH, NULL, rows + 1, COUNT(rows) - 1);
    free(deep);
    free(too_deep_object);
    free(deep_value);
}

/* --- strategic merge patch: upstream's test cases ---------------------------------------- */

/* The schema of upstream's MergeItem test struct (patch_test.go), as far as the transcribed
 * cases reach: mergingList merges on name (recursively), mergingIntList and
 * retainKeysMap.mergingIntList are sets, mergeItemPtr merges on name, retainKeysMap and
 * retainKeysMergingList have the retainKeys strategy. */
static const struct kp_smp_field merge_item_fields[] = {
    {"mergingList", "name", false},
    {"mergingList.mergingList", "name", false},
    {"mergingList.mergingIntList", NULL, false},
    {"mergingIntList", NULL, false},
    {"mergeItemPtr", "name", false},
    {"retainKeysMap", NULL, true},
    {"retainKeysMap.mergingList", "name", false},
    {"retainKeysMap.mergingIntList", NULL, false},
    {"retainKeysMergingList", "name", true},
};
static const struct kp_smp_schema merge_item = {merge_item_fields, COUNT(merge_item_fields)};

static void test_smp_upstream_custom_cases(void **state)
{
    (void)state;
    /* patch_test.go customStrategicMergePatchTestCaseData (original + twoWay = modified) and
     * customStrategicMergePatchRawTestCases, in order, by their descriptions */
    static const struct row rows[] = {
        {"unique scalars when merging lists", "{\"mergingIntList\":[1,2]}",
         "{\"mergingIntList\":[2,3]}", "{\"mergingIntList\":[1,2,3]}", NULL, 0},
        {"delete map from nested map", "{\"simpleMap\":{\"key1\":1,\"key2\":1}}",
         "{\"simpleMap\":{\"$patch\":\"delete\"}}", "{\"simpleMap\":{}}", NULL, 0},
        {"delete all items from merging list", "{\"mergingList\":[{\"name\":1},{\"name\":2}]}",
         "{\"mergingList\":[{\"$patch\":\"replace\"}]}", "{\"mergingList\":[]}", NULL, 0},
        {"merge empty merging lists", "{\"mergingList\":[]}", "{\"mergingList\":[]}",
         "{\"mergingList\":[]}", NULL, 0},
        {"delete all keys from map", "{\"name\":1,\"value\":1}", "{\"$patch\":\"replace\"}", "{}",
         NULL, 0},
        {"add key and delete all keys from map", "{\"name\":1,\"value\":1}",
         "{\"other\":\"a\",\"$patch\":\"replace\"}", "{\"other\":\"a\"}", NULL, 0},
        {"delete all duplicate entries in a merging list",
         "{\"mergingList\":[{\"name\":1},{\"name\":1},{\"name\":2,\"value\":\"a\"},{\"name\":3},"
         "{\"name\":3}]}",
         "{\"mergingList\":[{\"name\":1,\"$patch\":\"delete\"},{\"name\":3,\"$patch\":"
         "\"delete\"}]}",
         "{\"mergingList\":[{\"name\":2,\"value\":\"a\"}]}", NULL, 0},
        {"retainKeys map can add a field when no retainKeys directive present",
         "{\"retainKeysMap\":{\"name\":\"foo\"}}", "{\"retainKeysMap\":{\"value\":\"bar\"}}",
         "{\"retainKeysMap\":{\"name\":\"foo\",\"value\":\"bar\"}}", NULL, 0},
        {"retainKeys map can change a field when no retainKeys directive present",
         "{\"retainKeysMap\":{\"name\":\"foo\",\"value\":\"a\"}}",
         "{\"retainKeysMap\":{\"value\":\"b\"}}",
         "{\"retainKeysMap\":{\"name\":\"foo\",\"value\":\"b\"}}", NULL, 0},
        {"retainKeys map can delete a field when no retainKeys directive present",
         "{\"retainKeysMap\":{\"name\":\"foo\",\"value\":\"a\"}}",
         "{\"retainKeysMap\":{\"value\":null}}", "{\"retainKeysMap\":{\"name\":\"foo\"}}", NULL, 0},
        {"retainKeys map merge an empty map",
         "{\"retainKeysMap\":{\"name\":\"foo\",\"value\":\"a\"}}", "{\"retainKeysMap\":{}}",
         "{\"retainKeysMap\":{\"name\":\"foo\",\"value\":\"a\"}}", NULL, 0},
        {"retainKeys list can add a field when no retainKeys directive present",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\"}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"foo\",\"value\":\"a\"}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"value\":\"a\"}]}",
         NULL, 0},
        {"retainKeys list can change a field when no retainKeys directive present",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"value\":\"a\"}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"foo\",\"value\":\"b\"}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"value\":\"b\"}]}",
         NULL, 0},
        {"retainKeys list can delete a field when no retainKeys directive present",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"value\":\"a\"}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"foo\",\"value\":null}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\"}]}", NULL, 0},
        {"preserve the order from the patch in a merging list",
         "{\"mergingList\":[{\"name\":1},{\"name\":2,\"value\":\"b\"},{\"name\":3}]}",
         "{\"mergingList\":[{\"name\":3,\"value\":\"c\"},{\"name\":1,\"value\":\"a\"},{\"name\":2,"
         "\"other\":\"x\"}]}",
         "{\"mergingList\":[{\"name\":3,\"value\":\"c\"},{\"name\":1,\"value\":\"a\"},{\"name\":2,"
         "\"value\":\"b\",\"other\":\"x\"}]}",
         NULL, 0},
        {"preserve the order from the patch in a merging list 2",
         "{\"mergingList\":[{\"name\":1},{\"name\":2,\"value\":\"b\"},{\"name\":3}]}",
         "{\"mergingList\":[{\"name\":3,\"value\":\"c\"},{\"name\":1,\"value\":\"a\"}]}",
         "{\"mergingList\":[{\"name\":2,\"value\":\"b\"},{\"name\":3,\"value\":\"c\"},{\"name\":1,"
         "\"value\":\"a\"}]}",
         NULL, 0},
        {"preserve the order from the patch in a merging int list", "{\"mergingIntList\":[1,2,3]}",
         "{\"mergingIntList\":[3,1,2]}", "{\"mergingIntList\":[3,1,2]}", NULL, 0},
        {"preserve the order from the patch in a merging int list (2)",
         "{\"mergingIntList\":[1,2,3]}", "{\"mergingIntList\":[3,1]}",
         "{\"mergingIntList\":[2,3,1]}", NULL, 0},
        /* customStrategicMergePatchRawTestCases */
        {"$setElementOrder contains item that is not present in the list to be merged",
         "{\"mergingList\":[{\"name\":1},{\"name\":3}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":3},{\"name\":2},{\"name\":1}],"
         "\"mergingList\":[{\"name\":3,\"value\":3},{\"name\":1,\"value\":1}]}",
         "{\"mergingList\":[{\"name\":3,\"value\":3},{\"name\":1,\"value\":1}]}", NULL, 0},
        {"$setElementOrder contains item that is not present in the int list to be merged",
         "{\"mergingIntList\":[1,3]}", "{\"$setElementOrder/mergingIntList\":[3,2,1]}",
         "{\"mergingIntList\":[3,1]}", NULL, 0},
        {"should check if order in $setElementOrder and patch list match",
         "{\"mergingList\":[{\"name\":1},{\"name\":3},{\"name\":2}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2},{\"name\":3}],"
         "\"mergingList\":[{\"name\":3,\"value\":3},{\"name\":1,\"value\":1}]}",
         NULL, "does not match its \"$setElementOrder\" list", 0},
        {"should check if order in $setElementOrder and patch list match (int list)",
         "{\"mergingIntList\":[1,3,2]}",
         "{\"$setElementOrder/mergingIntList\":[1,2,3],\"mergingIntList\":[3,1]}", NULL,
         "does not match", 0},
        {"missing merge key should error out", "{\"mergingList\":[{\"name\":1,\"value\":\"a\"}]}",
         "{\"mergingList\":[{\"value\":\"b\"}]}", NULL,
         "mergingList[0]: the patch's element 0 does not contain the merge key 'name'", 0},
        {"$deleteFromPrimitiveList of nonexistent item in primitive list should not add the item "
         "to the list",
         "{\"mergingIntList\":[1,2]}", "{\"$deleteFromPrimitiveList/mergingIntList\":[3]}",
         "{\"mergingIntList\":[1,2]}", NULL, 0},
        {"$deleteFromPrimitiveList on empty primitive list should not add the item to the list",
         "{\"mergingIntList\":null}", "{\"$deleteFromPrimitiveList/mergingIntList\":[3]}",
         "{\"mergingIntList\":null}", NULL, 0},
        {"$deleteFromPrimitiveList on nonexistent primitive list should not add the primitive "
         "list",
         "{\"foo\":[\"bar\"]}", "{\"$deleteFromPrimitiveList/mergingIntList\":[3]}",
         "{\"foo\":[\"bar\"]}", NULL, 0},
        {"$deleteFromPrimitiveList should delete item from a list with merge patch strategy",
         "{\"mergingIntList\":[1,2,3]}", "{\"$deleteFromPrimitiveList/mergingIntList\":[2]}",
         "{\"mergingIntList\":[1,3]}", NULL, 0},
        {"$deleteFromPrimitiveList should delete item from a list without merge patch strategy",
         "{\"nonMergingIntList\":[1,2,3]}", "{\"$deleteFromPrimitiveList/nonMergingIntList\":[2]}",
         "{\"nonMergingIntList\":[1,3]}", NULL, 0},
    };
    run_rows(STRATEGIC, &merge_item, rows, COUNT(rows));
}

static void test_smp_upstream_three_way_cases(void **state)
{
    (void)state;
    /* patch_test.go createStrategicMergePatchTestCaseData and strategicMergePatchRawTestCases:
     * the threeWay patch applied to current gives result */
    static const struct row rows[] = {
        {"nil original", "{\"name\":1,\"other\":\"a\"}", "{\"value\":1}",
         "{\"name\":1,\"value\":1,\"other\":\"a\"}", NULL, 0},
        {"add field to map with conflict", "{\"name\":\"a\",\"other\":\"a\"}",
         "{\"name\":1,\"value\":1}", "{\"name\":1,\"value\":1,\"other\":\"a\"}", NULL, 0},
        {"add field and delete field from map", "{\"name\":1,\"other\":\"a\"}",
         "{\"name\":null,\"value\":1}", "{\"value\":1,\"other\":\"a\"}", NULL, 0},
        {"delete field from nested map with conflict",
         "{\"simpleMap\":{\"key1\":\"a\",\"key2\":1,\"other\":\"a\"}}",
         "{\"simpleMap\":{\"key1\":1,\"key2\":null}}",
         "{\"simpleMap\":{\"key1\":1,\"other\":\"a\"}}", NULL, 0},
        {"delete all fields from map", "{\"name\":1,\"value\":1,\"other\":\"a\"}",
         "{\"name\":null,\"value\":null}", "{\"other\":\"a\"}", NULL, 0},
        {"replace list of scalars with conflict", "{\"nonMergingIntList\":[1,4]}",
         "{\"nonMergingIntList\":[2,3]}", "{\"nonMergingIntList\":[2,3]}", NULL, 0},
        {"delete all maps from merging list with conflict",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":2,\"other\":\"b\"}]}",
         "{\"mergingList\":[{\"name\":1,\"$patch\":\"delete\"},{\"name\":2,\"$patch\":"
         "\"delete\"}]}",
         "{\"mergingList\":[]}", NULL, 0},
        {"delete all maps from empty merging list", "{\"mergingList\":[]}",
         "{\"mergingList\":[{\"name\":1,\"$patch\":\"delete\"},{\"name\":2,\"$patch\":"
         "\"delete\"}]}",
         "{\"mergingList\":[]}", NULL, 0},
        {"merge empty merging lists", "{\"mergingList\":[]}", "{}", "{\"mergingList\":[]}", NULL,
         0},
        {"defined null values should propagate overwrite current fields (with conflict)",
         "{\"name\":\"a\",\"other\":\"a\"}", "{\"name\":1,\"value\":1,\"other\":null}",
         "{\"name\":1,\"value\":1}", NULL, 0},
        {"defined null values should propagate removing original fields",
         "{\"name\":\"original-name\",\"value\":\"original-value\",\"other\":\"current-other\"}",
         "{\"name\":\"modified-name\",\"value\":null}",
         "{\"name\":\"modified-name\",\"other\":\"current-other\"}", NULL, 0},
        {"retainKeys map with no change should not be present",
         "{\"name\":\"a\",\"other\":\"c\",\"retainKeysMap\":{\"name\":\"foo\"}}",
         "{\"value\":\"b\"}",
         "{\"name\":\"a\",\"value\":\"b\",\"other\":\"c\",\"retainKeysMap\":{\"name\":\"foo\"}}",
         NULL, 0},
        /* strategicMergePatchRawTestCases */
        {"nested patch merge with empty list",
         "{\"name\":\"hi\",\"mergingList\":[{\"name\":"
         "\"hello2\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":\"hello\"},{\"name\":\"doesntexist\"}],"
         "\"mergingList\":[{\"name\":\"hello\"},{\"$patch\":\"delete\",\"name\":"
         "\"doesntexist\"}]}",
         "{\"name\":\"hi\",\"mergingList\":[{\"name\":\"hello\"},{\"name\":\"hello2\"}]}", NULL, 0},
        {"delete items in lists of scalars", "{\"mergingIntList\":[1,2,3,4]}",
         "{\"$setElementOrder/mergingIntList\":[1,2],\"$deleteFromPrimitiveList/"
         "mergingIntList\":[3]}",
         "{\"mergingIntList\":[1,2,4]}", NULL, 0},
        {"delete all duplicate items in lists of scalars", "{\"mergingIntList\":[1,2,3,3,4]}",
         "{\"$setElementOrder/mergingIntList\":[1,2],\"$deleteFromPrimitiveList/"
         "mergingIntList\":[3]}",
         "{\"mergingIntList\":[1,2,4]}", NULL, 0},
        {"add and delete items in lists of scalars", "{\"mergingIntList\":[1,2,3,4]}",
         "{\"$setElementOrder/mergingIntList\":[1,2,4],\"$deleteFromPrimitiveList/"
         "mergingIntList\":[3],\"mergingIntList\":[4]}",
         "{\"mergingIntList\":[1,2,4]}", NULL, 0},
        {"merge lists of maps",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":2,\"value\":2,\"other\":"
         "\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":4},{\"name\":1},{\"name\":2},{\"name\":3}],"
         "\"mergingList\":[{\"name\":4,\"value\":4},{\"name\":3,\"value\":3}]}",
         "{\"mergingList\":[{\"name\":4,\"value\":4},{\"name\":1,\"other\":\"a\"},{\"name\":2,"
         "\"value\":2,\"other\":\"b\"},{\"name\":3,\"value\":3}]}",
         NULL, 0},
        {"merge lists of maps with conflict",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":2,\"value\":3,\"other\":"
         "\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2},{\"name\":3}],"
         "\"mergingList\":[{\"name\":2,\"value\":2},{\"name\":3,\"value\":3}]}",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":2,\"value\":2,\"other\":\"b\"},"
         "{\"name\":3,\"value\":3}]}",
         NULL, 0},
        {"add field to map in merging list",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":2,\"value\":2,\"other\":"
         "\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2}],\"mergingList\":[{"
         "\"name\":1,\"value\":1}]}",
         "{\"mergingList\":[{\"name\":1,\"value\":1,\"other\":\"a\"},{\"name\":2,\"value\":2,"
         "\"other\":\"b\"}]}",
         NULL, 0},
        {"add field to map in merging list with conflict",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":3,\"value\":2,\"other\":"
         "\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2}],\"mergingList\":[{"
         "\"name\":1,\"value\":1},{\"name\":2,\"value\":2}]}",
         "{\"mergingList\":[{\"name\":1,\"value\":1,\"other\":\"a\"},{\"name\":2,\"value\":2},"
         "{\"name\":3,\"value\":2,\"other\":\"b\"}]}",
         NULL, 0},
        {"replace map field value in merging list",
         "{\"mergingList\":[{\"name\":1,\"value\":1,\"other\":\"a\"},{\"name\":2,\"value\":2,"
         "\"other\":\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2}],\"mergingList\":[{"
         "\"name\":1,\"value\":\"a\"}]}",
         "{\"mergingList\":[{\"name\":1,\"value\":\"a\",\"other\":\"a\"},{\"name\":2,\"value\":2,"
         "\"other\":\"b\"}]}",
         NULL, 0},
        {"delete map from merging list",
         "{\"mergingList\":[{\"name\":1},{\"name\":2,\"other\":"
         "\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":2}],\"mergingList\":[{\"name\":1,"
         "\"$patch\":\"delete\"}]}",
         "{\"mergingList\":[{\"name\":2,\"other\":\"b\"}]}", NULL, 0},
        {"delete missing map from merging list",
         "{\"mergingList\":[{\"name\":2,\"other\":"
         "\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":2}],\"mergingList\":[{\"name\":1,"
         "\"$patch\":\"delete\"}]}",
         "{\"mergingList\":[{\"name\":2,\"other\":\"b\"}]}", NULL, 0},
        {"delete missing map from merging list with conflict",
         "{\"mergingList\":[{\"name\":3,\"other\":\"a\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":2}],\"mergingList\":[{\"name\":2},{"
         "\"name\":1,\"$patch\":\"delete\"}]}",
         "{\"mergingList\":[{\"name\":2},{\"name\":3,\"other\":\"a\"}]}", NULL, 0},
        {"add map and delete map from merging list",
         "{\"mergingList\":[{\"name\":1},{\"name\":2,\"other\":\"b\"},{\"name\":4,\"other\":"
         "\"c\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":2},{\"name\":3}],\"mergingList\":[{"
         "\"name\":3},{\"name\":1,\"$patch\":\"delete\"}]}",
         "{\"mergingList\":[{\"name\":2,\"other\":\"b\"},{\"name\":4,\"other\":\"c\"},{\"name\":"
         "3}]}",
         NULL, 0},
        {"add map and delete map from merging list with conflict",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":4,\"other\":\"c\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":2},{\"name\":3}],\"mergingList\":[{"
         "\"name\":2},{\"name\":3},{\"name\":1,\"$patch\":\"delete\"}]}",
         "{\"mergingList\":[{\"name\":4,\"other\":\"c\"},{\"name\":2},{\"name\":3}]}", NULL, 0},
        {"delete field from map in merging list",
         "{\"mergingList\":[{\"name\":1,\"value\":1,\"other\":\"a\"},{\"name\":2,\"value\":2,"
         "\"other\":\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2}],\"mergingList\":[{"
         "\"name\":1,\"value\":null}]}",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":2,\"value\":2,\"other\":"
         "\"b\"}]}",
         NULL, 0},
        {"delete missing field from map in merging list with conflict",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":2,\"other\":\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2}],\"mergingList\":[{"
         "\"name\":1,\"value\":null},{\"name\":2,\"value\":2}]}",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\"},{\"name\":2,\"value\":2,\"other\":"
         "\"b\"}]}",
         NULL, 0},
        {"replace non merging list nested in merging list",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\",\"nonMergingList\":[{\"name\":1},{"
         "\"name\":2,\"value\":2}]},{\"name\":2,\"other\":\"b\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2}],\"mergingList\":[{"
         "\"name\":1,\"nonMergingList\":[{\"name\":1,\"value\":1}]}]}",
         "{\"mergingList\":[{\"name\":1,\"other\":\"a\",\"nonMergingList\":[{\"name\":1,"
         "\"value\":1}]},{\"name\":2,\"other\":\"b\"}]}",
         NULL, 0},
        {"retainKeys list of maps changes a field and clear a field with conflict",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"value\":"
         "\"modified\",\"other\":\"x\"}]}",
         "{\"$setElementOrder/retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\"}],"
         "\"retainKeysMergingList\":[{\"$retainKeys\":[\"name\",\"value\"],\"name\":\"foo\","
         "\"value\":\"new\"}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"value\":\"new\"}]}",
         NULL, 0},
        {"retainKeys list of maps adds a field and clear a field",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"other\":\"x\"}]}",
         "{\"$setElementOrder/retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\"}],"
         "\"retainKeysMergingList\":[{\"$retainKeys\":[\"name\",\"value\"],\"name\":\"foo\","
         "\"value\":\"a\"}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"value\":\"a\"}]}",
         NULL, 0},
        {"retainKeys list of maps deletes a field and clear a field",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\",\"value\":\"a\","
         "\"other\":\"x\"}]}",
         "{\"$setElementOrder/retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\"}],"
         "\"retainKeysMergingList\":[{\"$retainKeys\":[\"name\"],\"name\":\"foo\",\"value\":"
         "null}]}",
         "{\"retainKeysMergingList\":[{\"name\":\"bar\"},{\"name\":\"foo\"}]}", NULL, 0},
        {"delete and reorder in one list, reorder in another",
         "{\"mergingList\":[{\"name\":\"a\",\"value\":\"a\"},{\"name\":\"b\",\"value\":\"b\"}],"
         "\"mergeItemPtr\":[{\"name\":\"c\",\"value\":\"c\"},{\"name\":\"d\",\"value\":\"d\"}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":\"b\"}],\"$setElementOrder/mergeItemPtr\":"
         "[{\"name\":\"d\"},{\"name\":\"c\"}],\"mergingList\":[{\"$patch\":\"delete\",\"name\":"
         "\"a\"}]}",
         "{\"mergingList\":[{\"name\":\"b\",\"value\":\"b\"}],\"mergeItemPtr\":[{\"name\":\"d\","
         "\"value\":\"d\"},{\"name\":\"c\",\"value\":\"c\"}]}",
         NULL, 0},
        /* replaceRawExtensionPatchTestCases "replace RawExtension field and merge list", the
         * list part (kp_smp_field has no "replace" strategy for maps; no served kind uses it) */
        {"replace RawExtension field and merge list (list part)",
         "{\"mergingList\":[{\"name\":1},{\"name\":3}]}",
         "{\"$setElementOrder/mergingList\":[{\"name\":1},{\"name\":2}],\"mergingList\":[{"
         "\"name\":2}]}",
         "{\"mergingList\":[{\"name\":1},{\"name\":2},{\"name\":3}]}", NULL, 0},
    };
    run_rows(STRATEGIC, &merge_item, rows, COUNT(rows));
}

static void test_smp_upstream_unknown_fields(void **state)
{
    (void)state;
    /* patch_test.go TestUnknownField (fields no schema knows): the twoWay patch applied to
     * original gives ExpectedTwoWayResult, the threeWay one applied to current
     * ExpectedThreeWayResult */
#define BASE "\"array\":[1,2,3],\"complex\":{\"nested\":true},\"name\":\"foo\",\"scalar\":true"
    static const struct row rows[] = {
        {"no diff", "{" BASE "}", "{}", "{" BASE "}", NULL, 0},
        {"no diff even if modified null", "{" BASE "}", "{\"complex_nullable\":{\"key\":null}}",
         "{" BASE ",\"complex_nullable\":{}}", NULL, 0},
        {"discard nulls in nested and adds not nulls", "{" BASE "}",
         "{\"complex_nullable\":{\"key\":{\"keynotnull\":\"value\",\"keynull\":null}}}",
         "{" BASE ",\"complex_nullable\":{\"key\":{\"keynotnull\":\"value\"}}}", NULL, 0},
        {"discard if modified all nulls", "{}", "{\"complex\":{\"nested\":null}}",
         "{\"complex\":{}}", NULL, 0},
        {"add only not nulls", "{}", "{\"complex\":{\"nested\":null,\"nested2\":\"foo\"}}",
         "{\"complex\":{\"nested2\":\"foo\"}}", NULL, 0},
        {"null values in original are preserved", "{\"thing\":null}", "{\"nested\":{\"value\":5}}",
         "{\"nested\":{\"value\":5},\"thing\":null}", NULL, 0},
        {"nested null values in original are preserved",
         "{\"complex\":{\"key\":null},\"thing\":null}", "{\"nested\":{\"value\":5}}",
         "{\"complex\":{\"key\":null},\"nested\":{\"value\":5},\"thing\":null}", NULL, 0},
        {"add empty slices", "{" BASE "}", "{\"complex_nullable\":[]}",
         "{" BASE ",\"complex_nullable\":[]}", NULL, 0},
        {"filter nulls from nested slices", "{}",
         "{\"complex_nullable\":[{\"inner_one\":{\"key_one\":\"foo\",\"key_two\":null}}]}",
         "{\"complex_nullable\":[{\"inner_one\":{\"key_one\":\"foo\"}}]}", NULL, 0},
        {"filter if slice is all empty", "{}",
         "{\"complex_nullable\":[{\"inner_one\":{\"key_one\":null,\"key_two\":null}}]}",
         "{\"complex_nullable\":[{\"inner_one\":{}}]}", NULL, 0},
        {"not filter nulls from non-associative slice", "{}",
         "{\"complex_nullable\":[\"key1\",null,\"key2\"]}",
         "{\"complex_nullable\":[\"key1\",null,\"key2\"]}", NULL, 0},
        {"added only", "{\"name\":\"foo\"}",
         "{\"array\":[1,2,3],\"complex\":{\"nested\":true},\"scalar\":true}", "{" BASE "}", NULL,
         0},
        {"removed only (three-way)",
         "{\"name\":\"foo\",\"scalar\":true,\"complex\":{\"nested\":true},\"array\":[1,2,3]}",
         "{\"complex\":null,\"scalar\":null}", "{\"array\":[1,2,3],\"name\":\"foo\"}", NULL, 0},
    };
#undef BASE
    run_rows(STRATEGIC, NULL, rows, COUNT(rows));
}

/* --- strategic merge patch: what kubectl sends, on the served kinds ----------------------- */

#define POD                                                                                        \
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\",\"namespace\":"        \
    "\"default\",\"labels\":{\"app\":\"web\"},\"finalizers\":[\"a.example.com/x\"],"               \
    "\"ownerReferences\":[{\"uid\":\"u1\",\"kind\":\"ReplicaSet\",\"name\":\"rs1\"}]},"            \
    "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1\",\"env\":[{\"name\":\"A\","  \
    "\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],\"ports\":[{\"containerPort\":80,"         \
    "\"protocol\":\"TCP\"}],\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"}]},"      \
    "{\"name\":\"sidecar\",\"image\":\"busybox\"}],\"volumes\":[{\"name\":\"data\",\"emptyDir\":"  \
    "{}}],\"tolerations\":[{\"key\":\"a\",\"operator\":\"Exists\"}]},\"status\":{\"conditions\":"  \
    "[{\"type\":\"PodScheduled\",\"status\":\"True\"},{\"type\":\"Ready\",\"status\":"             \
    "\"False\"}]}}"

/* The value at a '/'-separated path of plain member names or indexes (test helper). */
static json_t *at(json_t *value, const char *path)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", path);
    for (char *part = copy, *next; part != NULL && value != NULL; part = next) {
        next = strchr(part, '/');
        if (next != NULL) {
            *next++ = '\0';
        }
        if (json_is_array(value)) {
            value = json_array_get(value, strtoul(part, NULL, 10));
        } else {
            value = json_object_get(value, part);
        }
    }
    return value;
}

/* Applies patch to the Pod and checks the value at `path` (the rest of the Pod is unchanged
 * unless the patch says otherwise; the rows check the part they touch). */
static void check_pod(const char *name, const char *patch_text, const char *path,
                      const char *expected_text)
{
    json_t *pod = parse(POD);
    json_t *patch = parse(patch_text);
    json_t *out = NULL;
    struct kp_error err;
    if (kp_strategic_merge_patch(pod, patch, kp_smp_schema_for_kind("Pod"), &out, &err) != KP_OK) {
        fail_msg("'%s': %s", name, err.message);
    }
    json_t *expected = parse(expected_text);
    json_t *got = at(out, path);
    if (got == NULL || !json_equal(got, expected)) {
        char *text = got != NULL ? dump(got) : NULL;
        fail_msg("'%s': %s:\n  expected %s\n  got      %s", name, path, expected_text,
                 text != NULL ? text : "(nothing)");
    }
    json_decref(expected);
    json_decref(out);
    json_decref(patch);
    json_decref(pod);
}

static void test_smp_kubectl_on_a_pod(void **state)
{
    (void)state;
    /* kubectl edit: new image, env B changed, C added, A removed (what CreateTwoWayMergePatch
     * sends, $setElementOrder included) */
    const char *edit =
        "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"app\"},{\"name\":\"sidecar\"}],"
        "\"containers\":[{\"$setElementOrder/env\":[{\"name\":\"B\"},{\"name\":\"C\"}],\"env\":[{"
        "\"name\":\"B\",\"value\":\"20\"},{\"name\":\"C\",\"value\":\"3\"},{\"$patch\":\"delete\","
        "\"name\":\"A\"}],\"image\":\"nginx:2\",\"name\":\"app\"}]}}";
    check_pod("edit", edit, "spec/containers",
              "[{\"name\":\"app\",\"image\":\"nginx:2\",\"env\":[{\"name\":\"B\",\"value\":\"20\"},"
              "{\"name\":\"C\",\"value\":\"3\"}],\"ports\":[{\"containerPort\":80,\"protocol\":"
              "\"TCP\"}],\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"}]},{\"name\":"
              "\"sidecar\",\"image\":\"busybox\"}]");
    /* kubectl apply switching a volume's source: spec.volumes has the retainKeys strategy */
    check_pod("volume source",
              "{\"spec\":{\"$setElementOrder/volumes\":[{\"name\":\"data\"}],\"volumes\":[{"
              "\"$retainKeys\":[\"configMap\",\"name\"],\"configMap\":{\"name\":\"cm\"},\"name\":"
              "\"data\"}]}}",
              "spec/volumes", "[{\"name\":\"data\",\"configMap\":{\"name\":\"cm\"}}]");
    /* labels and annotations: maps merge, null deletes */
    check_pod("labels",
              "{\"metadata\":{\"labels\":{\"tier\":\"front\",\"app\":null},\"annotations\":{"
              "\"note\":\"x\"}}}",
              "metadata",
              "{\"name\":\"web\",\"namespace\":\"default\",\"labels\":{\"tier\":"
              "\"front\"},\"annotations\":{\"note\":\"x\"},\"finalizers\":[\"a.example."
              "com/x\"],\"ownerReferences\":[{\"uid\":\"u1\",\"kind\":\"ReplicaSet\","
              "\"name\":\"rs1\"}]}");
    /* finalizers: a set; what kubectl edit sends to add and to remove one */
    check_pod("add a finalizer",
              "{\"metadata\":{\"$setElementOrder/finalizers\":[\"a.example.com/x\",\"b.example."
              "com/y\"],\"finalizers\":[\"b.example.com/y\"]}}",
              "metadata/finalizers", "[\"a.example.com/x\",\"b.example.com/y\"]");
    check_pod("remove a finalizer",
              "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a.example.com/x\"]}}",
              "metadata/finalizers", "[]");
    /* without $setElementOrder (kubectl patch -p): upstream puts a new value ahead of the live
     * values that the patch does not mention */
    check_pod("add a finalizer without order",
              "{\"metadata\":{\"finalizers\":[\"b.example.com/y\"]}}", "metadata/finalizers",
              "[\"b.example.com/y\",\"a.example.com/x\"]");
    check_pod("add a container without order",
              "{\"spec\":{\"containers\":[{\"name\":\"debug\",\"image\":\"busybox\"}]}}",
              "spec/containers/0/name", "\"debug\"");
    check_pod("add a port",
              "{\"spec\":{\"containers\":[{\"name\":\"app\",\"ports\":[{"
              "\"containerPort\":443}]}]}}",
              "spec/containers/0/ports",
              "[{\"containerPort\":443},{\"containerPort\":80,\"protocol\":\"TCP\"}]");
    check_pod("ownerReferences merge on uid",
              "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"u1\",\"controller\":true}]}}",
              "metadata/ownerReferences",
              "[{\"uid\":\"u1\",\"kind\":\"ReplicaSet\",\"name\":\"rs1\",\"controller\":true}]");
    check_pod("tolerations are replaced",
              "{\"spec\":{\"tolerations\":[{\"key\":\"b\",\"operator\":\"Exists\"}]}}",
              "spec/tolerations", "[{\"key\":\"b\",\"operator\":\"Exists\"}]");
    check_pod("volumeMounts merge on mountPath",
              "{\"spec\":{\"containers\":[{\"name\":\"app\",\"volumeMounts\":[{\"mountPath\":"
              "\"/data\",\"readOnly\":true}]}]}}",
              "spec/containers/0/volumeMounts",
              "[{\"name\":\"data\",\"mountPath\":\"/data\",\"readOnly\":true}]");
    check_pod("status conditions merge on type (kubelet)",
              "{\"status\":{\"$setElementOrder/conditions\":[{\"type\":\"Ready\"},{\"type\":"
              "\"PodScheduled\"}],\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
              "status/conditions",
              "[{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":\"PodScheduled\",\"status\":"
              "\"True\"}]");
    check_pod("delete a container",
              "{\"spec\":{\"containers\":[{\"$patch\":\"delete\",\"name\":\"sidecar\"}]}}",
              "spec/containers",
              "[{\"name\":\"app\",\"image\":\"nginx:1\",\"env\":[{\"name\":\"A\",\"value\":\"1\"},"
              "{\"name\":\"B\",\"value\":\"2\"}],\"ports\":[{\"containerPort\":80,\"protocol\":"
              "\"TCP\"}],\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"}]}]");
}

static void test_smp_kinds(void **state)
{
    (void)state;
    /* every served kind shares the metadata fields; unknown kinds get just those */
    const struct kp_smp_schema *metadata_only = kp_smp_schema_for_kind("Secret");
    assert_ptr_equal(kp_smp_schema_for_kind("NoSuchKind"), metadata_only);
    assert_ptr_equal(kp_smp_schema_for_kind(NULL), metadata_only);
    assert_ptr_equal(kp_smp_schema_for_kind("pod"), metadata_only); /* kinds are case-sensitive */
    static const char *const kinds[] = {
        "Pod",
        "Node",
        "Namespace",
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "Event",
        "Lease",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "CertificateSigningRequest",
    };
    for (size_t i = 0; i < COUNT(kinds); i++) {
        const struct kp_smp_schema *schema = kp_smp_schema_for_kind(kinds[i]);
        assert_non_null(schema);
        bool owner_references = false;
        bool finalizers = false;
        for (size_t f = 0; f < schema->count; f++) {
            const struct kp_smp_field *field = &schema->fields[f];
            owner_references |= strcmp(field->path, "metadata.ownerReferences") == 0 &&
                                field->merge_key != NULL && strcmp(field->merge_key, "uid") == 0;
            finalizers |= strcmp(field->path, "metadata.finalizers") == 0 &&
                          field->merge_key == NULL && !field->retain_keys;
        }
        if (!owner_references || !finalizers) {
            fail_msg("%s lacks the metadata fields", kinds[i]);
        }
    }

    static const struct row node_rows[] = {
        {"Node: taints are replaced (no patch tag upstream)",
         "{\"spec\":{\"taints\":[{\"key\":\"a\",\"effect\":\"NoSchedule\"}]}}",
         "{\"spec\":{\"taints\":[{\"key\":\"b\",\"effect\":\"NoExecute\"}]}}",
         "{\"spec\":{\"taints\":[{\"key\":\"b\",\"effect\":\"NoExecute\"}]}}", NULL, 0},
        {"Node: podCIDRs merge as a set", "{\"spec\":{\"podCIDRs\":[\"10.0.0.0/24\"]}}",
         "{\"spec\":{\"$setElementOrder/podCIDRs\":[\"10.0.0.0/24\",\"fd00::/64\"],\"podCIDRs\":"
         "[\"fd00::/64\"]}}",
         "{\"spec\":{\"podCIDRs\":[\"10.0.0.0/24\",\"fd00::/64\"]}}", NULL, 0},
        {"Node: addresses merge on type",
         "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"},{"
         "\"type\":\"Hostname\",\"address\":\"n1\"}]}}",
         "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.2\"}]}}",
         "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.2\"},{"
         "\"type\":\"Hostname\",\"address\":\"n1\"}]}}",
         NULL, 0},
        {"Node: images are replaced", "{\"status\":{\"images\":[{\"names\":[\"a\"]}]}}",
         "{\"status\":{\"images\":[{\"names\":[\"b\"]}]}}",
         "{\"status\":{\"images\":[{\"names\":[\"b\"]}]}}", NULL, 0},
    };
    run_rows(STRATEGIC, kp_smp_schema_for_kind("Node"), node_rows, COUNT(node_rows));

    static const struct row sa_rows[] = {
        {"ServiceAccount: secrets merge on name", "{\"secrets\":[{\"name\":\"s1\"}]}",
         "{\"secrets\":[{\"name\":\"s2\"}]}", "{\"secrets\":[{\"name\":\"s2\"},{\"name\":\"s1\"}]}",
         NULL, 0},
        {"ServiceAccount: imagePullSecrets are replaced",
         "{\"imagePullSecrets\":[{\"name\":\"r1\"}]}", "{\"imagePullSecrets\":[{\"name\":\"r2\"}]}",
         "{\"imagePullSecrets\":[{\"name\":\"r2\"}]}", NULL, 0},
    };
    run_rows(STRATEGIC, kp_smp_schema_for_kind("ServiceAccount"), sa_rows, COUNT(sa_rows));

    static const struct row csr_rows[] = {
        {"CSR: status.conditions are replaced (listType=map, but no patch tag)",
         "{\"status\":{\"conditions\":[{\"type\":\"Approved\",\"status\":\"True\"}]}}",
         "{\"status\":{\"conditions\":[{\"type\":\"Failed\",\"status\":\"True\"}]}}",
         "{\"status\":{\"conditions\":[{\"type\":\"Failed\",\"status\":\"True\"}]}}", NULL, 0},
    };
    run_rows(STRATEGIC, kp_smp_schema_for_kind("CertificateSigningRequest"), csr_rows,
             COUNT(csr_rows));

    static const struct row rbac_rows[] = {
        {"Role: rules are replaced", "{\"rules\":[{\"verbs\":[\"get\"],\"resources\":[\"pods\"]}]}",
         "{\"rules\":[{\"verbs\":[\"list\"],\"resources\":[\"pods\"]}]}",
         "{\"rules\":[{\"verbs\":[\"list\"],\"resources\":[\"pods\"]}]}", NULL, 0},
    };
    run_rows(STRATEGIC, kp_smp_schema_for_kind("Role"), rbac_rows, COUNT(rbac_rows));

    static const struct row namespace_rows[] = {
        {"Namespace: spec.finalizers are replaced (no patch tag)",
         "{\"spec\":{\"finalizers\":[\"kubernetes\"]}}", "{\"spec\":{\"finalizers\":[\"x\"]}}",
         "{\"spec\":{\"finalizers\":[\"x\"]}}", NULL, 0},
        {"Namespace: status.conditions merge on type",
         "{\"status\":{\"conditions\":[{\"type\":\"A\",\"status\":\"True\"}]}}",
         "{\"status\":{\"conditions\":[{\"type\":\"A\",\"status\":\"False\"}]}}",
         "{\"status\":{\"conditions\":[{\"type\":\"A\",\"status\":\"False\"}]}}", NULL, 0},
    };
    run_rows(STRATEGIC, kp_smp_schema_for_kind("Namespace"), namespace_rows, COUNT(namespace_rows));
}

/* Where kpki differs from upstream on purpose (docs/meta.md, "Deviations"), pinned. */
static void test_smp_cleaned_values(void **state)
{
    (void)state;
    static const struct row rows[] = {
        {"$patch: replace on a new map applies, as on an existing one", "{}",
         "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"a\":\"b\"}}}",
         "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}", NULL, 0},
        {"$patch: delete on a new map gives {}", "{}", "{\"spec\":{\"$patch\":\"delete\"}}",
         "{\"spec\":{}}", NULL, 0},
        {"directives inside a new list are applied", "{}",
         "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"X\",\"$patch\":"
         "\"delete\"},{\"name\":\"Y\",\"value\":null}]}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"Y\"}]}]}}", NULL, 0},
        {"a changed type is cleaned", "{\"a\":\"x\"}", "{\"a\":{\"b\":null,\"c\":1}}",
         "{\"a\":{\"c\":1}}", NULL, 0},
        {"a replaced list drops directive elements and nulls", "{\"spec\":{\"tolerations\":[]}}",
         "{\"spec\":{\"tolerations\":[{\"key\":\"b\",\"$patch\":\"delete\"},{\"key\":\"c\","
         "\"value\":null}]}}",
         "{\"spec\":{\"tolerations\":[{\"key\":\"c\"}]}}", NULL, 0},
        {"deletions apply after the merge of the same list",
         "{\"metadata\":{\"finalizers\":[\"a\"]}}",
         "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"b\"],\"finalizers\":[\"b\"]}}",
         "{\"metadata\":{\"finalizers\":[\"a\"]}}", NULL, 0},
        {"$setElementOrder on a missing list, no patch list: nothing", "{\"spec\":{}}",
         "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"a\"}]}}", "{\"spec\":{}}", NULL,
         0},
        {"$setElementOrder with only a patch list", "{\"spec\":{}}",
         "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"b\"},{\"name\":\"a\"}],"
         "\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}",
         NULL, "does not match", 0},
        {"$setElementOrder with only a patch list, in order", "{\"spec\":{}}",
         "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
         "\"containers\":[{\"name\":\"a\"},{\"name\":\"b\",\"x\":null}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}", NULL, 0},
        {"$patch: replace in a list keeps the rest of the patch list",
         "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}",
         "{\"spec\":{\"containers\":[{\"$patch\":\"replace\"},{\"name\":\"c\",\"image\":null}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"c\"}]}}", NULL, 0},
        {"keys containing dots never match a schema field", "{\"spec\":{\"containers.env\":[1]}}",
         "{\"spec\":{\"containers.env\":[2]}}", "{\"spec\":{\"containers.env\":[2]}}", NULL, 0},
        {"a $retainKeys map keeps only the listed keys",
         "{\"spec\":{\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":"
         "1}}}}",
         "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\"}}}",
         "{\"spec\":{\"strategy\":{\"type\":\"Recreate\"}}}", NULL, 0},
    };
    run_rows(STRATEGIC, kp_smp_schema_for_kind("Pod"), rows, COUNT(rows));
}

static void test_smp_refused(void **state)
{
    (void)state;
    char *deep = nested(KP_PATCH_MAX_DEPTH + 1);
    const struct row rows[] = {
        {"patch is a list", "{}", "[]", NULL, "the patch must be a JSON object", 0},
        {"patch is null", "{}", "null", NULL, "the patch must be a JSON object", 0},
        {"object is a string", "\"x\"", "{}", NULL, "the object must be a JSON object", 0},
        {"patch too deep", "{}", deep, NULL, "the patch nests more than 64 levels", 0},
        {"object too deep", deep, "{}", NULL, "the object nests more than 64 levels", 0},
        {"$patch: merge in a map", "{}", "{\"$patch\":\"merge\"}", NULL,
         "the top level: \"$patch\": \"merge\" is not supported in a map", 0},
        {"$patch unknown", "{\"spec\":{}}", "{\"spec\":{\"$patch\":\"bogus\"}}", NULL,
         "spec: unknown \"$patch\" value 'bogus' (want replace or delete)", 0},
        {"$patch not a string", "{}", "{\"spec\":{\"$patch\":7}}", NULL,
         "unknown \"$patch\" value '(a JSON number)'", 0},
        {"$patch: merge in a list", "{\"spec\":{\"containers\":[{\"name\":\"app\"}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"app\",\"$patch\":\"merge\"}]}}", NULL,
         "spec.containers[0]: \"$patch\": \"merge\" is not supported in a list", 0},
        {"$patch unknown in a list", "{\"spec\":{\"containers\":[{\"name\":\"app\"}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"app\",\"$patch\":\"remove\"}]}}", NULL,
         "unknown \"$patch\" value 'remove' in a list element", 0},
        {"delete without the merge key", "{\"spec\":{\"containers\":[{\"name\":\"app\"}]}}",
         "{\"spec\":{\"containers\":[{\"$patch\":\"delete\"}]}}", NULL,
         "does not contain the merge key 'name'", 0},
        {"patch element without the merge key", "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"image\":\"x\"}]}}", NULL,
         "spec.containers[1]: the patch's element 1 does not contain the merge key 'name'", 0},
        {"merge key is an object", "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
         "{\"spec\":{\"containers\":[{\"name\":{\"x\":1}}]}}", NULL,
         "the merge key 'name' must be a string, number or boolean", 0},
        {"merge key is null", "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
         "{\"spec\":{\"containers\":[{\"name\":null}]}}", NULL,
         "the merge key 'name' must be a string, number or boolean", 0},
        {"live element without the merge key", "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}", NULL,
         "spec.containers: the object's element 0 does not contain the merge key 'name'", 0},
        {"keyed list of strings", "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
         "{\"spec\":{\"containers\":[\"a\"]}}", NULL, "not all of one type", 0},
        {"keyed list of strings, new", "{\"spec\":{}}", "{\"spec\":{\"containers\":[\"a\"]}}", NULL,
         "the list merges on 'name', but its elements are not objects", 0},
        {"set of objects", "{\"metadata\":{\"finalizers\":[]}}",
         "{\"metadata\":{\"finalizers\":[{\"a\":1}]}}", NULL,
         "metadata.finalizers: cannot merge a list of objects without a merge key", 0},
        {"set of mixed types", "{\"metadata\":{\"finalizers\":[\"a\"]}}",
         "{\"metadata\":{\"finalizers\":[1]}}", NULL, "not all of one type", 0},
        {"set of lists", "{\"metadata\":{\"finalizers\":[\"a\"]}}",
         "{\"metadata\":{\"finalizers\":[[\"b\"]]}}", NULL, "lists of lists cannot be merged", 0},
        {"set holding null", "{\"metadata\":{\"finalizers\":[\"a\"]}}",
         "{\"metadata\":{\"finalizers\":[null]}}", NULL, "cannot hold null", 0},
        {"$retainKeys not a list", "{}", "{\"$retainKeys\":\"a\"}", NULL,
         "\"$retainKeys\" must be a list of field names", 0},
        {"$retainKeys element not a string", "{}", "{\"$retainKeys\":[1]}", NULL,
         "\"$retainKeys\" element 0 is not a string", 0},
        {"$retainKeys misses a patched key", "{\"spec\":{}}",
         "{\"spec\":{\"$retainKeys\":[\"a\"],\"a\":1,\"b\":2}}", NULL,
         "spec: 'b' is in the patch but not in \"$retainKeys\"", 0},
        {"$setElementOrder misspelt", "{\"spec\":{}}",
         "{\"spec\":{\"$setElementOrderX/containers\":[]}}", NULL,
         "spec.$setElementOrderX/containers: not a directive", 0},
        {"$setElementOrder without a field", "{\"spec\":{}}",
         "{\"spec\":{\"$setElementOrder/\":[]}}", NULL, "want \"$setElementOrder/<field>\"", 0},
        {"$setElementOrder not a list", "{\"spec\":{}}",
         "{\"spec\":{\"$setElementOrder/containers\":{}}}", NULL,
         "spec.$setElementOrder/containers: must be a list", 0},
        {"$setElementOrder with a patch value not a list", "{\"spec\":{}}",
         "{\"spec\":{\"$setElementOrder/containers\":[],\"containers\":{\"name\":\"a\"}}}", NULL,
         "spec.containers: the patch's value is not a list", 0},
        {"$setElementOrder with a live value not a list", "{\"spec\":{\"containers\":1}}",
         "{\"spec\":{\"$setElementOrder/containers\":[]}}", NULL,
         "spec.containers: the object's value is not a list", 0},
        {"$setElementOrder element without the merge key",
         "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
         "{\"spec\":{\"$setElementOrder/containers\":[\"a\"],\"containers\":[{\"name\":\"a\"}]}}",
         NULL, "the $setElementOrder list's element 0 is not an object", 0},
        {"$setElementOrder of objects without a merge key",
         "{\"spec\":{\"tolerations\":[{\"key\":\"a\"}]}}",
         "{\"spec\":{\"$setElementOrder/tolerations\":[{\"key\":\"a\"}]}}", NULL,
         "spec.tolerations: the list has no merge key, so its objects cannot be ordered", 0},
        {"$deleteFromPrimitiveList without a field", "{}",
         "{\"metadata\":{\"$deleteFromPrimitiveList/\":[\"a\"]}}", NULL,
         "want \"$deleteFromPrimitiveList/<field>\"", 0},
        {"$deleteFromPrimitiveList not a list", "{\"metadata\":{\"finalizers\":[\"a\"]}}",
         "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":\"a\"}}", NULL,
         "metadata.$deleteFromPrimitiveList/finalizers: must be a list", 0},
        {"$deleteFromPrimitiveList on objects", "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
         "{\"spec\":{\"$deleteFromPrimitiveList/containers\":[{\"name\":\"a\"}]}}", NULL,
         "applies to lists of strings, numbers or booleans only", 0},
        {"unknown directive", "{}", "{\"spec\":{\"$foo\":1}}", NULL,
         "spec: unknown directive '$foo'", 0},
        {"unknown directive in a new list element", "{}",
         "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"$bar\":1}]}}", NULL,
         "spec.volumes[0]: unknown directive '$bar'", 0},
    };
    run_rows(STRATEGIC, kp_smp_schema_for_kind("Pod"), rows, COUNT(rows));
    free(deep);
}

/* --- running out of memory ---------------------------------------------------------------- */

static bool allocations_limited;
static size_t allocations_left;

static void *failing_malloc(size_t size)
{
    if (allocations_limited) {
        if (allocations_left == 0) {
            return NULL;
        }
        allocations_left--;
    }
    return malloc(size);
}

/* Runs the row with the allocator failing at the first, second, ... allocation until it
 * succeeds: every failure must be KP_ERR_IO with *out NULL (and LeakSanitizer checks that
 * nothing leaked on the way). */
static void run_until_memory_suffices(enum patch_type type, const struct kp_smp_schema *schema,
                                      const struct row *row)
{
    json_t *target = parse(row->target);
    json_t *patch = parse(row->patch);
    json_t *expected = parse(row->expected);
    size_t failures = 0;
    for (size_t budget = 0;; budget++) {
        json_t *out = NULL;
        struct kp_error err;
        json_set_alloc_funcs(failing_malloc, free);
        allocations_limited = true;
        allocations_left = budget;
        enum kp_result rc = apply(type, schema, target, patch, &out, &err);
        allocations_limited = false;
        json_set_alloc_funcs(malloc, free);
        if (rc == KP_OK) {
            if (!json_equal(out, expected)) {
                fail_msg("'%s': wrong result with %zu allocations", row->name, budget);
            }
            json_decref(out);
            break;
        }
        if (rc != KP_ERR_IO || out != NULL) {
            fail_msg("'%s': with %zu allocations: %s (%s)", row->name, budget, kp_result_name(rc),
                     err.message);
        }
        failures++;
        assert_true(budget < 100000);
    }
    assert_true(failures > 0);
    json_decref(expected);
    json_decref(target);
    json_decref(patch);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    static const struct row merge = {"merge",
                                     "{\"a\":{\"b\":[1,2]},\"c\":1}",
                                     "{\"a\":{\"b\":null,\"d\":{\"e\":1}},\"c\":null}",
                                     "{\"a\":{\"d\":{\"e\":1}}}",
                                     NULL,
                                     0};
    run_until_memory_suffices(MERGE, NULL, &merge);

    static const struct row json_patch = {
        "json patch",
        "{\"a\":[1,2],\"b\":{\"c\":1}}",
        "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":{\"x\":[1]}},{\"op\":\"copy\",\"from\":\"/"
        "b\","
        "\"path\":\"/d\"},{\"op\":\"move\",\"from\":\"/d\",\"path\":\"/a/0\"},{\"op\":\"remove\","
        "\"path\":\"/b/c\"},{\"op\":\"replace\",\"path\":\"/b\",\"value\":[]},{\"op\":\"test\","
        "\"path\":\"/a/0\",\"value\":{\"c\":1}}]",
        "{\"a\":[{\"c\":1},1,2,{\"x\":[1]}],\"b\":[]}",
        NULL,
        0};
    run_until_memory_suffices(JSON_PATCH, NULL, &json_patch);

    static const struct row strategic = {
        "strategic",
        "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]},\"spec\":{\"containers\":[{\"name\":\"x\","
        "\"env\":[{\"name\":\"A\"}]},{\"name\":\"y\"}],\"volumes\":[{\"name\":\"v\",\"emptyDir\":"
        "{}}]}}",
        "{\"metadata\":{\"$setElementOrder/finalizers\":[\"c\",\"a\"],\"finalizers\":[\"c\"],"
        "\"$deleteFromPrimitiveList/finalizers\":[\"b\"]},\"spec\":{\"$setElementOrder/"
        "containers\":[{\"name\":\"z\"},{\"name\":\"x\"}],\"containers\":[{\"name\":\"z\"},{"
        "\"name\":\"x\",\"env\":[{\"name\":\"B\"}]},{\"name\":\"y\",\"$patch\":\"delete\"}],"
        "\"volumes\":[{\"name\":\"v\",\"$retainKeys\":[\"name\",\"secret\"],\"secret\":{}}],"
        "\"tolerations\":[{\"key\":\"k\"}]}}",
        "{\"metadata\":{\"finalizers\":[\"c\",\"a\"]},\"spec\":{\"containers\":[{\"name\":\"z\"},"
        "{\"name\":\"x\",\"env\":[{\"name\":\"B\"},{\"name\":\"A\"}]}],\"volumes\":[{\"name\":"
        "\"v\",\"secret\":{}}],\"tolerations\":[{\"key\":\"k\"}]}}",
        NULL,
        0};
    run_until_memory_suffices(STRATEGIC, kp_smp_schema_for_kind("Pod"), &strategic);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_patch_rfc7386_appendix_a),
        cmocka_unit_test(test_merge_patch_depth),
        cmocka_unit_test(test_json_patch_rfc6902_appendix_a),
        cmocka_unit_test(test_json_patch_duplicate_members),
        cmocka_unit_test(test_json_patch_pointers),
        cmocka_unit_test(test_json_patch_operations),
        cmocka_unit_test(test_json_patch_limits),
        cmocka_unit_test(test_smp_upstream_custom_cases),
        cmocka_unit_test(test_smp_upstream_three_way_cases),
        cmocka_unit_test(test_smp_upstream_unknown_fields),
        cmocka_unit_test(test_smp_kubectl_on_a_pod),
        cmocka_unit_test(test_smp_kinds),
        cmocka_unit_test(test_smp_cleaned_values),
        cmocka_unit_test(test_smp_refused),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
