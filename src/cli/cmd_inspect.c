/*
 * kpki inspect FILE|-: what a certificate, chain, CSR, key, CRL, kubeconfig or JWT holds.
 *
 * Implementation notes
 *  1. Read the input: at most INPUT_MAX bytes, cleansed before it is freed (it may be a key).
 *  2. Recognise it, in this order:
 *     - PEM: any number of blocks of any supported type, in any order (a chain, the kubelet's
 *       cert-then-key pem); text around the blocks is ignored, as OpenSSL and Go ignore it;
 *     - DER (first byte 0x30): certificate, CRL, CSR, private key, encrypted private key,
 *       public key, each required to span the whole input;
 *     - a compact JWT (three base64url parts);
 *     - a kubeconfig (YAML mapping with clusters, users or contexts).
 *  3. Describe it as ONE jansson document. --output json prints that document; the text output
 *     is rendered from it, so the two can never disagree.
 * This file holds the command, the recognition of the input and the helpers every kind of input
 * shares (cli/inspect.h); each kind is described and rendered in its own file: inspect_pem.c
 * (PEM and DER: the keys, and the checks across a file's objects), inspect_cert.c (certificates,
 * CSRs, CRLs), inspect_jwt.c and inspect_kubeconfig.c.
 * Invariants:
 *  - No private material enters the document: a private key is described by its type, size and
 *    the SHA-256 of its public half; a kubeconfig's key, token and password by presence (and a
 *    token by its length); a JWT's signature by its length. Key DER lives in OpenSSL's secure
 *    heap (cleansed on free) and the input is cleansed before it is freed.
 *  - Nothing is trusted: the only signatures checked are a chain's consecutive certificates and
 *    a CSR's self-signature; a JWT's signature is never checked (and the output says so).
 *  - Every error names the input. Exit codes (this command's own): 0 shown, 1 the input cannot
 *    be read, is not recognised or is invalid, 2 usage error.
 */
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/inspect.h"
#include "core/core.h"
#include "crypto/crypto.h"
#include "jwt/jwt.h"

#define EXIT_SHOWN 0
#define EXIT_INVALID 1
#define EXIT_USAGE 2
#define INPUT_MAX (1024 * 1024)
/* Column where the text output's values start, whatever the nesting (deepest: 6, a kubeconfig's
 * embedded certificate, whose longest label is 20 characters). */
#define VALUE_COLUMN 28

static const struct kp_cli_flag inspect_flags[] = {
    {"output", "FORMAT", "text", "text or json"},
    {"help", NULL, NULL, "show this help"},
    {NULL, NULL, NULL, NULL},
};

static void print_help(void)
{
    printf("Usage: kpki inspect FILE|- [--output text|json]\n\n"
           "Shows what FILE (or standard input) holds: PEM or DER certificates (a chain: whether\n"
           "each is signed by the next), certificate requests, private keys (type, size and the\n"
           "SHA-256 of the public key; never the key), encrypted keys (not decrypted), public\n"
           "keys, CRLs, kubeconfigs (every cluster, user and context; keys and tokens only as\n"
           "present) and JWTs (header and claims; the signature is NOT verified). For a\n"
           "certificate that allows client authentication, the Kubernetes user and groups\n"
           "kube-apiserver maps it to; for a service-account token, its user and groups.\n\n"
           "Flags:\n");
    kp_cli_print_flags(inspect_flags);
    printf("\nExit codes: 0 shown, 1 the input cannot be read, is not recognised or is invalid,\n"
           "2 usage error.\n");
}

/* ---- building the document ---- */

/* A JSON string for text taken from the input, which may hold anything: when it is not UTF-8,
 * bytes past ASCII become '?' (jansson refuses invalid UTF-8). NULL only when out of memory. */
json_t *inspect_text_json(const char *text, size_t len)
{
    json_t *value = json_stringn(text, len);
    if (value != NULL) {
        return value;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        copy[i] = c < 0x80 ? (char)c : '?';
    }
    value = json_stringn(copy, len);
    free(copy);
    return value;
}

