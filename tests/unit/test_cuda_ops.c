/* The CUDA backend against the CPU backend, the reference: every op
 * forward and backward on the same inputs (backwards into gradients that
 * already hold values, so accumulation is checked too), within float32
 * tolerances; then whole networks (nb201 and darts: same weights, same
 * batch; logits, loss, gradients, running statistics and an SGD step
 * agree). Without a GPU, or in a build without the backend, every test
 * here reports itself skipped, never passed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>

#include <pthread.h>

#include "data/builder.h"
#include "data/taskfile.h"
#include "fixtures/fx_util.h"
#include "nn/model.h"
#include "nn/ops.h"
#include "nn/train.h"
#include "space/space.h"

/* ---- the two backends and memory on the GPU ---- */

/* The GPU backend, made once for the whole suite; skips the calling test
 * (with the reason, printed once) when there is none. */
static const NnBackend *gpu(void)
{
    static const NnBackend *be;
    static int tried;
    static XErr why;
    if (!tried) {
        tried = 1;
        if (nn_cuda_backend_new(0, 0, &be, &why)) {
            be = NULL;
            print_message("[  SKIP    ] CUDA tests: %s\n", why.msg);
        }
    }
    if (!be)
        skip();
    return be;
}

static const NnBackend *cpu(void)
{
    return nn_cpu_backend(1);
}

/* Backend memory holding a copy of host data (n floats, or bytes). */
static void *dev_copy(const NnBackend *be, const void *h, size_t bytes)
{
    void *d = be->alloc(be->ctx, bytes ? bytes : 1);
    assert_non_null(d);
    be->upload(be->ctx, d, h, bytes);
    return d;
}

static float *dev_floats(const NnBackend *be, const float *h, size_t n)
{
    return dev_copy(be, h, n * sizeof *h);
}

/* A host copy of n floats of backend memory (free it). */
static float *host_floats(const NnBackend *be, const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    XErr e = { 0 };
    assert_non_null(h);
    be->download(be->ctx, h, d, n * sizeof *h);
    if (be->sync(be->ctx, &e))
        fail_msg("%s: %s", be->name, e.msg);
    return h;
}

static void dev_free(const NnBackend *be, void *d)
{
    be->free(be->ctx, d);
}

static float *rand_floats(Rng *r, size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    gc_fill(r, v, n, lo, hi);
    return v;
}

static float *copy_floats(const float *v, size_t n)
{
    float *c = malloc((n ? n : 1) * sizeof *c);
    assert_non_null(c);
    memcpy(c, v, n * sizeof *c);
    return c;
}

/* got (GPU) against want (CPU): |got - want| <= max(atol * max|want|,
 * floor) + rtol * |want| everywhere (the absolute part scales with the
 * data, so sums that cancel are judged against the block's size, not their
 * own; floor, for blocks that are all noise, against a larger whole). */
static void expect_near_floor(const char *what, const float *got, const float *want, size_t n, double atol,
                              double rtol, double floor)
{
    double top = 0;
    for (size_t i = 0; i < n; i++)
        top = fmax(top, fabs((double)want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= fmax(atol * top, floor) + rtol * fabs((double)want[i])))
            fail_msg("%s: at %zu of %zu: GPU %.9g, CPU %.9g (largest %.4g)", what, i, n, (double)got[i],
                     (double)want[i], top);
    }
}

static void expect_close(const char *what, const float *got, const float *want, size_t n, double atol, double rtol)
{
    expect_near_floor(what, got, want, n, atol, rtol, 0);
}

/* The GPU's copy of d (n floats) against the CPU's values. */
static void expect_dev(const char *what, const NnBackend *g, const float *d, const float *want, size_t n, double atol,
                       double rtol)
{
    float *h = host_floats(g, d, n);
    expect_close(what, h, want, n, atol, rtol);
    free(h);
}

/* Elementwise ops must agree to rounding; the reductions and convolutions
 * (other summation orders, Winograd and FFT algorithms) more loosely. */
#define TOL_EXACT 1e-6, 1e-6
#define TOL_SUM 1e-5, 1e-5
#define TOL_BN 1e-4, 1e-4
#define TOL_CONV 5e-4, 1e-3

/* ---- convolutions ---- */

typedef struct ConvShape {
    int n, cin, h, w, cout, k, stride, pad, dil, groups;
} ConvShape;

static void conv_case(const ConvShape *s)
{
    const NnBackend *g = gpu(), *c = cpu();
    ConvDesc d;
    XErr e = { 0 };
    Rng r;
    size_t nx, ny, nw, wsc, wsg;
    float *x, *w, *dy, *dx0, *dw0, *y, *dx, *dw, *wc, *gx, *gw, *gdy, *gy, *gdx, *gdw, *gws;
    char what[160];
    assert_int_equal(conv_desc_init(&d, s->n, s->cin, s->h, s->w, s->cout, s->k, s->stride, s->pad, s->dil, s->groups,
                                    &e),
                     XE_OK);
    nx = (size_t)d.n * d.cin * d.h * d.w;
    ny = (size_t)d.n * d.cout * d.oh * d.ow;
    nw = (size_t)d.cout * (d.cin / d.groups) * d.kh * d.kw;
    rng_seed(&r, (uint64_t)(s->cin * 131 + s->k * 17 + s->stride * 7 + s->groups));
    x = rand_floats(&r, nx, -1, 1);
    w = rand_floats(&r, nw, -0.5f, 0.5f);
    dy = rand_floats(&r, ny, -1, 1);
    dx0 = rand_floats(&r, nx, -1, 1);
    dw0 = rand_floats(&r, nw, -1, 1);
    /* CPU reference */
    wsc = c->conv_workspace(c->ctx, &d);
    wc = calloc(wsc + 1, sizeof *wc);
    y = calloc(ny, sizeof *y);
    dx = copy_floats(dx0, nx);
    dw = copy_floats(dw0, nw);
    assert_true(wc && y);
    c->conv_fwd(c->ctx, &d, x, w, y, wc);
    c->conv_bwd_data(c->ctx, &d, dy, w, dx, wc);
    c->conv_bwd_filter(c->ctx, &d, x, dy, dw, wc);
    /* GPU */
    wsg = g->conv_workspace(g->ctx, &d);
    gws = g->alloc(g->ctx, (wsg + 1) * sizeof(float));
    assert_non_null(gws);
    gx = dev_floats(g, x, nx);
    gw = dev_floats(g, w, nw);
    gdy = dev_floats(g, dy, ny);
    gy = dev_floats(g, y, ny); /* overwritten */
    gdx = dev_floats(g, dx0, nx);
    gdw = dev_floats(g, dw0, nw);
    g->conv_fwd(g->ctx, &d, gx, gw, gy, gws);
    g->conv_bwd_data(g->ctx, &d, gdy, gw, gdx, gws);
    g->conv_bwd_filter(g->ctx, &d, gx, gdy, gdw, gws);
    snprintf(what, sizeof what, "conv %dx%dx%d k%d s%d p%d d%d g%d -> %d", s->cin, s->h, s->w, s->k, s->stride, s->pad,
             s->dil, s->groups, s->cout);
    {
        char w1[200], w2[200], w3[200];
        snprintf(w1, sizeof w1, "%s: forward", what);
        snprintf(w2, sizeof w2, "%s: backward data", what);
        snprintf(w3, sizeof w3, "%s: backward filter", what);
        expect_dev(w1, g, gy, y, ny, TOL_CONV);
        expect_dev(w2, g, gdx, dx, nx, TOL_CONV);
        expect_dev(w3, g, gdw, dw, nw, TOL_CONV);
    }
    dev_free(g, gws), dev_free(g, gx), dev_free(g, gw), dev_free(g, gdy), dev_free(g, gy), dev_free(g, gdx),
        dev_free(g, gdw);
    free(x), free(w), free(dy), free(dx0), free(dw0), free(wc), free(y), free(dx), free(dw);
}

