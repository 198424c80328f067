/*
 * api/api.h - the inside of the API server, shared by the files of src/api.
 *
 * A request goes: net/http (TLS, limits) -> server.c (route, authenticate, authorize) ->
 * rest.c / watch.c / reviews.c / discovery.c (the handlers) -> store. One table drives it:
 * the resource table (resources.c), whose rows say for each resource its group, version,
 * kind, plural, scope, verbs, storage key, subresources, field selectors, table columns and
 * the kind's hooks (kinds.c). Adding a resource is one row (plus hooks if it needs any).
 *
 * Objects travel as jansson objects. In the store they are JSON without
 * metadata.resourceVersion; reading stamps it from the store's mod revision, as Kubernetes'
 * etcd3 storage does.
 */
#ifndef KP_API_API_H
#define KP_API_API_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/apiserver.h"
#include "api/objcache.h"
#include "auth/auth.h"
#include "auth/authn.h"
#include "auth/node.h"
#include "auth/rbac.h"
#include "meta/patch.h"
#include "meta/selector.h"
#include "net/http.h"
#include "store/store.h"

/* ---- the resource table ---- */

enum kp_verb_bit {
    KP_VERB_GET = 1u << 0,
    KP_VERB_LIST = 1u << 1,
    KP_VERB_WATCH = 1u << 2,
    KP_VERB_CREATE = 1u << 3,
    KP_VERB_UPDATE = 1u << 4,
    KP_VERB_PATCH = 1u << 5,
    KP_VERB_DELETE = 1u << 6,
    KP_VERB_DELETECOLLECTION = 1u << 7,
};
#define KP_VERBS_ALL 0xffu
#define KP_VERBS_RW_NO_COLLECTION (KP_VERBS_ALL & ~KP_VERB_DELETECOLLECTION)

struct kp_api;
struct kp_call;

/* A column of the Table kubectl prints (meta.k8s.io/v1 TableColumnDefinition). A cell is
 * either computed (cell returns a new reference: a string or an integer) or, when cell is
 * NULL, the string at a dotted path of the object ("status.phase"), `fallback` when unset. */
struct kp_column {
    const char *name;
    const char *type;   /* "string", "integer", "date" */
    const char *format; /* "name" for the name column, else "" */
    int priority;       /* 0: always shown; 1: only with -o wide */
    json_t *(*cell)(const json_t *object, int64_t now);
    const char *path;
    const char *fallback;
};

/* A kind's behaviour beyond plain storage (kube-apiserver's "strategy"). Every hook may be
 * NULL. Object arguments are owned by the caller and may be modified where not const. */
struct kp_kind_hooks {
    /* Defaults and validation of a new object (after metadata is filled in). */
    enum kp_result (*prepare_create)(struct kp_call *call, json_t *object, struct kp_error *err);
    /* Carries over what an update of the main resource must not change (status, for kinds
     * with a status subresource), then validates. */
    enum kp_result (*prepare_update)(struct kp_call *call, json_t *object, const json_t *old,
                                     struct kp_error *err);
    /* The value of a supported field selector key; NULL when unset. buf may hold it. */
    const char *(*field)(const json_t *object, const char *key, char *buf, size_t size);
    /* The object is being deleted: can it go now (true), or does it only get a
     * deletionTimestamp (graceful pods)? */
    bool (*delete_now)(struct kp_call *call, const json_t *object, int64_t grace_seconds);
    /* The kind's top-level fields besides apiVersion, kind and metadata (comma-separated):
     * what ?fieldValidation=Strict|Warn checks a body against. */
    const char *fields;
};

/* A subresource (pods/status, pods/binding, serviceaccounts/token). */
struct kp_subresource {
    const char *name;
    const char *group;   /* of the kind it takes: "" core, "authentication.k8s.io" ... */
    const char *version;
    const char *kind;
    unsigned verbs;
    /* NULL: the generic status handler (get/update/patch of .status). */
    void (*handle)(struct kp_call *call);
};

