/*
 * proto/convert.c - one converter between protobuf-c messages and JSON objects, driven by the
 * descriptors: a field's JSON name is its protobuf name (upstream's generated.proto names its
 * fields after the JSON tags), its JSON type follows from its protobuf type, and a handful of
 * wrapper messages have their own JSON spelling (the `wrappers` table below).
 *
 * Decoding (protobuf -> JSON) has to decide what an absent field is. Go's protobuf code for
 * Kubernetes (gogo) writes every non-pointer field, zero or not, and pointer fields only when
 * set, while its JSON leaves out zero values of `omitempty` fields. So a zero string or integer
 * is left out of the JSON, except for the fields in `keep_zero` where zero means something
 * (Go pointers such as DeleteOptions.gracePeriodSeconds, and fields JSON always carries such as
 * SubjectAccessReviewStatus.allowed); booleans are kept as sent (false is never ambiguous for
 * the server); map values and list items are always kept.
 */
#include "proto/proto.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/duration.h"
#include "crypto/crypto.h"

/* Deep enough for any Kubernetes object; a hostile message nesting deeper is refused. */
#define MAX_DEPTH 64
/* The range of Timestamp (and Go's RFC 3339): 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define TIME_MIN_SECONDS (-62135596800LL)
#define TIME_MAX_SECONDS 253402300799LL

/* ---- wrapper types ---- */

enum wrapper {
    WRAP_NONE,
    WRAP_TIME,          /* {seconds, nanos} <-> "2006-01-02T15:04:05Z" (nanos dropped) */
    WRAP_MICROTIME,     /* {seconds, nanos} <-> "2006-01-02T15:04:05.000000Z" */
    WRAP_DURATION,      /* {duration (ns)} <-> "1h0m0s" */
    WRAP_QUANTITY,      /* {string} <-> "100m" */
    WRAP_INT_OR_STRING, /* {type, intVal, strVal} <-> 8080 or "http" */
    WRAP_RAW_JSON,      /* {raw|Raw bytes} <-> the JSON value those bytes hold */
    WRAP_STRING_LIST,   /* {items} <-> ["a", "b"] */
};

static const struct {
    const char *name;
    enum wrapper kind;
} wrappers[] = {
    {"k8s.io.apimachinery.pkg.apis.meta.v1.Time", WRAP_TIME},
    {"k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime", WRAP_MICROTIME},
    {"k8s.io.apimachinery.pkg.apis.meta.v1.Duration", WRAP_DURATION},
    {"k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1", WRAP_RAW_JSON},
    {"k8s.io.apimachinery.pkg.runtime.RawExtension", WRAP_RAW_JSON},
    {"k8s.io.apimachinery.pkg.api.resource.Quantity", WRAP_QUANTITY},
    {"k8s.io.apimachinery.pkg.util.intstr.IntOrString", WRAP_INT_OR_STRING},
    {"k8s.io.api.authentication.v1.ExtraValue", WRAP_STRING_LIST},
    {"k8s.io.api.authentication.v1beta1.ExtraValue", WRAP_STRING_LIST},
    {"k8s.io.api.authorization.v1.ExtraValue", WRAP_STRING_LIST},
};

static enum wrapper wrapper_of(const ProtobufCMessageDescriptor *desc)
{
    for (size_t i = 0; i < sizeof(wrappers) / sizeof(wrappers[0]); i++) {
        if (strcmp(desc->name, wrappers[i].name) == 0)
            return wrappers[i].kind;
    }
    return WRAP_NONE;
}

/* Singular fields whose zero value is meaningful ("<message full name>.<field>"). */
static const char *const keep_zero[] = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta.deletionGracePeriodSeconds",
    "k8s.io.apimachinery.pkg.apis.meta.v1.ListMeta.remainingItemCount",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions.gracePeriodSeconds",
    "k8s.io.api.core.v1.PodSpec.terminationGracePeriodSeconds",
    "k8s.io.api.core.v1.PodSpec.activeDeadlineSeconds",
    "k8s.io.api.core.v1.PodSpec.priority",
    "k8s.io.api.core.v1.SecurityContext.runAsUser",
    "k8s.io.api.core.v1.SecurityContext.runAsGroup",
    "k8s.io.api.core.v1.PodSecurityContext.runAsUser",
    "k8s.io.api.core.v1.PodSecurityContext.runAsGroup",
    "k8s.io.api.core.v1.PodSecurityContext.fsGroup",
    "k8s.io.api.core.v1.ContainerPort.containerPort",
    "k8s.io.api.core.v1.DaemonEndpoint.Port",
    "k8s.io.api.core.v1.ContainerStatus.restartCount",
    "k8s.io.api.core.v1.ContainerStateTerminated.exitCode",
    "k8s.io.api.coordination.v1.LeaseSpec.leaseDurationSeconds",
    "k8s.io.api.coordination.v1.LeaseSpec.leaseTransitions",
    "k8s.io.api.authentication.v1.TokenRequestSpec.expirationSeconds",
};

