/*
 * The Node authorizer (k8s.io/kubernetes plugin/pkg/auth/authorizer/node: node_authorizer.go
 * with the AuthorizeNodeWithSelectors behaviour, graph.go) and the NodeRestriction admission
 * plugin (plugin/pkg/admission/noderestriction/admission.go), both as of Kubernetes 1.31.
 *
 * Implementation notes
 *  - The graph keeps only what pods contribute (the API server feeds it pods): pod -> node,
 *    and secret/configmap/serviceaccount/persistentvolumeclaim -> pod. Every path to a node
 *    therefore has length one or two, so instead of upstream's general graph walk it keeps,
 *    per referenced object, how many pods on each node reference it. "Related" is then a map
 *    lookup. Persistent volumes, volume attachments, resource claims and resource slices have
 *    no edges here (nothing feeds them), so the node gets no relationship to them.
 *  - Mirror pods contribute only their pod -> node edge (graph.go: a node must never gain
 *    access to other objects by creating a pod).
 *  - One rwlock guards the graph; queries take it shared.
 *  - Refusal reasons are upstream's strings. Where upstream logs a detailed error and returns
 *    a generic reason ("no relationship found between node 'a' and this object"), the detail
 *    goes to the debug log.
 */
#include "auth/node.h"

#include "auth/rbac.h"
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIRROR_POD_ANNOTATION "kubernetes.io/config.mirror"
#define NODE_LEASE_NAMESPACE "kube-node-lease"

/* ---- a small string-keyed hash map (chained, owns its keys) ---- */

struct map_item {
    char *key;
    void *value;
    struct map_item *next;
};

struct map {
    struct map_item **buckets;
    size_t bucket_count; /* a power of two, or 0 */
    size_t count;
};

static uint64_t string_hash(const char *text)
{
    uint64_t hash = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        hash = (hash ^ *p) * 1099511628211ULL;
    }
    return hash;
}

static void *map_get(const struct map *map, const char *key)
{
    if (map->bucket_count == 0) {
        return NULL;
    }
    for (struct map_item *item = map->buckets[string_hash(key) & (map->bucket_count - 1)];
         item != NULL; item = item->next) {
        if (strcmp(item->key, key) == 0) {
            return item->value;
        }
    }
    return NULL;
}

/* Adds a key that is not in the map yet; key is copied. */
static bool map_add(struct map *map, const char *key, void *value)
{
    if (map->count + 1 > map->bucket_count) {
        size_t bucket_count = map->bucket_count == 0 ? 64 : map->bucket_count * 2;
        struct map_item **buckets = calloc(bucket_count, sizeof(*buckets));
        if (buckets == NULL) {
            return false;
        }
        for (size_t i = 0; i < map->bucket_count; i++) {
            struct map_item *item = map->buckets[i];
            while (item != NULL) {
                struct map_item *next = item->next;
                size_t slot = string_hash(item->key) & (bucket_count - 1);
                item->next = buckets[slot];
                buckets[slot] = item;
                item = next;
            }
        }
        free(map->buckets);
        map->buckets = buckets;
        map->bucket_count = bucket_count;
    }
    struct map_item *item = malloc(sizeof(*item));
    char *copy = strdup(key);
    if (item == NULL || copy == NULL) {
        free(item);
        free(copy);
        return false;
    }
    size_t slot = string_hash(key) & (map->bucket_count - 1);
    item->key = copy;
    item->value = value;
    item->next = map->buckets[slot];
    map->buckets[slot] = item;
    map->count++;
    return true;
}

/* Removes key; returns its value (NULL if absent). */
static void *map_remove(struct map *map, const char *key)
{
    if (map->bucket_count == 0) {
        return NULL;
    }
    struct map_item **link = &map->buckets[string_hash(key) & (map->bucket_count - 1)];
    for (; *link != NULL; link = &(*link)->next) {
        if (strcmp((*link)->key, key) == 0) {
            struct map_item *item = *link;
            void *value = item->value;
            *link = item->next;
            free(item->key);
            free(item);
            map->count--;
            return value;
        }
    }
    return NULL;
}

/* Frees every item, calling free_value on each value. */
static void map_wipe(struct map *map, void (*free_value)(void *))
{
    for (size_t i = 0; i < map->bucket_count; i++) {
        struct map_item *item = map->buckets[i];
        while (item != NULL) {
            struct map_item *next = item->next;
            if (free_value != NULL) {
                free_value(item->value);
            }
            free(item->key);
            free(item);
            item = next;
        }
    }
    free(map->buckets);
    memset(map, 0, sizeof(*map));
}

/* ---- the graph ---- */

struct node_count {
    char *node;
    size_t pods;
};

/* An object some pods reference: how many pods on each node. */
struct object_entry {
    struct node_count *nodes;
    size_t count;
    size_t capacity;
};

struct pod_entry {
    char *node;
    struct kp_strlist refs; /* object keys, unique */
};

struct kp_node_graph {
    pthread_rwlock_t lock;
    struct map pods;    /* "ns/name" -> struct pod_entry */
    struct map objects; /* "<resource>/ns/name" -> struct object_entry */
    struct map nodes;   /* node name -> pods bound to it (a size_t stored in the pointer) */
    json_t *node_rules; /* the system:node rules */
};

static void object_entry_free(void *value)
{
    struct object_entry *entry = value;
    if (entry == NULL) {
        return;
    }
    for (size_t i = 0; i < entry->count; i++) {
        free(entry->nodes[i].node);
    }
    free(entry->nodes);
    free(entry);
}

static void pod_entry_free(void *value)
{
    struct pod_entry *entry = value;
    if (entry == NULL) {
        return;
    }
    free(entry->node);
    kp_strlist_wipe(&entry->refs);
    free(entry);
}

enum kp_result kp_node_graph_new(struct kp_node_graph **graph_out, struct kp_error *err)
{
    *graph_out = NULL;
    struct kp_node_graph *graph = calloc(1, sizeof(*graph));
    if (graph == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory creating the node graph");
    }
    graph->node_rules = kp_rbac_node_rules();
    if (graph->node_rules == NULL) {
        free(graph);
        return kp_error_set(err, KP_ERR_IO, "out of memory creating the node graph");
    }
    int rc = pthread_rwlock_init(&graph->lock, NULL);
    if (rc != 0) {
        json_decref(graph->node_rules);
        free(graph);
        return kp_error_errno(err, rc, "cannot create the node graph's lock");
    }
    *graph_out = graph;
    return KP_OK;
}

void kp_node_graph_free(struct kp_node_graph *graph)
{
    if (graph == NULL) {
        return;
    }
    map_wipe(&graph->pods, pod_entry_free);
    map_wipe(&graph->objects, object_entry_free);
    map_wipe(&graph->nodes, NULL);
    json_decref(graph->node_rules);
    pthread_rwlock_destroy(&graph->lock);
    free(graph);
}

static char *make_key(const char *first, const char *second, const char *third)
{
    size_t len = strlen(first) + 1 + strlen(second) + (third != NULL ? 1 + strlen(third) : 0) + 1;
    char *key = malloc(len);
    if (key == NULL) {
        return NULL;
    }
    if (third != NULL) {
        snprintf(key, len, "%s/%s/%s", first, second, third);
    } else {
        snprintf(key, len, "%s/%s", first, second);
    }
    return key;
}

static void node_pods_adjust(struct kp_node_graph *graph, const char *node, bool add)
{
    uintptr_t pods = (uintptr_t)map_remove(&graph->nodes, node);
    pods = add ? pods + 1 : (pods > 0 ? pods - 1 : 0);
    if (pods > 0 && !map_add(&graph->nodes, node, (void *)pods)) {
        kp_log_error("node graph: out of memory recording node '%s'", node);
    }
}

