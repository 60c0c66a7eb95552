/* CPU convolution, four paths: im2col + OpenBLAS sgemm per image and group
 * (the general case), one sgemm per image and group for 1x1 stride-1
 * unpadded convs, direct loops for depthwise convs (DARTS's separable and
 * dilated convs), compiled once per common kernel, stride and dilation, and
 * on CPUs with AVX-512 direct kernels for 3x3 stride-1 convs (conv3x3.c). */
#include <cblas.h>
#include <string.h>

#include "nn/cpu/conv3x3.h"
#include "nn/cpu/conv_rows.h"
#include "nn/cpu/cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef enum { CONV_GEMM, CONV_1X1, CONV_DEPTHWISE } ConvPath;

/* Threads that split a batch's images (OpenMP; OpenBLAS then runs on one
 * thread each). Results are deterministic for a thread count: images go to
 * threads in fixed contiguous chunks and filter-gradient partial sums are
 * added in thread order. */
static int conv_threads = 1;

void cpu_conv_set_threads(int threads)
{
    conv_threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
}

int cpu_threads(void)
{
    return conv_threads;
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static ConvPath conv_path(const ConvDesc *d)
{
    if (d->groups == d->cin && d->cout == d->cin)
        return CONV_DEPTHWISE;
    if (d->kh == 1 && d->stride == 1 && d->pad == 0)
        return CONV_1X1;
    return CONV_GEMM;
}

/* ---- depthwise: direct loops over padded planes ----
 *
 * Forward and backward filter read a plane (H, W) copied zero-padded into
 * P (HP, S, WQ), S the stride: phase q of padded row r holds the row's
 * columns q, q + S, q + 2S, ... so the input column ox * S + off of every
 * tap is P[r][off % S][ox + off / S], a contiguous run over ox at any
 * stride. The zero border is written once per call, only the interior per
 * plane. Backward data at stride 1 is a gather: the forward loops run over
 * dy padded by (K - 1) * D - pad with the kernel reversed. Otherwise it
 * scatters into a zeroed P-shaped plane, then added into dx. */

typedef struct DwGeom {
    int h, w, pad, s, dil, k; /* input plane, conv parameters */
    int hp, wq;               /* P: padded rows, columns per phase */
    int oh, ow;
} DwGeom;

static DwGeom dw_geom(const ConvDesc *d)
{
    DwGeom g = {d->h, d->w, d->pad, d->stride, d->dil, d->kh, d->h + 2 * d->pad,
                (d->w + 2 * d->pad + d->stride - 1) / d->stride, d->oh, d->ow};
    return g;
}

/* Unpadded at stride 1, the plane itself serves as P. */
static int dw_in_place(const DwGeom *g)
{
    return g->pad == 0 && g->s == 1;
}

static size_t dw_plane_size(const DwGeom *g)
{
    return (size_t)g->hp * g->s * g->wq;
}

/* Backward data as a forward conv: dy (OH, OW) padded by (K - 1) * D - pad
 * gives dx (H, W) at stride 1; the geometry of that conv, or 0 when the
 * padding would be negative or the stride is not 1. */
static int dw_gather_geom(const DwGeom *g, DwGeom *gg)
{
    int gpad = (g->k - 1) * g->dil - g->pad;
    if (g->s != 1 || gpad < 0)
        return 0;
    *gg = (DwGeom){g->oh, g->ow, gpad, 1, g->dil, g->k, g->oh + 2 * gpad, g->ow + 2 * gpad, g->h, g->w};
    return 1;
}

/* The interior of P: x's rows and columns in their padded places. */
static void dw_fill(const DwGeom *g, const float *x, // (H, W)
                    float *P)                        // (HP, S, WQ)
{
    for (int q = 0; q < g->s; q++) {
        int lo, hi;
        /* P[r][q][j] is input column j * S + q - pad */
        row_range(q - g->pad, g->s, g->w, g->wq, &lo, &hi);
        for (int iy = 0; iy < g->h; iy++) {
            const float *xr = x + (size_t)iy * g->w;
            float *dst = P + ((size_t)(iy + g->pad) * g->s + q) * g->wq;
            if (g->s == 1)
                row_copy(hi - lo, xr + lo + q - g->pad, dst + lo);
            else
                for (int j = lo; j < hi; j++)
                    dst[j] = xr[j * g->s + q - g->pad];
        }
    }
}

/* dx += the interior of P */
static void dw_merge(const DwGeom *g, const float *P, // (HP, S, WQ)
                     float *dx)                       // (H, W)
{
    for (int q = 0; q < g->s; q++) {
        int lo, hi;
        row_range(q - g->pad, g->s, g->w, g->wq, &lo, &hi);
        for (int iy = 0; iy < g->h; iy++) {
            const float *src = P + ((size_t)(iy + g->pad) * g->s + q) * g->wq;
            float *dr = dx + (size_t)iy * g->w;
            if (g->s == 1)
                row_add(hi - lo, src + lo, dr + lo + q - g->pad);
            else
                for (int j = lo; j < hi; j++)
                    dr[j * g->s + q - g->pad] += src[j];
        }
    }
}

/* Start of tap (ki, kj)'s input run for output row oy. */
#define DW_TAP(P, wq, s, dl, oy, ki, kj)                                                           \
    ((P) + ((size_t)((oy) * (s) + (ki) * (dl)) * (s) + ((kj) * (dl)) % (s)) * (wq) +               \
     ((kj) * (dl)) / (s))

/* y = conv(P, wk) for one plane (y += with add), eight outputs of a row at
 * a time in registers; inlined with constant K, S, D for common shapes. */
static inline __attribute__((always_inline)) void
dw_fwd_plane(const float *P,  // (HP, S, WQ)
             const float *wk, // (K, K)
             float *y,        // (OH, OW)
             int add, int wq, int oh, int ow, int k, int s, int dl)
{
    for (int oy = 0; oy < oh; oy++) {
        float *yr = y + (size_t)oy * ow;
        int ox = 0;
        for (; ox + 8 <= ow; ox += 8) {
            float acc[8] = {0};
            for (int ki = 0; ki < k; ki++)
                for (int kj = 0; kj < k; kj++) {
                    const float *src = DW_TAP(P, wq, s, dl, oy, ki, kj) + ox;
                    float wv = wk[ki * k + kj];
                    for (int j = 0; j < 8; j++)
                        acc[j] += wv * src[j];
                }
            if (add)
                for (int j = 0; j < 8; j++)
                    yr[ox + j] += acc[j];
            else
                memcpy(yr + ox, acc, sizeof acc);
        }
        for (; ox < ow; ox++) {
            float acc = 0;
            for (int ki = 0; ki < k; ki++)
                for (int kj = 0; kj < k; kj++)
                    acc += wk[ki * k + kj] * DW_TAP(P, wq, s, dl, oy, ki, kj)[ox];
            yr[ox] = add ? yr[ox] + acc : acc;
        }
    }
}

/* dP += conv_transpose(dy, wk) for one plane, one tap at a time. */
static inline __attribute__((always_inline)) void
dw_data_plane(const float *dy, // (OH, OW)
              const float *wk, // (K, K)
              float *dP,       // (HP, S, WQ)
              int wq, int oh, int ow, int k, int s, int dl)
{
    for (int oy = 0; oy < oh; oy++) {
        const float *dyr = dy + (size_t)oy * ow;
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++)
                row_axpy(ow, wk[ki * k + kj], dyr, DW_TAP(dP, wq, s, dl, oy, ki, kj));
    }
}

