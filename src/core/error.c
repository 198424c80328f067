#include "kpki/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void kp_error_clear(struct kp_error *err)
{
    if (err == NULL) {
        return;
    }
    err->code = KP_OK;
    err->message[0] = '\0';
}

enum kp_result kp_error_vset(struct kp_error *err, enum kp_result code, const char *fmt, va_list ap)
{
    if (err != NULL) {
        err->code = code;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
    }
    return code;
}

enum kp_result kp_error_set(struct kp_error *err, enum kp_result code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kp_error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

static enum kp_result kind_of_errno(int errno_value)
{
    switch (errno_value) {
    case ENOENT:
        return KP_ERR_NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return KP_ERR_FORBIDDEN;
    case EEXIST:
        return KP_ERR_CONFLICT;
    case EISDIR:
    case ENOTDIR:
    case EINVAL:
    case ELOOP:
    case ENAMETOOLONG:
        return KP_ERR_INVALID;
    default:
        return KP_ERR_IO;
    }
}

enum kp_result kp_error_errno(struct kp_error *err, int errno_value, const char *fmt, ...)
{
    enum kp_result code = kind_of_errno(errno_value);
    if (err == NULL) {
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    kp_error_vset(err, code, fmt, ap);
    va_end(ap);
    size_t used = strlen(err->message);
    snprintf(err->message + used, sizeof(err->message) - used, ": %s", strerror(errno_value));
    return code;
}

enum kp_result kp_error_prefix(struct kp_error *err, const char *fmt, ...)
{
    if (err == NULL) {
        return KP_ERR_INTERNAL;
    }
    char context[KP_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof(context), fmt, ap);
    va_end(ap);
    char joined[KP_ERROR_MESSAGE_MAX];
    snprintf(joined, sizeof(joined), "%s: %s", context, err->message);
    memcpy(err->message, joined, sizeof(joined));
    return err->code;
}

static const struct {
    const char *name;
    int http_status;
    int exit_code;
} kinds[] = {
    [KP_OK] = {"ok", 200, 0},
    [KP_ERR_INVALID] = {"invalid", 400, 1},
    [KP_ERR_UNAUTHENTICATED] = {"unauthenticated", 401, 2},
    [KP_ERR_FORBIDDEN] = {"forbidden", 403, 3},
    [KP_ERR_NOT_FOUND] = {"not-found", 404, 4},
    [KP_ERR_CONFLICT] = {"conflict", 409, 5},
    [KP_ERR_IO] = {"io", 503, 6},
    [KP_ERR_INTERNAL] = {"internal", 500, 7},
    [KP_ERR_EXPIRED] = {"expired", 410, 8},
    [KP_ERR_TOO_LARGE] = {"too-large", 413, 9},
};

static int known(enum kp_result code)
{
    return (unsigned)code < sizeof(kinds) / sizeof(kinds[0]);
}

const char *kp_result_name(enum kp_result code)
{
    return known(code) ? kinds[code].name : "internal";
}

int kp_result_http_status(enum kp_result code)
{
    return known(code) ? kinds[code].http_status : 500;
}

int kp_result_exit_code(enum kp_result code)
{
    return known(code) ? kinds[code].exit_code : 7;
}
