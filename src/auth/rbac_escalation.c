/*
 * Privilege-escalation prevention for RBAC writes (k8s.io/kubernetes pkg/registry/rbac:
 * validation/rule.go ConfirmNoEscalation, validation/policy_comparator.go Covers,
 * validation/policy_compact.go CompactRules, escalation_check.go): may the user creating or
 * updating a Role, ClusterRole or binding grant what it grants? Yes if the user already holds
 * every rule, may "escalate" (roles) or "bind" (bindings), or is in system:masters.
 *
 * A module of its own, apart from the authorizer in rbac.c: it is not request authorization
 * but a check the API server makes on RBAC writes, with its own algorithm (breaking rules down
 * into atomic subrules, covering, compacting the missing ones into upstream's message). It
 * reads the snapshot through rbac_internal.h (the rule walk, find_role, the message builder)
 * and asks the authorizer only through kp_rbac_authorize.
 */
#include "auth/rbac.h"
#include "auth/rbac_internal.h"

#include <stdlib.h>
#include <string.h>

/* One atomic servant rule (BreakdownRule): group/resource/verb[/name], or url/verb. */
struct subrule {
    const char *group;
    const char *resource;
    const char *verb;
    const char *name;
    const char *url;
};

struct subrule_list {
    struct subrule *items;
    size_t count;
    size_t capacity;
    bool failed;
};

static void subrule_add(struct subrule_list *list, struct subrule subrule)
{
    if (list->failed) {
        return;
    }
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 16 : list->capacity * 2;
        struct subrule *grown = realloc(list->items, capacity * sizeof(*grown));
        if (grown == NULL) {
            list->failed = true;
            return;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = subrule;
}

static bool list_has(const json_t *list, const char *value)
{
    size_t count = list_size(list);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(list_item(list, i), value) == 0) {
            return true;
        }
    }
    return false;
}

/* ruleCovers for one atomic subrule. */
static bool rule_covers(const struct rule *owner, const struct subrule *sub)
{
    if (!list_has(owner->verbs, "*") && !list_has(owner->verbs, sub->verb)) {
        return false;
    }
    if (sub->group != NULL && !list_has(owner->api_groups, "*") &&
        !list_has(owner->api_groups, sub->group)) {
        return false;
    }
    if (sub->resource != NULL && !list_has(owner->resources, "*") &&
        !list_has(owner->resources, sub->resource)) {
        /* resourceCoversAll: "*\/<subresource>" covers "<any>/<subresource>". */
        const char *slash = strchr(sub->resource, '/');
        if (slash == NULL) {
            return false;
        }
        bool covered = false;
        size_t count = list_size(owner->resources);
        for (size_t i = 0; i < count && !covered; i++) {
            const char *item = list_item(owner->resources, i);
            covered = item[0] == '*' && item[1] == '/' && strcmp(item + 2, slash + 1) == 0;
        }
        if (!covered) {
            return false;
        }
    }
    if (sub->url != NULL) {
        bool covered = false;
        size_t count = list_size(owner->urls);
        for (size_t i = 0; i < count && !covered; i++) {
            covered = kp_rbac_url_covers(list_item(owner->urls, i), sub->url);
        }
        if (!covered) {
            return false;
        }
    }
    size_t owner_names = list_size(owner->resource_names);
    if (sub->name == NULL) {
        return owner_names == 0;
    }
    return owner_names == 0 || list_has(owner->resource_names, sub->name);
}

static bool covered_by(const struct rule_list *owner, const struct subrule *sub)
{
    for (size_t i = 0; i < owner->count; i++) {
        if (rule_covers(owner->items[i], sub)) {
            return true;
        }
    }
    return false;
}

