/* Unit tests for the learning-curve ranker (lib/model/ranker.h) on
 * synthetic curves: each arch's final accuracy and its learning speed both
 * follow from its tokens, independently, so early curves cross and the
 * current accuracy is a poor guide. Checks that the ranker orders held-out
 * runs from a quarter of their curves better than their current accuracy
 * does, p(a beats b) against b's curve, unseen datasets, scores that see
 * the curve only relative to the reference, the blob round trip and its
 * rejections, determinism and bad input. */
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

#include "core/rng.h"
#include "model/ranker.h"

#include <zlib.h>

#define L 6
#define V 5
#define NDS 3
#define NTRAIN 120   /* runs per dataset to fit on */
#define NTEST 60     /* held-out runs per dataset */
#define EPOCHS 12

typedef struct Synth {
    int tokens[NDS][NTRAIN + NTEST][L];
    float curve[NDS][NTRAIN + NTEST][EPOCHS];
    RankerRun train[NDS * NTRAIN], test[NDS * NTEST];
} Synth;

/* Final accuracy from a per-position table and the dataset; the speed
 * from how many of tokens 3 and 4 (slow learners) the arch has. */
static void make_run(int d, const int *x, Rng *r, float *curve, float *final)
{
    static const double w[L][V] = {{0.3, -0.2, 0.5, 0.1, -0.4}, {-0.1, 0.4, 0.2, -0.3, 0.0},
                                   {0.2, 0.1, -0.5, 0.4, 0.3},  {0.0, -0.3, 0.3, 0.2, -0.1},
                                   {0.4, 0.0, -0.2, -0.1, 0.3}, {-0.2, 0.2, 0.1, 0.5, -0.3}};
    double q = 0, tau = 1.0;
    for (int k = 0; k < L; k++) {
        q += w[k][x[k]];
        tau += x[k] >= 3 ? 1.2 : 0.0;
    }
    q = 0.6 + 0.1 * q + 0.05 * d;
    for (int t = 0; t < EPOCHS; t++)
        curve[t] = (float)(q * (1.0 - exp(-(t + 1) / tau)) + 0.003 * (rng_uniform(r) - 0.5));
    *final = curve[EPOCHS - 1];
}

static Synth *synth(void)
{
    static Synth s;
    static int done;
    Rng r;
    if (done)
        return &s;
    rng_seed(&r, 31);
    for (int d = 0; d < NDS; d++) {
        uint32_t perm[15625];
        for (uint32_t i = 0; i < 15625; i++)
            perm[i] = i;
        rng_shuffle_u32(&r, perm, 15625); /* distinct archs: the held-out ones are unseen */
        for (int i = 0; i < NTRAIN + NTEST; i++) {
            float final;
            uint32_t idx = perm[i];
            for (int k = L - 1; k >= 0; k--) {
                s.tokens[d][i][k] = (int)(idx % V);
                idx /= V;
            }
            make_run(d, s.tokens[d][i], &r, s.curve[d][i], &final);
            if (i < NTRAIN)
                s.train[d * NTRAIN + i] =
                    (RankerRun){.dataset = d, .tokens = s.tokens[d][i], .curve = s.curve[d][i], .epochs = EPOCHS,
                                .final = final};
            else
                s.test[d * NTEST + i - NTRAIN] =
                    (RankerRun){.dataset = d, .tokens = s.tokens[d][i], .curve = s.curve[d][i], .epochs = EPOCHS,
                                .final = final};
        }
    }
    /* every run's reference (read when scoring): its dataset's best training run */
    for (int d = 0; d < NDS; d++) {
        const RankerRun *best = &s.train[d * NTRAIN];
        for (int i = 1; i < NTRAIN; i++)
            if (s.train[d * NTRAIN + i].final > best->final)
                best = &s.train[d * NTRAIN + i];
        for (int i = 0; i < NTRAIN; i++)
            s.train[d * NTRAIN + i].ref = best->curve, s.train[d * NTRAIN + i].ref_epochs = EPOCHS;
        for (int i = 0; i < NTEST; i++)
            s.test[d * NTEST + i].ref = best->curve, s.test[d * NTEST + i].ref_epochs = EPOCHS;
    }
    done = 1;
    return &s;
}

