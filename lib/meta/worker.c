/* The worker: claims runs, trains them with the engine, records every
 * epoch, checkpoints after each one, and keeps its lease alive from a
 * heartbeat thread on its own database connection. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "db/heart.h"
#include "meta/meta.h"
#include "nn/device.h"
#include "nn/model.h"
#include "space/space.h"

/* ---- heartbeat: the run's lease, from its own connection ---- */

typedef struct RunBeat {
    const Claim *claim;
    int64_t run_id;
} RunBeat;

static int run_beat(Store *st, void *ctx, XErr *e)
{
    const RunBeat *b = ctx;
    return queue_heartbeat(st, b->claim, b->run_id, e);
}

/* ---- progress: a bar on a terminal, a log line per run otherwise ---- */

typedef struct Progress {
    long finished;  /* runs this worker ended (done, stopped early or failed) */
    long left;      /* runs not finished in the queue when the current one was claimed */
    int workers;    /* live workers then, this one included */
    double busy;    /* seconds this worker spent on its finished runs */
} Progress;

/* "45s", "3m20s", "2h05m", "3d04h" */
static const char *duration(double s, char buf[16])
{
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t < 60)
        snprintf(buf, 16, "%lds", t);
    else if (t < 3600)
        snprintf(buf, 16, "%ldm%02lds", t / 60, t % 60);
    else if (t < 86400)
        snprintf(buf, 16, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else
        snprintf(buf, 16, "%ldd%02ldh", t / 86400, t % 86400 / 3600);
    return buf;
}

/* Time left: what is left of the current run plus the runs after it at
 * this worker's mean run time (the current run's projected time before
 * one has finished), shared by the live workers. */
static const char *eta(const Progress *pg, double cur_left, double cur_total, long after, char buf[16])
{
    double mean = pg->finished ? pg->busy / (double)pg->finished : cur_total;
    return duration((cur_left + (double)after * mean) / (pg->workers > 0 ? pg->workers : 1), buf);
}

/* ---- one run ---- */

/* on_epoch's status when the stop hook ends the run (no message set) */
#define WORK_STOPPED 100

typedef struct Job {
    Store *st;
    const Claim *claim;
    const WorkOpts *o;
    Heart *heart;
    RunInfo *ri;
    const char *ckpt;
    double last_valid;
    int epochs;
    double t0;
    const Progress *pg;
    int start;      /* the epoch it resumed from */
    double *book;   /* bookkeeping seconds (WorkStats.book) */
    char why[256];  /* why the stop hook ended it */
} Job;

static int on_epoch(void *ctx, const Net *net, const EpochPoint *p, XErr *e)
{
    Job *j = ctx;
    if (j->heart->lost)
        return xerr_set(e, XE_FAIL, "run %lld: lease lost (another worker took it over); not writing",
                        (long long)j->ri->id);
    /* the point first, then the checkpoint: a resumed run re-trains from
     * the checkpoint and rewrites the points after it with the same values */
    double t = xfer_clock();
    int rc = queue_epoch(j->st, j->claim, j->ri->id, p, e), stop = 0;
    j->last_valid = p->valid_acc;
    /* early termination: asked once the point is stored, before the
     * checkpoint a stopped run no longer needs */
    if (!rc && j->o->stop) {
        /* one caller at a time: the hook's model and caches are shared by
         * a worker's jobs */
        static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&stop_mu);
        rc = j->o->stop(j->o->stop_ctx, j->st, j->ri, p->epoch, j->epochs, &stop, j->why, sizeof j->why, e);
        pthread_mutex_unlock(&stop_mu);
    }
    if (!rc && stop) {
        *j->book += xfer_clock() - t;
        return WORK_STOPPED;
    }
    if (!rc && p->epoch < j->epochs)
        rc = net_checkpoint_write(net, p->epoch, j->ckpt, e);
    *j->book += xfer_clock() - t;
    if (rc)
        return rc;
    if (j->o->progress) {
        /* [#####.....] 3/40 runs  run 57 epoch 4/12  loss 1.2345 valid 0.4321  ETA 37m10s */
        const Progress *pg = j->pg;
        double frac_run = (double)p->epoch / j->epochs, total = (double)(pg->finished + pg->left), el = xfer_clock() - j->t0;
        double done = ((double)pg->finished + frac_run) / (total > 0 ? total : 1), run_left;
        char bar[21], buf[16];
        int fill = (int)(done * 20 + 0.5);
        for (int i = 0; i < 20; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        /* the rest of this run from its own pace since it (re)started */
        run_left = el / (double)(p->epoch - j->start) * (double)(j->epochs - p->epoch);
        fprintf(stderr, "\r[%s] %ld/%.0f runs  run %lld epoch %d/%d  loss %.4f valid %.4f  ETA %s\033[K", bar,
                pg->finished, total, (long long)j->ri->id, p->epoch, j->epochs, p->train_loss, p->valid_acc,
                eta(pg, run_left, el + run_left, pg->left - 1, buf));
    }
    return XE_OK;
}

