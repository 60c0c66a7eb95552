"""Golden values for tests/unit/test_nn_golden.c: small seeded NAS-Bench-201
and DARTS networks run once in PyTorch (the reference), their outputs
committed here.

Run by hand from the repository root (needs PyTorch; `make check` does not):
    /usr/bin/python3 tests/golden/make_golden.py
It rewrites tests/golden/nb201_*.bin and darts_*.bin and prints, per case,
how far PyTorch's own float32 run lies from the float64 values it stores
(the scale of float32 rounding the C test's tolerances must allow).

The modules below mirror NAS-Bench-201's TinyNetwork (xautodl
models/cell_infers: TinyNetwork, InferCell, ResNetBasicblock, ReLUConvBN)
and register their parameters in the order lib/nn/model.c adds layers, so
model.parameters() is the C engine's parameter order:
  stem conv, stem BN (gamma, beta);
  per stage: [reduction: conv_a conv, BN; conv_b conv, BN; shortcut 1x1 conv]
             then N cells, each edge j<-i for j = 1..3, i < j (the arch
             string's order): ReLU-Conv-BN edges add conv, BN;
  last BN; linear weight, bias.
The DARTS modules mirror DARTS's NetworkCIFAR (model.py, operations.py;
no auxiliary head, drop-path off), again in lib/nn/model.c's layer order:
  stem conv (to 3C), stem BN;
  per cell (L cells, reductions doubling the width at L/3 and 2L/3):
    preprocess0 (FactorizedReduce after a reduction cell: conv_1, conv_2,
    BN; else ReLU-Conv1x1-BN: conv, BN), preprocess1 (conv, BN), then for
    nodes 0-3 the node's two ops, its inputs ascending (the canonical
    order, whatever order the arch string writes them in):
      sep_conv_kxk  depthwise, pointwise, BN, depthwise, pointwise, BN
      dil_conv_kxk  depthwise (dilation 2), pointwise, BN
      skip_connect  nothing; FactorizedReduce (conv_1, conv_2, BN) at stride 2
      max_pool_3x3, avg_pool_3x3 (padding not counted): nothing
    (stride 2 on the edges from the cell's two inputs in reduction cells);
  linear weight, bias.
BN running statistics are flattened the same way (per BN: mean, then var),
matching the C state block.

Each case is computed in float64 from float32 parameters and inputs, then
rounded to float32: the stored values are the exact answer to float32
precision, so the C test's error is only the C engine's own.

File layout (little-endian): an 8-byte magic naming the space ("XFGOLD01":
nb201, "XFGOLDD1": darts), float32 1.0 (byte-order check), int32 C, N
(nb201: cells per stage; darts: cells L), batch, cin, hw, classes, arch
length, the arch string (no NUL), int64 nparams, nstate, then
  float32 params[nparams]              initial parameters
  float32 x[batch * cin * hw * hw]     input batch (NCHW)
  int32   labels[batch]
  float32 logits[batch * classes]      training-mode forward
  float32 loss[2]                      mean cross-entropy, smoothing 0 and 0.1
  float32 grads[nparams]               of the smoothing-0.1 loss
  float32 dx[batch * cin * hw * hw]    input gradient of that loss
  float32 state[nstate]                BN running statistics after the forward
  float32 after[nparams]               parameters after one SGD step (lr 0.1,
                                       momentum 0.9, Nesterov, weight decay
                                       5e-4 on every parameter) from zero momentum
"""
import copy
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS, BN_MOMENTUM = 1e-5, 0.1
LR, MOMENTUM, WD = 0.1, 0.9, 5e-4
OPS = ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3']
DARTS_OPS = ['max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3',
             'dil_conv_5x5']
MAGIC = {'nb201': b'XFGOLD01', 'darts': b'XFGOLDD1'}

# name, arch, C, N, batch, cin, hw, classes, seed (C = 3: odd widths 3, 6, 12)
CASES = [
    ('nb201_allops', '|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|',
     4, 1, 4, 3, 16, 10, 1),
    ('nb201_conv3', '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|',
     3, 1, 4, 3, 16, 10, 2),
    # node 1 all-none (a zero tensor), a pool of zeros, and N = 2 cells per stage
    ('nb201_zero', '|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|',
     2, 2, 4, 3, 8, 10, 3),
]

