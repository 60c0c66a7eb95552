/* Accuracy-parity driver, the engine's half of bench/train_acc.sh (the
 * PyTorch half is bench/train_acc.py): trains a NAS-Bench-201 network on a
 * stored task file with a fixed recipe and prints one JSON line with the
 * final validation and test accuracies.
 * Usage: train_acc TASKFILE MEAN STD SEED EPOCHS [C N [ARCH]]  (one channel:
 * MEAN and STD are the dataset's, pixels / 255; C 8, N 1 by default).
 * Recipe: batch 64, SGD lr 0.1 momentum 0.9 Nesterov weight decay 5e-4 on
 * every parameter, per-iteration cosine to 0, random crop with zero padding
 * 2, no flip, no cutout, no label smoothing; 1 BLAS thread. With
 * TRAIN_ACC_CHECKPOINT=PATH set, the trained network is also written there
 * (net_checkpoint_write), for evaluating the same weights elsewhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "data/taskfile.h"
#include "nn/model.h"
#include "nn/train.h"
#include "space/space.h"

static const char *const default_arch =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

/* Per-epoch progress on stderr. */
static int report(void *ctx, const Net *net, const EpochPoint *p, XErr *e)
{
    (void)ctx, (void)net, (void)e;
    fprintf(stderr, "train_acc: epoch %d loss %.4f train %.4f valid %.4f lr %.4f %.1fs\n", p->epoch,
            p->train_loss, p->train_acc, p->valid_acc, p->lr, p->seconds);
    return 0;
}

int main(int argc, char **argv)
{
    const int batch = 64;
    const char *arch = argc > 8 ? argv[8] : default_arch;
    double mean[4] = { 0 }, std[4] = { 1, 1, 1, 1 }, valid_loss, valid_acc = -1, test_acc = -1, t0;
    int seed, epochs, C = 8, N = 1, ops[6], rc;
    TaskFile t = { 0 };
    Net net = { 0 };
    XErr e = { 0 };
    Recipe r;
    if (argc < 6 || argc > 9) {
        fprintf(stderr, "usage: train_acc TASKFILE MEAN STD SEED EPOCHS [C N [ARCH]]\n");
        return 2;
    }
    mean[0] = atof(argv[2]);
    std[0] = atof(argv[3]);
    seed = atoi(argv[4]);
    epochs = atoi(argv[5]);
    if (argc > 7)
        C = atoi(argv[6]), N = atoi(argv[7]);
    if (std[0] <= 0 || seed < 0 || epochs < 1 || C < 1 || N < 1) {
        fprintf(stderr, "train_acc: bad arguments\n");
        return 2;
    }
    memset(&r, 0, sizeof r);
    r.epochs = epochs;
    r.lr = 0.1f;
    r.lr_min = 0.0f;
    r.momentum = 0.9f;
    r.wd = 5e-4f;
    r.nesterov = 1;
    r.aug.crop_pad = 2;
    r.seed = (uint64_t)seed;

    rc = taskfile_open(&t, argv[1], &e);
    if (rc == XE_OK && t.c != 1)
        rc = xerr_set(&e, XE_FAIL, "'%s': %u channels, this driver takes one", argv[1], t.c);
    if (rc == XE_OK)
        rc = nb201_parse(arch, ops, &e);
    if (rc == XE_OK)
        rc = net_init(&net, nn_cpu_backend(1), batch, (int)t.c, (int)t.h, (int)t.w, &e);
    if (rc == XE_OK && !(rc = model_nb201(&net, ops, C, N, (int)t.classes, &e)))
        rc = net_finalize(&net, (uint64_t)seed, &e);
    t0 = xfer_clock();
    if (rc == XE_OK)
        rc = train_run(&net, &t, mean, std, &r, 0, report, NULL, &test_acc, &e);
    if (rc == XE_OK && getenv("TRAIN_ACC_CHECKPOINT"))
        rc = net_checkpoint_write(&net, epochs, getenv("TRAIN_ACC_CHECKPOINT"), &e);
    if (rc == XE_OK && t.n[SPLIT_VALID])
        rc = train_evaluate(&net, &t, SPLIT_VALID, mean, std, &valid_loss, &valid_acc, &e);
    if (rc == XE_OK)
        printf("{\"engine\":\"xfernas\",\"seed\":%d,\"epochs\":%d,\"C\":%d,\"N\":%d,\"valid_acc\":%.4f,"
               "\"test_acc\":%.4f,\"seconds\":%.1f}\n",
               seed, epochs, C, N, valid_acc, test_acc, xfer_clock() - t0);
    if (net.be)
        net_release(&net);
    if (t.map)
        taskfile_close(&t);
    if (rc) {
        fprintf(stderr, "train_acc: %s\n", e.msg);
        return 1;
    }
    if (ferror(stdout) || fclose(stdout)) {
        fprintf(stderr, "train_acc: cannot write the result\n");
        return 1;
    }
    return 0;
}
