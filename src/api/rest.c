/*
 * The REST handlers of stored resources: get, list, create, update, patch, delete,
 * deletecollection, and the status subresource (k8s.io/apiserver/pkg/endpoints/handlers and
 * pkg/registry/generic/registry/store.go).
 *
 * Every write is a compare-and-swap on the object's mod revision: an update reads the object,
 * computes the new one and stores it only if nobody wrote in between, retrying (a bounded
 * number of times) when the client did not pin a resourceVersion, answering 409 Conflict when
 * it did (upstream's GuaranteedUpdate).
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"
#include "crypto/crypto.h"

#define UPDATE_RETRIES 16
#define CREATE_NAME_RETRIES 8

/* ---- request bodies ---- */

static bool content_type_is(const char *type, const char *wanted)
{
    size_t n = strlen(wanted);
    return strncmp(type, wanted, n) == 0 && (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

/* The body's apiVersion and kind, when present, must be the resource's (or the
 * subresource's); absent ones are filled in. */
static bool check_type_meta(struct kp_call *call, json_t *object, const char *api_version,
                            const char *kind)
{
    const char *got_version = json_string_value(json_object_get(object, "apiVersion"));
    const char *got_kind = json_string_value(json_object_get(object, "kind"));
    char message[512];
    if (got_version && *got_version && strcmp(got_version, api_version) != 0) {
        snprintf(message, sizeof(message),
                 "the API version in the data (%.100s) does not match the expected API version "
                 "(%s)",
                 got_version, api_version);
        kp_call_bad_request(call, message);
        return false;
    }
    if (got_kind && *got_kind && strcmp(got_kind, kind) != 0) {
        snprintf(message, sizeof(message),
                 "the kind in the data (%.100s) does not match the expected kind (%s)", got_kind,
                 kind);
        kp_call_bad_request(call, message);
        return false;
    }
    json_object_set_new(object, "apiVersion", json_string(api_version));
    json_object_set_new(object, "kind", json_string(kind));
    return true;
}

static bool list_has(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0)
            return true;
        p = comma ? comma + 1 : p + n;
    }
    return false;
}

static const char *unknown_field(const struct kp_resource *resource, const json_t *object,
                                 char *buf, size_t size)
{
    static const char meta_fields[] =
        "name,generateName,namespace,selfLink,uid,resourceVersion,generation,"
        "creationTimestamp,deletionTimestamp,deletionGracePeriodSeconds,labels,annotations,"
        "ownerReferences,finalizers,managedFields";
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)object, key, value) {
        if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0 ||
            strcmp(key, "metadata") == 0 || list_has(resource->hooks->fields, key))
            continue;
        snprintf(buf, size, "%s", key);
        return buf;
    }
    json_object_foreach(json_object_get(object, "metadata"), key, value) {
        if (!list_has(meta_fields, key)) {
            snprintf(buf, size, "metadata.%s", key);
            return buf;
        }
    }
    return NULL;
}

/* ?fieldValidation (kube-apiserver's server-side field validation), for the top level and
 * metadata of an object (kpki has no full schemas): Strict refuses an unknown field with 400,
 * Warn (the default) answers with a Warning header, Ignore does nothing. */
static bool validate_fields(struct kp_call *call, const json_t *object)
{
    const char *mode = kp_http_query(call->http, "fieldValidation");
    if (mode && *mode && strcmp(mode, "Strict") && strcmp(mode, "Warn") && strcmp(mode, "Ignore")) {
        kp_call_bad_request(call, "fieldValidation must be one of Ignore, Warn or Strict");
        return false;
    }
    if ((mode && strcmp(mode, "Ignore") == 0) || !call->resource->hooks ||
        !call->resource->hooks->fields)
        return true;
    char field[256], message[600];
    if (!unknown_field(call->resource, object, field, sizeof(field)))
        return true;
    if (mode && strcmp(mode, "Strict") == 0) {
        snprintf(message, sizeof(message), "%s in version \"%s\" cannot be handled as a %s: "
                 "strict decoding error: unknown field \"%s\"",
                 call->resource->kind, call->resource->version, call->resource->kind, field);
        kp_call_bad_request(call, message);
        return false;
    }
    snprintf(message, sizeof(message), "299 - \"unknown field \\\"%s\\\"\"", field);
    kp_http_add_header(call->http, "Warning", message);
    return true;
}

static bool dry_run(struct kp_call *call)
{
    const char *value = kp_http_query(call->http, "dryRun");
    return value && strcmp(value, "All") == 0;
}

static int64_t parse_rv(const char *text)
{
    if (!text || !*text)
        return 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    return *end || v < 0 ? -1 : v;
}

