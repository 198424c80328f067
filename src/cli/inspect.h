/*
 * cli/inspect.h - what the files of `kpki inspect` share; private to them (cmd_inspect.c,
 * inspect_cert.c, inspect_pem.c, inspect_jwt.c, inspect_kubeconfig.c). Not for other commands:
 * use cli/cli.h.
 *
 * Every kind of input is described into one jansson document, and the text output is rendered
 * from that document (see cmd_inspect.c). The building helpers record a failed allocation in
 * struct inspect instead of returning it: the command reports it once at the end. The names
 * are the short ones these functions had while they were static in cmd_inspect.c.
 */
#ifndef KP_CLI_INSPECT_H
#define KP_CLI_INSPECT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/yaml.h"
#include "kpki/error.h"

/* One run: the input's name and the time residual validity is measured from. */
struct inspect {
    const char *what;   /* the input in messages: its path, or "standard input" */
    int64_t now;        /* unix seconds */
    bool out_of_memory; /* a jansson allocation failed somewhere; checked once at the end */
};

/* ---- building the document (cmd_inspect.c) ---- */

/* A new JSON string for text taken from the input ('?' for bytes past ASCII when it is not
 * UTF-8). NULL only when out of memory. */
json_t *inspect_text_json(const char *text, size_t len);
/* object[key] = value, taking the reference to value (which may be NULL: out of memory). */
void inspect_put(struct inspect *in, json_t *object, const char *key, json_t *value);
void inspect_put_text(struct inspect *in, json_t *object, const char *key, const char *text);
/* Appends value to array, taking the reference to value (which may be NULL). */
void inspect_push(struct inspect *in, json_t *array, json_t *value);
/* object[key] = when (unix seconds) in RFC 3339. */
void inspect_put_time(struct inspect *in, json_t *object, const char *key, int64_t when);
/* A new JSON string: the OID's short name, else its dotted form. NULL when out of memory. */
json_t *inspect_oid_json(const ASN1_OBJECT *oid);
/* "key" and "publicKeySha256" of key (borrowed); nothing private is read from it. */
void inspect_put_key(struct inspect *in, json_t *object, EVP_PKEY *key);

/* ---- text output (cmd_inspect.c) ---- */

/* Text on stdout, control characters escaped (it comes from the input). */
void inspect_print_escaped(const char *text, size_t len);
/* A string, boolean, integer or array of them as text. */
void inspect_print_value(json_t *value);
/* "label:" indented, padded so the value starts at the output's value column. */
void inspect_print_label(int indent, const char *label);
/* "label: value\n" when object (may be NULL) has key; nothing otherwise. */
void inspect_print_field(int indent, const char *label, json_t *object, const char *key);
/* object[key] when it is a string (borrowed from object), else NULL. */
const char *inspect_field_text(json_t *object, const char *key);
/* One "warning:" line per entry of object's "warnings" array. */
void inspect_print_warnings(int indent, json_t *object);

/* ---- certificates, CSRs and CRLs (inspect_cert.c) ---- */

/* New objects describing the argument (borrowed). crl_json returns NULL, err set, when the
 * CRL's entries cannot be read. */
json_t *inspect_cert_json(struct inspect *in, X509 *cert);
json_t *inspect_csr_json(struct inspect *in, X509_REQ *csr);
json_t *inspect_crl_json(struct inspect *in, X509_CRL *crl, struct kp_error *err);
void inspect_print_cert(int indent, json_t *cert);
void inspect_print_csr(int indent, json_t *csr);
void inspect_print_crl(int indent, json_t *crl);

/* ---- PEM and DER input, keys (inspect_pem.c) ---- */

/* Describes the objects of data (PEM when pem, else one DER object) into doc's "format" and
 * "objects". */
KP_MUST_CHECK enum kp_result inspect_describe_objects(struct inspect *in, const char *data,
                                                      size_t len, bool pem, json_t *doc,
                                                      struct kp_error *err);
/* A private, encrypted private or public key. */
void inspect_print_key(int indent, json_t *key);

/* ---- JWTs (inspect_jwt.c) ---- */

/* Describes the compact JWT token into doc's "format" and "objects". */
KP_MUST_CHECK enum kp_result inspect_describe_jwt(struct inspect *in, const char *token, size_t len,
                                                  json_t *doc, struct kp_error *err);
void inspect_print_jwt(int indent, json_t *jwt);

/* ---- kubeconfigs (inspect_kubeconfig.c) ---- */

/* Describes the kubeconfig yaml (borrowed, loaded) into doc's "format" and "objects". */
KP_MUST_CHECK enum kp_result inspect_describe_kubeconfig(struct inspect *in,
                                                         struct kp_yaml_doc *yaml, json_t *doc,
                                                         struct kp_error *err);
void inspect_print_kubeconfig(int indent, json_t *config);

#endif
