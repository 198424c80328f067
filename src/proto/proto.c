/*
 * proto/proto.c - finding a kind's message, the "k8s\0" + runtime.Unknown envelope, and watch
 * frames. The object messages themselves go through convert.c.
 */
#include "proto/proto.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/apimachinery/pkg/apis/meta/v1/meta.pb-c.h"
#include "k8s/apimachinery/pkg/runtime/runtime.pb-c.h"
#include "proto/registry.h"

/* ---- the registry, sorted by full name once ---- */

static const ProtobufCMessageDescriptor **sorted;
static pthread_once_t sorted_once = PTHREAD_ONCE_INIT;

static int by_name(const void *a, const void *b)
{
    const ProtobufCMessageDescriptor *const *x = a;
    const ProtobufCMessageDescriptor *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static void sort_registry(void)
{
    sorted = malloc(kp_proto_all_message_count * sizeof(*sorted));
    if (!sorted)
        return;
    memcpy(sorted, kp_proto_all_messages, kp_proto_all_message_count * sizeof(*sorted));
    qsort(sorted, kp_proto_all_message_count, sizeof(*sorted), by_name);
}

const ProtobufCMessageDescriptor *kp_proto_find(const char *full_name)
{
    pthread_once(&sorted_once, sort_registry);
    if (!sorted || !full_name)
        return NULL;
    size_t lo = 0, hi = kp_proto_all_message_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(full_name, sorted[mid]->name);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Kinds every group version registers from meta/v1. */
static bool is_meta_kind(const char *kind)
{
    static const char *const kinds[] = {"Status",        "DeleteOptions", "WatchEvent",
                                        "CreateOptions", "UpdateOptions", "PatchOptions"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kind, kinds[i]) == 0)
            return true;
    }
    return false;
}

const ProtobufCMessageDescriptor *kp_proto_find_kind(const char *api_version, const char *kind)
{
    if (!api_version || !kind || !*kind)
        return NULL;
    char name[256];
    const char *slash = strchr(api_version, '/');
    if (is_meta_kind(kind)) {
        snprintf(name, sizeof(name), "k8s.io.apimachinery.pkg.apis.meta.v1.%s", kind);
    } else if (!slash) {
        snprintf(name, sizeof(name), "k8s.io.api.core.%s.%s", api_version, kind);
    } else {
        /* upstream's package is the group's first label: rbac.authorization.k8s.io/v1 ->
         * k8s.io.api.rbac.v1 */
        size_t label = strcspn(api_version, "./");
        int n = snprintf(name, sizeof(name), "k8s.io.api.%.*s.%s.%s", (int)label, api_version,
                         slash + 1, kind);
        if (n < 0 || (size_t)n >= sizeof(name))
            return NULL;
    }
    return kp_proto_find(name);
}

/* ---- the envelope ---- */

/* A client's string for an error message: printable ASCII, the rest as '?' (protobuf-c does not
 * check UTF-8 in proto2, and the message must become a JSON string). */
static const char *printable(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; in && in[n] && n + 1 < size; n++)
        out[n] = in[n] >= 0x20 && in[n] < 0x7f ? in[n] : '?';
    out[n] = '\0';
    return out;
}

bool kp_proto_is_envelope(const void *data, size_t len)
{
    return len >= KP_PROTO_MAGIC_LEN && memcmp(data, KP_PROTO_MAGIC, KP_PROTO_MAGIC_LEN) == 0;
}

static enum kp_result set_type(json_t *object, const char *api_version, const char *kind,
                               struct kp_error *err)
{
    if (json_object_set_new(object, "apiVersion", json_string(api_version)) != 0 ||
        json_object_set_new(object, "kind", json_string(kind)) != 0)
        return kp_error_set(err, KP_ERR_INVALID, "the envelope's apiVersion or kind is not UTF-8");
    return KP_OK;
}

enum kp_result kp_proto_decode(const void *data, size_t len, json_t **object,
                               struct kp_strlist *warnings, struct kp_error *err)
{
    *object = NULL;
    if (!kp_proto_is_envelope(data, len))
        return kp_error_set(err, KP_ERR_INVALID,
                            "a protobuf body must start with the bytes \"k8s\\0\"");
    K8s__Io__Apimachinery__Pkg__Runtime__Unknown *unknown =
        k8s__io__apimachinery__pkg__runtime__unknown__unpack(
            NULL, len - KP_PROTO_MAGIC_LEN, (const uint8_t *)data + KP_PROTO_MAGIC_LEN);
    if (!unknown)
        return kp_error_set(err, KP_ERR_INVALID, "the protobuf envelope is not a valid "
                                                 "runtime.Unknown message");
    enum kp_result rc = KP_OK;
    const char *api_version = unknown->typemeta ? unknown->typemeta->apiversion : NULL;
    const char *kind = unknown->typemeta ? unknown->typemeta->kind : NULL;
    const ProtobufCMessageDescriptor *desc = kp_proto_find_kind(api_version, kind);
    char a[101], b[101];
    if (unknown->contentencoding && *unknown->contentencoding)
        rc = kp_error_set(err, KP_ERR_INVALID, "contentEncoding %s is not supported",
                          printable(unknown->contentencoding, a, 65));
    else if (!api_version || !*api_version || !kind || !*kind)
        rc = kp_error_set(err, KP_ERR_INVALID, "the protobuf envelope has no apiVersion or kind");
    else if (!desc)
        rc = kp_error_set(err, KP_ERR_INVALID, "no protobuf message for %s %s",
                          printable(api_version, a, sizeof(a)), printable(kind, b, sizeof(b)));
    else
        rc = kp_proto_message_to_json(desc, unknown->has_raw ? unknown->raw.data : NULL,
                                      unknown->has_raw ? unknown->raw.len : 0, object, warnings,
                                      err);
    if (rc == KP_OK) {
        rc = set_type(*object, api_version, kind, err);
        if (rc != KP_OK) {
            json_decref(*object);
            *object = NULL;
        }
    }
    k8s__io__apimachinery__pkg__runtime__unknown__free_unpacked(unknown, NULL);
    return rc;
}

