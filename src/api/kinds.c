/*
 * The kinds' hooks: defaults, validation and update rules (kube-apiserver's per-kind
 * strategies, pkg/registry/<group>/<kind>/strategy.go), and field selector values
 * (pkg/registry/.../strategy.go ToSelectableFields).
 *
 * Validation covers what keeps stored data meaningful and what clients rely on (names, the
 * shapes of the fields kpki reads, immutable fields). It is not the full OpenAPI validation of
 * upstream: unknown fields are kept as sent (docs/api.md lists the differences).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/kinds.h"
#include "crypto/crypto.h"

/* ---- shared helpers ---- */

static enum kp_result invalid(struct kp_error *err, const char *field, const char *fmt, ...)
    KP_PRINTF(3, 4);
static enum kp_result invalid(struct kp_error *err, const char *field, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return kp_error_set(err, KP_ERR_INVALID, "%s: %s", field, detail);
}

static const char *str_at(const json_t *object, const char *a, const char *b)
{
    const json_t *v = json_object_get(object, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

/* Keeps old's value of `field` in object (what an update of the main resource may not
 * change: status, for kinds with a status subresource). */
static void keep_field(json_t *object, const json_t *old, const char *field)
{
    json_t *value = json_object_get(old, field);
    if (value)
        json_object_set(object, field, value);
    else
        json_object_del(object, field);
}

static bool json_string_map(const json_t *value)
{
    if (!value || json_is_null(value))
        return true;
    if (!json_is_object(value))
        return false;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)value, key, v) {
        if (!json_is_string(v))
            return false;
    }
    return true;
}

/* A ConfigMap or Secret key: [-._a-zA-Z0-9]+, at most 253, not "." or "..". */
static bool config_key_valid(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > 253 || strcmp(key, ".") == 0 || strcmp(key, "..") == 0)
        return false;
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

static enum kp_result check_name(const json_t *object, const char *(*rule)(const char *),
                                 struct kp_error *err)
{
    const char *name = kp_meta_str(object, "name");
    const char *why = name ? rule(name) : "name is required";
    if (why)
        return invalid(err, "metadata.name", "Invalid value: \"%s\": %s", name ? name : "", why);
    return KP_OK;
}

static enum kp_result subdomain_name(struct kp_call *call, json_t *object, struct kp_error *err)
{
    (void)call;
    return check_name(object, kp_name_dns1123_subdomain, err);
}

static enum kp_result keep_status(struct kp_call *call, json_t *object, const json_t *old,
                                  struct kp_error *err)
{
    (void)call;
    (void)err;
    keep_field(object, old, "status");
    return KP_OK;
}

/* ---- Namespace ---- */

static enum kp_result namespace_create(struct kp_call *call, json_t *object, struct kp_error *err)
{
    (void)call;
    enum kp_result rc = check_name(object, kp_name_dns1123_label, err);
    if (rc != KP_OK)
        return rc;
    json_t *spec = json_object_get(object, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(object, "spec", spec);
    }
    if (!json_object_get(spec, "finalizers"))
        json_object_set_new(spec, "finalizers", json_pack("[s]", "kubernetes"));
    json_object_set_new(object, "status", json_pack("{s:s}", "phase", "Active"));
    return KP_OK;
}

static enum kp_result namespace_update(struct kp_call *call, json_t *object, const json_t *old,
                                       struct kp_error *err)
{
    (void)call;
    (void)err;
    keep_field(object, old, "spec");
    keep_field(object, old, "status");
    return KP_OK;
}

static const char *namespace_field(const json_t *object, const char *key, char *buf, size_t size)
{
    (void)buf;
    (void)size;
    return strcmp(key, "status.phase") == 0 ? str_at(object, "status", "phase") : NULL;
}

const struct kp_kind_hooks kp_namespace_hooks = {namespace_create, namespace_update,
                                                 namespace_field, NULL, "spec,status"};

/* ---- Node ---- */

static const char *node_field(const json_t *object, const char *key, char *buf, size_t size)
{
    if (strcmp(key, "spec.unschedulable") != 0)
        return NULL;
    snprintf(buf, size, "%s",
             json_is_true(json_object_get(json_object_get(object, "spec"), "unschedulable"))
                 ? "true"
                 : "false");
    return buf;
}

