/* The schema migrations compiled into the tools (generated from schema/).
 * Migration N brings a database from PRAGMA user_version N-1 to N. */
#ifndef XFER_DB_MIGRATIONS_H
#define XFER_DB_MIGRATIONS_H

typedef struct StoreMigration {
    int version;
    const char *name;
    const char *sql;
} StoreMigration;

extern const StoreMigration store_migrations[];
extern const int store_migration_count;

#endif
