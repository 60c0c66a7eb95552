/* Unit tests for the surrogates' autodiff tape (lib/model/tape.h): every
 * op's backward against central finite differences (the loss summed in
 * double, the tolerance shown to catch a gradient 3% off), forward values
 * against naive loops, parameter gradients through the layers, Adam and
 * clipping by hand, errors, and determinism. */
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

#include "model/layers.h"
#include "model/tape.h"

/* ---- the finite-difference harness ---- */

#define GC_MAX_IN 4
#define GC_H 1e-2f      /* central-difference step */
#define GC_RTOL 1e-2    /* tolerance relative to the coordinate's own size */
#define GC_FLOOR 1e-3   /* ... and to the largest coordinate of the check */

typedef struct GcSpec {
    int rows, cols;
    float lo, hi;
    int away_from_zero; /* |x| >= 0.1, for kinks at 0 (relu) */
    int no_grad;        /* a constant input */
} GcSpec;

/* Builds the op under test from the input leaves. */
typedef TVar (*GcBuild)(Tape *t, const TVar *in, void *ctx);

typedef struct Gc {
    Tape *t;
    GcBuild build;
    void *ctx;
    const GcSpec *spec;
    int nin;
    float *x[GC_MAX_IN];
    float *dy;
    int ny;
} Gc;

/* Records the inputs and the op; returns y. */
static TVar gc_forward(Gc *g, TVar *in)
{
    tape_reset(g->t);
    for (int k = 0; k < g->nin; k++)
        in[k] = tape_input(g->t, g->spec[k].rows, g->spec[k].cols, g->x[k], !g->spec[k].no_grad);
    return g->build(g->t, in, g->ctx);
}

/* sum(y * dy) in double. */
static double gc_objective(Gc *g)
{
    TVar in[GC_MAX_IN];
    TVar y = gc_forward(g, in);
    const float *v = tape_value(g->t, y);
    double l = 0;
    assert_non_null(v);
    for (int i = 0; i < g->ny; i++)
        l += (double)v[i] * g->dy[i];
    return l;
}

/* Central differences of the objective for every coordinate of every input
 * that takes a gradient, into num[k]. */
static void gc_numeric(Gc *g, double *const *num)
{
    for (int k = 0; k < g->nin; k++) {
        size_t n = (size_t)g->spec[k].rows * g->spec[k].cols;
        if (g->spec[k].no_grad)
            continue;
        for (size_t i = 0; i < n; i++) {
            float keep = g->x[k][i];
            double lp, lm;
            g->x[k][i] = keep + GC_H;
            lp = gc_objective(g);
            g->x[k][i] = keep - GC_H;
            lm = gc_objective(g);
            g->x[k][i] = keep;
            num[k][i] = (lp - lm) / (2.0 * GC_H);
        }
    }
}

/* The error of one coordinate as a fraction of its tolerance:
 * |numeric - analytic| <= GC_RTOL |numeric| + GC_FLOOR max|numeric| + 1e-5. */
static double gc_err(double num, double ana, double maxabs)
{
    return fabs(num - ana) / (GC_RTOL * fabs(num) + GC_FLOOR * maxabs + 1e-5);
}

/* Largest gc_err with the analytic gradient scaled by scale: at most 1 passes. */
static double gc_worst(const Gc *g, double *const *num, float *const *analytic, double scale)
{
    double worst = 0, maxabs = 0;
    for (int k = 0; k < g->nin; k++)
        if (!g->spec[k].no_grad)
            for (size_t i = 0; i < (size_t)g->spec[k].rows * g->spec[k].cols; i++)
                maxabs = fmax(maxabs, fabs(num[k][i]));
    for (int k = 0; k < g->nin; k++)
        if (!g->spec[k].no_grad)
            for (size_t i = 0; i < (size_t)g->spec[k].rows * g->spec[k].cols; i++)
                worst = fmax(worst, gc_err(num[k][i], scale * analytic[k][i], maxabs));
    return worst;
}

/* Checks the op's backward on random inputs: passes at the tolerance and
 * fails it with the analytic gradient scaled by 1.03. */