static bool listed(const char *const *list, size_t count, const ProtobufCMessageDescriptor *desc,
                   const ProtobufCFieldDescriptor *f);

static bool keeps_zero(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *f)
{
    return listed(keep_zero, sizeof(keep_zero) / sizeof(keep_zero[0]), desc, f);
}

/* Go structs embedded without a JSON name: the protobuf message has them as one field, while
 * JSON spells their fields in the parent object ("<message full name>.<field>"). */
static const char *const inline_fields[] = {
    "k8s.io.api.core.v1.ConfigMapEnvSource.localObjectReference",
    "k8s.io.api.core.v1.ConfigMapKeySelector.localObjectReference",
    "k8s.io.api.core.v1.ConfigMapProjection.localObjectReference",
    "k8s.io.api.core.v1.ConfigMapVolumeSource.localObjectReference",
    "k8s.io.api.core.v1.SecretEnvSource.localObjectReference",
    "k8s.io.api.core.v1.SecretKeySelector.localObjectReference",
    "k8s.io.api.core.v1.SecretProjection.localObjectReference",
    "k8s.io.api.core.v1.Probe.handler",
    "k8s.io.api.core.v1.Volume.volumeSource",
    "k8s.io.api.core.v1.EphemeralContainer.ephemeralContainerCommon",
};

static bool listed(const char *const *list, size_t count, const ProtobufCMessageDescriptor *desc,
                   const ProtobufCFieldDescriptor *f)
{
    size_t name_len = strlen(desc->name);
    for (size_t i = 0; i < count; i++) {
        if (strncmp(list[i], desc->name, name_len) == 0 && list[i][name_len] == '.' &&
            strcmp(list[i] + name_len + 1, f->name) == 0)
            return true;
    }
    return false;
}

static bool is_inline(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
           listed(inline_fields, sizeof(inline_fields) / sizeof(inline_fields[0]), desc, f);
}

/* A map<K, V> field is a repeated message FooEntry {key = 1; value = 2}. */
static bool is_map_entry(const ProtobufCMessageDescriptor *desc)
{
    size_t len = strlen(desc->name);
    return desc->n_fields == 2 && len > 5 && strcmp(desc->name + len - 5, "Entry") == 0 &&
           desc->fields[0].id == 1 && strcmp(desc->fields[0].name, "key") == 0 &&
           desc->fields[1].id == 2 && strcmp(desc->fields[1].name, "value") == 0;
}

/* ---- field access by descriptor ---- */

static void *field_at(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}

static size_t *count_at(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (size_t *)((char *)m + f->quantifier_offset);
}

static protobuf_c_boolean *has_at(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (protobuf_c_boolean *)((char *)m + f->quantifier_offset);
}

static bool is_pointer_type(ProtobufCType type)
{
    return type == PROTOBUF_C_TYPE_STRING || type == PROTOBUF_C_TYPE_MESSAGE;
}

/* Whether a singular field was on the wire (proto2: a has_ flag or a non-NULL pointer). */
static bool singular_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(uint32_t *)((char *)m + f->quantifier_offset) == f->id;
    if (is_pointer_type(f->type))
        return *(void **)field_at(m, f) != NULL;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *has_at(m, f);
    return true;
}

static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* ---- paths for messages ("spec.containers[0].name") ---- */

struct path {
    char text[512];
    size_t len;
};

static size_t path_push(struct path *p, const char *name, long index)
{
    size_t mark = p->len;
    int n;
    if (index >= 0)
        n = snprintf(p->text + p->len, sizeof(p->text) - p->len, "[%ld]", index);
    else
        n = snprintf(p->text + p->len, sizeof(p->text) - p->len, "%s%s", p->len ? "." : "",
                     name);
    if (n > 0)
        p->len = p->len + (size_t)n < sizeof(p->text) ? p->len + (size_t)n : sizeof(p->text) - 1;
    return mark;
}

static void path_pop(struct path *p, size_t mark)
{
    p->len = mark;
    p->text[mark] = '\0';
}

static const char *path_or_top(const struct path *p)
{
    return p->len ? p->text : "(top level)";
}

