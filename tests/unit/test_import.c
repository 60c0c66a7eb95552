/* Unit tests for what writes to the store: benchmark tables (bench_import),
 * run records (runs_import) and stored datasets (dataset_add). Values are
 * checked in the database; failures must leave it, and the task directory,
 * as they were (or absent when the command created them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/import.h"
#include "data/taskfile.h"
#include "db/store.h"
#include "fixtures/fx_bench.h"
#include "fixtures/fx_idx.h"
#include "fixtures/fx_util.h"
#include "space/space.h"

typedef struct ImportFix {
    char dir[64];
    char paths[16][128]; /* sub()'s results */
    int npaths;
    char db[128];
    XErr e;
} ImportFix;

static char *bench_tasks[3] = { "cifar10-valid", "cifar10", "cifar100" };

static int import_setup(void **state)
{
    ImportFix *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/xfer-import-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/meta.db", f->dir);
    *state = f;
    return 0;
}

static int import_teardown(void **state)
{
    ImportFix *f = *state;
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

/* A path in the test's directory, valid until teardown. */
static char *sub(ImportFix *f, const char *name)
{
    char tmp[sizeof f->paths[0]];
    assert_true(f->npaths < 16);
    assert_true((size_t)snprintf(tmp, sizeof tmp, "%s/%s", f->dir, name) < sizeof tmp);
    return memcpy(f->paths[f->npaths++], tmp, sizeof tmp);
}

static void expect_error(int rc, int code, const XErr *e, const char *text)
{
    if (rc != code || !strstr(e->msg, text))
        fail_msg("expected status %d and an error containing \"%s\", got rc %d \"%s\"", code, text, rc, e->msg);
}

/* The error context cleared for a call (a set message is never replaced). */
static XErr *fresh(XErr *e)
{
    xerr_clear(e);
    return e;
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Neither the database nor its companions (-wal, -shm, -journal, .tasks). */
static void expect_no_database(const char *db)
{
    static const char *const sfx[] = { "", "-wal", "-shm", "-journal", ".tasks" };
    char p[256];
    for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        if (exists(p))
            fail_msg("'%s' was left behind", p);
    }
}

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        fail_msg("cannot open '%s'", path);
    return db;
}

static sqlite3_stmt *db_query(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    return q;
}

