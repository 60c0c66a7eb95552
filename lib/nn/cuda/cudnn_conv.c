/* Convolutions through cuDNN. Each shape gets a plan once: descriptors,
 * and per direction the fastest algorithm that cudnnFind* times on this
 * GPU (cuDNN's heuristics, cudnnGet*_v7, if timing fails), within
 * GPU_CONV_WS_LIMIT of workspace. conv_workspace makes the plan when the
 * network is built and returns its workspace, so a training step never
 * allocates or times anything (which a CUDA-graph capture also needs). In
 * fp32 mode only FMA kernels run (no TF32), as the CPU reference computes. */
#include <stdlib.h>
#include <string.h>

#include "nn/cuda/gpu.h"

static const float one = 1.0f, zero = 0.0f;

/* The math types a plan may use: FMA only, or TF32 tensor cores too. */
static int math_ok(const GpuCtx *c, cudnnMathType_t m)
{
    return c->tf32 || m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
}

/* pick_*: the index of the fastest result (they come sorted) that ran,
 * fits GPU_CONV_WS_LIMIT and uses an allowed math type; -1 if none. */
#define DEFINE_PICK(name, type)                                                                    \
    static int name(const GpuCtx *c, const type *perf, int n)                                      \
    {                                                                                              \
        for (int i = 0; i < n; i++)                                                                \
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= GPU_CONV_WS_LIMIT &&   \
                math_ok(c, perf[i].mathType))                                                      \
                return i;                                                                          \
        return -1;                                                                                 \
    }
DEFINE_PICK(pick_fwd, cudnnConvolutionFwdAlgoPerf_t)
DEFINE_PICK(pick_data, cudnnConvolutionBwdDataAlgoPerf_t)
DEFINE_PICK(pick_filter, cudnnConvolutionBwdFilterAlgoPerf_t)
#undef DEFINE_PICK

/* choose_*: times the algorithms of one direction (cuDNN's heuristics if
 * that fails) and keeps the pick in p; returns 0 if there is none. */
static int choose_fwd(GpuCtx *c, ConvPlan *p, size_t *ws)
{
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0, i = -1;
    if (cudnnFindConvolutionForwardAlgorithm(c->dnn, p->x, p->w, p->conv, p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                             &n, perf) == CUDNN_STATUS_SUCCESS)
        i = pick_fwd(c, perf, n);
    cudaGetLastError(); /* a failed timing run is not the context's error */
    if (i < 0 && !gpu_dnn(c,
                          cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, p->x, p->w, p->conv, p->y,
                                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
                          "cudnnGetConvolutionForwardAlgorithm_v7"))
        i = pick_fwd(c, perf, n);
    if (i < 0)
        return 0;
    p->fwd = perf[i].algo;
    p->fwd_math = c->tf32 ? perf[i].mathType : CUDNN_FMA_MATH;
    *ws = perf[i].memory;
    return 1;
}

static int choose_data(GpuCtx *c, ConvPlan *p, size_t *ws)
{
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0, i = -1;
    if (cudnnFindConvolutionBackwardDataAlgorithm(c->dnn, p->w, p->y, p->conv, p->x,
                                                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n,
                                                  perf) == CUDNN_STATUS_SUCCESS)
        i = pick_data(c, perf, n);
    cudaGetLastError();
    if (i < 0 && !gpu_dnn(c,
                          cudnnGetConvolutionBackwardDataAlgorithm_v7(c->dnn, p->w, p->y, p->conv, p->x,
                                                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n,
                                                                      perf),
                          "cudnnGetConvolutionBackwardDataAlgorithm_v7"))
        i = pick_data(c, perf, n);
    if (i < 0)
        return 0;
    p->data = perf[i].algo;
    p->data_math = c->tf32 ? perf[i].mathType : CUDNN_FMA_MATH;
    *ws = perf[i].memory;
    return 1;
}

static int choose_filter(GpuCtx *c, ConvPlan *p, size_t *ws)
{
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0, i = -1;
    if (cudnnFindConvolutionBackwardFilterAlgorithm(c->dnn, p->x, p->y, p->conv, p->w,
                                                    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n,
                                                    perf) == CUDNN_STATUS_SUCCESS)
        i = pick_filter(c, perf, n);
    cudaGetLastError();
    if (i < 0 && !gpu_dnn(c,
                          cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->dnn, p->x, p->y, p->conv, p->w,
                                                                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n,
                                                                        perf),
                          "cudnnGetConvolutionBackwardFilterAlgorithm_v7"))
        i = pick_filter(c, perf, n);
    if (i < 0)
        return 0;
    p->filter = perf[i].algo;
    p->filter_math = c->tf32 ? perf[i].mathType : CUDNN_FMA_MATH;
    *ws = perf[i].memory;
    return 1;
}

