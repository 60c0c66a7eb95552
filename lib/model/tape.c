/* The autodiff tape: eager forward ops that record what their backward
 * needs, an arena per step, and the parameter store with Adam. */
#include "model/tape.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ---- */

void tparams_init(TParams *ps)
{
    memset(ps, 0, sizeof *ps);
}

void tparams_release(TParams *ps)
{
    free(ps->val);
    free(ps->grad);
    free(ps->m);
    free(ps->v);
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

/* Grows one block to cap floats, zeroing the new part. */
static int grow_block(float **blk, size_t used, size_t cap)
{
    float *nb = realloc(*blk, cap * sizeof *nb);
    if (!nb)
        return -1;
    memset(nb + used, 0, (cap - used) * sizeof *nb);
    *blk = nb;
    return 0;
}

int tparams_add(TParams *ps, int rows, int cols, int decay, int *id, XErr *e)
{
    size_t numel;
    if (rows <= 0 || cols <= 0)
        return xerr_set(e, XE_FAIL, "parameter of shape (%d, %d): sizes must be positive", rows, cols);
    numel = (size_t)rows * (size_t)cols;
    if (ps->n == ps->pcap) {
        int cap = ps->pcap ? 2 * ps->pcap : 16;
        TParam *np = realloc(ps->p, (size_t)cap * sizeof *np);
        if (!np)
            return xerr_set(e, XE_FAIL, "out of memory for the parameter table");
        ps->p = np;
        ps->pcap = cap;
    }
    if (ps->size + numel > ps->cap) {
        size_t cap = ps->cap ? ps->cap : 1024;
        while (cap < ps->size + numel)
            cap *= 2;
        if (grow_block(&ps->val, ps->size, cap) || grow_block(&ps->grad, ps->size, cap) ||
            grow_block(&ps->m, ps->size, cap) || grow_block(&ps->v, ps->size, cap))
            return xerr_set(e, XE_FAIL, "out of memory for %zu parameters", ps->size + numel);
        ps->cap = cap;
    }
    ps->p[ps->n] = (TParam){.off = ps->size, .rows = rows, .cols = cols, .lr_scale = 1.0f, .decay = decay};
    ps->size += numel;
    *id = ps->n++;
    return XE_OK;
}

float *tparams_value(const TParams *ps, int id)
{
    return ps->val + ps->p[id].off;
}

float *tparams_grad(const TParams *ps, int id)
{
    return ps->grad + ps->p[id].off;
}

size_t tparams_numel(const TParams *ps, int id)
{
    return (size_t)ps->p[id].rows * (size_t)ps->p[id].cols;
}

void tparams_fill_uniform(TParams *ps, int id, float bound, Rng *r)
{
    float *w = tparams_value(ps, id);
    size_t n = tparams_numel(ps, id);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((2.0 * rng_uniform(r) - 1.0) * bound);
}

void tparams_zero_grad(TParams *ps)
{
    if (ps->size)
        memset(ps->grad, 0, ps->size * sizeof *ps->grad);
}

void tparams_reset_adam(TParams *ps)
{
    if (ps->size) {
        memset(ps->m, 0, ps->size * sizeof *ps->m);
        memset(ps->v, 0, ps->size * sizeof *ps->v);
    }
    for (int k = 0; k < ps->n; k++)
        ps->p[k].step = 0;
}

void tparams_set_lr_scale(TParams *ps, float s)
{
    for (int k = 0; k < ps->n; k++)
        ps->p[k].lr_scale = s;
}

double tparams_clip_grad(TParams *ps, double max_norm)
{
    double ss = 0, norm;
    for (int k = 0; k < ps->n; k++) {
        const float *g = tparams_grad(ps, k);
        size_t n = tparams_numel(ps, k);
        if (ps->p[k].lr_scale == 0.0f)
            continue;
        for (size_t i = 0; i < n; i++)
            ss += (double)g[i] * g[i];
    }
    norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float s = (float)(max_norm / norm);
        for (int k = 0; k < ps->n; k++) {
            float *g = tparams_grad(ps, k);
            size_t n = tparams_numel(ps, k);
            if (ps->p[k].lr_scale == 0.0f)
                continue;
            for (size_t i = 0; i < n; i++)
                g[i] *= s;
        }
    }
    return norm;
}

TAdam tadam_default(float lr, float wd)
{
    return (TAdam){.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .wd = wd};
}

void tparams_adam(TParams *ps, const TAdam *o)
{
    for (int k = 0; k < ps->n; k++) {
        TParam *p = &ps->p[k];
        size_t n = tparams_numel(ps, k);
        float *w = ps->val + p->off, *g = ps->grad + p->off, *m = ps->m + p->off, *v = ps->v + p->off;
        float lr, wd, c1, c2;
        if (p->lr_scale == 0.0f)
            continue;
        p->step++;
        lr = o->lr * p->lr_scale;
        wd = p->decay ? o->wd : 0.0f;
        c1 = 1.0f / (1.0f - powf(o->beta1, (float)p->step));
        c2 = 1.0f / (1.0f - powf(o->beta2, (float)p->step));
        for (size_t i = 0; i < n; i++) {
            m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * g[i];
            v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * g[i] * g[i];
            w[i] -= lr * (m[i] * c1 / (sqrtf(v[i] * c2) + o->eps) + wd * w[i]);
        }
    }
}

/* ---- arena ---- */

typedef struct Block {
    struct Block *prev;
    size_t cap, used;
    unsigned char *mem;
} Block;

typedef enum {
    OP_LEAF, OP_MATMUL, OP_ADD, OP_BIAS, OP_MUL, OP_SCALE, OP_TANH, OP_SIGMOID, OP_RELU, OP_EMBED,
    OP_CONCAT_COLS, OP_CONCAT_ROWS, OP_SLICE_COLS, OP_SLICE_ROWS, OP_SUM_COLS, OP_MEAN_ROWS, OP_MEAN,
    OP_L2NORM, OP_LSTM, OP_DROPOUT, OP_MSE, OP_PAIRWISE, OP_XENT,
} OpKind;