struct kp_resource {
    const char *group;      /* "" for the core group */
    const char *version;
    const char *kind;
    const char *plural;
    const char *singular;
    bool namespaced;
    unsigned verbs;
    const char *short_names; /* comma-separated; "" none */
    const char *categories;  /* comma-separated; "" none */
    const char *storage;     /* "/registry/minions"; NULL: not stored (reviews) */
    const char *field_labels;/* supported fieldSelector keys besides metadata.name/namespace */
    const struct kp_subresource *subresources;
    size_t subresource_count;
    const struct kp_column *columns; /* NULL: Name and Created At */
    size_t column_count;
    const struct kp_kind_hooks *hooks;
    /* Virtual resources (reviews): the handler of create. */
    void (*create)(struct kp_call *call);
    bool cluster_admin_only; /* reserved */
};

const struct kp_resource *kp_resources(size_t *count);
const struct kp_resource *kp_resource_find(const char *group, const char *version,
                                           const char *plural);
/* By kind within a group (first version). */
const struct kp_resource *kp_resource_by_kind(const char *group, const char *kind);
const struct kp_subresource *kp_subresource_find(const struct kp_resource *resource,
                                                 const char *name);
/* "v1" or "rbac.authorization.k8s.io/v1". buf must hold 128 bytes. */
const char *kp_resource_api_version(const struct kp_resource *resource, char *buf, size_t size);
/* "secrets" or "roles.rbac.authorization.k8s.io" (qualified resource for messages). */
const char *kp_resource_qualified(const struct kp_resource *resource, char *buf, size_t size);

/* ---- the server state ---- */

struct kp_watch_entry; /* watch.c */

struct kp_api {
    struct kp_apiserver_config config; /* a copy; strings owned via `owned` */
    struct kp_strlist owned;
    const struct kp_clock *clock;
    struct kp_store *store;
    struct kp_http_server *http;
    struct kp_metrics *metrics; /* NULL: not recorded (out of memory at start) */
    char *version;              /* the /version document, as JSON text (immutable) */

    /* What the server trusts, reloaded from its files (reload.c). trust_lock guards the
     * pointer only: take a reference with kp_api_trust. */
    pthread_mutex_t trust_lock;
    struct kp_trust *trust;
    struct kp_reload *reload;

    /* Authorization: modes in order. */
    bool mode_node, mode_rbac, mode_always_allow, mode_always_deny;
    pthread_mutex_t rbac_lock;
    struct kp_rbac *rbac;      /* the current snapshot (a reference) */
    atomic_bool rbac_dirty;    /* set by the store watch; rebuilt on the next request */
    struct kp_node_graph *graph;
    struct kp_store_watch *internal_watch; /* RBAC changes, the node graph, the objcache */
    struct kp_objcache *objcache; /* the authenticators' lookups (objcache.h); NULL: uncached */

    /* Service-account tokens: the signing key, read at start (the verification keys are part
     * of the trust snapshot). Never NULL once started. */
    EVP_PKEY *signing_key;
    char signing_kid[64];

    /* Watches, for bookmarks and timeouts (watch.c). */
    pthread_mutex_t watches_lock;
    struct kp_watch_entry *watches;
    pthread_t housekeeper;
    pthread_cond_t housekeeper_wake; /* on CLOCK_MONOTONIC */
    bool stopping;
    bool housekeeper_started;

    atomic_uint_fast64_t uid_counter;
    int64_t started_at;
};

/* Initialises a condition variable whose timed waits take CLOCK_MONOTONIC deadlines, as every
 * timed wait in the server does (watch.c, reload.c): a wall-clock step cannot stretch or cut
 * them. False if that clock could not be set; cond is initialised either way (destroy it). */
bool kp_api_cond_init_monotonic(pthread_cond_t *cond);

/* ---- what the server trusts, and reloading it (reload.c) ---- */

