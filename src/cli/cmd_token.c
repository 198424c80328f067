/*
 * kpki token create|list|delete|generate: bootstrap tokens, as `kubeadm token` manages them -
 * Secrets of type bootstrap.kubernetes.io/token named bootstrap-token-<id> in kube-system,
 * written and read through the API server with a kubeconfig's credentials (admin.conf by
 * default).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/authn.h"
#include "cli/cli.h"
#include "core/core.h"

#define DEFAULT_GROUP "system:bootstrappers:kubeadm:default-node-token"
#define SECRETS_PATH "/api/v1/namespaces/kube-system/secrets"

static const struct kp_cli_flag flags[] = {
    {"kubeconfig", "FILE", "ROOT/etc/kubernetes/admin.conf", "credentials for the API server"},
    {"root", "DIR", "/", "the tree whose admin.conf to use"},
    {"ttl", "DURATION", "24h", "create: lifetime of the token (0: never expires)"},
    {"usages", "LIST", "signing,authentication", "create: what the token may be used for"},
    {"groups", "LIST", DEFAULT_GROUP, "create: extra groups the token authenticates as"},
    {"description", "TEXT", NULL, "create: a human-readable description"},
    {"output", "FORMAT", "text", "list: text or json"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(void)
{
    printf("Usage: kpki token create [TOKEN] [flags]\n"
           "       kpki token list [flags]\n"
           "       kpki token delete TOKEN-ID|TOKEN... [flags]\n"
           "       kpki token generate\n\n"
           "Manages bootstrap tokens (<id>.<secret>, [a-z0-9]{6}.[a-z0-9]{16}) as kubeadm token\n"
           "does: each is a Secret kube-system/bootstrap-token-<id> that the API server's\n"
           "bootstrap authenticator checks. A joining node's kubelet presents one\n"
           "(bootstrap-kubelet.conf: kpki kubeconfig bootstrap) to request its certificate.\n\n"
           "Flags:\n");
    kp_cli_print_flags(flags);
}

static enum kp_result open_client(const struct kp_cli_parsed *parsed, struct kp_client **client,
                                  struct kp_error *err)
{
    const char *kubeconfig = kp_cli_value(parsed, "kubeconfig");
    char path[4096];
    if (kubeconfig == NULL) {
        const char *root = kp_cli_value(parsed, "root");
        snprintf(path, sizeof(path), "%s/etc/kubernetes/admin.conf", root != NULL ? root : "");
        kubeconfig = path;
    }
    return kp_cli_api_open(kubeconfig, client, err);
}

/* ---- create ---- */

static enum kp_result check_usages(const struct kp_strlist *usages, struct kp_error *err)
{
    for (size_t i = 0; i < usages->count; i++) {
        if (strcmp(usages->items[i], "signing") != 0 &&
            strcmp(usages->items[i], "authentication") != 0) {
            return kp_error_set(err, KP_ERR_INVALID, "--usages: '%s' is not a usage (signing, "
                                "authentication)", usages->items[i]);
        }
    }
    if (usages->count == 0) {
        return kp_error_set(err, KP_ERR_INVALID, "--usages: at least one usage is required");
    }
    return KP_OK;
}

