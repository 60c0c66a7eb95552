/* The models table: storing fitted transfer predictors with what they were
 * fitted on, loading them back, and finding one fitted on given tasks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/models.h"

json_t *models_fitted_on(const MetaSet *ms, const char *use, const int *map, uint64_t seed, double seconds)
{
    json_t *tasks = json_array(), *fitted;
    if (!tasks)
        return NULL;
    for (int t = 0; t < ms->ntasks; t++)
        if (use[t] && json_array_append_new(tasks, json_pack("{s:s,s:i,s:i,s:f,s:f}", "name", ms->tasks[t].name, "task",
                                                             map[t], "runs", ms->tasks[t].n, "mean", ms->tasks[t].mean,
                                                             "std", ms->tasks[t].std))) {
            json_decref(tasks);
            return NULL;
        }
    fitted = json_pack("{s:s,s:s,s:o,s:I,s:f}", "protocol", ms->protocol, "protocol_hash", ms->protocol_hash, "tasks",
                       tasks, "seed", (json_int_t)seed, "seconds", seconds);
    return fitted;
}

/* Inserts a model row; *id out. */
static int models_insert(Store *st, const char *kind, const char *space, const json_t *fitted, const json_t *cfg,
                         const void *blob, size_t len, int64_t *id, XErr *e)
{
    sqlite3_stmt *q = NULL;
    char *fj = NULL, *cj = NULL;
    int rc = XE_OK;
    if (!cfg || !(fj = json_dumps(fitted, JSON_COMPACT | JSON_SORT_KEYS)) ||
        !(cj = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS)))
        rc = xerr_set(e, XE_FAIL, "out of memory");
    if (!rc && !(rc = store_prepare(st, &q,
                                    "INSERT INTO models (kind, space, fitted_on, config, blob) VALUES"
                                    " (?5, ?1, ?2, ?3, ?4) RETURNING id",
                                    e))) {
        sqlite3_bind_text(q, 1, space, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, fj, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, cj, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(q, 4, blob, len, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, kind, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            *id = sqlite3_column_int64(q, 0);
        else
            rc = store_fail(st, e, "storing the model");
        sqlite3_finalize(q);
    }
    free(fj), free(cj);
    return rc;
}

int models_add(Store *st, const char *space, const XferModel *m, const json_t *fitted, int64_t *id, XErr *e)
{
    const XferConfig *c = xfer_config(m);
    void *blob = NULL;
    size_t len = 0;
    json_t *cfg = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:i,s:i,s:i,s:I}", "embed", c->embed, "hidden",
                            c->hidden, "mlp", c->mlp, "mlp_depth", c->mlp_depth, "res_hidden", c->res_hidden,
                            "token_len", c->token_len, "alpha", (double)c->alpha, "lr", (double)c->lr, "epochs",
                            c->epochs, "batch", c->batch, "ensemble", c->ensemble, "seed", (json_int_t)c->seed);
    int rc = xfer_save(m, &blob, &len, e);
    if (!rc)
        rc = models_insert(st, "xfer", space, fitted, cfg, blob, len, id, e);
    json_decref(cfg);
    free(blob);
    return rc;
}

/* The models row of a kind: want's (checked to be of that kind and space),
 * else the newest of the space; none_hint ends the message when there is
 * none. Its fitted_on is parsed into *fitted and its blob decoded by load
 * into out; nothing is kept on failure but what the caller releases. */