static long long db_int(const char *path, const char *sql)
{
    sqlite3 *db = db_open(path);
    sqlite3_stmt *q = db_query(db, sql);
    long long v;
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* Every row of every table as text, to compare a database before and after. */
static char *db_dump(const char *path)
{
    sqlite3 *db = db_open(path);
    sqlite3_stmt *tables = db_query(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    assert_non_null(mem);
    while (sqlite3_step(tables) == SQLITE_ROW) {
        char sql[256];
        sqlite3_stmt *q;
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY 1, 2", sqlite3_column_text(tables, 0));
        q = db_query(db, sql);
        fprintf(mem, "[%s]\n", sqlite3_column_text(tables, 0));
        while (sqlite3_step(q) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(q); i++)
                fprintf(mem, "%s|", sqlite3_column_type(q, i) == SQLITE_NULL ? "NULL"
                                                                             : (const char *)sqlite3_column_text(q, i));
            fputc('\n', mem);
        }
        sqlite3_finalize(q);
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    fclose(mem);
    return out;
}

static void canonical(const char *arch, char canon[1024])
{
    char hash[65];
    XErr e = { 0 };
    if (space_canonical_hash(space_find("nb201"), arch, canon, 1024, hash, &e))
        fail_msg("%s", e.msg);
}

static void bench_opts(BenchImport *bi, const char *db, const char *file)
{
    memset(bi, 0, sizeof *bi);
    bi->db = db;
    bi->file = file;
    bi->space = "nb201";
    bi->arch_col = "arch";
    bi->tasks = bi->cols = bench_tasks;
    bi->nmetric = 3;
    bi->epochs = 200;
    bi->scale = "auto";
}

/* The run of fixture row r (CSV row r) on a dataset: its accuracies. */
static void bench_run(const char *db, int r, const char *dataset, double *valid, double *test)
{
    char arch[256], canon[1024];
    sqlite3 *h = db_open(db);
    sqlite3_stmt *q = db_query(h,
                               "SELECT r.valid_acc, r.test_acc, r.status, r.source, r.seed, r.epochs_done, "
                               "p.name FROM runs r JOIN archs a ON a.id = r.arch_id "
                               "JOIN datasets d ON d.id = r.dataset_id JOIN protocols p ON p.id = r.protocol_id "
                               "WHERE a.space = 'nb201' AND a.arch = ?1 AND d.name = ?2");
    fx_nb201_arch(r * 7 + 1, arch, sizeof arch);
    canonical(arch, canon);
    sqlite3_bind_text(q, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, dataset, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW)
        fail_msg("no run of row %d on '%s'", r, dataset);
    *valid = sqlite3_column_type(q, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 0);
    *test = sqlite3_column_type(q, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 1);
    assert_string_equal((const char *)sqlite3_column_text(q, 2), "done");
    assert_string_equal((const char *)sqlite3_column_text(q, 3), "imported");
    assert_int_equal(sqlite3_column_int(q, 4), 0);
    assert_int_equal(sqlite3_column_int(q, 5), 200);
    assert_string_equal((const char *)sqlite3_column_text(q, 6), "imported");
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(h);
}

static void check_bench_import(ImportFix *f, int gz)
{
    char *csv = sub(f, gz ? "nb201.csv.gz" : "nb201.csv"), *real;
    BenchImport bi;
    ImportStats s;
    assert_int_equal(fx_bench_csv(csv, 12, gz), 0);
    bench_opts(&bi, f->db, csv);
    if (bench_import(&bi, &s, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(s.rows, 12);
    assert_int_equal(s.added, 36);
    assert_int_equal(s.present, 0);
    assert_int_equal(s.datasets, 3);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM runs"), 36);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM archs"), 12);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM protocols"), 1);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM datasets"), 3);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM datasets WHERE kind = 'virtual' AND format = 'bench' AND "
                                   "name IN ('cifar10-valid', 'cifar10', 'cifar100')"),
                     3);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM protocols WHERE recipe = "
                                   "'{\"epochs\":200,\"kind\":\"imported\",\"space\":\"nb201\"}'"),
                     1);
    real = realpath(csv, NULL);
    assert_non_null(real);
    {
        sqlite3 *h = db_open(f->db);
        sqlite3_stmt *q = db_query(h, "SELECT count(*) FROM datasets WHERE source = ?1");
        sqlite3_bind_text(q, 1, real, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 3);
        sqlite3_finalize(q);
        sqlite3_close(h);
    }
    for (int r = 0; r < 12; r++)
        for (int t = 0; t < 3; t++) {
            double v, a;
            bench_run(f->db, r, bench_tasks[t], &v, &a);
            assert_true(isnan(v));
            if (fabs(a - fx_bench_acc(r, t) / 100.0) > 1e-9)
                fail_msg("row %d task %s: test_acc %.12f, expected %.12f", r, bench_tasks[t], a,
                         fx_bench_acc(r, t) / 100.0);
        }
    free(real);
}

static void test_import_bench_csv(void **state)
{
    check_bench_import(*state, 0);
}

static void test_import_bench_csv_gz(void **state)
{
    check_bench_import(*state, 1);
}

