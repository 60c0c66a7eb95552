/* The XferNAS predictor: members built from the layers, the joint training
 * loop, residual fits for new tasks, predictions, NAO's proposal step and
 * the model blob. */
#include "core/clock.h"
#include "model/xfer.h"
#include "model/blob.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

/* Rows per tape when predicting or encoding. */
#define XFER_EVAL_BATCH 1024

typedef struct Member {
    TParams ps;
    SeqEncoder enc;
    SeqDecoder dec;
    Mlp gu;
    Mlp *res;        /* one per task */
    int res_cap;
} Member;

struct XferModel {
    XferConfig cfg;
    int ntasks;
    int fitted;
    unsigned char *kind;    /* per task: its residual's ResKind */
    int kind_cap;
    Member *mem;            /* cfg.ensemble, built when fitted */
};

/* ---- config ---- */

void xfer_config_default(XferConfig *c, int token_len, int vocab)
{
    *c = (XferConfig){
        .token_len = token_len,
        .vocab = vocab,
        .embed = 16,
        .hidden = 32,
        .code = SEQ_CODE_MEAN,
        .mlp = 64,
        .mlp_depth = 2,
        .res_hidden = 16,
        .alpha = 0.8f,
        .res_l2 = 0.1f,
        .lr = 1e-2f,
        .wd = 1e-4f,
        .clip = 5.0f,
        .dropout = 0.0f,
        .epochs = 20,
        .batch = 128,
        .ensemble = 1,
        .seed = 1,
    };
}

static int range_i(const char *name, int v, int lo, int hi, XErr *e)
{
    if (v < lo || v > hi)
        return xerr_set(e, XE_USAGE, "xfer config: %s %d is out of range (%d-%d)", name, v, lo, hi);
    return XE_OK;
}

static int range_f(const char *name, float v, float lo, float hi, XErr *e)
{
    if (!(v >= lo && v <= hi))
        return xerr_set(e, XE_USAGE, "xfer config: %s %g is out of range (%g-%g)", name, (double)v, (double)lo,
                        (double)hi);
    return XE_OK;
}

int xfer_config_check(const XferConfig *c, XErr *e)
{
    int rc;
    if ((rc = range_i("token_len", c->token_len, 1, 256, e)) || (rc = range_i("vocab", c->vocab, 2, 1024, e)) ||
        (rc = range_i("embed", c->embed, 1, 1024, e)) || (rc = range_i("hidden", c->hidden, 1, 1024, e)) ||
        (rc = range_i("code", (int)c->code, 0, 1, e)) || (rc = range_i("mlp", c->mlp, 1, 4096, e)) ||
        (rc = range_i("mlp_depth", c->mlp_depth, 0, MLP_MAX_DEPTH, e)) ||
        (rc = range_i("res_hidden", c->res_hidden, 1, 1024, e)) ||
        (rc = range_f("alpha", c->alpha, 0.0f, 1.0f, e)) || (rc = range_f("res_l2", c->res_l2, 0.0f, 1e6f, e)) ||
        (rc = range_f("lr", c->lr, 1e-9f, 10.0f, e)) || (rc = range_f("wd", c->wd, 0.0f, 10.0f, e)) ||
        (rc = range_f("clip", c->clip, 0.0f, 1e9f, e)) || (rc = range_f("dropout", c->dropout, 0.0f, 0.95f, e)) ||
        (rc = range_i("epochs", c->epochs, 1, 1000000, e)) || (rc = range_i("batch", c->batch, 1, 65536, e)) ||
        (rc = range_i("ensemble", c->ensemble, 1, 64, e)) || (rc = range_i("threads", c->threads, 0, 1024, e)))
        return rc;
    return XE_OK;
}

/* ---- members ---- */

/* What a task's residual is: the source tasks' MLP (and an MLP fit's), or
 * a ridge fit's linear map of the code, or of the code and g_u's last
 * hidden layer (g_u's output layer, in effect, lightly tuned). */
typedef enum {
    RES_MLP = 0,
    RES_LINEAR = 1,
    RES_LINEAR_GU = 2,
} ResKind;

/* Inputs of a residual of kind k. */
static int res_inputs(const XferConfig *c, int k)
{
    return k == RES_LINEAR_GU && c->mlp_depth > 0 ? c->hidden + c->mlp : c->hidden;
}

/* The seed of member k's initialisation, of its batches, and of task t's
 * residual (independent streams of one config seed). */
static uint64_t member_seed(const XferConfig *c, int k, uint64_t what)
{
    return c->seed * 0x9e3779b97f4a7c15ull + (uint64_t)k * 0xbf58476d1ce4e5b9ull + what;
}

/* Task t's residual: one hidden layer of res_hidden, or linear. */
static int member_add_task(Member *mb, const XferConfig *c, Rng *r, int task, int kind, XErr *e)
{
    int rc;
    if (task == mb->res_cap) {
        int cap = mb->res_cap ? 2 * mb->res_cap : 8;
        Mlp *nr = realloc(mb->res, (size_t)cap * sizeof *nr);
        if (!nr)
            return xerr_set(e, XE_FAIL, "out of memory for task residuals");
        mb->res = nr;
        mb->res_cap = cap;
    }
    if ((rc = mlp_init(&mb->res[task], &mb->ps, res_inputs(c, kind), c->res_hidden, kind == RES_MLP, 1, r, e)))
        return rc;
    mlp_zero_output(&mb->res[task], &mb->ps);
    return XE_OK;
}

static void member_release(Member *mb)
{
    tparams_release(&mb->ps);
    free(mb->res);
    memset(mb, 0, sizeof *mb);
}

/* Builds member k's layers for ntasks tasks, freshly initialised. */
static int member_build(Member *mb, const XferConfig *c, int k, int ntasks, const unsigned char *kind, XErr *e)
{
    Rng r;
    int rc;
    memset(mb, 0, sizeof *mb);
    tparams_init(&mb->ps);
    rng_seed(&r, member_seed(c, k, 1));
    if ((rc = seq_encoder_init(&mb->enc, &mb->ps, c->vocab, c->token_len, c->embed, c->hidden, c->code, &r, e)) ||
        (rc = seq_decoder_init(&mb->dec, &mb->ps, c->vocab, c->token_len, c->embed, c->hidden, &r, e)) ||
        (rc = mlp_init(&mb->gu, &mb->ps, c->hidden, c->mlp, c->mlp_depth, 1, &r, e)))
        return rc;
    for (int t = 0; t < ntasks; t++)
        if ((rc = member_add_task(mb, c, &r, t, kind[t], e)))
            return rc;
    return XE_OK;
}