static int model_row(Store *st, const char *kind, const char *space, int64_t want, const char *none_hint,
                     int (*load)(void *out, const void *buf, size_t len, XErr *e), void *out, int64_t *id,
                     json_t **fitted, char hash[65], XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_prepare(st, &q,
                      want ? "SELECT id, space, fitted_on, blob, kind FROM models WHERE id = ?3"
                           : "SELECT id, space, fitted_on, blob, kind FROM models WHERE kind = ?1 AND space = ?2"
                             " ORDER BY id DESC LIMIT 1",
                      e))
        return e->code;
    sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, space, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, want);
    if ((rc = sqlite3_step(q)) != SQLITE_ROW) {
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE)
            return store_fail(st, e, "reading models");
        return want ? xerr_set(e, XE_FAIL, "no model %lld in '%s'", (long long)want, st->path)
                    : xerr_set(e, XE_FAIL, "no fitted %s %s in '%s' (run 'xfer-predict fit --space %s'%s first)", space,
                               !strcmp(kind, "xfer") ? "model" : kind, st->path, space, none_hint);
    }
    *id = sqlite3_column_int64(q, 0);
    if (strcmp((const char *)sqlite3_column_text(q, 4), kind)) {
        rc = xerr_set(e, XE_FAIL, "model %lld is a %s model, not %s", (long long)*id,
                      (const char *)sqlite3_column_text(q, 4), !strcmp(kind, "xfer") ? "a transfer predictor" : "a ranker");
    } else if (strcmp((const char *)sqlite3_column_text(q, 1), space)) {
        rc = xerr_set(e, XE_FAIL, "model %lld was fitted for space %s, not %s", (long long)*id,
                      (const char *)sqlite3_column_text(q, 1), space);
    } else if (!(*fitted = json_loads((const char *)sqlite3_column_text(q, 2), 0, NULL))) {
        rc = xerr_set(e, XE_FAIL, "model %lld: its fitted_on record is not JSON", (long long)*id);
    } else {
        XErr le = { 0 };
        if ((rc = load(out, sqlite3_column_blob(q, 3), (size_t)sqlite3_column_bytes(q, 3), &le)))
            xerr_set(e, XE_FAIL, "model %lld: %s", (long long)*id, le.msg);
        snprintf(hash, 65, "%s", json_string_value(json_object_get(*fitted, "protocol_hash")) ?: "");
    }
    sqlite3_finalize(q);
    return rc;
}

static int load_xfer(void *out, const void *buf, size_t len, XErr *e)
{
    return xfer_load(out, buf, len, e);
}

static int load_ranker(void *out, const void *buf, size_t len, XErr *e)
{
    return ranker_load(out, buf, len, e);
}

int models_load(Store *st, const char *space, int64_t want, StoredModel *l, XErr *e)
{
    int rc;
    memset(l, 0, sizeof *l);
    rc = model_row(st, "xfer", space, want, "", load_xfer, &l->m, &l->id, &l->fitted, l->protocol_hash, e);
    if (rc)
        stored_model_release(l);
    return rc;
}

void stored_model_release(StoredModel *l)
{
    xfer_free(l->m);
    json_decref(l->fitted);
    memset(l, 0, sizeof *l);
}

/* Whether a fitted_on record lists exactly the flagged tasks of ms with
 * their run counts. */
static int fitted_matches(const json_t *fitted, const MetaSet *ms, const char *use)
{
    json_t *tasks = json_object_get(fitted, "tasks"), *t;
    size_t i;
    int want = 0;
    if (strcmp(json_string_value(json_object_get(fitted, "protocol_hash")) ?: "", ms->protocol_hash) ||
        !json_is_array(tasks))
        return 0;
    for (int k = 0; k < ms->ntasks; k++)
        want += use[k] != 0;
    if ((int)json_array_size(tasks) != want)
        return 0;
    json_array_foreach(tasks, i, t) {
        int k = metaset_task(ms, json_string_value(json_object_get(t, "name")) ?: "");
        if (k < 0 || !use[k] || json_integer_value(json_object_get(t, "runs")) != ms->tasks[k].n)
            return 0;
    }
    return 1;
}

