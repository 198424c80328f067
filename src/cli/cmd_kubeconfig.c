/*
 * kpki kubeconfig user: a kubeconfig for a new user (kubeadm's `kubeconfig user`).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"

static const struct kp_cli_flag user_flags[] = {
    {"name", "USER", NULL, "the user: the certificate's CN (required)"},
    {"org", "GROUP", NULL, "a group: an O of the certificate (repeatable)"},
    {"validity", "DURATION", "8760h", "how long the client certificate is valid"},
    {"server", "URL", "the control-plane endpoint", "the API server URL to put in the file"},
    {"output-file", "FILE", "stdout", "write the kubeconfig there (0600, atomically; an existing "
                                      "file is not replaced)"},
    {"config", "FILE", NULL, "read tree options from a YAML file (as kpki init)"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(const struct kp_cli_flag *options)
{
    printf("Usage: kpki kubeconfig user --name USER [--org GROUP]... [flags]\n\n"
           "Writes a kubeconfig for a new user: a new key and a client certificate signed by the\n"
           "cluster CA of the tree under --root (CN = USER, O = each GROUP), with the CA embedded\n"
           "and the cluster's server URL, as 'kubeadm kubeconfig user' does.\n\nFlags:\n");
    kp_cli_print_flags(user_flags);
    printf("\nTree options (as kpki init; read from the tree when absent):\n");
    kp_cli_print_flags(options);
}

static const struct kp_cli_flag bootstrap_flags[] = {
    {"token", "TOKEN", NULL, "the bootstrap token (kpki token create) (required)"},
    {"server", "URL", "the control-plane endpoint", "the API server URL to put in the file"},
    {"output-file", "FILE", "stdout", "write the kubeconfig there (0600, atomically; an existing "
                                      "file is not replaced)"},
    {"config", "FILE", NULL, "read tree options from a YAML file (as kpki init)"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

/* The flags both subcommands share: no positional arguments, an https --server, and an
 * --output-file that does not exist yet. */
static enum kp_result check_common(const struct kp_cli_parsed *parsed, const char *server,
                                   const char *output_file, struct kp_error *err)
{
    if (parsed->positional_count > 0) {
        return kp_error_set(err, KP_ERR_INVALID, "unexpected argument '%s'",
                            parsed->positional[0]);
    }
    if (server != NULL && strncmp(server, "https://", 8) != 0) {
        return kp_error_set(err, KP_ERR_INVALID, "--server '%s' is not an https:// URL", server);
    }
    if (output_file != NULL && kp_path_exists(output_file)) {
        return kp_error_set(err, KP_ERR_CONFLICT, "--output-file '%s' exists; kpki does not "
                            "replace it", output_file);
    }
    return KP_OK;
}

static enum kp_result write_output(const char *output_file, const char *yaml, size_t len,
                                   struct kp_error *err)
{
    if (output_file == NULL) {
        if (fwrite(yaml, 1, len, stdout) != len) {
            return kp_error_errno(err, errno, "cannot write the kubeconfig to standard output");
        }
        return KP_OK;
    }
    struct kp_file_batch *batch = kp_file_batch_new();
    enum kp_result rc = batch != NULL
                            ? kp_file_batch_add_new(batch, output_file, yaml, len, 0600, err)
                            : kp_error_set(err, KP_ERR_IO, "out of memory");
    if (rc == KP_OK) {
        rc = kp_file_batch_commit(batch, err);
    }
    kp_file_batch_free(batch);
    return rc;
}

