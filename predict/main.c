/* xfer-predict: fits the XferNAS transfer predictor and the learning-curve
 * ranker on the meta-dataset in the store, scores architectures for a task
 * with few or no evaluations on it, ranks partial learning curves, and
 * reports how well both work with one task held out.
 * To add a command: write cmd_NAME(argc, argv, e) and list it in commands[]. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/rng.h"
#include "db/store.h"
#include "model/curveset.h"
#include "model/earlystop.h"
#include "model/metaset.h"
#include "model/models.h"
#include "model/ranker.h"
#include "model/similarity.h"
#include "model/xfer.h"
#include "space/space.h"

static const char *const tool = "xfer-predict";

static const char usage[] =
    "usage: xfer-predict [--db PATH] COMMAND [OPTIONS]\n"
    "\n"
    "  fit --space S [--sources A,B,...] [--target T] [--protocol P]\n"
    "      [--epochs N] [--ensemble K] [--seed S] [--min-runs M] [--json]\n"
    "      [--no-ranker] [--ranker-steps N] [--ranker-members M]\n"
    "      fit the transfer predictor (universal part on the source tasks,\n"
    "      a residual per task; with --target, also the target's residual\n"
    "      on its evaluations) and store it; prints a summary. Also fits\n"
    "      the learning-curve ranker on the runs' validation curves (those\n"
    "      of 3 epochs or more; the sources and the target) unless\n"
    "      --no-ranker; --ranker-members M fits M members (1) from their own\n"
    "      seeds, the score their mean\n"
    "  score --dataset T [--space S] [--model ID] [--sample N [--seed S]]\n"
    "        [--top K] [--zero-shot gu|weighted]\n"
    "      add \"pred\" and \"pred_std\" (predicted validation accuracy) to\n"
    "      the arch records on stdin (other fields kept), or to N sampled\n"
    "      archs; --top K prints the best K only, best first. T's residual\n"
    "      is used when the model has one, else fitted on T's evaluations in\n"
    "      the store, else the universal part alone (zero-shot). --zero-shot\n"
    "      scores T zero-shot whatever it has: gu the universal part alone,\n"
    "      weighted g_u plus the source residuals weighted by how close each\n"
    "      source's dataset meta-features (classes, height, width, channels,\n"
    "      n_train) are to T's (weights on stderr; uniform when none is known)\n"
    "  curves [--dataset T] [--space S] [--model ID] [--protocol P]\n"
    "      p(a run ends above the best finished run of its dataset and\n"
    "      protocol) from its curve so far, by the ranker: the running and\n"
    "      done runs of T in the store, or the run records on stdin\n"
    "      ({\"arch\":..,\"dataset\":..,\"curve\":[{\"epoch\":1,\"valid_acc\":..},..]},\n"
    "      other fields kept); adds \"p_beats_best\", \"best_run\", \"best_acc\"\n"
    "  eval --holdout T [--space S] [--protocol P] [--k 0,5,10,20,50]\n"
    "       [--repeats R] [--epochs N] [--seed S] [--json]\n"
    "       [--deltas 0.001,0.01,..] [--min-epochs E] [--ranker-steps N]\n"
    "       [--ranker-members M] [--no-ranker]\n"
    "      leave-one-dataset-out: fit on every task but T, then rank T's\n"
    "      archs from k of its evaluations; Spearman, Kendall tau and the\n"
    "      precision of the predicted top 5% and 10%, against params,\n"
    "      FLOPs, the best single source task and a surrogate fitted on\n"
    "      the k evaluations alone; at k = 0 also xfer-weighted (the\n"
    "      similarity-weighted zero-shot of score --zero-shot weighted). Then early termination over T's stored\n"
    "      curves in R seeded orders, with a ranker fitted on the other\n"
    "      tasks at each delta and with the curve-below-best rule: training\n"
    "      time saved and regret\n"
    "\n"
    "  --protocol P  runs of one training protocol (name or hash prefix;\n"
    "                default: the one with the most finished runs)\n"
    "  --db PATH   the database (default $XFER_DB, else ./" XFER_DEFAULT_DB ")\n"
    "exit codes: 0 ok, 1 failure, 2 usage, 3 interrupted\n";

static const char *db_path;

static int usage_error(XErr *e, const char *what)
{
    return xerr_set(e, XE_USAGE, "%s (see 'xfer-predict --help')", what);
}

/* ---- options ---- */

/* A comma list of at most 16 values in lo..hi into li (integers) or, when
 * li is NULL, d (numbers); *n their count. */
static int parse_list(const char *opt, const char *arg, double lo, double hi, long *li, double *d, int *n, XErr *e)
{
    char **v;
    int rc;
    if ((rc = cli_split(opt, arg, &v, n, e)))
        return rc;
    if (*n > 16)
        rc = xerr_set(e, XE_USAGE, "%s: at most 16 values", opt);
    for (int i = 0; !rc && i < *n; i++)
        rc = li ? cli_long(opt, v[i], (long)lo, (long)hi, &li[i], e) : cli_double(opt, v[i], lo, hi, &d[i], e);
    cli_free_list(v, *n);
    return rc;
}

typedef struct Opts {
    const char *space, *target, *protocol, *dataset, *holdout, *zero_shot;
    char **sources;
    int nsources;
    long epochs, ensemble, seed, min_runs, sample, top, repeats, model, ranker_steps, ranker_members, min_epochs;
    int json, seed_set, no_ranker;
    long ks[16];
    int nks;
    double deltas[16];
    int ndeltas;
} Opts;

enum {
    O_SPACE = 256, O_SOURCES, O_TARGET, O_PROTOCOL, O_EPOCHS, O_ENSEMBLE, O_SEED, O_MIN_RUNS, O_JSON, O_DATASET,
    O_MODEL, O_SAMPLE, O_TOP, O_HOLDOUT, O_K, O_REPEATS, O_NO_RANKER, O_RANKER_STEPS, O_DELTAS, O_MIN_EPOCHS,
    O_ZERO_SHOT, O_RANKER_MEMBERS, O_HELP
};

static const struct option all_opts[] = {
    { "space", required_argument, 0, O_SPACE },       { "sources", required_argument, 0, O_SOURCES },
    { "target", required_argument, 0, O_TARGET },     { "protocol", required_argument, 0, O_PROTOCOL },
    { "epochs", required_argument, 0, O_EPOCHS },     { "ensemble", required_argument, 0, O_ENSEMBLE },
    { "seed", required_argument, 0, O_SEED },         { "min-runs", required_argument, 0, O_MIN_RUNS },
    { "json", no_argument, 0, O_JSON },               { "dataset", required_argument, 0, O_DATASET },
    { "model", required_argument, 0, O_MODEL },       { "sample", required_argument, 0, O_SAMPLE },
    { "top", required_argument, 0, O_TOP },           { "holdout", required_argument, 0, O_HOLDOUT },
    { "k", required_argument, 0, O_K },               { "repeats", required_argument, 0, O_REPEATS },
    { "no-ranker", no_argument, 0, O_NO_RANKER },     { "ranker-steps", required_argument, 0, O_RANKER_STEPS },
    { "deltas", required_argument, 0, O_DELTAS },     { "min-epochs", required_argument, 0, O_MIN_EPOCHS },
    { "zero-shot", required_argument, 0, O_ZERO_SHOT }, { "ranker-members", required_argument, 0, O_RANKER_MEMBERS },
    { "help", no_argument, 0, O_HELP },
    { 0, 0, 0, 0 },
};

