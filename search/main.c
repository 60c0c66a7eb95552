/* xfer-search: finds a strong cell for a target task with few evaluations,
 * with the transfer predictor fitted on the other tasks (XferNAS) or
 * without it (nao, rea, random), and benchmarks those optimizers on
 * recorded accuracies.
 * To add a command: write cmd_NAME(argc, argv, e) and list it in commands[]. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/config.h"
#include "db/store.h"
#include "model/earlystop.h"
#include "search/search.h"
#include "space/space.h"

static const char *const tool = "xfer-search";

static const char usage[] =
    "usage: xfer-search [--db PATH] COMMAND [OPTIONS]\n"
    "\n"
    "  run --target T (--budget K | --budget-hours H | both) [--space S]\n"
    "      [--optimizer xfer|nao|rea|random]\n"
    "      [--evaluator train|table] [--protocol P] [--seed S]\n"
    "      [--max-params N] [--max-flops N] [--objectives acc|acc,flops]\n"
    "      [--device cpu|cuda|auto] [--threads N] [--lease SECONDS]\n"
    "      [--allow-no-transfer] [--min-runs M] [--explore E] [--json]\n"
    "      [--early-stop ranker --delta D [--min-epochs E]]\n"
    "      search a cell for T with K evaluations (or until the runs of its\n"
    "      steps took H hours: the recorded seconds of the trained, found or\n"
    "      looked-up runs; with both, whichever ends first) and print the best\n"
    "      one (with --objectives acc,flops: the Pareto front) as JSON lines;\n"
    "      --json prints every evaluation, the best marked \"best\":true (or\n"
    "      \"pareto\":true). Every step is recorded (searches, search_steps); a\n"
    "      killed search is continued by the same command: a search is the\n"
    "      target, space, optimizer, evaluator, protocol, seed, budgets,\n"
    "      constraints, objectives and early stop, and a finished one is printed\n"
    "      again, not repeated.\n"
    "      --evaluator train (default) trains each proposal on T as a run of the\n"
    "      queue (protocol P, seed 0); table looks up T's recorded validation\n"
    "      accuracy instead, so only archs T has records of can be proposed.\n"
    "      --early-stop ranker (train evaluator): after each epoch from E (1) on,\n"
    "      a proposal whose probability of ending above T's best finished run\n"
    "      (the space's newest ranker, 'xfer-predict fit') is below D stops there\n"
    "      (terminated-early); its step keeps its last validation accuracy, is\n"
    "      marked \"terminated_early\":true, is never the best, and counts as one\n"
    "      of the K evaluations\n"
    "  bench --target T --budget K [--repeats R] [--optimizer xfer,rea,random[,nao]]\n"
    "        [--space S] [--protocol P] [--seed S] [--min-runs M] [--json]\n"
    "        [--csv FILE] [--svg FILE]\n"
    "      R seeded searches (seeds S .. S+R-1) per optimizer with the table\n"
    "      evaluator: mean and std of the best accuracy found after every\n"
    "      evaluation, and the mean regret against T's best recorded value\n"
    "\n"
    "  optimizers: xfer  the universal predictor fitted on every other task plus\n"
    "                    T's residual fitted on its evaluations so far; NAO steps\n"
    "                    on the code of the best cells, decoded, with mutations\n"
    "                    and random cells, ranked by the prediction\n"
    "              nao   the same predictor fitted on T's evaluations alone\n"
    "              rea   regularized evolution (population 10, tournament 3)\n"
    "              random  uniform samples\n"
    "  --protocol P  name or hash prefix of a stored protocol (default: the one\n"
    "                with the most finished runs; train also takes a preset)\n"
    "  --min-runs M  archs a task needs to be a source (10)\n"
    "  --allow-no-transfer  without source tasks, search with nao instead of failing\n"
    "  --db PATH   the database (default $XFER_DB, else ./" XFER_DEFAULT_DB ")\n"
    "exit codes: 0 ok, 1 failure, 2 usage, 3 interrupted (run it again to resume)\n";

static const char *db_path;

static int usage_error(XErr *e, const char *what)
{
    return xerr_set(e, XE_USAGE, "%s (see 'xfer-search --help')", what);
}

/* ---- options ---- */

typedef struct Opts {
    SearchRunOpts r;
    SearchBenchOpts b;
    const char *space, *csv, *svg;
    long budget, repeats, seed;
    int json, budget_set, delta_set;
    double budget_hours;
    long min_epochs;
    const char *early_stop;
} Opts;