static void gc_check_op(const char *what, GcBuild build, void *ctx, const GcSpec *spec, int nin,
                        uint64_t seed)
{
    Gc g = {.build = build, .ctx = ctx, .spec = spec, .nin = nin};
    float *analytic[GC_MAX_IN] = {0};
    double *num[GC_MAX_IN] = {0};
    TVar in[GC_MAX_IN], y;
    Rng r;
    XErr e = {0};
    double ok, off;
    assert_true(nin <= GC_MAX_IN);
    assert_int_equal(tape_new(&g.t, &e), XE_OK);
    rng_seed(&r, seed);
    for (int k = 0; k < nin; k++) {
        size_t n = (size_t)spec[k].rows * spec[k].cols;
        g.x[k] = malloc(n * sizeof(float));
        analytic[k] = calloc(n, sizeof(float));
        num[k] = calloc(n, sizeof(double));
        assert_non_null(g.x[k]);
        assert_non_null(analytic[k]);
        assert_non_null(num[k]);
        for (size_t i = 0; i < n; i++) {
            float v = spec[k].lo + (spec[k].hi - spec[k].lo) * (float)rng_uniform(&r);
            if (spec[k].away_from_zero && fabsf(v) < 0.1f)
                v = v < 0 ? v - 0.1f : v + 0.1f;
            g.x[k][i] = v;
        }
    }
    y = gc_forward(&g, in);
    if (tape_status(g.t, &e))
        fail_msg("%s: %s", what, e.msg);
    g.ny = tape_rows(g.t, y) * tape_cols(g.t, y);
    g.dy = malloc((size_t)g.ny * sizeof(float));
    assert_non_null(g.dy);
    for (int i = 0; i < g.ny; i++)
        g.dy[i] = (float)(2.0 * rng_uniform(&r) - 1.0);
    if (tape_backward(g.t, y, g.dy, &e))
        fail_msg("%s: backward: %s", what, e.msg);
    for (int k = 0; k < nin; k++)
        if (!spec[k].no_grad) {
            const float *gr = tape_grad(g.t, in[k]);
            assert_non_null(gr);
            memcpy(analytic[k], gr, (size_t)spec[k].rows * spec[k].cols * sizeof(float));
        }
    gc_numeric(&g, num);
    ok = gc_worst(&g, num, analytic, 1.0);
    off = gc_worst(&g, num, analytic, 1.03);
    if (ok > 1.0)
        fail_msg("%s: backward is off finite differences (worst error %.3g of the tolerance)", what, ok);
    if (off <= 1.0)
        fail_msg("%s: the tolerance does not catch a gradient 3%% off (worst %.3g)", what, off);
    for (int k = 0; k < nin; k++) {
        free(g.x[k]);
        free(analytic[k]);
        free(num[k]);
    }
    free(g.dy);
    tape_free(g.t);
}

/* ---- op builders ---- */

static TVar b_matmul(Tape *t, const TVar *in, void *ctx)
{
    const int *tt = ctx;
    return tape_matmul(t, in[0], in[1], tt[0], tt[1]);
}

static TVar b_add(Tape *t, const TVar *in, void *ctx)
{
    return tape_add(t, in[0], in[1]);
}

static TVar b_bias(Tape *t, const TVar *in, void *ctx)
{
    return tape_add_bias(t, in[0], in[1]);
}

static TVar b_mul(Tape *t, const TVar *in, void *ctx)
{
    return tape_mul(t, in[0], in[1]);
}

/* x * x + 2x: one value feeding two ops, twice into one. */
static TVar b_reuse(Tape *t, const TVar *in, void *ctx)
{
    return tape_add(t, tape_mul(t, in[0], in[0]), tape_scale(t, in[0], 2.0f));
}

static TVar b_scale(Tape *t, const TVar *in, void *ctx)
{
    return tape_scale(t, in[0], -1.7f);
}

static TVar b_tanh(Tape *t, const TVar *in, void *ctx)
{
    return tape_tanh(t, in[0]);
}

static TVar b_sigmoid(Tape *t, const TVar *in, void *ctx)
{
    return tape_sigmoid(t, in[0]);
}

static TVar b_relu(Tape *t, const TVar *in, void *ctx)
{
    return tape_relu(t, in[0]);
}

static const int embed_ids[7] = {2, 0, 4, 2, 1, 2, 4};

static TVar b_embed(Tape *t, const TVar *in, void *ctx)
{
    return tape_embed(t, in[0], embed_ids, 7);
}

static TVar b_concat_cols(Tape *t, const TVar *in, void *ctx)
{
    TVar xs[4] = {in[1], in[0], in[2], in[0]};
    return tape_concat_cols(t, xs, 4);
}

