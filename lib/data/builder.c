/* The dataset builder: option transforms, shape checks, per-class reservoir,
 * stratified validation split and statistics (see builder.h). */
#include "data/builder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb_image_resize.h>

#include "core/config.h"

const char *const split_names[SPLIT_COUNT] = { "train", "valid", "test" };

void builder_init(Builder *b, const IngestOpts *opt)
{
    memset(b, 0, sizeof *b);
    b->opt = opt;
    rng_seed(&b->rng, opt->seed);
}

void builder_release(Builder *b)
{
    for (int i = 0; i < b->ncls; i++) {
        free(b->cls[i].name);
        free(b->cls[i].kept);
    }
    free(b->cls);
    free(b->token_hit);
    for (int s = 0; s < SPLIT_COUNT; s++) {
        free(b->split[s].pix);
        free(b->split[s].lab);
    }
    free(b->tmp);
    if (b->out_names)
        for (int i = 0; i < b->nout; i++)
            free(b->out_names[i]);
    free(b->out_names);
    free(b->to_valid);
    memset(b, 0, sizeof *b);
}

/* Output label of a source class under --classes: the position of the first
 * token naming it, or naming its source label when the source fixes labels. */
static int class_output(Builder *b, int label, const char *name)
{
    const IngestOpts *o = b->opt;
    if (!o->classes)
        return label;
    for (int t = 0; t < o->nclasses; t++)
        if (strcmp(o->classes[t], name) == 0)
            return b->token_hit[t] = 1, t;
    if (b->fixed)
        for (int t = 0; t < o->nclasses; t++) {
            char *end;
            long v = strtol(o->classes[t], &end, 10);
            if (*o->classes[t] && !*end && v == label)
                return b->token_hit[t] = 1, t;
        }
    return -1;
}

static int add_class(Builder *b, const char *name, XErr *e)
{
    BuilderClass *c;
    if (b->ncls >= XFER_MAX_CLASSES)
        return xerr_set(e, XE_FAIL, "more than %d classes", XFER_MAX_CLASSES);
    if (b->opt->classes && !b->token_hit)
        b->token_hit = calloc((size_t)b->opt->nclasses, sizeof *b->token_hit);
    if (b->ncls == b->cap_cls) {
        int cap = b->cap_cls ? b->cap_cls * 2 : 16;
        BuilderClass *n = realloc(b->cls, (size_t)cap * sizeof *n);
        if (!n)
            return xerr_set(e, XE_FAIL, "out of memory");
        b->cls = n;
        b->cap_cls = cap;
    }
    c = &b->cls[b->ncls];
    memset(c, 0, sizeof *c);
    c->name = strdup(name);
    if (!c->name || (b->opt->classes && !b->token_hit))
        return xerr_set(e, XE_FAIL, "out of memory");
    c->out = class_output(b, b->ncls, name);
    b->ncls++;
    return XE_OK;
}

int builder_set_classes(Builder *b, const char *const *names, int n, XErr *e)
{
    if (b->ncls)
        return xerr_set(e, XE_FAIL, "classes declared twice");
    b->fixed = 1;
    for (int i = 0; i < n; i++)
        if (add_class(b, names[i], e))
            return e->code;
    return XE_OK;
}

int builder_rename_class(Builder *b, int label, const char *name, XErr *e)
{
    char *n;
    if (label < 0 || label >= b->ncls)
        return xerr_set(e, XE_FAIL, "class %d out of range", label);
    if (!strcmp(b->cls[label].name, name))
        return XE_OK;
    if (b->opt->classes && b->added)
        return xerr_set(e, XE_FAIL, "class %d is named '%s' after images were selected as '%s'", label, name,
                        b->cls[label].name);
    n = strdup(name);
    if (!n)
        return xerr_set(e, XE_FAIL, "out of memory");
    free(b->cls[label].name);
    b->cls[label].name = n;
    if (b->opt->classes) {
        /* --classes may name the new names: map every class again */
        memset(b->token_hit, 0, (size_t)b->opt->nclasses * sizeof *b->token_hit);
        for (int i = 0; i < b->ncls; i++)
            b->cls[i].out = class_output(b, i, b->cls[i].name);
    }
    return XE_OK;
}

int builder_class(Builder *b, const char *name, int *label, XErr *e)
{
    if (b->fixed)
        return xerr_set(e, XE_FAIL, "class '%s' found in a source with fixed classes", name);
    for (int i = 0; i < b->ncls; i++)
        if (strcmp(b->cls[i].name, name) == 0)
            return *label = i, XE_OK;
    if (add_class(b, name, e))
        return e->code;
    *label = b->ncls - 1;
    return XE_OK;
}

