/*
 * The NodeRestriction admission plugin (k8s.io/kubernetes
 * plugin/pkg/admission/noderestriction/admission.go), as of Kubernetes 1.31: what a node may
 * change in the objects the Node authorizer lets it write (the rules are listed at
 * kp_node_admit in node.h). A module of its own, apart from the authorizer (node.c) and its
 * graph (node_graph.c): it runs at admission on the request's objects, looks pods and nodes up
 * through the request, and shares with them only what node_internal.h holds.
 */
#include "auth/node.h"
#include "auth/node_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- NodeRestriction (admission.go) ---- */

/* Go's %q for the names that appear in these messages. */
static const char *quote(char *buffer, size_t size, const char *text)
{
    size_t used = 0;
    if (size < 3) {
        return "\"\"";
    }
    buffer[used++] = '"';
    for (const unsigned char *p = (const unsigned char *)or_empty(text);
         *p != '\0' && used + 6 < size; p++) {
        if (*p == '"' || *p == '\\') {
            buffer[used++] = '\\';
            buffer[used++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            used += (size_t)snprintf(buffer + used, size - used, "\\x%02x", *p);
        } else {
            buffer[used++] = (char)*p;
        }
    }
    buffer[used++] = '"';
    buffer[used] = '\0';
    return buffer;
}

/* admission.NewForbidden: `<resource>[.<group>] "<name>" is forbidden: <reason>`, where the
 * name is the object's (or its generateName), "Unknown" without one (a DELETE carries no
 * object, so upstream's delete refusals read `pods "Unknown" is forbidden: ...`). */
static enum kp_result forbidden(const struct kp_admission_request *request, struct kp_error *err,
                                const char *fmt, ...) KP_PRINTF(3, 4);

static enum kp_result forbidden(const struct kp_admission_request *request, struct kp_error *err,
                                const char *fmt, ...)
{
    char reason[KP_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    const json_t *metadata = json_object_get(request->object, "metadata");
    const char *name = member_string(metadata, "name");
    if (name == NULL || name[0] == '\0') {
        name = member_string(metadata, "generateName");
    }
    if (name == NULL || name[0] == '\0') {
        name = "Unknown";
    }
    const char *group = or_empty(request->api_group);
    char quoted[300];
    return kp_error_set(err, KP_ERR_FORBIDDEN, "%s%s%s %s is forbidden: %s",
                        or_empty(request->resource), group[0] != '\0' ? "." : "", group,
                        quote(quoted, sizeof(quoted), name), reason);
}

/* A lister's NotFound, e.g. `pod "x" not found`. */
static enum kp_result not_found(struct kp_error *err, const char *kind, const char *name)
{
    char quoted[300];
    return kp_error_set(err, KP_ERR_NOT_FOUND, "%s %s not found", kind,
                        quote(quoted, sizeof(quoted), name));
}

static json_t *lookup(const struct kp_admission_request *request, const char *resource,
                      const char *ns, const char *name)
{
    if (request->lookup == NULL) {
        return NULL;
    }
    return request->lookup(request->lookup_context, resource, ns, name);
}

static const char *object_name(const json_t *object)
{
    return or_empty(member_string(json_object_get(object, "metadata"), "name"));
}

static const char *spec_node_name(const json_t *pod)
{
    return or_empty(member_string(json_object_get(pod, "spec"), "nodeName"));
}

static bool operation_is(const struct kp_admission_request *request, const char *operation)
{
    return strcmp(or_empty(request->operation), operation) == 0;
}

static enum kp_result unexpected_type(const struct kp_admission_request *request,
                                      struct kp_error *err)
{
    return forbidden(request, err, "unexpected type <nil>");
}

static bool count_visit(void *context, const char *name)
{
    (void)name;
    *(bool *)context = true;
    return false;
}

static enum kp_result admit_pod_create(const char *node, const struct kp_admission_request *request,
                                       struct kp_error *err)
{
    const json_t *pod = request->object;
    char q[300];
    if (!json_is_object(pod)) {
        return unexpected_type(request, err);
    }
    if (!has_annotation(pod, MIRROR_POD_ANNOTATION)) {
        return forbidden(request, err,
                         "pod does not have \"" MIRROR_POD_ANNOTATION
                         "\" annotation, node %s can only create mirror pods",
                         quote(q, sizeof(q), node));
    }
    if (strcmp(spec_node_name(pod), node) != 0) {
        return forbidden(request, err,
                         "node %s can only create pods with spec.nodeName set to itself",
                         quote(q, sizeof(q), node));
    }
    const json_t *owners = json_object_get(json_object_get(pod, "metadata"), "ownerReferences");
    size_t owner_count = json_is_array(owners) ? json_array_size(owners) : 0;
    if (owner_count > 1) {
        return forbidden(request, err,
                         "node %s can only create pods with a single owner reference set to "
                         "itself",
                         quote(q, sizeof(q), node));
    }
    const json_t *owner = json_array_get(owners, 0);
    if (owner_count == 0 || strcmp(or_empty(member_string(owner, "apiVersion")), "v1") != 0 ||
        strcmp(or_empty(member_string(owner, "kind")), "Node") != 0 ||
        strcmp(or_empty(member_string(owner, "name")), node) != 0) {
        return forbidden(request, err,
                         "node %s can only create pods with an owner reference set to itself",
                         quote(q, sizeof(q), node));
    }
    if (!json_is_true(json_object_get(owner, "controller"))) {
        return forbidden(request, err,
                         "node %s can only create pods with a controller owner reference set to "
                         "itself",
                         quote(q, sizeof(q), node));
    }
    if (json_is_true(json_object_get(owner, "blockOwnerDeletion"))) {
        return forbidden(request, err,
                         "node %s must not set blockOwnerDeletion on an owner reference",
                         quote(q, sizeof(q), node));
    }
    json_t *node_object = lookup(request, "nodes", "", node);
    if (node_object == NULL) {
        return not_found(err, "node", node);
    }
    const char *owner_uid = or_empty(member_string(owner, "uid"));
    const char *node_uid = or_empty(member_string(json_object_get(node_object, "metadata"), "uid"));
    if (strcmp(owner_uid, node_uid) != 0) {
        enum kp_result rc = forbidden(request, err, "node %s UID mismatch: expected %s got %s",
                                      node, owner_uid, node_uid);
        json_decref(node_object);
        return rc;
    }
    json_decref(node_object);
    if (kp_node_pod_service_account(pod)[0] != '\0') {
        return forbidden(request, err,
                         "node %s can not create pods that reference a service account",
                         quote(q, sizeof(q), node));
    }
    bool found = false;
    kp_node_visit_pod_secret_names(pod, count_visit, &found);
    if (found) {
        return forbidden(request, err, "node %s can not create pods that reference secrets",
                         quote(q, sizeof(q), node));
    }
    kp_node_visit_pod_configmap_names(pod, count_visit, &found);
    if (found) {
        return forbidden(request, err, "node %s can not create pods that reference configmaps",
                         quote(q, sizeof(q), node));
    }
    const json_t *volumes = json_object_get(json_object_get(pod, "spec"), "volumes");
    size_t i;
    const json_t *volume;
    json_array_foreach(volumes, i, volume)
    {
        size_t s;
        const json_t *source;
        json_array_foreach(json_object_get(json_object_get(volume, "projected"), "sources"), s,
                           source)
        {
            if (json_object_get(source, "clusterTrustBundle") != NULL) {
                return forbidden(request, err,
                                 "node %s can not create pods that reference clustertrustbundles",
                                 quote(q, sizeof(q), node));
            }
        }
    }
    json_array_foreach(volumes, i, volume)
    {
        if (json_is_object(json_object_get(volume, "persistentVolumeClaim"))) {
            return forbidden(request, err,
                             "node %s can not create pods that reference persistentvolumeclaims",
                             quote(q, sizeof(q), node));
        }
    }
    return KP_OK;
}

static enum kp_result admit_pod(const char *node, const struct kp_admission_request *request,
                                struct kp_error *err)
{
    char q[300];
    char q2[300];
    if (operation_is(request, "CREATE")) {
        return admit_pod_create(node, request, err);
    }
    if (operation_is(request, "DELETE")) {
        json_t *existing =
            lookup(request, "pods", or_empty(request->namespace_), or_empty(request->name));
        if (existing == NULL) {
            return not_found(err, "pod", or_empty(request->name));
        }
        bool own = strcmp(spec_node_name(existing), node) == 0;
        json_decref(existing);
        if (!own) {
            return forbidden(request, err,
                             "node %s can only delete pods with spec.nodeName set to itself",
                             quote(q, sizeof(q), node));
        }
        return KP_OK;
    }
    return forbidden(request, err,
                     "unexpected operation %s, node %s can only create and delete mirror pods",
                     quote(q, sizeof(q), request->operation), quote(q2, sizeof(q2), node));
}

/* labels.Equals: a missing map equals an empty one. */
static bool labels_equal(const json_t *a, const json_t *b)
{
    size_t a_size = json_is_object(a) ? json_object_size(a) : 0;
    size_t b_size = json_is_object(b) ? json_object_size(b) : 0;
    if (a_size != b_size) {
        return false;
    }
    return a_size == 0 || json_equal(a, b);
}

static const json_t *pod_labels(const json_t *pod)
{
    return json_object_get(json_object_get(pod, "metadata"), "labels");
}

static bool claim_statuses_equal(const json_t *a, const json_t *b)
{
    size_t count = json_is_array(a) ? json_array_size(a) : 0;
    if (count != (json_is_array(b) ? json_array_size(b) : 0)) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        const json_t *left = json_array_get(a, i);
        const json_t *right = json_array_get(b, i);
        const char *left_claim = member_string(left, "resourceClaimName");
        const char *right_claim = member_string(right, "resourceClaimName");
        if (strcmp(or_empty(member_string(left, "name")), or_empty(member_string(right, "name"))) !=
                0 ||
            (left_claim == NULL) != (right_claim == NULL) ||
            (left_claim != NULL && strcmp(left_claim, right_claim) != 0)) {
            return false;
        }
    }
    return true;
}

/* A status update (pods/status, persistentvolumeclaims/status): an UPDATE carrying the old and
 * the new object; anything else is refused as upstream refuses it. KP_OK to go on. */
static enum kp_result expect_status_update(const struct kp_admission_request *request,
                                           struct kp_error *err)
{
    char q[300];
    if (!operation_is(request, "UPDATE")) {
        return forbidden(request, err, "unexpected operation %s",
                         quote(q, sizeof(q), request->operation));
    }
    if (!json_is_object(request->old_object) || !json_is_object(request->object)) {
        return unexpected_type(request, err);
    }
    return KP_OK;
}

static enum kp_result admit_pod_status(const char *node, const struct kp_admission_request *request,
                                       struct kp_error *err)
{
    enum kp_result rc = expect_status_update(request, err);
    if (rc != KP_OK) {
        return rc;
    }
    char q[300];
    if (strcmp(spec_node_name(request->old_object), node) != 0) {
        return forbidden(request, err,
                         "node %s can only update pod status for pods with spec.nodeName set to "
                         "itself",
                         quote(q, sizeof(q), node));
    }
    if (!labels_equal(pod_labels(request->old_object), pod_labels(request->object))) {
        return forbidden(request, err, "node %s cannot update labels through pod status",
                         quote(q, sizeof(q), node));
    }
    const json_t *old_claims =
        json_object_get(json_object_get(request->old_object, "status"), "resourceClaimStatuses");
    const json_t *new_claims =
        json_object_get(json_object_get(request->object, "status"), "resourceClaimStatuses");
    if (!claim_statuses_equal(old_claims, new_claims)) {
        /* sic: upstream's spelling */
        return forbidden(request, err, "node %s cannot update resource claim statues",
                         quote(q, sizeof(q), node));
    }
    return KP_OK;
}

static enum kp_result admit_pod_eviction(const char *node,
                                         const struct kp_admission_request *request,
                                         struct kp_error *err)
{
    if (!operation_is(request, "CREATE")) {
        return forbidden(request, err, "unexpected operation %s", or_empty(request->operation));
    }
    if (!json_is_object(request->object)) {
        return unexpected_type(request, err);
    }
    /* The pod named in the URL, else the Eviction's own name. */
    const char *pod_name = or_empty(request->name);
    if (pod_name[0] == '\0') {
        pod_name = object_name(request->object);
        if (pod_name[0] == '\0') {
            return forbidden(request, err, "could not determine pod from request data");
        }
    }
    json_t *existing = lookup(request, "pods", or_empty(request->namespace_), pod_name);
    if (existing == NULL) {
        return not_found(err, "pod", pod_name);
    }
    bool own = strcmp(spec_node_name(existing), node) == 0;
    json_decref(existing);
    if (!own) {
        return forbidden(request, err,
                         "node %s can only evict pods with spec.nodeName set to itself", node);
    }
    return KP_OK;
}

/* A copy of a PersistentVolumeClaim without what a node may change, and without empty
 * members (Semantic.DeepEqual treats nil and empty alike). */
static void drop_empty(json_t *value)
{
    if (json_is_array(value)) {
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            drop_empty(item);
        }
        return;
    }
    if (!json_is_object(value)) {
        return;
    }
    const char *key;
    json_t *member;
    void *tmp;
    json_object_foreach_safe(value, tmp, key, member)
    {
        drop_empty(member);
        if (json_is_null(member) || (json_is_array(member) && json_array_size(member) == 0) ||
            (json_is_object(member) && json_object_size(member) == 0)) {
            json_object_del(value, key);
        }
    }
}

