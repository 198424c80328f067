/*
 * net/tls_libctx.c - the OpenSSL library context kpki's TLS servers run in: OpenSSL's default
 * provider, seen through a filter that offers only what a TLS 1.2/1.3 server uses.
 *
 * Why. In every full handshake the server decodes the client's certificate (d2i_X509), and
 * OpenSSL 3.0 decodes its public key through OSSL_DECODER_CTX_new_for_pkey, which builds its
 * decoder chains afresh on every call: it collects every key manager of the library context
 * (copying, to do so, every algorithm of every operation the context has built), then walks
 * every decoder, matching each against every key type. In the default provider that is 18 key
 * managers, about 60 decoders and, once libssl has fetched its ciphers and digests, some 200
 * algorithms, for one P-256 or RSA key. That walk was 17-20 % of the API server's CPU per
 * handshake (docs/benchmarks.md, fifth round; upstream: openssl/openssl#17950, fixed by
 * caching decoder contexts in 3.2, #21426; Debian 12 has 3.0). Filtered, a P-256 certificate
 * decodes in about 40 us instead of 120, once an SSL_CTX exists in the context (kpki-micro d2i,
 * docs/benchmarks.md, seventh round).
 *
 * How: the pattern of OpenSSL's own test/filterprov.c. The default provider is loaded into a
 * hidden library context; a built-in provider, "kpki-tls", is the only provider of a second
 * one, the servers'. It hands OpenSSL the hidden default provider's algorithm tables (and its
 * provider context, so the implementations run as they would there, bound to the hidden
 * context), each reduced to the algorithms listed below. Nothing here implements
 * cryptography, and OpenSSL's default context is not touched. The servers' SSL_CTXs
 * are made in the servers' context; everything else in the process (keys, certificates, CRLs,
 * JWTs) stays in the default one. Keys cross over as OpenSSL arranges it: the server's private
 * key, read in the default context (tls.c), is exported once to this provider's key manager
 * when the first handshake signs with it.
 *
 * What a TLS peer loses: a client certificate whose key is of a type not kept (SM2) no longer
 * decodes here. No OpenSSL client can present one: curl and openssl s_client refuse an SM2
 * certificate before connecting ("unknown certificate type"). What the server does with one
 * from another TLS stack is not tested. (The digests listed below are not those a certificate
 * may be signed with: a signature implementation fetches its digest in its own context, the
 * hidden one, which has them all.)
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
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "net/http.h"

#define PROVIDER_NAME "kpki-tls"
#define MAX_KEPT 32

/* What the servers' context offers, by operation and by the first name of each algorithm
 * (OpenSSL's canonical name). Why this matters: OpenSSL 3.0's EVP_KEYMGMT_do_all_provided,
 * which every decoding of a client certificate's key calls, copies every algorithm of every
 * operation the context has fetched so far (ossl_method_store_do_all), and fetching one
 * algorithm of an operation builds them all. The default provider's 124 ciphers, 22 digests,
 * 12 KDFs ... are copied on every handshake unless they are kept out.
 *
 * Kept, what libssl 3.0 fetches in this context for TLS 1.2 and 1.3 (ssl_load_ciphers, the key
 * schedules, ssl_setup_sig_algs, the group list), and the digests of the certificate
 * fingerprints (SHA-1, which OpenSSL caches per certificate, and SHA-256, the chain cache's):
 *  - key types a peer may use: certificate keys (EC, RSA, RSA-PSS, EdDSA, and DSA, which
 *    OpenSSL accepts in TLS 1.2 client certificates), key exchange (ECDHE, X25519/X448,
 *    FFDHE), and HMAC keys (the PSK binder; libssl also makes them for stateless cookies and
 *    TLS 1.2 record MACs, which kpki's configuration never uses);
 *  - the ciphers of the suites tls.c offers (AES-GCM and ChaCha20-Poly1305; no CBC suite, and
 *    no ticket is ever encrypted: resumption, when on, is stateful); the digests of the
 *    signature algorithms and handshake hashes (SHA-1 and SHA-2); HMAC; the TLS 1.2 PRF, the
 *    TLS 1.3 KDF and HKDF; the DRBGs and the seed source; the key exchanges and signatures of
 *    the key types above;
 *  - and a few libssl looks for though kpki's configuration never uses them (it copes without,
 *    but they cost one entry each): MD5 and MD5-SHA1 (TLS 1.0/1.1), RSA encryption (TLS 1.2
 *    RSA key exchange) and RSA KEM.
 * Every name must be found in the default provider, or the context is not built.
 * Operations not listed (encoders, stores) are the default provider's whole tables. */
