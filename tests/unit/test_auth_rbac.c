/*
 * auth/rbac: the RBAC authorizer, rule matching, aggregation, escalation checks and the default
 * policy. Matching and escalation cases are tables with the expected verdict or message pinned.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/rbac.h"

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);
    if (value == NULL) {
        fail_msg("bad test JSON (line %d: %s): %s", error.line, error.text, text);
    }
    return value;
}

/* groups: comma-separated, may be "". */
static void make_user(struct kp_user *user, const char *name, const char *groups)
{
    memset(user, 0, sizeof(*user));
    user->name = strdup(name);
    assert_non_null(user->name);
    struct kp_error err;
    assert_int_equal(kp_strlist_add_split(&user->groups, groups, &err), KP_OK);
}

static struct kp_rbac *build(const char *cluster_roles, const char *cluster_role_bindings,
                             const char *roles, const char *role_bindings, size_t *skipped)
{
    json_t *inputs[4] = {
        cluster_roles != NULL ? parse(cluster_roles) : NULL,
        cluster_role_bindings != NULL ? parse(cluster_role_bindings) : NULL,
        roles != NULL ? parse(roles) : NULL,
        role_bindings != NULL ? parse(role_bindings) : NULL,
    };
    struct kp_rbac *rbac = NULL;
    struct kp_error err;
    enum kp_result rc =
        kp_rbac_build(inputs[0], inputs[1], inputs[2], inputs[3], &rbac, skipped, &err);
    if (rc != KP_OK) {
        fail_msg("kp_rbac_build: %s", err.message);
    }
    for (size_t i = 0; i < 4; i++) {
        json_decref(inputs[i]);
    }
    return rbac;
}

static struct kp_authz_attrs resource_attrs(const struct kp_user *user, const char *verb,
                                            const char *group, const char *resource,
                                            const char *subresource, const char *ns,
                                            const char *name)
{
    struct kp_authz_attrs attrs = {
        .user = user,
        .resource_request = true,
        .verb = verb,
        .api_group = group,
        .api_version = "v1",
        .resource = resource,
        .subresource = subresource,
        .namespace_ = ns,
        .name = name,
        .path = "",
    };
    return attrs;
}

static enum kp_authz_verdict authorize(const struct kp_rbac *rbac, const struct kp_user *user,
                                       const char *verb, const char *group, const char *resource,
                                       const char *subresource, const char *ns, const char *name,
                                       char *reason, size_t reason_size)
{
    struct kp_authz_attrs attrs =
        resource_attrs(user, verb, group, resource, subresource, ns, name);
    attrs.explain_allow = reason != NULL; /* as a SubjectAccessReview asks */
    struct kp_authz_decision decision;
    kp_rbac_authorize(rbac, &attrs, &decision);
    if (reason != NULL) {
        snprintf(reason, reason_size, "%s", decision.reason);
    }
    return decision.verdict;
}

#define ALLOW KP_AUTHZ_ALLOW
#define NONE KP_AUTHZ_NO_OPINION

static void test_rule_matching(void **state)
{
    (void)state;
    static const struct {
        const char *rule;
        const char *verb, *group, *resource, *subresource, *name;
        bool allowed;
    } rows[] = {
        /* verbs */
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", "get", "", "pods",
         "", "", true},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", "list", "", "pods",
         "", "", false},
        {"{\"verbs\":[\"*\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", "deletecollection",
         "", "pods", "", "", true},
        {"{\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", "get", "", "pods", "", "", false},
        /* groups */
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"apps\"],\"resources\":[\"pods\"]}", "get", "",
         "pods", "", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"*\"],\"resources\":[\"deployments\"]}", "get",
         "apps", "deployments", "", "", true},
        {"{\"verbs\":[\"get\"],\"resources\":[\"pods\"]}", "get", "", "pods", "", "", false},
        /* resources and subresources */
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"*\"]}", "get", "", "pods",
         "log", "", true},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", "get", "", "pods",
         "log", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/log\"]}", "get", "",
         "pods", "log", "", true},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/log\"]}", "get", "",
         "pods", "", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/status\"]}", "get", "",
         "pods", "log", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"]}", "get", "apps",
         "deployments", "scale", "", true},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"]}", "get", "apps",
         "deployments", "", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"]}", "get", "apps",
         "deployments", "status", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"*\"],\"resources\":[\"*/scales\"]}", "get", "apps",
         "deployments", "scale", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"podsx\"]}", "get", "", "pods",
         "", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/\"]}", "get", "", "pods",
         "", "", false},
        /* resourceNames */
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
         "\"resourceNames\":[\"a\",\"b\"]}",
         "get", "", "configmaps", "", "b", true},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
         "\"resourceNames\":[\"a\"]}",
         "get", "", "configmaps", "", "c", false},
        {"{\"verbs\":[\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
         "\"resourceNames\":[\"a\"]}",
         "list", "", "configmaps", "", "", false},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
         "\"resourceNames\":[]}",
         "get", "", "configmaps", "", "any", true},
        /* malformed rules never allow */
        {"{\"verbs\":\"get\",\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", "get", "", "pods", "",
         "", false},
        {"[]", "get", "", "pods", "", "", false},
    };
    struct kp_user user;
    make_user(&user, "u", "");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *rule = parse(rows[i].rule);
        struct kp_authz_attrs attrs =
            resource_attrs(&user, rows[i].verb, rows[i].group, rows[i].resource,
                           rows[i].subresource, "ns", rows[i].name);
        if (kp_rbac_rule_allows(rule, &attrs) != rows[i].allowed) {
            fail_msg("row %zu: %s on %s/%s should be %s", i, rows[i].rule, rows[i].resource,
                     rows[i].subresource, rows[i].allowed ? "allowed" : "refused");
        }
        json_decref(rule);
    }
    kp_user_wipe(&user);
}

static void test_non_resource_urls(void **state)
{
    (void)state;
    static const struct {
        const char *urls;
        const char *verb;
        const char *path;
        bool allowed;
    } rows[] = {
        {"[\"/healthz\"]", "get", "/healthz", true},
        {"[\"/healthz\"]", "get", "/healthz/etcd", false},
        {"[\"/healthz\"]", "post", "/healthz", false},
        {"[\"/healthz/*\"]", "get", "/healthz/etcd", true},
        {"[\"/healthz/*\"]", "get", "/healthz", false},
        {"[\"/api/*\"]", "get", "/api/v1", true},
        {"[\"/api/*\"]", "get", "/apis/apps", false},
        {"[\"/api*\"]", "get", "/apis/apps", true},
        {"[\"/api**\"]", "get", "/apis", true},
        {"[\"*\"]", "get", "/anything/at/all", true},
        {"[\"/version\",\"/version/\"]", "get", "/version/", true},
        {"[]", "get", "/", false},
    };
    struct kp_user user;
    make_user(&user, "u", "");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "{\"verbs\":[\"get\"],\"nonResourceURLs\":%s}", rows[i].urls);
        json_t *rule = parse(text);
        struct kp_authz_attrs attrs = {
            .user = &user, .resource_request = false, .verb = rows[i].verb, .path = rows[i].path};
        if (kp_rbac_rule_allows(rule, &attrs) != rows[i].allowed) {
            fail_msg("row %zu: %s %s", i, rows[i].urls, rows[i].path);
        }
        /* A resource request never matches a non-resource rule. */
        attrs.resource_request = true;
        attrs.resource = "pods";
        assert_false(kp_rbac_rule_allows(rule, &attrs));
        json_decref(rule);
    }
    kp_user_wipe(&user);
}

#define POD_READER                                                                                 \
    "{\"metadata\":{\"name\":\"pod-reader\"},\"rules\":[{\"verbs\":[\"get\",\"list\"],"            \
    "\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}"