/* Covers: the atomic parts of servant rules that no owner rule covers, in order. */
static void uncovered_subrules(const struct rule_list *owner, const struct rule *const *servant,
                               size_t servant_count, struct subrule_list *missing)
{
    for (size_t s = 0; s < servant_count; s++) {
        const struct rule *rule = servant[s];
        size_t groups = list_size(rule->api_groups);
        size_t resources = list_size(rule->resources);
        size_t verbs = list_size(rule->verbs);
        size_t names = list_size(rule->resource_names);
        for (size_t g = 0; g < groups; g++) {
            for (size_t r = 0; r < resources; r++) {
                for (size_t v = 0; v < verbs; v++) {
                    for (size_t n = 0; n < (names > 0 ? names : 1); n++) {
                        struct subrule sub = {
                            .group = list_item(rule->api_groups, g),
                            .resource = list_item(rule->resources, r),
                            .verb = list_item(rule->verbs, v),
                            .name = names > 0 ? list_item(rule->resource_names, n) : NULL,
                        };
                        if (!covered_by(owner, &sub)) {
                            subrule_add(missing, sub);
                        }
                    }
                }
            }
        }
        size_t urls = list_size(rule->urls);
        for (size_t u = 0; u < urls; u++) {
            for (size_t v = 0; v < verbs; v++) {
                struct subrule sub = {.url = list_item(rule->urls, u),
                                      .verb = list_item(rule->verbs, v)};
                if (!covered_by(owner, &sub)) {
                    subrule_add(missing, sub);
                }
            }
        }
    }
}

static bool same_simple_resource(const struct subrule *a, const struct subrule *b)
{
    if (a->url != NULL || b->url != NULL) {
        return false;
    }
    if ((a->name == NULL) != (b->name == NULL)) {
        return false;
    }
    return strcmp(a->group, b->group) == 0 && strcmp(a->resource, b->resource) == 0 &&
           (a->name == NULL || strcmp(a->name, b->name) == 0);
}

/* Go's %q of a []string: ["a" "b"]. */
static void text_quote_strings(struct text *text, const char *const *items, size_t count)
{
    kp_rbac_text_puts(text, "[");
    for (size_t i = 0; i < count; i++) {
        if (i > 0) {
            kp_rbac_text_puts(text, " ");
        }
        kp_rbac_text_quote(text, items[i]);
    }
    kp_rbac_text_puts(text, "]");
}

/* CompactRules then CompactString for each missing rule: the missing subrules of one
 * group/resource/name differ only in verb and become one line. Lines go into *lines. */
static enum kp_result describe_missing(const struct subrule_list *missing, struct kp_strlist *lines,
                                       struct kp_error *err)
{
    bool *done = calloc(missing->count > 0 ? missing->count : 1, sizeof(*done));
    const char **verbs = calloc(missing->count > 0 ? missing->count : 1, sizeof(*verbs));
    enum kp_result rc = KP_OK;
    if (done == NULL || verbs == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory describing missing RBAC rules");
    }
    for (size_t i = 0; rc == KP_OK && i < missing->count; i++) {
        if (done[i]) {
            continue;
        }
        const struct subrule *sub = &missing->items[i];
        size_t verb_count = 0;
        verbs[verb_count++] = sub->verb;
        for (size_t j = i + 1; sub->url == NULL && j < missing->count; j++) {
            if (!done[j] && same_simple_resource(sub, &missing->items[j])) {
                done[j] = true;
                verbs[verb_count++] = missing->items[j].verb;
            }
        }
        struct text line = {0};
        kp_rbac_text_puts(&line, "{");
        if (sub->url == NULL) {
            kp_rbac_text_puts(&line, "APIGroups:");
            text_quote_strings(&line, &sub->group, 1);
            kp_rbac_text_puts(&line, ", Resources:");
            text_quote_strings(&line, &sub->resource, 1);
            if (sub->name != NULL) {
                kp_rbac_text_puts(&line, ", ResourceNames:");
                text_quote_strings(&line, &sub->name, 1);
            }
        } else {
            kp_rbac_text_puts(&line, "NonResourceURLs:");
            text_quote_strings(&line, &sub->url, 1);
        }
        kp_rbac_text_puts(&line, ", Verbs:");
        text_quote_strings(&line, verbs, verb_count);
        kp_rbac_text_puts(&line, "}");
        rc = line.failed ? kp_error_set(err, KP_ERR_IO, "out of memory describing RBAC rules")
                         : kp_strlist_add(lines, kp_rbac_text_value(&line), err);
        kp_rbac_text_wipe(&line);
    }
    free(done);
    free(verbs);
    /* sets.NewString(...).List(): sorted, unique. */
    kp_strlist_sort_unique(lines);
    return rc;
}