/* Drops one pod's edges (caller holds the write lock). */
static void remove_pod_locked(struct kp_node_graph *graph, const char *pod_key)
{
    struct pod_entry *pod = map_remove(&graph->pods, pod_key);
    if (pod == NULL) {
        return;
    }
    for (size_t r = 0; r < pod->refs.count; r++) {
        struct object_entry *object = map_get(&graph->objects, pod->refs.items[r]);
        if (object == NULL) {
            continue;
        }
        for (size_t n = 0; n < object->count; n++) {
            if (strcmp(object->nodes[n].node, pod->node) != 0) {
                continue;
            }
            if (--object->nodes[n].pods == 0) {
                free(object->nodes[n].node);
                object->nodes[n] = object->nodes[--object->count];
            }
            break;
        }
        if (object->count == 0) {
            object_entry_free(map_remove(&graph->objects, pod->refs.items[r]));
        }
    }
    node_pods_adjust(graph, pod->node, false);
    pod_entry_free(pod);
}

static bool object_add_node(struct object_entry *object, const char *node)
{
    for (size_t n = 0; n < object->count; n++) {
        if (strcmp(object->nodes[n].node, node) == 0) {
            object->nodes[n].pods++;
            return true;
        }
    }
    if (object->count == object->capacity) {
        size_t capacity = object->capacity == 0 ? 2 : object->capacity * 2;
        struct node_count *grown = realloc(object->nodes, capacity * sizeof(*grown));
        if (grown == NULL) {
            return false;
        }
        object->nodes = grown;
        object->capacity = capacity;
    }
    object->nodes[object->count].node = strdup(node);
    if (object->nodes[object->count].node == NULL) {
        return false;
    }
    object->nodes[object->count++].pods = 1;
    return true;
}

/* ---- what a pod references (pkg/api/v1/pod/util.go, AllContainers) ---- */

/* Called with each referenced name, possibly ""; return false to stop. */
typedef bool (*name_visitor)(void *context, const char *name);

static const char *member_string(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

/* Visits object.<path...>.name-like string at the end of a chain of members. */
static bool visit_path(const json_t *object, const char *first, const char *second,
                       name_visitor visit, void *context)
{
    const json_t *value = json_object_get(object, first);
    if (value == NULL || json_is_null(value)) {
        return true;
    }
    if (second != NULL) {
        if (!json_is_object(value)) {
            return true;
        }
        const char *name = member_string(value, second);
        return name == NULL || visit(context, name);
    }
    return !json_is_string(value) || visit(context, json_string_value(value));
}

static const char *const container_lists[] = {"initContainers", "containers",
                                              "ephemeralContainers"};

static bool visit_containers(const json_t *spec, bool secrets, name_visitor visit, void *context)
{
    const char *from_ref = secrets ? "secretRef" : "configMapRef";
    const char *key_ref = secrets ? "secretKeyRef" : "configMapKeyRef";
    for (size_t l = 0; l < sizeof(container_lists) / sizeof(container_lists[0]); l++) {
        const json_t *containers = json_object_get(spec, container_lists[l]);
        size_t c;
        const json_t *container;
        json_array_foreach(containers, c, container) {
            size_t i;
            const json_t *item;
            json_array_foreach(json_object_get(container, "envFrom"), i, item) {
                if (!visit_path(item, from_ref, "name", visit, context)) {
                    return false;
                }
            }
            json_array_foreach(json_object_get(container, "env"), i, item) {
                if (!visit_path(json_object_get(item, "valueFrom"), key_ref, "name", visit,
                                context)) {
                    return false;
                }
            }
        }
    }
    return true;
}

static bool visit_pod_secret_names(const json_t *pod, name_visitor visit, void *context)
{
    const json_t *spec = json_object_get(pod, "spec");
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(spec, "imagePullSecrets"), i, item) {
        if (!visit_path(item, "name", NULL, visit, context)) {
            return false;
        }
    }
    if (!visit_containers(spec, true, visit, context)) {
        return false;
    }
    static const struct {
        const char *source;
        const char *first;
        const char *second;
    } volume_refs[] = {
        {"azureFile", "secretName", NULL},  {"cephfs", "secretRef", "name"},
        {"cinder", "secretRef", "name"},    {"flexVolume", "secretRef", "name"},
        {"rbd", "secretRef", "name"},       {"secret", "secretName", NULL},
        {"scaleIO", "secretRef", "name"},   {"iscsi", "secretRef", "name"},
        {"storageos", "secretRef", "name"}, {"csi", "nodePublishSecretRef", "name"},
    };
    json_array_foreach(json_object_get(spec, "volumes"), i, item) {
        size_t s;
        const json_t *source;
        json_array_foreach(json_object_get(json_object_get(item, "projected"), "sources"), s,
                           source)
        {
            if (!visit_path(source, "secret", "name", visit, context)) {
                return false;
            }
        }
        for (size_t r = 0; r < sizeof(volume_refs) / sizeof(volume_refs[0]); r++) {
            const json_t *volume_source = json_object_get(item, volume_refs[r].source);
            if (json_is_object(volume_source) &&
                !visit_path(volume_source, volume_refs[r].first, volume_refs[r].second, visit,
                            context)) {
                return false;
            }
        }
    }
    return true;
}

static bool visit_pod_configmap_names(const json_t *pod, name_visitor visit, void *context)
{
    const json_t *spec = json_object_get(pod, "spec");
    if (!visit_containers(spec, false, visit, context)) {
        return false;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(spec, "volumes"), i, item) {
        size_t s;
        const json_t *source;
        json_array_foreach(json_object_get(json_object_get(item, "projected"), "sources"), s,
                           source)
        {
            if (!visit_path(source, "configMap", "name", visit, context)) {
                return false;
            }
        }
        if (!visit_path(item, "configMap", "name", visit, context)) {
            return false;
        }
    }
    return true;
}

static const char *pod_service_account(const json_t *pod)
{
    const json_t *spec = json_object_get(pod, "spec");
    const char *name = member_string(spec, "serviceAccountName");
    if (name == NULL || name[0] == '\0') {
        name = member_string(spec, "serviceAccount"); /* the deprecated alias */
    }
    return name != NULL ? name : "";
}

static bool has_annotation(const json_t *object, const char *key)
{
    return json_object_get(json_object_get(json_object_get(object, "metadata"), "annotations"),
                           key) != NULL;
}

struct collect_context {
    struct kp_strlist *refs;
    const char *resource;
    const char *ns;
    bool failed;
};

static bool collect_ref(void *context, const char *name)
{
    struct collect_context *collect = context;
    if (name[0] == '\0') {
        return true;
    }
    char *key = make_key(collect->resource, collect->ns, name);
    struct kp_error err;
    if (key == NULL || (!kp_strlist_contains(collect->refs, key) &&
                        kp_strlist_add(collect->refs, key, &err) != KP_OK)) {
        collect->failed = true;
        free(key);
        return false;
    }
    free(key);
    return true;
}

