/* Unit tests for the CPU backend's batch norm, elementwise, shape, linear,
 * cross-entropy and SGD ops: forward values against naive loops, every
 * backward against finite differences, accumulation, determinism, and the
 * backend table itself. */
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

#include "nn/ops.h"

/* ---- helpers ---- */

static const NnBackend *ops(void)
{
    return nn_cpu_backend(1);
}

static float *rand_vec(Rng *r, size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    gc_fill(r, v, n, lo, hi);
    return v;
}

static float *zero_vec(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof *v);
    assert_non_null(v);
    return v;
}

static double *dzero_vec(size_t n)
{
    double *v = calloc(n ? n : 1, sizeof *v);
    assert_non_null(v);
    return v;
}

/* got[i] within atol + rtol * |want[i]| of want[i]. */
static void expect_near(const char *what, const float *got, const double *want, size_t n, double atol,
                        double rtol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= atol + rtol * fabs(want[i])))
            fail_msg("%s: at %zu: got %.9g, want %.9g", what, i, (double)got[i], want[i]);
}

static void expect_near_f(const char *what, const float *got, const float *want, size_t n, double atol,
                          double rtol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= atol + rtol * fabs((double)want[i])))
            fail_msg("%s: at %zu: got %.9g, want %.9g", what, i, (double)got[i], (double)want[i]);
}

/* got is twice once, elementwise, within a relative tolerance (0: exactly). */
static void expect_doubled(const char *what, const float *twice, const float *once, size_t n, double rtol)
{
    for (size_t i = 0; i < n; i++) {
        double want = 2.0 * once[i];
        if (!(fabs(twice[i] - want) <= rtol * fabs(want)))
            fail_msg("%s: at %zu: two backward calls gave %.9g, one gave %.9g", what, i,
                     (double)twice[i], (double)once[i]);
    }
}

static void expect_same_bits(const char *what, const void *a, const void *b, size_t bytes)
{
    if (memcmp(a, b, bytes) != 0)
        fail_msg("%s: two runs on the same inputs differ", what);
}

/* ---- batch norm ---- */

typedef struct BnCase {
    BnDesc d;
    float *x, *gamma, *beta, *y, *mean, *invstd, *rmean, *rvar;
    int wrt;  /* 0: x, 1: gamma, 2: beta */
} BnCase;

static void bn_case_init(BnCase *b, Rng *r, int n, int c, int hw)
{
    size_t len = (size_t)n * (size_t)c * (size_t)hw;
    memset(b, 0, sizeof *b);
    b->d = (BnDesc){.n = n, .c = c, .hw = hw, .eps = 1e-5f, .momentum = 0.1f};
    b->x = rand_vec(r, len, -2.0f, 2.0f);
    b->gamma = rand_vec(r, (size_t)c, 0.5f, 1.5f);
    b->beta = rand_vec(r, (size_t)c, -0.5f, 0.5f);
    b->y = zero_vec(len);
    b->mean = zero_vec((size_t)c);
    b->invstd = zero_vec((size_t)c);
    b->rmean = zero_vec((size_t)c);
    b->rvar = zero_vec((size_t)c);
}

static void bn_case_release(BnCase *b)
{
    free(b->x);
    free(b->gamma);
    free(b->beta);
    free(b->y);
    free(b->mean);
    free(b->invstd);
    free(b->rmean);
    free(b->rvar);
}

/* The training forward as a function of x, gamma or beta. */
static void bn_gc_fwd(void *ctx, const float *v, float *y)
{
    BnCase *b = ctx;
    const float *x = b->wrt == 0 ? v : b->x;
    const float *gamma = b->wrt == 1 ? v : b->gamma;
    const float *beta = b->wrt == 2 ? v : b->beta;
    ops()->bn_fwd_train(NULL, &b->d, x, gamma, beta, y, b->mean, b->invstd, b->rmean, b->rvar);
}

/* Running statistics after one and two steps, worked by hand: channel 0
 * holds 1 2 3 4 then 0 0 0 4, channel 1 holds 10 10 10 14 then 2 2 2 2. */
static void test_nn_bn_train_by_hand(void **state)
{
    BnDesc d = {.n = 2, .c = 2, .hw = 2, .eps = 1e-5f, .momentum = 0.1f};
    float x1[8] = {1, 2, 10, 10, 3, 4, 10, 14};
    float x2[8] = {0, 0, 2, 2, 0, 4, 2, 2};
    float gamma[2] = {2.0f, 1.0f}, beta[2] = {0.5f, -1.0f};
    float y[8], mean[2], invstd[2], rmean[2] = {0, 0}, rvar[2] = {1, 1};
    double is0 = 1.0 / sqrt(1.25 + 1e-5), is1 = 1.0 / sqrt(3.0 + 1e-5);
    double want_y[8] = {2 * -1.5 * is0 + 0.5, 2 * -0.5 * is0 + 0.5, -is1 - 1, -is1 - 1,
                        2 * 0.5 * is0 + 0.5,  2 * 1.5 * is0 + 0.5,  -is1 - 1, 3 * is1 - 1};

    ops()->bn_fwd_train(NULL, &d, x1, gamma, beta, y, mean, invstd, rmean, rvar);
    expect_near("bn mean", mean, (double[]){2.5, 11.0}, 2, 1e-6, 1e-6);
    expect_near("bn invstd", invstd, (double[]){is0, is1}, 2, 0, 1e-6);
    expect_near("bn y", y, want_y, 8, 1e-6, 1e-6);
    /* unbiased variances 5/3 and 4 */
    expect_near("bn running mean, step 1", rmean, (double[]){0.25, 1.1}, 2, 0, 1e-6);
    expect_near("bn running var, step 1", rvar, (double[]){0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.4}, 2, 0, 1e-6);

    /* unbiased variances 4 and 0 */
    ops()->bn_fwd_train(NULL, &d, x2, gamma, beta, y, mean, invstd, rmean, rvar);
    expect_near("bn running mean, step 2", rmean, (double[]){0.9 * 0.25 + 0.1 * 1.0, 0.9 * 1.1 + 0.1 * 2.0},
                2, 0, 1e-6);
    expect_near("bn running var, step 2", rvar,
                (double[]){0.9 * (0.9 + 0.1 * 5.0 / 3.0) + 0.4, 0.9 * 1.3}, 2, 0, 1e-6);
    /* a constant channel normalises to beta */
    expect_near("bn constant channel", y + 2, (double[]){-1, -1}, 2, 1e-6, 0);
}

