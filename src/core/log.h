/*
 * core/log.h - diagnostics on stderr.
 *
 * Data goes to stdout, diagnostics here. Messages must never contain key material or tokens.
 * The level and the stream are process-wide; set them once at start-up (not thread-safe to
 * change while other threads log). Logging itself is safe from any thread: one line is one
 * write(2).
 */
#ifndef KP_CORE_LOG_H
#define KP_CORE_LOG_H

#include <stdio.h>

#include "kpki/error.h"

enum kp_log_level { KP_LOG_ERROR = 0, KP_LOG_WARN = 1, KP_LOG_INFO = 2, KP_LOG_DEBUG = 3 };

void kp_log_set_level(enum kp_log_level level);
enum kp_log_level kp_log_get_level(void);
/* fd to write to; default 2 (stderr). Tests point it at a pipe or file. */
void kp_log_set_fd(int fd);

void kp_log(enum kp_log_level level, const char *fmt, ...) KP_PRINTF(2, 3);
#define kp_log_error(...) kp_log(KP_LOG_ERROR, __VA_ARGS__)
#define kp_log_warn(...) kp_log(KP_LOG_WARN, __VA_ARGS__)
#define kp_log_info(...) kp_log(KP_LOG_INFO, __VA_ARGS__)
#define kp_log_debug(...) kp_log(KP_LOG_DEBUG, __VA_ARGS__)

#endif
