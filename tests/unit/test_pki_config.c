#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"

static void test_defaults_are_kubeadms(void **state)
{
    (void)state;
    struct kp_pki_config config;
    struct kp_error err;
    assert_int_equal(kp_pki_config_init(&config, &err), KP_OK);
    assert_string_equal(config.root, "/");
    assert_string_equal(config.service_cidr, "10.96.0.0/12");
    assert_string_equal(config.dns_domain, "cluster.local");
    assert_string_equal(config.cluster_name, "kubernetes");
    assert_int_equal(config.bind_port, 6443);
    assert_int_equal(config.key_type, KP_KEY_RSA_2048);
    assert_int_equal(config.cert_validity, 8760LL * 3600);
    assert_int_equal(config.ca_validity, 87600LL * 3600);
    assert_int_equal(config.kubelet_serving, KP_KUBELET_SERVING_CA);
    assert_int_equal(kp_pki_config_finalize(&config, &err), KP_OK);
    char vip[KP_IP_TEXT_MAX];
    kp_ip_format(&config.api_vip, vip, sizeof(vip));
    assert_string_equal(vip, "10.96.0.1");
    assert_non_null(config.node_name);
    assert_true(config.advertise_set);
    assert_string_equal(config.endpoint_url, config.local_url);
    kp_pki_config_wipe(&config);
}

