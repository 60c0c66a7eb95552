/* SVHN cropped digits: MATLAB v5 MAT-files (train_32x32.mat, ...) holding X
 * (H, W, C, N) uint8 and y (N, 1) labels 1..10, compressed or not, in either
 * order. Images stream into the builder one at a time. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/config.h"
#include "data/readers.h"

/* Data element types (miTYPE). */
enum {
    MI_INT8 = 1, MI_UINT8 = 2, MI_INT16 = 3, MI_UINT16 = 4, MI_INT32 = 5, MI_UINT32 = 6,
    MI_SINGLE = 7, MI_DOUBLE = 9, MI_INT64 = 12, MI_UINT64 = 13, MI_MATRIX = 14,
    MI_COMPRESSED = 15,
};
/* Array classes (mxCLASS) that matter here. */
enum { MX_DOUBLE = 6, MX_UINT8 = 9, MX_UINT64 = 15 };

#define MAT_IN_CAP ((size_t)1 << 16)
#define MAT_MAX_DIMS 32
/* Images reserved ahead of those the stream has delivered, in bytes: the
 * counts in a header are not proof that the data is there. */
#define MAT_RESERVE_AHEAD ((size_t)64 << 20)

static const char *const mat_class_names[] = {
    "of class 0", "a cell array", "a struct", "an object", "char", "sparse", "double",
    "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
};

/* The bytes of one element being parsed: the parent stream itself, or the
 * zlib stream of a miCOMPRESSED element pulled from it. */
typedef struct MatSrc {
    XStream *s;         /* parent stream; NULL once the rest was read into in */
    uint64_t at;        /* parent offset of the element's tag (messages) */
    uint64_t raw_size;  /* compressed bytes of the element */
    uint64_t raw_left;  /* of those, not yet taken from s */
    uint64_t out_left;  /* bytes of the element being parsed not yet delivered */
    int zlib, z_live, z_end;
    z_stream z;
    uint8_t *in;        /* (MAT_IN_CAP,) input window, or (in_len,) detached rest */
    size_t in_len, in_pos;
} MatSrc;

/* One sub-element: its tag, and how much of its data was read. */
typedef struct MatElem {
    uint32_t type, n, done;
    int small;          /* small data element: the data sits in the tag */
    uint8_t inl[4];
} MatElem;

typedef struct Mat {
    Builder *b;
    XStream *s;
    Split split;
    int be;                 /* big-endian file ("MI") */
    int have_x, have_y;
    uint8_t *lab;           /* (nlab,) labels 0..9 */
    size_t nlab, cap_lab;
    int h, w, c;
    size_t nx, img;         /* images in X, bytes per image */
    size_t reserved;        /* images reserved in the builder so far */
    uint8_t *xbuf;          /* (nx, C, W, H) X's pixels when they came before y */
    MatSrc slot[2];         /* the element being read; X's deferred compressed rest */
    MatSrc *xsrc;           /* slot holding X's rest until y is known, or NULL */
    MatElem xel;            /* X's data element inside xsrc */
    uint8_t *col, *hwc;     /* (img,) one image as stored and as handed on */
    char where[600];
} Mat;

