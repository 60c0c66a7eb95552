/* The builder: transforms, class selection, reservoir limit, stratified
 * validation split, statistics, and the stored task file round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/builder.h"
#include "data/taskfile.h"
#include "fixtures/fx_util.h"

static IngestOpts opts0(void)
{
    IngestOpts o;
    memset(&o, 0, sizeof o);
    o.valid_fraction = 0;
    return o;
}

/* n images per class of 2x2 gray, pixel value = 10 * class + image index. */
static void fill(Builder *b, int classes, int per_class, Split s)
{
    static const char *const names[] = { "a", "b", "c", "d", "e" };
    XErr e = { 0 };
    if (!b->ncls)
        assert_int_equal(builder_set_classes(b, names, classes, &e), XE_OK);
    for (int i = 0; i < per_class; i++)
        for (int k = 0; k < classes; k++) {
            uint8_t px[4];
            memset(px, 10 * k + i, sizeof px);
            assert_int_equal(builder_add(b, s, k, px, 2, 2, 1, "test", &e), XE_OK);
        }
}

static void test_builder_gray_and_resize(void **state)
{
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    uint8_t rgb[4 * 4 * 3];
    int label;
    (void)state;
    o.grayscale = 1;
    o.resize_h = 2;
    o.resize_w = 2;
    builder_init(&b, &o);
    for (int i = 0; i < 16; i++)
        rgb[3 * i] = 200, rgb[3 * i + 1] = 100, rgb[3 * i + 2] = 50;
    assert_int_equal(builder_class(&b, "x", &label, &e), XE_OK);
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, label, rgb, 4, 4, 3, "img", &e), XE_OK);
    assert_int_equal(builder_finish(&b, "src", &e), XE_OK);
    assert_int_equal(b.h, 2);
    assert_int_equal(b.w, 2);
    assert_int_equal(b.c, 1);
    /* 0.299*200 + 0.587*100 + 0.114*50 = 124.2 -> 124, constant under resize */
    for (int i = 0; i < 4; i++)
        assert_int_equal(b.split[SPLIT_TRAIN].pix[i], 124);
    builder_release(&b);
}

static void test_builder_shape_errors(void **state)
{
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    uint8_t px[3 * 3 * 3] = { 0 };
    int l;
    (void)state;
    builder_init(&b, &o);
    assert_int_equal(builder_class(&b, "x", &l, &e), XE_OK);
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, l, px, 2, 2, 1, "'a.png'", &e), XE_OK);
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, l, px, 3, 3, 1, "'b.png'", &e), XE_FAIL);
    assert_string_equal(e.msg, "'b.png': image is 3x3, earlier images are 2x2 (use --resize)");
    xerr_clear(&e);
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, l, px, 2, 2, 3, "'c.png'", &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "'c.png': image has 3 channels, earlier images have 1"));
    xerr_clear(&e);
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, 7, px, 2, 2, 1, "'d'", &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "label 7 out of range"));
    builder_release(&b);
    /* a gray image in a colour dataset is expanded */
    builder_init(&b, &o);
    xerr_clear(&e);
    assert_int_equal(builder_class(&b, "x", &l, &e), XE_OK);
    px[0] = 1, px[1] = 2, px[2] = 3;
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, l, px, 1, 1, 3, "rgb", &e), XE_OK);
    px[0] = 9;
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, l, px, 1, 1, 1, "gray", &e), XE_OK);
    assert_memory_equal(b.split[SPLIT_TRAIN].pix + 3, "\x09\x09\x09", 3);
    builder_release(&b);
}

static void test_builder_classes_subset(void **state)
{
    char *cls[] = { "c", "1" };
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    (void)state;
    o.classes = cls;
    o.nclasses = 2;
    builder_init(&b, &o);
    fill(&b, 4, 3, SPLIT_TRAIN);
    assert_int_equal(builder_finish(&b, "src", &e), XE_OK);
    assert_int_equal(b.nout, 2);
    assert_string_equal(b.out_names[0], "c");
    assert_string_equal(b.out_names[1], "b"); /* source label 1 */
    assert_int_equal(b.split[SPLIT_TRAIN].n, 6);
    for (size_t i = 0; i < b.split[SPLIT_TRAIN].n; i++) {
        int v = b.split[SPLIT_TRAIN].pix[4 * i];
        assert_int_equal(b.split[SPLIT_TRAIN].lab[i], v / 10 == 2 ? 0 : 1);
        assert_true(v / 10 == 2 || v / 10 == 1);
    }
    builder_release(&b);
    /* a class that is not there */
    cls[1] = "zebra";
    builder_init(&b, &o);
    fill(&b, 4, 1, SPLIT_TRAIN);
    assert_int_equal(builder_finish(&b, "src", &e), XE_FAIL);
    assert_string_equal(e.msg, "'src': no class 'zebra'");
    builder_release(&b);
}

