/*
 * options.c - kpki-loadgen's command line: one table, from which --help is printed and by which
 * arguments are parsed. Every error names the flag and the value, and exits 2.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

/* The value of a custom flag was given as `text`; store it, or print why not and return false. */
typedef bool (*option_setter)(struct lg_options *options, const char *flag, const char *text);

enum option_kind {
    OPTION_STRING, /* a const char * field, borrowed from argv */
    OPTION_INT,    /* an int field, a whole number in [min, max] */
    OPTION_COUNT,  /* a uint64_t field, a whole number in [min, max] */
    OPTION_NUMBER, /* a double field, above 0 and at most max */
    OPTION_CUSTOM, /* set() parses and stores */
    OPTION_HELP,
};

struct option_row {
    const char *name;       /* without the leading -- */
    const char *value_name; /* NULL: a switch that takes no value */
    const char *help;
    enum option_kind kind;
    size_t field; /* offsetof the field in struct lg_options, for the plain kinds */
    long min, max;
    option_setter set;
};

static bool usage_error(const char *flag, const char *text, const char *why)
{
    fprintf(stderr, "kpki-loadgen: --%s '%s': %s (see kpki-loadgen --help)\n", flag, text, why);
    return false;
}

static bool parse_long(const char *flag, const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || value < min || value > max) {
        char why[96];
        snprintf(why, sizeof(why), "want a whole number from %ld to %ld", min, max);
        return usage_error(flag, text, why);
    }
    *out = value;
    return true;
}

static bool parse_positive_double(const char *flag, const char *text, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(value) || value <= 0 ||
        value > max) {
        char why[96];
        snprintf(why, sizeof(why), "want a number above 0 and at most %g", max);
        return usage_error(flag, text, why);
    }
    *out = value;
    return true;
}

/* Parses and stores the value of one flag: plain kinds into their field, custom ones by set(). */
static bool set_option(const struct option_row *row, struct lg_options *options, const char *text)
{
    char *field = (char *)options + row->field;
    long whole = 0;
    switch (row->kind) {
    case OPTION_STRING:
        memcpy(field, &text, sizeof(text));
        return true;
    case OPTION_INT:
        if (!parse_long(row->name, text, row->min, row->max, &whole)) {
            return false;
        }
        int as_int = (int)whole;
        memcpy(field, &as_int, sizeof(as_int));
        return true;
    case OPTION_COUNT:
        if (!parse_long(row->name, text, row->min, row->max, &whole)) {
            return false;
        }
        uint64_t as_count = (uint64_t)whole;
        memcpy(field, &as_count, sizeof(as_count));
        return true;
    case OPTION_NUMBER: {
        double number = 0;
        if (!parse_positive_double(row->name, text, (double)row->max, &number)) {
            return false;
        }
        memcpy(field, &number, sizeof(number));
        return true;
    }
    default:
        return row->set(options, row->name, text);
    }
}

static bool set_mode(struct lg_options *options, const char *flag, const char *text)
{
    if (strcmp(text, "handshake") == 0) {
        options->mode = LG_MODE_HANDSHAKE;
    } else if (strcmp(text, "request") == 0) {
        options->mode = LG_MODE_REQUEST;
    } else {
        return usage_error(flag, text, "want handshake or request");
    }
    return true;
}

static bool set_handshake_request(struct lg_options *options, const char *flag, const char *text)
{
    (void)flag;
    (void)text;
    options->handshake_request = true;
    return true;
}

static bool set_no_warmup(struct lg_options *options, const char *flag, const char *text)
{
    (void)flag;
    (void)text;
    options->no_warmup = true;
    return true;
}

static bool set_tls(struct lg_options *options, const char *flag, const char *text)
{
    if (strcmp(text, "1.2") == 0) {
        options->tls_version = TLS1_2_VERSION;
    } else if (strcmp(text, "1.3") == 0) {
        options->tls_version = TLS1_3_VERSION;
    } else {
        return usage_error(flag, text, "want 1.2 or 1.3");
    }
    return true;
}

/* A header line as it will be sent: a token, a colon, a value without CR or LF (a CR or LF
 * would let one flag inject a second request). */
static bool set_header(struct lg_options *options, const char *flag, const char *text)
{
    if (options->header_count == LG_MAX_HEADERS) {
        return usage_error(flag, text, "too many headers (at most 32)");
    }
    const char *colon = strchr(text, ':');
    if (colon == NULL || colon == text) {
        return usage_error(flag, text, "want 'Name: value'");
    }
    for (const char *p = text; p < colon; p++) {
        if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL) {
            return usage_error(flag, text, "the header name has a character not allowed in it");
        }
    }
    if (strpbrk(text, "\r\n") != NULL) {
        return usage_error(flag, text, "a header may not contain CR or LF");
    }
    options->headers[options->header_count++] = text;
    return true;
}

