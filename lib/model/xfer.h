/* The XferNAS transfer predictor on a NAO-style architecture autoencoder.
 *
 * An architecture's tokens (a Space's encode()) go through an embedding and
 * an LSTM encoder to a code h, L2-normalised as NAO does; an LSTM decoder
 * conditioned on h reconstructs the tokens. The score of task i is
 *
 *     f_i(h) = g_u(h) + r_i(h)
 *
 * with g_u an MLP shared by every source task and r_i a small MLP per task
 * (one hidden layer). Training minimises, over mini-batches of (task,
 * tokens, target),
 *
 *     L = alpha * mse(f_task(h), y) + (1 - alpha) * xent(decoder, tokens)
 *         + res_l2 * mean(r_task(h)^2)
 *
 * The last term keeps the residuals small, so what the tasks share is
 * learned by g_u. Targets must already be normalised per task by the
 * caller (e.g. to mean 0 and standard deviation 1 over that task's runs).
 *
 * A new task gets a residual whose output layer starts at zero, so its
 * first prediction is g_u's; xfer_fit_residual fits it on the task's few
 * evaluations with the autoencoder frozen and g_u frozen or lightly tuned.
 *
 * An ensemble of `ensemble` members (whole models from seeds seed,
 * seed + 1, ...) gives pred_std: the members' standard deviation (0 with
 * one member).
 *
 * Everything is deterministic for a config (seed included): the same data
 * give bit-identical models and predictions on a machine (see tape.h for
 * what may differ between machines). A model is not safe to use from two
 * threads at once while one of them fits it; predictions are const. */
#ifndef XFER_MODEL_XFER_H
#define XFER_MODEL_XFER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/layers.h"

typedef struct XferConfig {
    int token_len, vocab;  /* the space's encoding (Space.token_len, .vocab) */
    int embed;             /* token embedding width */
    int hidden;            /* LSTM width = code size */
    SeqCode code;          /* code from the mean or the last hidden state */
    int mlp, mlp_depth;    /* g_u: mlp_depth hidden layers of width mlp */
    int res_hidden;        /* r_i: one hidden layer of this width */
    float alpha;           /* weight of the prediction loss against reconstruction */
    float res_l2;          /* penalty on the residuals' outputs */
    float lr, wd;          /* Adam (cosine decay to 0 over the fit), decoupled weight decay */
    float clip;            /* global gradient-norm limit; 0: off */
    float dropout;         /* on token embeddings and MLP hidden layers while training */
    int epochs, batch;
    int ensemble;          /* members */
    uint64_t seed;
    int threads;           /* members fitted at once; 0: one per core. Results do
                            * not depend on it, and blobs do not keep it */
} XferConfig;

/* Defaults sized for the speed goals (nb201: 50,000 runs fitted in well
 * under a minute on two cores): embed 16, hidden 32, code mean, g_u 2 x 64,
 * residuals 16, alpha 0.8, res_l2 0.1, lr 1e-2, wd 1e-4, clip 5,
 * dropout 0, 20 epochs of batch 128, one member, seed 1, threads 0. */
void xfer_config_default(XferConfig *c, int token_len, int vocab);
/* XE_USAGE naming the first field out of range ("xfer config: hidden 0 is
 * out of range (1-1024)"). */
int xfer_config_check(const XferConfig *c, XErr *e);

typedef struct XferModel XferModel;

/* A model with the config (checked) and no tasks; it predicts only after
 * xfer_fit (or xfer_load). */
int xfer_new(XferModel **out, const XferConfig *c, XErr *e);
void xfer_free(XferModel *m);
const XferConfig *xfer_config(const XferModel *m);
int xfer_ntasks(const XferModel *m);
/* Learned floats per member. */
size_t xfer_param_count(const XferModel *m);

/* What one epoch of a member's fit did (means over its mini-batches). */
typedef struct XferEpoch {
    int member, epoch, epochs;  /* epoch is 1-based */
    double loss_pred;           /* mse of f_task against the targets */
    double loss_rec;            /* reconstruction cross-entropy */
    double rec_acc;             /* tokens reconstructed right (teacher forcing) */
    double seconds;             /* since the fit started */
} XferEpoch;

/* Called after every epoch of every member (members fit in parallel, the
 * calls are serialised); a non-zero return stops the fit with that status
 * (set e). The fit also stops with XE_INTR on SIGINT/SIGTERM. */
typedef int (*XferEpochFn)(void *ctx, const XferEpoch *ep, XErr *e);

