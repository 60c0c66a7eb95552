/* The meta-dataset as the predictors see it: the finished runs of one
 * space and one protocol, averaged over seeds per (dataset, arch), with
 * each arch's tokens, params and FLOPs; targets normalised per task.
 * Also the rank statistics the predictors are judged by. */
#ifndef XFER_MODEL_METASET_H
#define XFER_MODEL_METASET_H

#include <stdint.h>

#include "core/err.h"
#include "db/store.h"
#include "model/xfer.h"
#include "space/space.h"

typedef struct MetaTask {
    char name[128];
    int64_t dataset_id;
    int n;             /* rows of this task */
    double mean, std;  /* of its accuracies (std > 0: 1 when they are all equal) */
} MetaTask;

typedef struct MetaSet {
    const Space *sp;
    char protocol[128];     /* name */
    char protocol_hash[65];
    int ntasks;
    MetaTask *tasks;
    int narchs;             /* distinct archs over all tasks */
    int n;                  /* rows: one per (task, arch) */
    int *task;              /* (n) */
    int *arch;              /* (n) index into the arch tables below */
    float *acc;             /* (n) final validation accuracy, mean over seeds */
    float *y;               /* (n) (acc - task mean) / task std */
    int *tokens;            /* (narchs, token_len) */
    char **arch_str;        /* (narchs) canonical strings */
    double *params, *flops; /* (narchs) at the protocol's macro */
} MetaSet;

/* Loads the done runs of space sp under a protocol (name or hash prefix;
 * NULL or "": the protocol with the most done runs in the space). Only
 * datasets with at least min_runs archs are kept. Fails with a clear
 * message when nothing is left ("no finished nb201 runs in 'x.db'"). */
int metaset_load(Store *st, const Space *sp, const char *protocol, int min_runs, MetaSet *ms, XErr *e);
void metaset_free(MetaSet *ms);
/* The protocol runs of space sp are read under: by name or hash prefix
 * (want), or (want NULL or "") the one with the most done runs; *id, its
 * name and hash out. Fails naming what is missing, or XE_USAGE when a name
 * matches several recipes. */
int metaset_protocol(Store *st, const Space *sp, const char *want, int64_t *id, char name[128], char hash[65],
                     XErr *e);
/* Task index by name, -1 if absent. */
int metaset_task(const MetaSet *ms, const char *name);

/* Fits a new transfer predictor (config c) on the tasks flagged in use[]
 * (the sources), re-indexed in task order: map[t] is task t's index in the
 * model or -1. At least 50 runs are needed ("the meta-dataset is too
 * small: ..."). fn may be NULL. */
int metaset_fit(const MetaSet *ms, const char *use, int *map, const XferConfig *c, XferEpochFn fn, void *ctx,
                XferModel **m, XErr *e);
/* Task t's rows: tokens (n, token_len) and accuracies (n); caller frees. */
int metaset_task_rows(const MetaSet *ms, int t, int **tokens, float **acc, int *n, XErr *e);
/* Adds a task to m from n evaluations (tokens, raw accuracies), normalised
 * by their own mean and std (returned; std 1 when n < 2 or they are all
 * equal), g_u frozen or lightly tuned; *task is its index. */
int metaset_fit_target(XferModel *m, int n, const int *tokens, const float *acc, int freeze, double *mean,
                       double *std, int *task, XErr *e);

/* Rank statistics of predictions p against truths t (n values):
 * Spearman's rho (average ranks for ties), Kendall's tau-b, and the
 * precision of the predicted top q (fraction 0-1, at least one arch):
 * the share of the predicted best ceil(q n) that are among the true best
 * ceil(q n). NaN when n < 2 or a side is constant (rho, tau). */
double rank_spearman(const double *p, const double *t, int n);
double rank_kendall(const double *p, const double *t, int n);
double rank_top_precision(const double *p, const double *t, int n, double q);

#endif
