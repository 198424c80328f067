/*
 * kpki init, step 2: inspect every row and decide, writing nothing.
 *
 * Implementation notes
 *
 * Each row is absent (create it), reusable, completable (a key without its certificate, as an
 * interrupted run leaves), copyable (--join-from), external (a CA certificate without its key),
 * or in conflict (KP_ERR_CONFLICT naming the file and the problem, and nothing is written).
 * The rules are kubeadm's (../shared/docs/k8s-pki-facts.md §3 "with pre-existing files"), made
 * stricter where a file could never be right:
 *  - a CA needs CA:TRUE and a matching key;
 *  - an issued certificate (a leaf, or a kubeconfig's client certificate, embedded or by
 *    reference) needs a matching key, a valid signature by its CA, no CA:TRUE, every SAN the
 *    configuration requires, and never O=system:masters where the table has none;
 *  - a kubeconfig must embed exactly the CA certificate on disk, and authenticate with a
 *    certificate (a token would bypass everything the table says);
 *  - the shared material of --join-from passes the same checks before it is copied.
 * Expiry, CN, O and EKU differences are warnings, as in kubeadm, and so are keys that others may
 * read.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pki/init_internal.h"

/* ---- facts about one file ---- */

/* Signature (and chain) check of cert against its signer's certificate, ignoring validity. */
static enum kp_result check_signed_by(const char *path, X509 *cert, X509 *signer,
                                      const char *signer_name, struct kp_error *err)
{
    bool ok = false;
    char reason[256];
    enum kp_result rc = kp_cert_verify_chain(cert, signer, NULL, KP_VERIFY_ANY_TIME, &ok, reason,
                                             sizeof(reason), err);
    if (rc == KP_OK && !ok) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' is not signed by the %s CA on disk (%s)",
                          path, signer_name, reason);
    }
    return rc;
}

static void warn_validity(struct run *run, const char *path, X509 *cert)
{
    int64_t not_after = kp_cert_not_after(cert);
    int64_t not_before = kp_cert_not_before(cert);
    char when[32];
    if (not_after <= run->now) {
        kp_time_format_rfc3339(not_after, when, sizeof(when));
        kp_init_warn(run, "'%s' expired at %s; reused as it is (renew it)", path, when);
    } else if (not_before > run->now) {
        kp_time_format_rfc3339(not_before, when, sizeof(when));
        kp_init_warn(run, "'%s' is not valid before %s", path, when);
    }
}

/* Private keys are reused as found, but a key others may read is worth a warning. */
static void warn_key_mode(struct run *run, const char *path)
{
    struct stat st;
    if (path != NULL && stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
        kp_init_warn(run, "'%s' has mode %04o: others may read this private key (chmod 600)",
                     path, (unsigned)(st.st_mode & 07777));
    }
}

/* kubeadm's VerifyHostname per expected SAN: every DNS name and IP must be covered. */
static enum kp_result check_sans(const struct item *item, const char *path, X509 *cert,
                                 struct kp_error *err)
{
    for (size_t i = 0; i < item->req.dns_names.count; i++) {
        const char *name = item->req.dns_names.items[i];
        if (!kp_cert_covers_dns(cert, name)) {
            return kp_error_set(err, KP_ERR_CONFLICT,
                                "'%s' does not cover the required name '%s'; move it away to "
                                "have it re-issued",
                                path, name);
        }
    }
    for (size_t i = 0; i < item->req.ip_count; i++) {
        if (!kp_cert_covers_ip(cert, &item->req.ips[i])) {
            char text[KP_IP_TEXT_MAX];
            kp_ip_format(&item->req.ips[i], text, sizeof(text));
            return kp_error_set(err, KP_ERR_CONFLICT,
                                "'%s' does not cover the required IP address %s; move it away "
                                "to have it re-issued",
                                path, text);
        }
    }
    return KP_OK;
}

static bool has_organization(X509 *cert, const char *org)
{
    struct kp_strlist orgs = {0};
    bool found = kp_cert_organizations(cert, &orgs, NULL) == KP_OK && kp_strlist_contains(&orgs,
                                                                                         org);
    kp_strlist_wipe(&orgs);
    return found;
}

static bool self_signed_kubelet(const struct run *run, const struct item *item)
{
    return item->spec->kind == KP_ART_KUBELET_SERVING &&
           run->config->kubelet_serving == KP_KUBELET_SERVING_SELF_SIGNED;
}

