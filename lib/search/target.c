/* Resolving a search's target in the store: dataset, protocol, macro,
 * meta-dataset and source tasks, and the universal model on the sources. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "search/target.h"

/* The stored protocol of `want` (see search_target_open) into t; *done:
 * its finished runs in the space. */
static int protocol_pick(Store *st, SearchTarget *t, const char *want, int train, long *done, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc, found = 0;
    char other[65] = "";
    *done = 0;
    if (store_prepare(st, &q,
                      "SELECT p.id, p.name, p.hash, (SELECT count(*) FROM runs r JOIN archs a ON a.id = r.arch_id"
                      " WHERE r.protocol_id = p.id AND r.status = 'done' AND r.valid_acc IS NOT NULL AND a.space = ?1)"
                      " AS n FROM protocols p WHERE ?2 IS NULL OR p.name = ?2 OR p.hash LIKE ?2 || '%'"
                      " ORDER BY n DESC, p.id",
                      e))
        return e->code;
    sqlite3_bind_text(q, 1, t->sp->name, -1, SQLITE_STATIC);
    if (want)
        sqlite3_bind_text(q, 2, want, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (found++) {
            snprintf(other, sizeof other, "%s", (const char *)sqlite3_column_text(q, 2));
            break;
        }
        t->protocol_id = sqlite3_column_int64(q, 0);
        snprintf(t->protocol_name, sizeof t->protocol_name, "%s", (const char *)sqlite3_column_text(q, 1));
        snprintf(t->protocol_hash, sizeof t->protocol_hash, "%s", (const char *)sqlite3_column_text(q, 2));
        *done = sqlite3_column_int64(q, 3);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(st, e, "reading protocols");
    if (found > 1 && want)
        return xerr_set(e, XE_USAGE,
                        "protocol '%s' matches several recipes (%.12s, %.12s, ...): give a hash prefix"
                        " (xfer-train-meta status shows them)",
                        want, t->protocol_hash, other);
    if (found && (*done || (train && want)))
        return XE_OK;
    if (!train)
        return want ? xerr_set(e, XE_FAIL, "no finished %s runs under protocol '%s' in '%s'", t->sp->name, want,
                               st->path)
                    : xerr_set(e, XE_FAIL, "no finished %s runs in '%s' (train some with xfer-train-meta)",
                               t->sp->name, st->path);
    {
        /* a preset not stored yet: the train evaluator stores it */
        Protocol p;
        char *json;
        if (protocol_preset(want ? want : "cheap", &p, e))
            return e->code;
        if (!(json = protocol_json(&p)))
            return xerr_set(e, XE_FAIL, "out of memory");
        rc = store_protocol_id(st, p.name, json, &t->protocol_id, e);
        free(json);
        if (rc)
            return rc;
        if (store_prepare(st, &q, "SELECT name, hash FROM protocols WHERE id = ?1", e))
            return e->code;
        sqlite3_bind_int64(q, 1, t->protocol_id);
        if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            snprintf(t->protocol_name, sizeof t->protocol_name, "%s", (const char *)sqlite3_column_text(q, 0));
            snprintf(t->protocol_hash, sizeof t->protocol_hash, "%s", (const char *)sqlite3_column_text(q, 1));
        }
        sqlite3_finalize(q);
        return rc == SQLITE_ROW ? XE_OK : store_fail(st, e, "reading protocols");
    }
}

/* The network cells are costed in: the protocol's width and cells on the
 * task's images (32x32x3, 10 classes for a virtual task, as metaset). */
