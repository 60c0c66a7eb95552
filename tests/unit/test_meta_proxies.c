/* Training-free proxies (lib/meta/proxies.c): what they must be for a cell
 * that passes nothing (zero gradients, no Jacobian), bounds that hold for
 * any network (Hadamard's inequality for NASWOT, the correlation spectrum
 * for jacob_cov), determinism, and synflow of a network deep enough to
 * overflow float on an input of ones. Probe networks (lib/meta/probe.c):
 * deterministic accuracies, the store round trip under their recipe hash,
 * and the checks on probes from elsewhere. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/builder.h"
#include "data/taskfile.h"
#include "db/store.h"
#include "fixtures/fx_util.h"
#include "meta/meta.h"
#include "nn/net.h"

typedef struct Fix {
    TaskFile t;
    char *dir, *path;
} Fix;

static const double px_mean[3] = { 0.5, 0.5, 0.5 }, px_std[3] = { 0.25, 0.25, 0.25 };

/* 3 classes of 16x16 colour noise with a class-dependent tint. */
static int setup(void **state)
{
    Fix *f = calloc(1, sizeof *f);
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    char *file = NULL, sha[65];
    static const char *const names[] = { "r", "g", "b" };
    Rng r;
    memset(&o, 0, sizeof o);
    o.valid_fraction = 0.1;
    f->dir = unit_tmpdir();
    f->path = malloc(4200);
    builder_init(&b, &o);
    rng_seed(&r, 5);
    assert_int_equal(builder_set_classes(&b, names, 3, &e), XE_OK);
    for (int i = 0; i < 120; i++) {
        uint8_t px[16 * 16 * 3];
        int cls = i % 3;
        for (int j = 0; j < (int)sizeof px; j++)
            px[j] = (uint8_t)(rng_below(&r, 160) + (j % 3 == cls ? 90 : 0));
        assert_int_equal(builder_add(&b, SPLIT_TRAIN, cls, px, 16, 16, 3, "noise", &e), XE_OK);
    }
    assert_int_equal(builder_finish(&b, "noise", &e), XE_OK);
    assert_int_equal(taskfile_write(&b, f->dir, "noise", &file, sha, &e), XE_OK);
    snprintf(f->path, 4200, "%s/%s", f->dir, file);
    assert_int_equal(taskfile_open(&f->t, f->path, &e), XE_OK);
    builder_release(&b);
    free(file);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fix *f = *state;
    taskfile_close(&f->t);
    fx_rmtree(f->dir);
    free(f->dir), free(f->path), free(f);
    return 0;
}

static void score(Fix *f, const char *arch, int width, int cells, int batch, uint64_t seed, double v[PROXY_COUNT])
{
    Protocol p;
    XErr e = { 0 };
    ProxyTask pt;
    assert_int_equal(protocol_preset("tiny", &p, &e), XE_OK);
    p.width = width;
    p.cells = cells;
    pt = (ProxyTask){ &f->t, px_mean, px_std, &p, batch, seed, nn_cpu_backend(1) };
    if (proxies_compute(&pt, "nb201", arch, v, &e))
        fail_msg("%s", e.msg);
}

static const char *const convs =
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|";
static const char *const nothing = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";

/* A cell of nothing but 'none' passes nothing: the classifier sees zeros,
 * so no weight gets a gradient and the input none either. */
static void test_meta_proxies_empty_cell(void **state)
{
    Fix *f = *state;
    double v[PROXY_COUNT];
    SpaceArch a;
    SpaceMacro m = { 4, 1, 3, 3, 16, 16 };
    SpaceCost c;
    XErr e = { 0 };
    score(f, nothing, 4, 1, 16, 0, v);
    assert_true(v[PROXY_GRAD_NORM] == 0.0);
    assert_true(v[PROXY_SNIP] == 0.0);
    assert_true(v[PROXY_SYNFLOW] == 0.0);
    assert_true(isnan(v[PROXY_JACOB_COV]));
    assert_true(isnan(v[PROXY_ZEN]));
    assert_int_equal(space_nb201.parse(nothing, &a, &e), XE_OK);
    assert_int_equal(space_nb201.cost(&a, &m, &c, &e), XE_OK);
    assert_true(v[PROXY_PARAMS] == (double)c.params);
    assert_true(v[PROXY_FLOPS] == (double)c.flops);
}

/* Any network: the Hamming kernel's diagonal is the unit count U, so
 * log det <= B log U (Hadamard); a correlation matrix's eigenvalues sum to
 * B, and log v + 1/v >= 1, so jacob_cov <= -B (up to the 1e-5 shift). */
