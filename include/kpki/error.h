/*
 * kpki/error.h - the one result type of libkpki.
 *
 * Every fallible function returns an enum kp_result and, on failure, fills a caller-owned
 * struct kp_error with a message that names the thing and the value ("cannot read CA key
 * 'etc/kubernetes/pki/ca.key': Permission denied"). Codes fall into kinds that map straight
 * to an HTTP status and a process exit code, so the CLI and the daemons never translate by hand.
 * Filling an error never allocates. Messages never contain key material or tokens.
 */
#ifndef KPKI_ERROR_H
#define KPKI_ERROR_H

#include <stdarg.h>

#define KP_MUST_CHECK __attribute__((warn_unused_result))
#define KP_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))

enum kp_result {
    KP_OK = 0,
    KP_ERR_INVALID,         /* bad input: flag, file contents, request body   400, exit 1 */
    KP_ERR_UNAUTHENTICATED, /* no or bad credentials                          401, exit 2 */
    KP_ERR_FORBIDDEN,       /* authenticated but refused, or policy rejection 403, exit 3 */
    KP_ERR_NOT_FOUND,       /* a named file or object does not exist           404, exit 4 */
    KP_ERR_CONFLICT,        /* exists already, or inconsistent with the request 409, exit 5 */
    KP_ERR_IO,              /* the system failed us: disk, network, resources  503, exit 6 */
    KP_ERR_INTERNAL,        /* a bug or an impossible state                    500, exit 7 */
    KP_ERR_EXPIRED,         /* a revision (resourceVersion) too old to serve   410, exit 8 */
    KP_ERR_TOO_LARGE,       /* input over a limit (body, headers, list)        413, exit 9 */
};

#define KP_ERROR_MESSAGE_MAX 768

struct kp_error {
    enum kp_result code;
    char message[KP_ERROR_MESSAGE_MAX];
};

/* Resets err to KP_OK with an empty message. err may be NULL. */
void kp_error_clear(struct kp_error *err);

/* Sets code and a formatted message (truncated to fit) and returns code, so that a failing
 * function can `return kp_error_set(err, KP_ERR_INVALID, "...", ...)`. err may be NULL. */
enum kp_result kp_error_set(struct kp_error *err, enum kp_result code, const char *fmt, ...)
    KP_PRINTF(3, 4);
enum kp_result kp_error_vset(struct kp_error *err, enum kp_result code, const char *fmt,
                             va_list ap) KP_PRINTF(3, 0);

/* Like kp_error_set with the text of errno_value appended: "<message>: <strerror>".
 * Maps errno to a kind: ENOENT -> NOT_FOUND, EACCES/EPERM -> FORBIDDEN, EEXIST -> CONFLICT,
 * EISDIR/ENOTDIR/EINVAL/ELOOP/ENAMETOOLONG -> INVALID, anything else -> IO. */
enum kp_result kp_error_errno(struct kp_error *err, int errno_value, const char *fmt, ...)
    KP_PRINTF(3, 4);

/* Prepends "<context>: " to the message, keeping the code; returns the code. */
enum kp_result kp_error_prefix(struct kp_error *err, const char *fmt, ...) KP_PRINTF(2, 3);

/* The kind's name ("invalid", "not-found", ...), its HTTP status and its exit code. */
const char *kp_result_name(enum kp_result code);
int kp_result_http_status(enum kp_result code);
int kp_result_exit_code(enum kp_result code);

#endif