static TVar b_concat_rows(Tape *t, const TVar *in, void *ctx)
{
    TVar xs[3] = {in[0], in[1], in[0]};
    return tape_concat_rows(t, xs, 3);
}

static TVar b_slice_cols(Tape *t, const TVar *in, void *ctx)
{
    return tape_add(t, tape_slice_cols(t, in[0], 1, 2), tape_slice_cols(t, in[0], 2, 2));
}

static TVar b_slice_rows(Tape *t, const TVar *in, void *ctx)
{
    return tape_add(t, tape_slice_rows(t, in[0], 0, 2), tape_slice_rows(t, in[0], 3, 2));
}

static TVar b_sum_cols(Tape *t, const TVar *in, void *ctx)
{
    return tape_sum_cols(t, in[0]);
}

static TVar b_mean_rows(Tape *t, const TVar *in, void *ctx)
{
    return tape_mean_rows(t, in[0]);
}

static TVar b_mean(Tape *t, const TVar *in, void *ctx)
{
    return tape_mean(t, in[0]);
}

static TVar b_l2norm(Tape *t, const TVar *in, void *ctx)
{
    return tape_l2norm(t, in[0], 1e-8f);
}

static TVar b_lstm(Tape *t, const TVar *in, void *ctx)
{
    return tape_lstm_cell(t, in[0], *(int *)ctx ? in[1] : TAPE_NONE);
}

static TVar b_dropout(Tape *t, const TVar *in, void *ctx)
{
    Rng r;
    rng_seed(&r, 99); /* the same mask on every evaluation */
    return tape_dropout(t, in[0], 0.4f, &r);
}

static const float mse_target[12] = {0.5f, -1, 2, 0, 0.25f, 1, -0.5f, 3, -2, 0.1f, 0.7f, -0.3f};

static TVar b_mse(Tape *t, const TVar *in, void *ctx)
{
    return tape_mse(t, in[0], mse_target);
}

static const TPair pairs[6] = {{0, 1, 1.0f}, {2, 1, 0.0f}, {3, 4, 1.0f}, {4, 0, 0.3f}, {1, 3, 0.0f},
                               {0, 1, 1.0f}};

static TVar b_pairwise(Tape *t, const TVar *in, void *ctx)
{
    return tape_pairwise_logistic(t, in[0], pairs, 6);
}

static const int xent_labels[5] = {3, 0, 2, 2, 1};

static TVar b_xent(Tape *t, const TVar *in, void *ctx)
{
    return tape_softmax_xent(t, in[0], xent_labels);
}

/* A small network through every op at once, ending in a sum of losses. */
static TVar b_chain(Tape *t, const TVar *in, void *ctx)
{
    TVar h = tape_tanh(t, tape_add_bias(t, tape_matmul(t, in[0], in[1], 0, 0), in[2]));  /* (5, 4) */
    TVar s = tape_sum_cols(t, tape_sigmoid(t, h));                                     /* (5, 1) */
    TVar l1 = tape_pairwise_logistic(t, s, pairs, 6);
    TVar l2 = tape_softmax_xent(t, tape_l2norm(t, h, 1e-8f), xent_labels);
    return tape_add(t, tape_scale(t, l1, 0.3f), l2);
}

/* ---- tests: every backward ---- */

static void test_tape_grad_matmul(void **state)
{
    /* op(A) (3, 4) x op(B) (4, 5) in every transpose combination */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int tt[2] = {ta, tb};
            GcSpec s[2] = {{ta ? 4 : 3, ta ? 3 : 4, -1, 1, 0, 0}, {tb ? 5 : 4, tb ? 4 : 5, -1, 1, 0, 0}};
            char what[32];
            snprintf(what, sizeof what, "matmul ta=%d tb=%d", ta, tb);
            gc_check_op(what, b_matmul, tt, s, 2, 10 + 2 * ta + tb);
        }
}

static void test_tape_grad_elementwise(void **state)
{
    GcSpec two[2] = {{3, 4, -2, 2, 0, 0}, {3, 4, -2, 2, 0, 0}};
    GcSpec bias[2] = {{5, 3, -2, 2, 0, 0}, {1, 3, -1, 1, 0, 0}};
    GcSpec one[1] = {{4, 5, -2, 2, 0, 0}};
    GcSpec kink[1] = {{4, 5, -2, 2, 1, 0}};
    int no = 0;
    gc_check_op("add", b_add, &no, two, 2, 1);
    gc_check_op("add_bias", b_bias, &no, bias, 2, 2);
    gc_check_op("mul", b_mul, &no, two, 2, 3);
    gc_check_op("reuse", b_reuse, &no, one, 1, 4);
    gc_check_op("scale", b_scale, &no, one, 1, 5);
    gc_check_op("tanh", b_tanh, &no, one, 1, 6);
    gc_check_op("sigmoid", b_sigmoid, &no, one, 1, 7);
    gc_check_op("relu", b_relu, &no, kink, 1, 8);
    gc_check_op("dropout", b_dropout, &no, one, 1, 9);
}

