/* Private helpers for the CPU ops: reductions into eight lanes in a fixed
 * order (float within a chunk, double across chunks: accurate and
 * deterministic), written in blocks of eight so that GCC's -O2 vectoriser
 * turns them into packed instructions. */
#ifndef XFER_NN_CPU_VEC_H
#define XFER_NN_CPU_VEC_H

#include <stddef.h>

#define VEC_LANES 8
/* Put before each loop over the lanes of a block. At -O2, GCC otherwise
 * vectorises the lane loop itself and keeps accumulators in memory; fully
 * unrolled, the block becomes straight-line packed code with accumulators in
 * registers (BN's backward runs 1.8 times faster). */
#define VEC_UNROLL _Pragma("GCC unroll 8")
/* Reductions add at most this many values into float lanes (128 a lane)
 * before flushing them into the double lanes: float speed, and an error
 * that does not grow with the length. */
#define VEC_CHUNK 1024

/* acc[j] += x[i] - m over i = j (mod 8). A shift m near the data (its
 * first value, say) keeps float lanes exact enough for data far from zero,
 * whose plain float sums would lose the low digits. */
static inline void vec_sum_dev(const float *x, size_t n, float m, double acc[VEC_LANES])
{
    size_t i = 0;
    while (i + VEC_LANES <= n) {
        float a[VEC_LANES] = {0};
        size_t end = n - i > VEC_CHUNK ? i + VEC_CHUNK : n;
        for (; i + VEC_LANES <= end; i += VEC_LANES) {
            VEC_UNROLL
            for (size_t j = 0; j < VEC_LANES; j++)
                a[j] += x[i + j] - m;
        }
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            acc[j] += (double)a[j];
    }
    for (; i < n; i++)
        acc[i % VEC_LANES] += (double)x[i] - m;
}

/* acc[j] += (x[i] - m)^2. m is applied as a float pair hi + lo, so that
 * x - hi is exact for x near m and the deviations keep their precision. */
static inline void vec_sumsq_dev(const float *x, size_t n, double m, double acc[VEC_LANES])
{
    float hi = (float)m, lo = (float)(m - hi);
    size_t i = 0;
    while (i + VEC_LANES <= n) {
        float a[VEC_LANES] = {0};
        size_t end = n - i > VEC_CHUNK ? i + VEC_CHUNK : n;
        for (; i + VEC_LANES <= end; i += VEC_LANES) {
            VEC_UNROLL
            for (size_t j = 0; j < VEC_LANES; j++) {
                float d = (x[i + j] - hi) - lo;
                a[j] += d * d;
            }
        }
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            acc[j] += (double)a[j];
    }
    for (; i < n; i++) {
        double d = (double)x[i] - m;
        acc[i % VEC_LANES] += d * d;
    }
}

/* acc[j] += a[i] * (b[i] - m), m as in vec_sumsq_dev. */
static inline void vec_dot_dev(const float *a, const float *b, size_t n, double m, double acc[VEC_LANES])
{
    float hi = (float)m, lo = (float)(m - hi);
    size_t i = 0;
    while (i + VEC_LANES <= n) {
        float s[VEC_LANES] = {0};
        size_t end = n - i > VEC_CHUNK ? i + VEC_CHUNK : n;
        for (; i + VEC_LANES <= end; i += VEC_LANES) {
            VEC_UNROLL
            for (size_t j = 0; j < VEC_LANES; j++)
                s[j] += a[i + j] * ((b[i + j] - hi) - lo);
        }
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            acc[j] += (double)s[j];
    }
    for (; i < n; i++)
        acc[i % VEC_LANES] += (double)a[i] * ((double)b[i] - m);
}

/* The lanes' total, always added in the same order. */
static inline double vec_total(const double acc[VEC_LANES])
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* y[i] += x[i]; x and y are the same or disjoint. Computing a block into a
 * temporary before storing keeps in-place calls correct and lets the block
 * vectorise without alias checks. */
static inline void vec_acc(const float *x, size_t n, float *y)
{
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES) {
        float t[VEC_LANES];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            t[j] = y[i + j] + x[i + j];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            y[i + j] = t[j];
    }
    for (; i < n; i++)
        y[i] += x[i];
}

/* y[i] = s * x[i] (in place allowed). */
static inline void vec_scale(float s, const float *x, size_t n, float *y)
{
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES) {
        float t[VEC_LANES];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            t[j] = s * x[i + j];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            y[i + j] = t[j];
    }
    for (; i < n; i++)
        y[i] = s * x[i];
}

/* y[i] += s (a broadcast add). */
static inline void vec_add_scalar(float s, size_t n, float *y)
{
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES) {
        float t[VEC_LANES];
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            t[j] = y[i + j] + s;
        VEC_UNROLL
        for (size_t j = 0; j < VEC_LANES; j++)
            y[i + j] = t[j];
    }
    for (; i < n; i++)
        y[i] += s;
}

#endif
