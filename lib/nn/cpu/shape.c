/* Shape ops on the CPU: channel concat, spatial crop and global average
 * pooling, with backward passes that accumulate. */
#include <string.h>

#include "nn/cpu/cpu.h"
#include "nn/cpu/vec.h"

void cpu_concat_fwd(void *ctx, int n, int hw, int k,
                    const int *c,            // (k) channels of each input
                    const float *const *x,   // k tensors (N, c[i], HW)
                    float *y)                // (N, sum c, HW)
{
    for (int s = 0; s < n; s++)
        for (int i = 0; i < k; i++) {
            size_t len = (size_t)c[i] * (size_t)hw;
            memcpy(y, x[i] + (size_t)s * len, len * sizeof *y);
            y += len;
        }
}

void cpu_concat_bwd(void *ctx, int n, int hw, int k,
                    const int *c,           // (k)
                    const float *dy,        // (N, sum c, HW)
                    float *const *dx)       // k tensors (N, c[i], HW), accumulated
{
    for (int s = 0; s < n; s++)
        for (int i = 0; i < k; i++) {
            size_t len = (size_t)c[i] * (size_t)hw;
            vec_acc(dy, len, dx[i] + (size_t)s * len);
            dy += len;
        }
}

void cpu_crop_fwd(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow,
                  const float *x,  // (N, C, H, W)
                  float *y)        // (N, C, OH, OW)
{
    size_t planes = (size_t)n * (size_t)c;
    for (size_t p = 0; p < planes; p++) {
        const float *src = x + p * (size_t)h * (size_t)w + (size_t)oy * (size_t)w + (size_t)ox;
        for (int r = 0; r < oh; r++) {
            memcpy(y, src, (size_t)ow * sizeof *y);
            src += w;
            y += ow;
        }
    }
}

void cpu_crop_bwd(void *ctx, int n, int c, int h, int w, int oy, int ox, int oh, int ow,
                  const float *dy,  // (N, C, OH, OW)
                  float *dx)        // (N, C, H, W), accumulated
{
    size_t planes = (size_t)n * (size_t)c;
    for (size_t p = 0; p < planes; p++) {
        float *dst = dx + p * (size_t)h * (size_t)w + (size_t)oy * (size_t)w + (size_t)ox;
        for (int r = 0; r < oh; r++) {
            vec_acc(dy, (size_t)ow, dst);
            dst += w;
            dy += ow;
        }
    }
}

void cpu_gap_fwd(void *ctx, int n, int c, int hw,
                 const float *x,  // (N, C, HW)
                 float *y)        // (N, C)
{
    size_t planes = (size_t)n * (size_t)c;
    for (size_t p = 0; p < planes; p++) {
        double acc[VEC_LANES] = {0};
        vec_sum_dev(x + p * (size_t)hw, (size_t)hw, 0.0f, acc);
        y[p] = (float)(vec_total(acc) / hw);
    }
}

void cpu_gap_bwd(void *ctx, int n, int c, int hw,
                 const float *dy,  // (N, C)
                 float *dx)        // (N, C, HW), accumulated
{
    size_t planes = (size_t)n * (size_t)c;
    for (size_t p = 0; p < planes; p++)
        vec_add_scalar(dy[p] / (float)hw, (size_t)hw, dx + p * (size_t)hw);
}