const struct kp_kind_hooks kp_node_hooks = {subdomain_name, keep_status, node_field, NULL,
                                            "spec,status"};

/* ---- Pod ---- */

static enum kp_result check_containers(const json_t *spec, const char *field, bool required,
                                       struct kp_error *err)
{
    const json_t *containers = json_object_get(spec, field);
    if (!containers && !required)
        return KP_OK;
    if (!json_is_array(containers) || (required && json_array_size(containers) == 0))
        return invalid(err, field[0] == 'c' ? "spec.containers" : "spec.initContainers",
                       "Required value");
    size_t i;
    const json_t *c;
    json_array_foreach(containers, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        char where[96];
        snprintf(where, sizeof(where), "spec.%s[%zu].name", field, i);
        if (!name || kp_name_dns1123_label(name))
            return invalid(err, where, "Invalid value: \"%s\": %s", name ? name : "",
                           name ? kp_name_dns1123_label(name) : "Required value");
        snprintf(where, sizeof(where), "spec.%s[%zu].image", field, i);
        if (!json_is_string(json_object_get(c, "image")))
            return invalid(err, where, "Required value");
    }
    return KP_OK;
}

static void set_default(json_t *object, const char *key, json_t *value)
{
    if (!json_object_get(object, key))
        json_object_set_new(object, key, value);
    else
        json_decref(value);
}

static enum kp_result pod_create(struct kp_call *call, json_t *object, struct kp_error *err)
{
    enum kp_result rc = subdomain_name(call, object, err);
    json_t *spec = json_object_get(object, "spec");
    if (rc == KP_OK && !json_is_object(spec))
        rc = invalid(err, "spec", "Required value");
    if (rc == KP_OK)
        rc = check_containers(spec, "containers", true, err);
    if (rc == KP_OK)
        rc = check_containers(spec, "initContainers", false, err);
    if (rc != KP_OK)
        return rc;
    const json_t *node = json_object_get(spec, "nodeName");
    if (node && (!json_is_string(node) || kp_name_dns1123_subdomain(json_string_value(node))))
        return invalid(err, "spec.nodeName", "Invalid value");
    set_default(spec, "restartPolicy", json_string("Always"));
    set_default(spec, "dnsPolicy", json_string("ClusterFirst"));
    set_default(spec, "schedulerName", json_string("default-scheduler"));
    set_default(spec, "terminationGracePeriodSeconds", json_integer(30));
    set_default(spec, "enableServiceLinks", json_true());
    set_default(spec, "priority", json_integer(0));
    /* The ServiceAccount admission plugin's default (the token volume it would also add comes
     * with the kubelet issue). */
    if (!json_object_get(spec, "serviceAccountName"))
        json_object_set_new(spec, "serviceAccountName",
                            json_string(str_at(spec, "serviceAccount", NULL)
                                            ? str_at(spec, "serviceAccount", NULL)
                                            : "default"));
    json_object_set_new(object, "status", json_pack("{s:s, s:s}", "phase", "Pending",
                                                    "qosClass", "BestEffort"));
    return KP_OK;
}

/* Upstream lets an update change only container images, activeDeadlineSeconds, tolerations
 * (additions) and terminationGracePeriodSeconds; kpki compares the spec with those removed. */
static enum kp_result pod_update(struct kp_call *call, json_t *object, const json_t *old,
                                 struct kp_error *err)
{
    (void)call;
    keep_field(object, old, "status");
    json_t *a = json_deep_copy(json_object_get(object, "spec"));
    json_t *b = json_deep_copy(json_object_get(old, "spec"));
    const char *mutable_fields[] = {"activeDeadlineSeconds", "tolerations",
                                    "terminationGracePeriodSeconds"};
    for (size_t i = 0; i < sizeof(mutable_fields) / sizeof(mutable_fields[0]); i++) {
        json_object_del(a, mutable_fields[i]);
        json_object_del(b, mutable_fields[i]);
    }
    const char *lists[] = {"containers", "initContainers"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(a, lists[l]), i, c) json_object_del(c, "image");
        json_array_foreach(json_object_get(b, lists[l]), i, c) json_object_del(c, "image");
    }
    bool same = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (!same)
        return invalid(err, "spec",
                       "Forbidden: pod updates may not change fields other than "
                       "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                       "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to "
                       "existing tolerations), `spec.terminationGracePeriodSeconds` (allow it "
                       "to be set to 1 if it was previously negative)");
    return KP_OK;
}

