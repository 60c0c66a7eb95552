/* Unit tests for IDX ingest through ingest_read: every pixel and label of the
 * MNIST-style fixtures (gzip and raw, directory or files), the stratified
 * validation split, the ingest options, and each bad input's message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image_resize.h>

#include "data/builder.h"
#include "data/ingest.h"
#include "data/readers.h"
#include "data/taskfile.h"
#include "fixtures/fx_idx.h"
#include "fixtures/fx_util.h"

#define SIDE 8
#define IMG (SIDE * SIDE)

typedef struct IdxFix {
    char dir[64];
    char paths[16][128]; /* sub()'s results */
    int npaths;
    IngestOpts opt[3];
    Builder b[3];
    XErr e;
} IdxFix;

static int idx_setup(void **state)
{
    IdxFix *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/xfer-idx-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    for (int k = 0; k < 3; k++)
        f->opt[k].valid_fraction = 0;
    *state = f;
    return 0;
}

static int idx_teardown(void **state)
{
    IdxFix *f = *state;
    for (int k = 0; k < 3; k++)
        builder_release(&f->b[k]);
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

/* A path in the test's directory, valid until teardown. */
static char *sub(IdxFix *f, const char *name)
{
    char tmp[sizeof f->paths[0]];
    assert_true(f->npaths < 16);
    assert_true((size_t)snprintf(tmp, sizeof tmp, "%s/%s", f->dir, name) < sizeof tmp);
    return memcpy(f->paths[f->npaths++], tmp, sizeof tmp);
}

/* Initialises builder k with opt[k] and reads paths into it. */
static int ingest(IdxFix *f, int k, char **paths, int n, IngestFormat *found)
{
    IngestFormat dummy;
    builder_release(&f->b[k]);
    builder_init(&f->b[k], &f->opt[k]);
    xerr_clear(&f->e);
    return ingest_read(&f->b[k], paths, n, FORMAT_AUTO, found ? found : &dummy, &f->e);
}

static int ingest_one(IdxFix *f, int k, const char *path)
{
    char *p = strdup(path);
    int rc;
    assert_non_null(p);
    rc = ingest(f, k, &p, 1, NULL);
    free(p);
    return rc;
}


/* Split s holds n images, image i being fixture image i + base, label i % classes. */
static void expect_split(const Builder *b, Split s, uint32_t n, uint32_t base, int classes)
{
    const SplitBuf *sb = &b->split[s];
    assert_int_equal(sb->n, n);
    for (uint32_t i = 0; i < n; i++) {
        if (sb->lab[i] != i % (uint32_t)classes)
            fail_msg("%s image %u: label %u, expected %u", split_names[s], i, sb->lab[i], i % (uint32_t)classes);
        for (uint32_t j = 0; j < IMG; j++)
            if (sb->pix[(size_t)i * IMG + j] != fx_pixel(i + base, j))
                fail_msg("%s image %u pixel %u: %u, expected %u", split_names[s], i, j,
                         sb->pix[(size_t)i * IMG + j], fx_pixel(i + base, j));
    }
}

/* Writes builder k's task file into <dir>/tasks and returns its checksum. */
static void write_task(IdxFix *f, int k, const char *name, char sha[65], char **path)
{
    char *tasks = sub(f, "tasks"), *file = NULL, check[65];
    if (taskfile_write(&f->b[k], tasks, name, &file, sha, &f->e) != XE_OK)
        fail_msg("taskfile_write: %s", f->e.msg);
    assert_int_equal(strlen(sha), 64);
    assert_int_equal(taskfile_checksum(fx_path(tasks, file), check, &f->e), XE_OK);
    assert_string_equal(check, sha);
    if (path)
        assert_non_null(*path = strdup(fx_path(tasks, file)));
    free(file);
}

/* Big-endian IDX label file with the given labels. */
static void write_labels(const char *path, const uint8_t *lab, uint32_t n)
{
    uint8_t b[8 + 256] = { 0, 0, 8, 1, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    assert_true(n <= 256);
    memcpy(b + 8, lab, n);
    assert_int_equal(fx_write(path, b, 8 + n, 0), 0);
}

static void append(const char *path, const char *text)
{
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void check_idx_dir(IdxFix *f, int gz)
{
    char *d = sub(f, gz ? "gz" : "raw");
    char *p = strdup(d);
    IngestFormat found = FORMAT_AUTO;
    assert_int_equal(fx_idx_dir(d, 20, 10, 10, gz), 0);
    assert_non_null(p);
    if (ingest(f, 0, &p, 1, &found) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(found, FORMAT_IDX);
    assert_int_equal(builder_count(&f->b[0], SPLIT_TRAIN), 20);
    assert_int_equal(builder_count(&f->b[0], SPLIT_VALID), 0);
    assert_int_equal(builder_count(&f->b[0], SPLIT_TEST), 10);
    assert_int_equal(f->b[0].h, SIDE);
    assert_int_equal(f->b[0].w, SIDE);
    assert_int_equal(f->b[0].c, 1);
    assert_int_equal(f->b[0].nout, 10);
    for (int k = 0; k < 10; k++) {
        char want[4];
        snprintf(want, sizeof want, "%d", k);
        assert_string_equal(f->b[0].out_names[k], want);
    }
    expect_split(&f->b[0], SPLIT_TRAIN, 20, 0, 10);
    expect_split(&f->b[0], SPLIT_TEST, 10, 1000, 10);
    free(p);
}

static void test_idx_dir_gz(void **state)
{
    check_idx_dir(*state, 1);
}

static void test_idx_dir_raw(void **state)
{
    check_idx_dir(*state, 0);
}

/* 10 classes x 4: half of each class moves to validation, chosen by the seed. */
static void test_idx_valid_split_stratified(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "mnist"), *path = NULL, sha[65];
    TaskFile t;
    size_t nv = 0;
    assert_int_equal(fx_idx_dir(d, 40, 10, 10, 1), 0);
    for (int k = 0; k < 3; k++) {
        f->opt[k].valid_fraction = 0.5;
        f->opt[k].seed = k < 2 ? 7 : 8;
        if (ingest_one(f, k, d) != XE_OK)
            fail_msg("%s", f->e.msg);
        assert_int_equal(builder_count(&f->b[k], SPLIT_TRAIN), 20);
        assert_int_equal(builder_count(&f->b[k], SPLIT_VALID), 20);
        assert_int_equal(builder_count(&f->b[k], SPLIT_TEST), 10);
    }
    {
        int tr[10] = { 0 }, va[10] = { 0 };
        const Builder *b = &f->b[0];
        /* the pool keeps its read order; to_valid marks the moved records */
        expect_split(b, SPLIT_TRAIN, 40, 0, 10);
        for (int i = 0; i < 40; i++)
            (b->to_valid[i] ? va : tr)[b->split[SPLIT_TRAIN].lab[i]]++;
        for (int k = 0; k < 10; k++) {
            assert_int_equal(tr[k], 2);
            assert_int_equal(va[k], 2);
        }
    }
    assert_memory_equal(f->b[0].to_valid, f->b[1].to_valid, 40);
    assert_memory_not_equal(f->b[0].to_valid, f->b[2].to_valid, 40);
    /* the stored file: moved records, in pool order, make the valid split */
    write_task(f, 0, "split", sha, &path);
    assert_int_equal(taskfile_open(&t, path, &f->e), XE_OK);
    assert_int_equal(t.n[SPLIT_TRAIN], 20);
    assert_int_equal(t.n[SPLIT_VALID], 20);
    assert_int_equal(t.n[SPLIT_TEST], 10);
    assert_int_equal(t.classes, 10);
    for (uint32_t i = 0, nt = 0; i < 40; i++) {
        int v = f->b[0].to_valid[i];
        size_t k = v ? nv++ : nt++;
        Split s = v ? SPLIT_VALID : SPLIT_TRAIN;
        assert_int_equal(taskfile_label(&t, s, k), i % 10);
        for (uint32_t j = 0; j < IMG; j++)
            assert_int_equal(t.images[s][k * IMG + j], fx_pixel(i, j));
    }
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(taskfile_label(&t, SPLIT_TEST, i), i % 10);
        assert_int_equal(t.images[SPLIT_TEST][(size_t)i * IMG + 5], fx_pixel(i + 1000, 5));
    }
    taskfile_close(&t);
    free(path);
}

static void test_idx_raw_and_gz_same_checksum(void **state)
{
    IdxFix *f = *state;
    char *raw = sub(f, "raw"), *gz = sub(f, "gz"), sha_raw[65], sha_gz[65];
    assert_int_equal(fx_idx_dir(raw, 30, 10, 10, 0), 0);
    assert_int_equal(fx_idx_dir(gz, 30, 10, 10, 1), 0);
    f->opt[0].valid_fraction = f->opt[1].valid_fraction = 0.4;
    f->opt[0].seed = f->opt[1].seed = 3;
    assert_int_equal(ingest_one(f, 0, raw), XE_OK);
    assert_int_equal(ingest_one(f, 1, gz), XE_OK);
    write_task(f, 0, "raw", sha_raw, NULL);
    write_task(f, 1, "gz", sha_gz, NULL);
    assert_string_equal(sha_raw, sha_gz);
}

/* The four files given as paths, in any order, read like their directory. */
static void test_idx_files_as_paths(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "mnist"), sha_dir[65], sha_files[65];
    char *paths[4];
    static const char *const names[4] = {
        "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    };
    IngestFormat found = FORMAT_AUTO;
    assert_int_equal(fx_idx_dir(d, 20, 10, 10, 1), 0);
    for (int i = 0; i < 4; i++)
        assert_non_null(paths[i] = strdup(fx_path(d, names[i])));
    assert_int_equal(ingest_one(f, 0, d), XE_OK);
    if (ingest(f, 1, paths, 4, &found) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(found, FORMAT_IDX);
    expect_split(&f->b[1], SPLIT_TRAIN, 20, 0, 10);
    expect_split(&f->b[1], SPLIT_TEST, 10, 1000, 10);
    write_task(f, 0, "dir", sha_dir, NULL);
    write_task(f, 1, "files", sha_files, NULL);
    assert_string_equal(sha_dir, sha_files);
    /* the training pair alone: no test split */
    if (ingest(f, 2, paths + 1, 1, NULL) == XE_OK)
        fail_msg("images without labels were accepted");
    unit_expect_error(XE_FAIL, &f->e, "no matching labels file");
    {
        char *pair[2] = { paths[3], paths[1] };
        assert_int_equal(ingest(f, 2, pair, 2, NULL), XE_OK);
        assert_int_equal(builder_count(&f->b[2], SPLIT_TRAIN), 20);
        assert_int_equal(builder_count(&f->b[2], SPLIT_TEST), 0);
        expect_split(&f->b[2], SPLIT_TRAIN, 20, 0, 10);
    }
    for (int i = 0; i < 4; i++)
        free(paths[i]);
}

/* --classes 3,1: only those, relabelled 0 and 1 in the order given. */
static void test_idx_classes_subset(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "mnist"), *cls[2] = { "3", "1" };
    static const uint32_t train_src[4] = { 1, 3, 11, 13 }, test_src[2] = { 1, 3 };
    const Builder *b = &f->b[0];
    assert_int_equal(fx_idx_dir(d, 20, 10, 10, 1), 0);
    f->opt[0].classes = cls;
    f->opt[0].nclasses = 2;
    if (ingest_one(f, 0, d) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(b->nout, 2);
    assert_string_equal(b->out_names[0], "3");
    assert_string_equal(b->out_names[1], "1");
    assert_int_equal(builder_count(b, SPLIT_TRAIN), 4);
    assert_int_equal(builder_count(b, SPLIT_TEST), 2);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(b->split[SPLIT_TRAIN].lab[i], train_src[i] % 10 == 3 ? 0 : 1);
        for (uint32_t j = 0; j < IMG; j++)
            assert_int_equal(b->split[SPLIT_TRAIN].pix[(size_t)i * IMG + j], fx_pixel(train_src[i], j));
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(b->split[SPLIT_TEST].lab[i], test_src[i] == 3 ? 0 : 1);
        for (uint32_t j = 0; j < IMG; j++)
            assert_int_equal(b->split[SPLIT_TEST].pix[(size_t)i * IMG + j], fx_pixel(test_src[i] + 1000, j));
    }
    /* a class the source does not have */
    {
        char *bad[2] = { "3", "12" };
        f->opt[1].classes = bad;
        f->opt[1].nclasses = 2;
        unit_expect_error(ingest_one(f, 1, d), &f->e, "no class '12'");
    }
}

/* Index of the fixture image (0..n-1) equal to img, -1 if none. */
static int find_image(const uint8_t *img, uint32_t n, uint32_t base)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = 0;
        while (j < IMG && img[j] == fx_pixel(i + base, j))
            j++;
        if (j == IMG)
            return (int)i;
    }
    return -1;
}