static int macro_of(Store *st, SearchTarget *t, int train, XErr *e)
{
    sqlite3_stmt *q = NULL;
    Protocol p;
    XErr pe = { 0 };
    int rc, parsed;
    if (store_prepare(st, &q, "SELECT recipe FROM protocols WHERE id = ?1", e))
        return e->code;
    sqlite3_bind_int64(q, 1, t->protocol_id);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return store_fail(st, e, "reading a protocol");
    }
    parsed = !protocol_parse((const char *)sqlite3_column_text(q, 0), &p, &pe);
    sqlite3_finalize(q);
    if (!parsed && train)
        return xerr_set(e, XE_FAIL,
                        "protocol '%s' (%.12s) is an imported record without a training recipe: the train evaluator"
                        " cannot train under it",
                        t->protocol_name, t->protocol_hash);
    t->macro = t->sp->macro_default;
    if (parsed) {
        t->macro.C = p.width;
        t->macro.N = p.cells;
    }
    t->macro.classes = 10, t->macro.in_channels = 3, t->macro.height = 32, t->macro.width = 32;
    if (store_prepare(st, &q,
                      "SELECT kind = 'stored', coalesce(classes, 0), coalesce(channels, 0), coalesce(height, 0),"
                      " coalesce(width, 0) FROM datasets WHERE id = ?1",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, t->dataset_id);
    if ((rc = sqlite3_step(q)) == SQLITE_ROW && (t->stored = sqlite3_column_int(q, 0))) {
        t->macro.classes = sqlite3_column_int(q, 1);
        t->macro.in_channels = sqlite3_column_int(q, 2);
        t->macro.height = sqlite3_column_int(q, 3);
        t->macro.width = sqlite3_column_int(q, 4);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? XE_OK : store_fail(st, e, "reading a dataset");
}

int search_target_open(Store *st, const char *name, const Space *sp, const char *protocol, int train, int min_runs,
                       SearchTarget *t, XErr *e)
{
    long done;
    int rc;
    memset(t, 0, sizeof *t);
    t->sp = sp;
    t->target = -1;
    t->best_recorded = NAN;
    snprintf(t->name, sizeof t->name, "%s", name);
    if (store_dataset_find(st, name, &t->dataset_id, e))
        return e->code;
    if (!t->dataset_id)
        return xerr_set(e, XE_FAIL, "unknown target '%s' in '%s' ('xfer-ingest list' shows the stored datasets)", name,
                        st->path);
    if ((rc = protocol_pick(st, t, protocol, train, &done, e)) || (rc = macro_of(st, t, train, e)))
        return rc;
    if (train && !t->stored)
        return xerr_set(e, XE_FAIL,
                        "target '%s' is a virtual task (imported records): it cannot be trained (--evaluator table"
                        " searches its records)",
                        name);
    if (done && (rc = metaset_load(st, sp, t->protocol_hash, 1, &t->ms, e)))
        return rc;
    t->target = done ? metaset_task(&t->ms, name) : -1;
    if (!train && t->target < 0) {
        rc = xerr_set(e, XE_FAIL,
                      "target '%s' has no finished %s runs under protocol '%s' (%.12s): the table evaluator looks"
                      " its accuracies up there",
                      name, sp->name, t->protocol_name, t->protocol_hash);
        goto fail;
    }
    if (t->target >= 0 && (rc = metaset_task_rows(&t->ms, t->target, &t->ttok, &t->tacc, &t->tn, e)))
        goto fail;
    for (int i = 0; i < t->tn; i++)
        if (!(t->tacc[i] <= t->best_recorded))
            t->best_recorded = t->tacc[i];
    t->use = calloc((size_t)t->ms.ntasks + 1, 1);
    t->map = calloc((size_t)t->ms.ntasks + 1, sizeof *t->map);
    if (!t->use || !t->map) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto fail;
    }
    t->zs_std = 1;
    for (int k = 0; k < t->ms.ntasks; k++)
        if (k != t->target && t->ms.tasks[k].n >= min_runs) {
            t->use[k] = 1;
            t->nsources++;
            t->zs_mean += t->ms.tasks[k].mean;
        }
    if (t->nsources) {
        double s = 0;
        t->zs_mean /= t->nsources;
        for (int k = 0; k < t->ms.ntasks; k++)
            s += t->use[k] ? t->ms.tasks[k].std : 0;
        t->zs_std = s / t->nsources;
    }
    return XE_OK;
fail:
    search_target_close(t);
    return rc;
}

void search_target_close(SearchTarget *t)
{
    metaset_free(&t->ms);
    free(t->ttok), free(t->tacc), free(t->use), free(t->map);
    t->ttok = NULL, t->tacc = NULL, t->use = NULL, t->map = NULL;
    t->tn = 0;
}

int search_target_no_sources(const SearchTarget *t, int min_runs, XErr *e)
{
    return xerr_set(e, XE_FAIL,
                    "no source tasks to transfer to '%s' from: no other task has %d finished %s runs under protocol"
                    " '%s' (%.12s) (--allow-no-transfer searches with nao, on the target alone)",
                    t->name, min_runs, t->sp->name, t->protocol_name, t->protocol_hash);
}

int search_target_universal(Store *st, const SearchTarget *t, FILE *log, StoredModel *sm, XErr *e)
{
    XferConfig c;
    double t0;
    int64_t id;
    int rc;
    memset(sm, 0, sizeof *sm);
    if ((rc = models_find_fitted(st, &t->ms, t->use, &id, e)))
        return rc;
    if (id) {
        if (log)
            fprintf(log, "xfer-search: universal model %lld (fitted on the same %d source tasks)\n", (long long)id,
                    t->nsources);
        return models_load(st, t->sp->name, id, sm, e);
    }
    if (log)
        fprintf(log, "xfer-search: fitting the universal model on %d source tasks\n", t->nsources);
    t0 = xfer_clock();
    xfer_config_default(&c, t->sp->token_len, t->sp->vocab);
    if ((rc = metaset_fit(&t->ms, t->use, t->map, &c, NULL, NULL, &sm->m, e)))
        return rc;
    if (!(sm->fitted = models_fitted_on(&t->ms, t->use, t->map, c.seed, xfer_clock() - t0))) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
    } else if (!(rc = models_add(st, t->sp->name, sm->m, sm->fitted, &sm->id, e))) {
        snprintf(sm->protocol_hash, sizeof sm->protocol_hash, "%s", t->protocol_hash);
        if (log)
            fprintf(log, "xfer-search: stored it as model %lld\n", (long long)sm->id);
    }
    if (rc)
        stored_model_release(sm);
    return rc;
}

double search_target_lookup(const SearchTarget *t, const SearchPool *pool, const SpaceArch *a)
{
    int k = search_pool_find(pool, a);
    return k < 0 ? NAN : (double)t->tacc[pool->src[k]];
}
