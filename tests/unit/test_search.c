/* Unit tests for the search optimizers (lib/search/search.h) on synthetic
 * nb201 tasks: every task's accuracy is a shared function of the cell's
 * ops (as gen-fixtures --meta-runs) with task-specific weights. Checks the
 * pools and their constraints, that no optimizer proposes a seen or
 * forbidden cell, that random covers a table, that rea mutates its
 * population, that a fresh searcher on a recorded history proposes what
 * the running one did (resume), Pareto fronts, and that xfer finds better
 * cells than random and rea within 10 evaluations. */
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

#include "search/search.h"

#define NTASK 5    /* 4 sources and the target */
#define NARCH 400  /* recorded archs per task */

static const SpaceMacro macro = { 16, 5, 10, 3, 32, 32 };

/* ---- synthetic tasks ---- */

static double task_acc(int t, const SpaceArch *a)
{
    static const double op_value[NB201_OPS] = { 0.0, 0.35, 0.6, 1.0, 0.2 };
    double tw[NB201_EDGES], s = 0;
    Rng r;
    rng_seed(&r, 500 + (uint64_t)t);
    for (int k = 0; k < NB201_EDGES; k++)
        tw[k] = 0.8 * (rng_uniform(&r) - 0.5);
    for (int k = 0; k < NB201_EDGES; k++)
        s += op_value[a->nb201.ops[k]] * (1.0 + tw[k]);
    s += 0.5 * (op_value[a->nb201.ops[3]] + op_value[a->nb201.ops[4]] + op_value[a->nb201.ops[5]]);
    return 0.25 + 0.6 / (1.0 + exp(-(s - 3.0)));
}

/* Task t's recorded archs: NARCH distinct cells (a different draw per
 * task, so the target's table is not the sources'). */
static void task_table(int t, int *tokens, float *acc)
{
    uint32_t perm[15625];
    Rng r;
    XErr e = { 0 };
    for (uint32_t i = 0; i < 15625; i++)
        perm[i] = i;
    rng_seed(&r, 900 + (uint64_t)t);
    rng_shuffle_u32(&r, perm, 15625);
    for (int i = 0; i < NARCH; i++) {
        SpaceArch a;
        assert_int_equal(space_nb201.from_index(perm[i], &a, &e), XE_OK);
        space_nb201.encode(&a, tokens + i * NB201_EDGES);
        acc[i] = (float)task_acc(t, &a);
    }
}

static int ttok[NARCH * NB201_EDGES];
static float tacc[NARCH];
static XferModel *universal;
static double zs_mean, zs_std;

static void free_universal(void)
{
    xfer_free(universal);
}

/* The target's table and the universal model on the 4 sources, once. */
static void setup_tasks(void)
{
    static int task[4 * NARCH], tok[4 * NARCH * NB201_EDGES];
    static float y[4 * NARCH], acc[NARCH];
    XferConfig c;
    XErr e = { 0 };
    if (universal)
        return;
    task_table(4, ttok, tacc);
    zs_mean = 0, zs_std = 0;
    for (int t = 0; t < 4; t++) {
        double s = 0, ss = 0;
        task_table(t, tok + t * NARCH * NB201_EDGES, acc);
        for (int i = 0; i < NARCH; i++)
            s += acc[i];
        s /= NARCH;
        for (int i = 0; i < NARCH; i++)
            ss += (acc[i] - s) * (acc[i] - s);
        ss = sqrt(ss / (NARCH - 1));
        for (int i = 0; i < NARCH; i++) {
            task[t * NARCH + i] = t;
            y[t * NARCH + i] = (float)((acc[i] - s) / ss);
        }
        zs_mean += s / 4, zs_std += ss / 4;
    }
    xfer_config_default(&c, NB201_EDGES, NB201_OPS);
    c.epochs = 30;
    c.batch = 64;
    if (xfer_new(&universal, &c, &e) || xfer_fit(universal, 4, 4 * NARCH, task, tok, y, NULL, NULL, &e))
        fail_msg("fitting the universal model: %s", e.msg);
    atexit(free_universal);
}

