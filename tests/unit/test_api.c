/*
 * The API server's pure parts: request info (paths and verbs, with negative cases), name rules,
 * storage keys, the resource table's consistency, Tables, Status messages, Forbidden messages.
 * The HTTP side is tested over real TLS by tests/integration/it_apiserver_*.sh.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"

struct request_case {
    const char *method, *path;
    bool watch;
    bool resource;
    const char *verb, *group, *version, *resource_name, *ns, *name, *sub;
};

static void test_request_info(void **state)
{
    (void)state;
    static const struct request_case cases[] = {
        {"GET", "/api/v1/namespaces/default/secrets/s1", false, true, "get", "", "v1",
         "secrets", "default", "s1", ""},
        {"GET", "/api/v1/namespaces/default/secrets", false, true, "list", "", "v1", "secrets",
         "default", "", ""},
        {"GET", "/api/v1/namespaces/default/secrets", true, true, "watch", "", "v1", "secrets",
         "default", "", ""},
        {"GET", "/api/v1/secrets", false, true, "list", "", "v1", "secrets", "", "", ""},
        {"GET", "/api/v1/namespaces", false, true, "list", "", "v1", "namespaces", "", "", ""},
        /* The namespace object itself: its namespace is its name (requestinfo.go). */
        {"GET", "/api/v1/namespaces/foo", false, true, "get", "", "v1", "namespaces", "foo",
         "foo", ""},
        {"PUT", "/api/v1/namespaces/foo/status", false, true, "update", "", "v1", "namespaces",
         "foo", "foo", "status"},
        {"PUT", "/api/v1/namespaces/foo/finalize", false, true, "update", "", "v1",
         "namespaces", "foo", "foo", "finalize"},
        {"POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token", false, true, "create", "",
         "v1", "serviceaccounts", "ns", "sa", "token"},
        {"PATCH", "/apis/rbac.authorization.k8s.io/v1/clusterroles/x", false, true, "patch",
         "rbac.authorization.k8s.io", "v1", "clusterroles", "", "x", ""},
        {"DELETE", "/api/v1/namespaces/a/pods", false, true, "deletecollection", "", "v1", "pods",
         "a", "", ""},
        {"DELETE", "/api/v1/namespaces/a/pods/p", false, true, "delete", "", "v1", "pods", "a",
         "p", ""},
        {"GET", "/api/v1/nodes/n1", true, true, "watch", "", "v1", "nodes", "", "n1", ""},
        {"HEAD", "/api/v1/nodes", false, true, "list", "", "v1", "nodes", "", "", ""},
        {"GET", "/api/v1/nodes/", false, true, "list", "", "v1", "nodes", "", "", ""},
        {"GET", "/healthz", false, false, "get", NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/api", false, false, "get", NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/api/v1", false, false, "get", NULL, NULL, NULL, NULL, NULL, NULL},
        {"GET", "/apis/rbac.authorization.k8s.io/v1", false, false, "get", NULL, NULL, NULL,
         NULL, NULL, NULL},
        {"POST", "/openid/v1/jwks", false, false, "post", NULL, NULL, NULL, NULL, NULL, NULL},
        {"OPTIONS", "/version", false, false, "options", NULL, NULL, NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct request_case *c = &cases[i];
        struct kp_request_info info;
        struct kp_error err;
        if (kp_request_info_parse(c->method, c->path, c->watch, &info, &err) != KP_OK)
            fail_msg("%s %s: %s", c->method, c->path, err.message);
        if (info.resource_request != c->resource || strcmp(info.verb, c->verb) != 0)
            fail_msg("%s %s: resource=%d verb=%s", c->method, c->path, info.resource_request,
                     info.verb);
        if (c->resource) {
            assert_string_equal(info.group, c->group);
            assert_string_equal(info.version, c->version);
            assert_string_equal(info.resource, c->resource_name);
            assert_string_equal(info.namespace_, c->ns);
            assert_string_equal(info.name, c->name);
            assert_string_equal(info.subresource, c->sub);
        }
        kp_request_info_wipe(&info);
    }
}