static void test_cluster_role_binding(void **state)
{
    (void)state;
    struct kp_rbac *rbac =
        build("[" POD_READER "]",
              "[{\"metadata\":{\"name\":\"read-pods\"},\"roleRef\":{\"apiGroup\":"
              "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},"
              "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"},{\"kind\":\"Group\","
              "\"name\":\"readers\"}]}]",
              NULL, NULL, NULL);
    struct kp_user alice, bob, carol;
    make_user(&alice, "alice", "system:authenticated");
    make_user(&bob, "bob", "readers,system:authenticated");
    make_user(&carol, "carol", "system:authenticated");
    char reason[KP_AUTHZ_REASON_MAX];
    assert_int_equal(
        authorize(rbac, &alice, "get", "", "pods", "", "default", "x", reason, sizeof(reason)),
        ALLOW);
    assert_string_equal(reason, "RBAC: allowed by ClusterRoleBinding \"read-pods\" of "
                                "ClusterRole \"pod-reader\" to User \"alice\"");
    /* Without explain_allow (every request but a review) the verdict comes without its text. */
    struct kp_authz_attrs quiet = resource_attrs(&alice, "get", "", "pods", "", "default", "x");
    struct kp_authz_decision quiet_decision;
    kp_rbac_authorize(rbac, &quiet, &quiet_decision);
    assert_int_equal(quiet_decision.verdict, ALLOW);
    assert_string_equal(quiet_decision.reason, "");
    /* everywhere: any namespace and cluster-wide */
    assert_int_equal(authorize(rbac, &alice, "list", "", "pods", "", "", "", NULL, 0), ALLOW);
    assert_int_equal(
        authorize(rbac, &bob, "list", "", "pods", "", "kube-system", "", reason, sizeof(reason)),
        ALLOW);
    assert_string_equal(reason, "RBAC: allowed by ClusterRoleBinding \"read-pods\" of "
                                "ClusterRole \"pod-reader\" to Group \"readers\"");
    assert_int_equal(
        authorize(rbac, &alice, "delete", "", "pods", "", "default", "x", reason, sizeof(reason)),
        NONE);
    assert_string_equal(reason, ""); /* RBAC never denies; no suffix */
    assert_int_equal(authorize(rbac, &carol, "get", "", "pods", "", "default", "x", NULL, 0), NONE);
    assert_int_equal(authorize(rbac, &alice, "get", "", "secrets", "", "default", "x", NULL, 0),
                     NONE);
    assert_int_equal(authorize(rbac, &alice, "get", "", "pods", "log", "default", "x", NULL, 0),
                     NONE);
    kp_user_wipe(&alice);
    kp_user_wipe(&bob);
    kp_user_wipe(&carol);
    kp_rbac_unref(rbac);
}

static void test_role_binding_scopes(void **state)
{
    (void)state;
    struct kp_rbac *rbac = build(
        "[" POD_READER "]", NULL,
        "[{\"metadata\":{\"name\":\"cm-writer\",\"namespace\":\"team\"},\"rules\":[{\"verbs\":"
        "[\"create\"],\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"]}]}]",
        "[{\"metadata\":{\"name\":\"rb1\",\"namespace\":\"team\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]},"
        "{\"metadata\":{\"name\":\"rb2\",\"namespace\":\"team\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"cm-writer\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]},"
        "{\"metadata\":{\"name\":\"rb3\",\"namespace\":\"other\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"cm-writer\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]}]",
        NULL);
    struct kp_user alice;
    make_user(&alice, "alice", "system:authenticated");
    char reason[KP_AUTHZ_REASON_MAX];
    assert_int_equal(
        authorize(rbac, &alice, "get", "", "pods", "", "team", "p", reason, sizeof(reason)), ALLOW);
    assert_string_equal(reason, "RBAC: allowed by RoleBinding \"rb1/team\" of ClusterRole "
                                "\"pod-reader\" to User \"alice\"");
    /* a RoleBinding grants its ClusterRole in its namespace only */
    assert_int_equal(authorize(rbac, &alice, "get", "", "pods", "", "prod", "p", NULL, 0), NONE);
    assert_int_equal(authorize(rbac, &alice, "list", "", "pods", "", "", "", NULL, 0), NONE);
    assert_int_equal(
        authorize(rbac, &alice, "create", "", "configmaps", "", "team", "", reason, sizeof(reason)),
        ALLOW);
    assert_string_equal(reason, "RBAC: allowed by RoleBinding \"rb2/team\" of Role "
                                "\"cm-writer\" to User \"alice\"");
    /* rb3 references a Role that exists only in namespace team */
    assert_int_equal(authorize(rbac, &alice, "create", "", "configmaps", "", "other", "", reason,
                               sizeof(reason)),
                     NONE);
    assert_string_equal(reason, "RBAC: role.rbac.authorization.k8s.io \"cm-writer\" not found");
    kp_user_wipe(&alice);
    kp_rbac_unref(rbac);
}

static void test_service_account_subjects(void **state)
{
    (void)state;
    struct kp_rbac *rbac = build(
        "[" POD_READER "]",
        "[{\"metadata\":{\"name\":\"crb-sa\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},"
        "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"builder\",\"namespace\":\"ci\"},"
        "{\"kind\":\"ServiceAccount\",\"name\":\"nons\"}]}]",
        NULL,
        "[{\"metadata\":{\"name\":\"rb-sa\",\"namespace\":\"apps\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},"
        "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"deployer\"}]}]",
        NULL);
    struct kp_user builder, deployer, other_ns, nons, impostor;
    make_user(&builder, "system:serviceaccount:ci:builder",
              "system:serviceaccounts,system:serviceaccounts:ci,system:authenticated");
    make_user(&deployer, "system:serviceaccount:apps:deployer", "system:serviceaccounts");
    make_user(&other_ns, "system:serviceaccount:web:deployer", "system:serviceaccounts");
    make_user(&nons, "system:serviceaccount::nons", "");
    make_user(&impostor, "system:serviceaccount:ci:builderx", "");
    char reason[KP_AUTHZ_REASON_MAX];
    assert_int_equal(
        authorize(rbac, &builder, "list", "", "pods", "", "x", "", reason, sizeof(reason)), ALLOW);
    assert_string_equal(reason, "RBAC: allowed by ClusterRoleBinding \"crb-sa\" of ClusterRole "
                                "\"pod-reader\" to ServiceAccount \"builder/ci\"");
    /* RoleBinding subject without a namespace: the binding's namespace */
    assert_int_equal(
        authorize(rbac, &deployer, "get", "", "pods", "", "apps", "p", reason, sizeof(reason)),
        ALLOW);
    assert_string_equal(reason, "RBAC: allowed by RoleBinding \"rb-sa/apps\" of ClusterRole "
                                "\"pod-reader\" to ServiceAccount \"deployer/apps\"");
    assert_int_equal(authorize(rbac, &other_ns, "get", "", "pods", "", "apps", "p", NULL, 0), NONE);
    /* a ClusterRoleBinding's ServiceAccount subject without a namespace never applies */
    assert_int_equal(authorize(rbac, &nons, "get", "", "pods", "", "apps", "p", NULL, 0), NONE);
    assert_int_equal(authorize(rbac, &impostor, "get", "", "pods", "", "apps", "p", NULL, 0), NONE);
    kp_user_wipe(&builder);
    kp_user_wipe(&deployer);
    kp_user_wipe(&other_ns);
    kp_user_wipe(&nons);
    kp_user_wipe(&impostor);
    kp_rbac_unref(rbac);
}

