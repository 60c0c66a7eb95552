/* GPU training throughput of the engine's CUDA backend, the peer of
 * shared/bench/torch_nb201_bench.py: the same NAS-Bench-201 network (C 16,
 * N 5, 32x32x3 inputs, 10 classes) and arch, SGD (lr 0.1, momentum 0.9,
 * Nesterov, weight decay 5e-4), 4 batches of random normal inputs and
 * labels in turn. A step is what train_run does: upload the batch and its
 * labels, forward, cross-entropy, backward, SGD, and read the loss back
 * (one wait per step). Modes: fp32 (FMA-only kernels), tf32 (TF32 tensor
 * cores in convolutions and sgemm), and either with graph_ in front: the
 * forward, loss and backward recorded once as a CUDA graph and replayed
 * (Net.graph in train_run). Warm-up steps first (the convolution
 * algorithms are timed when the network is built), then timed steps.
 * Usage: train_gpu [--batch B] [--steps S] [--warm W] [--modes M,...]
 * (default fp32,tf32,graph_fp32,graph_tf32). One JSON line per mode, with
 * the torch script's fields, plus the arithmetic rate that implies
 * (tflop_per_s: 3 x 2 x the network's multiply-adds per image, as lib/space
 * counts them, forward plus twice that backward, per second), to hold
 * against the GPU's ceiling. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/clock.h"
#include "core/rng.h"
#include "nn/model.h"
#include "space/space.h"

static const char *const arch =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

enum { CLASSES = 10, NBATCH = 4 };

/* Backend memory for the loss of a step. */
typedef struct Bufs {
    int32_t *labels;   // (B)
    float *dl;         // (B, CLASSES)
    float *loss;       // (1)
    int *correct;      // (1)
} Bufs;

static void layers(Net *net, Bufs *d)
{
    const NnBackend *be = net->be;
    be->xent(be->ctx, net->batch, CLASSES, net_forward_layers(net, 1), d->labels, 0.0f, d->dl, d->loss, d->correct);
    net_backward(net, d->dl);
}

/* One training step; returns the loss (read back, as train_run does), or
 * NaN with e set when recording fails. With record set and no graph yet,
 * the layers are recorded into *graph first; a graph is replayed. */
static float step(Net *net, Bufs *d, const float *x, const int32_t *y, int record, void **graph, XErr *e)
{
    const NnBackend *be = net->be;
    float loss;
    be->upload(be->ctx, d->labels, y, (size_t)net->batch * sizeof *y);
    net_stage(net, x, 1);
    if (record && !*graph) {
        if (be->graph_begin(be->ctx, e))
            return NAN;
        layers(net, d);
        if (be->graph_end(be->ctx, graph, e))
            return NAN;
    }
    if (*graph)
        be->graph_run(be->ctx, *graph);
    else
        layers(net, d);
    be->sgd(be->ctx, net->nparams, net->params, net->grads, net->mom, net->decay, 0.1f, 0.9f, 5e-4f, 1);
    be->download(be->ctx, &loss, d->loss, sizeof loss);
    return loss;
}

