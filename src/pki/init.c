/*
 * kpki init: build or complete the tree.
 *
 * Implementation notes
 *
 * 1. Lock. An exclusive flock on <root>/etc/kubernetes serialises concurrent runs, so the stale
 *    temporary files a killed run left can be removed safely.
 * 2. Inspect every row in table order (signers before what they sign) and decide, without
 *    writing anything: reuse, create, complete (a key without its certificate), copy (shared
 *    material from --join-from), or refuse (KP_ERR_CONFLICT naming the file and the problem).
 *    Rules (kubeadm's, ../shared/docs/k8s-pki-facts.md §3 "with pre-existing files", made
 *    stricter where a file could never work): a CA needs a matching key and CA:TRUE; a CA
 *    certificate without its key is external and everything it signs must already exist; a
 *    certificate needs its key, a valid signature by its CA and every required SAN; a
 *    kubeconfig needs the CA on disk and, if embedded, a client certificate from that CA.
 *    Expiry and CN/O/EKU differences are warnings, as in kubeadm.
 * 3. Generate every new key at once (parallel for RSA), then issue certificates in table order.
 * 4. Stage every new file into one batch and commit it: nothing is written unless everything
 *    is ready, and a kill at any moment leaves each file absent or complete. Within the batch a
 *    key precedes its certificate, and the kubelet's pem precedes its symlink, so any prefix of
 *    the renames is a state the next run completes (a key without a certificate gets one).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pki/pki.h"

#define BACKDATE_SECONDS (5 * 60)          /* kubeadm CertificateBackdate */
#define SELF_SIGNED_BACKDATE_SECONDS 3600  /* client-go GenerateSelfSignedCertKey */
#define MAX_ITEMS 32

struct item {
    const struct kp_cert_spec *spec;
    struct kp_cert_request req;
    enum kp_pki_action action;
    bool skip;          /* not on this node */
    bool external;      /* CA certificate without key */
    bool new_key;       /* key to generate */
    bool new_cert;      /* certificate (or kubeconfig, or sa.pub) to create */
    bool write_key;     /* the key file must be written (new, or copied) */
    bool issued;        /* new_cert already made (a re-issued CA, needed while inspecting) */
    EVP_PKEY *key;      /* owned */
    X509 *cert;         /* owned: the leaf (or CA) certificate, existing or new */
    X509 *self_ca;      /* owned: the kubelet's own CA (self-signed serving mode) */
    EVP_PKEY *self_ca_key;
    char *copy_cert_pem; /* owned: --join-from bytes written verbatim */
    size_t copy_cert_len;
    char *copy_key_pem;  /* owned, secret */
    size_t copy_key_len;
};

struct run {
    const struct kp_pki_config *config;
    const struct kp_pki_hooks *hooks;
    struct kp_pki_report *report;
    int64_t now;
    struct item items[MAX_ITEMS];
    size_t count;
    char root_real[KP_PATH_MAX];
    int lock_fd;
};

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void warn(struct run *run, const char *fmt, ...) KP_PRINTF(2, 3);

static void warn(struct run *run, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (kp_strlist_add(&run->report->warnings, message, NULL) != KP_OK) {
        kp_log_warn("%s", message);
    }
}

static void item_wipe(struct item *item)
{
    kp_cert_request_wipe(&item->req);
    EVP_PKEY_free(item->key);
    X509_free(item->cert);
    X509_free(item->self_ca);
    EVP_PKEY_free(item->self_ca_key);
    free(item->copy_cert_pem);
    kp_secret_free(item->copy_key_pem, item->copy_key_len);
    memset(item, 0, sizeof(*item));
}

static struct item *find_item(struct run *run, const char *name)
{
    for (size_t i = 0; i < run->count; i++) {
        if (strcmp(run->items[i].spec->name, name) == 0) {
            return &run->items[i];
        }
    }
    return NULL;
}

/* The signer of item, or NULL for rows without one (and self-signed kubelet serving). */
static struct item *signer_of(struct run *run, const struct item *item)
{
    if (item->spec->ca == NULL) {
        return NULL;
    }
    if (item->spec->kind == KP_ART_KUBELET_SERVING &&
        run->config->kubelet_serving == KP_KUBELET_SERVING_SELF_SIGNED) {
        return NULL;
    }
    return find_item(run, item->spec->ca);
}

/* ---- step 1: directories and the lock ---- */

static const char *const tree_dirs[] = {KP_KUBECONFIG_DIR, KP_PKI_DIR, KP_PKI_DIR "/etcd",
                                        KP_KUBELET_PKI_DIR};

