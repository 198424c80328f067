/*
 * JSON patch (RFC 6902) with JSON pointers (RFC 6901).
 *
 * Implementation notes
 *  - The target is deep-copied once; operations apply to the copy in order and the first
 *    failure discards it (RFC 6902 §5: the whole patch fails). Values from the patch are copied
 *    in, so the result shares nothing with either input.
 *  - Pointers are checked for syntax before use: "" or '/'-separated tokens, '~' only as "~0"
 *    (~) or "~1" (/). Array indexes are "0" or digits without a leading zero (RFC 6901 §4);
 *    "-" names the position after the last element, valid only as the last token of an add
 *    (RFC 6902 §4.1). Negative indexes, which kube-apiserver's json-patch library accepts, are
 *    refused.
 *  - Depth: the copy of the target starts within KP_PATCH_MAX_DEPTH and every operation keeps
 *    it there, by checking that the value placed at a pointer of t tokens nests at most
 *    KP_PATCH_MAX_DEPTH - t levels. Add, replace and copy measure the value they place; a move
 *    to a shallower or equal level cannot deepen anything, and a move deeper measures the value.
 *  - Work is bounded: at most KP_JSON_PATCH_MAX_OPS operations, and copies (and moves to a
 *    deeper level, which must measure what they move) may together touch at most
 *    KP_JSON_PATCH_MAX_COPY_SIZE estimated bytes, so a few copy operations cannot double a
 *    document into gigabytes (kube-apiserver bounds copies the same way).
 */
#include "meta/patch.h"
#include "meta/patch_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct pointer {
    const char *text; /* borrowed from the patch */
    size_t len;
    size_t tokens;
};

struct jp {
    struct kp_error *err;
    size_t op_index;
    const char *op_name;   /* borrowed; NULL until known */
    char path_shown[112];  /* the operation's path, quoted for messages */
    size_t copy_size_used; /* against KP_JSON_PATCH_MAX_COPY_SIZE */
    char *token;           /* scratch for one unescaped token, as long as the longest pointer */
    size_t token_capacity;
};

static enum kp_result fail_code(struct jp *j, enum kp_result code, const char *fmt, ...)
    KP_PRINTF(3, 4);

static enum kp_result fail_code(struct jp *j, enum kp_result code, const char *fmt, ...)
{
    char problem[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    if (j->op_name == NULL) {
        return kp_error_set(j->err, code, "json patch operation %zu: %s", j->op_index, problem);
    }
    return kp_error_set(j->err, code, "json patch operation %zu (%s '%s'): %s", j->op_index,
                        j->op_name, j->path_shown, problem);
}

#define fail(j, ...) fail_code((j), KP_ERR_INVALID, __VA_ARGS__)

/* --- pointers ----------------------------------------------------------------------------- */

static enum kp_result pointer_parse(struct jp *j, const json_t *op, const char *member,
                                    struct pointer *out)
{
    const json_t *value = json_object_get(op, member);
    if (value == NULL) {
        return fail(j, "no \"%s\"", member);
    }
    if (!json_is_string(value)) {
        return fail(j, "\"%s\" must be a string", member);
    }
    out->text = json_string_value(value);
    out->len = json_string_length(value);
    out->tokens = 0;
    char shown[112];
    kp_patch_quote(shown, sizeof(shown), out->text, out->len, 96);
    if (out->len > 0 && out->text[0] != '/') {
        return fail(j, "\"%s\" '%s' is not a JSON pointer: it must be empty or start with '/'",
                    member, shown);
    }
    for (size_t i = 0; i < out->len; i++) {
        if (out->text[i] == '/') {
            out->tokens++;
        } else if (out->text[i] == '~' &&
                   (i + 1 == out->len || (out->text[i + 1] != '0' && out->text[i + 1] != '1'))) {
            return fail(j, "\"%s\" '%s': '~' must be followed by 0 or 1 (RFC 6901 §3)", member,
                        shown);
        }
    }
    if (out->len + 1 > j->token_capacity) {
        char *token = kp_patch_calloc(out->len + 1, 1);
        if (token == NULL) {
            return kp_patch_oom(j->err);
        }
        kp_patch_free(j->token);
        j->token = token;
        j->token_capacity = out->len + 1;
    }
    return KP_OK;
}

/* Unescapes the token starting at *cursor (just past its '/') into j->token; advances *cursor
 * to the next '/' or the end. */
static size_t next_token(struct jp *j, const char **cursor, const char *end)
{
    size_t len = 0;
    const char *at = *cursor;
    while (at < end && *at != '/') {
        if (*at == '~') {
            j->token[len++] = at[1] == '0' ? '~' : '/';
            at += 2;
        } else {
            j->token[len++] = *at++;
        }
    }
    j->token[len] = '\0';
    *cursor = at;
    return len;
}

/* An array index token (RFC 6901 §4): "0" or digits with no leading zero, below `size` (or up
 * to `size` when allow_end); "-" is `size` when allow_end. */
static enum kp_result array_index(struct jp *j, const char *token, size_t len, size_t size,
                                  bool allow_end, size_t *index)
{
    char shown[48];
    kp_patch_quote(shown, sizeof(shown), token, len, 32);
    if (len == 1 && token[0] == '-') {
        if (!allow_end) {
            return fail(j, "'-' names no existing element of the list");
        }
        *index = size;
        return KP_OK;
    }
    if (len == 0 || len > 19) {
        return fail(j, "'%s' is not a list index", shown);
    }
    size_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] < '0' || token[i] > '9') {
            return fail(j, "'%s' is not a list index", shown);
        }
        value = value * 10 + (size_t)(token[i] - '0');
    }
    if (len > 1 && token[0] == '0') {
        return fail(j, "list index '%s' has a leading zero (RFC 6901 §4)", shown);
    }
    if (value > size || (value == size && !allow_end)) {
        return fail(j, "list index %zu is past the end of the list (%zu elements)", value, size);
    }
    *index = value;
    return KP_OK;
}

