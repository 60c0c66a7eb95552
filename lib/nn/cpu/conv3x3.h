/* Direct AVX-512 3x3 stride-1 pad-1 convolutions (conv3x3.c), the fast
 * path of conv.c for the convs every cell is made of. Private to lib/nn/cpu
 * and the unit tests. */
#ifndef XFER_NN_CPU_CONV3X3_H
#define XFER_NN_CPU_CONV3X3_H

#include <stddef.h>

#include "nn/ops.h"

/* Whether this build and CPU have the path (x86-64 with AVX-512F). */
int c3_available(void);
/* Whether d is a conv the path computes: 3x3, stride 1, padding 1, no
 * dilation, one group, on a CPU that has it. */
int c3_shape_ok(const ConvDesc *d);
/* c3_shape_ok, and the path not switched off by c3_set_enabled(0). */
int c3_applies(const ConvDesc *d);
/* On by default; tests switch it off to compare against im2col + sgemm. */
void c3_set_enabled(int on);

/* Scratch, in floats: per thread (a thread handles up to `images`
 * images of the batch) and shared by the threads of one call. */
size_t c3_thread_workspace(const ConvDesc *d, int images);
size_t c3_shared_workspace(const ConvDesc *d);

/* The ops of conv.c for convs c3_applies to, over `threads` threads taking
 * the batch's images in contiguous chunks. ws: c3_shared_workspace floats,
 * then `threads` scratch areas of `per` floats; parts: (threads - 1)
 * zeroed filter-gradient sums that threads 1.. add into (thread 0 adds into
 * dw); the caller adds them to dw in thread order. */
void c3_fwd(const ConvDesc *d, int threads, const float *x, const float *w, float *y, float *ws,
            size_t per);
void c3_bwd_data(const ConvDesc *d, int threads, const float *dy, const float *w, float *dx, float *ws,
                 size_t per);
void c3_bwd_filter(const ConvDesc *d, int threads, const float *x, const float *dy, float *dw,
                   float *ws, size_t per, float *parts);

#endif
