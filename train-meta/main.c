/* xfer-train-meta: trains cell architectures on stored tasks and records
 * learning curves and accuracies into the store, as a queue of runs that
 * killed and restarted workers finish without losing or repeating work.
 * To add a command: write cmd_NAME(argc, argv, e) and list it in commands[]. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/rng.h"
#include "db/store.h"
#include "meta/meta.h"
#include "meta/slurm.h"
#include "model/earlystop.h"
#include "nn/device.h"
#include "space/space.h"

static const char *const tool = "xfer-train-meta";

static const char usage[] =
    "usage: xfer-train-meta [--db PATH] COMMAND [OPTIONS]\n"
    "\n"
    "  plan --dataset NAME [--space nb201|darts --sample N [--seed S]] [--seeds K]\n"
    "       [--protocol P] [--set KEY=VALUE]...\n"
    "      add runs (arch x dataset x protocol x seed) to the queue: N archs\n"
    "      sampled uniformly, or the JSON lines on stdin ({\"space\":..,\"arch\":..});\n"
    "      what is already planned stays as it is\n"
    "  work [--device cpu|cuda|auto] [--threads T] [--jobs J] [--max-runs K]\n"
    "       [--max-hours H] [--lease SECONDS] [--max-attempts A]\n"
    "       [--early-stop ranker --delta D [--min-epochs E] [--space S]]\n"
    "      claim planned runs and train them; one JSON line per finished run;\n"
    "      --jobs J trains J runs at once on the GPU (a CUDA stream each);\n"
    "      with --early-stop, a run whose probability of ending above the best\n"
    "      finished run of its dataset and protocol (the space's newest ranker\n"
    "      model, 'xfer-predict fit') is below D after an epoch (from epoch E,\n"
    "      default 1) stops there and is recorded as terminated-early\n"
    "  run  plan + work in one call, on the planned runs only; with archs on\n"
    "       stdin, each input line comes back with the results added;\n"
    "       --early-stop as for work\n"
    "  proxies --dataset NAME [--space S --sample N [--seed S]] [--seeds K]\n"
    "       [--protocol P] [--set KEY=VALUE]... [--batch B] [--device D] [--threads T]\n"
    "      training-free scores at initialisation (synflow, naswot, jacob_cov,\n"
    "      grad_norm, snip, zen, params, flops) of the protocol's network, stored\n"
    "      per arch, dataset, protocol and seed (0 .. K-1); one JSON line per arch\n"
    "      with a \"proxies\" object; stored scores are read, not recomputed\n"
    "  probe --dataset NAME [--device D] [--threads T]\n"
    "      meta-features of the dataset for similarity-weighted zero-shot\n"
    "      transfer (xfer-predict): the validation accuracy of four fixed probe\n"
    "      cells (conv3, conv1, pool, skip) after 3 epochs of the cheap macro;\n"
    "      stored in the dataset's meta and exported with its runs; one JSON\n"
    "      line; stored probes are read, not retrained\n"
    "  status [--json]           planned, running, done, failed per dataset and\n"
    "                            protocol, throughput and time left\n"
    "  merge SHARD... [--into DB]  merge shard databases (idempotent)\n"
    "  export [--dataset NAME]   finished runs as JSON lines (with curves and\n"
    "                            recipes) for 'xfer-ingest runs' elsewhere\n"
    "  slurm --dataset NAME [--space S --sample N [--seed S]] --tasks T [--seeds K]\n"
    "       [--protocol P] [--set KEY=VALUE]... [--gpus-per-task G] [--threads T]\n"
    "       [--device D] [--partition P] [--time [D-]HH:MM:SS] [--shared DIR]\n"
    "       [--local DIR] [--submit]\n"
    "      a Slurm job array of T tasks that train the archs (arch i in task\n"
    "      i mod T) into shards on node-local disk, resumable when requeued, and\n"
    "      a merge job after it; writes DIR (shared storage; default\n"
    "      DB.slurm/NAME-TIME) and with --submit submits it (the job ids on stdout)\n"
    "\n"
    "  --protocol P  preset: cheap (C 8 N 1, 12 epochs), nb201 (NAS-Bench-201's\n"
    "                200-epoch recipe), tiny (tests); --set overrides a field:\n"
    "                width cells epochs batch lr lr_min warmup momentum wd nesterov\n"
    "                clip label_smoothing drop_path crop_pad flip cutout precision\n"
    "  --db PATH   the database (default $XFER_DB, else ./" XFER_DEFAULT_DB ")\n"
    "exit codes: 0 ok, 1 failure, 2 usage, 3 interrupted (the run checkpointed\n"
    "and given back; the next 'work' resumes it)\n";

static const char *db_path;

static int usage_error(XErr *e, const char *what)
{
    return xerr_set(e, XE_USAGE, "%s (see 'xfer-train-meta --help')", what);
}

/* ---- options shared by plan, work and run ---- */

typedef struct Opts {
    const char *dataset, *space, *protocol;
    char **sets;
    int nsets;
    long sample, seeds, seed, batch;
    int json;
    const char *early_stop;
    double delta;
    long min_epochs;
    int delta_set;
    long tasks, gpus;
    const char *partition, *time, *shared, *local;
    int submit, threads_set;
    WorkOpts w;
    char **shards;
    int nshards;
    const char *into;
} Opts;

enum {
    O_DATASET = 256, O_SPACE, O_SAMPLE, O_SEED, O_SEEDS, O_PROTOCOL, O_SET, O_DEVICE, O_THREADS,
    O_MAX_RUNS, O_MAX_HOURS, O_LEASE, O_MAX_ATTEMPTS, O_JSON, O_INTO, O_BATCH, O_EARLY_STOP, O_DELTA, O_MIN_EPOCHS,
    O_TASKS, O_GPUS, O_PARTITION, O_TIME, O_SHARED, O_LOCAL, O_SUBMIT, O_JOBS, O_HELP
};

