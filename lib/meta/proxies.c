/* Training-free proxies of an untrained network (definitions in meta.h).
 * Everything goes through the backend table (download / upload), so the
 * scores come from whichever backend the caller passes. Every score is
 * deterministic for (arch, task, protocol macro, batch, seed). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta.h"
#include "nn/data.h"

/* LAPACK, from OpenBLAS (Fortran calling convention, hidden string lengths). */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info, size_t ljobz, size_t luplo);
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t luplo);

const char *const proxy_names[PROXY_COUNT] = {
    "synflow", "naswot", "jacob_cov", "grad_norm", "snip", "zen", "params", "flops",
};

/* Floats of the weight tensor of a conv or linear layer; 0 for the others. */
static size_t weight_count(const Net *net, const Layer *l)
{
    if (l->kind == LAYER_CONV)
        return (size_t)l->conv.cout * (size_t)(l->conv.cin / l->conv.groups) * l->conv.kh * l->conv.kw;
    if (l->kind == LAYER_LINEAR) {
        const NetTensor *in = &net->t[l->in[0]];
        return (size_t)in->c * in->h * in->w * (size_t)net->t[l->out].c;
    }
    return 0;
}

static size_t tensor_numel(const Net *net, int t)
{
    return (size_t)net->batch * net->t[t].c * net->t[t].h * net->t[t].w;
}

static void download(const Net *net, float *dst, const float *src, size_t n)
{
    net->be->download(net->be->ctx, dst, src, n * sizeof *dst);
}

/* A copy of host data in backend memory (the ops take nothing else);
 * NULL when out of memory. Free with be->free. */
static void *on_backend(const Net *net, const void *src, size_t bytes)
{
    void *p = net->be->alloc(net->be->ctx, bytes ? bytes : 1);
    if (p && src)
        net->be->upload(net->be->ctx, p, src, bytes);
    return p;
}

static void backend_free(const Net *net, void *p)
{
    if (p)
        net->be->free(net->be->ctx, p);
}

static double gauss(Rng *r)
{
    double u = rng_uniform(r), v = rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* grad_norm and snip from one cross-entropy backward on (x, y). */
static int grad_scores(Net *net, const float *x, const int32_t *y, int classes, float *hp, float *hg,
                       double *grad_norm, double *snip, XErr *e)
{
    /* labels, logit gradients, loss and count live on the backend */
    float *dl = on_backend(net, NULL, (size_t)net->batch * classes * sizeof *dl), *loss = on_backend(net, NULL, 8);
    int32_t *dy = on_backend(net, y, (size_t)net->batch * sizeof *y);
    int *correct = on_backend(net, NULL, sizeof *correct);
    const float *logits;
    if (!dl || !loss || !dy || !correct) {
        backend_free(net, dl), backend_free(net, loss), backend_free(net, dy), backend_free(net, correct);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    logits = net_forward(net, x, 1);
    net->be->xent(net->be->ctx, net->batch, classes, logits, dy, 0.0f, dl, loss, correct);
    net_backward(net, dl);
    backend_free(net, dl), backend_free(net, loss), backend_free(net, dy), backend_free(net, correct);
    download(net, hp, net->params, net->nparams);
    download(net, hg, net->grads, net->nparams);
    *grad_norm = *snip = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        size_t n = weight_count(net, l);
        double ss = 0;
        for (size_t k = 0; k < n; k++) {
            ss += (double)hg[l->w + k] * hg[l->w + k];
            *snip += fabs((double)hg[l->w + k] * hp[l->w + k]);
        }
        *grad_norm += sqrt(ss);
    }
    return XE_OK;
}

/* NASWOT from the ReLU outputs of the last forward: with b = 2 * code - 1,
 * agreements between images i and j are (b_i . b_j + units) / 2. */
static int naswot(const Net *net, double *score, XErr *e)
{
    int n = net->batch, info = 0;
    double *k = calloc((size_t)n * n, sizeof *k);
    float *kl = malloc((size_t)n * n * sizeof *kl), *a = NULL;
    size_t cap = 0;
    if (!k || !kl)
        goto oom;
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        size_t numel, per;
        if (l->kind != LAYER_RELU)
            continue;
        numel = tensor_numel(net, l->out);
        per = numel / (size_t)n;
        if (numel > cap) {
            float *t = realloc(a, numel * sizeof *t);
            if (!t)
                goto oom;
            a = t, cap = numel;
        }
        download(net, a, net->acts + net->t[l->out].off, numel);
        for (size_t q = 0; q < numel; q++)
            a[q] = a[q] > 0 ? 1.0f : -1.0f;
        /* per-layer dot products stay exact in float below 2^24 units */
        for (size_t c0 = 0; c0 < per; c0 += 1 << 22) {
            size_t len = per - c0 < (1 << 22) ? per - c0 : (1 << 22);
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, (int)len, 1.0f, a + c0, (int)per, 0.0f, kl, n);
            for (int r = 0; r < n; r++)
                for (int c = r; c < n; c++)
                    k[(size_t)r * n + c] += 0.5 * ((double)kl[(size_t)r * n + c] + (double)len);
        }
    }
    /* row-major upper = column-major lower */
    dpotrf_("L", &n, k, &n, &info, 1);
    if (info) {
        *score = NAN; /* two images with one code: a singular kernel */
    } else {
        double s = 0;
        for (int r = 0; r < n; r++)
            s += log(k[(size_t)r * n + r]);
        *score = 2 * s;
    }
    free(k), free(kl), free(a);
    return XE_OK;
