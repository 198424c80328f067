/*
 * Live reload: the files the API server serves with and trusts are polled and reloaded when they
 * change, without a restart and without holding up a request.
 *
 * Implementation notes
 *  - Sources. One per file the flags name: the serving pair (--tls-cert-file with
 *    --tls-private-key-file, judged together: a key that does not match its certificate is
 *    never swapped in), --client-ca-file, --client-crl-file, --requestheader-client-ca-file,
 *    --requestheader-client-crl-file and each --service-account-key-file. A source keeps the
 *    last good content of its file(s).
 *  - Start. Every source is stamped (core/filewatch.h), then loaded; a bad file stops the
 *    start with its flag and path named, as before reloading existed. A CRL file that does not
 *    exist means no revocation for those certificates until it appears (`kpki revoke` creates
 *    pki/ca.crl on first use, so the tree's path is watched from the start).
 *  - The thread polls every source once a second. A source whose files changed and settled
 *    (filewatch's rules) is loaded again: on success its content replaces the last good one,
 *    one info line; on failure the last good content stays, one error line, and the same files
 *    are not tried again until they change. A CRL file that disappears keeps its last good
 *    list too (revocations stay in force; restart to drop them).
 *  - The trust snapshot (struct kp_trust: the authenticator, the JWKS and the discovery
 *    document) is rebuilt from every source's last good content when one of them changed, and
 *    swapped in under api->trust_lock. Workers only copy that pointer and take a reference
 *    under the lock; everything slow (reading, parsing, building the authenticator) happens on
 *    this thread. A request keeps the snapshot it took; the last reference frees it.
 *  - The serving context: a new SSL_CTX handed to kp_http_server_set_ssl_ctx. New connections
 *    use it; a live connection's SSL holds a reference on the context it was made from.
 *  - A new client or front-proxy CA is also written to the ConfigMap
 *    kube-system/extension-apiserver-authentication, as kube-apiserver's trust controller does.
 */
#include <errno.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "core/duration.h"
#include "core/file.h"
#include "core/filewatch.h"
#include "core/log.h"
#include "crypto/crypto.h"

#define RELOAD_INTERVAL_MS 1000
#define MAX_CERTS_FILE (4 * 1024 * 1024)
#define MAX_CRLS_FILE (16 * 1024 * 1024)
#define MAX_KEYS_FILE (1024 * 1024)

enum source_kind {
    SOURCE_SERVING, /* a certificate chain and its key */
    SOURCE_CERTS,   /* a CA bundle */
    SOURCE_CRLS,    /* CRLs, optional; signed by the CAs of `ca` */
    SOURCE_KEYS,    /* service-account verification keys */
};

struct source {
    enum source_kind kind;
    const char *flag;           /* "--client-ca-file" (for the serving pair: both flags) */
    struct kp_file_watch watch; /* paths borrowed from api->config */
    const struct source *ca;    /* SOURCE_CRLS: the bundle whose CAs must have signed them */
    size_t session_cache_entries; /* SOURCE_SERVING: --tls-session-cache-entries */
    /* The last good content: one of these, by kind. */
    SSL_CTX *ssl_ctx;
    STACK_OF(X509) *certs;
    STACK_OF(X509_CRL) *crls;   /* NULL: none (the file is absent) */
    EVP_PKEY **keys;
    size_t key_count;
};

struct kp_reload {
    struct kp_api *api;
    struct source sources[5 + KP_RELOAD_MAX_KEY_FILES];
    size_t count;
    struct source *serving, *client_ca, *client_crls, *fp_ca, *fp_crls; /* NULL: not configured */
    bool trust_stale; /* a rebuild failed: try again at the next poll */
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards stopping; the condition wakes the thread to stop */
    pthread_cond_t wake;
    bool stopping;
};

/* ---- the trust snapshot ---- */

void kp_trust_unref(struct kp_trust *trust)
{
    if (!trust || atomic_fetch_sub(&trust->refs, 1) != 1)
        return;
    kp_authn_free(trust->authn);
    json_decref(trust->jwks);
    json_decref(trust->openid);
    free(trust);
}

struct kp_trust *kp_api_trust(struct kp_api *api)
{
    pthread_mutex_lock(&api->trust_lock);
    struct kp_trust *trust = api->trust;
    if (trust)
        atomic_fetch_add(&trust->refs, 1);
    pthread_mutex_unlock(&api->trust_lock);
    return trust;
}

