/*
 * kpki check: the audit of a tree, printed as kubeadm's check-expiration tables (plus the rows
 * kubeadm leaves out and a status column), as JSON, or as node-exporter textfile metrics.
 * Exit codes (its own): 0 healthy, 1 something expires within --warn-within, 2 problems found,
 * 3 the check could not run.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/core.h"

#define EXIT_COULD_NOT_RUN 3

enum output { OUTPUT_TEXT, OUTPUT_JSON, OUTPUT_PROMETHEUS };

static const struct kp_cli_flag check_own_flags[] = {
    {"warn-within", "DURATION", "30d", "exit 1 and flag what expires within this window"},
    {"config", "FILE", NULL, "read identity options from a YAML file (as kpki init)"},
    {"output", "FORMAT", "text", "text, json or prometheus (node-exporter textfile format)"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(const struct kp_cli_flag *options)
{
    printf("Usage: kpki check [--root DIR] [flags]\n\n"
           "Audits every certificate, key and kubeconfig of the tree under --root: expiry and\n"
           "residual time (kubeadm's check-expiration columns, plus the kubelet's certificates,\n"
           "kubelet.conf and sa keys, which kubeadm leaves out), and a deep check of each file:\n"
           "signed by its CA and no other, key matches, SANs, key usages, CA flag, file modes,\n"
           "symlinks, kubeconfig CA data and server URLs, sa.pub, key strength, revocation.\n"
           "The node's name and addresses are read from the tree unless given.\n\n"
           "Flags:\n");
    kp_cli_print_flags(check_own_flags);
    printf("\nIdentity options (optional; inferred from the tree when absent):\n");
    kp_cli_print_flags(options);
    printf("\nExit codes: 0 healthy, 1 something expires within --warn-within, 2 problems found,\n"
           "3 the check could not run. See docs/cli.md.\n");
}

/* ---- text: kubeadm's tables (text/tabwriter minwidth 10, padding 3) ---- */

#define COLUMNS 6
#define MAX_ROWS 64

struct table {
    const char *cells[MAX_ROWS + 1][COLUMNS];
    char storage[MAX_ROWS][COLUMNS][128];
    size_t rows;
    size_t columns;
};

static void table_row(struct table *table, const char *const *values)
{
    if (table->rows > MAX_ROWS) {
        return;
    }
    for (size_t c = 0; c < table->columns; c++) {
        if (table->rows == 0) {
            table->cells[0][c] = values[c];
        } else {
            snprintf(table->storage[table->rows - 1][c], 128, "%s", values[c]);
            table->cells[table->rows][c] = table->storage[table->rows - 1][c];
        }
    }
    table->rows++;
}

static void table_print(const struct table *table)
{
    size_t widths[COLUMNS] = {0};
    for (size_t r = 0; r < table->rows; r++) {
        for (size_t c = 0; c < table->columns; c++) {
            size_t len = strlen(table->cells[r][c]) + 3;
            widths[c] = len > widths[c] ? len : widths[c];
        }
    }
    for (size_t r = 0; r < table->rows; r++) {
        for (size_t c = 0; c < table->columns; c++) {
            size_t width = widths[c] < 10 ? 10 : widths[c];
            bool last = c + 1 == table->columns;
            if (last) {
                printf("%s\n", table->cells[r][c]);
            } else {
                printf("%-*s", (int)width, table->cells[r][c]);
            }
        }
    }
}

/* Go layout "Jan 02, 2006 15:04 MST", in UTC. */
static void kubeadm_time(int64_t when, char *out, size_t size)
{
    time_t t = (time_t)when;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%b %d, %Y %H:%M UTC", &tm);
}

static const char *status_of(const struct kp_check_item *item)
{
    if (kp_check_item_has_problem(item)) {
        return "PROBLEM";
    }
    return item->expiring ? "expiring" : "ok";
}

