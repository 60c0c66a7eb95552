/* NumPy readers: one .npy array per class (Quick, Draw! bitmaps) and .npz
 * archives in the keras layout (mnist.npz). The header's Python dict literal
 * is parsed here by a small strict grammar; integer arrays stream image by
 * image, float arrays are read whole because their scale depends on the max. */
#include "data/readers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

#define NPY_MAX_HEADER (1u << 20)
#define NPY_MAX_DIMS 8
/* Images reserved in the builder ahead of the data actually read: a header
 * may promise far more than the stream holds. */
#define NPY_RESERVE_BYTES ((size_t)16 << 20)
/* Keras labels become class names "0".."max". */
#define NPY_MAX_LABEL (XFER_MAX_CLASSES - 1)

typedef enum { NPY_BOOL, NPY_INT, NPY_UINT, NPY_FLOAT } NpyKind;

typedef struct NpyHeader {
    char descr[64];
    NpyKind kind;
    int size;                     /* bytes per element */
    int big;                      /* big-endian elements */
    int fortran;
    int ndim;
    uint64_t shape[NPY_MAX_DIMS];
    uint64_t count;               /* elements */
} NpyHeader;

/* How an array's shape reads as images. */
typedef struct NpyImages {
    uint64_t n;
    int h, w, c;
    size_t elems;                 /* per image: h * w * c */
} NpyImages;

/* A read buffer that grows as data arrives, never ahead of it. */
typedef struct NpyBuf {
    uint8_t *p;
    size_t cap;
} NpyBuf;

typedef struct NpyParser {
    const char *start, *p, *end;
    const char *name;
    XErr *e;
} NpyParser;

static int npy_host_big(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 0;
}

static void npy_format_shape(const NpyHeader *h, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < h->ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%llu", i ? ", " : "",
                                (unsigned long long)h->shape[i]);
    if (len < n)
        snprintf(buf + len, n - len, "%s)", h->ndim == 1 ? "," : "");
}

static int npy_syntax(NpyParser *ps, const char *what)
{
    return xerr_set(ps->e, XE_FAIL, "'%s': bad npy header: %s at header byte %zu", ps->name,
                    what, (size_t)(ps->p - ps->start));
}

static void npy_skip_space(NpyParser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int npy_parse_string(NpyParser *ps, char *out, size_t cap)
{
    const char *q;
    size_t len;
    if (ps->p == ps->end || (*ps->p != '\'' && *ps->p != '"'))
        return npy_syntax(ps, "expected a string");
    for (q = ps->p + 1; q < ps->end && *q != *ps->p && *q != '\n'; q++)
        if (*q == '\\' || (unsigned char)*q < 0x20)
            return npy_syntax(ps, "unsupported character in a string");
    if (q == ps->end || *q == '\n')
        return npy_syntax(ps, "unterminated string");
    len = (size_t)(q - ps->p - 1);
    if (len >= cap)
        return npy_syntax(ps, "string too long");
    memcpy(out, ps->p + 1, len);
    out[len] = '\0';
    ps->p = q + 1;
    return XE_OK;
}

static int npy_parse_bool(NpyParser *ps, int *v)
{
    size_t left = (size_t)(ps->end - ps->p);
    if (left >= 4 && memcmp(ps->p, "True", 4) == 0) {
        ps->p += 4;
        *v = 1;
    } else if (left >= 5 && memcmp(ps->p, "False", 5) == 0) {
        ps->p += 5;
        *v = 0;
    } else {
        return npy_syntax(ps, "expected True or False for 'fortran_order'");
    }
    return XE_OK;
}

/* A tuple of non-negative integers: "()", "(5,)", "(5, 784)", "(5, 784,)".
 * Python 2 writers may add an L suffix. */
static int npy_parse_shape(NpyParser *ps, NpyHeader *h)
{
    int commas = 0;
    if (ps->p == ps->end || *ps->p != '(')
        return npy_syntax(ps, "expected a tuple for 'shape'");
    ps->p++;
    h->ndim = 0;
    npy_skip_space(ps);
    while (ps->p < ps->end && *ps->p != ')') {
        uint64_t v = 0;
        if (*ps->p < '0' || *ps->p > '9')
            return npy_syntax(ps, "expected a non-negative integer in 'shape'");
        if (h->ndim == NPY_MAX_DIMS)
            return npy_syntax(ps, "too many dimensions in 'shape'");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (v > (UINT64_MAX >> 4))
                return npy_syntax(ps, "dimension too large in 'shape'");
            v = v * 10 + (uint64_t)(*ps->p++ - '0');
        }
        if (ps->p < ps->end && (*ps->p == 'L' || *ps->p == 'l'))
            ps->p++;
        h->shape[h->ndim++] = v;
        npy_skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            commas++;
            npy_skip_space(ps);
        } else if (ps->p < ps->end && *ps->p != ')') {
            return npy_syntax(ps, "expected ',' or ')' in 'shape'");
        }
    }
    if (ps->p == ps->end)
        return npy_syntax(ps, "unterminated 'shape' tuple");
    if (h->ndim == 1 && commas == 0)
        return npy_syntax(ps, "'shape' is not a tuple");
    ps->p++;
    return XE_OK;
}