static void test_idx_limit_per_class(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "mnist");
    assert_int_equal(fx_idx_dir(d, 40, 10, 10, 0), 0);
    for (int k = 0; k < 3; k++) {
        f->opt[k].limit_per_class = 2;
        f->opt[k].seed = k < 2 ? 11 : 12;
        if (ingest_one(f, k, d) != XE_OK)
            fail_msg("%s", f->e.msg);
        assert_int_equal(builder_count(&f->b[k], SPLIT_TRAIN), 20);
        assert_int_equal(builder_count(&f->b[k], SPLIT_TEST), 10); /* the test split is not limited */
    }
    {
        const SplitBuf *tr = &f->b[0].split[SPLIT_TRAIN];
        int per[10] = { 0 }, used[40] = { 0 };
        for (size_t i = 0; i < tr->n; i++) {
            int src = find_image(tr->pix + i * IMG, 40, 0);
            if (src < 0)
                fail_msg("kept image %zu is no fixture image", i);
            assert_int_equal(src % 10, tr->lab[i]);
            assert_int_equal(used[src]++, 0);
            per[tr->lab[i]]++;
        }
        for (int k = 0; k < 10; k++)
            assert_int_equal(per[k], 2);
    }
    /* seeded: the same seed keeps the same images, another seed others */
    assert_memory_equal(f->b[0].split[SPLIT_TRAIN].pix, f->b[1].split[SPLIT_TRAIN].pix, 20 * IMG);
    assert_memory_equal(f->b[0].split[SPLIT_TRAIN].lab, f->b[1].split[SPLIT_TRAIN].lab, 20 * sizeof(uint16_t));
    assert_memory_not_equal(f->b[0].split[SPLIT_TRAIN].pix, f->b[2].split[SPLIT_TRAIN].pix, 20 * IMG);
    expect_split(&f->b[0], SPLIT_TEST, 10, 1000, 10);
}

