/* Unit tests for the NumPy readers: every dtype, shape and header version,
 * the keras npz member API, the standard fixtures, and each bad input's
 * message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/builder.h"
#include "data/readers.h"
#include "fixtures/fx_npy.h"
#include "fixtures/fx_util.h"

typedef struct NpyFix {
    char dir[64];
    IngestOpts opt;
    Builder b;
    XErr e;
} NpyFix;

static int npy_setup(void **state)
{
    NpyFix *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/xfer-npy-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->opt.valid_fraction = 0;
    builder_init(&f->b, &f->opt);
    *state = f;
    return 0;
}

static int npy_teardown(void **state)
{
    NpyFix *f = *state;
    builder_release(&f->b);
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

static const char *fix_path(NpyFix *f, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", f->dir, name);
    return buf;
}

static void fresh_builder(NpyFix *f)
{
    builder_release(&f->b);
    builder_init(&f->b, &f->opt);
    xerr_clear(&f->e);
}

static int read_class(NpyFix *f, const char *path, const char *cls)
{
    XStream s;
    int rc = xstream_open_path(&s, path, &f->e);
    if (rc == XE_OK)
        rc = npy_read_class(&f->b, &s, cls, &f->e);
    xstream_release(&s);
    return rc;
}

/* Asserts that split holds, from record first on, n images of class seed
 * written as descr, all with output label lab. */
static void check_images(const Builder *b, Split sp, size_t first, uint64_t n, int h, int w, int c,
                         const char *descr, int seed, int lab)
{
    const SplitBuf *sb = &b->split[sp];
    size_t img = (size_t)h * (size_t)w * (size_t)c;
    assert_int_equal(b->h, h);
    assert_int_equal(b->w, w);
    assert_int_equal(b->c, c);
    assert_true(sb->n >= first + n);
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p = sb->pix + (first + i) * img;
        if (lab >= 0)
            assert_int_equal(sb->lab[first + i], lab);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    assert_int_equal(p[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)ch],
                                     fx_npy_expect(descr, seed, i, y, x, ch));
    }
}

static void test_npy_flat_classes(void **state)
{
    NpyFix *f = *state;
    char cat[128], dog[128];
    assert_int_equal(fx_npy_write_images(fix_path(f, "cat.npy", cat, sizeof cat), 1, "|u1",
                                         FX_NPY_FLAT, 5, 28, 28, 1, 0, 0), 0);
    assert_int_equal(fx_npy_write_images(fix_path(f, "dog.npy", dog, sizeof dog), 1, "|u1",
                                         FX_NPY_FLAT, 3, 28, 28, 1, 1, 0), 0);
    /* dog first: output labels still follow the sorted names */
    assert_int_equal(read_class(f, dog, "dog"), XE_OK);
    assert_int_equal(read_class(f, cat, "cat"), XE_OK);
    assert_int_equal(builder_finish(&f->b, f->dir, &f->e), XE_OK);
    assert_int_equal(f->b.nout, 2);
    assert_string_equal(f->b.out_names[0], "cat");
    assert_string_equal(f->b.out_names[1], "dog");
    assert_int_equal(f->b.split[SPLIT_TRAIN].n, 8);
    assert_int_equal(builder_count(&f->b, SPLIT_TRAIN), 8);
    assert_int_equal(builder_count(&f->b, SPLIT_VALID), 0);
    assert_int_equal(builder_count(&f->b, SPLIT_TEST), 0);
    check_images(&f->b, SPLIT_TRAIN, 0, 3, 28, 28, 1, "|u1", 1, 1);
    check_images(&f->b, SPLIT_TRAIN, 3, 5, 28, 28, 1, "|u1", 0, 0);
}

