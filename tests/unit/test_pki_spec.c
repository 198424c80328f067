/*
 * Every row of the certificate table, for every key type, against the values of
 * ../shared/docs/k8s-pki-facts.md §0-§2 and §4. The expectations are written out here, not
 * derived from src/pki/spec.c, so a wrong row in the table fails this test.
 */
#include "testutil.h"

#include <limits.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pki/pki.h"

#define NOW 1800000000LL /* 2027-01-15T08:00:00Z */
#define HOUR 3600LL
#define DS KP_KU_DIGITAL_SIGNATURE
#define KE KP_KU_KEY_ENCIPHERMENT
#define CS (KP_KU_CERT_SIGN | KP_KU_CRL_SIGN) /* kpki adds CRLSign to kubeadm's set */
#define KUBELET_KU (-1) /* DS, plus KE for RSA keys */

struct expected_cert {
    const char *name;
    const char *file; /* certificate, relative to the root */
    const char *key_file;
    const char *issuer_cn;
    const char *cn;
    const char *org; /* NULL: none */
    bool is_ca;
    unsigned eku;
    int key_usage;
    const char *dns; /* comma-separated, in certificate order */
    const char *ips;
    int64_t validity;
};

/* Config used below: node n1, advertise 192.168.10.5, endpoint cp.example.com, service CIDR
 * 10.100.0.0/16, DNS domain corp.local, cluster prod, extra SANs. */
static const struct expected_cert expected_certs[] = {
    {"ca", "etc/kubernetes/pki/ca.crt", "etc/kubernetes/pki/ca.key", "kubernetes", "kubernetes",
     NULL, true, 0, DS | KE | CS, "kubernetes", "", 87600 * HOUR},
    {"apiserver", "etc/kubernetes/pki/apiserver.crt", "etc/kubernetes/pki/apiserver.key",
     "kubernetes", "kube-apiserver", NULL, false, KP_EKU_SERVER_AUTH, DS | KE,
     "api.example.com,cp.example.com,kubernetes,kubernetes.default,kubernetes.default.svc,"
     "kubernetes.default.svc.corp.local,n1",
     "10.100.0.1,192.168.10.5,10.0.0.9", 8760 * HOUR},
    {"apiserver-kubelet-client", "etc/kubernetes/pki/apiserver-kubelet-client.crt",
     "etc/kubernetes/pki/apiserver-kubelet-client.key", "kubernetes",
     "kube-apiserver-kubelet-client", NULL, false, KP_EKU_CLIENT_AUTH, DS | KE, "", "",
     8760 * HOUR},
    {"front-proxy-ca", "etc/kubernetes/pki/front-proxy-ca.crt",
     "etc/kubernetes/pki/front-proxy-ca.key", "front-proxy-ca", "front-proxy-ca", NULL, true, 0,
     DS | KE | CS, "front-proxy-ca", "", 87600 * HOUR},
    {"front-proxy-client", "etc/kubernetes/pki/front-proxy-client.crt",
     "etc/kubernetes/pki/front-proxy-client.key", "front-proxy-ca", "front-proxy-client", NULL,
     false, KP_EKU_CLIENT_AUTH, DS | KE, "", "", 8760 * HOUR},
    {"etcd-ca", "etc/kubernetes/pki/etcd/ca.crt", "etc/kubernetes/pki/etcd/ca.key", "etcd-ca",
     "etcd-ca", NULL, true, 0, DS | KE | CS, "etcd-ca", "", 87600 * HOUR},
    {"etcd-server", "etc/kubernetes/pki/etcd/server.crt", "etc/kubernetes/pki/etcd/server.key",
     "etcd-ca", "n1", NULL, false, KP_EKU_SERVER_AUTH | KP_EKU_CLIENT_AUTH, DS | KE,
     "etcd.example.com,localhost,n1", "192.168.10.5,127.0.0.1,::1", 8760 * HOUR},
    {"etcd-peer", "etc/kubernetes/pki/etcd/peer.crt", "etc/kubernetes/pki/etcd/peer.key",
     "etcd-ca", "n1", NULL, false, KP_EKU_SERVER_AUTH | KP_EKU_CLIENT_AUTH, DS | KE,
     "localhost,n1", "192.168.10.5,127.0.0.1,::1,10.1.1.1", 8760 * HOUR},
    {"etcd-healthcheck-client", "etc/kubernetes/pki/etcd/healthcheck-client.crt",
     "etc/kubernetes/pki/etcd/healthcheck-client.key", "etcd-ca", "kube-etcd-healthcheck-client",
     NULL, false, KP_EKU_CLIENT_AUTH, DS | KE, "", "", 8760 * HOUR},
    {"apiserver-etcd-client", "etc/kubernetes/pki/apiserver-etcd-client.crt",
     "etc/kubernetes/pki/apiserver-etcd-client.key", "etcd-ca", "kube-apiserver-etcd-client",
     NULL, false, KP_EKU_CLIENT_AUTH, DS | KE, "", "", 8760 * HOUR},
    {"kubelet-client", "var/lib/kubelet/pki/kubelet-client-current.pem",
     "var/lib/kubelet/pki/kubelet-client-current.pem", "kubernetes", "system:node:n1",
     "system:nodes", false, KP_EKU_CLIENT_AUTH, KUBELET_KU, "", "", 8760 * HOUR},
    {"kubelet-serving", "var/lib/kubelet/pki/kubelet.crt", "var/lib/kubelet/pki/kubelet.key",
     "kubernetes", "system:node:n1", "system:nodes", false, KP_EKU_SERVER_AUTH, KUBELET_KU, "n1",
     "192.168.10.5", 8760 * HOUR},
};

