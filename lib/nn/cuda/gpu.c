/* The CUDA backend's table and context: device memory, copies on the
 * context's stream, the sticky first error, and the operators from this
 * folder. Everything a context does is queued on its one stream; only
 * download, sumsq and sync wait for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cuda/gpu.h"

int gpu_check(GpuCtx *c, cudaError_t r, const char *what)
{
    if (r == cudaSuccess)
        return 0;
    xerr_set(&c->err, XE_FAIL, "cuda: %s: %s (%s)", what, cudaGetErrorString(r), cudaGetErrorName(r));
    return 1;
}

int gpu_dnn(GpuCtx *c, cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return 0;
    xerr_set(&c->err, XE_FAIL, "cudnn: %s: %s", what, cudnnGetErrorString(s));
    return 1;
}

int gpu_blas(GpuCtx *c, cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 0;
    xerr_set(&c->err, XE_FAIL, "cublas: %s: %s", what, cublasGetStatusString(s));
    return 1;
}

void gpu_launched(GpuCtx *c, const char *what)
{
    gpu_check(c, cudaGetLastError(), what);
}

unsigned gpu_blocks(size_t n)
{
    size_t b = (n + GPU_THREADS - 1) / GPU_THREADS;
    return b < 1 ? 1 : b > GPU_MAX_BLOCKS ? GPU_MAX_BLOCKS : (unsigned)b;
}

static void *gpu_alloc(void *ctx, size_t bytes)
{
    GpuCtx *c = ctx;
    void *p = NULL;
    /* never 0 bytes: a block of nothing still gets an address of its own */
    if (cudaMalloc(&p, bytes ? bytes : 256) != cudaSuccess) {
        cudaGetLastError(); /* out of memory is the caller's to report, not a sticky error */
        return NULL;
    }
    if (gpu_check(c, cudaMemsetAsync(p, 0, bytes, c->stream), "cudaMemsetAsync")) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void gpu_free(void *ctx, void *p)
{
    if (p)
        gpu_check(ctx, cudaFree(p), "cudaFree");
}

/* From pageable memory cudaMemcpyAsync stages src before it returns, so
 * the caller may reuse it at once (the upload contract). */
static void gpu_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
    GpuCtx *c = ctx;
    if (bytes)
        gpu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream), "upload");
}

static void gpu_download(void *ctx, void *dst, const void *src, size_t bytes)
{
    GpuCtx *c = ctx;
    if (!bytes)
        return;
    if (gpu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "download") ||
        gpu_check(c, cudaStreamSynchronize(c->stream), "download"))
        memset(dst, 0, bytes); /* defined contents; sync reports the error */
}

