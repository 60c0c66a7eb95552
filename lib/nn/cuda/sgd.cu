/* The SGD update over the contiguous parameter block (PyTorch's, as the
 * CPU's cpu_sgd), and the sum of squares for gradient clipping: a first
 * pass of GPU_SUMSQ_BLOCKS fixed blocks into partial sums, a second that
 * adds them in a fixed order, both in double, then one download. */
#include "nn/cuda/gpu.h"
#include "nn/cuda/reduce.cuh"

namespace {

__global__ void k_sgd(size_t n, float *p, const float *g, float *v, const uint8_t *decay, float lr, float momentum,
                      float wd, int nesterov)
{
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        float gi = decay[i] ? g[i] + wd * p[i] : g[i];
        float vi = momentum * v[i] + gi;
        v[i] = vi;
        p[i] -= lr * (nesterov ? gi + momentum * vi : vi);
    }
}

__global__ void k_sumsq_part(size_t n, const float *x, double *part)
{
    __shared__ double s[GPU_THREADS];
    size_t step = (size_t)gridDim.x * blockDim.x;
    double acc = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        acc += (double)x[i] * (double)x[i];
    acc = block_sum(acc, s);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

__global__ void k_sumsq_total(const double *part, double *total)
{
    __shared__ double s[GPU_SUMSQ_BLOCKS];
    double acc = block_sum(part[threadIdx.x], s);
    if (threadIdx.x == 0)
        *total = acc;
}

} // namespace

extern "C" {

void gpu_sgd(void *ctx, size_t n,
             float *p,              // (n)
             const float *g,        // (n)
             float *v,              // (n) momentum buffer
             const uint8_t *decay,  // (n) 1: apply weight decay
             float lr, float momentum, float wd, int nesterov)
{
    GpuCtx *c = (GpuCtx *)ctx;
    if (!n)
        return;
    k_sgd<<<gpu_blocks(n), GPU_THREADS, 0, c->stream>>>(n, p, g, v, decay, lr, momentum, wd, nesterov);
    gpu_launched(c, "sgd");
}

double gpu_sumsq(void *ctx, size_t n,
                 const float *x)  // (n)
{
    GpuCtx *c = (GpuCtx *)ctx;
    double total = 0;
    k_sumsq_part<<<GPU_SUMSQ_BLOCKS, GPU_THREADS, 0, c->stream>>>(n, x, c->red);
    gpu_launched(c, "sumsq");
    k_sumsq_total<<<1, GPU_SUMSQ_BLOCKS, 0, c->stream>>>(c->red, c->red + GPU_SUMSQ_BLOCKS);
    gpu_launched(c, "sumsq");
    if (gpu_check(c, cudaMemcpyAsync(&total, c->red + GPU_SUMSQ_BLOCKS, sizeof total, cudaMemcpyDeviceToHost,
                                     c->stream), "sumsq") ||
        gpu_check(c, cudaStreamSynchronize(c->stream), "sumsq"))
        return 0;
    return total;
}

} // extern "C"