static json_t *pvc_comparable(const json_t *pvc)
{
    json_t *copy = json_deep_copy(pvc);
    if (copy == NULL) {
        return NULL;
    }
    json_t *metadata = json_object_get(copy, "metadata");
    json_object_del(metadata, "resourceVersion");
    json_object_del(metadata, "managedFields");
    json_t *status = json_object_get(copy, "status");
    json_object_del(status, "capacity");
    json_object_del(status, "conditions");
    drop_empty(copy);
    return copy;
}

static enum kp_result admit_pvc_status(const char *node, const struct kp_admission_request *request,
                                       struct kp_error *err)
{
    enum kp_result rc = expect_status_update(request, err);
    if (rc != KP_OK) {
        return rc;
    }
    char q[300];
    json_t *old_pvc = pvc_comparable(request->old_object);
    json_t *new_pvc = pvc_comparable(request->object);
    if (old_pvc == NULL || new_pvc == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory comparing persistent volume claims");
    } else if (!json_equal(old_pvc, new_pvc)) {
        /* Upstream appends cmp.Diff of the two objects; kpki names the members that differ. */
        char changed[256] = "";
        size_t used = 0;
        static const char *const parts[] = {"metadata", "spec", "status"};
        for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
            const json_t *left = json_object_get(old_pvc, parts[p]);
            const json_t *right = json_object_get(new_pvc, parts[p]);
            const char *key;
            const json_t *value;
            json_t *both[2] = {(json_t *)left, (json_t *)right};
            for (size_t side = 0; side < 2; side++) {
                json_object_foreach(both[side], key, value)
                {
                    const json_t *other = json_object_get(both[1 - side], key);
                    if (other != NULL && json_equal(value, other)) {
                        continue;
                    }
                    if (side == 1 && other != NULL) {
                        continue; /* reported from the left */
                    }
                    used += (size_t)snprintf(changed + used,
                                             used < sizeof(changed) ? sizeof(changed) - used : 0,
                                             "%s%s.%s", used > 0 ? ", " : "", parts[p], key);
                    if (used >= sizeof(changed)) {
                        used = sizeof(changed) - 1;
                    }
                }
            }
        }
        if (used == 0) {
            snprintf(changed, sizeof(changed), "the object");
        }
        rc = forbidden(request, err,
                       "node %s is not allowed to update fields other than status.capacity and "
                       "status.conditions: changed %s",
                       quote(q, sizeof(q), node), changed);
    }
    json_decref(old_pvc);
    json_decref(new_pvc);
    return rc;
}