/* The keys of the objects a non-mirror pod references (graph.go AddPod). */
static bool pod_references(const json_t *pod, const char *ns, const char *pod_name,
                           struct kp_strlist *refs)
{
    struct collect_context collect = {.refs = refs, .ns = ns};
    collect.resource = "serviceaccounts";
    collect_ref(&collect, pod_service_account(pod));
    collect.resource = "secrets";
    visit_pod_secret_names(pod, collect_ref, &collect);
    collect.resource = "configmaps";
    visit_pod_configmap_names(pod, collect_ref, &collect);
    collect.resource = "persistentvolumeclaims";
    size_t i;
    const json_t *volume;
    json_array_foreach(json_object_get(json_object_get(pod, "spec"), "volumes"), i, volume) {
        const json_t *claim = json_object_get(volume, "persistentVolumeClaim");
        if (json_is_object(claim)) {
            const char *claim_name = member_string(claim, "claimName");
            collect_ref(&collect, claim_name != NULL ? claim_name : "");
        } else if (json_is_object(json_object_get(volume, "ephemeral"))) {
            /* ephemeral.VolumeClaimName: <pod name>-<volume name> */
            const char *volume_name = member_string(volume, "name");
            char *claim_name = make_key(pod_name, volume_name != NULL ? volume_name : "", NULL);
            if (claim_name == NULL) {
                return false;
            }
            claim_name[strlen(pod_name)] = '-';
            collect_ref(&collect, claim_name);
            free(claim_name);
        }
    }
    return !collect.failed;
}

enum kp_result kp_node_graph_put_pod(struct kp_node_graph *graph, const json_t *pod,
                                     struct kp_error *err)
{
    if (graph == NULL) {
        return kp_error_set(err, KP_ERR_INTERNAL, "node graph: no graph");
    }
    const json_t *metadata = json_object_get(pod, "metadata");
    const char *ns = member_string(metadata, "namespace");
    const char *name = member_string(metadata, "name");
    if (ns == NULL || name == NULL || ns[0] == '\0' || name[0] == '\0') {
        return kp_error_set(err, KP_ERR_INVALID,
                            "node graph: a pod needs metadata.namespace and metadata.name");
    }
    const char *node = member_string(json_object_get(pod, "spec"), "nodeName");
    struct pod_entry *entry = NULL;
    char *pod_key = make_key(ns, name, NULL);
    enum kp_result rc = KP_OK;
    if (pod_key == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory adding pod '%s/%s'", ns, name);
    }
    if (node != NULL && node[0] != '\0') {
        entry = calloc(1, sizeof(*entry));
        if (entry == NULL || (entry->node = strdup(node)) == NULL ||
            (!has_annotation(pod, MIRROR_POD_ANNOTATION) &&
             !pod_references(pod, ns, name, &entry->refs))) {
            pod_entry_free(entry);
            free(pod_key);
            return kp_error_set(err, KP_ERR_IO, "out of memory adding pod '%s/%s'", ns, name);
        }
    }
    pthread_rwlock_wrlock(&graph->lock);
    remove_pod_locked(graph, pod_key);
    if (entry != NULL) {
        if (!map_add(&graph->pods, pod_key, entry)) {
            pod_entry_free(entry);
            rc = kp_error_set(err, KP_ERR_IO, "out of memory adding pod '%s/%s'", ns, name);
            goto unlock;
        }
        node_pods_adjust(graph, node, true);
        for (size_t r = 0; r < entry->refs.count; r++) {
            const char *key = entry->refs.items[r];
            struct object_entry *object = map_get(&graph->objects, key);
            if (object == NULL) {
                object = calloc(1, sizeof(*object));
                if (object == NULL || !map_add(&graph->objects, key, object)) {
                    free(object);
                    object = NULL;
                }
            }
            if (object == NULL || !object_add_node(object, node)) {
                /* Keep the graph consistent: drop the references not yet counted, then undo
                 * the ones that were. */
                for (size_t rest = r; rest < entry->refs.count; rest++) {
                    free(entry->refs.items[rest]);
                }
                entry->refs.count = r;
                remove_pod_locked(graph, pod_key);
                rc = kp_error_set(err, KP_ERR_IO, "out of memory adding pod '%s/%s'", ns, name);
                goto unlock;
            }
        }
    }
unlock:
    pthread_rwlock_unlock(&graph->lock);
    free(pod_key);
    return rc;
}

void kp_node_graph_delete_pod(struct kp_node_graph *graph, const char *ns, const char *name)
{
    if (graph == NULL || ns == NULL || name == NULL) {
        return;
    }
    char *pod_key = make_key(ns, name, NULL);
    if (pod_key == NULL) {
        kp_log_error("node graph: out of memory deleting pod '%s/%s'", ns, name);
        return;
    }
    pthread_rwlock_wrlock(&graph->lock);
    remove_pod_locked(graph, pod_key);
    pthread_rwlock_unlock(&graph->lock);
    free(pod_key);
}

static bool related_locked(struct kp_node_graph *graph, const char *node, const char *resource,
                           const char *ns, const char *name)
{
    if (map_get(&graph->nodes, node) == NULL) {
        kp_log_debug("NODE DENY: unknown node '%s' cannot get %s %s/%s", node, resource, ns, name);
        return false;
    }
    if (strcmp(resource, "pods") == 0) {
        char *key = make_key(ns, name, NULL);
        const struct pod_entry *pod = key != NULL ? map_get(&graph->pods, key) : NULL;
        free(key);
        return pod != NULL && strcmp(pod->node, node) == 0;
    }
    char *key = make_key(resource, ns, name);
    const struct object_entry *object = key != NULL ? map_get(&graph->objects, key) : NULL;
    free(key);
    if (object == NULL) {
        kp_log_debug("NODE DENY: node '%s' cannot get unknown %s %s/%s", node, resource, ns, name);
        return false;
    }
    for (size_t n = 0; n < object->count; n++) {
        if (strcmp(object->nodes[n].node, node) == 0) {
            return true;
        }
    }
    return false;
}

bool kp_node_graph_related(struct kp_node_graph *graph, const char *node, const char *resource,
                           const char *ns, const char *name)
{
    if (graph == NULL || node == NULL || resource == NULL || ns == NULL || name == NULL) {
        return false;
    }
    static const char *const types[] = {"secrets", "configmaps", "serviceaccounts",
                                        "persistentvolumeclaims", "pods"};
    bool known = false;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && !known; i++) {
        known = strcmp(resource, types[i]) == 0;
    }
    if (!known) {
        return false; /* nothing feeds edges for other types */
    }
    pthread_rwlock_rdlock(&graph->lock);
    bool related = related_locked(graph, node, resource, ns, name);
    pthread_rwlock_unlock(&graph->lock);
    return related;
}

/* ---- the authorizer (node_authorizer.go) ---- */

const char *kp_node_identity(const struct kp_user *user)
{
    size_t prefix_len = strlen(KP_NODE_USER_PREFIX);
    if (user == NULL || user->name == NULL ||
        strncmp(user->name, KP_NODE_USER_PREFIX, prefix_len) != 0 ||
        !kp_user_in_group(user, KP_GROUP_NODES)) {
        return NULL;
    }
    return user->name + prefix_len;
}

static const char *or_empty(const char *text)
{
    return text != NULL ? text : "";
}

static void decide(struct kp_authz_decision *decision, enum kp_authz_verdict verdict,
                   const char *fmt, ...) KP_PRINTF(3, 4);

static void decide(struct kp_authz_decision *decision, enum kp_authz_verdict verdict,
                   const char *fmt, ...)
{
    decision->verdict = verdict;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(decision->reason, sizeof(decision->reason), fmt, ap);
    va_end(ap);
}

static bool verb_is(const struct kp_authz_attrs *attrs, const char *verb)
{
    return strcmp(or_empty(attrs->verb), verb) == 0;
}

static bool verb_in(const struct kp_authz_attrs *attrs, const char *const *verbs)
{
    for (; *verbs != NULL; verbs++) {
        if (verb_is(attrs, *verbs)) {
            return true;
        }
    }
    return false;
}

