/*
 * meta/patch.h - the three patch types kube-apiserver accepts on PATCH:
 *   application/merge-patch+json            JSON merge patch (RFC 7386)
 *   application/strategic-merge-patch+json  Kubernetes' strategic merge patch
 *   application/json-patch+json             JSON patch (RFC 6902)
 * (apply-patch+yaml, server-side apply, is not served; the API answers 415 for it.)
 *
 * Strategic merge patch follows k8s.io/apimachinery/pkg/util/strategicpatch (the apply half, as
 * kube-apiserver runs it): maps merge recursively; null deletes a key; a list whose field has a
 * merge key in the schema is merged element by element on that key (patch elements merge into
 * the original's element with the same key value, new ones are added); a list of primitives
 * whose schema says "merge" is merged as a set; every other list is replaced whole. Directives:
 *   "$patch": "replace" | "delete"              in a map: the map becomes the rest of the patch
 *                                               map, or {}
 *   "$patch": "delete" | "replace"              in an element of a merge-key list: delete the
 *                                               element(s) with that key; replace the list by
 *                                               the patch's other elements
 *   "$retainKeys": [...]                        keys to keep in the original map (every non-null
 *                                               key of the patch map must be listed)
 *   "$deleteFromPrimitiveList/<field>": [...]   values to remove from a list of primitives
 *   "$setElementOrder/<field>": [...]           the order of a merged list after the patch
 * "$patch": "merge" is refused, as upstream refuses it. Any other member name beginning with
 * '$' is an unknown directive: KP_ERR_INVALID (no kind kpki serves has such a field). See
 * docs/meta.md for where kpki differs from upstream.
 *
 * Every function leaves its inputs untouched and returns a new document (a new reference that
 * shares no node with the inputs; free with json_decref). Errors are KP_ERR_INVALID with a
 * message naming the JSON path ("spec.containers[1].env") or the operation, except where a
 * function says otherwise; running out of memory is KP_ERR_IO. Depth is limited to
 * KP_PATCH_MAX_DEPTH for the object, the patch and the result (deeper is KP_ERR_INVALID).
 * Thread-safe: no shared state (jansson's reference counts are atomic, so inputs may be shared
 * between threads).
 */
#ifndef KP_META_PATCH_H
#define KP_META_PATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kpki/error.h"

#define KP_PATCH_MAX_DEPTH 64
/* JSON patch: at most this many operations (kube-apiserver's own limit is 10000). */
#define KP_JSON_PATCH_MAX_OPS 10000
/* JSON patch: "copy" operations (and "move" to a deeper level) may together duplicate or
 * measure at most this many bytes, estimated from nodes and string lengths, so that a short
 * patch cannot double a document into gigabytes. */
#define KP_JSON_PATCH_MAX_COPY_SIZE (4 * 1024 * 1024)

/* RFC 7386: patch applied to target (any JSON values). A non-object patch replaces the
 * target. */
KP_MUST_CHECK enum kp_result kp_merge_patch(const json_t *target, const json_t *patch,
                                            json_t **out, struct kp_error *err);

/* One field of a kind's strategic-merge schema (upstream's patchStrategy and patchMergeKey
 * struct tags). `path` names a field from the object's root with '.' between names and no
 * indices: "spec.containers", "spec.containers.env", "metadata.finalizers". A list field with
 * merge_key merges its (object) elements by that key (patchStrategy "merge"); a list field with
 * merge_key NULL and retain_keys false merges as a set of primitives (patchStrategy "merge"
 * without a key); retain_keys marks the retainKeys strategy (e.g. "spec.volumes": "merge,
 * retainKeys"), which is informational when applying ("$retainKeys" is honoured wherever it
 * appears, as upstream), so an entry with merge_key NULL and retain_keys true is a field whose
 * lists are replaced. Fields not listed: lists are replaced, maps merged. */
struct kp_smp_field {
    const char *path;
    const char *merge_key;
    bool retain_keys;
};

struct kp_smp_schema {
    const struct kp_smp_field *fields;
    size_t count;
};

/* Strategic merge patch of original (an object) with patch (an object) under schema (NULL:
 * no merge keys, every list replaced; maps still merge and directives still apply). schema is
 * borrowed for the call. A non-object original or patch is KP_ERR_INVALID. */
KP_MUST_CHECK enum kp_result kp_strategic_merge_patch(const json_t *original, const json_t *patch,
                                                      const struct kp_smp_schema *schema,
                                                      json_t **out, struct kp_error *err);

/* RFC 6902: patch is an array of operations (add, remove, replace, move, copy, test) with
 * RFC 6901 pointers, applied in order to a copy of target; any failure fails the whole patch.
 * A failed "test" is KP_ERR_CONFLICT (kube-apiserver answers 422 Invalid for it; the caller
 * maps); more than KP_JSON_PATCH_MAX_OPS operations or copies past KP_JSON_PATCH_MAX_COPY_SIZE
 * are KP_ERR_TOO_LARGE; any other failure KP_ERR_INVALID, naming the operation's index and
 * path. RFC 6902 A.13 requires refusing an operation with a duplicated member ("op" twice):
 * parse the body with JSON_REJECT_DUPLICATES, since a json_t cannot show it. */
KP_MUST_CHECK enum kp_result kp_json_patch(const json_t *target, const json_t *patch, json_t **out,
                                           struct kp_error *err);

/* The strategic-merge schemas of the kinds the API server serves, by kind name ("Pod",
 * "Node", "Secret", ...; every kind shares the metadata fields ownerReferences (merge key uid)
 * and finalizers (set)). Never NULL: an unknown kind (or NULL) gets the metadata-only schema.
 * The schema is static: valid for the life of the process. */
const struct kp_smp_schema *kp_smp_schema_for_kind(const char *kind);

#endif