/* k8s.io/kubelet/pkg/apis IsKubeletLabel: the labels a kubelet may set on its Node. */
static bool is_kubelet_label(const char *key, const char *label_namespace)
{
    static const char *const kubelet_labels[] = {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    };
    for (size_t i = 0; i < sizeof(kubelet_labels) / sizeof(kubelet_labels[0]); i++) {
        if (strcmp(key, kubelet_labels[i]) == 0) {
            return true;
        }
    }
    /* kubelet.kubernetes.io/ and node.kubernetes.io/ (node.kubernetes.io/windows-build among
     * them), and their subdomains. */
    static const char *const kubelet_namespaces[] = {"kubelet.kubernetes.io", "node.kubernetes.io"};
    size_t len = strlen(label_namespace);
    for (size_t i = 0; i < sizeof(kubelet_namespaces) / sizeof(kubelet_namespaces[0]); i++) {
        size_t suffix_len = strlen(kubelet_namespaces[i]);
        if (strcmp(label_namespace, kubelet_namespaces[i]) == 0 ||
            (len > suffix_len && label_namespace[len - suffix_len - 1] == '.' &&
             strcmp(label_namespace + len - suffix_len, kubelet_namespaces[i]) == 0)) {
            return true;
        }
    }
    return false;
}

static bool namespace_is(const char *label_namespace, const char *domain)
{
    size_t len = strlen(label_namespace);
    size_t domain_len = strlen(domain);
    return strcmp(label_namespace, domain) == 0 ||
           (len > domain_len && label_namespace[len - domain_len - 1] == '.' &&
            strcmp(label_namespace + len - domain_len, domain) == 0);
}

