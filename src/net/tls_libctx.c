/*
 * net/tls_libctx.c - the OpenSSL library context kpki's TLS servers run in: OpenSSL's default
 * provider, seen through a filter that hides the key types and decoders a TLS server never
 * uses.
 *
 * Why. In every full handshake the server decodes the client's certificate (d2i_X509), and
 * OpenSSL 3.0 decodes its public key through OSSL_DECODER_CTX_new_for_pkey, which builds its
 * decoder chains afresh on every call by walking every key manager and every decoder the
 * library context offers: 18 key managers and about 60 decoders in the default provider, for
 * one P-256 or RSA key. That walk was 17-20 % of the API server's CPU per handshake
 * (docs/benchmarks.md, fifth round; upstream: openssl/openssl#17950, fixed by caching decoder
 * contexts in 3.2, #21426; Debian 12 has 3.0). With only the key managers a TLS peer can need
 * and the decoders of SubjectPublicKeyInfo, a P-256 certificate decodes in 44 us instead of
 * 93, an RSA one in 33 instead of 93 (same machine, a loop of d2i_X509).
 *
 * How: the pattern of OpenSSL's own test/filterprov.c. The default provider is loaded into a
 * hidden library context; a built-in provider, "kpki-tls", is the only provider of a second
 * one, the servers'. It hands OpenSSL the hidden default provider's algorithm tables (and its
 * provider context, so the implementations run as they would there, bound to the hidden
 * context), except for two operations: key management, reduced to the key types below, and
 * decoders, reduced to those whose input structure is SubjectPublicKeyInfo. Nothing here
 * implements cryptography, and OpenSSL's default context is not touched. The servers' SSL_CTXs
 * are made in the servers' context; everything else in the process (keys, certificates, CRLs,
 * JWTs) stays in the default one. Keys cross over as OpenSSL arranges it: the server's private
 * key, read in the default context (tls.c), is exported once to this provider's key manager
 * when the first handshake signs with it.
 *
 * What a TLS peer loses: a client certificate whose key is of a type not kept (SM2) no longer
 * decodes here. No OpenSSL client can present one: curl and openssl s_client refuse an SM2
 * certificate before connecting ("unknown certificate type"). What the server does with one
 * from another TLS stack is not tested.
 *
 * Both contexts live as long as the process: the servers' connections may use them until the
 * last one ends, and OpenSSL's exit handler does not free contexts it did not make. If they
 * cannot be built, the servers use OpenSSL's default context (one warning).
 */
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <pthread.h>
#include <string.h>

#include "core/log.h"
#include "net/http.h"

#define PROVIDER_NAME "kpki-tls"
#define MAX_KEPT 32

/* Key types a TLS 1.2/1.3 server may meet: certificate keys (EC, RSA, RSA-PSS, EdDSA, and DSA,
 * which OpenSSL accepts in TLS 1.2 client certificates), key exchange (ECDHE, X25519/X448,
 * FFDHE), and the MAC and KDF keys libssl makes (HMAC for TLS 1.2 record MACs, HKDF and
 * TLS1-PRF). Matched against the first name of each entry. */
static const char *const KEPT_KEY_TYPES[] = {
    "EC", "RSA", "RSA-PSS", "DSA", "X25519", "X448", "ED25519", "ED448", "DH", "DHX",
    "HMAC", "HKDF", "TLS1-PRF",
};

static struct {
    OSSL_LIB_CTX *hidden; /* holds the default provider the filter forwards to */
    OSSL_PROVIDER *deflt; /* that provider; a reference */
    OSSL_ALGORITHM keymgmt[MAX_KEPT + 1];   /* filtered tables, NULL-terminated */
    OSSL_ALGORITHM decoders[MAX_KEPT + 1];
    OSSL_LIB_CTX *libctx; /* NULL: not built (use the default context) */
} tls;

static bool first_name_is(const char *names, const char *name)
{
    size_t len = strlen(name);
    return strncmp(names, name, len) == 0 && (names[len] == '\0' || names[len] == ':');
}

static bool keep_keymgmt(const OSSL_ALGORITHM *algorithm)
{
    for (size_t i = 0; i < sizeof(KEPT_KEY_TYPES) / sizeof(KEPT_KEY_TYPES[0]); i++)
        if (first_name_is(algorithm->algorithm_names, KEPT_KEY_TYPES[i]))
            return true;
    return false;
}