static int parse_opts(int argc, char **argv, const char *cmd, const int *allowed, Opts *o, XErr *e)
{
    int c, rc = XE_OK;
    memset(o, 0, sizeof *o);
    o->space = "nb201";
    o->seed = 1;
    o->min_runs = 10;
    o->repeats = 3;
    o->ensemble = 1;
    static const long kdef[] = { 0, 5, 10, 20, 50 };
    static const double ddef[] = { 0.001, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2 };
    memcpy(o->ks, kdef, sizeof kdef);
    o->nks = 5;
    memcpy(o->deltas, ddef, sizeof ddef);
    o->ndeltas = (int)(sizeof ddef / sizeof *ddef);
    o->min_epochs = 1;
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
        case O_SPACE: o->space = optarg; break;
        case O_SOURCES: rc = cli_split("--sources", optarg, &o->sources, &o->nsources, e); break;
        case O_TARGET: o->target = optarg; break;
        case O_PROTOCOL: o->protocol = optarg; break;
        case O_EPOCHS: rc = cli_long("--epochs", optarg, 1, 100000, &o->epochs, e); break;
        case O_ENSEMBLE: rc = cli_long("--ensemble", optarg, 1, 32, &o->ensemble, e); break;
        case O_SEED: rc = cli_long("--seed", optarg, 0, 0x7fffffffL, &o->seed, e), o->seed_set = 1; break;
        case O_MIN_RUNS: rc = cli_long("--min-runs", optarg, 1, 1L << 30, &o->min_runs, e); break;
        case O_JSON: o->json = 1; break;
        case O_DATASET: o->dataset = optarg; break;
        case O_MODEL: rc = cli_long("--model", optarg, 1, INT64_MAX / 2, &o->model, e); break;
        case O_SAMPLE: rc = cli_long("--sample", optarg, 1, 1L << 30, &o->sample, e); break;
        case O_TOP: rc = cli_long("--top", optarg, 1, 1L << 30, &o->top, e); break;
        case O_HOLDOUT: o->holdout = optarg; break;
        case O_REPEATS: rc = cli_long("--repeats", optarg, 1, 1000, &o->repeats, e); break;
        case O_K: rc = parse_list("--k", optarg, 0, 1L << 20, o->ks, NULL, &o->nks, e); break;
        case O_NO_RANKER: o->no_ranker = 1; break;
        case O_RANKER_STEPS: rc = cli_long("--ranker-steps", optarg, 1, 10000000, &o->ranker_steps, e); break;
        case O_RANKER_MEMBERS:
            rc = cli_long("--ranker-members", optarg, 1, RANKER_MAX_MEMBERS, &o->ranker_members, e);
            break;
        case O_MIN_EPOCHS: rc = cli_long("--min-epochs", optarg, 1, 100000, &o->min_epochs, e); break;
        case O_DELTAS: rc = parse_list("--deltas", optarg, 0, 1, NULL, o->deltas, &o->ndeltas, e); break;
        case O_ZERO_SHOT:
            if (strcmp(optarg, "gu") && strcmp(optarg, "weighted"))
                rc = xerr_set(e, XE_USAGE, "--zero-shot: '%s' is not gu or weighted", optarg);
            o->zero_shot = optarg;
            break;
        case O_HELP: fputs(usage, stdout); return -1;
        default: snprintf(msg, sizeof msg, "%s: bad option", cmd); return usage_error(e, msg);
        }
    }
    if (!rc && !space_find(o->space))
        rc = xerr_set(e, XE_USAGE, "--space: unknown space '%s' (valid: %s)", o->space, space_list());
    if (!rc && optind < argc) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s: unexpected argument '%s'", cmd, argv[optind]);
        rc = usage_error(e, msg);
    }
    return rc;
}

/* ---- fitting ---- */

typedef struct FitLog {
    int quiet;
    double last_pred, last_rec, last_acc;
} FitLog;

static int fit_epoch(void *ctx, const XferEpoch *ep, XErr *e)
{
    FitLog *l = ctx;
    l->last_pred = ep->loss_pred;
    l->last_rec = ep->loss_rec;
    l->last_acc = ep->rec_acc;
    if (!l->quiet && (ep->epoch == ep->epochs || ep->epoch % 10 == 0))
        fprintf(stderr, "%s: member %d epoch %d/%d: prediction mse %.4f, reconstruction %.4f (%.1f%% tokens) %.1fs\n",
                tool, ep->member + 1, ep->epoch, ep->epochs, ep->loss_pred, ep->loss_rec, 100 * ep->rec_acc,
                ep->seconds);
    return XE_OK;
}

static void config_for(const MetaSet *ms, const Opts *o, XferConfig *c)
{
    xfer_config_default(c, ms->sp->token_len, ms->sp->vocab);
    if (o->epochs)
        c->epochs = (int)o->epochs;
    c->ensemble = (int)o->ensemble;
    c->seed = (uint64_t)o->seed;
}

/* Fits a model on the tasks flagged in use (the sources). */
static int fit_sources(const MetaSet *ms, const Opts *o, const char *use, int *map, XferModel **m, int quiet,
                       XErr *e)
{
    XferConfig c;
    FitLog log = { quiet, 0, 0, 0 };
    config_for(ms, o, &c);
    return metaset_fit(ms, use, map, &c, fit_epoch, &log, m, e);
}

/* ---- the ranker ---- */

typedef struct RankLog {
    int quiet;
    double loss, acc;
} RankLog;

static int rank_step(void *ctx, int step, int steps, double loss, double acc, XErr *e)
{
    RankLog *l = ctx;
    l->loss = loss;
    l->acc = acc;
    if (!l->quiet && (step == steps || step % 500 == 0))
        fprintf(stderr, "%s: ranker step %d/%d: pair loss %.4f, pairs ordered right %.1f%%\n", tool, step, steps, loss,
                100 * acc);
    return XE_OK;
}

/* Fits a new ranker on the curves of cs's tasks flagged in use (NULL:
 * all); map[t] gets task t's embedding index. */
static int fit_ranker(const CurveSet *cs, const Opts *o, const char *use, int *map, int quiet, Ranker **r,
                      RankLog *log, XErr *e)
{
    RankerConfig c;
    int rc;
    ranker_config_default(&c, cs->sp->token_len, cs->sp->vocab, 1);
    if (o->ranker_steps)
        c.steps = (int)o->ranker_steps;
    if (o->ranker_members)
        c.members = (int)o->ranker_members;
    c.seed = (uint64_t)o->seed;
    *log = (RankLog){ quiet, 0, 0 };
    if ((rc = ranker_new(r, &c, e)))
        return rc;
    if ((rc = curveset_fit(cs, use, map, *r, rank_step, 100, log, e))) {
        ranker_free(*r);
        *r = NULL;
    }
    return rc;
}

/* fit's ranker: on the curves (3 epochs or more) of the sources and the
 * target under ms's protocol; *fitted stays NULL when there are none. */
static int fit_store_ranker(Store *st, const MetaSet *ms, const Opts *o, json_t **fitted, XErr *e)
{
    CurveSet cs;
    Ranker *r = NULL;
    RankLog log;
    char *use = NULL;
    int *map = NULL, rc, pairs = 0;
    int64_t id;
    double t0 = xfer_clock();
    *fitted = NULL;
    if ((rc = curveset_load(st, ms->sp, ms->protocol_hash, 3, &cs, e)))
        return rc;
    use = calloc((size_t)cs.ntasks + 1, 1);
    map = calloc((size_t)cs.ntasks + 1, sizeof *map);
    if (!use || !map) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    for (int t = 0; t < cs.ntasks; t++) {
        use[t] = !o->nsources || (o->target && !strcmp(cs.tasks[t].name, o->target));
        for (int i = 0; i < o->nsources; i++)
            use[t] |= !strcmp(cs.tasks[t].name, o->sources[i]);
        pairs |= use[t] && cs.tasks[t].n >= 2;
    }
    if (!pairs) {
        fprintf(stderr, "%s: no ranker: no task has two finished runs with curves of 3 epochs or more under protocol"
                        " '%s'\n", tool, ms->protocol);
        goto out;
    }
    fprintf(stderr, "%s: fitting the ranker on the curves of %d runs\n", tool, cs.n);
    if ((rc = fit_ranker(&cs, o, use, map, 0, &r, &log, e)))
        goto out;
    if (!(*fitted = models_ranker_fitted_on(&cs, use, map, (uint64_t)o->seed, xfer_clock() - t0))) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    json_object_set_new(*fitted, "pair_acc", json_real(log.acc));
    if ((rc = models_add_ranker(st, ms->sp->name, r, *fitted, &id, e))) {
        json_decref(*fitted);
        *fitted = NULL;
        goto out;
    }
    json_object_set_new(*fitted, "model", json_integer(id));
out:
    ranker_free(r);
    free(use), free(map);
    curveset_free(&cs);
    return rc;
}

/* ---- fit ---- */