enum {
    O_TARGET = 256, O_SPACE, O_BUDGET, O_OPTIMIZER, O_EVALUATOR, O_PROTOCOL, O_SEED, O_MAX_PARAMS, O_MAX_FLOPS,
    O_OBJECTIVES, O_DEVICE, O_THREADS, O_LEASE, O_ALLOW, O_MIN_RUNS, O_EXPLORE, O_JSON, O_REPEATS, O_CSV, O_SVG,
    O_EARLY_STOP, O_DELTA, O_MIN_EPOCHS, O_BUDGET_HOURS, O_HELP
};

static const struct option all_opts[] = {
    { "target", required_argument, 0, O_TARGET },         { "space", required_argument, 0, O_SPACE },
    { "budget", required_argument, 0, O_BUDGET },         { "optimizer", required_argument, 0, O_OPTIMIZER },
    { "evaluator", required_argument, 0, O_EVALUATOR },   { "protocol", required_argument, 0, O_PROTOCOL },
    { "seed", required_argument, 0, O_SEED },             { "max-params", required_argument, 0, O_MAX_PARAMS },
    { "max-flops", required_argument, 0, O_MAX_FLOPS },   { "objectives", required_argument, 0, O_OBJECTIVES },
    { "device", required_argument, 0, O_DEVICE },         { "threads", required_argument, 0, O_THREADS },
    { "lease", required_argument, 0, O_LEASE },           { "allow-no-transfer", no_argument, 0, O_ALLOW },
    { "min-runs", required_argument, 0, O_MIN_RUNS },     { "explore", required_argument, 0, O_EXPLORE },
    { "json", no_argument, 0, O_JSON },                   { "repeats", required_argument, 0, O_REPEATS },
    { "csv", required_argument, 0, O_CSV },               { "svg", required_argument, 0, O_SVG },
    { "early-stop", required_argument, 0, O_EARLY_STOP }, { "delta", required_argument, 0, O_DELTA },
    { "min-epochs", required_argument, 0, O_MIN_EPOCHS }, { "budget-hours", required_argument, 0, O_BUDGET_HOURS },
    { "help", no_argument, 0, O_HELP },                   { 0, 0, 0, 0 },
};

/* The optimizer list of bench (or the one of run). */
static int parse_optimizers(const char *s, int many, Opts *o, XErr *e)
{
    char **names;
    int n, rc;
    if ((rc = cli_split("--optimizer", s, &names, &n, e)))
        return rc;
    if (n > (many ? SEARCH_NOPT : 1))
        rc = xerr_set(e, XE_USAGE, "--optimizer: %s", many ? "at most 4 optimizers" : "one optimizer (bench takes several)");
    for (int i = 0; !rc && i < n; i++) {
        int k = search_optimizer_find(names[i]);
        if (k < 0)
            rc = xerr_set(e, XE_USAGE, "--optimizer: unknown optimizer '%s' (valid: xfer, nao, rea, random)", names[i]);
        for (int j = 0; !rc && j < i; j++)
            if (o->b.opts[j] == k)
                rc = xerr_set(e, XE_USAGE, "--optimizer: '%s' is listed twice", names[i]);
        o->b.opts[i] = k;
    }
    o->b.nopts = n;
    o->r.opt = (SearchOptimizer)o->b.opts[0];
    cli_free_list(names, n);
    return rc;
}

