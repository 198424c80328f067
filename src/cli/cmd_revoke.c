/*
 * kpki revoke NAME|--serial HEX, and kpki crl list|sign: the CRL of each CA.
 */
#include <jansson.h>
#include <openssl/bn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

static const struct kp_cli_flag revoke_flags[] = {
    {"root", "DIR", "/", "the tree (as kpki init)"},
    {"serial", "SERIAL", NULL, "revoke this serial (hex, optionally 0x-prefixed or with colons) "
                               "instead of a named certificate; needs --ca"},
    {"ca", "CA", NULL, "ca, etcd-ca or front-proxy-ca (default: the certificate's own)"},
    {"reason", "REASON", "unspecified",
     "keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, "
     "certificateHold, privilegeWithdrawn or unspecified"},
    {"crl-validity", "DURATION", "180d", "time until the CRL's nextUpdate"},
    {"output", "FORMAT", "text", "text or json"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static const struct kp_cli_flag crl_flags[] = {
    {"root", "DIR", "/", "the tree (as kpki init)"},
    {"ca", "CA", "all", "ca, etcd-ca, front-proxy-ca or all"},
    {"crl-validity", "DURATION", "180d", "sign: time until the CRL's nextUpdate"},
    {"output", "FORMAT", "text", "text or json"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static const char *const ca_names[] = {"ca", "front-proxy-ca", "etcd-ca"};

/* "0x0C:17:ab" -> "C17AB" (upper-case hex without leading zeros); decimal is not accepted, to
 * avoid revoking the wrong certificate by a misread number. */
static enum kp_result normalize_serial(const char *text, char *out, size_t size,
                                       struct kp_error *err)
{
    const char *cursor = strncmp(text, "0x", 2) == 0 || strncmp(text, "0X", 2) == 0 ? text + 2
                                                                                   : text;
    char compact[160];
    size_t used = 0;
    for (; *cursor != '\0'; cursor++) {
        if (*cursor == ':') {
            continue;
        }
        bool hex = (*cursor >= '0' && *cursor <= '9') || (*cursor >= 'a' && *cursor <= 'f') ||
                   (*cursor >= 'A' && *cursor <= 'F');
        if (!hex || used + 1 >= sizeof(compact)) {
            return kp_error_set(err, KP_ERR_INVALID, "--serial: '%s' is not a hex serial", text);
        }
        compact[used++] = *cursor;
    }
    compact[used] = '\0';
    BIGNUM *value = NULL;
    if (used == 0 || BN_hex2bn(&value, compact) == 0) {
        BN_free(value);
        return kp_error_set(err, KP_ERR_INVALID, "--serial: '%s' is not a hex serial", text);
    }
    char *hex = BN_bn2hex(value);
    snprintf(out, size, "%s", hex != NULL ? hex : "");
    OPENSSL_free(hex);
    BN_free(value);
    return KP_OK;
}

static enum kp_result parse_validity(const struct kp_cli_parsed *parsed, int64_t *validity,
                                     struct kp_error *err)
{
    *validity = KP_CRL_DEFAULT_VALIDITY;
    const char *text = kp_cli_value(parsed, "crl-validity");
    if (text != NULL && kp_duration_parse(text, validity, err) != KP_OK) {
        return kp_error_prefix(err, "--crl-validity");
    }
    return KP_OK;
}

static void print_revoke_result(enum kp_cli_output output, const char *what, const char *serial,
                                const char *ca, enum kp_crl_reason reason,
                                const struct kp_revoke_result *result)
{
    if (output == KP_CLI_OUTPUT_JSON) {
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b}", "revoked", what,
                                "serial", serial, "ca", ca, "reason", kp_crl_reason_name(reason),
                                "crl", result->crl_path, "crlNumber",
                                (json_int_t)result->crl_number, "entries",
                                (json_int_t)result->entries, "alreadyRevoked",
                                result->already_revoked);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(doc);
        return;
    }
    printf("%s %s (serial %s, CA %s, reason %s)\n",
           result->already_revoked ? "already revoked:" : "revoked", what, serial, ca,
           kp_crl_reason_name(reason));
    printf("%s: CRL number %llu, %zu revoked serial(s). Components that check this CRL refuse "
           "the certificate from their next reload.\n",
           result->crl_path, (unsigned long long)result->crl_number, result->entries);
}

int kp_cmd_revoke(int argc, char **argv)
{
    const struct kp_cli_flag *tables[] = {revoke_flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "revoke", tables, 1, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help")) {
        printf("Usage: kpki revoke NAME|PATH [flags]\n       kpki revoke --serial HEX --ca CA "
               "[flags]\n\nAdds a certificate to its CA's CRL (pki/ca.crl, pki/front-proxy-ca.crl,"
               "\npki/etcd/ca.crl) and re-signs it. NAME is a row of the tree (apiserver,\n"
               "admin.conf, kubelet-client, ...); PATH is a PEM certificate file.\n\nFlags:\n");
        kp_cli_print_flags(revoke_flags);
        return 0;
    }
    enum kp_cli_output output;
    enum kp_crl_reason reason = KP_CRL_UNSPECIFIED;
    int64_t validity = 0;
    const char *serial_flag = kp_cli_value(&parsed, "serial");
    const char *reason_text = kp_cli_value(&parsed, "reason");
    char ca[32] = "";
    char serial[160] = "";
    enum kp_result rc = kp_cli_output_parse(kp_cli_value(&parsed, "output"), &output, &err);
    if (rc == KP_OK && reason_text != NULL && !kp_crl_reason_parse(reason_text, &reason)) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "--reason: unknown reason '%s'", reason_text);
    }
    if (rc == KP_OK) {
        rc = parse_validity(&parsed, &validity, &err);
    }
    if (rc == KP_OK && (serial_flag != NULL) == (parsed.positional_count == 1)) {
        rc = kp_error_set(&err, KP_ERR_INVALID,
                          "give either one NAME (or PATH) or --serial with --ca");
    }
    if (rc == KP_OK && serial_flag != NULL && kp_cli_value(&parsed, "ca") == NULL) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "--serial needs --ca");
    }
    struct kp_pki_config config;
    bool have_config = false;
    if (rc == KP_OK) {
        rc = kp_cli_tree_config(&config, &parsed, &err);
        have_config = rc == KP_OK;
    }
    const char *what = serial_flag != NULL ? "serial" : "";
    if (rc == KP_OK && serial_flag != NULL) {
        rc = normalize_serial(serial_flag, serial, sizeof(serial), &err);
        snprintf(ca, sizeof(ca), "%s", kp_cli_value(&parsed, "ca"));
    } else if (rc == KP_OK) {
        X509 *cert = NULL;
        what = parsed.positional[0];
        rc = kp_pki_find_certificate(&config, what, &cert, ca, sizeof(ca), &err);
        if (rc == KP_OK) {
            kp_cert_serial_hex(cert, serial, sizeof(serial));
            const char *ca_flag = kp_cli_value(&parsed, "ca");
            if (ca_flag != NULL && strcmp(ca_flag, ca) != 0) {
                rc = kp_error_set(&err, KP_ERR_CONFLICT, "'%s' is signed by the %s CA, not %s",
                                  what, ca, ca_flag);
            }
        }
        X509_free(cert);
    }
    struct kp_revoke_result result;
    if (rc == KP_OK) {
        rc = kp_pki_revoke(&config, kp_clock_system(), ca, serial, reason, validity, &result,
                           &err);
    }
    int exit_code = 0;
    if (rc == KP_OK) {
        print_revoke_result(output, what, serial, ca, reason, &result);
    } else {
        exit_code = kp_cli_fail(&err);
    }
    if (have_config) {
        kp_pki_config_wipe(&config);
    }
    return exit_code;
}

