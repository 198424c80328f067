/*
 * meta/selector: label and field selector parsing, matching, canonical text and the JSON
 * LabelSelector. Table-driven: each accepted selector pins its canonical text (as upstream's
 * Selector.String() writes it), each rejected one the message fragment it must produce.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/selector.h"

/* selector.h: messages quote at most this many bytes of the input. */
#define QUOTE_LIMIT 64

/* A string of n copies of c (out holds n + 1 bytes), for the length limits. */
static const char *repeat(char *out, char c, size_t n)
{
    memset(out, c, n);
    out[n] = '\0';
    return out;
}

static char *canonical_text(const struct kp_selector *selector)
{
    char *text = NULL;
    struct kp_error err;
    if (kp_selector_to_string(selector, &text, &err) != KP_OK) {
        fail_msg("kp_selector_to_string: %s", err.message);
    }
    return text;
}

/* ---- label selectors: accepted ---- */

static void check_label_accepts(const char *text, const char *canonical)
{
    struct kp_selector selector;
    struct kp_error err;
    if (kp_label_selector_parse(text, &selector, &err) != KP_OK) {
        fail_msg("'%s' should parse: %s", text, err.message);
    }
    char *written = canonical_text(&selector);
    if (strcmp(written, canonical) != 0) {
        fail_msg("'%s' gives '%s', expected '%s'", text, written, canonical);
    }
    /* The canonical text is a fixed point. */
    struct kp_selector again;
    if (kp_label_selector_parse(written, &again, &err) != KP_OK) {
        fail_msg("canonical '%s' should parse: %s", written, err.message);
    }
    char *rewritten = canonical_text(&again);
    assert_string_equal(rewritten, written);
    assert_int_equal(again.count, selector.count);
    free(rewritten);
    free(written);
    kp_selector_wipe(&again);
    kp_selector_wipe(&selector);
}

static void test_label_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *canonical;
    } rows[] = {
        /* empty: selects everything */
        {"", ""},
        {"   \t\r\n", ""},
        /* each operator */
        {"a", "a"},
        {"!a", "!a"},
        {"a=b", "a=b"},
        {"a==b", "a=b"},
        {"a!=b", "a!=b"},
        {"a in (x,y)", "a in (x,y)"},
        {"a notin (x)", "a notin (x)"},
        {"a>5", "a>5"},
        {"a<10", "a<10"},
        {"a>007", "a>007"},
        {"a<9223372036854775807", "a<9223372036854775807"},
        /* whitespace around every token, or none */
        {"  a  =  b  ", "a=b"},
        {"\ta\n!=\r\nb", "a!=b"},
        {" ! a ", "!a"},
        {"a in(x)", "a in (x)"},
        {"a   in   (  x  ,  y  )", "a in (x,y)"},
        {"a>1,b<2", "a>1,b<2"},
        {"a , b", "a,b"},
        /* a missing exact value is the empty value */
        {"a=", "a="},
        {"a==", "a="},
        {"a!=", "a!="},
        {"a=,b", "a=,b"},
        /* value sets: sorted, duplicates gone, empty elements are "" */
        {"a in (y,x,y)", "a in (x,y)"},
        {"a in ()", "a in ()"},
        {"a in (,)", "a in ()"},
        {"a in (,x)", "a in (,x)"},
        {"a in (x,)", "a in (,x)"},
        {"a in (x,,y)", "a in (,x,y)"},
        {"a notin (b,a)", "a notin (a,b)"},
        /* requirements sorted by key; equal keys in the order written */
        {"b=1,a=2", "a=2,b=1"},
        {"c,!b,a in (z)", "a in (z),!b,c"},
        {"x=a,x!=b", "x=a,x!=b"},
        {"x!=b,x=a", "x!=b,x=a"},
        /* "in" and "notin" are keywords only where an operator stands */
        {"in in (in,notin)", "in in (in,notin)"},
        {"notin notin (in)", "notin notin (in)"},
        {"in", "in"},
        {"!notin", "!notin"},
        {"a=in", "a=in"},
        {"a!=notin", "a!=notin"},
        /* keys: qualified names with optional DNS subdomain prefixes; values */
        {"example.com/app=web", "example.com/app=web"},
        {"k8s.io/A_b.c-D=E.f_g-1", "k8s.io/A_b.c-D=E.f_g-1"},
        {"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/control-plane"},
        {"A=Z,0=9", "0=9,A=Z"},
        {"a=1.2.3", "a=1.2.3"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        check_label_accepts(rows[i].text, rows[i].canonical);
    }
}

static void test_label_length_limits_accepted(void **state)
{
    (void)state;
    char name[300];
    char value[300];
    char prefix[300];
    char text[1024];
    /* name part and value: 63 characters */
    snprintf(text, sizeof(text), "%s=%s", repeat(name, 'n', 63), repeat(value, 'v', 63));
    check_label_accepts(text, text);
    /* prefix: 253 characters as DNS labels of 63 */
    snprintf(prefix, sizeof(prefix), "%.63s.%.63s.%.63s.%.61s", repeat(name, 'p', 63), name, name,
             name);
    assert_int_equal(strlen(prefix), 253);
    snprintf(text, sizeof(text), "%s/%s", prefix, repeat(name, 'n', 63));
    check_label_accepts(text, text);
}

