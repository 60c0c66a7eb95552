/* The CUDA backend's private header: its context and the operators that
 * gpu.c puts in the NnBackend table, one file per group. cuDNN and cuBLAS
 * calls are C (cudnn_conv.c, cudnn_bn.c, cudnn_pool.c, cublas_linear.c);
 * the own kernels are CUDA C++ (eltwise.cu, shape.cu, xent.cu, sgd.cu)
 * behind extern "C" launchers. Only files in lib/nn/cuda include it: it
 * pulls in the CUDA headers, which the rest of the engine never sees.
 * (The C files' names differ from lib/nn/cpu's: one archive holds both.) */
#ifndef XFER_NN_CUDA_GPU_H
#define XFER_NN_CUDA_GPU_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Threads per block of the elementwise kernels, and the most blocks one
 * launch uses (grid-stride loops cover the rest). */
#define GPU_THREADS 256
#define GPU_MAX_BLOCKS 8192
/* Blocks of the first pass of sumsq: a fixed count, so that its partial
 * sums and their order never depend on n (deterministic results). */
#define GPU_SUMSQ_BLOCKS 256
/* The most workspace one convolution algorithm may ask for. */
#define GPU_CONV_WS_LIMIT ((size_t)512 << 20)
/* cuBLAS's workspace, given to it up front so that no call allocates
 * (NVIDIA's advice for Hopper, and what CUDA-graph capture needs). */
#define GPU_BLAS_WS ((size_t)32 << 20)

/* One convolution shape: cuDNN's descriptors and the algorithms chosen
 * for it (timed by cudnnFind*, or cuDNN's heuristics if that fails). */
typedef struct ConvPlan {
    ConvDesc d;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t data;
    cudnnConvolutionBwdFilterAlgo_t filter;
    cudnnMathType_t fwd_math, data_math, filter_math;
    size_t ws_bytes;   /* the largest workspace of the three */
    int sized;         /* conv_workspace returned its size: the caller's ws holds it */
} ConvPlan;

typedef struct GpuCtx {
    NnBackend table;              /* what nn_cuda_backend_new hands out; table.ctx is this */
    int device;
    int tf32;                     /* NN_CUDA_TF32: tensor-core TF32 for convs and sgemm */
    cudaStream_t stream;          /* every op of this context, in order */
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    void *blas_ws;                /* (GPU_BLAS_WS bytes) */
    ConvPlan *plans;              /* (nplans,) every shape seen, in order */
    int nplans, cap_plans;
    void *ws;                     /* (ws_bytes) own conv workspace, for callers without one */
    size_t ws_bytes;
    double *red;                  /* (GPU_SUMSQ_BLOCKS + 1) sumsq's partial sums and total */
    cudnnTensorDescriptor_t ta, tb; /* scratch descriptors of batch norm and pooling, set per call */
    cudnnPoolingDescriptor_t pool;
    XErr err;                     /* the first error; it sticks */
} GpuCtx;

/* Record the first failure of a CUDA runtime, cuDNN or cuBLAS call (what
 * names the call); return 0 when the call succeeded. */
int gpu_check(GpuCtx *c, cudaError_t r, const char *what);
int gpu_dnn(GpuCtx *c, cudnnStatus_t s, const char *what);
int gpu_blas(GpuCtx *c, cublasStatus_t s, const char *what);
/* After a kernel launch: records a launch error under the kernel's name. */
void gpu_launched(GpuCtx *c, const char *what);
/* Blocks for n elements at GPU_THREADS each, at most GPU_MAX_BLOCKS. */
unsigned gpu_blocks(size_t n);

/* ---- convolutions (cudnn_conv.c): cuDNN, algorithms chosen once per shape ---- */
size_t gpu_conv_workspace(void *ctx, const ConvDesc *d);
void gpu_conv_fwd(void *ctx, const ConvDesc *d, const float *x, const float *w, float *y, float *ws);
void gpu_conv_bwd_data(void *ctx, const ConvDesc *d, const float *dy, const float *w, float *dx, float *ws);
void gpu_conv_bwd_filter(void *ctx, const ConvDesc *d, const float *x, const float *dy, float *dw, float *ws);
/* Destroys the plans' descriptors (gpu.c, when the context goes). */
void gpu_conv_release(GpuCtx *c);