static void test_meta_proxies_bounds(void **state)
{
    Fix *f = *state;
    double v[PROXY_COUNT];
    int B = 16;
    double units = 0;
    Net net = { 0 };
    Protocol p;
    SpaceCost c;
    XErr e = { 0 };
    assert_int_equal(protocol_preset("tiny", &p, &e), XE_OK);
    p.width = 4, p.cells = 1;
    assert_int_equal(meta_build_net(&net, nn_cpu_backend(1), "nb201", convs, &p, 1, &f->t, 0, 0, &c, &e), XE_OK);
    for (int i = 0; i < net.nlayers; i++)
        if (net.layers[i].kind == LAYER_RELU)
            units += (double)net.t[net.layers[i].out].c * net.t[net.layers[i].out].h * net.t[net.layers[i].out].w;
    net_release(&net);
    score(f, convs, 4, 1, B, 0, v);
    assert_true(isfinite(v[PROXY_NASWOT]) && v[PROXY_NASWOT] > 0);
    assert_true(v[PROXY_NASWOT] <= B * log(units) + 1e-6);
    /* and not far below it: random codes of this many units barely agree */
    assert_true(v[PROXY_NASWOT] > B * log(units) - B * 2.0);
    assert_true(isfinite(v[PROXY_JACOB_COV]));
    assert_true(v[PROXY_JACOB_COV] <= -B + 1e-3);
    assert_true(v[PROXY_GRAD_NORM] > 0 && v[PROXY_SNIP] > 0 && v[PROXY_SYNFLOW] > 0);
    assert_true(isfinite(v[PROXY_ZEN]));
    /* more convolutions, more paths: synflow grows with the cell's convs */
    {
        double w[PROXY_COUNT];
        score(f, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", 4,
              1, B, 0, w);
        assert_true(w[PROXY_SYNFLOW] > v[PROXY_SYNFLOW]);
        assert_true(w[PROXY_PARAMS] > v[PROXY_PARAMS]);
    }
}

static void test_meta_proxies_deterministic(void **state)
{
    Fix *f = *state;
    double a[PROXY_COUNT], b[PROXY_COUNT], c[PROXY_COUNT];
    score(f, convs, 4, 1, 16, 3, a);
    score(f, convs, 4, 1, 16, 3, b);
    score(f, convs, 4, 1, 16, 4, c);
    for (int i = 0; i < PROXY_COUNT; i++)
        assert_memory_equal(&a[i], &b[i], sizeof a[i]);
    assert_true(a[PROXY_GRAD_NORM] != c[PROXY_GRAD_NORM]);
    assert_true(a[PROXY_PARAMS] == c[PROXY_PARAMS]);
}

/* 3 stages of 6 cells of three chained 3x3 convs on 16-64 channels: the
 * all-positive network's output exceeds float's range on an input of
 * ones; the score still comes out finite and beyond float's range. */
static void test_meta_proxies_synflow_deep(void **state)
{
    Fix *f = *state;
    double v[PROXY_COUNT];
    score(f, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", 16, 6,
          4, 0, v);
    assert_true(isfinite(v[PROXY_SYNFLOW]));
    assert_true(v[PROXY_SYNFLOW] > 3.4e38);
}

static void test_meta_proxies_bad_input(void **state)
{
    Fix *f = *state;
    double v[PROXY_COUNT];
    Protocol p;
    XErr e = { 0 };
    ProxyTask pt;
    assert_int_equal(protocol_preset("tiny", &p, &e), XE_OK);
    pt = (ProxyTask){ &f->t, px_mean, px_std, &p, 1000, 0, nn_cpu_backend(1) };
    assert_int_equal(proxies_compute(&pt, "nb201", convs, v, &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "fewer than the proxy batch of 1000"));
    xerr_clear(&e);
    pt.batch = 8;
    assert_int_equal(proxies_compute(&pt, "nb201", "|conv~0|", v, &e), XE_FAIL);
    assert_non_null(strstr(e.msg, "invalid nb201 arch"));
}

/* Probes train to a deterministic accuracy in [0, 1] (108 images make
 * one batch an epoch: too few steps to say more about it). */
static void test_meta_probes_train(void **state)
{
    Fix *f = *state;
    XErr e = { 0 };
    double a, b;
    char h1[13], h2[13];
    assert_int_equal(probe_recipe(h1, &e), XE_OK);
    assert_int_equal(probe_recipe(h2, &e), XE_OK);
    assert_string_equal(h1, h2);
    assert_int_equal(strspn(h1, "0123456789abcdef"), 12);
    assert_int_equal(probe_train(&f->t, px_mean, px_std, nn_cpu_backend(1), PROBE_CONV3, &a, &e), XE_OK);
    assert_int_equal(probe_train(&f->t, px_mean, px_std, nn_cpu_backend(1), PROBE_CONV3, &b, &e), XE_OK);
    assert_true(a == b);
    assert_true(a >= 0 && a <= 1);
    assert_int_equal(probe_train(&f->t, px_mean, px_std, nn_cpu_backend(1), PROBE_SKIP, &b, &e), XE_OK);
    assert_true(b >= 0 && b <= 1);
}