int meta_dataset_task(Store *st, int64_t id, char **path, double mean[4], double std[4], XErr *e)
{
    sqlite3_stmt *q = NULL;
    const char *slash = strrchr(st->path, '/');
    json_t *m, *s;
    int rc;
    if (store_prepare(st, &q, "SELECT path, mean, std FROM datasets WHERE id = ?1", e))
        return e->code;
    sqlite3_bind_int64(q, 1, id);
    if ((rc = sqlite3_step(q)) != SQLITE_ROW || sqlite3_column_type(q, 0) == SQLITE_NULL) {
        sqlite3_finalize(q);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? xerr_set(e, XE_FAIL, "the dataset has no stored task")
                                                     : store_fail(st, e, "reading a dataset");
    }
    if (slash)
        rc = asprintf(path, "%.*s/%s", (int)(slash - st->path), st->path, (const char *)sqlite3_column_text(q, 0));
    else
        rc = asprintf(path, "%s", (const char *)sqlite3_column_text(q, 0));
    m = json_loads((const char *)sqlite3_column_text(q, 1), 0, NULL);
    s = json_loads((const char *)sqlite3_column_text(q, 2), 0, NULL);
    sqlite3_finalize(q);
    for (size_t i = 0; i < 4; i++) {
        mean[i] = m && i < json_array_size(m) ? json_number_value(json_array_get(m, i)) : 0.0;
        std[i] = s && i < json_array_size(s) ? json_number_value(json_array_get(s, i)) : 1.0;
        if (std[i] <= 0)
            std[i] = 1.0;
    }
    json_decref(m);
    json_decref(s);
    if (rc < 0)
        return xerr_set(e, XE_FAIL, "out of memory");
    return XE_OK;
}

static char *ckpt_path(const Store *st, int64_t run_id)
{
    char *p = NULL;
    if (asprintf(&p, "%s.ckpt/run-%lld.ckpt", st->path, (long long)run_id) < 0)
        return NULL;
    return p;
}

int meta_build_net(Net *net, const NnBackend *be, const char *space, const char *arch, const Protocol *p,
                   int batch, const TaskFile *t, uint64_t seed, int no_bn, SpaceCost *cost, XErr *e)
{
    const Space *sp = space_find(space);
    SpaceArch a;
    SpaceMacro m;
    if (!sp)
        return xerr_set(e, XE_FAIL, "unknown space '%s'", space);
    if (sp->parse(arch, &a, e))
        return e->code;
    m = (SpaceMacro){ p->width, p->cells, (int)t->classes, (int)t->c, (int)t->h, (int)t->w };
    if (sp->cost(&a, &m, cost, e))
        return e->code;
    if (net_init(net, be, batch, (int)t->c, (int)t->h, (int)t->w, e))
        return e->code;
    if (sp == &space_nb201 ? model_nb201(net, a.nb201.ops, p->width, p->cells, (int)t->classes, e)
                           : model_darts(net, &a.darts, p->width, p->cells, (int)t->classes, p->drop_path > 0, e))
        return e->code;
    /* a one-input sum is a copy forward and an add backward: the layer
     * becomes the identity (its parameters stay, unused) */
    for (int i = 0; no_bn && i < net->nlayers; i++)
        if (net->layers[i].kind == LAYER_BN)
            net->layers[i].kind = LAYER_SUM;
    return net_finalize(net, seed, e);
}