static void members_free(XferModel *m)
{
    if (m->mem)
        for (int k = 0; k < m->cfg.ensemble; k++)
            member_release(&m->mem[k]);
    free(m->mem);
    m->mem = NULL;
    m->fitted = 0;
    m->ntasks = 0;
}

/* Room for task flags up to n tasks. */
static int reserve_tasks(XferModel *m, int n, XErr *e)
{
    if (n > m->kind_cap) {
        int cap = m->kind_cap ? m->kind_cap : 8;
        unsigned char *nk;
        while (cap < n)
            cap *= 2;
        nk = realloc(m->kind, (size_t)cap);
        if (!nk)
            return xerr_set(e, XE_FAIL, "out of memory for %d tasks", n);
        memset(nk + m->kind_cap, 0, (size_t)(cap - m->kind_cap));
        m->kind = nk;
        m->kind_cap = cap;
    }
    return XE_OK;
}

/* Fresh members for ntasks tasks whose residual kinds m->kind holds. */
static int members_build(XferModel *m, int ntasks, XErr *e)
{
    int rc;
    members_free(m);
    m->mem = calloc((size_t)m->cfg.ensemble, sizeof *m->mem);
    if (!m->mem)
        return xerr_set(e, XE_FAIL, "out of memory for %d ensemble members", m->cfg.ensemble);
    for (int k = 0; k < m->cfg.ensemble; k++)
        if ((rc = member_build(&m->mem[k], &m->cfg, k, ntasks, m->kind, e))) {
            members_free(m);
            return rc;
        }
    m->ntasks = ntasks;
    return XE_OK;
}

int xfer_new(XferModel **out, const XferConfig *c, XErr *e)
{
    XferModel *m;
    int rc;
    if ((rc = xfer_config_check(c, e)))
        return rc;
    m = calloc(1, sizeof *m);
    if (!m)
        return xerr_set(e, XE_FAIL, "out of memory for a model");
    m->cfg = *c;
    *out = m;
    return XE_OK;
}

void xfer_free(XferModel *m)
{
    if (!m)
        return;
    members_free(m);
    free(m->kind);
    free(m);
}

const XferConfig *xfer_config(const XferModel *m)
{
    return &m->cfg;
}

int xfer_ntasks(const XferModel *m)
{
    return m->ntasks;
}

size_t xfer_param_count(const XferModel *m)
{
    return m->mem ? m->mem[0].ps.size : 0;
}

/* Floats per member for a config and its tasks' residual kinds: the
 * layout member_build makes (checked against it on load). */
static size_t param_count(const XferConfig *c, int ntasks, const unsigned char *kind)
{
    size_t V = (size_t)c->vocab, E = (size_t)c->embed, H = (size_t)c->hidden, M = (size_t)c->mlp;
    size_t R = (size_t)c->res_hidden, lstm = E * 4 * H + H * 4 * H + 4 * H;
    size_t enc = V * E + lstm, dec = (V + 1) * E + lstm + H * 4 * H + H * V + V;
    size_t gu = c->mlp_depth ? H * M + M + (size_t)(c->mlp_depth - 1) * (M * M + M) + M + 1 : H + 1;
    size_t n = enc + dec + gu;
    for (int t = 0; t < ntasks; t++)
        n += kind[t] == RES_MLP ? H * R + R + R + 1 : (size_t)res_inputs(c, kind[t]) + 1;
    return n;
}

/* ---- checks ---- */

static int check_tokens(const XferConfig *c, int n, const int *tokens, XErr *e)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c->token_len; k++) {
            int v = tokens[(size_t)i * c->token_len + k];
            if (v < 0 || v >= c->vocab)
                return xerr_set(e, XE_FAIL, "row %d: token %d at %d is out of range (0-%d)", i, v, k,
                                c->vocab - 1);
        }
    return XE_OK;
}

static int check_targets(int n, const float *y, XErr *e)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return xerr_set(e, XE_FAIL, "row %d: target %g is not finite", i, (double)y[i]);
    return XE_OK;
}

static int check_fitted(const XferModel *m, XErr *e)
{
    if (!m->fitted)
        return xerr_set(e, XE_FAIL, "xfer model: not fitted");
    return XE_OK;
}

/* ---- forward pieces ---- */

/* g_u(h) + r_t(h) over rows sorted by task: segment s is seg_len[s] rows
 * of task seg_task[s]. With rout, the residual column (B, 1) is written. */
static TVar heads_by_task(Tape *t, Member *mb, TVar code, const int *seg_task, const int *seg_len, int nseg,
                          float p, Rng *r, TVar *rout)
{
    TVar g = mlp_forward(t, &mb->ps, &mb->gu, code, p, r);
    TVar rs[64], *parts = rs, res;
    int off = 0;
    if (nseg > 64 && !(parts = tape_scratch(t, (size_t)nseg * sizeof *parts)))
        return TAPE_NONE;
    for (int s = 0; s < nseg; s++) {
        TVar h = nseg == 1 ? code : tape_slice_rows(t, code, off, seg_len[s]);
        parts[s] = mlp_forward(t, &mb->ps, &mb->res[seg_task[s]], h, p, r);
        off += seg_len[s];
    }
    res = nseg == 1 ? parts[0] : tape_concat_rows(t, parts, nseg);
    if (rout)
        *rout = res;
    return tape_add(t, g, res);
}

/* g_u(code) and its last hidden layer in *phi (the code when it has none):
 * the ops of mlp_forward without dropout. */
static TVar universal_forward(Tape *t, Member *mb, TVar code, TVar *phi)
{
    TVar x = code;
    for (int k = 0; k < mb->gu.depth; k++)
        x = tape_relu(t, linear_forward(t, &mb->ps, &mb->gu.layer[k], x));
    *phi = x;
    return linear_forward(t, &mb->ps, &mb->gu.layer[mb->gu.depth], x);
}

/* Task i's residual (no dropout); kind RES_LINEAR_GU also reads phi. */
static TVar residual_forward(Tape *t, const XferModel *m, Member *mb, int i, TVar code, TVar phi)
{
    TVar in = code;
    if (m->kind[i] == RES_LINEAR_GU && mb->gu.depth > 0) {
        TVar xs[2] = {code, phi};
        in = tape_concat_cols(t, xs, 2);
    }
    return mlp_forward(t, &mb->ps, &mb->res[i], in, 0, NULL);
}

/* g_u(h) + sum_i w_i r_i(h) (task < 0: weights;  otherwise w = one-hot task;
 * w NULL and task < 0: g_u alone). No dropout. */
