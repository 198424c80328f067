/*
 * kpki check: the audit of a tree.
 *
 * Implementation notes
 *
 * The certificate table says what every file must be; check compares what is on disk with it
 * and records findings per item, never stopping at the first. Order: the three CAs first (and
 * their CRLs, pki/<ca>.crl), because every other item is judged against them; then every row
 * of the table; then the CRLs themselves. A finding is a PROBLEM when something will fail or is
 * unsafe (a wrong CA, a missing SAN, a key anyone can read, an expired certificate, a revoked one
 * still in place), a NOTE when it is merely worth knowing (an external CA, a CA that cannot sign
 * verifiable CRLs, a CN that differs from kubeadm's). Nothing here writes to the tree.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki/pki.h"

struct ca_state {
    const struct kp_cert_spec *spec;
    X509 *cert;      /* NULL when missing or unreadable */
    bool external;   /* cert present, key absent */
    X509_CRL *crl;   /* its CRL when present and signed by it */
};

struct checker {
    const struct kp_pki_config *config;
    int64_t now;
    int64_t warn_within;
    struct kp_check_report *report;
    struct ca_state cas[3];
    size_t ca_count;
    X509 *apiserver; /* for the kubeconfig server-URL check */
};

void kp_check_report_wipe(struct kp_check_report *report)
{
    free(report->items);
    memset(report, 0, sizeof(*report));
}

bool kp_check_item_has_problem(const struct kp_check_item *item)
{
    for (size_t i = 0; i < item->finding_count; i++) {
        if (item->findings[i].severity == KP_CHECK_PROBLEM) {
            return true;
        }
    }
    return false;
}

static void find(struct kp_check_item *item, enum kp_check_severity severity, const char *code,
                 const char *fmt, ...) KP_PRINTF(4, 5);

static void find(struct kp_check_item *item, enum kp_check_severity severity, const char *code,
                 const char *fmt, ...)
{
    if (item->finding_count == KP_CHECK_MAX_FINDINGS) {
        return;
    }
    struct kp_check_finding *finding = &item->findings[item->finding_count++];
    finding->severity = severity;
    snprintf(finding->code, sizeof(finding->code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(finding->message, sizeof(finding->message), fmt, ap);
    va_end(ap);
}

static struct kp_check_item *new_item(struct checker *checker, const char *name,
                                      const char *path, enum kp_check_kind kind)
{
    struct kp_check_report *report = checker->report;
    struct kp_check_item *grown = realloc(report->items, (report->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        return NULL;
    }
    report->items = grown;
    struct kp_check_item *item = &report->items[report->count++];
    memset(item, 0, sizeof(*item));
    snprintf(item->name, sizeof(item->name), "%s", name);
    snprintf(item->path, sizeof(item->path), "%s", path);
    item->kind = kind;
    return item;
}

static struct ca_state *ca_named(struct checker *checker, const char *name)
{
    for (size_t i = 0; name != NULL && i < checker->ca_count; i++) {
        if (strcmp(checker->cas[i].spec->name, name) == 0) {
            return &checker->cas[i];
        }
    }
    return NULL;
}

/* ---- single facts ---- */

/* Keys: no group or other bits. Anything: not writable by others. */
static void check_mode(struct kp_check_item *item, const char *path, bool secret)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return;
    }
    mode_t mode = st.st_mode & 07777;
    if (secret && (mode & 077) != 0) {
        find(item, KP_CHECK_PROBLEM, "key-mode",
             "'%s' has mode %04o; private keys must be 0600 (readable by the owner only)", path,
             (unsigned)mode);
    } else if ((mode & 002) != 0) {
        find(item, KP_CHECK_PROBLEM, "file-mode", "'%s' has mode %04o: anyone may change it",
             path, (unsigned)mode);
    }
}

static void check_key_strength(struct kp_check_item *item, const char *path, EVP_PKEY *key)
{
    if (key == NULL) {
        return;
    }
    if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) < 2048) {
        find(item, KP_CHECK_PROBLEM, "weak-key", "'%s' holds an RSA key of %d bits (at least "
             "2048 are needed)", path, EVP_PKEY_get_bits(key));
    } else if (kp_key_type_of(key) == KP_KEY_UNKNOWN) {
        char description[64];
        kp_key_describe(key, description, sizeof(description));
        find(item, KP_CHECK_NOTE, "unusual-key", "'%s' holds a %s key, which kubeadm never "
             "makes", path, description);
    }
}