static void test_request_info_refused(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        enum kp_result code;
    } cases[] = {
        {"GET", "/api/v1/namespaces/a/pods/p/status/extra", KP_ERR_NOT_FOUND},
        {"GET", "/api/v1//secrets", KP_ERR_INVALID},
        {"GET", "/api/v1/namespaces//secrets", KP_ERR_INVALID},
        {"OPTIONS", "/api/v1/secrets", KP_ERR_INVALID},
        {"TRACE", "/apis/g/v1/things", KP_ERR_INVALID},
        {"GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", KP_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kp_request_info info;
        struct kp_error err;
        enum kp_result rc = kp_request_info_parse(cases[i].method, cases[i].path, false, &info,
                                                  &err);
        if (rc != cases[i].code)
            fail_msg("%s %s: got %s, want %s", cases[i].method, cases[i].path,
                     kp_result_name(rc), kp_result_name(cases[i].code));
        kp_request_info_wipe(&info);
    }
}

static void test_names(void **state)
{
    (void)state;
    const char *subdomains[] = {"a", "a-b", "a.b", "0", "kube-system", "x.y-z.w"};
    const char *not_subdomains[] = {"", "A", "a_b", "-a", "a-", ".a", "a.", "a..b", "a/b",
                                    "a b", "é"};
    for (size_t i = 0; i < sizeof(subdomains) / sizeof(subdomains[0]); i++)
        assert_null(kp_name_dns1123_subdomain(subdomains[i]));
    for (size_t i = 0; i < sizeof(not_subdomains) / sizeof(not_subdomains[0]); i++)
        if (!kp_name_dns1123_subdomain(not_subdomains[i]))
            fail_msg("'%s' accepted as a subdomain", not_subdomains[i]);
    char long_name[300];
    memset(long_name, 'a', 254);
    long_name[254] = '\0';
    assert_non_null(kp_name_dns1123_subdomain(long_name));
    long_name[253] = '\0';
    assert_null(kp_name_dns1123_subdomain(long_name));
    assert_non_null(kp_name_dns1123_label("a.b"));
    long_name[64] = '\0';
    assert_non_null(kp_name_dns1123_label(long_name));
    long_name[63] = '\0';
    assert_null(kp_name_dns1123_label(long_name));
    assert_null(kp_name_path_segment("system:node:n1"));
    const char *bad_segments[] = {"", ".", "..", "a/b", "a%2f"};
    for (size_t i = 0; i < sizeof(bad_segments) / sizeof(bad_segments[0]); i++)
        assert_non_null(kp_name_path_segment(bad_segments[i]));
}

static void test_resource_table(void **state)
{
    (void)state;
    size_t count;
    const struct kp_resource *rows = kp_resources(&count);
    assert_true(count > 10);
    for (size_t i = 0; i < count; i++) {
        const struct kp_resource *r = &rows[i];
        assert_non_null(kp_resource_find(r->group, r->version, r->plural));
        /* Stored rows have hooks with their fields list and no create handler; virtual rows
         * are the opposite. */
        if (r->storage) {
            assert_non_null(r->hooks);
            assert_non_null(r->hooks->fields);
            assert_null(r->create);
            assert_int_equal(strncmp(r->storage, "/registry/", 10), 0);
        } else {
            assert_non_null(r->create);
            assert_int_equal(r->verbs, KP_VERB_CREATE);
        }
        for (size_t j = 0; j < i; j++) {
            /* One row per group/version/plural; one storage prefix per group/plural. */
            if (strcmp(rows[j].group, r->group) == 0 && strcmp(rows[j].plural, r->plural) == 0)
                assert_string_not_equal(rows[j].version, r->version);
            if (r->storage && rows[j].storage && strcmp(rows[j].storage, r->storage) == 0)
                fail_msg("%s and %s share %s", rows[j].plural, r->plural, r->storage);
        }
        for (size_t c = 0; c < r->column_count; c++)
            assert_true(r->columns[c].cell != NULL || r->columns[c].path != NULL);
    }
    const struct kp_resource *nodes = kp_resource_find("", "v1", "nodes");
    char key[256], buf[128];
    kp_object_key(nodes, "", "n1", key, sizeof(key));
    assert_string_equal(key, "/registry/minions/n1"); /* kube-apiserver's own prefix */
    const struct kp_resource *secrets = kp_resource_find("", "v1", "secrets");
    kp_object_key(secrets, "ns", "s", key, sizeof(key));
    assert_string_equal(key, "/registry/secrets/ns/s");
    kp_object_prefix(secrets, "", key, sizeof(key));
    assert_string_equal(key, "/registry/secrets/");
    assert_string_equal(kp_resource_api_version(secrets, buf, sizeof(buf)), "v1");
    const struct kp_resource *roles = kp_resource_find("rbac.authorization.k8s.io", "v1", "roles");
    assert_string_equal(kp_resource_qualified(roles, buf, sizeof(buf)),
                        "roles.rbac.authorization.k8s.io");
    assert_non_null(kp_subresource_find(kp_resource_find("", "v1", "pods"), "binding"));
    assert_null(kp_subresource_find(secrets, "status"));
    assert_true(kp_field_supported(secrets, "type"));
    assert_true(kp_field_supported(secrets, "metadata.namespace"));
    assert_false(kp_field_supported(secrets, "spec.nodeName"));
    assert_false(kp_field_supported(nodes, "metadata.namespace"));
}