# name, arch, C, L, batch, cin, hw, classes, seed. Together: each of the 7
# ops in normal and reduction cells, at stride 1 and 2 (skip_connect as
# FactorizedReduce), reduction cells after normal and after reduction cells,
# normal cells after reductions (preprocess0 a FactorizedReduce), and node
# inputs written in descending order.
DARTS_CASES = [
    # L 5: reductions at cells 1 and 3, both followed by a normal cell; 16x16;
    # C 3 (odd widths 3 and 9 before the reductions)
    ('darts_allops', 'normal:sep_conv_3x3~0,sep_conv_5x5~1|dil_conv_3x3~0,dil_conv_5x5~2|'
     'max_pool_3x3~1,avg_pool_3x3~3|skip_connect~0,sep_conv_3x3~4;reduce:skip_connect~0,max_pool_3x3~1|'
     'avg_pool_3x3~0,sep_conv_3x3~1|sep_conv_5x5~1,dil_conv_3x3~2|dil_conv_5x5~0,skip_connect~3',
     3, 5, 4, 3, 16, 10, 4),
    # L 3: the reduction cells back to back (cell 2: reduction after reduction);
    # the other stride-2 ops
    ('darts_reduce', 'normal:avg_pool_3x3~0,skip_connect~1|max_pool_3x3~0,sep_conv_5x5~2|'
     'sep_conv_3x3~3,dil_conv_5x5~1|dil_conv_3x3~2,skip_connect~4;reduce:skip_connect~1,dil_conv_3x3~0|'
     'max_pool_3x3~0,avg_pool_3x3~1|sep_conv_3x3~0,sep_conv_5x5~1|dil_conv_5x5~1,max_pool_3x3~4',
     4, 3, 4, 3, 8, 10, 5),
    # DARTS-V2 (the paper's cell), L 4: reductions at cells 1 and 2, then a normal cell
    ('darts_v2', 'normal:sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|'
     'skip_connect~0,sep_conv_3x3~1|skip_connect~0,dil_conv_3x3~2;reduce:max_pool_3x3~0,max_pool_3x3~1|'
     'max_pool_3x3~1,skip_connect~2|max_pool_3x3~0,skip_connect~2|max_pool_3x3~1,skip_connect~2',
     2, 4, 4, 3, 8, 10, 6),
]


def parse(arch):
    """[(op, from)] per node 1..3, in the string's (and model.c's) order."""
    nodes = []
    for part in arch.strip('|').split('|+|'):
        nodes.append([(t.split('~')[0], int(t.split('~')[1])) for t in part.strip('|').split('|')])
    assert [len(n) for n in nodes] == [1, 2, 3], arch
    for j, node in enumerate(nodes, 1):
        assert [i for _, i in node] == list(range(j)) and all(op in OPS for op, _ in node), arch
    return nodes


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM, affine=True, track_running_stats=True)


class ReLUConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride, pad):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, stride, pad, bias=False), bn(cout))

    def forward(self, x):
        return self.op(x)


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class ResNetBasicblock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2, 1)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(cin, cout, 1, 1, 0, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def make_op(name, c):
    if name == 'none':
        return Zero()
    if name == 'skip_connect':
        return nn.Identity()
    if name == 'nor_conv_1x1':
        return ReLUConvBN(c, c, 1, 1, 0)
    if name == 'nor_conv_3x3':
        return ReLUConvBN(c, c, 3, 1, 1)
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


class InferCell(nn.Module):
    """Every edge its own op (one ReLU per conv edge, as in NAS-Bench-201);
    node j = sum of its edges, 'none' edges included as zeros."""

    def __init__(self, nodes, c):
        super().__init__()
        self.nodes = nodes
        self.layers = nn.ModuleList(make_op(op, c) for node in nodes for op, _ in node)

    def forward(self, x):
        feats, k = [x], 0
        for node in self.nodes:
            s = None
            for _, i in node:
                y = self.layers[k](feats[i])
                s = y if s is None else s + y
                k += 1
            feats.append(s)
        return feats[-1]


class TinyNetwork(nn.Module):
    def __init__(self, arch, C, N, classes, cin):
        super().__init__()
        nodes = parse(arch)
        self.stem = nn.Sequential(nn.Conv2d(cin, C, 3, 1, 1, bias=False), bn(C))
        cells, c = [], C
        for stage in range(3):
            if stage > 0:
                cells.append(ResNetBasicblock(c, 2 * c))
                c *= 2
            cells += [InferCell(nodes, c) for _ in range(N)]
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(bn(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))


def darts_parse(arch):
    """[normal, reduce], each 4 nodes of [(op, input)] with inputs ascending
    (lib/space/darts.c's canonical order, which model.c builds in)."""
    assert arch.startswith('normal:') and ';reduce:' in arch, arch
    cells = []
    for text in arch[len('normal:'):].split(';reduce:'):
        nodes = []
        for j, node in enumerate(text.split('|')):
            edges = sorted(((t.split('~')[0], int(t.split('~')[1])) for t in node.split(',')), key=lambda e: e[1])
            assert len(edges) == 2 and edges[0][1] < edges[1][1] <= j + 1, arch
            assert all(op in DARTS_OPS for op, _ in edges), arch
            nodes.append(edges)
        assert len(nodes) == 4, arch
        cells.append(nodes)
    return cells


class FactorizedReduce(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(cin, cout // 2, 1, 2, 0, bias=False)
        self.conv_2 = nn.Conv2d(cin, cout // 2, 1, 2, 0, bias=False)
        self.bn = bn(cout)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class DilConv(nn.Module):
    def __init__(self, c, k, stride, pad, dil):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(c, c, k, stride, pad, dilation=dil, groups=c, bias=False),
                                nn.Conv2d(c, c, 1, 1, 0, bias=False), bn(c))

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, c, k, stride, pad):
        super().__init__()
        self.op = nn.Sequential(DilConv(c, k, stride, pad, 1), DilConv(c, k, 1, pad, 1))

    def forward(self, x):
        return self.op(x)


def darts_op(name, c, stride):
    if name == 'max_pool_3x3':
        return nn.MaxPool2d(3, stride, 1)
    if name == 'avg_pool_3x3':
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if name == 'skip_connect':
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    k = int(name[-1])
    if name.startswith('sep_conv'):
        return SepConv(c, k, stride, k // 2)
    return DilConv(c, k, stride, k - 1, 2)


class DartsCell(nn.Module):
    def __init__(self, nodes, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.inputs = [i for node in nodes for _, i in node]
        self._ops = nn.ModuleList(darts_op(op, c, 2 if reduction and i < 2 else 1) for node in nodes for op, i in node)

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for j in range(4):
            states.append(sum(self._ops[2 * j + k](states[self.inputs[2 * j + k]]) for k in range(2)))
        return torch.cat(states[2:], dim=1)


class NetworkCIFAR(nn.Module):
    def __init__(self, arch, C, L, classes, cin):
        super().__init__()
        cells = darts_parse(arch)
        self.stem = nn.Sequential(nn.Conv2d(cin, 3 * C, 3, 1, 1, bias=False), bn(3 * C))
        c_pp, c_p, c, reduction_prev = 3 * C, 3 * C, C, False
        self.cells = nn.ModuleList()
        for i in range(L):
            reduction = i in (L // 3, 2 * L // 3)
            if reduction:
                c *= 2
            self.cells.append(DartsCell(cells[reduction], c_pp, c_p, c, reduction, reduction_prev))
            c_pp, c_p, reduction_prev = c_p, 4 * c, reduction
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


def bns(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def flat(ts):
    return torch.cat([t.detach().reshape(-1).to(torch.float64) for t in ts])


def run(model, x, y):
    """One training step: logits, both losses, grads, dx, running stats, params after SGD."""
    x = x.clone().requires_grad_(True)
    model.train()
    logits = model(x)
    loss0 = F.cross_entropy(logits, y, label_smoothing=0.0)
    loss1 = F.cross_entropy(logits, y, label_smoothing=0.1)
    model.zero_grad()
    loss1.backward()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WD)
    grads = flat(p.grad for p in model.parameters())
    state = flat(t for m in bns(model) for t in (m.running_mean, m.running_var))
    opt.step()
    return dict(logits=logits.detach().to(torch.float64).reshape(-1), loss=torch.stack([loss0, loss1]).detach().double(),
                grads=grads, dx=x.grad.detach().double().reshape(-1), state=state, after=flat(model.parameters()))


def f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype='<f4').tobytes()


def make(space, name, arch, C, N, batch, cin, hw, classes, seed, out_dir):
    torch.manual_seed(seed)
    model = (TinyNetwork if space == 'nb201' else NetworkCIFAR)(arch, C, N, classes, cin)
    # PyTorch's default initialisation, then BN affine parameters moved off
    # 1 and 0 so that a swapped gamma/beta or a missing affine shows
    with torch.no_grad():
        for m in bns(model):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(batch, cin, hw, hw)
    y = torch.randint(0, classes, (batch,))
    params = flat(model.parameters()).float()
    nparams = params.numel()
    nstate = sum(2 * m.num_features for m in bns(model))
    assert nparams == sum(p.numel() for p in model.parameters())

    ref32 = {k: v.float() for k, v in run(copy.deepcopy(model), x, y).items()}
    ref = run(model.double(), x.double(), y)

    # The float32 run's distance from float64: relative to each vector's largest value.
    print(f'{name}: {nparams} parameters, {nstate} running statistics')
    for k, v in ref.items():
        d = (ref32[k].double() - v).abs().max().item() / max(v.abs().max().item(), 1e-30)
        print(f'  torch float32 vs float64 {k:7s} max |diff| / max |value| = {d:.2e}')

    path = os.path.join(out_dir, name + '.bin')
    with open(path, 'wb') as f:
        f.write(MAGIC[space])
        f.write(struct.pack('<f', 1.0))
        f.write(struct.pack('<7i', C, N, batch, cin, hw, classes, len(arch)))
        f.write(arch.encode())
        f.write(struct.pack('<2q', nparams, nstate))
        f.write(f32(params))
        f.write(f32(x.reshape(-1)))
        f.write(np.ascontiguousarray(y.numpy(), dtype='<i4').tobytes())
        for k in ('logits', 'loss', 'grads', 'dx', 'state', 'after'):
            f.write(f32(ref[k].float()))
    print(f'  wrote {path} ({os.path.getsize(path)} bytes)')


def main():
    torch.set_num_threads(1)
    out_dir = os.path.dirname(os.path.abspath(__file__))
    for case in CASES:
        make('nb201', *case, out_dir)
    for case in DARTS_CASES:
        make('darts', *case, out_dir)


if __name__ == '__main__':
    sys.exit(main())
