/* The CPU backend's operators, one file per group (conv.c, pool.c, bn.c, ...):
 * the functions backend.c puts in the NnBackend table, with its signatures.
 * Private to lib/nn/cpu and the unit tests; callers go through the table. */
#ifndef XFER_NN_CPU_H
#define XFER_NN_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "nn/ops.h"

/* ---- conv and pool (conv.c, pool.c) ---- */

/* Floats of scratch the three CPU convs need (conv_workspace returns it):
 * 0 for 1x1 stride-1 unpadded convs (ws may then be NULL); for depthwise
 * convs (groups == Cin == Cout) one padded plane of x, or at stride 1 of dy
 * plus the reversed kernel, whichever is larger; else one image-and-group
 * im2col matrix (Cin/groups * K * K, OH * OW). The ops run on the calling
 * thread except inside OpenBLAS; ctx is unused. */
size_t cpu_conv_workspace(const ConvDesc *d);

/* y (N, Cout, OH, OW) = conv(x (N, Cin, H, W), w (Cout, Cin/groups, K, K));
 * ws holds conv_workspace(d) floats. */
void cpu_conv_fwd(void *ctx, const ConvDesc *d, const float *x, const float *w, float *y, float *ws);
/* dx (N, Cin, H, W) += conv_transpose(dy (N, Cout, OH, OW), w). */
void cpu_conv_bwd_data(void *ctx, const ConvDesc *d, const float *dy, const float *w, float *dx,
                       float *ws);
/* dw (Cout, Cin/groups, K, K) += correlation of x (N, Cin, H, W) with dy. */
void cpu_conv_bwd_filter(void *ctx, const ConvDesc *d, const float *x, const float *dy, float *dw,
                         float *ws);

/* y (N, C, OH, OW) = pool(x (N, C, H, W)); average pools divide by the
 * number of in-bounds inputs; max pools skip NaN inputs. */
void cpu_pool_fwd(void *ctx, const PoolDesc *d, const float *x, float *y);
/* dx (N, C, H, W) += pool'(dy); a max pool routes each output's gradient to
 * the first input of its window (row-major) equal to y, the forward output
 * for this x (at stride 1 a NaN or infinite gradient spreads over its
 * window). */
void cpu_pool_bwd(void *ctx, const PoolDesc *d, const float *x, const float *y, const float *dy,
                  float *dx);

/* Threads splitting a batch's images in the convolutions. nn_cpu_backend
 * calls it once; conv_workspace sizes depend on it, so changing it later is
 * for tests that size their own workspaces. */
void cpu_conv_set_threads(int threads);
/* The thread count the CPU ops split work over (batch norm: channels). */
int cpu_threads(void);

/* ---- end of conv and pool ---- */

/* ---- batch norm, elementwise, shape, linear, cross-entropy (bn.c,
 * eltwise.c, shape.c, linear.c, xent.c) ---- */

/* The contracts are the NnBackend entries of the same name in nn/ops.h;
 * what is added here is what the CPU versions promise beyond them. */

/* Statistics are summed in double, variance in a second pass; a channel of
 * one value (N * HW == 1) updates run_var with the biased variance. */
void cpu_bn_fwd_train(void *ctx, const BnDesc *d, const float *x, const float *gamma, const float *beta,
                      float *y, float *save_mean, float *save_invstd, float *run_mean, float *run_var);
void cpu_bn_fwd_eval(void *ctx, const BnDesc *d, const float *x, const float *gamma, const float *beta,
                     const float *run_mean, const float *run_var, float *y);
void cpu_bn_bwd(void *ctx, const BnDesc *d, const float *x, const float *dy, const float *gamma,
                const float *save_mean, const float *save_invstd, float *dx, float *dgamma, float *dbeta);

/* Forward ops may run in place (y == x, y == a or y == b). */
void cpu_relu_fwd(void *ctx, size_t n, const float *x, float *y);
void cpu_relu_bwd(void *ctx, size_t n, const float *y, const float *dy, float *dx);
void cpu_add(void *ctx, size_t n, const float *a, const float *b, float *y);
void cpu_acc(void *ctx, size_t n, const float *x, float *y);
void cpu_scale(void *ctx, size_t n, float s, const float *x, float *y);
void cpu_fill(void *ctx, size_t n, float v, float *y);
void cpu_mask_scale(void *ctx, int n, size_t per, const uint8_t *mask, float keep, const float *x,
                    float *y);
void cpu_sgd(void *ctx, size_t n, float *p, const float *g, float *v, const uint8_t *decay, float lr,
             float momentum, float wd, int nesterov);
double cpu_sumsq(void *ctx, size_t n, const float *x);

void cpu_concat_fwd(void *ctx, int n, int hw, int k, const int *c, const float *const *x, float *y);
void cpu_concat_bwd(void *ctx, int n, int hw, int k, const int *c, const float *dy, float *const *dx);
void cpu_crop_fwd(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow, const float *x,
                  float *y);
void cpu_crop_bwd(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow, const float *dy,
                  float *dx);
void cpu_gap_fwd(void *ctx, int n, int c, int hw, const float *x, float *y);
void cpu_gap_bwd(void *ctx, int n, int c, int hw, const float *dy, float *dx);

void cpu_linear_fwd(void *ctx, int n, int in, int out, const float *x, const float *w, const float *b,
                    float *y);
void cpu_linear_bwd(void *ctx, int n, int in, int out, const float *x, const float *w, const float *dy,
                    float *dx, float *dw, float *db);

/* A label outside [0, K) is skipped: no loss, zero gradient row, never
 * correct (the mean is still over N). */
void cpu_xent(void *ctx, int n, int k, const float *logits, const int32_t *labels, float smoothing,
              float *dlogits, float *loss, int *correct);

/* ---- end of batch norm, elementwise, shape, linear, cross-entropy ---- */

#endif
