/*
 * kpki apiserver: the Kubernetes API server over mutual TLS, on the tree under --root.
 *
 * Flags are kube-apiserver's where it has one (docs/cli.md lists them); the certificate and key
 * paths default to the tree's (what kubeadm's static pod manifest passes). Runs until SIGINT or
 * SIGTERM, then stops cleanly (open watches end, the store is closed).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/apiserver.h"
#include "cli/cli.h"
#include "core/core.h"

static const struct kp_cli_flag flags[] = {
    {"root", "DIR", "/", "the tree: certificate paths default to DIR/etc/kubernetes/pki/..."},
    {"bind-address", "IP", "0.0.0.0", "the address to listen on"},
    {"secure-port", "PORT", "from the tree, else 6443", "the HTTPS port (0: any free port)"},
    {"advertise-address", "IP", "from the tree", "the address clients are told (discovery, "
                                                  "jwks_uri)"},
    {"tls-cert-file", "FILE", "pki/apiserver.crt", "the serving certificate (chain)"},
    {"tls-private-key-file", "FILE", "pki/apiserver.key", "its key"},
    {"client-ca-file", "FILE", "pki/ca.crt", "CA(s) for client certificates"},
    {"client-crl-file", "FILE", "pki/ca.crl", "CRL(s) for client certificates (kpki; watched, "
                                              "absent: no revocation; empty: off)"},
    {"requestheader-client-ca-file", "FILE", "pki/front-proxy-ca.crt",
     "CA of the front proxy's client certificate"},
    {"requestheader-client-crl-file", "FILE", "pki/front-proxy-ca.crl",
     "CRL(s) for the front proxy's certificate (kpki; as --client-crl-file)"},
    {"requestheader-allowed-names", "NAMES", "front-proxy-client",
     "CNs allowed to assert identities by headers (comma-separated; empty: any)"},
    {"requestheader-username-headers", "HEADERS", "X-Remote-User", "comma-separated"},
    {"requestheader-group-headers", "HEADERS", "X-Remote-Group", "comma-separated"},
    {"requestheader-extra-headers-prefix", "PREFIXES", "X-Remote-Extra-", "comma-separated"},
    {"service-account-key-file", "FILE", "pki/sa.pub", "keys that verify service-account tokens "
                                                       "(repeatable)"},
    {"service-account-signing-key-file", "FILE", "pki/sa.key", "the key that signs them"},
    {"service-account-issuer", "URL", "https://kubernetes.default.svc.cluster.local",
     "the tokens' iss (repeatable: the first signs, all are accepted)"},
    {"service-account-jwks-uri", "URL", "https://ADVERTISE:PORT/openid/v1/jwks",
     "jwks_uri in the discovery document"},
    {"service-account-max-token-expiration", "DURATION", "none", "cap on requested lifetimes"},
    {"service-account-extend-token-expiration", "BOOL", "true",
     "give the kubelet's 3607 s tokens a year, with warnafter"},
    {"api-audiences", "AUDIENCES", "the issuer", "audiences the API accepts (comma-separated)"},
    {"enable-bootstrap-token-auth", "BOOL", "true", "authenticate bootstrap tokens"},
    {"anonymous-auth", "BOOL", "false", "serve requests without credentials as system:anonymous"},
    {"token-cache-entries", "N", "4096",
     "service-account tokens whose signature was verified, remembered (by SHA-256, until their "
     "exp) so it is checked once; 0 turns the cache off"},
    {"client-cert-cache-entries", "N", "4096",
     "client certificate chains whose verification is remembered for 60 s at most (by SHA-256; "
     "a reload of the CAs or CRLs forgets them), so a client that reconnects is not verified "
     "again; 0 turns the cache off (kpki)"},
    {"tls-session-cache-entries", "N", "0",
     "TLS sessions kept so clients can resume them (kubectl and the kubelet never do); 0: no "
     "resumption"},
    {"authorization-mode", "MODES", "Node,RBAC", "Node, RBAC, AlwaysAllow, AlwaysDeny"},
    {"storage-file", "FILE", "DIR/var/lib/kpki/apiserver.db", "the SQLite store (kpki)"},
    {"threads", "N", "one per CPU", "worker threads (kpki)"},
    {"max-connections", "N", "10000", "open connections beyond it are closed (kpki)"},
    {"max-request-body-bytes", "N", "3145728", "bigger bodies get 413 (kpki)"},
    {"max-request-header-bytes", "N", "65536", "bigger headers get 431 (kpki)"},
    {"request-timeout", "DURATION", "60s", "time to receive a whole request"},
    {"min-request-timeout", "SECONDS", "1800", "watches end after a random time in [t, 2t)"},
    {"port-file", "FILE", NULL, "write the port there once serving (kpki; for --secure-port 0)"},
    {"v", "LEVEL", "2", "log verbosity: 0 errors and warnings, 2 info, 4 debug"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(void)
{
    printf("Usage: kpki apiserver [--root DIR] [flags]\n\n"
           "Serves the Kubernetes API over mutual TLS on the tree under --root: client\n"
           "certificates, service-account and bootstrap tokens, the Node and RBAC authorizers,\n"
           "objects in an embedded SQLite store. Point kubectl at DIR/etc/kubernetes/admin.conf.\n"
           "The certificate, CA, CRL and service-account key files are reloaded when they\n"
           "change (polled every second). Runs until SIGINT or SIGTERM.\n\nFlags:\n");
    kp_cli_print_flags(flags);
}

static enum kp_result parse_bool(const char *flag, const char *value, bool *out,
                                 struct kp_error *err)
{
    if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
        *out = true;
    } else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
        *out = false;
    } else {
        return kp_error_set(err, KP_ERR_INVALID, "--%s: '%s' is not true or false", flag, value);
    }
    return KP_OK;
}

static enum kp_result parse_int(const char *flag, const char *value, long long min,
                                long long max, long long *out, struct kp_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max) {
        return kp_error_set(err, KP_ERR_INVALID, "--%s: '%s' is not an integer in [%lld, %lld]",
                            flag, value, min, max);
    }
    *out = v;
    return KP_OK;
}

/* Paths the tree provides, as strings owned by `paths`. */
static const char *tree_path(struct kp_strlist *paths, const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    if (kp_strlist_add(paths, path, NULL) != KP_OK) {
        return NULL;
    }
    return paths->items[paths->count - 1];
}

