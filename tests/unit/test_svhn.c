/* Unit tests for the SVHN MAT-file reader: exact pixels and labels for every
 * layout (compressed or not, X or y first, byte orders, label types, small
 * elements, other variables), each bad file's message, and every truncation
 * and single-byte corruption of small files failing cleanly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/ingest.h"
#include "data/readers.h"
#include "fixtures/fx_svhn.h"
#include "fixtures/fx_util.h"

static const IngestOpts no_opts; /* zeroed: no options, no validation split */


static int read_path(Builder *b, const char *path, Split split, XErr *e)
{
    XStream s;
    int rc = xstream_open_path(&s, path, e);
    if (rc == XE_OK)
        rc = svhn_read_mat(b, &s, split, e);
    xstream_release(&s);
    return rc;
}

/* Reads bytes held in memory as a file named name. */
static int read_mem(Builder *b, const uint8_t *data, size_t n, const char *name, XErr *e)
{
    XStream s;
    FILE *f = fmemopen(n ? (void *)data : (void *)"", n ? n : 1, "rb");
    int rc;
    assert_non_null(f);
    if (n == 0)
        fgetc(f);
    rc = xstream_open_file(&s, f, name, e);
    if (rc == XE_OK)
        rc = svhn_read_mat(b, &s, SPLIT_TRAIN, e);
    xstream_release(&s);
    fclose(f);
    return rc;
}

/* Checks that split s holds, from index first on, the images of o. */
static void expect_images(const Builder *b, Split s, size_t first, const FxSvhn *o)
{
    int h = o->h ? o->h : 32, w = o->w ? o->w : 32, c = o->c ? o->c : 3;
    size_t img = (size_t)h * (size_t)w * (size_t)c;
    uint8_t *want = malloc(img);
    const SplitBuf *sb = &b->split[s];
    assert_non_null(want);
    assert_int_equal(sb->n, first + (size_t)o->n);
    if (o->n > 0) {
        assert_int_equal(b->h, h);
        assert_int_equal(b->w, w);
        assert_int_equal(b->c, c);
    }
    for (int i = 0; i < o->n; i++) {
        int label = (int)(o->labels ? o->labels[i] : fx_svhn_label(i));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    want[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)ch] = fx_svhn_pixel(i, y, x, ch);
        assert_int_equal(sb->lab[first + (size_t)i], label % 10);
        if (memcmp(sb->pix + (first + (size_t)i) * img, want, img))
            fail_msg("image %d differs from the fixture", i);
    }
    free(want);
}

/* Writes o to a file, reads it into a fresh builder and checks every image,
 * the label of each and (with 10 or more images) builder_finish's counts. */
static void expect_roundtrip(const char *dir, const FxSvhn *o)
{
    char path[4096];
    Builder b;
    XErr e = { 0 };
    IngestOpts opt = no_opts;
    int rc;
    opt.valid_fraction = -1;
    snprintf(path, sizeof path, "%s/rt.mat", dir);
    assert_int_equal(fx_svhn_write(path, o), 0);
    builder_init(&b, &opt);
    assert_int_equal(svhn_begin(&b, &e), XE_OK);
    rc = read_path(&b, path, SPLIT_TRAIN, &e);
    if (rc != XE_OK)
        fail_msg("n %d compress %d y_first %d be %d y_type %d: %s", o->n, o->compress, o->y_first,
                 o->big_endian, o->y_type, e.msg);
    expect_images(&b, SPLIT_TRAIN, 0, o);
    if (o->n >= 10) {
        rc = builder_finish(&b, path, &e);
        if (rc != XE_OK)
            fail_msg("finish: %s", e.msg);
        assert_int_equal(b.nout, 10);
        assert_string_equal(b.out_names[0], "0");
        assert_string_equal(b.out_names[9], "9");
        assert_int_equal(b.count[SPLIT_TRAIN] + b.count[SPLIT_VALID], (uint64_t)o->n);
        expect_images(&b, SPLIT_TRAIN, 0, o); /* labels still the digits after mapping */
    }
    builder_release(&b);
    remove(path);
}

