/* The search over the store: the target, its protocol and macro, the
 * universal model (found in the models table or fitted and stored), the
 * searches row that identifies a search and this process's hold on it (a
 * lease, as the run queue's), its recorded steps, and the two evaluators
 * (recorded accuracies, or training through the run queue). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "db/heart.h"
#include "model/metaset.h"
#include "model/models.h"
#include "search/search.h"
#include "search/target.h"

static double now_unix(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

/* ---- the searches row ---- */

/* The config that identifies a search (canonical JSON; caller frees). */
static char *search_key(const SearchRunOpts *o, const SearchTarget *t)
{
    json_t *j = json_pack("{s:I,s:s,s:I,s:I,s:s,s:s,s:I}", "budget", (json_int_t)o->budget, "evaluator",
                          o->evaluator == SEARCH_EVAL_TABLE ? "table" : "train", "max_flops",
                          (json_int_t)o->max_flops, "max_params", (json_int_t)o->max_params, "objectives",
                          o->multi ? "acc,flops" : "acc", "protocol_hash", t->protocol_hash, "seed",
                          (json_int_t)o->seed);
    char *s;
    /* only searches that stop runs early carry it: older keys stay as they were */
    if (j && o->budget_hours > 0)
        json_object_set_new(j, "budget_hours", json_real(o->budget_hours));
    if (j && o->early_stop)
        json_object_set_new(j, "early_stop", json_pack("{s:f,s:i}", "delta", o->early_delta, "min_epochs",
                                                       o->early_min_epochs));
    s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return s;
}

/* Binds what identifies a search to ?1 .. ?4. */
static void bind_search(sqlite3_stmt *q, const SearchTarget *t, SearchOptimizer opt, const char *key)
{
    sqlite3_bind_int64(q, 1, t->dataset_id);
    sqlite3_bind_text(q, 2, t->sp->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, search_optimizer_names[opt], -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, key, -1, SQLITE_STATIC);
}

/* The newest search with this key: *id (0: none), *done, *model_id, and
 * who holds it (holder "" when no one) until when. */
static int search_find(Store *st, const SearchTarget *t, SearchOptimizer opt, const char *key, int64_t *id, int *done,
                       int64_t *model_id, char holder[180], double *until, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    *id = 0, *done = 0, *model_id = 0, *holder = 0, *until = 0;
    if (store_prepare(st, &q,
                      "SELECT id, status = 'done', coalesce(model_id, 0), coalesce(worker, ''),"
                      " coalesce(lease_until, 0) FROM searches WHERE dataset_id = ?1 AND space = ?2"
                      " AND optimizer = ?3 AND config = ?4 AND status != 'failed' ORDER BY id DESC LIMIT 1",
                      e))
        return e->code;
    bind_search(q, t, opt, key);
    if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        *done = sqlite3_column_int(q, 1);
        *model_id = sqlite3_column_int64(q, 2);
        snprintf(holder, 180, "%s", (const char *)sqlite3_column_text(q, 3));
        *until = sqlite3_column_double(q, 4);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? XE_OK : store_fail(st, e, "reading searches");
}

/* This process's hold on a search: the row names it (worker) until
 * lease_until, renewed by each step and a heartbeat. */
typedef struct Hold {
    int64_t id;
    char worker[180];  /* queue_worker_name */
    double lease;      /* seconds */
    int held;          /* the row names this process */
    int created;       /* this process added the row */
} Hold;

static int search_insert(Store *st, const SearchTarget *t, SearchOptimizer opt, const char *key, Hold *h, double now,
                         XErr *e)
{
    sqlite3_stmt *q = NULL;
    if (store_prepare(st, &q,
                      "INSERT INTO searches (dataset_id, space, optimizer, config, worker, lease_until, heartbeat_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6 + ?7, ?6) RETURNING id",
                      e))
        return e->code;
    bind_search(q, t, opt, key);
    sqlite3_bind_text(q, 5, h->worker, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 6, now);
    sqlite3_bind_double(q, 7, h->lease);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return store_fail(st, e, "adding the search");
    }
    h->id = sqlite3_column_int64(q, 0);
    h->created = 1;
    sqlite3_finalize(q);
    return XE_OK;
}

