/* gen-fixtures DIR: writes every format's standard fixture set into
 * DIR/<format>/ for the CLI tests and the fuzzers' seed corpora;
 * gen-fixtures --cifar10-tarball PATH N writes a CIFAR-10-sized tarball of
 * noise with N records per batch (the benchmark's input). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures/fx_bench.h"
#include "fixtures/fx_idx.h"
#include "fixtures/fx_npy.h"
#include "fixtures/fx_png.h"
#include "fixtures/fx_svhn.h"
#include "fixtures/fx_util.h"

static const struct {
    const char *name;
    int (*fn)(const char *dir);
} sets[] = {
    { "idx", fx_idx_standard },   { "cifar", fx_cifar_standard }, { "npy", fx_npy_standard },
    { "svhn", fx_svhn_standard }, { "png", fx_png_standard },     { "bench", fx_bench_standard },
    { "space", fx_space_standard },
};

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--cifar10-tarball"))
        return fx_cifar_tarball(argv[2], 10, (uint32_t)atoi(argv[3]), 1) ? 1 : 0;
    if (argc != 2) {
        fprintf(stderr, "usage: gen-fixtures DIR | --cifar10-tarball PATH PER_BATCH\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", argv[1], sets[i].name);
        if (fx_mkdir(d) || sets[i].fn(d)) {
            fprintf(stderr, "gen-fixtures: writing the %s fixtures into '%s' failed\n", sets[i].name, d);
            return 1;
        }
    }
    return 0;
}
