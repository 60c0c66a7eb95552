/* Datasets inside archives (tar in any compression, zip, npz), read member by
 * member through libarchive without unpacking to disk. The first member that
 * is data decides what the archive holds: CIFAR batches, .npy arrays (one
 * per class, or keras x_/y_ pairs), SVHN .mat files or a PNG class-folder
 * tree. */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "data/ingest.h"
#include "data/readers.h"

typedef struct Member {
    struct archive *a;
} Member;

static ssize_t member_read(void *ctx, void *buf, size_t n)
{
    Member *m = ctx;
    la_ssize_t got = archive_read_data(m->a, buf, n);
    return got < 0 ? -1 : (ssize_t)got;
}

/* A member read that failed inside libarchive: say what libarchive saw. */
static int member_fail(struct archive *a, const char *member, XErr *e)
{
    const char *why = archive_error_string(a);
    if (e->code == XE_FAIL && why && strstr(e->msg, "read error")) {
        xerr_clear(e);
        return xerr_set(e, XE_FAIL, "'%s': corrupt or truncated archive: %s", member, why);
    }
    return e->code ? e->code : XE_FAIL;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), k = strlen(ext);
    return n > k && strcasecmp(name + n - k, ext) == 0;
}

static int is_junk(const char *path)
{
    const char *b = base_name(path);
    return b[0] == '.' || strstr(path, "__MACOSX/") != NULL || !*b;
}

static int png_member(Builder *b, struct archive *a, struct archive_entry *ent, const char *src,
                      XErr *e)
{
    const char *path = archive_entry_pathname(ent);
    la_int64_t size = archive_entry_size_is_set(ent) ? archive_entry_size(ent) : -1;
    Member m = { a };
    XStream s;
    uint8_t *data = NULL;
    size_t n = 0;
    char name[1024], where[1100];
    int rc;
    snprintf(name, sizeof name, "%s:%s", src, path);
    if (size > (la_int64_t)XFER_MAX_MEMBER)
        return xerr_set(e, XE_FAIL, "'%s': member too large", name);
    if ((rc = xstream_open_fn(&s, member_read, &m, name, e)) == XE_OK)
        rc = xstream_read_all(&s, &data, &n, XFER_MAX_MEMBER, e);
    xstream_release(&s);
    if (rc)
        return member_fail(a, name, e);
    snprintf(where, sizeof where, "'%s'", name);
    rc = imgfolder_add_png(b, path, data, n, where, e);
    free(data);
    return rc;
}

/* CIFAR name files met before the first batch are kept until the variant is
 * known (CIFAR-100's come first in its tarball). */
typedef struct Pending {
    char name[256];
    uint8_t *text;
    size_t n;
} Pending;

static int pending_keep(Pending *p, struct archive *a, const char *member, const char *name, XErr *e)
{
    Member m = { a };
    XStream s;
    int rc;
    if (p->text)
        return XE_OK;
    snprintf(p->name, sizeof p->name, "%s", name);
    rc = xstream_open_fn(&s, member_read, &m, member, e);
    if (rc == XE_OK)
        rc = xstream_read_all(&s, &p->text, &p->n, 1 << 20, e);
    xstream_release(&s);
    return rc;
}

static int pending_apply(Pending *p, Builder *b, int variant, const char *path, XErr *e)
{
    Split split;
    FILE *f;
    XStream s;
    char member[1024];
    int rc;
    if (!p->text || cifar_member_kind(p->name, variant, b->opt->coarse, &split) != 2)
        return XE_OK;
    f = fmemopen(p->text, p->n ? p->n : 1, "rb");
    if (!f)
        return xerr_set(e, XE_FAIL, "out of memory");
    snprintf(member, sizeof member, "%s:%s", path, p->name);
    rc = xstream_open_file(&s, f, member, e);
    if (rc == XE_OK)
        rc = cifar_read_names(b, variant, &s, e);
    xstream_release(&s);
    fclose(f);
    return rc;
}

