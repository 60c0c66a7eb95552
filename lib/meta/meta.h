/* Metadata collection (xfer-train-meta): training protocols, the run queue
 * in the store (plan, claim under a lease, heartbeat, per-epoch curve
 * points, finish / fail / release), the worker that trains claimed runs
 * with checkpoints, and the merge of shard databases.
 *
 * Never lose, never repeat: a run is claimed under BEGIN IMMEDIATE by a
 * conditional update; every later write of that run is conditional on the
 * claim (worker name, status 'running') and is refused once the lease was
 * lost. Each epoch: first the curve point and epochs_done in one
 * transaction, then the checkpoint (temporary file, rename); a resumed run
 * restarts from its checkpoint, re-trains the epochs after it (the same
 * batches: everything random derives from seed and epoch) and rewrites
 * their points with the same values. */
#ifndef XFER_META_H
#define XFER_META_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/err.h"
#include "db/store.h"
#include "nn/train.h"
#include "space/space.h"

/* ---- protocols (protocol.c) ---- */

typedef struct Protocol {
    char name[32];    /* preset it started from */
    int width;        /* nb201 C; darts initial channels */
    int cells;        /* nb201 N (cells per stage); darts L (total cells) */
    int epochs, batch;
    double lr, lr_min, momentum, wd, clip, label_smoothing, drop_path;
    int warmup, nesterov;
    int crop_pad, flip, cutout;
    char precision[8]; /* fp32 (bf16 / fp16 are the CUDA backend's) */
} Protocol;

/* "cheap, nb201, tiny" */
const char *protocol_presets(void);
/* A preset by name; XE_USAGE naming the valid ones. */
int protocol_preset(const char *name, Protocol *p, XErr *e);
/* Applies "key=value" (keys as in the JSON: width, cells, epochs, batch,
 * lr, lr_min, warmup, momentum, wd, nesterov, clip, label_smoothing,
 * drop_path, crop_pad, flip, cutout, precision); XE_USAGE naming the key or
 * the value and its range. */
int protocol_set(Protocol *p, const char *kv, XErr *e);
/* Canonical JSON (sorted keys; caller frees) and back. */
char *protocol_json(const Protocol *p);
int protocol_parse(const char *json, Protocol *p, XErr *e);
/* The training recipe of a run of this protocol with a seed. */
void protocol_recipe(const Protocol *p, uint64_t seed, Recipe *r);

/* ---- the queue (queue.c) ---- */

/* Planned runs get seeds 0 .. seeds-1. */
typedef struct PlanStats {
    long added, existing;
} PlanStats;

/* Adds the run (arch x dataset x protocol x seed) unless it exists;
 * *run_id out (may be NULL). Inside the caller's transaction. */
int queue_plan(Store *st, int64_t arch_id, int64_t dataset_id, int64_t protocol_id, int64_t seed,
               int64_t *run_id, PlanStats *ps, XErr *e);

/* What a worker needs of a claimed run. */
typedef struct RunInfo {
    int64_t id, arch_id, dataset_id, protocol_id, seed;
    int attempts, epochs_done;
    char space[16];
    char *arch, *dataset, *recipe; /* owned */
} RunInfo;
void run_info_free(RunInfo *ri);

/* The name this process claims under: "host:pid:start" (start: the Unix
 * time now), with ":job" appended for job > 0 (a worker's further jobs).
 * Runs and searches share it. */
void queue_worker_name(char *buf, size_t n, int job);
/* 1 when worker names a process of this host that no longer exists
 * (kill(pid, 0) fails with ESRCH): its leases can be taken over at once.
 * 0 when it lives, is on another host, or the name is not of that form. */
int queue_worker_dead(const char *worker);

typedef struct Claim {
    const char *worker;  /* unique per process: queue_worker_name */
    double lease;        /* seconds */
    int max_attempts;    /* a run claimed this many times is failed, not retried */
    const int64_t *only; /* claim only these run ids (NULL: any) */
    int nonly;
} Claim;

/* Claims the next run: planned, or running under an expired lease. Returns
 * 1 with *ri filled, 0 when nothing is left to claim. Runs whose lease ran
 * out max_attempts times are marked failed on the way. */
