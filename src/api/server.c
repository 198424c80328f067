/*
 * The API server: start-up (certificates, keys, store, default objects), the request pipeline
 * (route -> authenticate -> impersonate -> authorize -> handle) and the non-resource endpoints
 * (/healthz, /livez, /readyz, /version, the issuer discovery documents).
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <time.h>

#include "api/api.h"
#include "core/file.h"
#include "core/log.h"
#include "crypto/crypto.h"

struct kp_apiserver {
    struct kp_api api;
};

#define KP_K8S_MAJOR "1"
#define KP_K8S_MINOR "31"
#define MAX_HEADERS 128

/* ---- configuration ---- */

bool kp_api_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        pthread_cond_init(cond, NULL);
        return false;
    }
    bool monotonic = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
                     pthread_cond_init(cond, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!monotonic)
        pthread_cond_init(cond, NULL); /* so that destroying it stays defined */
    return monotonic;
}

void kp_apiserver_config_init(struct kp_apiserver_config *config)
{
    memset(config, 0, sizeof(*config));
    config->bind_address = "0.0.0.0";
    config->secure_port = 6443;
    config->service_account_extend_token_expiration = true;
    config->enable_bootstrap_token_auth = true;
    config->token_cache_entries = 4096;
    config->client_cert_cache_entries = 4096;
    config->min_request_timeout = 1800;
    kp_http_limits_default(&config->limits);
}

void kp_apiserver_config_wipe(struct kp_apiserver_config *config)
{
    kp_strlist_wipe(&config->requestheader_allowed_names);
    kp_strlist_wipe(&config->requestheader_username_headers);
    kp_strlist_wipe(&config->requestheader_group_headers);
    kp_strlist_wipe(&config->requestheader_extra_headers_prefix);
    kp_strlist_wipe(&config->service_account_key_files);
    kp_strlist_wipe(&config->service_account_issuers);
    kp_strlist_wipe(&config->api_audiences);
    kp_strlist_wipe(&config->authorization_modes);
}

/* Copies a string into api->owned so that the config copy outlives the caller's strings. */
static const char *own(struct kp_api *api, const char *text)
{
    if (!text)
        return NULL;
    if (kp_strlist_add(&api->owned, text, NULL) != KP_OK)
        return NULL;
    return api->owned.items[api->owned.count - 1];
}

