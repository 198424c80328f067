/*
 * cli/cli.h - the kpki command line: one file per subcommand, a shared flag parser driven by
 * tables (so --help and parsing come from the same rows), text or JSON output.
 *
 * Conventions: data on stdout, diagnostics on stderr; exit codes from kp_result_exit_code()
 * (0 ok, 1 invalid input or usage, 3 forbidden, 4 not found, 5 conflict, 6 I/O, 7 internal),
 * documented in docs/cli.md.
 */
#ifndef KP_CLI_CLI_H
#define KP_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "kpki/error.h"
#include "kpki/pki.h"
#include "net/client.h"

/* A flag of a subcommand. */
struct kp_cli_flag {
    const char *name;       /* without dashes */
    const char *value_name; /* NULL for a boolean flag */
    const char *default_text;
    const char *help;
};

/* One parsed flag occurrence, in command-line order. value is borrowed from argv. */
struct kp_cli_arg {
    const char *name;
    const char *value; /* NULL for booleans */
};

#define KP_CLI_MAX_ARGS 256

struct kp_cli_parsed {
    struct kp_cli_arg args[KP_CLI_MAX_ARGS];
    size_t count;
    const char *positional[KP_CLI_MAX_ARGS];
    size_t positional_count;
};

/* Parses argv (after the subcommand name) against the union of the tables (each terminated
 * by a row with name NULL). "--name value", "--name=value", "--" ends flags. Unknown flags and
 * missing values are KP_ERR_INVALID naming the flag. */
KP_MUST_CHECK enum kp_result kp_cli_parse(int argc, char **argv, const char *command,
                                          const struct kp_cli_flag *const *tables,
                                          size_t table_count, struct kp_cli_parsed *parsed,
                                          struct kp_error *err);

/* True if the boolean flag was given; the last value of a flag (or NULL). */
bool kp_cli_has(const struct kp_cli_parsed *parsed, const char *name);
const char *kp_cli_value(const struct kp_cli_parsed *parsed, const char *name);

/* Prints a flag table for --help. */
void kp_cli_print_flags(const struct kp_cli_flag *flags);

/* Reads a whole input: a file, or standard input for "-". At most max bytes; *data is
 * NUL-terminated heap memory (free with free()). */
KP_MUST_CHECK enum kp_result kp_cli_read_input(const char *path, size_t max, char **data,
                                               size_t *len, struct kp_error *err);

/* Prints "kpki: error: <message>" and returns the exit code for err. */
int kp_cli_fail(const struct kp_error *err);

/* Output format shared by commands that print data. */
enum kp_cli_output { KP_CLI_OUTPUT_TEXT, KP_CLI_OUTPUT_JSON };
KP_MUST_CHECK enum kp_result kp_cli_output_parse(const char *value, enum kp_cli_output *output,
                                                 struct kp_error *err);

/* The init option table (include/kpki/pki.h) as flags, for every command that takes the
 * tree's identity (init, check, renew, kubeconfig). Static storage; NULL-name terminated. */
const struct kp_cli_flag *kp_cli_pki_option_flags(void);

/* Applies --config FILE (if given) then every option flag, in command-line order, to config:
 * defaults < file < flags; a list flag replaces the file's list. Errors name the flag or file. */
KP_MUST_CHECK enum kp_result kp_cli_load_pki_options(struct kp_pki_config *config,
                                                     const struct kp_cli_parsed *parsed,
                                                     struct kp_error *err);

/* The config of an existing tree, for the commands that work on one (check, renew, revoke,
 * crl, kubeconfig): defaults, --config and the option flags present in parsed, then whatever is
 * still unset read from the tree (kp_pki_config_infer), then finalized. On success the caller
 * wipes config; on failure it is already wiped. */
KP_MUST_CHECK enum kp_result kp_cli_tree_config(struct kp_pki_config *config,
                                                const struct kp_cli_parsed *parsed,
                                                struct kp_error *err);

/* A client for the API server a kubeconfig names, with its credentials. *client: free with
 * kp_client_free. */
KP_MUST_CHECK enum kp_result kp_cli_api_open(const char *kubeconfig, struct kp_client **client,
                                             struct kp_error *err);
/* One JSON call: body (borrowed, may be NULL) out, *response (new reference, may be NULL to
 * ignore) in. A non-2xx answer is an error of the matching kind (401 -> unauthenticated, 403
 * -> forbidden, 404 -> not-found, 409 -> conflict, 400/422 -> invalid, 5xx -> io) whose message
 * is the server's Status message. */
KP_MUST_CHECK enum kp_result kp_cli_api_call(struct kp_client *client, const char *method,
                                             const char *path, const json_t *body,
                                             json_t **response, struct kp_error *err);

/* Subcommands: argc/argv start after the subcommand name. Return the process exit code. */
int kp_cmd_init(int argc, char **argv);
int kp_cmd_version(int argc, char **argv);
int kp_cmd_verify(int argc, char **argv);
int kp_cmd_inspect(int argc, char **argv);
int kp_cmd_check(int argc, char **argv);
int kp_cmd_revoke(int argc, char **argv);
int kp_cmd_renew(int argc, char **argv);
int kp_cmd_kubeconfig(int argc, char **argv);
int kp_cmd_crl(int argc, char **argv);
int kp_cmd_apiserver(int argc, char **argv);
int kp_cmd_token(int argc, char **argv);

#endif
