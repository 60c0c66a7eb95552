/* Tabular benchmark import: one row per architecture, one accuracy column per
 * task (NAS-Bench-201 arch strings). CSV parsed by libcsv; gzip by zlib. */
#include <csv.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream.h"
#include "data/import.h"
#include "db/store.h"
#include "space/space.h"

typedef struct Row {
    char **f;
    int n, cap;
} Row;

typedef struct Table {
    Row *rows;
    long n, cap;
    Row cur;
    int oom;
} Table;

static void on_field(void *s, size_t len, void *data)
{
    Table *t = data;
    char *v;
    if (t->cur.n == t->cur.cap) {
        int cap = t->cur.cap ? 2 * t->cur.cap : 8;
        char **f = realloc(t->cur.f, (size_t)cap * sizeof *f);
        if (!f) {
            t->oom = 1;
            return;
        }
        t->cur.f = f;
        t->cur.cap = cap;
    }
    v = malloc(len + 1);
    if (!v) {
        t->oom = 1;
        return;
    }
    memcpy(v, s, len);
    v[len] = '\0';
    t->cur.f[t->cur.n++] = v;
}

static void on_row(int c, void *data)
{
    Table *t = data;
    (void)c;
    if (t->n == t->cap) {
        long cap = t->cap ? 2 * t->cap : 1024;
        Row *r = realloc(t->rows, (size_t)cap * sizeof *r);
        if (!r) {
            t->oom = 1;
            return;
        }
        t->rows = r;
        t->cap = cap;
    }
    t->rows[t->n++] = t->cur;
    memset(&t->cur, 0, sizeof t->cur);
}

static void table_free(Table *t)
{
    for (long i = 0; i < t->n; i++) {
        for (int j = 0; j < t->rows[i].n; j++)
            free(t->rows[i].f[j]);
        free(t->rows[i].f);
    }
    for (int j = 0; j < t->cur.n; j++)
        free(t->cur.f[j]);
    free(t->cur.f);
    free(t->rows);
}


static int table_read(const char *path, Table *t, XErr *e)
{
    struct csv_parser p;
    uint8_t *buf = NULL;
    size_t n;
    int rc = XE_OK;
    memset(t, 0, sizeof *t);
    if (xfile_read_all(path, &buf, &n, (size_t)1 << 31, e))
        return e->code;
    if (memchr(buf, '\0', n)) {
        free(buf);
        return xerr_set(e, XE_FAIL, "'%s': binary data, not CSV", path);
    }
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        free(buf);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    if (csv_parse(&p, buf, n, on_field, on_row, t) != n || csv_fini(&p, on_field, on_row, t) != 0) {
        /* libcsv counts rows it finished: the bad one is the next */
        rc = xerr_set(e, XE_FAIL, "'%s': line %ld: malformed CSV: %s", path, t->n + 1,
                      csv_strerror(csv_error(&p)));
    } else if (t->oom) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
    }
    csv_free(&p);
    free(buf);
    if (rc)
        table_free(t);
    return rc;
}

static int column(const Row *hdr, const char *name, const char *path, XErr *e)
{
    char cols[512];
    size_t k = 0;
    for (int i = 0; i < hdr->n; i++)
        if (!strcmp(hdr->f[i], name))
            return i;
    cols[0] = '\0';
    for (int i = 0; i < hdr->n && k < sizeof cols; i++)
        k += (size_t)snprintf(cols + k, sizeof cols - k, "%s%s", i ? ", " : "", hdr->f[i]);
    return xerr_set(e, XE_FAIL, "'%s': no column '%s' (columns: %s)", path, name, cols), -1;
}

