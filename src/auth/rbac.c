/*
 * The RBAC authorizer (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac/rbac.go), its rule
 * resolver (pkg/registry/rbac/validation/rule.go), the matching helpers
 * (pkg/apis/rbac/v1/evaluation_helpers.go) and the rules for a user (RulesFor,
 * SelfSubjectRulesReview): everything a request asks of a snapshot. Building the snapshot (the
 * subject index, aggregated ClusterRoles, reference counting) is in rbac_snapshot.c;
 * privilege-escalation prevention (kp_rbac_check_*) is in rbac_escalation.c; what the files
 * share is in rbac_internal.h.
 *
 * Implementation notes
 *  1. Upstream walks every binding and takes each binding's first subject that applies; the
 *     candidates found through the subject index (rbac_snapshot.c, note 3) are sorted by
 *     (binding, subject) so the same binding and subject are reported. ClusterRoleBindings are
 *     visited before RoleBindings, each in input order (upstream's order is the informer
 *     cache's, i.e. unspecified).
 */
#include "auth/rbac.h"
#include "auth/rbac_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    bool ok = candidates_add(&list, kp_rbac_index_find(index, 'U', ns, str_or_empty(user->name)));
    for (size_t g = 0; ok && g < user->groups.count; g++) {
        ok = candidates_add(&list, kp_rbac_index_find(index, 'G', ns, user->groups.items[g]));
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
        if (!attrs->explain_allow) {
            return;
        }
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
