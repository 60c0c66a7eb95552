/* The store: migrations, pragmas, refusal of newer schemas, cleanup of a
 * database a failed command created, find-or-add helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/migrations.h"
#include "db/store.h"
#include "fixtures/fx_util.h"

static long long scalar(Store *st, const char *sql)
{
    sqlite3_stmt *q;
    long long v = -1;
    assert_int_equal(sqlite3_prepare_v2(st->db, sql, -1, &q, NULL), SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void test_store_migrates_new_database(void **state)
{
    char *d = unit_tmpdir();
    const char *p = fx_path(d, "x.db");
    Store st;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(store_open(&st, p, 1, &e), XE_OK);
    assert_true(st.created);
    assert_int_equal(store_schema_version(&st), store_migration_count);
    assert_int_equal(scalar(&st, "PRAGMA foreign_keys"), 1);
    assert_int_equal(scalar(&st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                                 "('datasets','archs','protocols','runs','curves','proxies','models','searches',"
                                 "'search_steps')"),
                     9);
    {
        sqlite3_stmt *q;
        sqlite3_prepare_v2(st.db, "PRAGMA journal_mode", -1, &q, NULL);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
        sqlite3_finalize(q);
    }
    /* foreign keys are enforced */
    assert_int_not_equal(sqlite3_exec(st.db, "INSERT INTO curves (run_id, epoch) VALUES (999, 1)", 0, 0, 0),
                         SQLITE_OK);
    store_close(&st);
    /* reopening applies nothing and keeps the data */
    assert_int_equal(store_open(&st, p, 0, &e), XE_OK);
    assert_false(st.created);
    assert_int_equal(store_schema_version(&st), store_migration_count);
    store_close(&st);
    fx_rmtree(d);
    free(d);
}

static void test_store_refuses_newer_schema(void **state)
{
    char *d = unit_tmpdir();
    const char *p = fx_path(d, "x.db");
    Store st;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(store_open(&st, p, 1, &e), XE_OK);
    assert_int_equal(store_exec(&st, "PRAGMA user_version = 999", &e), XE_OK);
    store_close(&st);
    assert_int_equal(store_open(&st, p, 0, &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "newer than this build"));
    assert_int_equal(access(p, F_OK), 0); /* an existing database is never removed */
    fx_rmtree(d);
    free(d);
}

static void test_store_missing_and_not_a_database(void **state)
{
    char *d = unit_tmpdir();
    Store st;
    XErr e = { 0 };
    const char *junk = fx_path(d, "junk.db");
    (void)state;
    assert_int_equal(store_open(&st, fx_path(d, "none.db"), 0, &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "none.db"));
    assert_int_not_equal(access(fx_path(d, "none.db"), F_OK), 0);
    xerr_clear(&e);
    assert_int_equal(fx_write(junk, "this is not sqlite at all, no no no no no no no no no no no no no no no no no "
                                    "no no no no no no no no no no no",
                              100, 0),
                     0);
    assert_int_equal(store_open(&st, junk, 1, &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "junk.db"));
    assert_int_equal(access(junk, F_OK), 0);
    fx_rmtree(d);
    free(d);
}

static void test_store_abandon_removes_created(void **state)
{
    char *d = unit_tmpdir();
    const char *p = fx_path(d, "new.db");
    char wal[4200];
    Store st;
    XErr e = { 0 };
    (void)state;
    snprintf(wal, sizeof wal, "%s-wal", p);
    assert_int_equal(store_open(&st, p, 1, &e), XE_OK);
    assert_int_equal(store_begin(&st, &e), XE_OK);
    assert_int_equal(store_exec(&st, "INSERT INTO protocols (name, hash, recipe) VALUES ('a', 'h', '{}')", &e),
                     XE_OK);
    store_abandon(&st);
    assert_int_not_equal(access(p, F_OK), 0);
    assert_int_not_equal(access(wal, F_OK), 0);
    fx_rmtree(d);
    free(d);
}

static void test_store_find_or_add(void **state)
{
    char *d = unit_tmpdir();
    Store st;
    XErr e = { 0 };
    int64_t a1, a2, a3, p1, p2, p3, ds;
    (void)state;
    assert_int_equal(store_open(&st, fx_path(d, "x.db"), 1, &e), XE_OK);
    assert_int_equal(store_arch_id(&st, "nb201", "|a|", "h1", &a1, &e), XE_OK);
    assert_int_equal(store_arch_id(&st, "nb201", "|a|", "h1", &a2, &e), XE_OK);
    assert_int_equal(store_arch_id(&st, "nb201", "|b|", "h2", &a3, &e), XE_OK);
    assert_true(a1 > 0);
    assert_int_equal(a1, a2);
    assert_int_not_equal(a1, a3);
    /* recipes are canonicalised: key order does not matter */
    assert_int_equal(store_protocol_id(&st, "x", "{\"lr\":0.1,\"epochs\":5}", &p1, &e), XE_OK);
    assert_int_equal(store_protocol_id(&st, "x", "{\"epochs\":5,\"lr\":0.1}", &p2, &e), XE_OK);
    assert_int_equal(store_protocol_id(&st, "x", "{\"epochs\":6,\"lr\":0.1}", &p3, &e), XE_OK);
    assert_int_equal(p1, p2);
    assert_int_not_equal(p1, p3);
    assert_int_equal(store_protocol_id(&st, "x", "[1]", &p3, &e), XE_FAIL);
    xerr_clear(&e);
    assert_int_equal(store_dataset_find(&st, "nope", &ds, &e), XE_OK);
    assert_int_equal(ds, 0);
    assert_int_equal(scalar(&st, "SELECT count(*) FROM archs"), 2);
    store_close(&st);
    fx_rmtree(d);
    free(d);
}

static void test_store_default_path(void **state)
{
    (void)state;
    setenv("XFER_DB", "/tmp/env.db", 1);
    assert_string_equal(store_default_path("/tmp/opt.db"), "/tmp/opt.db");
    assert_string_equal(store_default_path(NULL), "/tmp/env.db");
    unsetenv("XFER_DB");
    assert_string_equal(store_default_path(NULL), "xfer.db");
}

const struct CMUnitTest test_store_tests[] = {
    cmocka_unit_test(test_store_migrates_new_database),  cmocka_unit_test(test_store_refuses_newer_schema),
    cmocka_unit_test(test_store_missing_and_not_a_database), cmocka_unit_test(test_store_abandon_removes_created),
    cmocka_unit_test(test_store_find_or_add),            cmocka_unit_test(test_store_default_path),
};
const size_t test_store_count = sizeof test_store_tests / sizeof test_store_tests[0];
