/* Golden parity: small seeded NAS-Bench-201 and DARTS networks against
 * values computed once by PyTorch (tests/golden/make_golden.py, committed
 * with its output): logits, losses, every parameter gradient, the input
 * gradient, BN running statistics and the parameters after one SGD step;
 * and proof that a wrong network (swapped ops, wrong BN momentum) fails the
 * comparison. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"
#include "gradcheck.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "space/space.h"

/* Tolerances, as a fraction of each compared block's largest magnitude
 * (a block: the logits, the input gradient, one layer's weight, gamma or
 * beta gradient or step, one BN layer's running means or variances), plus
 * two float32 ulps of the element. The references are float64 results
 * rounded to float32, so a difference is the C engine's float32 rounding
 * alone, grown by its summation orders (OpenBLAS's blocked GEMMs, BN sums,
 * the shared ReLU's gradient summed before masking, not after) through ~15
 * layers (nb201; DARTS cells chain many more) and batch norms over as few
 * as 4x2x2 values.
 * PyTorch's own float32 run lies within 5.5e-7 (forward) and 1.1e-6
 * (gradients) of the references (make_golden.py prints it). The C engine,
 * worst over the three nb201 cases (XFER_GOLDEN_VERBOSE=1 prints it as a
 * fraction of the bound): logits 3e-7, running statistics 1.4e-6 (the stem
 * BN's means, small next to the values they average), gradients 8e-6, input
 * gradient 8e-7, the SGD step 0.23 of its bound (mostly the parameter's own
 * float32 rounding); over the three DARTS cases: logits 8e-7, running
 * statistics 2.2e-6 (again means small next to what they average), gradients
 * 1.4e-5, input gradient 8e-7, the SGD step 0.27 of its bound. That leaves
 * margins of 4-12x for other BLAS builds and thread counts, while a wrong
 * op, a missing ReLU, a wrong BN momentum or eps, a biased running variance
 * or plain momentum for Nesterov miss by 1.5x to 10^5x. The SGD step is
 * judged against the step itself (after - before, ~0.2 of a gradient), at
 * gradient tolerance. */
#define TOL_FWD 1e-5   /* logits, losses, running statistics */
#define TOL_BWD 1e-4   /* gradients and the SGD step */

typedef struct Golden {
    int darts;         /* the space: 0 nb201, 1 darts (the file's magic) */
    int C, N, batch, cin, hw, classes; /* N: nb201 cells per stage, darts cells L */
    char arch[512];
    size_t nparams, nstate, nx, nlogits;
    float *params;     /* (nparams) initial */
    float *x;          /* (batch, cin, hw, hw) */
    int32_t *labels;   /* (batch) */
    float *logits;     /* (batch, classes) training-mode forward */
    float *loss;       /* (2) smoothing 0 and 0.1 */
    float *grads;      /* (nparams) of the smoothing-0.1 loss */
    float *dx;         /* (batch, cin, hw, hw) */
    float *state;      /* (nstate) running mean, var per BN after the forward */
    float *after;      /* (nparams) after one SGD step */
    unsigned char *buf;
} Golden;

/* Reads tests/golden/NAME.bin (from the repository root, where `make
 * test-unit` runs; else next to this source file). */