static int cmd_fit(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_SPACE, O_SOURCES, O_TARGET, O_PROTOCOL, O_EPOCHS, O_ENSEMBLE,
                                   O_SEED,  O_MIN_RUNS, O_JSON, O_NO_RANKER, O_RANKER_STEPS, O_RANKER_MEMBERS, 0 };
    Opts o;
    Store st;
    MetaSet ms;
    XferModel *m = NULL;
    char *use = NULL;
    int *map = NULL, rc = parse_opts(argc, argv, "fit", allowed, &o, e), target = -1, ttask = -1;
    double t0 = xfer_clock(), tmean = 0, tstd = 1;
    int64_t id = 0;
    json_t *fitted = NULL, *rfitted = NULL;
    if (rc)
        goto out;
    if ((rc = store_open(&st, db_path, 0, e)))
        goto out;
    if ((rc = metaset_load(&st, space_find(o.space), o.protocol, (int)o.min_runs, &ms, e))) {
        store_close(&st);
        goto out;
    }
    use = calloc((size_t)ms.ntasks, 1);
    map = calloc((size_t)ms.ntasks, sizeof *map);
    if (!use || !map) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto done;
    }
    if (o.target) {
        int64_t did;
        if ((rc = store_dataset_find(&st, o.target, &did, e)))
            goto done;
        if (!did) {
            rc = xerr_set(e, XE_FAIL, "unknown target dataset '%s' in '%s'", o.target, st.path);
            goto done;
        }
        target = metaset_task(&ms, o.target);
    }
    for (int t = 0; t < ms.ntasks; t++)
        use[t] = !o.nsources && t != target;
    for (int i = 0; i < o.nsources; i++) {
        int t = metaset_task(&ms, o.sources[i]);
        if (o.target && !strcmp(o.sources[i], o.target)) {
            rc = xerr_set(e, XE_USAGE, "--sources: '%s' is the target; a task cannot be both", o.target);
            goto done;
        }
        if (t < 0) {
            rc = xerr_set(e, XE_FAIL, "--sources: '%s' has fewer than %ld finished %s runs under protocol '%s' (%.12s)",
                          o.sources[i], o.min_runs, ms.sp->name, ms.protocol, ms.protocol_hash);
            goto done;
        }
        use[t] = 1;
    }
    fprintf(stderr, "%s: fitting on %d source tasks of protocol '%s' (%.12s)\n", tool,
            (int)(o.nsources ? o.nsources : ms.ntasks - (target >= 0)), ms.protocol, ms.protocol_hash);
    if ((rc = fit_sources(&ms, &o, use, map, &m, 0, e)))
        goto done;
    if (target >= 0) {
        /* the target's evaluations give it a residual of its own */
        int n, *tok = NULL;
        float *acc = NULL;
        rc = metaset_task_rows(&ms, target, &tok, &acc, &n, e);
        if (!rc)
            rc = metaset_fit_target(m, n, tok, acc, 1, &tmean, &tstd, &ttask, e);
        free(tok), free(acc);
        if (rc)
            goto done;
    }
    fitted = models_fitted_on(&ms, use, map, (uint64_t)o.seed, xfer_clock() - t0);
    if (fitted && target >= 0)
        json_object_set_new(fitted, "target", json_pack("{s:s,s:i,s:i,s:f,s:f}", "name", o.target, "task", ttask, "runs",
                                                        ms.tasks[target].n, "mean", tmean, "std", tstd));
    else if (fitted && o.target)
        json_object_set_new(fitted, "target", json_pack("{s:s,s:i,s:i}", "name", o.target, "task", -1, "runs", 0));
    if (!fitted) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto done;
    }
    if ((rc = models_add(&st, ms.sp->name, m, fitted, &id, e)))
        goto done;
    if (!o.no_ranker && (rc = fit_store_ranker(&st, &ms, &o, &rfitted, e)))
        goto done;
    if (o.json) {
        json_object_set_new(fitted, "model", json_integer(id));
        json_object_set_new(fitted, "space", json_string(ms.sp->name));
        if (rfitted)
            json_object_set(fitted, "ranker", rfitted);
        char *s = json_dumps(fitted, JSON_COMPACT | JSON_SORT_KEYS);
        if (s)
            puts(s);
        free(s);
    } else {
        printf("model %lld: %s, protocol '%s' (%.12s), %zu parameters a member, fitted in %.1f s on\n", (long long)id,
               ms.sp->name, ms.protocol, ms.protocol_hash, xfer_param_count(m),
               json_number_value(json_object_get(fitted, "seconds")));
        for (int t = 0; t < ms.ntasks; t++)
            if (use[t] || t == target)
                printf("  %-24s %6d runs  mean %.4f  std %.4f%s\n", ms.tasks[t].name, ms.tasks[t].n, ms.tasks[t].mean,
                       ms.tasks[t].std, t == target ? "  (target)" : "");
        if (rfitted) {
            json_t *d;
            size_t i;
            printf("ranker %lld: %lld runs with curves of up to %lld epochs, fitted in %.1f s (pairs ordered right"
                   " %.1f%%) on\n",
                   (long long)json_integer_value(json_object_get(rfitted, "model")),
                   (long long)json_integer_value(json_object_get(rfitted, "runs")),
                   (long long)json_integer_value(json_object_get(rfitted, "epochs")),
                   json_number_value(json_object_get(rfitted, "seconds")),
                   100 * json_number_value(json_object_get(rfitted, "pair_acc")));
            json_array_foreach(json_object_get(rfitted, "datasets"), i, d)
                printf("  %-24s %6lld runs  %3lld epochs  embedding %lld\n",
                       json_string_value(json_object_get(d, "name")),
                       (long long)json_integer_value(json_object_get(d, "runs")),
                       (long long)json_integer_value(json_object_get(d, "epochs")),
                       (long long)json_integer_value(json_object_get(d, "index")));
        }
    }
done:
    json_decref(fitted);
    json_decref(rfitted);
    xfer_free(m);
    free(use), free(map);
    metaset_free(&ms);
    store_close(&st);
out:
    cli_free_list(o.sources, o.nsources);
    return rc < 0 ? XE_OK : rc;
}

/* ---- score ---- */

/* How a dataset is predicted: a task of the model (its residual) with
 * the accuracy scale, or g_u alone (task -1). */
typedef struct Scorer {
    int task;
    double mean, std;
    const char *how;
    float *w;      /* (the model's tasks) similarity weights of the weighted zero-shot, else NULL */
} Scorer;

/* Says which weights the similarity-weighted zero-shot gives (names[i],
 * w[i] for n sources; those of weight 0 left out), or why they are
 * uniform. */
static void say_weights(const char *dataset, unsigned used, int n, const char *const *names, const double *w,
                        const double *target, const double *const *src)
{
    char feats[256];
    int shown = 0, sources = 0, probed = 0;
    for (int i = 0; i < n; i++)
        if (src[i])
            sources++, probed += isfinite(src[i][SIM_PROBE]);
    if (sources && probed == sources && !isfinite(target[SIM_PROBE]))
        fprintf(stderr,
                "%s: '%s' has no probes and every source has: 'xfer-train-meta probe --dataset %s' adds them to the"
                " similarity (a stored task only)\n",
                tool, dataset, dataset);
    if (!used) {
        fprintf(stderr,
                "%s: '%s': no meta-feature (classes, height, width, channels, n_train, probes) is recorded for it and"
                " every source with different values among them: uniform weights over the sources\n",
                tool, dataset);
        return;
    }
    sim_feature_list(used, feats, sizeof feats);
    fprintf(stderr, "%s: '%s': source weights by dataset similarity (%s):", tool, dataset, feats);
    for (int i = 0; i < n; i++)
        if (w[i] > 0)
            fprintf(stderr, "%s %s %.3f", shown++ ? "," : "", names[i], w[i]);
    fputc('\n', stderr);
}

/* The weighted zero-shot of dataset did over the model's source tasks
 * (fitted_on.tasks; the dataset itself, if it is one, left out): s->w over
 * the model's tasks, s->mean and s->std the weighted scale of the sources. */
static int scorer_weighted(Store *st, StoredModel *l, const char *dataset, int64_t did, Scorer *s, XErr *e)
{
    json_t *tasks = json_object_get(l->fitted, "tasks"), *t;
    size_t n = json_array_size(tasks), i;
    int nm = xfer_ntasks(l->m), rc = XE_OK;
    double tf[SIM_NFEAT], (*f)[SIM_NFEAT] = calloc(n + 1, sizeof *f), *w = calloc(n + 1, sizeof *w);
    const double **src = calloc(n + 1, sizeof *src);
    const char **names = calloc(n + 1, sizeof *names);
    unsigned used;
    s->w = calloc((size_t)nm + 1, sizeof *s->w);
    if (!f || !w || !src || !names || !s->w) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    if ((rc = sim_dataset_features(st, did, tf, e)))
        goto out;
    json_array_foreach(tasks, i, t) {
        int64_t sid;
        names[i] = json_string_value(json_object_get(t, "name")) ?: "";
        if ((rc = store_dataset_find(st, names[i], &sid, e)))
            goto out;
        if (sid == did)
            continue;
        if (sid && (rc = sim_dataset_features(st, sid, f[i], e)))
            goto out;
        if (!sid)
            for (int k = 0; k < SIM_NFEAT; k++)
                f[i][k] = NAN;
        src[i] = f[i];
    }
    used = sim_weights(tf, (int)n, src, 1.0, w);
    say_weights(dataset, used, (int)n, names, w, tf, src);
    s->task = -1, s->mean = 0, s->std = 0;
    json_array_foreach(tasks, i, t) {
        int task = (int)json_integer_value(json_object_get(t, "task"));
        if (task >= 0 && task < nm)
            s->w[task] = (float)w[i];
        s->mean += w[i] * json_number_value(json_object_get(t, "mean"));
        s->std += w[i] * json_number_value(json_object_get(t, "std"));
    }
    s->how = "zero-shot weighted by dataset similarity";
out:
    free(f), free(w), free(src), free(names);
    return rc;
}