/* Installs trust (taking the caller's reference) and drops the server's reference on the old
 * one; requests still holding the old one keep it until they end. */
static void swap_trust(struct kp_api *api, struct kp_trust *trust)
{
    pthread_mutex_lock(&api->trust_lock);
    struct kp_trust *old = api->trust;
    api->trust = trust;
    pthread_mutex_unlock(&api->trust_lock);
    kp_trust_unref(old);
}

static void keys_free(EVP_PKEY **keys, size_t count)
{
    for (size_t i = 0; i < count; i++)
        EVP_PKEY_free(keys[i]);
    free(keys);
}

/* Every service-account verification key (borrowed from the sources), plus the signing key
 * when no key file has it: a token this server signs must verify. *keys: free() the array. */
static enum kp_result verification_keys(const struct kp_reload *reload, EVP_PKEY ***keys,
                                        size_t *count, struct kp_error *err)
{
    size_t total = 1;
    for (size_t i = 0; i < reload->count; i++)
        total += reload->sources[i].kind == SOURCE_KEYS ? reload->sources[i].key_count : 0;
    EVP_PKEY **all = calloc(total, sizeof(*all));
    if (!all)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    size_t n = 0;
    bool has_signing_key = false;
    for (size_t i = 0; i < reload->count; i++) {
        const struct source *s = &reload->sources[i];
        for (size_t k = 0; s->kind == SOURCE_KEYS && k < s->key_count; k++) {
            all[n++] = s->keys[k];
            has_signing_key |= kp_key_public_equal(s->keys[k], reload->api->signing_key);
        }
    }
    if (!has_signing_key)
        all[n++] = reload->api->signing_key;
    *keys = all;
    *count = n;
    return KP_OK;
}

static enum kp_result build_trust(const struct kp_reload *reload, struct kp_trust **out,
                                  struct kp_error *err)
{
    *out = NULL;
    const struct kp_apiserver_config *c = &reload->api->config;
    struct kp_trust *trust = calloc(1, sizeof(*trust));
    if (!trust)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    atomic_init(&trust->refs, 1);
    EVP_PKEY **keys = NULL;
    size_t key_count = 0;
    enum kp_result rc = verification_keys(reload, &keys, &key_count, err);
    if (rc == KP_OK) {
        struct kp_authn_config ac = {
            .client_ca = reload->client_ca ? reload->client_ca->certs : NULL,
            .client_crls = reload->client_crls ? reload->client_crls->crls : NULL,
            .requestheader_ca = reload->fp_ca ? reload->fp_ca->certs : NULL,
            .requestheader_crls = reload->fp_crls ? reload->fp_crls->crls : NULL,
            .requestheader_allowed_names = &c->requestheader_allowed_names,
            .requestheader_username_headers = &c->requestheader_username_headers,
            .requestheader_group_headers = &c->requestheader_group_headers,
            .requestheader_extra_prefixes = &c->requestheader_extra_headers_prefix,
            .sa_keys = keys,
            .sa_key_count = key_count,
            .issuers = &c->service_account_issuers,
            .api_audiences = &c->api_audiences,
            .bootstrap_tokens = c->enable_bootstrap_token_auth,
            .anonymous = c->anonymous_auth,
            .lookup = kp_registry_lookup_cached,
            .lookup_context = reload->api,
            .token_cache_entries = (size_t)reload->api->config.token_cache_entries,
            .chain_cache_entries = (size_t)reload->api->config.client_cert_cache_entries,
        };
        rc = kp_authn_new(&ac, &trust->authn, err);
    }
    if (rc == KP_OK)
        rc = kp_oidc_documents(reload->api, keys, key_count, &trust->jwks, &trust->openid, err);
    free(keys); /* borrowed keys: the authenticator took its own references */
    if (rc != KP_OK) {
        kp_trust_unref(trust);
        return rc;
    }
    *out = trust;
    return KP_OK;
}

/* ---- loading one source ---- */

/* What loading a source found, for its log line. */
struct loaded {
    char summary[1024]; /* "2 certificates (CN=kubernetes; CN=other)" */
    bool absent;        /* a CRL file that does not exist (nothing was loaded) */
    bool expired;       /* a CRL past its nextUpdate (loaded: see the warning) */
};

/* A CRL whose issuer is a CA of the bundle must carry that CA's signature. A badly signed list
 * would make OpenSSL refuse every certificate of the CA; refusing the file instead keeps the
 * last good list in force. CRLs of other issuers (intermediates a client presents) are checked
 * when used. */