static void config(SearchConfig *c, SearchOptimizer opt, uint64_t seed)
{
    search_config_default(c, opt, seed);
    c->universal = universal;
    c->zs_mean = zs_mean;
    c->zs_std = zs_std;
}

/* Runs a search of n steps in h against the synthetic target: table mode
 * when pool is a table, else the target's accuracy of any cell. */
static void run_search(const SearchConfig *c, const SearchPool *pool, SearchStep *h, int n)
{
    Searcher *s = NULL;
    XErr e = { 0 };
    if (searcher_new(&s, c, pool, &e))
        fail_msg("searcher_new: %s", e.msg);
    for (int i = 0; i < n; i++) {
        if (searcher_next(s, h, i, &h[i], &e))
            fail_msg("%s step %d: %s", search_optimizer_names[c->opt], i, e.msg);
        if (pool->n && search_pool_find(pool, &h[i].arch) < 0)
            fail_msg("%s step %d: a cell outside the table", search_optimizer_names[c->opt], i);
        h[i].acc = task_acc(4, &h[i].arch);
    }
    searcher_free(s);
}

static int distance(const SpaceArch *a, const SpaceArch *b)
{
    int d = 0;
    for (int k = 0; k < NB201_EDGES; k++)
        d += a->nb201.ops[k] != b->nb201.ops[k];
    return d;
}

/* ---- pools ---- */

static void test_search_pool_constraints(void **state)
{
    SearchPool p;
    XErr e = { 0 };
    SpaceCost c;
    SpaceArch a;
    double lo = INFINITY;
    setup_tasks();
    /* a limit half-way: the table keeps exactly the cells within it */
    assert_int_equal(search_pool_table(&p, &space_nb201, &macro, 0, 0, NARCH, ttok, &e), XE_OK);
    assert_int_equal(p.n, NARCH);
    for (int i = 0; i < p.n; i++)
        lo = fmin(lo, p.params[i]);
    search_pool_release(&p);
    uint64_t limit = (uint64_t)lo + 400000;
    int within = 0;
    for (int i = 0; i < NARCH; i++) {
        assert_int_equal(space_nb201.decode(ttok + i * NB201_EDGES, NB201_EDGES, &a, &e), XE_OK);
        assert_int_equal(space_nb201.cost(&a, &macro, &c, &e), XE_OK);
        within += c.params <= limit;
    }
    assert_true(within > 0 && within < NARCH);
    assert_int_equal(search_pool_table(&p, &space_nb201, &macro, limit, 0, NARCH, ttok, &e), XE_OK);
    assert_int_equal(p.n, within);
    for (int i = 0; i < p.n; i++) {
        assert_true(p.params[i] <= (double)limit);
        assert_int_equal(search_pool_find(&p, &p.archs[i]), i);
        assert_true(search_pool_allows(&p, &p.archs[i], &c));
    }
    search_pool_release(&p);
    /* nothing satisfies: one clear message */
    unit_expect_error(search_pool_table(&p, &space_nb201, &macro, 1000, 0, NARCH, ttok, &e), &e,
                      "none of the 400 recorded nb201 cells satisfies --max-params 1000 (the smallest has");
    xerr_clear(&e);
    unit_expect_error(search_pool_space(&p, &space_nb201, &macro, 0, 1000, &e), &e,
                      "no nb201 cell satisfies --max-flops 1000 (the smallest has");
    xerr_clear(&e);
    assert_int_equal(search_pool_space(&p, &space_nb201, &macro, limit, 0, &e), XE_OK);
    search_pool_release(&p);
}

/* ---- what every optimizer promises ---- */