static void golden_load(Golden *g, const char *name)
{
    char path[4200];
    FILE *f;
    long size;
    size_t off = 0, need;
    float one;
    int32_t head[7];
    int64_t counts[2];
    memset(g, 0, sizeof *g);
    snprintf(path, sizeof path, "tests/golden/%s.bin", name);
    if (!(f = fopen(path, "rb"))) {
        const char *slash = strrchr(__FILE__, '/');
        int dir = slash ? (int)(slash - __FILE__) : 0;
        snprintf(path, sizeof path, "%.*s/../golden/%s.bin", dir, __FILE__, name);
        f = fopen(path, "rb");
    }
    if (!f)
        fail_msg("golden file '%s' not found (run from the repository root)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    rewind(f);
    g->buf = malloc((size_t)size + 1);
    assert_non_null(g->buf);
    assert_int_equal(fread(g->buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
#define TAKE(dst, bytes)                                                                                     \
    do {                                                                                                     \
        if (off + (bytes) > (size_t)size)                                                                    \
            fail_msg("'%s': truncated at byte %zu", path, off);                                              \
        memcpy((dst), g->buf + off, (bytes));                                                                \
        off += (bytes);                                                                                      \
    } while (0)
    if (size < 8 || (memcmp(g->buf, "XFGOLD01", 8) && memcmp(g->buf, "XFGOLDD1", 8)))
        fail_msg("'%s': not a golden file", path);
    g->darts = g->buf[6] == 'D';
    off = 8;
    TAKE(&one, 4);
    if (one != 1.0f)
        fail_msg("'%s': byte order differs from this machine's", path);
    TAKE(head, sizeof head);
    if (head[6] < 1 || head[6] >= (int)sizeof g->arch)
        fail_msg("'%s': arch of %d bytes", path, head[6]);
    g->C = head[0], g->N = head[1], g->batch = head[2], g->cin = head[3], g->hw = head[4], g->classes = head[5];
    TAKE(g->arch, (size_t)head[6]);
    TAKE(counts, sizeof counts);
    g->nparams = (size_t)counts[0];
    g->nstate = (size_t)counts[1];
    g->nx = (size_t)g->batch * g->cin * g->hw * g->hw;
    g->nlogits = (size_t)g->batch * g->classes;
    need = off + 4 * (3 * g->nparams + 2 * g->nx + (size_t)g->batch + g->nlogits + 2 + g->nstate);
    if (need != (size_t)size)
        fail_msg("'%s': %ld bytes, its header says %zu", path, size, need);
#undef TAKE
    /* the payload is 4-byte values from offset `off`: point into a copy aligned for float */
    {
        float *v = malloc(need - off);
        assert_non_null(v);
        memcpy(v, g->buf + off, need - off);
        free(g->buf);
        g->buf = (unsigned char *)v;
        g->params = v, v += g->nparams;
        g->x = v, v += g->nx;
        g->labels = (int32_t *)v, v += g->batch;
        g->logits = v, v += g->nlogits;
        g->loss = v, v += 2;
        g->grads = v, v += g->nparams;
        g->dx = v, v += g->nx;
        g->state = v, v += g->nstate;
        g->after = v;
    }
}

static void golden_release(Golden *g)
{
    free(g->buf);
    memset(g, 0, sizeof *g);
}

/* The worst error ratio per quantity (printed with XFER_GOLDEN_VERBOSE). */
typedef struct Worst {
    double ratio;
    char what[96];
} Worst;

/* Compares got against want over n values: each difference must stay
 * within tol * scale + 2 ulps of want, where scale is the block's largest
 * |ref| (ref: want, or the step want - before for the SGD update), at least
 * floor. On a mismatch writes msg and returns 1. */
static int compare(const char *what, int layer, const float *got, const float *want, const float *before, size_t n,
                   double tol, double floor, Worst *worst, char *msg, size_t cap)
{
    double scale = floor;
    for (size_t i = 0; i < n; i++) {
        double r = before ? (double)want[i] - before[i] : want[i];
        scale = fmax(scale, fabs(r));
    }
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]), bound = tol * scale + 2 * FLT_EPSILON * fabs(want[i]);
        double ratio = d / fmax(bound, 1e-45);
        if (!(d <= bound)) {
            snprintf(msg, cap, "%s of layer %d, element %zu of %zu: %.9g, expected %.9g (difference %.3g, %.3g of the "
                     "block's largest magnitude %.3g; tolerance %.0e)",
                     what, layer, i, n, (double)got[i], (double)want[i], d, d / fmax(scale, 1e-30), scale, tol);
            return 1;
        }
        if (ratio > worst->ratio) {
            worst->ratio = ratio;
            snprintf(worst->what, sizeof worst->what, "%s of layer %d", what, layer);
        }
    }
    return 0;
}

enum { W_LOGITS, W_LOSS, W_STATE, W_GRAD, W_DX, W_SGD, W_COUNT };

/* Builds the case's network with arch (the golden one, or a wrong one) and
 * BN momentum (0: the library's default), loads the golden parameters,
 * runs one training step and compares everything. Returns 0, or 1 with the
 * first mismatch in msg. */