static void test_label_parsed_struct(void **state)
{
    (void)state;
    struct kp_selector selector;
    struct kp_error err;
    assert_int_equal(kp_label_selector_parse("b in (y,x,y), a==1, !c, d, e>3, f<4, g notin (z)",
                                             &selector, &err),
                     KP_OK);
    assert_int_equal(selector.count, 7);
    assert_false(kp_selector_is_empty(&selector));
    /* in the order written */
    const struct kp_selector_requirement *r = selector.requirements;
    assert_string_equal(r[0].key, "b");
    assert_int_equal(r[0].op, KP_SEL_IN);
    assert_int_equal(r[0].values.count, 2);
    assert_string_equal(r[0].values.items[0], "x");
    assert_string_equal(r[0].values.items[1], "y");
    assert_string_equal(r[1].key, "a");
    assert_int_equal(r[1].op, KP_SEL_EQUALS);
    assert_int_equal(r[1].values.count, 1);
    assert_string_equal(r[1].values.items[0], "1");
    assert_int_equal(r[2].op, KP_SEL_DOES_NOT_EXIST);
    assert_int_equal(r[2].values.count, 0);
    assert_int_equal(r[3].op, KP_SEL_EXISTS);
    assert_int_equal(r[3].values.count, 0);
    assert_int_equal(r[4].op, KP_SEL_GREATER_THAN);
    assert_int_equal(r[5].op, KP_SEL_LESS_THAN);
    assert_int_equal(r[6].op, KP_SEL_NOT_IN);
    kp_selector_wipe(&selector);
    assert_int_equal(selector.count, 0);
    assert_null(selector.requirements);
    kp_selector_wipe(&selector); /* twice is harmless */
    kp_selector_wipe(NULL);
    assert_true(kp_selector_is_empty(&selector));
    assert_true(kp_selector_is_empty(NULL));

    assert_int_equal(kp_label_selector_parse(" ", &selector, &err), KP_OK);
    assert_true(kp_selector_is_empty(&selector));
    kp_selector_wipe(&selector);
}

/* ---- label selectors: rejected ---- */

static void check_label_rejects(const char *text, const char *fragment)
{
    struct kp_selector selector;
    struct kp_error err;
    enum kp_result rc = kp_label_selector_parse(text, &selector, &err);
    if (rc != KP_ERR_INVALID) {
        fail_msg("'%s' should be rejected, got %s", text, kp_result_name(rc));
    }
    if (strstr(err.message, fragment) == NULL) {
        fail_msg("'%s': message '%s' lacks '%s'", text, err.message, fragment);
    }
    if (strncmp(err.message, "label selector", 14) != 0) {
        fail_msg("'%s': message '%s' does not say what it parsed", text, err.message);
    }
    assert_int_equal(selector.count, 0);
    assert_null(selector.requirements);
    kp_selector_wipe(&selector);
}