static void test_missing_roles(void **state)
{
    (void)state;
    struct kp_rbac *rbac = build(
        "[" POD_READER "]",
        "[{\"metadata\":{\"name\":\"b1\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"ghost\"},\"subjects\":[{\"kind\":\"User\","
        "\"name\":\"alice\"}]},"
        "{\"metadata\":{\"name\":\"b2\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"ghost\"},\"subjects\":[{\"kind\":\"Group\","
        "\"name\":\"g\"}]},"
        "{\"metadata\":{\"name\":\"b3\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"Role\",\"name\":\"pod-reader\"},\"subjects\":[{\"kind\":\"User\","
        "\"name\":\"bob\"}]}]",
        NULL, NULL, NULL);
    struct kp_user alice, bob, carol;
    make_user(&alice, "alice", "g");
    make_user(&bob, "bob", "");
    make_user(&carol, "carol", "");
    char reason[KP_AUTHZ_REASON_MAX];
    /* the same error twice is reported once */
    assert_int_equal(
        authorize(rbac, &alice, "get", "", "pods", "", "ns", "p", reason, sizeof(reason)), NONE);
    assert_string_equal(reason, "RBAC: clusterrole.rbac.authorization.k8s.io \"ghost\" not found");
    /* a ClusterRoleBinding to a Role looks in namespace "": never found */
    assert_int_equal(
        authorize(rbac, &bob, "get", "", "pods", "", "ns", "p", reason, sizeof(reason)), NONE);
    assert_string_equal(reason, "RBAC: role.rbac.authorization.k8s.io \"pod-reader\" not found");
    assert_int_equal(
        authorize(rbac, &carol, "get", "", "pods", "", "ns", "p", reason, sizeof(reason)), NONE);
    assert_string_equal(reason, "");
    kp_user_wipe(&alice);
    kp_user_wipe(&bob);
    kp_user_wipe(&carol);
    kp_rbac_unref(rbac);

    /* two different missing roles: upstream's aggregate "[a, b]" */
    rbac = build(NULL,
                 "[{\"metadata\":{\"name\":\"b1\"},\"roleRef\":{\"apiGroup\":"
                 "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"one\"},"
                 "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]},"
                 "{\"metadata\":{\"name\":\"b2\"},\"roleRef\":{\"apiGroup\":"
                 "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"two\"},"
                 "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]}]",
                 NULL, NULL, NULL);
    make_user(&alice, "alice", "");
    assert_int_equal(
        authorize(rbac, &alice, "get", "", "pods", "", "ns", "p", reason, sizeof(reason)), NONE);
    assert_string_equal(reason, "RBAC: [clusterrole.rbac.authorization.k8s.io \"one\" not found, "
                                "clusterrole.rbac.authorization.k8s.io \"two\" not found]");
    kp_user_wipe(&alice);
    kp_rbac_unref(rbac);
}

static void test_first_applicable_subject_is_reported(void **state)
{
    (void)state;
    struct kp_rbac *rbac = build(
        "[" POD_READER "]",
        "[{\"metadata\":{\"name\":\"b\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},\"subjects\":[{\"kind\":\"Group\","
        "\"name\":\"z-group\"},{\"kind\":\"User\",\"name\":\"alice\"},{\"kind\":\"Robot\","
        "\"name\":\"alice\"}]}]",
        NULL, NULL, NULL);
    struct kp_user alice;
    make_user(&alice, "alice", "a-group,z-group");
    char reason[KP_AUTHZ_REASON_MAX];
    assert_int_equal(
        authorize(rbac, &alice, "get", "", "pods", "", "ns", "p", reason, sizeof(reason)), ALLOW);
    assert_string_equal(reason, "RBAC: allowed by ClusterRoleBinding \"b\" of ClusterRole "
                                "\"pod-reader\" to Group \"z-group\"");
    kp_user_wipe(&alice);
    kp_rbac_unref(rbac);
}

static void test_aggregation(void **state)
{
    (void)state;
    /* top aggregates mid (by label), mid aggregates leaf1 and leaf2; a cycle between c1 and
     * c2 converges to the union; a selector matching nothing yields no rules. */
    struct kp_rbac *rbac = build(
        "["
        "{\"metadata\":{\"name\":\"top\"},\"aggregationRule\":{\"clusterRoleSelectors\":"
        "[{\"matchLabels\":{\"to-top\":\"true\"}}]},\"rules\":[{\"verbs\":[\"*\"],"
        "\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}]},"
        "{\"metadata\":{\"name\":\"mid\",\"labels\":{\"to-top\":\"true\"}},\"aggregationRule\":"
        "{\"clusterRoleSelectors\":[{\"matchLabels\":{\"to-mid\":\"true\"}},{\"matchExpressions\":"
        "[{\"key\":\"extra\",\"operator\":\"Exists\"}]}]}},"
        "{\"metadata\":{\"name\":\"leaf2\",\"labels\":{\"to-mid\":\"true\"}},\"rules\":"
        "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]},"
        "{\"metadata\":{\"name\":\"leaf1\",\"labels\":{\"to-mid\":\"true\"}},\"rules\":"
        "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]},"
        "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]},"
        "{\"metadata\":{\"name\":\"leaf3\",\"labels\":{\"extra\":\"x\"}},\"rules\":"
        "[{\"verbs\":[\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"nodes\"]}]},"
        "{\"metadata\":{\"name\":\"c1\",\"labels\":{\"c\":\"1\"}},\"aggregationRule\":"
        "{\"clusterRoleSelectors\":[{\"matchLabels\":{\"c\":\"2\"}}]}},"
        "{\"metadata\":{\"name\":\"c2\",\"labels\":{\"c\":\"2\"}},\"aggregationRule\":"
        "{\"clusterRoleSelectors\":[{\"matchLabels\":{\"c\":\"1\"}},{\"matchLabels\":"
        "{\"to-mid\":\"true\"}}]}},"
        "{\"metadata\":{\"name\":\"empty\"},\"aggregationRule\":{\"clusterRoleSelectors\":"
        "[{\"matchLabels\":{\"nothing\":\"true\"}}]}}"
        "]",
        "[{\"metadata\":{\"name\":\"b\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"top\"},\"subjects\":[{\"kind\":\"User\","
        "\"name\":\"t\"}]},"
        "{\"metadata\":{\"name\":\"c\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"c1\"},\"subjects\":[{\"kind\":\"User\","
        "\"name\":\"c\"}]},"
        "{\"metadata\":{\"name\":\"e\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"empty\"},\"subjects\":[{\"kind\":\"User\","
        "\"name\":\"e\"}]}]",
        NULL, NULL, NULL);
    struct kp_user t, c, e;
    make_user(&t, "t", "");
    make_user(&c, "c", "");
    make_user(&e, "e", "");
    /* the stored "*" rule of an aggregated role is replaced by the aggregate */
    assert_int_equal(authorize(rbac, &t, "delete", "", "pods", "", "ns", "p", NULL, 0), NONE);
    assert_int_equal(authorize(rbac, &t, "get", "", "pods", "", "ns", "p", NULL, 0), ALLOW);
    assert_int_equal(authorize(rbac, &t, "get", "", "secrets", "", "ns", "p", NULL, 0), ALLOW);
    assert_int_equal(authorize(rbac, &t, "list", "", "nodes", "", "", "", NULL, 0), ALLOW);
    assert_int_equal(authorize(rbac, &c, "get", "", "secrets", "", "ns", "p", NULL, 0), ALLOW);
    assert_int_equal(authorize(rbac, &e, "get", "", "pods", "", "ns", "p", NULL, 0), NONE);
    /* the aggregate's rules, deduplicated, in selector then name order */
    json_t *rules = kp_rbac_rules_for(rbac, &t, "");
    assert_non_null(rules);
    json_t *resource_rules = json_object_get(rules, "resourceRules");
    assert_int_equal(json_array_size(resource_rules), 3);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_array_get(resource_rules, 0), "resources"), 0)),
                        "pods");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_array_get(resource_rules, 1), "resources"), 0)),
                        "secrets");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_array_get(resource_rules, 2), "resources"), 0)),
                        "nodes");
    json_decref(rules);
    kp_user_wipe(&t);
    kp_user_wipe(&c);
    kp_user_wipe(&e);
    kp_rbac_unref(rbac);
}

