/*
 * The RBAC snapshot (auth/rbac.h): kp_rbac_build turning the four kinds' JSON objects into
 * compiled roles and bindings, the subject index they are found through, the computation of
 * kube-controller-manager's clusterrole-aggregation controller, and the snapshot's lifetime
 * (kp_rbac_ref, kp_rbac_unref).
 *
 * A module of its own, apart from the authorizer in rbac.c: it runs once per change of the RBAC
 * objects rather than on every request, and has its own concerns (checking and skipping
 * malformed objects, resolving roleRefs, aggregation's fixed point, owning and freeing what it
 * built). Once built, a snapshot is only read: rbac.c and rbac_escalation.c read it through
 * rbac_internal.h (struct kp_rbac, kp_rbac_index_find, kp_rbac_find_role).
 *
 * Implementation notes
 *  1. kp_rbac_build deep-copies the four input arrays; every pointer in the snapshot (names,
 *     rule arrays) points into those copies, so nothing the caller does later can change a
 *     snapshot, and a snapshot is read-only after it is built (hence thread-safe).
 *  2. Each well-formed object becomes a struct role or struct binding; a malformed one (wrong
 *     JSON types, missing name or roleRef) is skipped with a warning. A binding keeps a pointer
 *     to the role it references, resolved once; NULL means "missing", which grants nothing and
 *     yields upstream's `clusterrole.rbac.authorization.k8s.io "x" not found` reason.
 *  3. Bindings are indexed by subject: the key is (kind, namespace, name) with kind 'U' for a
 *     user name and 'G' for a group, namespace "" for ClusterRoleBindings and the binding's
 *     namespace for RoleBindings. A ServiceAccount subject is indexed as the user
 *     "system:serviceaccount:<ns>:<name>" (serviceaccount.MatchesUsername is exactly that
 *     comparison). A request looks up its user name and each group: a handful of hash probes,
 *     whatever the number of bindings.
 *  4. Aggregated ClusterRoles: the controller replaces an aggregated role's rules by the union
 *     (first occurrence kept, semantic equality) of the rules of every ClusterRole matching any
 *     of its selectors, by selector then by name, itself excluded. Aggregated roles feed each
 *     other (view -> edit -> admin), so the computation starts from empty rule lists and repeats
 *     until nothing changes: the least fixed point, the state the controller converges to.
 */
#include "auth/rbac.h"
#include "auth/rbac_internal.h"

#include "core/log.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

static bool lists_equal(const json_t *a, const json_t *b)
{
    size_t count = list_size(a);
    if (count != list_size(b)) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(list_item(a, i), list_item(b, i)) != 0) {
            return false;
        }
    }
    return true;
}

/* equality.Semantic.DeepEqual on two PolicyRules: a missing list equals an empty one. */
static bool rules_equal(const struct rule *a, const struct rule *b)
{
    return lists_equal(a->verbs, b->verbs) && lists_equal(a->api_groups, b->api_groups) &&
           lists_equal(a->resources, b->resources) &&
           lists_equal(a->resource_names, b->resource_names) && lists_equal(a->urls, b->urls);
}

/* ---- the subject index ---- */

static uint64_t key_hash(char kind, const char *ns, const char *name)
{
    /* FNV-1a over kind, ns, a separator and name. */
    uint64_t hash = 14695981039346656037ULL;
    hash = (hash ^ (unsigned char)kind) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)ns; *p != '\0'; p++) {
        hash = (hash ^ *p) * 1099511628211ULL;
    }
    hash = (hash ^ 0xffu) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        hash = (hash ^ *p) * 1099511628211ULL;
    }
    return hash;
}

const struct index_entry *kp_rbac_index_find(const struct index *index, char kind, const char *ns,
                                             const char *name)
{
    if (index->capacity == 0) {
        return NULL;
    }
    uint64_t hash = key_hash(kind, ns, name);
    size_t mask = index->capacity - 1;
    for (size_t slot = (size_t)hash & mask;; slot = (slot + 1) & mask) {
        const struct index_entry *entry = &index->slots[slot];
        if (!entry->used) {
            return NULL;
        }
        if (entry->hash == hash && entry->kind == kind && strcmp(entry->ns, ns) == 0 &&
            strcmp(entry->name, name) == 0) {
            return entry;
        }
    }
}