/* The child of container named by the current token, or a failure naming why not. */
static enum kp_result child_of(struct jp *j, json_t *container, size_t token_len, json_t **child)
{
    *child = NULL;
    if (json_is_object(container)) {
        *child = json_object_getn(container, j->token, token_len);
        if (*child == NULL) {
            char shown[80];
            return fail(j, "the path does not exist: no member '%s'",
                        kp_patch_quote(shown, sizeof(shown), j->token, token_len, 64));
        }
        return KP_OK;
    }
    if (json_is_array(container)) {
        size_t index;
        enum kp_result rc =
            array_index(j, j->token, token_len, json_array_size(container), false, &index);
        if (rc == KP_OK) {
            *child = json_array_get(container, index);
        }
        return rc;
    }
    return fail(j, "the path does not exist: it goes through a value that is not an object or "
                   "a list");
}

/* Walks all tokens but the last: *parent is the container the last token is in, and j->token
 * holds that last token (*last_len bytes). The pointer must not be "". */
static enum kp_result resolve_parent(struct jp *j, json_t *doc, const struct pointer *ptr,
                                     json_t **parent, size_t *last_len)
{
    const char *cursor = ptr->text + 1;
    const char *end = ptr->text + ptr->len;
    json_t *current = doc;
    for (;;) {
        size_t len = next_token(j, &cursor, end);
        if (cursor == end) {
            if (!json_is_object(current) && !json_is_array(current)) {
                return fail(j, "the parent of the path is not an object or a list");
            }
            *parent = current;
            *last_len = len;
            return KP_OK;
        }
        cursor++; /* the '/' */
        enum kp_result rc = child_of(j, current, len, &current);
        if (rc != KP_OK) {
            return rc;
        }
    }
}

/* The value the pointer names (borrowed from doc). */
static enum kp_result resolve(struct jp *j, json_t *doc, const struct pointer *ptr, json_t **value)
{
    if (ptr->len == 0) {
        *value = doc;
        return KP_OK;
    }
    json_t *parent = NULL;
    size_t last_len = 0;
    enum kp_result rc = resolve_parent(j, doc, ptr, &parent, &last_len);
    return rc != KP_OK ? rc : child_of(j, parent, last_len, value);
}

