/*
 * kpki check's audit: a fresh tree is healthy; each kind of fault, made in a copy of the tree,
 * is found by name and code; expiry is judged at a pinned time.
 */
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki/pki.h"

#define NOW 1800000000LL
#define DAY 86400LL

static char base[512];

static int setup(void **state)
{
    (void)state;
    test_make_dir("check", base, sizeof(base));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_remove_tree(base);
    return 0;
}

static void config_for(struct kp_pki_config *config, const char *root, const char *node)
{
    struct kp_error err;
    assert_int_equal(kp_pki_config_init(config, &err), KP_OK);
    assert_int_equal(kp_pki_option_find("root")->set(config, root, &err), KP_OK);
    if (node != NULL) {
        assert_int_equal(kp_pki_option_find("node-name")->set(config, node, &err), KP_OK);
    }
    assert_int_equal(kp_pki_option_find("key-type")->set(config, "ecdsa-p256", &err), KP_OK);
}

static void build(const char *root, int64_t at)
{
    struct kp_pki_config config;
    struct kp_error err;
    config_for(&config, root, "n1");
    assert_int_equal(
        kp_pki_option_find("apiserver-advertise-address")->set(&config, "10.0.0.5", &err), KP_OK);
    assert_int_equal(kp_pki_config_finalize(&config, &err), KP_OK);
    struct kp_clock clock;
    kp_clock_fixed_init(&clock, at);
    struct kp_pki_report report;
    if (kp_pki_init(&config, &clock, NULL, &report, &err) != KP_OK) {
        fail_msg("init: %s", err.message);
    }
    kp_pki_report_wipe(&report);
    kp_pki_config_wipe(&config);
}

/* Runs check as `kpki check --root root` does: identity inferred from the tree. */
static void check(const char *root, const char *node, int64_t at, int64_t window,
                  struct kp_check_report *report)
{
    struct kp_pki_config config;
    struct kp_error err;
    config_for(&config, root, node);
    kp_pki_config_infer(&config, root);
    assert_int_equal(kp_pki_config_finalize(&config, &err), KP_OK);
    struct kp_clock clock;
    kp_clock_fixed_init(&clock, at);
    if (kp_pki_check(&config, &clock, window, report, &err) != KP_OK) {
        fail_msg("check: %s", err.message);
    }
    kp_pki_config_wipe(&config);
}

static const struct kp_check_item *item_named(const struct kp_check_report *report,
                                              const char *name)
{
    for (size_t i = 0; i < report->count; i++) {
        if (strcmp(report->items[i].name, name) == 0) {
            return &report->items[i];
        }
    }
    fail_msg("no item %s", name);
    return NULL;
}

static bool has_finding(const struct kp_check_item *item, const char *code,
                        enum kp_check_severity severity)
{
    for (size_t i = 0; i < item->finding_count; i++) {
        if (strcmp(item->findings[i].code, code) == 0 && item->findings[i].severity == severity) {
            return true;
        }
    }
    return false;
}

static void copy_tree(const char *from, const char *to)
{
    char command[2 * PATH_MAX];
    snprintf(command, sizeof(command), "cp -a '%s' '%s'", from, to);
    assert_int_equal(system(command), 0);
}

static void test_fresh_tree_is_healthy(void **state)
{
    (void)state;
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/fresh", base);
    build(root, NOW);
    struct kp_check_report report;
    check(root, NULL, NOW, 30 * DAY, &report);
    for (size_t i = 0; i < report.count; i++) {
        if (kp_check_item_has_problem(&report.items[i])) {
            fail_msg("%s: %s", report.items[i].name, report.items[i].findings[0].message);
        }
    }
    assert_int_equal(report.status, KP_CHECK_HEALTHY);
    /* Every row of the table is audited, plus the directories. */
    assert_int_equal(report.count, 19);
    assert_int_equal(item_named(&report, "apiserver")->not_after, NOW + 8760 * 3600);
    assert_string_equal(item_named(&report, "apiserver")->ca, "ca");
    kp_check_report_wipe(&report);
    /* A year later, within 30 days of expiry: expiring, not broken. */
    check(root, NULL, NOW + 350 * DAY, 30 * DAY, &report);
    assert_int_equal(report.status, KP_CHECK_EXPIRING);
    assert_true(item_named(&report, "apiserver")->expiring);
    assert_false(item_named(&report, "ca")->expiring);
    kp_check_report_wipe(&report);
}

