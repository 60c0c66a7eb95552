/* Unit tests for the XferNAS transfer predictor (lib/model/xfer.h) on
 * synthetic nb201-shaped tasks (6 tokens of 5 values): every task's score
 * is a function of the tokens that all tasks share plus a term of its own.
 * Checks ranking of held-out archs, reconstruction, a new task's residual
 * fit against the universal part alone, zero-shot weights, NAO proposals,
 * the blob round trip and its rejections, determinism and bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "model/similarity.h"
#include "model/xfer.h"

#define L 6          /* tokens per arch */
#define V 5          /* token values */
#define NSRC 4       /* source tasks */
#define NPOOL 1000   /* archs evaluated on every source task */
#define NHELD 500    /* held-out archs */

/* ---- synthetic tasks ---- */

/* A fixed table in [-1, 1] per (position, value), one per stream. */
static void table(uint64_t stream, double w[L][V])
{
    Rng r;
    rng_seed(&r, 1000 + stream);
    for (int k = 0; k < L; k++)
        for (int v = 0; v < V; v++)
            w[k][v] = 2 * rng_uniform(&r) - 1;
}

/* Shared: per-position values plus an interaction between two positions. */
static double shared_score(const int *x)
{
    double w[L][V], s = 0;
    table(0, w);
    for (int k = 0; k < L; k++)
        s += w[k][x[k]];
    return s + (x[1] == x[4] ? 0.8 : 0.0);
}

/* Task t's own term: as large as the shared part's per-position values. */
static double task_score(int t, const int *x)
{
    double w[L][V], s = 0;
    table(1 + (uint64_t)t, w);
    for (int k = 0; k < L; k++)
        s += w[k][x[k]];
    return shared_score(x) + 0.8 * s;
}

static void arch_of(uint32_t index, int *x)
{
    for (int k = L - 1; k >= 0; k--) {
        x[k] = (int)(index % V);
        index /= V;
    }
}

/* The pool and the held-out archs (disjoint), drawn once. */
static int pool[NPOOL * L], held[NHELD * L];

static void draw_archs(void)
{
    static int done;
    uint32_t perm[15625];
    Rng r;
    if (done)
        return;
    for (uint32_t i = 0; i < 15625; i++)
        perm[i] = i;
    rng_seed(&r, 77);
    rng_shuffle_u32(&r, perm, 15625);
    for (int i = 0; i < NPOOL; i++)
        arch_of(perm[i], pool + i * L);
    for (int i = 0; i < NHELD; i++)
        arch_of(perm[NPOOL + i], held + i * L);
    done = 1;
}

/* Scores of task t for n archs, normalised to mean 0, std 1 over them. */
static void task_targets(int t, int n, const int *x, float *y)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) {
        double v = task_score(t, x + i * L);
        y[i] = (float)v;
        s += v;
        ss += v * v;
    }
    s /= n;
    ss = sqrt(ss / n - s * s);
    for (int i = 0; i < n; i++)
        y[i] = (float)((y[i] - s) / ss);
}

/* ---- rank correlation ---- */

static const double *rank_keys;

static int by_key(const void *a, const void *b)
{
    double x = rank_keys[*(const int *)a], y = rank_keys[*(const int *)b];
    return (x > y) - (x < y);
}

/* Ranks (ties averaged). */
static void ranks(const double *v, int n, double *r)
{
    int *idx = malloc((size_t)n * sizeof *idx);
    assert_non_null(idx);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    rank_keys = v;
    qsort(idx, (size_t)n, sizeof *idx, by_key);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
            j++;
        for (int k = i; k <= j; k++)
            r[idx[k]] = (i + j) / 2.0;
        i = j + 1;
    }
    free(idx);
}

