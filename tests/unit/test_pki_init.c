/*
 * kp_pki_init's behaviour on reruns, on inconsistent files, on external CAs, when joining,
 * and when any single file operation fails.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki/pki.h"

#define NOW 1800000000LL

static char base[512];

static int setup(void **state)
{
    (void)state;
    test_make_dir("init", base, sizeof(base));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kp_fault_arm(0, 0, 0);
    test_remove_tree(base);
    return 0;
}

struct options {
    const char *node;
    const char *join_from;
    const char *ca_validity;
    const char *kubelet_serving;
};

static enum kp_result run_init(const char *root, const struct options *options,
                               struct kp_pki_report *report, struct kp_error *err)
{
    struct kp_pki_config config;
    assert_int_equal(kp_pki_config_init(&config, err), KP_OK);
    const char *settings[][2] = {
        {"root", root},
        {"node-name", options != NULL && options->node != NULL ? options->node : "n1"},
        {"apiserver-advertise-address", "10.0.0.5"},
        {"key-type", "ecdsa-p256"},
        {"join-from", options != NULL ? options->join_from : NULL},
        {"ca-validity", options != NULL ? options->ca_validity : NULL},
        {"kubelet-serving", options != NULL ? options->kubelet_serving : NULL},
    };
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (settings[i][1] != NULL) {
            assert_int_equal(kp_pki_option_find(settings[i][0])->set(&config, settings[i][1], err),
                             KP_OK);
        }
    }
    assert_int_equal(kp_pki_config_finalize(&config, err), KP_OK);
    struct kp_clock clock;
    kp_clock_fixed_init(&clock, NOW);
    kp_error_clear(err);
    enum kp_result rc = kp_pki_init(&config, &clock, NULL, report, err);
    kp_pki_config_wipe(&config);
    return rc;
}

static void init_ok(const char *root, const struct options *options, struct kp_pki_report *report)
{
    struct kp_error err;
    if (run_init(root, options, report, &err) != KP_OK) {
        fail_msg("init %s: %s", root, err.message);
    }
}

static enum kp_pki_action action_of(const struct kp_pki_report *report, const char *name)
{
    for (size_t i = 0; i < report->count; i++) {
        if (strcmp(report->entries[i].name, name) == 0) {
            return report->entries[i].action;
        }
    }
    fail_msg("no report entry %s", name);
    return KP_PKI_SKIPPED;
}

static const char *make_root(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", base, name);
    return out;
}

static const char *in(const char *root, const char *rel)
{
    static char paths[8][PATH_MAX];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, PATH_MAX, "%s/%s", root, rel);
    return path;
}

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    char *data = test_read_file(from, &len);
    FILE *file = fopen(to, "w");
    assert_non_null(file);
    fwrite(data, 1, len, file);
    fclose(file);
    free(data);
}

/* ---- a snapshot of every file and link of a tree, to prove nothing was written ---- */

static char snapshot_buffer[1 << 20];
static size_t snapshot_used;
static const char *snapshot_root;

static int snapshot_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    (void)flag;
    char line[PATH_MAX + 512];
    int len;
    if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX] = {0};
        ssize_t got = readlink(path, target, sizeof(target) - 1);
        len = snprintf(line, sizeof(line), "L %s -> %.*s\n", path + strlen(snapshot_root),
                       (int)(got > 0 ? got : 0), target);
    } else if (S_ISREG(st->st_mode)) {
        /* size + mtime + a cheap hash of the contents */
        size_t size = 0;
        char *data = test_read_file(path, &size);
        unsigned long hash = 5381;
        for (size_t i = 0; i < size; i++) {
            hash = hash * 33 + (unsigned char)data[i];
        }
        free(data);
        len = snprintf(line, sizeof(line), "F %s %zu %lx %o\n", path + strlen(snapshot_root),
                       size, hash, (unsigned)(st->st_mode & 07777));
    } else {
        len = snprintf(line, sizeof(line), "D %s\n", path + strlen(snapshot_root));
    }
    if (snapshot_used + (size_t)len < sizeof(snapshot_buffer)) {
        memcpy(snapshot_buffer + snapshot_used, line, (size_t)len);
        snapshot_used += (size_t)len;
    }
    return 0;
}

static char *snapshot(const char *root)
{
    snapshot_used = 0;
    snapshot_root = root;
    nftw(root, snapshot_entry, 16, FTW_PHYS);
    snapshot_buffer[snapshot_used] = '\0';
    return strdup(snapshot_buffer);
}

