/*
 * kpki/pki.h - building the Kubernetes control-plane PKI (what `kpki init` runs).
 *
 * Usage: kp_pki_config_init() fills kubeadm's defaults; set fields directly or through the
 * option table (kp_pki_option_*, the same names as the CLI flags and the config-file keys);
 * kp_pki_config_finalize() validates everything and derives what the system decides (node name,
 * advertise address); kp_pki_init() then creates, reuses or refuses each file of the tree.
 * A config is single-threaded; kp_pki_init uses worker threads internally for key generation.
 */
#ifndef KPKI_PKI_H
#define KPKI_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/strlist.h"
#include "crypto/crypto.h"
#include "kpki/clock.h"
#include "kpki/error.h"

enum kp_kubelet_serving {
    KP_KUBELET_SERVING_CA,          /* signed by the cluster CA (default) */
    KP_KUBELET_SERVING_SELF_SIGNED, /* a per-node CA, as the kubelet makes for itself */
};

struct kp_pki_config {
    /* Set by the caller (all strings owned by the config; set them with the option table or
     * strdup). */
    char *root;                   /* the tree is laid out under it; default "/" */
    char *node_name;              /* NULL: the host name, lower case */
    struct kp_ip advertise;       /* valid when advertise_set */
    bool advertise_set;           /* false: the default-route interface's IPv4, else 127.0.0.1 */
    int bind_port;                /* 6443 */
    char *control_plane_endpoint; /* "host[:port]" or NULL */
    char *service_cidr;           /* "10.96.0.0/12", comma-separated for dual stack */
    char *dns_domain;             /* "cluster.local" */
    char *cluster_name;           /* "kubernetes" */
    struct kp_strlist apiserver_extra_sans;
    struct kp_strlist etcd_server_extra_sans;
    struct kp_strlist etcd_peer_extra_sans;
    enum kp_key_type key_type;    /* rsa-2048 */
    int64_t cert_validity;        /* seconds; 8760h */
    int64_t ca_validity;          /* seconds; 87600h */
    enum kp_kubelet_serving kubelet_serving;
    char *join_from;              /* another node's root to take the shared CAs and sa from */
    int key_threads;              /* 0: one per online CPU */
    bool csr_only;                /* external CA: write keys and CSRs, sign nothing */

    /* Derived by kp_pki_config_finalize (read-only for callers). */
    bool finalized;
    struct kp_ip api_vip;          /* index 1 of the first service CIDR */
    char endpoint_host[256];       /* control-plane endpoint host, "" if none */
    int endpoint_port;
    char endpoint_url[320];        /* https://endpoint (or the local URL without one) */
    char local_url[320];           /* https://advertise:bind_port */
};

/* Fills kubeadm's defaults. Never fails except on allocation (returns KP_ERR_IO). */
KP_MUST_CHECK enum kp_result kp_pki_config_init(struct kp_pki_config *config,
                                                struct kp_error *err);
/* Frees every owned member. */
void kp_pki_config_wipe(struct kp_pki_config *config);

/* Validates the combination of options and derives the read-only fields. Looks at the host
 * (name, interfaces) only for values left unset. Values are validated when they are set through
 * the option table; fields a caller assigns directly are taken as they are. */
KP_MUST_CHECK enum kp_result kp_pki_config_finalize(struct kp_pki_config *config,
                                                    struct kp_error *err);

/* ---- the option table: one row per setting, shared by flags, config file and --help ---- */

struct kp_pki_option {
    const char *name;       /* flag name without dashes, and config-file key */
    const char *value_name; /* "DIR", "IP", "LIST", ... for --help; NULL: a boolean flag (the
                               setter gets "true", or the file's true/false) */
    const char *default_text;
    const char *help;
    bool is_list;           /* repeated / comma-separated values append */
    /* Parses and stores value (one element for lists); errors name the value, not the option
     * (the caller knows whether it came from a flag or a file line). */
    enum kp_result (*set)(struct kp_pki_config *config, const char *value, struct kp_error *err);
    /* Lists only: empties the list before values from a higher-priority source. */
    void (*clear)(struct kp_pki_config *config);
};

