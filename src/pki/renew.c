/*
 * kpki renew: re-issue certificates from the CAs on disk.
 *
 * Implementation notes
 *
 * 1. Plan every name: its files, its current certificate and key, its CA (certificate and key).
 *    Any problem with a name given explicitly stops everything before a byte is written.
 * 2. Make the new keys and certificates (kp_cert_reissue keeps subject, SANs and usages byte
 *    for byte, as kubeadm's renewal keeps CN, O, SANs and EKU from the certificate on disk).
 * 3. Copy every file about to change into etc/kubernetes/tmp/kpki-renew-<time>/ (one durable
 *    batch), then commit every new file (a second batch): a kill in between leaves the old
 *    files in place and a complete backup; a kill during the second leaves each file old or new.
 * The kubelet's client certificate is renewed the kubelet's way: a new timestamped pem and the
 * kubelet-client-current.pem symlink swapped to it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pki/pki.h"

#define BACKDATE_SECONDS (5 * 60)

static const char *const all_names[] = {
    "admin.conf",
    "apiserver",
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "controller-manager.conf",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
    "scheduler.conf",
    "super-admin.conf",
};

const char *const *kp_pki_renew_all_names(size_t *count)
{
    *count = sizeof(all_names) / sizeof(all_names[0]);
    return all_names;
}

void kp_renew_report_wipe(struct kp_renew_report *report)
{
    free(report->entries);
    memset(report, 0, sizeof(*report));
}

struct plan {
    const struct kp_cert_spec *spec;
    struct kp_cert_request req;
    X509 *old_cert;
    EVP_PKEY *old_key;
    X509 *ca;
    EVP_PKEY *ca_key;
    char *kubeconfig_text; /* kubeconfigs: the file as it is (secret) */
    size_t kubeconfig_len;
    char pem_path[KP_PATH_MAX]; /* kubelet client: the file behind the symlink */
    EVP_PKEY *new_key;
    X509 *new_cert;
    bool skipped;
};

static void plan_wipe(struct plan *plan)
{
    kp_cert_request_wipe(&plan->req);
    X509_free(plan->old_cert);
    EVP_PKEY_free(plan->old_key);
    X509_free(plan->ca);
    EVP_PKEY_free(plan->ca_key);
    kp_secret_free(plan->kubeconfig_text, plan->kubeconfig_len);
    EVP_PKEY_free(plan->new_key);
    X509_free(plan->new_cert);
    memset(plan, 0, sizeof(*plan));
}

/* ---- step 1: plan ---- */

