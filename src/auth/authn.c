/*
 * The API server's authenticators (see authn.h for the order and the rules): construction,
 * service-account and bootstrap tokens, and their union. The certificate authenticators are
 * in authn_cert.c.
 *
 * Each authenticator answers one of three things, as upstream's authenticator.Request does:
 * "mine, this user" (AUTH_OK), "not mine" (AUTH_PASS: no credential of my kind) or "mine, and
 * wrong" (AUTH_FAIL: a certificate that does not verify, a token that does not validate).
 * kp_authn_request runs them in order, stops at the first AUTH_OK, and refuses when none
 * succeeded and one failed, or when none applied and anonymous access is off.
 */
#include "auth/authn.h"
#include "auth/authn_internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/verdict_cache.h"
#include "core/duration.h"
#include "core/log.h"
#include "crypto/crypto.h"

static atomic_uint_fast64_t next_authn_id = 1;

/* ---- small helpers ---- */

void kp_authn_set_reason(struct kp_authn_result *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(result->reason, sizeof(result->reason), fmt, ap);
    va_end(ap);
}

static STACK_OF(X509) *certs_dup(STACK_OF(X509) *certs)
{
    return certs ? X509_chain_up_ref(certs) : NULL;
}

/* A new stack holding a reference on each CRL (NULL in, NULL out; NULL on allocation failure). */
static STACK_OF(X509_CRL) *crls_dup(STACK_OF(X509_CRL) *crls)
{
    STACK_OF(X509_CRL) *copy = crls ? sk_X509_CRL_dup(crls) : NULL;
    for (int i = 0; copy && i < sk_X509_CRL_num(copy); i++)
        X509_CRL_up_ref(sk_X509_CRL_value(copy, i));
    return copy;
}

static enum kp_result list_or_default(struct kp_strlist *dst, const struct kp_strlist *src,
                                      const char *fallback, struct kp_error *err)
{
    if (src && src->count)
        return kp_strlist_copy(dst, src, err);
    return fallback ? kp_strlist_add(dst, fallback, err) : KP_OK;
}

static const char *json_str(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

static const char *object_uid(const json_t *object)
{
    return json_str(json_object_get(object, "metadata"), "uid");
}

static const char *deletion_timestamp(const json_t *object)
{
    return json_str(json_object_get(object, "metadata"), "deletionTimestamp");
}

enum kp_result kp_authn_user_set(struct kp_user *user, const char *name, const char *uid,
                                 struct kp_error *err)
{
    user->name = strdup(name);
    user->uid = uid && *uid ? strdup(uid) : NULL;
    if (!user->name || (uid && *uid && !user->uid))
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    return KP_OK;
}

enum kp_result kp_authn_user_add_extra(struct kp_user *user, const char *key, const char *value,
                                       struct kp_error *err)
{
    if (!user->extra)
        user->extra = json_object();
    json_t *values = user->extra ? json_object_get(user->extra, key) : NULL;
    if (user->extra && !values) {
        values = json_array();
        if (values && json_object_set_new(user->extra, key, values) != 0)
            values = NULL;
    }
    if (!values || json_array_append_new(values, json_string(value)) != 0)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    return KP_OK;
}

static bool strlist_intersects(const struct kp_strlist *a, const struct kp_strlist *b)
{
    for (size_t i = 0; i < a->count; i++)
        if (kp_strlist_contains(b, a->items[i]))
            return true;
    return false;
}

/* Appends to out each item of wanted that accepted holds, in wanted's order (upstream's
 * authenticator.Audiences.Intersect, called with the audiences the request asks for). */
static enum kp_result audiences_intersect(struct kp_strlist *out, const struct kp_strlist *wanted,
                                          const struct kp_strlist *accepted, struct kp_error *err)
{
    for (size_t i = 0; i < wanted->count; i++) {
        if (!kp_strlist_contains(accepted, wanted->items[i]))
            continue;
        enum kp_result rc = kp_strlist_add(out, wanted->items[i], err);
        if (rc != KP_OK)
            return rc;
    }
    return KP_OK;
}

/* ---- construction ---- */

enum kp_result kp_authn_new(const struct kp_authn_config *config, struct kp_authn **out,
                            struct kp_error *err)
{
    *out = NULL;
    struct kp_authn *authn = calloc(1, sizeof(*authn));
    if (!authn)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    enum kp_result rc = KP_OK;
    authn->client_ca = certs_dup(config->client_ca);
    authn->requestheader_ca = certs_dup(config->requestheader_ca);
    authn->client_crls = crls_dup(config->client_crls);
    authn->requestheader_crls = crls_dup(config->requestheader_crls);
    if ((config->client_ca && !authn->client_ca) ||
        (config->requestheader_ca && !authn->requestheader_ca) ||
        (config->client_crls && !authn->client_crls) ||
        (config->requestheader_crls && !authn->requestheader_crls)) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto fail;
    }
    if ((rc = list_or_default(&authn->allowed_names, config->requestheader_allowed_names, NULL,
                              err)) != KP_OK ||
        (rc = list_or_default(&authn->username_headers, config->requestheader_username_headers,
                              "X-Remote-User", err)) != KP_OK ||
        (rc = list_or_default(&authn->group_headers, config->requestheader_group_headers,
                              "X-Remote-Group", err)) != KP_OK ||
        (rc = list_or_default(&authn->extra_prefixes, config->requestheader_extra_prefixes,
                              "X-Remote-Extra-", err)) != KP_OK ||
        (rc = list_or_default(&authn->issuers, config->issuers, NULL, err)) != KP_OK ||
        (rc = list_or_default(&authn->api_audiences,
                              config->api_audiences && config->api_audiences->count
                                  ? config->api_audiences
                                  : config->issuers,
                              NULL, err)) != KP_OK)
        goto fail;
    if (config->sa_key_count) {
        authn->sa_keys = calloc(config->sa_key_count, sizeof(*authn->sa_keys));
        if (!authn->sa_keys) {
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < config->sa_key_count; i++) {
            rc = kp_jwt_key_id(config->sa_keys[i], authn->sa_keys[i].kid,
                               sizeof(authn->sa_keys[i].kid), err);
            if (rc != KP_OK)
                goto fail;
            EVP_PKEY_up_ref(config->sa_keys[i]);
            authn->sa_keys[i].key = config->sa_keys[i];
            authn->sa_key_count = i + 1;
            /* Every token of every request is verified with these: fetch OpenSSL's
             * algorithms once (jwt.h). */
            rc = kp_jwt_key_prepare(&authn->sa_keys[i], err);
            if (rc != KP_OK)
                goto fail;
        }
    }
    authn->bootstrap_tokens = config->bootstrap_tokens;
    authn->anonymous = config->anonymous;
    authn->lookup = config->lookup;
    authn->lookup_context = config->lookup_context;
    authn->id = atomic_fetch_add(&next_authn_id, 1);
    if ((config->token_cache_entries &&
         !(authn->token_cache =
               kp_verdict_cache_new(config->token_cache_entries, KP_TOKEN_CACHE_MAX_TTL))) ||
        (config->chain_cache_entries &&
         !(authn->chain_cache =
               kp_verdict_cache_new(config->chain_cache_entries, KP_AUTHN_MEMO_SECONDS)))) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        goto fail;
    }
    *out = authn;
    return KP_OK;