static void check_validity(struct checker *checker, struct kp_check_item *item,
                           const char *path, X509 *cert)
{
    char when[32];
    int64_t not_before = kp_cert_not_before(cert);
    item->not_after = kp_cert_not_after(cert);
    kp_cert_serial_hex(cert, item->serial, sizeof(item->serial));
    if (item->not_after <= checker->now) {
        kp_time_format_rfc3339(item->not_after, when, sizeof(when));
        find(item, KP_CHECK_PROBLEM, "expired", "'%s' expired at %s", path, when);
    } else if (not_before > checker->now) {
        kp_time_format_rfc3339(not_before, when, sizeof(when));
        find(item, KP_CHECK_PROBLEM, "not-yet-valid", "'%s' is not valid before %s", path, when);
    } else if (item->not_after - checker->now <= checker->warn_within) {
        item->expiring = true;
    }
}

static bool verifies_against(X509 *cert, X509 *anchor)
{
    bool ok = false;
    char reason[128];
    return anchor != NULL &&
           kp_cert_verify_chain(cert, anchor, NULL, KP_VERIFY_ANY_TIME, &ok, reason,
                                sizeof(reason), NULL) == KP_OK &&
           ok;
}

/* Signed by its own CA, and by no other of the tree's CAs. */
static void check_issuer(struct checker *checker, struct kp_check_item *item, const char *path,
                         X509 *cert, X509 *own_anchor, const char *own_name)
{
    if (own_anchor == NULL) {
        find(item, KP_CHECK_PROBLEM, "no-ca", "'%s' cannot be checked: its CA '%s' is missing",
             path, own_name);
    } else if (!verifies_against(cert, own_anchor)) {
        char issuer[256];
        kp_name_to_string(X509_get_issuer_name(cert), issuer, sizeof(issuer));
        find(item, KP_CHECK_PROBLEM, "wrong-ca", "'%s' is not signed by the %s CA (its issuer: "
             "%s)", path, own_name, issuer);
    }
    for (size_t i = 0; i < checker->ca_count; i++) {
        X509 *other = checker->cas[i].cert;
        if (other != NULL && other != own_anchor && X509_cmp(other, own_anchor) != 0 &&
            verifies_against(cert, other)) {
            find(item, KP_CHECK_PROBLEM, "ambiguous-ca", "'%s' also verifies against the %s CA: "
                 "two CAs share a key", path, checker->cas[i].spec->name);
        }
    }
}

static void check_sans(struct kp_check_item *item, const char *path, X509 *cert,
                       const struct kp_cert_request *request)
{
    for (size_t i = 0; i < request->dns_names.count; i++) {
        if (!kp_cert_covers_dns(cert, request->dns_names.items[i])) {
            find(item, KP_CHECK_PROBLEM, "missing-san", "'%s' does not cover the name '%s'",
                 path, request->dns_names.items[i]);
        }
    }
    for (size_t i = 0; i < request->ip_count; i++) {
        if (!kp_cert_covers_ip(cert, &request->ips[i])) {
            char text[KP_IP_TEXT_MAX];
            kp_ip_format(&request->ips[i], text, sizeof(text));
            find(item, KP_CHECK_PROBLEM, "missing-san", "'%s' does not cover the address %s",
                 path, text);
        }
    }
}

static void check_usages(struct kp_check_item *item, const char *path, X509 *cert,
                         const struct kp_cert_request *request)
{
    if (kp_cert_is_ca(cert) != request->is_ca) {
        find(item, KP_CHECK_PROBLEM, request->is_ca ? "not-a-ca" : "unexpected-ca",
             request->is_ca ? "'%s' is not a CA certificate (no CA:TRUE)"
                            : "'%s' is a CA certificate (CA:TRUE) where a leaf belongs",
             path);
    }
    bool has_eku = false;
    unsigned eku = kp_cert_ext_key_usage(cert, &has_eku);
    unsigned missing_eku = request->ext_key_usage & ~eku;
    if (has_eku && missing_eku != 0) {
        find(item, KP_CHECK_PROBLEM, "wrong-eku", "'%s' lacks the extended key usage %s%s%s",
             path, (missing_eku & KP_EKU_SERVER_AUTH) ? "serverAuth" : "",
             missing_eku == (KP_EKU_SERVER_AUTH | KP_EKU_CLIENT_AUTH) ? " and " : "",
             (missing_eku & KP_EKU_CLIENT_AUTH) ? "clientAuth" : "");
    }
    unsigned key_usage = kp_cert_key_usage(cert);
    if (request->is_ca && key_usage != 0 && !(key_usage & KP_KU_CERT_SIGN)) {
        find(item, KP_CHECK_PROBLEM, "wrong-key-usage", "'%s' is a CA whose key usage lacks "
             "certificate signing", path);
    } else if (request->is_ca && key_usage != 0 && !(key_usage & KP_KU_CRL_SIGN)) {
        find(item, KP_CHECK_NOTE, "no-crl-sign", "'%s' lacks the cRLSign key usage (kubeadm "
             "makes CAs so): CRLs it signs are refused by OpenSSL and Go", path);
    } else if (!request->is_ca && key_usage != 0 && !(key_usage & KP_KU_DIGITAL_SIGNATURE)) {
        find(item, KP_CHECK_PROBLEM, "wrong-key-usage", "'%s' lacks the digitalSignature key "
             "usage TLS needs", path);
    }
}

