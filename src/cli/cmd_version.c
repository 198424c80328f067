#include <openssl/crypto.h>
#include <stdio.h>
#include <yaml.h>

#include "cli/cli.h"

static const struct kp_cli_flag version_flags[] = {
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

int kp_cmd_version(int argc, char **argv)
{
    const struct kp_cli_flag *tables[] = {version_flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    if (kp_cli_parse(argc, argv, "version", tables, 1, &parsed, &err) != KP_OK) {
        return kp_cli_fail(&err);
    }
    if (kp_cli_has(&parsed, "help")) {
        printf("Usage: kpki version\n\nPrints kpki's version and the libraries it runs on.\n");
        return 0;
    }
    printf("kpki %s\n", KPKI_VERSION);
    printf("openssl %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
    printf("libyaml %s\n", yaml_get_version_string());
    return 0;
}
