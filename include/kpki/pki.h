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

/* Validates the combination and derives the read-only fields. Looks at the host (name,
 * interfaces) only for values left unset. */
KP_MUST_CHECK enum kp_result kp_pki_config_finalize(struct kp_pki_config *config,
                                                    struct kp_error *err);

/* ---- the option table: one row per setting, shared by flags, config file and --help ---- */

struct kp_pki_option {
    const char *name;       /* flag name without dashes, and config-file key */
    const char *value_name; /* "DIR", "IP", "LIST", ... for --help */
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
    KP_PKI_SKIPPED,          /* not written on this node (super-admin.conf on a joining node) */
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
 * files are committed together, atomically and durably. report is filled on success (and
 * partially on failure); wipe it either way. hooks may be NULL. */
KP_MUST_CHECK enum kp_result kp_pki_init(const struct kp_pki_config *config,
                                         const struct kp_clock *clock,
                                         const struct kp_pki_hooks *hooks,
                                         struct kp_pki_report *report, struct kp_error *err);

#endif