static const char *const KEPT_KEYMGMT[] = {
    "EC", "RSA", "RSA-PSS", "DSA", "X25519", "X448", "ED25519", "ED448", "DH", "DHX", "HMAC", NULL,
};
static const char *const KEPT_CIPHERS[] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305", NULL};
static const char *const KEPT_DIGESTS[] = {
    "SHA1", "SHA2-224", "SHA2-256", "SHA2-384", "SHA2-512", "MD5", "MD5-SHA1", NULL,
};
static const char *const KEPT_MACS[] = {"HMAC", NULL};
static const char *const KEPT_KDFS[] = {"TLS1-PRF", "TLS13-KDF", "HKDF", NULL};
static const char *const KEPT_RANDS[] = {"CTR-DRBG", "HASH-DRBG", "HMAC-DRBG", "SEED-SRC", NULL};
static const char *const KEPT_KEYEXCH[] = {"ECDH", "X25519", "X448", "DH", NULL};
static const char *const KEPT_SIGNATURES[] = {
    "ECDSA", "RSA", "ED25519", "ED448", "DSA", "HMAC", NULL,
};
static const char *const KEPT_ASYM_CIPHERS[] = {"RSA", NULL};
static const char *const KEPT_KEMS[] = {"RSA", NULL};

/* The decoders kept: those of SubjectPublicKeyInfo for the key types a TLS client's
 * certificate can have, a key that signs the client's CertificateVerify. Not X25519, X448 or
 * DH keys, which cannot sign, and not the generic "DER" decoder, which only hands a
 * SubjectPublicKeyInfo on to the decoder of its type: d2i_X509 names the type itself. Each
 * decoder kept costs every decoding, for OpenSSL 3.0 matches each against every key type. */
static const char *const KEPT_DECODERS[] = {
    "EC", "RSA", "RSA-PSS", "DSA", "ED25519", "ED448", NULL,
};

/* One filtered operation: its kept names, and the table handed to OpenSSL. */
struct kept_table {
    int operation;
    const char *const *names;
    bool spki_only;                          /* decoders: SubjectPublicKeyInfo ones only */
    OSSL_ALGORITHM algorithms[MAX_KEPT + 1]; /* NULL-terminated */
};

static struct {
    OSSL_LIB_CTX *hidden; /* holds the default provider the filter forwards to */
    OSSL_PROVIDER *deflt; /* that provider; a reference */
    OSSL_LIB_CTX *libctx; /* NULL: not built (use the default context) */
} tls;

static struct kept_table kept_tables[] = {
    {OSSL_OP_KEYMGMT, KEPT_KEYMGMT, false, {{0}}},
    {OSSL_OP_DECODER, KEPT_DECODERS, true, {{0}}},
    {OSSL_OP_CIPHER, KEPT_CIPHERS, false, {{0}}},
    {OSSL_OP_DIGEST, KEPT_DIGESTS, false, {{0}}},
    {OSSL_OP_MAC, KEPT_MACS, false, {{0}}},
    {OSSL_OP_KDF, KEPT_KDFS, false, {{0}}},
    {OSSL_OP_RAND, KEPT_RANDS, false, {{0}}},
    {OSSL_OP_KEYEXCH, KEPT_KEYEXCH, false, {{0}}},
    {OSSL_OP_SIGNATURE, KEPT_SIGNATURES, false, {{0}}},
    {OSSL_OP_ASYM_CIPHER, KEPT_ASYM_CIPHERS, false, {{0}}},
    {OSSL_OP_KEM, KEPT_KEMS, false, {{0}}},
};
#define KEPT_TABLES (sizeof(kept_tables) / sizeof(kept_tables[0]))