/* The authenticator and what depends on the same files (the service-account keys' JWKS and
 * discovery document), built from the files by reload.c. Immutable once built and shared by
 * reference count: a request takes a reference (kp_api_trust) and keeps that snapshot until it
 * drops it, even when a reload swaps in another meanwhile; the last reference frees it. */
struct kp_trust {
    atomic_int refs;
    struct kp_authn *authn;
    json_t *jwks;   /* /openid/v1/jwks */
    json_t *openid; /* /.well-known/openid-configuration */
};

/* The current snapshot, a new reference (release with kp_trust_unref); NULL only before
 * kp_reload_new succeeded. Thread-safe: a mutex around a pointer copy and an atomic increment. */
struct kp_trust *kp_api_trust(struct kp_api *api);
void kp_trust_unref(struct kp_trust *trust); /* NULL is a no-op; thread-safe */

#define KP_RELOAD_MAX_KEY_FILES 16

struct kp_reload;

/* Loads the files of api->config (serving pair, client and front-proxy CAs and CRLs,
 * service-account key files) and installs the first trust snapshot in api->trust. A bad file is
 * an error naming its flag; an absent CRL file means no revocation until it appears. Needs
 * api->signing_key (added to the verification keys unless a key file has it). */
KP_MUST_CHECK enum kp_result kp_reload_new(struct kp_api *api, struct kp_reload **reload,
                                           struct kp_error *err);
/* The serving context loaded by kp_reload_new (borrowed: valid until kp_reload_free; the HTTP
 * server takes its own reference). */
SSL_CTX *kp_reload_ssl_ctx(const struct kp_reload *reload);
/* Starts polling the files once a second; api->http must be serving (a new serving pair goes to
 * kp_http_server_set_ssl_ctx). */
KP_MUST_CHECK enum kp_result kp_reload_start(struct kp_reload *reload, struct kp_error *err);
/* One poll of every file, what the thread does each second: a change is loaded at the second
 * poll that sees it unchanged. For tests, which call it without starting the thread (a new
 * serving pair then goes to api->http only if there is one; the ConfigMap to api->store only if
 * there is one). Not to be called while the thread runs. */
void kp_reload_poll(struct kp_reload *reload);
/* Stops the thread (joins it) and frees; api->trust stays. Call before kp_http_server_stop.
 * NULL is a no-op. */
void kp_reload_free(struct kp_reload *reload);

/* ---- a request in flight ---- */

struct kp_request_info {
    bool resource_request;
    char verb[24];          /* get list watch create update patch delete deletecollection */
    const char *group;      /* pointers into `parts` or static strings */
    const char *version;
    const char *resource;
    const char *subresource;
    const char *namespace_;
    const char *name;
    char *path_copy;        /* owned: the path split in place */
    const char *parts[16];
    size_t part_count;
};

enum kp_encoding {
    KP_ENCODING_JSON,
    KP_ENCODING_PROTOBUF, /* application/vnd.kubernetes.protobuf */
};

struct kp_call {
    struct kp_api *api;
    struct kp_http_request *http;
    const char *method;
    const char *path;
    struct kp_request_info info;
    const struct kp_resource *resource;       /* NULL for non-resource requests */
    const struct kp_subresource *subresource; /* NULL unless the path names one */
    struct kp_user user;
    struct kp_selector label_selector;
    struct kp_selector field_selector;
    bool has_label_selector, has_field_selector;
    bool want_table;        /* Accept asks for as=Table (JSON) */
    enum kp_encoding encoding; /* of responses, from Accept (codec.c) */
    bool accepts_json;      /* a JSON answer is acceptable too (protobuf falls back to it) */
    int64_t now;
    bool responded;
};

/* Parses method and path (request.c). Errors: KP_ERR_INVALID (malformed path or a method
 * resources do not take), KP_ERR_NOT_FOUND (too many segments). Wipe info afterwards. */
KP_MUST_CHECK enum kp_result kp_request_info_parse(const char *method, const char *path,
                                                   bool watch, struct kp_request_info *info,
                                                   struct kp_error *err);