static RankerConfig test_config(void)
{
    RankerConfig c;
    ranker_config_default(&c, L, V, 1);
    c.steps = 600;
    return c;
}

static Ranker *fitted_ranker;

static void free_fitted(void)
{
    ranker_free(fitted_ranker);
}

static Ranker *fitted(void)
{
    RankerConfig c = test_config();
    XErr e = {0};
    if (fitted_ranker)
        return fitted_ranker;
    assert_int_equal(ranker_new(&fitted_ranker, &c, &e), XE_OK);
    if (ranker_fit(fitted_ranker, NDS, NDS * NTRAIN, synth()->train, NULL, 0, NULL, &e))
        fail_msg("fit: %s", e.msg);
    atexit(free_fitted);
    return fitted_ranker;
}

/* Held-out pairs of one dataset, each run seen for `seen` epochs: the
 * share the ranker orders right, and the share the current accuracy does. */
static void pair_accuracy(Ranker *rk, int seen, double *ranker_acc, double *current_acc)
{
    Synth *s = synth();
    RankerRun cut[NDS * NTEST];
    float score[NDS * NTEST];
    long right = 0, cur = 0, total = 0;
    XErr e = {0};
    for (int i = 0; i < NDS * NTEST; i++) {
        cut[i] = s->test[i];
        cut[i].epochs = seen;
    }
    assert_int_equal(ranker_score(rk, NDS * NTEST, cut, score, &e), XE_OK);
    for (int d = 0; d < NDS; d++)
        for (int i = d * NTEST; i < (d + 1) * NTEST; i++)
            for (int j = i + 1; j < (d + 1) * NTEST; j++) {
                int truth = s->test[i].final > s->test[j].final;
                if (s->test[i].final == s->test[j].final)
                    continue;
                right += (score[i] > score[j]) == truth;
                cur += (cut[i].curve[seen - 1] > cut[j].curve[seen - 1]) == truth;
                total++;
            }
    *ranker_acc = (double)right / total;
    *current_acc = (double)cur / total;
}

static void test_ranker_orders_partial_curves(void **state)
{
    double acc, cur, acc_full, cur_full;
    pair_accuracy(fitted(), EPOCHS / 4, &acc, &cur);
    pair_accuracy(fitted(), EPOCHS, &acc_full, &cur_full);
    print_message("pairs ordered right from %d of %d epochs: ranker %.3f, current accuracy %.3f; from all: %.3f\n",
                  EPOCHS / 4, EPOCHS, acc, cur, acc_full);
    if (acc < 0.85 || acc < cur + 0.1)
        fail_msg("ranker orders %.3f of pairs from a quarter of the curves, current accuracy %.3f", acc, cur);
    if (acc_full < 0.9)
        fail_msg("ranker orders %.3f of pairs from whole curves", acc_full);
}

