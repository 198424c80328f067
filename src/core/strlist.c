#include "core/strlist.h"

#include <stdlib.h>
#include <string.h>

void kp_strlist_init(struct kp_strlist *list)
{
    memset(list, 0, sizeof(*list));
}

void kp_strlist_wipe(struct kp_strlist *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i]);
    }
    free(list->items);
    kp_strlist_init(list);
}

enum kp_result kp_strlist_addn(struct kp_strlist *list, const char *item, size_t len,
                               struct kp_error *err)
{
    if (list->count >= KP_STRLIST_MAX) {
        return kp_error_set(err, KP_ERR_INVALID, "too many entries (at most %d)", KP_STRLIST_MAX);
    }
    if (list->count == list->capacity) {
        size_t grown = list->capacity == 0 ? 8 : list->capacity * 2;
        char **bigger = realloc(list->items, grown * sizeof(*bigger));
        if (bigger == NULL) {
            return kp_error_set(err, KP_ERR_IO, "out of memory");
        }
        list->items = bigger;
        list->capacity = grown;
    }
    char *copy = strndup(item, len);
    if (copy == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    list->items[list->count++] = copy;
    return KP_OK;
}

enum kp_result kp_strlist_add(struct kp_strlist *list, const char *item, struct kp_error *err)
{
    return kp_strlist_addn(list, item, strlen(item), err);
}

enum kp_result kp_strlist_add_split(struct kp_strlist *list, const char *text,
                                    struct kp_error *err)
{
    const char *cursor = text;
    while (*cursor != '\0') {
        const char *comma = strchr(cursor, ',');
        const char *end = comma != NULL ? comma : cursor + strlen(cursor);
        const char *start = cursor;
        while (start < end && *start == ' ') {
            start++;
        }
        const char *stop = end;
        while (stop > start && stop[-1] == ' ') {
            stop--;
        }
        if (stop > start) {
            enum kp_result rc = kp_strlist_addn(list, start, (size_t)(stop - start), err);
            if (rc != KP_OK) {
                return rc;
            }
        }
        cursor = comma != NULL ? comma + 1 : end;
    }
    return KP_OK;
}

enum kp_result kp_strlist_copy(struct kp_strlist *dst, const struct kp_strlist *src,
                               struct kp_error *err)
{
    kp_strlist_wipe(dst);
    for (size_t i = 0; i < src->count; i++) {
        enum kp_result rc = kp_strlist_add(dst, src->items[i], err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

bool kp_strlist_contains(const struct kp_strlist *list, const char *item)
{
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->items[i], item) == 0) {
            return true;
        }
    }
    return false;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void kp_strlist_sort_unique(struct kp_strlist *list)
{
    if (list->count < 2) {
        return;
    }
    qsort(list->items, list->count, sizeof(char *), compare_strings);
    size_t kept = 1;
    for (size_t i = 1; i < list->count; i++) {
        if (strcmp(list->items[i], list->items[kept - 1]) == 0) {
            free(list->items[i]);
        } else {
            list->items[kept++] = list->items[i];
        }
    }
    list->count = kept;
}

/* Well-formed UTF-8 (no overlong forms, no surrogates): what YAML files may hold. */
bool kp_utf8_valid(const char *text)
{
    const unsigned char *c = (const unsigned char *)text;
    while (*c != '\0') {
        int extra = *c < 0x80 ? 0 : (*c & 0xe0) == 0xc0 ? 1 : (*c & 0xf0) == 0xe0 ? 2
                                 : (*c & 0xf8) == 0xf0 ? 3 : -1;
        if (extra < 0 || (*c == 0xc0 || *c == 0xc1) || *c > 0xf4) {
            return false;
        }
        unsigned long point = extra == 0 ? *c : (*c & (0x3f >> extra));
        for (int i = 1; i <= extra; i++) {
            if ((c[i] & 0xc0) != 0x80) {
                return false;
            }
            point = (point << 6) | (c[i] & 0x3f);
        }
        static const unsigned long minimum[] = {0, 0x80, 0x800, 0x10000};
        if (point < minimum[extra] || (point >= 0xd800 && point <= 0xdfff) || point > 0x10ffff) {
            return false;
        }
        c += extra + 1;
    }
    return true;
}

