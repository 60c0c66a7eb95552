/* The learning-curve ranker: the score network on the tape, pair sampling
 * from stored curves, scoring and the model blob. */
#include "model/ranker.h"
#include "model/blob.h"
#include "model/layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Runs per tape when scoring. */
#define RANKER_EVAL_BATCH 1024

struct Ranker {
    RankerConfig cfg;
    int nds;
    int fitted;
    TParams ps[RANKER_MAX_MEMBERS]; /* a member's parameters; the layers below index any of them alike */
    SeqEncoder enc;     /* arch tokens -> code */
    Lstm curve;         /* curve_dim -> curve_hidden */
    Embedding ds;       /* (nds, ds_embed) */
    Mlp head;           /* [code, curve, dataset] -> s */
};

void ranker_config_default(RankerConfig *c, int token_len, int vocab, int curve_dim)
{
    *c = (RankerConfig){
        .token_len = token_len,
        .vocab = vocab,
        .embed = 16,
        .arch_hidden = 32,
        .curve_dim = curve_dim,
        .curve_hidden = 16,
        .ds_embed = 8,
        .curve_scale = 20.0f,
        .mlp = 64,
        .mlp_depth = 2,
        .lr = 1e-2f,
        .wd = 1e-4f,
        .clip = 5.0f,
        .steps = 2000,
        .batch = 64,
        .members = 1,
        .seed = 1,
    };
}

static int range_i(const char *name, int v, int lo, int hi, XErr *e)
{
    if (v < lo || v > hi)
        return xerr_set(e, XE_USAGE, "ranker config: %s %d is out of range (%d-%d)", name, v, lo, hi);
    return XE_OK;
}

static int range_f(const char *name, float v, float lo, float hi, XErr *e)
{
    if (!(v >= lo && v <= hi))
        return xerr_set(e, XE_USAGE, "ranker config: %s %g is out of range (%g-%g)", name, (double)v, (double)lo,
                        (double)hi);
    return XE_OK;
}

int ranker_config_check(const RankerConfig *c, XErr *e)
{
    int rc;
    if ((rc = range_i("token_len", c->token_len, 1, 256, e)) || (rc = range_i("vocab", c->vocab, 2, 1024, e)) ||
        (rc = range_i("embed", c->embed, 1, 1024, e)) || (rc = range_i("arch_hidden", c->arch_hidden, 1, 1024, e)) ||
        (rc = range_i("curve_dim", c->curve_dim, 1, 64, e)) ||
        (rc = range_i("curve_hidden", c->curve_hidden, 1, 1024, e)) ||
        (rc = range_i("ds_embed", c->ds_embed, 1, 1024, e)) || (rc = range_i("mlp", c->mlp, 1, 4096, e)) ||
        (rc = range_i("mlp_depth", c->mlp_depth, 0, MLP_MAX_DEPTH, e)) ||
        (rc = range_f("curve_scale", c->curve_scale, 1e-6f, 1e6f, e)) ||
        (rc = range_f("lr", c->lr, 1e-9f, 10.0f, e)) || (rc = range_f("wd", c->wd, 0.0f, 10.0f, e)) ||
        (rc = range_f("clip", c->clip, 0.0f, 1e9f, e)) || (rc = range_i("steps", c->steps, 1, 10000000, e)) ||
        (rc = range_i("batch", c->batch, 1, 65536, e)) ||
        (rc = range_i("members", c->members, 1, RANKER_MAX_MEMBERS, e)))
        return rc;
    return XE_OK;
}

/* Floats of the layout build() makes, for a config and dataset count. */
static size_t param_count(const RankerConfig *c, int nds)
{
    size_t V = (size_t)c->vocab, E = (size_t)c->embed, A = (size_t)c->arch_hidden;
    size_t C = (size_t)c->curve_hidden, D = (size_t)c->ds_embed, M = (size_t)c->mlp, in = A + C + D;
    size_t enc = V * E + E * 4 * A + A * 4 * A + 4 * A;
    size_t curve = (size_t)c->curve_dim * 4 * C + C * 4 * C + 4 * C;
    size_t head = c->mlp_depth ? in * M + M + (size_t)(c->mlp_depth - 1) * (M * M + M) + M + 1 : in + 1;
    return (enc + curve + (size_t)nds * D + head) * (size_t)c->members;
}

