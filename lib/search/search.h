/* Architecture search for a target task (xfer-search): the optimizers
 * (XferNAS transfer, NAO on the target alone, regularized evolution,
 * random search) behind one ask-next interface, the pools they propose
 * from, simulated searches over recorded accuracies, the search loop over
 * the store with its two evaluators, and the optimizer benchmark.
 *
 * An optimizer is a pure function of its config and the history: the
 * next proposal depends only on (config, steps so far), its random numbers
 * derive from (seed, step number). So a search killed at any point and
 * resumed from its recorded steps proposes exactly what it would have. */
#ifndef XFER_SEARCH_H
#define XFER_SEARCH_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "db/store.h"
#include "meta/meta.h"
#include "model/xfer.h"
#include "space/space.h"

/* ---- optimizers (optim.c) ---- */

typedef enum SearchOptimizer {
    SEARCH_XFER,   /* the universal predictor plus a residual fitted on the target's evaluations */
    SEARCH_NAO,    /* the same predictor fitted on the target's evaluations alone */
    SEARCH_REA,    /* regularized evolution */
    SEARCH_RANDOM, /* uniform samples */
    SEARCH_NOPT
} SearchOptimizer;

extern const char *const search_optimizer_names[SEARCH_NOPT]; /* "xfer", "nao", "rea", "random" */
/* -1 for an unknown name. */
int search_optimizer_find(const char *name);

/* What may be proposed: any cell of the space (table NULL) or the cells of
 * a table (the archs with recorded accuracies), in both cases only those
 * within the constraints at the macro. */
typedef struct SearchPool {
    const Space *sp;
    SpaceMacro macro;     /* params and FLOPs are counted at this network */
    uint64_t max_params, max_flops; /* 0: no limit */
    int n;                /* table: feasible cells; 0 in space mode */
    SpaceArch *archs;     /* (n) */
    int *src;             /* (n) each cell's row in the table it came from */
    double *params, *flops; /* (n) */
    uint64_t *slot;       /* open-addressing set: space index + 1 per slot, 0 empty */
    int *slot_pos;        /* position in archs of each slot */
    uint64_t nslot;       /* a power of two */
} SearchPool;

/* Space mode. Fails with "no <space> cell satisfies --max-params P ..."
 * when the constraints exclude every cell (nb201: checked over all cells;
 * darts: over 20,000 samples). */
int search_pool_space(SearchPool *p, const Space *sp, const SpaceMacro *m, uint64_t max_params, uint64_t max_flops,
                      XErr *e);
/* Table mode over n cells given as tokens (n, sp->token_len); the
 * infeasible ones are left out; fails when none is left ("none of the 200
 * recorded cells satisfies --max-params P (the smallest has ...)"). */
int search_pool_table(SearchPool *p, const Space *sp, const SpaceMacro *m, uint64_t max_params, uint64_t max_flops,
                      int n, const int *tokens, XErr *e);
void search_pool_release(SearchPool *p);
/* Position of a cell in the table (-1: not in it; space mode: -1). */
int search_pool_find(const SearchPool *p, const SpaceArch *a);
/* Whether a cell may be proposed (in the table when there is one, within
 * the constraints); its cost out. */
int search_pool_allows(const SearchPool *p, const SpaceArch *a, SpaceCost *cost);

/* One evaluation of a search. */
typedef struct SearchStep {
    SpaceArch arch;
    double pred, pred_std; /* predicted validation accuracy; NAN: none */
    double acc;            /* observed; NAN: failed (or not yet known) */
    double params, flops;
    int64_t run_id;        /* 0: none */
    int terminated;        /* its run was stopped early: acc is its last validation accuracy, an
                            * observation the optimizers see but never the best (nor on a front) */
} SearchStep;

typedef struct SearchConfig {
    SearchOptimizer opt;
    uint64_t seed;
    int multi;          /* objectives accuracy and FLOPs (a random trade-off weight each step) */
    int population;     /* rea: population, the newest evaluations (10) */
    int tournament;     /* rea: sample the parent is the best of (3) */
    int init;           /* nao: random evaluations before its first model (5); rea: the first population */
    int candidates;     /* xfer, nao: unseen cells ranked each step besides the proposals (1000) */
    int parents;        /* xfer, nao: best evaluated cells the gradient steps and mutations start from (5) */
    double explore;     /* xfer, nao: chance of a random candidate instead of the best predicted (0.1) */
    const XferModel *universal; /* xfer: fitted on the source tasks (only read) */
    double zs_mean, zs_std;     /* xfer: accuracy scale of g_u before the target has evaluations */
    int nao_epochs;     /* nao: epochs of each fit on the target's evaluations (200) */
} SearchConfig;

void search_config_default(SearchConfig *c, SearchOptimizer opt, uint64_t seed);

typedef struct Searcher Searcher;

int searcher_new(Searcher **s, const SearchConfig *c, const SearchPool *pool, XErr *e);
void searcher_free(Searcher *s);
/* The next cell to evaluate after the history h[0 .. n) (every entry counts
 * as seen, failed ones too): out->arch, pred, pred_std (NAN for rea and
 * random), params, flops; acc NAN, run_id 0. Never a seen cell, never one
 * the pool does not allow. XE_FAIL "every cell ... was evaluated" when
 * nothing is left. */