/* "<u1", ">f8", "|b1", "=i4": byte order, kind, size. */
static int npy_parse_descr(NpyHeader *h, const char *name, XErr *e)
{
    const char *d = h->descr;
    char order = 0;
    if (strchr(d, 'O'))
        return xerr_set(e, XE_FAIL, "'%s': object arrays are not supported (dtype '%s')", name, d);
    if (*d == '<' || *d == '>' || *d == '|' || *d == '=')
        order = *d++;
    h->size = 0;
    if (d[0] && d[1] && !d[2] && d[1] >= '1' && d[1] <= '8')
        h->size = d[1] - '0';
    switch (d[0]) {
    case 'b': h->kind = NPY_BOOL; break;
    case 'i': h->kind = NPY_INT; break;
    case 'u': h->kind = NPY_UINT; break;
    case 'f': h->kind = NPY_FLOAT; break;
    default: h->size = 0;
    }
    if (h->kind == NPY_BOOL && h->size != 1)
        h->size = 0;
    if ((h->kind == NPY_INT || h->kind == NPY_UINT) &&
        h->size != 1 && h->size != 2 && h->size != 4 && h->size != 8)
        h->size = 0;
    if (h->kind == NPY_FLOAT && h->size != 4 && h->size != 8)
        h->size = 0;
    if (order == '|' && h->size > 1)
        h->size = 0;
    if (!h->size)
        return xerr_set(e, XE_FAIL,
                        "'%s': dtype '%s' is not supported (expected bool, integers or float32/float64)",
                        name, h->descr);
    h->big = order == '>' || (order == '=' && npy_host_big());
    return XE_OK;
}

/* The dict literal {'descr': ..., 'fortran_order': ..., 'shape': ...}: keys
 * in any order, each exactly once, an optional trailing comma. */