int queue_claim(Store *st, const Claim *c, RunInfo *ri, XErr *e);
/* Extends the lease; XE_FAIL "lease lost" if the run is no longer ours. */
int queue_heartbeat(Store *st, const Claim *c, int64_t run_id, XErr *e);
/* One epoch's point (replacing a point re-trained after a resume). */
int queue_epoch(Store *st, const Claim *c, int64_t run_id, const EpochPoint *p, XErr *e);
/* Final results. */
typedef struct RunResult {
    double valid_acc, test_acc, seconds; /* accuracies < 0: none */
    uint64_t params, flops;
    const char *device;
} RunResult;
int queue_finish(Store *st, const Claim *c, int64_t run_id, const RunResult *r, XErr *e);
int queue_fail(Store *st, const Claim *c, int64_t run_id, const char *why, XErr *e);
/* Ends a run early (status 'terminated-early', never claimed again): its
 * curve so far stays, r holds its last validation accuracy (test_acc
 * none), why goes into error; conditional on the claim as queue_finish. */
int queue_terminate(Store *st, const Claim *c, int64_t run_id, const RunResult *r, const char *why, XErr *e);
/* Gives the run back (interrupted): planned again, progress kept. */
int queue_release(Store *st, const Claim *c, int64_t run_id, XErr *e);
/* Ends the lease of a running run that worker holds now (its process is
 * gone: queue_worker_dead), so it can be claimed without waiting for the
 * lease to run out; *lapsed 0 when another worker holds it by now or its
 * lease ran out already. */
int queue_lapse(Store *st, int64_t run_id, const char *worker, int *lapsed, XErr *e);

/* Runs not finished yet (planned or running, on stored datasets) and the
 * workers holding a live lease; with c->only set, *left is -1. */
int queue_left(Store *st, const Claim *c, long *left, int *workers, XErr *e);

/* The run's record as one JSON line (space, arch, dataset, protocol, seed,
 * run, status, valid_acc, test_acc, params, flops, seconds, device, curve);
 * extra: a JSON object whose other fields are kept (may be NULL). */
int queue_print_run(Store *st, int64_t run_id, const char *extra, FILE *out, XErr *e);

/* ---- the worker (worker.c) ---- */

/* Asked after each epoch of a run once its point is stored (and before the
 * checkpoint): *stop = 1 ends the run there as terminated-early, with why
 * (a message of up to whylen bytes) recorded (e.g. early_stop_work in
 * model/earlystop.h). A failure fails the run as any other would. */
typedef int (*WorkStopFn)(void *ctx, Store *st, const RunInfo *ri, int epoch, int epochs, int *stop, char *why,
                          size_t whylen, XErr *e);

typedef struct WorkOpts {
    const char *device;  /* cpu, cuda, auto */
    int threads;
    int jobs;            /* runs trained at once (CUDA: a context each; 0, 1: one) */
    long max_runs;       /* 0: no limit */
    double max_hours;    /* 0: no limit */
    double lease;
    int max_attempts;
    int progress;        /* 1: a bar on stderr (a terminal), 0: log lines */
    const int64_t *only; /* restrict to these runs (run's pipe form) */
    int nonly;
    WorkStopFn stop;     /* early termination (NULL: none) and its context */
    void *stop_ctx;
} WorkOpts;

typedef struct WorkStats {
    long done, failed, stopped; /* stopped: terminated early */
    double seconds;      /* wall time of worker_run */
    double book;         /* of which bookkeeping: claims, queue counts, curve
                            points, checkpoints, results, heartbeat thread
                            start and stop, the JSON lines */
} WorkStats;

/* Claims and trains runs until none is left or a limit is reached (runs
 * stopped early count towards max_runs), o->jobs of them at once (each
 * job a thread with its own connection, lease name and CUDA context); one JSON line per finished or
 * stopped run on out (NULL: none). XE_INTR after SIGINT/SIGTERM (the
 * current run checkpointed and released). */
int worker_run(Store *st, const WorkOpts *o, FILE *out, WorkStats *ws, XErr *e);

/* A stored dataset's task file (*path: absolute or relative to the working
 * directory, caller frees) and its per-channel mean and std. */
int meta_dataset_task(Store *st, int64_t id, char **path, double mean[4], double std[4], XErr *e);

/* The network of an arch (space, canonical string) under a protocol's
 * macro (width, cells) for a task's images and classes, initialised from
 * seed; *cost gets its params and FLOPs. no_bn: batch norms become
 * identities (synflow's network). */
int meta_build_net(Net *net, const NnBackend *be, const char *space, const char *arch, const Protocol *p,
                   int batch, const TaskFile *t, uint64_t seed, int no_bn, SpaceCost *cost, XErr *e);

/* ---- training-free proxies (proxies.c) ---- */

