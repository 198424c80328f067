/*
 * The Node authorizer's graph (k8s.io/kubernetes plugin/pkg/auth/authorizer/node/graph.go), as
 * of Kubernetes 1.31: which objects each node's pods reference, fed by the API server from the
 * store's pod events (kp_node_graph_put_pod, kp_node_graph_delete_pod) and asked by the
 * authorizer (kp_node_graph_related). Kept apart from the authorizer's rules (node.c) and from
 * NodeRestriction (node_admit.c): it is a data structure with its own lock and memory
 * handling, and what a pod references (below) serves admission as well.
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
 */
#include "auth/node.h"
#include "auth/node_internal.h"

#include "auth/rbac.h"
#include "core/log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const json_t *kp_node_graph_get0_rules(const struct kp_node_graph *graph)
{
    return graph->node_rules;
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
        json_array_foreach(containers, c, container)
        {
            size_t i;
            const json_t *item;
            json_array_foreach(json_object_get(container, "envFrom"), i, item)
            {
                if (!visit_path(item, from_ref, "name", visit, context)) {
                    return false;
                }
            }
            json_array_foreach(json_object_get(container, "env"), i, item)
            {
                if (!visit_path(json_object_get(item, "valueFrom"), key_ref, "name", visit,
                                context)) {
                    return false;
                }
            }
        }
    }
    return true;
}

/* The names a volume's projected sources give for one kind ("secret", "configMap"). */
static bool visit_projected(const json_t *volume, const char *kind, name_visitor visit,
                            void *context)
{
    size_t i;
    const json_t *source;
    json_array_foreach(json_object_get(json_object_get(volume, "projected"), "sources"), i, source)
    {
        if (!visit_path(source, kind, "name", visit, context)) {
            return false;
        }
    }
    return true;
}

bool kp_node_visit_pod_secret_names(const json_t *pod, name_visitor visit, void *context)
{
    const json_t *spec = json_object_get(pod, "spec");
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(spec, "imagePullSecrets"), i, item)
    {
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
    json_array_foreach(json_object_get(spec, "volumes"), i, item)
    {
        if (!visit_projected(item, "secret", visit, context)) {
            return false;
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

bool kp_node_visit_pod_configmap_names(const json_t *pod, name_visitor visit, void *context)
{
    const json_t *spec = json_object_get(pod, "spec");
    if (!visit_containers(spec, false, visit, context)) {
        return false;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(spec, "volumes"), i, item)
    {
        if (!visit_projected(item, "configMap", visit, context)) {
            return false;
        }
        if (!visit_path(item, "configMap", "name", visit, context)) {
            return false;
        }
    }
    return true;
}

const char *kp_node_pod_service_account(const json_t *pod)
{
    const json_t *spec = json_object_get(pod, "spec");
    const char *name = member_string(spec, "serviceAccountName");
    if (name == NULL || name[0] == '\0') {
        name = member_string(spec, "serviceAccount"); /* the deprecated alias */
    }
    return name != NULL ? name : "";
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
    collect_ref(&collect, kp_node_pod_service_account(pod));
    collect.resource = "secrets";
    kp_node_visit_pod_secret_names(pod, collect_ref, &collect);
    collect.resource = "configmaps";
    kp_node_visit_pod_configmap_names(pod, collect_ref, &collect);
    collect.resource = "persistentvolumeclaims";
    size_t i;
    const json_t *volume;
    json_array_foreach(json_object_get(json_object_get(pod, "spec"), "volumes"), i, volume)
    {
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