static void test_field_values(void **state)
{
    (void)state;
    const struct kp_resource *pods = kp_resource_find("", "v1", "pods");
    json_t *pod = json_pack("{s:{s:s, s:s}, s:{s:s, s:b}, s:{s:s}}", "metadata", "name", "p",
                            "namespace", "ns", "spec", "nodeName", "n1", "hostNetwork", true,
                            "status", "phase", "Running");
    char buf[64];
    assert_string_equal(kp_field_value(pods, pod, "spec.nodeName", buf, sizeof(buf)), "n1");
    assert_string_equal(kp_field_value(pods, pod, "spec.hostNetwork", buf, sizeof(buf)), "true");
    assert_string_equal(kp_field_value(pods, pod, "status.phase", buf, sizeof(buf)), "Running");
    assert_string_equal(kp_field_value(pods, pod, "spec.schedulerName", buf, sizeof(buf)), "");
    assert_string_equal(kp_field_value(pods, pod, "metadata.namespace", buf, sizeof(buf)), "ns");
    json_decref(pod);
}

static void test_table(void **state)
{
    (void)state;
    const struct kp_resource *ns = kp_resource_find("", "v1", "namespaces");
    json_t *items = json_pack("[{s:{s:s, s:s}, s:{s:s}}]", "metadata", "name", "default",
                              "creationTimestamp", "2026-01-01T00:00:00Z", "status", "phase",
                              "Active");
    int64_t created = 1767225600; /* 2026-01-01T00:00:00Z */
    json_t *table = kp_table_from_items(ns, items, "42", NULL, created + 3 * 86400 + 3600);
    assert_string_equal(json_string_value(json_object_get(table, "kind")), "Table");
    assert_string_equal(json_string_value(json_object_get(table, "apiVersion")), "meta.k8s.io/v1");
    json_t *row = json_array_get(json_object_get(table, "rows"), 0);
    json_t *cells = json_object_get(row, "cells");
    assert_string_equal(json_string_value(json_array_get(cells, 0)), "default");
    assert_string_equal(json_string_value(json_array_get(cells, 1)), "Active");
    assert_string_equal(json_string_value(json_array_get(cells, 2)), "3d1h"); /* HumanDuration */
    assert_string_equal(json_string_value(json_object_get(json_object_get(row, "object"), "kind")),
                        "PartialObjectMetadata");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(table, "metadata"), "resourceVersion")),
        "42");
    json_decref(table);
    json_decref(items);
}

/* The column headers of every served kind, as kube-apiserver's printers name them (wide
 * columns after "|"), so `kubectl get` prints upstream's headers. */
