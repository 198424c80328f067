/*
 * net/tls.c - the TLS policy of kpki's HTTPS servers (one SSL_CTX, shared by every connection
 * made from it; a certificate reload builds a new one and swaps it in, see http.c).
 *
 * Policy, and where each rule comes from:
 *  - TLS 1.2 or later; TLS 1.2 only with ECDHE key exchange and AEAD ciphers (what Go's
 *    crypto/tls, hence kube-apiserver, negotiates with kubectl); TLS 1.3 with OpenSSL's three
 *    suites in Go's server order, AES-128-GCM first (on hardware with AES instructions):
 *    kube-apiserver gives kubectl TLS_AES_128_GCM_SHA256, where OpenSSL's own order would give
 *    TLS_AES_256_GCM_SHA384, whose key schedule and transcript hash run SHA-384, slower than
 *    SHA-256 (about 2 % of a full handshake here, docs/benchmarks.md). A client that lists
 *    ChaCha20-Poly1305 first (one without AES instructions, as many ARM edge nodes) gets it
 *    (SSL_OP_PRIORITIZE_CHACHA), as from Go's server.
 *  - ALPN: "http/1.1" only. kubectl (Go) offers "h2" then "http/1.1" and falls back; a client
 *    offering ALPN without http/1.1 gets the fatal no_application_protocol alert (RFC 7301 §3.2).
 *    A client offering no ALPN at all is served HTTP/1.1.
 *  - Client certificates are requested (SSL_VERIFY_PEER without FAIL_IF_NO_PEER_CERT) and never
 *    judged here: the chain verification accepts everything and the chain the client presented is
 *    handed to the request handler, whose authenticator decides (kube-apiserver's
 *    RequestClientCert + x509 authenticator split). The CertificateRequest names no CAs.
 *  - No compression (CRIME), no renegotiation (client-initiated renegotiation is a DoS lever and
 *    would change the peer mid-connection), a session id context (required by OpenSSL to resume
 *    sessions when peer verification is on).
 *  - No session resumption unless kp_tls_server_ctx_set_resumption asks for it. The cluster's
 *    own clients never resume: client-go leaves tls.Config.ClientSessionCache nil, which turns
 *    tickets off in a Go client, and Go has never resumed by session id. For them a ticket and
 *    a cached session are pure cost on every handshake (CPU, and about 11 KiB held per
 *    session). When resumption is on: no stateless tickets (OpenSSL serialises only the leaf
 *    into a ticket, so a resumed connection would lose the intermediates the client
 *    presented); with SSL_OP_NO_TICKET, resumption (TLS 1.2 session ids, TLS 1.3 stateful
 *    tickets) goes through this context's bounded session cache, which keeps the whole chain,
 *    and one ticket per TLS 1.3 handshake.
 *  - Encrypted private keys are refused (never a password prompt on the terminal).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "crypto/crypto.h"
#include "net/http.h"

/* TLS 1.2 suites: ECDHE + AEAD only (Go's secure default set). TLS 1.3 suites are OpenSSL's
 * defaults (AES-GCM and ChaCha20-Poly1305), all AEAD. */
