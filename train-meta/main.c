/* xfer-train-meta: trains cell architectures on stored tasks and records
 * learning curves and accuracies into the store, as a queue of runs that
 * killed and restarted workers finish without losing or repeating work.
 * To add a command: write cmd_NAME(argc, argv, e) and list it in commands[]. */
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/config.h"
#include "core/rng.h"
#include "db/store.h"
#include "meta/meta.h"
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
    "  work [--device cpu|cuda|auto] [--threads T] [--max-runs K] [--max-hours H]\n"
    "       [--lease SECONDS] [--max-attempts A]\n"
    "      claim planned runs and train them; one JSON line per finished run\n"
    "  run  plan + work in one call, on the planned runs only; with archs on\n"
    "       stdin, each input line comes back with the results added\n"
    "  status [--json]           planned, running, done, failed per dataset and\n"
    "                            protocol, throughput and time left\n"
    "  merge SHARD... [--into DB]  merge shard databases (idempotent)\n"
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
    long sample, seeds, seed;
    int json;
    WorkOpts w;
    char **shards;
    int nshards;
    const char *into;
} Opts;

enum {
    O_DATASET = 256, O_SPACE, O_SAMPLE, O_SEED, O_SEEDS, O_PROTOCOL, O_SET, O_DEVICE, O_THREADS,
    O_MAX_RUNS, O_MAX_HOURS, O_LEASE, O_MAX_ATTEMPTS, O_JSON, O_INTO, O_HELP
};

static const struct option all_opts[] = {
    { "dataset", required_argument, 0, O_DATASET },   { "space", required_argument, 0, O_SPACE },
    { "sample", required_argument, 0, O_SAMPLE },     { "seed", required_argument, 0, O_SEED },
    { "seeds", required_argument, 0, O_SEEDS },       { "protocol", required_argument, 0, O_PROTOCOL },
    { "set", required_argument, 0, O_SET },           { "device", required_argument, 0, O_DEVICE },
    { "threads", required_argument, 0, O_THREADS },   { "max-runs", required_argument, 0, O_MAX_RUNS },
    { "max-hours", required_argument, 0, O_MAX_HOURS }, { "lease", required_argument, 0, O_LEASE },
    { "max-attempts", required_argument, 0, O_MAX_ATTEMPTS }, { "json", no_argument, 0, O_JSON },
    { "into", required_argument, 0, O_INTO },         { "help", no_argument, 0, O_HELP },
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
    o->w.device = "auto";
    o->w.threads = th < 1 ? 1 : th > 64 ? 64 : (int)th;
    o->w.lease = 120;
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
        case O_HELP: fputs(usage, stdout); return -1;
        default: snprintf(msg, sizeof msg, "%s: bad option", cmd); return usage_error(e, msg);
        }
    }
    if (!rc && !strcmp(o->w.device, "cuda"))
        rc = xerr_set(e, XE_FAIL, "--device cuda: this build has no CUDA backend (use cpu or auto)");
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

static int plan_arch(Store *st, const Space *sp, const char *arch, int64_t dataset_id, int64_t protocol_id,
                     const Opts *o, const char *line, Planned *pl, PlanStats *ps, XErr *e)
{
    char canon[512], hash[65];
    int64_t arch_id, run_id;
    if (space_canonical_hash(sp, arch, canon, sizeof canon, hash, e) ||
        store_arch_id(st, sp->name, canon, hash, &arch_id, e))
        return e->code;
    for (long s = 0; s < o->seeds; s++) {
        if (queue_plan(st, arch_id, dataset_id, protocol_id, s, &run_id, ps, e) ||
            planned_push(pl, run_id, line, e))
            return e->code;
    }
    return XE_OK;
}

/* One JSON line of stdin into the plan; a bad line is reported with its
 * number and skipped. */
static int plan_line(Store *st, const char *line, long lineno, int64_t dataset_id, int64_t protocol_id,
                     const Opts *o, Planned *pl, PlanStats *ps, XErr *e)
{
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    const char *space = o->space, *arch = NULL;
    const Space *sp;
    XErr le = { 0 };
    int rc = XE_OK;
    if (!j || !json_is_object(j))
        xerr_set(&le, XE_FAIL, "not a JSON object");
    else if (!json_is_string(json_object_get(j, "arch")))
        xerr_set(&le, XE_FAIL, "no \"arch\" string");
    else {
        arch = json_string_value(json_object_get(j, "arch"));
        if (json_is_string(json_object_get(j, "space")))
            space = json_string_value(json_object_get(j, "space"));
        if (!(sp = space_find(space)))
            xerr_set(&le, XE_FAIL, "unknown space '%s' (valid: %s)", space, space_list());
        else if ((rc = plan_arch(st, sp, arch, dataset_id, protocol_id, o, line, pl, ps, &le)) &&
                 strstr(le.msg, "database")) {
            *e = le; /* the store failed, not the line */
            json_decref(j);
            return rc;
        }
    }
    if (le.code) {
        fprintf(stderr, "%s: stdin:%ld: %s\n", tool, lineno, le.msg);
        pl->bad++;
    }
    json_decref(j);
    return XE_OK;
}