static void test_ranker_prob_beats(void **state)
{
    Ranker *rk = fitted();
    Synth *s = synth();
    RankerRun a = s->test[0], b = s->test[1], u, both[2];
    double pab, pba, paa;
    float sc[2];
    XErr e = {0};
    a.epochs = 3;
    assert_int_equal(ranker_prob_beats(rk, &a, &b, &pab, &e), XE_OK);
    assert_int_equal(ranker_prob_beats(rk, &b, &a, &pba, &e), XE_OK);
    assert_int_equal(ranker_prob_beats(rk, &a, &a, &paa, &e), XE_OK);
    assert_true(paa == 0.5);
    /* both scored against b's curve (p(b beats a) takes a's: the two need
     * not sum to 1) */
    both[0] = a, both[1] = b;
    both[0].ref = both[1].ref = b.curve;
    both[0].ref_epochs = both[1].ref_epochs = b.epochs;
    assert_int_equal(ranker_score(rk, 2, both, sc, &e), XE_OK);
    assert_true(fabs(pab - 1.0 / (1.0 + exp(-((double)sc[0] - sc[1])))) < 1e-12);
    both[0].ref = both[1].ref = a.curve;
    both[0].ref_epochs = both[1].ref_epochs = a.epochs;
    assert_int_equal(ranker_score(rk, 2, both, sc, &e), XE_OK);
    assert_true(fabs(pba - 1.0 / (1.0 + exp(-((double)sc[1] - sc[0])))) < 1e-12);
    /* each cut of a against b, as ranker_prob_beats for that cut */
    {
        double each[EPOCHS], one;
        RankerRun cut = s->test[0];
        assert_int_equal(ranker_prob_beats_each(rk, &s->test[0], &b, each, &e), XE_OK);
        for (int k = 1; k <= EPOCHS; k++) {
            cut.epochs = k;
            assert_int_equal(ranker_prob_beats(rk, &cut, &b, &one, &e), XE_OK);
            assert_true(fabs(each[k - 1] - one) < 1e-6);
        }
    }
    /* an unseen dataset scores too: against the mean embedding */
    u = b;
    u.dataset = -1;
    assert_int_equal(ranker_prob_beats(rk, &a, &u, &pab, &e), XE_OK);
    both[0] = a, both[1] = u;
    both[0].ref = both[1].ref = b.curve;
    both[0].ref_epochs = both[1].ref_epochs = b.epochs;
    assert_int_equal(ranker_score(rk, 2, both, sc, &e), XE_OK);
    assert_true(fabs(pab - 1.0 / (1.0 + exp(-((double)sc[0] - sc[1])))) < 1e-12);
}

/* The curve enters relative to the reference: lifting a run's curve and
 * its reference by the same amount leaves its score as it was; lifting the
 * curve alone changes it (the ranker reads the curve). */
static void test_ranker_relative_curve(void **state)
{
    Ranker *rk = fitted();
    Synth *s = synth();
    float up[EPOCHS], ref_up[EPOCHS], sc[3];
    RankerRun rows[3];
    XErr e = {0};
    for (int k = 0; k < EPOCHS; k++) {
        up[k] = s->test[0].curve[k] + 0.05f;
        ref_up[k] = s->test[0].ref[k] + 0.05f;
    }
    rows[0] = rows[1] = rows[2] = s->test[0];
    rows[1].curve = up;
    rows[1].ref = ref_up;
    rows[2].curve = up;
    assert_int_equal(ranker_score(rk, 3, rows, sc, &e), XE_OK);
    assert_true(fabsf(sc[0] - sc[1]) < 1e-4f * (1 + fabsf(sc[0])));
    assert_true(sc[2] > sc[0]);
}

/* The same archs on every dataset, as in a meta-dataset: each run's final
 * accuracy is its arch's quality plus a deviation of its own dataset that
 * only its curve shows. The arch and the dataset embedding alone can fit
 * the training datasets by heart; on an unseen dataset only the curve
 * tells the deviation. From whole curves the ranker must order the unseen
 * dataset's pairs better than the arch's quality does. */
