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

#include "pki/init_internal.h"

#define BACKDATE_SECONDS (5 * 60)          /* kubeadm CertificateBackdate */
#define SELF_SIGNED_BACKDATE_SECONDS 3600  /* client-go GenerateSelfSignedCertKey */

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kp_init_warn(struct run *run, const char *fmt, ...)
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
    X509_REQ_free(item->csr);
    free(item->copy_cert_pem);
    kp_secret_free(item->copy_key_pem, item->copy_key_len);
    memset(item, 0, sizeof(*item));
}

struct item *kp_init_find(struct run *run, const char *name)
{
    for (size_t i = 0; i < run->count; i++) {
        if (strcmp(run->items[i].spec->name, name) == 0) {
            return &run->items[i];
        }
    }
    return NULL;
}

struct item *kp_init_signer(struct run *run, const struct item *item)
{
    if (item->spec->ca == NULL) {
        return NULL;
    }
    if (item->spec->kind == KP_ART_KUBELET_SERVING &&
        run->config->kubelet_serving == KP_KUBELET_SERVING_SELF_SIGNED) {
        return NULL;
    }
    return kp_init_find(run, item->spec->ca);
}

/* ---- step 1: directories and the lock ---- */

static const char *const tree_dirs[] = {KP_KUBECONFIG_DIR, KP_PKI_DIR, KP_PKI_DIR "/etcd",
                                        KP_KUBELET_PKI_DIR};

/* The directories of the tree (0755), made only when there is something to write in them. */
static enum kp_result make_tree_dirs(const struct run *run, struct kp_error *err)
{
    for (size_t i = 0; i < sizeof(tree_dirs) / sizeof(tree_dirs[0]); i++) {
        char dir[KP_PATH_MAX];
        enum kp_result rc = kp_path_join(dir, sizeof(dir), run->config->root, tree_dirs[i], err);
        if (rc == KP_OK) {
            rc = kp_file_mkdirs(dir, 0755, err);
        }
        if (rc != KP_OK) {
            return rc;
        }
    }
    return KP_OK;
}

/* Creates only etc/kubernetes (the lock's directory) before inspecting: a run refused for an
 * inconsistent file leaves the tree as it found it. */
