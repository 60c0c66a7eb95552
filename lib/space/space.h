/* Search spaces behind one interface. This part: parsing, validation,
 * canonical strings and hashes (what importing needs); sampling, mutation,
 * token encoding, costs and network building join with the engine. */
#ifndef XFER_SPACE_H
#define XFER_SPACE_H

#include <stddef.h>

#include "core/err.h"

typedef struct Space {
    const char *name;
    /* Validates s and writes its canonical form into out (cap bytes). */
    int (*canonical)(const char *s, char *out, size_t cap, XErr *e);
} Space;

/* NULL for an unknown name; space_list() names the valid ones. */
const Space *space_find(const char *name);
const char *space_list(void);

/* Canonical string and its hash (SHA-256 hex of "space:canonical"). */
int space_canonical_hash(const Space *sp, const char *arch, char *canon, size_t cap,
                         char hash[65], XErr *e);

extern const Space space_nb201;

/* NAS-Bench-201: 4 nodes, 6 edges, 5 ops. */
#define NB201_EDGES 6
#define NB201_OPS 5
extern const char *const nb201_op_names[NB201_OPS];
/* ops[k] for edges in the order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2). */
int nb201_parse(const char *s, int ops[NB201_EDGES], XErr *e);
void nb201_format(const int ops[NB201_EDGES], char *out, size_t cap);

#endif
