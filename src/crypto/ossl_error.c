#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"

enum kp_result kp_error_openssl(struct kp_error *err, enum kp_result code, const char *fmt, ...)
{
    /* The last error in the queue is the most specific one OpenSSL recorded. */
    unsigned long last = 0;
    unsigned long each;
    while ((each = ERR_get_error()) != 0) {
        last = each;
    }
    if (err == NULL) {
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    kp_error_vset(err, code, fmt, ap);
    va_end(ap);
    if (last != 0) {
        const char *reason = ERR_reason_error_string(last);
        size_t used = strlen(err->message);
        if (reason != NULL) {
            snprintf(err->message + used, sizeof(err->message) - used, ": %s", reason);
        } else {
            snprintf(err->message + used, sizeof(err->message) - used, ": OpenSSL error 0x%lx",
                     last);
        }
    }
    return code;
}
