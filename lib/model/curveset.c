/* Loading learning curves from the store for the ranker: all done runs of
 * a protocol, one run's curve so far, and the best finished run of a
 * dataset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/curveset.h"
#include "model/metaset.h"

/* Grows *p to hold at least n elements of size sz (doubling). */
static int grow(void *p, int *cap, int n, size_t sz)
{
    void *q;
    int c = *cap ? *cap : 256;
    if (n <= *cap)
        return 0;
    while (c < n)
        c *= 2;
    if (!(q = realloc(*(void **)p, (size_t)c * sz)))
        return -1;
    *(void **)p = q;
    *cap = c;
    return 0;
}

/* Ends the run being read (id cur; none when 0): kept, counted in its
 * task, or dropped with its points. */
static void close_run(CurveSet *cs, int64_t cur, int ok, int len, int min_epochs, const long *off, long *nacc)
{
    if (!cur)
        return;
    if (ok && len >= min_epochs) {
        CurveTask *t = &cs->tasks[cs->ntasks - 1];
        cs->runs[cs->n++].epochs = len;
        t->n++;
        if (len > t->epochs)
            t->epochs = len;
    } else {
        *nacc = off[cs->n];
        cs->skipped++;
    }
}

int curveset_load(Store *st, const Space *sp, const char *protocol, int min_epochs, CurveSet *cs, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc = XE_OK, step, rcap = 0, acap = 0, L = sp->token_len;
    long nacc = 0, *off = NULL;
    int64_t cur = 0;
    int cur_ok = 0, cur_len = 0;
    memset(cs, 0, sizeof *cs);
    cs->sp = sp;
    if (min_epochs < 1)
        min_epochs = 1;
    if (metaset_protocol(st, sp, protocol, &cs->protocol_id, cs->protocol, cs->protocol_hash, e))
        return e->code;
    /* every point of every done run, run by run; a run is kept when its
     * points are epochs 1 .. k with validation accuracies */
    if (store_prepare(st, &q,
                      "SELECT r.id, d.id, d.name, a.arch, r.valid_acc, c.epoch, c.valid_acc FROM runs r"
                      " JOIN archs a ON a.id = r.arch_id JOIN datasets d ON d.id = r.dataset_id"
                      " JOIN curves c ON c.run_id = r.id WHERE r.status = 'done' AND r.valid_acc IS NOT NULL"
                      " AND r.protocol_id = ?1 AND a.space = ?2 ORDER BY d.name, r.id, c.epoch",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, cs->protocol_id);
    sqlite3_bind_text(q, 2, sp->name, -1, SQLITE_STATIC);
    while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t run = sqlite3_column_int64(q, 0), did = sqlite3_column_int64(q, 1);
        int epoch = sqlite3_column_int(q, 5);
        if (run != cur) {
            close_run(cs, cur, cur_ok, cur_len, min_epochs, off, &nacc);
            cur = run;
            cur_len = 0;
            cur_ok = 1;
            if (!cs->ntasks || cs->tasks[cs->ntasks - 1].dataset_id != did) {
                CurveTask *t = realloc(cs->tasks, (size_t)(cs->ntasks + 1) * sizeof *t);
                if (!t) {
                    rc = xerr_set(e, XE_FAIL, "out of memory");
                    break;
                }
                cs->tasks = t;
                memset(&t[cs->ntasks], 0, sizeof *t);
                t[cs->ntasks].dataset_id = did;
                snprintf(t[cs->ntasks].name, sizeof t->name, "%s", (const char *)sqlite3_column_text(q, 2));
                cs->ntasks++;
            }
            if (cs->n == rcap) {
                /* the run tables grow together */
                int c = rcap ? 2 * rcap : 256;
                int64_t *ri = realloc(cs->run_id, (size_t)c * sizeof *ri);
                RankerRun *rr = ri ? realloc(cs->runs, (size_t)c * sizeof *rr) : NULL;
                int *tk = rr ? realloc(cs->tokens, (size_t)c * L * sizeof *tk) : NULL;
                long *of = tk ? realloc(off, (size_t)c * sizeof *of) : NULL;
                cs->run_id = ri ? ri : cs->run_id;
                cs->runs = rr ? rr : cs->runs;
                cs->tokens = tk ? tk : cs->tokens;
                if (!of) {
                    rc = xerr_set(e, XE_FAIL, "out of memory");
                    break;
                }
                off = of;
                rcap = c;
            }
            {
                SpaceArch a;
                XErr pe = { 0 };
                if (sp->parse((const char *)sqlite3_column_text(q, 3), &a, &pe)) {
                    cur_ok = 0; /* an arch this build cannot read: not a curve to learn from */
                } else {
                    sp->encode(&a, cs->tokens + (size_t)cs->n * L);
                }
            }
            cs->run_id[cs->n] = run;
            cs->runs[cs->n] = (RankerRun){ .dataset = cs->ntasks - 1, .final = (float)sqlite3_column_double(q, 4) };
            off[cs->n] = nacc;
        }
        if (!cur_ok)
            continue;
        if (epoch != cur_len + 1 || sqlite3_column_type(q, 6) == SQLITE_NULL) {
            /* a gap or a missing value: the run is left out */
            cur_ok = 0;
            continue;
        }
        if (grow(&cs->acc, &acap, (int)nacc + 1, sizeof *cs->acc)) {
            rc = xerr_set(e, XE_FAIL, "out of memory");
            break;
        }
        cs->acc[nacc++] = (float)sqlite3_column_double(q, 6);
        cur_len++;
    }
    if (!rc && step != SQLITE_DONE)
        rc = store_fail(st, e, "reading curves");
    if (!rc)
        close_run(cs, cur, cur_ok, cur_len, min_epochs, off, &nacc);
    sqlite3_finalize(q);
    /* drop tasks left without runs, then point the runs at their data */
    if (!rc) {
        int k = 0;
        for (int t = 0; t < cs->ntasks; t++) {
            if (!cs->tasks[t].n)
                continue;
            for (int i = 0; i < cs->n; i++)
                if (cs->runs[i].dataset == t)
                    cs->runs[i].dataset = k;
            cs->tasks[k++] = cs->tasks[t];
        }
        cs->ntasks = k;
        for (int i = 0; i < cs->n; i++) {
            cs->runs[i].tokens = cs->tokens + (size_t)i * L;
            cs->runs[i].curve = cs->acc + off[i];
        }
    }
    free(off);
    if (rc)
        curveset_free(cs);
    return rc;
}