static void test_cuda_conv(void **state)
{
    /* the shapes of the two spaces' networks: 3x3 (stem, cells, reduction
     * at stride 2), 1x1 (nb201 shortcut, darts preprocessing and the
     * stride-2 halves of FactorizedReduce), depthwise and dilated */
    static const ConvShape shapes[] = {
        { 4, 3, 16, 16, 8, 3, 1, 1, 1, 1 },  { 4, 8, 16, 16, 8, 3, 1, 1, 1, 1 },   { 4, 8, 16, 16, 16, 3, 2, 1, 1, 1 },
        { 4, 8, 8, 8, 16, 1, 1, 0, 1, 1 },   { 4, 8, 9, 9, 4, 1, 2, 0, 1, 1 },     { 4, 8, 12, 12, 8, 3, 1, 1, 1, 8 },
        { 4, 8, 12, 12, 8, 5, 1, 2, 1, 8 },  { 4, 8, 12, 12, 8, 3, 1, 2, 2, 8 },   { 4, 8, 12, 12, 8, 5, 1, 4, 2, 8 },
        { 4, 8, 12, 12, 8, 3, 2, 1, 1, 8 },  { 2, 6, 7, 5, 6, 3, 1, 1, 1, 2 },     { 3, 16, 32, 32, 16, 3, 1, 1, 1, 1 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        conv_case(&shapes[i]);
}

/* A conv the caller gave no workspace for (ws NULL, no conv_workspace
 * call): the backend plans it and uses its own buffer. */
static void test_cuda_conv_own_workspace(void **state)
{
    const NnBackend *g = gpu(), *c = cpu();
    ConvDesc d;
    XErr e = { 0 };
    Rng r;
    float *x, *w, *y, *wc, *gx, *gw, *gy;
    (void)state;
    assert_int_equal(conv_desc_init(&d, 8, 16, 20, 20, 24, 3, 1, 1, 1, 1, &e), XE_OK);
    rng_seed(&r, 3);
    x = rand_floats(&r, (size_t)8 * 16 * 400, -1, 1);
    w = rand_floats(&r, (size_t)24 * 16 * 9, -0.3f, 0.3f);
    y = calloc((size_t)8 * 24 * 400, sizeof *y);
    wc = calloc(conv_workspace(&d) + 1, sizeof *wc);
    assert_true(y && wc);
    c->conv_fwd(c->ctx, &d, x, w, y, wc);
    gx = dev_floats(g, x, (size_t)8 * 16 * 400);
    gw = dev_floats(g, w, (size_t)24 * 16 * 9);
    gy = g->alloc(g->ctx, (size_t)8 * 24 * 400 * sizeof *gy);
    assert_non_null(gy);
    g->conv_fwd(g->ctx, &d, gx, gw, gy, NULL);
    expect_dev("conv without a caller's workspace", g, gy, y, (size_t)8 * 24 * 400, TOL_CONV);
    dev_free(g, gx), dev_free(g, gw), dev_free(g, gy);
    free(x), free(w), free(y), free(wc);
}

/* ---- batch norm ---- */

static void bn_case(int n, int ch, int hw)
{
    const NnBackend *g = gpu(), *c = cpu();
    BnDesc d = { n, ch, hw, 1e-5f, 0.1f };
    size_t len = (size_t)n * ch * hw;
    Rng r;
    float *x, *gamma, *beta, *dy, *dx0, *dg0, *db0, *rm0, *rv0;
    float *y, *mean, *inv, *rm, *rv, *dx, *dgm, *dbt, *ye;
    float *gx, *ggamma, *gbeta, *gdy, *gy, *gmean, *ginv, *grm, *grv, *gdx, *gdg, *gdb, *gye;
    rng_seed(&r, (uint64_t)(n * 1000 + ch * 10 + hw));
    /* data off zero, so the mean matters */
    x = rand_floats(&r, len, 1, 4);
    gamma = rand_floats(&r, (size_t)ch, 0.5f, 1.5f);
    beta = rand_floats(&r, (size_t)ch, -0.5f, 0.5f);
    dy = rand_floats(&r, len, -1, 1);
    dx0 = rand_floats(&r, len, -1, 1);
    dg0 = rand_floats(&r, (size_t)ch, -1, 1);
    db0 = rand_floats(&r, (size_t)ch, -1, 1);
    rm0 = rand_floats(&r, (size_t)ch, -1, 1);
    rv0 = rand_floats(&r, (size_t)ch, 0.5f, 2);
    y = calloc(len, sizeof *y);
    ye = calloc(len, sizeof *ye);
    mean = calloc((size_t)ch, sizeof *mean);
    inv = calloc((size_t)ch, sizeof *inv);
    assert_true(y && ye && mean && inv);
    rm = copy_floats(rm0, (size_t)ch);
    rv = copy_floats(rv0, (size_t)ch);
    dx = copy_floats(dx0, len);
    dgm = copy_floats(dg0, (size_t)ch);
    dbt = copy_floats(db0, (size_t)ch);
    c->bn_fwd_train(c->ctx, &d, x, gamma, beta, y, mean, inv, rm, rv);
    c->bn_bwd(c->ctx, &d, x, dy, gamma, mean, inv, dx, dgm, dbt);
    c->bn_fwd_eval(c->ctx, &d, x, gamma, beta, rm, rv, ye);

    gx = dev_floats(g, x, len);
    ggamma = dev_floats(g, gamma, (size_t)ch);
    gbeta = dev_floats(g, beta, (size_t)ch);
    gdy = dev_floats(g, dy, len);
    gy = dev_floats(g, dy, len);
    gye = dev_floats(g, dy, len);
    gmean = dev_floats(g, rm0, (size_t)ch);
    ginv = dev_floats(g, rm0, (size_t)ch);
    grm = dev_floats(g, rm0, (size_t)ch);
    grv = dev_floats(g, rv0, (size_t)ch);
    gdx = dev_floats(g, dx0, len);
    gdg = dev_floats(g, dg0, (size_t)ch);
    gdb = dev_floats(g, db0, (size_t)ch);
    g->bn_fwd_train(g->ctx, &d, gx, ggamma, gbeta, gy, gmean, ginv, grm, grv);
    g->bn_bwd(g->ctx, &d, gx, gdy, ggamma, gmean, ginv, gdx, gdg, gdb);
    g->bn_fwd_eval(g->ctx, &d, gx, ggamma, gbeta, grm, grv, gye);
    /* cuDNN sums in float: looser than the double sums of the CPU */
    expect_dev("bn train: y", g, gy, y, len, TOL_BN);
    expect_dev("bn train: saved mean", g, gmean, mean, (size_t)ch, TOL_BN);
    expect_dev("bn train: saved invstd", g, ginv, inv, (size_t)ch, TOL_BN);
    expect_dev("bn train: running mean", g, grm, rm, (size_t)ch, TOL_BN);
    expect_dev("bn train: running var (unbiased)", g, grv, rv, (size_t)ch, TOL_BN);
    expect_dev("bn backward: dx", g, gdx, dx, len, 1e-4, 1e-4);
    expect_dev("bn backward: dgamma", g, gdg, dgm, (size_t)ch, 1e-4, 1e-4);
    expect_dev("bn backward: dbeta", g, gdb, dbt, (size_t)ch, 1e-4, 1e-4);
    expect_dev("bn eval: y", g, gye, ye, len, TOL_BN);
    {
        void *dv[] = { gx, ggamma, gbeta, gdy, gy, gye, gmean, ginv, grm, grv, gdx, gdg, gdb };
        void *hv[] = { x, gamma, beta, dy, dx0, dg0, db0, rm0, rv0, y, mean, inv, rm, rv, dx, dgm, dbt, ye };
        for (size_t i = 0; i < sizeof dv / sizeof *dv; i++)
            dev_free(g, dv[i]);
        for (size_t i = 0; i < sizeof hv / sizeof *hv; i++)
            free(hv[i]);
    }
}

static void test_cuda_bn(void **state)
{
    (void)state;
    bn_case(4, 8, 64);
    bn_case(16, 3, 1);
    bn_case(2, 5, 49);
    bn_case(32, 16, 256);
}

/* ---- pooling ---- */

static void pool_case(PoolType type, int n, int ch, int h, int w, int k, int stride, int pad)
{
    const NnBackend *g = gpu(), *c = cpu();
    PoolDesc d;
    XErr e = { 0 };
    Rng r;
    size_t nx, ny;
    float *x, *dy, *dx0, *y, *dx, *gx, *gdy, *gy, *gdx;
    char w1[120], w2[120];
    assert_int_equal(pool_desc_init(&d, type, n, ch, h, w, k, stride, pad, &e), XE_OK);
    nx = (size_t)n * ch * h * w;
    ny = (size_t)n * ch * d.oh * d.ow;
    rng_seed(&r, (uint64_t)(type * 100 + k * 10 + stride));
    x = rand_floats(&r, nx, -2, 2);
    dy = rand_floats(&r, ny, -1, 1);
    dx0 = rand_floats(&r, nx, -1, 1);
    y = calloc(ny, sizeof *y);
    assert_non_null(y);
    dx = copy_floats(dx0, nx);
    c->pool_fwd(c->ctx, &d, x, y);
    c->pool_bwd(c->ctx, &d, x, y, dy, dx);
    gx = dev_floats(g, x, nx);
    gdy = dev_floats(g, dy, ny);
    gy = dev_floats(g, dy, ny);
    gdx = dev_floats(g, dx0, nx);
    g->pool_fwd(g->ctx, &d, gx, gy);
    g->pool_bwd(g->ctx, &d, gx, gy, gdy, gdx);
    snprintf(w1, sizeof w1, "%s pool %d s%d p%d: forward", type == POOL_MAX ? "max" : "avg", k, stride, pad);
    snprintf(w2, sizeof w2, "%s pool %d s%d p%d: backward", type == POOL_MAX ? "max" : "avg", k, stride, pad);
    expect_dev(w1, g, gy, y, ny, TOL_EXACT);
    expect_dev(w2, g, gdx, dx, nx, TOL_EXACT);
    dev_free(g, gx), dev_free(g, gdy), dev_free(g, gy), dev_free(g, gdx);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

static void test_cuda_pool(void **state)
{
    (void)state;
    pool_case(POOL_AVG, 3, 4, 8, 8, 3, 1, 1); /* nb201 avg_pool_3x3: borders divide by fewer */
    pool_case(POOL_AVG, 3, 4, 8, 8, 2, 2, 0); /* nb201 shortcut */
    pool_case(POOL_AVG, 3, 4, 9, 7, 3, 2, 1);
    pool_case(POOL_MAX, 3, 4, 8, 8, 3, 1, 1);
    pool_case(POOL_MAX, 3, 4, 9, 7, 3, 2, 1); /* darts reduction */
}

/* ---- elementwise, SGD, sum of squares ---- */

/* op: 0 relu fwd, 1 relu bwd, 2 add, 3 acc, 4 scale, 5 scale in place,
 * 6 fill, on n values; both backends, compared. */
static void eltwise_case(size_t n, size_t skew)
{
    static const char *const names[] = { "relu_fwd", "relu_bwd", "add", "acc", "scale", "scale in place", "fill" };
    const NnBackend *g = gpu(), *c = cpu();
    Rng r;
    float *a, *b, *y0, *gbuf_a, *gbuf_b, *gbuf_y;
    rng_seed(&r, n + skew);
    a = rand_floats(&r, n + skew, -1, 1);
    b = rand_floats(&r, n + skew, -1, 1);
    y0 = rand_floats(&r, n + skew, -1, 1);
    gbuf_a = dev_floats(g, a, n + skew);
    gbuf_b = dev_floats(g, b, n + skew);
    gbuf_y = dev_floats(g, y0, n + skew);
    for (int op = 0; op < 7; op++) {
        /* skew shifts every pointer off 16-byte alignment: the scalar kernels */
        float *ha = a + skew, *hb = b + skew, *hy = copy_floats(y0, n + skew);
        float *da = gbuf_a + skew, *db = gbuf_b + skew, *dy = gbuf_y + skew;
        char what[80];
        g->upload(g->ctx, gbuf_y, y0, (n + skew) * sizeof *y0);
        switch (op) {
        case 0:
            c->relu_fwd(c->ctx, n, ha, hy + skew), g->relu_fwd(g->ctx, n, da, dy);
            break;
        case 1:
            c->relu_bwd(c->ctx, n, ha, hb, hy + skew), g->relu_bwd(g->ctx, n, da, db, dy);
            break;
        case 2:
            c->add(c->ctx, n, ha, hb, hy + skew), g->add(g->ctx, n, da, db, dy);
            break;
        case 3:
            c->acc(c->ctx, n, ha, hy + skew), g->acc(g->ctx, n, da, dy);
            break;
        case 4:
            c->scale(c->ctx, n, -1.75f, ha, hy + skew), g->scale(g->ctx, n, -1.75f, da, dy);
            break;
        case 5:
            c->scale(c->ctx, n, 0.5f, hy + skew, hy + skew), g->scale(g->ctx, n, 0.5f, dy, dy);
            break;
        default:
            c->fill(c->ctx, n, 3.25f, hy + skew), g->fill(g->ctx, n, 3.25f, dy);
            break;
        }
        snprintf(what, sizeof what, "%s over %zu values (offset %zu)", names[op], n, skew);
        /* the whole buffer: nothing outside [skew, skew + n) may change */
        expect_dev(what, g, gbuf_y, hy, n + skew, TOL_EXACT);
        free(hy);
    }
    dev_free(g, gbuf_a), dev_free(g, gbuf_b), dev_free(g, gbuf_y);
    free(a), free(b), free(y0);
}

static void test_cuda_eltwise(void **state)
{
    (void)state;
    eltwise_case(4096, 0);
    eltwise_case(1001, 0);
    eltwise_case(4096, 1);
    eltwise_case(3, 2);
    eltwise_case(3000017, 0); /* more than one grid's worth: the grid-stride loop */
}

static void test_cuda_mask_scale(void **state)
{
    const NnBackend *g = gpu(), *c = cpu();
    uint8_t mask[6] = { 1, 0, 1, 1, 0, 1 };
    size_t per = 37, len = 6 * per;
    Rng r;
    float *x, *y;
    void *gm;
    float *gx, *gy;
    (void)state;
    rng_seed(&r, 4);
    x = rand_floats(&r, len, -1, 1);
    y = calloc(len, sizeof *y);
    assert_non_null(y);
    c->mask_scale(c->ctx, 6, per, mask, 0.7f, x, y);
    gm = dev_copy(g, mask, sizeof mask);
    gx = dev_floats(g, x, len);
    gy = dev_floats(g, x, len);
    g->mask_scale(g->ctx, 6, per, gm, 0.7f, gx, gy);
    expect_dev("mask_scale", g, gy, y, len, TOL_EXACT);
    dev_free(g, gm), dev_free(g, gx), dev_free(g, gy);
    free(x), free(y);
}

static void test_cuda_sgd(void **state)
{
    const NnBackend *g = gpu(), *c = cpu();
    size_t n = 10007;
    Rng r;
    uint8_t *decay = malloc(n);
    (void)state;
    assert_non_null(decay);
    rng_seed(&r, 8);
    for (size_t i = 0; i < n; i++)
        decay[i] = rng_below(&r, 3) != 0;
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        float *p = rand_floats(&r, n, -1, 1), *gr = rand_floats(&r, n, -1, 1), *v = rand_floats(&r, n, -1, 1);
        float *gp = dev_floats(g, p, n), *gg = dev_floats(g, gr, n), *gv = dev_floats(g, v, n);
        void *gd = dev_copy(g, decay, n);
        for (int step = 0; step < 3; step++) {
            c->sgd(c->ctx, n, p, gr, v, decay, 0.1f, 0.9f, 5e-4f, nesterov);
            g->sgd(g->ctx, n, gp, gg, gv, gd, 0.1f, 0.9f, 5e-4f, nesterov);
        }
        expect_dev(nesterov ? "sgd nesterov: parameters" : "sgd: parameters", g, gp, p, n, TOL_EXACT);
        expect_dev(nesterov ? "sgd nesterov: momentum" : "sgd: momentum", g, gv, v, n, TOL_EXACT);
        expect_dev("sgd: the gradient is left alone", g, gg, gr, n, 0, 0);
        dev_free(g, gp), dev_free(g, gg), dev_free(g, gv), dev_free(g, gd);
        free(p), free(gr), free(v);
    }
    free(decay);
}

static void test_cuda_sumsq(void **state)
{
    const NnBackend *g = gpu(), *c = cpu();
    static const size_t sizes[] = { 1, 255, 4096, 1531546 };
    Rng r;
    (void)state;
    rng_seed(&r, 9);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        float *x = rand_floats(&r, sizes[k], -1, 1), *gx = dev_floats(g, x, sizes[k]);
        /* the reference in double, term by term: the GPU sums in double,
         * the CPU backend in float lanes (about 1e-7 relative) */
        double want = 0, cpu = c->sumsq(c->ctx, sizes[k], x), got = g->sumsq(g->ctx, sizes[k], gx);
        double again = g->sumsq(g->ctx, sizes[k], gx);
        for (size_t i = 0; i < sizes[k]; i++)
            want += (double)x[i] * (double)x[i];
        if (fabs(got - want) > 1e-11 * want)
            fail_msg("sumsq of %zu values: GPU %.17g, exact %.17g", sizes[k], got, want);
        if (fabs(cpu - want) > 1e-6 * want)
            fail_msg("sumsq of %zu values: CPU %.17g, exact %.17g", sizes[k], cpu, want);
        if (got != again)
            fail_msg("sumsq of %zu values: two GPU runs differ: %.17g, %.17g", sizes[k], got, again);
        dev_free(g, gx);
        free(x);
    }
}

/* ---- shape ops, linear, cross-entropy ---- */

static void concat_case(int k)
{
    const NnBackend *g = gpu(), *c = cpu();
    int n = 3, hw = 10, ch[12], tot = 0;
    const float *xs[12], *gxs[12];
    float *hx[12], *gx[12], *dx[12], *gdx[12], *y, *dy, *gy, *gdy;
    Rng r;
    char what[80];
    rng_seed(&r, (uint64_t)k);
    for (int i = 0; i < k; i++) {
        ch[i] = 1 + (int)rng_below(&r, 4);
        tot += ch[i];
        hx[i] = rand_floats(&r, (size_t)n * ch[i] * hw, -1, 1);
        dx[i] = rand_floats(&r, (size_t)n * ch[i] * hw, -1, 1);
        gx[i] = dev_floats(g, hx[i], (size_t)n * ch[i] * hw);
        gdx[i] = dev_floats(g, dx[i], (size_t)n * ch[i] * hw);
        xs[i] = hx[i];
        gxs[i] = gx[i];
    }
    y = calloc((size_t)n * tot * hw, sizeof *y);
    assert_non_null(y);
    dy = rand_floats(&r, (size_t)n * tot * hw, -1, 1);
    gy = dev_floats(g, dy, (size_t)n * tot * hw);
    gdy = dev_floats(g, dy, (size_t)n * tot * hw);
    c->concat_fwd(c->ctx, n, hw, k, ch, xs, y);
    c->concat_bwd(c->ctx, n, hw, k, ch, dy, dx);
    g->concat_fwd(g->ctx, n, hw, k, ch, gxs, gy);
    g->concat_bwd(g->ctx, n, hw, k, ch, gdy, gdx);
    snprintf(what, sizeof what, "concat of %d: forward", k);
    expect_dev(what, g, gy, y, (size_t)n * tot * hw, 0, 0);
    for (int i = 0; i < k; i++) {
        snprintf(what, sizeof what, "concat of %d: backward, input %d", k, i);
        expect_dev(what, g, gdx[i], dx[i], (size_t)n * ch[i] * hw, TOL_EXACT);
        dev_free(g, gx[i]), dev_free(g, gdx[i]);
        free(hx[i]), free(dx[i]);
    }
    dev_free(g, gy), dev_free(g, gdy);
    free(y), free(dy);
}

static void test_cuda_concat(void **state)
{
    (void)state;
    concat_case(1);
    concat_case(4);
    concat_case(11); /* more inputs than one launch takes */
}

static void test_cuda_crop_gap(void **state)
{
    const NnBackend *g = gpu(), *c = cpu();
    int n = 3, ch = 5, h = 9, w = 7, oy = 1, ox = 2, oh = 6, ow = 4, hw = h * w;
    size_t nx = (size_t)n * ch * h * w, ny = (size_t)n * ch * oh * ow, np = (size_t)n * ch;
    Rng r;
    float *x, *dy, *dx0, *y, *dx, *gx, *gdy, *gy, *gdx, *py, *pdy, *pdx, *gpy, *gpdy, *gpdx;
    (void)state;
    rng_seed(&r, 12);
    x = rand_floats(&r, nx, -1, 1);
    dy = rand_floats(&r, ny, -1, 1);
    dx0 = rand_floats(&r, nx, -1, 1);
    y = calloc(ny, sizeof *y);
    assert_non_null(y);
    dx = copy_floats(dx0, nx);
    c->crop_fwd(c->ctx, n, ch, h, w, oy, ox, oh, ow, x, y);
    c->crop_bwd(c->ctx, n, ch, h, w, oy, ox, oh, ow, dy, dx);
    gx = dev_floats(g, x, nx);
    gdy = dev_floats(g, dy, ny);
    gy = dev_floats(g, dy, ny);
    gdx = dev_floats(g, dx0, nx);
    g->crop_fwd(g->ctx, n, ch, h, w, oy, ox, oh, ow, gx, gy);
    g->crop_bwd(g->ctx, n, ch, h, w, oy, ox, oh, ow, gdy, gdx);
    expect_dev("crop: forward", g, gy, y, ny, 0, 0);
    expect_dev("crop: backward", g, gdx, dx, nx, TOL_EXACT);

    py = calloc(np, sizeof *py);
    assert_non_null(py);
    pdy = rand_floats(&r, np, -1, 1);
    pdx = copy_floats(dx0, nx);
    c->gap_fwd(c->ctx, n, ch, hw, x, py);
    c->gap_bwd(c->ctx, n, ch, hw, pdy, pdx);
    gpy = dev_floats(g, pdy, np);
    gpdy = dev_floats(g, pdy, np);
    gpdx = dev_floats(g, dx0, nx);
    g->gap_fwd(g->ctx, n, ch, hw, gx, gpy);
    g->gap_bwd(g->ctx, n, ch, hw, gpdy, gpdx);
    expect_dev("global average pool: forward", g, gpy, py, np, TOL_EXACT);
    expect_dev("global average pool: backward", g, gpdx, pdx, nx, TOL_EXACT);
    dev_free(g, gx), dev_free(g, gdy), dev_free(g, gy), dev_free(g, gdx), dev_free(g, gpy), dev_free(g, gpdy),
        dev_free(g, gpdx);
    free(x), free(dy), free(dx0), free(y), free(dx), free(py), free(pdy), free(pdx);
}

static void test_cuda_linear(void **state)
{
    const NnBackend *g = gpu(), *c = cpu();
    int n = 7, in = 33, out = 10;
    size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
    Rng r;
    float *x, *w, *b, *dy, *dx0, *dw0, *db0, *y, *dx, *dw, *db, *gx, *gw, *gb, *gdy, *gy, *gdx, *gdw, *gdb;
    (void)state;
    rng_seed(&r, 13);
    x = rand_floats(&r, nx, -1, 1);
    w = rand_floats(&r, nw, -0.5f, 0.5f);
    b = rand_floats(&r, (size_t)out, -0.5f, 0.5f);
    dy = rand_floats(&r, ny, -1, 1);
    dx0 = rand_floats(&r, nx, -1, 1);
    dw0 = rand_floats(&r, nw, -1, 1);
    db0 = rand_floats(&r, (size_t)out, -1, 1);
    y = calloc(ny, sizeof *y);
    assert_non_null(y);
    dx = copy_floats(dx0, nx);
    dw = copy_floats(dw0, nw);
    db = copy_floats(db0, (size_t)out);
    c->linear_fwd(c->ctx, n, in, out, x, w, b, y);
    c->linear_bwd(c->ctx, n, in, out, x, w, dy, dx, dw, db);
    gx = dev_floats(g, x, nx);
    gw = dev_floats(g, w, nw);
    gb = dev_floats(g, b, (size_t)out);
    gdy = dev_floats(g, dy, ny);
    gy = dev_floats(g, dy, ny);
    gdx = dev_floats(g, dx0, nx);
    gdw = dev_floats(g, dw0, nw);
    gdb = dev_floats(g, db0, (size_t)out);
    g->linear_fwd(g->ctx, n, in, out, gx, gw, gb, gy);
    g->linear_bwd(g->ctx, n, in, out, gx, gw, gdy, gdx, gdw, gdb);
    expect_dev("linear: forward", g, gy, y, ny, TOL_SUM);
    expect_dev("linear: backward data", g, gdx, dx, nx, TOL_SUM);
    expect_dev("linear: backward weights", g, gdw, dw, nw, TOL_SUM);
    expect_dev("linear: backward bias", g, gdb, db, (size_t)out, TOL_SUM);
    {
        void *dv[] = { gx, gw, gb, gdy, gy, gdx, gdw, gdb };
        void *hv[] = { x, w, b, dy, dx0, dw0, db0, y, dx, dw, db };
        for (size_t i = 0; i < sizeof dv / sizeof *dv; i++)
            dev_free(g, dv[i]);
        for (size_t i = 0; i < sizeof hv / sizeof *hv; i++)
            free(hv[i]);
    }
}

static void test_cuda_xent(void **state)
{
    const NnBackend *g = gpu(), *c = cpu();
    int n = 300, k = 10; /* more rows than the kernel's threads */
    Rng r;
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    float *z, *dl, *gz, *gdl, *gloss;
    int32_t *glab;
    int *gcorrect;
    (void)state;
    assert_non_null(labels);
    rng_seed(&r, 14);
    z = rand_floats(&r, (size_t)n * k, -3, 3);
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)rng_below(&r, (uint64_t)k);
    labels[5] = -1; /* out of range: no loss, zero gradient, never correct */
    labels[17] = k;
    dl = calloc((size_t)n * k, sizeof *dl);
    assert_non_null(dl);
    gz = dev_floats(g, z, (size_t)n * k);
    gdl = dev_floats(g, z, (size_t)n * k);
    glab = dev_copy(g, labels, (size_t)n * sizeof *labels);
    gloss = g->alloc(g->ctx, sizeof(float));
    gcorrect = g->alloc(g->ctx, sizeof(int));
    assert_true(gloss && gcorrect);
    for (int s = 0; s < 2; s++) {
        float smoothing = s ? 0.1f : 0.0f, loss, gl;
        int correct, gc;
        XErr e = { 0 };
        c->xent(c->ctx, n, k, z, labels, smoothing, dl, &loss, &correct);
        g->xent(g->ctx, n, k, gz, glab, smoothing, gdl, gloss, gcorrect);
        g->download(g->ctx, &gl, gloss, sizeof gl);
        g->download(g->ctx, &gc, gcorrect, sizeof gc);
        assert_int_equal(g->sync(g->ctx, &e), XE_OK);
        expect_close(s ? "xent (smoothing 0.1): loss" : "xent: loss", &gl, &loss, 1, 0, 1e-6);
        assert_int_equal(gc, correct);
        expect_dev(s ? "xent (smoothing 0.1): dlogits" : "xent: dlogits", g, gdl, dl, (size_t)n * k, TOL_EXACT);
    }
    dev_free(g, gz), dev_free(g, gdl), dev_free(g, glab), dev_free(g, gloss), dev_free(g, gcorrect);
    free(labels), free(z), free(dl);
}

