/* Whole networks on the CPU backend: the NAS-Bench-201 network's parameter
 * count, its gradients against finite differences through every layer,
 * learning on a separable toy task, and bit-identical resumption from a
 * checkpoint. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>

#include "data/builder.h"
#include "data/taskfile.h"
#include "fixtures/fx_util.h"
#include "nn/model.h"
#include "nn/train.h"
#include "space/space.h"

static const char *const all_ops =
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|";

static void build(Net *net, const char *arch, int batch, int C, int N, int hw, int classes)
{
    int ops[6];
    XErr e = { 0 };
    assert_int_equal(nb201_parse(arch, ops, &e), XE_OK);
    assert_int_equal(net_init(net, nn_cpu_backend(1), batch, 3, hw, hw, &e), XE_OK);
    if (model_nb201(net, ops, C, N, classes, &e) || net_finalize(net, 42, &e))
        fail_msg("%s", e.msg);
}

/* NAS-Bench-201's own formula, term by term, for the all-conv3x3 cell:
 * stem 3*C*9 + 2C; per cell 6 edges of C*C*9 + 2C; reduction blocks
 * in*out*9 + 2out + out*out*9 + 2out + in*out; last BN 2*4C; linear. */
static void test_nn_net_nb201_params(void **state)
{
    Net net;
    size_t want = 0;
    int C = 16, N = 5, cin = C;
    (void)state;
    build(&net, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
          2, C, N, 32, 10);
    want += 3 * (size_t)C * 9 + 2 * (size_t)C;
    for (int s = 0; s < 3; s++) {
        int w = C << s;
        if (s > 0) {
            want += (size_t)cin * w * 9 + 2 * (size_t)w + (size_t)w * w * 9 + 2 * (size_t)w + (size_t)cin * w;
            cin = w;
        }
        want += (size_t)N * 6 * ((size_t)w * w * 9 + 2 * (size_t)w);
    }
    want += 2 * 4 * (size_t)C + 4 * (size_t)C * 10 + 10;
    assert_int_equal(net_param_count(&net), want);
    assert_int_equal(want, 1531546); /* the largest NAS-Bench-201 network: 1.5316 M parameters */
    net_release(&net);
}

static float loss_at(Net *net, const float *x, const int32_t *y)
{
    const NnBackend *be = net->be;
    float dl[64], loss;
    int right;
    be->xent(be->ctx, net->batch, 3, net_forward(net, x, 1), y, 0.1f, dl, &loss, &right);
    return loss;
}

/* Directional derivatives: with ReLU kinks and float32 arithmetic, single
 * coordinates are too noisy to check through a whole network, but the
 * change along a direction v, (L(p + h v) - L(p - h v)) / 2h, must match
 * v . grad. Directions: the gradient itself and random unit vectors. Batch
 * norm over 3 samples makes the loss sharply curved: central differences
 * along the gradient converge to |grad| only below h ~ 1e-3 (checked: at h
 * 1e-1, 1e-2, 4e-4, 1.4e-4 the error is 18%, 0.3%, 0.03%, 0.02%). */