typedef enum { RUN_DONE, RUN_STOPPED, RUN_FAILED, RUN_LOST, RUN_INTR, RUN_ERROR } RunEnd;

static RunEnd train_one(Store *st, const Claim *c, const WorkOpts *o, const NnBackend *be, const char *device,
                        RunInfo *ri, const Progress *pg, double *book, FILE *out, XErr *e)
{
    Protocol p;
    Recipe r;
    TaskFile t = { 0 };
    Net net = { 0 };
    Heart heart;
    RunBeat beat = { c, ri->id };
    Job j = { st, c, o, &heart, ri, NULL, -1, 0, xfer_clock(), pg, 0, book, "" };
    SpaceCost cost = { 0, 0 };
    double mean[4], std[4], test_acc = -1;
    char *task = NULL, *ckpt = NULL, *dir = NULL;
    int start = 0, rc;
    XErr re = { 0 };
    RunEnd end = RUN_ERROR;
    double t0 = xfer_clock();

    if (heart_start(&heart, st->path, c->lease / 4, run_beat, &beat, e))
        return RUN_ERROR;
    rc = protocol_parse(ri->recipe, &p, &re);
    if (!rc && strcmp(p.precision, "fp32"))
        rc = xerr_set(&re, XE_FAIL, "precision %s needs the CUDA backend", p.precision);
    if (!rc)
        rc = meta_dataset_task(st, ri->dataset_id, &task, mean, std, &re);
    *book += xfer_clock() - t0;
    if (!rc)
        rc = taskfile_open(&t, task, &re);
    if (!rc)
        rc = meta_build_net(&net, be, ri->space, ri->arch, &p, p.batch, &t,
                                (uint64_t)ri->seed, 0, &cost, &re);
    if (!rc && (!(ckpt = ckpt_path(st, ri->id)) || asprintf(&dir, "%s.ckpt", st->path) < 0))
        rc = xerr_set(&re, XE_FAIL, "out of memory");
    if (!rc && mkdir(dir, 0777) && errno != EEXIST)
        rc = xerr_set(&re, XE_FAIL, "'%s': %s", dir, strerror(errno));
    if (!rc && access(ckpt, F_OK) == 0) {
        XErr ce = { 0 };
        if (net_checkpoint_read(&net, &start, ckpt, &ce)) {
            fprintf(stderr, "xfer-train-meta: run %lld: %s; starting over\n", (long long)ri->id, ce.msg);
            start = 0;
            net_release(&net);
            memset(&net, 0, sizeof net);
            rc = meta_build_net(&net, be, ri->space, ri->arch, &p, p.batch, &t,
                                (uint64_t)ri->seed, 0, &cost, &re);
        }
    }
    if (!rc) {
        j.ckpt = ckpt;
        j.epochs = p.epochs;
        protocol_recipe(&p, (uint64_t)ri->seed, &r);
        if (start >= p.epochs)
            start = 0; /* a stale checkpoint of a finished run */
        j.start = start;
        rc = train_run(&net, &t, mean, std, &r, start, on_epoch, &j, &test_acc, &re);
    }
    t0 = xfer_clock();
    heart_stop(&heart);

    if (rc == XE_OK || rc == WORK_STOPPED) {
        RunResult res = { j.last_valid, test_acc, xfer_clock() - j.t0, cost.params, cost.flops, device };
        int stopped = rc == WORK_STOPPED;
        if (stopped ? queue_terminate(st, c, ri->id, &res, j.why, &re) : queue_finish(st, c, ri->id, &res, &re))
            rc = re.code;
        else {
            rc = XE_OK;
            end = stopped ? RUN_STOPPED : RUN_DONE;
        }
    }
    if (rc == XE_OK) {
        unlink(ckpt);
        if (out) {
            flockfile(out); /* one whole line among a worker's jobs */
            if (queue_print_run(st, ri->id, NULL, out, e))
                end = RUN_ERROR;
            funlockfile(out);
        }
    } else if (rc == XE_INTR) {
        end = RUN_INTR;
        if (queue_release(st, c, ri->id, e))
            end = RUN_ERROR;
    } else if (strstr(re.msg, "lease lost")) {
        end = RUN_LOST;
        fprintf(stderr, "xfer-train-meta: %s\n", re.msg);
    } else if (strstr(re.msg, "database")) {
        /* the store itself failed: stop rather than mark runs failed */
        *e = re;
        end = RUN_ERROR;
    } else {
        end = RUN_FAILED;
        if (ckpt)
            unlink(ckpt);
        if (queue_fail(st, c, ri->id, re.msg, e))
            end = RUN_ERROR;
    }
    *book += xfer_clock() - t0;
    if (end == RUN_FAILED)
        fprintf(stderr, "%sxfer-train-meta: run %lld failed: %s\n", o->progress ? "\r\033[K" : "",
                (long long)ri->id, re.msg);
    else if (end == RUN_STOPPED)
        fprintf(stderr, "%sxfer-train-meta: run %lld stopped early (%s on %s, seed %lld): %s\n",
                o->progress ? "\r\033[K" : "", (long long)ri->id, ri->arch, ri->dataset, (long long)ri->seed, j.why);
    if (net.be)
        net_release(&net);
    if (t.map)
        taskfile_close(&t);
    free(task);
    free(ckpt);
    free(dir);
    return end;
}