/* dwk += correlation of P with dy for one plane: per tap, eight partial sums
 * over the plane in a fixed order, then their total. */
static inline __attribute__((always_inline)) void
dw_filter_plane(const float *P,  // (HP, S, WQ)
                const float *dy, // (OH, OW)
                float *dwk,      // (K, K)
                int wq, int oh, int ow, int k, int s, int dl)
{
    for (int ki = 0; ki < k; ki++)
        for (int kj = 0; kj < k; kj++) {
            float acc[8] = {0}, tail = 0, sum = 0;
            for (int oy = 0; oy < oh; oy++) {
                const float *src = DW_TAP(P, wq, s, dl, oy, ki, kj);
                const float *dyr = dy + (size_t)oy * ow;
                int ox = 0;
                for (; ox + 8 <= ow; ox += 8)
                    for (int j = 0; j < 8; j++)
                        acc[j] += dyr[ox + j] * src[ox + j];
                for (; ox < ow; ox++)
                    tail += dyr[ox] * src[ox];
            }
            for (int j = 0; j < 8; j++)
                sum += acc[j];
            dwk[ki * k + kj] += sum + tail;
        }
}

/* The shapes DARTS uses get their own copies with constant loop bounds;
 * each dispatcher tries them first, then the general copy. */
#define DW_SHAPES(X)                                                                               \
    X(3, 1, 1) X(3, 1, 2) X(3, 2, 1) X(3, 2, 2) X(5, 1, 1) X(5, 1, 2) X(5, 2, 1) X(5, 2, 2)