/* authorize(): a named object with a path to the node. */
static void authorize_related(struct kp_node_graph *graph, const char *node, const char *resource,
                              const struct kp_authz_attrs *attrs,
                              struct kp_authz_decision *decision)
{
    const char *name = or_empty(attrs->name);
    if (name[0] == '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "No Object name found");
        return;
    }
    if (!kp_node_graph_related(graph, node, resource, or_empty(attrs->namespace_), name)) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "no relationship found between node '%s' and this object", node);
        return;
    }
    decide(decision, KP_AUTHZ_ALLOW, "%s", "");
}

static void authorize_get(struct kp_node_graph *graph, const char *node, const char *resource,
                          const struct kp_authz_attrs *attrs, struct kp_authz_decision *decision)
{
    if (!verb_is(attrs, "get")) {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only get individual resources of this type");
        return;
    }
    if (or_empty(attrs->subresource)[0] != '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "cannot get subresource");
        return;
    }
    authorize_related(graph, node, resource, attrs, decision);
}

static void authorize_read_namespaced(struct kp_node_graph *graph, const char *node,
                                      const char *resource, const struct kp_authz_attrs *attrs,
                                      struct kp_authz_decision *decision)
{
    static const char *const reads[] = {"get", "list", "watch", NULL};
    if (!verb_in(attrs, reads)) {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only read resources of this type");
        return;
    }
    if (or_empty(attrs->subresource)[0] != '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "cannot read subresource");
        return;
    }
    if (or_empty(attrs->namespace_)[0] == '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only read namespaced object of this type");
        return;
    }
    authorize_related(graph, node, resource, attrs, decision);
}

static void authorize_status_update(struct kp_node_graph *graph, const char *node,
                                    const char *resource, const struct kp_authz_attrs *attrs,
                                    struct kp_authz_decision *decision)
{
    static const char *const writes[] = {"update", "patch", NULL};
    if (!verb_in(attrs, writes)) {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only get/update/patch this type");
        return;
    }
    if (strcmp(or_empty(attrs->subresource), "status") != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION, "can only update status subresource");
        return;
    }
    authorize_related(graph, node, resource, attrs, decision);
}

static void authorize_create_token(struct kp_node_graph *graph, const char *node,
                                   const struct kp_authz_attrs *attrs,
                                   struct kp_authz_decision *decision)
{
    if (!verb_is(attrs, "create") || or_empty(attrs->name)[0] == '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only create tokens for individual service accounts");
        return;
    }
    if (strcmp(or_empty(attrs->subresource), "token") != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only create token subresource of serviceaccount");
        return;
    }
    authorize_related(graph, node, "serviceaccounts", attrs, decision);
}

static const char *const lease_verbs[] = {"get", "create", "update", "patch", "delete", NULL};

static void authorize_lease(const char *node, const struct kp_authz_attrs *attrs,
                            struct kp_authz_decision *decision)
{
    if (!verb_in(attrs, lease_verbs)) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only get, create, update, patch, or delete a node lease");
        return;
    }
    if (strcmp(or_empty(attrs->namespace_), NODE_LEASE_NAMESPACE) != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only access leases in the \"%s\" system namespace", NODE_LEASE_NAMESPACE);
        return;
    }
    /* On create the authorizer does not know the name; NodeRestriction checks it. */
    if (!verb_is(attrs, "create") && strcmp(or_empty(attrs->name), node) != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only access node lease with the same name as the requesting node");
        return;
    }
    decide(decision, KP_AUTHZ_ALLOW, "%s", "");
}

static void authorize_csinode(const char *node, const struct kp_authz_attrs *attrs,
                              struct kp_authz_decision *decision)
{
    if (!verb_in(attrs, lease_verbs)) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only get, create, update, patch, or delete a CSINode");
        return;
    }
    if (or_empty(attrs->subresource)[0] != '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "cannot authorize CSINode subresources");
        return;
    }
    if (!verb_is(attrs, "create") && strcmp(or_empty(attrs->name), node) != 0) {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "can only access CSINode with the same name as the requesting node");
        return;
    }
    decide(decision, KP_AUTHZ_ALLOW, "%s", "");
}

/* True if the request's field selector requires key=value. */
static bool selector_requires(const struct kp_authz_attrs *attrs, const char *key,
                              const char *value)
{
    const char *required = kp_selector_required_value(attrs->field_selector, key);
    return required != NULL && strcmp(required, value) == 0;
}

static void authorize_resource_slice(struct kp_node_graph *graph, const char *node,
                                     const struct kp_authz_attrs *attrs,
                                     struct kp_authz_decision *decision)
{
    static const char *const by_object[] = {"get", "update", "patch", "delete", NULL};
    static const char *const by_selector[] = {"watch", "list", "deletecollection", NULL};
    if (or_empty(attrs->subresource)[0] != '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "cannot authorize ResourceSlice subresources");
    } else if (verb_is(attrs, "create")) {
        decide(decision, KP_AUTHZ_ALLOW, "%s", ""); /* NodeRestriction checks nodeName */
    } else if (verb_in(attrs, by_object)) {
        authorize_related(graph, node, "resourceslices", attrs, decision);
    } else if (verb_in(attrs, by_selector)) {
        if (selector_requires(attrs, "nodeName", node)) {
            decide(decision, KP_AUTHZ_ALLOW, "%s", "");
        } else {
            decide(decision, KP_AUTHZ_NO_OPINION,
                   "can only list/watch/deletecollection resourceslices with nodeName field "
                   "selector");
        }
    } else {
        decide(decision, KP_AUTHZ_NO_OPINION,
               "only the following verbs are allowed for a ResourceSlice: get, watch, list, "
               "create, update, patch, delete, deletecollection");
    }
}

static void authorize_node_object(const char *node, const struct kp_authz_attrs *attrs,
                                  struct kp_authz_decision *decision)
{
    static const char *const writes[] = {"create", "update", "patch", NULL};
    static const char *const reads[] = {"get", "list", "watch", NULL};
    static const char *const status_writes[] = {"update", "patch", NULL};
    const char *subresource = or_empty(attrs->subresource);
    const char *name = or_empty(attrs->name);
    if (name[0] == '\0' && !verb_is(attrs, "get")) {
        /* RequestInfo names a list or watch by its metadata.name field selector. */
        name = or_empty(kp_selector_required_value(attrs->field_selector, "metadata.name"));
    }
    if (subresource[0] == '\0') {
        if (verb_in(attrs, writes)) {
            decide(decision, KP_AUTHZ_ALLOW, "%s", ""); /* NodeRestriction: self only */
            return;
        }
        if (verb_in(attrs, reads)) {
            /* By name, not through the graph: a kubelet reads its Node before creating it. */
            if (strcmp(name, node) == 0) {
                decide(decision, KP_AUTHZ_ALLOW, "%s", "");
            } else if (name[0] == '\0') {
                decide(decision, KP_AUTHZ_NO_OPINION,
                       "node '%s' cannot read all nodes, only its own Node object", node);
            } else {
                decide(decision, KP_AUTHZ_NO_OPINION,
                       "node '%s' cannot read '%s', only its own Node object", node, name);
            }
            return;
        }
    } else if (strcmp(subresource, "status") == 0 && verb_in(attrs, status_writes)) {
        decide(decision, KP_AUTHZ_ALLOW, "%s", "");
        return;
    }
    decide(decision, KP_AUTHZ_NO_OPINION, "%s", "");
}