static void test_label_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *fragment;
    } rows[] = {
        /* structure */
        {",", "found ',', expected '!' or a key"},
        {"a,", "found end of selector, expected '!' or a key"},
        {"a, ", "found end of selector, expected '!' or a key"},
        {"a,,b", "found ',', expected '!' or a key"},
        {"a b", "found 'b', expected an operator"},
        {"a=b c", "found 'c', expected ',' or end of selector"},
        {"a=b=c", "found '=', expected ',' or end of selector"},
        {"x in (y) z", "found 'z', expected ',' or end of selector"},
        {"a notin (b))", "found ')', expected ',' or end of selector"},
        {"(a)", "found '(', expected '!' or a key"},
        {"=a", "found '=', expected '!' or a key"},
        {"a===b", "found '=', expected a value"},
        {"a>=1", "found '=', expected a value"},
        {"a=(b)", "found '(', expected a value"},
        /* '!' takes a key and nothing else */
        {"!", "found end of selector, expected a key after '!'"},
        {"!!a", "found '!', expected a key after '!'"},
        {"!a=b", "found '=' after '!a', expected ',' or end of selector ('!' takes a key only)"},
        {"!a in (b)", "found 'in' after '!a'"},
        {"!a!=b", "found '!=' after '!a'"},
        /* value sets */
        {"a in", "found end of selector, expected '(' after in or notin"},
        {"a in b", "found 'b', expected '(' after in or notin"},
        {"a notin x,y", "found 'x', expected '(' after in or notin"},
        {"a in (", "found end of selector, expected ',', ')' or a value"},
        {"a in (b", "found end of selector, expected ',' or ')'"},
        {"a in (b,", "found end of selector, expected ',' or a value"},
        {"a in (b c)", "found 'c', expected ',' or ')'"},
        {"a in (b,=)", "found '=', expected ',' or a value"},
        {"a in (,,)", "found ')', expected ',' or a value"},
        {"a in (=)", "found '=', expected ',', ')' or a value"},
        /* keys */
        {"-a", "invalid key '-a': name part must consist of"},
        {"a-=b", "invalid key 'a-'"},
        {"a/", "invalid key 'a/': name part must not be empty"},
        {"/a", "invalid key '/a': prefix part must not be empty"},
        {"a/b/c", "invalid key 'a/b/c'"},
        {"Example.com/a", "prefix part must be a lowercase RFC 1123 subdomain"},
        {"a_b/c", "prefix part must be a lowercase RFC 1123 subdomain"},
        {"a..b/c", "prefix part must be a lowercase RFC 1123 subdomain"},
        {"a.b in (c)x", "found 'x', expected ',' or end of selector"},
        {"\xc3\xa9=b", "invalid key '\\xc3\\xa9'"},
        {"!-a", "invalid key '-a'"},
        {"a*b", "invalid key 'a*b'"},
        /* values */
        {"a=-b", "invalid value '-b' for key 'a'"},
        {"a=b_", "invalid value 'b_' for key 'a'"},
        {"a!=b/c", "invalid value 'b/c' for key 'a'"},
        {"a in (x,y*)", "invalid value 'y*' for key 'a'"},
        {"a notin (.)", "invalid value '.' for key 'a'"},
        /* > and < take an integer */
        {"a>b", "value 'b' for key 'a' must be an integer for '>'"},
        {"a<", "value '' for key 'a' must be an integer for '<'"},
        {"a>1.5", "must be an integer for '>'"},
        {"a>1e3", "must be an integer for '>'"},
        {"a<9223372036854775808", "must be an integer for '<'"},
        {"a>99999999999999999999", "must be an integer for '>'"},
        {"a>-1", "invalid value '-1' for key 'a'"}, /* a label value starts alphanumeric */
        {"a in (1)x", "found 'x'"},
        /* bytes */
        {"a\x01=b", "control character 0x01 at byte 1"},
        {"a=b\x7f", "control character 0x7f at byte 3"},
        {"a\v", "control character 0x0b"},
        {"a=\xff", "not valid UTF-8"},
        {"a=\xc3\x28", "not valid UTF-8"},
        {"a=\xed\xa0\x80", "not valid UTF-8"}, /* a surrogate */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        check_label_rejects(rows[i].text, rows[i].fragment);
    }
}

static void test_label_length_limits_rejected(void **state)
{
    (void)state;
    char name[300];
    char prefix[300];
    char text[1024];
    snprintf(text, sizeof(text), "%s=b", repeat(name, 'n', 64));
    check_label_rejects(text, "name part must be no more than 63 characters");
    snprintf(text, sizeof(text), "a=%s", repeat(name, 'v', 64));
    check_label_rejects(text, "must be no more than 63 characters");
    snprintf(text, sizeof(text), "a in (b,%s)", repeat(name, 'v', 64));
    check_label_rejects(text, "must be no more than 63 characters");
    snprintf(prefix, sizeof(prefix), "%.63s.%.63s.%.63s.%.62s", repeat(name, 'p', 63), name, name,
             name);
    assert_int_equal(strlen(prefix), 254);
    snprintf(text, sizeof(text), "%s/a", prefix);
    check_label_rejects(text, "prefix part must be no more than 253 characters");
}

static void test_label_text_limit(void **state)
{
    (void)state;
    /* "a,a,...,a" padded with spaces to exactly KP_SELECTOR_TEXT_MAX bytes passes; one byte
     * more is refused before parsing. */
    char *text = malloc(KP_SELECTOR_TEXT_MAX + 2);
    assert_non_null(text);
    for (size_t i = 0; i < KP_SELECTOR_TEXT_MAX; i++) {
        text[i] = i % 2 == 0 ? 'a' : ',';
    }
    text[KP_SELECTOR_TEXT_MAX - 1] = ' ';
    text[KP_SELECTOR_TEXT_MAX] = '\0';
    struct kp_selector selector;
    struct kp_error err;
    assert_int_equal(kp_label_selector_parse(text, &selector, &err), KP_OK);
    assert_int_equal(selector.count, KP_SELECTOR_TEXT_MAX / 2);
    kp_selector_wipe(&selector);
    text[KP_SELECTOR_TEXT_MAX] = ' ';
    text[KP_SELECTOR_TEXT_MAX + 1] = '\0';
    assert_int_equal(kp_label_selector_parse(text, &selector, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "label selector too long: more than 8192 bytes"));
    assert_int_equal(selector.count, 0);
    assert_int_equal(kp_field_selector_parse(text, &selector, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "field selector too long"));
    free(text);
}

