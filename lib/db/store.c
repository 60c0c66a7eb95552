/* Opening and migrating the store; shared find-or-add helpers. */
#include "db/store.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/hash.h"
#include "db/migrations.h"

const char *store_default_path(const char *opt)
{
    const char *env = getenv("XFER_DB");
    if (opt && *opt)
        return opt;
    if (env && *env)
        return env;
    return XFER_DEFAULT_DB;
}

int store_fail(Store *st, XErr *e, const char *what)
{
    return xerr_set(e, XE_FAIL, "database '%s': %s: %s", st->path ? st->path : "?", what,
                    st->db ? sqlite3_errmsg(st->db) : "not open");
}

int store_exec(Store *st, const char *sql, XErr *e)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        xerr_set(e, XE_FAIL, "database '%s': %s", st->path, msg ? msg : "error");
        sqlite3_free(msg);
        return XE_FAIL;
    }
    return XE_OK;
}

int store_begin(Store *st, XErr *e)
{
    return store_exec(st, "BEGIN IMMEDIATE", e);
}

int store_commit(Store *st, XErr *e)
{
    return store_exec(st, "COMMIT", e);
}

void store_rollback(Store *st)
{
    if (st->db && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_prepare(Store *st, sqlite3_stmt **stmt, const char *sql, XErr *e)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return store_fail(st, e, "prepare");
    return XE_OK;
}

int store_schema_version(Store *st)
{
    sqlite3_stmt *q;
    int v = -1;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return v;
}

static int migrate(Store *st, XErr *e)
{
    int have = store_schema_version(st);
    if (have < 0)
        return store_fail(st, e, "reading schema version");
    if (have > store_migration_count)
        return xerr_set(e, XE_FAIL,
                        "database '%s': schema version %d is newer than this build's %d: "
                        "upgrade xfernas",
                        st->path, have, store_migration_count);
    for (int i = have; i < store_migration_count; i++) {
        const StoreMigration *m = &store_migrations[i];
        char pragma[64];
        if (store_begin(st, e))
            return e->code;
        /* Another process may have migrated while we waited for the lock. */
        if (store_schema_version(st) > i) {
            store_rollback(st);
            continue;
        }
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
        if (store_exec(st, m->sql, e) || store_exec(st, pragma, e) || store_commit(st, e)) {
            store_rollback(st);
            xerr_prefix(e, "migration %s: ", m->name);
            return XE_FAIL;
        }
    }
    return XE_OK;
}

int store_open(Store *st, const char *path, int create, XErr *e)
{
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    memset(st, 0, sizeof *st);
    st->path = strdup(path);
    if (!st->path)
        return xerr_set(e, XE_FAIL, "out of memory");
    if (access(path, F_OK) != 0) {
        if (!create) {
            xerr_set(e, XE_FAIL, "database '%s': %s", path, strerror(errno));
            store_close(st);
            return XE_FAIL;
        }
        st->created = 1;
    }
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        store_fail(st, e, "cannot open");
        store_abandon(st);
        return XE_FAIL;
    }
    sqlite3_busy_timeout(st->db, XFER_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(st->db, 1);
    if (store_exec(st, "PRAGMA foreign_keys = ON", e) ||
        store_exec(st, "PRAGMA journal_mode = WAL", e) ||
        store_exec(st, "PRAGMA synchronous = NORMAL", e)) {
        xerr_prefix(e, "not an xfernas database? ");
        store_abandon(st);
        return XE_FAIL;
    }
    if (migrate(st, e)) {
        store_abandon(st);
        return XE_FAIL;
    }
    return XE_OK;
}

void store_close(Store *st)
{
    if (st->db)
        sqlite3_close(st->db);
    free(st->path);
    memset(st, 0, sizeof *st);
}

void store_abandon(Store *st)
{
    int created = st->created;
    char *path = st->path ? strdup(st->path) : NULL;
    store_rollback(st);
    store_close(st);
    if (created && path) {
        static const char *suffix[] = { "", "-wal", "-shm", "-journal" };
        char buf[4096];
        for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
            snprintf(buf, sizeof buf, "%s%s", path, suffix[i]);
            unlink(buf);
        }
    }
    free(path);
}

char *store_data_dir(const Store *st)
{
    size_t n = strlen(st->path) + 8;
    char *d = malloc(n);
    if (d)
        snprintf(d, n, "%s.tasks", st->path);
    return d;
}

static int find_id(Store *st, sqlite3_stmt *q, int64_t *id, XErr *e)
{
    int rc = sqlite3_step(q);
    *id = 0;
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(q, 0);
    else if (rc != SQLITE_DONE)
        return store_fail(st, e, "query");
    return XE_OK;
}

int store_arch_id(Store *st, const char *space, const char *arch, const char *hash,
                  int64_t *id, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc = store_prepare(st, &q,
                           "INSERT INTO archs (space, arch, hash) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT (space, arch) DO UPDATE SET hash = hash "
                           "RETURNING id",
                           e);
    if (rc)
        return rc;
    sqlite3_bind_text(q, 1, space, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, arch, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, hash, -1, SQLITE_STATIC);
    rc = find_id(st, q, id, e);
    sqlite3_finalize(q);
    return rc;
}

int store_recipe_hash(const char *recipe_json, char **canon, char hash[65], XErr *e)
{
    json_error_t jerr;
    json_t *recipe = json_loads(recipe_json, 0, &jerr);
    if (!recipe || !json_is_object(recipe)) {
        json_decref(recipe);
        return xerr_set(e, XE_FAIL, "recipe is not a JSON object");
    }
    *canon = json_dumps(recipe, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(recipe);
    if (!*canon)
        return xerr_set(e, XE_FAIL, "out of memory");
    sha256_hex(*canon, strlen(*canon), hash);
    return XE_OK;
}

int store_protocol_id(Store *st, const char *name, const char *recipe_json, int64_t *id,
                      XErr *e)
{
    char *canon = NULL, hash[65];
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_recipe_hash(recipe_json, &canon, hash, e)) {
        xerr_prefix(e, "protocol '%s': ", name);
        return e->code;
    }
    rc = store_prepare(st, &q,
                       "INSERT INTO protocols (name, hash, recipe) VALUES (?1, ?2, ?3) "
                       "ON CONFLICT (hash) DO UPDATE SET hash = hash RETURNING id",
                       e);
    if (rc == XE_OK) {
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, canon, -1, SQLITE_STATIC);
        rc = find_id(st, q, id, e);
    }
    sqlite3_finalize(q);
    free(canon);
    return rc;
}

int store_dataset_find(Store *st, const char *name, int64_t *id, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc = store_prepare(st, &q, "SELECT id FROM datasets WHERE name = ?1", e);
    if (rc)
        return rc;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    rc = find_id(st, q, id, e);
    sqlite3_finalize(q);
    return rc;
}