static const char *pod_field(const json_t *object, const char *key, char *buf, size_t size)
{
    const json_t *spec = json_object_get(object, "spec");
    if (strcmp(key, "spec.hostNetwork") == 0) {
        snprintf(buf, size, "%s",
                 json_is_true(json_object_get(spec, "hostNetwork")) ? "true" : "false");
        return buf;
    }
    if (strncmp(key, "spec.", 5) == 0) {
        const char *v = str_at(spec, key + 5, NULL);
        /* Unset string fields select as "" (upstream's fields.Set holds them empty). */
        return v ? v : "";
    }
    if (strncmp(key, "status.", 7) == 0) {
        const char *v = str_at(json_object_get(object, "status"), key + 7, NULL);
        return v ? v : "";
    }
    return NULL;
}

/* Graceful deletion (pkg/registry/core/pod/strategy.go CheckGracefulDelete): a pod that a
 * node runs gets a deletionTimestamp and its kubelet finishes the deletion; an unscheduled or
 * finished pod, or grace 0, goes at once. */
static bool pod_delete_now(struct kp_call *call, const json_t *object, int64_t grace)
{
    (void)call;
    const char *node = str_at(object, "spec", "nodeName");
    const char *phase = str_at(object, "status", "phase");
    if (grace == 0 || !node || !*node)
        return true;
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

const struct kp_kind_hooks kp_pod_hooks = {pod_create, pod_update, pod_field, pod_delete_now,
                                           "spec,status"};

/* ---- Secret and ConfigMap ---- */

#define DATA_MAX (1024 * 1024) /* upstream's MaxSecretSize, also ConfigMap's total limit */

/* Moves stringData into data (base64), checks keys, values and the total size. */
static enum kp_result secret_data(json_t *object, struct kp_error *err)
{
    json_t *data = json_object_get(object, "data");
    if (data && json_is_null(data)) {
        json_object_del(object, "data");
        data = NULL;
    }
    if (data && !json_string_map(data))
        return invalid(err, "data", "Invalid value: values must be base64 strings");
    json_t *string_data = json_object_get(object, "stringData");
    if (string_data && !json_string_map(string_data))
        return invalid(err, "stringData", "Invalid value: values must be strings");
    if (string_data && json_object_size(string_data)) {
        if (!data) {
            data = json_object();
            json_object_set_new(object, "data", data);
        }
        const char *key;
        json_t *value;
        json_object_foreach(string_data, key, value) {
            char *encoded = NULL;
            size_t encoded_len = 0;
            enum kp_result rc = kp_base64_encode(json_string_value(value),
                                                 json_string_length(value), &encoded,
                                                 &encoded_len, err);
            if (rc != KP_OK)
                return rc;
            json_object_set_new(data, key, json_string(encoded));
            free(encoded);
        }
    }
    json_object_del(object, "stringData");
    size_t total = 0;
    const char *key;
    json_t *value;
    json_object_foreach(data, key, value) {
        char field[300];
        snprintf(field, sizeof(field), "data[%s]", key);
        if (!config_key_valid(key))
            return invalid(err, field,
                           "Invalid value: a valid config key must consist of alphanumeric "
                           "characters, '-', '_' or '.'");
        unsigned char *decoded = NULL;
        size_t len = 0;
        const char *text = json_string_value(value);
        if (kp_base64_decode(text, strlen(text), &decoded, &len, NULL) != KP_OK)
            return invalid(err, field, "Invalid value: illegal base64 data");
        kp_secret_free(decoded, len);
        total += len;
    }
    if (total > DATA_MAX)
        return invalid(err, "data", "Too long: must have at most %d bytes", DATA_MAX);
    return KP_OK;
}

static enum kp_result secret_type_rules(const json_t *object, struct kp_error *err)
{
    const char *type = str_at(object, "type", NULL);
    const json_t *data = json_object_get(object, "data");
    if (strcmp(type, "kubernetes.io/service-account-token") == 0 &&
        !str_at(json_object_get(kp_meta(object), "annotations"),
                "kubernetes.io/service-account.name", NULL))
        return invalid(err, "metadata.annotations[kubernetes.io/service-account.name]",
                       "Required value");
    if (strcmp(type, "kubernetes.io/tls") == 0 &&
        (!json_object_get(data, "tls.crt") || !json_object_get(data, "tls.key")))
        return invalid(err, "data[tls.crt]", "Required value (with data[tls.key])");
    return KP_OK;
}

static enum kp_result secret_create(struct kp_call *call, json_t *object, struct kp_error *err)
{
    enum kp_result rc = subdomain_name(call, object, err);
    const json_t *type = json_object_get(object, "type");
    if (rc == KP_OK && type && !json_is_string(type))
        rc = invalid(err, "type", "Invalid value: must be a string");
    if (rc == KP_OK && (!type || !json_string_length(type)))
        json_object_set_new(object, "type", json_string("Opaque"));
    if (rc == KP_OK)
        rc = secret_data(object, err);
    if (rc == KP_OK)
        rc = secret_type_rules(object, err);
    return rc;
}

static enum kp_result immutable_data(const json_t *object, const json_t *old,
                                     struct kp_error *err)
{
    if (!json_is_true(json_object_get(old, "immutable")))
        return KP_OK;
    if (!json_is_true(json_object_get(object, "immutable")))
        return invalid(err, "immutable", "Forbidden: field is immutable when `immutable` is set");
    if (!json_equal(json_object_get(object, "data"), json_object_get(old, "data")) ||
        !json_equal(json_object_get(object, "binaryData"), json_object_get(old, "binaryData")))
        return invalid(err, "data", "Forbidden: field is immutable when `immutable` is set");
    return KP_OK;
}

static enum kp_result secret_update(struct kp_call *call, json_t *object, const json_t *old,
                                    struct kp_error *err)
{
    (void)call;
    const json_t *type = json_object_get(object, "type");
    if (!type || !json_string_length(type))
        json_object_set(object, "type", json_object_get(old, "type"));
    if (!json_equal(json_object_get(object, "type"), json_object_get(old, "type")))
        return invalid(err, "type", "Invalid value: field is immutable");
    enum kp_result rc = secret_data(object, err);
    if (rc == KP_OK)
        rc = secret_type_rules(object, err);
    if (rc == KP_OK)
        rc = immutable_data(object, old, err);
    return rc;
}

static const char *secret_field(const json_t *object, const char *key, char *buf, size_t size)
{
    (void)buf;
    (void)size;
    return strcmp(key, "type") == 0 ? str_at(object, "type", NULL) : NULL;
}

const struct kp_kind_hooks kp_secret_hooks = {secret_create, secret_update, secret_field, NULL,
                                              "data,stringData,type,immutable"};

static enum kp_result configmap_data(const json_t *object, struct kp_error *err)
{
    const json_t *data = json_object_get(object, "data");
    const json_t *binary = json_object_get(object, "binaryData");
    if (!json_string_map(data))
        return invalid(err, "data", "Invalid value: values must be strings");
    if (!json_string_map(binary))
        return invalid(err, "binaryData", "Invalid value: values must be base64 strings");
    size_t total = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)data, key, value) {
        char field[300];
        snprintf(field, sizeof(field), "data[%s]", key);
        if (!config_key_valid(key))
            return invalid(err, field, "Invalid value: a valid config key must consist of "
                                       "alphanumeric characters, '-', '_' or '.'");
        if (json_object_get(binary, key))
            return invalid(err, field, "Invalid value: duplicate of key present in binaryData");
        total += json_string_length(value);
    }
    json_object_foreach((json_t *)binary, key, value) {
        char field[300];
        snprintf(field, sizeof(field), "binaryData[%s]", key);
        if (!config_key_valid(key))
            return invalid(err, field, "Invalid value: a valid config key must consist of "
                                       "alphanumeric characters, '-', '_' or '.'");
        total += json_string_length(value) * 3 / 4;
    }
    if (total > DATA_MAX)
        return invalid(err, "data", "Too long: must have at most %d bytes", DATA_MAX);
    return KP_OK;
}