static enum kp_result copy_config(struct kp_api *api, const struct kp_apiserver_config *in,
                                  struct kp_error *err)
{
    struct kp_apiserver_config *c = &api->config;
    *c = *in;
    memset(&c->requestheader_allowed_names, 0, sizeof(struct kp_strlist));
    memset(&c->requestheader_username_headers, 0, sizeof(struct kp_strlist));
    memset(&c->requestheader_group_headers, 0, sizeof(struct kp_strlist));
    memset(&c->requestheader_extra_headers_prefix, 0, sizeof(struct kp_strlist));
    memset(&c->service_account_key_files, 0, sizeof(struct kp_strlist));
    memset(&c->service_account_issuers, 0, sizeof(struct kp_strlist));
    memset(&c->api_audiences, 0, sizeof(struct kp_strlist));
    memset(&c->authorization_modes, 0, sizeof(struct kp_strlist));
    const char **strings[] = {&c->bind_address, &c->advertise_address, &c->tls_cert_file,
                              &c->tls_private_key_file, &c->client_ca_file, &c->client_crl_file,
                              &c->requestheader_client_ca_file,
                              &c->requestheader_client_crl_file,
                              &c->service_account_signing_key_file,
                              &c->service_account_jwks_uri, &c->storage_file};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (*strings[i] && !(*strings[i] = own(api, *strings[i])))
            return kp_error_set(err, KP_ERR_IO, "out of memory");
    enum kp_result rc = KP_OK;
    if ((rc = kp_strlist_copy(&c->requestheader_allowed_names, &in->requestheader_allowed_names,
                              err)) != KP_OK ||
        (rc = kp_strlist_copy(&c->requestheader_username_headers,
                              &in->requestheader_username_headers, err)) != KP_OK ||
        (rc = kp_strlist_copy(&c->requestheader_group_headers, &in->requestheader_group_headers,
                              err)) != KP_OK ||
        (rc = kp_strlist_copy(&c->requestheader_extra_headers_prefix,
                              &in->requestheader_extra_headers_prefix, err)) != KP_OK ||
        (rc = kp_strlist_copy(&c->service_account_key_files, &in->service_account_key_files,
                              err)) != KP_OK ||
        (rc = kp_strlist_copy(&c->service_account_issuers, &in->service_account_issuers,
                              err)) != KP_OK ||
        (rc = kp_strlist_copy(&c->api_audiences, &in->api_audiences, err)) != KP_OK ||
        (rc = kp_strlist_copy(&c->authorization_modes, &in->authorization_modes, err)) != KP_OK)
        return rc;
    if (!c->authorization_modes.count &&
        ((rc = kp_strlist_add(&c->authorization_modes, "Node", err)) != KP_OK ||
         (rc = kp_strlist_add(&c->authorization_modes, "RBAC", err)) != KP_OK))
        return rc;
    for (size_t i = 0; i < c->authorization_modes.count; i++) {
        const char *mode = c->authorization_modes.items[i];
        if (strcmp(mode, "Node") && strcmp(mode, "RBAC") && strcmp(mode, "AlwaysAllow") &&
            strcmp(mode, "AlwaysDeny"))
            return kp_error_set(err, KP_ERR_INVALID,
                                "--authorization-mode: unknown mode \"%s\" (Node, RBAC, "
                                "AlwaysAllow, AlwaysDeny)",
                                mode);
    }
    if (!c->service_account_issuers.count &&
        (rc = kp_strlist_add(&c->service_account_issuers,
                             "https://kubernetes.default.svc.cluster.local", err)) != KP_OK)
        return rc;
    if (!c->api_audiences.count)
        rc = kp_strlist_copy(&c->api_audiences, &c->service_account_issuers, err);
    return rc;
}

/* ---- loading files ---- */

static enum kp_result load_signing_key(struct kp_api *api, const char *path,
                                       struct kp_error *err)
{
    enum kp_result rc = kp_key_from_file(path, &api->signing_key, err);
    if (rc == KP_OK && !kp_jwt_alg_for_key(api->signing_key))
        rc = kp_error_set(err, KP_ERR_INVALID, "key type not supported (RSA, P-256, P-384)");
    if (rc == KP_OK)
        rc = kp_jwt_key_id(api->signing_key, api->signing_kid, sizeof(api->signing_kid), err);
    if (rc != KP_OK)
        return kp_error_prefix(err, "--service-account-signing-key-file");
    return KP_OK;
}

/* ---- the internal watch: RBAC changes and the Node authorizer's graph ---- */

static bool has_prefix(const char *key, const char *prefix)
{
    return strncmp(key, prefix, strlen(prefix)) == 0;
}

static void internal_event(void *context, const struct kp_store_event *event)
{
    struct kp_api *api = context;
    const char *key = event->kv.key;
    kp_objcache_changed(api->objcache, key, event->kv.mod_revision);
    if (has_prefix(key, "/registry/clusterroles/") ||
        has_prefix(key, "/registry/clusterrolebindings/") || has_prefix(key, "/registry/roles/") ||
        has_prefix(key, "/registry/rolebindings/")) {
        atomic_store(&api->rbac_dirty, true);
        return;
    }
    if (!has_prefix(key, "/registry/pods/"))
        return;
    json_t *pod = json_loadb(event->kv.value, event->kv.value_len, 0, NULL);
    const char *ns = kp_meta_str(pod, "namespace");
    const char *name = kp_meta_str(pod, "name");
    if (event->type == KP_STORE_DELETE) {
        if (ns && name)
            kp_node_graph_delete_pod(api->graph, ns, name);
    } else if (pod) {
        struct kp_error err;
        if (kp_node_graph_put_pod(api->graph, pod, &err) != KP_OK)
            kp_log_warn("node authorizer: pod %s: %s", key, err.message);
    }
    json_decref(pod);
}