/* ---- the worker: one job, or several side by side on one GPU ---- */

/* What a worker's jobs share: the queue's counts for progress and the time
 * left, the stats, the first error, and the claims made (for --max-runs). */
typedef struct Pool {
    pthread_mutex_t mu;
    const WorkOpts *o;
    FILE *out;
    double t0;
    Progress pg;    /* finished and busy over every job */
    WorkStats *ws;
    long claims;    /* claims made or being made (--max-runs) */
    int rc;         /* the first job's error (XE_OK: none) */
    XErr err;
} Pool;

typedef struct WorkJob {
    Pool *pool;
    Store *st;            /* the caller's connection (job 0) or own */
    Store own;
    const NnBackend *be;  /* the shared context (job 0) or own */
    int own_be;
    const char *device;
    char name[180];
    pthread_t thread;
    double book;
} WorkJob;

/* Claims and trains runs until none is left, a limit is reached or a job
 * failed; the pool's counts move under its lock, training runs outside. */
static void job_loop(WorkJob *w)
{
    Pool *pl = w->pool;
    const WorkOpts *o = pl->o;
    Claim c = { w->name, o->lease, o->max_attempts, o->only, o->nonly };
    for (;;) {
        RunInfo ri;
        RunEnd end;
        Progress pg;
        long left;
        int got, workers, rc = XE_OK;
        double t1;
        XErr e = { 0 };
        pthread_mutex_lock(&pl->mu);
        if (xfer_interrupted && !pl->rc)
            pl->rc = xerr_set(&pl->err, XE_INTR, "interrupted");
        got = !pl->rc && !(o->max_runs && pl->claims >= o->max_runs) &&
              !(o->max_hours > 0 && xfer_clock() - pl->t0 >= o->max_hours * 3600);
        pl->claims += got;
        pthread_mutex_unlock(&pl->mu);
        if (!got)
            break;
        t1 = xfer_clock();
        if ((got = queue_claim(w->st, &c, &ri, &e)) > 0 && queue_left(w->st, &c, &left, &workers, &e)) {
            run_info_free(&ri);
            got = -1;
        }
        w->book += xfer_clock() - t1;
        pthread_mutex_lock(&pl->mu);
        if (got <= 0)
            pl->claims--;
        if (got < 0 && !pl->rc) {
            pl->rc = e.code ? e.code : XE_FAIL;
            pl->err = e;
        }
        if (got > 0) {
            pl->pg.left = o->only ? o->nonly - pl->pg.finished : left;
            pl->pg.workers = workers;
            pg = pl->pg;
        }
        pthread_mutex_unlock(&pl->mu);
        if (got <= 0)
            break;
        t1 = xfer_clock();
        end = train_one(w->st, &c, o, w->be, w->device, &ri, &pg, &w->book, pl->out, &e);
        pthread_mutex_lock(&pl->mu);
        if (end == RUN_DONE || end == RUN_STOPPED || end == RUN_FAILED) {
            pl->pg.finished++;
            pl->pg.busy += xfer_clock() - t1;
            pl->pg.left--;
        }
        if (end == RUN_DONE && !o->progress) {
            char buf[16];
            fprintf(stderr, "xfer-train-meta: run %lld done (%s on %s, seed %lld) in %.1f s; %ld left, about %s\n",
                    (long long)ri.id, ri.arch, ri.dataset, (long long)ri.seed, xfer_clock() - t1, pl->pg.left,
                    eta(&pl->pg, 0, 0, pl->pg.left, buf));
        } else if (end == RUN_DONE) {
            fprintf(stderr, "\r\033[K");
        }
        if (end == RUN_DONE)
            pl->ws->done++;
        else if (end == RUN_STOPPED)
            pl->ws->stopped++;
        else if (end == RUN_FAILED)
            pl->ws->failed++;
        else if (end == RUN_INTR)
            rc = xerr_set(&e, XE_INTR, "interrupted");
        else if (end == RUN_ERROR)
            rc = e.code ? e.code : XE_FAIL;
        if (rc && (!pl->rc || (pl->rc == XE_INTR && rc != XE_INTR))) {
            pl->rc = rc;
            pl->err = e;
        }
        if (end == RUN_LOST)
            pl->claims--;
        pthread_mutex_unlock(&pl->mu);
        run_info_free(&ri);
        if (rc)
            break;
    }
}