static void test_ranker_reads_curve_of_unseen_dataset(void **state)
{
    enum { N = 100, ND = 4 };
    static int tokens[N][L];
    static float curve[ND][N][EPOCHS];
    static RankerRun runs[ND * N];
    double q[N], dev[ND][N];
    float score[N];
    RankerConfig c = test_config();
    Ranker *rk;
    Rng r;
    int best = 0;
    long right = 0, arch = 0, total = 0;
    XErr e = {0};
    rng_seed(&r, 77);
    for (int a = 0; a < N; a++) {
        for (int k = 0; k < L; k++)
            tokens[a][k] = (int)rng_below(&r, V);
        q[a] = 0.7 + 0.08 * rng_uniform(&r);
        for (int d = 0; d < ND; d++)
            dev[d][a] = 0.08 * (rng_uniform(&r) - 0.5);
    }
    for (int d = 0; d < ND; d++)
        for (int a = 0; a < N; a++) {
            double tau = 1.5 + 2.0 * rng_uniform(&r), fin = q[a] + dev[d][a];
            for (int t = 0; t < EPOCHS; t++)
                curve[d][a][t] = (float)(fin * (1.0 - exp(-(t + 1) / tau)) + 0.002 * (rng_uniform(&r) - 0.5));
            runs[d * N + a] = (RankerRun){.dataset = d, .tokens = tokens[a], .curve = curve[d][a],
                                          .epochs = EPOCHS, .final = curve[d][a][EPOCHS - 1]};
        }
    assert_int_equal(ranker_new(&rk, &c, &e), XE_OK);
    if (ranker_fit(rk, ND - 1, (ND - 1) * N, runs, NULL, 0, NULL, &e))
        fail_msg("fit: %s", e.msg);
    /* the unseen dataset, whole curves, against its best run */
    for (int a = 1; a < N; a++)
        if (runs[(ND - 1) * N + a].final > runs[(ND - 1) * N + best].final)
            best = a;
    for (int a = 0; a < N; a++) {
        RankerRun *u = &runs[(ND - 1) * N + a];
        u->dataset = -1;
        u->ref = curve[ND - 1][best];
        u->ref_epochs = EPOCHS;
    }
    assert_int_equal(ranker_score(rk, N, runs + (ND - 1) * N, score, &e), XE_OK);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            float fi = runs[(ND - 1) * N + i].final, fj = runs[(ND - 1) * N + j].final;
            if (fi == fj)
                continue;
            right += (score[i] > score[j]) == (fi > fj);
            arch += (q[i] > q[j]) == (fi > fj);
            total++;
        }
    print_message("unseen dataset, whole curves: ranker orders %.3f of pairs, arch quality %.3f\n",
                  (double)right / total, (double)arch / total);
    if ((double)right / total < 0.9 || right < arch + total / 20)
        fail_msg("ranker orders %.3f of the unseen dataset's pairs from whole curves, arch quality %.3f",
                 (double)right / total, (double)arch / total);
    ranker_free(rk);
}

static void test_ranker_save_load(void **state)
{
    Ranker *rk = fitted(), *back;
    Synth *s = synth();
    float a[NDS * NTEST], b[NDS * NTEST];
    unsigned char *buf, *bad;
    size_t len;
    char msg[128];
    XErr e = {0};
    assert_int_equal(ranker_save(rk, (void **)&buf, &len, &e), XE_OK);
    assert_int_equal(ranker_load(&back, buf, len, &e), XE_OK);
    assert_int_equal(ranker_ndatasets(back), NDS);
    assert_int_equal(ranker_score(rk, NDS * NTEST, s->test, a, &e), XE_OK);
    assert_int_equal(ranker_score(back, NDS * NTEST, s->test, b, &e), XE_OK);
    assert_memory_equal(a, b, sizeof a);
    ranker_free(back);

    bad = malloc(len);
    assert_non_null(bad);
    back = NULL;
    snprintf(msg, sizeof msg, "ranker model: truncated: expected %zu bytes, got %zu", len, len - 4);
    unit_expect_error(ranker_load(&back, buf, len - 4, &e), &e, msg);
    xerr_clear(&e);
    unit_expect_error(ranker_load(&back, buf, 30, &e), &e, "ranker model: truncated: 30 bytes, the header alone is");
    xerr_clear(&e);
    memcpy(bad, "XFERPRED", 8);
    memcpy(bad + 8, buf + 8, len - 8);
    unit_expect_error(ranker_load(&back, bad, len, &e), &e, "not a ranker blob (no \"XFERRANK\" magic)");
    memcpy(bad, buf, len);
    bad[8] = 7;
    xerr_clear(&e);
    unit_expect_error(ranker_load(&back, bad, len, &e), &e, "format version 7 is not supported (this build reads 2 and 3)");
    memcpy(bad, buf, len);
    bad[len - 10] ^= 1;
    xerr_clear(&e);
    unit_expect_error(ranker_load(&back, bad, len, &e), &e, "corrupt (CRC-32 mismatch)");
    assert_null(back);
    free(bad);
    free(buf);
}