static enum kp_result start_internal_watch(struct kp_api *api, struct kp_error *err)
{
    int64_t revision = kp_store_revision(api->store);
    /* Coherent from this revision on, as the watch below is (objcache.h). */
    api->objcache = kp_objcache_new(KP_OBJCACHE_ENTRIES, revision);
    if (!api->objcache)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    json_t *pods = NULL;
    enum kp_result rc =
        kp_registry_list_all(api, kp_resource_find("", "v1", "pods"), "", &pods, err);
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod) {
        if (rc == KP_OK)
            rc = kp_node_graph_put_pod(api->graph, pod, err);
    }
    json_decref(pods);
    /* Watch from the revision read before listing: a pod written in between is seen twice,
     * which putting it again makes harmless. */
    if (rc == KP_OK)
        rc = kp_store_watch(api->store, "/registry/", revision, internal_event, api,
                            &api->internal_watch, err);
    return rc;
}

/* ---- the pipeline ---- */

static bool parse_selectors(struct kp_call *call)
{
    const char *label = kp_http_query(call->http, "labelSelector");
    const char *field = kp_http_query(call->http, "fieldSelector");
    struct kp_error err;
    if (label && *label) {
        if (kp_label_selector_parse(label, &call->label_selector, &err) != KP_OK) {
            kp_call_bad_request(call, err.message);
            return false;
        }
        call->has_label_selector = true;
    }
    if (field && *field) {
        if (kp_field_selector_parse(field, &call->field_selector, &err) != KP_OK) {
            kp_call_bad_request(call, err.message);
            return false;
        }
        call->has_field_selector = true;
        /* A list or watch pinned to one name is about that object (requestinfo.go). */
        const char *name = kp_selector_required_value(&call->field_selector, "metadata.name");
        if (name && !*call->info.name &&
            (strcmp(call->info.verb, "list") == 0 || strcmp(call->info.verb, "watch") == 0))
            call->info.name = name;
    }
    return true;
}

/* The connection's memo of its client chain's verification (created with the first request
 * that presents a chain; NULL without one, or out of memory: verified every time). */
static struct kp_authn_memo *connection_memo(struct kp_call *call)
{
    if (!kp_http_peer_chain(call->http))
        return NULL;
    struct kp_authn_memo *memo = kp_http_conn_data(call->http);
    if (!memo && (memo = calloc(1, sizeof(*memo))))
        kp_http_conn_set_data(call->http, memo);
    return memo;
}

static bool authenticate(struct kp_call *call)
{
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    struct kp_header headers[MAX_HEADERS];
    size_t count = kp_http_headers(call->http, names, values, MAX_HEADERS);
    for (size_t i = 0; i < count; i++) {
        headers[i].name = names[i];
        headers[i].value = values[i];
    }
    struct kp_authn_input input = {
        .peer_chain = kp_http_peer_chain(call->http),
        .authorization = kp_http_header(call->http, "Authorization"),
        .headers = headers,
        .header_count = count,
        .memo = connection_memo(call),
    };
    struct kp_authn_result result;
    struct kp_error err;
    /* The snapshot current now: a reload during this call does not free it under us. */
    struct kp_trust *trust = kp_api_trust(call->api);
    enum kp_result rc =
        kp_authn_request(trust->authn, &input, call->now, &call->user, &result, &err);
    kp_trust_unref(trust);
    /* For a refusal, the credential presented stands for the method. */
    const char *presented = input.authorization ? "token" : input.peer_chain ? "x509" : "none";
    if (rc != KP_OK) {
        kp_metrics_authn(call->api->metrics, presented, "error");
        kp_authn_result_wipe(&result);
        kp_call_error(call, rc, err.message);
        return false;
    }
    kp_metrics_authn(call->api->metrics,
                     result.outcome == KP_AUTHN_REFUSED ? presented : result.method,
                     result.outcome == KP_AUTHN_REFUSED ? "failure" : "success");
    if (result.outcome == KP_AUTHN_REFUSED) {
        kp_log_info("401 %s %s from %s: %s", call->method, call->path,
                    kp_http_remote(call->http), result.reason);
        kp_authn_result_wipe(&result);
        kp_call_status(call, 401, "Unauthorized", "Unauthorized", NULL, NULL, NULL);
        return false;
    }
    kp_authn_result_wipe(&result);
    return true;
}