static void test_import_bench_valid_metric(void **state)
{
    ImportFix *f = *state;
    char *csv = sub(f, "nb201.csv"), *task[1] = { "cifar10" }, *vcol[1] = { "cifar10-valid" };
    BenchImport bi;
    ImportStats s;
    assert_int_equal(fx_bench_csv(csv, 12, 0), 0);
    bench_opts(&bi, f->db, csv);
    bi.tasks = bi.cols = task;
    bi.nmetric = 1;
    bi.vtasks = task;
    bi.vcols = vcol;
    bi.nvalid = 1;
    if (bench_import(&bi, &s, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(s.rows, 12);
    assert_int_equal(s.added, 12);
    assert_int_equal(s.datasets, 1);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM runs"), 12);
    for (int r = 0; r < 12; r++) {
        double v, a;
        bench_run(f->db, r, "cifar10", &v, &a);
        assert_true(fabs(v - fx_bench_acc(r, 0) / 100.0) < 1e-9);
        assert_true(fabs(a - fx_bench_acc(r, 1) / 100.0) < 1e-9);
    }
}

/* A --valid-metric task that no --metric names is a usage error (exit 2). */
static void test_import_bench_valid_metric_unknown_task(void **state)
{
    ImportFix *f = *state;
    char *csv = sub(f, "nb201.csv"), *task[1] = { "cifar10" }, *vtask[1] = { "cifar100" },
         *vcol[1] = { "cifar10-valid" };
    BenchImport bi;
    ImportStats s;
    assert_int_equal(fx_bench_csv(csv, 12, 0), 0);
    bench_opts(&bi, f->db, csv);
    bi.tasks = bi.cols = task;
    bi.nmetric = 1;
    bi.vtasks = vtask;
    bi.vcols = vcol;
    bi.nvalid = 1;
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_USAGE, &f->e,
                 "--valid-metric names task 'cifar100' that no --metric names");
    expect_no_database(f->db);
}

static void test_import_bench_twice(void **state)
{
    ImportFix *f = *state;
    char *csv = sub(f, "nb201.csv"), *before, *after;
    BenchImport bi;
    ImportStats s;
    assert_int_equal(fx_bench_csv(csv, 12, 0), 0);
    bench_opts(&bi, f->db, csv);
    assert_int_equal(bench_import(&bi, &s, fresh(&f->e)), XE_OK);
    before = db_dump(f->db);
    if (bench_import(&bi, &s, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(s.rows, 12);
    assert_int_equal(s.added, 0);
    assert_int_equal(s.present, 36);
    assert_int_equal(s.datasets, 0);
    after = db_dump(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void write_text(const char *path, const char *text)
{
    assert_int_equal(fx_write(path, text, strlen(text), 0), 0);
}

static void test_import_bench_scale(void **state)
{
    ImportFix *f = *state;
    char *csv = sub(f, "nb201.csv"), *big = sub(f, "big.csv"), body[1024], arch[256];
    BenchImport bi;
    ImportStats s;
    assert_int_equal(fx_bench_csv(csv, 12, 0), 0);
    bench_opts(&bi, f->db, csv);
    bi.scale = "fraction";
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e, "is above 1 (fraction)");
    assert_non_null(strstr(f->e.msg, "nb201.csv"));
    expect_no_database(f->db);
    /* percent values above 100 */
    fx_nb201_arch(5, arch, sizeof arch);
    snprintf(body, sizeof body, "arch,cifar10-valid,cifar10,cifar100\n%s,90.5,101.5,70\n", arch);
    write_text(big, body);
    bench_opts(&bi, f->db, big);
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e, "accuracy 101.5 is above 100 (percent)");
    expect_no_database(f->db);
    /* fractions are kept as they are */
    snprintf(body, sizeof body, "arch,cifar10-valid,cifar10,cifar100\n%s,0.905,0.25,1\n", arch);
    write_text(big, body);
    if (bench_import(&bi, &s, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM runs WHERE test_acc IN (0.905, 0.25, 1.0)"), 3);
}

static const char bad_arch_csv[] = "arch,cifar10-valid,cifar10,cifar100\n"
                                   "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|,90.1,91.2,70.3\n"
                                   "|none~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|,80.0,81.0,60.0\n"
                                   "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|,1,2,3\n";

/* A bad row after good ones: nothing is kept, not even the new database. */
static void test_import_bench_bad_arch_new_db(void **state)
{
    ImportFix *f = *state;
    char *csv = sub(f, "badarch.csv");
    BenchImport bi;
    ImportStats s;
    write_text(csv, bad_arch_csv);
    bench_opts(&bi, f->db, csv);
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e, "badarch.csv': line 4: ");
    assert_non_null(strstr(f->e.msg, "conv_9x9"));
    expect_no_database(f->db);
}

static void test_import_bench_bad_arch_existing_db(void **state)
{
    ImportFix *f = *state;
    char *csv = sub(f, "nb201.csv"), *bad = sub(f, "badarch.csv"), *before, *after, *task[1] = { "newtask" },
         *col[1] = { "cifar10" };
    BenchImport bi;
    ImportStats s;
    assert_int_equal(fx_bench_csv(csv, 12, 0), 0);
    write_text(bad, bad_arch_csv);
    bench_opts(&bi, f->db, csv);
    assert_int_equal(bench_import(&bi, &s, fresh(&f->e)), XE_OK);
    before = db_dump(f->db);
    /* a new task, new archs and runs come before the bad line */
    bench_opts(&bi, f->db, bad);
    bi.tasks = task;
    bi.cols = col;
    bi.nmetric = 1;
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e, "line 4");
    assert_true(exists(f->db));
    after = db_dump(f->db);
    assert_string_equal(before, after);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM runs"), 36);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM archs"), 12);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM datasets"), 3);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM datasets WHERE name = 'newtask'"), 0);
    free(before);
    free(after);
}

static void test_import_bench_bad_columns_and_rows(void **state)
{
    ImportFix *f = *state;
    char *csv = sub(f, "nb201.csv"), *std = sub(f, "std"), *col[1] = { "imagenet" };
    BenchImport bi;
    ImportStats s;
    assert_int_equal(fx_bench_csv(csv, 12, 0), 0);
    assert_int_equal(fx_mkdir(std), 0);
    assert_int_equal(fx_bench_standard(std), 0);
    bench_opts(&bi, f->db, csv);
    bi.cols = col;
    bi.nmetric = 1;
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e,
                 "no column 'imagenet' (columns: arch, cifar10-valid, cifar10, cifar100)");
    bench_opts(&bi, f->db, csv);
    bi.arch_col = "cell";
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e, "no column 'cell' (columns: arch,");
    bench_opts(&bi, f->db, fx_path(std, "badrow.csv"));
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e, "line 3: 2 fields, the header has 4");
    bench_opts(&bi, f->db, fx_path(std, "badvalue.csv"));
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e,
                 "line 2: column 'cifar10-valid': 'n/a' is not an accuracy");
    bench_opts(&bi, f->db, fx_path(std, "malformed.csv"));
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_FAIL, &f->e, "malformed CSV");
    bench_opts(&bi, f->db, csv);
    bi.space = "darts9";
    expect_error(bench_import(&bi, &s, fresh(&f->e)), XE_USAGE, &f->e, "unknown space 'darts9'");
    expect_no_database(f->db);
}