/* ---- reading ---- */

static json_t *typed(struct kp_call *call, json_t *object)
{
    char api_version[128];
    json_object_set_new(object, "apiVersion",
                        json_string(kp_resource_api_version(call->resource, api_version,
                                                            sizeof(api_version))));
    json_object_set_new(object, "kind", json_string(call->resource->kind));
    return object;
}

static void respond_object(struct kp_call *call, int status, json_t *object)
{
    if (call->want_table) {
        json_t *items = json_pack("[O]", object);
        json_t *table = kp_table_from_items(call->resource, items, NULL, NULL, call->now);
        kp_call_json(call, status, table);
        json_decref(table);
        json_decref(items);
        return;
    }
    kp_call_json(call, status, object);
}

static void handle_get(struct kp_call *call)
{
    json_t *object = NULL;
    struct kp_error err;
    enum kp_result rc = kp_registry_get(call->api, call->resource, call->info.namespace_,
                                        call->info.name, &object, &err);
    if (rc != KP_OK) {
        kp_call_error(call, rc, err.message);
        return;
    }
    respond_object(call, 200, typed(call, object));
    json_decref(object);
}

/* The continue token: base64 of {"v":"meta.k8s.io/v1","rv":N,"start":"<last key>"}, as
 * upstream's (storage/etcd3 continue.go) carries the revision and the key to resume after. */
static char *continue_encode(int64_t revision, const char *key)
{
    json_t *token = json_pack("{s:s, s:I, s:s}", "v", "meta.k8s.io/v1", "rv",
                              (json_int_t)revision, "start", key);
    char *text = token ? json_dumps(token, JSON_COMPACT) : NULL;
    json_decref(token);
    char *encoded = NULL;
    size_t encoded_len = 0;
    if (text && kp_base64_encode(text, strlen(text), &encoded, &encoded_len, NULL) != KP_OK)
        encoded = NULL;
    free(text);
    return encoded;
}

static bool continue_decode(const char *token, const char *prefix, int64_t *revision,
                            char **key)
{
    unsigned char *decoded = NULL;
    size_t len = 0;
    if (kp_base64_decode(token, strlen(token), &decoded, &len, NULL) != KP_OK)
        return false;
    json_t *object = json_loadb((const char *)decoded, len, JSON_REJECT_DUPLICATES, NULL);
    free(decoded);
    const char *v = json_string_value(json_object_get(object, "v"));
    const char *start = json_string_value(json_object_get(object, "start"));
    json_int_t rv = json_integer_value(json_object_get(object, "rv"));
    bool ok = v && strcmp(v, "meta.k8s.io/v1") == 0 && start && rv > 0 &&
              strncmp(start, prefix, strlen(prefix)) == 0;
    if (ok) {
        *revision = rv;
        *key = strdup(start);
        ok = *key != NULL;
    }
    json_decref(object);
    return ok;
}

static bool check_field_selector(struct kp_call *call)
{
    for (size_t i = 0; call->has_field_selector && i < call->field_selector.count; i++) {
        const char *key = call->field_selector.requirements[i].key;
        if (!kp_field_supported(call->resource, key)) {
            char message[300];
            snprintf(message, sizeof(message), "field label not supported: %.200s", key);
            kp_call_bad_request(call, message);
            return false;
        }
    }
    return true;
}

/* A <Kind>List of items (borrowed) at resource version rv (NULL: none) with a continue
 * token (NULL: none). */
static void respond_list(struct kp_call *call, json_t *items, const char *rv, const char *token)
{
    char kind[96], api_version[128];
    snprintf(kind, sizeof(kind), "%sList", call->resource->kind);
    json_t *metadata = json_object();
    if (rv)
        json_object_set_new(metadata, "resourceVersion", json_string(rv));
    if (token)
        json_object_set_new(metadata, "continue", json_string(token));
    json_t *list = json_pack("{s:s, s:s, s:o, s:O}", "kind", kind, "apiVersion",
                             kp_resource_api_version(call->resource, api_version,
                                                     sizeof(api_version)),
                             "metadata", metadata, "items", items);
    kp_call_json(call, 200, list);
    json_decref(list);
}