oom:
    free(k), free(kl), free(a);
    return xerr_set(e, XE_FAIL, "out of memory");
}

/* jacob_cov: input gradients of the summed outputs, one row per image. */
static int jacob_cov(Net *net, const float *x, double *score, XErr *e)
{
    int n = net->batch, info = 0, lwork = -1, classes = net->t[net_output(net)].c;
    size_t d = tensor_numel(net, 0) / (size_t)n;
    float *ones = malloc((size_t)n * classes * sizeof *ones), *j = malloc((size_t)n * d * sizeof *j);
    double *c = calloc((size_t)n * n, sizeof *c), *w = malloc((size_t)n * sizeof *w), *work = NULL, q;
    int rc = XE_OK;
    if (!ones || !j || !c || !w) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < (size_t)n * classes; i++)
        ones[i] = 1.0f;
    {
        float *dones = on_backend(net, ones, (size_t)n * classes * sizeof *ones);
        if (!dones) {
            rc = xerr_set(e, XE_FAIL, "out of memory");
            goto out;
        }
        net_forward(net, x, 1);
        net_backward(net, dones);
        backend_free(net, dones);
    }
    download(net, j, net->dacts + net->t[0].goff, (size_t)n * d);
    /* correlation of the rows: centre, scale to unit length, dot */
    for (int r = 0; r < n; r++) {
        float *row = j + (size_t)r * d;
        double m = 0, ss = 0;
        for (size_t k = 0; k < d; k++)
            m += row[k];
        m /= (double)d;
        for (size_t k = 0; k < d; k++)
            ss += (row[k] - m) * (row[k] - m);
        ss = ss > 0 ? 1.0 / sqrt(ss) : NAN;
        for (size_t k = 0; k < d; k++)
            row[k] = (float)((row[k] - m) * ss);
    }
    for (int r = 0; r < n; r++)
        for (int s = r; s < n; s++) {
            double dot = 0;
            for (size_t k = 0; k < d; k++)
                dot += (double)j[(size_t)r * d + k] * j[(size_t)s * d + k];
            c[(size_t)r * n + s] = c[(size_t)s * n + r] = dot;
        }
    for (size_t i = 0; i < (size_t)n * n; i++)
        if (!isfinite(c[i])) {
            *score = NAN;
            goto out;
        }
    dsyev_("N", "U", &n, c, &n, w, &q, &lwork, &info, 1, 1);
    lwork = (int)q;
    if (!(work = malloc((size_t)lwork * sizeof *work))) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    dsyev_("N", "U", &n, c, &n, w, work, &lwork, &info, 1, 1);
    if (info) {
        *score = NAN;
    } else {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += log(w[i] + 1e-5) + 1.0 / (w[i] + 1e-5);
        *score = -s;
    }
