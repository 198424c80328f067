/*
 * auth/auth.h - who is asking and what they ask: the types every authenticator, authorizer and
 * admission check of the API server shares (k8s.io/apiserver's user.Info, authorizer.Attributes
 * and admission.Attributes).
 *
 * Ownership: a struct kp_user owns its strings and JSON; attributes and admission requests only
 * borrow (they live on the request's stack). Thread-safe: plain data.
 */
#ifndef KP_AUTH_AUTH_H
#define KP_AUTH_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/strlist.h"
#include "kpki/error.h"
#include "meta/selector.h"

/* Well-known names (k8s.io/apiserver/pkg/authentication/user). */
#define KP_GROUP_MASTERS "system:masters"
#define KP_GROUP_AUTHENTICATED "system:authenticated"
#define KP_GROUP_UNAUTHENTICATED "system:unauthenticated"
#define KP_GROUP_NODES "system:nodes"
#define KP_GROUP_SERVICEACCOUNTS "system:serviceaccounts"
#define KP_GROUP_BOOTSTRAPPERS "system:bootstrappers"
#define KP_USER_ANONYMOUS "system:anonymous"
#define KP_NODE_USER_PREFIX "system:node:"
#define KP_SA_USER_PREFIX "system:serviceaccount:"

/* An authenticated identity (user.Info). */
struct kp_user {
    char *name;               /* owned; never NULL once authenticated */
    char *uid;                /* owned; NULL when none */
    struct kp_strlist groups; /* owned, in the order the authenticator produced */
    json_t *extra;            /* owned reference: object of string -> array of strings; NULL */
};

/* Releases everything and zeroes user. Safe on a zeroed struct. */
void kp_user_wipe(struct kp_user *user);
bool kp_user_in_group(const struct kp_user *user, const char *group);
/* The UserInfo JSON of authentication.k8s.io/v1 ({"username","uid","groups","extra"}); new
 * reference, NULL only when out of memory. */
json_t *kp_user_to_json(const struct kp_user *user);

/* A request as an authorizer sees it (authorizer.AttributesRecord). */
struct kp_authz_attrs {
    const struct kp_user *user;
    bool resource_request;          /* false: a non-resource URL such as /healthz */
    const char *verb;               /* get list watch create update patch delete
                                       deletecollection (resource); get post put patch delete
                                       head (non-resource); also impersonate, bind, escalate,
                                       approve, sign ... from review APIs */
    const char *api_group;          /* "" for the core group */
    const char *api_version;
    const char *resource;           /* "pods" */
    const char *subresource;        /* "status", "" when none */
    const char *namespace_;         /* "" for cluster-scoped or all-namespaces requests */
    const char *name;               /* "" when the request names no object */
    const char *path;               /* the URL path (non-resource requests) */
    const struct kp_selector *field_selector; /* NULL when none given */
    const struct kp_selector *label_selector; /* NULL when none given */
    /* Fill the decision's reason when the request is allowed ("RBAC: allowed by ..."), as
     * SubjectAccessReviews show it. Other callers need only the verdict, and the text would be
     * built for nothing on every request. Refusal reasons are always filled. */
    bool explain_allow;
};

enum kp_authz_verdict {
    KP_AUTHZ_NO_OPINION = 0, /* the next authorizer decides; all no-opinion = forbidden */
    KP_AUTHZ_ALLOW,
    KP_AUTHZ_DENY,           /* forbidden, and no later authorizer is asked */
};

#define KP_AUTHZ_REASON_MAX 512

struct kp_authz_decision {
    enum kp_authz_verdict verdict;
    char reason[KP_AUTHZ_REASON_MAX]; /* "" or why: appended to the Forbidden message, and
                                         the SubjectAccessReview's status.reason */
};

/* Fetches an object from the API's storage: a new reference, or NULL when it does not exist
 * (or on error). resource is the plural ("pods"); ns "" for cluster-scoped. */
typedef json_t *(*kp_object_lookup_fn)(void *context, const char *resource, const char *ns,
                                       const char *name);

/* A write as admission sees it (admission.Attributes). */
struct kp_admission_request {
    const struct kp_user *user;
    const char *operation;          /* "CREATE", "UPDATE", "DELETE" (upper case, as upstream) */
    const char *api_group;
    const char *resource;
    const char *subresource;        /* "" when none */
    const char *namespace_;
    const char *name;               /* for CREATE: the name being created (after generateName) */
    const json_t *object;           /* the new object (CREATE, UPDATE); for
                                       serviceaccounts/token the TokenRequest */
    const json_t *old_object;       /* the stored object (UPDATE, DELETE); NULL otherwise */
    kp_object_lookup_fn lookup;     /* for checks that need another object */
    void *lookup_context;
};

#endif
