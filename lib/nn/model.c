/* The NAS-Bench-201 network. Each edge op is as in the benchmark's code:
 * nor_conv_kxk = ReLU-Conv(k, no bias)-BN, avg_pool_3x3 (stride 1, padding
 * 1, padding not counted), skip_connect = identity, none = nothing. One
 * ReLU per node serves every conv edge leaving it: the same values as one
 * ReLU per edge, computed once. */
#include "nn/model.h"

#include "space/space.h"

enum { OP_NONE, OP_SKIP, OP_CONV1, OP_CONV3, OP_POOL };

static int relu_conv_bn(Net *net, int x, int cout, int k, int stride, int pad)
{
    return net_bn(net, net_conv(net, net_relu(net, x), cout, k, stride, pad, 1, 1));
}

/* ResNetBasicblock(in, out, stride 2): two ReLU-Conv-BN plus a shortcut of
 * 2x2 average pooling and a 1x1 conv. */
static int reduction(Net *net, int x, int cout)
{
    int a = relu_conv_bn(net, x, cout, 3, 2, 1);
    int b = relu_conv_bn(net, a, cout, 3, 1, 1);
    int s = net_conv(net, net_pool(net, x, POOL_AVG, 2, 2, 0), cout, 1, 1, 0, 1, 1);
    int in[2] = { b, s };
    return net_sum(net, in, 2);
}

static int cell(Net *net, int x, const int ops[6], int C)
{
    int node[4] = { x, -1, -1, -1 }, relu[4] = { -1, -1, -1, -1 };
    for (int j = 1; j <= 3; j++) {
        int terms[3], n = 0;
        for (int i = 0; i < j; i++) {
            int op = ops[j * (j - 1) / 2 + i];
            if (op == OP_NONE)
                continue;
            if (op == OP_SKIP) {
                terms[n++] = node[i];
            } else if (op == OP_POOL) {
                terms[n++] = net_pool(net, node[i], POOL_AVG, 3, 1, 1);
            } else {
                int k = op == OP_CONV1 ? 1 : 3;
                if (relu[i] < 0)
                    relu[i] = net_relu(net, node[i]);
                terms[n++] = net_bn(net, net_conv(net, relu[i], C, k, 1, k / 2, 1, 1));
            }
        }
        node[j] = n == 0 ? net_zero(net, x) : n == 1 ? terms[0] : net_sum(net, terms, n);
    }
    return node[3];
}

int model_nb201(Net *net, const int ops[6], int C, int N, int classes, XErr *e)
{
    SpaceMacro m = { C, N, classes, net->t[0].c, net->t[0].h, net->t[0].w };
    int x = 0;
    /* the space's own check: sizes in range, sides halved twice exactly */
    if (space_nb201.check_macro(&m, e))
        return e->code;
    x = net_bn(net, net_conv(net, x, C, 3, 1, 1, 1, 1));
    for (int s = 0; s < 3; s++) {
        int width = C << s;
        if (s > 0)
            x = reduction(net, x, width);
        for (int i = 0; i < N; i++)
            x = cell(net, x, ops, width);
    }
    x = net_relu(net, net_bn(net, x));
    x = net_linear(net, net_gap(net, x), classes);
    if (net->err.code) {
        *e = net->err;
        return e->code;
    }
    return XE_OK;
}

/* ---- DARTS ---- */

enum { D_MAX, D_AVG, D_SKIP, D_SEP3, D_SEP5, D_DIL3, D_DIL5 };

/* FactorizedReduce(cin, cout): ReLU, two 1x1 stride-2 convs of cout/2 on x
 * and on x shifted by one pixel, concatenated, BN. */
static int factorized_reduce(Net *net, int x, int cout)
{
    int r = net_relu(net, x), h = net->t[x].h, w = net->t[x].w;
    int a = net_conv(net, r, cout / 2, 1, 2, 0, 1, 1);
    int b = net_conv(net, net_crop(net, r, 1, 1, h - 1, w - 1), cout / 2, 1, 2, 0, 1, 1);
    int in[2] = { a, b };
    /* odd sides give branches of different sizes: net_concat reports it,
     * and the space's macro check admits only sides that halve exactly */
    return net_bn(net, net_concat(net, in, 2));
}

/* SepConv: twice ReLU, depthwise kxk, pointwise 1x1, BN (stride on the first). */
static int sep_conv(Net *net, int x, int C, int k, int stride)
{
    for (int i = 0; i < 2; i++)
        x = net_bn(net, net_conv(net, net_conv(net, net_relu(net, x), C, k, i ? 1 : stride, k / 2, 1, C), C, 1, 1,
                                 0, 1, 1));
    return x;
}

/* DilConv: ReLU, depthwise kxk dilation 2, pointwise 1x1, BN. */
static int dil_conv(Net *net, int x, int C, int k, int stride)
{
    return net_bn(net, net_conv(net, net_conv(net, net_relu(net, x), C, k, stride, k - 1, 2, C), C, 1, 1, 0, 1, 1));
}

static int darts_op(Net *net, int x, int op, int C, int stride)
{
    switch (op) {
    case D_MAX: return net_pool(net, x, POOL_MAX, 3, stride, 1);
    case D_AVG: return net_pool(net, x, POOL_AVG, 3, stride, 1);
    case D_SKIP: return stride == 1 ? x : factorized_reduce(net, x, C);
    case D_SEP3: return sep_conv(net, x, C, 3, stride);
    case D_SEP5: return sep_conv(net, x, C, 5, stride);
    case D_DIL3: return dil_conv(net, x, C, 3, stride);
    default: return dil_conv(net, x, C, 5, stride);
    }
}

static int darts_cell(Net *net, const DartsNode *nodes, int s0, int s1, int C, int reduction, int reduction_prev,
                      int drop_path)
{
    int states[2 + DARTS_NODES], out[DARTS_NODES];
    states[0] = reduction_prev ? factorized_reduce(net, s0, C) : relu_conv_bn(net, s0, C, 1, 1, 0);
    states[1] = relu_conv_bn(net, s1, C, 1, 1, 0);
    for (int j = 0; j < DARTS_NODES; j++) {
        int h[2];
        for (int i = 0; i < 2; i++) {
            int in = nodes[j].in[i];
            h[i] = darts_op(net, states[in], nodes[j].op[i], C, reduction && in < 2 ? 2 : 1);
            if (drop_path && h[i] != states[in])
                h[i] = net_droppath(net, h[i]);
        }
        states[2 + j] = out[j] = net_sum(net, h, 2);
    }
    return net_concat(net, out, DARTS_NODES);
}

int model_darts(Net *net, const DartsArch *arch, int C, int L, int classes, int drop_path, XErr *e)
{
    SpaceMacro m = { C, L, classes, net->t[0].c, net->t[0].h, net->t[0].w };
    int s0, s1, width = C, reduction_prev = 0;
    if (space_darts.check_macro(&m, e))
        return e->code;
    s0 = s1 = net_bn(net, net_conv(net, 0, 3 * C, 3, 1, 1, 1, 1));
    for (int i = 0; i < L; i++) {
        int reduction = i == L / 3 || i == 2 * L / 3, s;
        if (reduction)
            width *= 2;
        s = darts_cell(net, arch->cell[reduction], s0, s1, width, reduction, reduction_prev, drop_path);
        s0 = s1;
        s1 = s;
        reduction_prev = reduction;
    }
    net_linear(net, net_gap(net, s1), classes);
    if (net->err.code) {
        *e = net->err;
        return e->code;
    }
    return XE_OK;
}
