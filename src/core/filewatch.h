/*
 * core/filewatch.h - noticing that files changed, by polling what stat(2) says of them.
 *
 * A file's stamp is its device, inode, size and modification time in nanoseconds, symlinks
 * followed (or why stat failed: absent, unreadable directory). An atomic replacement - a
 * temporary file renamed over the old one, as kpki, kubeadm and most tools write, or a Kubernetes
 * Secret volume's `..data` symlink swap - changes the inode; an in-place rewrite changes the size
 * or the mtime. Polling a handful of stats a second costs nothing measurable and, unlike inotify,
 * needs no re-arming when a watched name is replaced, and follows symlinks into other
 * directories.
 *
 * A watch is a group of files that a consumer loads together (a certificate and its key; one
 * CA bundle). kp_file_watch_poll says when the consumer should load them:
 *   - only when a stamp differs from those of the files in use;
 *   - only once the stamps are the same as at the previous poll (settled): a writer that renames
 *     the key and then the certificate, or rewrites a file in several writes, is seen half-done
 *     at most once and not loaded then, so a renewal does not log a spurious key mismatch;
 *   - never twice for a set the consumer rejected (kp_file_watch_reject): a bad file is reported
 *     once, not once a poll; any later change offers the files again.
 *
 * Limit: two in-place rewrites with the same size within the filesystem's timestamp granularity
 * (a few milliseconds on Linux) leave the same stamp; the second is not noticed. Atomic
 * replacements are always noticed (a new inode).
 *
 * Ownership: the caller owns the struct (kp_file_watch_init, no wipe needed); paths are borrowed
 * and must stay valid as long as the watch is used. Not thread-safe: one thread polls a watch.
 */
#ifndef KP_CORE_FILEWATCH_H
#define KP_CORE_FILEWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KP_FILE_WATCH_MAX_FILES 4

struct kp_file_stamp {
    bool present;     /* stat succeeded */
    int error;        /* when not present: stat's errno (ENOENT: absent) */
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
};

/* Fills stamp for path (stat, symlinks followed). Never fails: a failure is a stamp too. */
void kp_file_stamp_read(const char *path, struct kp_file_stamp *stamp);
bool kp_file_stamp_equal(const struct kp_file_stamp *a, const struct kp_file_stamp *b);

struct kp_file_watch {
    size_t count;
    const char *paths[KP_FILE_WATCH_MAX_FILES];
    struct kp_file_stamp in_use[KP_FILE_WATCH_MAX_FILES];   /* what the consumer loaded */
    struct kp_file_stamp seen[KP_FILE_WATCH_MAX_FILES];     /* at the last poll */
    struct kp_file_stamp rejected[KP_FILE_WATCH_MAX_FILES]; /* the last set rejected */
    bool has_rejected;
};

/* Starts watching count (1..KP_FILE_WATCH_MAX_FILES) files and stamps them as in use. Call it
 * before loading the files the first time: a change between the stamp and the load is then seen
 * by the next polls (the files are offered again) instead of being missed. */
void kp_file_watch_init(struct kp_file_watch *watch, const char *const *paths, size_t count);

/* Stats the files. True when the caller should load them now: they differ from the set in use,
 * are unchanged since the previous poll, and are not the set last rejected. */
bool kp_file_watch_poll(struct kp_file_watch *watch);

/* The caller loaded what the last poll offered: those stamps are now in use. */
void kp_file_watch_accept(struct kp_file_watch *watch);

/* The caller could not use what the last poll offered: it keeps what it had, and the same
 * stamps are not offered again. */
void kp_file_watch_reject(struct kp_file_watch *watch);

/* The stamp of file i at the last poll (or at init). Borrowed from the watch. */
const struct kp_file_stamp *kp_file_watch_seen(const struct kp_file_watch *watch, size_t i);

#endif
