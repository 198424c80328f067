/*
 * The default RBAC policy: kube-apiserver's bootstrap policy and kubeadm's RBAC objects, as of
 * Kubernetes 1.31 with its default feature gates (see rbac.h, docs/auth.md).
 *
 * Transcribed from k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy:
 * policy.go (ClusterRoles, ClusterRoleBindings), controller_policy.go (the system:controller:*
 * roles, each bound to the kube-system service account of the same name), namespace_policy.go
 * (NamespaceRoles, NamespaceRoleBindings), cross-checked against the rendered
 * YAML files under testdata/; and from cmd/kubeadm/app/phases (bootstraptoken/clusterinfo,
 * bootstraptoken/node/tlsbootstrap.go, kubeconfig's kubeadm:cluster-admins,
 * uploadconfig and kubelet config). Lists are in the order upstream stores them (the policy
 * builder sorts verbs, groups, resources, names and URLs).
 *
 * Left out because they are behind feature gates that are off by default in 1.31: the
 * resource.k8s.io (DynamicResourceAllocation) and clustertrustbundles (ClusterTrustBundle*)
 * rules of system:node and system:kube-scheduler, and the controller roles
 * service-cidrs-controller (MultiCIDRServiceAllocator), volumeattributesclass-protection-
 * controller (VolumeAttributesClass), storage-version-garbage-collector (StorageVersionAPI),
 * storage-version-migrator-controller (StorageVersionMigrator) and resource-claim-controller.
 *
 * The table is data: one row per object, rule, label or subject, turned into JSON by
 * kp_rbac_default_policy. Lists are comma-separated and kept exact: "" is the core group [""],
 * ",events.k8s.io" is ["", "events.k8s.io"].
 */
#include "auth/rbac.h"

#include <stdio.h>
#include <string.h>

enum row_type {
    ROW_CLUSTER_ROLE,    /* a: name */
    ROW_CONTROLLER,      /* a: controller; ClusterRole and ClusterRoleBinding
                            system:controller:<a>, subject ServiceAccount kube-system/<a> */
    ROW_ROLE,            /* a: namespace, b: name */
    ROW_RULE,            /* a: verbs, b: apiGroups, c: resources, d: resourceNames or NULL */
    ROW_URLS,            /* a: verbs, b: nonResourceURLs */
    ROW_LABEL,           /* a: label key set to "true" on the current object */
    ROW_AGGREGATE,       /* a: aggregationRule selector label key (matchLabels a="true") */
    ROW_CLUSTER_BINDING, /* a: name, b: ClusterRole */
    ROW_BINDING,         /* a: namespace, b: name, c: roleRef kind, d: roleRef name */
    ROW_USER,            /* a: name */
    ROW_GROUP,           /* a: name */
    ROW_SERVICE_ACCOUNT, /* a: namespace, b: name */
    ROW_KUBEADM,         /* what follows is kubeadm's: no bootstrap label or annotation */
};

struct row {
    enum row_type type;
    const char *a;
    const char *b;
    const char *c;
    const char *d;
};

/* clang-format off: one row per line reads better than clang-format's layout */
#define CLUSTER_ROLE(name)                                                                         \
    {                                                                                              \
        ROW_CLUSTER_ROLE, name, NULL, NULL, NULL                                                   \
    }
#define CONTROLLER(name)                                                                           \
    {                                                                                              \
        ROW_CONTROLLER, name, NULL, NULL, NULL                                                     \
    }
#define ROLE(ns, name)                                                                             \
    {                                                                                              \
        ROW_ROLE, ns, name, NULL, NULL                                                             \
    }
#define RULE(verbs, groups, resources)                                                             \
    {                                                                                              \
        ROW_RULE, verbs, groups, resources, NULL                                                   \
    }
#define RULE_NAMES(verbs, groups, resources, names)                                                \
    {                                                                                              \
        ROW_RULE, verbs, groups, resources, names                                                  \
    }
#define URLS(verbs, urls)                                                                          \
    {                                                                                              \
        ROW_URLS, verbs, urls, NULL, NULL                                                          \
    }
#define LABEL(key)                                                                                 \
    {                                                                                              \
        ROW_LABEL, key, NULL, NULL, NULL                                                           \
    }
#define AGGREGATE(key)                                                                             \
    {                                                                                              \
        ROW_AGGREGATE, key, NULL, NULL, NULL                                                       \
    }
#define CLUSTER_BINDING(name, role)                                                                \
    {                                                                                              \
        ROW_CLUSTER_BINDING, name, role, NULL, NULL                                                \
    }
#define BINDING(ns, name, kind, role)                                                              \
    {                                                                                              \
        ROW_BINDING, ns, name, kind, role                                                          \
    }
#define USER(name)                                                                                 \
    {                                                                                              \
        ROW_USER, name, NULL, NULL, NULL                                                           \
    }
#define GROUP(name)                                                                                \
    {                                                                                              \
        ROW_GROUP, name, NULL, NULL, NULL                                                          \
    }
#define SERVICE_ACCOUNT(ns, name)                                                                  \
    {                                                                                              \
        ROW_SERVICE_ACCOUNT, ns, name, NULL, NULL                                                  \
    }

/* bootstrappolicy's eventsRule() */
#define EVENTS RULE("create,patch,update", ",events.k8s.io", "events")
#define RW "create,delete,deletecollection,get,list,patch,update,watch"
#define WRITE "create,delete,deletecollection,patch,update"
#define READ "get,list,watch"