/* CN and O against the table: a problem for the kubelet (its identity is its name), a note
 * elsewhere (the file still works; kubeadm renewals keep whatever subject they find). */
static void check_identity(struct kp_check_item *item, const char *path, X509 *cert,
                           const struct kp_cert_request *request, bool must_match)
{
    char cn[256];
    kp_cert_common_name(cert, cn, sizeof(cn));
    struct kp_strlist orgs = {0};
    bool orgs_match = kp_cert_organizations(cert, &orgs, NULL) == KP_OK &&
                      orgs.count == request->organizations.count;
    for (size_t i = 0; orgs_match && i < orgs.count; i++) {
        orgs_match = strcmp(orgs.items[i], request->organizations.items[i]) == 0;
    }
    kp_strlist_wipe(&orgs);
    if (strcmp(cn, request->common_name) != 0 || !orgs_match) {
        char subject[256];
        kp_name_to_string(X509_get_subject_name(cert), subject, sizeof(subject));
        find(item, must_match ? KP_CHECK_PROBLEM : KP_CHECK_NOTE, "identity",
             "'%s' has subject '%s'; the table expects CN=%s%s%s", path, subject,
             request->common_name, request->organizations.count > 0 ? ",O=" : "",
             request->organizations.count > 0 ? request->organizations.items[0] : "");
    }
}

static void check_revocation(struct kp_check_item *item, const char *path, X509 *cert,
                             const struct ca_state *ca)
{
    if (ca != NULL && ca->crl != NULL && kp_crl_lists(ca->crl, cert)) {
        find(item, KP_CHECK_PROBLEM, "revoked", "'%s' (serial %s) is revoked in %s.crl but "
             "still in place: renew it", path, item->serial, ca->spec->file);
    }
}

/* Every check of one certificate against its row. */
static void check_certificate(struct checker *checker, struct kp_check_item *item,
                              const char *path, X509 *cert, EVP_PKEY *key,
                              const struct kp_cert_request *request, X509 *anchor,
                              const char *anchor_name, bool must_match_identity)
{
    check_validity(checker, item, path, cert);
    if (key != NULL && !kp_cert_matches_key(cert, key)) {
        find(item, KP_CHECK_PROBLEM, "key-mismatch", "'%s' does not match its private key",
             path);
    }
    if (!request->is_ca) {
        check_issuer(checker, item, path, cert, anchor, anchor_name);
    }
    check_sans(item, path, cert, request);
    check_usages(item, path, cert, request);
    check_identity(item, path, cert, request, must_match_identity);
    check_key_strength(item, path, X509_get0_pubkey(cert));
    check_revocation(item, path, cert, ca_named(checker, anchor_name));
}

/* ---- rows ---- */

/* Loads a pair, recording missing or unreadable files; NULL certs when absent. */
static bool load_pair(struct kp_check_item *item, const char *cert_path, const char *key_path,
                      struct kp_existing_pair *pair)
{
    struct kp_error err;
    if (kp_existing_pair_load(cert_path, key_path, pair, &err) != KP_OK) {
        find(item, KP_CHECK_PROBLEM, "unreadable", "%s", err.message);
        return false;
    }
    if (!pair->cert_present) {
        item->missing = true;
        find(item, KP_CHECK_PROBLEM, "missing", "'%s' is missing", cert_path);
        return false;
    }
    return true;
}