/* ---- tests ---- */

static void test_rerun_reuses_everything(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("rerun", root, sizeof(root));
    struct kp_pki_report report;
    init_ok(root, NULL, &report);
    assert_int_equal(report.keys_generated, 17);
    for (size_t i = 0; i < report.count; i++) {
        assert_int_equal(report.entries[i].action, KP_PKI_CREATED);
    }
    kp_pki_report_wipe(&report);
    char *before = snapshot(root);
    init_ok(root, NULL, &report);
    for (size_t i = 0; i < report.count; i++) {
        if (report.entries[i].action != KP_PKI_REUSED) {
            fail_msg("%s was %s", report.entries[i].name,
                     kp_pki_action_name(report.entries[i].action));
        }
    }
    assert_int_equal(report.keys_generated, 0);
    assert_int_equal(report.warnings.count, 0);
    kp_pki_report_wipe(&report);
    char *after = snapshot(root);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_missing_files_are_recreated(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("missing", root, sizeof(root));
    struct kp_pki_report report;
    init_ok(root, NULL, &report);
    kp_pki_report_wipe(&report);
    unlink(in(root, "etc/kubernetes/pki/apiserver.crt"));
    unlink(in(root, "etc/kubernetes/pki/apiserver.key"));
    unlink(in(root, "etc/kubernetes/admin.conf"));
    unlink(in(root, "etc/kubernetes/pki/sa.pub"));
    char *ca_before = test_read_file(in(root, "etc/kubernetes/pki/ca.crt"), NULL);
    char *sa_before = test_read_file(in(root, "etc/kubernetes/pki/sa.key"), NULL);
    init_ok(root, NULL, &report);
    assert_int_equal(action_of(&report, "apiserver"), KP_PKI_CREATED);
    assert_int_equal(action_of(&report, "admin.conf"), KP_PKI_CREATED);
    assert_int_equal(action_of(&report, "sa"), KP_PKI_COMPLETED);
    assert_int_equal(action_of(&report, "ca"), KP_PKI_REUSED);
    assert_int_equal(action_of(&report, "etcd-server"), KP_PKI_REUSED);
    assert_int_equal(report.keys_generated, 2);
    kp_pki_report_wipe(&report);
    char *ca_after = test_read_file(in(root, "etc/kubernetes/pki/ca.crt"), NULL);
    char *sa_after = test_read_file(in(root, "etc/kubernetes/pki/sa.key"), NULL);
    assert_string_equal(ca_before, ca_after);
    assert_string_equal(sa_before, sa_after);
    free(ca_before);
    free(ca_after);
    free(sa_before);
    free(sa_after);
    /* And the result is consistent: a third run reuses everything. */
    init_ok(root, NULL, &report);
    for (size_t i = 0; i < report.count; i++) {
        assert_int_equal(report.entries[i].action, KP_PKI_REUSED);
    }
    kp_pki_report_wipe(&report);
}

static void test_key_without_certificate_is_completed(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("keyonly", root, sizeof(root));
    struct kp_pki_report report;
    init_ok(root, NULL, &report);
    kp_pki_report_wipe(&report);
    unlink(in(root, "etc/kubernetes/pki/ca.crt"));
    unlink(in(root, "etc/kubernetes/pki/front-proxy-client.crt"));
    char *key_before = test_read_file(in(root, "etc/kubernetes/pki/ca.key"), NULL);
    init_ok(root, NULL, &report);
    assert_int_equal(action_of(&report, "ca"), KP_PKI_COMPLETED);
    assert_int_equal(action_of(&report, "front-proxy-client"), KP_PKI_COMPLETED);
    /* Leaves signed by the old ca.crt still verify against the re-issued one. */
    assert_int_equal(action_of(&report, "apiserver"), KP_PKI_REUSED);
    assert_int_equal(report.keys_generated, 0);
    kp_pki_report_wipe(&report);
    char *key_after = test_read_file(in(root, "etc/kubernetes/pki/ca.key"), NULL);
    assert_string_equal(key_before, key_after); /* a CA key is never overwritten */
    free(key_before);
    free(key_after);
}

struct conflict_case {
    const char *name;
    void (*damage)(const char *root, const char *other);
    const char *message;
};

static void use_other_apiserver(const char *root, const char *other)
{
    copy_file(in(other, "etc/kubernetes/pki/apiserver.crt"),
              in(root, "etc/kubernetes/pki/apiserver.crt"));
    copy_file(in(other, "etc/kubernetes/pki/apiserver.key"),
              in(root, "etc/kubernetes/pki/apiserver.key"));
}

static void use_other_key(const char *root, const char *other)
{
    copy_file(in(other, "etc/kubernetes/pki/etcd/peer.key"),
              in(root, "etc/kubernetes/pki/etcd/peer.key"));
}

static void use_other_admin_conf(const char *root, const char *other)
{
    copy_file(in(other, "etc/kubernetes/admin.conf"), in(root, "etc/kubernetes/admin.conf"));
}

static void use_other_sa_pub(const char *root, const char *other)
{
    copy_file(in(other, "etc/kubernetes/pki/sa.pub"), in(root, "etc/kubernetes/pki/sa.pub"));
}

static void drop_key(const char *root, const char *other)
{
    (void)other;
    unlink(in(root, "etc/kubernetes/pki/front-proxy-client.key"));
}

static void leaf_as_ca(const char *root, const char *other)
{
    (void)other;
    copy_file(in(root, "etc/kubernetes/pki/etcd/healthcheck-client.crt"),
              in(root, "etc/kubernetes/pki/etcd/ca.crt"));
    copy_file(in(root, "etc/kubernetes/pki/etcd/healthcheck-client.key"),
              in(root, "etc/kubernetes/pki/etcd/ca.key"));
}

static void truncate_cert(const char *root, const char *other)
{
    (void)other;
    const char *path = in(root, "etc/kubernetes/pki/apiserver-etcd-client.crt");
    assert_int_equal(truncate(path, 200), 0);
}

static void pub_without_key(const char *root, const char *other)
{
    (void)other;
    unlink(in(root, "etc/kubernetes/pki/sa.key"));
}

static void other_ca_key(const char *root, const char *other)
{
    copy_file(in(other, "etc/kubernetes/pki/ca.key"), in(root, "etc/kubernetes/pki/ca.key"));
}

/* Appends text after the line of admin.conf that starts with `after` (keeps the file valid). */
static void insert_after_line(const char *path, const char *after, const char *text)
{
    size_t len = 0;
    char *data = test_read_file(path, &len);
    char *line = strstr(data, after);
    assert_non_null(line);
    if (*line == '\n') {
        line++;
    }
    char *end = strchr(line, '\n') + 1;
    FILE *file = fopen(path, "w");
    fwrite(data, 1, (size_t)(end - data), file);
    fputs(text, file);
    fputs(end, file);
    fclose(file);
    free(data);
}

static char *other_ca_base64(const char *other)
{
    size_t len = 0;
    char *pem = test_read_file(in(other, "etc/kubernetes/pki/ca.crt"), &len);
    char *encoded = NULL;
    size_t encoded_len = 0;
    struct kp_error err;
    assert_int_equal(kp_base64_encode(pem, len, &encoded, &encoded_len, &err), KP_OK);
    free(pem);
    return encoded;
}

static void duplicate_ca_key(const char *root, const char *other)
{
    /* client-go would take the second value: the foreign CA. */
    char *encoded = other_ca_base64(other);
    char line[8192];
    snprintf(line, sizeof(line), "    certificate-authority-data: %s\n", encoded);
    insert_after_line(in(root, "etc/kubernetes/admin.conf"), "    certificate-authority-data:",
                      line);
    free(encoded);
}

static void ca_bundle(const char *root, const char *other)
{
    /* ca.crt followed by a foreign CA in one certificate-authority-data. */
    size_t a_len = 0, b_len = 0;
    char *a = test_read_file(in(root, "etc/kubernetes/pki/ca.crt"), &a_len);
    char *b = test_read_file(in(other, "etc/kubernetes/pki/ca.crt"), &b_len);
    char *both = malloc(a_len + b_len);
    memcpy(both, a, a_len);
    memcpy(both + a_len, b, b_len);
    char *encoded = NULL;
    size_t encoded_len = 0;
    struct kp_error err;
    assert_int_equal(kp_base64_encode(both, a_len + b_len, &encoded, &encoded_len, &err), KP_OK);
    const char *path = in(root, "etc/kubernetes/super-admin.conf");
    char *config = test_read_file(path, NULL);
    char *start = strstr(config, "certificate-authority-data: ") + 28;
    char *end = strchr(start, '\n');
    FILE *file = fopen(path, "w");
    fwrite(config, 1, (size_t)(start - config), file);
    fputs(encoded, file);
    fputs(end, file);
    fclose(file);
    free(config);
    free(encoded);
    free(both);
    free(a);
    free(b);
}

static void token_instead_of_certificate(const char *root, const char *other)
{
    (void)other;
    insert_after_line(in(root, "etc/kubernetes/controller-manager.conf"), "\n  user:\n",
                      "    token: abcdef.0123456789abcdef\n");
}

/* Writes a certificate signed by the tree's own CA, with the given O and CA flag, over the
 * apiserver-kubelet-client pair (whose row has no O). */
static void resign_kubelet_client(const char *root, const char *org, bool is_ca)
{
    size_t len = 0;
    char *ca_pem = test_read_file(in(root, "etc/kubernetes/pki/ca.crt"), &len);
    X509 *ca = NULL;
    struct kp_error err;
    assert_int_equal(kp_cert_from_pem(ca_pem, len, "ca", &ca, &err), KP_OK);
    char *ca_key_pem = test_read_file(in(root, "etc/kubernetes/pki/ca.key"), &len);
    EVP_PKEY *ca_key = NULL, *key = NULL;
    assert_int_equal(kp_key_from_pem(ca_key_pem, len, "ca.key", &ca_key, &err), KP_OK);
    char *key_pem = test_read_file(in(root, "etc/kubernetes/pki/apiserver-kubelet-client.key"),
                                   &len);
    assert_int_equal(kp_key_from_pem(key_pem, len, "key", &key, &err), KP_OK);
    const char *orgs[] = {org};
    struct kp_cert_template tmpl = {
        .common_name = "kube-apiserver-kubelet-client",
        .organizations = orgs,
        .organization_count = org != NULL ? 1 : 0,
        .is_ca = is_ca,
        .key_usage = KP_KU_DIGITAL_SIGNATURE,
        .ext_key_usage = KP_EKU_CLIENT_AUTH,
        .not_before = NOW - 300,
        .not_after = NOW + 86400,
    };
    X509 *cert = NULL;
    assert_int_equal(kp_cert_issue(&tmpl, key, ca, ca_key, &cert, &err), KP_OK);
    char *pem = NULL;
    assert_int_equal(kp_cert_to_pem(cert, &pem, &len, &err), KP_OK);
    test_write_file(in(root, "etc/kubernetes/pki/apiserver-kubelet-client.crt"), pem);
    free(pem);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    free(ca_pem);
    free(ca_key_pem);
    free(key_pem);
}

static void masters_group(const char *root, const char *other)
{
    (void)other;
    resign_kubelet_client(root, "system:masters", false);
}

static void ca_in_leaf_slot(const char *root, const char *other)
{
    (void)other;
    resign_kubelet_client(root, NULL, true);
}

static void pki_gone(const char *root, const char *other)
{
    (void)other;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof(command), "rm -rf '%s'", in(root, "etc/kubernetes/pki"));
    assert_int_equal(system(command), 0);
}

