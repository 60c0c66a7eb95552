/* Unit tests for the CPU convolution and pooling operators: forward values
 * against naive loops, backward against finite differences, accumulation,
 * workspace bounds, and the descriptors' checks and messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "gradcheck.h"

#include "core/rng.h"
#include "nn/cpu/cpu.h"
#include "nn/ops.h"

#define GUARD 64
#define SENTINEL 12345.0f

static float *buf(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

/* Scratch holds garbage between calls: the ops must not read what they
 * did not write. */
static void ws_dirty(float *ws, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ws[i] = NAN;
}

/* A workspace of n floats followed by sentinels that the ops must not touch. */
static float *ws_new(size_t n)
{
    float *p = buf(n + GUARD);
    ws_dirty(p, n);
    for (size_t i = 0; i < GUARD; i++)
        p[n + i] = SENTINEL;
    return p;
}

static void ws_check(const char *what, const float *ws, size_t n)
{
    for (size_t i = 0; i < GUARD; i++)
        if (ws[n + i] != SENTINEL)
            fail_msg("%s: workspace of %zu floats overrun at +%zu", what, n, i);
}

static void expect_close(const char *what, const float *got, const float *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1 + fabs((double)want[i]))))
            fail_msg("%s: at %zu: got %.7g, want %.7g", what, i, (double)got[i], (double)want[i]);
}

/* ---- convolution ---- */

static void naive_conv(const ConvDesc *d,
                       const float *x, // (N, Cin, H, W)
                       const float *w, // (Cout, Cin/G, K, K)
                       float *y)       // (N, Cout, OH, OW)
{
    int cig = d->cin / d->groups, cog = d->cout / d->groups, k = d->kh;
    for (int n = 0; n < d->n; n++)
        for (int co = 0; co < d->cout; co++)
            for (int oy = 0; oy < d->oh; oy++)
                for (int ox = 0; ox < d->ow; ox++) {
                    double acc = 0;
                    int g = co / cog;
                    for (int ci = 0; ci < cig; ci++)
                        for (int ki = 0; ki < k; ki++)
                            for (int kj = 0; kj < k; kj++) {
                                int iy = oy * d->stride - d->pad + ki * d->dil;
                                int ix = ox * d->stride - d->pad + kj * d->dil;
                                if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                                    continue;
                                acc += (double)x[(((size_t)n * d->cin + g * cig + ci) * d->h + iy) * d->w + ix] *
                                       w[(((size_t)co * cig + ci) * k + ki) * k + kj];
                            }
                    y[(((size_t)n * d->cout + co) * d->oh + oy) * d->ow + ox] = (float)acc;
                }
}

typedef struct ConvRun {
    ConvDesc d;
    const float *x, *w; /* the operand held fixed */
    float *ws;
} ConvRun;

static void conv_of_x(void *ctx, const float *x, float *y)
{
    ConvRun *r = ctx;
    cpu_conv_fwd(NULL, &r->d, x, r->w, y, r->ws);
}

static void conv_of_w(void *ctx, const float *w, float *y)
{
    ConvRun *r = ctx;
    cpu_conv_fwd(NULL, &r->d, r->x, w, y, r->ws);
}

/* Forward against the naive loops (y prefilled with NaN: forward must
 * overwrite), both backwards against finite differences, and accumulation
 * onto a non-zero gradient, calling each backward twice. */
