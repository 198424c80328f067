/*
 * The RBAC authorizer (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac/rbac.go), its rule
 * resolver (pkg/registry/rbac/validation/rule.go), the matching helpers
 * (pkg/apis/rbac/v1/evaluation_helpers.go) and the computation of kube-controller-manager's
 * clusterrole-aggregation controller. Privilege-escalation prevention (kp_rbac_check_*) is in
 * rbac_escalation.c; what the two files share is in rbac_internal.h.
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
 *  4. Upstream walks every binding and takes each binding's first subject that applies; the
 *     candidates found through the index are sorted by (binding, subject) so the same binding
 *     and subject are reported. ClusterRoleBindings are visited before RoleBindings, each in
 *     input order (upstream's order is the informer cache's, i.e. unspecified).
 *  5. Aggregated ClusterRoles: the controller replaces an aggregated role's rules by the union
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

/* ---- compiled objects ---- */

struct ref {
    size_t item;    /* binding or role index */
    size_t subject; /* subject index within the binding */
};

struct index_entry {
    bool used;
    uint64_t hash;
    char kind;
    const char *ns;
    const char *name;
    struct ref *refs; /* owned */
    size_t count;
    size_t capacity;
};

/* Open addressing, linear probing, at most half full. Built once, then read-only. */
struct index {
    struct index_entry *slots;
    size_t capacity; /* a power of two, or 0 */
    size_t used;
};

struct kp_rbac {
    atomic_size_t refs;
    json_t *copies[4]; /* owned deep copies of the inputs */
    struct role *cluster_roles;
    size_t cluster_role_count;
    struct role *roles;
    size_t role_count;
    struct binding *bindings; /* ClusterRoleBindings first, then RoleBindings */
    size_t binding_count;
    struct index role_index;    /* 'C' (ns "") and 'R' (ns) -> role index */
    struct index cluster_index; /* subjects of ClusterRoleBindings */
    struct index local_index;   /* subjects of RoleBindings, by the binding's namespace */
    struct kp_strlist owned;    /* composed service-account user names */
};

/* ---- small helpers ---- */

/* True if value is absent, null, or an array of strings. */
static bool string_array_ok(const json_t *value)
{
    if (value == NULL || json_is_null(value)) {
        return true;
    }
    if (!json_is_array(value)) {
        return false;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(value, i, item) {
        if (!json_is_string(item)) {
            return false;
        }
    }
    return true;
}

static const json_t *array_member(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    return json_is_array(value) ? value : NULL;
}

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

/* Fills rule from a PolicyRule object; false if a member has the wrong type. */
bool kp_rbac_compile_rule(const json_t *object, struct rule *rule)
{
    memset(rule, 0, sizeof(*rule));
    if (!json_is_object(object)) {
        return false;
    }
    static const char *const keys[] = {"verbs", "apiGroups", "resources", "resourceNames",
                                       "nonResourceURLs"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!string_array_ok(json_object_get(object, keys[i]))) {
            return false;
        }
    }
    rule->verbs = array_member(object, "verbs");
    rule->api_groups = array_member(object, "apiGroups");
    rule->resources = array_member(object, "resources");
    rule->resource_names = array_member(object, "resourceNames");
    rule->urls = array_member(object, "nonResourceURLs");
    rule->object = object;
    return true;
}

/* ---- text building (messages) ---- */