/* Naive per-channel statistics in double; far-from-zero data catches a
 * one-pass E[x^2] - E[x]^2 in float. */
static void test_nn_bn_train_reference(void **state)
{
    Rng r;
    BnCase b;
    int n = 5, c = 3, hw = 37;
    size_t len = (size_t)n * c * hw;
    double *want_y = dzero_vec(len), want_mean[3], want_is[3], want_rm[3], want_rv[3];

    rng_seed(&r, 1);
    bn_case_init(&b, &r, n, c, hw);
    for (size_t i = 0; i < len; i++)
        b.x[i] = b.x[i] * 0.05f + 1000.0f * (float)((i / (size_t)hw) % (size_t)c + 1);
    for (int ch = 0; ch < c; ch++) {
        double s = 0, ss = 0, m, v;
        b.rmean[ch] = 0.5f * (float)ch;
        b.rvar[ch] = 1.0f + (float)ch;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++)
                s += b.x[((size_t)i * c + ch) * hw + j];
        m = s / (n * hw);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double dv = b.x[((size_t)i * c + ch) * hw + j] - m;
                ss += dv * dv;
            }
        v = ss / (n * hw);
        want_mean[ch] = m;
        want_is[ch] = 1.0 / sqrt(v + 1e-5);
        want_rm[ch] = 0.9 * b.rmean[ch] + 0.1 * m;
        want_rv[ch] = 0.9 * b.rvar[ch] + 0.1 * ss / (n * hw - 1);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                want_y[k] = (b.x[k] - m) * want_is[ch] * b.gamma[ch] + b.beta[ch];
            }
    }
    ops()->bn_fwd_train(NULL, &b.d, b.x, b.gamma, b.beta, b.y, b.mean, b.invstd, b.rmean, b.rvar);
    expect_near("bn mean", b.mean, want_mean, 3, 0, 1e-7);
    expect_near("bn invstd", b.invstd, want_is, 3, 0, 1e-5);
    expect_near("bn running mean", b.rmean, want_rm, 3, 0, 1e-6);
    expect_near("bn running var", b.rvar, want_rv, 3, 0, 1e-5);
    /* the mean rounded to float is off by up to 1.2e-4 near 3000, a few
     * thousandths of y: the op must subtract it more precisely than that */
    expect_near("bn y", b.y, want_y, len, 1e-5, 1e-5);
    free(want_y);
    bn_case_release(&b);
}

static void test_nn_bn_eval(void **state)
{
    Rng r;
    BnCase b;
    int n = 3, c = 4, hw = 10;
    size_t len = (size_t)n * c * hw;
    double *want = dzero_vec(len);

    rng_seed(&r, 2);
    bn_case_init(&b, &r, n, c, hw);
    for (int ch = 0; ch < c; ch++) {
        b.rmean[ch] = 0.3f * (float)ch - 0.4f;
        b.rvar[ch] = 0.5f + (float)ch;
    }
    for (size_t k = 0; k < len; k++) {
        int ch = (int)(k / (size_t)hw % (size_t)c);
        want[k] = (b.x[k] - b.rmean[ch]) / sqrt(b.rvar[ch] + 1e-5) * b.gamma[ch] + b.beta[ch];
    }
    ops()->bn_fwd_eval(NULL, &b.d, b.x, b.gamma, b.beta, b.rmean, b.rvar, b.y);
    expect_near("bn eval y", b.y, want, len, 1e-6, 1e-5);
    free(want);
    bn_case_release(&b);
}

/* Finite differences of a float forward: y carries ~6e-8 relative rounding
 * (|y| <= 4, 108 outputs), so L = sum(y dy) is noisy by ~1e-6 at worst and
 * h = 1e-2 turns that into <= 5e-5 on the numeric gradient; the central
 * difference's own error is O((h / std)^2), ~3e-4 relative. Measured: at
 * most 4e-5 on gradients up to 1.2. atol 1e-3 + rtol 1e-2 is 20 times
 * that, while dropping either correction term of the formula is off by
 * 0.04 to 0.06. */