static void conv_check(const ConvDesc *d, uint64_t seed)
{
    char what[160];
    size_t nx = (size_t)d->n * d->cin * d->h * d->w, ny = (size_t)d->n * d->cout * d->oh * d->ow;
    size_t nw = (size_t)d->cout * (d->cin / d->groups) * d->kh * d->kw, nws = conv_workspace(d);
    float *x = buf(nx), *w = buf(nw), *y = buf(ny), *ref = buf(ny), *dy = buf(ny);
    float *dx = buf(nx), *dw = buf(nw), *acc = buf(nx > nw ? nx : nw), *want = buf(nx > nw ? nx : nw);
    float *ws = ws_new(nws);
    ConvRun r = {*d, x, w, ws};
    Rng rng;

    snprintf(what, sizeof what, "conv n%d cin%d %dx%d cout%d k%d s%d p%d d%d g%d", d->n, d->cin, d->h,
             d->w, d->cout, d->kh, d->stride, d->pad, d->dil, d->groups);
    rng_seed(&rng, seed);
    gc_fill(&rng, x, nx, -1, 1);
    gc_fill(&rng, w, nw, -0.5f, 0.5f);
    gc_fill(&rng, dy, ny, -1, 1);

    for (size_t i = 0; i < ny; i++)
        y[i] = NAN;
    cpu_conv_fwd(NULL, d, x, w, y, ws);
    naive_conv(d, x, w, ref);
    expect_close(what, y, ref, ny, 1e-5);

    ws_dirty(ws, nws);
    cpu_conv_bwd_data(NULL, d, dy, w, dx, ws);
    gc_check(what, conv_of_x, &r, x, nx, ny, dy, dx, 40, 0.1f, 1e-3, 1e-3);
    ws_dirty(ws, nws);
    cpu_conv_bwd_filter(NULL, d, x, dy, dw, ws);
    gc_check(what, conv_of_w, &r, w, nw, ny, dy, dw, 40, 0.1f, 1e-3, 1e-3);

    gc_fill(&rng, acc, nx, -1, 1);
    for (size_t i = 0; i < nx; i++)
        want[i] = acc[i] + 2 * dx[i];
    ws_dirty(ws, nws);
    cpu_conv_bwd_data(NULL, d, dy, w, acc, ws);
    cpu_conv_bwd_data(NULL, d, dy, w, acc, ws);
    expect_close(what, acc, want, nx, 1e-5);

    gc_fill(&rng, acc, nw, -1, 1);
    for (size_t i = 0; i < nw; i++)
        want[i] = acc[i] + 2 * dw[i];
    ws_dirty(ws, nws);
    cpu_conv_bwd_filter(NULL, d, x, dy, acc, ws);
    cpu_conv_bwd_filter(NULL, d, x, dy, acc, ws);
    expect_close(what, acc, want, nw, 1e-5);

    ws_check(what, ws, nws);
    free(x), free(w), free(y), free(ref), free(dy), free(dx), free(dw), free(acc), free(want), free(ws);
}

/* Every combination of kernel, stride, padding, dilation, grouping and
 * batch, on odd non-square inputs; shapes that do not fit must be refused. */
static void test_conv_shapes(void **state)
{
    /* groups: 1, 2, depthwise, and groups == Cin with two outputs each */
    static const int chans[4][3] = {{3, 4, 1}, {4, 6, 2}, {3, 3, 3}, {2, 4, 2}};
    static const int ks[] = {1, 3, 5};
    int checked = 0, refused = 0;
    uint64_t seed = 1;

    for (int ki = 0; ki < 3; ki++)
        for (int s = 1; s <= 2; s++)
            for (int p = 0; p <= 2; p++)
                for (int dl = 1; dl <= 2; dl++)
                    for (int gi = 0; gi < 4; gi++)
                        for (int n = 1; n <= 3; n += 2) {
                            int k = ks[ki], h = n == 1 ? 7 : 6, w = n == 1 ? 19 : 5;
                            int ke = dl * (k - 1) + 1;
                            ConvDesc d;
                            XErr e = {0};
                            int rc = conv_desc_init(&d, n, chans[gi][0], h, w, chans[gi][1], k, s, p, dl,
                                                    chans[gi][2], &e);
                            if (ke > h + 2 * p || ke > w + 2 * p) {
                                unit_expect_error(rc, &e, "does not fit input");
                                refused++;
                                continue;
                            }
                            assert_int_equal(rc, XE_OK);
                            assert_int_equal(d.oh, (h + 2 * p - dl * (k - 1) - 1) / s + 1);
                            assert_int_equal(d.ow, (w + 2 * p - dl * (k - 1) - 1) / s + 1);
                            conv_check(&d, seed++);
                            checked++;
                        }
    assert_true(checked > 200);
    assert_true(refused > 10);
}

/* Larger planes, so depthwise rows run through the eight-wide blocks as
 * well as the tails: every specialised (K, S, D) and the general loops. */
