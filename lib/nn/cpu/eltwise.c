/* Elementwise CPU ops: ReLU, add/accumulate/scale/fill, the dropout and
 * drop-path mask, the SGD update and the sum of squares. Loops run in blocks
 * of eight through a temporary so that -O2 vectorises them and in-place
 * calls (y == x) stay correct. */
#include "nn/cpu/cpu.h"
#include "nn/cpu/vec.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Long elementwise ops are split over the CPU threads in contiguous chunks
 * (each element's result does not depend on the split); shorter ones are
 * not worth waking the threads for. */
#define PAR_MIN 32768

static int par_threads(size_t n)
{
    int T = cpu_threads();
    return n < PAR_MIN || T < 2 ? 1 : T;
}

/* Thread t's chunk of n, in whole cache lines. */
static void par_chunk(size_t n, int T, size_t *lo, size_t *hi)
{
    int t = 0;
    size_t per;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    per = (n / (size_t)T + 15) / 16 * 16;
    *lo = per * (size_t)t < n ? per * (size_t)t : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* Runs STMT (which uses lo and hi) over the chunks of n. */
#define PAR_FOR(n, STMT)                                                                           \
    do {                                                                                           \
        int T_ = par_threads(n);                                                                   \
        _Pragma("omp parallel num_threads(T_) if (T_ > 1)")                                        \
        {                                                                                          \
            size_t lo, hi;                                                                         \
            par_chunk(n, T_, &lo, &hi);                                                            \
            STMT;                                                                                  \
        }                                                                                          \
    } while (0)

static void relu_fwd(size_t n,
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

static void relu_bwd(size_t n,
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

static void add(size_t n,
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

static void fill(size_t n, float v,
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

void cpu_relu_fwd(void *ctx, size_t n, const float *x, float *y)
{
    PAR_FOR(n, relu_fwd(hi - lo, x + lo, y + lo));
}

void cpu_relu_bwd(void *ctx, size_t n, const float *y, const float *dy, float *dx)
{
    PAR_FOR(n, relu_bwd(hi - lo, y + lo, dy + lo, dx + lo));
}

void cpu_add(void *ctx, size_t n, const float *a, const float *b, float *y)
{
    PAR_FOR(n, add(hi - lo, a + lo, b + lo, y + lo));
}

void cpu_acc(void *ctx, size_t n, const float *x, float *y)
{
    PAR_FOR(n, vec_acc(x + lo, hi - lo, y + lo));
}

void cpu_scale(void *ctx, size_t n, float s, const float *x, float *y)
{
    PAR_FOR(n, vec_scale(s, x + lo, hi - lo, y + lo));
}

void cpu_fill(void *ctx, size_t n, float v, float *y)
{
    PAR_FOR(n, fill(hi - lo, v, y + lo));
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