static void test_nn_bn_backward(void **state)
{
    Rng r;
    BnCase b;
    int n = 4, c = 3, hw = 9;
    size_t len = (size_t)n * c * hw;
    float *dy, *dx, *dgamma, *dbeta;

    rng_seed(&r, 3);
    bn_case_init(&b, &r, n, c, hw);
    dy = rand_vec(&r, len, -1.0f, 1.0f);
    dx = zero_vec(len);
    dgamma = zero_vec((size_t)c);
    dbeta = zero_vec((size_t)c);
    ops()->bn_fwd_train(NULL, &b.d, b.x, b.gamma, b.beta, b.y, b.mean, b.invstd, b.rmean, b.rvar);
    ops()->bn_bwd(NULL, &b.d, b.x, dy, b.gamma, b.mean, b.invstd, dx, dgamma, dbeta);
    b.wrt = 0;
    gc_check("bn dx", bn_gc_fwd, &b, b.x, len, len, dy, dx, (int)len, 1e-2f, 1e-3, 1e-2);
    b.wrt = 1;
    gc_check("bn dgamma", bn_gc_fwd, &b, b.gamma, (size_t)c, len, dy, dgamma, c, 1e-2f, 1e-3, 1e-2);
    b.wrt = 2;
    gc_check("bn dbeta", bn_gc_fwd, &b, b.beta, (size_t)c, len, dy, dbeta, c, 1e-2f, 1e-3, 1e-2);
    free(dy);
    free(dx);
    free(dgamma);
    free(dbeta);
    bn_case_release(&b);
}

/* ---- elementwise ---- */

static void relu_gc_fwd(void *ctx, const float *x, float *y)
{
    ops()->relu_fwd(NULL, *(size_t *)ctx, x, y);
}

static void test_nn_relu(void **state)
{
    Rng r;
    size_t n = 53;
    float *x, *y, *dy, *dx;
    double *want = dzero_vec(n);

    rng_seed(&r, 4);
    x = rand_vec(&r, n, -1.0f, 1.0f);
    /* keep away from the kink, where differences are meaningless */
    for (size_t i = 0; i < n; i++)
        x[i] += x[i] < 0 ? -0.1f : 0.1f;
    y = zero_vec(n);
    dy = rand_vec(&r, n, -1.0f, 1.0f);
    dx = zero_vec(n);
    for (size_t i = 0; i < n; i++)
        want[i] = x[i] > 0 ? x[i] : 0;
    ops()->relu_fwd(NULL, n, x, y);
    expect_near("relu y", y, want, n, 0, 0);
    ops()->relu_bwd(NULL, n, y, dy, dx);
    gc_check("relu dx", relu_gc_fwd, &n, x, n, n, dy, dx, (int)n, 1e-3f, 1e-4, 1e-3);
    /* in place */
    ops()->relu_fwd(NULL, n, x, x);
    expect_near("relu in place", x, want, n, 0, 0);
    free(x);
    free(y);
    free(dy);
    free(dx);
    free(want);
}

static void test_nn_add_acc_scale_fill(void **state)
{
    Rng r;
    size_t n = 29;
    float *a, *b, *y;
    double *want = dzero_vec(n);

    rng_seed(&r, 5);
    a = rand_vec(&r, n, -3.0f, 3.0f);
    b = rand_vec(&r, n, -3.0f, 3.0f);
    y = rand_vec(&r, n, -3.0f, 3.0f);

    for (size_t i = 0; i < n; i++)
        want[i] = (double)(a[i] + b[i]);
    ops()->add(NULL, n, a, b, y);
    expect_near("add", y, want, n, 0, 0);

    for (size_t i = 0; i < n; i++)
        want[i] = (double)(y[i] + a[i]);
    ops()->acc(NULL, n, a, y);
    expect_near("acc", y, want, n, 0, 0);

    for (size_t i = 0; i < n; i++)
        want[i] = (double)(-0.75f * a[i]);
    ops()->scale(NULL, n, -0.75f, a, y);
    expect_near("scale", y, want, n, 0, 0);
    ops()->scale(NULL, n, -0.75f, a, a);
    expect_near("scale in place", a, want, n, 0, 0);

    for (size_t i = 0; i < n; i++)
        want[i] = (double)(a[i] + b[i]);
    ops()->add(NULL, n, a, b, a);
    expect_near("add in place", a, want, n, 0, 0);

    for (size_t i = 0; i < n; i++)
        want[i] = 2.5;
    ops()->fill(NULL, n, 2.5f, y);
    expect_near("fill", y, want, n, 0, 0);
    free(a);
    free(b);
    free(y);
    free(want);
}

static void test_nn_sumsq(void **state)
{
    Rng r;
    size_t n = 1001;
    float *x;
    double want = 0;

    rng_seed(&r, 6);
    x = rand_vec(&r, n, -2.0f, 2.0f);
    for (size_t i = 0; i < n; i++)
        want += (double)x[i] * x[i];
    /* float squares summed in float lanes of at most 128 terms, then in
     * double: ~1e-7 relative, plenty for a clipping norm */
    if (fabs(ops()->sumsq(NULL, n, x) - want) > 1e-6 * want)
        fail_msg("sumsq: got %.12g, want %.12g", ops()->sumsq(NULL, n, x), want);
    if (ops()->sumsq(NULL, 0, x) != 0)
        fail_msg("sumsq of nothing is not 0");
    free(x);
}

typedef struct MaskCase {
    int n;
    size_t per;
    const uint8_t *mask;
    float keep;
} MaskCase;

static void mask_gc_fwd(void *ctx, const float *x, float *y)
{
    MaskCase *m = ctx;
    ops()->mask_scale(NULL, m->n, m->per, m->mask, m->keep, x, y);
}

