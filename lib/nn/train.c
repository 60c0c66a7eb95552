/* Training loop, learning-rate schedule and checkpoints. */
#include "core/clock.h"
#include "nn/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double recipe_lr(const Recipe *r, long step, long steps_per_epoch)
{
    long warm = (long)r->warmup_epochs * steps_per_epoch, total = (long)r->epochs * steps_per_epoch;
    if (step < warm)
        return r->lr * (double)(step + 1) / (double)warm;
    if (total - warm <= 0)
        return r->lr;
    return r->lr_min + 0.5 * (r->lr - r->lr_min) * (1.0 + cos(M_PI * (double)(step - warm) / (double)(total - warm)));
}

/* Backend memory the loops need next to the network's: the batch's labels,
 * the logits' gradient and xent's results (one per row in evaluation), so
 * a step reads its loss with one download and nothing else crosses over. */
typedef struct LossBufs {
    int32_t *labels;   // (batch)
    float *dl;         // (batch, K)
    float *loss;       // (batch)
    int *correct;      // (batch)
} LossBufs;

static void loss_bufs_release(LossBufs *d, const NnBackend *be)
{
    void *p[] = { d->labels, d->dl, d->loss, d->correct };
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        if (p[i])
            be->free(be->ctx, p[i]);
    memset(d, 0, sizeof *d);
}

static int loss_bufs_init(LossBufs *d, const NnBackend *be, int batch, int k, XErr *e)
{
    memset(d, 0, sizeof *d);
    d->labels = be->alloc(be->ctx, (size_t)batch * sizeof *d->labels);
    d->dl = be->alloc(be->ctx, (size_t)batch * (size_t)k * sizeof *d->dl);
    d->loss = be->alloc(be->ctx, (size_t)batch * sizeof *d->loss);
    d->correct = be->alloc(be->ctx, (size_t)batch * sizeof *d->correct);
    if (!d->labels || !d->dl || !d->loss || !d->correct) {
        loss_bufs_release(d, be);
        return xerr_set(e, XE_FAIL, "out of memory for the loss (%s)", be->name);
    }
    return XE_OK;
}

/* Queues a training pass's layers on what was staged: forward, loss, backward. */
static void step_layers(Net *net, LossBufs *d, int k, float smoothing)
{
    const NnBackend *be = net->be;
    be->xent(be->ctx, net->batch, k, net_forward_layers(net, 1), d->labels, smoothing, d->dl, d->loss, d->correct);
    net_backward(net, d->dl);
}

/* Queues one pass over a batch: forward, loss, backward. With record set
 * (*record non-zero) and no graph yet, the layers are recorded into *graph
 * first; a graph is replayed rather than the layers queued again. A backend
 * that cannot record clears *record: the layers then run as usual. */
static void step_batch(Net *net, LossBufs *d, const float *x, const int32_t *y, int k, float smoothing, int *record,
                       void **graph)
{
    const NnBackend *be = net->be;
    be->upload(be->ctx, d->labels, y, (size_t)net->batch * sizeof *y);
    net_stage(net, x, 1);
    if (record && *record && !*graph) {
        XErr ge = { 0 };
        if (be->graph_begin(be->ctx, &ge) == XE_OK) {
            step_layers(net, d, k, smoothing);
            if (be->graph_end(be->ctx, graph, &ge))
                *record = 0;
        } else {
            *record = 0;
        }
    }
    if (*graph)
        be->graph_run(be->ctx, *graph);
    else
        step_layers(net, d, k, smoothing);
}

int train_evaluate(Net *net, const TaskFile *t, Split split, const double *mean, const double *std,
                   double *loss, double *acc, XErr *e)
{
    const NnBackend *be = net->be;
    Batcher b;
    LossBufs d = { 0 };
    size_t img = (size_t)t->h * t->w * t->c, seen = 0;
    int k = (int)t->classes, n, rc;
    float *x = calloc((size_t)net->batch * img, sizeof *x), *hl = calloc((size_t)net->batch, sizeof *hl);
    int32_t *y = calloc((size_t)net->batch, sizeof *y);
    int *hc = calloc((size_t)net->batch, sizeof *hc);
    double sum = 0, right = 0;
    *loss = *acc = -1;
    rc = !x || !hl || !y || !hc ? xerr_set(e, XE_FAIL, "out of memory") : XE_OK;
    if (rc == XE_OK)
        rc = loss_bufs_init(&d, be, net->batch, k, e);
    if (rc == XE_OK && (rc = batcher_init(&b, t, split, net->batch, 0, NULL, mean, std, 0, e)))
        loss_bufs_release(&d, be);
    if (rc) {
        free(x), free(hl), free(y), free(hc);
        return rc;
    }
    /* The last partial batch runs padded with copies of its first image:
     * eval mode keeps samples independent; only the real ones count. Each
     * row's loss on its own, summed here in order. */
    while ((n = batcher_next(&b, x, y)) > 0) {
        const float *logits;
        for (int i = n; i < net->batch; i++) {
            memcpy(x + (size_t)i * img, x, img * sizeof *x);
            y[i] = y[0];
        }
        be->upload(be->ctx, d.labels, y, (size_t)net->batch * sizeof *y);
        logits = net_forward(net, x, 0);
        for (int i = 0; i < n; i++)
            be->xent(be->ctx, 1, k, logits + (size_t)i * k, d.labels + i, 0.0f, d.dl + (size_t)i * k, d.loss + i,
                     d.correct + i);
        be->download(be->ctx, hl, d.loss, (size_t)n * sizeof *hl);
        be->download(be->ctx, hc, d.correct, (size_t)n * sizeof *hc);
        for (int i = 0; i < n; i++) {
            sum += hl[i];
            right += hc[i];
        }
        seen += (size_t)n;
    }
    batcher_release(&b);
    loss_bufs_release(&d, be);
    free(x), free(hl), free(y), free(hc);
    if ((rc = be->sync(be->ctx, e)))
        return rc;
    if (seen) {
        *loss = sum / (double)seen;
        *acc = right / (double)seen;
    }
    return XE_OK;
}