static const struct option all_opts[] = {
    { "dataset", required_argument, 0, O_DATASET },   { "space", required_argument, 0, O_SPACE },
    { "sample", required_argument, 0, O_SAMPLE },     { "seed", required_argument, 0, O_SEED },
    { "seeds", required_argument, 0, O_SEEDS },       { "protocol", required_argument, 0, O_PROTOCOL },
    { "set", required_argument, 0, O_SET },           { "device", required_argument, 0, O_DEVICE },
    { "threads", required_argument, 0, O_THREADS },   { "max-runs", required_argument, 0, O_MAX_RUNS },
    { "max-hours", required_argument, 0, O_MAX_HOURS }, { "lease", required_argument, 0, O_LEASE },
    { "max-attempts", required_argument, 0, O_MAX_ATTEMPTS }, { "json", no_argument, 0, O_JSON },
    { "into", required_argument, 0, O_INTO },         { "batch", required_argument, 0, O_BATCH },
    { "early-stop", required_argument, 0, O_EARLY_STOP }, { "delta", required_argument, 0, O_DELTA },
    { "min-epochs", required_argument, 0, O_MIN_EPOCHS }, { "help", no_argument, 0, O_HELP },
    { "tasks", required_argument, 0, O_TASKS },       { "gpus-per-task", required_argument, 0, O_GPUS },
    { "partition", required_argument, 0, O_PARTITION }, { "time", required_argument, 0, O_TIME },
    { "shared", required_argument, 0, O_SHARED },     { "local", required_argument, 0, O_LOCAL },
    { "submit", no_argument, 0, O_SUBMIT },          { "jobs", required_argument, 0, O_JOBS },
    { 0, 0, 0, 0 },
};

/* Parses the options `allowed` lists (their O_* values) for command cmd;
 * returns -1 after --help. */
static int parse_opts(int argc, char **argv, const char *cmd, const int *allowed, Opts *o, XErr *e)
{
    int c, rc = XE_OK;
    long th = sysconf(_SC_NPROCESSORS_ONLN);
    memset(o, 0, sizeof *o);
    o->space = "nb201";
    o->protocol = "cheap";
    o->seeds = 1;
    o->batch = 64;
    o->w.device = "auto";
    o->w.threads = th < 1 ? 1 : th > 64 ? 64 : (int)th;
    o->w.lease = XFER_DEFAULT_LEASE;
    o->w.max_attempts = 3;
    o->w.progress = isatty(2);
    while (rc == XE_OK && (c = getopt_long(argc, argv, "", all_opts, NULL)) != -1) {
        int ok = c == O_HELP;
        long v;
        char msg[96];
        for (const int *a = allowed; *a && !ok; a++)
            ok = *a == c;
        if (!ok) {
            snprintf(msg, sizeof msg, "%s: bad option '%s'", cmd, argv[optind - 1]);
            return usage_error(e, msg);
        }
        switch (c) {
        case O_DATASET: o->dataset = optarg; break;
        case O_SPACE: o->space = optarg; break;
        case O_SAMPLE: rc = cli_long("--sample", optarg, 1, 1L << 30, &o->sample, e); break;
        case O_SEED: rc = cli_long("--seed", optarg, 0, 0x7fffffffL, &o->seed, e); break;
        case O_SEEDS: rc = cli_long("--seeds", optarg, 1, 1000, &o->seeds, e); break;
        case O_PROTOCOL: o->protocol = optarg; break;
        case O_SET: {
            char **s = realloc(o->sets, (size_t)(o->nsets + 1) * sizeof *s);
            if (!s)
                return xerr_set(e, XE_FAIL, "out of memory");
            o->sets = s;
            o->sets[o->nsets++] = optarg;
            break;
        }
        case O_DEVICE:
            if (strcmp(optarg, "cpu") && strcmp(optarg, "cuda") && strcmp(optarg, "auto"))
                rc = xerr_set(e, XE_USAGE, "--device: '%s' is not cpu, cuda or auto", optarg);
            o->w.device = optarg;
            break;
        case O_THREADS:
            rc = cli_long("--threads", optarg, 1, 64, &v, e);
            o->w.threads = (int)v;
            o->threads_set = 1;
            break;
        case O_JOBS:
            rc = cli_long("--jobs", optarg, 1, 64, &v, e);
            o->w.jobs = (int)v;
            break;
        case O_MAX_RUNS: rc = cli_long("--max-runs", optarg, 1, 1L << 40, &o->w.max_runs, e); break;
        case O_MAX_HOURS: rc = cli_double("--max-hours", optarg, 1e-6, 1e6, &o->w.max_hours, e); break;
        case O_LEASE: rc = cli_double("--lease", optarg, 0.2, 86400, &o->w.lease, e); break;
        case O_MAX_ATTEMPTS:
            rc = cli_long("--max-attempts", optarg, 1, 1000, &v, e);
            o->w.max_attempts = (int)v;
            break;
        case O_JSON: o->json = 1; break;
        case O_INTO: o->into = optarg; break;
        case O_BATCH: rc = cli_long("--batch", optarg, 2, 1024, &o->batch, e); break;
        case O_EARLY_STOP:
            if (strcmp(optarg, "ranker"))
                rc = xerr_set(e, XE_USAGE, "--early-stop: unknown method '%s' (valid: ranker)", optarg);
            o->early_stop = optarg;
            break;
        case O_DELTA: rc = cli_double("--delta", optarg, 0, 1, &o->delta, e), o->delta_set = 1; break;
        case O_MIN_EPOCHS: rc = cli_long("--min-epochs", optarg, 1, 100000, &o->min_epochs, e); break;
        case O_TASKS: rc = cli_long("--tasks", optarg, 1, 100000, &o->tasks, e); break;
        case O_GPUS: rc = cli_long("--gpus-per-task", optarg, 0, 64, &o->gpus, e); break;
        case O_PARTITION: o->partition = optarg; break;
        case O_TIME: o->time = optarg; break;
        case O_SHARED: o->shared = optarg; break;
        case O_LOCAL: o->local = optarg; break;
        case O_SUBMIT: o->submit = 1; break;
        case O_HELP: fputs(usage, stdout); return -1;
        default: snprintf(msg, sizeof msg, "%s: bad option", cmd); return usage_error(e, msg);
        }
    }
    if (!rc && o->early_stop && !o->delta_set)
        rc = usage_error(e, "--early-stop ranker needs --delta D");
    if (!rc && !o->early_stop && (o->delta_set || o->min_epochs))
        rc = usage_error(e, o->delta_set ? "--delta needs --early-stop ranker" : "--min-epochs needs --early-stop ranker");
    return rc;
}

