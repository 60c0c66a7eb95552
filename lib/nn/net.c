/* Building, allocating and running networks (see net.h). Shapes are checked
 * as layers are added; the first error sticks and net_finalize reports it. */
#include "nn/net.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int net_init(Net *net, const NnBackend *be, int batch, int c, int h, int w, XErr *e)
{
    memset(net, 0, sizeof *net);
    net->be = be;
    net->batch = batch;
    net->bn_eps = 1e-5f;
    net->bn_momentum = 0.1f;
    if (batch < 1 || c < 1 || h < 1 || w < 1)
        return xerr_set(e, XE_FAIL, "network input %dx%dx%dx%d: sizes must be positive", batch, c, h, w);
    net->t = malloc(64 * sizeof *net->t);
    if (!net->t)
        return xerr_set(e, XE_FAIL, "out of memory");
    net->cap_t = 64;
    net->t[0] = (NetTensor){ c, h, w, 0, 0 };
    net->nt = 1;
    return XE_OK;
}

void net_release(Net *net)
{
    const NnBackend *be = net->be;
    if (be) {
        void *blocks[] = { net->params, net->grads, net->mom, net->decay, net->state,
                           net->save, net->acts, net->dacts, net->ws, net->tmp, net->masks };
        for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++)
            if (blocks[i])
                be->free(be->ctx, blocks[i]);
    }
    free(net->layers);
    free(net->t);
    free(net->hmasks);
    memset(net, 0, sizeof *net);
}

/* Records the first building error; returns -1 (no tensor). */
__attribute__((format(printf, 2, 3))) static int fail(Net *net, const char *fmt, ...)
{
    va_list ap;
    if (!net->err.code) {
        va_start(ap, fmt);
        vsnprintf(net->err.msg, sizeof net->err.msg, fmt, ap);
        va_end(ap);
        net->err.code = XE_FAIL;
    }
    return -1;
}

static int valid(Net *net, int x)
{
    if (net->err.code)
        return 0;
    if (x < 0 || x >= net->nt) {
        fail(net, "network: tensor %d does not exist (%d made)", x, net->nt);
        return 0;
    }
    return 1;
}

static int new_tensor(Net *net, int c, int h, int w)
{
    if (net->nt == net->cap_t) {
        NetTensor *t = realloc(net->t, (size_t)net->cap_t * 2 * sizeof *t);
        if (!t)
            return fail(net, "out of memory");
        net->t = t;
        net->cap_t *= 2;
    }
    net->t[net->nt] = (NetTensor){ c, h, w, 0, 0 };
    return net->nt++;
}