static enum kp_result prepare_root(struct run *run, struct kp_error *err)
{
    const char *root = run->config->root;
    for (size_t i = 0; i < sizeof(tree_dirs) / sizeof(tree_dirs[0]); i++) {
        char dir[KP_PATH_MAX];
        enum kp_result rc = kp_path_join(dir, sizeof(dir), root, tree_dirs[i], err);
        if (rc == KP_OK) {
            rc = kp_file_mkdirs(dir, 0755, err);
        }
        if (rc != KP_OK) {
            return rc;
        }
    }
    if (realpath(root, run->root_real) == NULL) {
        return kp_error_errno(err, errno, "cannot resolve --root '%s'", root);
    }
    char lock_dir[KP_PATH_MAX];
    enum kp_result rc = kp_path_join(lock_dir, sizeof(lock_dir), root, KP_KUBECONFIG_DIR, err);
    if (rc != KP_OK) {
        return rc;
    }
    run->lock_fd = open(lock_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (run->lock_fd < 0) {
        return kp_error_errno(err, errno, "cannot open '%s'", lock_dir);
    }
    if (flock(run->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        return kp_error_set(err, KP_ERR_CONFLICT,
                            "another kpki is working on '%s' (it holds the lock on '%s')", root,
                            lock_dir);
    }
    for (size_t i = 0; i < sizeof(tree_dirs) / sizeof(tree_dirs[0]); i++) {
        char dir[KP_PATH_MAX];
        if (kp_path_join(dir, sizeof(dir), root, tree_dirs[i], NULL) == KP_OK) {
            int removed = kp_file_remove_stale_temps(dir);
            if (removed > 0) {
                kp_log_info("removed %d temporary file(s) an interrupted run left in '%s'",
                            removed, dir);
            }
        }
    }
    return KP_OK;
}

/* ---- step 2: inspect ---- */

static enum kp_result issue(struct run *run, struct item *item, struct kp_error *err);

static bool same_cert(X509 *a, X509 *b)
{
    return a != NULL && b != NULL && X509_cmp(a, b) == 0;
}

/* Signature (and chain) check of cert against its signer's certificate, ignoring validity. */
static enum kp_result check_signed_by(struct run *run, const char *path, X509 *cert,
                                      X509 *signer, const char *signer_name,
                                      struct kp_error *err)
{
    (void)run;
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
        warn(run, "'%s' expired at %s; reused as it is (renew it)", path, when);
    } else if (not_before > run->now) {
        kp_time_format_rfc3339(not_before, when, sizeof(when));
        warn(run, "'%s' is not valid before %s", path, when);
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

static void warn_identity(struct run *run, const struct item *item, const char *path, X509 *cert)
{
    char cn[256];
    kp_cert_common_name(cert, cn, sizeof(cn));
    bool self_signed_kubelet = item->spec->kind == KP_ART_KUBELET_SERVING &&
                               run->config->kubelet_serving == KP_KUBELET_SERVING_SELF_SIGNED;
    if (!self_signed_kubelet && strcmp(cn, item->req.common_name) != 0) {
        warn(run, "'%s' has CN '%s', expected '%s'", path, cn, item->req.common_name);
    }
    bool has_eku = false;
    unsigned eku = kp_cert_ext_key_usage(cert, &has_eku);
    if (item->req.ext_key_usage != 0 && has_eku &&
        (eku & item->req.ext_key_usage) != item->req.ext_key_usage) {
        warn(run, "'%s' lacks an extended key usage its role needs (%s%s)", path,
             (item->req.ext_key_usage & KP_EKU_SERVER_AUTH) ? "serverAuth " : "",
             (item->req.ext_key_usage & KP_EKU_CLIENT_AUTH) ? "clientAuth" : "");
    }
}

/* Takes ownership of the pair's objects into the item. */
static void adopt_pair(struct item *item, struct kp_existing_pair *pair)
{
    if (pair->certs != NULL && sk_X509_num(pair->certs) > 0) {
        item->cert = sk_X509_shift(pair->certs);
        if (sk_X509_num(pair->certs) > 0) {
            item->self_ca = sk_X509_shift(pair->certs);
        }
    }
    item->key = pair->key;
    pair->key = NULL;
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
    if (cert != NULL && !kp_cert_is_ca(cert)) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' is not a CA certificate (no CA:TRUE)",
                          cert_path);
    } else if (cert != NULL && pair.key_present && !kp_cert_matches_key(cert, pair.key)) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' does not match the CA certificate '%s'",
                          key_path, cert_path);
    } else if (cert != NULL && pair.key_present) {
        item->action = KP_PKI_REUSED;
        warn_validity(run, cert_path, cert);
    } else if (cert != NULL) {
        item->action = KP_PKI_EXTERNAL;
        item->external = true;
        warn_validity(run, cert_path, cert);
    } else if (pair.key_present) {
        /* An interrupted run renamed the key but not the certificate: same key, same
         * subject, so anything already signed by it still chains. */
        item->action = KP_PKI_COMPLETED;
        item->new_cert = true;
    } else {
        item->action = KP_PKI_CREATED;
        item->new_key = item->new_cert = item->write_key = true;
    }
    if (rc == KP_OK) {
        adopt_pair(item, &pair);
    }
    kp_existing_pair_wipe(&pair);
    /* Re-issue now: the certificates this CA signed are checked against it next. */
    if (rc == KP_OK && item->action == KP_PKI_COMPLETED) {
        rc = issue(run, item, err);
        if (rc == KP_OK) {
            rc = kp_cert_reload(&item->cert, err); /* it is an anchor: see kp_cert_issue */
        }
        item->issued = rc == KP_OK;
    }
    return rc;
}