static enum kp_result configmap_create(struct kp_call *call, json_t *object, struct kp_error *err)
{
    enum kp_result rc = subdomain_name(call, object, err);
    return rc == KP_OK ? configmap_data(object, err) : rc;
}

static enum kp_result configmap_update(struct kp_call *call, json_t *object, const json_t *old,
                                       struct kp_error *err)
{
    (void)call;
    enum kp_result rc = configmap_data(object, err);
    return rc == KP_OK ? immutable_data(object, old, err) : rc;
}

const struct kp_kind_hooks kp_configmap_hooks = {configmap_create, configmap_update, NULL, NULL,
                                                 "data,binaryData,immutable"};

/* ---- ServiceAccount, Event, Lease ---- */

const struct kp_kind_hooks kp_serviceaccount_hooks = {
    subdomain_name, NULL, NULL, NULL, "secrets,imagePullSecrets,automountServiceAccountToken"};

static const char *event_field(const json_t *object, const char *key, char *buf, size_t size)
{
    (void)buf;
    (void)size;
    if (strncmp(key, "involvedObject.", 15) == 0) {
        const char *v = str_at(object, "involvedObject", key + 15);
        return v ? v : "";
    }
    if (strcmp(key, "source") == 0) {
        const char *v = str_at(object, "source", "component");
        return v ? v : "";
    }
    const char *v = str_at(object, key, NULL);
    return v ? v : "";
}

