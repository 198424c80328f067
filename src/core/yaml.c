#include "core/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kubeconfigs carry private keys: wipe what libyaml copied of the input before it frees it.
 * (libyaml frees through free(); its structures are public, so the copies can be reached.) */
static void cleanse_parser(yaml_parser_t *parser)
{
    if (parser->raw_buffer.start != NULL) {
        explicit_bzero(parser->raw_buffer.start,
                       (size_t)(parser->raw_buffer.end - parser->raw_buffer.start));
    }
    if (parser->buffer.start != NULL) {
        explicit_bzero(parser->buffer.start, (size_t)(parser->buffer.end - parser->buffer.start));
    }
}

static void cleanse_document(yaml_document_t *document)
{
    for (yaml_node_t *node = document->nodes.start; node != NULL && node < document->nodes.top;
         node++) {
        if (node->type == YAML_SCALAR_NODE && node->data.scalar.value != NULL) {
            explicit_bzero(node->data.scalar.value, node->data.scalar.length);
        }
    }
}

struct key_line {
    const char *key;
    size_t line;
};

static int compare_keys(const void *a, const void *b)
{
    const struct key_line *left = a, *right = b;
    int order = strcmp(left->key, right->key);
    return order != 0 ? order : (left->line > right->line) - (left->line < right->line);
}

/* A key given twice is refused everywhere: YAML forbids it, and readers disagree on which value
 * wins (client-go takes the last, libyaml lookups here the first), which would let a file show
 * one CA to kpki's checks and another to kubectl. */
static enum kp_result reject_duplicate_keys(struct kp_yaml_doc *doc, struct kp_error *err)
{
    enum kp_result rc = KP_OK;
    for (yaml_node_t *node = doc->document.nodes.start;
         rc == KP_OK && node != NULL && node < doc->document.nodes.top; node++) {
        if (node->type != YAML_MAPPING_NODE) {
            continue;
        }
        size_t count = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
        if (count < 2) {
            continue;
        }
        struct key_line *keys = calloc(count, sizeof(*keys));
        if (keys == NULL) {
            return kp_error_set(err, KP_ERR_IO, "out of memory");
        }
        size_t scalars = 0;
        for (size_t i = 0; i < count; i++) {
            int key_node = node->data.mapping.pairs.start[i].key;
            const char *key = kp_yaml_scalar(doc, key_node);
            if (key != NULL) {
                keys[scalars].key = key;
                keys[scalars++].line = (size_t)kp_yaml_line(doc, key_node);
            }
        }
        qsort(keys, scalars, sizeof(*keys), compare_keys);
        for (size_t i = 1; i < scalars && rc == KP_OK; i++) {
            if (strcmp(keys[i - 1].key, keys[i].key) == 0) {
                rc = kp_error_set(err, KP_ERR_INVALID,
                                  "%s: line %zu: '%s' is set twice (first on line %zu)",
                                  doc->source, keys[i].line, keys[i].key, keys[i - 1].line);
            }
        }
        free(keys);
    }
    return rc;
}

enum kp_result kp_yaml_load(struct kp_yaml_doc *doc, const char *text, size_t len,
                            const char *source, struct kp_error *err)
{
    memset(doc, 0, sizeof(*doc));
    snprintf(doc->source, sizeof(doc->source), "%s", source);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        return kp_error_set(err, KP_ERR_IO, "%s: cannot initialise the YAML parser", source);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    enum kp_result rc = KP_OK;
    if (!yaml_parser_load(&parser, &doc->document)) {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: line %zu: invalid YAML: %s", source,
                          parser.problem_mark.line + 1,
                          parser.problem != NULL ? parser.problem : "parse error");
        cleanse_parser(&parser);
        yaml_parser_delete(&parser);
        return rc;
    }
    doc->loaded = true;
    /* Exactly one document: a second one is almost certainly a mistake in a config file. */
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        bool has_second = yaml_document_get_root_node(&extra) != NULL;
        cleanse_document(&extra);
        yaml_document_delete(&extra);
        if (has_second) {
            rc = kp_error_set(err, KP_ERR_INVALID,
                              "%s: contains more than one YAML document; expected one", source);
        }
    } else {
        rc = kp_error_set(err, KP_ERR_INVALID, "%s: line %zu: invalid YAML: %s", source,
                          parser.problem_mark.line + 1,
                          parser.problem != NULL ? parser.problem : "parse error");
    }
    cleanse_parser(&parser);
    yaml_parser_delete(&parser);
    if (rc == KP_OK) {
        rc = reject_duplicate_keys(doc, err);
    }
    if (rc != KP_OK) {
        kp_yaml_free(doc);
    }
    return rc;
}

void kp_yaml_free(struct kp_yaml_doc *doc)
{
    if (doc->loaded) {
        cleanse_document(&doc->document);
        yaml_document_delete(&doc->document);
        doc->loaded = false;
    }
}

int kp_yaml_root(struct kp_yaml_doc *doc)
{
    return yaml_document_get_root_node(&doc->document) != NULL ? 1 : 0;
}