/* CN, O and EKU against the table: warnings, as kubeadm neither checks nor refuses them. */
static void warn_identity(struct run *run, const struct item *item, const char *path, X509 *cert)
{
    char subject[512];
    kp_name_to_string(X509_get_subject_name(cert), subject, sizeof(subject));
    char cn[300];
    kp_cert_common_name(cert, cn, sizeof(cn));
    struct kp_strlist orgs = {0};
    bool orgs_match = kp_cert_organizations(cert, &orgs, NULL) == KP_OK &&
                      orgs.count == item->req.organizations.count;
    for (size_t i = 0; orgs_match && i < orgs.count; i++) {
        orgs_match = strcmp(orgs.items[i], item->req.organizations.items[i]) == 0;
    }
    kp_strlist_wipe(&orgs);
    if (!self_signed_kubelet(run, item) &&
        (strcmp(cn, item->req.common_name) != 0 || !orgs_match)) {
        kp_init_warn(run, "'%s' has subject '%s', the table expects CN=%s%s%s", path, subject,
                     item->req.common_name, item->req.organizations.count > 0 ? ",O=" : "",
                     item->req.organizations.count > 0 ? item->req.organizations.items[0] : "");
    }
    bool has_eku = false;
    unsigned eku = kp_cert_ext_key_usage(cert, &has_eku);
    if (item->req.ext_key_usage != 0 && !has_eku) {
        kp_init_warn(run, "'%s' has no extended key usage (the table expects %s%s%s)", path,
                     (item->req.ext_key_usage & KP_EKU_SERVER_AUTH) ? "serverAuth" : "",
                     item->req.ext_key_usage == (KP_EKU_SERVER_AUTH | KP_EKU_CLIENT_AUTH) ? ", "
                                                                                          : "",
                     (item->req.ext_key_usage & KP_EKU_CLIENT_AUTH) ? "clientAuth" : "");
    } else if (item->req.ext_key_usage != 0 &&
               (eku & item->req.ext_key_usage) != item->req.ext_key_usage) {
        kp_init_warn(run, "'%s' lacks an extended key usage its role needs (%s%s)", path,
                     (item->req.ext_key_usage & KP_EKU_SERVER_AUTH) ? "serverAuth " : "",
                     (item->req.ext_key_usage & KP_EKU_CLIENT_AUTH) ? "clientAuth" : "");
    }
}

/* Everything an issued certificate (a leaf, or a kubeconfig's client) must be to be reused. */
static enum kp_result check_issued(struct run *run, const struct item *item, const char *path,
                                   X509 *cert, EVP_PKEY *key, X509 *anchor,
                                   const char *anchor_name, struct kp_error *err)
{
    if (key == NULL || !kp_cert_matches_key(cert, key)) {
        return kp_error_set(err, KP_ERR_CONFLICT, "'%s' does not match its private key", path);
    }
    if (kp_cert_is_ca(cert)) {
        return kp_error_set(err, KP_ERR_CONFLICT,
                            "'%s' is a CA certificate (CA:TRUE) where a leaf belongs", path);
    }
    if (item->req.organizations.count == 0 && has_organization(cert, "system:masters")) {
        /* The group that bypasses RBAC must not ride in through a reused file. */
        return kp_error_set(err, KP_ERR_CONFLICT,
                            "'%s' carries O=system:masters, which the table does not give it",
                            path);
    }
    enum kp_result rc = check_signed_by(path, cert, anchor, anchor_name, err);
    if (rc == KP_OK) {
        rc = check_sans(item, path, cert, err);
    }
    if (rc == KP_OK) {
        warn_validity(run, path, cert);
        warn_identity(run, item, path, cert);
    }
    return rc;
}

/* Takes ownership of the pair's objects into the item. */
static void adopt_pair(struct item *item, struct kp_existing_pair *pair)
{
    if (pair->certs != NULL && sk_X509_num(pair->certs) > 0) {
        item->cert = sk_X509_shift(pair->certs);
        /* Only the kubelet's serving file carries its own CA after the leaf (client-go's
         * self-signed layout); anything after the first certificate elsewhere is ignored. */
        if (item->spec->kind == KP_ART_KUBELET_SERVING && sk_X509_num(pair->certs) > 0) {
            item->self_ca = sk_X509_shift(pair->certs);
        }
    }
    item->key = pair->key;
    pair->key = NULL;
}

/* ---- CAs and sa ---- */

static enum kp_result validate_ca(const char *cert_path, const char *key_path, X509 *cert,
                                  EVP_PKEY *key, struct kp_error *err)
{
    if (!kp_cert_is_ca(cert)) {
        return kp_error_set(err, KP_ERR_CONFLICT, "'%s' is not a CA certificate (no CA:TRUE)",
                            cert_path);
    }
    if (key != NULL && !kp_cert_matches_key(cert, key)) {
        return kp_error_set(err, KP_ERR_CONFLICT, "'%s' does not match the CA certificate '%s'",
                            key_path, cert_path);
    }
    return KP_OK;
}

static enum kp_result inspect_ca(struct run *run, struct item *item, struct kp_error *err)
{
    struct kp_existing_pair pair;
    const char *cert_path = item->req.cert_path;
    const char *key_path = item->req.key_path;
    enum kp_result rc = kp_existing_pair_load(cert_path, key_path, &pair, err);
    if (rc != KP_OK) {
        return rc;
    }
    X509 *cert = pair.cert_present ? sk_X509_value(pair.certs, 0) : NULL;
    if (cert != NULL) {
        rc = validate_ca(cert_path, key_path, cert, pair.key, err);
        warn_validity(run, cert_path, cert);
        item->external = !pair.key_present;
        item->action = pair.key_present ? KP_PKI_REUSED : KP_PKI_EXTERNAL;
    } else if (pair.key_present) {
        /* An interrupted run renamed the key but not the certificate: same key, same
         * subject, so anything already signed by it still chains. */
        item->action = KP_PKI_COMPLETED;
        item->new_cert = true;
    } else {
        item->action = KP_PKI_CREATED;
        item->new_key = item->new_cert = item->write_key = true;
    }
    if (pair.key_present) {
        warn_key_mode(run, key_path);
    }
    if (rc == KP_OK) {
        adopt_pair(item, &pair);
    }
    kp_existing_pair_wipe(&pair);
    /* Re-issue now: the certificates this CA signed are checked against it next. */
    if (rc == KP_OK && item->action == KP_PKI_COMPLETED) {
        rc = kp_init_issue(run, item, err);
        if (rc == KP_OK) {
            rc = kp_cert_reload(&item->cert, err); /* it is an anchor: see kp_cert_issue */
        }
        item->issued = rc == KP_OK;
    }
    return rc;
}