static bool set_method(struct lg_options *options, const char *flag, const char *text)
{
    if (text[0] == '\0' || strlen(text) > 16) {
        return usage_error(flag, text, "want a method such as GET or POST");
    }
    for (const char *p = text; *p != '\0'; p++) {
        if (!isupper((unsigned char)*p)) {
            return usage_error(flag, text, "want a method in capitals, such as GET or POST");
        }
    }
    options->method = text;
    return true;
}

static bool set_server_pid(struct lg_options *options, const char *flag, const char *text)
{
    long value = 0;
    if (options->server_pid_count == LG_MAX_SERVER_PIDS) {
        return usage_error(flag, text, "too many processes (at most 16)");
    }
    if (!parse_long(flag, text, 1, 0x7fffffffL, &value)) {
        return false;
    }
    options->server_pids[options->server_pid_count++] = (int)value;
    return true;
}

static bool set_output(struct lg_options *options, const char *flag, const char *text)
{
    if (strcmp(text, "text") == 0) {
        options->output = LG_OUTPUT_TEXT;
    } else if (strcmp(text, "json") == 0) {
        options->output = LG_OUTPUT_JSON;
    } else {
        return usage_error(flag, text, "want text or json");
    }
    return true;
}

#define STRING(field_name) OPTION_STRING, offsetof(struct lg_options, field_name), 0, 0, NULL
#define INT(field_name, min, max)                                                                  \
    OPTION_INT, offsetof(struct lg_options, field_name), min, max, NULL
#define COUNT(field_name, min, max)                                                                \
    OPTION_COUNT, offsetof(struct lg_options, field_name), min, max, NULL
#define NUMBER(field_name, max) OPTION_NUMBER, offsetof(struct lg_options, field_name), 0, max, NULL
#define CUSTOM(setter) OPTION_CUSTOM, 0, 0, 0, setter

static const struct option_row OPTIONS[] = {
    {"url", "https://HOST:PORT/PATH", "the server and the path requested (required)", STRING(url)},
    {"ca", "FILE", "CA certificates (PEM) the server's chain must lead to (required)",
     STRING(ca_file)},
    {"cert", "FILE", "client certificate (PEM, leaf then intermediates); with --key",
     STRING(cert_file)},
    {"key", "FILE", "the client certificate's private key (PEM, unencrypted)", STRING(key_file)},
    {"cert-dir", "DIR",
     "client identities N.crt + N.key (N = 0, 1, ...); each new connection takes the next",
     STRING(cert_dir)},
    {"threads", "T", "worker threads (default 1)", INT(threads, 1, 256)},
    {"connections", "C", "connections, spread over the threads (default: T)",
     INT(connections, 1, 1000000)},
    {"duration", "SECONDS", "length of the measured window (default 10)",
     NUMBER(duration_s, 86400)},
    {"requests", "N", "instead of --duration: stop after N operations",
     COUNT(requests, 1, 1000000000L)},
    {"mode", "handshake|request",
     "handshake: each operation a new connection and full handshake, no resumption; request: "
     "requests on kept-alive connections opened before the window (default request)",
     CUSTOM(set_mode)},
    {"handshake-request", NULL,
     "handshake mode: send one request (Connection: close) on each connection and read the "
     "answer; without it the client sends close_notify and waits for the server to close",
     CUSTOM(set_handshake_request)},
    {"no-warmup", NULL,
     "request mode: open each connection with the handshake only; by default each one, once "
     "open, sends one request and reads the answer before the window (not counted), so work a "
     "server does on a connection's first request is not measured as a keep-alive request",
     CUSTOM(set_no_warmup)},
    {"tls", "1.2|1.3", "the only TLS version offered (default: 1.2 and 1.3)", CUSTOM(set_tls)},
    {"header", "'Name: value'", "a request header (repeatable)", CUSTOM(set_header)},
    {"method", "METHOD", "the request method (default GET, or POST with --body-file)",
     CUSTOM(set_method)},
    {"body-file", "FILE", "the request body (at most 1 MiB), sent with Content-Length",
     STRING(body_file)},
    {"rate", "R",
     "open loop: start R operations per second in all (latency counts from the scheduled "
     "start); default closed loop (each connection starts its next one when one ends)",
     NUMBER(rate, 10000000)},
    {"timeout", "SECONDS", "an operation not done by then is a timeout error (default 10)",
     NUMBER(timeout_s, 3600)},
    {"server-pid", "PID",
     "a server process whose CPU time and RSS are sampled around the window (repeatable: "
     "the figures are summed)",
     CUSTOM(set_server_pid)},
    {"output", "text|json", "the report's format (default text)", CUSTOM(set_output)},
    {"trace", "FILE",
     "write one line per operation of the window to FILE: when it was due, started and ended "
     "(ns from the window's start), its latency, thread, connection and outcome",
     STRING(trace_file)},
    {"help", NULL, "this text", OPTION_HELP, 0, 0, 0, NULL},
};

