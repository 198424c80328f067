/*
 * JSON merge patch (RFC 7386) and the helpers the three patch types share (patch_internal.h).
 * Strategic merge patch is in smp.c, its schema tables in smp_schema.c, JSON patch in
 * json_patch.c.
 */
#include "meta/patch.h"
#include "meta/patch_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void *kp_patch_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    json_malloc_t malloc_fn = NULL;
    json_free_t free_fn = NULL;
    json_get_alloc_funcs(&malloc_fn, &free_fn);
    size_t total = n * size;
    void *ptr = malloc_fn(total == 0 ? 1 : total);
    if (ptr != NULL) {
        memset(ptr, 0, total == 0 ? 1 : total);
    }
    return ptr;
}

void kp_patch_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    json_malloc_t malloc_fn = NULL;
    json_free_t free_fn = NULL;
    json_get_alloc_funcs(&malloc_fn, &free_fn);
    free_fn(ptr);
}

enum kp_result kp_patch_oom(struct kp_error *err)
{
    return kp_error_set(err, KP_ERR_IO, "out of memory applying a patch");
}

bool kp_patch_too_deep(const json_t *value, size_t max_depth)
{
    if (json_is_object(value)) {
        if (max_depth == 0) {
            return true;
        }
        const char *key;
        json_t *member;
        /* json_object_foreach wants a non-const object; it does not modify it. */
        json_object_foreach((json_t *)value, key, member)
        {
            if (kp_patch_too_deep(member, max_depth - 1)) {
                return true;
            }
        }
    } else if (json_is_array(value)) {
        if (max_depth == 0) {
            return true;
        }
        for (size_t i = 0; i < json_array_size(value); i++) {
            if (kp_patch_too_deep(json_array_get(value, i), max_depth - 1)) {
                return true;
            }
        }
    }
    return false;
}

size_t kp_patch_depth(const json_t *value, size_t cap, size_t *visited)
{
    if (visited != NULL) {
        (*visited)++;
    }
    if (!json_is_object(value) && !json_is_array(value)) {
        return 0;
    }
    if (cap == 0) {
        return 1; /* deeper than cap 0: report cap + 1 without looking further */
    }
    size_t deepest = 0;
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member)
        {
            size_t depth = kp_patch_depth(member, cap - 1, visited);
            if (depth > deepest) {
                deepest = depth;
            }
        }
    } else {
        for (size_t i = 0; i < json_array_size(value); i++) {
            size_t depth = kp_patch_depth(json_array_get(value, i), cap - 1, visited);
            if (depth > deepest) {
                deepest = depth;
            }
        }
    }
    return deepest + 1;
}

json_t *kp_patch_copy(const json_t *value)
{
    return json_deep_copy(value);
}

bool kp_patch_is_scalar(const json_t *value)
{
    return value != NULL && !json_is_object(value) && !json_is_array(value);
}

bool kp_patch_scalar_equal(const json_t *a, const json_t *b)
{
    return json_typeof(a) == json_typeof(b) && json_equal(a, b);
}

/* --- scalar index -------------------------------------------------------------------------- */

struct kp_scalar_slot {
    json_t *key;   /* NULL: empty slot */
    uint64_t hash; /* compared first, so a probe rarely touches another slot's key */
    size_t position;
};

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: spreads integer and double bit patterns over the table */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t scalar_hash(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_STRING: {
        const unsigned char *text = (const unsigned char *)json_string_value(value);
        size_t len = json_string_length(value);
        uint64_t hash = 0xcbf29ce484222325ULL; /* FNV-1a */
        for (size_t i = 0; i < len; i++) {
            hash ^= text[i];
            hash *= 0x100000001b3ULL;
        }
        return mix64(hash ^ 1);
    }
    case JSON_INTEGER:
        return mix64((uint64_t)json_integer_value(value) ^ 2);
    case JSON_REAL: {
        double number = json_real_value(value);
        if (number == 0) {
            number = 0; /* -0.0 equals 0.0, so it must hash the same */
        }
        uint64_t bits;
        memcpy(&bits, &number, sizeof(bits));
        return mix64(bits ^ 3);
    }
    case JSON_TRUE:
        return mix64(4);
    case JSON_FALSE:
        return mix64(5);
    default:
        return mix64(6);
    }
}

void kp_scalar_index_init(struct kp_scalar_index *index)
{
    memset(index, 0, sizeof(*index));
}

void kp_scalar_index_wipe(struct kp_scalar_index *index)
{
    for (size_t i = 0; i < index->capacity; i++) {
        json_decref(index->slots[i].key);
    }
    kp_patch_free(index->slots);
    kp_scalar_index_init(index);
}

static struct kp_scalar_slot *find_slot(struct kp_scalar_slot *slots, size_t capacity,
                                        const json_t *key, uint64_t hash)
{
    size_t mask = capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        if (slots[i].key == NULL ||
            (slots[i].hash == hash && kp_patch_scalar_equal(slots[i].key, key))) {
            return &slots[i];
        }
    }
}

static bool grow(struct kp_scalar_index *index)
{
    size_t capacity = index->capacity == 0 ? 16 : index->capacity * 2;
    if (capacity < index->capacity) {
        return false;
    }
    struct kp_scalar_slot *slots = kp_patch_calloc(capacity, sizeof(*slots));
    if (slots == NULL) {
        return false;
    }
    for (size_t i = 0; i < index->capacity; i++) {
        if (index->slots[i].key != NULL) {
            *find_slot(slots, capacity, index->slots[i].key, index->slots[i].hash) =
                index->slots[i];
        }
    }
    kp_patch_free(index->slots);
    index->slots = slots;
    index->capacity = capacity;
    return true;
}

