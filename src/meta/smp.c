/*
 * Strategic merge patch: the apply half of k8s.io/apimachinery/pkg/util/strategicpatch
 * (patch.go: StrategicMergeMapPatch with MergeParallelList and IgnoreUnmatchedNulls, which is
 * how kube-apiserver applies a PATCH with application/strategic-merge-patch+json).
 *
 * Implementation notes
 *  - The original is deep-copied once ("work"); every step mutates that copy and only reads the
 *    patch. Nothing from the patch is stored by reference: values are copied, scalars too, so
 *    the result shares no node with either input.
 *  - merge_map follows upstream's mergeMap: (1) "$patch" decides the whole map; (2)
 *    "$retainKeys" prunes the original (applyRetainKeysDirective); (3) every
 *    "$setElementOrder/<f>" merges list f and orders it (mergePatchIntoOriginal); (4) the other
 *    members merge in patch order; (5) "$deleteFromPrimitiveList/<f>" removes values. Upstream
 *    runs (4) and (5) in one loop over a Go map, so a patch holding both f and its deletion list
 *    (without $setElementOrder/f) has a random outcome there; kpki deletes last.
 *  - A patch value with nothing to merge with (a new member, a changed type, a replaced list)
 *    is "cleaned": applied to an empty value of its own type, which drops nulls and applies and
 *    removes directives. Upstream (since 1.30) drops nulls there and drops any map carrying
 *    "$patch" (removeDirectives); kpki applies the directive instead, so
 *    {"$patch": "replace", ...} means the same whether or not the field existed. Elements of a
 *    replaced list that carry "$patch" are dropped, as upstream does.
 *  - Lists merge through hash indexes on the merge key (or the value, for primitives) instead of
 *    upstream's linear scans: a list of n elements costs O(n log n), not O(n^2). The ordering is
 *    upstream's (normalizeElementOrder + mergeSortedSlice): patch elements in patch order,
 *    server-only elements in live order, a server-only element placed before the first patch
 *    element that follows it in the live list, and a new element (absent from the live list)
 *    ahead of any server-only element still waiting. For $setElementOrder, upstream reads the
 *    live order from a slice its own deletions and appends have rewritten in place (Go
 *    aliasing): the live list after "$patch: delete" removals, followed by as many new
 *    elements as were removed. Its tests pin the orders that produces, so kpki reproduces it.
 *  - Schema lookups walk a stack of field names; a name containing '.' never matches a field.
 *  - Recursion follows the patch (or the object, through $setElementOrder): both are checked
 *    against KP_PATCH_MAX_DEPTH up front.
 */
#include "meta/patch.h"
#include "meta/patch_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_SET_ORDER "$setElementOrder"
#define PREFIX_DELETE_PRIMITIVE "$deleteFromPrimitiveList"

enum list_strategy {
    LIST_REPLACE,      /* no schema entry (or retainKeys only): the patch list replaces */
    LIST_MERGE_BY_KEY, /* patchStrategy merge with patchMergeKey */
    LIST_MERGE_SET,    /* patchStrategy merge without a key: a set of primitives */
};

struct field_meta {
    enum list_strategy strategy;
    const char *merge_key; /* LIST_MERGE_BY_KEY only; from the schema table */
};

#define SEGMENT_MAX (KP_PATCH_MAX_DEPTH + 2)

struct smp {
    const struct kp_smp_schema *schema; /* may be NULL */
    struct kp_error *err;
    /* field names from the root to the map being merged, borrowed from the inputs */
    const char *segment[SEGMENT_MAX];
    size_t segment_len[SEGMENT_MAX];
    size_t segment_count;
    struct kp_patch_path path; /* for messages */
};

/* The live order $setElementOrder sorts server-only elements by: a position per value, and
 * positions at or past `limit` count as absent. */
struct live_order {
    struct kp_scalar_index index;
    size_t limit;
};

static enum kp_result merge_map(struct smp *s, json_t *work, const json_t *patch, json_t **out);
static enum kp_result merge_slice(struct smp *s, json_t *work_list, const json_t *patch_list,
                                  struct field_meta meta, json_t **out, struct live_order *live);

static enum kp_result fail(struct smp *s, const char *fmt, ...) KP_PRINTF(2, 3);