#define OPTION_COUNT (sizeof(OPTIONS) / sizeof(OPTIONS[0]))

static void print_help(void)
{
    printf("kpki-loadgen - HTTPS load generator for kpki apiserver (and any HTTPS/1.1 server)\n\n"
           "usage: kpki-loadgen --url https://HOST:PORT/PATH --ca FILE [flags]\n\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct option_row *row = &OPTIONS[i];
        printf("  --%s%s%s\n      %s\n", row->name, row->value_name ? " " : "",
               row->value_name ? row->value_name : "", row->help);
    }
    printf("\nThe report gives operations ok, errors by kind (connect, tls with OpenSSL's reason,\n"
           "http by status, timeout, closed, protocol), the rate, latency p50/p90/p99/max, the\n"
           "client's CPU per operation and, with --server-pid, the server's CPU per operation\n"
           "and its resident memory before and after the window.\n\n"
           "exit codes: 0 the run happened (errors are counted in the report, not in the exit\n"
           "code); 2 bad usage; 3 could not run at all (a file, the address, /proc/PID, memory\n"
           "or threads).\n");
}

static const struct option_row *find_option(const char *name, size_t name_len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (strlen(OPTIONS[i].name) == name_len && strncmp(OPTIONS[i].name, name, name_len) == 0) {
            return &OPTIONS[i];
        }
    }
    return NULL;
}

static bool check_combinations(struct lg_options *options)
{
    if (options->url == NULL) {
        fprintf(stderr, "kpki-loadgen: --url is required (see kpki-loadgen --help)\n");
        return false;
    }
    if (options->ca_file == NULL) {
        fprintf(stderr, "kpki-loadgen: --ca is required: the server's certificate is always "
                        "verified\n");
        return false;
    }
    if ((options->cert_file == NULL) != (options->key_file == NULL)) {
        fprintf(stderr, "kpki-loadgen: --cert and --key go together\n");
        return false;
    }
    if (options->cert_dir != NULL && options->cert_file != NULL) {
        fprintf(stderr, "kpki-loadgen: --cert-dir and --cert are exclusive\n");
        return false;
    }
    if (options->duration_s > 0 && options->requests > 0) {
        fprintf(stderr, "kpki-loadgen: --duration and --requests are exclusive\n");
        return false;
    }
    if (options->duration_s == 0 && options->requests == 0) {
        options->duration_s = 10;
    }
    if (options->connections == 0) {
        options->connections = options->threads;
    }
    if (options->connections < options->threads) {
        fprintf(stderr, "kpki-loadgen: --connections %d is fewer than --threads %d\n",
                options->connections, options->threads);
        return false;
    }
    if (options->handshake_request && options->mode != LG_MODE_HANDSHAKE) {
        fprintf(stderr, "kpki-loadgen: --handshake-request goes with --mode handshake\n");
        return false;
    }
    if (options->no_warmup && options->mode != LG_MODE_REQUEST) {
        fprintf(stderr, "kpki-loadgen: --no-warmup goes with --mode request\n");
        return false;
    }
    if (options->method == NULL) {
        options->method = options->body_file != NULL ? "POST" : "GET";
    }
    return true;
}

int lg_options_parse(int argc, char **argv, struct lg_options *options)
{
    memset(options, 0, sizeof(*options));
    options->threads = 1;
    options->mode = LG_MODE_REQUEST;
    options->timeout_s = 10;
    options->output = LG_OUTPUT_TEXT;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0) {
            arg = "--help";
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr,
                    "kpki-loadgen: unexpected argument '%s' (flags are --long; see "
                    "kpki-loadgen --help)\n",
                    arg);
            return LG_EXIT_USAGE;
        }
        const char *name = arg + 2;
        const char *equals = strchr(name, '=');
        size_t name_len = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const struct option_row *row = find_option(name, name_len);
        if (row == NULL) {
            fprintf(stderr, "kpki-loadgen: unknown flag '--%.*s' (see kpki-loadgen --help)\n",
                    (int)name_len, name);
            return LG_EXIT_USAGE;
        }
        if (row->kind == OPTION_HELP) {
            print_help();
            return -1;
        }
        const char *value = NULL;
        if (row->value_name == NULL) {
            if (equals != NULL) {
                fprintf(stderr, "kpki-loadgen: --%s takes no value\n", row->name);
                return LG_EXIT_USAGE;
            }
        } else if (equals != NULL) {
            value = equals + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "kpki-loadgen: --%s needs a value (%s)\n", row->name, row->value_name);
            return LG_EXIT_USAGE;
        }
        if (!set_option(row, options, value)) {
            return LG_EXIT_USAGE;
        }
    }
    return check_combinations(options) ? LG_EXIT_RAN : LG_EXIT_USAGE;
}