static Layer *new_layer(Net *net, LayerKind kind, const int *in, int nin)
{
    Layer *l;
    if (net->nlayers == net->cap_layers) {
        int cap = net->cap_layers ? 2 * net->cap_layers : 64;
        Layer *n = realloc(net->layers, (size_t)cap * sizeof *n);
        if (!n) {
            fail(net, "out of memory");
            return NULL;
        }
        net->layers = n;
        net->cap_layers = cap;
    }
    l = &net->layers[net->nlayers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->nin = nin;
    memcpy(l->in, in, (size_t)nin * sizeof *in);
    return l;
}

/* Adds a layer with one input and an output of the given shape. */
static int unary(Net *net, LayerKind kind, int x, int c, int h, int w, Layer **out)
{
    int y;
    Layer *l;
    if ((y = new_tensor(net, c, h, w)) < 0 || !(l = new_layer(net, kind, &x, 1)))
        return -1;
    l->out = y;
    *out = l;
    return y;
}

int net_conv(Net *net, int x, int cout, int k, int stride, int pad, int dil, int groups)
{
    ConvDesc d;
    Layer *l;
    int y;
    size_t ws;
    if (!valid(net, x))
        return -1;
    /* no pointer into net->t across unary(): it may move the array */
    if (conv_desc_init(&d, net->batch, net->t[x].c, net->t[x].h, net->t[x].w, cout, k, stride, pad, dil, groups,
                       &net->err))
        return -1;
    if ((y = unary(net, LAYER_CONV, x, cout, d.oh, d.ow, &l)) < 0)
        return -1;
    l->conv = d;
    l->w = net->nparams;
    net->nparams += (size_t)cout * (size_t)(d.cin / groups) * (size_t)k * (size_t)k;
    ws = net->be->conv_workspace(net->be->ctx, &d);
    if (ws > net->nws)
        net->nws = ws;
    return y;
}

int net_bn(Net *net, int x)
{
    Layer *l;
    int y, c;
    if (!valid(net, x))
        return -1;
    c = net->t[x].c;
    if ((y = unary(net, LAYER_BN, x, c, net->t[x].h, net->t[x].w, &l)) < 0)
        return -1;
    l->bn = (BnDesc){ net->batch, c, net->t[x].h * net->t[x].w, net->bn_eps, net->bn_momentum };
    l->w = net->nparams;
    l->b = net->nparams + (size_t)c;
    net->nparams += 2 * (size_t)c;
    l->stat = net->nstate;
    net->nstate += 2 * (size_t)c;
    l->save = net->nsave;
    net->nsave += 2 * (size_t)c;
    return y;
}

int net_relu(Net *net, int x)
{
    Layer *l;
    if (!valid(net, x))
        return -1;
    return unary(net, LAYER_RELU, x, net->t[x].c, net->t[x].h, net->t[x].w, &l);
}

int net_pool(Net *net, int x, PoolType type, int k, int stride, int pad)
{
    PoolDesc d;
    Layer *l;
    int y;
    if (!valid(net, x))
        return -1;
    if (pool_desc_init(&d, type, net->batch, net->t[x].c, net->t[x].h, net->t[x].w, k, stride, pad, &net->err))
        return -1;
    if ((y = unary(net, LAYER_POOL, x, d.c, d.oh, d.ow, &l)) < 0)
        return -1;
    l->pool = d;
    return y;
}

static int same_shape(Net *net, const int *x, int k, const char *what)
{
    for (int i = 0; i < k; i++) {
        if (!valid(net, x[i]))
            return 0;
        if (net->t[x[i]].h != net->t[x[0]].h || net->t[x[i]].w != net->t[x[0]].w ||
            (strcmp(what, "concat") && net->t[x[i]].c != net->t[x[0]].c)) {
            fail(net, "network: inputs of a %s differ in shape: %dx%dx%d and %dx%dx%d", what, net->t[x[0]].c,
                 net->t[x[0]].h, net->t[x[0]].w, net->t[x[i]].c, net->t[x[i]].h, net->t[x[i]].w);
            return 0;
        }
    }
    return 1;
}

static int multi(Net *net, LayerKind kind, const int *x, int k, int c)
{
    Layer *l;
    int y;
    if (k < 1 || k > NET_MAX_IN)
        return fail(net, "network: %d inputs (1 to %d)", k, NET_MAX_IN);
    if ((y = new_tensor(net, c, net->t[x[0]].h, net->t[x[0]].w)) < 0 || !(l = new_layer(net, kind, x, k)))
        return -1;
    l->out = y;
    return y;
}

int net_sum(Net *net, const int *x, int k)
{
    if (k < 1 || !same_shape(net, x, k, "sum"))
        return k < 1 ? fail(net, "network: a sum of no tensors") : -1;
    return multi(net, LAYER_SUM, x, k, net->t[x[0]].c);
}

int net_concat(Net *net, const int *x, int k)
{
    int c = 0;
    if (k < 1 || !same_shape(net, x, k, "concat"))
        return k < 1 ? fail(net, "network: a concat of no tensors") : -1;
    for (int i = 0; i < k; i++)
        c += net->t[x[i]].c;
    return multi(net, LAYER_CONCAT, x, k, c);
}

int net_crop(Net *net, int x, int oy, int ox, int oh, int ow)
{
    Layer *l;
    int y;
    if (!valid(net, x))
        return -1;
    if (oy < 0 || ox < 0 || oh < 1 || ow < 1 || oy + oh > net->t[x].h || ox + ow > net->t[x].w)
        return fail(net, "network: a %dx%d crop at %d,%d does not fit a %dx%d input", oh, ow, oy, ox, net->t[x].h,
                    net->t[x].w);
    if ((y = unary(net, LAYER_CROP, x, net->t[x].c, oh, ow, &l)) < 0)
        return -1;
    l->oy = oy;
    l->ox = ox;
    return y;
}

int net_zero(Net *net, int like)
{
    Layer *l;
    if (!valid(net, like))
        return -1;
    return unary(net, LAYER_ZERO, like, net->t[like].c, net->t[like].h, net->t[like].w, &l);
}

int net_droppath(Net *net, int x)
{
    Layer *l;
    int y;
    if (!valid(net, x))
        return -1;
    if ((y = unary(net, LAYER_DROPPATH, x, net->t[x].c, net->t[x].h, net->t[x].w, &l)) < 0)
        return -1;
    l->mask = net->nmasks;
    net->nmasks += (size_t)net->batch;
    return y;
}

int net_gap(Net *net, int x)
{
    Layer *l;
    if (!valid(net, x))
        return -1;
    return unary(net, LAYER_GAP, x, net->t[x].c, 1, 1, &l);
}

int net_linear(Net *net, int x, int out)
{
    Layer *l;
    int y;
    size_t in;
    if (!valid(net, x))
        return -1;
    if (out < 1)
        return fail(net, "network: linear layer with %d outputs", out);
    in = (size_t)net->t[x].c * net->t[x].h * net->t[x].w;
    if ((y = unary(net, LAYER_LINEAR, x, out, 1, 1, &l)) < 0)
        return -1;
    l->w = net->nparams;
    l->b = net->nparams + (size_t)out * in;
    net->nparams += (size_t)out * in + (size_t)out;
    return y;
}

static size_t numel(const Net *net, int id)
{
    const NetTensor *t = &net->t[id];
    return (size_t)net->batch * t->c * t->h * t->w;
}

static void uniform(Rng *r, float *p, size_t n, double bound)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * rng_uniform(r) - 1.0) * bound);
}

