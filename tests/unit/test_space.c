/* nb201 arch strings: parsing, canonical form, hashes, clear errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "space/space.h"

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

const struct CMUnitTest test_space_tests[] = {
    cmocka_unit_test(test_space_nb201_parse_roundtrip),
    cmocka_unit_test(test_space_nb201_canonical),
    cmocka_unit_test(test_space_nb201_errors),
};
const size_t test_space_count = sizeof test_space_tests / sizeof test_space_tests[0];
