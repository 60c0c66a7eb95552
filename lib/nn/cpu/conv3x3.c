/* Direct 3x3 stride-1 pad-1 convolutions with AVX-512 (the cells' conv 3x3:
 * most of every NAS-Bench-201 network's work), used when the CPU has
 * AVX-512F; conv.c falls back to im2col + sgemm otherwise.
 *
 * No im2col. A plane (H, W) is copied into a "grid": rows of Q = W + 1
 * floats, the extra column zero, one zero row above and below, so that the
 * input at (y + ky - 1, x + kx - 1) of output n = y * Q + x sits at grid
 * index n + ky * Q + kx (a left neighbour of column 0 is the previous row's
 * zero column). A 3x3 conv is then nine shifted products over the flat
 * range n < L = H * Q, sixteen outputs a vector; the column x = W is
 * computed and dropped (compressed out) when stored.
 *
 * Forward: a block of J output channels times V vectors of outputs lives in
 * registers across all Cin * 9 taps: per tap V input loads, J weight
 * broadcasts, J * V FMAs. Backward data is the forward conv of dy with the
 * kernel flipped and Cin/Cout swapped. Backward filter: dw[co][ci][tap] is
 * the dot product of dy's grid (zeros in the dropped column) with x's grid
 * shifted by the tap, over a run of images laid end to end; a block of J
 * output channels times the nine taps of one input channel in registers. */
#include <string.h>

#include "nn/cpu/conv3x3.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int c3_disabled;

void c3_set_enabled(int on)
{
    c3_disabled = !on;
}

/* GCC only: the kernels rely on its target pragma (clang, used for the
 * fuzzers, builds the fallback) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)

#pragma GCC push_options
#pragma GCC target("avx512f")
#include <immintrin.h>

#define VL 16
#define FWD_J 8 /* output channels a forward block */
#define FWD_V 3 /* vectors of outputs a forward block */
#define FLT_J 3 /* output channels a filter block */
/* Filter-gradient runs: images are grouped so that a run is about this
 * many floats, keeping a group's grids in L2; partial sums are reduced
 * into dw once a group. */
#define FLT_RUN 4096

typedef struct Grid {
    int h, w, q;  /* plane, row stride Q = W + 1 */
    int len;      /* L = H * Q outputs on the grid */
    int nvec;     /* vectors covering L */
    size_t plane; /* floats of one channel's grid */
} Grid;

static Grid grid_of(int h, int w)
{
    Grid g;
    g.h = h, g.w = w, g.q = w + 1;
    g.len = h * g.q;
    g.nvec = (g.len + VL - 1) / VL;
    /* reads reach n + 2Q + 2 for n < nvec * 16; the data start at 1 + Q */
    g.plane = ((size_t)g.nvec * VL + 2 * (size_t)g.q + 2 + VL - 1) / VL * VL;
    return g;
}

/* dst (plane) = x (H, W) on the input grid: row y at 1 + (y + 1) * Q. */
static void grid_fill(const Grid *g, const float *x, float *dst)
{
    size_t at = 1 + (size_t)g->q;
    memset(dst, 0, at * sizeof *dst);
    for (int y = 0; y < g->h; y++, at += g->q, x += g->w) {
        memcpy(dst + at, x, (size_t)g->w * sizeof *dst);
        dst[at + g->w] = 0.0f;
    }
    memset(dst + at, 0, (g->plane - at) * sizeof *dst);
}

/* Where vector v's valid lanes go: the mask of lanes with n < L and
 * n % Q != W, and the plane index of the first of them (n - n / Q). */
typedef struct Lanes {
    __mmask16 keep;
    int dst;
} Lanes;

static void lanes_of(const Grid *g, Lanes *ln)
{
    for (int v = 0; v < g->nvec; v++) {
        int first = -1;
        ln[v].keep = 0;
        for (int l = 0; l < VL; l++) {
            int n = v * VL + l;
            if (n >= g->len || n % g->q == g->w)
                continue;
            ln[v].keep |= (__mmask16)(1u << l);
            if (first < 0)
                first = n - n / g->q;
        }
        ln[v].dst = first < 0 ? 0 : first;
    }
}

/* y[v's lanes] (=|+=) acc */
static inline __attribute__((always_inline)) void store_lanes(const Lanes *ln, __m512 acc, float *y,
                                                              int add)
{
    int cnt = __builtin_popcount(ln->keep);
    __mmask16 low = (__mmask16)((1u << cnt) - 1);
    __m512 c = _mm512_maskz_compress_ps(ln->keep, acc);
    if (!cnt)
        return;
    if (add)
        c = _mm512_add_ps(c, _mm512_maskz_loadu_ps(low, y + ln->dst));
    _mm512_mask_storeu_ps(y + ln->dst, low, c);
}

