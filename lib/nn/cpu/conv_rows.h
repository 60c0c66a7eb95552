/* Row helpers for the CPU conv and pool ops: contiguous row updates written
 * in blocks of eight so GCC's -O2 vectoriser packs them (rows are short:
 * inline loops beat calls to memcpy), and the range of output columns whose
 * input column falls inside the image. */
#ifndef XFER_NN_CPU_CONV_ROWS_H
#define XFER_NN_CPU_CONV_ROWS_H

#include <stddef.h>

/* y[i] = 0 (short runs: cheaper inline than a call to memset) */
static inline void row_zero(int n, float *y)
{
    for (int i = 0; i < n; i++)
        y[i] = 0.0f;
}

/* y[i] = x[i] */
static inline void row_copy(int n, const float *restrict x, float *restrict y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            y[i + j] = x[i + j];
    for (; i < n; i++)
        y[i] = x[i];
}

/* y[i] += x[i] */
static inline void row_add(int n, const float *restrict x, float *restrict y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            y[i + j] += x[i + j];
    for (; i < n; i++)
        y[i] += x[i];
}

/* y[i] += a * x[i] */
static inline void row_axpy(int n, float a, const float *restrict x, float *restrict y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            y[i + j] += a * x[i + j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* y[i] = max(y[i], x[i]) */
static inline void row_max(int n, const float *restrict x, float *restrict y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            y[i + j] = x[i + j] > y[i + j] ? x[i + j] : y[i + j];
    for (; i < n; i++)
        y[i] = x[i] > y[i] ? x[i] : y[i];
}

/* y[i] /= c */
static inline void row_div(int n, float c, float *restrict y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            y[i + j] /= c;
    for (; i < n; i++)
        y[i] /= c;
}

/* [*lo, *hi): the output columns ox < ow whose input column ox * s + off
 * lies in [0, w). Strides 1 and 2 skip the divisions. */
static inline void row_range(int off, int s, int w, int ow, int *lo, int *hi)
{
    int a, b;
    if (s == 1) {
        a = off < 0 ? -off : 0;
        b = w - off;
    } else if (s == 2) {
        a = off < 0 ? (1 - off) >> 1 : 0;
        b = off < w ? ((w - 1 - off) >> 1) + 1 : 0;
    } else {
        a = off < 0 ? (-off + s - 1) / s : 0;
        b = off < w ? (w - 1 - off) / s + 1 : 0;
    }
    if (b > ow)
        b = ow;
    if (b < 0)
        b = 0;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

#endif