static void test_malformed_objects_skipped(void **state)
{
    (void)state;
    size_t skipped = 0;
    struct kp_rbac *rbac = build(
        "[" POD_READER ", 7, {\"metadata\":{}},"
        "{\"metadata\":{\"name\":\"bad-rules\"},\"rules\":{\"verbs\":[\"*\"]}},"
        "{\"metadata\":{\"name\":\"bad-rule\"},\"rules\":[{\"verbs\":[1]}]},"
        "{\"metadata\":{\"name\":\"bad-agg\"},\"aggregationRule\":{\"clusterRoleSelectors\":"
        "[{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"Bogus\"}]}]}},"
        "{\"metadata\":{\"name\":\"pod-reader\"},\"rules\":[]}]",
        "[{\"metadata\":{\"name\":\"no-ref\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"a\"}]},"
        "{\"metadata\":{\"name\":\"bad-group\"},\"roleRef\":{\"apiGroup\":\"x\",\"kind\":"
        "\"ClusterRole\",\"name\":\"pod-reader\"},\"subjects\":[{\"kind\":\"User\",\"name\":"
        "\"a\"}]},"
        "{\"metadata\":{\"name\":\"bad-subject\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},"
        "\"subjects\":[{\"name\":\"a\"}]},"
        "{\"metadata\":{\"name\":\"good\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"a\"}]}]",
        "[{\"metadata\":{\"name\":\"no-namespace\"},\"rules\":[]}]",
        "[{\"metadata\":{\"name\":\"rb\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},\"subjects\":[]}]",
        &skipped);
    /* 7, {}, bad-rules, bad-rule, bad-agg, the second pod-reader; no-ref, bad-group,
     * bad-subject; no-namespace; rb without a namespace */
    assert_int_equal(skipped, 11);
    struct kp_user a;
    make_user(&a, "a", "");
    assert_int_equal(authorize(rbac, &a, "get", "", "pods", "", "ns", "p", NULL, 0), ALLOW);
    kp_user_wipe(&a);
    kp_rbac_unref(rbac);

    /* the top-level arguments must be arrays */
    json_t *object = parse("{}");
    struct kp_rbac *out = NULL;
    struct kp_error err;
    assert_int_equal(kp_rbac_build(NULL, object, NULL, NULL, &out, NULL, &err), KP_ERR_INVALID);
    assert_null(out);
    assert_string_equal(err.message, "RBAC cluster role bindings: expected a JSON array");
    json_decref(object);
    /* an empty snapshot has no opinion on anything */
    assert_int_equal(kp_rbac_build(NULL, NULL, NULL, NULL, &out, NULL, &err), KP_OK);
    make_user(&a, "a", KP_GROUP_MASTERS);
    assert_int_equal(authorize(out, &a, "get", "", "pods", "", "ns", "p", NULL, 0), NONE);
    assert_int_equal(authorize(NULL, &a, "get", "", "pods", "", "ns", "p", NULL, 0), NONE);
    /* references: the snapshot lives until the last unref */
    struct kp_rbac *second = kp_rbac_ref(out);
    assert_ptr_equal(second, out);
    kp_rbac_unref(out);
    kp_rbac_unref(second);
    kp_rbac_unref(NULL);
    kp_user_wipe(&a);
}

static void test_snapshot_is_a_copy(void **state)
{
    (void)state;
    json_t *roles = parse("[" POD_READER "]");
    json_t *bindings = parse(
        "[{\"metadata\":{\"name\":\"b\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
        "\"kind\":\"ClusterRole\",\"name\":\"pod-reader\"},\"subjects\":[{\"kind\":\"User\","
        "\"name\":\"a\"}]}]");
    struct kp_rbac *rbac = NULL;
    struct kp_error err;
    assert_int_equal(kp_rbac_build(roles, bindings, NULL, NULL, &rbac, NULL, &err), KP_OK);
    json_array_clear(roles);
    json_decref(roles);
    json_decref(bindings);
    struct kp_user a;
    make_user(&a, "a", "");
    assert_int_equal(authorize(rbac, &a, "get", "", "pods", "", "ns", "p", NULL, 0), ALLOW);
    kp_user_wipe(&a);
    kp_rbac_unref(rbac);
}

/* ---- escalation ---- */

#define ESCALATION_ROLES                                                                           \
    "[{\"metadata\":{\"name\":\"dev\"},\"rules\":[{\"verbs\":[\"get\",\"list\"],\"apiGroups\":"    \
    "[\"\",\"apps\"],\"resources\":[\"pods\",\"deployments\",\"*/scale\"]},{\"verbs\":"            \
    "[\"get\"],\"nonResourceURLs\":[\"/healthz/*\"]},{\"verbs\":[\"update\"],\"apiGroups\":"       \
    "[\"\"],\"resources\":[\"configmaps\"],\"resourceNames\":[\"app\"]}]},"                        \
    "{\"metadata\":{\"name\":\"escalator\"},\"rules\":[{\"verbs\":[\"escalate\"],\"apiGroups\":"   \
    "[\"rbac.authorization.k8s.io\"],\"resources\":[\"roles\"],\"resourceNames\":"                 \
    "[\"allowed-role\"]}]},"                                                                       \
    "{\"metadata\":{\"name\":\"binder\"},\"rules\":[{\"verbs\":[\"bind\"],\"apiGroups\":"          \
    "[\"rbac.authorization.k8s.io\"],\"resources\":[\"clusterroles\"],\"resourceNames\":"          \
    "[\"admin-ish\"]}]},"                                                                          \
    "{\"metadata\":{\"name\":\"admin-ish\"},\"rules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],"  \
    "\"resources\":[\"*\"]}]},"                                                                    \
    "{\"metadata\":{\"name\":\"small\"},\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"     \
    "\"resources\":[\"pods\"]}]}]"

#define BIND(name, role, user)                                                                     \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"team\"},\"roleRef\":{\"apiGroup\":"      \
    "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"" role "\"},"               \
    "\"subjects\":[{\"kind\":\"User\",\"name\":\"" user "\"}]}"