static int grow(SplitBuf *sb, size_t need, size_t img, XErr *e)
{
    size_t cap;
    uint8_t *p;
    uint16_t *l;
    if (need <= sb->cap)
        return XE_OK;
    if (sb->want >= need) {
        /* the reader's count, in steps of at most 256 MiB: counts in
         * headers are not trusted to be backed by data */
        size_t step = img ? ((size_t)256 << 20) / img + 1 : sb->want;
        cap = sb->want - need > step ? need + step : sb->want;
    } else {
        /* start with 1024 images, or 64 MiB of large ones */
        cap = sb->cap ? sb->cap : img && img > ((size_t)64 << 20) / 1024 ? ((size_t)64 << 20) / img + 1 : 1024;
        while (cap < need)
            cap *= 2;
    }
    if (img && cap > SIZE_MAX / img)
        return xerr_set(e, XE_FAIL, "dataset too large");
    p = realloc(sb->pix, cap * (img ? img : 1));
    if (!p)
        return xerr_set(e, XE_FAIL, "out of memory for %zu images", cap);
    sb->pix = p;
    l = realloc(sb->lab, cap * sizeof *l);
    if (!l)
        return xerr_set(e, XE_FAIL, "out of memory for %zu labels", cap);
    sb->lab = l;
    sb->cap = cap;
    return XE_OK;
}

static size_t image_bytes(const Builder *b)
{
    return (size_t)b->h * (size_t)b->w * (size_t)b->c;
}

int builder_reserve(Builder *b, Split s, size_t n, XErr *e)
{
    (void)e;
    /* Most of it may be dropped under --classes or a limit: grow as needed. */
    if (!b->opt->classes && !b->opt->limit_per_class)
        b->split[s].want = b->split[s].n + n;
    return XE_OK;
}

static uint8_t *scratch(Builder *b, size_t n, XErr *e)
{
    if (n > b->tmp_cap) {
        uint8_t *t = realloc(b->tmp, n);
        if (!t) {
            xerr_set(e, XE_FAIL, "out of memory");
            return NULL;
        }
        b->tmp = t;
        b->tmp_cap = n;
    }
    return b->tmp;
}

/* ITU-R BT.601 luma, rounded: the usual RGB to gray conversion. */
static void to_gray(const uint8_t *src, uint8_t *dst, size_t npix)
{
    for (size_t i = 0; i < npix; i++)
        dst[i] = (uint8_t)((299u * src[3 * i] + 587u * src[3 * i + 1] + 114u * src[3 * i + 2] + 500u) / 1000u);
}

/* Writes the transformed image (grayscale, resize, channel expansion) into
 * dst, which holds image_bytes(b). */
static int transform(Builder *b, const uint8_t *pix, int h, int w, int c, uint8_t *dst,
                     const char *where, XErr *e)
{
    const IngestOpts *o = b->opt;
    size_t npix = (size_t)h * (size_t)w;
    const uint8_t *cur = pix;
    uint8_t *buf = NULL;
    int oh = o->resize_h ? o->resize_h : h, ow = o->resize_w ? o->resize_w : w;
    if (o->grayscale && c == 3) {
        buf = scratch(b, npix * 2 + (size_t)oh * (size_t)ow * 3, e);
        if (!buf)
            return e->code;
        to_gray(pix, buf, npix);
        cur = buf;
        c = 1;
    }
    if (oh != b->h || ow != b->w)
        return xerr_set(e, XE_FAIL, "%s: image is %dx%d, earlier images are %dx%d (use --resize)", where,
                        h, w, b->h, b->w);
    if (c != b->c && !(c == 1 && b->c == 3))
        return xerr_set(e, XE_FAIL,
                        "%s: image has %d channel%s, earlier images have %d (use --grayscale)", where,
                        c, c == 1 ? "" : "s", b->c);
    if (oh != h || ow != w) {
        uint8_t *out = c == b->c ? dst : NULL;
        if (!out) {
            if (!buf && !(buf = scratch(b, (size_t)oh * (size_t)ow * 3 + npix, e)))
                return e->code;
            out = buf + npix;
        }
        if (!stbir_resize_uint8(cur, w, h, 0, out, ow, oh, 0, c))
            return xerr_set(e, XE_FAIL, "%s: resize failed", where);
        cur = out;
    }
    if (c == b->c) {
        if (cur != dst)
            memcpy(dst, cur, (size_t)oh * (size_t)ow * (size_t)c);
    } else {
        /* gray image in a colour dataset: replicate the channel */
        size_t n = (size_t)oh * (size_t)ow;
        for (size_t i = n; i-- > 0;) {
            uint8_t v = cur[i];
            dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = v;
        }
    }
    return XE_OK;
}

