/*
 * Chain verification, table-driven: every row builds a chain, verifies it for a purpose and a
 * name at a time, and pins the expected reason.
 */
#include "testutil.h"

#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "verify/verify.h"

#define NOW 1800000000LL
#define DAY 86400LL

/* A certificate built directly with OpenSSL so a test can give it any extension. `extensions`
 * is "name=value|name=value" in openssl.cnf syntax. issuer NULL = self-signed. */
static X509 *make(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                  int64_t not_before, int64_t not_after, const char *extensions)
{
    static long serial = 1000;
    X509 *cert = X509_new();
    X509_set_version(cert, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before);
    ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after);
    X509_set_pubkey(cert, key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
    char buffer[1024];
    snprintf(buffer, sizeof(buffer), "%s", extensions);
    for (char *item = buffer, *next; item != NULL && *item != '\0'; item = next) {
        next = strchr(item, '|');
        if (next != NULL) {
            *next++ = '\0';
        }
        char *equals = strchr(item, '=');
        assert_non_null(equals);
        *equals = '\0';
        X509_EXTENSION *ext = X509V3_EXT_nconf(NULL, &ctx, item, equals + 1);
        if (ext == NULL) {
            fail_msg("bad extension %s=%s", item, equals + 1);
        }
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(cert, issuer_key != NULL ? issuer_key : key, EVP_sha256());
    return cert;
}

static EVP_PKEY *key(void)
{
    EVP_PKEY *pkey = NULL;
    struct kp_error err;
    assert_int_equal(kp_key_generate(KP_KEY_ECDSA_P256, &pkey, &err), KP_OK);
    return pkey;
}

#define CA_EXT "basicConstraints=critical,CA:TRUE|keyUsage=critical,keyCertSign,cRLSign,digitalSignature|subjectKeyIdentifier=hash"
#define SERVER_EXT "basicConstraints=critical,CA:FALSE|keyUsage=critical,digitalSignature,keyEncipherment|extendedKeyUsage=serverAuth|subjectAltName=DNS:api.example.com,IP:10.0.0.1|authorityKeyIdentifier=keyid"
#define CLIENT_EXT "basicConstraints=critical,CA:FALSE|keyUsage=critical,digitalSignature|extendedKeyUsage=clientAuth|authorityKeyIdentifier=keyid"

static EVP_PKEY *root_key, *other_key, *inter_key, *leaf_key;
static X509 *root, *other_root, *intermediate;

static int setup(void **state)
{
    (void)state;
    root_key = key();
    other_key = key();
    inter_key = key();
    leaf_key = key();
    root = make("root", root_key, NULL, NULL, NOW - DAY, NOW + 3650 * DAY, CA_EXT);
    other_root = make("root", other_key, NULL, NULL, NOW - DAY, NOW + 3650 * DAY, CA_EXT);
    intermediate = make("intermediate", inter_key, root, root_key, NOW - DAY, NOW + 365 * DAY,
                        CA_EXT "|authorityKeyIdentifier=keyid");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509_free(root);
    X509_free(other_root);
    X509_free(intermediate);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(inter_key);
    EVP_PKEY_free(leaf_key);
    return 0;
}

static enum kp_verify_reason run(X509 *leaf, X509 *anchor, X509 *untrusted1, X509 *untrusted2,
                                 X509_CRL *crl, int64_t at, enum kp_verify_purpose purpose,
                                 const char *dns, const char *ip_text, int max_depth)
{
    STACK_OF(X509) *anchors = sk_X509_new_null();
    sk_X509_push(anchors, anchor);
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (untrusted1 != NULL) {
        sk_X509_push(untrusted, untrusted1);
    }
    if (untrusted2 != NULL) {
        sk_X509_push(untrusted, untrusted2);
    }
    STACK_OF(X509_CRL) *crls = NULL;
    if (crl != NULL) {
        crls = sk_X509_CRL_new_null();
        sk_X509_CRL_push(crls, crl);
    }
    struct kp_ip ip;
    if (ip_text != NULL) {
        assert_true(kp_ip_parse(ip_text, &ip));
    }
    struct kp_verify_params params = {
        .anchors = anchors,
        .untrusted = untrusted,
        .crls = crls,
        .at = at,
        .purpose = purpose,
        .dns_name = dns,
        .ip = ip_text != NULL ? &ip : NULL,
        .max_depth = max_depth,
    };
    struct kp_verify_result result;
    struct kp_error err;
    assert_int_equal(kp_verify_chain(&params, leaf, &result, &err), KP_OK);
    enum kp_verify_reason reason = result.reason;
    if (reason == KP_VERIFY_OK) {
        assert_non_null(result.chain);
        assert_true(sk_X509_num(result.chain) >= 2);
    } else {
        assert_true(strlen(result.message) > 0);
    }
    kp_verify_result_wipe(&result);
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    sk_X509_CRL_free(crls);
    return reason;
}

static void expect(enum kp_verify_reason got, enum kp_verify_reason want, const char *row)
{
    if (got != want) {
        fail_msg("%s: got %s, want %s", row, kp_verify_reason_name(got),
                 kp_verify_reason_name(want));
    }
}

static void test_server_chains(void **state)
{
    (void)state;
    X509 *server = make("api", leaf_key, intermediate, inter_key, NOW - DAY, NOW + 30 * DAY,
                        SERVER_EXT);
    X509 *direct = make("api", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY, SERVER_EXT);
    X509 *client = make("user", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY, CLIENT_EXT);
    X509 *cn_only = make("api.example.com", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY,
                         "basicConstraints=critical,CA:FALSE|extendedKeyUsage=serverAuth");
    X509 *no_eku = make("api", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY,
                        "basicConstraints=critical,CA:FALSE|subjectAltName=DNS:api.example.com");
    const struct {
        const char *row;
        X509 *leaf, *anchor, *u1;
        int64_t at;
        enum kp_verify_purpose purpose;
        const char *dns, *ip;
        enum kp_verify_reason want;
    } rows[] = {
        {"through an intermediate", server, root, intermediate, NOW, KP_PURPOSE_SERVER,
         "api.example.com", NULL, KP_VERIFY_OK},
        {"an intermediate as the anchor", server, intermediate, NULL, NOW, KP_PURPOSE_SERVER,
         NULL, NULL, KP_VERIFY_OK},
        {"by IP", direct, root, NULL, NOW, KP_PURPOSE_SERVER, NULL, "10.0.0.1", KP_VERIFY_OK},
        {"missing intermediate", server, root, NULL, NOW, KP_PURPOSE_SERVER, NULL, NULL,
         KP_VERIFY_UNKNOWN_AUTHORITY},
        {"wrong CA of the same name", direct, other_root, NULL, NOW, KP_PURPOSE_SERVER, NULL,
         NULL, KP_VERIFY_UNKNOWN_AUTHORITY},
        {"expired", direct, root, NULL, NOW + 60 * DAY, KP_PURPOSE_SERVER, NULL, NULL,
         KP_VERIFY_EXPIRED},
        {"not yet valid", direct, root, NULL, NOW - 2 * DAY, KP_PURPOSE_SERVER, NULL, NULL,
         KP_VERIFY_NOT_YET_VALID},
        {"client cert used as server", client, root, NULL, NOW, KP_PURPOSE_SERVER, NULL, NULL,
         KP_VERIFY_WRONG_USAGE},
        {"server cert used as client", direct, root, NULL, NOW, KP_PURPOSE_CLIENT, NULL, NULL,
         KP_VERIFY_WRONG_USAGE},
        {"client as client", client, root, NULL, NOW, KP_PURPOSE_CLIENT, NULL, NULL,
         KP_VERIFY_OK},
        {"no EKU passes, as in Go", no_eku, root, NULL, NOW, KP_PURPOSE_CLIENT, NULL, NULL,
         KP_VERIFY_OK},
        {"name mismatch", direct, root, NULL, NOW, KP_PURPOSE_SERVER, "evil.example.com", NULL,
         KP_VERIFY_NAME_MISMATCH},
        {"IP mismatch", direct, root, NULL, NOW, KP_PURPOSE_SERVER, NULL, "10.0.0.2",
         KP_VERIFY_NAME_MISMATCH},
        {"CN-only name is not a SAN", cn_only, root, NULL, NOW, KP_PURPOSE_SERVER,
         "api.example.com", NULL, KP_VERIFY_NAME_MISMATCH},
        {"depth limit", server, root, intermediate, NOW, KP_PURPOSE_SERVER, NULL, NULL,
         KP_VERIFY_OK},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        expect(run(rows[i].leaf, rows[i].anchor, rows[i].u1, NULL, NULL, rows[i].at,
                   rows[i].purpose, rows[i].dns, rows[i].ip, 0),
               rows[i].want, rows[i].row);
    }
    X509_free(server);
    X509_free(direct);
    X509_free(client);
    X509_free(cn_only);
    X509_free(no_eku);
}

static void test_ca_rules(void **state)
{
    (void)state;
    EVP_PKEY *k2 = key();
    /* An "intermediate" without CA:TRUE cannot issue. */
    X509 *not_ca = make("not-a-ca", k2, root, root_key, NOW - DAY, NOW + 365 * DAY,
                        "basicConstraints=critical,CA:FALSE|subjectKeyIdentifier=hash|"
                        "authorityKeyIdentifier=keyid");
    X509 *via_not_ca = make("leaf", leaf_key, not_ca, k2, NOW - DAY, NOW + 30 * DAY, CLIENT_EXT);
    expect(run(via_not_ca, root, not_ca, NULL, NULL, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 0),
           KP_VERIFY_NOT_A_CA, "intermediate without CA flag");
    /* pathlen:0 on the intermediate, then one more CA below it. */
    EVP_PKEY *k3 = key();
    X509 *limited = make("limited", k2, root, root_key, NOW - DAY, NOW + 365 * DAY,
                         "basicConstraints=critical,CA:TRUE,pathlen:0|keyUsage=critical,"
                         "keyCertSign|subjectKeyIdentifier=hash|authorityKeyIdentifier=keyid");
    X509 *sub = make("sub", k3, limited, k2, NOW - DAY, NOW + 365 * DAY,
                     CA_EXT "|authorityKeyIdentifier=keyid");
    X509 *deep = make("leaf", leaf_key, sub, k3, NOW - DAY, NOW + 30 * DAY, CLIENT_EXT);
    expect(run(deep, root, limited, sub, NULL, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 0),
           KP_VERIFY_PATH_LENGTH, "path length exceeded");
    expect(run(deep, root, limited, sub, NULL, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 1),
           KP_VERIFY_DEPTH, "maximum depth 1");
    /* A CA whose KeyUsage lacks keyCertSign. */
    X509 *no_certsign = make("no-certsign", k2, root, root_key, NOW - DAY, NOW + 365 * DAY,
                             "basicConstraints=critical,CA:TRUE|keyUsage=critical,"
                             "digitalSignature|subjectKeyIdentifier=hash");
    X509 *under = make("leaf", leaf_key, no_certsign, k2, NOW - DAY, NOW + 30 * DAY, CLIENT_EXT);
    expect(run(under, root, no_certsign, NULL, NULL, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 0),
           KP_VERIFY_CA_KEY_USAGE, "CA without keyCertSign");
    /* An unknown critical extension (a private OID marked critical). */
    X509 *odd = make("leaf", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY,
                     CLIENT_EXT "|1.3.6.1.4.1.57683.99=critical,ASN1:UTF8String:x");
    expect(run(odd, root, NULL, NULL, NULL, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 0),
           KP_VERIFY_CRITICAL_EXTENSION, "unknown critical extension");
    /* Name constraints: the CA may only issue for *.example.com. */
    X509 *constrained = make("constrained", k2, root, root_key, NOW - DAY, NOW + 365 * DAY,
                             CA_EXT "|nameConstraints=critical,permitted;DNS:.example.com");
    X509 *outside = make("leaf", leaf_key, constrained, k2, NOW - DAY, NOW + 30 * DAY,
                         "basicConstraints=critical,CA:FALSE|extendedKeyUsage=serverAuth|"
                         "subjectAltName=DNS:api.example.org");
    expect(run(outside, root, constrained, NULL, NULL, NOW, KP_PURPOSE_SERVER, NULL, NULL, 0),
           KP_VERIFY_NAME_CONSTRAINTS, "name constraints");
    X509_free(under);
    X509 *bad_signature = make("leaf", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY,
                               CLIENT_EXT);
    const ASN1_BIT_STRING *signature = NULL;
    X509_get0_signature(&signature, NULL, bad_signature);
    ((ASN1_BIT_STRING *)signature)->data[10] ^= 0x55;
    expect(run(bad_signature, root, NULL, NULL, NULL, NOW, KP_PURPOSE_ANY, NULL, NULL, 0),
           KP_VERIFY_BAD_SIGNATURE, "bad signature");
    X509 *certs[] = {not_ca, via_not_ca, limited, sub, deep, no_certsign, odd, constrained,
                     outside, bad_signature};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
        X509_free(certs[i]);
    }
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
}