typedef struct Node {
    OpKind op;
    int rows, cols;
    int req;            /* a gradient must flow to this node */
    TVar a, b;          /* inputs, TAPE_NONE when unused */
    TVar *list;         /* inputs of a concat */
    int nlist;
    int i0, i1;         /* transpose flags; slice start */
    float f0;           /* scale, eps */
    float *val, *grad;
    float *aux;         /* state kept for backward: activations, masks, targets */
    int *iaux;          /* ids, labels */
    const TPair *pairs;
} Node;

struct Tape {
    Node *nodes;
    int n, cap;
    Block *blk;
    size_t in_use, peak;
    int failed;
    int frozen;         /* parameters get no gradients */
    XErr err;
};

static void *arena_alloc(Tape *t, size_t bytes)
{
    Block *b = t->blk;
    void *p;
    bytes = (bytes + 63) & ~(size_t)63;
    if (!b || b->used + bytes > b->cap) {
        size_t cap = b ? 2 * b->cap : (size_t)1 << 20;
        Block *nb;
        if (cap < bytes)
            cap = bytes;
        nb = malloc(sizeof *nb);
        if (!nb)
            return NULL;
        nb->mem = aligned_alloc(64, cap);
        if (!nb->mem) {
            free(nb);
            return NULL;
        }
        nb->prev = b;
        nb->cap = cap;
        nb->used = 0;
        t->blk = b = nb;
    }
    p = b->mem + b->used;
    b->used += bytes;
    t->in_use += bytes;
    if (t->in_use > t->peak)
        t->peak = t->in_use;
    return p;
}

static void arena_free_all(Tape *t)
{
    while (t->blk) {
        Block *prev = t->blk->prev;
        free(t->blk->mem);
        free(t->blk);
        t->blk = prev;
    }
}

int tape_new(Tape **out, XErr *e)
{
    Tape *t = calloc(1, sizeof *t);
    if (!t)
        return xerr_set(e, XE_FAIL, "out of memory for a tape");
    /* Products of (batch, 4 hidden) matrices: OpenBLAS's threads only wait
     * on each other (a third of a step's time on two cores). */
    openblas_set_num_threads(1);
    *out = t;
    return XE_OK;
}

void tape_free(Tape *t)
{
    if (!t)
        return;
    arena_free_all(t);
    free(t->nodes);
    free(t);
}

void tape_reset(Tape *t)
{
    /* A step that spilled into several blocks gets one block of its peak
     * size next time. */
    if (t->blk && t->blk->prev) {
        size_t peak = t->peak;
        arena_free_all(t);
        t->in_use = 0;
        if (arena_alloc(t, peak))
            t->blk->used = 0;
    } else if (t->blk) {
        t->blk->used = 0;
    }
    t->in_use = 0;
    t->n = 0;
    t->failed = 0;
    xerr_clear(&t->err);
}

int tape_status(const Tape *t, XErr *e)
{
    if (!t->failed)
        return XE_OK;
    return xerr_set(e, XE_FAIL, "%s", t->err.msg);
}

size_t tape_arena_bytes(const Tape *t)
{
    size_t s = 0;
    for (const Block *b = t->blk; b; b = b->prev)
        s += b->cap;
    return s;
}

static TVar fail(Tape *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static TVar fail(Tape *t, const char *fmt, ...)
{
    if (!t->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->err.msg, sizeof t->err.msg, fmt, ap);
        va_end(ap);
        t->err.code = XE_FAIL;
        t->failed = 1;
    }
    return TAPE_NONE;
}

void *tape_scratch(Tape *t, size_t bytes)
{
    void *p;
    if (t->failed)
        return NULL;
    p = arena_alloc(t, bytes ? bytes : 1);
    if (!p)
        fail(t, "out of memory for %zu bytes of scratch", bytes);
    return p;
}

static int valid(const Tape *t, TVar x)
{
    return !t->failed && x >= 0 && x < t->n;
}

static Node *node(const Tape *t, TVar x)
{
    return &t->nodes[x];
}

int tape_rows(const Tape *t, TVar x)
{
    return valid(t, x) ? node(t, x)->rows : 0;
}

int tape_cols(const Tape *t, TVar x)
{
    return valid(t, x) ? node(t, x)->cols : 0;
}

float *tape_value(const Tape *t, TVar x)
{
    return valid(t, x) ? node(t, x)->val : NULL;
}

float *tape_grad(const Tape *t, TVar x)
{
    return valid(t, x) ? node(t, x)->grad : NULL;
}

static size_t numel(const Node *n)
{
    return (size_t)n->rows * (size_t)n->cols;
}

static float *alloc_floats(Tape *t, size_t n)
{
    return arena_alloc(t, (n ? n : 1) * sizeof(float));
}

/* Appends a node with a fresh (uninitialised) value; TAPE_NONE on failure. */
static TVar push(Tape *t, OpKind op, int rows, int cols, TVar a, TVar b)
{
    Node *n;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 256;
        Node *nn = realloc(t->nodes, (size_t)cap * sizeof *nn);
        if (!nn)
            return fail(t, "out of memory for the tape's nodes");
        t->nodes = nn;
        t->cap = cap;
    }
    n = &t->nodes[t->n];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->rows = rows;
    n->cols = cols;
    n->a = a;
    n->b = b;
    n->req = (a >= 0 && t->nodes[a].req) || (b >= 0 && t->nodes[b].req);
    n->val = alloc_floats(t, (size_t)rows * (size_t)cols);
    if (!n->val)
        return fail(t, "out of memory for a (%d, %d) value", rows, cols);
    return t->n++;
}

/* The gradient of x, zeroed on first use. */
static float *grad_of(Tape *t, TVar x)
{
    Node *n = node(t, x);
    if (!n->grad) {
        n->grad = alloc_floats(t, numel(n));
        if (n->grad)
            memset(n->grad, 0, numel(n) * sizeof *n->grad);
    }
    return n->grad;
}