/* Impersonate-User / -Group / -Uid / -Extra-* (apiserver/pkg/endpoints/filters/impersonation.go):
 * each is authorized as verb "impersonate" on users, groups, uids, userextras/<key> or
 * serviceaccounts, and the request then runs as the impersonated user. */
static bool impersonation_allowed(struct kp_call *call, const char *group, const char *resource,
                                  const char *subresource, const char *ns, const char *name)
{
    struct kp_authz_attrs attrs = {
        .user = &call->user, .resource_request = true, .verb = "impersonate",
        .api_group = group, .api_version = "", .resource = resource,
        .subresource = subresource, .namespace_ = ns, .name = name, .path = call->path,
    };
    struct kp_authz_decision decision;
    kp_authorize(call->api, &attrs, &decision);
    if (decision.verdict == KP_AUTHZ_ALLOW)
        return true;
    char message[2048];
    kp_forbidden_message(&attrs, decision.reason, message, sizeof(message));
    kp_call_status(call, 403, "Forbidden", message, name, group, resource);
    return false;
}

static bool impersonate(struct kp_call *call)
{
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t count = kp_http_headers(call->http, names, values, MAX_HEADERS);
    const char *user = NULL, *uid = NULL;
    bool any = false;
    for (size_t i = 0; i < count; i++) {
        if (strncasecmp(names[i], "Impersonate-", 12) != 0)
            continue;
        any = true;
        if (strcasecmp(names[i], "Impersonate-User") == 0)
            user = values[i];
        else if (strcasecmp(names[i], "Impersonate-Uid") == 0)
            uid = values[i];
    }
    if (!any)
        return true;
    if (!user || !*user) {
        kp_call_bad_request(call, "requested impersonation without Impersonate-User");
        return false;
    }
    struct kp_user as = {0};
    bool ok = true;
    if (strncmp(user, KP_SA_USER_PREFIX, strlen(KP_SA_USER_PREFIX)) == 0) {
        char ns[256], sa[256];
        const char *rest = user + strlen(KP_SA_USER_PREFIX);
        const char *colon = strchr(rest, ':');
        if (!colon || (size_t)(colon - rest) >= sizeof(ns)) {
            kp_call_bad_request(call, "Impersonate-User: malformed service account name");
            return false;
        }
        snprintf(ns, sizeof(ns), "%.*s", (int)(colon - rest), rest);
        snprintf(sa, sizeof(sa), "%s", colon + 1);
        ok = impersonation_allowed(call, "", "serviceaccounts", "", ns, sa);
        if (ok) {
            char group[300];
            snprintf(group, sizeof(group), "%s:%s", KP_GROUP_SERVICEACCOUNTS, ns);
            ok = kp_strlist_add(&as.groups, KP_GROUP_SERVICEACCOUNTS, NULL) == KP_OK &&
                 kp_strlist_add(&as.groups, group, NULL) == KP_OK;
        }
    } else {
        ok = impersonation_allowed(call, "", "users", "", "", user);
    }
    for (size_t i = 0; ok && i < count; i++) {
        if (strcasecmp(names[i], "Impersonate-Group") == 0) {
            ok = impersonation_allowed(call, "", "groups", "", "", values[i]) &&
                 kp_strlist_add(&as.groups, values[i], NULL) == KP_OK;
        } else if (strncasecmp(names[i], "Impersonate-Extra-", 18) == 0) {
            char key[256];
            snprintf(key, sizeof(key), "%s", names[i] + 18);
            for (char *k = key; *k; k++)
                *k = (char)((*k >= 'A' && *k <= 'Z') ? *k + 32 : *k);
            ok = impersonation_allowed(call, "authentication.k8s.io", "userextras", key, "",
                                       values[i]);
            if (ok) {
                if (!as.extra)
                    as.extra = json_object();
                json_t *list = json_object_get(as.extra, key);
                if (!list) {
                    list = json_array();
                    json_object_set_new(as.extra, key, list);
                }
                json_array_append_new(list, json_string(values[i]));
            }
        }
    }
    if (ok && uid)
        ok = impersonation_allowed(call, "authentication.k8s.io", "uids", "", "", uid);
    if (ok && strcmp(user, KP_USER_ANONYMOUS) != 0 &&
        !kp_strlist_contains(&as.groups, KP_GROUP_AUTHENTICATED))
        ok = kp_strlist_add(&as.groups, KP_GROUP_AUTHENTICATED, NULL) == KP_OK;
    if (ok) {
        as.name = strdup(user);
        as.uid = uid ? strdup(uid) : NULL;
        ok = as.name != NULL;
    }
    if (!ok) {
        kp_user_wipe(&as);
        if (!call->responded)
            kp_call_status(call, 500, "InternalError", "impersonation failed", NULL, NULL, NULL);
        return false;
    }
    kp_user_wipe(&call->user);
    call->user = as;
    return true;
}