/* ---- the backend's own contract ---- */

static void test_cuda_table_and_memory(void **state)
{
    const NnBackend *g = gpu(), *again = NULL;
    float src[5] = { 1, 2, 3, 4, 5 }, back[5] = { 0 };
    unsigned char zeros[300];
    XErr e = { 0 };
    void *p;
    (void)state;
    assert_string_equal(g->name, "cuda");
    assert_true(g->alloc && g->free && g->upload && g->download && g->sync && g->conv_workspace);
    assert_true(g->conv_fwd && g->conv_bwd_data && g->conv_bwd_filter && g->bn_fwd_train && g->bn_fwd_eval &&
                g->bn_bwd);
    assert_true(g->relu_fwd && g->relu_bwd && g->add && g->acc && g->scale && g->fill && g->pool_fwd &&
                g->pool_bwd);
    assert_true(g->concat_fwd && g->concat_bwd && g->crop_fwd && g->crop_bwd && g->gap_fwd && g->gap_bwd);
    assert_true(g->linear_fwd && g->linear_bwd && g->xent && g->mask_scale && g->sgd && g->sumsq);
    /* memory comes zeroed */
    p = g->alloc(g->ctx, sizeof zeros);
    assert_non_null(p);
    memset(zeros, 0xff, sizeof zeros);
    g->download(g->ctx, zeros, p, sizeof zeros);
    for (size_t i = 0; i < sizeof zeros; i++)
        assert_int_equal(zeros[i], 0);
    g->upload(g->ctx, p, src, sizeof src);
    g->download(g->ctx, back, p, sizeof src);
    assert_memory_equal(back, src, sizeof src);
    g->free(g->ctx, p);
    assert_null(g->alloc(g->ctx, SIZE_MAX / 2)); /* too much: NULL, and no error left behind */
    assert_int_equal(g->sync(g->ctx, &e), XE_OK);
    /* a second context: its own stream and handles */
    assert_int_equal(nn_cuda_backend_new(0, NN_CUDA_TF32, &again, &e), XE_OK);
    assert_ptr_not_equal(again->ctx, g->ctx);
    nn_cuda_backend_free(again);
}