static enum kp_result fail(struct smp *s, const char *fmt, ...)
{
    char problem[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    return kp_error_set(s->err, KP_ERR_INVALID, "strategic merge patch: %s: %s",
                        kp_patch_path_show(&s->path), problem);
}

static bool has_prefix(const char *key, size_t key_len, const char *prefix)
{
    size_t prefix_len = strlen(prefix);
    return key_len >= prefix_len && memcmp(key, prefix, prefix_len) == 0;
}

static bool is_key(const char *key, size_t key_len, const char *name)
{
    return key_len == strlen(name) && memcmp(key, name, key_len) == 0;
}

static bool string_is(const json_t *value, const char *text)
{
    return json_is_string(value) && json_string_length(value) == strlen(text) &&
           memcmp(json_string_value(value), text, json_string_length(value)) == 0;
}

/* A JSON value quoted for a message (strings bare, others as their type). */
static const char *show_value(char *out, size_t size, const json_t *value)
{
    if (json_is_string(value)) {
        return kp_patch_quote(out, size, json_string_value(value), json_string_length(value), 64);
    }
    snprintf(out, size, "(a JSON %s)",
             json_is_object(value)    ? "object"
             : json_is_array(value)   ? "list"
             : json_is_number(value)  ? "number"
             : json_is_boolean(value) ? "boolean"
                                      : "null");
    return out;
}

/* --- schema ------------------------------------------------------------------------------- */

static bool segment_push(struct smp *s, const char *key, size_t key_len)
{
    if (s->segment_count >= SEGMENT_MAX) {
        return false;
    }
    s->segment[s->segment_count] = key;
    s->segment_len[s->segment_count] = key_len;
    s->segment_count++;
    return true;
}

static void segment_pop(struct smp *s)
{
    s->segment_count--;
}

/* Does field path `path` ("spec.containers.env") name the segments on the stack plus key? */
static bool path_matches(const struct smp *s, const char *path, const char *key, size_t key_len)
{
    for (size_t i = 0; i <= s->segment_count; i++) {
        const char *name = i < s->segment_count ? s->segment[i] : key;
        size_t name_len = i < s->segment_count ? s->segment_len[i] : key_len;
        size_t part_len = strcspn(path, ".");
        if (part_len != name_len || memcmp(path, name, name_len) != 0 ||
            memchr(name, '.', name_len) != NULL) {
            return false;
        }
        path += part_len;
        if (i == s->segment_count) {
            return *path == '\0';
        }
        if (*path != '.') {
            return false;
        }
        path++;
    }
    return false;
}

/* The patch metadata of member `key` of the map being merged (upstream's
 * LookupPatchMetadataForSlice; fields not in the schema replace). */
static struct field_meta lookup(const struct smp *s, const char *key, size_t key_len)
{
    struct field_meta meta = {LIST_REPLACE, NULL};
    if (s->schema == NULL) {
        return meta;
    }
    for (size_t i = 0; i < s->schema->count; i++) {
        const struct kp_smp_field *field = &s->schema->fields[i];
        if (!path_matches(s, field->path, key, key_len)) {
            continue;
        }
        if (field->merge_key != NULL) {
            meta.strategy = LIST_MERGE_BY_KEY;
            meta.merge_key = field->merge_key;
        } else if (!field->retain_keys) {
            meta.strategy = LIST_MERGE_SET;
        }
        break;
    }
    return meta;
}

/* --- small list helpers ------------------------------------------------------------------- */

/* Upstream's sliceElementType over both lists: one JSON type for every element (true and false
 * are one type, as Go's bool), no lists of lists, no nulls (upstream panics on a null element).
 * *kind is JSON_NULL when both lists are empty or absent. */
static enum kp_result element_type(struct smp *s, const json_t *first, const json_t *second,
                                   json_type *kind)
{
    const json_t *lists[2] = {first, second};
    *kind = JSON_NULL;
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < json_array_size(lists[l]); i++) {
            json_type type = json_typeof(json_array_get(lists[l], i));
            if (type == JSON_FALSE) {
                type = JSON_TRUE;
            }
            if (type == JSON_NULL) {
                return fail(s, "a merged list cannot hold null (%s element %zu)",
                            l == 0 ? "the object's" : "the patch's", i);
            }
            if (type == JSON_ARRAY) {
                return fail(s, "lists of lists cannot be merged");
            }
            if (*kind == JSON_NULL) {
                *kind = type;
            } else if (type != *kind) {
                return fail(s, "the elements of the list (in the object and the patch) are not "
                               "all of one type");
            }
        }
    }
    return KP_OK;
}

/* The merge key value of an element, checked: an object holding merge_key with a string,
 * number or boolean value. `whose` names the list in the message. */
static enum kp_result element_key(struct smp *s, const json_t *element, const char *merge_key,
                                  const char *whose, size_t index, json_t **key)
{
    *key = NULL;
    if (!json_is_object(element)) {
        return fail(s, "%s element %zu is not an object, but the list merges on '%s'", whose, index,
                    merge_key);
    }
    json_t *value = json_object_get(element, merge_key);
    if (value == NULL) {
        return fail(s, "%s element %zu does not contain the merge key '%s'", whose, index,
                    merge_key);
    }
    if (!kp_patch_is_scalar(value) || json_is_null(value)) {
        return fail(s, "%s element %zu: the merge key '%s' must be a string, number or boolean",
                    whose, index, merge_key);
    }
    *key = value;
    return KP_OK;
}

/* The value an element is ordered by: its merge key, or itself for primitives. */
static json_t *order_value(json_t *element, const char *merge_key)
{
    return merge_key != NULL ? json_object_get(element, merge_key) : element;
}

struct ranked {
    json_t *element; /* borrowed */
    size_t rank;     /* KP_SCALAR_NONE sorts last */
    size_t seq;      /* keeps the sort stable */
};

static int compare_ranked(const void *left, const void *right)
{
    const struct ranked *a = left;
    const struct ranked *b = right;
    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    return a->seq < b->seq ? -1 : (a->seq > b->seq ? 1 : 0);
}

/* Stable-sorts items[0..count) by their position in index (upstream's normalizeSliceOrder; an
 * element index does not hold sorts after those it does, where upstream's comparator is not a
 * strict weak order). */
static void sort_by_index(struct ranked *items, size_t count, const struct kp_scalar_index *index,
                          const char *merge_key)
{
    for (size_t i = 0; i < count; i++) {
        items[i].rank = kp_scalar_index_find(index, order_value(items[i].element, merge_key));
        items[i].seq = i;
    }
    if (count > 1) {
        qsort(items, count, sizeof(*items), compare_ranked);
    }
}

static size_t live_position(const struct live_order *live, json_t *element, const char *merge_key)
{
    size_t position = kp_scalar_index_find(&live->index, order_value(element, merge_key));
    return position < live->limit ? position : KP_SCALAR_NONE;
}

/* Upstream's mergeSortedSlice: interleaves server-only elements (left) into the patch elements
 * (right); a left element goes first only when both are in the live list and it comes first
 * there. Returns a new list, or NULL when out of memory. */