/* sa.pub (at pub_path) must parse and be the public half of key. */
static enum kp_result validate_sa_pub(const char *pub_path, const char *key_path, EVP_PKEY *key,
                                      char **pub_text, size_t *pub_len, struct kp_error *err)
{
    char *text = NULL;
    size_t len = 0;
    EVP_PKEY *pub = NULL;
    enum kp_result rc = kp_file_read(pub_path, KP_PKI_FILE_MAX, &text, &len, err);
    if (rc == KP_OK) {
        rc = kp_pubkey_from_pem(text, len, pub_path, &pub, err);
    }
    if (rc == KP_OK && !kp_key_public_equal(pub, key)) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' is not the public half of '%s'", pub_path,
                          key_path);
    }
    EVP_PKEY_free(pub);
    if (rc == KP_OK && pub_text != NULL) {
        *pub_text = text;
        *pub_len = len;
    } else {
        free(text);
    }
    return rc;
}

static enum kp_result inspect_sa(struct run *run, struct item *item, struct kp_error *err)
{
    struct kp_existing_pair pair;
    enum kp_result rc = kp_existing_pair_load(NULL, item->req.key_path, &pair, err);
    if (rc != KP_OK) {
        return rc;
    }
    bool pub_present = kp_path_exists(item->req.extra_path);
    if (pair.key_present && pub_present) {
        rc = validate_sa_pub(item->req.extra_path, item->req.key_path, pair.key, NULL, NULL, err);
        item->action = KP_PKI_REUSED;
    } else if (pair.key_present) {
        item->action = KP_PKI_COMPLETED;
        item->new_cert = true; /* sa.pub */
    } else if (pub_present) {
        rc = kp_error_set(err, KP_ERR_CONFLICT,
                          "'%s' exists without its private key '%s'; restore the key or remove "
                          "the public key",
                          item->req.extra_path, item->req.key_path);
    } else {
        item->action = KP_PKI_CREATED;
        item->new_key = item->new_cert = item->write_key = true;
    }
    if (pair.key_present) {
        warn_key_mode(run, item->req.key_path);
    }
    if (rc == KP_OK) {
        adopt_pair(item, &pair);
    }
    kp_existing_pair_wipe(&pair);
    return rc;
}

/* ---- leaves ---- */

static enum kp_result complete_from_request(struct run *run, struct item *item, bool *handled,
                                            struct kp_error *err);

static enum kp_result inspect_leaf(struct run *run, struct item *item, struct kp_error *err)
{
    const char *cert_path = item->req.cert_path;
    const char *key_path = item->req.key_path;
    if (item->spec->kind == KP_ART_KUBELET_CLIENT && kp_path_is_dangling_link(cert_path)) {
        kp_init_warn(run, "'%s' is a dangling symlink; a new kubelet client certificate "
                     "replaces it", cert_path);
        cert_path = key_path = NULL;
    }
    struct kp_existing_pair pair;
    enum kp_result rc = kp_existing_pair_load(cert_path, key_path, &pair, err);
    if (rc != KP_OK) {
        return rc;
    }
    struct item *signer = kp_init_signer(run, item);
    X509 *cert = pair.cert_present ? sk_X509_value(pair.certs, 0) : NULL;
    if (cert != NULL) {
        X509 *anchor = signer != NULL ? signer->cert : NULL;
        const char *anchor_name = signer != NULL ? signer->spec->name : "kubelet's own";
        if (signer == NULL && sk_X509_num(pair.certs) > 1) {
            anchor = sk_X509_value(pair.certs, 1);
        }
        if (signer != NULL && anchor == NULL) {
            rc = kp_error_set(err, KP_ERR_CONFLICT,
                              "'%s' exists but its CA '%s' does not; restore the CA or move "
                              "the certificate away",
                              cert_path, signer->spec->name);
        } else if (!pair.key_present) {
            rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' exists but its key '%s' does not",
                              cert_path, key_path);
        } else if (anchor == NULL) {
            rc = kp_error_set(err, KP_ERR_CONFLICT,
                              "'%s' holds no CA certificate after the serving certificate "
                              "(expected in --kubelet-serving self-signed mode)",
                              cert_path);
        } else {
            rc = check_issued(run, item, cert_path, cert, pair.key, anchor, anchor_name, err);
        }
        item->action = KP_PKI_REUSED;
        if (rc == KP_OK) {
            warn_key_mode(run, key_path);
        }
    } else {
        bool handled = false;
        item->key = pair.key; /* a request's key, if any */
        pair.key = NULL;
        rc = complete_from_request(run, item, &handled, err);
        if (handled || rc != KP_OK) {
            kp_existing_pair_wipe(&pair);
            return rc;
        }
        pair.key = item->key;
        item->key = NULL;
        item->action = pair.key_present ? KP_PKI_COMPLETED : KP_PKI_CREATED;
        item->new_cert = true;
        item->new_key = item->write_key = !pair.key_present;
        /* The kubelet's pem holds cert and key together: always a new pair. */
        if (item->spec->kind == KP_ART_KUBELET_CLIENT) {
            item->action = KP_PKI_CREATED;
            item->new_key = item->write_key = true;
        }
        if (signer != NULL && signer->external) {
            rc = kp_error_set(err, KP_ERR_CONFLICT,
                              "cannot create '%s': its CA '%s' is external (its key is absent); "
                              "have the CA sign it and put it in place",
                              item->req.rel_path, signer->spec->name);
        }
    }
    if (rc == KP_OK) {
        adopt_pair(item, &pair);
        if (item->spec->kind == KP_ART_KUBELET_CLIENT && item->new_key) {
            EVP_PKEY_free(item->key);
            item->key = NULL;
        }
    }
    kp_existing_pair_wipe(&pair);
    return rc;
}