static int parse_opts(int argc, char **argv, const char *cmd, const int *allowed, Opts *o, XErr *e)
{
    int c, rc = XE_OK;
    long th = sysconf(_SC_NPROCESSORS_ONLN), v;
    memset(o, 0, sizeof *o);
    o->space = "nb201";
    o->seed = 1;
    o->repeats = 10;
    o->r.opt = SEARCH_XFER;
    o->r.evaluator = SEARCH_EVAL_TRAIN;
    o->r.min_runs = 10;
    o->r.explore = 0.1;
    o->r.work.device = "auto";
    o->r.work.threads = th < 1 ? 1 : th > 64 ? 64 : (int)th;
    o->r.work.lease = XFER_DEFAULT_LEASE;
    o->r.work.max_attempts = 3;
    o->r.work.progress = isatty(2);
    o->b.opts[0] = SEARCH_XFER, o->b.opts[1] = SEARCH_REA, o->b.opts[2] = SEARCH_RANDOM;
    o->b.nopts = 3;
    while (rc == XE_OK && (c = getopt_long(argc, argv, "", all_opts, NULL)) != -1) {
        int ok = c == O_HELP;
        char msg[96];
        for (const int *a = allowed; *a && !ok; a++)
            ok = *a == c;
        if (!ok) {
            snprintf(msg, sizeof msg, "%s: bad option '%s'", cmd, argv[optind - 1]);
            return usage_error(e, msg);
        }
        switch (c) {
        case O_TARGET: o->r.target = optarg; break;
        case O_SPACE: o->space = optarg; break;
        case O_BUDGET:
            rc = cli_long("--budget", optarg, 1, 1000000, &o->budget, e);
            o->budget_set = 1;
            break;
        case O_OPTIMIZER: rc = parse_optimizers(optarg, !strcmp(cmd, "bench"), o, e); break;
        case O_EVALUATOR:
            if (!strcmp(optarg, "train"))
                o->r.evaluator = SEARCH_EVAL_TRAIN;
            else if (!strcmp(optarg, "table"))
                o->r.evaluator = SEARCH_EVAL_TABLE;
            else
                rc = xerr_set(e, XE_USAGE, "--evaluator: '%s' is not train or table", optarg);
            break;
        case O_PROTOCOL: o->r.protocol = optarg; break;
        case O_SEED: rc = cli_long("--seed", optarg, 0, 0x7fffffffL, &o->seed, e); break;
        case O_MAX_PARAMS:
            rc = cli_long("--max-params", optarg, 1, INT64_MAX / 2, &v, e);
            o->r.max_params = (uint64_t)v;
            break;
        case O_MAX_FLOPS:
            rc = cli_long("--max-flops", optarg, 1, INT64_MAX / 2, &v, e);
            o->r.max_flops = (uint64_t)v;
            break;
        case O_OBJECTIVES:
            if (!strcmp(optarg, "acc"))
                o->r.multi = 0;
            else if (!strcmp(optarg, "acc,flops"))
                o->r.multi = 1;
            else
                rc = xerr_set(e, XE_USAGE, "--objectives: '%s' is not acc or acc,flops", optarg);
            break;
        case O_DEVICE:
            if (strcmp(optarg, "cpu") && strcmp(optarg, "cuda") && strcmp(optarg, "auto"))
                rc = xerr_set(e, XE_USAGE, "--device: '%s' is not cpu, cuda or auto", optarg);
            o->r.work.device = optarg;
            break;
        case O_THREADS:
            rc = cli_long("--threads", optarg, 1, 64, &v, e);
            o->r.work.threads = (int)v;
            break;
        case O_LEASE: rc = cli_double("--lease", optarg, 0.2, 86400, &o->r.work.lease, e); break;
        case O_ALLOW: o->r.allow_no_transfer = 1; break;
        case O_MIN_RUNS:
            rc = cli_long("--min-runs", optarg, 1, 1L << 30, &v, e);
            o->r.min_runs = (int)v;
            break;
        case O_EXPLORE: rc = cli_double("--explore", optarg, 0, 1, &o->r.explore, e); break;
        case O_JSON: o->json = 1; break;
        case O_REPEATS: rc = cli_long("--repeats", optarg, 1, 10000, &o->repeats, e); break;
        case O_CSV: o->csv = optarg; break;
        case O_SVG: o->svg = optarg; break;
        case O_EARLY_STOP:
            if (strcmp(optarg, "ranker"))
                rc = xerr_set(e, XE_USAGE, "--early-stop: unknown method '%s' (valid: ranker)", optarg);
            o->early_stop = optarg;
            break;
        case O_DELTA: rc = cli_double("--delta", optarg, 0, 1, &o->r.early_delta, e), o->delta_set = 1; break;
        case O_BUDGET_HOURS: rc = cli_double("--budget-hours", optarg, 1e-6, 1e6, &o->budget_hours, e); break;
        case O_MIN_EPOCHS: rc = cli_long("--min-epochs", optarg, 1, 100000, &o->min_epochs, e); break;
        case O_HELP: fputs(usage, stdout); return -1;
        default: snprintf(msg, sizeof msg, "%s: bad option", cmd); return usage_error(e, msg);
        }
    }
    if (rc)
        return rc;
    if (optind < argc) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s: unexpected argument '%s'", cmd, argv[optind]);
        return usage_error(e, msg);
    }
    if (!(o->r.sp = space_find(o->space)))
        return xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o->space, space_list());
    if (!o->r.target) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s: --target T is required", cmd);
        return usage_error(e, msg);
    }
    if (o->early_stop && !o->delta_set)
        return usage_error(e, "--early-stop ranker needs --delta D");
    if (!o->early_stop && (o->delta_set || o->min_epochs))
        return usage_error(e, o->delta_set ? "--delta needs --early-stop ranker"
                                           : "--min-epochs needs --early-stop ranker");
    if (o->early_stop && o->r.evaluator != SEARCH_EVAL_TRAIN)
        return usage_error(e, "--early-stop needs the train evaluator (recorded accuracies are not trained)");
    o->r.early_stop = o->early_stop != NULL;
    o->r.early_min_epochs = o->early_stop ? (o->min_epochs ? (int)o->min_epochs : 1) : 0;
    if (!o->budget_set && !(o->budget_hours > 0)) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s: --budget K%s is required", cmd,
                 strcmp(cmd, "run") ? "" : " (or --budget-hours H)");
        return usage_error(e, msg);
    }
    o->r.budget_hours = o->budget_hours;
    o->r.budget = o->budget;
    o->r.seed = (uint64_t)o->seed;
    o->r.log = stderr;
    o->b.target = o->r.target;
    o->b.sp = o->r.sp;
    o->b.protocol = o->r.protocol;
    o->b.budget = (int)o->budget;
    o->b.repeats = (int)o->repeats;
    o->b.seed = (uint64_t)o->seed;
    o->b.min_runs = o->r.min_runs;
    o->b.log = stderr;
    return XE_OK;
}