/* The root's CRL listing `revoked` (number 7, current for a week), a stale one (past its
 * nextUpdate), and one from another CA of the root's name (another key). */
static void make_crls(X509 *revoked, X509_CRL **crl, X509_CRL **stale, X509_CRL **foreign)
{
    struct kp_crl_entry entry = {.revoked_at = NOW - 3600, .reason = KP_CRL_KEY_COMPROMISE};
    kp_cert_serial_hex(revoked, entry.serial_hex, sizeof(entry.serial_hex));
    struct kp_error err;
    assert_int_equal(kp_crl_build(root, root_key, &entry, 1, 7, NOW - 60, NOW + 7 * DAY, crl,
                                  &err),
                     KP_OK);
    assert_int_equal(kp_crl_build(root, root_key, &entry, 1, 6, NOW - 9 * DAY, NOW - 2 * DAY,
                                  stale, &err),
                     KP_OK);
    assert_int_equal(kp_crl_build(other_root, other_key, NULL, 0, 1, NOW - 60, NOW + DAY,
                                  foreign, &err),
                     KP_OK);
}

static void test_revocation(void **state)
{
    (void)state;
    X509 *revoked = make("revoked", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY,
                         CLIENT_EXT);
    X509 *fine = make("fine", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY, CLIENT_EXT);
    X509_CRL *crl = NULL, *stale = NULL, *foreign = NULL;
    struct kp_error err;
    make_crls(revoked, &crl, &stale, &foreign);
    expect(run(revoked, root, NULL, NULL, crl, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 0),
           KP_VERIFY_REVOKED, "revoked");
    expect(run(fine, root, NULL, NULL, crl, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 0), KP_VERIFY_OK,
           "not revoked");
    expect(run(fine, root, NULL, NULL, stale, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 0),
           KP_VERIFY_CRL_PROBLEM, "expired CRL");
    expect(run(fine, root, NULL, NULL, foreign, NOW, KP_PURPOSE_CLIENT, NULL, NULL, 0),
           KP_VERIFY_CRL_PROBLEM, "CRL from another CA of the same name");
    /* The CRL API itself. */
    assert_true(kp_crl_signed_by(crl, root));
    assert_false(kp_crl_signed_by(crl, other_root));
    assert_true(kp_crl_lists(crl, revoked));
    assert_false(kp_crl_lists(crl, fine));
    assert_int_equal(kp_crl_number(crl), 7);
    assert_int_equal(kp_crl_this_update(crl), NOW - 60);
    assert_int_equal(kp_crl_next_update(crl), NOW + 7 * DAY);
    struct kp_crl_entry *entries = NULL;
    size_t count = 0;
    assert_int_equal(kp_crl_entries(crl, &entries, &count, &err), KP_OK);
    assert_int_equal(count, 1);
    char revoked_serial[80];
    kp_cert_serial_hex(revoked, revoked_serial, sizeof(revoked_serial));
    assert_string_equal(entries[0].serial_hex, revoked_serial);
    assert_int_equal(entries[0].reason, KP_CRL_KEY_COMPROMISE);
    assert_int_equal(entries[0].revoked_at, NOW - 3600);
    free(entries);
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(kp_crl_to_pem(crl, &pem, &len, &err), KP_OK);
    X509_CRL *parsed = NULL;
    assert_int_equal(kp_crl_from_pem(pem, len, "crl", &parsed, &err), KP_OK);
    assert_true(kp_crl_lists(parsed, revoked));
    X509_CRL_free(parsed);
    free(pem);
    assert_int_equal(kp_crl_from_pem("-----BEGIN X509 CRL-----\nAAAA\n", 30, "bad.crl", &parsed,
                                     &err),
                     KP_ERR_INVALID);
    enum kp_crl_reason reason;
    assert_true(kp_crl_reason_parse("keycompromise", &reason));
    assert_int_equal(reason, KP_CRL_KEY_COMPROMISE);
    assert_false(kp_crl_reason_parse("removeFromCRL", &reason));
    X509_CRL_free(crl);
    X509_CRL_free(stale);
    X509_CRL_free(foreign);
    X509_free(revoked);
    X509_free(fine);
}

