/* The SQLite metadata store: opening (WAL, foreign keys, busy timeout,
 * migrations from schema/ inside a transaction) and the small helpers every
 * tool shares to find or add archs, protocols and datasets. */
#ifndef XFER_STORE_H
#define XFER_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/err.h"

typedef struct Store {
    sqlite3 *db;
    char *path;      /* the database file */
    int created;     /* this open created the file */
} Store;

/* Path from --db, else $XFER_DB, else XFER_DEFAULT_DB. */
const char *store_default_path(const char *opt);

/* Opens (create=1: creating if missing) and migrates to the newest schema.
 * A database newer than this build is refused. */
int store_open(Store *st, const char *path, int create, XErr *e);
void store_close(Store *st);
/* After a failure: closes, and deletes the files if this open created them,
 * so a failed first command leaves nothing behind. */
void store_abandon(Store *st);

int store_exec(Store *st, const char *sql, XErr *e);
int store_begin(Store *st, XErr *e);      /* BEGIN IMMEDIATE */
int store_commit(Store *st, XErr *e);
void store_rollback(Store *st);
int store_prepare(Store *st, sqlite3_stmt **stmt, const char *sql, XErr *e);
/* Error message for the last failed call, "database 'path': ..." */
int store_fail(Store *st, XErr *e, const char *what);

int store_schema_version(Store *st);

/* Directory that holds stored task files: "<database>.tasks". Caller frees. */
char *store_data_dir(const Store *st);

/* Finds or adds; ids out. */
int store_arch_id(Store *st, const char *space, const char *arch, const char *hash,
                  int64_t *id, XErr *e);
/* A protocol recipe (a JSON object) canonicalised (sorted keys, compact;
 * *canon, caller frees) and its SHA-256 hex: the protocols table's hash. */
int store_recipe_hash(const char *recipe_json, char **canon, char hash[65], XErr *e);
/* recipe: a JSON object; it is canonicalised (sorted keys) and hashed. */
int store_protocol_id(Store *st, const char *name, const char *recipe_json, int64_t *id,
                      XErr *e);
/* Finds a dataset by name: *id = 0 when absent. */
int store_dataset_find(Store *st, const char *name, int64_t *id, XErr *e);

#endif
