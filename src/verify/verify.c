/*
 * Implementation notes
 *
 * X509_verify_cert does the path building and the RFC 5280 §6.1 checks; kpki's part is the
 * policy (flags and parameters below) and the translation of OpenSSL's error codes into the
 * closed list of reasons. Choices:
 *  - X509_V_FLAG_PARTIAL_CHAIN: an anchor need not be self-signed (an intermediate kept as the
 *    trust anchor of one connection, e.g. the front-proxy CA signed by an offline root).
 *  - Not X509_V_FLAG_X509_STRICT: it demands AKID/SKID and KeyUsage that Go (and so every
 *    Kubernetes component) does not, and would reject externally made certificates they accept.
 *  - Purpose via X509_VERIFY_PARAM_set_purpose(SSL_SERVER/SSL_CLIENT): checks the leaf's EKU
 *    and, like Go, the EKU of every CA in the path when present.
 *  - Names via set1_host / set1_ip with X509_CHECK_FLAG_NEVER_CHECK_SUBJECT: SANs only.
 *  - Depth: OpenSSL counts intermediates; kpki's max_depth is the same count.
 * Pathological inputs are bounded by the caps in verify.h: OpenSSL's chain building is linear in
 * the untrusted set per step, and the depth limit bounds the steps.
 */
#include "verify/verify.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const reason_names[] = {
    [KP_VERIFY_OK] = "ok",
    [KP_VERIFY_EXPIRED] = "expired",
    [KP_VERIFY_NOT_YET_VALID] = "not-yet-valid",
    [KP_VERIFY_UNKNOWN_AUTHORITY] = "unknown-authority",
    [KP_VERIFY_BAD_SIGNATURE] = "bad-signature",
    [KP_VERIFY_NOT_A_CA] = "not-a-ca",
    [KP_VERIFY_PATH_LENGTH] = "path-length-exceeded",
    [KP_VERIFY_CA_KEY_USAGE] = "ca-key-usage",
    [KP_VERIFY_WRONG_USAGE] = "wrong-usage",
    [KP_VERIFY_NAME_MISMATCH] = "name-mismatch",
    [KP_VERIFY_NAME_CONSTRAINTS] = "name-constraints",
    [KP_VERIFY_REVOKED] = "revoked",
    [KP_VERIFY_CRL_PROBLEM] = "crl-problem",
    [KP_VERIFY_CRITICAL_EXTENSION] = "unknown-critical-extension",
    [KP_VERIFY_DEPTH] = "depth-exceeded",
    [KP_VERIFY_MALFORMED] = "malformed",
    [KP_VERIFY_OTHER] = "other",
};

const char *kp_verify_reason_name(enum kp_verify_reason reason)
{
    if ((unsigned)reason < sizeof(reason_names) / sizeof(reason_names[0])) {
        return reason_names[reason];
    }
    return "other";
}

void kp_verify_result_wipe(struct kp_verify_result *result)
{
    if (result->chain != NULL) {
        sk_X509_pop_free(result->chain, X509_free);
    }
    memset(result, 0, sizeof(*result));
}

static enum kp_verify_reason reason_of(int code)
{
    switch (code) {
    case X509_V_OK:
        return KP_VERIFY_OK;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return KP_VERIFY_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return KP_VERIFY_NOT_YET_VALID;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        return KP_VERIFY_UNKNOWN_AUTHORITY;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return KP_VERIFY_BAD_SIGNATURE;
    case X509_V_ERR_INVALID_CA:
        return KP_VERIFY_NOT_A_CA;
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
        return KP_VERIFY_PATH_LENGTH;
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
        return KP_VERIFY_CA_KEY_USAGE;
    case X509_V_ERR_INVALID_PURPOSE:
        return KP_VERIFY_WRONG_USAGE;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
        return KP_VERIFY_NAME_MISMATCH;
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_SUBTREE_MINMAX:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
    case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
        return KP_VERIFY_NAME_CONSTRAINTS;
    case X509_V_ERR_CERT_REVOKED:
        return KP_VERIFY_REVOKED;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
        return KP_VERIFY_CRL_PROBLEM;
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
        return KP_VERIFY_CRITICAL_EXTENSION;
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        return KP_VERIFY_DEPTH;
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_INVALID_EXTENSION:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_INVALID_POLICY_EXTENSION:
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
    case X509_V_ERR_EMPTY_SUBJECT_ALT_NAME:
    case X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL:
    case X509_V_ERR_SIGNATURE_ALGORITHM_MISMATCH:
    case X509_V_ERR_UNSUPPORTED_SIGNATURE_ALGORITHM:
    case X509_V_ERR_ISSUER_NAME_EMPTY:
    case X509_V_ERR_SUBJECT_NAME_EMPTY:
    case X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER:
    case X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER:
    case X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA:
    case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
    case X509_V_ERR_CA_CERT_MISSING_KEY_USAGE:
    case X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3:
    case X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA:
    case X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN:
        return KP_VERIFY_MALFORMED;
    default:
        return KP_VERIFY_OTHER;
    }
}