static void test_search_never_seen_and_constrained(void **state)
{
    enum { N = 60 };
    SearchPool p;
    SearchStep h[N];
    XErr e = { 0 };
    setup_tasks();
    /* space mode with a FLOPs limit that excludes about half of the cells */
    assert_int_equal(search_pool_space(&p, &space_nb201, &macro, 0, 120000000, &e), XE_OK);
    for (int opt = 0; opt < SEARCH_NOPT; opt++) {
        SearchConfig c;
        config(&c, (SearchOptimizer)opt, 3);
        c.candidates = 300;
        c.multi = opt == SEARCH_REA;
        run_search(&c, &p, h, N);
        for (int i = 0; i < N; i++) {
            SpaceCost cost;
            assert_int_equal(space_nb201.cost(&h[i].arch, &macro, &cost, &e), XE_OK);
            if (cost.flops > 120000000 || (double)cost.flops != h[i].flops)
                fail_msg("%s step %d: %llu FLOPs (recorded %.0f) over the limit", search_optimizer_names[opt], i,
                         (unsigned long long)cost.flops, h[i].flops);
            for (int j = 0; j < i; j++)
                if (!memcmp(&h[i].arch, &h[j].arch, sizeof h[i].arch))
                    fail_msg("%s proposed step %d's cell again at step %d", search_optimizer_names[opt], j, i);
            /* predictions from the model-based optimizers only (nao after its first 5) */
            assert_int_equal(isfinite(h[i].pred),
                             opt == SEARCH_XFER || (opt == SEARCH_NAO && i >= c.init));
        }
    }
    search_pool_release(&p);
}

static void test_search_random_covers_table(void **state)
{
    SearchPool p;
    SearchConfig c;
    SearchStep *h = malloc(NARCH * sizeof *h);
    char *hit = calloc(NARCH, 1);
    XErr e = { 0 };
    double best[NARCH + 5];
    int done;
    setup_tasks();
    assert_non_null(h);
    assert_non_null(hit);
    assert_int_equal(search_pool_table(&p, &space_nb201, &macro, 0, 0, NARCH, ttok, &e), XE_OK);
    config(&c, SEARCH_RANDOM, 7);
    run_search(&c, &p, h, NARCH);
    for (int i = 0; i < NARCH; i++) {
        int k = search_pool_find(&p, &h[i].arch);
        assert_true(k >= 0);
        assert_false(hit[k]);
        hit[k] = 1;
    }
    /* and then there is nothing left */
    {
        Searcher *s;
        SearchStep x;
        assert_int_equal(searcher_new(&s, &c, &p, &e), XE_OK);
        unit_expect_error(searcher_next(s, h, NARCH, &x, &e), &e, "was evaluated");
        searcher_free(s);
    }
    /* a simulated search past the table stops there, the best repeated */
    xerr_clear(&e);
    assert_int_equal(search_simulate(&c, &p, tacc, NARCH + 5, best, &done, &e), XE_OK);
    assert_int_equal(done, NARCH);
    for (int i = 1; i < NARCH + 5; i++)
        assert_true(best[i] >= best[i - 1]);
    assert_true(best[NARCH + 4] == best[NARCH - 1]);
    search_pool_release(&p);
    free(h), free(hit);
}

static void test_search_rea_mutates_population(void **state)
{
    enum { N = 150 };
    SearchPool p;
    SearchConfig c;
    SearchStep h[N];
    XErr e = { 0 };
    int mutants = 0;
    setup_tasks();
    assert_int_equal(search_pool_space(&p, &space_nb201, &macro, 0, 0, &e), XE_OK);
    config(&c, SEARCH_REA, 11);
    run_search(&c, &p, h, N);
    /* after the first population, each child is one change away from a
     * member of the population it was bred from (the newest 10) */
    for (int i = c.population; i < N; i++) {
        int near = 0;
        for (int j = i - c.population; j < i; j++)
            near |= distance(&h[i].arch, &h[j].arch) == 1;
        mutants += near;
    }
    assert_true(mutants >= (N - c.population) * 9 / 10);
    /* evolution beats its own random start */
    double first = 0, last = 0;
    for (int i = 0; i < c.population; i++)
        first += h[i].acc / c.population;
    for (int i = N - c.population; i < N; i++)
        last += h[i].acc / c.population;
    assert_true(last > first + 0.05);
    search_pool_release(&p);
}

