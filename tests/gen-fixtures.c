/* gen-fixtures DIR: writes every format's standard fixture set into
 * DIR/<format>/ for the CLI tests and the fuzzers' seed corpora;
 * gen-fixtures --cifar10-tarball PATH N writes a CIFAR-10-sized tarball of
 * noise with N records per batch (the benchmark's input);
 * gen-fixtures --shapes DIR N SIDE writes a learnable colour task: DIR/CLASS.npy
 * with N images SIDE x SIDE x 3 of each of six shapes, drawn at a random
 * place, size and colour on a noisy background of another colour;
 * gen-fixtures --meta-runs PATH TASKS ARCHS writes run records (JSON Lines
 * for xfer-ingest runs) of ARCHS nb201 archs on TASKS virtual tasks named
 * syn0, syn1, ..., with 6-epoch curves: the accuracy is a score shared by
 * every task (what each edge's op is worth) plus a task-specific part and
 * noise, so a transfer predictor has something to learn. */
#include "space/space.h"
#include <math.h>
#include <stdint.h>
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

static const char *const shape_names[] = { "circle", "square", "triangle", "cross", "ring", "stripes" };

/* Whether (x, y) lies in shape k of centre (cx, cy) and radius r. */
static int in_shape(int k, double x, double y, double cx, double cy, double r)
{
    double dx = x - cx, dy = y - cy, d = sqrt(dx * dx + dy * dy);
    switch (k) {
    case 0: return d <= r;
    case 1: return fabs(dx) <= r * 0.8 && fabs(dy) <= r * 0.8;
    case 2: return dy <= r * 0.7 && dy >= -r && fabs(dx) <= (dy + r) * 0.6;
    case 3: return (fabs(dx) <= r * 0.3 || fabs(dy) <= r * 0.3) && fabs(dx) <= r && fabs(dy) <= r;
    case 4: return d <= r && d >= r * 0.55;
    default: return fabs(dx) <= r && fabs(dy) <= r && ((int)floor((y - cy + r) / (r * 0.5)) & 1);
    }
}

static int shapes(const char *dir, int n, int side)
{
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    size_t per = (size_t)side * side * 3;
    uint8_t *px = malloc((size_t)n * per);
    if (!px || fx_mkdir(dir))
        return free(px), 1;
#define RND() ((st ^= st << 13, st ^= st >> 7, st ^= st << 17), (double)(st >> 11) / 9007199254740992.0)
    for (int k = 0; k < 6; k++) {
        uint64_t shape[4] = { (uint64_t)n, (uint64_t)side, (uint64_t)side, 3 };
        uint8_t *buf;
        size_t len;
        char path[4096];
        for (int i = 0; i < n; i++) {
            double r = side * (0.18 + 0.17 * RND()), cx = r + (side - 2 * r) * RND(), cy = r + (side - 2 * r) * RND();
            double fg[3], bg[3];
            for (int c = 0; c < 3; c++)
                fg[c] = 255 * RND(), bg[c] = 255 - fg[c] + 60 * (RND() - 0.5);
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                    for (int c = 0; c < 3; c++) {
                        double v = (in_shape(k, x + 0.5, y + 0.5, cx, cy, r) ? fg[c] : bg[c]) + 90 * (RND() - 0.5);
                        px[(size_t)i * per + ((size_t)y * side + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                    }
        }
        snprintf(path, sizeof path, "%s/%s.npy", dir, shape_names[k]);
        if (fx_npy_encode(1, "|u1", 0, shape, 4, px, (size_t)n * per, &buf, &len) || fx_write(path, buf, len, 0))
            return free(px), 1;
        free(buf);
    }
#undef RND
    free(px);
    return 0;
}

static int meta_runs(const char *path, int tasks, int archs)
{
    /* op values per edge: none, skip, conv1x1, conv3x3, avg pool */
    static const double op_value[NB201_OPS] = { 0.0, 0.35, 0.6, 1.0, 0.2 };
    FILE *f = fopen(path, "w");
    Rng r;
    double tw[16][NB201_EDGES];
    uint64_t *idx = malloc((size_t)archs * sizeof *idx);
    if (!f || !idx || tasks < 1 || tasks > 16)
        return f ? fclose(f) : 0, free(idx), 1;
    rng_seed(&r, 2024);
    for (int t = 0; t < tasks; t++)
        for (int k = 0; k < NB201_EDGES; k++)
            tw[t][k] = 0.6 * (rng_uniform(&r) - 0.5);
    for (int i = 0; i < archs; i++)
        idx[i] = (uint64_t)i * 7919u % space_nb201.count; /* distinct: 7919 is prime to 15625 */
    for (int t = 0; t < tasks; t++)
        for (int i = 0; i < archs; i++) {
            SpaceArch a;
            char canon[256];
            XErr e = { 0 };
            double s = 0, acc;
            space_nb201.from_index(idx[i], &a, &e);
            space_nb201.format(&a, canon, sizeof canon);
            for (int k = 0; k < NB201_EDGES; k++)
                s += op_value[a.nb201.ops[k]] * (1.0 + tw[t][k]);
            /* the output node (edges 3-5) matters more; no path at all is chance */
            s += 0.5 * (op_value[a.nb201.ops[3]] + op_value[a.nb201.ops[4]] + op_value[a.nb201.ops[5]]);
            acc = 0.25 + 0.6 / (1.0 + exp(-(s - 3.0))) + 0.01 * (rng_uniform(&r) - 0.5) + 0.03 * t / tasks;
            fprintf(f,
                    "{\"space\":\"nb201\",\"arch\":\"%s\",\"dataset\":\"syn%d\",\"protocol\":{\"name\":\"synthetic\"},"
                    "\"seed\":0,\"status\":\"done\",\"valid_acc\":%.5f,\"curve\":[",
                    canon, t, acc);
            for (int ep = 1; ep <= 6; ep++)
                fprintf(f, "%s{\"epoch\":%d,\"valid_acc\":%.5f}", ep > 1 ? "," : "", ep,
                        acc * (1.0 - 0.5 * exp(-0.7 * ep)) + 0.005 * (rng_uniform(&r) - 0.5));
            fprintf(f, "]}\n");
        }
    free(idx);
    return fclose(f) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--meta-runs"))
        return meta_runs(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "--shapes"))
        return shapes(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 4 && !strcmp(argv[1], "--cifar10-tarball"))
        return fx_cifar_tarball(argv[2], 10, (uint32_t)atoi(argv[3]), 1) ? 1 : 0;
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: gen-fixtures DIR | --cifar10-tarball PATH PER_BATCH | --shapes DIR N SIDE |\n"
                        "       --meta-runs PATH TASKS ARCHS\n");
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