static void test_idx_resize(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "mnist");
    uint8_t src[IMG], want[16];
    const Builder *b = &f->b[0];
    assert_int_equal(fx_idx_dir(d, 20, 10, 10, 1), 0);
    f->opt[0].resize_h = f->opt[0].resize_w = 4;
    if (ingest_one(f, 0, d) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(b->h, 4);
    assert_int_equal(b->w, 4);
    assert_int_equal(b->c, 1);
    assert_int_equal(builder_count(b, SPLIT_TRAIN), 20);
    assert_int_equal(builder_count(b, SPLIT_TEST), 10);
    for (int k = 0; k < 2; k++) {
        Split s = k ? SPLIT_TEST : SPLIT_TRAIN;
        uint32_t n = k ? 10 : 20, base = k ? 1000 : 0;
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = 0; j < IMG; j++)
                src[j] = fx_pixel(i + base, j);
            assert_int_equal(stbir_resize_uint8(src, SIDE, SIDE, 0, want, 4, 4, 0, 1), 1);
            assert_int_equal(b->split[s].lab[i], i % 10);
            assert_memory_equal(b->split[s].pix + (size_t)i * 16, want, 16);
        }
    }
}

/* --grayscale on a 1-channel source changes nothing. */
static void test_idx_grayscale_noop(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "mnist"), sha_plain[65], sha_gray[65];
    assert_int_equal(fx_idx_dir(d, 20, 10, 10, 1), 0);
    f->opt[1].grayscale = 1;
    assert_int_equal(ingest_one(f, 0, d), XE_OK);
    assert_int_equal(ingest_one(f, 1, d), XE_OK);
    assert_int_equal(f->b[1].c, 1);
    expect_split(&f->b[1], SPLIT_TRAIN, 20, 0, 10);
    expect_split(&f->b[1], SPLIT_TEST, 10, 1000, 10);
    write_task(f, 0, "plain", sha_plain, NULL);
    write_task(f, 1, "gray", sha_gray, NULL);
    assert_string_equal(sha_plain, sha_gray);
}

