/*
 * fuzz_patch - kp_merge_patch, kp_strategic_merge_patch (with every served kind's schema, and
 * none) and kp_json_patch (meta/patch.h): the three PATCH bodies kube-apiserver accepts from any
 * client allowed to patch.
 *
 * Input: byte 0 picks the patch type (mod 3: merge, strategic, json patch), byte 1 the kind
 * for strategic merge patch (mod the kinds below, the last meaning no schema); then the object
 * and the patch as JSON texts separated by the first NUL byte. Inputs that are not two JSON
 * texts are skipped (JSON parsing is jansson's, not kpki's).
 *
 * Invariants beyond "no crash, no leak, no UB": the inputs are unchanged; a refusal is one of
 * the documented codes, with a message, and leaves *out NULL; a result nests at most
 * KP_PATCH_MAX_DEPTH levels; a merge patch applied to its own result changes nothing (RFC 7386
 * patches are idempotent); a strategic merge patch gives an object, an empty patch on that
 * object changes nothing, and no member name beginning with '$' appears in it unless the
 * object already had one; a JSON patch result passes a "test" of itself.
 */
#include <string.h>

#include "fuzz.h"
#include "meta/patch.h"
#include "meta/patch_internal.h"

static const char *const kinds[] = {
    "Pod",   "Node", "Namespace",   "ServiceAccount", "Secret",
    "Event", "Role", "RoleBinding", "Lease",          "CertificateSigningRequest",
};
#define KIND_CHOICES (sizeof(kinds) / sizeof(kinds[0]) + 1)

static json_t *parse(const uint8_t *data, size_t size)
{
    json_error_t error;
    return json_loadb((const char *)data, size,
                      JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &error);
}

static char *dump(const json_t *value)
{
    char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_COMPACT);
    if (text == NULL) {
        abort(); /* out of memory: a harness has no better way to report it */
    }
    return text;
}

static bool has_dollar_key(const json_t *value)
{
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member)
        {
            if (key[0] == '$' || has_dollar_key(member)) {
                return true;
            }
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++) {
            if (has_dollar_key(json_array_get(value, i))) {
                return true;
            }
        }
    }
    return false;
}

static void check_merge(const json_t *patch, const json_t *result)
{
    json_t *again = NULL;
    struct kp_error err;
    FUZZ_CHECK(kp_merge_patch(result, patch, &again, &err) == KP_OK);
    FUZZ_CHECK(json_equal(again, result));
    json_decref(again);
}

static void check_strategic(const json_t *target, const struct kp_smp_schema *schema,
                            const json_t *result)
{
    FUZZ_CHECK(json_is_object(result));
    if (!has_dollar_key(target)) {
        FUZZ_CHECK(!has_dollar_key(result));
    }
    json_t *empty = json_object();
    json_t *again = NULL;
    struct kp_error err;
    FUZZ_CHECK(empty != NULL);
    FUZZ_CHECK(kp_strategic_merge_patch(result, empty, schema, &again, &err) == KP_OK);
    FUZZ_CHECK(json_equal(again, result));
    json_decref(again);
    json_decref(empty);
}

static void check_json_patch(const json_t *result)
{
    json_t *test = json_pack("[{s:s, s:s, s:O}]", "op", "test", "path", "", "value", result);
    json_t *again = NULL;
    struct kp_error err;
    FUZZ_CHECK(test != NULL);
    FUZZ_CHECK(kp_json_patch(result, test, &again, &err) == KP_OK);
    FUZZ_CHECK(json_equal(again, result));
    json_decref(again);
    json_decref(test);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    unsigned type = data[0] % 3;
    size_t kind_choice = data[1] % KIND_CHOICES;
    const uint8_t *rest = data + 2;
    size_t rest_size = size - 2;
    const uint8_t *separator = memchr(rest, '\0', rest_size);
    if (separator == NULL) {
        return 0;
    }
    json_t *target = parse(rest, (size_t)(separator - rest));
    json_t *patch = parse(separator + 1, rest_size - (size_t)(separator - rest) - 1);
    if (target == NULL || patch == NULL) {
        json_decref(target);
        json_decref(patch);
        return 0;
    }
    const struct kp_smp_schema *schema =
        kind_choice < KIND_CHOICES - 1 ? kp_smp_schema_for_kind(kinds[kind_choice]) : NULL;
    char *target_before = dump(target);
    char *patch_before = dump(patch);

    json_t *result = (json_t *)1;
    struct kp_error err;
    enum kp_result rc;
    if (type == 0) {
        rc = kp_merge_patch(target, patch, &result, &err);
    } else if (type == 1) {
        rc = kp_strategic_merge_patch(target, patch, schema, &result, &err);
    } else {
        rc = kp_json_patch(target, patch, &result, &err);
    }

    if (rc == KP_OK) {
        FUZZ_CHECK(result != NULL);
        FUZZ_CHECK(!kp_patch_too_deep(result, KP_PATCH_MAX_DEPTH));
        if (type == 0) {
            check_merge(patch, result);
        } else if (type == 1) {
            check_strategic(target, schema, result);
        } else {
            check_json_patch(result);
        }
        json_decref(result);
    } else {
        FUZZ_CHECK(result == NULL);
        FUZZ_CHECK(err.message[0] != '\0');
        FUZZ_CHECK(rc == KP_ERR_INVALID ||
                   (type == 2 && (rc == KP_ERR_CONFLICT || rc == KP_ERR_TOO_LARGE)));
    }

    char *target_after = dump(target);
    char *patch_after = dump(patch);
    FUZZ_CHECK(strcmp(target_before, target_after) == 0);
    FUZZ_CHECK(strcmp(patch_before, patch_after) == 0);
    free(target_before);
    free(patch_before);
    free(target_after);
    free(patch_after);
    json_decref(target);
    json_decref(patch);
    return 0;
}