static int scorer_for(Store *st, StoredModel *l, const Space *sp, const char *dataset, const char *zero_shot,
                      Scorer *s, XErr *e)
{
    json_t *tasks = json_object_get(l->fitted, "tasks"), *target = json_object_get(l->fitted, "target"), *t;
    size_t i;
    double msum = 0, ssum = 0;
    int64_t did;
    if (store_dataset_find(st, dataset, &did, e))
        return e->code;
    if (!did)
        return xerr_set(e, XE_FAIL, "unknown dataset '%s' in '%s' ('xfer-ingest list' shows the stored ones)", dataset,
                        st->path);
    s->w = NULL;
    if (zero_shot && !strcmp(zero_shot, "weighted"))
        return scorer_weighted(st, l, dataset, did, s, e);
    json_array_foreach(tasks, i, t) {
        if (!zero_shot && !strcmp(json_string_value(json_object_get(t, "name")) ?: "", dataset)) {
            *s = (Scorer){ (int)json_integer_value(json_object_get(t, "task")),
                           json_number_value(json_object_get(t, "mean")), json_number_value(json_object_get(t, "std")),
                           "source task", NULL };
            return XE_OK;
        }
    }
    if (!zero_shot && target && !strcmp(json_string_value(json_object_get(target, "name")) ?: "", dataset) &&
        json_integer_value(json_object_get(target, "task")) >= 0) {
        *s = (Scorer){ (int)json_integer_value(json_object_get(target, "task")),
                       json_number_value(json_object_get(target, "mean")),
                       json_number_value(json_object_get(target, "std")), "target residual", NULL };
        return XE_OK;
    }
    /* the dataset's own evaluations under the model's protocol, if any */
    if (!zero_shot) {
        MetaSet ms;
        XErr le = { 0 };
        int rc = metaset_load(st, sp, l->protocol_hash, 1, &ms, &le), tk;
        if (!rc && (tk = metaset_task(&ms, dataset)) >= 0 && ms.tasks[tk].n >= 2) {
            int n, *tok = NULL;
            float *acc = NULL;
            rc = metaset_task_rows(&ms, tk, &tok, &acc, &n, e);
            if (!rc)
                rc = metaset_fit_target(l->m, n, tok, acc, 1, &s->mean, &s->std, &s->task, e);
            free(tok), free(acc);
            metaset_free(&ms);
            s->how = "residual fitted now on its evaluations";
            if (!rc)
                fprintf(stderr, "%s: '%s': residual fitted on its %d evaluations\n", tool, dataset, n);
            return rc;
        }
        if (!rc)
            metaset_free(&ms);
    }
    /* zero-shot: g_u, on the sources' average scale */
    json_array_foreach(tasks, i, t) {
        msum += json_number_value(json_object_get(t, "mean"));
        ssum += json_number_value(json_object_get(t, "std"));
    }
    {
        size_t nt = json_array_size(tasks);
        *s = (Scorer){ -1, nt ? msum / (double)nt : 0, nt ? ssum / (double)nt : 1, "zero-shot", NULL };
    }
    if (zero_shot)
        fprintf(stderr, "%s: '%s': zero-shot from the universal predictor (--zero-shot gu)\n", tool, dataset);
    else
        fprintf(stderr, "%s: '%s' has no evaluations: zero-shot from the universal predictor\n", tool, dataset);
    return XE_OK;
}

typedef struct Pending {
    json_t *rec;
    int tokens[SPACE_MAX_TOKENS];
    float z, zs;
} Pending;

static int cmp_pending(const void *a, const void *b)
{
    float x = ((const Pending *)a)->z, y = ((const Pending *)b)->z;
    return (x < y) - (x > y);
}

/* Predicts recs [from, n) in batches and prints them unless top is set. */
static int score_flush(const StoredModel *l, const Scorer *s, const Space *sp, Pending *p, int from, int n, int print,
                       XErr *e)
{
    enum { B = 4096 };
    int tok[B * SPACE_MAX_TOKENS];
    float mean[B], std[B];
    for (int i = from; i < n; i += B) {
        int m = n - i < B ? n - i : B;
        for (int k = 0; k < m; k++)
            memcpy(tok + (size_t)k * sp->token_len, p[i + k].tokens, (size_t)sp->token_len * sizeof *tok);
        if (s->w ? xfer_predict_weighted(l->m, s->w, m, tok, mean, std, e)
                 : xfer_predict(l->m, s->task, m, tok, mean, std, e))
            return e->code;
        for (int k = 0; k < m; k++) {
            Pending *q = &p[i + k];
            q->z = mean[k];
            q->zs = std[k];
            json_object_set_new(q->rec, "pred", json_real(s->mean + s->std * mean[k]));
            json_object_set_new(q->rec, "pred_std", json_real(s->std * std[k]));
            if (print) {
                char *t = json_dumps(q->rec, JSON_COMPACT | JSON_REAL_PRECISION(6));
                if (!t)
                    return xerr_set(e, XE_FAIL, "out of memory");
                puts(t);
                free(t);
                json_decref(q->rec);
                q->rec = NULL;
            }
        }
    }
    return XE_OK;
}

static int cmd_score(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_SPACE, O_DATASET, O_MODEL, O_SAMPLE, O_SEED, O_TOP, O_ZERO_SHOT, 0 };
    Opts o;
    Store st;
    StoredModel l = { 0 };
    Scorer s = { 0 };
    const Space *sp;
    Pending *p = NULL;
    int n = 0, cap = 0, flushed = 0, rc = parse_opts(argc, argv, "score", allowed, &o, e);
    long bad = 0;
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if (!o.dataset)
        return usage_error(e, "score: --dataset NAME is required");
    sp = space_find(o.space);
    if ((rc = store_open(&st, db_path, 0, e)))
        return rc;
    if ((rc = models_load(&st, sp->name, o.model, &l, e)) ||
        (rc = scorer_for(&st, &l, sp, o.dataset, o.zero_shot, &s, e)))
        goto out;
    if (o.sample) {
        /* distinct archs by index */
        uint64_t want = (uint64_t)o.sample < sp->count ? (uint64_t)o.sample : sp->count;
        Rng r;
        char *seen = calloc(sp->count > (1u << 26) ? 1 : sp->count, 1);
        rng_seed(&r, (uint64_t)o.seed);
        if (!seen) {
            rc = xerr_set(e, XE_FAIL, "out of memory");
            goto out;
        }
        while (!rc && (uint64_t)n < want) {
            SpaceArch a;
            char canon[512];
            uint64_t idx;
            sp->sample(&r, &a);
            idx = sp->to_index(&a);
            if (sp->count <= (1u << 26)) {
                if (seen[idx])
                    continue;
                seen[idx] = 1;
            }
            if (n == cap) {
                Pending *q = realloc(p, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof *q);
                if (!q) {
                    rc = xerr_set(e, XE_FAIL, "out of memory");
                    break;
                }
                p = q;
            }
            sp->format(&a, canon, sizeof canon);
            sp->encode(&a, p[n].tokens);
            p[n].rec = json_pack("{s:s,s:s}", "space", sp->name, "arch", canon);
            n++;
        }
        free(seen);
    } else {
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        long lineno = 0;
        while (!rc && (len = getline(&line, &lcap, stdin)) >= 0) {
            json_t *j;
            const char *arch, *space;
            SpaceArch a;
            XErr le = { 0 };
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = 0;
            if (!len)
                continue;
            j = json_loads(line, 0, NULL);
            if (!j || !json_is_object(j))
                xerr_set(&le, XE_FAIL, "not a JSON object");
            else if (!(arch = json_string_value(json_object_get(j, "arch"))))
                xerr_set(&le, XE_FAIL, "no \"arch\" string");
            else if ((space = json_string_value(json_object_get(j, "space"))) && strcmp(space, sp->name))
                xerr_set(&le, XE_FAIL, "space '%s', but the model is for %s", space, sp->name);
            else
                sp->parse(arch, &a, &le);
            if (le.code) {
                fprintf(stderr, "%s: stdin:%ld: %s\n", tool, lineno, le.msg);
                bad++;
                json_decref(j);
                continue;
            }
            if (n == cap) {
                Pending *q = realloc(p, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof *q);
                if (!q) {
                    json_decref(j);
                    rc = xerr_set(e, XE_FAIL, "out of memory");
                    break;
                }
                p = q;
            }
            sp->encode(&a, p[n].tokens);
            p[n].rec = j;
            n++;
            /* stream: print in batches unless ranking */
            if (!o.top && n - flushed >= 4096) {
                rc = score_flush(&l, &s, sp, p, flushed, n, 1, e);
                flushed = n;
            }
        }
        free(line);
    }
    if (!rc)
        rc = score_flush(&l, &s, sp, p, flushed, n, !o.top, e);
    if (!rc && o.top) {
        qsort(p, (size_t)n, sizeof *p, cmp_pending);
        for (int i = 0; i < n && i < o.top; i++) {
            char *t = json_dumps(p[i].rec, JSON_COMPACT | JSON_REAL_PRECISION(6));
            if (t)
                puts(t);
            free(t);
        }
    }
    fprintf(stderr, "%s: scored %d archs for '%s' with model %lld (%s)\n", tool, n, o.dataset, (long long)l.id, s.how);
    if (!rc && bad)
        rc = xerr_set(e, XE_FAIL, "%ld bad input lines (reported above; the others were scored)", bad);