static void test_expired_at_a_pinned_time(void **state)
{
    (void)state;
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/old", base);
    build(root, NOW - 400 * DAY); /* leaves valid for a year: expired at NOW */
    struct kp_check_report report;
    check(root, NULL, NOW, 30 * DAY, &report);
    assert_int_equal(report.status, KP_CHECK_PROBLEMS);
    assert_true(has_finding(item_named(&report, "apiserver"), "expired", KP_CHECK_PROBLEM));
    assert_true(has_finding(item_named(&report, "admin.conf"), "expired", KP_CHECK_PROBLEM));
    assert_true(has_finding(item_named(&report, "kubelet-client"), "expired", KP_CHECK_PROBLEM));
    assert_false(has_finding(item_named(&report, "ca"), "expired", KP_CHECK_PROBLEM));
    kp_check_report_wipe(&report);
}

struct fault {
    const char *name;
    const char *command; /* run in the copy's root with sh -c; $O is the other tree */
    const char *item;
    const char *code;
};

static void test_each_fault_is_found(void **state)
{
    (void)state;
    char good[PATH_MAX], other[PATH_MAX];
    snprintf(good, sizeof(good), "%s/good", base);
    snprintf(other, sizeof(other), "%s/other", base);
    build(good, NOW);
    build(other, NOW);
    const struct fault faults[] = {
        {"wrong-ca", "cp $O/etc/kubernetes/pki/apiserver.crt $O/etc/kubernetes/pki/apiserver.key "
                     "etc/kubernetes/pki/",
         "apiserver", "wrong-ca"},
        {"key-mismatch", "cp $O/etc/kubernetes/pki/etcd/peer.key etc/kubernetes/pki/etcd/",
         "etcd-peer", "key-mismatch"},
        {"key-mode", "chmod 0644 etc/kubernetes/pki/front-proxy-client.key", "front-proxy-client",
         "key-mode"},
        {"dangling", "rm var/lib/kubelet/pki/kubelet-client-2*.pem", "kubelet-client",
         "dangling-symlink"},
        {"truncated", "head -c 300 etc/kubernetes/pki/etcd/server.crt > t && mv t "
                      "etc/kubernetes/pki/etcd/server.crt",
         "etcd-server", "unreadable"},
        {"foreign-kubeconfig", "cp $O/etc/kubernetes/admin.conf etc/kubernetes/", "admin.conf",
         "wrong-ca-data"},
        {"sa-mismatch", "cp $O/etc/kubernetes/pki/sa.pub etc/kubernetes/pki/", "sa",
         "key-mismatch"},
        {"missing", "rm etc/kubernetes/scheduler.conf", "scheduler.conf", "missing"},
        {"dir-mode", "chmod 0777 etc/kubernetes/pki", "directories", "dir-mode"},
    };
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        char root[PATH_MAX], command[4 * PATH_MAX];
        snprintf(root, sizeof(root), "%s/%s", base, faults[i].name);
        copy_tree(good, root);
        snprintf(command, sizeof(command), "cd '%s' && O='%s' && %s", root, other,
                 faults[i].command);
        assert_int_equal(system(command), 0);
        struct kp_check_report report;
        check(root, NULL, NOW, 30 * DAY, &report);
        assert_int_equal(report.status, KP_CHECK_PROBLEMS);
        if (!has_finding(item_named(&report, faults[i].item), faults[i].code, KP_CHECK_PROBLEM)) {
            fail_msg("%s: no '%s' finding on %s", faults[i].name, faults[i].code,
                     faults[i].item);
        }
        kp_check_report_wipe(&report);
    }
}