static TVar heads_eval(Tape *t, const XferModel *m, Member *mb, TVar code, int task, const float *w)
{
    TVar phi, f = universal_forward(t, mb, code, &phi);
    if (task >= 0)
        return tape_add(t, f, residual_forward(t, m, mb, task, code, phi));
    if (w)
        for (int i = 0; i < m->ntasks; i++)
            if (w[i] != 0.0f)
                f = tape_add(t, f, tape_scale(t, residual_forward(t, m, mb, i, code, phi), w[i]));
    return f;
}

/* ---- fit ---- */

typedef struct FitData {
    int n, ntasks;
    const int *task, *tokens;
    const float *y;
} FitData;

/* Batch buffers: rows of one mini-batch sorted by task. */
typedef struct Batch {
    int *idx, *tokens, *seg_task, *seg_len, *count;
    float *y;
} Batch;

static void batch_release(Batch *b)
{
    free(b->idx);
    free(b->tokens);
    free(b->seg_task);
    free(b->seg_len);
    free(b->count);
    free(b->y);
}

static int batch_init(Batch *b, const XferConfig *c, int ntasks, XErr *e)
{
    size_t B = (size_t)c->batch;
    memset(b, 0, sizeof *b);
    b->idx = malloc(B * sizeof *b->idx);
    b->tokens = malloc(B * (size_t)c->token_len * sizeof *b->tokens);
    b->seg_task = malloc((size_t)ntasks * sizeof *b->seg_task);
    b->seg_len = malloc((size_t)ntasks * sizeof *b->seg_len);
    b->count = malloc((size_t)ntasks * sizeof *b->count);
    b->y = malloc(B * sizeof *b->y);
    if (!b->idx || !b->tokens || !b->seg_task || !b->seg_len || !b->count || !b->y) {
        batch_release(b);
        return xerr_set(e, XE_FAIL, "out of memory for a batch");
    }
    return XE_OK;
}

/* Gathers rows perm[0..B) into b, grouped by task (stable); returns the
 * number of task segments. */
static int batch_gather(Batch *b, const FitData *d, int L, const uint32_t *perm, int B)
{
    int nseg = 0, pos = 0;
    memset(b->count, 0, (size_t)d->ntasks * sizeof *b->count);
    for (int i = 0; i < B; i++)
        b->count[d->task[perm[i]]]++;
    for (int t = 0; t < d->ntasks; t++)
        if (b->count[t]) {
            b->seg_task[nseg] = t;
            b->seg_len[nseg++] = b->count[t];
            b->count[t] = pos; /* start of task t */
            pos += b->seg_len[nseg - 1];
        }
    for (int i = 0; i < B; i++) {
        int row = (int)perm[i], at = b->count[d->task[row]]++;
        b->idx[at] = row;
    }
    for (int i = 0; i < B; i++) {
        memcpy(b->tokens + (size_t)i * L, d->tokens + (size_t)b->idx[i] * L, (size_t)L * sizeof *b->tokens);
        b->y[i] = d->y[b->idx[i]];
    }
    return nseg;
}

/* Trains member k; stops early when *stop is set (another member failed). */
static int fit_member(XferModel *m, int k, const FitData *d, XferEpochFn fn, void *ctx, double t0,
                      volatile int *stop, XErr *e)
{
    const XferConfig *c = &m->cfg;
    Member *mb = &m->mem[k];
    Tape *t = NULL;
    Batch b;
    uint32_t *perm = NULL;
    Rng r;
    long steps = 0, total = (long)c->epochs * ((d->n + c->batch - 1) / c->batch);
    int rc;
    if ((rc = batch_init(&b, c, d->ntasks, e)))
        return rc;
    perm = malloc((size_t)d->n * sizeof *perm);
    if (!perm) {
        rc = xerr_set(e, XE_FAIL, "out of memory for %d rows", d->n);
        goto cleanup;
    }
    if ((rc = tape_new(&t, e)))
        goto cleanup;
    for (int i = 0; i < d->n; i++)
        perm[i] = (uint32_t)i;
    rng_seed(&r, member_seed(c, k, 2));
    for (int ep = 0; ep < c->epochs; ep++) {
        XferEpoch st = {.member = k, .epoch = ep + 1, .epochs = c->epochs};
        long correct = 0;
        rng_shuffle_u32(&r, perm, (uint32_t)d->n);
        for (int b0 = 0; b0 < d->n; b0 += c->batch) {
            int B = d->n - b0 < c->batch ? d->n - b0 : c->batch;
            int nseg = batch_gather(&b, d, c->token_len, perm + b0, B);
            TVar code, rec, pred, res = TAPE_NONE, loss;
            TAdam o = tadam_default(c->lr * 0.5f * (1.0f + cosf(3.14159265f * (float)steps / (float)total)),
                                    c->wd);
            tape_reset(t);
            code = seq_encode(t, &mb->ps, &mb->enc, b.tokens, B, c->dropout, &r);
            rec = seq_decode_loss(t, &mb->ps, &mb->dec, code, b.tokens, B, &correct);
            pred = heads_by_task(t, mb, code, b.seg_task, b.seg_len, nseg, c->dropout, &r, &res);
            pred = tape_mse(t, pred, b.y);
            loss = tape_add(t, tape_scale(t, pred, c->alpha), tape_scale(t, rec, 1.0f - c->alpha));
            if (c->res_l2 > 0)
                loss = tape_add(t, loss, tape_scale(t, tape_mean(t, tape_mul(t, res, res)), c->res_l2));
            tparams_zero_grad(&mb->ps);
            if ((rc = tape_backward(t, loss, NULL, e)))
                goto cleanup;
            if (!isfinite(tape_value(t, loss)[0])) {
                rc = xerr_set(e, XE_FAIL, "xfer fit: diverged (loss %g) at epoch %d", (double)tape_value(t, loss)[0],
                              ep + 1);
                goto cleanup;
            }
            tparams_clip_grad(&mb->ps, c->clip);
            tparams_adam(&mb->ps, &o);
            steps++;
            st.loss_pred += (double)tape_value(t, pred)[0] * B;
            st.loss_rec += (double)tape_value(t, rec)[0] * B;
        }
        st.loss_pred /= d->n;
        st.loss_rec /= d->n;
        st.rec_acc = (double)correct / ((double)d->n * c->token_len);
        st.seconds = xfer_clock() - t0;
        if ((rc = xerr_check_interrupt(e)))
            goto cleanup;
        if (fn) {
#pragma omp critical(xfer_epoch_fn)
            rc = fn(ctx, &st, e);
            if (rc)
                goto cleanup;
        }
        if (*stop)
            break;
    }
cleanup:
    tape_free(t);
    free(perm);
    batch_release(&b);
    return rc;
}