static int npy_parse_dict(NpyParser *ps, NpyHeader *h)
{
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    npy_skip_space(ps);
    if (ps->p == ps->end || *ps->p != '{')
        return npy_syntax(ps, "expected '{'");
    ps->p++;
    for (;;) {
        char key[32];
        int *seen;
        npy_skip_space(ps);
        if (ps->p < ps->end && *ps->p == '}')
            break;
        if (npy_parse_string(ps, key, sizeof key))
            return XE_FAIL;
        if (strcmp(key, "descr") == 0)
            seen = &seen_descr;
        else if (strcmp(key, "fortran_order") == 0)
            seen = &seen_fortran;
        else if (strcmp(key, "shape") == 0)
            seen = &seen_shape;
        else
            return xerr_set(ps->e, XE_FAIL, "'%s': bad npy header: unknown key '%s'", ps->name, key);
        if (*seen)
            return xerr_set(ps->e, XE_FAIL, "'%s': bad npy header: key '%s' given twice", ps->name, key);
        *seen = 1;
        npy_skip_space(ps);
        if (ps->p == ps->end || *ps->p != ':')
            return npy_syntax(ps, "expected ':'");
        ps->p++;
        npy_skip_space(ps);
        if (seen == &seen_descr) {
            if (ps->p < ps->end && *ps->p == '[')
                return xerr_set(ps->e, XE_FAIL, "'%s': structured arrays are not supported", ps->name);
            if (npy_parse_string(ps, h->descr, sizeof h->descr))
                return XE_FAIL;
        } else if (seen == &seen_fortran) {
            if (npy_parse_bool(ps, &h->fortran))
                return XE_FAIL;
        } else if (npy_parse_shape(ps, h)) {
            return XE_FAIL;
        }
        npy_skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p == ps->end || *ps->p != '}')
            return npy_syntax(ps, "expected ',' or '}'");
    }
    ps->p++;
    npy_skip_space(ps);
    if (ps->p != ps->end)
        return npy_syntax(ps, "unexpected text after the dict");
    if (!seen_descr || !seen_fortran || !seen_shape)
        return xerr_set(ps->e, XE_FAIL, "'%s': bad npy header: missing key '%s'", ps->name,
                        !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
    return XE_OK;
}

/* Magic, version, header length and the dict; leaves the stream at the data. */
static int npy_read_header(XStream *s, NpyHeader *h, XErr *e)
{
    uint8_t pre[12];
    uint32_t hlen;
    char *text = NULL;
    NpyParser ps;
    int rc = XE_FAIL;
    memset(h, 0, sizeof *h);
    if (xstream_read_exact(s, pre, 10, "npy preamble", e))
        return e->code;
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return xerr_set(e, XE_FAIL, "'%s': not an npy file (bad magic)", s->name);
    if (pre[6] < 1 || pre[6] > 3 || pre[7] != 0)
        return xerr_set(e, XE_FAIL, "'%s': unsupported npy version %u.%u", s->name, pre[6], pre[7]);
    if (pre[6] == 1) {
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    } else {
        if (xstream_read_exact(s, pre + 10, 2, "npy header length", e))
            return e->code;
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 |
               (uint32_t)pre[11] << 24;
    }
    if (hlen == 0 || hlen > NPY_MAX_HEADER)
        return xerr_set(e, XE_FAIL, "'%s': npy header length %lu is out of range 1..%u", s->name,
                        (unsigned long)hlen, NPY_MAX_HEADER);
    text = malloc(hlen);
    if (!text)
        return xerr_set(e, XE_FAIL, "'%s': out of memory", s->name);
    if (xstream_read_exact(s, text, hlen, "npy header", e))
        goto cleanup;
    ps = (NpyParser){ .start = text, .p = text, .end = text + hlen, .name = s->name, .e = e };
    if (npy_parse_dict(&ps, h) || npy_parse_descr(h, s->name, e))
        goto cleanup;
    if (h->fortran) {
        xerr_set(e, XE_FAIL, "'%s': fortran_order arrays are not supported", s->name);
        goto cleanup;
    }
    h->count = 1;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] && h->count > XFER_MAX_MEMBER / h->shape[i]) {
            char shape[256];
            npy_format_shape(h, shape, sizeof shape);
            xerr_set(e, XE_FAIL, "'%s': shape %s is larger than %zu bytes", s->name, shape,
                     XFER_MAX_MEMBER);
            goto cleanup;
        }
        h->count *= h->shape[i];
    }
    if (h->count > XFER_MAX_MEMBER / (uint64_t)h->size) {
        char shape[256];
        npy_format_shape(h, shape, sizeof shape);
        xerr_set(e, XE_FAIL, "'%s': shape %s is larger than %zu bytes", s->name, shape,
                 XFER_MAX_MEMBER);
        goto cleanup;
    }
    rc = XE_OK;
cleanup:
    free(text);
    return rc;
}