/* Sets object[key] = value, taking the reference; a failure (value NULL included) is recorded
 * and reported once at the end, so building code reads straight through. */
void inspect_put(struct inspect *in, json_t *object, const char *key, json_t *value)
{
    if (value == NULL || json_object_set_new(object, key, value) != 0) {
        in->out_of_memory = true;
    }
}

void inspect_put_text(struct inspect *in, json_t *object, const char *key, const char *text)
{
    inspect_put(in, object, key, inspect_text_json(text, strlen(text)));
}

void inspect_push(struct inspect *in, json_t *array, json_t *value)
{
    if (value == NULL || json_array_append_new(array, value) != 0) {
        in->out_of_memory = true;
    }
}

void inspect_put_time(struct inspect *in, json_t *object, const char *key, int64_t when)
{
    char text[40];
    kp_time_format_rfc3339(when, text, sizeof(text));
    inspect_put_text(in, object, key, text);
}

/* An OID as its short name when OpenSSL knows it ("serverAuth"), else in dotted form. */
json_t *inspect_oid_json(const ASN1_OBJECT *oid)
{
    char text[128];
    int nid = OBJ_obj2nid(oid);
    if (nid != NID_undef && OBJ_nid2sn(nid) != NULL) {
        return json_string(OBJ_nid2sn(nid));
    }
    if (OBJ_obj2txt(text, sizeof(text), oid, 1) <= 0) {
        snprintf(text, sizeof(text), "%s", "unknown");
    }
    return json_string(text);
}

/* "key" ("ECDSA P-256") and "publicKeySha256" (SHA-256 of the SubjectPublicKeyInfo, kubeadm's
 * pin format). Only public information is taken from key, whatever it holds. */
void inspect_put_key(struct inspect *in, json_t *object, EVP_PKEY *key)
{
    char text[128];
    kp_key_describe(key, text, sizeof(text));
    inspect_put_text(in, object, "key", text);
    struct kp_error err;
    char pin[2 * 32 + 1];
    if (kp_key_spki_sha256(key, pin, sizeof(pin), &err) == KP_OK) {
        inspect_put_text(in, object, "publicKeySha256", pin);
    }
    ERR_clear_error();
}

/* ---- recognising the input ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

#define EXPECTED "expected PEM or DER certificates, CSRs, keys or CRLs, a kubeconfig or a JWT"

/* True if text has `key:` or `"key"` (a kubeconfig may be written as JSON, which is YAML). */
static bool mentions_key(const char *text, const char *key)
{
    char yaml_form[32];
    char json_form[32];
    snprintf(yaml_form, sizeof(yaml_form), "%s:", key);
    snprintf(json_form, sizeof(json_form), "\"%s\"", key);
    return strstr(text, yaml_form) != NULL || strstr(text, json_form) != NULL;
}

