/* The fully connected layer on the CPU: every product through OpenBLAS's
 * sgemm on row-major matrices. */
#include <cblas.h>

#include "nn/cpu/cpu.h"
#include "nn/cpu/vec.h"

void cpu_linear_fwd(void *ctx, int n, int in, int out,
                    const float *x,  // (N, in)
                    const float *w,  // (out, in)
                    const float *b,  // (out)
                    float *y)        // (N, out)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++)
            y[(size_t)i * (size_t)out + (size_t)o] = b[o];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 1.0f, y, out);
}

void cpu_linear_bwd(void *ctx, int n, int in, int out,
                    const float *x,   // (N, in)
                    const float *w,   // (out, in)
                    const float *dy,  // (N, out)
                    float *dx,        // (N, in), accumulated
                    float *dw,        // (out, in), accumulated
                    float *db)        // (out), accumulated
{
    /* dx += dy w; dw += dy^T x; db += column sums of dy */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
    for (int o0 = 0; o0 < out; o0 += VEC_LANES) {
        double acc[VEC_LANES] = {0};
        int m = out - o0 < VEC_LANES ? out - o0 : VEC_LANES;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
                acc[j] += (double)dy[(size_t)i * (size_t)out + (size_t)(o0 + j)];
        for (int j = 0; j < m; j++)
            db[o0 + j] += (float)acc[j];
    }
}