/* --- operations --------------------------------------------------------------------------- */

/* Checks that value fits at a pointer of `tokens` tokens without the document nesting deeper
 * than KP_PATCH_MAX_DEPTH. If charge, the nodes measured count against the copy budget. */
static enum kp_result check_fits(struct jp *j, const json_t *value, size_t tokens, bool charge)
{
    size_t room = tokens < KP_PATCH_MAX_DEPTH ? KP_PATCH_MAX_DEPTH - tokens : 0;
    size_t visited = 0;
    size_t depth = kp_patch_depth(value, room, &visited);
    if (charge) {
        /* nodes, not bytes: a node costs at least a few bytes of JSON, strings their length */
        j->copy_size_used += visited * 8;
        if (j->copy_size_used > KP_JSON_PATCH_MAX_COPY_SIZE) {
            return fail_code(j, KP_ERR_TOO_LARGE,
                             "the patch copies more than %d bytes (estimated) in all",
                             KP_JSON_PATCH_MAX_COPY_SIZE);
        }
    }
    if (depth > room) {
        return fail(j, "the result would nest more than %d levels", KP_PATCH_MAX_DEPTH);
    }
    return KP_OK;
}

/* Adds the string bytes of a value to the copy budget (the node count is charged by
 * check_fits). */
static size_t string_bytes(const json_t *value)
{
    size_t total = 0;
    if (json_is_string(value)) {
        total += json_string_length(value);
    } else if (json_is_object(value)) {
        const char *key;
        size_t key_len;
        json_t *member;
        json_object_keylen_foreach((json_t *)value, key, key_len, member)
        {
            total += key_len + string_bytes(member);
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++) {
            total += string_bytes(json_array_get(value, i));
        }
    }
    return total;
}

/* RFC 6902 §4.1 add; value is owned (consumed on every path). */
static enum kp_result do_add(struct jp *j, json_t **doc, const struct pointer *path, json_t *value)
{
    if (path->len == 0) {
        json_decref(*doc);
        *doc = value;
        return KP_OK;
    }
    json_t *parent = NULL;
    size_t last_len = 0;
    enum kp_result rc = resolve_parent(j, *doc, path, &parent, &last_len);
    if (rc != KP_OK) {
        json_decref(value);
        return rc;
    }
    if (json_is_object(parent)) {
        return json_object_setn_new(parent, j->token, last_len, value) == 0 ? KP_OK
                                                                            : kp_patch_oom(j->err);
    }
    size_t index;
    rc = array_index(j, j->token, last_len, json_array_size(parent), true, &index);
    if (rc != KP_OK) {
        json_decref(value);
        return rc;
    }
    return json_array_insert_new(parent, index, value) == 0 ? KP_OK : kp_patch_oom(j->err);
}

/* RFC 6902 §4.2 remove; *removed (may be NULL) receives the removed value. */
static enum kp_result do_remove(struct jp *j, json_t *doc, const struct pointer *path,
                                json_t **removed)
{
    if (path->len == 0) {
        return fail(j, "cannot remove the whole document");
    }
    json_t *parent = NULL;
    size_t last_len = 0;
    json_t *target = NULL;
    enum kp_result rc = resolve_parent(j, doc, path, &parent, &last_len);
    if (rc == KP_OK) {
        rc = child_of(j, parent, last_len, &target);
    }
    if (rc != KP_OK) {
        return rc;
    }
    if (removed != NULL) {
        *removed = json_incref(target);
    }
    if (json_is_object(parent)) {
        json_object_deln(parent, j->token, last_len);
    } else {
        /* child_of checked the index; read it again from the token */
        size_t index = 0;
        rc = array_index(j, j->token, last_len, json_array_size(parent), false, &index);
        if (rc == KP_OK) {
            json_array_remove(parent, index);
        }
    }
    return rc;
}