static void test_meta_probes_store(void **state)
{
    char *d = unit_tmpdir(), h[13], *sql;
    Store st;
    XErr e = { 0 };
    const double acc[PROBE_COUNT] = { 0.9, 0.8, 0.5, 0.75 };
    double got[PROBE_COUNT];
    (void)state;
    assert_int_equal(store_open(&st, fx_path(d, "x.db"), 1, &e), XE_OK);
    assert_int_equal(sqlite3_exec(st.db,
                                  "INSERT INTO datasets (id, name, kind, source, format, meta) VALUES"
                                  " (1, 'a', 'virtual', 'x', 'runs', '{\"classes\":3}'), (2, 'b', 'virtual', 'x',"
                                  " 'runs', 'not json')",
                                  0, 0, 0),
                     SQLITE_OK);
    assert_int_equal(probe_read(&st, 1, got, &e), 0);
    assert_true(isnan(got[0]) && isnan(got[PROBE_COUNT - 1]));
    assert_int_equal(probe_store(&st, 1, acc, &e), XE_OK);
    assert_int_equal(probe_store(&st, 2, acc, &e), XE_OK); /* meta that was not JSON: replaced */
    assert_int_equal(probe_store(&st, 3, acc, &e), XE_FAIL);
    assert_string_equal(e.msg, "dataset 3 not found");
    for (int id = 1; id <= 2; id++) {
        assert_int_equal(probe_read(&st, id, got, &e), 1);
        for (int k = 0; k < PROBE_COUNT; k++)
            assert_true(fabs(got[k] - acc[k]) < 1e-9);
    }
    /* the other meta-features stay */
    {
        sqlite3_stmt *q;
        sqlite3_prepare_v2(st.db, "SELECT json_extract(meta, '$.classes') FROM datasets WHERE id = 1", -1, &q, NULL);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 3);
        sqlite3_finalize(q);
    }
    /* probes of another recipe (this one's hash with its first digit
     * changed) are not these */
    assert_int_equal(probe_recipe(h, &e), XE_OK);
    {
        char other[13];
        memcpy(other, h, sizeof other);
        other[0] = other[0] == '0' ? '1' : '0';
        assert_true(asprintf(&sql, "UPDATE datasets SET meta = json_set(meta, '$.probes.recipe', '%s')", other) > 0);
        assert_int_equal(sqlite3_exec(st.db, sql, 0, 0, 0), SQLITE_OK);
        free(sql);
    }
    assert_int_equal(probe_read(&st, 1, got, &e), 0);
    assert_true(isnan(got[0]));
    assert_true(asprintf(&sql, "UPDATE datasets SET meta = json_set(meta, '$.probes.recipe', '%s',"
                               " '$.probes.pool', 2)", h) > 0);
    assert_int_equal(sqlite3_exec(st.db, sql, 0, 0, 0), SQLITE_OK);
    assert_int_equal(probe_read(&st, 1, got, &e), 0); /* out of range: not used */
    free(sql);
    store_close(&st);
    fx_rmtree(d);
    free(d);
}

static void test_meta_probes_check(void **state)
{
    static const struct {
        const char *json, *msg;
    } cases[] = {
        { "[1]", "'probes' is not an object" },
        { "{\"conv3\":0.5}", "'probes.recipe' is not a 12-hex-digit recipe hash" },
        { "{\"recipe\":\"ABCDEF012345\"}", "'probes.recipe' is not a 12-hex-digit recipe hash" },
        { "{\"recipe\":\"abcdef0123\"}", "'probes.recipe' is not a 12-hex-digit recipe hash" },
        { "{\"recipe\":\"abcdef012345\",\"conv3\":0.5,\"conv1\":0.5,\"pool\":0.5}",
          "'probes.skip' is not an accuracy in [0, 1]" },
        { "{\"recipe\":\"abcdef012345\",\"conv3\":0.5,\"conv1\":\"0.5\",\"pool\":0.5,\"skip\":0.5}",
          "'probes.conv1' is not an accuracy in [0, 1]" },
        { "{\"recipe\":\"abcdef012345\",\"conv3\":-0.1,\"conv1\":0.5,\"pool\":0.5,\"skip\":0.5}",
          "'probes.conv3' is not an accuracy in [0, 1]" },
        { "{\"recipe\":\"abcdef012345\",\"conv3\":1,\"conv1\":0,\"pool\":0.5,\"skip\":0.5}", NULL },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i].json, 0, NULL);
        XErr e = { 0 };
        assert_non_null(j);
        if (cases[i].msg) {
            assert_int_equal(probe_check(j, &e), XE_FAIL);
            assert_string_equal(e.msg, cases[i].msg);
        } else
            assert_int_equal(probe_check(j, &e), XE_OK);
        json_decref(j);
    }
}

const struct CMUnitTest test_meta_proxies_tests[] = {
    cmocka_unit_test_setup_teardown(test_meta_probes_train, setup, teardown),
    cmocka_unit_test(test_meta_probes_store),
    cmocka_unit_test(test_meta_probes_check),
    cmocka_unit_test_setup_teardown(test_meta_proxies_empty_cell, setup, teardown),
    cmocka_unit_test_setup_teardown(test_meta_proxies_bounds, setup, teardown),
    cmocka_unit_test_setup_teardown(test_meta_proxies_deterministic, setup, teardown),
    cmocka_unit_test_setup_teardown(test_meta_proxies_synflow_deep, setup, teardown),
    cmocka_unit_test_setup_teardown(test_meta_proxies_bad_input, setup, teardown),
};
const size_t test_meta_proxies_count = sizeof test_meta_proxies_tests / sizeof test_meta_proxies_tests[0];
