#include "testutil.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define NOW 1800000000LL

static EVP_PKEY *new_key(enum kp_key_type type)
{
    EVP_PKEY *key = NULL;
    struct kp_error err;
    assert_int_equal(kp_key_generate(type, &key, &err), KP_OK);
    return key;
}

static X509 *make_ca(EVP_PKEY *key, const char *name)
{
    const char *dns[] = {name};
    struct kp_cert_template tmpl = {
        .common_name = name,
        .dns_names = dns,
        .dns_count = 1,
        .is_ca = true,
        .key_usage = KP_KU_DIGITAL_SIGNATURE | KP_KU_KEY_ENCIPHERMENT | KP_KU_CERT_SIGN,
        .not_before = NOW - 300,
        .not_after = NOW + 87600LL * 3600,
    };
    X509 *cert = NULL;
    struct kp_error err;
    assert_int_equal(kp_cert_issue(&tmpl, key, NULL, NULL, &cert, &err), KP_OK);
    assert_int_equal(kp_cert_reload(&cert, &err), KP_OK); /* as read back from disk */
    return cert;
}

static X509 *make_leaf(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key)
{
    const char *orgs[] = {"system:nodes"};
    const char *dns[] = {"localhost", "n1"};
    struct kp_ip ips[2];
    kp_ip_parse("10.0.0.5", &ips[0]);
    kp_ip_parse("::1", &ips[1]);
    struct kp_cert_template tmpl = {
        .common_name = "system:node:n1",
        .organizations = orgs,
        .organization_count = 1,
        .dns_names = dns,
        .dns_count = 2,
        .ips = ips,
        .ip_count = 2,
        .key_usage = KP_KU_DIGITAL_SIGNATURE | KP_KU_KEY_ENCIPHERMENT,
        .ext_key_usage = KP_EKU_SERVER_AUTH | KP_EKU_CLIENT_AUTH,
        .not_before = NOW - 300,
        .not_after = NOW + 8760LL * 3600,
    };
    X509 *cert = NULL;
    struct kp_error err;
    assert_int_equal(kp_cert_issue(&tmpl, key, ca, ca_key, &cert, &err), KP_OK);
    assert_int_equal(kp_cert_reload(&cert, &err), KP_OK); /* as read back from disk */
    return cert;
}

static void test_ca_certificate(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key(KP_KEY_ECDSA_P256);
    X509 *ca = make_ca(key, "kubernetes");
    char cn[64];
    kp_cert_common_name(ca, cn, sizeof(cn));
    assert_string_equal(cn, "kubernetes");
    assert_true(kp_cert_is_ca(ca));
    assert_int_equal(kp_cert_key_usage(ca),
                     KP_KU_DIGITAL_SIGNATURE | KP_KU_KEY_ENCIPHERMENT | KP_KU_CERT_SIGN);
    bool has_eku = true;
    assert_int_equal(kp_cert_ext_key_usage(ca, &has_eku), 0);
    assert_false(has_eku);
    assert_non_null(X509_get0_subject_key_id(ca));
    assert_null(X509_get0_authority_key_id(ca)); /* Go adds no AKID to self-signed certs */
    assert_int_equal(kp_cert_not_before(ca), NOW - 300);
    assert_int_equal(kp_cert_not_after(ca), NOW + 87600LL * 3600);
    assert_true(kp_cert_covers_dns(ca, "kubernetes"));
    assert_int_equal(X509_get_version(ca), X509_VERSION_3);
    assert_int_equal(X509_check_issued(ca, ca), X509_V_OK);
    X509_free(ca);
    EVP_PKEY_free(key);
}