static void test_nn_mask_scale(void **state)
{
    Rng r;
    uint8_t mask[4] = {1, 0, 1, 1};
    MaskCase m = {.n = 4, .per = 11, .mask = mask, .keep = 0.75f};
    size_t len = 44;
    float *x, *y, *dy, *dx;
    double *want = dzero_vec(len);

    rng_seed(&r, 7);
    x = rand_vec(&r, len, -1.0f, 1.0f);
    y = zero_vec(len);
    dy = rand_vec(&r, len, -1.0f, 1.0f);
    dx = zero_vec(len);
    for (size_t i = 0; i < len; i++)
        want[i] = mask[i / m.per] ? x[i] / 0.75 : 0;
    ops()->mask_scale(NULL, m.n, m.per, mask, m.keep, x, y);
    expect_near("mask_scale y", y, want, len, 0, 2.5e-7);
    /* the backward is the same call on dy */
    ops()->mask_scale(NULL, m.n, m.per, mask, m.keep, dy, dx);
    gc_check("mask_scale dx", mask_gc_fwd, &m, x, len, len, dy, dx, (int)len, 1e-2f, 1e-4, 1e-3);
    free(x);
    free(y);
    free(dy);
    free(dx);
    free(want);
}

/* p = 1, g = 0.5 every step, lr = 0.1; the sequences worked by hand. */
static void test_nn_sgd_by_hand(void **state)
{
    struct {
        const char *what;
        float momentum, wd;
        int nesterov;
        double want[3];
    } cases[] = {
        {"plain", 0.0f, 0.0f, 0, {0.95, 0.90, 0.85}},
        /* v 0.5, 0.95, 1.355 */
        {"momentum", 0.9f, 0.0f, 0, {0.95, 0.855, 0.7195}},
        /* steps g + 0.9 v: 0.95, 1.355, 1.7195 */
        {"nesterov", 0.9f, 0.0f, 1, {0.905, 0.7695, 0.59755}},
        /* g' = 0.5 + 0.1 p: 0.6, 0.594, 0.58806 */
        {"weight decay", 0.0f, 0.1f, 0, {0.94, 0.8806, 0.821794}},
        /* g' 0.6, v 0.6; g' 0.594, v 1.134; g' 0.58266, v 1.60326 */
        {"momentum and weight decay", 0.9f, 0.1f, 0, {0.94, 0.8266, 0.666274}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* element 1 is outside the decay mask: it follows the wd = 0 path */
        float p[2] = {1, 1}, g[2] = {0.5f, 0.5f}, v[2] = {0, 0};
        uint8_t decay[2] = {1, 0};
        float q[1] = {1}, vq[1] = {0};
        for (int step = 0; step < 3; step++) {
            char what[96];
            ops()->sgd(NULL, 2, p, g, v, decay, 0.1f, cases[c].momentum, cases[c].wd, cases[c].nesterov);
            ops()->sgd(NULL, 1, q, g, vq, decay + 1, 0.1f, cases[c].momentum, 0.0f, cases[c].nesterov);
            snprintf(what, sizeof what, "sgd %s, step %d", cases[c].what, step + 1);
            expect_near(what, p, &cases[c].want[step], 1, 1e-6, 0);
            snprintf(what, sizeof what, "sgd %s, step %d, undecayed", cases[c].what, step + 1);
            expect_near_f(what, p + 1, q, 1, 0, 0);
        }
        if (g[0] != 0.5f || g[1] != 0.5f)
            fail_msg("sgd %s: the gradient was modified", cases[c].what);
    }
}

/* Many steps with random values against the documented update in double. */
static void test_nn_sgd_reference(void **state)
{
    Rng r;
    size_t n = 37;
    float *p, *g, *v;
    double *pd = dzero_vec(n), *vd = dzero_vec(n);
    uint8_t decay[37];

    rng_seed(&r, 8);
    p = rand_vec(&r, n, -1.0f, 1.0f);
    v = zero_vec(n);
    for (size_t i = 0; i < n; i++) {
        pd[i] = p[i];
        decay[i] = (uint8_t)(i % 3 != 0);
    }
    for (int step = 0; step < 10; step++) {
        int nesterov = step % 2;
        g = rand_vec(&r, n, -1.0f, 1.0f);
        ops()->sgd(NULL, n, p, g, v, decay, 0.05f, 0.9f, 5e-4f, nesterov);
        for (size_t i = 0; i < n; i++) {
            double gi = g[i] + (decay[i] ? 5e-4 * pd[i] : 0);
            vd[i] = 0.9 * vd[i] + gi;
            pd[i] -= 0.05 * (nesterov ? gi + 0.9 * vd[i] : vd[i]);
        }
        free(g);
    }
    expect_near("sgd reference p", p, pd, n, 1e-6, 1e-5);
    expect_near("sgd reference v", v, vd, n, 1e-6, 1e-5);
    free(p);
    free(v);
    free(pd);
    free(vd);
}

/* ---- shape ops ---- */

typedef struct ConcatCase {
    int n, hw, k, which;
    const int *c;
    float *x[3];
} ConcatCase;

static void concat_gc_fwd(void *ctx, const float *v, float *y)
{
    ConcatCase *cc = ctx;
    const float *x[3];
    for (int i = 0; i < cc->k; i++)
        x[i] = i == cc->which ? v : cc->x[i];
    ops()->concat_fwd(NULL, cc->n, cc->hw, cc->k, cc->c, x, y);
}

static void test_nn_concat(void **state)
{
    Rng r;
    int c[3] = {2, 3, 1};
    ConcatCase cc = {.n = 3, .hw = 5, .k = 3, .c = c};
    size_t len = 3 * 6 * 5;
    float *y, *dy, *dx[3];
    double *want = dzero_vec(len);

    rng_seed(&r, 9);
    for (int i = 0; i < 3; i++) {
        cc.x[i] = rand_vec(&r, (size_t)cc.n * c[i] * cc.hw, -1.0f, 1.0f);
        dx[i] = zero_vec((size_t)cc.n * c[i] * cc.hw);
    }
    y = zero_vec(len);
    dy = rand_vec(&r, len, -1.0f, 1.0f);
    for (int s = 0; s < cc.n; s++)
        for (int ch = 0; ch < 6; ch++)
            for (int j = 0; j < cc.hw; j++) {
                int i = ch < 2 ? 0 : ch < 5 ? 1 : 2, lc = ch - (ch < 2 ? 0 : ch < 5 ? 2 : 5);
                want[((size_t)s * 6 + ch) * cc.hw + j] = cc.x[i][((size_t)s * c[i] + lc) * cc.hw + j];
            }
    ops()->concat_fwd(NULL, cc.n, cc.hw, cc.k, c, (const float *const *)cc.x, y);
    expect_near("concat y", y, want, len, 0, 0);
    ops()->concat_bwd(NULL, cc.n, cc.hw, cc.k, c, dy, dx);
    for (int i = 0; i < 3; i++) {
        char what[32];
        snprintf(what, sizeof what, "concat dx%d", i);
        cc.which = i;
        gc_check(what, concat_gc_fwd, &cc, cc.x[i], (size_t)cc.n * c[i] * cc.hw, len, dy, dx[i], 1000,
                 1e-2f, 1e-4, 1e-3);
    }
    for (int i = 0; i < 3; i++) {
        free(cc.x[i]);
        free(dx[i]);
    }
    free(y);
    free(dy);
    free(want);
}

typedef struct CropCase {
    int n, c, h, w, oy, ox, oh, ow;
} CropCase;

static void crop_gc_fwd(void *ctx, const float *x, float *y)
{
    CropCase *k = ctx;
    ops()->crop_fwd(NULL, k->n, k->c, k->h, k->w, k->oy, k->ox, k->oh, k->ow, x, y);
}

static void test_nn_crop(void **state)
{
    Rng r;
    CropCase k = {.n = 2, .c = 3, .h = 5, .w = 6, .oy = 1, .ox = 2, .oh = 3, .ow = 4};
    size_t nx = 2 * 3 * 5 * 6, ny = 2 * 3 * 3 * 4;
    float *x, *y, *dy, *dx;
    double *want = dzero_vec(ny);

    rng_seed(&r, 10);
    x = rand_vec(&r, nx, -1.0f, 1.0f);
    y = zero_vec(ny);
    dy = rand_vec(&r, ny, -1.0f, 1.0f);
    dx = zero_vec(nx);
    for (int p = 0; p < k.n * k.c; p++)
        for (int i = 0; i < k.oh; i++)
            for (int j = 0; j < k.ow; j++)
                want[((size_t)p * k.oh + i) * k.ow + j] = x[((size_t)p * k.h + i + k.oy) * k.w + j + k.ox];
    ops()->crop_fwd(NULL, k.n, k.c, k.h, k.w, k.oy, k.ox, k.oh, k.ow, x, y);
    expect_near("crop y", y, want, ny, 0, 0);
    ops()->crop_bwd(NULL, k.n, k.c, k.h, k.w, k.oy, k.ox, k.oh, k.ow, dy, dx);
    gc_check("crop dx", crop_gc_fwd, &k, x, nx, ny, dy, dx, (int)nx, 1e-2f, 1e-4, 1e-3);
    free(x);
    free(y);
    free(dy);
    free(dx);
    free(want);
}

typedef struct GapCase {
    int n, c, hw;
} GapCase;

static void gap_gc_fwd(void *ctx, const float *x, float *y)
{
    GapCase *g = ctx;
    ops()->gap_fwd(NULL, g->n, g->c, g->hw, x, y);
}

static void test_nn_gap(void **state)
{
    Rng r;
    GapCase g = {.n = 3, .c = 4, .hw = 49};
    size_t nx = 3 * 4 * 49, ny = 12;
    float *x, *y, *dy, *dx;
    double *want = dzero_vec(ny);

    rng_seed(&r, 11);
    x = rand_vec(&r, nx, -1.0f, 1.0f);
    y = zero_vec(ny);
    dy = rand_vec(&r, ny, -1.0f, 1.0f);
    dx = zero_vec(nx);
    for (size_t p = 0; p < ny; p++) {
        for (int j = 0; j < g.hw; j++)
            want[p] += x[p * g.hw + j];
        want[p] /= g.hw;
    }
    ops()->gap_fwd(NULL, g.n, g.c, g.hw, x, y);
    expect_near("gap y", y, want, ny, 1e-7, 1e-6);
    ops()->gap_bwd(NULL, g.n, g.c, g.hw, dy, dx);
    gc_check("gap dx", gap_gc_fwd, &g, x, nx, ny, dy, dx, (int)nx, 1e-2f, 1e-4, 1e-3);
    free(x);
    free(y);
    free(dy);
    free(dx);
    free(want);
}

/* ---- linear ---- */

typedef struct LinCase {
    int n, in, out, wrt;
    float *x, *w, *b;
} LinCase;

static void lin_gc_fwd(void *ctx, const float *v, float *y)
{
    LinCase *l = ctx;
    ops()->linear_fwd(NULL, l->n, l->in, l->out, l->wrt == 0 ? v : l->x, l->wrt == 1 ? v : l->w,
                      l->wrt == 2 ? v : l->b, y);
}

static void test_nn_linear(void **state)
{
    Rng r;
    LinCase l = {.n = 5, .in = 7, .out = 3};
    size_t nx = 35, nw = 21, ny = 15;
    float *y, *dy, *dx, *dw, *db;
    double *want = dzero_vec(ny);

    rng_seed(&r, 12);
    l.x = rand_vec(&r, nx, -1.0f, 1.0f);
    l.w = rand_vec(&r, nw, -1.0f, 1.0f);
    l.b = rand_vec(&r, 3, -1.0f, 1.0f);
    y = zero_vec(ny);
    dy = rand_vec(&r, ny, -1.0f, 1.0f);
    dx = zero_vec(nx);
    dw = zero_vec(nw);
    db = zero_vec(3);
    for (int i = 0; i < l.n; i++)
        for (int o = 0; o < l.out; o++) {
            double s = l.b[o];
            for (int k = 0; k < l.in; k++)
                s += (double)l.x[i * l.in + k] * l.w[o * l.in + k];
            want[i * l.out + o] = s;
        }
    ops()->linear_fwd(NULL, l.n, l.in, l.out, l.x, l.w, l.b, y);
    expect_near("linear y", y, want, ny, 1e-6, 1e-5);
    ops()->linear_bwd(NULL, l.n, l.in, l.out, l.x, l.w, dy, dx, dw, db);
    l.wrt = 0;
    gc_check("linear dx", lin_gc_fwd, &l, l.x, nx, ny, dy, dx, (int)nx, 1e-2f, 1e-4, 1e-3);
    l.wrt = 1;
    gc_check("linear dw", lin_gc_fwd, &l, l.w, nw, ny, dy, dw, (int)nw, 1e-2f, 1e-4, 1e-3);
    l.wrt = 2;
    gc_check("linear db", lin_gc_fwd, &l, l.b, 3, ny, dy, db, 3, 1e-2f, 1e-4, 1e-3);
    free(l.x);
    free(l.w);
    free(l.b);
    free(y);
    free(dy);
    free(dx);
    free(dw);
    free(db);
    free(want);
}

/* ---- cross-entropy ---- */

typedef struct XentCase {
    int n, k;
    const int32_t *labels;
    float smoothing;
    float *scratch;
} XentCase;

static void xent_gc_fwd(void *ctx, const float *z, float *loss)
{
    XentCase *c = ctx;
    int correct;
    ops()->xent(NULL, c->n, c->k, z, c->labels, c->smoothing, c->scratch, loss, &correct);
}

/* The loss from log-softmax written out directly, in double. */
static double xent_reference(int n, int k, const float *z, const int32_t *labels, double s, double *grad)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int j = 0; j < k; j++)
            sum += exp((double)z[i * k + j]);
        for (int j = 0; j < k; j++) {
            double logp = z[i * k + j] - log(sum);
            double t = s / k + (j == labels[i] ? 1 - s : 0);
            total -= t * logp;
            grad[i * k + j] = (exp(logp) - t) / n;
        }
    }
    return total / n;
}

