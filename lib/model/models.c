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

int models_add(Store *st, const char *space, const XferModel *m, const json_t *fitted, int64_t *id, XErr *e)
{
    const XferConfig *c = xfer_config(m);
    void *blob = NULL;
    size_t len = 0;
    sqlite3_stmt *q = NULL;
    char *fj = NULL, *cj = NULL;
    json_t *cfg = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:i,s:i,s:i,s:I}", "embed", c->embed, "hidden",
                            c->hidden, "mlp", c->mlp, "mlp_depth", c->mlp_depth, "res_hidden", c->res_hidden,
                            "token_len", c->token_len, "alpha", (double)c->alpha, "lr", (double)c->lr, "epochs",
                            c->epochs, "batch", c->batch, "ensemble", c->ensemble, "seed", (json_int_t)c->seed);
    int rc = xfer_save(m, &blob, &len, e);
    if (!rc && (!cfg || !(fj = json_dumps(fitted, JSON_COMPACT | JSON_SORT_KEYS)) ||
                !(cj = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS))))
        rc = xerr_set(e, XE_FAIL, "out of memory");
    if (!rc && !(rc = store_prepare(st, &q,
                                    "INSERT INTO models (kind, space, fitted_on, config, blob) VALUES"
                                    " ('xfer', ?1, ?2, ?3, ?4) RETURNING id",
                                    e))) {
        sqlite3_bind_text(q, 1, space, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, fj, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, cj, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(q, 4, blob, len, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            *id = sqlite3_column_int64(q, 0);
        else
            rc = store_fail(st, e, "storing the model");
        sqlite3_finalize(q);
    }
    json_decref(cfg);
    free(fj), free(cj), free(blob);
    return rc;
}

int models_load(Store *st, const char *space, int64_t want, StoredModel *l, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    memset(l, 0, sizeof *l);
    if (store_prepare(st, &q,
                      want ? "SELECT id, space, fitted_on, blob FROM models WHERE kind = 'xfer' AND id = ?2"
                           : "SELECT id, space, fitted_on, blob FROM models WHERE kind = 'xfer' AND space = ?1"
                             " ORDER BY id DESC LIMIT 1",
                      e))
        return e->code;
    sqlite3_bind_text(q, 1, space, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, want);
    if ((rc = sqlite3_step(q)) != SQLITE_ROW) {
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE)
            return store_fail(st, e, "reading models");
        return want ? xerr_set(e, XE_FAIL, "no model %lld in '%s'", (long long)want, st->path)
                    : xerr_set(e, XE_FAIL, "no fitted %s model in '%s' (run 'xfer-predict fit --space %s' first)",
                               space, st->path, space);
    }
    l->id = sqlite3_column_int64(q, 0);
    if (strcmp((const char *)sqlite3_column_text(q, 1), space)) {
        rc = xerr_set(e, XE_FAIL, "model %lld was fitted for space %s, not %s", (long long)l->id,
                      (const char *)sqlite3_column_text(q, 1), space);
    } else if (!(l->fitted = json_loads((const char *)sqlite3_column_text(q, 2), 0, NULL))) {
        rc = xerr_set(e, XE_FAIL, "model %lld: its fitted_on record is not JSON", (long long)l->id);
    } else {
        XErr le = { 0 };
        rc = xfer_load(&l->m, sqlite3_column_blob(q, 3), (size_t)sqlite3_column_bytes(q, 3), &le);
        if (rc)
            xerr_set(e, XE_FAIL, "model %lld: %s", (long long)l->id, le.msg);
        snprintf(l->protocol_hash, sizeof l->protocol_hash, "%s",
                 json_string_value(json_object_get(l->fitted, "protocol_hash")) ?: "");
    }
    sqlite3_finalize(q);
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