static void test_table_headers(void **state)
{
    (void)state;
    static const struct {
        const char *group, *resource, *headers;
    } cases[] = {
        {"", "namespaces", "Name Status Age"},
        {"", "nodes", "Name Status Roles Age Version | Internal-IP External-IP OS-Image "
                      "Kernel-Version Container-Runtime"},
        {"", "pods", "Name Ready Status Restarts Age | IP Node Nominated Node Readiness Gates"},
        {"", "secrets", "Name Type Data Age"},
        {"", "configmaps", "Name Data Age"},
        {"", "serviceaccounts", "Name Secrets Age"},
        {"", "events", "Last Seen Type Reason Object | Subobject Source | Message | First Seen "
                       "Count Name"},
        {"coordination.k8s.io", "leases", "Name Holder Age"},
        {"rbac.authorization.k8s.io", "clusterroles", "Name Created At"},
        {"rbac.authorization.k8s.io", "roles", "Name Created At"},
        {"rbac.authorization.k8s.io", "clusterrolebindings",
         "Name Role Age | Users Groups ServiceAccounts"},
        {"rbac.authorization.k8s.io", "rolebindings", "Name Role Age | Users Groups ServiceAccounts"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct kp_resource *r = kp_resource_find(cases[i].group, "v1", cases[i].resource);
        assert_non_null(r);
        json_t *items = json_array();
        json_t *table = kp_table_from_items(r, items, "1", NULL, 0);
        char headers[512] = "";
        size_t n = 0, c;
        int priority = 0;
        json_t *column;
        json_array_foreach(json_object_get(table, "columnDefinitions"), c, column) {
            int p = (int)json_integer_value(json_object_get(column, "priority"));
            n += (size_t)snprintf(headers + n, sizeof(headers) - n, "%s%s%s", n ? " " : "",
                                  p != priority ? "| " : "",
                                  json_string_value(json_object_get(column, "name")));
            priority = p;
        }
        if (strcmp(headers, cases[i].headers) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].resource, headers,
                     cases[i].headers);
        json_decref(table);
        json_decref(items);
    }
}

static void test_forbidden_message(void **state)
{
    (void)state;
    struct kp_user user = {.name = "system:node:a"};
    struct kp_authz_attrs attrs = {.user = &user, .resource_request = true, .verb = "get",
                                   .api_group = "", .resource = "nodes", .subresource = "",
                                   .namespace_ = "", .name = "b"};
    char msg[1024];
    kp_forbidden_message(&attrs, "node 'a' cannot read 'b', only its own Node object", msg,
                         sizeof(msg));
    assert_string_equal(msg, "nodes \"b\" is forbidden: User \"system:node:a\" cannot get "
                             "resource \"nodes\" in API group \"\" at the cluster scope: node "
                             "'a' cannot read 'b', only its own Node object");
    attrs.verb = "create";
    attrs.resource = "serviceaccounts";
    attrs.subresource = "token";
    attrs.namespace_ = "ns";
    attrs.name = "sa";
    kp_forbidden_message(&attrs, "", msg, sizeof(msg));
    assert_string_equal(msg, "serviceaccounts \"sa\" is forbidden: User \"system:node:a\" cannot "
                             "create resource \"serviceaccounts/token\" in API group \"\" in the "
                             "namespace \"ns\"");
    attrs.api_group = "rbac.authorization.k8s.io";
    attrs.resource = "roles";
    attrs.subresource = "";
    attrs.name = "";
    attrs.verb = "list";
    kp_forbidden_message(&attrs, NULL, msg, sizeof(msg));
    assert_string_equal(msg, "roles.rbac.authorization.k8s.io is forbidden: User "
                             "\"system:node:a\" cannot list resource \"roles\" in API group "
                             "\"rbac.authorization.k8s.io\" in the namespace \"ns\"");
    struct kp_authz_attrs path = {.user = &user, .verb = "get", .path = "/metrics"};
    kp_forbidden_message(&path, "", msg, sizeof(msg));
    assert_string_equal(msg, "forbidden: User \"system:node:a\" cannot get path \"/metrics\"");
}

static void test_object_codec(void **state)
{
    (void)state;
    json_t *object = json_pack("{s:s, s:{s:s, s:s}}", "kind", "Secret", "metadata", "name", "s",
                               "resourceVersion", "7");
    char *text = NULL;
    size_t len = 0;
    struct kp_error err;
    assert_int_equal(kp_object_encode(object, &text, &len, &err), KP_OK);
    assert_null(strstr(text, "resourceVersion")); /* the store's revision is the truth */
    /* The caller's object keeps its resourceVersion. */
    assert_string_equal(kp_meta_str(object, "resourceVersion"), "7");
    json_t *decoded = kp_object_decode(text, len, 99);
    assert_string_equal(kp_meta_str(decoded, "resourceVersion"), "99");
    assert_null(kp_object_decode("[1]", 3, 1));
    assert_null(kp_object_decode("{", 1, 1));
    free(text);
    json_decref(decoded);
    json_decref(object);
    char uid[40], other[40];
    kp_new_uid(uid, sizeof(uid));
    kp_new_uid(other, sizeof(other));
    assert_int_equal(strlen(uid), 36);
    assert_int_equal(uid[14], '4');
    assert_string_not_equal(uid, other);
}