static void authorize_pod(struct kp_node_graph *graph, const char *node,
                          const struct kp_authz_attrs *attrs, struct kp_authz_decision *decision)
{
    static const char *const lists[] = {"list", "watch", NULL};
    static const char *const mirror[] = {"create", "delete", NULL};
    static const char *const status_writes[] = {"update", "patch", NULL};
    const char *subresource = or_empty(attrs->subresource);
    if (subresource[0] == '\0') {
        if (verb_is(attrs, "get")) {
            authorize_get(graph, node, "pods", attrs, decision);
            return;
        }
        if (verb_in(attrs, lists)) {
            if (selector_requires(attrs, "spec.nodeName", node)) {
                decide(decision, KP_AUTHZ_ALLOW, "%s", "");
            } else if (or_empty(attrs->name)[0] != '\0') {
                authorize_related(graph, node, "pods", attrs, decision);
            } else {
                decide(decision, KP_AUTHZ_NO_OPINION,
                       "can only list/watch pods with spec.nodeName field selector");
            }
            return;
        }
        if (verb_in(attrs, mirror)) {
            decide(decision, KP_AUTHZ_ALLOW, "%s", ""); /* NodeRestriction: mirror pods */
            return;
        }
    } else if (strcmp(subresource, "status") == 0 && verb_in(attrs, status_writes)) {
        decide(decision, KP_AUTHZ_ALLOW, "%s", "");
        return;
    } else if (strcmp(subresource, "eviction") == 0 && verb_is(attrs, "create")) {
        decide(decision, KP_AUTHZ_ALLOW, "%s", "");
        return;
    }
    decide(decision, KP_AUTHZ_NO_OPINION, "%s", "");
}

static bool group_resource_is(const struct kp_authz_attrs *attrs, const char *group,
                              const char *resource)
{
    return strcmp(or_empty(attrs->api_group), group) == 0 &&
           strcmp(or_empty(attrs->resource), resource) == 0;
}

void kp_node_authorize(struct kp_node_graph *graph, const struct kp_authz_attrs *attrs,
                       struct kp_authz_decision *decision)
{
    decision->verdict = KP_AUTHZ_NO_OPINION;
    decision->reason[0] = '\0';
    if (graph == NULL || attrs == NULL) {
        return;
    }
    const char *node = kp_node_identity(attrs->user);
    if (node == NULL) {
        return; /* not a node: RBAC decides */
    }
    if (node[0] == '\0') {
        decide(decision, KP_AUTHZ_NO_OPINION, "unknown node for user \"%s\"", attrs->user->name);
        return;
    }
    if (attrs->resource_request) {
        if (group_resource_is(attrs, "", "secrets")) {
            authorize_read_namespaced(graph, node, "secrets", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "configmaps")) {
            authorize_read_namespaced(graph, node, "configmaps", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "persistentvolumeclaims")) {
            if (strcmp(or_empty(attrs->subresource), "status") == 0) {
                authorize_status_update(graph, node, "persistentvolumeclaims", attrs, decision);
            } else {
                authorize_get(graph, node, "persistentvolumeclaims", attrs, decision);
            }
            return;
        }
        if (group_resource_is(attrs, "", "persistentvolumes")) {
            authorize_get(graph, node, "persistentvolumes", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "resource.k8s.io", "resourceclaims")) {
            authorize_get(graph, node, "resourceclaims", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "storage.k8s.io", "volumeattachments")) {
            authorize_get(graph, node, "volumeattachments", attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "serviceaccounts")) {
            authorize_create_token(graph, node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "coordination.k8s.io", "leases")) {
            authorize_lease(node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "storage.k8s.io", "csinodes")) {
            authorize_csinode(node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "resource.k8s.io", "resourceslices")) {
            authorize_resource_slice(graph, node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "nodes")) {
            authorize_node_object(node, attrs, decision);
            return;
        }
        if (group_resource_is(attrs, "", "pods")) {
            authorize_pod(graph, node, attrs, decision);
            return;
        }
    }
    /* Everything else: the static system:node rules, not subdivided. */
    size_t i;
    const json_t *rule;
    json_array_foreach(graph->node_rules, i, rule) {
        if (kp_rbac_rule_allows(rule, attrs)) {
            decision->verdict = KP_AUTHZ_ALLOW;
            return;
        }
    }
}

/* ---- NodeRestriction (admission.go) ---- */

