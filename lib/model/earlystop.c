/* Early termination: the ranker's p(run beats the best finished run), the
 * worker's stop hook, and the simulation over stored curves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/earlystop.h"

int early_stop_open(EarlyStop *es, Store *st, const char *space, int64_t model, double delta, int min_epochs,
                    XErr *e)
{
    memset(es, 0, sizeof *es);
    if (!(es->sp = space_find(space)))
        return xerr_set(e, XE_USAGE, "unknown space '%s' (valid: %s)", space, space_list());
    es->delta = delta;
    es->min_epochs = min_epochs < 1 ? 1 : min_epochs;
    return models_load_ranker(st, space, model, &es->sr, e);
}

void early_stop_close(EarlyStop *es)
{
    stored_ranker_release(&es->sr);
    best_run_release(&es->best);
    memset(es, 0, sizeof *es);
}

int early_stop_prob(EarlyStop *es, Store *st, const char *dataset, int64_t dataset_id, int64_t protocol_id,
                    const int *tokens, const float *curve, int epochs, EarlyVerdict *v, XErr *e)
{
    int ds = stored_ranker_dataset(&es->sr, dataset), rc;
    RankerRun run;
    float s;
    memset(v, 0, sizeof *v);
    if (es->dataset_id != dataset_id || es->protocol_id != protocol_id) {
        best_run_release(&es->best);
        es->scored = 0;
        es->dataset_id = dataset_id;
        es->protocol_id = protocol_id;
    }
    if ((rc = curve_best_run(st, es->sp, dataset_id, protocol_id, &es->best, e)))
        return rc;
    if (!es->best.id)
        return XE_OK;
    /* both with the best run's curve as the reference */
    if (es->scored != es->best.id || es->best_ds != ds) {
        RankerRun b = { ds, es->best.tokens, es->best.curve, es->best.epochs, 0, es->best.curve, es->best.epochs };
        if ((rc = ranker_score(es->sr.r, 1, &b, &es->best_score, e)))
            return rc;
        es->scored = es->best.id;
        es->best_ds = ds;
    }
    run = (RankerRun){ ds, tokens, curve, epochs, 0, es->best.curve, es->best.epochs };
    if ((rc = ranker_score(es->sr.r, 1, &run, &s, e)))
        return rc;
    v->have = 1;
    v->p = ranker_p(s, es->best_score);
    v->best_run = es->best.id;
    v->best_acc = es->best.acc;
    return XE_OK;
}

int early_stop_work(void *ctx, Store *st, const RunInfo *ri, int epoch, int epochs, int *stop, char *why,
                    size_t whylen, XErr *e)
{
    EarlyStop *es = ctx;
    EarlyVerdict v;
    float *curve = NULL;
    int n, rc;
    *stop = 0;
    if (epoch < es->min_epochs || epoch >= epochs || strcmp(ri->space, es->sp->name))
        return XE_OK;
    if (es->run_id != ri->id) {
        SpaceArch a;
        if ((rc = es->sp->parse(ri->arch, &a, e)))
            return rc;
        es->sp->encode(&a, es->tokens);
        es->run_id = ri->id;
    }
    if ((rc = curve_read(st, ri->id, &curve, &n, e)))
        return rc;
    if (n > epoch) /* the decision is the one at `epoch` */
        n = epoch;
    /* a curve without validation accuracies cannot be ranked: it trains on */
    if (n >= 1 && !(rc = early_stop_prob(es, st, ri->dataset, ri->dataset_id, ri->protocol_id, es->tokens, curve,
                                         n, &v, e)) &&
        v.have && v.p < es->delta) {
        *stop = 1;
        snprintf(why, whylen, "p(beats run %lld, valid %.4f) = %.4g < %g at epoch %d of %d", (long long)v.best_run,
                 v.best_acc, v.p, es->delta, epoch, epochs);
    }
    free(curve);
    return rc;
}

int early_stop_simulate(int n, const SimRun *runs, const int *order, SimRule rule, double delta, int min_epochs,
                        SimProbFn prob, void *ctx, SimResult *res, XErr *e)
{
    const SimRun *best = NULL;
    double full = 0, spent = 0, top = -INFINITY, *p = NULL;
    int stopped = 0, maxep = 1, bi = -1, rc;
    memset(res, 0, sizeof *res);
    for (int i = 0; i < n; i++)
        if (runs[i].epochs > maxep)
            maxep = runs[i].epochs;
    if (rule == SIM_RANKER && !(p = malloc((size_t)maxep * sizeof *p)))
        return xerr_set(e, XE_FAIL, "out of memory");
    for (int i = 0; i < n; i++) {
        const SimRun *r = &runs[order[i]];
        int k = r->epochs;
        full += r->epochs;
        if (r->final > top)
            top = r->final;
        if (rule == SIM_RANKER && best && (rc = prob(ctx, order[i], bi, p, e))) {
            free(p);
            return rc;
        }
        for (int ep = min_epochs < 1 ? 1 : min_epochs; best && ep < r->epochs; ep++) {
            int stop;
            if (rule == SIM_RANKER) {
                stop = p[ep - 1] < delta;
            } else {
                int b = ep <= best->epochs ? ep : best->epochs;
                stop = r->curve[ep - 1] < best->curve[b - 1];
            }
            if (stop) {
                k = ep;
                break;
            }
        }
        spent += k;
        if (k < r->epochs)
            stopped++;
        else if (!best || r->final > best->final)
            best = r, bi = order[i];
    }
    free(p);
    res->time_saved = spent > 0 ? full / spent : 1;
    res->regret = best ? 100.0 * (top - best->final) : 0;
    res->stopped = n ? (double)stopped / n : 0;
    return XE_OK;
}