static int golden_run(const Golden *g, const char *arch, float bn_momentum, char *msg, size_t cap)
{
    static const char *const names[W_COUNT] = { "logits", "loss", "running stats", "grads", "dx", "sgd step" };
    Worst worst[W_COUNT] = { 0 };
    Net net;
    XErr e = { 0 };
    SpaceArch a;
    int rc = 0, correct;
    const NnBackend *be = nn_cpu_backend(1);
    float *h_logits = malloc(g->nlogits * sizeof(float)), *dl = malloc(g->nlogits * sizeof(float));
    float *h_state = malloc(g->nstate * sizeof(float)), *h_grads = malloc(g->nparams * sizeof(float));
    float *h_after = malloc(g->nparams * sizeof(float)), *h_dx = malloc(g->nx * sizeof(float));
    float loss[2];
    double grad_floor = 0, step_floor = 0;
    size_t covered = 0;
    assert_true(h_logits && dl && h_state && h_grads && h_after && h_dx);
    if ((g->darts ? space_darts.parse(arch, &a, &e) : nb201_parse(arch, a.nb201.ops, &e)) ||
        net_init(&net, be, g->batch, g->cin, g->hw, g->hw, &e))
        fail_msg("%s", e.msg);
    if (bn_momentum > 0)
        net.bn_momentum = bn_momentum;
    if ((g->darts ? model_darts(&net, &a.darts, g->C, g->N, g->classes, 0, &e)
                  : model_nb201(&net, a.nb201.ops, g->C, g->N, g->classes, &e)) ||
        net_finalize(&net, 1, &e))
        fail_msg("%s", e.msg);
    if (net_param_count(&net) != g->nparams || net.nstate != g->nstate) {
        snprintf(msg, cap, "the network has %zu parameters and %zu running statistics, PyTorch's %zu and %zu",
                 net_param_count(&net), net.nstate, g->nparams, g->nstate);
        rc = 1;
        goto cleanup;
    }
    be->upload(be->ctx, net.params, g->params, g->nparams * sizeof(float));

    be->download(be->ctx, h_logits, net_forward(&net, g->x, 1), g->nlogits * sizeof(float));
    be->xent(be->ctx, g->batch, g->classes, h_logits, g->labels, 0.0f, dl, &loss[0], &correct);
    be->xent(be->ctx, g->batch, g->classes, h_logits, g->labels, 0.1f, dl, &loss[1], &correct);
    net_backward(&net, dl);
    be->download(be->ctx, h_state, net.state, g->nstate * sizeof(float));
    be->download(be->ctx, h_grads, net.grads, g->nparams * sizeof(float));
    be->download(be->ctx, h_dx, net.dacts + net.t[0].goff, g->nx * sizeof(float));
    be->sgd(be->ctx, net.nparams, net.params, net.grads, net.mom, net.decay, 0.1f, 0.9f, 5e-4f, 1);
    be->download(be->ctx, h_after, net.params, g->nparams * sizeof(float));

    /* blocks whose exact gradient vanishes (the beta of a BN whose output
     * only reaches another BN: a shift that BN removes) hold float32
     * cancellation noise; they are judged against a thousandth of the
     * network's largest gradient (and step) instead of their own scale */
    for (size_t i = 0; i < g->nparams; i++) {
        grad_floor = fmax(grad_floor, 1e-3 * fabs(g->grads[i]));
        step_floor = fmax(step_floor, 1e-3 * fabs((double)g->after[i] - g->params[i]));
    }
    rc = compare("logits", -1, h_logits, g->logits, NULL, g->nlogits, TOL_FWD, 0, &worst[W_LOGITS], msg, cap) ||
         compare("loss (smoothing 0)", -1, &loss[0], &g->loss[0], NULL, 1, TOL_FWD, 0, &worst[W_LOSS], msg, cap) ||
         compare("loss (smoothing 0.1)", -1, &loss[1], &g->loss[1], NULL, 1, TOL_FWD, 0, &worst[W_LOSS], msg, cap) ||
         compare("input gradient", -1, h_dx, g->dx, NULL, g->nx, TOL_BWD, 0, &worst[W_DX], msg, cap);
    /* per layer, so that a failure names the layer and each block has its own scale */
    for (int i = 0; i < net.nlayers && !rc; i++) {
        const Layer *l = &net.layers[i];
        const NetTensor *in = &net.t[l->in[0]];
        size_t off[2] = { l->w, l->b }, count[2] = { 0, 0 }; /* weight (or gamma), bias (or beta) */
        static const char *const grad[2] = { "weight grad", "bias grad" };
        static const char *const step[2] = { "weight step", "bias step" };
        if (l->kind == LAYER_CONV) {
            count[0] = (size_t)l->conv.cout * (l->conv.cin / l->conv.groups) * l->conv.kh * l->conv.kw;
        } else if (l->kind == LAYER_BN) {
            size_t c = (size_t)l->bn.c;
            count[0] = count[1] = c;
            rc = compare("running mean", i, h_state + l->stat, g->state + l->stat, NULL, c, TOL_FWD, 0,
                         &worst[W_STATE], msg, cap) ||
                 compare("running var", i, h_state + l->stat + c, g->state + l->stat + c, NULL, c, TOL_FWD, 0,
                         &worst[W_STATE], msg, cap);
        } else if (l->kind == LAYER_LINEAR) {
            count[1] = (size_t)net.t[l->out].c;
            count[0] = count[1] * (size_t)in->c * in->h * in->w;
        }
        for (int k = 0; k < 2 && !rc; k++) {
            size_t o = off[k], n = count[k];
            covered += n;
            rc = n && (compare(grad[k], i, h_grads + o, g->grads + o, NULL, n, TOL_BWD, grad_floor, &worst[W_GRAD],
                               msg, cap) ||
                       compare(step[k], i, h_after + o, g->after + o, g->params + o, n, TOL_BWD, step_floor,
                               &worst[W_SGD], msg, cap));
        }
    }
    if (!rc && covered != g->nparams) {
        snprintf(msg, cap, "the layers hold %zu of %zu parameters", covered, g->nparams);
        rc = 1;
    }
    if (getenv("XFER_GOLDEN_VERBOSE"))
        for (int k = 0; k < W_COUNT; k++)
            fprintf(stderr, "golden %s: worst %-13s %.2e of its tolerance (%s)\n", g->arch, names[k], worst[k].ratio,
                    worst[k].what);
cleanup:
    net_release(&net);
    free(h_logits), free(dl), free(h_state), free(h_grads), free(h_after), free(h_dx);
    return rc;
}

