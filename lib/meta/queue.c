/* The run queue in the store: planning, claims under leases, heartbeats,
 * curve points, and the end of a run. Every write after the claim is
 * conditional on it (worker and status), so a worker that lost its lease
 * changes nothing. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "meta/meta.h"

static double now_unix(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

void queue_worker_name(char *buf, size_t n, int job)
{
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    if (job)
        snprintf(buf, n, "%s:%d:%ld:%d", host, (int)getpid(), (long)time(NULL), job);
    else
        snprintf(buf, n, "%s:%d:%ld", host, (int)getpid(), (long)time(NULL));
}

int queue_worker_dead(const char *worker)
{
    char host[64] = "host";
    const char *colon = strchr(worker, ':');
    char *end;
    long pid;
    gethostname(host, sizeof host - 1);
    if (!colon || (size_t)(colon - worker) != strlen(host) || strncmp(worker, host, strlen(host)))
        return 0;
    errno = 0;
    pid = strtol(colon + 1, &end, 10);
    /* pid 0 or below would name a process group */
    if (errno || end == colon + 1 || (*end && *end != ':') || pid <= 0 || pid != (pid_t)pid)
        return 0;
    return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

void run_info_free(RunInfo *ri)
{
    free(ri->arch);
    free(ri->dataset);
    free(ri->recipe);
    memset(ri, 0, sizeof *ri);
}

/* Binds a run's natural key to ?1 .. ?4. */
static void bind_key(sqlite3_stmt *q, int64_t arch_id, int64_t dataset_id, int64_t protocol_id, int64_t seed)
{
    sqlite3_bind_int64(q, 1, arch_id);
    sqlite3_bind_int64(q, 2, dataset_id);
    sqlite3_bind_int64(q, 3, protocol_id);
    sqlite3_bind_int64(q, 4, seed);
}

int queue_plan(Store *st, int64_t arch_id, int64_t dataset_id, int64_t protocol_id, int64_t seed,
               int64_t *run_id, PlanStats *ps, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_prepare(st, &q,
                      "INSERT INTO runs (arch_id, dataset_id, protocol_id, seed) VALUES (?1, ?2, ?3, ?4)"
                      " ON CONFLICT DO NOTHING",
                      e))
        return e->code;
    bind_key(q, arch_id, dataset_id, protocol_id, seed);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return store_fail(st, e, "planning a run");
    if (sqlite3_changes(st->db))
        ps->added++;
    else
        ps->existing++;
    if (!run_id)
        return XE_OK;
    if (store_prepare(st, &q,
                      "SELECT id FROM runs WHERE arch_id = ?1 AND dataset_id = ?2 AND protocol_id = ?3"
                      " AND seed = ?4",
                      e))
        return e->code;
    bind_key(q, arch_id, dataset_id, protocol_id, seed);
    rc = sqlite3_step(q);
    *run_id = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? XE_OK : store_fail(st, e, "planning a run");
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    const unsigned char *s = sqlite3_column_text(q, i);
    return strdup(s ? (const char *)s : "");
}

/* The claimable-run condition, given ?1 = now. */
#define CLAIMABLE "(r.status = 'planned' OR (r.status = 'running' AND r.lease_until < ?1))"

/* Fails runs whose lease expired max_attempts times: their worker keeps dying. */
static int fail_abandoned(Store *st, const Claim *c, double t, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_prepare(st, &q,
                      "UPDATE runs SET status = 'failed', worker = NULL, lease_until = NULL,"
                      " finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),"
                      " error = 'abandoned: its worker stopped ' || attempts || ' times'"
                      " WHERE status = 'running' AND lease_until < ?1 AND attempts >= ?2",
                      e))
        return e->code;
    sqlite3_bind_double(q, 1, t);
    sqlite3_bind_int(q, 2, c->max_attempts);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? XE_OK : store_fail(st, e, "failing abandoned runs");
}

