/*
 * pki/init_internal.h - what init.c (keys, certificates, the commit) and inspect.c (deciding
 * what to do with each existing file) share. Private to those two files.
 */
#ifndef KP_PKI_INIT_INTERNAL_H
#define KP_PKI_INIT_INTERNAL_H

#include "pki/pki.h"

#define KP_INIT_MAX_ITEMS 32

/* One row of the table during a run: what is on disk, what will be made. */
struct item {
    const struct kp_cert_spec *spec;
    struct kp_cert_request req;
    enum kp_pki_action action;
    bool skip;          /* not on this node */
    bool external;      /* CA certificate without key */
    bool new_key;       /* key to generate */
    bool new_cert;      /* certificate (or kubeconfig, or sa.pub) to create */
    bool write_key;     /* the key file must be written (new, or copied) */
    bool issued;        /* new_cert already made, or taken from a signed file dropped in */
    bool replace;       /* the destination exists and is rewritten (a completed kubeconfig) */
    X509_REQ *csr;      /* --csr-only: the request to write (owned) */
    bool write_csr;
    EVP_PKEY *key;      /* owned */
    X509 *cert;         /* owned: the certificate, existing or new (a kubeconfig's client's) */
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
    struct item items[KP_INIT_MAX_ITEMS];
    size_t count;
    char root_real[KP_PATH_MAX];
    int lock_fd;
};

/* Records a warning in the report (it is printed by the caller). */
void kp_init_warn(struct run *run, const char *fmt, ...) KP_PRINTF(2, 3);
struct item *kp_init_find(struct run *run, const char *name);
/* The signer of item, or NULL for rows without one (and self-signed kubelet serving). */
struct item *kp_init_signer(struct run *run, const struct item *item);
/* Issues item's certificate from its key and signer (init.c). */
KP_MUST_CHECK enum kp_result kp_init_issue(struct run *run, struct item *item,
                                           struct kp_error *err);
/* The absolute path kubelet.conf names for the kubelet's rotating certificate. */
KP_MUST_CHECK enum kp_result kp_init_kubelet_link(const struct run *run, char *out, size_t size,
                                                  struct kp_error *err);

/* Where --csr-only keeps a row's key, request and (signed) certificate: <base>.key/.csr/.crt
 * for certificates, <file>.csr/.crt beside a kubeconfig, kubelet-client.key/.csr/.crt for the
 * kubelet (whose pem is assembled once the certificate is there). Returns false for rows
 * without a request (CAs, sa, kubelet.conf, a self-signed kubelet serving certificate). */
bool kp_init_csr_paths(const struct run *run, const struct item *item, char *key, char *csr,
                       char *crt, size_t size);

/* Step 2 of init (inspect.c): resolve every row and decide, writing nothing. */
KP_MUST_CHECK enum kp_result kp_init_inspect_all(struct run *run, struct kp_error *err);

#endif