static void check_ca_row(struct checker *checker, const struct kp_cert_request *request)
{
    struct kp_check_item *item = new_item(checker, request->spec->name, request->rel_path,
                                          KP_CHECK_CA);
    struct ca_state *state = &checker->cas[checker->ca_count++];
    state->spec = request->spec;
    if (item == NULL) {
        return;
    }
    struct kp_existing_pair pair;
    if (load_pair(item, request->cert_path, request->key_path, &pair)) {
        X509 *cert = sk_X509_value(pair.certs, 0);
        state->cert = X509_dup(cert);
        state->external = !pair.key_present;
        item->external = state->external;
        if (state->external) {
            find(item, KP_CHECK_NOTE, "external", "'%s' has no key on this node: the CA is "
                 "managed outside kpki", request->cert_path);
        } else {
            check_mode(item, request->key_path, true);
            check_key_strength(item, request->key_path, pair.key);
        }
        check_certificate(checker, item, request->cert_path, cert, pair.key, request, NULL,
                          request->spec->name, false);
        check_mode(item, request->cert_path, false);
    }
    kp_existing_pair_wipe(&pair);
}

static void check_leaf_row(struct checker *checker, const struct kp_cert_request *request)
{
    struct kp_check_item *item = new_item(checker, request->spec->name, request->rel_path,
                                          KP_CHECK_CERT);
    if (item == NULL) {
        return;
    }
    const char *cert_path = request->cert_path;
    struct stat st;
    if (request->spec->kind == KP_ART_KUBELET_CLIENT && lstat(cert_path, &st) == 0 &&
        stat(cert_path, &st) != 0) {
        item->missing = true;
        find(item, KP_CHECK_PROBLEM, "dangling-symlink", "'%s' points at a file that does not "
             "exist: the kubelet cannot start", cert_path);
        return;
    }
    struct ca_state *ca = ca_named(checker, request->spec->ca);
    snprintf(item->ca, sizeof(item->ca), "%s", ca != NULL ? ca->spec->name : "");
    struct kp_existing_pair pair;
    if (load_pair(item, cert_path, request->key_path, &pair)) {
        X509 *cert = sk_X509_value(pair.certs, 0);
        X509 *anchor = ca != NULL ? ca->cert : NULL;
        const char *anchor_name = ca != NULL ? ca->spec->name : "";
        bool self_signed = request->spec->kind == KP_ART_KUBELET_SERVING &&
                           sk_X509_num(pair.certs) > 1 && !verifies_against(cert, anchor);
        if (self_signed) {
            /* The kubelet's own CA travels in kubelet.crt (client-go's self-signed layout). */
            anchor = sk_X509_value(pair.certs, 1);
            anchor_name = "kubelet's own";
            snprintf(item->ca, sizeof(item->ca), "self-signed");
            find(item, KP_CHECK_NOTE, "self-signed", "'%s' is signed by the kubelet's own CA: "
                 "the API server cannot verify it", cert_path);
        }
        item->external = ca != NULL && ca->external;
        if (!pair.key_present) {
            find(item, KP_CHECK_PROBLEM, "missing-key", "'%s' has no private key '%s'", cert_path,
                 request->key_path);
        } else {
            check_mode(item, request->key_path, true);
        }
        bool kubelet = request->spec->kind != KP_ART_CERT;
        if (self_signed) {
            /* Its CN is "<node>@<unix>", not the table's: identity is not checked. */
            check_validity(checker, item, cert_path, cert);
            if (pair.key != NULL && !kp_cert_matches_key(cert, pair.key)) {
                find(item, KP_CHECK_PROBLEM, "key-mismatch", "'%s' does not match its private "
                     "key", cert_path);
            }
            if (!verifies_against(cert, anchor)) {
                find(item, KP_CHECK_PROBLEM, "wrong-ca", "'%s' is not signed by the CA after it "
                     "in the file", cert_path);
            }
            check_sans(item, cert_path, cert, request);
            check_usages(item, cert_path, cert, request);
        } else {
            check_certificate(checker, item, cert_path, cert, pair.key, request, anchor,
                              anchor_name, kubelet);
        }
        if (request->spec->kind != KP_ART_KUBELET_CLIENT) {
            check_mode(item, cert_path, false);
        }
        if (strcmp(request->spec->name, "apiserver") == 0) {
            checker->apiserver = X509_dup(cert);
        }
    }
    kp_existing_pair_wipe(&pair);
}

