/*
 * The init configuration: kubeadm's defaults, the YAML config file (keys = option names), and
 * finalize, which validates the combination and derives what the host decides.
 */
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki/pki.h"

enum kp_result kp_pki_config_init(struct kp_pki_config *config, struct kp_error *err)
{
    memset(config, 0, sizeof(*config));
    config->root = strdup("/");
    config->service_cidr = strdup("10.96.0.0/12");
    config->dns_domain = strdup("cluster.local");
    config->cluster_name = strdup("kubernetes");
    config->bind_port = 6443;
    config->key_type = KP_KEY_RSA_2048;
    config->cert_validity = 8760LL * 3600; /* kubeadm CertificateValidityPeriod */
    config->ca_validity = 87600LL * 3600;  /* kubeadm CACertificateValidityPeriod */
    config->kubelet_serving = KP_KUBELET_SERVING_CA;
    if (config->root == NULL || config->service_cidr == NULL || config->dns_domain == NULL ||
        config->cluster_name == NULL) {
        kp_pki_config_wipe(config);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    return KP_OK;
}

void kp_pki_config_wipe(struct kp_pki_config *config)
{
    free(config->root);
    free(config->node_name);
    free(config->control_plane_endpoint);
    free(config->service_cidr);
    free(config->dns_domain);
    free(config->cluster_name);
    free(config->join_from);
    kp_strlist_wipe(&config->apiserver_extra_sans);
    kp_strlist_wipe(&config->etcd_server_extra_sans);
    kp_strlist_wipe(&config->etcd_peer_extra_sans);
    memset(config, 0, sizeof(*config));
}

/* kubeadm: nodeutil.GetHostname("") = os.Hostname(), trimmed, lower-cased. */
static enum kp_result default_node_name(struct kp_pki_config *config, struct kp_error *err)
{
    char host[256] = {0};
    if (gethostname(host, sizeof(host) - 1) != 0) {
        return kp_error_errno(err, errno, "cannot read the host name; pass --node-name");
    }
    for (char *c = host; *c != '\0'; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    if (!kp_dns1123_subdomain_valid(host)) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "the host name '%s' is not a valid node name; pass --node-name",
                            host);
    }
    config->node_name = strdup(host);
    return config->node_name != NULL ? KP_OK : kp_error_set(err, KP_ERR_IO, "out of memory");
}

/* The interface holding the IPv4 default route, from /proc/net/route ("" if none). */
static void default_route_interface(char *name, size_t size)
{
    name[0] = '\0';
    FILE *routes = fopen("/proc/net/route", "re");
    if (routes == NULL) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof(line), routes) != NULL) {
        char iface[IF_NAMESIZE + 1];
        unsigned long destination = 1;
        unsigned flags = 0;
        if (sscanf(line, "%16s %lx %*x %x", iface, &destination, &flags) == 3 &&
            destination == 0 && (flags & 0x1) /* RTF_UP */) {
            snprintf(name, size, "%s", iface);
            break;
        }
    }
    fclose(routes);
}

/* kubeadm ChooseBindAddress: the default route's interface address; kpki falls back to
 * 127.0.0.1 (with a warning) so a laptop without a network still gets a working local tree. */
static void default_advertise_address(struct kp_pki_config *config)
{
    char iface[IF_NAMESIZE + 1];
    default_route_interface(iface, sizeof(iface));
    struct ifaddrs *addresses = NULL;
    if (iface[0] != '\0' && getifaddrs(&addresses) == 0) {
        for (struct ifaddrs *each = addresses; each != NULL; each = each->ifa_next) {
            if (each->ifa_addr != NULL && each->ifa_addr->sa_family == AF_INET &&
                strcmp(each->ifa_name, iface) == 0) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)each->ifa_addr;
                config->advertise.family = AF_INET;
                memcpy(config->advertise.bytes, &in->sin_addr, 4);
                config->advertise_set = true;
                break;
            }
        }
        freeifaddrs(addresses);
    }
    if (!config->advertise_set) {
        kp_log_warn("no default route found; advertising 127.0.0.1 (pass "
                    "--apiserver-advertise-address to choose)");
        (void)kp_ip_parse("127.0.0.1", &config->advertise);
        config->advertise_set = true;
    }
}

static void format_url(char *out, size_t size, const char *host, int port)
{
    struct kp_ip ip;
    char canonical[KP_IP_TEXT_MAX];
    if (kp_ip_parse(host, &ip)) {
        /* The canonical form: "::ffff:10.0.0.9" is the IPv4 address 10.0.0.9. */
        kp_ip_format(&ip, canonical, sizeof(canonical));
        host = canonical;
    }
    bool bracket = kp_ip_parse(host, &ip) && ip.family == AF_INET6;
    snprintf(out, size, "https://%s%s%s:%d", bracket ? "[" : "", host, bracket ? "]" : "", port);
}