static uint32_t mat_u32(const uint8_t *p, int be)
{
    if (be)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint64_t mat_u64(const uint8_t *p, int be)
{
    uint64_t hi = mat_u32(p + (be ? 0 : 4), be), lo = mat_u32(p + (be ? 4 : 0), be);
    return hi << 32 | lo;
}

static unsigned mat_u16(const uint8_t *p, int be)
{
    return be ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static size_t mat_type_size(uint32_t type)
{
    switch (type) {
    case MI_INT8: case MI_UINT8: return 1;
    case MI_INT16: case MI_UINT16: return 2;
    case MI_INT32: case MI_UINT32: case MI_SINGLE: return 4;
    case MI_DOUBLE: case MI_INT64: case MI_UINT64: return 8;
    default: return 0;
    }
}

static const char *mat_class_name(uint32_t cls)
{
    return cls < sizeof mat_class_names / sizeof *mat_class_names ? mat_class_names[cls]
                                                                    : "of an unknown class";
}

/* "32x32x3x7" */
static void mat_dims_text(const int32_t *dims, int nd, int more, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < nd && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%ld", i ? "x" : "", (long)dims[i]);
    if (more && len < cap)
        snprintf(out + len, cap - len, "x...");
}

/* "'name': corrupt data at offset 200: ..." with the place inside a
 * compressed element when there is one. */
static int mat_corrupt(Mat *m, const MatSrc *r, XErr *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int mat_corrupt(Mat *m, const MatSrc *r, XErr *e, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->zlib)
        return xerr_set(e, XE_FAIL, "'%s': corrupt data at byte %llu of the compressed element at offset %llu: %s",
                        m->s->name, (unsigned long long)r->z.total_out, (unsigned long long)r->at, what);
    return xerr_set(e, XE_FAIL, "'%s': corrupt data at offset %llu: %s", m->s->name,
                    (unsigned long long)m->s->pos, what);
}

/* Skips n bytes of the parent stream. */
static int mat_skip_stream(Mat *m, uint64_t n, const char *what, XErr *e)
{
    uint8_t buf[4096];
    uint64_t at = m->s->pos, want = n;
    while (n > 0) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf, got;
        if (xstream_read(m->s, buf, k, &got, e))
            return e->code;
        n -= got;
        if (got < k)
            return xerr_set(e, XE_FAIL, "'%s': truncated: expected %llu bytes of %s at offset %llu, got %llu",
                            m->s->name, (unsigned long long)want, what, (unsigned long long)at,
                            (unsigned long long)(want - n));
    }
    return XE_OK;
}

static int src_truncated(Mat *m, const MatSrc *r, size_t got, XErr *e)
{
    return xerr_set(e, XE_FAIL, "'%s': truncated: compressed element at offset %llu holds %llu bytes, the file ends after %llu",
                    m->s->name, (unsigned long long)r->at, (unsigned long long)r->raw_size,
                    (unsigned long long)(r->raw_size - r->raw_left + got));
}

static void src_release(MatSrc *r)
{
    if (r->z_live)
        inflateEnd(&r->z);
    free(r->in);
    memset(r, 0, sizeof *r);
}

static int src_open_zlib(Mat *m, MatSrc *r, uint64_t at, uint32_t n, XErr *e)
{
    memset(r, 0, sizeof *r);
    r->s = m->s;
    r->at = at;
    r->zlib = 1;
    r->raw_size = r->raw_left = n;
    r->in = malloc(MAT_IN_CAP);
    if (!r->in)
        return xerr_set(e, XE_FAIL, "'%s': out of memory", m->s->name);
    if (inflateInit(&r->z) != Z_OK)
        return xerr_set(e, XE_FAIL, "'%s': cannot start the zlib decoder", m->s->name);
    r->z_live = 1;
    return XE_OK;
}

/* Gives the decoder more compressed input: the next window of the parent
 * stream, limited to the element, or the next part of the detached rest.
 * avail_in stays 0 when the element has no more. */
static int src_fill(Mat *m, MatSrc *r, XErr *e)
{
    size_t k, got;
    if (!r->s) {
        k = r->in_len - r->in_pos;
        if (k > ((size_t)1 << 30))
            k = (size_t)1 << 30;
        r->z.next_in = r->in + r->in_pos;
        r->z.avail_in = (uInt)k;
        r->in_pos += k;
        return XE_OK;
    }
    k = r->raw_left < MAT_IN_CAP ? (size_t)r->raw_left : MAT_IN_CAP;
    if (k == 0)
        return XE_OK;
    if (xstream_read(r->s, r->in, k, &got, e))
        return e->code;
    if (got < k)
        return src_truncated(m, r, got, e);
    r->raw_left -= k;
    r->z.next_in = r->in;
    r->z.avail_in = (uInt)k;
    return XE_OK;
}

/* Inflates up to n bytes (n < 2^30); *got < n only where the zlib stream ends. */
static int src_inflate(Mat *m, MatSrc *r, uint8_t *buf, size_t n, size_t *got, XErr *e)
{
    r->z.next_out = buf;
    r->z.avail_out = (uInt)n;
    while (r->z.avail_out > 0 && !r->z_end) {
        int zr;
        if (r->z.avail_in == 0) {
            if (src_fill(m, r, e))
                return e->code;
            if (r->z.avail_in == 0)
                return xerr_set(e, XE_FAIL, "'%s': truncated: compressed element at offset %llu ends inside its zlib stream",
                                m->s->name, (unsigned long long)r->at);
        }
        zr = inflate(&r->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            r->z_end = 1;
        else if (zr == Z_MEM_ERROR)
            return xerr_set(e, XE_FAIL, "'%s': out of memory", m->s->name);
        else if (zr != Z_OK)
            return mat_corrupt(m, r, e, "bad zlib data: %s",
                               zr == Z_NEED_DICT ? "needs a preset dictionary"
                               : r->z.msg        ? r->z.msg
                                                 : "inflate failed");
    }
    *got = n - r->z.avail_out;
    return XE_OK;
}

/* Reads exactly n bytes of the element being parsed. */
static int src_read(Mat *m, MatSrc *r, void *buf, size_t n, const char *what, XErr *e)
{
    size_t got;
    if (n > r->out_left)
        return mat_corrupt(m, r, e, "%s (%zu bytes) runs past the end of its matrix (%llu bytes left)",
                           what, n, (unsigned long long)r->out_left);
    r->out_left -= n;
    if (!r->zlib)
        return xstream_read_exact(r->s, buf, n, what, e);
    if (src_inflate(m, r, buf, n, &got, e))
        return e->code;
    if (got < n)
        return xerr_set(e, XE_FAIL, "'%s': truncated: the zlib stream of the element at offset %llu ends inside %s",
                        m->s->name, (unsigned long long)r->at, what);
    return XE_OK;
}

static int src_skip(Mat *m, MatSrc *r, uint64_t n, const char *what, XErr *e)
{
    uint8_t buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (src_read(m, r, buf, k, what, e))
            return e->code;
        n -= k;
    }
    return XE_OK;
}

/* Leaves the parent stream just after the element. check: inflate to the
 * end so damage anywhere in X or y (or its checksum) is reported; other
 * variables' compressed bytes are skipped unread. */
static int src_finish(Mat *m, MatSrc *r, int check, XErr *e)
{
    uint8_t buf[4096];
    size_t got;
    if (!r->zlib)
        return src_skip(m, r, r->out_left, "matrix element", e);
    if (check) {
        if (src_skip(m, r, r->out_left, "matrix element", e))
            return e->code;
        while (!r->z_end)
            if (src_inflate(m, r, buf, sizeof buf, &got, e))
                return e->code;
    }
    if (!r->s)
        return XE_OK;
    if (mat_skip_stream(m, r->raw_left, "compressed element", e))
        return e->code;
    r->raw_left = 0;
    return XE_OK;
}

/* Reads the rest of a compressed element into memory, so the parent stream
 * moves on while the decoder keeps its place. */
static int src_detach(Mat *m, MatSrc *r, XErr *e)
{
    size_t len = r->z.avail_in, cap = len + (r->raw_left < MAT_IN_CAP ? (size_t)r->raw_left : MAT_IN_CAP);
    uint8_t *mem = malloc(cap ? cap : 1);
    if (!mem)
        return xerr_set(e, XE_FAIL, "'%s': out of memory", m->s->name);
    if (len)
        memcpy(mem, r->z.next_in, len);
    /* r owns the buffer from here on: src_release frees it on any error. */
    free(r->in);
    r->in = mem;
    r->in_len = len;
    r->in_pos = 0;
    r->z.next_in = NULL;
    r->z.avail_in = 0;
    while (r->raw_left > 0) {
        size_t k, got;
        if (r->in_len == cap) {
            size_t ncap = cap * 2 - r->in_len < r->raw_left ? cap * 2 : r->in_len + (size_t)r->raw_left;
            uint8_t *nm = realloc(r->in, ncap);
            if (!nm)
                return xerr_set(e, XE_FAIL, "'%s': out of memory", m->s->name);
            r->in = nm;
            cap = ncap;
        }
        k = cap - r->in_len < r->raw_left ? cap - r->in_len : (size_t)r->raw_left;
        if (xstream_read(r->s, r->in + r->in_len, k, &got, e))
            return e->code;
        if (got < k)
            return src_truncated(m, r, got, e);
        r->in_len += k;
        r->raw_left -= k;
    }
    r->s = NULL;
    return XE_OK;
}

static void mat_tag_decode(const uint8_t t[8], int be, MatElem *el)
{
    uint32_t w0 = mat_u32(t, be);
    memset(el, 0, sizeof *el);
    if (w0 >> 16) {
        el->small = 1;
        el->type = w0 & 0xffff;
        el->n = w0 >> 16;
        memcpy(el->inl, t + 4, 4);
    } else {
        el->type = w0;
        el->n = mat_u32(t + 4, be);
    }
}

static int elem_begin(Mat *m, MatSrc *r, MatElem *el, const char *what, XErr *e)
{
    uint8_t t[8];
    if (src_read(m, r, t, 8, what, e))
        return e->code;
    mat_tag_decode(t, m->be, el);
    if (el->small && el->n > 4)
        return mat_corrupt(m, r, e, "%s: small data element of %u bytes (at most 4)", what, el->n);
    if (!el->small && el->n > r->out_left)
        return mat_corrupt(m, r, e, "%s of %u bytes runs past the end of its matrix (%llu bytes left)", what,
                           el->n, (unsigned long long)r->out_left);
    return XE_OK;
}

static int elem_read(Mat *m, MatSrc *r, MatElem *el, void *buf, size_t n, const char *what, XErr *e)
{
    if (n > el->n - el->done)
        return mat_corrupt(m, r, e, "%s runs past the end of its element", what);
    if (el->small)
        memcpy(buf, el->inl + el->done, n);
    else if (src_read(m, r, buf, n, what, e))
        return e->code;
    el->done += (uint32_t)n;
    return XE_OK;
}

/* Skips what is left of the element and its padding to 8 bytes. */
static int elem_end(Mat *m, MatSrc *r, MatElem *el, XErr *e)
{
    uint64_t pad;
    if (el->small)
        return XE_OK;
    if (src_skip(m, r, el->n - el->done, "element data", e))
        return e->code;
    el->done = el->n;
    pad = (8 - el->n % 8) % 8;
    return src_skip(m, r, pad < r->out_left ? pad : r->out_left, "element padding", e);
}

/* Room in the builder before image i: everything when the pixels are in
 * memory, else a step ahead of what the stream has proven to hold. */
static int mat_reserve(Mat *m, size_t i, int all, XErr *e)
{
    size_t add, ahead;
    if (i < m->reserved)
        return XE_OK;
    ahead = MAT_RESERVE_AHEAD / m->img;
    if (ahead < i)
        ahead = i;
    add = all || m->nx - i < ahead ? m->nx - i : ahead;
    if (add == 0)
        return XE_OK;
    m->reserved += add;
    return builder_reserve(m->b, m->split, add, e);
}

/* Hands X's images to the builder, from r (el being X's data) or from xbuf. */
static int mat_push_images(Mat *m, MatSrc *r, MatElem *el, XErr *e)
{
    size_t hw = (size_t)m->h * (size_t)m->w;
    for (size_t i = 0; i < m->nx; i++) {
        const uint8_t *src = m->xbuf ? m->xbuf + i * m->img : m->col;
        if (mat_reserve(m, i, m->xbuf != NULL, e))
            return e->code;
        if (!m->xbuf && elem_read(m, r, el, m->col, m->img, "X image", e))
            return e->code;
        /* Column-major X(row, col, ch): row fastest, then column, then channel. */
        for (int ch = 0; ch < m->c; ch++)
            for (int x = 0; x < m->w; x++)
                for (int y = 0; y < m->h; y++)
                    m->hwc[((size_t)y * (size_t)m->w + (size_t)x) * (size_t)m->c + (size_t)ch] =
                        src[(size_t)y + (size_t)m->h * (size_t)x + hw * (size_t)ch];
        snprintf(m->where, sizeof m->where, "'%s': record %zu", m->s->name, i);
        if (builder_add(m->b, m->split, m->lab[i], m->hwc, m->h, m->w, m->c, m->where, e))
            return e->code;
    }
    return XE_OK;
}

static int mat_check_counts(Mat *m, XErr *e)
{
    if (m->nx != m->nlab)
        return xerr_set(e, XE_FAIL, "'%s': X holds %zu images but y holds %zu labels", m->s->name, m->nx,
                        m->nlab);
    return XE_OK;
}

/* Reads X's whole data element into xbuf (X came before y). */
static int mat_buffer_x(Mat *m, MatSrc *r, MatElem *el, XErr *e)
{
    size_t total = el->n, len = 0, cap = 0;
    if (total > XFER_MAX_MEMBER)
        return xerr_set(e, XE_FAIL, "'%s': X holds %zu bytes, more than the %zu this tool reads into memory",
                        m->s->name, total, (size_t)XFER_MAX_MEMBER);
    while (len < total) {
        size_t k;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : MAT_IN_CAP;
            uint8_t *nb;
            if (ncap > total)
                ncap = total;
            nb = realloc(m->xbuf, ncap);
            if (!nb)
                return xerr_set(e, XE_FAIL, "'%s': out of memory for X (%zu bytes)", m->s->name, total);
            m->xbuf = nb;
            cap = ncap;
        }
        k = cap - len;
        if (elem_read(m, r, el, m->xbuf + len, k, "X data", e))
            return e->code;
        len += k;
    }
    return XE_OK;
}