static void test_role_write_escalation(void **state)
{
    (void)state;
    struct kp_rbac *rbac = build(
        ESCALATION_ROLES,
        "[{\"metadata\":{\"name\":\"broken\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"gone\"},\"subjects\":"
        "[{\"kind\":\"User\",\"name\":\"carol\"}]}]",
        NULL,
        "[" BIND("b1", "dev", "alice") "," BIND("b2", "escalator", "bob") "," BIND("b3", "dev",
                                                                                   "carol") "]",
        NULL);
    struct kp_user alice, bob, carol, root;
    make_user(&alice, "alice", "dev,system:authenticated");
    make_user(&bob, "bob", "");
    make_user(&carol, "carol", "");
    make_user(&root, "root", KP_GROUP_MASTERS);
    struct kp_error err;

    static const struct {
        const char *rules;
        enum kp_result expected;
        const char *message; /* after the "... not currently held:\n" line */
    } rows[] = {
        {"[]", KP_OK, NULL},
        {"[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]", KP_OK, NULL},
        {"[{\"verbs\":[\"list\",\"get\"],\"apiGroups\":[\"apps\",\"\"],\"resources\":"
         "[\"deployments\",\"deployments/scale\"]}]",
         KP_OK, NULL},
        {"[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/healthz/etcd\"]}]", KP_OK, NULL},
        {"[{\"verbs\":[\"update\"],\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
         "\"resourceNames\":[\"app\"]}]",
         KP_OK, NULL},
        /* a rule that is held only for one name does not cover all names */
        {"[{\"verbs\":[\"update\"],\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"]}]",
         KP_ERR_FORBIDDEN, "{APIGroups:[\"\"], Resources:[\"configmaps\"], Verbs:[\"update\"]}"},
        {"[{\"verbs\":[\"get\",\"list\",\"delete\"],\"apiGroups\":[\"\"],\"resources\":"
         "[\"secrets\",\"pods\"]},{\"verbs\":[\"watch\"],\"apiGroups\":[\"\"],\"resources\":"
         "[\"secrets\"]},{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/metrics\",\"/healthz\"]},"
         "{\"verbs\":[\"delete\"],\"apiGroups\":[\"apps\"],\"resources\":[\"deployments\"],"
         "\"resourceNames\":[\"web\"]}]",
         KP_ERR_FORBIDDEN,
         "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n"
         "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\" \"delete\" "
         "\"watch\"]}\n"
         "{APIGroups:[\"apps\"], Resources:[\"deployments\"], ResourceNames:[\"web\"], "
         "Verbs:[\"delete\"]}\n"
         "{NonResourceURLs:[\"/healthz\"], Verbs:[\"get\"]}\n"
         "{NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *rules = parse(rows[i].rules);
        enum kp_result rc = kp_rbac_check_role_write(rbac, &alice, "team", rules, &err);
        if (rc != rows[i].expected) {
            fail_msg("row %zu: %d, expected %d (%s)", i, rc, rows[i].expected, err.message);
        }
        if (rows[i].message != NULL) {
            char expected[KP_ERROR_MESSAGE_MAX];
            snprintf(expected, sizeof(expected),
                     "user \"alice\" (groups=[\"dev\" \"system:authenticated\"]) is attempting "
                     "to grant RBAC permissions not currently held:\n%s",
                     rows[i].message);
            assert_string_equal(err.message, expected);
        }
        /* a ClusterRole: alice holds her rules in team only */
        if (rows[i].expected == KP_OK && json_array_size(rules) > 0) {
            assert_int_equal(kp_rbac_check_role_write(rbac, &alice, "", rules, &err),
                             KP_ERR_FORBIDDEN);
        }
        /* system:masters may grant anything */
        assert_int_equal(kp_rbac_check_role_write(rbac, &root, "team", rules, &err), KP_OK);
        json_decref(rules);
    }

    json_t *rules = parse("[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}]");
    /* "escalate" on roles, limited by name: applies to updates of that role only */
    assert_int_equal(kp_rbac_check_role_update(rbac, &bob, "team", "allowed-role", rules, &err),
                     KP_OK);
    assert_int_equal(kp_rbac_check_role_update(rbac, &bob, "team", "other-role", rules, &err),
                     KP_ERR_FORBIDDEN);
    assert_int_equal(kp_rbac_check_role_write(rbac, &bob, "team", rules, &err), KP_ERR_FORBIDDEN);
    assert_string_equal(err.message,
                        "user \"bob\" (groups=[]) is attempting to grant RBAC permissions not "
                        "currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}");
    /* a binding to a missing role shows up as a resolution error */
    assert_int_equal(kp_rbac_check_role_write(rbac, &carol, "team", rules, &err), KP_ERR_FORBIDDEN);
    assert_string_equal(err.message,
                        "user \"carol\" (groups=[]) is attempting to grant RBAC permissions not "
                        "currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}; "
                        "resolution errors: [clusterrole.rbac.authorization.k8s.io \"gone\" not "
                        "found]");
    json_decref(rules);

    /* malformed input */
    rules = parse("[{\"verbs\":\"get\"}]");
    assert_int_equal(kp_rbac_check_role_write(rbac, &alice, "team", rules, &err), KP_ERR_INVALID);
    assert_string_equal(err.message,
                        "rules[0]: expected an object whose members are string arrays");
    json_decref(rules);
    rules = parse("{}");
    assert_int_equal(kp_rbac_check_role_write(rbac, &alice, "team", rules, &err), KP_ERR_INVALID);
    json_decref(rules);
    assert_int_equal(kp_rbac_check_role_write(rbac, &alice, "team", NULL, &err), KP_OK);

    kp_user_wipe(&alice);
    kp_user_wipe(&bob);
    kp_user_wipe(&carol);
    kp_user_wipe(&root);
    kp_rbac_unref(rbac);
}

