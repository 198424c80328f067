/*
 * auth/authn_internal.h - what the authenticators' two files share: the authenticator itself,
 * an authenticator's three answers, the helpers that fill a result and a user, and the
 * certificate authenticators (authn_cert.c) that kp_authn_request (authn.c) runs first.
 * Private to src/auth/authn*.c.
 */
#ifndef KP_AUTH_AUTHN_INTERNAL_H
#define KP_AUTH_AUTHN_INTERNAL_H

#include <stdint.h>

#include "auth/authn.h"

/* As upstream's authenticator.Request: "mine, this user" (AUTH_OK), "not mine" (AUTH_PASS: no
 * credential of my kind) or "mine, and wrong" (AUTH_FAIL). */
enum auth_answer { AUTH_PASS, AUTH_OK, AUTH_FAIL };

struct kp_authn {
    STACK_OF(X509) * client_ca;
    STACK_OF(X509_CRL) * client_crls;
    STACK_OF(X509) * requestheader_ca;
    STACK_OF(X509_CRL) * requestheader_crls;
    struct kp_strlist allowed_names;
    struct kp_strlist username_headers;
    struct kp_strlist group_headers;
    struct kp_strlist extra_prefixes;
    struct kp_jwt_key *sa_keys; /* keys referenced (EVP_PKEY_up_ref) */
    size_t sa_key_count;
    struct kp_strlist issuers;
    struct kp_strlist api_audiences;
    bool bootstrap_tokens;
    bool anonymous;
    kp_object_lookup_fn lookup;
    void *lookup_context;
    struct kp_verdict_cache *token_cache; /* NULL: no cache; locked inside */
    struct kp_verdict_cache *chain_cache; /* client chains' verdicts; NULL: none */
    uint64_t id; /* unique among the process's authenticators (kp_authn_memo) */
};

/* Sets result->reason (truncated to its buffer). */
void kp_authn_set_reason(struct kp_authn_result *result, const char *fmt, ...) KP_PRINTF(2, 3);
/* user->name and user->uid (NULL when uid is NULL or empty), copied. */
enum kp_result kp_authn_user_set(struct kp_user *user, const char *name, const char *uid,
                                 struct kp_error *err);
/* Appends value to the extra key (created when absent). */
enum kp_result kp_authn_user_add_extra(struct kp_user *user, const char *key, const char *value,
                                       struct kp_error *err);

/* The certificate authenticators (authn_cert.c): the front proxy (request header) and x509.
 * AUTH_FAIL with *rc != KP_OK means the check could not run (err says why). */
enum auth_answer kp_authn_requestheader(const struct kp_authn *authn,
                                        const struct kp_authn_input *input, int64_t now,
                                        struct kp_user *user, struct kp_authn_result *result,
                                        struct kp_error *err, enum kp_result *rc);
enum auth_answer kp_authn_x509(const struct kp_authn *authn, const struct kp_authn_input *input,
                               int64_t now, struct kp_user *user, struct kp_authn_result *result,
                               struct kp_error *err, enum kp_result *rc);

#endif
