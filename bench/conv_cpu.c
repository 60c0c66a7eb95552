/* The CPU 3x3 stride-1 convolutions on their own: GFLOP/s of forward,
 * backward data and backward filter through the direct AVX-512 kernels
 * (conv3x3.c) and, in the same run, through im2col + sgemm (the path CPUs
 * without AVX-512 take), for the shapes of the three NAS-Bench-201 stages
 * and the C 8 network's first. 1 thread, batch 32; the best of 3 timings of
 * 5 calls each. Prints a Markdown table. Usage: conv_cpu (no arguments). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/cpu/conv3x3.h"
#include "nn/cpu/cpu.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GFLOP/s of op 0 (forward), 1 (backward data), 2 (backward filter). */
static double rate(const ConvDesc *d, int op, const float *x, const float *w, float *y, float *dx, float *dw,
                   float *ws)
{
    double flop = 2.0 * d->n * d->h * d->w * d->cout * d->cin * 9, best = 0;
    for (int k = 0; k < 3; k++) {
        double t = now();
        for (int r = 0; r < 5; r++) {
            if (op == 0)
                cpu_conv_fwd(NULL, d, x, w, y, ws);
            else if (op == 1)
                cpu_conv_bwd_data(NULL, d, y, w, dx, ws);
            else
                cpu_conv_bwd_filter(NULL, d, x, y, dw, ws);
        }
        t = 5 * flop / (now() - t) / 1e9;
        best = t > best ? t : best;
    }
    return best;
}

int main(void)
{
    static const int shapes[][2] = { { 16, 32 }, { 32, 16 }, { 64, 8 }, { 8, 32 } }; /* channels, side */
    const int n = 32;
    XErr e = { 0 };
    cpu_conv_set_threads(1);
    printf("direct kernels on this CPU: %s\n\n", c3_available() ? "yes (AVX-512F)" : "no");
    printf("| channels, side | direct fwd / data / filter GFLOP/s | im2col + sgemm fwd / data / filter GFLOP/s |\n");
    printf("|---|---|---|\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int c = shapes[i][0], s = shapes[i][1];
        ConvDesc d;
        size_t nx = (size_t)n * c * s * s, nw = (size_t)c * c * 9, nws;
        float *x, *w, *y, *dx, *dw, *ws;
        double r[2][3];
        if (conv_desc_init(&d, n, c, s, s, c, 3, 1, 1, 1, 1, &e)) {
            fprintf(stderr, "conv_cpu: %s\n", e.msg);
            return 1;
        }
        nws = conv_workspace(&d);
        x = calloc(nx, sizeof *x), y = calloc(nx, sizeof *y), dx = calloc(nx, sizeof *dx);
        w = calloc(nw, sizeof *w), dw = calloc(nw, sizeof *dw), ws = aligned_alloc(64, (nws + 16) * sizeof *ws);
        if (!x || !y || !dx || !w || !dw || !ws) {
            fprintf(stderr, "conv_cpu: out of memory\n");
            return 1;
        }
        for (size_t j = 0; j < nx; j++)
            x[j] = (float)(j % 13) * 0.1f - 0.6f;
        for (size_t j = 0; j < nw; j++)
            w[j] = (float)(j % 7) * 0.01f - 0.03f;
        for (int path = 0; path < 2; path++) {
            c3_set_enabled(!path);
            for (int op = 0; op < 3; op++)
                r[path][op] = path == 0 && !c3_available() ? 0 : rate(&d, op, x, w, y, dx, dw, ws);
        }
        c3_set_enabled(1);
        printf("| %d, %dx%d | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f |\n", c, s, s, r[0][0], r[0][1], r[0][2],
               r[1][0], r[1][1], r[1][2]);
        free(x), free(y), free(dx), free(w), free(dw), free(ws);
    }
    return 0;
}