/* PyTorch's defaults: conv and linear weights U(-1/sqrt(fan_in), +),
 * linear bias the same; BN gamma 1, beta 0, running mean 0, var 1. */
static void init_params(Net *net, float *p, float *state, uint64_t seed)
{
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        if (l->kind == LAYER_CONV) {
            const ConvDesc *d = &l->conv;
            size_t fan = (size_t)(d->cin / d->groups) * d->kh * d->kw;
            uniform(&r, p + l->w, (size_t)d->cout * fan, 1.0 / sqrt((double)fan));
        } else if (l->kind == LAYER_LINEAR) {
            const NetTensor *t = &net->t[l->in[0]];
            size_t in = (size_t)t->c * t->h * t->w, out = (size_t)net->t[l->out].c;
            uniform(&r, p + l->w, out * in, 1.0 / sqrt((double)in));
            uniform(&r, p + l->b, out, 1.0 / sqrt((double)in));
        } else if (l->kind == LAYER_BN) {
            for (int c = 0; c < l->bn.c; c++) {
                p[l->w + (size_t)c] = 1.0f;
                p[l->b + (size_t)c] = 0.0f;
                state[l->stat + (size_t)c] = 0.0f;
                state[l->stat + (size_t)l->bn.c + (size_t)c] = 1.0f;
            }
        }
    }
}

/* Backward-pass lifetimes of activation gradients. Layer i's backward runs
 * at time n-1-i. A tensor's gradient is born (zeroed) at the backward of its
 * last live consumer and read for the last time at its producer's backward;
 * gradients whose lifetimes do not meet share memory (first fit). Layers
 * whose output reaches no loss are dead: skipped, and not consumers. */
