/* Merging a shard database into the main one: the shard is attached, its
 * integrity checked, then its finished runs (with their archs, datasets,
 * protocols, curves and the proxies) are copied in one transaction, matched
 * by natural keys (space + arch, dataset name, protocol hash, seed), never
 * by row id. A run the main database already finished is left as it is,
 * so merging twice changes nothing. Task files are not copied: a dataset
 * new to the main database keeps the shard's relative path. */
#include <stdlib.h>
#include <string.h>

#include "meta/meta.h"

static int exec_q(Store *st, sqlite3_stmt *q, const char *what, XErr *e)
{
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? XE_OK : store_fail(st, e, what);
}

/* Checks the attached shard "s": readable, intact, the same schema. */
static int check_shard(Store *st, const char *shard, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc, version;
    const unsigned char *res;
    if (store_prepare(st, &q, "PRAGMA s.quick_check", e))
        return xerr_set(e, XE_FAIL, "shard '%s': not a readable database", shard);
    rc = sqlite3_step(q);
    res = rc == SQLITE_ROW ? sqlite3_column_text(q, 0) : NULL;
    if (!res || strcmp((const char *)res, "ok")) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s", res ? (const char *)res : sqlite3_errmsg(st->db));
        sqlite3_finalize(q);
        return xerr_set(e, XE_FAIL, "shard '%s': corrupt (%s); skipped", shard, msg);
    }
    sqlite3_finalize(q);
    if (store_prepare(st, &q, "PRAGMA s.user_version", e))
        return e->code;
    version = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    sqlite3_finalize(q);
    if (version != store_schema_version(st))
        return xerr_set(e, XE_FAIL, "shard '%s': schema version %d, this database has %d; skipped", shard,
                        version, store_schema_version(st));
    return XE_OK;
}

/* The shard's datasets must agree with the main database's of the same
 * name (same stored checksum), or the results would be mixed up. */
static int check_datasets(Store *st, const char *shard, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_prepare(st, &q,
                      "SELECT sd.name FROM s.datasets sd JOIN main.datasets md ON md.name = sd.name"
                      " WHERE sd.checksum IS NOT md.checksum OR sd.kind IS NOT md.kind LIMIT 1",
                      e))
        return e->code;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        xerr_set(e, XE_FAIL, "shard '%s': dataset '%s' differs from the one in '%s' (another checksum); skipped",
                 shard, (const char *)sqlite3_column_text(q, 0), st->path);
        sqlite3_finalize(q);
        return XE_FAIL;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? XE_OK : store_fail(st, e, "reading a shard");
}

static const char *const copy_refs[] = {
    "INSERT INTO main.datasets (name, kind, source, format, options, fingerprint, height, width, channels,"
    " classes, class_names, n_train, n_valid, n_test, mean, std, checksum, path, meta, created_at)"
    " SELECT name, kind, source, format, options, fingerprint, height, width, channels, classes, class_names,"
    " n_train, n_valid, n_test, mean, std, checksum, path, meta, created_at FROM s.datasets"
    " WHERE name NOT IN (SELECT name FROM main.datasets)",
    "INSERT OR IGNORE INTO main.archs (space, arch, hash) SELECT space, arch, hash FROM s.archs",
    "INSERT OR IGNORE INTO main.arch_costs (arch_id, macro, params, flops)"
    " SELECT ma.id, c.macro, c.params, c.flops FROM s.arch_costs c JOIN s.archs sa ON sa.id = c.arch_id"
    " JOIN main.archs ma ON ma.space = sa.space AND ma.arch = sa.arch",
    "INSERT OR IGNORE INTO main.protocols (name, hash, recipe) SELECT name, hash, recipe FROM s.protocols",
    "INSERT OR IGNORE INTO main.proxies (arch_id, dataset_id, protocol_id, name, seed, value)"
    " SELECT ma.id, md.id, mp.id, p.name, p.seed, p.value FROM s.proxies p JOIN s.archs sa ON sa.id = p.arch_id"
    " JOIN main.archs ma ON ma.space = sa.space AND ma.arch = sa.arch JOIN s.datasets sd ON sd.id = p.dataset_id"
    " JOIN main.datasets md ON md.name = sd.name JOIN s.protocols sp ON sp.id = p.protocol_id"
    " JOIN main.protocols mp ON mp.hash = sp.hash",
};

/* The shard's finished runs (id, status) with the main database's ids for
 * their keys and the main run (id, status) if there is one. */
static const char shard_runs[] =
    "SELECT r.id, r.status, ma.id, md.id, mp.id, r.seed, mr.id, mr.status FROM s.runs r"
    " JOIN s.archs sa ON sa.id = r.arch_id JOIN main.archs ma ON ma.space = sa.space AND ma.arch = sa.arch"
    " JOIN s.datasets sd ON sd.id = r.dataset_id JOIN main.datasets md ON md.name = sd.name"
    " JOIN s.protocols sp ON sp.id = r.protocol_id JOIN main.protocols mp ON mp.hash = sp.hash"
    " LEFT JOIN main.runs mr ON mr.arch_id = ma.id AND mr.dataset_id = md.id AND mr.protocol_id = mp.id"
    " AND mr.seed = r.seed"
    " WHERE r.status IN ('done', 'failed', 'terminated-early') ORDER BY r.id";