/* (N, H, W), (N, H, W, C) with C 1 or 3, or (N, D) with D a square. */
static int npy_image_shape(const NpyHeader *h, const char *name, NpyImages *im, XErr *e)
{
    char shape[256];
    uint64_t ih = 0, iw = 0, ic = 1;
    npy_format_shape(h, shape, sizeof shape);
    if (h->ndim == 2) {
        uint64_t d = h->shape[1], r = (uint64_t)sqrt((double)d);
        while (r * r > d)
            r--;
        while ((r + 1) * (r + 1) <= d)
            r++;
        if (r * r != d || d == 0)
            return xerr_set(e, XE_FAIL,
                            "'%s': shape %s is not supported: rows of %llu values are not square images",
                            name, shape, (unsigned long long)d);
        ih = iw = r;
    } else if (h->ndim == 3 || h->ndim == 4) {
        ih = h->shape[1];
        iw = h->shape[2];
        if (h->ndim == 4)
            ic = h->shape[3];
        if (ic == 4)
            return xerr_set(e, XE_FAIL,
                            "'%s': shape %s is not supported: 4 channels (RGBA), expected 1 or 3",
                            name, shape);
        if (ic != 1 && ic != 3)
            return xerr_set(e, XE_FAIL,
                            "'%s': shape %s is not supported: %llu channels, expected 1 or 3", name,
                            shape, (unsigned long long)ic);
    } else {
        return xerr_set(e, XE_FAIL,
                        "'%s': shape %s is not supported (expected (N, H, W), (N, H, W, C) or (N, H*W))",
                        name, shape);
    }
    if (ih == 0 || iw == 0 || ih > XFER_MAX_SIDE || iw > XFER_MAX_SIDE)
        return xerr_set(e, XE_FAIL, "'%s': shape %s is not supported: image side out of range 1..%d",
                        name, shape, XFER_MAX_SIDE);
    im->n = h->shape[0];
    im->h = (int)ih;
    im->w = (int)iw;
    im->c = (int)ic;
    im->elems = (size_t)(ih * iw * ic);
    return XE_OK;
}

/* Reads exactly n bytes into buf, growing it only as the bytes arrive; *got
 * says how many came when the stream ended first. */
static int npy_read_grow(XStream *s, NpyBuf *buf, size_t n, size_t *got, XErr *e)
{
    *got = 0;
    while (*got < n) {
        size_t want, k;
        if (*got == buf->cap) {
            size_t cap = buf->cap < ((size_t)1 << 16) ? (size_t)1 << 16 : buf->cap * 2;
            uint8_t *p;
            if (cap > n || cap < buf->cap)
                cap = n;
            p = realloc(buf->p, cap);
            if (!p)
                return xerr_set(e, XE_FAIL, "'%s': out of memory", s->name);
            buf->p = p;
            buf->cap = cap;
        }
        want = (buf->cap < n ? buf->cap : n) - *got;
        if (xstream_read(s, buf->p + *got, want, &k, e))
            return e->code;
        *got += k;
        if (k < want)
            break;
    }
    return XE_OK;
}

static int npy_truncated(XStream *s, const NpyImages *im, uint64_t image, XErr *e)
{
    return xerr_set(e, XE_FAIL, "'%s': truncated: data ends in image %llu of %llu", s->name,
                    (unsigned long long)image, (unsigned long long)im->n);
}

static int npy_expect_end(XStream *s, XErr *e)
{
    int end = xstream_at_end(s, e);
    if (e->code)
        return e->code;
    if (!end)
        return xerr_set(e, XE_FAIL, "'%s': unexpected bytes after the array data", s->name);
    return XE_OK;
}

static uint64_t npy_load_bits(const uint8_t *p, int size, int big)
{
    uint64_t v = 0;
    for (int i = 0; i < size; i++)
        v |= (uint64_t)p[big ? size - 1 - i : i] << (8 * i);
    return v;
}

/* Integer or bool element as a signed value; *huge when an unsigned 64-bit
 * value does not fit (it is out of every range then). */