static void test_status_object(void **state)
{
    (void)state;
    json_t *status = kp_status_object(404, "NotFound", "secrets \"x\" not found", "x", "",
                                      "secrets");
    assert_string_equal(json_string_value(json_object_get(status, "status")), "Failure");
    assert_int_equal(json_integer_value(json_object_get(status, "code")), 404);
    json_t *details = json_object_get(status, "details");
    assert_string_equal(json_string_value(json_object_get(details, "name")), "x");
    assert_string_equal(json_string_value(json_object_get(details, "kind")), "secrets");
    assert_null(json_object_get(details, "group"));
    json_decref(status);
    status = kp_status_object(201, "", "", NULL, NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(status, "status")), "Success");
    assert_null(json_object_get(status, "reason"));
    assert_null(json_object_get(status, "details"));
    json_decref(status);
}

/* Accept negotiation: q values, as=Table only in JSON, protobuf when preferred, and whether a
 * JSON answer remains acceptable for the protobuf fallback. */
static void test_accept(void **state)
{
    (void)state;
    static const struct {
        const char *accept;
        bool ok;
        enum kp_encoding encoding;
        bool table, json;
    } cases[] = {
        {NULL, true, KP_ENCODING_JSON, false, true},
        {"", true, KP_ENCODING_JSON, false, true},
        {"application/json", true, KP_ENCODING_JSON, false, true},
        {"*/*", true, KP_ENCODING_JSON, false, true},
        {"application/vnd.kubernetes.protobuf,application/json", true, KP_ENCODING_PROTOBUF,
         false, true},
        {"application/vnd.kubernetes.protobuf", true, KP_ENCODING_PROTOBUF, false, false},
        {"Application/VND.Kubernetes.Protobuf ; q=1", true, KP_ENCODING_PROTOBUF, false, false},
        {"application/json;q=0.5, application/vnd.kubernetes.protobuf;q=0.9", true,
         KP_ENCODING_PROTOBUF, false, true},
        {"application/vnd.kubernetes.protobuf;q=0.1, application/json", true, KP_ENCODING_JSON,
         false, true},
        {"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
         "g=meta.k8s.io,application/json",
         true, KP_ENCODING_JSON, true, true},
        {"application/json;as=Table;v=v1;g=meta.k8s.io", true, KP_ENCODING_JSON, true, false},
        {"application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io", false,
         KP_ENCODING_JSON, false, false},
        {"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
         true, KP_ENCODING_JSON, false, true},
        {"application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", false, KP_ENCODING_JSON,
         false, false},
        {"application/yaml", false, KP_ENCODING_JSON, false, false},
        {"application/json;q=0", false, KP_ENCODING_JSON, false, false},
        {"text/html, application/json", true, KP_ENCODING_JSON, false, true},
        {",,;", false, KP_ENCODING_JSON, false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum kp_encoding encoding;
        bool table, json;
        bool ok = kp_accept_choose(cases[i].accept, &encoding, &table, &json);
        if (ok != cases[i].ok || encoding != cases[i].encoding || table != cases[i].table ||
            json != cases[i].json)
            fail_msg("Accept \"%s\": got ok=%d encoding=%d table=%d json=%d",
                     cases[i].accept ? cases[i].accept : "(none)", ok, encoding, table, json);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_info),  cmocka_unit_test(test_request_info_refused),
        cmocka_unit_test(test_names),         cmocka_unit_test(test_resource_table),
        cmocka_unit_test(test_field_values),  cmocka_unit_test(test_table),
        cmocka_unit_test(test_forbidden_message), cmocka_unit_test(test_object_codec),
        cmocka_unit_test(test_status_object), cmocka_unit_test(test_accept),
        cmocka_unit_test(test_table_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
