/*
 * auth/rbac_internal.h - what the RBAC authorizer (rbac.c: rule matching, the rule resolver,
 * the authorizer, rules-for), the snapshot builder (rbac_snapshot.c: parsing, the subject
 * index, aggregation, reference counting) and the privilege-escalation checks
 * (rbac_escalation.c) share: the compiled rules, roles and bindings, the snapshot and its
 * index, the message builder, and the walk over the rules that apply to a user. Private to
 * those three files. A snapshot is read-only once kp_rbac_build has returned it.
 */
#ifndef KP_AUTH_RBAC_INTERNAL_H
#define KP_AUTH_RBAC_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/rbac.h"

#define RBAC_GROUP "rbac.authorization.k8s.io"
/* Messages built here (escalation lists can be long) stop growing past this; the error and
 * reason buffers they are copied into are smaller still. */
#define TEXT_MAX (64 * 1024)
/* At most this many distinct resolution errors are reported in one reason. */
#define ERRORS_MAX 16

/* ---- compiled objects ---- */

/* A PolicyRule. Each member is a JSON array of strings in the snapshot's copy, or NULL when
 * the rule leaves it out (which every check treats like an empty list). */
struct rule {
    const json_t *verbs;
    const json_t *api_groups;
    const json_t *resources;
    const json_t *resource_names;
    const json_t *urls;
    const json_t *object;
};

struct role {
    const char *name;
    const char *namespace_; /* "" for a ClusterRole */
    const json_t *labels;
    struct rule *own_rules; /* owned array: the object's own rules */
    size_t own_count;
    const struct rule **rules; /* owned array of borrowed pointers: the effective rules */
    size_t rule_count;
    struct kp_selector *selectors; /* owned; the aggregationRule's, when aggregated */
    size_t selector_count;
    bool aggregated;
};

struct subject {
    const char *kind;
    const char *name;
    const char *namespace_; /* "" when absent */
};

struct binding {
    bool cluster; /* a ClusterRoleBinding */
    const char *name;
    const char *namespace_; /* "" for a ClusterRoleBinding */
    const char *role_kind;
    const char *role_name;
    struct subject *subjects; /* owned */
    size_t subject_count;
    const struct role *role; /* NULL: missing (or an unsupported roleRef kind) */
};

/* ---- the snapshot (rbac_snapshot.c builds it; see its notes) ---- */

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

/* The entry for (kind, ns, name) in index (kind 'U' user, 'G' group, 'C' ClusterRole, 'R' Role),
 * borrowed from it; NULL when there is none. */
const struct index_entry *kp_rbac_index_find(const struct index *index, char kind, const char *ns,
                                             const char *name);

/* The Role (cluster false: in ns) or ClusterRole (cluster true) of that name in the snapshot,
 * borrowed from it; NULL when there is none. */
const struct role *kp_rbac_find_role(const struct kp_rbac *rbac, bool cluster, const char *ns,
                                     const char *name);

/* ---- small helpers ---- */

static inline const char *str_or_empty(const char *text)
{
    return text != NULL ? text : "";
}

static inline const char *object_string(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

static inline size_t list_size(const json_t *list)
{
    return list != NULL ? json_array_size(list) : 0;
}

static inline const char *list_item(const json_t *list, size_t i)
{
    return json_string_value(json_array_get(list, i));
}

/* Fills rule from a PolicyRule object; false if a member has the wrong type. The members point
 * into object (borrowed). */
bool kp_rbac_compile_rule(const json_t *object, struct rule *rule);

/* One nonResourceURLs pattern against a path: exact, "*", or a prefix ending in '*'. */
bool kp_rbac_url_covers(const char *pattern, const char *path);

/* ---- text building (messages) ---- */

struct text {
    char *data;
    size_t len;
    size_t capacity;
    bool failed; /* out of memory or over TEXT_MAX: later appends do nothing */
};

/* Append data as it is, or value as Go's %q quotes it (strconv.Quote, for the bytes of
 * Kubernetes names). Once an append fails (out of memory, over TEXT_MAX), failed is set and
 * later appends do nothing. */
void kp_rbac_text_puts(struct text *text, const char *data);
void kp_rbac_text_quote(struct text *text, const char *value);
void kp_rbac_text_wipe(struct text *text);
/* The text so far, "" when empty; borrowed until the next append or kp_rbac_text_wipe. */
const char *kp_rbac_text_value(const struct text *text);

/* ---- visiting the rules that apply to a user (VisitRulesFor) ---- */

/* The resolution errors of one walk (missing roles). */
struct resolution_errors {
    const struct binding *items[ERRORS_MAX];
    size_t count;
    bool incomplete; /* out of memory: some bindings could not be visited */
};

/* Called for each rule that applies; return false to stop. */
typedef bool (*rule_visitor)(void *context, const struct binding *binding,
                             const struct subject *subject, const struct rule *rule);

/* Calls visit for each rule of each binding that applies to user: ClusterRoleBindings, then
 * RoleBindings in ns (NULL or "": none). Bindings whose role is missing go to *errors, which
 * is reset first. rbac and user may be NULL (nothing applies). */
void kp_rbac_visit_rules_for(const struct kp_rbac *rbac, const struct kp_user *user, const char *ns,
                             rule_visitor visit, void *context, struct resolution_errors *errors);

/* Upstream's message for a binding whose role is missing (`clusterrole.rbac.authorization.k8s.io
 * "x" not found`), and for all of errors (utilerrors.NewAggregate). */
void kp_rbac_describe_error(struct text *text, const struct binding *binding);
void kp_rbac_describe_errors(struct text *text, const struct resolution_errors *errors);

/* ---- rules for a user (RulesFor) ---- */

struct rule_list {
    const struct rule **items;
    size_t count;
    size_t capacity;
    bool failed;
};

/* A rule_visitor that appends each rule to the struct rule_list *context (items: owned array
 * of borrowed pointers, free with free()); sets failed and stops when out of memory. */
bool kp_rbac_collect_visit(void *context, const struct binding *binding,
                           const struct subject *subject, const struct rule *rule);

#endif
