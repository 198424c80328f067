/*
 * Resolving a row of the certificate table against a config: the concrete subject, SANs,
 * usages, validity and paths. SAN rules follow kubeadm's GetAPIServerAltNames /
 * getEtcdAltNames / appendSANsToAltNames, then RemoveDuplicateAltNames: DNS names sorted and
 * unique, IP addresses unique in first-seen order.
 */
#include <stdio.h>
#include <string.h>

#include "pki/pki.h"

void kp_cert_request_wipe(struct kp_cert_request *request)
{
    kp_strlist_wipe(&request->organizations);
    kp_strlist_wipe(&request->dns_names);
    request->ip_count = 0;
}

static enum kp_result add_ip(struct kp_cert_request *request, const struct kp_ip *ip,
                             struct kp_error *err)
{
    for (size_t i = 0; i < request->ip_count; i++) {
        if (kp_ip_equal(&request->ips[i], ip)) {
            return KP_OK;
        }
    }
    if (request->ip_count == KP_MAX_IPS) {
        return kp_error_set(err, KP_ERR_INVALID, "too many IP SANs (at most %d)", KP_MAX_IPS);
    }
    request->ips[request->ip_count++] = *ip;
    return KP_OK;
}

static enum kp_result add_ip_text(struct kp_cert_request *request, const char *text,
                                  struct kp_error *err)
{
    struct kp_ip ip;
    if (!kp_ip_parse(text, &ip)) {
        return kp_error_set(err, KP_ERR_INTERNAL, "'%s' is not an IP address", text);
    }
    return add_ip(request, &ip, err);
}

/* An extra SAN is an IP if it parses as one, else a DNS name (validated by the option
 * setters already, so anything else here is a bug). */