/* ---- whole networks ---- */

/* Everything one training step produces, downloaded to the host. */
typedef struct StepOut {
    float *logits, *grads, *dx, *state, *after;
    float loss;
    int correct;
} StepOut;

static void step_out_release(StepOut *o)
{
    free(o->logits), free(o->grads), free(o->dx), free(o->state), free(o->after);
    memset(o, 0, sizeof *o);
}

/* One training step on net (either backend): forward, cross-entropy with
 * label smoothing 0.1, backward, SGD; downloads what it made. */
static void net_step(Net *net, const float *x, const int32_t *y, int k, StepOut *o)
{
    const NnBackend *be = net->be;
    size_t nl = (size_t)net->batch * k, nx = (size_t)net->batch * net->t[0].c * net->t[0].h * net->t[0].w;
    int32_t *gy = dev_copy(be, y, (size_t)net->batch * sizeof *y);
    float *dl = be->alloc(be->ctx, nl * sizeof *dl), *loss = be->alloc(be->ctx, sizeof *loss);
    int *correct = be->alloc(be->ctx, sizeof *correct);
    const float *logits;
    XErr e = { 0 };
    assert_true(dl && loss && correct);
    logits = net_forward(net, x, 1);
    be->xent(be->ctx, net->batch, k, logits, gy, 0.1f, dl, loss, correct);
    net_backward(net, dl);
    o->logits = host_floats(be, logits, nl);
    o->grads = host_floats(be, net->grads, net->nparams);
    o->dx = host_floats(be, net->dacts + net->t[0].goff, nx);
    o->state = host_floats(be, net->state, net->nstate);
    be->download(be->ctx, &o->loss, loss, sizeof o->loss);
    be->download(be->ctx, &o->correct, correct, sizeof o->correct);
    be->sgd(be->ctx, net->nparams, net->params, net->grads, net->mom, net->decay, 0.05f, 0.9f, 5e-4f, 1);
    o->after = host_floats(be, net->params, net->nparams);
    if (be->sync(be->ctx, &e))
        fail_msg("%s: %s", be->name, e.msg);
    dev_free(be, gy), dev_free(be, dl), dev_free(be, loss), dev_free(be, correct);
}

