/*
 * OpenAPI v3 documents, generated from the resource table: /openapi/v3 (the index of group
 * versions) and /openapi/v3/api/v1, /openapi/v3/apis/{group}/{version}.
 *
 * What kubectl reads from them: whether the server validates fields itself. Before sending
 * `create -f` or `apply`, kubectl looks for the PATCH operation of the object's kind
 * (x-kubernetes-group-version-kind) and its `fieldValidation` parameter; when present it sends
 * ?fieldValidation=Strict and leaves validation to the server, otherwise it downloads the full
 * schemas to validate on its own (cli-runtime resource/query_param_verifier_v3.go). The
 * documents therefore carry the paths and operations, with their parameters, but not the
 * object schemas (components is empty): `kubectl explain` has nothing to explain (docs/api.md).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

static json_t *gvk(const struct kp_resource *r, const char *group, const char *version,
                   const char *kind)
{
    (void)r;
    return json_pack("{s:s, s:s, s:s}", "group", group, "version", version, "kind", kind);
}

static json_t *param(const char *name, const char *in, const char *description)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s}, s:b}", "name", name, "in", in, "description",
                     description, "schema", "type", "string", "uniqueItems", true);
}

static json_t *write_params(void)
{
    return json_pack("[o, o, o]",
                     param("dryRun", "query", "When present, modifications are not persisted."),
                     param("fieldManager", "query", "The name of the actor making the change."),
                     param("fieldValidation", "query",
                           "Ignore, Warn or Strict: how to treat unknown fields."));
}

static json_t *operation(const struct kp_resource *r, const char *action, const char *id,
                         const char *group, const char *version, const char *kind, bool writes)
{
    json_t *op = json_pack("{s:s, s:s, s:o, s:o}", "operationId", id, "x-kubernetes-action",
                           action, "x-kubernetes-group-version-kind",
                           gvk(r, group, version, kind), "responses",
                           json_pack("{s:{s:s}}", "200", "description", "OK"));
    if (writes)
        json_object_set_new(op, "parameters", write_params());
    return op;
}

static void add_paths(json_t *paths, const struct kp_resource *r)
{
    char base[256], item[320], id[160];
    const char *prefix = r->group[0] ? "/apis/" : "/api";
    char gv[160];
    if (r->group[0])
        snprintf(gv, sizeof(gv), "%s%s/%s", prefix, r->group, r->version);
    else
        snprintf(gv, sizeof(gv), "%s/%s", prefix, r->version);
    if (r->namespaced)
        snprintf(base, sizeof(base), "%s/namespaces/{namespace}/%s", gv, r->plural);
    else
        snprintf(base, sizeof(base), "%s/%s", gv, r->plural);
    snprintf(item, sizeof(item), "%s/{name}", base);
    json_t *collection = json_object();
    json_t *one = json_object();
    if (r->verbs & KP_VERB_CREATE) {
        snprintf(id, sizeof(id), "create%s", r->kind);
        json_object_set_new(collection, "post",
                            operation(r, "post", id, r->group, r->version, r->kind, true));
    }
    if (r->verbs & KP_VERB_LIST) {
        snprintf(id, sizeof(id), "list%s", r->kind);
        json_object_set_new(collection, "get",
                            operation(r, "list", id, r->group, r->version, r->kind, false));
    }
    if (r->verbs & KP_VERB_GET) {
        snprintf(id, sizeof(id), "read%s", r->kind);
        json_object_set_new(one, "get",
                            operation(r, "get", id, r->group, r->version, r->kind, false));
    }
    if (r->verbs & KP_VERB_UPDATE) {
        snprintf(id, sizeof(id), "replace%s", r->kind);
        json_object_set_new(one, "put",
                            operation(r, "put", id, r->group, r->version, r->kind, true));
    }
    if (r->verbs & KP_VERB_PATCH) {
        snprintf(id, sizeof(id), "patch%s", r->kind);
        json_object_set_new(one, "patch",
                            operation(r, "patch", id, r->group, r->version, r->kind, true));
    }
    if (r->verbs & KP_VERB_DELETE) {
        snprintf(id, sizeof(id), "delete%s", r->kind);
        json_object_set_new(one, "delete",
                            operation(r, "delete", id, r->group, r->version, r->kind, false));
    }
    if (json_object_size(collection))
        json_object_set_new(paths, base, collection);
    else
        json_decref(collection);
    if (json_object_size(one))
        json_object_set_new(paths, item, one);
    else
        json_decref(one);
    for (size_t s = 0; s < r->subresource_count; s++) {
        const struct kp_subresource *sub = &r->subresources[s];
        char path[400];
        snprintf(path, sizeof(path), "%s/%s", item, sub->name);
        const char *group = sub->group ? sub->group : r->group;
        const char *version = sub->version ? sub->version : r->version;
        const char *kind = sub->kind ? sub->kind : r->kind;
        json_t *ops = json_object();
        if (sub->verbs & KP_VERB_CREATE) {
            snprintf(id, sizeof(id), "create%s%s", r->kind, kind);
            json_object_set_new(ops, "post", operation(r, "post", id, group, version, kind, true));
        }
        if (sub->verbs & KP_VERB_GET) {
            snprintf(id, sizeof(id), "read%sStatus", r->kind);
            json_object_set_new(ops, "get", operation(r, "get", id, group, version, kind, false));
        }
        if (sub->verbs & KP_VERB_UPDATE) {
            snprintf(id, sizeof(id), "replace%sStatus", r->kind);
            json_object_set_new(ops, "put", operation(r, "put", id, group, version, kind, true));
        }
        if (sub->verbs & KP_VERB_PATCH) {
            snprintf(id, sizeof(id), "patch%sStatus", r->kind);
            json_object_set_new(ops, "patch",
                                operation(r, "patch", id, group, version, kind, true));
        }
        json_object_set_new(paths, path, ops);
    }
}

/* The document of one group version, or NULL when it serves nothing. */
static json_t *gv_document(const char *group, const char *version)
{
    size_t count;
    const struct kp_resource *rows = kp_resources(&count);
    json_t *paths = json_object();
    for (size_t i = 0; i < count; i++)
        if (strcmp(rows[i].group, group) == 0 && strcmp(rows[i].version, version) == 0)
            add_paths(paths, &rows[i]);
    if (!json_object_size(paths)) {
        json_decref(paths);
        return NULL;
    }
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:{}}}", "openapi", "3.0.0", "info", "title",
                     "Kubernetes (kpki)", "version", "v1.31.0", "paths", paths, "components",
                     "schemas");
}