fail:
    kp_authn_free(authn);
    return rc;
}

void kp_authn_free(struct kp_authn *authn)
{
    if (!authn)
        return;
    sk_X509_pop_free(authn->client_ca, X509_free);
    sk_X509_pop_free(authn->requestheader_ca, X509_free);
    sk_X509_CRL_pop_free(authn->client_crls, X509_CRL_free);
    sk_X509_CRL_pop_free(authn->requestheader_crls, X509_CRL_free);
    kp_strlist_wipe(&authn->allowed_names);
    kp_strlist_wipe(&authn->username_headers);
    kp_strlist_wipe(&authn->group_headers);
    kp_strlist_wipe(&authn->extra_prefixes);
    for (size_t i = 0; i < authn->sa_key_count; i++) {
        kp_jwt_key_release(&authn->sa_keys[i]);
        EVP_PKEY_free(authn->sa_keys[i].key);
    }
    free(authn->sa_keys);
    kp_strlist_wipe(&authn->issuers);
    kp_strlist_wipe(&authn->api_audiences);
    kp_verdict_cache_free(authn->token_cache);
    kp_verdict_cache_free(authn->chain_cache);
    free(authn);
}

void kp_authn_token_cache_stats(const struct kp_authn *authn, uint64_t *hits, uint64_t *misses)
{
    kp_verdict_cache_stats(authn->token_cache, hits, misses);
}

void kp_authn_chain_cache_stats(const struct kp_authn *authn, uint64_t *hits, uint64_t *misses)
{
    kp_verdict_cache_stats(authn->chain_cache, hits, misses);
}

void kp_authn_result_wipe(struct kp_authn_result *result)
{
    kp_strlist_wipe(&result->audiences);
    memset(result, 0, sizeof(*result));
}

/* ---- service-account tokens ---- */

static bool claim_audiences(const json_t *claims, struct kp_strlist *out)
{
    const json_t *aud = json_object_get(claims, "aud");
    if (json_is_string(aud))
        return kp_strlist_add(out, json_string_value(aud), NULL) == KP_OK;
    if (!json_is_array(aud))
        return aud == NULL;
    size_t i;
    const json_t *value;
    json_array_foreach(aud, i, value) {
        if (!json_is_string(value) || kp_strlist_add(out, json_string_value(value), NULL) != KP_OK)
            return false;
    }
    return true;
}

/* The bound object named in the kubernetes.io claim must still exist with that UID and not have
 * been deleted more than the leeway ago (claims.go Validate). */
static enum auth_answer check_bound_object(const struct kp_authn *authn, const char *resource,
                                           const char *ns, const json_t *ref, int64_t now,
                                           struct kp_authn_result *result)
{
    const char *name = json_str(ref, "name");
    const char *uid = json_str(ref, "uid");
    if (!name || !uid) {
        kp_authn_set_reason(result, "serviceaccount: token's bound %s reference is incomplete",
                            resource);
        return AUTH_FAIL;
    }
    json_t *object = authn->lookup(authn->lookup_context, resource, ns, name);
    enum auth_answer answer = AUTH_OK;
    const char *deleted = object ? deletion_timestamp(object) : NULL;
    int64_t deleted_at = 0;
    if (!object) {
        kp_authn_set_reason(result,
                            "serviceaccount: %s \"%s\" the token is bound to does not exist",
                            resource, name);
        answer = AUTH_FAIL;
    } else if (!object_uid(object) || strcmp(object_uid(object), uid) != 0) {
        kp_authn_set_reason(result,
                            "serviceaccount: %s \"%s\" UID (%s) does not match the token's (%s)",
                            resource, name, object_uid(object) ? object_uid(object) : "", uid);
        answer = AUTH_FAIL;
    } else if (deleted && kp_time_parse_rfc3339(deleted, &deleted_at, NULL) == KP_OK &&
               deleted_at < now - KP_SA_TOKEN_LEEWAY) {
        kp_authn_set_reason(result,
                            "serviceaccount: %s \"%s\" the token is bound to is being deleted",
                            resource, name);
        answer = AUTH_FAIL;
    }
    json_decref(object);
    return answer;
}

