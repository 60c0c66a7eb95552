/* Elementwise CUDA kernels: ReLU, add/accumulate/scale/fill, the dropout
 * and drop-path mask, and the linear layer's bias. One templated
 * grid-stride kernel serves the maps, four floats per thread and load when
 * every pointer is 16-byte aligned and n a multiple of 4, else one. The
 * arithmetic is the CPU ops' (cpu/eltwise.c), so results agree. */
#include "nn/cuda/gpu.h"

namespace {

/* y[i] = op(a[i], b[i], y[i]); a, b may be null (read as 0), y is read
 * only when Op::reads_y. Forward maps may run in place (y == a). */
template <class Op> __global__ void k_map(size_t n, const float *a, const float *b, float *y, Op op)
{
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        y[i] = op(a ? a[i] : 0.0f, b ? b[i] : 0.0f, Op::reads_y ? y[i] : 0.0f);
}

template <class Op> __global__ void k_map4(size_t n4, const float4 *a, const float4 *b, float4 *y, Op op)
{
    const float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += step) {
        float4 va = a ? a[i] : z, vb = b ? b[i] : z, vy = Op::reads_y ? y[i] : z, r;
        r.x = op(va.x, vb.x, vy.x);
        r.y = op(va.y, vb.y, vy.y);
        r.z = op(va.z, vb.z, vy.z);
        r.w = op(va.w, vb.w, vy.w);
        y[i] = r;
    }
}

template <class Op> void map(GpuCtx *c, size_t n, const float *a, const float *b, float *y, Op op, const char *what)
{
    if (!n)
        return;
    if (n % 4 == 0 && (((uintptr_t)a | (uintptr_t)b | (uintptr_t)y) & 15) == 0)
        k_map4<<<gpu_blocks(n / 4), GPU_THREADS, 0, c->stream>>>(n / 4, (const float4 *)a, (const float4 *)b,
                                                                   (float4 *)y, op);
    else
        k_map<<<gpu_blocks(n), GPU_THREADS, 0, c->stream>>>(n, a, b, y, op);
    gpu_launched(c, what);
}

struct Relu {
    static constexpr bool reads_y = false;
    __device__ float operator()(float x, float, float) const { return x > 0 ? x : 0.0f; }
};
/* dx += dy where the forward output y is positive */
struct ReluBwd {
    static constexpr bool reads_y = true;
    __device__ float operator()(float y, float dy, float dx) const { return dx + (y > 0 ? dy : 0.0f); }
};
struct Add {
    static constexpr bool reads_y = false;
    __device__ float operator()(float a, float b, float) const { return a + b; }
};
struct Acc {
    static constexpr bool reads_y = true;
    __device__ float operator()(float x, float, float y) const { return y + x; }
};
struct Scale {
    static constexpr bool reads_y = false;
    float s;
    __device__ float operator()(float x, float, float) const { return s * x; }
};
struct Fill {
    static constexpr bool reads_y = false;
    float v;
    __device__ float operator()(float, float, float) const { return v; }
};

/* y = x * (mask[sample] ? 1 / keep : 0), the sample being i / per */
__global__ void k_mask_scale(size_t total, size_t per, const uint8_t *mask, float inv, const float *x, float *y)
{
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        y[i] = (mask[i / per] ? inv : 0.0f) * x[i];
}

__global__ void k_bias_fill(size_t total, int out, const float *b, float *y)
{
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        y[i] = b[i % (size_t)out];
}

/* One thread per output column, summed in double as the CPU does. */
__global__ void k_bias_grad(int n, int out, const float *dy, float *db)
{
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    double acc = 0;
    if (o >= out)
        return;
    for (int i = 0; i < n; i++)
        acc += (double)dy[(size_t)i * (size_t)out + (size_t)o];
    db[o] += (float)acc;
}

} // namespace

extern "C" {

void gpu_relu_fwd(void *ctx, size_t n, const float *x, float *y)
{
    map((GpuCtx *)ctx, n, x, nullptr, y, Relu{}, "relu_fwd");
}

void gpu_relu_bwd(void *ctx, size_t n, const float *y, const float *dy, float *dx)
{
    map((GpuCtx *)ctx, n, y, dy, dx, ReluBwd{}, "relu_bwd");
}

void gpu_add(void *ctx, size_t n, const float *a, const float *b, float *y)
{
    map((GpuCtx *)ctx, n, a, b, y, Add{}, "add");
}

void gpu_acc(void *ctx, size_t n, const float *x, float *y)
{
    map((GpuCtx *)ctx, n, x, nullptr, y, Acc{}, "acc");
}

void gpu_scale(void *ctx, size_t n, float s, const float *x, float *y)
{
    map((GpuCtx *)ctx, n, x, nullptr, y, Scale{s}, "scale");
}

void gpu_fill(void *ctx, size_t n, float v, float *y)
{
    map((GpuCtx *)ctx, n, nullptr, nullptr, y, Fill{v}, "fill");
}

void gpu_mask_scale(void *ctx, int n, size_t per,
                    const uint8_t *mask,  // (N)
                    float keep,
                    const float *x,       // (N, per)
                    float *y)             // (N, per)
{
    GpuCtx *c = (GpuCtx *)ctx;
    size_t total = (size_t)n * per;
    if (!total)
        return;
    k_mask_scale<<<gpu_blocks(total), GPU_THREADS, 0, c->stream>>>(total, per, mask, 1.0f / keep, x, y);
    gpu_launched(c, "mask_scale");
}

void gpu_bias_fill(GpuCtx *c, int n, int out, const float *b, float *y)
{
    size_t total = (size_t)n * (size_t)out;
    k_bias_fill<<<gpu_blocks(total), GPU_THREADS, 0, c->stream>>>(total, out, b, y);
    gpu_launched(c, "linear bias");
}

void gpu_bias_grad(GpuCtx *c, int n, int out, const float *dy, float *db)
{
    k_bias_grad<<<(unsigned)((out + 127) / 128), 128, 0, c->stream>>>(n, out, dy, db);
    gpu_launched(c, "linear bias gradient");
}

} // extern "C"