static void test_leaf_certificate(void **state)
{
    (void)state;
    EVP_PKEY *ca_key = new_key(KP_KEY_ECDSA_P384);
    X509 *ca = make_ca(ca_key, "etcd-ca");
    EVP_PKEY *key = new_key(KP_KEY_RSA_2048);
    X509 *leaf = make_leaf(key, ca, ca_key);
    assert_true(kp_cert_matches_key(leaf, key));
    assert_false(kp_cert_matches_key(leaf, ca_key));
    assert_false(kp_cert_is_ca(leaf));
    bool has_eku = false;
    assert_int_equal(kp_cert_ext_key_usage(leaf, &has_eku),
                     KP_EKU_SERVER_AUTH | KP_EKU_CLIENT_AUTH);
    assert_true(has_eku);
    /* The signing key decides the digest: P-384 CA -> ECDSA with SHA-384. */
    assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA384);
    /* Extensions in Go's order, criticality as Go sets it. */
    const int order[] = {NID_key_usage, NID_ext_key_usage, NID_basic_constraints,
                         NID_authority_key_identifier, NID_subject_alt_name};
    const int critical[] = {1, 0, 1, 0, 0};
    assert_int_equal(X509_get_ext_count(leaf), 5);
    for (int i = 0; i < 5; i++) {
        X509_EXTENSION *ext = X509_get_ext(leaf, i);
        assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(ext)), order[i]);
        assert_int_equal(X509_EXTENSION_get_critical(ext), critical[i]);
    }
    assert_null(X509_get0_subject_key_id(leaf));
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(leaf);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid, X509_get0_subject_key_id(ca)), 0);
    /* Subject: O first (PrintableString, ':' allowed), then CN. */
    X509_NAME *subject = X509_get_subject_name(leaf);
    assert_int_equal(X509_NAME_entry_count(subject), 2);
    X509_NAME_ENTRY *first = X509_NAME_get_entry(subject, 0);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(first)), NID_organizationName);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(first)), V_ASN1_PRINTABLESTRING);
    struct kp_strlist orgs = {0}, dns = {0}, ips = {0};
    struct kp_error err;
    assert_int_equal(kp_cert_organizations(leaf, &orgs, &err), KP_OK);
    assert_int_equal(orgs.count, 1);
    assert_string_equal(orgs.items[0], "system:nodes");
    assert_int_equal(kp_cert_sans(leaf, &dns, &ips, &err), KP_OK);
    assert_int_equal(dns.count, 2);
    assert_string_equal(dns.items[0], "localhost");
    assert_int_equal(ips.count, 2);
    assert_string_equal(ips.items[0], "10.0.0.5");
    assert_string_equal(ips.items[1], "::1");
    struct kp_ip ip;
    kp_ip_parse("::1", &ip);
    assert_true(kp_cert_covers_ip(leaf, &ip));
    kp_ip_parse("10.0.0.6", &ip);
    assert_false(kp_cert_covers_ip(leaf, &ip));
    assert_true(kp_cert_covers_dns(leaf, "n1"));
    /* The CN is never used as a host name. */
    assert_false(kp_cert_covers_dns(leaf, "system:node:n1"));
    kp_strlist_wipe(&orgs);
    kp_strlist_wipe(&dns);
    kp_strlist_wipe(&ips);
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
}

/* Straight from kp_cert_issue, an ECDSA certificate encodes its key correctly but has no cached
 * EVP_PKEY (the documented fast path); an RSA one has. Reloaded, both answer everything. */
static void test_issued_certificate_before_reload(void **state)
{
    (void)state;
    const enum kp_key_type types[] = {KP_KEY_ECDSA_P256, KP_KEY_ECDSA_P384, KP_KEY_RSA_2048};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        EVP_PKEY *key = new_key(types[i]);
        struct kp_cert_template tmpl = {
            .common_name = "c",
            .key_usage = KP_KU_DIGITAL_SIGNATURE,
            .not_before = NOW,
            .not_after = NOW + 60,
        };
        X509 *cert = NULL;
        struct kp_error err;
        assert_int_equal(kp_cert_issue(&tmpl, key, NULL, NULL, &cert, &err), KP_OK);
        bool rsa = kp_key_type_is_rsa(types[i]);
        assert_int_equal(X509_get0_pubkey(cert) != NULL, rsa);
        ERR_clear_error();
        assert_int_equal(kp_cert_reload(&cert, &err), KP_OK);
        assert_true(kp_cert_matches_key(cert, key));
        assert_int_equal(X509_verify(cert, key), 1); /* self-signature over the encoded key */
        X509_free(cert);
        EVP_PKEY_free(key);
    }
}