int xfer_fit(XferModel *m, int ntasks, int n, const int *task, const int *tokens, const float *y,
             XferEpochFn fn, void *ctx, XErr *e)
{
    FitData d = {.n = n, .ntasks = ntasks, .task = task, .tokens = tokens, .y = y};
    double t0 = xfer_clock();
    int rc;
    if (ntasks < 1 || ntasks > 100000)
        return xerr_set(e, XE_FAIL, "xfer fit: %d tasks: need 1-100000", ntasks);
    if (n < 1)
        return xerr_set(e, XE_FAIL, "xfer fit: no rows to fit");
    for (int i = 0; i < n; i++)
        if (task[i] < 0 || task[i] >= ntasks)
            return xerr_set(e, XE_FAIL, "row %d: task %d is out of range (0-%d)", i, task[i], ntasks - 1);
    if ((rc = check_tokens(&m->cfg, n, tokens, e)) || (rc = check_targets(n, y, e)))
        return rc;
    if ((rc = reserve_tasks(m, ntasks, e)))
        return rc;
    memset(m->kind, RES_MLP, (size_t)ntasks);
    if ((rc = members_build(m, ntasks, e)))
        return rc;
    {
        int E = m->cfg.ensemble, nth = m->cfg.threads > 0 ? m->cfg.threads : omp_get_max_threads();
        int *rcs = calloc((size_t)E, sizeof *rcs);
        XErr *errs = calloc((size_t)E, sizeof *errs);
        volatile int stop = 0;
        if (!rcs || !errs) {
            free(rcs);
            free(errs);
            members_free(m);
            return xerr_set(e, XE_FAIL, "out of memory for %d ensemble members", E);
        }
        /* Members are independent: fitted side by side, each on one core. */
#pragma omp parallel for num_threads(nth < E ? nth : E) schedule(dynamic, 1)
        for (int k = 0; k < E; k++) {
            rcs[k] = fit_member(m, k, &d, fn, ctx, t0, &stop, &errs[k]);
            if (rcs[k])
                stop = 1;
        }
        for (int k = 0; k < E && !rc; k++)
            if ((rc = rcs[k]))
                xerr_set(e, rc, "%s", errs[k].msg);
        free(rcs);
        free(errs);
    }
    if (rc) {
        members_free(m);
        return rc;
    }
    m->fitted = 1;
    return XE_OK;
}

/* ---- evaluation ---- */

/* Codes of rows [0, n) of member mb into codes (n, hidden). */
static int encode_all(Tape *t, Member *mb, const XferConfig *c, int n, const int *tokens, float *codes, XErr *e)
{
    for (int b0 = 0; b0 < n; b0 += XFER_EVAL_BATCH) {
        int B = n - b0 < XFER_EVAL_BATCH ? n - b0 : XFER_EVAL_BATCH;
        TVar code;
        tape_reset(t);
        code = seq_encode(t, &mb->ps, &mb->enc, tokens + (size_t)b0 * c->token_len, B, 0, NULL);
        if (tape_status(t, e))
            return XE_FAIL;
        memcpy(codes + (size_t)b0 * c->hidden, tape_value(t, code), (size_t)B * c->hidden * sizeof *codes);
    }
    return XE_OK;
}

static int predict_common(const XferModel *m, int task, const float *w, int n, const int *tokens, float *mean,
                          float *std, XErr *e)
{
    const XferConfig *c = &m->cfg;
    Tape *t = NULL;
    double *sum = NULL, *sq = NULL;
    int rc;
    if ((rc = check_fitted(m, e)))
        return rc;
    if (task < -1 || task >= m->ntasks)
        return xerr_set(e, XE_FAIL, "xfer predict: task %d is out of range (-1-%d)", task, m->ntasks - 1);
    if (n < 0)
        return xerr_set(e, XE_FAIL, "xfer predict: %d rows", n);
    if (n == 0)
        return XE_OK;
    if ((rc = check_tokens(c, n, tokens, e)))
        return rc;
    sum = calloc((size_t)n, sizeof *sum);
    sq = calloc((size_t)n, sizeof *sq);
    if (!sum || !sq) {
        rc = xerr_set(e, XE_FAIL, "out of memory for %d predictions", n);
        goto cleanup;
    }
    if ((rc = tape_new(&t, e)))
        goto cleanup;
    tape_freeze_params(t, 1);
    for (int k = 0; k < c->ensemble; k++) {
        Member *mb = &m->mem[k]; /* only read: the tape's parameters are frozen */
        for (int b0 = 0; b0 < n; b0 += XFER_EVAL_BATCH) {
            int B = n - b0 < XFER_EVAL_BATCH ? n - b0 : XFER_EVAL_BATCH;
            TVar code, f;
            const float *fv;
            tape_reset(t);
            code = seq_encode(t, &mb->ps, &mb->enc, tokens + (size_t)b0 * c->token_len, B, 0, NULL);
            f = heads_eval(t, m, mb, code, task, w);
            if ((rc = tape_status(t, e)))
                goto cleanup;
            fv = tape_value(t, f);
            for (int i = 0; i < B; i++) {
                sum[b0 + i] += fv[i];
                sq[b0 + i] += (double)fv[i] * fv[i];
            }
        }
    }
    for (int i = 0; i < n; i++) {
        double mu = sum[i] / c->ensemble, var = sq[i] / c->ensemble - mu * mu;
        mean[i] = (float)mu;
        if (std)
            std[i] = c->ensemble > 1 && var > 0 ? (float)sqrt(var) : 0.0f;
    }
cleanup:
    tape_free(t);
    free(sum);
    free(sq);
    return rc;
}

int xfer_predict(const XferModel *m, int task, int n, const int *tokens, float *mean, float *std, XErr *e)
{
    return predict_common(m, task, NULL, n, tokens, mean, std, e);
}

int xfer_predict_weighted(const XferModel *m, const float *weights, int n, const int *tokens, float *mean,
                          float *std, XErr *e)
{
    if (m->fitted)
        for (int i = 0; i < m->ntasks; i++)
            if (!isfinite(weights[i]))
                return xerr_set(e, XE_FAIL, "xfer predict: weight of task %d is not finite", i);
    return predict_common(m, -1, weights, n, tokens, mean, std, e);
}