/* ---- kubeconfigs ---- */

static enum kp_result partial_kubeconfig_key(const char *path, EVP_PKEY **key, bool *partial,
                                             struct kp_error *err);

/* The kubeconfig must embed exactly the CA certificate on disk (or, with a warning, an
 * earlier certificate of the same CA key): one extra certificate would make every client of
 * the file trust a second CA. */
static enum kp_result check_kubeconfig_ca(struct run *run, const char *path,
                                          const struct kp_kubeconfig *kubeconfig, X509 *ca,
                                          struct kp_error *err)
{
    if (kubeconfig->ca_data == NULL) {
        return kp_error_set(err, KP_ERR_CONFLICT,
                            "'%s' has no certificate-authority-data; kpki embeds the CA", path);
    }
    STACK_OF(X509) *embedded = NULL;
    enum kp_result rc = kp_certs_from_pem((const char *)kubeconfig->ca_data, kubeconfig->ca_len,
                                          path, &embedded, err);
    if (rc == KP_OK && sk_X509_num(embedded) != 1) {
        rc = kp_error_set(err, KP_ERR_CONFLICT,
                          "'%s' embeds %d CA certificates; it must trust exactly the cluster CA",
                          path, sk_X509_num(embedded));
    }
    X509 *only = rc == KP_OK ? sk_X509_value(embedded, 0) : NULL;
    if (only != NULL && X509_cmp(only, ca) != 0) {
        bool same_ca = X509_NAME_cmp(X509_get_subject_name(only), X509_get_subject_name(ca)) ==
                           0 &&
                       kp_key_public_equal(X509_get0_pubkey(only), X509_get0_pubkey(ca));
        if (same_ca) {
            /* ca.crt was re-issued from the same key: the embedded copy still verifies
             * everything the CA signs, so the kubeconfig works; kubeadm would refuse it. */
            kp_init_warn(run, "'%s' embeds an earlier certificate of the same CA key; left as "
                         "it is", path);
        } else {
            /* kubeadm's message for the same condition. */
            rc = kp_error_set(err, KP_ERR_CONFLICT,
                              "'%s' exists already but has got the wrong CA cert", path);
        }
    }
    if (embedded != NULL) {
        sk_X509_pop_free(embedded, X509_free);
    }
    return rc;
}

/* Reads a file a kubeconfig names (relative to the kubeconfig's directory). */
static enum kp_result read_referenced(const char *kubeconfig_path, const char *name,
                                      char **text, size_t *len, struct kp_error *err)
{
    char path[KP_PATH_MAX];
    if (name[0] == '/') {
        snprintf(path, sizeof(path), "%s", name);
    } else {
        char dir[KP_PATH_MAX];
        enum kp_result rc = kp_path_dirname(dir, sizeof(dir), kubeconfig_path, err);
        if (rc != KP_OK) {
            return rc;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    }
    return kp_file_read(path, KP_PKI_FILE_MAX, text, len, err);
}

/* The client certificate and key of a kubeconfig, embedded or by reference. */
static enum kp_result kubeconfig_client(const char *path, const struct kp_kubeconfig *kubeconfig,
                                        X509 **cert, EVP_PKEY **key, struct kp_error *err)
{
    char *cert_text = NULL, *key_text = NULL;
    size_t cert_len = 0, key_len = 0;
    enum kp_result rc = KP_OK;
    if (kubeconfig->token != NULL) {
        return kp_error_set(err, KP_ERR_CONFLICT,
                            "'%s' authenticates with a token; kpki's kubeconfigs use the client "
                            "certificate the table describes",
                            path);
    }
    if (kubeconfig->cert_data != NULL) {
        rc = kp_cert_from_pem((const char *)kubeconfig->cert_data, kubeconfig->cert_len, path,
                              cert, err);
    } else if (kubeconfig->cert_file != NULL) {
        rc = read_referenced(path, kubeconfig->cert_file, &cert_text, &cert_len, err);
        if (rc == KP_OK) {
            rc = kp_cert_from_pem(cert_text, cert_len, kubeconfig->cert_file, cert, err);
        }
    } else {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' has no client certificate", path);
    }
    if (rc == KP_OK && kubeconfig->key_data != NULL) {
        rc = kp_key_from_pem((const char *)kubeconfig->key_data, kubeconfig->key_len, path, key,
                             err);
    } else if (rc == KP_OK && kubeconfig->key_file != NULL) {
        rc = read_referenced(path, kubeconfig->key_file, &key_text, &key_len, err);
        if (rc == KP_OK) {
            rc = kp_key_from_pem(key_text, key_len, kubeconfig->key_file, key, err);
        }
    } else if (rc == KP_OK) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' has a client certificate but no key", path);
    }
    free(cert_text);
    kp_secret_free(key_text, key_len);
    return rc;
}