/* Go's %q for the names that appear in these messages. */
static const char *quote(char *buffer, size_t size, const char *text)
{
    size_t used = 0;
    if (size < 3) {
        return "\"\"";
    }
    buffer[used++] = '"';
    for (const unsigned char *p = (const unsigned char *)or_empty(text);
         *p != '\0' && used + 6 < size; p++) {
        if (*p == '"' || *p == '\\') {
            buffer[used++] = '\\';
            buffer[used++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            used += (size_t)snprintf(buffer + used, size - used, "\\x%02x", *p);
        } else {
            buffer[used++] = (char)*p;
        }
    }
    buffer[used++] = '"';
    buffer[used] = '\0';
    return buffer;
}

/* admission.NewForbidden: `<resource>[.<group>] "<name>" is forbidden: <reason>`, where the
 * name is the object's (or its generateName), "Unknown" without one (a DELETE carries no
 * object, so upstream's delete refusals read `pods "Unknown" is forbidden: ...`). */
static enum kp_result forbidden(const struct kp_admission_request *request, struct kp_error *err,
                                const char *fmt, ...) KP_PRINTF(3, 4);

static enum kp_result forbidden(const struct kp_admission_request *request, struct kp_error *err,
                                const char *fmt, ...)
{
    char reason[KP_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    const json_t *metadata = json_object_get(request->object, "metadata");
    const char *name = member_string(metadata, "name");
    if (name == NULL || name[0] == '\0') {
        name = member_string(metadata, "generateName");
    }
    if (name == NULL || name[0] == '\0') {
        name = "Unknown";
    }
    const char *group = or_empty(request->api_group);
    char quoted[300];
    return kp_error_set(err, KP_ERR_FORBIDDEN, "%s%s%s %s is forbidden: %s",
                        or_empty(request->resource), group[0] != '\0' ? "." : "", group,
                        quote(quoted, sizeof(quoted), name), reason);
}

/* A lister's NotFound, e.g. `pod "x" not found`. */
static enum kp_result not_found(struct kp_error *err, const char *kind, const char *name)
{
    char quoted[300];
    return kp_error_set(err, KP_ERR_NOT_FOUND, "%s %s not found", kind,
                        quote(quoted, sizeof(quoted), name));
}

static json_t *lookup(const struct kp_admission_request *request, const char *resource,
                      const char *ns, const char *name)
{
    if (request->lookup == NULL) {
        return NULL;
    }
    return request->lookup(request->lookup_context, resource, ns, name);
}

static const char *object_name(const json_t *object)
{
    return or_empty(member_string(json_object_get(object, "metadata"), "name"));
}

static const char *spec_node_name(const json_t *pod)
{
    return or_empty(member_string(json_object_get(pod, "spec"), "nodeName"));
}

static bool operation_is(const struct kp_admission_request *request, const char *operation)
{
    return strcmp(or_empty(request->operation), operation) == 0;
}

static enum kp_result unexpected_type(const struct kp_admission_request *request,
                                      struct kp_error *err)
{
    return forbidden(request, err, "unexpected type <nil>");
}

static bool count_visit(void *context, const char *name)
{
    (void)name;
    *(bool *)context = true;
    return false;
}

static enum kp_result admit_pod_create(const char *node, const struct kp_admission_request *request,
                                       struct kp_error *err)
{
    const json_t *pod = request->object;
    char q[300];
    if (!json_is_object(pod)) {
        return unexpected_type(request, err);
    }
    if (!has_annotation(pod, MIRROR_POD_ANNOTATION)) {
        return forbidden(request, err,
                         "pod does not have \"" MIRROR_POD_ANNOTATION
                         "\" annotation, node %s can only create mirror pods",
                         quote(q, sizeof(q), node));
    }
    if (strcmp(spec_node_name(pod), node) != 0) {
        return forbidden(request, err,
                         "node %s can only create pods with spec.nodeName set to itself",
                         quote(q, sizeof(q), node));
    }
    const json_t *owners = json_object_get(json_object_get(pod, "metadata"), "ownerReferences");
    size_t owner_count = json_is_array(owners) ? json_array_size(owners) : 0;
    if (owner_count > 1) {
        return forbidden(request, err,
                         "node %s can only create pods with a single owner reference set to "
                         "itself",
                         quote(q, sizeof(q), node));
    }
    const json_t *owner = json_array_get(owners, 0);
    if (owner_count == 0 || strcmp(or_empty(member_string(owner, "apiVersion")), "v1") != 0 ||
        strcmp(or_empty(member_string(owner, "kind")), "Node") != 0 ||
        strcmp(or_empty(member_string(owner, "name")), node) != 0) {
        return forbidden(request, err,
                         "node %s can only create pods with an owner reference set to itself",
                         quote(q, sizeof(q), node));
    }
    if (!json_is_true(json_object_get(owner, "controller"))) {
        return forbidden(request, err,
                         "node %s can only create pods with a controller owner reference set to "
                         "itself",
                         quote(q, sizeof(q), node));
    }
    if (json_is_true(json_object_get(owner, "blockOwnerDeletion"))) {
        return forbidden(request, err,
                         "node %s must not set blockOwnerDeletion on an owner reference",
                         quote(q, sizeof(q), node));
    }
    json_t *node_object = lookup(request, "nodes", "", node);
    if (node_object == NULL) {
        return not_found(err, "node", node);
    }
    const char *owner_uid = or_empty(member_string(owner, "uid"));
    const char *node_uid = or_empty(member_string(json_object_get(node_object, "metadata"), "uid"));
    if (strcmp(owner_uid, node_uid) != 0) {
        enum kp_result rc = forbidden(request, err, "node %s UID mismatch: expected %s got %s",
                                      node, owner_uid, node_uid);
        json_decref(node_object);
        return rc;
    }
    json_decref(node_object);
    if (pod_service_account(pod)[0] != '\0') {
        return forbidden(request, err,
                         "node %s can not create pods that reference a service account",
                         quote(q, sizeof(q), node));
    }
    bool found = false;
    visit_pod_secret_names(pod, count_visit, &found);
    if (found) {
        return forbidden(request, err, "node %s can not create pods that reference secrets",
                         quote(q, sizeof(q), node));
    }
    visit_pod_configmap_names(pod, count_visit, &found);
    if (found) {
        return forbidden(request, err, "node %s can not create pods that reference configmaps",
                         quote(q, sizeof(q), node));
    }
    const json_t *volumes = json_object_get(json_object_get(pod, "spec"), "volumes");
    size_t i;
    const json_t *volume;
    json_array_foreach(volumes, i, volume) {
        size_t s;
        const json_t *source;
        json_array_foreach(json_object_get(json_object_get(volume, "projected"), "sources"), s,
                           source)
        {
            if (json_object_get(source, "clusterTrustBundle") != NULL) {
                return forbidden(request, err,
                                 "node %s can not create pods that reference clustertrustbundles",
                                 quote(q, sizeof(q), node));
            }
        }
    }
    json_array_foreach(volumes, i, volume) {
        if (json_is_object(json_object_get(volume, "persistentVolumeClaim"))) {
            return forbidden(request, err,
                             "node %s can not create pods that reference persistentvolumeclaims",
                             quote(q, sizeof(q), node));
        }
    }
    return KP_OK;
}

static enum kp_result admit_pod(const char *node, const struct kp_admission_request *request,
                                struct kp_error *err)
{
    char q[300];
    char q2[300];
    if (operation_is(request, "CREATE")) {
        return admit_pod_create(node, request, err);
    }
    if (operation_is(request, "DELETE")) {
        json_t *existing =
            lookup(request, "pods", or_empty(request->namespace_), or_empty(request->name));
        if (existing == NULL) {
            return not_found(err, "pod", or_empty(request->name));
        }
        bool own = strcmp(spec_node_name(existing), node) == 0;
        json_decref(existing);
        if (!own) {
            return forbidden(request, err,
                             "node %s can only delete pods with spec.nodeName set to itself",
                             quote(q, sizeof(q), node));
        }
        return KP_OK;
    }
    return forbidden(request, err,
                     "unexpected operation %s, node %s can only create and delete mirror pods",
                     quote(q, sizeof(q), request->operation), quote(q2, sizeof(q2), node));
}

/* labels.Equals: a missing map equals an empty one. */
static bool labels_equal(const json_t *a, const json_t *b)
{
    size_t a_size = json_is_object(a) ? json_object_size(a) : 0;
    size_t b_size = json_is_object(b) ? json_object_size(b) : 0;
    if (a_size != b_size) {
        return false;
    }
    return a_size == 0 || json_equal(a, b);
}

static const json_t *pod_labels(const json_t *pod)
{
    return json_object_get(json_object_get(pod, "metadata"), "labels");
}

static bool claim_statuses_equal(const json_t *a, const json_t *b)
{
    size_t count = json_is_array(a) ? json_array_size(a) : 0;
    if (count != (json_is_array(b) ? json_array_size(b) : 0)) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        const json_t *left = json_array_get(a, i);
        const json_t *right = json_array_get(b, i);
        const char *left_claim = member_string(left, "resourceClaimName");
        const char *right_claim = member_string(right, "resourceClaimName");
        if (strcmp(or_empty(member_string(left, "name")), or_empty(member_string(right, "name"))) !=
                0 ||
            (left_claim == NULL) != (right_claim == NULL) ||
            (left_claim != NULL && strcmp(left_claim, right_claim) != 0)) {
            return false;
        }
    }
    return true;
}

static enum kp_result admit_pod_status(const char *node, const struct kp_admission_request *request,
                                       struct kp_error *err)
{
    char q[300];
    if (!operation_is(request, "UPDATE")) {
        return forbidden(request, err, "unexpected operation %s",
                         quote(q, sizeof(q), request->operation));
    }
    if (!json_is_object(request->old_object) || !json_is_object(request->object)) {
        return unexpected_type(request, err);
    }
    if (strcmp(spec_node_name(request->old_object), node) != 0) {
        return forbidden(request, err,
                         "node %s can only update pod status for pods with spec.nodeName set to "
                         "itself",
                         quote(q, sizeof(q), node));
    }
    if (!labels_equal(pod_labels(request->old_object), pod_labels(request->object))) {
        return forbidden(request, err, "node %s cannot update labels through pod status",
                         quote(q, sizeof(q), node));
    }
    const json_t *old_claims =
        json_object_get(json_object_get(request->old_object, "status"), "resourceClaimStatuses");
    const json_t *new_claims =
        json_object_get(json_object_get(request->object, "status"), "resourceClaimStatuses");
    if (!claim_statuses_equal(old_claims, new_claims)) {
        /* sic: upstream's spelling */
        return forbidden(request, err, "node %s cannot update resource claim statues",
                         quote(q, sizeof(q), node));
    }
    return KP_OK;
}

static enum kp_result admit_pod_eviction(const char *node,
                                         const struct kp_admission_request *request,
                                         struct kp_error *err)
{
    if (!operation_is(request, "CREATE")) {
        return forbidden(request, err, "unexpected operation %s", or_empty(request->operation));
    }
    if (!json_is_object(request->object)) {
        return unexpected_type(request, err);
    }
    /* The pod named in the URL, else the Eviction's own name. */
    const char *pod_name = or_empty(request->name);
    if (pod_name[0] == '\0') {
        pod_name = object_name(request->object);
        if (pod_name[0] == '\0') {
            return forbidden(request, err, "could not determine pod from request data");
        }
    }
    json_t *existing = lookup(request, "pods", or_empty(request->namespace_), pod_name);
    if (existing == NULL) {
        return not_found(err, "pod", pod_name);
    }
    bool own = strcmp(spec_node_name(existing), node) == 0;
    json_decref(existing);
    if (!own) {
        return forbidden(request, err,
                         "node %s can only evict pods with spec.nodeName set to itself", node);
    }
    return KP_OK;
}

/* A copy of a PersistentVolumeClaim without what a node may change, and without empty
 * members (Semantic.DeepEqual treats nil and empty alike). */
static void drop_empty(json_t *value)
{
    if (json_is_array(value)) {
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item) {
            drop_empty(item);
        }
        return;
    }
    if (!json_is_object(value)) {
        return;
    }
    const char *key;
    json_t *member;
    void *tmp;
    json_object_foreach_safe(value, tmp, key, member) {
        drop_empty(member);
        if (json_is_null(member) || (json_is_array(member) && json_array_size(member) == 0) ||
            (json_is_object(member) && json_object_size(member) == 0)) {
            json_object_del(value, key);
        }
    }
}