/* Many same-named intermediates that do not chain: OpenSSL must give up quickly. */
static void test_pathological_input_is_bounded(void **state)
{
    (void)state;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    EVP_PKEY *k = key();
    for (int i = 0; i < KP_VERIFY_MAX_UNTRUSTED; i++) {
        sk_X509_push(untrusted, make("loop", k, NULL, NULL, NOW - DAY, NOW + DAY, CA_EXT));
    }
    X509 *leaf = make("leaf", leaf_key, sk_X509_value(untrusted, 0), k, NOW - DAY, NOW + DAY,
                      CLIENT_EXT);
    STACK_OF(X509) *anchors = sk_X509_new_null();
    sk_X509_push(anchors, root);
    struct kp_verify_params params = {.anchors = anchors, .untrusted = untrusted, .at = NOW};
    struct kp_verify_result result;
    struct kp_error err;
    clock_t started = clock();
    assert_int_equal(kp_verify_chain(&params, leaf, &result, &err), KP_OK);
    assert_int_equal(result.reason, KP_VERIFY_UNKNOWN_AUTHORITY);
    kp_verify_result_wipe(&result);
    (void)started; /* timing is measured by bench/, not asserted here */
    sk_X509_push(untrusted, leaf);
    assert_int_equal(kp_verify_chain(&params, leaf, &result, &err), KP_ERR_INVALID);
    sk_X509_pop(untrusted);
    struct kp_verify_params none = {.at = NOW};
    assert_int_equal(kp_verify_chain(&none, leaf, &result, &err), KP_ERR_INVALID);
    X509_free(leaf);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_free(anchors);
    EVP_PKEY_free(k);
}