static void test_tape_grad_shape_ops(void **state)
{
    GcSpec table[1] = {{5, 3, -1, 1, 0, 0}};
    GcSpec cols[3] = {{4, 2, -1, 1, 0, 0}, {4, 3, -1, 1, 0, 0}, {4, 1, -1, 1, 0, 0}};
    GcSpec rows[2] = {{2, 3, -1, 1, 0, 0}, {3, 3, -1, 1, 0, 0}};
    GcSpec one[1] = {{5, 4, -2, 2, 0, 0}};
    int no = 0;
    gc_check_op("embed", b_embed, &no, table, 1, 20);
    gc_check_op("concat_cols", b_concat_cols, &no, cols, 3, 21);
    gc_check_op("concat_rows", b_concat_rows, &no, rows, 2, 22);
    gc_check_op("slice_cols", b_slice_cols, &no, one, 1, 23);
    gc_check_op("slice_rows", b_slice_rows, &no, one, 1, 24);
    gc_check_op("sum_cols", b_sum_cols, &no, one, 1, 25);
    gc_check_op("mean_rows", b_mean_rows, &no, one, 1, 26);
    gc_check_op("mean", b_mean, &no, one, 1, 27);
    gc_check_op("l2norm", b_l2norm, &no, one, 1, 28);
}

static void test_tape_grad_lstm_cell(void **state)
{
    GcSpec s[2] = {{3, 16, -2, 2, 0, 0}, {3, 4, -1.5f, 1.5f, 0, 0}};
    int with_c = 1, without = 0;
    gc_check_op("lstm_cell", b_lstm, &with_c, s, 2, 30);
    gc_check_op("lstm_cell (no c)", b_lstm, &without, s, 1, 31);
}

static void test_tape_grad_losses(void **state)
{
    GcSpec mse[1] = {{4, 3, -2, 2, 0, 0}};
    GcSpec scores[1] = {{5, 1, -2, 2, 0, 0}};
    GcSpec logits[1] = {{5, 4, -3, 3, 0, 0}};
    GcSpec chain[3] = {{5, 3, -1, 1, 0, 0}, {3, 4, -1, 1, 0, 0}, {1, 4, -0.5f, 0.5f, 0, 0}};
    int no = 0;
    gc_check_op("mse", b_mse, &no, mse, 1, 40);
    gc_check_op("pairwise_logistic", b_pairwise, &no, scores, 1, 41);
    gc_check_op("softmax_xent", b_xent, &no, logits, 1, 42);
    gc_check_op("chain", b_chain, &no, chain, 3, 43);
}

/* A constant input gets no gradient and costs its consumers none. */
static void test_tape_grad_constant_input(void **state)
{
    GcSpec s[2] = {{3, 4, -1, 1, 0, 1}, {4, 2, -1, 1, 0, 0}};
    int tt[2] = {0, 0};
    Tape *t;
    XErr e = {0};
    TVar a, b, y;
    float dy[6] = {1, 2, 3, 4, 5, 6};
    gc_check_op("matmul (constant a)", b_matmul, tt, s, 2, 50);
    assert_int_equal(tape_new(&t, &e), XE_OK);
    a = tape_input(t, 3, 4, NULL, 0);
    b = tape_input(t, 4, 2, NULL, 0);
    y = tape_matmul(t, a, b, 0, 0);
    assert_int_equal(tape_backward(t, y, dy, &e), XE_OK);
    assert_null(tape_grad(t, a));
    assert_null(tape_grad(t, y));
    tape_free(t);
}

/* ---- forward values ---- */

static void expect_close(const char *what, const float *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i]))))
            fail_msg("%s: at %d: got %.9g, want %.9g", what, i, (double)got[i], want[i]);
}