static void test_serials_in_kubeadm_range(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key(KP_KEY_ECDSA_P256);
    BIGNUM *limit = BN_new();
    BN_set_word(limit, 0x7fffffffffffffffULL);
    for (int i = 0; i < 50; i++) {
        X509 *cert = make_ca(key, "kubernetes");
        BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        assert_false(BN_is_zero(serial));
        assert_false(BN_is_negative(serial));
        assert_true(BN_cmp(serial, limit) < 0);
        BN_free(serial);
        X509_free(cert);
    }
    BN_free(limit);
    EVP_PKEY_free(key);
}

static void test_utf8_when_not_printable(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key(KP_KEY_ECDSA_P256);
    const char *orgs[] = {"team@example", "second"};
    struct kp_cert_template tmpl = {
        .common_name = "user_1",
        .organizations = orgs,
        .organization_count = 2,
        .key_usage = KP_KU_DIGITAL_SIGNATURE,
        .not_before = NOW,
        .not_after = NOW + 60,
    };
    X509 *cert = NULL;
    struct kp_error err;
    assert_int_equal(kp_cert_issue(&tmpl, key, NULL, NULL, &cert, &err), KP_OK);
    X509_NAME *subject = X509_get_subject_name(cert);
    X509_NAME_ENTRY *cn = X509_NAME_get_entry(subject, 2);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(cn)), V_ASN1_UTF8STRING);
    /* Both O values share one RDN, as Go marshals a []string. */
    assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(subject, 0)),
                     X509_NAME_ENTRY_set(X509_NAME_get_entry(subject, 1)));
    struct kp_strlist list = {0};
    assert_int_equal(kp_cert_organizations(cert, &list, &err), KP_OK);
    assert_int_equal(list.count, 2);
    kp_strlist_wipe(&list);
    X509_free(cert);
    tmpl.not_after = NOW;
    assert_int_equal(kp_cert_issue(&tmpl, key, NULL, NULL, &cert, &err), KP_ERR_INVALID);
    EVP_PKEY_free(key);
}

static void test_verify_chain(void **state)
{
    (void)state;
    EVP_PKEY *ca_key = new_key(KP_KEY_ECDSA_P256);
    EVP_PKEY *other_key = new_key(KP_KEY_ECDSA_P256);
    X509 *ca = make_ca(ca_key, "kubernetes");
    X509 *impostor = make_ca(other_key, "kubernetes"); /* same name, other key */
    EVP_PKEY *key = new_key(KP_KEY_ECDSA_P256);
    X509 *leaf = make_leaf(key, ca, ca_key);
    bool ok = false;
    char reason[128];
    struct kp_error err;
    assert_int_equal(kp_cert_verify_chain(leaf, ca, NULL, NOW, &ok, reason, sizeof(reason), &err),
                     KP_OK);
    assert_true(ok);
    assert_int_equal(
        kp_cert_verify_chain(leaf, impostor, NULL, NOW, &ok, reason, sizeof(reason), &err),
        KP_OK);
    assert_false(ok);
    assert_true(strlen(reason) > 0);
    int64_t later = NOW + 2 * 8760LL * 3600;
    assert_int_equal(kp_cert_verify_chain(leaf, ca, NULL, later, &ok, reason, sizeof(reason), &err),
                     KP_OK);
    assert_false(ok);
    assert_non_null(strstr(reason, "expired"));
    assert_int_equal(kp_cert_verify_chain(leaf, ca, NULL, KP_VERIFY_ANY_TIME, &ok, reason,
                                          sizeof(reason), &err),
                     KP_OK);
    assert_true(ok);
    X509_free(leaf);
    X509_free(impostor);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(ca_key);
}