static int mat_read_x(Mat *m, MatSrc *r, uint32_t cls, int cplx, const int32_t *dims, int nd, int more,
                      int *used, XErr *e)
{
    char d[256];
    int32_t h, w, c, n;
    uint64_t total;
    MatElem *el = &m->xel;
    mat_dims_text(dims, nd, more, d, sizeof d);
    if (m->have_x)
        return xerr_set(e, XE_FAIL, "'%s': variable 'X' appears twice", m->s->name);
    if (cls != MX_UINT8 || cplx)
        return xerr_set(e, XE_FAIL, "'%s': X is %s%s, expected uint8 images", m->s->name,
                        cplx ? "complex " : "", mat_class_name(cls));
    h = dims[0];
    w = nd > 1 ? dims[1] : 1;
    c = nd > 2 ? dims[2] : 1;
    n = nd > 3 ? dims[3] : 1;
    if (more || nd < 2 || nd > 4 || h < 1 || w < 1 || h > XFER_MAX_SIDE || w > XFER_MAX_SIDE ||
        (c != 1 && c != 3) || n < 0)
        return xerr_set(e, XE_FAIL, "'%s': X has dims %s, expected HxWx3xN or HxWx1xN with sides 1..%d",
                        m->s->name, d, XFER_MAX_SIDE);
    m->h = h, m->w = w, m->c = c;
    m->nx = (size_t)n;
    m->img = (size_t)h * (size_t)w * (size_t)c;
    total = (uint64_t)m->img * (uint64_t)n;
    if (elem_begin(m, r, el, "X data", e))
        return e->code;
    if (el->type != MI_UINT8)
        return xerr_set(e, XE_FAIL, "'%s': X data has element type %u, expected miUINT8 (2)", m->s->name,
                        el->type);
    if (el->n != total)
        return xerr_set(e, XE_FAIL, "'%s': X data holds %u bytes, expected %llu for dims %s", m->s->name,
                        el->n, (unsigned long long)total, d);
    m->have_x = 1;
    m->col = malloc(m->img);
    m->hwc = malloc(m->img);
    if (!m->col || !m->hwc)
        return xerr_set(e, XE_FAIL, "'%s': out of memory", m->s->name);
    if (m->have_y) {
        *used = 1;
        if (mat_check_counts(m, e) || mat_push_images(m, r, el, e))
            return e->code;
        return elem_end(m, r, el, e);
    }
    if (r->zlib && !el->small) {
        /* Keep the compressed rest and decode it once the labels are known. */
        if (src_detach(m, r, e))
            return e->code;
        m->xsrc = r;
        return XE_OK;
    }
    *used = 1;
    if (mat_buffer_x(m, r, el, e))
        return e->code;
    return elem_end(m, r, el, e);
}

