/* Choosing the engine's backend at run time by name, for `--device`:
 * "cpu" (always built), "cuda" (when the build has the CUDA backend and a
 * GPU is visible) or "auto" (the GPU when there is one, else the CPU). */
#ifndef XFER_NN_DEVICE_H
#define XFER_NN_DEVICE_H

#include "core/err.h"
#include "nn/ops.h"

/* The names nn_device_open takes, for usage and error messages. */
#define NN_DEVICE_NAMES "cpu, cuda or auto"

/* Sets *be to the backend for device and *used to its name ("cpu" or
 * "cuda": what ran, for the run's record). threads is the CPU backend's
 * thread count (nn_cpu_backend; a GPU ignores it). "cuda" fails without
 * the backend ("this build has no CUDA backend (use cpu or auto)") or
 * without a usable GPU (the message names the CUDA error); "auto" then
 * takes the CPU, but fails like "cuda" when a visible GPU cannot be set
 * up. An unknown name is XE_USAGE. The CUDA backend is one context on GPU
 * 0 shared by every caller in the process (made on first use, never freed;
 * use it from one thread at a time); nn_cuda_backend_new makes more. */
int nn_device_open(const char *device, int threads, const NnBackend **be, const char **used, XErr *e);

#endif
