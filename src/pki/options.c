/*
 * The option table of `kpki init`: one row per setting. The CLI builds its flags and --help from
 * it and the config-file loader its keys, so a flag and a key can never disagree. Setters
 * validate and store one value; the caller adds where it came from (--flag or file:line).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"

static enum kp_result replace_string(char **slot, const char *value, struct kp_error *err)
{
    char *copy = strdup(value);
    if (copy == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    free(*slot);
    *slot = copy;
    return KP_OK;
}

static enum kp_result set_root(struct kp_pki_config *config, const char *value,
                               struct kp_error *err)
{
    if (value[0] == '\0') {
        return kp_error_set(err, KP_ERR_INVALID, "empty directory");
    }
    return replace_string(&config->root, value, err);
}

static enum kp_result set_node_name(struct kp_pki_config *config, const char *value,
                                    struct kp_error *err)
{
    if (!kp_dns1123_subdomain_valid(value)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid node name '%s': must be a lower-case RFC 1123 subdomain "
                            "(letters, digits, '-' and '.', at most 253 characters)",
                            value);
    }
    return replace_string(&config->node_name, value, err);
}

static enum kp_result set_advertise(struct kp_pki_config *config, const char *value,
                                    struct kp_error *err)
{
    struct kp_ip ip;
    if (!kp_ip_parse(value, &ip)) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid IP address '%s'", value);
    }
    static const unsigned char zero[16];
    if (memcmp(ip.bytes, zero, kp_ip_len(&ip)) == 0) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "'%s' is the unspecified address; give the address other hosts "
                            "reach this node at",
                            value);
    }
    config->advertise = ip;
    config->advertise_set = true;
    return KP_OK;
}

static enum kp_result set_bind_port(struct kp_pki_config *config, const char *value,
                                    struct kp_error *err)
{
    char *end = NULL;
    errno = 0;
    long port = strtol(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 || port < 1 ||
        port > 65535) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid port '%s': must be 1 to 65535", value);
    }
    config->bind_port = (int)port;
    return KP_OK;
}

static bool host_valid(const char *host)
{
    struct kp_ip ip;
    return kp_ip_parse(host, &ip) || kp_dns1123_subdomain_valid(host);
}

static enum kp_result set_endpoint(struct kp_pki_config *config, const char *value,
                                   struct kp_error *err)
{
    char host[256];
    int port = 0;
    enum kp_result rc = kp_host_port_parse(value, host, sizeof(host), &port, err);
    if (rc != KP_OK) {
        return rc;
    }
    if (!host_valid(host)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid control-plane endpoint '%s': '%s' is neither an IP address "
                            "nor a lower-case DNS name",
                            value, host);
    }
    return replace_string(&config->control_plane_endpoint, value, err);
}

static enum kp_result set_service_cidr(struct kp_pki_config *config, const char *value,
                                       struct kp_error *err)
{
    struct kp_strlist parts = {0};
    enum kp_result rc = kp_strlist_add_split(&parts, value, err);
    if (rc == KP_OK && (parts.count == 0 || parts.count > 2)) {
        rc = kp_error_set(err, KP_ERR_INVALID,
                          "invalid service CIDR '%s': give one CIDR, or two for dual-stack",
                          value);
    }
    for (size_t i = 0; rc == KP_OK && i < parts.count; i++) {
        struct kp_cidr cidr;
        rc = kp_cidr_parse(parts.items[i], &cidr, err);
        /* kube-apiserver refuses ranges larger than 2^20 addresses (IPv4 /12, IPv6 /108). */
        int max_host_bits = 20;
        int host_bits = (cidr.network.family == AF_INET ? 32 : 128) - cidr.prefix_len;
        if (rc == KP_OK && host_bits > max_host_bits) {
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "service CIDR '%s' is too large: kube-apiserver accepts at most "
                              "2^20 addresses (IPv4 /12, IPv6 /108)",
                              parts.items[i]);
        }
        if (rc == KP_OK && host_bits < 2) {
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "service CIDR '%s' is too small to hold the API server's address",
                              parts.items[i]);
        }
    }
    kp_strlist_wipe(&parts);
    return rc == KP_OK ? replace_string(&config->service_cidr, value, err) : rc;
}

static enum kp_result set_dns_domain(struct kp_pki_config *config, const char *value,
                                     struct kp_error *err)
{
    if (!kp_dns1123_subdomain_valid(value)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid DNS domain '%s': must be a lower-case RFC 1123 subdomain",
                            value);
    }
    return replace_string(&config->dns_domain, value, err);
}