static void test_svhn_layouts(void **state)
{
    char *dir = unit_tmpdir();
    (void)state;
    for (int k = 0; k < 16; k++) {
        FxSvhn o = { .n = 12, .compress = k & 1, .y_first = (k >> 1) & 1, .big_endian = (k >> 2) & 1,
                     .extra = (k >> 3) & 1 ? 2 : 0 };
        expect_roundtrip(dir, &o);
    }
    fx_rmtree(dir);
    free(dir);
}

static void test_svhn_label_types(void **state)
{
    static const int types[] = { 1, 2, 3, 4, 5, 6, 7, 9, 12, 13 };
    char *dir = unit_tmpdir();
    (void)state;
    for (size_t t = 0; t < sizeof types / sizeof *types; t++)
        for (int k = 0; k < 4; k++) {
            FxSvhn o = { .n = 10, .h = 3, .w = 5, .y_type = types[t], .big_endian = k & 1, .y_row = k >> 1,
                         .compress = (int)t & 1 };
            expect_roundtrip(dir, &o);
        }
    fx_rmtree(dir);
    free(dir);
}

static void test_svhn_shapes(void **state)
{
    char *dir = unit_tmpdir();
    (void)state;
    /* Gray, not square, so rows and columns cannot be swapped unseen. */
    expect_roundtrip(dir, &(FxSvhn){ .n = 11, .h = 5, .w = 7, .c = 1 });
    expect_roundtrip(dir, &(FxSvhn){ .n = 11, .h = 7, .w = 5, .c = 1, .compress = 1, .y_first = 1 });
    expect_roundtrip(dir, &(FxSvhn){ .n = 13, .h = 6, .w = 9, .c = 3, .compress = 1 });
    /* One image: MATLAB drops trailing singleton dims (5x7x3, 5x7). */
    for (int k = 0; k < 4; k++) {
        expect_roundtrip(dir, &(FxSvhn){ .n = 1, .h = 5, .w = 7, .c = 3, .squeeze = 1, .compress = k & 1,
                                         .y_first = k >> 1 });
        expect_roundtrip(dir, &(FxSvhn){ .n = 1, .h = 5, .w = 7, .c = 1, .squeeze = 1, .compress = k & 1,
                                         .y_first = k >> 1 });
    }
    /* 1x1x3x1: X's 3 bytes and y's one uint8 sit in small data elements. */
    for (int k = 0; k < 8; k++)
        expect_roundtrip(dir, &(FxSvhn){ .n = 1, .h = 1, .w = 1, .c = 3, .y_type = 2, .compress = k & 1,
                                         .y_first = (k >> 1) & 1, .big_endian = k >> 2 });
    /* No images at all: the reader accepts it, builder_finish will not. */
    expect_roundtrip(dir, &(FxSvhn){ .n = 0, .h = 4, .w = 4 });
    fx_rmtree(dir);
    free(dir);
}

/* Every label 1..10 lands on its digit, 10 on 0. */
static void test_svhn_label_values(void **state)
{
    static const double labels[12] = { 10, 10, 1, 9, 2, 8, 3, 7, 4, 6, 5, 10 };
    char *dir = unit_tmpdir();
    (void)state;
    expect_roundtrip(dir, &(FxSvhn){ .n = 12, .h = 2, .w = 2, .labels = labels, .compress = 1 });
    expect_roundtrip(dir, &(FxSvhn){ .n = 12, .h = 2, .w = 2, .labels = labels, .y_type = 7 });
    fx_rmtree(dir);
    free(dir);
}