/* Runs an UPDATE of the held search (?1 its id, ?2 this worker) whose
 * statement the caller bound further; XE_FAIL "lease lost" when it touched
 * no row. */
static int hold_step(Store *st, const Hold *h, sqlite3_stmt *q, const char *what, XErr *e)
{
    int rc;
    sqlite3_bind_int64(q, 1, h->id);
    sqlite3_bind_text(q, 2, h->worker, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return store_fail(st, e, what);
    if (sqlite3_changes(st->db) != 1)
        return xerr_set(e, XE_FAIL, "search %lld: lease lost (another process took it over); not writing",
                        (long long)h->id);
    return XE_OK;
}

/* Takes a free search, or one whose holder's lease ran out or whose
 * process is gone (the caller checked which). */
static int hold_take(Store *st, Hold *h, double now, XErr *e)
{
    sqlite3_stmt *q = NULL;
    if (store_prepare(st, &q,
                      "UPDATE searches SET worker = ?2, lease_until = ?3 + ?4, heartbeat_at = ?3"
                      " WHERE id = ?1 AND status = 'running'",
                      e))
        return e->code;
    sqlite3_bind_double(q, 3, now);
    sqlite3_bind_double(q, 4, h->lease);
    return hold_step(st, h, q, "taking the search", e);
}

/* Extends the lease; XE_FAIL "lease lost" once another process holds it. */
static int hold_renew(Store *st, const Hold *h, XErr *e)
{
    sqlite3_stmt *q = NULL;
    if (store_prepare(st, &q,
                      "UPDATE searches SET lease_until = ?3 + ?4, heartbeat_at = ?3"
                      " WHERE id = ?1 AND worker = ?2 AND status = 'running'",
                      e))
        return e->code;
    sqlite3_bind_double(q, 3, now_unix());
    sqlite3_bind_double(q, 4, h->lease);
    return hold_step(st, h, q, "extending the search's lease", e);
}

/* The heartbeat thread's beat (its own connection). */
static int hold_beat(Store *st, void *ctx, XErr *e)
{
    return hold_renew(st, ctx, e);
}

/* "2026-11-23T08:47:01Z" */
static void utc_time(double t, char buf[32])
{
    time_t s = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, 32, "%.0f", t);
}

/* Finds the newest search with this key and holds it, or adds it, in one
 * transaction, so two identical commands never start two searches. A
 * search a live process holds is refused, naming it and its lease; one
 * whose holder is a process of this host that is gone, or whose lease ran
 * out (another host, or hung), is taken over at once. A finished search is
 * only read (*done 1, not held). */
static int search_claim(Store *st, const SearchTarget *t, SearchOptimizer opt, const char *key, Hold *h, int *done,
                        int64_t *model_id, FILE *log, XErr *e)
{
    char holder[180], until_s[32];
    double now = now_unix(), until;
    int rc, dead = 0;
    if (store_begin(st, e))
        return e->code;
    rc = search_find(st, t, opt, key, &h->id, done, model_id, holder, &until, e);
    if (!rc && h->id && !*done && *holder && until > now && !(dead = queue_worker_dead(holder))) {
        utc_time(until, until_s);
        rc = xerr_set(e, XE_FAIL, "search %lld is being run by %s (lease until %s, %.0f s from now); not starting a"
                      " second one", (long long)h->id, holder, until_s, until - now);
    } else if (!rc && !h->id) {
        rc = search_insert(st, t, opt, key, h, now, e);
    } else if (!rc && !*done) {
        rc = hold_take(st, h, now, e);
    }
    if (rc) {
        store_rollback(st);
        return rc;
    }
    if (store_commit(st, e))
        return e->code;
    h->held = !*done;
    if (h->held && *holder && log)
        fprintf(log, "xfer-search: search %lld: taking it over from %s (%s)\n", (long long)h->id, holder,
                dead ? "its process is gone" : "its lease ran out");
    return XE_OK;
}

