/*
 * Implementation notes
 *
 * Durability: data must reach the disk before the rename that publishes it, or a power cut
 * can leave a complete-looking name over an empty or partial file (ext4 delayed allocation).
 * So the order is: write temp -> sync data -> rename -> sync the directory entry.
 * kp_file_write_atomic does this per file with fsync(temp) and fsync(dir). A batch does the same
 * for all its files with syncfs() per filesystem, once before and once after the renames: every
 * file's data is durable before any rename, and all renames are durable when commit returns.
 *
 * Every operation passes kp_fault_check() first so tests can fail or kill at each step.
 */
#include "core/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fault.h"

#define PATH_BUF 4096

enum kp_result kp_path_join(char *out, size_t size, const char *dir, const char *name,
                            struct kp_error *err)
{
    size_t dir_len = strlen(dir);
    const char *sep = (dir_len > 0 && dir[dir_len - 1] != '/') ? "/" : "";
    int written = snprintf(out, size, "%s%s%s", dir, sep, name);
    if (written < 0 || (size_t)written >= size) {
        return kp_error_set(err, KP_ERR_INVALID, "path too long: '%s/%s'", dir, name);
    }
    return KP_OK;
}

enum kp_result kp_path_dirname(char *out, size_t size, const char *path, struct kp_error *err)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        if (size < 2) {
            return kp_error_set(err, KP_ERR_INVALID, "path buffer too small");
        }
        memcpy(out, ".", 2);
        return KP_OK;
    }
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (len + 1 > size) {
        return kp_error_set(err, KP_ERR_INVALID, "path too long: '%s'", path);
    }
    memcpy(out, path, len);
    out[len] = '\0';
    return KP_OK;
}

/* Returns 0 or an errno value; the fault hook may stand in for the real call. */
static int checked(const char *op, int result)
{
    (void)op;
    return result < 0 ? errno : 0;
}

enum kp_result kp_file_read(const char *path, size_t max_len, char **out, size_t *out_len,
                            struct kp_error *err)
{
    *out = NULL;
    *out_len = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT && kp_path_is_dangling_link(path)) {
            return kp_error_set(err, KP_ERR_NOT_FOUND,
                                "cannot read '%s': it is a symbolic link to a missing file", path);
        }
        return kp_error_errno(err, errno, "cannot read '%s'", path);
    }
    enum kp_result rc = KP_OK;
    char *data = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = kp_error_errno(err, errno, "cannot read '%s'", path);
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = kp_error_set(err, KP_ERR_INVALID, "'%s' is a directory, expected a file", path);
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = kp_error_set(err, KP_ERR_INVALID, "'%s' is not a regular file", path);
        goto cleanup;
    }
    if (fcntl(fd, F_SETFL, 0) != 0) {
        rc = kp_error_errno(err, errno, "cannot read '%s'", path);
        goto cleanup;
    }
    if ((uintmax_t)st.st_size > max_len) {
        rc = kp_error_set(err, KP_ERR_INVALID, "'%s' is too large (%jd bytes, at most %zu)", path,
                          (intmax_t)st.st_size, max_len);
        goto cleanup;
    }
    /* Read to EOF rather than trusting st_size: the file may change under us; stop at max. */
    size_t capacity = (size_t)st.st_size + 1;
    data = malloc(capacity + 1);
    if (data == NULL) {
        rc = kp_error_set(err, KP_ERR_IO, "cannot read '%s': out of memory", path);
        goto cleanup;
    }
    size_t used = 0;
    for (;;) {
        ssize_t got = read(fd, data + used, capacity - used);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            rc = kp_error_errno(err, errno, "cannot read '%s'", path);
            goto cleanup;
        }
        if (got == 0) {
            break;
        }
        used += (size_t)got;
        if (used > max_len) {
            rc = kp_error_set(err, KP_ERR_INVALID, "'%s' is too large (at most %zu bytes)", path,
                              max_len);
            goto cleanup;
        }
        if (used == capacity) {
            size_t grown = capacity * 2 > max_len + 1 ? max_len + 1 : capacity * 2;
            char *bigger = realloc(data, grown + 1);
            if (bigger == NULL) {
                rc = kp_error_set(err, KP_ERR_IO, "cannot read '%s': out of memory", path);
                goto cleanup;
            }
            data = bigger;
            capacity = grown;
        }
    }
    data[used] = '\0';
    *out = data;
    *out_len = used;
    data = NULL;
cleanup:
    free(data);
    close(fd);
    return rc;
}