static bool index_grow(struct index *index)
{
    size_t capacity = index->capacity == 0 ? 64 : index->capacity * 2;
    struct index_entry *slots = calloc(capacity, sizeof(*slots));
    if (slots == NULL) {
        return false;
    }
    for (size_t i = 0; i < index->capacity; i++) {
        struct index_entry *old = &index->slots[i];
        if (!old->used) {
            continue;
        }
        size_t slot = (size_t)old->hash & (capacity - 1);
        while (slots[slot].used) {
            slot = (slot + 1) & (capacity - 1);
        }
        slots[slot] = *old;
    }
    free(index->slots);
    index->slots = slots;
    index->capacity = capacity;
    return true;
}

static bool index_add(struct index *index, char kind, const char *ns, const char *name,
                      struct ref ref)
{
    if ((index->used + 1) * 2 > index->capacity && !index_grow(index)) {
        return false;
    }
    uint64_t hash = key_hash(kind, ns, name);
    size_t mask = index->capacity - 1;
    size_t slot = (size_t)hash & mask;
    struct index_entry *entry = &index->slots[slot];
    while (entry->used && !(entry->hash == hash && entry->kind == kind &&
                            strcmp(entry->ns, ns) == 0 && strcmp(entry->name, name) == 0)) {
        slot = (slot + 1) & mask;
        entry = &index->slots[slot];
    }
    if (!entry->used) {
        entry->used = true;
        entry->hash = hash;
        entry->kind = kind;
        entry->ns = ns;
        entry->name = name;
        index->used++;
    }
    if (entry->count == entry->capacity) {
        size_t capacity = entry->capacity == 0 ? 2 : entry->capacity * 2;
        struct ref *grown = realloc(entry->refs, capacity * sizeof(*grown));
        if (grown == NULL) {
            return false;
        }
        entry->refs = grown;
        entry->capacity = capacity;
    }
    entry->refs[entry->count++] = ref;
    return true;
}

static void index_wipe(struct index *index)
{
    for (size_t i = 0; i < index->capacity; i++) {
        free(index->slots[i].refs);
    }
    free(index->slots);
    memset(index, 0, sizeof(*index));
}

/* ---- building ---- */

static void role_wipe(struct role *role)
{
    free(role->own_rules);
    free(role->rules);
    for (size_t i = 0; i < role->selector_count; i++) {
        kp_selector_wipe(&role->selectors[i]);
    }
    free(role->selectors);
    memset(role, 0, sizeof(*role));
}