/* Records the model of a search that had none (it was added before its
 * universal model was found or fitted). */
static int hold_set_model(Store *st, const Hold *h, int64_t model_id, XErr *e)
{
    sqlite3_stmt *q = NULL;
    if (store_prepare(st, &q, "UPDATE searches SET model_id = ?3 WHERE id = ?1 AND worker = ?2", e))
        return e->code;
    sqlite3_bind_int64(q, 3, model_id);
    return hold_step(st, h, q, "recording the search's model", e);
}

/* Lets go of the search (worker NULL) after a failure or an interrupt; a
 * failed search this process added that has no step yet is removed
 * instead, so a failure before the first step leaves no row. Best effort:
 * a hold not given back ends with its lease. */
static void hold_release(Store *st, Hold *h, int rc)
{
    sqlite3_stmt *q = NULL;
    XErr e = { 0 };
    const char *sql = h->created && rc != XE_INTR
                          ? "DELETE FROM searches WHERE id = ?1 AND worker = ?2"
                            " AND NOT EXISTS (SELECT 1 FROM search_steps WHERE search_id = ?1)"
                          : NULL;
    if (!h->held)
        return;
    if (sql && !store_prepare(st, &q, sql, &e) && !hold_step(st, h, q, "removing the search", &e)) {
        h->held = 0;
        return;
    }
    xerr_clear(&e);
    if (!store_prepare(st, &q, "UPDATE searches SET worker = NULL, lease_until = NULL WHERE id = ?1 AND worker = ?2",
                       &e))
        hold_step(st, h, q, "giving the search back", &e);
    h->held = 0;
}

/* ---- steps ---- */

static int outcome_push(SearchOutcome *out, const SearchStep *s, const char *arch, XErr *e)
{
    SearchStep *ns = realloc(out->steps, (size_t)(out->n + 1) * sizeof *ns);
    char **na = ns ? realloc(out->arch_str, (size_t)(out->n + 1) * sizeof *na) : NULL;
    if (ns)
        out->steps = ns;
    if (!na)
        return xerr_set(e, XE_FAIL, "out of memory");
    out->arch_str = na;
    if (!(na[out->n] = strdup(arch)))
        return xerr_set(e, XE_FAIL, "out of memory");
    out->steps[out->n++] = *s;
    return XE_OK;
}

static double col_num(sqlite3_stmt *q, int i)
{
    return sqlite3_column_type(q, i) == SQLITE_NULL ? NAN : sqlite3_column_double(q, i);
}

/* The recorded steps, in order; pending[i]: step i has no observation
 * yet although its run is not failed (the last step, after a kill: its run
 * unfinished, or finished just before the kill). */
