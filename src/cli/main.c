/*
 * kpki: one binary, its subcommands the tools (and, later, the daemons).
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"init", kp_cmd_init, "build the control-plane PKI: CAs, certificates, keys, kubeconfigs"},
    {"check", kp_cmd_check, "audit every certificate, key and kubeconfig of a tree"},
    {"kubeconfig", kp_cmd_kubeconfig, "write a kubeconfig for a new user (kubeconfig user)"},
    {"renew", kp_cmd_renew, "re-issue certificates from the CAs on disk; confirm what is served"},
    {"revoke", kp_cmd_revoke, "revoke a certificate: add it to its CA's CRL"},
    {"crl", kp_cmd_crl, "list or re-sign the CRLs"},
    {"verify", kp_cmd_verify, "verify a certificate chain for a role, as the components do"},
    {"inspect", kp_cmd_inspect,
     "show what any certificate, key, CSR, CRL, kubeconfig or JWT holds"},
    {"token", kp_cmd_token, "create, list and delete bootstrap tokens (kubeadm token)"},
    {"apiserver", kp_cmd_apiserver, "serve the Kubernetes API over mutual TLS on the tree"},
    {"version", kp_cmd_version, "print the version"},
};

static void usage(FILE *out)
{
    fprintf(out, "kpki - the Kubernetes control-plane PKI and its mutual TLS\n\n"
                 "Usage: kpki <command> [flags]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\nRun 'kpki <command> --help' for a command's flags. Reference: docs/cli.md\n");
}

int main(int argc, char **argv)
{
    /* Do not load openssl.cnf: kpki's behaviour must not depend on the host's OpenSSL config,
     * and loading it costs milliseconds per run. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        return kp_cmd_version(0, NULL);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return commands[i].run(argc - 2, argv + 2);
        }
    }
    kp_log_error("unknown command '%s' (see kpki --help)", name);
    return 1;
}