/* ---- protobuf -> JSON ---- */

struct decoder {
    struct kp_strlist *warnings;
    struct kp_error *err;
    struct path path;
    int depth;
};

static json_t *message_to_json(struct decoder *d, const ProtobufCMessage *m);

static enum kp_result decode_fail(struct decoder *d, const char *what)
{
    return kp_error_set(d->err, KP_ERR_INVALID, "protobuf field %s: %s", path_or_top(&d->path),
                        what);
}

static json_t *json_utf8(struct decoder *d, const char *text)
{
    json_t *value = json_string(text);
    if (!value)
        decode_fail(d, "not valid UTF-8");
    return value;
}

static json_t *bytes_to_base64(struct decoder *d, const ProtobufCBinaryData *data)
{
    char *text = NULL;
    size_t text_len = 0;
    struct kp_error err;
    if (kp_base64_encode(data->data, data->len, &text, &text_len, &err) != KP_OK) {
        kp_error_set(d->err, KP_ERR_INTERNAL, "%s", err.message);
        return NULL;
    }
    json_t *value = json_string(text);
    free(text);
    return value;
}

static void format_time(int64_t seconds, int32_t nanos, bool micro, char *out, size_t size)
{
    char base[64];
    kp_time_format_rfc3339(seconds, base, sizeof(base));
    if (!micro) {
        snprintf(out, size, "%s", base);
        return;
    }
    /* "....:05Z" -> "....:05.000000Z" */
    size_t n = strlen(base);
    if (n && base[n - 1] == 'Z')
        base[n - 1] = '\0';
    snprintf(out, size, "%s.%06dZ", base, nanos / 1000);
}

/* A field of a wrapper message by name, for the wrappers below. */
static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessageDescriptor *desc,
                                                  const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name(desc, name);
}

static int64_t get_int64(const ProtobufCMessage *m, const char *name, bool *present)
{
    const ProtobufCFieldDescriptor *f = field_named(m->descriptor, name);
    *present = f && singular_present(m, f);
    if (!*present)
        return 0;
    return f->type == PROTOBUF_C_TYPE_INT64 ? *(int64_t *)field_at(m, f)
                                            : *(int32_t *)field_at(m, f);
}

/* The JSON form of a wrapper message; NULL with d->err set on failure. *omit: the value is the
 * zero one JSON leaves out (a zero Time, an empty RawExtension). */