static int steps_load(Store *st, const SearchTarget *t, int64_t search_id, SearchOutcome *out, char **pending,
                      XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc = XE_OK, step;
    if (store_prepare(st, &q,
                      "SELECT s.step, a.arch, coalesce(s.run_id, 0), s.predicted, s.predicted_std, s.observed,"
                      " coalesce(r.status, ''), s.terminated_early FROM search_steps s JOIN archs a ON a.id = s.arch_id"
                      " LEFT JOIN runs r ON r.id = s.run_id WHERE s.search_id = ?1 ORDER BY s.step",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, search_id);
    while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
        SearchStep s;
        SpaceCost c;
        const char *arch = (const char *)sqlite3_column_text(q, 1), *status = (const char *)sqlite3_column_text(q, 6);
        memset(&s, 0, sizeof s);
        if (sqlite3_column_int(q, 0) != out->n) {
            rc = xerr_set(e, XE_FAIL, "search %lld: step %d is missing", (long long)search_id, out->n);
            break;
        }
        if ((rc = t->sp->parse(arch, &s.arch, e)) || (rc = t->sp->cost(&s.arch, &t->macro, &c, e)))
            break;
        s.run_id = sqlite3_column_int64(q, 2);
        s.pred = col_num(q, 3);
        s.pred_std = col_num(q, 4);
        s.acc = col_num(q, 5);
        s.terminated = sqlite3_column_int(q, 7);
        s.params = (double)c.params;
        s.flops = (double)c.flops;
        if (!(rc = outcome_push(out, &s, arch, e))) {
            char *p = realloc(*pending, (size_t)out->n);
            if (!p) {
                rc = xerr_set(e, XE_FAIL, "out of memory");
                break;
            }
            *pending = p;
            p[out->n - 1] = !isfinite(s.acc) && (!strcmp(status, "planned") || !strcmp(status, "running") ||
                                                 !strcmp(status, "done") || !strcmp(status, "terminated-early"));
        }
    }
    if (!rc && step != SQLITE_DONE)
        rc = store_fail(st, e, "reading search steps");
    sqlite3_finalize(q);
    return rc;
}

static int step_insert(Store *st, int64_t search_id, int step, int64_t arch_id, const SearchStep *s, XErr *e)
{
    sqlite3_stmt *q = NULL;
    if (store_prepare(st, &q,
                      "INSERT INTO search_steps (search_id, step, arch_id, run_id, predicted, predicted_std, observed)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, search_id);
    sqlite3_bind_int(q, 2, step);
    sqlite3_bind_int64(q, 3, arch_id);
    if (s->run_id)
        sqlite3_bind_int64(q, 4, s->run_id);
    if (isfinite(s->pred))
        sqlite3_bind_double(q, 5, s->pred);
    if (isfinite(s->pred_std))
        sqlite3_bind_double(q, 6, s->pred_std);
    if (isfinite(s->acc))
        sqlite3_bind_double(q, 7, s->acc);
    if (sqlite3_step(q) != SQLITE_DONE) {
        sqlite3_finalize(q);
        return store_fail(st, e, "recording a search step");
    }
    sqlite3_finalize(q);
    return XE_OK;
}

/* The table evaluator's record of an arch on the target under the
 * protocol: a done run (*run_id, 0 when none) and the mean validation
 * accuracy over its seeds (*acc, as the table has it, in double). */
static int recorded_run(Store *st, const SearchTarget *t, int64_t arch_id, int64_t *run_id, double *acc, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_prepare(st, &q,
                      "SELECT min(id), avg(valid_acc) FROM runs WHERE arch_id = ?1 AND dataset_id = ?2"
                      " AND protocol_id = ?3 AND status = 'done' AND valid_acc IS NOT NULL",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, arch_id);
    sqlite3_bind_int64(q, 2, t->dataset_id);
    sqlite3_bind_int64(q, 3, t->protocol_id);
    rc = sqlite3_step(q);
    *run_id = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(q, 1) != SQLITE_NULL)
        *acc = sqlite3_column_double(q, 1);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? XE_OK : store_fail(st, e, "reading runs");
}

/* Records a proposal: the table evaluator's observed accuracy now; the
 * train evaluator's run planned (seed 0) with the step, in one
 * transaction that first renews the hold (nothing is written once it was
 * lost). */
static int step_record(Store *st, const SearchTarget *t, const SearchRunOpts *o, const Hold *h, int step,
                       SearchStep *s, char canon[1024], XErr *e)
{
    char hash[65];
    int64_t arch_id;
    int rc;
    if (space_arch_hash(t->sp, &s->arch, canon, 1024, hash, e) || store_begin(st, e))
        return e->code;
    if (!(rc = hold_renew(st, h, e)) && !(rc = store_arch_id(st, t->sp->name, canon, hash, &arch_id, e))) {
        if (o->evaluator == SEARCH_EVAL_TABLE) {
            rc = recorded_run(st, t, arch_id, &s->run_id, &s->acc, e);
        } else {
            PlanStats ps = { 0, 0 };
            rc = queue_plan(st, arch_id, t->dataset_id, t->protocol_id, 0, &s->run_id, &ps, e);
        }
    }
    if (!rc)
        rc = step_insert(st, h->id, step, arch_id, s, e);
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st, e);
}

