/* Unit tests for the image-folder reader: every PNG layout decoded to exact
 * pixels, split and class from the path, skipped files, each error message,
 * directory walks (symlinks, loops, permissions) and the fixture archives. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "data/readers.h"
#include "fixtures/fx_png.h"
#include "fixtures/fx_util.h"

static const IngestOpts no_opts; /* zeroed: no options, no validation split */


/* Checks image i of split s against a fixture image. */
static void expect_image(const Builder *b, Split s, size_t i, FxPngKind kind, int seed)
{
    size_t size = (size_t)b->h * (size_t)b->w * (size_t)b->c;
    const uint8_t *p = b->split[s].pix + i * size;
    assert_true(i < b->split[s].n);
    for (int y = 0; y < b->h; y++)
        for (int x = 0; x < b->w; x++)
            for (int ch = 0; ch < b->c; ch++) {
                uint8_t want = fx_png_expect(kind, seed, y, x, ch);
                uint8_t got = p[((size_t)y * (size_t)b->w + (size_t)x) * (size_t)b->c + (size_t)ch];
                if (got != want)
                    fail_msg("%s seed %d: pixel (%d, %d, %d) is %u, expected %u",
                             fx_png_kind_name(kind), seed, y, x, ch, got, want);
            }
}

static void add_fixture(Builder *b, const char *relpath, FxPngKind kind, int h, int w, int seed,
                        XErr *e)
{
    uint8_t *png;
    size_t n;
    int rc;
    assert_int_equal(fx_png_encode(kind, h, w, seed, &png, &n), 0);
    rc = imgfolder_add_png(b, relpath, png, n, NULL, e);
    free(png);
    if (rc != XE_OK)
        fail_msg("'%s': %s", relpath, e->msg);
}

static void test_imgfolder_png_layouts(void **state)
{
    (void)state;
    for (int k = 0; k < FX_PNG_KIND_COUNT; k++) {
        Builder b;
        XErr e = { 0 };
        builder_init(&b, &no_opts);
        add_fixture(&b, "cat/a.png", (FxPngKind)k, 5, 7, k + 3, &e);
        add_fixture(&b, "dog/b.png", (FxPngKind)k, 5, 7, k + 40, &e);
        assert_int_equal(builder_finish(&b, "mem", &e), XE_OK);
        assert_int_equal(b.h, 5);
        assert_int_equal(b.w, 7);
        assert_int_equal(b.c, fx_png_channels((FxPngKind)k));
        assert_int_equal(b.split[SPLIT_TRAIN].n, 2);
        assert_int_equal(b.nout, 2);
        assert_string_equal(b.out_names[0], "cat");
        assert_string_equal(b.out_names[1], "dog");
        assert_int_equal(b.split[SPLIT_TRAIN].lab[0], 0);
        assert_int_equal(b.split[SPLIT_TRAIN].lab[1], 1);
        expect_image(&b, SPLIT_TRAIN, 0, (FxPngKind)k, k + 3);
        expect_image(&b, SPLIT_TRAIN, 1, (FxPngKind)k, k + 40);
        builder_release(&b);
    }
}

/* Spot checks of the pattern itself, so that fx_png_expect cannot agree with
 * a reader by both being wrong the same way. */
static void test_imgfolder_png_known_values(void **state)
{
    Builder b;
    XErr e = { 0 };
    const uint8_t *p;
    (void)state;
    builder_init(&b, &no_opts);
    add_fixture(&b, "c/p.png", FX_PNG_PALETTE_TRNS, 2, 2, 0, &e);
    p = b.split[SPLIT_TRAIN].pix;
    /* indices (x + 2y) & 3: 0 1 / 2 3 -> red, green / blue, (17, 34, 51) */
    assert_memory_equal(p, ((const uint8_t[]){ 255, 0, 0, 0, 255, 0, 0, 0, 255, 17, 34, 51 }), 12);
    builder_release(&b);

    builder_init(&b, &no_opts);
    add_fixture(&b, "c/g.png", FX_PNG_GRAY16, 1, 3, 1, &e);
    /* 37 + 11x: the high bytes, not the low ones (~v) */
    assert_memory_equal(b.split[SPLIT_TRAIN].pix, ((const uint8_t[]){ 37, 48, 59 }), 3);
    builder_release(&b);

    builder_init(&b, &no_opts);
    add_fixture(&b, "c/b.png", FX_PNG_GRAY1, 1, 9, 0, &e);
    assert_memory_equal(b.split[SPLIT_TRAIN].pix,
                        ((const uint8_t[]){ 0, 255, 0, 255, 0, 255, 0, 255, 0 }), 9);
    builder_release(&b);
}

