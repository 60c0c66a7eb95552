/* Format detection and dispatch: magic bytes first, file names only where a
 * format has no magic (raw CIFAR batches), --format to override. */
#include "data/ingest.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/readers.h"

static const char *const format_names[] = {
    "auto", "idx", "cifar10", "cifar100", "npy", "npz", "svhn", "imgfolder",
};

const char *ingest_format_name(IngestFormat f)
{
    return format_names[f];
}

int ingest_format_parse(const char *name)
{
    for (size_t i = 0; i < sizeof format_names / sizeof *format_names; i++)
        if (!strcmp(format_names[i], name))
            return (int)i;
    return -1;
}

Split split_from_name(const char *name)
{
    const char *base = strrchr(name, '/');
    char tmp[512], *tok, *save = NULL;
    snprintf(tmp, sizeof tmp, "%s", base ? base + 1 : name);
    for (char *p = tmp; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (tok = strtok_r(tmp, "-_. ", &save); tok; tok = strtok_r(NULL, "-_. ", &save)) {
        if (!strcmp(tok, "test") || !strcmp(tok, "t10k") || !strcmp(tok, "testing"))
            return SPLIT_TEST;
        if (!strcmp(tok, "val") || !strcmp(tok, "valid") || !strcmp(tok, "validation"))
            return SPLIT_VALID;
    }
    return SPLIT_TRAIN;
}

enum { KIND_UNKNOWN, KIND_IDX, KIND_NPY, KIND_MAT, KIND_ARCHIVE, KIND_PNG };

static int sniff_kind(const char *path, XErr *e)
{
    XStream s;
    unsigned char b[512];
    size_t got = 0;
    int kind = KIND_UNKNOWN, gz;
    if (xstream_open_path(&s, path, e))
        return -1;
    gz = s.gz;
    /* Raw magic of formats libarchive decodes itself. */
    if (!gz && s.in_len >= 5 &&
        (!memcmp(s.in, "PK\3\4", 4) || !memcmp(s.in, "PK\5\6", 4) || !memcmp(s.in, "7z\xBC\xAF", 4) ||
         !memcmp(s.in, "BZh", 3) || !memcmp(s.in, "\xFD" "7zXZ", 5) || !memcmp(s.in, "\x28\xB5\x2F\xFD", 4)))
        kind = KIND_ARCHIVE;
    if (kind == KIND_UNKNOWN && xstream_read(&s, b, sizeof b, &got, e) != XE_OK) {
        xstream_release(&s);
        return -1;
    }
    xstream_release(&s);
    if (kind != KIND_UNKNOWN)
        return kind;
    if (got >= 4 && b[0] == 0 && b[1] == 0 && b[3] >= 1 && b[3] <= 4 &&
        (b[2] == 0x08 || b[2] == 0x09 || (b[2] >= 0x0B && b[2] <= 0x0E)))
        return KIND_IDX;
    if (got >= 6 && !memcmp(b, "\x93NUMPY", 6))
        return KIND_NPY;
    if (got >= 19 && !memcmp(b, "MATLAB 5.0 MAT-file", 19))
        return KIND_MAT;
    if (got >= 262 && !memcmp(b + 257, "ustar", 5))
        return KIND_ARCHIVE;
    if (got >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        return KIND_PNG;
    return KIND_UNKNOWN;
}

int ingest_sniff(const char *path, int *archive, XErr *e)
{
    int k = sniff_kind(path, e);
    *archive = k == KIND_ARCHIVE;
    switch (k) {
    case KIND_IDX: return FORMAT_IDX;
    case KIND_NPY: return FORMAT_NPY;
    case KIND_MAT: return FORMAT_SVHN;
    case KIND_PNG: return FORMAT_IMGFOLDER;
    case -1: return -1;
    default: return FORMAT_AUTO;
    }
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int read_one(Builder *b, const char *path, IngestFormat fmt, XErr *e)
{
    XStream s;
    int rc = xstream_open_path(&s, path, e);
    char stem[256];
    Split split = split_from_name(path);
    if (rc)
        return rc;
    switch (fmt) {
    case FORMAT_CIFAR10:
    case FORMAT_CIFAR100:
        rc = cifar_read_batch(b, fmt == FORMAT_CIFAR10 ? 10 : 100, &s, split, e);
        break;
    case FORMAT_NPY:
        npy_class_name(path, stem, sizeof stem);
        rc = npy_read_class(b, &s, stem, e);
        break;
    case FORMAT_SVHN:
        rc = svhn_read_mat(b, &s, split, e);
        break;
    default:
        rc = xerr_set(e, XE_FAIL, "'%s': cannot read as %s", path, ingest_format_name(fmt));
    }
    xstream_release(&s);
    return rc;
}

static int kind_format(int kind)
{
    switch (kind) {
    case KIND_IDX: return FORMAT_IDX;
    case KIND_NPY: return FORMAT_NPY;
    case KIND_MAT: return FORMAT_SVHN;
    default: return FORMAT_AUTO;
    }
}

/* Files of one source: every file must be of the same kind. */
static int read_files(Builder *b, char *const *paths, int n, IngestFormat fmt, IngestFormat *found,
                      XErr *e)
{
    int kind = KIND_UNKNOWN, archive = 0;
    for (int i = 0; i < n; i++) {
        int k = sniff_kind(paths[i], e);
        Split sp;
        if (k < 0)
            return e->code;
        if (k == KIND_UNKNOWN && strstr(paths[i], "ubyte"))
            k = KIND_IDX; /* named like IDX: let the IDX reader say what is wrong */
        if (k == KIND_UNKNOWN && fmt == FORMAT_AUTO) {
            if (cifar_member_kind(paths[i], 10, 0, &sp) == 1)
                fmt = FORMAT_CIFAR10;
            else if (cifar_member_kind(paths[i], 100, 0, &sp) == 1)
                fmt = FORMAT_CIFAR100;
            else
                return xerr_set(e, XE_FAIL,
                                "'%s': unrecognised format (not IDX, NPY, MAT v5, tar, zip or gzip of "
                                "these); use --format (%s)",
                                paths[i], INGEST_FORMAT_LIST);
        }
        if (k == KIND_PNG && fmt == FORMAT_AUTO)
            return xerr_set(e, XE_FAIL, "'%s': a single PNG: give the folder of class directories", paths[i]);
        if (i > 0 && k != kind && fmt == FORMAT_AUTO)
            return xerr_set(e, XE_FAIL, "'%s': not the same format as '%s'", paths[i], paths[0]);
        kind = k;
        archive |= k == KIND_ARCHIVE;
    }
    if (fmt == FORMAT_AUTO && kind != KIND_ARCHIVE)
        fmt = kind_format(kind);
    if (archive) {
        for (int i = 0; i < n; i++)
            if (ingest_archive(b, paths[i], NULL, 0, fmt, found, e))
                return e->code;
        return XE_OK;
    }
    *found = fmt;
    switch (fmt) {
    case FORMAT_IDX:
        return idx_read_files(b, paths, n, e);
    case FORMAT_CIFAR10:
    case FORMAT_CIFAR100:
        if (cifar_begin(b, fmt == FORMAT_CIFAR10 ? 10 : 100, e))
            return e->code;
        break;
    case FORMAT_SVHN:
        if (svhn_begin(b, e))
            return e->code;
        break;
    case FORMAT_NPY:
        break;
    default:
        return xerr_set(e, XE_FAIL, "'%s': not %s data", paths[0], ingest_format_name(fmt));
    }
    for (int i = 0; i < n; i++)
        if (read_one(b, paths[i], fmt, e))
            return e->code;
    return XE_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory: the data files in it (IDX, NPY, MAT, CIFAR batches, archives),
 * or else a tree of class folders. */
static int read_dir(Builder *b, const char *dir, IngestFormat fmt, IngestFormat *found, XErr *e)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **files = NULL;
    int n = 0, cap = 0, rc = XE_FAIL, subdirs = 0;
    if (!d)
        return xerr_set(e, XE_FAIL, "'%s': %s", dir, strerror(errno));
    if (fmt == FORMAT_IMGFOLDER) {
        closedir(d);
        *found = fmt;
        return imgfolder_read_dir(b, dir, e);
    }
    while ((de = readdir(d))) {
        char *p;
        int k;
        Split sp;
        if (de->d_name[0] == '.')
            continue;
        if (asprintf(&p, "%s/%s", dir, de->d_name) < 0) {
            xerr_set(e, XE_FAIL, "out of memory");
            goto cleanup;
        }
        if (is_dir(p)) {
            subdirs++;
            free(p);
            continue;
        }
        k = sniff_kind(p, e);
        if (k < 0) {
            free(p);
            goto cleanup;
        }
        if ((k == KIND_UNKNOWN || k == KIND_PNG) && !strstr(de->d_name, "ubyte") &&
            cifar_member_kind(p, 10, 0, &sp) != 1 &&
            cifar_member_kind(p, 100, 0, &sp) != 1 && fmt != FORMAT_CIFAR10 && fmt != FORMAT_CIFAR100) {
            free(p); /* README, meta files, stray images */
            continue;
        }
        if (n == cap) {
            char **nf = realloc(files, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *nf);
            if (!nf) {
                free(p);
                xerr_set(e, XE_FAIL, "out of memory");
                goto cleanup;
            }
            files = nf;
        }
        files[n++] = p;
    }
    if (n == 0 && subdirs) {
        *found = FORMAT_IMGFOLDER;
        rc = imgfolder_read_dir(b, dir, e);
        goto cleanup;
    }
    if (n == 0) {
        xerr_set(e, XE_FAIL, "'%s': no dataset files found", dir);
        goto cleanup;
    }
    qsort(files, (size_t)n, sizeof *files, cmp_str);
    rc = read_files(b, files, n, fmt, found, e);
cleanup:
    closedir(d);
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return rc;
}

int ingest_read(Builder *b, char *const *paths, int n, IngestFormat fmt, IngestFormat *found,
                XErr *e)
{
    int rc;
    *found = fmt;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0)
            return xerr_set(e, XE_FAIL, "'%s': %s", paths[i], strerror(errno));
        if (S_ISDIR(st.st_mode) && n > 1)
            return xerr_set(e, XE_FAIL, "'%s': give one directory, or files", paths[i]);
    }
    if (n == 1 && is_dir(paths[0]))
        rc = read_dir(b, paths[0], fmt, found, e);
    else
        rc = read_files(b, paths, n, fmt, found, e);
    if (rc)
        return rc;
    return builder_finish(b, paths[0], e);
}