static void test_builder_found_classes_sorted(void **state)
{
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    uint8_t px = 5;
    const char *names[] = { "zeta", "alpha", "mid" };
    (void)state;
    builder_init(&b, &o);
    for (int i = 0; i < 3; i++) {
        int l;
        assert_int_equal(builder_class(&b, names[i], &l, &e), XE_OK);
        px = (uint8_t)i;
        assert_int_equal(builder_add(&b, SPLIT_TRAIN, l, &px, 1, 1, 1, "x", &e), XE_OK);
    }
    assert_int_equal(builder_finish(&b, "src", &e), XE_OK);
    assert_string_equal(b.out_names[0], "alpha");
    assert_string_equal(b.out_names[2], "zeta");
    assert_int_equal(b.split[SPLIT_TRAIN].lab[0], 2); /* zeta */
    assert_int_equal(b.split[SPLIT_TRAIN].lab[1], 0); /* alpha */
    builder_release(&b);
}

static void test_builder_limit_reservoir(void **state)
{
    IngestOpts o = opts0();
    Builder b1, b2, b3;
    XErr e = { 0 };
    (void)state;
    o.limit_per_class = 3;
    builder_init(&b1, &o);
    builder_init(&b2, &o);
    fill(&b1, 2, 20, SPLIT_TRAIN);
    fill(&b2, 2, 20, SPLIT_TRAIN);
    fill(&b1, 2, 5, SPLIT_TEST); /* the test split is not limited */
    assert_int_equal(builder_finish(&b1, "s", &e), XE_OK);
    assert_int_equal(b1.count[SPLIT_TRAIN], 6);
    assert_int_equal(b1.count[SPLIT_TEST], 10);
    assert_memory_equal(b1.split[SPLIT_TRAIN].pix, b2.split[SPLIT_TRAIN].pix, 6 * 4);
    {
        /* the reservoir keeps more than the first three of a class */
        int late = 0;
        for (int i = 0; i < 6; i++)
            late |= b1.split[SPLIT_TRAIN].pix[4 * i] % 10 >= 3;
        assert_true(late);
    }
    o.seed = 99;
    builder_init(&b3, &o);
    fill(&b3, 2, 20, SPLIT_TRAIN);
    assert_memory_not_equal(b1.split[SPLIT_TRAIN].pix, b3.split[SPLIT_TRAIN].pix, 6 * 4);
    builder_release(&b1);
    builder_release(&b2);
    builder_release(&b3);
}

static void test_builder_stratified_valid(void **state)
{
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    int per[2][3] = { { 0 } };
    (void)state;
    o.valid_fraction = 0.25;
    builder_init(&b, &o);
    fill(&b, 3, 8, SPLIT_TRAIN);
    assert_int_equal(builder_finish(&b, "s", &e), XE_OK);
    assert_int_equal(b.count[SPLIT_TRAIN], 18);
    assert_int_equal(b.count[SPLIT_VALID], 6);
    for (size_t i = 0; i < b.split[SPLIT_TRAIN].n; i++)
        per[b.to_valid[i]][b.split[SPLIT_TRAIN].lab[i]]++;
    for (int k = 0; k < 3; k++) {
        assert_int_equal(per[0][k], 6);
        assert_int_equal(per[1][k], 2);
    }
    builder_release(&b);
    /* a source with its own validation split keeps it */
    builder_init(&b, &o);
    fill(&b, 3, 4, SPLIT_TRAIN);
    fill(&b, 3, 1, SPLIT_VALID);
    assert_int_equal(builder_finish(&b, "s", &e), XE_OK);
    assert_int_equal(b.count[SPLIT_TRAIN], 12);
    assert_int_equal(b.count[SPLIT_VALID], 3);
    builder_release(&b);
}

static void test_builder_stats(void **state)
{
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    int l;
    uint8_t a[2] = { 0, 0 }, c[2] = { 255, 255 };
    (void)state;
    builder_init(&b, &o);
    assert_int_equal(builder_class(&b, "x", &l, &e), XE_OK);
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, l, a, 1, 2, 1, "a", &e), XE_OK);
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, l, c, 1, 2, 1, "c", &e), XE_OK);
    assert_int_equal(builder_add(&b, SPLIT_TEST, l, c, 1, 2, 1, "t", &e), XE_OK); /* not counted */
    assert_int_equal(builder_finish(&b, "s", &e), XE_OK);
    assert_true(fabs(b.mean[0] - 0.5) < 1e-12);
    assert_true(fabs(b.std[0] - 0.5) < 1e-12);
    builder_release(&b);
}