static int claim_one(Store *st, const Claim *c, double t, int64_t only, RunInfo *ri, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc, found = 0;
#define CLAIM_SELECT                                                                               \
    "SELECT r.id, r.arch_id, r.dataset_id, r.protocol_id, r.seed, r.attempts, r.epochs_done, a.space,"  \
    " a.arch, d.name, p.recipe FROM runs r JOIN archs a ON a.id = r.arch_id"                          \
    " JOIN datasets d ON d.id = r.dataset_id JOIN protocols p ON p.id = r.protocol_id WHERE " CLAIMABLE
    const char *sql = only ? CLAIM_SELECT " AND r.id = ?2"
                           : CLAIM_SELECT " AND d.kind = 'stored' ORDER BY r.status = 'planned', r.id LIMIT 1";
    if (store_prepare(st, &q, sql, e))
        return -1;
    sqlite3_bind_double(q, 1, t);
    if (only)
        sqlite3_bind_int64(q, 2, only);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        found = 1;
        ri->id = sqlite3_column_int64(q, 0);
        ri->arch_id = sqlite3_column_int64(q, 1);
        ri->dataset_id = sqlite3_column_int64(q, 2);
        ri->protocol_id = sqlite3_column_int64(q, 3);
        ri->seed = sqlite3_column_int64(q, 4);
        ri->attempts = sqlite3_column_int(q, 5) + 1;
        ri->epochs_done = sqlite3_column_int(q, 6);
        snprintf(ri->space, sizeof ri->space, "%s", (const char *)sqlite3_column_text(q, 7));
        ri->arch = col_dup(q, 8);
        ri->dataset = col_dup(q, 9);
        ri->recipe = col_dup(q, 10);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_fail(st, e, "claiming a run");
        return -1;
    }
    if (!found)
        return 0;
    if (store_prepare(st, &q,
                      "UPDATE runs AS r SET status = 'running', worker = ?2, lease_until = ?1 + ?3,"
                      " heartbeat_at = ?1, attempts = attempts + 1,"
                      " started_at = coalesce(started_at, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
                      " WHERE r.id = ?4 AND " CLAIMABLE,
                      e)) {
        run_info_free(ri);
        return -1;
    }
    sqlite3_bind_double(q, 1, t);
    sqlite3_bind_text(q, 2, c->worker, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 3, c->lease);
    sqlite3_bind_int64(q, 4, ri->id);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE || sqlite3_changes(st->db) != 1) {
        run_info_free(ri);
        if (rc != SQLITE_DONE) {
            store_fail(st, e, "claiming a run");
            return -1;
        }
        return 0;
    }
    return 1;
}

int queue_claim(Store *st, const Claim *c, RunInfo *ri, XErr *e)
{
    double t = now_unix();
    int got = 0;
    memset(ri, 0, sizeof *ri);
    if (store_begin(st, e))
        return -1;
    if (fail_abandoned(st, c, t, e)) {
        store_rollback(st);
        return -1;
    }
    if (c->only) {
        for (int i = 0; i < c->nonly && !got; i++)
            got = claim_one(st, c, t, c->only[i], ri, e);
    } else {
        got = claim_one(st, c, t, 0, ri, e);
    }
    if (got < 0) {
        store_rollback(st);
        return -1;
    }
    if (store_commit(st, e)) {
        run_info_free(ri);
        return -1;
    }
    return got;
}

/* Runs an UPDATE on run ?1 held by worker ?2; XE_FAIL "lease lost" when it
 * touched no row. */
static int owned_update(Store *st, const Claim *c, int64_t run_id, const char *sql, sqlite3_stmt **out,
                        XErr *e)
{
    sqlite3_stmt *q = NULL;
    if (store_prepare(st, &q, sql, e))
        return e->code;
    sqlite3_bind_int64(q, 1, run_id);
    sqlite3_bind_text(q, 2, c->worker, -1, SQLITE_STATIC);
    *out = q;
    return XE_OK;
}

static int owned_step(Store *st, sqlite3_stmt *q, int64_t run_id, const char *what, XErr *e)
{
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return store_fail(st, e, what);
    if (sqlite3_changes(st->db) != 1)
        return xerr_set(e, XE_FAIL, "run %lld: lease lost (another worker took it over); not writing",
                        (long long)run_id);
    return XE_OK;
}