static void print_text(const struct kp_check_report *report)
{
    struct table certs = {.columns = 6};
    struct table cas = {.columns = 5};
    const char *cert_header[] = {"CERTIFICATE", "EXPIRES", "RESIDUAL TIME",
                                 "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED", "STATUS"};
    const char *ca_header[] = {"CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME",
                               "EXTERNALLY MANAGED", "STATUS"};
    table_row(&certs, cert_header);
    table_row(&cas, ca_header);
    /* kubeadm sorts rows by name. */
    const struct kp_check_item *sorted[MAX_ROWS];
    size_t count = report->count < MAX_ROWS ? report->count : MAX_ROWS;
    for (size_t i = 0; i < count; i++) {
        sorted[i] = &report->items[i];
    }
    for (size_t i = 1; i < count; i++) {
        for (size_t j = i; j > 0 && strcmp(sorted[j - 1]->name, sorted[j]->name) > 0; j--) {
            const struct kp_check_item *swap = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = swap;
        }
    }
    for (size_t i = 0; i < count; i++) {
        const struct kp_check_item *item = sorted[i];
        char name[96], expires[40] = "", residual[24] = "";
        snprintf(name, sizeof(name), "%s%s", item->missing ? "!MISSING! " : "", item->name);
        if (item->not_after != 0) {
            kubeadm_time(item->not_after, expires, sizeof(expires));
            kp_duration_short_human(item->not_after - report->checked_at, residual,
                                    sizeof(residual));
        }
        const char *external = item->external ? "yes" : "no";
        if (item->kind == KP_CHECK_CA) {
            const char *row[] = {name, expires, residual, external, status_of(item)};
            table_row(&cas, row);
        } else {
            const char *row[] = {name, expires, residual, item->ca, external, status_of(item)};
            table_row(&certs, row);
        }
    }
    table_print(&certs);
    printf("\n");
    table_print(&cas);
    bool heading = false;
    for (size_t i = 0; i < report->count; i++) {
        const struct kp_check_item *item = &report->items[i];
        for (size_t j = 0; j < item->finding_count; j++) {
            if (!heading) {
                printf("\nFindings:\n");
                heading = true;
            }
            printf("  %-7s %s: %s\n",
                   item->findings[j].severity == KP_CHECK_PROBLEM ? "PROBLEM" : "note",
                   item->name, item->findings[j].message);
        }
    }
    printf("\n%s: %zu item(s), %zu problem(s)%s\n",
           report->status == KP_CHECK_PROBLEMS   ? "PROBLEMS"
           : report->status == KP_CHECK_EXPIRING ? "EXPIRING"
                                                 : "HEALTHY",
           report->count, report->problems,
           report->status == KP_CHECK_EXPIRING ? ", something expires within the window" : "");
}

/* ---- json ---- */

static const char *kind_name(enum kp_check_kind kind)
{
    switch (kind) {
    case KP_CHECK_CA:
        return "ca";
    case KP_CHECK_CERT:
        return "certificate";
    case KP_CHECK_KUBECONFIG:
        return "kubeconfig";
    case KP_CHECK_KEYS:
        return "keys";
    case KP_CHECK_CRL:
        return "crl";
    }
    return "?";
}

static void print_json(const struct kp_check_report *report)
{
    json_t *items = json_array();
    for (size_t i = 0; i < report->count; i++) {
        const struct kp_check_item *item = &report->items[i];
        json_t *findings = json_array();
        for (size_t j = 0; j < item->finding_count; j++) {
            json_array_append_new(
                findings, json_pack("{s:s, s:s, s:s}", "severity",
                                    item->findings[j].severity == KP_CHECK_PROBLEM ? "problem"
                                                                                   : "note",
                                    "code", item->findings[j].code, "message",
                                    item->findings[j].message));
        }
        json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:s, s:o}", "name",
                                  item->name, "path", item->path, "kind", kind_name(item->kind),
                                  "caName", item->ca, "missing", item->missing,
                                  "externallyManaged", item->external, "expiring",
                                  item->expiring, "status", status_of(item), "findings",
                                  findings);
        if (item->not_after != 0) {
            char when[32];
            kp_time_format_rfc3339(item->not_after, when, sizeof(when));
            json_object_set_new(entry, "expirationDate", json_string(when));
            json_object_set_new(entry, "residualTime",
                                json_integer(item->not_after - report->checked_at));
        }
        if (item->serial[0] != '\0') {
            json_object_set_new(entry, "serial", json_string(item->serial));
        }
        json_array_append_new(items, entry);
    }
    char checked[32];
    kp_time_format_rfc3339(report->checked_at, checked, sizeof(checked));
    json_t *doc = json_pack("{s:s, s:I, s:s, s:I, s:o}", "checkedAt", checked, "warnWithin",
                            (json_int_t)report->warn_within, "status",
                            report->status == KP_CHECK_PROBLEMS   ? "problems"
                            : report->status == KP_CHECK_EXPIRING ? "expiring"
                                                                  : "healthy",
                            "problems", (json_int_t)report->problems, "items", items);
    json_dumpf(doc, stdout, JSON_INDENT(2));
    printf("\n");
    json_decref(doc);
}

/* ---- prometheus textfile ---- */

/* Label values escape backslash, double quote and newline (exposition format). */
static void label(const char *value)
{
    for (const char *c = value; *c != '\0'; c++) {
        if (*c == '\\' || *c == '"') {
            putchar('\\');
            putchar(*c);
        } else if (*c == '\n') {
            fputs("\\n", stdout);
        } else {
            putchar(*c);
        }
    }
}