/* The table, NULL-terminated by a row with name == NULL. */
const struct kp_pki_option *kp_pki_options(void);
const struct kp_pki_option *kp_pki_option_find(const char *name);

/* Loads a YAML config file whose keys are option names (values: scalars, or sequences for
 * lists). Unknown and duplicate keys are errors naming the file and line. Values from the file
 * replace the defaults; apply flags after this so they win. */
KP_MUST_CHECK enum kp_result kp_pki_config_load_file(struct kp_pki_config *config,
                                                     const char *path, struct kp_error *err);
/* Same, from memory (source names it in messages). */
KP_MUST_CHECK enum kp_result kp_pki_config_load_yaml(struct kp_pki_config *config,
                                                     const char *text, size_t len,
                                                     const char *source, struct kp_error *err);

/* ---- init ---- */

enum kp_pki_action {
    KP_PKI_CREATED,          /* new key and certificate (or new file) */
    KP_PKI_REUSED,           /* existing, consistent, left untouched */
    KP_PKI_COMPLETED,        /* existing key kept; its certificate (or sa.pub) created */
    KP_PKI_COPIED,           /* shared CA material copied from --join-from */
    KP_PKI_EXTERNAL,         /* CA certificate without its key: managed outside kpki */
    KP_PKI_SKIPPED,          /* not written on this node (super-admin.conf on a joining node,
                                CAs and what needs them with --csr-only) */
    KP_PKI_CSR,              /* --csr-only: key and CSR written; the certificate is awaited */
};

const char *kp_pki_action_name(enum kp_pki_action action);

struct kp_pki_report_entry {
    char name[64];       /* the table row, e.g. "apiserver", "admin.conf" */
    char path[512];      /* main file, relative to the root */
    enum kp_pki_action action;
    char subject[512];   /* "CN=kube-apiserver" / "CN=...,O=..." ("" for sa) */
    char key[32];        /* "RSA 2048", "ECDSA P-256" */
    int64_t not_after;   /* 0 when not a certificate */
};

struct kp_pki_report {
    struct kp_pki_report_entry *entries; /* owned */
    size_t count;
    struct kp_strlist warnings;
    size_t keys_generated;
    double keygen_seconds; /* wall time spent generating keys */
    double total_seconds;  /* wall time of kp_pki_init */
};

void kp_pki_report_wipe(struct kp_pki_report *report);

struct kp_pki_hooks {
    /* Called from worker threads, serialised, as keys complete; may be NULL. */
    void (*key_progress)(void *context, size_t done, size_t total);
    void *context;
};

/* Builds or completes the tree for a finalized config. Checks every existing file first and
 * writes nothing if one is inconsistent (KP_ERR_CONFLICT naming the file and the problem). New
 * files are committed together, atomically and durably; a destination that appears while kpki
 * works is never replaced (KP_ERR_CONFLICT). report is filled on success (on failure only its
 * warnings and timings); wipe it either way. hooks may be NULL. */
KP_MUST_CHECK enum kp_result kp_pki_init(const struct kp_pki_config *config,
                                         const struct kp_clock *clock,
                                         const struct kp_pki_hooks *hooks,
                                         struct kp_pki_report *report, struct kp_error *err);

/* ---- check: the audit of a tree ---- */

#define KP_CHECK_MAX_FINDINGS 12

enum kp_check_severity {
    KP_CHECK_NOTE,    /* worth knowing, not wrong (e.g. an external CA, a self-signed kubelet) */
    KP_CHECK_PROBLEM, /* wrong: something will fail or is unsafe */
};

struct kp_check_finding {
    enum kp_check_severity severity;
    char code[32];     /* stable identifier: "missing", "wrong-ca", "key-mismatch", ... */
    char message[384]; /* one line naming the file and the value */
};

enum kp_check_kind { KP_CHECK_CA, KP_CHECK_CERT, KP_CHECK_KUBECONFIG, KP_CHECK_KEYS, KP_CHECK_CRL };

