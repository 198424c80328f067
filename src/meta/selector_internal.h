/*
 * meta/selector_internal.h - private to meta/selector.c and meta/label_selector.c: the checks
 * and the requirement builder the parser uses, which the metav1.LabelSelector conversion uses
 * too, so that both kinds of input are held to the same rules and messages.
 */
#ifndef KP_META_SELECTOR_INTERNAL_H
#define KP_META_SELECTOR_INTERNAL_H

#include <stddef.h>

#include "core/core.h"
#include "meta/selector.h"

/* Error messages quote at most this many bytes of the input (selector.h promises 64). */
#define QUOTE_MAX 64
/* Every quoted byte may become "\xNN" (4 bytes), then "..." and the NUL. */
#define QUOTED_SIZE (QUOTE_MAX * 4 + 4)

/* Writes the first len bytes of text into out for an error message: printable ASCII as is, any
 * other byte as \xNN, at most QUOTE_MAX input bytes with "..." when cut. Returns out. */
const char *kp_selector_quote(char out[QUOTED_SIZE], const char *text, size_t len);

/* Appends a requirement, taking ownership of key and values (which are left empty) whether it
 * succeeds or not. */
enum kp_result kp_selector_add_requirement(struct kp_selector *selector, size_t *capacity,
                                           char *key, enum kp_selector_op op,
                                           struct kp_strlist *values, struct kp_error *err);

/* NewRequirement's checks: a qualified label key; the values each a valid label value, and an
 * integer for > and <. context names the input in messages. */
enum kp_result kp_selector_check_key(const char *key, const char *context, struct kp_error *err);
enum kp_result kp_selector_check_values(const char *key, enum kp_selector_op op,
                                        const struct kp_strlist *values, const char *context,
                                        struct kp_error *err);

#endif
