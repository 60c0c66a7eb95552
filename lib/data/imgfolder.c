/* Image-folder reader: PNG files in one directory per class, the split taken
 * from an ancestor directory (train/val/test), decoded from memory with
 * libpng and pushed into the Builder one image at a time. */
#include "data/readers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"

/* Deepest directory nesting imgfolder_read_dir follows (symlinks included). */
#define IMGFOLDER_MAX_DEPTH 16

static const uint8_t png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

/* One path segment, not NUL-terminated. */
typedef struct PathSeg {
    const char *s;
    size_t n;
} PathSeg;

/* Moves to the next segment of a '/'-separated path, skipping empty and "."
 * segments (archive members often start with "./"). Returns 0 at the end. */
static int path_next_seg(const char **p, PathSeg *seg)
{
    const char *q = *p;
    for (;;) {
        const char *end;
        while (*q == '/')
            q++;
        if (!*q) {
            *p = q;
            return 0;
        }
        end = strchr(q, '/');
        if (!end)
            end = q + strlen(q);
        if (end - q == 1 && q[0] == '.') {
            q = end;
            continue;
        }
        seg->s = q;
        seg->n = (size_t)(end - q);
        *p = end;
        return 1;
    }
}

static int seg_is(const PathSeg *seg, const char *word)
{
    return strlen(word) == seg->n && strncasecmp(seg->s, word, seg->n) == 0;
}

/* Split named by a directory, or -1 when the name is not a split name. */
static int imgfolder_split_of(const PathSeg *seg)
{
    if (seg_is(seg, "train") || seg_is(seg, "training"))
        return SPLIT_TRAIN;
    if (seg_is(seg, "val") || seg_is(seg, "valid") || seg_is(seg, "validation"))
        return SPLIT_VALID;
    if (seg_is(seg, "test") || seg_is(seg, "testing"))
        return SPLIT_TEST;
    return -1;
}

/* Extension of a segment (after the last '.', not counting a leading one),
 * compared case-insensitively with ext. */
static int seg_has_ext(const PathSeg *seg, const char *ext)
{
    size_t n = strlen(ext);
    return seg->n > n + 1 && seg->s[seg->n - n - 1] == '.' &&
           strncasecmp(seg->s + seg->n - n, ext, n) == 0;
}

static int seg_has_prefix(const PathSeg *seg, const char *prefix)
{
    size_t n = strlen(prefix);
    return seg->n >= n && strncasecmp(seg->s, prefix, n) == 0;
}

/* 1 for files that are obviously not images and are skipped silently: hidden
 * files and directories, __MACOSX/ resource forks, directories themselves,
 * documentation, label lists and OS clutter. */
static int imgfolder_skip_path(const char *relpath)
{
    static const char *const doc_ext[] = { "txt", "csv", "tsv", "json", "md", "yaml", "yml",
                                           "xml", "html", "htm", "py", "ipynb", "pdf" };
    static const char *const doc_prefix[] = { "readme", "license", "licence", "copying" };
    const char *p = relpath;
    PathSeg seg, last = { NULL, 0 };
    size_t len = strlen(relpath);
    if (len == 0 || relpath[len - 1] == '/')
        return 1;
    while (path_next_seg(&p, &seg)) {
        if (seg.s[0] == '.' || seg_is(&seg, "__MACOSX"))
            return 1;
        last = seg;
    }
    if (!last.s)
        return 1;
    if (seg_is(&last, "Thumbs.db") || seg_is(&last, "desktop.ini"))
        return 1;
    for (size_t i = 0; i < sizeof doc_ext / sizeof doc_ext[0]; i++)
        if (seg_has_ext(&last, doc_ext[i]))
            return 1;
    for (size_t i = 0; i < sizeof doc_prefix / sizeof doc_prefix[0]; i++)
        if (seg_has_prefix(&last, doc_prefix[i]))
            return 1;
    return 0;
}

/* The image format other than PNG that data (or failing that, the file
 * name) shows, for the "not supported" message; NULL when unknown. */