static void check_sa_row(struct checker *checker, const struct kp_cert_request *request)
{
    struct kp_check_item *item = new_item(checker, request->spec->name, request->rel_path,
                                          KP_CHECK_KEYS);
    if (item == NULL) {
        return;
    }
    struct kp_existing_pair pair;
    struct kp_error err;
    if (kp_existing_pair_load(NULL, request->key_path, &pair, &err) != KP_OK) {
        find(item, KP_CHECK_PROBLEM, "unreadable", "%s", err.message);
        return;
    }
    if (!pair.key_present) {
        item->missing = true;
        find(item, KP_CHECK_PROBLEM, "missing", "'%s' is missing: service-account tokens cannot "
             "be signed", request->key_path);
    } else {
        check_mode(item, request->key_path, true);
        check_key_strength(item, request->key_path, pair.key);
    }
    char *text = NULL;
    size_t len = 0;
    EVP_PKEY *pub = NULL;
    if (!kp_path_exists(request->extra_path)) {
        find(item, KP_CHECK_PROBLEM, "missing", "'%s' is missing: service-account tokens cannot "
             "be verified", request->extra_path);
    } else if (kp_file_read(request->extra_path, KP_PKI_FILE_MAX, &text, &len, &err) != KP_OK ||
               kp_pubkey_from_pem(text, len, request->extra_path, &pub, &err) != KP_OK) {
        find(item, KP_CHECK_PROBLEM, "unreadable", "%s", err.message);
    } else if (pair.key != NULL && !kp_key_public_equal(pub, pair.key)) {
        find(item, KP_CHECK_PROBLEM, "key-mismatch", "'%s' is not the public half of '%s'",
             request->extra_path, request->key_path);
    }
    EVP_PKEY_free(pub);
    free(text);
    kp_existing_pair_wipe(&pair);
}

/* Host of an https:// URL into host ("" if it is not one). */
static void url_host(const char *url, char *host, size_t size)
{
    host[0] = '\0';
    if (url == NULL || strncmp(url, "https://", 8) != 0) {
        return;
    }
    const char *start = url + 8;
    size_t len = strcspn(start, "/");
    char authority[300];
    snprintf(authority, sizeof(authority), "%.*s", (int)len, start);
    int port = 0;
    if (kp_host_port_parse(authority, host, size, &port, NULL) != KP_OK) {
        host[0] = '\0';
    }
}

static void check_server_url(struct checker *checker, struct kp_check_item *item,
                             const char *path, const char *server)
{
    char host[256];
    url_host(server, host, sizeof(host));
    if (host[0] == '\0') {
        find(item, KP_CHECK_PROBLEM, "server-url", "'%s' has server '%s', not an https:// URL",
             path, server != NULL ? server : "");
        return;
    }
    if (checker->apiserver == NULL) {
        return;
    }
    struct kp_ip ip;
    bool covered = kp_ip_parse(host, &ip) ? kp_cert_covers_ip(checker->apiserver, &ip)
                                          : kp_cert_covers_dns(checker->apiserver, host);
    if (!covered) {
        find(item, KP_CHECK_PROBLEM, "server-not-covered", "'%s' points at %s, which "
             "apiserver.crt's SANs do not cover: TLS verification will fail", path, server);
    }
}