static json_t *merge_sorted(const struct ranked *left, size_t left_count,
                            const struct ranked *right, size_t right_count,
                            const struct live_order *live, const char *merge_key)
{
    json_t *result = json_array();
    if (result == NULL) {
        return NULL;
    }
    size_t i = 0;
    size_t j = 0;
    while (i < left_count || j < right_count) {
        bool take_left;
        if (i == left_count) {
            take_left = false;
        } else if (j == right_count) {
            take_left = true;
        } else {
            size_t left_at = live_position(live, left[i].element, merge_key);
            size_t right_at = live_position(live, right[j].element, merge_key);
            take_left =
                left_at != KP_SCALAR_NONE && right_at != KP_SCALAR_NONE && left_at < right_at;
        }
        json_t *element = take_left ? left[i++].element : right[j++].element;
        if (json_array_append(result, element) != 0) {
            json_decref(result);
            return NULL;
        }
    }
    return result;
}

/* Partitions `merged` into elements in `patch_order` (sorted by it) and the others (sorted by
 * the live order), and interleaves them: upstream's partition*ByPresentInList followed by
 * normalizeElementOrder. merged's elements must have scalar order values. */
static enum kp_result order_list(struct smp *s, const json_t *merged,
                                 const struct kp_scalar_index *patch_order,
                                 const struct live_order *live, const char *merge_key, json_t **out)
{
    *out = NULL;
    size_t count = json_array_size(merged);
    struct ranked *in_patch = kp_patch_calloc(count, sizeof(*in_patch));
    struct ranked *server_only = kp_patch_calloc(count, sizeof(*server_only));
    if (in_patch == NULL || server_only == NULL) {
        kp_patch_free(in_patch);
        kp_patch_free(server_only);
        return kp_patch_oom(s->err);
    }
    size_t in_patch_count = 0;
    size_t server_only_count = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *element = json_array_get(merged, i);
        if (kp_scalar_index_find(patch_order, order_value(element, merge_key)) != KP_SCALAR_NONE) {
            in_patch[in_patch_count++].element = element;
        } else {
            server_only[server_only_count++].element = element;
        }
    }
    sort_by_index(in_patch, in_patch_count, patch_order, merge_key);
    sort_by_index(server_only, server_only_count, &live->index, merge_key);
    *out = merge_sorted(server_only, server_only_count, in_patch, in_patch_count, live, merge_key);
    kp_patch_free(in_patch);
    kp_patch_free(server_only);
    return *out == NULL ? kp_patch_oom(s->err) : KP_OK;
}

/* The live order of a list: each element's merge key (or value) at its first position. */
static enum kp_result index_list(struct smp *s, const json_t *list, const char *merge_key,
                                 struct kp_scalar_index *index)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *value = json_array_get(list, i);
        if (merge_key != NULL) {
            enum kp_result rc = element_key(s, value, merge_key, "the object's", i, &value);
            if (rc != KP_OK) {
                return rc;
            }
        } else if (!kp_patch_is_scalar(value) || json_is_null(value)) {
            return fail(s,
                        "a list without a merge key can be ordered only if it holds strings, "
                        "numbers or booleans (element %zu)",
                        i);
        }
        if (!kp_scalar_index_add(index, value, i)) {
            return kp_patch_oom(s->err);
        }
    }
    return KP_OK;
}

/* --- cleaning: patch values with nothing to merge with -------------------------------------- */

/* The elements of a list that replaces: maps carrying "$patch" dropped (upstream's
 * removeDirectives), maps cleaned, nested lists cleaned, scalars copied. */
static enum kp_result clean_list(struct smp *s, const json_t *list, json_t **out)
{
    *out = NULL;
    json_t *result = json_array();
    if (result == NULL) {
        return kp_patch_oom(s->err);
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *element = json_array_get(list, i);
        json_t *cleaned = NULL;
        enum kp_result rc = KP_OK;
        size_t saved = kp_patch_path_push_index(&s->path, i);
        if (json_is_object(element)) {
            if (json_object_get(element, "$patch") != NULL) {
                kp_patch_path_pop(&s->path, saved);
                continue;
            }
            json_t *empty = json_object();
            rc = empty == NULL ? kp_patch_oom(s->err) : merge_map(s, empty, element, &cleaned);
        } else if (json_is_array(element)) {
            rc = clean_list(s, element, &cleaned);
        } else {
            cleaned = kp_patch_copy(element);
            rc = cleaned == NULL ? kp_patch_oom(s->err) : KP_OK;
        }
        kp_patch_path_pop(&s->path, saved);
        if (rc == KP_OK && json_array_append_new(result, cleaned) != 0) {
            rc = kp_patch_oom(s->err);
        }
        if (rc != KP_OK) {
            json_decref(result);
            return rc;
        }
    }
    *out = result;
    return KP_OK;
}

/* A patch value applied to an empty value of its own type. */
static enum kp_result clean_value(struct smp *s, const json_t *value, struct field_meta meta,
                                  json_t **out)
{
    *out = NULL;
    if (json_is_object(value)) {
        json_t *empty = json_object();
        return empty == NULL ? kp_patch_oom(s->err) : merge_map(s, empty, value, out);
    }
    if (json_is_array(value)) {
        if (meta.strategy == LIST_REPLACE) {
            return clean_list(s, value, out);
        }
        json_t *empty = json_array();
        return empty == NULL ? kp_patch_oom(s->err) : merge_slice(s, empty, value, meta, out, NULL);
    }
    *out = kp_patch_copy(value);
    return *out == NULL ? kp_patch_oom(s->err) : KP_OK;
}

/* --- lists -------------------------------------------------------------------------------- */

/* Upstream's mergeSlice for primitives: the union, deduplicated, ordered by
 * normalizeElementOrder. live (may be NULL) receives the live order $setElementOrder uses: the
 * original list (upstream appends to a copy there, so nothing aliases). */