/* getForbiddenLabels over getModifiedLabels(new, old); the result sorted. */
static enum kp_result forbidden_labels(const json_t *new_labels, const json_t *old_labels,
                                       struct kp_strlist *out, struct kp_error *err)
{
    const json_t *sides[2] = {new_labels, old_labels};
    for (size_t side = 0; side < 2; side++) {
        if (!json_is_object(sides[side])) {
            continue;
        }
        const char *key;
        const json_t *value;
        json_object_foreach((json_t *)sides[side], key, value)
        {
            const json_t *other =
                json_is_object(sides[1 - side]) ? json_object_get(sides[1 - side], key) : NULL;
            if (other != NULL && json_equal(value, other)) {
                continue; /* not modified */
            }
            char label_namespace[256] = "";
            const char *slash = strchr(key, '/');
            if (slash != NULL) {
                snprintf(label_namespace, sizeof(label_namespace), "%.*s", (int)(slash - key), key);
            }
            bool refused = namespace_is(label_namespace, "node-restriction.kubernetes.io");
            bool kubernetes = namespace_is(label_namespace, "kubernetes.io") ||
                              namespace_is(label_namespace, "k8s.io");
            if (kubernetes && !is_kubelet_label(key, label_namespace)) {
                refused = true;
            }
            if (refused && !kp_strlist_contains(out, key)) {
                enum kp_result rc = kp_strlist_add(out, key, err);
                if (rc != KP_OK) {
                    return rc;
                }
            }
        }
    }
    kp_strlist_sort_unique(out);
    return KP_OK;
}