static void test_binding_write_escalation(void **state)
{
    (void)state;
    struct kp_rbac *rbac =
        build(ESCALATION_ROLES,
              "[{\"metadata\":{\"name\":\"binders\"},\"roleRef\":{\"apiGroup\":"
              "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"binder\"},"
              "\"subjects\":[{\"kind\":\"User\",\"name\":\"bob\"}]}]",
              "[{\"metadata\":{\"name\":\"local\",\"namespace\":\"team\"},\"rules\":[{\"verbs\":"
              "[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}]",
              "[" BIND("b1", "dev", "alice") "]", NULL);
    struct kp_user alice, bob, root;
    make_user(&alice, "alice", "");
    make_user(&bob, "bob", "");
    make_user(&root, "root", "x," KP_GROUP_MASTERS);
    struct kp_error err;
    static const struct {
        const char *user;
        const char *ns;
        const char *role_ref;
        enum kp_result expected;
        const char *message;
    } rows[] = {
        /* alice holds every rule of "small" in team, not cluster-wide */
        {"alice", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
         "\"name\":\"small\"}",
         KP_OK, NULL},
        {"alice", "",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
         "\"name\":\"small\"}",
         KP_ERR_FORBIDDEN,
         "user \"alice\" (groups=[]) is attempting to grant RBAC permissions not currently "
         "held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}"},
        {"alice", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Role\","
         "\"name\":\"local\"}",
         KP_OK, NULL},
        {"alice", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
         "\"name\":\"admin-ish\"}",
         KP_ERR_FORBIDDEN,
         "user \"alice\" (groups=[]) is attempting to grant RBAC permissions not currently "
         "held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}"},
        /* missing roles cannot be checked */
        {"alice", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
         "\"name\":\"nope\"}",
         KP_ERR_FORBIDDEN, "clusterrole.rbac.authorization.k8s.io \"nope\" not found"},
        {"alice", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Role\","
         "\"name\":\"nope\"}",
         KP_ERR_FORBIDDEN, "role.rbac.authorization.k8s.io \"nope\" not found"},
        {"alice", "",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Role\","
         "\"name\":\"local\"}",
         KP_ERR_FORBIDDEN, "role.rbac.authorization.k8s.io \"local\" not found"},
        {"alice", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Thing\","
         "\"name\":\"x\"}",
         KP_ERR_FORBIDDEN, "unsupported role reference kind: \"Thing\""},
        /* bob may "bind" admin-ish (by name), anywhere, without holding it */
        {"bob", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
         "\"name\":\"admin-ish\"}",
         KP_OK, NULL},
        {"bob", "",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
         "\"name\":\"admin-ish\"}",
         KP_OK, NULL},
        {"bob", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
         "\"name\":\"small\"}",
         KP_ERR_FORBIDDEN,
         "user \"bob\" (groups=[]) is attempting to grant RBAC permissions not currently "
         "held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}"},
        {"root", "team",
         "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
         "\"name\":\"nope\"}",
         KP_OK, NULL},
        {"alice", "team", "{\"kind\":\"ClusterRole\"}", KP_ERR_INVALID,
         "roleRef: kind and name are required"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct kp_user *user = strcmp(rows[i].user, "alice") == 0 ? &alice
                                     : strcmp(rows[i].user, "bob") == 0 ? &bob
                                                                        : &root;
        json_t *role_ref = parse(rows[i].role_ref);
        enum kp_result rc = kp_rbac_check_binding_write(rbac, user, rows[i].ns, role_ref, &err);
        if (rc != rows[i].expected) {
            fail_msg("row %zu: %d, expected %d (%s)", i, rc, rows[i].expected, err.message);
        }
        if (rows[i].message != NULL) {
            assert_string_equal(err.message, rows[i].message);
        }
        json_decref(role_ref);
    }
    kp_user_wipe(&alice);
    kp_user_wipe(&bob);
    kp_user_wipe(&root);
    kp_rbac_unref(rbac);
}

static void test_rules_for(void **state)
{
    (void)state;
    struct kp_rbac *rbac = build(
        ESCALATION_ROLES,
        "[{\"metadata\":{\"name\":\"broken\"},\"roleRef\":{\"apiGroup\":"
        "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"gone\"},\"subjects\":"
        "[{\"kind\":\"User\",\"name\":\"alice\"}]}]",
        NULL, "[" BIND("b1", "dev", "alice") "]", NULL);
    struct kp_user alice;
    make_user(&alice, "alice", "");
    json_t *status = kp_rbac_rules_for(rbac, &alice, "team");
    assert_non_null(status);
    json_t *expected =
        parse("{\"resourceRules\":[{\"verbs\":[\"get\",\"list\"],\"apiGroups\":[\"\",\"apps\"],"
              "\"resources\":[\"pods\",\"deployments\",\"*/scale\"]},{\"verbs\":[\"update\"],"
              "\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"resourceNames\":[\"app\"]}],"
              "\"nonResourceRules\":[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/healthz/*\"]}],"
              "\"incomplete\":false,\"evaluationError\":"
              "\"clusterrole.rbac.authorization.k8s.io \\\"gone\\\" not found\"}");
    if (!json_equal(status, expected)) {
        char *text = json_dumps(status, JSON_SORT_KEYS);
        fail_msg("rules_for: %s", text);
    }
    json_decref(status);
    json_decref(expected);
    /* cluster-wide: only the ClusterRoleBindings, here none that resolve */
    status = kp_rbac_rules_for(rbac, &alice, "");
    assert_int_equal(json_array_size(json_object_get(status, "resourceRules")), 0);
    json_decref(status);
    kp_user_wipe(&alice);
    kp_rbac_unref(rbac);
}

/* ---- the default policy ---- */

static const json_t *find_object(const json_t *policy, const char *kind, const char *ns,
                                 const char *name)
{
    size_t i;
    const json_t *object;
    json_array_foreach(policy, i, object) {
        const json_t *metadata = json_object_get(object, "metadata");
        const char *object_ns = json_string_value(json_object_get(metadata, "namespace"));
        if (strcmp(json_string_value(json_object_get(object, "kind")), kind) == 0 &&
            strcmp(json_string_value(json_object_get(metadata, "name")), name) == 0 &&
            strcmp(object_ns != NULL ? object_ns : "", ns) == 0) {
            return object;
        }
    }
    return NULL;
}

static struct kp_rbac *build_default(json_t *policy, size_t extra_bindings)
{
    json_t *lists[4] = {json_array(), json_array(), json_array(), json_array()};
    static const char *const kinds[4] = {"ClusterRole", "ClusterRoleBinding", "Role",
                                         "RoleBinding"};
    size_t i;
    json_t *object;
    json_array_foreach(policy, i, object) {
        const char *kind = json_string_value(json_object_get(object, "kind"));
        bool placed = false;
        for (size_t k = 0; k < 4 && !placed; k++) {
            if (strcmp(kind, kinds[k]) == 0) {
                json_array_append(lists[k], object);
                placed = true;
            }
        }
        if (!placed) {
            fail_msg("default policy object #%zu has kind '%s'", i, kind);
        }
    }
    for (size_t n = 0; n < extra_bindings; n++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "{\"metadata\":{\"name\":\"team-%zu\",\"namespace\":\"ns-%zu\"},\"roleRef\":"
                 "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":"
                 "\"%s\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"user-%zu\"},{\"kind\":"
                 "\"Group\",\"name\":\"group-%zu\"},{\"kind\":\"ServiceAccount\",\"name\":"
                 "\"default\"}]}",
                 n, n % 50,
                 n % 3 == 0   ? "admin"
                 : n % 3 == 1 ? "edit"
                              : "view",
                 n, n % 20);
        json_array_append_new(lists[3], parse(text));
    }
    struct kp_rbac *rbac = NULL;
    size_t skipped = 99;
    struct kp_error err;
    assert_int_equal(kp_rbac_build(lists[0], lists[1], lists[2], lists[3], &rbac, &skipped, &err),
                     KP_OK);
    assert_int_equal(skipped, 0);
    for (size_t k = 0; k < 4; k++) {
        json_decref(lists[k]);
    }
    return rbac;
}

static void test_default_policy_well_formed(void **state)
{
    (void)state;
    json_t *policy = kp_rbac_default_policy();
    assert_non_null(policy);
    assert_true(json_array_size(policy) > 100);
    size_t i;
    json_t *object;
    json_array_foreach(policy, i, object) {
        const char *kind = json_string_value(json_object_get(object, "kind"));
        const json_t *metadata = json_object_get(object, "metadata");
        const char *name = json_string_value(json_object_get(metadata, "name"));
        assert_non_null(kind);
        assert_non_null(name);
        assert_string_equal(json_string_value(json_object_get(object, "apiVersion")),
                            "rbac.authorization.k8s.io/v1");
        bool namespaced = strcmp(kind, "Role") == 0 || strcmp(kind, "RoleBinding") == 0;
        assert_int_equal(json_object_get(metadata, "namespace") != NULL, namespaced);
        bool kubeadm = strncmp(name, "kubeadm:", 8) == 0;
        const char *label = json_string_value(
            json_object_get(json_object_get(metadata, "labels"), "kubernetes.io/bootstrapping"));
        if (kubeadm) {
            assert_null(label);
        } else {
            assert_non_null(label);
            assert_string_equal(label, "rbac-defaults");
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(metadata, "annotations"),
                                                  "rbac.authorization.kubernetes.io/autoupdate")),
                "true");
        }
        /* every binding's role exists in the policy */
        const json_t *role_ref = json_object_get(object, "roleRef");
        if (role_ref != NULL) {
            const char *role_kind = json_string_value(json_object_get(role_ref, "kind"));
            const char *role_name = json_string_value(json_object_get(role_ref, "name"));
            const char *ns = json_string_value(json_object_get(metadata, "namespace"));
            if (find_object(policy, role_kind, strcmp(role_kind, "Role") == 0 ? ns : "",
                            role_name) == NULL) {
                fail_msg("%s %s references missing %s %s", kind, name, role_kind, role_name);
            }
        }
        /* no duplicates */
        const char *ns = json_string_value(json_object_get(metadata, "namespace"));
        assert_ptr_equal(find_object(policy, kind, ns != NULL ? ns : "", name), object);
        /* controller roles are bound to their service account */
        if (strcmp(kind, "ClusterRole") == 0 && strncmp(name, "system:controller:", 18) == 0) {
            const json_t *binding = find_object(policy, "ClusterRoleBinding", "", name);
            assert_non_null(binding);
            const json_t *subject = json_array_get(json_object_get(binding, "subjects"), 0);
            assert_string_equal(json_string_value(json_object_get(subject, "kind")),
                                "ServiceAccount");
            assert_string_equal(json_string_value(json_object_get(subject, "name")), name + 18);
            assert_string_equal(json_string_value(json_object_get(subject, "namespace")),
                                "kube-system");
        }
    }
    struct kp_rbac *rbac = build_default(policy, 0);
    kp_rbac_unref(rbac);

    /* the Node authorizer's static rules are system:node's */
    json_t *node_rules = kp_rbac_node_rules();
    assert_true(json_equal(
        node_rules,
        json_object_get(find_object(policy, "ClusterRole", "", "system:node"), "rules")));
    assert_int_equal(json_array_size(node_rules), 22);
    json_decref(node_rules);
    json_decref(policy);
}

