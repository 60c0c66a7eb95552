/* Batches from a stored task: order, normalisation, augmentation, and the
 * determinism resuming depends on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <math.h>
#include <stdio.h>

#include "data/builder.h"
#include "data/taskfile.h"
#include "fixtures/fx_util.h"
#include "nn/data.h"

typedef struct DataFix {
    char *dir;
    TaskFile t;
} DataFix;

/* 10 train + 3 test images 4x3x3 (H, W, C); pixel = 10 * image + HWC position. */
static int data_setup(void **state)
{
    DataFix *f = calloc(1, sizeof *f);
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    char *file = NULL, sha[65], path[4200];
    static const char *const names[] = { "a", "b" };
    memset(&o, 0, sizeof o);
    f->dir = unit_tmpdir();
    builder_init(&b, &o);
    assert_int_equal(builder_set_classes(&b, names, 2, &e), XE_OK);
    for (int i = 0; i < 13; i++) {
        uint8_t px[36];
        for (int j = 0; j < 36; j++)
            px[j] = (uint8_t)(10 * i + j);
        assert_int_equal(builder_add(&b, i < 10 ? SPLIT_TRAIN : SPLIT_TEST, i % 2, px, 4, 3, 3, "x", &e), XE_OK);
    }
    assert_int_equal(builder_finish(&b, "src", &e), XE_OK);
    assert_int_equal(taskfile_write(&b, f->dir, "toy", &file, sha, &e), XE_OK);
    snprintf(path, sizeof path, "%s/%s", f->dir, file);
    assert_int_equal(taskfile_open(&f->t, path, &e), XE_OK);
    builder_release(&b);
    free(file);
    *state = f;
    return 0;
}

static int data_teardown(void **state)
{
    DataFix *f = *state;
    taskfile_close(&f->t);
    fx_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static const double mean[3] = { 0.25, 0.5, 0.1 }, sd[3] = { 0.5, 0.25, 0.3 };

static float norm(int v, int c)
{
    return (float)(((double)v / 255.0 - mean[c]) / sd[c]);
}

static void test_nn_data_eval_order_and_values(void **state)
{
    DataFix *f = *state;
    Batcher b;
    XErr e = { 0 };
    float x[2 * 36];
    int32_t y[2];
    assert_int_equal(batcher_init(&b, &f->t, SPLIT_TEST, 2, 0, NULL, mean, sd, 7, &e), XE_OK);
    assert_int_equal(batcher_count(&b), 2);
    assert_int_equal(batcher_next(&b, x, y), 2);
    /* image 10, channel 1, row 2, column 1: HWC byte (2 * 3 + 1) * 3 + 1 */
    assert_true(fabsf(x[1 * 12 + 2 * 3 + 1] - norm(100 + 22, 1)) < 1e-5f);
    assert_true(fabsf(x[36 + 0] - norm(110, 0)) < 1e-5f);
    assert_int_equal(y[0], 0);
    assert_int_equal(y[1], 1);
    assert_int_equal(batcher_next(&b, x, y), 1); /* the last partial batch */
    assert_int_equal(batcher_next(&b, x, y), 0);
    batcher_release(&b);
}

static void test_nn_data_train_shuffle_deterministic(void **state)
{
    DataFix *f = *state;
    Batcher a, c;
    XErr e = { 0 };
    uint32_t o0[10], o1[10];
    int seen[10] = { 0 };
    assert_int_equal(batcher_init(&a, &f->t, SPLIT_TRAIN, 3, 1, NULL, mean, sd, 7, &e), XE_OK);
    assert_int_equal(batcher_init(&c, &f->t, SPLIT_TRAIN, 3, 1, NULL, mean, sd, 7, &e), XE_OK);
    assert_int_equal(batcher_count(&a), 3); /* 10 / 3, the last partial batch dropped */
    for (int i = 0; i < 10; i++)
        seen[a.order[i]]++;
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
    memcpy(o0, a.order, sizeof o0);
    batcher_epoch(&a, 1);
    memcpy(o1, a.order, sizeof o1);
    assert_memory_not_equal(o0, o1, sizeof o0);
    /* a batcher that jumps to epoch 1 sees what one that went there sees */
    batcher_epoch(&c, 1);
    assert_memory_equal(c.order, o1, sizeof o1);
    assert_memory_equal(&c.rng, &a.rng, sizeof a.rng);
    batcher_release(&a);
    batcher_release(&c);
}

static void test_nn_data_augment(void **state)
{
    DataFix *f = *state;
    Augment aug = { 2, 1, 2 };
    Batcher b;
    XErr e = { 0 };
    float x[36];
    int32_t y;
    int padded = 0, zeros = 0, flips = 0;
    assert_int_equal(batcher_init(&b, &f->t, SPLIT_TRAIN, 1, 1, &aug, mean, sd, 3, &e), XE_OK);
    for (int ep = 0; ep < 20; ep++) {
        batcher_epoch(&b, ep);
        while (batcher_next(&b, x, &y) == 1) {
            /* every value is a normalised pixel of its image, padding, or cutout */
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 12; p++) {
                    float v = x[c * 12 + p];
                    int ok = 0;
                    padded += fabsf(v - norm(0, c)) < 1e-5f;
                    zeros += v == 0.0f;
                    for (int i = 0; i < 10 && !ok; i++)
                        for (int q = 0; q < 12 && !ok; q++)
                            ok = fabsf(v - norm(10 * i + 3 * q + c, c)) < 1e-5f;
                    assert_true(ok || v == 0.0f || fabsf(v - norm(0, c)) < 1e-5f);
                }
            /* the first row read right to left: a flip */
            flips += x[0] > x[1] && x[1] > x[2] && x[0] != 0.0f && x[2] != 0.0f;
        }
    }
    assert_true(padded > 0);
    assert_true(zeros > 0);
    assert_true(flips > 0);
    batcher_release(&b);
    /* evaluation never augments */
    assert_int_equal(batcher_init(&b, &f->t, SPLIT_TEST, 1, 0, &aug, mean, sd, 3, &e), XE_OK);
    assert_int_equal(batcher_next(&b, x, &y), 1);
    assert_true(fabsf(x[0] - norm(100, 0)) < 1e-5f);
    batcher_release(&b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, data_setup, data_teardown)
const struct CMUnitTest test_nn_data_tests[] = {
    T(test_nn_data_eval_order_and_values),
    T(test_nn_data_train_shuffle_deterministic),
    T(test_nn_data_augment),
};
const size_t test_nn_data_count = sizeof test_nn_data_tests / sizeof test_nn_data_tests[0];