/* A searcher made afresh on a recorded history (a resumed search)
 * proposes what the one that ran all along did. */
static void test_search_resume_same_proposals(void **state)
{
    enum { N = 14 };
    SearchPool p;
    XErr e = { 0 };
    setup_tasks();
    assert_int_equal(search_pool_table(&p, &space_nb201, &macro, 0, 0, NARCH, ttok, &e), XE_OK);
    for (int opt = 0; opt < SEARCH_NOPT; opt++) {
        SearchConfig c;
        SearchStep h[N], x;
        Searcher *s;
        config(&c, (SearchOptimizer)opt, 5);
        c.init = 4;
        c.population = 4;
        c.tournament = 2;
        run_search(&c, &p, h, N);
        for (int cut = 3; cut < N; cut += 5) {
            assert_int_equal(searcher_new(&s, &c, &p, &e), XE_OK);
            if (searcher_next(s, h, cut, &x, &e))
                fail_msg("%s: %s", search_optimizer_names[opt], e.msg);
            if (memcmp(&x.arch, &h[cut].arch, sizeof x.arch))
                fail_msg("%s: a fresh searcher at step %d proposes another cell", search_optimizer_names[opt], cut);
            assert_true(x.pred == h[cut].pred || (isnan(x.pred) && isnan(h[cut].pred)));
            searcher_free(s);
        }
    }
    search_pool_release(&p);
}

static void test_search_pareto(void **state)
{
    SearchStep h[6];
    int idx[6], n;
    static const double acc[6] = { 0.9, 0.8, 0.85, 0.7, NAN, 0.9 };
    static const double flops[6] = { 100, 50, 120, 10, 1, 100 };
    memset(h, 0, sizeof h);
    for (int i = 0; i < 6; i++)
        h[i].acc = acc[i], h[i].flops = flops[i];
    n = search_pareto(h, 6, idx);
    /* 2 (0.85 at 120) is dominated by 0 (0.9 at 100); 5 repeats 0; 4 failed */
    assert_int_equal(n, 3);
    assert_int_equal(idx[0], 3);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 0);
}

/* The point of the tool: with the sources' knowledge, 10 evaluations find
 * better cells than random search and evolution do. */
static void test_search_xfer_beats_random(void **state)
{
    enum { SEEDS = 5, K = 10 };
    SearchPool p;
    XErr e = { 0 };
    double mean[SEARCH_NOPT] = { 0 }, best[K], top = 0;
    setup_tasks();
    assert_int_equal(search_pool_table(&p, &space_nb201, &macro, 0, 0, NARCH, ttok, &e), XE_OK);
    for (int i = 0; i < NARCH; i++)
        top = fmax(top, tacc[i]);
    for (int opt = 0; opt < SEARCH_NOPT; opt++) {
        if (opt == SEARCH_NAO)
            continue;
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            SearchConfig c;
            config(&c, (SearchOptimizer)opt, seed);
            if (search_simulate(&c, &p, tacc, K, best, NULL, &e))
                fail_msg("%s: %s", search_optimizer_names[opt], e.msg);
            mean[opt] += best[K - 1] / SEEDS;
        }
    }
    if (!(mean[SEARCH_XFER] > mean[SEARCH_RANDOM] + 0.01 && mean[SEARCH_XFER] > mean[SEARCH_REA] + 0.01 &&
          mean[SEARCH_XFER] > top - 0.01))
        fail_msg("mean best after %d: xfer %.4f, rea %.4f, random %.4f (table best %.4f)", K, mean[SEARCH_XFER],
                 mean[SEARCH_REA], mean[SEARCH_RANDOM], top);
    search_pool_release(&p);
}