static void test_tape_forward_values(void **state)
{
    Tape *t;
    XErr e = {0};
    Rng r;
    float a[12], b[20], z[8], cp[2], lg[5 * 4], s[5];
    double want[20];
    TVar va, vb, y;
    rng_seed(&r, 7);
    for (int i = 0; i < 12; i++)
        a[i] = (float)(rng_uniform(&r) * 2 - 1);
    for (int i = 0; i < 20; i++)
        b[i] = (float)(rng_uniform(&r) * 2 - 1);
    assert_int_equal(tape_new(&t, &e), XE_OK);

    /* matmul a (3, 4) x b (4, 5), and a^T (4, 3) x (3, 4)-shaped b^T */
    va = tape_input(t, 3, 4, a, 0);
    vb = tape_input(t, 4, 5, b, 0);
    y = tape_matmul(t, va, vb, 0, 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) {
            double acc = 0;
            for (int k = 0; k < 4; k++)
                acc += (double)a[i * 4 + k] * b[k * 5 + j];
            want[i * 5 + j] = acc;
        }
    expect_close("matmul", tape_value(t, y), want, 15, 1e-6);
    y = tape_matmul(t, va, va, 1, 0); /* (4, 4) = a^T a */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double acc = 0;
            for (int k = 0; k < 3; k++)
                acc += (double)a[k * 4 + i] * a[k * 4 + j];
            want[i * 4 + j] = acc;
        }
    expect_close("matmul a^T a", tape_value(t, y), want, 16, 1e-6);

    /* lstm cell, one row, H = 2 */
    for (int i = 0; i < 8; i++)
        z[i] = (float)(i - 3) * 0.4f;
    cp[0] = 0.5f;
    cp[1] = -1.0f;
    y = tape_lstm_cell(t, tape_input(t, 1, 8, z, 0), tape_input(t, 1, 2, cp, 0));
    for (int j = 0; j < 2; j++) {
        double ig = 1 / (1 + exp(-z[j])), fg = 1 / (1 + exp(-z[2 + j])), gg = tanh(z[4 + j]);
        double og = 1 / (1 + exp(-z[6 + j])), c = fg * cp[j] + ig * gg;
        want[j] = og * tanh(c);
        want[2 + j] = c;
    }
    expect_close("lstm_cell", tape_value(t, y), want, 4, 1e-6);

    /* softmax cross-entropy and the pairwise loss */
    for (int i = 0; i < 20; i++)
        lg[i] = b[i] * 3;
    y = tape_softmax_xent(t, tape_input(t, 5, 4, lg, 0), xent_labels);
    want[0] = 0;
    for (int i = 0; i < 5; i++) {
        double zsum = 0;
        for (int j = 0; j < 4; j++)
            zsum += exp(lg[i * 4 + j]);
        want[0] += (log(zsum) - lg[i * 4 + xent_labels[i]]) / 5;
    }
    expect_close("softmax_xent", tape_value(t, y), want, 1, 1e-6);
    for (int i = 0; i < 5; i++)
        s[i] = a[i] * 4;
    y = tape_pairwise_logistic(t, tape_input(t, 5, 1, s, 0), pairs, 6);
    want[0] = 0;
    for (int k = 0; k < 6; k++) {
        double p = 1 / (1 + exp(-(double)(s[pairs[k].i] - s[pairs[k].j])));
        want[0] -= (pairs[k].label * log(p) + (1 - pairs[k].label) * log(1 - p)) / 6;
    }
    expect_close("pairwise_logistic", tape_value(t, y), want, 1, 1e-6);

    /* l2norm rows have unit length; mean_rows and mean */
    y = tape_l2norm(t, va, 0);
    for (int i = 0; i < 3; i++) {
        double ss = 0;
        for (int j = 0; j < 4; j++)
            ss += (double)a[i * 4 + j] * a[i * 4 + j];
        for (int j = 0; j < 4; j++)
            want[i * 4 + j] = a[i * 4 + j] / sqrt(ss);
    }
    expect_close("l2norm", tape_value(t, y), want, 12, 1e-6);
    y = tape_mean_rows(t, va);
    for (int j = 0; j < 4; j++)
        want[j] = ((double)a[j] + a[4 + j] + a[8 + j]) / 3;
    expect_close("mean_rows", tape_value(t, y), want, 4, 1e-6);

    /* dropout keeps about 1 - p, scaled by 1 / (1 - p) */
    {
        float ones[1000];
        int kept = 0;
        for (int i = 0; i < 1000; i++)
            ones[i] = 1.0f;
        y = tape_dropout(t, tape_input(t, 10, 100, ones, 0), 0.25f, &r);
        for (int i = 0; i < 1000; i++) {
            float v = tape_value(t, y)[i];
            if (v != 0.0f) {
                assert_true(fabsf(v - 1.0f / 0.75f) < 1e-6f);
                kept++;
            }
        }
        assert_in_range(kept, 700, 800);
    }
    assert_int_equal(tape_status(t, &e), XE_OK);
    tape_free(t);
}