static void test_builder_empty_errors(void **state)
{
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    static const char *const names[] = { "a", "b" };
    uint8_t px = 1;
    (void)state;
    builder_init(&b, &o);
    assert_int_equal(builder_finish(&b, "src", &e), XE_FAIL);
    assert_string_equal(e.msg, "'src': no images found");
    builder_release(&b);
    xerr_clear(&e);
    builder_init(&b, &o);
    assert_int_equal(builder_set_classes(&b, names, 2, &e), XE_OK);
    assert_int_equal(builder_add(&b, SPLIT_TRAIN, 0, &px, 1, 1, 1, "x", &e), XE_OK);
    assert_int_equal(builder_finish(&b, "src", &e), XE_FAIL);
    assert_string_equal(e.msg, "'src': class 'b' has no training images");
    builder_release(&b);
}

static void test_builder_taskfile_roundtrip(void **state)
{
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    TaskFile t;
    char dir[] = "/tmp/xfer-test-XXXXXX", *file = NULL, sha[65], sha2[65], path[4200];
    (void)state;
    assert_non_null(mkdtemp(dir));
    o.valid_fraction = 0.5;
    builder_init(&b, &o);
    fill(&b, 2, 4, SPLIT_TRAIN);
    fill(&b, 2, 1, SPLIT_TEST);
    assert_int_equal(builder_finish(&b, "s", &e), XE_OK);
    assert_int_equal(taskfile_write(&b, fx_path(dir, "tasks"), "toy", &file, sha, &e), XE_OK);
    snprintf(path, sizeof path, "%s/tasks/%s", dir, file);
    assert_int_equal(strncmp(file, "toy.", 4), 0);
    assert_int_equal(taskfile_checksum(path, sha2, &e), XE_OK);
    assert_string_equal(sha, sha2);
    assert_int_equal(taskfile_open(&t, path, &e), XE_OK);
    assert_int_equal(t.h, 2);
    assert_int_equal(t.c, 1);
    assert_int_equal(t.classes, 2);
    assert_int_equal(t.n[SPLIT_TRAIN], 4);
    assert_int_equal(t.n[SPLIT_VALID], 4);
    assert_int_equal(t.n[SPLIT_TEST], 2);
    /* every train and valid record is one of the source records, label intact */
    for (int s = 0; s < 2; s++)
        for (uint64_t i = 0; i < t.n[s]; i++)
            assert_int_equal(t.images[s][4 * i] / 10, taskfile_label(&t, s, i));
    assert_int_equal(t.images[SPLIT_TEST][4], 10);
    taskfile_close(&t);
    /* a truncated file is refused */
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(taskfile_open(&t, path, &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "truncated"));
    builder_release(&b);
    free(file);
    fx_rmtree(dir);
}

static void test_builder_taskfile_leaves_nothing(void **state)
{
    IngestOpts o = opts0();
    Builder b;
    XErr e = { 0 };
    char *file = NULL, sha[65];
    (void)state;
    builder_init(&b, &o);
    fill(&b, 2, 2, SPLIT_TRAIN);
    assert_int_equal(builder_finish(&b, "s", &e), XE_OK);
    assert_int_equal(taskfile_write(&b, "/proc/xfer-no-such-dir", "toy", &file, sha, &e), XE_FAIL);
    assert_null(file);
    assert_non_null(strstr(e.msg, "/proc/xfer-no-such-dir"));
    builder_release(&b);
}

const struct CMUnitTest test_builder_tests[] = {
    cmocka_unit_test(test_builder_gray_and_resize),    cmocka_unit_test(test_builder_shape_errors),
    cmocka_unit_test(test_builder_classes_subset),     cmocka_unit_test(test_builder_found_classes_sorted),
    cmocka_unit_test(test_builder_limit_reservoir),    cmocka_unit_test(test_builder_stratified_valid),
    cmocka_unit_test(test_builder_stats),              cmocka_unit_test(test_builder_empty_errors),
    cmocka_unit_test(test_builder_taskfile_roundtrip), cmocka_unit_test(test_builder_taskfile_leaves_nothing),
};
const size_t test_builder_count = sizeof test_builder_tests / sizeof test_builder_tests[0];