/* y (J channels, H, W) (=|+=) the conv of xg (Cin grids) with the packed
 * weights of a block (Cin, 9, J), over vectors v0 .. v0 + V. */
static inline __attribute__((always_inline)) void fwd_block(const Grid *g, const Lanes *ln, int cin,
                                                            const float *xg, const float *wp, int v0,
                                                            float *y, size_t ystride, int add,
                                                            const int J, const int V)
{
    __m512 acc[FWD_J][FWD_V];
    int off[9];
    for (int t = 0; t < 9; t++)
        off[t] = (t / 3) * g->q + t % 3;
#pragma GCC unroll 8
    for (int j = 0; j < J; j++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            acc[j][v] = _mm512_setzero_ps();
    for (int ci = 0; ci < cin; ci++, wp += 9 * J) {
        const float *xc = xg + (size_t)ci * g->plane + (size_t)v0 * VL;
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) {
            __m512 in[FWD_V];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                in[v] = _mm512_loadu_ps(xc + off[t] + v * VL);
#pragma GCC unroll 8
            for (int j = 0; j < J; j++) {
                __m512 wv = _mm512_set1_ps(wp[t * J + j]);
                /* one broadcast for the V products, not one each */
                __asm__("" : "+v"(wv));
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    acc[j][v] = _mm512_fmadd_ps(wv, in[v], acc[j][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < J; j++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            store_lanes(&ln[v0 + v], acc[j][v], y + j * ystride, add);
}

#define FWD_CASE(J)                                                                                \
    case J:                                                                                        \
        for (; v + FWD_V <= g->nvec; v += FWD_V)                                                   \
            fwd_block(g, ln, cin, xg, wj, v, yj, ys, add, J, FWD_V);                               \
        for (; v + 2 <= g->nvec; v += 2)                                                           \
            fwd_block(g, ln, cin, xg, wj, v, yj, ys, add, J, 2);                                   \
        for (; v < g->nvec; v++)                                                                   \
            fwd_block(g, ln, cin, xg, wj, v, yj, ys, add, J, 1);                                   \
        break;

/* y (Cout, H, W) (=|+=) conv(xg (Cin grids), wp), wp the weights packed
 * by pack_weights. */
static void fwd_image(const Grid *g, const Lanes *ln, int cin, int cout, const float *xg,
                      const float *wp, float *y, int add)
{
    size_t ys = (size_t)g->h * g->w;
    for (int co = 0; co < cout; co += FWD_J) {
        int J = cout - co < FWD_J ? cout - co : FWD_J, v = 0;
        const float *wj = wp + (size_t)co * cin * 9;
        float *yj = y + co * ys;
        switch (J) {
            FWD_CASE(1)
            FWD_CASE(2)
            FWD_CASE(3)
            FWD_CASE(4)
            FWD_CASE(5)
            FWD_CASE(6)
            FWD_CASE(7)
            FWD_CASE(8)
        }
    }
}

/* wp = w (Cout, Cin, 3, 3) in forward blocks (Cout / 8, Cin, 9, 8), the
 * last block narrower; flip: the kernel of backward data instead, w
 * flipped with Cin and Cout swapped, in blocks (Cin / 8, Cout, 9, 8). */
static void pack_weights(const float *w, int cin, int cout, int flip, float *wp)
{
    int rows = flip ? cin : cout, cols = flip ? cout : cin;
    for (int r0 = 0; r0 < rows; r0 += FWD_J) {
        int J = rows - r0 < FWD_J ? rows - r0 : FWD_J;
        float *b = wp + (size_t)r0 * cols * 9;
        for (int c = 0; c < cols; c++)
            for (int t = 0; t < 9; t++)
                for (int j = 0; j < J; j++)
                    b[((size_t)c * 9 + t) * J + j] =
                        flip ? w[((size_t)c * cin + r0 + j) * 9 + 8 - t] : w[((size_t)(r0 + j) * cin + c) * 9 + t];
    }
}

/* dw rows (J, Cin, 9) += the nine tap products of dyg's J channels with
 * xg's channel ci over the run [0, len) (strides sdy, sx floats a
 * channel). */
static inline __attribute__((always_inline)) void flt_block(const Grid *g, const float *dyg, size_t sdy,
                                                            const float *xg, size_t len, float *dw,
                                                            size_t dws, const int J)
{
    __m512 acc[FLT_J][9];
    int off[9];
    for (int t = 0; t < 9; t++)
        off[t] = (t / 3) * g->q + t % 3;
#pragma GCC unroll 3
    for (int j = 0; j < J; j++)
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++)
            acc[j][t] = _mm512_setzero_ps();
    for (size_t n = 0; n < len; n += VL) {
        __m512 d[FLT_J];
#pragma GCC unroll 3
        for (int j = 0; j < J; j++)
            d[j] = _mm512_load_ps(dyg + j * sdy + n);
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) {
            __m512 in = _mm512_loadu_ps(xg + n + off[t]);
            /* one load for the J products, not one each */
            __asm__("" : "+v"(in));
#pragma GCC unroll 3
            for (int j = 0; j < J; j++)
                acc[j][t] = _mm512_fmadd_ps(d[j], in, acc[j][t]);
        }
    }
#pragma GCC unroll 3
    for (int j = 0; j < J; j++)
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++)
            dw[j * dws + t] += _mm512_reduce_add_ps(acc[j][t]);
}

/* dw (Cout, Cin, 9) += correlation over a run of images: dyg (Cout, run)
 * and xg (Cin, xrun: the run and a plane of slack). */
static void flt_run(const Grid *g, int cin, int cout, const float *dyg, const float *xg, size_t run,
                    size_t xrun, float *dw)
{
    size_t dws = (size_t)cin * 9;
    for (int co = 0; co < cout; co += FLT_J) {
        int J = cout - co < FLT_J ? cout - co : FLT_J;
        for (int ci = 0; ci < cin; ci++) {
            const float *dc = dyg + (size_t)co * run, *xc = xg + (size_t)ci * xrun;
            float *dwc = dw + co * dws + (size_t)ci * 9;
            if (J == 3)
                flt_block(g, dc, run, xc, run, dwc, dws, 3);
            else if (J == 2)
                flt_block(g, dc, run, xc, run, dwc, dws, 2);
            else
                flt_block(g, dc, run, xc, run, dwc, dws, 1);
        }
    }
}

#pragma GCC pop_options

static int c3_cpu_ok(void)
{
    static int ok = -1;
    if (ok < 0) {
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512f") != 0;
    }
    return ok;
}

int c3_available(void)
{
    return c3_cpu_ok();
}

int c3_shape_ok(const ConvDesc *d)
{
    return c3_cpu_ok() && d->kh == 3 && d->kw == 3 && d->stride == 1 && d->pad == 1 &&
           d->dil == 1 && d->groups == 1 && d->oh == d->h && d->ow == d->w;
}

/* Filter runs: image i's grids start at i * S, S = (H + 1) * Q, so that
 * one zero row is both an image's bottom padding and the next one's top.
 * Images a run holds, and the floats of a run of m images in dy's layout
 * and in x's (which is read up to 2Q + 2 further). */
static int flt_group(const Grid *g, int n)
{
    int k = (int)(FLT_RUN / ((size_t)(g->h + 1) * g->q));
    return k < 1 ? 1 : k > n ? n : k;
}

static size_t flt_len(const Grid *g, int m)
{
    return ((size_t)m * (g->h + 1) * g->q + VL - 1) / VL * VL;
}

static size_t flt_xlen(const Grid *g, int m)
{
    return (flt_len(g, m) + 2 * (size_t)g->q + 2 + VL - 1) / VL * VL;
}

static size_t lanes_floats(const Grid *g)
{
    return ((size_t)g->nvec * sizeof(Lanes) + sizeof(float) - 1) / sizeof(float);
}

size_t c3_thread_workspace(const ConvDesc *d, int images)
{
    Grid g = grid_of(d->h, d->w);
    int k = flt_group(&g, images);
    size_t fwd = (size_t)(d->cin > d->cout ? d->cin : d->cout) * g.plane;
    size_t flt = (size_t)d->cout * flt_len(&g, k) + (size_t)d->cin * flt_xlen(&g, k);
    return (fwd > flt ? fwd : flt) + VL;
}

size_t c3_shared_workspace(const ConvDesc *d)
{
    Grid g = grid_of(d->h, d->w);
    return (size_t)d->cout * d->cin * 9 + lanes_floats(&g) + VL;
}

static float *align64(float *p)
{
    return (float *)(((size_t)p + 63) & ~(size_t)63);
}

static int thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The forward kernel over the batch: out (=) conv(in, w), or for flip
 * out (+=) the backward data conv, in = dy and w flipped. */
static void fwd_batch(const ConvDesc *d, int threads, int flip, const float *in, const float *w, float *out,
                      float *ws, size_t per)
{
    Grid g = grid_of(d->h, d->w);
    int cin = flip ? d->cout : d->cin, cout = flip ? d->cin : d->cout;
    float *wp = ws;
    Lanes *ln = (Lanes *)(ws + (size_t)d->cout * d->cin * 9);
    float *tws0 = ws + c3_shared_workspace(d);
    size_t hw = (size_t)d->h * d->w;
    pack_weights(w, d->cin, d->cout, flip, wp);
    lanes_of(&g, ln);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int n = 0; n < d->n; n++) {
        float *ig = align64(tws0 + (size_t)thread_num() * per);
        for (int c = 0; c < cin; c++)
            grid_fill(&g, in + ((size_t)n * cin + c) * hw, ig + c * g.plane);
        fwd_image(&g, ln, cin, cout, ig, wp, out + (size_t)n * cout * hw, flip);
    }
}

void c3_fwd(const ConvDesc *d, int threads, const float *x, const float *w, float *y, float *ws,
            size_t per)
{
    fwd_batch(d, threads, 0, x, w, y, ws, per);
}

void c3_bwd_data(const ConvDesc *d, int threads, const float *dy, const float *w, float *dx, float *ws,
                 size_t per)
{
    fwd_batch(d, threads, 1, dy, w, dx, ws, per);
}

void c3_bwd_filter(const ConvDesc *d, int threads, const float *x, const float *dy, float *dw,
                   float *ws, size_t per, float *parts)
{
    Grid g = grid_of(d->h, d->w);
    size_t hw = (size_t)d->h * d->w, nw = (size_t)d->cout * d->cin * 9;
    int T = threads;
#pragma omp parallel num_threads(T)
    {
        int t = thread_num();
        /* the same contiguous chunks of images as a static schedule */
        int lo = (int)((long)d->n * t / T), hi = (int)((long)d->n * (t + 1) / T);
        int k = flt_group(&g, (d->n + T - 1) / T);
        float *tdw = t ? parts + (size_t)(t - 1) * nw : dw;
        float *buf = align64(ws + c3_shared_workspace(d) + (size_t)t * per);
        for (int n0 = lo; n0 < hi; n0 += k) {
            int m = hi - n0 < k ? hi - n0 : k;
            size_t run = flt_len(&g, m), xrun = flt_xlen(&g, m), S = (size_t)(g.h + 1) * g.q;
            float *dyg = buf, *xg = buf + (size_t)d->cout * run;
            /* channel c's runs: dy row y of image i at c * run + i * S + y * Q,
             * x's at c * xrun + i * S + 1 + (y + 1) * Q; zeros elsewhere */
            memset(buf, 0, ((size_t)d->cout * run + (size_t)d->cin * xrun) * sizeof *buf);
            for (int i = 0; i < m; i++) {
                const float *dyi = dy + (size_t)(n0 + i) * d->cout * hw;
                const float *xi = x + (size_t)(n0 + i) * d->cin * hw;
                for (int c = 0; c < d->cout; c++)
                    for (int y = 0; y < g.h; y++)
                        memcpy(dyg + c * run + i * S + (size_t)y * g.q, dyi + c * hw + (size_t)y * g.w,
                               (size_t)g.w * sizeof *dyg);
                for (int c = 0; c < d->cin; c++)
                    for (int y = 0; y < g.h; y++)
                        memcpy(xg + c * xrun + i * S + 1 + (size_t)(y + 1) * g.q, xi + c * hw + (size_t)y * g.w,
                               (size_t)g.w * sizeof *xg);
            }
            flt_run(&g, d->cin, d->cout, dyg, xg, run, xrun, tdw);
        }
    }
}

int c3_applies(const ConvDesc *d)
{
    return !c3_disabled && c3_shape_ok(d);
}

#else /* no AVX-512 build */

int c3_available(void)
{
    return 0;
}

int c3_shape_ok(const ConvDesc *d)
{
    (void)d;
    return 0;
}

int c3_applies(const ConvDesc *d)
{
    (void)d;
    return 0;
}

size_t c3_thread_workspace(const ConvDesc *d, int images)
{
    (void)d, (void)images;
    return 0;
}

size_t c3_shared_workspace(const ConvDesc *d)
{
    (void)d;
    return 0;
}

void c3_fwd(const ConvDesc *d, int threads, const float *x, const float *w, float *y, float *ws,
            size_t per)
{
    (void)d, (void)threads, (void)x, (void)w, (void)y, (void)ws, (void)per;
}

void c3_bwd_data(const ConvDesc *d, int threads, const float *dy, const float *w, float *dx, float *ws,
                 size_t per)
{
    (void)d, (void)threads, (void)dy, (void)w, (void)dx, (void)ws, (void)per;
}

void c3_bwd_filter(const ConvDesc *d, int threads, const float *x, const float *dy, float *dw,
                   float *ws, size_t per, float *parts)
{
    (void)d, (void)threads, (void)x, (void)dy, (void)dw, (void)ws, (void)per, (void)parts;
}

#endif