static void drop_ca(const char *root, const char *other)
{
    (void)other;
    unlink(in(root, "etc/kubernetes/pki/front-proxy-ca.crt"));
    unlink(in(root, "etc/kubernetes/pki/front-proxy-ca.key"));
}

static void test_inconsistent_files_stop_the_run(void **state)
{
    (void)state;
    const struct conflict_case cases[] = {
        {"foreign-cert", use_other_apiserver, "apiserver.crt' is not signed by the ca CA"},
        {"key-mismatch", use_other_key, "peer.crt' does not match its private key"},
        {"foreign-kubeconfig", use_other_admin_conf, "admin.conf' exists already but has got "
                                                     "the wrong CA cert"},
        {"sa-mismatch", use_other_sa_pub, "sa.pub' is not the public half of"},
        {"cert-without-key", drop_key, "front-proxy-client.crt' exists but its key"},
        {"not-a-ca", leaf_as_ca, "etcd/ca.crt' is not a CA certificate"},
        {"truncated", truncate_cert, "apiserver-etcd-client.crt: corrupt or truncated PEM"},
        {"pub-without-key", pub_without_key, "sa.pub' exists without its private key"},
        {"ca-key-mismatch", other_ca_key, "ca.key' does not match the CA certificate"},
        {"ca-gone", drop_ca, "front-proxy-client.crt' exists but its CA 'front-proxy-ca' does "
                             "not"},
        {"duplicate-key", duplicate_ca_key, "'certificate-authority-data' is set twice"},
        {"ca-bundle", ca_bundle, "super-admin.conf' embeds 2 CA certificates"},
        {"token", token_instead_of_certificate, "controller-manager.conf' authenticates with a "
                                                "token"},
        {"masters", masters_group, "apiserver-kubelet-client.crt' carries O=system:masters"},
        {"ca-as-leaf", ca_in_leaf_slot, "apiserver-kubelet-client.crt' is a CA certificate"},
        {"pki-gone", pki_gone, "admin.conf' exists but its CA 'ca' does not"},
    };
    char other[PATH_MAX];
    make_root("other", other, sizeof(other));
    struct kp_pki_report report;
    init_ok(other, NULL, &report);
    kp_pki_report_wipe(&report);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char root[PATH_MAX];
        make_root(cases[i].name, root, sizeof(root));
        init_ok(root, NULL, &report);
        kp_pki_report_wipe(&report);
        cases[i].damage(root, other);
        /* A missing file the run would otherwise create proves nothing is written. */
        unlink(in(root, "etc/kubernetes/scheduler.conf"));
        char *before = snapshot(root);
        struct kp_error err;
        enum kp_result rc = run_init(root, NULL, &report, &err);
        kp_pki_report_wipe(&report);
        if (rc == KP_OK || strstr(err.message, cases[i].message) == NULL) {
            fail_msg("%s: rc %d, message '%s'", cases[i].name, rc, err.message);
        }
        assert_true(rc == KP_ERR_CONFLICT || rc == KP_ERR_INVALID);
        char *after = snapshot(root);
        assert_string_equal(before, after);
        free(before);
        free(after);
    }
}

