/* Batch normalisation on the CPU: per-channel statistics over (N, H*W) in
 * two passes (mean, then squared deviations), summed in a fixed order
 * (vec.h), the running statistics updated as PyTorch does (unbiased
 * variance), and the usual backward formula. */
#include <math.h>

#include "nn/cpu/cpu.h"
#include "nn/cpu/vec.h"

/* The plane (sample i, channel c) of an (N, C, HW) tensor. */
#define BN_PLANE(p, d, i, c) ((p) + ((size_t)(i) * (size_t)(d)->c + (size_t)(c)) * (size_t)(d)->hw)

/* y = (x - m) * s + b over one plane of n values (in place allowed), with the mean as
 * a float pair m = hi + lo: x - hi is exact for x near hi, so data far from
 * zero keeps its precision (a float mean of 3000 is off by up to 1e-4). */
static void bn_affine(const float *x, size_t n, double m, float s, float b, float *y)
{
    float hi = (float)m, lo = (float)(m - hi);
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES) {
        float t[VEC_LANES];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            t[j] = ((x[i + j] - hi) - lo) * s + b;
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            y[i + j] = t[j];
    }
    for (; i < n; i++)
        y[i] = ((x[i] - hi) - lo) * s + b;
}

void cpu_bn_fwd_train(void *ctx, const BnDesc *d,
                      const float *x,      // (N, C, HW)
                      const float *gamma,  // (C)
                      const float *beta,   // (C)
                      float *y,            // (N, C, HW)
                      float *save_mean,    // (C)
                      float *save_invstd,  // (C)
                      float *run_mean,     // (C)
                      float *run_var)      // (C)
{
    size_t hw = (size_t)d->hw;
    double count = (double)d->n * (double)d->hw;
    double unbias = count > 1 ? count / (count - 1) : 1.0;
    double mom = d->momentum;

    if (count < 1)
        return;
#pragma omp parallel for num_threads(cpu_threads()) schedule(static)
    for (int c = 0; c < d->c; c++) {
        double acc[VEC_LANES] = {0};
        double mean, var, invstd;
        float scale, shift = BN_PLANE(x, d, 0, c)[0];
        for (int i = 0; i < d->n; i++)
            vec_sum_dev(BN_PLANE(x, d, i, c), hw, shift, acc);
        mean = shift + vec_total(acc) / count;
        for (int j = 0; j < VEC_LANES; j++)
            acc[j] = 0;
        for (int i = 0; i < d->n; i++)
            vec_sumsq_dev(BN_PLANE(x, d, i, c), hw, mean, acc);
        var = vec_total(acc) / count;
        invstd = 1.0 / sqrt(var + (double)d->eps);
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        run_mean[c] = (float)((1 - mom) * run_mean[c] + mom * mean);
        run_var[c] = (float)((1 - mom) * run_var[c] + mom * var * unbias);
        scale = (float)(gamma[c] * invstd);
        for (int i = 0; i < d->n; i++)
            bn_affine(BN_PLANE(x, d, i, c), hw, mean, scale, beta[c], BN_PLANE(y, d, i, c));
    }
}

void cpu_bn_fwd_eval(void *ctx, const BnDesc *d,
                     const float *x,         // (N, C, HW)
                     const float *gamma,     // (C)
                     const float *beta,      // (C)
                     const float *run_mean,  // (C)
                     const float *run_var,   // (C)
                     float *y)               // (N, C, HW)
{
#pragma omp parallel for num_threads(cpu_threads()) schedule(static)
    for (int c = 0; c < d->c; c++) {
        float scale = (float)(gamma[c] / sqrt((double)run_var[c] + (double)d->eps));
        for (int i = 0; i < d->n; i++)
            bn_affine(BN_PLANE(x, d, i, c), (size_t)d->hw, run_mean[c], scale, beta[c],
                      BN_PLANE(y, d, i, c));
    }
}

/* dx += a * dy - b * (x - m) - k over one plane of n values. */
static void bn_dx(const float *x, const float *dy, size_t n, float m, float a, float b, float k,
                  float *dx)
{
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES) {
        float t[VEC_LANES];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            t[j] = dx[i + j] + (a * dy[i + j] - b * (x[i + j] - m) - k);
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            dx[i + j] = t[j];
    }
    for (; i < n; i++)
        dx[i] += a * dy[i] - b * (x[i] - m) - k;
}

/* With xhat = (x - mean) * invstd and M = N * HW values per channel:
 * dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)),
 * dgamma = sum(dy * xhat), dbeta = sum(dy). */
void cpu_bn_bwd(void *ctx, const BnDesc *d,
                const float *x,            // (N, C, HW)
                const float *dy,           // (N, C, HW)
                const float *gamma,        // (C)
                const float *save_mean,    // (C)
                const float *save_invstd,  // (C)
                float *dx,                 // (N, C, HW), accumulated
                float *dgamma,             // (C), accumulated
                float *dbeta)              // (C), accumulated
{
    size_t hw = (size_t)d->hw;
    double count = (double)d->n * (double)d->hw;

#pragma omp parallel for num_threads(cpu_threads()) schedule(static)
    for (int c = 0; c < d->c; c++) {
        double acc_dy[VEC_LANES] = {0}, acc_dyx[VEC_LANES] = {0};
        double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy, sum_dyxhat, a;
        for (int i = 0; i < d->n; i++) {
            vec_sum_dev(BN_PLANE(dy, d, i, c), hw, 0.0f, acc_dy);
            vec_dot_dev(BN_PLANE(dy, d, i, c), BN_PLANE(x, d, i, c), hw, mean, acc_dyx);
        }
        sum_dy = vec_total(acc_dy);
        sum_dyxhat = vec_total(acc_dyx) * invstd;
        dgamma[c] += (float)sum_dyxhat;
        dbeta[c] += (float)sum_dy;
        a = gamma[c] * invstd;
        for (int i = 0; i < d->n; i++)
            bn_dx(BN_PLANE(x, d, i, c), BN_PLANE(dy, d, i, c), hw, save_mean[c], (float)a,
                  (float)(a * invstd * sum_dyxhat / count), (float)(a * sum_dy / count),
                  BN_PLANE(dx, d, i, c));
    }
}