static enum auth_answer check_service_account(const struct kp_authn *authn, const char *ns,
                                              const char *name, const char *uid,
                                              struct kp_authn_result *result)
{
    json_t *sa = authn->lookup(authn->lookup_context, "serviceaccounts", ns, name);
    enum auth_answer answer = AUTH_OK;
    if (!sa) {
        kp_authn_set_reason(result, "serviceaccount: service account %s/%s does not exist", ns,
                            name);
        answer = AUTH_FAIL;
    } else if (uid && (!object_uid(sa) || strcmp(object_uid(sa), uid) != 0)) {
        kp_authn_set_reason(result,
                            "serviceaccount: service account %s/%s UID does not match the token's",
                            ns, name);
        answer = AUTH_FAIL;
    } else if (deletion_timestamp(sa)) {
        kp_authn_set_reason(result, "serviceaccount: service account %s/%s is being deleted", ns,
                            name);
        answer = AUTH_FAIL;
    }
    json_decref(sa);
    return answer;
}

static enum kp_result sa_user(struct kp_user *user, const char *ns, const char *name,
                              const char *uid, struct kp_error *err)
{
    char username[512], group[300];
    snprintf(username, sizeof(username), "%s%s:%s", KP_SA_USER_PREFIX, ns, name);
    snprintf(group, sizeof(group), "%s:%s", KP_GROUP_SERVICEACCOUNTS, ns);
    enum kp_result rc = kp_authn_user_set(user, username, uid, err);
    if (rc == KP_OK)
        rc = kp_strlist_add(&user->groups, KP_GROUP_SERVICEACCOUNTS, err);
    if (rc == KP_OK)
        rc = kp_strlist_add(&user->groups, group, err);
    return rc;
}

/* A legacy token (a Secret's "token" key): flat claims, the Secret must still hold exactly this
 * token (legacy.go). */
static enum auth_answer validate_legacy(const struct kp_authn *authn, const char *token,
                                        const json_t *claims, struct kp_user *user,
                                        struct kp_authn_result *result, struct kp_error *err,
                                        enum kp_result *rc)
{
    const char *ns = json_str(claims, "kubernetes.io/serviceaccount/namespace");
    const char *secret_name = json_str(claims, "kubernetes.io/serviceaccount/secret.name");
    const char *sa_name = json_str(claims, "kubernetes.io/serviceaccount/service-account.name");
    const char *sa_uid = json_str(claims, "kubernetes.io/serviceaccount/service-account.uid");
    const char *sub = json_str(claims, "sub");
    char expected_sub[512];
    if (!ns || !secret_name || !sa_name || !sa_uid || !*ns || !*sa_name) {
        kp_authn_set_reason(result,
                            "serviceaccount: legacy token lacks its service-account claims");
        return AUTH_FAIL;
    }
    snprintf(expected_sub, sizeof(expected_sub), "%s%s:%s", KP_SA_USER_PREFIX, ns, sa_name);
    if (!sub || strcmp(sub, expected_sub) != 0) {
        kp_authn_set_reason(result, "serviceaccount: legacy token's sub does not match its claims");
        return AUTH_FAIL;
    }
    json_t *secret = authn->lookup(authn->lookup_context, "secrets", ns, secret_name);
    const char *stored = secret ? json_str(json_object_get(secret, "data"), "token") : NULL;
    unsigned char *decoded = NULL;
    size_t decoded_len = 0;
    bool same = false;
    if (stored && kp_base64_decode(stored, strlen(stored), &decoded, &decoded_len, NULL) == KP_OK)
        same = decoded_len == strlen(token) && CRYPTO_memcmp(decoded, token, decoded_len) == 0;
    if (decoded)
        kp_secret_free(decoded, decoded_len);
    bool deleting = secret && deletion_timestamp(secret);
    json_decref(secret);
    if (!same || deleting) {
        kp_authn_set_reason(result,
                            "serviceaccount: the secret %s/%s of a legacy token no longer holds it",
                            ns, secret_name);
        return AUTH_FAIL;
    }
    if (check_service_account(authn, ns, sa_name, sa_uid, result) != AUTH_OK)
        return AUTH_FAIL;
    if ((*rc = sa_user(user, ns, sa_name, sa_uid, err)) != KP_OK)
        return AUTH_FAIL;
    return AUTH_OK;
}