static enum kp_result merge_primitive_set(struct smp *s, json_t *work_list,
                                          const json_t *patch_list, json_t **out,
                                          struct live_order *live)
{
    enum kp_result rc = KP_OK;
    struct kp_scalar_index original_index;
    struct kp_scalar_index patch_index;
    struct kp_scalar_index seen;
    kp_scalar_index_init(&original_index);
    kp_scalar_index_init(&patch_index);
    kp_scalar_index_init(&seen);
    struct live_order original_order = {original_index, KP_SCALAR_NONE};
    size_t original_count = json_array_size(work_list);
    size_t patch_count = json_array_size(patch_list);
    struct ranked *from_patch = kp_patch_calloc(patch_count, sizeof(*from_patch));
    struct ranked *server_only = kp_patch_calloc(original_count, sizeof(*server_only));
    size_t from_patch_count = 0;
    size_t server_only_count = 0;
    if (from_patch == NULL || server_only == NULL) {
        rc = kp_patch_oom(s->err);
        goto done;
    }
    for (size_t i = 0; i < original_count; i++) {
        if (!kp_scalar_index_add(&original_index, json_array_get(work_list, i), i)) {
            rc = kp_patch_oom(s->err);
            goto done;
        }
    }
    for (size_t i = 0; i < patch_count; i++) {
        if (!kp_scalar_index_add(&patch_index, json_array_get(patch_list, i), i)) {
            rc = kp_patch_oom(s->err);
            goto done;
        }
    }
    /* patch values in patch order, once each (a live value is kept as the live node) */
    for (size_t i = 0; i < patch_count; i++) {
        json_t *value = json_array_get(patch_list, i);
        if (kp_scalar_index_find(&seen, value) != KP_SCALAR_NONE) {
            continue;
        }
        if (!kp_scalar_index_add(&seen, value, i)) {
            rc = kp_patch_oom(s->err);
            goto done;
        }
        size_t live_at = kp_scalar_index_find(&original_index, value);
        from_patch[from_patch_count++].element =
            live_at != KP_SCALAR_NONE ? json_array_get(work_list, live_at) : value;
    }
    /* live values not in the patch, in live order, once each */
    for (size_t i = 0; i < original_count; i++) {
        json_t *value = json_array_get(work_list, i);
        if (kp_scalar_index_find(&patch_index, value) == KP_SCALAR_NONE &&
            kp_scalar_index_find(&original_index, value) == i) {
            server_only[server_only_count++].element = value;
        }
    }
    original_order.index = original_index;
    json_t *merged = merge_sorted(server_only, server_only_count, from_patch, from_patch_count,
                                  &original_order, NULL);
    if (merged == NULL) {
        rc = kp_patch_oom(s->err);
        goto done;
    }
    /* values that came from the patch are shared with it so far: copy them */
    for (size_t i = 0; i < json_array_size(merged); i++) {
        json_t *value = json_array_get(merged, i);
        if (kp_scalar_index_find(&original_index, value) == KP_SCALAR_NONE) {
            json_t *copy = kp_patch_copy(value);
            if (copy == NULL || json_array_set_new(merged, i, copy) != 0) {
                json_decref(merged);
                rc = kp_patch_oom(s->err);
                goto done;
            }
        }
    }
    *out = merged;
done:
    if (rc == KP_OK && live != NULL) {
        live->index = original_index;
        live->limit = KP_SCALAR_NONE;
    } else {
        kp_scalar_index_wipe(&original_index);
    }
    kp_scalar_index_wipe(&patch_index);
    kp_scalar_index_wipe(&seen);
    kp_patch_free(from_patch);
    kp_patch_free(server_only);
    json_decref(work_list);
    return rc;
}

/* Upstream's mergeSlice for lists of maps with a merge key: mergeSliceWithSpecialElements
 * ("$patch": delete / replace elements), mergeSliceWithoutSpecialElements (merge into the
 * element with the same key, else append), then normalizeElementOrder. */
