/* Metadata collection on a Slurm cluster (xfer-train-meta slurm): a
 * collection directory on shared storage that holds everything a job array
 * needs (a seed shard with the dataset, each array task's archs, the array
 * script and the merge job's script), and its submission with sbatch.
 *
 * The collection directory DIR:
 *   array.sbatch, merge.sbatch   the job array and the job that merges it
 *   seed.db                      an empty store with the dataset's row: every
 *                                shard starts as a copy of it
 *   archs/task-K.jsonl           the archs of array task K (arch i of the
 *                                sample goes to task i mod T)
 *   state/task-K/                task K's last saved shard and checkpoints
 *                                (while it runs: what a requeued task resumes)
 *   shards/shard-K.db            task K's finished shard
 *   logs/task-K.log, merge.log   the jobs' output (task-K.jsonl: the
 *                                workers' JSON lines)
 * Array task K plans its archs into a shard on node-local disk (a copy of
 * seed.db next to a copy of the task file), trains them with
 * `xfer-train-meta work` (one worker per GPU), and saves the shard with its
 * checkpoints into state/task-K/: every $XFER_SAVE_EVERY seconds (600) with
 * the workers frozen (SIGSTOP), so the copy is a state SQLite recovers as
 * after a crash and no checkpoint is ahead of the curve points, and when
 * Slurm stops it. SIGUSR1 (sent --signal ahead of the time limit): the
 * workers checkpoint and exit 3, the task saves and requeues itself;
 * SIGTERM (Slurm's own requeue, pre-emption, scancel): the same without the
 * requeue. A requeued task resumes from state/task-K/ (runs that were in
 * progress in a periodic save come free when their lease, $XFER_LEASE
 * seconds (120), runs out); a finished one copies its shard to shards/ and
 * removes its state. The merge job (after
 * the whole array, afterany) merges every shard into the main database,
 * names each missing or unmergeable one, prints the status and exits 1
 * unless every shard was merged. */
#ifndef XFER_SLURM_H
#define XFER_SLURM_H

#include "core/err.h"
#include "db/store.h"

typedef struct SlurmSpec {
    const char *tool;      /* xfer-train-meta: an absolute path the nodes can run */
    const char *db;        /* the main database, absolute */
    const char *dataset;   /* a stored task in db */
    const char *protocol;  /* preset and --set overrides, as for plan */
    char *const *sets;
    int nsets;
    long seeds;            /* seeds 0 .. seeds-1 of each arch */
    int tasks;             /* array tasks */
    int gpus;              /* GPUs of each task (0: CPU), one worker each */
    int threads;           /* threads of each worker (0: the task's CPUs shared out) */
    const char *device;    /* the workers' --device */
    const char *partition; /* NULL: the cluster's default */
    const char *time;      /* [D-]HH:MM:SS, NULL: the partition's default */
    const char *dir;       /* the collection directory, absolute */
    const char *local;     /* node-local directory; NULL: $XFER_LOCAL, $TMPDIR or /tmp there */
} SlurmSpec;

/* A time limit [D-]HH:MM:SS in seconds; XE_USAGE naming the value. */
int slurm_time_seconds(const char *s, long *seconds, XErr *e);

/* "DB.slurm/DATASET-YYYYmmdd-HHMMSS" next to the database (caller frees). */
char *slurm_default_dir(const char *db, const char *dataset);
/* path made absolute against the working directory (caller frees). */
char *slurm_absolute(const char *path);

/* The spec against the main database: a trainable dataset whose task file
 * is readable, a valid protocol, a time limit, names a Slurm script can
 * take, a directory that holds no collection yet. */
int slurm_check(Store *st, const SlurmSpec *s, XErr *e);

/* For --submit: sbatch on PATH, and every partition of s->partition known
 * to sinfo (when sinfo is there); nothing is written. */
int slurm_check_submit(const SlurmSpec *s, XErr *e);

/* Drops from archs (JSON lines {"space":..,"arch":..}, owned: a dropped
 * line is freed) those whose runs of s's dataset and protocol, seeds 0 ..
 * seeds-1, are all finished (done, failed, terminated-early) in st: a
 * nightly collection does not train again what earlier nights did.
 * *dropped: how many. */
int slurm_drop_finished(Store *st, const SlurmSpec *s, char **archs, long *narchs, long *dropped, XErr *e);

/* Writes the collection directory for archs[0..narchs) (JSON lines
 * {"space":..,"arch":..}, canonical, distinct) after slurm_check and a
 * check that every task gets an arch. On failure nothing of it is left. */
int slurm_write(Store *st, const SlurmSpec *s, char *const *archs, long narchs, XErr *e);

/* Submits the array, then the merge job after it (afterany); the job ids
 * out. When the merge job cannot be submitted the array is cancelled
 * (*array_job 0) or, if scancel fails too, left queued (*array_job its id:
 * keep the collection directory then). */
int slurm_submit(const SlurmSpec *s, long *array_job, long *merge_job, XErr *e);

/* Removes what slurm_write wrote (after a failed submission). */
void slurm_remove(const SlurmSpec *s);

#endif