static enum auth_answer validate_bound(const struct kp_authn *authn, const json_t *claims,
                                       int64_t now, struct kp_user *user,
                                       struct kp_authn_result *result, struct kp_error *err,
                                       enum kp_result *rc)
{
    const json_t *k8s = json_object_get(claims, "kubernetes.io");
    const char *ns = json_str(k8s, "namespace");
    const json_t *sa = json_object_get(k8s, "serviceaccount");
    const char *sa_name = json_str(sa, "name");
    const char *sa_uid = json_str(sa, "uid");
    if (!ns || !sa_name || !sa_uid || !*ns || !*sa_name) {
        kp_authn_set_reason(result, "serviceaccount: token lacks the kubernetes.io claims");
        return AUTH_FAIL;
    }
    char expected_sub[512];
    snprintf(expected_sub, sizeof(expected_sub), "%s%s:%s", KP_SA_USER_PREFIX, ns, sa_name);
    const char *sub = json_str(claims, "sub");
    if (!sub || strcmp(sub, expected_sub) != 0) {
        kp_authn_set_reason(result,
                            "serviceaccount: token's sub does not match its kubernetes.io claims");
        return AUTH_FAIL;
    }
    const json_t *pod = json_object_get(k8s, "pod");
    const json_t *secret = json_object_get(k8s, "secret");
    const json_t *node = json_object_get(k8s, "node");
    if (check_service_account(authn, ns, sa_name, sa_uid, result) != AUTH_OK ||
        (pod && check_bound_object(authn, "pods", ns, pod, now, result) != AUTH_OK) ||
        (secret && check_bound_object(authn, "secrets", ns, secret, now, result) != AUTH_OK) ||
        /* A node binding is validated for Node-bound tokens (ServiceAccountTokenNodeBinding
         * Validation); a pod-bound token's node is information only. */
        (node && !pod && check_bound_object(authn, "nodes", "", node, now, result) != AUTH_OK))
        return AUTH_FAIL;
    if ((*rc = sa_user(user, ns, sa_name, sa_uid, err)) != KP_OK)
        return AUTH_FAIL;
    struct {
        const json_t *ref;
        const char *name_key, *uid_key;
    } extras[] = {
        {pod, "authentication.kubernetes.io/pod-name", "authentication.kubernetes.io/pod-uid"},
        {node, "authentication.kubernetes.io/node-name", "authentication.kubernetes.io/node-uid"},
    };
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        if (!extras[i].ref)
            continue;
        const char *name = json_str(extras[i].ref, "name");
        const char *uid = json_str(extras[i].ref, "uid");
        if ((name &&
             (*rc = kp_authn_user_add_extra(user, extras[i].name_key, name, err)) != KP_OK) ||
            (uid && (*rc = kp_authn_user_add_extra(user, extras[i].uid_key, uid, err)) != KP_OK))
            return AUTH_FAIL;
    }
    const char *jti = json_str(claims, "jti");
    if (jti) {
        char credential[160];
        snprintf(credential, sizeof(credential), "JTI=%s", jti);
        if ((*rc = kp_authn_user_add_extra(user, "authentication.kubernetes.io/credential-id",
                                           credential, err)) != KP_OK)
            return AUTH_FAIL;
    }
    return AUTH_OK;
}

/* Until when a verified token may be taken from the cache: its exp (a NumericDate, which may
 * have a fraction: rounded down) plus the leeway, saturating; no exp (a legacy token): as long
 * as the cache keeps anything. */
static int64_t cache_until(const json_t *exp)
{
    if (!json_is_number(exp))
        return INT64_MAX;
    double at = json_number_value(exp);
    if (at >= (double)(INT64_MAX - KP_SA_TOKEN_LEEWAY))
        return INT64_MAX;
    if (at < 0)
        return 0;
    return (int64_t)at + KP_SA_TOKEN_LEEWAY;
}

/* The claims of a service-account token whose signature and times check out (a new
 * reference), from the cache when it was verified before. NULL with *answer AUTH_PASS (not a
 * token of our issuers: other authenticators judge it) or AUTH_FAIL (refused, with the reason in
 * result, or *rc set when the check could not run). */
static json_t *verified_sa_claims(const struct kp_authn *authn, const char *token, size_t len,
                                  int64_t now, bool *legacy, struct kp_authn_result *result,
                                  struct kp_error *err, enum kp_result *rc,
                                  enum auth_answer *answer)
{
    unsigned char key[KP_VERDICT_KEY_SIZE];
    bool keyed = authn->token_cache && kp_verdict_key(token, len, key);
    json_t *claims = NULL;
    if (keyed && kp_verdict_cache_get(authn->token_cache, key, now, &claims, legacy, NULL))
        return claims;
    /* Only tokens that claim one of our issuers are ours to judge (jwt.go hasCorrectIssuer):
     * another issuer's token falls through to the other authenticators. */
    struct kp_jwt unverified = {0};
    *answer = AUTH_PASS;
    if (kp_jwt_decode(token, len, &unverified, NULL) != KP_OK) {
        kp_jwt_wipe(&unverified);
        return NULL;
    }
    const char *iss = json_str(unverified.claims, "iss");
    *legacy = iss && strcmp(iss, KP_SA_LEGACY_ISSUER) == 0;
    bool ours = iss && (*legacy || kp_strlist_contains(&authn->issuers, iss));
    if (!ours) {
        kp_jwt_wipe(&unverified);
        return NULL;
    }
    *answer = AUTH_FAIL;
    struct kp_jwt jwt = {0};
    enum kp_jwt_verdict verdict;
    /* The decoding just done serves the verification too (it takes unverified). */
    *rc = kp_jwt_verify_decoded(token, len, &unverified, authn->sa_keys, authn->sa_key_count, now,
                                KP_SA_TOKEN_LEEWAY, &jwt, &verdict, err);
    if (*rc == KP_OK && verdict != KP_JWT_VALID)
        kp_authn_set_reason(result, "serviceaccount: token refused: %s",
                            kp_jwt_verdict_name(verdict));
    if (*rc == KP_OK && verdict == KP_JWT_VALID) {
        claims = json_incref(jwt.claims);
        /* Good until exp (plus the leeway verification allows); legacy tokens have no exp
         * and are capped by the cache. */
        int64_t until = cache_until(json_object_get(claims, "exp"));
        if (keyed)
            kp_verdict_cache_put(authn->token_cache, key, claims, *legacy, until, now);
    }
    kp_jwt_wipe(&jwt);
    return claims;
}