static enum kp_result check_kubeconfig_credentials(struct run *run, struct item *item,
                                                   const struct kp_kubeconfig *kubeconfig,
                                                   X509 *ca, struct kp_error *err)
{
    const char *path = item->req.key_path;
    if (item->spec->client != NULL) {
        /* kubelet.conf: the referenced pem is the kubelet-client row's to check. */
        char expected[KP_PATH_MAX];
        if (kp_init_kubelet_link(run, expected, sizeof(expected), err) == KP_OK &&
            (kubeconfig->cert_file == NULL || strcmp(kubeconfig->cert_file, expected) != 0)) {
            kp_init_warn(run, "'%s' does not use the kubelet's rotating certificate '%s'", path,
                         expected);
        }
        return KP_OK;
    }
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    enum kp_result rc = kubeconfig_client(path, kubeconfig, &cert, &key, err);
    if (rc == KP_OK) {
        rc = check_issued(run, item, path, cert, key, ca, "ca", err);
    }
    if (rc == KP_OK) {
        item->cert = cert; /* for the report */
        item->key = key;
        cert = NULL;
        key = NULL;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static enum kp_result inspect_kubeconfig(struct run *run, struct item *item,
                                         struct kp_error *err)
{
    const char *path = item->req.key_path;
    struct item *ca = kp_init_signer(run, item);
    if (!kp_path_exists(path)) {
        item->action = KP_PKI_CREATED;
        item->new_cert = true;
        item->new_key = item->write_key = item->spec->client == NULL;
        if (ca->external && item->spec->client == NULL) { /* kubelet.conf needs no signature */
            return kp_error_set(err, KP_ERR_CONFLICT,
                                "cannot create '%s': its CA '%s' is external (its key is "
                                "absent); provide the kubeconfig",
                                item->req.rel_path, ca->spec->name);
        }
        return KP_OK;
    }
    if (ca->cert == NULL) {
        return kp_error_set(err, KP_ERR_CONFLICT,
                            "'%s' exists but its CA '%s' does not; restore the CA or move the "
                            "kubeconfig away",
                            path, ca->spec->name);
    }
    if (item->spec->client == NULL) {
        /* A partial kubeconfig (a key awaiting its certificate, from --csr-only). */
        bool partial = false;
        enum kp_result rc = partial_kubeconfig_key(path, &item->key, &partial, err);
        if (rc != KP_OK || partial) {
            item->replace = true;
            bool handled = false;
            if (rc == KP_OK) {
                rc = complete_from_request(run, item, &handled, err);
            }
            if (rc == KP_OK && !handled && ca->external) {
                rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' has no client certificate, and its "
                                  "CA '%s' is external: run kpki init --csr-only for a request",
                                  path, ca->spec->name);
            } else if (rc == KP_OK && !handled) {
                item->action = KP_PKI_COMPLETED; /* sign its key with the CA here */
                item->new_cert = true;
            }
            return rc;
        }
    }
    char *text = NULL;
    size_t len = 0;
    struct kp_kubeconfig kubeconfig;
    enum kp_result rc = kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, err);
    if (rc != KP_OK) {
        return rc;
    }
    rc = kp_kubeconfig_parse(text, len, path, &kubeconfig, err);
    kp_secret_free(text, len);
    if (rc != KP_OK) {
        return rc;
    }
    rc = check_kubeconfig_ca(run, path, &kubeconfig, ca->cert, err);
    if (rc == KP_OK) {
        rc = check_kubeconfig_credentials(run, item, &kubeconfig, ca->cert, err);
    }
    if (rc == KP_OK && kubeconfig.server != NULL &&
        strcmp(kubeconfig.server, item->req.server) != 0) {
        kp_init_warn(run, "'%s' points at %s, expected %s (left as it is)", path,
                     kubeconfig.server, item->req.server);
    }
    if (rc == KP_OK) {
        warn_key_mode(run, path);
    }
    item->action = KP_PKI_REUSED;
    kp_kubeconfig_wipe(&kubeconfig);
    return rc;
}

/* ---- --join-from ---- */

/* Reads one file of the shared material: both trees' bytes must agree. */
static enum kp_result compare_with_ours(const char *ours, const char *theirs_path,
                                        const char *theirs, size_t theirs_len, bool secret,
                                        bool *present, struct kp_error *err)
{
    *present = kp_path_exists(ours);
    if (!*present) {
        return KP_OK;
    }
    char *mine = NULL;
    size_t mine_len = 0;
    enum kp_result rc = kp_file_read(ours, KP_PKI_FILE_MAX, &mine, &mine_len, err);
    if (rc == KP_OK && (theirs == NULL || mine_len != theirs_len ||
                        memcmp(mine, theirs, mine_len) != 0)) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' differs from '%s' in --join-from", ours,
                          theirs_path);
    }
    if (secret) {
        kp_secret_free(mine, mine_len);
    } else {
        free(mine);
    }
    return rc;
}

