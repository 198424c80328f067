/*
 * Polling files for changes (see filewatch.h for the rules: settle, then offer; a rejected set
 * is not offered again).
 */
#include "core/filewatch.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

void kp_file_stamp_read(const char *path, struct kp_file_stamp *stamp)
{
    memset(stamp, 0, sizeof(*stamp));
    struct stat st;
    if (stat(path, &st) != 0) {
        stamp->error = errno;
        return;
    }
    stamp->present = true;
    stamp->dev = st.st_dev;
    stamp->ino = st.st_ino;
    stamp->size = st.st_size;
    stamp->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

bool kp_file_stamp_equal(const struct kp_file_stamp *a, const struct kp_file_stamp *b)
{
    if (a->present != b->present)
        return false;
    if (!a->present)
        return a->error == b->error;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns;
}

static bool stamps_equal(const struct kp_file_stamp *a, const struct kp_file_stamp *b,
                         size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!kp_file_stamp_equal(&a[i], &b[i]))
            return false;
    return true;
}

void kp_file_watch_init(struct kp_file_watch *watch, const char *const *paths, size_t count)
{
    memset(watch, 0, sizeof(*watch));
    watch->count = count < KP_FILE_WATCH_MAX_FILES ? count : KP_FILE_WATCH_MAX_FILES;
    for (size_t i = 0; i < watch->count; i++) {
        watch->paths[i] = paths[i];
        kp_file_stamp_read(paths[i], &watch->in_use[i]);
        watch->seen[i] = watch->in_use[i];
    }
}

bool kp_file_watch_poll(struct kp_file_watch *watch)
{
    struct kp_file_stamp now[KP_FILE_WATCH_MAX_FILES];
    for (size_t i = 0; i < watch->count; i++)
        kp_file_stamp_read(watch->paths[i], &now[i]);
    /* Settled: the same as a poll interval ago. A set still moving waits for the next poll. */
    bool settled = stamps_equal(now, watch->seen, watch->count);
    memcpy(watch->seen, now, sizeof(now[0]) * watch->count);
    if (!settled || stamps_equal(now, watch->in_use, watch->count))
        return false;
    return !(watch->has_rejected && stamps_equal(now, watch->rejected, watch->count));
}

void kp_file_watch_accept(struct kp_file_watch *watch)
{
    memcpy(watch->in_use, watch->seen, sizeof(watch->seen[0]) * watch->count);
    watch->has_rejected = false;
}

void kp_file_watch_reject(struct kp_file_watch *watch)
{
    memcpy(watch->rejected, watch->seen, sizeof(watch->seen[0]) * watch->count);
    watch->has_rejected = true;
}

const struct kp_file_stamp *kp_file_watch_seen(const struct kp_file_watch *watch, size_t i)
{
    return &watch->seen[i];
}
