/* Loading the meta-dataset from the store, and rank statistics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta.h"
#include "model/metaset.h"

int metaset_protocol(Store *st, const Space *sp, const char *want, int64_t *id, char name[128], char hash[65],
                     XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc, found = 0;
    char other[65] = "";
    if (store_prepare(st, &q,
                      "SELECT p.id, p.name, p.hash, count(*) FROM runs r JOIN archs a ON a.id = r.arch_id"
                      " JOIN protocols p ON p.id = r.protocol_id WHERE r.status = 'done' AND r.valid_acc IS NOT NULL"
                      " AND a.space = ?1 AND (?2 IS NULL OR p.name = ?2 OR p.hash LIKE ?2 || '%')"
                      " GROUP BY p.id ORDER BY count(*) DESC, p.id",
                      e))
        return e->code;
    sqlite3_bind_text(q, 1, sp->name, -1, SQLITE_STATIC);
    if (want && *want)
        sqlite3_bind_text(q, 2, want, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (found++) {
            snprintf(other, sizeof other, "%s", (const char *)sqlite3_column_text(q, 2));
            break;
        }
        *id = sqlite3_column_int64(q, 0);
        snprintf(name, 128, "%s", (const char *)sqlite3_column_text(q, 1));
        snprintf(hash, 65, "%s", (const char *)sqlite3_column_text(q, 2));
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(st, e, "reading protocols");
    if (!found)
        return want && *want ? xerr_set(e, XE_FAIL, "no finished %s runs under protocol '%s' in '%s'", sp->name, want,
                                        st->path)
                             : xerr_set(e, XE_FAIL, "no finished %s runs in '%s' (train some with xfer-train-meta)",
                                        sp->name, st->path);
    if (found > 1 && want && *want)
        return xerr_set(e, XE_USAGE,
                        "protocol '%s' matches several recipes (%.12s, %.12s, ...): give a hash prefix (xfer-train-meta"
                        " status shows them)",
                        want, hash, other);
    return XE_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int metaset_load(Store *st, const Space *sp, const char *protocol, int min_runs, MetaSet *ms, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int64_t pid = 0, *ids = NULL, *row_arch = NULL;
    int rc, cap = 0, acap = 0;
    Protocol p;
    memset(ms, 0, sizeof *ms);
    ms->sp = sp;
    if (metaset_protocol(st, sp, protocol, &pid, ms->protocol, ms->protocol_hash, e))
        return e->code;
    {
        /* the macro the params and FLOPs baselines are counted at */
        sqlite3_stmt *pq = NULL;
        if (store_prepare(st, &pq, "SELECT recipe FROM protocols WHERE id = ?1", e))
            return e->code;
        sqlite3_bind_int64(pq, 1, pid);
        XErr pe = { 0 };
        if (sqlite3_step(pq) != SQLITE_ROW) {
            sqlite3_finalize(pq);
            return store_fail(st, e, "reading a protocol");
        }
        /* an imported recipe may not say: the space's default macro */
        if (protocol_parse((const char *)sqlite3_column_text(pq, 0), &p, &pe)) {
            p.width = sp->macro_default.C;
            p.cells = sp->macro_default.N;
        }
        sqlite3_finalize(pq);
    }
    if (store_prepare(st, &q,
                      "SELECT d.id, d.name, a.id, a.arch, avg(r.valid_acc) FROM runs r JOIN archs a ON a.id = r.arch_id"
                      " JOIN datasets d ON d.id = r.dataset_id WHERE r.status = 'done' AND r.valid_acc IS NOT NULL"
                      " AND r.protocol_id = ?1 AND a.space = ?2 AND d.id IN (SELECT r2.dataset_id FROM runs r2"
                      " WHERE r2.status = 'done' AND r2.valid_acc IS NOT NULL AND r2.protocol_id = ?1"
                      " GROUP BY r2.dataset_id HAVING count(DISTINCT r2.arch_id) >= ?3)"
                      " GROUP BY d.id, a.id ORDER BY d.name, a.id",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, pid);
    sqlite3_bind_text(q, 2, sp->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, min_runs < 1 ? 1 : min_runs);
    rc = XE_OK;
    while (!rc && sqlite3_step(q) == SQLITE_ROW) {
        int64_t did = sqlite3_column_int64(q, 0);
        if (!ms->ntasks || ms->tasks[ms->ntasks - 1].dataset_id != did) {
            MetaTask *t = realloc(ms->tasks, (size_t)(ms->ntasks + 1) * sizeof *t);
            if (!t) {
                rc = xerr_set(e, XE_FAIL, "out of memory");
                break;
            }
            ms->tasks = t;
            memset(&t[ms->ntasks], 0, sizeof *t);
            t[ms->ntasks].dataset_id = did;
            snprintf(t[ms->ntasks].name, sizeof t->name, "%s", (const char *)sqlite3_column_text(q, 1));
            ms->ntasks++;
        }
        if (ms->n == cap) {
            cap = cap ? 2 * cap : 1024;
            int *tk = realloc(ms->task, (size_t)cap * sizeof *tk);
            if (tk)
                ms->task = tk;
            float *ac = realloc(ms->acc, (size_t)cap * sizeof *ac);
            if (ac)
                ms->acc = ac;
            int64_t *ra = realloc(row_arch, (size_t)cap * sizeof *ra);
            if (ra)
                row_arch = ra;
            if (!tk || !ac || !ra) {
                rc = xerr_set(e, XE_FAIL, "out of memory");
                break;
            }
        }
        ms->task[ms->n] = ms->ntasks - 1;
        row_arch[ms->n] = sqlite3_column_int64(q, 2);
        ms->acc[ms->n] = (float)sqlite3_column_double(q, 4);
        ms->tasks[ms->ntasks - 1].n++;
        ms->n++;
    }
    sqlite3_finalize(q);
    if (!rc && !ms->n)
        rc = xerr_set(e, XE_FAIL, "no dataset has %d finished %s runs under protocol '%s' (%.12s) in '%s'", min_runs,
                      sp->name, ms->protocol, ms->protocol_hash, st->path);
    if (rc)
        goto fail;

    /* the distinct archs, sorted by id; rows point at them */
    if (!(ids = malloc((size_t)ms->n * sizeof *ids))) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto fail;
    }
    memcpy(ids, row_arch, (size_t)ms->n * sizeof *ids);
    qsort(ids, (size_t)ms->n, sizeof *ids, cmp_i64);
    for (int i = 0; i < ms->n; i++)
        if (!acap || ids[acap - 1] != ids[i])
            ids[acap++] = ids[i];
    ms->narchs = acap;
    ms->arch = malloc((size_t)ms->n * sizeof *ms->arch);
    ms->y = malloc((size_t)ms->n * sizeof *ms->y);
    ms->tokens = malloc((size_t)acap * (size_t)sp->token_len * sizeof *ms->tokens);
    ms->arch_str = calloc((size_t)acap, sizeof *ms->arch_str);
    ms->params = malloc((size_t)acap * sizeof *ms->params);
    ms->flops = malloc((size_t)acap * sizeof *ms->flops);
    if (!ms->arch || !ms->y || !ms->tokens || !ms->arch_str || !ms->params || !ms->flops) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < ms->n; i++) {
        int64_t *hit = bsearch(&row_arch[i], ids, (size_t)acap, sizeof *ids, cmp_i64);
        ms->arch[i] = (int)(hit - ids);
    }
    if (store_prepare(st, &q, "SELECT arch FROM archs WHERE id = ?1", e)) {
        rc = e->code;
        goto fail;
    }
    for (int k = 0; !rc && k < acap; k++) {
        SpaceArch a;
        SpaceMacro m = { p.width, p.cells, 10, 3, 32, 32 };
        SpaceCost c;
        sqlite3_bind_int64(q, 1, ids[k]);
        if (sqlite3_step(q) != SQLITE_ROW) {
            rc = store_fail(st, e, "reading archs");
            break;
        }
        if (!(ms->arch_str[k] = strdup((const char *)sqlite3_column_text(q, 0))))
            rc = xerr_set(e, XE_FAIL, "out of memory");
        else if (!(rc = sp->parse(ms->arch_str[k], &a, e))) {
            sp->encode(&a, ms->tokens + (size_t)k * sp->token_len);
            if (!(rc = sp->cost(&a, &m, &c, e))) {
                ms->params[k] = (double)c.params;
                ms->flops[k] = (double)c.flops;
            }
        }
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    if (rc)
        goto fail;
    for (int t = 0; t < ms->ntasks; t++) {
        double s = 0, ss = 0;
        MetaTask *mt = &ms->tasks[t];
        for (int i = 0; i < ms->n; i++)
            if (ms->task[i] == t)
                s += ms->acc[i];
        mt->mean = s / mt->n;
        for (int i = 0; i < ms->n; i++)
            if (ms->task[i] == t)
                ss += (ms->acc[i] - mt->mean) * (ms->acc[i] - mt->mean);
        mt->std = mt->n > 1 ? sqrt(ss / (mt->n - 1)) : 0;
        if (!(mt->std > 1e-12))
            mt->std = 1;
    }
    for (int i = 0; i < ms->n; i++)
        ms->y[i] = (float)((ms->acc[i] - ms->tasks[ms->task[i]].mean) / ms->tasks[ms->task[i]].std);
    free(ids);
    free(row_arch);
    return XE_OK;
fail:
    free(ids);
    free(row_arch);
    metaset_free(ms);
    return rc;
}