out:
    for (int i = 0; i < n; i++)
        json_decref(p[i].rec);
    free(p);
    free(s.w);
    stored_model_release(&l);
    store_close(&st);
    return rc;
}

/* ---- curves ---- */

/* Adds p_beats_best, best_run and best_acc to rec (nulls when the dataset
 * has no finished run with a curve under the protocol). */
static int curves_rate(EarlyStop *es, Store *st, json_t *rec, const char *dataset, int64_t did, int64_t pid,
                       const int *tokens, const float *curve, int n, XErr *e)
{
    EarlyVerdict v;
    if (early_stop_prob(es, st, dataset, did, pid, tokens, curve, n, &v, e))
        return e->code;
    json_object_set_new(rec, "p_beats_best", v.have ? json_real(v.p) : json_null());
    json_object_set_new(rec, "best_run", v.have ? json_integer(v.best_run) : json_null());
    json_object_set_new(rec, "best_acc", v.have ? json_real(v.best_acc) : json_null());
    return XE_OK;
}

static int print_rec(const json_t *rec, XErr *e)
{
    char *t = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (!t)
        return xerr_set(e, XE_FAIL, "out of memory");
    puts(t);
    free(t);
    return XE_OK;
}

/* The running and done runs of a dataset (under one protocol when pid is
 * not 0), with their curves so far. */
static int curves_store(EarlyStop *es, Store *st, const char *dataset, int64_t pid, long *rated, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int64_t did;
    int rc = XE_OK, step;
    long waiting = 0;
    if (store_dataset_find(st, dataset, &did, e))
        return e->code;
    if (!did)
        return xerr_set(e, XE_FAIL, "unknown dataset '%s' in '%s' ('xfer-ingest list' shows the stored ones)", dataset,
                        st->path);
    if (store_prepare(st, &q,
                      "SELECT r.id, a.arch, p.id, p.name, p.hash, r.seed, r.status FROM runs r"
                      " JOIN archs a ON a.id = r.arch_id JOIN protocols p ON p.id = r.protocol_id"
                      " WHERE r.dataset_id = ?1 AND a.space = ?2 AND r.status IN ('running', 'done')"
                      " AND (?3 = 0 OR r.protocol_id = ?3) ORDER BY r.id",
                      e))
        return e->code;
    sqlite3_bind_int64(q, 1, did);
    sqlite3_bind_text(q, 2, es->sp->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, pid);
    while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t run = sqlite3_column_int64(q, 0);
        SpaceArch a;
        int tokens[SPACE_MAX_TOKENS], n;
        float *curve = NULL;
        json_t *rec, *pts;
        if ((rc = es->sp->parse((const char *)sqlite3_column_text(q, 1), &a, e)) ||
            (rc = curve_read(st, run, &curve, &n, e)))
            break;
        if (!n) {
            waiting++; /* no epoch finished yet: nothing to rank */
            continue;
        }
        es->sp->encode(&a, tokens);
        pts = json_array();
        for (int k = 0; k < n; k++)
            json_array_append_new(pts, json_pack("{s:i,s:f}", "epoch", k + 1, "valid_acc", (double)curve[k]));
        rec = json_pack("{s:s,s:s,s:s,s:s,s:s%,s:I,s:I,s:s,s:i,s:f,s:o}", "space", es->sp->name, "arch",
                        (const char *)sqlite3_column_text(q, 1), "dataset", dataset, "protocol",
                        (const char *)sqlite3_column_text(q, 3), "protocol_hash",
                        (const char *)sqlite3_column_text(q, 4), (size_t)12, "seed",
                        (json_int_t)sqlite3_column_int64(q, 5), "run", (json_int_t)run, "status",
                        (const char *)sqlite3_column_text(q, 6), "epochs", n, "valid_acc", (double)curve[n - 1],
                        "curve", pts);
        if (!rec)
            rc = xerr_set(e, XE_FAIL, "out of memory");
        if (!rc && !(rc = curves_rate(es, st, rec, dataset, did, sqlite3_column_int64(q, 2), tokens, curve, n, e)))
            rc = print_rec(rec, e);
        json_decref(rec);
        free(curve);
        (*rated)++;
    }
    if (!rc && step != SQLITE_DONE)
        rc = store_fail(st, e, "reading runs");
    sqlite3_finalize(q);
    if (waiting)
        fprintf(stderr, "%s: %ld running runs of '%s' have not finished an epoch yet\n", tool, waiting, dataset);
    return rc;
}

/* A protocol by hash prefix or name: *pid 0 and le set when there is none
 * or several. */
