/*
 * meta/selector.h - label selectors and field selectors, as Kubernetes' apimachinery parses and
 * matches them (k8s.io/apimachinery/pkg/labels/selector.go, pkg/fields/selector.go).
 *
 * Label selectors (the `labelSelector` query parameter, `kubectl get -l`):
 *   requirement := key [ ("=" | "==" | "!=") value
 *                      | ("in" | "notin") "(" value {"," value} ")"
 *                      | (">" | "<") integer ]
 *                | key            (exists)
 *                | "!" key        (does not exist)
 *   selector    := requirement { "," requirement }     ("" selects everything)
 * Keys are qualified names ([prefix/]name: prefix a DNS-1123 subdomain of at most 253
 * characters, name at most 63 of [A-Za-z0-9._-] beginning and ending alphanumeric); values at
 * most 63 of the same alphabet, possibly empty. Whitespace around tokens is ignored.
 *
 * Field selectors (the `fieldSelector` parameter): "key=value", "key==value", "key!=value",
 * comma-separated, empty terms skipped ("a=b," is valid). A term splits at its first "!=", "=="
 * or "="; the key is taken as written (no trimming, no escapes), and in the value '\' escapes
 * ',', '=' and '\' (fields.EscapeValue/UnescapeValue: any other escape, a lone trailing '\',
 * or an unescaped ',' or '=' in a value is an error). Which keys a resource supports is the
 * caller's business (the resource table).
 *
 * Both parse into the same struct; every requirement must hold (AND). Parsing errors, including
 * text over KP_SELECTOR_TEXT_MAX bytes, text that is not UTF-8, and control characters (other
 * than space, tab, CR and LF between the tokens of a label selector), are KP_ERR_INVALID with a
 * message naming the offending text (at most 64 bytes quoted, non-printable bytes as \xNN).
 * Ownership: a parsed selector owns its strings; release it with kp_selector_wipe.
 * Thread-safe: a parsed selector is read-only and may be shared.
 */
#ifndef KP_META_SELECTOR_H
#define KP_META_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/strlist.h"
#include "kpki/error.h"

/* Longest selector text accepted (kube-apiserver has no explicit limit; the request line
 * limit bounds it). */
#define KP_SELECTOR_TEXT_MAX 8192

enum kp_selector_op {
    KP_SEL_EQUALS,         /* "=" or "==" */
    KP_SEL_NOT_EQUALS,     /* "!=" : also true when the key is absent (labels) */
    KP_SEL_IN,
    KP_SEL_NOT_IN,         /* also true when the key is absent */
    KP_SEL_EXISTS,
    KP_SEL_DOES_NOT_EXIST,
    KP_SEL_GREATER_THAN,   /* the label's value parsed as an integer > the value */
    KP_SEL_LESS_THAN,
};

struct kp_selector_requirement {
    char *key;                  /* owned */
    enum kp_selector_op op;
    struct kp_strlist values;   /* one for =, !=, >, <; one or more for in/notin; none else.
                                 * Parsed label selectors hold in/notin values sorted and
                                 * without duplicates (upstream keeps a set); "x in ()" holds
                                 * the one value "". */
};

struct kp_selector {
    struct kp_selector_requirement *requirements; /* owned; in the order written */
    size_t count;                                 /* 0: selects everything */
};

/* Parses a label selector. *selector is zeroed first; wipe it on success and failure (a failed
 * parse leaves it empty). Whitespace only is the empty selector; "a," (a trailing comma) is an
 * error. KP_ERR_IO only when out of memory. */
KP_MUST_CHECK enum kp_result kp_label_selector_parse(const char *text, struct kp_selector *selector,
                                                     struct kp_error *err);

/* Parses a field selector (only =, ==, != ; values unescaped). Same contract as
 * kp_label_selector_parse. */
KP_MUST_CHECK enum kp_result kp_field_selector_parse(const char *text, struct kp_selector *selector,
                                                     struct kp_error *err);

/* Frees what selector owns and zeroes it; NULL or an already wiped selector is fine. */
void kp_selector_wipe(struct kp_selector *selector);

/* True if selector has no requirements (it selects everything); NULL counts as empty. */
bool kp_selector_is_empty(const struct kp_selector *selector);

/* True if labels (a JSON object of string values, or NULL for none) satisfy every
 * requirement (labels.Selector.Matches): != and notin hold when the key is absent; > and < fail
 * when it is absent or its value is not a base-10 int64. A label whose JSON value is not a
 * string exists, but equals no value. labels is borrowed for the call. */
bool kp_selector_matches_labels(const struct kp_selector *selector, const json_t *labels);

/* Looks up a field's value for an object: NULL when the object has no such field. */
typedef const char *(*kp_field_value_fn)(void *context, const char *key);

/* True if the fields satisfy every requirement. As upstream (fields.Set.Get), an absent field
 * (value returns NULL) compares as "": "f!=x" and "f=" hold for it, "f=x" and "f!=" do not.
 * value is called once per requirement with context; its result is borrowed until the next
 * call. */
bool kp_selector_matches_fields(const struct kp_selector *selector, kp_field_value_fn value,
                                void *context);

/* The value a selector requires of key by an "=" requirement, or an "in" with a single value
 * (NULL if none; the first such requirement as written): how the Node authorizer learns that a
 * list is limited to spec.nodeName=N. Every requirement is looked at, so "a!=x,a=y" gives "y"
 * (all requirements hold, so every object selected has a=y). Borrowed from selector. */
const char *kp_selector_required_value(const struct kp_selector *selector, const char *key);

/* Writes the canonical text of selector (as labels.Selector.String: requirements sorted by key,
 * equal keys in the order written, "in"/"notin" values sorted, "==" written "=", no spaces but
 * " in (" / " notin (") into a new string; caller frees with free(). Values of "=" and "!=" are
 * escaped as fields.EscapeValue does (a no-op for valid label values), so the text parses back
 * to the same requirements with the parser the selector came from. The empty selector gives
 * "". The text can be longer than the parsed input ("a in(b)" gives "a in (b)"). */
KP_MUST_CHECK enum kp_result kp_selector_to_string(const struct kp_selector *selector, char **text,
                                                   struct kp_error *err);

/* Parses a JSON LabelSelector ({"matchLabels":{...},"matchExpressions":[{"key","operator",
 * "values"}]}) as used in RBAC aggregation rules and elsewhere; operators In, NotIn, Exists,
 * DoesNotExist (metav1.LabelSelectorAsSelector). matchLabels become "=" requirements, then the
 * expressions follow, in order; keys and values are validated as in a parsed selector; In and
 * NotIn need values, Exists and DoesNotExist none; values are kept as given. Members that are
 * absent or null are empty; {} selects everything. Other members are ignored. object is
 * borrowed; it must be an object: upstream turns a nil selector into labels.Nothing(), which
 * this struct cannot express, so NULL is KP_ERR_INVALID and the caller decides what an absent
 * selector means. KP_ERR_INVALID names the bad member. Same contract for *selector as
 * kp_label_selector_parse. */
KP_MUST_CHECK enum kp_result kp_label_selector_from_json(const json_t *object,
                                                         struct kp_selector *selector,
                                                         struct kp_error *err);

#endif