struct kp_check_item {
    char name[64];    /* the table row ("apiserver", "admin.conf", "sa", "ca.crl") */
    char path[512];   /* main file, relative to the root */
    enum kp_check_kind kind;
    char ca[32];      /* the signing CA's row name, "" for CAs and keys */
    bool missing;
    bool external;    /* a CA without its key, or a certificate of such a CA */
    int64_t not_after;/* 0: no certificate (keys, missing) */
    char serial[80];
    bool expiring;    /* not after within the warning window (and not expired) */
    size_t finding_count;
    struct kp_check_finding findings[KP_CHECK_MAX_FINDINGS];
};

enum kp_check_status { KP_CHECK_HEALTHY = 0, KP_CHECK_EXPIRING = 1, KP_CHECK_PROBLEMS = 2 };

struct kp_check_report {
    struct kp_check_item *items; /* owned */
    size_t count;
    int64_t checked_at;
    int64_t warn_within;
    enum kp_check_status status;
    size_t problems; /* findings of severity PROBLEM, all items */
};

void kp_check_report_wipe(struct kp_check_report *report);
bool kp_check_item_has_problem(const struct kp_check_item *item);

/* Fills unset identity options of config from the tree itself, so `kpki check --root DIR` needs
 * no flags: the node name from etcd/server.crt's CN (else the kubelet client certificate), the
 * advertise address and port from controller-manager.conf's server URL, the control-plane
 * endpoint from admin.conf's, the cluster name from admin.conf. Call before finalize. */
void kp_pki_config_infer(struct kp_pki_config *config, const char *root);

/* Audits every file of the tree under a finalized config (see docs/cli.md "kpki check" for the
 * list of checks). Returns KP_OK when the audit ran, whatever it found (report->status); an
 * error only when it could not run (the root does not exist or cannot be read). */
KP_MUST_CHECK enum kp_result kp_pki_check(const struct kp_pki_config *config,
                                          const struct kp_clock *clock, int64_t warn_within,
                                          struct kp_check_report *report, struct kp_error *err);

/* ---- renewal ---- */

enum kp_renew_status {
    KP_RENEW_RENEWED,
    KP_RENEW_SKIPPED_EXTERNAL, /* its CA's key is not on this node */
    KP_RENEW_SKIPPED_MISSING,  /* `all` only: the file is absent (e.g. super-admin.conf on a
                                  joined node) */
};

struct kp_renew_entry {
    char name[64];
    char path[512]; /* relative to the root */
    enum kp_renew_status status;
    char old_serial[80];
    int64_t old_not_after;
    char new_serial[80];
    int64_t new_not_after;
    char key[32];   /* "ECDSA P-256 (new)" / "RSA 2048 (kept)" */
};

struct kp_renew_report {
    struct kp_renew_entry *entries; /* owned */
    size_t count;
    char backup_dir[512]; /* relative to the root; "" when nothing was renewed */
};

void kp_renew_report_wipe(struct kp_renew_report *report);

/* The names `kpki renew all` covers: kubeadm's (the seven component certificates and the four
 * kubeconfigs with embedded client certificates). The kubelet's, which the kubelet rotates
 * itself, are renewed only when named. */
const char *const *kp_pki_renew_all_names(size_t *count);

/* Re-issues each named certificate from its CA on disk, keeping subject, SANs and usages byte
 * for byte (kp_cert_reissue), with a new key of the same type (or the old one when reuse_key),
 * serial and validity (config->cert_validity, clipped to the CA). Previous files are copied to
 * etc/kubernetes/tmp/kpki-renew-<time>/ first; then every new file is committed in one
 * atomic batch. Everything is checked before anything is written: an unknown name, a CA, a
 * missing file or an external CA among names given explicitly fail the whole call.
 * skip_unavailable (for `all`) turns missing files and external CAs into skipped entries. */
KP_MUST_CHECK enum kp_result kp_pki_renew(const struct kp_pki_config *config,
                                          const struct kp_clock *clock,
                                          const char *const *names, size_t count,
                                          bool reuse_key, bool skip_unavailable,
                                          struct kp_renew_report *report, struct kp_error *err);

/* ---- kubeconfigs for users ---- */

/* A kubeconfig for a new user, as `kubeadm kubeconfig user` makes one: a new key (config's key
 * type) and a client certificate signed by the cluster CA on disk, CN = user, O = each of orgs,
 * clientAuth, valid for `validity` seconds (clipped to the CA); the CA embedded; the server is
 * `server` or, when NULL, config->endpoint_url. *yaml: free with kp_secret_free(*yaml, *len). */
