/*
 * Discovery, generated from the resource table: /api (APIVersions), /apis (APIGroupList),
 * /apis/{group} (APIGroup), /api/v1 and /apis/{group}/{version} (APIResourceList).
 *
 * Only the classic documents are served. kubectl first asks for the aggregated discovery
 * document (apidiscovery.k8s.io/v2) and falls back to these when the answer's Content-Type is
 * plain application/json, which is what client-go does for servers without aggregation.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"

static json_t *split_list(const char *text)
{
    json_t *list = json_array();
    for (const char *p = text; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        json_array_append_new(list, json_stringn(p, n));
        p = comma ? comma + 1 : p + n;
    }
    return list;
}

/* Verbs in upstream's (alphabetical) order. */
static json_t *verb_list(unsigned verbs)
{
    static const struct {
        const char *name;
        unsigned bit;
    } all[] = {{"create", KP_VERB_CREATE}, {"delete", KP_VERB_DELETE},
               {"deletecollection", KP_VERB_DELETECOLLECTION}, {"get", KP_VERB_GET},
               {"list", KP_VERB_LIST}, {"patch", KP_VERB_PATCH},
               {"update", KP_VERB_UPDATE}, {"watch", KP_VERB_WATCH}};
    json_t *list = json_array();
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (verbs & all[i].bit)
            json_array_append_new(list, json_string(all[i].name));
    return list;
}

/* The group's versions, newest (preferred) first: the table lists v1 before v1beta1. */
static json_t *group_versions(const char *group, json_t **preferred)
{
    size_t count;
    const struct kp_resource *rows = kp_resources(&count);
    json_t *versions = json_array();
    *preferred = NULL;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(rows[i].group, group) != 0)
            continue;
        char gv[160];
        snprintf(gv, sizeof(gv), "%s/%s", group, rows[i].version);
        bool seen = false;
        size_t j;
        json_t *v;
        json_array_foreach(versions, j, v)
            seen |= strcmp(json_string_value(json_object_get(v, "version")), rows[i].version) == 0;
        if (seen)
            continue;
        json_t *entry = json_pack("{s:s, s:s}", "groupVersion", gv, "version", rows[i].version);
        if (!*preferred)
            *preferred = json_deep_copy(entry);
        json_array_append_new(versions, entry);
    }
    return versions;
}

static json_t *api_group(const char *group)
{
    json_t *preferred = NULL;
    json_t *versions = group_versions(group, &preferred);
    if (!preferred) {
        json_decref(versions);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:o}", "kind", "APIGroup", "apiVersion", "v1", "name",
                     group, "versions", versions, "preferredVersion", preferred);
}

static json_t *group_list(void)
{
    size_t count;
    const struct kp_resource *rows = kp_resources(&count);
    json_t *groups = json_array();
    for (size_t i = 0; i < count; i++) {
        if (!rows[i].group[0])
            continue;
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= strcmp(rows[j].group, rows[i].group) == 0;
        if (seen)
            continue;
        json_t *group = api_group(rows[i].group);
        json_object_del(group, "kind");
        json_object_del(group, "apiVersion");
        json_array_append_new(groups, group);
    }
    return json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups",
                     groups);
}

static json_t *resource_list(const char *group, const char *version)
{
    size_t count;
    const struct kp_resource *rows = kp_resources(&count);
    json_t *resources = json_array();
    for (size_t i = 0; i < count; i++) {
        const struct kp_resource *r = &rows[i];
        if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
            continue;
        json_t *entry = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", r->plural, "singularName",
                                  r->singular, "namespaced", r->namespaced, "kind", r->kind,
                                  "verbs", verb_list(r->verbs));
        if (*r->short_names)
            json_object_set_new(entry, "shortNames", split_list(r->short_names));
        if (*r->categories)
            json_object_set_new(entry, "categories", split_list(r->categories));
        json_array_append_new(resources, entry);
        for (size_t s = 0; s < r->subresource_count; s++) {
            const struct kp_subresource *sub = &r->subresources[s];
            char name[128];
            snprintf(name, sizeof(name), "%s/%s", r->plural, sub->name);
            json_t *se = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", name, "singularName", "",
                                   "namespaced", r->namespaced, "kind",
                                   sub->kind ? sub->kind : r->kind, "verbs",
                                   verb_list(sub->verbs));
            if (sub->group && strcmp(sub->group, r->group) != 0) {
                json_object_set_new(se, "group", json_string(sub->group));
                json_object_set_new(se, "version", json_string(sub->version));
            }
            json_array_append_new(resources, se);
        }
    }
    if (json_array_size(resources) == 0) {
        json_decref(resources);
        return NULL;
    }
    char gv[160];
    if (group[0])
        snprintf(gv, sizeof(gv), "%s/%s", group, version);
    else
        snprintf(gv, sizeof(gv), "%s", version);
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", resources);
}

static json_t *api_versions(const struct kp_api *api, int port)
{
    char address[300];
    snprintf(address, sizeof(address), "%s:%d",
             api->config.advertise_address ? api->config.advertise_address : "127.0.0.1", port);
    return json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions", "v1",
                     "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0", "serverAddress",
                     address);
}

bool kp_discovery_is_path(const char *path)
{
    return strcmp(path, "/api") == 0 || strcmp(path, "/api/") == 0 ||
           strncmp(path, "/api/", 5) == 0 || strcmp(path, "/apis") == 0 ||
           strncmp(path, "/apis/", 6) == 0;
}

void kp_discovery_handle(struct kp_call *call)
{
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", call->path);
    size_t len = strlen(copy);
    while (len > 1 && copy[len - 1] == '/')
        copy[--len] = '\0';
    /* Split into at most 3 segments after the prefix. */
    const char *seg[4] = {0};
    size_t n = 0;
    for (char *p = copy + 1; p && *p && n < 4;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        seg[n++] = p;
        p = slash ? slash + 1 : NULL;
    }
    json_t *doc = NULL;
    if (n == 1 && strcmp(seg[0], "api") == 0)
        doc = api_versions(call->api, kp_http_server_port(call->api->http));
    else if (n == 2 && strcmp(seg[0], "api") == 0)
        doc = resource_list("", seg[1]);
    else if (n == 1 && strcmp(seg[0], "apis") == 0)
        doc = group_list();
    else if (n == 2 && strcmp(seg[0], "apis") == 0)
        doc = api_group(seg[1]);
    else if (n == 3 && strcmp(seg[0], "apis") == 0)
        doc = resource_list(seg[1], seg[2]);
    kp_call_document(call, doc);
}