void kp_request_info_wipe(struct kp_request_info *info);

/* ---- metrics (metrics.c) ---- */

struct kp_metrics;
/* NULL when out of memory (the server then runs without recording). now: the start time. */
struct kp_metrics *kp_metrics_new(int64_t now);
void kp_metrics_free(struct kp_metrics *metrics); /* NULL is a no-op */
/* One finished request: its status and how long the handler took (thread-safe, lock-free). */
void kp_metrics_request(struct kp_metrics *metrics, const struct kp_call *call, int status,
                        int64_t elapsed_us);
/* One authentication: method "x509", "requestheader", "serviceaccount", "bootstrap-token",
 * "anonymous", or for a refusal the credential presented ("x509", "token", "none"); result
 * "success", "failure" (401) or "error" (could not decide). */
void kp_metrics_authn(struct kp_metrics *metrics, const char *method, const char *result);
/* GET /metrics. */
void kp_metrics_handle(struct kp_call *call);
/* The client CAs in use now (metrics.c reads their expiry). New stack of new references. */
STACK_OF(X509) *kp_api_client_cas(struct kp_api *api);

/* ---- encodings (codec.c) ---- */

/* The encoding for an Accept header (NULL or empty: JSON): the first media type by q value
 * (ties in the client's order) that kpki sends: JSON (application/json, and the wildcards
 * application/any and any/any), with as=Table;g=meta.k8s.io;v=v1|v1beta1 for a Table, or the
 * protobuf type (never as a Table); other as= values are skipped. *accepts_json: a plain JSON
 * answer is acceptable too. False when nothing is (the outputs are then JSON defaults). */
bool kp_accept_choose(const char *accept, enum kp_encoding *encoding, bool *table,
                      bool *accepts_json);
/* Chooses the response encoding from Accept (call->encoding, want_table, accepts_json). False
 * after answering 406 when a resource request accepts nothing kpki sends. */
bool kp_call_negotiate(struct kp_call *call);
/* The request body as an object, in JSON or protobuf by Content-Type (none: JSON); protobuf
 * fields kpki does not know become Warning headers. New reference, or NULL after answering
 * (415 for another media type, 400 for a body that does not decode or is not an object; an
 * empty body is 400 unless empty_ok, which returns NULL without answering). */
json_t *kp_call_read_object(struct kp_call *call, bool empty_ok);
/* Sends an object (borrowed) with status: protobuf when negotiated and the object's kind has
 * a message (JSON when it has fields the message cannot carry and the client takes JSON),
 * else JSON. */
void kp_call_json(struct kp_call *call, int status, const json_t *body);

/* ---- responses (respond.c) ---- */

/* Sends doc (stolen) with 200, or the generic 404 when doc is NULL (discovery, OpenAPI). */
void kp_call_document(struct kp_call *call, json_t *doc);
/* Sends a Status error. reason: "NotFound", ...; details_kind: the resource ("secrets"). */
void kp_call_status(struct kp_call *call, int code, const char *reason, const char *message,
                    const char *details_name, const char *details_group,
                    const char *details_kind);
/* An error from a kp_result, mapped to the Status kube-apiserver would send for this call's
 * resource and name (NotFound, AlreadyExists, Conflict, Invalid, Forbidden, Expired, ...). */
void kp_call_error(struct kp_call *call, enum kp_result code, const char *message);
/* Shorthands with upstream's messages. */
void kp_call_not_found(struct kp_call *call, const char *name);
void kp_call_already_exists(struct kp_call *call, const char *name);
void kp_call_conflict(struct kp_call *call, const char *name, const char *why);
void kp_call_invalid(struct kp_call *call, const char *kind, const char *name,
                     const char *message);
void kp_call_bad_request(struct kp_call *call, const char *message);
void kp_call_method_not_allowed(struct kp_call *call);
/* The Forbidden message kube-apiserver writes for attrs (+ ": reason" when non-empty). */
void kp_forbidden_message(const struct kp_authz_attrs *attrs, const char *reason, char *out,
                          size_t size);
