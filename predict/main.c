/* xfer-predict: fits the XferNAS transfer predictor on the meta-dataset in
 * the store, scores architectures for a task with few or no evaluations on
 * it, and reports how well that works with one task held out.
 * To add a command: write cmd_NAME(argc, argv, e) and list it in commands[]. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cli.h"
#include "core/config.h"
#include "core/rng.h"
#include "db/store.h"
#include "model/metaset.h"
#include "model/models.h"
#include "model/xfer.h"
#include "space/space.h"

static const char *const tool = "xfer-predict";

static const char usage[] =
    "usage: xfer-predict [--db PATH] COMMAND [OPTIONS]\n"
    "\n"
    "  fit --space S [--sources A,B,...] [--target T] [--protocol P]\n"
    "      [--epochs N] [--ensemble K] [--seed S] [--min-runs M] [--json]\n"
    "      fit the transfer predictor (universal part on the source tasks,\n"
    "      a residual per task; with --target, also the target's residual\n"
    "      on its evaluations) and store it; prints a summary\n"
    "  score --dataset T [--space S] [--model ID] [--sample N [--seed S]]\n"
    "        [--top K]\n"
    "      add \"pred\" and \"pred_std\" (predicted validation accuracy) to\n"
    "      the arch records on stdin (other fields kept), or to N sampled\n"
    "      archs; --top K prints the best K only, best first. T's residual\n"
    "      is used when the model has one, else fitted on T's evaluations in\n"
    "      the store, else the universal part alone (zero-shot)\n"
    "  eval --holdout T [--space S] [--protocol P] [--k 0,5,10,20,50]\n"
    "       [--repeats R] [--epochs N] [--seed S] [--json]\n"
    "      leave-one-dataset-out: fit on every task but T, then rank T's\n"
    "      archs from k of its evaluations; Spearman, Kendall tau and the\n"
    "      precision of the predicted top 5% and 10%, against params,\n"
    "      FLOPs, the best single source task and a surrogate fitted on\n"
    "      the k evaluations alone\n"
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

typedef struct Opts {
    const char *space, *target, *protocol, *dataset, *holdout;
    char **sources;
    int nsources;
    long epochs, ensemble, seed, min_runs, sample, top, repeats, model;
    int json, seed_set;
    long ks[16];
    int nks;
} Opts;

enum {
    O_SPACE = 256, O_SOURCES, O_TARGET, O_PROTOCOL, O_EPOCHS, O_ENSEMBLE, O_SEED, O_MIN_RUNS, O_JSON, O_DATASET,
    O_MODEL, O_SAMPLE, O_TOP, O_HOLDOUT, O_K, O_REPEATS, O_HELP
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
    { "help", no_argument, 0, O_HELP },               { 0, 0, 0, 0 },
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
    memcpy(o->ks, kdef, sizeof kdef);
    o->nks = 5;
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
        case O_K: {
            char **ks;
            int n;
            if ((rc = cli_split("--k", optarg, &ks, &n, e)))
                break;
            if (n > 16)
                rc = xerr_set(e, XE_USAGE, "--k: at most 16 values");
            for (int i = 0; !rc && i < n; i++)
                rc = cli_long("--k", ks[i], 0, 1L << 20, &o->ks[i], e);
            o->nks = n;
            cli_free_list(ks, n);
            break;
        }
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

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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

static int cmd_fit(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_SPACE, O_SOURCES, O_TARGET, O_PROTOCOL, O_EPOCHS, O_ENSEMBLE,
                                   O_SEED,  O_MIN_RUNS, O_JSON, 0 };
    Opts o;
    Store st;
    MetaSet ms;
    XferModel *m = NULL;
    char *use = NULL;
    int *map = NULL, rc = parse_opts(argc, argv, "fit", allowed, &o, e), target = -1, ttask = -1;
    double t0 = now_mono(), tmean = 0, tstd = 1;
    int64_t id = 0;
    json_t *fitted = NULL;
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
    fitted = models_fitted_on(&ms, use, map, (uint64_t)o.seed, now_mono() - t0);
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
    if (o.json) {
        json_object_set_new(fitted, "model", json_integer(id));
        json_object_set_new(fitted, "space", json_string(ms.sp->name));
        char *s = json_dumps(fitted, JSON_COMPACT | JSON_SORT_KEYS);
        if (s)
            puts(s);
        free(s);
    } else {
        printf("model %lld: %s, protocol '%s' (%.12s), %zu parameters a member, fitted in %.1f s on\n", (long long)id,
               ms.sp->name, ms.protocol, ms.protocol_hash, xfer_param_count(m), now_mono() - t0);
        for (int t = 0; t < ms.ntasks; t++)
            if (use[t] || t == target)
                printf("  %-24s %6d runs  mean %.4f  std %.4f%s\n", ms.tasks[t].name, ms.tasks[t].n, ms.tasks[t].mean,
                       ms.tasks[t].std, t == target ? "  (target)" : "");
    }
done:
    json_decref(fitted);
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
} Scorer;

static int scorer_for(Store *st, StoredModel *l, const Space *sp, const char *dataset, Scorer *s, XErr *e)
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
    json_array_foreach(tasks, i, t) {
        msum += json_number_value(json_object_get(t, "mean"));
        ssum += json_number_value(json_object_get(t, "std"));
        if (!strcmp(json_string_value(json_object_get(t, "name")) ?: "", dataset)) {
            *s = (Scorer){ (int)json_integer_value(json_object_get(t, "task")),
                           json_number_value(json_object_get(t, "mean")), json_number_value(json_object_get(t, "std")),
                           "source task" };
            return XE_OK;
        }
    }
    if (target && !strcmp(json_string_value(json_object_get(target, "name")) ?: "", dataset) &&
        json_integer_value(json_object_get(target, "task")) >= 0) {
        *s = (Scorer){ (int)json_integer_value(json_object_get(target, "task")),
                       json_number_value(json_object_get(target, "mean")),
                       json_number_value(json_object_get(target, "std")), "target residual" };
        return XE_OK;
    }
    /* the dataset's own evaluations under the model's protocol, if any */
    {
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
    {
        size_t nt = json_array_size(tasks);
        *s = (Scorer){ -1, nt ? msum / (double)nt : 0, nt ? ssum / (double)nt : 1, "zero-shot" };
    }
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
        if (xfer_predict(l->m, s->task, m, tok, mean, std, e))
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
    static const int allowed[] = { O_SPACE, O_DATASET, O_MODEL, O_SAMPLE, O_SEED, O_TOP, 0 };
    Opts o;
    Store st;
    StoredModel l = { 0 };
    Scorer s;
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
    if ((rc = models_load(&st, sp->name, o.model, &l, e)) || (rc = scorer_for(&st, &l, sp, o.dataset, &s, e)))
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
    stored_model_release(&l);
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

enum { M_XFER, M_XFER_TUNE, M_TARGET_ONLY, M_SOURCE, M_SOURCE_ORACLE, M_PARAMS, M_FLOPS, M_COUNT };
static const char *const method_names[M_COUNT] = {
    "xfer", "xfer-tuned", "target-only", "best-source", "source-oracle", "params", "flops",
};

static int cmd_eval(int argc, char **argv, XErr *e)
{
    static const int allowed[] = { O_SPACE, O_PROTOCOL, O_HOLDOUT, O_K, O_REPEATS, O_EPOCHS, O_SEED, O_JSON,
                                   O_MIN_RUNS, 0 };
    Opts o;
    Store st;
    MetaSet ms;
    XferModel *base = NULL;
    int rc = parse_opts(argc, argv, "eval", allowed, &o, e), h, ns = 0, L, nh;
    char *use = NULL;
    int *map = NULL, *hrows = NULL, *src_of = NULL;
    double *truth = NULL, *pred = NULL, *srcacc = NULL, t0 = now_mono();
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
    fprintf(stderr, "%s: eval of '%s' took %.1f s\n", tool, o.holdout, now_mono() - t0);
out:
    xfer_free(base);
    free(use), free(map), free(hrows), free(truth), free(pred), free(res), free(src_of), free(srcacc);
    metaset_free(&ms);
    store_close(&st);
    return rc;
}

static const CliCommand commands[] = {
    { "fit", cmd_fit },
    { "score", cmd_score },
    { "eval", cmd_eval },
};

int main(int argc, char **argv)
{
    return cli_main(tool, usage, commands, sizeof commands / sizeof *commands, store_default_path, &db_path, argc,
                    argv);
}