/* ---- batch norm (cudnn_bn.c) and pooling (cudnn_pool.c): cuDNN ---- */
void gpu_bn_fwd_train(void *ctx, const BnDesc *d, const float *x, const float *gamma, const float *beta,
                      float *y, float *save_mean, float *save_invstd, float *run_mean, float *run_var);
void gpu_bn_fwd_eval(void *ctx, const BnDesc *d, const float *x, const float *gamma, const float *beta,
                     const float *run_mean, const float *run_var, float *y);
void gpu_bn_bwd(void *ctx, const BnDesc *d, const float *x, const float *dy, const float *gamma,
                const float *save_mean, const float *save_invstd, float *dx, float *dgamma, float *dbeta);
void gpu_pool_fwd(void *ctx, const PoolDesc *d, const float *x, float *y);
void gpu_pool_bwd(void *ctx, const PoolDesc *d, const float *x, const float *y, const float *dy, float *dx);

/* ---- linear (cublas_linear.c): cuBLAS sgemm, bias kernels in eltwise.cu ---- */
void gpu_linear_fwd(void *ctx, int n, int in, int out, const float *x, const float *w, const float *b,
                    float *y);
void gpu_linear_bwd(void *ctx, int n, int in, int out, const float *x, const float *w, const float *dy,
                    float *dx, float *dw, float *db);
/* y (N, out) = b (out) in every row. */
void gpu_bias_fill(GpuCtx *c, int n, int out, const float *b, float *y);
/* db (out) += the column sums of dy (N, out). */
void gpu_bias_grad(GpuCtx *c, int n, int out, const float *dy, float *db);

/* ---- elementwise (eltwise.cu); forward ops may run in place ---- */
void gpu_relu_fwd(void *ctx, size_t n, const float *x, float *y);
void gpu_relu_bwd(void *ctx, size_t n, const float *y, const float *dy, float *dx);
void gpu_add(void *ctx, size_t n, const float *a, const float *b, float *y);
void gpu_acc(void *ctx, size_t n, const float *x, float *y);
void gpu_scale(void *ctx, size_t n, float s, const float *x, float *y);
void gpu_fill(void *ctx, size_t n, float v, float *y);
void gpu_mask_scale(void *ctx, int n, size_t per, const uint8_t *mask, float keep, const float *x, float *y);

/* ---- SGD and the sum of squares (sgd.cu) ---- */
void gpu_sgd(void *ctx, size_t n, float *p, const float *g, float *v, const uint8_t *decay, float lr,
             float momentum, float wd, int nesterov);
/* Two fixed-shape passes in double, then one download: deterministic. */
double gpu_sumsq(void *ctx, size_t n, const float *x);

/* ---- shape ops (shape.cu) ---- */
void gpu_concat_fwd(void *ctx, int n, int hw, int k, const int *c, const float *const *x, float *y);
void gpu_concat_bwd(void *ctx, int n, int hw, int k, const int *c, const float *dy, float *const *dx);
void gpu_crop_fwd(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow, const float *x,
                  float *y);
void gpu_crop_bwd(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow, const float *dy,
                  float *dx);
void gpu_gap_fwd(void *ctx, int n, int c, int hw, const float *x, float *y);
void gpu_gap_bwd(void *ctx, int n, int c, int hw, const float *dy, float *dx);

/* ---- cross-entropy (xent.cu): one block, rows summed in double in a
 * fixed order, the results written to device memory ---- */
void gpu_xent(void *ctx, int n, int k, const float *logits, const int32_t *labels, float smoothing,
              float *dlogits, float *loss, int *correct);

#ifdef __cplusplus
}
#endif

#endif