KP_MUST_CHECK enum kp_result kp_pki_kubeconfig_user(const struct kp_pki_config *config,
                                                    const struct kp_clock *clock,
                                                    const char *user,
                                                    const struct kp_strlist *orgs,
                                                    int64_t validity, const char *server,
                                                    char **yaml, size_t *len,
                                                    struct kp_error *err);

/* A bootstrap kubeconfig for a joining node (kubeadm's bootstrap-kubelet.conf): the cluster CA
 * of the tree embedded (only the certificate; the CA key need not be here), the server
 * (`server`, or config->endpoint_url when NULL), user "tls-bootstrap-token-user" with the
 * bootstrap token. The token must have the form <id>.<secret>. *yaml: free with
 * kp_secret_free(*yaml, *len). */
KP_MUST_CHECK enum kp_result kp_pki_kubeconfig_bootstrap(const struct kp_pki_config *config,
                                                         const char *token, const char *server,
                                                         char **yaml, size_t *len,
                                                         struct kp_error *err);

/* What a client needs from a kubeconfig file: the current context's server, CA, client
 * certificate and key (embedded data, or files resolved relative to the kubeconfig's
 * directory) and token. Owned; release with kp_kubeconfig_credentials_wipe (the key and token
 * are cleansed). */
struct kp_kubeconfig_credentials {
    char *server;
    char *ca_pem;
    size_t ca_len;
    char *cert_pem; /* NULL when none */
    size_t cert_len;
    char *key_pem;  /* NULL when none */
    size_t key_len;
    char *token;    /* NULL when none */
};

KP_MUST_CHECK enum kp_result kp_kubeconfig_credentials_load(const char *path,
                                                            struct kp_kubeconfig_credentials *out,
                                                            struct kp_error *err);
void kp_kubeconfig_credentials_wipe(struct kp_kubeconfig_credentials *credentials);

/* ---- revocation ---- */

#define KP_CRL_DEFAULT_VALIDITY (180LL * 86400)

/* The certificate a table row holds (a kubeconfig's embedded or referenced one, the kubelet's
 * behind its symlink) and the row name of its CA. *cert: free with X509_free. A path (containing
 * '/') is read as a PEM certificate and its CA found among the tree's three. */
KP_MUST_CHECK enum kp_result kp_pki_find_certificate(const struct kp_pki_config *config,
                                                     const char *name_or_path, X509 **cert,
                                                     char *ca_name, size_t ca_name_size,
                                                     struct kp_error *err);

struct kp_revoke_result {
    char crl_path[512];   /* relative to the root */
    uint64_t crl_number;
    size_t entries;
    bool already_revoked; /* the serial was listed before; the CRL was re-signed anyway */
};

/* Adds serial_hex (upper-case hex) to the CRL of CA `ca_name` ("ca", "etcd-ca",
 * "front-proxy-ca") with reason, and re-signs it (number + 1, thisUpdate now, nextUpdate now +
 * validity), written atomically as <ca>.crl next to the CA. Needs the CA key. */
KP_MUST_CHECK enum kp_result kp_pki_revoke(const struct kp_pki_config *config,
                                           const struct kp_clock *clock, const char *ca_name,
                                           const char *serial_hex, enum kp_crl_reason reason,
                                           int64_t validity, struct kp_revoke_result *result,
                                           struct kp_error *err);

/* Re-signs (or creates, empty) the CRL of ca_name with the same entries. */
KP_MUST_CHECK enum kp_result kp_pki_crl_sign(const struct kp_pki_config *config,
                                             const struct kp_clock *clock, const char *ca_name,
                                             int64_t validity, struct kp_revoke_result *result,
                                             struct kp_error *err);

/* Loads the CRL of ca_name (NULL *crl when there is none), checking that the CA signed it.
 * *crl: free with X509_CRL_free. */
KP_MUST_CHECK enum kp_result kp_pki_crl_load(const struct kp_pki_config *config,
                                             const char *ca_name, X509_CRL **crl,
                                             struct kp_error *err);

#endif