/* ---- parameters through the layers ---- */

typedef struct NetCase {
    TParams ps;
    SeqEncoder enc;
    SeqDecoder dec;
    Mlp head;
    int tokens[4 * 5];
    float y[4];
} NetCase;

/* The autoencoder plus a predictor head: mse + reconstruction loss. */
static double net_loss(NetCase *c, Tape *t, int backward)
{
    TVar code, pred, loss;
    XErr e = {0};
    tape_reset(t);
    code = seq_encode(t, &c->ps, &c->enc, c->tokens, 4, 0, NULL);
    pred = mlp_forward(t, &c->ps, &c->head, code, 0, NULL);
    loss = tape_add(t, tape_mse(t, pred, c->y), seq_decode_loss(t, &c->ps, &c->dec, code, c->tokens, 4, NULL));
    if (backward && tape_backward(t, loss, NULL, &e))
        fail_msg("backward: %s", e.msg);
    assert_int_equal(tape_status(t, &e), XE_OK);
    return tape_value(t, loss)[0];
}

/* Every parameter of the encoder, the decoder and a linear head against
 * finite differences (the same tolerance as the ops). The head has no
 * hidden layer: a step of 1e-2 crosses some ReLU kink of a deeper one and
 * spoils its differences (relu itself is checked away from 0). */
static void test_tape_grad_layers(void **state)
{
    NetCase c;
    Tape *t;
    XErr e = {0};
    Rng r;
    float *analytic;
    double *num, maxabs = 0;
    rng_seed(&r, 3);
    tparams_init(&c.ps);
    assert_int_equal(seq_encoder_init(&c.enc, &c.ps, 3, 5, 4, 6, SEQ_CODE_MEAN, &r, &e), XE_OK);
    assert_int_equal(seq_decoder_init(&c.dec, &c.ps, 3, 5, 4, 6, &r, &e), XE_OK);
    assert_int_equal(mlp_init(&c.head, &c.ps, 6, 5, 0, 1, &r, &e), XE_OK);
    for (int i = 0; i < 20; i++)
        c.tokens[i] = (int)rng_below(&r, 3);
    for (int i = 0; i < 4; i++)
        c.y[i] = (float)rng_uniform(&r);
    assert_int_equal(tape_new(&t, &e), XE_OK);
    tparams_zero_grad(&c.ps);
    net_loss(&c, t, 1);
    analytic = malloc(c.ps.size * sizeof *analytic);
    num = malloc(c.ps.size * sizeof *num);
    assert_non_null(analytic);
    assert_non_null(num);
    memcpy(analytic, c.ps.grad, c.ps.size * sizeof *analytic);
    for (size_t i = 0; i < c.ps.size; i++) {
        float keep = c.ps.val[i];
        double lp, lm;
        c.ps.val[i] = keep + GC_H;
        lp = net_loss(&c, t, 0);
        c.ps.val[i] = keep - GC_H;
        lm = net_loss(&c, t, 0);
        c.ps.val[i] = keep;
        num[i] = (lp - lm) / (2.0 * GC_H);
        maxabs = fmax(maxabs, fabs(num[i]));
    }
    for (size_t i = 0; i < c.ps.size; i++)
        if (gc_err(num[i], analytic[i], maxabs) > 1.0)
            fail_msg("parameter %zu of %zu: numeric %.6g, analytic %.6g", i, c.ps.size, num[i],
                     (double)analytic[i]);
    free(num);
    free(analytic);
    tape_free(t);
    tparams_release(&c.ps);
}

