/*
 * fuzz_addr - IPs, CIDRs, host:port and DNS-1123 names (core/addr.h).
 *
 * Invariants checked beyond "no crash, no leak, no UB":
 *   - a parsed IP, formatted (kp_ip_format) and parsed again, is equal to the first, and its
 *     canonical text is stable (formatting the reparsed address gives the same text);
 *   - a parsed CIDR has its host bits clear, a prefix within the family's width, and
 *     "<network>/<prefix>" parses back to the same CIDR;
 *   - host:port splitting returns a non-empty host that fits the buffer and a port in 0..65535;
 *   - a valid DNS-1123 subdomain is 1..253 characters of [a-z0-9.-]; a valid wildcard is "*."
 *     plus one.
 */
#include <stdbool.h>

#include "core/addr.h"
#include "fuzz.h"

static void check_ip(const char *text)
{
    struct kp_ip ip;
    if (!kp_ip_parse(text, &ip)) {
        return;
    }
    FUZZ_CHECK(ip.family == AF_INET || ip.family == AF_INET6);
    char formatted[KP_IP_TEXT_MAX];
    kp_ip_format(&ip, formatted, sizeof(formatted));
    struct kp_ip again;
    FUZZ_CHECK(kp_ip_parse(formatted, &again));
    FUZZ_CHECK(kp_ip_equal(&ip, &again));
    char formatted_again[KP_IP_TEXT_MAX];
    kp_ip_format(&again, formatted_again, sizeof(formatted_again));
    FUZZ_CHECK(strcmp(formatted, formatted_again) == 0);
}

static void check_cidr(const char *text)
{
    struct kp_error err;
    struct kp_cidr cidr;
    if (kp_cidr_parse(text, &cidr, &err) != KP_OK) {
        FUZZ_CHECK(err.code == KP_ERR_INVALID);
        return;
    }
    size_t len = kp_ip_len(&cidr.network);
    FUZZ_CHECK(cidr.prefix_len >= 0 && (size_t)cidr.prefix_len <= len * 8);
    for (size_t bit = (size_t)cidr.prefix_len; bit < len * 8; bit++) {
        FUZZ_CHECK((cidr.network.bytes[bit / 8] & (0x80 >> (bit % 8))) == 0);
    }
    char network[KP_IP_TEXT_MAX];
    kp_ip_format(&cidr.network, network, sizeof(network));
    char canonical[KP_IP_TEXT_MAX + 8];
    snprintf(canonical, sizeof(canonical), "%s/%d", network, cidr.prefix_len);
    struct kp_cidr again;
    FUZZ_CHECK(kp_cidr_parse(canonical, &again, &err) == KP_OK);
    FUZZ_CHECK(kp_ip_equal(&cidr.network, &again.network));
    FUZZ_CHECK(cidr.prefix_len == again.prefix_len);

    /* The API server VIP kubeadm derives (index 1), and the last index kpki could ask for. */
    struct kp_ip address;
    if (kp_cidr_address(&cidr, 1, &address, &err) == KP_OK) {
        FUZZ_CHECK(address.family == cidr.network.family);
    }
    if (kp_cidr_address(&cidr, (unsigned long)-1, &address, &err) == KP_OK) {
        FUZZ_CHECK(address.family == cidr.network.family);
    }
}

static void check_host_port(const char *text)
{
    struct kp_error err;
    char host[256];
    int port = -1;
    if (kp_host_port_parse(text, host, sizeof(host), &port, &err) != KP_OK) {
        FUZZ_CHECK(err.code == KP_ERR_INVALID);
        return;
    }
    size_t host_len = strnlen(host, sizeof(host));
    FUZZ_CHECK(host_len > 0 && host_len < sizeof(host));
    FUZZ_CHECK(port >= 0 && port <= 65535);

    /* A small buffer must be refused, never overrun. */
    char small[4];
    int small_port = 0;
    if (kp_host_port_parse(text, small, sizeof(small), &small_port, &err) == KP_OK) {
        FUZZ_CHECK(strnlen(small, sizeof(small)) < sizeof(small));
    }
}

static bool dns_chars_only(const char *name)
{
    for (const char *c = name; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static void check_dns(const char *text)
{
    if (kp_dns1123_subdomain_valid(text)) {
        size_t len = strlen(text);
        FUZZ_CHECK(len > 0 && len <= 253);
        FUZZ_CHECK(dns_chars_only(text));
        FUZZ_CHECK(text[0] != '.' && text[len - 1] != '.' && strstr(text, "..") == NULL);
    }
    if (kp_dns1123_wildcard_valid(text)) {
        FUZZ_CHECK(text[0] == '*' && text[1] == '.');
        FUZZ_CHECK(kp_dns1123_subdomain_valid(text + 2));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    check_ip(text);
    check_cidr(text);
    check_host_port(text);
    check_dns(text);
    free(text);
    return 0;
}