static bool authorize(struct kp_call *call)
{
    struct kp_authz_attrs attrs;
    kp_call_attrs(call, &attrs);
    struct kp_authz_decision decision;
    kp_authorize(call->api, &attrs, &decision);
    if (decision.verdict == KP_AUTHZ_ALLOW)
        return true;
    char message[2048];
    kp_forbidden_message(&attrs, decision.reason, message, sizeof(message));
    kp_call_status(call, 403, "Forbidden", message, attrs.name, attrs.api_group,
                   attrs.resource_request ? attrs.resource : "");
    return false;
}

static unsigned verb_bit(const char *verb)
{
    static const struct {
        const char *name;
        unsigned bit;
    } verbs[] = {{"get", KP_VERB_GET},       {"list", KP_VERB_LIST},
                 {"watch", KP_VERB_WATCH},   {"create", KP_VERB_CREATE},
                 {"update", KP_VERB_UPDATE}, {"patch", KP_VERB_PATCH},
                 {"delete", KP_VERB_DELETE}, {"deletecollection", KP_VERB_DELETECOLLECTION}};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verbs[i].name, verb) == 0)
            return verbs[i].bit;
    return 0;
}

static void not_found_path(struct kp_call *call)
{
    kp_call_status(call, 404, "NotFound", "the server could not find the requested resource",
                   NULL, NULL, NULL);
}

static void route_resource(struct kp_call *call)
{
    struct kp_request_info *info = &call->info;
    const struct kp_resource *resource = kp_resource_find(info->group, info->version,
                                                          info->resource);
    bool named = *info->name != '\0';
    bool is_namespaces = !resource || (!resource->group[0] &&
                                       strcmp(resource->plural, "namespaces") == 0);
    if (!resource || (resource->namespaced && !*info->namespace_ && named) ||
        (!resource->namespaced && *info->namespace_ && !is_namespaces)) {
        not_found_path(call);
        return;
    }
    call->resource = resource;
    if (is_namespaces)
        info->namespace_ = ""; /* a namespace is cluster-scoped storage */
    const struct kp_subresource *sub = NULL;
    if (*info->subresource) {
        sub = kp_subresource_find(resource, info->subresource);
        if (!sub) {
            not_found_path(call);
            return;
        }
        call->subresource = sub;
    }
    unsigned verbs = sub ? sub->verbs : resource->verbs;
    if (!(verb_bit(info->verb) & verbs)) {
        kp_call_method_not_allowed(call);
        return;
    }
    if (strcmp(info->verb, "watch") == 0)
        kp_watch_handle(call);
    else if (sub && sub->handle)
        sub->handle(call);
    else if (sub)
        kp_rest_status_subresource(call);
    else if (resource->create)
        resource->create(call);
    else
        kp_rest_handle(call);
}