struct options {
    struct kp_apiserver_config config;
    struct kp_strlist paths;      /* owns the strings config points at */
    const char *port_file;
    int verbosity;
};

static enum kp_result apply_flags(struct options *o, const struct kp_cli_parsed *parsed,
                                  struct kp_error *err)
{
    struct kp_apiserver_config *c = &o->config;
    enum kp_result rc = KP_OK;
    bool key_files_given = false, issuers_given = false;
    for (size_t i = 0; rc == KP_OK && i < parsed->count; i++) {
        const char *name = parsed->args[i].name;
        const char *v = parsed->args[i].value;
        long long n = 0;
        int64_t seconds = 0;
        if (strcmp(name, "bind-address") == 0) {
            c->bind_address = v;
        } else if (strcmp(name, "secure-port") == 0) {
            rc = parse_int(name, v, 0, 65535, &n, err);
            c->secure_port = (int)n;
        } else if (strcmp(name, "advertise-address") == 0) {
            c->advertise_address = v;
        } else if (strcmp(name, "tls-cert-file") == 0) {
            c->tls_cert_file = v;
        } else if (strcmp(name, "tls-private-key-file") == 0) {
            c->tls_private_key_file = v;
        } else if (strcmp(name, "client-ca-file") == 0) {
            c->client_ca_file = v;
        } else if (strcmp(name, "client-crl-file") == 0) {
            c->client_crl_file = *v ? v : NULL;
        } else if (strcmp(name, "requestheader-client-ca-file") == 0) {
            c->requestheader_client_ca_file = *v ? v : NULL;
        } else if (strcmp(name, "requestheader-client-crl-file") == 0) {
            c->requestheader_client_crl_file = *v ? v : NULL;
        } else if (strcmp(name, "requestheader-allowed-names") == 0) {
            kp_strlist_wipe(&c->requestheader_allowed_names);
            rc = kp_strlist_add_split(&c->requestheader_allowed_names, v, err);
        } else if (strcmp(name, "requestheader-username-headers") == 0) {
            kp_strlist_wipe(&c->requestheader_username_headers);
            rc = kp_strlist_add_split(&c->requestheader_username_headers, v, err);
        } else if (strcmp(name, "requestheader-group-headers") == 0) {
            kp_strlist_wipe(&c->requestheader_group_headers);
            rc = kp_strlist_add_split(&c->requestheader_group_headers, v, err);
        } else if (strcmp(name, "requestheader-extra-headers-prefix") == 0) {
            kp_strlist_wipe(&c->requestheader_extra_headers_prefix);
            rc = kp_strlist_add_split(&c->requestheader_extra_headers_prefix, v, err);
        } else if (strcmp(name, "service-account-key-file") == 0) {
            if (!key_files_given) {
                kp_strlist_wipe(&c->service_account_key_files);
            }
            key_files_given = true;
            rc = kp_strlist_add(&c->service_account_key_files, v, err);
        } else if (strcmp(name, "service-account-signing-key-file") == 0) {
            c->service_account_signing_key_file = v;
        } else if (strcmp(name, "service-account-issuer") == 0) {
            if (!issuers_given) {
                kp_strlist_wipe(&c->service_account_issuers);
            }
            issuers_given = true;
            rc = kp_strlist_add(&c->service_account_issuers, v, err);
        } else if (strcmp(name, "service-account-jwks-uri") == 0) {
            c->service_account_jwks_uri = v;
        } else if (strcmp(name, "service-account-max-token-expiration") == 0) {
            rc = kp_duration_parse(v, &seconds, err);
            c->service_account_max_token_expiration = seconds;
        } else if (strcmp(name, "service-account-extend-token-expiration") == 0) {
            rc = parse_bool(name, v, &c->service_account_extend_token_expiration, err);
        } else if (strcmp(name, "api-audiences") == 0) {
            kp_strlist_wipe(&c->api_audiences);
            rc = kp_strlist_add_split(&c->api_audiences, v, err);
        } else if (strcmp(name, "enable-bootstrap-token-auth") == 0) {
            rc = parse_bool(name, v, &c->enable_bootstrap_token_auth, err);
        } else if (strcmp(name, "anonymous-auth") == 0) {
            rc = parse_bool(name, v, &c->anonymous_auth, err);
        } else if (strcmp(name, "token-cache-entries") == 0) {
            rc = parse_int(name, v, 0, 1 << 24, &n, err);
            c->token_cache_entries = n;
        } else if (strcmp(name, "client-cert-cache-entries") == 0) {
            rc = parse_int(name, v, 0, 1 << 24, &n, err);
            c->client_cert_cache_entries = n;
        } else if (strcmp(name, "tls-session-cache-entries") == 0) {
            rc = parse_int(name, v, 0, 1 << 20, &n, err);
            c->tls_session_cache_entries = n;
        } else if (strcmp(name, "authorization-mode") == 0) {
            kp_strlist_wipe(&c->authorization_modes);
            rc = kp_strlist_add_split(&c->authorization_modes, v, err);
        } else if (strcmp(name, "storage-file") == 0) {
            c->storage_file = v;
        } else if (strcmp(name, "threads") == 0) {
            rc = parse_int(name, v, 0, 256, &n, err);
            c->threads = (int)n;
        } else if (strcmp(name, "max-connections") == 0) {
            rc = parse_int(name, v, 1, 1000000, &n, err);
            c->limits.max_connections = (int)n;
        } else if (strcmp(name, "max-request-body-bytes") == 0) {
            rc = parse_int(name, v, 1024, 1LL << 30, &n, err);
            c->limits.max_body_bytes = (size_t)n;
        } else if (strcmp(name, "max-request-header-bytes") == 0) {
            rc = parse_int(name, v, 1024, 1LL << 24, &n, err);
            c->limits.max_header_bytes = (size_t)n;
        } else if (strcmp(name, "request-timeout") == 0) {
            rc = kp_duration_parse(v, &seconds, err);
            c->limits.read_timeout_s = (int)(seconds > 86400 ? 86400 : seconds);
        } else if (strcmp(name, "min-request-timeout") == 0) {
            rc = parse_int(name, v, 1, 86400, &n, err);
            c->min_request_timeout = n;
        } else if (strcmp(name, "port-file") == 0) {
            o->port_file = v;
        } else if (strcmp(name, "v") == 0) {
            rc = parse_int(name, v, 0, 10, &n, err);
            o->verbosity = (int)n;
        }
        if (rc != KP_OK && strncmp(err->message, "--", 2) != 0) {
            kp_error_prefix(err, "--%s", name);
        }
    }
    return rc;
}

