/*
 * verify/verify.h - chain verification for a role, as the cluster's components perform it.
 *
 * One function answers "does this certificate, with these intermediates, chain to one of these
 * anchors, at this time, for this purpose and peer name, unrevoked by these CRLs?" and says why
 * not with a reason from a closed list (BearSSL's habit: rejections are data, pinned by tests).
 * "Rejected" is a verdict in struct kp_verify_result; a kp_result error means the check could
 * not run. Built on OpenSSL's X509_verify_cert with kpki's policy:
 *  - anchors: every certificate given, self-signed or not (partial chains allowed);
 *  - time: always passed in (never read from the clock here);
 *  - purpose: TLS server or client per the extended key usage (a certificate without the
 *    extension passes, as in Go); CA certificates must carry CA:TRUE, keyCertSign if they have
 *    KeyUsage, and must respect path lengths and name constraints; unknown critical extensions
 *    are refused;
 *  - names: checked against SANs only, never the subject CN (Go and Kubernetes semantics);
 *  - revocation: with CRLs, every certificate of the path must be covered by a valid CRL from
 *    its issuer (OpenSSL's CRL_CHECK_ALL); or, with KP_CRL_PUBLISHED_ISSUERS, every certificate
 *    whose issuer has a CRL among those given (an issuer without one is not checked).
 * Thread-safe; the inputs are borrowed for the call.
 */
#ifndef KP_VERIFY_VERIFY_H
#define KP_VERIFY_VERIFY_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/crypto.h"

enum kp_verify_purpose {
    KP_PURPOSE_ANY,    /* chain and validity only */
    KP_PURPOSE_SERVER, /* TLS server authentication */
    KP_PURPOSE_CLIENT, /* TLS client authentication */
};

/* Why a chain was rejected. A closed list: new OpenSSL codes map to KP_VERIFY_OTHER. */
enum kp_verify_reason {
    KP_VERIFY_OK = 0,
    KP_VERIFY_EXPIRED,
    KP_VERIFY_NOT_YET_VALID,
    KP_VERIFY_UNKNOWN_AUTHORITY,   /* no path to any anchor */
    KP_VERIFY_BAD_SIGNATURE,
    KP_VERIFY_NOT_A_CA,            /* an issuer without CA:TRUE */
    KP_VERIFY_PATH_LENGTH,         /* a CA's pathLenConstraint exceeded */
    KP_VERIFY_CA_KEY_USAGE,        /* an issuer whose KeyUsage lacks keyCertSign */
    KP_VERIFY_WRONG_USAGE,         /* extended key usage does not allow the purpose */
    KP_VERIFY_NAME_MISMATCH,       /* the peer name is not in the SANs */
    KP_VERIFY_NAME_CONSTRAINTS,
    KP_VERIFY_REVOKED,
    KP_VERIFY_CRL_PROBLEM,         /* CRL missing, expired, not yet valid, or badly signed */
    KP_VERIFY_CRITICAL_EXTENSION,  /* an unknown critical extension */
    KP_VERIFY_DEPTH,               /* the chain is longer than the maximum depth */
    KP_VERIFY_MALFORMED,           /* a certificate could not be decoded or is invalid */
    KP_VERIFY_OTHER,
};

/* "expired", "unknown-authority", ... (stable identifiers for JSON and tests). */
const char *kp_verify_reason_name(enum kp_verify_reason reason);

/* Which certificates of the path need a CRL when CRLs are given. */
enum kp_crl_scope {
    /* Every certificate, its issuer's CRL: one without is rejected (`unable to get certificate
     * CRL`). What `kpki verify --crl` and `kpki check` use. */
    KP_CRL_EVERY_ISSUER = 0,
    /* Only certificates whose issuer published a CRL among those given: a CA with no CRL at all
     * is not checked, one with a CRL is checked fully (a stale, badly signed or foreign CRL of
     * that issuer's name is still a rejection). The API server's choice, so that a second CA
     * appended to --client-ca-file (a CA rotation) works before it has a CRL of its own. */
    KP_CRL_PUBLISHED_ISSUERS,
};

struct kp_verify_params {
    STACK_OF(X509) *anchors;   /* required, at least one */
    STACK_OF(X509) *untrusted; /* intermediates offered by the peer; may be NULL */
    STACK_OF(X509_CRL) *crls;  /* may be NULL: no revocation checking */
    enum kp_crl_scope crl_scope; /* with crls: which certificates need one (default: every) */
    int64_t at;                /* unix seconds */
    enum kp_verify_purpose purpose;
    const char *dns_name;      /* peer name to match against SANs; NULL for none */
    const struct kp_ip *ip;    /* peer address to match; NULL for none */
    int max_depth;             /* intermediates allowed between leaf and anchor; 0: the default
                                  of 8; KP_VERIFY_NO_INTERMEDIATES: none */
};

#define KP_VERIFY_NO_INTERMEDIATES (-1)

struct kp_verify_result {
    enum kp_verify_reason reason;
    int depth;            /* position in the chain of the certificate at fault (0 = leaf) */
    char message[384];    /* one line: what and which certificate */
    STACK_OF(X509) *chain; /* the path built (leaf first), when accepted; free with
                              kp_verify_result_wipe */
};

void kp_verify_result_wipe(struct kp_verify_result *result);

/* Limits on what one call accepts, so pathological inputs stay cheap. */
#define KP_VERIFY_MAX_ANCHORS 256
#define KP_VERIFY_MAX_UNTRUSTED 64

/* Verifies leaf. Returns KP_OK when the check ran (result->reason says the verdict), or an error
 * (KP_ERR_INVALID for inputs over the limits or without anchors) when it could not. */
KP_MUST_CHECK enum kp_result kp_verify_chain(const struct kp_verify_params *params, X509 *leaf,
                                             struct kp_verify_result *result,
                                             struct kp_error *err);

#endif
