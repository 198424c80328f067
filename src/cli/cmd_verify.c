/*
 * kpki verify: the chain verification the components perform, as a command.
 * Exit codes (its own): 0 accepted, 1 rejected (the reason on one line), 2 usage error or an
 * input that cannot be read.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "verify/verify.h"

#define EXIT_ACCEPTED 0
#define EXIT_REJECTED 1
#define EXIT_USAGE 2
#define INPUT_MAX (4 * 1024 * 1024)

static const struct kp_cli_flag verify_flags[] = {
    {"ca", "FILE", NULL, "trust anchors: every certificate in FILE (PEM or DER), self-signed or "
                         "not (required)"},
    {"untrusted", "FILE", NULL, "intermediates the peer would send (also: certificates after "
                                "the leaf in LEAF)"},
    {"crl", "FILE", NULL, "CRLs (PEM or DER); repeatable. With any CRL, every certificate of the "
                          "path must be covered by its issuer's CRL"},
    {"at", "RFC3339", "now", "verify at this time, e.g. 2027-01-01T00:00:00Z"},
    {"purpose", "PURPOSE", NULL, "server, client or any (required)"},
    {"name", "NAME", NULL, "peer name to match against the SANs only: dns:HOST or ip:ADDR"},
    {"max-depth", "N", "8", "intermediates allowed between the leaf and an anchor"},
    {"output", "FORMAT", "text", "text or json"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(void)
{
    printf("Usage: kpki verify LEAF --ca FILE --purpose server|client|any [flags]\n\n"
           "Verifies LEAF (PEM or DER; '-' for standard input) the way the cluster's components\n"
           "do: a path through the intermediates to one of the anchors, signatures, validity at\n"
           "the given time, CA flags, path lengths, CA key usage, name constraints, no unknown\n"
           "critical extensions, the extended key usage for the purpose, the peer name against\n"
           "the SANs only (never the subject CN), and revocation when CRLs are given.\n\nFlags:\n");
    kp_cli_print_flags(verify_flags);
    printf("\nExit codes: 0 accepted, 1 rejected (reason on one line), 2 usage or input error.\n");
}

struct inputs {
    STACK_OF(X509) *leaf_file;
    STACK_OF(X509) *anchors;
    STACK_OF(X509) *untrusted;
    STACK_OF(X509_CRL) *crls;
};

static void inputs_wipe(struct inputs *in)
{
    sk_X509_pop_free(in->leaf_file, X509_free);
    sk_X509_pop_free(in->anchors, X509_free);
    sk_X509_pop_free(in->untrusted, X509_free);
    sk_X509_CRL_pop_free(in->crls, X509_CRL_free);
    memset(in, 0, sizeof(*in));
}

static enum kp_result read_certs(const char *path, STACK_OF(X509) **out, struct kp_error *err)
{
    char *data = NULL;
    size_t len = 0;
    enum kp_result rc = kp_cli_read_input(path, INPUT_MAX, &data, &len, err);
    if (rc == KP_OK) {
        rc = kp_certs_parse(data, len, path, out, err);
    }
    free(data);
    return rc;
}

static enum kp_result read_crls(const char *path, STACK_OF(X509_CRL) *into, struct kp_error *err)
{
    char *data = NULL;
    size_t len = 0;
    STACK_OF(X509_CRL) *crls = NULL;
    enum kp_result rc = kp_cli_read_input(path, INPUT_MAX, &data, &len, err);
    if (rc == KP_OK) {
        rc = kp_crls_parse(data, len, path, &crls, err);
    }
    while (rc == KP_OK && sk_X509_CRL_num(crls) > 0) {
        X509_CRL *crl = sk_X509_CRL_shift(crls);
        if (sk_X509_CRL_push(into, crl) <= 0) {
            X509_CRL_free(crl);
            rc = kp_error_set(err, KP_ERR_IO, "out of memory");
        }
    }
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    free(data);
    return rc;
}

static enum kp_result load_inputs(const struct kp_cli_parsed *parsed, const char *leaf_path,
                                  struct inputs *in, struct kp_error *err)
{
    enum kp_result rc = read_certs(leaf_path, &in->leaf_file, err);
    if (rc == KP_OK) {
        rc = read_certs(kp_cli_value(parsed, "ca"), &in->anchors, err);
    }
    in->untrusted = sk_X509_new_null();
    /* Certificates after the leaf in its own file are intermediates the peer sends. */
    while (rc == KP_OK && sk_X509_num(in->leaf_file) > 1) {
        sk_X509_push(in->untrusted, sk_X509_pop(in->leaf_file));
    }
    const char *untrusted = kp_cli_value(parsed, "untrusted");
    if (rc == KP_OK && untrusted != NULL) {
        STACK_OF(X509) *more = NULL;
        rc = read_certs(untrusted, &more, err);
        while (rc == KP_OK && sk_X509_num(more) > 0) {
            sk_X509_push(in->untrusted, sk_X509_shift(more));
        }
        sk_X509_pop_free(more, X509_free);
    }
    for (size_t i = 0; rc == KP_OK && i < parsed->count; i++) {
        if (strcmp(parsed->args[i].name, "crl") == 0) {
            if (in->crls == NULL) {
                in->crls = sk_X509_CRL_new_null();
            }
            rc = read_crls(parsed->args[i].value, in->crls, err);
        }
    }
    return rc;
}