static enum auth_answer authn_sa_token(const struct kp_authn *authn, const char *token,
                                       const struct kp_strlist *audiences, int64_t now,
                                       struct kp_user *user, struct kp_authn_result *result,
                                       struct kp_error *err, enum kp_result *rc)
{
    size_t len = strlen(token);
    if (!authn->sa_key_count || !kp_jwt_looks_like(token, len))
        return AUTH_PASS;
    bool legacy = false;
    enum auth_answer answer = AUTH_FAIL;
    json_t *claims = verified_sa_claims(authn, token, len, now, &legacy, result, err, rc, &answer);
    if (!claims)
        return answer;
    answer = AUTH_FAIL;
    struct kp_strlist token_aud = {0};
    if (legacy) {
        /* Legacy tokens carry no audience: upstream gives them the API audiences (jwt.go's
         * implicitAuds), so they are good only where one of those is asked for - a
         * TokenReview for another audience must not accept them. */
        if (authn->api_audiences.count &&
            !strlist_intersects(audiences, &authn->api_audiences)) {
            kp_authn_set_reason(result,
                                "serviceaccount: a legacy token (no aud) is valid only for the "
                                "API audiences");
        } else {
            answer = validate_legacy(authn, token, claims, user, result, err, rc);
            if (answer == AUTH_OK &&
                (*rc = audiences_intersect(&result->audiences, audiences, &authn->api_audiences,
                                           err)) != KP_OK)
                answer = AUTH_FAIL;
        }
    } else if (!claim_audiences(claims, &token_aud) || token_aud.count == 0 ||
               !strlist_intersects(&token_aud, audiences)) {
        kp_authn_set_reason(result,
                            "serviceaccount: token audiences do not match the API audiences");
    } else {
        answer = validate_bound(authn, claims, now, user, result, err, rc);
        if (answer == AUTH_OK &&
            (*rc = audiences_intersect(&result->audiences, audiences, &token_aud, err)) != KP_OK)
            answer = AUTH_FAIL;
    }
    kp_strlist_wipe(&token_aud);
    json_decref(claims);
    if (answer == AUTH_OK)
        result->method = "serviceaccount";
    else
        kp_user_wipe(user);
    return answer;
}

/* ---- bootstrap tokens ---- */

bool kp_bootstrap_token_parse(const char *token, char *id, char *secret)
{
    const size_t id_len = KP_BOOTSTRAP_TOKEN_ID_LEN, secret_len = KP_BOOTSTRAP_TOKEN_SECRET_LEN;
    if (!token || strlen(token) != id_len + 1 + secret_len || token[id_len] != '.')
        return false;
    for (size_t i = 0; i < id_len + 1 + secret_len; i++) {
        char c = token[i];
        if (i == id_len)
            continue;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
    }
    if (id) {
        memcpy(id, token, id_len);
        id[id_len] = '\0';
    }
    if (secret) {
        memcpy(secret, token + id_len + 1, secret_len);
        secret[secret_len] = '\0';
    }
    return true;
}

enum kp_result kp_bootstrap_token_generate(char *token, size_t size, struct kp_error *err)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    const size_t total = KP_BOOTSTRAP_TOKEN_ID_LEN + 1 + KP_BOOTSTRAP_TOKEN_SECRET_LEN;
    if (size < total + 1)
        return kp_error_set(err, KP_ERR_INTERNAL, "bootstrap token buffer too small");
    for (size_t i = 0; i < total; i++) {
        if (i == KP_BOOTSTRAP_TOKEN_ID_LEN) {
            token[i] = '.';
            continue;
        }
        /* Rejection sampling: 252 is the largest multiple of 36 below 256, so every
         * character is equally likely. */
        unsigned char byte;
        do {
            if (RAND_bytes(&byte, 1) != 1)
                return kp_error_set(err, KP_ERR_IO, "cannot read random bytes for a token");
        } while (byte >= 252);
        token[i] = alphabet[byte % 36];
    }
    token[total] = '\0';
    return KP_OK;
}

bool kp_bootstrap_group_valid(const char *group)
{
    static const char prefix[] = "system:bootstrappers:";
    size_t plen = sizeof(prefix) - 1, len = strlen(group);
    if (strncmp(group, prefix, plen) != 0 || len == plen || len - plen > 256)
        return false;
    for (size_t i = plen; i < len; i++) {
        char c = group[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(i + 1 < len && (c == ':' || c == '-')))
            return false;
    }
    return true;
}

/* A Secret's data value, base64-decoded into out (NUL-terminated). */
static bool secret_value(const json_t *secret, const char *key, char *out, size_t size)
{
    const char *encoded = json_str(json_object_get(secret, "data"), key);
    unsigned char *decoded = NULL;
    size_t len = 0;
    if (!encoded || kp_base64_decode(encoded, strlen(encoded), &decoded, &len, NULL) != KP_OK)
        return false;
    bool fits = len < size;
    if (fits) {
        memcpy(out, decoded, len);
        out[len] = '\0';
    }
    kp_secret_free(decoded, len);
    return fits;
}

