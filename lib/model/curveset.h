/* Learning curves as the ranker (lib/model/ranker.h) sees them: every done
 * run of one space and protocol with its validation-accuracy curve, task,
 * arch tokens and final validation accuracy, ready for ranker_fit; a run's
 * curve so far; and the best finished run of a dataset, the run early
 * termination compares a partial run with. */
#ifndef XFER_MODEL_CURVESET_H
#define XFER_MODEL_CURVESET_H

#include <stdint.h>

#include "core/err.h"
#include "db/store.h"
#include "model/ranker.h"
#include "space/space.h"

typedef struct CurveTask {
    char name[128];
    int64_t dataset_id;
    int n;       /* runs */
    int epochs;  /* its longest curve */
} CurveTask;

typedef struct CurveSet {
    const Space *sp;
    char protocol[128];  /* name */
    char protocol_hash[65];
    int64_t protocol_id;
    int ntasks;
    CurveTask *tasks;    /* by name */
    int n;               /* runs, task by task */
    int64_t *run_id;     /* (n) */
    RankerRun *runs;     /* (n) dataset: the task index; tokens and curve point into the tables below */
    int *tokens;         /* (n, token_len) */
    float *acc;          /* the curves' validation accuracies, run after run, epoch by epoch */
    long skipped;        /* done runs left out: shorter than min_epochs, a gap, or an epoch without
                            a validation accuracy */
} CurveSet;

/* Loads the done runs of space sp under a protocol (name or hash prefix;
 * NULL or "": the one with the most done runs, as metaset_load) whose
 * curves hold epochs 1 .. k without a gap, k >= min_epochs, each with a
 * validation accuracy. An empty set is not an error (cs->n == 0). */
int curveset_load(Store *st, const Space *sp, const char *protocol, int min_epochs, CurveSet *cs, XErr *e);
void curveset_free(CurveSet *cs);
/* Task index by name, -1 if absent. */
int curveset_task(const CurveSet *cs, const char *name);

/* Fits r from scratch on the runs of the tasks flagged in use (NULL: all),
 * re-indexed in task order: map[t] is task t's embedding index or -1
 * (map may be NULL when use is). Needs a task with two runs. */
int curveset_fit(const CurveSet *cs, const char *use, int *map, Ranker *r, RankerStepFn fn, int every, void *ctx,
                 XErr *e);

/* Run run_id's curve so far: the validation accuracies of epochs 1 .. k up
 * to the first gap or missing value (*epochs = k, may be 0; *acc: caller
 * frees, NULL when k = 0). */
int curve_read(Store *st, int64_t run_id, float **acc, int *epochs, XErr *e);

/* The best finished run of a dataset under a protocol: status done, the
 * highest validation accuracy (the lower id on ties) among those with a
 * curve of at least one epoch. id 0: there is none. */
typedef struct BestRun {
    int64_t id;
    double acc;
    int epochs;
    float *curve;                   /* (epochs) owned */
    int tokens[SPACE_MAX_TOKENS];
} BestRun;

/* Finds it again; the curve and tokens are reloaded only when the best
 * run changed since the last call with this b (zero it before the first). */
int curve_best_run(Store *st, const Space *sp, int64_t dataset_id, int64_t protocol_id, BestRun *b, XErr *e);
void best_run_release(BestRun *b);

#endif