/* ConfirmNoEscalation: may user grant these rules in ns? */
static enum kp_result confirm_no_escalation(const struct kp_rbac *rbac, const struct kp_user *user,
                                            const char *ns, const struct rule *const *servant,
                                            size_t servant_count, struct kp_error *err)
{
    struct rule_list owner = {0};
    struct resolution_errors errors;
    kp_rbac_visit_rules_for(rbac, user, ns, kp_rbac_collect_visit, &owner, &errors);
    struct subrule_list missing = {0};
    struct kp_strlist lines = {0};
    struct text text = {0};
    enum kp_result rc = KP_OK;
    if (owner.failed || errors.incomplete) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory resolving the rules of user '%s'",
                          str_or_empty(user->name));
        goto cleanup;
    }
    uncovered_subrules(&owner, servant, servant_count, &missing);
    if (missing.failed) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory comparing RBAC rules");
        goto cleanup;
    }
    if (missing.count == 0) {
        goto cleanup;
    }
    rc = describe_missing(&missing, &lines, err);
    if (rc != KP_OK) {
        goto cleanup;
    }
    kp_rbac_text_puts(&text, "user ");
    kp_rbac_text_quote(&text, str_or_empty(user->name));
    kp_rbac_text_puts(&text, " (groups=");
    text_quote_strings(&text, (const char *const *)user->groups.items, user->groups.count);
    kp_rbac_text_puts(&text, ") is attempting to grant RBAC permissions not currently held:\n");
    for (size_t i = 0; i < lines.count; i++) {
        if (i > 0) {
            kp_rbac_text_puts(&text, "\n");
        }
        kp_rbac_text_puts(&text, lines.items[i]);
    }
    if (errors.count > 0) {
        /* fmt's %v of a []error holding the aggregate. */
        kp_rbac_text_puts(&text, "; resolution errors: [");
        kp_rbac_describe_errors(&text, &errors);
        kp_rbac_text_puts(&text, "]");
    }
    rc = kp_error_set(err, KP_ERR_FORBIDDEN, "%s", kp_rbac_text_value(&text));
cleanup:
    kp_rbac_text_wipe(&text);
    kp_strlist_wipe(&lines);
    free(missing.items);
    free(owner.items);
    return rc;
}

/* EscalationAllowed: system:masters is how the API server's own loopback client is
 * recognised, so its members may grant anything. */
static bool escalation_allowed(const struct kp_user *user)
{
    return kp_user_in_group(user, KP_GROUP_MASTERS);
}

static bool rbac_allows(const struct kp_rbac *rbac, const struct kp_authz_attrs *attrs)
{
    struct kp_authz_decision decision;
    kp_rbac_authorize(rbac, attrs, &decision);
    return decision.verdict == KP_AUTHZ_ALLOW;
}