yaml_node_t *kp_yaml_node(struct kp_yaml_doc *doc, int index)
{
    if (index <= 0) {
        return NULL;
    }
    return yaml_document_get_node(&doc->document, index);
}

int kp_yaml_line(struct kp_yaml_doc *doc, int index)
{
    yaml_node_t *node = kp_yaml_node(doc, index);
    return node != NULL ? (int)node->start_mark.line + 1 : 0;
}

const char *kp_yaml_scalar(struct kp_yaml_doc *doc, int index)
{
    yaml_node_t *node = kp_yaml_node(doc, index);
    if (node == NULL || node->type != YAML_SCALAR_NODE) {
        return NULL;
    }
    return (const char *)node->data.scalar.value;
}

bool kp_yaml_is_null(struct kp_yaml_doc *doc, int index)
{
    yaml_node_t *node = kp_yaml_node(doc, index);
    if (node == NULL) {
        return true;
    }
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    const char *value = (const char *)node->data.scalar.value;
    return value[0] == '\0' || strcmp(value, "~") == 0 || strcmp(value, "null") == 0 ||
           strcmp(value, "Null") == 0 || strcmp(value, "NULL") == 0;
}

int kp_yaml_map_get(struct kp_yaml_doc *doc, int mapping, const char *key)
{
    yaml_node_t *node = kp_yaml_node(doc, mapping);
    if (node == NULL || node->type != YAML_MAPPING_NODE) {
        return 0;
    }
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        const char *name = kp_yaml_scalar(doc, pair->key);
        if (name != NULL && strcmp(name, key) == 0) {
            return pair->value;
        }
    }
    return 0;
}

size_t kp_yaml_seq_len(struct kp_yaml_doc *doc, int sequence)
{
    yaml_node_t *node = kp_yaml_node(doc, sequence);
    if (node == NULL || node->type != YAML_SEQUENCE_NODE) {
        return 0;
    }
    return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

int kp_yaml_seq_item(struct kp_yaml_doc *doc, int sequence, size_t i)
{
    if (i >= kp_yaml_seq_len(doc, sequence)) {
        return 0;
    }
    return kp_yaml_node(doc, sequence)->data.sequence.items.start[i];
}

/* ---- writer ---- */

static int write_handler(void *data, unsigned char *bytes, size_t size)
{
    struct kp_yaml_writer *writer = data;
    if (writer->len + size + 1 > writer->capacity) {
        size_t grown = writer->capacity == 0 ? 4096 : writer->capacity;
        while (grown < writer->len + size + 1) {
            grown *= 2;
        }
        /* Not realloc: the old buffer may hold key material and must be cleansed. */
        unsigned char *bigger = malloc(grown);
        if (bigger == NULL) {
            return 0;
        }
        if (writer->buffer != NULL) {
            memcpy(bigger, writer->buffer, writer->len);
            explicit_bzero(writer->buffer, writer->capacity);
            free(writer->buffer);
        }
        writer->buffer = bigger;
        writer->capacity = grown;
    }
    memcpy(writer->buffer + writer->len, bytes, size);
    writer->len += size;
    return 1;
}

/* yaml_emitter_emit takes ownership of the event even when it fails; an event made after an
 * earlier failure is never handed over, so it is deleted here. */
static void emit(struct kp_yaml_writer *writer, yaml_event_t *event, int made)
{
    if (!made) {
        writer->failed = true;
        return;
    }
    if (writer->failed) {
        yaml_event_delete(event);
        return;
    }
    if (!yaml_emitter_emit(&writer->emitter, event)) {
        writer->failed = true;
    }
}

enum kp_result kp_yaml_writer_init(struct kp_yaml_writer *writer, struct kp_error *err)
{
    memset(writer, 0, sizeof(*writer));
    if (!yaml_emitter_initialize(&writer->emitter)) {
        return kp_error_set(err, KP_ERR_IO, "cannot initialise the YAML emitter");
    }
    yaml_emitter_set_output(&writer->emitter, write_handler, writer);
    yaml_emitter_set_unicode(&writer->emitter, 1);
    yaml_emitter_set_width(&writer->emitter, -1); /* never fold long base64 lines */
    yaml_emitter_set_indent(&writer->emitter, 2);
    yaml_event_t event;
    emit(writer, &event, yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING));
    emit(writer, &event, yaml_document_start_event_initialize(&event, NULL, NULL, NULL, 1));
    return KP_OK;
}