static int plan_gradients(Net *net, XErr *e)
{
    int n = net->nlayers, nt = net->nt, out = net_output(net), changed = 1, rc = XE_OK;
    int *producer = malloc((size_t)nt * sizeof *producer), *last = malloc((size_t)nt * sizeof *last);
    int *order = malloc((size_t)nt * sizeof *order), nact = 0;
    size_t *aoff = malloc((size_t)nt * sizeof *aoff), *asize = malloc((size_t)nt * sizeof *asize);
    int *aend = malloc((size_t)nt * sizeof *aend);
    if (!producer || !last || !order || !aoff || !asize || !aend) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto cleanup;
    }
    for (int t = 0; t < nt; t++)
        producer[t] = -1;
    for (int i = 0; i < n; i++)
        producer[net->layers[i].out] = i;
    while (changed) {
        changed = 0;
        for (int t = 0; t < nt; t++)
            last[t] = t == out ? n : -1;
        for (int i = 0; i < n; i++)
            if (!net->layers[i].dead)
                for (int k = 0; k < net->layers[i].nin; k++)
                    if (i > last[net->layers[i].in[k]])
                        last[net->layers[i].in[k]] = i;
        for (int i = 0; i < n; i++)
            if (!net->layers[i].dead && last[net->layers[i].out] < 0)
                net->layers[i].dead = changed = 1;
    }
    /* tensor 0 at offset 0 for good; the others by birth time, first fit */
    net->t[0].goff = 0;
    net->ngrad = numel(net, 0);
    for (int t = 0; t < nt; t++)
        order[t] = t;
    for (int a = 1; a < nt; a++) /* insertion sort by birth: consumers late first */
        for (int b = a; b > 1 && last[order[b]] > last[order[b - 1]]; b--) {
            int tmp = order[b];
            order[b] = order[b - 1];
            order[b - 1] = tmp;
        }
    for (int k = 1; k < nt; k++) {
        int t = order[k];
        size_t size = numel(net, t), off = numel(net, 0);
        int born = last[t], dies = producer[t];
        if (born < 0 || dies < 0)
            continue; /* no gradient ever flows here */
        /* drop allocations whose last read (their producer) came strictly
         * after this birth in backward time, i.e. at a higher layer index */
        for (int a = 0; a < nact;)
            if (aend[a] > born) {
                aoff[a] = aoff[nact - 1], asize[a] = asize[nact - 1], aend[a] = aend[nact - 1];
                nact--;
            } else {
                a++;
            }
        for (int moved = 1; moved;) {
            moved = 0;
            for (int a = 0; a < nact; a++)
                if (off < aoff[a] + asize[a] && aoff[a] < off + size) {
                    off = aoff[a] + asize[a];
                    moved = 1;
                }
        }
        net->t[t].goff = off;
        aoff[nact] = off, asize[nact] = size, aend[nact] = dies;
        nact++;
        if (off + size > net->ngrad)
            net->ngrad = off + size;
        if (born < n) {
            Layer *l = &net->layers[born];
            for (int q = 0; q < l->nin; q++)
                if (l->in[q] == t) {
                    l->zero |= 1 << q;
                    break;
                }
        }
    }
    /* the input's gradient is born at its last consumer too */
    if (last[0] >= 0 && last[0] < n)
        for (int q = 0; q < net->layers[last[0]].nin; q++)
            if (net->layers[last[0]].in[q] == 0) {
                net->layers[last[0]].zero |= 1 << q;
                break;
            }
cleanup:
    free(producer), free(last), free(order), free(aoff), free(asize), free(aend);
    return rc;
}

