#include "testutil.h"

#include <string.h>

#include "core/core.h"

static void test_ip_parse(void **state)
{
    (void)state;
    struct kp_ip ip;
    char text[KP_IP_TEXT_MAX];
    assert_true(kp_ip_parse("10.96.0.1", &ip));
    assert_int_equal(ip.family, AF_INET);
    assert_true(kp_ip_parse("::1", &ip));
    assert_int_equal(ip.family, AF_INET6);
    assert_true(kp_ip_parse("0:0::1", &ip));
    kp_ip_format(&ip, text, sizeof(text));
    assert_string_equal(text, "::1");
    /* IPv4-mapped IPv6 is IPv4, as Go's net.ParseIP + To4 treat it. */
    assert_true(kp_ip_parse("::ffff:10.0.0.1", &ip));
    assert_int_equal(ip.family, AF_INET);
    kp_ip_format(&ip, text, sizeof(text));
    assert_string_equal(text, "10.0.0.1");
    const char *bad[] = {"", "10.0.0", "10.0.0.256", "1.2.3.4.5", "fe80::1%eth0", "[::1]",
                         "localhost", " 10.0.0.1", "10.0.0.1 ", "::g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kp_ip_parse(bad[i], &ip)) {
            fail_msg("'%s' should not parse", bad[i]);
        }
    }
}

static void test_cidr(void **state)
{
    (void)state;
    struct kp_cidr cidr;
    struct kp_ip ip;
    struct kp_error err;
    char text[KP_IP_TEXT_MAX];
    assert_int_equal(kp_cidr_parse("10.96.0.0/12", &cidr, &err), KP_OK);
    assert_int_equal(cidr.prefix_len, 12);
    assert_int_equal(kp_cidr_address(&cidr, 1, &ip, &err), KP_OK);
    kp_ip_format(&ip, text, sizeof(text));
    assert_string_equal(text, "10.96.0.1");
    assert_int_equal(kp_cidr_address(&cidr, 10, &ip, &err), KP_OK);
    kp_ip_format(&ip, text, sizeof(text));
    assert_string_equal(text, "10.96.0.10");
    assert_int_equal(kp_cidr_address(&cidr, 256, &ip, &err), KP_OK);
    kp_ip_format(&ip, text, sizeof(text));
    assert_string_equal(text, "10.96.1.0");
    assert_int_equal(kp_cidr_parse("fd00:10:96::/108", &cidr, &err), KP_OK);
    assert_int_equal(kp_cidr_address(&cidr, 1, &ip, &err), KP_OK);
    kp_ip_format(&ip, text, sizeof(text));
    assert_string_equal(text, "fd00:10:96::1");
    assert_int_equal(kp_cidr_parse("10.0.0.0/31", &cidr, &err), KP_OK);
    assert_int_equal(kp_cidr_address(&cidr, 2, &ip, &err), KP_ERR_INVALID);
    const char *bad[] = {"10.96.0.0", "10.96.0.0/", "10.96.0.0/33", "10.96.0.1/12",
                         "10.96.0.0/-1", "10.96.0.0/1x", "x/12", "fd00::/129", "/12",
                         "10.96.0.0/012a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kp_error_clear(&err);
        if (kp_cidr_parse(bad[i], &cidr, &err) != KP_ERR_INVALID) {
            fail_msg("'%s' should be rejected", bad[i]);
        }
        assert_non_null(strstr(err.message, bad[i]));
    }
}

static void test_dns_names(void **state)
{
    (void)state;
    const char *good[] = {"a", "kubernetes.default.svc.cluster.local", "node-1", "1node",
                          "a.b-c.d"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(kp_dns1123_subdomain_valid(good[i]));
    }
    char long_label[80];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    char too_long[300];
    memset(too_long, 'a', 254);
    for (int i = 63; i < 254; i += 64) {
        too_long[i] = '.';
    }
    too_long[254] = '\0';
    const char *bad[] = {"", "A", "-a", "a-", "a..b", ".a", "a.", "a_b", "*.a", "a b",
                         long_label, too_long};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kp_dns1123_subdomain_valid(bad[i])) {
            fail_msg("'%s' should be rejected", bad[i]);
        }
    }
    assert_true(kp_dns1123_wildcard_valid("*.example.com"));
    assert_false(kp_dns1123_wildcard_valid("*example.com"));
    assert_false(kp_dns1123_wildcard_valid("a.*.example.com"));
}

static void test_host_port(void **state)
{
    (void)state;
    char host[256];
    int port = -1;
    struct kp_error err;
    assert_int_equal(kp_host_port_parse("cp.example.com", host, sizeof(host), &port, &err),
                     KP_OK);
    assert_string_equal(host, "cp.example.com");
    assert_int_equal(port, 0);
    assert_int_equal(kp_host_port_parse("cp.example.com:8443", host, sizeof(host), &port, &err),
                     KP_OK);
    assert_int_equal(port, 8443);
    assert_int_equal(kp_host_port_parse("[fd00::1]:6443", host, sizeof(host), &port, &err),
                     KP_OK);
    assert_string_equal(host, "fd00::1");
    assert_int_equal(port, 6443);
    assert_int_equal(kp_host_port_parse("fd00::1", host, sizeof(host), &port, &err), KP_OK);
    assert_string_equal(host, "fd00::1");
    assert_int_equal(port, 0);
    const char *bad[] = {"", ":6443", "h:0", "h:65536", "h:", "h:x", "[::1", "[::1]x",
                         "a:b:c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kp_host_port_parse(bad[i], host, sizeof(host), &port, &err) != KP_ERR_INVALID) {
            fail_msg("'%s' should be rejected", bad[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_parse),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_dns_names),
        cmocka_unit_test(test_host_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