/* An ensemble's score is the mean of its members', each fitted as the
 * one-member ranker of its seed; it survives the blob; a format-2 blob
 * (no member count) loads as one member. */
static void test_ranker_members(void **state)
{
    RankerConfig c = test_config(), c1;
    Ranker *ens, *one[2], *back;
    Synth *s = synth();
    float se[NDS * NTEST], s1[2][NDS * NTEST], sb[NDS * NTEST];
    unsigned char *buf, *old;
    size_t len;
    XErr e = {0};
    c.steps = 150;
    c.members = 2;
    assert_int_equal(ranker_new(&ens, &c, &e), XE_OK);
    assert_int_equal(ranker_fit(ens, NDS, NDS * NTRAIN, s->train, NULL, 0, NULL, &e), XE_OK);
    assert_int_equal(ranker_score(ens, NDS * NTEST, s->test, se, &e), XE_OK);
    for (int m = 0; m < 2; m++) {
        c1 = c;
        c1.members = 1;
        c1.seed = c.seed + (uint64_t)m * RANKER_MEMBER_SEED_STEP;
        assert_int_equal(ranker_new(&one[m], &c1, &e), XE_OK);
        assert_int_equal(ranker_fit(one[m], NDS, NDS * NTRAIN, s->train, NULL, 0, NULL, &e), XE_OK);
        assert_int_equal(ranker_score(one[m], NDS * NTEST, s->test, s1[m], &e), XE_OK);
    }
    for (int i = 0; i < NDS * NTEST; i++)
        assert_float_equal(se[i], 0.5f * (s1[0][i] + s1[1][i]), 1e-5f);
    assert_true(memcmp(s1[0], s1[1], sizeof s1[0]) != 0); /* the members differ */

    assert_int_equal(ranker_save(ens, (void **)&buf, &len, &e), XE_OK);
    assert_int_equal(ranker_load(&back, buf, len, &e), XE_OK);
    assert_int_equal(ranker_config(back)->members, 2);
    assert_int_equal(ranker_score(back, NDS * NTEST, s->test, sb, &e), XE_OK);
    assert_memory_equal(se, sb, sizeof se);
    ranker_free(back);
    free(buf);

    /* format 2: version 2 and no member count (the 12th int, at byte 60) */
    assert_int_equal(ranker_save(one[1], (void **)&buf, &len, &e), XE_OK);
    old = malloc(len - 4);
    assert_non_null(old);
    memcpy(old, buf, 60);
    memcpy(old + 60, buf + 64, len - 64);
    old[8] = 2;
    {
        uint32_t crc = (uint32_t)crc32(0L, old, (uInt)(len - 8));
        for (int k = 0; k < 4; k++)
            old[len - 8 + k] = (unsigned char)(crc >> (8 * k));
    }
    assert_int_equal(ranker_load(&back, old, len - 4, &e), XE_OK);
    assert_int_equal(ranker_config(back)->members, 1);
    assert_int_equal(ranker_score(back, NDS * NTEST, s->test, sb, &e), XE_OK);
    assert_memory_equal(s1[1], sb, sizeof sb);
    ranker_free(back);
    free(old);
    free(buf);
    ranker_free(ens);
    ranker_free(one[0]);
    ranker_free(one[1]);
}

