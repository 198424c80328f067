/*
 * What exists from the first start: the four system namespaces, the RBAC default policy of
 * kube-apiserver and kubeadm, and the kube-system/extension-apiserver-authentication ConfigMap
 * that tells other servers how this one authenticates clients.
 *
 * Objects already present are left alone: an administrator's edit of a default role survives
 * restarts. (Upstream reconciles default roles whose autoupdate annotation is "true" by adding
 * missing rules; kpki does not yet, see docs/api.md.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/file.h"
#include "core/log.h"

static enum kp_result create_if_missing(struct kp_api *api, const struct kp_resource *resource,
                                        json_t *object, int64_t now, struct kp_error *err)
{
    if (!json_object_get(object, "metadata"))
        json_object_set_new(object, "metadata", json_object());
    char uid[40], ts[40];
    kp_new_uid(uid, sizeof(uid));
    kp_timestamp(now, ts, sizeof(ts));
    if (!kp_meta_str(object, "uid"))
        kp_meta_set_str(object, "uid", uid);
    kp_meta_set_str(object, "creationTimestamp", ts);
    char api_version[128];
    json_object_set_new(object, "apiVersion",
                        json_string(kp_resource_api_version(resource, api_version,
                                                            sizeof(api_version))));
    json_object_set_new(object, "kind", json_string(resource->kind));
    enum kp_result rc = kp_registry_create(api, resource, object, err);
    if (rc == KP_ERR_CONFLICT) {
        kp_error_clear(err);
        return KP_OK;
    }
    if (rc != KP_OK)
        return kp_error_prefix(err, "creating %s %s", resource->kind,
                               kp_meta_str(object, "name") ? kp_meta_str(object, "name") : "");
    return KP_OK;
}

static enum kp_result namespaces(struct kp_api *api, int64_t now, struct kp_error *err)
{
    static const char *const names[] = {"default", "kube-system", "kube-public",
                                        "kube-node-lease"};
    const struct kp_resource *resource = kp_resource_find("", "v1", "namespaces");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *ns = json_pack("{s:{s:s, s:{s:s}}, s:{s:[s]}, s:{s:s}}", "metadata", "name",
                               names[i], "labels", "kubernetes.io/metadata.name", names[i],
                               "spec", "finalizers", "kubernetes", "status", "phase", "Active");
        enum kp_result rc = create_if_missing(api, resource, ns, now, err);
        json_decref(ns);
        if (rc != KP_OK)
            return rc;
    }
    return KP_OK;
}

static enum kp_result rbac_policy(struct kp_api *api, int64_t now, struct kp_error *err)
{
    json_t *policy = kp_rbac_default_policy();
    if (!json_is_array(policy)) {
        json_decref(policy);
        return kp_error_set(err, KP_ERR_INTERNAL, "no default RBAC policy");
    }
    enum kp_result rc = KP_OK;
    size_t i;
    json_t *object;
    json_array_foreach(policy, i, object) {
        const char *kind = json_string_value(json_object_get(object, "kind"));
        const struct kp_resource *resource =
            kind ? kp_resource_by_kind("rbac.authorization.k8s.io", kind) : NULL;
        if (!resource) {
            rc = kp_error_set(err, KP_ERR_INTERNAL, "default policy object of kind %s",
                              kind ? kind : "(none)");
            break;
        }
        json_t *copy = json_deep_copy(object);
        rc = create_if_missing(api, resource, copy, now, err);
        json_decref(copy);
        if (rc != KP_OK)
            break;
    }
    json_decref(policy);
    return rc;
}

static json_t *json_string_array(const struct kp_strlist *list)
{
    json_t *array = json_array();
    for (size_t i = 0; i < list->count; i++)
        json_array_append_new(array, json_string(list->items[i]));
    char *text = json_dumps(array, JSON_COMPACT);
    json_decref(array);
    json_t *value = json_string(text ? text : "[]");
    free(text);
    return value;
}

/* kube-apiserver's ClusterAuthenticationTrustController content: created at first start,
 * replaced when the CA files changed - at a start, or when reload.c reloaded one (so a CA
 * rotation reaches other servers). */
enum kp_result kp_authentication_configmap_sync(struct kp_api *api, struct kp_error *err)
{
    int64_t now = kp_clock_now(api->clock);
    const struct kp_apiserver_config *c = &api->config;
    json_t *data = json_object();
    char *pem = NULL;
    size_t len = 0;
    if (c->client_ca_file && kp_file_read(c->client_ca_file, 4 << 20, &pem, &len, err) == KP_OK)
        json_object_set_new(data, "client-ca-file", json_stringn(pem, len));
    free(pem);
    pem = NULL;
    if (c->requestheader_client_ca_file &&
        kp_file_read(c->requestheader_client_ca_file, 4 << 20, &pem, &len, err) == KP_OK) {
        json_object_set_new(data, "requestheader-client-ca-file", json_stringn(pem, len));
        json_object_set_new(data, "requestheader-allowed-names",
                            json_string_array(&c->requestheader_allowed_names));
        json_object_set_new(data, "requestheader-username-headers",
                            json_string_array(&c->requestheader_username_headers));
        json_object_set_new(data, "requestheader-group-headers",
                            json_string_array(&c->requestheader_group_headers));
        json_object_set_new(data, "requestheader-extra-headers-prefix",
                            json_string_array(&c->requestheader_extra_headers_prefix));
    }
    free(pem);
    kp_error_clear(err);
    const struct kp_resource *resource = kp_resource_find("", "v1", "configmaps");
    json_t *existing = NULL;
    enum kp_result rc = kp_registry_get(api, resource, "kube-system",
                                        "extension-apiserver-authentication", &existing, err);
    if (rc == KP_OK) {
        if (!json_equal(json_object_get(existing, "data"), data)) {
            json_object_set(existing, "data", data);
            rc = kp_registry_update(api, resource, existing, 0, err);
        }
        json_decref(existing);
        json_decref(data);
        return rc;
    }
    if (rc != KP_ERR_NOT_FOUND) {
        json_decref(data);
        return rc;
    }
    kp_error_clear(err);
    json_t *cm = json_pack("{s:{s:s, s:s}, s:o}", "metadata", "name",
                           "extension-apiserver-authentication", "namespace", "kube-system",
                           "data", data);
    rc = create_if_missing(api, resource, cm, now, err);
    json_decref(cm);
    return rc;
}

enum kp_result kp_bootstrap_objects(struct kp_api *api, struct kp_error *err)
{
    int64_t now = kp_clock_now(api->clock);
    enum kp_result rc = namespaces(api, now, err);
    if (rc == KP_OK)
        rc = rbac_policy(api, now, err);
    if (rc == KP_OK)
        rc = kp_authentication_configmap_sync(api, err);
    if (rc != KP_OK)
        kp_error_prefix(err, "creating the default objects");
    return rc;
}