enum kp_result kp_file_mkdirs(const char *path, mode_t mode, struct kp_error *err)
{
    char partial[PATH_BUF];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(partial)) {
        return kp_error_set(err, KP_ERR_INVALID, "invalid directory path '%s'", path);
    }
    memcpy(partial, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (partial[i] != '/' && partial[i] != '\0') {
            continue;
        }
        char saved = partial[i];
        partial[i] = '\0';
        struct stat st;
        if (stat(partial, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                return kp_error_set(err, KP_ERR_INVALID, "'%s' exists and is not a directory",
                                    partial);
            }
        } else if (errno == ENOENT) {
            int fault = kp_fault_check("mkdir");
            int failure = fault != 0 ? fault : checked("mkdir", mkdir(partial, mode));
            if (failure == 0) {
                failure = checked("chmod", chmod(partial, mode));
            }
            if (failure != 0 && failure != EEXIST) {
                return kp_error_errno(err, failure, "cannot create directory '%s'", partial);
            }
        } else {
            return kp_error_errno(err, errno, "cannot access '%s'", partial);
        }
        partial[i] = saved;
    }
    return KP_OK;
}

/* Creates a temp file next to path and returns its fd (or -1 with errno set). */
static int create_temp(const char *path, char *temp_path, size_t temp_size)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    int dir_len = slash != NULL ? (int)(slash - path + 1) : 0;
    int written = snprintf(temp_path, temp_size, "%.*s.%s" KP_FILE_TEMP_MARKER "XXXXXX", dir_len,
                           path, base);
    if (written < 0 || (size_t)written >= temp_size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fault = kp_fault_check("open");
    if (fault != 0) {
        errno = fault;
        return -1;
    }
    return mkostemp(temp_path, O_CLOEXEC);
}

static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *cursor = data;
    while (len > 0) {
        int fault = kp_fault_check("write");
        if (fault != 0) {
            return fault;
        }
        ssize_t wrote = write(fd, cursor, len);
        if (wrote < 0 && errno == EINTR) {
            continue;
        }
        if (wrote < 0) {
            return errno;
        }
        cursor += wrote;
        len -= (size_t)wrote;
    }
    return 0;
}

/* Stages data in a new temp file with mode; on success temp_path names it. */
static enum kp_result stage_file(const char *path, const void *data, size_t len, mode_t mode,
                                 bool fsync_data, char *temp_path, size_t temp_size,
                                 struct kp_error *err)
{
    int fd = create_temp(path, temp_path, temp_size);
    if (fd < 0) {
        return kp_error_errno(err, errno, "cannot write '%s'", path);
    }
    int failure = checked("fchmod", fchmod(fd, mode));
    if (failure == 0) {
        failure = write_all(fd, data, len);
    }
    if (failure == 0 && fsync_data) {
        int fault = kp_fault_check("fsync");
        failure = fault != 0 ? fault : checked("fsync", fsync(fd));
    }
    if (close(fd) != 0 && failure == 0) {
        failure = errno;
    }
    if (failure != 0) {
        unlink(temp_path);
        return kp_error_errno(err, failure, "cannot write '%s'", path);
    }
    return KP_OK;
}

static int sync_directory_of(const char *path)
{
    char dir[PATH_BUF];
    if (kp_path_dirname(dir, sizeof(dir), path, NULL) != KP_OK) {
        return ENAMETOOLONG;
    }
    int fault = kp_fault_check("fsync");
    if (fault != 0) {
        return fault;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    int failure = checked("fsync", fsync(fd));
    close(fd);
    return failure;
}

static enum kp_result check_destination(const char *path, struct kp_error *err)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        return kp_error_set(err, KP_ERR_INVALID, "cannot write '%s': it is a directory", path);
    }
    return KP_OK;
}

static int rename_into_place(const char *temp_path, const char *path, bool must_be_new)
{
    int fault = kp_fault_check("rename");
    if (fault != 0) {
        return fault;
    }
    if (must_be_new) {
        /* Someone else created the file since we looked: never replace it. */
        return checked("rename", renameat2(AT_FDCWD, temp_path, AT_FDCWD, path,
                                           RENAME_NOREPLACE));
    }
    return checked("rename", rename(temp_path, path));
}

