/*
 * core/yaml.h - read a YAML document into libyaml's node graph, and write YAML through libyaml's
 * emitter, so kpki never hand-parses or hand-quotes YAML.
 *
 * Reading: kp_yaml_load() parses exactly one document. Nodes are referenced by index
 * (libyaml's node ids); index 0 means "absent". Aliases are resolved by libyaml to shared nodes,
 * so a document cannot expand beyond its own size. Error messages carry the source name and line.
 */
#ifndef KP_CORE_YAML_H
#define KP_CORE_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "kpki/error.h"

struct kp_yaml_doc {
    yaml_document_t document;
    char source[256]; /* file name for messages */
    bool loaded;
};

/* Parses text (len bytes, borrowed for the call) as one YAML document. An empty input yields a
 * document whose root is 0. A key repeated within one mapping is KP_ERR_INVALID. source names
 * the input in messages. On success, free with kp_yaml_free(), which wipes the document's
 * scalars first (kubeconfigs carry keys). */
KP_MUST_CHECK enum kp_result kp_yaml_load(struct kp_yaml_doc *doc, const char *text, size_t len,
                                          const char *source, struct kp_error *err);
void kp_yaml_free(struct kp_yaml_doc *doc);

int kp_yaml_root(struct kp_yaml_doc *doc);
/* The node, or NULL for index 0 / out of range. Borrowed from doc. */
yaml_node_t *kp_yaml_node(struct kp_yaml_doc *doc, int index);
/* 1-based source line of a node (0 if unknown). */
int kp_yaml_line(struct kp_yaml_doc *doc, int index);

/* Scalar value of a node (borrowed), or NULL if the node is not a scalar. */
const char *kp_yaml_scalar(struct kp_yaml_doc *doc, int index);
/* True for a plain "null", "~" or empty scalar, as YAML 1.1 reads them. */
bool kp_yaml_is_null(struct kp_yaml_doc *doc, int index);

/* Value node for key in a mapping node (0 if absent or node is not a mapping). */
int kp_yaml_map_get(struct kp_yaml_doc *doc, int mapping, const char *key);

/* Number of items of a sequence node, and the i-th item's index (0 if out of range). */
size_t kp_yaml_seq_len(struct kp_yaml_doc *doc, int sequence);
int kp_yaml_seq_item(struct kp_yaml_doc *doc, int sequence, size_t i);

/* Called for every key of every mapping while a document is re-emitted: return a string to
 * replace that key's (scalar) value, or NULL to keep it. The returned string is borrowed until
 * the next call. */
typedef const char *(*kp_yaml_replace_fn)(void *context, int mapping, const char *key);

/* Re-emits doc as block YAML, in its own key order, with values replaced by `replace` (which may
 * be NULL). Comments and anchors are not preserved; everything else is. *out: free with free().
 * Used to change a few fields of a file someone else may have edited (a kubeconfig's client
 * credentials) without losing the rest. */
KP_MUST_CHECK enum kp_result kp_yaml_rewrite(struct kp_yaml_doc *doc, kp_yaml_replace_fn replace,
                                             void *context, char **out, size_t *out_len,
                                             struct kp_error *err);

/* A writer producing block-style YAML in memory. Calls must nest properly; the first failure
 * sticks and is reported by kp_yaml_writer_finish. */
struct kp_yaml_writer {
    yaml_emitter_t emitter;
    unsigned char *buffer; /* owned */
    size_t len;
    size_t capacity;
    bool failed;
};

KP_MUST_CHECK enum kp_result kp_yaml_writer_init(struct kp_yaml_writer *writer,
                                                 struct kp_error *err);
void kp_yaml_writer_map_start(struct kp_yaml_writer *writer);
/* An empty flow mapping "{}" (kubeconfig's "preferences: {}"). */
void kp_yaml_writer_empty_map(struct kp_yaml_writer *writer);
void kp_yaml_writer_map_end(struct kp_yaml_writer *writer);
void kp_yaml_writer_seq_start(struct kp_yaml_writer *writer);
void kp_yaml_writer_seq_end(struct kp_yaml_writer *writer);
void kp_yaml_writer_scalar(struct kp_yaml_writer *writer, const char *value);
/* Ends the document. On success *out is the NUL-terminated text (ownership transferred, free
 * with free()) and *out_len its length. The writer is wiped either way. */
KP_MUST_CHECK enum kp_result kp_yaml_writer_finish(struct kp_yaml_writer *writer, char **out,
                                                   size_t *out_len, struct kp_error *err);
/* Releases a writer that will not be finished. */
void kp_yaml_writer_wipe(struct kp_yaml_writer *writer);

#endif