/* Every supported dtype, in each layout and header version. */
static void test_npy_dtypes(void **state)
{
    static const struct {
        const char *descr;
        int unit;
    } types[] = {
        { "|u1", 0 }, { "|i1", 0 }, { "|b1", 0 }, { "<u1", 0 }, { "<u2", 0 }, { ">u2", 0 },
        { "<i2", 0 }, { ">i2", 0 }, { "<u4", 0 }, { ">u4", 0 }, { "<i4", 0 }, { ">i4", 0 },
        { "<u8", 0 }, { ">u8", 0 }, { "<i8", 0 }, { ">i8", 0 }, { "=u2", 0 }, { "<f4", 0 },
        { ">f4", 0 }, { "<f8", 0 }, { ">f8", 0 }, { "<f4", 1 }, { ">f4", 1 }, { "<f8", 1 },
        { ">f8", 1 },
    };
    static const struct {
        FxNpyLayout layout;
        int h, w, c;
    } shapes[] = {
        { FX_NPY_FLAT, 4, 4, 1 }, { FX_NPY_NHW, 5, 3, 1 }, { FX_NPY_NHWC, 3, 4, 1 },
        { FX_NPY_NHWC, 2, 5, 3 },
    };
    NpyFix *f = *state;
    char path[128];
    fix_path(f, "arr.npy", path, sizeof path);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            int major = 1 + (int)((t + k) % 3);
            fresh_builder(f);
            assert_int_equal(fx_npy_write_images(path, major, types[t].descr, shapes[k].layout, 3,
                                                 shapes[k].h, shapes[k].w, shapes[k].c, 7,
                                                 types[t].unit), 0);
            if (read_class(f, path, "arr") != XE_OK)
                fail_msg("%s shape %zu: %s", types[t].descr, k, f->e.msg);
            assert_int_equal(builder_finish(&f->b, path, &f->e), XE_OK);
            assert_int_equal(builder_count(&f->b, SPLIT_TRAIN), 3);
            check_images(&f->b, SPLIT_TRAIN, 0, 3, shapes[k].h, shapes[k].w, shapes[k].c,
                         types[t].descr, 7, 0);
        }
}

/* Header spellings numpy and other writers produce: double quotes, keys in
 * any order, no trailing comma, Python 2 long suffixes, odd spacing. */
static void test_npy_header_spellings(void **state)
{
    static const char *const dicts[] = {
        "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 3), }",
        "{\"shape\": (2, 3, 3), \"descr\": \"|u1\", \"fortran_order\": False}",
        "{'fortran_order':False,'shape':(2,3,3,),'descr':'|u1'}",
        "{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 3L, 3L), }",
        "  {\t'descr' : '|u1' ,\n'fortran_order' : False , 'shape' : ( 2 , 3 , 3 ) , }  ",
        "{'descr': 'u1', 'fortran_order': False, 'shape': (2, 9), }",
    };
    NpyFix *f = *state;
    uint8_t data[18], *buf;
    size_t n;
    char path[128];
    fix_path(f, "h.npy", path, sizeof path);
    for (int i = 0; i < 18; i++)
        data[i] = fx_npy_pixel(5, (uint64_t)i / 9, i % 9 / 3, i % 3, 0);
    for (size_t d = 0; d < sizeof dicts / sizeof dicts[0]; d++) {
        fresh_builder(f);
        assert_int_equal(fx_npy_encode_dict(1 + (int)d % 3, dicts[d], data, sizeof data, &buf, &n), 0);
        assert_int_equal(fx_write(path, buf, n, 0), 0);
        free(buf);
        if (read_class(f, path, "h") != XE_OK)
            fail_msg("dict %zu: %s", d, f->e.msg);
        assert_int_equal(builder_finish(&f->b, path, &f->e), XE_OK);
        check_images(&f->b, SPLIT_TRAIN, 0, 2, 3, 3, 1, "|u1", 5, 0);
    }
}

static void test_npy_gzip(void **state)
{
    NpyFix *f = *state;
    char path[128];
    uint8_t *buf;
    size_t n;
    assert_int_equal(fx_npy_encode_images(1, "<i2", FX_NPY_NHW, 4, 6, 5, 1, 2, 0, &buf, &n), 0);
    assert_int_equal(fx_write(fix_path(f, "g.npy.gz", path, sizeof path), buf, n, 1), 0);
    free(buf);
    assert_int_equal(read_class(f, path, "g"), XE_OK);
    assert_int_equal(builder_finish(&f->b, path, &f->e), XE_OK);
    check_images(&f->b, SPLIT_TRAIN, 0, 4, 6, 5, 1, "<i2", 2, 0);
}

/* One bad file: its bytes and the message it must give. */
typedef struct BadCase {
    const char *dict;     /* NULL: raw bytes */
    int major;
    const uint8_t *data;
    size_t len;
    const char *want;
} BadCase;

static void check_bad(NpyFix *f, const char *name, const uint8_t *bytes, size_t n, const char *want)
{
    char path[128];
    fix_path(f, name, path, sizeof path);
    fresh_builder(f);
    assert_int_equal(fx_write(path, bytes, n, 0), 0);
    assert_int_equal(read_class(f, path, "bad"), XE_FAIL);
    if (!strstr(f->e.msg, want) || !strstr(f->e.msg, path))
        fail_msg("%s: message '%s' lacks '%s' or the path", name, f->e.msg, want);
}

