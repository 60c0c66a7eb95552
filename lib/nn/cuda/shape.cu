/* Shape kernels: channel concat and its split, spatial crop, global
 * average pooling; backward passes accumulate as the contract says. A
 * concat of more inputs than one launch carries goes in groups. */
#include "nn/cuda/gpu.h"
#include "nn/cuda/reduce.cuh"

namespace {

enum { CAT_MAX = 8 };

/* A group of concat inputs: their pointers, channels and first channel in
 * the output. */
struct CatGroup {
    float *p[CAT_MAX];
    int c[CAT_MAX], off[CAT_MAX];
    int k, csum;
};

/* Over the group's elements (N, csum, HW): fwd copies into y (N, ctot,
 * HW), else adds y's slice into the inputs. */
template <bool fwd> __global__ void k_concat(int n, int hw, int ctot, CatGroup g, float *y)
{
    size_t total = (size_t)n * (size_t)g.csum * (size_t)hw, step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        size_t plane = i / (size_t)hw, j = i % (size_t)hw;
        int s = (int)(plane / (size_t)g.csum), ch = (int)(plane % (size_t)g.csum), q = 0;
        while (ch >= g.c[q]) {
            ch -= g.c[q];
            q++;
        }
        float *in = g.p[q] + ((size_t)s * (size_t)g.c[q] + (size_t)ch) * (size_t)hw + j;
        float *out = y + ((size_t)s * (size_t)ctot + (size_t)(g.off[q] + ch)) * (size_t)hw + j;
        if (fwd)
            *out = *in;
        else
            *in += *out;
    }
}

template <bool fwd> void concat(GpuCtx *c, int n, int hw, int k, const int *ch, float *const *x, float *y)
{
    int ctot = 0, first = 0;
    for (int i = 0; i < k; i++)
        ctot += ch[i];
    for (int i0 = 0; i0 < k; i0 += CAT_MAX) {
        CatGroup g = {};
        g.k = k - i0 < CAT_MAX ? k - i0 : CAT_MAX;
        for (int q = 0; q < g.k; q++) {
            g.p[q] = x[i0 + q];
            g.c[q] = ch[i0 + q];
            g.off[q] = first + g.csum;
            g.csum += ch[i0 + q];
        }
        first += g.csum;
        size_t total = (size_t)n * (size_t)g.csum * (size_t)hw;
        if (total)
            k_concat<fwd><<<gpu_blocks(total), GPU_THREADS, 0, c->stream>>>(n, hw, ctot, g, y);
        gpu_launched(c, fwd ? "concat_fwd" : "concat_bwd");
    }
}

template <bool fwd>
__global__ void k_crop(int n, int c, int h, int w, int oy, int ox, int oh, int ow, const float *src, float *dst)
{
    size_t total = (size_t)n * (size_t)c * (size_t)oh * (size_t)ow, step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        size_t plane = i / ((size_t)oh * (size_t)ow), r = i % ((size_t)oh * (size_t)ow);
        size_t big = plane * (size_t)h * (size_t)w + (size_t)(oy + (int)(r / (size_t)ow)) * (size_t)w +
                     (size_t)(ox + (int)(r % (size_t)ow));
        if (fwd)
            dst[i] = src[big]; /* src (N, C, H, W), dst (N, C, OH, OW) */
        else
            dst[big] += src[i]; /* src dy (N, C, OH, OW), dst dx (N, C, H, W) */
    }
}

/* One warp per plane: its mean, summed in double. */
__global__ void k_gap_fwd(size_t planes, int hw, const float *x, float *y)
{
    size_t p = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    double acc = 0;
    if (p >= planes)
        return;
    for (int j = lane; j < hw; j += 32)
        acc += (double)x[p * (size_t)hw + (size_t)j];
    acc = warp_sum(acc);
    if (lane == 0)
        y[p] = (float)(acc / hw);
}

__global__ void k_gap_bwd(size_t planes, int hw, const float *dy, float *dx)
{
    size_t total = planes * (size_t)hw, step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        dx[i] += dy[i / (size_t)hw] / (float)hw;
}

} // namespace

extern "C" {

void gpu_concat_fwd(void *ctx, int n, int hw, int k,
                    const int *c,           // (k) channels of each input
                    const float *const *x,  // k tensors (N, c[i], HW)
                    float *y)               // (N, sum c, HW)
{
    concat<true>((GpuCtx *)ctx, n, hw, k, c, (float *const *)x, y);
}

void gpu_concat_bwd(void *ctx, int n, int hw, int k,
                    const int *c,       // (k)
                    const float *dy,    // (N, sum c, HW)
                    float *const *dx)   // k tensors (N, c[i], HW), accumulated
{
    concat<false>((GpuCtx *)ctx, n, hw, k, c, dx, (float *)dy);
}

void gpu_crop_fwd(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow,
                  const float *x,  // (N, C, H, W)
                  float *y)        // (N, C, OH, OW)
{
    GpuCtx *g = (GpuCtx *)ctx;
    size_t total = (size_t)n * (size_t)c * (size_t)oh * (size_t)ow;
    if (!total)
        return;
    k_crop<true><<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(n, c, h, w, oy, ox, oh, ow, x, y);
    gpu_launched(g, "crop_fwd");
}

void gpu_crop_bwd(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow,
                  const float *dy,  // (N, C, OH, OW)
                  float *dx)        // (N, C, H, W), accumulated
{
    GpuCtx *g = (GpuCtx *)ctx;
    size_t total = (size_t)n * (size_t)c * (size_t)oh * (size_t)ow;
    if (!total)
        return;
    k_crop<false><<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(n, c, h, w, oy, ox, oh, ow, dy, dx);
    gpu_launched(g, "crop_bwd");
}

void gpu_gap_fwd(void *ctx, int n, int c, int hw,
                 const float *x,  // (N, C, HW)
                 float *y)        // (N, C)
{
    GpuCtx *g = (GpuCtx *)ctx;
    size_t planes = (size_t)n * (size_t)c;
    if (!planes)
        return;
    k_gap_fwd<<<(unsigned)((planes * 32 + GPU_THREADS - 1) / GPU_THREADS), GPU_THREADS, 0, g->stream>>>(planes, hw,
                                                                                                        x, y);
    gpu_launched(g, "gap_fwd");
}

void gpu_gap_bwd(void *ctx, int n, int c, int hw,
                 const float *dy,  // (N, C)
                 float *dx)        // (N, C, HW), accumulated
{
    GpuCtx *g = (GpuCtx *)ctx;
    size_t planes = (size_t)n * (size_t)c;
    if (!planes)
        return;
    k_gap_bwd<<<gpu_blocks(planes * (size_t)hw), GPU_THREADS, 0, g->stream>>>(planes, hw, dy, dx);
    gpu_launched(g, "gap_bwd");
}

} // extern "C"
