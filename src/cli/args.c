#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

static const struct kp_cli_flag *find_flag(const struct kp_cli_flag *const *tables,
                                           size_t table_count, const char *name, size_t len)
{
    for (size_t t = 0; t < table_count; t++) {
        for (const struct kp_cli_flag *flag = tables[t]; flag->name != NULL; flag++) {
            if (strlen(flag->name) == len && strncmp(flag->name, name, len) == 0) {
                return flag;
            }
        }
    }
    return NULL;
}

enum kp_result kp_cli_parse(int argc, char **argv, const char *command,
                            const struct kp_cli_flag *const *tables, size_t table_count,
                            struct kp_cli_parsed *parsed, struct kp_error *err)
{
    memset(parsed, 0, sizeof(*parsed));
    bool flags_done = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (flags_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (parsed->positional_count == KP_CLI_MAX_ARGS) {
                return kp_error_set(err, KP_ERR_INVALID, "too many arguments");
            }
            parsed->positional[parsed->positional_count++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0) {
            arg = "--help";
        }
        if (arg[1] != '-') {
            return kp_error_set(err, KP_ERR_INVALID,
                                "unknown flag '%s' (flags are --long; see kpki %s --help)", arg,
                                command);
        }
        const char *name = arg + 2;
        const char *equals = strchr(name, '=');
        size_t name_len = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const struct kp_cli_flag *flag = find_flag(tables, table_count, name, name_len);
        if (flag == NULL) {
            return kp_error_set(err, KP_ERR_INVALID, "unknown flag '--%.*s' (see kpki %s --help)",
                                (int)name_len, name, command);
        }
        const char *value = NULL;
        if (flag->value_name != NULL) {
            if (equals != NULL) {
                value = equals + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return kp_error_set(err, KP_ERR_INVALID, "flag '--%s' needs a value (%s)",
                                    flag->name, flag->value_name);
            }
        } else if (equals != NULL) {
            return kp_error_set(err, KP_ERR_INVALID, "flag '--%s' takes no value", flag->name);
        }
        if (parsed->count == KP_CLI_MAX_ARGS) {
            return kp_error_set(err, KP_ERR_INVALID, "too many flags");
        }
        parsed->args[parsed->count].name = flag->name;
        parsed->args[parsed->count].value = value;
        parsed->count++;
    }
    return KP_OK;
}

bool kp_cli_has(const struct kp_cli_parsed *parsed, const char *name)
{
    for (size_t i = 0; i < parsed->count; i++) {
        if (strcmp(parsed->args[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

const char *kp_cli_value(const struct kp_cli_parsed *parsed, const char *name)
{
    const char *value = NULL;
    for (size_t i = 0; i < parsed->count; i++) {
        if (strcmp(parsed->args[i].name, name) == 0) {
            value = parsed->args[i].value;
        }
    }
    return value;
}

void kp_cli_print_flags(const struct kp_cli_flag *flags)
{
    for (const struct kp_cli_flag *flag = flags; flag->name != NULL; flag++) {
        char left[96];
        snprintf(left, sizeof(left), "--%s%s%s", flag->name, flag->value_name != NULL ? " " : "",
                 flag->value_name != NULL ? flag->value_name : "");
        printf("  %-36s %s", left, flag->help);
        if (flag->default_text != NULL) {
            printf(" (default: %s)", flag->default_text);
        }
        printf("\n");
    }
}

enum kp_result kp_cli_read_input(const char *path, size_t max, char **data, size_t *len,
                                 struct kp_error *err)
{
    if (strcmp(path, "-") != 0) {
        return kp_file_read(path, max, data, len, err);
    }
    *data = NULL;
    *len = 0;
    char *buffer = malloc(max + 2);
    if (buffer == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    size_t used = 0;
    size_t got;
    while ((got = fread(buffer + used, 1, max + 1 - used, stdin)) > 0) {
        used += got;
        if (used > max) {
            free(buffer);
            return kp_error_set(err, KP_ERR_INVALID, "standard input is too large (at most %zu "
                                "bytes)", max);
        }
    }
    if (ferror(stdin)) {
        free(buffer);
        return kp_error_errno(err, errno, "cannot read standard input");
    }
    buffer[used] = '\0';
    *data = buffer;
    *len = used;
    return KP_OK;
}

int kp_cli_fail(const struct kp_error *err)
{
    kp_log_error("%s", err->message[0] != '\0' ? err->message : kp_result_name(err->code));
    return kp_result_exit_code(err->code != KP_OK ? err->code : KP_ERR_INTERNAL);
}

enum kp_result kp_cli_output_parse(const char *value, enum kp_cli_output *output,
                                   struct kp_error *err)
{
    if (value == NULL || strcmp(value, "text") == 0) {
        *output = KP_CLI_OUTPUT_TEXT;
    } else if (strcmp(value, "json") == 0) {
        *output = KP_CLI_OUTPUT_JSON;
    } else {
        return kp_error_set(err, KP_ERR_INVALID, "--output: unknown format '%s' (text, json)",
                            value);
    }
    return KP_OK;
}
