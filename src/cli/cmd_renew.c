/*
 * kpki renew all|NAME...: re-issue certificates from the CAs on disk, then, with --confirm,
 * ask the running components what they serve.
 * Exit codes: the general ones for errors; with --confirm, 10 when an endpoint does not (yet)
 * serve a renewed certificate - a restart is still due.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/core.h"
#include "net/net.h"

#define EXIT_RESTART_DUE 10

static const struct kp_cli_flag renew_own_flags[] = {
    {"reuse-key", NULL, NULL, "keep each certificate's private key (default: a new key)"},
    {"confirm", "URL", NULL, "then connect to https://HOST:PORT and report whether it serves a "
                             "renewed certificate (repeatable)"},
    {"confirm-timeout", "DURATION", "5s", "time allowed for each --confirm connection"},
    {"confirm-wait", "DURATION", "3s", "ask an endpoint that still serves the old certificate "
                                       "again until then (servers that reload, as kpki "
                                       "apiserver, take a second or two)"},
    {"config", "FILE", NULL, "read options from a YAML file (as kpki init)"},
    {"output", "FORMAT", "text", "text or json"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(const struct kp_cli_flag *options)
{
    size_t count = 0;
    const char *const *names = kp_pki_renew_all_names(&count);
    printf("Usage: kpki renew all|NAME... [flags]\n\n"
           "Re-issues certificates from the CAs on disk, keeping each one's subject, SANs and\n"
           "usages byte for byte, with a new key (unless --reuse-key), serial and validity\n"
           "(--cert-validity). The previous files are kept under etc/kubernetes/tmp/kpki-renew-\n"
           "<time>/; every write is atomic; CAs and sa keys are never touched.\n\n"
           "'all' renews:");
    for (size_t i = 0; i < count; i++) {
        printf(" %s", names[i]);
    }
    printf("\nName kubelet-client or kubelet-serving to renew the kubelet's own.\n\nFlags:\n");
    kp_cli_print_flags(renew_own_flags);
    printf("\nTree options (as kpki init; identity is read from the tree when absent):\n");
    kp_cli_print_flags(options);
    printf("\nExit codes: 0 renewed (and, with --confirm, served), 10 a --confirm endpoint does\n"
           "not serve a renewed certificate yet (restart it), others as in docs/cli.md.\n");
}

/* ---- --confirm ---- */

struct confirmation {
    char url[300];
    char verdict[32]; /* "renewed", "old", "unknown", "unreachable" */
    char name[64];
    char serial[80];
    int64_t not_after;
    char detail[512];
};

static void confirm_one(const char *url, int timeout_ms, const struct kp_renew_report *report,
                        struct confirmation *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->url, sizeof(out->url), "%s", url);
    char host[256];
    int port = 0;
    X509 *served = NULL;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_net_parse_https_url(url, host, sizeof(host), &port, &err) != KP_OK ||
        kp_net_peer_certificate(host, port, timeout_ms, &served, &err) != KP_OK) {
        snprintf(out->verdict, sizeof(out->verdict), "unreachable");
        snprintf(out->detail, sizeof(out->detail), "%s", err.message);
        return;
    }
    kp_cert_serial_hex(served, out->serial, sizeof(out->serial));
    out->not_after = kp_cert_not_after(served);
    snprintf(out->verdict, sizeof(out->verdict), "unknown");
    for (size_t i = 0; i < report->count; i++) {
        const struct kp_renew_entry *entry = &report->entries[i];
        if (entry->status != KP_RENEW_RENEWED) {
            continue;
        }
        if (strcmp(entry->new_serial, out->serial) == 0) {
            snprintf(out->verdict, sizeof(out->verdict), "renewed");
            snprintf(out->name, sizeof(out->name), "%s", entry->name);
        } else if (strcmp(entry->old_serial, out->serial) == 0) {
            snprintf(out->verdict, sizeof(out->verdict), "old");
            snprintf(out->name, sizeof(out->name), "%s", entry->name);
        }
    }
    char subject[256];
    kp_name_to_string(X509_get_subject_name(served), subject, sizeof(subject));
    snprintf(out->detail, sizeof(out->detail), "%s", subject);
    X509_free(served);
}

/* A server that reloads its certificate (kpki apiserver polls its files every second) serves
 * the new one a moment after the renewal: an "old" verdict is asked again until wait_ms has
 * passed. Any other verdict is final at once. */