static enum kp_result check_crl_signers(STACK_OF(X509_CRL) *crls, STACK_OF(X509) *cas,
                                        struct kp_error *err)
{
    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(crls, i);
        bool issuer_known = false, signed_by_it = false;
        for (int j = 0; cas && j < sk_X509_num(cas); j++) {
            X509 *ca = sk_X509_value(cas, j);
            if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
                continue;
            issuer_known = true;
            signed_by_it |= kp_crl_signed_by(crl, ca);
        }
        if (issuer_known && !signed_by_it) {
            char issuer[256];
            kp_name_to_string(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
            return kp_error_set(err, KP_ERR_INVALID,
                                "CRL %d (issuer %s) is not signed by that CA's key", i + 1,
                                issuer);
        }
    }
    return KP_OK;
}

/* One line on what a CRL file holds: "1 CRL (CN=kubernetes: 2 revoked, next update ...)". */
static bool describe_crls(STACK_OF(X509_CRL) *crls, int64_t now, char *out, size_t size)
{
    bool expired = false;
    int count = sk_X509_CRL_num(crls);
    size_t used = (size_t)snprintf(out, size, "%d CRL%s (", count, count == 1 ? "" : "s");
    for (int i = 0; i < count && used < size; i++) {
        X509_CRL *crl = sk_X509_CRL_value(crls, i);
        char issuer[128], next[40] = "none";
        kp_name_to_string(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
        int64_t next_update = kp_crl_next_update(crl);
        if (next_update)
            kp_time_format_rfc3339(next_update, next, sizeof(next));
        expired |= next_update && next_update <= now;
        STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
        used += (size_t)snprintf(out + used, size - used, "%s%s: %d revoked, next update %s%s",
                                 i ? "; " : "", issuer, revoked ? sk_X509_REVOKED_num(revoked) : 0,
                                 next, next_update && next_update <= now ? " - EXPIRED" : "");
    }
    if (used < size)
        snprintf(out + used, size - used, ")");
    return expired;
}

static void describe_certs(STACK_OF(X509) *certs, char *out, size_t size)
{
    int count = sk_X509_num(certs);
    size_t used = (size_t)snprintf(out, size, "%d certificate%s (", count, count == 1 ? "" : "s");
    for (int i = 0; i < count && used < size; i++) {
        char subject[128];
        kp_name_to_string(X509_get_subject_name(sk_X509_value(certs, i)), subject,
                          sizeof(subject));
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "; " : "", subject);
    }
    if (used < size)
        snprintf(out + used, size - used, ")");
}

static void describe_serving(SSL_CTX *ctx, char *out, size_t size)
{
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    char serial[80] = "?", subject[128] = "?", until[40] = "?";
    if (leaf) {
        kp_cert_serial_hex(leaf, serial, sizeof(serial));
        kp_name_to_string(X509_get_subject_name(leaf), subject, sizeof(subject));
        kp_time_format_rfc3339(kp_cert_not_after(leaf), until, sizeof(until));
    }
    snprintf(out, size, "serial %s (%s), valid until %s", serial, subject, until);
}

static void describe_keys(EVP_PKEY **keys, size_t count, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "%zu key%s (kid", count, count == 1 ? "" : "s");
    for (size_t i = 0; i < count && used < size; i++) {
        char kid[64] = "?";
        if (kp_jwt_key_id(keys[i], kid, sizeof(kid), NULL) != KP_OK)
            snprintf(kid, sizeof(kid), "?");
        used += (size_t)snprintf(out + used, size - used, " %s", kid);
    }
    if (used < size)
        snprintf(out + used, size - used, ")");
}

static enum kp_result load_serving(struct source *s, struct loaded *out, struct kp_error *err)
{
    SSL_CTX *ctx = NULL;
    enum kp_result rc = kp_tls_server_ctx_new(s->watch.paths[0], s->watch.paths[1], &ctx, err);
    if (rc != KP_OK)
        return rc;
    kp_tls_server_ctx_set_resumption(ctx, s->session_cache_entries);
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = ctx;
    describe_serving(ctx, out->summary, sizeof(out->summary));
    return KP_OK;
}