static void check_directions(const char *what, Net *net, float *p, size_t n, const float *g, const float *x,
                             const int32_t *y, int params)
{
    float *v = malloc(n * sizeof *v), *keep = malloc(n * sizeof *keep);
    double gnorm = 0;
    Rng r;
    rng_seed(&r, 77);
    memcpy(keep, p, n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        gnorm += (double)g[i] * g[i];
    gnorm = sqrt(gnorm);
    for (int d = 0; d < 6; d++) {
        double dot = 0, norm = 0, h = 3e-4, lp, lm, num;
        for (size_t i = 0; i < n; i++) {
            v[i] = d == 0 ? g[i] : (float)(rng_uniform(&r) - 0.5);
            norm += (double)v[i] * v[i];
        }
        norm = sqrt(norm);
        for (size_t i = 0; i < n; i++) {
            v[i] = (float)(v[i] / norm);
            dot += (double)v[i] * g[i];
        }
        for (size_t i = 0; i < n; i++)
            p[i] = keep[i] + (float)h * v[i];
        lp = loss_at(net, params ? x : p, y);
        for (size_t i = 0; i < n; i++)
            p[i] = keep[i] - (float)h * v[i];
        lm = loss_at(net, params ? x : p, y);
        memcpy(p, keep, n * sizeof *p);
        num = (lp - lm) / (2 * h);
        if (fabs(num - dot) > 0.02 * gnorm)
            fail_msg("%s: direction %d: numeric %.6g, analytic %.6g (|grad| %.4g)", what, d, num, dot, gnorm);
    }
    free(v);
    free(keep);
}

static void test_nn_net_gradients(void **state)
{
    Net net;
    Rng r;
    float x[3 * 3 * 16 * 16], dl[9], loss, *g, *dx;
    int32_t y[3] = { 0, 2, 1 };
    int right;
    const NnBackend *be;
    (void)state;
    build(&net, all_ops, 3, 2, 1, 16, 3);
    be = net.be;
    rng_seed(&r, 5);
    gc_fill(&r, x, sizeof x / sizeof *x, -1, 1);
    be->xent(be->ctx, 3, 3, net_forward(&net, x, 1), y, 0.1f, dl, &loss, &right);
    net_backward(&net, dl);
    g = malloc(net.nparams * sizeof *g);
    dx = malloc(sizeof x);
    memcpy(g, net.grads, net.nparams * sizeof *g);
    memcpy(dx, net.dacts + net.t[0].off, sizeof x);
    check_directions("nb201 parameters", &net, net.params, net.nparams, g, x, y, 1);
    check_directions("nb201 input", &net, x, sizeof x / sizeof *x, dx, x, y, 0);
    free(g), free(dx);
    net_release(&net);
}

/* A task whose class is the image's brightness: 2 classes, 8x8x3. */
static char *toy_task(TaskFile *t, char **dir)
{
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    char *file = NULL, sha[65], *path = malloc(4200);
    static const char *const names[] = { "dark", "bright" };
    Rng r;
    memset(&o, 0, sizeof o);
    o.valid_fraction = 0.2;
    *dir = unit_tmpdir();
    builder_init(&b, &o);
    rng_seed(&r, 9);
    assert_int_equal(builder_set_classes(&b, names, 2, &e), XE_OK);
    for (int i = 0; i < 160; i++) {
        uint8_t px[192];
        int cls = i % 2;
        for (int j = 0; j < 192; j++)
            px[j] = (uint8_t)((cls ? 140 : 60) + (int)rng_below(&r, 80) - 40);
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

static const double toy_mean[3] = { 0.4, 0.4, 0.4 }, toy_std[3] = { 0.2, 0.2, 0.2 };

static Recipe toy_recipe(int epochs)
{
    Recipe r;
    memset(&r, 0, sizeof r);
    r.epochs = epochs;
    r.lr = 0.05f;
    r.momentum = 0.9f;
    r.wd = 5e-4f;
    r.nesterov = 1;
    r.clip = 5.0f;
    r.aug.crop_pad = 1;
    r.aug.flip = 1;
    r.seed = 3;
    return r;
}

typedef struct Curve {
    EpochPoint p[8];
    int n;
} Curve;

static int keep_point(void *ctx, const Net *net, const EpochPoint *p, XErr *e)
{
    Curve *c = ctx;
    (void)net, (void)e;
    c->p[c->n++] = *p;
    return XE_OK;
}

static void test_nn_net_learns_toy_task(void **state)
{
    TaskFile t;
    Net net;
    XErr e = { 0 };
    Recipe r = toy_recipe(4);
    Curve c = { .n = 0 };
    double test;
    char *dir, *path = toy_task(&t, &dir);
    (void)state;
    build(&net, all_ops, 16, 4, 1, 8, 2);
    assert_int_equal(train_run(&net, &t, toy_mean, toy_std, &r, 0, keep_point, &c, &test, &e), XE_OK);
    assert_int_equal(c.n, 4);
    assert_true(c.p[3].train_loss < c.p[0].train_loss);
    assert_true(c.p[3].valid_acc >= 0.9);
    assert_true(test >= 0.9);
    assert_true(c.p[3].lr < c.p[0].lr);
    net_release(&net);
    taskfile_close(&t);
    fx_rmtree(dir);
    free(dir), free(path);
}

typedef struct Killer {
    const char *ckpt;
    int at;
} Killer;

/* Checkpoints every epoch and "dies" after epoch k->at. */
static int checkpoint_then_die(void *ctx, const Net *net, const EpochPoint *p, XErr *e)
{
    Killer *k = ctx;
    if (net_checkpoint_write(net, p->epoch, k->ckpt, e))
        return e->code;
    return p->epoch == k->at ? xerr_set(e, XE_INTR, "killed") : XE_OK;
}

static void test_nn_net_resume_bit_identical(void **state)
{
    TaskFile t;
    Net a, b;
    XErr e = { 0 };
    Recipe r = toy_recipe(3);
    double test_a, test_b;
    int epoch;
    char *dir, *path = toy_task(&t, &dir), ckpt[4300];
    Killer k = { ckpt, 1 };
    (void)state;
    snprintf(ckpt, sizeof ckpt, "%s/run.ckpt", dir);
    build(&a, all_ops, 16, 4, 1, 8, 2);
    assert_int_equal(train_run(&a, &t, toy_mean, toy_std, &r, 0, NULL, NULL, &test_a, &e), XE_OK);
    /* the same run killed after epoch 1 and resumed from its checkpoint */
    build(&b, all_ops, 16, 4, 1, 8, 2);
    assert_int_equal(train_run(&b, &t, toy_mean, toy_std, &r, 0, checkpoint_then_die, &k, &test_b, &e), XE_INTR);
    net_release(&b);
    xerr_clear(&e);
    build(&b, all_ops, 16, 4, 1, 8, 2);
    assert_int_equal(net_checkpoint_read(&b, &epoch, ckpt, &e), XE_OK);
    assert_int_equal(epoch, 1);
    assert_int_equal(train_run(&b, &t, toy_mean, toy_std, &r, epoch, NULL, NULL, &test_b, &e), XE_OK);
    assert_memory_equal(a.params, b.params, a.nparams * sizeof *a.params);
    assert_memory_equal(a.state, b.state, a.nstate * sizeof *a.state);
    assert_true(test_a == test_b);
    /* a checkpoint of another network is refused */
    net_release(&b);
    build(&b, all_ops, 16, 2, 1, 8, 2);
    assert_int_equal(net_checkpoint_read(&b, &epoch, ckpt, &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "parameters, the network has"));
    net_release(&a);
    net_release(&b);
    taskfile_close(&t);
    fx_rmtree(dir);
    free(dir), free(path);
}

static void test_nn_net_bad_shapes(void **state)
{
    Net net;
    XErr e = { 0 };
    int ops[6] = { 3, 3, 3, 3, 3, 3 }, a, b, in[2];
    (void)state;
    assert_int_equal(net_init(&net, nn_cpu_backend(1), 2, 3, 3, 3, &e), XE_OK);
    assert_int_not_equal(model_nb201(&net, ops, 4, 1, 10, &e), XE_OK);
    assert_non_null(strstr(e.msg, "3x3"));
    net_release(&net);
    assert_int_equal(net_init(&net, nn_cpu_backend(1), 2, 3, 8, 8, &e), XE_OK);
    a = net_conv(&net, 0, 4, 3, 1, 1, 1, 1);
    b = net_conv(&net, 0, 4, 3, 2, 1, 1, 1);
    in[0] = a, in[1] = b;
    assert_int_equal(net_sum(&net, in, 2), -1);
    assert_int_equal(net_finalize(&net, 1, &e), XE_FAIL);
    assert_string_equal(e.msg, "network: inputs of a sum differ in shape: 4x8x8 and 4x4x4");
    net_release(&net);
}

/* The networks the engine builds have exactly the parameters the search
 * spaces count (lib/space), for sampled archs of both spaces. */
static void test_nn_net_params_match_space(void **state)
{
    Rng r;
    XErr e = { 0 };
    (void)state;
    rng_seed(&r, 11);
    for (int k = 0; k < 40; k++) {
        const Space *sp = k % 2 ? &space_darts : &space_nb201;
        SpaceMacro m = { k % 2 ? 4 : 3, k % 2 ? 5 : 2, 7, 3, 16, 16 };
        SpaceArch a;
        SpaceCost cost;
        Net net;
        int rc;
        sp->sample(&r, &a);
        assert_int_equal(sp->cost(&a, &m, &cost, &e), XE_OK);
        assert_int_equal(net_init(&net, nn_cpu_backend(1), 2, 3, 16, 16, &e), XE_OK);
        rc = k % 2 ? model_darts(&net, &a.darts, m.C, m.N, m.classes, 0, &e)
                   : model_nb201(&net, a.nb201.ops, m.C, m.N, m.classes, &e);
        if (rc || net_finalize(&net, 1, &e))
            fail_msg("%s", e.msg);
        assert_int_equal(net_param_count(&net), cost.params);
        net_release(&net);
    }
}

static void test_nn_net_darts_v2_params(void **state)
{
    static const char *const v2 =
        "normal:sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|skip_connect~0,sep_conv_3x3~1|"
        "skip_connect~0,dil_conv_3x3~2;reduce:max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~1,skip_connect~2|"
        "max_pool_3x3~0,skip_connect~2|max_pool_3x3~1,skip_connect~2";
    SpaceArch a;
    Net net;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(space_darts.parse(v2, &a, &e), XE_OK);
    assert_int_equal(net_init(&net, nn_cpu_backend(1), 1, 3, 32, 32, &e), XE_OK);
    if (model_darts(&net, &a.darts, 36, 20, 10, 0, &e) || net_finalize(&net, 1, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(net_param_count(&net), 3349342); /* the DARTS paper's 3.3 M */
    net_release(&net);
}

/* Gradients through a small darts network: depthwise and dilated convs,
 * max and average pools with stride 2, FactorizedReduce (crop, concat). */
static void test_nn_net_darts_gradients(void **state)
{
    static const char *const arch =
        "normal:sep_conv_3x3~0,dil_conv_5x5~1|max_pool_3x3~0,skip_connect~2|avg_pool_3x3~1,sep_conv_5x5~3|"
        "dil_conv_3x3~0,skip_connect~4;reduce:max_pool_3x3~0,skip_connect~1|avg_pool_3x3~1,sep_conv_3x3~2|"
        "skip_connect~0,dil_conv_3x3~3|sep_conv_5x5~1,max_pool_3x3~4";
    SpaceArch a;
    Net net;
    Rng r;
    XErr e = { 0 };
    float x[3 * 3 * 16 * 16], dl[9], loss, *g, *dx;
    int32_t y[3] = { 1, 0, 2 };
    int right;
    (void)state;
    assert_int_equal(space_darts.parse(arch, &a, &e), XE_OK);
    assert_int_equal(net_init(&net, nn_cpu_backend(1), 3, 3, 16, 16, &e), XE_OK);
    if (model_darts(&net, &a.darts, 2, 3, 3, 1, &e) || net_finalize(&net, 8, &e))
        fail_msg("%s", e.msg);
    rng_seed(&r, 6);
    gc_fill(&r, x, sizeof x / sizeof *x, -1, 1);
    net.be->xent(net.be->ctx, 3, 3, net_forward(&net, x, 1), y, 0.1f, dl, &loss, &right);
    net_backward(&net, dl);
    g = malloc(net.nparams * sizeof *g);
    dx = malloc(sizeof x);
    memcpy(g, net.grads, net.nparams * sizeof *g);
    memcpy(dx, net.dacts + net.t[0].off, sizeof x);
    check_directions("darts parameters", &net, net.params, net.nparams, g, x, y, 1);
    check_directions("darts input", &net, x, sizeof x / sizeof *x, dx, x, y, 0);
    free(g), free(dx);
    net_release(&net);
}

static void test_nn_net_droppath(void **state)
{
    Net net;
    XErr e = { 0 };
    float x[8 * 4], dy[8 * 4];
    int d, kept = 0, dropped = 0;
    (void)state;
    assert_int_equal(net_init(&net, nn_cpu_backend(1), 8, 1, 2, 2, &e), XE_OK);
    d = net_droppath(&net, 0);
    assert_int_equal(net_finalize(&net, 1, &e), XE_OK);
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i + 1), dy[i] = 1.0f;
    net.drop_prob = 0.5f;
    net_forward(&net, x, 1);
    net_backward(&net, dy);
    for (int s = 0; s < 8; s++) {
        const float *y = net.acts + net.t[d].off + 4 * s, *dx = net.dacts + net.t[0].off + 4 * s;
        int on = y[0] != 0.0f;
        kept += on, dropped += !on;
        for (int j = 0; j < 4; j++) {
            assert_true(y[j] == (on ? 2.0f * x[4 * s + j] : 0.0f));
            assert_true(dx[j] == (on ? 2.0f : 0.0f));
        }
    }
    assert_true(kept > 0 && dropped > 0);
    /* evaluation: the identity */
    net_forward(&net, x, 0);
    assert_memory_equal(net.acts + net.t[d].off, x, sizeof x);
    net_release(&net);
}

/* A task that does not fit the network: refused before any training. */
static void test_nn_net_task_mismatch(void **state)
{
    TaskFile t;
    Net net;
    XErr e = { 0 };
    Recipe r = toy_recipe(1);
    double test;
    char *dir, *path = toy_task(&t, &dir);
    (void)state;
    build(&net, all_ops, 16, 4, 1, 8, 3); /* 3 classes; the task has 2 */
    assert_int_equal(train_run(&net, &t, toy_mean, toy_std, &r, 0, NULL, NULL, &test, &e), XE_FAIL);
    assert_string_equal(e.msg, "the task's 8x8x3 images in 2 classes do not fit a network for 8x8x3 in 3");
    net_release(&net);
    xerr_clear(&e);
    build(&net, all_ops, 16, 4, 1, 16, 2); /* 16x16 inputs */
    assert_int_equal(train_run(&net, &t, toy_mean, toy_std, &r, 0, NULL, NULL, &test, &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "do not fit a network for 16x16x3"));
    net_release(&net);
    taskfile_close(&t);
    fx_rmtree(dir);
    free(dir), free(path);
}

const struct CMUnitTest test_nn_net_tests[] = {
    cmocka_unit_test(test_nn_net_task_mismatch),
    cmocka_unit_test(test_nn_net_droppath),
    cmocka_unit_test(test_nn_net_params_match_space), cmocka_unit_test(test_nn_net_darts_v2_params),
    cmocka_unit_test(test_nn_net_darts_gradients),
    cmocka_unit_test(test_nn_net_nb201_params),       cmocka_unit_test(test_nn_net_gradients),
    cmocka_unit_test(test_nn_net_learns_toy_task),    cmocka_unit_test(test_nn_net_resume_bit_identical),
    cmocka_unit_test(test_nn_net_bad_shapes),
};
const size_t test_nn_net_count = sizeof test_nn_net_tests / sizeof test_nn_net_tests[0];
