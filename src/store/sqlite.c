/*
 * store/sqlite.c - the SQLite backend of the store (one file, WAL, synchronous=FULL).
 *
 * Implementation notes:
 *
 * Schema (user_version 1, application_id 'kpki'):
 *   history(mod_revision INTEGER PRIMARY KEY, key TEXT, create_revision INTEGER, value BLOB)
 *       one row per write: the revision is the rowid, so "every change after R" is a range of
 *       the table itself; value NULL marks a deletion. Index history_key (key, mod_revision):
 *       "the version of K at R" is one seek.
 *   meta(id = 1, revision, compacted)
 *       the current revision (also right after a compaction removed rows) and the compaction
 *       revision.
 *
 * Invariants:
 *   - every write is one BEGIN IMMEDIATE ... COMMIT transaction that inserts exactly one history
 *     row at meta.revision + 1 and stores that revision in meta: revisions are dense and
 *     strictly increasing, and a revision exists exactly when its row was committed;
 *   - after compaction at C, the rows kept are every row >= C and, for each key, its newest row
 *     below C unless that is a deletion. So the state at C is complete (list at C), and so is
 *     the version before every kept write (watch from C - 1 delivers prev and deleted values).
 *
 * Connections: one writer connection, used only under the front's write lock (internal.h), and
 * a pool of up to READERS_MAX reader connections (query_only), each used by one thread at a
 * time, opened on demand. Every connection caches its prepared statements. Reads that need more
 * than one statement (list, history) run in one read transaction: WAL gives them a stable
 * snapshot while the writer commits, and meta is read inside it, so "now" and the compaction
 * check agree with the rows returned.
 *
 * One process at a time: the store keeps the current revision in memory and delivers watch
 * events from its own writes, so a second writer would break both. kp_store_open_sqlite takes
 * an exclusive flock on "<path>-lock" (a separate file: closing any descriptor of the database
 * file itself would drop SQLite's POSIX locks) for as long as the store is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/core.h"
#include "store/internal.h"

#define SCHEMA_VERSION 1
#define APPLICATION_ID 0x6b706b69 /* "kpki" */
#define BUSY_TIMEOUT_MS 10000
#define READERS_MAX 8
/* The WAL is truncated back to this after checkpoints (it grows with big values). */
#define JOURNAL_SIZE_LIMIT "67108864"
/* Shown keys and prefixes are cut here (a message holds 768 bytes). */
#define SHOWN_MAX 200

enum stmt_id {
    ST_BEGIN,
    ST_BEGIN_IMMEDIATE,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_META,
    ST_VERSION_AT,
    ST_HEAD_AT,
    ST_VALUE,
    ST_KEY_FROM,
    ST_KEY_AFTER,
    ST_HISTORY,
    ST_INSERT,
    ST_SET_REVISION,
    ST_COMPACT,
    ST_SET_COMPACTED,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_META] = "SELECT revision, compacted FROM meta WHERE id = 1",
    /* The newest version of ?1 at or before revision ?2 (maybe a deletion). */
    [ST_VERSION_AT] = "SELECT create_revision, mod_revision, value FROM history "
                      "WHERE key = ?1 AND mod_revision <= ?2 ORDER BY mod_revision DESC LIMIT 1",
    /* The same without reading the value (which may be megabytes in overflow pages). */
    [ST_HEAD_AT] = "SELECT create_revision, mod_revision, value IS NULL FROM history "
                   "WHERE key = ?1 AND mod_revision <= ?2 ORDER BY mod_revision DESC LIMIT 1",
    [ST_VALUE] = "SELECT value FROM history WHERE mod_revision = ?1",
    /* The next distinct key in [?1, ?2) / (?1, ?2): one seek in history_key, however many
     * versions the keys before it have (a loose index scan done by hand). */
    [ST_KEY_FROM] = "SELECT key FROM history WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT 1",
    [ST_KEY_AFTER] = "SELECT key FROM history WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT 1",
    /* Changes in (?1, ?2] to keys in [?3, ?4), in revision order. "+key" keeps the planner on
     * the rowid range (the order we need) instead of the key index. */
    [ST_HISTORY] = "SELECT mod_revision, key, create_revision, value FROM history "
                   "WHERE mod_revision > ?1 AND mod_revision <= ?2 AND +key >= ?3 AND +key < ?4 "
                   "ORDER BY mod_revision LIMIT ?5",
    [ST_INSERT] = "INSERT INTO history (mod_revision, key, create_revision, value) "
                  "VALUES (?1, ?2, ?3, ?4)",
    [ST_SET_REVISION] = "UPDATE meta SET revision = ?1 WHERE id = 1",
    /* Below ?1, keep only each key's newest row, and not even that when it is a deletion. */
    [ST_COMPACT] = "DELETE FROM history WHERE mod_revision < ?1 AND (value IS NULL OR EXISTS "
                   "(SELECT 1 FROM history AS newer WHERE newer.key = history.key "
                   "AND newer.mod_revision > history.mod_revision AND newer.mod_revision < ?1))",
    [ST_SET_COMPACTED] = "UPDATE meta SET compacted = ?1 WHERE id = 1",
};

static const char schema_sql[] = "CREATE TABLE meta ("
                                 "  id INTEGER PRIMARY KEY CHECK (id = 1),"
                                 "  revision INTEGER NOT NULL,"
                                 "  compacted INTEGER NOT NULL);"
                                 "INSERT INTO meta (id, revision, compacted) VALUES (1, 0, 0);"
                                 "CREATE TABLE history ("
                                 "  mod_revision INTEGER PRIMARY KEY,"
                                 "  key TEXT NOT NULL,"
                                 "  create_revision INTEGER NOT NULL,"
                                 "  value BLOB);"
                                 "CREATE UNIQUE INDEX history_key ON history (key, mod_revision);";

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT]; /* prepared on first use */
    struct conn *next_idle;
};

struct sqlite_store {
    char *path;
    int lock_fd;
    struct conn *writer; /* only under the front's write lock */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_idle;
    struct conn *idle;   /* guarded by pool_lock */
    size_t readers_open; /* guarded by pool_lock */
    _Atomic int64_t revision;
    _Atomic int64_t compacted;
};

