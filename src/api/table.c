/*
 * Server-side printing: lists and watch events as meta.k8s.io/v1 Tables, which is what
 * `kubectl get` asks for (Accept: application/json;as=Table;v=v1;g=meta.k8s.io). The columns
 * and cell texts follow kube-apiserver's printers (pkg/printers/internalversion/printers.go);
 * the Age cells use apimachinery's duration.HumanDuration.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/kinds.h"
#include "core/duration.h"

/* k8s.io/apimachinery/pkg/util/duration.HumanDuration, for whole seconds. */
static void human_duration(int64_t seconds, char *out, size_t size)
{
    if (seconds < -1) {
        snprintf(out, size, "<invalid>");
        return;
    }
    if (seconds < 0)
        seconds = 0;
    int64_t minutes = seconds / 60, hours = seconds / 3600, days = hours / 24;
    if (seconds < 120)
        snprintf(out, size, "%llds", (long long)seconds);
    else if (minutes < 10 && seconds % 60)
        snprintf(out, size, "%lldm%llds", (long long)minutes, (long long)(seconds % 60));
    else if (minutes < 180)
        snprintf(out, size, "%lldm", (long long)minutes);
    else if (hours < 8 && minutes % 60)
        snprintf(out, size, "%lldh%lldm", (long long)hours, (long long)(minutes % 60));
    else if (hours < 48)
        snprintf(out, size, "%lldh", (long long)hours);
    else if (hours < 24 * 8 && hours % 24)
        snprintf(out, size, "%lldd%lldh", (long long)days, (long long)(hours % 24));
    else if (hours < 24 * 365 * 2)
        snprintf(out, size, "%lldd", (long long)days);
    else if (hours < 24 * 365 * 8 && days % 365)
        snprintf(out, size, "%lldy%lldd", (long long)(days / 365), (long long)(days % 365));
    else
        snprintf(out, size, "%lldy", (long long)(days / 365));
}

static json_t *cell_name(const json_t *o, int64_t now)
{
    (void)now;
    const char *name = kp_meta_str(o, "name");
    return json_string(name ? name : "");
}

static json_t *cell_age(const json_t *o, int64_t now)
{
    char text[32];
    if (!kp_meta_str(o, "creationTimestamp"))
        return json_string("<unknown>");
    human_duration(kp_object_age(o, now), text, sizeof(text));
    return json_string(text);
}

static json_t *cell_created_at(const json_t *o, int64_t now)
{
    (void)now;
    const char *ts = kp_meta_str(o, "creationTimestamp");
    return json_string(ts ? ts : "");
}

static json_t *string_or(const json_t *value, const char *fallback)
{
    const char *s = json_string_value(value);
    return json_string(s && *s ? s : fallback);
}

static json_t *cell_count(const json_t *map)
{
    return json_integer((json_int_t)json_object_size(map));
}

/* Namespace */

const struct kp_column kp_namespace_columns[3] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Status", "string", "", 0, NULL, "status.phase", ""},
    {"Age", "string", "", 0, cell_age, NULL, NULL},
};

/* Node */
static json_t *node_status(const json_t *o, int64_t now)
{
    (void)now;
    const char *ready = "Unknown";
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(json_object_get(o, "status"), "conditions"), i, c) {
        const char *type = json_string_value(json_object_get(c, "type"));
        if (type && strcmp(type, "Ready") == 0) {
            const char *status = json_string_value(json_object_get(c, "status"));
            ready = status && strcmp(status, "True") == 0 ? "Ready" : "NotReady";
            if (status && strcmp(status, "Unknown") == 0)
                ready = "Unknown";
        }
    }
    char text[64];
    bool unschedulable =
        json_is_true(json_object_get(json_object_get(o, "spec"), "unschedulable"));
    snprintf(text, sizeof(text), "%s%s", ready, unschedulable ? ",SchedulingDisabled" : "");
    return json_string(text);
}

static json_t *node_roles(const json_t *o, int64_t now)
{
    (void)now;
    char roles[512] = "";
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(kp_meta(o), "labels"), key, value) {
        const char *role = NULL;
        if (strncmp(key, "node-role.kubernetes.io/", 24) == 0)
            role = key + 24;
        else if (strcmp(key, "kubernetes.io/role") == 0)
            role = json_string_value(value);
        if (role && *role && n + strlen(role) + 2 < sizeof(roles))
            n += (size_t)snprintf(roles + n, sizeof(roles) - n, "%s%s", n ? "," : "", role);
    }
    return json_string(n ? roles : "<none>");
}