const struct kp_kind_hooks kp_event_hooks = {
    subdomain_name, NULL, event_field, NULL,
    "involvedObject,reason,message,source,firstTimestamp,lastTimestamp,count,type,eventTime,"
    "series,action,related,reportingComponent,reportingInstance"};
const struct kp_kind_hooks kp_lease_hooks = {subdomain_name, NULL, NULL, NULL, "spec"};

/* ---- RBAC ---- */

static enum kp_result check_rules(const json_t *object, struct kp_error *err)
{
    const json_t *rules = json_object_get(object, "rules");
    if (rules && !json_is_null(rules) && !json_is_array(rules))
        return invalid(err, "rules", "Invalid value: must be a list");
    size_t i;
    const json_t *rule;
    json_array_foreach(rules, i, rule) {
        char field[64];
        snprintf(field, sizeof(field), "rules[%zu]", i);
        const json_t *verbs = json_object_get(rule, "verbs");
        if (!json_is_array(verbs) || json_array_size(verbs) == 0)
            return invalid(err, field, "verbs: Required value: verbs must contain at least one "
                                       "value");
        bool urls = json_array_size(json_object_get(rule, "nonResourceURLs")) > 0;
        bool resources = json_array_size(json_object_get(rule, "resources")) > 0;
        if (urls && resources)
            return invalid(err, field, "nonResourceURLs: Invalid value: rules cannot apply to "
                                       "both regular resources and non-resource URLs");
        if (!urls && !resources)
            return invalid(err, field, "resources: Required value: resource rules must supply "
                                       "at least one resource");
        if (resources && json_array_size(json_object_get(rule, "apiGroups")) == 0)
            return invalid(err, field, "apiGroups: Required value: resource rules must supply "
                                       "at least one api group");
    }
    return KP_OK;
}

