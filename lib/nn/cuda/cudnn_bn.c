/* Batch norm through cuDNN (spatial mode: statistics per channel over
 * N * H * W). cuDNN saves the batch mean and 1 / sqrt(var + eps) of the
 * biased variance, updates the running variance with the unbiased one and
 * blends with running = (1 - factor) * running + factor * batch, which is
 * the engine's contract with factor = momentum. The backward accumulates
 * through cuDNN's blend factors (beta = 1). */
#include "nn/cuda/gpu.h"

static const float one = 1.0f, zero = 0.0f;

/* x as (N, C, HW, 1) in c->ta and the per-channel (1, C, 1, 1) in c->tb. */
static int bn_descs(GpuCtx *c, const BnDesc *d)
{
    return gpu_dnn(c, cudnnSetTensor4dDescriptor(c->ta, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c, d->hw, 1),
                   "cudnnSetTensor4dDescriptor") ||
           gpu_dnn(c, cudnnSetTensor4dDescriptor(c->tb, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, d->c, 1, 1),
                   "cudnnSetTensor4dDescriptor");
}

void gpu_bn_fwd_train(void *ctx, const BnDesc *d,
                      const float *x,      // (N, C, HW)
                      const float *gamma,  // (C)
                      const float *beta,   // (C)
                      float *y,            // (N, C, HW)
                      float *save_mean,    // (C)
                      float *save_invstd,  // (C)
                      float *run_mean,     // (C)
                      float *run_var)      // (C)
{
    GpuCtx *c = ctx;
    if (bn_descs(c, d))
        return;
    gpu_dnn(c,
            cudnnBatchNormalizationForwardTraining(c->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, c->ta, x, c->ta, y,
                                                   c->tb, gamma, beta, (double)d->momentum, run_mean, run_var,
                                                   (double)d->eps, save_mean, save_invstd),
            "cudnnBatchNormalizationForwardTraining");
}

void gpu_bn_fwd_eval(void *ctx, const BnDesc *d,
                     const float *x,         // (N, C, HW)
                     const float *gamma,     // (C)
                     const float *beta,      // (C)
                     const float *run_mean,  // (C)
                     const float *run_var,   // (C)
                     float *y)               // (N, C, HW)
{
    GpuCtx *c = ctx;
    if (bn_descs(c, d))
        return;
    gpu_dnn(c,
            cudnnBatchNormalizationForwardInference(c->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, c->ta, x, c->ta, y,
                                                    c->tb, gamma, beta, run_mean, run_var, (double)d->eps),
            "cudnnBatchNormalizationForwardInference");
}

void gpu_bn_bwd(void *ctx, const BnDesc *d,
                const float *x,            // (N, C, HW)
                const float *dy,           // (N, C, HW)
                const float *gamma,        // (C)
                const float *save_mean,    // (C)
                const float *save_invstd,  // (C)
                float *dx,                 // (N, C, HW), accumulated
                float *dgamma,             // (C), accumulated
                float *dbeta)              // (C), accumulated
{
    GpuCtx *c = ctx;
    if (bn_descs(c, d))
        return;
    gpu_dnn(c,
            cudnnBatchNormalizationBackward(c->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &one, &one, &one, c->ta, x, c->ta,
                                            dy, c->ta, dx, c->tb, gamma, dgamma, dbeta, (double)d->eps, save_mean,
                                            save_invstd),
            "cudnnBatchNormalizationBackward");
}
