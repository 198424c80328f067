/*
 * auth/authn_cert.c - the certificate authenticators: x509 client certificates against the
 * client CA, and the front proxy's certificate against its CA with the identity in request
 * headers (authn.h has the rules). Both verify the presented chain through verify_memoized:
 * a chain is verified once per connection (the memo) and, across connections, once per
 * minute at most (the chain cache); docs/auth.md says when either ends.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/authn_internal.h"
#include "auth/verdict_cache.h"
#include "crypto/crypto.h"
#include "verify/verify.h"

/* Whether crl was issued by a CA of path (by name: the CRLs of other CAs do not decide it). */
static bool crl_of_path(X509_CRL *crl, STACK_OF(X509) * path)
{
    const X509_NAME *issuer = X509_CRL_get_issuer(crl);
    for (int i = 0; i < sk_X509_num(path); i++)
        if (X509_NAME_cmp(issuer, X509_get_subject_name(sk_X509_value(path, i))) == 0)
            return true;
    return false;
}

/* The earliest of the path's notAfter and the nextUpdate of its CAs' CRLs (a CRL without one
 * does not count): after it, a verification of that chain could come out otherwise. */
static int64_t path_expires(STACK_OF(X509) * path, STACK_OF(X509_CRL) * crls)
{
    int64_t earliest = INT64_MAX;
    for (int i = 0; i < sk_X509_num(path); i++) {
        int64_t not_after = kp_cert_not_after(sk_X509_value(path, i));
        if (not_after < earliest)
            earliest = not_after;
    }
    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(crls, i);
        int64_t next_update = kp_crl_next_update(crl);
        if (next_update > 0 && next_update < earliest && crl_of_path(crl, path))
            earliest = next_update;
    }
    return earliest;
}

/* Verifies the presented chain against anchors for client authentication. When it verifies,
 * *good_until (may be NULL) is path_expires of the path built and the CRLs. */
static bool verify_client_chain(STACK_OF(X509) * anchors, STACK_OF(X509_CRL) * crls,
                                STACK_OF(X509) * chain, int64_t now, char *why, size_t why_size,
                                int64_t *good_until, struct kp_error *err, enum kp_result *rc)
{
    X509 *leaf = sk_X509_value(chain, 0);
    STACK_OF(X509) *untrusted = NULL;
    if (sk_X509_num(chain) > 1) {
        untrusted = sk_X509_dup(chain);
        if (!untrusted) {
            *rc = kp_error_set(err, KP_ERR_IO, "out of memory");
            return false;
        }
        (void)sk_X509_delete(untrusted, 0);
    }
    /* A CA without a CRL is not checked for revocation (a second CA appended to the bundle
     * during a rotation has none yet); a CA with one is checked fully. */
    struct kp_verify_params params = {
        .anchors = anchors,
        .untrusted = untrusted,
        .crls = crls,
        .crl_scope = KP_CRL_PUBLISHED_ISSUERS,
        .at = now,
        .purpose = KP_PURPOSE_CLIENT,
    };
    struct kp_verify_result result = {0};
    *rc = kp_verify_chain(&params, leaf, &result, err);
    sk_X509_free(untrusted);
    bool ok = *rc == KP_OK && result.reason == KP_VERIFY_OK;
    if (ok && good_until)
        *good_until = path_expires(result.chain ? result.chain : chain, crls);
    if (*rc == KP_ERR_INVALID) {
        /* Over the limits (too many presented certificates): a verdict, not a failure. */
        snprintf(why, why_size, "%s", err ? err->message : "invalid certificate chain");
        *rc = KP_OK;
    } else if (*rc == KP_OK && !ok) {
        snprintf(why, why_size, "%s", result.message);
    }
    kp_verify_result_wipe(&result);
    return ok;
}

/* The chain cache's key for one CA slot: SHA-256 over the slot's name and the chain's digest
 * (chain_digest). Slots differ in their first byte and are followed by a fixed-size digest. */