static void test_nn_xent(void **state)
{
    Rng r;
    int n = 6, k = 5;
    int32_t labels[6] = {0, 4, 2, 2, 1, 3};
    float *z, *dz, *dz2, loss;
    double *want = dzero_vec(30);
    float smoothings[2] = {0.0f, 0.1f};
    int correct;

    rng_seed(&r, 13);
    z = rand_vec(&r, 30, -2.0f, 2.0f);
    dz = zero_vec(30);
    dz2 = zero_vec(30);
    /* rows 0, 2 and 5 predict their label, rows 1 and 3 do not */
    z[0 * k + 0] = 5;
    z[1 * k + 0] = 5;
    z[2 * k + 2] = 5;
    z[3 * k + 1] = 5;
    z[5 * k + 3] = 5;
    z[4 * k + 1] = -5;
    for (int s = 0; s < 2; s++) {
        XentCase c = {.n = n, .k = k, .labels = labels, .smoothing = smoothings[s], .scratch = dz2};
        double wl = xent_reference(n, k, z, labels, smoothings[s], want);
        float one = 1.0f;
        ops()->xent(NULL, n, k, z, labels, smoothings[s], dz, &loss, &correct);
        expect_near("xent loss", &loss, &wl, 1, 0, 1e-6);
        expect_near("xent dlogits", dz, want, 30, 1e-7, 1e-5);
        assert_int_equal(correct, 3);
        gc_check("xent dlogits", xent_gc_fwd, &c, z, 30, 1, &one, dz, 30, 1e-2f, 1e-4, 1e-2);
    }

    /* huge logits: stable, and the loss of a confident right answer is 0 */
    {
        float big[3] = {1000.0f, -1000.0f, 0.0f}, g[3];
        int32_t lab[1] = {0};
        ops()->xent(NULL, 1, 3, big, lab, 0.0f, g, &loss, &correct);
        if (!isfinite(loss) || loss > 1e-6f || correct != 1)
            fail_msg("xent with huge logits: loss %g, correct %d", (double)loss, correct);
        for (int j = 0; j < 3; j++)
            if (!isfinite(g[j]) || fabsf(g[j]) > 1e-6f)
                fail_msg("xent with huge logits: gradient %d is %g", j, (double)g[j]);
    }

    /* a label out of range is skipped, never read past */
    {
        int32_t bad[6] = {0, -1, 2, 99, 1, 3};
        double partial = 0;
        for (size_t i = 0; i < 30; i++)
            dz[i] = 7.0f;
        xent_reference(n, k, z, labels, 0.0, want);
        for (int i = 0; i < n; i++)
            if (bad[i] == labels[i]) {
                double sum = 0;
                for (int j = 0; j < k; j++)
                    sum += exp((double)z[i * k + j]);
                partial += log(sum) - z[i * k + labels[i]];
            } else {
                for (int j = 0; j < k; j++)
                    want[i * k + j] = 0;
            }
        partial /= n;
        ops()->xent(NULL, n, k, z, bad, 0.0f, dz, &loss, &correct);
        expect_near("xent loss with bad labels", &loss, &partial, 1, 0, 1e-6);
        expect_near("xent dlogits with bad labels", dz, want, 30, 1e-7, 1e-5);
        assert_int_equal(correct, 3);
    }
    free(z);
    free(dz);
    free(dz2);
    free(want);
}

