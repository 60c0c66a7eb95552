/* Streams with gzip detection: the first raw chunk is peeked for 1f 8b. */
#include "core/stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

#define IN_CAP (1u << 17)

static ssize_t file_read(void *ctx, void *buf, size_t n)
{
    FILE *f = ctx;
    size_t got = fread(buf, 1, n, f);
    if (got == 0 && ferror(f))
        return -1;
    return (ssize_t)got;
}

static int fill(XStream *s, XErr *e)
{
    ssize_t got;
    if (s->raw_eof) {
        s->in_len = s->in_pos = 0;
        return XE_OK;
    }
    got = s->rd(s->ctx, s->in, IN_CAP);
    if (got < 0 && xfer_interrupted)
        return xerr_set(e, XE_INTR, "interrupted");
    if (got < 0)
        return xerr_set(e, XE_FAIL, "'%s': read error%s%s", s->name,
                        errno ? ": " : "", errno ? strerror(errno) : "");
    s->in_len = (size_t)got;
    s->in_pos = 0;
    if (got == 0)
        s->raw_eof = 1;
    return XE_OK;
}

static int start(XStream *s, XErr *e)
{
    s->in = malloc(IN_CAP);
    if (!s->in)
        return xerr_set(e, XE_FAIL, "'%s': out of memory", s->name);
    if (fill(s, e))
        return e->code;
    /* Short raw sources may need a second read to show two magic bytes. */
    if (s->in_len == 1 && !s->raw_eof) {
        ssize_t got = s->rd(s->ctx, s->in + 1, IN_CAP - 1);
        if (got < 0)
            return xerr_set(e, XE_FAIL, "'%s': read error", s->name);
        s->in_len += (size_t)got;
    }
    if (s->in_len >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b) {
        s->gz = 1;
        if (inflateInit2(&s->z, 15 + 16) != Z_OK)
            return xerr_set(e, XE_FAIL, "'%s': cannot start gzip decoder", s->name);
    }
    return XE_OK;
}

int xstream_open_fn(XStream *s, XReadFn rd, void *ctx, const char *name, XErr *e)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->rd = rd;
    s->ctx = ctx;
    return start(s, e);
}

int xstream_open_file(XStream *s, FILE *f, const char *name, XErr *e)
{
    return xstream_open_fn(s, file_read, f, name, e);
}

int xstream_open_path(XStream *s, const char *path, XErr *e)
{
    FILE *f = fopen(path, "rb");
    int rc;
    if (!f) {
        memset(s, 0, sizeof *s);
        return xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
    }
    rc = xstream_open_file(s, f, path, e);
    s->own = f;
    return rc;
}

void xstream_release(XStream *s)
{
    if (s->gz)
        inflateEnd(&s->z);
    if (s->own)
        fclose(s->own);
    free(s->in);
    memset(s, 0, sizeof *s);
}

static int read_gz(XStream *s, unsigned char *buf, size_t n, size_t *got, XErr *e)
{
    *got = 0;
    while (*got < n && !s->gz_end) {
        int zr;
        uInt before;
        if (s->in_pos == s->in_len) {
            if (fill(s, e))
                return e->code;
            if (s->in_len == 0)
                return xerr_set(e, XE_FAIL, "'%s': truncated gzip stream after %llu bytes",
                                s->name, (unsigned long long)(s->pos + *got));
        }
        s->z.next_in = s->in + s->in_pos;
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        s->z.next_out = buf + *got;
        s->z.avail_out = (uInt)((n - *got) > (1u << 30) ? (1u << 30) : (n - *got));
        before = s->z.avail_out;
        zr = inflate(&s->z, Z_NO_FLUSH);
        *got += before - s->z.avail_out;
        s->in_pos = s->in_len - s->z.avail_in;
        if (zr == Z_STREAM_END) {
            /* Concatenated gzip members continue; anything else ends it. */
            if (s->in_pos == s->in_len && fill(s, e))
                return e->code;
            if (s->in_pos < s->in_len && s->in[s->in_pos] == 0x1f) {
                inflateReset(&s->z);
                continue;
            }
            s->gz_end = 1;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return xerr_set(e, XE_FAIL, "'%s': corrupt gzip data near byte %llu: %s", s->name,
                            (unsigned long long)(s->pos + *got),
                            s->z.msg ? s->z.msg : "inflate failed");
        }
    }
    return XE_OK;
}

int xstream_read(XStream *s, void *buf, size_t n, size_t *got, XErr *e)
{
    unsigned char *p = buf;
    *got = 0;
    if (s->gz) {
        int rc = read_gz(s, p, n, got, e);
        s->pos += *got;
        return rc;
    }
    while (*got < n) {
        size_t take;
        if (s->in_pos == s->in_len) {
            if (fill(s, e))
                return e->code;
            if (s->in_len == 0)
                break;
        }
        take = s->in_len - s->in_pos;
        if (take > n - *got)
            take = n - *got;
        memcpy(p + *got, s->in + s->in_pos, take);
        s->in_pos += take;
        *got += take;
    }
    s->pos += *got;
    return XE_OK;
}

int xstream_read_exact(XStream *s, void *buf, size_t n, const char *what, XErr *e)
{
    uint64_t at = s->pos;
    size_t got;
    if (xstream_read(s, buf, n, &got, e))
        return e->code;
    if (got < n)
        return xerr_set(e, XE_FAIL, "'%s': truncated: expected %zu bytes of %s at offset %llu, got %zu",
                        s->name, n, what, (unsigned long long)at, got);
    return XE_OK;
}

int xstream_at_end(XStream *s, XErr *e)
{
    unsigned char c;
    size_t got;
    if (xstream_read(s, &c, 1, &got, e))
        return -1;
    return got == 0;
}

int xstream_read_all(XStream *s, uint8_t **out, size_t *n, size_t max, XErr *e)
{
    size_t cap = max < (1u << 16) ? max + 1 : 1u << 16, len = 0;
    uint8_t *buf = malloc(cap);
    *out = NULL;
    *n = 0;
    if (!buf)
        return xerr_set(e, XE_FAIL, "'%s': out of memory", s->name);
    /* One byte of room past max tells "more than max" from "exactly max". */
    for (;;) {
        size_t got;
        if (len == cap) {
            uint8_t *nb;
            cap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
            nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return xerr_set(e, XE_FAIL, "'%s': out of memory", s->name);
            }
            buf = nb;
        }
        if (xstream_read(s, buf + len, cap - len, &got, e)) {
            free(buf);
            return e->code;
        }
        len += got;
        if (len > max) {
            free(buf);
            return xerr_set(e, XE_FAIL, "'%s': data continues after %zu bytes", s->name, max);
        }
        if (got == 0)
            break;
    }
    *out = buf;
    *n = len;
    return XE_OK;
}

int xfile_read_all(const char *path, uint8_t **out, size_t *n, size_t max, XErr *e)
{
    XStream s;
    int rc = xstream_open_path(&s, path, e);
    if (rc == XE_OK)
        rc = xstream_read_all(&s, out, n, max ? max : XFER_MAX_MEMBER, e);
    xstream_release(&s);
    return rc;
}