/* magic + Unknown{typeMeta, raw, contentEncoding "", contentType ""} around raw. */
static enum kp_result wrap(const char *api_version, const char *kind, unsigned char *raw,
                           size_t raw_len, unsigned char **out, size_t *len, struct kp_error *err)
{
    K8s__Io__Apimachinery__Pkg__Runtime__TypeMeta type = K8S__IO__APIMACHINERY__PKG__RUNTIME__TYPE_META__INIT;
    K8s__Io__Apimachinery__Pkg__Runtime__Unknown unknown = K8S__IO__APIMACHINERY__PKG__RUNTIME__UNKNOWN__INIT;
    char empty[1] = "";
    type.apiversion = (char *)api_version;
    type.kind = (char *)kind;
    unknown.typemeta = &type;
    unknown.has_raw = 1;
    unknown.raw.data = raw;
    unknown.raw.len = raw_len;
    /* Go writes both, empty, as it writes every non-pointer field. */
    unknown.contentencoding = empty;
    unknown.contenttype = empty;
    size_t size = k8s__io__apimachinery__pkg__runtime__unknown__get_packed_size(&unknown);
    *out = malloc(KP_PROTO_MAGIC_LEN + size);
    if (!*out)
        return kp_error_set(err, KP_ERR_INTERNAL, "out of memory");
    memcpy(*out, KP_PROTO_MAGIC, KP_PROTO_MAGIC_LEN);
    *len = KP_PROTO_MAGIC_LEN +
           k8s__io__apimachinery__pkg__runtime__unknown__pack(&unknown, *out + KP_PROTO_MAGIC_LEN);
    return KP_OK;
}

enum kp_result kp_proto_encode(const json_t *object, unsigned char **out, size_t *len,
                               struct kp_strlist *dropped, struct kp_error *err)
{
    *out = NULL;
    *len = 0;
    const char *api_version = json_string_value(json_object_get(object, "apiVersion"));
    const char *kind = json_string_value(json_object_get(object, "kind"));
    const ProtobufCMessageDescriptor *desc = kp_proto_find_kind(api_version, kind);
    char a[101], b[101];
    if (!desc)
        return kp_error_set(err, KP_ERR_INVALID, "no protobuf message for %s %s",
                            api_version ? printable(api_version, a, sizeof(a)) : "(no apiVersion)",
                            kind ? printable(kind, b, sizeof(b)) : "(no kind)");
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    enum kp_result rc = kp_proto_json_to_message(desc, object, &raw, &raw_len, dropped, err);
    if (rc == KP_OK)
        rc = wrap(api_version, kind, raw, raw_len, out, len, err);
    free(raw);
    return rc;
}

enum kp_result kp_proto_watch_frame(const char *type, const json_t *object, unsigned char **out,
                                    size_t *len, struct kp_strlist *dropped, struct kp_error *err)
{
    *out = NULL;
    *len = 0;
    unsigned char *inner = NULL;
    size_t inner_len = 0;
    enum kp_result rc = kp_proto_encode(object, &inner, &inner_len, dropped, err);
    if (rc != KP_OK)
        return rc;
    K8s__Io__Apimachinery__Pkg__Runtime__RawExtension raw = K8S__IO__APIMACHINERY__PKG__RUNTIME__RAW_EXTENSION__INIT;
    K8s__Io__Apimachinery__Pkg__Apis__Meta__V1__WatchEvent event = K8S__IO__APIMACHINERY__PKG__APIS__META__V1__WATCH_EVENT__INIT;
    raw.has_raw = 1;
    raw.raw.data = inner;
    raw.raw.len = inner_len;
    event.type = (char *)type;
    event.object = &raw;
    size_t size = k8s__io__apimachinery__pkg__apis__meta__v1__watch_event__get_packed_size(&event);
    if (size > UINT32_MAX) {
        free(inner);
        return kp_error_set(err, KP_ERR_TOO_LARGE, "a watch event over 4 GiB");
    }
    *out = malloc(4 + size);
    if (!*out) {
        free(inner);
        return kp_error_set(err, KP_ERR_INTERNAL, "out of memory");
    }
    (*out)[0] = (unsigned char)(size >> 24);
    (*out)[1] = (unsigned char)(size >> 16);
    (*out)[2] = (unsigned char)(size >> 8);
    (*out)[3] = (unsigned char)size;
    *len = 4 + k8s__io__apimachinery__pkg__apis__meta__v1__watch_event__pack(&event, *out + 4);
    free(inner);
    return KP_OK;
}