static void plan_destroy(ConvPlan *p)
{
    if (p->x)
        cudnnDestroyTensorDescriptor(p->x);
    if (p->y)
        cudnnDestroyTensorDescriptor(p->y);
    if (p->w)
        cudnnDestroyFilterDescriptor(p->w);
    if (p->conv)
        cudnnDestroyConvolutionDescriptor(p->conv);
}

void gpu_conv_release(GpuCtx *c)
{
    for (int i = 0; i < c->nplans; i++)
        plan_destroy(&c->plans[i]);
    free(c->plans);
    c->plans = NULL;
    c->nplans = c->cap_plans = 0;
}

/* Descriptors and algorithms for d; 0 on success. Timing runs the
 * convolutions on scratch memory cuDNN allocates itself, synchronously. */
static int plan_make(GpuCtx *c, const ConvDesc *d, ConvPlan *p)
{
    size_t wf = 0, wd = 0, wg = 0;
    int oh = 0, ow = 0, on = 0, oc = 0;
    memset(p, 0, sizeof *p);
    p->d = *d;
    if (gpu_dnn(c, cudnnCreateTensorDescriptor(&p->x), "cudnnCreateTensorDescriptor") ||
        gpu_dnn(c, cudnnCreateTensorDescriptor(&p->y), "cudnnCreateTensorDescriptor") ||
        gpu_dnn(c, cudnnCreateFilterDescriptor(&p->w), "cudnnCreateFilterDescriptor") ||
        gpu_dnn(c, cudnnCreateConvolutionDescriptor(&p->conv), "cudnnCreateConvolutionDescriptor") ||
        gpu_dnn(c, cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->cin, d->h, d->w),
                "cudnnSetTensor4dDescriptor") ||
        gpu_dnn(c,
                cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->cout, d->oh, d->ow),
                "cudnnSetTensor4dDescriptor") ||
        gpu_dnn(c,
                cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d->cout, d->cin / d->groups,
                                           d->kh, d->kw),
                "cudnnSetFilter4dDescriptor") ||
        gpu_dnn(c,
                cudnnSetConvolution2dDescriptor(p->conv, d->pad, d->pad, d->stride, d->stride, d->dil, d->dil,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor") ||
        gpu_dnn(c, cudnnSetConvolutionGroupCount(p->conv, d->groups), "cudnnSetConvolutionGroupCount") ||
        gpu_dnn(c, cudnnSetConvolutionMathType(p->conv, c->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
                "cudnnSetConvolutionMathType") ||
        gpu_dnn(c, cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow),
                "cudnnGetConvolution2dForwardOutputDim"))
        goto fail;
    if (on != d->n || oc != d->cout || oh != d->oh || ow != d->ow) {
        xerr_set(&c->err, XE_FAIL, "cudnn: a %dx%dx%d conv with kernel %d gives %dx%dx%d, the engine expects %dx%dx%d",
                 d->cin, d->h, d->w, d->kh, oc, oh, ow, d->cout, d->oh, d->ow);
        goto fail;
    }
    if (!choose_fwd(c, p, &wf) || !choose_data(c, p, &wd) || !choose_filter(c, p, &wg)) {
        xerr_set(&c->err, XE_FAIL, "cudnn: no algorithm for a %dx%dx%d conv with kernel %d, stride %d, groups %d",
                 d->cin, d->h, d->w, d->kh, d->stride, d->groups);
        goto fail;
    }
    p->ws_bytes = wf > wd ? wf : wd;
    if (wg > p->ws_bytes)
        p->ws_bytes = wg;
    return 0;
fail:
    plan_destroy(p);
    memset(p, 0, sizeof *p);
    return 1;
}