/* A bound no key reaches: KP_STORE_KEY_MAX + 1 bytes of 0xff sort after every key of at most
 * KP_STORE_KEY_MAX bytes (keys are compared bytewise). Used when a prefix has no successor. */
static char key_ceiling[KP_STORE_KEY_MAX + 2];
static pthread_once_t key_ceiling_once = PTHREAD_ONCE_INIT;

static void key_ceiling_init(void)
{
    memset(key_ceiling, 0xff, KP_STORE_KEY_MAX + 1);
    key_ceiling[KP_STORE_KEY_MAX + 1] = '\0';
}

/* The smallest string above every string starting with prefix: the prefix with its last byte
 * below 0xff incremented and the rest dropped; key_ceiling when there is none. */
static const char *prefix_end(const char *prefix, char *out, size_t size)
{
    size_t len = strlen(prefix);
    while (len > 0 && (unsigned char)prefix[len - 1] == 0xff) {
        len--;
    }
    if (len == 0 || len >= size) {
        return key_ceiling;
    }
    memcpy(out, prefix, len);
    out[len - 1] = (char)((unsigned char)out[len - 1] + 1);
    out[len] = '\0';
    return out;
}

static int shown(const char *text)
{
    size_t len = strlen(text);
    return (int)(len < SHOWN_MAX ? len : SHOWN_MAX);
}

/* ---- errors and statements ---- */

static enum kp_result db_fail(const struct sqlite_store *store, sqlite3 *db, int code,
                              struct kp_error *err, const char *what)
{
    const char *message = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    return kp_error_set(err, KP_ERR_IO, "store '%s': %s: %s", store->path, what, message);
}

static enum kp_result stmt_get(const struct sqlite_store *store, struct conn *conn, enum stmt_id id,
                               sqlite3_stmt **stmt, struct kp_error *err)
{
    if (conn->stmts[id] == NULL) {
        int code = sqlite3_prepare_v3(conn->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                      &conn->stmts[id], NULL);
        if (code != SQLITE_OK) {
            return db_fail(store, conn->db, code, err, "cannot prepare a statement");
        }
    }
    *stmt = conn->stmts[id];
    return KP_OK;
}

/* Readies a cached statement for its next use. sqlite3_reset repeats the error of the last
 * step, which the caller has already turned into its result; clear_bindings cannot fail. */
static void stmt_done(sqlite3_stmt *stmt)
{
    if (stmt != NULL) {
        (void)sqlite3_reset(stmt);
        (void)sqlite3_clear_bindings(stmt);
    }
}

/* Runs a statement without result rows (BEGIN, COMMIT, ...). */
static enum kp_result exec_stmt(const struct sqlite_store *store, struct conn *conn,
                                enum stmt_id id, const char *what, struct kp_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum kp_result rc = stmt_get(store, conn, id, &stmt, err);
    if (rc != KP_OK) {
        return rc;
    }
    int code = sqlite3_step(stmt);
    if (code != SQLITE_DONE) {
        rc = db_fail(store, conn->db, code, err, what);
    }
    stmt_done(stmt);
    return rc;
}

/* Ends a failed transaction if SQLite has not already rolled it back. */
static void rollback(const struct sqlite_store *store, struct conn *conn)
{
    if (sqlite3_get_autocommit(conn->db)) {
        return;
    }
    struct kp_error ignored;
    if (exec_stmt(store, conn, ST_ROLLBACK, "cannot roll back", &ignored) != KP_OK) {
        kp_log_warn("%s", ignored.message);
    }
}

static enum kp_result read_meta(const struct sqlite_store *store, struct conn *conn,
                                int64_t *revision, int64_t *compacted, struct kp_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum kp_result rc = stmt_get(store, conn, ST_META, &stmt, err);
    if (rc != KP_OK) {
        return rc;
    }
    int code = sqlite3_step(stmt);
    if (code == SQLITE_ROW) {
        *revision = sqlite3_column_int64(stmt, 0);
        *compacted = sqlite3_column_int64(stmt, 1);
    } else if (code == SQLITE_DONE) {
        rc = kp_error_set(err, KP_ERR_IO, "store '%s': the meta row is missing", store->path);
    } else {
        rc = db_fail(store, conn->db, code, err, "cannot read the current revision");
    }
    stmt_done(stmt);
    return rc;
}

/* A value column: *is_null for a deletion, else a pointer valid until the next step or reset
 * (NULL with length 0 for an empty value). */
static enum kp_result column_value(const struct sqlite_store *store, struct conn *conn,
                                   sqlite3_stmt *stmt, int column, const char **value,
                                   size_t *value_len, bool *is_null, struct kp_error *err)
{
    *value = NULL;
    *value_len = 0;
    *is_null = sqlite3_column_type(stmt, column) == SQLITE_NULL;
    if (*is_null) {
        return KP_OK;
    }
    /* _blob first, then _bytes (SQLite's advice); NULL with a length means out of memory. */
    const void *blob = sqlite3_column_blob(stmt, column);
    int len = sqlite3_column_bytes(stmt, column);
    if (blob == NULL && len > 0) {
        return db_fail(store, conn->db, SQLITE_NOMEM, err, "cannot read a value");
    }
    *value = blob;
    *value_len = (size_t)len;
    return KP_OK;
}

/* Binds a value as a BLOB. A NULL pointer would bind SQL NULL (a deletion), so an empty value
 * is bound from "". */
static int bind_value(sqlite3_stmt *stmt, int index, const char *value, size_t value_len)
{
    return sqlite3_bind_blob(stmt, index, value_len > 0 ? value : "", (int)value_len,
                             SQLITE_STATIC);
}

static int bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    return sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

/* ---- connections ---- */

static void conn_close(struct conn *conn)
{
    if (conn == NULL) {
        return;
    }
    for (int id = 0; id < ST_COUNT; id++) {
        /* finalize repeats the last step's error, already handled when it happened. */
        (void)sqlite3_finalize(conn->stmts[id]);
    }
    int code = sqlite3_close(conn->db);
    if (code != SQLITE_OK) {
        kp_log_warn("cannot close a store connection: %s", sqlite3_errstr(code));
    }
    free(conn);
}