static bool slot_key(const unsigned char *chain_digest, bool front_proxy,
                     unsigned char key[KP_VERDICT_KEY_SIZE])
{
    unsigned char input[16 + KP_VERDICT_KEY_SIZE];
    const char *slot = front_proxy ? "requestheader\n" : "x509\n";
    size_t slot_len = strlen(slot);
    memcpy(input, slot, slot_len);
    memcpy(input + slot_len, chain_digest, KP_VERDICT_KEY_SIZE);
    return kp_verdict_key(input, slot_len + KP_VERDICT_KEY_SIZE, key);
}

/* The SHA-256 over the SHA-256 of each presented certificate's DER, leaf first: the same leaf
 * with other intermediates is another chain, for they are part of what was verified. Made once
 * per connection when there is a memo. */
static bool chain_digest(STACK_OF(X509) * chain, struct kp_authn_memo *memo,
                         unsigned char digest[KP_VERDICT_KEY_SIZE])
{
    if (memo && memo->chain_digest_known) {
        memcpy(digest, memo->chain_digest, KP_VERDICT_KEY_SIZE);
        return true;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (int i = 0; ok && i < sk_X509_num(chain); i++) {
        unsigned char cert_digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        ok = X509_digest(sk_X509_value(chain, i), EVP_sha256(), cert_digest, &len) == 1 &&
             EVP_DigestUpdate(md, cert_digest, len) == 1;
    }
    unsigned int digest_len = 0;
    ok =
        ok && EVP_DigestFinal_ex(md, digest, &digest_len) == 1 && digest_len == KP_VERDICT_KEY_SIZE;
    EVP_MD_CTX_free(md);
    if (ok && memo) {
        memcpy(memo->chain_digest, digest, KP_VERDICT_KEY_SIZE);
        memo->chain_digest_known = true;
    }
    return ok;
}

/* The chain cache's key for this request's chain and slot; false without a cache (or when
 * OpenSSL could not hash). */
static bool chain_cache_key(const struct kp_authn *authn, const struct kp_authn_input *input,
                            bool front_proxy, unsigned char key[KP_VERDICT_KEY_SIZE])
{
    unsigned char digest[KP_VERDICT_KEY_SIZE];
    return authn->chain_cache && chain_digest(input->peer_chain, input->memo, digest) &&
           slot_key(digest, front_proxy, key);
}

/* verify_client_chain, unless the connection's memo says this authenticator verified the same
 * chain against the same CA (slot) a short while ago, or its chain cache says so for any
 * connection. Only verified chains are cached: a refusal is either cheap (no anchor could
 * issue the chain) or ends the request, and unauthenticated clients must not be able to fill
 * the cache with chains of their own making. */
static bool verify_memoized(const struct kp_authn *authn, const struct kp_authn_input *input,
                            bool front_proxy, int64_t now, char *why, size_t why_size,
                            struct kp_error *err, enum kp_result *rc)
{
    struct kp_authn_memo *memo = input->memo;
    int64_t *until = !memo ? NULL : front_proxy ? &memo->requestheader_until : &memo->x509_until;
    bool known = memo && memo->authn_id == authn->id;
    if (known && now < *until)
        return true;
    if (known && front_proxy && now < memo->requestheader_refused_until) {
        snprintf(why, why_size, "%s", memo->requestheader_why);
        return false;
    }
    unsigned char key[KP_VERDICT_KEY_SIZE];
    bool keyed = chain_cache_key(authn, input, front_proxy, key);
    json_t *unused = NULL;
    bool ok = false;
    /* When the verdict ends: a verification's, or the cached one's (never a new minute). */
    int64_t verdict_until = 0;
    if (keyed && kp_verdict_cache_get(authn->chain_cache, key, now, &unused, &ok, &verdict_until)) {
        json_decref(unused);
    } else {
        int64_t good_until = INT64_MAX;
        ok = verify_client_chain(front_proxy ? authn->requestheader_ca : authn->client_ca,
                                 front_proxy ? authn->requestheader_crls : authn->client_crls,
                                 input->peer_chain, now, why, why_size, &good_until, err, rc);
        if (*rc != KP_OK)
            return ok;
        verdict_until = ok && good_until < now + KP_AUTHN_MEMO_SECONDS
                            ? good_until
                            : now + KP_AUTHN_MEMO_SECONDS;
        if (ok && keyed)
            kp_verdict_cache_put(authn->chain_cache, key, NULL, true, verdict_until, now);
    }
    if (!memo || (!ok && !front_proxy))
        return ok;
    if (!known) {
        /* Another authenticator (a reload): its verdicts go, what the leaf says stays. */
        memo->authn_id = authn->id;
        memo->x509_until = memo->requestheader_until = memo->requestheader_refused_until = 0;
        memo->requestheader_why[0] = '\0';
    }
    if (ok) {
        *until = verdict_until;
    } else {
        memo->requestheader_refused_until = verdict_until;
        snprintf(memo->requestheader_why, sizeof(memo->requestheader_why), "%s", why);
    }
    return ok;
}

static void leaf_fingerprint_extra(X509 *leaf, char *out, size_t size)
{
    /* Upstream's credential id: lower-case hex without separators, which is what
     * kp_cert_fingerprint writes. */
    char hex[2 * 32 + 1];
    kp_cert_fingerprint(leaf, "sha256", hex, sizeof(hex));
    snprintf(out, size, "X509SHA256=%s", hex);
}

/* The leaf's CN and organizations (as groups), read from the certificate once per connection:
 * the ASN.1 string conversions cost more than the rest of an x509 authentication. */
static enum kp_result leaf_names(X509 *leaf, struct kp_authn_memo *memo, char *cn, size_t size,
                                 struct kp_strlist *organizations, struct kp_error *err)
{
    if (memo && memo->leaf_names_known) {
        snprintf(cn, size, "%s", memo->leaf_cn);
        for (size_t at = 0; at < memo->leaf_organizations_len;) {
            const char *name = memo->leaf_organizations + at;
            enum kp_result rc = kp_strlist_add(organizations, name, err);
            if (rc != KP_OK)
                return rc;
            at += strlen(name) + 1;
        }
        return KP_OK;
    }
    kp_cert_common_name(leaf, cn, size);
    enum kp_result rc = kp_cert_organizations(leaf, organizations, err);
    if (rc != KP_OK || !memo || strlen(cn) >= sizeof(memo->leaf_cn))
        return rc;
    size_t used = 0;
    for (size_t i = 0; i < organizations->count; i++) {
        size_t len = strlen(organizations->items[i]) + 1;
        if (used + len > sizeof(memo->leaf_organizations))
            return KP_OK; /* does not fit: read every time */
        memcpy(memo->leaf_organizations + used, organizations->items[i], len);
        used += len;
    }
    snprintf(memo->leaf_cn, sizeof(memo->leaf_cn), "%s", cn);
    memo->leaf_organizations_len = used;
    memo->leaf_names_known = true;
    return KP_OK;
}

/* How both certificate authenticators start: without their CA or a client chain the request is
 * not theirs (AUTH_PASS); a chain that does not verify against their CA is AUTH_FAIL, with the
 * reason under `name`; AUTH_OK: the chain verified, go on to the names. */
static enum auth_answer chain_verified(const struct kp_authn *authn,
                                       const struct kp_authn_input *input, bool front_proxy,
                                       const char *name, int64_t now,
                                       struct kp_authn_result *result, struct kp_error *err,
                                       enum kp_result *rc)
{
    const STACK_OF(X509) *ca = front_proxy ? authn->requestheader_ca : authn->client_ca;
    if (!ca || !input->peer_chain || sk_X509_num(input->peer_chain) == 0)
        return AUTH_PASS;
    char why[384] = "";
    if (!verify_memoized(authn, input, front_proxy, now, why, sizeof(why), err, rc)) {
        if (*rc == KP_OK)
            kp_authn_set_reason(result, "%s: client certificate rejected: %s", name, why);
        return AUTH_FAIL;
    }
    return AUTH_OK;
}

enum auth_answer kp_authn_x509(const struct kp_authn *authn, const struct kp_authn_input *input,
                               int64_t now, struct kp_user *user, struct kp_authn_result *result,
                               struct kp_error *err, enum kp_result *rc)
{
    enum auth_answer gate = chain_verified(authn, input, false, "x509", now, result, err, rc);
    if (gate != AUTH_OK)
        return gate;
    X509 *leaf = sk_X509_value(input->peer_chain, 0);
    struct kp_authn_memo *memo = input->memo;
    char cn[256];
    struct kp_strlist organizations = {0};
    if ((*rc = leaf_names(leaf, memo, cn, sizeof(cn), &organizations, err)) != KP_OK) {
        kp_strlist_wipe(&organizations);
        return AUTH_FAIL;
    }
    if (!cn[0]) {
        /* upstream: no CN, not this authenticator's user. The reason is only for the log of a
         * request that ends up refused. */
        kp_strlist_wipe(&organizations);
        kp_authn_set_reason(result, "x509: client certificate has no common name (no user)");
        return AUTH_PASS;
    }
    char credential[96];
    if (memo && memo->x509_credential[0]) {
        memcpy(credential, memo->x509_credential, sizeof(credential));
    } else {
        leaf_fingerprint_extra(leaf, credential, sizeof(credential));
        if (memo)
            memcpy(memo->x509_credential, credential, sizeof(credential));
    }
    *rc = kp_authn_user_set(user, cn, NULL, err);
    /* The organizations, in order, are the groups. */
    kp_strlist_wipe(&user->groups);
    user->groups = organizations;
    if (*rc != KP_OK ||
        (*rc = kp_authn_user_add_extra(user, "authentication.kubernetes.io/credential-id",
                                       credential, err)) != KP_OK)
        return AUTH_FAIL;
    result->method = "x509";
    return AUTH_OK;
}

static bool header_name_is(const char *name, const char *wanted)
{
    return strcasecmp(name, wanted) == 0;
}

/* Percent-decodes an extra key and lower-cases it (headerrequest.unescapeExtraKey). */
static void extra_key(const char *encoded, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = encoded; *p && n + 1 < size; p++) {
        if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = {p[1], p[2], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            out[n++] = (char)tolower((unsigned char)*p);
        }
    }
    out[n] = '\0';
}

