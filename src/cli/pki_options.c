/*
 * The init option table as command-line flags, shared by every command that needs the tree's
 * identity. The table itself lives in src/pki/options.c.
 */
#include <string.h>

#include "cli/cli.h"

#define MAX_OPTION_FLAGS 64

static struct kp_cli_flag option_flags[MAX_OPTION_FLAGS + 1];

const struct kp_cli_flag *kp_cli_pki_option_flags(void)
{
    size_t count = 0;
    for (const struct kp_pki_option *option = kp_pki_options();
         option->name != NULL && count < MAX_OPTION_FLAGS; option++) {
        option_flags[count].name = option->name;
        option_flags[count].value_name = option->value_name;
        option_flags[count].default_text = option->default_text;
        option_flags[count].help = option->help;
        count++;
    }
    memset(&option_flags[count], 0, sizeof(option_flags[count]));
    return option_flags;
}

enum kp_result kp_cli_load_pki_options(struct kp_pki_config *config,
                                       const struct kp_cli_parsed *parsed, struct kp_error *err)
{
    const char *config_file = kp_cli_value(parsed, "config");
    if (config_file != NULL) {
        enum kp_result rc = kp_pki_config_load_file(config, config_file, err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    bool cleared[MAX_OPTION_FLAGS] = {false};
    for (size_t i = 0; i < parsed->count; i++) {
        const struct kp_pki_option *option = kp_pki_option_find(parsed->args[i].name);
        if (option == NULL) {
            continue; /* one of the command's own flags */
        }
        size_t index = (size_t)(option - kp_pki_options());
        if (option->is_list && index < MAX_OPTION_FLAGS && !cleared[index]) {
            option->clear(config);
            cleared[index] = true;
        }
        const char *value = parsed->args[i].value != NULL ? parsed->args[i].value : "true";
        enum kp_result rc = option->set(config, value, err);
        if (rc != KP_OK) {
            return kp_error_prefix(err, "--%s", option->name);
        }
    }
    return KP_OK;
}

enum kp_result kp_cli_tree_config(struct kp_pki_config *config, const struct kp_cli_parsed *parsed,
                                  struct kp_error *err)
{
    enum kp_result rc = kp_pki_config_init(config, err);
    if (rc != KP_OK) {
        return rc;
    }
    rc = kp_cli_load_pki_options(config, parsed, err);
    if (rc == KP_OK) {
        kp_pki_config_infer(config, config->root);
        rc = kp_pki_config_finalize(config, err);
    }
    if (rc != KP_OK) {
        kp_pki_config_wipe(config);
    }
    return rc;
}