int models_find_fitted(Store *st, const MetaSet *ms, const char *use, int64_t *id, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    *id = 0;
    if (store_prepare(st, &q, "SELECT id, fitted_on FROM models WHERE kind = 'xfer' AND space = ?1 ORDER BY id DESC",
                      e))
        return e->code;
    sqlite3_bind_text(q, 1, ms->sp->name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *f = json_loads((const char *)sqlite3_column_text(q, 1), 0, NULL);
        int hit = f && fitted_matches(f, ms, use);
        json_decref(f);
        if (hit) {
            *id = sqlite3_column_int64(q, 0);
            break;
        }
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(st, e, "reading models");
    return XE_OK;
}

/* ---- rankers ---- */

json_t *models_ranker_fitted_on(const CurveSet *cs, const char *use, const int *map, uint64_t seed, double seconds)
{
    json_t *ds = json_array();
    int runs = 0, epochs = 0;
    if (!ds)
        return NULL;
    for (int t = 0; t < cs->ntasks; t++) {
        if (use && !use[t])
            continue;
        if (json_array_append_new(ds, json_pack("{s:s,s:i,s:i,s:i}", "name", cs->tasks[t].name, "index",
                                                map ? map[t] : t, "runs", cs->tasks[t].n, "epochs",
                                                cs->tasks[t].epochs))) {
            json_decref(ds);
            return NULL;
        }
        runs += cs->tasks[t].n;
        if (cs->tasks[t].epochs > epochs)
            epochs = cs->tasks[t].epochs;
    }
    return json_pack("{s:s,s:s,s:o,s:i,s:i,s:I,s:f}", "protocol", cs->protocol, "protocol_hash", cs->protocol_hash,
                     "datasets", ds, "runs", runs, "epochs", epochs, "seed", (json_int_t)seed, "seconds", seconds);
}

int models_add_ranker(Store *st, const char *space, const Ranker *r, const json_t *fitted, int64_t *id, XErr *e)
{
    const RankerConfig *c = ranker_config(r);
    void *blob = NULL;
    size_t len = 0;
    json_t *cfg = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:i,s:i,s:i,s:I}", "embed", c->embed,
                            "arch_hidden", c->arch_hidden, "curve_dim", c->curve_dim, "curve_hidden", c->curve_hidden,
                            "ds_embed", c->ds_embed, "mlp", c->mlp, "mlp_depth", c->mlp_depth, "token_len",
                            c->token_len, "curve_scale", (double)c->curve_scale, "lr", (double)c->lr, "steps",
                            c->steps, "batch", c->batch, "members", c->members, "seed", (json_int_t)c->seed);
    int rc = ranker_save(r, &blob, &len, e);
    if (!rc)
        rc = models_insert(st, "ranker", space, fitted, cfg, blob, len, id, e);
    json_decref(cfg);
    free(blob);
    return rc;
}

int models_load_ranker(Store *st, const char *space, int64_t want, StoredRanker *l, XErr *e)
{
    int rc;
    memset(l, 0, sizeof *l);
    rc = model_row(st, "ranker", space, want, " on runs with curves of 3 epochs or more", load_ranker, &l->r, &l->id,
                   &l->fitted, l->protocol_hash, e);
    if (!rc && ranker_config(l->r)->token_len != space_find(space)->token_len)
        rc = xerr_set(e, XE_FAIL, "model %lld reads %d tokens an arch, the %s space has %d", (long long)l->id,
                      ranker_config(l->r)->token_len, space, space_find(space)->token_len);
    if (rc)
        stored_ranker_release(l);
    return rc;
}

void stored_ranker_release(StoredRanker *l)
{
    ranker_free(l->r);
    json_decref(l->fitted);
    memset(l, 0, sizeof *l);
}

int stored_ranker_dataset(const StoredRanker *l, const char *name)
{
    json_t *ds = json_object_get(l->fitted, "datasets"), *d;
    size_t i;
    json_array_foreach(ds, i, d) {
        json_int_t k = json_integer_value(json_object_get(d, "index"));
        if (!strcmp(json_string_value(json_object_get(d, "name")) ?: "", name) && k >= 0 &&
            k < ranker_ndatasets(l->r))
            return (int)k;
    }
    return -1;
}