static double spearman(const float *a, const double *b, int n)
{
    double *av = malloc((size_t)n * sizeof *av), *ra = malloc((size_t)n * sizeof *ra);
    double *rb = malloc((size_t)n * sizeof *rb), ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    assert_true(av && ra && rb);
    for (int i = 0; i < n; i++)
        av[i] = a[i];
    ranks(av, n, ra);
    ranks(b, n, rb);
    for (int i = 0; i < n; i++) {
        ma += ra[i] / n;
        mb += rb[i] / n;
    }
    for (int i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    free(av);
    free(ra);
    free(rb);
    return sab / sqrt(saa * sbb);
}

/* Spearman of predictions for task (model index mt) against true task t on the held-out archs. */
static double heldout_spearman(const XferModel *m, int mt, int t)
{
    float pred[NHELD];
    double truth[NHELD];
    XErr e = {0};
    if (xfer_predict(m, mt, NHELD, held, pred, NULL, &e))
        fail_msg("predict: %s", e.msg);
    for (int i = 0; i < NHELD; i++)
        truth[i] = task_score(t, held + i * L);
    return spearman(pred, truth, NHELD);
}

/* ---- the model fitted on the source tasks (once, shared by the tests) ---- */

static XferConfig test_config(void)
{
    XferConfig c;
    xfer_config_default(&c, L, V);
    c.epochs = 30;
    c.batch = 64;
    return c;
}

static XferModel *fitted_sources;

static void free_source_model(void)
{
    xfer_free(fitted_sources);
}

static XferModel *source_model(void)
{
    XferModel *m = fitted_sources;
    static int task[NSRC * NPOOL], tokens[NSRC * NPOOL * L];
    static float y[NSRC * NPOOL];
    XferConfig c = test_config();
    XErr e = {0};
    if (m)
        return m;
    draw_archs();
    for (int t = 0; t < NSRC; t++) {
        task_targets(t, NPOOL, pool, y + t * NPOOL);
        for (int i = 0; i < NPOOL; i++)
            task[t * NPOOL + i] = t;
        memcpy(tokens + t * NPOOL * L, pool, sizeof pool);
    }
    assert_int_equal(xfer_new(&m, &c, &e), XE_OK);
    if (xfer_fit(m, NSRC, NSRC * NPOOL, task, tokens, y, NULL, NULL, &e))
        fail_msg("fit: %s", e.msg);
    fitted_sources = m;
    atexit(free_source_model);
    return m;
}

/* ---- tests ---- */

static void test_xfer_config(void **state)
{
    XferConfig c;
    XErr e = {0};
    XferModel *m;
    xfer_config_default(&c, L, V);
    assert_int_equal(xfer_config_check(&c, &e), XE_OK);
    c.hidden = 0;
    assert_int_equal(xfer_new(&m, &c, &e), XE_USAGE);
    assert_string_equal(e.msg, "xfer config: hidden 0 is out of range (1-1024)");
    xfer_config_default(&c, L, V);
    c.alpha = 1.5f;
    xerr_clear(&e);
    assert_int_equal(xfer_config_check(&c, &e), XE_USAGE);
    assert_string_equal(e.msg, "xfer config: alpha 1.5 is out of range (0-1)");
}

/* Each source task's predictions rank unseen archs as the task does. */
static void test_xfer_fit_ranks_heldout(void **state)
{
    XferModel *m = source_model();
    for (int t = 0; t < NSRC; t++) {
        double rho = heldout_spearman(m, t, t);
        if (rho < 0.9)
            fail_msg("task %d: held-out Spearman %.3f < 0.9", t, rho);
    }
}

/* The autoencoder reconstructs unseen archs. */
static void test_xfer_reconstruction(void **state)
{
    XferModel *m = source_model();
    int out[NHELD * L], tok_ok = 0, seq_ok = 0;
    XErr e = {0};
    assert_int_equal(xfer_reconstruct(m, NHELD, held, out, &e), XE_OK);
    for (int i = 0; i < NHELD; i++) {
        int all = 1;
        for (int k = 0; k < L; k++) {
            tok_ok += out[i * L + k] == held[i * L + k];
            all &= out[i * L + k] == held[i * L + k];
        }
        seq_ok += all;
    }
    if (tok_ok < 0.97 * NHELD * L || seq_ok < 0.85 * NHELD)
        fail_msg("reconstruction: %.3f of tokens, %.3f of archs", (double)tok_ok / (NHELD * L),
                 (double)seq_ok / NHELD);
}

/* A new task: its residual starts at zero (prediction = g_u). Fitted on
 * k = 30 evaluations it ranks the task's held-out archs better than g_u
 * alone: by ridge (the default) with g_u frozen or its output layer tuned,
 * and by an MLP with g_u frozen or tuned; on k = 5 the ridge fits are not
 * much worse than g_u (leave-one-out picks the penalty). */
static void test_xfer_residual_beats_universal(void **state)
{
    enum { K = 30, NEW = NSRC + 3 };
    XferModel *m;
    XferResidualOpts o;
    int task;
    float y[K], gu[NHELD], r0[NHELD];
    XErr e = {0};
    double rho_u, rho_ridge, rho_ridge5, rho_ridge_gu, rho_ridge_gu5, rho_frozen, rho_tuned;
    assert_int_equal(xfer_clone(&m, source_model(), &e), XE_OK);
    xfer_residual_default(&o);

    /* no evaluations: the new task predicts g_u exactly */
    assert_int_equal(xfer_fit_residual(m, 0, NULL, NULL, &o, &task, &e), XE_OK);
    assert_int_equal(task, NSRC);
    assert_int_equal(xfer_predict(m, -1, NHELD, held, gu, NULL, &e), XE_OK);
    assert_int_equal(xfer_predict(m, task, NHELD, held, r0, NULL, &e), XE_OK);
    assert_memory_equal(gu, r0, sizeof gu);
    rho_u = heldout_spearman(m, -1, NEW);

    /* the first K pool archs, evaluated on the new task (normalised over them) */
    task_targets(NEW, K, pool, y);
    assert_int_equal(xfer_fit_residual(m, K, pool, y, &o, &task, &e), XE_OK);
    assert_int_equal(task, NSRC + 1);
    rho_ridge = heldout_spearman(m, task, NEW);
    task_targets(NEW, 5, pool, y);
    assert_int_equal(xfer_fit_residual(m, 5, pool, y, &o, &task, &e), XE_OK);
    rho_ridge5 = heldout_spearman(m, task, NEW);
    o.freeze_universal = 0;
    assert_int_equal(xfer_fit_residual(m, 5, pool, y, &o, &task, &e), XE_OK);
    rho_ridge_gu5 = heldout_spearman(m, task, NEW);
    task_targets(NEW, K, pool, y);
    assert_int_equal(xfer_fit_residual(m, K, pool, y, &o, &task, &e), XE_OK);
    rho_ridge_gu = heldout_spearman(m, task, NEW);
    o.freeze_universal = 1;

    task_targets(NEW, K, pool, y);
    o.kind = XFER_RESIDUAL_MLP;
    assert_int_equal(xfer_fit_residual(m, K, pool, y, &o, &task, &e), XE_OK);
    rho_frozen = heldout_spearman(m, task, NEW);
    /* g_u did not move */
    assert_int_equal(xfer_predict(m, -1, NHELD, held, r0, NULL, &e), XE_OK);
    assert_memory_equal(gu, r0, sizeof gu);
    o.freeze_universal = 0;
    assert_int_equal(xfer_fit_residual(m, K, pool, y, &o, &task, &e), XE_OK);
    rho_tuned = heldout_spearman(m, task, NEW);
    assert_int_equal(xfer_ntasks(m), NSRC + 7);
    print_message("new task: universal %.3f; ridge k=5 %.3f, k=%d %.3f; ridge tuning g_u k=5 %.3f, k=%d %.3f; "
                  "mlp k=%d g_u frozen %.3f, tuned %.3f\n",
                  rho_u, rho_ridge5, K, rho_ridge, rho_ridge_gu5, K, rho_ridge_gu, K, rho_frozen, rho_tuned);
    if (rho_ridge < rho_u + 0.05 || rho_ridge_gu < rho_u + 0.05 || rho_frozen < rho_u + 0.03 ||
        rho_tuned < rho_u + 0.03)
        fail_msg("residual fits do not beat the universal part (%.3f): ridge %.3f, %.3f, mlp %.3f, %.3f", rho_u,
                 rho_ridge, rho_ridge_gu, rho_frozen, rho_tuned);
    if (rho_ridge5 < rho_u - 0.03 || rho_ridge_gu5 < rho_u - 0.03)
        fail_msg("ridge on 5 evaluations: %.3f, %.3f, much worse than the universal part %.3f", rho_ridge5,
                 rho_ridge_gu5, rho_u);
    xfer_free(m);
}

/* Zero-shot weights: one-hot equals the task, zeros equal g_u, and a
 * target that is a source task in disguise is ranked better through
 * that source's residual than by g_u alone. */
static void test_xfer_zero_shot_weighted(void **state)
{
    XferModel *m = source_model();
    float w[NSRC] = {0}, a[NHELD], b[NHELD];
    XErr e = {0};
    assert_int_equal(xfer_predict_weighted(m, w, NHELD, held, a, NULL, &e), XE_OK);
    assert_int_equal(xfer_predict(m, -1, NHELD, held, b, NULL, &e), XE_OK);
    assert_memory_equal(a, b, sizeof a);
    w[2] = 1.0f;
    assert_int_equal(xfer_predict_weighted(m, w, NHELD, held, a, NULL, &e), XE_OK);
    assert_int_equal(xfer_predict(m, 2, NHELD, held, b, NULL, &e), XE_OK);
    assert_memory_equal(a, b, sizeof a);
    w[2] = 0.8f;
    w[0] = 0.2f;
    {
        double truth[NHELD], rho_w, rho_u = heldout_spearman(m, -1, 2);
        assert_int_equal(xfer_predict_weighted(m, w, NHELD, held, a, NULL, &e), XE_OK);
        for (int i = 0; i < NHELD; i++)
            truth[i] = task_score(2, held + i * L);
        rho_w = spearman(a, truth, NHELD);
        if (rho_w < rho_u + 0.05)
            fail_msg("weighted zero-shot %.3f does not beat g_u %.3f on a copy of task 2", rho_w, rho_u);
    }
}

/* NAO's step: gradient ascent on the codes of the 100 lowest-predicted
 * held-out archs, decoded, scores higher, predicted and true. */
static void test_xfer_propose_improves(void **state)
{
    enum { N = 100 };
    XferModel *m = source_model();
    float pred[NHELD], pin[N], pout[N];
    int order[NHELD], in[N * L], out[N * L], changed = 0;
    double true_in = 0, true_out = 0, p_in = 0, p_out = 0;
    XErr e = {0};
    assert_int_equal(xfer_predict(m, 1, NHELD, held, pred, NULL, &e), XE_OK);
    {
        double keys[NHELD];
        for (int i = 0; i < NHELD; i++) {
            keys[i] = pred[i];
            order[i] = i;
        }
        rank_keys = keys;
        qsort(order, NHELD, sizeof *order, by_key);
    }
    for (int i = 0; i < N; i++)
        memcpy(in + i * L, held + order[i] * L, L * sizeof *in);
    assert_int_equal(xfer_propose(m, 1, N, in, 0.5f, 10, out, &e), XE_OK);
    assert_int_equal(xfer_predict(m, 1, N, in, pin, NULL, &e), XE_OK);
    assert_int_equal(xfer_predict(m, 1, N, out, pout, NULL, &e), XE_OK);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < L; k++)
            assert_in_range(out[i * L + k], 0, V - 1);
        changed += memcmp(in + i * L, out + i * L, L * sizeof *in) != 0;
        p_in += pin[i] / N;
        p_out += pout[i] / N;
        true_in += task_score(1, in + i * L) / N;
        true_out += task_score(1, out + i * L) / N;
    }
    print_message("propose: %d of %d changed; predicted %.3f -> %.3f, true %.3f -> %.3f\n", changed, N, p_in, p_out,
                  true_in, true_out);
    if (changed < N / 2 || p_out < p_in + 0.5 || true_out < true_in + 0.5)
        fail_msg("proposals do not improve: %d changed, predicted %.3f -> %.3f, true %.3f -> %.3f", changed, p_in,
                 p_out, true_in, true_out);
    /* zero steps: the reconstruction */
    {
        int rec[N * L];
        assert_int_equal(xfer_propose(m, 1, N, in, 0.5f, 0, out, &e), XE_OK);
        assert_int_equal(xfer_reconstruct(m, N, in, rec, &e), XE_OK);
        assert_memory_equal(out, rec, sizeof rec);
    }
}