static enum auth_answer authn_bootstrap(const struct kp_authn *authn, const char *token,
                                        int64_t now, struct kp_user *user,
                                        struct kp_authn_result *result, struct kp_error *err,
                                        enum kp_result *rc)
{
    char id[KP_BOOTSTRAP_TOKEN_ID_LEN + 1], secret[KP_BOOTSTRAP_TOKEN_SECRET_LEN + 1];
    if (!authn->bootstrap_tokens || !kp_bootstrap_token_parse(token, id, secret))
        return AUTH_PASS;
    char name[64];
    snprintf(name, sizeof(name), "bootstrap-token-%s", id);
    json_t *object = authn->lookup(authn->lookup_context, "secrets", "kube-system", name);
    char stored_id[64], stored_secret[64], usage[16], expiration[64], groups[4096];
    enum auth_answer answer = AUTH_PASS; /* upstream: problems are logged, not errors */
    const char *type = object ? json_str(object, "type") : NULL;
    int64_t expires = 0;
    if (!object) {
        kp_authn_set_reason(result, "bootstrap-token: no secret kube-system/%s", name);
    } else if (deletion_timestamp(object)) {
        kp_authn_set_reason(result, "bootstrap-token: secret kube-system/%s is being deleted",
                            name);
    } else if (!type || strcmp(type, "bootstrap.kubernetes.io/token") != 0) {
        kp_authn_set_reason(result, "bootstrap-token: secret kube-system/%s has the wrong type",
                            name);
    } else if (!secret_value(object, "token-id", stored_id, sizeof(stored_id)) ||
               !secret_value(object, "token-secret", stored_secret, sizeof(stored_secret)) ||
               strcmp(stored_id, id) != 0 || strlen(stored_secret) != strlen(secret) ||
               CRYPTO_memcmp(stored_secret, secret, strlen(secret)) != 0) {
        kp_authn_set_reason(result, "bootstrap-token: token %s does not match its secret", id);
    } else if (json_object_get(json_object_get(object, "data"), "expiration") &&
               /* Present but unreadable (bad base64, longer than the buffer) or unparseable:
                * expired, as upstream's GetExpiration treats an unparseable value; empty: none. */
               (!secret_value(object, "expiration", expiration, sizeof(expiration)) ||
                (expiration[0] &&
                 (kp_time_parse_rfc3339(expiration, &expires, NULL) != KP_OK || expires <= now)))) {
        kp_authn_set_reason(result, "bootstrap-token: token %s has expired", id);
    } else if (!secret_value(object, "usage-bootstrap-authentication", usage, sizeof(usage)) ||
               strcmp(usage, "true") != 0) {
        kp_authn_set_reason(result, "bootstrap-token: token %s is not marked for authentication",
                            id);
    } else {
        answer = AUTH_OK;
    }
    OPENSSL_cleanse(stored_secret, sizeof(stored_secret));
    if (answer == AUTH_OK) {
        char username[64];
        snprintf(username, sizeof(username), "system:bootstrap:%s", id);
        struct kp_strlist extra = {0};
        if (secret_value(object, "auth-extra-groups", groups, sizeof(groups)) &&
            (*rc = kp_strlist_add_split(&extra, groups, err)) != KP_OK)
            answer = AUTH_FAIL;
        for (size_t i = 0; answer == AUTH_OK && i < extra.count; i++)
            if (!kp_bootstrap_group_valid(extra.items[i])) {
                kp_authn_set_reason(result, "bootstrap-token: token %s has an invalid extra group",
                                    id);
                answer = AUTH_PASS;
            }
        if (answer == AUTH_OK &&
            ((*rc = kp_authn_user_set(user, username, NULL, err)) != KP_OK ||
             (*rc = kp_strlist_add(&user->groups, KP_GROUP_BOOTSTRAPPERS, err)) != KP_OK))
            answer = AUTH_FAIL;
        for (size_t i = 0; answer == AUTH_OK && i < extra.count; i++)
            if ((*rc = kp_strlist_add(&user->groups, extra.items[i], err)) != KP_OK)
                answer = AUTH_FAIL;
        /* GetGroups returns a sorted set: duplicates go, system:bootstrappers sorts first. */
        if (answer == AUTH_OK)
            kp_strlist_sort_unique(&user->groups);
        kp_strlist_wipe(&extra);
        if (answer != AUTH_OK)
            kp_user_wipe(user);
        else
            result->method = "bootstrap-token";
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    json_decref(object);
    return answer;
}

/* ---- the union ---- */

/* Appends one authenticator's failure to the list a refusal reports ("a; b"). */
static void add_failure(char *failures, size_t size, const char *reason)
{
    size_t used = strlen(failures);
    if (reason[0] && used + 1 < size)
        snprintf(failures + used, size - used, "%s%s", used ? "; " : "", reason);
}

/* Extracts the bearer token (bearertoken.go: "Bearer <token>", scheme case-insensitive). */
static const char *bearer_token(const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "bearer ", 7) != 0)
        return NULL;
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    return token;
}

static enum auth_answer authn_token_any(const struct kp_authn *authn, const char *token,
                                        const struct kp_strlist *audiences, int64_t now,
                                        struct kp_user *user, struct kp_authn_result *result,
                                        struct kp_error *err, enum kp_result *rc)
{
    enum auth_answer answer = authn_sa_token(authn, token, audiences, now, user, result, err, rc);
    if (answer == AUTH_PASS) {
        /* Bootstrap tokens have no audience. Upstream wraps their authenticator in
         * WrapAudienceAgnosticToken: it answers only when one of the API audiences is asked
         * for, and the token is then good for those (a TokenReview for another audience must
         * not accept it). */
        struct kp_strlist agnostic = {0};
        *rc = audiences_intersect(&agnostic, audiences, &authn->api_audiences, err);
        if (*rc != KP_OK)
            answer = AUTH_FAIL;
        else if (agnostic.count || !authn->api_audiences.count)
            answer = authn_bootstrap(authn, token, now, user, result, err, rc);
        if (answer == AUTH_OK) {
            kp_strlist_wipe(&result->audiences);
            result->audiences = agnostic; /* moved */
        } else {
            kp_strlist_wipe(&agnostic);
        }
    }
    if (answer == AUTH_PASS) {
        /* A bearer token nobody recognised is an invalid credential, not an absent one. */
        if (!result->reason[0])
            kp_authn_set_reason(result, "invalid bearer token");
        answer = AUTH_FAIL;
    }
    return answer;
}