static enum kp_result load_certs(struct source *s, struct loaded *out, struct kp_error *err)
{
    char *data = NULL;
    size_t len = 0;
    STACK_OF(X509) *certs = NULL;
    enum kp_result rc = kp_file_read(s->watch.paths[0], MAX_CERTS_FILE, &data, &len, err);
    if (rc == KP_OK)
        rc = kp_certs_from_pem(data, len, s->watch.paths[0], &certs, err);
    free(data);
    if (rc != KP_OK)
        return rc;
    sk_X509_pop_free(s->certs, X509_free);
    s->certs = certs;
    describe_certs(certs, out->summary, sizeof(out->summary));
    return KP_OK;
}

/* A file that does not exist is not an error for CRLs (out->absent); the caller decides what it
 * means. */
static enum kp_result load_crls(struct source *s, int64_t now, struct loaded *out,
                                struct kp_error *err)
{
    const struct kp_file_stamp *stamp = kp_file_watch_seen(&s->watch, 0);
    out->absent = !stamp->present && stamp->error == ENOENT;
    if (out->absent)
        return KP_OK;
    char *data = NULL;
    size_t len = 0;
    STACK_OF(X509_CRL) *crls = NULL;
    enum kp_result rc = kp_file_read(s->watch.paths[0], MAX_CRLS_FILE, &data, &len, err);
    if (rc == KP_OK)
        rc = kp_crls_parse(data, len, s->watch.paths[0], &crls, err);
    free(data);
    if (rc == KP_OK && s->ca && s->ca->certs)
        rc = check_crl_signers(crls, s->ca->certs, err);
    if (rc != KP_OK) {
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
        return rc;
    }
    sk_X509_CRL_pop_free(s->crls, X509_CRL_free);
    s->crls = crls;
    out->expired = describe_crls(crls, now, out->summary, sizeof(out->summary));
    return KP_OK;
}

static enum kp_result load_keys(struct source *s, struct loaded *out, struct kp_error *err)
{
    char *data = NULL;
    size_t len = 0;
    EVP_PKEY **keys = NULL;
    size_t count = 0;
    enum kp_result rc = kp_file_read(s->watch.paths[0], MAX_KEYS_FILE, &data, &len, err);
    if (rc == KP_OK)
        rc = kp_pubkeys_from_pem(data, len, s->watch.paths[0], &keys, &count, err);
    if (data)
        kp_secret_free(data, len); /* the file may hold a private key */
    for (size_t i = 0; rc == KP_OK && i < count; i++)
        if (!kp_jwt_alg_for_key(keys[i]))
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "'%s': key %zu: type not supported for service-account tokens "
                              "(RSA, P-256, P-384)",
                              s->watch.paths[0], i + 1);
    if (rc != KP_OK) {
        keys_free(keys, count);
        return rc;
    }
    keys_free(s->keys, s->key_count);
    s->keys = keys;
    s->key_count = count;
    describe_keys(keys, count, out->summary, sizeof(out->summary));
    return KP_OK;
}

static enum kp_result load_source(struct source *s, int64_t now, struct loaded *out,
                                  struct kp_error *err)
{
    memset(out, 0, sizeof(*out));
    switch (s->kind) {
    case SOURCE_SERVING:
        return load_serving(s, out, err);
    case SOURCE_CERTS:
        return load_certs(s, out, err);
    case SOURCE_CRLS:
        return load_crls(s, now, out, err);
    case SOURCE_KEYS:
        return load_keys(s, out, err);
    }
    return kp_error_set(err, KP_ERR_INTERNAL, "unknown source kind");
}

/* An expired CRL is loaded (the one it replaces is older still) but refuses every certificate
 * of its CA at request time, as RFC 5280 wants of stale revocation data: say so loudly. */
static void warn_if_expired(const struct source *s, const struct loaded *loaded)
{
    if (loaded->expired)
        kp_log_warn("%s '%s': a CRL is past its nextUpdate: every certificate of that CA is "
                    "refused until it is re-signed (kpki crl sign)",
                    s->flag, s->watch.paths[0]);
}

/* ---- set-up ---- */

static struct source *add_source(struct kp_reload *reload, enum source_kind kind,
                                 const char *flag, const char *path, const char *second_path)
{
    struct source *s = &reload->sources[reload->count++];
    const char *paths[] = {path, second_path};
    s->kind = kind;
    s->flag = flag;
    kp_file_watch_init(&s->watch, paths, second_path ? 2 : 1);
    return s;
}