/* The run's status, accuracy, lease, its holder and error. */
static int run_state(Store *st, int64_t run_id, char status[32], double *acc, double *lease, char worker[180],
                     char err[256], XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_prepare(st, &q,
                      "SELECT status, valid_acc, coalesce(lease_until, 0), coalesce(error, ''), coalesce(worker, '')"
                      " FROM runs WHERE id = ?1",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, run_id);
    if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        snprintf(status, 32, "%s", (const char *)sqlite3_column_text(q, 0));
        *acc = col_num(q, 1);
        *lease = sqlite3_column_double(q, 2);
        snprintf(err, 256, "%s", (const char *)sqlite3_column_text(q, 3));
        snprintf(worker, 180, "%s", (const char *)sqlite3_column_text(q, 4));
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? xerr_set(e, XE_FAIL, "run %lld is gone from the store", (long long)run_id)
                                 : store_fail(st, e, "reading a run");
    return XE_OK;
}

/* Writes the step's observation (and whether its run was stopped early)
 * if the hold is still this process's, renewing it. */
static int step_observe(Store *st, const Hold *h, int step, const SearchStep *s, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_begin(st, e))
        return e->code;
    if ((rc = hold_renew(st, h, e)) ||
        (rc = store_prepare(st, &q,
                            "UPDATE search_steps SET observed = ?3, terminated_early = ?4 WHERE search_id = ?1"
                            " AND step = ?2",
                            e))) {
        store_rollback(st);
        return rc;
    }
    sqlite3_bind_int64(q, 1, h->id);
    sqlite3_bind_int(q, 2, step);
    if (isfinite(s->acc))
        sqlite3_bind_double(q, 3, s->acc);
    sqlite3_bind_int(q, 4, s->terminated);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        store_fail(st, e, "recording an observation");
        store_rollback(st);
        return e->code;
    }
    return store_commit(st, e);
}

/* Trains the step's run (only that one) until it is done, failed or
 * terminated early (by o->work.stop, or before: a run an earlier search
 * stopped is not trained again); a run another worker holds is waited for
 * until its lease runs out, or taken over at once when that worker was a
 * process of this host that is gone (a killed search's). s->acc: the
 * validation accuracy (the last one of a stopped run, s->terminated 1),
 * NAN if it failed. */
static int step_train(Store *st, const SearchRunOpts *o, const Hold *h, int step, SearchStep *s, XErr *e)
{
    WorkOpts w = o->work;
    int said = 0;
    w.only = &s->run_id;
    w.nonly = 1;
    w.max_runs = 0;
    for (;;) {
        char status[32] = "", why[256] = "", holder[180] = "";
        double acc = NAN, lease = 0;
        WorkStats ws;
        int rc, lapsed = 0;
        if ((rc = run_state(st, s->run_id, status, &acc, &lease, holder, why, e)))
            return rc;
        if (!strcmp(status, "done") || (!strcmp(status, "terminated-early") && isfinite(acc))) {
            s->acc = acc;
            s->terminated = !strcmp(status, "terminated-early");
            if (s->terminated && o->log)
                fprintf(o->log, "xfer-search: run %lld stopped early: %s\n", (long long)s->run_id, why);
            return step_observe(st, h, step, s, e);
        }
        if (strcmp(status, "planned") && strcmp(status, "running")) {
            s->acc = NAN;
            if (o->log)
                fprintf(o->log, "xfer-search: run %lld %s%s%s: the step counts, without an accuracy\n",
                        (long long)s->run_id, status, *why ? ": " : "", why);
            return XE_OK;
        }
        if (!strcmp(status, "running") && lease > now_unix() && queue_worker_dead(holder)) {
            if ((rc = queue_lapse(st, s->run_id, holder, &lapsed, e)))
                return rc;
            if (lapsed && o->log)
                fprintf(o->log, "xfer-search: run %lld's worker %s is gone: taking the run over\n",
                        (long long)s->run_id, holder);
            continue;
        }
        if (!strcmp(status, "running") && lease > now_unix()) {
            /* someone else holds it: wait for it to finish or its lease to lapse */
            if (!said && o->log)
                fprintf(o->log, "xfer-search: run %lld is held by another worker (lease %.0f s more): waiting\n",
                        (long long)s->run_id, lease - now_unix());
            said = 1;
            if ((rc = xerr_check_interrupt(e)))
                return rc;
            usleep(200000);
            continue;
        }
        if ((rc = worker_run(st, &w, NULL, &ws, e)))
            return rc;
    }
}

