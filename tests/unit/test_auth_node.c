/*
 * auth/node: the Node authorizer's graph, every row of the facts sheet's §7 table, and each
 * NodeRestriction rule allowed and refused, with upstream's messages pinned.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/node.h"

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);
    if (value == NULL) {
        fail_msg("bad test JSON (line %d: %s): %s", error.line, error.text, text);
    }
    return value;
}

static void make_user(struct kp_user *user, const char *name, const char *groups)
{
    memset(user, 0, sizeof(*user));
    user->name = strdup(name);
    assert_non_null(user->name);
    struct kp_error err;
    assert_int_equal(kp_strlist_add_split(&user->groups, groups, &err), KP_OK);
}

static void put_pod(struct kp_node_graph *graph, const char *text)
{
    json_t *pod = parse(text);
    struct kp_error err;
    if (kp_node_graph_put_pod(graph, pod, &err) != KP_OK) {
        fail_msg("put_pod: %s", err.message);
    }
    json_decref(pod);
}

/* A pod on node n1 that references one of everything. */
#define RICH_POD                                                                                   \
    "{\"metadata\":{\"namespace\":\"app\",\"name\":\"web\",\"uid\":\"pod-uid\"},\"spec\":{"        \
    "\"nodeName\":\"n1\",\"serviceAccountName\":\"web-sa\","                                       \
    "\"imagePullSecrets\":[{\"name\":\"pull\"}],"                                                  \
    "\"initContainers\":[{\"name\":\"i\",\"envFrom\":[{\"secretRef\":{\"name\":\"init-env\"}}]}]," \
    "\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"A\",\"valueFrom\":{\"secretKeyRef\":"    \
    "{\"name\":\"env-secret\",\"key\":\"k\"}}},{\"name\":\"B\",\"valueFrom\":{"                    \
    "\"configMapKeyRef\":"                                                                         \
    "{\"name\":\"env-cm\",\"key\":\"k\"}}}],\"envFrom\":[{\"configMapRef\":{\"name\":"             \
    "\"envfrom-cm\"}}]}],"                                                                         \
    "\"ephemeralContainers\":[{\"name\":\"debug\",\"envFrom\":[{\"secretRef\":{\"name\":"          \
    "\"debug-secret\"}}]}],"                                                                       \
    "\"volumes\":[{\"name\":\"s\",\"secret\":{\"secretName\":\"vol-secret\"}},"                    \
    "{\"name\":\"cm\",\"configMap\":{\"name\":\"vol-cm\"}},"                                       \
    "{\"name\":\"p\",\"projected\":{\"sources\":[{\"secret\":{\"name\":\"proj-secret\"}},"         \
    "{\"configMap\":{\"name\":\"proj-cm\"}},{\"serviceAccountToken\":{\"path\":\"t\"}}]}},"        \
    "{\"name\":\"csi\",\"csi\":{\"driver\":\"d\",\"nodePublishSecretRef\":{\"name\":"              \
    "\"csi-secret\"}}},"                                                                           \
    "{\"name\":\"rbd\",\"rbd\":{\"secretRef\":{\"name\":\"rbd-secret\"}}},"                        \
    "{\"name\":\"az\",\"azureFile\":{\"secretName\":\"az-secret\"}},"                              \
    "{\"name\":\"data\",\"persistentVolumeClaim\":{\"claimName\":\"data-claim\"}},"                \
    "{\"name\":\"scratch\",\"ephemeral\":{\"volumeClaimTemplate\":{}}}]}}"

static void test_node_identity(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *groups;
        const char *node; /* NULL: not a node */
    } rows[] = {
        {"system:node:n1", "system:nodes,system:authenticated", "n1"},
        {"system:node:", "system:nodes", ""},
        {"system:node:n1", "system:authenticated", NULL},
        {"system:nodes:n1", "system:nodes", NULL},
        {"n1", "system:nodes", NULL},
        {"system:serviceaccount:kube-system:node", "system:nodes", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_user user;
        make_user(&user, rows[i].name, rows[i].groups);
        const char *node = kp_node_identity(&user);
        if (rows[i].node == NULL) {
            if (node != NULL) {
                fail_msg("row %zu: %s is not a node", i, rows[i].name);
            }
        } else {
            assert_non_null(node);
            assert_string_equal(node, rows[i].node);
        }
        kp_user_wipe(&user);
    }
    assert_null(kp_node_identity(NULL));
}