static json_t *pvc_comparable(const json_t *pvc)
{
    json_t *copy = json_deep_copy(pvc);
    if (copy == NULL) {
        return NULL;
    }
    json_t *metadata = json_object_get(copy, "metadata");
    json_object_del(metadata, "resourceVersion");
    json_object_del(metadata, "managedFields");
    json_t *status = json_object_get(copy, "status");
    json_object_del(status, "capacity");
    json_object_del(status, "conditions");
    drop_empty(copy);
    return copy;
}

static enum kp_result admit_pvc_status(const char *node, const struct kp_admission_request *request,
                                       struct kp_error *err)
{
    char q[300];
    if (!operation_is(request, "UPDATE")) {
        return forbidden(request, err, "unexpected operation %s",
                         quote(q, sizeof(q), request->operation));
    }
    if (!json_is_object(request->old_object) || !json_is_object(request->object)) {
        return unexpected_type(request, err);
    }
    json_t *old_pvc = pvc_comparable(request->old_object);
    json_t *new_pvc = pvc_comparable(request->object);
    enum kp_result rc = KP_OK;
    if (old_pvc == NULL || new_pvc == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory comparing persistent volume claims");
    } else if (!json_equal(old_pvc, new_pvc)) {
        /* Upstream appends cmp.Diff of the two objects; kpki names the members that differ. */
        char changed[256] = "";
        size_t used = 0;
        static const char *const parts[] = {"metadata", "spec", "status"};
        for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
            const json_t *left = json_object_get(old_pvc, parts[p]);
            const json_t *right = json_object_get(new_pvc, parts[p]);
            const char *key;
            const json_t *value;
            json_t *both[2] = {(json_t *)left, (json_t *)right};
            for (size_t side = 0; side < 2; side++) {
                json_object_foreach(both[side], key, value) {
                    const json_t *other = json_object_get(both[1 - side], key);
                    if (other != NULL && json_equal(value, other)) {
                        continue;
                    }
                    if (side == 1 && other != NULL) {
                        continue; /* reported from the left */
                    }
                    used += (size_t)snprintf(changed + used,
                                             used < sizeof(changed) ? sizeof(changed) - used : 0,
                                             "%s%s.%s", used > 0 ? ", " : "", parts[p], key);
                    if (used >= sizeof(changed)) {
                        used = sizeof(changed) - 1;
                    }
                }
            }
        }
        if (used == 0) {
            snprintf(changed, sizeof(changed), "the object");
        }
        rc = forbidden(request, err,
                       "node %s is not allowed to update fields other than status.capacity and "
                       "status.conditions: changed %s",
                       quote(q, sizeof(q), node), changed);
    }
    json_decref(old_pvc);
    json_decref(new_pvc);
    return rc;
}

/* k8s.io/kubelet/pkg/apis IsKubeletLabel: the labels a kubelet may set on its Node. */
static bool is_kubelet_label(const char *key, const char *label_namespace)
{
    static const char *const kubelet_labels[] = {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    };
    for (size_t i = 0; i < sizeof(kubelet_labels) / sizeof(kubelet_labels[0]); i++) {
        if (strcmp(key, kubelet_labels[i]) == 0) {
            return true;
        }
    }
    /* kubelet.kubernetes.io/ and node.kubernetes.io/ (node.kubernetes.io/windows-build among
     * them), and their subdomains. */
    static const char *const kubelet_namespaces[] = {"kubelet.kubernetes.io", "node.kubernetes.io"};
    size_t len = strlen(label_namespace);
    for (size_t i = 0; i < sizeof(kubelet_namespaces) / sizeof(kubelet_namespaces[0]); i++) {
        size_t suffix_len = strlen(kubelet_namespaces[i]);
        if (strcmp(label_namespace, kubelet_namespaces[i]) == 0 ||
            (len > suffix_len && label_namespace[len - suffix_len - 1] == '.' &&
             strcmp(label_namespace + len - suffix_len, kubelet_namespaces[i]) == 0)) {
            return true;
        }
    }
    return false;
}

static bool namespace_is(const char *label_namespace, const char *domain)
{
    size_t len = strlen(label_namespace);
    size_t domain_len = strlen(domain);
    return strcmp(label_namespace, domain) == 0 ||
           (len > domain_len && label_namespace[len - domain_len - 1] == '.' &&
            strcmp(label_namespace + len - domain_len, domain) == 0);
}

/* getForbiddenLabels over getModifiedLabels(new, old); the result sorted. */
static enum kp_result forbidden_labels(const json_t *new_labels, const json_t *old_labels,
                                       struct kp_strlist *out, struct kp_error *err)
{
    const json_t *sides[2] = {new_labels, old_labels};
    for (size_t side = 0; side < 2; side++) {
        if (!json_is_object(sides[side])) {
            continue;
        }
        const char *key;
        const json_t *value;
        json_object_foreach((json_t *)sides[side], key, value) {
            const json_t *other =
                json_is_object(sides[1 - side]) ? json_object_get(sides[1 - side], key) : NULL;
            if (other != NULL && json_equal(value, other)) {
                continue; /* not modified */
            }
            char label_namespace[256] = "";
            const char *slash = strchr(key, '/');
            if (slash != NULL) {
                snprintf(label_namespace, sizeof(label_namespace), "%.*s", (int)(slash - key), key);
            }
            bool refused = namespace_is(label_namespace, "node-restriction.kubernetes.io");
            bool kubernetes = namespace_is(label_namespace, "kubernetes.io") ||
                              namespace_is(label_namespace, "k8s.io");
            if (kubernetes && !is_kubelet_label(key, label_namespace)) {
                refused = true;
            }
            if (refused && !kp_strlist_contains(out, key)) {
                enum kp_result rc = kp_strlist_add(out, key, err);
                if (rc != KP_OK) {
                    return rc;
                }
            }
        }
    }
    kp_strlist_sort_unique(out);
    return KP_OK;
}

static void join(char *buffer, size_t size, const struct kp_strlist *list)
{
    size_t used = 0;
    buffer[0] = '\0';
    for (size_t i = 0; i < list->count && used + 1 < size; i++) {
        int written =
            snprintf(buffer + used, size - used, "%s%s", i > 0 ? ", " : "", list->items[i]);
        if (written < 0) {
            break;
        }
        used += (size_t)written;
    }
}

static const json_t *node_spec_member(const json_t *node, const char *key)
{
    const json_t *value = json_object_get(json_object_get(node, "spec"), key);
    return json_is_null(value) ? NULL : value;
}

