/* Networks of the search spaces, built on net.h. nb201: the NAS-Bench-201
 * TinyNetwork (stem conv3x3 + BN; 3 stages of N cells, widths C, 2C, 4C,
 * with a residual reduction block between stages; BN-ReLU, global average
 * pool, linear). The darts network joins with the darts space. */
#ifndef XFER_NN_MODEL_H
#define XFER_NN_MODEL_H

#include "nn/net.h"

/* ops: the six edge ops of an nb201 cell (space/space.h: nb201_parse). */
int model_nb201(Net *net, const int ops[6], int C, int N, int classes, XErr *e);

#endif
