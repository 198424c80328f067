/*
 * The "virtual" endpoints that answer a question instead of storing an object:
 * TokenReview, SelfSubjectReview, SubjectAccessReview, SelfSubjectAccessReview,
 * LocalSubjectAccessReview, SelfSubjectRulesReview; the TokenRequest subresource
 * (serviceaccounts/token, pkg/registry/core/serviceaccount/storage/token.go), pods/binding,
 * and the service-account issuer discovery documents (pkg/serviceaccount/openidmetadata.go).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"
#include "crypto/crypto.h"

#define TOKEN_DEFAULT_SECONDS 3600
#define TOKEN_MIN_SECONDS 600
#define TOKEN_MAX_SECONDS 4294967296LL /* 2^32 */
/* The kubelet's projected tokens ask for 3607 s; with --service-account-extend-token-
 * expiration they get a year, and warnafter marks when the short lifetime ended. */
#define TOKEN_WARN_ONLY_SECONDS 3607
#define TOKEN_EXTENDED_SECONDS (365LL * 24 * 3600)

/* Reads the body as a JSON object of the given kind; answers and returns NULL otherwise. */
static json_t *review_body(struct kp_call *call, const char *api_version, const char *kind)
{
    json_t *object = kp_call_read_object(call, false);
    if (!object)
        return NULL;
    const char *av = json_string_value(json_object_get(object, "apiVersion"));
    const char *k = json_string_value(json_object_get(object, "kind"));
    if ((av && *av && strcmp(av, api_version) != 0) || (k && *k && strcmp(k, kind) != 0)) {
        char message[400];
        snprintf(message, sizeof(message), "expected %s %s in the request body", api_version,
                 kind);
        json_decref(object);
        kp_call_bad_request(call, message);
        return NULL;
    }
    json_object_set_new(object, "apiVersion", json_string(api_version));
    json_object_set_new(object, "kind", json_string(kind));
    if (!json_is_object(json_object_get(object, "metadata")))
        json_object_set_new(object, "metadata", json_object());
    json_object_set_new(json_object_get(object, "metadata"), "creationTimestamp", json_null());
    return object;
}

static const char *call_api_version(struct kp_call *call, char *buf, size_t size)
{
    return kp_resource_api_version(call->resource, buf, size);
}

/* ---- authentication.k8s.io ---- */

/* The review's body, of this call's resource kind and version. */
static json_t *open_review(struct kp_call *call)
{
    char av[128];
    return review_body(call, call_api_version(call, av, sizeof(av)), call->resource->kind);
}


static bool string_list(const json_t *array, struct kp_strlist *out)
{
    if (!array || json_is_null(array))
        return true;
    if (!json_is_array(array))
        return false;
    size_t i;
    const json_t *v;
    json_array_foreach(array, i, v) {
        if (!json_is_string(v) || kp_strlist_add(out, json_string_value(v), NULL) != KP_OK)
            return false;
    }
    return true;
}

void kp_review_token(struct kp_call *call)
{
    json_t *review = open_review(call);
    if (!review)
        return;
    json_t *spec = json_object_get(review, "spec");
    const char *token = json_string_value(json_object_get(spec, "token"));
    struct kp_strlist audiences = {0};
    if (!token || !*token) {
        kp_call_invalid(call, "TokenReview", "", "spec.token: Required value");
    } else if (!string_list(json_object_get(spec, "audiences"), &audiences)) {
        kp_call_invalid(call, "TokenReview", "", "spec.audiences: Invalid value: must be a "
                                                 "list of strings");
    } else {
        struct kp_user user = {0};
        struct kp_authn_result result;
        struct kp_error err;
        struct kp_trust *trust = kp_api_trust(call->api);
        enum kp_result rc =
            kp_authn_token(trust->authn, token, &audiences, call->now, &user, &result, &err);
        kp_trust_unref(trust);
        if (rc != KP_OK) {
            kp_call_error(call, rc, err.message);
        } else {
            json_t *status = json_object();
            bool ok = result.outcome == KP_AUTHN_AUTHENTICATED;
            json_object_set_new(status, "authenticated", json_boolean(ok));
            if (ok) {
                json_object_set_new(status, "user", kp_user_to_json(&user));
                json_t *auds = json_array();
                for (size_t i = 0; i < result.audiences.count; i++)
                    json_array_append_new(auds, json_string(result.audiences.items[i]));
                json_object_set_new(status, "audiences", auds);
            } else {
                json_object_set_new(status, "user", json_object());
                json_object_set_new(status, "error", json_string(result.reason));
            }
            json_object_set_new(review, "status", status);
            kp_call_json(call, 201, review);
        }
        kp_user_wipe(&user);
        kp_authn_result_wipe(&result);
    }
    kp_strlist_wipe(&audiences);
    json_decref(review);
}