int queue_heartbeat(Store *st, const Claim *c, int64_t run_id, XErr *e)
{
    sqlite3_stmt *q;
    double t = now_unix();
    if (owned_update(st, c, run_id,
                     "UPDATE runs SET lease_until = ?3 + ?4, heartbeat_at = ?3"
                     " WHERE id = ?1 AND worker = ?2 AND status = 'running'",
                     &q, e))
        return e->code;
    sqlite3_bind_double(q, 3, t);
    sqlite3_bind_double(q, 4, c->lease);
    return owned_step(st, q, run_id, "extending a lease", e);
}

static void bind_or_null(sqlite3_stmt *q, int i, double v)
{
    if (v != v)
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_double(q, i, v);
}

int queue_epoch(Store *st, const Claim *c, int64_t run_id, const EpochPoint *p, XErr *e)
{
    sqlite3_stmt *q;
    double t = now_unix();
    int rc;
    if (store_begin(st, e))
        return e->code;
    if (owned_update(st, c, run_id,
                     "UPDATE runs SET epochs_done = max(epochs_done, ?3), lease_until = ?4 + ?5,"
                     " heartbeat_at = ?4 WHERE id = ?1 AND worker = ?2 AND status = 'running'",
                     &q, e))
        goto fail;
    sqlite3_bind_int(q, 3, p->epoch);
    sqlite3_bind_double(q, 4, t);
    sqlite3_bind_double(q, 5, c->lease);
    if (owned_step(st, q, run_id, "recording an epoch", e))
        goto fail;
    if (store_prepare(st, &q,
                      "INSERT OR REPLACE INTO curves (run_id, epoch, train_loss, train_acc, valid_loss,"
                      " valid_acc, lr, seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                      e))
        goto fail;
    sqlite3_bind_int64(q, 1, run_id);
    sqlite3_bind_int(q, 2, p->epoch);
    bind_or_null(q, 3, p->train_loss);
    bind_or_null(q, 4, p->train_acc);
    bind_or_null(q, 5, p->valid_acc < 0 ? 0.0 / 0.0 : p->valid_loss);
    bind_or_null(q, 6, p->valid_acc < 0 ? 0.0 / 0.0 : p->valid_acc);
    sqlite3_bind_double(q, 7, p->lr);
    sqlite3_bind_double(q, 8, p->seconds);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        store_fail(st, e, "recording an epoch");
        goto fail;
    }
    return store_commit(st, e);
fail:
    store_rollback(st);
    return e->code;
}

int queue_finish(Store *st, const Claim *c, int64_t run_id, const RunResult *r, XErr *e)
{
    sqlite3_stmt *q;
    if (owned_update(st, c, run_id,
                     "UPDATE runs SET status = 'done', worker = NULL, lease_until = NULL,"
                     " finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), valid_acc = ?3, test_acc = ?4,"
                     " params = ?5, flops = ?6, seconds = ?7, device = ?8, error = NULL"
                     " WHERE id = ?1 AND worker = ?2 AND status = 'running'",
                     &q, e))
        return e->code;
    bind_or_null(q, 3, r->valid_acc < 0 ? 0.0 / 0.0 : r->valid_acc);
    bind_or_null(q, 4, r->test_acc < 0 ? 0.0 / 0.0 : r->test_acc);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)r->params);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)r->flops);
    sqlite3_bind_double(q, 7, r->seconds);
    sqlite3_bind_text(q, 8, r->device, -1, SQLITE_STATIC);
    return owned_step(st, q, run_id, "finishing a run", e);
}

int queue_fail(Store *st, const Claim *c, int64_t run_id, const char *why, XErr *e)
{
    sqlite3_stmt *q;
    if (owned_update(st, c, run_id,
                     "UPDATE runs SET status = 'failed', worker = NULL, lease_until = NULL,"
                     " finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), error = ?3"
                     " WHERE id = ?1 AND worker = ?2 AND status = 'running'",
                     &q, e))
        return e->code;
    sqlite3_bind_text(q, 3, why, -1, SQLITE_TRANSIENT);
    return owned_step(st, q, run_id, "recording a failed run", e);
}

