/*
 * The Node authorizer (k8s.io/kubernetes plugin/pkg/auth/authorizer/node: node_authorizer.go
 * with the AuthorizeNodeWithSelectors behaviour), as of Kubernetes 1.31. Its graph of what
 * each node's pods reference is in node_graph.c; the NodeRestriction admission plugin is in
 * node_admit.c; what the three share is in node_internal.h.
 *
 * Implementation notes
 *  - Refusal reasons are upstream's strings. Where upstream logs a detailed error and returns
 *    a generic reason ("no relationship found between node 'a' and this object"), the detail
 *    goes to the debug log (kp_node_graph_related writes it).
 */
#include "auth/node.h"
#include "auth/node_internal.h"

#include "auth/rbac.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- the authorizer (node_authorizer.go) ---- */

const char *kp_node_identity(const struct kp_user *user)
{
    size_t prefix_len = strlen(KP_NODE_USER_PREFIX);
    if (user == NULL || user->name == NULL ||
        strncmp(user->name, KP_NODE_USER_PREFIX, prefix_len) != 0 ||
        !kp_user_in_group(user, KP_GROUP_NODES)) {
        return NULL;
    }
    return user->name + prefix_len;
}

static void decide(struct kp_authz_decision *decision, enum kp_authz_verdict verdict,
                   const char *fmt, ...) KP_PRINTF(3, 4);

static void decide(struct kp_authz_decision *decision, enum kp_authz_verdict verdict,
                   const char *fmt, ...)
{
    decision->verdict = verdict;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(decision->reason, sizeof(decision->reason), fmt, ap);
    va_end(ap);
}

static bool verb_is(const struct kp_authz_attrs *attrs, const char *verb)
{
    return strcmp(or_empty(attrs->verb), verb) == 0;
}

static bool verb_in(const struct kp_authz_attrs *attrs, const char *const *verbs)
{
    for (; *verbs != NULL; verbs++) {
        if (verb_is(attrs, *verbs)) {
            return true;
        }
    }
    return false;
}

/* authorize(): a named object with a path to the node. */
static void authorize_related(struct kp_node_graph *graph, const char *node, const char *resource,
                              const struct kp_authz_attrs *attrs,
                              struct kp_authz_decision *decision)
{
    const char *name = or_empty(attrs->name);
    if (name[0] == '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "No Object name found");
        return;
    }
    if (!kp_node_graph_related(graph, node, resource, or_empty(attrs->namespace_), name)) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "no relationship found between node '%s' and this object", node);
        return;
    }
    decide(decision, KP_AUTHZ_ALLOW, "%s", "");
}

static void authorize_get(struct kp_node_graph *graph, const char *node, const char *resource,
                          const struct kp_authz_attrs *attrs, struct kp_authz_decision *decision)
{
    if (!verb_is(attrs, "get")) {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only get individual resources of this type");
        return;
    }
    if (or_empty(attrs->subresource)[0] != '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "cannot get subresource");
        return;
    }
    authorize_related(graph, node, resource, attrs, decision);
}

static void authorize_read_namespaced(struct kp_node_graph *graph, const char *node,
                                      const char *resource, const struct kp_authz_attrs *attrs,
                                      struct kp_authz_decision *decision)
{
    static const char *const reads[] = {"get", "list", "watch", NULL};
    if (!verb_in(attrs, reads)) {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only read resources of this type");
        return;
    }
    if (or_empty(attrs->subresource)[0] != '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "cannot read subresource");
        return;
    }
    if (or_empty(attrs->namespace_)[0] == '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only read namespaced object of this type");
        return;
    }
    authorize_related(graph, node, resource, attrs, decision);
}

static void authorize_status_update(struct kp_node_graph *graph, const char *node,
                                    const char *resource, const struct kp_authz_attrs *attrs,
                                    struct kp_authz_decision *decision)
{
    static const char *const writes[] = {"update", "patch", NULL};
    if (!verb_in(attrs, writes)) {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only get/update/patch this type");
        return;
    }
    if (strcmp(or_empty(attrs->subresource), "status") != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only update status subresource");
        return;
    }
    authorize_related(graph, node, resource, attrs, decision);
}

static void authorize_create_token(struct kp_node_graph *graph, const char *node,
                                   const struct kp_authz_attrs *attrs,
                                   struct kp_authz_decision *decision)
{
    if (!verb_is(attrs, "create") || or_empty(attrs->name)[0] == '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only create tokens for individual service accounts");
        return;
    }
    if (strcmp(or_empty(attrs->subresource), "token") != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only create token subresource of serviceaccount");
        return;
    }
    authorize_related(graph, node, "serviceaccounts", attrs, decision);
}

