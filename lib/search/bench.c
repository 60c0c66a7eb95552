/* The optimizer benchmark: seeded searches against a target's recorded
 * accuracies, mean and spread of the best found after every evaluation,
 * regret against the best recorded value; CSV and an SVG plot. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "search/target.h"

int search_bench(Store *st, const SearchBenchOpts *o, SearchBench *b, XErr *e)
{
    SearchTarget t;
    SearchPool pool;
    StoredModel sm = { 0 };
    double *best = NULL, *sum = NULL, *sq = NULL, t0 = xfer_clock();
    int rc, need_model = 0;
    memset(b, 0, sizeof *b);
    memset(&pool, 0, sizeof pool);
    if (o->budget < 1)
        return xerr_set(e, XE_USAGE, "--budget: %d: a search needs at least one evaluation", o->budget);
    if (o->repeats < 1 || o->nopts < 1)
        return xerr_set(e, XE_USAGE, "bench: %d repeats of %d optimizers", o->repeats, o->nopts);
    if ((rc = search_target_open(st, o->target, o->sp, o->protocol, 0, o->min_runs, &t, e)))
        return rc;
    for (int i = 0; i < o->nopts; i++)
        need_model |= o->opts[i] == SEARCH_XFER;
    if (need_model && !t.nsources) {
        rc = search_target_no_sources(&t, o->min_runs, e);
        goto cleanup;
    }
    if ((rc = search_pool_table(&pool, o->sp, &t.macro, 0, 0, t.tn, t.ttok, e)) ||
        (need_model && (rc = search_target_universal(st, &t, o->log, &sm, e))))
        goto cleanup;
    snprintf(b->target, sizeof b->target, "%s", o->target);
    b->budget = o->budget < pool.n ? o->budget : pool.n;
    b->repeats = o->repeats;
    b->table_size = pool.n;
    b->best_recorded = t.best_recorded;
    if (b->budget < o->budget && o->log)
        fprintf(o->log, "xfer-search: '%s' has %d recorded %s cells: the budget is cut to %d\n", o->target, pool.n,
                o->sp->name, b->budget);
    best = malloc((size_t)o->repeats * b->budget * sizeof *best);
    sum = malloc((size_t)b->budget * sizeof *sum);
    sq = malloc((size_t)b->budget * sizeof *sq);
    if (!best || !sum || !sq) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < o->nopts; i++) {
        SearchBenchCurve *cv = &b->curves[b->ncurves];
        double ts = xfer_clock();
        cv->opt = (SearchOptimizer)o->opts[i];
        cv->mean_best = malloc((size_t)b->budget * sizeof *cv->mean_best);
        cv->std_best = malloc((size_t)b->budget * sizeof *cv->std_best);
        cv->mean_regret = malloc((size_t)b->budget * sizeof *cv->mean_regret);
        b->ncurves++;
        if (!cv->mean_best || !cv->std_best || !cv->mean_regret) {
            rc = xerr_set(e, XE_FAIL, "out of memory");
            goto cleanup;
        }
        memset(sum, 0, (size_t)b->budget * sizeof *sum);
        memset(sq, 0, (size_t)b->budget * sizeof *sq);
        /* the repeats are independent (the universal model is only read):
         * one per thread, summed in order afterwards */
#pragma omp parallel for schedule(dynamic, 1)
        for (int r = 0; r < o->repeats; r++) {
            SearchConfig c;
            XErr re = { 0 };
            search_config_default(&c, cv->opt, o->seed + (uint64_t)r);
            c.universal = sm.m;
            c.zs_mean = t.zs_mean;
            c.zs_std = t.zs_std;
            if (search_simulate(&c, &pool, t.tacc, b->budget, best + (size_t)r * b->budget, NULL, &re))
#pragma omp critical(search_bench_error)
                if (!rc)
                    rc = re.code, *e = re;
        }
        if (rc)
            goto cleanup;
        for (int r = 0; r < o->repeats; r++)
            for (int k = 0; k < b->budget; k++) {
                double v = best[(size_t)r * b->budget + k];
                sum[k] += v, sq[k] += v * v;
            }
        for (int k = 0; k < b->budget; k++) {
            double m = sum[k] / o->repeats, v = o->repeats > 1 ? (sq[k] - o->repeats * m * m) / (o->repeats - 1) : 0;
            cv->mean_best[k] = m;
            cv->std_best[k] = v > 0 ? sqrt(v) : 0;
            cv->mean_regret[k] = b->best_recorded - m;
        }
        if (o->log)
            fprintf(o->log, "xfer-search: %s: %d searches of %d evaluations in %.1f s\n",
                    search_optimizer_names[cv->opt], o->repeats, b->budget, xfer_clock() - ts);
    }
    b->seconds = xfer_clock() - t0;
cleanup:
    if (rc)
        search_bench_release(b);
    free(best), free(sum), free(sq);
    stored_model_release(&sm);
    search_pool_release(&pool);
    search_target_close(&t);
    return rc;
}

void search_bench_release(SearchBench *b)
{
    for (int i = 0; i < b->ncurves; i++)
        free(b->curves[i].mean_best), free(b->curves[i].std_best), free(b->curves[i].mean_regret);
    memset(b, 0, sizeof *b);
}

