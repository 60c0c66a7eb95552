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