static void test_changed_node_name_is_a_missing_san(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("rename", root, sizeof(root));
    struct kp_pki_report report;
    init_ok(root, NULL, &report);
    kp_pki_report_wipe(&report);
    struct options renamed = {.node = "n2"};
    struct kp_error err;
    assert_int_equal(run_init(root, &renamed, &report, &err), KP_ERR_CONFLICT);
    kp_pki_report_wipe(&report);
    assert_non_null(strstr(err.message, "apiserver.crt' does not cover the required name 'n2'"));
}

static void test_external_ca(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("external", root, sizeof(root));
    struct kp_pki_report report;
    init_ok(root, NULL, &report);
    kp_pki_report_wipe(&report);
    unlink(in(root, "etc/kubernetes/pki/ca.key"));
    init_ok(root, NULL, &report);
    assert_int_equal(action_of(&report, "ca"), KP_PKI_EXTERNAL);
    assert_int_equal(action_of(&report, "apiserver"), KP_PKI_REUSED);
    kp_pki_report_wipe(&report);
    unlink(in(root, "etc/kubernetes/controller-manager.conf"));
    struct kp_error err;
    assert_int_equal(run_init(root, NULL, &report, &err), KP_ERR_CONFLICT);
    kp_pki_report_wipe(&report);
    assert_non_null(strstr(err.message, "controller-manager.conf': its CA 'ca' is external"));
    assert_false(test_exists(in(root, "etc/kubernetes/pki/ca.key")));
}