int ingest_archive(Builder *b, const char *path, const void *mem, size_t len, IngestFormat fmt,
                   IngestFormat *found, XErr *e)
{
    Pending pend[3] = { { "", NULL, 0 } };
    struct archive *a = archive_read_new();
    struct archive_entry *ent;
    NpzKeras *keras = NULL;
    IngestFormat mode = fmt;
    int rc = XE_FAIL, r, cifar = 0, npy_class = 0, seen = 0, other_variant = 0;
    if (!a)
        return xerr_set(e, XE_FAIL, "out of memory");
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_zip(a);
    archive_read_support_format_7zip(a);
    r = mem ? archive_read_open_memory(a, mem, len) : archive_read_open_filename(a, path, 1 << 16);
    if (r != ARCHIVE_OK) {
        xerr_set(e, XE_FAIL, "'%s': not a readable archive: %s", path, archive_error_string(a));
        goto cleanup;
    }
    while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(ent);
        char member[1024], stem[256];
        Split split;
        int kind;
        if (!name || archive_entry_filetype(ent) != AE_IFREG || is_junk(name))
            continue;
        snprintf(member, sizeof member, "%s:%s", path, name);
        if (mode == FORMAT_AUTO) {
            if (cifar_member_kind(name, 10, 0, &split) == 1)
                mode = FORMAT_CIFAR10;
            else if (cifar_member_kind(name, 100, 0, &split) == 1)
                mode = FORMAT_CIFAR100;
            else if (has_ext(name, ".npy"))
                mode = FORMAT_NPZ;
            else if (has_ext(name, ".png"))
                mode = FORMAT_IMGFOLDER;
            else if (has_ext(name, ".mat"))
                mode = FORMAT_SVHN;
            else if (has_ext(name, ".jpg") || has_ext(name, ".jpeg"))
                mode = FORMAT_IMGFOLDER; /* the PNG reader names the problem */
            else {
                /* readme.html, or CIFAR name files before any batch */
                int slot = !strcmp(base_name(name), "batches.meta.txt")       ? 0
                           : !strcmp(base_name(name), "fine_label_names.txt") ? 1
                           : !strcmp(base_name(name), "coarse_label_names.txt") ? 2
                                                                                : -1;
                if (slot >= 0 && pending_keep(&pend[slot], a, member, name, e)) {
                    member_fail(a, member, e);
                    goto cleanup;
                }
                continue;
            }
        }
        if (mode == FORMAT_CIFAR10 || mode == FORMAT_CIFAR100) {
            int variant = mode == FORMAT_CIFAR10 ? 10 : 100;
            if (!cifar) {
                if (cifar_begin(b, variant, e))
                    goto cleanup;
                for (int k = 0; k < 3; k++)
                    if (pending_apply(&pend[k], b, variant, path, e))
                        goto cleanup;
            }
            cifar = 1;
            kind = cifar_member_kind(name, variant, b->opt->coarse, &split);
            {
                Split ignored;
                other_variant |= cifar_member_kind(name, variant == 10 ? 100 : 10, 0, &ignored) == 1;
            }
            if (kind) {
                Member m = { a };
                XStream s;
                la_int64_t size = archive_entry_size_is_set(ent) ? archive_entry_size(ent) : -1;
                size_t recsz = 3072u + (variant == 10 ? 1u : 2u);
                if (kind == 1 && size >= 0 && size % (la_int64_t)recsz != 0) {
                    xerr_set(e, XE_FAIL, "'%s': %lld bytes, not a multiple of the CIFAR-%d record size %zu",
                             member, (long long)size, variant, recsz);
                    goto cleanup;
                }
                if (kind == 1 && size > 0)
                    builder_reserve(b, split, (size_t)size / recsz, e);
                r = xstream_open_fn(&s, member_read, &m, member, e);
                if (r == XE_OK)
                    r = kind == 1 ? cifar_read_batch(b, variant, &s, split, e)
                                  : cifar_read_names(b, variant, &s, e);
                xstream_release(&s);
                if (r) {
                    member_fail(a, member, e);
                    goto cleanup;
                }
                seen += kind == 1;
            }
            continue;
        }
        if (mode == FORMAT_NPZ || mode == FORMAT_NPY) {
            Member m = { a };
            XStream s;
            if (!has_ext(name, ".npy"))
                continue;
            npy_class_name(name, stem, sizeof stem);
            if (!keras && !npy_class && npz_is_keras_name(stem) && !(keras = npz_keras_new())) {
                xerr_set(e, XE_FAIL, "out of memory");
                goto cleanup;
            }
            if (keras && !npz_is_keras_name(stem)) {
                xerr_set(e, XE_FAIL, "'%s': not an x_/y_ array, but the archive holds keras-style arrays",
                         member);
                goto cleanup;
            }
            npy_class = !keras;
            r = xstream_open_fn(&s, member_read, &m, member, e);
            if (r == XE_OK)
                r = keras ? npz_keras_member(keras, &s, stem, e) : npy_read_class(b, &s, stem, e);
            xstream_release(&s);
            if (r) {
                member_fail(a, member, e);
                goto cleanup;
            }
            seen++;
            continue;
        }
        if (mode == FORMAT_SVHN) {
            Member m = { a };
            XStream s;
            if (!has_ext(name, ".mat"))
                continue;
            if (!seen && svhn_begin(b, e))
                goto cleanup;
            r = xstream_open_fn(&s, member_read, &m, member, e);
            if (r == XE_OK)
                r = svhn_read_mat(b, &s, split_from_name(name), e);
            xstream_release(&s);
            if (r) {
                member_fail(a, member, e);
                goto cleanup;
            }
            seen++;
            continue;
        }
        if (mode == FORMAT_IMGFOLDER) {
            const char *bn = base_name(name);
            if (!strcasecmp(bn, "README") || has_ext(bn, ".txt") || has_ext(bn, ".csv") ||
                has_ext(bn, ".json") || has_ext(bn, ".md") || !strcasecmp(bn, "Thumbs.db"))
                continue;
            if (png_member(b, a, ent, path, e))
                goto cleanup;
            seen++;
            continue;
        }
        xerr_set(e, XE_FAIL, "'%s': --format %s cannot be read from an archive", path, ingest_format_name(mode));
        goto cleanup;
    }
    if (r != ARCHIVE_EOF) {
        xerr_set(e, XE_FAIL, "'%s': corrupt or truncated archive: %s", path,
                 archive_error_string(a) ? archive_error_string(a) : "read error");
        goto cleanup;
    }
    if (keras && npz_keras_finish(keras, b, path, e))
        goto cleanup;
    if (!seen && !keras && (mode == FORMAT_CIFAR10 || mode == FORMAT_CIFAR100)) {
        xerr_set(e, XE_FAIL, "'%s': no CIFAR-%d batches (%s)%s", path, mode == FORMAT_CIFAR10 ? 10 : 100,
                 mode == FORMAT_CIFAR10 ? "data_batch_N.bin, test_batch.bin" : "train.bin, test.bin",
                 other_variant ? mode == FORMAT_CIFAR10 ? ": it holds CIFAR-100 batches, use --format cifar100"
                                                        : ": it holds CIFAR-10 batches, use --format cifar10"
                               : "");
        goto cleanup;
    }
    if (!seen && !keras) {
        xerr_set(e, XE_FAIL, "'%s': no dataset members found (CIFAR .bin batches, .npy arrays, SVHN .mat files or PNG folders)",
                 path);
        goto cleanup;
    }
    if (mode == FORMAT_NPY)
        mode = FORMAT_NPZ;
    *found = mode;
    rc = XE_OK;
cleanup:
    for (int k = 0; k < 3; k++)
        free(pend[k].text);
    npz_keras_free(keras);
    archive_read_free(a);
    return rc;
}
