/* Finite-difference gradient checks for the engine's ops (include after
 * <cmocka.h>). For an op y = f(x) and a random upstream gradient dy, the
 * analytic dx from the op's backward is compared with central differences of
 * L(x) = sum(y * dy), computed in double. */
#ifndef XFER_GRADCHECK_H
#define XFER_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"

/* Computes y (ny) from x with everything else held fixed. */
typedef void (*GcForward)(void *ctx, const float *x, float *y);

static inline void gc_fill(Rng *r, float *v, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)rng_uniform(r);
}

static inline double gc_loss(GcForward f, void *ctx, const float *x, float *y, size_t ny, const float *dy)
{
    double l = 0;
    f(ctx, x, y);
    for (size_t i = 0; i < ny; i++)
        l += (double)y[i] * dy[i];
    return l;
}

/* Checks dx at up to `samples` coordinates (all if nx is smaller); fails the
 * test when |numeric - analytic| > atol + rtol * |numeric|. x is restored. */
static inline void gc_check(const char *what, GcForward f, void *ctx, float *x, size_t nx, size_t ny,
                            const float *dy, const float *dx, int samples, float h, double atol, double rtol)
{
    float *y = malloc(ny * sizeof *y);
    Rng r;
    size_t count = (size_t)samples < nx ? (size_t)samples : nx;
    assert_non_null(y);
    rng_seed(&r, 12345);
    for (size_t s = 0; s < count; s++) {
        size_t i = count == nx ? s : (size_t)rng_below(&r, nx);
        float keep = x[i];
        double lp, lm, num;
        x[i] = keep + h;
        lp = gc_loss(f, ctx, x, y, ny, dy);
        x[i] = keep - h;
        lm = gc_loss(f, ctx, x, y, ny, dy);
        x[i] = keep;
        num = (lp - lm) / (2.0 * h);
        if (fabs(num - dx[i]) > atol + rtol * fabs(num)) {
            free(y);
            fail_msg("%s: gradient at %zu: numeric %.6g, analytic %.6g", what, i, num, (double)dx[i]);
        }
    }
    free(y);
}

#endif
