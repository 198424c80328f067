/*
 * api/kinds.h - what is particular to each kind: its hooks (defaults, validation, what an
 * update may change, graceful deletion), its field selectors and its Table columns
 * (kubectl's server-side printing, as pkg/printers/internalversion prints them).
 * Referenced from the resource table (resources.c); defined in kinds.c and table.c.
 */
#ifndef KP_API_KINDS_H
#define KP_API_KINDS_H

#include "api/api.h"

extern const struct kp_kind_hooks kp_namespace_hooks, kp_node_hooks, kp_pod_hooks,
    kp_secret_hooks, kp_configmap_hooks, kp_serviceaccount_hooks, kp_event_hooks,
    kp_lease_hooks, kp_clusterrole_hooks, kp_role_hooks, kp_binding_hooks;

extern const struct kp_column kp_namespace_columns[3], kp_node_columns[10], kp_pod_columns[9],
    kp_secret_columns[4], kp_configmap_columns[3], kp_serviceaccount_columns[3],
    kp_event_columns[10], kp_lease_columns[3], kp_role_columns[2], kp_binding_columns[6];

#endif
