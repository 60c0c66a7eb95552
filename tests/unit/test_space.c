/* nb201 and the shared space API: arch strings, canonical forms and hashes,
 * enumeration, tokens, sampling, mutation and the TinyNetwork costs checked
 * against NAS-Bench-201's published params and FLOPs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "space/space.h"
#include "unit.h"

static const char *const good =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

static void test_space_nb201_parse_roundtrip(void **state)
{
    int ops[NB201_EDGES];
    char out[512];
    XErr e = { 0 };
    (void)state;
    assert_int_equal(nb201_parse(good, ops, &e), XE_OK);
    assert_int_equal(ops[0], 3);
    assert_int_equal(ops[3], 1);
    assert_int_equal(ops[5], 3);
    nb201_format(ops, out, sizeof out);
    assert_string_equal(out, good);
}

static void test_space_nb201_canonical(void **state)
{
    const Space *sp = space_find("nb201");
    char c1[512], c2[512], h1[65], h2[65], h3[65];
    XErr e = { 0 };
    (void)state;
    assert_non_null(sp);
    assert_null(space_find("nope"));
    /* inputs of a node in another order, surrounding blanks: same cell */
    assert_int_equal(space_canonical_hash(sp,
                                          "  |nor_conv_3x3~0|+|nor_conv_3x3~1|nor_conv_3x3~0|+|nor_conv_3x3~2|"
                                          "skip_connect~0|nor_conv_3x3~1|\n",
                                          c1, sizeof c1, h1, &e),
                     XE_OK);
    assert_string_equal(c1, good);
    assert_int_equal(space_canonical_hash(sp, good, c2, sizeof c2, h2, &e), XE_OK);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    assert_int_equal(space_canonical_hash(sp, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", c2, sizeof c2,
                                          h3, &e),
                     XE_OK);
    assert_string_not_equal(h1, h3);
}

static void expect_error(const char *arch, const char *needle)
{
    int ops[NB201_EDGES];
    XErr e = { 0 };
    assert_int_equal(nb201_parse(arch, ops, &e), XE_FAIL);
    if (!strstr(e.msg, needle))
        fail_msg("'%s': message '%s' lacks '%s'", arch, e.msg, needle);
}