/* Fits the whole model from scratch (any earlier fit is dropped) on n rows:
 *   task    (n)              source task of each row, 0 .. ntasks-1
 *   tokens  (n, token_len)   each 0 .. vocab-1
 *   y       (n)              targets, normalised per task by the caller
 * fn may be NULL. Bad rows fail with their index ("row 12: token 7 at 3 is
 * out of range (0-4)"). */
int xfer_fit(XferModel *m, int ntasks, int n, const int *task, const int *tokens, const float *y,
             XferEpochFn fn, void *ctx, XErr *e);

typedef enum {
    /* r_new linear, in closed form: ridge regression of y - g_u(h) on the
     * code h, the penalty chosen by exact leave-one-out error from
     * 1e-3 .. 1e5 and infinity (g_u's ranking, only an offset fitted), so
     * a few noisy evaluations cannot make the task much worse than g_u.
     * With freeze_universal 0 the regression also takes g_u's last hidden
     * layer as input: g_u's output layer, in effect, tuned under the same
     * penalty (g_u itself is not changed). The default. */
    XFER_RESIDUAL_RIDGE = 0,
    /* r_new an MLP like the source tasks' (output layer starting at zero),
     * fitted by Adam with g_u frozen or tuned at universal_lr_scale. */
    XFER_RESIDUAL_MLP = 1,
} XferResidualKind;

typedef struct XferResidualOpts {
    XferResidualKind kind;
    int freeze_universal;      /* 0: g_u lightly tuned (see the kinds) */
    float lambda;              /* ridge: a fixed penalty; 0: chosen by leave-one-out */
    /* mlp: */
    float universal_lr_scale;  /* g_u trains at lr times this when not frozen
                                * (and moves for every task: fit a copy, from
                                * xfer_clone, to keep the source model) */
    float lr, wd;
    float res_l2;              /* penalty on the new residual's outputs */
    int steps;                 /* full-batch Adam steps (batches of cfg.batch when n is larger) */
} XferResidualOpts;

/* Ridge with lambda by leave-one-out, g_u frozen; for mlp:
 * universal_lr_scale 0.1, lr 1e-2, wd 1e-3, res_l2 1, 50 steps. */
void xfer_residual_default(XferResidualOpts *o);

/* Adds a task and fits its residual on its n evaluations (n may be 0: the
 * task then predicts g_u alone); *task is its index (the old ntasks). The
 * encoder and decoder stay frozen. The result does not depend on what the
 * optimiser did before (its state is reset first). On failure the model is
 * as it was (g_u aside, when an mlp fit tuning it was interrupted). */
int xfer_fit_residual(XferModel *m, int n, const int *tokens, const float *y, const XferResidualOpts *o,
                      int *task, XErr *e);

/* Predicted normalised scores of n archs (tokens (n, token_len)) for a
 * task, or task -1 for g_u alone (zero-shot); std may be NULL. */
int xfer_predict(const XferModel *m, int task, int n, const int *tokens, float *mean, float *std, XErr *e);
/* Zero-shot with source similarity: g_u(h) + sum_i weights[i] r_i(h),
 * weights (ntasks) as the caller derives them from dataset similarity
 * (e.g. non-negative, summing to 1). */
int xfer_predict_weighted(const XferModel *m, const float *weights, int n, const int *tokens, float *mean,
                          float *std, XErr *e);

/* The codes h (n, hidden) of member 0. */
int xfer_encode(const XferModel *m, int n, const int *tokens, float *codes, XErr *e);
/* Encode then greedy-decode (member 0): tokens_out (n, token_len). */
int xfer_reconstruct(const XferModel *m, int n, const int *tokens, int *tokens_out, XErr *e);

/* NAO's search step: from each arch's code, `steps` steps of gradient ascent
 * h <- normalise(h + step_size * df/dh) on f_task (task -1: g_u), then a
 * greedy decode into tokens_out (n, token_len). Member 0's code space. The
 * output may equal the input, or not be a valid arch of the space: check it
 * with Space.decode. */
int xfer_propose(const XferModel *m, int task, int n, const int *tokens_in, float step_size, int steps,
                 int *tokens_out, XErr *e);

/* A versioned little-endian blob (malloc'd, the caller frees): magic
 * "XFERPRED", format version, config (threads aside: a loaded model has
 * threads 0), task count, each task's residual kind, every member's
 * parameters, CRC-32. xfer_load checks all of it and names what is wrong
 * ("xfer model: truncated: expected 81234 bytes, got 512"); a loaded model
 * predicts bit-identically to the saved one. The optimiser state is not
 * kept. */
int xfer_save(const XferModel *m, void **buf, size_t *len, XErr *e);
int xfer_load(XferModel **out, const void *buf, size_t len, XErr *e);
/* A deep copy. */
int xfer_clone(XferModel **out, const XferModel *m, XErr *e);

#endif