/* Each parameter block of the network (per layer) against the CPU's, so a
 * failure names the layer and each block is judged at its own scale. A
 * block whose exact gradient vanishes (the beta of a BN whose output only
 * reaches another BN: a shift that BN removes) holds float32 cancellation
 * noise; it is judged against a thousandth of the largest value of all
 * blocks (as the golden tests do). */
static void expect_params(const char *what, const Net *net, const float *got, const float *want)
{
    double floor = 0;
    for (size_t i = 0; i < net->nparams; i++)
        floor = fmax(floor, 1e-3 * fabs((double)want[i]));
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        size_t count[2] = { 0, 0 }, off[2] = { l->w, l->b };
        char name[160];
        if (l->kind == LAYER_CONV) {
            count[0] = (size_t)l->conv.cout * (l->conv.cin / l->conv.groups) * l->conv.kh * l->conv.kw;
        } else if (l->kind == LAYER_BN) {
            count[0] = count[1] = (size_t)l->bn.c;
        } else if (l->kind == LAYER_LINEAR) {
            const NetTensor *t = &net->t[l->in[0]];
            count[1] = (size_t)net->t[l->out].c;
            count[0] = count[1] * (size_t)t->c * t->h * t->w;
        }
        for (int j = 0; j < 2; j++)
            if (count[j]) {
                snprintf(name, sizeof name, "%s: layer %d (kind %d), %s", what, i, (int)l->kind, j ? "bias" : "weight");
                expect_near_floor(name, got + off[j], want + off[j], count[j], 2e-3, 2e-3, floor);
            }
    }
}