static void test_conv_depthwise(void **state)
{
    static const int shapes[][4] = {
        /* k, stride, dilation, pad */
        {3, 1, 1, 1}, {3, 1, 2, 2}, {3, 2, 1, 1}, {3, 2, 2, 2}, {5, 1, 1, 2}, {5, 1, 2, 4},
        {5, 2, 1, 2}, {5, 2, 2, 4}, {3, 1, 1, 0}, {7, 1, 1, 3}, {3, 3, 3, 1}, {1, 1, 1, 0},
        {1, 2, 1, 0}, {4, 1, 1, 1},
    };
    uint64_t seed = 100;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        static const int hw[][2] = {{16, 16}, {11, 21}};
        for (int j = 0; j < 2; j++) {
            ConvDesc d;
            XErr e = {0};
            assert_int_equal(conv_desc_init(&d, 2, 5, hw[j][0], hw[j][1], 5, shapes[i][0], shapes[i][1],
                                            shapes[i][3], shapes[i][2], 5, &e),
                             XE_OK);
            conv_check(&d, seed++);
        }
    }
}

/* The shapes of the search spaces: NAS-Bench-201's 3x3 and 1x1 convs, the
 * DARTS FactorizedReduce 1x1 stride-2 convs, grouped convs. */
static void test_conv_cells(void **state)
{
    static const int shapes[][9] = {
        /* n, cin, h, w, cout, k, stride, pad, groups */
        {2, 8, 16, 16, 8, 3, 1, 1, 1},  {2, 8, 16, 16, 16, 1, 1, 0, 1}, {2, 8, 16, 16, 4, 1, 2, 0, 1},
        {2, 8, 15, 15, 4, 1, 2, 0, 1},  {3, 6, 9, 8, 6, 3, 2, 1, 1},    {2, 8, 8, 8, 12, 1, 1, 0, 4},
        {2, 8, 10, 12, 8, 3, 1, 1, 4},  {1, 3, 32, 32, 8, 3, 1, 1, 1},  {2, 4, 5, 5, 4, 1, 1, 1, 1},
    };
    uint64_t seed = 200;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        ConvDesc d;
        XErr e = {0};
        assert_int_equal(conv_desc_init(&d, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], 1, s[8], &e),
                         XE_OK);
        conv_check(&d, seed++);
    }
}

static void test_conv_workspace(void **state)
{
    ConvDesc d;
    XErr e = {0};
    /* 1x1 stride 1: one sgemm per image, no scratch */
    assert_int_equal(conv_desc_init(&d, 2, 8, 6, 7, 4, 1, 1, 0, 1, 1, &e), XE_OK);
    assert_int_equal(conv_workspace(&d), 0);
    /* depthwise unpadded stride 1: the forward reads x in place, backward
     * data needs dy padded by 2 (OH + 4, OW + 4) and the reversed kernel */
    assert_int_equal(conv_desc_init(&d, 2, 8, 6, 7, 8, 3, 1, 0, 1, 8, &e), XE_OK);
    assert_int_equal(conv_workspace(&d), (4 + 4) * (5 + 4) + 9);
    /* depthwise: one padded plane, split into two column phases */
    assert_int_equal(conv_desc_init(&d, 2, 8, 6, 7, 8, 3, 2, 1, 1, 8, &e), XE_OK);
    assert_int_equal(conv_workspace(&d), 2 * 8 * 5);
    /* general: one image-and-group im2col matrix */
    assert_int_equal(conv_desc_init(&d, 2, 8, 6, 7, 6, 3, 1, 1, 2, 2, &e), XE_OK);
    assert_int_equal(d.oh, 4);
    assert_int_equal(d.ow, 5);
    assert_int_equal(conv_workspace(&d), 4 * 9 * 4 * 5);
}

static void expect_conv_error(int n, int cin, int h, int w, int cout, int k, int s, int p, int dl, int g,
                              const char *msg)
{
    ConvDesc d;
    XErr e = {0};
    assert_int_equal(conv_desc_init(&d, n, cin, h, w, cout, k, s, p, dl, g, &e), XE_FAIL);
    assert_int_equal(e.code, XE_FAIL);
    assert_string_equal(e.msg, msg);
}