static enum kp_result merge_keyed(struct smp *s, json_t *work_list, const json_t *patch_list,
                                  const char *merge_key, json_t **out, struct live_order *live)
{
    enum kp_result rc = KP_OK;
    size_t patch_count = json_array_size(patch_list);
    size_t original_count = json_array_size(work_list);
    struct kp_scalar_index deletions;
    struct kp_scalar_index positions; /* merge key -> position in `kept` */
    struct kp_scalar_index patch_order;
    kp_scalar_index_init(&deletions);
    kp_scalar_index_init(&positions);
    kp_scalar_index_init(&patch_order);
    size_t *plain = kp_patch_calloc(patch_count, sizeof(*plain)); /* non-directive elements */
    size_t plain_count = 0;
    bool replace = false;
    json_t *kept = json_array();
    if (plain == NULL || kept == NULL) {
        rc = kp_patch_oom(s->err);
        goto done;
    }

    for (size_t i = 0; i < patch_count && rc == KP_OK; i++) {
        const json_t *element = json_array_get(patch_list, i);
        const json_t *directive = json_object_get(element, "$patch");
        json_t *key = NULL;
        size_t saved = kp_patch_path_push_index(&s->path, i);
        if (directive == NULL) {
            rc = element_key(s, element, merge_key, "the patch's", i, &key);
            if (rc == KP_OK) {
                plain[plain_count++] = i;
            }
        } else if (string_is(directive, "delete")) {
            rc = element_key(s, element, merge_key, "the patch's", i, &key);
            if (rc == KP_OK && !kp_scalar_index_add(&deletions, key, i)) {
                rc = kp_patch_oom(s->err);
            }
        } else if (string_is(directive, "replace")) {
            replace = true; /* upstream keeps scanning to drop the other directive elements */
        } else if (string_is(directive, "merge")) {
            rc = fail(s, "\"$patch\": \"merge\" is not supported in a list (kube-apiserver "
                         "refuses it too)");
        } else {
            char shown[80];
            rc = fail(s,
                      "unknown \"$patch\" value '%s' in a list element (want delete or "
                      "replace)",
                      show_value(shown, sizeof(shown), directive));
        }
        kp_patch_path_pop(&s->path, saved);
    }
    if (rc != KP_OK) {
        goto done;
    }

    /* the live elements; with "$patch": replace the list starts empty instead */
    size_t live_kept = 0;
    for (size_t i = 0; i < original_count && !replace; i++) {
        json_t *element = json_array_get(work_list, i);
        json_t *key = NULL;
        rc = element_key(s, element, merge_key, "the object's", i, &key);
        if (rc != KP_OK) {
            goto done;
        }
        if (kp_scalar_index_find(&deletions, key) != KP_SCALAR_NONE) {
            continue;
        }
        if (json_array_append(kept, element) != 0 ||
            !kp_scalar_index_add(&positions, key, live_kept)) {
            rc = kp_patch_oom(s->err);
            goto done;
        }
        live_kept++;
    }
    size_t deleted = replace ? 0 : original_count - live_kept;

    /* merge each patch element into the kept element with its key, or append it */
    size_t appended = 0;
    for (size_t p = 0; p < plain_count; p++) {
        const json_t *element = json_array_get(patch_list, plain[p]);
        json_t *key = json_object_get(element, merge_key);
        size_t at = replace ? KP_SCALAR_NONE : kp_scalar_index_find(&positions, key);
        json_t *merged = NULL;
        size_t saved = kp_patch_path_push_index(&s->path, plain[p]);
        if (at != KP_SCALAR_NONE) {
            rc = merge_map(s, json_incref(json_array_get(kept, at)), element, &merged);
            if (rc == KP_OK && json_array_set_new(kept, at, merged) != 0) {
                rc = kp_patch_oom(s->err);
            }
        } else {
            json_t *empty = json_object();
            rc = empty == NULL ? kp_patch_oom(s->err) : merge_map(s, empty, element, &merged);
            json_t *new_key = rc == KP_OK ? json_object_get(merged, merge_key) : NULL;
            if (rc == KP_OK && new_key == NULL) {
                json_decref(merged); /* cannot happen: $retainKeys must list the key */
                rc = fail(s, "the element lost its merge key '%s'", merge_key);
            } else if (rc == KP_OK) {
                size_t position = json_array_size(kept);
                /* with replace, duplicates stay apart (upstream takes the list as sent) */
                if (!kp_scalar_index_add(&positions, new_key, position) ||
                    json_array_append_new(kept, merged) != 0) {
                    rc = kp_patch_oom(s->err);
                }
                appended++;
            }
        }
        kp_patch_path_pop(&s->path, saved);
        if (rc != KP_OK) {
            goto done;
        }
        if (!kp_scalar_index_add(&patch_order, key, p)) {
            rc = kp_patch_oom(s->err);
            goto done;
        }
    }

    struct live_order kept_order = {positions, live_kept};
    if (replace) {
        /* upstream: the replacing list is the "original", so every element is server-only and
         * sorts by its first position in that list */
        kept_order.limit = KP_SCALAR_NONE;
        kp_scalar_index_wipe(&patch_order);
    }
    rc = order_list(s, kept, &patch_order, &kept_order, merge_key, out);
    if (rc == KP_OK && live != NULL && replace) {
        /* upstream's live slice is untouched when the list is replaced */
        rc = index_list(s, work_list, merge_key, &live->index);
        live->limit = KP_SCALAR_NONE;
    } else if (rc == KP_OK && live != NULL) {
        /* what upstream's aliased live slice holds: kept live elements, then as many new
         * elements as deletions freed */
        live->index = positions;
        live->limit = live_kept + (appended < deleted ? appended : deleted);
        kp_scalar_index_init(&positions);
    }
    if (rc != KP_OK) {
        json_decref(*out);
        *out = NULL;
    }

done:
    kp_scalar_index_wipe(&deletions);
    kp_scalar_index_wipe(&positions);
    kp_scalar_index_wipe(&patch_order);
    kp_patch_free(plain);
    json_decref(kept);
    json_decref(work_list);
    return rc;
}

/* Upstream's mergeSlice: work_list (owned) merged with patch_list under a merge strategy. live
 * (may be NULL) receives the live order for $setElementOrder. */
static enum kp_result merge_slice(struct smp *s, json_t *work_list, const json_t *patch_list,
                                  struct field_meta meta, json_t **out, struct live_order *live)
{
    *out = NULL;
    json_type kind;
    enum kp_result rc = element_type(s, work_list, patch_list, &kind);
    if (rc != KP_OK) {
        json_decref(work_list);
        return rc;
    }
    if (kind == JSON_NULL) {
        /* both empty */
        *out = work_list;
        return KP_OK;
    }
    if (meta.strategy == LIST_MERGE_SET) {
        if (kind == JSON_OBJECT) {
            json_decref(work_list);
            return fail(s, "cannot merge a list of objects without a merge key");
        }
        return merge_primitive_set(s, work_list, patch_list, out, live);
    }
    if (kind != JSON_OBJECT) {
        json_decref(work_list);
        return fail(s, "the list merges on '%s', but its elements are not objects", meta.merge_key);
    }
    return merge_keyed(s, work_list, patch_list, meta.merge_key, out, live);
}

/* --- maps --------------------------------------------------------------------------------- */

/* applyRetainKeysDirective: every non-null patch member must be listed; members of the object
 * that are not listed are removed. */