static void describe_failure(X509_STORE_CTX *ctx, struct kp_verify_result *result)
{
    int code = X509_STORE_CTX_get_error(ctx);
    result->reason = reason_of(code);
    result->depth = X509_STORE_CTX_get_error_depth(ctx);
    X509 *at_fault = X509_STORE_CTX_get_current_cert(ctx);
    /* OpenSSL reports a CA:TRUE issuer whose KeyUsage lacks keyCertSign as an invalid CA;
     * kpki names the actual fault. */
    if (result->reason == KP_VERIFY_NOT_A_CA && at_fault != NULL &&
        (X509_get_extension_flags(at_fault) & EXFLAG_CA) &&
        (X509_get_extension_flags(at_fault) & EXFLAG_KUSAGE) &&
        !(X509_get_key_usage(at_fault) & KU_KEY_CERT_SIGN)) {
        result->reason = KP_VERIFY_CA_KEY_USAGE;
    }
    char subject[256] = "";
    if (at_fault != NULL) {
        kp_name_to_string(X509_get_subject_name(at_fault), subject, sizeof(subject));
    }
    const char *text = result->reason == KP_VERIFY_CA_KEY_USAGE
                           ? "issuer's key usage does not include certificate signing"
                           : X509_verify_cert_error_string(code);
    snprintf(result->message, sizeof(result->message), "%s (depth %d%s%s)", text, result->depth,
             subject[0] != '\0' ? ": " : "", subject);
}

/* KP_CRL_PUBLISHED_ISSUERS: "no CRL from this issuer" is not a failure. OpenSSL reports it
 * (X509_V_ERR_UNABLE_TO_GET_CRL) only when no CRL names the issuer at all; a near match (stale,
 * foreign key, bad signature) gets its own error and still fails. Accepting it here skips the
 * revocation check of that one certificate and goes on with the rest of the path. */
static int skip_unpublished_crl(int ok, X509_STORE_CTX *ctx)
{
    if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL) {
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    }
    return ok;
}

static enum kp_result configure(X509_STORE_CTX *ctx, const struct kp_verify_params *params,
                                struct kp_error *err)
{
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
    if (params->crls != NULL && sk_X509_CRL_num(params->crls) > 0) {
        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
        X509_STORE_CTX_set0_crls(ctx, params->crls);
        if (params->crl_scope == KP_CRL_PUBLISHED_ISSUERS) {
            X509_STORE_CTX_set_verify_cb(ctx, skip_unpublished_crl);
        }
    }
    X509_VERIFY_PARAM_set_flags(param, flags);
    X509_VERIFY_PARAM_set_time(param, (time_t)params->at);
    X509_VERIFY_PARAM_set_depth(param, params->max_depth == 0   ? 8
                                       : params->max_depth < 0 ? 0
                                                               : params->max_depth);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (params->purpose != KP_PURPOSE_ANY &&
        !X509_VERIFY_PARAM_set_purpose(param, params->purpose == KP_PURPOSE_SERVER
                                                  ? X509_PURPOSE_SSL_SERVER
                                                  : X509_PURPOSE_SSL_CLIENT)) {
        return kp_error_openssl(err, KP_ERR_INTERNAL, "cannot set the verification purpose");
    }
    if (params->dns_name != NULL &&
        !X509_VERIFY_PARAM_set1_host(param, params->dns_name, strlen(params->dns_name))) {
        return kp_error_openssl(err, KP_ERR_INVALID, "invalid peer name '%s'", params->dns_name);
    }
    if (params->ip != NULL &&
        !X509_VERIFY_PARAM_set1_ip(param, params->ip->bytes, kp_ip_len(params->ip))) {
        return kp_error_openssl(err, KP_ERR_INVALID, "invalid peer address");
    }
    return KP_OK;
}