int builder_add(Builder *b, Split s, int label, const uint8_t *pix, int h, int w, int c,
                const char *where, XErr *e)
{
    const IngestOpts *o = b->opt;
    BuilderClass *cls;
    SplitBuf *sb = &b->split[s];
    size_t slot;
    if ((b->added++ & 1023) == 0 && xerr_check_interrupt(e))
        return e->code;
    if (label < 0 || label >= b->ncls)
        return xerr_set(e, XE_FAIL, "%s: label %d out of range 0..%d", where, label, b->ncls - 1);
    if (h <= 0 || w <= 0 || h > XFER_MAX_SIDE || w > XFER_MAX_SIDE)
        return xerr_set(e, XE_FAIL, "%s: image size %dx%d out of range 1..%d", where, h, w,
                        XFER_MAX_SIDE);
    if (c != 1 && c != 3)
        return xerr_set(e, XE_FAIL, "%s: %d channels (expected 1 or 3)", where, c);
    cls = &b->cls[label];
    if (cls->out < 0)
        return XE_OK;
    if (!b->h) {
        b->h = o->resize_h ? o->resize_h : h;
        b->w = o->resize_w ? o->resize_w : w;
        b->c = o->grayscale ? 1 : c;
    }
    slot = sb->n;
    if (s == SPLIT_TRAIN && o->limit_per_class > 0) {
        /* Reservoir sampling keeps a seeded uniform subset of each class. */
        uint64_t seen = cls->seen++;
        if (cls->nkept < (size_t)o->limit_per_class) {
            uint32_t *k = realloc(cls->kept, (cls->nkept + 1) * sizeof *k);
            if (!k)
                return xerr_set(e, XE_FAIL, "out of memory");
            cls->kept = k;
            k[cls->nkept++] = (uint32_t)slot;
        } else {
            uint64_t j = rng_below(&b->rng, seen + 1);
            if (j >= (uint64_t)o->limit_per_class)
                return XE_OK;
            slot = cls->kept[j];
        }
    } else if (s == SPLIT_TRAIN) {
        cls->seen++;
    }
    if (slot == sb->n) {
        if (sb->n >= UINT32_MAX)
            return xerr_set(e, XE_FAIL, "%s: more than %u images", where, UINT32_MAX);
        if (grow(sb, sb->n + 1, image_bytes(b), e))
            return e->code;
        sb->n++;
    }
    sb->lab[slot] = (uint16_t)label; /* source label; mapped in builder_finish */
    return transform(b, pix, h, w, c, sb->pix + slot * image_bytes(b), where, e);
}

static int cmp_name(const void *x, const void *y)
{
    const BuilderClass *const *a = x, *const *c = y;
    return strcmp((*a)->name, (*c)->name);
}

/* Output labels for classes found while reading: sorted by name. */
static int sort_found_classes(Builder *b, XErr *e)
{
    BuilderClass **order = malloc((size_t)b->ncls * sizeof *order);
    if (!order)
        return xerr_set(e, XE_FAIL, "out of memory");
    for (int i = 0; i < b->ncls; i++)
        order[i] = &b->cls[i];
    qsort(order, (size_t)b->ncls, sizeof *order, cmp_name);
    for (int i = 0; i < b->ncls; i++)
        order[i]->out = i;
    free(order);
    return XE_OK;
}

static int split_valid(Builder *b)
{
    const SplitBuf *tr = &b->split[SPLIT_TRAIN];
    double f = b->opt->valid_fraction < 0 ? XFER_DEFAULT_VALID_FRACTION : b->opt->valid_fraction;
    uint32_t *idx;
    size_t *start, *fill;
    if (b->split[SPLIT_VALID].n > 0 || f <= 0 || tr->n == 0)
        return XE_OK;
    idx = malloc(tr->n * sizeof *idx);
    start = calloc((size_t)b->nout + 1, sizeof *start);
    fill = calloc((size_t)b->nout, sizeof *fill);
    if (!idx || !start || !fill) {
        free(idx), free(start), free(fill);
        return XE_FAIL;
    }
    /* Bucket the training records by class, then shuffle each bucket. */
    for (size_t i = 0; i < tr->n; i++)
        start[tr->lab[i] + 1]++;
    for (int k = 0; k < b->nout; k++)
        start[k + 1] += start[k];
    for (size_t i = 0; i < tr->n; i++)
        idx[start[tr->lab[i]] + fill[tr->lab[i]]++] = (uint32_t)i;
    for (int k = 0; k < b->nout; k++) {
        size_t n = start[k + 1] - start[k];
        size_t take = (size_t)floor(f * (double)n + 0.5);
        if (take >= n)
            take = n ? n - 1 : 0;
        rng_shuffle_u32(&b->rng, idx + start[k], (uint32_t)n);
        for (size_t j = 0; j < take; j++)
            b->to_valid[idx[start[k] + j]] = 1;
    }
    free(idx), free(start), free(fill);
    return XE_OK;
}

