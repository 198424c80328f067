/*
 * fuzz/replay.c - runs a harness's LLVMFuzzerTestOneInput over saved inputs without libFuzzer,
 * so every corpus is a regression test in every build (gcc, ASan/UBSan) through ctest.
 *
 * Usage: replay_<name> PATH...   (a PATH is a file, or a directory whose regular files, hidden
 * ones excepted, are run in name order; subdirectories are not entered).
 *
 * Each input is copied into a heap buffer of exactly its size, as libFuzzer does, so that ASan
 * sees a read past the end. The name of each input is printed before it runs, so a crash points
 * at its reproducer. Exit status: 0 when every input ran; 1 when a path cannot be read, a
 * directory holds no input, or an input is over REPLAY_INPUT_MAX. A broken invariant aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Corpus files are small; anything larger is a mistake, not an input. */
#define REPLAY_INPUT_MAX (4 * 1024 * 1024)

static int run_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    uint8_t *data = NULL;
    struct stat st;
    if (fstat(fileno(file), &st) != 0) {
        fprintf(stderr, "replay: cannot stat '%s': %s\n", path, strerror(errno));
        goto done;
    }
    if (st.st_size > REPLAY_INPUT_MAX) {
        fprintf(stderr, "replay: '%s' is larger than %d bytes\n", path, REPLAY_INPUT_MAX);
        goto done;
    }
    size_t size = (size_t)st.st_size;
    /* malloc(0) may return NULL; keep a valid pointer for empty inputs. */
    data = malloc(size > 0 ? size : 1);
    if (data == NULL) {
        fprintf(stderr, "replay: out of memory reading '%s'\n", path);
        goto done;
    }
    if (size > 0 && fread(data, 1, size, file) != size) {
        fprintf(stderr, "replay: cannot read '%s'\n", path);
        goto done;
    }
    printf("replay: %s (%zu bytes)\n", path, size);
    fflush(stdout);
    (void)LLVMFuzzerTestOneInput(data, size);
    rc = 0;
done:
    free(data);
    fclose(file);
    return rc;
}

static int skip_hidden(const struct dirent *entry)
{
    return entry->d_name[0] != '.';
}

/* Runs every regular file of dir in name order; returns the number run, or -1. */
static int run_directory(const char *dir)
{
    struct dirent **entries = NULL;
    int count = scandir(dir, &entries, skip_hidden, alphasort);
    if (count < 0) {
        fprintf(stderr, "replay: cannot list '%s': %s\n", dir, strerror(errno));
        return -1;
    }
    int ran = 0;
    int rc = 0;
    for (int i = 0; i < count; i++) {
        char path[4096];
        int written = snprintf(path, sizeof(path), "%s/%s", dir, entries[i]->d_name);
        struct stat st;
        if (written < 0 || (size_t)written >= sizeof(path)) {
            fprintf(stderr, "replay: path too long in '%s'\n", dir);
            rc = -1;
        } else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) != 0) {
                rc = -1;
            } else {
                ran++;
            }
        }
        free(entries[i]);
    }
    free(entries);
    return rc != 0 ? -1 : ran;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
        return 1;
    }
    int total = 0;
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: cannot stat '%s': %s\n", argv[i], strerror(errno));
            status = 1;
        } else if (S_ISDIR(st.st_mode)) {
            int ran = run_directory(argv[i]);
            if (ran <= 0) {
                if (ran == 0) {
                    fprintf(stderr, "replay: '%s' holds no input\n", argv[i]);
                }
                status = 1;
            } else {
                total += ran;
            }
        } else if (run_file(argv[i]) != 0) {
            status = 1;
        } else {
            total++;
        }
    }
    printf("replay: %d inputs run\n", total);
    return status;
}