static enum kp_result apply_retain_keys(struct smp *s, json_t *work, const json_t *patch)
{
    const json_t *retain = json_object_get(patch, "$retainKeys");
    if (retain == NULL) {
        return KP_OK;
    }
    if (!json_is_array(retain)) {
        return fail(s, "\"$retainKeys\" must be a list of field names");
    }
    json_t *names = json_object();
    if (names == NULL) {
        return kp_patch_oom(s->err);
    }
    enum kp_result rc = KP_OK;
    for (size_t i = 0; i < json_array_size(retain) && rc == KP_OK; i++) {
        const json_t *name = json_array_get(retain, i);
        if (!json_is_string(name)) {
            rc = fail(s, "\"$retainKeys\" element %zu is not a string", i);
        } else if (json_object_setn_new(names, json_string_value(name), json_string_length(name),
                                        json_true()) != 0) {
            rc = kp_patch_oom(s->err);
        }
    }
    const char *key;
    size_t key_len;
    json_t *value;
    if (rc == KP_OK) {
        json_object_keylen_foreach((json_t *)patch, key, key_len, value)
        {
            if (json_is_null(value) || is_key(key, key_len, "$retainKeys") ||
                is_key(key, key_len, "$patch") ||
                has_prefix(key, key_len, PREFIX_DELETE_PRIMITIVE) ||
                has_prefix(key, key_len, PREFIX_SET_ORDER)) {
                continue;
            }
            if (json_object_getn(names, key, key_len) == NULL) {
                char shown[80];
                rc = fail(s, "'%s' is in the patch but not in \"$retainKeys\"",
                          kp_patch_quote(shown, sizeof(shown), key, key_len, 64));
                break;
            }
        }
    }
    if (rc == KP_OK) {
        void *next;
        json_object_keylen_foreach_safe(work, next, key, key_len, value)
        {
            if (json_object_getn(names, key, key_len) == NULL) {
                json_object_deln(work, key, key_len);
            }
        }
    }
    json_decref(names);
    return rc;
}

/* validatePatchWithSetOrderList: the patch list's elements (directive elements aside) must
 * appear in the $setElementOrder list, in the same relative order. With a merge key, the
 * "$patch": "delete" elements are set aside first; other directive elements are skipped but
 * count (upstream's loop). */
static bool is_delete_element(const json_t *element)
{
    return string_is(json_object_get(element, "$patch"), "delete");
}

static enum kp_result check_order_consistent(struct smp *s, const json_t *patch_list,
                                             const json_t *order, const char *merge_key)
{
    size_t patch_count = json_array_size(patch_list);
    size_t order_count = json_array_size(order);
    if (patch_count == 0 || order_count == 0) {
        return KP_OK;
    }
    size_t kept_count = 0; /* upstream's nonDeleteList */
    for (size_t i = 0; i < patch_count; i++) {
        const json_t *element = json_array_get(patch_list, i);
        if (merge_key != NULL && !json_is_object(element)) {
            return fail(s,
                        "the patch's element %zu is not an object, but the list merges on "
                        "'%s'",
                        i, merge_key);
        }
        if (merge_key == NULL || !is_delete_element(element)) {
            kept_count++;
        }
    }
    size_t i = 0; /* position in patch_list */
    size_t p = 0; /* kept elements consumed */
    size_t o = 0;
    while (p < kept_count && o < order_count) {
        const json_t *element = json_array_get(patch_list, i);
        if (merge_key != NULL && is_delete_element(element)) {
            i++;
            continue;
        }
        const json_t *ordered = json_array_get(order, o);
        if (json_is_object(element) && json_object_get(element, "$patch") != NULL) {
            p++; /* other directive elements are not ordered */
            i++;
            continue;
        }
        bool equal;
        if (merge_key != NULL) {
            json_t *element_value = NULL;
            json_t *ordered_value = NULL;
            enum kp_result rc =
                element_key(s, element, merge_key, "the patch's", i, &element_value);
            if (rc == KP_OK) {
                rc = element_key(s, ordered, merge_key, "the $setElementOrder list's", o,
                                 &ordered_value);
            }
            if (rc != KP_OK) {
                return rc;
            }
            equal = kp_patch_scalar_equal(element_value, ordered_value);
        } else {
            if (!kp_patch_is_scalar(element) || !kp_patch_is_scalar(ordered)) {
                return fail(s, "\"$setElementOrder\" can order a list without a merge key only "
                               "if it holds strings, numbers or booleans");
            }
            equal = kp_patch_scalar_equal(element, ordered);
        }
        if (equal) {
            p++;
            i++;
        }
        o++;
    }
    if (p < kept_count) {
        return fail(s,
                    "the order of the patch's list does not match its \"$setElementOrder\" "
                    "list (element %zu is missing from it or out of order)",
                    i);
    }
    return KP_OK;
}

/* An index of the $setElementOrder list's values (merge keys, or the values themselves). */
static enum kp_result index_order(struct smp *s, const json_t *order, const char *merge_key,
                                  struct kp_scalar_index *index)
{
    for (size_t i = 0; i < json_array_size(order); i++) {
        json_t *value = json_array_get(order, i);
        if (merge_key != NULL) {
            enum kp_result rc =
                element_key(s, value, merge_key, "the $setElementOrder list's", i, &value);
            if (rc != KP_OK) {
                return rc;
            }
        } else if (!kp_patch_is_scalar(value) || json_is_null(value)) {
            return fail(s, "\"$setElementOrder\" element %zu must be a string, number or boolean",
                        i);
        }
        if (!kp_scalar_index_add(index, value, i)) {
            return kp_patch_oom(s->err);
        }
    }
    return KP_OK;
}

/* One "$setElementOrder/<field>" (mergePatchIntoOriginal): merges field's list and orders it.
 * Messages name the directive while its value is checked, then the list (`parent_path_len` is
 * the path's length without the directive). */
