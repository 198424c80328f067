/*
 * auth/authn.h - the API server's authenticators, in kube-apiserver's order and semantics
 * (k8s.io/apiserver/pkg/authentication and pkg/kubeapiserver/authenticator/config.go):
 *
 *   1. request header (front proxy): the client certificate verifies against the front-proxy
 *      CA (clientAuth EKU, optional CRLs) and its CN is an allowed name; the identity is then
 *      X-Remote-User,
 *      X-Remote-Group (every value), X-Remote-Extra-<key>;
 *   2. x509 client certificate: verifies against the client CA (with the other presented
 *      certificates as intermediates, clientAuth EKU, optional CRLs); user = CN, groups = O,
 *      extra authentication.kubernetes.io/credential-id = X509SHA256=<hex>;
 *   3. bearer token, service account: a JWT whose unverified `iss` is an accepted issuer;
 *      signature by the key the `kid` names with the algorithm the key fixes; exp/nbf/iat with
 *      60 s leeway; audiences; the service account (and the pod, secret or node it is bound to)
 *      must still exist with the same UID; legacy secret-based tokens also need their Secret;
 *   4. bearer token, bootstrap: `<id>.<secret>` against Secret kube-system/bootstrap-token-<id>
 *      (type, constant-time secret comparison, expiration, usage-bootstrap-authentication);
 *   then system:authenticated is added. (A request that names no proxied user meets 1 last,
 *   and only when 2-4 did not authenticate it: it can then only fail, and its failure heads the
 *   reasons as upstream's order would put it; kp_authn_request.) When every authenticator
 *   passes on the request and none failed, the request is anonymous if that is enabled
 *   (system:anonymous, system:unauthenticated), else refused; if one failed (a certificate
 *   that does not verify, a token with a bad signature), it is refused even when anonymous is
 *   enabled (upstream's FailOnError union).
 *
 * Objects are looked up through config->lookup (the API server's storage); auth never reaches
 * up into the API layer. Thread-safe: an authenticator is immutable after kp_authn_new, but for its
 * verdict caches (verified tokens and client chains, auth/verdict_cache.h), which lock
 * themselves.
 */
#ifndef KP_AUTH_AUTHN_H
#define KP_AUTH_AUTHN_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "jwt/jwt.h"

/* go-jose's leeway for exp, nbf and iat, which Kubernetes uses. */
#define KP_SA_TOKEN_LEEWAY 60
/* The issuer of legacy Secret-based service-account tokens. */
#define KP_SA_LEGACY_ISSUER "kubernetes/serviceaccount"

struct kp_authn_config {
    STACK_OF(X509) *client_ca;          /* --client-ca-file; NULL disables x509 */
    /* Revocation lists (optional): a certificate of the path is checked when its issuer has a
     * CRL here; an issuer without one is not (KP_CRL_PUBLISHED_ISSUERS, verify.h). */
    STACK_OF(X509_CRL) *client_crls;        /* kpki --client-crl-file */
    STACK_OF(X509) *requestheader_ca;       /* --requestheader-client-ca-file; NULL disables */
    STACK_OF(X509_CRL) *requestheader_crls; /* kpki --requestheader-client-crl-file */
    const struct kp_strlist *requestheader_allowed_names; /* empty or NULL: any name */
    const struct kp_strlist *requestheader_username_headers; /* NULL: X-Remote-User */
    const struct kp_strlist *requestheader_group_headers;    /* NULL: X-Remote-Group */
    const struct kp_strlist *requestheader_extra_prefixes;   /* NULL: X-Remote-Extra- */
    EVP_PKEY **sa_keys;                 /* --service-account-key-file public keys */
    size_t sa_key_count;
    const struct kp_strlist *issuers;   /* --service-account-issuer (the first signs) */
    const struct kp_strlist *api_audiences; /* --api-audiences; NULL or empty: the issuers */
    bool bootstrap_tokens;              /* --enable-bootstrap-token-auth */
    bool anonymous;                     /* --anonymous-auth */
    kp_object_lookup_fn lookup;         /* serviceaccounts, pods, secrets, nodes */
    void *lookup_context;
    size_t token_cache_entries;         /* verified service-account tokens remembered (by
                                           SHA-256) so signatures are checked once; 0: none.
                                           Existence and UIDs are still checked every time. */
    size_t chain_cache_entries;         /* client certificate chains verified (against the
                                           client or front-proxy CA) remembered for
                                           KP_AUTHN_MEMO_SECONDS at most, by SHA-256 over the
                                           chain, so a client reconnecting with the same
                                           certificate is not verified again; 0: none. */
};

