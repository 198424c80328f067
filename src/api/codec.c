/*
 * Encodings: which media type a response uses (Accept), reading request bodies in JSON or
 * protobuf (Content-Type), and writing objects in the chosen one (k8s.io/apiserver
 * pkg/endpoints/handlers/negotiation). JSON stays the default; protobuf is used when the client
 * prefers it and the object has a message (proto/); a Table is JSON only, as upstream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/log.h"
#include "proto/proto.h"

/* ---- media types ---- */

struct media_type {
    char type[64];    /* "application/json", lower case */
    char as[64];      /* the as= parameter, "" when absent */
    char group[64];   /* g= */
    char version[16]; /* v= */
    double q;
};

static void trim(char **start, char **end)
{
    while (*start < *end && (**start == ' ' || **start == '\t'))
        (*start)++;
    while (*end > *start && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
        (*end)--;
}

static void copy_lower(char *out, size_t size, const char *start, const char *end)
{
    size_t n = (size_t)(end - start) < size - 1 ? (size_t)(end - start) : size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(start[i] >= 'A' && start[i] <= 'Z' ? start[i] + 32 : start[i]);
    out[n] = '\0';
}

/* Parses one "type/subtype;k=v;..." (start..end) into m. */
static void parse_media_type(const char *start, const char *end, struct media_type *m)
{
    memset(m, 0, sizeof(*m));
    m->q = 1.0;
    const char *semi = memchr(start, ';', (size_t)(end - start));
    char *ts = (char *)start, *te = (char *)(semi ? semi : end);
    trim(&ts, &te);
    copy_lower(m->type, sizeof(m->type), ts, te);
    while (semi) {
        const char *next = memchr(semi + 1, ';', (size_t)(end - semi - 1));
        char *ps = (char *)semi + 1, *pe = (char *)(next ? next : end);
        trim(&ps, &pe);
        const char *eq = memchr(ps, '=', (size_t)(pe - ps));
        if (eq) {
            char key[16], value[64];
            copy_lower(key, sizeof(key), ps, eq);
            size_t n = (size_t)(pe - eq - 1) < sizeof(value) - 1 ? (size_t)(pe - eq - 1)
                                                                  : sizeof(value) - 1;
            memcpy(value, eq + 1, n);
            value[n] = '\0';
            if (strcmp(key, "as") == 0)
                snprintf(m->as, sizeof(m->as), "%s", value);
            else if (strcmp(key, "g") == 0)
                snprintf(m->group, sizeof(m->group), "%s", value);
            else if (strcmp(key, "v") == 0)
                snprintf(m->version, sizeof(m->version), "%s", value);
            else if (strcmp(key, "q") == 0)
                m->q = strtod(value, NULL);
        }
        semi = next;
    }
}

static bool is_json(const char *type)
{
    return strcmp(type, "application/json") == 0 || strcmp(type, "application/*") == 0 ||
           strcmp(type, "*/*") == 0;
}

/* What kpki can send for one acceptable media type. */
static bool choose(const struct media_type *m, enum kp_encoding *encoding, bool *table)
{
    bool as_table = strcmp(m->as, "Table") == 0 && strcmp(m->group, "meta.k8s.io") == 0 &&
                    (strcmp(m->version, "v1") == 0 || strcmp(m->version, "v1beta1") == 0);
    if (m->as[0] && !as_table)
        return false; /* PartialObjectMetadata, APIGroupDiscoveryList, ...: not served */
    if (is_json(m->type)) {
        *encoding = KP_ENCODING_JSON;
        *table = as_table;
        return true;
    }
    if (strcmp(m->type, KP_PROTO_MEDIA_TYPE) == 0 && !as_table) {
        *encoding = KP_ENCODING_PROTOBUF;
        *table = false;
        return true;
    }
    return false;
}

#define MAX_MEDIA_TYPES 16

bool kp_accept_choose(const char *accept, enum kp_encoding *encoding, bool *table,
                      bool *accepts_json)
{
    *encoding = KP_ENCODING_JSON;
    *table = false;
    *accepts_json = true;
    if (!accept || !*accept)
        return true;
    struct media_type types[MAX_MEDIA_TYPES];
    size_t count = 0;
    for (const char *p = accept; *p && count < MAX_MEDIA_TYPES;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        parse_media_type(p, end, &types[count]);
        if (types[count].type[0] && types[count].q > 0)
            count++;
        p = comma ? comma + 1 : end;
    }
    /* Highest q first; equal q keep the client's order (insertion sort is stable). */
    for (size_t i = 1; i < count; i++) {
        struct media_type m = types[i];
        size_t j = i;
        for (; j > 0 && types[j - 1].q < m.q; j--)
            types[j] = types[j - 1];
        types[j] = m;
    }
    bool chosen = false;
    *accepts_json = false;
    for (size_t i = 0; i < count; i++) {
        enum kp_encoding this_encoding;
        bool this_table;
        if (!choose(&types[i], &this_encoding, &this_table))
            continue;
        if (!chosen) {
            *encoding = this_encoding;
            *table = this_table;
            chosen = true;
        }
        if (this_encoding == KP_ENCODING_JSON && !this_table)
            *accepts_json = true;
    }
    return chosen;
}

bool kp_call_negotiate(struct kp_call *call)
{
    if (kp_accept_choose(kp_http_header(call->http, "Accept"), &call->encoding,
                         &call->want_table, &call->accepts_json))
        return true;
    if (!call->info.resource_request) {
        /* discovery and the like answer JSON whatever was asked */
        call->encoding = KP_ENCODING_JSON;
        call->want_table = false;
        call->accepts_json = true;
        return true;
    }
    kp_call_status(call, 406, "NotAcceptable",
                   "only the following media types are accepted: application/json, "
                   "application/json;as=Table;v=v1;g=meta.k8s.io, " KP_PROTO_MEDIA_TYPE,
                   NULL, NULL, NULL);
    return false;
}

/* ---- request bodies ---- */

static bool content_type_is(const char *type, const char *wanted)
{
    size_t n = strlen(wanted);
    return strncasecmp(type, wanted, n) == 0 &&
           (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

static void add_warnings(struct kp_call *call, const struct kp_strlist *warnings)
{
    for (size_t i = 0; i < warnings->count; i++) {
        char header[800];
        snprintf(header, sizeof(header), "299 - \"%s\"", warnings->items[i]);
        kp_http_add_header(call->http, "Warning", header);
    }
}

static json_t *decode_protobuf(struct kp_call *call, const char *body, size_t len)
{
    struct kp_strlist warnings = {0};
    struct kp_error err;
    json_t *object = NULL;
    if (kp_proto_decode(body, len, &object, &warnings, &err) != KP_OK) {
        char message[700];
        snprintf(message, sizeof(message), "the protobuf body could not be decoded: %s",
                 err.message);
        kp_call_bad_request(call, message);
    } else {
        add_warnings(call, &warnings);
    }
    kp_strlist_wipe(&warnings);
    return object;
}

static json_t *decode_json(struct kp_call *call, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *object = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!object) {
        char message[400];
        snprintf(message, sizeof(message), "json parse error at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        kp_call_bad_request(call, message);
    }
    return object;
}

json_t *kp_call_read_object(struct kp_call *call, bool empty_ok)
{
    const char *type = kp_http_header(call->http, "Content-Type");
    bool protobuf = type && content_type_is(type, KP_PROTO_MEDIA_TYPE);
    if (type && *type && !protobuf && !content_type_is(type, "application/json")) {
        char message[512];
        snprintf(message, sizeof(message),
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/json, " KP_PROTO_MEDIA_TYPE " (got %.100s)",
                 type);
        kp_call_status(call, 415, "UnsupportedMediaType", message, NULL, NULL, NULL);
        return NULL;
    }
    size_t len = 0;
    const char *body = kp_http_body(call->http, &len);
    if (!body || !len) {
        if (!empty_ok)
            kp_call_bad_request(call, "the request body is empty");
        return NULL;
    }
    json_t *object = protobuf ? decode_protobuf(call, body, len) : decode_json(call, body, len);
    if (object && !json_is_object(object)) {
        json_decref(object);
        object = NULL;
        kp_call_bad_request(call, "the request body is not a JSON object");
    }
    return object;
}

/* ---- responses ---- */

/* Sends body as protobuf; false when it should go as JSON instead (no message for its kind,
 * or fields the message cannot carry while the client also takes JSON). */
static bool send_protobuf(struct kp_call *call, int status, const json_t *body)
{
    struct kp_strlist dropped = {0};
    struct kp_error err;
    unsigned char *bytes = NULL;
    size_t len = 0;
    bool sent = false;
    if (kp_proto_encode(body, &bytes, &len, &dropped, &err) != KP_OK) {
        kp_log_debug("protobuf: %s; answering JSON", err.message);
    } else if (dropped.count && call->accepts_json) {
        kp_log_debug("protobuf: %s has no place for %s; answering JSON",
                     json_string_value(json_object_get(body, "kind")), dropped.items[0]);
    } else {
        if (dropped.count) {
            char header[800];
            snprintf(header, sizeof(header),
                     "299 - \"the protobuf answer leaves out %zu field(s), first %s\"",
                     dropped.count, dropped.items[0]);
            kp_http_add_header(call->http, "Warning", header);
        }
        kp_http_respond(call->http, status, KP_PROTO_MEDIA_TYPE, (const char *)bytes, len);
        call->responded = true;
        sent = true;
    }
    free(bytes);
    kp_strlist_wipe(&dropped);
    return sent;
}

void kp_call_json(struct kp_call *call, int status, const json_t *body)
{
    if (call->encoding == KP_ENCODING_PROTOBUF && send_protobuf(call, status, body))
        return;
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        static const char oom[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                                  "\"status\":\"Failure\",\"message\":\"out of memory\","
                                  "\"reason\":\"InternalError\",\"code\":500}";
        kp_http_respond(call->http, 500, "application/json", oom, sizeof(oom) - 1);
    } else {
        kp_http_respond(call->http, status, "application/json", text, strlen(text));
        free(text);
    }
    call->responded = true;
}