static void test_imgfolder_split_and_class(void **state)
{
    static const struct {
        const char *path;
        Split split;
        const char *cls;
    } cases[] = {
        { "cat/a.png", SPLIT_TRAIN, "cat" },
        { "./train/cat/a.png", SPLIT_TRAIN, "cat" },
        { "Training/dog/a.png", SPLIT_TRAIN, "dog" },
        { "VAL/cat/a.png", SPLIT_VALID, "cat" },
        { "valid/cat/a.png", SPLIT_VALID, "cat" },
        { "Validation/cat/a.png", SPLIT_VALID, "cat" },
        { "test/cat/a.png", SPLIT_TEST, "cat" },
        { "mydata/TESTING/dog/x.png", SPLIT_TEST, "dog" },
        { "test/extra/bird/a.png", SPLIT_TEST, "bird" },
        { "train/test/cat/a.png", SPLIT_TEST, "cat" },
        { "test/train/cat/a.png", SPLIT_TRAIN, "cat" },
        { "data//tests/cat/a.png", SPLIT_TRAIN, "cat" },
        { "/abs/cat/a.png", SPLIT_TRAIN, "cat" },
        { "cat/a.jpg", SPLIT_TRAIN, "cat" }, /* PNG data: the content decides */
    };
    Builder b;
    XErr e = { 0 };
    (void)state;
    builder_init(&b, &no_opts);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        SplitBuf *sb = &b.split[cases[i].split];
        size_t before = sb->n;
        add_fixture(&b, cases[i].path, FX_PNG_GRAY8, 2, 2, (int)i, &e);
        assert_int_equal(sb->n, before + 1);
        assert_string_equal(b.cls[sb->lab[sb->n - 1]].name, cases[i].cls);
    }
    assert_int_equal(b.ncls, 3);
    builder_release(&b);
}

static void test_imgfolder_class_order(void **state)
{
    Builder b;
    XErr e = { 0 };
    (void)state;
    builder_init(&b, &no_opts);
    add_fixture(&b, "zebra/1.png", FX_PNG_RGB8, 3, 3, 1, &e);
    add_fixture(&b, "ant/1.png", FX_PNG_RGB8, 3, 3, 2, &e);
    add_fixture(&b, "moth/1.png", FX_PNG_RGB8, 3, 3, 3, &e);
    add_fixture(&b, "ant/2.png", FX_PNG_RGB8, 3, 3, 4, &e);
    assert_int_equal(builder_finish(&b, "mem", &e), XE_OK);
    assert_int_equal(b.nout, 3);
    assert_string_equal(b.out_names[0], "ant");
    assert_string_equal(b.out_names[1], "moth");
    assert_string_equal(b.out_names[2], "zebra");
    assert_memory_equal(b.split[SPLIT_TRAIN].lab, ((const uint16_t[]){ 2, 0, 1, 0 }),
                        4 * sizeof(uint16_t));
    expect_image(&b, SPLIT_TRAIN, 3, FX_PNG_RGB8, 4);
    builder_release(&b);
}

static void test_imgfolder_skipped_files(void **state)
{
    static const char *const paths[] = {
        ".DS_Store", "cat/.hidden.png", ".git/cat/x.png", "__MACOSX/cat/._a.png",
        "__MACOSX/cat/a.png", "README", "README.md", "cat/notes.txt", "labels.CSV", "meta.json",
        "cat/Thumbs.db", "cat/desktop.ini", "LICENSE", "train/", "", "./",
    };
    static const char junk[] = "not an image at all";
    Builder b;
    XErr e = { 0 };
    (void)state;
    builder_init(&b, &no_opts);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int rc = imgfolder_add_png(&b, paths[i], (const uint8_t *)junk, sizeof junk, NULL, &e);
        if (rc != XE_OK)
            fail_msg("'%s' not skipped: %s", paths[i], e.msg);
    }
    assert_int_equal(b.ncls, 0);
    assert_int_equal(b.split[SPLIT_TRAIN].n, 0);
    builder_release(&b);
}