/* ---- run ---- */

/* One evaluation as an arch record. */
static void print_step(const SearchOutcome *out, const SearchRunOpts *o, int i, const char *mark)
{
    const SearchStep *s = &out->steps[i];
    json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:i,s:I,s:I,s:i}", "space", out->sp->name, "arch", out->arch_str[i],
                          "dataset", out->dataset, "search", (json_int_t)out->search_id, "optimizer",
                          search_optimizer_names[out->opt], "evaluator",
                          o->evaluator == SEARCH_EVAL_TABLE ? "table" : "train", "step", i + 1, "params",
                          (json_int_t)s->params, "flops", (json_int_t)s->flops, "evaluations", out->n);
    char *t;
    if (!j)
        return;
    json_object_set_new(j, "valid_acc", isfinite(s->acc) ? json_real(s->acc) : json_null());
    json_object_set_new(j, "pred", isfinite(s->pred) ? json_real(s->pred) : json_null());
    json_object_set_new(j, "pred_std", isfinite(s->pred_std) ? json_real(s->pred_std) : json_null());
    json_object_set_new(j, "run", s->run_id ? json_integer(s->run_id) : json_null());
    if (s->terminated)
        json_object_set_new(j, "terminated_early", json_true());
    if (mark)
        json_object_set_new(j, mark, json_true());
    if ((t = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6))))
        puts(t);
    free(t);
    json_decref(j);
}

static int cmd_run(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_TARGET,     O_SPACE,   O_BUDGET,   O_OPTIMIZER, O_EVALUATOR, O_PROTOCOL,
                                   O_SEED,       O_MAX_PARAMS, O_MAX_FLOPS, O_OBJECTIVES, O_DEVICE, O_THREADS,
                                   O_LEASE,      O_ALLOW,   O_MIN_RUNS, O_EXPLORE,   O_JSON,      O_EARLY_STOP,
                                   O_DELTA,      O_MIN_EPOCHS, O_BUDGET_HOURS, 0 };
    Opts o;
    Store st;
    SearchOutcome out;
    EarlyStop es = { 0 };
    int rc = parse_opts(argc, argv, "run", allowed, &o, e), *front = NULL, nf = 0, best = -1;
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if ((rc = store_open(&st, db_path, 0, e)))
        return rc;
    memset(&out, 0, sizeof out);
    /* the ranker first: without one nothing is planned or trained */
    if (o.early_stop) {
        if ((rc = early_stop_open(&es, &st, o.space, 0, o.r.early_delta, o.r.early_min_epochs, e)))
            goto done;
        o.r.work.stop = early_stop_work;
        o.r.work.stop_ctx = &es;
        fprintf(stderr, "%s: early stop: ranker model %lld, proposals below p %g of beating the best from epoch %d\n",
                tool, (long long)es.sr.id, es.delta, es.min_epochs);
    }
    xfer_catch_signals();
    rc = search_run(&st, &o.r, &out, e);
    if (rc == XE_INTR) {
        xerr_clear(e);
        xerr_set(e, XE_INTR, "interrupted after %d evaluations: the same command resumes search %lld", out.n,
                 (long long)out.search_id);
    }
    if (!rc) {
        front = malloc((size_t)(out.n + 1) * sizeof *front);
        if (!front) {
            rc = xerr_set(e, XE_FAIL, "out of memory");
            goto done;
        }
        if (o.r.multi) {
            nf = search_pareto(out.steps, out.n, front);
        } else {
            for (int i = 0; i < out.n; i++)
                if (isfinite(out.steps[i].acc) && !out.steps[i].terminated &&
                    (best < 0 || out.steps[i].acc > out.steps[best].acc))
                    best = i;
            if (best >= 0)
                front[nf++] = best;
        }
        if (!nf) {
            int stopped = 0;
            for (int i = 0; i < out.n; i++)
                stopped += out.steps[i].terminated;
            if (stopped)
                rc = xerr_set(e, XE_FAIL,
                              "search %lld: none of its %d evaluations was trained to the end (%d stopped early)",
                              (long long)out.search_id, out.n, stopped);
            else
                rc = xerr_set(e, XE_FAIL, "search %lld: none of its %d evaluations gave an accuracy",
                              (long long)out.search_id, out.n);
            goto done;
        }
        if (o.json) {
            for (int i = 0; i < out.n; i++) {
                int mark = 0;
                for (int k = 0; k < nf; k++)
                    mark |= front[k] == i;
                print_step(&out, &o.r, i, mark ? (o.r.multi ? "pareto" : "best") : NULL);
            }
        } else {
            for (int k = 0; k < nf; k++)
                print_step(&out, &o.r, front[k], NULL);
        }
        fprintf(stderr, "%s: search %lld: best valid_acc %.4f after %d evaluations (%s)\n", tool,
                (long long)out.search_id, out.steps[o.r.multi ? front[nf - 1] : front[0]].acc, out.n,
                search_optimizer_names[out.opt]);
    }