static void test_npy_bad_headers(void **state)
{
    static const uint8_t zeros[64];
    static const BadCase cases[] = {
        { "{'descr': '|O', 'fortran_order': False, 'shape': (2, 4), }", 1, zeros, 64,
          "object arrays are not supported" },
        { "{'descr': '<O8', 'fortran_order': False, 'shape': (2, 4), }", 1, zeros, 64,
          "object arrays are not supported" },
        { "{'descr': [('a', '<u1'), ('b', '<u1')], 'fortran_order': False, 'shape': (2, 4), }", 1,
          zeros, 64, "structured arrays are not supported" },
        { "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2, 2), }", 1, zeros, 8,
          "fortran_order arrays are not supported" },
        { "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 4), }", 1, zeros, 64,
          "dtype '<c8' is not supported" },
        { "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 4), }", 1, zeros, 16,
          "dtype '<f2' is not supported" },
        { "{'descr': '|u2', 'fortran_order': False, 'shape': (2, 4), }", 1, zeros, 16,
          "dtype '|u2' is not supported" },
        { "{'descr': '<U3', 'fortran_order': False, 'shape': (2, 4), }", 1, zeros, 64,
          "dtype '<U3' is not supported" },
        { "{'descr': '<u16', 'fortran_order': False, 'shape': (2, 4), }", 1, zeros, 64,
          "dtype '<u16' is not supported" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4), 'foo': 1}", 1, zeros, 8,
          "unknown key 'foo'" },
        { "{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (2, 4)}", 1, zeros, 8,
          "key 'descr' given twice" },
        { "{'descr': '|u1', 'fortran_order': False}", 1, zeros, 8, "missing key 'shape'" },
        { "{'descr': '|u1', 'shape': (2, 4)}", 1, zeros, 8, "missing key 'fortran_order'" },
        { "{}", 1, zeros, 8, "missing key 'descr'" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (5)}", 1, zeros, 8,
          "'shape' is not a tuple" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (2, -4)}", 1, zeros, 8,
          "expected a non-negative integer" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (2 4)}", 1, zeros, 8,
          "expected ',' or ')'" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4", 1, zeros, 8,
          "unterminated 'shape' tuple" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 1, zeros, 8,
          "too many dimensions" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999, 4)}", 1, zeros,
          8, "dimension too large" },
        { "{'descr': '|u1', 'fortran_order': 0, 'shape': (2, 4)}", 1, zeros, 8,
          "expected True or False" },
        { "{'descr': '|u1, 'fortran_order': False, 'shape': (2, 4)}", 1, zeros, 8,
          "expected ',' or '}' at header byte 17" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4)", 1, zeros, 8,
          "expected ',' or '}'" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4)} x", 1, zeros, 8,
          "unexpected text after the dict" },
        { "{'descr': '|u\\1', 'fortran_order': False, 'shape': (2, 4)}", 1, zeros, 8,
          "unsupported character" },
        { "{'descr: '|u1', 'fortran_order': False, 'shape': (2, 4)}", 1, zeros, 8,
          "unknown key 'descr: '" },
        { "{'descr' '|u1', 'fortran_order': False, 'shape': (2, 4)}", 1, zeros, 8,
          "expected ':' at header byte 9" },
        { "{'a_very_long_key_that_is_not_any_npy_key': 1}", 1, zeros, 8, "string too long" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4), 'descr", 1, zeros, 8,
          "unterminated string" },
        { "['descr', '|u1']", 1, zeros, 8, "expected '{'" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 783), }", 1, zeros, 0,
          "shape (5, 783) is not supported" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", 1, zeros, 5,
          "shape (5,) is not supported" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", 1, zeros, 1,
          "shape () is not supported" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 0), }", 1, zeros, 0,
          "shape (5, 0) is not supported" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2, 4), }", 1, zeros, 16,
          "4 channels (RGBA)" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2, 2), }", 1, zeros, 8,
          "2 channels, expected 1 or 3" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2, 2, 1), }", 1, zeros, 8,
          "shape (1, 2, 2, 2, 1) is not supported" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 5000, 2), }", 1, zeros, 8,
          "image side out of range" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 0, 2), }", 1, zeros, 0,
          "image side out of range" },
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 28, 28), }", 1, zeros, 0,
          "holds no images" },
        { "{'descr': '<u8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
          1, zeros, 0, "is larger than" },
        { "{'descr': '<f8', 'fortran_order': False, 'shape': (1073741824, 2, 2), }", 1, zeros, 0,
          "is larger than" },
        /* a promise of 7.8 GB with no data: truncated, nothing absurd allocated */
        { "{'descr': '|u1', 'fortran_order': False, 'shape': (10000000, 784), }", 1, zeros, 10,
          "truncated: data ends in image 0 of 10000000" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 16), }", 1, zeros, 64,
          "truncated: data ends in image 1 of 100000000" },
    };
    NpyFix *f = *state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *buf;
        size_t n;
        char name[32];
        snprintf(name, sizeof name, "bad%zu.npy", i);
        assert_int_equal(fx_npy_encode_dict(cases[i].major, cases[i].dict, cases[i].data, cases[i].len,
                                            &buf, &n), 0);
        check_bad(f, name, buf, n, cases[i].want);
        free(buf);
    }
}