/* The sources in loading order: a CA bundle before the CRLs checked against it. */
static enum kp_result add_sources(struct kp_reload *reload, struct kp_error *err)
{
    const struct kp_apiserver_config *c = &reload->api->config;
    if (c->service_account_key_files.count > KP_RELOAD_MAX_KEY_FILES)
        return kp_error_set(err, KP_ERR_INVALID,
                            "--service-account-key-file: at most %d files (put keys together "
                            "in one file: it may hold several)",
                            KP_RELOAD_MAX_KEY_FILES);
    reload->serving = add_source(reload, SOURCE_SERVING, "--tls-cert-file/--tls-private-key-file",
                                 c->tls_cert_file, c->tls_private_key_file);
    reload->serving->session_cache_entries = (size_t)c->tls_session_cache_entries;
    if (c->client_ca_file) {
        reload->client_ca =
            add_source(reload, SOURCE_CERTS, "--client-ca-file", c->client_ca_file, NULL);
        if (c->client_crl_file) {
            reload->client_crls =
                add_source(reload, SOURCE_CRLS, "--client-crl-file", c->client_crl_file, NULL);
            reload->client_crls->ca = reload->client_ca;
        }
    }
    if (c->requestheader_client_ca_file) {
        reload->fp_ca = add_source(reload, SOURCE_CERTS, "--requestheader-client-ca-file",
                                   c->requestheader_client_ca_file, NULL);
        if (c->requestheader_client_crl_file) {
            reload->fp_crls = add_source(reload, SOURCE_CRLS, "--requestheader-client-crl-file",
                                         c->requestheader_client_crl_file, NULL);
            reload->fp_crls->ca = reload->fp_ca;
        }
    }
    for (size_t i = 0; i < c->service_account_key_files.count; i++)
        add_source(reload, SOURCE_KEYS, "--service-account-key-file",
                   c->service_account_key_files.items[i], NULL);
    return KP_OK;
}

/* Loads a source at start: any problem is an error naming the flag (the server does not start
 * on a bad file); an absent CRL file means no revocation until it appears. */
static enum kp_result load_at_start(struct source *s, int64_t now, struct kp_error *err)
{
    struct loaded loaded;
    if (load_source(s, now, &loaded, err) != KP_OK)
        return kp_error_prefix(err, "%s", s->flag);
    if (loaded.absent)
        kp_log_info("%s '%s' does not exist: no revocation checking for those certificates "
                    "until it does (it is watched)",
                    s->flag, s->watch.paths[0]);
    else
        kp_log_info("%s '%s': %s", s->flag, s->watch.paths[0], loaded.summary);
    warn_if_expired(s, &loaded);
    return KP_OK;
}

static void source_wipe(struct source *s)
{
    SSL_CTX_free(s->ssl_ctx);
    sk_X509_pop_free(s->certs, X509_free);
    sk_X509_CRL_pop_free(s->crls, X509_CRL_free);
    keys_free(s->keys, s->key_count);
}

enum kp_result kp_reload_new(struct kp_api *api, struct kp_reload **out, struct kp_error *err)
{
    *out = NULL;
    struct kp_reload *reload = calloc(1, sizeof(*reload));
    if (!reload)
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    reload->api = api;
    pthread_mutex_init(&reload->lock, NULL);
    enum kp_result rc = kp_api_cond_init_monotonic(&reload->wake)
                            ? KP_OK
                            : kp_error_set(err, KP_ERR_IO, "reload: no CLOCK_MONOTONIC waits");
    int64_t now = kp_clock_now(api->clock);
    if (rc == KP_OK)
        rc = add_sources(reload, err);
    for (size_t i = 0; rc == KP_OK && i < reload->count; i++)
        rc = load_at_start(&reload->sources[i], now, err);
    struct kp_trust *trust = NULL;
    if (rc == KP_OK)
        rc = build_trust(reload, &trust, err);
    if (rc != KP_OK) {
        kp_reload_free(reload);
        return rc;
    }
    swap_trust(api, trust);
    *out = reload;
    return KP_OK;
}

SSL_CTX *kp_reload_ssl_ctx(const struct kp_reload *reload)
{
    return reload->serving->ssl_ctx;
}

/* ---- reloading ---- */

/* What a reload of one source came to. */
enum reload_outcome { RELOADED, KEPT };

