/* The CPU backend's table: host memory (64-byte aligned, zeroed), plain
 * copies for upload/download, and the CPU operators from this folder. */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu/cpu.h"

#define CPU_ALIGN 64

static void *cpu_alloc(void *ctx, size_t bytes)
{
    size_t size;
    void *p;
    if (bytes > SIZE_MAX - CPU_ALIGN)
        return NULL;
    /* aligned_alloc wants a multiple of the alignment; never ask for 0 */
    size = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    if (size == 0)
        size = CPU_ALIGN;
    p = aligned_alloc(CPU_ALIGN, size);
    if (p)
        memset(p, 0, size);
    return p;
}

static void cpu_free(void *ctx, void *p)
{
    free(p);
}

static void cpu_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    if (bytes)
        memcpy(dst, src, bytes);
}

/* Every CPU op has finished when it returns, and none fails. */
static int cpu_sync(void *ctx, XErr *e)
{
    return XE_OK;
}

static size_t cpu_ws(void *ctx, const ConvDesc *d)
{
    return cpu_conv_workspace(d);
}

static const NnBackend cpu_backend = {
    .name = "cpu",
    .ctx = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .sync = cpu_sync,
    .conv_workspace = cpu_ws,
    .conv_fwd = cpu_conv_fwd,
    .conv_bwd_data = cpu_conv_bwd_data,
    .conv_bwd_filter = cpu_conv_bwd_filter,
    .bn_fwd_train = cpu_bn_fwd_train,
    .bn_fwd_eval = cpu_bn_fwd_eval,
    .bn_bwd = cpu_bn_bwd,
    .relu_fwd = cpu_relu_fwd,
    .relu_bwd = cpu_relu_bwd,
    .add = cpu_add,
    .acc = cpu_acc,
    .scale = cpu_scale,
    .fill = cpu_fill,
    .pool_fwd = cpu_pool_fwd,
    .pool_bwd = cpu_pool_bwd,
    .concat_fwd = cpu_concat_fwd,
    .concat_bwd = cpu_concat_bwd,
    .crop_fwd = cpu_crop_fwd,
    .crop_bwd = cpu_crop_bwd,
    .gap_fwd = cpu_gap_fwd,
    .gap_bwd = cpu_gap_bwd,
    .linear_fwd = cpu_linear_fwd,
    .linear_bwd = cpu_linear_bwd,
    .xent = cpu_xent,
    .mask_scale = cpu_mask_scale,
    .sgd = cpu_sgd,
    .sumsq = cpu_sumsq,
};

const NnBackend *nn_cpu_backend(int threads)
{
    /* Threads split each convolution's images; OpenBLAS runs on one thread
     * inside them (small per-image products are slower split further). */
    static int fixed; /* workspaces sized for a count must stay valid */
    if (threads > 0 && !fixed) {
        cpu_conv_set_threads(threads);
        openblas_set_num_threads(1);
        fixed = 1;
    }
    return &cpu_backend;
}