static void test_npy_bad_preamble(void **state)
{
    NpyFix *f = *state;
    uint8_t *buf;
    size_t n;
    assert_int_equal(fx_npy_encode_images(1, "|u1", FX_NPY_FLAT, 2, 4, 4, 1, 0, 0, &buf, &n), 0);
    buf[1] = 'X';
    check_bad(f, "magic.npy", buf, n, "not an npy file (bad magic)");
    buf[1] = 'N';
    buf[6] = 4;
    check_bad(f, "v4.npy", buf, n, "unsupported npy version 4.0");
    buf[6] = 1;
    buf[7] = 1;
    check_bad(f, "v11.npy", buf, n, "unsupported npy version 1.1");
    buf[7] = 0;
    buf[8] = buf[9] = 0;
    check_bad(f, "hlen0.npy", buf, n, "npy header length 0 is out of range");
    buf[8] = buf[9] = 0xff;
    check_bad(f, "hlenbig.npy", buf, n, "truncated");
    check_bad(f, "short.npy", buf, 7, "truncated");
    check_bad(f, "empty.npy", buf, 0, "truncated");
    free(buf);
    /* v2 header length above 1 MiB */
    assert_int_equal(fx_npy_encode_images(2, "|u1", FX_NPY_FLAT, 2, 4, 4, 1, 0, 0, &buf, &n), 0);
    buf[10] = 0x20;
    check_bad(f, "v2big.npy", buf, n, "is out of range 1..1048576");
    free(buf);
}

/* Encodes (n, 2, 2) of descr from raw element bytes. */
static void check_bad_values(NpyFix *f, const char *name, const char *descr, const void *data,
                             size_t len, int n, const char *want)
{
    char dict[128];
    uint8_t *buf;
    size_t total;
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%d, 2, 2), }",
             descr, n);
    assert_int_equal(fx_npy_encode_dict(1, dict, data, len, &buf, &total), 0);
    check_bad(f, name, buf, total, want);
    free(buf);
}

static void test_npy_bad_values(void **state)
{
    NpyFix *f = *state;
    int16_t i2[8] = { 0, 1, 2, 3, 4, 255, 300, 7 };
    int8_t i1[4] = { 0, 1, -1, 3 };
    uint8_t b1[4] = { 0, 1, 2, 1 };
    uint64_t u8[4] = { 0, 1, UINT64_MAX, 3 };
    int64_t i8[4] = { 0, 1, 256, 3 };
    float f4[8] = { 0, 0.5f, 1, NAN, 0, 0, 0, 0 };
    float neg[4] = { 0, 0.5f, -0.5f, 1 };
    double f8[8] = { 0, 1, 2, 3, 4, 5, 256, 7 };
    double inf[4] = { 0, 1, INFINITY, 3 };
    check_bad_values(f, "i2.npy", "<i2", i2, sizeof i2, 2, "value 300 at element 6 (image 1) is outside 0..255");
    check_bad_values(f, "i1.npy", "|i1", i1, sizeof i1, 1, "value -1 at element 2 (image 0) is outside 0..255");
    check_bad_values(f, "b1.npy", "|b1", b1, sizeof b1, 1, "value 2 at element 2 (image 0) is outside 0..1");
    check_bad_values(f, "u8.npy", "<u8", u8, sizeof u8, 1,
                     "value 18446744073709551615 at element 2 (image 0) is outside 0..255");
    check_bad_values(f, "i8.npy", "<i8", i8, sizeof i8, 1, "value 256 at element 2 (image 0)");
    check_bad_values(f, "nan.npy", "<f4", f4, sizeof f4, 2, "NaN at element 3 (image 0)");
    check_bad_values(f, "neg.npy", "<f4", neg, sizeof neg, 1, "value -0.5 at element 2 (image 0) is outside 0..1");
    check_bad_values(f, "f8.npy", "<f8", f8, sizeof f8, 2, "value 256 at element 6 (image 1) is outside 0..255");
    check_bad_values(f, "inf.npy", "<f8", inf, sizeof inf, 1, "value inf at element 2 (image 0) is outside 0..255");
}