/* The standard set: both valid files into one builder, each bad file's error. */
static void test_svhn_standard(void **state)
{
    static const struct {
        const char *file;
        const char *text;
    } bad[] = {
        { "header.mat", "not a MAT v5 file (the header does not start with 'MATLAB 5.0 MAT-file')" },
        { "version.mat", "not a MAT v5 file (version 0x0200, expected 0x0100)" },
        { "truncated.mat", "truncated: compressed element at offset " },
        { "truncated_raw.mat", "truncated: expected 3072 bytes of X image at offset " },
        { "label11.mat", "record 4: label 11 out of range 1..10" },
        { "label_fraction.mat", "record 2: label 2.5 is not an integer" },
        { "nmismatch.mat", "X holds 6 images but y holds 5 labels" },
        { "zlib.mat", "corrupt data at byte " },
        { "dims.mat", "X has dims 32x32x4x3, expected HxWx3xN or HxWx1xN with sides 1..4096" },
        { "xdouble.mat", "X is double, expected uint8 images" },
        { "nox.mat", "no variable 'X' (the images)" },
        { "noy.mat", "no variable 'y' (the labels)" },
    };
    char *dir = unit_tmpdir(), path[4096];
    Builder b;
    XErr e = { 0 };
    IngestOpts opt = no_opts;
    (void)state;
    opt.valid_fraction = -1;
    assert_int_equal(fx_svhn_standard(dir), 0);
    builder_init(&b, &opt);
    assert_int_equal(svhn_begin(&b, &e), XE_OK);
    snprintf(path, sizeof path, "%s/train_32x32.mat", dir);
    assert_int_equal(split_from_name(path), SPLIT_TRAIN);
    if (read_path(&b, path, SPLIT_TRAIN, &e))
        fail_msg("%s", e.msg);
    snprintf(path, sizeof path, "%s/test_32x32.mat", dir);
    assert_int_equal(split_from_name(path), SPLIT_TEST);
    if (read_path(&b, path, SPLIT_TEST, &e))
        fail_msg("%s", e.msg);
    if (builder_finish(&b, dir, &e))
        fail_msg("%s", e.msg);
    expect_images(&b, SPLIT_TRAIN, 0, &(FxSvhn){ .n = 12 });
    expect_images(&b, SPLIT_TEST, 0, &(FxSvhn){ .n = 10 });
    assert_int_equal(b.count[SPLIT_TRAIN] + b.count[SPLIT_VALID], 12);
    assert_int_equal(b.count[SPLIT_TEST], 10);
    builder_release(&b);
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char want[4200];
        int rc;
        snprintf(path, sizeof path, "%s/bad/%s", dir, bad[k].file);
        snprintf(want, sizeof want, "'%s': ", path);
        builder_init(&b, &opt);
        xerr_clear(&e);
        assert_int_equal(svhn_begin(&b, &e), XE_OK);
        rc = read_path(&b, path, SPLIT_TRAIN, &e);
        unit_expect_error(rc, &e, want);
        unit_expect_error(rc, &e, bad[k].text);
        builder_release(&b);
    }
    fx_rmtree(dir);
    free(dir);
}

/* X's compressed element damaged at its zlib header or its adler-32
 * trailer, in both variable orders (X deferred, or X streamed). */
static void test_svhn_damaged_zlib(void **state)
{
    uint8_t *p;
    size_t n, at, len;
    Builder b;
    XErr e = { 0 };
    (void)state;
    for (int k = 0; k < 4; k++) {
        FxSvhn o = { .n = 4, .h = 8, .w = 8, .compress = 1, .y_first = k & 1 };
        int rc;
        assert_int_equal(fx_svhn_encode(&o, &p, &n, &at, &len), 0);
        if (k < 2)
            p[at + 8] ^= 0x0f;
        else
            p[at + len - 1] ^= 0xff;
        builder_init(&b, &no_opts);
        xerr_clear(&e);
        assert_int_equal(svhn_begin(&b, &e), XE_OK);
        rc = read_mem(&b, p, n, "damaged.mat", &e);
        if (k < 2) {
            unit_expect_error(rc, &e, "'damaged.mat': corrupt data at byte 0 of the compressed element at offset");
            unit_expect_error(rc, &e, "bad zlib data: incorrect header check");
        } else {
            unit_expect_error(rc, &e, "'damaged.mat': corrupt data at byte ");
            unit_expect_error(rc, &e, "bad zlib data: incorrect data check");
        }
        builder_release(&b);
        free(p);
    }
}