static void test_messages_quote_at_most_64_bytes(void **state)
{
    (void)state;
    char key[300];
    char text[400];
    /* A 200-character key that is invalid (ends in '-'): the message shows 64 bytes and "...". */
    repeat(key, 'k', 200);
    key[199] = '-';
    snprintf(text, sizeof(text), "%s=v", key);
    struct kp_selector selector;
    struct kp_error err;
    assert_int_equal(kp_label_selector_parse(text, &selector, &err), KP_ERR_INVALID);
    char expected[80];
    snprintf(expected, sizeof(expected), "invalid key '%.*s...'", QUOTE_LIMIT, key);
    assert_non_null(strstr(err.message, expected));
    char too_many[80];
    assert_null(strstr(err.message, repeat(too_many, 'k', QUOTE_LIMIT + 1)));
    /* A field term with a non-ASCII character is quoted as \x escapes. */
    assert_int_equal(kp_field_selector_parse("caf\xc3\xa9", &selector, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "'caf\\xc3\\xa9'"));
}

/* ---- field selectors ---- */

static void test_field_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *canonical;
        const char *first_key;   /* of requirements[0], NULL for the empty selector */
        const char *first_value; /* unescaped */
        enum kp_selector_op first_op;
    } rows[] = {
        {"", "", NULL, NULL, KP_SEL_EQUALS},
        {",", "", NULL, NULL, KP_SEL_EQUALS},
        {",,,", "", NULL, NULL, KP_SEL_EQUALS},
        {"metadata.name=web", "metadata.name=web", "metadata.name", "web", KP_SEL_EQUALS},
        {"metadata.name==web", "metadata.name=web", "metadata.name", "web", KP_SEL_EQUALS},
        {"spec.nodeName!=n1", "spec.nodeName!=n1", "spec.nodeName", "n1", KP_SEL_NOT_EQUALS},
        {"a=b,", "a=b", "a", "b", KP_SEL_EQUALS},
        {",a=b", "a=b", "a", "b", KP_SEL_EQUALS},
        {"b=1,a=2", "a=2,b=1", "b", "1", KP_SEL_EQUALS},
        {"a=", "a=", "a", "", KP_SEL_EQUALS},
        {"a!=", "a!=", "a", "", KP_SEL_NOT_EQUALS},
        {"=a", "=a", "", "a", KP_SEL_EQUALS},
        /* no trimming: the key is "a " and the value " b" */
        {"a = b", "a = b", "a ", " b", KP_SEL_EQUALS},
        /* escapes in values */
        {"a=x\\,y\\=z\\\\", "a=x\\,y\\=z\\\\", "a", "x,y=z\\", KP_SEL_EQUALS},
        {"a!=\\=", "a!=\\=", "a", "=", KP_SEL_NOT_EQUALS},
        /* the key is raw: a backslash there stays, and escapes a comma only for splitting */
        {"a\\,b=c", "a\\,b=c", "a\\,b", "c", KP_SEL_EQUALS},
        {"a\\=b", "a\\=b", "a\\", "b", KP_SEL_EQUALS},
        /* the first operator wins; '!' alone is part of the key or value */
        {"a!b=c", "a!b=c", "a!b", "c", KP_SEL_EQUALS},
        {"a=!b", "a=!b", "a", "!b", KP_SEL_EQUALS},
        {"a!=!b", "a!=!b", "a", "!b", KP_SEL_NOT_EQUALS},
        {"x in (y)=z", "x in (y)=z", "x in (y)", "z", KP_SEL_EQUALS},
        {"status.phase=Running,metadata.namespace!=kube-system",
         "metadata.namespace!=kube-system,status.phase=Running", "status.phase", "Running",
         KP_SEL_EQUALS},
        {"a=caf\xc3\xa9", "a=caf\xc3\xa9", "a", "caf\xc3\xa9", KP_SEL_EQUALS},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_selector selector;
        struct kp_error err;
        if (kp_field_selector_parse(rows[i].text, &selector, &err) != KP_OK) {
            fail_msg("row %zu '%s' should parse: %s", i, rows[i].text, err.message);
        }
        if (rows[i].first_key == NULL) {
            assert_true(kp_selector_is_empty(&selector));
        } else {
            assert_string_equal(selector.requirements[0].key, rows[i].first_key);
            assert_int_equal(selector.requirements[0].op, rows[i].first_op);
            assert_int_equal(selector.requirements[0].values.count, 1);
            assert_string_equal(selector.requirements[0].values.items[0], rows[i].first_value);
        }
        char *written = canonical_text(&selector);
        if (strcmp(written, rows[i].canonical) != 0) {
            fail_msg("row %zu '%s' gives '%s', expected '%s'", i, rows[i].text, written,
                     rows[i].canonical);
        }
        struct kp_selector again;
        if (kp_field_selector_parse(written, &again, &err) != KP_OK) {
            fail_msg("row %zu canonical '%s' should parse: %s", i, written, err.message);
        }
        char *rewritten = canonical_text(&again);
        assert_string_equal(rewritten, written);
        free(rewritten);
        free(written);
        kp_selector_wipe(&again);
        kp_selector_wipe(&selector);
    }
}