/* ---- plan ---- */

typedef struct Planned {
    int64_t *ids;
    char **lines; /* the input records (stdin form) */
    int n, cap;
    long bad;
} Planned;

static void planned_free(Planned *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->lines ? p->lines[i] : NULL);
    free(p->ids);
    free(p->lines);
    memset(p, 0, sizeof *p);
}

static int planned_push(Planned *p, int64_t id, const char *line, XErr *e)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        int64_t *ids = realloc(p->ids, (size_t)cap * sizeof *ids);
        char **lines = ids ? realloc(p->lines, (size_t)cap * sizeof *lines) : NULL;
        if (ids)
            p->ids = ids;
        if (!ids || !lines)
            return xerr_set(e, XE_FAIL, "out of memory");
        p->lines = lines;
        p->cap = cap;
    }
    p->lines[p->n] = line ? strdup(line) : NULL;
    p->ids[p->n++] = id;
    return XE_OK;
}

static int protocol_of(Store *st, const Opts *o, int64_t *id, XErr *e)
{
    Protocol p;
    char *json;
    int rc;
    if (protocol_preset(o->protocol, &p, e))
        return e->code;
    for (int i = 0; i < o->nsets; i++)
        if (protocol_set(&p, o->sets[i], e))
            return e->code;
    if (!(json = protocol_json(&p)))
        return xerr_set(e, XE_FAIL, "out of memory");
    rc = store_protocol_id(st, p.name, json, id, e);
    free(json);
    return rc;
}

/* ---- the archs a command works on: sampled, or JSON lines on stdin ---- */

/* Called with each arch (not yet validated) and its input line (NULL when
 * sampled). A non-zero return stops the loop, except XE_SKIP: the line was
 * bad (fn set le with why) and is reported with its number. */
typedef int (*ArchFn)(void *ctx, const Space *sp, const char *arch, const char *line, XErr *le);
#define XE_SKIP 100

static int each_arch(const Opts *o, ArchFn fn, void *ctx, long *bad, XErr *e)
{
    const Space *sp = space_find(o->space);
    int rc = XE_OK;
    if (!sp)
        return xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o->space, space_list());
    if (o->sample) {
        /* distinct archs (by index, in an open-addressing set); a sample
         * larger than the space takes all of it */
        uint64_t want = (uint64_t)o->sample < sp->count ? (uint64_t)o->sample : sp->count, size = 16, got = 0;
        uint64_t *seen;
        Rng r;
        while (size < 2 * want)
            size *= 2;
        if (!(seen = malloc(size * sizeof *seen)))
            return xerr_set(e, XE_FAIL, "out of memory");
        memset(seen, 0xff, size * sizeof *seen);
        rng_seed(&r, (uint64_t)o->seed);
        while (!rc && got < want) {
            SpaceArch a;
            char canon[512];
            uint64_t idx, h;
            sp->sample(&r, &a);
            idx = sp->to_index(&a);
            for (h = (idx * 0x9e3779b97f4a7c15ULL) & (size - 1); seen[h] != UINT64_MAX && seen[h] != idx;)
                h = (h + 1) & (size - 1);
            if (seen[h] == idx)
                continue;
            seen[h] = idx;
            got++;
            sp->format(&a, canon, sizeof canon);
            if ((rc = fn(ctx, sp, canon, NULL, e)) == XE_SKIP) {
                fprintf(stderr, "%s: %s\n", tool, e->msg);
                xerr_clear(e);
                (*bad)++;
                rc = XE_OK;
            }
        }
        free(seen);
        return rc;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    ssize_t len;
    while (!rc && (len = getline(&line, &cap, stdin)) >= 0) {
        json_error_t je;
        json_t *j;
        const char *space = o->space;
        const Space *lsp = NULL;
        XErr le = { 0 };
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len)
            continue;
        j = json_loads(line, 0, &je);
        if (!j || !json_is_object(j))
            xerr_set(&le, XE_SKIP, "not a JSON object");
        else if (!json_is_string(json_object_get(j, "arch")))
            xerr_set(&le, XE_SKIP, "no \"arch\" string");
        else if (json_is_string(json_object_get(j, "space")) &&
                 !(lsp = space_find(space = json_string_value(json_object_get(j, "space")))))
            xerr_set(&le, XE_SKIP, "unknown space '%s' (valid: %s)", space, space_list());
        else if ((rc = fn(ctx, lsp ? lsp : sp, json_string_value(json_object_get(j, "arch")), line, &le)) == XE_SKIP)
            rc = XE_OK;
        else if (rc)
            *e = le;
        if (le.code == XE_SKIP) {
            fprintf(stderr, "%s: stdin:%ld: %s\n", tool, lineno, le.msg);
            (*bad)++;
        }
        json_decref(j);
    }
    free(line);
    if (!rc && ferror(stdin))
        rc = xerr_set(e, XE_FAIL, "stdin: read error");
    return rc;
}

/* Validates an arch into its canonical string and the store's arch id; a
 * bad arch string is XE_SKIP. */
static int arch_row(Store *st, const Space *sp, const char *arch, char canon[512], int64_t *arch_id, XErr *le)
{
    char hash[65];
    if (space_canonical_hash(sp, arch, canon, 512, hash, le)) {
        le->code = XE_SKIP;
        return XE_SKIP;
    }
    return store_arch_id(st, sp->name, canon, hash, arch_id, le);
}

/* ---- plan ---- */

typedef struct PlanCtx {
    Store *st;
    const Opts *o;
    int64_t dataset_id, protocol_id;
    Planned *pl;
    PlanStats ps;
} PlanCtx;

static int plan_arch(void *ctx, const Space *sp, const char *arch, const char *line, XErr *le)
{
    PlanCtx *c = ctx;
    char canon[512];
    int64_t arch_id, run_id;
    int rc = arch_row(c->st, sp, arch, canon, &arch_id, le);
    for (long s = 0; !rc && s < c->o->seeds; s++)
        if (queue_plan(c->st, arch_id, c->dataset_id, c->protocol_id, s, &run_id, &c->ps, le) ||
            planned_push(c->pl, run_id, line, le))
            rc = le->code;
    return rc;
}