/* Member m's seed: the config's for member 0, then spread out. */
static uint64_t member_seed(const RankerConfig *c, int m)
{
    return c->seed + (uint64_t)m * RANKER_MEMBER_SEED_STEP;
}

/* Fresh layers for nds datasets, each member from its own seed. */
static int build(Ranker *r, int nds, XErr *e)
{
    const RankerConfig *c = &r->cfg;
    Rng g;
    int rc;
    r->fitted = 0;
    r->nds = nds;
    for (int m = 0; m < c->members; m++) {
        tparams_release(&r->ps[m]);
        tparams_init(&r->ps[m]);
        rng_seed(&g, member_seed(c, m) * 0x9e3779b97f4a7c15ull + 1);
        if ((rc = seq_encoder_init(&r->enc, &r->ps[m], c->vocab, c->token_len, c->embed, c->arch_hidden,
                                   SEQ_CODE_MEAN, &g, e)) ||
            (rc = lstm_init(&r->curve, &r->ps[m], c->curve_dim, c->curve_hidden, &g, e)) ||
            (rc = embedding_init(&r->ds, &r->ps[m], nds, c->ds_embed, &g, e)) ||
            (rc = mlp_init(&r->head, &r->ps[m], c->arch_hidden + c->curve_hidden + c->ds_embed, c->mlp, c->mlp_depth,
                           1, &g, e)))
            return rc;
    }
    return XE_OK;
}

int ranker_new(Ranker **out, const RankerConfig *c, XErr *e)
{
    Ranker *r;
    int rc;
    if ((rc = ranker_config_check(c, e)))
        return rc;
    r = calloc(1, sizeof *r);
    if (!r)
        return xerr_set(e, XE_FAIL, "out of memory for a ranker");
    r->cfg = *c;
    for (int m = 0; m < RANKER_MAX_MEMBERS; m++)
        tparams_init(&r->ps[m]);
    *out = r;
    return XE_OK;
}

void ranker_free(Ranker *r)
{
    if (!r)
        return;
    for (int m = 0; m < RANKER_MAX_MEMBERS; m++)
        tparams_release(&r->ps[m]);
    free(r);
}

const RankerConfig *ranker_config(const Ranker *r)
{
    return &r->cfg;
}

int ranker_ndatasets(const Ranker *r)
{
    return r->nds;
}

/* ---- the score network ---- */