void curveset_free(CurveSet *cs)
{
    free(cs->tasks), free(cs->run_id), free(cs->runs), free(cs->tokens), free(cs->acc);
    memset(cs, 0, sizeof *cs);
}

int curveset_task(const CurveSet *cs, const char *name)
{
    for (int t = 0; t < cs->ntasks; t++)
        if (!strcmp(cs->tasks[t].name, name))
            return t;
    return -1;
}

int curveset_fit(const CurveSet *cs, const char *use, int *map, Ranker *r, RankerStepFn fn, int every, void *ctx,
                 XErr *e)
{
    RankerRun *runs = malloc((size_t)(cs->n ? cs->n : 1) * sizeof *runs);
    int *idx = malloc((size_t)(cs->ntasks ? cs->ntasks : 1) * sizeof *idx); /* task -> embedding index, -1 */
    int n = 0, nds = 0, rc;
    if (!runs || !idx) {
        free(runs);
        free(idx);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    for (int t = 0; t < cs->ntasks; t++) {
        idx[t] = !use || use[t] ? nds++ : -1;
        if (map)
            map[t] = idx[t];
    }
    for (int i = 0; i < cs->n; i++)
        if (idx[cs->runs[i].dataset] >= 0) {
            runs[n] = cs->runs[i];
            runs[n++].dataset = idx[cs->runs[i].dataset];
        }
    if (!nds)
        rc = xerr_set(e, XE_FAIL, "ranker fit: no task to fit on");
    else
        rc = ranker_fit(r, nds, n, runs, fn, every, ctx, e);
    free(runs);
    free(idx);
    return rc;
}

int curve_read(Store *st, int64_t run_id, float **acc, int *epochs, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int step, n = 0, cap = 0;
    float *v = NULL;
    *acc = NULL;
    *epochs = 0;
    if (store_prepare(st, &q, "SELECT epoch, valid_acc FROM curves WHERE run_id = ?1 ORDER BY epoch", e))
        return e->code;
    sqlite3_bind_int64(q, 1, run_id);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_int(q, 0) != n + 1 || sqlite3_column_type(q, 1) == SQLITE_NULL)
            continue; /* past a gap: not part of the prefix */
        if (grow(&v, &cap, n + 1, sizeof *v)) {
            sqlite3_finalize(q);
            free(v);
            return xerr_set(e, XE_FAIL, "out of memory");
        }
        v[n++] = (float)sqlite3_column_double(q, 1);
    }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE) {
        free(v);
        return store_fail(st, e, "reading a curve");
    }
    *acc = v;
    *epochs = n;
    return XE_OK;
}

int curve_best_run(Store *st, const Space *sp, int64_t dataset_id, int64_t protocol_id, BestRun *b, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int step;
    int64_t id = 0;
    double acc = 0;
    char *arch = NULL;
    if (store_prepare(st, &q,
                      "SELECT r.id, r.valid_acc, a.arch FROM runs r JOIN archs a ON a.id = r.arch_id"
                      " WHERE r.dataset_id = ?1 AND r.protocol_id = ?2 AND a.space = ?3 AND r.status = 'done'"
                      " AND r.valid_acc IS NOT NULL AND EXISTS (SELECT 1 FROM curves c WHERE c.run_id = r.id"
                      " AND c.epoch = 1 AND c.valid_acc IS NOT NULL) ORDER BY r.valid_acc DESC, r.id LIMIT 1",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, dataset_id);
    sqlite3_bind_int64(q, 2, protocol_id);
    sqlite3_bind_text(q, 3, sp->name, -1, SQLITE_STATIC);
    if ((step = sqlite3_step(q)) == SQLITE_ROW) {
        id = sqlite3_column_int64(q, 0);
        acc = sqlite3_column_double(q, 1);
        if (id != b->id && !(arch = strdup((const char *)sqlite3_column_text(q, 2)))) {
            sqlite3_finalize(q);
            return xerr_set(e, XE_FAIL, "out of memory");
        }
    }
    sqlite3_finalize(q);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return store_fail(st, e, "finding the best run");
    if (id == b->id) {
        b->acc = acc;
        return XE_OK;
    }
    best_run_release(b);
    if (id) {
        SpaceArch a;
        int rc = sp->parse(arch, &a, e);
        if (!rc)
            rc = curve_read(st, id, &b->curve, &b->epochs, e);
        free(arch);
        if (rc)
            return rc;
        sp->encode(&a, b->tokens);
        b->id = id;
        b->acc = acc;
    }
    return XE_OK;
}

void best_run_release(BestRun *b)
{
    free(b->curve);
    memset(b, 0, sizeof *b);
}