static json_t *wrapper_to_json(struct decoder *d, enum wrapper kind, const ProtobufCMessage *m,
                               bool *omit)
{
    bool present = false;
    *omit = false;
    switch (kind) {
    case WRAP_TIME:
    case WRAP_MICROTIME: {
        /* Go writes a zero time as an empty message. */
        int64_t seconds = get_int64(m, "seconds", &present);
        bool has_nanos = false;
        int64_t nanos = get_int64(m, "nanos", &has_nanos);
        if (!present && !has_nanos) {
            *omit = true;
            return NULL;
        }
        if (nanos < 0 || nanos > 999999999) {
            decode_fail(d, "nanos out of range");
            return NULL;
        }
        if (seconds < TIME_MIN_SECONDS || seconds > TIME_MAX_SECONDS) {
            decode_fail(d, "a time outside 0001-01-01 .. 9999-12-31");
            return NULL;
        }
        char text[80];
        format_time(seconds, (int32_t)nanos, kind == WRAP_MICROTIME, text, sizeof(text));
        return json_string(text);
    }
    case WRAP_DURATION: {
        int64_t ns = get_int64(m, "duration", &present);
        if (ns % 1000000000 != 0 || ns < 0) {
            decode_fail(d, "only non-negative whole seconds are supported in a Duration");
            return NULL;
        }
        char text[64];
        if (ns == 0)
            snprintf(text, sizeof(text), "0s");
        else
            kp_duration_format(ns / 1000000000, text, sizeof(text));
        return json_string(text);
    }
    case WRAP_QUANTITY: {
        const char *s = *(char **)field_at(m, field_named(m->descriptor, "string"));
        return json_utf8(d, s ? s : "");
    }
    case WRAP_INT_OR_STRING: {
        int64_t type = get_int64(m, "type", &present);
        if (type == 0)
            return json_integer(get_int64(m, "intVal", &present));
        if (type != 1) {
            decode_fail(d, "an IntOrString type other than 0 (int) or 1 (string)");
            return NULL;
        }
        const char *s = *(char **)field_at(m, field_named(m->descriptor, "strVal"));
        return json_utf8(d, s ? s : "");
    }
    case WRAP_RAW_JSON: {
        const ProtobufCFieldDescriptor *f = m->descriptor->fields; /* raw, or FieldsV1's Raw */
        const ProtobufCBinaryData *raw = field_at(m, f);
        if (!*has_at(m, f) || raw->len == 0) {
            *omit = true;
            return NULL;
        }
        json_error_t jerr;
        json_t *value = json_loadb((const char *)raw->data, raw->len,
                                   JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (!value)
            decode_fail(d, "an embedded object that is not JSON (only JSON is accepted inside "
                           "a RawExtension)");
        return value;
    }
    case WRAP_STRING_LIST: {
        const ProtobufCFieldDescriptor *f = field_named(m->descriptor, "items");
        json_t *array = json_array();
        char **items = *(char ***)field_at(m, f);
        for (size_t i = 0; array && i < *count_at(m, f); i++) {
            json_t *item = json_utf8(d, items[i]);
            if (!item || json_array_append_new(array, item) != 0) {
                json_decref(array);
                return NULL;
            }
        }
        return array;
    }
    case WRAP_NONE:
        break;
    }
    kp_error_set(d->err, KP_ERR_INTERNAL, "no JSON form for %s", m->descriptor->name);
    return NULL;
}

/* One value (a singular field, a list item or a map value) at p. NULL with d->err set on
 * failure, or NULL with *omit set when JSON leaves it out. */
static json_t *value_to_json(struct decoder *d, const ProtobufCFieldDescriptor *f, const void *p,
                             bool *omit)
{
    *omit = false;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (*(const uint64_t *)p > (uint64_t)INT64_MAX) {
            decode_fail(d, "a uint64 too large for JSON");
            return NULL;
        }
        return json_integer((json_int_t)*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_STRING:
        return json_utf8(d, *(char *const *)p ? *(char *const *)p : "");
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_to_base64(d, p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        enum wrapper kind = wrapper_of(f->descriptor);
        if (kind != WRAP_NONE)
            return wrapper_to_json(d, kind, sub, omit);
        return message_to_json(d, sub);
    }
    }
    kp_error_set(d->err, KP_ERR_INTERNAL, "protobuf type %d", (int)f->type);
    return NULL;
}

static bool is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return **(char *const *)p == '\0';
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_MESSAGE:
        return false;
    default:
        return element_size(f->type) == 4 ? *(const int32_t *)p == 0 : *(const int64_t *)p == 0;
    }
}

/* An absent message value of a map is the message with no fields: {} or a wrapper's empty
 * form ([] for an ExtraValue). */
static json_t *empty_message_json(struct decoder *d, const ProtobufCFieldDescriptor *f,
                                  bool *omit)
{
    static const uint8_t nothing[1];
    ProtobufCMessage *empty = protobuf_c_message_unpack(f->descriptor, NULL, 0, nothing);
    if (!empty) {
        kp_error_set(d->err, KP_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    json_t *value = value_to_json(d, f, &empty, omit);
    protobuf_c_message_free_unpacked(empty, NULL);
    return value;
}

static json_t *map_to_json(struct decoder *d, const ProtobufCFieldDescriptor *f,
                           const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *entry_desc = f->descriptor;
    const ProtobufCFieldDescriptor *key_f = &entry_desc->fields[0];
    const ProtobufCFieldDescriptor *value_f = &entry_desc->fields[1];
    ProtobufCMessage **entries = *(ProtobufCMessage ***)field_at(m, f);
    json_t *object = json_object();
    for (size_t i = 0; object && i < *count_at(m, f); i++) {
        const char *key = *(char **)field_at(entries[i], key_f);
        if (key_f->type != PROTOBUF_C_TYPE_STRING) {
            decode_fail(d, "a map whose keys are not strings");
            json_decref(object);
            return NULL;
        }
        json_t *value = NULL;
        bool omit = false;
        if (value_f->type == PROTOBUF_C_TYPE_MESSAGE && !singular_present(entries[i], value_f))
            value = empty_message_json(d, value_f, &omit);
        else if (value_f->type == PROTOBUF_C_TYPE_STRING &&
                 !singular_present(entries[i], value_f))
            value = json_string("");
        else
            value = value_to_json(d, value_f, field_at(entries[i], value_f), &omit);
        if (omit && !value)
            value = json_null();
        if (!value) {
            json_decref(object);
            return NULL;
        }
        /* jansson refuses a key that is not UTF-8 (and steals value either way). */
        if (json_object_set_new(object, key ? key : "", value) != 0) {
            decode_fail(d, "a map key that is not valid UTF-8");
            json_decref(object);
            return NULL;
        }
    }
    return object;
}

static json_t *repeated_to_json(struct decoder *d, const ProtobufCFieldDescriptor *f,
                                const ProtobufCMessage *m)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor))
        return map_to_json(d, f, m);
    const char *items = *(char **)field_at(m, f);
    size_t size = element_size(f->type);
    json_t *array = json_array();
    for (size_t i = 0; array && i < *count_at(m, f); i++) {
        size_t mark = path_push(&d->path, NULL, (long)i);
        bool omit = false;
        json_t *item = value_to_json(d, f, items + i * size, &omit);
        path_pop(&d->path, mark);
        if (omit && !item)
            item = json_null();
        if (!item || json_array_append_new(array, item) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static json_t *field_to_json(struct decoder *d, const ProtobufCMessage *m,
                             const ProtobufCFieldDescriptor *f, bool *omit)
{
    *omit = false;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (*count_at(m, f) == 0) {
            *omit = true;
            return NULL;
        }
        return repeated_to_json(d, f, m);
    }
    if (!singular_present(m, f) ||
        (is_zero(f, field_at(m, f)) && !keeps_zero(m->descriptor, f))) {
        *omit = true;
        return NULL;
    }
    return value_to_json(d, f, field_at(m, f), omit);
}

static void note_unknown_fields(struct decoder *d, const ProtobufCMessage *m)
{
    if (!d->warnings)
        return;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        char warning[700];
        snprintf(warning, sizeof(warning), "unknown field %u in %s%s%s (dropped)",
                 m->unknown_fields[i].tag, m->descriptor->name, d->path.len ? " at " : "",
                 d->path.len ? d->path.text : "");
        if (kp_strlist_add(d->warnings, warning, NULL) != KP_OK)
            return;
    }
}