void kp_review_self_subject(struct kp_call *call)
{
    json_t *review = open_review(call);
    if (!review)
        return;
    json_object_set_new(review, "status", json_pack("{s:o}", "userInfo",
                                                    kp_user_to_json(&call->user)));
    kp_call_json(call, 201, review);
    json_decref(review);
}

/* ---- authorization.k8s.io ---- */

struct review_attrs {
    struct kp_authz_attrs attrs;
    struct kp_selector field, label;
};

/* Fills attrs from spec.resourceAttributes / nonResourceAttributes; answers 422 otherwise. */
static bool review_attributes(struct kp_call *call, const char *kind, const json_t *spec,
                              const struct kp_user *user, struct review_attrs *ra)
{
    memset(ra, 0, sizeof(*ra));
    ra->attrs.explain_allow = true; /* status.reason says which binding allowed it */
    const json_t *res = json_object_get(spec, "resourceAttributes");
    const json_t *non = json_object_get(spec, "nonResourceAttributes");
    if ((res && non) || (!res && !non)) {
        kp_call_invalid(call, kind, "",
                        "spec.resourceAttributes: Invalid value: exactly one of "
                        "nonResourceAttributes or resourceAttributes must be specified");
        return false;
    }
    struct kp_authz_attrs *a = &ra->attrs;
    a->user = user;
#define FIELD(obj, name) (json_string_value(json_object_get(obj, name)) ?: "")
    if (res) {
        a->resource_request = true;
        a->verb = FIELD(res, "verb");
        a->api_group = FIELD(res, "group");
        a->api_version = FIELD(res, "version");
        a->resource = FIELD(res, "resource");
        a->subresource = FIELD(res, "subresource");
        a->namespace_ = FIELD(res, "namespace");
        a->name = FIELD(res, "name");
        a->path = "";
        /* fieldSelector/labelSelector (1.31+): the rawSelector forms. */
        const char *field = json_string_value(
            json_object_get(json_object_get(res, "fieldSelector"), "rawSelector"));
        const char *label = json_string_value(
            json_object_get(json_object_get(res, "labelSelector"), "rawSelector"));
        struct kp_error err;
        if (field && *field) {
            if (kp_field_selector_parse(field, &ra->field, &err) != KP_OK) {
                kp_call_invalid(call, kind, "", err.message);
                return false;
            }
            a->field_selector = &ra->field;
        }
        if (label && *label) {
            if (kp_label_selector_parse(label, &ra->label, &err) != KP_OK) {
                kp_call_invalid(call, kind, "", err.message);
                return false;
            }
            a->label_selector = &ra->label;
        }
    } else {
        a->verb = FIELD(non, "verb");
        a->path = FIELD(non, "path");
        a->api_group = a->api_version = a->resource = a->subresource = "";
        a->namespace_ = a->name = "";
    }
#undef FIELD
    return true;
}

static void review_attrs_wipe(struct review_attrs *ra)
{
    kp_selector_wipe(&ra->field);
    kp_selector_wipe(&ra->label);
}