static void test_default_policy_grants(void **state)
{
    (void)state;
    json_t *policy = kp_rbac_default_policy();
    struct kp_rbac *rbac = build_default(policy, 0);
    json_decref(policy);
    struct kp_user admin, kubeadm_admin, bootstrap, scheduler, kcm, anonymous, someone, sa_gc, node,
        proxy;
    make_user(&admin, "kubernetes-admin", KP_GROUP_MASTERS "," KP_GROUP_AUTHENTICATED);
    make_user(&kubeadm_admin, "kubernetes-admin", "kubeadm:cluster-admins,system:authenticated");
    make_user(&bootstrap, "system:bootstrap:abcdef",
              "system:bootstrappers,system:bootstrappers:kubeadm:default-node-token,"
              "system:authenticated");
    make_user(&scheduler, "system:kube-scheduler", KP_GROUP_AUTHENTICATED);
    make_user(&kcm, "system:kube-controller-manager", KP_GROUP_AUTHENTICATED);
    make_user(&anonymous, KP_USER_ANONYMOUS, KP_GROUP_UNAUTHENTICATED);
    make_user(&someone, "someone", KP_GROUP_AUTHENTICATED);
    make_user(&sa_gc, "system:serviceaccount:kube-system:generic-garbage-collector",
              "system:serviceaccounts,system:serviceaccounts:kube-system,system:authenticated");
    make_user(&node, "system:node:worker-1", "system:nodes,system:authenticated");
    make_user(&proxy, "system:kube-proxy", KP_GROUP_AUTHENTICATED);
    char reason[KP_AUTHZ_REASON_MAX];
    const struct {
        const struct kp_user *user;
        const char *verb, *group, *resource, *subresource, *ns, *name;
        enum kp_authz_verdict verdict;
    } rows[] = {
        {&admin, "delete", "apps", "deployments", "", "prod", "web", ALLOW},
        {&admin, "escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", "x", ALLOW},
        {&kubeadm_admin, "create", "", "secrets", "", "kube-system", "", ALLOW},
        {&bootstrap, "create", "certificates.k8s.io", "certificatesigningrequests", "", "", "",
         ALLOW},
        {&bootstrap, "create", "certificates.k8s.io", "certificatesigningrequests", "nodeclient",
         "", "", ALLOW},
        {&bootstrap, "create", "certificates.k8s.io", "certificatesigningrequests",
         "selfnodeclient", "", "", NONE},
        {&bootstrap, "get", "", "nodes", "", "", "worker-1", ALLOW},
        {&bootstrap, "list", "", "nodes", "", "", "", NONE},
        {&bootstrap, "get", "", "configmaps", "", "kube-system", "kubelet-config", ALLOW},
        {&bootstrap, "get", "", "configmaps", "", "kube-system", "kubeadm-config", ALLOW},
        {&bootstrap, "get", "", "configmaps", "", "kube-system", "coredns", NONE},
        {&bootstrap, "get", "", "secrets", "", "kube-system", "x", NONE},
        {&node, "create", "certificates.k8s.io", "certificatesigningrequests", "selfnodeclient", "",
         "", ALLOW},
        {&node, "get", "", "configmaps", "", "kube-system", "kubelet-config", ALLOW},
        /* system:node is bound to nobody: the Node authorizer grants those rules */
        {&node, "get", "", "services", "", "default", "kubernetes", NONE},
        {&scheduler, "create", "", "bindings", "", "default", "", ALLOW},
        {&scheduler, "create", "", "pods", "binding", "default", "web-1", ALLOW},
        {&scheduler, "update", "coordination.k8s.io", "leases", "", "kube-system", "kube-scheduler",
         ALLOW},
        {&scheduler, "update", "coordination.k8s.io", "leases", "", "kube-system", "other", NONE},
        {&scheduler, "patch", "", "persistentvolumes", "", "", "pv1", ALLOW},
        {&scheduler, "get", "", "configmaps", "", "kube-system",
         "extension-apiserver-authentication", ALLOW},
        {&scheduler, "delete", "", "nodes", "", "", "n", NONE},
        {&kcm, "list", "apps", "deployments", "", "", "", ALLOW},
        {&kcm, "create", "", "serviceaccounts", "token", "kube-system", "x", ALLOW},
        {&kcm, "create", "coordination.k8s.io", "leases", "", "kube-system", "", ALLOW},
        {&kcm, "delete", "", "pods", "", "default", "p", NONE},
        {&sa_gc, "delete", "apps", "replicasets", "", "default", "x", ALLOW},
        {&sa_gc, "create", "", "pods", "", "default", "", NONE},
        {&proxy, "list", "discovery.k8s.io", "endpointslices", "", "", "", ALLOW},
        {&anonymous, "get", "", "configmaps", "", "kube-public", "cluster-info", ALLOW},
        {&anonymous, "get", "", "configmaps", "", "kube-public", "other", NONE},
        {&someone, "create", "authorization.k8s.io", "selfsubjectaccessreviews", "", "", "", ALLOW},
        {&someone, "create", "authentication.k8s.io", "selfsubjectreviews", "", "", "", ALLOW},
        {&someone, "get", "", "pods", "", "default", "x", NONE},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum kp_authz_verdict verdict =
            authorize(rbac, rows[i].user, rows[i].verb, rows[i].group, rows[i].resource,
                      rows[i].subresource, rows[i].ns, rows[i].name, reason, sizeof(reason));
        if (verdict != rows[i].verdict) {
            fail_msg("row %zu: %s %s %s/%s: got %d (%s)", i, rows[i].user->name, rows[i].verb,
                     rows[i].resource, rows[i].subresource, verdict, reason);
        }
    }
    assert_int_equal(
        authorize(rbac, &admin, "get", "", "pods", "", "x", "y", reason, sizeof(reason)), ALLOW);
    assert_string_equal(reason, "RBAC: allowed by ClusterRoleBinding \"cluster-admin\" of "
                                "ClusterRole \"cluster-admin\" to Group \"system:masters\"");

    /* non-resource URLs */
    const struct {
        const struct kp_user *user;
        const char *path;
        enum kp_authz_verdict verdict;
    } urls[] = {
        {&anonymous, "/healthz", ALLOW},    {&anonymous, "/version", ALLOW},
        {&anonymous, "/api", NONE},         {&someone, "/apis/apps/v1", ALLOW},
        {&someone, "/metrics", NONE},       {&admin, "/metrics", ALLOW},
        {&sa_gc, "/openid/v1/jwks", ALLOW},
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct kp_authz_attrs attrs = {.user = urls[i].user, .verb = "get", .path = urls[i].path};
        struct kp_authz_decision decision;
        kp_rbac_authorize(rbac, &attrs, &decision);
        if (decision.verdict != urls[i].verdict) {
            fail_msg("url row %zu: %s %s", i, urls[i].user->name, urls[i].path);
        }
    }
    kp_user_wipe(&admin);
    kp_user_wipe(&kubeadm_admin);
    kp_user_wipe(&bootstrap);
    kp_user_wipe(&scheduler);
    kp_user_wipe(&kcm);
    kp_user_wipe(&anonymous);
    kp_user_wipe(&someone);
    kp_user_wipe(&sa_gc);
    kp_user_wipe(&node);
    kp_user_wipe(&proxy);
    kp_rbac_unref(rbac);
}

