/*
 * pki/pki.h - the certificate table and the pieces init, check and renew share.
 *
 * The table (spec.c) is the one description of the tree: each row says what a file is, where it
 * lives, who signs it and what goes in it. kp_cert_resolve() turns a row plus a finalized
 * config into concrete values (CN, O, SANs, usages, validity, paths). Adding a certificate is
 * adding a row.
 */
#ifndef KP_PKI_PKI_H
#define KP_PKI_PKI_H

#include "crypto/crypto.h"
#include "kpki/pki.h"

#define KP_PKI_DIR "etc/kubernetes/pki"
#define KP_KUBECONFIG_DIR "etc/kubernetes"
#define KP_KUBELET_PKI_DIR "var/lib/kubelet/pki"
#define KP_PATH_MAX 4096

enum kp_artifact_kind {
    KP_ART_CA,              /* <file>.crt + <file>.key, self-signed */
    KP_ART_CERT,            /* <file>.crt + <file>.key, signed by `ca` */
    KP_ART_SA,              /* <file>.key + <file>.pub */
    KP_ART_KUBECONFIG,      /* <file>: embedded CA, and a client cert (embedded, or `client`) */
    KP_ART_KUBELET_CLIENT,  /* <dir>/kubelet-client-<time>.pem + <file> symlink to it */
    KP_ART_KUBELET_SERVING, /* <file>.crt + <file>.key, by `ca` or self-signed per config */
};

enum kp_san_rule {
    KP_SAN_NONE,
    KP_SAN_CA_NAME,         /* DNS = the CN, as kubeadm's CAs carry */
    KP_SAN_APISERVER,
    KP_SAN_ETCD_SERVER,
    KP_SAN_ETCD_PEER,
    KP_SAN_KUBELET_SERVING,
};

enum kp_ku_rule {
    KP_KU_RULE_CA,      /* DigitalSignature | KeyEncipherment | CertSign | CRLSign */
    KP_KU_RULE_KUBEADM, /* DigitalSignature | KeyEncipherment (any key type) */
    KP_KU_RULE_KUBELET, /* DigitalSignature (+ KeyEncipherment for RSA), as the kubelet asks */
};

enum kp_server_rule {
    KP_SERVER_NONE,
    KP_SERVER_ENDPOINT, /* control-plane endpoint, else the local URL */
    KP_SERVER_LOCAL,    /* https://advertise:port */
};

/* Row flags */
enum {
    KP_SPEC_NOT_ON_JOIN = 1u << 0, /* only the first control-plane node gets it */
    KP_SPEC_SHARED = 1u << 1,      /* same on every control-plane node: taken from --join-from */
};

struct kp_cert_spec {
    const char *name;         /* kubeadm's name ("apiserver", "etcd-server", "admin.conf") */
    enum kp_artifact_kind kind;
    const char *file;         /* relative to the root; see kinds for extensions */
    const char *ca;           /* row name of the signer; NULL for CAs and sa */
    const char *common_name;  /* "%s" is replaced by the node name */
    const char *organization; /* NULL: none */
    enum kp_san_rule sans;
    unsigned ext_key_usage;   /* KP_EKU_* */
    enum kp_ku_rule key_usage;
    enum kp_server_rule server;
    const char *client;       /* kubeconfigs: row whose files hold the client credentials */
    unsigned flags;
    const char *description;
};

/* The table in kubeadm's phase order (every signer precedes what it signs). */
const struct kp_cert_spec *kp_cert_specs(size_t *count);
const struct kp_cert_spec *kp_cert_spec_find(const char *name);

#define KP_MAX_IPS 256

/* A row resolved against a config. */
struct kp_cert_request {
    const struct kp_cert_spec *spec;
    char common_name[300]; /* "system:node:" + a node name of up to 253 characters */
    struct kp_strlist organizations;
    struct kp_strlist dns_names; /* sorted, unique */
    struct kp_ip ips[KP_MAX_IPS];
    size_t ip_count;             /* unique, first-seen order */
    unsigned key_usage;          /* KP_KU_* */
    unsigned ext_key_usage;
    bool is_ca;
    int64_t validity;            /* seconds */
    char cert_path[KP_PATH_MAX]; /* absolute or root-relative as the root is given */
    char key_path[KP_PATH_MAX];  /* sa: sa.key; kubeconfig: the file itself */
    char extra_path[KP_PATH_MAX];/* sa: sa.pub; kubelet client: the kubelet-client dir */
    char rel_path[512];          /* the main file relative to the root, for reports */
    char server[320];            /* kubeconfigs */
};