static int write_done(FILE *f, const char *path, XErr *e)
{
    int bad = ferror(f);
    if (fclose(f) || bad)
        return xerr_set(e, XE_FAIL, "'%s': write failed", path);
    return XE_OK;
}

int search_bench_csv(const SearchBench *b, const char *path, XErr *e)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return xerr_set(e, XE_FAIL, "'%s': cannot write: %s", path, strerror(errno));
    fprintf(f, "optimizer,evaluations,mean_best,std_best,mean_regret\n");
    for (int i = 0; i < b->ncurves; i++)
        for (int k = 0; k < b->budget; k++)
            fprintf(f, "%s,%d,%.6f,%.6f,%.6f\n", search_optimizer_names[b->curves[i].opt], k + 1,
                    b->curves[i].mean_best[k], b->curves[i].std_best[k], b->curves[i].mean_regret[k]);
    return write_done(f, path, e);
}

/* A round step for axis ticks: 1, 2 or 5 times a power of ten. */
static double nice_step(double span, int ticks)
{
    double raw = span / ticks, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

int search_bench_svg(const SearchBench *b, const char *path, XErr *e)
{
    static const char *const colour[SEARCH_NOPT] = { "#d62728", "#ff7f0e", "#2ca02c", "#1f77b4" };
    const double W = 720, H = 450, L = 70, R = 20, T = 40, B = 60, pw = W - L - R, ph = H - T - B;
    double lo = INFINITY, hi = -INFINITY, step;
    int K = b->budget;
    FILE *f;
    for (int i = 0; i < b->ncurves; i++)
        for (int k = 0; k < K; k++) {
            double m = b->curves[i].mean_best[k], s = b->curves[i].std_best[k];
            lo = fmin(lo, m - s), hi = fmax(hi, m + s);
        }
    if (isfinite(b->best_recorded))
        hi = fmax(hi, b->best_recorded);
    if (!(hi > lo))
        lo -= 0.01, hi += 0.01;
    step = nice_step(hi - lo, 5);
    lo = floor(lo / step) * step, hi = ceil(hi / step) * step;
#define X(k) (L + (K > 1 ? pw * ((k) - 1) / (K - 1) : pw / 2))
#define Y(v) (T + ph * (1 - ((v) - lo) / (hi - lo)))
    if (!(f = fopen(path, "w")))
        return xerr_set(e, XE_FAIL, "'%s': cannot write: %s", path, strerror(errno));
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\""
            " font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">best validation accuracy found on"
               " '%s' (mean of %d searches, band: one std)</text>\n",
            W / 2, b->target, b->repeats);
    /* axes, ticks and grid */
    fprintf(f, "<g stroke=\"#444\" fill=\"none\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>\n",
            L, T + ph, L + pw, T + ph, L, T, L, T + ph);
    for (double v = lo; v <= hi + step / 2; v += step)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\""
                   " text-anchor=\"end\">%.3g</text>\n",
                L, Y(v), L + pw, Y(v), L - 6, Y(v) + 4, v);
    {
        double xs = nice_step(K > 1 ? K - 1 : 1, 8);
        xs = xs < 1 ? 1 : xs;
        for (double k = 1; k <= K; k = (k == 1 && xs > 1) ? xs : k + xs)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/><text x=\"%.1f\""
                       " y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n",
                    X(k), T + ph, X(k), T + ph + 5, X(k), T + ph + 20, k);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">evaluations</text>\n", L + pw / 2, H - 15);
    fprintf(f, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">best validation accuracy"
               "</text>\n",
            T + ph / 2);
    if (isfinite(b->best_recorded))
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-dasharray=\"6 4\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">best recorded %.4f</text>\n",
                L, Y(b->best_recorded), L + pw, Y(b->best_recorded), L + pw - 4, Y(b->best_recorded) - 5,
                b->best_recorded);
    /* per optimizer: the band, the mean, a legend entry */
    for (int i = 0; i < b->ncurves; i++) {
        const SearchBenchCurve *c = &b->curves[i];
        const char *col = colour[c->opt];
        fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.15\" stroke=\"none\" points=\"", col);
        for (int k = 0; k < K; k++)
            fprintf(f, "%.1f,%.1f ", X(k + 1), Y(fmin(hi, c->mean_best[k] + c->std_best[k])));
        for (int k = K - 1; k >= 0; k--)
            fprintf(f, "%.1f,%.1f ", X(k + 1), Y(fmax(lo, c->mean_best[k] - c->std_best[k])));
        fprintf(f, "\"/>\n<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (int k = 0; k < K; k++)
            fprintf(f, "%.1f,%.1f ", X(k + 1), Y(c->mean_best[k]));
        fprintf(f, "\"/>\n");
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                L + pw - 110, T + ph - 18.0 * (b->ncurves - i), L + pw - 85, T + ph - 18.0 * (b->ncurves - i), col,
                L + pw - 78, T + ph - 18.0 * (b->ncurves - i) + 4, search_optimizer_names[c->opt]);
    }
#undef X
#undef Y
    fprintf(f, "</svg>\n");
    return write_done(f, path, e);
}