/* Member ps's scores (B, 1) of runs rows[0..B), each cut at len[i] epochs. */
static TVar score_rows(Tape *t, Ranker *r, TParams *ps, int B, const RankerRun *const *rows, const int *len)
{
    const RankerConfig *c = &r->cfg;
    int L = c->token_len, cd = c->curve_dim, H = c->curve_hidden, T = 0, unknown = 0;
    int *tokens = tape_scratch(t, (size_t)B * L * sizeof *tokens), *ds = tape_scratch(t, (size_t)B * sizeof *ds);
    TVar code, x, zx, h = TAPE_NONE, cell = TAPE_NONE, state = TAPE_NONE, demb, parts[3];
    float *xv;
    if (!tokens || !ds)
        return TAPE_NONE;
    for (int i = 0; i < B; i++) {
        memcpy(tokens + (size_t)i * L, rows[i]->tokens, (size_t)L * sizeof *tokens);
        ds[i] = rows[i]->dataset >= 0 ? rows[i]->dataset : 0;
        unknown |= rows[i]->dataset < 0;
        if (len[i] > T)
            T = len[i];
    }
    code = seq_encode(t, ps, &r->enc, tokens, B, 0, NULL);

    /* The curves step-major (T * B, curve_dim), zero past each run's end;
     * the state of a run is its hidden state after its last epoch. */
    x = tape_input(t, T * B, cd, NULL, 0);
    if (!(xv = tape_value(t, x)))
        return TAPE_NONE;
    for (int i = 0; i < B; i++)
        for (int k = 0; k < len[i]; k++) {
            const float *v = rows[i]->curve + (size_t)k * cd;
            const float *ref = rows[i]->ref + (size_t)(k < rows[i]->ref_epochs ? k : rows[i]->ref_epochs - 1) * cd;
            for (int j = 0; j < cd; j++)
                xv[((size_t)k * B + i) * cd + j] = (v[j] - ref[j]) * c->curve_scale;
        }
    zx = lstm_input_gates(t, ps, &r->curve, x);
    for (int k = 0; k < T; k++) {
        TVar mask;
        float *mv;
        int ends = 0;
        lstm_step(t, ps, &r->curve, tape_slice_rows(t, zx, k * B, B), &h, &cell);
        for (int i = 0; i < B; i++)
            ends |= len[i] == k + 1;
        if (!ends)
            continue;
        mask = tape_input(t, B, H, NULL, 0);
        if (!(mv = tape_value(t, mask)))
            return TAPE_NONE;
        for (int i = 0; i < B; i++)
            if (len[i] == k + 1)
                for (int j = 0; j < H; j++)
                    mv[(size_t)i * H + j] = 1.0f;
        mask = tape_mul(t, h, mask);
        state = state == TAPE_NONE ? mask : tape_add(t, state, mask);
    }

    demb = embedding_forward(t, ps, &r->ds, ds, B);
    if (unknown) {
        /* unseen datasets: the mean embedding, through 0/1 row masks */
        TVar ones = tape_input(t, B, 1, NULL, 0), known = tape_input(t, B, c->ds_embed, NULL, 0);
        TVar other = tape_input(t, B, c->ds_embed, NULL, 0), mean;
        float *ov = tape_value(t, ones), *kv = tape_value(t, known), *uv = tape_value(t, other);
        if (!ov || !kv || !uv)
            return TAPE_NONE;
        for (int i = 0; i < B; i++) {
            ov[i] = 1.0f;
            for (int j = 0; j < c->ds_embed; j++) {
                kv[(size_t)i * c->ds_embed + j] = rows[i]->dataset >= 0;
                uv[(size_t)i * c->ds_embed + j] = rows[i]->dataset < 0;
            }
        }
        mean = tape_matmul(t, ones, tape_mean_rows(t, tape_param(t, ps, r->ds.table)), 0, 0);
        demb = tape_add(t, tape_mul(t, demb, known), tape_mul(t, mean, other));
    }
    parts[0] = code;
    parts[1] = state;
    parts[2] = demb;
    return mlp_forward(t, ps, &r->head, tape_concat_cols(t, parts, 3), 0, NULL);
}

/* ---- checks ---- */

static int check_run(const RankerConfig *c, const RankerRun *run, int i, int nds, int scoring, XErr *e)
{
    if (run->dataset < (scoring ? -1 : 0) || run->dataset >= nds)
        return xerr_set(e, XE_FAIL, "run %d: dataset %d is out of range (%d-%d)", i, run->dataset, scoring ? -1 : 0,
                        nds - 1);
    if (run->epochs < 1)
        return xerr_set(e, XE_FAIL, "run %d: a curve of %d epochs: need at least one", i, run->epochs);
    for (int k = 0; k < c->token_len; k++)
        if (run->tokens[k] < 0 || run->tokens[k] >= c->vocab)
            return xerr_set(e, XE_FAIL, "run %d: token %d at %d is out of range (0-%d)", i, run->tokens[k], k,
                            c->vocab - 1);
    for (size_t k = 0; k < (size_t)run->epochs * c->curve_dim; k++)
        if (!isfinite(run->curve[k]))
            return xerr_set(e, XE_FAIL, "run %d: curve value %zu (epoch %zu) is not finite", i, k,
                            k / (size_t)c->curve_dim + 1);
    if (!scoring && !isfinite(run->final))
        return xerr_set(e, XE_FAIL, "run %d: final score is not finite", i);
    if (scoring && (!run->ref || run->ref_epochs < 1))
        return xerr_set(e, XE_FAIL, "run %d: no reference curve", i);
    for (size_t k = 0; scoring && k < (size_t)run->ref_epochs * c->curve_dim; k++)
        if (!isfinite(run->ref[k]))
            return xerr_set(e, XE_FAIL, "run %d: reference curve value %zu (epoch %zu) is not finite", i, k,
                            k / (size_t)c->curve_dim + 1);
    return XE_OK;
}