static void dw_fwd(const DwGeom *g,
                   const float *P,  // (HP, S, WQ)
                   const float *wk, // (K, K)
                   float *y,        // (OH, OW)
                   int add)
{
#define DW_CASE(K, S, D)                                                                           \
    if (g->k == K && g->s == S && g->dil == D) {                                                   \
        dw_fwd_plane(P, wk, y, add, g->wq, g->oh, g->ow, K, S, D);                                 \
        return;                                                                                    \
    }
    DW_SHAPES(DW_CASE)
#undef DW_CASE
    dw_fwd_plane(P, wk, y, add, g->wq, g->oh, g->ow, g->k, g->s, g->dil);
}

static void dw_data(const DwGeom *g,
                    const float *dy, // (OH, OW)
                    const float *wk, // (K, K)
                    float *dP)       // (HP, S, WQ)
{
#define DW_CASE(K, S, D)                                                                           \
    if (g->k == K && g->s == S && g->dil == D) {                                                   \
        dw_data_plane(dy, wk, dP, g->wq, g->oh, g->ow, K, S, D);                                   \
        return;                                                                                    \
    }
    DW_SHAPES(DW_CASE)
#undef DW_CASE
    dw_data_plane(dy, wk, dP, g->wq, g->oh, g->ow, g->k, g->s, g->dil);
}

static void dw_filter(const DwGeom *g,
                      const float *P,  // (HP, S, WQ)
                      const float *dy, // (OH, OW)
                      float *dwk)      // (K, K)
{
#define DW_CASE(K, S, D)                                                                           \
    if (g->k == K && g->s == S && g->dil == D) {                                                   \
        dw_filter_plane(P, dy, dwk, g->wq, g->oh, g->ow, K, S, D);                                 \
        return;                                                                                    \
    }
    DW_SHAPES(DW_CASE)
#undef DW_CASE
    dw_filter_plane(P, dy, dwk, g->wq, g->oh, g->ow, g->k, g->s, g->dil);
}

static size_t dw_workspace(const ConvDesc *d)
{
    DwGeom g = dw_geom(d), gg;
    size_t split = dw_in_place(&g) ? 0 : dw_plane_size(&g);
    size_t gather = dw_gather_geom(&g, &gg) ? dw_plane_size(&gg) + (size_t)g.k * g.k : 0;
    return split > gather ? split : gather;
}

/* Forward (dy NULL: out = y) and backward filter (w NULL: out = dw, added
 * to): each plane of x through P, or in place. */