static enum kp_result describe_input(struct inspect *in, const char *data, size_t len, json_t *doc,
                                     struct kp_error *err)
{
    inspect_put_text(in, doc, "source", in->what);
    size_t start = 0;
    size_t end = len;
    while (start < end && is_space(data[start])) {
        start++;
    }
    while (end > start && is_space(data[end - 1])) {
        end--;
    }
    if (start == end) {
        return kp_error_set(err, KP_ERR_INVALID, "%s: empty input (%s)", in->what, EXPECTED);
    }
    if (memmem(data, len, "-----BEGIN ", strlen("-----BEGIN ")) != NULL) {
        return inspect_describe_objects(in, data, len, true, doc, err);
    }
    if ((unsigned char)data[0] == 0x30) { /* an ASN.1 SEQUENCE */
        return inspect_describe_objects(in, data, len, false, doc, err);
    }
    if (kp_jwt_looks_like(data + start, end - start)) {
        return inspect_describe_jwt(in, data + start, end - start, doc, err);
    }
    /* A kubeconfig is UTF-8 YAML; the key test avoids reporting YAML errors for text that
     * never meant to be one. */
    bool text = memchr(data, '\0', len) == NULL && kp_utf8_valid(data);
    if (text && (mentions_key(data, "clusters") || mentions_key(data, "users") ||
                 mentions_key(data, "contexts"))) {
        struct kp_yaml_doc yaml;
        enum kp_result rc = kp_yaml_load(&yaml, data, len, in->what, err);
        if (rc != KP_OK) {
            return kp_error_prefix(err, "not a valid kubeconfig"); /* the message names it */
        }
        int root = kp_yaml_root(&yaml);
        yaml_node_t *node = kp_yaml_node(&yaml, root);
        bool kubeconfig = false;
        static const char *const sections[] = {"clusters", "users", "contexts"};
        for (size_t i = 0; node != NULL && node->type == YAML_MAPPING_NODE && i < 3; i++) {
            yaml_node_t *list = kp_yaml_node(&yaml, kp_yaml_map_get(&yaml, root, sections[i]));
            kubeconfig |= list != NULL && list->type == YAML_SEQUENCE_NODE;
        }
        rc = kubeconfig ? inspect_describe_kubeconfig(in, &yaml, doc, err)
                        : kp_error_set(err, KP_ERR_INVALID,
                                       "%s: YAML, but not a kubeconfig "
                                       "(no list of clusters, users or contexts at the top "
                                       "level)",
                                       in->what);
        kp_yaml_free(&yaml);
        return rc;
    }
    return kp_error_set(err, KP_ERR_INVALID, "%s: not recognised (%s)", in->what, EXPECTED);
}

/* ---- text output, rendered from the document ---- */

/* Input-controlled text goes to a terminal: control characters are shown escaped. */
void inspect_print_escaped(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            printf("\\x%02x", c);
        } else {
            putchar(c);
        }
    }
}

void inspect_print_value(json_t *value)
{
    if (json_is_string(value)) {
        inspect_print_escaped(json_string_value(value), json_string_length(value));
    } else if (json_is_boolean(value)) {
        printf("%s", json_is_true(value) ? "yes" : "no");
    } else if (json_is_integer(value)) {
        printf("%lld", (long long)json_integer_value(value));
    } else if (json_is_array(value)) {
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item)
        {
            printf("%s", index > 0 ? ", " : "");
            inspect_print_value(item);
        }
        if (json_array_size(value) == 0) {
            printf("(none)");
        }
    }
}

void inspect_print_label(int indent, const char *label)
{
    char with_colon[64];
    snprintf(with_colon, sizeof(with_colon), "%s:", label);
    int width = VALUE_COLUMN - 1 - indent;
    printf("%*s%-*s ", indent, "", width > 0 ? width : 0, with_colon);
}

/* "label: value" when object has key. */
void inspect_print_field(int indent, const char *label, json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    if (value != NULL) {
        inspect_print_label(indent, label);
        inspect_print_value(value);
        printf("\n");
    }
}

const char *inspect_field_text(json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

void inspect_print_warnings(int indent, json_t *object)
{
    size_t index;
    json_t *warning;
    json_array_foreach(json_object_get(object, "warnings"), index, warning)
    {
        inspect_print_label(indent, "warning");
        inspect_print_value(warning);
        printf("\n");
    }
}

static const char *kind_title(const char *kind)
{
    static const struct {
        const char *kind;
        const char *title;
    } titles[] = {
        {"certificate", "certificate"}, {"certificateRequest", "certificate request (CSR)"},
        {"privateKey", "private key"},  {"encryptedPrivateKey", "encrypted private key"},
        {"publicKey", "public key"},    {"crl", "certificate revocation list (CRL)"},
        {"kubeconfig", "kubeconfig"},   {"jwt", "JWT (signature not verified)"},
    };
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++) {
        if (strcmp(titles[i].kind, kind) == 0) {
            return titles[i].title;
        }
    }
    return "unsupported";
}