int xfer_encode(const XferModel *m, int n, const int *tokens, float *codes, XErr *e)
{
    Tape *t;
    int rc;
    if ((rc = check_fitted(m, e)) || (rc = check_tokens(&m->cfg, n, tokens, e)) || (rc = tape_new(&t, e)))
        return rc;
    tape_freeze_params(t, 1);
    rc = encode_all(t, &m->mem[0], &m->cfg, n, tokens, codes, e);
    tape_free(t);
    return rc;
}

/* Greedy decodes of codes (n, hidden) by member 0. */
static int decode_all(Tape *t, Member *mb, const XferConfig *c, int n, const float *codes, int *tokens_out, XErr *e)
{
    for (int b0 = 0; b0 < n; b0 += XFER_EVAL_BATCH) {
        int B = n - b0 < XFER_EVAL_BATCH ? n - b0 : XFER_EVAL_BATCH;
        TVar code;
        tape_reset(t);
        code = tape_input(t, B, c->hidden, codes + (size_t)b0 * c->hidden, 0);
        if (seq_decode_greedy(t, &mb->ps, &mb->dec, code, B, tokens_out + (size_t)b0 * c->token_len, e))
            return XE_FAIL;
    }
    return XE_OK;
}

int xfer_reconstruct(const XferModel *m, int n, const int *tokens, int *tokens_out, XErr *e)
{
    Tape *t = NULL;
    float *codes = NULL;
    int rc;
    if ((rc = check_fitted(m, e)) || (rc = check_tokens(&m->cfg, n, tokens, e)))
        return rc;
    if (n <= 0)
        return XE_OK;
    codes = malloc((size_t)n * m->cfg.hidden * sizeof *codes);
    if (!codes)
        return xerr_set(e, XE_FAIL, "out of memory for %d codes", n);
    if ((rc = tape_new(&t, e)))
        goto cleanup;
    tape_freeze_params(t, 1);
    if ((rc = encode_all(t, &m->mem[0], &m->cfg, n, tokens, codes, e)))
        goto cleanup;
    rc = decode_all(t, &m->mem[0], &m->cfg, n, codes, tokens_out, e);
cleanup:
    tape_free(t);
    free(codes);
    return rc;
}

int xfer_propose(const XferModel *m, int task, int n, const int *tokens_in, float step_size, int steps,
                 int *tokens_out, XErr *e)
{
    const XferConfig *c = &m->cfg;
    Member *mb;
    Tape *t = NULL;
    float *codes = NULL, *ones = NULL;
    int rc, H = c->hidden;
    if ((rc = check_fitted(m, e)) || (rc = check_tokens(c, n, tokens_in, e)))
        return rc;
    if (task < -1 || task >= m->ntasks)
        return xerr_set(e, XE_FAIL, "xfer propose: task %d is out of range (-1-%d)", task, m->ntasks - 1);
    if (steps < 0 || !isfinite(step_size))
        return xerr_set(e, XE_FAIL, "xfer propose: %d steps of size %g", steps, (double)step_size);
    if (n <= 0)
        return XE_OK;
    mb = &m->mem[0];
    codes = malloc((size_t)n * H * sizeof *codes);
    ones = malloc(XFER_EVAL_BATCH * sizeof *ones);
    if (!codes || !ones) {
        rc = xerr_set(e, XE_FAIL, "out of memory for %d codes", n);
        goto cleanup;
    }
    for (int i = 0; i < XFER_EVAL_BATCH; i++)
        ones[i] = 1.0f;
    if ((rc = tape_new(&t, e)))
        goto cleanup;
    tape_freeze_params(t, 1);
    if ((rc = encode_all(t, mb, c, n, tokens_in, codes, e)))
        goto cleanup;
    for (int b0 = 0; b0 < n; b0 += XFER_EVAL_BATCH) {
        int B = n - b0 < XFER_EVAL_BATCH ? n - b0 : XFER_EVAL_BATCH;
        float *h = codes + (size_t)b0 * H;
        for (int s = 0; s < steps; s++) {
            TVar hv, f;
            const float *g;
            tape_reset(t);
            hv = tape_input(t, B, H, h, 1);
            f = heads_eval(t, m, mb, hv, task, NULL);
            if ((rc = tape_backward(t, f, ones, e)))
                goto cleanup;
            g = tape_grad(t, hv);
            for (int i = 0; i < B; i++) {
                float *hr = h + (size_t)i * H;
                double ss = 0;
                for (int j = 0; j < H; j++) {
                    hr[j] += step_size * g[(size_t)i * H + j];
                    ss += (double)hr[j] * hr[j];
                }
                if (ss > 0)
                    for (int j = 0; j < H; j++)
                        hr[j] = (float)(hr[j] / sqrt(ss));
            }
        }
    }
    rc = decode_all(t, mb, c, n, codes, tokens_out, e);
cleanup:
    tape_free(t);
    free(codes);
    free(ones);
    return rc;
}

/* ---- residual fit for a new task ---- */

void xfer_residual_default(XferResidualOpts *o)
{
    *o = (XferResidualOpts){.kind = XFER_RESIDUAL_RIDGE,
                            .lambda = 0.0f,
                            .freeze_universal = 1,
                            .universal_lr_scale = 0.1f,
                            .lr = 1e-2f,
                            .wd = 1e-3f,
                            .res_l2 = 1.0f,
                            .steps = 50};
}

/* Codes (n, hidden), g_u's predictions (n) and, with phi, g_u's last
 * hidden layer (n, mlp) of member mb, no gradients. */
static int codes_and_universal(Tape *t, Member *mb, const XferConfig *c, int n, const int *tokens, float *codes,
                               float *g, float *phi, XErr *e)
{
    for (int b0 = 0; b0 < n; b0 += XFER_EVAL_BATCH) {
        int B = n - b0 < XFER_EVAL_BATCH ? n - b0 : XFER_EVAL_BATCH;
        TVar code, f, ph;
        tape_reset(t);
        code = seq_encode(t, &mb->ps, &mb->enc, tokens + (size_t)b0 * c->token_len, B, 0, NULL);
        f = universal_forward(t, mb, code, &ph);
        if (tape_status(t, e))
            return XE_FAIL;
        memcpy(codes + (size_t)b0 * c->hidden, tape_value(t, code), (size_t)B * c->hidden * sizeof *codes);
        memcpy(g + b0, tape_value(t, f), (size_t)B * sizeof *g);
        if (phi)
            memcpy(phi + (size_t)b0 * tape_cols(t, ph), tape_value(t, ph), (size_t)B * tape_cols(t, ph) * sizeof *phi);
    }
    return XE_OK;
}

/* Cholesky factor L (lower, d x d) of a (symmetric positive definite):
 * the systems here are (hidden + 1)-square, too small to need LAPACK. */