/* ---- kpki crl ---- */

static json_t *crl_json(const char *ca, X509_CRL *crl)
{
    json_t *doc = json_pack("{s:s}", "ca", ca);
    if (crl == NULL) {
        json_object_set_new(doc, "present", json_false());
        return doc;
    }
    struct kp_crl_entry *entries = NULL;
    size_t count = 0;
    json_t *list = json_array();
    if (kp_crl_entries(crl, &entries, &count, NULL) == KP_OK) {
        for (size_t i = 0; i < count; i++) {
            char when[32];
            kp_time_format_rfc3339(entries[i].revoked_at, when, sizeof(when));
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "serial",
                                                  entries[i].serial_hex, "revokedAt", when,
                                                  "reason",
                                                  kp_crl_reason_name(entries[i].reason)));
        }
    }
    free(entries);
    char this_update[32], next_update[32];
    kp_time_format_rfc3339(kp_crl_this_update(crl), this_update, sizeof(this_update));
    kp_time_format_rfc3339(kp_crl_next_update(crl), next_update, sizeof(next_update));
    json_object_set_new(doc, "present", json_true());
    json_object_set_new(doc, "number", json_integer((json_int_t)kp_crl_number(crl)));
    json_object_set_new(doc, "thisUpdate", json_string(this_update));
    json_object_set_new(doc, "nextUpdate", json_string(next_update));
    json_object_set_new(doc, "revoked", list);
    return doc;
}

