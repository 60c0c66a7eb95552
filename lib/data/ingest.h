/* Reading a dataset source into a Builder: the format is detected from
 * content (magic bytes; for archives, from the members) unless forced. */
#ifndef XFER_INGEST_H
#define XFER_INGEST_H

#include <stddef.h>

#include "data/builder.h"

typedef enum {
    FORMAT_AUTO,
    FORMAT_IDX,
    FORMAT_CIFAR10,
    FORMAT_CIFAR100,
    FORMAT_NPY,
    FORMAT_NPZ,
    FORMAT_SVHN,
    FORMAT_IMGFOLDER,
} IngestFormat;

/* "idx", "cifar10", ... ; ingest_format_parse returns -1 for unknown names. */
const char *ingest_format_name(IngestFormat f);
int ingest_format_parse(const char *name);
#define INGEST_FORMAT_LIST "idx, cifar10, cifar100, npy, npz, svhn, imgfolder"

/* Reads paths (files, or one directory) into b and finishes it. */
int ingest_read(Builder *b, char *const *paths, int n, IngestFormat fmt, IngestFormat *found,
                XErr *e);

/* One archive (tar, tar.gz, zip, npz, ...) from a path or from memory. */
int ingest_archive(Builder *b, const char *path, const void *mem, size_t len, IngestFormat fmt,
                   IngestFormat *found, XErr *e);

/* What a file's first bytes say it is (gzip looked through): FORMAT_AUTO if
 * nothing is recognised, or -1 with the error set if it cannot be read.
 * *archive is set for tar/zip/7z content. */
int ingest_sniff(const char *path, int *archive, XErr *e);

#endif