/* Run i of fx_runs_jsonl: its arch and the values it records. */
static double printed(const char *fmt, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    return strtod(buf, NULL);
}

static void check_runs(const char *db, int n)
{
    sqlite3 *h = db_open(db);
    sqlite3_stmt *q = db_query(h,
                               "SELECT r.id, r.seed, r.status, r.source, r.valid_acc, r.test_acc, r.params, r.flops, "
                               "r.seconds, r.device, r.epochs_done, d.name, d.kind, d.format, "
                               "(SELECT count(*) FROM curves c WHERE c.run_id = r.id) "
                               "FROM runs r JOIN archs a ON a.id = r.arch_id JOIN datasets d ON d.id = r.dataset_id "
                               "WHERE a.arch = ?1");
    sqlite3_stmt *c = db_query(h, "SELECT epoch, train_loss, train_acc, valid_loss, valid_acc, lr, seconds "
                                  "FROM curves WHERE run_id = ?1 ORDER BY epoch");
    for (int i = 0; i < n; i++) {
        char arch[256], canon[1024];
        sqlite3_int64 id;
        fx_nb201_arch(i * 11 + 3, arch, sizeof arch);
        canonical(arch, canon);
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, canon, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_ROW)
            fail_msg("no run %d", i);
        id = sqlite3_column_int64(q, 0);
        assert_int_equal(sqlite3_column_int(q, 1), i % 2);
        assert_string_equal((const char *)sqlite3_column_text(q, 2), "done");
        assert_string_equal((const char *)sqlite3_column_text(q, 3), "trained");
        assert_true(fabs(sqlite3_column_double(q, 4) - printed("%.4f", 0.5 + 0.01 * i)) < 1e-9);
        assert_true(fabs(sqlite3_column_double(q, 5) - printed("%.4f", 0.49 + 0.01 * i)) < 1e-9);
        assert_int_equal(sqlite3_column_int64(q, 6), 1000 + i);
        assert_int_equal(sqlite3_column_int64(q, 7), 20000 + i);
        assert_true(fabs(sqlite3_column_double(q, 8) - (3.5 + i)) < 1e-9);
        assert_string_equal((const char *)sqlite3_column_text(q, 9), "cpu");
        assert_int_equal(sqlite3_column_int(q, 10), 3);
        assert_string_equal((const char *)sqlite3_column_text(q, 11), "toy");
        assert_string_equal((const char *)sqlite3_column_text(q, 12), "virtual");
        assert_string_equal((const char *)sqlite3_column_text(q, 13), "runs");
        assert_int_equal(sqlite3_column_int(q, 14), 3);
        assert_int_equal(sqlite3_step(q), SQLITE_DONE);
        sqlite3_reset(c);
        sqlite3_bind_int64(c, 1, id);
        for (int ep = 1; ep <= 3; ep++) {
            assert_int_equal(sqlite3_step(c), SQLITE_ROW);
            assert_int_equal(sqlite3_column_int(c, 0), ep);
            assert_true(fabs(sqlite3_column_double(c, 1) - printed("%.3f", 2.0 / ep)) < 1e-9);
            assert_true(fabs(sqlite3_column_double(c, 2) - printed("%.3f", 0.3 + 0.1 * ep)) < 1e-9);
            assert_true(fabs(sqlite3_column_double(c, 3) - printed("%.3f", 2.1 / ep)) < 1e-9);
            assert_true(fabs(sqlite3_column_double(c, 4) - printed("%.3f", 0.3 + 0.09 * ep)) < 1e-9);
            assert_true(fabs(sqlite3_column_double(c, 5) - printed("%.3f", 0.1 / ep)) < 1e-9);
            assert_true(fabs(sqlite3_column_double(c, 6) - 1.0) < 1e-9);
        }
        assert_int_equal(sqlite3_step(c), SQLITE_DONE);
    }
    sqlite3_finalize(q);
    sqlite3_finalize(c);
    sqlite3_close(h);
}