static void handle_list(struct kp_call *call)
{
    if (!check_field_selector(call))
        return;
    const char *limit_text = kp_http_query(call->http, "limit");
    const char *cont = kp_http_query(call->http, "continue");
    const char *rv_text = kp_http_query(call->http, "resourceVersion");
    long long limit = 0;
    if (limit_text && *limit_text) {
        char *end;
        limit = strtoll(limit_text, &end, 10);
        if (*end || limit < 0) {
            kp_call_bad_request(call, "limit must be a non-negative integer");
            return;
        }
    }
    char prefix[KP_STORE_KEY_MAX];
    kp_object_prefix(call->resource, call->info.namespace_, prefix, sizeof(prefix));
    int64_t revision = 0;
    char *after = NULL;
    if (cont && *cont) {
        if (rv_text && *rv_text) {
            kp_call_bad_request(call, "specifying resource version is not allowed when using "
                                      "continue");
            return;
        }
        if (!continue_decode(cont, prefix, &revision, &after)) {
            kp_call_bad_request(call, "continue key is not valid: the token is malformed");
            return;
        }
    } else if (rv_text && *rv_text) {
        int64_t rv = parse_rv(rv_text);
        if (rv < 0) {
            kp_call_bad_request(call, "resourceVersion must be an integer");
            return;
        }
        /* "0" means any; a later revision than the store has is not served yet. */
        if (rv > kp_store_revision(call->api->store)) {
            kp_call_status(call, 504, "Timeout", "Too large resource version", NULL, NULL, NULL);
            return;
        }
    }
    json_t *items = json_array();
    struct kp_error err;
    enum kp_result rc = KP_OK;
    bool more = false;
    char *last_key = NULL;
    size_t want = limit > 0 ? (size_t)limit : 0;
    for (;;) {
        struct kp_store_list list = {0};
        size_t page = want ? want - json_array_size(items) : 0;
        if (page && page < 64)
            page = 64; /* read ahead: selectors may drop items */
        rc = kp_store_list(call->api->store, prefix, after, page, revision, &list, &err);
        if (rc != KP_OK)
            break;
        revision = list.revision;
        size_t i;
        for (i = 0; i < list.count; i++) {
            if (want && json_array_size(items) == want)
                break;
            json_t *object = kp_object_decode(list.items[i].value, list.items[i].value_len,
                                              list.items[i].mod_revision);
            if (object && kp_object_matches(call, object))
                json_array_append(items, typed(call, object));
            json_decref(object);
            free(last_key);
            last_key = strdup(list.items[i].key);
        }
        bool page_more = list.more || i < list.count;
        kp_store_list_wipe(&list);
        free(after);
        after = last_key ? strdup(last_key) : NULL;
        if (!page_more)
            break;
        if (want && json_array_size(items) == want) {
            more = true;
            break;
        }
    }
    free(after);
    if (rc != KP_OK) {
        free(last_key);
        json_decref(items);
        if (rc == KP_ERR_EXPIRED)
            kp_call_status(call, 410, "Expired",
                           "The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue "
                           "parameter.",
                           NULL, NULL, NULL);
        else
            kp_call_error(call, rc, err.message);
        return;
    }
    char rv[32];
    snprintf(rv, sizeof(rv), "%lld", (long long)revision);
    char *token = more && last_key ? continue_encode(revision, last_key) : NULL;
    free(last_key);
    if (call->want_table) {
        json_t *table = kp_table_from_items(call->resource, items, rv, token, call->now);
        kp_call_json(call, 200, table);
        json_decref(table);
    } else {
        respond_list(call, items, rv, token);
    }
    free(token);
    json_decref(items);
}

/* ---- creating ---- */

static void generate_name(const char *base, char *out, size_t size)
{
    /* apiserver/pkg/storage/names: 5 characters from an alphabet without vowels or
     * look-alikes, appended to the (truncated) base. */
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char random[5];
    if (RAND_bytes(random, sizeof(random)) != 1)
        memset(random, 0, sizeof(random));
    size_t base_len = strlen(base);
    if (base_len > 58)
        base_len = 58;
    char suffix[6];
    for (size_t i = 0; i < 5; i++)
        suffix[i] = alphabet[random[i] % (sizeof(alphabet) - 1)];
    suffix[5] = '\0';
    snprintf(out, size, "%.*s%s", (int)base_len, base, suffix);
}

/* Fills the server-owned metadata of a new object; false when it answered the call. */
static bool prepare_metadata(struct kp_call *call, json_t *object)
{
    json_t *meta = json_object_get(object, "metadata");
    if (meta && !json_is_object(meta)) {
        kp_call_bad_request(call, "metadata must be an object");
        return false;
    }
    if (!meta) {
        meta = json_object();
        json_object_set_new(object, "metadata", meta);
    }
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (call->resource->namespaced) {
        if (ns && *ns && strcmp(ns, call->info.namespace_) != 0) {
            kp_call_bad_request(call, "the namespace of the provided object does not match the "
                                      "namespace sent on the request");
            return false;
        }
        json_object_set_new(meta, "namespace", json_string(call->info.namespace_));
    } else {
        json_object_del(meta, "namespace");
    }
    const char *const server_owned[] = {"resourceVersion", "deletionTimestamp",
                                        "deletionGracePeriodSeconds", "managedFields",
                                        "selfLink"};
    for (size_t i = 0; i < sizeof(server_owned) / sizeof(server_owned[0]); i++)
        json_object_del(meta, server_owned[i]);
    char uid[40], ts[40];
    kp_new_uid(uid, sizeof(uid));
    kp_timestamp(call->now, ts, sizeof(ts));
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(ts));
    return true;
}