/* How long a verified token's entry lives at most (legacy tokens have no exp). */
#define KP_TOKEN_CACHE_MAX_TTL 600

struct kp_authn;

/* Copies what it needs (certificates and keys are referenced, lists copied) and prepares the
 * service-account keys for verification (kp_jwt_key_prepare): a key OpenSSL cannot prepare is
 * an error (KP_ERR_IO, naming its kid). */
KP_MUST_CHECK enum kp_result kp_authn_new(const struct kp_authn_config *config,
                                          struct kp_authn **authn, struct kp_error *err);
void kp_authn_free(struct kp_authn *authn); /* NULL is a no-op */

/* The client CA certificates x509 authentication uses (a new stack holding new references:
 * sk_X509_pop_free(stack, X509_free)); empty when x509 is off, NULL when out of memory. */
STACK_OF(X509) *kp_authn_client_cas(const struct kp_authn *authn);

/* Hits and misses of the verified-token cache (zeros without one). */
void kp_authn_token_cache_stats(const struct kp_authn *authn, uint64_t *hits, uint64_t *misses);
/* Hits and misses of the client-chain cache (zeros without one). */
void kp_authn_chain_cache_stats(const struct kp_authn *authn, uint64_t *hits, uint64_t *misses);

/* One request header (borrowed). */
struct kp_header {
    const char *name;
    const char *value;
};

/* How long a verified client chain is taken as verified without checking it again, on its
 * connection (struct kp_authn_memo) and on any other (the chain cache): at most, and never past
 * the notAfter of a certificate of the path or the nextUpdate of its CAs' CRLs. A new trust
 * snapshot (a reloaded CA, CRL or key) ends both at once. */
#define KP_AUTHN_MEMO_SECONDS 60

/* What one TLS connection remembers of its client chain's verification, so that keep-alive
 * requests do not verify the same chain (which cannot change within a connection) again:
 * which authenticator verified it and until when, for the client CA and the front-proxy CA.
 * Zero-initialise; owned by the connection; one request at a time. */
struct kp_authn_memo {
    uint64_t authn_id;
    int64_t x509_until;
    int64_t requestheader_until;
    /* A chain the front-proxy CA refused (a cluster-CA client that sends X-Remote-User, or
     * one no other authenticator accepted, where kubeadm configures both CAs): refused again
     * until then, for the same reason. */
    int64_t requestheader_refused_until;
    char requestheader_why[192];
    /* What the leaf says, read once (it cannot change within the connection; kept when the
     * authenticator is reloaded): its credential-id extra ("" before), and its CN and
     * organizations, the latter NUL-separated (leaf_names_known false before, and always for a
     * leaf whose names do not fit). */
    char x509_credential[96];
    /* The chain's digest, the chain cache's key (SHA-256 over each certificate's SHA-256),
     * made once (chain_digest_known false before). */
    unsigned char chain_digest[32];
    bool chain_digest_known;
    bool leaf_names_known;
    char leaf_cn[256];
    char leaf_organizations[512];
    size_t leaf_organizations_len;
};

struct kp_authn_input {
    STACK_OF(X509) *peer_chain;      /* what the client presented, leaf first; NULL: none */
    const char *authorization;       /* the Authorization header; NULL: none */
    const struct kp_header *headers; /* every request header (front-proxy identity) */
    size_t header_count;
    struct kp_authn_memo *memo;      /* the connection's; NULL: verify every time */
};

