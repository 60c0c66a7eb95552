/* CPU average and max pooling over each (N, C) plane: square windows,
 * equal stride and padding on both axes; average pools divide by the number
 * of in-bounds inputs, max pools send the gradient to the first maximum. */
#include <math.h>
#include <string.h>

#include "nn/cpu/conv_rows.h"
#include "nn/cpu/cpu.h"

/* The window's in-bounds input rows (or columns) [*lo, *hi) for output o. */
static void pool_span(int o, int k, int s, int p, int n, int *lo, int *hi)
{
    int a = o * s - p, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > n ? n : b;
}

/* One output by the definition, for the borders. */
static float pool_one(const PoolDesc *d,
                      const float *x, // (H, W)
                      int oy, int ox)
{
    int iy0, iy1, ix0, ix1;
    float acc;
    pool_span(oy, d->k, d->stride, d->pad, d->h, &iy0, &iy1);
    pool_span(ox, d->k, d->stride, d->pad, d->w, &ix0, &ix1);
    acc = d->type == POOL_MAX ? -INFINITY : 0.0f;
    for (int iy = iy0; iy < iy1; iy++)
        for (int ix = ix0; ix < ix1; ix++) {
            float v = x[(size_t)iy * d->w + ix];
            acc = d->type == POOL_MAX ? (v > acc ? v : acc) : acc + v;
        }
    return d->type == POOL_MAX ? acc : acc / (float)((iy1 - iy0) * (ix1 - ix0));
}

/* Forward for one plane. Outputs whose window spans all k columns go eight
 * at a time with the window's rows in registers (the last block overlaps
 * the one before rather than leaving a tail: the same values again); the
 * few at the borders go one by one. Sums run in row-major window order and
 * divide by the in-bounds count, as PyTorch does. Inlined with constant k,
 * stride and type for the common shapes. */
static inline __attribute__((always_inline)) void
pool_fwd_plane(const PoolDesc *d,
               const float *x, // (H, W)
               float *y,       // (OH, OW)
               int k, int s, int mx)
{
    int p = d->pad, w = d->w, ow = d->ow, in0, in1;
    /* the outputs with 0 <= ox * s - p and ox * s - p + k <= w */
    row_range(-p, s, w - k + 1, ow, &in0, &in1);
    if (in1 - in0 < 8)
        in0 = in1 = 0;
    for (int oy = 0; oy < d->oh; oy++) {
        float *yr = y + (size_t)oy * ow;
        int iy0, iy1;
        pool_span(oy, k, s, p, d->h, &iy0, &iy1);
        for (int b = in0; b < in1; b += 8) {
            float acc[8];
            if (b + 8 > in1)
                b = in1 - 8;
            for (int j = 0; j < 8; j++)
                acc[j] = mx ? -INFINITY : 0.0f;
            for (int iy = iy0; iy < iy1; iy++) {
                const float *xr = x + (size_t)iy * w + (b * s - p);
                for (int kj = 0; kj < k; kj++)
                    for (int j = 0; j < 8; j++) {
                        float v = xr[j * s + kj];
                        acc[j] = mx ? (v > acc[j] ? v : acc[j]) : acc[j] + v;
                    }
            }
            for (int j = 0; j < 8; j++)
                yr[b + j] = mx ? acc[j] : acc[j] / (float)((iy1 - iy0) * k);
        }
        for (int ox = 0; ox < ow; ox++) {
            if (ox == in0 && in1 > in0)
                ox = in1;
            if (ox < ow)
                yr[ox] = pool_one(d, x, oy, ox);
        }
    }
}

static void pool_fwd_any(const PoolDesc *d,
                         const float *x, // (H, W)
                         float *y)       // (OH, OW)
{
    int mx = d->type == POOL_MAX;
#define POOL_CASE(K, S)                                                                            \
    if (d->k == K && d->stride == S) {                                                             \
        if (mx)                                                                                    \
            pool_fwd_plane(d, x, y, K, S, 1);                                                      \
        else                                                                                       \
            pool_fwd_plane(d, x, y, K, S, 0);                                                      \
        return;                                                                                    \
    }
    POOL_CASE(3, 1)
    POOL_CASE(3, 2)
    POOL_CASE(2, 2)
#undef POOL_CASE
    pool_fwd_plane(d, x, y, d->k, d->stride, mx);
}

/* Average backward: each output's share dy / count added over its window,
 * a chunk of a row at a time, one tap at a time. */