static void check_case(const char *name)
{
    Golden g;
    char msg[1024];
    golden_load(&g, name);
    if (golden_run(&g, g.arch, 0, msg, sizeof msg))
        fail_msg("%s (%s): %s", name, g.arch, msg);
    golden_release(&g);
}

/* every op type: none, skip, conv1x1, conv3x3, avg_pool; C 4, N 1, 16x16 */
static void test_nn_golden_allops(void **state)
{
    (void)state;
    check_case("nb201_allops");
}

/* the all-conv3x3 cell (the most shared ReLUs); C 3 (odd widths), 16x16 */
static void test_nn_golden_conv3(void **state)
{
    (void)state;
    check_case("nb201_conv3");
}

/* a node of zeros, a pool of it, two cells per stage; C 2, N 2, 8x8 */
static void test_nn_golden_zero(void **state)
{
    (void)state;
    check_case("nb201_zero");
}

/* DARTS, all 7 ops in the normal and in the reduction cell (skip_connect at
 * stride 2: FactorizedReduce); L 5: normal cells after both reductions;
 * C 3, 16x16 */
static void test_nn_golden_darts_allops(void **state)
{
    (void)state;
    check_case("darts_allops");
}

/* DARTS, L 3: a reduction cell after a reduction cell, the other stride-2
 * ops, node inputs written in descending order; C 4, 8x8 */
static void test_nn_golden_darts_reduce(void **state)
{
    (void)state;
    check_case("darts_reduce");
}