static enum kp_result merge_ordered_list(struct smp *s, json_t *work, const json_t *patch,
                                         const char *field, size_t field_len, const json_t *order,
                                         size_t parent_path_len)
{
    if (!json_is_array(order)) {
        return fail(s, "must be a list");
    }
    kp_patch_path_pop(&s->path, parent_path_len);
    kp_patch_path_push_key(&s->path, field, field_len);
    json_t *original_list = json_object_getn(work, field, field_len);
    if (json_is_null(original_list)) {
        original_list = NULL;
    }
    const json_t *patch_list = json_object_getn(patch, field, field_len);
    if (original_list != NULL && !json_is_array(original_list)) {
        return fail(s, "the object's value is not a list, but the patch orders it");
    }
    if (patch_list != NULL && !json_is_array(patch_list)) {
        return fail(s, "the patch's value is not a list, but the patch orders it");
    }
    struct field_meta meta = lookup(s, field, field_len);
    const char *merge_key = meta.strategy == LIST_MERGE_BY_KEY ? meta.merge_key : NULL;
    enum kp_result rc = check_order_consistent(s, patch_list, order, merge_key);
    if (rc != KP_OK || (original_list == NULL && patch_list == NULL)) {
        return rc;
    }
    json_type kind;
    rc = element_type(s, original_list, patch_list, &kind);
    if (rc != KP_OK) {
        return rc;
    }
    if (merge_key == NULL && kind == JSON_OBJECT) {
        return fail(s, "the list has no merge key, so its objects cannot be ordered");
    }
    if (!segment_push(s, field, field_len)) {
        return fail(s, "nested too deeply");
    }

    json_t *merged = NULL;
    json_t *ordered = NULL;
    struct live_order live;
    struct kp_scalar_index order_index;
    kp_scalar_index_init(&live.index);
    live.limit = KP_SCALAR_NONE;
    kp_scalar_index_init(&order_index);
    if (original_list != NULL && patch_list == NULL) {
        merged = json_incref(original_list);
        rc = index_list(s, original_list, merge_key, &live.index);
    } else if (original_list == NULL) {
        rc = clean_value(s, patch_list, meta, &merged);
    } else if (meta.strategy != LIST_REPLACE) {
        rc = merge_slice(s, json_incref(original_list), patch_list, meta, &merged, &live);
    } else {
        rc = clean_list(s, patch_list, &merged);
        if (rc == KP_OK) {
            rc = index_list(s, original_list, NULL, &live.index);
        }
    }
    if (rc == KP_OK && kind != JSON_NULL) {
        rc = index_order(s, order, merge_key, &order_index);
        for (size_t i = 0; rc == KP_OK && merge_key != NULL && i < json_array_size(merged); i++) {
            json_t *key = NULL;
            rc = element_key(s, json_array_get(merged, i), merge_key, "the merged list's", i, &key);
        }
        if (rc == KP_OK) {
            rc = order_list(s, merged, &order_index, &live, merge_key, &ordered);
        }
    } else if (rc == KP_OK) {
        ordered = json_incref(merged); /* both lists empty */
    }
    segment_pop(s);
    if (rc == KP_OK) {
        /* jansson releases `ordered` if this fails */
        rc = json_object_setn_new(work, field, field_len, ordered) == 0 ? KP_OK
                                                                        : kp_patch_oom(s->err);
    }
    json_decref(merged);
    kp_scalar_index_wipe(&live.index);
    kp_scalar_index_wipe(&order_index);
    return rc;
}

/* Step (3): every "$setElementOrder/<field>"; *consumed (created on first use) collects the
 * fields handled. */
