/*
 * The resource table: one row per resource the API server serves (DESIGN.md §3). Discovery
 * (discovery.c), routing (server.c), storage keys (objects.c), field selectors (kinds.c), the
 * Table columns (table.c) and the authorization attributes all read it; nothing else lists
 * resources. Storage prefixes are kube-apiserver's own (nodes live under /registry/minions),
 * so that an etcd holding kpki's data reads like one holding Kubernetes'.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/kinds.h"

#define N(array) (sizeof(array) / sizeof((array)[0]))
#define STATUS_SUB {"status", NULL, NULL, NULL, KP_VERB_GET | KP_VERB_UPDATE | KP_VERB_PATCH, NULL}
#define RW KP_VERBS_ALL
#define CREATE_ONLY KP_VERB_CREATE

static const struct kp_subresource namespace_subs[] = {STATUS_SUB};
static const struct kp_subresource node_subs[] = {STATUS_SUB};
static const struct kp_subresource pod_subs[] = {
    STATUS_SUB,
    {"binding", "", "v1", "Binding", KP_VERB_CREATE, kp_pod_binding},
};
static const struct kp_subresource sa_subs[] = {
    {"token", "authentication.k8s.io", "v1", "TokenRequest", KP_VERB_CREATE, kp_token_request},
};

#define ROW_TABLE(cols) cols, N(cols)
#define NO_TABLE NULL, 0
#define SUBS(s) s, N(s)
#define NO_SUBS NULL, 0

static const struct kp_resource resources[] = {
    /* core/v1 */
    {"", "v1", "Namespace", "namespaces", "namespace", false, KP_VERBS_RW_NO_COLLECTION, "ns",
     "", "/registry/namespaces", "status.phase", SUBS(namespace_subs),
     ROW_TABLE(kp_namespace_columns), &kp_namespace_hooks, NULL, false},
    {"", "v1", "Node", "nodes", "node", false, RW, "no", "", "/registry/minions",
     "spec.unschedulable", SUBS(node_subs), ROW_TABLE(kp_node_columns), &kp_node_hooks, NULL,
     false},
    {"", "v1", "Pod", "pods", "pod", true, RW, "po", "all", "/registry/pods",
     "spec.nodeName,spec.restartPolicy,spec.schedulerName,spec.serviceAccountName,"
     "spec.hostNetwork,status.phase,status.podIP,status.nominatedNodeName",
     SUBS(pod_subs), ROW_TABLE(kp_pod_columns), &kp_pod_hooks, NULL, false},
    {"", "v1", "Secret", "secrets", "secret", true, RW, "", "", "/registry/secrets", "type",
     NO_SUBS, ROW_TABLE(kp_secret_columns), &kp_secret_hooks, NULL, false},
    {"", "v1", "ConfigMap", "configmaps", "configmap", true, RW, "cm", "",
     "/registry/configmaps", "", NO_SUBS, ROW_TABLE(kp_configmap_columns), &kp_configmap_hooks,
     NULL, false},
    {"", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, RW, "sa", "",
     "/registry/serviceaccounts", "", SUBS(sa_subs), ROW_TABLE(kp_serviceaccount_columns),
     &kp_serviceaccount_hooks, NULL, false},
    {"", "v1", "Event", "events", "event", true, RW, "ev", "", "/registry/events",
     "involvedObject.kind,involvedObject.namespace,involvedObject.name,involvedObject.uid,"
     "involvedObject.apiVersion,involvedObject.resourceVersion,involvedObject.fieldPath,"
     "reason,reportingComponent,source,type",
     NO_SUBS, ROW_TABLE(kp_event_columns), &kp_event_hooks, NULL, false},
    /* coordination.k8s.io/v1 */
    {"coordination.k8s.io", "v1", "Lease", "leases", "lease", true, RW, "", "",
     "/registry/leases", "", NO_SUBS, ROW_TABLE(kp_lease_columns), &kp_lease_hooks, NULL, false},
    /* rbac.authorization.k8s.io/v1 */
    {"rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, RW,
     "", "", "/registry/clusterroles", "", NO_SUBS, ROW_TABLE(kp_role_columns), &kp_clusterrole_hooks,
     NULL, false},
    {"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
     "clusterrolebinding", false, RW, "", "", "/registry/clusterrolebindings", "", NO_SUBS,
     ROW_TABLE(kp_binding_columns), &kp_binding_hooks, NULL, false},
    {"rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, RW, "", "",
     "/registry/roles", "", NO_SUBS, ROW_TABLE(kp_role_columns), &kp_role_hooks, NULL, false},
    {"rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true, RW,
     "", "", "/registry/rolebindings", "", NO_SUBS, ROW_TABLE(kp_binding_columns),
     &kp_binding_hooks, NULL, false},
    /* authentication.k8s.io: reviews are created and answered, never stored */
    {"authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", false,
     CREATE_ONLY, "", "", NULL, "", NO_SUBS, NO_TABLE, NULL, kp_review_token, false},
    {"authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
     "selfsubjectreview", false, CREATE_ONLY, "", "", NULL, "", NO_SUBS, NO_TABLE, NULL,
     kp_review_self_subject, false},
    {"authentication.k8s.io", "v1beta1", "SelfSubjectReview", "selfsubjectreviews",
     "selfsubjectreview", false, CREATE_ONLY, "", "", NULL, "", NO_SUBS, NO_TABLE, NULL,
     kp_review_self_subject, false},
    /* authorization.k8s.io/v1 */
    {"authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews",
     "subjectaccessreview", false, CREATE_ONLY, "", "", NULL, "", NO_SUBS, NO_TABLE, NULL,
     kp_review_subject_access, false},
    {"authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
     "selfsubjectaccessreview", false, CREATE_ONLY, "", "", NULL, "", NO_SUBS, NO_TABLE, NULL,
     kp_review_self_subject_access, false},
    {"authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
     "localsubjectaccessreview", true, CREATE_ONLY, "", "", NULL, "", NO_SUBS, NO_TABLE, NULL,
     kp_review_local_subject_access, false},
    {"authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
     "selfsubjectrulesreview", false, CREATE_ONLY, "", "", NULL, "", NO_SUBS, NO_TABLE, NULL,
     kp_review_self_subject_rules, false},
};

