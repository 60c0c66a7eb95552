/* The training protocol's loop: SGD (momentum, Nesterov, weight decay) with
 * a cosine learning rate after an optional linear warm-up, stepped per
 * iteration; gradient clipping; validation every epoch and the test split
 * at the end; per-epoch curve points through a callback; checkpoints of
 * everything a resumed run needs (parameters, momentum, running statistics,
 * epoch: the batches derive from seed and epoch). */
#ifndef XFER_NN_TRAIN_H
#define XFER_NN_TRAIN_H

#include "data/taskfile.h"
#include "nn/data.h"
#include "nn/net.h"

typedef struct Recipe {
    int epochs;
    float lr, lr_min;          /* cosine from lr down to lr_min */
    int warmup_epochs;         /* linear warm-up from 0 over these epochs */
    float momentum, wd;
    int nesterov;
    float clip;                /* global gradient-norm limit; 0: off */
    float label_smoothing;
    float drop_path;           /* drop-path probability, raised linearly to this over the epochs */
    Augment aug;
    uint64_t seed;
} Recipe;

typedef struct EpochPoint {
    int epoch;                 /* 1-based */
    double train_loss, train_acc, valid_loss, valid_acc, lr, seconds;
} EpochPoint;

/* Called after each epoch; a non-zero return stops training with that
 * status (XE_INTR for a signal, XE_FAIL with e set for a failed write). */
typedef int (*EpochFn)(void *ctx, const Net *net, const EpochPoint *p, XErr *e);

/* Learning rate at iteration `step` of `total` (steps_per_epoch known). */
double recipe_lr(const Recipe *r, long step, long steps_per_epoch);

/* Trains epochs [start, r->epochs) of net (built for a batch size, with its
 * parameters as of epoch `start`). Then evaluates the test split into
 * *test_acc (if the task has one, else -1). A run whose loss turns NaN
 * fails with "diverged"; a task whose images or classes do not fit the
 * network fails before training. */
int train_run(Net *net, const TaskFile *t, const double *mean, const double *std, const Recipe *r,
              int start, EpochFn fn, void *ctx, double *test_acc, XErr *e);

/* Loss and accuracy of net on a split (eval mode). */
int train_evaluate(Net *net, const TaskFile *t, Split split, const double *mean, const double *std,
                   double *loss, double *acc, XErr *e);

/* Checkpoint of a network at an epoch: written to a temporary file and
 * renamed. Reading checks that the file fits the network. */
int net_checkpoint_write(const Net *net, int epoch, const char *path, XErr *e);
int net_checkpoint_read(Net *net, int *epoch, const char *path, XErr *e);

#endif