enum kp_authn_outcome {
    KP_AUTHN_AUTHENTICATED,
    KP_AUTHN_ANONYMOUS,     /* anonymous enabled and no credentials: user is system:anonymous */
    KP_AUTHN_REFUSED,       /* 401 */
};

#define KP_AUTHN_REASON_MAX 512

struct kp_authn_result {
    enum kp_authn_outcome outcome;
    const char *method;              /* "x509", "requestheader", "serviceaccount",
                                        "bootstrap-token", "anonymous", NULL when refused */
    char reason[KP_AUTHN_REASON_MAX]; /* why refused: for the log, and a TokenReview's
                                        status.error (as upstream); never the token */
    struct kp_strlist audiences;     /* the audiences the credential is valid for among those
                                        asked (TokenReview): a bound token's matching ones; for
                                        legacy and bootstrap tokens the API audiences asked */
};

void kp_authn_result_wipe(struct kp_authn_result *result);

/* Authenticates a request at time now. On KP_AUTHN_AUTHENTICATED or ANONYMOUS, *user is filled
 * (the caller wipes it); otherwise it is zeroed. Errors (KP_ERR_IO when a lookup failed,
 * KP_ERR_INTERNAL) mean the question could not be answered: answer 500/503, not 401. */
KP_MUST_CHECK enum kp_result kp_authn_request(const struct kp_authn *authn,
                                              const struct kp_authn_input *input, int64_t now,
                                              struct kp_user *user,
                                              struct kp_authn_result *result,
                                              struct kp_error *err);

/* Authenticates a bearer token alone (TokenReview). audiences: the review's spec.audiences
 * (NULL or empty: the API audiences). */
KP_MUST_CHECK enum kp_result kp_authn_token(const struct kp_authn *authn, const char *token,
                                            const struct kp_strlist *audiences, int64_t now,
                                            struct kp_user *user, struct kp_authn_result *result,
                                            struct kp_error *err);

/* ---- service-account tokens: the claims (pkg/serviceaccount/claims.go) ---- */

/* What a TokenRequest binds a token to (kind "" when unbound). */
struct kp_sa_binding {
    const char *kind;  /* "Pod", "Secret", "Node" or "" */
    const char *name;
    const char *uid;
    const char *node_name; /* Pod-bound: the pod's node, when scheduled (PodNodeInfo) */
    const char *node_uid;
};

struct kp_sa_claims_params {
    const char *issuer;
    const struct kp_strlist *audiences;
    const char *namespace_;
    const char *sa_name;
    const char *sa_uid;
    struct kp_sa_binding binding;
    int64_t now;
    int64_t expiration_seconds;
    int64_t warn_after;   /* 0: none; else the NumericDate of kubernetes.io.warnafter */
};

/* The claims of a bound token (iss, sub, aud, iat, nbf, exp, jti (a random UUID),
 * kubernetes.io {namespace, serviceaccount, pod|secret|node, warnafter}). New reference. */
KP_MUST_CHECK enum kp_result kp_sa_claims(const struct kp_sa_claims_params *params, json_t **claims,
                                          struct kp_error *err);

/* ---- bootstrap tokens (cluster-bootstrap/token) ---- */

#define KP_BOOTSTRAP_TOKEN_ID_LEN 6
#define KP_BOOTSTRAP_TOKEN_SECRET_LEN 16

/* True if token has the form [a-z0-9]{6}.[a-z0-9]{16}; then id and secret (each with room for
 * the length plus NUL) receive the parts. */
bool kp_bootstrap_token_parse(const char *token, char *id, char *secret);

/* A new random token (23 bytes and a NUL). */
KP_MUST_CHECK enum kp_result kp_bootstrap_token_generate(char *token, size_t size,
                                                         struct kp_error *err);

/* True if group is allowed as an auth-extra-group (\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z). */
bool kp_bootstrap_group_valid(const char *group);

#endif
