/* The fully connected layer through cuBLAS. The engine's matrices are
 * row-major; cuBLAS's are column-major, so each row-major M (r, c) is the
 * column-major M^T (c, r) with leading dimension c, and every product is
 * written for the transposes. The bias goes through two small kernels
 * (eltwise.cu). */
#include "nn/cuda/gpu.h"

static const float one = 1.0f;

void gpu_linear_fwd(void *ctx, int n, int in, int out,
                    const float *x,  // (N, in)
                    const float *w,  // (out, in)
                    const float *b,  // (out)
                    float *y)        // (N, out)
{
    GpuCtx *c = ctx;
    /* y^T (out, N) = w (out, in) x^T (in, N) + b, with y preset to b */
    gpu_bias_fill(c, n, out, b, y);
    gpu_blas(c, cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, x, in, &one, y, out),
             "cublasSgemm (linear forward)");
}

void gpu_linear_bwd(void *ctx, int n, int in, int out,
                    const float *x,   // (N, in)
                    const float *w,   // (out, in)
                    const float *dy,  // (N, out)
                    float *dx,        // (N, in), accumulated
                    float *dw,        // (out, in), accumulated
                    float *db)        // (out), accumulated
{
    GpuCtx *c = ctx;
    /* dx^T (in, N) += w^T (in, out) dy^T (out, N) */
    gpu_blas(c, cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy, out, &one, dx, in),
             "cublasSgemm (linear backward data)");
    /* dw^T (in, out) += x^T (in, N) dy (N, out) */
    gpu_blas(c, cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out, &one, dw, in),
             "cublasSgemm (linear backward weights)");
    gpu_bias_grad(c, n, out, dy, db);
}