static void dw_conv_x(const ConvDesc *d,
                      const float *x,  // (N, C, H, W)
                      const float *w,  // (C, 1, K, K) or NULL
                      const float *dy, // (N, C, OH, OW) or NULL
                      float *out,      // y (N, C, OH, OW) or dw (C, 1, K, K)
                      float *ws)       // (cpu_conv_workspace)
{
    DwGeom g = dw_geom(d);
    size_t in = (size_t)d->h * d->w, on = (size_t)d->oh * d->ow, kk = (size_t)d->kh * d->kw;
    size_t per = dw_workspace(d), nw = (size_t)d->cin * kk;
    int T = conv_threads < d->n ? conv_threads : d->n;
    if (dw_in_place(&g))
        g.wq = d->w;
    else /* the padding of every thread's plane stays zero */
        memset(ws, 0, (size_t)T * per * sizeof *ws);
    if (dy)
        memset(ws + (size_t)T * per, 0, (size_t)(T - 1) * nw * sizeof *ws);
#pragma omp parallel for num_threads(T) schedule(static)
    for (int n = 0; n < d->n; n++) {
        int t = thread_id();
        float *tws = ws + (size_t)t * per;
        float *tout = dy && t ? ws + (size_t)T * per + (size_t)(t - 1) * nw : out;
        DwGeom tg = g;
        for (int c = 0; c < d->cin; c++) {
            size_t i = (size_t)n * d->cin + c;
            const float *P = x + i * in;
            if (!dw_in_place(&tg)) {
                dw_fill(&tg, P, tws);
                P = tws;
            }
            if (dy)
                dw_filter(&tg, P, dy + i * on, tout + c * kk);
            else
                dw_fwd(&tg, P, w + c * kk, out + i * on, 0);
        }
    }
    if (dy)
        for (int t = 1; t < T; t++) {
            const float *part = ws + (size_t)T * per + (size_t)(t - 1) * nw;
            for (size_t j = 0; j < nw; j++)
                out[j] += part[j];
        }
}