/* ---- leaves ---- */

TVar tape_input(Tape *t, int rows, int cols, const float *data, int with_grad)
{
    TVar y;
    if (t->failed)
        return TAPE_NONE;
    if (rows <= 0 || cols <= 0)
        return fail(t, "tape: input of shape (%d, %d): sizes must be positive", rows, cols);
    y = push(t, OP_LEAF, rows, cols, TAPE_NONE, TAPE_NONE);
    if (y < 0)
        return y;
    if (data)
        memcpy(node(t, y)->val, data, (size_t)rows * (size_t)cols * sizeof(float));
    else
        memset(node(t, y)->val, 0, (size_t)rows * (size_t)cols * sizeof(float));
    if (with_grad) {
        node(t, y)->req = 1;
        if (!grad_of(t, y))
            return fail(t, "out of memory for a (%d, %d) gradient", rows, cols);
    }
    return y;
}

void tape_freeze_params(Tape *t, int frozen)
{
    t->frozen = frozen;
}

TVar tape_param(Tape *t, TParams *ps, int id)
{
    Node *n;
    if (t->failed)
        return TAPE_NONE;
    if (id < 0 || id >= ps->n)
        return fail(t, "tape: parameter %d out of range (the store has %d)", id, ps->n);
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 256;
        Node *nn = realloc(t->nodes, (size_t)cap * sizeof *nn);
        if (!nn)
            return fail(t, "out of memory for the tape's nodes");
        t->nodes = nn;
        t->cap = cap;
    }
    n = &t->nodes[t->n];
    memset(n, 0, sizeof *n);
    n->op = OP_LEAF;
    n->rows = ps->p[id].rows;
    n->cols = ps->p[id].cols;
    n->a = n->b = TAPE_NONE;
    n->val = tparams_value(ps, id);
    if (ps->p[id].lr_scale != 0.0f && !t->frozen) {
        n->req = 1;
        n->grad = tparams_grad(ps, id);
    }
    return t->n++;
}

/* ---- forward ops ---- */

/* The hot elementwise loops carry `omp simd`: GCC's -O2 vectoriser (the
 * very-cheap cost model, no if-conversion) leaves them scalar otherwise. */

/* x clamped to [lo, hi] through bit masks, a select that vectorises without
 * if-conversion; NaN stays NaN. */
static inline float clampf(float x, float lo, float hi)
{
    int32_t xi, li, hi_, mlo = -(int32_t)(x < lo), mhi = -(int32_t)(x > hi);
    memcpy(&xi, &x, 4);
    memcpy(&li, &lo, 4);
    memcpy(&hi_, &hi, 4);
    xi = (xi & ~mlo) | (li & mlo);
    xi = (xi & ~mhi) | (hi_ & mhi);
    memcpy(&x, &xi, 4);
    return x;
}

/* e^x, branch-free so that loops over it vectorise (libm's expf and tanhf
 * took half of a training step): x = n ln2 + r, |r| <= ln2 / 2, e^r by its
 * degree-6 Taylor polynomial (relative error below 2e-7), 2^n put into the
 * exponent bits. x is clamped to [-87, 88], where e^x is a normal float. */
static inline float fast_expf(float x)
{
    float t, n, r, p, scale;
    int32_t bits;
    x = clampf(x, -87.0f, 88.0f);
    /* n = round(x / ln2): adding 1.5 * 2^23 rounds to an integer (SSE2 has
     * no packed floor) */
    t = x * 1.44269504f + 12582912.0f;
    n = t - 12582912.0f;
    r = x - n * 0.693359375f; /* ln2 split in two for an exact product */
    r = r + n * 2.12194440e-4f;
    p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666667e-1f + r * (4.16666667e-2f + r * (8.33333333e-3f + r * 1.38888889e-3f)))));
    bits = ((int32_t)n + 127) << 23;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float fast_sigmoidf(float x)
{
    return 1.0f / (1.0f + fast_expf(-x));
}

/* 1 - 2 / (e^2x + 1): exact to about 1e-7 absolute. */
static inline float fast_tanhf(float x)
{
    return 1.0f - 2.0f / (fast_expf(2.0f * x) + 1.0f);
}

#define CHECK1(a)                                                                                  \
    do {                                                                                           \
        if (!valid(t, a))                                                                          \
            return t->failed ? TAPE_NONE : fail(t, "tape: %s: no such value %d", __func__, a);      \
    } while (0)

TVar tape_matmul(Tape *t, TVar a, TVar b, int ta, int tb)
{
    const Node *A, *B;
    int m, k, k2, n;
    TVar y;
    CHECK1(a);
    CHECK1(b);
    A = node(t, a);
    B = node(t, b);
    m = ta ? A->cols : A->rows;
    k = ta ? A->rows : A->cols;
    k2 = tb ? B->cols : B->rows;
    n = tb ? B->rows : B->cols;
    if (k != k2)
        return fail(t, "tape: matmul: (%d, %d)%s x (%d, %d)%s: inner sizes %d and %d differ", A->rows,
                    A->cols, ta ? "^T" : "", B->rows, B->cols, tb ? "^T" : "", k, k2);
    y = push(t, OP_MATMUL, m, n, a, b);
    if (y < 0)
        return y;
    node(t, y)->i0 = ta;
    node(t, y)->i1 = tb;
    A = node(t, a);
    B = node(t, b);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                1.0f, A->val, A->cols, B->val, B->cols, 0.0f, node(t, y)->val, n);
    return y;
}

static TVar elementwise2(Tape *t, OpKind op, TVar a, TVar b, const char *name)
{
    const Node *A, *B;
    TVar y;
    float *out;
    const float *x1, *x2;
    size_t len;
    CHECK1(a);
    CHECK1(b);
    A = node(t, a);
    B = node(t, b);
    if (A->rows != B->rows || A->cols != B->cols)
        return fail(t, "tape: %s: shapes (%d, %d) and (%d, %d) differ", name, A->rows, A->cols, B->rows,
                    B->cols);
    y = push(t, op, A->rows, A->cols, a, b);
    if (y < 0)
        return y;
    out = node(t, y)->val;
    x1 = node(t, a)->val;
    x2 = node(t, b)->val;
    len = numel(node(t, y));
    if (op == OP_ADD)
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            out[i] = x1[i] + x2[i];
    else
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            out[i] = x1[i] * x2[i];
    return y;
}