struct expected_kubeconfig {
    const char *file;
    const char *user;
    const char *org;
    const char *server;
    bool by_reference;
};

static const struct expected_kubeconfig expected_kubeconfigs[] = {
    {"etc/kubernetes/admin.conf", "kubernetes-admin", "kubeadm:cluster-admins",
     "https://cp.example.com:6443", false},
    {"etc/kubernetes/super-admin.conf", "kubernetes-super-admin", "system:masters",
     "https://cp.example.com:6443", false},
    {"etc/kubernetes/controller-manager.conf", "system:kube-controller-manager", NULL,
     "https://192.168.10.5:6443", false},
    {"etc/kubernetes/scheduler.conf", "system:kube-scheduler", NULL, "https://192.168.10.5:6443",
     false},
    {"etc/kubernetes/kubelet.conf", "system:node:n1", "system:nodes",
     "https://cp.example.com:6443", true},
};

static void set(struct kp_pki_config *config, const char *name, const char *value)
{
    struct kp_error err;
    const struct kp_pki_option *option = kp_pki_option_find(name);
    assert_non_null(option);
    if (option->set(config, value, &err) != KP_OK) {
        fail_msg("--%s %s: %s", name, value, err.message);
    }
}

static void build_tree(const char *root, enum kp_key_type key_type, const char *extra_name,
                       const char *extra_value)
{
    struct kp_pki_config config;
    struct kp_error err;
    assert_int_equal(kp_pki_config_init(&config, &err), KP_OK);
    set(&config, "root", root);
    set(&config, "node-name", "n1");
    set(&config, "apiserver-advertise-address", "192.168.10.5");
    set(&config, "control-plane-endpoint", "cp.example.com");
    set(&config, "service-cidr", "10.100.0.0/16");
    set(&config, "service-dns-domain", "corp.local");
    set(&config, "cluster-name", "prod");
    set(&config, "apiserver-cert-extra-sans", "10.0.0.9,api.example.com,n1");
    set(&config, "etcd-server-cert-extra-sans", "etcd.example.com");
    set(&config, "etcd-peer-cert-extra-sans", "10.1.1.1");
    set(&config, "key-type", kp_key_type_name(key_type));
    if (extra_name != NULL) {
        set(&config, extra_name, extra_value);
    }
    assert_int_equal(kp_pki_config_finalize(&config, &err), KP_OK);
    struct kp_clock clock;
    kp_clock_fixed_init(&clock, NOW);
    struct kp_pki_report report;
    if (kp_pki_init(&config, &clock, NULL, &report, &err) != KP_OK) {
        fail_msg("init: %s", err.message);
    }
    assert_int_equal(report.count, 18);
    assert_int_equal(report.warnings.count, 0);
    kp_pki_report_wipe(&report);
    kp_pki_config_wipe(&config);
}