static void cholesky(const double *a, int d, double *l)
{
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            double s = a[(size_t)i * d + j];
            for (int k = 0; k < j; k++)
                s -= l[(size_t)i * d + k] * l[(size_t)j * d + k];
            l[(size_t)i * d + j] = i == j ? sqrt(s > 1e-300 ? s : 1e-300) : s / l[(size_t)j * d + j];
        }
}

/* z = L^-1 b (forward substitution). */
static void solve_lower(const double *l, int d, const double *b, double *z)
{
    for (int i = 0; i < d; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++)
            s -= l[(size_t)i * d + k] * z[k];
        z[i] = s / l[(size_t)i * d + i];
    }
}

/* w = L^-T z (back substitution). */
static void solve_upper(const double *l, int d, const double *z, double *w)
{
    for (int i = d - 1; i >= 0; i--) {
        double s = z[i];
        for (int k = i + 1; k < d; k++)
            s -= l[(size_t)k * d + i] * w[k];
        w[i] = s / l[(size_t)i * d + i];
    }
}

/* w = (A + lam I_in)^-1 b, the first `in` of the d unknowns penalised;
 * am, l (d x d) and z (d) are scratch, l keeps the Cholesky factor. */
static void ridge_solve(const double *a, int d, int in, double lam, const double *b, double *am, double *l,
                        double *z, double *w)
{
    memcpy(am, a, (size_t)d * d * sizeof *am);
    for (int j = 0; j < in; j++)
        am[(size_t)j * d + j] += lam;
    cholesky(am, d, l);
    solve_lower(l, d, b, z);
    solve_upper(l, d, z, w);
}

#define XFER_RIDGE_SE_ROWS 30

/* The ridge residual of member k: r = w.x + b fitted to y - g_u(h), x the
 * code (and g_u's last hidden layer for RES_LINEAR_GU), the bias
 * unpenalised; lambda > 0 fixed, otherwise chosen by exact
 * leave-one-out error (e_i / (1 - H_ii)) over infinity (the bias alone:
 * g_u's ranking) and 1e5 .. 1e-3 with the one-standard-error rule below
 * XFER_RIDGE_SE_ROWS rows; with fewer than 3 rows the bias alone. */
static int fit_ridge_member(XferModel *m, int k, int n, const int *tokens, const float *y, float lambda, int kind,
                            XErr *e)
{
    const XferConfig *c = &m->cfg;
    Member *mb = &m->mem[k];
    const Linear *lin = &mb->res[m->ntasks].layer[0];
    int H = c->hidden, in = res_inputs(c, kind), d = in + 1, rc;
    Tape *t = NULL;
    float *codes = malloc((size_t)n * H * sizeof *codes), *g = malloc((size_t)n * sizeof *g);
    float *hid = in > H ? malloc((size_t)n * (in - H) * sizeof *hid) : NULL;
    double *phi = malloc((size_t)n * d * sizeof *phi), *r = malloc((size_t)n * sizeof *r);
    double *a = calloc((size_t)d * d, sizeof *a), *am = malloc((size_t)d * d * sizeof *am);
    double *l = malloc((size_t)d * d * sizeof *l), *b = calloc((size_t)d, sizeof *b);
    double *w = malloc((size_t)d * sizeof *w), *best = calloc((size_t)d, sizeof *best), *z = malloc((size_t)d * sizeof *z);
    double mean = 0;
    if (!codes || !g || (in > H && !hid) || !phi || !r || !a || !am || !l || !b || !w || !best || !z) {
        rc = xerr_set(e, XE_FAIL, "out of memory for a ridge fit of %d rows", n);
        goto cleanup;
    }
    if ((rc = tape_new(&t, e)))
        goto cleanup;
    tape_freeze_params(t, 1);
    if ((rc = codes_and_universal(t, mb, c, n, tokens, codes, g, hid, e)))
        goto cleanup;
    for (int i = 0; i < n; i++) {
        double *f = phi + (size_t)i * d;
        for (int j = 0; j < H; j++)
            f[j] = codes[(size_t)i * H + j];
        for (int j = H; j < in; j++)
            f[j] = hid[(size_t)i * (in - H) + j - H];
        f[in] = 1.0;
        r[i] = (double)y[i] - g[i];
        mean += r[i] / n;
        for (int p = 0; p < d; p++) {
            b[p] += f[p] * r[i];
            for (int q = 0; q < d; q++)
                a[(size_t)p * d + q] += f[p] * f[q];
        }
    }
    /* Candidates from the most penalised down: infinity (the bias alone,
     * whose leave-one-out error is n/(n-1) of the residual), then 1e5 ..
     * 1e-3. With few rows the smallest leave-one-out error is itself noisy
     * and picks small penalties by chance, so the rule is the one-standard-
     * error rule: the most penalised candidate whose error is within one
     * standard error (over the rows) of the smallest; from
     * XFER_RIDGE_SE_ROWS rows on, the smallest (bench/RESULTS.md). */
    best[in] = mean;
    if (n >= 3 && lambda <= 0) {
        double cv[10], se[10], *ws = malloc((size_t)10 * d * sizeof *ws), *sq = malloc((size_t)n * sizeof *sq);
        int nc = 0, imin = 0;
        if (!ws || !sq) {
            free(ws);
            free(sq);
            rc = xerr_set(e, XE_FAIL, "out of memory for a ridge fit of %d rows", n);
            goto cleanup;
        }
        for (int li = -1; li < 9; li++, nc++) {
            double *wc = ws + (size_t)nc * d, s1 = 0, s2 = 0;
            if (li < 0) {
                memset(wc, 0, (size_t)d * sizeof *wc);
                wc[in] = mean;
                for (int i = 0; i < n; i++)
                    sq[i] = pow((r[i] - mean) * n / (n - 1.0), 2);
            } else {
                ridge_solve(a, d, in, pow(10.0, 5 - li), b, am, l, z, wc);
                for (int i = 0; i < n; i++) {
                    const double *f = phi + (size_t)i * d;
                    double fit = 0, hii = 0;
                    solve_lower(l, d, f, z);
                    for (int j = 0; j < d; j++) {
                        fit += wc[j] * f[j];
                        hii += z[j] * z[j];
                    }
                    sq[i] = pow((r[i] - fit) / fmax(1.0 - hii, 1e-9), 2);
                }
            }
            for (int i = 0; i < n; i++)
                s1 += sq[i], s2 += sq[i] * sq[i];
            cv[nc] = s1 / n;
            se[nc] = sqrt(fmax(s2 / n - cv[nc] * cv[nc], 0) / (n - 1));
            if (cv[nc] < cv[imin] * (1 - 1e-9))
                imin = nc;
        }
        for (int ci = 0; ci < nc; ci++)
            if (cv[ci] <= cv[imin] + (n < XFER_RIDGE_SE_ROWS ? se[imin] : 0)) {
                memcpy(best, ws + (size_t)ci * d, (size_t)d * sizeof *best);
                break;
            }
        free(ws);
        free(sq);
    } else if (lambda > 0) {
        ridge_solve(a, d, in, lambda, b, am, l, z, best);
    }
    for (int j = 0; j < in; j++)
        tparams_value(&mb->ps, lin->w)[j] = (float)best[j];
    tparams_value(&mb->ps, lin->b)[0] = (float)best[in];
cleanup:
    tape_free(t);
    free(codes);
    free(g);
    free(hid);
    free(phi);
    free(r);
    free(a);
    free(am);
    free(l);
    free(b);
    free(w);
    free(best);
    free(z);
    return rc;
}