/* The SubjectPublicKeyInfo decoders of the kept key types, and the generic one ("DER"). */
static bool keep_decoder(const OSSL_ALGORITHM *algorithm)
{
    return algorithm->property_definition != NULL &&
           strstr(algorithm->property_definition, "structure=SubjectPublicKeyInfo") != NULL &&
           (first_name_is(algorithm->algorithm_names, "DER") || keep_keymgmt(algorithm));
}

/* Copies the entries of the default provider's table for operation that keep() accepts.
 * false if the table is missing, or nothing or more than MAX_KEPT entries would be kept. The
 * copies point into the table: the default provider's tables are static (it has no unquery
 * function), so they outlive the query, as a cached table would. */
static bool filter_table(int operation, bool (*keep)(const OSSL_ALGORITHM *), OSSL_ALGORITHM *out)
{
    int no_cache = 0;
    const OSSL_ALGORITHM *all = OSSL_PROVIDER_query_operation(tls.deflt, operation, &no_cache);
    if (all == NULL)
        return false;
    size_t kept = 0;
    bool fits = true;
    for (const OSSL_ALGORITHM *a = all; a->algorithm_names != NULL && fits; a++) {
        if (!keep(a))
            continue;
        fits = kept < MAX_KEPT;
        if (fits)
            out[kept++] = *a;
    }
    memset(&out[kept], 0, sizeof(out[kept]));
    OSSL_PROVIDER_unquery_operation(tls.deflt, operation, all);
    return fits && kept > 0;
}

static const OSSL_ALGORITHM *filter_query(void *provctx, int operation, int *no_cache)
{
    (void)provctx;
    if (operation == OSSL_OP_KEYMGMT) {
        *no_cache = 0;
        return tls.keymgmt;
    }
    if (operation == OSSL_OP_DECODER) {
        *no_cache = 0;
        return tls.decoders;
    }
    return OSSL_PROVIDER_query_operation(tls.deflt, operation, no_cache);
}

static void filter_unquery(void *provctx, int operation, const OSSL_ALGORITHM *algorithms)
{
    (void)provctx;
    if (operation != OSSL_OP_KEYMGMT && operation != OSSL_OP_DECODER)
        OSSL_PROVIDER_unquery_operation(tls.deflt, operation, algorithms);
}

/* The TLS groups and signature algorithms libssl may offer are the default provider's: libssl
 * asks each provider of a context for them. */
static int filter_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
                                   void *arg)
{
    (void)provctx;
    return OSSL_PROVIDER_get_capabilities(tls.deflt, capability, cb, arg);
}

static const OSSL_DISPATCH FILTER_DISPATCH[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))filter_query},
    {OSSL_FUNC_PROVIDER_UNQUERY_OPERATION, (void (*)(void))filter_unquery},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))filter_get_capabilities},
    {0, NULL},
};

/* The provider's init: the algorithms run with the default provider's own context. */
static int filter_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle;
    (void)in;
    *provctx = OSSL_PROVIDER_get0_provider_ctx(tls.deflt);
    *out = FILTER_DISPATCH;
    return 1;
}

/* Gives up on the servers' context: everything built so far goes. */
static void abandon(const char *why)
{
    kp_log_warn("tls: %s; the servers use OpenSSL's default library context", why);
    OSSL_PROVIDER_unload(tls.deflt);
    OSSL_LIB_CTX_free(tls.hidden);
    tls.deflt = NULL;
    tls.hidden = NULL;
    ERR_clear_error();
}

static void build_libctx(void)
{
    ERR_clear_error();
    tls.hidden = OSSL_LIB_CTX_new();
    tls.deflt = tls.hidden ? OSSL_PROVIDER_load(tls.hidden, "default") : NULL;
    if (tls.deflt == NULL) {
        abandon("cannot load OpenSSL's default provider into a context of its own");
        return;
    }
    if (!filter_table(OSSL_OP_KEYMGMT, keep_keymgmt, tls.keymgmt) ||
        !filter_table(OSSL_OP_DECODER, keep_decoder, tls.decoders)) {
        abandon("the default provider's tables are not as expected");
        return;
    }
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_PROVIDER_add_builtin(libctx, PROVIDER_NAME, filter_init) ||
        OSSL_PROVIDER_load(libctx, PROVIDER_NAME) == NULL) {
        OSSL_LIB_CTX_free(libctx);
        abandon("cannot build the servers' library context");
        return;
    }
    tls.libctx = libctx; /* for the process's life, as tls.hidden */
}

OSSL_LIB_CTX *kp_tls_libctx(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_libctx);
    return tls.libctx;
}
