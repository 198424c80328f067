/*
 * core/addr.h - IP addresses, CIDRs, host:port and DNS names, with the rules Kubernetes applies.
 */
#ifndef KP_CORE_ADDR_H
#define KP_CORE_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "kpki/error.h"

struct kp_ip {
    int family;              /* AF_INET or AF_INET6 */
    unsigned char bytes[16]; /* 4 bytes used for AF_INET */
};

/* Longest text form of an address plus NUL. */
#define KP_IP_TEXT_MAX 46

/* Parses a dotted IPv4 or an IPv6 address (no zone, no brackets). An IPv4-mapped IPv6 address
 * ("::ffff:1.2.3.4") is kept as IPv4, as Go does. Returns false if text is not an address. */
bool kp_ip_parse(const char *text, struct kp_ip *ip);

/* Canonical text ("10.96.0.1", "::1"). out must hold KP_IP_TEXT_MAX bytes. */
void kp_ip_format(const struct kp_ip *ip, char *out, size_t size);

bool kp_ip_equal(const struct kp_ip *a, const struct kp_ip *b);
/* Number of address bytes: 4 or 16. */
size_t kp_ip_len(const struct kp_ip *ip);

struct kp_cidr {
    struct kp_ip network; /* host bits cleared */
    int prefix_len;
};

/* Parses "10.96.0.0/12" or "fd00::/108". Host bits set in the address are an error, as
 * kube-apiserver rejects them. */
KP_MUST_CHECK enum kp_result kp_cidr_parse(const char *text, struct kp_cidr *cidr,
                                           struct kp_error *err);

/* The index-th address of the range (index 1 of 10.96.0.0/12 is 10.96.0.1). Fails if the range
 * has fewer than index + 1 addresses. */
KP_MUST_CHECK enum kp_result kp_cidr_address(const struct kp_cidr *cidr, unsigned long index,
                                             struct kp_ip *ip, struct kp_error *err);

/* RFC 1123 subdomain as Kubernetes validates it (IsDNS1123Subdomain): at most 253 characters,
 * labels of [a-z0-9]([-a-z0-9]*[a-z0-9])? separated by dots. */
bool kp_dns1123_subdomain_valid(const char *name);
/* "*." followed by a DNS-1123 subdomain (IsWildcardDNS1123Subdomain). */
bool kp_dns1123_wildcard_valid(const char *name);

/* Splits "host", "host:port", "[v6]:port" or a bare IPv6 address into host and port
 * (port 0 when absent). host gets the name or address without brackets. */
KP_MUST_CHECK enum kp_result kp_host_port_parse(const char *text, char *host, size_t host_size,
                                                int *port, struct kp_error *err);

#endif