static json_t *token_secret(const char *token, int64_t expires, const struct kp_strlist *usages,
                            const struct kp_strlist *groups, const char *description)
{
    char id[KP_BOOTSTRAP_TOKEN_ID_LEN + 1], secret[KP_BOOTSTRAP_TOKEN_SECRET_LEN + 1];
    (void)kp_bootstrap_token_parse(token, id, secret);
    char name[64];
    snprintf(name, sizeof(name), "bootstrap-token-%s", id);
    json_t *data = json_pack("{s:s, s:s}", "token-id", id, "token-secret", secret);
    memset(secret, 0, sizeof(secret));
    if (expires > 0) {
        char ts[40];
        kp_time_format_rfc3339(expires, ts, sizeof(ts));
        json_object_set_new(data, "expiration", json_string(ts));
    }
    if (description != NULL) {
        json_object_set_new(data, "description", json_string(description));
    }
    for (size_t i = 0; i < usages->count; i++) {
        char key[64];
        snprintf(key, sizeof(key), "usage-bootstrap-%s", usages->items[i]);
        json_object_set_new(data, key, json_string("true"));
    }
    if (groups->count > 0) {
        char joined[4096] = "";
        size_t n = 0;
        for (size_t i = 0; i < groups->count && n < sizeof(joined); i++) {
            n += (size_t)snprintf(joined + n, sizeof(joined) - n, "%s%s", i ? "," : "",
                                  groups->items[i]);
        }
        json_object_set_new(data, "auth-extra-groups", json_string(joined));
    }
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:o}", "apiVersion", "v1", "kind", "Secret",
                     "metadata", "name", name, "namespace", "kube-system", "type",
                     "bootstrap.kubernetes.io/token", "stringData", data);
}

static int cmd_create(const struct kp_cli_parsed *parsed)
{
    struct kp_error err;
    kp_error_clear(&err);
    char token[64];
    enum kp_result rc = KP_OK;
    if (parsed->positional_count > 2) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "create takes at most one TOKEN");
    } else if (parsed->positional_count == 2) {
        snprintf(token, sizeof(token), "%s", parsed->positional[1]);
        if (!kp_bootstrap_token_parse(parsed->positional[1], NULL, NULL)) {
            rc = kp_error_set(&err, KP_ERR_INVALID, "the token must have the form "
                              "[a-z0-9]{6}.[a-z0-9]{16}");
        }
    } else {
        rc = kp_bootstrap_token_generate(token, sizeof(token), &err);
    }
    int64_t ttl = 24 * 3600;
    const char *ttl_text = kp_cli_value(parsed, "ttl");
    if (rc == KP_OK && ttl_text != NULL) {
        if (strcmp(ttl_text, "0") == 0 || strcmp(ttl_text, "0s") == 0) {
            ttl = 0;
        } else if (kp_duration_parse(ttl_text, &ttl, &err) != KP_OK) {
            rc = kp_error_prefix(&err, "--ttl");
        }
    }
    struct kp_strlist usages = {0}, groups = {0};
    const char *usages_text = kp_cli_value(parsed, "usages");
    const char *groups_text = kp_cli_value(parsed, "groups");
    if (rc == KP_OK) {
        rc = kp_strlist_add_split(&usages, usages_text ? usages_text : "signing,authentication",
                                  &err);
    }
    if (rc == KP_OK) {
        rc = check_usages(&usages, &err);
    }
    if (rc == KP_OK) {
        rc = kp_strlist_add_split(&groups, groups_text ? groups_text : DEFAULT_GROUP, &err);
    }
    for (size_t i = 0; rc == KP_OK && i < groups.count; i++) {
        if (!kp_bootstrap_group_valid(groups.items[i])) {
            rc = kp_error_set(&err, KP_ERR_INVALID, "--groups: '%s' must match "
                              "system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]", groups.items[i]);
        }
    }
    if (rc == KP_OK && groups.count > 0 && !kp_strlist_contains(&usages, "authentication")) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "--groups can only be used with "
                          "--usages=authentication");
    }
    struct kp_client *client = NULL;
    if (rc == KP_OK) {
        rc = open_client(parsed, &client, &err);
    }
    if (rc == KP_OK) {
        int64_t now = kp_clock_now(kp_clock_system());
        json_t *secret = token_secret(token, ttl > 0 ? now + ttl : 0, &usages, &groups,
                                      kp_cli_value(parsed, "description"));
        rc = secret != NULL ? kp_cli_api_call(client, "POST", SECRETS_PATH, secret, NULL, &err)
                            : kp_error_set(&err, KP_ERR_IO, "out of memory");
        json_decref(secret);
        if (rc == KP_ERR_CONFLICT) {
            kp_error_set(&err, KP_ERR_CONFLICT, "a bootstrap token with id %.6s already exists",
                         token);
        }
    }
    if (rc == KP_OK) {
        printf("%s\n", token);
    }
    memset(token, 0, sizeof(token));
    kp_client_free(client);
    kp_strlist_wipe(&usages);
    kp_strlist_wipe(&groups);
    return rc == KP_OK ? 0 : kp_cli_fail(&err);
}