static enum kp_result merge_ordered_lists(struct smp *s, json_t *work, const json_t *patch,
                                          json_t **consumed)
{
    const size_t prefix_len = strlen(PREFIX_SET_ORDER);
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach((json_t *)patch, key, key_len, value)
    {
        if (!has_prefix(key, key_len, PREFIX_SET_ORDER)) {
            continue;
        }
        size_t saved = kp_patch_path_push_key(&s->path, key, key_len);
        enum kp_result rc = KP_OK;
        if (key_len <= prefix_len + 1 || key[prefix_len] != '/') {
            rc = fail(s, "not a directive: want \"$setElementOrder/<field>\"");
        } else {
            const char *field = key + prefix_len + 1;
            size_t field_len = key_len - prefix_len - 1;
            rc = merge_ordered_list(s, work, patch, field, field_len, value, saved);
            if (rc == KP_OK && *consumed == NULL) {
                *consumed = json_object();
            }
            if (rc == KP_OK &&
                (*consumed == NULL ||
                 json_object_setn_new(*consumed, field, field_len, json_true()) != 0)) {
                rc = kp_patch_oom(s->err);
            }
        }
        kp_patch_path_pop(&s->path, saved);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

/* Step (4): the members that are not directives. */
static enum kp_result merge_members(struct smp *s, json_t *work, const json_t *patch,
                                    const json_t *consumed)
{
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach((json_t *)patch, key, key_len, value)
    {
        if (key_len > 0 && key[0] == '$') {
            if (is_key(key, key_len, "$patch") || is_key(key, key_len, "$retainKeys") ||
                has_prefix(key, key_len, PREFIX_SET_ORDER) ||
                has_prefix(key, key_len, PREFIX_DELETE_PRIMITIVE)) {
                continue;
            }
            char shown[80];
            return fail(s, "unknown directive '%s'",
                        kp_patch_quote(shown, sizeof(shown), key, key_len, 64));
        }
        if (consumed != NULL && json_object_getn(consumed, key, key_len) != NULL) {
            continue; /* merged with its $setElementOrder */
        }
        if (json_is_null(value)) {
            json_object_deln(work, key, key_len);
            continue;
        }
        json_t *current = json_object_getn(work, key, key_len);
        struct field_meta meta = lookup(s, key, key_len);
        json_t *merged = NULL;
        enum kp_result rc;
        if (!segment_push(s, key, key_len)) {
            return fail(s, "nested too deeply");
        }
        size_t saved = kp_patch_path_push_key(&s->path, key, key_len);
        if (json_is_object(current) && json_is_object(value)) {
            rc = merge_map(s, json_incref(current), value, &merged);
        } else if (json_is_array(current) && json_is_array(value) &&
                   meta.strategy != LIST_REPLACE) {
            rc = merge_slice(s, json_incref(current), value, meta, &merged, NULL);
        } else {
            rc = clean_value(s, value, meta, &merged);
        }
        kp_patch_path_pop(&s->path, saved);
        segment_pop(s);
        if (rc == KP_OK && json_object_setn_new(work, key, key_len, merged) != 0) {
            rc = kp_patch_oom(s->err);
        }
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

/* Step (5): "$deleteFromPrimitiveList/<field>" removes every listed value from field's list,
 * whatever the field's strategy (upstream since 1.24). A missing field stays missing. */
static enum kp_result delete_from_primitive_lists(struct smp *s, json_t *work, const json_t *patch)
{
    const size_t prefix_len = strlen(PREFIX_DELETE_PRIMITIVE);
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach((json_t *)patch, key, key_len, value)
    {
        if (!has_prefix(key, key_len, PREFIX_DELETE_PRIMITIVE)) {
            continue;
        }
        size_t saved = kp_patch_path_push_key(&s->path, key, key_len);
        enum kp_result rc = KP_OK;
        json_t *list = NULL;
        const char *field = key + prefix_len + 1;
        size_t field_len = key_len - prefix_len - 1;
        if (key_len <= prefix_len + 1 || key[prefix_len] != '/') {
            rc = fail(s, "not a directive: want \"$deleteFromPrimitiveList/<field>\"");
        } else if (!json_is_array(value)) {
            rc = fail(s, "must be a list of the values to delete");
        } else {
            list = json_object_getn(work, field, field_len);
        }
        json_type kind = JSON_NULL;
        if (rc == KP_OK && json_is_array(list)) {
            rc = element_type(s, list, value, &kind);
        }
        if (rc == KP_OK && kind == JSON_OBJECT) {
            rc = fail(s, "applies to lists of strings, numbers or booleans only");
        }
        if (rc == KP_OK && kind != JSON_NULL) {
            struct kp_scalar_index doomed;
            kp_scalar_index_init(&doomed);
            json_t *kept = json_array();
            if (kept == NULL) {
                rc = kp_patch_oom(s->err);
            }
            for (size_t i = 0; rc == KP_OK && i < json_array_size(value); i++) {
                if (!kp_scalar_index_add(&doomed, json_array_get(value, i), i)) {
                    rc = kp_patch_oom(s->err);
                }
            }
            for (size_t i = 0; rc == KP_OK && i < json_array_size(list); i++) {
                json_t *element = json_array_get(list, i);
                if (kp_scalar_index_find(&doomed, element) == KP_SCALAR_NONE &&
                    json_array_append(kept, element) != 0) {
                    rc = kp_patch_oom(s->err);
                }
            }
            if (rc == KP_OK) {
                rc = json_object_setn_new(work, field, field_len, kept) == 0 ? KP_OK
                                                                             : kp_patch_oom(s->err);
            } else {
                json_decref(kept);
            }
            kp_scalar_index_wipe(&doomed);
        }
        kp_patch_path_pop(&s->path, saved);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

/* mergeMap after its "$patch" check (steps 2 to 5). work is owned; consumed on return. */
static enum kp_result merge_map_body(struct smp *s, json_t *work, const json_t *patch, json_t **out)
{
    json_t *consumed = NULL; /* the lists $setElementOrder merged, once there is one */
    enum kp_result rc = apply_retain_keys(s, work, patch);
    if (rc == KP_OK) {
        rc = merge_ordered_lists(s, work, patch, &consumed);
    }
    if (rc == KP_OK) {
        rc = merge_members(s, work, patch, consumed);
    }
    if (rc == KP_OK) {
        rc = delete_from_primitive_lists(s, work, patch);
    }
    json_decref(consumed);
    if (rc != KP_OK) {
        json_decref(work);
        return rc;
    }
    *out = work;
    return KP_OK;
}

/* Upstream's mergeMap: work (owned, an object) merged with patch (an object). */
static enum kp_result merge_map(struct smp *s, json_t *work, const json_t *patch, json_t **out)
{
    *out = NULL;
    const json_t *directive = json_object_get(patch, "$patch");
    if (directive == NULL) {
        return merge_map_body(s, work, patch, out);
    }
    json_decref(work);
    /* handleDirectiveInMergeMap */
    if (string_is(directive, "delete")) {
        *out = json_object();
        return *out == NULL ? kp_patch_oom(s->err) : KP_OK;
    }
    if (string_is(directive, "replace")) {
        json_t *empty = json_object();
        return empty == NULL ? kp_patch_oom(s->err) : merge_map_body(s, empty, patch, out);
    }
    if (string_is(directive, "merge")) {
        return fail(s, "\"$patch\": \"merge\" is not supported in a map (kube-apiserver refuses "
                       "it too); a map merges without it");
    }
    char shown[80];
    return fail(s, "unknown \"$patch\" value '%s' (want replace or delete)",
                show_value(shown, sizeof(shown), directive));
}

enum kp_result kp_strategic_merge_patch(const json_t *original, const json_t *patch,
                                        const struct kp_smp_schema *schema, json_t **out,
                                        struct kp_error *err)
{
    *out = NULL;
    if (original == NULL || patch == NULL) {
        return kp_error_set(err, KP_ERR_INTERNAL, "strategic merge patch: no object or no patch");
    }
    if (!json_is_object(patch)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "strategic merge patch: the patch must be a JSON object");
    }
    if (!json_is_object(original)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "strategic merge patch: the object must be a JSON object");
    }
    if (kp_patch_too_deep(original, KP_PATCH_MAX_DEPTH)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "strategic merge patch: the object nests more than %d levels",
                            KP_PATCH_MAX_DEPTH);
    }
    if (kp_patch_too_deep(patch, KP_PATCH_MAX_DEPTH)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "strategic merge patch: the patch nests more than %d levels",
                            KP_PATCH_MAX_DEPTH);
    }
    struct smp s;
    memset(&s, 0, sizeof(s));
    s.schema = schema;
    s.err = err;
    kp_patch_path_init(&s.path);
    json_t *work = kp_patch_copy(original);
    if (work == NULL) {
        return kp_patch_oom(err);
    }
    return merge_map(&s, work, patch, out);
}