/* A small ensemble fitted fast (tests of the blob and determinism). */
static XferModel *small_model(uint64_t seed, int ensemble, int threads)
{
    XferConfig c;
    XferModel *m;
    int task[2 * 200], tokens[2 * 200 * L];
    float y[2 * 200];
    XErr e = {0};
    draw_archs();
    xfer_config_default(&c, L, V);
    c.epochs = 2;
    c.batch = 32;
    c.seed = seed;
    c.ensemble = ensemble;
    c.threads = threads;
    c.dropout = 0.1f;
    for (int t = 0; t < 2; t++) {
        task_targets(t, 200, pool, y + t * 200);
        for (int i = 0; i < 200; i++)
            task[t * 200 + i] = t;
        memcpy(tokens + t * 200 * L, pool, 200 * L * sizeof *tokens);
    }
    assert_int_equal(xfer_new(&m, &c, &e), XE_OK);
    if (xfer_fit(m, 2, 400, task, tokens, y, NULL, NULL, &e))
        fail_msg("fit: %s", e.msg);
    return m;
}

static void test_xfer_save_load_roundtrip(void **state)
{
    XferModel *m = small_model(5, 2, 0), *back;
    XferResidualOpts o;
    void *buf, *buf2;
    size_t len, len2;
    float a[NHELD], as[NHELD], b[NHELD], bs[NHELD], y[20];
    int ta, tb;
    XErr e = {0};
    assert_int_equal(xfer_save(m, &buf, &len, &e), XE_OK);
    assert_int_equal(xfer_load(&back, buf, len, &e), XE_OK);
    assert_int_equal(xfer_ntasks(back), 2);
    assert_int_equal(xfer_param_count(back), xfer_param_count(m));
    for (int t = -1; t < 2; t++) {
        assert_int_equal(xfer_predict(m, t, NHELD, held, a, as, &e), XE_OK);
        assert_int_equal(xfer_predict(back, t, NHELD, held, b, bs, &e), XE_OK);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(as, bs, sizeof as);
    }
    /* saved again: the same bytes */
    assert_int_equal(xfer_save(back, &buf2, &len2, &e), XE_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    free(buf2);
    /* a residual fitted after loading is the one fitted before saving */
    xfer_residual_default(&o);
    task_targets(9, 20, pool, y);
    assert_int_equal(xfer_fit_residual(m, 20, pool, y, &o, &ta, &e), XE_OK);
    assert_int_equal(xfer_fit_residual(back, 20, pool, y, &o, &tb, &e), XE_OK);
    assert_int_equal(xfer_predict(m, ta, NHELD, held, a, NULL, &e), XE_OK);
    assert_int_equal(xfer_predict(back, tb, NHELD, held, b, NULL, &e), XE_OK);
    assert_memory_equal(a, b, sizeof a);
    /* and the model with new tasks of every residual kind round-trips too */
    o.freeze_universal = 0;
    assert_int_equal(xfer_fit_residual(m, 20, pool, y, &o, &ta, &e), XE_OK);
    o.kind = XFER_RESIDUAL_MLP;
    assert_int_equal(xfer_fit_residual(m, 20, pool, y, &o, &ta, &e), XE_OK);
    free(buf);
    assert_int_equal(xfer_save(m, &buf, &len, &e), XE_OK);
    xfer_free(back);
    assert_int_equal(xfer_load(&back, buf, len, &e), XE_OK);
    assert_int_equal(xfer_ntasks(back), 5);
    for (int t = -1; t < 5; t++) {
        assert_int_equal(xfer_predict(m, t, NHELD, held, a, as, &e), XE_OK);
        assert_int_equal(xfer_predict(back, t, NHELD, held, b, bs, &e), XE_OK);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(as, bs, sizeof as);
    }
    free(buf);
    xfer_free(back);
    xfer_free(m);
}

static void expect_load_error(const void *buf, size_t len, const char *text)
{
    XferModel *m = NULL;
    XErr e = {0};
    int rc = xfer_load(&m, buf, len, &e);
    assert_null(m);
    unit_expect_error(rc, &e, text);
}

static void test_xfer_load_rejects(void **state)
{
    XferModel *m = small_model(6, 1, 0);
    unsigned char *buf, *bad;
    size_t len;
    char msg[128];
    XErr e = {0};
    assert_int_equal(xfer_save(m, (void **)&buf, &len, &e), XE_OK);
    bad = malloc(len + 8);
    assert_non_null(bad);

    snprintf(msg, sizeof msg, "xfer model: truncated: expected %zu bytes, got %zu", len, len - 1);
    expect_load_error(buf, len - 1, msg);
    expect_load_error(buf, len / 2, "xfer model: truncated: expected");
    expect_load_error(buf, 20, "xfer model: truncated: 20 bytes, the header alone is");
    expect_load_error(buf, 0, "not a model blob");
    memcpy(bad, buf, len);
    memset(bad + len, 0, 8);
    expect_load_error(bad, len + 8, "trailing bytes");

    /* foreign blobs */
    expect_load_error("\x89PNG\r\n\x1a\n0000000000000000000000000000000000000000", 44,
                      "xfer model: not a model blob (no \"XFERPRED\" magic)");
    memcpy(bad, "XFERTASK", 8);
    expect_load_error(bad, len, "no \"XFERPRED\" magic");

    /* a newer format */
    memcpy(bad, buf, len);
    bad[8] = 2;
    expect_load_error(bad, len, "xfer model: format version 2 is not supported (this build reads 1)");

    /* a config that does not fit the parameters, a bad config, a flipped bit */
    memcpy(bad, buf, len);
    bad[16 + 3 * 4] = 33; /* hidden */
    expect_load_error(bad, len, "parameters per member, its config needs");
    memcpy(bad, buf, len);
    bad[16 + 3 * 4] = 0;
    expect_load_error(bad, len, "xfer model: bad config: xfer config: hidden 0 is out of range");
    memcpy(bad, buf, len);
    bad[104] = 7; /* the first task's residual kind, after the 104-byte header */
    expect_load_error(bad, len, "xfer model: task 0 has an unknown residual kind 7");
    memcpy(bad, buf, len);
    bad[len / 2] ^= 0x10;
    expect_load_error(bad, len, "xfer model: corrupt (CRC-32 mismatch)");

    free(bad);
    free(buf);
    xfer_free(m);
}

/* The same config and data give the same bytes, whether the members are
 * fitted side by side or one after the other; another seed does not. An
 * ensemble's spread is pred_std. */
static void test_xfer_deterministic_and_ensemble(void **state)
{
    XferModel *a = small_model(11, 3, 0), *b = small_model(11, 3, 1), *c = small_model(12, 3, 0);
    void *ba, *bb, *bc;
    size_t la, lb, lc;
    float mean[NHELD], std[NHELD];
    int spread = 0;
    XErr e = {0};
    assert_int_equal(xfer_save(a, &ba, &la, &e), XE_OK);
    assert_int_equal(xfer_save(b, &bb, &lb, &e), XE_OK);
    assert_int_equal(xfer_save(c, &bc, &lc, &e), XE_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    assert_int_equal(la, lc);
    assert_true(memcmp(ba, bc, la) != 0);
    assert_int_equal(xfer_predict(a, 0, NHELD, held, mean, std, &e), XE_OK);
    for (int i = 0; i < NHELD; i++) {
        assert_true(isfinite(mean[i]) && isfinite(std[i]) && std[i] >= 0);
        spread += std[i] > 1e-3f;
    }
    assert_true(spread > NHELD * 9 / 10);
    free(ba);
    free(bb);
    free(bc);
    xfer_free(a);
    xfer_free(b);
    xfer_free(c);
}

static int stop_after_two(void *ctx, const XferEpoch *ep, XErr *e)
{
    int *calls = ctx;
    ++*calls;
    assert_true(ep->loss_pred >= 0 && ep->loss_rec >= 0 && ep->rec_acc >= 0 && ep->rec_acc <= 1);
    if (ep->epoch == 2)
        return xerr_set(e, XE_INTR, "stopped at epoch %d", ep->epoch);
    return XE_OK;
}

static void test_xfer_bad_input(void **state)
{
    XferConfig c;
    XferModel *m, *src = source_model();
    int task[3] = {0, 1, 0}, tokens[3 * L] = {0}, calls = 0, out[L];
    float y[3] = {0.1f, 0.2f, 0.3f}, p[3];
    void *blob;
    size_t len;
    XErr e = {0};
    xfer_config_default(&c, L, V);
    assert_int_equal(xfer_new(&m, &c, &e), XE_OK);
    unit_expect_error(xfer_predict(m, 0, 3, tokens, p, NULL, &e), &e, "xfer model: not fitted");
    xerr_clear(&e);
    unit_expect_error(xfer_save(m, &blob, &len, &e), &e, "not fitted");
    xerr_clear(&e);
    task[1] = 2;
    unit_expect_error(xfer_fit(m, 2, 3, task, tokens, y, NULL, NULL, &e), &e, "row 1: task 2 is out of range (0-1)");
    task[1] = 1;
    tokens[2 * L + 3] = 5;
    xerr_clear(&e);
    unit_expect_error(xfer_fit(m, 2, 3, task, tokens, y, NULL, NULL, &e), &e,
                      "row 2: token 5 at 3 is out of range (0-4)");
    tokens[2 * L + 3] = 0;
    y[0] = NAN;
    xerr_clear(&e);
    unit_expect_error(xfer_fit(m, 2, 3, task, tokens, y, NULL, NULL, &e), &e, "row 0: target nan is not finite");
    y[0] = 0;
    xerr_clear(&e);
    unit_expect_error(xfer_fit(m, 0, 3, task, tokens, y, NULL, NULL, &e), &e, "0 tasks");
    /* a callback stops the fit; the model is then not fitted */
    xerr_clear(&e);
    assert_int_equal(xfer_fit(m, 2, 3, task, tokens, y, stop_after_two, &calls, &e), XE_INTR);
    assert_string_equal(e.msg, "stopped at epoch 2");
    assert_int_equal(calls, 2);
    xerr_clear(&e);
    unit_expect_error(xfer_predict(m, 0, 1, tokens, p, NULL, &e), &e, "not fitted");
    xfer_free(m);

    xerr_clear(&e);
    unit_expect_error(xfer_predict(src, NSRC, 1, tokens, p, NULL, &e), &e,
                      "xfer predict: task 4 is out of range (-1-3)");
    xerr_clear(&e);
    unit_expect_error(xfer_propose(src, -2, 1, tokens, 0.1f, 1, out, &e), &e, "task -2 is out of range");
    tokens[1] = -1;
    xerr_clear(&e);
    unit_expect_error(xfer_predict(src, 0, 1, tokens, p, NULL, &e), &e, "row 0: token -1 at 1 is out of range");
}

/* Similarity weights: softmax of minus the standardised log-feature
 * distance, features missing anywhere or constant over the sources
 * dropped, uniform when nothing is left. */
static void test_xfer_similarity_weights(void **state)
{
    (void)state;
    const double a[SIM_NFEAT] = { 10, 28, 28, 1, 6000, 0.1, 0.15, 0.3, 0.2 };
    const double b[SIM_NFEAT] = { 100, 32, 32, 3, 50000, 0.4, 0.5, 0.7, 0.6 };
    const double c[SIM_NFEAT] = { 10, 32, 32, 3, 50000, 0.12, 0.2, 0.25, 0.2 };
    double none[SIM_NFEAT], t2[SIM_NFEAT], zero[SIM_NFEAT];
    const double *src[4] = { a, b, c, NULL };
    double w[4], sx = 0;
    unsigned used = sim_weights(a, 4, src, 1.0, w);
    char buf[256];
    for (int k = 0; k < SIM_NFEAT; k++)
        none[k] = t2[k] = NAN, zero[k] = a[k];
    assert_int_equal(used, (1u << SIM_NFEAT) - 1);
    for (int i = 0; i < 4; i++)
        sx += w[i];
    assert_true(fabs(sx - 1) < 1e-12);
    assert_true(w[0] > w[2] && w[2] > w[1] && w[3] == 0);
    /* by hand: z over {a, b, c}; a's distance 0, so w_i = e^-d_i / sum */
    {
        double d[3] = { 0, 0, 0 }, t = 0;
        for (int k = 0; k < SIM_NFEAT; k++) {
            double x[3] = { log(a[k]), log(b[k]), log(c[k]) }, m = (x[0] + x[1] + x[2]) / 3, v = 0;
            for (int i = 0; i < 3; i++)
                v += (x[i] - m) * (x[i] - m) / 3;
            for (int i = 0; i < 3; i++)
                d[i] += (x[0] - x[i]) * (x[0] - x[i]) / v / SIM_NFEAT;
        }
        for (int i = 0; i < 3; i++)
            t += exp(-sqrt(d[i]));
        for (int i = 0; i < 3; i++)
            assert_true(fabs(w[i] - exp(-sqrt(d[i])) / t) < 1e-12);
    }
    /* a feature missing for the target (NAN, or 0) is dropped; nothing
     * left: uniform */
    {
        t2[SIM_CLASSES] = 10;
        t2[SIM_PROBE + 2] = 0.3;
        used = sim_weights(t2, 4, src, 1.0, w);
        assert_int_equal(used, 1u << SIM_CLASSES | 1u << (SIM_PROBE + 2));
        sim_feature_list(used, buf, sizeof buf);
        assert_string_equal(buf, "classes, probe_pool");
        zero[SIM_PROBE + 2] = 0;
        used = sim_weights(zero, 4, src, 1.0, w);
        assert_int_equal(used, ((1u << SIM_NFEAT) - 1) & ~(1u << (SIM_PROBE + 2)));
        t2[SIM_PROBE + 2] = NAN;
        used = sim_weights(t2, 4, src, 1.0, w);
        assert_int_equal(used, 1u << SIM_CLASSES);
        sim_feature_list(used, buf, sizeof buf);
        assert_string_equal(buf, "classes");
        used = sim_weights(none, 4, src, 1.0, w);
        assert_int_equal(used, 0);
        assert_true(fabs(w[0] - 1.0 / 3) < 1e-12 && fabs(w[1] - 1.0 / 3) < 1e-12 && w[3] == 0);
    }
}

const struct CMUnitTest test_xfer_tests[] = {
    cmocka_unit_test(test_xfer_similarity_weights),
    cmocka_unit_test(test_xfer_config),
    cmocka_unit_test(test_xfer_fit_ranks_heldout),
    cmocka_unit_test(test_xfer_reconstruction),
    cmocka_unit_test(test_xfer_residual_beats_universal),
    cmocka_unit_test(test_xfer_zero_shot_weighted),
    cmocka_unit_test(test_xfer_propose_improves),
    cmocka_unit_test(test_xfer_save_load_roundtrip),
    cmocka_unit_test(test_xfer_load_rejects),
    cmocka_unit_test(test_xfer_deterministic_and_ensemble),
    cmocka_unit_test(test_xfer_bad_input),
};
const size_t test_xfer_count = sizeof test_xfer_tests / sizeof test_xfer_tests[0];