static void answer_access_review(struct kp_call *call, json_t *review,
                                 const struct kp_authz_attrs *attrs)
{
    struct kp_authz_decision decision;
    kp_authorize(call->api, attrs, &decision);
    json_t *status = json_pack("{s:b}", "allowed", decision.verdict == KP_AUTHZ_ALLOW);
    if (decision.verdict == KP_AUTHZ_DENY)
        json_object_set_new(status, "denied", json_true());
    if (decision.reason[0])
        json_object_set_new(status, "reason", json_string(decision.reason));
    json_object_set_new(review, "status", status);
    kp_call_json(call, 201, review);
}

/* A user from a SubjectAccessReview spec (user, uid, groups, extra). */
static bool spec_user(struct kp_call *call, const json_t *spec, struct kp_user *user)
{
    memset(user, 0, sizeof(*user));
    const char *name = json_string_value(json_object_get(spec, "user"));
    const char *uid = json_string_value(json_object_get(spec, "uid"));
    if (!string_list(json_object_get(spec, "groups"), &user->groups)) {
        kp_call_invalid(call, "SubjectAccessReview", "", "spec.groups: Invalid value: must be a "
                                                         "list of strings");
        return false;
    }
    if ((!name || !*name) && user->groups.count == 0) {
        kp_call_invalid(call, "SubjectAccessReview", "",
                        "spec.user: Invalid value: \"\": at least one of user or group must be "
                        "specified");
        kp_user_wipe(user);
        return false;
    }
    user->name = strdup(name ? name : "");
    user->uid = uid && *uid ? strdup(uid) : NULL;
    const json_t *extra = json_object_get(spec, "extra");
    if (json_is_object(extra))
        user->extra = json_deep_copy(extra);
    return true;
}

/* Authorizes the review's attributes for user and answers with the verdict. */
static void review_for(struct kp_call *call, json_t *review, const struct kp_user *user)
{
    struct review_attrs ra;
    if (review_attributes(call, call->resource->kind, json_object_get(review, "spec"), user,
                          &ra))
        answer_access_review(call, review, &ra.attrs);
    review_attrs_wipe(&ra);
}

/* The same for the user the review's spec names (SubjectAccessReview and the local one). */
static void review_for_spec_user(struct kp_call *call, json_t *review)
{
    struct kp_user user;
    if (spec_user(call, json_object_get(review, "spec"), &user)) {
        review_for(call, review, &user);
        kp_user_wipe(&user);
    }
}

void kp_review_subject_access(struct kp_call *call)
{
    json_t *review = open_review(call);
    if (review)
        review_for_spec_user(call, review);
    json_decref(review);
}

void kp_review_self_subject_access(struct kp_call *call)
{
    json_t *review = open_review(call);
    if (review)
        review_for(call, review, &call->user);
    json_decref(review);
}

void kp_review_local_subject_access(struct kp_call *call)
{
    json_t *review = open_review(call);
    if (!review)
        return;
    json_t *spec = json_object_get(review, "spec");
    json_t *res = json_object_get(spec, "resourceAttributes");
    const char *ns = json_string_value(json_object_get(res, "namespace"));
    if (json_object_get(spec, "nonResourceAttributes")) {
        kp_call_invalid(call, "LocalSubjectAccessReview", "",
                        "spec.nonResourceAttributes: Invalid value: disallowed on this kind of "
                        "request");
    } else if (ns && *ns && strcmp(ns, call->info.namespace_) != 0) {
        kp_call_invalid(call, "LocalSubjectAccessReview", "",
                        "spec.resourceAttributes.namespace: Invalid value: must match "
                        "metadata.namespace");
    } else {
        if (json_is_object(res))
            json_object_set_new(res, "namespace", json_string(call->info.namespace_));
        kp_meta_set_str(review, "namespace", call->info.namespace_);
        review_for_spec_user(call, review);
    }
    json_decref(review);
}