static void dw_conv_data(const ConvDesc *d,
                         const float *dy, // (N, C, OH, OW)
                         const float *w,  // (C, 1, K, K)
                         float *dx,       // (N, C, H, W), added to
                         float *ws)       // (cpu_conv_workspace)
{
    DwGeom g = dw_geom(d), gg;
    size_t in = (size_t)d->h * d->w, on = (size_t)d->oh * d->ow, kk = (size_t)d->kh * d->kw;
    size_t per = dw_workspace(d);
    int T = conv_threads < d->n ? conv_threads : d->n;

    if (dw_gather_geom(&g, &gg)) {
        memset(ws, 0, (size_t)T * per * sizeof *ws);
#pragma omp parallel for num_threads(T) schedule(static)
        for (int n = 0; n < d->n; n++) {
            float *tws = ws + (size_t)thread_id() * per;
            float *wf = tws + dw_plane_size(&gg); /* the kernel reversed */
            for (int c = 0; c < d->cin; c++) {
                size_t i = (size_t)n * d->cin + c;
                for (size_t t = 0; t < kk; t++)
                    wf[t] = w[c * kk + kk - 1 - t];
                dw_fill(&gg, dy + i * on, tws);
                dw_fwd(&gg, tws, wf, dx + i * in, 1);
            }
        }
        return;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (int n = 0; n < d->n; n++) {
        float *tws = ws + (size_t)thread_id() * per;
        for (int c = 0; c < d->cin; c++) {
            size_t i = (size_t)n * d->cin + c;
            memset(tws, 0, dw_plane_size(&g) * sizeof *tws);
            dw_data(&g, dy + i * on, w + c * kk, tws);
            dw_merge(&g, tws, dx + i * in);
        }
    }
}

/* ---- general: im2col + sgemm ---- */

/* col (C * K * K, OH * OW) = the input patches of x (C, H, W), zeros where
 * they fall in the padding. */
static void im2col(const ConvDesc *d, int c,
                   const float *x, // (C, H, W)
                   float *col)     // (C * K * K, OH * OW)
{
    int k = d->kh, s = d->stride, oh = d->oh, ow = d->ow;
    for (int ci = 0; ci < c; ci++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = col + ((size_t)(ci * k + ki) * k + kj) * oh * ow;
                int off = kj * d->dil - d->pad, lo, hi;
                row_range(off, s, d->w, ow, &lo, &hi);
                for (int oy = 0; oy < oh; oy++, row += ow) {
                    int iy = oy * s + ki * d->dil - d->pad;
                    const float *xr;
                    if (iy < 0 || iy >= d->h) {
                        row_zero(ow, row);
                        continue;
                    }
                    xr = x + ((size_t)ci * d->h + iy) * d->w;
                    row_zero(lo, row);
                    if (s == 1)
                        row_copy(hi - lo, xr + lo + off, row + lo);
                    else
                        for (int ox = lo; ox < hi; ox++)
                            row[ox] = xr[ox * s + off];
                    row_zero(ow - hi, row + hi);
                }
            }
}

/* dx (C, H, W) += the patches in col (C * K * K, OH * OW), padding dropped. */
static void col2im(const ConvDesc *d, int c,
                   const float *col, // (C * K * K, OH * OW)
                   float *dx)        // (C, H, W)
{
    int k = d->kh, s = d->stride, oh = d->oh, ow = d->ow;
    for (int ci = 0; ci < c; ci++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const float *row = col + ((size_t)(ci * k + ki) * k + kj) * oh * ow;
                int off = kj * d->dil - d->pad, lo, hi;
                row_range(off, s, d->w, ow, &lo, &hi);
                for (int oy = 0; oy < oh; oy++, row += ow) {
                    int iy = oy * s + ki * d->dil - d->pad;
                    float *dr;
                    if (iy < 0 || iy >= d->h)
                        continue;
                    dr = dx + ((size_t)ci * d->h + iy) * d->w;
                    if (s == 1)
                        row_add(hi - lo, row + lo, dr + lo + off);
                    else
                        for (int ox = lo; ox < hi; ox++)
                            dr[ox * s + off] += row[ox];
                }
            }
}

/* Scratch of one thread on the 3x3 path. */
static size_t c3_per(const ConvDesc *d)
{
    int T = conv_threads < d->n ? conv_threads : d->n;
    return c3_thread_workspace(d, (d->n + T - 1) / T);
}

/* Scratch of one thread. */
static size_t thread_workspace(const ConvDesc *d)
{
    switch (conv_path(d)) {
    case CONV_DEPTHWISE:
        return dw_workspace(d);
    case CONV_1X1:
        return 0;
    case CONV_GEMM:
        break;
    }
    return (size_t)(d->cin / d->groups) * d->kh * d->kw * d->oh * d->ow;
}

size_t cpu_conv_workspace(const ConvDesc *d)
{
    /* each thread's scratch, then the other threads' filter-gradient sums;
     * room for either path where the 3x3 one may be switched off */
    size_t T = (size_t)(conv_threads < d->n ? conv_threads : d->n);
    size_t nw = (size_t)d->cout * (size_t)(d->cin / d->groups) * d->kh * d->kw;
    size_t ws = T * thread_workspace(d);
    if (c3_shape_ok(d)) {
        size_t c3 = c3_shared_workspace(d) + T * c3_per(d);
        ws = c3 > ws ? c3 : ws;
    }
    return ws + (T - 1) * nw;
}

/* Where the filter-gradient partial sums start in ws. */
static float *parts_of(const ConvDesc *d, float *ws)
{
    size_t T = (size_t)(conv_threads < d->n ? conv_threads : d->n);
    size_t nw = (size_t)d->cout * (size_t)(d->cin / d->groups) * d->kh * d->kw;
    return ws + cpu_conv_workspace(d) - (T - 1) * nw;
}

void cpu_conv_fwd(void *ctx, const ConvDesc *d,
                  const float *x, // (N, Cin, H, W)
                  const float *w, // (Cout, Cin / G, K, K)
                  float *y,       // (N, Cout, OH, OW)
                  float *ws)      // (conv_workspace)
{
    ConvPath path = conv_path(d);
    int cig = d->cin / d->groups, cog = d->cout / d->groups;
    int kc = cig * d->kh * d->kw, hw = d->h * d->w, p = d->oh * d->ow;
    int T = conv_threads < d->n ? conv_threads : d->n;
    size_t per = thread_workspace(d);

    if (path == CONV_DEPTHWISE) {
        dw_conv_x(d, x, w, NULL, y, ws);
        return;
    }
    if (c3_applies(d)) {
        c3_fwd(d, T, x, w, y, ws, c3_per(d));
        return;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (int n = 0; n < d->n; n++) {
        float *tws = ws ? ws + (size_t)thread_id() * per : NULL;
        for (int g = 0; g < d->groups; g++) {
            const float *xg = x + ((size_t)n * d->cin + (size_t)g * cig) * hw; // (Cin/G, H, W)
            const float *wg = w + (size_t)g * cog * kc;                        // (Cout/G, KC)
            float *yg = y + ((size_t)n * d->cout + (size_t)g * cog) * p;       // (Cout/G, OH*OW)
            if (path == CONV_GEMM) {
                im2col(d, cig, xg, tws);
                xg = tws;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, p, kc, 1.0f, wg, kc, xg, p,
                        0.0f, yg, p);
        }
    }
}

void cpu_conv_bwd_data(void *ctx, const ConvDesc *d,
                       const float *dy, // (N, Cout, OH, OW)
                       const float *w,  // (Cout, Cin / G, K, K)
                       float *dx,       // (N, Cin, H, W), added to
                       float *ws)       // (conv_workspace)
{
    ConvPath path = conv_path(d);
    int cig = d->cin / d->groups, cog = d->cout / d->groups;
    int kc = cig * d->kh * d->kw, hw = d->h * d->w, p = d->oh * d->ow;
    int T = conv_threads < d->n ? conv_threads : d->n;
    size_t per = thread_workspace(d);

    if (path == CONV_DEPTHWISE) {
        dw_conv_data(d, dy, w, dx, ws);
        return;
    }
    if (c3_applies(d)) {
        c3_bwd_data(d, T, dy, w, dx, ws, c3_per(d));
        return;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (int n = 0; n < d->n; n++) {
        float *tws = ws ? ws + (size_t)thread_id() * per : NULL;
        for (int g = 0; g < d->groups; g++) {
            const float *dyg = dy + ((size_t)n * d->cout + (size_t)g * cog) * p; // (Cout/G, OH*OW)
            const float *wg = w + (size_t)g * cog * kc;                          // (Cout/G, KC)
            float *dxg = dx + ((size_t)n * d->cin + (size_t)g * cig) * hw;       // (Cin/G, H, W)
            if (path == CONV_1X1) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cig, hw, cog, 1.0f, wg, cig, dyg,
                            hw, 1.0f, dxg, hw);
                continue;
            }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kc, p, cog, 1.0f, wg, kc, dyg, p, 0.0f,
                        tws, p);
            col2im(d, cig, tws, dxg);
        }
    }
}