static const char *imgfolder_other_format(const PathSeg *base, const uint8_t *d, size_t n)
{
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return "JPEG";
    if (n >= 4 && memcmp(d, "GIF8", 4) == 0)
        return "GIF";
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return "WebP";
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
        return "TIFF";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return "BMP";
    if (seg_has_ext(base, "jpg") || seg_has_ext(base, "jpeg") || seg_has_ext(base, "jpe"))
        return "JPEG";
    if (seg_has_ext(base, "gif"))
        return "GIF";
    if (seg_has_ext(base, "webp"))
        return "WebP";
    if (seg_has_ext(base, "tif") || seg_has_ext(base, "tiff"))
        return "TIFF";
    if (seg_has_ext(base, "bmp"))
        return "BMP";
    return NULL;
}

/* Decoding state shared with the libpng callbacks; the buffers live here
 * rather than in locals so that they survive a longjmp. */
typedef struct PngDecode {
    const uint8_t *data;
    size_t n, pos;
    char msg[200];     /* libpng's error message */
    uint8_t *pix;      /* (h, w, c) */
    png_bytep *rows;   /* (h,) */
} PngDecode;

static void png_on_error(png_structp png, png_const_charp msg)
{
    PngDecode *d = png_get_error_ptr(png);
    snprintf(d->msg, sizeof d->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_on_read(png_structp png, png_bytep buf, size_t len)
{
    PngDecode *d = png_get_io_ptr(png);
    if (len > d->n - d->pos) {
        char msg[96];
        snprintf(msg, sizeof msg, "truncated at byte %zu", d->n);
        png_error(png, msg);
    }
    memcpy(buf, d->data + d->pos, len);
    d->pos += len;
}

/* The libpng calls of imgfolder_decode_png, which catches their longjmp. */
static int imgfolder_png_read(png_structp png, png_infop info, PngDecode *d, int *h, int *w,
                              int *c, const char *where, XErr *e)
{
    png_uint_32 width, height;
    int depth, color;
    size_t rowbytes;
    png_set_read_fn(png, d, png_on_read);
    /* Skip every ancillary chunk but tRNS: text, ICC profiles and the like
     * are not needed, and are not buffered (an sPLT may claim 2 GB). */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_read_info(png, info);
    width = png_get_image_width(png, info);
    height = png_get_image_height(png, info);
    if (width > XFER_MAX_SIDE || height > XFER_MAX_SIDE)
        return xerr_set(e, XE_FAIL, "%s: image is %ux%u, larger than %d pixels on a side", where,
                        (unsigned)height, (unsigned)width, XFER_MAX_SIDE);
    depth = png_get_bit_depth(png, info);
    color = png_get_color_type(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (depth == 16)
        png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    *c = png_get_channels(png, info);
    if (png_get_bit_depth(png, info) != 8 || (*c != 1 && *c != 3))
        return xerr_set(e, XE_FAIL, "%s: unsupported PNG layout (%d channels of %d bits)", where,
                        *c, png_get_bit_depth(png, info));
    rowbytes = (size_t)width * (size_t)*c;
    if (png_get_rowbytes(png, info) != rowbytes)
        return xerr_set(e, XE_FAIL, "%s: unexpected PNG row size", where);
    d->pix = malloc(rowbytes * height);
    d->rows = malloc(sizeof *d->rows * height);
    if (!d->pix || !d->rows)
        return xerr_set(e, XE_FAIL, "%s: out of memory", where);
    for (png_uint_32 y = 0; y < height; y++)
        d->rows[y] = d->pix + (size_t)y * rowbytes;
    png_read_image(png, d->rows);
    /* Read to IEND, so that a file cut after its image data is still caught. */
    png_read_end(png, NULL);
    *h = (int)height;
    *w = (int)width;
    return XE_OK;
}

/* Decodes a PNG held in d->data into d->pix as 8-bit gray (c = 1) or RGB
 * (c = 3); palette, low bit depths, 16 bits, alpha and interlacing are
 * normalised by libpng. where prefixes messages; the caller frees d->pix
 * and d->rows, even on failure. */
static int imgfolder_decode_png(PngDecode *d, int *h, int *w, int *c, const char *where,
                                XErr *e)
{
    png_structp png;
    png_infop info;
    int rc;
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, png_on_error, png_on_warning);
    info = png ? png_create_info_struct(png) : NULL;
    if (!info)
        rc = xerr_set(e, XE_FAIL, "%s: out of memory", where);
    else if (setjmp(png_jmpbuf(png)))
        rc = xerr_set(e, XE_FAIL, "%s: bad PNG: %s", where, d->msg);
    else
        rc = imgfolder_png_read(png, info, d, h, w, c, where, e);
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    return rc;
}

/* Rules beyond readers.h: obvious non-images are skipped (imgfolder_skip_path);
 * the content decides, so PNG data under another name is read and anything
 * else is an error; an image whose parent is the top or a split directory
 * has no class and is an error; a class exists from its first image, so a
 * directory holding no image adds no class. */
int imgfolder_add_png(Builder *b, const char *relpath, const uint8_t *data, size_t n,
                      const char *where, XErr *e)
{
    char wbuf[600], cls[256];
    const char *p = relpath;
    PathSeg seg, base = { NULL, 0 }, parent = { NULL, 0 };
    size_t nseg = 0, i = 0;
    int split = -1, label, h, w, c, rc = XE_FAIL;
    PngDecode d;
    memset(&d, 0, sizeof d);
    if (!where) {
        snprintf(wbuf, sizeof wbuf, "'%s'", relpath);
        where = wbuf;
    }
    if (imgfolder_skip_path(relpath))
        return XE_OK;
    while (path_next_seg(&p, &seg)) {
        parent = base;
        base = seg;
        nseg++;
    }
    if (nseg < 2 || imgfolder_split_of(&parent) >= 0)
        return xerr_set(e, XE_FAIL,
                        "%s: image is not inside a class directory (expected <class>/<image>.png)",
                        where);
    if (parent.n >= sizeof cls)
        return xerr_set(e, XE_FAIL, "%s: class directory name longer than %zu bytes", where,
                        sizeof cls - 1);
    memcpy(cls, parent.s, parent.n);
    cls[parent.n] = '\0';
    /* The nearest ancestor above the class directory that names a split. */
    for (p = relpath; i + 2 < nseg && path_next_seg(&p, &seg); i++)
        if (imgfolder_split_of(&seg) >= 0)
            split = imgfolder_split_of(&seg);
    if (split < 0)
        split = SPLIT_TRAIN;
    if (n < sizeof png_magic || memcmp(data, png_magic, sizeof png_magic) != 0) {
        const char *fmt = imgfolder_other_format(&base, data, n);
        if (seg_has_ext(&base, "png"))
            return fmt ? xerr_set(e, XE_FAIL, "%s: not a PNG file: the data is %s (PNG only)",
                                  where, fmt)
                       : xerr_set(e, XE_FAIL, "%s: not a PNG file (%s)", where,
                                  n ? "bad signature" : "empty");
        return fmt ? xerr_set(e, XE_FAIL, "%s: %s is not supported (PNG only)", where, fmt)
                   : xerr_set(e, XE_FAIL, "%s: not a PNG image (PNG only)", where);
    }
    d.data = data;
    d.n = n;
    if (imgfolder_decode_png(&d, &h, &w, &c, where, e))
        goto cleanup;
    if (builder_class(b, cls, &label, e)) {
        xerr_prefix(e, "%s: ", where);
        goto cleanup;
    }
    if (builder_add(b, (Split)split, label, d.pix, h, w, c, where, e))
        goto cleanup;
    rc = XE_OK;
cleanup:
    free(d.pix);
    free(d.rows);
    return rc;
}

/* Reads a whole regular file into memory, raw (no gzip decoding). */
static int imgfolder_read_file(const char *path, uint8_t **out, size_t *n, XErr *e)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0, size;
    int fd, rc = XE_FAIL;
    *out = NULL;
    *n = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        xerr_set(e, XE_FAIL, "'%s': not a regular file", path);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > (uint64_t)XFER_MAX_MEMBER) {
        xerr_set(e, XE_FAIL, "'%s': file too large (%lld bytes)", path, (long long)st.st_size);
        goto cleanup;
    }
    size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        xerr_set(e, XE_FAIL, "'%s': out of memory for %zu bytes", path, size);
        goto cleanup;
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
            goto cleanup;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *out = buf;
    *n = got;
    buf = NULL;
    rc = XE_OK;
cleanup:
    free(buf);
    close(fd);
    return rc;
}