/* The dataset of --dataset (required), by name. */
static int dataset_of(Store *st, const Opts *o, int64_t *id, XErr *e)
{
    if (!o->dataset)
        return usage_error(e, "--dataset NAME is required");
    if (store_dataset_find(st, o->dataset, id, e))
        return e->code;
    if (!*id)
        return xerr_set(e, XE_FAIL, "unknown dataset '%s' in '%s' ('xfer-ingest list' shows the stored ones)",
                        o->dataset, st->path);
    return XE_OK;
}

static int do_plan(Store *st, const Opts *o, Planned *pl, XErr *e)
{
    PlanCtx c = { st, o, 0, 0, pl, { 0, 0 } };
    int rc;
    if (!space_find(o->space))
        return xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o->space, space_list());
    if (dataset_of(st, o, &c.dataset_id, e) || store_begin(st, e))
        return e->code;
    if ((rc = protocol_of(st, o, &c.protocol_id, e)) || (rc = each_arch(o, plan_arch, &c, &pl->bad, e))) {
        store_rollback(st);
        return rc;
    }
    if ((rc = store_commit(st, e)))
        return rc;
    fprintf(stderr, "%s: planned %ld new runs on '%s' (%ld already in the queue)%s\n", tool, c.ps.added, o->dataset,
            c.ps.existing, pl->bad ? "; some input lines were bad" : "");
    return XE_OK;
}

static const int plan_allowed[] = { O_DATASET, O_SPACE, O_SAMPLE, O_SEED, O_SEEDS, O_PROTOCOL, O_SET, 0 };

static int cmd_plan(int argc, char **argv, XErr *e)
{
    Opts o;
    Store st;
    Planned pl = { 0 };
    int rc = parse_opts(argc, argv, "plan", plan_allowed, &o, e);
    if (rc)
        goto out;
    if (optind < argc) {
        rc = usage_error(e, "plan: unexpected argument");
        goto out;
    }
    if ((rc = store_open(&st, db_path, 0, e)))
        goto out;
    rc = do_plan(&st, &o, &pl, e);
    store_close(&st);
    if (!rc && pl.bad)
        rc = xerr_set(e, XE_FAIL, "%ld bad input lines (reported above; the others were planned)", pl.bad);
out:
    planned_free(&pl);
    free(o.sets);
    return rc < 0 ? XE_OK : rc;
}

/* ---- work and run ---- */

static const int work_allowed[] = { O_DEVICE, O_THREADS, O_JOBS, O_MAX_RUNS, O_MAX_HOURS, O_LEASE, O_MAX_ATTEMPTS,
                                    O_EARLY_STOP, O_DELTA, O_MIN_EPOCHS, O_SPACE, 0 };

/* The early-stop hook of --early-stop ranker: the space's newest ranker,
 * loaded before anything is trained. */
static int early_stop_of(Store *st, Opts *o, EarlyStop *es, XErr *e)
{
    if (!o->early_stop)
        return XE_OK;
    if (early_stop_open(es, st, o->space, 0, o->delta, (int)o->min_epochs, e))
        return e->code;
    o->w.stop = early_stop_work;
    o->w.stop_ctx = es;
    fprintf(stderr, "%s: early stop: ranker model %lld, runs below p %g of beating their best from epoch %d\n",
            tool, (long long)es->sr.id, es->delta, es->min_epochs);
    return XE_OK;
}

static int work(Store *st, Opts *o, FILE *out, XErr *e)
{
    WorkStats ws;
    int rc;
    xfer_catch_signals();
    rc = worker_run(st, &o->w, out, &ws, e);
    if (rc == XE_OK || rc == XE_INTR || ws.done + ws.failed + ws.stopped) {
        char stopped[48] = "";
        if (o->w.stop)
            snprintf(stopped, sizeof stopped, ", %ld stopped early", ws.stopped);
        fprintf(stderr, "%s: %ld runs done, %ld failed%s%s\n", tool, ws.done, ws.failed, stopped,
                rc == XE_INTR ? "; interrupted (the current run was given back)" : "");
    }
    if (ws.done + ws.failed + ws.stopped)
        fprintf(stderr, "%s: %.1f s, of which %.2f%% bookkeeping (queue, curve points, checkpoints)\n", tool,
                ws.seconds, 100.0 * ws.book / (ws.seconds > 0 ? ws.seconds : 1));
    return rc;
}

static int cmd_work(int argc, char **argv, XErr *e)
{
    Opts o;
    Store st;
    EarlyStop es = { 0 };
    int rc = parse_opts(argc, argv, "work", work_allowed, &o, e);
    if (!rc && optind < argc)
        rc = usage_error(e, "work: unexpected argument");
    if (!rc && !space_find(o.space))
        rc = xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o.space, space_list());
    if (!rc && !(rc = store_open(&st, db_path, 0, e))) {
        if (!(rc = early_stop_of(&st, &o, &es, e)))
            rc = work(&st, &o, stdout, e);
        early_stop_close(&es);
        store_close(&st);
    }
    free(o.sets);
    return rc < 0 ? XE_OK : rc;
}

static const int run_allowed[] = { O_DATASET,   O_SPACE, O_SAMPLE,       O_SEED,       O_SEEDS,
                                   O_PROTOCOL,  O_SET,   O_DEVICE,       O_THREADS,    O_MAX_RUNS, O_JOBS,
                                   O_MAX_HOURS, O_LEASE, O_MAX_ATTEMPTS, O_EARLY_STOP, O_DELTA,
                                   O_MIN_EPOCHS, 0 };