enum kp_result kp_pki_config_finalize(struct kp_pki_config *config, struct kp_error *err)
{
    enum kp_result rc = KP_OK;
    if (config->node_name == NULL) {
        rc = default_node_name(config, err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    if (!config->advertise_set) {
        default_advertise_address(config);
    }
    struct stat st;
    if (stat(config->root, &st) == 0 && !S_ISDIR(st.st_mode)) {
        return kp_error_set(err, KP_ERR_INVALID, "--root '%s' exists and is not a directory",
                            config->root);
    }
    /* API VIP: index 1 of the first service CIDR (kubeadm GetAPIServerVirtualIP). */
    struct kp_strlist cidrs = {0};
    rc = kp_strlist_add_split(&cidrs, config->service_cidr, err);
    struct kp_cidr first;
    if (rc == KP_OK && cidrs.count > 0) {
        rc = kp_cidr_parse(cidrs.items[0], &first, err);
        if (rc == KP_OK) {
            rc = kp_cidr_address(&first, 1, &config->api_vip, err);
        }
    }
    kp_strlist_wipe(&cidrs);
    if (rc != KP_OK) {
        return kp_error_prefix(err, "--service-cidr");
    }
    char advertise[KP_IP_TEXT_MAX];
    kp_ip_format(&config->advertise, advertise, sizeof(advertise));
    format_url(config->local_url, sizeof(config->local_url), advertise, config->bind_port);
    config->endpoint_host[0] = '\0';
    config->endpoint_port = 0;
    if (config->control_plane_endpoint != NULL) {
        rc = kp_host_port_parse(config->control_plane_endpoint, config->endpoint_host,
                                sizeof(config->endpoint_host), &config->endpoint_port, err);
        if (rc != KP_OK) {
            return kp_error_prefix(err, "--control-plane-endpoint");
        }
        if (config->endpoint_port == 0) {
            config->endpoint_port = config->bind_port;
        }
        format_url(config->endpoint_url, sizeof(config->endpoint_url), config->endpoint_host,
                   config->endpoint_port);
    } else {
        snprintf(config->endpoint_url, sizeof(config->endpoint_url), "%s", config->local_url);
    }
    config->finalized = true;
    return KP_OK;
}

/* ---- the config file ---- */

static enum kp_result apply_value(struct kp_pki_config *config, const struct kp_pki_option *option,
                                  struct kp_yaml_doc *doc, int node, const char *source,
                                  struct kp_error *err)
{
    int line = kp_yaml_line(doc, node);
    yaml_node_t *value = kp_yaml_node(doc, node);
    if (value != NULL && value->type == YAML_SEQUENCE_NODE) {
        if (!option->is_list) {
            return kp_error_set(err, KP_ERR_INVALID, "%s: line %d: %s: expected one value, got a "
                                "list", source, line, option->name);
        }
        option->clear(config);
        for (size_t i = 0; i < kp_yaml_seq_len(doc, node); i++) {
            int item = kp_yaml_seq_item(doc, node, i);
            const char *text = kp_yaml_scalar(doc, item);
            if (text == NULL) {
                return kp_error_set(err, KP_ERR_INVALID, "%s: line %d: %s: list items must be "
                                    "strings", source, kp_yaml_line(doc, item), option->name);
            }
            enum kp_result rc = option->set(config, text, err);
            if (rc != KP_OK) {
                return kp_error_prefix(err, "%s: line %d: %s", source, kp_yaml_line(doc, item),
                                       option->name);
            }
        }
        return KP_OK;
    }
    const char *text = kp_yaml_scalar(doc, node);
    if (text == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: line %d: %s: expected a string%s", source,
                            line, option->name, option->is_list ? " or a list" : "");
    }
    if (kp_yaml_is_null(doc, node)) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: line %d: %s: empty value", source, line,
                            option->name);
    }
    if (option->is_list) {
        option->clear(config);
    }
    enum kp_result rc = option->set(config, text, err);
    return rc == KP_OK ? KP_OK : kp_error_prefix(err, "%s: line %d: %s", source, line,
                                                 option->name);
}

enum kp_result kp_pki_config_load_yaml(struct kp_pki_config *config, const char *text, size_t len,
                                       const char *source, struct kp_error *err)
{
    struct kp_yaml_doc doc;
    enum kp_result rc = kp_yaml_load(&doc, text, len, source, err);
    if (rc != KP_OK) {
        return rc;
    }
    int root = kp_yaml_root(&doc);
    yaml_node_t *mapping = kp_yaml_node(&doc, root);
    if (mapping == NULL || kp_yaml_is_null(&doc, root)) {
        kp_yaml_free(&doc);
        return KP_OK; /* an empty file (or a bare "---") changes nothing */
    }
    if (mapping->type != YAML_MAPPING_NODE) {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: line %d: expected a mapping of option names "
                          "to values", source, kp_yaml_line(&doc, root));
        kp_yaml_free(&doc);
        return rc;
    }
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         rc == KP_OK && pair < mapping->data.mapping.pairs.top; pair++) {
        const char *key = kp_yaml_scalar(&doc, pair->key);
        int line = kp_yaml_line(&doc, pair->key);
        const struct kp_pki_option *option = key != NULL ? kp_pki_option_find(key) : NULL;
        if (option == NULL) {
            rc = kp_error_set(err, KP_ERR_INVALID, "%s: line %d: unknown option '%s' (see kpki "
                              "init --help)", source, line, key != NULL ? key : "?");
            break;
        }
        /* (A key set twice was refused by kp_yaml_load.) */
        rc = apply_value(config, option, &doc, pair->value, source, err);
    }
    kp_yaml_free(&doc);
    return rc;
}

enum kp_result kp_pki_config_load_file(struct kp_pki_config *config, const char *path,
                                       struct kp_error *err)
{
    char *text = NULL;
    size_t len = 0;
    enum kp_result rc = kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, err);
    if (rc != KP_OK) {
        return kp_error_prefix(err, "--config");
    }
    rc = kp_pki_config_load_yaml(config, text, len, path, err);
    free(text);
    return rc;
}