#define RUN_COLS                                                                                   \
    "status, source, attempts, planned_at, started_at, finished_at, device, epochs_done, seconds,"   \
    " valid_acc, test_acc, params, flops, error"

static int copy_run(Store *st, int64_t sid, const char *sstatus, int64_t aid, int64_t did, int64_t pid,
                    int64_t seed, int64_t mid, const char *mstatus, MergeStats *ms, XErr *e)
{
    sqlite3_stmt *q = NULL;
    /* done here stays; failed here is replaced only by done there */
    if (mid && mstatus && (!strcmp(mstatus, "done") || (!strcmp(mstatus, "failed") && strcmp(sstatus, "done")))) {
        ms->runs_same++;
        return XE_OK;
    }
    if (!mid) {
        if (store_prepare(st, &q,
                          "INSERT INTO main.runs (arch_id, dataset_id, protocol_id, seed, " RUN_COLS ")"
                          " SELECT ?2, ?3, ?4, ?5, " RUN_COLS " FROM s.runs WHERE id = ?1",
                          e))
            return e->code;
        sqlite3_bind_int64(q, 1, sid);
        sqlite3_bind_int64(q, 2, aid);
        sqlite3_bind_int64(q, 3, did);
        sqlite3_bind_int64(q, 4, pid);
        sqlite3_bind_int64(q, 5, seed);
        if (exec_q(st, q, "merging a run", e))
            return e->code;
        mid = sqlite3_last_insert_rowid(st->db);
        ms->runs_added++;
    } else {
        /* planned, running or failed here, finished there: the shard's
         * result wins (a worker still holding it here loses its claim) */
        if (store_prepare(st, &q,
                          "UPDATE main.runs SET (" RUN_COLS ", worker, lease_until, heartbeat_at) ="
                          " (SELECT " RUN_COLS ", NULL, NULL, NULL FROM s.runs WHERE id = ?1) WHERE id = ?2",
                          e))
            return e->code;
        sqlite3_bind_int64(q, 1, sid);
        sqlite3_bind_int64(q, 2, mid);
        if (exec_q(st, q, "merging a run", e))
            return e->code;
        ms->runs_updated++;
    }
    if (store_prepare(st, &q, "DELETE FROM main.curves WHERE run_id = ?1", e))
        return e->code;
    sqlite3_bind_int64(q, 1, mid);
    if (exec_q(st, q, "merging a curve", e))
        return e->code;
    if (store_prepare(st, &q,
                      "INSERT INTO main.curves (run_id, epoch, train_loss, train_acc, valid_loss, valid_acc, lr,"
                      " seconds) SELECT ?2, epoch, train_loss, train_acc, valid_loss, valid_acc, lr, seconds"
                      " FROM s.curves WHERE run_id = ?1",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, sid);
    sqlite3_bind_int64(q, 2, mid);
    if (exec_q(st, q, "merging a curve", e))
        return e->code;
    return XE_OK;
}

int merge_shard(Store *st, const char *shard, MergeStats *ms, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc = XE_OK, step;
    FILE *f = fopen(shard, "rb");
    memset(ms, 0, sizeof *ms);
    if (!f)
        return xerr_set(e, XE_FAIL, "shard '%s': cannot open", shard);
    fclose(f);
    if (store_prepare(st, &q, "ATTACH DATABASE ?1 AS s", e))
        return e->code;
    sqlite3_bind_text(q, 1, shard, -1, SQLITE_STATIC);
    step = sqlite3_step(q);
    sqlite3_finalize(q);
    if (step != SQLITE_DONE)
        return xerr_set(e, XE_FAIL, "shard '%s': %s; skipped", shard, sqlite3_errmsg(st->db));
    if ((rc = check_shard(st, shard, e)) || (rc = store_begin(st, e)))
        goto detach;
    if ((rc = check_datasets(st, shard, e)))
        goto rollback;
    for (size_t i = 0; i < sizeof copy_refs / sizeof copy_refs[0]; i++)
        if ((rc = store_prepare(st, &q, copy_refs[i], e)) || (rc = exec_q(st, q, "merging a shard", e)))
            goto rollback;
    if ((rc = store_prepare(st, &q, shard_runs, e)))
        goto rollback;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        char sstatus[32], mstatus[32];
        const unsigned char *m = sqlite3_column_text(q, 7);
        snprintf(sstatus, sizeof sstatus, "%s", (const char *)sqlite3_column_text(q, 1));
        snprintf(mstatus, sizeof mstatus, "%s", m ? (const char *)m : "");
        if ((rc = copy_run(st, sqlite3_column_int64(q, 0), sstatus, sqlite3_column_int64(q, 2),
                           sqlite3_column_int64(q, 3), sqlite3_column_int64(q, 4), sqlite3_column_int64(q, 5),
                           sqlite3_column_int64(q, 6), m ? mstatus : NULL, ms, e)))
            break;
    }
    sqlite3_finalize(q);
    if (!rc && step != SQLITE_DONE)
        rc = store_fail(st, e, "reading a shard");
    if (rc)
        goto rollback;
    rc = store_commit(st, e);
    goto detach;
rollback:
    store_rollback(st);
detach: {
        XErr de = { 0 };
        store_exec(st, "DETACH DATABASE s", &de);
    }
    return rc;
}