bool kp_scalar_index_add(struct kp_scalar_index *index, json_t *key, size_t position)
{
    /* keep the load under one half so probes stay short */
    if ((index->count + 1) * 2 > index->capacity && !grow(index)) {
        return false;
    }
    uint64_t hash = scalar_hash(key);
    struct kp_scalar_slot *slot = find_slot(index->slots, index->capacity, key, hash);
    if (slot->key == NULL) {
        slot->key = json_incref(key);
        slot->hash = hash;
        slot->position = position;
        index->count++;
    }
    return true;
}

size_t kp_scalar_index_find(const struct kp_scalar_index *index, const json_t *key)
{
    if (index->capacity == 0) {
        return KP_SCALAR_NONE;
    }
    const struct kp_scalar_slot *slot =
        find_slot(index->slots, index->capacity, key, scalar_hash(key));
    return slot->key == NULL ? KP_SCALAR_NONE : slot->position;
}

/* --- paths and quoting for messages --------------------------------------------------------- */

const char *kp_patch_quote(char *out, size_t size, const char *text, size_t len, size_t max_shown)
{
    size_t used = 0;
    if (size == 0) {
        return out;
    }
    for (size_t i = 0; i < len && used + 1 < size; i++) {
        if (i == max_shown) {
            for (int dot = 0; dot < 3 && used + 1 < size; dot++) {
                out[used++] = '.';
            }
            break;
        }
        unsigned char c = (unsigned char)text[i];
        out[used++] = (c < 0x20 || c == 0x7f || c == '\'') ? '?' : (char)c;
    }
    out[used] = '\0';
    return out;
}

void kp_patch_path_init(struct kp_patch_path *path)
{
    path->text[0] = '\0';
    path->len = 0;
}

static void path_append(struct kp_patch_path *path, const char *text)
{
    size_t text_len = strlen(text);
    size_t room = sizeof(path->text) - 1 - path->len;
    if (text_len <= room) {
        memcpy(path->text + path->len, text, text_len);
        path->len += text_len;
    } else {
        /* too long to show: end in "..." (once; later pushes find no room) */
        size_t keep = room >= 3 ? room - 3 : 0;
        memcpy(path->text + path->len, text, keep);
        path->len += keep;
        while (path->len < sizeof(path->text) - 1) {
            path->text[path->len++] = '.';
        }
    }
    path->text[path->len] = '\0';
}

size_t kp_patch_path_push_key(struct kp_patch_path *path, const char *key, size_t key_len)
{
    size_t saved = path->len;
    char shown[80];
    if (path->len > 0) {
        path_append(path, ".");
    }
    path_append(path, kp_patch_quote(shown, sizeof(shown), key, key_len, 64));
    return saved;
}

size_t kp_patch_path_push_index(struct kp_patch_path *path, size_t index)
{
    size_t saved = path->len;
    char shown[32];
    snprintf(shown, sizeof(shown), "[%zu]", index);
    path_append(path, shown);
    return saved;
}

void kp_patch_path_pop(struct kp_patch_path *path, size_t saved_len)
{
    path->len = saved_len;
    path->text[saved_len] = '\0';
}

const char *kp_patch_path_show(const struct kp_patch_path *path)
{
    return path->len == 0 ? "the top level" : path->text;
}

/* --- RFC 7386 ----------------------------------------------------------------------------- */

/*
 * RFC 7386 §2, MergePatch(Target, Patch), with target owned (NULL: absent) and the result
 * returned as a new reference (NULL only when out of memory, target released). Values are
 * copied out of the patch so the result shares nothing with it. Recursion follows the patch,
 * whose depth the caller bounded.
 */
static json_t *merge_patch_value(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return kp_patch_copy(patch);
    }
    if (!json_is_object(target)) {
        /* "Ignore the contents and set it to an empty Object" */
        json_decref(target);
        target = json_object();
        if (target == NULL) {
            return NULL;
        }
    }
    const char *key;
    size_t key_len;
    json_t *value;
    void *iter;
    json_object_keylen_foreach_safe((json_t *)patch, iter, key, key_len, value)
    {
        if (json_is_null(value)) {
            json_object_deln(target, key, key_len);
            continue;
        }
        json_t *child = json_incref(json_object_getn(target, key, key_len));
        json_t *merged = merge_patch_value(child, value);
        if (merged == NULL || json_object_setn_new(target, key, key_len, merged) != 0) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

enum kp_result kp_merge_patch(const json_t *target, const json_t *patch, json_t **out,
                              struct kp_error *err)
{
    *out = NULL;
    if (target == NULL || patch == NULL) {
        return kp_error_set(err, KP_ERR_INTERNAL, "merge patch: no target or no patch");
    }
    if (kp_patch_too_deep(target, KP_PATCH_MAX_DEPTH)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "merge patch: the object nests more than %d levels",
                            KP_PATCH_MAX_DEPTH);
    }
    if (kp_patch_too_deep(patch, KP_PATCH_MAX_DEPTH)) {
        return kp_error_set(err, KP_ERR_INVALID, "merge patch: the patch nests more than %d levels",
                            KP_PATCH_MAX_DEPTH);
    }
    json_t *working = NULL;
    if (json_is_object(patch)) {
        /* only an object patch reads the target */
        working = kp_patch_copy(target);
        if (working == NULL) {
            return kp_patch_oom(err);
        }
    }
    json_t *result = merge_patch_value(working, patch);
    if (result == NULL) {
        return kp_patch_oom(err);
    }
    *out = result;
    return KP_OK;
}