int import_virtual_dataset(Store *st, const char *name, const char *format, const char *source,
                           int allow_stored, int64_t *id, int *created, XErr *e)
{
    sqlite3_stmt *q;
    int rc;
    *created = 0;
    if (store_prepare(st, &q, "SELECT id, kind FROM datasets WHERE name = ?1", e))
        return e->code;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        int virt = !strcmp((const char *)sqlite3_column_text(q, 1), "virtual");
        *id = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        if (!virt && !allow_stored)
            return xerr_set(e, XE_FAIL, "dataset '%s' is a stored dataset, not a benchmark task: choose another name",
                            name);
        return XE_OK;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return store_fail(st, e, "query");
    if (store_prepare(st, &q,
                      "INSERT INTO datasets (name, kind, source, format) VALUES (?1, 'virtual', ?2, ?3) "
                      "RETURNING id",
                      e))
        return e->code;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, format, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW)
        return store_fail(st, e, "adding a dataset");
    *created = 1;
    return XE_OK;
}

/* Parses a metric cell: NAN for an empty cell, -1 (error set) if bad. */
static double cell_value(const char *s, const char *path, long line, const char *col, XErr *e)
{
    char *end;
    double v;
    while (*s == ' ')
        s++;
    if (!*s)
        return NAN;
    errno = 0;
    v = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (*end || errno || !isfinite(v) || v < 0)
        return xerr_set(e, XE_FAIL, "'%s': line %ld: column '%s': '%s' is not an accuracy", path, line, col, s), -1;
    return v;
}

