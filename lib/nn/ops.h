/* The engine's operators: shapes, descriptors and the backend table every
 * backend fills (the CPU backend always, the CUDA backend when built).
 *
 * Conventions, the same for every backend:
 * - Activations are float32 NCHW on both backends today; a backend may
 *   keep its own layout and precision behind the table (a bf16 NHWC mode
 *   for the CUDA backend), so callers never index tensors themselves.
 * - Backward functions ACCUMULATE into their gradient outputs (dx += ...,
 *   dw += ...): a tensor that feeds several ops gets the sum of their
 *   gradients. Callers zero gradients before a backward pass.
 * - Forward functions overwrite their outputs.
 * - Descriptors are made by the *_desc_init functions, which check the
 *   shapes and compute output sizes; ops trust a descriptor.
 * - No op allocates: scratch comes from the caller (*_workspace sizes).
 * - Every data pointer an op takes is backend memory (from alloc): tensors,
 *   parameters, labels, masks, and xent's loss and correct too; host data
 *   goes through upload and download. Descriptors and the arrays of
 *   pointers and sizes that concat takes are host memory.
 * - Ops may run asynchronously (the CUDA backend queues them on one
 *   stream): only download, sumsq and sync wait for the queued work, and
 *   ops report no errors; sync returns the first one. */
#ifndef XFER_NN_OPS_H
#define XFER_NN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct ConvDesc {
    int n, cin, h, w;         /* input (N, Cin, H, W) */
    int cout, kh, kw;         /* weight (Cout, Cin / groups, KH, KW), no bias */
    int stride, pad, dil, groups;
    int oh, ow;               /* output (N, Cout, OH, OW) */
} ConvDesc;

/* Square kernels, equal stride/padding/dilation on both axes. */
int conv_desc_init(ConvDesc *d, int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                   int dil, int groups, XErr *e);
/* Floats of scratch the CPU backend's conv_fwd / conv_bwd_* need (its
 * table's conv_workspace); 0 means none (ws may be NULL). */
size_t conv_workspace(const ConvDesc *d);

typedef struct BnDesc {
    int n, c, hw;             /* (N, C, H*W) */
    float eps, momentum;      /* running = (1 - momentum) * running + momentum * batch */
} BnDesc;

typedef enum { POOL_AVG, POOL_MAX } PoolType;

typedef struct PoolDesc {
    PoolType type;
    int n, c, h, w, k, stride, pad;
    int oh, ow;
    /* average pools divide by the number of in-bounds inputs
     * (count_include_pad = False), as NAS-Bench-201 and DARTS do */
} PoolDesc;

int pool_desc_init(PoolDesc *d, PoolType type, int n, int c, int h, int w, int k, int stride,
                   int pad, XErr *e);

/* The backend table: a context pointer plus the operations. Sizes are in
 * elements (floats) unless they say bytes. */
