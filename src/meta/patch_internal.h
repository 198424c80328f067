/*
 * meta/patch_internal.h - what the three patch implementations share (private to src/meta):
 * allocation through jansson's allocator, depth checks, scalar equality and a scalar-keyed
 * index, and the JSON path kept for error messages.
 *
 * Every allocation goes through jansson's allocator (json_get_alloc_funcs), so a test that
 * installs a failing allocator with json_set_alloc_funcs reaches the out-of-memory paths of
 * kpki's own tables as well as jansson's.
 */
#ifndef KP_META_PATCH_INTERNAL_H
#define KP_META_PATCH_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kpki/error.h"

/* Allocation through jansson's allocator; n * size overflow returns NULL. Free with
 * kp_patch_free (NULL is fine). */
void *kp_patch_calloc(size_t n, size_t size);
void kp_patch_free(void *ptr);

/* The out-of-memory error every patch function reports (KP_ERR_IO, like core/file.c). */
enum kp_result kp_patch_oom(struct kp_error *err);

/* True if value nests more than max_depth containers ({} and [] count 1, scalars 0). The
 * recursion stops at max_depth + 1, so it is safe on any document jansson parsed. */
bool kp_patch_too_deep(const json_t *value, size_t max_depth);

/* The nesting depth of value, or cap + 1 if it is deeper than cap. Adds the number of nodes
 * visited to *visited (may be NULL), for callers that budget work. */
size_t kp_patch_depth(const json_t *value, size_t cap, size_t *visited);

/* A new, independent copy of value (jansson's deep copy), or NULL when out of memory. */
json_t *kp_patch_copy(const json_t *value);

/* True for strings, numbers, booleans and null. */
bool kp_patch_is_scalar(const json_t *value);

/* Scalar equality as Go's == sees apimachinery's decoded JSON: same JSON type (an integer
 * never equals a real, as int64 never equals float64) and same value. */
bool kp_patch_scalar_equal(const json_t *a, const json_t *b);

/* A hash index from scalar values (kp_patch_scalar_equal) to positions, keeping the first
 * position inserted for each value. Keys are referenced (incref) while in the index. */
#define KP_SCALAR_NONE ((size_t)-1)

struct kp_scalar_index {
    struct kp_scalar_slot *slots; /* owned */
    size_t capacity;              /* a power of two, or 0 */
    size_t count;
};

/* Zero-initialising the struct is the same as kp_scalar_index_init. */
void kp_scalar_index_init(struct kp_scalar_index *index);
void kp_scalar_index_wipe(struct kp_scalar_index *index);
/* Adds key -> position unless key is present. key must be a scalar. Returns false when out of
 * memory (the index is unchanged). */
KP_MUST_CHECK bool kp_scalar_index_add(struct kp_scalar_index *index, json_t *key, size_t position);
/* The position stored for key, or KP_SCALAR_NONE. */
size_t kp_scalar_index_find(const struct kp_scalar_index *index, const json_t *key);

/* The JSON path of the value being worked on, for messages ("spec.containers[1].env"). Keys
 * are shown at most 64 bytes each, non-printable bytes as '?'; a path longer than the buffer
 * ends in "...". */
#define KP_PATCH_PATH_MAX 256

struct kp_patch_path {
    char text[KP_PATCH_PATH_MAX];
    size_t len;
};

void kp_patch_path_init(struct kp_patch_path *path);
/* Appends ".key" (or "key" at the top) and returns the length to restore with pop. */
size_t kp_patch_path_push_key(struct kp_patch_path *path, const char *key, size_t key_len);
/* Appends "[index]" and returns the length to restore with pop. */
size_t kp_patch_path_push_index(struct kp_patch_path *path, size_t index);
void kp_patch_path_pop(struct kp_patch_path *path, size_t saved_len);
/* The path, or "the top level" when empty. */
const char *kp_patch_path_show(const struct kp_patch_path *path);

/* Copies text into out (size bytes, NUL-terminated) for a message: at most max_shown bytes,
 * then "..."; non-printable bytes and '\'' shown as '?'. Returns out. */
const char *kp_patch_quote(char *out, size_t size, const char *text, size_t len, size_t max_shown);

#endif