/* A lone leaf from a CA no anchor names is refused without building a store (the front-proxy
 * authenticator's common case); the verdict and message are those of the full verification,
 * which an unrelated intermediate forces. A self-issued leaf and a leaf that is itself an
 * anchor still take the full path. */
static void test_no_anchor_can_issue_shortcut(void **state)
{
    (void)state;
    EVP_PKEY *elsewhere_key = key();
    X509 *elsewhere = make("elsewhere", elsewhere_key, NULL, NULL, NOW - DAY, NOW + DAY, CA_EXT);
    X509 *leaf = make("stranger", leaf_key, elsewhere, elsewhere_key, NOW - DAY, NOW + DAY,
                      CLIENT_EXT);
    STACK_OF(X509) *anchors = sk_X509_new_null();
    sk_X509_push(anchors, root);
    struct kp_verify_params params = {.anchors = anchors, .at = NOW};
    struct kp_verify_result shortcut, full;
    struct kp_error err;
    assert_int_equal(kp_verify_chain(&params, leaf, &shortcut, &err), KP_OK);
    STACK_OF(X509) *unrelated = sk_X509_new_null();
    sk_X509_push(unrelated, intermediate);
    params.untrusted = unrelated;
    assert_int_equal(kp_verify_chain(&params, leaf, &full, &err), KP_OK);
    assert_int_equal(shortcut.reason, KP_VERIFY_UNKNOWN_AUTHORITY);
    assert_int_equal(full.reason, KP_VERIFY_UNKNOWN_AUTHORITY);
    assert_int_equal(shortcut.depth, full.depth);
    assert_string_equal(shortcut.message, full.message);
    kp_verify_result_wipe(&shortcut);
    kp_verify_result_wipe(&full);
    /* The anchor itself presented as the leaf (partial chains): trusted, not refused. */
    params.untrusted = NULL;
    sk_X509_push(anchors, elsewhere);
    assert_int_equal(kp_verify_chain(&params, leaf, &full, &err), KP_OK);
    assert_int_equal(full.reason, KP_VERIFY_OK);
    kp_verify_result_wipe(&full);
    (void)sk_X509_pop(anchors);
    /* A self-signed stranger gets OpenSSL's own verdict, not the shortcut's. */
    assert_int_equal(kp_verify_chain(&params, elsewhere, &full, &err), KP_OK);
    assert_int_not_equal(full.reason, KP_VERIFY_OK);
    assert_null(strstr(full.message, "unable to get local issuer"));
    kp_verify_result_wipe(&full);
    sk_X509_free(unrelated);
    sk_X509_free(anchors);
    X509_free(leaf);
    X509_free(elsewhere);
    EVP_PKEY_free(elsewhere_key);
}