/* A MAT-file inside gzip reads the same (XStream decodes it). */
static void test_svhn_gzip(void **state)
{
    char *dir = unit_tmpdir(), path[4096];
    FxSvhn o = { .n = 10, .h = 4, .w = 6 };
    uint8_t *p;
    size_t n;
    Builder b;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(fx_svhn_encode(&o, &p, &n, NULL, NULL), 0);
    snprintf(path, sizeof path, "%s/train_32x32.mat.gz", dir);
    assert_int_equal(fx_write(path, p, n, 1), 0);
    builder_init(&b, &no_opts);
    assert_int_equal(svhn_begin(&b, &e), XE_OK);
    if (read_path(&b, path, SPLIT_TRAIN, &e))
        fail_msg("%s", e.msg);
    expect_images(&b, SPLIT_TRAIN, 0, &o);
    builder_release(&b);
    free(p);
    fx_rmtree(dir);
    free(dir);
}

/* xfer-ingest's view: the standard folder is detected as SVHN, its files
 * split by name, and bad/ beside them is not read. */
static void test_svhn_ingest_dir(void **state)
{
    char *dir = unit_tmpdir();
    Builder b;
    XErr e = { 0 };
    IngestOpts opt = no_opts;
    IngestFormat found;
    (void)state;
    opt.valid_fraction = -1;
    assert_int_equal(fx_svhn_standard(dir), 0);
    builder_init(&b, &opt);
    if (ingest_read(&b, &dir, 1, FORMAT_AUTO, &found, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(found, FORMAT_SVHN);
    expect_images(&b, SPLIT_TRAIN, 0, &(FxSvhn){ .n = 12 });
    expect_images(&b, SPLIT_TEST, 0, &(FxSvhn){ .n = 10 });
    assert_int_equal(b.count[SPLIT_TEST], 10);
    builder_release(&b);
    fx_rmtree(dir);
    free(dir);
}

/* Every prefix of small files fails with a message naming the file, and
 * bit flips in every byte either read or fail cleanly (run under ASan). */
static void test_svhn_truncated_and_flipped(void **state)
{
    (void)state;
    for (int k = 0; k < 8; k++) {
        FxSvhn o = { .n = 2, .h = 3, .w = 2, .compress = k & 1, .y_first = (k >> 1) & 1,
                     .big_endian = k >> 2, .extra = k == 3 };
        uint8_t *p;
        size_t n;
        assert_int_equal(fx_svhn_encode(&o, &p, &n, NULL, NULL), 0);
        for (size_t cut = 0; cut < n; cut++) {
            Builder b;
            XErr e = { 0 };
            int rc;
            builder_init(&b, &no_opts);
            assert_int_equal(svhn_begin(&b, &e), XE_OK);
            rc = read_mem(&b, p, cut, "cut.mat", &e);
            if (rc != XE_FAIL || strncmp(e.msg, "'cut.mat': ", 11))
                fail_msg("layout %d cut at %zu of %zu: rc %d \"%s\"", k, cut, n, rc, e.msg);
            builder_release(&b);
        }
        for (size_t at = 0; at < n; at++)
            for (int bit = 0; bit < 8; bit += 3) {
                Builder b;
                XErr e = { 0 };
                int rc;
                p[at] ^= (uint8_t)(1u << bit);
                builder_init(&b, &no_opts);
                assert_int_equal(svhn_begin(&b, &e), XE_OK);
                rc = read_mem(&b, p, n, "flip.mat", &e);
                if (rc != XE_OK && strncmp(e.msg, "'flip.mat': ", 12))
                    fail_msg("layout %d flip at %zu: rc %d \"%s\"", k, at, rc, e.msg);
                builder_release(&b);
                p[at] ^= (uint8_t)(1u << bit);
            }
        free(p);
    }
}

const struct CMUnitTest test_svhn_tests[] = {
    cmocka_unit_test(test_svhn_layouts),
    cmocka_unit_test(test_svhn_label_types),
    cmocka_unit_test(test_svhn_shapes),
    cmocka_unit_test(test_svhn_label_values),
    cmocka_unit_test(test_svhn_standard),
    cmocka_unit_test(test_svhn_damaged_zlib),
    cmocka_unit_test(test_svhn_gzip),
    cmocka_unit_test(test_svhn_ingest_dir),
    cmocka_unit_test(test_svhn_truncated_and_flipped),
};
const size_t test_svhn_count = sizeof test_svhn_tests / sizeof test_svhn_tests[0];
