#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *test_make_dir(const char *name, char *out, size_t size)
{
    const char *base = getenv("KPKI_TEST_TMP");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    mkdir(base, 0755);
    snprintf(out, size, "%s/%s.XXXXXX", base, name);
    if (mkdtemp(out) == NULL) {
        fail_msg("mkdtemp %s: %s", out, strerror(errno));
    }
    return out;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    /* Make directories writable again first (tests chmod some to provoke errors). */
    chmod(path, 0700);
    return remove(path);
}

void test_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
    }
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void test_write_file(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    if (file == NULL) {
        fail_msg("cannot write %s: %s", path, strerror(errno));
    }
    fputs(text, file);
    fclose(file);
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fail_msg("cannot read %s: %s", path, strerror(errno));
    }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    size_t got = fread(data, 1, (size_t)size, file);
    fclose(file);
    data[got] = '\0';
    if (len != NULL) {
        *len = got;
    }
    return data;
}

bool test_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

mode_t test_mode(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        fail_msg("stat %s: %s", path, strerror(errno));
    }
    return st.st_mode & 07777;
}

const char *test_path(char *out, size_t size, const char *dir, const char *rel)
{
    snprintf(out, size, "%s/%s", dir, rel);
    return out;
}