/* A kubeconfig's client certificate, embedded or by reference. */
static void check_kubeconfig_client(struct checker *checker, struct kp_check_item *item,
                                    const char *path, const struct kp_kubeconfig *kubeconfig,
                                    const struct kp_cert_request *request)
{
    struct ca_state *ca = ca_named(checker, request->spec->ca);
    X509 *anchor = ca != NULL ? ca->cert : NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    struct kp_existing_pair pair = {0};
    struct kp_error err;
    const char *where = path;
    char referenced[KP_PATH_MAX];
    if (kubeconfig->cert_data != NULL) {
        if (kp_cert_from_pem((const char *)kubeconfig->cert_data, kubeconfig->cert_len, path,
                             &cert, &err) != KP_OK ||
            (kubeconfig->key_data != NULL &&
             kp_key_from_pem((const char *)kubeconfig->key_data, kubeconfig->key_len, path, &key,
                             &err) != KP_OK)) {
            find(item, KP_CHECK_PROBLEM, "unreadable", "%s", err.message);
        } else if (kubeconfig->key_data == NULL) {
            find(item, KP_CHECK_PROBLEM, "missing-key", "'%s' has a client certificate but no "
                 "client-key-data", path);
        }
    } else if (kubeconfig->cert_file != NULL) {
        /* Relative paths in a kubeconfig are relative to its directory. */
        if (kubeconfig->cert_file[0] == '/') {
            snprintf(referenced, sizeof(referenced), "%s", kubeconfig->cert_file);
        } else {
            char dir[KP_PATH_MAX] = ".";
            if (kp_path_dirname(dir, sizeof(dir), path, NULL) != KP_OK) {
                snprintf(dir, sizeof(dir), ".");
            }
            snprintf(referenced, sizeof(referenced), "%s/%s", dir, kubeconfig->cert_file);
        }
        where = referenced;
        char real_root[PATH_MAX];
        if (realpath(checker->config->root, real_root) != NULL && strcmp(real_root, "/") != 0 &&
            (strncmp(referenced, real_root, strlen(real_root)) != 0 ||
             referenced[strlen(real_root)] != '/')) {
            find(item, KP_CHECK_PROBLEM, "outside-tree", "'%s' refers to '%s', outside this tree "
                 "(was the tree copied or moved?)", path, referenced);
        }
        if (kp_existing_pair_load(referenced, referenced, &pair, &err) != KP_OK) {
            find(item, KP_CHECK_PROBLEM, "unreadable", "%s", err.message);
        } else if (!pair.cert_present) {
            find(item, KP_CHECK_PROBLEM, "missing", "'%s' refers to '%s', which does not exist",
                 path, referenced);
        } else {
            cert = X509_dup(sk_X509_value(pair.certs, 0));
            key = pair.key;
            pair.key = NULL;
        }
    } else if (kubeconfig->token == NULL) {
        find(item, KP_CHECK_PROBLEM, "no-credentials", "'%s' has no client certificate or token",
             path);
    }
    if (cert != NULL) {
        const struct kp_cert_spec *client_spec =
            request->spec->client != NULL ? kp_cert_spec_find(request->spec->client) : NULL;
        bool kubelet = client_spec != NULL;
        check_certificate(checker, item, where, cert, key, request, anchor,
                          ca != NULL ? ca->spec->name : "ca", kubelet);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    kp_existing_pair_wipe(&pair);
}

static void check_kubeconfig_row(struct checker *checker, const struct kp_cert_request *request)
{
    const char *path = request->key_path;
    struct kp_check_item *item = new_item(checker, request->spec->name, request->rel_path,
                                          KP_CHECK_KUBECONFIG);
    if (item == NULL) {
        return;
    }
    struct ca_state *ca = ca_named(checker, request->spec->ca);
    snprintf(item->ca, sizeof(item->ca), "%s", request->spec->ca);
    item->external = ca != NULL && ca->external;
    if (!kp_path_exists(path)) {
        item->missing = true;
        bool optional = (request->spec->flags & KP_SPEC_NOT_ON_JOIN) != 0;
        find(item, optional ? KP_CHECK_NOTE : KP_CHECK_PROBLEM, "missing",
             optional ? "'%s' is absent (normal on control-plane nodes that joined)"
                      : "'%s' is missing",
             path);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    struct kp_kubeconfig kubeconfig;
    struct kp_error err;
    if (kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, &err) != KP_OK ||
        kp_kubeconfig_parse(text, len, path, &kubeconfig, &err) != KP_OK) {
        find(item, KP_CHECK_PROBLEM, "unreadable", "%s", err.message);
        kp_secret_free(text, len);
        return;
    }
    kp_secret_free(text, len);
    check_mode(item, path, true);
    X509 *embedded = NULL;
    if (kubeconfig.ca_data == NULL) {
        find(item, KP_CHECK_PROBLEM, "no-ca-data", "'%s' embeds no certificate-authority-data",
             path);
    } else if (kp_cert_from_pem((const char *)kubeconfig.ca_data, kubeconfig.ca_len, path,
                                &embedded, &err) != KP_OK) {
        find(item, KP_CHECK_PROBLEM, "unreadable", "%s", err.message);
    } else if (ca != NULL && ca->cert != NULL && X509_cmp(embedded, ca->cert) != 0) {
        find(item, KP_CHECK_PROBLEM, "wrong-ca-data", "'%s' embeds a CA certificate other than "
             "%s.crt", path, ca->spec->file);
    }
    X509_free(embedded);
    check_server_url(checker, item, path, kubeconfig.server);
    check_kubeconfig_client(checker, item, path, &kubeconfig, request);
    kp_kubeconfig_wipe(&kubeconfig);
}

/* pki/<ca>.crl: loaded before the certificates are checked (to find revoked ones), reported
 * as an item of its own after them. */
static void load_crl(struct checker *checker, struct ca_state *ca)
{
    char path[KP_PATH_MAX];
    char rel[512];
    snprintf(rel, sizeof(rel), "%s.crl", ca->spec->file);
    if (kp_path_join(path, sizeof(path), checker->config->root, rel, NULL) != KP_OK ||
        !kp_path_exists(path) || ca->cert == NULL) {
        return;
    }
    char *text = NULL;
    size_t len = 0;
    X509_CRL *crl = NULL;
    if (kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, NULL) == KP_OK &&
        kp_crl_from_pem(text, len, path, &crl, NULL) == KP_OK && kp_crl_signed_by(crl, ca->cert)) {
        ca->crl = crl;
        crl = NULL;
    }
    X509_CRL_free(crl);
    free(text);
}