static enum kp_result conn_exec(const struct sqlite_store *store, struct conn *conn,
                                const char *sql, const char *what, struct kp_error *err)
{
    int code = sqlite3_exec(conn->db, sql, NULL, NULL, NULL);
    if (code != SQLITE_OK) {
        return db_fail(store, conn->db, code, err, what);
    }
    return KP_OK;
}

/* One pragma that returns a single text or integer row, into out. */
static enum kp_result pragma_get(const struct sqlite_store *store, struct conn *conn,
                                 const char *sql, char *out, size_t size, struct kp_error *err)
{
    sqlite3_stmt *stmt = NULL;
    int code = sqlite3_prepare_v2(conn->db, sql, -1, &stmt, NULL);
    if (code != SQLITE_OK) {
        return db_fail(store, conn->db, code, err, sql);
    }
    enum kp_result rc = KP_OK;
    code = sqlite3_step(stmt);
    if (code == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(stmt, 0);
        snprintf(out, size, "%s", text != NULL ? (const char *)text : "");
    } else {
        rc = db_fail(store, conn->db, code, err, sql);
    }
    (void)sqlite3_finalize(stmt); /* its error, if any, is the step's, handled above */
    return rc;
}

static enum kp_result conn_open(const struct sqlite_store *store, bool reader, struct conn **out,
                                struct kp_error *err)
{
    *out = NULL;
    struct conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        return kp_error_set(err, KP_ERR_IO, "out of memory opening store '%s'", store->path);
    }
    /* NOMUTEX: each connection is used by one thread at a time (the writer under the write
     * lock, readers taken from the pool), so SQLite's own per-connection mutex is not needed. */
    int code =
        sqlite3_open_v2(store->path, &conn->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    enum kp_result rc = KP_OK;
    if (code != SQLITE_OK) {
        rc = db_fail(store, conn->db, code, err, "cannot open");
    }
    if (rc == KP_OK) {
        code = sqlite3_busy_timeout(conn->db, BUSY_TIMEOUT_MS);
        if (code != SQLITE_OK) {
            rc = db_fail(store, conn->db, code, err, "cannot set the busy timeout");
        }
    }
    if (rc == KP_OK) {
        /* The file is data, not code: no writes to the schema through SQL, no triggers or
         * views from a crafted file running with our rights. */
        code = sqlite3_db_config(conn->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        if (code == SQLITE_OK) {
            code = sqlite3_db_config(conn->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        }
        if (code != SQLITE_OK) {
            rc = db_fail(store, conn->db, code, err, "cannot configure the connection");
        }
    }
    if (rc == KP_OK) {
        rc = reader ? conn_exec(store, conn, "PRAGMA query_only = ON", "cannot set query_only", err)
                    : conn_exec(store, conn, "PRAGMA synchronous = FULL",
                                "cannot set synchronous = FULL", err);
    }
    if (rc != KP_OK) {
        conn_close(conn);
        return rc;
    }
    *out = conn;
    return KP_OK;
}

static enum kp_result reader_acquire(struct sqlite_store *store, struct conn **out,
                                     struct kp_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&store->pool_lock);
    while (store->idle == NULL && store->readers_open >= READERS_MAX) {
        pthread_cond_wait(&store->pool_idle, &store->pool_lock);
    }
    if (store->idle != NULL) {
        *out = store->idle;
        store->idle = store->idle->next_idle;
        pthread_mutex_unlock(&store->pool_lock);
        return KP_OK;
    }
    store->readers_open++;
    pthread_mutex_unlock(&store->pool_lock);
    enum kp_result rc = conn_open(store, true, out, err);
    if (rc != KP_OK) {
        pthread_mutex_lock(&store->pool_lock);
        store->readers_open--;
        pthread_cond_signal(&store->pool_idle);
        pthread_mutex_unlock(&store->pool_lock);
    }
    return rc;
}

static void reader_release(struct sqlite_store *store, struct conn *conn)
{
    if (conn == NULL) {
        return;
    }
    pthread_mutex_lock(&store->pool_lock);
    conn->next_idle = store->idle;
    store->idle = conn;
    pthread_cond_signal(&store->pool_idle);
    pthread_mutex_unlock(&store->pool_lock);
}

/* ---- reads ---- */

/* Runs statement `which` (a key and a revision as its parameters) to its first row: *stmt is
 * the statement to read and give back with stmt_done (NULL when it could not be had), *code
 * sqlite3_step's answer when rc is KP_OK. */
static enum kp_result step_key_at(const struct sqlite_store *store, struct conn *conn,
                                  enum stmt_id which, const char *key, int64_t revision,
                                  sqlite3_stmt **stmt, int *code, struct kp_error *err)
{
    *stmt = NULL;
    *code = SQLITE_OK;
    enum kp_result rc = stmt_get(store, conn, which, stmt, err);
    if (rc != KP_OK) {
        return rc;
    }
    if (bind_text(*stmt, 1, key) != SQLITE_OK ||
        sqlite3_bind_int64(*stmt, 2, revision) != SQLITE_OK) {
        return db_fail(store, conn->db, SQLITE_ERROR, err, "cannot bind a key");
    }
    *code = sqlite3_step(*stmt);
    return KP_OK;
}

/* The version of key at revision (INT64_MAX: the newest). *live false when there is none or it
 * is a deletion; kv filled only when live. */
static enum kp_result version_at(const struct sqlite_store *store, struct conn *conn,
                                 const char *key, int64_t revision, struct kp_store_kv *kv,
                                 bool *live, struct kp_error *err)
{
    *live = false;
    sqlite3_stmt *stmt = NULL;
    int code = SQLITE_OK;
    enum kp_result rc = step_key_at(store, conn, ST_VERSION_AT, key, revision, &stmt, &code, err);
    if (rc == KP_OK && code == SQLITE_ROW) {
        const char *value = NULL;
        size_t value_len = 0;
        bool deleted = false;
        rc = column_value(store, conn, stmt, 2, &value, &value_len, &deleted, err);
        if (rc == KP_OK && !deleted) {
            rc = kp_store_kv_set(kv, key, value, value_len, sqlite3_column_int64(stmt, 0),
                                 sqlite3_column_int64(stmt, 1), err);
            *live = rc == KP_OK;
        }
    } else if (rc == KP_OK && code != SQLITE_DONE) {
        rc = db_fail(store, conn->db, code, err, "cannot read a key");
    }
    stmt_done(stmt);
    return rc;
}

/* The newest version's revisions without its value. *live false when absent or deleted. */
static enum kp_result head_of(const struct sqlite_store *store, struct conn *conn, const char *key,
                              int64_t revision, int64_t *create_revision, int64_t *mod_revision,
                              bool *live, struct kp_error *err)
{
    *live = false;
    *create_revision = 0;
    *mod_revision = 0;
    sqlite3_stmt *stmt = NULL;
    int code = SQLITE_OK;
    enum kp_result rc = step_key_at(store, conn, ST_HEAD_AT, key, revision, &stmt, &code, err);
    if (rc == KP_OK && code == SQLITE_ROW) {
        *create_revision = sqlite3_column_int64(stmt, 0);
        *mod_revision = sqlite3_column_int64(stmt, 1);
        *live = sqlite3_column_int(stmt, 2) == 0;
    } else if (rc == KP_OK && code != SQLITE_DONE) {
        rc = db_fail(store, conn->db, code, err, "cannot read a key");
    }
    stmt_done(stmt);
    return rc;
}

static enum kp_result sqlite_get(void *backend, const char *key, struct kp_store_kv *out,
                                 struct kp_error *err)
{
    struct sqlite_store *store = backend;
    struct conn *conn = NULL;
    enum kp_result rc = reader_acquire(store, &conn, err);
    bool live = false;
    if (rc == KP_OK) {
        /* One statement: its own snapshot. */
        rc = version_at(store, conn, key, INT64_MAX, out, &live, err);
    }
    reader_release(store, conn);
    if (rc == KP_OK && !live) {
        rc = kp_error_set(err, KP_ERR_NOT_FOUND, "store key '%.*s' not found", shown(key), key);
    }
    return rc;
}

/* The next key of [from, end) (inclusive) or (from, end) into next (KP_STORE_KEY_MAX + 1
 * bytes); *found false at the end. */
static enum kp_result next_key(const struct sqlite_store *store, struct conn *conn,
                               const char *from, bool inclusive, const char *end, char *next,
                               bool *found, struct kp_error *err)
{
    *found = false;
    sqlite3_stmt *stmt = NULL;
    enum kp_result rc = stmt_get(store, conn, inclusive ? ST_KEY_FROM : ST_KEY_AFTER, &stmt, err);
    if (rc != KP_OK) {
        return rc;
    }
    if (bind_text(stmt, 1, from) != SQLITE_OK || bind_text(stmt, 2, end) != SQLITE_OK) {
        rc = db_fail(store, conn->db, SQLITE_ERROR, err, "cannot bind a key");
    }
    int code = rc == KP_OK ? sqlite3_step(stmt) : SQLITE_OK;
    if (rc == KP_OK && code == SQLITE_ROW) {
        const unsigned char *key = sqlite3_column_text(stmt, 0);
        int key_len = sqlite3_column_bytes(stmt, 0);
        if (key == NULL) {
            rc = db_fail(store, conn->db, SQLITE_NOMEM, err, "cannot read a key");
        } else if (key_len == 0 || key_len > KP_STORE_KEY_MAX) {
            rc = kp_error_set(err, KP_ERR_IO, "store '%s': corrupt: a key of %d bytes", store->path,
                              key_len);
        } else {
            memcpy(next, key, (size_t)key_len + 1);
            *found = true;
        }
    } else if (rc == KP_OK && code != SQLITE_DONE) {
        rc = db_fail(store, conn->db, code, err, "cannot list keys");
    }
    stmt_done(stmt);
    return rc;
}

static enum kp_result list_append(struct kp_store_list *out, size_t *capacity,
                                  struct kp_store_kv *kv, struct kp_error *err)
{
    if (out->count == *capacity) {
        size_t grown = *capacity == 0 ? 16 : *capacity * 2;
        struct kp_store_kv *items = realloc(out->items, grown * sizeof(*items));
        if (items == NULL) {
            return kp_error_set(err, KP_ERR_IO, "out of memory listing %zu keys", grown);
        }
        out->items = items;
        *capacity = grown;
    }
    out->items[out->count++] = *kv;
    memset(kv, 0, sizeof(*kv));
    return KP_OK;
}

/* Walks the keys of the prefix after start_after, one seek per key (ST_KEY_*) and one per
 * version (ST_VERSION_AT), so a page costs O(keys visited), not O(versions). */
static enum kp_result list_keys(const struct sqlite_store *store, struct conn *conn,
                                const char *prefix, const char *start_after, size_t limit,
                                int64_t revision, struct kp_store_list *out, struct kp_error *err)
{
    char end_buffer[KP_STORE_KEY_MAX + 1];
    const char *end = prefix_end(prefix, end_buffer, sizeof(end_buffer));
    char cursor[KP_STORE_KEY_MAX + 1];
    bool inclusive = start_after == NULL || strcmp(start_after, prefix) < 0;
    snprintf(cursor, sizeof(cursor), "%s", inclusive ? prefix : start_after);
    size_t capacity = 0;
    size_t bytes = 0;
    enum kp_result rc = KP_OK;
    for (;;) {
        bool found = false;
        char next[KP_STORE_KEY_MAX + 1];
        rc = next_key(store, conn, cursor, inclusive, end, next, &found, err);
        if (rc != KP_OK || !found) {
            break;
        }
        memcpy(cursor, next, strlen(next) + 1);
        inclusive = false;
        if (out->count == limit || bytes >= KP_STORE_LIST_BYTES_MAX) {
            /* Full: is there one more live key? (Its value is not needed.) */
            int64_t create_revision = 0, mod_revision = 0;
            bool live = false;
            rc =
                head_of(store, conn, cursor, revision, &create_revision, &mod_revision, &live, err);
            if (rc != KP_OK || live) {
                out->more = live;
                break;
            }
            continue;
        }
        struct kp_store_kv kv;
        memset(&kv, 0, sizeof(kv));
        bool live = false;
        rc = version_at(store, conn, cursor, revision, &kv, &live, err);
        if (rc == KP_OK && live) {
            bytes += kv.value_len;
            rc = list_append(out, &capacity, &kv, err);
        }
        kp_store_kv_wipe(&kv);
        if (rc != KP_OK) {
            break;
        }
    }
    return rc;
}

static enum kp_result sqlite_list(void *backend, const char *prefix, const char *start_after,
                                  size_t limit, int64_t revision, struct kp_store_list *out,
                                  struct kp_error *err)
{
    struct sqlite_store *store = backend;
    struct conn *conn = NULL;
    enum kp_result rc = reader_acquire(store, &conn, err);
    if (rc != KP_OK) {
        return rc;
    }
    int64_t current = 0, compacted = 0;
    rc = exec_stmt(store, conn, ST_BEGIN, "cannot begin a read", err);
    if (rc == KP_OK) {
        rc = read_meta(store, conn, &current, &compacted, err);
    }
    if (rc == KP_OK && revision > current) {
        rc = kp_error_set(err, KP_ERR_INVALID,
                          "cannot list '%.*s' at revision %lld: the current revision is %lld",
                          shown(prefix), prefix, (long long)revision, (long long)current);
    }
    if (rc == KP_OK && revision != 0 && revision < compacted) {
        rc = kp_error_set(err, KP_ERR_EXPIRED,
                          "cannot list '%.*s' at revision %lld: history before revision %lld "
                          "has been compacted",
                          shown(prefix), prefix, (long long)revision, (long long)compacted);
    }
    if (rc == KP_OK) {
        out->revision = revision != 0 ? revision : current;
        rc = list_keys(store, conn, prefix, start_after, limit, out->revision, out, err);
    }
    if (rc == KP_OK) {
        rc = exec_stmt(store, conn, ST_COMMIT, "cannot end a read", err);
    }
    if (rc != KP_OK) {
        rollback(store, conn);
        kp_store_list_wipe(out);
    }
    reader_release(store, conn);
    return rc;
}

/* One history row as an event. */
static enum kp_result history_event(const struct sqlite_store *store, struct conn *conn,
                                    sqlite3_stmt *stmt, struct kp_store_event *event,
                                    struct kp_error *err)
{
    int64_t revision = sqlite3_column_int64(stmt, 0);
    const char *key = (const char *)sqlite3_column_text(stmt, 1);
    int64_t create_revision = sqlite3_column_int64(stmt, 2);
    if (key == NULL) {
        return db_fail(store, conn->db, SQLITE_NOMEM, err, "cannot read history");
    }
    const char *value = NULL;
    size_t value_len = 0;
    bool deleted = false;
    enum kp_result rc = column_value(store, conn, stmt, 3, &value, &value_len, &deleted, err);
    if (rc != KP_OK) {
        return rc;
    }
    /* The version this change replaced (kept by compaction, see the notes). Reading it uses
     * another statement on this connection, which leaves this row's column pointers valid. */
    struct kp_store_kv before;
    memset(&before, 0, sizeof(before));
    bool had_before = false;
    if (deleted || create_revision != revision) {
        rc = version_at(store, conn, key, revision - 1, &before, &had_before, err);
        if (rc != KP_OK) {
            return rc;
        }
    }
    if (deleted) {
        if (!had_before) {
            return kp_error_set(err, KP_ERR_INTERNAL,
                                "store '%s': history of key '%.*s' lacks the version deleted at "
                                "revision %lld",
                                store->path, shown(key), key, (long long)revision);
        }
        event->type = KP_STORE_DELETE;
        event->kv = before;
        event->kv.mod_revision = revision;
        return KP_OK;
    }
    event->type = KP_STORE_PUT;
    rc = kp_store_kv_set(&event->kv, key, value, value_len, create_revision, revision, err);
    if (rc != KP_OK) {
        kp_store_kv_wipe(&before);
        return rc;
    }
    if (had_before) {
        event->prev = before;
    }
    return KP_OK;
}

static enum kp_result sqlite_history(void *backend, const char *prefix, int64_t after,
                                     int64_t up_to, size_t max_events, kp_store_watch_fn callback,
                                     void *context, int64_t *scanned_to, struct kp_error *err)
{
    struct sqlite_store *store = backend;
    struct conn *conn = NULL;
    enum kp_result rc = reader_acquire(store, &conn, err);
    if (rc != KP_OK) {
        return rc;
    }
    int64_t current = 0, compacted = 0;
    sqlite3_stmt *stmt = NULL;
    rc = exec_stmt(store, conn, ST_BEGIN, "cannot begin a read", err);
    if (rc == KP_OK) {
        rc = read_meta(store, conn, &current, &compacted, err);
    }
    if (rc == KP_OK && compacted > after + 1) {
        rc = kp_error_set(err, KP_ERR_EXPIRED,
                          "cannot watch '%.*s' from revision %lld: history before revision %lld "
                          "has been compacted",
                          shown(prefix), prefix, (long long)after, (long long)compacted);
    }
    if (rc == KP_OK && up_to > current) {
        rc = kp_error_set(err, KP_ERR_INTERNAL,
                          "store '%s': history asked up to revision %lld, past the current %lld",
                          store->path, (long long)up_to, (long long)current);
    }
    if (rc == KP_OK) {
        rc = stmt_get(store, conn, ST_HISTORY, &stmt, err);
    }
    char end_buffer[KP_STORE_KEY_MAX + 1];
    const char *end = prefix_end(prefix, end_buffer, sizeof(end_buffer));
    if (rc == KP_OK &&
        (sqlite3_bind_int64(stmt, 1, after) != SQLITE_OK ||
         sqlite3_bind_int64(stmt, 2, up_to) != SQLITE_OK ||
         bind_text(stmt, 3, prefix) != SQLITE_OK || bind_text(stmt, 4, end) != SQLITE_OK ||
         sqlite3_bind_int64(stmt, 5, (sqlite3_int64)max_events) != SQLITE_OK)) {
        rc = db_fail(store, conn->db, SQLITE_ERROR, err, "cannot bind history bounds");
    }
    size_t delivered = 0;
    int64_t last = after;
    while (rc == KP_OK) {
        int code = sqlite3_step(stmt);
        if (code == SQLITE_DONE) {
            break;
        }
        if (code != SQLITE_ROW) {
            rc = db_fail(store, conn->db, code, err, "cannot read history");
            break;
        }
        struct kp_store_event event;
        memset(&event, 0, sizeof(event));
        rc = history_event(store, conn, stmt, &event, err);
        if (rc == KP_OK) {
            callback(context, &event);
            delivered++;
            last = event.kv.mod_revision;
        }
        kp_store_event_wipe(&event);
    }
    stmt_done(stmt);
    if (rc == KP_OK) {
        rc = exec_stmt(store, conn, ST_COMMIT, "cannot end a read", err);
    }
    if (rc != KP_OK) {
        rollback(store, conn);
    } else {
        *scanned_to = delivered == max_events ? last : up_to;
    }
    reader_release(store, conn);
    return rc;
}

/* ---- writes (under the front's write lock) ---- */

static enum kp_result write_begin(struct sqlite_store *store, int64_t *next_revision,
                                  struct kp_error *err)
{
    struct conn *conn = store->writer;
    int64_t current = 0, compacted = 0;
    enum kp_result rc = exec_stmt(store, conn, ST_BEGIN_IMMEDIATE, "cannot begin a write", err);
    if (rc == KP_OK) {
        rc = read_meta(store, conn, &current, &compacted, err);
    }
    *next_revision = current + 1;
    return rc;
}

/* Inserts the history row and moves meta.revision. `deletion` writes a deletion marker (SQL
 * NULL); otherwise value (maybe NULL when value_len is 0) is written as a BLOB. */
static enum kp_result write_row(struct sqlite_store *store, int64_t revision, const char *key,
                                int64_t create_revision, bool deletion, const char *value,
                                size_t value_len, struct kp_error *err)
{
    struct conn *conn = store->writer;
    sqlite3_stmt *stmt = NULL;
    enum kp_result rc = stmt_get(store, conn, ST_INSERT, &stmt, err);
    if (rc != KP_OK) {
        return rc;
    }
    int code = sqlite3_bind_int64(stmt, 1, revision);
    if (code == SQLITE_OK) {
        code = bind_text(stmt, 2, key);
    }
    if (code == SQLITE_OK) {
        code = sqlite3_bind_int64(stmt, 3, create_revision);
    }
    if (code == SQLITE_OK) {
        code = deletion ? sqlite3_bind_null(stmt, 4) : bind_value(stmt, 4, value, value_len);
    }
    if (code == SQLITE_OK) {
        code = sqlite3_step(stmt);
    }
    if (code != SQLITE_DONE) {
        rc = db_fail(store, conn->db, code, err, "cannot write history");
    }
    stmt_done(stmt);
    if (rc != KP_OK) {
        return rc;
    }
    rc = stmt_get(store, conn, ST_SET_REVISION, &stmt, err);
    if (rc != KP_OK) {
        return rc;
    }
    code = sqlite3_bind_int64(stmt, 1, revision);
    if (code == SQLITE_OK) {
        code = sqlite3_step(stmt);
    }
    if (code != SQLITE_DONE) {
        rc = db_fail(store, conn->db, code, err, "cannot write the revision");
    } else if (sqlite3_changes(conn->db) != 1) {
        rc = kp_error_set(err, KP_ERR_IO, "store '%s': the meta row is missing", store->path);
    }
    stmt_done(stmt);
    return rc;
}

/* Commits; on success the new revision becomes visible to kp_store_revision. */
static enum kp_result write_commit(struct sqlite_store *store, int64_t revision,
                                   struct kp_error *err)
{
    enum kp_result rc = exec_stmt(store, store->writer, ST_COMMIT, "cannot commit", err);
    if (rc == KP_OK) {
        atomic_store(&store->revision, revision);
    }
    return rc;
}

static enum kp_result sqlite_create(void *backend, const char *key, const char *value,
                                    size_t value_len, int64_t *revision,
                                    struct kp_store_event *event, struct kp_error *err)
{
    struct sqlite_store *store = backend;
    int64_t next = 0, create_revision = 0, mod_revision = 0;
    bool live = false;
    enum kp_result rc = write_begin(store, &next, err);
    if (rc == KP_OK) {
        rc = head_of(store, store->writer, key, INT64_MAX, &create_revision, &mod_revision, &live,
                     err);
    }
    if (rc == KP_OK && live) {
        rc = kp_error_set(err, KP_ERR_CONFLICT,
                          "store key '%.*s' already exists (mod revision %lld)", shown(key), key,
                          (long long)mod_revision);
    }
    if (rc == KP_OK) {
        rc = write_row(store, next, key, next, false, value, value_len, err);
    }
    /* The event is built before the commit: once committed it must be deliverable. */
    if (rc == KP_OK && event != NULL) {
        event->type = KP_STORE_PUT;
        rc = kp_store_kv_set(&event->kv, key, value, value_len, next, next, err);
    }
    if (rc == KP_OK) {
        rc = write_commit(store, next, err);
    }
    if (rc != KP_OK) {
        rollback(store, store->writer);
        kp_store_event_wipe(event);
        return rc;
    }
    *revision = next;
    return KP_OK;
}

/* Checks that key exists with the expected mod revision (0: any), inside the write. */
static enum kp_result check_expected(struct sqlite_store *store, const char *key,
                                     int64_t expected_mod_revision, int64_t *create_revision,
                                     int64_t *mod_revision, struct kp_error *err)
{
    bool live = false;
    enum kp_result rc =
        head_of(store, store->writer, key, INT64_MAX, create_revision, mod_revision, &live, err);
    if (rc != KP_OK) {
        return rc;
    }
    if (!live) {
        return kp_error_set(err, KP_ERR_NOT_FOUND, "store key '%.*s' not found", shown(key), key);
    }
    if (expected_mod_revision != 0 && *mod_revision != expected_mod_revision) {
        return kp_error_set(
            err, KP_ERR_CONFLICT, "store key '%.*s' has mod revision %lld, not the expected %lld",
            shown(key), key, (long long)*mod_revision, (long long)expected_mod_revision);
    }
    return KP_OK;
}

/* The value of the version written at revision (inside the write). */
static enum kp_result read_value(struct sqlite_store *store, const char *key, int64_t revision,
                                 int64_t create_revision, struct kp_store_kv *kv,
                                 struct kp_error *err)
{
    struct conn *conn = store->writer;
    sqlite3_stmt *stmt = NULL;
    enum kp_result rc = stmt_get(store, conn, ST_VALUE, &stmt, err);
    if (rc != KP_OK) {
        return rc;
    }
    int code = sqlite3_bind_int64(stmt, 1, revision);
    if (code == SQLITE_OK) {
        code = sqlite3_step(stmt);
    }
    if (code == SQLITE_ROW) {
        const char *value = NULL;
        size_t value_len = 0;
        bool is_null = false;
        rc = column_value(store, conn, stmt, 0, &value, &value_len, &is_null, err);
        if (rc == KP_OK) {
            rc = kp_store_kv_set(kv, key, value, value_len, create_revision, revision, err);
        }
    } else {
        rc = db_fail(store, conn->db, code, err, "cannot read the previous value");
    }
    stmt_done(stmt);
    return rc;
}

static enum kp_result sqlite_update(void *backend, const char *key, const char *value,
                                    size_t value_len, int64_t expected_mod_revision,
                                    int64_t *revision, struct kp_store_event *event,
                                    struct kp_error *err)
{
    struct sqlite_store *store = backend;
    int64_t next = 0, create_revision = 0, mod_revision = 0;
    enum kp_result rc = write_begin(store, &next, err);
    if (rc == KP_OK) {
        rc =
            check_expected(store, key, expected_mod_revision, &create_revision, &mod_revision, err);
    }
    if (rc == KP_OK && event != NULL) {
        event->type = KP_STORE_PUT;
        rc = read_value(store, key, mod_revision, create_revision, &event->prev, err);
        if (rc == KP_OK) {
            rc = kp_store_kv_set(&event->kv, key, value, value_len, create_revision, next, err);
        }
    }
    if (rc == KP_OK) {
        rc = write_row(store, next, key, create_revision, false, value, value_len, err);
    }
    if (rc == KP_OK) {
        rc = write_commit(store, next, err);
    }
    if (rc != KP_OK) {
        rollback(store, store->writer);
        kp_store_event_wipe(event);
        return rc;
    }
    *revision = next;
    return KP_OK;
}

static enum kp_result sqlite_delete(void *backend, const char *key, int64_t expected_mod_revision,
                                    int64_t *revision, struct kp_store_event *event,
                                    struct kp_error *err)
{
    struct sqlite_store *store = backend;
    int64_t next = 0, create_revision = 0, mod_revision = 0;
    enum kp_result rc = write_begin(store, &next, err);
    if (rc == KP_OK) {
        rc =
            check_expected(store, key, expected_mod_revision, &create_revision, &mod_revision, err);
    }
    if (rc == KP_OK && event != NULL) {
        event->type = KP_STORE_DELETE;
        rc = read_value(store, key, mod_revision, create_revision, &event->kv, err);
        event->kv.mod_revision = next;
    }
    if (rc == KP_OK) {
        rc = write_row(store, next, key, create_revision, true, NULL, 0, err);
    }
    if (rc == KP_OK) {
        rc = write_commit(store, next, err);
    }
    if (rc != KP_OK) {
        rollback(store, store->writer);
        kp_store_event_wipe(event);
        return rc;
    }
    *revision = next;
    return KP_OK;
}

static enum kp_result sqlite_compact(void *backend, int64_t revision, struct kp_error *err)
{
    struct sqlite_store *store = backend;
    struct conn *conn = store->writer;
    int64_t next = 0;
    enum kp_result rc = write_begin(store, &next, err);
    enum stmt_id steps[] = {ST_COMPACT, ST_SET_COMPACTED};
    for (size_t i = 0; rc == KP_OK && i < sizeof(steps) / sizeof(steps[0]); i++) {
        sqlite3_stmt *stmt = NULL;
        rc = stmt_get(store, conn, steps[i], &stmt, err);
        if (rc != KP_OK) {
            break;
        }
        int code = sqlite3_bind_int64(stmt, 1, revision);
        if (code == SQLITE_OK) {
            code = sqlite3_step(stmt);
        }
        if (code != SQLITE_DONE) {
            rc = db_fail(store, conn->db, code, err, "cannot compact");
        }
        stmt_done(stmt);
    }
    if (rc == KP_OK) {
        rc = exec_stmt(store, conn, ST_COMMIT, "cannot commit the compaction", err);
    }
    if (rc != KP_OK) {
        rollback(store, conn);
        return rc;
    }
    atomic_store(&store->compacted, revision);
    return KP_OK;
}

/* ---- open and close ---- */

static int64_t sqlite_revision(void *backend)
{
    struct sqlite_store *store = backend;
    return atomic_load(&store->revision);
}

static int64_t sqlite_compacted(void *backend)
{
    struct sqlite_store *store = backend;
    return atomic_load(&store->compacted);
}

static void sqlite_close(void *backend)
{
    struct sqlite_store *store = backend;
    if (store == NULL) {
        return;
    }
    while (store->idle != NULL) {
        struct conn *conn = store->idle;
        store->idle = conn->next_idle;
        conn_close(conn);
    }
    /* The last connection to close checkpoints the WAL into the database and removes it. */
    conn_close(store->writer);
    if (store->lock_fd >= 0) {
        close(store->lock_fd); /* releases the flock */
    }
    pthread_mutex_destroy(&store->pool_lock);
    pthread_cond_destroy(&store->pool_idle);
    free(store->path);
    free(store);
}

static const struct kp_store_ops sqlite_ops = {
    .name = "sqlite",
    .revision = sqlite_revision,
    .compacted = sqlite_compacted,
    .get = sqlite_get,
    .list = sqlite_list,
    .create = sqlite_create,
    .update = sqlite_update,
    .delete_key = sqlite_delete,
    .compact = sqlite_compact,
    .history = sqlite_history,
    .close = sqlite_close,
};

/* Takes the one-process lock and makes sure the database file exists with mode 0600 (SQLite
 * would create it 0644, and gives its -wal and -shm files the database's mode): the store holds
 * Secrets. */
static enum kp_result lock_and_create(struct sqlite_store *store, struct kp_error *err)
{
    char lock_path[4096];
    int written = snprintf(lock_path, sizeof(lock_path), "%s-lock", store->path);
    if (written < 0 || (size_t)written >= sizeof(lock_path)) {
        return kp_error_set(err, KP_ERR_INVALID, "store path '%.*s' is too long",
                            shown(store->path), store->path);
    }
    store->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (store->lock_fd < 0) {
        return kp_error_errno(err, errno, "cannot open store lock '%s'", lock_path);
    }
    if (flock(store->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            return kp_error_set(err, KP_ERR_CONFLICT,
                                "store '%s' is already open (in this or another process)",
                                store->path);
        }
        return kp_error_errno(err, errno, "cannot lock store '%s'", lock_path);
    }
    /* Safe to open and close: holding the lock, no connection of ours has the file open. */
    int fd = open(store->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return kp_error_errno(err, errno, "cannot open store '%s'", store->path);
    }
    close(fd);
    return KP_OK;
}

/* Checks that the file is an empty database or a kpki store of a version we know (before
 * changing anything, so a foreign database is left as it was), switches to WAL, and creates the
 * schema in an empty one. The one-process lock is held, so nobody creates it meanwhile. */
static enum kp_result prepare_database(struct sqlite_store *store, struct kp_error *err)
{
    struct conn *conn = store->writer;
    char application_id[32] = "", user_version[32] = "", tables[32] = "", mode[32] = "";
    enum kp_result rc = pragma_get(store, conn, "PRAGMA application_id", application_id,
                                   sizeof(application_id), err);
    if (rc == KP_OK) {
        rc =
            pragma_get(store, conn, "PRAGMA user_version", user_version, sizeof(user_version), err);
    }
    if (rc == KP_OK) {
        rc = pragma_get(store, conn, "SELECT count(*) FROM sqlite_schema", tables, sizeof(tables),
                        err);
    }
    if (rc != KP_OK) {
        return rc;
    }
    long long id = strtoll(application_id, NULL, 10);
    long long version = strtoll(user_version, NULL, 10);
    bool empty = strcmp(tables, "0") == 0 && id == 0 && version == 0;
    if (!empty && id != APPLICATION_ID) {
        return kp_error_set(err, KP_ERR_INVALID, "'%s' is an SQLite database but not a kpki store",
                            store->path);
    }
    if (!empty && version != SCHEMA_VERSION) {
        return kp_error_set(err, KP_ERR_INVALID,
                            "store '%s' has schema version %lld; this kpki reads version %d",
                            store->path, version, SCHEMA_VERSION);
    }
    rc = pragma_get(store, conn, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err);
    if (rc == KP_OK && strcmp(mode, "wal") != 0) {
        rc = kp_error_set(err, KP_ERR_IO, "store '%s': cannot switch to WAL mode (got '%s')",
                          store->path, mode);
    }
    if (rc == KP_OK) {
        rc = conn_exec(store, conn, "PRAGMA journal_size_limit = " JOURNAL_SIZE_LIMIT,
                       "cannot set journal_size_limit", err);
    }
    if (rc != KP_OK || !empty) {
        return rc;
    }
    char pragmas[128];
    snprintf(pragmas, sizeof(pragmas), "PRAGMA application_id = %d; PRAGMA user_version = %d",
             APPLICATION_ID, SCHEMA_VERSION);
    rc = exec_stmt(store, conn, ST_BEGIN_IMMEDIATE, "cannot begin", err);
    if (rc == KP_OK) {
        rc = conn_exec(store, conn, schema_sql, "cannot create the schema", err);
    }
    if (rc == KP_OK) {
        rc = conn_exec(store, conn, pragmas, "cannot mark the schema", err);
    }
    if (rc == KP_OK) {
        rc = exec_stmt(store, conn, ST_COMMIT, "cannot commit the schema", err);
    }
    if (rc != KP_OK) {
        rollback(store, conn);
    }
    return rc;
}

enum kp_result kp_store_open_sqlite(const char *path, struct kp_store **out, struct kp_error *err)
{
    if (out == NULL) {
        return kp_error_set(err, KP_ERR_INVALID, "kp_store_open_sqlite: no output given");
    }
    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        return kp_error_set(err, KP_ERR_INVALID, "no store path given");
    }
    if (sqlite3_threadsafe() == 0) {
        return kp_error_set(err, KP_ERR_INTERNAL, "SQLite was built without thread support");
    }
    pthread_once(&key_ceiling_once, key_ceiling_init);
    struct sqlite_store *store = calloc(1, sizeof(*store));
    char *path_copy = strdup(path);
    if (store == NULL || path_copy == NULL) {
        free(store);
        free(path_copy);
        return kp_error_set(err, KP_ERR_IO, "out of memory opening store '%s'", path);
    }
    store->path = path_copy;
    store->lock_fd = -1;
    pthread_mutex_init(&store->pool_lock, NULL);
    pthread_cond_init(&store->pool_idle, NULL);

    enum kp_result rc = lock_and_create(store, err);
    if (rc == KP_OK) {
        rc = conn_open(store, false, &store->writer, err);
    }
    if (rc == KP_OK) {
        rc = prepare_database(store, err);
    }
    int64_t revision = 0, compacted = 0;
    if (rc == KP_OK) {
        rc = read_meta(store, store->writer, &revision, &compacted, err);
    }
    if (rc == KP_OK) {
        atomic_store(&store->revision, revision);
        atomic_store(&store->compacted, compacted);
        rc = kp_store_new(&sqlite_ops, store, out, err);
    }
    if (rc != KP_OK) {
        sqlite_close(store);
    }
    return rc;
}