int train_run(Net *net, const TaskFile *t, const double *mean, const double *std, const Recipe *r,
              int start, EpochFn fn, void *ctx, double *test_acc, XErr *e)
{
    const NnBackend *be = net->be;
    Batcher b;
    LossBufs d = { 0 };
    size_t img = (size_t)t->h * t->w * t->c;
    int k = (int)t->classes, rc;
    /* step graphs: one per epoch (drop-path's probability is recorded),
     * recorded at its second step (the first sets up cuDNN and cuBLAS) */
    int record = net->graph && be->graph_begin;
    void *graph = NULL;
    long spe;
    float *x = calloc((size_t)net->batch * img, sizeof *x);
    int32_t *y = calloc((size_t)net->batch, sizeof *y);
    *test_acc = -1;
    if (!x || !y) {
        free(x), free(y);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    if ((int)t->c != net->t[0].c || (int)t->h != net->t[0].h || (int)t->w != net->t[0].w ||
        (int)t->classes != net->t[net_output(net)].c) {
        free(x), free(y);
        return xerr_set(e, XE_FAIL, "the task's %ux%ux%u images in %u classes do not fit a network for %dx%dx%d in %d",
                        t->h, t->w, t->c, t->classes, net->t[0].h, net->t[0].w, net->t[0].c,
                        net->t[net_output(net)].c);
    }
    if ((rc = loss_bufs_init(&d, be, net->batch, k, e))) {
        free(x), free(y);
        return rc;
    }
    if ((rc = batcher_init(&b, t, SPLIT_TRAIN, net->batch, 1, &r->aug, mean, std, r->seed, e))) {
        loss_bufs_release(&d, be);
        free(x), free(y);
        return rc;
    }
    spe = (long)batcher_count(&b);
    if (spe == 0) {
        rc = xerr_set(e, XE_FAIL, "%llu training images are fewer than one batch of %d",
                      (unsigned long long)t->n[SPLIT_TRAIN], net->batch);
        goto cleanup;
    }
    for (int epoch = start; epoch < r->epochs; epoch++) {
        EpochPoint p = { epoch + 1, 0, 0, -1, -1, 0, 0 };
        double t0 = xfer_clock(), loss_sum = 0;
        long correct = 0, step = (long)epoch * spe;
        int full;
        batcher_epoch(&b, epoch);
        if (graph) {
            be->graph_free(be->ctx, graph);
            graph = NULL;
        }
        /* drop-path: its schedule and masks follow (seed, epoch) too */
        net->drop_prob = r->drop_path * (float)epoch / (float)r->epochs;
        rng_seed(&net->rng, r->seed * 0x2545f4914f6cdd1dull + (uint64_t)epoch);
        full = batcher_next(&b, x, y) == net->batch;
        while (full) {
            int c, first = step == (long)epoch * spe;
            double lr = recipe_lr(r, step++, spe);
            float loss, scale = 1.0f;
            step_batch(net, &d, x, y, k, r->label_smoothing, first ? NULL : &record, &graph);
            /* the next batch is made while a GPU backend runs this one */
            full = batcher_next(&b, x, y) == net->batch;
            be->download(be->ctx, &loss, d.loss, sizeof loss);
            be->download(be->ctx, &c, d.correct, sizeof c);
            if ((rc = be->sync(be->ctx, e)))
                goto cleanup;
            if (!isfinite(loss)) {
                rc = xerr_set(e, XE_FAIL, "diverged: the loss is %g at epoch %d", (double)loss, epoch + 1);
                goto cleanup;
            }
            if (r->clip > 0) {
                double norm = sqrt(be->sumsq(be->ctx, net->nparams, net->grads));
                if (norm > r->clip)
                    scale = (float)(r->clip / (norm + 1e-6));
            }
            if (scale != 1.0f)
                be->scale(be->ctx, net->nparams, scale, net->grads, net->grads);
            be->sgd(be->ctx, net->nparams, net->params, net->grads, net->mom, net->decay, (float)lr, r->momentum,
                    r->wd, r->nesterov);
            loss_sum += loss;
            correct += c;
            p.lr = lr;
            if (xfer_interrupted) {
                rc = xerr_set(e, XE_INTR, "interrupted");
                goto cleanup;
            }
        }
        p.train_loss = loss_sum / (double)spe;
        p.train_acc = (double)correct / ((double)spe * net->batch);
        if (t->n[SPLIT_VALID] && (rc = train_evaluate(net, t, SPLIT_VALID, mean, std, &p.valid_loss, &p.valid_acc, e)))
            goto cleanup;
        p.seconds = xfer_clock() - t0;
        if (fn && (rc = fn(ctx, net, &p, e)))
            goto cleanup;
    }
    if (t->n[SPLIT_TEST]) {
        double l;
        rc = train_evaluate(net, t, SPLIT_TEST, mean, std, &l, test_acc, e);
    }
cleanup:
    if (graph)
        be->graph_free(be->ctx, graph);
    batcher_release(&b);
    loss_bufs_release(&d, be);
    free(x), free(y);
    return rc;
}

/* Checkpoint layout: "XFERCKPT" u32 version 1, u32 epoch, u64 nparams,
 * u64 nstate, then params, momentum and state as float32. */
int net_checkpoint_write(const Net *net, int epoch, const char *path, XErr *e)
{
    const NnBackend *be = net->be;
    size_t np = net->nparams, ns = net->nstate;
    float *buf = malloc((2 * np + ns + 1) * sizeof *buf);
    char tmp[4200];
    uint32_t head[2] = { 1, (uint32_t)epoch };
    uint64_t sizes[2] = { np, ns };
    FILE *f;
    int ok;
    if (!buf)
        return xerr_set(e, XE_FAIL, "out of memory");
    be->download(be->ctx, buf, net->params, np * sizeof *buf);
    be->download(be->ctx, buf + np, net->mom, np * sizeof *buf);
    be->download(be->ctx, buf + 2 * np, net->state, ns * sizeof *buf);
    if (be->sync(be->ctx, e)) {
        free(buf);
        return e->code;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        free(buf);
        return xerr_set(e, XE_FAIL, "'%s': %s", tmp, strerror(errno));
    }
    ok = fwrite("XFERCKPT", 1, 8, f) == 8 && fwrite(head, sizeof head, 1, f) == 1 &&
         fwrite(sizes, sizeof sizes, 1, f) == 1 && fwrite(buf, sizeof *buf, 2 * np + ns, f) == 2 * np + ns;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    free(buf);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return xerr_set(e, XE_FAIL, "'%s': cannot write checkpoint: %s", path, strerror(errno));
    }
    return XE_OK;
}