/* Frozen parameters get no gradient; trainable ones accumulate across steps. */
static void test_tape_param_accumulates_and_freezes(void **state)
{
    TParams ps;
    Tape *t;
    XErr e = {0};
    int w, f;
    float x[2] = {1.0f, 2.0f};
    tparams_init(&ps);
    assert_int_equal(tparams_add(&ps, 2, 1, 1, &w, &e), XE_OK);
    assert_int_equal(tparams_add(&ps, 2, 1, 1, &f, &e), XE_OK);
    tparams_value(&ps, w)[0] = 3.0f;
    ps.p[f].lr_scale = 0.0f;
    assert_int_equal(tape_new(&t, &e), XE_OK);
    for (int step = 0; step < 2; step++) {
        TVar xi = tape_input(t, 1, 2, x, 0);
        TVar y = tape_add(t, tape_matmul(t, xi, tape_param(t, &ps, w), 0, 0),
                          tape_matmul(t, xi, tape_param(t, &ps, f), 0, 0));
        assert_int_equal(tape_backward(t, y, NULL, &e), XE_OK);
        tape_reset(t);
    }
    assert_true(tparams_grad(&ps, w)[0] == 2.0f && tparams_grad(&ps, w)[1] == 4.0f);
    assert_true(tparams_grad(&ps, f)[0] == 0.0f && tparams_grad(&ps, f)[1] == 0.0f);
    tparams_zero_grad(&ps);
    assert_true(tparams_grad(&ps, w)[1] == 0.0f);
    tape_free(t);
    tparams_release(&ps);
}

/* ---- optimiser ---- */

static void test_tape_adam_by_hand(void **state)
{
    TParams ps;
    XErr e = {0};
    int w, b;
    TAdam o = tadam_default(0.1f, 0.5f);
    tparams_init(&ps);
    assert_int_equal(tparams_add(&ps, 1, 2, 1, &w, &e), XE_OK);
    assert_int_equal(tparams_add(&ps, 1, 1, 0, &b, &e), XE_OK);
    tparams_value(&ps, w)[0] = 1.0f;
    tparams_value(&ps, w)[1] = -2.0f;
    tparams_value(&ps, b)[0] = 0.5f;
    tparams_grad(&ps, w)[0] = 0.3f;
    tparams_grad(&ps, w)[1] = -4.0f;
    tparams_grad(&ps, b)[0] = 2.0f;
    tparams_adam(&ps, &o);
    /* step 1: mhat = g, vhat = g^2: w -= lr (sign(g) + wd w) */
    assert_true(fabsf(tparams_value(&ps, w)[0] - (1.0f - 0.1f * (1.0f + 0.5f))) < 1e-6f);
    assert_true(fabsf(tparams_value(&ps, w)[1] - (-2.0f - 0.1f * (-1.0f - 1.0f))) < 1e-6f);
    assert_true(fabsf(tparams_value(&ps, b)[0] - 0.4f) < 1e-6f); /* no decay on a bias */
    /* step 2 with the same gradient on w[0]: m = g, v = g^2 after correction */
    tparams_grad(&ps, w)[0] = 0.3f;
    {
        float before = tparams_value(&ps, w)[0];
        tparams_adam(&ps, &o);
        assert_true(fabsf(tparams_value(&ps, w)[0] - (before - 0.1f * (1.0f + 0.5f * before))) < 1e-5f);
    }
    /* a frozen parameter stays */
    ps.p[b].lr_scale = 0.0f;
    {
        float before = tparams_value(&ps, b)[0];
        tparams_adam(&ps, &o);
        assert_true(tparams_value(&ps, b)[0] == before);
        assert_int_equal(ps.p[b].step, 2);
    }
    tparams_release(&ps);
}

static void test_tape_clip(void **state)
{
    TParams ps;
    XErr e = {0};
    int a, b;
    tparams_init(&ps);
    assert_int_equal(tparams_add(&ps, 1, 2, 1, &a, &e), XE_OK);
    assert_int_equal(tparams_add(&ps, 1, 1, 1, &b, &e), XE_OK);
    tparams_grad(&ps, a)[0] = 3.0f;
    tparams_grad(&ps, a)[1] = 0.0f;
    tparams_grad(&ps, b)[0] = 4.0f;
    assert_true(fabs(tparams_clip_grad(&ps, 10.0) - 5.0) < 1e-9);
    assert_true(tparams_grad(&ps, a)[0] == 3.0f);
    assert_true(fabs(tparams_clip_grad(&ps, 1.0) - 5.0) < 1e-9);
    assert_true(fabsf(tparams_grad(&ps, a)[0] - 0.6f) < 1e-6f);
    assert_true(fabsf(tparams_grad(&ps, b)[0] - 0.8f) < 1e-6f);
    tparams_release(&ps);
}

/* ---- errors ---- */