enum kp_result kp_rbac_check_role_update(const struct kp_rbac *rbac, const struct kp_user *user,
                                         const char *ns, const char *name, const json_t *rules,
                                         struct kp_error *err)
{
    if (user == NULL) {
        return kp_error_set(err, KP_ERR_FORBIDDEN, "no user to check RBAC escalation for");
    }
    if (rules != NULL && !json_is_array(rules)) {
        return kp_error_set(err, KP_ERR_INVALID, "rules: expected an array of PolicyRule");
    }
    if (escalation_allowed(user)) {
        return KP_OK;
    }
    /* RoleEscalationAuthorized: the "escalate" verb on roles or clusterroles. */
    struct kp_authz_attrs attrs = {
        .user = user,
        .resource_request = true,
        .verb = "escalate",
        .api_group = RBAC_GROUP,
        .api_version = "*",
        .resource = ns != NULL && ns[0] != '\0' ? "roles" : "clusterroles",
        .subresource = "",
        .namespace_ = str_or_empty(ns),
        .name = str_or_empty(name),
        .path = "",
    };
    if (rbac_allows(rbac, &attrs)) {
        return KP_OK;
    }
    size_t count = rules != NULL ? json_array_size(rules) : 0;
    struct rule *compiled = calloc(count > 0 ? count : 1, sizeof(*compiled));
    const struct rule **servant = calloc(count > 0 ? count : 1, sizeof(*servant));
    enum kp_result rc = KP_OK;
    if (compiled == NULL || servant == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory checking RBAC escalation");
    }
    for (size_t i = 0; rc == KP_OK && i < count; i++) {
        if (!kp_rbac_compile_rule(json_array_get(rules, i), &compiled[i])) {
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "rules[%zu]: expected an object whose members are string arrays", i);
        }
        servant[i] = &compiled[i];
    }
    if (rc == KP_OK) {
        rc = confirm_no_escalation(rbac, user, str_or_empty(ns), servant, count, err);
    }
    free(compiled);
    free(servant);
    return rc;
}

enum kp_result kp_rbac_check_role_write(const struct kp_rbac *rbac, const struct kp_user *user,
                                        const char *ns, const json_t *rules, struct kp_error *err)
{
    return kp_rbac_check_role_update(rbac, user, ns, "", rules, err);
}

enum kp_result kp_rbac_check_binding_write(const struct kp_rbac *rbac, const struct kp_user *user,
                                           const char *ns, const json_t *role_ref,
                                           struct kp_error *err)
{
    if (user == NULL) {
        return kp_error_set(err, KP_ERR_FORBIDDEN, "no user to check RBAC escalation for");
    }
    const char *kind = object_string(role_ref, "kind");
    const char *name = object_string(role_ref, "name");
    const char *group = object_string(role_ref, "apiGroup");
    if (kind == NULL || name == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "roleRef: kind and name are required");
    }
    if (escalation_allowed(user)) {
        return KP_OK;
    }
    ns = str_or_empty(ns);
    /* BindingAuthorized: "bind" on the referenced role, in the binding's namespace (or
     * cluster-wide for a ClusterRoleBinding). */
    bool known_kind = strcmp(kind, "ClusterRole") == 0 || strcmp(kind, "Role") == 0;
    struct kp_authz_attrs attrs = {
        .user = user,
        .resource_request = true,
        .verb = "bind",
        .api_group = str_or_empty(group),
        .api_version = "",
        .resource = strcmp(kind, "ClusterRole") == 0 ? "clusterroles" : "roles",
        .subresource = "",
        .namespace_ = ns,
        .name = name,
        .path = "",
    };
    if (known_kind && rbac_allows(rbac, &attrs)) {
        return KP_OK;
    }
    /* GetRoleReferenceRules */
    const struct role *role = NULL;
    if (rbac != NULL && strcmp(kind, "ClusterRole") == 0) {
        role = kp_rbac_find_role(rbac, true, "", name);
    } else if (rbac != NULL && strcmp(kind, "Role") == 0 && ns[0] != '\0') {
        role = kp_rbac_find_role(rbac, false, ns, name);
    }
    if (role == NULL) {
        struct binding missing = {.role_kind = kind, .role_name = name};
        struct text text = {0};
        kp_rbac_describe_error(&text, &missing);
        enum kp_result rc = kp_error_set(err, KP_ERR_FORBIDDEN, "%s", kp_rbac_text_value(&text));
        kp_rbac_text_wipe(&text);
        return rc;
    }
    return confirm_no_escalation(rbac, user, ns, role->rules, role->rule_count, err);
}