/* Semantic.DeepEqual on taints: a missing list equals an empty one. */
static bool taints_equal(const json_t *a, const json_t *b)
{
    size_t a_size = json_is_array(a) ? json_array_size(a) : 0;
    size_t b_size = json_is_array(b) ? json_array_size(b) : 0;
    if (a_size != b_size) {
        return false;
    }
    return a_size == 0 || json_equal(a, b);
}

static enum kp_result admit_node(const char *node, const struct kp_admission_request *request,
                                 struct kp_error *err)
{
    char q[300];
    char q2[300];
    if (strcmp(or_empty(request->name), node) != 0) {
        return forbidden(request, err, "node %s is not allowed to modify node %s",
                         quote(q, sizeof(q), node), quote(q2, sizeof(q2), request->name));
    }
    bool create = operation_is(request, "CREATE");
    if (!create && !operation_is(request, "UPDATE")) {
        return KP_OK;
    }
    if (!json_is_object(request->object) || (!create && !json_is_object(request->old_object))) {
        return unexpected_type(request, err);
    }
    const json_t *config_source = node_spec_member(request->object, "configSource");
    const json_t *old_labels = NULL;
    if (create) {
        if (config_source != NULL) {
            /* sic: upstream says "pods" */
            return forbidden(request, err,
                             "node %s is not allowed to create pods with a non-nil configSource",
                             quote(q, sizeof(q), node));
        }
    } else {
        const json_t *old_source = node_spec_member(request->old_object, "configSource");
        if (config_source != NULL &&
            (old_source == NULL || !json_equal(config_source, old_source))) {
            return forbidden(request, err,
                             "node %s is not allowed to update configSource to a new non-nil "
                             "configSource",
                             quote(q, sizeof(q), node));
        }
        if (!taints_equal(node_spec_member(request->object, "taints"),
                          node_spec_member(request->old_object, "taints"))) {
            return forbidden(request, err, "node %s is not allowed to modify taints",
                             quote(q, sizeof(q), node));
        }
        old_labels = pod_labels(request->old_object);
    }
    struct kp_strlist refused = {0};
    enum kp_result rc = forbidden_labels(pod_labels(request->object), old_labels, &refused, err);
    if (rc == KP_OK && refused.count > 0) {
        char list[KP_ERROR_MESSAGE_MAX];
        join(list, sizeof(list), &refused);
        if (create) {
            rc = forbidden(request, err, "node %s is not allowed to set the following labels: %s",
                           quote(q, sizeof(q), node), list);
        } else {
            /* sic: upstream's update message does not name the node */
            rc = forbidden(request, err, "is not allowed to modify labels: %s", list);
        }
    }
    kp_strlist_wipe(&refused);
    return rc;
}

static enum kp_result admit_service_account(const char *node,
                                            const struct kp_admission_request *request,
                                            struct kp_error *err)
{
    (void)node;
    if (!operation_is(request, "CREATE") || strcmp(or_empty(request->subresource), "token") != 0) {
        return KP_OK;
    }
    if (!json_is_object(request->object)) {
        return unexpected_type(request, err);
    }
    /* A node's TokenRequest must be bound to a pod scheduled on it; the API server then adds
     * the node binding itself. */
    const json_t *ref = json_object_get(json_object_get(request->object, "spec"), "boundObjectRef");
    const char *ref_name = or_empty(member_string(ref, "name"));
    if (!json_is_object(ref) || strcmp(or_empty(member_string(ref, "apiVersion")), "v1") != 0 ||
        strcmp(or_empty(member_string(ref, "kind")), "Pod") != 0 || ref_name[0] == '\0') {
        return forbidden(request, err, "node requested token not bound to a pod");
    }
    const char *ref_uid = or_empty(member_string(ref, "uid"));
    if (ref_uid[0] == '\0') {
        return forbidden(request, err, "node requested token with a pod binding without a uid");
    }
    json_t *pod = lookup(request, "pods", or_empty(request->namespace_), ref_name);
    if (pod == NULL) {
        return not_found(err, "pod", ref_name);
    }
    enum kp_result rc = KP_OK;
    if (strcmp(ref_uid, or_empty(member_string(json_object_get(pod, "metadata"), "uid"))) != 0) {
        rc = forbidden(request, err,
                       "the UID in the bound object reference (%s) does not match the UID in "
                       "record. The object might have been deleted and then recreated",
                       ref_uid);
    } else if (strcmp(spec_node_name(pod), node) != 0) {
        rc = forbidden(request, err,
                       "node requested token bound to a pod scheduled on a different node");
    }
    json_decref(pod);
    return rc;
}

static enum kp_result admit_named_self(const char *node, const struct kp_admission_request *request,
                                       const char *what, struct kp_error *err)
{
    /* On create the request carries the name being created; upstream reads the object's. */
    const char *name = or_empty(request->name);
    if (operation_is(request, "CREATE")) {
        if (!json_is_object(request->object)) {
            return unexpected_type(request, err);
        }
        name = object_name(request->object);
    }
    if (strcmp(name, node) != 0) {
        return forbidden(request, err,
                         "can only access %s with the same name as the requesting node", what);
    }
    return KP_OK;
}

enum kp_result kp_node_admit(const struct kp_admission_request *request, struct kp_error *err)
{
    if (request == NULL) {
        return KP_OK;
    }
    const char *node = kp_node_identity(request->user);
    if (node == NULL) {
        return KP_OK; /* only nodes are restricted */
    }
    /* The plugin handles CREATE, UPDATE and DELETE only (not CONNECT). */
    if (!operation_is(request, "CREATE") && !operation_is(request, "UPDATE") &&
        !operation_is(request, "DELETE")) {
        return KP_OK;
    }
    char q[300];
    if (node[0] == '\0') {
        return forbidden(request, err, "could not determine node from user %s",
                         quote(q, sizeof(q), request->user->name));
    }
    const char *group = or_empty(request->api_group);
    const char *resource = or_empty(request->resource);
    const char *subresource = or_empty(request->subresource);
    if (group[0] == '\0' && strcmp(resource, "pods") == 0) {
        if (subresource[0] == '\0') {
            return admit_pod(node, request, err);
        }
        if (strcmp(subresource, "status") == 0) {
            return admit_pod_status(node, request, err);
        }
        if (strcmp(subresource, "eviction") == 0) {
            return admit_pod_eviction(node, request, err);
        }
        return forbidden(request, err,
                         "unexpected pod subresource %s, only 'status' and 'eviction' are allowed",
                         quote(q, sizeof(q), subresource));
    }
    if (group[0] == '\0' && strcmp(resource, "nodes") == 0) {
        return admit_node(node, request, err);
    }
    if (group[0] == '\0' && strcmp(resource, "persistentvolumeclaims") == 0) {
        if (strcmp(subresource, "status") == 0) {
            return admit_pvc_status(node, request, err);
        }
        return forbidden(request, err, "may only update PVC status");
    }
    if (group[0] == '\0' && strcmp(resource, "serviceaccounts") == 0) {
        return admit_service_account(node, request, err);
    }
    if (strcmp(group, "coordination.k8s.io") == 0 && strcmp(resource, "leases") == 0) {
        if (strcmp(or_empty(request->namespace_), NODE_LEASE_NAMESPACE) != 0) {
            return forbidden(request, err, "can only access leases in the \"%s\" system namespace",
                             NODE_LEASE_NAMESPACE);
        }
        return admit_named_self(node, request, "node lease", err);
    }
    if (strcmp(group, "storage.k8s.io") == 0 && strcmp(resource, "csinodes") == 0) {
        return admit_named_self(node, request, "CSINode", err);
    }
    return KP_OK;
}