TVar tape_add(Tape *t, TVar a, TVar b)
{
    return elementwise2(t, OP_ADD, a, b, "add");
}

TVar tape_mul(Tape *t, TVar a, TVar b)
{
    return elementwise2(t, OP_MUL, a, b, "mul");
}

TVar tape_add_bias(Tape *t, TVar a, TVar bias)
{
    const Node *A, *B;
    TVar y;
    int rows, cols;
    CHECK1(a);
    CHECK1(bias);
    A = node(t, a);
    B = node(t, bias);
    if (B->rows != 1 || B->cols != A->cols)
        return fail(t, "tape: add_bias: bias (%d, %d) does not fit (%d, %d)", B->rows, B->cols, A->rows,
                    A->cols);
    rows = A->rows;
    cols = A->cols;
    y = push(t, OP_BIAS, rows, cols, a, bias);
    if (y < 0)
        return y;
    {
        float *out = node(t, y)->val;
        const float *x = node(t, a)->val, *bv = node(t, bias)->val;
        for (int i = 0; i < rows; i++) {
            float *o = out + (size_t)i * cols;
            const float *xi = x + (size_t)i * cols;
#pragma omp simd
            for (int j = 0; j < cols; j++)
                o[j] = xi[j] + bv[j];
        }
    }
    return y;
}