/* Loads a changed source; logs one line naming the flag and file(s) either way. */
static enum reload_outcome reload_source(struct kp_reload *reload, struct source *s)
{
    char what[1100];
    if (s->kind == SOURCE_SERVING)
        snprintf(what, sizeof(what), "%s '%s', '%s'", s->flag, s->watch.paths[0],
                 s->watch.paths[1]);
    else
        snprintf(what, sizeof(what), "%s '%s'", s->flag, s->watch.paths[0]);
    bool had_crls = s->crls != NULL;
    struct loaded loaded;
    struct kp_error err;
    kp_error_clear(&err);
    if (load_source(s, kp_clock_now(reload->api->clock), &loaded, &err) != KP_OK) {
        kp_file_watch_reject(&s->watch);
        kp_log_error("reload: %s not loaded, the previous content stays in use (tried again when "
                     "the file changes): %s",
                     what, err.message);
        return KEPT;
    }
    if (loaded.absent && had_crls) {
        kp_file_watch_reject(&s->watch);
        kp_log_warn("reload: %s was removed: the CRLs loaded last stay in force (restart to "
                    "drop them)",
                    what);
        return KEPT;
    }
    kp_file_watch_accept(&s->watch);
    if (loaded.absent)
        return KEPT; /* still no CRL (its stat error changed, say): nothing to do */
    if (s->kind == SOURCE_SERVING && reload->api->http)
        kp_http_server_set_ssl_ctx(reload->api->http, s->ssl_ctx);
    kp_log_info("reload: %s: %s, in use for %s", what, loaded.summary,
                s->kind == SOURCE_SERVING ? "new connections" : "new requests");
    warn_if_expired(s, &loaded);
    return RELOADED;
}

/* The CAs went into the trust snapshot; publish them as kube-apiserver's trust controller does
 * (the ConfigMap reads the files again: at worst it runs one reload behind). */
static void publish_cas(struct kp_reload *reload)
{
    struct kp_error err;
    if (reload->api->store && kp_authentication_configmap_sync(reload->api, &err) != KP_OK)
        kp_log_warn("reload: cannot update kube-system/extension-apiserver-authentication: %s",
                    err.message);
}

void kp_reload_poll(struct kp_reload *reload)
{
    bool trust_changed = false, cas_changed = false;
    for (size_t i = 0; i < reload->count; i++) {
        struct source *s = &reload->sources[i];
        if (!kp_file_watch_poll(&s->watch) || reload_source(reload, s) != RELOADED)
            continue;
        trust_changed |= s->kind != SOURCE_SERVING;
        cas_changed |= s->kind == SOURCE_CERTS;
    }
    if (!trust_changed && !reload->trust_stale)
        return;
    struct kp_trust *trust = NULL;
    struct kp_error err;
    if (build_trust(reload, &trust, &err) != KP_OK) {
        reload->trust_stale = true;
        kp_log_error("reload: cannot build the authenticator from the new files (the previous "
                     "one stays in use; trying again in a second): %s",
                     err.message);
        return;
    }
    reload->trust_stale = false;
    swap_trust(reload->api, trust);
    if (cas_changed)
        publish_cas(reload);
}

static struct timespec deadline_after_ms(long ms)
{
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_sec += ms / 1000;
    at.tv_nsec += (ms % 1000) * 1000000L;
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    return at;
}

static void *reload_thread(void *arg)
{
    struct kp_reload *reload = arg;
    pthread_mutex_lock(&reload->lock);
    while (!reload->stopping) {
        struct timespec at = deadline_after_ms(RELOAD_INTERVAL_MS);
        int waited = 0;
        while (!reload->stopping && waited != ETIMEDOUT)
            waited = pthread_cond_timedwait(&reload->wake, &reload->lock, &at);
        if (reload->stopping)
            break;
        pthread_mutex_unlock(&reload->lock);
        kp_reload_poll(reload);
        pthread_mutex_lock(&reload->lock);
    }
    pthread_mutex_unlock(&reload->lock);
    return NULL;
}

enum kp_result kp_reload_start(struct kp_reload *reload, struct kp_error *err)
{
    if (pthread_create(&reload->thread, NULL, reload_thread, reload) != 0)
        return kp_error_set(err, KP_ERR_IO, "cannot start the file reload thread");
    reload->started = true;
    return KP_OK;
}

void kp_reload_free(struct kp_reload *reload)
{
    if (!reload)
        return;
    if (reload->started) {
        pthread_mutex_lock(&reload->lock);
        reload->stopping = true;
        pthread_cond_broadcast(&reload->wake);
        pthread_mutex_unlock(&reload->lock);
        pthread_join(reload->thread, NULL);
    }
    for (size_t i = 0; i < reload->count; i++)
        source_wipe(&reload->sources[i]);
    pthread_cond_destroy(&reload->wake);
    pthread_mutex_destroy(&reload->lock);
    free(reload);
}
