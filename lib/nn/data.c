/* Batches with augmentation: the image is assembled in normalised float
 * space, where zero padding of the uint8 image is (0 - mean) / std. */
#include "nn/data.h"

#include <stdlib.h>
#include <string.h>

int batcher_init(Batcher *b, const TaskFile *t, Split split, int batch, int train, const Augment *aug,
                 const double *mean, const double *std, uint64_t seed, XErr *e)
{
    memset(b, 0, sizeof *b);
    if (batch < 1)
        return xerr_set(e, XE_FAIL, "batch size %d must be positive", batch);
    if (t->c > 4)
        return xerr_set(e, XE_FAIL, "%u channels: at most 4 are supported", t->c);
    b->t = t;
    b->split = split;
    b->batch = batch;
    b->train = train;
    if (aug)
        b->aug = *aug;
    if (!train)
        memset(&b->aug, 0, sizeof b->aug);
    for (uint32_t c = 0; c < t->c; c++) {
        b->mean[c] = (float)mean[c];
        b->inv_std[c] = std[c] > 1e-8 ? (float)(1.0 / std[c]) : 1.0f;
    }
    b->seed = seed;
    b->n = (size_t)t->n[split];
    b->order = malloc((b->n ? b->n : 1) * sizeof *b->order);
    if (!b->order)
        return xerr_set(e, XE_FAIL, "out of memory");
    batcher_epoch(b, 0);
    return XE_OK;
}

void batcher_release(Batcher *b)
{
    free(b->order);
    memset(b, 0, sizeof *b);
}

void batcher_epoch(Batcher *b, int epoch)
{
    Rng r;
    for (size_t i = 0; i < b->n; i++)
        b->order[i] = (uint32_t)i;
    rng_seed(&r, b->seed * 0x9e3779b97f4a7c15ull + (uint64_t)epoch * 2 + 1);
    if (b->train)
        rng_shuffle_u32(&r, b->order, (uint32_t)b->n);
    rng_seed(&b->rng, b->seed * 0x9e3779b97f4a7c15ull + (uint64_t)epoch * 2 + 2);
    b->pos = 0;
}

size_t batcher_count(const Batcher *b)
{
    return b->train ? b->n / (size_t)b->batch : (b->n + (size_t)b->batch - 1) / (size_t)b->batch;
}

/* One image into x (C, H, W): crop offset (dy, dx) in the padded image,
 * flipped or not, then cutout. */
static void put_image(const Batcher *b, const uint8_t *src, float *x, int dy, int dx, int flip, int cy, int cx)
{
    int h = (int)b->t->h, w = (int)b->t->w, c = (int)b->t->c, pad = b->aug.crop_pad;
    for (int ch = 0; ch < c; ch++) {
        float m = b->mean[ch] * 255.0f, s = b->inv_std[ch] / 255.0f, zero = -m * s;
        float *out = x + (size_t)ch * h * w;
        for (int i = 0; i < h; i++) {
            int sy = i + dy - pad;
            float *row = out + (size_t)i * w;
            if (sy < 0 || sy >= h) {
                for (int j = 0; j < w; j++)
                    row[j] = zero;
                continue;
            }
            for (int j = 0; j < w; j++) {
                int sx = (flip ? w - 1 - j : j) + dx - pad;
                row[j] = sx < 0 || sx >= w ? zero : ((float)src[((size_t)sy * w + sx) * c + ch] - m) * s;
            }
        }
        if (b->aug.cutout > 0) {
            int half = b->aug.cutout / 2;
            for (int i = cy - half; i < cy - half + b->aug.cutout; i++)
                for (int j = cx - half; j < cx - half + b->aug.cutout; j++)
                    if (i >= 0 && i < h && j >= 0 && j < w)
                        out[(size_t)i * w + j] = 0.0f;
        }
    }
}

int batcher_next(Batcher *b, float *x, int32_t *labels)
{
    size_t img = (size_t)b->t->h * b->t->w * b->t->c;
    int k = 0;
    if (b->train && b->n - b->pos < (size_t)b->batch)
        return 0;
    for (; k < b->batch && b->pos < b->n; k++, b->pos++) {
        uint32_t i = b->order[b->pos];
        int dy = b->aug.crop_pad, dx = b->aug.crop_pad, flip = 0, cy = 0, cx = 0;
        if (b->aug.crop_pad) {
            dy = (int)rng_below(&b->rng, (uint64_t)(2 * b->aug.crop_pad + 1));
            dx = (int)rng_below(&b->rng, (uint64_t)(2 * b->aug.crop_pad + 1));
        }
        if (b->aug.flip)
            flip = (int)rng_below(&b->rng, 2);
        if (b->aug.cutout) {
            cy = (int)rng_below(&b->rng, b->t->h);
            cx = (int)rng_below(&b->rng, b->t->w);
        }
        put_image(b, b->t->images[b->split] + (size_t)i * img, x + (size_t)k * img, dy, dx, flip, cy, cx);
        labels[k] = taskfile_label(b->t, b->split, i);
    }
    return k;
}
