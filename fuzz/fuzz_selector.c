/*
 * fuzz_selector - kp_label_selector_parse, kp_field_selector_parse, kp_selector_to_string and
 * the matchers (meta/selector.h): the parsers of the labelSelector and fieldSelector query
 * parameters, which take text from any client.
 *
 * Invariants beyond "no crash, no leak, no UB": every input is tried as both kinds; a rejected
 * one is KP_ERR_INVALID with a message and leaves the selector empty; an accepted one has a
 * canonical text which (when within the length limit) parses again with the same parser to the
 * same number of requirements, the same canonical text and the same answers from the matchers.
 */
#include <string.h>

#include "fuzz.h"
#include "meta/selector.h"

/* A fixed object for kp_selector_matches_fields: a few fields, the rest absent. */
static const char *field_value(void *context, const char *key)
{
    (void)context;
    static const char *const fields[][2] = {
        {"metadata.name", "web-0"},
        {"metadata.namespace", "default"},
        {"spec.nodeName", "node-1"},
        {"a", "x,y=z\\"},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strcmp(fields[i][0], key) == 0) {
            return fields[i][1];
        }
    }
    return NULL;
}

static void check_round_trip(const char *text, bool label, const json_t *labels)
{
    struct kp_selector selector;
    struct kp_error err;
    enum kp_result rc = label ? kp_label_selector_parse(text, &selector, &err)
                              : kp_field_selector_parse(text, &selector, &err);
    if (rc != KP_OK) {
        FUZZ_CHECK(rc == KP_ERR_INVALID);
        FUZZ_CHECK(err.message[0] != '\0');
        FUZZ_CHECK(selector.count == 0 && selector.requirements == NULL);
        kp_selector_wipe(&selector);
        return;
    }
    FUZZ_CHECK(kp_selector_is_empty(&selector) == (selector.count == 0));
    char *canonical = NULL;
    if (kp_selector_to_string(&selector, &canonical, &err) != KP_OK) {
        FUZZ_CHECK(!"kp_selector_to_string failed on a parsed selector");
    }
    bool matches_labels = kp_selector_matches_labels(&selector, labels);
    bool matches_fields = kp_selector_matches_fields(&selector, field_value, NULL);

    /* "a in(b)" grows to "a in (b)": canonical text may pass the limit the input kept to. */
    if (strlen(canonical) <= KP_SELECTOR_TEXT_MAX) {
        struct kp_selector again;
        rc = label ? kp_label_selector_parse(canonical, &again, &err)
                   : kp_field_selector_parse(canonical, &again, &err);
        if (rc != KP_OK) {
            fprintf(stderr, "canonical text '%s' does not parse: %s\n", canonical, err.message);
        }
        FUZZ_CHECK(rc == KP_OK);
        FUZZ_CHECK(again.count == selector.count);
        char *canonical_again = NULL;
        if (kp_selector_to_string(&again, &canonical_again, &err) != KP_OK) {
            FUZZ_CHECK(!"kp_selector_to_string failed on a reparsed selector");
        }
        FUZZ_CHECK(strcmp(canonical, canonical_again) == 0);
        FUZZ_CHECK(kp_selector_matches_labels(&again, labels) == matches_labels);
        FUZZ_CHECK(kp_selector_matches_fields(&again, field_value, NULL) == matches_fields);
        free(canonical_again);
        kp_selector_wipe(&again);
    }
    free(canonical);
    kp_selector_wipe(&selector);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    json_t *labels = json_pack("{s:s, s:s, s:s, s:i}", "app", "web", "tier", "frontend", "replicas",
                               "3", "not-a-string", 1);
    if (labels == NULL) {
        abort();
    }
    check_round_trip(text, true, labels);
    check_round_trip(text, false, labels);
    json_decref(labels);
    free(text);
    return 0;
}