static void print_crl_text(json_t *doc)
{
    const char *ca = json_string_value(json_object_get(doc, "ca"));
    if (!json_is_true(json_object_get(doc, "present"))) {
        printf("%s: no CRL (nothing revoked)\n", ca);
        return;
    }
    json_t *revoked = json_object_get(doc, "revoked");
    printf("%s: CRL number %lld, thisUpdate %s, nextUpdate %s, %zu revoked\n", ca,
           (long long)json_integer_value(json_object_get(doc, "number")),
           json_string_value(json_object_get(doc, "thisUpdate")),
           json_string_value(json_object_get(doc, "nextUpdate")), json_array_size(revoked));
    size_t index;
    json_t *entry;
    json_array_foreach(revoked, index, entry)
    {
        printf("  %-40s %s  %s\n", json_string_value(json_object_get(entry, "serial")),
               json_string_value(json_object_get(entry, "revokedAt")),
               json_string_value(json_object_get(entry, "reason")));
    }
}

int kp_cmd_crl(int argc, char **argv)
{
    const struct kp_cli_flag *tables[] = {crl_flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "crl", tables, 1, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help")) {
        printf("Usage: kpki crl list|sign [flags]\n\nlist: the revoked serials of each CA's CRL.\n"
               "sign: re-sign each CRL with a fresh nextUpdate (creating an empty one where\n"
               "there is none); run it before nextUpdate passes, e.g. from a timer.\n\nFlags:\n");
        kp_cli_print_flags(crl_flags);
        return 0;
    }
    enum kp_cli_output output;
    int64_t validity = 0;
    enum kp_result rc = kp_cli_output_parse(kp_cli_value(&parsed, "output"), &output, &err);
    const char *action = parsed.positional_count == 1 ? parsed.positional[0] : "";
    if (rc == KP_OK && strcmp(action, "list") != 0 && strcmp(action, "sign") != 0) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "give 'list' or 'sign' (see kpki crl --help)");
    }
    if (rc == KP_OK) {
        rc = parse_validity(&parsed, &validity, &err);
    }
    const char *only = kp_cli_value(&parsed, "ca");
    if (only != NULL && strcmp(only, "all") == 0) {
        only = NULL;
    }
    bool known = only == NULL;
    for (size_t i = 0; !known && i < sizeof(ca_names) / sizeof(ca_names[0]); i++) {
        known = strcmp(only, ca_names[i]) == 0;
    }
    if (rc == KP_OK && !known) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "--ca: '%s' is not ca, etcd-ca, front-proxy-ca "
                          "or all", only);
    }
    struct kp_pki_config config;
    bool have_config = false;
    if (rc == KP_OK) {
        rc = kp_cli_tree_config(&config, &parsed, &err);
        have_config = rc == KP_OK;
    }
    json_t *all = json_array();
    for (size_t i = 0; rc == KP_OK && i < sizeof(ca_names) / sizeof(ca_names[0]); i++) {
        if (only != NULL && strcmp(only, ca_names[i]) != 0) {
            continue;
        }
        struct kp_revoke_result result;
        if (strcmp(action, "sign") == 0) {
            rc = kp_pki_crl_sign(&config, kp_clock_system(), ca_names[i], validity, &result,
                                 &err);
            if (rc == KP_ERR_FORBIDDEN && only == NULL) {
                kp_log_warn("%s", err.message); /* an external CA: skip it in 'all' */
                rc = KP_OK;
                continue;
            }
        }
        X509_CRL *crl = NULL;
        if (rc == KP_OK) {
            rc = kp_pki_crl_load(&config, ca_names[i], &crl, &err);
        }
        if (rc == KP_OK) {
            json_array_append_new(all, crl_json(ca_names[i], crl));
        }
        X509_CRL_free(crl);
    }
    int exit_code = 0;
    if (rc != KP_OK) {
        exit_code = kp_cli_fail(&err);
    } else if (output == KP_CLI_OUTPUT_JSON) {
        json_dumpf(all, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        size_t index;
        json_t *doc;
        json_array_foreach(all, index, doc)
        {
            print_crl_text(doc);
        }
    }
    json_decref(all);
    if (have_config) {
        kp_pki_config_wipe(&config);
    }
    return exit_code;
}