enum kp_result kp_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                    struct kp_error *err)
{
    enum kp_result rc = check_destination(path, err);
    if (rc != KP_OK) {
        return rc;
    }
    char temp_path[PATH_BUF];
    rc = stage_file(path, data, len, mode, true, temp_path, sizeof(temp_path), err);
    if (rc != KP_OK) {
        return rc;
    }
    int failure = rename_into_place(temp_path, path, false);
    if (failure != 0) {
        unlink(temp_path);
        return kp_error_errno(err, failure, "cannot write '%s'", path);
    }
    failure = sync_directory_of(path);
    if (failure != 0) {
        return kp_error_errno(err, failure, "cannot sync the directory of '%s'", path);
    }
    return KP_OK;
}

bool kp_path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

bool kp_path_is_dangling_link(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && stat(path, &st) != 0;
}

int kp_file_remove_stale_temps(const char *dir)
{
    DIR *handle = opendir(dir);
    if (handle == NULL) {
        return 0;
    }
    int removed = 0;
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        if (entry->d_name[0] == '.' && strstr(entry->d_name, KP_FILE_TEMP_MARKER) != NULL &&
            unlinkat(dirfd(handle), entry->d_name, 0) == 0) {
            removed++;
        }
    }
    closedir(handle);
    return removed;
}

/* ---- batches ---- */

struct batch_entry {
    char *path;
    unsigned char *data; /* file contents, or the link target for a symlink (NUL-terminated) */
    size_t len;
    mode_t mode;
    bool is_symlink;
    bool must_be_new; /* rename with RENAME_NOREPLACE */
    char temp_path[PATH_BUF];
    bool staged;
};

struct kp_file_batch {
    struct batch_entry *entries;
    size_t count;
    size_t capacity;
};

struct kp_file_batch *kp_file_batch_new(void)
{
    return calloc(1, sizeof(struct kp_file_batch));
}

void kp_file_batch_free(struct kp_file_batch *batch)
{
    if (batch == NULL) {
        return;
    }
    for (size_t i = 0; i < batch->count; i++) {
        struct batch_entry *entry = &batch->entries[i];
        if (entry->staged) {
            unlink(entry->temp_path);
        }
        if (entry->data != NULL) {
            /* The batch carries private keys; wipe its copy (explicit_bzero is not elided). */
            explicit_bzero(entry->data, entry->len);
        }
        free(entry->data);
        free(entry->path);
    }
    free(batch->entries);
    free(batch);
}

size_t kp_file_batch_count(const struct kp_file_batch *batch)
{
    return batch->count;
}

static enum kp_result batch_push(struct kp_file_batch *batch, const char *path, const void *data,
                                 size_t len, mode_t mode, bool is_symlink, bool must_be_new,
                                 struct kp_error *err)
{
    if (batch->count == batch->capacity) {
        size_t grown = batch->capacity == 0 ? 16 : batch->capacity * 2;
        struct batch_entry *bigger = realloc(batch->entries, grown * sizeof(*bigger));
        if (bigger == NULL) {
            return kp_error_set(err, KP_ERR_IO, "out of memory");
        }
        batch->entries = bigger;
        batch->capacity = grown;
    }
    struct batch_entry *entry = &batch->entries[batch->count];
    memset(entry, 0, sizeof(*entry));
    entry->path = strdup(path);
    entry->data = malloc(len + 1);
    if (entry->path == NULL || entry->data == NULL) {
        free(entry->path);
        free(entry->data);
        return kp_error_set(err, KP_ERR_IO, "out of memory");
    }
    memcpy(entry->data, data, len);
    entry->data[len] = '\0';
    entry->len = len;
    entry->mode = mode;
    entry->is_symlink = is_symlink;
    entry->must_be_new = must_be_new;
    batch->count++;
    return KP_OK;
}

enum kp_result kp_file_batch_add(struct kp_file_batch *batch, const char *path, const void *data,
                                 size_t len, mode_t mode, struct kp_error *err)
{
    return batch_push(batch, path, data, len, mode, false, false, err);
}

enum kp_result kp_file_batch_add_new(struct kp_file_batch *batch, const char *path,
                                     const void *data, size_t len, mode_t mode,
                                     struct kp_error *err)
{
    return batch_push(batch, path, data, len, mode, false, true, err);
}

enum kp_result kp_file_batch_add_symlink(struct kp_file_batch *batch, const char *path,
                                         const char *target, struct kp_error *err)
{
    return batch_push(batch, path, target, strlen(target), 0777, true, false, err);
}