static void test_space_nb201_errors(void **state)
{
    (void)state;
    expect_error("|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_9x9'");
    expect_error("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 has 1 edges, expected 2");
    expect_error("|none~0|+|none~0|none~1|+|none~0|none~1|none~3|", "node 3 cannot take input 3");
    expect_error("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "input 0 twice");
    expect_error("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|x", "unterminated edge at node 3");
    expect_error("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "trailing text after node 3");
    expect_error("|none~0|+|none~0|none~1|", "expected '+' after node 2");
    expect_error("", "expected '|'");
    expect_error("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "not op~input");
    expect_error("|none~0|+|none~0|none~1|+|none~0|none~1|none~2", "unterminated");
}

static void test_space_registry(void **state)
{
    (void)state;
    assert_ptr_equal(space_find("nb201"), &space_nb201);
    assert_ptr_equal(space_find("darts"), &space_darts);
    assert_null(space_find(NULL));
    assert_null(space_find("NB201"));
    assert_string_equal(space_list(), "nb201, darts");
    assert_int_equal(space_nb201.token_len, 6);
    assert_int_equal(space_nb201.vocab, 5);
    assert_true(space_nb201.count == 15625);
}

/* The hash of a canonical string is what stored databases key on: a change
 * of format would orphan them. Literal: sha256("nb201:" + good). */
static void test_space_nb201_hash_stable(void **state)
{
    char canon[512], hash[65], hash2[65];
    SpaceArch a;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(space_canonical_hash(&space_nb201, good, canon, sizeof canon, hash, &e), XE_OK);
    assert_string_equal(hash, "ad3305ebb3de3781d4b5745491abd5ddfd30437c205ebd55305fb7b53d79a847");
    assert_int_equal(space_nb201.parse(good, &a, &e), XE_OK);
    assert_int_equal(space_arch_hash(&space_nb201, &a, canon, sizeof canon, hash2, &e), XE_OK);
    assert_string_equal(hash2, hash);
    assert_string_equal(canon, good);
}

static void test_space_nb201_small_buffer(void **state)
{
    char canon[20], hash[65];
    SpaceArch a;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(space_nb201.canonical(good, canon, sizeof canon, &e), XE_FAIL);
    assert_string_equal(e.msg, "nb201 arch: canonical form needs 96 bytes, have 20");
    assert_int_equal(space_nb201.format(&(SpaceArch){ .nb201 = { { 3, 3, 3, 1, 3, 3 } } }, canon, sizeof canon),
                     strlen(good));
    assert_int_equal(strlen(canon), sizeof canon - 1);
    xerr_clear(&e);
    assert_int_equal(space_nb201.parse(good, &a, &e), XE_OK);
    assert_int_equal(space_arch_hash(&space_nb201, &a, canon, sizeof canon, hash, &e), XE_FAIL);
    assert_string_equal(e.msg, "nb201 arch: canonical form needs 96 bytes, have 20");
}

/* Every index 0..15624 gives a distinct arch whose string parses back to
 * the same index, and whose tokens decode back to it. */
static void test_space_nb201_enumerate(void **state)
{
    char s[256];
    (void)state;
    for (uint64_t i = 0; i < space_nb201.count; i++) {
        SpaceArch a, b, c;
        int tok[SPACE_MAX_TOKENS];
        XErr e = { 0 };
        assert_int_equal(space_nb201.from_index(i, &a, &e), XE_OK);
        assert_true(space_nb201.to_index(&a) == i);
        assert_true(space_nb201.format(&a, s, sizeof s) < sizeof s);
        assert_int_equal(space_nb201.parse(s, &b, &e), XE_OK);
        assert_memory_equal(&a, &b, sizeof a);
        space_nb201.encode(&a, tok);
        for (int k = 0; k < 6; k++)
            assert_true(tok[k] >= 0 && tok[k] < space_nb201.vocab);
        assert_int_equal(space_nb201.decode(tok, space_nb201.token_len, &c, &e), XE_OK);
        assert_memory_equal(&a, &c, sizeof a);
    }
    {
        SpaceArch a;
        XErr e = { 0 };
        assert_int_equal(space_nb201.from_index(0, &a, &e), XE_OK);
        assert_int_equal(space_nb201.format(&a, s, sizeof s), 47);
        assert_string_equal(s, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
        assert_int_equal(space_nb201.from_index(15624, &a, &e), XE_OK);
        assert_string_equal((space_nb201.format(&a, s, sizeof s), s),
                            "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|"
                            "avg_pool_3x3~2|");
        /* edge (1<-0) is the most significant base-5 digit */
        assert_int_equal(space_nb201.from_index(3 * 3125 + 1, &a, &e), XE_OK);
        assert_int_equal(a.nb201.ops[0], 3);
        assert_int_equal(a.nb201.ops[5], 1);
        assert_int_equal(space_nb201.from_index(15625, &a, &e), XE_FAIL);
        assert_string_equal(e.msg, "nb201 index 15625 is out of range (0-15624)");
    }
}

static void test_space_nb201_tokens(void **state)
{
    SpaceArch a;
    int tok[6] = { 3, 3, 3, 1, 3, 3 };
    XErr e = { 0 };
    (void)state;
    assert_string_equal(space_nb201.token_name(0), "none");
    assert_string_equal(space_nb201.token_name(4), "avg_pool_3x3");
    assert_null(space_nb201.token_name(5));
    assert_null(space_nb201.token_name(-1));
    assert_int_equal(space_nb201.decode(tok, 6, &a, &e), XE_OK);
    {
        char s[256];
        space_nb201.format(&a, s, sizeof s);
        assert_string_equal(s, good);
    }
    assert_int_equal(space_nb201.decode(tok, 5, &a, &e), XE_FAIL);
    assert_string_equal(e.msg, "invalid nb201 tokens: expected 6, got 5");
    xerr_clear(&e);
    tok[4] = 5;
    assert_int_equal(space_nb201.decode(tok, 6, &a, &e), XE_FAIL);
    assert_string_equal(e.msg, "invalid nb201 tokens: token 4 (edge 3<-1) is 5, not an op (0-4)");
    xerr_clear(&e);
    tok[4] = 0;
    tok[0] = -1;
    assert_int_equal(space_nb201.decode(tok, 6, &a, &e), XE_FAIL);
    assert_string_equal(e.msg, "invalid nb201 tokens: token 0 (edge 1<-0) is -1, not an op (0-4)");
}

/* Same seed, same archs; 100,000 draws cover nearly all 15,625 cells (the
 * expected number missed is 15625 * e^-6.4, about 26) and give each op on
 * each edge a fifth of the time (sd 126, bound 5 sd). */
static void test_space_nb201_sample(void **state)
{
    Rng r1, r2;
    unsigned char *seen = calloc(15625, 1);
    long counts[NB201_EDGES][NB201_OPS] = { { 0 } };
    int distinct = 0, differs = 0;
    (void)state;
    assert_non_null(seen);
    rng_seed(&r1, 42);
    rng_seed(&r2, 42);
    for (int i = 0; i < 100000; i++) {
        SpaceArch a, b;
        space_nb201.sample(&r1, &a);
        space_nb201.sample(&r2, &b);
        assert_memory_equal(&a, &b, sizeof a);
        distinct += !seen[space_nb201.to_index(&a)];
        seen[space_nb201.to_index(&a)] = 1;
        for (int k = 0; k < NB201_EDGES; k++)
            counts[k][a.nb201.ops[k]]++;
    }
    assert_in_range(distinct, 15500, 15625);
    for (int k = 0; k < NB201_EDGES; k++)
        for (int o = 0; o < NB201_OPS; o++)
            assert_in_range(counts[k][o], 20000 - 630, 20000 + 630);
    rng_seed(&r1, 42);
    rng_seed(&r2, 43);
    for (int i = 0; i < 10; i++) {
        SpaceArch a, b;
        space_nb201.sample(&r1, &a);
        space_nb201.sample(&r2, &b);
        differs += memcmp(&a, &b, sizeof a) != 0;
    }
    assert_true(differs >= 9);
    free(seen);
}

/* A child differs from its parent in exactly one edge; from one parent all
 * 24 neighbours come up, each about 1/24 of 24,000 draws (sd 31). */
static void test_space_nb201_mutate(void **state)
{
    Rng r;
    SpaceArch parent;
    int hits[15625] = { 0 }, distinct = 0;
    (void)state;
    rng_seed(&r, 1);
    for (int t = 0; t < 2000; t++) {
        SpaceArch p, c;
        int changed = 0;
        space_nb201.sample(&r, &p);
        space_nb201.mutate(&p, &r, &c);
        for (int k = 0; k < NB201_EDGES; k++) {
            assert_in_range(c.nb201.ops[k], 0, NB201_OPS - 1);
            changed += c.nb201.ops[k] != p.nb201.ops[k];
        }
        assert_int_equal(changed, 1);
        assert_memory_not_equal(&p, &c, sizeof p);
    }
    space_nb201.from_index(1234, &parent, NULL);
    for (int t = 0; t < 24000; t++) {
        SpaceArch c;
        space_nb201.mutate(&parent, &r, &c);
        hits[space_nb201.to_index(&c)]++;
    }
    assert_int_equal(hits[1234], 0);
    for (int i = 0; i < 15625; i++)
        if (hits[i]) {
            distinct++;
            assert_in_range(hits[i], 1000 - 160, 1000 + 160);
        }
    assert_int_equal(distinct, 24);
}

static void nb201_cost(const char *arch, int classes, int side, uint64_t params, uint64_t flops)
{
    SpaceArch a;
    SpaceMacro m = space_nb201.macro_default;
    SpaceCost c;
    XErr e = { 0 };
    m.classes = classes;
    m.height = m.width = side;
    assert_int_equal(space_nb201.parse(arch, &a, &e), XE_OK);
    assert_int_equal(space_nb201.cost(&a, &m, &c, &e), XE_OK);
    if (c.params != params || c.flops != flops)
        fail_msg("'%s' %d classes %dx%d: params %llu flops %llu, expected %llu %llu", arch, classes, side, side,
                 (unsigned long long)c.params, (unsigned long long)c.flops, (unsigned long long)params,
                 (unsigned long long)flops);
}

#define ALL_CONV3 "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
#define ALL_NONE "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
#define RESNET "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"

/* Published NAS-Bench-201 costs (C 16, N 5; "params" in MB = params / 1e6,
 * "flop" in M = flops / 1e6, conv and linear multiply-adds plus the linear
 * bias, pooling not counted):
 * - smallest and largest over the benchmark (the cells without convs and
 *   the all-nor_conv_3x3 cell), from the v1_1-096897 files: CIFAR-10
 *   0.073306 / 1.531546 MB, 7.78305 / 220.11969 M; CIFAR-100 0.079156 /
 *   1.537396, 7.7889 / 220.12554; ImageNet16-120 (16x16, 120 classes)
 *   0.080456 / 1.538696, 1.9534 / 55.03756 (EvoXBench's NB201 min/max
 *   table; HPOBench extraction notes);
 * - cost_info {'flops': 78.56193, 'params': 0.559386} of a cell with two
 *   nor_conv_3x3 edges and no nor_conv_1x1 (pprp/PicoNAS
 *   piconas/evaluator/nb201_evaluator_bak.py); params depend only on those
 *   counts (0.486080 = 2 x 0.243040 has no other solution), e.g. the
 *   ResNet-like cell. */
static void test_space_nb201_cost_published(void **state)
{
    (void)state;
    nb201_cost(ALL_NONE, 10, 32, 73306, 7783050);
    nb201_cost(ALL_CONV3, 10, 32, 1531546, 220119690);
    nb201_cost(RESNET, 10, 32, 559386, 78561930);
    nb201_cost(ALL_NONE, 100, 32, 79156, 7788900);
    nb201_cost(ALL_CONV3, 100, 32, 1537396, 220125540);
    nb201_cost(ALL_NONE, 120, 16, 80456, 1953400);
    nb201_cost(ALL_CONV3, 120, 16, 1538696, 55037560);
    /* skips and pools carry nothing: as cheap as the empty cell */
    nb201_cost("|skip_connect~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|skip_connect~2|", 10, 32,
               73306, 7783050);
}

/* Counted by hand, layer by layer (C 16, N 5, 32x32x3, 10 classes):
 *   stem     conv 3*16*9 = 432 + BN 32; MACs 432 * 32*32 = 442,368
 *   block 1  16->32 at 16x16: 3x3 s2 4,608, 3x3 9,216, 1x1 512, BNs 128
 *            = 14,464; MACs (4,608 + 9,216 + 512) * 256 = 3,670,016
 *   block 2  32->64 at 8x8: 18,432 + 36,864 + 2,048 + BNs 256 = 57,600;
 *            MACs (18,432 + 36,864 + 2,048) * 64 = 3,670,016
 *   head     BN 128; linear 64*10 + 10 = 650 params and MACs
 *   empty cells: 464 + 14,464 + 57,600 + 128 + 650 = 73,306 params and
 *   442,368 + 2 * 3,670,016 + 650 = 7,783,050 MACs.
 *   A nor_conv_1x1 edge: C*C + 2C params and C*C*HW MACs per cell:
 *   stage 1 256 + 32, 256 * 1024; stage 2 1,024 + 64, 1,024 * 256;
 *   stage 3 4,096 + 128, 4,096 * 64: 5 cells x (288 + 1,088 + 4,224) =
 *   28,000 params and 5 x 3 x 262,144 = 3,932,160 MACs per edge position.
 *   All six nor_conv_1x1: 73,306 + 6 x 28,000 = 241,306 params,
 *   7,783,050 + 6 x 3,932,160 = 31,376,010 MACs. */
static void test_space_nb201_cost_by_hand(void **state)
{
    (void)state;
    nb201_cost("|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
               10, 32, 241306, 31376010);
    nb201_cost("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|", 10, 32, 73306 + 28000,
               7783050 + 3932160);
    /* one input channel: the stem loses 2*16*9 = 288 params, 288*1024 MACs */
    {
        SpaceArch a;
        SpaceMacro m = space_nb201.macro_default;
        SpaceCost c;
        XErr e = { 0 };
        m.in_channels = 1;
        assert_int_equal(space_nb201.parse(ALL_NONE, &a, &e), XE_OK);
        assert_int_equal(space_nb201.cost(&a, &m, &c, &e), XE_OK);
        assert_true(c.params == 73306 - 288);
        assert_true(c.flops == 7783050 - 288 * 1024);
    }
}

static void expect_macro_error(const Space *sp, SpaceMacro m, const char *msg)
{
    SpaceArch a;
    SpaceCost c = { 7, 7 };
    XErr e = { 0 };
    sp->from_index(0, &a, NULL);
    assert_int_equal(sp->check_macro(&m, &e), XE_USAGE);
    assert_string_equal(e.msg, msg);
    xerr_clear(&e);
    assert_int_equal(sp->cost(&a, &m, &c, &e), XE_USAGE);
    assert_string_equal(e.msg, msg);
    assert_true(c.params == 7 && c.flops == 7);
}

static void test_space_nb201_macro_errors(void **state)
{
    SpaceMacro d = space_nb201.macro_default, m;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(space_nb201.check_macro(&d, &e), XE_OK);
    m = d, m.C = 0;
    expect_macro_error(&space_nb201, m, "nb201 macro: C 0 is out of range (1-256)");
    m = d, m.C = 257;
    expect_macro_error(&space_nb201, m, "nb201 macro: C 257 is out of range (1-256)");
    m = d, m.N = 0;
    expect_macro_error(&space_nb201, m, "nb201 macro: N 0 is out of range (1-32 cells a stage)");
    m = d, m.classes = 0;
    expect_macro_error(&space_nb201, m, "nb201 macro: classes 0 is out of range (1-65535)");
    m = d, m.in_channels = -3;
    expect_macro_error(&space_nb201, m, "nb201 macro: in_channels -3 is out of range (1-64)");
    m = d, m.height = 2;
    expect_macro_error(&space_nb201, m, "nb201 macro: input 2x32 is out of range (4-4096 a side)");
    m = d, m.width = 5000;
    expect_macro_error(&space_nb201, m, "nb201 macro: input 32x5000 is out of range (4-4096 a side)");
    m = d, m.height = 30;
    expect_macro_error(&space_nb201, m,
                       "nb201 macro: input 30x32 cannot be halved twice exactly: each side must be a "
                       "multiple of 4");
    m = d, m.height = 4, m.width = 4, m.C = 256, m.N = 32;
    assert_int_equal(space_nb201.check_macro(&m, &e), XE_OK);
}

/* Damaged copies of a valid string: no crash, and whatever parses has a
 * canonical form that parses to itself. */
static void test_space_nb201_fuzz(void **state)
{
    Rng r;
    (void)state;
    rng_seed(&r, 5);
    for (int t = 0; t < 20000; t++) {
        char s[160], canon[256], again[256];
        size_t n = strlen(good);
        SpaceArch a;
        XErr e = { 0 };
        memcpy(s, good, n + 1);
        for (int k = (int)rng_below(&r, 4); k >= 0; k--) {
            size_t at = (size_t)rng_below(&r, n);
            switch (rng_below(&r, 3)) {
            case 0:
                s[at] = "|+~0123456789_abnx \t"[rng_below(&r, 20)];
                break;
            case 1:
                s[at] = '\0';
                n = at;
                break;
            default:
                memmove(s + at, s + at + 1, n - at);
                n--;
                break;
            }
            if (n == 0)
                break;
        }
        if (space_nb201.canonical(s, canon, sizeof canon, &e) == XE_OK) {
            assert_int_equal(space_nb201.parse(canon, &a, &e), XE_OK);
            space_nb201.format(&a, again, sizeof again);
            assert_string_equal(again, canon);
        } else {
            assert_true(strncmp(e.msg, "invalid nb201 arch '", 20) == 0);
        }
    }
}

const struct CMUnitTest test_space_tests[] = {
    cmocka_unit_test(test_space_nb201_parse_roundtrip),
    cmocka_unit_test(test_space_nb201_canonical),
    cmocka_unit_test(test_space_nb201_errors),
    cmocka_unit_test(test_space_registry),
    cmocka_unit_test(test_space_nb201_hash_stable),
    cmocka_unit_test(test_space_nb201_small_buffer),
    cmocka_unit_test(test_space_nb201_enumerate),
    cmocka_unit_test(test_space_nb201_tokens),
    cmocka_unit_test(test_space_nb201_sample),
    cmocka_unit_test(test_space_nb201_mutate),
    cmocka_unit_test(test_space_nb201_cost_published),
    cmocka_unit_test(test_space_nb201_cost_by_hand),
    cmocka_unit_test(test_space_nb201_macro_errors),
    cmocka_unit_test(test_space_nb201_fuzz),
};
const size_t test_space_count = sizeof test_space_tests / sizeof test_space_tests[0];