static void check_crl_item(struct checker *checker, struct ca_state *ca)
{
    char path[KP_PATH_MAX];
    char rel[512];
    char name[64];
    snprintf(rel, sizeof(rel), "%s.crl", ca->spec->file);
    snprintf(name, sizeof(name), "%s.crl", ca->spec->name);
    if (kp_path_join(path, sizeof(path), checker->config->root, rel, NULL) != KP_OK ||
        !kp_path_exists(path)) {
        return; /* no CRL: revocation not in use for this CA */
    }
    struct kp_check_item *item = new_item(checker, name, rel, KP_CHECK_CRL);
    if (item == NULL) {
        return;
    }
    snprintf(item->ca, sizeof(item->ca), "%s", ca->spec->name);
    if (ca->crl == NULL) {
        find(item, KP_CHECK_PROBLEM, "bad-crl", "'%s' cannot be read or is not signed by the "
             "%s CA", path, ca->spec->name);
        return;
    }
    item->not_after = kp_crl_next_update(ca->crl);
    snprintf(item->serial, sizeof(item->serial), "%llu",
             (unsigned long long)kp_crl_number(ca->crl));
    char when[32];
    kp_time_format_rfc3339(item->not_after, when, sizeof(when));
    if (item->not_after <= checker->now) {
        find(item, KP_CHECK_PROBLEM, "crl-expired", "'%s' passed its nextUpdate (%s): verifiers "
             "refuse it; re-sign it with 'kpki crl sign'", path, when);
    } else if (item->not_after - checker->now <= checker->warn_within) {
        item->expiring = true;
    }
}

/* The directories holding keys: nobody else may write there (or swap a CA in). */
static void check_directories(struct checker *checker)
{
    static const char *const dirs[] = {KP_KUBECONFIG_DIR, KP_PKI_DIR, KP_PKI_DIR "/etcd",
                                       KP_KUBELET_PKI_DIR};
    struct kp_check_item *item = new_item(checker, "directories", KP_PKI_DIR, KP_CHECK_KEYS);
    if (item == NULL) {
        return;
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char path[KP_PATH_MAX];
        struct stat st;
        if (kp_path_join(path, sizeof(path), checker->config->root, dirs[i], NULL) != KP_OK ||
            lstat(path, &st) != 0) {
            continue;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[KP_PATH_MAX] = "";
            ssize_t len = readlink(path, target, sizeof(target) - 1);
            target[len > 0 ? len : 0] = '\0';
            find(item, KP_CHECK_NOTE, "symlinked-dir", "'%s' is a symbolic link to '%s'", path,
                 target);
            if (stat(path, &st) != 0) {
                continue;
            }
        }
        if ((st.st_mode & 022) != 0) {
            find(item, KP_CHECK_PROBLEM, "dir-mode", "'%s' has mode %04o: others may add or "
                 "replace files there (a CA, a key)", path, (unsigned)(st.st_mode & 07777));
        }
    }
}

/* ---- the whole tree ---- */

static void finish(struct kp_check_report *report)
{
    report->status = KP_CHECK_HEALTHY;
    for (size_t i = 0; i < report->count; i++) {
        for (size_t j = 0; j < report->items[i].finding_count; j++) {
            report->problems += report->items[i].findings[j].severity == KP_CHECK_PROBLEM;
        }
        if (report->items[i].expiring && report->status == KP_CHECK_HEALTHY) {
            report->status = KP_CHECK_EXPIRING;
        }
    }
    if (report->problems > 0) {
        report->status = KP_CHECK_PROBLEMS;
    }
}

