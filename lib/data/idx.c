/* IDX files (MNIST, Fashion-MNIST, KMNIST): big-endian headers, u8 payloads,
 * gzip-compressed or raw. Labels are read first so classes are known. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "data/readers.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int read_header(XStream *s, int *ndims, uint32_t dims[4], XErr *e)
{
    uint8_t m[4], d[16];
    if (xstream_read_exact(s, m, 4, "IDX magic", e))
        return e->code;
    if (m[0] != 0 || m[1] != 0 || m[3] < 1 || m[3] > 4)
        return xerr_set(e, XE_FAIL, "'%s': not an IDX file (magic %02x %02x %02x %02x)", s->name, m[0],
                        m[1], m[2], m[3]);
    if (m[2] != 0x08)
        return xerr_set(e, XE_FAIL, "'%s': IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                        s->name, m[2]);
    *ndims = m[3];
    if (xstream_read_exact(s, d, 4u * m[3], "IDX dimensions", e))
        return e->code;
    for (int i = 0; i < *ndims; i++)
        dims[i] = be32(d + 4 * i);
    return XE_OK;
}

int idx_read_array(XStream *s, int *ndims, uint32_t dims[4], uint8_t **data, XErr *e)
{
    uint64_t n = 1;
    size_t got;
    *data = NULL;
    if (read_header(s, ndims, dims, e))
        return e->code;
    for (int i = 0; i < *ndims; i++) {
        n *= dims[i];
        if (n > XFER_MAX_MEMBER)
            return xerr_set(e, XE_FAIL, "'%s': IDX array too large", s->name);
    }
    /* Grow with the data actually there: the header is not trusted. */
    if (xstream_read_all(s, data, &got, (size_t)n, e))
        return e->code;
    if (got < n) {
        free(*data);
        *data = NULL;
        return xerr_set(e, XE_FAIL, "'%s': truncated: the header declares %llu bytes of data, the file has %zu",
                        s->name, (unsigned long long)n, got);
    }
    return XE_OK;
}

/* Pairing key: the base name without images/labels/idxN/ubyte/.gz words. */
static void pair_key(const char *path, char *key, size_t cap, int *is_labels)
{
    const char *base = strrchr(path, '/');
    char tmp[512], *tok, *save = NULL;
    size_t n = 0;
    snprintf(tmp, sizeof tmp, "%s", base ? base + 1 : path);
    *is_labels = 0;
    key[0] = '\0';
    for (tok = strtok_r(tmp, "-_.", &save); tok; tok = strtok_r(NULL, "-_.", &save)) {
        if (!strcmp(tok, "labels") || !strcmp(tok, "lbls") || !strcmp(tok, "labs")) {
            *is_labels = 1;
            continue;
        }
        if (!strcmp(tok, "images") || !strcmp(tok, "imgs") || !strncmp(tok, "idx", 3) ||
            !strcmp(tok, "ubyte") || !strcmp(tok, "gz"))
            continue;
        n += (size_t)snprintf(key + n, n < cap ? cap - n : 0, "%s-", tok);
    }
}

typedef struct IdxPair {
    const char *images, *labels;
    uint8_t *lab;
    uint32_t nlab;
} IdxPair;