void kp_review_self_subject_rules(struct kp_call *call)
{
    json_t *review = open_review(call);
    if (!review)
        return;
    const char *ns = json_string_value(json_object_get(json_object_get(review, "spec"),
                                                       "namespace"));
    json_t *status;
    if (kp_user_in_group(&call->user, KP_GROUP_MASTERS)) {
        status = json_pack("{s:[{s:[s], s:[s], s:[s]}], s:[{s:[s], s:[s]}], s:b}",
                           "resourceRules", "verbs", "*", "apiGroups", "*", "resources", "*",
                           "nonResourceRules", "verbs", "*", "nonResourceURLs", "*",
                           "incomplete", false);
    } else {
        struct kp_rbac *rbac = kp_api_rbac(call->api);
        status = rbac ? kp_rbac_rules_for(rbac, &call->user, ns ? ns : "") : NULL;
        kp_rbac_unref(rbac);
        /* The Node authorizer cannot list its rules: say so, as upstream does. */
        if (status && kp_node_identity(&call->user))
            json_object_set_new(status, "incomplete", json_true());
    }
    if (!status) {
        json_decref(review);
        kp_call_status(call, 503, "ServiceUnavailable", "the RBAC policy is not loaded", NULL,
                       NULL, NULL);
        return;
    }
    json_object_set_new(review, "status", status);
    kp_call_json(call, 201, review);
    json_decref(review);
}

/* ---- serviceaccounts/token ---- */

static const struct kp_resource *core(const char *plural)
{
    return kp_resource_find("", "v1", plural);
}