static bool first_name_is(const char *names, const char *name)
{
    size_t len = strlen(name);
    return strncasecmp(names, name, len) == 0 && (names[len] == '\0' || names[len] == ':');
}

/* The index in table->names of the first name of algorithm, or -1 if it is not kept. */
static int kept_index(const struct kept_table *table, const OSSL_ALGORITHM *algorithm)
{
    if (table->spki_only &&
        (algorithm->property_definition == NULL ||
         strstr(algorithm->property_definition, "structure=SubjectPublicKeyInfo") == NULL))
        return -1;
    for (int i = 0; table->names[i] != NULL; i++)
        if (first_name_is(algorithm->algorithm_names, table->names[i]))
            return i;
    return -1;
}

/* Fills table->algorithms with the entries of the default provider's table that it keeps.
 * NULL if that worked, else what went wrong: "no NAME" for the first kept name the provider
 * does not have. The copies point into the provider's table: the default provider's
 * tables are static (it has no unquery function), so they outlive the query, as a cached
 * table would. */
static const char *filter_table(struct kept_table *table)
{
    int no_cache = 0;
    const OSSL_ALGORITHM *all =
        OSSL_PROVIDER_query_operation(tls.deflt, table->operation, &no_cache);
    if (all == NULL)
        return "no table at all";
    size_t kept = 0;
    bool seen[MAX_KEPT] = {false};
    const char *missing = NULL;
    for (const OSSL_ALGORITHM *a = all; a->algorithm_names != NULL && missing == NULL; a++) {
        int index = kept_index(table, a);
        if (index < 0)
            continue;
        if (kept == MAX_KEPT || index >= MAX_KEPT) {
            missing = "more entries than " PROVIDER_NAME " keeps (MAX_KEPT)";
            break;
        }
        seen[index] = true;
        table->algorithms[kept++] = *a;
    }
    memset(&table->algorithms[kept], 0, sizeof(table->algorithms[kept]));
    OSSL_PROVIDER_unquery_operation(tls.deflt, table->operation, all);
    static char absent[64]; /* build_libctx runs once (pthread_once) */
    for (int i = 0; missing == NULL && table->names[i] != NULL; i++)
        if (i >= MAX_KEPT || !seen[i]) {
            snprintf(absent, sizeof(absent), "no %s", table->names[i]);
            missing = absent;
        }
    return missing;
}

static const struct kept_table *kept_table_of(int operation)
{
    for (size_t i = 0; i < KEPT_TABLES; i++)
        if (kept_tables[i].operation == operation)
            return &kept_tables[i];
    return NULL;
}

static const OSSL_ALGORITHM *filter_query(void *provctx, int operation, int *no_cache)
{
    (void)provctx;
    const struct kept_table *table = kept_table_of(operation);
    if (table != NULL) {
        *no_cache = 0;
        return table->algorithms;
    }
    return OSSL_PROVIDER_query_operation(tls.deflt, operation, no_cache);
}

static void filter_unquery(void *provctx, int operation, const OSSL_ALGORITHM *algorithms)
{
    (void)provctx;
    if (kept_table_of(operation) == NULL)
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
    for (size_t i = 0; i < KEPT_TABLES; i++) {
        const char *missing = filter_table(&kept_tables[i]);
        if (missing != NULL) {
            kp_log_warn("tls: OpenSSL's default provider, operation %d: %s",
                        kept_tables[i].operation, missing);
            abandon("the default provider's tables are not as expected");
            return;
        }
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