static void text_append(struct text *text, const char *data, size_t len)
{
    if (text->failed) {
        return;
    }
    if (text->len + len + 1 > TEXT_MAX) {
        text->failed = true;
        return;
    }
    if (text->len + len + 1 > text->capacity) {
        size_t capacity = text->capacity == 0 ? 256 : text->capacity;
        while (capacity < text->len + len + 1) {
            capacity *= 2;
        }
        char *grown = realloc(text->data, capacity);
        if (grown == NULL) {
            text->failed = true;
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
    memcpy(text->data + text->len, data, len);
    text->len += len;
    text->data[text->len] = '\0';
}

void kp_rbac_text_puts(struct text *text, const char *data)
{
    text_append(text, data, strlen(data));
}

/* Go's %q (strconv.Quote) for the bytes that occur in Kubernetes names: the escapes Go uses
 * for ASCII; bytes of multi-byte UTF-8 are copied as they are. */
void kp_rbac_text_quote(struct text *text, const char *value)
{
    kp_rbac_text_puts(text, "\"");
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        char escaped[8];
        switch (*p) {
        case '"':
            kp_rbac_text_puts(text, "\\\"");
            break;
        case '\\':
            kp_rbac_text_puts(text, "\\\\");
            break;
        case '\a':
            kp_rbac_text_puts(text, "\\a");
            break;
        case '\b':
            kp_rbac_text_puts(text, "\\b");
            break;
        case '\f':
            kp_rbac_text_puts(text, "\\f");
            break;
        case '\n':
            kp_rbac_text_puts(text, "\\n");
            break;
        case '\r':
            kp_rbac_text_puts(text, "\\r");
            break;
        case '\t':
            kp_rbac_text_puts(text, "\\t");
            break;
        case '\v':
            kp_rbac_text_puts(text, "\\v");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(escaped, sizeof(escaped), "\\x%02x", *p);
                kp_rbac_text_puts(text, escaped);
            } else {
                text_append(text, (const char *)p, 1);
            }
        }
    }
    kp_rbac_text_puts(text, "\"");
}

void kp_rbac_text_wipe(struct text *text)
{
    free(text->data);
    memset(text, 0, sizeof(*text));
}