int net_checkpoint_read(Net *net, int *epoch, const char *path, XErr *e)
{
    const NnBackend *be = net->be;
    size_t np = net->nparams, ns = net->nstate;
    char magic[8];
    uint32_t head[2];
    uint64_t sizes[2];
    float *buf;
    FILE *f = fopen(path, "rb");
    int rc = XE_OK;
    if (!f)
        return xerr_set(e, XE_FAIL, "'%s': %s", path, strerror(errno));
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "XFERCKPT", 8) || fread(head, sizeof head, 1, f) != 1 ||
        head[0] != 1 || fread(sizes, sizeof sizes, 1, f) != 1) {
        fclose(f);
        return xerr_set(e, XE_FAIL, "'%s': not a version 1 checkpoint", path);
    }
    if (sizes[0] != np || sizes[1] != ns) {
        fclose(f);
        return xerr_set(e, XE_FAIL, "'%s': checkpoint of %llu parameters, the network has %zu", path,
                        (unsigned long long)sizes[0], np);
    }
    buf = malloc((2 * np + ns + 1) * sizeof *buf);
    if (!buf)
        rc = xerr_set(e, XE_FAIL, "out of memory");
    else if (fread(buf, sizeof *buf, 2 * np + ns, f) != 2 * np + ns || fgetc(f) != EOF)
        rc = xerr_set(e, XE_FAIL, "'%s': truncated or oversized checkpoint", path);
    fclose(f);
    if (rc == XE_OK) {
        be->upload(be->ctx, net->params, buf, np * sizeof *buf);
        be->upload(be->ctx, net->mom, buf + np, np * sizeof *buf);
        be->upload(be->ctx, net->state, buf + 2 * np, ns * sizeof *buf);
        *epoch = (int)head[1];
        rc = be->sync(be->ctx, e);
    }
    free(buf);
    return rc;
}