static void *job_main(void *arg)
{
    job_loop(arg);
    return NULL;
}

int worker_run(Store *st, const WorkOpts *o, FILE *out, WorkStats *ws, XErr *e)
{
    int njobs = o->jobs > 1 ? o->jobs : 1, started = 0, rc = XE_OK;
    WorkJob *jobs;
    Pool pl = { .o = o, .out = out, .t0 = xfer_clock(), .ws = ws };
    memset(ws, 0, sizeof *ws);
    if (!(jobs = calloc((size_t)njobs, sizeof *jobs)))
        return xerr_set(e, XE_FAIL, "out of memory");
    if (nn_device_open(o->device, o->threads, &jobs[0].be, &jobs[0].device, e)) {
        xerr_prefix(e, "--device %s: ", o->device);
        free(jobs);
        return e->code;
    }
    if (njobs > 1 && strcmp(jobs[0].device, "cuda")) {
        free(jobs);
        return xerr_set(e, XE_USAGE,
                        "--jobs %d: training several runs at once needs the CUDA backend, and this worker has "
                        "the CPU (start more workers instead)",
                        njobs);
    }
    /* job 0 on the caller's connection and the process's shared context;
     * each further job its own connection, CUDA context (stream) and name
     * (the name owns the job's leases) */
    for (int i = 0; i < njobs; i++) {
        WorkJob *w = &jobs[i];
        w->pool = &pl;
        queue_worker_name(w->name, sizeof w->name, i);
        if (!i) {
            w->st = st;
            continue;
        }
        w->device = jobs[0].device;
        if ((rc = store_open(&w->own, st->path, 0, e))) {
            njobs = i;
            break;
        }
        w->st = &w->own;
        if ((rc = nn_cuda_backend_new(0, 0, &w->be, e))) {
            xerr_prefix(e, "job %d of %d: ", i + 1, njobs);
            njobs = i + 1;
            break;
        }
        w->own_be = 1;
    }
    pthread_mutex_init(&pl.mu, NULL);
    if (!rc) {
        for (started = 1; started < njobs; started++)
            if (pthread_create(&jobs[started].thread, NULL, job_main, &jobs[started])) {
                rc = xerr_set(e, XE_FAIL, "cannot start job %d of %d", started + 1, njobs);
                pthread_mutex_lock(&pl.mu);
                pl.rc = pl.rc ? pl.rc : rc;
                pthread_mutex_unlock(&pl.mu);
                break;
            }
        job_loop(&jobs[0]);
        for (int i = 1; i < started; i++)
            pthread_join(jobs[i].thread, NULL);
    }
    for (int i = 0; i < njobs; i++) {
        ws->book += jobs[i].book;
        if (i) {
            store_close(&jobs[i].own);
            if (jobs[i].own_be)
                nn_cuda_backend_free(jobs[i].be);
        }
    }
    pthread_mutex_destroy(&pl.mu);
    free(jobs);
    if (!rc && pl.rc) {
        *e = pl.err;
        rc = pl.rc;
    }
    ws->seconds = xfer_clock() - pl.t0;
    return rc;
}