static int curves_protocol(Store *st, const char *want, int64_t *pid, XErr *le, XErr *e)
{
    sqlite3_stmt *q = NULL;
    int step, n = 0;
    *pid = 0;
    if (store_prepare(st, &q, "SELECT id FROM protocols WHERE hash LIKE ?1 || '%' OR name = ?1 LIMIT 2", e))
        return e->code;
    sqlite3_bind_text(q, 1, want, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        if (!n++)
            *pid = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (step != SQLITE_DONE)
        return store_fail(st, e, "reading protocols");
    if (n != 1) {
        *pid = 0;
        xerr_set(le, XE_FAIL, n ? "protocol '%s' matches several recipes (give \"protocol_hash\")"
                                : "unknown protocol '%s'", want);
    }
    return XE_OK;
}

/* Records why an input line is bad; the command goes on. */
static int bad_line(XErr *le, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_line(XErr *le, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    le->code = XE_FAIL;
    vsnprintf(le->msg, sizeof le->msg, fmt, ap);
    va_end(ap);
    return XE_OK;
}

/* Ranks one stdin record by its arch, dataset, protocol and curve and
 * prints it; a bad one is left out with le saying why (the return status
 * is for failures that end the command). */
static int curves_line(EarlyStop *es, Store *st, const Opts *o, json_t *j, long *rated, XErr *le, XErr *e)
{
    const char *arch, *space, *dataset, *proto = NULL;
    json_t *curve = json_object_get(j, "curve"), *pt, *pj = json_object_get(j, "protocol");
    SpaceArch a;
    int tokens[SPACE_MAX_TOKENS], n, rc;
    int64_t did, pid;
    float *acc = NULL;
    size_t i;
    if (!(arch = json_string_value(json_object_get(j, "arch"))))
        return bad_line(le, "no \"arch\" string");
    if ((space = json_string_value(json_object_get(j, "space"))) && strcmp(space, es->sp->name))
        return bad_line(le, "space '%s', but the ranker is for %s", space, es->sp->name);
    if (es->sp->parse(arch, &a, le))
        return XE_OK;
    if (!(dataset = json_string_value(json_object_get(j, "dataset"))))
        return bad_line(le, "no \"dataset\" string");
    if (!json_is_array(curve) || !(n = (int)json_array_size(curve)))
        return bad_line(le, "no \"curve\" array of points");
    if (store_dataset_find(st, dataset, &did, e))
        return e->code;
    if (!did)
        return bad_line(le, "unknown dataset '%s' in '%s'", dataset, st->path);
    /* the protocol: the record's hash, else its name, else --protocol, else the ranker's */
    if (json_is_string(json_object_get(j, "protocol_hash")))
        proto = json_string_value(json_object_get(j, "protocol_hash"));
    else if (json_is_string(pj))
        proto = json_string_value(pj);
    else if (json_is_string(json_object_get(pj, "name")))
        proto = json_string_value(json_object_get(pj, "name"));
    else
        proto = o->protocol ? o->protocol : es->sr.protocol_hash;
    if ((rc = curves_protocol(st, proto, &pid, le, e)) || le->code)
        return rc;
    if (!(acc = malloc((size_t)n * sizeof *acc)))
        return xerr_set(e, XE_FAIL, "out of memory");
    json_array_foreach(curve, i, pt) {
        json_t *ep = json_object_get(pt, "epoch"), *v = json_object_get(pt, "valid_acc");
        if (!json_is_integer(ep) || json_integer_value(ep) != (json_int_t)i + 1) {
            xerr_set(le, XE_FAIL, "curve point %zu: \"epoch\" is not %zu (epochs 1, 2, ... in order)", i + 1, i + 1);
            break;
        }
        if (!json_is_number(v) || !isfinite(json_number_value(v))) {
            xerr_set(le, XE_FAIL, "curve point %zu: no number \"valid_acc\"", i + 1);
            break;
        }
        acc[i] = (float)json_number_value(v);
    }
    es->sp->encode(&a, tokens);
    if (!le->code && !(rc = curves_rate(es, st, j, dataset, did, pid, tokens, acc, n, e)))
        rc = print_rec(j, e);
    if (!le->code && !rc)
        (*rated)++;
    free(acc);
    return rc;
}

static int cmd_curves(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_SPACE, O_DATASET, O_MODEL, O_PROTOCOL, 0 };
    Opts o;
    Store st;
    EarlyStop es;
    int rc = parse_opts(argc, argv, "curves", allowed, &o, e);
    long bad = 0, rated = 0;
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if ((rc = store_open(&st, db_path, 0, e)))
        return rc;
    if ((rc = early_stop_open(&es, &st, o.space, o.model, 0, 1, e))) {
        store_close(&st);
        return rc;
    }
    if (o.dataset) {
        int64_t pid = 0;
        char name[128], hash[65];
        if (!o.protocol || !(rc = metaset_protocol(&st, es.sp, o.protocol, &pid, name, hash, e)))
            rc = curves_store(&es, &st, o.dataset, pid, &rated, e);
    } else {
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        long lineno = 0;
        while (!rc && (len = getline(&line, &lcap, stdin)) >= 0) {
            json_t *j;
            XErr le = { 0 };
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = 0;
            if (!len)
                continue;
            if (!(j = json_loads(line, 0, NULL)) || !json_is_object(j))
                xerr_set(&le, XE_FAIL, "not a JSON object");
            else
                rc = curves_line(&es, &st, &o, j, &rated, &le, e);
            if (!rc && le.code) {
                fprintf(stderr, "%s: stdin:%ld: %s\n", tool, lineno, le.msg);
                bad++;
            }
            json_decref(j);
        }
        free(line);
        if (!rc && ferror(stdin))
            rc = xerr_set(e, XE_FAIL, "stdin: read error");
    }
    if (!rc)
        fprintf(stderr, "%s: ranked %ld partial curves with ranker model %lld\n", tool, rated, (long long)es.sr.id);
    if (!rc && bad)
        rc = xerr_set(e, XE_FAIL, "%ld bad input lines (reported above; the others were ranked)", bad);
    early_stop_close(&es);
    store_close(&st);
    return rc;
}

/* ---- eval ---- */

typedef struct Metrics {
    double rho, tau, p5, p10;
    int reps;
} Metrics;

static void metrics_add(Metrics *m, const double *pred, const double *truth, int n)
{
    m->rho += rank_spearman(pred, truth, n);
    m->tau += rank_kendall(pred, truth, n);
    m->p5 += rank_top_precision(pred, truth, n, 0.05);
    m->p10 += rank_top_precision(pred, truth, n, 0.10);
    m->reps++;
}

enum { M_XFER, M_XFER_TUNE, M_XFER_W, M_TARGET_ONLY, M_SOURCE, M_SOURCE_ORACLE, M_PARAMS, M_FLOPS, M_COUNT };
static const char *const method_names[M_COUNT] = {
    "xfer", "xfer-tuned", "xfer-weighted", "target-only", "best-source", "source-oracle", "params", "flops",
};

/* The similarity weights of the held-out task h over the model's tasks
 * (wm, indexed through map), said on stderr. */
static int eval_weights(Store *st, const MetaSet *ms, int h, const int *map, int nm, float *wm, XErr *e)
{
    double tf[SIM_NFEAT], (*f)[SIM_NFEAT] = calloc((size_t)ms->ntasks, sizeof *f);
    double *w = calloc((size_t)ms->ntasks, sizeof *w);
    const double **src = calloc((size_t)ms->ntasks, sizeof *src);
    const char **names = calloc((size_t)ms->ntasks, sizeof *names);
    int rc = XE_OK;
    if (!f || !w || !src || !names) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    if ((rc = sim_dataset_features(st, ms->tasks[h].dataset_id, tf, e)))
        goto out;
    for (int t = 0; t < ms->ntasks; t++) {
        names[t] = ms->tasks[t].name;
        if (t != h && map[t] >= 0) {
            if ((rc = sim_dataset_features(st, ms->tasks[t].dataset_id, f[t], e)))
                goto out;
            src[t] = f[t];
        }
    }
    say_weights(ms->tasks[h].name, sim_weights(tf, ms->ntasks, src, 1.0, w), ms->ntasks, names, w, tf, src);
    for (int i = 0; i < nm; i++)
        wm[i] = 0;
    for (int t = 0; t < ms->ntasks; t++)
        if (src[t] && map[t] < nm)
            wm[map[t]] = (float)w[t];
out:
    free(f), free(w), free(src), free(names);
    return rc;
}

/* eval's SIM_RANKER probabilities (ranker_prob_beats_each), the held-out
 * task as an unseen dataset. Each run keeps its last answer: runs meet the
 * same best again across orders and deltas. */
typedef struct SimProb {
    const Ranker *r;
    const RankerRun *runs; /* the held-out task's */
    int maxep;
    int *cached_best;      /* (n), -1: none yet */
    double *cached;        /* (n, maxep) */
} SimProb;

static int sim_prob(void *ctx, int run, int best, double *p, XErr *e)
{
    SimProb *sp = ctx;
    RankerRun a = sp->runs[run], b = sp->runs[best];
    double *c = sp->cached + (size_t)run * sp->maxep;
    int rc;
    if (sp->cached_best[run] != best) {
        a.dataset = b.dataset = -1;
        if ((rc = ranker_prob_beats_each(sp->r, &a, &b, c, e)))
            return rc;
        sp->cached_best[run] = best;
    }
    memcpy(p, c, (size_t)a.epochs * sizeof *p);
    return XE_OK;
}

/* eval's "how early the curves tell": for k = 1 .. maxep, the Spearman of
 * the accuracy after epoch k with the final one, and of the ranker's score
 * of the runs cut after epoch k (all against T's best run, T unseen); runs
 * of fewer than k epochs are left out. */
static int eval_epoch_spearman(const Ranker *r, const Opts *o, int n, const RankerRun *runs, int maxep, XErr *e)
{
    RankerRun *cut = malloc((size_t)n * sizeof *cut);
    double *acc = malloc((size_t)n * sizeof *acc), *fin = malloc((size_t)n * sizeof *fin);
    double *sc = malloc((size_t)n * sizeof *sc), (*rho)[2] = malloc((size_t)maxep * sizeof *rho);
    float *s = malloc((size_t)n * sizeof *s);
    int rc = XE_OK, best = 0;
    if (!cut || !acc || !fin || !sc || !rho || !s) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    for (int i = 1; i < n; i++)
        if (runs[i].final > runs[best].final)
            best = i;
    for (int k = 1; k <= maxep; k++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (runs[i].epochs >= k) {
                cut[m] = runs[i];
                cut[m].dataset = -1;
                cut[m].epochs = k;
                cut[m].ref = runs[best].curve;
                cut[m].ref_epochs = runs[best].epochs;
                acc[m] = runs[i].curve[k - 1];
                fin[m++] = runs[i].final;
            }
        if ((rc = ranker_score(r, m, cut, s, e)))
            goto out;
        for (int i = 0; i < m; i++)
            sc[i] = s[i];
        rho[k - 1][0] = m >= 2 ? rank_spearman(acc, fin, m) : NAN;
        rho[k - 1][1] = m >= 2 ? rank_spearman(sc, fin, m) : NAN;
        if (o->json)
            printf("{\"holdout\":\"%s\",\"method\":\"epoch-spearman\",\"epoch\":%d,\"curve\":%.4f,\"ranker\":%.4f,"
                   "\"runs\":%d}\n",
                   o->holdout, k, rho[k - 1][0], rho[k - 1][1], m);
    }
    if (!o->json) {
        printf("\nhow early the curves tell: Spearman with the final accuracy of the accuracy after epoch k (curve)\n"
               "and of the ranker's score of the runs cut there (against the best run)\n%-8s", "epoch");
        for (int k = 1; k <= maxep; k++)
            printf(" %5d", k);
        for (int w = 0; w < 2; w++) {
            printf("\n%-8s", w ? "ranker" : "curve");
            for (int k = 1; k <= maxep; k++)
                printf(" %5.2f", rho[k - 1][w]);
        }
        printf("\n");
    }
out:
    free(cut), free(acc), free(fin), free(sc), free(rho), free(s);
    return rc;
}

/* eval's early-termination rows: T's stored curves (3 epochs or more)
 * trained one after another in R seeded orders, stopped by a ranker fitted
 * on the other tasks' curves at each delta, and by the curve-below-best
 * rule. Nothing when T or the other tasks have no such curves (said on
 * stderr). */
static int eval_ranker(Store *st, const MetaSet *ms, const Opts *o, XErr *e)
{
    CurveSet cs;
    Ranker *r = NULL;
    RankLog log;
    SimProb sp = { 0 };
    SimRun *sim = NULL;
    int *order = NULL, rc, h, nh, others = 0, first;
    char *use = NULL;
    SimResult (*res)[2] = NULL;
    double t0 = xfer_clock();
    if ((rc = curveset_load(st, ms->sp, ms->protocol_hash, 3, &cs, e)))
        return rc;
    h = curveset_task(&cs, o->holdout);
    for (int t = 0; t < cs.ntasks; t++)
        others |= t != h && cs.tasks[t].n >= 2;
    if (h < 0 || cs.tasks[h].n < 2 || !others) {
        fprintf(stderr, "%s: no ranker rows: %s has no two finished runs with curves of 3 epochs or more\n", tool,
                h < 0 || cs.tasks[h].n < 2 ? o->holdout : "no other task");
        goto out;
    }
    /* T's runs are contiguous in cs (task by task) */
    for (first = 0; cs.runs[first].dataset != h; first++)
        ;
    nh = cs.tasks[h].n;
    use = calloc((size_t)cs.ntasks, 1);
    sim = calloc((size_t)nh, sizeof *sim);
    order = malloc((size_t)nh * sizeof *order);
    res = calloc((size_t)o->ndeltas + 1, sizeof *res);
    sp.runs = cs.runs + first;
    for (int i = 0; i < nh; i++)
        if (sp.runs[i].epochs > sp.maxep)
            sp.maxep = sp.runs[i].epochs;
    sp.cached_best = malloc((size_t)nh * sizeof *sp.cached_best);
    sp.cached = malloc((size_t)nh * sp.maxep * sizeof *sp.cached);
    if (!use || !sim || !order || !res || !sp.cached_best || !sp.cached) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    for (int t = 0; t < cs.ntasks; t++)
        use[t] = t != h;
    if ((rc = fit_ranker(&cs, o, use, NULL, 1, &r, &log, e)))
        goto out;
    sp.r = r;
    for (int i = 0; i < nh; i++) {
        sim[i] = (SimRun){ sp.runs[i].epochs, sp.runs[i].final, sp.runs[i].curve };
        sp.cached_best[i] = -1;
    }
    for (int rep = 0; rep < o->repeats; rep++) {
        Rng g;
        rng_seed(&g, (uint64_t)o->seed * 7919u + (uint64_t)rep + 17);
        for (int i = 0; i < nh; i++)
            order[i] = i;
        rng_shuffle_u32(&g, (uint32_t *)order, (uint32_t)nh);
        for (int d = 0; d <= o->ndeltas; d++) {
            SimResult one;
            if ((rc = early_stop_simulate(nh, sim, order, d < o->ndeltas ? SIM_RANKER : SIM_CURVE,
                                          d < o->ndeltas ? o->deltas[d] : 0, (int)o->min_epochs, sim_prob, &sp, &one,
                                          e)))
                goto out;
            res[d][0].time_saved += one.time_saved / o->repeats;
            res[d][0].regret += one.regret / o->repeats;
            res[d][0].stopped += one.stopped / o->repeats;
            /* the worst order */
            if (!rep || one.regret > res[d][1].regret)
                res[d][1] = one;
        }
    }
    if (!o->json)
        printf("\nearly termination: %d runs of '%s' (curves of up to %d epochs) trained one after another in %ld"
               " orders, ranker fitted on %d other tasks (pairs ordered right %.1f%%), decisions from epoch %ld\n"
               "%-16s %7s %10s %10s %8s %11s\n",
               nh, o->holdout, cs.tasks[h].epochs, o->repeats, cs.ntasks - 1, 100 * log.acc, o->min_epochs,
               "method", "delta", "time_saved", "regret_pp", "stopped", "worst_regret");
    for (int d = 0; d <= o->ndeltas; d++) {
        const char *method = d < o->ndeltas ? "ranker" : "curve-below-best";
        char delta[32] = "null";
        if (d < o->ndeltas)
            snprintf(delta, sizeof delta, "%g", o->deltas[d]);
        if (o->json)
            printf("{\"holdout\":\"%s\",\"method\":\"%s\",\"delta\":%s,\"time_saved\":%.3f,\"regret\":%.4f,"
                   "\"stopped\":%.4f,\"worst_regret\":%.4f,\"min_epochs\":%ld,\"runs\":%d,\"draws\":%ld}\n",
                   o->holdout, method, delta, res[d][0].time_saved, res[d][0].regret, res[d][0].stopped,
                   res[d][1].regret, o->min_epochs, nh, o->repeats);
        else
            printf("%-16s %7s %9.2fx %10.3f %7.1f%% %11.3f\n", method, d < o->ndeltas ? delta : "-",
                   res[d][0].time_saved, res[d][0].regret, 100 * res[d][0].stopped, res[d][1].regret);
    }
    if ((rc = eval_epoch_spearman(r, o, nh, sp.runs, sp.maxep, e)))
        goto out;
    fprintf(stderr, "%s: early termination of '%s' took %.1f s\n", tool, o->holdout, xfer_clock() - t0);
out:
    ranker_free(r);
    free(use), free(sim), free(order), free(res);
    free(sp.cached_best), free(sp.cached);
    curveset_free(&cs);
    return rc;
}

static int cmd_eval(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_SPACE,  O_PROTOCOL, O_HOLDOUT,    O_K,         O_REPEATS,        O_EPOCHS,
                                   O_SEED,   O_JSON,     O_MIN_RUNS,   O_NO_RANKER, O_RANKER_STEPS,   O_DELTAS,
                                   O_MIN_EPOCHS, O_RANKER_MEMBERS, 0 };
    Opts o;
    Store st;
    MetaSet ms;
    XferModel *base = NULL;
    int rc = parse_opts(argc, argv, "eval", allowed, &o, e), h, ns = 0, L, nh;
    char *use = NULL;
    int *map = NULL, *hrows = NULL, *src_of = NULL;
    double *truth = NULL, *pred = NULL, *srcacc = NULL, t0 = xfer_clock();
    float *wm = NULL;
    Metrics (*res)[M_COUNT] = NULL;
    if (rc)
        return rc < 0 ? XE_OK : rc;
    if (!o.holdout)
        return usage_error(e, "eval: --holdout T is required");
    if ((rc = store_open(&st, db_path, 0, e)))
        return rc;
    if ((rc = metaset_load(&st, space_find(o.space), o.protocol, (int)o.min_runs, &ms, e))) {
        store_close(&st);
        return rc;
    }
    L = ms.sp->token_len;
    if ((h = metaset_task(&ms, o.holdout)) < 0) {
        rc = xerr_set(e, XE_FAIL, "--holdout: '%s' has fewer than %ld finished %s runs under protocol '%s' (%.12s)",
                      o.holdout, o.min_runs, ms.sp->name, ms.protocol, ms.protocol_hash);
        goto out;
    }
    if (ms.ntasks < 2) {
        rc = xerr_set(e, XE_FAIL, "only one task ('%s') has runs under protocol '%s': nothing to transfer from",
                      o.holdout, ms.protocol);
        goto out;
    }
    nh = ms.tasks[h].n;
    use = calloc((size_t)ms.ntasks, 1);
    map = calloc((size_t)ms.ntasks, sizeof *map);
    hrows = malloc((size_t)nh * sizeof *hrows);
    truth = malloc((size_t)nh * sizeof *truth);
    pred = malloc((size_t)nh * sizeof *pred);
    res = calloc((size_t)o.nks, sizeof *res);
    /* src_of[s * narchs + a]: row of arch a in source s, or -1 */
    src_of = malloc((size_t)ms.ntasks * ms.narchs * sizeof *src_of);
    srcacc = malloc((size_t)ms.ntasks * nh * sizeof *srcacc);
    if (!use || !map || !hrows || !truth || !pred || !res || !src_of || !srcacc) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    for (int t = 0; t < ms.ntasks; t++)
        use[t] = t != h, ns += t != h;
    for (int i = 0; i < ms.ntasks * ms.narchs; i++)
        src_of[i] = -1;
    for (int i = 0, k = 0; i < ms.n; i++) {
        src_of[(size_t)ms.task[i] * ms.narchs + ms.arch[i]] = i;
        if (ms.task[i] == h)
            hrows[k++] = i;
    }
    /* each source's accuracy on the held-out task's archs (its mean where
     * it lacks the arch) */
    for (int s = 0; s < ms.ntasks; s++)
        for (int k = 0; k < nh; k++) {
            int r = src_of[(size_t)s * ms.narchs + ms.arch[hrows[k]]];
            srcacc[(size_t)s * nh + k] = r >= 0 ? ms.acc[r] : ms.tasks[s].mean;
        }
    fprintf(stderr, "%s: holding out '%s' (%d archs); fitting on %d source tasks, protocol '%s' (%.12s)\n", tool,
            o.holdout, nh, ns, ms.protocol, ms.protocol_hash);
    if ((rc = fit_sources(&ms, &o, use, map, &base, 1, e)))
        goto out;
    if (!(wm = calloc((size_t)xfer_ntasks(base) + 1, sizeof *wm))) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    for (int ki = 0; ki < o.nks; ki++)
        if (!o.ks[ki]) {
            if ((rc = eval_weights(&st, &ms, h, map, xfer_ntasks(base), wm, e)))
                goto out;
            break;
        }

    for (int ki = 0; !rc && ki < o.nks; ki++) {
        int k = (int)o.ks[ki], reps = k ? (int)o.repeats : 1;
        if (k > nh - 2) {
            fprintf(stderr, "%s: k = %d leaves fewer than 2 of '%s''s %d archs to rank: skipped\n", tool, k, o.holdout,
                    nh);
            continue;
        }
        for (int rep = 0; !rc && rep < reps; rep++) {
            Rng r;
            int *perm = malloc((size_t)nh * sizeof *perm), ne = nh - k;
            int *ktok = malloc((size_t)(k + 1) * L * sizeof *ktok), *etok = malloc((size_t)ne * L * sizeof *etok);
            float *kacc = malloc((size_t)(k + 1) * sizeof *kacc), *pm = malloc((size_t)ne * sizeof *pm);
            double *et = malloc((size_t)ne * sizeof *et);
            if (!perm || !ktok || !etok || !kacc || !pm || !et) {
                rc = xerr_set(e, XE_FAIL, "out of memory");
                goto rep_done;
            }
            /* the k evaluations: a seeded sample of the held-out task's archs */
            rng_seed(&r, (uint64_t)o.seed * 1000003u + (uint64_t)k * 131u + (uint64_t)rep);
            for (int i = 0; i < nh; i++)
                perm[i] = i;
            for (int i = 0; i < k; i++) {
                int j = i + (int)rng_below(&r, (uint64_t)(nh - i)), t = perm[i];
                perm[i] = perm[j], perm[j] = t;
            }
            for (int i = 0; i < k; i++) {
                memcpy(ktok + (size_t)i * L, ms.tokens + (size_t)ms.arch[hrows[perm[i]]] * L, (size_t)L * sizeof *ktok);
                kacc[i] = ms.acc[hrows[perm[i]]];
            }
            for (int i = 0; i < ne; i++) {
                memcpy(etok + (size_t)i * L, ms.tokens + (size_t)ms.arch[hrows[perm[k + i]]] * L,
                       (size_t)L * sizeof *etok);
                et[i] = ms.acc[hrows[perm[k + i]]];
            }
            /* xfer: g_u alone at k = 0, else the target residual (g_u frozen
             * and lightly tuned) */
            for (int mth = M_XFER; !rc && mth <= M_XFER_TUNE; mth++) {
                XferModel *m = NULL;
                int task = -1;
                double mean, sd;
                if (k == 0 && mth == M_XFER_TUNE)
                    break;
                if ((rc = xfer_clone(&m, base, e)))
                    break;
                if (k > 0)
                    rc = metaset_fit_target(m, k, ktok, kacc, mth == M_XFER, &mean, &sd, &task, e);
                if (!rc)
                    rc = xfer_predict(m, task, ne, etok, pm, NULL, e);
                xfer_free(m);
                for (int i = 0; !rc && i < ne; i++)
                    pred[i] = pm[i];
                if (!rc)
                    metrics_add(&res[ki][mth], pred, et, ne);
            }
            /* zero-shot with the sources' residuals weighted by dataset similarity */
            if (!rc && k == 0 && !(rc = xfer_predict_weighted(base, wm, ne, etok, pm, NULL, e))) {
                for (int i = 0; i < ne; i++)
                    pred[i] = pm[i];
                metrics_add(&res[ki][M_XFER_W], pred, et, ne);
            }
            /* a surrogate on the k evaluations alone */
            if (!rc && k >= 5) {
                XferModel *m = NULL;
                XferConfig c;
                int *zero = calloc((size_t)k, sizeof *zero);
                float *ky = malloc((size_t)k * sizeof *ky);
                double s = 0, ss = 0;
                for (int i = 0; i < k; i++)
                    s += kacc[i];
                s /= k;
                for (int i = 0; i < k; i++)
                    ss += (kacc[i] - s) * (kacc[i] - s);
                ss = sqrt(ss / (k - 1));
                for (int i = 0; zero && ky && i < k; i++)
                    ky[i] = (float)((kacc[i] - s) / (ss > 1e-12 ? ss : 1));
                config_for(&ms, &o, &c);
                /* as many optimiser steps as the source fit takes, at most */
                c.batch = k;
                if (!zero || !ky)
                    rc = xerr_set(e, XE_FAIL, "out of memory");
                if (!rc && !(rc = xfer_new(&m, &c, e)) && !(rc = xfer_fit(m, 1, k, zero, ktok, ky, NULL, NULL, e)) &&
                    !(rc = xfer_predict(m, 0, ne, etok, pm, NULL, e))) {
                    for (int i = 0; i < ne; i++)
                        pred[i] = pm[i];
                    metrics_add(&res[ki][M_TARGET_ONLY], pred, et, ne);
                }
                xfer_free(m);
                free(zero), free(ky);
            }
            /* single sources: chosen by agreement with the k evaluations
             * (k >= 3), else by agreement with the other sources; and the
             * best in hindsight (an upper bound, not a method) */
            if (!rc) {
                int pick = -1, best = -1;
                double pick_score = -INFINITY, best_score = -INFINITY;
                double *kv = malloc((size_t)(k + 1) * sizeof *kv), *sv = malloc((size_t)(nh + 1) * sizeof *sv);
                for (int s = 0; kv && sv && s < ms.ntasks; s++) {
                    double sc = 0, rho;
                    if (s == h)
                        continue;
                    if (k >= 3) {
                        for (int i = 0; i < k; i++)
                            kv[i] = kacc[i], sv[i] = srcacc[(size_t)s * nh + perm[i]];
                        sc = rank_spearman(sv, kv, k);
                    } else {
                        for (int s2 = 0; s2 < ms.ntasks; s2++)
                            if (s2 != h && s2 != s)
                                sc += rank_spearman(srcacc + (size_t)s * nh, srcacc + (size_t)s2 * nh, nh);
                    }
                    if (isnan(sc))
                        sc = -2;
                    if (sc > pick_score)
                        pick_score = sc, pick = s;
                    for (int i = 0; i < ne; i++)
                        sv[i] = srcacc[(size_t)s * nh + perm[k + i]];
                    rho = rank_spearman(sv, et, ne);
                    if (rho > best_score)
                        best_score = rho, best = s;
                }
                for (int w = 0; kv && sv && w < 2; w++) {
                    int s = w ? best : pick;
                    if (s < 0)
                        continue;
                    for (int i = 0; i < ne; i++)
                        sv[i] = srcacc[(size_t)s * nh + perm[k + i]];
                    metrics_add(&res[ki][w ? M_SOURCE_ORACLE : M_SOURCE], sv, et, ne);
                }
                if (!kv || !sv)
                    rc = xerr_set(e, XE_FAIL, "out of memory");
                free(kv), free(sv);
            }
            if (!rc) {
                for (int i = 0; i < ne; i++)
                    pred[i] = ms.params[ms.arch[hrows[perm[k + i]]]];
                metrics_add(&res[ki][M_PARAMS], pred, et, ne);
                for (int i = 0; i < ne; i++)
                    pred[i] = ms.flops[ms.arch[hrows[perm[k + i]]]];
                metrics_add(&res[ki][M_FLOPS], pred, et, ne);
            }
        rep_done:
            free(perm), free(ktok), free(etok), free(kacc), free(pm), free(et);
        }
    }
    if (rc)
        goto out;
    if (!o.json)
        printf("held out: %s (%d archs), %d source tasks, protocol '%s' (%.12s); means over %ld draws of the k "
               "evaluations\n%-14s %4s %8s %8s %8s %8s\n",
               o.holdout, nh, ns, ms.protocol, ms.protocol_hash, o.repeats, "method", "k", "spearman", "kendall",
               "top5%", "top10%");
    for (int ki = 0; ki < o.nks; ki++)
        for (int mth = 0; mth < M_COUNT; mth++) {
            Metrics *m = &res[ki][mth];
            if (!m->reps)
                continue;
            if (o.json)
                printf("{\"holdout\":\"%s\",\"method\":\"%s\",\"k\":%ld,\"spearman\":%.4f,\"kendall\":%.4f,"
                       "\"top5pct\":%.4f,\"top10pct\":%.4f,\"draws\":%d}\n",
                       o.holdout, method_names[mth], o.ks[ki], m->rho / m->reps, m->tau / m->reps, m->p5 / m->reps,
                       m->p10 / m->reps, m->reps);
            else
                printf("%-14s %4ld %8.3f %8.3f %8.3f %8.3f\n", method_names[mth], o.ks[ki], m->rho / m->reps,
                       m->tau / m->reps, m->p5 / m->reps, m->p10 / m->reps);
        }
    fprintf(stderr, "%s: eval of '%s' took %.1f s\n", tool, o.holdout, xfer_clock() - t0);
    if (!o.no_ranker)
        rc = eval_ranker(&st, &ms, &o, e);
out:
    xfer_free(base);
    free(use), free(map), free(hrows), free(truth), free(pred), free(res), free(src_of), free(srcacc), free(wm);
    metaset_free(&ms);
    store_close(&st);
    return rc;
}

static const CliCommand commands[] = {
    { "fit", cmd_fit },
    { "score", cmd_score },
    { "curves", cmd_curves },
    { "eval", cmd_eval },
};

int main(int argc, char **argv)
{
    return cli_main(tool, usage, commands, sizeof commands / sizeof *commands, store_default_path, &db_path, argc,
                    argv);
}
