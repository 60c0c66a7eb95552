/* Elementwise CPU ops: ReLU, add/accumulate/scale/fill, the dropout and
 * drop-path mask, the SGD update and the sum of squares. Loops run in blocks
 * of eight through a temporary so that -O2 vectorises them and in-place
 * calls (y == x) stay correct. */
#include "nn/cpu/cpu.h"
#include "nn/cpu/vec.h"

void cpu_relu_fwd(void *ctx, size_t n,
                  const float *x,  // (n)
                  float *y)        // (n)
{
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES) {
        float t[VEC_LANES];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            t[j] = x[i + j] > 0 ? x[i + j] : 0.0f;
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            y[i + j] = t[j];
    }
    for (; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0.0f;
}

void cpu_relu_bwd(void *ctx, size_t n,
                  const float *y,   // (n) forward output
                  const float *dy,  // (n)
                  float *dx)        // (n), accumulated
{
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES) {
        float t[VEC_LANES];
        /* both operands loaded first: GCC then selects without a branch */
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++) {
            float g = dy[i + j], zero = 0.0f;
            t[j] = y[i + j] > 0 ? g : zero;
        }
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            dx[i + j] += t[j];
    }
    for (; i < n; i++)
        dx[i] += y[i] > 0 ? dy[i] : 0.0f;
}

void cpu_add(void *ctx, size_t n,
             const float *a,  // (n)
             const float *b,  // (n)
             float *y)        // (n)
{
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES) {
        float t[VEC_LANES];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            t[j] = a[i + j] + b[i + j];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            y[i + j] = t[j];
    }
    for (; i < n; i++)
        y[i] = a[i] + b[i];
}

void cpu_acc(void *ctx, size_t n,
             const float *x,  // (n)
             float *y)        // (n)
{
    vec_acc(x, n, y);
}

void cpu_scale(void *ctx, size_t n, float s,
               const float *x,  // (n)
               float *y)        // (n)
{
    vec_scale(s, x, n, y);
}

void cpu_fill(void *ctx, size_t n, float v,
              float *y)  // (n)
{
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES)
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            y[i + j] = v;
    for (; i < n; i++)
        y[i] = v;
}

void cpu_mask_scale(void *ctx, int n, size_t per,
                    const uint8_t *mask,  // (N)
                    float keep,
                    const float *x,       // (N, per)
                    float *y)             // (N, per)
{
    float inv = 1.0f / keep;
    for (int i = 0; i < n; i++)
        vec_scale(mask[i] ? inv : 0.0f, x + (size_t)i * per, per, y + (size_t)i * per);
}

/* PyTorch's SGD (dampening 0): the decayed gradient is formed in a local, so
 * g itself is left as it is. A plain loop: the update streams 21 bytes per
 * parameter and is bound by memory, vectorised or not. */
void cpu_sgd(void *ctx, size_t n,
             float *p,               // (n)
             const float *g,         // (n)
             float *v,               // (n) momentum buffer
             const uint8_t *decay,   // (n) 1: apply weight decay
             float lr, float momentum, float wd, int nesterov)
{
    for (size_t i = 0; i < n; i++) {
        float gi = decay[i] ? g[i] + wd * p[i] : g[i];
        float vi = momentum * v[i] + gi;
        v[i] = vi;
        p[i] -= lr * (nesterov ? gi + momentum * vi : vi);
    }
}

double cpu_sumsq(void *ctx, size_t n,
                 const float *x)  // (n)
{
    double acc[VEC_LANES] = {0};
    vec_sumsq_dev(x, n, 0.0, acc);
    return vec_total(acc);
}