static void test_pem_chain(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key(KP_KEY_ECDSA_P256);
    X509 *a = make_ca(key, "a");
    X509 *b = make_ca(key, "b");
    char *pa = NULL, *pb = NULL, *pk = NULL;
    size_t la = 0, lb = 0, lk = 0;
    struct kp_error err;
    assert_int_equal(kp_cert_to_pem(a, &pa, &la, &err), KP_OK);
    assert_int_equal(kp_cert_to_pem(b, &pb, &lb, &err), KP_OK);
    assert_int_equal(kp_key_to_pem(key, &pk, &lk, &err), KP_OK);
    /* cert, cert, key: the kubelet's pem layout; certificates come back in order. */
    char *joined = malloc(la + lb + lk + 1);
    memcpy(joined, pa, la);
    memcpy(joined + la, pb, lb);
    memcpy(joined + la + lb, pk, lk + 1);
    STACK_OF(X509) *certs = NULL;
    assert_int_equal(kp_certs_from_pem(joined, la + lb + lk, "chain", &certs, &err), KP_OK);
    assert_int_equal(sk_X509_num(certs), 2);
    char cn[8];
    kp_cert_common_name(sk_X509_value(certs, 1), cn, sizeof(cn));
    assert_string_equal(cn, "b");
    sk_X509_pop_free(certs, X509_free);
    /* Truncations of a certificate are corrupt, never a shorter valid chain. */
    for (size_t cut = 30; cut < la - 5; cut += 37) {
        X509 *one = NULL;
        kp_error_clear(&err);
        assert_int_equal(kp_cert_from_pem(pa, cut, "cut.crt", &one, &err), KP_ERR_INVALID);
        assert_non_null(strstr(err.message, "cut.crt"));
    }
    X509 *none = NULL;
    assert_int_equal(kp_cert_from_pem(pk, lk, "key.pem", &none, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "no PEM CERTIFICATE block"));
    assert_int_equal(kp_cert_from_pem("", 0, "empty", &none, &err), KP_ERR_INVALID);
    free(joined);
    free(pa);
    free(pb);
    kp_secret_free(pk, lk);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(key);
}

static void test_base64(void **state)
{
    (void)state;
    const char *inputs[] = {"", "a", "ab", "abc", "abcd", "any carnal pleas"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        char *encoded = NULL;
        size_t encoded_len = 0;
        unsigned char *decoded = NULL;
        size_t decoded_len = 0;
        struct kp_error err;
        assert_int_equal(kp_base64_encode(inputs[i], strlen(inputs[i]), &encoded, &encoded_len,
                                          &err),
                         KP_OK);
        assert_int_equal(kp_base64_decode(encoded, encoded_len, &decoded, &decoded_len, &err),
                         KP_OK);
        assert_int_equal(decoded_len, strlen(inputs[i]));
        assert_memory_equal(decoded, inputs[i], decoded_len);
        free(encoded);
        free(decoded);
    }
    unsigned char *decoded = NULL;
    size_t decoded_len = 0;
    struct kp_error err;
    assert_int_equal(kp_base64_decode("YW\nJj", 5, &decoded, &decoded_len, &err), KP_OK);
    assert_int_equal(decoded_len, 3);
    free(decoded);
    const char *bad[] = {"YQ", "Y=Q=", "YQ===", "!!!!", "YWJjZ",
                         "QUJD-this is not base64 at all!!" /* OpenSSL stops at '-' */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        decoded = NULL;
        if (kp_base64_decode(bad[i], strlen(bad[i]), &decoded, &decoded_len, &err) !=
            KP_ERR_INVALID) {
            fail_msg("'%s' should be rejected", bad[i]);
        }
        assert_null(decoded);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_certificate),
        cmocka_unit_test(test_leaf_certificate),
        cmocka_unit_test(test_issued_certificate_before_reload),
        cmocka_unit_test(test_serials_in_kubeadm_range),
        cmocka_unit_test(test_utf8_when_not_printable),
        cmocka_unit_test(test_verify_chain),
        cmocka_unit_test(test_pem_chain),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