static void test_graph_edges(void **state)
{
    (void)state;
    struct kp_node_graph *graph = NULL;
    struct kp_error err;
    assert_int_equal(kp_node_graph_new(&graph, &err), KP_OK);
    put_pod(graph, RICH_POD);
    static const struct {
        const char *resource;
        const char *name;
    } related[] = {
        {"pods", "web"},
        {"serviceaccounts", "web-sa"},
        {"secrets", "pull"},
        {"secrets", "init-env"},
        {"secrets", "env-secret"},
        {"secrets", "debug-secret"},
        {"secrets", "vol-secret"},
        {"secrets", "proj-secret"},
        {"secrets", "csi-secret"},
        {"secrets", "rbd-secret"},
        {"secrets", "az-secret"},
        {"configmaps", "env-cm"},
        {"configmaps", "envfrom-cm"},
        {"configmaps", "vol-cm"},
        {"configmaps", "proj-cm"},
        {"persistentvolumeclaims", "data-claim"},
        {"persistentvolumeclaims", "web-scratch"},
    };
    for (size_t i = 0; i < sizeof(related) / sizeof(related[0]); i++) {
        if (!kp_node_graph_related(graph, "n1", related[i].resource, "app", related[i].name)) {
            fail_msg("%s app/%s should be related to n1", related[i].resource, related[i].name);
        }
        /* not to another node, not in another namespace */
        assert_false(
            kp_node_graph_related(graph, "n2", related[i].resource, "app", related[i].name));
        assert_false(
            kp_node_graph_related(graph, "n1", related[i].resource, "other", related[i].name));
    }
    assert_false(kp_node_graph_related(graph, "n1", "secrets", "app", "unrelated"));
    assert_false(kp_node_graph_related(graph, "n1", "configmaps", "app", "vol-secret"));
    assert_false(kp_node_graph_related(graph, "n1", "persistentvolumes", "", "data-claim"));

    /* a second pod sharing a secret, on the same node */
    put_pod(graph, "{\"metadata\":{\"namespace\":\"app\",\"name\":\"worker\"},\"spec\":{"
                   "\"nodeName\":\"n1\",\"volumes\":[{\"name\":\"s\",\"secret\":{\"secretName\":"
                   "\"vol-secret\"}}]}}");
    /* replace web: moved to n2, now referencing only vol-cm */
    put_pod(graph, "{\"metadata\":{\"namespace\":\"app\",\"name\":\"web\"},\"spec\":{"
                   "\"nodeName\":\"n2\",\"volumes\":[{\"name\":\"cm\",\"configMap\":{\"name\":"
                   "\"vol-cm\"}}]}}");
    assert_false(kp_node_graph_related(graph, "n1", "pods", "app", "web"));
    assert_true(kp_node_graph_related(graph, "n2", "pods", "app", "web"));
    assert_false(kp_node_graph_related(graph, "n1", "secrets", "app", "pull"));
    assert_false(kp_node_graph_related(graph, "n1", "configmaps", "app", "vol-cm"));
    assert_true(kp_node_graph_related(graph, "n2", "configmaps", "app", "vol-cm"));
    assert_true(kp_node_graph_related(graph, "n1", "secrets", "app", "vol-secret")); /* worker */
    assert_false(kp_node_graph_related(graph, "n2", "secrets", "app", "vol-secret"));

    /* delete: edges go, other pods' stay */
    kp_node_graph_delete_pod(graph, "app", "worker");
    assert_false(kp_node_graph_related(graph, "n1", "secrets", "app", "vol-secret"));
    assert_false(kp_node_graph_related(graph, "n1", "pods", "app", "worker"));
    kp_node_graph_delete_pod(graph, "app", "worker"); /* twice is harmless */
    kp_node_graph_delete_pod(graph, "app", "web");
    assert_false(kp_node_graph_related(graph, "n2", "configmaps", "app", "vol-cm"));

    /* a mirror pod contributes only pod -> node */
    put_pod(graph, "{\"metadata\":{\"namespace\":\"kube-system\",\"name\":\"etcd-n1\","
                   "\"annotations\":{\"kubernetes.io/config.mirror\":\"x\"}},\"spec\":{"
                   "\"nodeName\":\"n1\",\"volumes\":[{\"name\":\"s\",\"secret\":{\"secretName\":"
                   "\"etcd-certs\"}}]}}");
    assert_true(kp_node_graph_related(graph, "n1", "pods", "kube-system", "etcd-n1"));
    assert_false(kp_node_graph_related(graph, "n1", "secrets", "kube-system", "etcd-certs"));

    /* an unscheduled pod has no edges; scheduling it adds them; unscheduling removes them */
    put_pod(graph, "{\"metadata\":{\"namespace\":\"app\",\"name\":\"pending\"},\"spec\":{"
                   "\"volumes\":[{\"name\":\"s\",\"secret\":{\"secretName\":\"p-secret\"}}]}}");
    assert_false(kp_node_graph_related(graph, "n1", "pods", "app", "pending"));
    put_pod(graph, "{\"metadata\":{\"namespace\":\"app\",\"name\":\"pending\"},\"spec\":{"
                   "\"nodeName\":\"n1\",\"volumes\":[{\"name\":\"s\",\"secret\":{\"secretName\":"
                   "\"p-secret\"}}]}}");
    assert_true(kp_node_graph_related(graph, "n1", "secrets", "app", "p-secret"));
    put_pod(graph, "{\"metadata\":{\"namespace\":\"app\",\"name\":\"pending\"},\"spec\":{}}");
    assert_false(kp_node_graph_related(graph, "n1", "secrets", "app", "p-secret"));

    /* bad input */
    json_t *bad = parse("{\"metadata\":{\"name\":\"x\"},\"spec\":{\"nodeName\":\"n1\"}}");
    assert_int_equal(kp_node_graph_put_pod(graph, bad, &err), KP_ERR_INVALID);
    json_decref(bad);
    assert_false(kp_node_graph_related(graph, "n1", "widgets", "app", "x"));
    assert_false(kp_node_graph_related(NULL, "n1", "pods", "app", "x"));
    kp_node_graph_free(graph);
    kp_node_graph_free(NULL);
}

/* ---- the authorizer: the §7 table ---- */

struct authz_row {
    const char *verb;
    const char *group;
    const char *resource;
    const char *subresource;
    const char *ns;
    const char *name;
    const char *field_selector; /* NULL: none */
    enum kp_authz_verdict verdict;
    const char *reason;
};

static void check_rows(struct kp_node_graph *graph, const struct kp_user *user,
                       const struct authz_row *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct kp_selector selector;
        struct kp_error err;
        bool has_selector = rows[i].field_selector != NULL;
        if (has_selector) {
            assert_int_equal(kp_field_selector_parse(rows[i].field_selector, &selector, &err),
                             KP_OK);
        }
        struct kp_authz_attrs attrs = {
            .user = user,
            .resource_request = true,
            .verb = rows[i].verb,
            .api_group = rows[i].group,
            .api_version = "v1",
            .resource = rows[i].resource,
            .subresource = rows[i].subresource,
            .namespace_ = rows[i].ns,
            .name = rows[i].name,
            .path = "",
            .field_selector = has_selector ? &selector : NULL,
        };
        struct kp_authz_decision decision;
        kp_node_authorize(graph, &attrs, &decision);
        if (decision.verdict != rows[i].verdict || strcmp(decision.reason, rows[i].reason) != 0) {
            fail_msg("row %zu: %s %s/%s %s/%s [%s]: got %d '%s', expected %d '%s'", i, rows[i].verb,
                     rows[i].resource, rows[i].subresource, rows[i].ns, rows[i].name,
                     has_selector ? rows[i].field_selector : "", decision.verdict, decision.reason,
                     rows[i].verdict, rows[i].reason);
        }
        if (has_selector) {
            kp_selector_wipe(&selector);
        }
    }
}

#define A KP_AUTHZ_ALLOW
#define N KP_AUTHZ_NO_OPINION
#define NO_REL "no relationship found between node 'n1' and this object"

