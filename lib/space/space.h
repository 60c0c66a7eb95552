/* Search spaces behind one table of function pointers: parsing and canonical
 * strings, hashes, uniform sampling, mutation, token encodings for the
 * surrogates, enumeration by index, and params/FLOPs of the macro network. */
#ifndef XFER_SPACE_H
#define XFER_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/rng.h"

/* NAS-Bench-201: 4 nodes, 6 edges, 5 ops. */
#define NB201_EDGES 6
#define NB201_OPS 5

/* DARTS: a normal and a reduction cell, 4 intermediate nodes of 2 inputs. */
#define DARTS_NODES 4
#define DARTS_OPS 7
#define DARTS_INPUTS 5 /* c_{k-2}, c_{k-1}, nodes 0-2 (node 3 is never an input) */

/* Longest token sequence of any space (darts: 2 cells x 4 nodes x 4). */
#define SPACE_MAX_TOKENS 32

/* One architecture. Whatever writes one (parse, decode, sample, mutate,
 * from_index) leaves it canonical and its unused bytes zero, so two archs
 * of one space are the same cell exactly when memcmp says so. The other
 * functions expect an arch written that way (they do not re-validate). */
typedef struct Nb201Arch {
    /* ops[k] for edges in the order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2) */
    int ops[NB201_EDGES];
} Nb201Arch;

typedef struct DartsNode {
    int in[2]; /* in[0] < in[1]: 0 = c_{k-2}, 1 = c_{k-1}, 2 + j = node j */
    int op[2]; /* op[i] is applied to input in[i] (index into darts_op_names) */
} DartsNode;

typedef struct DartsArch {
    DartsNode cell[2][DARTS_NODES]; /* cell[0] normal, cell[1] reduction */
} DartsArch;

typedef union SpaceArch {
    Nb201Arch nb201;
    DartsArch darts;
} SpaceArch;

/* The network a cell is placed in.
 *   C            nb201: channels of the first stage (16); darts: initial
 *                channels, the stem has 3C (36)
 *   N            nb201: cells per stage (5); darts: total cells L (20)
 *   classes      outputs of the final linear layer
 *   in_channels  image channels (3)
 *   height/width input size; each must be a multiple of 4 (two stride-2
 *                reductions that must halve exactly) */
typedef struct SpaceMacro {
    int C, N, classes, in_channels, height, width;
} SpaceMacro;

/* params: every learned scalar (conv and linear weights and biases, BN
 * scale and shift; BN running statistics are buffers, not counted).
 * flops: multiply-adds of every convolution and linear layer for one image,
 * plus one add per output of a layer with a bias (NAS-Bench-201's counter,
 * which reports both /1e6 as "params (MB)" and "FLOPs (M)"). Pooling, BN,
 * ReLU, node sums and concatenations count zero. */
typedef struct SpaceCost {
    uint64_t params, flops;
} SpaceCost;