static enum kp_result load_kubeconfig_credentials(struct plan *plan, struct kp_error *err)
{
    const char *path = plan->req.key_path;
    struct kp_kubeconfig kubeconfig;
    enum kp_result rc = kp_file_read(path, KP_PKI_FILE_MAX, &plan->kubeconfig_text,
                                     &plan->kubeconfig_len, err);
    if (rc == KP_OK) {
        rc = kp_kubeconfig_parse(plan->kubeconfig_text, plan->kubeconfig_len, path, &kubeconfig,
                                 err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    if (kubeconfig.cert_data == NULL || kubeconfig.key_data == NULL) {
        /* kubeadm refuses the same way: only embedded credentials are renewed. */
        rc = kp_error_set(err, KP_ERR_INVALID, "'%s' has no embedded client certificate and key "
                          "to renew", path);
    }
    if (rc == KP_OK) {
        rc = kp_cert_from_pem((const char *)kubeconfig.cert_data, kubeconfig.cert_len, path,
                              &plan->old_cert, err);
    }
    if (rc == KP_OK) {
        rc = kp_key_from_pem((const char *)kubeconfig.key_data, kubeconfig.key_len, path,
                             &plan->old_key, err);
    }
    kp_kubeconfig_wipe(&kubeconfig);
    return rc;
}

static enum kp_result load_current(struct plan *plan, struct kp_error *err)
{
    if (plan->spec->kind == KP_ART_KUBECONFIG) {
        return load_kubeconfig_credentials(plan, err);
    }
    struct kp_existing_pair pair;
    enum kp_result rc = kp_existing_pair_load(plan->req.cert_path, plan->req.key_path, &pair,
                                              err);
    if (rc != KP_OK) {
        return rc;
    }
    if (!pair.key_present) {
        rc = kp_error_set(err, KP_ERR_NOT_FOUND, "'%s' has no key '%s'", plan->req.cert_path,
                          plan->req.key_path);
    } else if (plan->spec->kind == KP_ART_KUBELET_SERVING && sk_X509_num(pair.certs) > 1) {
        rc = kp_error_set(err, KP_ERR_INVALID,
                          "'%s' is self-signed by the kubelet; remove kubelet.crt and kubelet.key "
                          "and rerun kpki init (or restart the kubelet) to get a new one",
                          plan->req.cert_path);
    } else {
        plan->old_cert = sk_X509_shift(pair.certs);
        plan->old_key = pair.key;
        pair.key = NULL;
    }
    char real[KP_PATH_MAX];
    if (rc == KP_OK && plan->spec->kind == KP_ART_KUBELET_CLIENT) {
        /* The pem behind the symlink, named inside the tree (for the backup's layout). */
        if (realpath(plan->req.cert_path, real) == NULL) {
            rc = kp_error_errno(err, errno, "cannot resolve '%s'", plan->req.cert_path);
        } else {
            const char *base = strrchr(real, '/');
            rc = kp_path_join(plan->pem_path, sizeof(plan->pem_path), plan->req.extra_path,
                              base != NULL ? base + 1 : real, err);
        }
    }
    kp_existing_pair_wipe(&pair);
    return rc;
}

static enum kp_result load_ca(const struct kp_pki_config *config, struct plan *plan,
                              bool *external, struct kp_error *err)
{
    const struct kp_cert_spec *ca_spec = kp_cert_spec_find(plan->spec->ca);
    struct kp_cert_request request;
    struct kp_existing_pair pair = {0};
    enum kp_result rc = kp_cert_resolve(ca_spec, config, config->key_type, &request, err);
    if (rc == KP_OK) {
        rc = kp_existing_pair_load(request.cert_path, request.key_path, &pair, err);
    }
    if (rc == KP_OK && !pair.cert_present) {
        rc = kp_error_set(err, KP_ERR_NOT_FOUND, "the %s CA certificate '%s' is missing",
                          ca_spec->name, request.cert_path);
    }
    *external = rc == KP_OK && !pair.key_present;
    if (rc == KP_OK && !*external) {
        plan->ca = sk_X509_shift(pair.certs);
        plan->ca_key = pair.key;
        pair.key = NULL;
        bool ok = false;
        char reason[128];
        rc = kp_cert_verify_chain(plan->old_cert, plan->ca, NULL, KP_VERIFY_ANY_TIME, &ok, reason,
                                  sizeof(reason), err);
        if (rc == KP_OK && !ok) {
            rc = kp_error_set(err, KP_ERR_CONFLICT, "'%s' is not signed by the %s CA on disk "
                              "(%s): renewing would change who vouches for it; use kpki init",
                              plan->req.rel_path, ca_spec->name, reason);
        }
    }
    kp_existing_pair_wipe(&pair);
    kp_cert_request_wipe(&request);
    return rc;
}

static enum kp_result plan_one(const struct kp_pki_config *config, const char *name,
                               bool skip_unavailable, struct plan *plan,
                               struct kp_renew_entry *entry, struct kp_error *err)
{
    memset(plan, 0, sizeof(*plan));
    memset(entry, 0, sizeof(*entry));
    snprintf(entry->name, sizeof(entry->name), "%s", name);
    plan->spec = kp_cert_spec_find(name);
    const struct kp_cert_spec *spec = plan->spec;
    if (spec == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "unknown certificate '%s' (see kpki renew "
                            "--help for the names)", name);
    }
    if (spec->kind == KP_ART_CA || spec->kind == KP_ART_SA) {
        return kp_error_set(err, KP_ERR_INVALID, "'%s' is not renewed: kpki never replaces CAs "
                            "or service-account keys (see docs/cli.md)", name);
    }
    if (spec->client != NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "'%s' refers to the kubelet's rotating "
                            "certificate: renew '%s'", name, spec->client);
    }
    enum kp_result rc = kp_cert_resolve(spec, config, config->key_type, &plan->req, err);
    if (rc != KP_OK) {
        return rc;
    }
    snprintf(entry->path, sizeof(entry->path), "%s", plan->req.rel_path);
    const char *main_path = spec->kind == KP_ART_KUBECONFIG ? plan->req.key_path
                                                             : plan->req.cert_path;
    if (!kp_path_exists(main_path) && skip_unavailable) {
        entry->status = KP_RENEW_SKIPPED_MISSING;
        plan->skipped = true;
        return KP_OK;
    }
    rc = load_current(plan, err);
    bool external = false;
    if (rc == KP_OK) {
        rc = load_ca(config, plan, &external, err);
    }
    if (rc == KP_OK && external) {
        if (!skip_unavailable) {
            return kp_error_set(err, KP_ERR_FORBIDDEN, "cannot renew '%s': its CA '%s' is "
                                "external (its key is not on this node)", name, spec->ca);
        }
        entry->status = KP_RENEW_SKIPPED_EXTERNAL;
        plan->skipped = true;
        return KP_OK;
    }
    if (rc == KP_OK) {
        kp_cert_serial_hex(plan->old_cert, entry->old_serial, sizeof(entry->old_serial));
        entry->old_not_after = kp_cert_not_after(plan->old_cert);
    }
    return rc;
}