static void join(char *buffer, size_t size, const struct kp_strlist *list)
{
    size_t used = 0;
    buffer[0] = '\0';
    for (size_t i = 0; i < list->count && used + 1 < size; i++) {
        int written =
            snprintf(buffer + used, size - used, "%s%s", i > 0 ? ", " : "", list->items[i]);
        if (written < 0) {
            break;
        }
        used += (size_t)written;
    }
}

static const json_t *node_spec_member(const json_t *node, const char *key)
{
    const json_t *value = json_object_get(json_object_get(node, "spec"), key);
    return json_is_null(value) ? NULL : value;
}

/* Semantic.DeepEqual on taints: a missing list equals an empty one. */
static bool taints_equal(const json_t *a, const json_t *b)
{
    size_t a_size = json_is_array(a) ? json_array_size(a) : 0;
    size_t b_size = json_is_array(b) ? json_array_size(b) : 0;
    if (a_size != b_size) {
        return false;
    }
    return a_size == 0 || json_equal(a, b);
}

static enum kp_result admit_node(const char *node, const struct kp_admission_request *request,
                                 struct kp_error *err)
{
    char q[300];
    char q2[300];
    if (strcmp(or_empty(request->name), node) != 0) {
        return forbidden(request, err, "node %s is not allowed to modify node %s",
                         quote(q, sizeof(q), node), quote(q2, sizeof(q2), request->name));
    }
    bool create = operation_is(request, "CREATE");
    if (!create && !operation_is(request, "UPDATE")) {
        return KP_OK;
    }
    if (!json_is_object(request->object) || (!create && !json_is_object(request->old_object))) {
        return unexpected_type(request, err);
    }
    const json_t *config_source = node_spec_member(request->object, "configSource");
    const json_t *old_labels = NULL;
    if (create) {
        if (config_source != NULL) {
            /* sic: upstream says "pods" */
            return forbidden(request, err,
                             "node %s is not allowed to create pods with a non-nil configSource",
                             quote(q, sizeof(q), node));
        }
    } else {
        const json_t *old_source = node_spec_member(request->old_object, "configSource");
        if (config_source != NULL &&
            (old_source == NULL || !json_equal(config_source, old_source))) {
            return forbidden(request, err,
                             "node %s is not allowed to update configSource to a new non-nil "
                             "configSource",
                             quote(q, sizeof(q), node));
        }
        if (!taints_equal(node_spec_member(request->object, "taints"),
                          node_spec_member(request->old_object, "taints"))) {
            return forbidden(request, err, "node %s is not allowed to modify taints",
                             quote(q, sizeof(q), node));
        }
        old_labels = pod_labels(request->old_object);
    }
    struct kp_strlist refused = {0};
    enum kp_result rc = forbidden_labels(pod_labels(request->object), old_labels, &refused, err);
    if (rc == KP_OK && refused.count > 0) {
        char list[KP_ERROR_MESSAGE_MAX];
        join(list, sizeof(list), &refused);
        if (create) {
            rc = forbidden(request, err, "node %s is not allowed to set the following labels: %s",
                           quote(q, sizeof(q), node), list);
        } else {
            /* sic: upstream's update message does not name the node */
            rc = forbidden(request, err, "is not allowed to modify labels: %s", list);
        }
    }
    kp_strlist_wipe(&refused);
    return rc;
}