static void handle_create(struct kp_call *call)
{
    json_t *object = kp_call_read_object(call, false);
    char api_version[128];
    if (!object)
        return;
    if (!check_type_meta(call, object,
                         kp_resource_api_version(call->resource, api_version,
                                                 sizeof(api_version)),
                         call->resource->kind) ||
        !validate_fields(call, object) || !prepare_metadata(call, object)) {
        json_decref(object);
        return;
    }
    const char *generate = kp_meta_str(object, "generateName");
    const char *given = kp_meta_str(object, "name");
    if ((!given || !*given) && (!generate || !*generate)) {
        kp_call_invalid(call, NULL, "", "metadata.name: Required value: name or generateName "
                                        "is required");
        json_decref(object);
        return;
    }
    struct kp_error err;
    enum kp_result rc = KP_OK;
    for (int attempt = 0; attempt < CREATE_NAME_RETRIES; attempt++) {
        char name[300];
        if (!given || !*given) {
            generate_name(generate, name, sizeof(name));
            kp_meta_set_str(object, "name", name);
        }
        const char *final_name = kp_meta_str(object, "name");
        call->info.name = final_name;
        if (call->resource->hooks && call->resource->hooks->prepare_create &&
            (rc = call->resource->hooks->prepare_create(call, object, &err)) != KP_OK)
            break;
        if (!kp_admit(call, "CREATE", final_name, object, NULL)) {
            json_decref(object);
            return;
        }
        if (dry_run(call)) {
            rc = KP_OK;
            break;
        }
        rc = kp_registry_create(call->api, call->resource, object, &err);
        /* A generated name that collides gets another try (names.SimpleNameGenerator). */
        if (!(rc == KP_ERR_CONFLICT && (!given || !*given)))
            break;
    }
    if (rc == KP_ERR_CONFLICT)
        kp_call_already_exists(call, call->info.name);
    else if (rc != KP_OK)
        kp_call_error(call, rc, err.message);
    else
        kp_call_json(call, 201, object);
    json_decref(object);
}

/* ---- updating ---- */

/* Computes the new object from the current one: a new reference, or NULL after answering
 * the call. */
typedef json_t *(*transform_fn)(struct kp_call *call, const json_t *current, void *context);

/* Metadata the client cannot change on update (ObjectMetaUpdateValidation + the strategy's
 * PrepareForUpdate). */
static void keep_server_metadata(json_t *object, const json_t *current)
{
    json_t *meta = json_object_get(object, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(object, "metadata", meta);
    }
    const json_t *old_meta = kp_meta(current);
    const char *const kept[] = {"uid", "creationTimestamp", "deletionTimestamp",
                                "deletionGracePeriodSeconds", "namespace", "name"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        json_t *value = json_object_get(old_meta, kept[i]);
        if (value)
            json_object_set(meta, kept[i], value);
        else
            json_object_del(meta, kept[i]);
    }
    json_object_del(meta, "managedFields");
    json_object_del(meta, "selfLink");
}

