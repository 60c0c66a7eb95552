/* Fitted transfer predictors and learning-curve rankers in the store's
 * models table (kind 'xfer' and 'ranker'): the blob, its config, and what it
 * was fitted on (`fitted_on`, JSON: protocol and hash, source tasks with run
 * counts, means and stds, an optional target, seed, seconds; for a ranker
 * the datasets with their embedding index), so a model is found again for
 * the same meta-dataset. */
#ifndef XFER_MODEL_MODELS_H
#define XFER_MODEL_MODELS_H

#include <jansson.h>
#include <stdint.h>

#include "core/err.h"
#include "db/store.h"
#include "model/curveset.h"
#include "model/metaset.h"
#include "model/ranker.h"
#include "model/xfer.h"

/* A stored model and what it was fitted on. */
typedef struct StoredModel {
    int64_t id;
    XferModel *m;
    json_t *fitted;          /* the fitted_on record */
    char protocol_hash[65];
} StoredModel;

/* The fitted_on record of a model fitted on the tasks of ms flagged in use
 * (map[t]: task t's index in the model), with seed and seconds; NULL when
 * out of memory. A target is added by the caller ("target" object). */
json_t *models_fitted_on(const MetaSet *ms, const char *use, const int *map, uint64_t seed, double seconds);

/* Stores m (kind 'xfer', the space's name) with its fitted_on record;
 * *id out. */
int models_add(Store *st, const char *space, const XferModel *m, const json_t *fitted, int64_t *id, XErr *e);

/* Loads model id (0: the newest of the space) into *l (released with
 * stored_model_release). Fails naming what is missing or wrong ("no model
 * 7 in 'x.db'", "model 7 was fitted for space darts, not nb201"). */
int models_load(Store *st, const char *space, int64_t id, StoredModel *l, XErr *e);
void stored_model_release(StoredModel *l);

/* The newest model of ms's space fitted under ms's protocol on exactly
 * the tasks flagged in use, each with the run count it has in ms (so new
 * runs make it stale); *id = 0 when there is none. */
int models_find_fitted(Store *st, const MetaSet *ms, const char *use, int64_t *id, XErr *e);

/* ---- rankers (kind 'ranker') ---- */

typedef struct StoredRanker {
    int64_t id;
    Ranker *r;
    json_t *fitted;          /* the fitted_on record */
    char protocol_hash[65];
} StoredRanker;

/* The fitted_on record of a ranker fitted on the tasks of cs flagged in
 * use (NULL: all; map[t]: task t's embedding index, NULL: t): protocol
 * and hash, datasets (name, index, runs, epochs), runs, epochs (the
 * longest curve), seed, seconds; NULL when out of memory. */
json_t *models_ranker_fitted_on(const CurveSet *cs, const char *use, const int *map, uint64_t seed, double seconds);
/* Stores r (kind 'ranker') with its fitted_on record; *id out. */
int models_add_ranker(Store *st, const char *space, const Ranker *r, const json_t *fitted, int64_t *id, XErr *e);
/* Loads ranker id (0: the newest of the space) into *l (released with
 * stored_ranker_release); fails naming what is missing or wrong ("no
 * fitted nb201 ranker in 'x.db' (...)", "model 3 is a xfer model, not a
 * ranker"). */
int models_load_ranker(Store *st, const char *space, int64_t id, StoredRanker *l, XErr *e);
void stored_ranker_release(StoredRanker *l);
/* The embedding index of a dataset the ranker was fitted on, by name; -1
 * for any other (ranker_score then takes the mean embedding). */
int stored_ranker_dataset(const StoredRanker *l, const char *name);

#endif