static void test_field_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *fragment;
    } rows[] = {
        /* no =, == or != : set-based and existence forms are label-only */
        {"a", "cannot understand 'a': expected key=value, key==value or key!=value"},
        {"!a", "cannot understand '!a'"},
        {"a in (b)", "cannot understand 'a in (b)'"},
        {"a notin (b)", "cannot understand 'a notin (b)'"},
        {"a>1", "cannot understand 'a>1'"},
        {"a<1", "cannot understand 'a<1'"},
        {" ", "cannot understand ' '"},
        {"a=b,c", "cannot understand 'c'"},
        {"a=b,c,d=e", "cannot understand 'c'"},
        /* values: unescaped '=' (',' always splits), bad escapes */
        {"a=b=c", "unescaped '=' in the value of term 'a=b=c'"},
        {"a===b", "unescaped '=' in the value of term 'a===b'"},
        {"a!==b", "unescaped '=' in the value of term 'a!==b'"},
        {"a=b\\", "term 'a=b\\' ends in a lone '\\'"},
        {"a=b\\,c\\", "term 'a=b\\,c\\' ends in a lone '\\'"},
        {"a=\\!b", "invalid escape sequence '\\!' in term 'a=\\!b'"},
        {"a=\\n", "invalid escape sequence '\\n'"},
        {"a=\\\xc3\xa9", "invalid escape sequence '\\\\xc3'"},
        /* bytes */
        {"a=b\n", "field selector: control character 0x0a at byte 3"},
        {"a\tb=c", "control character 0x09 at byte 1"},
        {"a=\x1b[31m", "control character 0x1b"},
        {"a=\xc3\x28", "field selector: not valid UTF-8"},
        {"a=\xf8\x88\x80\x80\x80", "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_selector selector;
        struct kp_error err;
        enum kp_result rc = kp_field_selector_parse(rows[i].text, &selector, &err);
        if (rc != KP_ERR_INVALID) {
            fail_msg("row %zu '%s' should be rejected, got %s", i, rows[i].text,
                     kp_result_name(rc));
        }
        if (strstr(err.message, rows[i].fragment) == NULL) {
            fail_msg("row %zu '%s': message '%s' lacks '%s'", i, rows[i].text, err.message,
                     rows[i].fragment);
        }
        assert_int_equal(selector.count, 0);
        assert_null(selector.requirements);
    }
}

/* ---- matching ---- */

static void test_label_matching(void **state)
{
    (void)state;
    static const struct {
        const char *selector;
        const char *labels; /* JSON; NULL for no labels at all */
        bool matches;
    } rows[] = {
        {"", NULL, true},
        {"", "{\"a\":\"b\"}", true},
        {"a=b", "{\"a\":\"b\"}", true},
        {"a=b", "{\"a\":\"c\"}", false},
        {"a=b", "{}", false},
        {"a=b", NULL, false},
        {"a=", "{\"a\":\"\"}", true},
        {"a=", "{}", false}, /* an absent label is not the empty value */
        /* != and notin hold when the key is absent */
        {"a!=b", "{}", true},
        {"a!=b", NULL, true},
        {"a!=b", "{\"a\":\"b\"}", false},
        {"a!=b", "{\"a\":\"c\"}", true},
        {"a in (x,y)", "{\"a\":\"y\"}", true},
        {"a in (x,y)", "{\"a\":\"z\"}", false},
        {"a in (x,y)", "{}", false},
        {"a in ()", "{\"a\":\"\"}", true},
        {"a notin (x,y)", "{}", true},
        {"a notin (x,y)", "{\"a\":\"x\"}", false},
        {"a notin (x,y)", "{\"a\":\"z\"}", true},
        {"a", "{\"a\":\"\"}", true},
        {"a", "{\"b\":\"a\"}", false},
        {"!a", "{}", true},
        {"!a", "{\"a\":\"x\"}", false},
        /* > and < compare base-10 int64 values; anything else never matches */
        {"a>5", "{\"a\":\"6\"}", true},
        {"a>5", "{\"a\":\"5\"}", false},
        {"a>5", "{\"a\":\"05\"}", false},
        {"a>5", "{\"a\":\"x\"}", false},
        {"a>5", "{\"a\":\"\"}", false},
        {"a>5", "{}", false},
        {"a<5", "{}", false},
        {"a<5", "{\"a\":\"-7\"}", true},
        {"a<5", "{\"a\":\"+3\"}", true},
        {"a<5", "{\"a\":\"5.0\"}", false},
        {"a<5", "{\"a\":\" 3\"}", false},
        {"a>1", "{\"a\":\"99999999999999999999\"}", false},
        {"a>1", "{\"a\":\"9223372036854775807\"}", true},
        {"a<0", "{\"a\":\"-9223372036854775808\"}", true},
        {"a<0", "{\"a\":\"-9223372036854775809\"}", false},
        /* a label that is not a string exists but equals nothing */
        {"a=1", "{\"a\":1}", false},
        {"a>0", "{\"a\":1}", false},
        {"a in (1)", "{\"a\":1}", false},
        {"a!=1", "{\"a\":1}", true},
        {"a notin (1)", "{\"a\":1}", true},
        {"a", "{\"a\":null}", true},
        {"!a", "{\"a\":null}", false},
        /* labels that are not an object are no labels */
        {"!a", "[\"a\"]", true},
        {"a", "[\"a\"]", false},
        /* every requirement must hold */
        {"a=b,c!=d", "{\"a\":\"b\",\"c\":\"e\"}", true},
        {"a=b,c!=d", "{\"a\":\"b\",\"c\":\"d\"}", false},
        {"app in (web,api),tier,!canary,version>2",
         "{\"app\":\"api\",\"tier\":\"x\",\"version\":\"3\"}", true},
        {"app in (web,api),tier,!canary,version>2",
         "{\"app\":\"api\",\"tier\":\"x\",\"version\":\"3\",\"canary\":\"true\"}", false},
        {"example.com/app=web", "{\"example.com/app\":\"web\"}", true},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_selector selector;
        struct kp_error err;
        if (kp_label_selector_parse(rows[i].selector, &selector, &err) != KP_OK) {
            fail_msg("row %zu '%s': %s", i, rows[i].selector, err.message);
        }
        json_t *labels = NULL;
        if (rows[i].labels != NULL) {
            json_error_t json_err;
            labels = json_loads(rows[i].labels, 0, &json_err);
            assert_non_null(labels);
        }
        if (kp_selector_matches_labels(&selector, labels) != rows[i].matches) {
            fail_msg("row %zu: '%s' on %s should %s", i, rows[i].selector,
                     rows[i].labels != NULL ? rows[i].labels : "(none)",
                     rows[i].matches ? "match" : "not match");
        }
        json_decref(labels);
        kp_selector_wipe(&selector);
    }
}