static void test_npy_bad_data_length(void **state)
{
    NpyFix *f = *state;
    uint8_t *buf, *more;
    size_t n;
    assert_int_equal(fx_npy_encode_images(1, "<u2", FX_NPY_NHW, 5, 4, 4, 1, 0, 0, &buf, &n), 0);
    check_bad(f, "cut.npy", buf, n - 2 * 32 - 1, "truncated: data ends in image 2 of 5");
    check_bad(f, "cut4.npy", buf, n - 1, "truncated: data ends in image 4 of 5");
    more = realloc(buf, n + 1);
    assert_non_null(more);
    more[n] = 0;
    check_bad(f, "extra.npy", more, n + 1, "unexpected bytes after the array data");
    free(more);
    assert_int_equal(fx_npy_encode_images(1, "<f8", FX_NPY_NHW, 5, 4, 4, 1, 0, 1, &buf, &n), 0);
    check_bad(f, "cutf.npy", buf, n - 3 * 128 + 5, "truncated: data ends in image 2 of 5");
    more = realloc(buf, n + 8);
    assert_non_null(more);
    memset(more + n, 0, 8);
    check_bad(f, "extraf.npy", more, n + 8, "unexpected bytes after the array data");
    free(more);
}

/* Every prefix of a valid file fails cleanly, naming the file. */
static void test_npy_every_prefix(void **state)
{
    NpyFix *f = *state;
    uint8_t *buf;
    size_t n;
    char path[128];
    fix_path(f, "p.npy", path, sizeof path);
    assert_int_equal(fx_npy_encode_images(2, "<f4", FX_NPY_NHW, 2, 2, 3, 1, 0, 0, &buf, &n), 0);
    for (size_t k = 0; k < n; k++) {
        fresh_builder(f);
        assert_int_equal(fx_write(path, buf, k, 0), 0);
        assert_int_equal(read_class(f, path, "p"), XE_FAIL);
        assert_non_null(strstr(f->e.msg, path));
    }
    free(buf);
}

/* The standard set does what the comment in fx_npy.c says. */
static void test_npy_standard(void **state)
{
    static const struct {
        const char *name, *want;
    } bad[] = {
        { "truncated.npy", "truncated: data ends in image 2 of 5" },
        { "badmagic.npy", "not an npy file (bad magic)" },
        { "badheader.npy", "bad npy header: expected ':'" },
        { "object.npy", "object arrays are not supported" },
        { "fortran.npy", "fortran_order arrays are not supported" },
        { "badshape.npy", "shape (5, 783) is not supported" },
        { "rgba.npy", "shape (2, 4, 4, 4) is not supported: 4 channels (RGBA)" },
        { "bigvalue.npy", "value 300 at element 900 (image 1) is outside 0..255" },
        { "trailing.npy", "unexpected bytes after the array data" },
    };
    NpyFix *f = *state;
    char dir[128], path[192];
    fix_path(f, "std", dir, sizeof dir);
    assert_int_equal(fx_npy_standard(dir), 0);
    snprintf(path, sizeof path, "%s/cat.npy", dir);
    assert_int_equal(read_class(f, path, "cat"), XE_OK);
    snprintf(path, sizeof path, "%s/classes/dog.npy", dir);
    assert_int_equal(read_class(f, path, "dog"), XE_OK);
    assert_int_equal(builder_finish(&f->b, dir, &f->e), XE_OK);
    check_images(&f->b, SPLIT_TRAIN, 0, 5, 28, 28, 1, "|u1", 0, 0);
    check_images(&f->b, SPLIT_TRAIN, 5, 3, 28, 28, 1, "|u1", 1, 1);
    fresh_builder(f);
    snprintf(path, sizeof path, "%s/gray3d.npy", dir);
    assert_int_equal(read_class(f, path, "gray3d"), XE_OK);
    assert_int_equal(builder_finish(&f->b, dir, &f->e), XE_OK);
    check_images(&f->b, SPLIT_TRAIN, 0, 4, 6, 5, 1, "<u2", 3, 0);
    fresh_builder(f);
    snprintf(path, sizeof path, "%s/rgb.npy", dir);
    assert_int_equal(read_class(f, path, "rgb"), XE_OK);
    assert_int_equal(builder_finish(&f->b, dir, &f->e), XE_OK);
    check_images(&f->b, SPLIT_TRAIN, 0, 2, 5, 4, 3, "<f4", 4, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fresh_builder(f);
        snprintf(path, sizeof path, "%s/%s", dir, bad[i].name);
        assert_int_equal(read_class(f, path, "x"), XE_FAIL);
        if (!strstr(f->e.msg, bad[i].want) || !strstr(f->e.msg, path))
            fail_msg("%s: '%s'", bad[i].name, f->e.msg);
    }
}

