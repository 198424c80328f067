/*
 * core/file.h - reading bounded files and writing files so that they are never half-written.
 *
 * Every write goes to a temporary file in the destination's directory (".<name>.kpki-tmp-XXXXXX"),
 * gets its mode with fchmod (the umask does not apply), is made durable, and is renamed over the
 * destination; the directory entry is made durable after the rename. A reader, or a process
 * killed at any moment, sees either the old file, no file, or the whole new file - never part of
 * one. Temporary files left by a killed process are removed by kp_file_remove_stale_temps().
 *
 * All functions are thread-safe (they share no state but the fault-injection counter).
 */
#ifndef KP_CORE_FILE_H
#define KP_CORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kpki/error.h"

/* Marker in the names of temporary files; anything carrying it is ours to remove. */
#define KP_FILE_TEMP_MARKER ".kpki-tmp-"

/* Reads the whole regular file at path (symlinks followed). Fails with KP_ERR_INVALID if the
 * file is larger than max_len or is not a regular file (a FIFO is refused without waiting),
 * KP_ERR_NOT_FOUND if absent (naming a dangling symbolic link as such).
 * On success *out is heap memory holding the bytes plus a terminating NUL (not counted in
 * *out_len); ownership transferred: free with free(). */
KP_MUST_CHECK enum kp_result kp_file_read(const char *path, size_t max_len, char **out,
                                          size_t *out_len, struct kp_error *err);

/* Like mkdir -p: creates path and missing parents with mode (chmod'ed, umask ignored); existing
 * directories are left as they are. A component that exists and is not a directory is
 * KP_ERR_INVALID naming it. */
KP_MUST_CHECK enum kp_result kp_file_mkdirs(const char *path, mode_t mode, struct kp_error *err);

/* Writes one file atomically and durably: temp file, write, fchmod(mode), fsync, rename,
 * fsync of the directory. data is borrowed for the duration of the call. */
KP_MUST_CHECK enum kp_result kp_file_write_atomic(const char *path, const void *data, size_t len,
                                                  mode_t mode, struct kp_error *err);

/* Removes temporary files a killed writer left in dir (names containing KP_FILE_TEMP_MARKER).
 * Returns how many were removed. Call it only while holding the lock that serialises writers
 * of that directory. A missing dir counts as clean. */
int kp_file_remove_stale_temps(const char *dir);

/*
 * A batch: many files committed together, with two filesystem syncs in all instead of two per
 * file. kp_file_batch_commit() stages every file as a temporary (in the order added), syncs the
 * data (syncfs on each filesystem involved), renames each into place in the order added, then
 * syncs again so the renames are durable. Killing the process at any point leaves each
 * destination either as it was or complete; order entries so that any prefix is a state the
 * next run can finish from (for a key pair: the key first, then the certificate).
 * Before staging anything, commit checks every destination: one that is a directory fails the
 * whole batch with nothing written.
 */
struct kp_file_batch;

/* Returns NULL only on allocation failure. Free with kp_file_batch_free(). */
struct kp_file_batch *kp_file_batch_new(void);

/* Frees the batch, removing any temporary files it staged but did not rename. NULL is a no-op. */
void kp_file_batch_free(struct kp_file_batch *batch);

/* Adds a regular file; path and data are copied. Key material is cleansed from the batch's
 * copy when the batch is freed. */
KP_MUST_CHECK enum kp_result kp_file_batch_add(struct kp_file_batch *batch, const char *path,
                                               const void *data, size_t len, mode_t mode,
                                               struct kp_error *err);

/* Like kp_file_batch_add for a destination that must not exist: if another process creates it
 * before the commit renames into place, the commit fails with KP_ERR_CONFLICT instead of
 * replacing it (renameat2 RENAME_NOREPLACE). */
KP_MUST_CHECK enum kp_result kp_file_batch_add_new(struct kp_file_batch *batch, const char *path,
                                                   const void *data, size_t len, mode_t mode,
                                                   struct kp_error *err);

/* Adds a symbolic link path -> target (both copied); an existing link or file at path is
 * replaced atomically. */
KP_MUST_CHECK enum kp_result kp_file_batch_add_symlink(struct kp_file_batch *batch,
                                                       const char *path, const char *target,
                                                       struct kp_error *err);

KP_MUST_CHECK enum kp_result kp_file_batch_commit(struct kp_file_batch *batch,
                                                  struct kp_error *err);

size_t kp_file_batch_count(const struct kp_file_batch *batch);

/* True if path exists (as anything, symlinks not followed). */
bool kp_path_exists(const char *path);

/* True if path is a symbolic link whose target does not exist. */
bool kp_path_is_dangling_link(const char *path);

/* Small path helpers. Both write at most size bytes including the NUL and fail with
 * KP_ERR_INVALID if the result does not fit. */
KP_MUST_CHECK enum kp_result kp_path_join(char *out, size_t size, const char *dir,
                                          const char *name, struct kp_error *err);
/* The directory part of path ("." if none). */
KP_MUST_CHECK enum kp_result kp_path_dirname(char *out, size_t size, const char *path,
                                             struct kp_error *err);

#endif