static void avg_bwd_plane(const PoolDesc *d,
                          const float *dy, // (OH, OW)
                          float *dx)       // (H, W)
{
    enum { CHUNK = 64 };
    int k = d->k, s = d->stride, p = d->pad, w = d->w;
    float g[CHUNK];
    for (int oy = 0; oy < d->oh; oy++) {
        const float *dyr = dy + (size_t)oy * d->ow;
        int iy0, iy1;
        pool_span(oy, k, s, p, d->h, &iy0, &iy1);
        for (int c0 = 0; c0 < d->ow; c0 += CHUNK) {
            int c1 = c0 + CHUNK < d->ow ? c0 + CHUNK : d->ow;
            for (int ox = c0; ox < c1; ox++) {
                int ix0, ix1;
                pool_span(ox, k, s, p, w, &ix0, &ix1);
                g[ox - c0] = dyr[ox] / (float)((iy1 - iy0) * (ix1 - ix0));
            }
            for (int kj = 0; kj < k; kj++) {
                int lo, hi;
                row_range(kj - p, s, w, d->ow, &lo, &hi);
                lo = lo > c0 ? lo : c0;
                hi = hi < c1 ? hi : c1;
                for (int iy = iy0; iy < iy1 && lo < hi; iy++) {
                    float *dr = dx + (size_t)iy * w;
                    if (s == 1)
                        row_add(hi - lo, g + lo - c0, dr + lo + kj - p);
                    else
                        for (int ox = lo; ox < hi; ox++)
                            dr[ox * s + kj - p] += g[ox - c0];
                }
            }
        }
    }
}

/* dx[i] += g[i] where x[i] is the maximum m[i], and g[i] = 0 once routed,
 * so only the first maximum of a window gets it. Written with a 0/1 factor
 * rather than branches so the vectoriser takes it. */
static inline void route_row(int n,
                             const float *restrict x, // (n)
                             const float *restrict m, // (n)
                             float *restrict g,       // (n)
                             float *restrict dx)      // (n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float hit = (float)(x[i + j] == m[i + j]);
            dx[i + j] += hit * g[i + j];
            g[i + j] *= 1.0f - hit;
        }
    for (; i < n; i++) {
        float hit = (float)(x[i] == m[i]);
        dx[i] += hit * g[i];
        g[i] *= 1.0f - hit;
    }
}

/* Max backward: each output's gradient to the first input of its window,
 * in row-major order, equal to the forward's maximum (PyTorch's choice on
 * ties). At stride 1, where windows overlap most, taps in that order over a
 * chunk of a row at a time; otherwise a search per output. */
static void max_bwd_plane(const PoolDesc *d,
                          const float *x,  // (H, W)
                          const float *y,  // (OH, OW)
                          const float *dy, // (OH, OW)
                          float *dx)       // (H, W)
{
    enum { CHUNK = 64 };
    int k = d->k, s = d->stride, p = d->pad, w = d->w;
    float g[CHUNK];
    for (int oy = 0; oy < d->oh; oy++) {
        const float *yr = y + (size_t)oy * d->ow, *dyr = dy + (size_t)oy * d->ow;
        int iy0, iy1;
        pool_span(oy, k, s, p, d->h, &iy0, &iy1);
        if (s > 1) {
            for (int ox = 0; ox < d->ow; ox++) {
                int ix0, ix1;
                pool_span(ox, k, s, p, w, &ix0, &ix1);
                for (int iy = iy0; iy < iy1; iy++)
                    for (int ix = ix0; ix < ix1; ix++)
                        if (x[(size_t)iy * w + ix] == yr[ox]) {
                            dx[(size_t)iy * w + ix] += dyr[ox];
                            goto routed;
                        }
            routed:;
            }
            continue;
        }
        for (int c0 = 0; c0 < d->ow; c0 += CHUNK) {
            int c1 = c0 + CHUNK < d->ow ? c0 + CHUNK : d->ow;
            memcpy(g, dyr + c0, (size_t)(c1 - c0) * sizeof *g);
            for (int iy = iy0; iy < iy1; iy++) {
                const float *xr = x + (size_t)iy * w;
                float *dr = dx + (size_t)iy * w;
                for (int kj = 0; kj < k; kj++) {
                    int lo, hi;
                    row_range(kj - p, 1, w, d->ow, &lo, &hi);
                    lo = lo > c0 ? lo : c0;
                    hi = hi < c1 ? hi : c1;
                    if (lo < hi)
                        route_row(hi - lo, xr + lo + kj - p, yr + lo, g + lo - c0, dr + lo + kj - p);
                }
            }
        }
    }
}

void cpu_pool_fwd(void *ctx, const PoolDesc *d,
                  const float *x, // (N, C, H, W)
                  float *y)       // (N, C, OH, OW)
{
    size_t in = (size_t)d->h * d->w, out = (size_t)d->oh * d->ow;
    for (size_t i = 0; i < (size_t)d->n * d->c; i++)
        pool_fwd_any(d, x + i * in, y + i * out);
}

void cpu_pool_bwd(void *ctx, const PoolDesc *d,
                  const float *x,  // (N, C, H, W)
                  const float *y,  // (N, C, OH, OW)
                  const float *dy, // (N, C, OH, OW)
                  float *dx)       // (N, C, H, W), added to
{
    size_t in = (size_t)d->h * d->w, out = (size_t)d->oh * d->ow;
    for (size_t i = 0; i < (size_t)d->n * d->c; i++) {
        if (d->type == POOL_MAX)
            max_bwd_plane(d, x + i * in, y + i * out, dy + i * out, dx + i * in);
        else
            avg_bwd_plane(d, dy + i * out, dx + i * in);
    }
}
