/*
 * api/reload.c without the thread or the network: real files in a temporary directory, changed
 * between calls of kp_reload_poll (a change is loaded at the second poll that sees it settled).
 * Pins: start-up refusals naming the flag; a CRL appearing, refused when another key signed it,
 * kept when it disappears; a request's snapshot surviving a swap; a mismatched serving pair never
 * swapped in; a key bundle feeding the authenticator and the JWKS; one bad file not blocking a
 * good change to another. The served behaviour is it_apiserver_reload.sh's.
 */
#include "testutil.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "core/core.h"
#include "crypto/crypto.h"

#define DAY 86400

static char dir[512];
static char cert_file[600], key_file[600], ca_file[600], crl_file[600], sa_file[600];
static EVP_PKEY *ca_key, *impostor_key, *leaf_key, *sa_key, *sa_key2;
static X509 *ca, *impostor, *alice, *serving;

static X509 *issue(const char *cn, bool is_ca, unsigned eku, EVP_PKEY *key, X509 *issuer,
                   EVP_PKEY *issuer_key)
{
    int64_t now = kp_clock_now(kp_clock_system());
    struct kp_cert_template tmpl = {
        .common_name = cn,
        .is_ca = is_ca,
        .key_usage = is_ca ? KP_KU_CERT_SIGN | KP_KU_CRL_SIGN | KP_KU_DIGITAL_SIGNATURE
                           : KP_KU_DIGITAL_SIGNATURE,
        .ext_key_usage = eku,
        .not_before = now - DAY,
        .not_after = now + 30 * DAY,
    };
    X509 *cert = NULL;
    struct kp_error err;
    assert_int_equal(kp_cert_issue(&tmpl, key, issuer, issuer_key, &cert, &err), KP_OK);
    assert_int_equal(kp_cert_reload(&cert, &err), KP_OK);
    return cert;
}

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *key = NULL;
    struct kp_error err;
    assert_int_equal(kp_key_generate(KP_KEY_ECDSA_P256, &key, &err), KP_OK);
    return key;
}

/* Writes text to path the way careful writers do: a new file renamed over the old one. */
static void write_file(const char *path, const char *text, size_t len)
{
    struct kp_error err;
    assert_int_equal(kp_file_write_atomic(path, text, len, 0600, &err), KP_OK);
}

static void write_cert(const char *path, X509 *cert)
{
    char *pem = NULL;
    size_t len = 0;
    struct kp_error err;
    assert_int_equal(kp_cert_to_pem(cert, &pem, &len, &err), KP_OK);
    write_file(path, pem, len);
    free(pem);
}

static void write_key(const char *path, EVP_PKEY *key, bool public_only)
{
    char *pem = NULL;
    size_t len = 0;
    struct kp_error err;
    if (public_only) {
        assert_int_equal(kp_pubkey_to_pem(key, &pem, &len, &err), KP_OK);
        write_file(path, pem, len);
        free(pem);
    } else {
        assert_int_equal(kp_key_to_pem(key, &pem, &len, &err), KP_OK);
        write_file(path, pem, len);
        kp_secret_free(pem, len);
    }
}

/* A CRL by signer (named like the CA) listing `revoked` (NULL: none). */
static void write_crl(X509 *signer, EVP_PKEY *signer_key, X509 *revoked)
{
    int64_t now = kp_clock_now(kp_clock_system());
    struct kp_crl_entry entry = {.revoked_at = now - 60, .reason = KP_CRL_KEY_COMPROMISE};
    if (revoked)
        kp_cert_serial_hex(revoked, entry.serial_hex, sizeof(entry.serial_hex));
    X509_CRL *crl = NULL;
    char *pem = NULL;
    size_t len = 0;
    struct kp_error err;
    assert_int_equal(kp_crl_build(signer, signer_key, revoked ? &entry : NULL, revoked ? 1 : 0, 1,
                                  now - 60, now + DAY, &crl, &err),
                     KP_OK);
    assert_int_equal(kp_crl_to_pem(crl, &pem, &len, &err), KP_OK);
    write_file(crl_file, pem, len);
    free(pem);
    X509_CRL_free(crl);
}