/* One label: an integer 1..10 in any numeric type, 10 meaning digit 0. */
static int mat_label(Mat *m, const uint8_t *p, uint32_t type, size_t i, uint8_t *out, XErr *e)
{
    double v;
    switch (type) {
    case MI_INT8: v = (int8_t)p[0]; break;
    case MI_UINT8: v = p[0]; break;
    case MI_INT16: v = (int16_t)mat_u16(p, m->be); break;
    case MI_UINT16: v = mat_u16(p, m->be); break;
    case MI_INT32: v = (int32_t)mat_u32(p, m->be); break;
    case MI_UINT32: v = mat_u32(p, m->be); break;
    case MI_INT64: v = (double)(int64_t)mat_u64(p, m->be); break;
    case MI_UINT64: v = (double)mat_u64(p, m->be); break;
    case MI_SINGLE: {
        uint32_t u = mat_u32(p, m->be);
        float f;
        memcpy(&f, &u, sizeof f);
        v = f;
        break;
    }
    default: {
        uint64_t u = mat_u64(p, m->be);
        memcpy(&v, &u, sizeof v);
    }
    }
    if (!isfinite(v) || v != floor(v))
        return xerr_set(e, XE_FAIL, "'%s': record %zu: label %g is not an integer", m->s->name, i, v);
    if (v < 1 || v > 10)
        return xerr_set(e, XE_FAIL, "'%s': record %zu: label %g out of range 1..10", m->s->name, i, v);
    *out = v == 10 ? 0 : (uint8_t)v;
    return XE_OK;
}