/* The plan of d, made on first sight; NULL (error recorded) on failure. */
static ConvPlan *plan_get(GpuCtx *c, const ConvDesc *d)
{
    ConvPlan p;
    for (int i = c->nplans - 1; i >= 0; i--)
        if (!memcmp(&c->plans[i].d, d, sizeof *d))
            return &c->plans[i];
    if (c->nplans == c->cap_plans) {
        int cap = c->cap_plans ? 2 * c->cap_plans : 32;
        ConvPlan *n = realloc(c->plans, (size_t)cap * sizeof *n);
        if (!n) {
            xerr_set(&c->err, XE_FAIL, "out of memory");
            return NULL;
        }
        c->plans = n;
        c->cap_plans = cap;
    }
    if (plan_make(c, d, &p))
        return NULL;
    c->plans[c->nplans] = p;
    return &c->plans[c->nplans++];
}

size_t gpu_conv_workspace(void *ctx, const ConvDesc *d)
{
    ConvPlan *p = plan_get(ctx, d);
    if (!p)
        return 0;
    p->sized = 1;
    return (p->ws_bytes + sizeof(float) - 1) / sizeof(float);
}

/* The workspace for p: the caller's when conv_workspace sized it, else the
 * context's own, grown as needed (cudaFree waits for work still using it). */
static void *workspace(GpuCtx *c, const ConvPlan *p, float *ws)
{
    if (!p->ws_bytes)
        return NULL;
    if (p->sized && ws)
        return ws;
    if (c->ws_bytes < p->ws_bytes) {
        cudaFree(c->ws);
        c->ws = NULL;
        c->ws_bytes = 0;
        if (gpu_check(c, cudaMalloc(&c->ws, p->ws_bytes), "cudaMalloc (conv workspace)"))
            return NULL;
        c->ws_bytes = p->ws_bytes;
    }
    return c->ws;
}

void gpu_conv_fwd(void *ctx, const ConvDesc *d,
                  const float *x,  // (N, Cin, H, W)
                  const float *w,  // (Cout, Cin/groups, K, K)
                  float *y,        // (N, Cout, OH, OW)
                  float *ws)
{
    GpuCtx *c = ctx;
    ConvPlan *p = plan_get(c, d);
    void *buf;
    if (!p || (!(buf = workspace(c, p, ws)) && p->ws_bytes))
        return;
    if (gpu_dnn(c, cudnnSetConvolutionMathType(p->conv, p->fwd_math), "cudnnSetConvolutionMathType"))
        return;
    gpu_dnn(c, cudnnConvolutionForward(c->dnn, &one, p->x, x, p->w, w, p->conv, p->fwd, buf, p->ws_bytes, &zero, p->y, y),
            "cudnnConvolutionForward");
}

void gpu_conv_bwd_data(void *ctx, const ConvDesc *d,
                       const float *dy,  // (N, Cout, OH, OW)
                       const float *w,   // (Cout, Cin/groups, K, K)
                       float *dx,        // (N, Cin, H, W), accumulated
                       float *ws)
{
    GpuCtx *c = ctx;
    ConvPlan *p = plan_get(c, d);
    void *buf;
    if (!p || (!(buf = workspace(c, p, ws)) && p->ws_bytes))
        return;
    if (gpu_dnn(c, cudnnSetConvolutionMathType(p->conv, p->data_math), "cudnnSetConvolutionMathType"))
        return;
    gpu_dnn(c,
            cudnnConvolutionBackwardData(c->dnn, &one, p->w, w, p->y, dy, p->conv, p->data, buf, p->ws_bytes, &one,
                                         p->x, dx),
            "cudnnConvolutionBackwardData");
}

void gpu_conv_bwd_filter(void *ctx, const ConvDesc *d,
                         const float *x,   // (N, Cin, H, W)
                         const float *dy,  // (N, Cout, OH, OW)
                         float *dw,        // (Cout, Cin/groups, K, K), accumulated
                         float *ws)
{
    GpuCtx *c = ctx;
    ConvPlan *p = plan_get(c, d);
    void *buf;
    if (!p || (!(buf = workspace(c, p, ws)) && p->ws_bytes))
        return;
    if (gpu_dnn(c, cudnnSetConvolutionMathType(p->conv, p->filter_math), "cudnnSetConvolutionMathType"))
        return;
    gpu_dnn(c,
            cudnnConvolutionBackwardFilter(c->dnn, &one, p->x, x, p->y, dy, p->conv, p->filter, buf, p->ws_bytes,
                                           &one, p->w, dw),
            "cudnnConvolutionBackwardFilter");
}