static void test_idx_truncated(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "std");
    assert_int_equal(fx_idx_standard(d), 0);
    unit_expect_error(ingest_one(f, 0, fx_path(d, "truncated")), &f->e, "truncated");
    assert_non_null(strstr(f->e.msg, "train-images-idx3-ubyte"));
    /* the sixth image is the one cut short */
    assert_non_null(strstr(f->e.msg, "offset 336"));
}

static void test_idx_bad_magic(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "badmagic");
    uint8_t bad[16] = { 0x12, 0x34, 8, 3, 0, 0, 0, 20, 0, 0, 0, 8, 0, 0, 0, 8 };
    uint8_t i32[16] = { 0, 0, 0x0C, 3, 0, 0, 0, 20, 0, 0, 0, 8, 0, 0, 0, 8 };
    assert_int_equal(fx_idx_dir(d, 20, 10, 10, 0), 0);
    assert_int_equal(fx_write(fx_path(d, "train-images-idx3-ubyte"), bad, sizeof bad, 0), 0);
    unit_expect_error(ingest_one(f, 0, d), &f->e, "not an IDX file (magic 12 34 08 03)");
    assert_non_null(strstr(f->e.msg, "train-images-idx3-ubyte"));
    /* a valid IDX type other than unsigned bytes */
    assert_int_equal(fx_write(fx_path(d, "train-images-idx3-ubyte"), i32, sizeof i32, 0), 0);
    unit_expect_error(ingest_one(f, 1, d), &f->e, "element type 0x0c is not supported");
    /* the standard fixture: type byte 0x07, no IDX type at all */
    {
        char *s = sub(f, "std");
        assert_int_equal(fx_idx_standard(s), 0);
        unit_expect_error(ingest_one(f, 2, fx_path(s, "badmagic")), &f->e, "element type 0x07 is not supported");
        assert_non_null(strstr(f->e.msg, "badmagic/train-images-idx3-ubyte"));
    }
}