static enum kp_result set_cluster_name(struct kp_pki_config *config, const char *value,
                                       struct kp_error *err)
{
    size_t len = strlen(value);
    bool ok = len > 0 && len <= 253 && kp_utf8_valid(value);
    for (size_t i = 0; ok && i < len; i++) {
        ok = (unsigned char)value[i] > 0x20 && value[i] != 0x7f;
    }
    if (!ok) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid cluster name '%s': 1 to 253 characters of UTF-8, no "
                            "spaces or control characters",
                            value);
    }
    return replace_string(&config->cluster_name, value, err);
}

static enum kp_result add_san(struct kp_strlist *list, const char *value, struct kp_error *err)
{
    struct kp_strlist parts = {0};
    enum kp_result rc = kp_strlist_add_split(&parts, value, err);
    for (size_t i = 0; rc == KP_OK && i < parts.count; i++) {
        struct kp_ip ip;
        const char *san = parts.items[i];
        if (!kp_ip_parse(san, &ip) && !kp_dns1123_subdomain_valid(san) &&
            !kp_dns1123_wildcard_valid(san)) {
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "invalid SAN '%s': not an IP address, a lower-case DNS name or a "
                              "wildcard like *.example.com",
                              san);
        } else {
            rc = kp_strlist_add(list, san, err);
        }
    }
    kp_strlist_wipe(&parts);
    return rc;
}

static enum kp_result set_apiserver_sans(struct kp_pki_config *config, const char *value,
                                         struct kp_error *err)
{
    return add_san(&config->apiserver_extra_sans, value, err);
}

static void clear_apiserver_sans(struct kp_pki_config *config)
{
    kp_strlist_wipe(&config->apiserver_extra_sans);
}

static enum kp_result set_etcd_server_sans(struct kp_pki_config *config, const char *value,
                                           struct kp_error *err)
{
    return add_san(&config->etcd_server_extra_sans, value, err);
}

static void clear_etcd_server_sans(struct kp_pki_config *config)
{
    kp_strlist_wipe(&config->etcd_server_extra_sans);
}

static enum kp_result set_etcd_peer_sans(struct kp_pki_config *config, const char *value,
                                         struct kp_error *err)
{
    return add_san(&config->etcd_peer_extra_sans, value, err);
}

static void clear_etcd_peer_sans(struct kp_pki_config *config)
{
    kp_strlist_wipe(&config->etcd_peer_extra_sans);
}

static enum kp_result set_key_type(struct kp_pki_config *config, const char *value,
                                   struct kp_error *err)
{
    if (!kp_key_type_parse(value, &config->key_type)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "unknown key type '%s' (valid: rsa-2048, rsa-3072, rsa-4096, "
                            "ecdsa-p256, ecdsa-p384)",
                            value);
    }
    return KP_OK;
}

/* Parses into a temporary so a bad value leaves the setting as it was. */
static enum kp_result set_duration(int64_t *slot, const char *value, struct kp_error *err)
{
    int64_t seconds = 0;
    enum kp_result rc = kp_duration_parse(value, &seconds, err);
    if (rc == KP_OK) {
        *slot = seconds;
    }
    return rc;
}

static enum kp_result set_cert_validity(struct kp_pki_config *config, const char *value,
                                        struct kp_error *err)
{
    return set_duration(&config->cert_validity, value, err);
}

static enum kp_result set_ca_validity(struct kp_pki_config *config, const char *value,
                                      struct kp_error *err)
{
    return set_duration(&config->ca_validity, value, err);
}

static enum kp_result set_kubelet_serving(struct kp_pki_config *config, const char *value,
                                          struct kp_error *err)
{
    if (strcmp(value, "ca") == 0) {
        config->kubelet_serving = KP_KUBELET_SERVING_CA;
    } else if (strcmp(value, "self-signed") == 0) {
        config->kubelet_serving = KP_KUBELET_SERVING_SELF_SIGNED;
    } else {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid kubelet serving mode '%s' (valid: ca, self-signed)", value);
    }
    return KP_OK;
}

static enum kp_result set_join_from(struct kp_pki_config *config, const char *value,
                                    struct kp_error *err)
{
    if (value[0] == '\0') {
        return kp_error_set(err, KP_ERR_INVALID, "empty directory");
    }
    return replace_string(&config->join_from, value, err);
}