static void test_authorizer_table(void **state)
{
    (void)state;
    struct kp_node_graph *graph = NULL;
    struct kp_error err;
    assert_int_equal(kp_node_graph_new(&graph, &err), KP_OK);
    put_pod(graph, RICH_POD);
    put_pod(graph, "{\"metadata\":{\"namespace\":\"app\",\"name\":\"elsewhere\"},\"spec\":{"
                   "\"nodeName\":\"n2\",\"serviceAccountName\":\"other-sa\",\"volumes\":[{"
                   "\"name\":\"s\",\"secret\":{\"secretName\":\"n2-secret\"}},{\"name\":\"d\","
                   "\"persistentVolumeClaim\":{\"claimName\":\"n2-claim\"}}]}}");
    struct kp_user node;
    make_user(&node, "system:node:n1", "system:nodes,system:authenticated");
    static const struct authz_row rows[] = {
        /* secrets, configmaps: get/list/watch of a single named, related object */
        {"get", "", "secrets", "", "app", "vol-secret", NULL, A, ""},
        {"list", "", "secrets", "", "app", "vol-secret", NULL, A, ""},
        {"watch", "", "configmaps", "", "app", "vol-cm", NULL, A, ""},
        {"get", "", "secrets", "", "app", "n2-secret", NULL, N, NO_REL},
        {"get", "", "secrets", "", "app", "nope", NULL, N, NO_REL},
        {"list", "", "secrets", "", "app", "", NULL, N, "No Object name found"},
        {"get", "", "secrets", "", "", "vol-secret", NULL, N,
         "can only read namespaced object of this type"},
        {"get", "", "secrets", "x", "app", "vol-secret", NULL, N, "cannot read subresource"},
        {"create", "", "secrets", "", "app", "", NULL, N, "can only read resources of this type"},
        {"update", "", "configmaps", "", "app", "vol-cm", NULL, N,
         "can only read resources of this type"},
        /* persistentvolumeclaims: get if related; status update/patch if related */
        {"get", "", "persistentvolumeclaims", "", "app", "data-claim", NULL, A, ""},
        {"get", "", "persistentvolumeclaims", "", "app", "web-scratch", NULL, A, ""},
        {"get", "", "persistentvolumeclaims", "", "app", "n2-claim", NULL, N, NO_REL},
        {"list", "", "persistentvolumeclaims", "", "app", "", NULL, N,
         "can only get individual resources of this type"},
        {"update", "", "persistentvolumeclaims", "status", "app", "data-claim", NULL, A, ""},
        {"patch", "", "persistentvolumeclaims", "status", "app", "data-claim", NULL, A, ""},
        {"patch", "", "persistentvolumeclaims", "status", "app", "n2-claim", NULL, N, NO_REL},
        {"get", "", "persistentvolumeclaims", "status", "app", "data-claim", NULL, N,
         "can only get/update/patch this type"},
        {"update", "", "persistentvolumeclaims", "", "app", "data-claim", NULL, N,
         "can only get individual resources of this type"},
        /* persistentvolumes, volumeattachments, resourceclaims: get if related (kpki's graph
         * has no edges to them) */
        {"get", "", "persistentvolumes", "", "", "pv-1", NULL, N, NO_REL},
        {"get", "", "persistentvolumes", "x", "", "pv-1", NULL, N, "cannot get subresource"},
        {"list", "storage.k8s.io", "volumeattachments", "", "", "", NULL, N,
         "can only get individual resources of this type"},
        {"get", "storage.k8s.io", "volumeattachments", "", "", "va-1", NULL, N, NO_REL},
        {"get", "resource.k8s.io", "resourceclaims", "", "app", "claim", NULL, N, NO_REL},
        /* serviceaccounts: only create on token for a related service account */
        {"create", "", "serviceaccounts", "token", "app", "web-sa", NULL, A, ""},
        {"create", "", "serviceaccounts", "token", "app", "other-sa", NULL, N, NO_REL},
        {"create", "", "serviceaccounts", "", "app", "web-sa", NULL, N,
         "can only create token subresource of serviceaccount"},
        {"get", "", "serviceaccounts", "", "app", "web-sa", NULL, N,
         "can only create tokens for individual service accounts"},
        {"create", "", "serviceaccounts", "token", "app", "", NULL, N,
         "can only create tokens for individual service accounts"},
        /* leases in kube-node-lease named after the node */
        {"get", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1", NULL, A, ""},
        {"update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1", NULL, A, ""},
        {"create", "coordination.k8s.io", "leases", "", "kube-node-lease", "", NULL, A, ""},
        {"delete", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1", NULL, A, ""},
        {"get", "coordination.k8s.io", "leases", "", "kube-node-lease", "n2", NULL, N,
         "can only access node lease with the same name as the requesting node"},
        {"get", "coordination.k8s.io", "leases", "", "kube-system", "n1", NULL, N,
         "can only access leases in the \"kube-node-lease\" system namespace"},
        {"list", "coordination.k8s.io", "leases", "", "kube-node-lease", "", NULL, N,
         "can only get, create, update, patch, or delete a node lease"},
        /* csinodes named after the node, no subresources */
        {"get", "storage.k8s.io", "csinodes", "", "", "n1", NULL, A, ""},
        {"create", "storage.k8s.io", "csinodes", "", "", "", NULL, A, ""},
        {"patch", "storage.k8s.io", "csinodes", "", "", "n2", NULL, N,
         "can only access CSINode with the same name as the requesting node"},
        {"get", "storage.k8s.io", "csinodes", "status", "", "n1", NULL, N,
         "cannot authorize CSINode subresources"},
        {"watch", "storage.k8s.io", "csinodes", "", "", "n1", NULL, N,
         "can only get, create, update, patch, or delete a CSINode"},
        /* resourceslices */
        {"create", "resource.k8s.io", "resourceslices", "", "", "", NULL, A, ""},
        {"get", "resource.k8s.io", "resourceslices", "", "", "s1", NULL, N, NO_REL},
        {"list", "resource.k8s.io", "resourceslices", "", "", "", "nodeName=n1", A, ""},
        {"deletecollection", "resource.k8s.io", "resourceslices", "", "", "", "nodeName=n1", A, ""},
        {"watch", "resource.k8s.io", "resourceslices", "", "", "", "nodeName=n2", N,
         "can only list/watch/deletecollection resourceslices with nodeName field selector"},
        {"list", "resource.k8s.io", "resourceslices", "", "", "", NULL, N,
         "can only list/watch/deletecollection resourceslices with nodeName field selector"},
        {"get", "resource.k8s.io", "resourceslices", "status", "", "s1", NULL, N,
         "cannot authorize ResourceSlice subresources"},
        {"escalate", "resource.k8s.io", "resourceslices", "", "", "s1", NULL, N,
         "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, "
         "update, patch, delete, deletecollection"},
        /* nodes: read only its own; create/update/patch; status update/patch */
        {"get", "", "nodes", "", "", "n1", NULL, A, ""},
        {"get", "", "nodes", "", "", "n2", NULL, N,
         "node 'n1' cannot read 'n2', only its own Node object"},
        {"list", "", "nodes", "", "", "", NULL, N,
         "node 'n1' cannot read all nodes, only its own Node object"},
        {"list", "", "nodes", "", "", "", "metadata.name=n1", A, ""},
        {"watch", "", "nodes", "", "", "n1", NULL, A, ""},
        {"watch", "", "nodes", "", "", "", "metadata.name=n2", N,
         "node 'n1' cannot read 'n2', only its own Node object"},
        {"create", "", "nodes", "", "", "", NULL, A, ""},
        {"update", "", "nodes", "", "", "n1", NULL, A, ""},
        {"patch", "", "nodes", "", "", "n2", NULL, A, ""}, /* NodeRestriction refuses */
        {"patch", "", "nodes", "status", "", "n1", NULL, A, ""},
        {"delete", "", "nodes", "", "", "n1", NULL, N, ""},
        {"get", "", "nodes", "proxy", "", "n1", NULL, N, ""},
        /* pods */
        {"get", "", "pods", "", "app", "web", NULL, A, ""},
        {"get", "", "pods", "", "app", "elsewhere", NULL, N, NO_REL},
        {"list", "", "pods", "", "", "", "spec.nodeName=n1", A, ""},
        {"watch", "", "pods", "", "app", "", "spec.nodeName=n1", A, ""},
        {"list", "", "pods", "", "", "", "spec.nodeName==n1,status.phase=Running", A, ""},
        {"list", "", "pods", "", "", "", NULL, N,
         "can only list/watch pods with spec.nodeName field selector"},
        {"list", "", "pods", "", "", "", "spec.nodeName=n2", N,
         "can only list/watch pods with spec.nodeName field selector"},
        {"list", "", "pods", "", "", "", "spec.nodeName!=n1", N,
         "can only list/watch pods with spec.nodeName field selector"},
        {"watch", "", "pods", "", "app", "web", NULL, A, ""},
        {"watch", "", "pods", "", "app", "elsewhere", NULL, N, NO_REL},
        {"create", "", "pods", "", "kube-system", "", NULL, A, ""},
        {"delete", "", "pods", "", "app", "elsewhere", NULL, A, ""}, /* NodeRestriction refuses */
        {"update", "", "pods", "", "app", "web", NULL, N, ""},
        {"update", "", "pods", "status", "app", "web", NULL, A, ""},
        {"patch", "", "pods", "status", "app", "web", NULL, A, ""},
        {"get", "", "pods", "status", "app", "web", NULL, N, ""},
        {"create", "", "pods", "eviction", "app", "web", NULL, A, ""},
        {"create", "", "pods", "exec", "app", "web", NULL, N, ""},
        {"create", "", "pods", "binding", "app", "web", NULL, N, ""},
        /* everything else: the static system:node rules */
        {"list", "", "services", "", "", "", NULL, A, ""},
        {"create", "", "events", "", "app", "", NULL, A, ""},
        {"patch", "", "events", "", "app", "e", NULL, A, ""},
        {"create", "authentication.k8s.io", "tokenreviews", "", "", "", NULL, A, ""},
        {"create", "authorization.k8s.io", "subjectaccessreviews", "", "", "", NULL, A, ""},
        {"create", "certificates.k8s.io", "certificatesigningrequests", "", "", "", NULL, A, ""},
        {"watch", "certificates.k8s.io", "certificatesigningrequests", "", "", "", NULL, A, ""},
        {"get", "", "endpoints", "", "default", "kubernetes", NULL, A, ""},
        {"list", "storage.k8s.io", "csidrivers", "", "", "", NULL, A, ""},
        {"list", "node.k8s.io", "runtimeclasses", "", "", "", NULL, A, ""},
        {"delete", "", "services", "", "default", "kubernetes", NULL, N, ""},
        {"list", "apps", "deployments", "", "", "", NULL, N, ""},
        {"create", "certificates.k8s.io", "certificatesigningrequests", "selfnodeclient", "", "",
         NULL, N, ""},
        {"list", "certificates.k8s.io", "clustertrustbundles", "", "", "", NULL, N, ""},
    };
    check_rows(graph, &node, rows, sizeof(rows) / sizeof(rows[0]));

    /* an unknown node has no relationships at all */
    struct kp_user stranger;
    make_user(&stranger, "system:node:n9", "system:nodes");
    static const struct authz_row stranger_rows[] = {
        {"get", "", "secrets", "", "app", "vol-secret", NULL, N,
         "no relationship found between node 'n9' and this object"},
        {"get", "", "nodes", "", "", "n9", NULL, A, ""},
        {"list", "", "pods", "", "", "", "spec.nodeName=n9", A, ""},
    };
    check_rows(graph, &stranger, stranger_rows, sizeof(stranger_rows) / sizeof(stranger_rows[0]));
    kp_user_wipe(&stranger);

    /* non-resource requests: the static rules grant none */
    struct kp_authz_attrs url = {.user = &node, .verb = "get", .path = "/healthz"};
    struct kp_authz_decision decision;
    kp_node_authorize(graph, &url, &decision);
    assert_int_equal(decision.verdict, N);

    /* not a node: no opinion, RBAC decides */
    struct kp_user admin;
    make_user(&admin, "system:node:n1", "system:masters");
    struct kp_authz_attrs attrs = {.user = &admin,
                                   .resource_request = true,
                                   .verb = "get",
                                   .api_group = "",
                                   .resource = "secrets",
                                   .subresource = "",
                                   .namespace_ = "app",
                                   .name = "vol-secret"};
    kp_node_authorize(graph, &attrs, &decision);
    assert_int_equal(decision.verdict, N);
    assert_string_equal(decision.reason, "");
    kp_user_wipe(&admin);

    /* a node identity without a name */
    struct kp_user nameless;
    make_user(&nameless, "system:node:", "system:nodes");
    attrs.user = &nameless;
    kp_node_authorize(graph, &attrs, &decision);
    assert_int_equal(decision.verdict, N);
    assert_string_equal(decision.reason, "unknown node for user \"system:node:\"");
    kp_user_wipe(&nameless);

    kp_user_wipe(&node);
    kp_node_graph_free(graph);
}

static void test_list_pods_follows_the_graph(void **state)
{
    (void)state;
    struct kp_node_graph *graph = NULL;
    struct kp_error err;
    assert_int_equal(kp_node_graph_new(&graph, &err), KP_OK);
    struct kp_user node;
    make_user(&node, "system:node:n1", "system:nodes");
    static const struct authz_row before[] = {
        {"get", "", "pods", "", "app", "web", NULL, N, NO_REL},
        {"list", "", "pods", "", "app", "web", NULL, N, NO_REL},
        {"list", "", "pods", "", "", "", "spec.nodeName=n1", A, ""},
    };
    check_rows(graph, &node, before, sizeof(before) / sizeof(before[0]));
    put_pod(graph, RICH_POD);
    static const struct authz_row after[] = {
        {"get", "", "pods", "", "app", "web", NULL, A, ""},
        {"list", "", "pods", "", "app", "web", NULL, A, ""},
        {"get", "", "secrets", "", "app", "pull", NULL, A, ""},
    };
    check_rows(graph, &node, after, sizeof(after) / sizeof(after[0]));
    kp_node_graph_delete_pod(graph, "app", "web");
    check_rows(graph, &node, before, 2);
    kp_user_wipe(&node);
    kp_node_graph_free(graph);
}

/* ---- NodeRestriction ---- */

struct fake_store {
    const char *resource;
    const char *ns;
    const char *name;
    const char *json;
};

static json_t *fake_lookup(void *context, const char *resource, const char *ns, const char *name)
{
    const struct fake_store *store = context;
    for (; store->resource != NULL; store++) {
        if (strcmp(store->resource, resource) == 0 && strcmp(store->ns, ns) == 0 &&
            strcmp(store->name, name) == 0) {
            return parse(store->json);
        }
    }
    return NULL;
}

static const struct fake_store store[] = {
    {"nodes", "", "n1", "{\"metadata\":{\"name\":\"n1\",\"uid\":\"node-uid\"}}"},
    {"pods", "app", "mine",
     "{\"metadata\":{\"name\":\"mine\",\"uid\":\"mine-uid\"},\"spec\":{\"nodeName\":\"n1\"}}"},
    {"pods", "app", "theirs",
     "{\"metadata\":{\"name\":\"theirs\",\"uid\":\"theirs-uid\"},\"spec\":{\"nodeName\":"
     "\"n2\"}}"},
    {NULL, NULL, NULL, NULL},
};

struct admit_row {
    const char *operation;
    const char *group;
    const char *resource;
    const char *subresource;
    const char *ns;
    const char *name;
    const char *object;     /* JSON or NULL */
    const char *old_object; /* JSON or NULL */
    enum kp_result expected;
    const char *message;
};

static void check_admission(const struct kp_user *user, const struct admit_row *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        json_t *object = rows[i].object != NULL ? parse(rows[i].object) : NULL;
        json_t *old_object = rows[i].old_object != NULL ? parse(rows[i].old_object) : NULL;
        struct kp_admission_request request = {
            .user = user,
            .operation = rows[i].operation,
            .api_group = rows[i].group,
            .resource = rows[i].resource,
            .subresource = rows[i].subresource,
            .namespace_ = rows[i].ns,
            .name = rows[i].name,
            .object = object,
            .old_object = old_object,
            .lookup = fake_lookup,
            .lookup_context = (void *)store,
        };
        struct kp_error err;
        kp_error_clear(&err);
        enum kp_result rc = kp_node_admit(&request, &err);
        if (rc != rows[i].expected ||
            (rows[i].message != NULL && strcmp(err.message, rows[i].message) != 0)) {
            fail_msg("row %zu: %s %s/%s %s: got %d '%s', expected %d '%s'", i, rows[i].operation,
                     rows[i].resource, rows[i].subresource, rows[i].name, rc, err.message,
                     rows[i].expected, rows[i].message != NULL ? rows[i].message : "");
        }
        json_decref(object);
        json_decref(old_object);
    }
}

#define MIRROR_META(extra)                                                                         \
    "\"metadata\":{\"name\":\"static-web-n1\",\"namespace\":\"kube-system\",\"annotations\":"      \
    "{\"kubernetes.io/config.mirror\":\"hash\"},\"ownerReferences\":[{\"apiVersion\":\"v1\","      \
    "\"kind\":\"Node\",\"name\":\"n1\",\"uid\":\"node-uid\",\"controller\":true" extra "}]}"
#define MIRROR(extra, spec) "{" MIRROR_META(extra) ",\"spec\":{\"nodeName\":\"n1\"" spec "}}"
#define F(msg) "pods \"static-web-n1\" is forbidden: " msg

static void test_node_restriction_pods(void **state)
{
    (void)state;
    struct kp_user node;
    make_user(&node, "system:node:n1", "system:nodes,system:authenticated");
    static const struct admit_row rows[] = {
        /* mirror pods */
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1", MIRROR("", ""), NULL, KP_OK,
         NULL},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         MIRROR(",\"blockOwnerDeletion\":false", ",\"volumes\":[{\"name\":\"h\",\"hostPath\":"
                                                 "{\"path\":\"/etc\"}}]"),
         NULL, KP_OK, NULL},
        {"CREATE", "", "pods", "", "app", "web",
         "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"nodeName\":\"n1\"}}", NULL, KP_ERR_FORBIDDEN,
         "pods \"web\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" "
         "annotation, node \"n1\" can only create mirror pods"},
        {"CREATE", "", "pods", "", "app", "",
         "{\"metadata\":{\"generateName\":\"web-\"},\"spec\":{}}", NULL, KP_ERR_FORBIDDEN,
         "pods \"web-\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" "
         "annotation, node \"n1\" can only create mirror pods"},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         "{" MIRROR_META("") ",\"spec\":{\"nodeName\":\"n2\"}}", NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can only create pods with spec.nodeName set to itself")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         "{\"metadata\":{\"name\":\"static-web-n1\",\"annotations\":{\"kubernetes.io/"
         "config.mirror\":\"h\"}},\"spec\":{\"nodeName\":\"n1\"}}",
         NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can only create pods with an owner reference set to itself")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         "{\"metadata\":{\"name\":\"static-web-n1\",\"annotations\":{\"kubernetes.io/"
         "config.mirror\":\"h\"},\"ownerReferences\":[{},{}]},\"spec\":{\"nodeName\":\"n1\"}}",
         NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can only create pods with a single owner reference set to itself")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         "{\"metadata\":{\"name\":\"static-web-n1\",\"annotations\":{\"kubernetes.io/"
         "config.mirror\":\"h\"},\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\","
         "\"name\":\"n2\",\"controller\":true}]},\"spec\":{\"nodeName\":\"n1\"}}",
         NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can only create pods with an owner reference set to itself")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         "{\"metadata\":{\"name\":\"static-web-n1\",\"annotations\":{\"kubernetes.io/"
         "config.mirror\":\"h\"},\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\","
         "\"name\":\"n1\",\"uid\":\"node-uid\"}]},\"spec\":{\"nodeName\":\"n1\"}}",
         NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can only create pods with a controller owner reference set to itself")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         MIRROR(",\"blockOwnerDeletion\":true", ""), NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" must not set blockOwnerDeletion on an owner reference")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         "{\"metadata\":{\"name\":\"static-web-n1\",\"annotations\":{\"kubernetes.io/"
         "config.mirror\":\"h\"},\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\","
         "\"name\":\"n1\",\"uid\":\"stale\",\"controller\":true}]},\"spec\":{\"nodeName\":"
         "\"n1\"}}",
         NULL, KP_ERR_FORBIDDEN, F("node n1 UID mismatch: expected stale got node-uid")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         MIRROR("", ",\"serviceAccountName\":\"default\""), NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can not create pods that reference a service account")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         MIRROR("", ",\"imagePullSecrets\":[{\"name\":\"pull\"}]"), NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can not create pods that reference secrets")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         MIRROR("", ",\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"X\",\"valueFrom\":"
                    "{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}}]}]"),
         NULL, KP_ERR_FORBIDDEN, F("node \"n1\" can not create pods that reference secrets")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         MIRROR("", ",\"volumes\":[{\"name\":\"c\",\"configMap\":{\"name\":\"cm\"}}]"), NULL,
         KP_ERR_FORBIDDEN, F("node \"n1\" can not create pods that reference configmaps")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         MIRROR("", ",\"volumes\":[{\"name\":\"p\",\"projected\":{\"sources\":[{"
                    "\"clusterTrustBundle\":{\"name\":\"b\",\"path\":\"ca\"}}]}}]"),
         NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can not create pods that reference clustertrustbundles")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1",
         MIRROR("", ",\"volumes\":[{\"name\":\"d\",\"persistentVolumeClaim\":{\"claimName\":"
                    "\"c\"}}]"),
         NULL, KP_ERR_FORBIDDEN,
         F("node \"n1\" can not create pods that reference persistentvolumeclaims")},
        {"CREATE", "", "pods", "", "kube-system", "static-web-n1", NULL, NULL, KP_ERR_FORBIDDEN,
         "pods \"Unknown\" is forbidden: unexpected type <nil>"},
        /* delete: only pods bound to itself */
        {"DELETE", "", "pods", "", "app", "mine", NULL, NULL, KP_OK, NULL},
        {"DELETE", "", "pods", "", "app", "theirs", NULL, NULL, KP_ERR_FORBIDDEN,
         "pods \"Unknown\" is forbidden: node \"n1\" can only delete pods with spec.nodeName set "
         "to itself"},
        {"DELETE", "", "pods", "", "app", "ghost", NULL, NULL, KP_ERR_NOT_FOUND,
         "pod \"ghost\" not found"},
        {"UPDATE", "", "pods", "", "app", "mine",
         "{\"metadata\":{\"name\":\"mine\"},\"spec\":{\"nodeName\":\"n1\"}}", NULL,
         KP_ERR_FORBIDDEN,
         "pods \"mine\" is forbidden: unexpected operation \"UPDATE\", node \"n1\" can only "
         "create and delete mirror pods"},
        /* status */
        {"UPDATE", "", "pods", "status", "app", "mine",
         "{\"metadata\":{\"name\":\"mine\",\"labels\":{\"a\":\"1\"}},\"spec\":{\"nodeName\":"
         "\"n1\"},\"status\":{\"phase\":\"Running\"}}",
         "{\"metadata\":{\"name\":\"mine\",\"labels\":{\"a\":\"1\"}},\"spec\":{\"nodeName\":"
         "\"n1\"}}",
         KP_OK, NULL},
        {"UPDATE", "", "pods", "status", "app", "theirs",
         "{\"metadata\":{\"name\":\"theirs\"},\"spec\":{\"nodeName\":\"n2\"}}",
         "{\"metadata\":{\"name\":\"theirs\"},\"spec\":{\"nodeName\":\"n2\"}}", KP_ERR_FORBIDDEN,
         "pods \"theirs\" is forbidden: node \"n1\" can only update pod status for pods with "
         "spec.nodeName set to itself"},
        {"UPDATE", "", "pods", "status", "app", "mine",
         "{\"metadata\":{\"name\":\"mine\",\"labels\":{\"a\":\"2\"}},\"spec\":{\"nodeName\":"
         "\"n1\"}}",
         "{\"metadata\":{\"name\":\"mine\",\"labels\":{\"a\":\"1\"}},\"spec\":{\"nodeName\":"
         "\"n1\"}}",
         KP_ERR_FORBIDDEN,
         "pods \"mine\" is forbidden: node \"n1\" cannot update labels through pod status"},
        {"UPDATE", "", "pods", "status", "app", "mine",
         "{\"metadata\":{\"name\":\"mine\",\"labels\":{}},\"spec\":{\"nodeName\":\"n1\"},"
         "\"status\":{\"resourceClaimStatuses\":[{\"name\":\"gpu\",\"resourceClaimName\":"
         "\"x\"}]}}",
         "{\"metadata\":{\"name\":\"mine\"},\"spec\":{\"nodeName\":\"n1\"}}", KP_ERR_FORBIDDEN,
         "pods \"mine\" is forbidden: node \"n1\" cannot update resource claim statues"},
        {"DELETE", "", "pods", "status", "app", "mine", NULL, NULL, KP_ERR_FORBIDDEN,
         "pods \"Unknown\" is forbidden: unexpected operation \"DELETE\""},
        /* eviction */
        {"CREATE", "", "pods", "eviction", "app", "mine", "{\"metadata\":{\"name\":\"mine\"}}",
         NULL, KP_OK, NULL},
        {"CREATE", "", "pods", "eviction", "app", "", "{\"metadata\":{\"name\":\"mine\"}}", NULL,
         KP_OK, NULL},
        {"CREATE", "", "pods", "eviction", "app", "theirs", "{\"metadata\":{\"name\":\"theirs\"}}",
         NULL, KP_ERR_FORBIDDEN,
         "pods \"theirs\" is forbidden: node n1 can only evict pods with spec.nodeName set to "
         "itself"},
        {"CREATE", "", "pods", "eviction", "app", "", "{\"metadata\":{}}", NULL, KP_ERR_FORBIDDEN,
         "pods \"Unknown\" is forbidden: could not determine pod from request data"},
        {"CREATE", "", "pods", "eviction", "app", "ghost", "{\"metadata\":{\"name\":\"ghost\"}}",
         NULL, KP_ERR_NOT_FOUND, "pod \"ghost\" not found"},
        /* other subresources */
        {"UPDATE", "", "pods", "ephemeralcontainers", "app", "mine",
         "{\"metadata\":{\"name\":\"mine\"}}", NULL, KP_ERR_FORBIDDEN,
         "pods \"mine\" is forbidden: unexpected pod subresource \"ephemeralcontainers\", only "
         "'status' and 'eviction' are allowed"},
        /* CONNECT (exec, attach) is not this plugin's */
        {"CONNECT", "", "pods", "exec", "app", "theirs", NULL, NULL, KP_OK, NULL},
    };
    check_admission(&node, rows, sizeof(rows) / sizeof(rows[0]));
    kp_user_wipe(&node);
}