out:
    free(ones), free(j), free(c), free(w), free(work);
    return rc;
}

/* Zen: Gaussian weights, Gaussian input and a perturbed copy. */
static int zen(Net *net, Rng *r, double *score, XErr *e)
{
    int n = net->batch, gap = -1;
    size_t img = tensor_numel(net, 0), nf;
    float *x = malloc(img * sizeof *x), *x2 = malloc(img * sizeof *x2), *p = NULL, *f1 = NULL, *f2 = NULL,
          *sv = NULL;
    double diff = 0, bn = 0;
    int rc = XE_OK;
    for (int i = 0; i < net->nlayers; i++)
        if (net->layers[i].kind == LAYER_GAP)
            gap = net->layers[i].in[0];
    if (gap < 0)
        return xerr_set(e, XE_FAIL, "zen: the network has no global pooling");
    nf = tensor_numel(net, gap);
    p = malloc(net->nparams * sizeof *p);
    f1 = malloc(nf * sizeof *f1), f2 = malloc(nf * sizeof *f2);
    sv = malloc((net->nsave + 1) * sizeof *sv);
    if (!x || !x2 || !p || !f1 || !f2 || !sv) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    download(net, p, net->params, net->nparams);
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        size_t cnt = weight_count(net, l);
        for (size_t k = 0; k < cnt; k++)
            p[l->w + k] = (float)gauss(r);
    }
    net->be->upload(net->be->ctx, net->params, p, net->nparams * sizeof *p);
    for (size_t k = 0; k < img; k++) {
        x[k] = (float)gauss(r);
        x2[k] = x[k] + 0.01f * (float)gauss(r);
    }
    net_forward(net, x, 1);
    download(net, f1, net->acts + net->t[gap].off, nf);
    net_forward(net, x2, 1);
    download(net, f2, net->acts + net->t[gap].off, nf);
    download(net, sv, net->save, net->nsave);
    for (size_t k = 0; k < nf; k++)
        diff += fabs((double)f1[k] - f2[k]);
    diff /= n;
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        double var = 0;
        if (l->kind != LAYER_BN)
            continue;
        for (int c = 0; c < l->bn.c; c++) {
            double is = sv[l->save + (size_t)l->bn.c + (size_t)c];
            var += 1.0 / (is * is) - l->bn.eps;
        }
        var /= l->bn.c;
        /* a batch norm over a dead branch (variance 0) counts as eps */
        bn += 0.5 * log(var > l->bn.eps ? var : l->bn.eps);
    }
    *score = diff > 0 ? log(diff) + bn : NAN;
out:
    free(x), free(x2), free(p), free(f1), free(f2), free(sv);
    return rc;
}

/* synflow on a batch-1 network without batch norm. All activations are
 * positive, so every ReLU passes and the network is linear in its input,
 * and its backward pass linear in the output gradient: with an input of
 * s and an output gradient of t, each weight gradient is s * t times the
 * reference one. A network whose activations or gradients overflow float
 * at s = t = 1 is scored at smaller s = t, and the score divided by s * t
 * (in double). Deeper still, the score is NaN. */