/* The shared rows come from the other node's tree, byte for byte, after the same checks the
 * rows get in a tree of our own. */
static enum kp_result inspect_shared(struct run *run, struct item *item,
                                     const struct kp_pki_config *source_config,
                                     struct kp_error *err)
{
    bool sa = item->spec->kind == KP_ART_SA;
    struct kp_cert_request source;
    struct kp_existing_pair theirs = {0};
    enum kp_result rc = kp_cert_resolve(item->spec, source_config, run->config->key_type, &source,
                                        err);
    /* For sa, the "certificate" half is sa.pub. */
    const char *source_public = sa ? source.extra_path : source.cert_path;
    const char *our_public = sa ? item->req.extra_path : item->req.cert_path;
    if (rc == KP_OK) {
        rc = kp_existing_pair_load(sa ? NULL : source_public, source.key_path, &theirs, err);
    }
    if (rc == KP_OK && sa && theirs.key_present && kp_path_exists(source_public)) {
        rc = validate_sa_pub(source_public, source.key_path, theirs.key, &theirs.cert_pem,
                             &theirs.cert_pem_len, err);
        theirs.cert_present = rc == KP_OK;
    } else if (rc == KP_OK && !sa && theirs.cert_present) {
        rc = validate_ca(source_public, source.key_path, sk_X509_value(theirs.certs, 0),
                         theirs.key, err);
    }
    if (rc == KP_OK && (!theirs.cert_present || (sa && !theirs.key_present))) {
        rc = kp_error_set(err, KP_ERR_NOT_FOUND, "--join-from: '%s' is missing",
                          theirs.cert_present ? source.key_path : source_public);
    }
    bool have_public = false, have_key = false;
    if (rc == KP_OK) {
        rc = compare_with_ours(our_public, source_public, theirs.cert_pem, theirs.cert_pem_len,
                               false, &have_public, err);
    }
    if (rc == KP_OK) {
        rc = compare_with_ours(item->req.key_path, source.key_path, theirs.key_pem,
                               theirs.key_pem_len, true, &have_key, err);
    }
    if (rc == KP_OK) {
        bool have_all = have_public && (!theirs.key_present || have_key);
        item->external = !sa && !theirs.key_present;
        item->action = have_all ? KP_PKI_REUSED : item->external ? KP_PKI_EXTERNAL
                                                                 : KP_PKI_COPIED;
        if (!have_all) {
            item->copy_cert_pem = theirs.cert_pem;
            item->copy_cert_len = theirs.cert_pem_len;
            theirs.cert_pem = NULL;
            if (theirs.key_present) {
                item->copy_key_pem = theirs.key_pem;
                item->copy_key_len = theirs.key_pem_len;
                theirs.key_pem = NULL;
            }
        }
        adopt_pair(item, &theirs);
    }
    kp_existing_pair_wipe(&theirs);
    kp_cert_request_wipe(&source);
    return rc;
}

/* ---- external CA: --csr-only, and completing from signed files ---- */

/* path with its last ".key" replaced by ext (".csr"). */
static void swap_extension(char *out, size_t size, const char *path, const char *ext)
{
    const char *dot = strrchr(path, '.');
    size_t stem = dot != NULL && strcmp(dot, ".key") == 0 ? (size_t)(dot - path) : strlen(path);
    snprintf(out, size, "%.*s%s", (int)stem, path, ext);
}

bool kp_init_csr_paths(const struct run *run, const struct item *item, char *key, char *csr,
                       char *crt, size_t size)
{
    switch (item->spec->kind) {
    case KP_ART_KUBELET_SERVING:
        if (run->config->kubelet_serving == KP_KUBELET_SERVING_SELF_SIGNED) {
            return false;
        }
        /* fall through */
    case KP_ART_CERT:
        snprintf(key, size, "%s", item->req.key_path);
        swap_extension(csr, size, item->req.key_path, ".csr");
        snprintf(crt, size, "%s", item->req.cert_path);
        return true;
    case KP_ART_KUBELET_CLIENT:
        snprintf(key, size, "%s/kubelet-client.key", item->req.extra_path);
        snprintf(csr, size, "%s/kubelet-client.csr", item->req.extra_path);
        snprintf(crt, size, "%s/kubelet-client.crt", item->req.extra_path);
        return true;
    case KP_ART_KUBECONFIG:
        if (item->spec->client != NULL) {
            return false;
        }
        snprintf(key, size, "%s", item->req.key_path); /* inside the kubeconfig */
        snprintf(csr, size, "%s.csr", item->req.key_path);
        snprintf(crt, size, "%s.crt", item->req.key_path);
        return true;
    default:
        return false;
    }
}