enum auth_answer kp_authn_requestheader(const struct kp_authn *authn,
                                        const struct kp_authn_input *input, int64_t now,
                                        struct kp_user *user, struct kp_authn_result *result,
                                        struct kp_error *err, enum kp_result *rc)
{
    enum auth_answer gate =
        chain_verified(authn, input, true, "requestheader", now, result, err, rc);
    if (gate != AUTH_OK)
        return gate;
    char cn[256];
    kp_cert_common_name(sk_X509_value(input->peer_chain, 0), cn, sizeof(cn));
    if (authn->allowed_names.count && !kp_strlist_contains(&authn->allowed_names, cn)) {
        kp_authn_set_reason(
            result, "requestheader: x509: subject with cn=%s is not in the allowed list", cn);
        return AUTH_FAIL;
    }
    const char *name = NULL;
    for (size_t h = 0; h < authn->username_headers.count && !name; h++)
        for (size_t i = 0; i < input->header_count && !name; i++)
            if (header_name_is(input->headers[i].name, authn->username_headers.items[h]) &&
                input->headers[i].value[0])
                name = input->headers[i].value;
    if (!name)
        return AUTH_PASS;
    if ((*rc = kp_authn_user_set(user, name, NULL, err)) != KP_OK)
        return AUTH_FAIL;
    /* Every non-empty value (headerrequest.allHeaderValues skips empty ones). */
    for (size_t h = 0; h < authn->group_headers.count; h++)
        for (size_t i = 0; i < input->header_count; i++)
            if (header_name_is(input->headers[i].name, authn->group_headers.items[h]) &&
                input->headers[i].value[0] &&
                (*rc = kp_strlist_add(&user->groups, input->headers[i].value, err)) != KP_OK)
                return AUTH_FAIL;
    for (size_t h = 0; h < authn->extra_prefixes.count; h++) {
        const char *prefix = authn->extra_prefixes.items[h];
        size_t plen = strlen(prefix);
        for (size_t i = 0; i < input->header_count; i++) {
            const char *hname = input->headers[i].name;
            if (strncasecmp(hname, prefix, plen) != 0 || !hname[plen])
                continue;
            char key[256];
            extra_key(hname + plen, key, sizeof(key));
            if ((*rc = kp_authn_user_add_extra(user, key, input->headers[i].value, err)) != KP_OK)
                return AUTH_FAIL;
        }
    }
    result->method = "requestheader";
    return AUTH_OK;
}
