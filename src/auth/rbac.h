/*
 * auth/rbac.h - the RBAC authorizer (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac) and the
 * default policy kube-apiserver and kubeadm create on first start.
 *
 * The authorizer works on an immutable snapshot built from the four kinds' JSON objects
 * (ClusterRole, ClusterRoleBinding, Role, RoleBinding, rbac.authorization.k8s.io/v1). The API
 * server rebuilds the snapshot when any of them changes and swaps it in; requests hold a
 * reference to the snapshot they started with. Matching follows upstream exactly:
 *  - subjects: User (name), Group (name), ServiceAccount (namespace + name, i.e. the user
 *    "system:serviceaccount:<ns>:<name>");
 *  - a ClusterRoleBinding grants its ClusterRole everywhere; a RoleBinding grants its Role or
 *    ClusterRole in the binding's namespace only;
 *  - a rule matches when verbs, apiGroups, resources ("pods", "pods/status", "*", "*\/scale")
 *    and resourceNames (empty = all) match; non-resource rules match nonResourceURLs
 *    ("/healthz"; "/api/" followed by '*' matches every path under /api/; "*");
 *  - a binding whose role does not exist grants nothing; RBAC never denies, it allows or has
 *    no opinion.
 * ClusterRoles with an aggregationRule are aggregated from the ClusterRoles whose labels match
 * (what kube-controller-manager's clusterrole-aggregation controller writes back; done here
 * when building the snapshot so `admin`, `edit` and `view` work without that controller).
 *
 * Thread-safe: a snapshot is read-only; references are atomic.
 */
#ifndef KP_AUTH_RBAC_H
#define KP_AUTH_RBAC_H

#include <jansson.h>
#include <stdbool.h>

#include "auth/auth.h"

struct kp_rbac;

/* Builds a snapshot. Each argument is a JSON array of objects of that kind (borrowed; NULL is
 * an empty array). Malformed objects are skipped with a warning in the log (an API server must
 * not stop authorizing because one stored object is odd); the count is in *skipped (may be
 * NULL). *rbac: one reference, release with kp_rbac_unref. */
KP_MUST_CHECK enum kp_result kp_rbac_build(const json_t *cluster_roles,
                                           const json_t *cluster_role_bindings,
                                           const json_t *roles, const json_t *role_bindings,
                                           struct kp_rbac **rbac, size_t *skipped,
                                           struct kp_error *err);
struct kp_rbac *kp_rbac_ref(struct kp_rbac *rbac);
void kp_rbac_unref(struct kp_rbac *rbac); /* NULL is a no-op */

/* ALLOW with reason `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"`
 * (`RoleBinding "x/ns" of Role "y" to ServiceAccount "sa/ns"` for a RoleBinding), or
 * NO_OPINION with an empty reason (upstream's Forbidden message then has no suffix) - unless a
 * binding that applies to the user references a role that does not exist, when the reason is
 * upstream's `RBAC: clusterrole.rbac.authorization.k8s.io "y" not found` (several: "[a, b]").
 * rbac may be NULL (no opinion). */
void kp_rbac_authorize(const struct kp_rbac *rbac, const struct kp_authz_attrs *attrs,
                       struct kp_authz_decision *decision);

/* True if one PolicyRule object (borrowed) allows attrs (rbac.RuleAllows): used by the Node
 * authorizer for its static rules. */
bool kp_rbac_rule_allows(const json_t *rule, const struct kp_authz_attrs *attrs);

/* Privilege-escalation prevention (pkg/registry/rbac/validation): may `user` create or update
 * a Role/ClusterRole with these rules (a JSON array of PolicyRule) in namespace ns ("" for a
 * ClusterRole)? Yes if the user holds every rule already (through the snapshot), or may
 * "escalate" roles/clusterroles there. KP_ERR_FORBIDDEN otherwise, with upstream's message
 * ("user \"x\" (groups=[...]) is attempting to grant RBAC permissions not currently held:
 * ..."). */
KP_MUST_CHECK enum kp_result kp_rbac_check_role_write(const struct kp_rbac *rbac,
                                                      const struct kp_user *user, const char *ns,
                                                      const json_t *rules, struct kp_error *err);
/* The same for an update of the role `name`: upstream's escalate check carries the name, so a
 * grant of "escalate" limited by resourceNames applies (on create the name is ""). The message
 * is the reason only; the caller wraps it as `roles.rbac.authorization.k8s.io "x" is forbidden:
 * <message>` (clusterroles... for a ClusterRole). A rule that is not an object of string arrays
 * is KP_ERR_INVALID. Members of system:masters always pass (EscalationAllowed). */
KP_MUST_CHECK enum kp_result kp_rbac_check_role_update(const struct kp_rbac *rbac,
                                                       const struct kp_user *user, const char *ns,
                                                       const char *name, const json_t *rules,
                                                       struct kp_error *err);

/* May `user` create or update a binding (RoleBinding in ns, or ClusterRoleBinding with ns "")
 * that references role_ref ({"apiGroup","kind","name"})? Yes if the user holds every rule of
 * the referenced role, or may "bind" it (verb bind on roles/clusterroles, resourceNames
 * allowing its name). KP_ERR_FORBIDDEN with upstream's message otherwise; a missing role is
 * KP_ERR_FORBIDDEN too (it cannot be checked), unless the user may bind it. */
KP_MUST_CHECK enum kp_result kp_rbac_check_binding_write(const struct kp_rbac *rbac,
                                                         const struct kp_user *user, const char *ns,
                                                         const json_t *role_ref,
                                                         struct kp_error *err);

/* The rules that apply to user in namespace ns ("" : cluster-wide only), as the
 * SelfSubjectRulesReview status wants them: {"resourceRules":[...],"nonResourceRules":[...],
 * "incomplete":false} plus "evaluationError" when a binding references a missing role. A new
 * reference (copies: editing it does not touch the snapshot); NULL only when out of memory. */
json_t *kp_rbac_rules_for(const struct kp_rbac *rbac, const struct kp_user *user, const char *ns);

/* The default policy objects to create on first start, each a complete JSON object with
 * apiVersion, kind, metadata (name, namespace for the namespaced kinds) and
 * rules/aggregationRule/subjects/roleRef: kube-apiserver's bootstrap policy as of Kubernetes
 * 1.31 with its default feature gates (cluster roles, the system:controller:* roles, their
 * bindings, the namespaced roles and bindings in kube-system and kube-public; all labelled
 * kubernetes.io/bootstrapping=rbac-defaults and annotated
 * rbac.authorization.kubernetes.io/autoupdate=true, as upstream) followed by what kubeadm 1.31
 * creates (kubeadm:kubelet-bootstrap, kubeadm:get-nodes, kubeadm:node-autoapprove-bootstrap,
 * kubeadm:node-autoapprove-certificate-rotation, kubeadm:cluster-admins,
 * kubeadm:bootstrap-signer-clusterinfo in kube-public, kubeadm:kubelet-config and
 * kubeadm:nodes-kubeadm-config in kube-system; without those labels, as kubeadm creates them).
 * Order: ClusterRoles, ClusterRoleBindings, Roles, RoleBindings of kube-apiserver, then
 * kubeadm's. A new reference to an array; NULL only when out of memory. */
json_t *kp_rbac_default_policy(void);

/* The rules of the system:node ClusterRole (bootstrappolicy.NodeRules()), which the Node
 * authorizer applies to requests it does not subdivide. A new reference to an array. */
json_t *kp_rbac_node_rules(void);

#endif