static int do_plan(Store *st, const Opts *o, Planned *pl, XErr *e)
{
    int64_t dataset_id, protocol_id;
    PlanStats ps = { 0, 0 };
    const Space *sp = space_find(o->space);
    int rc;
    if (!o->dataset)
        return usage_error(e, "--dataset NAME is required");
    if (!sp)
        return xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o->space, space_list());
    if (store_dataset_find(st, o->dataset, &dataset_id, e))
        return e->code;
    if (!dataset_id)
        return xerr_set(e, XE_FAIL, "unknown dataset '%s' in '%s' ('xfer-ingest list' shows the stored ones)",
                        o->dataset, st->path);
    if (store_begin(st, e))
        return e->code;
    if ((rc = protocol_of(st, o, &protocol_id, e)))
        goto fail;
    if (o->sample) {
        /* distinct archs (by index, in an open-addressing set); a sample
         * larger than the space takes all of it */
        uint64_t want = (uint64_t)o->sample < sp->count ? (uint64_t)o->sample : sp->count, size = 16, got = 0;
        uint64_t *seen;
        Rng r;
        while (size < 2 * want)
            size *= 2;
        if (!(seen = malloc(size * sizeof *seen))) {
            rc = xerr_set(e, XE_FAIL, "out of memory");
            goto fail;
        }
        memset(seen, 0xff, size * sizeof *seen);
        rng_seed(&r, (uint64_t)o->seed);
        while (got < want) {
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
            if ((rc = plan_arch(st, sp, canon, dataset_id, protocol_id, o, NULL, pl, &ps, e))) {
                free(seen);
                goto fail;
            }
        }
        free(seen);
    } else {
        char *line = NULL;
        size_t cap = 0;
        long lineno = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = 0;
            if (!len)
                continue;
            if ((rc = plan_line(st, line, lineno, dataset_id, protocol_id, o, pl, &ps, e))) {
                free(line);
                goto fail;
            }
        }
        free(line);
        if (ferror(stdin)) {
            rc = xerr_set(e, XE_FAIL, "stdin: read error");
            goto fail;
        }
    }
    if ((rc = store_commit(st, e)))
        return rc;
    fprintf(stderr, "%s: planned %ld new runs on '%s' (%ld already in the queue)%s\n", tool, ps.added, o->dataset,
            ps.existing, pl->bad ? "; some input lines were bad" : "");
    return XE_OK;
fail:
    store_rollback(st);
    return rc;
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

static const int work_allowed[] = { O_DEVICE, O_THREADS, O_MAX_RUNS, O_MAX_HOURS, O_LEASE, O_MAX_ATTEMPTS, 0 };

static int work(Store *st, Opts *o, FILE *out, XErr *e)
{
    WorkStats ws;
    int rc;
    xfer_catch_signals();
    rc = worker_run(st, &o->w, out, &ws, e);
    fprintf(stderr, "%s: %ld runs done, %ld failed%s\n", tool, ws.done, ws.failed,
            rc == XE_INTR ? "; interrupted (the current run was given back)" : "");
    return rc;
}

static int cmd_work(int argc, char **argv, XErr *e)
{
    Opts o;
    Store st;
    int rc = parse_opts(argc, argv, "work", work_allowed, &o, e);
    if (!rc && optind < argc)
        rc = usage_error(e, "work: unexpected argument");
    if (!rc && !(rc = store_open(&st, db_path, 0, e))) {
        rc = work(&st, &o, stdout, e);
        store_close(&st);
    }
    free(o.sets);
    return rc < 0 ? XE_OK : rc;
}

static const int run_allowed[] = { O_DATASET,  O_SPACE,   O_SAMPLE,    O_SEED,    O_SEEDS,
                                   O_PROTOCOL, O_SET,     O_DEVICE,    O_THREADS, O_MAX_RUNS,
                                   O_MAX_HOURS, O_LEASE,  O_MAX_ATTEMPTS, 0 };

static int cmd_run(int argc, char **argv, XErr *e)
{
    Opts o;
    Store st;
    Planned pl = { 0 };
    int rc = parse_opts(argc, argv, "run", run_allowed, &o, e);
    if (rc)
        goto out;
    if (optind < argc) {
        rc = usage_error(e, "run: unexpected argument");
        goto out;
    }
    if ((rc = store_open(&st, db_path, 0, e)))
        goto out;
    if (!(rc = do_plan(&st, &o, &pl, e))) {
        /* train what is not finished, then print every planned run (the
         * finished ones from the store, never trained twice) */
        o.w.only = pl.ids;
        o.w.nonly = pl.n;
        rc = work(&st, &o, NULL, e);
        for (int i = 0; !rc && i < pl.n; i++)
            rc = queue_print_run(&st, pl.ids[i], pl.lines ? pl.lines[i] : NULL, stdout, e);
    }
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

static const CliCommand commands[] = {
    { "plan", cmd_plan }, { "work", cmd_work }, { "run", cmd_run }, { "status", cmd_status }, { "merge", cmd_merge },
};

int main(int argc, char **argv)
{
    return cli_main(tool, usage, commands, sizeof commands / sizeof *commands, store_default_path, &db_path, argc,
                    argv);
}