int net_finalize(Net *net, uint64_t seed, XErr *e)
{
    const NnBackend *be = net->be;
    float *hp = NULL, *hs = NULL;
    uint8_t *hd = NULL;
    if (net->err.code) {
        *e = net->err;
        return e->code;
    }
    if (net->nlayers == 0)
        return xerr_set(e, XE_FAIL, "network: no layers");
    for (int i = 0; i < net->nt; i++) {
        net->t[i].off = net->nacts;
        net->nacts += numel(net, i);
        if (net->nmasks && numel(net, i) > net->ntmp)
            net->ntmp = numel(net, i);
    }
    if (plan_gradients(net, e))
        return e->code;
#define ALLOC(field, count, size)                                                                            \
    if (!(net->field = be->alloc(be->ctx, ((count) ? (count) : 1) * (size))))                                  \
        return xerr_set(e, XE_FAIL, "out of memory for the network (%s)", #field);
    ALLOC(params, net->nparams, sizeof(float))
    ALLOC(grads, net->nparams, sizeof(float))
    ALLOC(mom, net->nparams, sizeof(float))
    ALLOC(decay, net->nparams, 1)
    ALLOC(state, net->nstate, sizeof(float))
    ALLOC(save, net->nsave, sizeof(float))
    ALLOC(acts, net->nacts, sizeof(float))
    ALLOC(dacts, net->ngrad, sizeof(float))
    ALLOC(ws, net->nws, sizeof(float))
    ALLOC(tmp, net->ntmp, sizeof(float))
    ALLOC(masks, net->nmasks, 1)
#undef ALLOC
    if (!(net->hmasks = calloc(net->nmasks + 1, 1)))
        return xerr_set(e, XE_FAIL, "out of memory");
    rng_seed(&net->rng, seed ^ 0x5bd1e995u);
    hp = calloc(net->nparams + 1, sizeof *hp);
    hs = calloc(net->nstate + 1, sizeof *hs);
    hd = malloc(net->nparams + 1);
    if (!hp || !hs || !hd) {
        free(hp), free(hs), free(hd);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    init_params(net, hp, hs, seed);
    memset(hd, 1, net->nparams + 1);
    be->upload(be->ctx, net->params, hp, net->nparams * sizeof(float));
    be->upload(be->ctx, net->state, hs, net->nstate * sizeof(float));
    be->upload(be->ctx, net->decay, hd, net->nparams);
    free(hp), free(hs), free(hd);
    /* errors of the backend's queued work so far, convolution planning included */
    return be->sync(be->ctx, e);
}

size_t net_param_count(const Net *net)
{
    return net->nparams;
}

int net_output(const Net *net)
{
    return net->nt - 1;
}

#define ACT(id) (net->acts + net->t[id].off)
#define DACT(id) (net->dacts + net->t[id].goff)

/* Whether a pass applies drop-path masks. */
static int dropping(const Net *net, int train)
{
    return train && net->drop_prob > 0 && net->nmasks;
}

void net_stage(Net *net, const float *x, int train)
{
    const NnBackend *be = net->be;
    be->upload(be->ctx, ACT(0), x, numel(net, 0) * sizeof(float));
    if (dropping(net, train)) {
        /* every drop-path layer's mask, in layer order, in one upload */
        float keep = 1.0f - net->drop_prob;
        for (size_t k = 0; k < net->nmasks; k++)
            net->hmasks[k] = rng_uniform(&net->rng) < keep;
        be->upload(be->ctx, net->masks, net->hmasks, net->nmasks);
    }
}

const float *net_forward(Net *net, const float *x, int train)
{
    net_stage(net, x, train);
    return net_forward_layers(net, train);
}

const float *net_forward_layers(Net *net, int train)
{
    const NnBackend *be = net->be;
    void *ctx = be->ctx;
    int drop = dropping(net, train);
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        const NetTensor *in = &net->t[l->in[0]];
        float *y = ACT(l->out);
        const float *x0 = ACT(l->in[0]);
        switch (l->kind) {
        case LAYER_CONV:
            be->conv_fwd(ctx, &l->conv, x0, net->params + l->w, y, net->ws);
            break;
        case LAYER_BN:
            if (train)
                be->bn_fwd_train(ctx, &l->bn, x0, net->params + l->w, net->params + l->b, y, net->save + l->save,
                                 net->save + l->save + l->bn.c, net->state + l->stat,
                                 net->state + l->stat + l->bn.c);
            else
                be->bn_fwd_eval(ctx, &l->bn, x0, net->params + l->w, net->params + l->b, net->state + l->stat,
                                net->state + l->stat + l->bn.c, y);
            break;
        case LAYER_RELU:
            be->relu_fwd(ctx, numel(net, l->out), x0, y);
            break;
        case LAYER_POOL:
            be->pool_fwd(ctx, &l->pool, x0, y);
            break;
        case LAYER_SUM:
            /* one pass for the first two terms, not a copy and an add */
            if (l->nin == 1)
                be->scale(ctx, numel(net, l->out), 1.0f, x0, y);
            else
                be->add(ctx, numel(net, l->out), x0, ACT(l->in[1]), y);
            for (int k = 2; k < l->nin; k++)
                be->acc(ctx, numel(net, l->out), ACT(l->in[k]), y);
            break;
        case LAYER_CONCAT: {
            int c[NET_MAX_IN];
            const float *xs[NET_MAX_IN];
            for (int k = 0; k < l->nin; k++) {
                c[k] = net->t[l->in[k]].c;
                xs[k] = ACT(l->in[k]);
            }
            be->concat_fwd(ctx, net->batch, in->h * in->w, l->nin, c, xs, y);
            break;
        }
        case LAYER_CROP:
            be->crop_fwd(ctx, net->batch, in->c, in->h, in->w, l->oy, l->ox, net->t[l->out].h, net->t[l->out].w, x0,
                         y);
            break;
        case LAYER_ZERO:
            be->fill(ctx, numel(net, l->out), 0.0f, y);
            break;
        case LAYER_GAP:
            be->gap_fwd(ctx, net->batch, in->c, in->h * in->w, x0, y);
            break;
        case LAYER_LINEAR:
            be->linear_fwd(ctx, net->batch, in->c * in->h * in->w, net->t[l->out].c, x0, net->params + l->w,
                           net->params + l->b, y);
            break;
        case LAYER_DROPPATH:
            if (!drop)
                be->scale(ctx, numel(net, l->out), 1.0f, x0, y);
            else
                be->mask_scale(ctx, net->batch, numel(net, l->out) / (size_t)net->batch, net->masks + l->mask,
                               1.0f - net->drop_prob, x0, y);
            break;
        }
    }
    return ACT(net_output(net));
}

void net_backward(Net *net, const float *dout)
{
    const NnBackend *be = net->be;
    void *ctx = be->ctx;
    int last = net_output(net);
    be->fill(ctx, net->nparams, 0.0f, net->grads);
    be->scale(ctx, numel(net, last), 1.0f, dout, DACT(last));
    for (int i = net->nlayers - 1; i >= 0; i--) {
        const Layer *l = &net->layers[i];
        const NetTensor *in = &net->t[l->in[0]];
        const float *dy = DACT(l->out), *x0 = ACT(l->in[0]);
        float *dx0 = DACT(l->in[0]);
        if (l->dead)
            continue;
        for (int k = 0; k < l->nin; k++)
            if (l->zero & (1 << k))
                be->fill(ctx, numel(net, l->in[k]), 0.0f, DACT(l->in[k]));
        switch (l->kind) {
        case LAYER_CONV:
            be->conv_bwd_data(ctx, &l->conv, dy, net->params + l->w, dx0, net->ws);
            be->conv_bwd_filter(ctx, &l->conv, x0, dy, net->grads + l->w, net->ws);
            break;
        case LAYER_BN:
            be->bn_bwd(ctx, &l->bn, x0, dy, net->params + l->w, net->save + l->save, net->save + l->save + l->bn.c,
                       dx0, net->grads + l->w, net->grads + l->b);
            break;
        case LAYER_RELU:
            be->relu_bwd(ctx, numel(net, l->out), ACT(l->out), dy, dx0);
            break;
        case LAYER_POOL:
            be->pool_bwd(ctx, &l->pool, x0, ACT(l->out), dy, dx0);
            break;
        case LAYER_SUM:
            for (int k = 0; k < l->nin; k++)
                be->acc(ctx, numel(net, l->out), dy, DACT(l->in[k]));
            break;
        case LAYER_CONCAT: {
            int c[NET_MAX_IN];
            float *dxs[NET_MAX_IN];
            for (int k = 0; k < l->nin; k++) {
                c[k] = net->t[l->in[k]].c;
                dxs[k] = DACT(l->in[k]);
            }
            be->concat_bwd(ctx, net->batch, in->h * in->w, l->nin, c, dy, dxs);
            break;
        }
        case LAYER_CROP:
            be->crop_bwd(ctx, net->batch, in->c, in->h, in->w, l->oy, l->ox, net->t[l->out].h, net->t[l->out].w, dy,
                         dx0);
            break;
        case LAYER_ZERO:
            break;
        case LAYER_GAP:
            be->gap_bwd(ctx, net->batch, in->c, in->h * in->w, dy, dx0);
            break;
        case LAYER_LINEAR:
            be->linear_bwd(ctx, net->batch, in->c * in->h * in->w, net->t[l->out].c, x0, net->params + l->w, dy, dx0,
                           net->grads + l->w, net->grads + l->b);
            break;
        case LAYER_DROPPATH:
            if (net->drop_prob <= 0) {
                be->acc(ctx, numel(net, l->out), dy, dx0);
            } else {
                /* mask_scale overwrites: through the scratch, then add */
                be->mask_scale(ctx, net->batch, numel(net, l->out) / (size_t)net->batch, net->masks + l->mask,
                               1.0f - net->drop_prob, dy, net->tmp);
                be->acc(ctx, numel(net, l->out), net->tmp, dx0);
            }
            break;
        }
    }
}