static const char *const lease_verbs[] = {"get", "create", "update", "patch", "delete", NULL};

static void authorize_lease(const char *node, const struct kp_authz_attrs *attrs,
                            struct kp_authz_decision *decision)
{
    if (!verb_in(attrs, lease_verbs)) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only get, create, update, patch, or delete a node lease");
        return;
    }
    if (strcmp(or_empty(attrs->namespace_), NODE_LEASE_NAMESPACE) != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only access leases in the \"%s\" system namespace", NODE_LEASE_NAMESPACE);
        return;
    }
    /* On create the authorizer does not know the name; NodeRestriction checks it. */
    if (!verb_is(attrs, "create") && strcmp(or_empty(attrs->name), node) != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only access node lease with the same name as the requesting node");
        return;
    }
    decide(decision, KP_AUTHZ_ALLOW, "%s", "");
}

static void authorize_csinode(const char *node, const struct kp_authz_attrs *attrs,
                              struct kp_authz_decision *decision)
{
    if (!verb_in(attrs, lease_verbs)) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only get, create, update, patch, or delete a CSINode");
        return;
    }
    if (or_empty(attrs->subresource)[0] != '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "cannot authorize CSINode subresources");
        return;
    }
    if (!verb_is(attrs, "create") && strcmp(or_empty(attrs->name), node) != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only access CSINode with the same name as the requesting node");
        return;
    }
    decide(decision, KP_AUTHZ_ALLOW, "%s", "");
}

/* True if the request's field selector requires key=value. */
static bool selector_requires(const struct kp_authz_attrs *attrs, const char *key,
                              const char *value)
{
    const char *required = kp_selector_required_value(attrs->field_selector, key);
    return required != NULL && strcmp(required, value) == 0;
}

static void authorize_resource_slice(struct kp_node_graph *graph, const char *node,
                                     const struct kp_authz_attrs *attrs,
                                     struct kp_authz_decision *decision)
{
    static const char *const by_object[] = {"get", "update", "patch", "delete", NULL};
    static const char *const by_selector[] = {"watch", "list", "deletecollection", NULL};
    if (or_empty(attrs->subresource)[0] != '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "cannot authorize ResourceSlice subresources");
    } else if (verb_is(attrs, "create")) {
        decide(decision, KP_AUTHZ_ALLOW, "%s", ""); /* NodeRestriction checks nodeName */
    } else if (verb_in(attrs, by_object)) {
        authorize_related(graph, node, "resourceslices", attrs, decision);
    } else if (verb_in(attrs, by_selector)) {
        if (selector_requires(attrs, "nodeName", node)) {
            decide(decision, KP_AUTHZ_ALLOW, "%s", "");
        } else {
            decide(decision, KP_AUTHZ_NO_OPINION,
                   "can only list/watch/deletecollection resourceslices with nodeName field "
                   "selector");
        }
    } else {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "only the following verbs are allowed for a ResourceSlice: get, watch, list, "
               "create, update, patch, delete, deletecollection");
    }
}

static void authorize_node_object(const char *node, const struct kp_authz_attrs *attrs,
                                  struct kp_authz_decision *decision)
{
    static const char *const writes[] = {"create", "update", "patch", NULL};
    static const char *const reads[] = {"get", "list", "watch", NULL};
    static const char *const status_writes[] = {"update", "patch", NULL};
    const char *subresource = or_empty(attrs->subresource);
    const char *name = or_empty(attrs->name);
    if (name[0] == '\0' && !verb_is(attrs, "get")) {
        /* RequestInfo names a list or watch by its metadata.name field selector. */
        name = or_empty(kp_selector_required_value(attrs->field_selector, "metadata.name"));
    }
    if (subresource[0] == '\0') {
        if (verb_in(attrs, writes)) {
            decide(decision, KP_AUTHZ_ALLOW, "%s", ""); /* NodeRestriction: self only */
            return;
        }
        if (verb_in(attrs, reads)) {
            /* By name, not through the graph: a kubelet reads its Node before creating it. */
            if (strcmp(name, node) == 0) {
                decide(decision, KP_AUTHZ_ALLOW, "%s", "");
            } else if (name[0] == '\0') {
                decide(decision, KP_AUTHZ_NO_OPINION,
                       "node '%s' cannot read all nodes, only its own Node object", node);
            } else {
                decide(decision, KP_AUTHZ_NO_OPINION,
                       "node '%s' cannot read '%s', only its own Node object", node, name);
            }
            return;
        }
    } else if (strcmp(subresource, "status") == 0 && verb_in(attrs, status_writes)) {
        decide(decision, KP_AUTHZ_ALLOW, "%s", "");
        return;
    }
    decide(decision, KP_AUTHZ_NO_OPINION, "%s", "");
}