/* Parses one Role or ClusterRole. false (with *why set) if malformed; *oom on memory failure. */
static bool parse_role(const json_t *object, bool cluster, struct role *role, const char **why,
                       bool *oom)
{
    memset(role, 0, sizeof(*role));
    const json_t *metadata = json_object_get(object, "metadata");
    const char *name = object_string(metadata, "name");
    if (!json_is_object(object) || name == NULL || name[0] == '\0') {
        *why = "no metadata.name";
        return false;
    }
    role->name = name;
    role->namespace_ = "";
    if (!cluster) {
        role->namespace_ = object_string(metadata, "namespace");
        if (role->namespace_ == NULL || role->namespace_[0] == '\0') {
            *why = "no metadata.namespace";
            return false;
        }
    }
    role->labels = json_object_get(metadata, "labels");
    if (role->labels != NULL && !json_is_object(role->labels) && !json_is_null(role->labels)) {
        *why = "metadata.labels is not an object";
        return false;
    }
    const json_t *rules = json_object_get(object, "rules");
    if (rules != NULL && !json_is_null(rules) && !json_is_array(rules)) {
        *why = "rules is not an array";
        return false;
    }
    size_t count = json_is_array(rules) ? json_array_size(rules) : 0;
    if (count > 0) {
        role->own_rules = calloc(count, sizeof(*role->own_rules));
        role->rules = calloc(count, sizeof(*role->rules));
        if (role->own_rules == NULL || role->rules == NULL) {
            *oom = true;
            role_wipe(role);
            return false;
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (!kp_rbac_compile_rule(json_array_get(rules, i), &role->own_rules[i])) {
            *why = "a rule is not an object of string arrays";
            role_wipe(role);
            return false;
        }
        role->rules[i] = &role->own_rules[i];
    }
    role->own_count = count;
    role->rule_count = count;

    const json_t *aggregation = cluster ? json_object_get(object, "aggregationRule") : NULL;
    if (aggregation == NULL || json_is_null(aggregation)) {
        return true;
    }
    const json_t *selectors = json_object_get(aggregation, "clusterRoleSelectors");
    if (!json_is_object(aggregation) ||
        (selectors != NULL && !json_is_null(selectors) && !json_is_array(selectors))) {
        *why = "aggregationRule.clusterRoleSelectors is not an array";
        role_wipe(role);
        return false;
    }
    role->aggregated = true;
    size_t selector_count = json_is_array(selectors) ? json_array_size(selectors) : 0;
    if (selector_count > 0) {
        role->selectors = calloc(selector_count, sizeof(*role->selectors));
        if (role->selectors == NULL) {
            *oom = true;
            role_wipe(role);
            return false;
        }
    }
    for (size_t i = 0; i < selector_count; i++) {
        struct kp_error err;
        if (kp_label_selector_from_json(json_array_get(selectors, i), &role->selectors[i], &err) !=
            KP_OK) {
            *why = "aggregationRule has a bad label selector";
            role_wipe(role);
            return false;
        }
        role->selector_count = i + 1;
    }
    return true;
}

/* Parses one RoleBinding or ClusterRoleBinding (role not yet resolved). */
static bool parse_binding(const json_t *object, bool cluster, struct binding *binding,
                          const char **why, bool *oom)
{
    memset(binding, 0, sizeof(*binding));
    binding->cluster = cluster;
    const json_t *metadata = json_object_get(object, "metadata");
    binding->name = object_string(metadata, "name");
    if (!json_is_object(object) || binding->name == NULL || binding->name[0] == '\0') {
        *why = "no metadata.name";
        return false;
    }
    binding->namespace_ = "";
    if (!cluster) {
        binding->namespace_ = object_string(metadata, "namespace");
        if (binding->namespace_ == NULL || binding->namespace_[0] == '\0') {
            *why = "no metadata.namespace";
            return false;
        }
    }
    const json_t *role_ref = json_object_get(object, "roleRef");
    binding->role_kind = object_string(role_ref, "kind");
    binding->role_name = object_string(role_ref, "name");
    const char *role_group = object_string(role_ref, "apiGroup");
    if (binding->role_kind == NULL || binding->role_name == NULL || binding->role_name[0] == '\0' ||
        role_group == NULL || strcmp(role_group, RBAC_GROUP) != 0) {
        *why = "roleRef needs apiGroup rbac.authorization.k8s.io, kind and name";
        return false;
    }
    const json_t *subjects = json_object_get(object, "subjects");
    if (subjects != NULL && !json_is_null(subjects) && !json_is_array(subjects)) {
        *why = "subjects is not an array";
        return false;
    }
    size_t count = json_is_array(subjects) ? json_array_size(subjects) : 0;
    if (count == 0) {
        return true;
    }
    binding->subjects = calloc(count, sizeof(*binding->subjects));
    if (binding->subjects == NULL) {
        *oom = true;
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        const json_t *subject = json_array_get(subjects, i);
        struct subject *out = &binding->subjects[i];
        out->kind = object_string(subject, "kind");
        out->name = object_string(subject, "name");
        out->namespace_ = object_string(subject, "namespace");
        const json_t *ns = json_object_get(subject, "namespace");
        if (out->kind == NULL || out->name == NULL ||
            (ns != NULL && !json_is_string(ns) && !json_is_null(ns))) {
            *why = "a subject lacks kind or name";
            free(binding->subjects);
            binding->subjects = NULL;
            return false;
        }
        if (out->namespace_ == NULL) {
            out->namespace_ = "";
        }
    }
    binding->subject_count = count;
    return true;
}

const struct role *kp_rbac_find_role(const struct kp_rbac *rbac, bool cluster, const char *ns,
                                     const char *name)
{
    const struct index_entry *entry =
        kp_rbac_index_find(&rbac->role_index, cluster ? 'C' : 'R', cluster ? "" : ns, name);
    if (entry == NULL) {
        return NULL;
    }
    return cluster ? &rbac->cluster_roles[entry->refs[0].item] : &rbac->roles[entry->refs[0].item];
}

static bool rule_in(const struct rule *const *rules, size_t count, const struct rule *rule)
{
    for (size_t i = 0; i < count; i++) {
        if (rules_equal(rules[i], rule)) {
            return true;
        }
    }
    return false;
}

static int compare_role_names(const void *a, const void *b, void *context)
{
    const struct role *roles = context;
    return strcmp(roles[*(const size_t *)a].name, roles[*(const size_t *)b].name);
}

/* The clusterrole-aggregation controller's result (see the notes at the top). */
static enum kp_result aggregate_cluster_roles(struct kp_rbac *rbac, struct kp_error *err)
{
    size_t count = rbac->cluster_role_count;
    size_t aggregated = 0;
    for (size_t i = 0; i < count; i++) {
        if (rbac->cluster_roles[i].aggregated) {
            /* The stored rules are whatever the controller last wrote; recompute them. */
            rbac->cluster_roles[i].rule_count = 0;
            aggregated++;
        }
    }
    if (aggregated == 0) {
        return KP_OK;
    }
    size_t *by_name = malloc(count * sizeof(*by_name));
    if (by_name == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory aggregating cluster roles");
    }
    for (size_t i = 0; i < count; i++) {
        by_name[i] = i;
    }
    qsort_r(by_name, count, sizeof(*by_name), compare_role_names, rbac->cluster_roles);

    const struct rule **scratch = NULL;
    size_t scratch_capacity = 0;
    enum kp_result rc = KP_OK;
    bool changed = true;
    /* Each round that changes something adds at least one rule to some role, and the rules
     * are finite; the bound only guards against a bug. */
    for (size_t round = 0; changed && rc == KP_OK && round < count + 2; round++) {
        changed = false;
        for (size_t a = 0; a < count && rc == KP_OK; a++) {
            struct role *target = &rbac->cluster_roles[a];
            if (!target->aggregated) {
                continue;
            }
            size_t used = 0;
            for (size_t s = 0; s < target->selector_count && rc == KP_OK; s++) {
                for (size_t n = 0; n < count && rc == KP_OK; n++) {
                    const struct role *source = &rbac->cluster_roles[by_name[n]];
                    if (source == target ||
                        !kp_selector_matches_labels(&target->selectors[s], source->labels)) {
                        continue;
                    }
                    for (size_t r = 0; r < source->rule_count; r++) {
                        if (rule_in(scratch, used, source->rules[r])) {
                            continue;
                        }
                        if (used == scratch_capacity) {
                            size_t capacity = scratch_capacity == 0 ? 64 : scratch_capacity * 2;
                            const struct rule **grown = realloc(scratch, capacity * sizeof(*grown));
                            if (grown == NULL) {
                                rc = kp_error_set(err, KP_ERR_IO,
                                                  "out of memory aggregating cluster roles");
                                break;
                            }
                            scratch = grown;
                            scratch_capacity = capacity;
                        }
                        scratch[used++] = source->rules[r];
                    }
                }
            }
            if (rc != KP_OK) {
                break;
            }
            bool same = used == target->rule_count;
            for (size_t r = 0; same && r < used; r++) {
                same = rules_equal(scratch[r], target->rules[r]);
            }
            if (same) {
                continue;
            }
            const struct rule **rules = malloc((used > 0 ? used : 1) * sizeof(*rules));
            if (rules == NULL) {
                rc = kp_error_set(err, KP_ERR_IO, "out of memory aggregating cluster roles");
                break;
            }
            memcpy(rules, scratch, used * sizeof(*rules));
            free(target->rules);
            target->rules = rules;
            target->rule_count = used;
            changed = true;
        }
    }
    if (rc == KP_OK && changed) {
        kp_log_warn("rbac: cluster role aggregation did not settle; using the last round");
    }
    free(scratch);
    free(by_name);
    return rc;
}

static enum kp_result oom(struct kp_error *err)
{
    return kp_error_set(err, KP_ERR_IO, "out of memory building the RBAC snapshot");
}

/* Names the object by namespace/name when it has them, else by its position. */
static void warn_skipped(const char *kind, size_t position, const json_t *object, const char *why)
{
    const json_t *metadata = json_object_get(object, "metadata");
    const char *name = object_string(metadata, "name");
    const char *ns = object_string(metadata, "namespace");
    if (name != NULL && name[0] != '\0') {
        kp_log_warn("rbac: skipping %s '%s%s%s' (#%zu): %s", kind, ns != NULL ? ns : "",
                    ns != NULL ? "/" : "", name, position, why);
    } else {
        kp_log_warn("rbac: skipping %s #%zu: %s", kind, position, why);
    }
}

static enum kp_result add_roles(struct kp_rbac *rbac, const json_t *list, bool cluster,
                                size_t *skipped, struct kp_error *err)
{
    size_t count = json_array_size(list);
    if (count == 0) {
        return KP_OK;
    }
    struct role *roles = calloc(count, sizeof(*roles));
    if (roles == NULL) {
        return oom(err);
    }
    if (cluster) {
        rbac->cluster_roles = roles;
    } else {
        rbac->roles = roles;
    }
    size_t *used = cluster ? &rbac->cluster_role_count : &rbac->role_count;
    const char *kind = cluster ? "ClusterRole" : "Role";
    for (size_t i = 0; i < count; i++) {
        const char *why = NULL;
        bool out_of_memory = false;
        struct role *role = &roles[*used];
        if (!parse_role(json_array_get(list, i), cluster, role, &why, &out_of_memory)) {
            if (out_of_memory) {
                return oom(err);
            }
            warn_skipped(kind, i, json_array_get(list, i), why);
            (*skipped)++;
            continue;
        }
        if (kp_rbac_find_role(rbac, cluster, role->namespace_, role->name) != NULL) {
            kp_log_warn("rbac: skipping %s '%s%s%s': a second object of that name", kind,
                        role->namespace_, cluster ? "" : "/", role->name);
            role_wipe(role);
            (*skipped)++;
            continue;
        }
        struct ref ref = {.item = *used, .subject = 0};
        if (!index_add(&rbac->role_index, cluster ? 'C' : 'R', role->namespace_, role->name, ref)) {
            role_wipe(role);
            return oom(err);
        }
        (*used)++;
    }
    return KP_OK;
}

/* Indexes binding number `item` under each subject that can ever apply (see note 3). */
static enum kp_result index_binding(struct kp_rbac *rbac, size_t item, struct kp_error *err)
{
    const struct binding *binding = &rbac->bindings[item];
    struct index *index = binding->cluster ? &rbac->cluster_index : &rbac->local_index;
    for (size_t s = 0; s < binding->subject_count; s++) {
        const struct subject *subject = &binding->subjects[s];
        struct ref ref = {.item = item, .subject = s};
        bool ok = true;
        if (strcmp(subject->kind, "User") == 0) {
            ok = index_add(index, 'U', binding->namespace_, subject->name, ref);
        } else if (strcmp(subject->kind, "Group") == 0) {
            ok = index_add(index, 'G', binding->namespace_, subject->name, ref);
        } else if (strcmp(subject->kind, "ServiceAccount") == 0) {
            /* A RoleBinding's ServiceAccount subject without a namespace means the binding's
             * namespace; a ClusterRoleBinding's never applies (appliesToUser). */
            const char *sa_namespace =
                subject->namespace_[0] != '\0' ? subject->namespace_ : binding->namespace_;
            if (sa_namespace[0] == '\0') {
                continue;
            }
            size_t len =
                strlen(KP_SA_USER_PREFIX) + strlen(sa_namespace) + 1 + strlen(subject->name) + 1;
            char *user = malloc(len);
            if (user == NULL) {
                return oom(err);
            }
            snprintf(user, len, "%s%s:%s", KP_SA_USER_PREFIX, sa_namespace, subject->name);
            struct kp_error add_err;
            enum kp_result rc = kp_strlist_add(&rbac->owned, user, &add_err);
            free(user);
            if (rc != KP_OK) {
                return oom(err);
            }
            ok = index_add(index, 'U', binding->namespace_,
                           rbac->owned.items[rbac->owned.count - 1], ref);
        }
        /* Any other kind never applies to a user. */
        if (!ok) {
            return oom(err);
        }
    }
    return KP_OK;
}

static enum kp_result add_bindings(struct kp_rbac *rbac, const json_t *list, bool cluster,
                                   size_t *skipped, struct kp_error *err)
{
    const char *kind = cluster ? "ClusterRoleBinding" : "RoleBinding";
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *why = NULL;
        bool out_of_memory = false;
        struct binding *binding = &rbac->bindings[rbac->binding_count];
        if (!parse_binding(json_array_get(list, i), cluster, binding, &why, &out_of_memory)) {
            if (out_of_memory) {
                return oom(err);
            }
            warn_skipped(kind, i, json_array_get(list, i), why);
            (*skipped)++;
            continue;
        }
        if (strcmp(binding->role_kind, "ClusterRole") == 0) {
            binding->role = kp_rbac_find_role(rbac, true, "", binding->role_name);
        } else if (strcmp(binding->role_kind, "Role") == 0) {
            /* A ClusterRoleBinding to a Role looks in namespace "", where there are none. */
            binding->role =
                cluster ? NULL
                        : kp_rbac_find_role(rbac, false, binding->namespace_, binding->role_name);
        }
        rbac->binding_count++;
        enum kp_result rc = index_binding(rbac, rbac->binding_count - 1, err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

static void rbac_free(struct kp_rbac *rbac)
{
    for (size_t i = 0; i < rbac->cluster_role_count; i++) {
        role_wipe(&rbac->cluster_roles[i]);
    }
    free(rbac->cluster_roles);
    for (size_t i = 0; i < rbac->role_count; i++) {
        role_wipe(&rbac->roles[i]);
    }
    free(rbac->roles);
    for (size_t i = 0; i < rbac->binding_count; i++) {
        free(rbac->bindings[i].subjects);
    }
    free(rbac->bindings);
    index_wipe(&rbac->role_index);
    index_wipe(&rbac->cluster_index);
    index_wipe(&rbac->local_index);
    kp_strlist_wipe(&rbac->owned);
    for (size_t i = 0; i < 4; i++) {
        json_decref(rbac->copies[i]);
    }
    free(rbac);
}

enum kp_result kp_rbac_build(const json_t *cluster_roles, const json_t *cluster_role_bindings,
                             const json_t *roles, const json_t *role_bindings,
                             struct kp_rbac **rbac_out, size_t *skipped, struct kp_error *err)
{
    *rbac_out = NULL;
    size_t skipped_count = 0;
    if (skipped != NULL) {
        *skipped = 0;
    }
    const json_t *inputs[4] = {cluster_roles, cluster_role_bindings, roles, role_bindings};
    static const char *const input_names[4] = {"cluster roles", "cluster role bindings", "roles",
                                               "role bindings"};
    for (size_t i = 0; i < 4; i++) {
        if (inputs[i] != NULL && !json_is_array(inputs[i])) {
            return kp_error_set(err, KP_ERR_INVALID, "RBAC %s: expected a JSON array",
                                input_names[i]);
        }
    }
    struct kp_rbac *rbac = calloc(1, sizeof(*rbac));
    if (rbac == NULL) {
        return oom(err);
    }
    atomic_init(&rbac->refs, 1);
    enum kp_result rc = KP_OK;
    for (size_t i = 0; i < 4; i++) {
        rbac->copies[i] = inputs[i] != NULL ? json_deep_copy(inputs[i]) : json_array();
        if (rbac->copies[i] == NULL) {
            rc = oom(err);
            goto cleanup;
        }
    }
    size_t binding_total = json_array_size(rbac->copies[1]) + json_array_size(rbac->copies[3]);
    if (binding_total > 0) {
        rbac->bindings = calloc(binding_total, sizeof(*rbac->bindings));
        if (rbac->bindings == NULL) {
            rc = oom(err);
            goto cleanup;
        }
    }
    rc = add_roles(rbac, rbac->copies[0], true, &skipped_count, err);
    if (rc == KP_OK) {
        rc = add_roles(rbac, rbac->copies[2], false, &skipped_count, err);
    }
    if (rc == KP_OK) {
        rc = aggregate_cluster_roles(rbac, err);
    }
    if (rc == KP_OK) {
        rc = add_bindings(rbac, rbac->copies[1], true, &skipped_count, err);
    }
    if (rc == KP_OK) {
        rc = add_bindings(rbac, rbac->copies[3], false, &skipped_count, err);
    }
cleanup:
    if (rc != KP_OK) {
        rbac_free(rbac);
        return rc;
    }
    if (skipped != NULL) {
        *skipped = skipped_count;
    }
    *rbac_out = rbac;
    return KP_OK;
}

struct kp_rbac *kp_rbac_ref(struct kp_rbac *rbac)
{
    if (rbac != NULL) {
        atomic_fetch_add_explicit(&rbac->refs, 1, memory_order_relaxed);
    }
    return rbac;
}

void kp_rbac_unref(struct kp_rbac *rbac)
{
    if (rbac == NULL) {
        return;
    }
    if (atomic_fetch_sub_explicit(&rbac->refs, 1, memory_order_acq_rel) == 1) {
        rbac_free(rbac);
    }
}
