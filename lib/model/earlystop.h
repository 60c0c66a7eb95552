/* Early termination with the learning-curve ranker (LCRankNet): after an
 * epoch, a run whose probability of ending above the best finished run of
 * its dataset and protocol is below delta is stopped. The probability as
 * xfer-predict curves and the training worker ask for it, the worker's
 * stop hook, and the simulation over stored curves that eval reports. */
#ifndef XFER_MODEL_EARLYSTOP_H
#define XFER_MODEL_EARLYSTOP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "db/store.h"
#include "meta/meta.h"
#include "model/curveset.h"
#include "model/models.h"

typedef struct EarlyStop {
    StoredRanker sr;
    const Space *sp;
    double delta;       /* stop when p(beats best) < delta */
    int min_epochs;     /* decide from this epoch on */
    /* the best run last compared with and its score */
    int64_t dataset_id, protocol_id;
    BestRun best;
    int64_t scored;     /* the best run whose score is in best_score */
    int best_ds;
    float best_score;
    /* the run last decided on (its tokens) */
    int64_t run_id;
    int tokens[SPACE_MAX_TOKENS];
} EarlyStop;

/* Loads ranker model (0: the newest of the space) into es; fails as
 * models_load_ranker does when there is none. */
int early_stop_open(EarlyStop *es, Store *st, const char *space, int64_t model, double delta, int min_epochs,
                    XErr *e);
void early_stop_close(EarlyStop *es);

typedef struct EarlyVerdict {
    int have;          /* 0: no finished run with a curve to compare with */
    double p;          /* p(the run ends above the best) */
    int64_t best_run;
    double best_acc;
} EarlyVerdict;

/* p(a run ends above the best finished run of its dataset and protocol):
 * the run's arch tokens and its validation accuracies so far (epochs >=
 * 1); the dataset by name (the ranker's embedding, or the mean one for a
 * dataset it was not fitted on) and by id. */
int early_stop_prob(EarlyStop *es, Store *st, const char *dataset, int64_t dataset_id, int64_t protocol_id,
                    const int *tokens, const float *curve, int epochs, EarlyVerdict *v, XErr *e);

/* The worker's stop hook (WorkStopFn, ctx an EarlyStop): reads the run's
 * curve so far from the store and stops it (*stop = 1, why set) when, from
 * epoch min_epochs on and before its last epoch, p < delta. Runs of other
 * spaces are never stopped. */
int early_stop_work(void *ctx, Store *st, const RunInfo *ri, int epoch, int epochs, int *stop, char *why,
                    size_t whylen, XErr *e);

/* ---- simulation over stored curves ---- */

typedef struct SimRun {
    int epochs;          /* the whole curve */
    float final;         /* final validation accuracy */
    const float *curve;  /* (epochs) validation accuracies */
} SimRun;

/* SIM_RANKER's probabilities: p[k - 1] = p(run ends above best) after k
 * epochs of run, k = 1 .. its epochs (run and best index the SimRuns). */
typedef int (*SimProbFn)(void *ctx, int run, int best, double *p, XErr *e);

typedef enum {
    SIM_RANKER,  /* stop when prob says p(run so far beats best) < delta */
    SIM_CURVE,   /* stop when the accuracy so far is below the best run's at that epoch */
} SimRule;

typedef struct SimResult {
    double time_saved;  /* epochs of training every run to the end over epochs spent */
    double regret;      /* best final accuracy of all runs minus the best of those trained to the end,
                           percentage points */
    double stopped;     /* share of runs stopped */
} SimResult;

/* Trains runs one after another in order (n indices): the first to the
 * end, each later one until the rule stops it (from epoch min_epochs on,
 * never after its last) against the best run trained to the end so far.
 * prob (SIM_RANKER only; may be NULL for SIM_CURVE) is asked once per run
 * that has a best to compare with; its failure is returned. */
int early_stop_simulate(int n, const SimRun *runs, const int *order, SimRule rule, double delta, int min_epochs,
                        SimProbFn prob, void *ctx, SimResult *res, XErr *e);

#endif