static void test_urls(void **state)
{
    (void)state;
    const struct {
        const char *advertise;
        const char *endpoint;
        const char *port;
        const char *local;
        const char *endpoint_url;
    } rows[] = {
        {"10.0.0.5", NULL, NULL, "https://10.0.0.5:6443", "https://10.0.0.5:6443"},
        {"10.0.0.5", "cp.example.com", NULL, "https://10.0.0.5:6443",
         "https://cp.example.com:6443"},
        {"10.0.0.5", "cp.example.com:443", "7443", "https://10.0.0.5:7443",
         "https://cp.example.com:443"},
        {"fd00::5", "fd00::100", NULL, "https://[fd00::5]:6443", "https://[fd00::100]:6443"},
        {"fd00::5", "[fd00::100]:8443", NULL, "https://[fd00::5]:6443",
         "https://[fd00::100]:8443"},
        {"10.0.0.5", "::ffff:10.0.0.9", NULL, "https://10.0.0.5:6443", "https://10.0.0.9:6443"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_pki_config config;
        struct kp_error err;
        assert_int_equal(kp_pki_config_init(&config, &err), KP_OK);
        assert_int_equal(kp_pki_option_find("node-name")->set(&config, "n1", &err), KP_OK);
        assert_int_equal(kp_pki_option_find("apiserver-advertise-address")
                             ->set(&config, rows[i].advertise, &err),
                         KP_OK);
        if (rows[i].endpoint != NULL) {
            assert_int_equal(kp_pki_option_find("control-plane-endpoint")
                                 ->set(&config, rows[i].endpoint, &err),
                             KP_OK);
        }
        if (rows[i].port != NULL) {
            assert_int_equal(
                kp_pki_option_find("apiserver-bind-port")->set(&config, rows[i].port, &err),
                KP_OK);
        }
        assert_int_equal(kp_pki_config_finalize(&config, &err), KP_OK);
        assert_string_equal(config.local_url, rows[i].local);
        assert_string_equal(config.endpoint_url, rows[i].endpoint_url);
        kp_pki_config_wipe(&config);
    }
}

/* Every option rejects bad values with a message naming the value. */
static void test_option_rejections(void **state)
{
    (void)state;
    const struct {
        const char *option;
        const char *value;
        const char *message;
    } rows[] = {
        {"node-name", "Node_1", "invalid node name"},
        {"node-name", "", "invalid node name"},
        {"apiserver-advertise-address", "10.0.0", "invalid IP address"},
        {"apiserver-advertise-address", "0.0.0.0", "unspecified address"},
        {"apiserver-advertise-address", "::", "unspecified address"},
        {"apiserver-bind-port", "0", "invalid port"},
        {"apiserver-bind-port", "70000", "invalid port"},
        {"apiserver-bind-port", "64x", "invalid port"},
        {"control-plane-endpoint", "cp_1.example.com", "invalid control-plane endpoint"},
        {"control-plane-endpoint", "cp:99999", "port must be"},
        {"control-plane-endpoint", "fd00::1:6443x", "IPv6 with a port needs"},
        {"service-cidr", "10.96.0.0/33", "invalid CIDR"},
        {"service-cidr", "10.96.0.1/12", "host bits"},
        {"service-cidr", "10.0.0.0/8", "too large"},
        {"service-cidr", "fd00::/64", "too large"},
        {"service-cidr", "10.96.0.0/31", "too small"},
        {"service-cidr", "10.96.0.0/12,fd00::/108,10.97.0.0/16", "dual-stack"},
        {"service-cidr", "not-a-cidr", "invalid CIDR"},
        {"service-dns-domain", "Cluster.Local", "invalid DNS domain"},
        {"cluster-name", "has space", "invalid cluster name"},
        {"cluster-name", "k\xff", "invalid cluster name"},
        {"cluster-name", "\xc0\xafoverlong", "invalid cluster name"},
        {"apiserver-cert-extra-sans", "ok.example.com,Bad_Name", "invalid SAN 'Bad_Name'"},
        {"apiserver-cert-extra-sans", "10.0.0.3:80", "invalid SAN"},
        {"etcd-server-cert-extra-sans", "*", "invalid SAN"},
        {"key-type", "rsa-1024", "unknown key type"},
        {"key-type", "ed25519", "unknown key type"},
        {"cert-validity", "1year", "invalid duration"},
        {"cert-validity", "-1h", "invalid duration"},
        {"ca-validity", "0h", "invalid duration"},
        {"kubelet-serving", "webhook", "invalid kubelet serving mode"},
        {"key-threads", "-1", "invalid thread count"},
        {"root", "", "empty directory"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_pki_config config;
        struct kp_error err;
        assert_int_equal(kp_pki_config_init(&config, &err), KP_OK);
        const struct kp_pki_option *option = kp_pki_option_find(rows[i].option);
        assert_non_null(option);
        kp_error_clear(&err);
        if (option->set(&config, rows[i].value, &err) != KP_ERR_INVALID ||
            strstr(err.message, rows[i].message) == NULL) {
            fail_msg("--%s '%s': got '%s'", rows[i].option, rows[i].value, err.message);
        }
        kp_pki_config_wipe(&config);
    }
}

static void test_option_table(void **state)
{
    (void)state;
    /* kubeadm's flag names where kubeadm has the flag. */
    const char *names[] = {"node-name", "apiserver-advertise-address", "apiserver-bind-port",
                           "control-plane-endpoint", "service-cidr", "service-dns-domain",
                           "apiserver-cert-extra-sans", "root", "cluster-name", "key-type",
                           "cert-validity", "ca-validity", "kubelet-serving", "join-from",
                           "config" /* handled by the CLI, not the table */};
    for (size_t i = 0; i + 1 < sizeof(names) / sizeof(names[0]); i++) {
        const struct kp_pki_option *option = kp_pki_option_find(names[i]);
        assert_non_null(option);
        assert_non_null(option->help);
        assert_non_null(option->set);
        assert_true(!option->is_list || option->clear != NULL);
    }
    assert_null(kp_pki_option_find("config"));
}

static enum kp_result load(struct kp_pki_config *config, const char *text, struct kp_error *err)
{
    return kp_pki_config_load_yaml(config, text, strlen(text), "init.yaml", err);
}

static void test_config_file(void **state)
{
    (void)state;
    struct kp_pki_config config;
    struct kp_error err;
    assert_int_equal(kp_pki_config_init(&config, &err), KP_OK);
    const char *text = "# kpki init options\n"
                       "node-name: cp-1\n"
                       "apiserver-advertise-address: 192.168.1.10\n"
                       "apiserver-cert-extra-sans:\n"
                       "  - api.example.com\n"
                       "  - 192.168.1.100\n"
                       "etcd-server-cert-extra-sans: a.example.com, b.example.com\n"
                       "key-type: ECDSA-P256\n"
                       "cert-validity: 90d\n"
                       "apiserver-bind-port: 8443\n";
    assert_int_equal(load(&config, text, &err), KP_OK);
    assert_string_equal(config.node_name, "cp-1");
    assert_int_equal(config.apiserver_extra_sans.count, 2);
    assert_string_equal(config.apiserver_extra_sans.items[1], "192.168.1.100");
    assert_int_equal(config.etcd_server_extra_sans.count, 2);
    assert_int_equal(config.key_type, KP_KEY_ECDSA_P256);
    assert_int_equal(config.cert_validity, 90 * 86400);
    assert_int_equal(config.bind_port, 8443);
    /* A second file replaces lists rather than appending to them. */
    assert_int_equal(load(&config, "apiserver-cert-extra-sans: [x.example.com]\n", &err), KP_OK);
    assert_int_equal(config.apiserver_extra_sans.count, 1);
    assert_int_equal(load(&config, "", &err), KP_OK);
    assert_int_equal(load(&config, "---\n", &err), KP_OK);
    /* A rejected value leaves the previous one in place. */
    assert_int_equal(load(&config, "cert-validity: forever\n", &err), KP_ERR_INVALID);
    assert_int_equal(config.cert_validity, 90 * 86400);
    kp_pki_config_wipe(&config);
}

static void test_config_file_rejections(void **state)
{
    (void)state;
    const struct {
        const char *text;
        const char *message;
    } rows[] = {
        {"node-nam: x\n", "init.yaml: line 1: unknown option 'node-nam'"},
        {"node-name: a\nnode-name: b\n", "line 2: 'node-name' is set twice"},
        {"- node-name\n", "expected a mapping"},
        {"node-name: [a, b]\n", "line 1: node-name: expected one value, got a list"},
        {"node-name:\n  nested: x\n", "line 2: node-name: expected a string"},
        {"node-name:\n", "line 1: node-name: empty value"},
        {"apiserver-cert-extra-sans:\n  - ok.example.com\n  - {a: b}\n",
         "line 3: apiserver-cert-extra-sans: list items must be strings"},
        {"service-cidr: 10.96.0.0/40\n", "init.yaml: line 1: service-cidr: invalid CIDR"},
        {"key-type: dsa\n", "line 1: key-type: unknown key type 'dsa'"},
        {"cert-validity: soon\n", "line 1: cert-validity: invalid duration"},
        {"node-name: n1\n---\nnode-name: n2\n", "more than one YAML document"},
        {"node-name: 'n1\n", "invalid YAML"},
        {"apiserver-cert-extra-sans: [a.example.com, *b]\n", "invalid YAML"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_pki_config config;
        struct kp_error err;
        assert_int_equal(kp_pki_config_init(&config, &err), KP_OK);
        kp_error_clear(&err);
        if (load(&config, rows[i].text, &err) != KP_ERR_INVALID ||
            strstr(err.message, rows[i].message) == NULL) {
            fail_msg("row %zu: got '%s', want '%s'", i, err.message, rows[i].message);
        }
        kp_pki_config_wipe(&config);
    }
}

static void test_config_file_errors(void **state)
{
    (void)state;
    struct kp_pki_config config;
    struct kp_error err;
    assert_int_equal(kp_pki_config_init(&config, &err), KP_OK);
    assert_int_equal(kp_pki_config_load_file(&config, "/nonexistent/init.yaml", &err),
                     KP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "--config: cannot read '/nonexistent/init.yaml'"));
    assert_int_equal(kp_pki_config_load_file(&config, "/", &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "is a directory"));
    kp_pki_config_wipe(&config);
}

static void test_root_must_be_a_directory(void **state)
{
    (void)state;
    char dir[512];
    char file[600];
    test_make_dir("rootfile", dir, sizeof(dir));
    test_write_file(test_path(file, sizeof(file), dir, "plain"), "x");
    struct kp_pki_config config;
    struct kp_error err;
    assert_int_equal(kp_pki_config_init(&config, &err), KP_OK);
    assert_int_equal(kp_pki_option_find("root")->set(&config, file, &err), KP_OK);
    assert_int_equal(kp_pki_option_find("node-name")->set(&config, "n1", &err), KP_OK);
    assert_int_equal(kp_pki_config_finalize(&config, &err), KP_ERR_INVALID);
    assert_non_null(strstr(err.message, "is not a directory"));
    kp_pki_config_wipe(&config);
    test_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_kubeadms),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_option_rejections),
        cmocka_unit_test(test_option_table),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_config_file_rejections),
        cmocka_unit_test(test_config_file_errors),
        cmocka_unit_test(test_root_must_be_a_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
