/* The stored task file: uint8 images next to the database, one per dataset.
 * Layout (little-endian): a 64-byte header
 *   "XFERTASK" u32 version=1, u32 height, width, channels, classes,
 *   u32 label_bytes=2, u64 n_train, n_valid, n_test, u64 reserved=0
 * then for train, valid, test in turn: labels u16[n], images u8[n][H][W][C].
 * Written to a temporary file and renamed; its SHA-256 is the checksum. */
#ifndef XFER_TASKFILE_H
#define XFER_TASKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "data/builder.h"

#define TASKFILE_MAGIC "XFERTASK"
#define TASKFILE_VERSION 1
#define TASKFILE_HEADER 64

/* Writes b (after builder_finish) into a new file in dir, named
 * NAME.<first 12 checksum digits>.xtask; returns its file name (caller frees)
 * and the checksum. Nothing is left behind on failure. */
int taskfile_write(const Builder *b, const char *dir, const char *name, char **file,
                   char sha[65], XErr *e);

typedef struct TaskFile {
    uint32_t h, w, c, classes;
    uint64_t n[SPLIT_COUNT];
    const uint8_t *labels[SPLIT_COUNT];  /* (n,) u16 little-endian, maybe unaligned: taskfile_label */
    const uint8_t *images[SPLIT_COUNT];  /* (n, H, W, C) */
    void *map;
    size_t size;
} TaskFile;

/* Label i of a split. */
static inline int taskfile_label(const TaskFile *t, Split s, size_t i)
{
    return t->labels[s][2 * i] | t->labels[s][2 * i + 1] << 8;
}

/* Maps a task file read-only and checks its header against its size. */
int taskfile_open(TaskFile *t, const char *path, XErr *e);
void taskfile_close(TaskFile *t);
/* SHA-256 of a whole file. */
int taskfile_checksum(const char *path, char sha[65], XErr *e);

#endif