json_t *kp_status_object(int code, const char *reason, const char *message,
                         const char *details_name, const char *details_group,
                         const char *details_kind);

/* ---- objects (objects.c) ---- */

/* "/registry/secrets/default/token" (or without the namespace for cluster-scoped). */
void kp_object_key(const struct kp_resource *resource, const char *ns, const char *name,
                   char *out, size_t size);
/* The prefix to list: "/registry/secrets/default/" or "/registry/secrets/" (all). */
void kp_object_prefix(const struct kp_resource *resource, const char *ns, char *out,
                      size_t size);
/* Parses a stored value and stamps metadata.resourceVersion = revision. NULL on bad JSON. */
json_t *kp_object_decode(const char *value, size_t len, int64_t revision);
/* Serialises for the store, without resourceVersion. *out: free with free(). */
KP_MUST_CHECK enum kp_result kp_object_encode(const json_t *object, char **out, size_t *len,
                                              struct kp_error *err);
void kp_object_set_rv(json_t *object, int64_t revision);

json_t *kp_meta(const json_t *object);      /* metadata object (borrowed), or NULL */
const char *kp_meta_str(const json_t *object, const char *field);
/* Sets metadata.<field> to a string (creating metadata). */
bool kp_meta_set_str(json_t *object, const char *field, const char *value);

/* Name rules (apimachinery validation): DNS-1123 subdomain (most kinds), label
 * (namespaces), path segment (RBAC names). NULL when valid, else the message. */
const char *kp_name_dns1123_subdomain(const char *name);
const char *kp_name_dns1123_label(const char *name);
const char *kp_name_path_segment(const char *name);

void kp_new_uid(char *out, size_t size); /* 36 chars + NUL */
void kp_timestamp(int64_t unix_seconds, char *out, size_t size);
/* Seconds since creationTimestamp (0 if missing). */
int64_t kp_object_age(const json_t *object, int64_t now);

/* ---- the store, as the handlers use it (registry.c) ---- */

/* Reads one object (new reference) or sets *object NULL with KP_ERR_NOT_FOUND. */
KP_MUST_CHECK enum kp_result kp_registry_get(struct kp_api *api,
                                             const struct kp_resource *resource, const char *ns,
                                             const char *name, json_t **object,
                                             struct kp_error *err);
/* Stores a new object (must have metadata.name); on success stamps its resourceVersion. */
KP_MUST_CHECK enum kp_result kp_registry_create(struct kp_api *api,
                                                const struct kp_resource *resource,
                                                json_t *object, struct kp_error *err);
/* Replaces an object if its stored mod revision is expected (0: any); stamps the new rv. */
KP_MUST_CHECK enum kp_result kp_registry_update(struct kp_api *api,
                                                const struct kp_resource *resource,
                                                json_t *object, int64_t expected,
                                                struct kp_error *err);
KP_MUST_CHECK enum kp_result kp_registry_delete(struct kp_api *api,
                                                const struct kp_resource *resource,
                                                const char *ns, const char *name,
                                                int64_t expected, json_t **deleted,
                                                struct kp_error *err);
/* Calls fn with every object under prefix (borrowed for the call), page by page, all at one
 * revision, which *revision receives. */
typedef void (*kp_registry_scan_fn)(void *context, json_t *object);
KP_MUST_CHECK enum kp_result kp_registry_scan(struct kp_api *api, const char *prefix,
                                              kp_registry_scan_fn fn, void *context,
                                              int64_t *revision, struct kp_error *err);
/* Every object of a resource in ns ("": all) as a JSON array (new reference). */
KP_MUST_CHECK enum kp_result kp_registry_list_all(struct kp_api *api,
                                                  const struct kp_resource *resource,
                                                  const char *ns, json_t **items,
                                                  struct kp_error *err);