enum kp_result kp_pki_check(const struct kp_pki_config *config, const struct kp_clock *clock,
                            int64_t warn_within, struct kp_check_report *report,
                            struct kp_error *err)
{
    memset(report, 0, sizeof(*report));
    struct stat st;
    if (stat(config->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return kp_error_set(err, KP_ERR_NOT_FOUND, "--root '%s' is not a directory",
                            config->root);
    }
    struct checker checker = {.config = config, .now = kp_clock_now(clock),
                              .warn_within = warn_within, .report = report};
    report->checked_at = checker.now;
    report->warn_within = warn_within;
    size_t count = 0;
    const struct kp_cert_spec *specs = kp_cert_specs(&count);
    enum kp_result rc = KP_OK;
    /* Two passes: the CAs (and their CRLs) first, then everything else in table order. */
    for (int pass = 0; pass < 2 && rc == KP_OK; pass++) {
        for (size_t i = 0; i < count && rc == KP_OK; i++) {
            if ((specs[i].kind == KP_ART_CA) != (pass == 0)) {
                continue;
            }
            struct kp_cert_request request;
            rc = kp_cert_resolve(&specs[i], config, config->key_type, &request, err);
            if (rc == KP_OK) {
                switch (specs[i].kind) {
                case KP_ART_CA:
                    check_ca_row(&checker, &request);
                    load_crl(&checker, &checker.cas[checker.ca_count - 1]);
                    break;
                case KP_ART_CERT:
                case KP_ART_KUBELET_CLIENT:
                case KP_ART_KUBELET_SERVING:
                    check_leaf_row(&checker, &request);
                    break;
                case KP_ART_SA:
                    check_sa_row(&checker, &request);
                    break;
                case KP_ART_KUBECONFIG:
                    check_kubeconfig_row(&checker, &request);
                    break;
                }
            }
            kp_cert_request_wipe(&request);
        }
    }
    check_directories(&checker);
    for (size_t i = 0; i < checker.ca_count; i++) {
        check_crl_item(&checker, &checker.cas[i]);
        X509_free(checker.cas[i].cert);
        X509_CRL_free(checker.cas[i].crl);
    }
    X509_free(checker.apiserver);
    if (rc == KP_OK && report->count == 0) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    finish(report);
    return rc;
}

/* ---- inferring identity from the tree ---- */

static char *read_cert_cn(const char *root, const char *rel, const char *prefix)
{
    char path[KP_PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    X509 *cert = NULL;
    char *result = NULL;
    if (kp_path_join(path, sizeof(path), root, rel, NULL) == KP_OK &&
        kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, NULL) == KP_OK &&
        kp_cert_from_pem(text, len, path, &cert, NULL) == KP_OK) {
        char cn[256];
        kp_cert_common_name(cert, cn, sizeof(cn));
        size_t prefix_len = strlen(prefix);
        if (strncmp(cn, prefix, prefix_len) == 0 && kp_dns1123_subdomain_valid(cn + prefix_len)) {
            result = strdup(cn + prefix_len);
        }
    }
    X509_free(cert);
    free(text);
    return result;
}

static bool read_kubeconfig(const char *root, const char *rel, struct kp_kubeconfig *out)
{
    char path[KP_PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    bool ok = kp_path_join(path, sizeof(path), root, rel, NULL) == KP_OK &&
              kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, NULL) == KP_OK &&
              kp_kubeconfig_parse(text, len, path, out, NULL) == KP_OK;
    kp_secret_free(text, len);
    return ok;
}

void kp_pki_config_infer(struct kp_pki_config *config, const char *root)
{
    if (config->node_name == NULL) {
        config->node_name = read_cert_cn(root, KP_PKI_DIR "/etcd/server.crt", "");
    }
    if (config->node_name == NULL) {
        config->node_name =
            read_cert_cn(root, KP_KUBELET_PKI_DIR "/kubelet-client-current.pem", "system:node:");
    }
    struct kp_kubeconfig local;
    if (!config->advertise_set && read_kubeconfig(root, KP_KUBECONFIG_DIR
                                                  "/controller-manager.conf", &local)) {
        char authority[300] = "";
        char host[256] = "";
        int port = 0;
        if (local.server != NULL && strncmp(local.server, "https://", 8) == 0) {
            snprintf(authority, sizeof(authority), "%s", local.server + 8);
            authority[strcspn(authority, "/")] = '\0';
        }
        if (kp_host_port_parse(authority, host, sizeof(host), &port, NULL) == KP_OK &&
            kp_ip_parse(host, &config->advertise)) {
            config->advertise_set = true;
            config->bind_port = port != 0 ? port : config->bind_port;
        }
        kp_kubeconfig_wipe(&local);
    }
    struct kp_kubeconfig admin;
    if (read_kubeconfig(root, KP_KUBECONFIG_DIR "/admin.conf", &admin)) {
        if (config->control_plane_endpoint == NULL && admin.server != NULL &&
            strncmp(admin.server, "https://", 8) == 0) {
            char authority[300];
            snprintf(authority, sizeof(authority), "%s", admin.server + 8);
            authority[strcspn(authority, "/")] = '\0';
            config->control_plane_endpoint = strdup(authority);
        }
        char *cluster = admin.cluster_name != NULL ? strdup(admin.cluster_name) : NULL;
        if (cluster != NULL && strcmp(config->cluster_name, "kubernetes") == 0) {
            free(config->cluster_name);
            config->cluster_name = cluster;
            cluster = NULL;
        }
        free(cluster);
        kp_kubeconfig_wipe(&admin);
    }
}
