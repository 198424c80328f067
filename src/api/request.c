/*
 * Request info: what a URL and a method ask for, as kube-apiserver's RequestInfoFactory reads
 * them (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go):
 *
 *   /api/v1/namespaces/{ns}/{resource}[/{name}[/{subresource}]]
 *   /api/v1/{resource}[/{name}[/{subresource}]]
 *   /apis/{group}/{version}/... the same
 *   /api/v1/namespaces/{name}[/status|/finalize]    the namespace object itself
 *
 * Everything else (/healthz, /version, /api, /apis, /apis/{group}, /api/v1, /apis/{g}/{v},
 * /openid/v1/jwks ...) is a non-resource request, authorized by path.
 * Verbs: GET -> get (named) | list | watch (?watch=true|1); POST -> create; PUT -> update;
 * PATCH -> patch; DELETE -> delete (named) | deletecollection. A list or watch whose field
 * selector pins metadata.name gets that name (so a node may watch its own Node).
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

static bool is_namespace_subresource(const char *part)
{
    return strcmp(part, "status") == 0 || strcmp(part, "finalize") == 0;
}

enum kp_result kp_request_info_parse(const char *method, const char *path, bool watch,
                                     struct kp_request_info *info, struct kp_error *err)
{
    memset(info, 0, sizeof(*info));
    info->path_copy = strdup(path);
    if (!info->path_copy)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    /* Split on '/', dropping empty segments at the ends only (upstream trims slashes). */
    char *p = info->path_copy;
    while (*p == '/')
        p++;
    size_t len = strlen(p);
    while (len && p[len - 1] == '/')
        p[--len] = '\0';
    while (*p) {
        if (info->part_count == sizeof(info->parts) / sizeof(info->parts[0]))
            return kp_error_set(err, KP_ERR_INVALID, "the request path has too many segments");
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (!*p)
            return kp_error_set(err, KP_ERR_INVALID, "the request path has an empty segment");
        info->parts[info->part_count++] = p;
        if (!slash)
            break;
        p = slash + 1;
    }
    const char *m = method;
    const char *verb = strcmp(m, "POST") == 0     ? "create"
                       : strcmp(m, "GET") == 0    ? "get"
                       : strcmp(m, "HEAD") == 0   ? "get"
                       : strcmp(m, "PUT") == 0    ? "update"
                       : strcmp(m, "PATCH") == 0  ? "patch"
                       : strcmp(m, "DELETE") == 0 ? "delete"
                                                  : NULL;
    /* Non-resource requests keep the lower-cased method as their verb (upstream). */
    if (!verb) {
        size_t i;
        for (i = 0; m[i] && i + 1 < sizeof(info->verb); i++)
            info->verb[i] = (char)((m[i] >= 'A' && m[i] <= 'Z') ? m[i] + 32 : m[i]);
        info->verb[i] = '\0';
    }
    const char *const *parts = info->parts;
    size_t n = info->part_count, at;
    if (n >= 3 && strcmp(parts[0], "api") == 0) {
        info->group = "";
        info->version = parts[1];
        at = 2;
    } else if (n >= 4 && strcmp(parts[0], "apis") == 0) {
        info->group = parts[1];
        info->version = parts[2];
        at = 3;
    } else {
        /* Non-resource: the verb is the lower-cased method. */
        if (verb) {
            const char *lower = strcmp(m, "POST") == 0    ? "post"
                                : strcmp(m, "GET") == 0   ? "get"
                                : strcmp(m, "HEAD") == 0  ? "head"
                                : strcmp(m, "PUT") == 0   ? "put"
                                : strcmp(m, "PATCH") == 0 ? "patch"
                                                          : "delete";
            strcpy(info->verb, lower);
        }
        return KP_OK;
    }
    if (!verb)
        return kp_error_set(err, KP_ERR_INVALID, "method %.20s is not allowed on resources", m);
    info->resource_request = true;
    info->namespace_ = "";
    info->name = "";
    info->subresource = "";
    if (strcmp(parts[at], "namespaces") == 0 && n > at + 1) {
        info->namespace_ = parts[at + 1];
        if (n > at + 2 && !is_namespace_subresource(parts[at + 2]))
            at += 2; /* /namespaces/{ns}/{resource}... */
    }
    size_t rest = n - at;
    info->resource = parts[at];
    if (rest >= 2)
        info->name = parts[at + 1];
    if (rest >= 3)
        info->subresource = parts[at + 2];
    if (rest >= 4)
        return kp_error_set(err, KP_ERR_NOT_FOUND, "the server could not find the requested "
                                                   "resource");
    bool named = rest >= 2;
    if (strcmp(verb, "get") == 0 && !named)
        verb = watch ? "watch" : "list";
    else if (strcmp(verb, "get") == 0 && watch)
        verb = "watch";
    else if (strcmp(verb, "delete") == 0 && !named)
        verb = "deletecollection";
    strcpy(info->verb, verb);
    return KP_OK;
}

void kp_request_info_wipe(struct kp_request_info *info)
{
    free(info->path_copy);
    memset(info, 0, sizeof(*info));
}