static enum kp_result admit_service_account(const char *node,
                                            const struct kp_admission_request *request,
                                            struct kp_error *err)
{
    (void)node;
    if (!operation_is(request, "CREATE") || strcmp(or_empty(request->subresource), "token") != 0) {
        return KP_OK;
    }
    if (!json_is_object(request->object)) {
        return unexpected_type(request, err);
    }
    /* A node's TokenRequest must be bound to a pod scheduled on it; the API server then adds
     * the node binding itself. */
    const json_t *ref = json_object_get(json_object_get(request->object, "spec"), "boundObjectRef");
    const char *ref_name = or_empty(member_string(ref, "name"));
    if (!json_is_object(ref) || strcmp(or_empty(member_string(ref, "apiVersion")), "v1") != 0 ||
        strcmp(or_empty(member_string(ref, "kind")), "Pod") != 0 || ref_name[0] == '\0') {
        return forbidden(request, err, "node requested token not bound to a pod");
    }
    const char *ref_uid = or_empty(member_string(ref, "uid"));
    if (ref_uid[0] == '\0') {
        return forbidden(request, err, "node requested token with a pod binding without a uid");
    }
    json_t *pod = lookup(request, "pods", or_empty(request->namespace_), ref_name);
    if (pod == NULL) {
        return not_found(err, "pod", ref_name);
    }
    enum kp_result rc = KP_OK;
    if (strcmp(ref_uid, or_empty(member_string(json_object_get(pod, "metadata"), "uid"))) != 0) {
        rc = forbidden(request, err,
                       "the UID in the bound object reference (%s) does not match the UID in "
                       "record. The object might have been deleted and then recreated",
                       ref_uid);
    } else if (strcmp(spec_node_name(pod), node) != 0) {
        rc = forbidden(request, err,
                       "node requested token bound to a pod scheduled on a different node");
    }
    json_decref(pod);
    return rc;
}

