/* Descriptor checks shared by every backend: conv and pool shapes are
 * validated and their output sizes computed here, once, so the ops
 * themselves can trust a descriptor. */
#include <limits.h>
#include <string.h>

#include "nn/cpu/cpu.h"
#include "nn/ops.h"

/* a * b, or INT_MAX + 1 when either or the product is past INT_MAX; chains
 * of it never overflow, whatever the factors (from 0 to 2^62). */
static long long mul_cap(long long a, long long b)
{
    const long long over = (long long)INT_MAX + 1;
    return a > INT_MAX || b > INT_MAX || a * b > INT_MAX ? over : a * b;
}

int conv_desc_init(ConvDesc *d, int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                   int dil, int groups, XErr *e)
{
    long long ke, hp, wp, oh, ow;

    memset(d, 0, sizeof *d);
    if (n < 1)
        return xerr_set(e, XE_FAIL, "conv: batch size %d must be positive", n);
    if (cin < 1)
        return xerr_set(e, XE_FAIL, "conv: input channels %d must be positive", cin);
    if (cout < 1)
        return xerr_set(e, XE_FAIL, "conv: output channels %d must be positive", cout);
    if (h < 1 || w < 1)
        return xerr_set(e, XE_FAIL, "conv: input size %dx%d must be positive", h, w);
    if (k < 1)
        return xerr_set(e, XE_FAIL, "conv: kernel %d must be positive", k);
    if (stride < 1)
        return xerr_set(e, XE_FAIL, "conv: stride %d must be positive", stride);
    if (dil < 1)
        return xerr_set(e, XE_FAIL, "conv: dilation %d must be positive", dil);
    if (pad < 0)
        return xerr_set(e, XE_FAIL, "conv: padding %d must not be negative", pad);
    if (groups < 1)
        return xerr_set(e, XE_FAIL, "conv: groups %d must be positive", groups);
    if (cin % groups)
        return xerr_set(e, XE_FAIL, "conv: input channels %d not divisible by groups %d", cin, groups);
    if (cout % groups)
        return xerr_set(e, XE_FAIL, "conv: output channels %d not divisible by groups %d", cout,
                        groups);

    ke = (long long)dil * (k - 1) + 1;
    hp = h + 2LL * pad;
    wp = w + 2LL * pad;
    if (ke > hp || ke > wp) {
        if (dil == 1)
            return xerr_set(e, XE_FAIL, "conv: kernel %d with padding %d does not fit input %dx%d", k,
                            pad, h, w);
        return xerr_set(e, XE_FAIL,
                        "conv: kernel %d with dilation %d and padding %d does not fit input %dx%d", k,
                        dil, pad, h, w);
    }
    oh = (hp - ke) / stride + 1;
    ow = (wp - ke) / stride + 1;
    /* Every per-image count must fit an int: BLAS takes int sizes, and the
     * ops index planes with them. The padded plane is the depthwise path's. */
    if (mul_cap(mul_cap(cin, h), w) > INT_MAX || mul_cap(mul_cap(cout, oh), ow) > INT_MAX ||
        mul_cap(mul_cap(mul_cap(cin / groups, mul_cap(k, k)), oh), ow) > INT_MAX ||
        mul_cap(mul_cap(cout, cin / groups), mul_cap(k, k)) > INT_MAX || mul_cap(hp, wp + stride) > INT_MAX)
        return xerr_set(e, XE_FAIL,
                        "conv: input %dx%dx%d with kernel %d, padding %d and %d output channels is too large",
                        cin, h, w, k, pad, cout);

    d->n = n;
    d->cin = cin;
    d->h = h;
    d->w = w;
    d->cout = cout;
    d->kh = d->kw = k;
    d->stride = stride;
    d->pad = pad;
    d->dil = dil;
    d->groups = groups;
    d->oh = (int)oh;
    d->ow = (int)ow;
    return XE_OK;
}

/* The CPU backend's needs (its table's conv_workspace is this); networks
 * size their workspace through their backend's table. */
size_t conv_workspace(const ConvDesc *d)
{
    return cpu_conv_workspace(d);
}

int pool_desc_init(PoolDesc *d, PoolType type, int n, int c, int h, int w, int k, int stride,
                   int pad, XErr *e)
{
    memset(d, 0, sizeof *d);
    if (type != POOL_AVG && type != POOL_MAX)
        return xerr_set(e, XE_FAIL, "pool: unknown type %d", (int)type);
    if (n < 1)
        return xerr_set(e, XE_FAIL, "pool: batch size %d must be positive", n);
    if (c < 1)
        return xerr_set(e, XE_FAIL, "pool: channels %d must be positive", c);
    if (h < 1 || w < 1)
        return xerr_set(e, XE_FAIL, "pool: input size %dx%d must be positive", h, w);
    if (k < 1)
        return xerr_set(e, XE_FAIL, "pool: kernel %d must be positive", k);
    if (stride < 1)
        return xerr_set(e, XE_FAIL, "pool: stride %d must be positive", stride);
    if (pad < 0)
        return xerr_set(e, XE_FAIL, "pool: padding %d must not be negative", pad);
    /* PyTorch's rule; it also keeps every window over at least one input. */
    if (pad > k / 2)
        return xerr_set(e, XE_FAIL, "pool: padding %d is more than half of kernel %d", pad, k);
    if (k > h + 2LL * pad || k > w + 2LL * pad)
        return xerr_set(e, XE_FAIL, "pool: kernel %d with padding %d does not fit input %dx%d", k, pad,
                        h, w);
    if ((long long)c * h * w > INT_MAX)
        return xerr_set(e, XE_FAIL, "pool: input %dx%dx%d is too large", c, h, w);

    d->type = type;
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->k = k;
    d->stride = stride;
    d->pad = pad;
    d->oh = (h + 2 * pad - k) / stride + 1;
    d->ow = (w + 2 * pad - k) / stride + 1;
    return XE_OK;
}