/* ---- accumulation, determinism, the table ---- */

/* Every backward called twice on zeroed gradients gives twice one call:
 * exactly for the elementwise ones, to rounding for the sgemm ones. */
static void test_nn_backward_accumulates(void **state)
{
    Rng r;
    const NnBackend *B = ops();
    BnDesc d = {.n = 3, .c = 2, .hw = 13, .eps = 1e-5f, .momentum = 0.1f};
    size_t len = 78;
    float *x, *dy, *y, *g1[3], *g2[3], mean[2], invstd[2], rm[2] = {0, 0}, rv[2] = {1, 1};
    float gamma[2] = {1.2f, 0.7f}, beta[2] = {0.1f, -0.2f};
    int c3[3] = {1, 3, 2};

    rng_seed(&r, 14);
    x = rand_vec(&r, len, -1.0f, 1.0f);
    dy = rand_vec(&r, len, -1.0f, 1.0f);
    y = zero_vec(len);
    for (int i = 0; i < 3; i++) {
        g1[i] = zero_vec(len);
        g2[i] = zero_vec(len);
    }

#define TWICE(call1, call2)                                                                        \
    do {                                                                                           \
        for (int i_ = 0; i_ < 3; i_++) {                                                           \
            memset(g1[i_], 0, len * sizeof(float));                                                \
            memset(g2[i_], 0, len * sizeof(float));                                                \
        }                                                                                          \
        call1;                                                                                     \
        call2;                                                                                     \
        call2;                                                                                     \
    } while (0)

    B->bn_fwd_train(NULL, &d, x, gamma, beta, y, mean, invstd, rm, rv);
    TWICE(B->bn_bwd(NULL, &d, x, dy, gamma, mean, invstd, g1[0], g1[1], g1[2]),
          B->bn_bwd(NULL, &d, x, dy, gamma, mean, invstd, g2[0], g2[1], g2[2]));
    expect_doubled("bn dx", g2[0], g1[0], len, 0);
    expect_doubled("bn dgamma", g2[1], g1[1], 2, 0);
    expect_doubled("bn dbeta", g2[2], g1[2], 2, 0);

    B->relu_fwd(NULL, len, x, y);
    TWICE(B->relu_bwd(NULL, len, y, dy, g1[0]), B->relu_bwd(NULL, len, y, dy, g2[0]));
    expect_doubled("relu dx", g2[0], g1[0], len, 0);

    TWICE(B->concat_bwd(NULL, 2, 6, 3, c3, dy, g1), B->concat_bwd(NULL, 2, 6, 3, c3, dy, g2));
    for (int i = 0; i < 3; i++)
        expect_doubled("concat dx", g2[i], g1[i], (size_t)2 * c3[i] * 6, 0);

    TWICE(B->crop_bwd(NULL, 2, 1, 6, 6, 1, 1, 5, 5, dy, g1[0]),
          B->crop_bwd(NULL, 2, 1, 6, 6, 1, 1, 5, 5, dy, g2[0]));
    expect_doubled("crop dx", g2[0], g1[0], 72, 0);

    TWICE(B->gap_bwd(NULL, 2, 3, 13, dy, g1[0]), B->gap_bwd(NULL, 2, 3, 13, dy, g2[0]));
    expect_doubled("gap dx", g2[0], g1[0], len, 0);

    /* x (6, 13), w (5, 13), dy (6, 5) */
    TWICE(B->linear_bwd(NULL, 6, 13, 5, x, dy, y, g1[0], g1[1], g1[2]),
          B->linear_bwd(NULL, 6, 13, 5, x, dy, y, g2[0], g2[1], g2[2]));
    expect_doubled("linear dx", g2[0], g1[0], 78, 1e-6);
    expect_doubled("linear dw", g2[1], g1[1], 65, 1e-6);
    expect_doubled("linear db", g2[2], g1[2], 5, 1e-6);
#undef TWICE

    free(x);
    free(dy);
    free(y);
    for (int i = 0; i < 3; i++) {
        free(g1[i]);
        free(g2[i]);
    }
}