int searcher_next(Searcher *s, const SearchStep *h, int n, SearchStep *out, XErr *e);

/* A search against a table without the store: acc[i] is the accuracy of
 * the pool's table row i (indexed like the tokens given to
 * search_pool_table); best (budget) gets the best accuracy after each
 * evaluation. Stops early (the rest of best repeating the last value) when
 * the pool is exhausted; *done the evaluations made (may be NULL). */
int search_simulate(const SearchConfig *c, const SearchPool *pool, const float *acc, int budget, double *best,
                    int *done, XErr *e);

/* The Pareto front (accuracy up, FLOPs down) of the evaluated steps
 * (those with an accuracy, not terminated early): indices into h,
 * ascending FLOPs; returns their count (idx needs n). */
int search_pareto(const SearchStep *h, int n, int *idx);

/* ---- the search over the store (run.c) ---- */

typedef enum { SEARCH_EVAL_TABLE, SEARCH_EVAL_TRAIN } SearchEvaluator;

typedef struct SearchRunOpts {
    const char *target;
    const Space *sp;
    const char *protocol;  /* name or hash prefix; NULL: the one with the most finished runs (train:
                            * else the cheap preset) */
    SearchOptimizer opt;
    SearchEvaluator evaluator;
    long budget;           /* evaluations; 0: no limit (then budget_hours is) */
    double budget_hours;   /* > 0: no proposal once the steps' runs have taken this long (the recorded
                            * seconds of their runs: trained, found finished, or looked up); 0: none */
    uint64_t seed;
    uint64_t max_params, max_flops;
    int multi;
    int allow_no_transfer; /* xfer without source tasks: nao instead of a failure */
    int min_runs;          /* archs a source task needs (10) */
    double explore;
    WorkOpts work;         /* the train evaluator's worker (device, threads, lease, ...; only is set here;
                            * work.lease is also the search's own lease, 0: XFER_DEFAULT_LEASE);
                            * work.stop: an early-stop hook (e.g. early_stop_work) that ends hopeless
                            * proposals as terminated-early, described by the two fields below */
    int early_stop;        /* work.stop is set: delta and min_epochs below are part of the search's config */
    double early_delta;
    int early_min_epochs;
    FILE *log;             /* progress lines (NULL: none) */
} SearchRunOpts;

typedef struct SearchOutcome {
    int64_t search_id;
    SearchOptimizer opt;   /* the optimizer used (nao after a fallback) */
    int resumed;           /* steps found in the store */
    int n;
    SearchStep *steps;     /* (n) the whole trajectory */
    char **arch_str;       /* (n) canonical strings */
    char dataset[128];
    const Space *sp;
} SearchOutcome;

/* Finds the unfinished search of the same target, space, optimizer and
 * config (evaluator, protocol hash, seed, budget, budget hours,
 * constraints, objectives, early stop) and continues it, or starts one;
 * runs it to the budget (whichever of the count and the hours ends first),
 * recording every step; marks it done. A finished one is returned as it
 * is. XE_INTR after SIGINT/SIGTERM (the search stays resumable).
 *
 * One process at a time: the search is found or added and held (its row's
 * worker and lease_until, the run queue's worker name and work.lease) in
 * one transaction, the lease renewed with each step and by a heartbeat
 * thread, every step written only while held, and let go when the search
 * ends, fails or is interrupted. A search another live process holds
 * fails at once with XE_FAIL naming the holder and its lease; a holder of
 * this host whose process is gone, or whose lease ran out, is taken over. */
int search_run(Store *st, const SearchRunOpts *o, SearchOutcome *out, XErr *e);
void search_outcome_release(SearchOutcome *o);

/* ---- the optimizer benchmark (bench.c) ---- */

typedef struct SearchBenchOpts {
    const char *target;
    const Space *sp;
    const char *protocol;
    int opts[SEARCH_NOPT]; /* optimizers, in order */
    int nopts;
    int budget, repeats;
    uint64_t seed;
    int min_runs;
    FILE *log;
} SearchBenchOpts;

typedef struct SearchBenchCurve {
    SearchOptimizer opt;
    double *mean_best, *std_best, *mean_regret; /* (budget): after 1 .. budget evaluations */
} SearchBenchCurve;

typedef struct SearchBench {
    char target[128];
    int budget, repeats, ncurves, table_size;
    double best_recorded;    /* the best accuracy recorded for the target */
    SearchBenchCurve curves[SEARCH_NOPT];
    double seconds;
} SearchBench;

/* R seeded searches (seeds seed .. seed + R - 1) per optimizer against
 * the target's recorded accuracies, the universal model fitted once (or
 * found in the models table). A budget above the table's size is cut to
 * it (said on log). */
int search_bench(Store *st, const SearchBenchOpts *o, SearchBench *b, XErr *e);
void search_bench_release(SearchBench *b);
/* CSV (optimizer,evaluations,mean_best,std_best,mean_regret) and an SVG
 * plot of the mean best accuracy against evaluations (a band of one std). */
int search_bench_csv(const SearchBench *b, const char *path, XErr *e);
int search_bench_svg(const SearchBench *b, const char *path, XErr *e);

#endif
