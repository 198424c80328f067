/*
 * Responses: JSON bodies and Status errors with kube-apiserver's reasons and messages
 * (k8s.io/apimachinery/pkg/api/errors, apiserver/pkg/endpoints/handlers/responsewriters).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"

void kp_call_document(struct kp_call *call, json_t *doc)
{
    if (!doc) {
        kp_call_status(call, 404, "NotFound", "the server could not find the requested resource",
                       NULL, NULL, NULL);
        return;
    }
    kp_call_json(call, 200, doc);
    json_decref(doc);
}

json_t *kp_status_object(int code, const char *reason, const char *message,
                         const char *details_name, const char *details_group,
                         const char *details_kind)
{
    json_t *status = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
                               "apiVersion", "v1", "metadata", "status",
                               code < 400 ? "Success" : "Failure", "message", message, "reason",
                               reason, "code", code);
    if (!status)
        return NULL;
    if ((details_name && *details_name) || (details_kind && *details_kind)) {
        json_t *details = json_object();
        if (details_name && *details_name)
            json_object_set_new(details, "name", json_string(details_name));
        if (details_group && *details_group)
            json_object_set_new(details, "group", json_string(details_group));
        if (details_kind && *details_kind)
            json_object_set_new(details, "kind", json_string(details_kind));
        json_object_set_new(status, "details", details);
    }
    if (!reason || !*reason)
        json_object_del(status, "reason");
    return status;
}

void kp_call_status(struct kp_call *call, int code, const char *reason, const char *message,
                    const char *details_name, const char *details_group,
                    const char *details_kind)
{
    json_t *status = kp_status_object(code, reason, message, details_name, details_group,
                                      details_kind);
    if (!status) /* a message or name that is not UTF-8 (a client's bytes quoted) */
        status = kp_status_object(code, reason, "(the message could not be encoded as JSON)",
                                  NULL, NULL, NULL);
    kp_call_json(call, code, status);
    json_decref(status);
}

static const char *call_plural(const struct kp_call *call)
{
    return call->resource ? call->resource->plural : call->info.resource ? call->info.resource : "";
}

static const char *call_group(const struct kp_call *call)
{
    return call->resource ? call->resource->group : "";
}

static const char *qualified(const struct kp_call *call, char *buf, size_t size)
{
    if (call->resource)
        return kp_resource_qualified(call->resource, buf, size);
    snprintf(buf, size, "%s", call_plural(call));
    return buf;
}

void kp_call_not_found(struct kp_call *call, const char *name)
{
    char q[192], message[1024];
    snprintf(message, sizeof(message), "%s \"%s\" not found", qualified(call, q, sizeof(q)),
             name ? name : "");
    kp_call_status(call, 404, "NotFound", message, name, call_group(call), call_plural(call));
}

void kp_call_already_exists(struct kp_call *call, const char *name)
{
    char q[192], message[1024];
    snprintf(message, sizeof(message), "%s \"%s\" already exists",
             qualified(call, q, sizeof(q)), name ? name : "");
    kp_call_status(call, 409, "AlreadyExists", message, name, call_group(call),
                   call_plural(call));
}

void kp_call_conflict(struct kp_call *call, const char *name, const char *why)
{
    char q[192], message[1024];
    snprintf(message, sizeof(message), "Operation cannot be fulfilled on %s \"%s\": %s",
             qualified(call, q, sizeof(q)), name ? name : "",
             why ? why
                 : "the object has been modified; please apply your changes to the latest "
                   "version and try again");
    kp_call_status(call, 409, "Conflict", message, name, call_group(call), call_plural(call));
}

void kp_call_invalid(struct kp_call *call, const char *kind, const char *name,
                     const char *message)
{
    char text[1200];
    const char *qualified_kind = kind ? kind : call->resource ? call->resource->kind : "";
    char with_group[192];
    if (call->resource && call->resource->group[0])
        snprintf(with_group, sizeof(with_group), "%s.%s", qualified_kind, call->resource->group);
    else
        snprintf(with_group, sizeof(with_group), "%s", qualified_kind);
    snprintf(text, sizeof(text), "%s \"%s\" is invalid: %s", with_group, name ? name : "",
             message);
    json_t *status = kp_status_object(422, "Invalid", text, name, call_group(call),
                                      qualified_kind);
    /* details.causes: one cause, the field and its message (what kubectl prints). */
    const char *colon = strchr(message, ':');
    if (status && colon) {
        char field[256];
        snprintf(field, sizeof(field), "%.*s", (int)(colon - message), message);
        const char *rest = colon + 1;
        while (*rest == ' ')
            rest++;
        json_t *details = json_object_get(status, "details");
        if (details)
            json_object_set_new(details, "causes",
                                json_pack("[{s:s, s:s, s:s}]", "reason", "FieldValueInvalid",
                                          "message", rest, "field", field));
    }
    kp_call_json(call, 422, status);
    json_decref(status);
}