static int gpu_sync(void *ctx, XErr *e)
{
    GpuCtx *c = ctx;
    gpu_check(c, cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    gpu_check(c, cudaGetLastError(), "a kernel");
    if (c->err.code)
        return xerr_set(e, c->err.code, "%s", c->err.msg);
    return XE_OK;
}

/* Recording runs in thread-local capture mode: a call of this thread that
 * is not allowed while recording fails the recording, not other threads'
 * contexts. Errors of the recorded ops belong to the recording; they are
 * dropped with it and the context's own error state is put back. */
static int gpu_graph_begin(void *ctx, XErr *e)
{
    GpuCtx *c = ctx;
    cudaError_t r;
    if (c->err.code)
        return xerr_set(e, c->err.code, "%s", c->err.msg);
    r = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (r != cudaSuccess) {
        cudaGetLastError();
        return xerr_set(e, XE_FAIL, "cuda graph: cudaStreamBeginCapture: %s", cudaGetErrorString(r));
    }
    return XE_OK;
}

static int gpu_graph_end(void *ctx, void **graph, XErr *e)
{
    GpuCtx *c = ctx;
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    cudaError_t r = cudaStreamEndCapture(c->stream, &g);
    *graph = NULL;
    if (r == cudaSuccess && !c->err.code)
        r = cudaGraphInstantiate(&x, g, 0);
    if (g)
        cudaGraphDestroy(g);
    if (r != cudaSuccess || c->err.code) {
        xerr_set(e, XE_FAIL, "cuda graph: %s", c->err.code ? c->err.msg : cudaGetErrorString(r));
        if (x)
            cudaGraphExecDestroy(x);
        xerr_clear(&c->err); /* gpu_graph_begin found it clear */
        cudaGetLastError();
        return XE_FAIL;
    }
    *graph = x;
    return XE_OK;
}

static void gpu_graph_run(void *ctx, void *graph)
{
    GpuCtx *c = ctx;
    gpu_check(c, cudaGraphLaunch((cudaGraphExec_t)graph, c->stream), "cudaGraphLaunch");
}

static void gpu_graph_free(void *ctx, void *graph)
{
    if (graph)
        gpu_check(ctx, cudaGraphExecDestroy((cudaGraphExec_t)graph), "cudaGraphExecDestroy");
}

static const NnBackend gpu_table = {
    .name = "cuda",
    .alloc = gpu_alloc,
    .free = gpu_free,
    .upload = gpu_upload,
    .download = gpu_download,
    .sync = gpu_sync,
    .conv_workspace = gpu_conv_workspace,
    .conv_fwd = gpu_conv_fwd,
    .conv_bwd_data = gpu_conv_bwd_data,
    .conv_bwd_filter = gpu_conv_bwd_filter,
    .bn_fwd_train = gpu_bn_fwd_train,
    .bn_fwd_eval = gpu_bn_fwd_eval,
    .bn_bwd = gpu_bn_bwd,
    .relu_fwd = gpu_relu_fwd,
    .relu_bwd = gpu_relu_bwd,
    .add = gpu_add,
    .acc = gpu_acc,
    .scale = gpu_scale,
    .fill = gpu_fill,
    .pool_fwd = gpu_pool_fwd,
    .pool_bwd = gpu_pool_bwd,
    .concat_fwd = gpu_concat_fwd,
    .concat_bwd = gpu_concat_bwd,
    .crop_fwd = gpu_crop_fwd,
    .crop_bwd = gpu_crop_bwd,
    .gap_fwd = gpu_gap_fwd,
    .gap_bwd = gpu_gap_bwd,
    .linear_fwd = gpu_linear_fwd,
    .linear_bwd = gpu_linear_bwd,
    .xent = gpu_xent,
    .mask_scale = gpu_mask_scale,
    .sgd = gpu_sgd,
    .sumsq = gpu_sumsq,
    .graph_begin = gpu_graph_begin,
    .graph_end = gpu_graph_end,
    .graph_run = gpu_graph_run,
    .graph_free = gpu_graph_free,
};

int nn_cuda_available(XErr *e)
{
    int n = 0;
    cudaError_t r = cudaGetDeviceCount(&n);
    if (r != cudaSuccess) {
        cudaGetLastError();
        return xerr_set(e, XE_FAIL, "no usable GPU: cudaGetDeviceCount: %s (%s)", cudaGetErrorString(r),
                        cudaGetErrorName(r));
    }
    if (n < 1)
        return xerr_set(e, XE_FAIL, "no usable GPU: CUDA sees no device");
    return XE_OK;
}

static void ctx_free(GpuCtx *c)
{
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    gpu_conv_release(c);
    if (c->pool)
        cudnnDestroyPoolingDescriptor(c->pool);
    if (c->ta)
        cudnnDestroyTensorDescriptor(c->ta);
    if (c->tb)
        cudnnDestroyTensorDescriptor(c->tb);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->dnn)
        cudnnDestroy(c->dnn);
    cudaFree(c->blas_ws);
    cudaFree(c->ws);
    cudaFree(c->red);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    cudaGetLastError();
    free(c);
}

int nn_cuda_backend_new(int device, int flags, const NnBackend **be, XErr *e)
{
    GpuCtx *c;
    int n = 0;
    *be = NULL;
    if (nn_cuda_available(e))
        return e->code;
    if (cudaGetDeviceCount(&n) != cudaSuccess || device < 0 || device >= n)
        return xerr_set(e, XE_FAIL, "GPU %d does not exist (%d visible)", device, n);
    if (!(c = calloc(1, sizeof *c)))
        return xerr_set(e, XE_FAIL, "out of memory");
    c->table = gpu_table;
    c->table.ctx = c;
    c->device = device;
    c->tf32 = (flags & NN_CUDA_TF32) != 0;
    /* the steps below record their first failure in c->err */
    if (gpu_check(c, cudaSetDevice(device), "cudaSetDevice") ||
        gpu_check(c, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate") ||
        gpu_dnn(c, cudnnCreate(&c->dnn), "cudnnCreate") || gpu_dnn(c, cudnnSetStream(c->dnn, c->stream), "cudnnSetStream") ||
        gpu_blas(c, cublasCreate(&c->blas), "cublasCreate") ||
        gpu_blas(c, cublasSetStream(c->blas, c->stream), "cublasSetStream") ||
        gpu_check(c, cudaMalloc(&c->blas_ws, GPU_BLAS_WS), "cudaMalloc") ||
        gpu_blas(c, cublasSetWorkspace(c->blas, c->blas_ws, GPU_BLAS_WS), "cublasSetWorkspace") ||
        gpu_blas(c, cublasSetMathMode(c->blas, c->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                 "cublasSetMathMode") ||
        gpu_check(c, cudaMalloc((void **)&c->red, (GPU_SUMSQ_BLOCKS + 1) * sizeof *c->red), "cudaMalloc") ||
        gpu_dnn(c, cudnnCreateTensorDescriptor(&c->ta), "cudnnCreateTensorDescriptor") ||
        gpu_dnn(c, cudnnCreateTensorDescriptor(&c->tb), "cudnnCreateTensorDescriptor") ||
        gpu_dnn(c, cudnnCreatePoolingDescriptor(&c->pool), "cudnnCreatePoolingDescriptor")) {
        xerr_set(e, XE_FAIL, "GPU %d: %s", device, c->err.msg);
        ctx_free(c);
        return XE_FAIL;
    }
    *be = &c->table;
    return XE_OK;
}

void nn_cuda_backend_free(const NnBackend *be)
{
    if (be)
        ctx_free(be->ctx);
}