/* The key of a partial kubeconfig (client-key-data without a certificate), or NULL. */
static enum kp_result partial_kubeconfig_key(const char *path, EVP_PKEY **key, bool *partial,
                                             struct kp_error *err)
{
    *key = NULL;
    *partial = false;
    char *text = NULL;
    size_t len = 0;
    struct kp_kubeconfig kubeconfig;
    enum kp_result rc = kp_file_read(path, KP_PKI_FILE_MAX, &text, &len, err);
    if (rc == KP_OK) {
        rc = kp_kubeconfig_parse(text, len, path, &kubeconfig, err);
        kp_secret_free(text, len);
    }
    if (rc != KP_OK) {
        return rc;
    }
    *partial = kubeconfig.cert_data == NULL && kubeconfig.cert_file == NULL &&
               kubeconfig.token == NULL && kubeconfig.key_data != NULL;
    if (*partial) {
        rc = kp_key_from_pem((const char *)kubeconfig.key_data, kubeconfig.key_len, path, key,
                             err);
    }
    kp_kubeconfig_wipe(&kubeconfig);
    return rc;
}

/* --csr-only for one row with a request: keep or plan the key, keep or plan the CSR. */
static enum kp_result plan_request(struct run *run, struct item *item, struct kp_error *err)
{
    char key_path[KP_PATH_MAX], csr_path[KP_PATH_MAX], crt_path[KP_PATH_MAX];
    kp_init_csr_paths(run, item, key_path, csr_path, crt_path, sizeof(key_path));
    enum kp_result rc = KP_OK;
    if (item->spec->kind == KP_ART_KUBECONFIG) {
        bool partial = false;
        if (kp_path_exists(key_path)) {
            rc = partial_kubeconfig_key(key_path, &item->key, &partial, err);
            if (rc == KP_OK && !partial) {
                return kp_error_set(err, KP_ERR_CONFLICT, "'%s' exists and is not a partial "
                                    "kubeconfig of kpki's: move it away to get a new request",
                                    key_path);
            }
        }
    } else if (kp_path_exists(key_path)) {
        rc = kp_key_from_file(key_path, &item->key, err);
        warn_key_mode(run, key_path);
    }
    if (rc != KP_OK) {
        return rc;
    }
    item->new_key = item->write_key = item->key == NULL;
    item->action = KP_PKI_CSR;
    if (!kp_path_exists(csr_path)) {
        item->write_csr = true;
        return KP_OK;
    }
    if (item->key == NULL) {
        return kp_error_set(err, KP_ERR_CONFLICT, "'%s' exists without its key '%s'", csr_path,
                            key_path);
    }
    char *text = NULL;
    size_t len = 0;
    X509_REQ *csr = NULL;
    rc = kp_file_read(csr_path, KP_PKI_FILE_MAX, &text, &len, err);
    if (rc == KP_OK) {
        rc = kp_csr_from_pem(text, len, csr_path, &csr, err);
    }
    if (rc == KP_OK && !kp_key_public_equal(X509_REQ_get0_pubkey(csr), item->key)) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' does not match the key '%s'", csr_path,
                          key_path);
    }
    X509_REQ_free(csr);
    free(text);
    return rc;
}

/* --csr-only: nothing is signed here. CAs are used when present, never created. */
static enum kp_result inspect_csr_only(struct run *run, struct item *item, struct kp_error *err)
{
    const struct kp_cert_spec *spec = item->spec;
    if (spec->kind == KP_ART_CA) {
        struct kp_existing_pair pair;
        enum kp_result rc = kp_existing_pair_load(item->req.cert_path, NULL, &pair, err);
        if (rc == KP_OK && pair.cert_present) {
            rc = validate_ca(item->req.cert_path, item->req.key_path,
                             sk_X509_value(pair.certs, 0), NULL, err);
            item->external = !kp_path_exists(item->req.key_path);
            item->action = item->external ? KP_PKI_EXTERNAL : KP_PKI_REUSED;
            adopt_pair(item, &pair);
        } else if (rc == KP_OK) {
            item->skip = true;
            item->action = KP_PKI_SKIPPED;
        }
        kp_existing_pair_wipe(&pair);
        return rc;
    }
    if (spec->kind == KP_ART_SA) {
        return inspect_sa(run, item, err);
    }
    struct item *signer = kp_init_signer(run, item);
    char key_path[KP_PATH_MAX], csr_path[KP_PATH_MAX], crt_path[KP_PATH_MAX];
    if (!kp_init_csr_paths(run, item, key_path, csr_path, crt_path, sizeof(key_path))) {
        /* kubelet.conf (needs the CA's certificate), a self-signed kubelet serving pair. */
        if (signer != NULL && signer->cert == NULL) {
            item->skip = true;
            item->action = KP_PKI_SKIPPED;
            return KP_OK;
        }
        return spec->kind == KP_ART_KUBECONFIG ? inspect_kubeconfig(run, item, err)
                                               : inspect_leaf(run, item, err);
    }
    const char *main_path = spec->kind == KP_ART_KUBECONFIG ? item->req.key_path
                                                             : item->req.cert_path;
    bool partial = false;
    EVP_PKEY *unused = NULL;
    if (spec->kind == KP_ART_KUBECONFIG && kp_path_exists(main_path)) {
        enum kp_result rc = partial_kubeconfig_key(main_path, &unused, &partial, err);
        EVP_PKEY_free(unused);
        if (rc != KP_OK) {
            return rc;
        }
    }
    if (kp_path_exists(main_path) && !partial) {
        /* Signed already: checked like any existing file (when its CA is here to check). */
        if (signer != NULL && signer->cert == NULL) {
            kp_init_warn(run, "'%s' cannot be checked: its CA '%s' is not on this node",
                         main_path, signer->spec->name);
            item->action = KP_PKI_REUSED;
            return KP_OK;
        }
        return spec->kind == KP_ART_KUBECONFIG ? inspect_kubeconfig(run, item, err)
                                               : inspect_leaf(run, item, err);
    }
    return plan_request(run, item, err);
}