static int group_setup(void **state)
{
    (void)state;
    ca_key = new_key();
    impostor_key = new_key();
    leaf_key = new_key();
    sa_key = new_key();
    sa_key2 = new_key();
    ca = issue("kubernetes", true, 0, ca_key, NULL, NULL);
    impostor = issue("kubernetes", true, 0, impostor_key, NULL, NULL); /* same name, other key */
    alice = issue("alice", false, KP_EKU_CLIENT_AUTH, leaf_key, ca, ca_key);
    serving = issue("kube-apiserver", false, KP_EKU_SERVER_AUTH, leaf_key, ca, ca_key);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509 *certs[] = {ca, impostor, alice, serving};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    EVP_PKEY *keys[] = {ca_key, impostor_key, leaf_key, sa_key, sa_key2};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

/* A server's worth of state for reload.c: config, signing key, clock, the trust lock. */
static struct kp_api api;

static int setup(void **state)
{
    (void)state;
    test_make_dir("api_reload", dir, sizeof(dir));
    test_path(cert_file, sizeof(cert_file), dir, "apiserver.crt");
    test_path(key_file, sizeof(key_file), dir, "apiserver.key");
    test_path(ca_file, sizeof(ca_file), dir, "ca.crt");
    test_path(crl_file, sizeof(crl_file), dir, "ca.crl");
    test_path(sa_file, sizeof(sa_file), dir, "sa.pub");
    write_cert(cert_file, serving);
    write_key(key_file, leaf_key, false);
    write_cert(ca_file, ca);
    write_key(sa_file, sa_key, true);
    memset(&api, 0, sizeof(api));
    kp_apiserver_config_init(&api.config);
    struct kp_apiserver_config *c = &api.config;
    c->tls_cert_file = cert_file;
    c->tls_private_key_file = key_file;
    c->client_ca_file = ca_file;
    c->client_crl_file = crl_file; /* absent for now */
    struct kp_error err;
    assert_int_equal(kp_strlist_add(&c->service_account_key_files, sa_file, &err), KP_OK);
    assert_int_equal(kp_strlist_add(&c->service_account_issuers, "https://issuer", &err), KP_OK);
    assert_int_equal(kp_strlist_add(&c->api_audiences, "https://issuer", &err), KP_OK);
    api.clock = kp_clock_system();
    api.signing_key = sa_key;
    pthread_mutex_init(&api.trust_lock, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kp_trust_unref(api.trust);
    pthread_mutex_destroy(&api.trust_lock);
    kp_apiserver_config_wipe(&api.config);
    test_remove_tree(dir);
    return 0;
}

static struct kp_reload *start(void)
{
    struct kp_reload *reload = NULL;
    struct kp_error err;
    if (kp_reload_new(&api, &reload, &err) != KP_OK)
        fail_msg("kp_reload_new: %s", err.message);
    assert_non_null(api.trust);
    return reload;
}

/* Two polls: the first sees the change, the second sees it settled and loads it. */
static void settle(struct kp_reload *reload)
{
    kp_reload_poll(reload);
    kp_reload_poll(reload);
}

/* How the snapshot judges alice's certificate. */
static enum kp_authn_outcome judge_alice(const struct kp_trust *trust)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(chain);
    sk_X509_push(chain, alice);
    struct kp_authn_input input = {.peer_chain = chain};
    struct kp_user user;
    struct kp_authn_result result;
    struct kp_error err;
    assert_int_equal(kp_authn_request(trust->authn, &input, kp_clock_now(api.clock), &user,
                                      &result, &err),
                     KP_OK);
    enum kp_authn_outcome outcome = result.outcome;
    kp_user_wipe(&user);
    kp_authn_result_wipe(&result);
    sk_X509_free(chain);
    return outcome;
}

static enum kp_authn_outcome judge_alice_now(void)
{
    struct kp_trust *trust = kp_api_trust(&api);
    enum kp_authn_outcome outcome = judge_alice(trust);
    kp_trust_unref(trust);
    return outcome;
}

static void test_start_refuses_bad_files(void **state)
{
    (void)state;
    struct kp_reload *reload = NULL;
    struct kp_error err;
    write_file(crl_file, "garbage\n", 8);
    assert_int_equal(kp_reload_new(&api, &reload, &err), KP_ERR_INVALID);
    assert_null(reload);
    assert_non_null(strstr(err.message, "--client-crl-file"));
    unlink(crl_file);
    write_key(key_file, sa_key, false); /* not the certificate's key */
    assert_int_equal(kp_reload_new(&api, &reload, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "--tls-cert-file/--tls-private-key-file"));
    assert_non_null(strstr(err.message, "does not match"));
    assert_null(api.trust);
}

static void test_crl_appears_is_checked_and_kept(void **state)
{
    (void)state;
    struct kp_reload *reload = start();
    assert_int_equal(judge_alice_now(), KP_AUTHN_AUTHENTICATED);
    struct kp_trust *in_flight = kp_api_trust(&api); /* a request that started before */

    write_crl(ca, ca_key, alice);
    settle(reload);
    assert_int_equal(judge_alice_now(), KP_AUTHN_REFUSED);
    /* The request in flight keeps the snapshot it took, whole. */
    assert_int_equal(judge_alice(in_flight), KP_AUTHN_AUTHENTICATED);
    kp_trust_unref(in_flight);

    /* A CRL of the CA's name by another key is refused: the last good one stays. */
    struct kp_trust *before = kp_api_trust(&api);
    write_crl(impostor, impostor_key, NULL);
    settle(reload);
    struct kp_trust *after = kp_api_trust(&api);
    assert_ptr_equal(before, after); /* nothing swapped */
    assert_int_equal(judge_alice_now(), KP_AUTHN_REFUSED);
    kp_trust_unref(before);
    kp_trust_unref(after);

    /* Removed: the revocations stay in force. */
    unlink(crl_file);
    settle(reload);
    assert_int_equal(judge_alice_now(), KP_AUTHN_REFUSED);
    /* A good CRL that revokes nobody: alice again. */
    write_crl(ca, ca_key, NULL);
    settle(reload);
    assert_int_equal(judge_alice_now(), KP_AUTHN_AUTHENTICATED);
    kp_reload_free(reload);
}

static void test_one_poll_is_not_enough(void **state)
{
    (void)state;
    struct kp_reload *reload = start();
    write_crl(ca, ca_key, alice);
    kp_reload_poll(reload); /* seen moving: not loaded yet */
    assert_int_equal(judge_alice_now(), KP_AUTHN_AUTHENTICATED);
    kp_reload_poll(reload);
    assert_int_equal(judge_alice_now(), KP_AUTHN_REFUSED);
    kp_reload_free(reload);
}

static void test_serving_pair(void **state)
{
    (void)state;
    struct kp_reload *reload = start();
    SSL_CTX *first = kp_reload_ssl_ctx(reload);
    /* A good certificate for another key: refused, the context stays. */
    X509 *renewed = issue("kube-apiserver", false, KP_EKU_SERVER_AUTH, sa_key, ca, ca_key);
    write_cert(cert_file, renewed);
    X509_free(renewed);
    settle(reload);
    assert_ptr_equal(kp_reload_ssl_ctx(reload), first);
    /* Its key follows: the pair matches, a new context serves it. */
    write_key(key_file, sa_key, false);
    settle(reload);
    SSL_CTX *second = kp_reload_ssl_ctx(reload);
    assert_ptr_not_equal(second, first);
    assert_true(kp_key_public_equal(X509_get0_pubkey(SSL_CTX_get0_certificate(second)), sa_key));
    kp_reload_free(reload);
}

static size_t jwks_size(void)
{
    struct kp_trust *trust = kp_api_trust(&api);
    size_t count = json_array_size(json_object_get(trust->jwks, "keys"));
    kp_trust_unref(trust);
    return count;
}

static void test_key_bundle_and_a_bad_neighbour(void **state)
{
    (void)state;
    struct kp_reload *reload = start();
    assert_int_equal(jwks_size(), 1); /* sa.pub is the signing key's: once */
    /* A bad CA file and a good key bundle change in the same poll: the CA is refused, the keys
     * are taken. */
    char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    struct kp_error err;
    assert_int_equal(kp_pubkey_to_pem(sa_key, &first, &first_len, &err), KP_OK);
    assert_int_equal(kp_pubkey_to_pem(sa_key2, &second, &second_len, &err), KP_OK);
    char *bundle = malloc(first_len + second_len + 1);
    assert_non_null(bundle);
    memcpy(bundle, first, first_len);
    memcpy(bundle + first_len, second, second_len);
    write_file(sa_file, bundle, first_len + second_len);
    write_file(ca_file, "garbage\n", 8);
    settle(reload);
    assert_int_equal(jwks_size(), 2);
    assert_int_equal(judge_alice_now(), KP_AUTHN_AUTHENTICATED); /* the last good CA */
    /* Only the second key left: the signing key is still a verification key. */
    write_file(sa_file, second, second_len);
    settle(reload);
    assert_int_equal(jwks_size(), 2);
    free(first);
    free(second);
    free(bundle);
    kp_reload_free(reload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_refuses_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_appears_is_checked_and_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_poll_is_not_enough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serving_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_bundle_and_a_bad_neighbour, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