/* KP_CRL_PUBLISHED_ISSUERS: a CA without a CRL is not checked; a CA with one is, fully. */
static enum kp_verify_reason run_published(X509 *leaf, X509 *second, X509 *untrusted,
                                           X509_CRL *crl, enum kp_crl_scope scope)
{
    STACK_OF(X509) *anchors = sk_X509_new_null(), *chain = sk_X509_new_null();
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    sk_X509_push(anchors, root);
    sk_X509_push(anchors, second);
    if (untrusted != NULL) {
        sk_X509_push(chain, untrusted);
    }
    sk_X509_CRL_push(crls, crl);
    struct kp_verify_params params = {.anchors = anchors, .untrusted = chain, .crls = crls,
                                      .crl_scope = scope, .at = NOW,
                                      .purpose = KP_PURPOSE_CLIENT};
    struct kp_verify_result result;
    struct kp_error err;
    assert_int_equal(kp_verify_chain(&params, leaf, &result, &err), KP_OK);
    enum kp_verify_reason reason = result.reason;
    kp_verify_result_wipe(&result);
    sk_X509_free(anchors);
    sk_X509_free(chain);
    sk_X509_CRL_free(crls);
    return reason;
}

static void test_revocation_published_issuers(void **state)
{
    (void)state;
    EVP_PKEY *second_key = key();
    X509 *second = make("second", second_key, NULL, NULL, NOW - DAY, NOW + 3650 * DAY, CA_EXT);
    X509 *revoked = make("revoked", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY,
                         CLIENT_EXT);
    X509 *fine = make("fine", leaf_key, root, root_key, NOW - DAY, NOW + 30 * DAY, CLIENT_EXT);
    X509 *of_second = make("of-second", leaf_key, second, second_key, NOW - DAY, NOW + 30 * DAY,
                           CLIENT_EXT);
    X509 *via_inter = make("via-inter", leaf_key, intermediate, inter_key, NOW - DAY,
                           NOW + 30 * DAY, CLIENT_EXT);
    X509_CRL *crl = NULL, *stale = NULL, *foreign = NULL;
    make_crls(revoked, &crl, &stale, &foreign);
    const struct {
        const char *row;
        X509 *leaf, *untrusted;
        X509_CRL *crl;
        enum kp_verify_reason every, published;
    } rows[] = {
        {"revoked by the CA that published the CRL", revoked, NULL, crl, KP_VERIFY_REVOKED,
         KP_VERIFY_REVOKED},
        {"not revoked", fine, NULL, crl, KP_VERIFY_OK, KP_VERIFY_OK},
        {"a second CA without a CRL", of_second, NULL, crl, KP_VERIFY_CRL_PROBLEM, KP_VERIFY_OK},
        {"an intermediate without a CRL", via_inter, intermediate, crl, KP_VERIFY_CRL_PROBLEM,
         KP_VERIFY_OK},
        {"the CA's CRL is stale", fine, NULL, stale, KP_VERIFY_CRL_PROBLEM,
         KP_VERIFY_CRL_PROBLEM},
        {"a CRL of the CA's name by another key", fine, NULL, foreign, KP_VERIFY_CRL_PROBLEM,
         KP_VERIFY_CRL_PROBLEM},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        expect(run_published(rows[i].leaf, second, rows[i].untrusted, rows[i].crl,
                             KP_CRL_EVERY_ISSUER),
               rows[i].every, rows[i].row);
        expect(run_published(rows[i].leaf, second, rows[i].untrusted, rows[i].crl,
                             KP_CRL_PUBLISHED_ISSUERS),
               rows[i].published, rows[i].row);
    }
    X509 *certs[] = {second, revoked, fine, of_second, via_inter};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
        X509_free(certs[i]);
    }
    X509_CRL_free(crl);
    X509_CRL_free(stale);
    X509_CRL_free(foreign);
    EVP_PKEY_free(second_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_chains),
        cmocka_unit_test(test_ca_rules),
        cmocka_unit_test(test_revocation),
        cmocka_unit_test(test_revocation_published_issuers),
        cmocka_unit_test(test_pathological_input_is_bounded),
        cmocka_unit_test(test_no_anchor_can_issue_shortcut),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