/* A certificate signed elsewhere and dropped in beside its request (crt_path), with its key
 * (item->key already loaded): checked, then used to complete the row. */
static enum kp_result take_signed(struct run *run, struct item *item, const char *crt_path,
                                  struct kp_error *err)
{
    struct item *signer = kp_init_signer(run, item);
    char *text = NULL;
    size_t len = 0;
    X509 *cert = NULL;
    enum kp_result rc = kp_file_read(crt_path, KP_PKI_FILE_MAX, &text, &len, err);
    if (rc == KP_OK) {
        rc = kp_cert_from_pem(text, len, crt_path, &cert, err);
    }
    free(text);
    if (rc == KP_OK) {
        rc = check_issued(run, item, crt_path, cert, item->key, signer->cert, signer->spec->name,
                          err);
    }
    if (rc != KP_OK) {
        X509_free(cert);
        return rc;
    }
    item->cert = cert;
    item->action = KP_PKI_COMPLETED;
    item->new_cert = item->issued = true;
    return KP_OK;
}

/* Completing a row whose certificate is missing when a request for it is on disk. Returns
 * KP_OK with *handled false when there is no request to complete from. */
static enum kp_result complete_from_request(struct run *run, struct item *item, bool *handled,
                                            struct kp_error *err)
{
    *handled = false;
    char key_path[KP_PATH_MAX], csr_path[KP_PATH_MAX], crt_path[KP_PATH_MAX];
    if (!kp_init_csr_paths(run, item, key_path, csr_path, crt_path, sizeof(key_path)) ||
        !kp_path_exists(csr_path)) {
        return KP_OK;
    }
    struct item *signer = kp_init_signer(run, item);
    *handled = true;
    enum kp_result rc = KP_OK;
    if (item->key == NULL && item->spec->kind != KP_ART_KUBECONFIG) {
        rc = kp_key_from_file(key_path, &item->key, err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    if (kp_path_exists(crt_path)) {
        return take_signed(run, item, crt_path, err);
    }
    if (signer != NULL && signer->external) {
        return kp_error_set(err, KP_ERR_CONFLICT,
                            "'%s' is still awaited: have CA '%s' sign '%s' and put the "
                            "certificate there",
                            crt_path, signer->spec->name, csr_path);
    }
    /* The CA is here after all: sign the request's key ourselves. */
    item->action = KP_PKI_COMPLETED;
    item->new_cert = true;
    item->new_key = item->write_key = false;
    return KP_OK;
}

/* ---- all rows ---- */

static enum kp_result inspect(struct run *run, struct item *item,
                              const struct kp_pki_config *source_config, struct kp_error *err)
{
    if (run->config->csr_only) {
        return inspect_csr_only(run, item, err);
    }
    if (source_config != NULL && (item->spec->flags & KP_SPEC_SHARED)) {
        return inspect_shared(run, item, source_config, err);
    }
    switch (item->spec->kind) {
    case KP_ART_CA:
        return inspect_ca(run, item, err);
    case KP_ART_CERT:
    case KP_ART_KUBELET_CLIENT:
    case KP_ART_KUBELET_SERVING:
        return inspect_leaf(run, item, err);
    case KP_ART_SA:
        return inspect_sa(run, item, err);
    case KP_ART_KUBECONFIG:
        return inspect_kubeconfig(run, item, err);
    }
    return kp_error_set(err, KP_ERR_INTERNAL, "unknown row kind");
}

enum kp_result kp_init_inspect_all(struct run *run, struct kp_error *err)
{
    const struct kp_pki_config *config = run->config;
    struct kp_pki_config source_config;
    const struct kp_pki_config *source = NULL;
    if (config->join_from != NULL && config->csr_only) {
        return kp_error_set(err, KP_ERR_INVALID, "--csr-only and --join-from cannot be combined");
    }
    if (config->join_from != NULL) {
        struct stat st;
        if (stat(config->join_from, &st) != 0 || !S_ISDIR(st.st_mode)) {
            return kp_error_set(err, KP_ERR_NOT_FOUND, "--join-from '%s' is not a directory",
                                config->join_from);
        }
        source_config = *config; /* shallow: only root differs, nothing is freed */
        source_config.root = config->join_from;
        source = &source_config;
    }
    size_t count = 0;
    const struct kp_cert_spec *specs = kp_cert_specs(&count);
    for (size_t i = 0; i < count && i < KP_INIT_MAX_ITEMS; i++) {
        struct item *item = &run->items[run->count++];
        enum kp_result rc = kp_cert_resolve(&specs[i], config, config->key_type, &item->req, err);
        item->spec = &specs[i];
        if (rc != KP_OK) {
            return rc;
        }
        if (source != NULL && (specs[i].flags & KP_SPEC_NOT_ON_JOIN)) {
            item->skip = true;
            item->action = KP_PKI_SKIPPED;
            continue;
        }
        rc = inspect(run, item, source, err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}