/* The first address of a type ("InternalIP", "ExternalIP"), or <none>. */
static json_t *node_address(const json_t *o, const char *type)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(json_object_get(o, "status"), "addresses"), i, a) {
        const char *t = json_string_value(json_object_get(a, "type"));
        const char *address = json_string_value(json_object_get(a, "address"));
        if (t && address && strcmp(t, type) == 0)
            return json_string(address);
    }
    return json_string("<none>");
}

static json_t *node_internal_ip(const json_t *o, int64_t now)
{
    (void)now;
    return node_address(o, "InternalIP");
}

static json_t *node_external_ip(const json_t *o, int64_t now)
{
    (void)now;
    return node_address(o, "ExternalIP");
}

const struct kp_column kp_node_columns[10] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Status", "string", "", 0, node_status, NULL, NULL},
    {"Roles", "string", "", 0, node_roles, NULL, NULL},
    {"Age", "string", "", 0, cell_age, NULL, NULL},
    {"Version", "string", "", 0, NULL, "status.nodeInfo.kubeletVersion", ""},
    {"Internal-IP", "string", "", 1, node_internal_ip, NULL, NULL},
    {"External-IP", "string", "", 1, node_external_ip, NULL, NULL},
    {"OS-Image", "string", "", 1, NULL, "status.nodeInfo.osImage", "<unknown>"},
    {"Kernel-Version", "string", "", 1, NULL, "status.nodeInfo.kernelVersion", "<unknown>"},
    {"Container-Runtime", "string", "", 1, NULL, "status.nodeInfo.containerRuntimeVersion",
     "<unknown>"},
};

/* Pod */
static json_t *pod_ready(const json_t *o, int64_t now)
{
    (void)now;
    size_t total = json_array_size(json_object_get(json_object_get(o, "spec"), "containers"));
    size_t ready = 0, i;
    const json_t *cs;
    json_array_foreach(json_object_get(json_object_get(o, "status"), "containerStatuses"), i, cs)
        if (json_is_true(json_object_get(cs, "ready")))
            ready++;
    char text[32];
    snprintf(text, sizeof(text), "%zu/%zu", ready, total);
    return json_string(text);
}

static json_t *pod_status(const json_t *o, int64_t now)
{
    (void)now;
    if (kp_meta_str(o, "deletionTimestamp"))
        return json_string("Terminating");
    const json_t *status = json_object_get(o, "status");
    const char *reason = json_string_value(json_object_get(status, "reason"));
    return string_or(reason ? json_object_get(status, "reason") : json_object_get(status, "phase"),
                     "Unknown");
}

static json_t *pod_restarts(const json_t *o, int64_t now)
{
    (void)now;
    json_int_t restarts = 0;
    size_t i;
    const json_t *cs;
    json_array_foreach(json_object_get(json_object_get(o, "status"), "containerStatuses"), i, cs)
        restarts += json_integer_value(json_object_get(cs, "restartCount"));
    return json_integer(restarts);
}



/* "<true>/<all>" of the pod's readiness gates, or <none> without any. */
static json_t *pod_readiness_gates(const json_t *o, int64_t now)
{
    (void)now;
    const json_t *gates = json_object_get(json_object_get(o, "spec"), "readinessGates");
    if (!json_array_size(gates))
        return json_string("<none>");
    size_t ready = 0, i, j;
    const json_t *gate, *c;
    json_array_foreach(gates, i, gate) {
        const char *type = json_string_value(json_object_get(gate, "conditionType"));
        json_array_foreach(json_object_get(json_object_get(o, "status"), "conditions"), j, c) {
            const char *ctype = json_string_value(json_object_get(c, "type"));
            const char *status = json_string_value(json_object_get(c, "status"));
            if (type && ctype && status && strcmp(type, ctype) == 0 && strcmp(status, "True") == 0)
                ready++;
        }
    }
    char text[48];
    snprintf(text, sizeof(text), "%zu/%zu", ready, json_array_size(gates));
    return json_string(text);
}

const struct kp_column kp_pod_columns[9] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Ready", "string", "", 0, pod_ready, NULL, NULL},
    {"Status", "string", "", 0, pod_status, NULL, NULL},
    {"Restarts", "string", "", 0, pod_restarts, NULL, NULL},
    {"Age", "string", "", 0, cell_age, NULL, NULL},
    {"IP", "string", "", 1, NULL, "status.podIP", "<none>"},
    {"Node", "string", "", 1, NULL, "spec.nodeName", "<none>"},
    {"Nominated Node", "string", "", 1, NULL, "status.nominatedNodeName", "<none>"},
    {"Readiness Gates", "string", "", 1, pod_readiness_gates, NULL, NULL},
};

/* Secret, ConfigMap, ServiceAccount */