/* Read, transform, compare-and-swap, retry. pinned_rv > 0: the client's precondition. */
static void guaranteed_update(struct kp_call *call, const char *subresource_op,
                              transform_fn transform, void *context, int64_t pinned_rv)
{
    struct kp_error err;
    for (int attempt = 0; attempt < UPDATE_RETRIES; attempt++) {
        json_t *current = NULL;
        enum kp_result rc = kp_registry_get(call->api, call->resource, call->info.namespace_,
                                            call->info.name, &current, &err);
        if (rc != KP_OK) {
            kp_call_error(call, rc, err.message);
            return;
        }
        int64_t current_rv = parse_rv(kp_meta_str(current, "resourceVersion"));
        if (pinned_rv > 0 && pinned_rv != current_rv) {
            json_decref(current);
            kp_call_conflict(call, call->info.name, NULL);
            return;
        }
        json_t *object = transform(call, current, context);
        if (!object) {
            json_decref(current);
            return;
        }
        keep_server_metadata(object, current);
        if (!subresource_op && call->resource->hooks && call->resource->hooks->prepare_update &&
            (rc = call->resource->hooks->prepare_update(call, object, current, &err)) != KP_OK) {
            json_decref(current);
            json_decref(object);
            kp_call_error(call, rc, err.message);
            return;
        }
        if (!kp_admit(call, "UPDATE", call->info.name, object, current)) {
            json_decref(current);
            json_decref(object);
            return;
        }
        /* An object being deleted whose last finalizer is removed goes now. */
        bool finalize = kp_meta_str(object, "deletionTimestamp") &&
                        json_array_size(json_object_get(kp_meta(object), "finalizers")) == 0;
        if (dry_run(call)) {
            rc = KP_OK;
        } else if (finalize) {
            json_t *deleted = NULL;
            rc = kp_registry_delete(call->api, call->resource, call->info.namespace_,
                                    call->info.name, current_rv, &deleted, &err);
            json_decref(deleted);
        } else if (json_equal(object, current)) {
            rc = KP_OK; /* no-op updates do not bump the revision (upstream too) */
        } else {
            rc = kp_registry_update(call->api, call->resource, object, current_rv, &err);
        }
        json_decref(current);
        if (rc == KP_ERR_CONFLICT && pinned_rv <= 0) {
            json_decref(object);
            continue;
        }
        if (rc == KP_ERR_CONFLICT)
            kp_call_conflict(call, call->info.name, NULL);
        else if (rc != KP_OK)
            kp_call_error(call, rc, err.message);
        else
            kp_call_json(call, 200, typed(call, object));
        json_decref(object);
        return;
    }
    kp_call_conflict(call, call->info.name, "too many concurrent writes; try again");
}

struct put_context {
    json_t *body;
    bool status_only;
};

static json_t *transform_put(struct kp_call *call, const json_t *current, void *context)
{
    struct put_context *put = context;
    (void)call;
    if (!put->status_only)
        return json_deep_copy(put->body);
    /* The status subresource replaces only .status (and keeps everything else). */
    json_t *object = json_deep_copy(current);
    json_t *status = json_object_get(put->body, "status");
    if (status)
        json_object_set(object, "status", status);
    else
        json_object_del(object, "status");
    return object;
}

static bool body_names_match(struct kp_call *call, json_t *body)
{
    const char *name = kp_meta_str(body, "name");
    char message[700];
    if (name && strcmp(name, call->info.name) != 0) {
        snprintf(message, sizeof(message),
                 "the name of the object (%.250s) does not match the name on the URL (%.250s)",
                 name, call->info.name);
        kp_call_bad_request(call, message);
        return false;
    }
    const char *ns = kp_meta_str(body, "namespace");
    if (call->resource->namespaced && ns && *ns && strcmp(ns, call->info.namespace_) != 0) {
        kp_call_bad_request(call, "the namespace of the provided object does not match the "
                                  "namespace sent on the request");
        return false;
    }
    return true;
}

static void handle_update(struct kp_call *call, bool status_only)
{
    json_t *body = kp_call_read_object(call, false);
    char api_version[128];
    if (!body)
        return;
    if (!check_type_meta(call, body,
                         kp_resource_api_version(call->resource, api_version,
                                                 sizeof(api_version)),
                         call->resource->kind) ||
        !body_names_match(call, body) || (!status_only && !validate_fields(call, body))) {
        json_decref(body);
        return;
    }
    int64_t pinned = parse_rv(kp_meta_str(body, "resourceVersion"));
    if (pinned < 0) {
        json_decref(body);
        kp_call_bad_request(call, "metadata.resourceVersion must be an integer");
        return;
    }
    struct put_context put = {body, status_only};
    guaranteed_update(call, status_only ? "status" : NULL, transform_put, &put, pinned);
    json_decref(body);
}

struct patch_context {
    json_t *patch;
    const char *type; /* "merge", "strategic", "json" */
    bool status_only;
};