static void test_node_restriction_nodes(void **state)
{
    (void)state;
    struct kp_user node;
    make_user(&node, "system:node:n1", "system:nodes");
#define NODE(labels, spec)                                                                         \
    "{\"metadata\":{\"name\":\"n1\",\"labels\":{" labels "}},\"spec\":{" spec "}}"
    static const struct admit_row rows[] = {
        {"CREATE", "", "nodes", "", "", "n1",
         NODE("\"kubernetes.io/hostname\":\"n1\",\"kubernetes.io/os\":\"linux\","
              "\"kubernetes.io/arch\":\"amd64\",\"beta.kubernetes.io/os\":\"linux\","
              "\"beta.kubernetes.io/arch\":\"amd64\",\"topology.kubernetes.io/zone\":\"z\","
              "\"topology.kubernetes.io/region\":\"r\",\"node.kubernetes.io/instance-type\":"
              "\"m\",\"beta.kubernetes.io/instance-type\":\"m\","
              "\"failure-domain.beta.kubernetes.io/zone\":\"z\","
              "\"node.kubernetes.io/windows-build\":\"10\",\"kubelet.kubernetes.io/x\":\"y\","
              "\"sub.node.kubernetes.io/x\":\"y\",\"example.com/team\":\"a\",\"plain\":\"b\"",
              ""),
         NULL, KP_OK, NULL},
        {"CREATE", "", "nodes", "", "", "n2", "{\"metadata\":{\"name\":\"n2\"}}", NULL,
         KP_ERR_FORBIDDEN,
         "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""},
        {"CREATE", "", "nodes", "", "", "n1",
         NODE("", "\"configSource\":{\"configMap\":{\"name\":\"c\"}}"), NULL, KP_ERR_FORBIDDEN,
         "nodes \"n1\" is forbidden: node \"n1\" is not allowed to create pods with a non-nil "
         "configSource"},
        {"CREATE", "", "nodes", "", "", "n1",
         NODE("\"node-role.kubernetes.io/control-plane\":\"\","
              "\"node-restriction.kubernetes.io/secure\":\"true\","
              "\"x.node-restriction.kubernetes.io/y\":\"z\",\"k8s.io/x\":\"1\","
              "\"team.k8s.io/y\":\"2\",\"kubernetes.io/hostname\":\"n1\"",
              ""),
         NULL, KP_ERR_FORBIDDEN,
         "nodes \"n1\" is forbidden: node \"n1\" is not allowed to set the following labels: "
         "k8s.io/x, node-restriction.kubernetes.io/secure, node-role.kubernetes.io/control-plane, "
         "team.k8s.io/y, x.node-restriction.kubernetes.io/y"},
        /* update */
        {"UPDATE", "", "nodes", "", "", "n1",
         NODE("\"kubernetes.io/hostname\":\"n1\",\"mine\":\"2\"",
              "\"taints\":[{\"key\":\"k\",\"effect\":\"NoSchedule\"}]"),
         NODE("\"kubernetes.io/hostname\":\"n1\",\"mine\":\"1\"",
              "\"taints\":[{\"key\":\"k\",\"effect\":\"NoSchedule\"}]"),
         KP_OK, NULL},
        {"UPDATE", "", "nodes", "status", "", "n1", NODE("", "\"taints\":[]"), NODE("", ""), KP_OK,
         NULL},
        {"UPDATE", "", "nodes", "", "", "n1", NODE("", ""),
         NODE("", "\"taints\":[{\"key\":\"k\",\"effect\":\"NoSchedule\"}]"), KP_ERR_FORBIDDEN,
         "nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints"},
        {"UPDATE", "", "nodes", "", "", "n1",
         NODE("", "\"configSource\":{\"configMap\":{\"name\":\"new\"}}"),
         NODE("", "\"configSource\":{\"configMap\":{\"name\":\"old\"}}"), KP_ERR_FORBIDDEN,
         "nodes \"n1\" is forbidden: node \"n1\" is not allowed to update configSource to a new "
         "non-nil configSource"},
        {"UPDATE", "", "nodes", "", "", "n1", NODE("", ""),
         NODE("", "\"configSource\":{\"configMap\":{\"name\":\"old\"}}"), KP_OK, NULL},
        /* removing a protected label is a modification too */
        {"UPDATE", "", "nodes", "", "", "n1", NODE("", ""),
         NODE("\"node-restriction.kubernetes.io/a\":\"1\",\"node-role.kubernetes.io/w\":\"\"", ""),
         KP_ERR_FORBIDDEN,
         "nodes \"n1\" is forbidden: is not allowed to modify labels: "
         "node-restriction.kubernetes.io/a, node-role.kubernetes.io/w"},
        {"UPDATE", "", "nodes", "", "", "n1", NODE("\"node-role.kubernetes.io/w\":\"\"", ""),
         NODE("\"node-role.kubernetes.io/w\":\"\"", ""), KP_OK, NULL},
        {"DELETE", "", "nodes", "", "", "n1", NULL, NULL, KP_OK, NULL},
        {"DELETE", "", "nodes", "", "", "n2", NULL, NULL, KP_ERR_FORBIDDEN,
         "nodes \"Unknown\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""},
    };
#undef NODE
    check_admission(&node, rows, sizeof(rows) / sizeof(rows[0]));
    kp_user_wipe(&node);
}

static void test_node_restriction_other(void **state)
{
    (void)state;
    struct kp_user node;
    make_user(&node, "system:node:n1", "system:nodes");
#define TOKEN(ref) "{\"spec\":{\"audiences\":[\"api\"],\"boundObjectRef\":" ref "}}"
#define PVC(extra)                                                                                 \
    "{\"metadata\":{\"name\":\"c\",\"resourceVersion\":\"1\"},\"spec\":{\"volumeName\":\"v\"},"    \
    "\"status\":{\"phase\":\"Bound\"" extra "}}"
    static const struct admit_row rows[] = {
        /* serviceaccounts/token */
        {"CREATE", "", "serviceaccounts", "token", "app", "web-sa",
         TOKEN("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"name\":\"mine\",\"uid\":\"mine-uid\"}"),
         NULL, KP_OK, NULL},
        {"CREATE", "", "serviceaccounts", "token", "app", "web-sa", "{\"spec\":{}}", NULL,
         KP_ERR_FORBIDDEN,
         "serviceaccounts \"Unknown\" is forbidden: node requested token not bound to a pod"},
        {"CREATE", "", "serviceaccounts", "token", "app", "web-sa",
         TOKEN("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"name\":\"s\",\"uid\":\"u\"}"), NULL,
         KP_ERR_FORBIDDEN,
         "serviceaccounts \"Unknown\" is forbidden: node requested token not bound to a pod"},
        {"CREATE", "", "serviceaccounts", "token", "app", "web-sa",
         TOKEN("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"name\":\"mine\"}"), NULL,
         KP_ERR_FORBIDDEN,
         "serviceaccounts \"Unknown\" is forbidden: node requested token with a pod binding "
         "without a uid"},
        {"CREATE", "", "serviceaccounts", "token", "app", "web-sa",
         TOKEN("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"name\":\"mine\",\"uid\":\"old\"}"), NULL,
         KP_ERR_FORBIDDEN,
         "serviceaccounts \"Unknown\" is forbidden: the UID in the bound object reference (old) "
         "does not match the UID in record. The object might have been deleted and then "
         "recreated"},
        {"CREATE", "", "serviceaccounts", "token", "app", "web-sa",
         TOKEN("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"name\":\"theirs\",\"uid\":"
               "\"theirs-uid\"}"),
         NULL, KP_ERR_FORBIDDEN,
         "serviceaccounts \"Unknown\" is forbidden: node requested token bound to a pod "
         "scheduled on a different node"},
        {"CREATE", "", "serviceaccounts", "token", "app", "web-sa",
         TOKEN("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"name\":\"ghost\",\"uid\":\"u\"}"), NULL,
         KP_ERR_NOT_FOUND, "pod \"ghost\" not found"},
        {"CREATE", "", "serviceaccounts", "", "app", "", "{\"metadata\":{\"name\":\"new-sa\"}}",
         NULL, KP_OK, NULL},
        /* leases */
        {"CREATE", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1",
         "{\"metadata\":{\"name\":\"n1\"}}", NULL, KP_OK, NULL},
        {"CREATE", "coordination.k8s.io", "leases", "", "kube-node-lease", "n2",
         "{\"metadata\":{\"name\":\"n2\"}}", NULL, KP_ERR_FORBIDDEN,
         "leases.coordination.k8s.io \"n2\" is forbidden: can only access node lease with the "
         "same name as the requesting node"},
        {"UPDATE", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1",
         "{\"metadata\":{\"name\":\"n1\"}}", "{\"metadata\":{\"name\":\"n1\"}}", KP_OK, NULL},
        {"DELETE", "coordination.k8s.io", "leases", "", "kube-node-lease", "n2", NULL, NULL,
         KP_ERR_FORBIDDEN,
         "leases.coordination.k8s.io \"Unknown\" is forbidden: can only access node lease with "
         "the same name as the requesting node"},
        {"CREATE", "coordination.k8s.io", "leases", "", "kube-system", "n1",
         "{\"metadata\":{\"name\":\"n1\"}}", NULL, KP_ERR_FORBIDDEN,
         "leases.coordination.k8s.io \"n1\" is forbidden: can only access leases in the "
         "\"kube-node-lease\" system namespace"},
        /* csinodes */
        {"CREATE", "storage.k8s.io", "csinodes", "", "", "n1", "{\"metadata\":{\"name\":\"n1\"}}",
         NULL, KP_OK, NULL},
        {"UPDATE", "storage.k8s.io", "csinodes", "", "", "n2", "{\"metadata\":{\"name\":\"n2\"}}",
         "{\"metadata\":{\"name\":\"n2\"}}", KP_ERR_FORBIDDEN,
         "csinodes.storage.k8s.io \"n2\" is forbidden: can only access CSINode with the same "
         "name as the requesting node"},
        /* persistentvolumeclaims: status only, only capacity and conditions */
        {"UPDATE", "", "persistentvolumeclaims", "status", "app", "c",
         PVC(",\"capacity\":{\"storage\":\"2Gi\"},\"conditions\":[{\"type\":\"Resizing\"}]"),
         PVC(",\"capacity\":{\"storage\":\"1Gi\"}"), KP_OK, NULL},
        {"UPDATE", "", "persistentvolumeclaims", "status", "app", "c", PVC(",\"phase\":\"Lost\""),
         PVC(""), KP_ERR_FORBIDDEN,
         "persistentvolumeclaims \"c\" is forbidden: node \"n1\" is not allowed to update "
         "fields other than status.capacity and status.conditions: changed status.phase"},
        {"UPDATE", "", "persistentvolumeclaims", "", "app", "c", PVC(""), PVC(""), KP_ERR_FORBIDDEN,
         "persistentvolumeclaims \"c\" is forbidden: may only update PVC status"},
        /* anything else is not restricted here */
        {"CREATE", "", "events", "", "app", "e", "{\"metadata\":{\"name\":\"e\"}}", NULL, KP_OK,
         NULL},
        {"UPDATE", "", "configmaps", "", "app", "c", "{\"metadata\":{\"name\":\"c\"}}",
         "{\"metadata\":{\"name\":\"c\"}}", KP_OK, NULL},
    };
#undef TOKEN
#undef PVC
    check_admission(&node, rows, sizeof(rows) / sizeof(rows[0]));
    kp_user_wipe(&node);

    /* not a node: nothing is restricted */
    struct kp_user admin;
    make_user(&admin, "admin", "system:masters");
    static const struct admit_row admin_rows[] = {
        {"DELETE", "", "pods", "", "app", "theirs", NULL, NULL, KP_OK, NULL},
        {"CREATE", "", "nodes", "", "", "n2", "{\"metadata\":{\"name\":\"n2\"}}", NULL, KP_OK,
         NULL},
    };
    check_admission(&admin, admin_rows, sizeof(admin_rows) / sizeof(admin_rows[0]));
    kp_user_wipe(&admin);

    /* a node identity without a name */
    struct kp_user nameless;
    make_user(&nameless, "system:node:", "system:nodes");
    static const struct admit_row nameless_rows[] = {
        {"CREATE", "coordination.k8s.io", "leases", "", "kube-node-lease", "x",
         "{\"metadata\":{\"name\":\"x\"}}", NULL, KP_ERR_FORBIDDEN,
         "leases.coordination.k8s.io \"x\" is forbidden: could not determine node from user "
         "\"system:node:\""},
    };
    check_admission(&nameless, nameless_rows, 1);
    kp_user_wipe(&nameless);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_identity),
        cmocka_unit_test(test_graph_edges),
        cmocka_unit_test(test_authorizer_table),
        cmocka_unit_test(test_list_pods_follows_the_graph),
        cmocka_unit_test(test_node_restriction_pods),
        cmocka_unit_test(test_node_restriction_nodes),
        cmocka_unit_test(test_node_restriction_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