static void test_tape_errors(void **state)
{
    Tape *t;
    XErr e = {0};
    TVar a, b, y;
    int bad_ids[2] = {0, 9};
    assert_int_equal(tape_new(&t, &e), XE_OK);
    a = tape_input(t, 2, 3, NULL, 1);
    b = tape_input(t, 2, 3, NULL, 1);
    y = tape_matmul(t, a, b, 0, 0);
    assert_int_equal(y, TAPE_NONE);
    /* later ops pass the failure on; the first message is kept */
    assert_int_equal(tape_relu(t, tape_add(t, y, a)), TAPE_NONE);
    unit_expect_error(tape_status(t, &e), &e, "matmul: (2, 3) x (2, 3): inner sizes 3 and 2 differ");
    xerr_clear(&e);
    unit_expect_error(tape_backward(t, y, NULL, &e), &e, "inner sizes");

    tape_reset(t);
    xerr_clear(&e);
    assert_int_equal(tape_status(t, &e), XE_OK);
    a = tape_input(t, 4, 2, NULL, 0);
    assert_int_equal(tape_embed(t, a, bad_ids, 2), TAPE_NONE);
    unit_expect_error(tape_status(t, &e), &e, "embed: id 9 at 1 is out of range (0-3)");

    tape_reset(t);
    xerr_clear(&e);
    a = tape_input(t, 2, 3, NULL, 1);
    unit_expect_error(tape_backward(t, a, NULL, &e), &e, "backward from a (2, 3) value needs a seed");
    xerr_clear(&e);
    assert_int_equal(tape_add_bias(t, a, tape_input(t, 1, 2, NULL, 0)), TAPE_NONE);
    unit_expect_error(tape_status(t, &e), &e, "add_bias: bias (1, 2) does not fit (2, 3)");
    tape_free(t);
}

/* A training step repeated from the same state gives the same bits, and
 * the arena stops growing after the first step. */
static void test_tape_deterministic(void **state)
{
    NetCase c;
    Tape *t;
    XErr e = {0};
    Rng r;
    float *g1;
    size_t bytes;
    rng_seed(&r, 5);
    tparams_init(&c.ps);
    assert_int_equal(seq_encoder_init(&c.enc, &c.ps, 3, 5, 4, 6, SEQ_CODE_LAST, &r, &e), XE_OK);
    assert_int_equal(seq_decoder_init(&c.dec, &c.ps, 3, 5, 4, 6, &r, &e), XE_OK);
    assert_int_equal(mlp_init(&c.head, &c.ps, 6, 5, 1, 1, &r, &e), XE_OK);
    for (int i = 0; i < 20; i++)
        c.tokens[i] = (int)rng_below(&r, 3);
    for (int i = 0; i < 4; i++)
        c.y[i] = (float)rng_uniform(&r);
    assert_int_equal(tape_new(&t, &e), XE_OK);
    tparams_zero_grad(&c.ps);
    net_loss(&c, t, 1);
    bytes = tape_arena_bytes(t);
    g1 = malloc(c.ps.size * sizeof *g1);
    assert_non_null(g1);
    memcpy(g1, c.ps.grad, c.ps.size * sizeof *g1);
    tparams_zero_grad(&c.ps);
    net_loss(&c, t, 1);
    assert_memory_equal(g1, c.ps.grad, c.ps.size * sizeof *g1);
    assert_int_equal(tape_arena_bytes(t), bytes);
    free(g1);
    tape_free(t);
    tparams_release(&c.ps);
}

const struct CMUnitTest test_tape_tests[] = {
    cmocka_unit_test(test_tape_grad_matmul),
    cmocka_unit_test(test_tape_grad_elementwise),
    cmocka_unit_test(test_tape_grad_shape_ops),
    cmocka_unit_test(test_tape_grad_lstm_cell),
    cmocka_unit_test(test_tape_grad_losses),
    cmocka_unit_test(test_tape_grad_constant_input),
    cmocka_unit_test(test_tape_forward_values),
    cmocka_unit_test(test_tape_grad_layers),
    cmocka_unit_test(test_tape_param_accumulates_and_freezes),
    cmocka_unit_test(test_tape_adam_by_hand),
    cmocka_unit_test(test_tape_clip),
    cmocka_unit_test(test_tape_errors),
    cmocka_unit_test(test_tape_deterministic),
};
const size_t test_tape_count = sizeof test_tape_tests / sizeof test_tape_tests[0];