static int mat_read_y(Mat *m, MatSrc *r, uint32_t cls, int cplx, const int32_t *dims, int nd, int more,
                      XErr *e)
{
    char d[256];
    uint8_t buf[4096];
    uint64_t n = 1;
    size_t size, i = 0;
    int big = 0;
    MatElem el;
    mat_dims_text(dims, nd, more, d, sizeof d);
    if (m->have_y)
        return xerr_set(e, XE_FAIL, "'%s': variable 'y' appears twice", m->s->name);
    if (cls < MX_DOUBLE || cls > MX_UINT64 || cplx)
        return xerr_set(e, XE_FAIL, "'%s': y is %s%s, expected numeric labels", m->s->name,
                        cplx ? "complex " : "", mat_class_name(cls));
    for (int k = 0; k < nd; k++) {
        n *= (uint64_t)(dims[k] < 0 ? 0 : dims[k]);
        big += dims[k] != 1 ? 1 + (dims[k] < 0) : 0;
    }
    if (more || big > 1 || n > UINT32_MAX)
        return xerr_set(e, XE_FAIL, "'%s': y has dims %s, expected Nx1 or 1xN", m->s->name, d);
    if (elem_begin(m, r, &el, "y data", e))
        return e->code;
    size = mat_type_size(el.type);
    if (!size)
        return xerr_set(e, XE_FAIL, "'%s': y data has element type %u, expected a numeric type", m->s->name,
                        el.type);
    if (el.n != n * size)
        return xerr_set(e, XE_FAIL, "'%s': y data holds %u bytes, expected %llu (%llu labels of %zu bytes)",
                        m->s->name, el.n, (unsigned long long)(n * size), (unsigned long long)n, size);
    /* Grown as the labels arrive: the count alone proves nothing. */
    while (i < n) {
        size_t k = (size_t)(n - i) < sizeof buf / size ? (size_t)(n - i) : sizeof buf / size;
        if (elem_read(m, r, &el, buf, k * size, "y data", e))
            return e->code;
        if (m->nlab + k > m->cap_lab) {
            size_t cap = m->cap_lab ? m->cap_lab * 2 : 4096;
            uint8_t *nl;
            if (cap > n)
                cap = (size_t)n;
            nl = realloc(m->lab, cap);
            if (!nl)
                return xerr_set(e, XE_FAIL, "'%s': out of memory for %llu labels", m->s->name,
                                (unsigned long long)n);
            m->lab = nl;
            m->cap_lab = cap;
        }
        for (size_t j = 0; j < k; j++, i++)
            if (mat_label(m, buf + j * size, el.type, i, &m->lab[i], e))
                return e->code;
        m->nlab = i;
    }
    m->have_y = 1;
    if (elem_end(m, r, &el, e))
        return e->code;
    return m->have_x ? mat_check_counts(m, e) : XE_OK;
}