static void test_label_matching_embedded_nul(void **state)
{
    (void)state;
    /* "b\0x" is not "b": values compare by length too. */
    json_t *labels = json_object();
    assert_int_equal(json_object_set_new(labels, "a", json_stringn("b\0x", 3)), 0);
    struct kp_selector selector;
    struct kp_error err;
    assert_int_equal(kp_label_selector_parse("a=b", &selector, &err), KP_OK);
    assert_false(kp_selector_matches_labels(&selector, labels));
    kp_selector_wipe(&selector);
    assert_int_equal(kp_label_selector_parse("a!=b", &selector, &err), KP_OK);
    assert_true(kp_selector_matches_labels(&selector, labels));
    kp_selector_wipe(&selector);
    json_decref(labels);
}

/* A pod on node-1 named web-0 with no spec.serviceAccountName. */
static const char *pod_field(void *context, const char *key)
{
    int *calls = context;
    (*calls)++;
    if (strcmp(key, "metadata.name") == 0) {
        return "web-0";
    }
    if (strcmp(key, "spec.nodeName") == 0) {
        return "node-1";
    }
    if (strcmp(key, "metadata.annotation") == 0) {
        return "x,y=z";
    }
    return NULL;
}

static void test_field_matching(void **state)
{
    (void)state;
    static const struct {
        const char *selector;
        bool matches;
    } rows[] = {
        {"", true},
        {"spec.nodeName=node-1", true},
        {"spec.nodeName==node-1", true},
        {"spec.nodeName=node-2", false},
        {"spec.nodeName!=node-2", true},
        {"spec.nodeName!=node-1", false},
        {"metadata.annotation=x\\,y\\=z", true},
        /* an absent field compares as "" (fields.Set.Get) */
        {"spec.serviceAccountName!=default", true},
        {"spec.serviceAccountName=default", false},
        {"spec.serviceAccountName=", true},
        {"spec.serviceAccountName!=", false},
        {"spec.nodeName=", false},
        {"metadata.name=web-0,spec.nodeName=node-1", true},
        {"metadata.name=web-0,spec.nodeName=node-2", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_selector selector;
        struct kp_error err;
        if (kp_field_selector_parse(rows[i].selector, &selector, &err) != KP_OK) {
            fail_msg("row %zu '%s': %s", i, rows[i].selector, err.message);
        }
        int calls = 0;
        if (kp_selector_matches_fields(&selector, pod_field, &calls) != rows[i].matches) {
            fail_msg("row %zu: '%s' should %s", i, rows[i].selector,
                     rows[i].matches ? "match" : "not match");
        }
        assert_true(calls <= (int)selector.count);
        kp_selector_wipe(&selector);
    }
}

static void test_required_value(void **state)
{
    (void)state;
    static const struct {
        bool label;
        const char *selector;
        const char *key;
        const char *value; /* NULL: none */
    } rows[] = {
        {false, "spec.nodeName=node-1", "spec.nodeName", "node-1"},
        {false, "metadata.name=a,spec.nodeName==node-1", "spec.nodeName", "node-1"},
        {false, "spec.nodeName!=node-1", "spec.nodeName", NULL},
        {false, "spec.nodeName=", "spec.nodeName", ""},
        {false, "spec.nodeNameX=node-1", "spec.nodeName", NULL},
        {false, "", "spec.nodeName", NULL},
        {true, "a=x", "a", "x"},
        {true, "a in (x)", "a", "x"},
        {true, "a in (x,y)", "a", NULL},
        {true, "a notin (x)", "a", NULL},
        {true, "a", "a", NULL},
        {true, "a!=x,a=y", "a", "y"},
        {true, "b=1", "a", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_selector selector;
        struct kp_error err;
        enum kp_result rc = rows[i].label
                                ? kp_label_selector_parse(rows[i].selector, &selector, &err)
                                : kp_field_selector_parse(rows[i].selector, &selector, &err);
        assert_int_equal(rc, KP_OK);
        const char *value = kp_selector_required_value(&selector, rows[i].key);
        if (rows[i].value == NULL) {
            if (value != NULL) {
                fail_msg("row %zu '%s': got '%s', expected none", i, rows[i].selector, value);
            }
        } else {
            if (value == NULL || strcmp(value, rows[i].value) != 0) {
                fail_msg("row %zu '%s': got '%s', expected '%s'", i, rows[i].selector,
                         value != NULL ? value : "(none)", rows[i].value);
            }
        }
        kp_selector_wipe(&selector);
    }
    assert_null(kp_selector_required_value(NULL, "a"));
}

static void test_to_string_refuses_a_broken_selector(void **state)
{
    (void)state;
    /* A hand-built "in" without values breaks the struct's invariant: an internal error, not a
     * text that would parse differently. */
    struct kp_selector_requirement requirement = {.key = "a", .op = KP_SEL_IN};
    struct kp_selector selector = {.requirements = &requirement, .count = 1};
    char *text = NULL;
    struct kp_error err;
    assert_int_equal(kp_selector_to_string(&selector, &text, &err), KP_ERR_INTERNAL);
    assert_null(text);
    assert_non_null(strstr(err.message, "key 'a'"));
    /* NULL is the empty selector. */
    assert_int_equal(kp_selector_to_string(NULL, &text, &err), KP_OK);
    assert_string_equal(text, "");
    free(text);
}

/* ---- JSON LabelSelector ---- */

static void test_from_json_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *canonical;
    } rows[] = {
        {"{}", ""},
        {"{\"matchLabels\":null,\"matchExpressions\":null}", ""},
        {"{\"matchLabels\":{},\"matchExpressions\":[]}", ""},
        {"{\"matchLabels\":{\"app\":\"web\"}}", "app=web"},
        {"{\"matchLabels\":{\"b\":\"2\",\"a\":\"\"}}", "a=,b=2"},
        {"{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"b\",\"a\"]},"
         "{\"key\":\"env\",\"operator\":\"NotIn\",\"values\":[\"prod\"]},"
         "{\"key\":\"x\",\"operator\":\"Exists\"},"
         "{\"key\":\"y\",\"operator\":\"DoesNotExist\",\"values\":[]},"
         "{\"key\":\"z\",\"operator\":\"Exists\",\"values\":null}]}",
         "env notin (prod),tier in (a,b),x,!y,z"},
        {"{\"matchLabels\":{\"rbac.example.com/aggregate-to-edit\":\"true\"},"
         "\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"web\"]}],"
         "\"unknownMember\":1}",
         "app in (web),rbac.example.com/aggregate-to-edit=true"},
        /* values as given: duplicates stay (upstream copies them) */
        {"{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"a\",\"a\"]}]}",
         "k in (a,a)"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_error_t json_err;
        json_t *object = json_loads(rows[i].json, 0, &json_err);
        assert_non_null(object);
        struct kp_selector selector;
        struct kp_error err;
        if (kp_label_selector_from_json(object, &selector, &err) != KP_OK) {
            fail_msg("row %zu should convert: %s", i, err.message);
        }
        char *written = canonical_text(&selector);
        if (strcmp(written, rows[i].canonical) != 0) {
            fail_msg("row %zu gives '%s', expected '%s'", i, written, rows[i].canonical);
        }
        free(written);
        kp_selector_wipe(&selector);
        json_decref(object);
    }
}

static void test_from_json_matches(void **state)
{
    (void)state;
    json_error_t json_err;
    json_t *object = json_loads("{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":["
                                "{\"key\":\"env\",\"operator\":\"NotIn\",\"values\":[\"prod\"]},"
                                "{\"key\":\"canary\",\"operator\":\"DoesNotExist\"}]}",
                                0, &json_err);
    assert_non_null(object);
    struct kp_selector selector;
    struct kp_error err;
    assert_int_equal(kp_label_selector_from_json(object, &selector, &err), KP_OK);
    assert_int_equal(selector.count, 3);
    assert_string_equal(selector.requirements[0].key, "app");
    assert_int_equal(selector.requirements[0].op, KP_SEL_EQUALS);
    json_t *labels = json_pack("{s:s}", "app", "web");
    assert_true(kp_selector_matches_labels(&selector, labels));
    json_object_set_new(labels, "env", json_string("prod"));
    assert_false(kp_selector_matches_labels(&selector, labels));
    json_object_set_new(labels, "env", json_string("dev"));
    assert_true(kp_selector_matches_labels(&selector, labels));
    json_object_set_new(labels, "canary", json_string("1"));
    assert_false(kp_selector_matches_labels(&selector, labels));
    assert_string_equal(kp_selector_required_value(&selector, "app"), "web");
    json_decref(labels);
    kp_selector_wipe(&selector);
    json_decref(object);
}

static void test_from_json_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *json; /* NULL: pass NULL */
        const char *fragment;
    } rows[] = {
        {NULL, "label selector: must be a JSON object"},
        {"[]", "must be a JSON object"},
        {"\"app=web\"", "must be a JSON object"},
        {"{\"matchLabels\":[]}", "matchLabels must be an object"},
        {"{\"matchLabels\":{\"a\":1}}", "matchLabels.a must be a string"},
        {"{\"matchLabels\":{\"a\":null}}", "matchLabels.a must be a string"},
        {"{\"matchLabels\":{\"-a\":\"b\"}}", "matchLabels: invalid key '-a'"},
        {"{\"matchLabels\":{\"a\":\"-b\"}}", "matchLabels: invalid value '-b' for key 'a'"},
        {"{\"matchLabels\":{\"a\":\"b\\u0000c\"}}", "matchLabels.a must be a string"},
        {"{\"matchExpressions\":{}}", "matchExpressions must be an array"},
        {"{\"matchExpressions\":[1]}", "matchExpressions[0] must be an object"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},"
         "{\"operator\":\"Exists\"}]}",
         "matchExpressions[1].key must be a string"},
        {"{\"matchExpressions\":[{\"key\":\"a\"}]}",
         "matchExpressions[0].operator must be a string"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Gt\",\"values\":[\"1\"]}]}",
         "matchExpressions[0].operator: 'Gt' is not a valid label selector operator"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"in\",\"values\":[\"1\"]}]}",
         "'in' is not a valid label selector operator"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}",
         "matchExpressions[0].values: must not be empty for the operator In"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[]}]}",
         "must not be empty for the operator NotIn"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}",
         "must be empty for the operator Exists"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":\"x\"}]}",
         "matchExpressions[0].values must be an array of strings"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"x\",2]}]}",
         "matchExpressions[0].values[1] must be a string"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"a b\"]}]}",
         "matchExpressions[0]: invalid value 'a b' for key 'a'"},
        {"{\"matchExpressions\":[{\"key\":\"a/b/c\",\"operator\":\"Exists\"}]}",
         "matchExpressions[0]: invalid key 'a/b/c'"},
        {"{\"matchExpressions\":[{\"key\":\"a\\u0000b\",\"operator\":\"Exists\"}]}",
         "matchExpressions[0].key must be a string"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *object = NULL;
        if (rows[i].json != NULL) {
            json_error_t json_err;
            object = json_loads(rows[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &json_err);
            if (object == NULL) {
                fail_msg("row %zu: bad test JSON: %s", i, json_err.text);
            }
        }
        struct kp_selector selector;
        struct kp_error err;
        enum kp_result rc = kp_label_selector_from_json(object, &selector, &err);
        if (rc != KP_ERR_INVALID) {
            fail_msg("row %zu should be rejected, got %s", i, kp_result_name(rc));
        }
        if (strstr(err.message, rows[i].fragment) == NULL) {
            fail_msg("row %zu: message '%s' lacks '%s'", i, err.message, rows[i].fragment);
        }
        assert_int_equal(selector.count, 0);
        assert_null(selector.requirements);
        json_decref(object);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_accepts),
        cmocka_unit_test(test_label_length_limits_accepted),
        cmocka_unit_test(test_label_parsed_struct),
        cmocka_unit_test(test_label_rejects),
        cmocka_unit_test(test_label_length_limits_rejected),
        cmocka_unit_test(test_label_text_limit),
        cmocka_unit_test(test_messages_quote_at_most_64_bytes),
        cmocka_unit_test(test_field_accepts),
        cmocka_unit_test(test_field_rejects),
        cmocka_unit_test(test_label_matching),
        cmocka_unit_test(test_label_matching_embedded_nul),
        cmocka_unit_test(test_field_matching),
        cmocka_unit_test(test_required_value),
        cmocka_unit_test(test_to_string_refuses_a_broken_selector),
        cmocka_unit_test(test_from_json_accepts),
        cmocka_unit_test(test_from_json_matches),
        cmocka_unit_test(test_from_json_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