/* A SAN the configuration requires but the certificate lacks (the node was renamed). */
static void test_missing_san(void **state)
{
    (void)state;
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/san", base);
    build(root, NOW);
    struct kp_check_report report;
    check(root, "n2", NOW, 30 * DAY, &report);
    assert_true(has_finding(item_named(&report, "apiserver"), "missing-san", KP_CHECK_PROBLEM));
    assert_true(has_finding(item_named(&report, "etcd-server"), "missing-san", KP_CHECK_PROBLEM));
    /* The kubelet's identity is its name: a different CN is a problem there. */
    assert_true(has_finding(item_named(&report, "kubelet-client"), "identity", KP_CHECK_PROBLEM));
    kp_check_report_wipe(&report);
}

/* A certificate whose EKU does not fit its role, signed by the right CA. */
static void test_wrong_eku(void **state)
{
    (void)state;
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/eku", base);
    build(root, NOW);
    /* The apiserver-kubelet-client pair (clientAuth) put where apiserver (serverAuth) belongs. */
    char command[2 * PATH_MAX];
    snprintf(command, sizeof(command),
             "cd '%s/etc/kubernetes/pki' && cp apiserver-kubelet-client.crt apiserver.crt && "
             "cp apiserver-kubelet-client.key apiserver.key",
             root);
    assert_int_equal(system(command), 0);
    struct kp_check_report report;
    check(root, NULL, NOW, 30 * DAY, &report);
    const struct kp_check_item *item = item_named(&report, "apiserver");
    assert_true(has_finding(item, "wrong-eku", KP_CHECK_PROBLEM));
    assert_true(has_finding(item, "missing-san", KP_CHECK_PROBLEM));
    kp_check_report_wipe(&report);
}

static void test_revoked_still_in_place(void **state)
{
    (void)state;
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/revoked", base);
    build(root, NOW);
    struct kp_pki_config config;
    struct kp_error err;
    config_for(&config, root, NULL);
    kp_pki_config_infer(&config, root);
    assert_int_equal(kp_pki_config_finalize(&config, &err), KP_OK);
    X509 *cert = NULL;
    char ca[32], serial[80];
    assert_int_equal(kp_pki_find_certificate(&config, "apiserver-etcd-client", &cert, ca,
                                             sizeof(ca), &err),
                     KP_OK);
    assert_string_equal(ca, "etcd-ca");
    kp_cert_serial_hex(cert, serial, sizeof(serial));
    X509_free(cert);
    struct kp_clock clock;
    kp_clock_fixed_init(&clock, NOW);
    struct kp_revoke_result result;
    assert_int_equal(kp_pki_revoke(&config, &clock, ca, serial, KP_CRL_KEY_COMPROMISE, 7 * DAY,
                                   &result, &err),
                     KP_OK);
    assert_int_equal(result.crl_number, 1);
    assert_string_equal(result.crl_path, "etc/kubernetes/pki/etcd/ca.crl");
    kp_pki_config_wipe(&config);
    struct kp_check_report report;
    check(root, NULL, NOW, 3 * DAY, &report);
    assert_true(
        has_finding(item_named(&report, "apiserver-etcd-client"), "revoked", KP_CHECK_PROBLEM));
    assert_false(kp_check_item_has_problem(item_named(&report, "etcd-server")));
    kp_check_report_wipe(&report);
    /* Ten days on, the CRL is past its nextUpdate. */
    check(root, NULL, NOW + 10 * DAY, 3 * DAY, &report);
    assert_true(has_finding(item_named(&report, "etcd-ca.crl"), "crl-expired", KP_CHECK_PROBLEM));
    kp_check_report_wipe(&report);
}

static void test_root_missing(void **state)
{
    (void)state;
    struct kp_pki_config config;
    struct kp_error err;
    config_for(&config, "/nonexistent/root", "n1");
    assert_int_equal(kp_pki_config_finalize(&config, &err), KP_OK);
    struct kp_check_report report;
    assert_int_equal(kp_pki_check(&config, kp_clock_system(), 0, &report, &err),
                     KP_ERR_NOT_FOUND);
    kp_check_report_wipe(&report);
    kp_pki_config_wipe(&config);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_tree_is_healthy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_at_a_pinned_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_fault_is_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_san, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_eku, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_still_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_missing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