static void authorize_pod(struct kp_node_graph *graph, const char *node,
                          const struct kp_authz_attrs *attrs, struct kp_authz_decision *decision)
{
    static const char *const lists[] = {"list", "watch", NULL};
    static const char *const mirror[] = {"create", "delete", NULL};
    static const char *const status_writes[] = {"update", "patch", NULL};
    const char *subresource = or_empty(attrs->subresource);
    if (subresource[0] == '\0') {
        if (verb_is(attrs, "get")) {
            authorize_get(graph, node, "pods", attrs, decision);
            return;
        }
        if (verb_in(attrs, lists)) {
            if (selector_requires(attrs, "spec.nodeName", node)) {
                decide(decision, KP_AUTHZ_ALLOW, "%s", "");
            } else if (or_empty(attrs->name)[0] != '\0') {
                authorize_related(graph, node, "pods", attrs, decision);
            } else {
                decide(decision, KP_AUTHZ_NO_OPINION,
                       "can only list/watch pods with spec.nodeName field selector");
            }
            return;
        }
        if (verb_in(attrs, mirror)) {
            decide(decision, KP_AUTHZ_ALLOW, "%s", ""); /* NodeRestriction: mirror pods */
            return;
        }
    } else if (strcmp(subresource, "status") == 0 && verb_in(attrs, status_writes)) {
        decide(decision, KP_AUTHZ_ALLOW, "%s", "");
        return;
    } else if (strcmp(subresource, "eviction") == 0 && verb_is(attrs, "create")) {
        decide(decision, KP_AUTHZ_ALLOW, "%s", "");
        return;
    }
    decide(decision, KP_AUTHZ_NO_OPINION, "%s", "");
}

static bool group_resource_is(const struct kp_authz_attrs *attrs, const char *group,
                              const char *resource)
{
    return strcmp(or_empty(attrs->api_group), group) == 0 &&
           strcmp(or_empty(attrs->resource), resource) == 0;
}

void kp_node_authorize(struct kp_node_graph *graph, const struct kp_authz_attrs *attrs,
                       struct kp_authz_decision *decision)
{
    decision->verdict = KP_AUTHZ_NO_OPINION;
    decision->reason[0] = '\0';
    if (graph == NULL || attrs == NULL) {
        return;
    }
    const char *node = kp_node_identity(attrs->user);
    if (node == NULL) {
        return; /* not a node: RBAC decides */
    }
    if (node[0] == '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "unknown node for user \"%s\"", attrs->user->name);
        return;
    }
    if (attrs->resource_request) {
        if (group_resource_is(attrs, "", "secrets")) {
            authorize_read_namespaced(graph, node, "secrets", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "configmaps")) {
            authorize_read_namespaced(graph, node, "configmaps", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "persistentvolumeclaims")) {
            if (strcmp(or_empty(attrs->subresource), "status") == 0) {
                authorize_status_update(graph, node, "persistentvolumeclaims", attrs, decision);
            } else {
                authorize_get(graph, node, "persistentvolumeclaims", attrs, decision);
            }
            return;
        }
        if (group_resource_is(attrs, "", "persistentvolumes")) {
            authorize_get(graph, node, "persistentvolumes", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "resource.k8s.io", "resourceclaims")) {
            authorize_get(graph, node, "resourceclaims", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "storage.k8s.io", "volumeattachments")) {
            authorize_get(graph, node, "volumeattachments", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "serviceaccounts")) {
            authorize_create_token(graph, node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "coordination.k8s.io", "leases")) {
            authorize_lease(node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "storage.k8s.io", "csinodes")) {
            authorize_csinode(node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "resource.k8s.io", "resourceslices")) {
            authorize_resource_slice(graph, node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "nodes")) {
            authorize_node_object(node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "pods")) {
            authorize_pod(graph, node, attrs, decision);
            return;
        }
    }
    /* Everything else: the static system:node rules, not subdivided. */
    size_t i;
    const json_t *rule;
    json_array_foreach(kp_node_graph_get0_rules(graph), i, rule) {
        if (kp_rbac_rule_allows(rule, attrs)) {
            decision->verdict = KP_AUTHZ_ALLOW;
            return;
        }
    }
}