/* Parses --purpose, --name, --at and --max-depth into params. */
static enum kp_result parse_policy(const struct kp_cli_parsed *parsed,
                                   struct kp_verify_params *params, struct kp_ip *ip,
                                   struct kp_error *err)
{
    const char *purpose = kp_cli_value(parsed, "purpose");
    if (purpose == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "--purpose is required (server, client or any)");
    }
    if (strcmp(purpose, "server") == 0) {
        params->purpose = KP_PURPOSE_SERVER;
    } else if (strcmp(purpose, "client") == 0) {
        params->purpose = KP_PURPOSE_CLIENT;
    } else if (strcmp(purpose, "any") == 0) {
        params->purpose = KP_PURPOSE_ANY;
    } else {
        return kp_error_set(err, KP_ERR_INVALID, "--purpose: '%s' is not server, client or any",
                            purpose);
    }
    const char *name = kp_cli_value(parsed, "name");
    if (name != NULL) {
        const char *value = strchr(name, ':');
        bool is_ip = strncmp(name, "ip:", 3) == 0;
        bool is_dns = strncmp(name, "dns:", 4) == 0;
        value = (is_ip || is_dns) ? value + 1 : name;
        if ((is_ip || (!is_dns && kp_ip_parse(value, ip))) && kp_ip_parse(value, ip)) {
            params->ip = ip;
        } else if (is_ip) {
            return kp_error_set(err, KP_ERR_INVALID, "--name: '%s' is not an IP address", value);
        } else if (kp_dns1123_subdomain_valid(value) || kp_dns1123_wildcard_valid(value)) {
            params->dns_name = value;
        } else {
            return kp_error_set(err, KP_ERR_INVALID, "--name: '%s' is not dns:HOST or ip:ADDR",
                                name);
        }
    }
    const char *at = kp_cli_value(parsed, "at");
    if (at != NULL && kp_time_parse_rfc3339(at, &params->at, err) != KP_OK) {
        return kp_error_prefix(err, "--at");
    }
    const char *depth = kp_cli_value(parsed, "max-depth");
    if (depth != NULL) {
        char *end = NULL;
        long value = strtol(depth, &end, 10);
        if (*depth == '\0' || *end != '\0' || value < 0 || value > 32) {
            return kp_error_set(err, KP_ERR_INVALID, "--max-depth: '%s' is not 0 to 32", depth);
        }
        params->max_depth = value == 0 ? KP_VERIFY_NO_INTERMEDIATES : (int)value;
    }
    return KP_OK;
}

static void print_result(enum kp_cli_output output, X509 *leaf,
                         const struct kp_verify_result *result)
{
    char subject[256];
    kp_name_to_string(X509_get_subject_name(leaf), subject, sizeof(subject));
    if (output == KP_CLI_OUTPUT_JSON) {
        json_t *chain = json_array();
        for (int i = 0; result->chain != NULL && i < sk_X509_num(result->chain); i++) {
            char name[256];
            kp_name_to_string(X509_get_subject_name(sk_X509_value(result->chain, i)), name,
                              sizeof(name));
            json_array_append_new(chain, json_string(name));
        }
        json_t *doc = json_pack("{s:b, s:s, s:s, s:s, s:i, s:o}", "accepted",
                                result->reason == KP_VERIFY_OK, "subject", subject, "reason",
                                kp_verify_reason_name(result->reason), "message", result->message,
                                "depth", result->depth, "chain", chain);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(doc);
        return;
    }
    if (result->reason != KP_VERIFY_OK) {
        printf("rejected: %s: %s\n", kp_verify_reason_name(result->reason), result->message);
        return;
    }
    printf("accepted: %s", subject);
    for (int i = 1; i < sk_X509_num(result->chain); i++) {
        char name[256];
        kp_name_to_string(X509_get_subject_name(sk_X509_value(result->chain, i)), name,
                          sizeof(name));
        printf(" <- %s", name);
    }
    printf("\n");
}

int kp_cmd_verify(int argc, char **argv)
{
    const struct kp_cli_flag *tables[] = {verify_flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "verify", tables, 1, &parsed, &err) != KP_OK) {
        kp_cli_fail(&err);
        return EXIT_USAGE;
    }
    if (kp_cli_has(&parsed, "help")) {
        print_help();
        return 0;
    }
    enum kp_cli_output output;
    struct kp_verify_params params = {.at = kp_clock_now(kp_clock_system())};
    struct kp_ip ip;
    enum kp_result rc = kp_cli_output_parse(kp_cli_value(&parsed, "output"), &output, &err);
    if (rc == KP_OK && parsed.positional_count != 1) {
        rc = kp_error_set(&err, KP_ERR_INVALID,
                          "give exactly one LEAF file (see kpki verify --help)");
    }
    if (rc == KP_OK && kp_cli_value(&parsed, "ca") == NULL) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "--ca is required");
    }
    if (rc == KP_OK) {
        rc = parse_policy(&parsed, &params, &ip, &err);
    }
    struct inputs in = {0};
    if (rc == KP_OK) {
        rc = load_inputs(&parsed, parsed.positional[0], &in, &err);
    }
    int exit_code = EXIT_USAGE;
    if (rc == KP_OK) {
        params.anchors = in.anchors;
        params.untrusted = in.untrusted;
        params.crls = in.crls;
        struct kp_verify_result result;
        X509 *leaf = sk_X509_value(in.leaf_file, 0);
        rc = kp_verify_chain(&params, leaf, &result, &err);
        if (rc == KP_OK) {
            print_result(output, leaf, &result);
            exit_code = result.reason == KP_VERIFY_OK ? EXIT_ACCEPTED : EXIT_REJECTED;
            kp_verify_result_wipe(&result);
        }
    }
    if (rc != KP_OK) {
        kp_cli_fail(&err);
        exit_code = EXIT_USAGE;
    }
    inputs_wipe(&in);
    return exit_code;
}