static const char TLS12_CIPHERS[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* TLS 1.3 suites in the server's order (see the file comment): all of OpenSSL's defaults. */
static const char TLS13_SUITES[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/* The one protocol we speak, in ALPN wire format (length-prefixed). */
static const unsigned char ALPN_HTTP11[] = "\x08http/1.1";

static const unsigned char SESSION_ID_CONTEXT[] = "kpki-https";

/* A private key file larger than this is not one (an RSA-4096 PEM is about 3.3 KiB). */

/* Record, never judge: the handler's authenticator verifies the chain (see the file comment).
 * Installed as the whole chain verification, not as a verify callback: OpenSSL would otherwise
 * run X509_verify_cert against this context's empty store on every handshake (chain building,
 * extension and policy checks) only for the callback to ignore the verdict. The chain the
 * client sent stays available through SSL_get_peer_cert_chain. So SSL_get_verify_result is
 * always X509_V_OK and there is no verified chain: nothing may rely on either. */
static int accept_any_client_chain(X509_STORE_CTX *store, void *arg)
{
    (void)store;
    (void)arg;
    return 1;
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                       const unsigned char *client_protocols, unsigned int client_len, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *selected = NULL;
    unsigned char selected_len = 0;
    int status = SSL_select_next_proto(&selected, &selected_len, ALPN_HTTP11,
                                       sizeof(ALPN_HTTP11) - 1, client_protocols, client_len);
    if (status != OPENSSL_NPN_NEGOTIATED) {
        /* RFC 7301 §3.2: no protocol in common is a fatal no_application_protocol alert. */
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    *out_len = selected_len;
    return SSL_TLSEXT_ERR_OK;
}

/* OpenSSL's own messages for an unreadable file are poor ("system lib"); check first so the
 * error names the file and says why, with the usual errno kinds (absent -> not found ...). */
static enum kp_result check_readable(const char *what, const char *path, struct kp_error *err)
{
    if (path == NULL || path[0] == '\0') {
        return kp_error_set(err, KP_ERR_INVALID, "no %s file given", what);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return kp_error_errno(err, errno, "cannot read %s '%s'", what, path);
    }
    close(fd);
    return KP_OK;
}

/* SSL_CTX_use_PrivateKey_file, but the key is read as kpki reads private keys
 * (kp_key_from_pem: the PEM text wiped after use, encrypted keys refused) and in OpenSSL's
 * default library context: the servers' own (kp_tls_libctx) decodes public keys only. */
static enum kp_result use_private_key_file(SSL_CTX *ctx, const char *key_file,
                                           const char *cert_file, struct kp_error *err)
{
    EVP_PKEY *key = NULL;
    enum kp_result rc = kp_key_from_file(key_file, &key, err);
    if (rc != KP_OK) {
        kp_error_prefix(err, "cannot load the private key (PEM, unencrypted)");
        return rc;
    }
    ERR_clear_error();
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        unsigned long code = ERR_peek_last_error();
        if (ERR_GET_LIB(code) == ERR_LIB_X509 &&
            ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "the key '%s' does not match the certificate in '%s'", key_file,
                              cert_file);
        } else {
            rc = kp_error_openssl(err, KP_ERR_INVALID, "cannot use the private key '%s'",
                                  key_file);
        }
    }
    EVP_PKEY_free(key);
    return rc;
}

void kp_tls_server_ctx_set_resumption(SSL_CTX *ctx, size_t cache_entries)
{
    if (cache_entries == 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
        return;
    }
    /* Each cached session holds the client's chain (about 11 KiB): OpenSSL's default of 20,480
     * sessions, two per TLS 1.3 handshake, would let clients that never resume grow the server
     * by 200+ MB. One ticket per handshake and a bounded cache keep it to cache_entries. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, (long)cache_entries);
    SSL_CTX_set_num_tickets(ctx, 1);
}

enum kp_result kp_tls_server_ctx_new(const char *cert_file, const char *key_file, SSL_CTX **ctx,
                                     struct kp_error *err)
{
    enum kp_result result = KP_OK;
    SSL_CTX *server_ctx = NULL;
    *ctx = NULL;

    result = check_readable("certificate chain", cert_file, err);
    if (result != KP_OK) {
        goto cleanup;
    }
    result = check_readable("private key", key_file, err);
    if (result != KP_OK) {
        goto cleanup;
    }

    ERR_clear_error();
    server_ctx = SSL_CTX_new_ex(kp_tls_libctx(), NULL, TLS_server_method());
    if (server_ctx == NULL) {
        result = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot create a TLS server context");
        goto cleanup;
    }
    if (SSL_CTX_set_min_proto_version(server_ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(server_ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(server_ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set_session_id_context(server_ctx, SESSION_ID_CONTEXT,
                                       sizeof(SESSION_ID_CONTEXT) - 1) != 1) {
        result = kp_error_openssl(err, KP_ERR_INTERNAL, "cannot set the TLS policy");
        goto cleanup;
    }
    SSL_CTX_set_options(server_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                        SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                        SSL_OP_PRIORITIZE_CHACHA);
    kp_tls_server_ctx_set_resumption(server_ctx, 0);
    /* Idle connections (watches, kubelets) give their record buffers back. The chain sent is
     * the certificate file's: without SSL_MODE_NO_AUTO_CHAIN, OpenSSL would try to complete a
     * leaf-only file (kubeadm's apiserver.crt) from this context's certificate store on every
     * handshake, an X509_verify_cert against a store that is always empty. */
    SSL_CTX_set_mode(server_ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    SSL_CTX_set_verify(server_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(server_ctx, accept_any_client_chain, NULL);
    SSL_CTX_set_alpn_select_cb(server_ctx, select_alpn, NULL);

    if (SSL_CTX_use_certificate_chain_file(server_ctx, cert_file) != 1) {
        result = kp_error_openssl(err, KP_ERR_INVALID, "cannot load the certificate chain '%s'",
                                  cert_file);
        goto cleanup;
    }
    result = use_private_key_file(server_ctx, key_file, cert_file, err);
    if (result != KP_OK) {
        goto cleanup;
    }
    if (SSL_CTX_check_private_key(server_ctx) != 1) {
        result = kp_error_openssl(err, KP_ERR_INVALID,
                                  "the key '%s' does not match the certificate in '%s'", key_file,
                                  cert_file);
        goto cleanup;
    }

    *ctx = server_ctx;
    server_ctx = NULL;

cleanup:
    SSL_CTX_free(server_ctx);
    return result;
}
