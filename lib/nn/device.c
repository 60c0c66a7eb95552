/* Backend choice by name (see device.h). The CUDA entry points exist in
 * every build (lib/nn/cuda/none.c stands in without CUDA), so this file
 * needs no CUDA header and no build flag. */
#include "nn/device.h"

#include <pthread.h>
#include <string.h>

/* The process's shared CUDA context, made once. */
static pthread_mutex_t cuda_lock = PTHREAD_MUTEX_INITIALIZER;
static const NnBackend *cuda_shared;

static int open_cuda(const NnBackend **be, XErr *e)
{
    int rc = XE_OK;
    pthread_mutex_lock(&cuda_lock);
    if (!cuda_shared)
        rc = nn_cuda_backend_new(0, 0, &cuda_shared, e);
    *be = cuda_shared;
    pthread_mutex_unlock(&cuda_lock);
    return rc;
}

int nn_device_open(const char *device, int threads, const NnBackend **be, const char **used, XErr *e)
{
    XErr probe = { 0 };
    *be = NULL;
    *used = NULL;
    if (!strcmp(device, "cpu") || (!strcmp(device, "auto") && nn_cuda_available(&probe))) {
        *be = nn_cpu_backend(threads);
        *used = "cpu";
        return XE_OK;
    }
    if (strcmp(device, "cuda") && strcmp(device, "auto"))
        return xerr_set(e, XE_USAGE, "unknown device '%s' (%s)", device, NN_DEVICE_NAMES);
    if (nn_cuda_available(e) || open_cuda(be, e))
        return e->code;
    *used = "cuda";
    return XE_OK;
}
