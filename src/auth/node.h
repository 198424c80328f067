/*
 * auth/node.h - the Node authorizer and the NodeRestriction admission rules
 * (plugin/pkg/auth/authorizer/node, plugin/pkg/admission/noderestriction; facts sheet §7).
 *
 * A node is a user in group system:nodes named "system:node:<name>". The authorizer answers
 * NO_OPINION for everyone else. For a node it keeps a graph of what the node's pods reference
 * (pod -> node; secret, configmap, serviceaccount, persistentvolumeclaim -> pod), fed by the
 * API server from the store's pod events, and allows:
 *  - secrets, configmaps: get/list/watch of one named object related to the node;
 *  - serviceaccounts/token: create for a service account a pod on the node uses;
 *  - pods: get of a pod on the node; list/watch only with fieldSelector spec.nodeName=<node>;
 *    create/delete; status update/patch; eviction create (NodeRestriction narrows these);
 *  - nodes: get/list/watch of its own Node only (list/watch with fieldSelector
 *    metadata.name=<node>); create/update/patch (NodeRestriction narrows); status update/patch;
 *  - leases in kube-node-lease named after the node; csinodes named after the node;
 *  - anything the static system:node rules allow (services get/list/watch, events
 *    create/update/patch, tokenreviews and subjectaccessreviews create, CSRs
 *    create/get/list/watch, ...), evaluated with kp_rbac_rule_allows.
 * AuthorizeNodeWithSelectors behaviour (upstream 1.32's default) throughout. Refusals are
 * NO_OPINION with upstream's reasons ("no relationship found between node 'a' and this object",
 * "can only list/watch pods with spec.nodeName field selector", ...); the detail upstream only
 * logs ("node 'a' cannot get unknown secret ns/x") goes to the debug log. The graph holds only
 * what pods contribute, so persistent volumes, volume attachments, resource claims and resource
 * slices are never related to a node.
 *
 * Thread-safe: the graph has its own lock; updates and queries may come from any thread.
 */
#ifndef KP_AUTH_NODE_H
#define KP_AUTH_NODE_H

#include <jansson.h>
#include <stdbool.h>

#include "auth/auth.h"

/* If user is a node identity, its node name (borrowed from user); else NULL. */
const char *kp_node_identity(const struct kp_user *user);

struct kp_node_graph;

KP_MUST_CHECK enum kp_result kp_node_graph_new(struct kp_node_graph **graph, struct kp_error *err);
void kp_node_graph_free(struct kp_node_graph *graph); /* NULL is a no-op */

/* Adds or replaces a pod's edges (pod: a v1 Pod object, borrowed; nothing is kept). A pod
 * without spec.nodeName has no edges; a mirror pod only pod -> node. KP_ERR_INVALID without
 * metadata.namespace and metadata.name; KP_ERR_IO out of memory (the pod then has no edges). */
KP_MUST_CHECK enum kp_result kp_node_graph_put_pod(struct kp_node_graph *graph, const json_t *pod,
                                                   struct kp_error *err);
void kp_node_graph_delete_pod(struct kp_node_graph *graph, const char *ns, const char *name);

/* Is the object (resource "secrets"|"configmaps"|"serviceaccounts"|"persistentvolumeclaims"|
 * "pods", namespace, name) related to node? */
bool kp_node_graph_related(struct kp_node_graph *graph, const char *node, const char *resource,
                           const char *ns, const char *name);

/* The Node authorizer. NO_OPINION for users that are not nodes and for a NULL graph. */
void kp_node_authorize(struct kp_node_graph *graph, const struct kp_authz_attrs *attrs,
                       struct kp_authz_decision *decision);

/* NodeRestriction: KP_OK when the request is not a node's or is allowed; KP_ERR_FORBIDDEN with
 * upstream's admission.NewForbidden message otherwise: `<resource>[.<group>] "<name>" is
 * forbidden: <reason>`, the name being the request object's (or its generateName), "Unknown"
 * without an object - so a refused DELETE reads `pods "Unknown" is forbidden: node "a" can
 * only delete pods with spec.nodeName set to itself`, as upstream's does. KP_ERR_NOT_FOUND
 * (`pod "x" not found`) when a pod or node it must look up does not exist. Covers pods (create
 * mirror pods only, delete, status, eviction), nodes (self only; no taint or configSource
 * changes; forbidden labels), persistentvolumeclaims (status capacity and conditions only),
 * leases in kube-node-lease, csinodes, and serviceaccounts/token (boundObjectRef must be a Pod
 * with uid on this node). Pods and nodes are looked up through request->lookup. CREATE, UPDATE
 * and DELETE only; anything else (CONNECT) passes. */
KP_MUST_CHECK enum kp_result kp_node_admit(const struct kp_admission_request *request,
                                           struct kp_error *err);

#endif