static enum kp_result prepare_root(struct run *run, struct kp_error *err)
{
    const char *root = run->config->root;
    char lock_dir[KP_PATH_MAX];
    enum kp_result rc = kp_path_join(lock_dir, sizeof(lock_dir), root, KP_KUBECONFIG_DIR, err);
    if (rc == KP_OK) {
        rc = kp_file_mkdirs(lock_dir, 0755, err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    if (realpath(root, run->root_real) == NULL) {
        return kp_error_errno(err, errno, "cannot resolve --root '%s'", root);
    }
    if (!kp_utf8_valid(run->root_real)) {
        /* kubelet.conf names files by this path, and YAML must be UTF-8. */
        return kp_error_set(err, KP_ERR_INVALID, "--root '%s' is not valid UTF-8", root);
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

enum kp_result kp_init_kubelet_link(const struct run *run, char *out, size_t size,
                                    struct kp_error *err)
{
    return kp_path_join(out, size, run->root_real,
                        KP_KUBELET_PKI_DIR "/kubelet-client-current.pem", err);
}

/* ---- step 3: keys and certificates ---- */

static enum kp_result generate_keys(struct run *run, struct kp_error *err)
{
    struct kp_key_job jobs[KP_INIT_MAX_ITEMS * 2];
    EVP_PKEY **targets[KP_INIT_MAX_ITEMS * 2];
    size_t count = 0;
    bool self_signed = run->config->kubelet_serving == KP_KUBELET_SERVING_SELF_SIGNED;
    for (size_t i = 0; i < run->count; i++) {
        struct item *item = &run->items[i];
        if (item->skip) {
            continue;
        }
        if (item->new_key) {
            jobs[count].type = run->config->key_type;
            targets[count++] = &item->key;
        }
        /* The kubelet's own CA is made afresh with every new serving certificate, also when
         * the serving key survived an interrupted run. */
        if (item->spec->kind == KP_ART_KUBELET_SERVING && self_signed && item->new_cert) {
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

enum kp_result kp_init_issue(struct run *run, struct item *item, struct kp_error *err)
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
    struct item *signer = kp_init_signer(run, item);
    if (signer != NULL) {
        int64_t ca_not_after = kp_cert_not_after(signer->cert);
        if (not_after > ca_not_after) {
            char when[32];
            kp_time_format_rfc3339(ca_not_after, when, sizeof(when));
            kp_init_warn(run, "'%s' would outlive its CA '%s'; its validity ends with the CA's at %s",
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

/* --csr-only: the request for item's key, with the row's subject and SANs. */
static enum kp_result make_request(struct item *item, struct kp_error *err)
{
    struct kp_cert_template tmpl;
    kp_cert_request_template(&item->req, 0, 1, &tmpl);
    return kp_csr_create(&tmpl, item->key, &item->csr, err);
}

static enum kp_result issue_all(struct run *run, struct kp_error *err)
{
    for (size_t i = 0; i < run->count; i++) {
        struct item *item = &run->items[i];
        if (item->action == KP_PKI_CSR && item->write_csr) {
            enum kp_result rc = make_request(item, err);
            if (rc != KP_OK) {
                return kp_error_prefix(err, "%s", item->spec->name);
            }
            continue;
        }
        if (item->skip || !item->new_cert || item->issued) {
            continue;
        }
        enum kp_result rc = kp_init_issue(run, item, err);
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
        rc = kp_file_batch_add_new(batch, path, pem, len, 0600, err);
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
        rc = kp_file_batch_add_new(batch, path, text, len, 0644, err);
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
            rc = kp_file_batch_add_new(batch, item->req.key_path, item->copy_key_pem,
                                       item->copy_key_len, 0600, err);
        }
        const char *cert_path = item->spec->kind == KP_ART_SA ? item->req.extra_path
                                                               : item->req.cert_path;
        mode_t cert_mode = item->spec->kind == KP_ART_SA ? 0600 : 0644;
        return rc != KP_OK ? rc
                           : kp_file_batch_add_new(batch, cert_path, item->copy_cert_pem,
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
            rc = kp_file_batch_add_new(batch, item->req.extra_path, pem, len, 0600, err);
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
        /* Not add_new: a file of the same second may be an orphan of an interrupted run. */
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
    const struct item *ca = kp_init_signer(run, item);
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
        rc = kp_init_kubelet_link(run, link, sizeof(link), err);
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
        /* clientcmd.WriteToFile: 0600. A partial kubeconfig being completed is replaced. */
        rc = item->replace
                 ? kp_file_batch_add(batch, item->req.key_path, yaml, yaml_len, 0600, err)
                 : kp_file_batch_add_new(batch, item->req.key_path, yaml, yaml_len, 0600, err);
    }
    free(ca_pem);
    free(cert_pem);
    kp_secret_free(key_pem, key_len);
    kp_secret_free(yaml, yaml_len);
    return rc;
}

/* A partial kubeconfig: the cluster (with the CA when it is on this node) and a user with
 * client-key-data only, as kubeadm's `certs generate-csr` writes it. */
static enum kp_result stage_partial_kubeconfig(struct run *run, struct kp_file_batch *batch,
                                               const struct item *item, struct kp_error *err)
{
    const struct item *ca = kp_init_signer(run, item);
    char *ca_pem = NULL, *key_pem = NULL, *yaml = NULL;
    size_t ca_len = 0, key_len = 0, yaml_len = 0;
    char context[600];
    snprintf(context, sizeof(context), "%s@%s", item->req.common_name,
             run->config->cluster_name);
    enum kp_result rc = KP_OK;
    if (ca != NULL && ca->cert != NULL) {
        rc = kp_cert_to_pem(ca->cert, &ca_pem, &ca_len, err);
    }
    if (rc == KP_OK) {
        rc = kp_key_to_pem(item->key, &key_pem, &key_len, err);
    }
    if (rc == KP_OK) {
        struct kp_kubeconfig kubeconfig = {
            .cluster_name = run->config->cluster_name,
            .server = (char *)item->req.server,
            .ca_data = (unsigned char *)ca_pem,
            .ca_len = ca_len,
            .user_name = (char *)item->req.common_name,
            .key_data = (unsigned char *)key_pem,
            .key_len = key_len,
            .context_name = context,
        };
        rc = kp_kubeconfig_render(&kubeconfig, &yaml, &yaml_len, err);
    }
    if (rc == KP_OK) {
        rc = kp_file_batch_add_new(batch, item->req.key_path, yaml, yaml_len, 0600, err);
    }
    free(ca_pem);
    kp_secret_free(key_pem, key_len);
    kp_secret_free(yaml, yaml_len);
    return rc;
}

/* --csr-only: the key (unless kept) and the request. */
static enum kp_result stage_request(struct run *run, struct kp_file_batch *batch,
                                    const struct item *item, struct kp_error *err)
{
    char key_path[KP_PATH_MAX], csr_path[KP_PATH_MAX], crt_path[KP_PATH_MAX];
    kp_init_csr_paths(run, item, key_path, csr_path, crt_path, sizeof(key_path));
    enum kp_result rc = KP_OK;
    if (item->write_key) {
        rc = item->spec->kind == KP_ART_KUBECONFIG
                 ? stage_partial_kubeconfig(run, batch, item, err)
                 : add_pem_key(batch, key_path, item->key, err);
    }
    if (rc == KP_OK && item->write_csr) {
        char *pem = NULL;
        size_t len = 0;
        rc = kp_csr_to_pem(item->csr, &pem, &len, err);
        if (rc == KP_OK) {
            /* kubeadm writes requests 0600 as well. */
            rc = kp_file_batch_add_new(batch, csr_path, pem, len, 0600, err);
        }
        free(pem);
    }
    return rc;
}

static enum kp_result stage_all(struct run *run, struct kp_file_batch *batch,
                                struct kp_error *err)
{
    for (size_t i = 0; i < run->count; i++) {
        const struct item *item = &run->items[i];
        if (item->action == KP_PKI_CSR) {
            enum kp_result rc = stage_request(run, batch, item, err);
            if (rc != KP_OK) {
                return rc;
            }
            continue;
        }
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
        /* kubelet.conf's credentials are the kubelet client row's. */
        const struct item *holder = item->spec->client != NULL
                                        ? kp_init_find(run, item->spec->client)
                                        : item;
        X509 *cert = holder != NULL ? holder->cert : NULL;
        if (cert != NULL) {
            describe_subject(cert, entry->subject, sizeof(entry->subject));
            entry->not_after = kp_cert_not_after(cert);
        }
        /* A certificate kp_cert_issue just made has no cached public key (see there): the key
         * describes it. */
        EVP_PKEY *key = holder != NULL ? holder->key : NULL;
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
    case KP_PKI_CSR:
        return "csr";
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
        rc = kp_init_inspect_all(run, err);
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
    if (rc == KP_OK && kp_file_batch_count(batch) > 0) {
        rc = make_tree_dirs(run, err);
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
