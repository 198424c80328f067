#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"

static const char kubeadm_style[] =
    "apiVersion: v1\n"
    "clusters:\n"
    "- cluster:\n"
    "    certificate-authority-data: Y2EtZGF0YQ==\n"
    "    server: https://10.0.0.5:6443\n"
    "  name: kubernetes\n"
    "contexts:\n"
    "- context:\n"
    "    cluster: kubernetes\n"
    "    user: kubernetes-admin\n"
    "  name: kubernetes-admin@kubernetes\n"
    "current-context: kubernetes-admin@kubernetes\n"
    "kind: Config\n"
    "preferences: {}\n"
    "users:\n"
    "- name: kubernetes-admin\n"
    "  user:\n"
    "    client-certificate-data: Y2VydA==\n"
    "    client-key-data: a2V5\n";

static void test_render_matches_clientcmd_shape(void **state)
{
    (void)state;
    struct kp_kubeconfig kubeconfig = {
        .cluster_name = "kubernetes",
        .server = "https://10.0.0.5:6443",
        .ca_data = (unsigned char *)"ca-data",
        .ca_len = 7,
        .user_name = "kubernetes-admin",
        .cert_data = (unsigned char *)"cert",
        .cert_len = 4,
        .key_data = (unsigned char *)"key",
        .key_len = 3,
        .context_name = "kubernetes-admin@kubernetes",
    };
    char *text = NULL;
    size_t len = 0;
    struct kp_error err;
    assert_int_equal(kp_kubeconfig_render(&kubeconfig, &text, &len, &err), KP_OK);
    assert_string_equal(text, kubeadm_style);
    free(text);
}

static void test_parse_selects_current_context(void **state)
{
    (void)state;
    const char *text = "apiVersion: v1\n"
                       "clusters:\n"
                       "- name: other\n  cluster: {server: https://other:6443}\n"
                       "- name: prod\n  cluster:\n    server: https://prod:6443\n"
                       "    certificate-authority: /etc/ca.crt\n"
                       "users:\n"
                       "- name: u1\n  user: {token: abc.def}\n"
                       "- name: node\n  user:\n    client-certificate: /var/lib/x.pem\n"
                       "    client-key: /var/lib/x.pem\n"
                       "contexts:\n"
                       "- name: a\n  context: {cluster: other, user: u1}\n"
                       "- name: b\n  context: {cluster: prod, user: node}\n"
                       "current-context: b\n";
    struct kp_kubeconfig kubeconfig;
    struct kp_error err;
    assert_int_equal(kp_kubeconfig_parse(text, strlen(text), "k", &kubeconfig, &err), KP_OK);
    assert_string_equal(kubeconfig.server, "https://prod:6443");
    assert_string_equal(kubeconfig.ca_file, "/etc/ca.crt");
    assert_string_equal(kubeconfig.cert_file, "/var/lib/x.pem");
    assert_null(kubeconfig.token);
    assert_null(kubeconfig.cert_data);
    kp_kubeconfig_wipe(&kubeconfig);
    assert_int_equal(kp_kubeconfig_parse(kubeadm_style, strlen(kubeadm_style), "k", &kubeconfig,
                                         &err),
                     KP_OK);
    assert_int_equal(kubeconfig.ca_len, 7);
    assert_memory_equal(kubeconfig.ca_data, "ca-data", 7);
    assert_memory_equal(kubeconfig.key_data, "key", 3);
    kp_kubeconfig_wipe(&kubeconfig);
}

static void test_parse_rejections(void **state)
{
    (void)state;
    const struct {
        const char *text;
        const char *message;
    } rows[] = {
        {"apiVersion: v1\n", "no current-context"},
        {"current-context: x\n", "current-context 'x' is not in contexts"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n",
         "names cluster 'c', which is not in clusters"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
         "clusters:\n- name: c\n  cluster: {server: s}\n",
         "names user 'u', which is not in users"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
         "clusters:\n- name: c\n  cluster: {certificate-authority-data: '!!notbase64'}\n"
         "users:\n- name: u\n  user: {}\n",
         "certificate-authority-data: invalid base64"},
        {"current-context: [\n", "invalid YAML"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct kp_kubeconfig kubeconfig;
        struct kp_error err;
        kp_error_clear(&err);
        if (kp_kubeconfig_parse(rows[i].text, strlen(rows[i].text), "bad.conf", &kubeconfig,
                                &err) != KP_ERR_INVALID ||
            strstr(err.message, rows[i].message) == NULL ||
            strstr(err.message, "bad.conf") == NULL) {
            fail_msg("row %zu: got '%s'", i, err.message);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_matches_clientcmd_shape),
        cmocka_unit_test(test_parse_selects_current_context),
        cmocka_unit_test(test_parse_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