static int64_t npy_load_int(const uint8_t *p, const NpyHeader *h, int *huge)
{
    uint64_t v = npy_load_bits(p, h->size, h->big);
    *huge = 0;
    if (h->kind == NPY_INT && h->size < 8 && (v >> (8 * h->size - 1)) & 1)
        v |= ~(uint64_t)0 << (8 * h->size);
    if (h->kind != NPY_INT && v > (uint64_t)INT64_MAX) {
        *huge = 1;
        return INT64_MAX;
    }
    return (int64_t)v;
}

static double npy_load_float(const uint8_t *p, const NpyHeader *h)
{
    uint64_t bits = npy_load_bits(p, h->size, h->big);
    if (h->size == 4) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        return f;
    } else {
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
}

static int npy_bad_value(const char *name, const NpyHeader *h, const uint8_t *p, uint64_t elem,
                         const NpyImages *im, const char *range, XErr *e)
{
    char val[64];
    int huge;
    if (h->kind == NPY_FLOAT) {
        snprintf(val, sizeof val, "%g", npy_load_float(p, h));
    } else {
        int64_t v = npy_load_int(p, h, &huge);
        if (huge)
            snprintf(val, sizeof val, "%llu",
                     (unsigned long long)npy_load_bits(p, h->size, h->big));
        else
            snprintf(val, sizeof val, "%lld", (long long)v);
    }
    return xerr_set(e, XE_FAIL, "'%s': value %s at element %llu (image %llu) is outside %s", name,
                    val, (unsigned long long)elem, (unsigned long long)(elem / im->elems), range);
}

/* n integer or bool elements to pixels; out may be raw (converted forward in
 * place). first is the element index of raw[0], for messages. */
static int npy_convert_int(const NpyHeader *h, const NpyImages *im, uint8_t *raw, size_t n,
                           uint8_t *out, uint64_t first, const char *name, XErr *e)
{
    if (h->kind == NPY_UINT && h->size == 1) {
        if (out != raw)
            memcpy(out, raw, n);
        return XE_OK;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = raw + i * (size_t)h->size;
        int huge;
        int64_t v = npy_load_int(p, h, &huge);
        if (h->kind == NPY_BOOL) {
            if (v != 0 && v != 1)
                return npy_bad_value(name, h, p, first + i, im, "0..1 (bool)", e);
            out[i] = v ? 255 : 0;
        } else {
            if (huge || v < 0 || v > 255)
                return npy_bad_value(name, h, p, first + i, im, "0..255", e);
            out[i] = (uint8_t)v;
        }
    }
    return XE_OK;
}

/* Whole float arrays: [0, 1] scaled to 0..255 when the max is at most 1,
 * else values in [0, 255]; both rounded. Converted forward in place. */
static int npy_convert_float(const NpyHeader *h, const NpyImages *im, uint8_t *raw, size_t n,
                             const char *name, XErr *e)
{
    double max = 0;
    int unit;
    for (size_t i = 0; i < n; i++) {
        double v = npy_load_float(raw + i * (size_t)h->size, h);
        if (isnan(v))
            return xerr_set(e, XE_FAIL, "'%s': NaN at element %zu (image %llu)", name, i,
                            (unsigned long long)(i / im->elems));
        if (v > max)
            max = v;
    }
    unit = max <= 1.0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = raw + i * (size_t)h->size;
        double v = npy_load_float(p, h);
        if (v < 0 || v > (unit ? 1.0 : 255.0))
            return npy_bad_value(name, h, p, i, im, unit ? "0..1" : "0..255", e);
        raw[i] = (uint8_t)floor((unit ? v * 255.0 : v) + 0.5);
    }
    return XE_OK;
}

/* Reads the whole data of an array and converts it to pixels (or leaves
 * integer labels raw when pixels is 0); *out is (count,) bytes when converted. */
static int npy_read_whole(XStream *s, const NpyHeader *h, const NpyImages *im, int pixels,
                          NpyBuf *buf, XErr *e)
{
    size_t bytes = (size_t)h->count * (size_t)h->size, got;
    if (npy_read_grow(s, buf, bytes, &got, e))
        return e->code;
    if (got < bytes)
        return npy_truncated(s, im, got / (im->elems * (size_t)h->size), e);
    if (npy_expect_end(s, e))
        return e->code;
    if (!pixels)
        return XE_OK;
    if (h->kind == NPY_FLOAT)
        return npy_convert_float(h, im, buf->p, (size_t)h->count, s->name, e);
    return npy_convert_int(h, im, buf->p, (size_t)h->count, buf->p, 0, s->name, e);
}