/* ---- fit ---- */

int ranker_fit(Ranker *r, int ndatasets, int nruns, const RankerRun *runs, RankerStepFn fn, int every, void *ctx,
               XErr *e)
{
    const RankerConfig *c = &r->cfg;
    int B = 2 * c->batch, rc, *count = NULL, *start = NULL, *byds = NULL, *eligible = NULL, neligible = 0;
    int *len = NULL, *top = NULL;
    const RankerRun **rows = NULL;
    RankerRun *pair_rows = NULL;
    TPair *pairs = NULL;
    Tape *t = NULL;
    Rng g;
    double loss_sum = 0, acc_sum = 0;
    long acc_n = 0;
    if (ndatasets < 1 || ndatasets > 100000)
        return xerr_set(e, XE_FAIL, "ranker fit: %d datasets: need 1-100000", ndatasets);
    for (int i = 0; i < nruns; i++)
        if ((rc = check_run(c, &runs[i], i, ndatasets, 0, e)))
            return rc;
    count = calloc((size_t)ndatasets, sizeof *count);
    start = calloc((size_t)ndatasets + 1, sizeof *start);
    byds = malloc((size_t)(nruns ? nruns : 1) * sizeof *byds);
    eligible = malloc((size_t)(nruns ? nruns : 1) * sizeof *eligible);
    len = malloc((size_t)B * sizeof *len);
    rows = malloc((size_t)B * sizeof *rows);
    pairs = malloc((size_t)c->batch * sizeof *pairs);
    pair_rows = malloc((size_t)B * sizeof *pair_rows);
    top = malloc((size_t)ndatasets * sizeof *top);
    if (!count || !start || !byds || !eligible || !len || !rows || !pairs || !pair_rows || !top) {
        rc = xerr_set(e, XE_FAIL, "out of memory for %d runs", nruns);
        goto cleanup;
    }
    /* runs grouped by dataset; pairs come from datasets with two runs or more */
    for (int i = 0; i < nruns; i++)
        count[runs[i].dataset]++;
    for (int d = 0; d < ndatasets; d++)
        start[d + 1] = start[d] + count[d];
    memset(count, 0, (size_t)ndatasets * sizeof *count);
    for (int i = 0; i < nruns; i++)
        byds[start[runs[i].dataset] + count[runs[i].dataset]++] = i;
    for (int i = 0; i < nruns; i++)
        if (count[runs[i].dataset] >= 2)
            eligible[neligible++] = i;
    /* each dataset's reference: its best run (the first of equals) */
    for (int d = 0; d < ndatasets; d++) {
        top[d] = count[d] ? byds[start[d]] : -1;
        for (int k = 1; k < count[d]; k++)
            if (runs[byds[start[d] + k]].final > runs[top[d]].final)
                top[d] = byds[start[d] + k];
    }
    if (!neligible) {
        rc = xerr_set(e, XE_FAIL, "ranker fit: no dataset has two runs to compare");
        goto cleanup;
    }
    if ((rc = build(r, ndatasets, e)) || (rc = tape_new(&t, e)))
        goto cleanup;
    /* the members one after another, each on its own draw of pairs */
    for (int m = 0; m < c->members; m++) {
        TParams *ps = &r->ps[m];
        rng_seed(&g, member_seed(c, m) * 0x9e3779b97f4a7c15ull + 2);
        for (int step = 0; step < c->steps; step++) {
            TAdam o = tadam_default(c->lr * 0.5f * (1.0f + cosf(3.14159265f * (float)step / (float)c->steps)), c->wd);
            TVar s, loss;
            const float *sv;
            for (int k = 0; k < c->batch; k++) {
                int i = eligible[rng_below(&g, (uint64_t)neligible)], d = runs[i].dataset;
                int j = byds[start[d] + (int)rng_below(&g, (uint64_t)count[d] - 1)];
                if (j == i) /* the other runs of d: skip i by taking the last one in its place */
                    j = byds[start[d] + count[d] - 1];
                /* both against the dataset's best run; half the pairs with the
                 * mean dataset embedding (as an unseen dataset) */
                int unseen = rng_below(&g, 2) == 0;
                pair_rows[2 * k] = runs[i];
                pair_rows[2 * k + 1] = runs[j];
                for (int q = 2 * k; q <= 2 * k + 1; q++) {
                    pair_rows[q].ref = runs[top[d]].curve;
                    pair_rows[q].ref_epochs = runs[top[d]].epochs;
                    if (unseen)
                        pair_rows[q].dataset = -1;
                    rows[q] = &pair_rows[q];
                }
                len[2 * k] = 1 + (int)rng_below(&g, (uint64_t)runs[i].epochs);
                len[2 * k + 1] = 1 + (int)rng_below(&g, (uint64_t)runs[j].epochs);
                pairs[k] = (TPair){2 * k, 2 * k + 1,
                                   runs[i].final > runs[j].final ? 1.0f : runs[i].final < runs[j].final ? 0.0f : 0.5f};
            }
            tape_reset(t);
            s = score_rows(t, r, ps, B, rows, len);
            loss = tape_pairwise_logistic(t, s, pairs, c->batch);
            tparams_zero_grad(ps);
            if ((rc = tape_backward(t, loss, NULL, e)))
                goto cleanup;
            if (!isfinite(tape_value(t, loss)[0])) {
                rc = xerr_set(e, XE_FAIL, "ranker fit: member %d diverged at step %d", m + 1, step + 1);
                goto cleanup;
            }
            tparams_clip_grad(ps, c->clip);
            tparams_adam(ps, &o);
            sv = tape_value(t, s);
            loss_sum += tape_value(t, loss)[0];
            for (int k = 0; k < c->batch; k++)
                if (pairs[k].label != 0.5f) {
                    acc_sum += (sv[2 * k] > sv[2 * k + 1]) == (pairs[k].label == 1.0f);
                    acc_n++;
                }
            if (every > 0 && ((step + 1) % every == 0 || step + 1 == c->steps)) {
                if ((rc = xerr_check_interrupt(e)))
                    goto cleanup;
                if (fn && (rc = fn(ctx, m * c->steps + step + 1, c->members * c->steps, loss_sum / ((step % every) + 1),
                                   acc_n ? acc_sum / acc_n : 0, e)))
                    goto cleanup;
                loss_sum = acc_sum = 0;
                acc_n = 0;
            }
        }
    }
    r->fitted = 1;
cleanup:
    tape_free(t);
    free(count);
    free(start);
    free(byds);
    free(eligible);
    free(len);
    free(rows);
    free(pairs);
    free(pair_rows);
    free(top);
    return rc;
}