/* ---- list ---- */

static char *data_value(const json_t *secret, const char *key)
{
    const char *encoded = json_string_value(json_object_get(json_object_get(secret, "data"), key));
    unsigned char *decoded = NULL;
    size_t len = 0;
    if (encoded == NULL ||
        kp_base64_decode(encoded, strlen(encoded), &decoded, &len, NULL) != KP_OK) {
        return NULL;
    }
    return (char *)decoded;
}

static int cmd_list(const struct kp_cli_parsed *parsed)
{
    struct kp_error err;
    kp_error_clear(&err);
    enum kp_cli_output output = KP_CLI_OUTPUT_TEXT;
    const char *output_text = kp_cli_value(parsed, "output");
    enum kp_result rc = output_text != NULL ? kp_cli_output_parse(output_text, &output, &err)
                                            : KP_OK;
    struct kp_client *client = NULL;
    json_t *list = NULL;
    if (rc == KP_OK) {
        rc = open_client(parsed, &client, &err);
    }
    if (rc == KP_OK) {
        rc = kp_cli_api_call(client,
                             "GET", SECRETS_PATH "?fieldSelector=type%3Dbootstrap.kubernetes.io%2Ftoken",
                             NULL, &list, &err);
    }
    if (rc == KP_OK) {
        int64_t now = kp_clock_now(kp_clock_system());
        json_t *tokens = json_array();
        if (output == KP_CLI_OUTPUT_TEXT) {
            printf("%-24s %-8s %-22s %-30s %-26s %s\n", "TOKEN", "TTL", "EXPIRES", "USAGES",
                   "DESCRIPTION", "EXTRA GROUPS");
        }
        size_t i;
        json_t *secret;
        json_array_foreach(json_object_get(list, "items"), i, secret) {
            char *id = data_value(secret, "token-id");
            char *expiration = data_value(secret, "expiration");
            char *description = data_value(secret, "description");
            char *groups = data_value(secret, "auth-extra-groups");
            char *signing = data_value(secret, "usage-bootstrap-signing");
            char *authentication = data_value(secret, "usage-bootstrap-authentication");
            char usages[64] = "";
            snprintf(usages, sizeof(usages), "%s%s%s",
                     authentication && strcmp(authentication, "true") == 0 ? "authentication" : "",
                     authentication && signing && strcmp(authentication, "true") == 0 &&
                             strcmp(signing, "true") == 0
                         ? ","
                         : "",
                     signing && strcmp(signing, "true") == 0 ? "signing" : "");
            int64_t expires = 0;
            char ttl[32] = "<forever>";
            if (expiration != NULL &&
                kp_time_parse_rfc3339(expiration, &expires, NULL) == KP_OK) {
                kp_duration_short_human(expires - now, ttl, sizeof(ttl));
            }
            /* kubeadm token list prints whole tokens; kpki prints the id only: a list of live
             * credentials in a terminal or a CI log outlives its use. create prints the token
             * once. */
            char shown[40];
            snprintf(shown, sizeof(shown), "%s.<redacted>", id ? id : "?");
            if (output == KP_CLI_OUTPUT_TEXT) {
                printf("%-24s %-8s %-22s %-30s %-26s %s\n", shown, ttl,
                       expiration ? expiration : "<never>", usages[0] ? usages : "<none>",
                       description ? description : "<none>", groups ? groups : "");
            } else {
                json_array_append_new(
                    tokens, json_pack("{s:s, s:s?, s:s?, s:s, s:s?}", "id", id ? id : "",
                                      "expires", expiration, "description", description,
                                      "usages", usages, "groups", groups));
            }
            free(id);
            free(expiration);
            free(description);
            free(groups);
            free(signing);
            free(authentication);
        }
        if (output == KP_CLI_OUTPUT_JSON) {
            json_dumpf(tokens, stdout, JSON_INDENT(2));
            printf("\n");
        }
        json_decref(tokens);
    }
    json_decref(list);
    kp_client_free(client);
    return rc == KP_OK ? 0 : kp_cli_fail(&err);
}