/* Integer arrays: one image at a time, reserving builder room only a little
 * ahead of the data read so far. */
static int npy_add_stream(Builder *b, XStream *s, const NpyHeader *h, const NpyImages *im,
                          int label, NpyBuf *buf, XErr *e)
{
    size_t img_bytes = im->elems * (size_t)h->size, chunk = NPY_RESERVE_BYTES / im->elems + 1;
    char where[640];
    for (uint64_t i = 0; i < im->n; i++) {
        size_t got;
        if (i % chunk == 0) {
            uint64_t left = im->n - i;
            if (builder_reserve(b, SPLIT_TRAIN, left < chunk ? (size_t)left : chunk, e))
                return e->code;
        }
        if (npy_read_grow(s, buf, img_bytes, &got, e))
            return e->code;
        if (got < img_bytes)
            return npy_truncated(s, im, i, e);
        if (npy_convert_int(h, im, buf->p, im->elems, buf->p, i * im->elems, s->name, e))
            return e->code;
        snprintf(where, sizeof where, "'%s': image %llu", s->name, (unsigned long long)i);
        if (builder_add(b, SPLIT_TRAIN, label, buf->p, im->h, im->w, im->c, where, e))
            return e->code;
    }
    return npy_expect_end(s, e);
}

int npy_read_class(Builder *b, XStream *s, const char *class_name, XErr *e)
{
    NpyHeader h;
    NpyImages im;
    NpyBuf buf = { 0 };
    char where[640];
    int label, rc = XE_FAIL;
    if (npy_read_header(s, &h, e) || npy_image_shape(&h, s->name, &im, e))
        goto cleanup;
    if (im.n == 0) {
        xerr_set(e, XE_FAIL, "'%s': the array holds no images", s->name);
        goto cleanup;
    }
    if (builder_class(b, class_name, &label, e))
        goto cleanup;
    if (h.kind != NPY_FLOAT) {
        rc = npy_add_stream(b, s, &h, &im, label, &buf, e);
        goto cleanup;
    }
    if (npy_read_whole(s, &h, &im, 1, &buf, e) || builder_reserve(b, SPLIT_TRAIN, (size_t)im.n, e))
        goto cleanup;
    for (uint64_t i = 0; i < im.n; i++) {
        snprintf(where, sizeof where, "'%s': image %llu", s->name, (unsigned long long)i);
        if (builder_add(b, SPLIT_TRAIN, label, buf.p + i * im.elems, im.h, im.w, im.c, where, e))
            goto cleanup;
    }
    rc = XE_OK;
cleanup:
    free(buf.p);
    return rc;
}

/* Keras layout: x_<set> holds images, y_<set> their labels. */
enum { NPZ_TRAIN, NPZ_VALID, NPZ_VAL, NPZ_TEST, NPZ_SETS };
static const char *const npz_set_names[NPZ_SETS] = { "train", "valid", "val", "test" };
static const Split npz_set_split[NPZ_SETS] = { SPLIT_TRAIN, SPLIT_VALID, SPLIT_VALID, SPLIT_TEST };

typedef struct NpzArray {
    int present;
    char where[512];      /* the stream name, for messages */
    uint64_t n;
    uint8_t *pix;         /* x: (n, h, w, c) */
    int h, w, c;
    uint16_t *lab;        /* y: (n,) */
} NpzArray;

struct NpzKeras {
    NpzArray x[NPZ_SETS], y[NPZ_SETS];
};

