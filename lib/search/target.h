/* Internal to lib/search: the target task of a search or a benchmark in
 * the store, the protocol its evaluations are made under, the macro its
 * cells are costed at, the meta-dataset with the source tasks, and the
 * universal model fitted on them. */
#ifndef XFER_SEARCH_TARGET_H
#define XFER_SEARCH_TARGET_H

#include <stdio.h>

#include "model/metaset.h"
#include "model/models.h"
#include "search/search.h"

typedef struct SearchTarget {
    const Space *sp;
    char name[128];
    int64_t dataset_id;
    int stored;              /* a stored task (trainable), not a virtual one */
    int64_t protocol_id;
    char protocol_name[32], protocol_hash[65];
    SpaceMacro macro;        /* the protocol's width and cells on the task's images */
    MetaSet ms;              /* the finished runs under the protocol (ms.n 0: none) */
    int target;              /* the target's task in ms, -1 if it has no runs */
    int tn;                  /* the target's recorded archs */
    int *ttok;               /* (tn, token_len) */
    float *tacc;             /* (tn) */
    double best_recorded;    /* max of tacc; NAN when tn is 0 */
    char *use;               /* (ms.ntasks) the source tasks: others with min_runs archs */
    int *map;                /* (ms.ntasks) their index in the universal model */
    int nsources;
    double zs_mean, zs_std;  /* the sources' average accuracy mean and std */
} SearchTarget;

/* Resolves everything but the model. protocol: a name or hash prefix of a
 * stored protocol (NULL: the one with the most finished runs of the space;
 * with train set, a preset name is also taken, and NULL falls back to
 * cheap when nothing is finished). Fails on an unknown target, an
 * ambiguous or unknown protocol, a target without recorded runs (train
 * unset: the table evaluator needs them) or a virtual target (train set:
 * it cannot be trained). */
int search_target_open(Store *st, const char *name, const Space *sp, const char *protocol, int train, int min_runs,
                       SearchTarget *t, XErr *e);
void search_target_close(SearchTarget *t);

/* The failure for a target without source tasks. */
int search_target_no_sources(const SearchTarget *t, int min_runs, XErr *e);

/* The universal model on the sources: the newest stored model fitted on
 * exactly them (same run counts), else fitted now (default config, seed
 * 1) and stored. */
int search_target_universal(Store *st, const SearchTarget *t, FILE *log, StoredModel *sm, XErr *e);

/* The recorded accuracy of a cell of the table pool built from ttok. */
double search_target_lookup(const SearchTarget *t, const SearchPool *pool, const SpaceArch *a);

#endif
