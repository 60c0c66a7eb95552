/* Datasets in the store: ingesting a source into a stored task (file plus
 * row, all or nothing), and listing / showing what is stored. */
#ifndef XFER_DATASET_H
#define XFER_DATASET_H

#include <jansson.h>
#include <stdio.h>

#include "data/builder.h"
#include "data/ingest.h"
#include "db/store.h"

typedef struct DatasetAdd {
    const char *db;
    const char *name;
    char *const *sources;
    int nsources;
    IngestOpts opt;
    IngestFormat format;
    int replace;
} DatasetAdd;

typedef enum { DATASET_STORED, DATASET_UNCHANGED, DATASET_REPLACED } DatasetOutcome;

/* Names are 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int dataset_name_check(const char *name, XErr *e);

/* Ingests a->sources as dataset a->name. Re-ingesting the same sources with
 * the same options is a no-op (DATASET_UNCHANGED); a different one needs
 * a->replace. On failure the database and the task directory are unchanged. */
int dataset_add(const DatasetAdd *a, DatasetOutcome *out, XErr *e);

/* One dataset row as a JSON object (NULL if absent, with the error set). */
json_t *dataset_get(Store *st, const char *name, XErr *e);
/* All datasets, by name. */
json_t *dataset_list(Store *st, XErr *e);

/* Prints a dataset object: one JSON line, or "key: value" lines. */
int dataset_print(FILE *out, const json_t *d, int as_json);

#endif