int queue_terminate(Store *st, const Claim *c, int64_t run_id, const RunResult *r, const char *why, XErr *e)
{
    sqlite3_stmt *q;
    if (owned_update(st, c, run_id,
                     "UPDATE runs SET status = 'terminated-early', worker = NULL, lease_until = NULL,"
                     " finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), valid_acc = ?3, test_acc = NULL,"
                     " params = ?4, flops = ?5, seconds = ?6, device = ?7, error = ?8"
                     " WHERE id = ?1 AND worker = ?2 AND status = 'running'",
                     &q, e))
        return e->code;
    bind_or_null(q, 3, r->valid_acc < 0 ? 0.0 / 0.0 : r->valid_acc);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)r->params);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)r->flops);
    sqlite3_bind_double(q, 6, r->seconds);
    sqlite3_bind_text(q, 7, r->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 8, why, -1, SQLITE_TRANSIENT);
    return owned_step(st, q, run_id, "stopping a run early", e);
}

int queue_release(Store *st, const Claim *c, int64_t run_id, XErr *e)
{
    sqlite3_stmt *q;
    if (owned_update(st, c, run_id,
                     "UPDATE runs SET status = 'planned', worker = NULL, lease_until = NULL,"
                     " attempts = max(attempts - 1, 0) WHERE id = ?1 AND worker = ?2 AND status = 'running'",
                     &q, e))
        return e->code;
    return owned_step(st, q, run_id, "releasing a run", e);
}