static enum kp_result add_extra_sans(struct kp_cert_request *request,
                                     const struct kp_strlist *extra, struct kp_error *err)
{
    for (size_t i = 0; i < extra->count; i++) {
        struct kp_ip ip;
        enum kp_result rc = kp_ip_parse(extra->items[i], &ip)
                                ? add_ip(request, &ip, err)
                                : kp_strlist_add(&request->dns_names, extra->items[i], err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

static enum kp_result add_apiserver_sans(struct kp_cert_request *request,
                                         const struct kp_pki_config *config,
                                         struct kp_error *err)
{
    char service_fqdn[300];
    snprintf(service_fqdn, sizeof(service_fqdn), "kubernetes.default.svc.%s", config->dns_domain);
    const char *names[] = {config->node_name, "kubernetes", "kubernetes.default",
                           "kubernetes.default.svc", service_fqdn};
    enum kp_result rc = KP_OK;
    for (size_t i = 0; rc == KP_OK && i < sizeof(names) / sizeof(names[0]); i++) {
        rc = kp_strlist_add(&request->dns_names, names[i], err);
    }
    if (rc == KP_OK) {
        rc = add_ip(request, &config->api_vip, err);
    }
    if (rc == KP_OK) {
        rc = add_ip(request, &config->advertise, err);
    }
    if (rc == KP_OK && config->endpoint_host[0] != '\0') {
        struct kp_ip ip;
        rc = kp_ip_parse(config->endpoint_host, &ip)
                 ? add_ip(request, &ip, err)
                 : kp_strlist_add(&request->dns_names, config->endpoint_host, err);
    }
    if (rc == KP_OK) {
        rc = add_extra_sans(request, &config->apiserver_extra_sans, err);
    }
    return rc;
}

static enum kp_result add_etcd_sans(struct kp_cert_request *request,
                                    const struct kp_pki_config *config,
                                    const struct kp_strlist *extra, struct kp_error *err)
{
    enum kp_result rc = kp_strlist_add(&request->dns_names, config->node_name, err);
    if (rc == KP_OK) {
        rc = kp_strlist_add(&request->dns_names, "localhost", err);
    }
    if (rc == KP_OK) {
        rc = add_ip(request, &config->advertise, err);
    }
    if (rc == KP_OK) {
        rc = add_ip_text(request, "127.0.0.1", err);
    }
    if (rc == KP_OK) {
        rc = add_ip_text(request, "::1", err);
    }
    if (rc == KP_OK) {
        rc = add_extra_sans(request, extra, err);
    }
    return rc;
}

static enum kp_result add_sans(struct kp_cert_request *request,
                               const struct kp_pki_config *config, struct kp_error *err)
{
    enum kp_result rc = KP_OK;
    switch (request->spec->sans) {
    case KP_SAN_NONE:
        break;
    case KP_SAN_CA_NAME:
        rc = kp_strlist_add(&request->dns_names, request->common_name, err);
        break;
    case KP_SAN_APISERVER:
        rc = add_apiserver_sans(request, config, err);
        break;
    case KP_SAN_ETCD_SERVER:
        rc = add_etcd_sans(request, config, &config->etcd_server_extra_sans, err);
        break;
    case KP_SAN_ETCD_PEER:
        rc = add_etcd_sans(request, config, &config->etcd_peer_extra_sans, err);
        break;
    case KP_SAN_KUBELET_SERVING:
        rc = kp_strlist_add(&request->dns_names, config->node_name, err);
        if (rc == KP_OK) {
            rc = add_ip(request, &config->advertise, err);
        }
        break;
    }
    kp_strlist_sort_unique(&request->dns_names);
    return rc;
}

static unsigned key_usage_for(enum kp_ku_rule rule, enum kp_key_type key_type)
{
    switch (rule) {
    case KP_KU_RULE_CA:
        /* kubeadm: DigitalSignature | KeyEncipherment | CertSign. kpki adds CRLSign so the CA
         * can sign the CRLs `kpki revoke` publishes (OpenSSL and Go refuse a CRL whose issuer's
         * KeyUsage lacks it, RFC 5280 §4.2.1.3). */
        return KP_KU_DIGITAL_SIGNATURE | KP_KU_KEY_ENCIPHERMENT | KP_KU_CERT_SIGN |
               KP_KU_CRL_SIGN;
    case KP_KU_RULE_KUBEADM:
        return KP_KU_DIGITAL_SIGNATURE | KP_KU_KEY_ENCIPHERMENT;
    case KP_KU_RULE_KUBELET:
        /* pkg/kubelet/certificate: key encipherment only makes sense for RSA keys. */
        return KP_KU_DIGITAL_SIGNATURE |
               (kp_key_type_is_rsa(key_type) ? KP_KU_KEY_ENCIPHERMENT : 0);
    }
    return 0;
}

static enum kp_result root_path(char *out, size_t size, const char *root, const char *rel,
                                const char *suffix, struct kp_error *err)
{
    char joined[KP_PATH_MAX];
    int written = snprintf(joined, sizeof(joined), "%s%s", rel, suffix);
    if (written < 0 || (size_t)written >= sizeof(joined)) {
        return kp_error_set(err, KP_ERR_INVALID, "path too long: '%s%s'", rel, suffix);
    }
    return kp_path_join(out, size, root, joined, err);
}

static enum kp_result resolve_paths(struct kp_cert_request *request, const char *root,
                                    struct kp_error *err)
{
    const struct kp_cert_spec *spec = request->spec;
    enum kp_result rc = KP_OK;
    const char *main_suffix = "";
    switch (spec->kind) {
    case KP_ART_CA:
    case KP_ART_CERT:
    case KP_ART_KUBELET_SERVING:
        rc = root_path(request->cert_path, sizeof(request->cert_path), root, spec->file, ".crt",
                       err);
        if (rc == KP_OK) {
            rc = root_path(request->key_path, sizeof(request->key_path), root, spec->file,
                           ".key", err);
        }
        main_suffix = ".crt";
        break;
    case KP_ART_SA:
        rc = root_path(request->key_path, sizeof(request->key_path), root, spec->file, ".key",
                       err);
        if (rc == KP_OK) {
            rc = root_path(request->extra_path, sizeof(request->extra_path), root, spec->file,
                           ".pub", err);
        }
        main_suffix = ".key";
        break;
    case KP_ART_KUBECONFIG:
        rc = root_path(request->key_path, sizeof(request->key_path), root, spec->file, "", err);
        break;
    case KP_ART_KUBELET_CLIENT:
        /* The symlink; it names a file holding both the certificate and the key. */
        rc = root_path(request->cert_path, sizeof(request->cert_path), root, spec->file, "", err);
        if (rc == KP_OK) {
            memcpy(request->key_path, request->cert_path, sizeof(request->key_path));
            rc = root_path(request->extra_path, sizeof(request->extra_path), root,
                           KP_KUBELET_PKI_DIR, "", err);
        }
        break;
    }
    snprintf(request->rel_path, sizeof(request->rel_path), "%s%s", spec->file, main_suffix);
    return rc;
}

/* Copies pattern into out with its one "%s" replaced by node. */
static bool substitute_node(char *out, size_t size, const char *pattern, const char *node)
{
    const char *marker = strstr(pattern, "%s");
    int written = marker == NULL
                      ? snprintf(out, size, "%s", pattern)
                      : snprintf(out, size, "%.*s%s%s", (int)(marker - pattern), pattern, node,
                                 marker + 2);
    return written >= 0 && (size_t)written < size;
}

enum kp_result kp_cert_resolve(const struct kp_cert_spec *spec, const struct kp_pki_config *config,
                               enum kp_key_type key_type, struct kp_cert_request *request,
                               struct kp_error *err)
{
    memset(request, 0, sizeof(*request));
    request->spec = spec;
    if (!config->finalized) {
        return kp_error_set(err, KP_ERR_INTERNAL, "config not finalized");
    }
    if (spec->common_name != NULL && !substitute_node(request->common_name,
                                                      sizeof(request->common_name),
                                                      spec->common_name, config->node_name)) {
        return kp_error_set(err, KP_ERR_INVALID, "common name for '%s' too long", spec->name);
    }
    enum kp_result rc = KP_OK;
    if (spec->organization != NULL) {
        rc = kp_strlist_add(&request->organizations, spec->organization, err);
    }
    if (rc == KP_OK) {
        rc = add_sans(request, config, err);
    }
    if (rc == KP_OK) {
        rc = resolve_paths(request, config->root, err);
    }
    request->is_ca = spec->kind == KP_ART_CA;
    request->key_usage = key_usage_for(spec->key_usage, key_type);
    request->ext_key_usage = spec->ext_key_usage;
    request->validity = request->is_ca ? config->ca_validity : config->cert_validity;
    if (spec->server == KP_SERVER_ENDPOINT) {
        snprintf(request->server, sizeof(request->server), "%s", config->endpoint_url);
    } else if (spec->server == KP_SERVER_LOCAL) {
        snprintf(request->server, sizeof(request->server), "%s", config->local_url);
    }
    return rc;
}

void kp_cert_request_template(const struct kp_cert_request *request, int64_t not_before,
                              int64_t not_after, struct kp_cert_template *tmpl)
{
    memset(tmpl, 0, sizeof(*tmpl));
    tmpl->common_name = request->common_name;
    tmpl->organizations = (const char *const *)request->organizations.items;
    tmpl->organization_count = request->organizations.count;
    tmpl->dns_names = (const char *const *)request->dns_names.items;
    tmpl->dns_count = request->dns_names.count;
    tmpl->ips = request->ips;
    tmpl->ip_count = request->ip_count;
    tmpl->is_ca = request->is_ca;
    tmpl->key_usage = request->key_usage;
    tmpl->ext_key_usage = request->ext_key_usage;
    tmpl->not_before = not_before;
    tmpl->not_after = not_after;
}
