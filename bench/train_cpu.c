/* CPU training throughput of the engine, the peer of
 * shared/bench/torch_nb201_cpu_bench.py: the same NAS-Bench-201 arch at
 * (C 16, N 5) and (C 8, N 1), 32x32x3 random inputs, batch 64, 10 classes,
 * SGD (lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4); 3 warm-up steps,
 * then timed steps. Usage: train_cpu [THREADS]  (default 2). One JSON line
 * per network, the torch script's fields plus the process's peak RSS so far. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "core/clock.h"
#include "core/rng.h"
#include "nn/model.h"
#include "space/space.h"

static const char *const arch =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

/* One training step, as the torch script's step(): forward, mean
 * cross-entropy, backward (gradients zeroed inside), SGD. Returns the loss. */
static float step(Net *net, const float *x, const int32_t *y, int classes, float *dlogits)
{
    const NnBackend *be = net->be;
    float loss;
    int correct;
    be->xent(be->ctx, net->batch, classes, net_forward(net, x, 1), y, 0.0f, dlogits, &loss, &correct);
    net_backward(net, dlogits);
    be->sgd(be->ctx, net->nparams, net->params, net->grads, net->mom, net->decay, 0.1f, 0.9f, 5e-4f, 1);
    return loss;
}

static int bench(const NnBackend *be, int threads, int C, int N, int hw, int B, int steps, XErr *e)
{
    const int cin = 3, classes = 10, warm = 3;
    size_t nx = (size_t)B * cin * hw * hw;
    float *x = malloc(nx * sizeof *x);                          // (B, 3, hw, hw)
    float *dl = malloc((size_t)B * classes * sizeof *dl);        // (B, classes)
    int32_t *y = malloc((size_t)B * sizeof *y);                  // (B)
    int ops[6], rc;
    double t, dt;
    float loss = 0;
    struct rusage ru;
    Rng r;
    Net net = { 0 };
    if (!x || !dl || !y) {
        free(x), free(dl), free(y);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    rng_seed(&r, 0);
    /* standard normal inputs (Box-Muller), like torch.randn */
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)(sqrt(-2.0 * log(1.0 - rng_uniform(&r))) * cos(2.0 * M_PI * rng_uniform(&r)));
    for (int i = 0; i < B; i++)
        y[i] = (int32_t)rng_below(&r, (uint64_t)classes);
    rc = nb201_parse(arch, ops, e);
    if (rc == XE_OK)
        rc = net_init(&net, be, B, cin, hw, hw, e);
    if (rc == XE_OK && !(rc = model_nb201(&net, ops, C, N, classes, e)))
        rc = net_finalize(&net, 0, e);
    if (rc == XE_OK) {
        for (int i = 0; i < warm; i++)
            step(&net, x, y, classes, dl);
        t = xfer_clock();
        for (int i = 0; i < steps; i++)
            loss = step(&net, x, y, classes, dl);
        dt = xfer_clock() - t;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"C\": %d, \"N\": %d, \"hw\": %d, \"B\": %d, \"threads\": %d, \"img_per_s\": %.1f, "
               "\"steps\": %d, \"loss\": %.3f, \"peak_rss_kb\": %ld}\n",
               C, N, hw, B, threads, (double)B * steps / dt, steps, (double)loss, ru.ru_maxrss);
        fflush(stdout);
    }
    if (net.be)
        net_release(&net);
    free(x), free(dl), free(y);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    XErr e = { 0 };
    const NnBackend *be;
    if (argc > 2 || threads < 1) {
        fprintf(stderr, "usage: train_cpu [THREADS]\n");
        return 2;
    }
    be = nn_cpu_backend(threads);
    /* the small network runs more steps: 10 of them take a fraction of a second */
    if (bench(be, threads, 16, 5, 32, 64, 10, &e) || bench(be, threads, 8, 1, 32, 64, 40, &e)) {
        fprintf(stderr, "train_cpu: %s\n", e.msg);
        return 1;
    }
    if (ferror(stdout) || fclose(stdout)) {
        fprintf(stderr, "train_cpu: cannot write the results\n");
        return 1;
    }
    return 0;
}
