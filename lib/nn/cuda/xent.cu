/* Softmax cross-entropy with label smoothing on the GPU, the CPU's
 * formulas (cpu/xent.c): a stable log-sum-exp per row in double, the loss
 * summed in double and top-1 accuracy. One block: each thread takes rows
 * tid, tid + 256, ..., and a fixed tree adds them, so the result never
 * depends on timing. The loss and count stay in device memory. */
#include "nn/cuda/gpu.h"
#include "nn/cuda/reduce.cuh"

namespace {

__global__ void k_xent(int n, int k, const float *logits, const int32_t *labels, float smoothing, float *dlogits,
                       float *loss, int *correct)
{
    __shared__ double s[GPU_THREADS];
    double total = 0, right = 0;
    double off = (double)smoothing / k, on = 1.0 - smoothing + off;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float *z = logits + (size_t)i * (size_t)k;
        float *g = dlogits + (size_t)i * (size_t)k;
        int32_t label = labels[i];
        float zmax = z[0];
        int arg = 0;
        double sum = 0, sum_z = 0, lse;
        if (label < 0 || label >= k) {
            for (int j = 0; j < k; j++)
                g[j] = 0;
            continue;
        }
        for (int j = 1; j < k; j++)
            if (z[j] > zmax) {
                zmax = z[j];
                arg = j;
            }
        right += arg == label;
        for (int j = 0; j < k; j++) {
            sum += exp((double)z[j] - zmax);
            sum_z += z[j];
        }
        lse = zmax + log(sum);
        total += off * ((double)k * lse - sum_z) + (1.0 - smoothing) * (lse - z[label]);
        for (int j = 0; j < k; j++)
            g[j] = (float)((exp((double)z[j] - lse) - (j == label ? on : off)) / n);
    }
    total = block_sum(total, s);
    __syncthreads();
    right = block_sum(right, s);
    if (threadIdx.x == 0) {
        *loss = (float)(total / n);
        *correct = (int)right;
    }
}

} // namespace

extern "C" void gpu_xent(void *ctx, int n, int k,
                         const float *logits,    // (N, K)
                         const int32_t *labels,  // (N)
                         float smoothing,
                         float *dlogits,         // (N, K), overwritten
                         float *loss,            // (1)
                         int *correct)           // (1)
{
    GpuCtx *c = (GpuCtx *)ctx;
    k_xent<<<1, GPU_THREADS, 0, c->stream>>>(n, k, logits, labels, smoothing, dlogits, loss, correct);
    gpu_launched(c, "xent");
}