/* ---- scoring ---- */

int ranker_score(const Ranker *r, int n, const RankerRun *runs, float *scores, XErr *e)
{
    Ranker *rw = (Ranker *)r; /* only read: the tape's parameters are frozen */
    const RankerRun **rows = NULL;
    int *len = NULL, rc = XE_OK;
    double *sum = NULL;
    Tape *t = NULL;
    if (!r->fitted)
        return xerr_set(e, XE_FAIL, "ranker: not fitted");
    for (int i = 0; i < n; i++)
        if ((rc = check_run(&r->cfg, &runs[i], i, r->nds, 1, e)))
            return rc;
    if (n <= 0)
        return XE_OK;
    rows = malloc(RANKER_EVAL_BATCH * sizeof *rows);
    len = malloc(RANKER_EVAL_BATCH * sizeof *len);
    sum = malloc(RANKER_EVAL_BATCH * sizeof *sum);
    if (!rows || !len || !sum) {
        rc = xerr_set(e, XE_FAIL, "out of memory for scoring");
        goto cleanup;
    }
    if ((rc = tape_new(&t, e)))
        goto cleanup;
    tape_freeze_params(t, 1);
    for (int b0 = 0; b0 < n; b0 += RANKER_EVAL_BATCH) {
        int B = n - b0 < RANKER_EVAL_BATCH ? n - b0 : RANKER_EVAL_BATCH;
        TVar s;
        for (int i = 0; i < B; i++) {
            rows[i] = &runs[b0 + i];
            len[i] = runs[b0 + i].epochs;
            sum[i] = 0;
        }
        /* the ensemble's score: the mean of its members' */
        for (int m = 0; m < r->cfg.members; m++) {
            const float *sv;
            tape_reset(t);
            s = score_rows(t, rw, &rw->ps[m], B, rows, len);
            if ((rc = tape_status(t, e)))
                goto cleanup;
            sv = tape_value(t, s);
            for (int i = 0; i < B; i++)
                sum[i] += sv[i];
        }
        for (int i = 0; i < B; i++)
            scores[b0 + i] = (float)(sum[i] / r->cfg.members);
    }
cleanup:
    tape_free(t);
    free(rows);
    free(len);
    free(sum);
    return rc;
}