static enum kp_result inspect_leaf(struct run *run, struct item *item, struct kp_error *err)
{
    const char *cert_path = item->req.cert_path;
    const char *key_path = item->req.key_path;
    struct stat st;
    if (item->spec->kind == KP_ART_KUBELET_CLIENT && lstat(cert_path, &st) == 0 &&
        stat(cert_path, &st) != 0) {
        warn(run, "'%s' is a dangling symlink; a new kubelet client certificate replaces it",
             cert_path);
        cert_path = key_path = NULL;
    }
    struct kp_existing_pair pair;
    enum kp_result rc = kp_existing_pair_load(cert_path, key_path, &pair, err);
    if (rc != KP_OK) {
        return rc;
    }
    struct item *signer = signer_of(run, item);
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
        } else if (!kp_cert_matches_key(cert, pair.key)) {
            rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' does not match the key '%s'", cert_path,
                              key_path);
        } else if (anchor == NULL) {
            rc = kp_error_set(err, KP_ERR_CONFLICT,
                              "'%s' holds no CA certificate after the serving certificate "
                              "(expected in --kubelet-serving self-signed mode)",
                              cert_path);
        } else {
            rc = check_signed_by(run, cert_path, cert, anchor, anchor_name, err);
        }
        if (rc == KP_OK) {
            rc = check_sans(item, cert_path, cert, err);
        }
        if (rc == KP_OK) {
            item->action = KP_PKI_REUSED;
            warn_validity(run, cert_path, cert);
            warn_identity(run, item, cert_path, cert);
        }
    } else {
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

static enum kp_result inspect_sa(struct run *run, struct item *item, struct kp_error *err)
{
    (void)run;
    struct kp_existing_pair pair;
    enum kp_result rc = kp_existing_pair_load(NULL, item->req.key_path, &pair, err);
    if (rc != KP_OK) {
        return rc;
    }
    bool pub_present = kp_path_exists(item->req.extra_path);
    if (pair.key_present && pub_present) {
        char *text = NULL;
        size_t len = 0;
        EVP_PKEY *pub = NULL;
        rc = kp_file_read(item->req.extra_path, KP_PKI_FILE_MAX, &text, &len, err);
        if (rc == KP_OK) {
            rc = kp_pubkey_from_pem(text, len, item->req.extra_path, &pub, err);
        }
        if (rc == KP_OK && !kp_key_public_equal(pub, pair.key)) {
            rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' is not the public half of '%s'",
                              item->req.extra_path, item->req.key_path);
        }
        EVP_PKEY_free(pub);
        free(text);
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
    if (rc == KP_OK) {
        adopt_pair(item, &pair);
    }
    kp_existing_pair_wipe(&pair);
    return rc;
}

/* Compares a kubeconfig's CA data with the CA certificate on disk. */
static enum kp_result check_kubeconfig_ca(struct run *run, const char *path,
                                          const struct kp_kubeconfig *kubeconfig, X509 *ca,
                                          struct kp_error *err)
{
    if (kubeconfig->ca_data == NULL) {
        return kp_error_set(err, KP_ERR_CONFLICT,
                            "'%s' has no certificate-authority-data; kpki embeds the CA", path);
    }
    X509 *embedded = NULL;
    enum kp_result rc = kp_cert_from_pem((const char *)kubeconfig->ca_data, kubeconfig->ca_len,
                                         path, &embedded, err);
    if (rc == KP_OK && !same_cert(embedded, ca)) {
        bool same_ca = X509_NAME_cmp(X509_get_subject_name(embedded),
                                     X509_get_subject_name(ca)) == 0 &&
                       kp_key_public_equal(X509_get0_pubkey(embedded), X509_get0_pubkey(ca));
        if (same_ca) {
            /* ca.crt was re-issued from the same key: the embedded copy still verifies
             * everything the CA signs, so the kubeconfig works; kubeadm would refuse it. */
            warn(run, "'%s' embeds an earlier certificate of the same CA key; left as it is",
                 path);
        } else {
            /* kubeadm's message for the same condition. */
            rc = kp_error_set(err, KP_ERR_CONFLICT,
                              "'%s' exists already but has got the wrong CA cert", path);
        }
    }
    X509_free(embedded);
    return rc;
}

static enum kp_result check_kubeconfig_client(struct run *run, struct item *item,
                                              const struct kp_kubeconfig *kubeconfig, X509 *ca,
                                              struct kp_error *err)
{
    const char *path = item->req.key_path;
    if (kubeconfig->cert_data == NULL) {
        return KP_OK; /* by reference (kubelet.conf) or token: checked elsewhere */
    }
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    enum kp_result rc = kp_cert_from_pem((const char *)kubeconfig->cert_data,
                                         kubeconfig->cert_len, path, &cert, err);
    if (rc == KP_OK && kubeconfig->key_data == NULL) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' has a client certificate but no "
                          "client-key-data", path);
    }
    if (rc == KP_OK) {
        rc = kp_key_from_pem((const char *)kubeconfig->key_data, kubeconfig->key_len, path, &key,
                             err);
    }
    if (rc == KP_OK && !kp_cert_matches_key(cert, key)) {
        rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s': client-key-data does not match "
                          "client-certificate-data", path);
    }
    if (rc == KP_OK) {
        rc = check_signed_by(run, path, cert, ca, "ca", err);
    }
    if (rc == KP_OK) {
        warn_validity(run, path, cert);
        warn_identity(run, item, path, cert);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static enum kp_result kubelet_client_link(const struct run *run, char *out, size_t size,
                                          struct kp_error *err)
{
    return kp_path_join(out, size, run->root_real,
                        KP_KUBELET_PKI_DIR "/kubelet-client-current.pem", err);
}

static enum kp_result inspect_kubeconfig(struct run *run, struct item *item,
                                         struct kp_error *err)
{
    const char *path = item->req.key_path;
    struct item *ca = signer_of(run, item);
    if (!kp_path_exists(path)) {
        item->action = KP_PKI_CREATED;
        item->new_cert = true;
        item->new_key = item->write_key = item->spec->client == NULL;
        if (ca->external) {
            return kp_error_set(err, KP_ERR_CONFLICT,
                                "cannot create '%s': its CA '%s' is external (its key is "
                                "absent); provide the kubeconfig",
                                item->req.rel_path, ca->spec->name);
        }
        return KP_OK;
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
        rc = check_kubeconfig_client(run, item, &kubeconfig, ca->cert, err);
    }
    if (rc == KP_OK && kubeconfig.server != NULL &&
        strcmp(kubeconfig.server, item->req.server) != 0) {
        warn(run, "'%s' points at %s, expected %s (left as it is)", path, kubeconfig.server,
             item->req.server);
    }
    char expected_link[KP_PATH_MAX];
    if (rc == KP_OK && item->spec->client != NULL &&
        kubelet_client_link(run, expected_link, sizeof(expected_link), err) == KP_OK &&
        (kubeconfig.cert_file == NULL || strcmp(kubeconfig.cert_file, expected_link) != 0)) {
        warn(run, "'%s' does not use the kubelet's rotating certificate '%s'", path,
             expected_link);
    }
    item->action = KP_PKI_REUSED;
    kp_kubeconfig_wipe(&kubeconfig);
    return rc;
}

/* --join-from: the shared rows come from the other node's tree, byte for byte. */
static enum kp_result inspect_shared(struct run *run, struct item *item,
                                     const struct kp_pki_config *source_config,
                                     struct kp_error *err)
{
    struct kp_cert_request source;
    enum kp_result rc = kp_cert_resolve(item->spec, source_config, run->config->key_type, &source,
                                        err);
    struct kp_existing_pair theirs = {0};
    const char *source_cert = item->spec->kind == KP_ART_SA ? source.extra_path : source.cert_path;
    const char *our_cert = item->spec->kind == KP_ART_SA ? item->req.extra_path
                                                          : item->req.cert_path;
    if (rc == KP_OK) {
        rc = kp_existing_pair_load(item->spec->kind == KP_ART_SA ? NULL : source_cert,
                                   source.key_path, &theirs, err);
    }
    if (rc == KP_OK && item->spec->kind == KP_ART_SA && kp_path_exists(source_cert)) {
        rc = kp_file_read(source_cert, KP_PKI_FILE_MAX, &theirs.cert_pem, &theirs.cert_pem_len,
                          err);
        theirs.cert_present = rc == KP_OK;
    }
    if (rc == KP_OK && (!theirs.cert_present || (item->spec->kind == KP_ART_SA &&
                                                 !theirs.key_present))) {
        rc = kp_error_set(err, KP_ERR_NOT_FOUND, "--join-from: '%s' is missing",
                          theirs.cert_present ? source.key_path : source_cert);
    }
    /* What we hold already must be identical to theirs. */
    char *mine = NULL;
    size_t mine_len = 0;
    if (rc == KP_OK && kp_path_exists(our_cert)) {
        rc = kp_file_read(our_cert, KP_PKI_FILE_MAX, &mine, &mine_len, err);
        if (rc == KP_OK && (mine_len != theirs.cert_pem_len ||
                            memcmp(mine, theirs.cert_pem, mine_len) != 0)) {
            rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' differs from '%s' in --join-from",
                              our_cert, source_cert);
        }
    }
    free(mine);
    mine = NULL;
    if (rc == KP_OK && kp_path_exists(item->req.key_path)) {
        rc = kp_file_read(item->req.key_path, KP_PKI_FILE_MAX, &mine, &mine_len, err);
        if (rc == KP_OK && (!theirs.key_present || mine_len != theirs.key_pem_len ||
                            memcmp(mine, theirs.key_pem, mine_len) != 0)) {
            rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' differs from '%s' in --join-from",
                              item->req.key_path, source.key_path);
        }
        kp_secret_free(mine, mine_len);
    }
    if (rc == KP_OK) {
        bool have_all = kp_path_exists(our_cert) &&
                        (!theirs.key_present || kp_path_exists(item->req.key_path));
        item->action = have_all ? KP_PKI_REUSED : KP_PKI_COPIED;
        item->external = item->spec->kind == KP_ART_CA && !theirs.key_present;
        if (item->external && item->action == KP_PKI_COPIED) {
            item->action = KP_PKI_EXTERNAL;
        }
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

static enum kp_result inspect(struct run *run, struct item *item,
                              const struct kp_pki_config *source_config, struct kp_error *err)
{
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

static enum kp_result inspect_all(struct run *run, struct kp_error *err)
{
    const struct kp_pki_config *config = run->config;
    struct kp_pki_config source_config;
    const struct kp_pki_config *source = NULL;
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
    for (size_t i = 0; i < count; i++) {
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

/* ---- step 3: keys and certificates ---- */

static enum kp_result generate_keys(struct run *run, struct kp_error *err)
{
    struct kp_key_job jobs[MAX_ITEMS * 2];
    EVP_PKEY **targets[MAX_ITEMS * 2];
    size_t count = 0;
    bool self_signed = run->config->kubelet_serving == KP_KUBELET_SERVING_SELF_SIGNED;
    for (size_t i = 0; i < run->count; i++) {
        struct item *item = &run->items[i];
        if (item->skip || !item->new_key) {
            continue;
        }
        jobs[count].type = run->config->key_type;
        targets[count++] = &item->key;
        if (item->spec->kind == KP_ART_KUBELET_SERVING && self_signed) {
            jobs[count].type = run->config->key_type;
            targets[count++] = &item->self_ca_key;
        }
    }
    double started = monotonic_seconds();
    enum kp_result rc = kp_keypool_generate(jobs, count, run->config->key_threads, run->hooks,
                                            err);
    run->report->keygen_seconds = monotonic_seconds() - started;
    run->report->keys_generated = rc == KP_OK ? count : 0;
    for (size_t i = 0; rc == KP_OK && i < count; i++) {
        *targets[i] = jobs[i].key;
    }
    return rc;
}

static enum kp_result issue_self_signed_kubelet(struct run *run, struct item *item,
                                                struct kp_error *err)
{
    /* client-go GenerateSelfSignedCertKey: "<host>-ca@<unix>" signs "<host>@<unix>". */
    const struct kp_pki_config *config = run->config;
    char ca_name[300];
    char leaf_name[300];
    snprintf(ca_name, sizeof(ca_name), "%s-ca@%lld", config->node_name, (long long)run->now);
    snprintf(leaf_name, sizeof(leaf_name), "%s@%lld", config->node_name, (long long)run->now);
    int64_t not_before = run->now - SELF_SIGNED_BACKDATE_SECONDS;
    int64_t not_after = not_before + config->cert_validity;
    struct kp_cert_template ca_template = {
        .common_name = ca_name,
        .is_ca = true,
        .key_usage = KP_KU_DIGITAL_SIGNATURE | KP_KU_KEY_ENCIPHERMENT | KP_KU_CERT_SIGN,
        .not_before = not_before,
        .not_after = not_after,
    };
    enum kp_result rc = kp_cert_issue(&ca_template, item->self_ca_key, NULL, NULL,
                                      &item->self_ca, err);
    if (rc != KP_OK) {
        return rc;
    }
    struct kp_cert_template leaf;
    kp_cert_request_template(&item->req, not_before, not_after, &leaf);
    leaf.common_name = leaf_name;
    leaf.organization_count = 0;
    return kp_cert_issue(&leaf, item->key, item->self_ca, item->self_ca_key, &item->cert, err);
}

static enum kp_result issue(struct run *run, struct item *item, struct kp_error *err)
{
    if (item->spec->kind == KP_ART_SA || item->spec->client != NULL) {
        return KP_OK; /* no certificate of its own */
    }
    if (item->spec->kind == KP_ART_KUBELET_SERVING &&
        run->config->kubelet_serving == KP_KUBELET_SERVING_SELF_SIGNED) {
        return issue_self_signed_kubelet(run, item, err);
    }
    int64_t not_before = run->now - BACKDATE_SECONDS;
    int64_t not_after = run->now + item->req.validity;
    struct item *signer = signer_of(run, item);
    if (signer != NULL) {
        int64_t ca_not_after = kp_cert_not_after(signer->cert);
        if (not_after > ca_not_after) {
            char when[32];
            kp_time_format_rfc3339(ca_not_after, when, sizeof(when));
            warn(run, "'%s' would outlive its CA '%s'; its validity ends with the CA's at %s",
                 item->req.rel_path, signer->spec->name, when);
            not_after = ca_not_after;
        }
        if (not_after <= run->now) {
            return kp_error_set(err, KP_ERR_CONFLICT, "cannot issue '%s': its CA '%s' has "
                                "expired", item->req.rel_path, signer->spec->name);
        }
    }
    struct kp_cert_template tmpl;
    kp_cert_request_template(&item->req, not_before, not_after, &tmpl);
    X509_free(item->cert);
    item->cert = NULL;
    return kp_cert_issue(&tmpl, item->key, signer != NULL ? signer->cert : NULL,
                         signer != NULL ? signer->key : NULL, &item->cert, err);
}

static enum kp_result issue_all(struct run *run, struct kp_error *err)
{
    for (size_t i = 0; i < run->count; i++) {
        struct item *item = &run->items[i];
        if (item->skip || !item->new_cert || item->issued) {
            continue;
        }
        enum kp_result rc = issue(run, item, err);
        if (rc != KP_OK) {
            return kp_error_prefix(err, "%s", item->spec->name);
        }
    }
    return KP_OK;
}

/* ---- step 4: stage and commit ---- */

static enum kp_result add_pem_key(struct kp_file_batch *batch, const char *path, EVP_PKEY *key,
                                  struct kp_error *err)
{
    char *pem = NULL;
    size_t len = 0;
    enum kp_result rc = kp_key_to_pem(key, &pem, &len, err);
    if (rc == KP_OK) {
        rc = kp_file_batch_add(batch, path, pem, len, 0600, err);
    }
    kp_secret_free(pem, len);
    return rc;
}

/* Appends cert's PEM to *text (growing it). */
static enum kp_result append_cert_pem(char **text, size_t *len, X509 *cert, struct kp_error *err)
{
    char *pem = NULL;
    size_t pem_len = 0;
    enum kp_result rc = kp_cert_to_pem(cert, &pem, &pem_len, err);
    if (rc != KP_OK) {
        return rc;
    }
    char *grown = realloc(*text, *len + pem_len + 1);
    if (grown == NULL) {
        free(pem);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    memcpy(grown + *len, pem, pem_len + 1);
    *text = grown;
    *len += pem_len;
    free(pem);
    return KP_OK;
}

static enum kp_result add_pem_certs(struct kp_file_batch *batch, const char *path, X509 *cert,
                                    X509 *chain, struct kp_error *err)
{
    char *text = NULL;
    size_t len = 0;
    enum kp_result rc = append_cert_pem(&text, &len, cert, err);
    if (rc == KP_OK && chain != NULL) {
        rc = append_cert_pem(&text, &len, chain, err);
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_add(batch, path, text, len, 0644, err);
    }
    free(text);
    return rc;
}

static enum kp_result stage_pair(struct kp_file_batch *batch, const struct item *item,
                                 struct kp_error *err)
{
    if (item->copy_cert_pem != NULL) {
        enum kp_result rc = KP_OK;
        if (item->copy_key_pem != NULL) {
            rc = kp_file_batch_add(batch, item->req.key_path, item->copy_key_pem,
                                   item->copy_key_len, 0600, err);
        }
        const char *cert_path = item->spec->kind == KP_ART_SA ? item->req.extra_path
                                                               : item->req.cert_path;
        mode_t cert_mode = item->spec->kind == KP_ART_SA ? 0600 : 0644;
        return rc != KP_OK ? rc
                           : kp_file_batch_add(batch, cert_path, item->copy_cert_pem,
                                               item->copy_cert_len, cert_mode, err);
    }
    enum kp_result rc = KP_OK;
    if (item->write_key) {
        rc = add_pem_key(batch, item->req.key_path, item->key, err);
    }
    if (rc == KP_OK && item->new_cert) {
        rc = add_pem_certs(batch, item->req.cert_path, item->cert, item->self_ca, err);
    }
    return rc;
}

static enum kp_result stage_sa(struct kp_file_batch *batch, const struct item *item,
                               struct kp_error *err)
{
    if (item->copy_cert_pem != NULL) {
        return stage_pair(batch, item, err);
    }
    enum kp_result rc = KP_OK;
    if (item->write_key) {
        rc = add_pem_key(batch, item->req.key_path, item->key, err);
    }
    if (rc == KP_OK && item->new_cert) {
        char *pem = NULL;
        size_t len = 0;
        rc = kp_pubkey_to_pem(item->key, &pem, &len, err);
        if (rc == KP_OK) {
            /* client-go keyutil.WriteKey: sa.pub is written 0600 too. */
            rc = kp_file_batch_add(batch, item->req.extra_path, pem, len, 0600, err);
        }
        free(pem);
    }
    return rc;
}

static enum kp_result stage_kubelet_client(struct run *run, struct kp_file_batch *batch,
                                           const struct item *item, struct kp_error *err)
{
    /* client-go certificate store: <prefix>-YYYY-MM-DD-HH-MM-SS.pem in local time, certificate
     * blocks then the key, 0600; then <prefix>-current.pem -> that file. */
    time_t now = (time_t)run->now;
    struct tm local;
    localtime_r(&now, &local);
    char name[96];
    strftime(name, sizeof(name), "kubelet-client-%Y-%m-%d-%H-%M-%S.pem", &local);
    char path[KP_PATH_MAX];
    enum kp_result rc = kp_path_join(path, sizeof(path), item->req.extra_path, name, err);
    char *text = NULL;
    size_t len = 0;
    char *key_pem = NULL;
    size_t key_len = 0;
    if (rc == KP_OK) {
        rc = append_cert_pem(&text, &len, item->cert, err);
    }
    if (rc == KP_OK) {
        rc = kp_key_to_pem(item->key, &key_pem, &key_len, err);
    }
    if (rc == KP_OK) {
        char *joined = realloc(text, len + key_len + 1);
        if (joined == NULL) {
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        } else {
            text = joined;
            memcpy(text + len, key_pem, key_len + 1);
            len += key_len;
        }
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_add(batch, path, text, len, 0600, err);
    }
    if (rc == KP_OK) {
        /* Relative target: the tree keeps working when copied or moved. */
        rc = kp_file_batch_add_symlink(batch, item->req.cert_path, name, err);
    }
    kp_secret_free(text, len);
    kp_secret_free(key_pem, key_len);
    return rc;
}

static enum kp_result stage_kubeconfig(struct run *run, struct kp_file_batch *batch,
                                       const struct item *item, struct kp_error *err)
{
    const struct item *ca = signer_of(run, item);
    char *ca_pem = NULL, *cert_pem = NULL, *key_pem = NULL, *yaml = NULL;
    size_t ca_len = 0, cert_len = 0, key_len = 0, yaml_len = 0;
    char context[600];
    char link[KP_PATH_MAX];
    snprintf(context, sizeof(context), "%s@%s", item->req.common_name,
             run->config->cluster_name);
    struct kp_kubeconfig kubeconfig = {
        .cluster_name = run->config->cluster_name,
        .server = (char *)item->req.server,
        .user_name = (char *)item->req.common_name,
        .context_name = context,
    };
    enum kp_result rc = kp_cert_to_pem(ca->cert, &ca_pem, &ca_len, err);
    if (rc == KP_OK && item->spec->client != NULL) {
        rc = kubelet_client_link(run, link, sizeof(link), err);
        kubeconfig.cert_file = kubeconfig.key_file = link;
    } else if (rc == KP_OK) {
        rc = kp_cert_to_pem(item->cert, &cert_pem, &cert_len, err);
        if (rc == KP_OK) {
            rc = kp_key_to_pem(item->key, &key_pem, &key_len, err);
        }
    }
    kubeconfig.ca_data = (unsigned char *)ca_pem;
    kubeconfig.ca_len = ca_len;
    kubeconfig.cert_data = (unsigned char *)cert_pem;
    kubeconfig.cert_len = cert_len;
    kubeconfig.key_data = (unsigned char *)key_pem;
    kubeconfig.key_len = key_len;
    if (rc == KP_OK) {
        rc = kp_kubeconfig_render(&kubeconfig, &yaml, &yaml_len, err);
    }
    if (rc == KP_OK) {
        /* clientcmd.WriteToFile: 0600. */
        rc = kp_file_batch_add(batch, item->req.key_path, yaml, yaml_len, 0600, err);
    }
    free(ca_pem);
    free(cert_pem);
    kp_secret_free(key_pem, key_len);
    kp_secret_free(yaml, yaml_len);
    return rc;
}

static enum kp_result stage_all(struct run *run, struct kp_file_batch *batch,
                                struct kp_error *err)
{
    for (size_t i = 0; i < run->count; i++) {
        const struct item *item = &run->items[i];
        if (item->skip || (!item->new_cert && !item->write_key && item->copy_cert_pem == NULL)) {
            continue;
        }
        enum kp_result rc = KP_OK;
        switch (item->spec->kind) {
        case KP_ART_CA:
        case KP_ART_CERT:
        case KP_ART_KUBELET_SERVING:
            rc = stage_pair(batch, item, err);
            break;
        case KP_ART_SA:
            rc = stage_sa(batch, item, err);
            break;
        case KP_ART_KUBELET_CLIENT:
            rc = stage_kubelet_client(run, batch, item, err);
            break;
        case KP_ART_KUBECONFIG:
            rc = stage_kubeconfig(run, batch, item, err);
            break;
        }
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

/* ---- report ---- */

static void describe_subject(X509 *cert, char *out, size_t size)
{
    char cn[256];
    kp_cert_common_name(cert, cn, sizeof(cn));
    struct kp_strlist orgs = {0};
    int used = snprintf(out, size, "CN=%s", cn);
    if (kp_cert_organizations(cert, &orgs, NULL) == KP_OK) {
        for (size_t i = 0; i < orgs.count && used > 0 && (size_t)used < size; i++) {
            used += snprintf(out + used, size - (size_t)used, ",O=%s", orgs.items[i]);
        }
    }
    kp_strlist_wipe(&orgs);
}

static enum kp_result fill_report(struct run *run, struct kp_error *err)
{
    struct kp_pki_report *report = run->report;
    report->entries = calloc(run->count, sizeof(*report->entries));
    if (report->entries == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    for (size_t i = 0; i < run->count; i++) {
        const struct item *item = &run->items[i];
        struct kp_pki_report_entry *entry = &report->entries[report->count++];
        snprintf(entry->name, sizeof(entry->name), "%s", item->spec->name);
        snprintf(entry->path, sizeof(entry->path), "%s", item->req.rel_path);
        entry->action = item->action;
        X509 *cert = item->cert;
        if (item->spec->client != NULL) {
            const struct item *client = find_item(run, item->spec->client);
            cert = client != NULL ? client->cert : NULL;
        }
        if (cert != NULL) {
            describe_subject(cert, entry->subject, sizeof(entry->subject));
            entry->not_after = kp_cert_not_after(cert);
        }
        EVP_PKEY *key = item->key;
        if (key == NULL && cert != NULL) {
            key = X509_get0_pubkey(cert);
        }
        if (key != NULL) {
            kp_key_describe(key, entry->key, sizeof(entry->key));
        }
    }
    return KP_OK;
}

const char *kp_pki_action_name(enum kp_pki_action action)
{
    switch (action) {
    case KP_PKI_CREATED:
        return "created";
    case KP_PKI_REUSED:
        return "reused";
    case KP_PKI_COMPLETED:
        return "completed";
    case KP_PKI_COPIED:
        return "copied";
    case KP_PKI_EXTERNAL:
        return "external";
    case KP_PKI_SKIPPED:
        return "skipped";
    }
    return "?";
}

void kp_pki_report_wipe(struct kp_pki_report *report)
{
    free(report->entries);
    kp_strlist_wipe(&report->warnings);
    memset(report, 0, sizeof(*report));
}

enum kp_result kp_pki_init(const struct kp_pki_config *config, const struct kp_clock *clock,
                           const struct kp_pki_hooks *hooks, struct kp_pki_report *report,
                           struct kp_error *err)
{
    memset(report, 0, sizeof(*report));
    if (!config->finalized) {
        return kp_error_set(err, KP_ERR_INTERNAL, "kp_pki_init: config not finalized");
    }
    double started = monotonic_seconds();
    struct run *run = calloc(1, sizeof(*run));
    if (run == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    run->config = config;
    run->hooks = hooks;
    run->report = report;
    run->now = kp_clock_now(clock);
    run->lock_fd = -1;
    struct kp_file_batch *batch = NULL;
    enum kp_result rc = prepare_root(run, err);
    if (rc == KP_OK) {
        rc = inspect_all(run, err);
    }
    if (rc == KP_OK) {
        rc = generate_keys(run, err);
    }
    if (rc == KP_OK) {
        rc = issue_all(run, err);
    }
    if (rc == KP_OK) {
        batch = kp_file_batch_new();
        rc = batch != NULL ? stage_all(run, batch, err)
                           : kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_commit(batch, err);
    }
    if (rc == KP_OK) {
        rc = fill_report(run, err);
    }
    kp_file_batch_free(batch);
    for (size_t i = 0; i < run->count; i++) {
        item_wipe(&run->items[i]);
    }
    if (run->lock_fd >= 0) {
        close(run->lock_fd); /* releases the flock */
    }
    free(run);
    report->total_seconds = monotonic_seconds() - started;
    return rc;
}