/* Everything a training step runs, computed from the same inputs. */
typedef struct StepOut {
    float y[2 * 4 * 64], dx[2 * 4 * 64], dgamma[4], dbeta[4], mean[4], invstd[4], rm[4], rv[4];
    float pooled[8], logits[6], dlogits[6], dpooled[8], dw[12], db[3], w[12], v[12], loss;
    double norm;
    int correct;
} StepOut;

static void nn_step(StepOut *o, const float *x, const float *dy_seed)
{
    const NnBackend *B = ops();
    BnDesc d = {.n = 2, .c = 4, .hw = 64, .eps = 1e-5f, .momentum = 0.1f};
    float gamma[4] = {1, 0.5f, 2, 1.5f}, beta[4] = {0, 0.1f, -0.1f, 0.2f}, b[3] = {0.1f, 0, -0.1f};
    int32_t labels[2] = {1, 2};
    uint8_t decay[12];
    float dy[2 * 4 * 64];

    memset(o, 0, sizeof *o);
    for (int i = 0; i < 12; i++) {
        o->w[i] = 0.05f * (float)(i % 7) - 0.1f;
        decay[i] = (uint8_t)(i % 2);
    }
    for (int i = 0; i < 4; i++)
        o->rv[i] = 1;
    B->bn_fwd_train(NULL, &d, x, gamma, beta, o->y, o->mean, o->invstd, o->rm, o->rv);
    B->relu_fwd(NULL, sizeof o->y / sizeof o->y[0], o->y, o->y);
    B->gap_fwd(NULL, 2, 4, 64, o->y, o->pooled);
    B->linear_fwd(NULL, 2, 4, 3, o->pooled, o->w, b, o->logits);
    B->xent(NULL, 2, 3, o->logits, labels, 0.1f, o->dlogits, &o->loss, &o->correct);
    B->linear_bwd(NULL, 2, 4, 3, o->pooled, o->w, o->dlogits, o->dpooled, o->dw, o->db);
    memset(dy, 0, sizeof dy);
    B->gap_bwd(NULL, 2, 4, 64, o->dpooled, dy);
    B->acc(NULL, sizeof dy / sizeof dy[0], dy_seed, dy);
    B->bn_bwd(NULL, &d, x, dy, gamma, o->mean, o->invstd, o->dx, o->dgamma, o->dbeta);
    o->norm = B->sumsq(NULL, 12, o->dw);
    B->sgd(NULL, 12, o->w, o->dw, o->v, decay, 0.1f, 0.9f, 1e-4f, 1);
}