static json_t *data_count(const json_t *o, int64_t now)
{
    (void)now;
    return cell_count(json_object_get(o, "data"));
}

static json_t *configmap_count(const json_t *o, int64_t now)
{
    (void)now;
    return json_integer((json_int_t)(json_object_size(json_object_get(o, "data")) +
                                     json_object_size(json_object_get(o, "binaryData"))));
}

static json_t *sa_secrets(const json_t *o, int64_t now)
{
    (void)now;
    return json_integer((json_int_t)json_array_size(json_object_get(o, "secrets")));
}

const struct kp_column kp_secret_columns[4] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Type", "string", "", 0, NULL, "type", ""},
    {"Data", "string", "", 0, data_count, NULL, NULL},
    {"Age", "string", "", 0, cell_age, NULL, NULL},
};

const struct kp_column kp_configmap_columns[3] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Data", "string", "", 0, configmap_count, NULL, NULL},
    {"Age", "string", "", 0, cell_age, NULL, NULL},
};

const struct kp_column kp_serviceaccount_columns[3] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Secrets", "string", "", 0, sa_secrets, NULL, NULL},
    {"Age", "string", "", 0, cell_age, NULL, NULL},
};

/* Event */
/* The age of the event's field (lastTimestamp, firstTimestamp), else of its eventTime, else of
 * the object. */
static json_t *event_age(const json_t *o, const char *field, int64_t now)
{
    const char *ts = json_string_value(json_object_get(o, field));
    if (!ts)
        ts = json_string_value(json_object_get(o, "eventTime"));
    int64_t at;
    char text[32];
    if (!ts || kp_time_parse_rfc3339(ts, &at, NULL) != KP_OK)
        return cell_age(o, now);
    human_duration(now - at, text, sizeof(text));
    return json_string(text);
}

static json_t *event_last_seen(const json_t *o, int64_t now)
{
    return event_age(o, "lastTimestamp", now);
}

static json_t *event_object(const json_t *o, int64_t now)
{
    (void)now;
    const json_t *io = json_object_get(o, "involvedObject");
    const char *kind = json_string_value(json_object_get(io, "kind"));
    const char *name = json_string_value(json_object_get(io, "name"));
    char text[512];
    char lower[64] = "";
    for (size_t i = 0; kind && kind[i] && i + 1 < sizeof(lower); i++)
        lower[i] = (char)((kind[i] >= 'A' && kind[i] <= 'Z') ? kind[i] + 32 : kind[i]);
    snprintf(text, sizeof(text), "%s/%s", lower, name ? name : "");
    return json_string(text);
}


/* "component, host" (formatEventSource), or the reporting controller of a new-style event. */
static json_t *event_source(const json_t *o, int64_t now)
{
    (void)now;
    const json_t *source = json_object_get(o, "source");
    const char *component = json_string_value(json_object_get(source, "component"));
    const char *host = json_string_value(json_object_get(source, "host"));
    if (!component || !*component)
        component = json_string_value(json_object_get(o, "reportingComponent"));
    char text[512];
    snprintf(text, sizeof(text), "%s%s%s", component ? component : "",
             host && *host ? ", " : "", host && *host ? host : "");
    return json_string(text);
}

static json_t *event_first_seen(const json_t *o, int64_t now)
{
    return event_age(o, "firstTimestamp", now);
}

static json_t *event_count(const json_t *o, int64_t now)
{
    (void)now;
    const json_t *count = json_object_get(o, "count");
    const json_t *series = json_object_get(json_object_get(o, "series"), "count");
    char text[32];
    snprintf(text, sizeof(text), "%lld",
             (long long)(json_is_integer(series) ? json_integer_value(series)
                                                 : json_integer_value(count)));
    return json_string(text);
}

const struct kp_column kp_event_columns[10] = {
    {"Last Seen", "string", "", 0, event_last_seen, NULL, NULL},
    {"Type", "string", "", 0, NULL, "type", ""},
    {"Reason", "string", "", 0, NULL, "reason", ""},
    {"Object", "string", "", 0, event_object, NULL, NULL},
    {"Subobject", "string", "", 1, NULL, "involvedObject.fieldPath", ""},
    {"Source", "string", "", 1, event_source, NULL, NULL},
    {"Message", "string", "", 0, NULL, "message", ""},
    {"First Seen", "string", "", 1, event_first_seen, NULL, NULL},
    {"Count", "string", "", 1, event_count, NULL, NULL},
    {"Name", "string", "name", 1, cell_name, NULL, NULL},
};

/* Lease */

