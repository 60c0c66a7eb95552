/* A small reverse-mode autodiff tape over 2-D float matrices for the
 * surrogate models: row-major values, rows = batch. Ops run eagerly as they
 * are recorded; tape_backward walks the record backwards. Parameters live
 * apart from the tape in a TParams store with their gradients and Adam
 * moments.
 *
 * Memory: every value, gradient and op state of one step comes from the
 * tape's arena, which tape_reset empties (keeping one block as large as the
 * step needed, so a training loop stops allocating after its first step).
 * Pointers from tape_value / tape_grad stay valid until the next reset.
 *
 * Errors: an op that cannot run (shapes that do not fit, an id out of
 * range, memory) records the first message on the tape and returns
 * TAPE_NONE; ops given TAPE_NONE return TAPE_NONE, so a model is written as
 * straight-line code and checks tape_status once (or gets the error from
 * tape_backward).
 *
 * Threads: making a tape sets OpenBLAS to one thread, process-wide (the
 * matrices are small; the engine's CPU backend does the same). Callers
 * parallelise over independent tapes instead.
 *
 * Determinism: every op, sgemm included, runs on one thread with its sums
 * in a fixed order, so the same ops on the same inputs give bit-identical
 * values and gradients on one machine and build. Another CPU may differ in
 * the last bits (OpenBLAS picks its sgemm kernel by CPU); exp, tanh and
 * sigmoid are the tape's own, so libm's version does not matter. Dropout
 * draws from the Rng it is given.
 *
 * Gradients ACCUMULATE: a value used by several ops gets the sum; parameter
 * gradients accumulate into the store across tape steps until
 * tparams_zero_grad. */
#ifndef XFER_MODEL_TAPE_H
#define XFER_MODEL_TAPE_H

#include <stddef.h>

#include "core/err.h"
#include "core/rng.h"

/* ---- parameters ---- */

typedef struct TParam {
    size_t off;       /* offset into the store's blocks */
    int rows, cols;
    float lr_scale;   /* multiplies the learning rate; 0: frozen (no gradient is computed) */
    int decay;        /* weight decay applies (weights yes, biases no) */
    long step;        /* Adam steps taken (bias correction per parameter) */
} TParam;

/* One contiguous block each for values, gradients and the two Adam moments,
 * carved by the table p. Adding a parameter may move the blocks: take
 * pointers with tparams_value after the last tparams_add. */
typedef struct TParams {
    float *val, *grad, *m, *v;
    size_t size, cap;     /* floats used / allocated in each block */
    TParam *p;
    int n, pcap;
} TParams;

void tparams_init(TParams *ps);
void tparams_release(TParams *ps);
/* Adds a (rows, cols) parameter, zero, trainable (lr_scale 1), with decay;
 * *id is its index. */
int tparams_add(TParams *ps, int rows, int cols, int decay, int *id, XErr *e);
float *tparams_value(const TParams *ps, int id);
float *tparams_grad(const TParams *ps, int id);
size_t tparams_numel(const TParams *ps, int id);
/* Uniform in [-bound, bound]. */
void tparams_fill_uniform(TParams *ps, int id, float bound, Rng *r);
void tparams_zero_grad(TParams *ps);
/* Forgets the Adam moments and step counts (a fresh optimiser). */
void tparams_reset_adam(TParams *ps);
/* Sets lr_scale of every parameter. */
void tparams_set_lr_scale(TParams *ps, float s);
/* Global L2 norm of the gradients of trainable parameters; when max_norm > 0
 * and the norm exceeds it, scales them down to max_norm. Returns the norm
 * before clipping. */
double tparams_clip_grad(TParams *ps, double max_norm);

typedef struct TAdam {
    float lr, beta1, beta2, eps;
    float wd;   /* decoupled weight decay (AdamW): w -= lr * wd * w, for decay parameters */
} TAdam;

/* {lr, 0.9, 0.999, 1e-8, wd} */
TAdam tadam_default(float lr, float wd);
/* One Adam step for every parameter with lr_scale != 0, from its gradient;
 * the gradients are left as they are. */
void tparams_adam(TParams *ps, const TAdam *o);

/* ---- the tape ---- */

typedef int TVar;     /* a recorded value; TAPE_NONE after an error */
#define TAPE_NONE (-1)

typedef struct Tape Tape;

typedef struct TPair {
    int i, j;         /* rows of the score column */
    float label;      /* target of P(i beats j): 1, 0, or a soft value */
} TPair;