double ranker_p(float s, float s_best)
{
    return 1.0 / (1.0 + exp(-((double)s - s_best)));
}

int ranker_prob_beats(const Ranker *r, const RankerRun *run, const RankerRun *best, double *p, XErr *e)
{
    RankerRun both[2] = {*run, *best};
    both[0].ref = both[1].ref = best->curve;
    both[0].ref_epochs = both[1].ref_epochs = best->epochs;
    float s[2];
    int rc;
    if ((rc = ranker_score(r, 2, both, s, e)))
        return rc;
    *p = ranker_p(s[0], s[1]);
    return XE_OK;
}

int ranker_prob_beats_each(const Ranker *r, const RankerRun *run, const RankerRun *best, double *p, XErr *e)
{
    int n = run->epochs, rc;
    RankerRun *rows = malloc(((size_t)(n > 0 ? n : 0) + 1) * sizeof *rows);
    float *s = malloc(((size_t)(n > 0 ? n : 0) + 1) * sizeof *s);
    if (!rows || !s) {
        rc = xerr_set(e, XE_FAIL, "out of memory");
        goto out;
    }
    /* the cuts of run, then best: all against best's curve */
    for (int k = 0; k <= n; k++) {
        rows[k] = k < n ? *run : *best;
        if (k < n)
            rows[k].epochs = k + 1;
        rows[k].ref = best->curve;
        rows[k].ref_epochs = best->epochs;
    }
    if ((rc = ranker_score(r, n + 1, rows, s, e)))
        goto out;
    for (int k = 0; k < n; k++)
        p[k] = ranker_p(s[k], s[n]);
out:
    free(rows);
    free(s);
    return rc;
}

/* ---- blob ---- */

#define RANKER_MAGIC "XFERRANK"
#define RANKER_FORMAT 3
/* magic, version, datasets, the config's ints (12; 11 in format 2, which
 * has one member), 4 floats, seed, param count; then the parameters,
 * member after member, and the CRC-32 */
#define RANKER_NINTS(version) ((version) >= 3 ? 12 : 11)
#define RANKER_HEADER(version) (8 + 4 + 4 + RANKER_NINTS(version) * 4 + 4 * 4 + 8 + 8)

int ranker_save(const Ranker *r, void **buf, size_t *len, XErr *e)
{
    const RankerConfig *c = &r->cfg;
    int ints[12] = {c->token_len, c->vocab,  c->embed, c->arch_hidden, c->curve_dim, c->curve_hidden,
                    c->ds_embed,  c->mlp,    c->mlp_depth, c->steps,  c->batch, c->members};
    float floats[4] = {c->curve_scale, c->lr, c->wd, c->clip};
    size_t total, np = 0;
    unsigned char *b, *p;
    if (!r->fitted)
        return xerr_set(e, XE_FAIL, "ranker: not fitted");
    for (int m = 0; m < c->members; m++)
        np += r->ps[m].size;
    total = RANKER_HEADER(RANKER_FORMAT) + np * 4 + 4;
    b = malloc(total);
    if (!b)
        return xerr_set(e, XE_FAIL, "out of memory for a %zu-byte ranker blob", total);
    memcpy(b, RANKER_MAGIC, 8);
    p = blob_put_u32(b + 8, RANKER_FORMAT);
    p = blob_put_u32(p, (uint32_t)r->nds);
    for (int i = 0; i < 12; i++)
        p = blob_put_u32(p, (uint32_t)ints[i]);
    for (int i = 0; i < 4; i++)
        p = blob_put_f32(p, floats[i]);
    p = blob_put_u64(p, c->seed);
    p = blob_put_u64(p, (uint64_t)np);
    for (int m = 0; m < c->members; m++)
        for (size_t i = 0; i < r->ps[m].size; i++)
            p = blob_put_f32(p, r->ps[m].val[i]);
    blob_put_u32(p, (uint32_t)crc32(0L, b, (uInt)(total - 4)));
    *buf = b;
    *len = total;
    return XE_OK;
}