static int imgfolder_cmp_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int imgfolder_skip_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Directories on the current walk, to stop symlink loops. */
typedef struct DirWalk {
    const char *root;
    dev_t dev[IMGFOLDER_MAX_DEPTH + 1];
    ino_t ino[IMGFOLDER_MAX_DEPTH + 1];
    int depth;
    long npng;
} DirWalk;

/* Adds the files under root/rel (rel "" for the root itself), sorted by name. */
static int imgfolder_walk(Builder *b, DirWalk *wk, const char *rel, XErr *e)
{
    struct dirent **ents = NULL;
    char *dpath = NULL, *fpath = NULL, *frel = NULL, *where = NULL;
    uint8_t *data = NULL;
    size_t n;
    int nent = 0, rc = XE_FAIL;
    struct stat st;
    if (*rel ? asprintf(&dpath, "%s/%s", wk->root, rel) < 0 : !(dpath = strdup(wk->root))) {
        dpath = NULL;
        xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    if (stat(dpath, &st) != 0) {
        xerr_set(e, XE_FAIL, "'%s': %s", dpath, strerror(errno));
        goto cleanup;
    }
    if (!S_ISDIR(st.st_mode)) {
        xerr_set(e, XE_FAIL, "'%s': not a directory", dpath);
        goto cleanup;
    }
    for (int i = 0; i < wk->depth; i++)
        if (wk->dev[i] == st.st_dev && wk->ino[i] == st.st_ino) {
            xerr_set(e, XE_FAIL, "'%s': directory loop (a symlink to a parent directory)", dpath);
            goto cleanup;
        }
    if (wk->depth > IMGFOLDER_MAX_DEPTH) {
        xerr_set(e, XE_FAIL, "'%s': directories nested deeper than %d levels", dpath,
                 IMGFOLDER_MAX_DEPTH);
        goto cleanup;
    }
    wk->dev[wk->depth] = st.st_dev;
    wk->ino[wk->depth] = st.st_ino;
    nent = scandir(dpath, &ents, imgfolder_skip_hidden, imgfolder_cmp_name);
    if (nent < 0) {
        ents = NULL;
        xerr_set(e, XE_FAIL, "'%s': %s", dpath, strerror(errno));
        goto cleanup;
    }
    for (int i = 0; i < nent; i++) {
        free(fpath);
        free(frel);
        free(where);
        free(data);
        fpath = frel = where = NULL;
        data = NULL;
        if (xerr_check_interrupt(e))
            goto cleanup;
        if ((*rel ? asprintf(&frel, "%s/%s", rel, ents[i]->d_name)
                  : asprintf(&frel, "%s", ents[i]->d_name)) < 0 ||
            asprintf(&fpath, "%s/%s", dpath, ents[i]->d_name) < 0) {
            frel = fpath = NULL;
            xerr_set(e, XE_FAIL, "out of memory");
            goto cleanup;
        }
        if (stat(fpath, &st) != 0) {
            xerr_set(e, XE_FAIL, "'%s': %s", fpath, strerror(errno));
            goto cleanup;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub;
            wk->depth++;
            sub = imgfolder_walk(b, wk, frel, e);
            wk->depth--;
            if (sub)
                goto cleanup;
            continue;
        }
        if (imgfolder_skip_path(frel))
            continue;
        if (imgfolder_read_file(fpath, &data, &n, e))
            goto cleanup;
        if (asprintf(&where, "'%s'", fpath) < 0) {
            where = NULL;
            xerr_set(e, XE_FAIL, "out of memory");
            goto cleanup;
        }
        if (imgfolder_add_png(b, frel, data, n, where, e))
            goto cleanup;
        wk->npng++;
    }
    rc = XE_OK;
cleanup:
    if (ents)
        for (int i = 0; i < nent; i++)
            free(ents[i]);
    free(ents);
    free(dpath);
    free(fpath);
    free(frel);
    free(where);
    free(data);
    return rc;
}

int imgfolder_read_dir(Builder *b, const char *dir, XErr *e)
{
    DirWalk wk;
    memset(&wk, 0, sizeof wk);
    wk.root = dir;
    if (imgfolder_walk(b, &wk, "", e))
        return e->code;
    if (wk.npng == 0)
        return xerr_set(e, XE_FAIL, "'%s': no PNG images found", dir);
    return XE_OK;
}