/* Which array a member name is: 1 and *is_x / *set, or 0. */
static int npz_keras_slot(const char *name, int *is_x, int *set)
{
    const char *base = strrchr(name, '/');
    size_t len;
    base = base ? base + 1 : name;
    len = strlen(base);
    if (len >= 4 && strcmp(base + len - 4, ".npy") == 0)
        len -= 4;
    if (len < 3 || (base[0] != 'x' && base[0] != 'y') || base[1] != '_')
        return 0;
    for (int i = 0; i < NPZ_SETS; i++)
        if (len - 2 == strlen(npz_set_names[i]) && memcmp(base + 2, npz_set_names[i], len - 2) == 0) {
            *is_x = base[0] == 'x';
            *set = i;
            return 1;
        }
    return 0;
}

int npz_is_keras_name(const char *name)
{
    int is_x, set;
    return npz_keras_slot(name, &is_x, &set);
}

NpzKeras *npz_keras_new(void)
{
    return calloc(1, sizeof(NpzKeras));
}

static void npz_array_release(NpzArray *a)
{
    free(a->pix);
    free(a->lab);
    a->pix = NULL;
    a->lab = NULL;
}

void npz_keras_free(NpzKeras *k)
{
    if (!k)
        return;
    for (int i = 0; i < NPZ_SETS; i++) {
        npz_array_release(&k->x[i]);
        npz_array_release(&k->y[i]);
    }
    free(k);
}

static int npz_read_images(NpzArray *a, XStream *s, const NpyHeader *h, XErr *e)
{
    NpyImages im;
    NpyBuf buf = { 0 };
    if (npy_image_shape(h, s->name, &im, e) || npy_read_whole(s, h, &im, 1, &buf, e)) {
        free(buf.p);
        return e->code;
    }
    /* Converted in place: only the first count bytes are pixels now. */
    if (h->size > 1 && h->count > 0) {
        uint8_t *p = realloc(buf.p, (size_t)h->count);
        if (p)
            buf.p = p;
    }
    a->pix = buf.p;
    a->n = im.n;
    a->h = im.h;
    a->w = im.w;
    a->c = im.c;
    return XE_OK;
}

static int npz_read_labels(NpzArray *a, XStream *s, const NpyHeader *h, XErr *e)
{
    char shape[256];
    NpyImages im = { .elems = 1 };
    NpyBuf buf = { 0 };
    int rc = XE_FAIL;
    npy_format_shape(h, shape, sizeof shape);
    if (h->kind == NPY_FLOAT) {
        xerr_set(e, XE_FAIL, "'%s': labels must be integers, not dtype '%s'", s->name, h->descr);
        goto cleanup;
    }
    if (h->ndim < 1 || h->ndim > 2 || (h->ndim == 2 && h->shape[1] != 1)) {
        xerr_set(e, XE_FAIL, "'%s': labels of shape %s are not supported (expected (N,) or (N, 1))",
                 s->name, shape);
        goto cleanup;
    }
    im.n = h->shape[0];
    if (npy_read_whole(s, h, &im, 0, &buf, e))
        goto cleanup;
    a->lab = malloc((size_t)im.n * sizeof *a->lab + 1);
    if (!a->lab) {
        xerr_set(e, XE_FAIL, "'%s': out of memory", s->name);
        goto cleanup;
    }
    for (uint64_t i = 0; i < im.n; i++) {
        int huge;
        int64_t v = npy_load_int(buf.p + i * (size_t)h->size, h, &huge);
        if (huge || v < 0 || v > NPY_MAX_LABEL) {
            xerr_set(e, XE_FAIL, "'%s': label %lld at element %llu is outside 0..%d", s->name,
                     (long long)v, (unsigned long long)i, NPY_MAX_LABEL);
            goto cleanup;
        }
        a->lab[i] = (uint16_t)v;
    }
    a->n = im.n;
    rc = XE_OK;
cleanup:
    free(buf.p);
    return rc;
}

