/* A network as a flat list of layers over numbered tensors, built once per
 * (architecture, macro, batch size) and run through a backend's table.
 * Building: net_init, then net_conv/net_bn/... each returning the id of the
 * tensor it makes (or -1: the first error sticks in net->err), then
 * net_finalize, which sizes and allocates one block each for parameters,
 * gradients, momentum, running statistics and activations, and initialises
 * the parameters from a seed (PyTorch's default initialisation).
 * Every tensor has the shape (batch, C, H, W); tensor 0 is the input.
 * The blocks are backend memory (on the GPU for the CUDA backend); errors
 * of the backend's queued work surface through be->sync. */
#ifndef XFER_NN_NET_H
#define XFER_NN_NET_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/rng.h"
#include "nn/ops.h"

typedef enum {
    LAYER_CONV,
    LAYER_BN,
    LAYER_RELU,
    LAYER_POOL,
    LAYER_SUM,
    LAYER_CONCAT,
    LAYER_CROP,
    LAYER_ZERO,
    LAYER_GAP,
    LAYER_LINEAR,
    LAYER_DROPPATH,
} LayerKind;

#define NET_MAX_IN 8

typedef struct NetTensor {
    int c, h, w;
    size_t off;        /* floats into the activation block */
    size_t goff;       /* floats into the gradient block: gradients share memory
                          when their lifetimes in the backward pass do not meet;
                          the input's gradient (tensor 0) is at 0 and kept */
} NetTensor;

typedef struct Layer {
    LayerKind kind;
    int in[NET_MAX_IN], nin;
    int out;
    ConvDesc conv;
    BnDesc bn;
    PoolDesc pool;
    int oy, ox;        /* crop offsets */
    size_t w, b;       /* parameter offsets (conv/linear weight, bias; BN gamma, beta) */
    size_t stat;       /* BN: running mean at stat, running var at stat + C (state block) */
    size_t save;       /* BN: batch mean at save, invstd at save + C (save block) */
    size_t mask;       /* drop-path: this layer's per-sample mask (mask block) */
    int dead;          /* its output reaches no loss: skipped in backward */
    int zero;          /* bit k: zero input k's gradient before this backward */
} Layer;

typedef struct Net {
    const NnBackend *be;
    int batch;
    Layer *layers;
    int nlayers, cap_layers;
    NetTensor *t;
    int nt, cap_t;
    size_t nparams, nstate, nsave, nacts, ngrad, nws;
    float *params, *grads, *mom;   /* (nparams,) each */
    uint8_t *decay;                /* (nparams,) 1: weight decay applies */
    float *state;                  /* (nstate,) BN running statistics */
    float *save;                   /* (nsave,) BN batch statistics for backward */
    float *acts;                   /* (nacts,) */
    float *dacts;                  /* (ngrad,) activation gradients, shared by lifetime */
    float *ws;                     /* (nws,) conv workspace */
    float *tmp;                    /* (largest tensor,) scratch for drop-path backward */
    uint8_t *masks;                /* (batch per drop-path layer,) backend memory */
    uint8_t *hmasks;               /* (nmasks,) host: drawn here, uploaded once per forward */
    size_t nmasks, ntmp;
    float drop_prob;               /* drop-path probability in training (0: off) */
    int graph;                     /* train_run records each epoch's step once and
                                      replays it, where the backend has graphs (0: off) */
    Rng rng;                       /* drop-path masks; reseeded per epoch by the trainer */
    float bn_eps, bn_momentum;
    XErr err;                      /* the first building error */
} Net;

/* An empty network over inputs (batch, c, h, w). */
int net_init(Net *net, const NnBackend *be, int batch, int c, int h, int w, XErr *e);
void net_release(Net *net);

int net_conv(Net *net, int x, int cout, int k, int stride, int pad, int dil, int groups);
/* affine = 0: gamma 1 and beta 0 held fixed (DARTS search cells); here always learned */
int net_bn(Net *net, int x);
int net_relu(Net *net, int x);
int net_pool(Net *net, int x, PoolType type, int k, int stride, int pad);
/* Elementwise sum of k tensors of one shape (k >= 1). */
int net_sum(Net *net, const int *x, int k);
int net_concat(Net *net, const int *x, int k);
int net_crop(Net *net, int x, int oy, int ox, int oh, int ow);
/* A tensor of zeros shaped like x (NAS-Bench-201's "none" when a node has
 * no other input); no gradient flows through it. */
int net_zero(Net *net, int like);
int net_gap(Net *net, int x);
int net_linear(Net *net, int x, int out);
/* Drop-path (DARTS): in training, each sample's x is zeroed with
 * probability net->drop_prob and otherwise scaled by 1 / (1 - p); identity
 * in evaluation or when drop_prob is 0. */
int net_droppath(Net *net, int x);

/* Allocates and initialises (seeded); fails with the first building error. */
int net_finalize(Net *net, uint64_t seed, XErr *e);

/* Number of learned parameters. */
size_t net_param_count(const Net *net);

/* Forward pass from host input x (batch, C, H, W); train selects batch
 * statistics (and updates running ones). Returns the output tensor's data
 * (backend memory: download it to read it on a GPU). */
const float *net_forward(Net *net, const float *x, int train);
/* net_forward in two halves, for step graphs: net_stage uploads x and, in
 * training with drop-path, this pass's masks; net_forward_layers runs the
 * layers on what was staged (it only queues ops: a graph can record it). */
void net_stage(Net *net, const float *x, int train);
const float *net_forward_layers(Net *net, int train);
/* Backward pass from the gradient of the last tensor (dout, same shape,
 * backend memory), after a training forward; gradients are zeroed first. */
void net_backward(Net *net, const float *dout);

/* Output tensor id (the last one made). */
int net_output(const Net *net);

#endif