/* ---- step 2: keys and certificates ---- */

static enum kp_result make_new(const struct kp_pki_config *config, int64_t now, bool reuse_key,
                               struct plan *plan, struct kp_renew_entry *entry,
                               struct kp_error *err)
{
    enum kp_result rc = KP_OK;
    char description[32];
    if (reuse_key) {
        plan->new_key = plan->old_key;
        EVP_PKEY_up_ref(plan->new_key);
    } else {
        /* Same type as before; a key kpki would not make (RSA-1024, Ed25519) gets the
         * configured type instead. */
        enum kp_key_type type = kp_key_type_of(plan->old_key);
        rc = kp_key_generate(type != KP_KEY_UNKNOWN ? type : config->key_type, &plan->new_key,
                             err);
    }
    if (rc == KP_OK) {
        kp_key_describe(plan->new_key, description, sizeof(description));
        snprintf(entry->key, sizeof(entry->key), "%s (%s)", description,
                 reuse_key ? "kept" : "new");
        int64_t not_after = now + config->cert_validity;
        int64_t ca_not_after = kp_cert_not_after(plan->ca);
        if (ca_not_after <= now) {
            return kp_error_set(err, KP_ERR_CONFLICT, "cannot renew '%s': its CA '%s' has "
                                "expired", entry->name, plan->spec->ca);
        }
        not_after = not_after < ca_not_after ? not_after : ca_not_after;
        rc = kp_cert_reissue(plan->old_cert, plan->new_key, plan->ca, plan->ca_key,
                             now - BACKDATE_SECONDS, not_after, &plan->new_cert, err);
    }
    if (rc == KP_OK) {
        kp_cert_serial_hex(plan->new_cert, entry->new_serial, sizeof(entry->new_serial));
        entry->new_not_after = kp_cert_not_after(plan->new_cert);
    }
    return rc;
}

/* ---- step 3: back up, then commit ---- */

static enum kp_result backup_file(struct kp_file_batch *batch, const char *root,
                                  const char *backup_rel, const char *path, struct kp_error *err)
{
    /* Keep the path below the root in the backup ("etc/kubernetes/pki/apiserver.crt"). */
    size_t root_len = strlen(root);
    const char *relative = strncmp(path, root, root_len) == 0 ? path + root_len : path;
    while (*relative == '/') {
        relative++;
    }
    char target[KP_PATH_MAX], dir[KP_PATH_MAX], joined[KP_PATH_MAX];
    snprintf(joined, sizeof(joined), "%s/%s", backup_rel, relative);
    enum kp_result rc = kp_path_join(target, sizeof(target), root, joined, err);
    if (rc == KP_OK) {
        rc = kp_path_dirname(dir, sizeof(dir), target, err);
    }
    if (rc == KP_OK) {
        rc = kp_file_mkdirs(dir, 0700, err);
    }
    char *data = NULL;
    size_t len = 0;
    struct stat st;
    if (rc == KP_OK) {
        rc = kp_file_read(path, KP_PKI_FILE_MAX, &data, &len, err);
    }
    if (rc == KP_OK && stat(path, &st) != 0) {
        rc = kp_error_errno(err, errno, "cannot read '%s'", path);
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_add(batch, target, data, len, st.st_mode & 0777, err);
    }
    kp_secret_free(data, len);
    return rc;
}