static json_t *transform_patch(struct kp_call *call, const json_t *current, void *context)
{
    struct patch_context *pc = context;
    json_t *patched = NULL;
    struct kp_error err;
    enum kp_result rc;
    if (strcmp(pc->type, "merge") == 0)
        rc = kp_merge_patch(current, pc->patch, &patched, &err);
    else if (strcmp(pc->type, "json") == 0)
        rc = kp_json_patch(current, pc->patch, &patched, &err);
    else
        rc = kp_strategic_merge_patch(current, pc->patch,
                                      kp_smp_schema_for_kind(call->resource->kind), &patched,
                                      &err);
    if (rc != KP_OK) {
        if (rc == KP_ERR_CONFLICT) /* a failed JSON-patch "test" */
            kp_call_invalid(call, NULL, call->info.name, err.message);
        else
            kp_call_status(call, rc == KP_ERR_INVALID ? 422 : 500,
                           rc == KP_ERR_INVALID ? "Invalid" : "InternalError", err.message,
                           call->info.name, call->resource->group, call->resource->plural);
        return NULL;
    }
    if (!json_is_object(patched)) {
        json_decref(patched);
        kp_call_bad_request(call, "the patch does not produce an object");
        return NULL;
    }
    char api_version[128];
    const char *av = json_string_value(json_object_get(patched, "apiVersion"));
    const char *kind = json_string_value(json_object_get(patched, "kind"));
    kp_resource_api_version(call->resource, api_version, sizeof(api_version));
    if ((av && strcmp(av, api_version) != 0) || (kind && strcmp(kind, call->resource->kind))) {
        json_decref(patched);
        kp_call_bad_request(call, "a patch may not change apiVersion or kind");
        return NULL;
    }
    const char *name = kp_meta_str(patched, "name");
    if (name && strcmp(name, call->info.name) != 0) {
        json_decref(patched);
        kp_call_invalid(call, NULL, call->info.name,
                        "metadata.name: Invalid value: a patch may not change the name");
        return NULL;
    }
    if (pc->status_only) {
        json_t *object = json_deep_copy(current);
        json_t *status = json_object_get(patched, "status");
        if (status)
            json_object_set(object, "status", status);
        else
            json_object_del(object, "status");
        json_decref(patched);
        return object;
    }
    return patched;
}

static void handle_patch(struct kp_call *call, bool status_only)
{
    const char *type = kp_http_header(call->http, "Content-Type");
    const char *kind = NULL;
    if (type && content_type_is(type, "application/merge-patch+json"))
        kind = "merge";
    else if (type && content_type_is(type, "application/strategic-merge-patch+json"))
        kind = "strategic";
    else if (type && content_type_is(type, "application/json-patch+json"))
        kind = "json";
    if (!kind) {
        char message[512];
        snprintf(message, sizeof(message),
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/json-patch+json, application/merge-patch+json, "
                 "application/strategic-merge-patch+json (got %.100s)",
                 type ? type : "no Content-Type");
        kp_call_status(call, 415, "UnsupportedMediaType", message, NULL, NULL, NULL);
        return;
    }
    size_t len = 0;
    const char *body = kp_http_body(call->http, &len);
    json_error_t jerr;
    json_t *patch = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!patch || (strcmp(kind, "json") == 0 ? !json_is_array(patch) : !json_is_object(patch))) {
        json_decref(patch);
        kp_call_bad_request(call, strcmp(kind, "json") == 0
                                      ? "the JSON patch must be a JSON array of operations"
                                      : "the patch must be a JSON object");
        return;
    }
    /* A patch that pins metadata.resourceVersion is a precondition, like an update's. */
    int64_t pinned = 0;
    if (json_is_object(patch))
        pinned = parse_rv(kp_meta_str(patch, "resourceVersion"));
    struct patch_context pc = {patch, kind, status_only};
    guaranteed_update(call, status_only ? "status" : NULL, transform_patch, &pc,
                      pinned > 0 ? pinned : 0);
    json_decref(patch);
}

/* ---- deleting ---- */

struct delete_options {
    int64_t grace;      /* -1: the object's default */
    const char *uid;    /* preconditions */
    const char *rv;
    json_t *body;       /* owns the strings above */
};

static bool read_delete_options(struct kp_call *call, struct delete_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->grace = -1;
    opts->body = kp_call_read_object(call, true); /* JSON or protobuf DeleteOptions */
    if (call->responded)
        return false;
    if (opts->body) {
        const json_t *grace = json_object_get(opts->body, "gracePeriodSeconds");
        if (json_is_integer(grace))
            opts->grace = json_integer_value(grace);
        const json_t *pre = json_object_get(opts->body, "preconditions");
        opts->uid = json_string_value(json_object_get(pre, "uid"));
        opts->rv = json_string_value(json_object_get(pre, "resourceVersion"));
    }
    const char *grace_text = kp_http_query(call->http, "gracePeriodSeconds");
    if (grace_text && *grace_text) {
        char *end;
        long long g = strtoll(grace_text, &end, 10);
        if (*end || g < 0) {
            json_decref(opts->body);
            kp_call_bad_request(call, "gracePeriodSeconds must be a non-negative integer");
            return false;
        }
        opts->grace = g;
    }
    return true;
}

static int64_t default_grace(const json_t *object)
{
    const json_t *g =
        json_object_get(json_object_get(object, "spec"), "terminationGracePeriodSeconds");
    return json_is_integer(g) ? json_integer_value(g) : 30;
}

