/*
 * kpki init: flags and config file -> kp_pki_config -> kp_pki_init -> a report.
 * Precedence: defaults < --config file < flags.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "kpki/pki.h"

static const struct kp_cli_flag init_own_flags[] = {
    {"config", "FILE", NULL, "read options from a YAML file (keys are the flag names)"},
    {"output", "FORMAT", "text", "text or json"},
    {"quiet", NULL, NULL, "print nothing on success but warnings"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(const struct kp_cli_flag *options)
{
    printf("Usage: kpki init [flags]\n\n"
           "Builds the Kubernetes control-plane PKI under --root, as kubeadm's 'init phase certs\n"
           "all' and 'init phase kubeconfig all' would, plus the kubelet's client and serving\n"
           "certificates: three CAs, every component certificate and key, sa.key/sa.pub, and\n"
           "admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf, kubelet.conf.\n"
           "Existing consistent files are reused; missing ones are created; an inconsistent one\n"
           "stops the run before anything is written. A CA key is never overwritten.\n\n"
           "Options (also accepted as keys of the --config YAML file):\n");
    kp_cli_print_flags(options);
    printf("\nOther flags:\n");
    kp_cli_print_flags(init_own_flags);
    printf("\nExit codes: 0 done, 1 invalid input, 3 permission denied, 4 not found,\n"
           "5 an existing file conflicts, 6 I/O error, 7 internal error.\n"
           "See docs/cli.md and docs/pki-tree.md.\n");
}

static void show_progress(void *context, size_t done, size_t total)
{
    (void)context;
    fprintf(stderr, "\rkpki: generating keys %zu/%zu", done, total);
    if (done == total) {
        fprintf(stderr, "\r%40s\r", "");
    }
}

static void print_text(const struct kp_pki_config *config, const struct kp_pki_report *report)
{
    size_t created = 0;
    int name_width = 4;
    int path_width = 4;
    for (size_t i = 0; i < report->count; i++) {
        const struct kp_pki_report_entry *entry = &report->entries[i];
        created += entry->action == KP_PKI_CREATED || entry->action == KP_PKI_COMPLETED ||
                   entry->action == KP_PKI_COPIED || entry->action == KP_PKI_CSR;
        name_width = (int)strlen(entry->name) > name_width ? (int)strlen(entry->name) : name_width;
        path_width = (int)strlen(entry->path) > path_width ? (int)strlen(entry->path) : path_width;
    }
    printf("kpki init: %zu of %zu items written under %s in %.3f s (%zu keys generated in "
           "%.3f s)\n",
           created, report->count, config->root, report->total_seconds, report->keys_generated,
           report->keygen_seconds);
    printf("%-10s %-*s %-*s %-12s %-21s %s\n", "ACTION", name_width, "NAME", path_width, "FILE",
           "KEY", "EXPIRES", "SUBJECT");
    for (size_t i = 0; i < report->count; i++) {
        const struct kp_pki_report_entry *entry = &report->entries[i];
        char expires[32] = "-";
        if (entry->not_after != 0) {
            kp_time_format_rfc3339(entry->not_after, expires, sizeof(expires));
        }
        printf("%-10s %-*s %-*s %-12s %-21s %s\n", kp_pki_action_name(entry->action), name_width,
               entry->name, path_width, entry->path, entry->key[0] != '\0' ? entry->key : "-",
               expires, entry->subject[0] != '\0' ? entry->subject : "-");
    }
}

static int print_json(const struct kp_pki_config *config, const struct kp_pki_report *report)
{
    json_t *items = json_array();
    for (size_t i = 0; i < report->count; i++) {
        const struct kp_pki_report_entry *entry = &report->entries[i];
        json_t *item = json_pack("{s:s, s:s, s:s}", "name", entry->name, "path", entry->path,
                                 "action", kp_pki_action_name(entry->action));
        if (entry->subject[0] != '\0') {
            json_object_set_new(item, "subject", json_string(entry->subject));
        }
        if (entry->key[0] != '\0') {
            json_object_set_new(item, "key", json_string(entry->key));
        }
        if (entry->not_after != 0) {
            char expires[32];
            kp_time_format_rfc3339(entry->not_after, expires, sizeof(expires));
            json_object_set_new(item, "notAfter", json_string(expires));
        }
        json_array_append_new(items, item);
    }
    json_t *warnings = json_array();
    for (size_t i = 0; i < report->warnings.count; i++) {
        json_array_append_new(warnings, json_string(report->warnings.items[i]));
    }
    json_t *root = json_pack("{s:s, s:o, s:o, s:I, s:f, s:f}", "root", config->root, "items",
                             items, "warnings", warnings, "keysGenerated",
                             (json_int_t)report->keys_generated, "keygenSeconds",
                             report->keygen_seconds, "totalSeconds", report->total_seconds);
    int rc = root != NULL ? json_dumpf(root, stdout, JSON_INDENT(2)) : -1;
    printf("\n");
    json_decref(root);
    return rc == 0 ? 0 : kp_result_exit_code(KP_ERR_INTERNAL);
}

int kp_cmd_init(int argc, char **argv)
{
    const struct kp_cli_flag *options = kp_cli_pki_option_flags();
    const struct kp_cli_flag *tables[] = {options, init_own_flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "init", tables, 2, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help")) {
        print_help(options);
        return 0;
    }
    if (parsed.positional_count > 0) {
        kp_error_set(&err, KP_ERR_INVALID, "unexpected argument '%s' (see kpki init --help)",
                     parsed.positional[0]);
        return kp_cli_fail(&err);
    }
    enum kp_cli_output output;
    if (kp_cli_output_parse(kp_cli_value(&parsed, "output"), &output, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    bool quiet = kp_cli_has(&parsed, "quiet");
    struct kp_pki_config config;
    if (kp_pki_config_init(&config, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    enum kp_result rc = kp_cli_load_pki_options(&config, &parsed, &err);
    if (rc == KP_OK) {
        rc = kp_pki_config_finalize(&config, &err);
    }
    struct kp_pki_report report = {0};
    if (rc == KP_OK) {
        struct kp_pki_hooks hooks = {NULL, NULL};
        if (!quiet && output == KP_CLI_OUTPUT_TEXT && isatty(STDERR_FILENO)) {
            hooks.key_progress = show_progress;
        }
        rc = kp_pki_init(&config, kp_clock_system(), &hooks, &report, &err);
    }
    for (size_t i = 0; i < report.warnings.count; i++) {
        kp_log_warn("%s", report.warnings.items[i]);
    }
    int exit_code = 0;
    if (rc != KP_OK) {
        exit_code = kp_cli_fail(&err);
    } else if (output == KP_CLI_OUTPUT_JSON) {
        exit_code = print_json(&config, &report);
    } else if (!quiet) {
        print_text(&config, &report);
    }
    kp_pki_report_wipe(&report);
    kp_pki_config_wipe(&config);
    return exit_code;
}