/* builds the same network on both backends: build(net) adds the layers */
typedef int (*BuildFn)(Net *net, const void *arch, XErr *e);

static void parity(const char *what, BuildFn build, const void *arch, int batch, int hw, int k, float drop)
{
    const NnBackend *g = gpu();
    Net nc, ng;
    XErr e = { 0 };
    Rng r;
    size_t nx = (size_t)batch * 3 * hw * hw;
    float *x = malloc(nx * sizeof *x);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    char name[160];
    assert_true(x && y);
    if (net_init(&nc, cpu(), batch, 3, hw, hw, &e) || build(&nc, arch, &e) || net_finalize(&nc, 7, &e))
        fail_msg("%s on the CPU: %s", what, e.msg);
    if (net_init(&ng, g, batch, 3, hw, hw, &e) || build(&ng, arch, &e) || net_finalize(&ng, 7, &e))
        fail_msg("%s on the GPU: %s", what, e.msg);
    assert_int_equal(nc.nparams, ng.nparams);
    rng_seed(&r, 21);
    gc_fill(&r, x, nx, -1, 1);
    for (int i = 0; i < batch; i++)
        y[i] = (int32_t)rng_below(&r, (uint64_t)k);
    /* drop-path masks come from the network's own generator: the same seed
     * gives both networks the same masks */
    nc.drop_prob = ng.drop_prob = drop;
    rng_seed(&nc.rng, 5);
    rng_seed(&ng.rng, 5);
    for (int step = 0; step < 2; step++) {
        StepOut oc = { 0 }, og = { 0 };
        net_step(&nc, x, y, k, &oc);
        net_step(&ng, x, y, k, &og);
        snprintf(name, sizeof name, "%s, step %d: logits", what, step + 1);
        expect_close(name, og.logits, oc.logits, (size_t)batch * k, 1e-3, 1e-3);
        snprintf(name, sizeof name, "%s, step %d: loss", what, step + 1);
        expect_close(name, &og.loss, &oc.loss, 1, 0, 1e-4);
        snprintf(name, sizeof name, "%s, step %d: input gradient", what, step + 1);
        expect_close(name, og.dx, oc.dx, nx, 2e-3, 2e-3);
        snprintf(name, sizeof name, "%s, step %d: running statistics", what, step + 1);
        expect_close(name, og.state, oc.state, nc.nstate, 1e-4, 1e-3);
        snprintf(name, sizeof name, "%s, step %d: gradient", what, step + 1);
        expect_params(name, &nc, og.grads, oc.grads);
        snprintf(name, sizeof name, "%s, step %d: parameters after SGD", what, step + 1);
        expect_params(name, &nc, og.after, oc.after);
        step_out_release(&oc);
        step_out_release(&og);
    }
    net_release(&nc);
    net_release(&ng);
    free(x), free(y);
}