static enum kp_result admit_named_self(const char *node, const struct kp_admission_request *request,
                                       const char *what, struct kp_error *err)
{
    /* On create the request carries the name being created; upstream reads the object's. */
    const char *name = or_empty(request->name);
    if (operation_is(request, "CREATE")) {
        if (!json_is_object(request->object)) {
            return unexpected_type(request, err);
        }
        name = object_name(request->object);
    }
    if (strcmp(name, node) != 0) {
        return forbidden(request, err,
                         "can only access %s with the same name as the requesting node", what);
    }
    return KP_OK;
}

enum kp_result kp_node_admit(const struct kp_admission_request *request, struct kp_error *err)
{
    if (request == NULL) {
        return KP_OK;
    }
    const char *node = kp_node_identity(request->user);
    if (node == NULL) {
        return KP_OK; /* only nodes are restricted */
    }
    /* The plugin handles CREATE, UPDATE and DELETE only (not CONNECT). */
    if (!operation_is(request, "CREATE") && !operation_is(request, "UPDATE") &&
        !operation_is(request, "DELETE")) {
        return KP_OK;
    }
    char q[300];
    if (node[0] == '\0') {
        return forbidden(request, err, "could not determine node from user %s",
                         quote(q, sizeof(q), request->user->name));
    }
    const char *group = or_empty(request->api_group);
    const char *resource = or_empty(request->resource);
    const char *subresource = or_empty(request->subresource);
    if (group[0] == '\0' && strcmp(resource, "pods") == 0) {
        if (subresource[0] == '\0') {
            return admit_pod(node, request, err);
        }
        if (strcmp(subresource, "status") == 0) {
            return admit_pod_status(node, request, err);
        }
        if (strcmp(subresource, "eviction") == 0) {
            return admit_pod_eviction(node, request, err);
        }
        return forbidden(request, err,
                         "unexpected pod subresource %s, only 'status' and 'eviction' are allowed",
                         quote(q, sizeof(q), subresource));
    }
    if (group[0] == '\0' && strcmp(resource, "nodes") == 0) {
        return admit_node(node, request, err);
    }
    if (group[0] == '\0' && strcmp(resource, "persistentvolumeclaims") == 0) {
        if (strcmp(subresource, "status") == 0) {
            return admit_pvc_status(node, request, err);
        }
        return forbidden(request, err, "may only update PVC status");
    }
    if (group[0] == '\0' && strcmp(resource, "serviceaccounts") == 0) {
        return admit_service_account(node, request, err);
    }
    if (strcmp(group, "coordination.k8s.io") == 0 && strcmp(resource, "leases") == 0) {
        if (strcmp(or_empty(request->namespace_), NODE_LEASE_NAMESPACE) != 0) {
            return forbidden(request, err, "can only access leases in the \"%s\" system namespace",
                             NODE_LEASE_NAMESPACE);
        }
        return admit_named_self(node, request, "node lease", err);
    }
    if (strcmp(group, "storage.k8s.io") == 0 && strcmp(resource, "csinodes") == 0) {
        return admit_named_self(node, request, "CSINode", err);
    }
    return KP_OK;
}