int ranker_load(Ranker **out, const void *buf, size_t len, XErr *e)
{
    const unsigned char *b = buf, *p;
    RankerConfig c;
    Ranker *r = NULL;
    uint32_t version, nds;
    uint64_t np;
    size_t want, have = 0;
    int rc, *ints[12];
    if (len < 8 || memcmp(b, RANKER_MAGIC, 8) != 0)
        return xerr_set(e, XE_FAIL, "ranker model: not a ranker blob (no \"" RANKER_MAGIC "\" magic)");
    if (len < 12)
        return xerr_set(e, XE_FAIL, "ranker model: truncated: %zu bytes", len);
    p = b + 8;
    version = blob_get_u32(&p);
    if (version != 2 && version != RANKER_FORMAT)
        return xerr_set(e, XE_FAIL,
                        "ranker model: format version %u is not supported (this build reads 2 and %d): refit it"
                        " with xfer-predict fit",
                        version, RANKER_FORMAT);
    if (len < (size_t)RANKER_HEADER(version))
        return xerr_set(e, XE_FAIL, "ranker model: truncated: %zu bytes, the header alone is %d", len,
                        RANKER_HEADER(version));
    nds = blob_get_u32(&p);
    memset(&c, 0, sizeof c);
    ints[0] = &c.token_len;
    ints[1] = &c.vocab;
    ints[2] = &c.embed;
    ints[3] = &c.arch_hidden;
    ints[4] = &c.curve_dim;
    ints[5] = &c.curve_hidden;
    ints[6] = &c.ds_embed;
    ints[7] = &c.mlp;
    ints[8] = &c.mlp_depth;
    ints[9] = &c.steps;
    ints[10] = &c.batch;
    ints[11] = &c.members;
    c.members = 1; /* format 2: one member */
    for (int i = 0; i < RANKER_NINTS(version); i++)
        *ints[i] = (int)blob_get_u32(&p);
    c.curve_scale = blob_get_f32(&p);
    c.lr = blob_get_f32(&p);
    c.wd = blob_get_f32(&p);
    c.clip = blob_get_f32(&p);
    c.seed = blob_get_u64(&p);
    np = blob_get_u64(&p);
    if (ranker_config_check(&c, e)) {
        xerr_prefix(e, "ranker model: bad config: ");
        return XE_FAIL;
    }
    if (nds < 1 || nds > 100000)
        return xerr_set(e, XE_FAIL, "ranker model: %u datasets is out of range (1-100000)", nds);
    if (np != param_count(&c, (int)nds))
        return xerr_set(e, XE_FAIL, "ranker model: %llu parameters, its config needs %zu", (unsigned long long)np,
                        param_count(&c, (int)nds));
    want = RANKER_HEADER(version) + np * 4 + 4;
    if (len != want)
        return xerr_set(e, XE_FAIL, "ranker model: %s: expected %zu bytes, got %zu",
                        len < want ? "truncated" : "trailing bytes", want, len);
    if (blob_get_u32(&(const unsigned char *){b + want - 4}) != (uint32_t)crc32(0L, b, (uInt)(want - 4)))
        return xerr_set(e, XE_FAIL, "ranker model: corrupt (CRC-32 mismatch)");
    if ((rc = ranker_new(&r, &c, e)) || (rc = build(r, (int)nds, e)))
        goto fail;
    for (int m = 0; m < c.members; m++)
        have += r->ps[m].size;
    if (have != np) {
        rc = xerr_set(e, XE_FAIL, "ranker model: layout of %zu parameters, expected %llu", have,
                      (unsigned long long)np);
        goto fail;
    }
    for (int m = 0; m < c.members; m++)
        for (size_t i = 0; i < r->ps[m].size; i++)
            r->ps[m].val[i] = blob_get_f32(&p);
    r->fitted = 1;
    *out = r;
    return XE_OK;
fail:
    ranker_free(r);
    return rc;
}