static void test_conv_desc_errors(void **state)
{
    expect_conv_error(0, 3, 8, 8, 4, 3, 1, 1, 1, 1, "conv: batch size 0 must be positive");
    expect_conv_error(1, 0, 8, 8, 4, 3, 1, 1, 1, 1, "conv: input channels 0 must be positive");
    expect_conv_error(1, 3, 8, 8, -1, 3, 1, 1, 1, 1, "conv: output channels -1 must be positive");
    expect_conv_error(1, 3, 0, 8, 4, 3, 1, 1, 1, 1, "conv: input size 0x8 must be positive");
    expect_conv_error(1, 3, 8, 8, 4, 0, 1, 1, 1, 1, "conv: kernel 0 must be positive");
    expect_conv_error(1, 3, 8, 8, 4, 3, 0, 1, 1, 1, "conv: stride 0 must be positive");
    expect_conv_error(1, 3, 8, 8, 4, 3, 1, 1, 0, 1, "conv: dilation 0 must be positive");
    expect_conv_error(1, 3, 8, 8, 4, 3, 1, -1, 1, 1, "conv: padding -1 must not be negative");
    expect_conv_error(1, 3, 8, 8, 4, 3, 1, 1, 1, 0, "conv: groups 0 must be positive");
    expect_conv_error(1, 6, 8, 8, 4, 3, 1, 1, 1, 4, "conv: input channels 6 not divisible by groups 4");
    expect_conv_error(1, 4, 8, 8, 6, 3, 1, 1, 1, 4, "conv: output channels 6 not divisible by groups 4");
    expect_conv_error(1, 3, 3, 3, 4, 5, 1, 0, 1, 1, "conv: kernel 5 with padding 0 does not fit input 3x3");
    expect_conv_error(1, 3, 8, 3, 4, 5, 1, 0, 1, 1, "conv: kernel 5 with padding 0 does not fit input 8x3");
    expect_conv_error(1, 3, 4, 4, 4, 3, 1, 0, 2, 1,
                      "conv: kernel 3 with dilation 2 and padding 0 does not fit input 4x4");
    expect_conv_error(1, 3, 8, 8, 4, 3, 1, 1000000000, 1, 1,
                      "conv: input 3x8x8 with kernel 3, padding 1000000000 and 4 output channels is too large");
    expect_conv_error(1, 3, 8, 8, 4, 2000000000, 1, 2000000000, 1, 1,
                      "conv: input 3x8x8 with kernel 2000000000, padding 2000000000 and 4 output channels "
                      "is too large");
    expect_conv_error(1, 1, 60000, 60000, 1, 3, 1, 1, 1, 1,
                      "conv: input 1x60000x60000 with kernel 3, padding 1 and 1 output channels is too large");
    {
        /* the boundary: an effective kernel exactly the padded size fits */
        ConvDesc d;
        XErr e = {0};
        assert_int_equal(conv_desc_init(&d, 1, 3, 4, 4, 4, 3, 1, 1, 2, 1, &e), XE_OK);
        assert_int_equal(d.oh, 2);
        assert_int_equal(d.ow, 2);
        assert_int_equal(conv_desc_init(&d, 1, 3, 3, 3, 4, 3, 2, 0, 1, 1, &e), XE_OK);
        assert_int_equal(d.oh, 1);
    }
}

/* ---- pooling ---- */

static void naive_pool(const PoolDesc *d,
                       const float *x, // (N, C, H, W)
                       float *y)       // (N, C, OH, OW)
{
    for (int i = 0; i < d->n * d->c; i++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                double sum = 0, mx = -INFINITY;
                int count = 0;
                for (int ki = 0; ki < d->k; ki++)
                    for (int kj = 0; kj < d->k; kj++) {
                        int iy = oy * d->stride - d->pad + ki, ix = ox * d->stride - d->pad + kj;
                        double v;
                        if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                            continue;
                        v = x[((size_t)i * d->h + iy) * d->w + ix];
                        sum += v;
                        mx = v > mx ? v : mx;
                        count++;
                    }
                y[((size_t)i * d->oh + oy) * d->ow + ox] = (float)(d->type == POOL_MAX ? mx : sum / count);
            }
}

static void pool_of_x(void *ctx, const float *x, float *y)
{
    cpu_pool_fwd(NULL, ctx, x, y);
}

/* x: distinct values 0.01 apart in random order, so a 1e-3 step never
 * changes a window's maximum. */
static void pool_fill(Rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)i * 0.01f - 2.0f;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