static void test_join_from(void **state)
{
    (void)state;
    char first[PATH_MAX], second[PATH_MAX];
    make_root("cp1", first, sizeof(first));
    make_root("cp2", second, sizeof(second));
    struct kp_pki_report report;
    init_ok(first, NULL, &report);
    kp_pki_report_wipe(&report);
    struct options join = {.node = "n2", .join_from = first};
    init_ok(second, &join, &report);
    assert_int_equal(action_of(&report, "ca"), KP_PKI_COPIED);
    assert_int_equal(action_of(&report, "etcd-ca"), KP_PKI_COPIED);
    assert_int_equal(action_of(&report, "sa"), KP_PKI_COPIED);
    assert_int_equal(action_of(&report, "super-admin.conf"), KP_PKI_SKIPPED);
    assert_int_equal(action_of(&report, "etcd-server"), KP_PKI_CREATED);
    kp_pki_report_wipe(&report);
    const char *shared[] = {"etc/kubernetes/pki/ca.crt", "etc/kubernetes/pki/ca.key",
                            "etc/kubernetes/pki/front-proxy-ca.crt",
                            "etc/kubernetes/pki/front-proxy-ca.key",
                            "etc/kubernetes/pki/etcd/ca.crt", "etc/kubernetes/pki/etcd/ca.key",
                            "etc/kubernetes/pki/sa.key", "etc/kubernetes/pki/sa.pub"};
    for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
        char *a = test_read_file(in(first, shared[i]), NULL);
        char *b = test_read_file(in(second, shared[i]), NULL);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    assert_int_equal(test_mode(in(second, "etc/kubernetes/pki/ca.key")), 0600);
    assert_false(test_exists(in(second, "etc/kubernetes/super-admin.conf")));
    size_t len = 0;
    char *text = test_read_file(in(second, "etc/kubernetes/pki/etcd/server.crt"), &len);
    X509 *cert = NULL;
    struct kp_error err;
    assert_int_equal(kp_cert_from_pem(text, len, "server.crt", &cert, &err), KP_OK);
    char cn[64];
    kp_cert_common_name(cert, cn, sizeof(cn));
    assert_string_equal(cn, "n2");
    X509_free(cert);
    free(text);
    /* Rerunning the join reuses everything. */
    init_ok(second, &join, &report);
    for (size_t i = 0; i < report.count; i++) {
        assert_true(report.entries[i].action == KP_PKI_REUSED ||
                    report.entries[i].action == KP_PKI_SKIPPED);
    }
    kp_pki_report_wipe(&report);
    /* A node with its own, different CA cannot join. */
    char third[PATH_MAX];
    make_root("cp3", third, sizeof(third));
    init_ok(third, NULL, &report);
    kp_pki_report_wipe(&report);
    struct options join3 = {.node = "n3", .join_from = first};
    assert_int_equal(run_init(third, &join3, &report, &err), KP_ERR_CONFLICT);
    kp_pki_report_wipe(&report);
    assert_non_null(strstr(err.message, "differs from"));
    /* The source's shared material is checked before it is copied. */
    copy_file(in(third, "etc/kubernetes/pki/etcd/ca.key"), in(first, "etc/kubernetes/pki/etcd/ca.key"));
    struct options join5 = {.node = "n5", .join_from = first};
    assert_int_equal(run_init(in(base, "cp5"), &join5, &report, &err), KP_ERR_CONFLICT);
    kp_pki_report_wipe(&report);
    assert_non_null(strstr(err.message, "ca.key' does not match the CA certificate"));
    struct options nowhere = {.node = "n4", .join_from = "/nonexistent/tree"};
    assert_int_equal(run_init(in(base, "cp4"), &nowhere, &report, &err), KP_ERR_NOT_FOUND);
    kp_pki_report_wipe(&report);
}