static int cmd_run(int argc, char **argv, XErr *e)
{
    Opts o;
    Store st;
    Planned pl = { 0 };
    EarlyStop es = { 0 };
    int rc = parse_opts(argc, argv, "run", run_allowed, &o, e);
    if (rc)
        goto out;
    if (optind < argc) {
        rc = usage_error(e, "run: unexpected argument");
        goto out;
    }
    if ((rc = store_open(&st, db_path, 0, e)))
        goto out;
    /* the ranker first: without one nothing is planned or trained */
    if (!space_find(o.space))
        rc = xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o.space, space_list());
    if (!rc && !(rc = early_stop_of(&st, &o, &es, e)) && !(rc = do_plan(&st, &o, &pl, e))) {
        /* train what is not finished, then print every planned run (the
         * finished ones from the store, never trained twice) */
        o.w.only = pl.ids;
        o.w.nonly = pl.n;
        rc = work(&st, &o, NULL, e);
        for (int i = 0; !rc && i < pl.n; i++)
            rc = queue_print_run(&st, pl.ids[i], pl.lines ? pl.lines[i] : NULL, stdout, e);
    }
    early_stop_close(&es);
    store_close(&st);
    if (!rc && pl.bad)
        rc = xerr_set(e, XE_FAIL, "%ld bad input lines (reported above; the others were run)", pl.bad);
out:
    planned_free(&pl);
    free(o.sets);
    return rc < 0 ? XE_OK : rc;
}

/* ---- status ---- */

static int cmd_status(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_JSON, 0 };
    Opts o;
    Store st;
    sqlite3_stmt *q = NULL;
    long total[5] = { 0 }, last_hour = 0, workers = 0;
    double mean_s = 0;
    int rc = parse_opts(argc, argv, "status", allowed, &o, e), step;
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if ((rc = store_open(&st, db_path, 0, e)))
        return rc;
    rc = store_prepare(&st, &q,
                       "SELECT d.name, p.name, substr(p.hash, 1, 12),"
                       " sum(r.status = 'planned'), sum(r.status = 'running'), sum(r.status = 'done'),"
                       " sum(r.status = 'failed'), sum(r.status = 'terminated-early')"
                       " FROM runs r JOIN datasets d ON d.id = r.dataset_id JOIN protocols p ON p.id = r.protocol_id"
                       " WHERE r.source = 'trained' GROUP BY r.dataset_id, r.protocol_id ORDER BY d.name, p.name",
                       e);
    if (!rc && !o.json)
        printf("%-20s %-8s %-12s %8s %8s %8s %8s %8s\n", "dataset", "protocol", "hash", "planned", "running", "done",
               "failed", "stopped");
    while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
        long n[5];
        for (int i = 0; i < 5; i++)
            total[i] += n[i] = sqlite3_column_int64(q, 3 + i);
        if (o.json)
            printf("{\"dataset\":\"%s\",\"protocol\":\"%s\",\"protocol_hash\":\"%s\",\"planned\":%ld,\"running\":%ld,"
                   "\"done\":%ld,\"failed\":%ld,\"terminated_early\":%ld}\n",
                   sqlite3_column_text(q, 0), sqlite3_column_text(q, 1), sqlite3_column_text(q, 2), n[0], n[1], n[2],
                   n[3], n[4]);
        else
            printf("%-20s %-8s %-12s %8ld %8ld %8ld %8ld %8ld\n", sqlite3_column_text(q, 0), sqlite3_column_text(q, 1),
                   sqlite3_column_text(q, 2), n[0], n[1], n[2], n[3], n[4]);
    }
    if (q)
        sqlite3_finalize(q);
    if (!rc && step != SQLITE_DONE)
        rc = store_fail(&st, e, "reading the queue");
    if (!rc && !(rc = store_prepare(&st, &q,
                                    "SELECT sum(finished_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 hour')),"
                                    " avg(seconds), (SELECT count(DISTINCT worker) FROM runs"
                                    " WHERE status = 'running'"
                                    " AND lease_until >= (julianday('now') - 2440587.5) * 86400.0)"
                                    " FROM runs WHERE status = 'done' AND source = 'trained'",
                                    e))) {
        if (sqlite3_step(q) == SQLITE_ROW) {
            last_hour = sqlite3_column_int64(q, 0);
            mean_s = sqlite3_column_double(q, 1);
            workers = sqlite3_column_int64(q, 2);
        }
        sqlite3_finalize(q);
    }
    if (!rc) {
        long left = total[0] + total[1];
        double eta = left * mean_s / (double)(workers ? workers : 1);
        if (o.json)
            printf("{\"total\":true,\"planned\":%ld,\"running\":%ld,\"done\":%ld,\"failed\":%ld,"
                   "\"terminated_early\":%ld,\"done_last_hour\":%ld,\"mean_run_seconds\":%.1f,\"workers\":%ld,"
                   "\"seconds_left\":%.0f}\n",
                   total[0], total[1], total[2], total[3], total[4], last_hour, mean_s, workers, eta);
        else
            printf("total: %ld planned, %ld running, %ld done, %ld failed, %ld stopped early; %ld done in the last"
                   " hour, %.1f s a run, %ld active workers, about %.1f h left\n",
                   total[0], total[1], total[2], total[3], total[4], last_hour, mean_s, workers, eta / 3600);
    }
    store_close(&st);
    return rc;
}

/* ---- merge ---- */

static int cmd_merge(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_INTO, 0 };
    Opts o;
    Store st;
    int rc = parse_opts(argc, argv, "merge", allowed, &o, e), failed = 0;
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if (optind >= argc)
        return usage_error(e, "merge: give a SHARD");
    if ((rc = store_open(&st, o.into ? o.into : db_path, 1, e)))
        return rc;
    for (int i = optind; i < argc; i++) {
        MergeStats ms;
        XErr me = { 0 };
        if (!strcmp(argv[i], st.path) ||
            merge_shard(&st, argv[i], &ms, &me)) {
            if (!me.code)
                xerr_set(&me, XE_FAIL, "shard '%s': the target database itself; skipped", argv[i]);
            fprintf(stderr, "%s: %s\n", tool, me.msg);
            failed++;
            continue;
        }
        fprintf(stderr, "%s: merged '%s': %ld runs added, %ld updated, %ld already there\n", tool, argv[i],
                ms.runs_added, ms.runs_updated, ms.runs_same);
    }
    store_close(&st);
    if (failed)
        return xerr_set(e, XE_FAIL, "%d of %d shards not merged (reported above)", failed, argc - optind);
    return XE_OK;
}

/* ---- proxies ---- */

typedef struct ProxyCtx {
    Store *st;
    const Opts *o;
    int64_t dataset_id, protocol_id;
    Protocol p;
    TaskFile t;
    double mean[4], std[4];
    long done, stored;
    const NnBackend *be;
} ProxyCtx;