static TVar unary(Tape *t, OpKind op, TVar a, float s)
{
    TVar y;
    float *out;
    const float *x;
    size_t len;
    CHECK1(a);
    y = push(t, op, node(t, a)->rows, node(t, a)->cols, a, TAPE_NONE);
    if (y < 0)
        return y;
    node(t, y)->f0 = s;
    out = node(t, y)->val;
    x = node(t, a)->val;
    len = numel(node(t, y));
    switch (op) {
    case OP_SCALE:
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            out[i] = s * x[i];
        break;
    case OP_TANH:
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            out[i] = fast_tanhf(x[i]);
        break;
    case OP_SIGMOID:
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            out[i] = fast_sigmoidf(x[i]);
        break;
    default: /* OP_RELU */
#pragma omp simd
        for (size_t i = 0; i < len; i++)
            out[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    }
    return y;
}

TVar tape_scale(Tape *t, TVar a, float s)
{
    return unary(t, OP_SCALE, a, s);
}

TVar tape_tanh(Tape *t, TVar a)
{
    return unary(t, OP_TANH, a, 0);
}

TVar tape_sigmoid(Tape *t, TVar a)
{
    return unary(t, OP_SIGMOID, a, 0);
}

TVar tape_relu(Tape *t, TVar a)
{
    return unary(t, OP_RELU, a, 0);
}

TVar tape_embed(Tape *t, TVar table, const int *ids, int n)
{
    const Node *T;
    TVar y;
    int *keep;
    int V, D;
    CHECK1(table);
    T = node(t, table);
    V = T->rows;
    D = T->cols;
    if (n <= 0)
        return fail(t, "tape: embed: %d ids: need at least one", n);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return fail(t, "tape: embed: id %d at %d is out of range (0-%d)", ids[i], i, V - 1);
    y = push(t, OP_EMBED, n, D, table, TAPE_NONE);
    if (y < 0)
        return y;
    keep = arena_alloc(t, (size_t)n * sizeof *keep);
    if (!keep)
        return fail(t, "out of memory for %d ids", n);
    memcpy(keep, ids, (size_t)n * sizeof *keep);
    node(t, y)->iaux = keep;
    {
        float *out = node(t, y)->val;
        const float *tab = node(t, table)->val;
        for (int i = 0; i < n; i++)
            memcpy(out + (size_t)i * D, tab + (size_t)ids[i] * D, (size_t)D * sizeof *out);
    }
    return y;
}

static TVar concat(Tape *t, const TVar *xs, int k, int by_cols)
{
    TVar y;
    TVar *keep;
    int rows = 0, cols = 0, req = 0;
    if (t->failed)
        return TAPE_NONE;
    if (k <= 0)
        return fail(t, "tape: concat of %d values: need at least one", k);
    for (int i = 0; i < k; i++) {
        const Node *X;
        CHECK1(xs[i]);
        X = node(t, xs[i]);
        req |= X->req;
        if (by_cols) {
            if (i && X->rows != rows)
                return fail(t, "tape: concat_cols: value %d has %d rows, not %d", i, X->rows, rows);
            rows = X->rows;
            cols += X->cols;
        } else {
            if (i && X->cols != cols)
                return fail(t, "tape: concat_rows: value %d has %d columns, not %d", i, X->cols, cols);
            cols = X->cols;
            rows += X->rows;
        }
    }
    y = push(t, by_cols ? OP_CONCAT_COLS : OP_CONCAT_ROWS, rows, cols, TAPE_NONE, TAPE_NONE);
    if (y < 0)
        return y;
    keep = arena_alloc(t, (size_t)k * sizeof *keep);
    if (!keep)
        return fail(t, "out of memory for a concat");
    memcpy(keep, xs, (size_t)k * sizeof *keep);
    node(t, y)->list = keep;
    node(t, y)->nlist = k;
    node(t, y)->req = req;
    {
        float *out = node(t, y)->val;
        int off = 0;
        for (int i = 0; i < k; i++) {
            const Node *X = node(t, xs[i]);
            if (by_cols) {
                for (int r = 0; r < rows; r++)
                    memcpy(out + (size_t)r * cols + off, X->val + (size_t)r * X->cols,
                           (size_t)X->cols * sizeof *out);
                off += X->cols;
            } else {
                memcpy(out + (size_t)off * cols, X->val, numel(X) * sizeof *out);
                off += X->rows;
            }
        }
    }
    return y;
}

TVar tape_concat_cols(Tape *t, const TVar *xs, int k)
{
    return concat(t, xs, k, 1);
}

TVar tape_concat_rows(Tape *t, const TVar *xs, int k)
{
    return concat(t, xs, k, 0);
}

TVar tape_slice_cols(Tape *t, TVar a, int start, int width)
{
    const Node *A;
    TVar y;
    CHECK1(a);
    A = node(t, a);
    if (start < 0 || width <= 0 || start + width > A->cols)
        return fail(t, "tape: slice_cols: columns %d-%d of (%d, %d)", start, start + width - 1, A->rows,
                    A->cols);
    y = push(t, OP_SLICE_COLS, A->rows, width, a, TAPE_NONE);
    if (y < 0)
        return y;
    node(t, y)->i0 = start;
    A = node(t, a);
    for (int r = 0; r < A->rows; r++)
        memcpy(node(t, y)->val + (size_t)r * width, A->val + (size_t)r * A->cols + start,
               (size_t)width * sizeof(float));
    return y;
}

TVar tape_slice_rows(Tape *t, TVar a, int start, int count)
{
    const Node *A;
    TVar y;
    CHECK1(a);
    A = node(t, a);
    if (start < 0 || count <= 0 || start + count > A->rows)
        return fail(t, "tape: slice_rows: rows %d-%d of (%d, %d)", start, start + count - 1, A->rows,
                    A->cols);
    y = push(t, OP_SLICE_ROWS, count, A->cols, a, TAPE_NONE);
    if (y < 0)
        return y;
    node(t, y)->i0 = start;
    A = node(t, a);
    memcpy(node(t, y)->val, A->val + (size_t)start * A->cols, (size_t)count * A->cols * sizeof(float));
    return y;
}

TVar tape_sum_cols(Tape *t, TVar a)
{
    TVar y;
    int rows, cols;
    CHECK1(a);
    rows = node(t, a)->rows;
    cols = node(t, a)->cols;
    y = push(t, OP_SUM_COLS, rows, 1, a, TAPE_NONE);
    if (y < 0)
        return y;
    for (int r = 0; r < rows; r++) {
        const float *x = node(t, a)->val + (size_t)r * cols;
        double s = 0;
        for (int j = 0; j < cols; j++)
            s += x[j];
        node(t, y)->val[r] = (float)s;
    }
    return y;
}

TVar tape_mean_rows(Tape *t, TVar a)
{
    TVar y;
    int rows, cols;
    CHECK1(a);
    rows = node(t, a)->rows;
    cols = node(t, a)->cols;
    y = push(t, OP_MEAN_ROWS, 1, cols, a, TAPE_NONE);
    if (y < 0)
        return y;
    for (int j = 0; j < cols; j++) {
        double s = 0;
        for (int r = 0; r < rows; r++)
            s += node(t, a)->val[(size_t)r * cols + j];
        node(t, y)->val[j] = (float)(s / rows);
    }
    return y;
}

TVar tape_mean(Tape *t, TVar a)
{
    TVar y;
    size_t len;
    double s = 0;
    CHECK1(a);
    y = push(t, OP_MEAN, 1, 1, a, TAPE_NONE);
    if (y < 0)
        return y;
    len = numel(node(t, a));
    for (size_t i = 0; i < len; i++)
        s += node(t, a)->val[i];
    node(t, y)->val[0] = (float)(s / (double)len);
    return y;
}

TVar tape_l2norm(Tape *t, TVar a, float eps)
{
    TVar y;
    int rows, cols;
    float *inv;
    CHECK1(a);
    rows = node(t, a)->rows;
    cols = node(t, a)->cols;
    y = push(t, OP_L2NORM, rows, cols, a, TAPE_NONE);
    if (y < 0)
        return y;
    inv = alloc_floats(t, (size_t)rows);
    if (!inv)
        return fail(t, "out of memory for l2norm");
    node(t, y)->aux = inv;
    for (int r = 0; r < rows; r++) {
        const float *x = node(t, a)->val + (size_t)r * cols;
        float *out = node(t, y)->val + (size_t)r * cols;
        double ss = eps;
        for (int j = 0; j < cols; j++)
            ss += (double)x[j] * x[j];
        inv[r] = (float)(1.0 / sqrt(ss));
        for (int j = 0; j < cols; j++)
            out[j] = x[j] * inv[r];
    }
    return y;
}

TVar tape_lstm_cell(Tape *t, TVar z, TVar c)
{
    TVar y;
    int B, H;
    float *act;
    CHECK1(z);
    B = node(t, z)->rows;
    if (node(t, z)->cols % 4)
        return fail(t, "tape: lstm_cell: gates (%d, %d): columns must be 4H", B, node(t, z)->cols);
    H = node(t, z)->cols / 4;
    if (c != TAPE_NONE) {
        CHECK1(c);
        if (node(t, c)->rows != B || node(t, c)->cols != H)
            return fail(t, "tape: lstm_cell: cell state (%d, %d) does not fit gates (%d, %d)",
                        node(t, c)->rows, node(t, c)->cols, B, 4 * H);
    }
    y = push(t, OP_LSTM, B, 2 * H, z, c);
    if (y < 0)
        return y;
    /* act (B, 5H): i, f, g, o after their nonlinearities, then tanh(c) */
    act = alloc_floats(t, (size_t)B * 5 * H);
    if (!act)
        return fail(t, "out of memory for an lstm cell");
    node(t, y)->aux = act;
    for (int r = 0; r < B; r++) {
        const float *zr = node(t, z)->val + (size_t)r * 4 * H;
        const float *cp = c != TAPE_NONE ? node(t, c)->val + (size_t)r * H : NULL;
        float *ar = act + (size_t)r * 5 * H;
        float *hr = node(t, y)->val + (size_t)r * 2 * H, *cr = hr + H;
#pragma omp simd
        for (int j = 0; j < 2 * H; j++)
            ar[j] = fast_sigmoidf(zr[j]);
#pragma omp simd
        for (int j = 2 * H; j < 3 * H; j++)
            ar[j] = fast_tanhf(zr[j]);
#pragma omp simd
        for (int j = 3 * H; j < 4 * H; j++)
            ar[j] = fast_sigmoidf(zr[j]);
        if (cp) {
#pragma omp simd
            for (int j = 0; j < H; j++)
                cr[j] = ar[j] * ar[2 * H + j] + ar[H + j] * cp[j];
        } else {
#pragma omp simd
            for (int j = 0; j < H; j++)
                cr[j] = ar[j] * ar[2 * H + j];
        }
#pragma omp simd
        for (int j = 0; j < H; j++) {
            float tc = fast_tanhf(cr[j]);
            ar[4 * H + j] = tc;
            hr[j] = ar[3 * H + j] * tc;
        }
    }
    return y;
}

TVar tape_dropout(Tape *t, TVar a, float p, Rng *r)
{
    TVar y;
    float *mask, keep;
    size_t len;
    CHECK1(a);
    if (!(p >= 0.0f && p < 1.0f))
        return fail(t, "tape: dropout: probability %g is out of range [0, 1)", (double)p);
    if (p == 0.0f)
        return a;
    y = push(t, OP_DROPOUT, node(t, a)->rows, node(t, a)->cols, a, TAPE_NONE);
    if (y < 0)
        return y;
    len = numel(node(t, y));
    mask = alloc_floats(t, len);
    if (!mask)
        return fail(t, "out of memory for a dropout mask");
    node(t, y)->aux = mask;
    keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < len; i++) {
        mask[i] = rng_uniform(r) < p ? 0.0f : keep;
        node(t, y)->val[i] = node(t, a)->val[i] * mask[i];
    }
    return y;
}

