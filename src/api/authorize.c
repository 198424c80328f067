/*
 * Authorization and admission glue: the union of the configured authorizers (kube-apiserver's
 * --authorization-mode, kubeadm's Node,RBAC) behind the system:masters bypass, the RBAC
 * snapshot kept current from the store, and the admission checks of writes
 * (NamespaceLifecycle, NodeRestriction, RBAC privilege-escalation prevention).
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"

void kp_call_attrs(const struct kp_call *call, struct kp_authz_attrs *attrs)
{
    memset(attrs, 0, sizeof(*attrs));
    attrs->user = &call->user;
    attrs->resource_request = call->info.resource_request;
    attrs->verb = call->info.verb;
    attrs->api_group = call->info.group ? call->info.group : "";
    attrs->api_version = call->info.version ? call->info.version : "";
    attrs->resource = call->info.resource ? call->info.resource : "";
    attrs->subresource = call->info.subresource ? call->info.subresource : "";
    attrs->namespace_ = call->info.namespace_ ? call->info.namespace_ : "";
    attrs->name = call->info.name ? call->info.name : "";
    attrs->path = call->path;
    attrs->field_selector = call->has_field_selector ? &call->field_selector : NULL;
    attrs->label_selector = call->has_label_selector ? &call->label_selector : NULL;
}

static enum kp_result rebuild_rbac(struct kp_api *api, struct kp_error *err)
{
    static const char *const kinds[4] = {"clusterroles", "clusterrolebindings", "roles",
                                         "rolebindings"};
    json_t *lists[4] = {0};
    enum kp_result rc = KP_OK;
    for (size_t i = 0; i < 4 && rc == KP_OK; i++) {
        const struct kp_resource *resource =
            kp_resource_find("rbac.authorization.k8s.io", "v1", kinds[i]);
        rc = kp_registry_list_all(api, resource, "", &lists[i], err);
    }
    struct kp_rbac *rbac = NULL;
    size_t skipped = 0;
    if (rc == KP_OK)
        rc = kp_rbac_build(lists[0], lists[1], lists[2], lists[3], &rbac, &skipped, err);
    for (size_t i = 0; i < 4; i++)
        json_decref(lists[i]);
    if (rc != KP_OK)
        return rc;
    if (skipped)
        kp_log_warn("RBAC: %zu malformed objects ignored", skipped);
    struct kp_rbac *old = api->rbac;
    api->rbac = rbac;
    kp_rbac_unref(old);
    return KP_OK;
}

struct kp_rbac *kp_api_rbac(struct kp_api *api)
{
    pthread_mutex_lock(&api->rbac_lock);
    /* Clear the flag before reading, so a change made while we read marks it again. */
    if (atomic_exchange(&api->rbac_dirty, false) || !api->rbac) {
        struct kp_error err;
        if (rebuild_rbac(api, &err) != KP_OK) {
            atomic_store(&api->rbac_dirty, true);
            kp_log_error("RBAC: cannot rebuild the policy (keeping the previous one): %s",
                         err.message);
        }
    }
    struct kp_rbac *rbac = api->rbac ? kp_rbac_ref(api->rbac) : NULL;
    pthread_mutex_unlock(&api->rbac_lock);
    return rbac;
}

static void append_reason(char *reasons, size_t size, const char *reason)
{
    if (!reason[0])
        return;
    size_t n = strlen(reasons);
    snprintf(reasons + n, size - n, "%s%s", n ? "\n" : "", reason);
}

void kp_authorize(struct kp_api *api, const struct kp_authz_attrs *attrs,
                  struct kp_authz_decision *decision)
{
    memset(decision, 0, sizeof(*decision));
    /* The privileged-group authorizer that precedes the configured modes. */
    if (kp_user_in_group(attrs->user, KP_GROUP_MASTERS)) {
        decision->verdict = KP_AUTHZ_ALLOW;
        return;
    }
    char reasons[KP_AUTHZ_REASON_MAX] = "";
    for (size_t i = 0; i < api->config.authorization_modes.count; i++) {
        const char *mode = api->config.authorization_modes.items[i];
        struct kp_authz_decision one = {0};
        if (strcmp(mode, "Node") == 0) {
            kp_node_authorize(api->graph, attrs, &one);
        } else if (strcmp(mode, "RBAC") == 0) {
            struct kp_rbac *rbac = kp_api_rbac(api);
            if (rbac)
                kp_rbac_authorize(rbac, attrs, &one);
            kp_rbac_unref(rbac);
        } else if (strcmp(mode, "AlwaysAllow") == 0) {
            one.verdict = KP_AUTHZ_ALLOW;
        } else if (strcmp(mode, "AlwaysDeny") == 0) {
            one.verdict = KP_AUTHZ_DENY;
        }
        if (one.verdict != KP_AUTHZ_NO_OPINION) {
            *decision = one;
            return;
        }
        append_reason(reasons, sizeof(reasons), one.reason);
    }
    decision->verdict = KP_AUTHZ_NO_OPINION;
    snprintf(decision->reason, sizeof(decision->reason), "%s", reasons);
}