/* DARTS-V2, L 4: two reductions back to back, then a normal cell; C 2, 8x8 */
static void test_nn_golden_darts_v2(void **state)
{
    (void)state;
    check_case("darts_v2");
}

/* The comparison can fail: the all-ops case with two edges' ops swapped
 * (avg_pool 1->2 and skip 0->3: same parameters, other values), and with
 * BN momentum 0.9 (Keras's convention: only the running statistics move). */
static void test_nn_golden_detects_wrong_network(void **state)
{
    Golden g;
    char msg[1024];
    (void)state;
    golden_load(&g, "nb201_allops");
    assert_string_equal(g.arch, "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|"
                                "+|skip_connect~0|nor_conv_3x3~1|none~2|");
    assert_int_equal(golden_run(&g, "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
                                    "+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",
                                0, msg, sizeof msg),
                     1);
    if (!strstr(msg, "logits"))
        fail_msg("swapped ops: expected the logits to differ, got: %s", msg);
    assert_int_equal(golden_run(&g, g.arch, 0.9f, msg, sizeof msg), 1);
    if (!strstr(msg, "running mean"))
        fail_msg("BN momentum 0.9: expected the running means to differ, got: %s", msg);
    golden_release(&g);
}

/* The same for DARTS: darts_allops with a max and an average pool swapped
 * in the normal cell (node 2), and with the stride-2 average pool of the
 * reduction cell's node 1 made a max pool (neither changes the parameters). */
static void test_nn_golden_darts_detects_wrong_network(void **state)
{
    static const char *const wrong[2] = {
        "normal:sep_conv_3x3~0,sep_conv_5x5~1|dil_conv_3x3~0,dil_conv_5x5~2|avg_pool_3x3~1,max_pool_3x3~3|"
        "skip_connect~0,sep_conv_3x3~4;reduce:skip_connect~0,max_pool_3x3~1|avg_pool_3x3~0,sep_conv_3x3~1|"
        "sep_conv_5x5~1,dil_conv_3x3~2|dil_conv_5x5~0,skip_connect~3",
        "normal:sep_conv_3x3~0,sep_conv_5x5~1|dil_conv_3x3~0,dil_conv_5x5~2|max_pool_3x3~1,avg_pool_3x3~3|"
        "skip_connect~0,sep_conv_3x3~4;reduce:skip_connect~0,max_pool_3x3~1|max_pool_3x3~0,sep_conv_3x3~1|"
        "sep_conv_5x5~1,dil_conv_3x3~2|dil_conv_5x5~0,skip_connect~3",
    };
    Golden g;
    char msg[1024];
    (void)state;
    golden_load(&g, "darts_allops");
    assert_string_equal(g.arch,
                        "normal:sep_conv_3x3~0,sep_conv_5x5~1|dil_conv_3x3~0,dil_conv_5x5~2|max_pool_3x3~1,"
                        "avg_pool_3x3~3|skip_connect~0,sep_conv_3x3~4;reduce:skip_connect~0,max_pool_3x3~1|"
                        "avg_pool_3x3~0,sep_conv_3x3~1|sep_conv_5x5~1,dil_conv_3x3~2|dil_conv_5x5~0,skip_connect~3");
    for (int k = 0; k < 2; k++) {
        assert_int_equal(golden_run(&g, wrong[k], 0, msg, sizeof msg), 1);
        if (!strstr(msg, "logits"))
            fail_msg("'%s': expected the logits to differ, got: %s", wrong[k], msg);
    }
    golden_release(&g);
}

const struct CMUnitTest test_nn_golden_tests[] = {
    cmocka_unit_test(test_nn_golden_allops),
    cmocka_unit_test(test_nn_golden_conv3),
    cmocka_unit_test(test_nn_golden_zero),
    cmocka_unit_test(test_nn_golden_detects_wrong_network),
    cmocka_unit_test(test_nn_golden_darts_allops),
    cmocka_unit_test(test_nn_golden_darts_reduce),
    cmocka_unit_test(test_nn_golden_darts_v2),
    cmocka_unit_test(test_nn_golden_darts_detects_wrong_network),
};
const size_t test_nn_golden_count = sizeof test_nn_golden_tests / sizeof test_nn_golden_tests[0];