static int synflow(Net *net, double *score, XErr *e)
{
    int classes = net->t[net_output(net)].c;
    size_t img = tensor_numel(net, 0);
    float *p = malloc(net->nparams * sizeof *p), *g = malloc(net->nparams * sizeof *g),
          *x = malloc(img * sizeof *x), *dout = malloc((size_t)classes * sizeof *dout);
    if (!p || !g || !x || !dout) {
        free(p), free(g), free(x), free(dout);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    download(net, p, net->params, net->nparams);
    for (size_t k = 0; k < net->nparams; k++)
        p[k] = fabsf(p[k]);
    net->be->upload(net->be->ctx, net->params, p, net->nparams * sizeof *p);
    *score = NAN;
    /* s and t down to 1e-36 stay normal floats */
    for (double scale = 1.0; scale > 1e-37; scale *= 1e-12) {
        double sum = 0;
        int finite = 1;
        for (size_t k = 0; k < img; k++)
            x[k] = (float)scale;
        float *ddout;
        for (int i = 0; i < classes; i++)
            dout[i] = (float)scale;
        if (!(ddout = on_backend(net, dout, (size_t)classes * sizeof *dout))) {
            free(p), free(g), free(x), free(dout);
            return xerr_set(e, XE_FAIL, "out of memory");
        }
        net_forward(net, x, 1);
        net_backward(net, ddout);
        backend_free(net, ddout);
        download(net, g, net->grads, net->nparams);
        for (int i = 0; i < net->nlayers; i++) {
            const Layer *l = &net->layers[i];
            size_t cnt = weight_count(net, l);
            for (size_t k = 0; k < cnt; k++) {
                finite &= isfinite(g[l->w + k]);
                sum += (double)p[l->w + k] * fabs((double)g[l->w + k]);
            }
        }
        if (finite && isfinite(sum)) {
            *score = sum / (scale * scale);
            break;
        }
    }
    free(p), free(g), free(x), free(dout);
    return XE_OK;
}

int proxies_compute(const ProxyTask *pt, const char *space, const char *arch, double out[PROXY_COUNT], XErr *e)
{
    const TaskFile *t = pt->t;
    Net net = { 0 };
    SpaceCost cost;
    Batcher b;
    Rng r;
    int classes = (int)t->classes, rc;
    size_t img = (size_t)t->h * t->w * t->c;
    float *x = NULL, *hp = NULL, *hg = NULL;
    int32_t *y = NULL;

    for (int i = 0; i < PROXY_COUNT; i++)
        out[i] = NAN;
    if (t->n[SPLIT_TRAIN] < (uint64_t)pt->batch)
        return xerr_set(e, XE_FAIL, "the task has %llu training images, fewer than the proxy batch of %d",
                        (unsigned long long)t->n[SPLIT_TRAIN], pt->batch);
    /* one batch of training images, unaugmented */
    if ((rc = batcher_init(&b, t, SPLIT_TRAIN, pt->batch, 1, NULL, pt->mean, pt->std, pt->seed, e)))
        return rc;
    x = malloc((size_t)pt->batch * img * sizeof *x);
    y = malloc((size_t)pt->batch * sizeof *y);
    if (!x || !y) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    batcher_epoch(&b, 0);
    batcher_next(&b, x, y);

    /* gradient scores, NASWOT and the Jacobian on the network as trained */
    if ((rc = meta_build_net(&net, pt->be, space, arch, pt->p, pt->batch, t, pt->seed, 0, &cost, e)))
        goto out;
    out[PROXY_PARAMS] = (double)cost.params;
    out[PROXY_FLOPS] = (double)cost.flops;
    hp = malloc(net.nparams * sizeof *hp);
    hg = malloc(net.nparams * sizeof *hg);
    if (!hp || !hg) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    if ((rc = grad_scores(&net, x, y, classes, hp, hg, &out[PROXY_GRAD_NORM], &out[PROXY_SNIP], e)) ||
        (rc = naswot(&net, &out[PROXY_NASWOT], e)) || (rc = jacob_cov(&net, x, &out[PROXY_JACOB_COV], e)))
        goto out;
    rng_seed(&r, pt->seed ^ 0x7a656eULL);
    if ((rc = zen(&net, &r, &out[PROXY_ZEN], e)) || (rc = net.be->sync(net.be->ctx, e)))
        goto out;
    net_release(&net);
    memset(&net, 0, sizeof net);

    if ((rc = meta_build_net(&net, pt->be, space, arch, pt->p, 1, t, pt->seed, 1, &cost, e)))
        goto out;
    if (!(rc = synflow(&net, &out[PROXY_SYNFLOW], e)))
        rc = net.be->sync(net.be->ctx, e);
out:
    if (net.be)
        net_release(&net);
    batcher_release(&b);
    free(x), free(y), free(hp), free(hg);
    return rc;
}