static void pool_check(PoolDesc *d, uint64_t seed)
{
    char what[128];
    size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->oh * d->ow;
    float *x = buf(nx), *y = buf(ny), *ref = buf(ny), *dy = buf(ny), *dx = buf(nx), *acc = buf(nx),
          *want = buf(nx);
    Rng rng;

    snprintf(what, sizeof what, "%s pool n%d c%d %dx%d k%d s%d p%d", d->type == POOL_MAX ? "max" : "avg",
             d->n, d->c, d->h, d->w, d->k, d->stride, d->pad);
    rng_seed(&rng, seed);
    pool_fill(&rng, x, nx);
    gc_fill(&rng, dy, ny, -1, 1);
    for (size_t i = 0; i < ny; i++)
        y[i] = NAN;
    cpu_pool_fwd(NULL, d, x, y);
    naive_pool(d, x, ref);
    expect_close(what, y, ref, ny, 1e-6);

    cpu_pool_bwd(NULL, d, x, y, dy, dx);
    gc_check(what, pool_of_x, d, x, nx, ny, dy, dx, 60, 1e-3f, 2e-3, 1e-3);

    gc_fill(&rng, acc, nx, -1, 1);
    for (size_t i = 0; i < nx; i++)
        want[i] = acc[i] + 2 * dx[i];
    cpu_pool_bwd(NULL, d, x, y, dy, acc);
    cpu_pool_bwd(NULL, d, x, y, dy, acc);
    expect_close(what, acc, want, nx, 1e-5);
    free(x), free(y), free(ref), free(dy), free(dx), free(acc), free(want);
}

static void test_pool_shapes(void **state)
{
    int checked = 0;
    uint64_t seed = 300;
    for (int t = 0; t < 2; t++)
        for (int k = 1; k <= 7; k++)
            for (int s = 1; s <= 2; s++)
                for (int p = 0; p <= k / 2; p++)
                    for (int i = 0; i < 3; i++) {
                        /* the 37 wide rows take the eight-output blocks at stride 2 too */
                        static const int shapes[3][3] = {{1, 7, 10}, {2, 9, 5}, {1, 4, 37}};
                        int n = shapes[i][0], h = shapes[i][1], w = shapes[i][2];
                        PoolDesc d;
                        XErr e = {0};
                        int rc = pool_desc_init(&d, t ? POOL_MAX : POOL_AVG, n, 3, h, w, k, s, p, &e);
                        if (k > h + 2 * p || k > w + 2 * p) {
                            unit_expect_error(rc, &e, "does not fit input");
                            continue;
                        }
                        assert_int_equal(rc, XE_OK);
                        assert_int_equal(d.oh, (h + 2 * p - k) / s + 1);
                        assert_int_equal(d.ow, (w + 2 * p - k) / s + 1);
                        pool_check(&d, seed++);
                        checked++;
                    }
    assert_true(checked > 100);
}

/* Padding is not counted: a constant input averages to itself everywhere. */
static void test_pool_avg_excludes_padding(void **state)
{
    PoolDesc d;
    XErr e = {0};
    float x[5 * 6], y[5 * 6], dy[5 * 6], dx[5 * 6] = {0};
    assert_int_equal(pool_desc_init(&d, POOL_AVG, 1, 1, 5, 6, 3, 1, 1, &e), XE_OK);
    for (int i = 0; i < 30; i++)
        x[i] = 2.5f, dy[i] = 1.0f;
    cpu_pool_fwd(NULL, &d, x, y);
    for (int i = 0; i < 30; i++)
        assert_float_equal(y[i], 2.5f, 1e-6);
    /* corner input 0 feeds 4 windows: its own (4 inputs), two edges (6
     * each) and one interior (9) */
    cpu_pool_bwd(NULL, &d, x, y, dy, dx);
    assert_float_equal(dx[0], 1.0f / 4 + 2.0f / 6 + 1.0f / 9, 1e-6);
}

/* Ties go to the first maximum in row-major order, as PyTorch's CPU pool:
 * at stride 1 (taps over rows, windows overlapping) ... */