static json_t *message_to_json(struct decoder *d, const ProtobufCMessage *m)
{
    if (++d->depth > MAX_DEPTH) {
        decode_fail(d, "nested too deeply");
        return NULL;
    }
    note_unknown_fields(d, m);
    json_t *object = json_object();
    for (unsigned i = 0; object && i < m->descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
        size_t mark = path_push(&d->path, f->name, -1);
        bool omit = false;
        json_t *value = field_to_json(d, m, f, &omit);
        path_pop(&d->path, mark);
        if (omit && !value)
            continue;
        if (value && json_is_object(value) && is_inline(m->descriptor, f)) {
            json_object_update(object, value); /* an embedded struct: its fields are ours */
            json_decref(value);
            continue;
        }
        if (!value || json_object_set_new(object, f->name, value) != 0) {
            json_decref(object);
            object = NULL;
        }
    }
    d->depth--;
    return object;
}

enum kp_result kp_proto_message_to_json(const ProtobufCMessageDescriptor *desc, const void *data,
                                        size_t len, json_t **object, struct kp_strlist *warnings,
                                        struct kp_error *err)
{
    *object = NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
    if (!m)
        return kp_error_set(err, KP_ERR_INVALID, "the bytes are not a valid %s message",
                            desc->name);
    struct decoder d = {.warnings = warnings, .err = err};
    kp_error_set(err, KP_ERR_INTERNAL, "out of memory"); /* overwritten by precise failures */
    *object = message_to_json(&d, m);
    protobuf_c_message_free_unpacked(m, NULL);
    if (!*object)
        return err ? err->code : KP_ERR_INVALID;
    return KP_OK;
}

/* ---- JSON -> protobuf ---- */

struct encoder {
    struct kp_strlist *dropped;
    struct kp_error *err;
    struct path path;
    int depth;
    bool failed; /* out of memory: stop */
};

static void drop(struct encoder *e, const char *why)
{
    if (!e->dropped)
        return;
    if (e->dropped->count >= KP_STRLIST_MAX - 1)
        return; /* enough to say the object does not fit; its other members still encode */
    char note[700];
    snprintf(note, sizeof(note), "%s (%s)", path_or_top(&e->path), why);
    if (kp_strlist_add(e->dropped, note, NULL) != KP_OK)
        e->failed = true; /* out of memory */
}

static ProtobufCMessage *json_to_message(struct encoder *e, const ProtobufCMessageDescriptor *desc,
                                         const json_t *object);

static ProtobufCMessage *new_message(struct encoder *e, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = calloc(1, desc->sizeof_message);
    if (!m) {
        e->failed = true;
        return NULL;
    }
    desc->message_init(m);
    return m;
}