/* Adds data under relpath to a fresh builder and expects an error. */
static void expect_add_error(const char *relpath, const void *data, size_t n, const char *where,
                             const char *text)
{
    Builder b;
    XErr e = { 0 };
    builder_init(&b, &no_opts);
    unit_expect_error(imgfolder_add_png(&b, relpath, data, n, where, &e), &e, text);
    assert_int_equal(b.split[SPLIT_TRAIN].n, 0);
    builder_release(&b);
}

static void test_imgfolder_bad_files(void **state)
{
    static const uint8_t jpeg[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1 };
    static const char gif[] = "GIF89a\1\0\1\0", bmp[] = "BM\0\0\0\0\0\0\0\0",
                      webp[] = "RIFF\0\0\0\0WEBPVP8 ", tiff[] = "II*\0\10\0\0\0",
                      garbage[] = "just some text that is not a PNG";
    uint8_t *png;
    size_t n;
    static const struct {
        const char *path;
        const void *data;
        size_t n;
        const char *text;
    } cases[] = {
        { "cat/1.jpg", jpeg, sizeof jpeg, "'cat/1.jpg': JPEG is not supported (PNG only)" },
        { "cat/1.JPEG", garbage, sizeof garbage,
          "'cat/1.JPEG': JPEG is not supported (PNG only)" },
        { "cat/1.gif", gif, sizeof gif, "'cat/1.gif': GIF is not supported (PNG only)" },
        { "cat/1.bmp", bmp, sizeof bmp, "'cat/1.bmp': BMP is not supported (PNG only)" },
        { "cat/1.webp", webp, sizeof webp, "'cat/1.webp': WebP is not supported (PNG only)" },
        { "cat/1.tif", tiff, sizeof tiff, "'cat/1.tif': TIFF is not supported (PNG only)" },
        { "cat/1.png", garbage, sizeof garbage, "'cat/1.png': not a PNG file (bad signature)" },
        { "cat/1.png", NULL, 0, "'cat/1.png': not a PNG file (empty)" },
        { "cat/1.png", jpeg, sizeof jpeg,
          "'cat/1.png': not a PNG file: the data is JPEG (PNG only)" },
        { "cat/1.dat", garbage, sizeof garbage, "'cat/1.dat': not a PNG image (PNG only)" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_add_error(cases[i].path, cases[i].data, cases[i].n, NULL, cases[i].text);
    expect_add_error("cat/1.jpg", jpeg, sizeof jpeg, "'data.zip:cat/1.jpg'",
                     "'data.zip:cat/1.jpg': JPEG is not supported (PNG only)");
    assert_int_equal(fx_png_encode(FX_PNG_RGB8, 4, 4, 1, &png, &n), 0);
    expect_add_error("x.png", png, n, NULL,
                     "'x.png': image is not inside a class directory "
                     "(expected <class>/<image>.png)");
    expect_add_error("train/x.png", png, n, NULL,
                     "'train/x.png': image is not inside a class directory");
    png[17] ^= 1;
    expect_add_error("cat/1.png", png, n, NULL, "'cat/1.png': bad PNG: IHDR: CRC error");
    png[17] ^= 1;
    png[n - 1] ^= 1; /* IEND's CRC: only reading to the end catches it */
    expect_add_error("cat/1.png", png, n, NULL, "'cat/1.png': bad PNG: IEND: CRC error");
    free(png);
}

/* Every cut of a valid PNG, IEND included, is an error naming the file. */
static void test_imgfolder_truncated(void **state)
{
    uint8_t *png;
    size_t n, ntrunc = 0;
    (void)state;
    assert_int_equal(fx_png_encode(FX_PNG_RGB_INTERLACED, 9, 9, 5, &png, &n), 0);
    for (size_t cut = 8; cut < n; cut++) {
        Builder b;
        XErr e = { 0 };
        builder_init(&b, &no_opts);
        unit_expect_error(imgfolder_add_png(&b, "cat/t.png", png, cut, NULL, &e), &e,
                     "'cat/t.png': bad PNG: ");
        ntrunc += strstr(e.msg, "truncated at byte") != NULL;
        assert_int_equal(b.split[SPLIT_TRAIN].n, 0);
        builder_release(&b);
    }
    assert_true(ntrunc > (n - 8) / 2);
    free(png);
}

static void test_imgfolder_size_limits(void **state)
{
    Builder b;
    XErr e = { 0 };
    uint8_t *png;
    size_t n;
    (void)state;
    assert_int_equal(fx_png_encode(FX_PNG_GRAY8, 1, XFER_MAX_SIDE + 1, 0, &png, &n), 0);
    expect_add_error("cat/wide.png", png, n, NULL,
                     "'cat/wide.png': image is 1x4097, larger than 4096 pixels on a side");
    free(png);
    /* the builder's check, named by imgfolder's where */
    builder_init(&b, &no_opts);
    add_fixture(&b, "cat/1.png", FX_PNG_RGB8, 8, 8, 0, &e);
    assert_int_equal(fx_png_encode(FX_PNG_RGB8, 6, 6, 0, &png, &n), 0);
    unit_expect_error(imgfolder_add_png(&b, "cat/2.png", png, n, NULL, &e), &e,
                 "'cat/2.png': image is 6x6, earlier images are 8x8");
    free(png);
    builder_release(&b);
}

/* Checks the standard tree as read into b, in walk order. */
static void expect_tree(Builder *b)
{
    XErr e = { 0 };
    size_t next[SPLIT_COUNT] = { 0 };
    assert_int_equal(builder_finish(b, "tree", &e), XE_OK);
    assert_int_equal(b->split[SPLIT_TRAIN].n, 6);
    assert_int_equal(b->split[SPLIT_VALID].n, 0);
    assert_int_equal(b->split[SPLIT_TEST].n, 4);
    assert_int_equal(b->nout, 2);
    assert_string_equal(b->out_names[0], "cat");
    assert_string_equal(b->out_names[1], "dog");
    assert_int_equal(b->h, FX_PNG_TREE_SIDE);
    assert_int_equal(b->w, FX_PNG_TREE_SIDE);
    assert_int_equal(b->c, 3);
    for (size_t i = 0; i < fx_png_tree_count; i++) {
        const FxPngFile *f = &fx_png_tree_files[i];
        size_t k = next[f->split]++;
        assert_int_equal(b->split[f->split].lab[k], f->label);
        expect_image(b, (Split)f->split, k, FX_PNG_RGB8, f->seed);
    }
}

static void test_imgfolder_read_dir_tree(void **state)
{
    char *dir = unit_tmpdir();
    Builder b;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(fx_png_write_tree(dir), 0);
    builder_init(&b, &no_opts);
    if (imgfolder_read_dir(&b, dir, &e) != XE_OK)
        fail_msg("%s", e.msg);
    expect_tree(&b);
    builder_release(&b);
    fx_rmtree(dir);
    free(dir);
}

/* Reads root/sub and expects an error with "'root/sub/<path>': <text>", or
 * with text alone when path is NULL. */
static void expect_dir_error(const char *root, const char *sub, const char *path, const char *text)
{
    char dir[4096], want[4096 + 256];
    Builder b;
    XErr e = { 0 };
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    if (path)
        snprintf(want, sizeof want, "'%s/%s': %s", dir, path, text);
    else
        snprintf(want, sizeof want, "%s", text);
    builder_init(&b, &no_opts);
    unit_expect_error(imgfolder_read_dir(&b, dir, &e), &e, want);
    builder_release(&b);
}

static void test_imgfolder_read_dir_standard(void **state)
{
    char *dir = unit_tmpdir(), path[4096], want[4200];
    Builder b;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(fx_png_standard(dir), 0);

    builder_init(&b, &no_opts);
    snprintf(path, sizeof path, "%s/folder", dir);
    assert_int_equal(imgfolder_read_dir(&b, path, &e), XE_OK);
    expect_tree(&b);
    builder_release(&b);

    builder_init(&b, &no_opts);
    snprintf(path, sizeof path, "%s/emptyclass", dir);
    assert_int_equal(imgfolder_read_dir(&b, path, &e), XE_OK);
    assert_int_equal(builder_finish(&b, path, &e), XE_OK);
    assert_int_equal(b.nout, 2);
    assert_string_equal(b.out_names[0], "cat");
    assert_string_equal(b.out_names[1], "dog");
    assert_int_equal(b.split[SPLIT_TRAIN].n, 4);
    builder_release(&b);

    expect_dir_error(dir, "badsize", "cat/1.png", "image is 6x6, earlier images are 8x8");
    expect_dir_error(dir, "notpng", "cat/1.png", "not a PNG file (bad signature)");
    expect_dir_error(dir, "truncated", "cat/1.png", "bad PNG: truncated at byte");
    expect_dir_error(dir, "corrupt", "cat/1.png", "bad PNG: IHDR: CRC error");
    expect_dir_error(dir, "jpeg", "cat/1.jpg", "JPEG is not supported (PNG only)");
    expect_dir_error(dir, "toplevel", "x.png", "image is not inside a class directory");
    expect_dir_error(dir, "png", "gray-alpha.png", "image is not inside a class directory");
    snprintf(want, sizeof want, "'%s/nopng': no PNG images found", dir);
    expect_dir_error(dir, "nopng", NULL, want);
    snprintf(want, sizeof want, "'%s/missing': No such file or directory", dir);
    expect_dir_error(dir, "missing", NULL, want);
    snprintf(want, sizeof want, "'%s/png/rgb8.png': not a directory", dir);
    expect_dir_error(dir, "png/rgb8.png", NULL, want);
    fx_rmtree(dir);
    free(dir);
}

static void test_imgfolder_read_dir_symlinks(void **state)
{
    char *dir = unit_tmpdir(), path[4096], want[4200];
    Builder b;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(fx_png_write_tree(dir), 0);
    /* a symlinked file and a symlinked class directory are followed */
    snprintf(path, sizeof path, "%s/train/dog/3.png", dir);
    assert_int_equal(symlink("../cat/0.png", path), 0);
    snprintf(path, sizeof path, "%s/train/bird", dir);
    assert_int_equal(symlink("dog", path), 0);
    builder_init(&b, &no_opts);
    assert_int_equal(imgfolder_read_dir(&b, dir, &e), XE_OK);
    assert_int_equal(builder_finish(&b, dir, &e), XE_OK);
    assert_int_equal(b.nout, 3);
    assert_string_equal(b.out_names[0], "bird");
    assert_int_equal(b.split[SPLIT_TRAIN].n, 6 + 4 + 1);
    expect_image(&b, SPLIT_TRAIN, 0, FX_PNG_RGB8, 8);  /* train/bird/0.png = dog/0.png */
    expect_image(&b, SPLIT_TRAIN, 3, FX_PNG_RGB8, 5);  /* train/bird/3.png = cat/0.png */
    expect_image(&b, SPLIT_TRAIN, 10, FX_PNG_RGB8, 5); /* train/dog/3.png = cat/0.png */
    builder_release(&b);

    snprintf(path, sizeof path, "%s/train/cat/loop", dir);
    assert_int_equal(symlink("..", path), 0);
    builder_init(&b, &no_opts);
    snprintf(want, sizeof want, "'%s/train/cat/loop': directory loop", dir);
    unit_expect_error(imgfolder_read_dir(&b, dir, &e), &e, want);
    builder_release(&b);
    assert_int_equal(unlink(path), 0);

    snprintf(path, sizeof path, "%s/train/cat/dangling.png", dir);
    assert_int_equal(symlink("nowhere.png", path), 0);
    builder_init(&b, &no_opts);
    xerr_clear(&e);
    snprintf(want, sizeof want, "'%s': No such file or directory", path);
    unit_expect_error(imgfolder_read_dir(&b, dir, &e), &e, want);
    builder_release(&b);
    fx_rmtree(dir);
    free(dir);
}

static void test_imgfolder_read_dir_unreadable(void **state)
{
    char *dir = unit_tmpdir(), path[4096], want[4200];
    Builder b;
    XErr e = { 0 };
    (void)state;
    if (geteuid() == 0) {
        fx_rmtree(dir);
        free(dir);
        skip(); /* root reads everything */
    }
    assert_int_equal(fx_png_write_tree(dir), 0);
    snprintf(path, sizeof path, "%s/train/dog/1.png", dir);
    assert_int_equal(chmod(path, 0), 0);
    builder_init(&b, &no_opts);
    snprintf(want, sizeof want, "'%s': Permission denied", path);
    unit_expect_error(imgfolder_read_dir(&b, dir, &e), &e, want);
    builder_release(&b);
    assert_int_equal(chmod(path, 0644), 0);
    snprintf(path, sizeof path, "%s/test/cat", dir);
    assert_int_equal(chmod(path, 0), 0);
    builder_init(&b, &no_opts);
    xerr_clear(&e);
    snprintf(want, sizeof want, "'%s': Permission denied", path);
    unit_expect_error(imgfolder_read_dir(&b, dir, &e), &e, want);
    builder_release(&b);
    assert_int_equal(chmod(path, 0755), 0);
    fx_rmtree(dir);
    free(dir);
}

/* Reads an archive written by fx_png_write_archive, member by member. */
static void read_archive(Builder *b, const char *path)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ent;
    XErr e = { 0 };
    assert_non_null(a);
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    assert_int_equal(archive_read_open_filename(a, path, 4096), ARCHIVE_OK);
    while (archive_read_next_header(a, &ent) == ARCHIVE_OK) {
        size_t n = (size_t)archive_entry_size(ent);
        uint8_t *data = malloc(n + 1);
        char where[4200];
        assert_non_null(data);
        if (archive_entry_filetype(ent) == AE_IFREG) {
            assert_int_equal(archive_read_data(a, data, n), (la_ssize_t)n);
            snprintf(where, sizeof where, "'%s:%s'", path, archive_entry_pathname(ent));
            if (imgfolder_add_png(b, archive_entry_pathname(ent), data, n, where, &e) != XE_OK)
                fail_msg("%s", e.msg);
        }
        free(data);
    }
    archive_read_free(a);
}

static void test_imgfolder_archives(void **state)
{
    char *dir = unit_tmpdir(), path[4096];
    (void)state;
    for (int zip = 0; zip < 2; zip++) {
        Builder b;
        snprintf(path, sizeof path, "%s/folder.%s", dir, zip ? "zip" : "tar.gz");
        assert_int_equal(fx_png_write_archive(path, "folder", zip), 0);
        builder_init(&b, &no_opts);
        read_archive(&b, path);
        expect_tree(&b);
        builder_release(&b);
    }
    fx_rmtree(dir);
    free(dir);
}

const struct CMUnitTest test_imgfolder_tests[] = {
    cmocka_unit_test(test_imgfolder_png_layouts),
    cmocka_unit_test(test_imgfolder_png_known_values),
    cmocka_unit_test(test_imgfolder_split_and_class),
    cmocka_unit_test(test_imgfolder_class_order),
    cmocka_unit_test(test_imgfolder_skipped_files),
    cmocka_unit_test(test_imgfolder_bad_files),
    cmocka_unit_test(test_imgfolder_truncated),
    cmocka_unit_test(test_imgfolder_size_limits),
    cmocka_unit_test(test_imgfolder_read_dir_tree),
    cmocka_unit_test(test_imgfolder_read_dir_standard),
    cmocka_unit_test(test_imgfolder_read_dir_symlinks),
    cmocka_unit_test(test_imgfolder_read_dir_unreadable),
    cmocka_unit_test(test_imgfolder_archives),
};
const size_t test_imgfolder_count = sizeof test_imgfolder_tests / sizeof test_imgfolder_tests[0];
