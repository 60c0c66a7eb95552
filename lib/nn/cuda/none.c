/* The CUDA backend's entry points in a build without it (no nvcc or
 * cudnn.h, or CUDA=0): the Makefile compiles this file instead of the rest
 * of lib/nn/cuda, so nothing here touches a CUDA header. */
#include "nn/ops.h"

int nn_cuda_available(XErr *e)
{
    return xerr_set(e, XE_FAIL, "this build has no CUDA backend (use cpu or auto)");
}

int nn_cuda_backend_new(int device, int flags, const NnBackend **be, XErr *e)
{
    *be = NULL;
    return nn_cuda_available(e);
}

void nn_cuda_backend_free(const NnBackend *be)
{
}
