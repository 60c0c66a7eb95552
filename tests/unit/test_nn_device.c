/* Choosing a backend by name (nn/device.h): cpu, cuda, auto and unknown
 * names, on whatever this build and machine have: with no CUDA backend or
 * no GPU, auto falls back to the CPU and cuda fails with the reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include "nn/device.h"

static void test_nn_device_cpu(void **state)
{
    const NnBackend *be = NULL;
    const char *used = NULL;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(nn_device_open("cpu", 1, &be, &used, &e), XE_OK);
    assert_ptr_equal(be, nn_cpu_backend(1));
    assert_string_equal(used, "cpu");
}

static void test_nn_device_unknown(void **state)
{
    const NnBackend *be = NULL;
    const char *used = NULL;
    XErr e = { 0 };
    (void)state;
    assert_int_equal(nn_device_open("tpu", 1, &be, &used, &e), XE_USAGE);
    assert_string_equal(e.msg, "unknown device 'tpu' (cpu, cuda or auto)");
    assert_null(be);
    assert_null(used);
}

/* cuda and auto agree with nn_cuda_available: without the backend or a
 * GPU, cuda fails with its reason and auto is the CPU; with both, each is
 * the one shared CUDA context. */
static void test_nn_device_cuda_auto(void **state)
{
    const NnBackend *be = NULL, *be2 = NULL;
    const char *used = NULL;
    XErr why = { 0 }, e = { 0 };
    (void)state;
    if (nn_cuda_available(&why)) {
        if (!strstr(why.msg, "this build has no CUDA backend (use cpu or auto)") && !strstr(why.msg, "no usable GPU"))
            fail_msg("unexpected reason for no CUDA: %s", why.msg);
        assert_int_equal(nn_device_open("cuda", 1, &be, &used, &e), XE_FAIL);
        assert_string_equal(e.msg, why.msg);
        assert_null(be);
        assert_int_equal(nn_device_open("auto", 1, &be, &used, &e), XE_OK);
        assert_ptr_equal(be, nn_cpu_backend(1));
        assert_string_equal(used, "cpu");
        return;
    }
    assert_int_equal(nn_device_open("cuda", 1, &be, &used, &e), XE_OK);
    assert_string_equal(used, "cuda");
    assert_string_equal(be->name, "cuda");
    assert_int_equal(nn_device_open("auto", 1, &be2, &used, &e), XE_OK);
    assert_ptr_equal(be2, be);
    assert_string_equal(used, "cuda");
}

const struct CMUnitTest test_nn_device_tests[] = {
    cmocka_unit_test(test_nn_device_cpu),
    cmocka_unit_test(test_nn_device_unknown),
    cmocka_unit_test(test_nn_device_cuda_auto),
};
const size_t test_nn_device_count = sizeof test_nn_device_tests / sizeof test_nn_device_tests[0];