static enum kp_result backup_all(const struct kp_pki_config *config, struct plan *plans,
                                 size_t count, const char *backup_rel, struct kp_error *err)
{
    struct kp_file_batch *batch = kp_file_batch_new();
    if (batch == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    enum kp_result rc = KP_OK;
    for (size_t i = 0; rc == KP_OK && i < count; i++) {
        const struct plan *plan = &plans[i];
        if (plan->skipped) {
            continue;
        }
        switch (plan->spec->kind) {
        case KP_ART_KUBECONFIG:
            rc = backup_file(batch, config->root, backup_rel, plan->req.key_path, err);
            break;
        case KP_ART_KUBELET_CLIENT:
            rc = backup_file(batch, config->root, backup_rel, plan->pem_path, err);
            break;
        default:
            rc = backup_file(batch, config->root, backup_rel, plan->req.key_path, err);
            if (rc == KP_OK) {
                rc = backup_file(batch, config->root, backup_rel, plan->req.cert_path, err);
            }
        }
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_commit(batch, err);
    }
    kp_file_batch_free(batch);
    return rc;
}

static enum kp_result stage_certificate(struct kp_file_batch *batch, const struct plan *plan,
                                        bool reuse_key, struct kp_error *err)
{
    char *cert_pem = NULL, *key_pem = NULL;
    size_t cert_len = 0, key_len = 0;
    enum kp_result rc = kp_cert_to_pem(plan->new_cert, &cert_pem, &cert_len, err);
    if (rc == KP_OK && !reuse_key) {
        rc = kp_key_to_pem(plan->new_key, &key_pem, &key_len, err);
        if (rc == KP_OK) {
            rc = kp_file_batch_add(batch, plan->req.key_path, key_pem, key_len, 0600, err);
        }
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_add(batch, plan->req.cert_path, cert_pem, cert_len, 0644, err);
    }
    free(cert_pem);
    kp_secret_free(key_pem, key_len);
    return rc;
}

static enum kp_result stage_kubeconfig(struct kp_file_batch *batch, const struct plan *plan,
                                       struct kp_error *err)
{
    char *cert_pem = NULL, *key_pem = NULL, *ca_pem = NULL, *text = NULL;
    size_t cert_len = 0, key_len = 0, ca_len = 0, text_len = 0;
    enum kp_result rc = kp_cert_to_pem(plan->new_cert, &cert_pem, &cert_len, err);
    if (rc == KP_OK) {
        rc = kp_key_to_pem(plan->new_key, &key_pem, &key_len, err);
    }
    if (rc == KP_OK) {
        rc = kp_cert_to_pem(plan->ca, &ca_pem, &ca_len, err);
    }
    if (rc == KP_OK) {
        /* Newer kubeadm also refreshes certificate-authority-data from ca.crt. */
        rc = kp_kubeconfig_replace_credentials(plan->kubeconfig_text, plan->kubeconfig_len,
                                               plan->req.key_path, cert_pem, cert_len, key_pem,
                                               key_len, ca_pem, ca_len, &text, &text_len, err);
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_add(batch, plan->req.key_path, text, text_len, 0600, err);
    }
    free(cert_pem);
    free(ca_pem);
    kp_secret_free(key_pem, key_len);
    kp_secret_free(text, text_len);
    return rc;
}

static enum kp_result stage_kubelet_client(struct kp_file_batch *batch, const struct plan *plan,
                                           int64_t now, struct kp_error *err)
{
    time_t when = (time_t)now;
    struct tm local;
    localtime_r(&when, &local);
    char name[96], path[KP_PATH_MAX];
    strftime(name, sizeof(name), "kubelet-client-%Y-%m-%d-%H-%M-%S.pem", &local);
    enum kp_result rc = kp_path_join(path, sizeof(path), plan->req.extra_path, name, err);
    char *cert_pem = NULL, *key_pem = NULL, *joined = NULL;
    size_t cert_len = 0, key_len = 0;
    if (rc == KP_OK) {
        rc = kp_cert_to_pem(plan->new_cert, &cert_pem, &cert_len, err);
    }
    if (rc == KP_OK) {
        rc = kp_key_to_pem(plan->new_key, &key_pem, &key_len, err);
    }
    if (rc == KP_OK && (joined = malloc(cert_len + key_len + 1)) == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    if (rc == KP_OK) {
        memcpy(joined, cert_pem, cert_len);
        memcpy(joined + cert_len, key_pem, key_len);
        rc = kp_file_batch_add(batch, path, joined, cert_len + key_len, 0600, err);
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_add_symlink(batch, plan->req.cert_path, name, err);
    }
    free(cert_pem);
    kp_secret_free(key_pem, key_len);
    kp_secret_free(joined, cert_len + key_len);
    return rc;
}

static enum kp_result commit_all(struct plan *plans, size_t count, int64_t now, bool reuse_key,
                                 struct kp_error *err)
{
    struct kp_file_batch *batch = kp_file_batch_new();
    if (batch == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    enum kp_result rc = KP_OK;
    for (size_t i = 0; rc == KP_OK && i < count; i++) {
        if (plans[i].skipped) {
            continue;
        }
        switch (plans[i].spec->kind) {
        case KP_ART_KUBECONFIG:
            rc = stage_kubeconfig(batch, &plans[i], err);
            break;
        case KP_ART_KUBELET_CLIENT:
            rc = stage_kubelet_client(batch, &plans[i], now, err);
            break;
        default:
            rc = stage_certificate(batch, &plans[i], reuse_key, err);
        }
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_commit(batch, err);
    }
    kp_file_batch_free(batch);
    return rc;
}

enum kp_result kp_pki_renew(const struct kp_pki_config *config, const struct kp_clock *clock,
                            const char *const *names, size_t count, bool reuse_key,
                            bool skip_unavailable, struct kp_renew_report *report,
                            struct kp_error *err)
{
    memset(report, 0, sizeof(*report));
    if (count == 0) {
        return kp_error_set(err, KP_ERR_INVALID, "nothing to renew: give 'all' or names");
    }
    int64_t now = kp_clock_now(clock);
    struct plan *plans = calloc(count, sizeof(*plans));
    report->entries = calloc(count, sizeof(*report->entries));
    if (plans == NULL || report->entries == NULL) {
        free(plans);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    enum kp_result rc = KP_OK;
    size_t planned = 0;
    for (size_t i = 0; rc == KP_OK && i < count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[i], names[j]) == 0) {
                rc = kp_error_set(err, KP_ERR_INVALID, "'%s' is named twice", names[i]);
            }
        }
        if (rc == KP_OK) {
            rc = plan_one(config, names[i], skip_unavailable, &plans[i], &report->entries[i],
                          err);
            planned = i + 1;
            report->count = planned;
        }
    }
    size_t renewing = 0;
    for (size_t i = 0; rc == KP_OK && i < count; i++) {
        if (!plans[i].skipped) {
            rc = make_new(config, now, reuse_key, &plans[i], &report->entries[i], err);
            renewing++;
        }
    }
    if (rc == KP_OK && renewing > 0) {
        time_t when = (time_t)now;
        struct tm utc;
        gmtime_r(&when, &utc);
        char stamp[32];
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &utc);
        /* Never reuse a backup folder: a second renewal in the same second must not
         * overwrite the first one's copies of the originals. */
        for (int suffix = 1; suffix < 1000; suffix++) {
            char candidate[KP_PATH_MAX];
            snprintf(report->backup_dir, sizeof(report->backup_dir),
                     suffix == 1 ? KP_KUBECONFIG_DIR "/tmp/kpki-renew-%s"
                                 : KP_KUBECONFIG_DIR "/tmp/kpki-renew-%s-%d",
                     stamp, suffix);
            if (kp_path_join(candidate, sizeof(candidate), config->root, report->backup_dir,
                             NULL) != KP_OK ||
                !kp_path_exists(candidate)) {
                break;
            }
        }
        rc = backup_all(config, plans, count, report->backup_dir, err);
        if (rc == KP_OK) {
            rc = commit_all(plans, count, now, reuse_key, err);
        }
    }
    for (size_t i = 0; i < planned; i++) {
        plan_wipe(&plans[i]);
    }
    free(plans);
    return rc;
}
