#include "core/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool kp_ip_parse(const char *text, struct kp_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (text == NULL || *text == '\0') {
        return false;
    }
    if (inet_pton(AF_INET, text, ip->bytes) == 1) {
        ip->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, ip->bytes) == 1) {
        ip->family = AF_INET6;
        if (memcmp(ip->bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
            memmove(ip->bytes, ip->bytes + 12, 4);
            memset(ip->bytes + 4, 0, 12);
            ip->family = AF_INET;
        }
        return true;
    }
    return false;
}

void kp_ip_format(const struct kp_ip *ip, char *out, size_t size)
{
    if (inet_ntop(ip->family, ip->bytes, out, (socklen_t)size) == NULL && size > 0) {
        out[0] = '\0';
    }
}

size_t kp_ip_len(const struct kp_ip *ip)
{
    return ip->family == AF_INET ? 4 : 16;
}

bool kp_ip_equal(const struct kp_ip *a, const struct kp_ip *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, kp_ip_len(a)) == 0;
}

enum kp_result kp_cidr_parse(const char *text, struct kp_cidr *cidr, struct kp_error *err)
{
    memset(cidr, 0, sizeof(*cidr));
    const char *slash = strchr(text, '/');
    char address[64];
    if (slash == NULL || (size_t)(slash - text) >= sizeof(address)) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid CIDR '%s': expected ADDRESS/PREFIX",
                            text);
    }
    memcpy(address, text, (size_t)(slash - text));
    address[slash - text] = '\0';
    if (!kp_ip_parse(address, &cidr->network)) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid CIDR '%s': '%s' is not an IP address",
                            text, address);
    }
    int max_prefix = cidr->network.family == AF_INET ? 32 : 128;
    const char *digits = slash + 1;
    char *end = NULL;
    errno = 0;
    long prefix = strtol(digits, &end, 10);
    if (*digits == '\0' || !isdigit((unsigned char)*digits) || *end != '\0' || errno != 0 ||
        prefix < 0 || prefix > max_prefix) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid CIDR '%s': prefix must be 0 to %d",
                            text, max_prefix);
    }
    cidr->prefix_len = (int)prefix;
    size_t len = kp_ip_len(&cidr->network);
    for (size_t bit = (size_t)prefix; bit < len * 8; bit++) {
        if (cidr->network.bytes[bit / 8] & (0x80 >> (bit % 8))) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "invalid CIDR '%s': host bits are set (did you mean the network "
                                "address?)",
                                text);
        }
    }
    return KP_OK;
}

enum kp_result kp_cidr_address(const struct kp_cidr *cidr, unsigned long index, struct kp_ip *ip,
                               struct kp_error *err)
{
    size_t len = kp_ip_len(&cidr->network);
    int host_bits = (int)(len * 8) - cidr->prefix_len;
    if (host_bits < 64 && (unsigned long long)index >= (1ULL << host_bits)) {
        char text[KP_IP_TEXT_MAX];
        kp_ip_format(&cidr->network, text, sizeof(text));
        return kp_error_set(err, KP_ERR_INVALID, "CIDR %s/%d is too small for address index %lu",
                            text, cidr->prefix_len, index);
    }
    *ip = cidr->network;
    unsigned long long carry = index;
    for (size_t i = len; i-- > 0 && carry != 0;) {
        unsigned long long sum = ip->bytes[i] + (carry & 0xff);
        ip->bytes[i] = (unsigned char)sum;
        carry = (carry >> 8) + (sum >> 8);
    }
    return KP_OK;
}

static bool label_valid(const char *label, size_t len)
{
    if (len == 0 || len > 63) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = label[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i < len - 1)) {
            return false;
        }
    }
    return true;
}

bool kp_dns1123_subdomain_valid(const char *name)
{
    size_t total = strlen(name);
    if (total == 0 || total > 253) {
        return false;
    }
    const char *label = name;
    for (;;) {
        const char *dot = strchr(label, '.');
        size_t len = dot != NULL ? (size_t)(dot - label) : strlen(label);
        if (!label_valid(label, len)) {
            return false;
        }
        if (dot == NULL) {
            return true;
        }
        label = dot + 1;
    }
}

bool kp_dns1123_wildcard_valid(const char *name)
{
    return strncmp(name, "*.", 2) == 0 && kp_dns1123_subdomain_valid(name + 2);
}

enum kp_result kp_host_port_parse(const char *text, char *host, size_t host_size, int *port,
                                  struct kp_error *err)
{
    *port = 0;
    const char *host_start = text;
    size_t host_len;
    const char *port_text = NULL;
    struct kp_ip ignored;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL) {
            return kp_error_set(err, KP_ERR_INVALID, "invalid address '%s': missing ']'", text);
        }
        host_start = text + 1;
        host_len = (size_t)(close - host_start);
        if (close[1] == ':') {
            port_text = close + 2;
        } else if (close[1] != '\0') {
            return kp_error_set(err, KP_ERR_INVALID, "invalid address '%s'", text);
        }
    } else if (kp_ip_parse(text, &ignored)) {
        host_len = strlen(text); /* a bare IPv6 address has colons but no port */
    } else {
        const char *colon = strrchr(text, ':');
        if (colon != NULL && strchr(text, ':') != colon) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "invalid address '%s': IPv6 with a port needs [brackets]", text);
        }
        host_len = colon != NULL ? (size_t)(colon - text) : strlen(text);
        port_text = colon != NULL ? colon + 1 : NULL;
    }
    if (host_len == 0 || host_len >= host_size) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid address '%s': bad host", text);
    }
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    if (port_text != NULL) {
        char *end = NULL;
        errno = 0;
        long value = strtol(port_text, &end, 10);
        if (*port_text == '\0' || !isdigit((unsigned char)*port_text) || *end != '\0' ||
            errno != 0 || value < 1 || value > 65535) {
            return kp_error_set(err, KP_ERR_INVALID,
                                "invalid address '%s': port must be 1 to 65535", text);
        }
        *port = (int)value;
    }
    return KP_OK;
}