/* Seconds recorded for the search's finished runs (done, failed,
 * terminated early; runs without a record count 0). */
static int steps_seconds(Store *st, int64_t search_id, double *secs, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_prepare(st, &q,
                      "SELECT coalesce(sum(r.seconds), 0) FROM search_steps s JOIN runs r ON r.id = s.run_id"
                      " WHERE s.search_id = ?1 AND r.status IN ('done', 'failed', 'terminated-early')",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, search_id);
    if ((rc = sqlite3_step(q)) == SQLITE_ROW)
        *secs = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? XE_OK : store_fail(st, e, "reading the runs' seconds");
}

/* The table evaluator counts hours only where the table has seconds. */
static int table_has_seconds(Store *st, const SearchTarget *t, const char *target, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc, n = 0;
    if (store_prepare(st, &q,
                      "SELECT count(seconds) FROM runs WHERE dataset_id = ?1 AND protocol_id = ?2 AND status = 'done'",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, t->dataset_id);
    sqlite3_bind_int64(q, 2, t->protocol_id);
    if ((rc = sqlite3_step(q)) == SQLITE_ROW)
        n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW)
        return store_fail(st, e, "reading runs");
    if (!n)
        return xerr_set(e, XE_FAIL,
                        "--budget-hours: target '%s' has no recorded seconds under protocol '%s' (%.12s): the"
                        " table evaluator cannot count hours (give --budget K)",
                        target, t->protocol_name, t->protocol_hash);
    return XE_OK;
}

/* ---- the loop ---- */

static void log_step(const SearchRunOpts *o, const SearchOutcome *out, double best)
{
    const SearchStep *s = &out->steps[out->n - 1];
    if (!o->log)
        return;
    if (o->budget)
        fprintf(o->log, "xfer-search: %d/%ld %s", out->n, o->budget, out->arch_str[out->n - 1]);
    else
        fprintf(o->log, "xfer-search: %d %s", out->n, out->arch_str[out->n - 1]);
    if (isfinite(s->pred))
        fprintf(o->log, " predicted %.4f", s->pred);
    if (isfinite(s->acc))
        fprintf(o->log, " observed %.4f%s", s->acc, s->terminated ? " (stopped early)" : "");
    else
        fprintf(o->log, " failed");
    if (isfinite(best))
        fprintf(o->log, " (best %.4f)\n", best);
    else
        fprintf(o->log, " (no best yet)\n");
}

/* Marks the held search done with its best step, and lets go of it. */
static int search_finish(Store *st, Hold *h, const SearchOutcome *out, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int best = -1;
    for (int i = 0; i < out->n; i++)
        if (isfinite(out->steps[i].acc) && !out->steps[i].terminated &&
            (best < 0 || out->steps[i].acc > out->steps[best].acc))
            best = i;
    if (store_prepare(st, &q,
                      "UPDATE searches SET status = 'done', finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),"
                      " best_arch_id = (SELECT arch_id FROM search_steps WHERE search_id = ?1 AND step = ?3),"
                      " worker = NULL, lease_until = NULL WHERE id = ?1 AND worker = ?2 AND status = 'running'",
                      e))
        return e->code;
    sqlite3_bind_int(q, 3, best);
    if (hold_step(st, h, q, "finishing the search", e))
        return e->code;
    h->held = 0;
    return XE_OK;
}