static void handler(void *context, struct kp_http_request *request)
{
    struct kp_api *api = context;
    struct kp_call call = {
        .api = api,
        .http = request,
        .method = kp_http_method(request),
        .path = kp_http_path(request),
        .now = kp_clock_now(api->clock),
    };
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    const char *watch = kp_http_query(request, "watch");
    bool watching = watch && (strcmp(watch, "true") == 0 || strcmp(watch, "1") == 0);
    struct kp_error err;
    enum kp_result rc = kp_request_info_parse(call.method, call.path, watching, &call.info, &err);
    if (rc != KP_OK) {
        if (rc == KP_ERR_NOT_FOUND)
            not_found_path(&call);
        else if (rc == KP_ERR_INVALID && strstr(err.message, "method"))
            kp_call_method_not_allowed(&call);
        else
            kp_call_error(&call, rc, err.message);
    } else if (authenticate(&call) && kp_call_negotiate(&call) && parse_selectors(&call) &&
               impersonate(&call) && authorize(&call)) {
        if (call.info.resource_request)
            route_resource(&call);
        else
            kp_nonresource_handle(&call);
    }
    if (!call.responded)
        kp_log_error("%s %s: no response was sent", call.method, call.path);
    struct timespec ended;
    clock_gettime(CLOCK_MONOTONIC, &ended);
    kp_metrics_request(api->metrics, &call, kp_http_response_status(request),
                       (ended.tv_sec - started.tv_sec) * 1000000 +
                           (ended.tv_nsec - started.tv_nsec) / 1000);
    kp_log_debug("%s %s user=%s verb=%s", call.method, call.path,
                 call.user.name ? call.user.name : "-", call.info.verb);
    kp_user_wipe(&call.user);
    kp_selector_wipe(&call.label_selector);
    kp_selector_wipe(&call.field_selector);
    kp_request_info_wipe(&call.info);
}

/* ---- non-resource endpoints ---- */

static void respond_text(struct kp_call *call, int status, const char *text)
{
    kp_http_respond(call->http, status, "text/plain; charset=utf-8", text, strlen(text));
    call->responded = true;
}

static void health(struct kp_call *call, const char *name)
{
    /* The store answers or the server is not ready/healthy: a read is the check. */
    struct kp_store_list list = {0};
    struct kp_error err;
    bool store_ok = kp_store_list(call->api->store, "/registry/namespaces/", NULL, 1, 0, &list,
                                  &err) == KP_OK;
    kp_store_list_wipe(&list);
    const char *verbose = kp_http_query(call->http, "verbose");
    if (verbose) {
        char text[512];
        snprintf(text, sizeof(text), "[+]ping ok\n[+]log ok\n[%c]storage %s\n%s check %s\n",
                 store_ok ? '+' : '-', store_ok ? "ok" : "failed", name,
                 store_ok ? "passed" : "failed");
        respond_text(call, store_ok ? 200 : 500, text);
        return;
    }
    respond_text(call, store_ok ? 200 : 500, store_ok ? "ok" : "storage failed");
}

/* The /version document, built once at start as the JSON text sent (uname and encoding JSON
 * on every request cost more than the rest of the request; it is never protobuf, as upstream's
 * is not). Owned by the caller (free). */
static char *version_document(void)
{
    struct utsname u;
    char platform[128] = "linux/unknown";
    if (uname(&u) == 0)
        snprintf(platform, sizeof(platform), "linux/%s",
                 strcmp(u.machine, "x86_64") == 0    ? "amd64"
                 : strcmp(u.machine, "aarch64") == 0 ? "arm64"
                                                     : u.machine);
    json_t *document = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", KP_K8S_MAJOR, "minor",
        KP_K8S_MINOR, "gitVersion", "v" KP_K8S_MAJOR "." KP_K8S_MINOR ".0+kpki-" KPKI_VERSION,
        "gitCommit", "", "gitTreeState", "clean", "buildDate", __DATE__ " " __TIME__, "goVersion",
        "none (kpki is C)", "compiler", "gcc", "platform", platform);
    char *text = document ? json_dumps(document, JSON_COMPACT) : NULL;
    json_decref(document);
    return text;
}