const struct kp_resource *kp_resources(size_t *count)
{
    *count = N(resources);
    return resources;
}

const struct kp_resource *kp_resource_find(const char *group, const char *version,
                                           const char *plural)
{
    for (size_t i = 0; i < N(resources); i++)
        if (strcmp(resources[i].group, group) == 0 && strcmp(resources[i].version, version) == 0 &&
            strcmp(resources[i].plural, plural) == 0)
            return &resources[i];
    return NULL;
}

const struct kp_resource *kp_resource_by_kind(const char *group, const char *kind)
{
    for (size_t i = 0; i < N(resources); i++)
        if (strcmp(resources[i].group, group) == 0 && strcmp(resources[i].kind, kind) == 0)
            return &resources[i];
    return NULL;
}

const struct kp_subresource *kp_subresource_find(const struct kp_resource *resource,
                                                 const char *name)
{
    for (size_t i = 0; i < resource->subresource_count; i++)
        if (strcmp(resource->subresources[i].name, name) == 0)
            return &resource->subresources[i];
    return NULL;
}

const char *kp_resource_api_version(const struct kp_resource *resource, char *buf, size_t size)
{
    if (!resource->group[0])
        snprintf(buf, size, "%s", resource->version);
    else
        snprintf(buf, size, "%s/%s", resource->group, resource->version);
    return buf;
}

const char *kp_resource_qualified(const struct kp_resource *resource, char *buf, size_t size)
{
    if (!resource->group[0])
        snprintf(buf, size, "%s", resource->plural);
    else
        snprintf(buf, size, "%s.%s", resource->plural, resource->group);
    return buf;
}