static bool set_int(struct encoder *e, ProtobufCType type, const json_t *value, void *p)
{
    if (!json_is_integer(value)) {
        drop(e, "not an integer");
        return false;
    }
    json_int_t n = json_integer_value(value);
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        if (n < INT32_MIN || n > INT32_MAX)
            break;
        *(int32_t *)p = (int32_t)n;
        return true;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (n < 0 || n > (json_int_t)UINT32_MAX)
            break;
        *(uint32_t *)p = (uint32_t)n;
        return true;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (n < 0)
            break;
        *(uint64_t *)p = (uint64_t)n;
        return true;
    default:
        *(int64_t *)p = (int64_t)n;
        return true;
    }
    drop(e, "integer out of range");
    return false;
}

static bool set_string(struct encoder *e, const json_t *value, char **p)
{
    if (!json_is_string(value)) {
        drop(e, "not a string");
        return false;
    }
    *p = strdup(json_string_value(value));
    if (!*p)
        e->failed = true;
    return *p != NULL;
}

static bool set_bytes(struct encoder *e, const json_t *value, ProtobufCBinaryData *p)
{
    if (!json_is_string(value)) {
        drop(e, "not a base64 string");
        return false;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    struct kp_error err;
    if (kp_base64_decode(json_string_value(value), json_string_length(value), &data, &len,
                         &err) != KP_OK) {
        drop(e, "not valid base64");
        return false;
    }
    p->data = data;
    p->len = len;
    return true;
}

/* Sets a wrapper message's fields from its JSON form. */
static bool set_field_int64(ProtobufCMessage *m, const char *name, int64_t value)
{
    const ProtobufCFieldDescriptor *f = field_named(m->descriptor, name);
    if (f->type == PROTOBUF_C_TYPE_INT64)
        *(int64_t *)field_at(m, f) = value;
    else
        *(int32_t *)field_at(m, f) = (int32_t)value;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        *has_at(m, f) = 1;
    return true;
}

static bool set_field_string(struct encoder *e, ProtobufCMessage *m, const char *name,
                             const char *value)
{
    char **p = field_at(m, field_named(m->descriptor, name));
    *p = strdup(value);
    if (!*p)
        e->failed = true;
    return *p != NULL;
}

/* "....05.123456Z" -> microseconds 123456 (digits beyond six are cut; none gives 0). */
static int32_t fraction_micros(const char *text)
{
    const char *dot = strchr(text, '.');
    if (!dot)
        return 0;
    int32_t micros = 0;
    int digits = 0;
    for (const char *c = dot + 1; *c >= '0' && *c <= '9'; c++) {
        if (digits < 6) {
            micros = micros * 10 + (*c - '0');
            digits++;
        }
    }
    for (; digits < 6; digits++)
        micros *= 10;
    return micros;
}

static bool wrapper_from_json(struct encoder *e, enum wrapper kind, ProtobufCMessage *m,
                              const json_t *value)
{
    switch (kind) {
    case WRAP_TIME:
    case WRAP_MICROTIME: {
        int64_t seconds = 0;
        struct kp_error err;
        if (!json_is_string(value) ||
            kp_time_parse_rfc3339(json_string_value(value), &seconds, &err) != KP_OK) {
            drop(e, "not an RFC 3339 time");
            return false;
        }
        int32_t nanos =
            kind == WRAP_MICROTIME ? fraction_micros(json_string_value(value)) * 1000 : 0;
        return set_field_int64(m, "seconds", seconds) && set_field_int64(m, "nanos", nanos);
    }
    case WRAP_DURATION: {
        int64_t seconds = 0;
        struct kp_error err;
        if (json_is_string(value) && strcmp(json_string_value(value), "0s") == 0)
            return set_field_int64(m, "duration", 0);
        if (!json_is_string(value) ||
            kp_duration_parse(json_string_value(value), &seconds, &err) != KP_OK) {
            drop(e, "not a duration");
            return false;
        }
        return set_field_int64(m, "duration", seconds * 1000000000);
    }
    case WRAP_QUANTITY:
        if (!json_is_string(value)) {
            drop(e, "a quantity that is not a string");
            return false;
        }
        return set_field_string(e, m, "string", json_string_value(value));
    case WRAP_INT_OR_STRING:
        if (json_is_integer(value)) {
            json_int_t n = json_integer_value(value);
            if (n < INT32_MIN || n > INT32_MAX) {
                drop(e, "integer out of range");
                return false;
            }
            return set_field_int64(m, "type", 0) && set_field_int64(m, "intVal", n);
        }
        if (json_is_string(value))
            return set_field_int64(m, "type", 1) &&
                   set_field_string(e, m, "strVal", json_string_value(value));
        drop(e, "neither an integer nor a string");
        return false;
    case WRAP_RAW_JSON: {
        char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) {
            e->failed = true;
            return false;
        }
        const ProtobufCFieldDescriptor *f = m->descriptor->fields;
        ProtobufCBinaryData *raw = field_at(m, f);
        raw->data = (uint8_t *)text;
        raw->len = strlen(text);
        *has_at(m, f) = 1;
        return true;
    }
    case WRAP_STRING_LIST: {
        if (!json_is_array(value)) {
            drop(e, "not a list of strings");
            return false;
        }
        const ProtobufCFieldDescriptor *f = field_named(m->descriptor, "items");
        size_t n = json_array_size(value);
        char **items = calloc(n ? n : 1, sizeof(char *));
        if (!items) {
            e->failed = true;
            return false;
        }
        *(char ***)field_at(m, f) = items;
        for (size_t i = 0; i < n; i++) {
            const json_t *item = json_array_get(value, i);
            if (!json_is_string(item)) {
                drop(e, "not a list of strings");
                return false;
            }
            if (!set_string(e, item, &items[i]))
                return false;
            *count_at(m, f) = i + 1;
        }
        return true;
    }
    case WRAP_NONE:
        break;
    }
    return false;
}