static enum kp_result finish(struct kp_user *user, struct kp_authn_result *result,
                             enum auth_answer answer, enum kp_result rc, bool anonymous,
                             struct kp_error *err)
{
    if (rc != KP_OK) {
        kp_user_wipe(user);
        result->outcome = KP_AUTHN_REFUSED;
        return rc;
    }
    if (answer == AUTH_OK) {
        /* The reason is for refusals: a failure of an earlier authenticator is not one. */
        result->reason[0] = '\0';
        result->outcome = KP_AUTHN_AUTHENTICATED;
        /* group.AuthenticatedGroupAdder: not when either group is already there. */
        if (!kp_user_in_group(user, KP_GROUP_AUTHENTICATED) &&
            !kp_user_in_group(user, KP_GROUP_UNAUTHENTICATED))
            return kp_strlist_add(&user->groups, KP_GROUP_AUTHENTICATED, err);
        return KP_OK;
    }
    kp_user_wipe(user);
    if (answer == AUTH_PASS && anonymous) {
        result->reason[0] = '\0';
        result->outcome = KP_AUTHN_ANONYMOUS;
        result->method = "anonymous";
        rc = kp_authn_user_set(user, KP_USER_ANONYMOUS, NULL, err);
        if (rc == KP_OK)
            rc = kp_strlist_add(&user->groups, KP_GROUP_UNAUTHENTICATED, err);
        return rc;
    }
    result->outcome = KP_AUTHN_REFUSED;
    result->method = NULL;
    if (answer == AUTH_PASS && !result->reason[0])
        kp_authn_set_reason(result, "no credentials: no client certificate and no bearer token");
    return KP_OK;
}

/* A certificate authenticator's failure is remembered and the next authenticator runs
 * (upstream's union): AUTH_PASS then, else answer unchanged. */
static enum auth_answer go_on_after(enum auth_answer answer, enum kp_result rc,
                                    struct kp_user *user, const struct kp_authn_result *result,
                                    char *failures, size_t size, bool *failed)
{
    if (answer != AUTH_FAIL || rc != KP_OK)
        return answer;
    *failed = true;
    add_failure(failures, size, result->reason);
    kp_user_wipe(user);
    return AUTH_PASS;
}

/* Whether the request names a user in one of the front proxy's username headers. Without one
 * the request-header authenticator cannot authenticate the request: it can only pass or fail
 * it (a chain that does not verify against the front-proxy CA, or a CN not allowed). */
static bool names_proxied_user(const struct kp_authn *authn, const struct kp_authn_input *input)
{
    for (size_t h = 0; h < authn->username_headers.count; h++)
        for (size_t i = 0; i < input->header_count; i++)
            if (strcasecmp(input->headers[i].name, authn->username_headers.items[h]) == 0 &&
                input->headers[i].value[0])
                return true;
    return false;
}

/* The front-proxy check of a request that names no proxied user, run after the others: its
 * failure, if any, goes first in the list of failures (where upstream's union, which runs it
 * first, reports it). */
static enum kp_result requestheader_failure_first(const struct kp_authn *authn,
                                                  const struct kp_authn_input *input, int64_t now,
                                                  char *failures, size_t size, bool *failed,
                                                  struct kp_error *err)
{
    enum kp_result rc = KP_OK;
    struct kp_user scratch = {0};
    struct kp_authn_result own = {0};
    enum auth_answer answer = kp_authn_requestheader(authn, input, now, &scratch, &own, err, &rc);
    kp_user_wipe(&scratch);
    if (answer == AUTH_FAIL && rc == KP_OK) {
        char later[KP_AUTHN_REASON_MAX];
        snprintf(later, sizeof(later), "%s", failures);
        failures[0] = '\0';
        add_failure(failures, size, own.reason);
        add_failure(failures, size, later);
        *failed = true;
    }
    kp_authn_result_wipe(&own);
    return rc;
}

enum kp_result kp_authn_request(const struct kp_authn *authn, const struct kp_authn_input *input,
                                int64_t now, struct kp_user *user,
                                struct kp_authn_result *result, struct kp_error *err)
{
    memset(user, 0, sizeof(*user));
    memset(result, 0, sizeof(*result));
    enum kp_result rc = KP_OK;
    /* Failures of earlier authenticators are remembered but do not stop later ones: an
     * expired certificate fails x509 and a good token then authenticates. A refusal reports
     * every failure, in upstream's order, as its aggregate error does. */
    bool failed = false;
    char failures[KP_AUTHN_REASON_MAX] = "";
    /* Upstream's union runs the front-proxy check first. When the request names no proxied
     * user that check can only fail, and its failure matters only when no later authenticator
     * succeeds (it then heads the refusal's reasons, and it forbids the anonymous fallback).
     * So it runs last, and only then: an ordinary client's chain is no longer verified
     * against the front-proxy CA on every connection, and every outcome and reason stays
     * what the upstream order gives. One difference: an internal error of that check (out of
     * memory, a verification that could not run) no longer fails a request another
     * authenticator accepts. */
    bool proxied = names_proxied_user(authn, input);
    enum auth_answer answer = AUTH_PASS;
    if (proxied) {
        answer = kp_authn_requestheader(authn, input, now, user, result, err, &rc);
        answer = go_on_after(answer, rc, user, result, failures, sizeof(failures), &failed);
    }
    if (answer == AUTH_PASS && rc == KP_OK) {
        result->reason[0] = '\0';
        answer = kp_authn_x509(authn, input, now, user, result, err, &rc);
        answer = go_on_after(answer, rc, user, result, failures, sizeof(failures), &failed);
    }
    const char *token = bearer_token(input->authorization);
    if (answer == AUTH_PASS && rc == KP_OK && token && *token) {
        result->reason[0] = '\0';
        answer = authn_token_any(authn, token, &authn->api_audiences, now, user, result, err,
                                 &rc);
        if (answer == AUTH_FAIL && rc == KP_OK) {
            failed = true;
            add_failure(failures, sizeof(failures), result->reason);
        }
    } else if (answer == AUTH_PASS && input->authorization && rc == KP_OK) {
        /* An Authorization header of another scheme, or "Bearer" without a token. */
        failed = true;
        add_failure(failures, sizeof(failures),
                    "unsupported Authorization header (only Bearer tokens)");
    }
    if (answer != AUTH_OK && !proxied && rc == KP_OK)
        rc = requestheader_failure_first(authn, input, now, failures, sizeof(failures), &failed,
                                         err);
    if (answer != AUTH_OK && failed) {
        snprintf(result->reason, sizeof(result->reason), "%s", failures);
        answer = AUTH_FAIL;
    }
    return finish(user, result, answer, rc, authn->anonymous, err);
}

