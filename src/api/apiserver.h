/*
 * api/apiserver.h - `kpki apiserver`: the Kubernetes API server over mutual TLS.
 *
 * What the CLI sees of src/api: a configuration whose fields are named after kube-apiserver's
 * flags, start, wait, stop. Everything else (the resource table, routing, handlers, the
 * request pipeline) is internal to src/api (api/api.h).
 *
 * Ownership: the configuration is borrowed by kp_apiserver_start and copied; the server owns
 * everything it opens. Threads: start and stop from one thread; the server runs its own.
 */
#ifndef KP_API_APISERVER_H
#define KP_API_APISERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/strlist.h"
#include "kpki/clock.h"
#include "kpki/error.h"
#include "net/http.h"

struct kp_apiserver_config {
    const char *bind_address;          /* --bind-address (default 0.0.0.0) */
    int secure_port;                   /* --secure-port (default 6443; 0: ephemeral) */
    int threads;                       /* worker threads (0: one per CPU) */
    const char *advertise_address;     /* --advertise-address: jwks_uri, kubernetes endpoint */
    const char *tls_cert_file;         /* --tls-cert-file */
    const char *tls_private_key_file;  /* --tls-private-key-file */
    const char *client_ca_file;        /* --client-ca-file */
    const char *client_crl_file;       /* kpki: CRL(s) for client certificates (optional; a
                                          path that does not exist yet is watched) */
    const char *requestheader_client_ca_file;          /* --requestheader-client-ca-file */
    const char *requestheader_client_crl_file;         /* kpki: CRL(s) for the front proxy's */
    struct kp_strlist requestheader_allowed_names;     /* --requestheader-allowed-names */
    struct kp_strlist requestheader_username_headers;  /* --requestheader-username-headers */
    struct kp_strlist requestheader_group_headers;     /* --requestheader-group-headers */
    struct kp_strlist requestheader_extra_headers_prefix;
    struct kp_strlist service_account_key_files;       /* --service-account-key-file */
    const char *service_account_signing_key_file;      /* --service-account-signing-key-file */
    struct kp_strlist service_account_issuers;         /* --service-account-issuer */
    const char *service_account_jwks_uri;              /* --service-account-jwks-uri */
    int64_t service_account_max_token_expiration;      /* seconds; 0: none */
    bool service_account_extend_token_expiration;      /* default true */
    struct kp_strlist api_audiences;                   /* --api-audiences */
    bool enable_bootstrap_token_auth;                  /* --enable-bootstrap-token-auth */
    bool anonymous_auth;                               /* --anonymous-auth */
    int64_t token_cache_entries;       /* kpki: --token-cache-entries (verified service-account
                                          tokens; 0 turns the cache off); default 4096 */
    int64_t client_cert_cache_entries; /* kpki: --client-cert-cache-entries (client chains'
                                          verdicts, kept 60 s at most; 0 turns the cache off);
                                          default 4096 */
    int64_t tls_session_cache_entries; /* kpki: --tls-session-cache-entries (TLS sessions kept
                                          for resumption; 0: none, the default) */
    struct kp_strlist authorization_modes;             /* --authorization-mode: Node,RBAC,
                                                          AlwaysAllow, AlwaysDeny */
    const char *storage_file;          /* the SQLite database (kpki: --storage-file) */
    struct kp_http_limits limits;      /* --max-request-bytes ... */
    int64_t min_request_timeout;       /* --min-request-timeout: watches last [t, 2t) */
    const struct kp_clock *clock;      /* NULL: the system clock */
};

/* Fills the defaults above (strings NULL, lists empty). */
void kp_apiserver_config_init(struct kp_apiserver_config *config);
void kp_apiserver_config_wipe(struct kp_apiserver_config *config);

struct kp_apiserver;

/* Loads the certificates and keys, opens the store, creates the default objects on first
 * start (namespaces, RBAC policy), starts serving. Errors name the file or flag. While it
 * serves, the certificate files, CA bundles, CRLs and service-account key files are polled and
 * reloaded when they change (docs/api.md, "Live reload"). */
KP_MUST_CHECK enum kp_result kp_apiserver_start(const struct kp_apiserver_config *config,
                                                struct kp_apiserver **server,
                                                struct kp_error *err);
int kp_apiserver_port(const struct kp_apiserver *server);
/* Stops serving, closes the store, frees. NULL is a no-op. */
void kp_apiserver_stop(struct kp_apiserver *server);

#endif