/* kpki kubeconfig bootstrap: bootstrap-kubelet.conf for a joining node. */
static int cmd_bootstrap(int argc, char **argv, const struct kp_cli_flag *options)
{
    const struct kp_cli_flag *tables[] = {bootstrap_flags, options};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "kubeconfig bootstrap", tables, 2, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help")) {
        printf("Usage: kpki kubeconfig bootstrap --token TOKEN [flags]\n\n"
               "Writes a bootstrap kubeconfig (kubeadm's bootstrap-kubelet.conf): the cluster CA of\n"
               "the tree under --root, the server URL and the bootstrap token. A joining node's\n"
               "kubelet uses it to request its client certificate.\n\nFlags:\n");
        kp_cli_print_flags(bootstrap_flags);
        return 0;
    }
    const char *token = kp_cli_value(&parsed, "token");
    const char *server = kp_cli_value(&parsed, "server");
    const char *output_file = kp_cli_value(&parsed, "output-file");
    enum kp_result rc = KP_OK;
    if (token == NULL) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "--token is required");
    } else {
        rc = check_common(&parsed, server, output_file, &err);
    }
    struct kp_pki_config config;
    bool have_config = false;
    if (rc == KP_OK) {
        rc = kp_cli_tree_config(&config, &parsed, &err);
        have_config = rc == KP_OK;
    }
    char *yaml = NULL;
    size_t len = 0;
    if (rc == KP_OK) {
        rc = kp_pki_kubeconfig_bootstrap(&config, token, server, &yaml, &len, &err);
    }
    if (rc == KP_OK) {
        rc = write_output(output_file, yaml, len, &err);
    }
    kp_secret_free(yaml, len);
    if (have_config) {
        kp_pki_config_wipe(&config);
    }
    return rc == KP_OK ? 0 : kp_cli_fail(&err);
}

int kp_cmd_kubeconfig(int argc, char **argv)
{
    const struct kp_cli_flag *options = kp_cli_pki_option_flags();
    const struct kp_cli_flag *tables[] = {user_flags, options};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (argc >= 1 && strcmp(argv[0], "bootstrap") == 0) {
        return cmd_bootstrap(argc - 1, argv + 1, options);
    }
    if (argc < 1 || strcmp(argv[0], "user") != 0) {
        if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
            print_help(options);
            return 0;
        }
        kp_error_set(&err, KP_ERR_INVALID, "give 'kpki kubeconfig user --name USER' or 'kpki "
                     "kubeconfig bootstrap --token TOKEN' (see kpki kubeconfig --help)");
        return kp_cli_fail(&err);
    }
    if (kp_cli_parse(argc - 1, argv + 1, "kubeconfig user", tables, 2, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help")) {
        print_help(options);
        return 0;
    }
    const char *user = kp_cli_value(&parsed, "name");
    const char *validity_text = kp_cli_value(&parsed, "validity");
    const char *server = kp_cli_value(&parsed, "server");
    const char *output_file = kp_cli_value(&parsed, "output-file");
    int64_t validity = 8760LL * 3600;
    enum kp_result rc = KP_OK;
    if (user == NULL) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "--name is required");
    } else if (validity_text != NULL &&
               kp_duration_parse(validity_text, &validity, &err) != KP_OK) {
        rc = kp_error_prefix(&err, "--validity");
    } else {
        rc = check_common(&parsed, server, output_file, &err);
    }
    struct kp_strlist orgs = {0};
    for (size_t i = 0; rc == KP_OK && i < parsed.count; i++) {
        if (strcmp(parsed.args[i].name, "org") == 0) {
            rc = kp_strlist_add(&orgs, parsed.args[i].value, &err);
        }
    }
    if (rc == KP_OK && kp_strlist_contains(&orgs, "system:masters")) {
        kp_log_warn("O=system:masters bypasses RBAC entirely; prefer a group bound to a role");
    }
    struct kp_pki_config config;
    bool have_config = false;
    if (rc == KP_OK) {
        rc = kp_cli_tree_config(&config, &parsed, &err);
        have_config = rc == KP_OK;
    }
    char *yaml = NULL;
    size_t len = 0;
    if (rc == KP_OK) {
        rc = kp_pki_kubeconfig_user(&config, kp_clock_system(), user, &orgs, validity, server,
                                    &yaml, &len, &err);
    }
    if (rc == KP_OK) {
        rc = write_output(output_file, yaml, len, &err);
    }
    int exit_code = rc == KP_OK ? 0 : kp_cli_fail(&err);
    kp_secret_free(yaml, len);
    kp_strlist_wipe(&orgs);
    if (have_config) {
        kp_pki_config_wipe(&config);
    }
    return exit_code;
}