static void test_default_aggregated_roles(void **state)
{
    (void)state;
    json_t *policy = kp_rbac_default_policy();
    struct kp_rbac *rbac = build_default(policy, 3); /* team-0 admin, team-1 edit, team-2 view */
    json_decref(policy);
    struct kp_user admin, editor, viewer;
    make_user(&admin, "user-0", "");
    make_user(&editor, "user-1", "");
    make_user(&viewer, "user-2", "");
    static const struct {
        int who; /* 0 admin, 1 edit, 2 view */
        const char *verb, *group, *resource, *subresource;
        enum kp_authz_verdict verdict;
    } rows[] = {
        {2, "get", "", "pods", "", ALLOW},
        {2, "list", "apps", "deployments", "", ALLOW},
        {2, "get", "", "pods", "log", ALLOW},
        {2, "get", "", "secrets", "", NONE},
        {2, "create", "", "pods", "", NONE},
        {1, "get", "", "secrets", "", ALLOW},
        {1, "create", "apps", "deployments", "", ALLOW},
        {1, "update", "apps", "deployments", "scale", ALLOW},
        {1, "create", "", "pods", "exec", ALLOW},
        {1, "create", "", "serviceaccounts", "token", ALLOW},
        {1, "get", "", "pods", "", ALLOW}, /* view's rules, through edit */
        {1, "create", "rbac.authorization.k8s.io", "roles", "", NONE},
        {0, "create", "rbac.authorization.k8s.io", "rolebindings", "", ALLOW},
        {0, "create", "authorization.k8s.io", "localsubjectaccessreviews", "", ALLOW},
        {0, "delete", "batch", "jobs", "", ALLOW}, /* edit's, through admin */
        {0, "list", "", "namespaces", "", ALLOW},
        {0, "update", "", "resourcequotas", "", NONE},
    };
    const struct kp_user *users[3] = {&admin, &editor, &viewer};
    char ns[16];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(ns, sizeof(ns), "ns-%d", rows[i].who);
        enum kp_authz_verdict verdict =
            authorize(rbac, users[rows[i].who], rows[i].verb, rows[i].group, rows[i].resource,
                      rows[i].subresource, ns, "x", NULL, 0);
        if (verdict != rows[i].verdict) {
            fail_msg("row %zu: %d %s %s/%s", i, rows[i].who, rows[i].verb, rows[i].resource,
                     rows[i].subresource);
        }
        /* granted in its namespace only */
        assert_int_equal(authorize(rbac, users[rows[i].who], rows[i].verb, rows[i].group,
                                   rows[i].resource, rows[i].subresource, "elsewhere", "x", NULL,
                                   0),
                         NONE);
    }
    /* a RoleBinding's ServiceAccount subject: "default" in ns-0 */
    struct kp_user sa;
    make_user(&sa, "system:serviceaccount:ns-0:default", "system:serviceaccounts");
    assert_int_equal(authorize(rbac, &sa, "create", "rbac.authorization.k8s.io", "roles", "",
                               "ns-0", "", NULL, 0),
                     ALLOW);
    kp_user_wipe(&sa);
    kp_user_wipe(&admin);
    kp_user_wipe(&editor);
    kp_user_wipe(&viewer);
    kp_rbac_unref(rbac);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_snapshot_at_scale(void **state)
{
    (void)state;
    json_t *policy = kp_rbac_default_policy();
    double start = now_seconds();
    struct kp_rbac *rbac = build_default(policy, 400);
    double build_seconds = now_seconds() - start;
    json_decref(policy);
    struct kp_user users[4];
    make_user(&users[0], "user-7", "group-3,system:authenticated");        /* hit, edit */
    make_user(&users[1], "nobody", "system:authenticated");                /* miss */
    make_user(&users[2], "system:kube-scheduler", "system:authenticated"); /* cluster */
    make_user(&users[3], "system:serviceaccount:ns-9:default",             /* SA subject */
              "system:serviceaccounts,system:serviceaccounts:ns-9,system:authenticated");
    const size_t rounds = 20000;
    size_t allowed = 0;
    start = now_seconds();
    for (size_t i = 0; i < rounds; i++) {
        struct kp_authz_decision decision;
        struct kp_authz_attrs attrs =
            resource_attrs(&users[i % 4], "get", "", "pods", "", "ns-7", "web");
        kp_rbac_authorize(rbac, &attrs, &decision);
        allowed += decision.verdict == KP_AUTHZ_ALLOW;
    }
    double per_request = (now_seconds() - start) / (double)rounds;
    print_message("default policy + 400 role bindings: build %.1f ms, authorize %.2f us/request\n",
                  build_seconds * 1e3, per_request * 1e6);
    /* The timing is printed, not asserted: speed is for benchmarks, never a test's verdict. */
    assert_int_equal(allowed, rounds / 4 * 2); /* user-7 (edit in ns-7) and the scheduler */
    for (size_t i = 0; i < 4; i++) {
        kp_user_wipe(&users[i]);
    }
    kp_rbac_unref(rbac);
}

static void test_user(void **state)
{
    (void)state;
    struct kp_user user;
    make_user(&user, "jane", "dev,system:authenticated");
    user.uid = strdup("1234");
    user.extra = parse("{\"scopes\":[\"a\",\"b\"]}");
    assert_true(kp_user_in_group(&user, "dev"));
    assert_false(kp_user_in_group(&user, "de"));
    assert_false(kp_user_in_group(NULL, "dev"));
    json_t *info = kp_user_to_json(&user);
    json_t *expected = parse("{\"username\":\"jane\",\"uid\":\"1234\",\"groups\":[\"dev\","
                             "\"system:authenticated\"],\"extra\":{\"scopes\":[\"a\",\"b\"]}}");
    assert_true(json_equal(info, expected));
    json_decref(info);
    json_decref(expected);
    kp_user_wipe(&user);
    assert_null(user.name);
    kp_user_wipe(&user); /* twice is harmless */
    make_user(&user, "anon", "");
    info = kp_user_to_json(&user);
    expected = parse("{\"username\":\"anon\"}"); /* empty members are omitted */
    assert_true(json_equal(info, expected));
    json_decref(info);
    json_decref(expected);
    kp_user_wipe(&user);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_matching),
        cmocka_unit_test(test_non_resource_urls),
        cmocka_unit_test(test_cluster_role_binding),
        cmocka_unit_test(test_role_binding_scopes),
        cmocka_unit_test(test_service_account_subjects),
        cmocka_unit_test(test_missing_roles),
        cmocka_unit_test(test_first_applicable_subject_is_reported),
        cmocka_unit_test(test_aggregation),
        cmocka_unit_test(test_malformed_objects_skipped),
        cmocka_unit_test(test_snapshot_is_a_copy),
        cmocka_unit_test(test_role_write_escalation),
        cmocka_unit_test(test_binding_write_escalation),
        cmocka_unit_test(test_rules_for),
        cmocka_unit_test(test_default_policy_well_formed),
        cmocka_unit_test(test_default_policy_grants),
        cmocka_unit_test(test_default_aggregated_roles),
        cmocka_unit_test(test_snapshot_at_scale),
        cmocka_unit_test(test_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