/* The MLP residual of member k fitted by Adam, g_u frozen or tuned. */
static int fit_mlp_member(XferModel *m, int k, int n, const int *tokens, const float *y, const XferResidualOpts *o,
                          XErr *e)
{
    const XferConfig *c = &m->cfg;
    Member *mb = &m->mem[k];
    Mlp *res = &mb->res[m->ntasks];
    Tape *t = NULL;
    float *codes = malloc((size_t)n * c->hidden * sizeof *codes), *g = malloc((size_t)n * sizeof *g);
    TAdam opt = tadam_default(o->lr, o->wd);
    int rc, b0 = 0;
    if (!codes || !g) {
        rc = xerr_set(e, XE_FAIL, "out of memory for %d codes", n);
        goto cleanup;
    }
    if ((rc = tape_new(&t, e)))
        goto cleanup;
    /* The autoencoder is frozen: the codes are computed once. */
    tape_freeze_params(t, 1);
    if ((rc = codes_and_universal(t, mb, c, n, tokens, codes, g, NULL, e)))
        goto cleanup;
    tape_freeze_params(t, 0);
    tparams_reset_adam(&mb->ps);
    tparams_set_lr_scale(&mb->ps, 0.0f);
    mlp_set_lr_scale(res, &mb->ps, 1.0f);
    if (!o->freeze_universal)
        mlp_set_lr_scale(&mb->gu, &mb->ps, o->universal_lr_scale);
    for (int s = 0; s < o->steps; s++) {
        int B = n - b0 < c->batch ? n - b0 : c->batch;
        TVar h, r, f, loss;
        tape_reset(t);
        h = tape_input(t, B, c->hidden, codes + (size_t)b0 * c->hidden, 0);
        r = mlp_forward(t, &mb->ps, res, h, 0, NULL);
        f = tape_add(t, mlp_forward(t, &mb->ps, &mb->gu, h, 0, NULL), r);
        loss = tape_mse(t, f, y + b0);
        if (o->res_l2 > 0)
            loss = tape_add(t, loss, tape_scale(t, tape_mean(t, tape_mul(t, r, r)), o->res_l2));
        tparams_zero_grad(&mb->ps);
        if ((rc = tape_backward(t, loss, NULL, e)))
            goto cleanup;
        tparams_clip_grad(&mb->ps, c->clip);
        tparams_adam(&mb->ps, &opt);
        b0 = b0 + B < n ? b0 + B : 0;
    }
cleanup:
    tparams_set_lr_scale(&mb->ps, 1.0f);
    tparams_zero_grad(&mb->ps);
    tape_free(t);
    free(codes);
    free(g);
    return rc;
}

int xfer_fit_residual(XferModel *m, int n, const int *tokens, const float *y, const XferResidualOpts *o,
                      int *task, XErr *e)
{
    const XferConfig *c = &m->cfg;
    int rc = XE_OK, kind = o->kind == XFER_RESIDUAL_MLP ? RES_MLP : o->freeze_universal ? RES_LINEAR : RES_LINEAR_GU;
    if ((rc = check_fitted(m, e)))
        return rc;
    if (n < 0)
        return xerr_set(e, XE_FAIL, "xfer residual: %d rows", n);
    if ((o->kind != XFER_RESIDUAL_RIDGE && o->kind != XFER_RESIDUAL_MLP) || !(o->lambda >= 0) || o->steps < 0 ||
        !(o->lr > 0) || !(o->wd >= 0) || !(o->res_l2 >= 0) || !(o->universal_lr_scale >= 0))
        return xerr_set(e, XE_USAGE,
                        "xfer residual: bad options (kind %d, lambda %g, steps %d, lr %g, wd %g, res_l2 %g, "
                        "universal_lr_scale %g)",
                        (int)o->kind, (double)o->lambda, o->steps, (double)o->lr, (double)o->wd, (double)o->res_l2,
                        (double)o->universal_lr_scale);
    if ((rc = check_tokens(c, n, tokens, e)) || (rc = check_targets(n, y, e)))
        return rc;
    if ((rc = reserve_tasks(m, m->ntasks + 1, e)))
        return rc;
    for (int k = 0; k < c->ensemble && !rc; k++) {
        Rng r;
        rng_seed(&r, member_seed(c, k, 3 + (uint64_t)m->ntasks));
        rc = member_add_task(&m->mem[k], c, &r, m->ntasks, kind, e);
    }
    for (int k = 0; k < c->ensemble && !rc && n > 0; k++)
        rc = kind == RES_MLP ? fit_mlp_member(m, k, n, tokens, y, o, e)
                             : fit_ridge_member(m, k, n, tokens, y, o->lambda, kind, e);
    if (rc) {
        /* The new residual's parameters are the last ones: drop them. */
        size_t keep = param_count(c, m->ntasks, m->kind);
        for (int k = 0; k < c->ensemble; k++) {
            TParams *ps = &m->mem[k].ps;
            while (ps->n > 0 && ps->p[ps->n - 1].off >= keep)
                ps->n--;
            if (ps->size > keep)
                ps->size = keep;
        }
        return rc;
    }
    m->kind[m->ntasks] = (unsigned char)kind;
    *task = m->ntasks++;
    return XE_OK;
}

/* ---- blob ---- */

#define XFER_MAGIC "XFERPRED"
#define XFER_FORMAT 1
/* magic, version, ntasks, 12 ints, 6 floats, seed, param count; then a
 * byte per task (its ResKind), the parameters, the CRC-32 */
#define XFER_HEADER (8 + 4 + 4 + 12 * 4 + 6 * 4 + 8 + 8)