/* Parses a miMATRIX element whose bytes r delivers (r->out_left of them):
 * X and y are read, other variables left for src_finish to skip. *used is
 * set when X or y was read in full. */
static int mat_read_matrix(Mat *m, MatSrc *r, int *used, XErr *e)
{
    uint8_t fl[8], dbuf[4 * MAT_MAX_DIMS];
    int32_t dims[MAT_MAX_DIMS];
    char name[64];
    uint32_t cls, w0;
    int nd, more;
    MatElem el;
    *used = 0;
    if (r->out_left == 0)
        return XE_OK; /* an empty matrix: MATLAB writes these for empty cells */
    if (elem_begin(m, r, &el, "array flags", e))
        return e->code;
    if (el.type != MI_UINT32 || el.n != 8)
        return mat_corrupt(m, r, e, "array flags of type %u and %u bytes, expected 2 miUINT32", el.type, el.n);
    if (elem_read(m, r, &el, fl, 8, "array flags", e) || elem_end(m, r, &el, e))
        return e->code;
    w0 = mat_u32(fl, m->be);
    cls = w0 & 0xff;
    if (elem_begin(m, r, &el, "dimensions", e))
        return e->code;
    if (el.type != MI_INT32 || el.n % 4 != 0 || el.n == 0)
        return mat_corrupt(m, r, e, "dimensions of type %u and %u bytes, expected miINT32", el.type, el.n);
    more = el.n / 4 > MAT_MAX_DIMS;
    nd = more ? MAT_MAX_DIMS : (int)(el.n / 4);
    if (elem_read(m, r, &el, dbuf, (size_t)nd * 4, "dimensions", e) || elem_end(m, r, &el, e))
        return e->code;
    for (int k = 0; k < nd; k++)
        dims[k] = (int32_t)mat_u32(dbuf + 4 * k, m->be);
    if (elem_begin(m, r, &el, "array name", e))
        return e->code;
    name[0] = '\0';
    if ((el.type == MI_INT8 || el.type == MI_UINT8) && el.n < sizeof name) {
        if (elem_read(m, r, &el, name, el.n, "array name", e))
            return e->code;
        name[el.n] = '\0';
    }
    if (elem_end(m, r, &el, e))
        return e->code;
    if (!strcmp(name, "X"))
        return mat_read_x(m, r, cls, (w0 & 0x800) != 0, dims, nd, more, used, e);
    if (!strcmp(name, "y")) {
        *used = 1;
        return mat_read_y(m, r, cls, (w0 & 0x800) != 0, dims, nd, more, e);
    }
    return XE_OK;
}