static void print_text(json_t *doc)
{
    json_t *objects = json_object_get(doc, "objects");
    const char *format = inspect_field_text(doc, "format");
    bool pem = strcmp(format, "pem") == 0;
    inspect_print_escaped(inspect_field_text(doc, "source"),
                          strlen(inspect_field_text(doc, "source")));
    if (pem) {
        printf(": PEM, %zu block%s\n", json_array_size(objects),
               json_array_size(objects) == 1 ? "" : "s");
    }
    size_t index;
    json_t *object;
    json_array_foreach(objects, index, object)
    {
        const char *kind = inspect_field_text(object, "kind");
        if (pem) {
            printf("\n[block %lld] %s",
                   (long long)json_integer_value(json_object_get(object, "pemBlock")),
                   kind_title(kind));
            if (strcmp(kind, "unsupported") == 0) {
                printf(" '");
                inspect_print_value(json_object_get(object, "pemType"));
                printf("' (not shown)");
            }
            printf("\n");
        } else {
            printf(": %s%s\n", strcmp(format, "der") == 0 ? "DER " : "", kind_title(kind));
        }
        if (strcmp(kind, "certificate") == 0) {
            inspect_print_cert(2, object);
        } else if (strcmp(kind, "certificateRequest") == 0) {
            inspect_print_csr(2, object);
        } else if (strcmp(kind, "crl") == 0) {
            inspect_print_crl(2, object);
        } else if (strcmp(kind, "privateKey") == 0 || strcmp(kind, "encryptedPrivateKey") == 0 ||
                   strcmp(kind, "publicKey") == 0) {
            inspect_print_key(2, object);
        } else if (strcmp(kind, "jwt") == 0) {
            inspect_print_jwt(2, object);
        } else if (strcmp(kind, "kubeconfig") == 0) {
            inspect_print_kubeconfig(2, object);
        }
    }
}

/* ---- the command ---- */

int kp_cmd_inspect(int argc, char **argv)
{
    const struct kp_cli_flag *tables[] = {inspect_flags};
    struct kp_cli_parsed parsed;
    struct kp_error err;
    kp_error_clear(&err);
    enum kp_cli_output output = KP_CLI_OUTPUT_TEXT;
    enum kp_result rc = kp_cli_parse(argc, argv, "inspect", tables, 1, &parsed, &err);
    if (rc == KP_OK && kp_cli_has(&parsed, "help")) {
        print_help();
        return EXIT_SHOWN;
    }
    if (rc == KP_OK) {
        rc = kp_cli_output_parse(kp_cli_value(&parsed, "output"), &output, &err);
    }
    if (rc == KP_OK && parsed.positional_count != 1) {
        rc = kp_error_set(&err, KP_ERR_INVALID,
                          "give exactly one FILE, or '-' for standard "
                          "input (see kpki inspect --help)");
    }
    if (rc != KP_OK) {
        kp_cli_fail(&err);
        return EXIT_USAGE;
    }

    const char *path = parsed.positional[0];
    struct inspect in = {
        .what = strcmp(path, "-") == 0 ? "standard input" : path,
        .now = kp_clock_now(kp_clock_system()),
    };
    char *data = NULL;
    size_t len = 0;
    json_t *doc = json_object();
    rc = doc != NULL ? kp_cli_read_input(path, INPUT_MAX, &data, &len, &err)
                     : kp_error_set(&err, KP_ERR_IO, "out of memory");
    if (rc == KP_OK) {
        rc = describe_input(&in, data, len, doc, &err);
    }
    if (rc == KP_OK && in.out_of_memory) {
        rc = kp_error_set(&err, KP_ERR_IO, "%s: out of memory", in.what);
    }
    kp_secret_free(data, len); /* the input may be a private key */
    if (rc != KP_OK) {
        json_decref(doc);
        kp_cli_fail(&err);
        return EXIT_INVALID;
    }
    if (output == KP_CLI_OUTPUT_JSON) {
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        print_text(doc);
    }
    json_decref(doc);
    return EXIT_SHOWN;
}
