/*
 * Objects: storage keys, (de)serialisation with the resourceVersion stamp, metadata access,
 * name rules (apimachinery/pkg/util/validation), UIDs and timestamps.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/duration.h"

void kp_object_key(const struct kp_resource *resource, const char *ns, const char *name,
                   char *out, size_t size)
{
    if (resource->namespaced)
        snprintf(out, size, "%s/%s/%s", resource->storage, ns, name);
    else
        snprintf(out, size, "%s/%s", resource->storage, name);
}

void kp_object_prefix(const struct kp_resource *resource, const char *ns, char *out, size_t size)
{
    if (resource->namespaced && ns && *ns)
        snprintf(out, size, "%s/%s/", resource->storage, ns);
    else
        snprintf(out, size, "%s/", resource->storage);
}

void kp_object_set_rv(json_t *object, int64_t revision)
{
    char rv[32];
    snprintf(rv, sizeof(rv), "%lld", (long long)revision);
    kp_meta_set_str(object, "resourceVersion", rv);
}

json_t *kp_object_decode(const char *value, size_t len, int64_t revision)
{
    json_t *object = json_loadb(value, len, 0, NULL);
    if (!json_is_object(object)) {
        json_decref(object);
        return NULL;
    }
    kp_object_set_rv(object, revision);
    return object;
}

enum kp_result kp_object_encode(const json_t *object, char **out, size_t *len,
                                struct kp_error *err)
{
    /* The stored form has no resourceVersion: the store's revision is the truth. */
    json_t *copy = json_copy((json_t *)object);
    json_t *meta = copy ? json_object_get(copy, "metadata") : NULL;
    if (meta) {
        json_t *meta_copy = json_copy(meta);
        json_object_del(meta_copy, "resourceVersion");
        json_object_set_new(copy, "metadata", meta_copy);
    }
    *out = copy ? json_dumps(copy, JSON_COMPACT) : NULL;
    json_decref(copy);
    if (!*out)
        return kp_error_set(err, KP_ERR_IO, "out of memory encoding an object");
    *len = strlen(*out);
    return KP_OK;
}

json_t *kp_meta(const json_t *object)
{
    return json_object_get(object, "metadata");
}

const char *kp_meta_str(const json_t *object, const char *field)
{
    return json_string_value(json_object_get(kp_meta(object), field));
}

bool kp_meta_set_str(json_t *object, const char *field, const char *value)
{
    json_t *meta = json_object_get(object, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        if (!meta || json_object_set_new(object, "metadata", meta) != 0)
            return false;
    }
    return json_object_set_new(meta, field, json_string(value)) == 0;
}

/* ---- names ---- */

static bool alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool label_valid(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !alnum_lower(s[0]) || !alnum_lower(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!alnum_lower(s[i]) && s[i] != '-')
            return false;
    return true;
}

const char *kp_name_dns1123_label(const char *name)
{
    if (strlen(name) > 63)
        return "must be no more than 63 characters";
    if (!label_valid(name, strlen(name)))
        return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
               "or '-', and must start and end with an alphanumeric character (e.g. 'my-name', "
               " or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    return NULL;
}

const char *kp_name_dns1123_subdomain(const char *name)
{
    size_t len = strlen(name);
    if (len > 253)
        return "must be no more than 253 characters";
    bool ok = len > 0;
    for (const char *p = name; ok && *p;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        /* Subdomain parts are labels without the 63-character limit. */
        ok = n > 0 && alnum_lower(p[0]) && alnum_lower(p[n - 1]);
        for (size_t i = 0; ok && i < n; i++)
            ok = alnum_lower(p[i]) || p[i] == '-';
        p = dot ? dot + 1 : p + n;
        if (dot && !*p)
            ok = false;
    }
    if (!ok)
        return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
               "characters, '-' or '.', and must start and end with an alphanumeric character "
               "(e.g. 'example.com', regex used for validation is "
               "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    return NULL;
}

const char *kp_name_path_segment(const char *name)
{
    if (!*name)
        return "name is required";
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return "may not be '.' or '..'";
    if (strchr(name, '/'))
        return "may not contain '/'";
    if (strchr(name, '%'))
        return "may not contain '%'";
    if (strlen(name) > 253)
        return "must be no more than 253 characters";
    return NULL;
}

/* ---- identity and time ---- */

void kp_new_uid(char *out, size_t size)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        /* RAND_bytes failing means the process cannot do TLS either; a UID must still be
         * unique, so fall back to time and address entropy rather than abort a request. */
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)(rand() & 0xff);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, size,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

void kp_timestamp(int64_t unix_seconds, char *out, size_t size)
{
    kp_time_format_rfc3339(unix_seconds, out, size);
}

int64_t kp_object_age(const json_t *object, int64_t now)
{
    const char *ts = kp_meta_str(object, "creationTimestamp");
    int64_t created;
    if (!ts || kp_time_parse_rfc3339(ts, &created, NULL) != KP_OK)
        return 0;
    return now - created;
}
