/* The dataset builder: every reader pushes images into it one at a time; it
 * applies the ingest options (class subset, grayscale, resize, per-class
 * limit), checks that images agree in size, makes the stratified validation
 * split, computes per-channel statistics and writes the stored task file.
 * Memory stays close to the stored size: no reader holds a second copy. */
#ifndef XFER_BUILDER_H
#define XFER_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/rng.h"

typedef enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST, SPLIT_COUNT } Split;
extern const char *const split_names[SPLIT_COUNT];

typedef struct IngestOpts {
    const char *format;     /* NULL: detect from content */
    char **classes;         /* --classes tokens (names or source labels); NULL: all */
    int nclasses;
    int resize_h, resize_w; /* 0: keep the source size */
    int grayscale;
    long limit_per_class;   /* 0: no limit; applies to the training pool */
    double valid_fraction;  /* < 0: XFER_DEFAULT_VALID_FRACTION */
    uint64_t seed;
    int coarse;             /* CIFAR-100: the 20 superclasses */
} IngestOpts;

typedef struct SplitBuf {
    uint8_t *pix;   /* (n, H, W, C) */
    uint16_t *lab;  /* (n,) */
    size_t n, cap;
    size_t want;    /* capacity asked for by builder_reserve */
} SplitBuf;

typedef struct BuilderClass {
    char *name;
    int out;        /* output label, -1: dropped by --classes */
    uint64_t seen;  /* training images seen (for the reservoir) */
    uint32_t *kept; /* record indices kept under --limit-per-class */
    size_t nkept;
} BuilderClass;

typedef struct Builder {
    const IngestOpts *opt;
    int fixed;                  /* classes fixed by the source (labels index them) */
    BuilderClass *cls;          /* source classes, by source label */
    int ncls, cap_cls;
    int *token_hit;             /* per --classes token: matched a class */
    int h, w, c;                /* output image shape, 0 until the first image */
    SplitBuf split[SPLIT_COUNT];
    Rng rng;
    uint8_t *tmp;               /* scratch for transforms */
    size_t tmp_cap;
    uint64_t added;
    /* Filled by builder_finish. */
    int nout;                   /* output classes */
    char **out_names;           /* (nout,) */
    uint8_t *to_valid;          /* (split[TRAIN].n,) 1: moved to the validation split */
    uint64_t count[SPLIT_COUNT];
    double mean[4], std[4];     /* per channel, pixel / 255, training split */
} Builder;

void builder_init(Builder *b, const IngestOpts *opt);
void builder_release(Builder *b);

/* Declares the source's classes up front (CIFAR, IDX, SVHN): labels passed to
 * builder_add index this list. Call once, before the first image. */
int builder_set_classes(Builder *b, const char *const *names, int n, XErr *e);
/* Renames a fixed class (names read from an archive's meta file). */
int builder_rename_class(Builder *b, int label, const char *name, XErr *e);
/* Classes found while reading (image folders, one .npy per class): returns the
 * label for name, adding it on first sight. */
int builder_class(Builder *b, const char *name, int *label, XErr *e);

/* Room for n more images in a split, when the reader knows the count. */
int builder_reserve(Builder *b, Split s, size_t n, XErr *e);

/* One image (h, w, c) in HWC order, c = 1 or 3. where names it in messages,
 * e.g. "'train.bin': record 17". */
int builder_add(Builder *b, Split s, int label, const uint8_t *pix, int h, int w, int c,
                const char *where, XErr *e);

/* After the last image: class mapping, empty-class checks, validation split,
 * statistics. source names the input in messages. */
int builder_finish(Builder *b, const char *source, XErr *e);

/* Number of images a split holds after builder_finish. */
uint64_t builder_count(const Builder *b, Split s);

#endif