/* ---- delete ---- */

static int cmd_delete(const struct kp_cli_parsed *parsed)
{
    struct kp_error err;
    kp_error_clear(&err);
    enum kp_result rc = KP_OK;
    if (parsed->positional_count < 2) {
        rc = kp_error_set(&err, KP_ERR_INVALID, "delete needs at least one TOKEN-ID or TOKEN");
    }
    /* Check every argument before deleting anything. */
    for (size_t i = 1; rc == KP_OK && i < parsed->positional_count; i++) {
        const char *arg = parsed->positional[i];
        bool id_only = strlen(arg) == KP_BOOTSTRAP_TOKEN_ID_LEN;
        for (size_t j = 0; id_only && arg[j]; j++) {
            id_only = (arg[j] >= 'a' && arg[j] <= 'z') || (arg[j] >= '0' && arg[j] <= '9');
        }
        if (!id_only && !kp_bootstrap_token_parse(arg, NULL, NULL)) {
            rc = kp_error_set(&err, KP_ERR_INVALID, "'%.40s' is neither a token id "
                              "([a-z0-9]{6}) nor a token", arg);
        }
    }
    struct kp_client *client = NULL;
    if (rc == KP_OK) {
        rc = open_client(parsed, &client, &err);
    }
    for (size_t i = 1; rc == KP_OK && i < parsed->positional_count; i++) {
        char path[256];
        snprintf(path, sizeof(path), SECRETS_PATH "/bootstrap-token-%.6s",
                 parsed->positional[i]);
        rc = kp_cli_api_call(client, "DELETE", path, NULL, NULL, &err);
        if (rc == KP_OK) {
            printf("bootstrap token \"%.6s\" deleted\n", parsed->positional[i]);
        } else if (rc == KP_ERR_NOT_FOUND) {
            kp_error_set(&err, KP_ERR_NOT_FOUND, "bootstrap token \"%.6s\" not found",
                         parsed->positional[i]);
        }
    }
    kp_client_free(client);
    return rc == KP_OK ? 0 : kp_cli_fail(&err);
}

int kp_cmd_token(int argc, char **argv)
{
    const struct kp_cli_flag *tables[] = {flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    if (kp_cli_parse(argc, argv, "token", tables, 1, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help") || parsed.positional_count == 0) {
        print_help();
        return parsed.positional_count == 0 && !kp_cli_has(&parsed, "help") ? 1 : 0;
    }
    const char *sub = parsed.positional[0];
    if (strcmp(sub, "create") == 0) {
        return cmd_create(&parsed);
    }
    if (strcmp(sub, "list") == 0) {
        return cmd_list(&parsed);
    }
    if (strcmp(sub, "delete") == 0) {
        return cmd_delete(&parsed);
    }
    if (strcmp(sub, "generate") == 0) {
        char token[64];
        if (kp_bootstrap_token_generate(token, sizeof(token), &err) != KP_OK) {
            return kp_cli_fail(&err);
        }
        printf("%s\n", token);
        return 0;
    }
    kp_error_set(&err, KP_ERR_INVALID, "unknown token command '%s' (create, list, delete, "
                 "generate)", sub);
    return kp_cli_fail(&err);
}
