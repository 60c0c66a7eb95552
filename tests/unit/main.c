/* The unit-test runner: every test file's table in one cmocka group, so the
 * suite ends with one summary line. To add a file: declare its table below. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SUITE
#define SUITE(X) X(store) X(space) X(space_darts) X(builder) X(idx) X(cifar) X(import) X(npy) X(svhn) X(imgfolder) X(nn_data) \
    X(nn_conv) X(nn_ops) X(nn_net) X(nn_golden) X(nn_threads) X(nn_device) X(cuda_ops) \
    X(tape) X(xfer) X(ranker) X(earlystop) X(search) \
    X(meta_proxies) X(meta_queue)
#endif

#define DECLARE(s)                                                                                 \
    extern const struct CMUnitTest test_##s##_tests[];                                             \
    extern const size_t test_##s##_count;
SUITE(DECLARE)

int main(int argc, char **argv)
{
    struct CMUnitTest *all;
    size_t n = 0, k = 0;
    /* Optional filter: run only tests whose name contains argv[1]. */
    const char *filter = argc > 1 ? argv[1] : NULL;
#define COUNT(s) n += test_##s##_count;
    SUITE(COUNT)
    all = calloc(n, sizeof *all);
    if (!all)
        return 1;
#define ADD(s)                                                                                     \
    for (size_t i = 0; i < test_##s##_count; i++)                                                  \
        if (!filter || strstr(test_##s##_tests[i].name, filter))                                   \
            all[k++] = test_##s##_tests[i];
    SUITE(ADD)
    {
        int failed = _cmocka_run_group_tests("xfernas", all, k, NULL, NULL);
        free(all);
        return failed ? 1 : 0;
    }
}