const char *kp_rbac_text_value(const struct text *text)
{
    if (text->data == NULL) {
        return "";
    }
    return text->data;
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

static const struct index_entry *index_find(const struct index *index, char kind, const char *ns,
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

/* ---- matching (evaluation_helpers.go) ---- */

static bool verb_matches(const struct rule *rule, const char *verb)
{
    size_t count = list_size(rule->verbs);
    for (size_t i = 0; i < count; i++) {
        const char *item = list_item(rule->verbs, i);
        if (strcmp(item, "*") == 0 || strcmp(item, verb) == 0) {
            return true;
        }
    }
    return false;
}

static bool api_group_matches(const struct rule *rule, const char *group)
{
    size_t count = list_size(rule->api_groups);
    for (size_t i = 0; i < count; i++) {
        const char *item = list_item(rule->api_groups, i);
        if (strcmp(item, "*") == 0 || strcmp(item, group) == 0) {
            return true;
        }
    }
    return false;
}

/* ResourceMatches with combined = resource[/subresource], compared without building it. */
static bool resource_matches(const struct rule *rule, const char *resource, const char *subresource)
{
    size_t resource_len = strlen(resource);
    size_t subresource_len = strlen(subresource);
    size_t count = list_size(rule->resources);
    for (size_t i = 0; i < count; i++) {
        const char *item = list_item(rule->resources, i);
        if (strcmp(item, "*") == 0) {
            return true;
        }
        if (subresource_len == 0) {
            if (strcmp(item, resource) == 0) {
                return true;
            }
            continue;
        }
        if (strncmp(item, resource, resource_len) == 0 && item[resource_len] == '/' &&
            strcmp(item + resource_len + 1, subresource) == 0) {
            return true;
        }
        /* "*\/scale" grants the scale subresource of every resource. */
        if (item[0] == '*' && item[1] == '/' && strcmp(item + 2, subresource) == 0) {
            return true;
        }
    }
    return false;
}

static bool resource_name_matches(const struct rule *rule, const char *name)
{
    size_t count = list_size(rule->resource_names);
    if (count == 0) {
        return true;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(list_item(rule->resource_names, i), name) == 0) {
            return true;
        }
    }
    return false;
}

/* NonResourceURLMatches and nonResourceURLCovers: exact, "*", or a prefix ending in '*'
 * (strings.TrimRight removes every trailing '*'). */
bool kp_rbac_url_covers(const char *pattern, const char *path)
{
    if (strcmp(pattern, "*") == 0 || strcmp(pattern, path) == 0) {
        return true;
    }
    size_t len = strlen(pattern);
    if (len == 0 || pattern[len - 1] != '*') {
        return false;
    }
    while (len > 0 && pattern[len - 1] == '*') {
        len--;
    }
    return strncmp(path, pattern, len) == 0;
}

static bool url_matches(const struct rule *rule, const char *path)
{
    size_t count = list_size(rule->urls);
    for (size_t i = 0; i < count; i++) {
        if (kp_rbac_url_covers(list_item(rule->urls, i), path)) {
            return true;
        }
    }
    return false;
}

static bool rule_allows(const struct rule *rule, const struct kp_authz_attrs *attrs)
{
    const char *verb = str_or_empty(attrs->verb);
    if (attrs->resource_request) {
        return verb_matches(rule, verb) &&
               api_group_matches(rule, str_or_empty(attrs->api_group)) &&
               resource_matches(rule, str_or_empty(attrs->resource),
                                str_or_empty(attrs->subresource)) &&
               resource_name_matches(rule, str_or_empty(attrs->name));
    }
    return verb_matches(rule, verb) && url_matches(rule, str_or_empty(attrs->path));
}

bool kp_rbac_rule_allows(const json_t *rule, const struct kp_authz_attrs *attrs)
{
    struct rule compiled;
    if (attrs == NULL || !kp_rbac_compile_rule(rule, &compiled)) {
        return false;
    }
    return rule_allows(&compiled, attrs);
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
        index_find(&rbac->role_index, cluster ? 'C' : 'R', cluster ? "" : ns, name);
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

/* ---- visiting the rules that apply to a user (VisitRulesFor) ---- */

struct candidates {
    struct ref *items;
    size_t count;
    size_t capacity;
    struct ref inline_items[64];
};

static bool candidates_add(struct candidates *list, const struct index_entry *entry)
{
    if (entry == NULL) {
        return true;
    }
    if (list->count + entry->count > list->capacity) {
        size_t capacity = list->capacity * 2;
        while (capacity < list->count + entry->count) {
            capacity *= 2;
        }
        struct ref *grown = malloc(capacity * sizeof(*grown));
        if (grown == NULL) {
            return false;
        }
        memcpy(grown, list->items, list->count * sizeof(*grown));
        if (list->items != list->inline_items) {
            free(list->items);
        }
        list->items = grown;
        list->capacity = capacity;
    }
    memcpy(list->items + list->count, entry->refs, entry->count * sizeof(*entry->refs));
    list->count += entry->count;
    return true;
}

static int compare_refs(const void *a, const void *b)
{
    const struct ref *left = a;
    const struct ref *right = b;
    if (left->item != right->item) {
        return left->item < right->item ? -1 : 1;
    }
    if (left->subject != right->subject) {
        return left->subject < right->subject ? -1 : 1;
    }
    return 0;
}

static void note_error(struct resolution_errors *errors, const struct binding *binding)
{
    if (errors->count < ERRORS_MAX) {
        errors->items[errors->count++] = binding;
    }
}

static bool visit_index(const struct kp_rbac *rbac, const struct index *index, const char *ns,
                        const struct kp_user *user, rule_visitor visit, void *context,
                        struct resolution_errors *errors)
{
    struct candidates list = {.capacity = 64};
    list.items = list.inline_items;
    bool ok = candidates_add(&list, index_find(index, 'U', ns, str_or_empty(user->name)));
    for (size_t g = 0; ok && g < user->groups.count; g++) {
        ok = candidates_add(&list, index_find(index, 'G', ns, user->groups.items[g]));
    }
    if (!ok) {
        errors->incomplete = true;
    }
    qsort(list.items, list.count, sizeof(*list.items), compare_refs);
    bool go_on = true;
    for (size_t i = 0; go_on && i < list.count; i++) {
        if (i > 0 && list.items[i].item == list.items[i - 1].item) {
            continue; /* only the binding's first applicable subject is reported */
        }
        const struct binding *binding = &rbac->bindings[list.items[i].item];
        const struct subject *subject = &binding->subjects[list.items[i].subject];
        if (binding->role == NULL) {
            note_error(errors, binding);
            continue;
        }
        for (size_t r = 0; go_on && r < binding->role->rule_count; r++) {
            go_on = visit(context, binding, subject, binding->role->rules[r]);
        }
    }
    if (list.items != list.inline_items) {
        free(list.items);
    }
    return go_on;
}

void kp_rbac_visit_rules_for(const struct kp_rbac *rbac, const struct kp_user *user, const char *ns,
                             rule_visitor visit, void *context, struct resolution_errors *errors)
{
    memset(errors, 0, sizeof(*errors));
    if (rbac == NULL || user == NULL) {
        return;
    }
    if (!visit_index(rbac, &rbac->cluster_index, "", user, visit, context, errors)) {
        return;
    }
    if (ns != NULL && ns[0] != '\0') {
        visit_index(rbac, &rbac->local_index, ns, user, visit, context, errors);
    }
}

void kp_rbac_describe_error(struct text *text, const struct binding *binding)
{
    if (strcmp(binding->role_kind, "ClusterRole") == 0) {
        kp_rbac_text_puts(text, "clusterrole.rbac.authorization.k8s.io ");
    } else if (strcmp(binding->role_kind, "Role") == 0) {
        kp_rbac_text_puts(text, "role.rbac.authorization.k8s.io ");
    } else {
        kp_rbac_text_puts(text, "unsupported role reference kind: ");
        kp_rbac_text_quote(text, binding->role_kind);
        return;
    }
    kp_rbac_text_quote(text, binding->role_name);
    kp_rbac_text_puts(text, " not found");
}

/* utilerrors.NewAggregate(errors).Error(): one message as is; several deduplicated, joined by
 * ", " within brackets. */
void kp_rbac_describe_errors(struct text *text, const struct resolution_errors *errors)
{
    struct text messages[ERRORS_MAX];
    size_t distinct = 0;
    for (size_t i = 0; i < errors->count; i++) {
        struct text message = {0};
        kp_rbac_describe_error(&message, errors->items[i]);
        bool seen = false;
        for (size_t j = 0; j < distinct && !seen; j++) {
            seen = strcmp(kp_rbac_text_value(&messages[j]), kp_rbac_text_value(&message)) == 0;
        }
        if (seen) {
            kp_rbac_text_wipe(&message);
        } else {
            messages[distinct++] = message;
        }
    }
    if (distinct > 1) {
        kp_rbac_text_puts(text, "[");
    }
    for (size_t j = 0; j < distinct; j++) {
        if (j > 0) {
            kp_rbac_text_puts(text, ", ");
        }
        kp_rbac_text_puts(text, kp_rbac_text_value(&messages[j]));
        kp_rbac_text_wipe(&messages[j]);
    }
    if (distinct > 1) {
        kp_rbac_text_puts(text, "]");
    }
}

/* describeSubject and the binding describers of rule.go. */
static void describe_source(struct text *text, const struct binding *binding,
                            const struct subject *subject)
{
    kp_rbac_text_puts(text, binding->cluster ? "ClusterRoleBinding " : "RoleBinding ");
    if (binding->cluster) {
        kp_rbac_text_quote(text, binding->name);
    } else {
        struct text name = {0};
        kp_rbac_text_puts(&name, binding->name);
        kp_rbac_text_puts(&name, "/");
        kp_rbac_text_puts(&name, binding->namespace_);
        kp_rbac_text_quote(text, kp_rbac_text_value(&name));
        kp_rbac_text_wipe(&name);
    }
    kp_rbac_text_puts(text, " of ");
    kp_rbac_text_puts(text, binding->role_kind);
    kp_rbac_text_puts(text, " ");
    kp_rbac_text_quote(text, binding->role_name);
    kp_rbac_text_puts(text, " to ");
    kp_rbac_text_puts(text, subject->kind);
    kp_rbac_text_puts(text, " ");
    if (strcmp(subject->kind, "ServiceAccount") == 0) {
        struct text name = {0};
        kp_rbac_text_puts(&name, subject->name);
        kp_rbac_text_puts(&name, "/");
        kp_rbac_text_puts(&name, subject->namespace_[0] != '\0' ? subject->namespace_
                                                                : binding->namespace_);
        kp_rbac_text_quote(text, kp_rbac_text_value(&name));
        kp_rbac_text_wipe(&name);
    } else {
        kp_rbac_text_quote(text, subject->name);
    }
}

/* ---- the authorizer ---- */

struct authorize_context {
    const struct kp_authz_attrs *attrs;
    const struct binding *binding;
    const struct subject *subject;
};

static bool authorize_visit(void *context, const struct binding *binding,
                            const struct subject *subject, const struct rule *rule)
{
    struct authorize_context *state = context;
    if (!rule_allows(rule, state->attrs)) {
        return true;
    }
    state->binding = binding;
    state->subject = subject;
    return false;
}

static void copy_reason(struct kp_authz_decision *decision, const struct text *text)
{
    snprintf(decision->reason, sizeof(decision->reason), "%s", kp_rbac_text_value(text));
}

void kp_rbac_authorize(const struct kp_rbac *rbac, const struct kp_authz_attrs *attrs,
                       struct kp_authz_decision *decision)
{
    decision->verdict = KP_AUTHZ_NO_OPINION;
    decision->reason[0] = '\0';
    if (rbac == NULL || attrs == NULL || attrs->user == NULL) {
        return;
    }
    struct authorize_context state = {.attrs = attrs};
    struct resolution_errors errors;
    kp_rbac_visit_rules_for(rbac, attrs->user, attrs->namespace_, authorize_visit, &state, &errors);
    struct text text = {0};
    if (state.binding != NULL) {
        decision->verdict = KP_AUTHZ_ALLOW;
        kp_rbac_text_puts(&text, "RBAC: allowed by ");
        describe_source(&text, state.binding, state.subject);
    } else if (errors.count > 0) {
        kp_rbac_text_puts(&text, "RBAC: ");
        kp_rbac_describe_errors(&text, &errors);
    }
    copy_reason(decision, &text);
    kp_rbac_text_wipe(&text);
}

/* ---- rules for a user (RulesFor, SelfSubjectRulesReview) ---- */

bool kp_rbac_collect_visit(void *context, const struct binding *binding,
                           const struct subject *subject, const struct rule *rule)
{
    (void)binding;
    (void)subject;
    struct rule_list *list = context;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 32 : list->capacity * 2;
        const struct rule **grown = realloc(list->items, capacity * sizeof(*grown));
        if (grown == NULL) {
            list->failed = true;
            return false;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = rule;
    return true;
}

static json_t *copy_list(const json_t *list)
{
    return list != NULL ? json_deep_copy(list) : json_array();
}

json_t *kp_rbac_rules_for(const struct kp_rbac *rbac, const struct kp_user *user, const char *ns)
{
    struct rule_list rules = {0};
    struct resolution_errors errors;
    kp_rbac_visit_rules_for(rbac, user, ns, kp_rbac_collect_visit, &rules, &errors);
    json_t *resource_rules = json_array();
    json_t *non_resource_rules = json_array();
    json_t *status = json_object();
    bool ok = resource_rules != NULL && non_resource_rules != NULL && status != NULL &&
              !rules.failed && !errors.incomplete;
    /* DefaultResourceRuleInfo / DefaultNonResourceRuleInfo; apiGroups, resources and
     * resourceNames are omitempty in the v1 types, verbs is not. */
    for (size_t i = 0; ok && i < rules.count; i++) {
        const struct rule *rule = rules.items[i];
        if (list_size(rule->resources) > 0) {
            json_t *entry = json_object();
            ok = entry != NULL && json_array_append_new(resource_rules, entry) == 0 &&
                 json_object_set_new(entry, "verbs", copy_list(rule->verbs)) == 0;
            if (ok && list_size(rule->api_groups) > 0) {
                ok = json_object_set_new(entry, "apiGroups", copy_list(rule->api_groups)) == 0;
            }
            if (ok) {
                ok = json_object_set_new(entry, "resources", copy_list(rule->resources)) == 0;
            }
            if (ok && list_size(rule->resource_names) > 0) {
                ok = json_object_set_new(entry, "resourceNames", copy_list(rule->resource_names)) ==
                     0;
            }
        }
        if (ok && list_size(rule->urls) > 0) {
            json_t *entry = json_object();
            ok = entry != NULL && json_array_append_new(non_resource_rules, entry) == 0 &&
                 json_object_set_new(entry, "verbs", copy_list(rule->verbs)) == 0 &&
                 json_object_set_new(entry, "nonResourceURLs", copy_list(rule->urls)) == 0;
        }
    }
    free(rules.items);
    if (ok) {
        ok = json_object_set(status, "resourceRules", resource_rules) == 0 &&
             json_object_set(status, "nonResourceRules", non_resource_rules) == 0 &&
             json_object_set_new(status, "incomplete", json_false()) == 0;
    }
    if (ok && errors.count > 0) {
        struct text text = {0};
        kp_rbac_describe_errors(&text, &errors);
        ok = !text.failed && json_object_set_new(status, "evaluationError",
                                                 json_string(kp_rbac_text_value(&text))) == 0;
        kp_rbac_text_wipe(&text);
    }
    json_decref(resource_rules);
    json_decref(non_resource_rules);
    if (!ok) {
        json_decref(status);
        return NULL;
    }
    return status;
}