int search_run(Store *st, const SearchRunOpts *o, SearchOutcome *out, XErr *e)
{
    SearchTarget t;
    SearchPool pool;
    SearchConfig c;
    Searcher *s = NULL;
    StoredModel sm = { 0 };
    Hold h = { 0 };
    Heart heart;
    char *key = NULL, *pending = NULL;
    int rc, done = 0, beating = 0;
    int64_t model_id = 0;
    double best = -INFINITY;
    memset(out, 0, sizeof *out);
    memset(&pool, 0, sizeof pool);
    out->opt = o->opt;
    out->sp = o->sp;
    snprintf(out->dataset, sizeof out->dataset, "%s", o->target);
    if (o->budget < 0 || (!o->budget && !(o->budget_hours > 0)))
        return xerr_set(e, XE_USAGE, "--budget: %ld: a search needs at least one evaluation", o->budget);
    if (o->early_stop && o->evaluator != SEARCH_EVAL_TRAIN)
        return xerr_set(e, XE_USAGE, "--early-stop: only the train evaluator stops runs early");
    if ((rc = search_target_open(st, o->target, o->sp, o->protocol, o->evaluator == SEARCH_EVAL_TRAIN, o->min_runs,
                                 &t, e)))
        return rc;
    if (o->opt == SEARCH_XFER && !t.nsources) {
        if (!o->allow_no_transfer) {
            rc = search_target_no_sources(&t, o->min_runs, e);
            goto cleanup;
        }
        if (o->log)
            fprintf(o->log, "xfer-search: no source tasks to transfer to '%s' from: searching with nao\n", o->target);
        out->opt = SEARCH_NAO;
    }
    if (o->budget_hours > 0 && o->evaluator == SEARCH_EVAL_TABLE && (rc = table_has_seconds(st, &t, o->target, e)))
        goto cleanup;
    if (o->evaluator == SEARCH_EVAL_TABLE)
        rc = search_pool_table(&pool, o->sp, &t.macro, o->max_params, o->max_flops, t.tn, t.ttok, e);
    else
        rc = search_pool_space(&pool, o->sp, &t.macro, o->max_params, o->max_flops, e);
    if (rc)
        goto cleanup;
    if (!(key = search_key(o, &t))) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    /* found or added and held in one transaction, before anything slow */
    queue_worker_name(h.worker, sizeof h.worker, 0);
    h.lease = o->work.lease > 0 ? o->work.lease : XFER_DEFAULT_LEASE;
    if ((rc = search_claim(st, &t, out->opt, key, &h, &done, &model_id, o->log, e)))
        goto cleanup;
    out->search_id = h.id;
    if (h.held) {
        if ((rc = heart_start(&heart, st->path, h.lease / 4, hold_beat, &h, e)))
            goto cleanup;
        beating = 1;
    }
    if (out->opt == SEARCH_XFER) {
        /* a resumed search predicts with the model it started with */
        if (model_id)
            rc = models_load(st, o->sp->name, model_id, &sm, e);
        else if (!(rc = search_target_universal(st, &t, o->log, &sm, e)) && h.held)
            rc = hold_set_model(st, &h, sm.id, e);
        if (rc)
            goto cleanup;
    }
    if (!h.created && (rc = steps_load(st, &t, out->search_id, out, &pending, e)))
        goto cleanup;
    out->resumed = out->n;
    for (int i = 0; i < out->n; i++)
        if (isfinite(out->steps[i].acc) && !out->steps[i].terminated && out->steps[i].acc > best)
            best = out->steps[i].acc;
    if (done) {
        if (o->log)
            fprintf(o->log, "xfer-search: search %lld was finished before: its result\n", (long long)out->search_id);
        goto cleanup;
    }
    if (o->log) {
        char of[64] = "", hours[64] = "";
        if (o->budget)
            snprintf(of, sizeof of, " of %ld", o->budget);
        if (o->budget_hours > 0)
            snprintf(hours, sizeof hours, " (--budget-hours %g)", o->budget_hours);
        fprintf(o->log, "xfer-search: search %lld: %s on '%s' (%s evaluator, protocol '%s' %.12s), %s%d%s done%s\n",
                (long long)out->search_id, search_optimizer_names[out->opt], o->target,
                o->evaluator == SEARCH_EVAL_TABLE ? "table" : "train", t.protocol_name, t.protocol_hash,
                out->n ? "resumed: " : "", out->n, of, hours);
    }
    search_config_default(&c, out->opt, o->seed);
    c.multi = o->multi;
    c.explore = o->explore;
    c.universal = sm.m;
    c.zs_mean = t.zs_mean;
    c.zs_std = t.zs_std;
    if ((rc = searcher_new(&s, &c, &pool, e)))
        goto cleanup;
    for (int i = 0; pending && i < out->n; i++) {
        SearchStep *p = &out->steps[i];
        if (!pending[i])
            continue;
        if (o->log)
            fprintf(o->log, "xfer-search: step %d's run %lld has no result yet: finishing it\n", i + 1,
                    (long long)p->run_id);
        if ((rc = step_train(st, o, &h, i, p, e)))
            goto cleanup;
        if (isfinite(p->acc) && !p->terminated && p->acc > best)
            best = p->acc;
    }
    while (!o->budget || out->n < o->budget) {
        SearchStep step;
        char canon[1024];
        XErr ne = { 0 };
        double secs = 0;
        if ((rc = xerr_check_interrupt(e)))
            goto cleanup;
        if (o->budget_hours > 0) {
            if ((rc = steps_seconds(st, out->search_id, &secs, e)))
                goto cleanup;
            if (secs >= o->budget_hours * 3600) {
                if (o->log)
                    fprintf(o->log,
                            "xfer-search: the runs took %.1f s of --budget-hours %g: stopping after %d evaluations\n",
                            secs, o->budget_hours, out->n);
                break;
            }
        }
        if ((rc = searcher_next(s, out->steps, out->n, &step, &ne))) {
            if (rc != XE_FAIL || (pool.n && out->n < pool.n)) {
                *e = ne;
                goto cleanup;
            }
            /* the table (or every cell the constraints allow) is used up */
            if (o->log)
                fprintf(o->log, "xfer-search: %s: stopping after %d evaluations\n", ne.msg, out->n);
            rc = XE_OK;
            break;
        }
        if (o->evaluator == SEARCH_EVAL_TABLE)
            step.acc = search_target_lookup(&t, &pool, &step.arch);
        if ((rc = step_record(st, &t, o, &h, out->n, &step, canon, e)) ||
            (rc = outcome_push(out, &step, canon, e)))
            goto cleanup;
        if (o->evaluator == SEARCH_EVAL_TRAIN &&
            (rc = step_train(st, o, &h, out->n - 1, &out->steps[out->n - 1], e)))
            goto cleanup;
        if (isfinite(out->steps[out->n - 1].acc) && !out->steps[out->n - 1].terminated &&
            out->steps[out->n - 1].acc > best)
            best = out->steps[out->n - 1].acc;
        log_step(o, out, best);
    }
    rc = search_finish(st, &h, out, e);
cleanup:
    if (beating)
        heart_stop(&heart);
    hold_release(st, &h, rc);
    searcher_free(s);
    stored_model_release(&sm);
    search_pool_release(&pool);
    search_target_close(&t);
    free(key), free(pending);
    return rc;
}

void search_outcome_release(SearchOutcome *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->arch_str[i]);
    free(o->arch_str), free(o->steps);
    memset(o, 0, sizeof *o);
}