static void test_dangling_kubelet_symlink_is_replaced(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("dangling", root, sizeof(root));
    struct kp_pki_report report;
    init_ok(root, NULL, &report);
    kp_pki_report_wipe(&report);
    char target[256] = {0};
    const char *link = in(root, "var/lib/kubelet/pki/kubelet-client-current.pem");
    assert_true(readlink(link, target, sizeof(target) - 1) > 0);
    char pem[PATH_MAX];
    snprintf(pem, sizeof(pem), "%s/var/lib/kubelet/pki/%s", root, target);
    unlink(pem);
    init_ok(root, NULL, &report);
    assert_int_equal(action_of(&report, "kubelet-client"), KP_PKI_CREATED);
    assert_int_equal(report.warnings.count, 1);
    assert_non_null(strstr(report.warnings.items[0], "dangling symlink"));
    kp_pki_report_wipe(&report);
    struct stat st;
    assert_int_equal(stat(link, &st), 0);
}

static void test_self_signed_kubelet_rerun(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("selfsigned", root, sizeof(root));
    struct options self = {.kubelet_serving = "self-signed"};
    struct kp_pki_report report;
    init_ok(root, &self, &report);
    assert_int_equal(report.keys_generated, 18); /* + the kubelet's own CA key */
    kp_pki_report_wipe(&report);
    init_ok(root, &self, &report);
    assert_int_equal(action_of(&report, "kubelet-serving"), KP_PKI_REUSED);
    kp_pki_report_wipe(&report);
    /* An interrupted run can leave kubelet.key without kubelet.crt: the rerun completes it. */
    unlink(in(root, "var/lib/kubelet/pki/kubelet.crt"));
    init_ok(root, &self, &report);
    assert_int_equal(action_of(&report, "kubelet-serving"), KP_PKI_COMPLETED);
    kp_pki_report_wipe(&report);
    /* Switching to CA-signed mode finds a certificate the cluster CA did not sign. */
    struct kp_error err;
    assert_int_equal(run_init(root, NULL, &report, &err), KP_ERR_CONFLICT);
    kp_pki_report_wipe(&report);
    assert_non_null(strstr(err.message, "kubelet.crt' is not signed by the ca CA"));
}