static int mat_read_header(Mat *m, XErr *e)
{
    uint8_t h[128];
    size_t got;
    unsigned version;
    if (xstream_read(m->s, h, sizeof h, &got, e))
        return e->code;
    if (got >= 19 && !memcmp(h, "MATLAB 7.3 MAT-file", 19))
        return xerr_set(e, XE_FAIL, "'%s': a MATLAB 7.3 (HDF5) MAT-file; save it with -v7 to read it",
                        m->s->name);
    if (got < 19 || memcmp(h, "MATLAB 5.0 MAT-file", 19))
        return xerr_set(e, XE_FAIL, "'%s': not a MAT v5 file (the header does not start with 'MATLAB 5.0 MAT-file')",
                        m->s->name);
    if (got < sizeof h)
        return xerr_set(e, XE_FAIL, "'%s': truncated: expected 128 bytes of MAT-file header, got %zu",
                        m->s->name, got);
    if (h[126] == 'I' && h[127] == 'M')
        m->be = 0;
    else if (h[126] == 'M' && h[127] == 'I')
        m->be = 1;
    else
        return xerr_set(e, XE_FAIL, "'%s': not a MAT v5 file (endian indicator 0x%02x%02x, expected 'IM' or 'MI')",
                        m->s->name, h[126], h[127]);
    version = mat_u16(h + 124, m->be);
    if (version != 0x0100)
        return xerr_set(e, XE_FAIL, "'%s': not a MAT v5 file (version 0x%04x, expected 0x0100)", m->s->name,
                        version);
    return XE_OK;
}