/* RFC 6902 §4.3 replace; value is owned. */
static enum kp_result do_replace(struct jp *j, json_t **doc, const struct pointer *path,
                                 json_t *value)
{
    if (path->len == 0) {
        json_decref(*doc);
        *doc = value;
        return KP_OK;
    }
    json_t *parent = NULL;
    size_t last_len = 0;
    json_t *target = NULL;
    enum kp_result rc = resolve_parent(j, *doc, path, &parent, &last_len);
    if (rc == KP_OK) {
        rc = child_of(j, parent, last_len, &target);
    }
    if (rc != KP_OK) {
        json_decref(value);
        return rc;
    }
    if (json_is_object(parent)) {
        return json_object_setn_new(parent, j->token, last_len, value) == 0 ? KP_OK
                                                                            : kp_patch_oom(j->err);
    }
    size_t index = 0;
    rc = array_index(j, j->token, last_len, json_array_size(parent), false, &index);
    if (rc != KP_OK) {
        json_decref(value);
        return rc;
    }
    return json_array_set_new(parent, index, value) == 0 ? KP_OK : kp_patch_oom(j->err);
}

static bool numbers_equal(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        return json_integer_value(a) == json_integer_value(b);
    }
    if (json_is_real(a) && json_is_real(b)) {
        return json_real_value(a) == json_real_value(b);
    }
    const json_t *integer = json_is_integer(a) ? a : b;
    double real = json_real_value(json_is_real(a) ? a : b);
    /* exact: the real must be integral and within int64's range */
    if (!(real >= -9223372036854775808.0 && real < 9223372036854775808.0)) {
        return false;
    }
    json_int_t truncated = (json_int_t)real;
    return (double)truncated == real && truncated == json_integer_value(integer);
}

/* RFC 6902 §4.6 equality: numbers by value (1 equals 1.0), objects regardless of member
 * order. Recursion is bounded by the documents' checked depth. */
static bool rfc_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        return numbers_equal(a, b);
    }
    if (json_typeof(a) != json_typeof(b)) {
        return false;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) {
            return false;
        }
        const char *key;
        size_t key_len;
        json_t *member;
        json_object_keylen_foreach((json_t *)a, key, key_len, member)
        {
            const json_t *other = json_object_getn(b, key, key_len);
            if (other == NULL || !rfc_equal(member, other)) {
                return false;
            }
        }
        return true;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) {
            return false;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!rfc_equal(json_array_get(a, i), json_array_get(b, i))) {
                return false;
            }
        }
        return true;
    }
    return json_equal(a, b); /* strings byte for byte; true, false and null by type */
}

static enum kp_result value_member(struct jp *j, const json_t *op, const json_t **value)
{
    *value = json_object_get(op, "value");
    return *value == NULL ? fail(j, "no \"value\"") : KP_OK;
}

/* Is `path` inside `from` (from a proper prefix of path, token-wise)? Escapes are canonical, so
 * comparing the raw text is comparing tokens. */
static bool is_inside(const struct pointer *from, const struct pointer *path)
{
    return path->len > from->len && memcmp(path->text, from->text, from->len) == 0 &&
           path->text[from->len] == '/';
}

static bool op_is(const json_t *name, const char *text)
{
    return json_string_length(name) == strlen(text) &&
           memcmp(json_string_value(name), text, json_string_length(name)) == 0;
}

static enum kp_result apply_op(struct jp *j, json_t **doc, const json_t *op)
{
    if (!json_is_object(op)) {
        return fail(j, "not an object");
    }
    const json_t *name = json_object_get(op, "op");
    if (name == NULL) {
        return fail(j, "no \"op\"");
    }
    if (!json_is_string(name)) {
        return fail(j, "\"op\" must be a string");
    }
    struct pointer path;
    enum kp_result rc = pointer_parse(j, op, "path", &path);
    if (rc != KP_OK) {
        return rc;
    }
    j->op_name = json_string_value(name);
    kp_patch_quote(j->path_shown, sizeof(j->path_shown), path.text, path.len, 96);
    const json_t *value = NULL;