/* Scores of an untrained network, the arch's protocol macro on a task:
 *   synflow    sum |w * dR/dw| over conv and linear weights, R the sum of
 *              the outputs of the network without batch norm, all weights
 *              made positive, on an input of ones (Tanaka et al. 2020)
 *   naswot     log det of the Hamming kernel of the ReLU codes of a batch
 *              (Mellor et al. 2021)
 *   jacob_cov  -sum(log(v + k) + 1 / (v + k)), v the eigenvalues of the
 *              correlation of the input Jacobians, k = 1e-5 (Mellor et al. v1)
 *   grad_norm  sum of the weight gradients' Euclidean norms per layer,
 *              cross-entropy on a batch (Abdelfattah et al. 2021)
 *   snip       sum |w * dL/dw| (Lee et al. 2019)
 *   zen        log E|f(x) - f(x + 0.01 eps)|_1 + sum over batch norms of
 *              log sqrt(mean batch variance, at least eps), f the features
 *              before global pooling, Gaussian weights and inputs (Lin et al.
 *              2021)
 *   params, flops  as the space counts them
 * One batch of `batch` training images (unaugmented, chosen by seed) serves
 * naswot, jacob_cov, grad_norm and snip. A score that does not exist for a
 * network (naswot of a singular kernel, jacob_cov of a zero Jacobian, an
 * overflow past float's range even when rescaled) is NaN. */
enum {
    PROXY_SYNFLOW, PROXY_NASWOT, PROXY_JACOB_COV, PROXY_GRAD_NORM, PROXY_SNIP, PROXY_ZEN, PROXY_PARAMS,
    PROXY_FLOPS, PROXY_COUNT
};
extern const char *const proxy_names[PROXY_COUNT];

typedef struct ProxyTask {
    const TaskFile *t;
    const double *mean, *std; /* per channel */
    const Protocol *p;        /* macro (width, cells) and batch */
    int batch;                /* images in the scoring batch */
    uint64_t seed;            /* initialisation and batch */
    const NnBackend *be;
} ProxyTask;

int proxies_compute(const ProxyTask *pt, const char *space, const char *arch, double out[PROXY_COUNT], XErr *e);

/* ---- probe networks (probe.c) ---- */

/* Meta-features of a dataset: the validation accuracy of a few fixed nb201
 * cells trained briefly on it (the cheap macro, PROBE_EPOCHS epochs,
 * seed 0), each probing what the task rewards: conv3 (every edge a 3x3
 * convolution), conv1 (1x1: no spatial mixing inside the cell), pool
 * (average pooling only: a cell without parameters), skip (the cell is
 * the identity: stem, reductions and classifier alone). Stored in the
 * dataset's meta JSON as "probes": {"recipe": HASH, "conv3": acc, ...};
 * HASH (12 hex digits) names the recipe and the cells, so results of
 * another probe recipe are never compared with these. */
enum { PROBE_CONV3, PROBE_CONV1, PROBE_POOL, PROBE_SKIP, PROBE_COUNT };
enum { PROBE_EPOCHS = 3 };
extern const char *const probe_names[PROBE_COUNT]; /* "conv3", "conv1", "pool", "skip" */
extern const char *const probe_archs[PROBE_COUNT]; /* nb201 canonical strings */

/* The probes' protocol (the cheap preset with PROBE_EPOCHS epochs). */
void probe_protocol(Protocol *p);
/* The 12-hex-digit hash of the probe recipe and cells. */
int probe_recipe(char hash[13], XErr *e);
/* Trains probe k on a task; *valid_acc its final validation accuracy.
 * XE_INTR when a signal arrives (xfer_interrupted) between epochs. */
int probe_train(const TaskFile *t, const double *mean, const double *std, const NnBackend *be, int k,
                double *valid_acc, XErr *e);
/* The stored probe accuracies of a dataset under this recipe: 1 and acc[]
 * when all are there, else 0 (acc[] NAN). */
int probe_read(Store *st, int64_t dataset_id, double acc[PROBE_COUNT], XErr *e);
/* Records acc[] (every probe) for a dataset, replacing what it had. */
int probe_store(Store *st, int64_t dataset_id, const double acc[PROBE_COUNT], XErr *e);
/* Checks a "probes" object from elsewhere (an export line): 0, or XE_FAIL
 * naming the key that is wrong. */
int probe_check(const json_t *probes, XErr *e);

/* ---- shards (merge.c) ---- */

typedef struct MergeStats {
    long runs_added, runs_updated, runs_same;
} MergeStats;

/* Merges the finished runs of one shard (and what they refer to) into st
 * in one transaction; a shard that fails its integrity check or whose
 * datasets disagree with st's is refused whole. */
int merge_shard(Store *st, const char *shard, MergeStats *ms, XErr *e);

#endif
