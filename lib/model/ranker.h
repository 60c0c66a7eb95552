/* LCRankNet: ranks partially trained runs by how their training will end.
 *
 *     s(x) = MLP([ arch code, curve state, dataset embedding ])
 *     p(i beats j) = sigmoid(s_i - s_j)
 *
 * The arch code comes from the run's tokens through an embedding and an
 * LSTM encoder (as in xfer.h), the curve state from a small LSTM over the
 * epochs seen so far (its hidden state after the last one), the dataset
 * embedding from a learned table. Training minimises the pairwise
 * cross-entropy on pairs of runs of the same dataset drawn from stored
 * curves, each cut at a random length: label 1 when the first run's final
 * score is higher, 0 when lower, 1/2 on ties. Early termination asks
 * p(run so far beats the best run) (ranker_prob_beats, or ranker_p of
 * their scores) and stops the run when it is low.
 *
 * The curve enters relative to a reference curve of the same dataset,
 * (curve - reference) * curve_scale epoch by epoch: accuracies of tasks of
 * different difficulty lie at different levels, while the gaps between
 * runs of one task are alike across tasks. Training takes the dataset's
 * best run as the reference of both runs of a pair; early termination
 * takes the best run it compares with. Half the training pairs see the
 * mean dataset embedding instead of their own (the one an unseen dataset
 * gets): with its own embedding and the arch code, the network can learn
 * each source task's ranking by heart and ignore the curve.
 *
 * Deterministic for a config and data, as xfer.h. */
#ifndef XFER_MODEL_RANKER_H
#define XFER_MODEL_RANKER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define RANKER_MAX_MEMBERS 16
/* Member m of an ensemble is fitted and scores exactly as a one-member
 * ranker of seed + m * RANKER_MEMBER_SEED_STEP would. */
#define RANKER_MEMBER_SEED_STEP 0x632be59bd9b4e019ull

typedef struct RankerConfig {
    int token_len, vocab;    /* the space's encoding */
    int embed, arch_hidden;  /* token embedding, arch LSTM width */
    int curve_dim;           /* features per epoch (e.g. valid accuracy, train loss) */
    int curve_hidden;        /* curve LSTM width */
    int ds_embed;            /* dataset embedding width */
    float curve_scale;       /* curve features: (curve - reference) * curve_scale */
    int mlp, mlp_depth;      /* the score MLP */
    float lr, wd, clip;      /* Adam, cosine decay over the steps */
    int steps, batch;        /* training steps of `batch` pairs */
    int members;             /* an ensemble: members fitted alike from their own seeds; the score is their mean */
    uint64_t seed;
} RankerConfig;

/* embed 16, arch_hidden 32, curve_dim as given, curve_hidden 16,
 * ds_embed 8, curve_scale 20, MLP 2 x 64, lr 1e-2, wd 1e-4, clip 5, 2000 steps of 64
 * pairs, one member, seed 1. (Three members gave no better early
 * termination on the project's meta-dataset: bench/RESULTS.md.) */
void ranker_config_default(RankerConfig *c, int token_len, int vocab, int curve_dim);
int ranker_config_check(const RankerConfig *c, XErr *e);

/* One run: its arch, dataset and curve (epochs x curve_dim floats, epoch
 * by epoch). For training, curve is the whole stored curve and final the
 * score that decides who beats whom (e.g. the final validation accuracy);
 * ref is not read. For scoring, curve holds the epochs seen so far (at
 * least one), ref the reference curve (ref_epochs >= 1; past its end, its
 * last epoch), and final is not read; scores compare only among runs given
 * the same reference. dataset -1 (scoring only): a dataset the ranker has
 * not seen, given the mean of the learned embeddings. */
typedef struct RankerRun {
    int dataset;
    const int *tokens;   /* (token_len) */
    const float *curve;  /* (epochs, curve_dim) */
    int epochs;
    float final;
    const float *ref;    /* scoring: the reference curve (ref_epochs, curve_dim) */
    int ref_epochs;
} RankerRun;

typedef struct Ranker Ranker;

int ranker_new(Ranker **out, const RankerConfig *c, XErr *e);
void ranker_free(Ranker *r);
const RankerConfig *ranker_config(const Ranker *r);
int ranker_ndatasets(const Ranker *r);

/* Progress: mean pairwise loss and pair accuracy over the last `every`
 * steps; a non-zero return stops the fit with that status (set e). */
typedef int (*RankerStepFn)(void *ctx, int step, int steps, double loss, double acc, XErr *e);

/* Fits from scratch on runs of ndatasets datasets (datasets 0 .. ndatasets-1,
 * each with at least two runs for pairs to come from), member after member.
 * fn (may be NULL) is called every `every` steps of a member, with steps
 * counted over all members. */
int ranker_fit(Ranker *r, int ndatasets, int nruns, const RankerRun *runs, RankerStepFn fn, int every, void *ctx,
               XErr *e);

/* Scores s of n runs at the epochs they hold. */
int ranker_score(const Ranker *r, int n, const RankerRun *runs, float *scores, XErr *e);
/* sigmoid(s - s_best): p(a run of score s beats one of score s_best). */
double ranker_p(float s, float s_best);
/* p(run beats best) = sigmoid(s(run) - s(best)), each at the epochs it
 * holds (best usually complete), both with best's curve as the reference
 * (their own ref is not read). */
int ranker_prob_beats(const Ranker *r, const RankerRun *run, const RankerRun *best, double *p, XErr *e);
/* The same for run cut after each of its epochs: p[k - 1] after k epochs,
 * k = 1 .. run->epochs. */
int ranker_prob_beats_each(const Ranker *r, const RankerRun *run, const RankerRun *best, double *p, XErr *e);

/* A versioned blob ("XFERRANK", format version, config, dataset count,
 * parameters, CRC-32), checked on load as xfer_load checks its own.
 * Format 3 (members); format 2 (curve_scale, relative curves) loads as one
 * member; format 1 blobs are refused with a request to refit. */
int ranker_save(const Ranker *r, void **buf, size_t *len, XErr *e);
int ranker_load(Ranker **out, const void *buf, size_t len, XErr *e);

#endif