void cpu_conv_bwd_filter(void *ctx, const ConvDesc *d,
                         const float *x,  // (N, Cin, H, W)
                         const float *dy, // (N, Cout, OH, OW)
                         float *dw,       // (Cout, Cin / G, K, K), added to
                         float *ws)       // (conv_workspace)
{
    ConvPath path = conv_path(d);
    int cig = d->cin / d->groups, cog = d->cout / d->groups;
    int kc = cig * d->kh * d->kw, hw = d->h * d->w, p = d->oh * d->ow;
    int T = conv_threads < d->n ? conv_threads : d->n;
    size_t per = thread_workspace(d), nw = (size_t)d->cout * kc;
    float *parts = ws ? parts_of(d, ws) : NULL; /* (T - 1, Cout, Cin / G, K, K) */

    if (path == CONV_DEPTHWISE) {
        dw_conv_x(d, x, NULL, dy, dw, ws);
        return;
    }
    if (T > 1)
        memset(parts, 0, (size_t)(T - 1) * nw * sizeof *parts);
    if (c3_applies(d)) {
        c3_bwd_filter(d, T, x, dy, dw, ws, c3_per(d), parts);
    } else {
#pragma omp parallel for num_threads(T) schedule(static)
        for (int n = 0; n < d->n; n++) {
            int t = thread_id();
            float *tws = ws ? ws + (size_t)t * per : NULL;
            float *tdw = t ? parts + (size_t)(t - 1) * nw : dw;
            for (int g = 0; g < d->groups; g++) {
                const float *xg = x + ((size_t)n * d->cin + (size_t)g * cig) * hw;   // (Cin/G, H, W)
                const float *dyg = dy + ((size_t)n * d->cout + (size_t)g * cog) * p; // (Cout/G, OH*OW)
                float *dwg = tdw + (size_t)g * cog * kc;                             // (Cout/G, KC)
                if (path == CONV_GEMM) {
                    im2col(d, cig, xg, tws);
                    xg = tws;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cog, kc, p, 1.0f, dyg, p, xg, p, 1.0f,
                            dwg, kc);
            }
        }
    }
    for (int t = 1; t < T; t++)
        for (size_t j = 0; j < nw; j++)
            dw[j] += parts[(size_t)(t - 1) * nw + j];
}
