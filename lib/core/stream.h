/* Byte streams over a file, a FILE*, or any read callback (an archive member),
 * with transparent gzip decoding (zlib) when the data starts with the gzip
 * magic. Readers pull exact byte counts and get "truncated" errors that name
 * the stream and the offset. */
#ifndef XFER_STREAM_H
#define XFER_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <zlib.h>

#include "core/err.h"

/* Raw source: returns bytes read (0 at end) or -1 on error. */
typedef ssize_t (*XReadFn)(void *ctx, void *buf, size_t n);

typedef struct XStream {
    char name[512];      /* for messages: a path, or "archive.tar.gz:member" */
    XReadFn rd;
    void *ctx;
    FILE *own;           /* closed by xstream_release when we opened it */
    int gz;              /* decoding gzip */
    int gz_end;          /* the last gzip member ended */
    z_stream z;
    unsigned char *in;   /* raw input buffer */
    size_t in_len, in_pos;
    int raw_eof;
    uint64_t pos;        /* bytes delivered so far (decompressed) */
} XStream;

/* Opens a path for reading; gzip is detected from the first bytes. */
int xstream_open_path(XStream *s, const char *path, XErr *e);
/* Wraps a FILE* the caller keeps owning (fmemopen for fuzzing). */
int xstream_open_file(XStream *s, FILE *f, const char *name, XErr *e);
/* Wraps a read callback (a libarchive member). */
int xstream_open_fn(XStream *s, XReadFn rd, void *ctx, const char *name, XErr *e);
void xstream_release(XStream *s);

/* Reads up to n bytes; *got < n only at the end of the data. */
int xstream_read(XStream *s, void *buf, size_t n, size_t *got, XErr *e);
/* Reads exactly n bytes; running out is "'name': truncated: ..." naming what. */
int xstream_read_exact(XStream *s, void *buf, size_t n, const char *what, XErr *e);
/* Reads everything left into a new buffer: max bytes at most, more is an
 * error ("data continues after max bytes"). */
int xstream_read_all(XStream *s, uint8_t **out, size_t *n, size_t max, XErr *e);
/* 1 if no byte is left, 0 if some is, -1 on a read error (message set). */
int xstream_at_end(XStream *s, XErr *e);

/* Reads a whole file (gzip decoded) into memory. */
int xfile_read_all(const char *path, uint8_t **out, size_t *n, size_t max, XErr *e);

#endif