static void version(struct kp_call *call)
{
    const char *text = call->api->version;
    kp_http_respond(call->http, 200, "application/json", text, strlen(text));
    call->responded = true;
}

void kp_nonresource_handle(struct kp_call *call)
{
    const char *path = call->path;
    bool get = strcmp(call->method, "GET") == 0 || strcmp(call->method, "HEAD") == 0;
    if (!get) {
        kp_call_method_not_allowed(call);
        return;
    }
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0 ||
        strcmp(path, "/readyz") == 0) {
        health(call, path + 1);
    } else if (strcmp(path, "/version") == 0 || strcmp(path, "/version/") == 0) {
        version(call);
    } else if (strcmp(path, "/metrics") == 0) {
        kp_metrics_handle(call);
    } else if (strcmp(path, "/.well-known/openid-configuration") == 0 ||
               strcmp(path, "/openid/v1/jwks") == 0) {
        struct kp_trust *trust = kp_api_trust(call->api);
        char *text = json_dumps(path[1] == '.' ? trust->openid : trust->jwks, JSON_COMPACT);
        kp_trust_unref(trust);
        kp_http_add_header(call->http, "Cache-Control", "public, max-age=3600");
        kp_http_respond(call->http, 200,
                        path[1] == '.' ? "application/json" : "application/jwk-set+json", text,
                        text ? strlen(text) : 0);
        free(text);
        call->responded = true;
    } else if (kp_openapi_is_path(path)) {
        kp_openapi_handle(call);
    } else if (kp_discovery_is_path(path)) {
        kp_discovery_handle(call);
    } else {
        not_found_path(call);
    }
}

STACK_OF(X509) *kp_api_client_cas(struct kp_api *api)
{
    struct kp_trust *trust = kp_api_trust(api);
    STACK_OF(X509) *cas = kp_authn_client_cas(trust->authn);
    kp_trust_unref(trust);
    return cas;
}

/* ---- start and stop ---- */

static void api_free(struct kp_api *api)
{
    kp_reload_free(api->reload); /* first: it swaps contexts into api->http */
    if (api->http)
        kp_http_server_stop(api->http);
    kp_watch_stop_all(api);
    if (api->housekeeper_started) {
        pthread_mutex_lock(&api->watches_lock);
        api->stopping = true;
        pthread_cond_broadcast(&api->housekeeper_wake);
        pthread_mutex_unlock(&api->watches_lock);
        pthread_join(api->housekeeper, NULL);
    }
    if (api->internal_watch)
        kp_store_unwatch(api->internal_watch);
    kp_objcache_free(api->objcache);
    kp_store_close(api->store);
    kp_trust_unref(api->trust);
    kp_metrics_free(api->metrics);
    free(api->version);
    kp_rbac_unref(api->rbac);
    kp_node_graph_free(api->graph);
    EVP_PKEY_free(api->signing_key);
    pthread_mutex_destroy(&api->trust_lock);
    pthread_mutex_destroy(&api->rbac_lock);
    pthread_mutex_destroy(&api->watches_lock);
    pthread_cond_destroy(&api->housekeeper_wake);
    kp_apiserver_config_wipe(&api->config);
    kp_strlist_wipe(&api->owned);
}

