/*
 * auth/node_internal.h - what the Node authorizer (node.c), its graph (node_graph.c) and the
 * NodeRestriction admission plugin (node_admit.c) share: a few names and JSON accessors, and
 * what a pod references (the graph records it, admission refuses mirror pods that have any).
 * Private to those three files.
 */
#ifndef KP_AUTH_NODE_INTERNAL_H
#define KP_AUTH_NODE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "auth/node.h"

#define MIRROR_POD_ANNOTATION "kubernetes.io/config.mirror"
#define NODE_LEASE_NAMESPACE "kube-node-lease"

static inline const char *or_empty(const char *text)
{
    return text != NULL ? text : "";
}

static inline const char *member_string(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

static inline bool has_annotation(const json_t *object, const char *key)
{
    return json_object_get(json_object_get(json_object_get(object, "metadata"), "annotations"),
                           key) != NULL;
}

/* ---- what a pod references (node_graph.c) ---- */

/* Called with each referenced name, possibly ""; return false to stop. */
typedef bool (*name_visitor)(void *context, const char *name);

/* Visit every secret (imagePullSecrets, envFrom, env valueFrom, volumes and projected sources)
 * and every config map a pod references; false if visit stopped the walk. pod is borrowed for
 * the call. */
bool kp_node_visit_pod_secret_names(const json_t *pod, name_visitor visit, void *context);
bool kp_node_visit_pod_configmap_names(const json_t *pod, name_visitor visit, void *context);
/* spec.serviceAccountName, else the deprecated spec.serviceAccount, else ""; borrowed from
 * pod. */
const char *kp_node_pod_service_account(const json_t *pod);

/* The system:node rules the authorizer applies to what it does not subdivide: a JSON array
 * borrowed from graph, set when the graph is created and never changed (no lock needed). */
const json_t *kp_node_graph_get0_rules(const struct kp_node_graph *graph);

#endif