static int read_images(Builder *b, IdxPair *p, XErr *e)
{
    XStream s;
    int nd, rc;
    uint32_t dims[4];
    uint8_t *img = NULL;
    char where[600];
    size_t bytes;
    Split split = split_from_name(p->images);
    if (xstream_open_path(&s, p->images, e))
        return e->code;
    rc = read_header(&s, &nd, dims, e);
    if (rc == XE_OK && nd != 3 && !(nd == 4 && (dims[3] == 1 || dims[3] == 3)))
        rc = xerr_set(e, XE_FAIL, "'%s': %d-dimensional IDX array is not an image set (N, H, W[, C])",
                      p->images, nd);
    if (rc == XE_OK && dims[0] != p->nlab)
        rc = xerr_set(e, XE_FAIL, "'%s': %u images but '%s' has %u labels", p->images, dims[0], p->labels,
                      p->nlab);
    if (rc == XE_OK && (dims[1] == 0 || dims[2] == 0 || dims[1] > XFER_MAX_SIDE || dims[2] > XFER_MAX_SIDE))
        rc = xerr_set(e, XE_FAIL, "'%s': image size %ux%u out of range", p->images, dims[1], dims[2]);
    if (rc)
        goto cleanup;
    bytes = (size_t)dims[1] * dims[2] * (nd == 4 ? dims[3] : 1);
    img = malloc(bytes);
    if (!img || builder_reserve(b, split, dims[0], e)) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    for (uint32_t i = 0; i < dims[0]; i++) {
        snprintf(where, sizeof where, "'%s': image %u", p->images, i);
        if ((rc = xstream_read_exact(&s, img, bytes, "an image", e)) ||
            (rc = builder_add(b, split, p->lab[i], img, (int)dims[1], (int)dims[2],
                              nd == 4 ? (int)dims[3] : 1, where, e)))
            goto cleanup;
    }
    rc = xstream_at_end(&s, e);
    if (rc < 0)
        rc = e->code;
    else if (rc == 1)
        rc = XE_OK;
    else
        rc = xerr_set(e, XE_FAIL, "'%s': data continues after the %u images the header declares",
                      p->images, dims[0]);
cleanup:
    free(img);
    xstream_release(&s);
    return rc;
}

int idx_read_files(Builder *b, char *const *paths, int n, XErr *e)
{
    IdxPair *pairs = calloc((size_t)n + 1, sizeof *pairs);
    char (*keys)[256] = calloc((size_t)n + 1, sizeof *keys);
    int npairs = 0, rc = XE_FAIL, maxlab = -1;
    if (!pairs || !keys) {
        xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        char key[256];
        int lab, j;
        pair_key(paths[i], key, sizeof key, &lab);
        for (j = 0; j < npairs && strcmp(keys[j], key) != 0; j++)
            ;
        if (j == npairs)
            snprintf(keys[npairs++], sizeof *keys, "%s", key);
        if (lab ? pairs[j].labels != NULL : pairs[j].images != NULL) {
            xerr_set(e, XE_FAIL, "'%s': a second %s file for the same split", paths[i], lab ? "labels" : "images");
            goto cleanup;
        }
        *(lab ? &pairs[j].labels : &pairs[j].images) = paths[i];
    }
    for (int j = 0; j < npairs; j++) {
        XStream s;
        int nd, r;
        uint32_t dims[4];
        if (!pairs[j].images || !pairs[j].labels) {
            xerr_set(e, XE_FAIL, "'%s': no matching %s file", pairs[j].images ? pairs[j].images : pairs[j].labels,
                     pairs[j].images ? "labels" : "images");
            goto cleanup;
        }
        if (xstream_open_path(&s, pairs[j].labels, e))
            goto cleanup;
        r = idx_read_array(&s, &nd, dims, &pairs[j].lab, e);
        xstream_release(&s);
        if (r)
            goto cleanup;
        if (nd != 1) {
            xerr_set(e, XE_FAIL, "'%s': labels must be 1-dimensional, got %d dimensions", pairs[j].labels, nd);
            goto cleanup;
        }
        pairs[j].nlab = dims[0];
        for (uint32_t i = 0; i < dims[0]; i++)
            if (pairs[j].lab[i] > maxlab)
                maxlab = pairs[j].lab[i];
    }
    {
        char names[256][4];
        const char *ptr[256] = { 0 };
        for (int k = 0; k <= maxlab; k++) {
            snprintf(names[k], sizeof names[k], "%d", k);
            ptr[k] = names[k];
        }
        if (builder_set_classes(b, ptr, maxlab + 1, e))
            goto cleanup;
    }
    for (int j = 0; j < npairs; j++)
        if (read_images(b, &pairs[j], e))
            goto cleanup;
    rc = XE_OK;
cleanup:
    if (pairs)
        for (int j = 0; j < npairs; j++)
            free(pairs[j].lab);
    free(pairs);
    free(keys);
    return rc;
}
