/*
 * The store as the handlers use it: objects in, objects out, keys from the resource table,
 * resourceVersion stamped from the store's revisions.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"

enum kp_result kp_registry_get(struct kp_api *api, const struct kp_resource *resource,
                               const char *ns, const char *name, json_t **object,
                               struct kp_error *err)
{
    *object = NULL;
    char key[KP_STORE_KEY_MAX];
    kp_object_key(resource, ns, name, key, sizeof(key));
    struct kp_store_kv kv = {0};
    enum kp_result rc = kp_store_get(api->store, key, &kv, err);
    if (rc != KP_OK)
        return rc;
    *object = kp_object_decode(kv.value, kv.value_len, kv.mod_revision);
    kp_store_kv_wipe(&kv);
    if (!*object)
        return kp_error_set(err, KP_ERR_INTERNAL, "stored object %s is not a JSON object", key);
    return KP_OK;
}

/* Stores object (create when expected < 0, else compare-and-swap update) and stamps the new
 * revision into it. */
static enum kp_result put(struct kp_api *api, const struct kp_resource *resource, json_t *object,
                          int64_t expected, struct kp_error *err)
{
    const char *name = kp_meta_str(object, "name");
    const char *ns = kp_meta_str(object, "namespace");
    if (!name || (resource->namespaced && !ns))
        return kp_error_set(err, KP_ERR_INTERNAL, "object without name or namespace");
    char key[KP_STORE_KEY_MAX], *value = NULL;
    kp_object_key(resource, ns, name, key, sizeof(key));
    size_t len = 0;
    int64_t revision = 0;
    enum kp_result rc = kp_object_encode(object, &value, &len, err);
    if (rc == KP_OK && expected < 0)
        rc = kp_store_create(api->store, key, value, len, &revision, err);
    else if (rc == KP_OK)
        rc = kp_store_update(api->store, key, value, len, expected, &revision, err);
    free(value);
    if (rc == KP_OK)
        kp_object_set_rv(object, revision);
    return rc;
}

enum kp_result kp_registry_create(struct kp_api *api, const struct kp_resource *resource,
                                  json_t *object, struct kp_error *err)
{
    return put(api, resource, object, -1, err);
}

enum kp_result kp_registry_update(struct kp_api *api, const struct kp_resource *resource,
                                  json_t *object, int64_t expected, struct kp_error *err)
{
    return put(api, resource, object, expected < 0 ? 0 : expected, err);
}

enum kp_result kp_registry_delete(struct kp_api *api, const struct kp_resource *resource,
                                  const char *ns, const char *name, int64_t expected,
                                  json_t **deleted, struct kp_error *err)
{
    char key[KP_STORE_KEY_MAX];
    kp_object_key(resource, ns, name, key, sizeof(key));
    struct kp_store_kv kv = {0};
    int64_t revision = 0;
    enum kp_result rc = kp_store_delete(api->store, key, expected, &revision, &kv, err);
    if (rc == KP_OK && deleted)
        *deleted = kp_object_decode(kv.value, kv.value_len, revision);
    kp_store_kv_wipe(&kv);
    return rc;
}

enum kp_result kp_registry_scan(struct kp_api *api, const char *prefix,
                                kp_registry_scan_fn fn, void *context, int64_t *revision,
                                struct kp_error *err)
{
    char *after = NULL;
    *revision = 0;
    enum kp_result rc = KP_OK;
    for (;;) {
        struct kp_store_list list = {0};
        rc = kp_store_list(api->store, prefix, after, 0, *revision, &list, err);
        if (rc != KP_OK)
            break;
        *revision = list.revision; /* every page at the first page's revision */
        for (size_t i = 0; i < list.count; i++) {
            json_t *object = kp_object_decode(list.items[i].value, list.items[i].value_len,
                                              list.items[i].mod_revision);
            if (object)
                fn(context, object);
            else
                kp_log_warn("skipping stored object %s: not a JSON object", list.items[i].key);
            json_decref(object);
        }
        free(after);
        after = list.more && list.count ? strdup(list.items[list.count - 1].key) : NULL;
        bool more = list.more;
        kp_store_list_wipe(&list);
        if (!more)
            break;
        if (!after) {
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
            break;
        }
    }
    free(after);
    return rc;
}

static void append_item(void *items, json_t *object)
{
    json_array_append(items, object);
}

enum kp_result kp_registry_list_all(struct kp_api *api, const struct kp_resource *resource,
                                    const char *ns, json_t **items, struct kp_error *err)
{
    char prefix[KP_STORE_KEY_MAX];
    kp_object_prefix(resource, ns, prefix, sizeof(prefix));
    *items = json_array();
    if (!*items)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    int64_t revision;
    enum kp_result rc = kp_registry_scan(api, prefix, append_item, *items, &revision, err);
    if (rc != KP_OK) {
        json_decref(*items);
        *items = NULL;
    }
    return rc;
}

json_t *kp_registry_lookup_cached(void *context, const char *resource_name, const char *ns,
                                  const char *name)
{
    struct kp_api *api = context;
    const struct kp_resource *resource = kp_resource_find("", "v1", resource_name);
    /* Secrets are never kept: their data (token secrets) would outlive the request in memory
     * that is not wiped, where the store wipes every value it reads. */
    if (!api->objcache || !resource || !resource->storage || !name || !*name ||
        strcmp(resource_name, "secrets") == 0)
        return kp_registry_lookup(context, resource_name, ns, name);
    char key[KP_STORE_KEY_MAX];
    kp_object_key(resource, ns ? ns : "", name, key, sizeof(key));
    json_t *object = kp_objcache_get(api->objcache, key, kp_store_revision(api->store));
    if (object)
        return object;
    int64_t token = kp_objcache_fill_begin(api->objcache, kp_store_revision(api->store));
    object = kp_registry_lookup(context, resource_name, ns, name);
    kp_objcache_fill(api->objcache, key, object, token);
    return object;
}

json_t *kp_registry_lookup(void *context, const char *resource_name, const char *ns,
                           const char *name)
{
    struct kp_api *api = context;
    const struct kp_resource *resource = kp_resource_find("", "v1", resource_name);
    if (!resource || !resource->storage || !name || !*name)
        return NULL;
    json_t *object = NULL;
    struct kp_error err;
    enum kp_result rc = kp_registry_get(api, resource, ns ? ns : "", name, &object, &err);
    if (rc != KP_OK && rc != KP_ERR_NOT_FOUND)
        kp_log_warn("looking up %s %s/%s: %s", resource_name, ns ? ns : "", name, err.message);
    return object;
}
