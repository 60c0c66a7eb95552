/* Training batches from a stored task: per-epoch seeded shuffling, and the
 * usual augmentation (random crop with zero padding, horizontal flip,
 * cutout) followed by per-channel normalisation, into float NCHW. Everything
 * random derives from (seed, epoch), so a run resumed at an epoch sees the
 * same batches as one that never stopped. */
#ifndef XFER_NN_DATA_H
#define XFER_NN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "data/taskfile.h"

typedef struct Augment {
    int crop_pad;    /* random crop of the original size after padding by this many pixels; 0: off */
    int flip;        /* random horizontal flip (off for digits) */
    int cutout;      /* side of a zeroed square (after normalisation); 0: off */
} Augment;

typedef struct Batcher {
    const TaskFile *t;
    Split split;
    int batch;
    int train;          /* shuffle, augment and drop the last partial batch */
    Augment aug;
    float mean[4], inv_std[4];
    uint64_t seed;
    Rng rng;            /* this epoch's augmentation stream */
    uint32_t *order;    /* (n,) this epoch's order */
    size_t n, pos;
} Batcher;

/* mean/std per channel (the dataset's, pixels / 255). */
int batcher_init(Batcher *b, const TaskFile *t, Split split, int batch, int train, const Augment *aug,
                 const double *mean, const double *std, uint64_t seed, XErr *e);
void batcher_release(Batcher *b);
/* Starts epoch (0-based): order and augmentation stream from (seed, epoch). */
void batcher_epoch(Batcher *b, int epoch);
/* Fills x (B, C, H, W) and labels (B,); returns the images in the batch,
 * 0 at the end of the epoch. */
int batcher_next(Batcher *b, float *x, int32_t *labels);
/* Batches in one epoch. */
size_t batcher_count(const Batcher *b);

#endif