/* A message value: a wrapper's JSON form, or an object. NULL when dropped or out of memory. */
static ProtobufCMessage *message_value(struct encoder *e, const ProtobufCMessageDescriptor *desc,
                                       const json_t *value)
{
    enum wrapper kind = wrapper_of(desc);
    if (kind == WRAP_NONE)
        return json_to_message(e, desc, value);
    ProtobufCMessage *m = new_message(e, desc);
    if (m && !wrapper_from_json(e, kind, m, value)) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    return m;
}

/* Stores one JSON value at p, a slot of f's type. False when it was dropped. */
static bool value_from_json(struct encoder *e, const ProtobufCFieldDescriptor *f,
                            const json_t *value, void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(value)) {
            drop(e, "not a boolean");
            return false;
        }
        *(protobuf_c_boolean *)p = json_is_true(value);
        return true;
    case PROTOBUF_C_TYPE_STRING:
        return set_string(e, value, p);
    case PROTOBUF_C_TYPE_BYTES:
        return set_bytes(e, value, p);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(value)) {
            drop(e, "not a number");
            return false;
        }
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)p = (float)json_number_value(value);
        else
            *(double *)p = json_number_value(value);
        return true;
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)p = message_value(e, f->descriptor, value);
        return *(ProtobufCMessage **)p != NULL;
    default:
        return set_int(e, f->type, value, p);
    }
}

static bool map_from_json(struct encoder *e, const ProtobufCFieldDescriptor *f,
                          ProtobufCMessage *m, const json_t *value)
{
    if (!json_is_object(value)) {
        drop(e, "not an object");
        return false;
    }
    const ProtobufCMessageDescriptor *entry_desc = f->descriptor;
    ProtobufCMessage **entries = calloc(json_object_size(value) + 1, sizeof(*entries));
    if (!entries) {
        e->failed = true;
        return false;
    }
    *(ProtobufCMessage ***)field_at(m, f) = entries;
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)value, key, item) {
        size_t mark = path_push(&e->path, key, -1);
        ProtobufCMessage *entry = new_message(e, entry_desc);
        const ProtobufCFieldDescriptor *value_f = &entry_desc->fields[1];
        char **key_slot = entry ? field_at(entry, &entry_desc->fields[0]) : NULL;
        if (entry && value_from_json(e, value_f, item, field_at(entry, value_f))) {
            if (value_f->label == PROTOBUF_C_LABEL_OPTIONAL && !is_pointer_type(value_f->type))
                *has_at(entry, value_f) = 1;
            *key_slot = strdup(key);
            if (!*key_slot)
                e->failed = true;
            entries[(*count_at(m, f))++] = entry;
        } else if (entry) {
            protobuf_c_message_free_unpacked(entry, NULL); /* a value that was dropped */
        }
        path_pop(&e->path, mark);
        if (e->failed)
            return false;
    }
    return true;
}