static void test_idx_count_mismatch(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "std");
    assert_int_equal(fx_idx_standard(d), 0);
    unit_expect_error(ingest_one(f, 0, fx_path(d, "mismatch")), &f->e, "has 19 labels");
    assert_non_null(strstr(f->e.msg, "20 images"));
    assert_non_null(strstr(f->e.msg, "train-labels-idx1-ubyte"));
}

static void test_idx_trailing_data(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "std"), *t = sub(f, "tail");
    assert_int_equal(fx_idx_standard(d), 0);
    unit_expect_error(ingest_one(f, 0, fx_path(d, "trailing")), &f->e, "continues");
    assert_non_null(strstr(f->e.msg, "t10k-labels-idx1-ubyte"));
    /* after the images */
    assert_int_equal(fx_idx_dir(t, 20, 10, 10, 0), 0);
    append(fx_path(t, "t10k-images-idx3-ubyte"), "x");
    unit_expect_error(ingest_one(f, 1, t), &f->e, "data continues after the 10 images");
    assert_non_null(strstr(f->e.msg, "t10k-images-idx3-ubyte"));
}

static void test_idx_corrupt_gzip(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "std");
    assert_int_equal(fx_idx_standard(d), 0);
    unit_expect_error(ingest_one(f, 0, fx_path(d, "corruptgz")), &f->e, "corrupt gzip");
    assert_non_null(strstr(f->e.msg, "train-images-idx3-ubyte.gz"));
}