static int bench(const char *mode, int B, int steps, int warm, XErr *e)
{
    const int cin = 3, hw = 32;
    size_t nx = (size_t)B * cin * hw * hw;
    float *x = malloc(NBATCH * nx * sizeof *x);                  // (4, B, 3, 32, 32)
    int32_t *y = malloc(NBATCH * (size_t)B * sizeof *y);         // (4, B)
    const NnBackend *be = NULL;
    Bufs d = { 0 };
    Net net = { 0 };
    int graphed = !strncmp(mode, "graph_", 6), ops[6], rc, flags;
    const char *prec = mode + (graphed ? 6 : 0);
    void *graph = NULL;
    SpaceCost cost = { 0, 0 };
    double t0, t1, dt = 0;
    float loss = 0;
    struct rusage ru;
    Rng r;
    if (strcmp(prec, "fp32") && strcmp(prec, "tf32")) {
        free(x), free(y);
        return xerr_set(e, XE_USAGE, "unknown mode '%s' (fp32, tf32, graph_fp32 or graph_tf32)", mode);
    }
    flags = !strcmp(prec, "tf32") ? NN_CUDA_TF32 : 0;
    if (!x || !y) {
        free(x), free(y);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    rng_seed(&r, 0);
    /* standard normal inputs (Box-Muller), like torch.randn */
    for (size_t i = 0; i < NBATCH * nx; i++)
        x[i] = (float)(sqrt(-2.0 * log(1.0 - rng_uniform(&r))) * cos(2.0 * M_PI * rng_uniform(&r)));
    for (size_t i = 0; i < NBATCH * (size_t)B; i++)
        y[i] = (int32_t)rng_below(&r, CLASSES);
    rc = nn_cuda_backend_new(0, flags, &be, e);
    if (rc == XE_OK && (rc = nb201_parse(arch, ops, e)) == XE_OK) {
        SpaceArch a;
        SpaceMacro m = { 16, 5, CLASSES, cin, hw, hw };
        memcpy(a.nb201.ops, ops, sizeof ops);
        rc = space_nb201.cost(&a, &m, &cost, e);
    }
    t0 = xfer_clock();
    if (rc == XE_OK)
        rc = net_init(&net, be, B, cin, hw, hw, e);
    if (rc == XE_OK && !(rc = model_nb201(&net, ops, 16, 5, CLASSES, e)))
        rc = net_finalize(&net, 0, e);
    t1 = xfer_clock();
    if (rc == XE_OK) {
        d.labels = be->alloc(be->ctx, (size_t)B * sizeof *d.labels);
        d.dl = be->alloc(be->ctx, (size_t)B * CLASSES * sizeof *d.dl);
        d.loss = be->alloc(be->ctx, sizeof *d.loss);
        d.correct = be->alloc(be->ctx, sizeof *d.correct);
        if (!d.labels || !d.dl || !d.loss || !d.correct)
            rc = xerr_set(e, XE_FAIL, "out of GPU memory");
    }
    /* the graph is recorded at the second warm-up step, as train_run does */
    for (int i = 0; rc == XE_OK && i < warm; i++)
        if (isnan(step(&net, &d, x + (size_t)(i % NBATCH) * nx, y + (size_t)(i % NBATCH) * B, graphed && i > 0,
                       &graph, e)) && e->code)
            rc = e->code;
    if (rc == XE_OK && graphed && !graph)
        rc = xerr_set(e, XE_USAGE, "graph modes need at least 2 warm-up steps");
    if (rc == XE_OK)
        rc = be->sync(be->ctx, e);
    if (rc == XE_OK) {
        double t = xfer_clock();
        for (int i = 0; i < steps; i++)
            loss = step(&net, &d, x + (size_t)(i % NBATCH) * nx, y + (size_t)(i % NBATCH) * B, 0, &graph, e);
        rc = be->sync(be->ctx, e);
        dt = xfer_clock() - t;
    }
    if (rc == XE_OK) {
        getrusage(RUSAGE_SELF, &ru);
        double ips = (double)B * steps / dt;
        printf("{\"engine\": \"xfernas\", \"mode\": \"%s\", \"B\": %d, \"arch\": \"%s\", \"img_per_s\": %.0f, "
               "\"steps\": %d, \"loss\": %.3f, \"tflop_per_s\": %.2f, \"build_s\": %.2f, \"peak_rss_kb\": %ld}\n",
               mode, B, arch, ips, steps, (double)loss, ips * 6.0 * (double)cost.flops / 1e12, t1 - t0, ru.ru_maxrss);
        fflush(stdout);
    }
    if (be) {
        void *p[] = { d.labels, d.dl, d.loss, d.correct };
        if (graph)
            be->graph_free(be->ctx, graph);
        for (size_t i = 0; i < sizeof p / sizeof *p; i++)
            if (p[i])
                be->free(be->ctx, p[i]);
        if (net.be)
            net_release(&net);
        nn_cuda_backend_free(be);
    }
    free(x), free(y);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: train_gpu [--batch B] [--steps S] [--warm W] [--modes M,...]\n"
                    "modes: fp32, tf32, graph_fp32, graph_tf32 (default all four)\n");
    return 2;
}

int main(int argc, char **argv)
{
    int B = 256, steps = 64, warm = 10;
    char modes[256] = "fp32,tf32,graph_fp32,graph_tf32", *save = NULL;
    XErr e = { 0 };
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--batch"))
            B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warm"))
            warm = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--modes"))
            snprintf(modes, sizeof modes, "%s", argv[++i]);
        else
            return usage();
    }
    if (B < 1 || steps < 1 || warm < 0)
        return usage();
    for (char *m = strtok_r(modes, ",", &save); m; m = strtok_r(NULL, ",", &save))
        if (bench(m, B, steps, warm, &e)) {
            fprintf(stderr, "train_gpu: %s\n", e.msg);
            return e.code == XE_USAGE ? 2 : 1;
        }
    if (ferror(stdout) || fclose(stdout)) {
        fprintf(stderr, "train_gpu: cannot write the results\n");
        return 1;
    }
    return 0;
}