static enum kp_result set_key_threads(struct kp_pki_config *config, const char *value,
                                      struct kp_error *err)
{
    char *end = NULL;
    errno = 0;
    long threads = strtol(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 || threads > 256) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "invalid thread count '%s': 0 (one per CPU) to 256", value);
    }
    config->key_threads = (int)threads;
    return KP_OK;
}

static enum kp_result set_csr_only(struct kp_pki_config *config, const char *value,
                                   struct kp_error *err)
{
    if (strcmp(value, "true") == 0) {
        config->csr_only = true;
    } else if (strcmp(value, "false") == 0) {
        config->csr_only = false;
    } else {
        return kp_error_set(err, KP_ERR_INVALID, "expected true or false, not '%s'", value);
    }
    return KP_OK;
}

static const struct kp_pki_option options[] = {
    {"root", "DIR", "/", "lay the tree out under DIR (etc/kubernetes/..., var/lib/kubelet/...)",
     false, set_root, NULL},
    {"node-name", "NAME", "host name", "this node's name (etcd CNs, SANs, system:node:NAME)",
     false, set_node_name, NULL},
    {"apiserver-advertise-address", "IP", "default-route IPv4",
     "address the API server and etcd advertise (SANs, local server URL)", false, set_advertise,
     NULL},
    {"apiserver-bind-port", "PORT", "6443", "API server port (server URLs)", false,
     set_bind_port, NULL},
    {"control-plane-endpoint", "HOST[:PORT]", "none",
     "shared endpoint of all API servers (admin.conf, kubelet.conf, an apiserver SAN)", false,
     set_endpoint, NULL},
    {"service-cidr", "CIDR[,CIDR]", "10.96.0.0/12",
     "service range; its first CIDR's address 1 is the API VIP in the apiserver SANs", false,
     set_service_cidr, NULL},
    {"service-dns-domain", "DOMAIN", "cluster.local",
     "cluster DNS domain (kubernetes.default.svc.DOMAIN)", false, set_dns_domain, NULL},
    {"apiserver-cert-extra-sans", "LIST", "none",
     "extra IPs and DNS names for apiserver.crt (comma-separated or repeated)", true,
     set_apiserver_sans, clear_apiserver_sans},
    {"etcd-server-cert-extra-sans", "LIST", "none", "extra SANs for etcd/server.crt", true,
     set_etcd_server_sans, clear_etcd_server_sans},
    {"etcd-peer-cert-extra-sans", "LIST", "none", "extra SANs for etcd/peer.crt", true,
     set_etcd_peer_sans, clear_etcd_peer_sans},
    {"cluster-name", "NAME", "kubernetes", "cluster name in every kubeconfig", false,
     set_cluster_name, NULL},
    {"key-type", "TYPE", "rsa-2048", "rsa-2048, rsa-3072, rsa-4096, ecdsa-p256 or ecdsa-p384",
     false, set_key_type, NULL},
    {"cert-validity", "DURATION", "8760h", "validity of every non-CA certificate (e.g. 8760h, "
     "90d)", false, set_cert_validity, NULL},
    {"ca-validity", "DURATION", "87600h", "validity of new CA certificates", false,
     set_ca_validity, NULL},
    {"kubelet-serving", "MODE", "ca",
     "kubelet serving certificate: 'ca' (signed by the cluster CA) or 'self-signed'", false,
     set_kubelet_serving, NULL},
    {"join-from", "DIR", "none",
     "join another control-plane node: take the CAs and sa keys from the tree under DIR", false,
     set_join_from, NULL},
    {"key-threads", "N", "0", "threads generating keys (0: one per CPU)", false,
     set_key_threads, NULL},
    {"csr-only", NULL, NULL,
     "for a CA kept offline: write keys, CSRs and partial kubeconfigs, sign nothing; rerun "
     "without it once the signed certificates are in place",
     false, set_csr_only, NULL},
    {NULL, NULL, NULL, NULL, false, NULL, NULL},
};

const struct kp_pki_option *kp_pki_options(void)
{
    return options;
}

const struct kp_pki_option *kp_pki_option_find(const char *name)
{
    for (const struct kp_pki_option *option = options; option->name != NULL; option++) {
        if (strcmp(option->name, name) == 0) {
            return option;
        }
    }
    return NULL;
}