static void test_ranker_deterministic(void **state)
{
    RankerConfig c = test_config();
    Ranker *a, *b;
    void *ba, *bb;
    size_t la, lb;
    XErr e = {0};
    c.steps = 30;
    assert_int_equal(ranker_new(&a, &c, &e), XE_OK);
    assert_int_equal(ranker_new(&b, &c, &e), XE_OK);
    assert_int_equal(ranker_fit(a, NDS, NDS * NTRAIN, synth()->train, NULL, 0, NULL, &e), XE_OK);
    assert_int_equal(ranker_fit(b, NDS, NDS * NTRAIN, synth()->train, NULL, 0, NULL, &e), XE_OK);
    assert_int_equal(ranker_save(a, &ba, &la, &e), XE_OK);
    assert_int_equal(ranker_save(b, &bb, &lb, &e), XE_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
    ranker_free(a);
    ranker_free(b);
}

static int count_steps(void *ctx, int step, int steps, double loss, double acc, XErr *e)
{
    int *calls = ctx;
    ++*calls;
    assert_true(loss > 0 && acc >= 0 && acc <= 1);
    return step >= 20 ? xerr_set(e, XE_INTR, "stopped at step %d", step) : XE_OK;
}

static void test_ranker_bad_input(void **state)
{
    RankerConfig c = test_config();
    Ranker *r;
    Synth *s = synth();
    RankerRun runs[3] = {s->train[0], s->train[1], s->train[2]};
    float nan_curve[EPOCHS], score;
    int calls = 0;
    XErr e = {0};
    c.curve_dim = 0;
    assert_int_equal(ranker_new(&r, &c, &e), XE_USAGE);
    assert_string_equal(e.msg, "ranker config: curve_dim 0 is out of range (1-64)");
    c = test_config();
    assert_int_equal(ranker_new(&r, &c, &e), XE_OK);
    xerr_clear(&e);
    unit_expect_error(ranker_score(r, 1, runs, &score, &e), &e, "ranker: not fitted");
    runs[1].dataset = 5;
    xerr_clear(&e);
    unit_expect_error(ranker_fit(r, NDS, 3, runs, NULL, 0, NULL, &e), &e, "run 1: dataset 5 is out of range (0-2)");
    runs[1].dataset = 1;
    runs[2].dataset = 2;
    xerr_clear(&e);
    unit_expect_error(ranker_fit(r, NDS, 3, runs, NULL, 0, NULL, &e), &e, "no dataset has two runs to compare");
    memcpy(nan_curve, s->curve[0][0], sizeof nan_curve);
    nan_curve[4] = NAN;
    runs[2].curve = nan_curve;
    xerr_clear(&e);
    unit_expect_error(ranker_fit(r, NDS, 3, runs, NULL, 0, NULL, &e), &e,
                      "run 2: curve value 4 (epoch 5) is not finite");
    runs[2].curve = s->curve[0][2];
    runs[2].epochs = 0;
    xerr_clear(&e);
    unit_expect_error(ranker_fit(r, NDS, 3, runs, NULL, 0, NULL, &e), &e, "run 2: a curve of 0 epochs");
    /* a callback stops the fit: not fitted */
    xerr_clear(&e);
    assert_int_equal(ranker_fit(r, NDS, NDS * NTRAIN, s->train, count_steps, 10, &calls, &e), XE_INTR);
    assert_int_equal(calls, 2);
    xerr_clear(&e);
    unit_expect_error(ranker_score(r, 1, s->train, &score, &e), &e, "not fitted");
    ranker_free(r);
    /* scoring needs a reference curve */
    runs[0] = s->test[0];
    runs[0].ref = NULL;
    xerr_clear(&e);
    unit_expect_error(ranker_score(fitted(), 1, runs, &score, &e), &e, "run 0: no reference curve");
    runs[0] = s->test[0];
    runs[0].ref = nan_curve;
    runs[0].ref_epochs = EPOCHS;
    xerr_clear(&e);
    unit_expect_error(ranker_score(fitted(), 1, runs, &score, &e), &e,
                      "run 0: reference curve value 4 (epoch 5) is not finite");
}

const struct CMUnitTest test_ranker_tests[] = {
    cmocka_unit_test(test_ranker_orders_partial_curves),
    cmocka_unit_test(test_ranker_prob_beats),
    cmocka_unit_test(test_ranker_relative_curve),
    cmocka_unit_test(test_ranker_reads_curve_of_unseen_dataset),
    cmocka_unit_test(test_ranker_save_load),
    cmocka_unit_test(test_ranker_members),
    cmocka_unit_test(test_ranker_deterministic),
    cmocka_unit_test(test_ranker_bad_input),
};
const size_t test_ranker_count = sizeof test_ranker_tests / sizeof test_ranker_tests[0];