static int build_nb201(Net *net, const void *arch, XErr *e)
{
    int ops[6];
    if (nb201_parse(arch, ops, e))
        return e->code;
    return model_nb201(net, ops, 4, 2, 5, e);
}

static int build_darts(Net *net, const void *arch, XErr *e)
{
    SpaceArch a;
    if (space_darts.parse(arch, &a, e))
        return e->code;
    return model_darts(net, &a.darts, 4, 3, 5, 1, e);
}

static void test_cuda_net_nb201(void **state)
{
    (void)state;
    parity("nb201 all ops", build_nb201,
           "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|", 6, 16, 5, 0);
    parity("nb201 bench arch", build_nb201,
           "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|", 8, 16,
           5, 0);
}

static void test_cuda_net_darts(void **state)
{
    static const char *const every_op =
        "normal:sep_conv_3x3~0,dil_conv_5x5~1|max_pool_3x3~0,skip_connect~2|avg_pool_3x3~1,sep_conv_5x5~3|"
        "dil_conv_3x3~0,skip_connect~4;reduce:max_pool_3x3~0,skip_connect~1|avg_pool_3x3~1,sep_conv_3x3~2|"
        "skip_connect~0,dil_conv_3x3~3|sep_conv_5x5~1,max_pool_3x3~4";
    (void)state;
    parity("darts every op", build_darts, every_op, 4, 16, 5, 0);
    parity("darts every op, drop-path 0.3", build_darts, every_op, 4, 16, 5, 0.3f);
}

/* ---- training: train_run, step graphs, contexts side by side ---- */

/* A task whose class is the image's brightness: 2 classes, 8x8x3, 128
 * training images (a tenth of them validation), 32 test images. */
static char *toy_task(TaskFile *t, char **dir)
{
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    char *file = NULL, sha[65], *path = malloc(4200);
    static const char *const names[] = { "dark", "bright" };
    Rng r;
    assert_non_null(path);
    memset(&o, 0, sizeof o);
    o.valid_fraction = 0.1;
    *dir = unit_tmpdir();
    builder_init(&b, &o);
    rng_seed(&r, 9);
    assert_int_equal(builder_set_classes(&b, names, 2, &e), XE_OK);
    for (int i = 0; i < 160; i++) {
        uint8_t px[192];
        int cls = i % 2;
        for (int j = 0; j < 192; j++)
            px[j] = (uint8_t)((cls ? 130 : 70) + (int)rng_below(&r, 120) - 60);
        assert_int_equal(builder_add(&b, i < 128 ? SPLIT_TRAIN : SPLIT_TEST, cls, px, 8, 8, 3, "toy", &e), XE_OK);
    }
    assert_int_equal(builder_finish(&b, "toy", &e), XE_OK);
    assert_int_equal(taskfile_write(&b, *dir, "toy", &file, sha, &e), XE_OK);
    snprintf(path, 4200, "%s/%s", *dir, file);
    assert_int_equal(taskfile_open(t, path, &e), XE_OK);
    builder_release(&b);
    free(file);
    return path;
}

typedef struct Curve {
    EpochPoint p[8];
    int n;
} Curve;

static int keep_point(void *ctx, const Net *net, const EpochPoint *p, XErr *e)
{
    Curve *c = ctx;
    (void)net, (void)e;
    if (c->n < 8)
        c->p[c->n++] = *p;
    return XE_OK;
}

static const double toy_mean[3] = { 0.4, 0.4, 0.4 }, toy_std[3] = { 0.25, 0.25, 0.25 };

/* Trains a fresh network (build, seed 5) for r on be; graph: step graphs. */
static void train_curve(const NnBackend *be, BuildFn build, const void *arch, const TaskFile *t, const Recipe *r,
                        int graph, Curve *c, double *test)
{
    Net net;
    XErr e = { 0 };
    memset(c, 0, sizeof *c);
    if (net_init(&net, be, 16, 3, 8, 8, &e) || build(&net, arch, &e) || net_finalize(&net, 5, &e))
        fail_msg("%s: %s", be->name, e.msg);
    net.graph = graph;
    if (train_run(&net, t, toy_mean, toy_std, r, 0, keep_point, c, test, &e))
        fail_msg("%s%s: %s", be->name, graph ? " with step graphs" : "", e.msg);
    net_release(&net);
}

static void expect_curves(const char *what, const Curve *got, const Curve *want, double rtol)
{
    assert_int_equal(got->n, want->n);
    for (int i = 0; i < want->n; i++) {
        const double g[3] = { got->p[i].train_loss, got->p[i].valid_loss, got->p[i].lr };
        const double w[3] = { want->p[i].train_loss, want->p[i].valid_loss, want->p[i].lr };
        static const char *const names[3] = { "train loss", "valid loss", "lr" };
        for (int j = 0; j < 3; j++)
            if (!(fabs(g[j] - w[j]) <= rtol * fabs(w[j]) + 1e-6))
                fail_msg("%s: epoch %d %s: %.7g, want %.7g", what, i + 1, names[j], g[j], w[j]);
    }
}