static void test_idx_labels_without_images(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "mnist");
    assert_int_equal(fx_idx_dir(d, 20, 10, 10, 1), 0);
    assert_int_equal(unlink(fx_path(d, "t10k-images-idx3-ubyte.gz")), 0);
    unit_expect_error(ingest_one(f, 0, d), &f->e, "no matching images file");
    assert_non_null(strstr(f->e.msg, "t10k-labels-idx1-ubyte.gz"));
}

/* Labels 0, 1 and 3: class '2' exists (labels index classes) but is empty. */
static void test_idx_empty_class(void **state)
{
    IdxFix *f = *state;
    char *d = sub(f, "gap");
    static const uint8_t train[8] = { 0, 1, 3, 0, 1, 3, 0, 1 }, test[4] = { 0, 1, 3, 0 };
    assert_int_equal(fx_mkdir(d), 0);
    assert_int_equal(fx_idx_images(fx_path(d, "train-images-idx3-ubyte"), 8, SIDE, SIDE, 0, 0), 0);
    write_labels(fx_path(d, "train-labels-idx1-ubyte"), train, 8);
    assert_int_equal(fx_idx_images(fx_path(d, "t10k-images-idx3-ubyte"), 4, SIDE, SIDE, 1000, 0), 0);
    write_labels(fx_path(d, "t10k-labels-idx1-ubyte"), test, 4);
    unit_expect_error(ingest_one(f, 0, d), &f->e, "class '2' has no training images");
    /* without the gap it is fine, and --classes can leave the gap out */
    {
        char *cls[3] = { "0", "1", "3" };
        f->opt[1].classes = cls;
        f->opt[1].nclasses = 3;
        if (ingest_one(f, 1, d) != XE_OK)
            fail_msg("%s", f->e.msg);
        assert_int_equal(f->b[1].nout, 3);
        assert_string_equal(f->b[1].out_names[2], "3");
        assert_int_equal(f->b[1].split[SPLIT_TRAIN].lab[2], 2);
        assert_int_equal(builder_count(&f->b[1], SPLIT_TRAIN), 8);
        assert_int_equal(builder_count(&f->b[1], SPLIT_TEST), 4);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, idx_setup, idx_teardown)
const struct CMUnitTest test_idx_tests[] = {
    T(test_idx_dir_gz),
    T(test_idx_dir_raw),
    T(test_idx_valid_split_stratified),
    T(test_idx_raw_and_gz_same_checksum),
    T(test_idx_files_as_paths),
    T(test_idx_classes_subset),
    T(test_idx_limit_per_class),
    T(test_idx_resize),
    T(test_idx_grayscale_noop),
    T(test_idx_truncated),
    T(test_idx_bad_magic),
    T(test_idx_count_mismatch),
    T(test_idx_trailing_data),
    T(test_idx_corrupt_gzip),
    T(test_idx_labels_without_images),
    T(test_idx_empty_class),
};
const size_t test_idx_count = sizeof test_idx_tests / sizeof test_idx_tests[0];
#undef T
