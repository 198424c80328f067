/*
 * meta/label_selector.c - a metav1.LabelSelector object ({"matchLabels": ..., "matchExpressions":
 * [...]}) as a parsed selector, after k8s.io/apimachinery pkg/apis/meta/v1/helpers.go
 * (LabelSelectorAsSelector). Separate from selector.c, which parses selector text: this reads
 * JSON and shares only the checks and the requirement builder (selector_internal.h).
 */
#include "meta/selector.h"
#include "meta/selector_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JSON string as a C string, refusing one with an embedded NUL (it would be cut short). */
static const char *json_cstring(const json_t *value)
{
    const char *text = json_string_value(value);
    if (text == NULL || strlen(text) != json_string_length(value)) {
        return NULL;
    }
    return text;
}

static enum kp_result add_match_labels(struct kp_selector *selector, size_t *capacity,
                                       const json_t *match_labels, struct kp_error *err)
{
    if (!json_is_object(match_labels)) {
        return kp_error_set(err, KP_ERR_INVALID, "label selector: matchLabels must be an object");
    }
    char key_text[QUOTED_SIZE];
    const char *key;
    json_t *value;
    /* Cast: jansson's iteration macro takes a non-const object; nothing is modified. */
    json_object_foreach((json_t *)match_labels, key, value)
    {
        const char *value_string = json_cstring(value);
        if (value_string == NULL) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "label selector: matchLabels.%s must be a string",
                                kp_selector_quote(key_text, key, strlen(key)));
        }
        enum kp_result rc = kp_selector_check_key(key, "label selector: matchLabels", err);
        if (rc != KP_OK) {
            return rc;
        }
        struct kp_strlist values;
        kp_strlist_init(&values);
        rc = kp_strlist_add(&values, value_string, err);
        if (rc == KP_OK) {
            rc = kp_selector_check_values(key, KP_SEL_EQUALS, &values,
                                          "label selector: matchLabels", err);
        }
        char *key_copy = NULL;
        if (rc == KP_OK) {
            key_copy = strdup(key);
            if (key_copy == NULL) {
                rc = kp_error_set(err, KP_ERR_IO, "out of memory");
            }
        }
        if (rc == KP_OK) {
            rc = kp_selector_add_requirement(selector, capacity, key_copy, KP_SEL_EQUALS, &values,
                                             err);
        }
        kp_strlist_wipe(&values);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

static enum kp_result add_match_expression(struct kp_selector *selector, size_t *capacity,
                                           const json_t *expression, size_t index,
                                           struct kp_error *err)
{
    char where[64];
    char text[QUOTED_SIZE];
    snprintf(where, sizeof(where), "label selector: matchExpressions[%zu]", index);
    if (!json_is_object(expression)) {
        return kp_error_set(err, KP_ERR_INVALID, "%s must be an object", where);
    }
    const char *key = json_cstring(json_object_get(expression, "key"));
    if (key == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "%s.key must be a string", where);
    }
    const char *operator_name = json_cstring(json_object_get(expression, "operator"));
    if (operator_name == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "%s.operator must be a string", where);
    }
    enum kp_selector_op op;
    if (strcmp(operator_name, "In") == 0) {
        op = KP_SEL_IN;
    } else if (strcmp(operator_name, "NotIn") == 0) {
        op = KP_SEL_NOT_IN;
    } else if (strcmp(operator_name, "Exists") == 0) {
        op = KP_SEL_EXISTS;
    } else if (strcmp(operator_name, "DoesNotExist") == 0) {
        op = KP_SEL_DOES_NOT_EXIST;
    } else {
        return kp_error_set(err, KP_ERR_INVALID,
                            "%s.operator: '%s' is not a valid label selector operator "
                            "(In, NotIn, Exists, DoesNotExist)",
                            where, kp_selector_quote(text, operator_name, strlen(operator_name)));
    }
    enum kp_result rc = kp_selector_check_key(key, where, err);
    if (rc != KP_OK) {
        return rc;
    }
    const json_t *values_json = json_object_get(expression, "values");
    if (values_json != NULL && !json_is_null(values_json) && !json_is_array(values_json)) {
        return kp_error_set(err, KP_ERR_INVALID, "%s.values must be an array of strings", where);
    }
    size_t value_count = json_is_array(values_json) ? json_array_size(values_json) : 0;
    if ((op == KP_SEL_IN || op == KP_SEL_NOT_IN) && value_count == 0) {
        return kp_error_set(err, KP_ERR_INVALID, "%s.values: must not be empty for the operator %s",
                            where, operator_name);
    }
    if ((op == KP_SEL_EXISTS || op == KP_SEL_DOES_NOT_EXIST) && value_count != 0) {
        return kp_error_set(err, KP_ERR_INVALID, "%s.values: must be empty for the operator %s",
                            where, operator_name);
    }
    struct kp_strlist values;
    kp_strlist_init(&values);
    char *key_copy = NULL;
    for (size_t i = 0; i < value_count && rc == KP_OK; i++) {
        const char *value = json_cstring(json_array_get(values_json, i));
        if (value == NULL) {
            rc = kp_error_set(err, KP_ERR_INVALID, "%s.values[%zu] must be a string", where, i);
        } else {
            rc = kp_strlist_add(&values, value, err);
        }
    }
    if (rc == KP_OK) {
        rc = kp_selector_check_values(key, op, &values, where, err);
    }
    if (rc == KP_OK) {
        key_copy = strdup(key);
        if (key_copy == NULL) {
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        }
    }
    if (rc == KP_OK) {
        /* Values as given, duplicates included, as upstream copies them. */
        rc = kp_selector_add_requirement(selector, capacity, key_copy, op, &values, err);
    }
    kp_strlist_wipe(&values);
    return rc;
}

enum kp_result kp_label_selector_from_json(const json_t *object, struct kp_selector *selector,
                                           struct kp_error *err)
{
    memset(selector, 0, sizeof(*selector));
    if (!json_is_object(object)) {
        return kp_error_set(err, KP_ERR_INVALID, "label selector: must be a JSON object");
    }
    size_t capacity = 0;
    enum kp_result rc = KP_OK;
    const json_t *match_labels = json_object_get(object, "matchLabels");
    if (match_labels != NULL && !json_is_null(match_labels)) {
        rc = add_match_labels(selector, &capacity, match_labels, err);
    }
    const json_t *expressions = json_object_get(object, "matchExpressions");
    if (rc == KP_OK && expressions != NULL && !json_is_null(expressions)) {
        if (!json_is_array(expressions)) {
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "label selector: matchExpressions must be an array");
        }
        for (size_t i = 0; rc == KP_OK && i < json_array_size(expressions); i++) {
            rc = add_match_expression(selector, &capacity, json_array_get(expressions, i), i, err);
        }
    }
    if (rc != KP_OK) {
        kp_selector_wipe(selector);
    }
    return rc;
}