static void compute_stats(Builder *b)
{
    const SplitBuf *tr = &b->split[SPLIT_TRAIN];
    size_t npix = (size_t)b->h * (size_t)b->w, count = 0;
    uint64_t sum[4] = { 0 }, sq[4] = { 0 };
    for (size_t i = 0; i < tr->n; i++) {
        const uint8_t *p = tr->pix + i * npix * (size_t)b->c;
        uint64_t s[4] = { 0 }, q[4] = { 0 };
        if (b->to_valid && b->to_valid[i])
            continue;
        for (size_t j = 0; j < npix; j++)
            for (int ch = 0; ch < b->c; ch++) {
                unsigned v = p[j * (size_t)b->c + (size_t)ch];
                s[ch] += v;
                q[ch] += v * v;
            }
        for (int ch = 0; ch < b->c; ch++)
            sum[ch] += s[ch], sq[ch] += q[ch];
        count++;
    }
    for (int ch = 0; ch < b->c; ch++) {
        double n = (double)count * (double)npix;
        double m = n > 0 ? (double)sum[ch] / n : 0;
        double var = n > 0 ? (double)sq[ch] / n - m * m : 0;
        b->mean[ch] = m / 255.0;
        b->std[ch] = sqrt(var > 0 ? var : 0) / 255.0;
    }
}

int builder_finish(Builder *b, const char *source, XErr *e)
{
    const IngestOpts *o = b->opt;
    uint64_t *per_class = NULL;
    int rc = XE_FAIL;
    if (o->classes) {
        for (int t = 0; t < o->nclasses; t++)
            if (!b->token_hit || !b->token_hit[t])
                return xerr_set(e, XE_FAIL, "'%s': no class '%s'", source, o->classes[t]);
        b->nout = o->nclasses;
    } else {
        if (!b->fixed && sort_found_classes(b, e))
            return e->code;
        b->nout = b->ncls;
    }
    if (b->split[SPLIT_TRAIN].n + b->split[SPLIT_VALID].n + b->split[SPLIT_TEST].n == 0)
        return xerr_set(e, XE_FAIL, "'%s': no images found", source);
    if (b->nout == 0)
        return xerr_set(e, XE_FAIL, "'%s': no classes found", source);
    b->out_names = calloc((size_t)b->nout, sizeof *b->out_names);
    per_class = calloc((size_t)b->nout, sizeof *per_class);
    if (!b->out_names || !per_class) {
        xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < b->ncls; i++)
        if (b->cls[i].out >= 0 && !b->out_names[b->cls[i].out] &&
            !(b->out_names[b->cls[i].out] = strdup(b->cls[i].name))) {
            xerr_set(e, XE_FAIL, "out of memory");
            goto cleanup;
        }
    /* Source labels to output labels, in every split. */
    for (int s = 0; s < SPLIT_COUNT; s++) {
        SplitBuf *sb = &b->split[s];
        for (size_t i = 0; i < sb->n; i++) {
            sb->lab[i] = (uint16_t)b->cls[sb->lab[i]].out;
            if (s != SPLIT_TEST)
                per_class[sb->lab[i]]++;
        }
    }
    for (int k = 0; k < b->nout; k++)
        if (per_class[k] == 0) {
            xerr_set(e, XE_FAIL, "'%s': class '%s' has no training images", source, b->out_names[k]);
            goto cleanup;
        }
    b->to_valid = calloc(b->split[SPLIT_TRAIN].n + 1, 1);
    if (!b->to_valid || split_valid(b)) {
        xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    b->count[SPLIT_TRAIN] = b->count[SPLIT_VALID] = 0;
    for (size_t i = 0; i < b->split[SPLIT_TRAIN].n; i++)
        b->count[b->to_valid[i] ? SPLIT_VALID : SPLIT_TRAIN]++;
    b->count[SPLIT_VALID] += b->split[SPLIT_VALID].n;
    b->count[SPLIT_TEST] = b->split[SPLIT_TEST].n;
    if (b->count[SPLIT_TRAIN] == 0) {
        xerr_set(e, XE_FAIL, "'%s': no training images", source);
        goto cleanup;
    }
    compute_stats(b);
    rc = XE_OK;
cleanup:
    free(per_class);
    return rc;
}

uint64_t builder_count(const Builder *b, Split s)
{
    return b->count[s];
}