/* The stored scores of (arch, seed), all PROXY_COUNT of them, or 0. */
static int proxies_stored(ProxyCtx *c, int64_t arch_id, long seed, double v[PROXY_COUNT], XErr *e)
{
    sqlite3_stmt *q = NULL;
    int n = 0, step;
    if (store_prepare(c->st, &q,
                      "SELECT name, value FROM proxies WHERE arch_id = ?1 AND dataset_id = ?2 AND protocol_id = ?3"
                      " AND seed = ?4",
                      e))
        return -1;
    sqlite3_bind_int64(q, 1, arch_id);
    sqlite3_bind_int64(q, 2, c->dataset_id);
    sqlite3_bind_int64(q, 3, c->protocol_id);
    sqlite3_bind_int64(q, 4, seed);
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        for (int i = 0; i < PROXY_COUNT; i++)
            if (!strcmp((const char *)sqlite3_column_text(q, 0), proxy_names[i])) {
                v[i] = sqlite3_column_type(q, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 1);
                n++;
            }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE)
        return store_fail(c->st, e, "reading proxies"), -1;
    return n == PROXY_COUNT;
}

static int proxies_store(ProxyCtx *c, int64_t arch_id, long seed, const double v[PROXY_COUNT], XErr *e)
{
    sqlite3_stmt *q = NULL;
    int rc;
    if (store_begin(c->st, e))
        return e->code;
    rc = store_prepare(c->st, &q,
                       "INSERT OR REPLACE INTO proxies (arch_id, dataset_id, protocol_id, name, seed, value)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                       e);
    for (int i = 0; !rc && i < PROXY_COUNT; i++) {
        sqlite3_bind_int64(q, 1, arch_id);
        sqlite3_bind_int64(q, 2, c->dataset_id);
        sqlite3_bind_int64(q, 3, c->protocol_id);
        sqlite3_bind_text(q, 4, proxy_names[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 5, seed);
        if (isfinite(v[i]))
            sqlite3_bind_double(q, 6, v[i]);
        else
            sqlite3_bind_null(q, 6);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = store_fail(c->st, e, "writing proxies");
        sqlite3_reset(q);
    }
    if (q)
        sqlite3_finalize(q);
    if (rc) {
        store_rollback(c->st);
        return rc;
    }
    return store_commit(c->st, e);
}

static int proxy_arch(void *ctx, const Space *sp, const char *arch, const char *line, XErr *le)
{
    ProxyCtx *c = ctx;
    char canon[512];
    int64_t arch_id;
    int rc;
    if (xfer_interrupted)
        return xerr_set(le, XE_INTR, "interrupted");
    if ((rc = store_begin(c->st, le)))
        return rc;
    if ((rc = arch_row(c->st, sp, arch, canon, &arch_id, le))) {
        store_rollback(c->st);
        return rc;
    }
    if ((rc = store_commit(c->st, le)))
        return rc;
    for (long s = 0; s < c->o->seeds; s++) {
        double v[PROXY_COUNT];
        json_t *j = line ? json_loads(line, 0, NULL) : json_object(), *pj = json_object();
        char *text;
        int have = proxies_stored(c, arch_id, s, v, le);
        if (have < 0) {
            json_decref(j), json_decref(pj);
            return le->code;
        }
        if (!have) {
            ProxyTask pt = { &c->t, c->mean, c->std, &c->p, (int)c->o->batch, (uint64_t)s, c->be };
            XErr pe = { 0 };
            if (proxies_compute(&pt, sp->name, canon, v, &pe)) {
                json_decref(j), json_decref(pj);
                *le = pe;
                if (!strstr(pe.msg, "out of memory"))
                    le->code = XE_SKIP; /* this arch cannot be scored here; the others may */
                return le->code;
            }
            if ((rc = proxies_store(c, arch_id, s, v, le))) {
                json_decref(j), json_decref(pj);
                return rc;
            }
            c->stored++;
        }
        for (int i = 0; i < PROXY_COUNT; i++)
            json_object_set_new(pj, proxy_names[i], isfinite(v[i]) ? json_real(v[i]) : json_null());
        json_object_set_new(j, "space", json_string(sp->name));
        json_object_set_new(j, "arch", json_string(canon));
        json_object_set_new(j, "dataset", json_string(c->o->dataset));
        json_object_set_new(j, "protocol", json_string(c->p.name));
        json_object_set_new(j, "proxy_seed", json_integer(s));
        json_object_set_new(j, "proxies", pj);
        text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(j);
        if (!text)
            return xerr_set(le, XE_FAIL, "out of memory");
        puts(text);
        free(text);
        c->done++;
        if (c->done % 50 == 0)
            fprintf(stderr, "%s: proxies of %ld archs (%ld computed)\n", tool, c->done, c->stored);
    }
    fflush(stdout);
    return XE_OK;
}

static int cmd_proxies(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_DATASET, O_SPACE, O_SAMPLE,  O_SEED,  O_SEEDS,  O_PROTOCOL,
                                   O_SET,     O_THREADS, O_DEVICE, O_BATCH, 0 };
    Opts o;
    Store st;
    ProxyCtx c;
    char *task = NULL;
    long bad = 0;
    int rc = parse_opts(argc, argv, "proxies", allowed, &o, e);
    memset(&c, 0, sizeof c);
    if (rc)
        goto out;
    if (optind < argc) {
        rc = usage_error(e, "proxies: unexpected argument");
        goto out;
    }
    if (!space_find(o.space)) {
        rc = xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o.space, space_list());
        goto out;
    }
    if ((rc = store_open(&st, db_path, 0, e)))
        goto out;
    c.st = &st;
    c.o = &o;
    if (!(rc = dataset_of(&st, &o, &c.dataset_id, e)) && !(rc = protocol_preset(o.protocol, &c.p, e))) {
        for (int i = 0; !rc && i < o.nsets; i++)
            rc = protocol_set(&c.p, o.sets[i], e);
        if (!rc && !(rc = store_begin(&st, e))) {
            if ((rc = protocol_of(&st, &o, &c.protocol_id, e)))
                store_rollback(&st);
            else
                rc = store_commit(&st, e);
        }
    }
    if (!rc && !(rc = meta_dataset_task(&st, c.dataset_id, &task, c.mean, c.std, e)))
        rc = taskfile_open(&c.t, task, e);
    if (!rc) {
        const char *used;
        if ((rc = nn_device_open(o.w.device, o.w.threads, &c.be, &used, e)))
            xerr_prefix(e, "--device %s: ", o.w.device);
    }
    if (!rc && c.t.n[SPLIT_TRAIN] < (uint64_t)o.batch)
        rc = xerr_set(e, XE_FAIL, "dataset '%s' has %llu training images, fewer than --batch %ld", o.dataset,
                      (unsigned long long)c.t.n[SPLIT_TRAIN], o.batch);
    if (!rc) {
        xfer_catch_signals();
        rc = each_arch(&o, proxy_arch, &c, &bad, e);
        if (!rc || rc == XE_INTR)
            fprintf(stderr, "%s: proxies of %ld archs on '%s' (%ld computed, the others were stored)\n", tool,
                        c.done, o.dataset, c.stored);
    }
    if (c.t.map)
        taskfile_close(&c.t);
    store_close(&st);
    if (!rc && bad)
        rc = xerr_set(e, XE_FAIL, "%ld bad input lines (reported above; the others were scored)", bad);
out:
    free(task);
    free(o.sets);
    return rc < 0 ? XE_OK : rc;
}

