/* Networks of the search spaces, built on net.h. nb201: the NAS-Bench-201
 * TinyNetwork (stem conv3x3 + BN; 3 stages of N cells, widths C, 2C, 4C,
 * with a residual reduction block between stages; BN-ReLU, global average
 * pool, linear); darts: the DARTS evaluation network. Both are built
 * exactly as lib/space counts their parameters and FLOPs. */
#ifndef XFER_NN_MODEL_H
#define XFER_NN_MODEL_H

#include "nn/net.h"

/* ops: the six edge ops of an nb201 cell (space/space.h: nb201_parse). */
int model_nb201(Net *net, const int ops[6], int C, int N, int classes, XErr *e);

/* The DARTS evaluation network (NetworkCIFAR without the auxiliary head):
 * stem conv3x3 to 3C + BN; L cells, reductions (channels doubled) at L/3
 * and 2L/3; global average pool, linear. drop_path: put drop-path after
 * every op but identities (its probability is net->drop_prob). */
struct DartsArch;
int model_darts(Net *net, const struct DartsArch *arch, int C, int L, int classes, int drop_path, XErr *e);

#endif