typedef struct Space {
    const char *name;
    int token_len;         /* tokens in an encoding */
    int vocab;             /* tokens take values 0 .. vocab-1 */
    uint64_t count;        /* distinct archs; indices run 0 .. count-1 */
    SpaceMacro macro_default;

    /* Validates s (blanks around it allowed) into a canonical arch; XE_FAIL
     * with "invalid <space> arch '<s>': <what, naming the bad token>". */
    int (*parse)(const char *s, SpaceArch *a, XErr *e);
    /* Writes the canonical string (NUL-terminated, cut to cap) and returns
     * its length, as snprintf does. */
    size_t (*format)(const SpaceArch *a, char *out, size_t cap);
    /* parse + format; fails when cap is too small. */
    int (*canonical)(const char *s, char *out, size_t cap, XErr *e);

    /* Uniform over all count archs: from_index(rng_below(count)). */
    void (*sample)(Rng *r, SpaceArch *a);
    /* child = parent with exactly one op or one input changed, chosen
     * uniformly among all such single changes: always valid, never equal. */
    void (*mutate)(const SpaceArch *parent, Rng *r, SpaceArch *child);

    /* Fixed-length token sequence (token_len ints) and back; decode accepts
     * exactly the sequences encode produces and names what is wrong. */
    void (*encode)(const SpaceArch *a, int *tokens);
    int (*decode)(const int *tokens, int n, SpaceArch *a, XErr *e);
    /* What a token stands for ("nor_conv_3x3", "in2"); NULL out of range. */
    const char *(*token_name)(int token);

    /* Bijection between archs and 0 .. count-1. */
    uint64_t (*to_index)(const SpaceArch *a);
    int (*from_index)(uint64_t index, SpaceArch *a, XErr *e);

    /* Checks a macro config: ranges, and an input the reductions can halve;
     * XE_USAGE and a message naming the field ("darts macro: L 2 is out of
     * range (3-64 cells)"). Ranges: C 1-256; nb201 N 1-32, darts L 3-64;
     * classes 1-XFER_MAX_CLASSES; in_channels 1-64; sides 4-XFER_MAX_SIDE. */
    int (*check_macro)(const SpaceMacro *m, XErr *e);
    /* Params and FLOPs of the whole network (check_macro first; out is
     * untouched on failure). The layers are listed in nb201.c and darts.c. */
    int (*cost)(const SpaceArch *a, const SpaceMacro *m, SpaceCost *out, XErr *e);
} Space;

extern const Space space_nb201;
extern const Space space_darts;

/* NULL for an unknown name; space_list() names the valid ones ("nb201, darts"). */
const Space *space_find(const char *name);
const char *space_list(void);

/* Canonical string and its hash (SHA-256 hex of "space:canonical"). */
/* Parse, then format: what every space's canonical() does. */
int space_canonical_of(const Space *sp, const char *s, char *out, size_t cap, XErr *e);

int space_canonical_hash(const Space *sp, const char *arch, char *canon, size_t cap,
                         char hash[65], XErr *e);
/* The same for an arch in hand (sampled, mutated, decoded). */
int space_arch_hash(const Space *sp, const SpaceArch *a, char *canon, size_t cap, char hash[65],
                    XErr *e);

/* NB201 string format, the benchmark's own:
 *   |op~0|+|op~0|op~1|+|op~0|op~1|op~2|
 * node j lists its j incoming edges as op~input ('+' between nodes); ops
 * none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3. The inputs
 * of a node may come in any order; the canonical form sorts them.
 * Tokens: the 6 ops in edge order, each 0-4 (vocab 5, names as above).
 * Index: ops read as a base-5 number, edge (1<-0) the most significant. */
extern const char *const nb201_op_names[NB201_OPS];
int nb201_parse(const char *s, int ops[NB201_EDGES], XErr *e);
void nb201_format(const int ops[NB201_EDGES], char *out, size_t cap);

/* DARTS string format: the normal cell, then the reduction cell, each as
 * its 4 nodes separated by '|', each node as its two inputs op~input:
 *   normal:sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|
 *   skip_connect~0,sep_conv_3x3~1|skip_connect~0,dil_conv_3x3~2;reduce:
 *   max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~1,skip_connect~2|
 *   max_pool_3x3~0,skip_connect~2|max_pool_3x3~1,skip_connect~2
 * (one line, no blanks). Inputs: 0 = c_{k-2}, 1 = c_{k-1}, 2-4 = this
 * cell's nodes 0-2; node j takes two different inputs from 0 .. j+1 (the
 * DARTS genotype; there is no 'none'). Canonical: each node's inputs in
 * ascending order. The cell output concatenates nodes 0-3.
 * Ops, in index order: max_pool_3x3, avg_pool_3x3, skip_connect,
 * sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5.
 * Tokens (32, vocab 12): for the normal then the reduction cell, for nodes
 * 0-3: in[0], op[0], in[1], op[1]; an input i is token i (0-4, "in0".."in4"),
 * an op k is token 5 + k.
 * Index: per node, pair (a < b) -> b(b-1)/2 + a, then op[0], op[1] (base 7);
 * nodes 0-3 most significant first; normal cell times cells + reduction. */
extern const char *const darts_op_names[DARTS_OPS];

#endif