static STACK_OF(X509) *load_certs(const char *root, const char *rel)
{
    char path[PATH_MAX];
    size_t len = 0;
    char *text = test_read_file(test_path(path, sizeof(path), root, rel), &len);
    STACK_OF(X509) *certs = NULL;
    struct kp_error err;
    if (kp_certs_from_pem(text, len, rel, &certs, &err) != KP_OK) {
        fail_msg("%s", err.message);
    }
    free(text);
    return certs;
}

static void assert_list(const struct kp_strlist *list, const char *expected, const char *what)
{
    char joined[1024] = "";
    for (size_t i = 0; i < list->count; i++) {
        strcat(joined, i > 0 ? "," : "");
        strcat(joined, list->items[i]);
    }
    if (strcmp(joined, expected) != 0) {
        fail_msg("%s: got '%s', want '%s'", what, joined, expected);
    }
}

static void check_key_file(const char *root, const char *rel, enum kp_key_type key_type)
{
    char path[PATH_MAX];
    char *text = test_read_file(test_path(path, sizeof(path), root, rel), NULL);
    const char *header = kp_key_type_is_rsa(key_type) ? "-----BEGIN RSA PRIVATE KEY-----"
                                                       : "-----BEGIN EC PRIVATE KEY-----";
    if (strstr(text, header) == NULL) {
        fail_msg("%s: no '%s' block", rel, header);
    }
    free(text);
    struct stat st; /* follow the kubelet's symlink to its pem */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static int expected_signature_nid(enum kp_key_type issuer_key_type)
{
    switch (issuer_key_type) {
    case KP_KEY_ECDSA_P256:
        return NID_ecdsa_with_SHA256;
    case KP_KEY_ECDSA_P384:
        return NID_ecdsa_with_SHA384;
    default:
        return NID_sha256WithRSAEncryption;
    }
}

static void check_cert(const char *root, const struct expected_cert *row,
                       enum kp_key_type key_type)
{
    STACK_OF(X509) *certs = load_certs(root, row->file);
    X509 *cert = sk_X509_value(certs, 0);
    struct kp_error err;
    char cn[256];
    kp_cert_common_name(cert, cn, sizeof(cn));
    assert_string_equal(cn, row->cn);
    struct kp_strlist orgs = {0}, dns = {0}, ips = {0};
    assert_int_equal(kp_cert_organizations(cert, &orgs, &err), KP_OK);
    assert_list(&orgs, row->org != NULL ? row->org : "", row->name);
    assert_int_equal(kp_cert_sans(cert, &dns, &ips, &err), KP_OK);
    assert_list(&dns, row->dns, row->name);
    assert_list(&ips, row->ips, row->name);
    char issuer[256];
    X509_NAME_get_text_by_NID(X509_get_issuer_name(cert), NID_commonName, issuer, sizeof(issuer));
    assert_string_equal(issuer, row->issuer_cn);
    assert_int_equal(kp_cert_is_ca(cert), row->is_ca);
    assert_int_equal(X509_get_extension_flags(cert) & EXFLAG_BCONS, EXFLAG_BCONS);
    bool has_eku = false;
    assert_int_equal(kp_cert_ext_key_usage(cert, &has_eku), row->eku);
    assert_int_equal(has_eku, row->eku != 0);
    unsigned key_usage = row->key_usage == KUBELET_KU
                             ? (DS | (kp_key_type_is_rsa(key_type) ? KE : 0))
                             : (unsigned)row->key_usage;
    assert_int_equal(kp_cert_key_usage(cert), key_usage);
    assert_int_equal(kp_cert_not_before(cert), NOW - 300);
    assert_int_equal(kp_cert_not_after(cert), NOW + row->validity);
    assert_int_equal(kp_key_type_of(X509_get0_pubkey(cert)), key_type);
    assert_int_equal(X509_get_signature_nid(cert), expected_signature_nid(key_type));
    assert_int_equal(row->is_ca, X509_get0_subject_key_id(cert) != NULL);
    assert_int_equal(!row->is_ca, X509_get0_authority_key_id(cert) != NULL);
    char path[PATH_MAX];
    test_path(path, sizeof(path), root, row->file);
    if (strstr(row->file, "current.pem") == NULL) {
        assert_int_equal(test_mode(path), 0644);
    }
    check_key_file(root, row->key_file, key_type);
    kp_strlist_wipe(&orgs);
    kp_strlist_wipe(&dns);
    kp_strlist_wipe(&ips);
    sk_X509_pop_free(certs, X509_free);
}

static void check_chain(const char *root, const char *leaf_file, const char *ca_file)
{
    STACK_OF(X509) *leaf = load_certs(root, leaf_file);
    STACK_OF(X509) *ca = load_certs(root, ca_file);
    bool ok = false;
    char reason[128];
    struct kp_error err;
    assert_int_equal(kp_cert_verify_chain(sk_X509_value(leaf, 0), sk_X509_value(ca, 0), NULL, NOW,
                                          &ok, reason, sizeof(reason), &err),
                     KP_OK);
    if (!ok) {
        fail_msg("%s does not chain to %s: %s", leaf_file, ca_file, reason);
    }
    sk_X509_pop_free(leaf, X509_free);
    sk_X509_pop_free(ca, X509_free);
}

static void check_kubeconfig(const char *root, const struct expected_kubeconfig *row,
                             enum kp_key_type key_type)
{
    char path[PATH_MAX];
    size_t len = 0;
    char *text = test_read_file(test_path(path, sizeof(path), root, row->file), &len);
    assert_int_equal(test_mode(path), 0600);
    struct kp_kubeconfig kubeconfig;
    struct kp_error err;
    assert_int_equal(kp_kubeconfig_parse(text, len, row->file, &kubeconfig, &err), KP_OK);
    assert_string_equal(kubeconfig.cluster_name, "prod");
    assert_string_equal(kubeconfig.user_name, row->user);
    char context[256];
    snprintf(context, sizeof(context), "%s@prod", row->user);
    assert_string_equal(kubeconfig.context_name, context);
    assert_string_equal(kubeconfig.server, row->server);
    size_t ca_len = 0;
    char *ca_pem = test_read_file(test_path(path, sizeof(path), root, "etc/kubernetes/pki/ca.crt"),
                                  &ca_len);
    assert_int_equal(kubeconfig.ca_len, ca_len);
    assert_memory_equal(kubeconfig.ca_data, ca_pem, ca_len);
    free(ca_pem);
    if (row->by_reference) {
        char real_root[PATH_MAX];
        assert_non_null(realpath(root, real_root));
        char expected[PATH_MAX + 64];
        snprintf(expected, sizeof(expected), "%s/var/lib/kubelet/pki/kubelet-client-current.pem",
                 real_root);
        assert_string_equal(kubeconfig.cert_file, expected);
        assert_string_equal(kubeconfig.key_file, expected);
        assert_null(kubeconfig.cert_data);
        assert_null(kubeconfig.key_data);
    } else {
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        assert_int_equal(kp_cert_from_pem((char *)kubeconfig.cert_data, kubeconfig.cert_len,
                                          row->file, &cert, &err),
                         KP_OK);
        assert_int_equal(kp_key_from_pem((char *)kubeconfig.key_data, kubeconfig.key_len,
                                         row->file, &key, &err),
                         KP_OK);
        assert_true(kp_cert_matches_key(cert, key));
        assert_int_equal(kp_key_type_of(key), key_type);
        char cn[256];
        kp_cert_common_name(cert, cn, sizeof(cn));
        assert_string_equal(cn, row->user);
        struct kp_strlist orgs = {0}, dns = {0}, ips = {0};
        assert_int_equal(kp_cert_organizations(cert, &orgs, &err), KP_OK);
        assert_list(&orgs, row->org != NULL ? row->org : "", row->file);
        assert_int_equal(kp_cert_sans(cert, &dns, &ips, &err), KP_OK);
        assert_int_equal(dns.count + ips.count, 0);
        bool has_eku = false;
        assert_int_equal(kp_cert_ext_key_usage(cert, &has_eku), KP_EKU_CLIENT_AUTH);
        assert_int_equal(kp_cert_key_usage(cert), DS | KE);
        assert_int_equal(kp_cert_not_after(cert), NOW + 8760 * HOUR);
        kp_strlist_wipe(&orgs);
        kp_strlist_wipe(&dns);
        kp_strlist_wipe(&ips);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    kp_kubeconfig_wipe(&kubeconfig);
    free(text);
}

static void check_kubelet_files(const char *root)
{
    char path[PATH_MAX];
    test_path(path, sizeof(path), root, "var/lib/kubelet/pki/kubelet-client-current.pem");
    char target[256] = {0};
    assert_true(readlink(path, target, sizeof(target) - 1) > 0);
    /* TZ=UTC in main(): the store names files in local time. */
    assert_string_equal(target, "kubelet-client-2027-01-15-08-00-00.pem");
    test_path(path, sizeof(path), root, "var/lib/kubelet/pki/kubelet-client-2027-01-15-08-00-00.pem");
    assert_int_equal(test_mode(path), 0600);
    char *text = test_read_file(path, NULL);
    char *cert_block = strstr(text, "-----BEGIN CERTIFICATE-----");
    char *key_block = strstr(text, "PRIVATE KEY-----");
    assert_non_null(cert_block);
    assert_non_null(key_block);
    assert_true(cert_block < key_block); /* certificate first, then the key */
    free(text);
}

static void check_sa(const char *root, enum kp_key_type key_type)
{
    char path[PATH_MAX];
    check_key_file(root, "etc/kubernetes/pki/sa.key", key_type);
    size_t len = 0;
    char *pub = test_read_file(test_path(path, sizeof(path), root, "etc/kubernetes/pki/sa.pub"),
                               &len);
    assert_int_equal(test_mode(path), 0600);
    assert_int_equal(strncmp(pub, "-----BEGIN PUBLIC KEY-----", 26), 0);
    EVP_PKEY *public_key = NULL, *private_key = NULL;
    struct kp_error err;
    assert_int_equal(kp_pubkey_from_pem(pub, len, "sa.pub", &public_key, &err), KP_OK);
    char *key = test_read_file(test_path(path, sizeof(path), root, "etc/kubernetes/pki/sa.key"),
                               &len);
    assert_int_equal(kp_key_from_pem(key, len, "sa.key", &private_key, &err), KP_OK);
    assert_true(kp_key_public_equal(public_key, private_key));
    EVP_PKEY_free(public_key);
    EVP_PKEY_free(private_key);
    free(pub);
    free(key);
}

static void check_tree(enum kp_key_type key_type)
{
    char root[512];
    test_make_dir(kp_key_type_name(key_type), root, sizeof(root));
    build_tree(root, key_type, NULL, NULL);
    for (size_t i = 0; i < sizeof(expected_certs) / sizeof(expected_certs[0]); i++) {
        check_cert(root, &expected_certs[i], key_type);
    }
    const char *chains[][2] = {
        {"etc/kubernetes/pki/apiserver.crt", "etc/kubernetes/pki/ca.crt"},
        {"etc/kubernetes/pki/apiserver-kubelet-client.crt", "etc/kubernetes/pki/ca.crt"},
        {"etc/kubernetes/pki/front-proxy-client.crt", "etc/kubernetes/pki/front-proxy-ca.crt"},
        {"etc/kubernetes/pki/etcd/server.crt", "etc/kubernetes/pki/etcd/ca.crt"},
        {"etc/kubernetes/pki/etcd/peer.crt", "etc/kubernetes/pki/etcd/ca.crt"},
        {"etc/kubernetes/pki/etcd/healthcheck-client.crt", "etc/kubernetes/pki/etcd/ca.crt"},
        {"etc/kubernetes/pki/apiserver-etcd-client.crt", "etc/kubernetes/pki/etcd/ca.crt"},
        {"var/lib/kubelet/pki/kubelet-client-current.pem", "etc/kubernetes/pki/ca.crt"},
        {"var/lib/kubelet/pki/kubelet.crt", "etc/kubernetes/pki/ca.crt"},
    };
    for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
        check_chain(root, chains[i][0], chains[i][1]);
    }
    for (size_t i = 0; i < sizeof(expected_kubeconfigs) / sizeof(expected_kubeconfigs[0]); i++) {
        check_kubeconfig(root, &expected_kubeconfigs[i], key_type);
    }
    check_kubelet_files(root);
    check_sa(root, key_type);
    char path[PATH_MAX];
    for (const char *const *dir = (const char *const[]){"etc/kubernetes", "etc/kubernetes/pki",
                                                        "etc/kubernetes/pki/etcd",
                                                        "var/lib/kubelet/pki", NULL};
         *dir != NULL; dir++) {
        assert_int_equal(test_mode(test_path(path, sizeof(path), root, *dir)), 0755);
    }
    test_remove_tree(root);
}

static void test_tree_rsa_2048(void **state)
{
    (void)state;
    check_tree(KP_KEY_RSA_2048);
}

static void test_tree_rsa_3072(void **state)
{
    (void)state;
    check_tree(KP_KEY_RSA_3072);
}

static void test_tree_rsa_4096(void **state)
{
    (void)state;
    check_tree(KP_KEY_RSA_4096);
}

static void test_tree_ecdsa_p256(void **state)
{
    (void)state;
    check_tree(KP_KEY_ECDSA_P256);
}

static void test_tree_ecdsa_p384(void **state)
{
    (void)state;
    check_tree(KP_KEY_ECDSA_P384);
}

/* --kubelet-serving self-signed: client-go's GenerateSelfSignedCertKey shape. */
static void test_self_signed_kubelet(void **state)
{
    (void)state;
    char root[512];
    test_make_dir("selfsigned", root, sizeof(root));
    build_tree(root, KP_KEY_ECDSA_P256, "kubelet-serving", "self-signed");
    STACK_OF(X509) *certs = load_certs(root, "var/lib/kubelet/pki/kubelet.crt");
    assert_int_equal(sk_X509_num(certs), 2);
    X509 *leaf = sk_X509_value(certs, 0);
    X509 *ca = sk_X509_value(certs, 1);
    char cn[256];
    kp_cert_common_name(leaf, cn, sizeof(cn));
    assert_string_equal(cn, "n1@1800000000");
    kp_cert_common_name(ca, cn, sizeof(cn));
    assert_string_equal(cn, "n1-ca@1800000000");
    assert_true(kp_cert_is_ca(ca));
    assert_false(kp_cert_is_ca(leaf));
    assert_int_equal(kp_cert_not_before(leaf), NOW - 3600);
    bool has_eku = false;
    assert_int_equal(kp_cert_ext_key_usage(leaf, &has_eku), KP_EKU_SERVER_AUTH);
    struct kp_ip ip;
    kp_ip_parse("192.168.10.5", &ip);
    assert_true(kp_cert_covers_ip(leaf, &ip));
    assert_true(kp_cert_covers_dns(leaf, "n1"));
    bool ok = false;
    char reason[128];
    struct kp_error err;
    assert_int_equal(kp_cert_verify_chain(leaf, ca, NULL, NOW, &ok, reason, sizeof(reason), &err),
                     KP_OK);
    assert_true(ok);
    /* Not signed by the cluster CA. */
    STACK_OF(X509) *cluster_ca = load_certs(root, "etc/kubernetes/pki/ca.crt");
    assert_int_equal(kp_cert_verify_chain(leaf, sk_X509_value(cluster_ca, 0), NULL, NOW, &ok,
                                          reason, sizeof(reason), &err),
                     KP_OK);
    assert_false(ok);
    sk_X509_pop_free(cluster_ca, X509_free);
    sk_X509_pop_free(certs, X509_free);
    test_remove_tree(root);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_ecdsa_p256), cmocka_unit_test(test_tree_ecdsa_p384),
        cmocka_unit_test(test_tree_rsa_2048),   cmocka_unit_test(test_tree_rsa_3072),
        cmocka_unit_test(test_tree_rsa_4096),   cmocka_unit_test(test_self_signed_kubelet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