static void confirm_waiting(const char *url, int timeout_ms, int64_t wait_ms,
                            const struct kp_renew_report *report, struct confirmation *out)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        confirm_one(url, timeout_ms, report, out);
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 +
                             (now.tv_nsec - start.tv_nsec) / 1000000;
        if (strcmp(out->verdict, "old") != 0 || elapsed_ms >= wait_ms) {
            return;
        }
        struct timespec pause = {0, 250 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static void print_confirmation(const struct confirmation *c)
{
    char when[32] = "";
    if (c->not_after != 0) {
        kp_time_format_rfc3339(c->not_after, when, sizeof(when));
    }
    if (strcmp(c->verdict, "renewed") == 0) {
        printf("%s serves the renewed %s certificate (serial %s, expires %s)\n", c->url, c->name,
               c->serial, when);
    } else if (strcmp(c->verdict, "old") == 0) {
        printf("%s still serves the old %s certificate (serial %s, expires %s): restart it\n",
               c->url, c->name, c->serial, when);
    } else if (strcmp(c->verdict, "unknown") == 0) {
        printf("%s serves a certificate this renewal did not touch (%s, serial %s, expires %s)\n",
               c->url, c->detail, c->serial, when);
    } else {
        printf("%s could not be checked: %s\n", c->url, c->detail);
    }
}

/* ---- output ---- */

static const char *status_name(enum kp_renew_status status)
{
    switch (status) {
    case KP_RENEW_RENEWED:
        return "renewed";
    case KP_RENEW_SKIPPED_EXTERNAL:
        return "skipped-external-ca";
    case KP_RENEW_SKIPPED_MISSING:
        return "skipped-missing";
    }
    return "?";
}

static void print_text(const struct kp_renew_report *report)
{
    for (size_t i = 0; i < report->count; i++) {
        const struct kp_renew_entry *entry = &report->entries[i];
        if (entry->status == KP_RENEW_SKIPPED_MISSING) {
            printf("MISSING! %s (%s): skipped\n", entry->name, entry->path);
            continue;
        }
        if (entry->status == KP_RENEW_SKIPPED_EXTERNAL) {
            printf("Detected external CA: %s can't be renewed here\n", entry->name);
            continue;
        }
        char old_when[32], new_when[32];
        kp_time_format_rfc3339(entry->old_not_after, old_when, sizeof(old_when));
        kp_time_format_rfc3339(entry->new_not_after, new_when, sizeof(new_when));
        printf("renewed %-26s serial %s -> %s, expires %s -> %s, key %s\n", entry->name,
               entry->old_serial, entry->new_serial, old_when, new_when, entry->key);
    }
    if (report->backup_dir[0] != '\0') {
        printf("\nThe previous files are in %s.\nRestart the components that use them "
               "(kube-apiserver, kube-controller-manager, kube-scheduler, etcd, the kubelet) - "
               "or check with --confirm.\n",
               report->backup_dir);
    }
}

static json_t *report_json(const struct kp_renew_report *report,
                           const struct confirmation *confirmations, size_t confirm_count)
{
    json_t *entries = json_array();
    for (size_t i = 0; i < report->count; i++) {
        const struct kp_renew_entry *entry = &report->entries[i];
        json_t *item = json_pack("{s:s, s:s, s:s}", "name", entry->name, "path", entry->path,
                                 "status", status_name(entry->status));
        if (entry->status == KP_RENEW_RENEWED) {
            char old_when[32], new_when[32];
            kp_time_format_rfc3339(entry->old_not_after, old_when, sizeof(old_when));
            kp_time_format_rfc3339(entry->new_not_after, new_when, sizeof(new_when));
            json_object_set_new(item, "oldSerial", json_string(entry->old_serial));
            json_object_set_new(item, "newSerial", json_string(entry->new_serial));
            json_object_set_new(item, "oldNotAfter", json_string(old_when));
            json_object_set_new(item, "newNotAfter", json_string(new_when));
            json_object_set_new(item, "key", json_string(entry->key));
        }
        json_array_append_new(entries, item);
    }
    json_t *confirmed = json_array();
    for (size_t i = 0; i < confirm_count; i++) {
        json_t *item = json_pack("{s:s, s:s, s:s}", "url", confirmations[i].url, "verdict",
                                 confirmations[i].verdict, "detail", confirmations[i].detail);
        if (confirmations[i].serial[0] != '\0') {
            json_object_set_new(item, "serial", json_string(confirmations[i].serial));
        }
        if (confirmations[i].name[0] != '\0') {
            json_object_set_new(item, "certificate", json_string(confirmations[i].name));
        }
        json_array_append_new(confirmed, item);
    }
    return json_pack("{s:o, s:s, s:o}", "certificates", entries, "backupDir", report->backup_dir,
                     "confirm", confirmed);
}

int kp_cmd_renew(int argc, char **argv)
{
    const struct kp_cli_flag *options = kp_cli_pki_option_flags();
    const struct kp_cli_flag *tables[] = {renew_own_flags, options};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "renew", tables, 2, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help")) {
        print_help(options);
        return 0;
    }
    enum kp_cli_output output;
    int64_t timeout = 5, wait = 3;
    const char *timeout_text = kp_cli_value(&parsed, "confirm-timeout");
    const char *wait_text = kp_cli_value(&parsed, "confirm-wait");
    enum kp_result rc = kp_cli_output_parse(kp_cli_value(&parsed, "output"), &output, &err);
    if (rc == KP_OK && timeout_text != NULL &&
        kp_duration_parse(timeout_text, &timeout, &err) != KP_OK) {
        rc = kp_error_prefix(&err, "--confirm-timeout");
    }
    if (rc == KP_OK && wait_text != NULL && kp_duration_parse(wait_text, &wait, &err) != KP_OK) {
        rc = kp_error_prefix(&err, "--confirm-wait");
    }
    if (rc == KP_OK && parsed.positional_count == 0) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "give 'all' or the names to renew (see kpki "
                          "renew --help)");
    }
    bool all = rc == KP_OK && strcmp(parsed.positional[0], "all") == 0;
    if (rc == KP_OK && all && parsed.positional_count > 1) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "'all' cannot be combined with names");
    }
    for (size_t i = 0; rc == KP_OK && i < parsed.count; i++) {
        char host[256];
        int port = 0;
        if (strcmp(parsed.args[i].name, "confirm") == 0 &&
            kp_net_parse_https_url(parsed.args[i].value, host, sizeof(host), &port, &err) !=
                KP_OK) {
            rc = kp_error_prefix(&err, "--confirm");
        }
    }
    struct kp_pki_config config;
    bool have_config = false;
    if (rc == KP_OK) {
        rc = kp_cli_tree_config(&config, &parsed, &err);
        have_config = rc == KP_OK;
    }
    size_t name_count = 0;
    const char *const *names = all ? kp_pki_renew_all_names(&name_count) : parsed.positional;
    if (!all) {
        name_count = parsed.positional_count;
    }
    struct kp_renew_report report = {0};
    if (rc == KP_OK) {
        rc = kp_pki_renew(&config, kp_clock_system(), names, name_count,
                          kp_cli_has(&parsed, "reuse-key"), all, &report, &err);
    }
    int exit_code = 0;
    if (rc != KP_OK) {
        exit_code = kp_cli_fail(&err);
    } else {
        struct confirmation confirmations[16];
        size_t confirm_count = 0;
        for (size_t i = 0; i < parsed.count && confirm_count < 16; i++) {
            if (strcmp(parsed.args[i].name, "confirm") == 0) {
                confirm_waiting(parsed.args[i].value, (int)(timeout * 1000), wait * 1000,
                                &report, &confirmations[confirm_count++]);
                if (strcmp(confirmations[confirm_count - 1].verdict, "renewed") != 0) {
                    exit_code = EXIT_RESTART_DUE;
                }
            }
        }
        if (output == KP_CLI_OUTPUT_JSON) {
            json_t *doc = report_json(&report, confirmations, confirm_count);
            json_dumpf(doc, stdout, JSON_INDENT(2));
            printf("\n");
            json_decref(doc);
        } else {
            print_text(&report);
            for (size_t i = 0; i < confirm_count; i++) {
                print_confirmation(&confirmations[i]);
            }
        }
    }
    kp_renew_report_wipe(&report);
    if (have_config) {
        kp_pki_config_wipe(&config);
    }
    return exit_code;
}
