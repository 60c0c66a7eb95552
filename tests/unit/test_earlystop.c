/* Unit tests for the ranker's data and early termination
 * (lib/model/curveset.h, lib/model/earlystop.h): which stored curves are
 * loaded and how, a run's curve so far, the best finished run, the
 * simulation's time saved and regret on hand-made curves, and the worker's
 * stop hook against a fitted ranker. */
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

#include "data/import.h"
#include "fixtures/fx_util.h"
#include "model/curveset.h"
#include "model/earlystop.h"
#include "model/models.h"

#define CONV3 "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
#define SKIPS "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
#define POOLS "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"
#define NONES "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"

typedef struct Fix {
    char *dir, db[512];
    Store st;
} Fix;

/* One run record: arch on task a or b with a final accuracy and a curve
 * given as "epoch:acc" pairs. */
static void put_run(FILE *f, const char *arch, const char *ds, double final, const char *curve)
{
    fprintf(f,
            "{\"space\":\"nb201\",\"arch\":\"%s\",\"dataset\":\"%s\",\"protocol\":{\"name\":\"unit\"},\"seed\":0,"
            "\"status\":\"done\",\"valid_acc\":%g,\"curve\":[%s]}\n",
            arch, ds, final, curve);
}

static int setup(void **state)
{
    Fix *f = calloc(1, sizeof *f);
    char path[600];
    FILE *jl;
    ImportStats s;
    XErr e = { 0 };
    f->dir = unit_tmpdir();
    snprintf(f->db, sizeof f->db, "%s/x.db", f->dir);
    snprintf(path, sizeof path, "%s/runs.jsonl", f->dir);
    jl = fopen(path, "w");
    assert_non_null(jl);
    /* task a: three whole curves, one with a gap, one too short */
    put_run(jl, CONV3, "a", 0.9, "{\"epoch\":1,\"valid_acc\":0.5},{\"epoch\":2,\"valid_acc\":0.7},{\"epoch\":3,\"valid_acc\":0.9}");
    put_run(jl, SKIPS, "a", 0.6, "{\"epoch\":1,\"valid_acc\":0.4},{\"epoch\":2,\"valid_acc\":0.5},{\"epoch\":3,\"valid_acc\":0.6}");
    put_run(jl, POOLS, "a", 0.5, "{\"epoch\":1,\"valid_acc\":0.45},{\"epoch\":2,\"valid_acc\":0.48},{\"epoch\":3,\"valid_acc\":0.5}");
    put_run(jl, NONES, "a", 0.95, "{\"epoch\":1,\"valid_acc\":0.1},{\"epoch\":3,\"valid_acc\":0.95}");
    /* task b: one run of 2 epochs, one of 3 */
    put_run(jl, CONV3, "b", 0.8, "{\"epoch\":1,\"valid_acc\":0.6},{\"epoch\":2,\"valid_acc\":0.8}");
    put_run(jl, SKIPS, "b", 0.7, "{\"epoch\":1,\"valid_acc\":0.5},{\"epoch\":2,\"valid_acc\":0.6},{\"epoch\":3,\"valid_acc\":0.7}");
    assert_int_equal(fclose(jl), 0);
    if (runs_import(f->db, path, &s, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(store_open(&f->st, f->db, 0, &e), XE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fix *f = *state;
    store_close(&f->st);
    fx_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int64_t run_of(Fix *f, const char *arch, const char *ds)
{
    sqlite3_stmt *q;
    int64_t id;
    XErr e = { 0 };
    assert_int_equal(store_prepare(&f->st, &q,
                                   "SELECT r.id FROM runs r JOIN archs a ON a.id = r.arch_id JOIN datasets d"
                                   " ON d.id = r.dataset_id WHERE a.arch = ?1 AND d.name = ?2",
                                   &e),
                     XE_OK);
    sqlite3_bind_text(q, 1, arch, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, ds, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return id;
}

static void test_curveset_load(void **state)
{
    Fix *f = *state;
    CurveSet cs;
    XErr e = { 0 };
    int tok[SPACE_MAX_TOKENS];
    SpaceArch a;
    assert_int_equal(curveset_load(&f->st, &space_nb201, NULL, 3, &cs, &e), XE_OK);
    assert_string_equal(cs.protocol, "unit");
    /* a's gap run and b's 2-epoch run are left out */
    assert_int_equal(cs.n, 4);
    assert_int_equal(cs.skipped, 2);
    assert_int_equal(cs.ntasks, 2);
    assert_string_equal(cs.tasks[0].name, "a");
    assert_int_equal(cs.tasks[0].n, 3);
    assert_int_equal(cs.tasks[0].epochs, 3);
    assert_int_equal(cs.tasks[1].n, 1);
    assert_int_equal(curveset_task(&cs, "b"), 1);
    assert_int_equal(curveset_task(&cs, "c"), -1);
    for (int i = 0; i < cs.n; i++)
        assert_int_equal(cs.runs[i].epochs, 3);
    /* runs task by task, in id order: a's conv, skip, pool; b's skip */
    assert_int_equal(cs.run_id[0], run_of(f, CONV3, "a"));
    assert_int_equal(cs.run_id[3], run_of(f, SKIPS, "b"));
    assert_int_equal(cs.runs[3].dataset, 1);
    assert_true(fabsf(cs.runs[1].curve[1] - 0.5f) < 1e-6f);
    assert_true(fabsf(cs.runs[2].curve[0] - 0.45f) < 1e-6f);
    assert_true(fabsf(cs.runs[3].curve[2] - 0.7f) < 1e-6f);
    assert_true(fabsf(cs.runs[0].final - 0.9f) < 1e-6f);
    space_nb201.parse(POOLS, &a, &e);
    space_nb201.encode(&a, tok);
    assert_memory_equal(cs.runs[2].tokens, tok, (size_t)space_nb201.token_len * sizeof *tok);
    curveset_free(&cs);
    /* from one epoch on, b's short run comes in */
    assert_int_equal(curveset_load(&f->st, &space_nb201, "unit", 1, &cs, &e), XE_OK);
    assert_int_equal(cs.n, 5);
    assert_int_equal(cs.skipped, 1);
    assert_int_equal(cs.tasks[1].n, 2);
    curveset_free(&cs);
    unit_expect_error(curveset_load(&f->st, &space_nb201, "other", 1, &cs, &e), &e,
                      "no finished nb201 runs under protocol 'other'");
}

static void test_curve_read_and_best(void **state)
{
    Fix *f = *state;
    XErr e = { 0 };
    float *acc;
    int n;
    BestRun b = { 0 };
    int64_t did;
    CurveSet cs;
    /* the gap run: epoch 1 only */
    assert_int_equal(curve_read(&f->st, run_of(f, NONES, "a"), &acc, &n, &e), XE_OK);
    assert_int_equal(n, 1);
    assert_true(fabsf(acc[0] - 0.1f) < 1e-6f);
    free(acc);
    assert_int_equal(curve_read(&f->st, 9999, &acc, &n, &e), XE_OK);
    assert_int_equal(n, 0);
    assert_null(acc);
    /* the best run of a is the gap run (0.95): it has a first epoch */
    assert_int_equal(curveset_load(&f->st, &space_nb201, NULL, 1, &cs, &e), XE_OK);
    assert_int_equal(store_dataset_find(&f->st, "a", &did, &e), XE_OK);
    assert_int_equal(curve_best_run(&f->st, &space_nb201, did, cs.protocol_id, &b, &e), XE_OK);
    assert_int_equal(b.id, run_of(f, NONES, "a"));
    assert_int_equal(b.epochs, 1);
    assert_true(fabs(b.acc - 0.95) < 1e-9);
    /* without it, the conv cell */
    assert_int_equal(store_exec(&f->st, "UPDATE runs SET status = 'failed' WHERE valid_acc > 0.94", &e), XE_OK);
    assert_int_equal(curve_best_run(&f->st, &space_nb201, did, cs.protocol_id, &b, &e), XE_OK);
    assert_int_equal(b.id, run_of(f, CONV3, "a"));
    assert_int_equal(b.epochs, 3);
    assert_true(fabsf(b.curve[2] - 0.9f) < 1e-6f);
    /* none at all */
    assert_int_equal(store_exec(&f->st, "UPDATE runs SET status = 'failed'", &e), XE_OK);
    assert_int_equal(curve_best_run(&f->st, &space_nb201, did, cs.protocol_id, &b, &e), XE_OK);
    assert_int_equal(b.id, 0);
    assert_null(b.curve);
    best_run_release(&b);
    curveset_free(&cs);
}

/* The ranker learns from a and b; the hook stops a bad run on its curve
 * so far, keeps it under a delta below its p, and decides nothing before
 * min_epochs or at the last epoch. */
static void test_early_stop_work(void **state)
{
    Fix *f = *state;
    XErr e = { 0 };
    CurveSet cs;
    RankerConfig c;
    Ranker *r;
    int map[2], stop;
    json_t *fitted;
    int64_t id, did;
    char why[256] = "";
    EarlyStop es;
    RunInfo ri = { 0 };
    /* the gap run (the best of a, unseen by the ranker) out of the way */
    assert_int_equal(store_exec(&f->st, "UPDATE runs SET status = 'failed' WHERE valid_acc > 0.94", &e), XE_OK);
    assert_int_equal(curveset_load(&f->st, &space_nb201, NULL, 3, &cs, &e), XE_OK);
    ranker_config_default(&c, space_nb201.token_len, space_nb201.vocab, 1);
    c.steps = 200;
    assert_int_equal(ranker_new(&r, &c, &e), XE_OK);
    assert_int_equal(curveset_fit(&cs, NULL, map, r, NULL, 0, NULL, &e), XE_OK);
    assert_int_equal(map[1], 1);
    assert_int_equal(ranker_ndatasets(r), 2);
    fitted = models_ranker_fitted_on(&cs, NULL, map, 1, 0.5);
    assert_non_null(fitted);
    assert_int_equal(models_add_ranker(&f->st, "nb201", r, fitted, &id, &e), XE_OK);
    json_decref(fitted);
    ranker_free(r);
    unit_expect_error(early_stop_open(&es, &f->st, "nb201", 12345, 0.5, 2, &e), &e, "no model 12345");
    assert_int_equal(early_stop_open(&es, &f->st, "nb201", 0, 0.5, 2, &e), XE_OK);
    assert_int_equal(es.sr.id, id);
    assert_int_equal(stored_ranker_dataset(&es.sr, "b"), 1);
    assert_int_equal(stored_ranker_dataset(&es.sr, "z"), -1);
    /* the pool cell of a, as if running at epoch 2 of 3: p against the conv
     * cell is low; epoch 1 (before min_epochs) and 3 (its last) are not asked */
    assert_int_equal(store_dataset_find(&f->st, "a", &did, &e), XE_OK);
    ri.id = run_of(f, POOLS, "a");
    ri.dataset_id = did;
    ri.protocol_id = cs.protocol_id;
    snprintf(ri.space, sizeof ri.space, "nb201");
    ri.arch = POOLS;
    ri.dataset = "a";
    assert_int_equal(early_stop_work(&es, &f->st, &ri, 1, 3, &stop, why, sizeof why, &e), XE_OK);
    assert_int_equal(stop, 0);
    assert_int_equal(early_stop_work(&es, &f->st, &ri, 3, 3, &stop, why, sizeof why, &e), XE_OK);
    assert_int_equal(stop, 0);
    assert_int_equal(early_stop_work(&es, &f->st, &ri, 2, 3, &stop, why, sizeof why, &e), XE_OK);
    assert_int_equal(stop, 1);
    assert_non_null(strstr(why, "at epoch 2 of 3"));
    {
        /* the p it gives is the ranker's for the curve cut after epoch 2
         * (the store holds all 3) against the conv cell's whole curve */
        static const float pool2[2] = { 0.45f, 0.48f }, conv[3] = { 0.5f, 0.7f, 0.9f };
        int tp[32], tc[32];
        SpaceArch a;
        RankerRun run = { stored_ranker_dataset(&es.sr, "a"), tp, pool2, 2, 0, NULL, 0 };
        RankerRun best = { run.dataset, tc, conv, 3, 0, NULL, 0 };
        double want, got, whole;
        const char *at = strstr(why, ") = ");
        assert_int_equal(space_nb201.parse(POOLS, &a, &e), XE_OK);
        space_nb201.encode(&a, tp);
        assert_int_equal(space_nb201.parse(CONV3, &a, &e), XE_OK);
        space_nb201.encode(&a, tc);
        assert_non_null(at);
        assert_int_equal(sscanf(at, ") = %lf", &got), 1);
        assert_int_equal(ranker_prob_beats(es.sr.r, &run, &best, &want, &e), XE_OK);
        assert_float_equal(got, want, 1e-3 * want);
        run.curve = (const float[3]){ 0.45f, 0.48f, 0.5f };
        run.epochs = 3;
        assert_int_equal(ranker_prob_beats(es.sr.r, &run, &best, &whole, &e), XE_OK);
        assert_true(fabs(whole - want) > 1e-3 * want); /* the cut matters */
        /* a delta below that p keeps the same run */
        early_stop_close(&es);
        assert_int_equal(early_stop_open(&es, &f->st, "nb201", 0, want / 2, 2, &e), XE_OK);
        assert_int_equal(early_stop_work(&es, &f->st, &ri, 2, 3, &stop, why, sizeof why, &e), XE_OK);
        assert_int_equal(stop, 0);
    }
    early_stop_close(&es);
    curveset_free(&cs);
}

/* Hand-made scores: p(run beats best) after k epochs = sigmoid(score of
 * the run after k - score of the best after all 4); ctx counts the calls,
 * and a negative count makes the call fail. */
static const float sim_score[3][4] = { { 0, 1, 2, 3 }, { -5, -4, -3, -2 }, { 1, 2, 3, 4 } };

static int sim_prob(void *ctx, int run, int best, double *p, XErr *e)
{
    int *calls = ctx;
    if (*calls < 0)
        return xerr_set(e, XE_FAIL, "no probabilities");
    ++*calls;
    for (int k = 0; k < 4; k++)
        p[k] = 1.0 / (1.0 + exp(-((double)sim_score[run][k] - sim_score[best][3])));
    return XE_OK;
}

/* Hand-made curves of 4 epochs: the first run is trained to the end, a
 * worse one is stopped, a better one replaces the best. */
static void test_early_stop_simulate(void **state)
{
    static const float curve[3][4] = { { 0.5f, 0.6f, 0.7f, 0.8f }, { 0.3f, 0.4f, 0.5f, 0.6f },
                                       { 0.6f, 0.7f, 0.8f, 0.9f } };
    SimRun runs[3];
    SimResult res;
    int order[3] = { 0, 1, 2 }, rev[3] = { 2, 1, 0 }, calls = 0;
    XErr e = { 0 };
    (void)state;
    for (int i = 0; i < 3; i++)
        runs[i] = (SimRun){ 4, curve[i][3], curve[i] };
    /* ranker: run 1 (p = sigmoid(-5 - 3)) stops at epoch 1; run 2 (p =
     * sigmoid(1 - 3) = 0.12) goes on at delta 0.1 and becomes the best */
    assert_int_equal(early_stop_simulate(3, runs, order, SIM_RANKER, 0.1, 1, sim_prob, &calls, &res, &e), XE_OK);
    assert_true(fabs(res.time_saved - 12.0 / 9) < 1e-9);
    assert_true(fabs(res.regret) < 1e-9);
    assert_true(fabs(res.stopped - 1.0 / 3) < 1e-9);
    /* at delta 0.2 run 2 stops too: the best is lost, 10 points of regret */
    assert_int_equal(early_stop_simulate(3, runs, order, SIM_RANKER, 0.2, 1, sim_prob, &calls, &res, &e), XE_OK);
    assert_true(fabs(res.time_saved - 12.0 / 6) < 1e-9);
    assert_true(fabs(res.regret - 10.0) < 1e-4);
    /* from epoch 2 on: run 1 costs 2 epochs, run 2 (p = sigmoid(2 - 3)) goes on */
    assert_int_equal(early_stop_simulate(3, runs, order, SIM_RANKER, 0.2, 2, sim_prob, &calls, &res, &e), XE_OK);
    assert_true(fabs(res.time_saved - 12.0 / 10) < 1e-9);
    assert_true(fabs(res.regret) < 1e-9);
    /* delta 0 stops nothing */
    assert_int_equal(early_stop_simulate(3, runs, order, SIM_RANKER, 0, 1, sim_prob, &calls, &res, &e), XE_OK);
    assert_true(fabs(res.time_saved - 1) < 1e-9);
    assert_true(fabs(res.stopped) < 1e-9);
    /* the curve rule: best first, both others below it at epoch 1 */
    assert_int_equal(early_stop_simulate(3, runs, rev, SIM_CURVE, 0, 1, sim_prob, &calls, &res, &e), XE_OK);
    assert_true(fabs(res.time_saved - 12.0 / 6) < 1e-9);
    assert_true(fabs(res.regret) < 1e-9);
    assert_true(fabs(res.stopped - 2.0 / 3) < 1e-9);
    /* the ranker is asked once per run that has a best: 2 per ranker call above */
    assert_int_equal(calls, 8);
    /* its failure is the simulation's */
    calls = -1;
    unit_expect_error(early_stop_simulate(3, runs, order, SIM_RANKER, 0.1, 1, sim_prob, &calls, &res, &e), &e,
                      "no probabilities");
}

const struct CMUnitTest test_earlystop_tests[] = {
    cmocka_unit_test_setup_teardown(test_curveset_load, setup, teardown),
    cmocka_unit_test_setup_teardown(test_curve_read_and_best, setup, teardown),
    cmocka_unit_test_setup_teardown(test_early_stop_work, setup, teardown),
    cmocka_unit_test(test_early_stop_simulate),
};
const size_t test_earlystop_count = sizeof test_earlystop_tests / sizeof *test_earlystop_tests;