/* The verdict X509_verify_cert reaches for a lone leaf that no anchor can have issued (no
 * anchor's subject is the leaf's issuer, the leaf is no anchor itself and not self-issued),
 * reached without building a store. The front-proxy authenticator sees every ordinary client
 * certificate first (kube-apiserver's order), so this is the common refusal; the message is
 * the one describe_failure would write. */
static bool no_anchor_can_issue(const struct kp_verify_params *params, X509 *leaf,
                                struct kp_verify_result *result)
{
    if (params->untrusted != NULL && sk_X509_num(params->untrusted) > 0) {
        return false;
    }
    const X509_NAME *issuer = X509_get_issuer_name(leaf);
    if (X509_NAME_cmp(issuer, X509_get_subject_name(leaf)) == 0) {
        return false;
    }
    for (int i = 0; i < sk_X509_num(params->anchors); i++) {
        X509 *anchor = sk_X509_value(params->anchors, i);
        if (X509_NAME_cmp(issuer, X509_get_subject_name(anchor)) == 0 ||
            X509_cmp(leaf, anchor) == 0) {
            return false;
        }
    }
    char subject[256] = "";
    kp_name_to_string(X509_get_subject_name(leaf), subject, sizeof(subject));
    result->reason = KP_VERIFY_UNKNOWN_AUTHORITY;
    result->depth = 0;
    snprintf(result->message, sizeof(result->message), "%s (depth 0%s%s)",
             X509_verify_cert_error_string(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
             subject[0] != '\0' ? ": " : "", subject);
    return true;
}

enum kp_result kp_verify_chain(const struct kp_verify_params *params, X509 *leaf,
                               struct kp_verify_result *result, struct kp_error *err)
{
    memset(result, 0, sizeof(*result));
    int anchors = params->anchors != NULL ? sk_X509_num(params->anchors) : 0;
    int untrusted = params->untrusted != NULL ? sk_X509_num(params->untrusted) : 0;
    if (anchors == 0) {
        return kp_error_set(err, KP_ERR_INVALID, "no trust anchors given");
    }
    if (anchors > KP_VERIFY_MAX_ANCHORS || untrusted > KP_VERIFY_MAX_UNTRUSTED) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "too many certificates (at most %d anchors and %d intermediates)",
                            KP_VERIFY_MAX_ANCHORS, KP_VERIFY_MAX_UNTRUSTED);
    }
    if (no_anchor_can_issue(params, leaf, result)) {
        return KP_OK;
    }
    ERR_clear_error();
    enum kp_result rc = KP_OK;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL) {
        rc = kp_error_openssl(err, KP_ERR_IO, "cannot set up verification");
        goto done;
    }
    for (int i = 0; i < anchors; i++) {
        if (!X509_STORE_add_cert(store, sk_X509_value(params->anchors, i))) {
            rc = kp_error_openssl(err, KP_ERR_INVALID, "cannot use trust anchor %d", i + 1);
            goto done;
        }
    }
    if (!X509_STORE_CTX_init(ctx, store, leaf, params->untrusted)) {
        rc = kp_error_openssl(err, KP_ERR_IO, "cannot set up verification");
        goto done;
    }
    rc = configure(ctx, params, err);
    if (rc != KP_OK) {
        goto done;
    }
    int verdict = X509_verify_cert(ctx);
    if (verdict == 1) {
        result->reason = KP_VERIFY_OK;
        result->chain = X509_STORE_CTX_get1_chain(ctx);
        snprintf(result->message, sizeof(result->message), "ok");
    } else if (verdict == 0 || X509_STORE_CTX_get_error(ctx) != X509_V_OK) {
        describe_failure(ctx, result);
    } else {
        rc = kp_error_openssl(err, KP_ERR_INTERNAL, "certificate verification could not run");
    }
done:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}