/* Loads the object a token is bound to; answers the call and returns NULL on failure. */
static json_t *bound_object(struct kp_call *call, const json_t *ref, const char **kind)
{
    *kind = json_string_value(json_object_get(ref, "kind"));
    const char *api_version = json_string_value(json_object_get(ref, "apiVersion"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    const char *uid = json_string_value(json_object_get(ref, "uid"));
    const char *plural = !*kind                          ? NULL
                         : strcmp(*kind, "Pod") == 0    ? "pods"
                         : strcmp(*kind, "Secret") == 0 ? "secrets"
                         : strcmp(*kind, "Node") == 0   ? "nodes"
                                                        : NULL;
    char message[600];
    if (!plural) {
        snprintf(message, sizeof(message),
                 "spec.boundObjectRef.kind: Unsupported value: \"%.100s\": supported values: "
                 "\"Pod\", \"Secret\", \"Node\"",
                 *kind ? *kind : "");
        kp_call_invalid(call, "TokenRequest", call->info.name, message);
        return NULL;
    }
    if (api_version && *api_version && strcmp(api_version, "v1") != 0) {
        kp_call_invalid(call, "TokenRequest", call->info.name,
                        "spec.boundObjectRef.apiVersion: Unsupported value: supported values: "
                        "\"v1\"");
        return NULL;
    }
    if (!name || !*name) {
        kp_call_invalid(call, "TokenRequest", call->info.name,
                        "spec.boundObjectRef.name: Required value");
        return NULL;
    }
    json_t *object = NULL;
    struct kp_error err;
    const char *ns = strcmp(plural, "nodes") == 0 ? "" : call->info.namespace_;
    enum kp_result rc = kp_registry_get(call->api, core(plural), ns, name, &object, &err);
    if (rc == KP_ERR_NOT_FOUND) {
        snprintf(message, sizeof(message), "%s \"%s\" not found", plural, name);
        kp_call_status(call, 404, "NotFound", message, name, "", plural);
        return NULL;
    }
    if (rc != KP_OK) {
        kp_call_error(call, rc, err.message);
        return NULL;
    }
    const char *actual = kp_meta_str(object, "uid");
    if (uid && *uid && (!actual || strcmp(uid, actual) != 0)) {
        snprintf(message, sizeof(message),
                 "Operation cannot be fulfilled on %s \"%s\": the UID in the bound object "
                 "reference (%.40s) does not match the UID in record. The object might have "
                 "been deleted and then recreated",
                 plural, name, uid);
        kp_call_status(call, 409, "Conflict", message, name, "", plural);
        json_decref(object);
        return NULL;
    }
    return object;
}

static bool expiration(struct kp_call *call, json_t *spec, int64_t *seconds)
{
    const json_t *value = json_object_get(spec, "expirationSeconds");
    if (json_is_null(value))
        value = NULL; /* kubectl sends null for "the default" */
    *seconds = value ? json_integer_value(value) : TOKEN_DEFAULT_SECONDS;
    char message[200];
    if (value && !json_is_integer(value)) {
        kp_call_invalid(call, "TokenRequest", call->info.name,
                        "spec.expirationSeconds: Invalid value: must be an integer");
        return false;
    }
    if (*seconds < TOKEN_MIN_SECONDS) {
        snprintf(message, sizeof(message),
                 "spec.expirationSeconds: Invalid value: %lld: may not specify a duration less "
                 "than 10 minutes",
                 (long long)*seconds);
        kp_call_invalid(call, "TokenRequest", call->info.name, message);
        return false;
    }
    if (*seconds > TOKEN_MAX_SECONDS) {
        snprintf(message, sizeof(message),
                 "spec.expirationSeconds: Invalid value: %lld: may not specify a duration "
                 "larger than 2^32 seconds",
                 (long long)*seconds);
        kp_call_invalid(call, "TokenRequest", call->info.name, message);
        return false;
    }
    int64_t max = call->api->config.service_account_max_token_expiration;
    if (max > 0 && *seconds > max)
        *seconds = max;
    json_object_set_new(spec, "expirationSeconds", json_integer(*seconds));
    return true;
}

void kp_token_request(struct kp_call *call)
{
    json_t *request = review_body(call, "authentication.k8s.io/v1", "TokenRequest");
    if (!request)
        return;
    json_t *sa = NULL, *bound = NULL, *node = NULL, *claims = NULL;
    char *token = NULL;
    size_t token_len = 0;
    struct kp_strlist audiences = {0};
    struct kp_error err;
    enum kp_result rc = kp_registry_get(call->api, core("serviceaccounts"),
                                        call->info.namespace_, call->info.name, &sa, &err);
    json_t *spec = json_object_get(request, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(request, "spec", spec);
    }
    int64_t seconds = 0;
    const char *kind = "";
    if (rc != KP_OK) {
        kp_call_error(call, rc, err.message);
        goto out;
    }
    if (!string_list(json_object_get(spec, "audiences"), &audiences)) {
        kp_call_invalid(call, "TokenRequest", call->info.name,
                        "spec.audiences: Invalid value: must be a list of strings");
        goto out;
    }
    if (!audiences.count) {
        if (kp_strlist_copy(&audiences, &call->api->config.api_audiences, &err) != KP_OK) {
            kp_call_error(call, KP_ERR_IO, err.message);
            goto out;
        }
        json_t *auds = json_array();
        for (size_t i = 0; i < audiences.count; i++)
            json_array_append_new(auds, json_string(audiences.items[i]));
        json_object_set_new(spec, "audiences", auds);
    }
    if (!expiration(call, spec, &seconds))
        goto out;
    const json_t *ref = json_object_get(spec, "boundObjectRef");
    if (ref && !json_is_null(ref)) {
        bound = bound_object(call, ref, &kind);
        if (!bound)
            goto out;
        if (strcmp(kind, "Pod") == 0) {
            const char *pod_sa = json_string_value(
                json_object_get(json_object_get(bound, "spec"), "serviceAccountName"));
            if (!pod_sa || strcmp(pod_sa, call->info.name) != 0) {
                char message[400];
                snprintf(message, sizeof(message),
                         "cannot bind token for serviceaccount \"%s\" to pod running with "
                         "different serviceaccount name.",
                         call->info.name);
                kp_call_bad_request(call, message);
                goto out;
            }
            const char *node_name = json_string_value(
                json_object_get(json_object_get(bound, "spec"), "nodeName"));
            if (node_name && *node_name)
                node = kp_registry_lookup(call->api, "nodes", "", node_name);
        }
    }
    if (!kp_admit(call, "CREATE", call->info.name, request, NULL))
        goto out;
    int64_t lifetime = seconds, warn_after = 0;
    /* Only the kubelet's projected tokens for the API itself are extended (token.go: pod-bound,
     * 3607 s, and every audience one of the API audiences). */
    bool api_audiences_only = audiences.count > 0;
    for (size_t i = 0; i < audiences.count; i++)
        api_audiences_only &= kp_strlist_contains(&call->api->config.api_audiences,
                                                  audiences.items[i]);
    if (seconds == TOKEN_WARN_ONLY_SECONDS && bound && strcmp(kind, "Pod") == 0 &&
        api_audiences_only && call->api->config.service_account_extend_token_expiration) {
        lifetime = TOKEN_EXTENDED_SECONDS;
        warn_after = call->now + seconds;
    }
    struct kp_sa_claims_params params = {
        .issuer = call->api->config.service_account_issuers.items[0],
        .audiences = &audiences,
        .namespace_ = call->info.namespace_,
        .sa_name = call->info.name,
        .sa_uid = kp_meta_str(sa, "uid") ? kp_meta_str(sa, "uid") : "",
        .binding = {.kind = bound ? kind : "",
                    .name = bound ? kp_meta_str(bound, "name") : NULL,
                    .uid = bound ? kp_meta_str(bound, "uid") : NULL,
                    .node_name = node ? kp_meta_str(node, "name") : NULL,
                    .node_uid = node ? kp_meta_str(node, "uid") : NULL},
        .now = call->now,
        .expiration_seconds = lifetime,
        .warn_after = warn_after,
    };
    rc = kp_sa_claims(&params, &claims, &err);
    if (rc == KP_OK)
        rc = kp_jwt_sign(call->api->signing_key, call->api->signing_kid, claims, &token,
                         &token_len, &err);
    if (rc != KP_OK) {
        kp_call_error(call, rc, err.message);
        goto out;
    }
    if (bound) {
        json_t *r = json_object_get(spec, "boundObjectRef");
        json_object_set_new(r, "apiVersion", json_string("v1"));
        json_object_set_new(r, "uid", json_string(kp_meta_str(bound, "uid")));
    }
    char expires[40], created[40];
    kp_timestamp(call->now + lifetime, expires, sizeof(expires));
    kp_timestamp(call->now, created, sizeof(created));
    json_t *meta = json_object_get(request, "metadata");
    json_object_set_new(meta, "name", json_string(call->info.name));
    json_object_set_new(meta, "namespace", json_string(call->info.namespace_));
    json_object_set_new(meta, "creationTimestamp", json_string(created));
    json_object_set_new(request, "status", json_pack("{s:s%, s:s}", "token", token, token_len,
                                                     "expirationTimestamp", expires));
    kp_call_json(call, 201, request);
out:
    if (token)
        kp_secret_free(token, token_len);
    json_decref(claims);
    json_decref(node);
    json_decref(bound);
    json_decref(sa);
    kp_strlist_wipe(&audiences);
    json_decref(request);
}

/* ---- pods/binding ---- */

void kp_pod_binding(struct kp_call *call)
{
    json_t *binding = review_body(call, "v1", "Binding");
    if (!binding)
        return;
    const json_t *target = json_object_get(binding, "target");
    const char *node = json_string_value(json_object_get(target, "name"));
    const char *kind = json_string_value(json_object_get(target, "kind"));
    const char *name = kp_meta_str(binding, "name");
    struct kp_error err;
    if (!node || !*node || (kind && *kind && strcmp(kind, "Node") != 0)) {
        kp_call_invalid(call, "Binding", call->info.name, "target.name: Required value: a Node");
        json_decref(binding);
        return;
    }
    if (name && *name && strcmp(name, call->info.name) != 0) {
        kp_call_bad_request(call, "the name of the Binding does not match the pod's");
        json_decref(binding);
        return;
    }
    for (int attempt = 0; attempt < 16; attempt++) {
        json_t *pod = NULL;
        enum kp_result rc = kp_registry_get(call->api, call->resource, call->info.namespace_,
                                            call->info.name, &pod, &err);
        if (rc != KP_OK) {
            kp_call_error(call, rc, err.message);
            break;
        }
        json_t *spec = json_object_get(pod, "spec");
        const char *current = json_string_value(json_object_get(spec, "nodeName"));
        if (current && *current) {
            char why[400];
            snprintf(why, sizeof(why), "pod %s is already assigned to node \"%s\"",
                     call->info.name, current);
            json_decref(pod);
            kp_call_conflict(call, call->info.name, why);
            break;
        }
        if (kp_meta_str(pod, "deletionTimestamp")) {
            json_decref(pod);
            kp_call_conflict(call, call->info.name, "pod is being deleted, cannot be assigned "
                                                    "to a host");
            break;
        }
        json_object_set_new(spec, "nodeName", json_string(node));
        char *end;
        int64_t rv = strtoll(kp_meta_str(pod, "resourceVersion"), &end, 10);
        rc = kp_registry_update(call->api, call->resource, pod, rv, &err);
        json_decref(pod);
        if (rc == KP_ERR_CONFLICT)
            continue;
        if (rc != KP_OK) {
            kp_call_error(call, rc, err.message);
            break;
        }
        kp_call_status(call, 201, "", "", NULL, NULL, NULL);
        break;
    }
    if (!call->responded)
        kp_call_conflict(call, call->info.name, "too many concurrent writes; try again");
    json_decref(binding);
}

/* ---- issuer discovery ---- */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum kp_result kp_oidc_documents(const struct kp_api *api, EVP_PKEY *const *verify_keys,
                                 size_t key_count, json_t **jwks, json_t **openid,
                                 struct kp_error *err)
{
    *jwks = NULL;
    *openid = NULL;
    size_t n = key_count;
    struct kp_jwt_key *keys = calloc(n ? n : 1, sizeof(*keys));
    const char **algs = calloc(n ? n : 1, sizeof(*algs));
    enum kp_result rc = keys && algs ? KP_OK : kp_error_set(err, KP_ERR_IO, "out of memory");
    size_t alg_count = 0;
    for (size_t i = 0; rc == KP_OK && i < n; i++) {
        keys[i].key = verify_keys[i];
        rc = kp_jwt_key_id(keys[i].key, keys[i].kid, sizeof(keys[i].kid), err);
        const char *alg = kp_jwt_alg_for_key(keys[i].key);
        bool seen = false;
        for (size_t j = 0; j < alg_count; j++)
            seen |= strcmp(algs[j], alg) == 0;
        if (!seen)
            algs[alg_count++] = alg;
    }
    if (rc == KP_OK)
        rc = kp_jwt_jwks(keys, n, jwks, err);
    if (rc == KP_OK) {
        qsort(algs, alg_count, sizeof(*algs), compare_strings);
        json_t *alg_list = json_array();
        for (size_t i = 0; i < alg_count; i++)
            json_array_append_new(alg_list, json_string(algs[i]));
        char jwks_uri[600];
        if (api->config.service_account_jwks_uri)
            snprintf(jwks_uri, sizeof(jwks_uri), "%s", api->config.service_account_jwks_uri);
        else
            snprintf(jwks_uri, sizeof(jwks_uri), "https://%s:%d/openid/v1/jwks",
                     api->config.advertise_address ? api->config.advertise_address
                                                   : "127.0.0.1",
                     api->config.secure_port ? api->config.secure_port : 6443);
        *openid = json_pack("{s:s, s:s, s:[s], s:[s], s:o}", "issuer",
                                api->config.service_account_issuers.items[0], "jwks_uri",
                                jwks_uri, "response_types_supported", "id_token",
                                "subject_types_supported", "public",
                                "id_token_signing_alg_values_supported", alg_list);
        if (!*openid)
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    if (rc != KP_OK) {
        json_decref(*jwks);
        *jwks = NULL;
    }
    free(keys);
    free(algs);
    return rc;
}