TVar tape_mse(Tape *t, TVar a, const float *target)
{
    TVar y;
    size_t len;
    float *keep;
    double s = 0;
    CHECK1(a);
    y = push(t, OP_MSE, 1, 1, a, TAPE_NONE);
    if (y < 0)
        return y;
    len = numel(node(t, a));
    keep = alloc_floats(t, len);
    if (!keep)
        return fail(t, "out of memory for mse targets");
    memcpy(keep, target, len * sizeof *keep);
    node(t, y)->aux = keep;
    for (size_t i = 0; i < len; i++) {
        double d = (double)node(t, a)->val[i] - keep[i];
        s += d * d;
    }
    node(t, y)->val[0] = (float)(s / (double)len);
    return y;
}

/* log(1 + e^x) without overflow. */
static double softplus(double x)
{
    return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
}

TVar tape_pairwise_logistic(Tape *t, TVar s, const TPair *pairs, int npairs)
{
    TVar y;
    TPair *keep;
    const float *sv;
    double sum = 0;
    int B;
    CHECK1(s);
    B = node(t, s)->rows;
    if (node(t, s)->cols != 1)
        return fail(t, "tape: pairwise_logistic: scores (%d, %d): need one column", B, node(t, s)->cols);
    if (npairs <= 0)
        return fail(t, "tape: pairwise_logistic: %d pairs: need at least one", npairs);
    for (int k = 0; k < npairs; k++)
        if (pairs[k].i < 0 || pairs[k].i >= B || pairs[k].j < 0 || pairs[k].j >= B)
            return fail(t, "tape: pairwise_logistic: pair %d (%d, %d) is out of range (0-%d)", k,
                        pairs[k].i, pairs[k].j, B - 1);
    y = push(t, OP_PAIRWISE, 1, 1, s, TAPE_NONE);
    if (y < 0)
        return y;
    keep = arena_alloc(t, (size_t)npairs * sizeof *keep);
    if (!keep)
        return fail(t, "out of memory for %d pairs", npairs);
    memcpy(keep, pairs, (size_t)npairs * sizeof *keep);
    node(t, y)->pairs = keep;
    node(t, y)->i0 = npairs;
    sv = node(t, s)->val;
    /* -l log sigmoid(d) - (1 - l) log(1 - sigmoid(d)) = softplus(d) - l d */
    for (int k = 0; k < npairs; k++) {
        double d = (double)sv[keep[k].i] - sv[keep[k].j];
        sum += softplus(d) - keep[k].label * d;
    }
    node(t, y)->val[0] = (float)(sum / npairs);
    return y;
}

TVar tape_softmax_xent(Tape *t, TVar logits, const int *labels)
{
    TVar y;
    int B, V, *keep;
    float *prob;
    double sum = 0;
    CHECK1(logits);
    B = node(t, logits)->rows;
    V = node(t, logits)->cols;
    for (int r = 0; r < B; r++)
        if (labels[r] < 0 || labels[r] >= V)
            return fail(t, "tape: softmax_xent: label %d of row %d is out of range (0-%d)", labels[r], r,
                        V - 1);
    y = push(t, OP_XENT, 1, 1, logits, TAPE_NONE);
    if (y < 0)
        return y;
    keep = arena_alloc(t, (size_t)B * sizeof *keep);
    prob = alloc_floats(t, (size_t)B * V);
    if (!keep || !prob)
        return fail(t, "out of memory for softmax_xent");
    memcpy(keep, labels, (size_t)B * sizeof *keep);
    node(t, y)->iaux = keep;
    node(t, y)->aux = prob;
    for (int r = 0; r < B; r++) {
        const float *x = node(t, logits)->val + (size_t)r * V;
        float *p = prob + (size_t)r * V;
        float mx = x[0];
        double z = 0;
        for (int j = 1; j < V; j++)
            if (x[j] > mx)
                mx = x[j];
        for (int j = 0; j < V; j++)
            z += exp((double)x[j] - mx);
        for (int j = 0; j < V; j++)
            p[j] = (float)(exp((double)x[j] - mx) / z);
        sum += log(z) + mx - x[labels[r]];
    }
    node(t, y)->val[0] = (float)(sum / B);
    return y;
}