typedef struct NnBackend {
    const char *name;
    void *ctx;
    void *(*alloc)(void *ctx, size_t bytes);          /* zeroed; NULL on failure */
    void (*free)(void *ctx, void *p);
    /* Host to backend memory; src may be reused as soon as it returns. */
    void (*upload)(void *ctx, void *dst, const void *src, size_t bytes);
    /* Backend to host memory, after the queued work that writes src. */
    void (*download)(void *ctx, void *dst, const void *src, size_t bytes);
    /* Waits for the queued work; returns XE_OK, or the first error of any
     * call since the backend was made (it sticks) with its message in e. */
    int (*sync)(void *ctx, XErr *e);

    /* Floats of scratch (ws) the three convolutions need for d. Call it
     * once per shape before the ops: a backend may choose and cache its
     * algorithms for d here (the CUDA backend times cuDNN's). */
    size_t (*conv_workspace)(void *ctx, const ConvDesc *d);

    /* y (N, Cout, OH, OW) = conv(x (N, Cin, H, W), w) */
    void (*conv_fwd)(void *ctx, const ConvDesc *d, const float *x, const float *w, float *y, float *ws);
    void (*conv_bwd_data)(void *ctx, const ConvDesc *d, const float *dy, const float *w, float *dx,
                          float *ws);
    void (*conv_bwd_filter)(void *ctx, const ConvDesc *d, const float *x, const float *dy, float *dw,
                            float *ws);

    /* Batch norm over (N, H*W) per channel; training mode saves the batch
     * mean and 1/sqrt(var + eps) (biased variance) for backward and updates
     * the running statistics with the unbiased variance. */
    void (*bn_fwd_train)(void *ctx, const BnDesc *d, const float *x, const float *gamma,
                         const float *beta, float *y, float *save_mean, float *save_invstd,
                         float *run_mean, float *run_var);
    void (*bn_fwd_eval)(void *ctx, const BnDesc *d, const float *x, const float *gamma, const float *beta,
                        const float *run_mean, const float *run_var, float *y);
    void (*bn_bwd)(void *ctx, const BnDesc *d, const float *x, const float *dy, const float *gamma,
                   const float *save_mean, const float *save_invstd, float *dx, float *dgamma,
                   float *dbeta);

    /* Elementwise over n values. relu_bwd uses the forward output y. */
    void (*relu_fwd)(void *ctx, size_t n, const float *x, float *y);
    void (*relu_bwd)(void *ctx, size_t n, const float *y, const float *dy, float *dx);
    void (*add)(void *ctx, size_t n, const float *a, const float *b, float *y);  /* y = a + b */
    void (*acc)(void *ctx, size_t n, const float *x, float *y);                  /* y += x */
    void (*scale)(void *ctx, size_t n, float s, const float *x, float *y);       /* y = s * x */
    void (*fill)(void *ctx, size_t n, float v, float *y);

    void (*pool_fwd)(void *ctx, const PoolDesc *d, const float *x, float *y);
    void (*pool_bwd)(void *ctx, const PoolDesc *d, const float *x, const float *y, const float *dy,
                     float *dx);

    /* Channel concat of k inputs (N, C_i, H, W) into (N, sum C_i, H, W), and
     * its backward (splits dy, accumulating into each dx_i). */
    void (*concat_fwd)(void *ctx, int n, int hw, int k, const int *c, const float *const *x, float *y);
    void (*concat_bwd)(void *ctx, int n, int hw, int k, const int *c, const float *dy, float *const *dx);

    /* Spatial crop: y (N, C, OH, OW) = x[:, :, oy:oy+OH, ox:ox+OW] (the
     * shifted branch of DARTS's FactorizedReduce); backward accumulates. */
    void (*crop_fwd)(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow, const float *x,
                     float *y);
    void (*crop_bwd)(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow, const float *dy,
                     float *dx);

    /* Global average pool (N, C, HW) -> (N, C). */
    void (*gap_fwd)(void *ctx, int n, int c, int hw, const float *x, float *y);
    void (*gap_bwd)(void *ctx, int n, int c, int hw, const float *dy, float *dx);

    /* y (N, out) = x (N, in) w^T (out, in) + b (out). */
    void (*linear_fwd)(void *ctx, int n, int in, int out, const float *x, const float *w, const float *b,
                       float *y);
    void (*linear_bwd)(void *ctx, int n, int in, int out, const float *x, const float *w, const float *dy,
                       float *dx, float *dw, float *db);

    /* Mean softmax cross-entropy of logits (N, K) against labels, with label
     * smoothing s (target 1 - s + s/K on the label, s/K elsewhere); writes
     * dlogits (overwrite, already divided by N), the loss, and the number
     * of correct top-1 predictions. A label outside [0, K) adds no loss,
     * gets a zero gradient row and is never correct; the mean stays over N.
     * labels, loss and correct are backend memory like the rest: a step
     * reads its loss with one download, not a wait inside the step. */
    void (*xent)(void *ctx, int n, int k, const float *logits, const int32_t *labels, float smoothing,
                 float *dlogits, float *loss, int *correct);

    /* Multiplies each sample's (N, per) slice by mask[i] / keep (mask 0 or
     * 1): dropout (per = 1 value) and drop-path (per = a sample). Backward is
     * the same call on dy; unlike the other backwards it overwrites, so use
     * a scratch buffer and acc when dx has other contributions. */
    void (*mask_scale)(void *ctx, int n, size_t per, const uint8_t *mask, float keep, const float *x,
                       float *y);

    /* SGD over one contiguous parameter block, as PyTorch's: with
     * g' = g + wd * p where decay[i] (else g), v = momentum * v + g';
     * p -= lr * (nesterov ? g' + momentum * v : v). g is not modified. */
    void (*sgd)(void *ctx, size_t n, float *p, const float *g, float *v, const uint8_t *decay, float lr,
                float momentum, float wd, int nesterov);
    /* Sum of squares of n values (gradient clipping), returned to the host:
     * it waits for the queued work. */
    double (*sumsq)(void *ctx, size_t n, const float *x);

    /* Step graphs, optional (NULL in the CPU backend). Between graph_begin
     * and graph_end the ops are recorded instead of run, into a graph that
     * graph_run replays with the same pointers and scalars (a CUDA graph: a
     * training step in one launch). Nothing may wait in between (download,
     * sumsq, sync) or allocate. When the ops could not be recorded,
     * graph_end fails with the reason and leaves the backend as before
     * graph_begin: the caller runs them as usual instead. */
    int (*graph_begin)(void *ctx, XErr *e);
    int (*graph_end)(void *ctx, void **graph, XErr *e);
    void (*graph_run)(void *ctx, void *graph);
    void (*graph_free)(void *ctx, void *graph);
} NnBackend;

/* The CPU backend (OpenBLAS). threads > 0: convolutions split each batch's
 * images over that many threads (OpenMP; OpenBLAS then runs single-threaded
 * inside them). The first call with threads > 0 fixes the count for the
 * process; results are deterministic for a given count. */
const NnBackend *nn_cpu_backend(int threads);

/* The CUDA backend (cuDNN, cuBLAS and its own kernels; float32 NCHW): a
 * new context on GPU `device` (0 for the first) with its own stream and
 * handles, so contexts on one GPU run side by side. Use a context from one
 * thread at a time. nn_cuda_available returns XE_OK when the build has the
 * backend and a GPU is visible. In a build without the backend both fail
 * with "this build has no CUDA backend"; without a usable GPU the message
 * names the CUDA error. nn_device_open (nn/device.h) chooses a backend by
 * name. */
enum {
    NN_CUDA_TF32 = 1,   /* convolutions and sgemm on TF32 tensor cores (PyTorch's default for convs) */
};
int nn_cuda_available(XErr *e);
int nn_cuda_backend_new(int device, int flags, const NnBackend **be, XErr *e);
/* Frees a context of nn_cuda_backend_new (after the memory it allocated). */
void nn_cuda_backend_free(const NnBackend *be);

#endif