static void test_pool_max_ties_stride1(void **state)
{
    enum { H = 6, W = 11 };
    PoolDesc d;
    XErr e = {0};
    float x[H * W], y[H * W], dy[H * W], dx[H * W] = {0}, want[H * W] = {0};
    assert_int_equal(pool_desc_init(&d, POOL_MAX, 1, 1, H, W, 3, 1, 1, &e), XE_OK);
    for (int i = 0; i < H * W; i++)
        x[i] = 1.0f, dy[i] = (float)(i + 1);
    cpu_pool_fwd(NULL, &d, x, y);
    cpu_pool_bwd(NULL, &d, x, y, dy, dx);
    /* the window of (oy, ox) starts at (oy - 1, ox - 1), clipped */
    for (int oy = 0; oy < H; oy++)
        for (int ox = 0; ox < W; ox++)
            want[(oy > 0 ? oy - 1 : 0) * W + (ox > 0 ? ox - 1 : 0)] += dy[oy * W + ox];
    for (int i = 0; i < H * W; i++)
        assert_float_equal(dx[i], want[i], 0);
}

/* ... and at stride 2 (a search per output). */
static void test_pool_max_ties_stride2(void **state)
{
    PoolDesc d;
    XErr e = {0};
    float x[16], y[4], dy[4] = {1, 2, 3, 4}, dx[16] = {0};
    assert_int_equal(pool_desc_init(&d, POOL_MAX, 1, 1, 4, 4, 2, 2, 0, &e), XE_OK);
    for (int i = 0; i < 16; i++)
        x[i] = 1.0f;
    cpu_pool_fwd(NULL, &d, x, y);
    cpu_pool_bwd(NULL, &d, x, y, dy, dx);
    for (int i = 0; i < 16; i++) {
        float top_left = i == 0 ? 1 : i == 2 ? 2 : i == 8 ? 3 : i == 10 ? 4 : 0;
        assert_float_equal(dx[i], top_left, 0);
    }
}

static void expect_pool_error(PoolType t, int n, int c, int h, int w, int k, int s, int p, const char *msg)
{
    PoolDesc d;
    XErr e = {0};
    assert_int_equal(pool_desc_init(&d, t, n, c, h, w, k, s, p, &e), XE_FAIL);
    assert_string_equal(e.msg, msg);
}

static void test_pool_desc_errors(void **state)
{
    expect_pool_error((PoolType)7, 1, 3, 8, 8, 3, 1, 1, "pool: unknown type 7");
    expect_pool_error(POOL_AVG, 0, 3, 8, 8, 3, 1, 1, "pool: batch size 0 must be positive");
    expect_pool_error(POOL_AVG, 1, 0, 8, 8, 3, 1, 1, "pool: channels 0 must be positive");
    expect_pool_error(POOL_MAX, 1, 3, 8, -2, 3, 1, 1, "pool: input size 8x-2 must be positive");
    expect_pool_error(POOL_MAX, 1, 3, 8, 8, 0, 1, 0, "pool: kernel 0 must be positive");
    expect_pool_error(POOL_MAX, 1, 3, 8, 8, 3, 0, 1, "pool: stride 0 must be positive");
    expect_pool_error(POOL_MAX, 1, 3, 8, 8, 3, 1, -1, "pool: padding -1 must not be negative");
    expect_pool_error(POOL_AVG, 1, 3, 8, 8, 3, 1, 2, "pool: padding 2 is more than half of kernel 3");
    expect_pool_error(POOL_AVG, 1, 3, 3, 3, 5, 1, 0, "pool: kernel 5 with padding 0 does not fit input 3x3");
    expect_pool_error(POOL_MAX, 1, 3, 8, 2, 5, 2, 1, "pool: kernel 5 with padding 1 does not fit input 8x2");
    expect_pool_error(POOL_MAX, 1, 2, 40000, 40000, 3, 1, 1, "pool: input 2x40000x40000 is too large");
}

const struct CMUnitTest test_nn_conv_tests[] = {
    cmocka_unit_test(test_conv_shapes),
    cmocka_unit_test(test_conv_depthwise),
    cmocka_unit_test(test_conv_cells),
    cmocka_unit_test(test_conv_workspace),
    cmocka_unit_test(test_conv_desc_errors),
    cmocka_unit_test(test_pool_shapes),
    cmocka_unit_test(test_pool_avg_excludes_padding),
    cmocka_unit_test(test_pool_max_ties_stride1),
    cmocka_unit_test(test_pool_max_ties_stride2),
    cmocka_unit_test(test_pool_desc_errors),
};
const size_t test_nn_conv_count = sizeof test_nn_conv_tests / sizeof test_nn_conv_tests[0];