/* ---- probes ---- */

static int cmd_probe(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_DATASET, O_THREADS, O_DEVICE, 0 };
    Opts o;
    Store st;
    TaskFile t = { 0 };
    const NnBackend *be = NULL;
    const char *used = "";
    char *task = NULL, hash[13], *text;
    double acc[PROBE_COUNT], mean[4], std[4], t0 = xfer_clock();
    int64_t did = 0;
    int have = 0, rc = parse_opts(argc, argv, "probe", allowed, &o, e);
    json_t *j;
    if (rc)
        goto out;
    if (optind < argc) {
        rc = usage_error(e, "probe: unexpected argument");
        goto out;
    }
    if ((rc = probe_recipe(hash, e)) || (rc = store_open(&st, db_path, 0, e)))
        goto out;
    if (!(rc = dataset_of(&st, &o, &did, e)) && (have = probe_read(&st, did, acc, e)) < 0)
        rc = e->code;
    if (!rc && !have) {
        XErr te = { 0 };
        if ((rc = meta_dataset_task(&st, did, &task, mean, std, &te)) && strstr(te.msg, "no stored task"))
            rc = xerr_set(e, XE_FAIL,
                          "dataset '%s' has no stored task (imported runs only): probes train on its images"
                          " ('xfer-ingest add'); an export of its runs carries the probes it had",
                          o.dataset);
        else if (rc)
            *e = te;
        else if (!(rc = taskfile_open(&t, task, e)) && (rc = nn_device_open(o.w.device, o.w.threads, &be, &used, e)))
            xerr_prefix(e, "--device %s: ", o.w.device);
        xfer_catch_signals();
        for (int k = 0; !rc && k < PROBE_COUNT; k++) {
            if ((rc = probe_train(&t, mean, std, be, k, &acc[k], e)))
                xerr_prefix(e, "dataset '%s': ", o.dataset);
            else
                fprintf(stderr, "%s: '%s': probe %s: valid_acc %.4f\n", tool, o.dataset, probe_names[k], acc[k]);
        }
        if (!rc)
            rc = probe_store(&st, did, acc, e);
    }
    if (!rc) {
        j = json_pack("{s:s,s:{s:s},s:b,s:f}", "dataset", o.dataset, "probes", "recipe", hash, "stored", have,
                      "seconds", xfer_clock() - t0);
        for (int k = 0; j && k < PROBE_COUNT; k++)
            json_object_set_new(json_object_get(j, "probes"), probe_names[k], json_real(acc[k]));
        text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
        json_decref(j);
        if (!text)
            rc = xerr_set(e, XE_FAIL, "out of memory");
        else
            puts(text);
        free(text);
    }
    if (t.map)
        taskfile_close(&t);
    store_close(&st);
out:
    free(task);
    free(o.sets);
    return rc < 0 ? XE_OK : rc;
}

/* ---- export ---- */

static int cmd_export(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_DATASET, 0 };
    Opts o;
    Store st;
    sqlite3_stmt *q = NULL;
    int rc = parse_opts(argc, argv, "export", allowed, &o, e), step;
    long n = 0;
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if (optind < argc)
        return usage_error(e, "export: unexpected argument");
    if ((rc = store_open(&st, db_path, 0, e)))
        return rc;
    if (o.dataset) {
        int64_t id;
        rc = dataset_of(&st, &o, &id, e);
    }
    if (!rc)
        rc = store_prepare(&st, &q,
                           "SELECT r.id FROM runs r JOIN datasets d ON d.id = r.dataset_id"
                           " WHERE r.status IN ('done', 'terminated-early') AND (?1 IS NULL OR d.name = ?1)"
                           " ORDER BY d.name, r.id",
                           e);
    if (!rc) {
        sqlite3_bind_text(q, 1, o.dataset, -1, SQLITE_STATIC);
        while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
            rc = queue_print_run(&st, sqlite3_column_int64(q, 0), NULL, stdout, e);
            n++;
        }
        if (!rc && step != SQLITE_DONE)
            rc = store_fail(&st, e, "reading runs");
        sqlite3_finalize(q);
    }
    if (!rc)
        fprintf(stderr, "%s: exported %ld finished runs%s%s\n", tool, n, o.dataset ? " of " : "",
                o.dataset ? o.dataset : "");
    store_close(&st);
    return rc;
}

/* ---- slurm ---- */

/* The archs of a collection, distinct, as {"space":..,"arch":..} lines. */
typedef struct ArchList {
    char **lines;
    long n, cap;
    json_t *seen; /* the lines as keys */
} ArchList;