static enum kp_result check_required(const struct kp_apiserver_config *c, struct kp_error *err)
{
    if (!c->tls_cert_file || !c->tls_private_key_file)
        return kp_error_set(err, KP_ERR_INVALID,
                            "--tls-cert-file and --tls-private-key-file are required");
    if (!c->service_account_signing_key_file)
        return kp_error_set(err, KP_ERR_INVALID, "--service-account-signing-key-file is "
                                                 "required");
    if (!c->storage_file)
        return kp_error_set(err, KP_ERR_INVALID, "--storage-file is required");
    for (size_t i = 0; i < c->service_account_issuers.count; i++) {
        const char *issuer = c->service_account_issuers.items[i];
        if (strchr(issuer, ':') && strncmp(issuer, "https://", 8) != 0)
            return kp_error_set(err, KP_ERR_INVALID,
                                "--service-account-issuer: '%s' must be an https URL (or a "
                                "string without ':')",
                                issuer);
    }
    return KP_OK;
}

enum kp_result kp_apiserver_start(const struct kp_apiserver_config *config,
                                  struct kp_apiserver **out, struct kp_error *err)
{
    *out = NULL;
    enum kp_result rc = check_required(config, err);
    if (rc != KP_OK)
        return rc;
    struct kp_apiserver *server = calloc(1, sizeof(*server));
    if (!server)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    struct kp_api *api = &server->api;
    pthread_mutex_init(&api->trust_lock, NULL);
    pthread_mutex_init(&api->rbac_lock, NULL);
    pthread_mutex_init(&api->watches_lock, NULL);
    bool monotonic = kp_api_cond_init_monotonic(&api->housekeeper_wake);
    rc = copy_config(api, config, err);
    if (rc == KP_OK && !monotonic)
        rc = kp_error_set(err, KP_ERR_IO, "the watch housekeeper: no CLOCK_MONOTONIC waits");
    api->clock = config->clock ? config->clock : kp_clock_system();
    api->started_at = kp_clock_now(api->clock);
    api->metrics = kp_metrics_new(api->started_at);
    api->version = version_document();
    if (!api->version)
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
    if (rc == KP_OK)
        rc = load_signing_key(api, api->config.service_account_signing_key_file, err);
    if (rc == KP_OK)
        rc = kp_reload_new(api, &api->reload, err);
    if (rc == KP_OK)
        rc = kp_node_graph_new(&api->graph, err);
    if (rc == KP_OK && (rc = kp_store_open_sqlite(api->config.storage_file, &api->store, err)) !=
                           KP_OK)
        kp_error_prefix(err, "--storage-file");
    if (rc == KP_OK)
        rc = kp_bootstrap_objects(api, err);
    if (rc == KP_OK)
        rc = start_internal_watch(api, err);
    if (rc == KP_OK) {
        struct kp_rbac *rbac = kp_api_rbac(api); /* build it now: fail early on bad data */
        if (!rbac)
            rc = kp_error_set(err, KP_ERR_INTERNAL, "cannot build the RBAC policy");
        kp_rbac_unref(rbac);
    }
    if (rc == KP_OK) {
        if (pthread_create(&api->housekeeper, NULL, kp_watch_housekeeper, api) != 0)
            rc = kp_error_set(err, KP_ERR_IO, "cannot start the watch housekeeping thread");
        else
            api->housekeeper_started = true;
    }
    if (rc == KP_OK) {
        struct kp_http_server_config hc = {
            .bind_address = api->config.bind_address,
            .port = api->config.secure_port,
            .threads = api->config.threads,
            .limits = api->config.limits,
            .ssl_ctx = kp_reload_ssl_ctx(api->reload),
            .handler = handler,
            .handler_context = api,
        };
        rc = kp_http_server_start(&hc, &api->http, err);
        if (rc != KP_OK)
            kp_error_prefix(err, "--bind-address/--secure-port");
    }
    if (rc == KP_OK)
        rc = kp_reload_start(api->reload, err);
    if (rc != KP_OK) {
        api_free(api);
        free(server);
        return rc;
    }
    *out = server;
    return KP_OK;
}

int kp_apiserver_port(const struct kp_apiserver *server)
{
    return kp_http_server_port(server->api.http);
}

void kp_apiserver_stop(struct kp_apiserver *server)
{
    if (!server)
        return;
    api_free(&server->api);
    free(server);
}