/* DARTS: too many cells to enumerate; the same promises from samples. */
static void test_search_darts_space(void **state)
{
    enum { N = 40 };
    static const SpaceMacro dm = { 8, 5, 10, 3, 32, 32 };
    SearchPool p;
    SearchStep h[N];
    XErr e = { 0 };
    unit_expect_error(search_pool_space(&p, &space_darts, &dm, 100, 0, &e), &e,
                      "none of 20000 sampled darts cells satisfies --max-params 100 (the smallest has");
    xerr_clear(&e);
    assert_int_equal(search_pool_space(&p, &space_darts, &dm, 0, 9000000, &e), XE_OK);
    for (int opt = SEARCH_REA; opt <= SEARCH_RANDOM; opt++) {
        SearchConfig c;
        Searcher *s;
        search_config_default(&c, (SearchOptimizer)opt, 9);
        assert_int_equal(searcher_new(&s, &c, &p, &e), XE_OK);
        for (int i = 0; i < N; i++) {
            SpaceCost cost;
            char str[512];
            SpaceArch back;
            if (searcher_next(s, h, i, &h[i], &e))
                fail_msg("%s step %d: %s", search_optimizer_names[opt], i, e.msg);
            h[i].acc = (double)(space_darts.to_index(&h[i].arch) % 1000) / 1000;
            space_darts.format(&h[i].arch, str, sizeof str);
            assert_int_equal(space_darts.parse(str, &back, &e), XE_OK);
            assert_memory_equal(&back, &h[i].arch, sizeof back);
            assert_int_equal(space_darts.cost(&h[i].arch, &dm, &cost, &e), XE_OK);
            assert_true(cost.flops <= 9000000);
            for (int j = 0; j < i; j++)
                assert_true(memcmp(&h[i].arch, &h[j].arch, sizeof h[i].arch) != 0);
        }
        searcher_free(s);
    }
    search_pool_release(&p);
}

static void test_search_bad_config(void **state)
{
    SearchPool p;
    SearchConfig c;
    Searcher *s = NULL;
    XErr e = { 0 };
    XferModel *m = NULL;
    XferConfig xc;
    assert_int_equal(search_pool_space(&p, &space_nb201, &macro, 0, 0, &e), XE_OK);
    search_config_default(&c, SEARCH_XFER, 1);
    unit_expect_error(searcher_new(&s, &c, &p, &e), &e, "needs the universal model");
    /* a model of another space's tokens */
    xerr_clear(&e);
    xfer_config_default(&xc, space_darts.token_len, space_darts.vocab);
    assert_int_equal(xfer_new(&m, &xc, &e), XE_OK);
    c.universal = m;
    unit_expect_error(searcher_new(&s, &c, &p, &e), &e, "reads 32 tokens of 12 values, nb201 cells have 6 of 5");
    xfer_free(m);
    assert_int_equal(search_optimizer_find("rea"), SEARCH_REA);
    assert_int_equal(search_optimizer_find("bayes"), -1);
    search_pool_release(&p);
}

const struct CMUnitTest test_search_tests[] = {
    cmocka_unit_test(test_search_pool_constraints),
    cmocka_unit_test(test_search_never_seen_and_constrained),
    cmocka_unit_test(test_search_random_covers_table),
    cmocka_unit_test(test_search_rea_mutates_population),
    cmocka_unit_test(test_search_resume_same_proposals),
    cmocka_unit_test(test_search_pareto),
    cmocka_unit_test(test_search_xfer_beats_random),
    cmocka_unit_test(test_search_darts_space),
    cmocka_unit_test(test_search_bad_config),
};
const size_t test_search_count = sizeof test_search_tests / sizeof test_search_tests[0];