static void check_protocol(const char *db)
{
    sqlite3 *h = db_open(db);
    sqlite3_stmt *q = db_query(h, "SELECT name, recipe FROM protocols");
    json_t *r;
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "cheap");
    r = json_loads((const char *)sqlite3_column_text(q, 1), 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_object_size(r), 4);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "cheap");
    assert_int_equal(json_integer_value(json_object_get(r, "epochs")), 3);
    assert_int_equal(json_integer_value(json_object_get(r, "batch")), 64);
    assert_true(fabs(json_real_value(json_object_get(r, "lr")) - 0.1) < 1e-12);
    json_decref(r);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(h);
}

static void test_import_runs(void **state)
{
    ImportFix *f = *state;
    char *jl = sub(f, "runs.jsonl"), *before, *after;
    ImportStats s;
    assert_int_equal(fx_runs_jsonl(jl, "toy", 5), 0);
    if (runs_import(f->db, jl, &s, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(s.rows, 5);
    assert_int_equal(s.added, 5);
    assert_int_equal(s.present, 0);
    assert_int_equal(s.datasets, 1);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM runs"), 5);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM curves"), 15);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM datasets"), 1);
    check_runs(f->db, 5);
    check_protocol(f->db);
    /* again: nothing new */
    before = db_dump(f->db);
    if (runs_import(f->db, jl, &s, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(s.rows, 5);
    assert_int_equal(s.added, 0);
    assert_int_equal(s.present, 5);
    assert_int_equal(s.datasets, 0);
    after = db_dump(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* A done run is never overwritten by a later record for the same key. */
static void test_import_runs_done_kept(void **state)
{
    ImportFix *f = *state;
    char *jl = sub(f, "runs.jsonl"), *other = sub(f, "other.jsonl"), arch[256], body[1024];
    ImportStats s;
    assert_int_equal(fx_runs_jsonl(jl, "toy", 5), 0);
    assert_int_equal(runs_import(f->db, jl, &s, fresh(&f->e)), XE_OK);
    fx_nb201_arch(3, arch, sizeof arch);
    snprintf(body, sizeof body,
             "{\"space\":\"nb201\",\"arch\":\"%s\",\"dataset\":\"toy\",\"protocol\":{\"name\":\"cheap\","
             "\"epochs\":3,\"batch\":64,\"lr\":0.1},\"seed\":0,\"valid_acc\":0.99}\n",
             arch);
    write_text(other, body);
    if (runs_import(f->db, other, &s, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(s.added, 0);
    assert_int_equal(s.present, 1);
    check_runs(f->db, 5);
}

/* A planned run with the same arch, dataset, protocol and seed is completed. */
static void test_import_runs_complete_planned(void **state)
{
    ImportFix *f = *state;
    char *jl = sub(f, "runs.jsonl"), arch[256], canon[1024], hash[65], sql[512];
    Store st;
    int64_t ds, aid, pid, rid;
    int created;
    ImportStats s;
    assert_int_equal(fx_runs_jsonl(jl, "toy", 5), 0);
    assert_int_equal(store_open(&st, f->db, 1, fresh(&f->e)), XE_OK);
    assert_int_equal(import_virtual_dataset(&st, "toy", "runs", "planner", 1, &ds, &created, fresh(&f->e)), XE_OK);
    assert_int_equal(created, 1);
    fx_nb201_arch(3, arch, sizeof arch);
    assert_int_equal(space_canonical_hash(space_find("nb201"), arch, canon, sizeof canon, hash, fresh(&f->e)), XE_OK);
    assert_int_equal(store_arch_id(&st, "nb201", canon, hash, &aid, fresh(&f->e)), XE_OK);
    assert_int_equal(store_protocol_id(&st, "cheap", "{\"name\":\"cheap\",\"epochs\":3,\"batch\":64,\"lr\":0.1}",
                                       &pid, fresh(&f->e)),
                     XE_OK);
    snprintf(sql, sizeof sql,
             "INSERT INTO runs (arch_id, dataset_id, protocol_id, seed, status, worker, lease_until) "
             "VALUES (%lld, %lld, %lld, 0, 'planned', 'w1', 123.0)",
             (long long)aid, (long long)ds, (long long)pid);
    assert_int_equal(store_exec(&st, sql, fresh(&f->e)), XE_OK);
    rid = sqlite3_last_insert_rowid(st.db);
    store_close(&st);
    if (runs_import(f->db, jl, &s, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(s.rows, 5);
    assert_int_equal(s.added, 5);
    assert_int_equal(s.present, 0);
    assert_int_equal(s.datasets, 0);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM runs"), 5);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM protocols"), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE id = %lld AND status = 'done' AND worker IS NULL AND "
             "lease_until IS NULL AND abs(valid_acc - 0.5) < 1e-9",
             (long long)rid);
    assert_int_equal(db_int(f->db, sql), 1);
    check_runs(f->db, 5);
}

static void test_import_runs_bad_records(void **state)
{
    ImportFix *f = *state;
    char *std = sub(f, "std"), *jl = sub(f, "runs.jsonl"), *before, *after;
    ImportStats s;
    assert_int_equal(fx_mkdir(std), 0);
    assert_int_equal(fx_bench_standard(std), 0);
    expect_error(runs_import(f->db, fx_path(std, "badjson.jsonl"), &s, fresh(&f->e)), XE_FAIL, &f->e,
                 "badjson.jsonl': line 2: invalid JSON");
    expect_no_database(f->db);
    expect_error(runs_import(f->db, fx_path(std, "badacc.jsonl"), &s, fresh(&f->e)), XE_FAIL, &f->e,
                 "badacc.jsonl': line 1: 'valid_acc' out of range");
    expect_no_database(f->db);
    /* into an existing database: the good first line of badjson is not kept */
    assert_int_equal(fx_runs_jsonl(jl, "toy", 5), 0);
    assert_int_equal(runs_import(f->db, jl, &s, fresh(&f->e)), XE_OK);
    before = db_dump(f->db);
    expect_error(runs_import(f->db, fx_path(std, "badjson.jsonl"), &s, fresh(&f->e)), XE_FAIL, &f->e, "line 2");
    after = db_dump(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* dataset_add: the source, its options and the database. */
typedef struct AddCase {
    DatasetAdd a;
    char *src[1];
} AddCase;

static void add_case(AddCase *c, const ImportFix *f, const char *name, char *src, double valid)
{
    memset(c, 0, sizeof *c);
    c->src[0] = src;
    c->a.db = f->db;
    c->a.name = name;
    c->a.sources = c->src;
    c->a.nsources = 1;
    c->a.opt.valid_fraction = valid;
    c->a.opt.seed = 1;
    c->a.format = FORMAT_AUTO;
}

/* Sorted names in a directory (dot files too), joined by spaces. */
static char *list_dir(const char *dir)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    assert_non_null(mem);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        fprintf(mem, "%s ", ents[i]->d_name);
        free(ents[i]);
    }
    free(ents);
    fclose(mem);
    return out;
}

static char *row_text(const char *db, const char *name, const char *col)
{
    sqlite3 *h = db_open(db);
    char sql[256], *v;
    sqlite3_stmt *q;
    snprintf(sql, sizeof sql, "SELECT %s FROM datasets WHERE name = ?1", col);
    q = db_query(h, sql);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW)
        fail_msg("no dataset '%s'", name);
    v = strdup(sqlite3_column_type(q, 0) == SQLITE_NULL ? "NULL" : (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(h);
    assert_non_null(v);
    return v;
}

static long long row_int(const char *db, const char *name, const char *col)
{
    char *t = row_text(db, name, col);
    long long v = strtoll(t, NULL, 10);
    free(t);
    return v;
}

/* The stored file of a dataset: path relative to the database's directory,
 * named after its checksum, whose SHA-256 the row records. */
static char *stored_file(const ImportFix *f, const char *name)
{
    char *rel = row_text(f->db, name, "path"), *sha = row_text(f->db, name, "checksum"), want[256], got[65];
    char *abs;
    XErr e = { 0 };
    assert_int_equal(strlen(sha), 64);
    snprintf(want, sizeof want, "meta.db.tasks/%s.%.12s.xtask", name, sha);
    assert_string_equal(rel, want);
    assert_non_null(abs = strdup(fx_path(f->dir, rel)));
    if (taskfile_checksum(abs, got, &e) != XE_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(got, sha);
    free(rel);
    free(sha);
    return abs;
}

static void test_dataset_add_stores(void **state)
{
    ImportFix *f = *state;
    char *src = sub(f, "mnist"), *file, *names, *tasks, *before, *after, *list;
    AddCase c;
    DatasetOutcome out = DATASET_UNCHANGED;
    TaskFile t;
    assert_int_equal(fx_idx_dir(src, 20, 10, 10, 1), 0);
    add_case(&c, f, "mnist", src, 0.5);
    if (dataset_add(&c.a, &out, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(out, DATASET_STORED);
    assert_int_equal(row_int(f->db, "mnist", "n_train"), 10);
    assert_int_equal(row_int(f->db, "mnist", "n_valid"), 10);
    assert_int_equal(row_int(f->db, "mnist", "n_test"), 10);
    assert_int_equal(row_int(f->db, "mnist", "classes"), 10);
    assert_int_equal(row_int(f->db, "mnist", "height"), 8);
    assert_int_equal(row_int(f->db, "mnist", "width"), 8);
    assert_int_equal(row_int(f->db, "mnist", "channels"), 1);
    names = row_text(f->db, "mnist", "kind || ' ' || format || ' ' || class_names");
    assert_string_equal(names, "stored idx [\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]");
    free(names);
    file = stored_file(f, "mnist");
    assert_int_equal(taskfile_open(&t, file, fresh(&f->e)), XE_OK);
    assert_int_equal(t.n[SPLIT_TRAIN], 10);
    assert_int_equal(t.n[SPLIT_VALID], 10);
    assert_int_equal(t.n[SPLIT_TEST], 10);
    assert_int_equal(taskfile_label(&t, SPLIT_TEST, 7), 7);
    assert_int_equal(t.images[SPLIT_TEST][7 * 64 + 9], fx_pixel(1007, 9));
    taskfile_close(&t);
    /* the same source and options again: nothing changes */
    tasks = sub(f, "meta.db.tasks");
    list = list_dir(tasks);
    before = db_dump(f->db);
    out = DATASET_STORED;
    if (dataset_add(&c.a, &out, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(out, DATASET_UNCHANGED);
    after = db_dump(f->db);
    assert_string_equal(before, after);
    free(after);
    after = list_dir(tasks);
    assert_string_equal(list, after);
    free(after);
    /* other options without replace */
    c.a.opt.valid_fraction = 0;
    expect_error(dataset_add(&c.a, &out, fresh(&f->e)), XE_FAIL, &f->e,
                 "dataset 'mnist' already exists with another source or options: use --replace");
    after = db_dump(f->db);
    assert_string_equal(before, after);
    free(after);
    after = list_dir(tasks);
    assert_string_equal(list, after);
    free(after);
    free(list);
    free(before);
    free(file);
}

static void test_dataset_add_replace(void **state)
{
    ImportFix *f = *state;
    char *src = sub(f, "mnist"), *tasks = sub(f, "meta.db.tasks"), *old, *new, *list, want[256];
    AddCase c;
    DatasetOutcome out;
    assert_int_equal(fx_idx_dir(src, 20, 10, 10, 1), 0);
    add_case(&c, f, "mnist", src, 0.5);
    assert_int_equal(dataset_add(&c.a, &out, fresh(&f->e)), XE_OK);
    old = stored_file(f, "mnist");
    /* other content: a new file, the old one removed */
    c.a.opt.valid_fraction = 0;
    c.a.replace = 1;
    if (dataset_add(&c.a, &out, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(out, DATASET_REPLACED);
    new = stored_file(f, "mnist");
    assert_string_not_equal(old, new);
    assert_false(exists(old));
    assert_true(exists(new));
    assert_int_equal(row_int(f->db, "mnist", "n_train"), 20);
    assert_int_equal(row_int(f->db, "mnist", "n_valid"), 0);
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM datasets"), 1);
    snprintf(want, sizeof want, ". .. %s ", strrchr(new, '/') + 1);
    list = list_dir(tasks);
    assert_string_equal(list, want);
    free(list);
    /* the same content again under replace: the file is kept */
    out = DATASET_STORED;
    if (dataset_add(&c.a, &out, fresh(&f->e)) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(out, DATASET_REPLACED);
    free(old);
    old = stored_file(f, "mnist");
    assert_string_equal(old, new);
    assert_true(exists(new));
    list = list_dir(tasks);
    assert_string_equal(list, want);
    free(list);
    free(old);
    free(new);
}

static void test_dataset_add_failure_new_db(void **state)
{
    ImportFix *f = *state;
    char *std = sub(f, "std"), *src;
    AddCase c;
    DatasetOutcome out;
    assert_int_equal(fx_idx_standard(std), 0);
    src = strdup(fx_path(std, "truncated"));
    assert_non_null(src);
    add_case(&c, f, "mnist", src, 0.5);
    expect_error(dataset_add(&c.a, &out, fresh(&f->e)), XE_FAIL, &f->e, "truncated");
    expect_no_database(f->db);
    free(src);
    src = strdup(fx_path(std, "corruptgz"));
    assert_non_null(src);
    c.src[0] = src;
    expect_error(dataset_add(&c.a, &out, fresh(&f->e)), XE_FAIL, &f->e, "corrupt gzip");
    expect_no_database(f->db);
    free(src);
}

/* A bad name is a usage error (exit 2), checked before anything is read. */
static void test_dataset_add_bad_name(void **state)
{
    ImportFix *f = *state;
    char *src = sub(f, "mnist");
    AddCase c;
    DatasetOutcome out;
    assert_int_equal(fx_idx_dir(src, 20, 10, 10, 1), 0);
    add_case(&c, f, "../x", src, 0.5);
    expect_error(dataset_add(&c.a, &out, fresh(&f->e)), XE_USAGE, &f->e, "invalid dataset name '../x'");
    expect_no_database(f->db);
}

static void test_dataset_add_failure_existing_db(void **state)
{
    ImportFix *f = *state;
    char *std = sub(f, "std"), *src = sub(f, "mnist"), *tasks = sub(f, "meta.db.tasks"), *bad, *before, *after,
         *list, *now;
    AddCase c;
    DatasetOutcome out;
    assert_int_equal(fx_idx_standard(std), 0);
    assert_int_equal(fx_idx_dir(src, 20, 10, 10, 1), 0);
    add_case(&c, f, "mnist", src, 0.5);
    assert_int_equal(dataset_add(&c.a, &out, fresh(&f->e)), XE_OK);
    before = db_dump(f->db);
    list = list_dir(tasks);
    bad = strdup(fx_path(std, "mismatch"));
    assert_non_null(bad);
    c.a.name = "other";
    c.src[0] = bad;
    expect_error(dataset_add(&c.a, &out, fresh(&f->e)), XE_FAIL, &f->e, "has 19 labels");
    after = db_dump(f->db);
    assert_string_equal(before, after);
    now = list_dir(tasks);
    assert_string_equal(list, now);
    free(now);
    free(after);
    free(list);
    free(before);
    free(bad);
}

/* The row cannot be written (a trigger refuses it) after the task file was:
 * the new file and a task directory made for it are removed, an old file
 * (same content, same name) is kept. */
static void test_dataset_add_failure_after_write(void **state)
{
    ImportFix *f = *state;
    char *src = sub(f, "mnist"), *tasks = sub(f, "meta.db.tasks"), *before, *after, *list, *now, *file;
    AddCase c;
    DatasetOutcome out;
    Store st;
    assert_int_equal(fx_idx_dir(src, 20, 10, 10, 1), 0);
    assert_int_equal(store_open(&st, f->db, 1, fresh(&f->e)), XE_OK);
    assert_int_equal(store_exec(&st,
                                "CREATE TRIGGER refuse_insert BEFORE INSERT ON datasets WHEN NEW.name = 'refused' "
                                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END; "
                                "CREATE TRIGGER refuse_update BEFORE UPDATE ON datasets "
                                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
                                &f->e),
                     XE_OK);
    store_close(&st);
    add_case(&c, f, "refused", src, 0.5);
    expect_error(dataset_add(&c.a, &out, fresh(&f->e)), XE_FAIL, &f->e, "refused by the test");
    assert_true(exists(f->db));
    assert_false(exists(tasks));
    assert_int_equal(db_int(f->db, "SELECT count(*) FROM datasets"), 0);
    /* a stored dataset, then a replace that cannot be written */
    c.a.name = "mnist";
    assert_int_equal(dataset_add(&c.a, &out, fresh(&f->e)), XE_OK);
    file = stored_file(f, "mnist");
    before = db_dump(f->db);
    list = list_dir(tasks);
    c.a.replace = 1;
    c.a.opt.valid_fraction = 0;
    expect_error(dataset_add(&c.a, &out, fresh(&f->e)), XE_FAIL, &f->e, "refused by the test");
    after = db_dump(f->db);
    assert_string_equal(before, after);
    now = list_dir(tasks);
    assert_string_equal(list, now);
    free(now);
    free(after);
    /* same content under replace: the old file is the new one, and stays */
    c.a.opt.valid_fraction = 0.5;
    expect_error(dataset_add(&c.a, &out, fresh(&f->e)), XE_FAIL, &f->e, "refused by the test");
    assert_true(exists(file));
    after = db_dump(f->db);
    assert_string_equal(before, after);
    now = list_dir(tasks);
    assert_string_equal(list, now);
    free(now);
    free(after);
    free(list);
    free(before);
    free(file);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, import_setup, import_teardown)
const struct CMUnitTest test_import_tests[] = {
    T(test_import_bench_csv),
    T(test_import_bench_csv_gz),
    T(test_import_bench_valid_metric),
    T(test_import_bench_valid_metric_unknown_task),
    T(test_import_bench_twice),
    T(test_import_bench_scale),
    T(test_import_bench_bad_arch_new_db),
    T(test_import_bench_bad_arch_existing_db),
    T(test_import_bench_bad_columns_and_rows),
    T(test_import_runs),
    T(test_import_runs_done_kept),
    T(test_import_runs_complete_planned),
    T(test_import_runs_bad_records),
    T(test_dataset_add_stores),
    T(test_dataset_add_replace),
    T(test_dataset_add_failure_new_db),
    T(test_dataset_add_bad_name),
    T(test_dataset_add_failure_existing_db),
    T(test_dataset_add_failure_after_write),
};
const size_t test_import_count = sizeof test_import_tests / sizeof test_import_tests[0];
#undef T