static bool repeated_from_json(struct encoder *e, const ProtobufCFieldDescriptor *f,
                               ProtobufCMessage *m, const json_t *value)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor))
        return map_from_json(e, f, m, value);
    if (!json_is_array(value)) {
        drop(e, "not a list");
        return false;
    }
    size_t size = element_size(f->type);
    size_t n = json_array_size(value);
    char *items = calloc(n ? n : 1, size);
    if (!items) {
        e->failed = true;
        return false;
    }
    *(char **)field_at(m, f) = items;
    for (size_t i = 0; i < n; i++) {
        size_t mark = path_push(&e->path, NULL, (long)i);
        /* An item that cannot be stored is dropped; the ones after it move up. */
        if (value_from_json(e, f, json_array_get(value, i), items + *count_at(m, f) * size))
            (*count_at(m, f))++;
        path_pop(&e->path, mark);
        if (e->failed)
            return false;
    }
    return true;
}

static void field_from_json(struct encoder *e, const ProtobufCFieldDescriptor *f,
                            ProtobufCMessage *m, const json_t *value)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        repeated_from_json(e, f, m, value);
        return;
    }
    if (value_from_json(e, f, value, field_at(m, f)) && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
        !is_pointer_type(f->type)) {
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
        else
            *has_at(m, f) = 1;
    }
}

/* The embedded-struct field of desc whose message has a field named key, or NULL. */
static const ProtobufCFieldDescriptor *inline_owner(const ProtobufCMessageDescriptor *desc,
                                                    const char *key)
{
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (is_inline(desc, f) &&
            protobuf_c_message_descriptor_get_field_by_name(f->descriptor, key))
            return f;
    }
    return NULL;
}

/* Fills desc's embedded-struct fields from the members of object that belong to them. */
static void inline_from_json(struct encoder *e, const ProtobufCMessageDescriptor *desc,
                             ProtobufCMessage *m, const json_t *object)
{
    for (unsigned i = 0; i < desc->n_fields && !e->failed; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (!is_inline(desc, f))
            continue;
        json_t *part = json_object();
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)object, key, value) {
            if (part && protobuf_c_message_descriptor_get_field_by_name(f->descriptor, key))
                json_object_set(part, key, value);
        }
        if (!part)
            e->failed = true;
        else if (json_object_size(part))
            *(ProtobufCMessage **)field_at(m, f) = json_to_message(e, f->descriptor, part);
        json_decref(part);
    }
}

static ProtobufCMessage *json_to_message(struct encoder *e, const ProtobufCMessageDescriptor *desc,
                                         const json_t *object)
{
    if (!json_is_object(object)) {
        drop(e, "not an object");
        return NULL;
    }
    if (++e->depth > MAX_DEPTH) {
        drop(e, "nested too deeply");
        e->depth--;
        return NULL;
    }
    ProtobufCMessage *m = new_message(e, desc);
    if (m)
        inline_from_json(e, desc, m, object);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)object, key, value) {
        if (!m || e->failed)
            break;
        if (json_is_null(value))
            continue;
        size_t mark = path_push(&e->path, key, -1);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc,
                                                                                            key);
        /* TypeMeta (apiVersion, kind) is the envelope's and never in a message: an object
         * inside a list or an event may carry it too. */
        if (f && !is_inline(desc, f))
            field_from_json(e, f, m, value);
        else if (!inline_owner(desc, key) && strcmp(key, "apiVersion") != 0 &&
                 strcmp(key, "kind") != 0)
            drop(e, "no such field in the protobuf message");
        path_pop(&e->path, mark);
    }
    e->depth--;
    if (e->failed && m) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    return m;
}

enum kp_result kp_proto_json_to_message(const ProtobufCMessageDescriptor *desc,
                                        const json_t *object, unsigned char **out, size_t *len,
                                        struct kp_strlist *dropped, struct kp_error *err)
{
    *out = NULL;
    *len = 0;
    if (!json_is_object(object))
        return kp_error_set(err, KP_ERR_INVALID, "a %s must be a JSON object", desc->name);
    struct encoder e = {.dropped = dropped, .err = err};
    ProtobufCMessage *m = json_to_message(&e, desc, object);
    if (!m)
        return kp_error_set(err, KP_ERR_INTERNAL, "out of memory encoding %s", desc->name);
    size_t size = protobuf_c_message_get_packed_size(m);
    *out = malloc(size ? size : 1);
    if (!*out) {
        protobuf_c_message_free_unpacked(m, NULL);
        return kp_error_set(err, KP_ERR_INTERNAL, "out of memory encoding %s", desc->name);
    }
    *len = protobuf_c_message_pack(m, *out);
    protobuf_c_message_free_unpacked(m, NULL);
    return KP_OK;
}