int npz_keras_member(NpzKeras *k, XStream *s, const char *member, XErr *e)
{
    NpyHeader h;
    NpzArray *a;
    int is_x, set;
    if (!npz_keras_slot(member, &is_x, &set))
        return xerr_set(e, XE_FAIL, "'%s': not a keras npz member (expected x_train.npy, y_train.npy, ...)",
                        s->name);
    a = is_x ? &k->x[set] : &k->y[set];
    if (a->present)
        return xerr_set(e, XE_FAIL, "'%s': member given twice", s->name);
    a->present = 1;
    snprintf(a->where, sizeof a->where, "%s", s->name);
    if (npy_read_header(s, &h, e))
        return e->code;
    return is_x ? npz_read_images(a, s, &h, e) : npz_read_labels(a, s, &h, e);
}

static int npz_add_set(NpzArray *x, NpzArray *y, Split split, Builder *b, XErr *e)
{
    size_t img = (size_t)x->h * (size_t)x->w * (size_t)x->c;
    char where[640];
    if (x->n && builder_reserve(b, split, (size_t)x->n, e))
        return e->code;
    for (uint64_t i = 0; i < x->n; i++) {
        snprintf(where, sizeof where, "'%s': image %llu", x->where, (unsigned long long)i);
        if (builder_add(b, split, y->lab[i], x->pix + i * img, x->h, x->w, x->c, where, e))
            return e->code;
    }
    npz_array_release(x);
    npz_array_release(y);
    return XE_OK;
}

int npz_keras_finish(NpzKeras *k, Builder *b, const char *source, XErr *e)
{
    const char **names = NULL;
    char *text = NULL;
    int max = -1, rc = XE_FAIL;
    for (int i = 0; i < NPZ_SETS; i++) {
        const char *set = npz_set_names[i];
        if (k->x[i].present != k->y[i].present) {
            xerr_set(e, XE_FAIL, "'%s': member %c_%s.npy has no matching %c_%s.npy", source,
                     k->x[i].present ? 'x' : 'y', set, k->x[i].present ? 'y' : 'x', set);
            goto cleanup;
        }
        if (k->x[i].n != k->y[i].n) {
            xerr_set(e, XE_FAIL, "'%s': x_%s.npy holds %llu images but y_%s.npy holds %llu labels",
                     source, set, (unsigned long long)k->x[i].n, set, (unsigned long long)k->y[i].n);
            goto cleanup;
        }
        for (uint64_t j = 0; j < k->y[i].n; j++)
            if (k->y[i].lab[j] > max)
                max = k->y[i].lab[j];
    }
    if (!k->x[NPZ_TRAIN].present) {
        xerr_set(e, XE_FAIL, "'%s': no x_train.npy and y_train.npy members", source);
        goto cleanup;
    }
    if (max < 0) {
        xerr_set(e, XE_FAIL, "'%s': the keras arrays hold no images", source);
        goto cleanup;
    }
    names = malloc((size_t)(max + 1) * sizeof *names);
    text = malloc((size_t)(max + 1) * 12);
    if (!names || !text) {
        xerr_set(e, XE_FAIL, "'%s': out of memory", source);
        goto cleanup;
    }
    for (int i = 0; i <= max; i++) {
        snprintf(text + (size_t)i * 12, 12, "%d", i);
        names[i] = text + (size_t)i * 12;
    }
    if (builder_set_classes(b, names, max + 1, e))
        goto cleanup;
    for (int i = 0; i < NPZ_SETS; i++)
        if (k->x[i].present && npz_add_set(&k->x[i], &k->y[i], npz_set_split[i], b, e))
            goto cleanup;
    rc = XE_OK;
cleanup:
    free(names);
    free(text);
    return rc;
}

void npy_class_name(const char *path, char *out, size_t cap)
{
    static const char prefix[] = "full_numpy_bitmap_";
    const char *b = strrchr(path, '/');
    size_t n;
    b = b ? b + 1 : path;
    if (!strncmp(b, prefix, sizeof prefix - 1) && b[sizeof prefix - 1])
        b += sizeof prefix - 1;
    n = strlen(b);
    if (n > 3 && !strcmp(b + n - 3, ".gz"))
        n -= 3;
    if (n > 4 && !strncasecmp(b + n - 4, ".npy", 4))
        n -= 4;
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), b);
}