/* Defaults from the tree: kubeadm's paths, and the advertise address and port its
 * kubeconfigs name. */
static enum kp_result tree_defaults(struct options *o, const char *root, struct kp_error *err)
{
    struct kp_apiserver_config *c = &o->config;
    struct kp_strlist *p = &o->paths;
    c->tls_cert_file = tree_path(p, root, "etc/kubernetes/pki/apiserver.crt");
    c->tls_private_key_file = tree_path(p, root, "etc/kubernetes/pki/apiserver.key");
    c->client_ca_file = tree_path(p, root, "etc/kubernetes/pki/ca.crt");
    /* The CRLs `kpki revoke` writes, watched even before they exist: the first revocation
     * creates the file, and the running server picks it up. */
    c->client_crl_file = tree_path(p, root, "etc/kubernetes/pki/ca.crl");
    c->requestheader_client_ca_file = tree_path(p, root, "etc/kubernetes/pki/front-proxy-ca.crt");
    c->requestheader_client_crl_file =
        tree_path(p, root, "etc/kubernetes/pki/front-proxy-ca.crl");
    c->service_account_signing_key_file = tree_path(p, root, "etc/kubernetes/pki/sa.key");
    c->storage_file = tree_path(p, root, "var/lib/kpki/apiserver.db");
    const char *sa_pub = tree_path(p, root, "etc/kubernetes/pki/sa.pub");
    enum kp_result rc = sa_pub ? KP_OK : kp_error_set(err, KP_ERR_IO, "out of memory");
    if (rc == KP_OK) {
        rc = kp_strlist_add(&c->service_account_key_files, sa_pub, err);
    }
    if (rc == KP_OK) {
        rc = kp_strlist_add(&c->requestheader_allowed_names, "front-proxy-client", err);
    }
    if (rc == KP_OK) {
        rc = kp_strlist_add(&c->requestheader_username_headers, "X-Remote-User", err);
    }
    if (rc == KP_OK) {
        rc = kp_strlist_add(&c->requestheader_group_headers, "X-Remote-Group", err);
    }
    if (rc == KP_OK) {
        rc = kp_strlist_add(&c->requestheader_extra_headers_prefix, "X-Remote-Extra-", err);
    }
    /* The address and port the tree's kubeconfigs point at. */
    struct kp_pki_config tree;
    if (rc == KP_OK && kp_pki_config_init(&tree, err) == KP_OK) {
        kp_pki_config_infer(&tree, root);
        if (tree.advertise_set) {
            char ip[64];
            kp_ip_format(&tree.advertise, ip, sizeof(ip));
            if (kp_strlist_add(p, ip, NULL) == KP_OK) {
                c->advertise_address = p->items[p->count - 1];
            }
        }
        c->secure_port = tree.bind_port;
        kp_pki_config_wipe(&tree);
    }
    return rc;
}