static enum kp_result stage_symlink(struct batch_entry *entry, struct kp_error *err)
{
    /* symlink() has no mkstemp; derive a unique name from a temp file we create and remove. */
    for (int attempt = 0; attempt < 16; attempt++) {
        int fd = create_temp(entry->path, entry->temp_path, sizeof(entry->temp_path));
        if (fd < 0) {
            return kp_error_errno(err, errno, "cannot write '%s'", entry->path);
        }
        close(fd);
        unlink(entry->temp_path);
        int fault = kp_fault_check("symlink");
        int failure = fault != 0 ? fault
                                 : checked("symlink", symlink((const char *)entry->data,
                                                              entry->temp_path));
        if (failure == 0) {
            return KP_OK;
        }
        if (failure != EEXIST) {
            return kp_error_errno(err, failure, "cannot create symlink '%s'", entry->path);
        }
    }
    return kp_error_set(err, KP_ERR_IO, "cannot create symlink '%s': no free temporary name",
                        entry->path);
}

/* syncfs() once per filesystem among the entries' directories (each directory looked at once). */
static enum kp_result sync_filesystems(struct kp_file_batch *batch, struct kp_error *err)
{
    enum { MAX_SEEN = 16 };
    char dirs[MAX_SEEN][PATH_BUF];
    size_t dir_count = 0;
    dev_t synced[MAX_SEEN];
    size_t synced_count = 0;
    for (size_t i = 0; i < batch->count; i++) {
        char dir[PATH_BUF];
        if (kp_path_dirname(dir, sizeof(dir), batch->entries[i].path, err) != KP_OK) {
            return err != NULL ? err->code : KP_ERR_INVALID;
        }
        bool seen_dir = false;
        for (size_t j = 0; j < dir_count && !seen_dir; j++) {
            seen_dir = strcmp(dirs[j], dir) == 0;
        }
        if (seen_dir) {
            continue;
        }
        if (dir_count < MAX_SEEN) {
            memcpy(dirs[dir_count++], dir, sizeof(dir));
        }
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            return kp_error_errno(err, errno, "cannot open directory '%s'", dir);
        }
        struct stat st;
        bool seen_dev = false;
        int failure = checked("fstat", fstat(fd, &st));
        for (size_t j = 0; failure == 0 && j < synced_count; j++) {
            seen_dev = seen_dev || synced[j] == st.st_dev;
        }
        if (failure == 0 && !seen_dev) {
            int fault = kp_fault_check("syncfs");
            failure = fault != 0 ? fault : checked("syncfs", syncfs(fd));
            if (failure == 0 && synced_count < MAX_SEEN) {
                synced[synced_count++] = st.st_dev;
            }
        }
        close(fd);
        if (failure != 0) {
            return kp_error_errno(err, failure, "cannot sync the filesystem of '%s'", dir);
        }
    }
    return KP_OK;
}

enum kp_result kp_file_batch_commit(struct kp_file_batch *batch, struct kp_error *err)
{
    enum kp_result rc = KP_OK;
    for (size_t i = 0; i < batch->count && rc == KP_OK; i++) {
        rc = check_destination(batch->entries[i].path, err);
    }
    for (size_t i = 0; i < batch->count && rc == KP_OK; i++) {
        struct batch_entry *entry = &batch->entries[i];
        if (entry->is_symlink) {
            rc = stage_symlink(entry, err);
        } else {
            rc = stage_file(entry->path, entry->data, entry->len, entry->mode, false,
                            entry->temp_path, sizeof(entry->temp_path), err);
        }
        entry->staged = rc == KP_OK;
    }
    if (rc == KP_OK) {
        rc = sync_filesystems(batch, err);
    }
    for (size_t i = 0; i < batch->count && rc == KP_OK; i++) {
        struct batch_entry *entry = &batch->entries[i];
        int failure = rename_into_place(entry->temp_path, entry->path, entry->must_be_new);
        if (failure == EEXIST) {
            rc = kp_error_set(err, KP_ERR_CONFLICT,
                              "'%s' appeared while kpki was working; it was left as it is",
                              entry->path);
            break;
        }
        if (failure != 0) {
            rc = kp_error_errno(err, failure, "cannot write '%s'", entry->path);
            break;
        }
        entry->staged = false;
    }
    if (rc == KP_OK) {
        rc = sync_filesystems(batch, err);
    }
    /* On failure, kp_file_batch_free removes whatever is still staged. */
    for (size_t i = 0; i < batch->count && rc != KP_OK; i++) {
        if (batch->entries[i].staged) {
            unlink(batch->entries[i].temp_path);
            batch->entries[i].staged = false;
        }
    }
    return rc;
}