void kp_call_bad_request(struct kp_call *call, const char *message)
{
    kp_call_status(call, 400, "BadRequest", message, NULL, NULL, NULL);
}

void kp_call_method_not_allowed(struct kp_call *call)
{
    kp_call_status(call, 405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource", NULL,
                   NULL, NULL);
}

void kp_call_error(struct kp_call *call, enum kp_result code, const char *message)
{
    const char *name = call->info.name;
    switch (code) {
    case KP_ERR_NOT_FOUND:
        kp_call_not_found(call, name);
        return;
    case KP_ERR_INVALID:
        kp_call_invalid(call, NULL, name, message);
        return;
    case KP_ERR_CONFLICT:
        kp_call_conflict(call, name, NULL);
        return;
    case KP_ERR_FORBIDDEN:
        kp_call_status(call, 403, "Forbidden", message, name, call_group(call),
                       call_plural(call));
        return;
    case KP_ERR_UNAUTHENTICATED:
        kp_call_status(call, 401, "Unauthorized", "Unauthorized", NULL, NULL, NULL);
        return;
    case KP_ERR_EXPIRED:
        kp_call_status(call, 410, "Expired", message, NULL, NULL, NULL);
        return;
    case KP_ERR_TOO_LARGE:
        kp_call_status(call, 413, "RequestEntityTooLarge", message, NULL, NULL, NULL);
        return;
    case KP_ERR_IO:
        kp_log_error("%s %s: %s", call->method, call->path, message);
        kp_call_status(call, 503, "ServiceUnavailable", message, NULL, NULL, NULL);
        return;
    default:
        kp_log_error("%s %s: internal error: %s", call->method, call->path, message);
        kp_call_status(call, 500, "InternalError",
                       "Internal error occurred: see the server log", NULL, NULL, NULL);
        return;
    }
}

void kp_forbidden_message(const struct kp_authz_attrs *attrs, const char *reason, char *out,
                          size_t size)
{
    const char *user = attrs->user && attrs->user->name ? attrs->user->name : "";
    char msg[1024];
    if (!attrs->resource_request) {
        snprintf(msg, sizeof(msg), "User \"%s\" cannot %s path \"%s\"", user, attrs->verb,
                 attrs->path ? attrs->path : "");
    } else {
        char resource[256];
        if (attrs->subresource && *attrs->subresource)
            snprintf(resource, sizeof(resource), "%s/%s", attrs->resource, attrs->subresource);
        else
            snprintf(resource, sizeof(resource), "%s", attrs->resource);
        if (attrs->namespace_ && *attrs->namespace_)
            snprintf(msg, sizeof(msg),
                     "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" in the "
                     "namespace \"%s\"",
                     user, attrs->verb, resource, attrs->api_group, attrs->namespace_);
        else
            snprintf(msg, sizeof(msg),
                     "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" at the cluster "
                     "scope",
                     user, attrs->verb, resource, attrs->api_group);
    }
    char full[1600];
    if (reason && *reason)
        snprintf(full, sizeof(full), "%s: %s", msg, reason);
    else
        snprintf(full, sizeof(full), "%s", msg);
    /* errors.NewForbidden's prefix: the qualified resource and the name. */
    char qualified_resource[256] = "";
    if (attrs->resource_request && attrs->resource && *attrs->resource) {
        if (attrs->api_group && *attrs->api_group)
            snprintf(qualified_resource, sizeof(qualified_resource), "%s.%s", attrs->resource,
                     attrs->api_group);
        else
            snprintf(qualified_resource, sizeof(qualified_resource), "%s", attrs->resource);
    }
    if (!qualified_resource[0])
        snprintf(out, size, "forbidden: %s", full);
    else if (!attrs->name || !*attrs->name)
        snprintf(out, size, "%s is forbidden: %s", qualified_resource, full);
    else
        snprintf(out, size, "%s \"%s\" is forbidden: %s", qualified_resource, attrs->name, full);
}