void kp_cert_request_wipe(struct kp_cert_request *request);

/* Fills request for spec under a finalized config. key_type decides the kubelet rows' key
 * usage. The request must be wiped afterwards, also on failure. */
KP_MUST_CHECK enum kp_result kp_cert_resolve(const struct kp_cert_spec *spec,
                                             const struct kp_pki_config *config,
                                             enum kp_key_type key_type,
                                             struct kp_cert_request *request,
                                             struct kp_error *err);

/* Fills a certificate template from a request with the given validity window. The template
 * borrows from request (valid while request lives); ips/dns arrays point into it. */
void kp_cert_request_template(const struct kp_cert_request *request, int64_t not_before,
                              int64_t not_after, struct kp_cert_template *tmpl);

/* ---- kubeconfig files ---- */

/* The subset of a kubeconfig kpki reads and writes: the current context's cluster and user. */
struct kp_kubeconfig {
    char *cluster_name;
    char *server;
    unsigned char *ca_data; /* decoded certificate-authority-data */
    size_t ca_len;
    char *ca_file;
    char *user_name;
    unsigned char *cert_data; /* decoded client-certificate-data */
    size_t cert_len;
    char *cert_file;
    unsigned char *key_data; /* decoded client-key-data (cleansed on wipe) */
    size_t key_len;
    char *key_file;
    char *token;
    char *context_name;
};

void kp_kubeconfig_wipe(struct kp_kubeconfig *kubeconfig);

/* Renders YAML in clientcmd's shape (keys sorted, one cluster/context/user, current-context
 * set). Fields left NULL are omitted. *out: free with kp_secret_free(*out, *len). */
KP_MUST_CHECK enum kp_result kp_kubeconfig_render(const struct kp_kubeconfig *kubeconfig,
                                                  char **out, size_t *len,
                                                  struct kp_error *err);
/* Parses text and selects current-context's cluster and user. A kubeconfig without a usable
 * current-context, or whose context names a missing cluster or user, is KP_ERR_INVALID. */
KP_MUST_CHECK enum kp_result kp_kubeconfig_parse(const char *text, size_t len,
                                                 const char *source,
                                                 struct kp_kubeconfig *kubeconfig,
                                                 struct kp_error *err);

/* Rewrites a kubeconfig's text with new credentials for its current context's user
 * (client-certificate-data, client-key-data) and, when ca_pem is not NULL, its cluster's
 * certificate-authority-data; everything else (other users, contexts, preferences,
 * extensions) is kept. The key never passes through libyaml. *out: free with
 * kp_secret_free(*out, *out_len). */
KP_MUST_CHECK enum kp_result kp_kubeconfig_replace_credentials(
    const char *text, size_t len, const char *source, const char *cert_pem, size_t cert_len,
    const char *key_pem, size_t key_len, const char *ca_pem, size_t ca_len, char **out,
    size_t *out_len, struct kp_error *err);

/* ---- parallel key generation ---- */

struct kp_key_job {
    enum kp_key_type type;
    EVP_PKEY *key; /* out: owned by the job's owner after the call */
};

/* Generates every job's key using up to `threads` threads (0 = online CPUs); a single thread
 * for ECDSA-only work, where thread start-up costs more than the keys. Calls hooks->key_progress
 * as keys complete. On failure every generated key is freed and set to NULL. */
KP_MUST_CHECK enum kp_result kp_keypool_generate(struct kp_key_job *jobs, size_t count,
                                                 int threads, const struct kp_pki_hooks *hooks,
                                                 struct kp_error *err);

/* ---- existing files ---- */

/* What is on disk for a key pair, loaded. */
struct kp_existing_pair {
    bool cert_present;
    bool key_present;
    STACK_OF(X509) *certs; /* leaf first, then any chain in the file */
    EVP_PKEY *key;
    char *cert_pem;        /* raw file text (for copies) */
    size_t cert_pem_len;
    char *key_pem;         /* cleansed on wipe */
    size_t key_pem_len;
};

void kp_existing_pair_wipe(struct kp_existing_pair *pair);

/* Loads cert_path and key_path if they exist (both may name the same file, as the kubelet's
 * pem does). A file that exists but cannot be read or parsed is an error naming it. */
KP_MUST_CHECK enum kp_result kp_existing_pair_load(const char *cert_path, const char *key_path,
                                                   struct kp_existing_pair *pair,
                                                   struct kp_error *err);


/* Largest PEM or kubeconfig file kpki reads. */
#define KP_PKI_FILE_MAX (1024 * 1024)

#endif