done:
    free(front);
    search_outcome_release(&out);
    early_stop_close(&es);
    store_close(&st);
    return rc;
}

/* ---- bench ---- */

static int cmd_bench(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_TARGET, O_SPACE, O_BUDGET, O_REPEATS, O_OPTIMIZER, O_PROTOCOL, O_SEED,
                                   O_MIN_RUNS, O_JSON, O_CSV, O_SVG, 0 };
    static const int marks[] = { 1, 5, 10, 20, 50, 100, 200, 500, 1000 };
    Opts o;
    Store st;
    SearchBench b;
    int rc = parse_opts(argc, argv, "bench", allowed, &o, e);
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if ((rc = store_open(&st, db_path, 0, e)))
        return rc;
    xfer_catch_signals();
    rc = search_bench(&st, &o.b, &b, e);
    store_close(&st);
    if (rc)
        return rc;
    if (o.json) {
        for (int i = 0; i < b.ncurves; i++)
            for (int k = 0; k < b.budget; k++)
                printf("{\"optimizer\":\"%s\",\"evaluations\":%d,\"mean_best\":%.6f,\"std_best\":%.6f,"
                       "\"mean_regret\":%.6f}\n",
                       search_optimizer_names[b.curves[i].opt], k + 1, b.curves[i].mean_best[k],
                       b.curves[i].std_best[k], b.curves[i].mean_regret[k]);
    } else {
        printf("target '%s': %d recorded cells, best %.4f; mean best (std) of %d searches\n%11s", b.target,
               b.table_size, b.best_recorded, b.repeats, "evaluations");
        for (int i = 0; i < b.ncurves; i++)
            printf(" %17s", search_optimizer_names[b.curves[i].opt]);
        putchar('\n');
        for (size_t m = 0; m < sizeof marks / sizeof *marks; m++) {
            int k = marks[m] < b.budget ? marks[m] : b.budget;
            if (m && marks[m - 1] >= b.budget)
                break;
            printf("%11d", k);
            for (int i = 0; i < b.ncurves; i++)
                printf("    %.4f (%.4f)", b.curves[i].mean_best[k - 1], b.curves[i].std_best[k - 1]);
            putchar('\n');
        }
    }
    if (o.csv && (rc = search_bench_csv(&b, o.csv, e)))
        goto done;
    if (o.svg && (rc = search_bench_svg(&b, o.svg, e)))
        goto done;
    fprintf(stderr, "%s: bench of '%s' took %.1f s\n", tool, b.target, b.seconds);
done:
    search_bench_release(&b);
    return rc;
}

static const CliCommand commands[] = {
    { "run", cmd_run },
    { "bench", cmd_bench },
};

int main(int argc, char **argv)
{
    return cli_main(tool, usage, commands, sizeof commands / sizeof *commands, store_default_path, &db_path, argc,
                    argv);
}