/* Deletes everything in a namespace and then the namespace: kube-controller-manager's
 * namespace controller does this upstream; kpki's API server does it itself so that
 * `kubectl delete namespace` completes without a controller manager. */
static enum kp_result purge_namespace(struct kp_api *api, const char *ns, struct kp_error *err)
{
    size_t count;
    const struct kp_resource *resources = kp_resources(&count);
    for (size_t r = 0; r < count; r++) {
        if (!resources[r].namespaced || !resources[r].storage)
            continue;
        /* Several versions of one resource share a storage prefix: purge once. */
        bool seen = false;
        for (size_t q = 0; q < r; q++)
            seen |= resources[q].storage && strcmp(resources[q].storage,
                                                   resources[r].storage) == 0;
        if (seen)
            continue;
        json_t *items = NULL;
        enum kp_result rc = kp_registry_list_all(api, &resources[r], ns, &items, err);
        if (rc != KP_OK)
            return rc;
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item) {
            rc = kp_registry_delete(api, &resources[r], ns, kp_meta_str(item, "name"), 0, NULL,
                                    err);
            if (rc != KP_OK && rc != KP_ERR_NOT_FOUND) {
                json_decref(items);
                return rc;
            }
        }
        json_decref(items);
    }
    return KP_OK;
}

/* Deletes one object (already read) honouring finalizers and graceful deletion. Returns the
 * HTTP status answered with the object (200) or an error with err set. *result: what to send
 * back (new reference). */
static enum kp_result delete_object(struct kp_call *call, const json_t *current,
                                    const struct delete_options *opts, json_t **result,
                                    struct kp_error *err)
{
    *result = NULL;
    const char *name = kp_meta_str(current, "name");
    int64_t current_rv = parse_rv(kp_meta_str(current, "resourceVersion"));
    bool has_finalizers = json_array_size(json_object_get(kp_meta(current), "finalizers")) > 0;
    bool namespace_kind = !call->resource->group[0] &&
                          strcmp(call->resource->plural, "namespaces") == 0;
    int64_t grace = opts->grace >= 0 ? opts->grace : default_grace(current);
    bool now = !call->resource->hooks || !call->resource->hooks->delete_now ||
               call->resource->hooks->delete_now(call, current, grace);
    if (namespace_kind) {
        if (strcmp(name, "default") == 0 || strcmp(name, "kube-system") == 0 ||
            strcmp(name, "kube-public") == 0)
            return kp_error_set(err, KP_ERR_FORBIDDEN,
                                "namespaces \"%s\" is forbidden: this namespace may not be "
                                "deleted",
                                name);
        if (dry_run(call)) {
            *result = json_deep_copy(current);
            return KP_OK;
        }
        /* Show the Terminating phase to watchers, empty it, then remove it. */
        json_t *terminating = json_deep_copy(current);
        char ts[40];
        kp_timestamp(call->now, ts, sizeof(ts));
        kp_meta_set_str(terminating, "deletionTimestamp", ts);
        json_object_set_new(terminating, "status", json_pack("{s:s}", "phase", "Terminating"));
        enum kp_result rc = kp_registry_update(call->api, call->resource, terminating,
                                               current_rv, err);
        if (rc == KP_OK)
            rc = purge_namespace(call->api, name, err);
        if (rc == KP_OK) {
            json_t *deleted = NULL;
            rc = kp_registry_delete(call->api, call->resource, "", name, 0, &deleted, err);
            json_decref(deleted);
        }
        if (rc != KP_OK) {
            json_decref(terminating);
            return rc;
        }
        *result = terminating;
        return KP_OK;
    }
    if (has_finalizers || !now) {
        if (kp_meta_str(current, "deletionTimestamp")) {
            *result = json_deep_copy(current); /* already being deleted */
            return KP_OK;
        }
        json_t *marked = json_deep_copy(current);
        char ts[40];
        kp_timestamp(call->now + (has_finalizers ? 0 : grace), ts, sizeof(ts));
        kp_meta_set_str(marked, "deletionTimestamp", ts);
        json_object_set_new(kp_meta(marked), "deletionGracePeriodSeconds",
                            json_integer(has_finalizers ? 0 : grace));
        enum kp_result rc = dry_run(call) ? KP_OK
                                          : kp_registry_update(call->api, call->resource, marked,
                                                               current_rv, err);
        if (rc != KP_OK) {
            json_decref(marked);
            return rc;
        }
        *result = marked;
        return KP_OK;
    }
    if (dry_run(call)) {
        *result = json_deep_copy(current);
        return KP_OK;
    }
    return kp_registry_delete(call->api, call->resource, call->info.namespace_, name, current_rv,
                              result, err);
}