/* Feeds one encoded member to the keras gatherer through a temporary file. */
static int keras_feed(NpyFix *f, NpzKeras *k, const char *member, uint8_t *buf, size_t n)
{
    char path[128];
    XStream s;
    int rc;
    fix_path(f, member, path, sizeof path);
    if (fx_write(path, buf, n, 0))
        return -1;
    free(buf);
    rc = xstream_open_path(&s, path, &f->e);
    if (rc == XE_OK)
        rc = npz_keras_member(k, &s, member, &f->e);
    xstream_release(&s);
    return rc;
}

static int feed_images(NpyFix *f, NpzKeras *k, const char *member, const char *descr, uint64_t n,
                       int seed, int unit)
{
    uint8_t *buf;
    size_t len;
    if (fx_npy_encode_images(1, descr, FX_NPY_NHW, n, 4, 4, 1, seed, unit, &buf, &len))
        return -1;
    return keras_feed(f, k, member, buf, len);
}

static int feed_labels(NpyFix *f, NpzKeras *k, const char *member, const char *descr, int column,
                       uint64_t n, int nclasses, int seed)
{
    uint8_t *buf;
    size_t len;
    if (fx_npy_encode_labels(1, descr, column, n, nclasses, seed, &buf, &len))
        return -1;
    return keras_feed(f, k, member, buf, len);
}

static void check_labels(const Builder *b, Split sp, uint64_t n, int nclasses, int seed)
{
    assert_int_equal(b->split[sp].n, n);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(b->split[sp].lab[i], fx_npy_label(seed, i, nclasses));
}

