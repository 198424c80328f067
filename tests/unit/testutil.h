/*
 * Helpers shared by the unit test programs: temporary directories, small file utilities.
 * cmocka headers must come after the standard headers they rely on, so include this first.
 */
#ifndef KP_TESTUTIL_H
#define KP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

/* A fresh directory under $KPKI_TEST_TMP (or /tmp); the returned string is static per call
 * site only until the next call: copy it if you need several. */
const char *test_make_dir(const char *name, char *out, size_t size);
/* rm -rf path (must live under the test tmp dir). */
void test_remove_tree(const char *path);
/* Writes text to path (mode 0644), creating nothing else. Fails the test on error. */
void test_write_file(const char *path, const char *text);
/* Reads a whole file; fails the test if absent. Free with free(). */
char *test_read_file(const char *path, size_t *len);
bool test_exists(const char *path);
mode_t test_mode(const char *path);
/* Joins dir and rel into out. */
const char *test_path(char *out, size_t size, const char *dir, const char *rel);

#endif