int tape_new(Tape **out, XErr *e);
void tape_free(Tape *t);
/* Forgets every recorded value (and a recorded error). */
void tape_reset(Tape *t);
/* XE_OK, or XE_FAIL with the first recorded error copied to e. */
int tape_status(const Tape *t, XErr *e);

int tape_rows(const Tape *t, TVar x);
int tape_cols(const Tape *t, TVar x);
float *tape_value(const Tape *t, TVar x);   /* (rows, cols) */
/* NULL when no gradient reached x (or x needs none). */
float *tape_grad(const Tape *t, TVar x);

/* With frozen set, tape_param records parameters without gradients (for
 * predictions, or gradients with respect to inputs only): the store is
 * then only read. Kept across resets. */
void tape_freeze_params(Tape *t, int frozen);

/* Leaves. tape_input copies data (NULL: zeros); with_grad asks for its
 * gradient (tape_grad after backward). tape_param records a parameter of
 * the store (its value in place; gradients accumulate into the store's
 * gradient block; a frozen parameter gets none). The store must not gain
 * parameters while the tape holds them. */
TVar tape_input(Tape *t, int rows, int cols, const float *data, int with_grad);
TVar tape_param(Tape *t, TParams *ps, int id);

/* op(a) (m, k) x op(b) (k, n) -> (m, n); op transposes when ta / tb. */
TVar tape_matmul(Tape *t, TVar a, TVar b, int ta, int tb);
TVar tape_add(Tape *t, TVar a, TVar b);          /* same shapes */
TVar tape_add_bias(Tape *t, TVar a, TVar bias);  /* (B, C) + (1, C) on every row */
TVar tape_mul(Tape *t, TVar a, TVar b);          /* elementwise */
TVar tape_scale(Tape *t, TVar a, float s);
TVar tape_tanh(Tape *t, TVar a);
TVar tape_sigmoid(Tape *t, TVar a);
TVar tape_relu(Tape *t, TVar a);
/* Rows of table (V, D) picked by ids (n ids, each 0..V-1; copied) -> (n, D). */
TVar tape_embed(Tape *t, TVar table, const int *ids, int n);
/* Side by side (same rows) / stacked (same columns). */
TVar tape_concat_cols(Tape *t, const TVar *xs, int k);
TVar tape_concat_rows(Tape *t, const TVar *xs, int k);
TVar tape_slice_cols(Tape *t, TVar a, int start, int width);
TVar tape_slice_rows(Tape *t, TVar a, int start, int count);
TVar tape_sum_cols(Tape *t, TVar a);   /* (B, C) -> (B, 1): each row's sum */
TVar tape_mean_rows(Tape *t, TVar a);  /* (B, C) -> (1, C): the mean row */
TVar tape_mean(Tape *t, TVar a);       /* -> (1, 1): mean of every element */
/* Each row divided by sqrt(its sum of squares + eps): NAO's normalised code. */
TVar tape_l2norm(Tape *t, TVar a, float eps);
/* One LSTM step from the gate pre-activations z (B, 4H), gates in the order
 * input, forget, cell, output, and the previous cell state c (B, H)
 * (TAPE_NONE: zeros) -> (B, 2H) holding [h | c]. */
TVar tape_lstm_cell(Tape *t, TVar z, TVar c);
/* Inverted dropout: each element zeroed with probability p, the others
 * scaled by 1 / (1 - p); p == 0 returns a itself. */
TVar tape_dropout(Tape *t, TVar a, float p, Rng *r);

/* Losses, each a (1, 1) mean. */
/* Mean over all elements of (a - target)^2; target has as many (copied). */
TVar tape_mse(Tape *t, TVar a, const float *target);
/* Scores s (B, 1); mean over pairs of the cross-entropy of
 * sigmoid(s_i - s_j) against the label (LCRankNet's pairwise loss). */
TVar tape_pairwise_logistic(Tape *t, TVar s, const TPair *pairs, int npairs);
/* Logits (B, V) and B labels in 0..V-1: mean softmax cross-entropy. */
TVar tape_softmax_xent(Tape *t, TVar logits, const int *labels);

/* Backpropagates from y: seed is dL/dy (rows x cols floats), or NULL for a
 * (1, 1) y with dL/dy = 1. Fails with the tape's recorded error if any. */
int tape_backward(Tape *t, TVar y, const float *seed, XErr *e);

/* Scratch memory from the arena (64-byte aligned), gone at the next reset;
 * NULL (and an error recorded) when memory runs out. */
void *tape_scratch(Tape *t, size_t bytes);

/* Bytes the arena holds now (a step's peak after its first run). */
size_t tape_arena_bytes(const Tape *t);

#endif
