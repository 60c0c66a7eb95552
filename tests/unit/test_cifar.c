/* Unit tests for CIFAR-10/100 ingest: the tarballs (member order, planar to
 * HWC pixels, class names from the name files, --coarse, --classes), raw
 * batch files, member names, and each bad input's message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/builder.h"
#include "data/ingest.h"
#include "data/readers.h"
#include "fixtures/fx_idx.h"
#include "fixtures/fx_util.h"

#define CIFAR_IMG 3072
#define REC10 (CIFAR_IMG + 1)

typedef struct CifarFix {
    char dir[64];
    char paths[16][128]; /* sub()'s results */
    int npaths;
    IngestOpts opt;
    Builder b;
    XErr e;
} CifarFix;

static const char *const cifar10_names[10] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
};

static int cifar_setup(void **state)
{
    CifarFix *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/xfer-cifar-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->opt.valid_fraction = 0;
    *state = f;
    return 0;
}

static int cifar_teardown(void **state)
{
    CifarFix *f = *state;
    builder_release(&f->b);
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

/* A path in the test's directory, valid until teardown. */
static char *sub(CifarFix *f, const char *name)
{
    char tmp[sizeof f->paths[0]];
    assert_true(f->npaths < 16);
    assert_true((size_t)snprintf(tmp, sizeof tmp, "%s/%s", f->dir, name) < sizeof tmp);
    return memcpy(f->paths[f->npaths++], tmp, sizeof tmp);
}

/* Reads paths into a fresh builder with f->opt. */
static int ingest(CifarFix *f, char **paths, int n, IngestFormat fmt, IngestFormat *found)
{
    IngestFormat dummy;
    builder_release(&f->b);
    builder_init(&f->b, &f->opt);
    xerr_clear(&f->e);
    return ingest_read(&f->b, paths, n, fmt, found ? found : &dummy, &f->e);
}

static int ingest_one(CifarFix *f, const char *path, IngestFormat fmt, IngestFormat *found)
{
    char *p = strdup(path);
    int rc;
    assert_non_null(p);
    rc = ingest(f, &p, 1, fmt, found);
    free(p);
    return rc;
}


/* Image k of split s is fixture record g (planar in the file, HWC here). */
static void expect_image(const Builder *b, Split s, size_t k, uint32_t g, int label)
{
    const uint8_t *p = b->split[s].pix + k * CIFAR_IMG;
    if (b->split[s].lab[k] != label)
        fail_msg("%s image %zu: label %d, expected %d", split_names[s], k, b->split[s].lab[k], label);
    for (uint32_t c = 0; c < 3; c++)
        for (uint32_t y = 0; y < 32; y++)
            for (uint32_t x = 0; x < 32; x++)
                if (p[(y * 32 + x) * 3 + c] != fx_pixel(g, 1024 * c + y * 32 + x))
                    fail_msg("%s image %zu (record %u) y %u x %u channel %u: %u, expected %u", split_names[s], k,
                             g, y, x, c, p[(y * 32 + x) * 3 + c], fx_pixel(g, 1024 * c + y * 32 + x));
}

static void expect_shape(const Builder *b, uint64_t train, uint64_t test, int classes)
{
    assert_int_equal(b->h, 32);
    assert_int_equal(b->w, 32);
    assert_int_equal(b->c, 3);
    assert_int_equal(b->nout, classes);
    assert_int_equal(builder_count(b, SPLIT_TRAIN), train);
    assert_int_equal(builder_count(b, SPLIT_VALID), 0);
    assert_int_equal(builder_count(b, SPLIT_TEST), test);
}

/* A tar (gz: compressed) of n regular members. */
static void write_tar(const char *path, int gz, int n, const char *const *names, const void *const *data,
                      const size_t *sizes)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (gz)
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *ent = archive_entry_new();
        archive_entry_set_pathname(ent, names[i]);
        archive_entry_set_size(ent, (la_int64_t)sizes[i]);
        archive_entry_set_filetype(ent, AE_IFREG);
        archive_entry_set_perm(ent, 0644);
        assert_int_equal(archive_write_header(a, ent), ARCHIVE_OK);
        if (sizes[i])
            assert_int_equal(archive_write_data(a, data[i], sizes[i]), (la_ssize_t)sizes[i]);
        archive_entry_free(ent);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *b;
    long len;
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    rewind(fp);
    b = malloc((size_t)len + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return b;
}

/* Train images come in member order: batches 1, 3, 4, 5, 2. */
static void test_cifar10_tarball(void **state)
{
    CifarFix *f = *state;
    char *tgz = sub(f, "cifar-10-binary.tar.gz");
    static const uint32_t member_batch[5] = { 1, 3, 4, 5, 2 };
    IngestFormat found = FORMAT_AUTO;
    assert_int_equal(fx_cifar_tarball(tgz, 10, 3, 0), 0);
    if (ingest_one(f, tgz, FORMAT_AUTO, &found) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(found, FORMAT_CIFAR10);
    expect_shape(&f->b, 15, 3, 10);
    for (int k = 0; k < 10; k++)
        assert_string_equal(f->b.out_names[k], cifar10_names[k]);
    for (uint32_t k = 0; k < 15; k++) {
        uint32_t g = (member_batch[k / 3] - 1) * 3 + k % 3;
        expect_image(&f->b, SPLIT_TRAIN, k, g, (int)(g % 10));
    }
    for (uint32_t i = 0; i < 3; i++)
        expect_image(&f->b, SPLIT_TEST, i, 15 + i, (int)((15 + i) % 10));
}

/* Tarballs from memory read like files (the fuzzers' path). */
static void test_cifar10_tarball_memory(void **state)
{
    CifarFix *f = *state;
    char *tgz = sub(f, "c10.tar.gz");
    size_t n;
    uint8_t *mem;
    IngestFormat found = FORMAT_AUTO;
    assert_int_equal(fx_cifar_tarball(tgz, 10, 2, 0), 0);
    mem = read_file(tgz, &n);
    builder_init(&f->b, &f->opt);
    if (ingest_archive(&f->b, "mem.tar.gz", mem, n, FORMAT_AUTO, &found, &f->e) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(found, FORMAT_CIFAR10);
    assert_int_equal(builder_finish(&f->b, "mem.tar.gz", &f->e), XE_OK);
    expect_shape(&f->b, 10, 2, 10);
    expect_image(&f->b, SPLIT_TRAIN, 2, 4, 4);   /* batch 3, record 0 */
    expect_image(&f->b, SPLIT_TRAIN, 9, 3, 3);   /* batch 2, record 1 */
    expect_image(&f->b, SPLIT_TEST, 1, 11, 1);
    free(mem);
}

static void test_cifar100_fine(void **state)
{
    CifarFix *f = *state;
    char *tgz = sub(f, "cifar-100-binary.tar.gz");
    IngestFormat found = FORMAT_AUTO;
    assert_int_equal(fx_cifar_tarball(tgz, 100, 20, 0), 0);
    if (ingest_one(f, tgz, FORMAT_AUTO, &found) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(found, FORMAT_CIFAR100);
    expect_shape(&f->b, 100, 20, 100);
    /* the names come from fine_label_names.txt, not the built-in list */
    for (int k = 0; k < 100; k++) {
        char want[16];
        snprintf(want, sizeof want, "fine%02d", k);
        assert_string_equal(f->b.out_names[k], want);
    }
    for (uint32_t i = 0; i < 100; i++)
        expect_image(&f->b, SPLIT_TRAIN, i, i, (int)i);
    for (uint32_t i = 0; i < 20; i++)
        expect_image(&f->b, SPLIT_TEST, i, 100 + i, (int)i);
}

static void test_cifar100_coarse(void **state)
{
    CifarFix *f = *state;
    char *tgz = sub(f, "cifar-100-binary.tar.gz");
    assert_int_equal(fx_cifar_tarball(tgz, 100, 20, 0), 0);
    f->opt.coarse = 1;
    if (ingest_one(f, tgz, FORMAT_AUTO, NULL) != XE_OK)
        fail_msg("%s", f->e.msg);
    expect_shape(&f->b, 100, 20, 20);
    for (int k = 0; k < 20; k++) {
        char want[16];
        snprintf(want, sizeof want, "coarse%02d", k);
        assert_string_equal(f->b.out_names[k], want);
    }
    for (uint32_t i = 0; i < 100; i++)
        expect_image(&f->b, SPLIT_TRAIN, i, i, (int)(i % 20));
    for (uint32_t i = 0; i < 20; i++)
        expect_image(&f->b, SPLIT_TEST, i, 100 + i, (int)(i % 20));
}

/* --classes may use the names read from the archive's name file. */
static void test_cifar100_classes_by_file_name(void **state)
{
    CifarFix *f = *state;
    char *tgz = sub(f, "cifar-100-binary.tar.gz"), *cls[2] = { "fine07", "fine03" };
    assert_int_equal(fx_cifar_tarball(tgz, 100, 20, 0), 0);
    f->opt.classes = cls;
    f->opt.nclasses = 2;
    if (ingest_one(f, tgz, FORMAT_AUTO, NULL) != XE_OK)
        fail_msg("%s", f->e.msg);
    expect_shape(&f->b, 2, 2, 2);
    assert_string_equal(f->b.out_names[0], "fine07");
    assert_string_equal(f->b.out_names[1], "fine03");
    expect_image(&f->b, SPLIT_TRAIN, 0, 3, 1);
    expect_image(&f->b, SPLIT_TRAIN, 1, 7, 0);
    expect_image(&f->b, SPLIT_TEST, 0, 103, 1);
    expect_image(&f->b, SPLIT_TEST, 1, 107, 0);
}

static void test_cifar_member_kind(void **state)
{
    Split s = SPLIT_VALID;
    (void)state;
    assert_int_equal(cifar_member_kind("cifar-10-batches-bin/data_batch_1.bin", 10, 0, &s), 1);
    assert_int_equal(s, SPLIT_TRAIN);
    assert_int_equal(cifar_member_kind("cifar-10-batches-bin/data_batch_5.bin", 10, 0, &s), 1);
    assert_int_equal(s, SPLIT_TRAIN);
    assert_int_equal(cifar_member_kind("cifar-10-batches-bin/test_batch.bin", 10, 0, &s), 1);
    assert_int_equal(s, SPLIT_TEST);
    assert_int_equal(cifar_member_kind("cifar-10-batches-bin/batches.meta.txt", 10, 0, &s), 2);
    assert_int_equal(s, SPLIT_TRAIN);
    assert_int_equal(cifar_member_kind("cifar-10-batches-bin/readme.html", 10, 0, &s), 0);
    assert_int_equal(cifar_member_kind("data_batch_2.bin", 10, 0, &s), 1);
    assert_int_equal(cifar_member_kind("cifar-100-binary/train.bin", 10, 0, &s), 0);
    assert_int_equal(cifar_member_kind("cifar-100-binary/train.bin", 100, 0, &s), 1);
    assert_int_equal(s, SPLIT_TRAIN);
    assert_int_equal(cifar_member_kind("cifar-100-binary/test.bin", 100, 1, &s), 1);
    assert_int_equal(s, SPLIT_TEST);
    assert_int_equal(cifar_member_kind("cifar-100-binary/fine_label_names.txt", 100, 0, &s), 2);
    assert_int_equal(cifar_member_kind("cifar-100-binary/fine_label_names.txt", 100, 1, &s), 0);
    assert_int_equal(cifar_member_kind("cifar-100-binary/coarse_label_names.txt", 100, 1, &s), 2);
    assert_int_equal(cifar_member_kind("cifar-100-binary/coarse_label_names.txt", 100, 0, &s), 0);
    assert_int_equal(cifar_member_kind("cifar-10-batches-bin/data_batch_1.bin", 100, 0, &s), 0);
    assert_int_equal(cifar_member_kind("cifar-10-batches-bin/batches.meta.txt", 100, 0, &s), 0);
}

/* Raw batch files: a directory (README ignored), or the files themselves. */
static void test_cifar10_raw_batches(void **state)
{
    CifarFix *f = *state;
    char *d = sub(f, "cifar-10-batches-bin"), *paths[3];
    IngestFormat found = FORMAT_AUTO;
    assert_int_equal(fx_mkdir(d), 0);
    assert_int_equal(fx_cifar_batch(fx_path(d, "data_batch_1.bin"), 10, 4, 0, 10), 0);
    assert_int_equal(fx_cifar_batch(fx_path(d, "data_batch_2.bin"), 10, 6, 4, 10), 0);
    assert_int_equal(fx_cifar_batch(fx_path(d, "test_batch.bin"), 10, 3, 10, 10), 0);
    assert_int_equal(fx_write(fx_path(d, "readme.html"), "<html></html>", 13, 0), 0);
    if (ingest_one(f, d, FORMAT_AUTO, &found) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(found, FORMAT_CIFAR10);
    expect_shape(&f->b, 10, 3, 10);
    assert_string_equal(f->b.out_names[3], "cat");
    for (uint32_t i = 0; i < 10; i++)
        expect_image(&f->b, SPLIT_TRAIN, i, i, (int)i);
    for (uint32_t i = 0; i < 3; i++)
        expect_image(&f->b, SPLIT_TEST, i, 10 + i, (int)i);
    /* the files, test batch first: splits come from the names */
    assert_non_null(paths[0] = strdup(fx_path(d, "test_batch.bin")));
    assert_non_null(paths[1] = strdup(fx_path(d, "data_batch_2.bin")));
    assert_non_null(paths[2] = strdup(fx_path(d, "data_batch_1.bin")));
    if (ingest(f, paths, 3, FORMAT_AUTO, &found) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(found, FORMAT_CIFAR10);
    expect_shape(&f->b, 10, 3, 10);
    for (uint32_t i = 0; i < 6; i++)
        expect_image(&f->b, SPLIT_TRAIN, i, 4 + i, (int)(4 + i));
    for (uint32_t i = 0; i < 4; i++)
        expect_image(&f->b, SPLIT_TRAIN, 6 + i, i, (int)i);
    expect_image(&f->b, SPLIT_TEST, 2, 12, 2);
    for (int i = 0; i < 3; i++)
        free(paths[i]);
}

static void test_cifar100_raw_batches(void **state)
{
    CifarFix *f = *state;
    char *d = sub(f, "cifar-100-binary");
    IngestFormat found = FORMAT_AUTO;
    assert_int_equal(fx_mkdir(d), 0);
    assert_int_equal(fx_cifar_batch(fx_path(d, "train.bin"), 100, 40, 0, 20), 0);
    assert_int_equal(fx_cifar_batch(fx_path(d, "test.bin"), 100, 5, 40, 20), 0);
    f->opt.coarse = 1;
    if (ingest_one(f, d, FORMAT_AUTO, &found) != XE_OK)
        fail_msg("%s", f->e.msg);
    assert_int_equal(found, FORMAT_CIFAR100);
    expect_shape(&f->b, 40, 5, 20);
    /* no name files: the official coarse names */
    assert_string_equal(f->b.out_names[0], "aquatic_mammals");
    assert_string_equal(f->b.out_names[19], "vehicles_2");
    for (uint32_t i = 0; i < 40; i++)
        expect_image(&f->b, SPLIT_TRAIN, i, i, (int)(i % 20));
    for (uint32_t i = 0; i < 5; i++)
        expect_image(&f->b, SPLIT_TEST, i, 40 + i, (int)((40 + i) % 20));
}

static void test_cifar_bad_record_size(void **state)
{
    CifarFix *f = *state;
    char *std = sub(f, "std"), *tar = sub(f, "badsize.tar");
    size_t n;
    uint8_t *batch;
    assert_int_equal(fx_cifar_standard(std), 0);
    unit_expect_error(ingest_one(f, fx_path(std, "badsize"), FORMAT_AUTO, NULL), &f->e,
                 "9119 bytes, not a multiple of the CIFAR-10 record size 3073 (truncated record 2)");
    assert_non_null(strstr(f->e.msg, "badsize/data_batch_1.bin"));
    /* inside an archive, the member's size is checked before reading */
    batch = read_file(fx_path(std, "badsize/data_batch_1.bin"), &n);
    {
        const char *names[1] = { "cifar-10-batches-bin/data_batch_1.bin" };
        const void *data[1] = { batch };
        write_tar(tar, 0, 1, names, data, &n);
    }
    unit_expect_error(ingest_one(f, tar, FORMAT_AUTO, NULL), &f->e,
                 "badsize.tar:cifar-10-batches-bin/data_batch_1.bin': 9119 bytes, not a multiple of the CIFAR-10 "
                 "record size 3073");
    free(batch);
}

static void test_cifar_label_out_of_range(void **state)
{
    CifarFix *f = *state;
    char *std = sub(f, "std"), *d = sub(f, "c100");
    uint8_t *b;
    size_t n;
    assert_int_equal(fx_cifar_standard(std), 0);
    unit_expect_error(ingest_one(f, fx_path(std, "badlabel"), FORMAT_AUTO, NULL), &f->e,
                 "record 1: label 12 out of range 0..9");
    assert_non_null(strstr(f->e.msg, "badlabel/data_batch_1.bin"));
    /* CIFAR-100: a coarse label of 20 */
    assert_int_equal(fx_mkdir(d), 0);
    assert_int_equal(fx_cifar_batch(fx_path(d, "train.bin"), 100, 3, 0, 100), 0);
    b = read_file(fx_path(d, "train.bin"), &n);
    b[2 * (CIFAR_IMG + 2)] = 20;
    assert_int_equal(fx_write(fx_path(d, "train.bin"), b, n, 0), 0);
    unit_expect_error(ingest_one(f, d, FORMAT_AUTO, NULL), &f->e, "record 2: coarse label 20 out of range 0..19");
    free(b);
}

static void test_cifar_truncated_tarball(void **state)
{
    CifarFix *f = *state;
    char *std = sub(f, "std"), *tgz = sub(f, "cut.tar.gz");
    size_t n;
    uint8_t *b;
    assert_int_equal(fx_cifar_standard(std), 0);
    unit_expect_error(ingest_one(f, fx_path(std, "truncated.tar.gz"), FORMAT_AUTO, NULL), &f->e, "truncated");
    assert_non_null(strstr(f->e.msg, "truncated.tar.gz"));
    /* cut inside the gzip stream of a small tarball, at several places */
    assert_int_equal(fx_cifar_tarball(tgz, 10, 2, 0), 0);
    b = read_file(tgz, &n);
    for (size_t keep = 40; keep < n; keep += n / 7) {
        assert_int_equal(fx_write(tgz, b, keep, 0), 0);
        if (ingest_one(f, tgz, FORMAT_AUTO, NULL) == XE_OK)
            fail_msg("a tarball cut to %zu of %zu bytes was read", keep, n);
        if (!strstr(f->e.msg, "truncated"))
            fail_msg("cut to %zu of %zu bytes: \"%s\"", keep, n, f->e.msg);
    }
    free(b);
}

static void test_cifar_no_dataset_members(void **state)
{
    CifarFix *f = *state;
    char *tar = sub(f, "empty.tar");
    const char *names[2] = { "docs/readme.html", "docs/notes.txt" };
    const void *data[2] = { "<html></html>", "notes\n" };
    size_t sizes[2] = { 13, 6 };
    write_tar(tar, 0, 2, names, data, sizes);
    unit_expect_error(ingest_one(f, tar, FORMAT_AUTO, NULL), &f->e, "no dataset members");
    assert_non_null(strstr(f->e.msg, "empty.tar"));
}

/* A name file whose count disagrees with the variant. */
static void test_cifar_bad_names_file(void **state)
{
    CifarFix *f = *state;
    char *tgz = sub(f, "names.tar.gz"), *d = sub(f, "raw");
    size_t n;
    uint8_t *batch;
    static const char meta[] = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
    assert_int_equal(fx_mkdir(d), 0);
    assert_int_equal(fx_cifar_batch(fx_path(d, "data_batch_1.bin"), 10, 10, 0, 10), 0);
    batch = read_file(fx_path(d, "data_batch_1.bin"), &n);
    {
        const char *names[2] = { "c/batches.meta.txt", "c/data_batch_1.bin" };
        const void *data[2] = { meta, batch };
        size_t sizes[2] = { sizeof meta - 1, n };
        write_tar(tgz, 1, 2, names, data, sizes);
    }
    unit_expect_error(ingest_one(f, tgz, FORMAT_AUTO, NULL), &f->e, "9 class names, expected 10");
    assert_non_null(strstr(f->e.msg, "batches.meta.txt"));
    free(batch);
}

/* --format cifar100 on CIFAR-10 (and the reverse) fails and says why. */
static void test_cifar_wrong_variant(void **state)
{
    CifarFix *f = *state;
    char *c10 = sub(f, "cifar-10-binary.tar.gz"), *c100 = sub(f, "cifar-100-binary.tar.gz");
    assert_int_equal(fx_cifar_tarball(c10, 10, 2, 0), 0);
    assert_int_equal(fx_cifar_tarball(c100, 100, 20, 0), 0);
    unit_expect_error(ingest_one(f, c10, FORMAT_CIFAR100, NULL), &f->e, "cifar-10-binary.tar.gz");
    assert_int_equal(f->b.split[SPLIT_TRAIN].n, 0);
    assert_non_null(strstr(f->e.msg, "no CIFAR-100 batches (train.bin, test.bin): it holds CIFAR-10 batches, "
                                     "use --format cifar10"));
    unit_expect_error(ingest_one(f, c100, FORMAT_CIFAR10, NULL), &f->e, "cifar-100-binary.tar.gz");
    assert_int_equal(f->b.split[SPLIT_TRAIN].n, 0);
    assert_non_null(strstr(f->e.msg, "no CIFAR-10 batches (data_batch_N.bin, test_batch.bin): it holds CIFAR-100 "
                                     "batches, use --format cifar100"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, cifar_setup, cifar_teardown)
const struct CMUnitTest test_cifar_tests[] = {
    T(test_cifar10_tarball),
    T(test_cifar10_tarball_memory),
    T(test_cifar100_fine),
    T(test_cifar100_coarse),
    T(test_cifar100_classes_by_file_name),
    cmocka_unit_test(test_cifar_member_kind),
    T(test_cifar10_raw_batches),
    T(test_cifar100_raw_batches),
    T(test_cifar_bad_record_size),
    T(test_cifar_label_out_of_range),
    T(test_cifar_truncated_tarball),
    T(test_cifar_no_dataset_members),
    T(test_cifar_bad_names_file),
    T(test_cifar_wrong_variant),
};
const size_t test_cifar_count = sizeof test_cifar_tests / sizeof test_cifar_tests[0];
#undef T
