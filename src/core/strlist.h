/*
 * core/strlist.h - a growable list of owned strings, and small string checks.
 */
#ifndef KP_CORE_STRLIST_H
#define KP_CORE_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "kpki/error.h"

/* At most this many entries in any list kpki builds from input. */
#define KP_STRLIST_MAX 4096

struct kp_strlist {
    char **items; /* owned; each item owned */
    size_t count;
    size_t capacity;
};

/* Zero-initialising a struct kp_strlist is the same as kp_strlist_init. */
void kp_strlist_init(struct kp_strlist *list);
/* Frees every item and the array; the list is empty and reusable afterwards. */
void kp_strlist_wipe(struct kp_strlist *list);

/* Appends a copy of item. */
KP_MUST_CHECK enum kp_result kp_strlist_add(struct kp_strlist *list, const char *item,
                                            struct kp_error *err);
/* Appends a copy of the first len bytes of item. */
KP_MUST_CHECK enum kp_result kp_strlist_addn(struct kp_strlist *list, const char *item,
                                             size_t len, struct kp_error *err);
/* Appends each comma-separated element of text, trimmed of spaces; empty elements skipped. */
KP_MUST_CHECK enum kp_result kp_strlist_add_split(struct kp_strlist *list, const char *text,
                                                  struct kp_error *err);
/* Replaces dst's contents with copies of src's. */
KP_MUST_CHECK enum kp_result kp_strlist_copy(struct kp_strlist *dst, const struct kp_strlist *src,
                                             struct kp_error *err);

bool kp_strlist_contains(const struct kp_strlist *list, const char *item);
/* Sorts bytewise ascending and removes duplicates (Go's sets.List order). */
void kp_strlist_sort_unique(struct kp_strlist *list);

/* True if text is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF): what YAML files may hold. */
bool kp_utf8_valid(const char *text);

#endif
