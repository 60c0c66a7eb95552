/* Average and max pooling through cuDNN: average pools divide by the
 * in-bounds inputs (CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, PyTorch's
 * count_include_pad = False), max pools take cuDNN's deterministic mode and
 * skip NaN; the backward accumulates (beta = 1). */
#include "nn/cuda/gpu.h"

static const float one = 1.0f, zero = 0.0f;

/* x (N, C, H, W) in c->ta, y (N, C, OH, OW) in c->tb, the window in c->pool. */
static int pool_descs(GpuCtx *c, const PoolDesc *d)
{
    cudnnPoolingMode_t mode =
        d->type == POOL_MAX ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    return gpu_dnn(c, cudnnSetTensor4dDescriptor(c->ta, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c, d->h, d->w),
                   "cudnnSetTensor4dDescriptor") ||
           gpu_dnn(c,
                   cudnnSetTensor4dDescriptor(c->tb, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c, d->oh, d->ow),
                   "cudnnSetTensor4dDescriptor") ||
           gpu_dnn(c,
                   cudnnSetPooling2dDescriptor(c->pool, mode, CUDNN_NOT_PROPAGATE_NAN, d->k, d->k, d->pad, d->pad,
                                               d->stride, d->stride),
                   "cudnnSetPooling2dDescriptor");
}

void gpu_pool_fwd(void *ctx, const PoolDesc *d,
                  const float *x,  // (N, C, H, W)
                  float *y)        // (N, C, OH, OW)
{
    GpuCtx *c = ctx;
    if (pool_descs(c, d))
        return;
    gpu_dnn(c, cudnnPoolingForward(c->dnn, c->pool, &one, c->ta, x, &zero, c->tb, y), "cudnnPoolingForward");
}

void gpu_pool_bwd(void *ctx, const PoolDesc *d,
                  const float *x,   // (N, C, H, W)
                  const float *y,   // (N, C, OH, OW)
                  const float *dy,  // (N, C, OH, OW)
                  float *dx)        // (N, C, H, W), accumulated
{
    GpuCtx *c = ctx;
    if (pool_descs(c, d))
        return;
    gpu_dnn(c, cudnnPoolingBackward(c->dnn, c->pool, &one, c->tb, y, c->tb, dy, c->ta, x, &one, c->ta, dx),
            "cudnnPoolingBackward");
}