static enum kp_result write_port_file(const char *path, int port, struct kp_error *err)
{
    char text[16];
    int len = snprintf(text, sizeof(text), "%d\n", port);
    return kp_file_write_atomic(path, text, (size_t)len, 0644, err);
}

static enum kp_result ensure_storage_dir(const char *storage_file, struct kp_error *err)
{
    char dir[4096];
    enum kp_result rc = kp_path_dirname(dir, sizeof(dir), storage_file, err);
    if (rc == KP_OK && !kp_path_exists(dir)) {
        rc = kp_file_mkdirs(dir, 0700, err);
    }
    return rc;
}

int kp_cmd_apiserver(int argc, char **argv)
{
    const struct kp_cli_flag *tables[] = {flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "apiserver", tables, 1, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help")) {
        print_help();
        return 0;
    }
    if (parsed.positional_count > 0) {
        kp_error_set(&err, KP_ERR_INVALID, "unexpected argument '%s'", parsed.positional[0]);
        return kp_cli_fail(&err);
    }
    struct options o = {.verbosity = 2};
    kp_apiserver_config_init(&o.config);
    const char *root = kp_cli_value(&parsed, "root");
    enum kp_result rc = tree_defaults(&o, root ? root : "", &err);
    if (rc == KP_OK) {
        rc = apply_flags(&o, &parsed, &err);
    }
    if (rc == KP_OK) {
        kp_log_set_level(o.verbosity >= 4   ? KP_LOG_DEBUG
                         : o.verbosity >= 2 ? KP_LOG_INFO
                                            : KP_LOG_WARN);
        rc = ensure_storage_dir(o.config.storage_file, &err);
        if (rc != KP_OK) {
            kp_error_prefix(&err, "--storage-file");
        }
    }
    /* Block the stop signals before any thread starts, so only sigwait below receives them;
     * a broken client connection must not kill the server (SIGPIPE ignored). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct kp_apiserver *server = NULL;
    if (rc == KP_OK) {
        rc = kp_apiserver_start(&o.config, &server, &err);
    }
    if (rc == KP_OK && o.port_file != NULL) {
        rc = write_port_file(o.port_file, kp_apiserver_port(server), &err);
    }
    int exit_code = 0;
    if (rc == KP_OK) {
        kp_log_info("kpki apiserver: serving on https://%s:%d (store %s)",
                    o.config.bind_address, kp_apiserver_port(server), o.config.storage_file);
        int sig = 0;
        sigwait(&stop, &sig);
        kp_log_info("kpki apiserver: %s received, stopping", sig == SIGINT ? "SIGINT"
                                                                           : "SIGTERM");
    } else {
        exit_code = kp_cli_fail(&err);
    }
    kp_apiserver_stop(server);
    kp_apiserver_config_wipe(&o.config);
    kp_strlist_wipe(&o.paths);
    return exit_code;
}