static void test_leaf_never_outlives_its_ca(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("clip", root, sizeof(root));
    struct options short_ca = {.ca_validity = "48h"};
    struct kp_pki_report report;
    init_ok(root, &short_ca, &report);
    assert_true(report.warnings.count > 0);
    assert_non_null(strstr(report.warnings.items[0], "would outlive its CA"));
    for (size_t i = 0; i < report.count; i++) {
        if (report.entries[i].not_after != 0) {
            assert_true(report.entries[i].not_after <= NOW + 48 * 3600);
        }
    }
    kp_pki_report_wipe(&report);
}

static void test_long_node_name(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("longname", root, sizeof(root));
    char name[254];
    memset(name, 'a', 253);
    for (int i = 60; i < 253; i += 61) {
        name[i] = '.';
    }
    name[253] = '\0';
    struct options long_name = {.node = name};
    struct kp_pki_report report;
    init_ok(root, &long_name, &report);
    kp_pki_report_wipe(&report);
}

static void test_concurrent_run_is_refused(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("locked", root, sizeof(root));
    struct kp_pki_report report;
    init_ok(root, NULL, &report);
    kp_pki_report_wipe(&report);
    int fd = open(in(root, "etc/kubernetes"), O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    struct kp_error err;
    assert_int_equal(run_init(root, NULL, &report, &err), KP_ERR_CONFLICT);
    kp_pki_report_wipe(&report);
    assert_non_null(strstr(err.message, "another kpki is working on"));
    close(fd);
    init_ok(root, NULL, &report);
    kp_pki_report_wipe(&report);
}

/* Fail every file operation of a fresh init in turn. After each failure, the files present are
 * complete (a rerun validates them), no temporary file is left, and a rerun finishes a tree
 * that a third run reuses entirely. */
static void test_every_write_failure_is_recoverable(void **state)
{
    (void)state;
    char root[PATH_MAX];
    make_root("count", root, sizeof(root));
    struct kp_pki_report report;
    kp_fault_arm(0, 0, 0);
    init_ok(root, NULL, &report);
    kp_pki_report_wipe(&report);
    unsigned long operations = kp_fault_count();
    assert_true(operations > 40);
    for (unsigned long n = 1; n <= operations; n++) {
        char name[64];
        snprintf(name, sizeof(name), "fault-%lu", n);
        make_root(name, root, sizeof(root));
        kp_fault_arm(n, n % 2 ? ENOSPC : EIO, 0);
        struct kp_error err;
        enum kp_result rc = run_init(root, NULL, &report, &err);
        kp_fault_arm(0, 0, 0);
        kp_pki_report_wipe(&report);
        if (rc == KP_OK) {
            fail_msg("operation %lu: the injected failure was not reported", n);
        }
        assert_true(strstr(err.message, "No space left") != NULL ||
                    strstr(err.message, "Input/output error") != NULL);
        init_ok(root, NULL, &report); /* finishes the tree */
        kp_pki_report_wipe(&report);
        init_ok(root, NULL, &report); /* and it is whole and consistent */
        for (size_t i = 0; i < report.count; i++) {
            if (report.entries[i].action != KP_PKI_REUSED) {
                fail_msg("operation %lu: %s %s on the third run", n, report.entries[i].name,
                         kp_pki_action_name(report.entries[i].action));
            }
        }
        kp_pki_report_wipe(&report);
        char *listing = snapshot(root);
        if (strstr(listing, KP_FILE_TEMP_MARKER) != NULL) {
            fail_msg("operation %lu: a temporary file was left behind", n);
        }
        free(listing);
        test_remove_tree(root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rerun_reuses_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_files_are_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_without_certificate_is_completed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inconsistent_files_stop_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_node_name_is_a_missing_san, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_external_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_kubelet_symlink_is_replaced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_self_signed_kubelet_rerun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaf_never_outlives_its_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_node_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_run_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_write_failure_is_recoverable, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