/* ---- backward ---- */

/* Gradient buffers of an input that needs one; NULL when it needs none or
 * memory ran out (recorded). */
static float *in_grad(Tape *t, TVar x)
{
    float *g;
    if (x < 0 || !node(t, x)->req)
        return NULL;
    g = grad_of(t, x);
    if (!g)
        fail(t, "out of memory for a (%d, %d) gradient", node(t, x)->rows, node(t, x)->cols);
    return g;
}

static void backward_node(Tape *t, TVar y)
{
    const Node *Y = node(t, y);
    const float *dy = Y->grad;
    size_t len = numel(Y);
    int rows = Y->rows, cols = Y->cols;
    switch (Y->op) {
    case OP_LEAF:
        break;
    case OP_MATMUL: {
        const Node *A = node(t, Y->a), *B = node(t, Y->b);
        int ta = Y->i0, tb = Y->i1, m = rows, n = cols, k = ta ? A->rows : A->cols;
        float *da = in_grad(t, Y->a), *db = in_grad(t, Y->b);
        if (da) {
            if (!ta) /* dA (m, k) += dC op(B)^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasNoTrans : CblasTrans, m, k, n, 1.0f, dy,
                            n, B->val, B->cols, 1.0f, da, k);
            else /* dA (k, m) += op(B) dC^T */
                cblas_sgemm(CblasRowMajor, tb ? CblasTrans : CblasNoTrans, CblasTrans, k, m, n, 1.0f, B->val,
                            B->cols, dy, n, 1.0f, da, m);
        }
        if (db) {
            if (!tb) /* dB (k, n) += op(A)^T dC */
                cblas_sgemm(CblasRowMajor, ta ? CblasNoTrans : CblasTrans, CblasNoTrans, k, n, m, 1.0f, A->val,
                            A->cols, dy, n, 1.0f, db, n);
            else /* dB (n, k) += dC^T op(A) */
                cblas_sgemm(CblasRowMajor, CblasTrans, ta ? CblasTrans : CblasNoTrans, n, k, m, 1.0f, dy, n,
                            A->val, A->cols, 1.0f, db, k);
        }
        break;
    }
    case OP_ADD: {
        float *da = in_grad(t, Y->a), *db = in_grad(t, Y->b);
        if (da)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                da[i] += dy[i];
        if (db)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                db[i] += dy[i];
        break;
    }
    case OP_BIAS: {
        float *da = in_grad(t, Y->a), *db = in_grad(t, Y->b);
        if (da)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                da[i] += dy[i];
        if (db) {
            double *acc = arena_alloc(t, (size_t)cols * sizeof *acc);
            if (!acc) {
                fail(t, "out of memory for a bias gradient");
                break;
            }
            memset(acc, 0, (size_t)cols * sizeof *acc);
            for (int r = 0; r < rows; r++) {
                const float *g = dy + (size_t)r * cols;
#pragma omp simd
                for (int j = 0; j < cols; j++)
                    acc[j] += g[j];
            }
            for (int j = 0; j < cols; j++)
                db[j] += (float)acc[j];
        }
        break;
    }
    case OP_MUL: {
        const float *x1 = node(t, Y->a)->val, *x2 = node(t, Y->b)->val;
        float *da = in_grad(t, Y->a), *db = in_grad(t, Y->b);
        if (da)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                da[i] += dy[i] * x2[i];
        if (db)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                db[i] += dy[i] * x1[i];
        break;
    }
    case OP_SCALE: {
        float *da = in_grad(t, Y->a);
        if (da)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                da[i] += Y->f0 * dy[i];
        break;
    }
    case OP_TANH: {
        float *da = in_grad(t, Y->a);
        if (da)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                da[i] += dy[i] * (1.0f - Y->val[i] * Y->val[i]);
        break;
    }
    case OP_SIGMOID: {
        float *da = in_grad(t, Y->a);
        if (da)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                da[i] += dy[i] * Y->val[i] * (1.0f - Y->val[i]);
        break;
    }
    case OP_RELU: {
        float *da = in_grad(t, Y->a);
        const float *x = node(t, Y->a)->val;
        if (da)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                da[i] += x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    }
    case OP_EMBED: {
        float *da = in_grad(t, Y->a);
        if (da)
            for (int r = 0; r < rows; r++) {
                float *d = da + (size_t)Y->iaux[r] * cols;
                const float *g = dy + (size_t)r * cols;
                for (int j = 0; j < cols; j++)
                    d[j] += g[j];
            }
        break;
    }
    case OP_CONCAT_COLS:
    case OP_CONCAT_ROWS: {
        int off = 0;
        for (int k = 0; k < Y->nlist; k++) {
            TVar x = Y->list[k];
            const Node *X = node(t, x);
            float *dx = in_grad(t, x);
            if (dx) {
                if (Y->op == OP_CONCAT_COLS)
                    for (int r = 0; r < rows; r++)
                        for (int j = 0; j < X->cols; j++)
                            dx[(size_t)r * X->cols + j] += dy[(size_t)r * cols + off + j];
                else
                    for (size_t i = 0; i < numel(X); i++)
                        dx[i] += dy[(size_t)off * cols + i];
            }
            off += Y->op == OP_CONCAT_COLS ? X->cols : X->rows;
        }
        break;
    }
    case OP_SLICE_COLS: {
        float *da = in_grad(t, Y->a);
        int acols = node(t, Y->a)->cols;
        if (da)
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++)
                    da[(size_t)r * acols + Y->i0 + j] += dy[(size_t)r * cols + j];
        break;
    }
    case OP_SLICE_ROWS: {
        float *da = in_grad(t, Y->a);
        if (da)
            for (size_t i = 0; i < len; i++)
                da[(size_t)Y->i0 * cols + i] += dy[i];
        break;
    }
    case OP_SUM_COLS: {
        float *da = in_grad(t, Y->a);
        int acols = node(t, Y->a)->cols;
        if (da)
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < acols; j++)
                    da[(size_t)r * acols + j] += dy[r];
        break;
    }
    case OP_MEAN_ROWS: {
        float *da = in_grad(t, Y->a);
        int arows = node(t, Y->a)->rows;
        if (da)
            for (int r = 0; r < arows; r++)
                for (int j = 0; j < cols; j++)
                    da[(size_t)r * cols + j] += dy[j] / (float)arows;
        break;
    }
    case OP_MEAN: {
        float *da = in_grad(t, Y->a);
        size_t alen = numel(node(t, Y->a));
        if (da)
            for (size_t i = 0; i < alen; i++)
                da[i] += dy[0] / (float)alen;
        break;
    }
    case OP_L2NORM: {
        /* y = x / s: dx = (dy - y (y . dy)) / s */
        float *da = in_grad(t, Y->a);
        if (da)
            for (int r = 0; r < rows; r++) {
                const float *yr = Y->val + (size_t)r * cols, *g = dy + (size_t)r * cols;
                float *d = da + (size_t)r * cols;
                double dot = 0;
                for (int j = 0; j < cols; j++)
                    dot += (double)yr[j] * g[j];
                for (int j = 0; j < cols; j++)
                    d[j] += (g[j] - yr[j] * (float)dot) * Y->aux[r];
            }
        break;
    }
    case OP_LSTM: {
        int H = cols / 2;
        float *dz = in_grad(t, Y->a), *dc = Y->b != TAPE_NONE ? in_grad(t, Y->b) : NULL;
        const float *cprev = Y->b != TAPE_NONE ? node(t, Y->b)->val : NULL;
        float *dcell;
        if (!dz && !dc)
            break;
        if (!(dcell = alloc_floats(t, (size_t)H))) {
            fail(t, "out of memory for an lstm backward");
            break;
        }
        for (int r = 0; r < rows; r++) {
            const float *ig = Y->aux + (size_t)r * 5 * H, *fg = ig + H, *gg = fg + H, *og = gg + H, *tc = og + H;
            const float *gh = dy + (size_t)r * 2 * H, *gc = gh + H;
            const float *cp = cprev ? cprev + (size_t)r * H : NULL;
            float *d = dz ? dz + (size_t)r * 4 * H : NULL;
#pragma omp simd
            for (int j = 0; j < H; j++)
                dcell[j] = gc[j] + gh[j] * og[j] * (1.0f - tc[j] * tc[j]);
            if (d) {
#pragma omp simd
                for (int j = 0; j < H; j++) {
                    d[j] += dcell[j] * gg[j] * ig[j] * (1.0f - ig[j]);
                    d[2 * H + j] += dcell[j] * ig[j] * (1.0f - gg[j] * gg[j]);
                    d[3 * H + j] += gh[j] * tc[j] * og[j] * (1.0f - og[j]);
                }
                if (cp) {
#pragma omp simd
                    for (int j = 0; j < H; j++)
                        d[H + j] += dcell[j] * cp[j] * fg[j] * (1.0f - fg[j]);
                }
            }
            if (dc) {
                float *dcr = dc + (size_t)r * H;
#pragma omp simd
                for (int j = 0; j < H; j++)
                    dcr[j] += dcell[j] * fg[j];
            }
        }
        break;
    }
    case OP_DROPOUT: {
        float *da = in_grad(t, Y->a);
        if (da)
            #pragma omp simd
            for (size_t i = 0; i < len; i++)
                da[i] += dy[i] * Y->aux[i];
        break;
    }
    case OP_MSE: {
        float *da = in_grad(t, Y->a);
        size_t alen = numel(node(t, Y->a));
        const float *x = node(t, Y->a)->val;
        if (da)
            for (size_t i = 0; i < alen; i++)
                da[i] += dy[0] * 2.0f * (x[i] - Y->aux[i]) / (float)alen;
        break;
    }
    case OP_PAIRWISE: {
        float *da = in_grad(t, Y->a);
        const float *s = node(t, Y->a)->val;
        int np = Y->i0;
        if (da)
            for (int k = 0; k < np; k++) {
                const TPair *p = &Y->pairs[k];
                double d = (double)s[p->i] - s[p->j];
                float g = (float)((1.0 / (1.0 + exp(-d)) - p->label) / np) * dy[0];
                da[p->i] += g;
                da[p->j] -= g;
            }
        break;
    }
    case OP_XENT: {
        float *da = in_grad(t, Y->a);
        int B = node(t, Y->a)->rows, V = node(t, Y->a)->cols;
        if (da)
            for (int r = 0; r < B; r++) {
                const float *p = Y->aux + (size_t)r * V;
                float *d = da + (size_t)r * V, s = dy[0] / (float)B;
                for (int j = 0; j < V; j++)
                    d[j] += s * (p[j] - (j == Y->iaux[r] ? 1.0f : 0.0f));
            }
        break;
    }
    }
}

int tape_backward(Tape *t, TVar y, const float *seed, XErr *e)
{
    Node *Y;
    float *g;
    if (t->failed)
        return tape_status(t, e);
    if (y < 0 || y >= t->n)
        return xerr_set(e, XE_FAIL, "tape: backward from no such value %d", y);
    Y = node(t, y);
    if (!seed && (Y->rows != 1 || Y->cols != 1))
        return xerr_set(e, XE_FAIL, "tape: backward from a (%d, %d) value needs a seed gradient", Y->rows,
                        Y->cols);
    if (!Y->req)
        return XE_OK;
    g = grad_of(t, y);
    if (!g)
        return xerr_set(e, XE_FAIL, "out of memory for a gradient");
    if (seed)
        for (size_t i = 0; i < numel(Y); i++)
            g[i] += seed[i];
    else
        g[0] += 1.0f;
    for (TVar x = y; x >= 0; x--) {
        if (!node(t, x)->req || !node(t, x)->grad)
            continue;
        backward_node(t, x);
        if (t->failed)
            return tape_status(t, e);
    }
    return XE_OK;
}