enum kp_result kp_authn_token(const struct kp_authn *authn, const char *token,
                              const struct kp_strlist *audiences, int64_t now,
                              struct kp_user *user, struct kp_authn_result *result,
                              struct kp_error *err)
{
    memset(user, 0, sizeof(*user));
    memset(result, 0, sizeof(*result));
    enum kp_result rc = KP_OK;
    if (!audiences || !audiences->count)
        audiences = &authn->api_audiences;
    enum auth_answer answer = AUTH_FAIL;
    if (!token || !*token)
        kp_authn_set_reason(result, "empty token");
    else
        answer = authn_token_any(authn, token, audiences, now, user, result, err, &rc);
    return finish(user, result, answer, rc, false, err);
}

/* ---- service-account token claims ---- */

static enum kp_result random_uuid(char *out, size_t size, struct kp_error *err)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return kp_error_set(err, KP_ERR_IO, "cannot read random bytes for a token id");
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, size,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return KP_OK;
}

enum kp_result kp_sa_claims(const struct kp_sa_claims_params *p, json_t **out,
                            struct kp_error *err)
{
    *out = NULL;
    const char *bound_kind = p->binding.kind;
    if (bound_kind && *bound_kind && strcmp(bound_kind, "Pod") != 0 &&
        strcmp(bound_kind, "Secret") != 0 && strcmp(bound_kind, "Node") != 0)
        return kp_error_set(err, KP_ERR_INVALID, "a token cannot be bound to a %s (Pod, Secret "
                            "or Node)", bound_kind);
    char sub[512], jti[40];
    snprintf(sub, sizeof(sub), "%s%s:%s", KP_SA_USER_PREFIX, p->namespace_, p->sa_name);
    enum kp_result rc = random_uuid(jti, sizeof(jti), err);
    if (rc != KP_OK)
        return rc;
    json_t *aud = json_array();
    for (size_t i = 0; aud && p->audiences && i < p->audiences->count; i++)
        if (json_array_append_new(aud, json_string(p->audiences->items[i])) != 0) {
            json_decref(aud);
            aud = NULL;
        }
    json_t *k8s = aud ? json_pack("{s:s, s:{s:s, s:s}}", "namespace", p->namespace_,
                                  "serviceaccount", "name", p->sa_name, "uid", p->sa_uid)
                      : NULL;
    const struct kp_sa_binding *b = &p->binding;
    bool ok = k8s != NULL;
    if (ok && b->kind && *b->kind) {
        const char *key = strcmp(b->kind, "Pod") == 0      ? "pod"
                          : strcmp(b->kind, "Secret") == 0 ? "secret"
                                                           : "node";
        ok = json_object_set_new(k8s, key, json_pack("{s:s, s:s}", "name", b->name, "uid",
                                                     b->uid)) == 0;
        if (ok && strcmp(key, "pod") == 0 && b->node_name && b->node_uid)
            ok = json_object_set_new(k8s, "node", json_pack("{s:s, s:s}", "name", b->node_name,
                                                            "uid", b->node_uid)) == 0;
    }
    if (ok && p->warn_after)
        ok = json_object_set_new(k8s, "warnafter", json_integer(p->warn_after)) == 0;
    json_t *claims = ok ? json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:s, s:o}", "iss", p->issuer,
                                    "sub", sub, "aud", aud, "iat", (json_int_t)p->now, "nbf",
                                    (json_int_t)p->now, "exp",
                                    (json_int_t)(p->now + p->expiration_seconds), "jti", jti,
                                    "kubernetes.io", k8s)
                        : NULL;
    if (!claims) {
        if (!ok) {
            json_decref(aud);
            json_decref(k8s);
        }
        return kp_error_set(err, KP_ERR_IO, "out of memory building token claims");
    }
    *out = claims;
    return KP_OK;
}

STACK_OF(X509) *kp_authn_client_cas(const struct kp_authn *authn)
{
    STACK_OF(X509) *copy = sk_X509_new_null();
    for (int i = 0; copy && authn->client_ca && i < sk_X509_num(authn->client_ca); i++) {
        X509 *cert = sk_X509_value(authn->client_ca, i);
        if (X509_up_ref(cert) != 1 || !sk_X509_push(copy, cert)) {
            X509_free(cert);
            sk_X509_pop_free(copy, X509_free);
            return NULL;
        }
    }
    return copy;
}