static int build_nb201_toy(Net *net, const void *arch, XErr *e)
{
    int ops[6];
    if (nb201_parse(arch, ops, e))
        return e->code;
    return model_nb201(net, ops, 4, 1, 2, e);
}

static int build_darts_toy(Net *net, const void *arch, XErr *e)
{
    SpaceArch a;
    if (space_darts.parse(arch, &a, e))
        return e->code;
    return model_darts(net, &a.darts, 4, 3, 2, 1, e);
}

/* train_run on the GPU follows the CPU's curve (float32 drift only), and
 * step graphs replay what the eager steps do, drop-path included (one
 * graph per epoch: its probability rises each epoch). */
static void test_cuda_train_run(void **state)
{
    static const char *const nb =
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|";
    static const char *const dt =
        "normal:sep_conv_3x3~0,dil_conv_5x5~1|max_pool_3x3~0,skip_connect~2|avg_pool_3x3~1,sep_conv_5x5~3|"
        "dil_conv_3x3~0,skip_connect~4;reduce:max_pool_3x3~0,skip_connect~1|avg_pool_3x3~1,sep_conv_3x3~2|"
        "skip_connect~0,dil_conv_3x3~3|sep_conv_5x5~1,max_pool_3x3~4";
    const NnBackend *g = gpu();
    TaskFile t;
    Recipe r;
    Curve cc, ce, cg;
    double tc, te, tg;
    char *dir, *path = toy_task(&t, &dir);
    (void)state;
    memset(&r, 0, sizeof r);
    r.epochs = 3;
    r.lr = 0.05f;
    r.momentum = 0.9f;
    r.wd = 5e-4f;
    r.nesterov = 1;
    r.label_smoothing = 0.1f;
    r.aug.crop_pad = 1;
    r.aug.flip = 1;
    r.seed = 3;
    train_curve(cpu(), build_nb201_toy, nb, &t, &r, 0, &cc, &tc);
    train_curve(g, build_nb201_toy, nb, &t, &r, 0, &ce, &te);
    train_curve(g, build_nb201_toy, nb, &t, &r, 1, &cg, &tg);
    expect_curves("nb201: GPU against CPU", &ce, &cc, 2e-2);
    expect_curves("nb201: step graphs against eager steps", &cg, &ce, 1e-3);
    if (fabs(te - tc) > 0.07 || fabs(tg - te) > 0.04)
        fail_msg("nb201 test accuracy: CPU %.4f, GPU %.4f, GPU with step graphs %.4f", tc, te, tg);
    /* clipping reads the gradient norm back: it runs between steps */
    r.drop_path = 0.3f;
    r.clip = 1.0f;
    train_curve(g, build_darts_toy, dt, &t, &r, 0, &ce, &te);
    train_curve(g, build_darts_toy, dt, &t, &r, 1, &cg, &tg);
    expect_curves("darts with drop-path: step graphs against eager steps", &cg, &ce, 1e-3);
    taskfile_close(&t);
    fx_rmtree(dir);
    free(dir), free(path);
}

/* Several models at once: contexts of their own, one thread each, at the
 * same time, give what one context gives running them in turn. */
typedef struct Job {
    const NnBackend *be;   /* NULL: a context of its own */
    int own;
    Curve c;
    double test;
    const TaskFile *t;
    const Recipe *r;
    XErr e;
    int rc;
} Job;

static void *job_run(void *arg)
{
    Job *j = arg;
    Net net;
    static const int ops[6] = { 3, 3, 2, 1, 3, 3 };
    j->rc = XE_OK;
    if (!j->be) {
        if ((j->rc = nn_cuda_backend_new(0, 0, &j->be, &j->e)))
            return NULL;
        j->own = 1;
    }
    if ((j->rc = net_init(&net, j->be, 16, 3, 8, 8, &j->e)) == XE_OK &&
        (j->rc = model_nb201(&net, ops, 4, 1, 2, &j->e)) == XE_OK && (j->rc = net_finalize(&net, 5, &j->e)) == XE_OK)
        j->rc = train_run(&net, j->t, toy_mean, toy_std, j->r, 0, keep_point, &j->c, &j->test, &j->e);
    net_release(&net);
    return NULL;
}

static void test_cuda_contexts_side_by_side(void **state)
{
    enum { JOBS = 3 };
    const NnBackend *g = gpu();
    TaskFile t;
    Recipe r;
    Job alone = { 0 }, jobs[JOBS];
    pthread_t th[JOBS];
    char *dir, *path = toy_task(&t, &dir);
    (void)state;
    memset(&r, 0, sizeof r);
    r.epochs = 2;
    r.lr = 0.05f;
    r.momentum = 0.9f;
    r.nesterov = 1;
    r.seed = 4;
    alone.be = g;
    alone.t = &t;
    alone.r = &r;
    job_run(&alone);
    if (alone.rc)
        fail_msg("one context: %s", alone.e.msg);
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < JOBS; i++) {
        jobs[i].t = &t;
        jobs[i].r = &r;
        assert_int_equal(pthread_create(&th[i], NULL, job_run, &jobs[i]), 0);
    }
    for (int i = 0; i < JOBS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < JOBS; i++) {
        char what[64];
        if (jobs[i].rc)
            fail_msg("context %d of %d: %s", i + 1, JOBS, jobs[i].e.msg);
        snprintf(what, sizeof what, "context %d of %d against one context alone", i + 1, JOBS);
        expect_curves(what, &jobs[i].c, &alone.c, 1e-3);
        if (jobs[i].own)
            nn_cuda_backend_free(jobs[i].be);
    }
    taskfile_close(&t);
    fx_rmtree(dir);
    free(dir), free(path);
}

const struct CMUnitTest test_cuda_ops_tests[] = {
    cmocka_unit_test(test_cuda_table_and_memory),
    cmocka_unit_test(test_cuda_conv),
    cmocka_unit_test(test_cuda_conv_own_workspace),
    cmocka_unit_test(test_cuda_bn),
    cmocka_unit_test(test_cuda_pool),
    cmocka_unit_test(test_cuda_eltwise),
    cmocka_unit_test(test_cuda_mask_scale),
    cmocka_unit_test(test_cuda_sgd),
    cmocka_unit_test(test_cuda_sumsq),
    cmocka_unit_test(test_cuda_concat),
    cmocka_unit_test(test_cuda_crop_gap),
    cmocka_unit_test(test_cuda_linear),
    cmocka_unit_test(test_cuda_xent),
    cmocka_unit_test(test_cuda_net_nb201),
    cmocka_unit_test(test_cuda_net_darts),
    cmocka_unit_test(test_cuda_train_run),
    cmocka_unit_test(test_cuda_contexts_side_by_side),
};
const size_t test_cuda_ops_count = sizeof test_cuda_ops_tests / sizeof test_cuda_ops_tests[0];