/* The lookup function handed to auth (resource plural of the core or RBAC groups). */
json_t *kp_registry_lookup(void *api, const char *resource, const char *ns, const char *name);
/* The same through api->objcache (secrets excepted), for the authenticators, which only read
 * what they get: the object may be shared with other requests and must not be modified. */
json_t *kp_registry_lookup_cached(void *api, const char *resource, const char *ns,
                                  const char *name);

/* ---- the handlers ---- */

void kp_rest_handle(struct kp_call *call);           /* rest.c: CRUD of stored resources */
void kp_rest_status_subresource(struct kp_call *call);
void kp_watch_handle(struct kp_call *call);          /* watch.c */
void kp_discovery_handle(struct kp_call *call);      /* discovery.c: /api, /apis, ... */
bool kp_discovery_is_path(const char *path);
void kp_nonresource_handle(struct kp_call *call);    /* server.c: /healthz, /version, ... */

/* reviews.c */
void kp_review_token(struct kp_call *call);          /* tokenreviews */
void kp_review_self_subject(struct kp_call *call);   /* selfsubjectreviews */
void kp_review_subject_access(struct kp_call *call); /* subjectaccessreviews */
void kp_review_self_subject_access(struct kp_call *call);
void kp_review_local_subject_access(struct kp_call *call);
void kp_review_self_subject_rules(struct kp_call *call);
void kp_token_request(struct kp_call *call);         /* serviceaccounts/token */
void kp_pod_binding(struct kp_call *call);           /* pods/binding */
/* The issuer discovery documents for these verification keys (borrowed). New references. */
KP_MUST_CHECK enum kp_result kp_oidc_documents(const struct kp_api *api, EVP_PKEY *const *keys,
                                               size_t key_count, json_t **jwks, json_t **openid,
                                               struct kp_error *err);

/* openapi.c: /openapi/v3 and its group-version documents. */
bool kp_openapi_is_path(const char *path);
void kp_openapi_handle(struct kp_call *call);

/* table.c: a list (items array) as a meta.k8s.io/v1 Table for this resource. */
json_t *kp_table_from_items(const struct kp_resource *resource, const json_t *items,
                            const char *resource_version, const char *continue_token,
                            int64_t now);

/* kinds.c: the field value for a selector key, generic keys included. */
const char *kp_field_value(const struct kp_resource *resource, const json_t *object,
                           const char *key, char *buf, size_t size);
/* Does the resource support this field selector key? */
bool kp_field_supported(const struct kp_resource *resource, const char *key);
bool kp_object_matches(const struct kp_call *call, const json_t *object);

/* ---- authorization and admission (authorize.c) ---- */

void kp_authorize(struct kp_api *api, const struct kp_authz_attrs *attrs,
                  struct kp_authz_decision *decision);
/* The current RBAC snapshot (a new reference; rebuilt first if the policy changed). */
struct kp_rbac *kp_api_rbac(struct kp_api *api);
/* Admission for a write (NamespaceLifecycle, NodeRestriction, RBAC escalation). On refusal it
 * has answered the call and returns false. */
bool kp_admit(struct kp_call *call, const char *operation, const char *name,
              const json_t *object, const json_t *old_object);
/* Fills attrs from the call (borrowing). */
void kp_call_attrs(const struct kp_call *call, struct kp_authz_attrs *attrs);

/* ---- bootstrap (bootstrap.c) ---- */

/* Creates what must exist on first start: namespaces default, kube-system, kube-public,
 * kube-node-lease; the RBAC default policy (objects already there are left alone). */
KP_MUST_CHECK enum kp_result kp_bootstrap_objects(struct kp_api *api, struct kp_error *err);
/* Writes the CA files' content to kube-system/extension-apiserver-authentication when it
 * differs (at start, and after a reload of a CA file). */
KP_MUST_CHECK enum kp_result kp_authentication_configmap_sync(struct kp_api *api,
                                                              struct kp_error *err);

/* watch.c housekeeping */
void *kp_watch_housekeeper(void *api);
void kp_watch_stop_all(struct kp_api *api);

#endif