static void handle_delete(struct kp_call *call)
{
    struct delete_options opts;
    if (!read_delete_options(call, &opts))
        return;
    struct kp_error err;
    for (int attempt = 0; attempt < UPDATE_RETRIES; attempt++) {
        json_t *current = NULL;
        enum kp_result rc = kp_registry_get(call->api, call->resource, call->info.namespace_,
                                            call->info.name, &current, &err);
        if (rc != KP_OK) {
            kp_call_error(call, rc, err.message);
            break;
        }
        const char *uid = kp_meta_str(current, "uid");
        const char *rv = kp_meta_str(current, "resourceVersion");
        if ((opts.uid && (!uid || strcmp(opts.uid, uid) != 0)) ||
            (opts.rv && (!rv || strcmp(opts.rv, rv) != 0))) {
            char why[300];
            snprintf(why, sizeof(why), "Precondition failed: %s in precondition: %.60s, %s in "
                                       "object meta: %.60s",
                     opts.uid ? "UID" : "ResourceVersion", opts.uid ? opts.uid : opts.rv,
                     opts.uid ? "UID" : "ResourceVersion", opts.uid ? uid : rv);
            json_decref(current);
            kp_call_conflict(call, call->info.name, why);
            break;
        }
        if (!kp_admit(call, "DELETE", call->info.name, NULL, current)) {
            json_decref(current);
            break;
        }
        json_t *result = NULL;
        rc = delete_object(call, current, &opts, &result, &err);
        json_decref(current);
        if (rc == KP_ERR_CONFLICT && !opts.rv)
            continue; /* changed since we read it: read again */
        if (rc == KP_ERR_FORBIDDEN)
            kp_call_status(call, 403, "Forbidden", err.message, call->info.name,
                           call->resource->group, call->resource->plural);
        else if (rc != KP_OK)
            kp_call_error(call, rc, err.message);
        else
            kp_call_json(call, 200, typed(call, result));
        json_decref(result);
        break;
    }
    if (!call->responded)
        kp_call_conflict(call, call->info.name, "too many concurrent writes; try again");
    json_decref(opts.body);
}

static void handle_deletecollection(struct kp_call *call)
{
    if (!check_field_selector(call))
        return;
    struct delete_options opts;
    if (!read_delete_options(call, &opts))
        return;
    json_t *items = NULL;
    struct kp_error err;
    enum kp_result rc = kp_registry_list_all(call->api, call->resource, call->info.namespace_,
                                             &items, &err);
    json_t *deleted = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        if (rc != KP_OK)
            break;
        if (!kp_object_matches(call, item))
            continue;
        const char *saved_name = call->info.name;
        call->info.name = kp_meta_str(item, "name");
        if (!kp_admit(call, "DELETE", call->info.name, NULL, item)) {
            json_decref(items);
            json_decref(deleted);
            json_decref(opts.body);
            return;
        }
        json_t *result = NULL;
        rc = delete_object(call, item, &opts, &result, &err);
        call->info.name = saved_name;
        if (rc == KP_ERR_NOT_FOUND || rc == KP_ERR_CONFLICT) {
            rc = KP_OK; /* gone or changed meanwhile: deletecollection is best effort */
        } else if (rc == KP_OK) {
            json_array_append_new(deleted, typed(call, result));
        }
    }
    json_decref(items);
    json_decref(opts.body);
    if (rc != KP_OK) {
        json_decref(deleted);
        kp_call_error(call, rc, err.message);
        return;
    }
    respond_list(call, deleted, NULL, NULL);
    json_decref(deleted);
}

/* ---- dispatch ---- */

void kp_rest_handle(struct kp_call *call)
{
    const char *verb = call->info.verb;
    if (strcmp(verb, "get") == 0)
        handle_get(call);
    else if (strcmp(verb, "list") == 0)
        handle_list(call);
    else if (strcmp(verb, "create") == 0)
        handle_create(call);
    else if (strcmp(verb, "update") == 0)
        handle_update(call, false);
    else if (strcmp(verb, "patch") == 0)
        handle_patch(call, false);
    else if (strcmp(verb, "delete") == 0)
        handle_delete(call);
    else if (strcmp(verb, "deletecollection") == 0)
        handle_deletecollection(call);
    else
        kp_call_method_not_allowed(call);
}

void kp_rest_status_subresource(struct kp_call *call)
{
    const char *verb = call->info.verb;
    if (strcmp(verb, "get") == 0)
        handle_get(call);
    else if (strcmp(verb, "update") == 0)
        handle_update(call, true);
    else if (strcmp(verb, "patch") == 0)
        handle_patch(call, true);
    else
        kp_call_method_not_allowed(call);
}