int xfer_save(const XferModel *m, void **buf, size_t *len, XErr *e)
{
    const XferConfig *c = &m->cfg;
    size_t np, total;
    unsigned char *b, *p;
    int rc;
    if ((rc = check_fitted(m, e)))
        return rc;
    np = m->mem[0].ps.size;
    total = XFER_HEADER + (size_t)m->ntasks + (size_t)c->ensemble * np * 4 + 4;
    b = malloc(total);
    if (!b)
        return xerr_set(e, XE_FAIL, "out of memory for a %zu-byte model blob", total);
    memcpy(b, XFER_MAGIC, 8);
    p = blob_put_u32(b + 8, XFER_FORMAT);
    p = blob_put_u32(p, (uint32_t)m->ntasks);
    {
        int ints[12] = {c->token_len, c->vocab, c->embed, c->hidden, (int)c->code, c->mlp, c->mlp_depth,
                        c->res_hidden, c->epochs, c->batch, c->ensemble, 0};
        float floats[6] = {c->alpha, c->res_l2, c->lr, c->wd, c->clip, c->dropout};
        for (int i = 0; i < 12; i++)
            p = blob_put_u32(p, (uint32_t)ints[i]);
        for (int i = 0; i < 6; i++)
            p = blob_put_f32(p, floats[i]);
    }
    p = blob_put_u64(p, c->seed);
    p = blob_put_u64(p, (uint64_t)np);
    memcpy(p, m->kind, (size_t)m->ntasks);
    p += m->ntasks;
    for (int k = 0; k < c->ensemble; k++)
        for (size_t i = 0; i < np; i++)
            p = blob_put_f32(p, m->mem[k].ps.val[i]);
    blob_put_u32(p, (uint32_t)crc32(0L, b, (uInt)(total - 4)));
    *buf = b;
    *len = total;
    return XE_OK;
}

int xfer_load(XferModel **out, const void *buf, size_t len, XErr *e)
{
    const unsigned char *b = buf, *p;
    XferConfig c;
    XferModel *m = NULL;
    uint32_t version, ntasks;
    uint64_t np;
    size_t want;
    int rc;
    if (len < 8 || memcmp(b, XFER_MAGIC, 8) != 0)
        return xerr_set(e, XE_FAIL, "xfer model: not a model blob (no \"" XFER_MAGIC "\" magic)");
    if (len < XFER_HEADER)
        return xerr_set(e, XE_FAIL, "xfer model: truncated: %zu bytes, the header alone is %d", len, XFER_HEADER);
    p = b + 8;
    version = blob_get_u32(&p);
    if (version != XFER_FORMAT)
        return xerr_set(e, XE_FAIL, "xfer model: format version %u is not supported (this build reads %d)",
                        version, XFER_FORMAT);
    ntasks = blob_get_u32(&p);
    memset(&c, 0, sizeof c);
    c.token_len = (int)blob_get_u32(&p);
    c.vocab = (int)blob_get_u32(&p);
    c.embed = (int)blob_get_u32(&p);
    c.hidden = (int)blob_get_u32(&p);
    c.code = (SeqCode)blob_get_u32(&p);
    c.mlp = (int)blob_get_u32(&p);
    c.mlp_depth = (int)blob_get_u32(&p);
    c.res_hidden = (int)blob_get_u32(&p);
    c.epochs = (int)blob_get_u32(&p);
    c.batch = (int)blob_get_u32(&p);
    c.ensemble = (int)blob_get_u32(&p);
    blob_get_u32(&p); /* reserved */
    c.alpha = blob_get_f32(&p);
    c.res_l2 = blob_get_f32(&p);
    c.lr = blob_get_f32(&p);
    c.wd = blob_get_f32(&p);
    c.clip = blob_get_f32(&p);
    c.dropout = blob_get_f32(&p);
    c.seed = blob_get_u64(&p);
    np = blob_get_u64(&p);
    if ((rc = xfer_config_check(&c, e))) {
        xerr_prefix(e, "xfer model: bad config: ");
        return XE_FAIL;
    }
    if (ntasks < 1 || ntasks > 100000)
        return xerr_set(e, XE_FAIL, "xfer model: %u tasks is out of range (1-100000)", ntasks);
    if (len < XFER_HEADER + ntasks)
        return xerr_set(e, XE_FAIL, "xfer model: truncated: %zu bytes, the header and task list alone are %zu",
                        len, (size_t)XFER_HEADER + ntasks);
    for (uint32_t t = 0; t < ntasks; t++)
        if (p[t] > RES_LINEAR_GU)
            return xerr_set(e, XE_FAIL, "xfer model: task %u has an unknown residual kind %d", t, p[t]);
    if (np != param_count(&c, (int)ntasks, p))
        return xerr_set(e, XE_FAIL, "xfer model: %llu parameters per member, its config needs %zu",
                        (unsigned long long)np, param_count(&c, (int)ntasks, p));
    want = XFER_HEADER + ntasks + (size_t)c.ensemble * np * 4 + 4;
    if (len != want)
        return xerr_set(e, XE_FAIL, "xfer model: %s: expected %zu bytes, got %zu",
                        len < want ? "truncated" : "trailing bytes", want, len);
    if (blob_get_u32(&(const unsigned char *){b + want - 4}) != (uint32_t)crc32(0L, b, (uInt)(want - 4)))
        return xerr_set(e, XE_FAIL, "xfer model: corrupt (CRC-32 mismatch)");
    if ((rc = xfer_new(&m, &c, e)) || (rc = reserve_tasks(m, (int)ntasks, e)))
        goto fail;
    memcpy(m->kind, p, ntasks);
    p += ntasks;
    if ((rc = members_build(m, (int)ntasks, e)))
        goto fail;
    if (m->mem[0].ps.size != np) {
        rc = xerr_set(e, XE_FAIL, "xfer model: layout of %zu parameters, expected %llu", m->mem[0].ps.size,
                      (unsigned long long)np);
        goto fail;
    }
    for (int k = 0; k < c.ensemble; k++)
        for (size_t i = 0; i < m->mem[k].ps.size; i++)
            m->mem[k].ps.val[i] = blob_get_f32(&p);
    m->fitted = 1;
    *out = m;
    return XE_OK;
fail:
    xfer_free(m);
    return rc;
}

int xfer_clone(XferModel **out, const XferModel *m, XErr *e)
{
    void *buf;
    size_t len;
    int rc;
    if ((rc = xfer_save(m, &buf, &len, e)))
        return rc;
    rc = xfer_load(out, buf, len, e);
    free(buf);
    return rc;
}