void metaset_free(MetaSet *ms)
{
    for (int k = 0; ms->arch_str && k < ms->narchs; k++)
        free(ms->arch_str[k]);
    free(ms->tasks), free(ms->task), free(ms->arch), free(ms->acc), free(ms->y), free(ms->tokens);
    free(ms->arch_str), free(ms->params), free(ms->flops);
    memset(ms, 0, sizeof *ms);
}

int metaset_task(const MetaSet *ms, const char *name)
{
    for (int t = 0; t < ms->ntasks; t++)
        if (!strcmp(ms->tasks[t].name, name))
            return t;
    return -1;
}

/* Rows of the tasks flagged in use, re-indexed 0.. in task order; map[t]
 * is the new index or -1. */
typedef struct Rows {
    int n, ntasks;
    int *task, *tokens;
    float *y;
} Rows;

static void rows_free(Rows *r)
{
    free(r->task), free(r->tokens), free(r->y);
    memset(r, 0, sizeof *r);
}

static int rows_of(const MetaSet *ms, const char *use, int *map, Rows *r, XErr *e)
{
    int L = ms->sp->token_len;
    memset(r, 0, sizeof *r);
    for (int t = 0; t < ms->ntasks; t++)
        map[t] = use[t] ? r->ntasks++ : -1;
    for (int i = 0; i < ms->n; i++)
        r->n += use[ms->task[i]];
    r->task = malloc((size_t)(r->n + 1) * sizeof *r->task);
    r->tokens = malloc((size_t)(r->n + 1) * L * sizeof *r->tokens);
    r->y = malloc((size_t)(r->n + 1) * sizeof *r->y);
    if (!r->task || !r->tokens || !r->y) {
        rows_free(r);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    for (int i = 0, k = 0; i < ms->n; i++)
        if (use[ms->task[i]]) {
            r->task[k] = map[ms->task[i]];
            memcpy(r->tokens + (size_t)k * L, ms->tokens + (size_t)ms->arch[i] * L, (size_t)L * sizeof *r->tokens);
            r->y[k++] = ms->y[i];
        }
    return XE_OK;
}

int metaset_fit(const MetaSet *ms, const char *use, int *map, const XferConfig *c, XferEpochFn fn, void *ctx,
                XferModel **m, XErr *e)
{
    Rows r;
    int rc;
    *m = NULL;
    if ((rc = rows_of(ms, use, map, &r, e)))
        return rc;
    if (r.n < 50 || r.ntasks < 1) {
        xerr_set(e, XE_FAIL, "the meta-dataset is too small: %d finished runs on %d source tasks (at least 50 are needed)",
                 r.n, r.ntasks);
        rows_free(&r);
        return XE_FAIL;
    }
    if (!(rc = xfer_new(m, c, e)) && (rc = xfer_fit(*m, r.ntasks, r.n, r.task, r.tokens, r.y, fn, ctx, e))) {
        xfer_free(*m);
        *m = NULL;
    }
    rows_free(&r);
    return rc;
}

int metaset_task_rows(const MetaSet *ms, int t, int **tokens, float **acc, int *n, XErr *e)
{
    int L = ms->sp->token_len, k = 0;
    *n = t >= 0 && t < ms->ntasks ? ms->tasks[t].n : 0;
    *tokens = malloc((size_t)(*n + 1) * L * sizeof **tokens);
    *acc = malloc((size_t)(*n + 1) * sizeof **acc);
    if (!*tokens || !*acc) {
        free(*tokens), free(*acc);
        *tokens = NULL, *acc = NULL;
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    for (int i = 0; i < ms->n; i++)
        if (ms->task[i] == t) {
            memcpy(*tokens + (size_t)k * L, ms->tokens + (size_t)ms->arch[i] * L, (size_t)L * sizeof **tokens);
            (*acc)[k++] = ms->acc[i];
        }
    return XE_OK;
}

int metaset_fit_target(XferModel *m, int n, const int *tokens, const float *acc, int freeze, double *mean,
                       double *std, int *task, XErr *e)
{
    XferResidualOpts ro;
    float *y = malloc((size_t)(n + 1) * sizeof *y);
    double s = 0, ss = 0;
    int rc;
    if (!y)
        return xerr_set(e, XE_FAIL, "out of memory");
    for (int i = 0; i < n; i++)
        s += acc[i];
    *mean = n ? s / n : 0;
    for (int i = 0; i < n; i++)
        ss += (acc[i] - *mean) * (acc[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0;
    if (!(*std > 1e-12))
        *std = 1;
    for (int i = 0; i < n; i++)
        y[i] = (float)((acc[i] - *mean) / *std);
    xfer_residual_default(&ro);
    ro.freeze_universal = freeze;
    rc = xfer_fit_residual(m, n, tokens, y, &ro, task, e);
    free(y);
    return rc;
}

/* ---- rank statistics ---- */

static const double *sort_key;
static int cmp_key(const void *a, const void *b)
{
    double x = sort_key[*(const int *)a], y = sort_key[*(const int *)b];
    return (x > y) - (x < y);
}

/* Average ranks (1-based) of v, ties sharing their mean rank. */
static int ranks(const double *v, int n, double *r)
{
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!idx)
        return -1;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    sort_key = v;
    qsort(idx, (size_t)n, sizeof *idx, cmp_key);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
            j++;
        for (int k = i; k <= j; k++)
            r[idx[k]] = 0.5 * (i + j) + 1;
        i = j + 1;
    }
    free(idx);
    return 0;
}

double rank_spearman(const double *p, const double *t, int n)
{
    double *rp = malloc((size_t)n * sizeof *rp), *rt = malloc((size_t)n * sizeof *rt), mp = 0, mt = 0, sxy = 0,
           sxx = 0, syy = 0, rho = NAN;
    if (n >= 2 && rp && rt && !ranks(p, n, rp) && !ranks(t, n, rt)) {
        for (int i = 0; i < n; i++)
            mp += rp[i], mt += rt[i];
        mp /= n, mt /= n;
        for (int i = 0; i < n; i++) {
            sxy += (rp[i] - mp) * (rt[i] - mt);
            sxx += (rp[i] - mp) * (rp[i] - mp);
            syy += (rt[i] - mt) * (rt[i] - mt);
        }
        if (sxx > 0 && syy > 0)
            rho = sxy / sqrt(sxx * syy);
    }
    free(rp), free(rt);
    return rho;
}

double rank_kendall(const double *p, const double *t, int n)
{
    double conc = 0, disc = 0, tp = 0, tt = 0;
    if (n < 2)
        return NAN;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double a = p[i] - p[j], b = t[i] - t[j];
            if (a == 0 && b == 0)
                continue;
            if (a == 0)
                tp++;
            else if (b == 0)
                tt++;
            else if ((a > 0) == (b > 0))
                conc++;
            else
                disc++;
        }
    /* tau-b: ties in one variable only count in that side's denominator */
    {
        double d1 = conc + disc + tp, d2 = conc + disc + tt;
        return d1 > 0 && d2 > 0 ? (conc - disc) / sqrt(d1 * d2) : NAN;
    }
}

double rank_top_precision(const double *p, const double *t, int n, double q)
{
    int k = (int)ceil(q * n), hit = 0;
    int *ip = malloc((size_t)n * sizeof *ip), *it = malloc((size_t)n * sizeof *it);
    char *top = calloc((size_t)n, 1);
    double r = NAN;
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    if (n >= 1 && ip && it && top) {
        for (int i = 0; i < n; i++)
            ip[i] = it[i] = i;
        sort_key = t;
        qsort(it, (size_t)n, sizeof *it, cmp_key);
        sort_key = p;
        qsort(ip, (size_t)n, sizeof *ip, cmp_key);
        for (int i = n - k; i < n; i++)
            top[it[i]] = 1;
        for (int i = n - k; i < n; i++)
            hit += top[ip[i]];
        r = (double)hit / k;
    }
    free(ip), free(it), free(top);
    return r;
}