static void test_nn_deterministic(void **state)
{
    Rng r;
    StepOut *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    float *x, *dy;

    assert_non_null(a);
    assert_non_null(b);
    rng_seed(&r, 15);
    x = rand_vec(&r, 512, -2.0f, 2.0f);
    dy = rand_vec(&r, 512, -0.01f, 0.01f);
    nn_step(a, x, dy);
    nn_step(b, x, dy);
    expect_same_bits("a training step", a, b, sizeof *a);
    if (!isfinite(a->loss) || a->norm <= 0)
        fail_msg("the training step computed nothing: loss %g, norm %g", (double)a->loss, a->norm);
    free(a);
    free(b);
    free(x);
    free(dy);
}

static void test_nn_cpu_backend_table(void **state)
{
    const NnBackend *B = nn_cpu_backend(0);
    const NnBackend *B2 = nn_cpu_backend(2);
    float src[5] = {1, 2, 3, 4, 5}, back[5] = {0};
    unsigned char *p;

    assert_ptr_equal(B, B2);
    assert_string_equal(B->name, "cpu");
    assert_true(B->alloc && B->free && B->upload && B->download && B->sync && B->conv_workspace);
    assert_true(B->conv_fwd && B->conv_bwd_data && B->conv_bwd_filter);
    assert_true(B->bn_fwd_train && B->bn_fwd_eval && B->bn_bwd);
    assert_true(B->relu_fwd && B->relu_bwd && B->add && B->acc && B->scale && B->fill);
    assert_true(B->pool_fwd && B->pool_bwd && B->concat_fwd && B->concat_bwd);
    assert_true(B->crop_fwd && B->crop_bwd && B->gap_fwd && B->gap_bwd);
    assert_true(B->linear_fwd && B->linear_bwd && B->xent && B->mask_scale && B->sgd && B->sumsq);

    for (size_t bytes = 0; bytes < 300; bytes += 37) {
        p = B->alloc(B->ctx, bytes);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        for (size_t i = 0; i < bytes; i++)
            if (p[i])
                fail_msg("alloc of %zu bytes: byte %zu is not zero", bytes, i);
        B->free(B->ctx, p);
    }
    assert_null(B->alloc(B->ctx, SIZE_MAX));

    p = B->alloc(B->ctx, sizeof src);
    assert_non_null(p);
    B->upload(B->ctx, p, src, sizeof src);
    B->download(B->ctx, back, p, sizeof src);
    assert_memory_equal(back, src, sizeof src);
    B->free(B->ctx, p);
    nn_cpu_backend(1);
}

const struct CMUnitTest test_nn_ops_tests[] = {
    cmocka_unit_test(test_nn_bn_train_by_hand),
    cmocka_unit_test(test_nn_bn_train_reference),
    cmocka_unit_test(test_nn_bn_eval),
    cmocka_unit_test(test_nn_bn_backward),
    cmocka_unit_test(test_nn_relu),
    cmocka_unit_test(test_nn_add_acc_scale_fill),
    cmocka_unit_test(test_nn_sumsq),
    cmocka_unit_test(test_nn_mask_scale),
    cmocka_unit_test(test_nn_sgd_by_hand),
    cmocka_unit_test(test_nn_sgd_reference),
    cmocka_unit_test(test_nn_concat),
    cmocka_unit_test(test_nn_crop),
    cmocka_unit_test(test_nn_gap),
    cmocka_unit_test(test_nn_linear),
    cmocka_unit_test(test_nn_xent),
    cmocka_unit_test(test_nn_backward_accumulates),
    cmocka_unit_test(test_nn_deterministic),
    cmocka_unit_test(test_nn_cpu_backend_table),
};
const size_t test_nn_ops_count = sizeof test_nn_ops_tests / sizeof test_nn_ops_tests[0];