void kp_yaml_writer_map_start(struct kp_yaml_writer *writer)
{
    yaml_event_t event;
    emit(writer, &event,
         yaml_mapping_start_event_initialize(&event, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

void kp_yaml_writer_empty_map(struct kp_yaml_writer *writer)
{
    yaml_event_t event;
    emit(writer, &event,
         yaml_mapping_start_event_initialize(&event, NULL, NULL, 1, YAML_FLOW_MAPPING_STYLE));
    emit(writer, &event, yaml_mapping_end_event_initialize(&event));
}

void kp_yaml_writer_map_end(struct kp_yaml_writer *writer)
{
    yaml_event_t event;
    emit(writer, &event, yaml_mapping_end_event_initialize(&event));
}

void kp_yaml_writer_seq_start(struct kp_yaml_writer *writer)
{
    yaml_event_t event;
    emit(writer, &event,
         yaml_sequence_start_event_initialize(&event, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

void kp_yaml_writer_seq_end(struct kp_yaml_writer *writer)
{
    yaml_event_t event;
    emit(writer, &event, yaml_sequence_end_event_initialize(&event));
}

void kp_yaml_writer_scalar(struct kp_yaml_writer *writer, const char *value)
{
    yaml_event_t event;
    emit(writer, &event,
         yaml_scalar_event_initialize(&event, NULL, NULL, (const yaml_char_t *)value,
                                      (int)strlen(value), 1, 1, YAML_ANY_SCALAR_STYLE));
}

void kp_yaml_writer_wipe(struct kp_yaml_writer *writer)
{
    yaml_emitter_delete(&writer->emitter);
    if (writer->buffer != NULL) {
        explicit_bzero(writer->buffer, writer->capacity);
    }
    free(writer->buffer);
    memset(writer, 0, sizeof(*writer));
}

enum kp_result kp_yaml_writer_finish(struct kp_yaml_writer *writer, char **out, size_t *out_len,
                                     struct kp_error *err)
{
    yaml_event_t event;
    emit(writer, &event, yaml_document_end_event_initialize(&event, 1));
    emit(writer, &event, yaml_stream_end_event_initialize(&event));
    if (!writer->failed && !yaml_emitter_flush(&writer->emitter)) {
        writer->failed = true;
    }
    if (writer->failed || writer->buffer == NULL) {
        const char *problem = writer->emitter.problem;
        kp_yaml_writer_wipe(writer);
        return kp_error_set(err, KP_ERR_INTERNAL, "cannot write YAML: %s",
                            problem != NULL ? problem : "out of memory");
    }
    writer->buffer[writer->len] = '\0';
    *out = (char *)writer->buffer;
    *out_len = writer->len;
    writer->buffer = NULL;
    kp_yaml_writer_wipe(writer);
    return KP_OK;
}

/* ---- re-emitting a document ---- */

struct rewrite {
    struct kp_yaml_doc *doc;
    struct kp_yaml_writer *writer;
    kp_yaml_replace_fn replace;
    void *context;
    int depth;
};

static void rewrite_scalar(struct kp_yaml_writer *writer, yaml_node_t *node)
{
    yaml_event_t event;
    /* Keep the original style only for plain scalars; quoted ones are re-quoted as needed. */
    emit(writer, &event,
         yaml_scalar_event_initialize(&event, NULL, NULL, node->data.scalar.value,
                                      (int)node->data.scalar.length, 1, 1,
                                      YAML_ANY_SCALAR_STYLE));
}

static void rewrite_node(struct rewrite *state, int index)
{
    yaml_node_t *node = kp_yaml_node(state->doc, index);
    if (node == NULL || ++state->depth > 256) {
        state->writer->failed = true;
        state->depth--;
        return;
    }
    switch (node->type) {
    case YAML_SCALAR_NODE:
        rewrite_scalar(state->writer, node);
        break;
    case YAML_SEQUENCE_NODE:
        if (node->data.sequence.items.start == node->data.sequence.items.top) {
            yaml_event_t event;
            emit(state->writer, &event,
                 yaml_sequence_start_event_initialize(&event, NULL, NULL, 1,
                                                      YAML_FLOW_SEQUENCE_STYLE));
            emit(state->writer, &event, yaml_sequence_end_event_initialize(&event));
            break;
        }
        kp_yaml_writer_seq_start(state->writer);
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; item++) {
            rewrite_node(state, *item);
        }
        kp_yaml_writer_seq_end(state->writer);
        break;
    case YAML_MAPPING_NODE:
        if (node->data.mapping.pairs.start == node->data.mapping.pairs.top) {
            kp_yaml_writer_empty_map(state->writer);
            break;
        }
        kp_yaml_writer_map_start(state->writer);
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
            const char *key = kp_yaml_scalar(state->doc, pair->key);
            const char *replacement = key != NULL && state->replace != NULL
                                          ? state->replace(state->context, index, key)
                                          : NULL;
            rewrite_node(state, pair->key);
            if (replacement != NULL) {
                kp_yaml_writer_scalar(state->writer, replacement);
            } else {
                rewrite_node(state, pair->value);
            }
        }
        kp_yaml_writer_map_end(state->writer);
        break;
    default:
        state->writer->failed = true;
    }
    state->depth--;
}

enum kp_result kp_yaml_rewrite(struct kp_yaml_doc *doc, kp_yaml_replace_fn replace, void *context,
                               char **out, size_t *out_len, struct kp_error *err)
{
    struct kp_yaml_writer writer;
    enum kp_result rc = kp_yaml_writer_init(&writer, err);
    if (rc != KP_OK) {
        return rc;
    }
    struct rewrite state = {doc, &writer, replace, context, 0};
    if (kp_yaml_root(doc) == 0) {
        kp_yaml_writer_empty_map(&writer);
    } else {
        rewrite_node(&state, kp_yaml_root(doc));
    }
    return kp_yaml_writer_finish(&writer, out, out_len, err);
}