int bench_import(const BenchImport *bi, ImportStats *stats, XErr *e)
{
    const Space *sp = space_find(bi->space);
    Table t;
    Store st = { 0 };
    sqlite3_stmt *ins = NULL;
    int *tcol = NULL, *vcol = NULL, acol, rc = XE_FAIL, percent;
    int64_t *dsid = NULL, proto;
    double maxv = 0;
    char recipe[128], *src = NULL;
    int ntask = bi->nmetric;
    memset(stats, 0, sizeof *stats);
    if (!sp)
        return xerr_set(e, XE_USAGE, "unknown space '%s' (valid: %s)", bi->space, space_list());
    if (ntask < 1)
        return xerr_set(e, XE_USAGE, "give at least one --metric TASK=COLUMN");
    if (table_read(bi->file, &t, e))
        return e->code;
    if (t.n < 1) {
        xerr_set(e, XE_FAIL, "'%s': empty file, expected a header row", bi->file);
        goto cleanup;
    }
    tcol = calloc((size_t)ntask, sizeof *tcol);
    vcol = calloc((size_t)ntask, sizeof *vcol);
    dsid = calloc((size_t)ntask, sizeof *dsid);
    src = realpath(bi->file, NULL);
    if (!tcol || !vcol || !dsid || !src) {
        xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    if ((acol = column(&t.rows[0], bi->arch_col, bi->file, e)) < 0)
        goto cleanup;
    for (int k = 0; k < ntask; k++) {
        vcol[k] = -1;
        if ((tcol[k] = column(&t.rows[0], bi->cols[k], bi->file, e)) < 0)
            goto cleanup;
        for (int j = 0; j < bi->nvalid; j++)
            if (!strcmp(bi->vtasks[j], bi->tasks[k]) &&
                (vcol[k] = column(&t.rows[0], bi->vcols[j], bi->file, e)) < 0)
                goto cleanup;
    }
    for (int j = 0; j < bi->nvalid; j++) {
        int k;
        for (k = 0; k < ntask && strcmp(bi->vtasks[j], bi->tasks[k]); k++)
            ;
        if (k == ntask) {
            rc = xerr_set(e, XE_USAGE, "--valid-metric names task '%s' that no --metric names", bi->vtasks[j]);
            goto cleanup;
        }
    }
    /* First pass: every row well-formed, every value a number; scale. */
    for (long i = 1; i < t.n; i++) {
        const Row *r = &t.rows[i];
        if (r->n == 1 && !r->f[0][0])
            continue;
        if (r->n != t.rows[0].n) {
            xerr_set(e, XE_FAIL, "'%s': line %ld: %d fields, the header has %d", bi->file, i + 1, r->n,
                     t.rows[0].n);
            goto cleanup;
        }
        for (int k = 0; k < ntask; k++)
            for (int w = 0; w < 2; w++) {
                int c = w ? vcol[k] : tcol[k];
                double v;
                if (c < 0)
                    continue;
                v = cell_value(r->f[c], bi->file, i + 1, t.rows[0].f[c], e);
                if (v < 0)
                    goto cleanup;
                if (v > maxv)
                    maxv = v;
            }
    }
    percent = !strcmp(bi->scale, "percent") || (!strcmp(bi->scale, "auto") && maxv > 1.0);
    if (maxv > (percent ? 100.0 : 1.0)) {
        xerr_set(e, XE_FAIL, "'%s': accuracy %g is above %s", bi->file, maxv, percent ? "100 (percent)" : "1 (fraction)");
        goto cleanup;
    }
    if (store_open(&st, bi->db, 1, e) || store_begin(&st, e))
        goto cleanup;
    snprintf(recipe, sizeof recipe, "{\"kind\":\"imported\",\"space\":\"%s\",\"epochs\":%d}", sp->name, bi->epochs);
    if (store_protocol_id(&st, "imported", recipe, &proto, e))
        goto cleanup;
    for (int k = 0; k < ntask; k++) {
        int created;
        if (import_virtual_dataset(&st, bi->tasks[k], "bench", src, 0, &dsid[k], &created, e))
            goto cleanup;
        stats->datasets += created;
    }
    if (store_prepare(&st, &ins,
                      "INSERT INTO runs (arch_id, dataset_id, protocol_id, seed, status, source, valid_acc, "
                      "test_acc, epochs_done, finished_at) VALUES (?1, ?2, ?3, 0, 'done', 'imported', ?4, ?5, ?6, "
                      "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) ON CONFLICT DO NOTHING",
                      e))
        goto cleanup;
    for (long i = 1; i < t.n; i++) {
        const Row *r = &t.rows[i];
        char canon[1024], hash[65];
        int64_t arch;
        if (r->n == 1 && !r->f[0][0])
            continue;
        stats->rows++;
        if (space_canonical_hash(sp, r->f[acol], canon, sizeof canon, hash, e)) {
            xerr_prefix(e, "'%s': line %ld: ", bi->file, i + 1);
            goto cleanup;
        }
        if (store_arch_id(&st, sp->name, canon, hash, &arch, e))
            goto cleanup;
        for (int k = 0; k < ntask; k++) {
            double tv = cell_value(r->f[tcol[k]], bi->file, i + 1, "", e);
            double vv = vcol[k] >= 0 ? cell_value(r->f[vcol[k]], bi->file, i + 1, "", e) : NAN;
            if (isnan(tv) && isnan(vv))
                continue;
            sqlite3_reset(ins);
            sqlite3_bind_int64(ins, 1, arch);
            sqlite3_bind_int64(ins, 2, dsid[k]);
            sqlite3_bind_int64(ins, 3, proto);
            if (isnan(vv))
                sqlite3_bind_null(ins, 4);
            else
                sqlite3_bind_double(ins, 4, percent ? vv / 100.0 : vv);
            if (isnan(tv))
                sqlite3_bind_null(ins, 5);
            else
                sqlite3_bind_double(ins, 5, percent ? tv / 100.0 : tv);
            if (bi->epochs > 0)
                sqlite3_bind_int(ins, 6, bi->epochs);
            else
                sqlite3_bind_int(ins, 6, 0);
            if (sqlite3_step(ins) != SQLITE_DONE) {
                store_fail(&st, e, "adding a run");
                goto cleanup;
            }
            if (sqlite3_changes(st.db))
                stats->added++;
            else
                stats->present++;
        }
    }
    sqlite3_finalize(ins);
    ins = NULL;
    if (store_commit(&st, e))
        goto cleanup;
    rc = XE_OK;
cleanup:
    sqlite3_finalize(ins);
    if (rc && st.db)
        store_abandon(&st);
    else if (st.db)
        store_close(&st);
    table_free(&t);
    free(tcol), free(vcol), free(dsid), free(src);
    return rc && e->code ? e->code : rc;
}