static enum kp_result check_binding(struct kp_call *call, const json_t *object,
                                    struct kp_error *err)
{
    const json_t *ref = json_object_get(object, "roleRef");
    const char *kind = str_at(ref, "kind", NULL);
    const char *group = str_at(ref, "apiGroup", NULL);
    const char *name = str_at(ref, "name", NULL);
    bool cluster = strcmp(call->resource->kind, "ClusterRoleBinding") == 0;
    if (!group || strcmp(group, "rbac.authorization.k8s.io") != 0)
        return invalid(err, "roleRef.apiGroup", "Unsupported value: \"%s\": supported values: "
                                                "\"rbac.authorization.k8s.io\"",
                       group ? group : "");
    if (!kind || (strcmp(kind, "ClusterRole") != 0 && (cluster || strcmp(kind, "Role") != 0)))
        return invalid(err, "roleRef.kind", "Unsupported value: \"%s\": supported values: %s",
                       kind ? kind : "", cluster ? "\"ClusterRole\"" : "\"Role\", \"ClusterRole\"");
    if (!name || kp_name_path_segment(name))
        return invalid(err, "roleRef.name", "Required value");
    const json_t *subjects = json_object_get(object, "subjects");
    size_t i;
    const json_t *s;
    json_array_foreach(subjects, i, s) {
        char field[64];
        snprintf(field, sizeof(field), "subjects[%zu]", i);
        const char *skind = str_at(s, "kind", NULL);
        const char *sname = str_at(s, "name", NULL);
        if (!sname || !*sname)
            return invalid(err, field, "name: Required value");
        if (!skind || (strcmp(skind, "User") != 0 && strcmp(skind, "Group") != 0 &&
                       strcmp(skind, "ServiceAccount") != 0))
            return invalid(err, field, "kind: Unsupported value: \"%s\": supported values: "
                                       "\"ServiceAccount\", \"User\", \"Group\"",
                           skind ? skind : "");
        if (strcmp(skind, "ServiceAccount") == 0 && cluster && !str_at(s, "namespace", NULL))
            return invalid(err, field, "namespace: Required value");
    }
    return KP_OK;
}

static bool is_binding(const struct kp_call *call)
{
    return strstr(call->resource->kind, "Binding") != NULL;
}

static enum kp_result rbac_create(struct kp_call *call, json_t *object, struct kp_error *err)
{
    enum kp_result rc = check_name(object, kp_name_path_segment, err);
    if (rc != KP_OK)
        return rc;
    return is_binding(call) ? check_binding(call, object, err) : check_rules(object, err);
}

static enum kp_result rbac_update(struct kp_call *call, json_t *object, const json_t *old,
                                  struct kp_error *err)
{
    if (is_binding(call) &&
        !json_equal(json_object_get(object, "roleRef"), json_object_get(old, "roleRef")))
        return invalid(err, "roleRef", "Invalid value: cannot change roleRef");
    return is_binding(call) ? check_binding(call, object, err) : check_rules(object, err);
}

const struct kp_kind_hooks kp_clusterrole_hooks = {rbac_create, rbac_update, NULL, NULL,
                                                   "rules,aggregationRule"};
const struct kp_kind_hooks kp_role_hooks = {rbac_create, rbac_update, NULL, NULL, "rules"};
const struct kp_kind_hooks kp_binding_hooks = {rbac_create, rbac_update, NULL, NULL,
                                               "subjects,roleRef"};

/* ---- field selectors ---- */

bool kp_field_supported(const struct kp_resource *resource, const char *key)
{
    if (strcmp(key, "metadata.name") == 0 ||
        (resource->namespaced && strcmp(key, "metadata.namespace") == 0))
        return true;
    size_t len = strlen(key);
    for (const char *p = resource->field_labels; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, key, n) == 0)
            return true;
        p = end ? end + 1 : p + n;
    }
    return false;
}

const char *kp_field_value(const struct kp_resource *resource, const json_t *object,
                           const char *key, char *buf, size_t size)
{
    if (strcmp(key, "metadata.name") == 0)
        return kp_meta_str(object, "name");
    if (strcmp(key, "metadata.namespace") == 0) {
        const char *ns = kp_meta_str(object, "namespace");
        return ns ? ns : "";
    }
    if (resource->hooks && resource->hooks->field)
        return resource->hooks->field(object, key, buf, size);
    return NULL;
}

struct field_context {
    const struct kp_resource *resource;
    const json_t *object;
    char buf[64];
};

static const char *field_lookup(void *context, const char *key)
{
    struct field_context *fc = context;
    return kp_field_value(fc->resource, fc->object, key, fc->buf, sizeof(fc->buf));
}

bool kp_object_matches(const struct kp_call *call, const json_t *object)
{
    if (call->has_label_selector &&
        !kp_selector_matches_labels(&call->label_selector,
                                    json_object_get(kp_meta(object), "labels")))
        return false;
    if (call->has_field_selector) {
        struct field_context fc = {.resource = call->resource, .object = object};
        if (!kp_selector_matches_fields(&call->field_selector, field_lookup, &fc))
            return false;
    }
    return true;
}