static void document_hash(const json_t *doc, char *out, size_t size)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char digest[32];
    unsigned int len = 0;
    out[0] = '\0';
    if (text && EVP_Digest(text, strlen(text), digest, &len, EVP_sha256(), NULL) == 1)
        for (unsigned i = 0; i < 16 && 2 * i + 2 < size; i++)
            snprintf(out + 2 * i, size - 2 * i, "%02X", digest[i]);
    free(text);
}

static json_t *root_document(void)
{
    size_t count;
    const struct kp_resource *rows = kp_resources(&count);
    json_t *paths = json_object();
    for (size_t i = 0; i < count; i++) {
        char key[200], url[300], hash[40];
        if (rows[i].group[0])
            snprintf(key, sizeof(key), "apis/%s/%s", rows[i].group, rows[i].version);
        else
            snprintf(key, sizeof(key), "api/%s", rows[i].version);
        if (json_object_get(paths, key))
            continue;
        json_t *doc = gv_document(rows[i].group, rows[i].version);
        document_hash(doc, hash, sizeof(hash));
        json_decref(doc);
        snprintf(url, sizeof(url), "/openapi/v3/%s?hash=%s", key, hash);
        json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
    }
    return json_pack("{s:o}", "paths", paths);
}

bool kp_openapi_is_path(const char *path)
{
    return strcmp(path, "/openapi/v3") == 0 || strncmp(path, "/openapi/v3/", 12) == 0;
}

void kp_openapi_handle(struct kp_call *call)
{
    const char *rest = call->path + strlen("/openapi/v3");
    json_t *doc = NULL;
    if (!*rest || strcmp(rest, "/") == 0) {
        doc = root_document();
    } else if (strncmp(rest, "/api/", 5) == 0 && !strchr(rest + 5, '/')) {
        doc = gv_document("", rest + 5);
    } else if (strncmp(rest, "/apis/", 6) == 0) {
        char group[128], version[64];
        const char *slash = strchr(rest + 6, '/');
        if (slash && (size_t)(slash - (rest + 6)) < sizeof(group) && !strchr(slash + 1, '/')) {
            snprintf(group, sizeof(group), "%.*s", (int)(slash - (rest + 6)), rest + 6);
            snprintf(version, sizeof(version), "%s", slash + 1);
            doc = gv_document(group, version);
        }
    }
    kp_call_document(call, doc);
}