static void labels(const struct kp_check_item *item)
{
    fputs("{name=\"", stdout);
    label(item->name);
    fputs("\",path=\"", stdout);
    label(item->path);
    fputs("\",ca=\"", stdout);
    label(item->ca);
    fputs("\"}", stdout);
}

static void print_prometheus(const struct kp_check_report *report)
{
    printf("# HELP kpki_certificate_expiry_timestamp_seconds NotAfter of each certificate (the "
           "nextUpdate of each CRL), as Unix time.\n"
           "# TYPE kpki_certificate_expiry_timestamp_seconds gauge\n");
    for (size_t i = 0; i < report->count; i++) {
        if (report->items[i].not_after != 0) {
            fputs("kpki_certificate_expiry_timestamp_seconds", stdout);
            labels(&report->items[i]);
            printf(" %lld\n", (long long)report->items[i].not_after);
        }
    }
    printf("# HELP kpki_certificate_problem 1 if kpki check found a problem with the item.\n"
           "# TYPE kpki_certificate_problem gauge\n");
    for (size_t i = 0; i < report->count; i++) {
        fputs("kpki_certificate_problem", stdout);
        labels(&report->items[i]);
        printf(" %d\n", kp_check_item_has_problem(&report->items[i]) ? 1 : 0);
    }
    printf("# HELP kpki_certificate_expiring 1 if the item expires within the warning window.\n"
           "# TYPE kpki_certificate_expiring gauge\n");
    for (size_t i = 0; i < report->count; i++) {
        fputs("kpki_certificate_expiring", stdout);
        labels(&report->items[i]);
        printf(" %d\n", report->items[i].expiring ? 1 : 0);
    }
    printf("# HELP kpki_check_problems Problems found by the last kpki check.\n"
           "# TYPE kpki_check_problems gauge\n"
           "kpki_check_problems %zu\n"
           "# HELP kpki_check_timestamp_seconds When kpki check ran, as Unix time.\n"
           "# TYPE kpki_check_timestamp_seconds gauge\n"
           "kpki_check_timestamp_seconds %lld\n",
           report->problems, (long long)report->checked_at);
}

int kp_cmd_check(int argc, char **argv)
{
    const struct kp_cli_flag *options = kp_cli_pki_option_flags();
    const struct kp_cli_flag *tables[] = {check_own_flags, options};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "check", tables, 2, &parsed, &err) != KP_OK) {
        kp_cli_fail(&err);
        return EXIT_COULD_NOT_RUN;
    }
    if (kp_cli_has(&parsed, "help")) {
        print_help(options);
        return 0;
    }
    enum output output = OUTPUT_TEXT;
    const char *format = kp_cli_value(&parsed, "output");
    int64_t warn_within = 30 * 86400;
    const char *window = kp_cli_value(&parsed, "warn-within");
    enum kp_result rc = KP_OK;
    if (format != NULL && strcmp(format, "json") == 0) {
        output = OUTPUT_JSON;
    } else if (format != NULL && strcmp(format, "prometheus") == 0) {
        output = OUTPUT_PROMETHEUS;
    } else if (format != NULL && strcmp(format, "text") != 0) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "--output: unknown format '%s' (text, json, "
                          "prometheus)", format);
    }
    if (rc == KP_OK && parsed.positional_count > 0) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "unexpected argument '%s'", parsed.positional[0]);
    }
    if (rc == KP_OK && window != NULL && kp_duration_parse(window, &warn_within, &err) != KP_OK) {
        rc = kp_error_prefix(&err, "--warn-within");
    }
    struct kp_pki_config config;
    bool have_config = false;
    if (rc == KP_OK) {
        rc = kp_cli_tree_config(&config, &parsed, &err);
        have_config = rc == KP_OK;
    }
    struct kp_check_report report = {0};
    if (rc == KP_OK) {
        rc = kp_pki_check(&config, kp_clock_system(), warn_within, &report, &err);
    }
    int exit_code = EXIT_COULD_NOT_RUN;
    if (rc != KP_OK) {
        kp_cli_fail(&err);
    } else {
        if (output == OUTPUT_JSON) {
            print_json(&report);
        } else if (output == OUTPUT_PROMETHEUS) {
            print_prometheus(&report);
        } else {
            print_text(&report);
        }
        exit_code = (int)report.status;
    }
    kp_check_report_wipe(&report);
    if (have_config) {
        kp_pki_config_wipe(&config);
    }
    return exit_code;
}