static void test_npz_keras(void **state)
{
    NpyFix *f = *state;
    NpzKeras *k = npz_keras_new();
    assert_non_null(k);
    /* any order, names with or without .npy, any integer label dtype */
    assert_int_equal(feed_labels(f, k, "y_test.npy", ">u2", 1, 4, 5, 2), XE_OK);
    assert_int_equal(feed_images(f, k, "x_train.npy", "|u1", 7, 1, 0), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_train", "<i8", 0, 7, 5, 0), XE_OK);
    assert_int_equal(feed_images(f, k, "x_test", "<f8", 4, 3, 1), XE_OK);
    assert_int_equal(feed_images(f, k, "x_val.npy", ">i4", 2, 4, 0), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_val.npy", "|b1", 0, 2, 2, 1), XE_OK);
    assert_int_equal(feed_images(f, k, "x_valid.npy", "<u8", 3, 5, 0), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_valid.npy", "|i1", 1, 3, 5, 3), XE_OK);
    assert_int_equal(npz_keras_finish(k, &f->b, "mnist.npz", &f->e), XE_OK);
    npz_keras_free(k);
    assert_int_equal(builder_finish(&f->b, "mnist.npz", &f->e), XE_OK);
    assert_int_equal(f->b.nout, 5);
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "%d", i);
        assert_string_equal(f->b.out_names[i], name);
    }
    assert_int_equal(builder_count(&f->b, SPLIT_TRAIN), 7);
    assert_int_equal(builder_count(&f->b, SPLIT_VALID), 5);
    assert_int_equal(builder_count(&f->b, SPLIT_TEST), 4);
    check_labels(&f->b, SPLIT_TRAIN, 7, 5, 0);
    check_images(&f->b, SPLIT_TRAIN, 0, 7, 4, 4, 1, "|u1", 1, -1);
    check_images(&f->b, SPLIT_TEST, 0, 4, 4, 4, 1, "<f8", 3, -1);
    check_labels(&f->b, SPLIT_TEST, 4, 5, 2);
    /* valid first, then val: the set order */
    check_images(&f->b, SPLIT_VALID, 0, 3, 4, 4, 1, "<u8", 5, -1);
    check_images(&f->b, SPLIT_VALID, 3, 2, 4, 4, 1, ">i4", 4, -1);
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(f->b.split[SPLIT_VALID].lab[i], fx_npy_label(3, i, 5));
    for (uint64_t i = 0; i < 2; i++)
        assert_int_equal(f->b.split[SPLIT_VALID].lab[3 + i], fx_npy_label(1, i, 2));
}

/* Members gathered, then npz_keras_finish expected to fail with want. */
static void check_keras_finish(NpyFix *f, NpzKeras *k, const char *want)
{
    assert_int_equal(npz_keras_finish(k, &f->b, "mnist.npz", &f->e), XE_FAIL);
    npz_keras_free(k);
    if (!strstr(f->e.msg, want) || !strstr(f->e.msg, "'mnist.npz'"))
        fail_msg("message '%s' lacks '%s'", f->e.msg, want);
}

static void check_keras_member(NpyFix *f, int rc, NpzKeras *k, const char *member, const char *want)
{
    assert_int_equal(rc, XE_FAIL);
    npz_keras_free(k);
    if (!strstr(f->e.msg, want) || !strstr(f->e.msg, member))
        fail_msg("message '%s' lacks '%s' or '%s'", f->e.msg, want, member);
}

static void test_npz_keras_errors(void **state)
{
    NpyFix *f = *state;
    NpzKeras *k;
    uint8_t *buf;
    size_t len;

    k = npz_keras_new();
    assert_int_equal(feed_images(f, k, "x_train.npy", "|u1", 3, 0, 0), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_train.npy", "|u1", 0, 3, 2, 0), XE_OK);
    assert_int_equal(feed_images(f, k, "x_test.npy", "|u1", 3, 0, 0), XE_OK);
    check_keras_finish(f, k, "member x_test.npy has no matching y_test.npy");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(feed_labels(f, k, "y_train.npy", "|u1", 0, 3, 2, 0), XE_OK);
    check_keras_finish(f, k, "member y_train.npy has no matching x_train.npy");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(feed_images(f, k, "x_train.npy", "|u1", 6, 0, 0), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_train.npy", "|u1", 0, 5, 2, 0), XE_OK);
    check_keras_finish(f, k, "x_train.npy holds 6 images but y_train.npy holds 5 labels");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(feed_images(f, k, "x_test.npy", "|u1", 2, 0, 0), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_test.npy", "|u1", 0, 2, 2, 0), XE_OK);
    check_keras_finish(f, k, "no x_train.npy and y_train.npy members");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(feed_images(f, k, "x_train.npy", "|u1", 0, 0, 0), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_train.npy", "|u1", 0, 0, 2, 0), XE_OK);
    check_keras_finish(f, k, "the keras arrays hold no images");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(fx_npy_encode_labels(1, "<i2", 0, 3, 2, 0, &buf, &len), 0);
    buf[len - 1] = 0xff; /* the last label becomes negative */
    check_keras_member(f, keras_feed(f, k, "y_train.npy", buf, len), k, "y_train.npy",
                       "label -256 at element 2 is outside 0..65534");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(fx_npy_encode_labels(1, ">u4", 0, 3, 2, 0, &buf, &len), 0);
    buf[len - 3] = 1; /* 65536 */
    check_keras_member(f, keras_feed(f, k, "y_train.npy", buf, len), k, "y_train.npy",
                       "label 65536 at element 2 is outside 0..65534");

    fresh_builder(f);
    k = npz_keras_new();
    check_keras_member(f, feed_labels(f, k, "y_train.npy", "<f4", 0, 3, 2, 0), k, "y_train.npy",
                       "labels must be integers, not dtype '<f4'");

    fresh_builder(f);
    k = npz_keras_new();
    check_keras_member(f, feed_images(f, k, "y_train.npy", "|u1", 3, 0, 0), k, "y_train.npy",
                       "labels of shape (3, 4, 4) are not supported");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(feed_images(f, k, "x_train.npy", "|u1", 3, 0, 0), XE_OK);
    check_keras_member(f, feed_images(f, k, "x_train", "|u1", 3, 0, 0), k, "x_train",
                       "member given twice");

    fresh_builder(f);
    k = npz_keras_new();
    check_keras_member(f, feed_images(f, k, "z_train.npy", "|u1", 3, 0, 0), k, "z_train.npy",
                       "not a keras npz member");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(fx_npy_encode_images(1, "|u1", FX_NPY_NHW, 3, 4, 4, 1, 0, 0, &buf, &len), 0);
    check_keras_member(f, keras_feed(f, k, "x_train.npy", buf, len - 20), k, "x_train.npy",
                       "truncated: data ends in image 1 of 3");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(fx_npy_encode_images(1, "|u2", FX_NPY_NHW, 3, 4, 4, 1, 0, 0, &buf, &len), 0);
    check_keras_member(f, keras_feed(f, k, "x_train.npy", buf, len), k, "x_train.npy",
                       "dtype '|u2' is not supported");

    fresh_builder(f);
    k = npz_keras_new();
    assert_int_equal(feed_images(f, k, "x_train.npy", "|u1", 3, 0, 0), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_train.npy", "|u1", 0, 3, 2, 0), XE_OK);
    assert_int_equal(fx_npy_encode_images(1, "|u1", FX_NPY_FLAT, 2, 5, 5, 1, 0, 0, &buf, &len), 0);
    assert_int_equal(keras_feed(f, k, "x_test.npy", buf, len), XE_OK);
    assert_int_equal(feed_labels(f, k, "y_test.npy", "|u1", 0, 2, 2, 0), XE_OK);
    assert_int_equal(npz_keras_finish(k, &f->b, "mnist.npz", &f->e), XE_FAIL);
    npz_keras_free(k);
    assert_non_null(strstr(f->e.msg, "x_test.npy': image 0: image is 5x5, earlier images are 4x4"));
}

static void test_npz_is_keras_name(void **state)
{
    static const char *const yes[] = { "x_train", "y_train.npy", "x_test.npy", "y_test",
                                       "x_valid.npy", "y_valid", "x_val", "y_val.npy",
                                       "mnist/x_train.npy" };
    static const char *const no[] = { "x_train.npz", "cat", "cat.npy", "x_", "x_trains.npy",
                                      "z_train.npy", "X_train.npy", "x-train.npy", "",
                                      ".npy", "x_tes", "y_validation.npy" };
    (void)state;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!npz_is_keras_name(yes[i]))
            fail_msg("'%s' should be a keras name", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (npz_is_keras_name(no[i]))
            fail_msg("'%s' should not be a keras name", no[i]);
}

/* The keras fixture is a real zip: stored and deflated members that
 * libarchive reads back into the keras gatherer. */
static void test_npz_fixture_zip(void **state)
{
    static const int method[4] = { 0, 8, 8, 0 };
    NpyFix *f = *state;
    char path[128];
    uint8_t *zip;
    size_t zlen, nlocal = 0;
    struct archive *a;
    struct archive_entry *ent;
    NpzKeras *k = npz_keras_new();
    int members = 0;
    fix_path(f, "keras.npz", path, sizeof path);
    assert_int_equal(fx_npy_write_keras(path), 0);
    assert_int_equal(xfile_read_all(path, &zip, &zlen, 0, &f->e), XE_OK);
    for (size_t i = 0; i + 10 <= zlen; i++)
        if (memcmp(zip + i, "PK\3\4", 4) == 0) {
            assert_true(nlocal < 4);
            assert_int_equal(zip[i + 8] | zip[i + 9] << 8, method[nlocal]);
            nlocal++;
        }
    assert_int_equal(nlocal, 4);
    free(zip);
    a = archive_read_new();
    archive_read_support_format_zip(a);
    assert_int_equal(archive_read_open_filename(a, path, 1 << 14), ARCHIVE_OK);
    while (archive_read_next_header(a, &ent) == ARCHIVE_OK) {
        uint8_t *data;
        la_ssize_t n;
        size_t size = (size_t)archive_entry_size(ent);
        data = malloc(size + 1);
        assert_non_null(data);
        n = archive_read_data(a, data, size);
        assert_int_equal(n, (la_ssize_t)size);
        members++;
        assert_int_equal(keras_feed(f, k, archive_entry_pathname(ent), data, size), XE_OK);
    }
    archive_read_free(a);
    assert_int_equal(members, 4);
    assert_int_equal(npz_keras_finish(k, &f->b, path, &f->e), XE_OK);
    npz_keras_free(k);
    assert_int_equal(builder_finish(&f->b, path, &f->e), XE_OK);
    assert_int_equal(f->b.nout, FX_NPY_KERAS_CLASSES);
    assert_int_equal(builder_count(&f->b, SPLIT_TRAIN), FX_NPY_KERAS_TRAIN);
    assert_int_equal(builder_count(&f->b, SPLIT_TEST), FX_NPY_KERAS_TEST);
    check_images(&f->b, SPLIT_TRAIN, 0, FX_NPY_KERAS_TRAIN, 4, 4, 1, "|u1", 1, -1);
    check_labels(&f->b, SPLIT_TRAIN, FX_NPY_KERAS_TRAIN, FX_NPY_KERAS_CLASSES, 0);
    check_images(&f->b, SPLIT_TEST, 0, FX_NPY_KERAS_TEST, 4, 4, 1, "<f4", 2, -1);
    check_labels(&f->b, SPLIT_TEST, FX_NPY_KERAS_TEST, FX_NPY_KERAS_CLASSES, 1);
}

#define NPY_TEST(fn) cmocka_unit_test_setup_teardown(fn, npy_setup, npy_teardown)

const struct CMUnitTest test_npy_tests[] = {
    NPY_TEST(test_npy_flat_classes),
    NPY_TEST(test_npy_dtypes),
    NPY_TEST(test_npy_header_spellings),
    NPY_TEST(test_npy_gzip),
    NPY_TEST(test_npy_bad_headers),
    NPY_TEST(test_npy_bad_preamble),
    NPY_TEST(test_npy_bad_values),
    NPY_TEST(test_npy_bad_data_length),
    NPY_TEST(test_npy_every_prefix),
    NPY_TEST(test_npy_standard),
    NPY_TEST(test_npz_keras),
    NPY_TEST(test_npz_keras_errors),
    NPY_TEST(test_npz_is_keras_name),
    NPY_TEST(test_npz_fixture_zip),
};
const size_t test_npy_count = sizeof test_npy_tests / sizeof test_npy_tests[0];