/* One top-level element: a matrix, a compressed matrix, or something skipped. */
static int mat_read_element(Mat *m, const uint8_t t[8], uint64_t at, XErr *e)
{
    MatSrc *r = m->xsrc == &m->slot[0] ? &m->slot[1] : &m->slot[0];
    MatElem el, inner;
    uint8_t it[8];
    int used = 0, rc;
    mat_tag_decode(t, m->be, &el);
    if (el.small)
        return el.n > 4 ? xerr_set(e, XE_FAIL, "'%s': corrupt element tag at offset %llu", m->s->name,
                                   (unsigned long long)at)
                        : XE_OK;
    if (el.type == MI_MATRIX) {
        memset(r, 0, sizeof *r);
        r->s = m->s;
        r->at = at;
        r->out_left = el.n;
        rc = mat_read_matrix(m, r, &used, e);
        if (rc == XE_OK)
            rc = src_finish(m, r, used, e);
        src_release(r);
        return rc;
    }
    if (el.type != MI_COMPRESSED)
        return mat_skip_stream(m, el.n, "element", e);
    rc = src_open_zlib(m, r, at, el.n, e);
    r->out_left = 8;
    if (rc == XE_OK)
        rc = src_read(m, r, it, 8, "compressed element tag", e);
    if (rc == XE_OK) {
        mat_tag_decode(it, m->be, &inner);
        r->out_left = inner.small ? 0 : inner.n;
        if (inner.type == MI_MATRIX && !inner.small)
            rc = mat_read_matrix(m, r, &used, e);
    }
    if (rc == XE_OK && m->xsrc != r)
        rc = src_finish(m, r, used, e);
    if (m->xsrc != r)
        src_release(r);
    return rc;
}

int svhn_begin(Builder *b, XErr *e)
{
    static const char *const digits[10] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" };
    return builder_set_classes(b, digits, 10, e);
}

int svhn_read_mat(Builder *b, XStream *s, Split split, XErr *e)
{
    Mat m;
    int rc;
    memset(&m, 0, sizeof m);
    m.b = b;
    m.s = s;
    m.split = split;
    rc = mat_read_header(&m, e);
    while (rc == XE_OK) {
        uint8_t t[8];
        uint64_t at = s->pos;
        size_t got;
        if ((rc = xstream_read(s, t, sizeof t, &got, e)) || got == 0)
            break;
        if (got < sizeof t)
            rc = xerr_set(e, XE_FAIL, "'%s': truncated: expected 8 bytes of element tag at offset %llu, got %zu",
                          s->name, (unsigned long long)at, got);
        else if ((rc = xerr_check_interrupt(e)) == XE_OK)
            rc = mat_read_element(&m, t, at, e);
    }
    if (rc)
        goto cleanup;
    if (!m.have_x) {
        rc = xerr_set(e, XE_FAIL, "'%s': no variable 'X' (the images)", s->name);
        goto cleanup;
    }
    if (!m.have_y) {
        rc = xerr_set(e, XE_FAIL, "'%s': no variable 'y' (the labels)", s->name);
        goto cleanup;
    }
    if (m.xsrc) {
        rc = mat_push_images(&m, m.xsrc, &m.xel, e);
        if (rc == XE_OK)
            rc = elem_end(&m, m.xsrc, &m.xel, e);
        if (rc == XE_OK)
            rc = src_finish(&m, m.xsrc, 1, e);
    } else if (m.xbuf) {
        rc = mat_push_images(&m, NULL, NULL, e);
    }
cleanup:
    src_release(&m.slot[0]);
    src_release(&m.slot[1]);
    free(m.lab);
    free(m.xbuf);
    free(m.col);
    free(m.hwc);
    return rc;
}