#define TO_ADMIN "rbac.authorization.k8s.io/aggregate-to-admin"
#define TO_EDIT "rbac.authorization.k8s.io/aggregate-to-edit"
#define TO_VIEW "rbac.authorization.k8s.io/aggregate-to-view"
#define BOOTSTRAP_TOKEN_GROUP "system:bootstrappers:kubeadm:default-node-token"

static const struct row policy[] = {
    /* ---- policy.go ClusterRoles() ---- */
    CLUSTER_ROLE("admin"),
    AGGREGATE(TO_ADMIN),

    CLUSTER_ROLE("cluster-admin"),
    RULE("*", "*", "*"),
    URLS("*", "*"),

    CLUSTER_ROLE("edit"),
    LABEL(TO_ADMIN),
    AGGREGATE(TO_EDIT),

    CLUSTER_ROLE("system:aggregate-to-admin"),
    LABEL(TO_ADMIN),
    RULE("create", "authorization.k8s.io", "localsubjectaccessreviews"),
    RULE(RW, "rbac.authorization.k8s.io", "rolebindings,roles"),

    CLUSTER_ROLE("system:aggregate-to-edit"),
    LABEL(TO_EDIT),
    RULE(READ, "", "pods/attach,pods/exec,pods/portforward,pods/proxy,secrets,services/proxy"),
    RULE("impersonate", "", "serviceaccounts"),
    RULE(WRITE, "", "pods,pods/attach,pods/exec,pods/portforward,pods/proxy"),
    RULE("create", "", "pods/eviction"),
    RULE(WRITE, "",
         "configmaps,events,persistentvolumeclaims,replicationcontrollers,"
         "replicationcontrollers/scale,secrets,serviceaccounts,services,services/proxy"),
    RULE("create", "", "serviceaccounts/token"),
    RULE(WRITE, "apps",
         "daemonsets,deployments,deployments/rollback,deployments/scale,replicasets,"
         "replicasets/scale,statefulsets,statefulsets/scale"),
    RULE(WRITE, "autoscaling", "horizontalpodautoscalers"),
    RULE(WRITE, "batch", "cronjobs,jobs"),
    RULE(WRITE, "extensions",
         "daemonsets,deployments,deployments/rollback,deployments/scale,ingresses,"
         "networkpolicies,replicasets,replicasets/scale,replicationcontrollers/scale"),
    RULE(WRITE, "policy", "poddisruptionbudgets"),
    RULE(WRITE, "networking.k8s.io", "ingresses,networkpolicies"),
    RULE(RW, "coordination.k8s.io", "leases"),

    CLUSTER_ROLE("system:aggregate-to-view"),
    LABEL(TO_VIEW),
    RULE(READ, "",
         "configmaps,endpoints,persistentvolumeclaims,persistentvolumeclaims/status,pods,"
         "replicationcontrollers,replicationcontrollers/scale,serviceaccounts,services,"
         "services/status"),
    RULE(READ, "",
         "bindings,events,limitranges,namespaces/status,pods/log,pods/status,"
         "replicationcontrollers/status,resourcequotas,resourcequotas/status"),
    RULE(READ, "", "namespaces"),
    RULE(READ, "discovery.k8s.io", "endpointslices"),
    RULE(READ, "apps",
         "controllerrevisions,daemonsets,daemonsets/status,deployments,deployments/scale,"
         "deployments/status,replicasets,replicasets/scale,replicasets/status,statefulsets,"
         "statefulsets/scale,statefulsets/status"),
    RULE(READ, "autoscaling", "horizontalpodautoscalers,horizontalpodautoscalers/status"),
    RULE(READ, "batch", "cronjobs,cronjobs/status,jobs,jobs/status"),
    RULE(READ, "extensions",
         "daemonsets,daemonsets/status,deployments,deployments/scale,deployments/status,"
         "ingresses,ingresses/status,networkpolicies,replicasets,replicasets/scale,"
         "replicasets/status,replicationcontrollers/scale"),
    RULE(READ, "policy", "poddisruptionbudgets,poddisruptionbudgets/status"),
    RULE(READ, "networking.k8s.io", "ingresses,ingresses/status,networkpolicies"),

    CLUSTER_ROLE("system:auth-delegator"),
    RULE("create", "authentication.k8s.io", "tokenreviews"),
    RULE("create", "authorization.k8s.io", "subjectaccessreviews"),

    CLUSTER_ROLE("system:basic-user"),
    RULE("create", "authorization.k8s.io", "selfsubjectaccessreviews,selfsubjectrulesreviews"),
    RULE("create", "authentication.k8s.io", "selfsubjectreviews"),

    CLUSTER_ROLE("system:certificates.k8s.io:certificatesigningrequests:nodeclient"),
    RULE("create", "certificates.k8s.io", "certificatesigningrequests/nodeclient"),

    CLUSTER_ROLE("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"),
    RULE("create", "certificates.k8s.io", "certificatesigningrequests/selfnodeclient"),

    CLUSTER_ROLE("system:certificates.k8s.io:kube-apiserver-client-approver"),
    RULE_NAMES("approve", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client"),

    CLUSTER_ROLE("system:certificates.k8s.io:kube-apiserver-client-kubelet-approver"),
    RULE_NAMES("approve", "certificates.k8s.io", "signers",
               "kubernetes.io/kube-apiserver-client-kubelet"),

    CLUSTER_ROLE("system:certificates.k8s.io:kubelet-serving-approver"),
    RULE_NAMES("approve", "certificates.k8s.io", "signers", "kubernetes.io/kubelet-serving"),

    CLUSTER_ROLE("system:certificates.k8s.io:legacy-unknown-approver"),
    RULE_NAMES("approve", "certificates.k8s.io", "signers", "kubernetes.io/legacy-unknown"),

    CLUSTER_ROLE("system:discovery"),
    URLS("get", "/api,/api/*,/apis,/apis/*,/healthz,/livez,/openapi,/openapi/*,/readyz,/version,"
                "/version/"),

    CLUSTER_ROLE("system:heapster"),
    RULE(READ, "", "events,namespaces,nodes,pods"),
    RULE(READ, "extensions", "deployments"),

    CLUSTER_ROLE("system:kube-aggregator"),
    RULE(READ, "", "endpoints,services"),

    CLUSTER_ROLE("system:kube-controller-manager"),
    EVENTS,
    RULE("create", "coordination.k8s.io", "leases"),
    RULE_NAMES("get,update", "coordination.k8s.io", "leases", "kube-controller-manager"),
    RULE("create", "", "secrets,serviceaccounts"),
    RULE("delete", "", "secrets"),
    RULE("get", "", "configmaps,namespaces,secrets,serviceaccounts"),
    RULE("update", "", "secrets,serviceaccounts"),
    RULE("create", "authentication.k8s.io", "tokenreviews"),
    RULE("create", "authorization.k8s.io", "subjectaccessreviews"),
    RULE("list,watch", "*", "*"),
    RULE("create", "", "serviceaccounts/token"),

    CLUSTER_ROLE("system:kube-dns"),
    RULE("list,watch", "", "endpoints,services"),

    CLUSTER_ROLE("system:kube-scheduler"),
    EVENTS,
    RULE("create", "coordination.k8s.io", "leases"),
    RULE_NAMES("get,update", "coordination.k8s.io", "leases", "kube-scheduler"),
    RULE(READ, "", "nodes"),
    RULE("delete,get,list,watch", "", "pods"),
    RULE("create", "", "bindings,pods/binding"),
    RULE("patch,update", "", "pods/status"),
    RULE(READ, "", "replicationcontrollers,services"),
    RULE(READ, "apps,extensions", "replicasets"),
    RULE(READ, "apps", "statefulsets"),
    RULE(READ, "policy", "poddisruptionbudgets"),
    RULE(READ, "", "persistentvolumeclaims,persistentvolumes"),
    RULE("create", "authentication.k8s.io", "tokenreviews"),
    RULE("create", "authorization.k8s.io", "subjectaccessreviews"),
    RULE(READ, "storage.k8s.io", "csinodes"),
    RULE(READ, "", "namespaces"),
    RULE(READ, "storage.k8s.io", "csidrivers"),
    RULE(READ, "storage.k8s.io", "csistoragecapacities"),

    CLUSTER_ROLE("system:kubelet-api-admin"),
    RULE(READ, "", "nodes"),
    RULE("proxy", "", "nodes"),
    RULE("*", "", "nodes/log,nodes/metrics,nodes/proxy,nodes/stats"),

    CLUSTER_ROLE("system:monitoring"),
    URLS("get", "/healthz,/healthz/*,/livez,/livez/*,/metrics,/metrics/slis,/readyz,/readyz/*"),

    /* NodeRules() */
    CLUSTER_ROLE("system:node"),
    RULE("create", "authentication.k8s.io", "tokenreviews"),
    RULE("create", "authorization.k8s.io", "localsubjectaccessreviews,subjectaccessreviews"),
    RULE(READ, "", "services"),
    RULE("create,get,list,watch", "", "nodes"),
    RULE("patch,update", "", "nodes/status"),
    RULE("patch,update", "", "nodes"),
    RULE("create,patch,update", "", "events"),
    RULE(READ, "", "pods"),
    RULE("create,delete", "", "pods"),
    RULE("patch,update", "", "pods/status"),
    RULE("create", "", "pods/eviction"),
    RULE(READ, "", "configmaps,secrets"),
    RULE("get", "", "persistentvolumeclaims,persistentvolumes"),
    RULE("get", "", "endpoints"),
    RULE("create,get,list,watch", "certificates.k8s.io", "certificatesigningrequests"),
    RULE("create,delete,get,patch,update", "coordination.k8s.io", "leases"),
    RULE("get", "storage.k8s.io", "volumeattachments"),
    RULE("create", "", "serviceaccounts/token"),
    RULE("get,patch,update", "", "persistentvolumeclaims/status"),
    RULE(READ, "storage.k8s.io", "csidrivers"),
    RULE("create,delete,get,patch,update", "storage.k8s.io", "csinodes"),
    RULE(READ, "node.k8s.io", "runtimeclasses"),

    CLUSTER_ROLE("system:node-bootstrapper"),
    RULE("create,get,list,watch", "certificates.k8s.io", "certificatesigningrequests"),

    CLUSTER_ROLE("system:node-problem-detector"),
    RULE("get", "", "nodes"),
    RULE("patch", "", "nodes/status"),
    EVENTS,

    CLUSTER_ROLE("system:node-proxier"),
    RULE("list,watch", "", "endpoints,services"),
    RULE(READ, "", "nodes"),
    EVENTS,
    RULE("list,watch", "discovery.k8s.io", "endpointslices"),

    CLUSTER_ROLE("system:persistent-volume-provisioner"),
    RULE("create,delete,get,list,watch", "", "persistentvolumes"),
    RULE("get,list,update,watch", "", "persistentvolumeclaims"),
    RULE(READ, "storage.k8s.io", "storageclasses"),
    RULE("watch", "", "events"),
    EVENTS,

    CLUSTER_ROLE("system:public-info-viewer"),
    URLS("get", "/healthz,/livez,/readyz,/version,/version/"),

    CLUSTER_ROLE("system:service-account-issuer-discovery"),
    URLS("get", "/.well-known/openid-configuration,/openid/v1/jwks"),

    CLUSTER_ROLE("system:volume-scheduler"),
    RULE("get,list,patch,update,watch", "", "persistentvolumes"),
    RULE(READ, "storage.k8s.io", "storageclasses"),
    RULE("get,list,patch,update,watch", "", "persistentvolumeclaims"),

    CLUSTER_ROLE("view"),
    LABEL(TO_EDIT),
    AGGREGATE(TO_VIEW),

    /* ---- controller_policy.go ---- */
    CONTROLLER("attachdetach-controller"),
    RULE("list,watch", "", "persistentvolumeclaims,persistentvolumes"),
    RULE(READ, "", "nodes"),
    RULE("patch,update", "", "nodes/status"),
    RULE("list,watch", "", "pods"),
    EVENTS,
    RULE("create,delete,get,list,watch", "storage.k8s.io", "volumeattachments"),
    RULE(READ, "storage.k8s.io", "csidrivers"),
    RULE(READ, "storage.k8s.io", "csinodes"),

    CONTROLLER("certificate-controller"),
    RULE("delete,get,list,watch", "certificates.k8s.io", "certificatesigningrequests"),
    RULE("update", "certificates.k8s.io",
         "certificatesigningrequests/approval,certificatesigningrequests/status"),
    RULE_NAMES("approve", "certificates.k8s.io", "signers",
               "kubernetes.io/kube-apiserver-client-kubelet"),
    RULE_NAMES("sign", "certificates.k8s.io", "signers",
               "kubernetes.io/kube-apiserver-client,kubernetes.io/kube-apiserver-client-kubelet,"
               "kubernetes.io/kubelet-serving,kubernetes.io/legacy-unknown"),
    RULE("create", "authorization.k8s.io", "subjectaccessreviews"),
    EVENTS,

    CONTROLLER("clusterrole-aggregation-controller"),
    RULE("escalate,get,list,patch,update,watch", "rbac.authorization.k8s.io", "clusterroles"),

    CONTROLLER("cronjob-controller"),
    RULE("get,list,update,watch", "batch", "cronjobs"),
    RULE("create,delete,get,list,patch,update,watch", "batch", "jobs"),
    RULE("update", "batch", "cronjobs/status"),
    RULE("update", "batch", "cronjobs/finalizers"),
    RULE("delete,list,watch", "", "pods"),
    EVENTS,

    CONTROLLER("daemon-set-controller"),
    RULE(READ, "apps,extensions", "daemonsets"),
    RULE("update", "apps,extensions", "daemonsets/status"),
    RULE("update", "apps,extensions", "daemonsets/finalizers"),
    RULE("list,watch", "", "nodes"),
    RULE("create,delete,list,patch,watch", "", "pods"),
    RULE("create", "", "pods/binding"),
    RULE("create,delete,get,list,patch,update,watch", "apps", "controllerrevisions"),
    EVENTS,

    CONTROLLER("deployment-controller"),
    RULE("get,list,update,watch", "apps,extensions", "deployments"),
    RULE("update", "apps,extensions", "deployments/status"),
    RULE("update", "apps,extensions", "deployments/finalizers"),
    RULE("create,delete,get,list,patch,update,watch", "apps,extensions", "replicasets"),
    RULE("get,list,update,watch", "", "pods"),
    EVENTS,

    CONTROLLER("disruption-controller"),
    RULE(READ, "apps,extensions", "deployments"),
    RULE(READ, "apps,extensions", "replicasets"),
    RULE(READ, "", "replicationcontrollers"),
    RULE(READ, "policy", "poddisruptionbudgets"),
    RULE(READ, "apps", "statefulsets"),
    RULE("update", "policy", "poddisruptionbudgets/status"),
    RULE("patch,update", "", "pods/status"),
    RULE("get", "*", "*/scale"),
    EVENTS,

    CONTROLLER("endpoint-controller"),
    RULE(READ, "", "pods,services"),
    RULE("create,delete,get,list,update,watch", "", "endpoints"),
    RULE("create", "", "endpoints/restricted"),
    EVENTS,

    CONTROLLER("endpointslice-controller"),
    RULE(READ, "", "nodes,pods,services"),
    RULE("update", "", "services/finalizers"),
    RULE("create,delete,get,list,update,watch", "discovery.k8s.io", "endpointslices"),
    EVENTS,

    CONTROLLER("endpointslicemirroring-controller"),
    RULE(READ, "", "endpoints,services"),
    RULE("update", "", "services/finalizers"),
    RULE("update", "", "endpoints/finalizers"),
    RULE("create,delete,get,list,update,watch", "discovery.k8s.io", "endpointslices"),
    EVENTS,

    CONTROLLER("ephemeral-volume-controller"),
    RULE(READ, "", "pods"),
    RULE("update", "", "pods/finalizers"),
    RULE("create,get,list,watch", "", "persistentvolumeclaims"),
    EVENTS,

    CONTROLLER("expand-controller"),
    RULE("get,list,patch,update,watch", "", "persistentvolumes"),
    RULE("patch,update", "", "persistentvolumeclaims/status"),
    RULE(READ, "", "persistentvolumeclaims"),
    EVENTS,
    RULE("get", "", "services"), /* volume plugin - portworx */

    CONTROLLER("generic-garbage-collector"),
    RULE("delete,get,list,patch,update,watch", "*", "*"),
    EVENTS,

    CONTROLLER("horizontal-pod-autoscaler"),
    RULE(READ, "autoscaling", "horizontalpodautoscalers"),
    RULE("update", "autoscaling", "horizontalpodautoscalers/status"),
    RULE("get,update", "*", "*/scale"),
    RULE("list,watch", "", "pods"),
    RULE("list,watch", "metrics.k8s.io", "pods"),
    RULE(READ, "custom.metrics.k8s.io", "*"),
    RULE(READ, "external.metrics.k8s.io", "*"),
    EVENTS,

    CONTROLLER("job-controller"),
    RULE("get,list,patch,update,watch", "batch", "jobs"),
    RULE("update", "batch", "jobs/status"),
    RULE("update", "batch", "jobs/finalizers"),
    RULE("create,delete,list,patch,watch", "", "pods"),
    EVENTS,

    CONTROLLER("namespace-controller"),
    RULE("delete,get,list,watch", "", "namespaces"),
    RULE("update", "", "namespaces/finalize,namespaces/status"),
    RULE("delete,deletecollection,get,list,watch", "*", "*"),

    CONTROLLER("node-controller"),
    RULE("delete,get,list,patch,update,watch", "", "nodes"),
    RULE("patch,update", "", "nodes/status"),
    RULE("patch,update", "", "pods/status"),
    RULE("delete,get,list,watch", "", "pods"),
    EVENTS,

    CONTROLLER("persistent-volume-binder"),
    RULE("create,delete,get,list,update,watch", "", "persistentvolumes"),
    RULE("update", "", "persistentvolumes/status"),
    RULE("get,list,update,watch", "", "persistentvolumeclaims"),
    RULE("update", "", "persistentvolumeclaims/status"),
    RULE("create,delete,get,list,watch", "", "pods"),
    RULE(READ, "storage.k8s.io", "storageclasses"),
    RULE("list,watch", "", "nodes"),
    EVENTS,
    RULE("watch", "", "events"), /* recyclerClient.WatchPod */
    RULE("get", "", "services"), /* volume plugin - portworx */

    CONTROLLER("pod-garbage-collector"),
    RULE("delete,list,watch", "", "pods"),
    RULE(READ, "", "nodes"),
    RULE("patch", "", "pods/status"),

    CONTROLLER("replicaset-controller"),
    RULE("get,list,update,watch", "apps,extensions", "replicasets"),
    RULE("update", "apps,extensions", "replicasets/status"),
    RULE("update", "apps,extensions", "replicasets/finalizers"),
    RULE("create,delete,list,patch,watch", "", "pods"),
    EVENTS,

    CONTROLLER("replication-controller"),
    RULE("get,list,update,watch", "", "replicationcontrollers"),
    RULE("update", "", "replicationcontrollers/status"),
    RULE("update", "", "replicationcontrollers/finalizers"),
    RULE("create,delete,list,patch,watch", "", "pods"),
    EVENTS,

    CONTROLLER("resourcequota-controller"),
    RULE("list,watch", "*", "*"),
    RULE("update", "", "resourcequotas/status"),
    EVENTS,

    CONTROLLER("route-controller"),
    RULE("list,watch", "", "nodes"),
    RULE("patch", "", "nodes/status"),
    EVENTS,

    CONTROLLER("service-account-controller"),
    RULE("create", "", "serviceaccounts"),
    EVENTS,

    CONTROLLER("service-controller"),
    RULE(READ, "", "services"),
    RULE("patch,update", "", "services/status"),
    RULE("list,watch", "", "nodes"),
    EVENTS,

    CONTROLLER("statefulset-controller"),
    RULE("list,watch", "", "pods"),
    RULE(READ, "apps", "statefulsets"),
    RULE("update", "apps", "statefulsets/status"),
    RULE("update", "apps", "statefulsets/finalizers"),
    RULE("create,delete,get,patch,update", "", "pods"),
    RULE("create,delete,get,list,patch,update,watch", "apps", "controllerrevisions"),
    RULE("create,get,list,watch", "", "persistentvolumeclaims"),
    RULE("delete,update", "", "persistentvolumeclaims"),
    RULE("update", "", "pods/finalizers"),
    EVENTS,

    CONTROLLER("ttl-controller"),
    RULE("list,patch,update,watch", "", "nodes"),
    EVENTS,

    CONTROLLER("pvc-protection-controller"),
    RULE("get,list,update,watch", "", "persistentvolumeclaims"),
    RULE(READ, "", "pods"),
    EVENTS,

    CONTROLLER("pv-protection-controller"),
    RULE("get,list,update,watch", "", "persistentvolumes"),
    EVENTS,

    CONTROLLER("ttl-after-finished-controller"),
    RULE("delete,get,list,watch", "batch", "jobs"),
    EVENTS,

    CONTROLLER("root-ca-cert-publisher"),
    RULE("create,update", "", "configmaps"),
    EVENTS,

    CONTROLLER("validatingadmissionpolicy-status-controller"),
    RULE(READ, "admissionregistration.k8s.io", "validatingadmissionpolicies"),
    RULE("get,patch,update", "admissionregistration.k8s.io", "validatingadmissionpolicies/status"),
    EVENTS,

    CONTROLLER("legacy-service-account-token-cleaner"),
    RULE_NAMES("get", "", "configmaps", "kube-apiserver-legacy-service-account-token-tracking"),
    RULE("delete,patch", "", "secrets"),

    /* ---- policy.go ClusterRoleBindings() ---- */
    CLUSTER_BINDING("cluster-admin", "cluster-admin"),
    GROUP("system:masters"),
    CLUSTER_BINDING("system:monitoring", "system:monitoring"),
    GROUP("system:monitoring"),
    CLUSTER_BINDING("system:discovery", "system:discovery"),
    GROUP("system:authenticated"),
    CLUSTER_BINDING("system:basic-user", "system:basic-user"),
    GROUP("system:authenticated"),
    CLUSTER_BINDING("system:public-info-viewer", "system:public-info-viewer"),
    GROUP("system:authenticated"),
    GROUP("system:unauthenticated"),
    CLUSTER_BINDING("system:node-proxier", "system:node-proxier"),
    USER("system:kube-proxy"),
    CLUSTER_BINDING("system:kube-controller-manager", "system:kube-controller-manager"),
    USER("system:kube-controller-manager"),
    CLUSTER_BINDING("system:kube-dns", "system:kube-dns"),
    SERVICE_ACCOUNT("kube-system", "kube-dns"),
    CLUSTER_BINDING("system:kube-scheduler", "system:kube-scheduler"),
    USER("system:kube-scheduler"),
    CLUSTER_BINDING("system:volume-scheduler", "system:volume-scheduler"),
    USER("system:kube-scheduler"),
    /* Bound to nobody since 1.8: the Node authorizer grants these rules, narrowed. */
    CLUSTER_BINDING("system:node", "system:node"),
    CLUSTER_BINDING("system:service-account-issuer-discovery",
                    "system:service-account-issuer-discovery"),
    GROUP("system:serviceaccounts"),

    /* ---- namespace_policy.go ---- */
    ROLE("kube-system", "extension-apiserver-authentication-reader"),
    RULE_NAMES(READ, "", "configmaps", "extension-apiserver-authentication"),
    ROLE("kube-system", "system:controller:bootstrap-signer"),
    RULE(READ, "", "secrets"),
    ROLE("kube-system", "system:controller:cloud-provider"),
    RULE("create,get,list,watch", "", "configmaps"),
    ROLE("kube-system", "system:controller:token-cleaner"),
    RULE("delete,get,list,watch", "", "secrets"),
    EVENTS,
    ROLE("kube-system", "system::leader-locking-kube-controller-manager"),
    RULE("watch", "", "configmaps"),
    RULE_NAMES("get,update", "", "configmaps", "kube-controller-manager"),
    RULE("create,get,list,update,watch", "coordination.k8s.io", "leases"),
    ROLE("kube-system", "system::leader-locking-kube-scheduler"),
    RULE("watch", "", "configmaps"),
    RULE_NAMES("get,update", "", "configmaps", "kube-scheduler"),
    ROLE("kube-public", "system:controller:bootstrap-signer"),
    RULE(READ, "", "configmaps"),
    RULE_NAMES("update", "", "configmaps", "cluster-info"),
    EVENTS,

    BINDING("kube-system", "system::extension-apiserver-authentication-reader", "Role",
            "extension-apiserver-authentication-reader"),
    USER("system:kube-controller-manager"),
    USER("system:kube-scheduler"),
    BINDING("kube-system", "system::leader-locking-kube-controller-manager", "Role",
            "system::leader-locking-kube-controller-manager"),
    USER("system:kube-controller-manager"),
    SERVICE_ACCOUNT("kube-system", "kube-controller-manager"),
    SERVICE_ACCOUNT("kube-system", "leader-election-controller"),
    BINDING("kube-system", "system::leader-locking-kube-scheduler", "Role",
            "system::leader-locking-kube-scheduler"),
    USER("system:kube-scheduler"),
    SERVICE_ACCOUNT("kube-system", "kube-scheduler"),
    BINDING("kube-system", "system:controller:bootstrap-signer", "Role",
            "system:controller:bootstrap-signer"),
    SERVICE_ACCOUNT("kube-system", "bootstrap-signer"),
    BINDING("kube-system", "system:controller:cloud-provider", "Role",
            "system:controller:cloud-provider"),
    SERVICE_ACCOUNT("kube-system", "cloud-provider"),
    BINDING("kube-system", "system:controller:token-cleaner", "Role",
            "system:controller:token-cleaner"),
    SERVICE_ACCOUNT("kube-system", "token-cleaner"),
    BINDING("kube-public", "system:controller:bootstrap-signer", "Role",
            "system:controller:bootstrap-signer"),
    SERVICE_ACCOUNT("kube-system", "bootstrap-signer"),

    /* ---- kubeadm ---- */
    {ROW_KUBEADM, NULL, NULL, NULL, NULL},
    /* phases/bootstraptoken/node/tlsbootstrap.go */
    CLUSTER_BINDING("kubeadm:kubelet-bootstrap", "system:node-bootstrapper"),
    GROUP(BOOTSTRAP_TOKEN_GROUP),
    CLUSTER_ROLE("kubeadm:get-nodes"),
    RULE("get", "", "nodes"),
    CLUSTER_BINDING("kubeadm:get-nodes", "kubeadm:get-nodes"),
    GROUP(BOOTSTRAP_TOKEN_GROUP),
    CLUSTER_BINDING("kubeadm:node-autoapprove-bootstrap",
                    "system:certificates.k8s.io:certificatesigningrequests:nodeclient"),
    GROUP(BOOTSTRAP_TOKEN_GROUP),
    CLUSTER_BINDING("kubeadm:node-autoapprove-certificate-rotation",
                    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"),
    GROUP("system:nodes"),
    /* phases/kubeconfig: admin.conf's group, bound to cluster-admin (1.29+) */
    CLUSTER_BINDING("kubeadm:cluster-admins", "cluster-admin"),
    GROUP("kubeadm:cluster-admins"),
    /* phases/bootstraptoken/clusterinfo */
    ROLE("kube-public", "kubeadm:bootstrap-signer-clusterinfo"),
    RULE_NAMES("get", "", "configmaps", "cluster-info"),
    BINDING("kube-public", "kubeadm:bootstrap-signer-clusterinfo", "Role",
            "kubeadm:bootstrap-signer-clusterinfo"),
    USER("system:anonymous"),
    /* phases/kubelet (the kubelet-config ConfigMap) */
    ROLE("kube-system", "kubeadm:kubelet-config"),
    RULE_NAMES("get", "", "configmaps", "kubelet-config"),
    BINDING("kube-system", "kubeadm:kubelet-config", "Role", "kubeadm:kubelet-config"),
    GROUP("system:nodes"),
    GROUP(BOOTSTRAP_TOKEN_GROUP),
    /* phases/uploadconfig (the kubeadm-config ConfigMap) */
    ROLE("kube-system", "kubeadm:nodes-kubeadm-config"),
    RULE_NAMES("get", "", "configmaps", "kubeadm-config"),
    BINDING("kube-system", "kubeadm:nodes-kubeadm-config", "Role", "kubeadm:nodes-kubeadm-config"),
    GROUP(BOOTSTRAP_TOKEN_GROUP),
    GROUP("system:nodes"),
};
/* clang-format on */

/* A comma-separated list as a JSON array, empty elements kept ("" is [""]). */
static json_t *split_list(const char *text)
{
    json_t *list = json_array();
    for (const char *start = text; list != NULL;) {
        const char *comma = strchr(start, ',');
        size_t len = comma != NULL ? (size_t)(comma - start) : strlen(start);
        if (json_array_append_new(list, json_stringn(start, len)) != 0) {
            json_decref(list);
            return NULL;
        }
        if (comma == NULL) {
            break;
        }
        start = comma + 1;
    }
    return list;
}

static json_t *make_rule(const struct row *row)
{
    json_t *rule = json_object();
    if (rule == NULL) {
        return NULL;
    }
    bool ok = json_object_set_new(rule, "verbs", split_list(row->a)) == 0;
    if (row->type == ROW_URLS) {
        ok = ok && json_object_set_new(rule, "nonResourceURLs", split_list(row->b)) == 0;
    } else {
        ok = ok && json_object_set_new(rule, "apiGroups", split_list(row->b)) == 0 &&
             json_object_set_new(rule, "resources", split_list(row->c)) == 0;
        if (ok && row->d != NULL) {
            ok = json_object_set_new(rule, "resourceNames", split_list(row->d)) == 0;
        }
    }
    if (!ok) {
        json_decref(rule);
        return NULL;
    }
    return rule;
}

static json_t *make_object(const char *kind, const char *ns, const char *name, bool bootstrap)
{
    json_t *metadata = ns != NULL ? json_pack("{s:s, s:s}", "name", name, "namespace", ns)
                                  : json_pack("{s:s}", "name", name);
    if (metadata != NULL && bootstrap &&
        (json_object_set_new(metadata, "labels",
                             json_pack("{s:s}", "kubernetes.io/bootstrapping", "rbac-defaults")) !=
             0 ||
         json_object_set_new(
             metadata, "annotations",
             json_pack("{s:s}", "rbac.authorization.kubernetes.io/autoupdate", "true")) != 0)) {
        json_decref(metadata);
        metadata = NULL;
    }
    if (metadata == NULL) {
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o}", "apiVersion", "rbac.authorization.k8s.io/v1", "kind", kind,
                     "metadata", metadata);
}

static json_t *make_binding(const char *kind, const char *ns, const char *name,
                            const char *role_kind, const char *role_name, bool bootstrap)
{
    json_t *binding = make_object(kind, ns, name, bootstrap);
    if (binding != NULL &&
        json_object_set_new(binding, "roleRef",
                            json_pack("{s:s, s:s, s:s}", "apiGroup", "rbac.authorization.k8s.io",
                                      "kind", role_kind, "name", role_name)) != 0) {
        json_decref(binding);
        binding = NULL;
    }
    return binding;
}

/* Appends to the "subjects" of binding, creating it. */
static bool add_subject(json_t *binding, json_t *subject)
{
    if (subject == NULL) {
        return false;
    }
    json_t *subjects = json_object_get(binding, "subjects");
    if (subjects == NULL) {
        subjects = json_array();
        if (json_object_set_new(binding, "subjects", subjects) != 0) {
            json_decref(subject);
            return false;
        }
    }
    return json_array_append_new(subjects, subject) == 0;
}

/* The output lists, in the order kp_rbac_default_policy concatenates them. */
enum {
    OUT_CLUSTER_ROLES,
    OUT_CLUSTER_BINDINGS,
    OUT_CONTROLLER_BINDINGS,
    OUT_ROLES,
    OUT_BINDINGS,
    OUT_KUBEADM,
    OUT_COUNT
};

static bool build_row(const struct row *row, json_t *out[OUT_COUNT], json_t **current,
                      bool *kubeadm)
{
    json_t *object = NULL;
    size_t list = OUT_COUNT;
    switch (row->type) {
    case ROW_KUBEADM:
        *kubeadm = true;
        *current = NULL;
        return true;
    case ROW_CLUSTER_ROLE:
        object = make_object("ClusterRole", NULL, row->a, !*kubeadm);
        list = OUT_CLUSTER_ROLES;
        break;
    case ROW_CONTROLLER: {
        char name[128];
        snprintf(name, sizeof(name), "system:controller:%s", row->a);
        json_t *binding = make_binding("ClusterRoleBinding", NULL, name, "ClusterRole", name, true);
        if (binding == NULL ||
            !add_subject(binding, json_pack("{s:s, s:s, s:s}", "kind", "ServiceAccount", "name",
                                            row->a, "namespace", "kube-system")) ||
            json_array_append_new(out[OUT_CONTROLLER_BINDINGS], binding) != 0) {
            return false;
        }
        object = make_object("ClusterRole", NULL, name, true);
        list = OUT_CLUSTER_ROLES;
        break;
    }
    case ROW_ROLE:
        object = make_object("Role", row->a, row->b, !*kubeadm);
        list = OUT_ROLES;
        break;
    case ROW_CLUSTER_BINDING:
        object = make_binding("ClusterRoleBinding", NULL, row->a, "ClusterRole", row->b, !*kubeadm);
        list = OUT_CLUSTER_BINDINGS;
        break;
    case ROW_BINDING:
        object = make_binding("RoleBinding", row->a, row->b, row->c, row->d, !*kubeadm);
        list = OUT_BINDINGS;
        break;
    case ROW_RULE:
    case ROW_URLS: {
        json_t *rules = json_object_get(*current, "rules");
        return rules != NULL && json_array_append_new(rules, make_rule(row)) == 0;
    }
    case ROW_LABEL:
        return json_object_set_new(json_object_get(json_object_get(*current, "metadata"), "labels"),
                                   row->a, json_string("true")) == 0;
    case ROW_AGGREGATE:
        return json_object_set_new(*current, "aggregationRule",
                                   json_pack("{s:[{s:{s:s}}]}", "clusterRoleSelectors",
                                             "matchLabels", row->a, "true")) == 0;
    case ROW_USER:
    case ROW_GROUP:
        return add_subject(
            *current, json_pack("{s:s, s:s, s:s}", "apiGroup", "rbac.authorization.k8s.io", "kind",
                                row->type == ROW_USER ? "User" : "Group", "name", row->a));
    case ROW_SERVICE_ACCOUNT:
        return add_subject(*current, json_pack("{s:s, s:s, s:s}", "kind", "ServiceAccount", "name",
                                               row->b, "namespace", row->a));
    }
    if (object == NULL) {
        return false;
    }
    if ((row->type == ROW_CLUSTER_ROLE || row->type == ROW_CONTROLLER || row->type == ROW_ROLE) &&
        json_object_set_new(object, "rules", json_array()) != 0) {
        json_decref(object);
        return false;
    }
    *current = object;
    return json_array_append_new(out[*kubeadm ? OUT_KUBEADM : list], object) == 0;
}

json_t *kp_rbac_default_policy(void)
{
    json_t *out[OUT_COUNT] = {NULL};
    json_t *policy_objects = json_array();
    bool ok = policy_objects != NULL;
    for (size_t i = 0; i < OUT_COUNT; i++) {
        out[i] = json_array();
        ok = ok && out[i] != NULL;
    }
    json_t *current = NULL;
    bool kubeadm = false;
    for (size_t i = 0; ok && i < sizeof(policy) / sizeof(policy[0]); i++) {
        ok = build_row(&policy[i], out, &current, &kubeadm);
    }
    for (size_t i = 0; ok && i < OUT_COUNT; i++) {
        ok = json_array_extend(policy_objects, out[i]) == 0;
    }
    for (size_t i = 0; i < OUT_COUNT; i++) {
        json_decref(out[i]);
    }
    if (!ok) {
        json_decref(policy_objects);
        return NULL;
    }
    return policy_objects;
}

json_t *kp_rbac_node_rules(void)
{
    json_t *rules = json_array();
    bool in_node_role = false;
    for (size_t i = 0; rules != NULL && i < sizeof(policy) / sizeof(policy[0]); i++) {
        const struct row *row = &policy[i];
        if (row->type == ROW_CLUSTER_ROLE) {
            in_node_role = strcmp(row->a, "system:node") == 0;
        } else if (row->type != ROW_RULE && row->type != ROW_URLS && row->type != ROW_LABEL) {
            in_node_role = false;
        } else if (in_node_role && row->type != ROW_LABEL &&
                   json_array_append_new(rules, make_rule(row)) != 0) {
            json_decref(rules);
            rules = NULL;
        }
    }
    return rules;
}