int queue_lapse(Store *st, int64_t run_id, const char *worker, int *lapsed, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    *lapsed = 0;
    if (store_prepare(st, &q,
                      "UPDATE runs SET lease_until = ?3 WHERE id = ?1 AND worker = ?2 AND status = 'running'"
                      " AND lease_until > ?3",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, run_id);
    sqlite3_bind_text(q, 2, worker, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 3, now_unix());
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return store_fail(st, e, "ending a dead worker's lease");
    *lapsed = sqlite3_changes(st->db) == 1;
    return XE_OK;
}

static void set_real_or_null(json_t *o, const char *k, sqlite3_stmt *q, int i)
{
    if (sqlite3_column_type(q, i) == SQLITE_NULL)
        json_object_set_new(o, k, json_null());
    else
        json_object_set_new(o, k, json_real(sqlite3_column_double(q, i)));
}

int queue_left(Store *st, const Claim *c, long *left, int *workers, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    *left = 0;
    *workers = 0;
    if (store_prepare(st, &q,
                      "SELECT count(*), (SELECT count(DISTINCT worker) FROM runs WHERE status = 'running'"
                      " AND lease_until >= ?1) FROM runs r JOIN datasets d ON d.id = r.dataset_id"
                      " WHERE r.status IN ('planned', 'running') AND d.kind = 'stored'",
                      e))
        return e->code;
    sqlite3_bind_double(q, 1, now_unix());
    if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *left = sqlite3_column_int64(q, 0);
        *workers = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    if (c->only)
        *left = -1; /* the caller counts its own runs */
    return rc == SQLITE_ROW ? XE_OK : store_fail(st, e, "counting the queue");
}

int queue_print_run(Store *st, int64_t run_id, const char *extra, FILE *out, XErr *e)
{
    sqlite3_stmt *q = NULL;
    json_t *o = NULL, *curve;
    json_error_t je;
    char *s;
    int rc;
    if (extra && !(o = json_loads(extra, 0, &je)))
        return xerr_set(e, XE_FAIL, "run %lld: its input record is not JSON", (long long)run_id);
    if (!o)
        o = json_object();
    if (store_prepare(st, &q,
                      "SELECT a.space, a.arch, d.name, p.name, p.hash, r.seed, r.id, r.status, r.valid_acc,"
                      " r.test_acc, r.params, r.flops, r.seconds, r.device, r.error, p.recipe, d.height, d.width,"
                      " d.channels, d.classes, d.n_train, d.n_valid,"
                      " CASE WHEN json_valid(d.meta) THEN json_extract(d.meta, '$.probes') END FROM runs r"
                      " JOIN archs a ON a.id = r.arch_id JOIN datasets d ON d.id = r.dataset_id"
                      " JOIN protocols p ON p.id = r.protocol_id WHERE r.id = ?1",
                      e)) {
        json_decref(o);
        return e->code;
    }
    sqlite3_bind_int64(q, 1, run_id);
    if ((rc = sqlite3_step(q)) != SQLITE_ROW) {
        sqlite3_finalize(q);
        json_decref(o);
        return rc == SQLITE_DONE ? xerr_set(e, XE_FAIL, "run %lld not found", (long long)run_id)
                                 : store_fail(st, e, "reading a run");
    }
    json_object_set_new(o, "space", json_string((const char *)sqlite3_column_text(q, 0)));
    json_object_set_new(o, "arch", json_string((const char *)sqlite3_column_text(q, 1)));
    json_object_set_new(o, "dataset", json_string((const char *)sqlite3_column_text(q, 2)));
    json_object_set_new(o, "protocol", json_string((const char *)sqlite3_column_text(q, 3)));
    json_object_set_new(o, "protocol_hash", json_stringn((const char *)sqlite3_column_text(q, 4), 12));
    json_object_set_new(o, "seed", json_integer(sqlite3_column_int64(q, 5)));
    json_object_set_new(o, "run", json_integer(sqlite3_column_int64(q, 6)));
    json_object_set_new(o, "status", json_string((const char *)sqlite3_column_text(q, 7)));
    set_real_or_null(o, "valid_acc", q, 8);
    set_real_or_null(o, "test_acc", q, 9);
    json_object_set_new(o, "params", json_integer(sqlite3_column_int64(q, 10)));
    json_object_set_new(o, "flops", json_integer(sqlite3_column_int64(q, 11)));
    set_real_or_null(o, "seconds", q, 12);
    if (sqlite3_column_type(q, 13) != SQLITE_NULL)
        json_object_set_new(o, "device", json_string((const char *)sqlite3_column_text(q, 13)));
    if (sqlite3_column_type(q, 14) != SQLITE_NULL)
        json_object_set_new(o, "error", json_string((const char *)sqlite3_column_text(q, 14)));
    /* the whole recipe, so xfer-ingest runs recreates the same protocol */
    json_object_set_new(o, "recipe", json_loads((const char *)sqlite3_column_text(q, 15), 0, NULL));
    /* what the dataset is (its meta-features travel with the runs) */
    {
        static const char *const keys[] = { "height", "width", "channels", "classes", "n_train", "n_valid" };
        json_t *di = json_object();
        for (int i = 0; i < 6; i++)
            if (sqlite3_column_type(q, 16 + i) != SQLITE_NULL)
                json_object_set_new(di, keys[i], json_integer(sqlite3_column_int64(q, 16 + i)));
        if (sqlite3_column_type(q, 22) == SQLITE_TEXT) {
            json_t *pr = json_loads((const char *)sqlite3_column_text(q, 22), 0, NULL);
            if (json_is_object(pr))
                json_object_set_new(di, "probes", pr);
            else
                json_decref(pr);
        }
        if (json_object_size(di))
            json_object_set_new(o, "dataset_info", di);
        else
            json_decref(di);
    }
    sqlite3_finalize(q);

    curve = json_array();
    if (store_prepare(st, &q,
                      "SELECT epoch, train_loss, train_acc, valid_loss, valid_acc, lr, seconds FROM curves"
                      " WHERE run_id = ?1 ORDER BY epoch",
                      e)) {
        json_decref(curve);
        json_decref(o);
        return e->code;
    }
    sqlite3_bind_int64(q, 1, run_id);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        static const char *const keys[] = { "epoch", "train_loss", "train_acc", "valid_loss",
                                             "valid_acc", "lr", "seconds" };
        json_t *pt = json_object();
        json_object_set_new(pt, keys[0], json_integer(sqlite3_column_int(q, 0)));
        for (int i = 1; i < 7; i++)
            set_real_or_null(pt, keys[i], q, i);
        json_array_append_new(curve, pt);
    }
    sqlite3_finalize(q);
    json_object_set_new(o, "curve", curve);
    if (rc != SQLITE_DONE) {
        json_decref(o);
        return store_fail(st, e, "reading a curve");
    }
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!s)
        return xerr_set(e, XE_FAIL, "out of memory");
    fprintf(out, "%s\n", s);
    fflush(out);
    free(s);
    return XE_OK;
}
