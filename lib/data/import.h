/* Importing metadata: published tabular benchmarks (CSV, optionally gzip)
 * and run records in JSON Lines. Each import is one transaction: a bad row
 * leaves the database as it was; importing twice adds nothing. */
#ifndef XFER_IMPORT_H
#define XFER_IMPORT_H

#include <stdint.h>

#include "core/err.h"

typedef struct BenchImport {
    const char *db;
    const char *file;
    const char *space;       /* nb201 */
    const char *arch_col;
    char **tasks, **cols;    /* --metric TASK=COL: test accuracy */
    int nmetric;
    char **vtasks, **vcols;  /* --valid-metric TASK=COL */
    int nvalid;
    int epochs;              /* recorded in the protocol; 0: unknown */
    const char *scale;       /* auto, percent, fraction */
} BenchImport;

typedef struct ImportStats {
    long rows;       /* data rows / lines read */
    long added;      /* runs added (or completed) */
    long present;    /* runs already there */
    long datasets;   /* virtual datasets created */
} ImportStats;

int bench_import(const BenchImport *bi, ImportStats *stats, XErr *e);

/* Run records as train-meta writes them (one JSON object per line):
 * space, arch, dataset, protocol (recipe object), seed, status, valid_acc,
 * test_acc, params, flops, seconds, device, source, curve [{epoch, ...}]. */
int runs_import(const char *db, const char *file, ImportStats *stats, XErr *e);

/* Shared by both: the id of dataset name, creating it as virtual (format,
 * source) if absent; *created is set when it was. Stored datasets are
 * accepted only when allow_stored is set. */
struct Store;
int import_virtual_dataset(struct Store *st, const char *name, const char *format,
                           const char *source, int allow_stored, int64_t *id, int *created,
                           XErr *e);

#endif