/* ---- admission ---- */

static bool namespace_lifecycle(struct kp_call *call, const char *operation)
{
    const struct kp_resource *resource = call->resource;
    if (strcmp(operation, "CREATE") != 0 || !resource->namespaced || !resource->storage ||
        (call->info.subresource && *call->info.subresource))
        return true;
    const struct kp_resource *namespaces = kp_resource_find("", "v1", "namespaces");
    json_t *ns = NULL;
    struct kp_error err;
    enum kp_result rc = kp_registry_get(call->api, namespaces, "", call->info.namespace_, &ns,
                                        &err);
    char message[600];
    if (rc == KP_ERR_NOT_FOUND) {
        snprintf(message, sizeof(message), "namespaces \"%s\" not found", call->info.namespace_);
        kp_call_status(call, 404, "NotFound", message, call->info.namespace_, "", "namespaces");
        return false;
    }
    if (rc != KP_OK) {
        kp_call_error(call, rc, err.message);
        return false;
    }
    bool terminating = kp_meta_str(ns, "deletionTimestamp") != NULL;
    json_decref(ns);
    if (terminating) {
        snprintf(message, sizeof(message),
                 "%s \"%s\" is forbidden: unable to create new content in namespace %s because "
                 "it is being terminated",
                 resource->plural, call->info.name ? call->info.name : "",
                 call->info.namespace_);
        kp_call_status(call, 403, "Forbidden", message, call->info.name, resource->group,
                       resource->plural);
        return false;
    }
    return true;
}

static bool rbac_escalation(struct kp_call *call, const char *operation, const json_t *object)
{
    const struct kp_resource *resource = call->resource;
    if (strcmp(resource->group, "rbac.authorization.k8s.io") != 0 || !object ||
        strcmp(operation, "DELETE") == 0 || kp_user_in_group(&call->user, KP_GROUP_MASTERS))
        return true;
    struct kp_rbac *rbac = kp_api_rbac(call->api);
    if (!rbac) {
        kp_call_status(call, 503, "ServiceUnavailable", "the RBAC policy is not loaded", NULL,
                       NULL, NULL);
        return false;
    }
    const char *ns = resource->namespaced ? call->info.namespace_ : "";
    struct kp_error err;
    enum kp_result rc;
    if (strstr(resource->kind, "Binding"))
        rc = kp_rbac_check_binding_write(rbac, &call->user, ns, json_object_get(object, "roleRef"),
                                         &err);
    else
        rc = kp_rbac_check_role_update(rbac, &call->user, ns,
                                       strcmp(operation, "UPDATE") == 0 ? call->info.name : "",
                                       json_object_get(object, "rules"), &err);
    kp_rbac_unref(rbac);
    if (rc == KP_OK)
        return true;
    if (rc == KP_ERR_FORBIDDEN) {
        char q[192], message[KP_ERROR_MESSAGE_MAX + 300];
        snprintf(message, sizeof(message), "%s \"%s\" is forbidden: %s",
                 kp_resource_qualified(resource, q, sizeof(q)),
                 call->info.name ? call->info.name : "", err.message);
        kp_call_status(call, 403, "Forbidden", message, call->info.name, resource->group,
                       resource->plural);
    } else {
        kp_call_error(call, rc, err.message);
    }
    return false;
}

bool kp_admit(struct kp_call *call, const char *operation, const char *name,
              const json_t *object, const json_t *old_object)
{
    if (!namespace_lifecycle(call, operation))
        return false;
    struct kp_admission_request request = {
        .user = &call->user,
        .operation = operation,
        .api_group = call->resource->group,
        .resource = call->resource->plural,
        .subresource = call->info.subresource ? call->info.subresource : "",
        .namespace_ = call->info.namespace_ ? call->info.namespace_ : "",
        .name = name ? name : "",
        .object = object,
        .old_object = old_object,
        .lookup = kp_registry_lookup,
        .lookup_context = call->api,
    };
    struct kp_error err;
    enum kp_result rc = kp_node_admit(&request, &err);
    if (rc != KP_OK) {
        if (rc == KP_ERR_FORBIDDEN)
            kp_call_status(call, 403, "Forbidden", err.message, name, call->resource->group,
                           call->resource->plural);
        else
            kp_call_error(call, rc, err.message);
        return false;
    }
    return rbac_escalation(call, operation, object);
}