    if (op_is(name, "add") || op_is(name, "replace")) {
        rc = value_member(j, op, &value);
        if (rc == KP_OK) {
            rc = check_fits(j, value, path.tokens, false);
        }
        json_t *copy = NULL;
        if (rc == KP_OK) {
            copy = kp_patch_copy(value);
            rc = copy == NULL ? kp_patch_oom(j->err) : KP_OK;
        }
        if (rc == KP_OK) {
            rc = op_is(name, "add") ? do_add(j, doc, &path, copy) : do_replace(j, doc, &path, copy);
        }
        return rc;
    }
    if (op_is(name, "remove")) {
        return do_remove(j, *doc, &path, NULL);
    }
    if (op_is(name, "test")) {
        json_t *target = NULL;
        rc = value_member(j, op, &value);
        if (rc == KP_OK) {
            rc = resolve(j, *doc, &path, &target);
        }
        if (rc == KP_OK && !rfc_equal(target, value)) {
            rc = fail_code(j, KP_ERR_CONFLICT, "the value at the path differs");
        }
        return rc;
    }
    if (op_is(name, "move") || op_is(name, "copy")) {
        bool move = op_is(name, "move");
        struct pointer from;
        json_t *source = NULL;
        rc = pointer_parse(j, op, "from", &from);
        if (rc == KP_OK) {
            rc = resolve(j, *doc, &from, &source);
        }
        if (rc != KP_OK) {
            return rc;
        }
        if (move && from.len == path.len && memcmp(from.text, path.text, path.len) == 0) {
            return KP_OK; /* moving a value onto itself changes nothing */
        }
        if (move && is_inside(&from, &path)) {
            return fail(j, "cannot move a value into one of its own children (RFC 6902 §4.4)");
        }
        json_t *moving = NULL;
        if (move) {
            rc = do_remove(j, *doc, &from, &moving);
            if (rc == KP_OK && path.tokens > from.tokens) {
                /* only a move deeper can deepen the document */
                rc = check_fits(j, moving, path.tokens, true);
            }
        } else {
            j->copy_size_used += string_bytes(source);
            rc = check_fits(j, source, path.tokens, true);
            if (rc == KP_OK) {
                moving = kp_patch_copy(source);
                rc = moving == NULL ? kp_patch_oom(j->err) : KP_OK;
            }
        }
        if (rc != KP_OK) {
            json_decref(moving);
            return rc;
        }
        return do_add(j, doc, &path, moving);
    }
    char shown[48];
    j->op_name = NULL;
    return fail(j, "unknown \"op\" '%s' (want add, remove, replace, move, copy or test)",
                kp_patch_quote(shown, sizeof(shown), json_string_value(name),
                               json_string_length(name), 32));
}

enum kp_result kp_json_patch(const json_t *target, const json_t *patch, json_t **out,
                             struct kp_error *err)
{
    *out = NULL;
    if (target == NULL || patch == NULL) {
        return kp_error_set(err, KP_ERR_INTERNAL, "json patch: no target or no patch");
    }
    if (!json_is_array(patch)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "json patch: the patch must be a JSON list of operations");
    }
    if (json_array_size(patch) > KP_JSON_PATCH_MAX_OPS) {
        return kp_error_set(err, KP_ERR_TOO_LARGE, "json patch: %zu operations, at most %d allowed",
                            json_array_size(patch), KP_JSON_PATCH_MAX_OPS);
    }
    if (kp_patch_too_deep(target, KP_PATCH_MAX_DEPTH)) {
        return kp_error_set(err, KP_ERR_INVALID, "json patch: the object nests more than %d levels",
                            KP_PATCH_MAX_DEPTH);
    }
    /* the list and the operation objects hold the values: two levels more */
    if (kp_patch_too_deep(patch, KP_PATCH_MAX_DEPTH + 2)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "json patch: a value in the patch nests more than %d levels",
                            KP_PATCH_MAX_DEPTH);
    }
    json_t *doc = kp_patch_copy(target);
    if (doc == NULL) {
        return kp_patch_oom(err);
    }
    struct jp j;
    memset(&j, 0, sizeof(j));
    j.err = err;
    enum kp_result rc = KP_OK;
    for (size_t i = 0; i < json_array_size(patch) && rc == KP_OK; i++) {
        j.op_index = i;
        j.op_name = NULL;
        rc = apply_op(&j, &doc, json_array_get(patch, i));
    }
    kp_patch_free(j.token);
    if (rc != KP_OK) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return KP_OK;
}