static int slurm_arch(void *ctx, const Space *sp, const char *arch, const char *line, XErr *le)
{
    ArchList *l = ctx;
    char canon[512], hash[65], *text;
    json_t *j;
    if (space_canonical_hash(sp, arch, canon, sizeof canon, hash, le)) {
        le->code = XE_SKIP;
        return XE_SKIP;
    }
    j = json_pack("{s:s, s:s}", "space", sp->name, "arch", canon);
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return xerr_set(le, XE_FAIL, "out of memory");
    if (json_object_get(l->seen, text)) {
        free(text);
        return XE_OK;
    }
    if (l->n == l->cap) {
        long cap = l->cap ? 2 * l->cap : 256;
        char **lines = realloc(l->lines, (size_t)cap * sizeof *lines);
        if (!lines) {
            free(text);
            return xerr_set(le, XE_FAIL, "out of memory");
        }
        l->lines = lines;
        l->cap = cap;
    }
    l->lines[l->n++] = text;
    json_object_set_new(l->seen, text, json_true());
    return XE_OK;
}

static int cmd_slurm(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_DATASET, O_SPACE, O_SAMPLE,    O_SEED, O_SEEDS,  O_PROTOCOL, O_SET,    O_DEVICE,
                                   O_THREADS, O_TASKS, O_GPUS, O_PARTITION, O_TIME, O_SHARED, O_LOCAL,    O_SUBMIT, 0 };
    Opts o;
    Store st = { 0 };
    ArchList al = { NULL, 0, 0, json_object() };
    SlurmSpec s = { 0 };
    char *db = NULL, *exe = NULL, *dir = NULL, *local = NULL;
    long bad = 0, array_job = 0, merge_job = 0, dropped = 0;
    int rc = parse_opts(argc, argv, "slurm", allowed, &o, e);
    if (rc)
        goto out;
    if (optind < argc)
        rc = usage_error(e, "slurm: unexpected argument");
    else if (!o.dataset)
        rc = usage_error(e, "--dataset NAME is required");
    else if (!o.tasks)
        rc = usage_error(e, "slurm: --tasks T is required");
    else if (!space_find(o.space))
        rc = xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o.space, space_list());
    if (rc || (rc = store_open(&st, db_path, 0, e)))
        goto out;
    if (!(db = realpath(st.path, NULL)) || !(exe = realpath("/proc/self/exe", NULL))) {
        rc = xerr_set(e, XE_FAIL, "'%s': %s", !db ? st.path : "/proc/self/exe", strerror(errno));
        goto out;
    }
    dir = o.shared ? slurm_absolute(o.shared) : slurm_default_dir(db, o.dataset);
    local = o.local ? slurm_absolute(o.local) : NULL;
    if (!dir || (o.local && !local)) {
        rc = xerr_set(e, XE_FAIL, "'%s': %s", !dir ? (o.shared ? o.shared : db) : o.local, strerror(errno));
        goto out;
    }
    if (!al.seen) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    s = (SlurmSpec){ exe, db, o.dataset, o.protocol, o.sets, o.nsets, o.seeds, (int)o.tasks, (int)o.gpus,
                     o.threads_set ? o.w.threads : 0,
                     strcmp(o.w.device, "auto") ? o.w.device : o.gpus ? "cuda" : "cpu",
                     o.partition, o.time, dir, local };
    if ((rc = slurm_check(&st, &s, e)) || (o.submit && (rc = slurm_check_submit(&s, e))))
        goto out;
    rc = each_arch(&o, slurm_arch, &al, &bad, e);
    if (!rc && bad)
        rc = xerr_set(e, XE_FAIL, "%ld bad input lines (reported above); nothing written", bad);
    if (!rc && al.n < o.tasks)
        rc = xerr_set(e, XE_USAGE, "--tasks %ld for %ld archs: every task needs an arch", o.tasks, al.n);
    if (rc || (rc = slurm_drop_finished(&st, &s, al.lines, &al.n, &dropped, e)))
        goto out;
    if (dropped)
        fprintf(stderr, "%s: slurm: %ld archs left out: their runs are finished in '%s'\n", tool, dropped, db);
    if (!al.n) {
        fprintf(stderr, "%s: slurm: nothing to collect; nothing written\n", tool);
        goto out;
    }
    if (al.n < s.tasks) {
        fprintf(stderr, "%s: slurm: %ld tasks for the %ld archs left\n", tool, al.n, al.n);
        s.tasks = (int)al.n;
    }
    if ((rc = slurm_write(&st, &s, al.lines, al.n, e)))
        goto out;
    if (o.submit && (rc = slurm_submit(&s, &array_job, &merge_job, e))) {
        if (!array_job)
            slurm_remove(&s);
        goto out;
    }
    printf("{\"dir\":\"%s\",\"array_script\":\"%s/array.sbatch\",\"merge_script\":\"%s/merge.sbatch\","
           "\"tasks\":%d,\"archs\":%ld,\"runs\":%ld",
           dir, dir, dir, s.tasks, al.n, al.n * o.seeds);
    if (o.submit)
        printf(",\"array_job\":%ld,\"merge_job\":%ld", array_job, merge_job);
    printf("}\n");
    if (o.submit)
        fprintf(stderr, "%s: slurm: array job %ld (%d tasks, %ld runs) and merge job %ld after it; '%s'\n", tool,
                array_job, s.tasks, al.n * o.seeds, merge_job, dir);
    else
        fprintf(stderr,
                "%s: slurm: %d tasks (%ld runs) written to '%s'; submit with\n"
                "  jid=$(sbatch --parsable %s/array.sbatch) && sbatch --dependency=afterany:$jid %s/merge.sbatch\n",
                tool, s.tasks, al.n * o.seeds, dir, dir, dir);
out:
    if (st.db)
        store_close(&st);
    for (long i = 0; i < al.n; i++)
        free(al.lines[i]);
    free(al.lines);
    json_decref(al.seen);
    free(db);
    free(exe);
    free(dir);
    free(local);
    free(o.sets);
    return rc < 0 ? XE_OK : rc;
}

static const CliCommand commands[] = {
    { "plan", cmd_plan }, { "work", cmd_work }, { "run", cmd_run }, { "status", cmd_status }, { "merge", cmd_merge },
    { "proxies", cmd_proxies }, { "probe", cmd_probe }, { "export", cmd_export }, { "slurm", cmd_slurm },
};

int main(int argc, char **argv)
{
    return cli_main(tool, usage, commands, sizeof commands / sizeof *commands, store_default_path, &db_path, argc,
                    argv);
}