const struct kp_column kp_lease_columns[3] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Holder", "string", "", 0, NULL, "spec.holderIdentity", ""},
    {"Age", "string", "", 0, cell_age, NULL, NULL},
};

/* RBAC */
static json_t *binding_role(const json_t *o, int64_t now)
{
    (void)now;
    const json_t *ref = json_object_get(o, "roleRef");
    char text[512];
    snprintf(text, sizeof(text), "%s/%s",
             json_string_value(json_object_get(ref, "kind")) ?: "",
             json_string_value(json_object_get(ref, "name")) ?: "");
    return json_string(text);
}

static json_t *subjects_of(const json_t *o, const char *kind)
{
    char text[1024] = "";
    size_t n = 0, i;
    const json_t *s;
    json_array_foreach(json_object_get(o, "subjects"), i, s) {
        const char *k = json_string_value(json_object_get(s, "kind"));
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *ns = json_string_value(json_object_get(s, "namespace"));
        if (!k || !name || strcmp(k, kind) != 0 || n + strlen(name) + 2 >= sizeof(text))
            continue;
        if (strcmp(kind, "ServiceAccount") == 0)
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s/%s", n ? ", " : "",
                                  ns ? ns : "", name);
        else
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s", n ? ", " : "", name);
    }
    return json_string(text);
}

static json_t *binding_users(const json_t *o, int64_t now)
{
    (void)now;
    return subjects_of(o, "User");
}

static json_t *binding_groups(const json_t *o, int64_t now)
{
    (void)now;
    return subjects_of(o, "Group");
}

static json_t *binding_sas(const json_t *o, int64_t now)
{
    (void)now;
    return subjects_of(o, "ServiceAccount");
}

const struct kp_column kp_role_columns[2] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Created At", "date", "", 0, cell_created_at, NULL, NULL},
};

const struct kp_column kp_binding_columns[6] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Role", "string", "", 0, binding_role, NULL, NULL},
    {"Age", "string", "", 0, cell_age, NULL, NULL},
    {"Users", "string", "", 1, binding_users, NULL, NULL},
    {"Groups", "string", "", 1, binding_groups, NULL, NULL},
    {"ServiceAccounts", "string", "", 1, binding_sas, NULL, NULL},
};

static const struct kp_column default_columns[2] = {
    {"Name", "string", "name", 0, cell_name, NULL, NULL},
    {"Created At", "date", "", 0, cell_created_at, NULL, NULL},
};

static json_t *partial_metadata(const json_t *object)
{
    json_t *meta = json_deep_copy(kp_meta(object));
    return json_pack("{s:s, s:s, s:o}", "kind", "PartialObjectMetadata", "apiVersion",
                     "meta.k8s.io/v1", "metadata", meta ? meta : json_object());
}

/* The string at a dotted path ("spec.nodeName"), or NULL. */
static const char *string_at(const json_t *object, const char *path)
{
    char key[64];
    const json_t *value = object;
    for (const char *p = path; value && *p;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        snprintf(key, sizeof(key), "%.*s", (int)n, p);
        value = json_object_get(value, key);
        p = dot ? dot + 1 : p + n;
    }
    return json_string_value(value);
}

static json_t *column_cell(const struct kp_column *column, const json_t *object, int64_t now)
{
    if (column->cell)
        return column->cell(object, now);
    const char *text = string_at(object, column->path);
    return json_string(text && *text ? text : column->fallback);
}

json_t *kp_table_from_items(const struct kp_resource *resource, const json_t *items,
                            const char *resource_version, const char *continue_token,
                            int64_t now)
{
    const struct kp_column *columns = resource->columns ? resource->columns : default_columns;
    size_t count = resource->columns ? resource->column_count : 2;
    json_t *definitions = json_array();
    for (size_t c = 0; c < count; c++)
        json_array_append_new(
            definitions,
            json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", columns[c].name, "type",
                      columns[c].type, "format", columns[c].format, "description",
                      columns[c].name, "priority", columns[c].priority));
    json_t *rows = json_array();
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item) {
        json_t *cells = json_array();
        for (size_t c = 0; c < count; c++)
            json_array_append_new(cells, column_cell(&columns[c], item, now));
        json_array_append_new(rows, json_pack("{s:o, s:o}", "cells", cells, "object",
                                              partial_metadata(item)));
    }
    json_t *metadata = json_object();
    if (resource_version)
        json_object_set_new(metadata, "resourceVersion", json_string(resource_version));
    if (continue_token && *continue_token)
        json_object_set_new(metadata, "continue", json_string(continue_token));
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "kind", "Table", "apiVersion", "meta.k8s.io/v1",
                     "metadata", metadata, "columnDefinitions", definitions, "rows", rows);
}
