"""Golden values for tests/unit/test_nn_golden.c: small seeded NAS-Bench-201
networks run once in PyTorch (the reference), their outputs committed here.

Run by hand from the repository root (needs PyTorch; `make check` does not):
    /usr/bin/python3 tests/golden/make_golden.py
It rewrites tests/golden/nb201_*.bin and prints, per case, how far PyTorch's
own float32 run lies from the float64 values it stores (the scale of
float32 rounding the C test's tolerances must allow).

The modules below mirror NAS-Bench-201's TinyNetwork (xautodl
models/cell_infers: TinyNetwork, InferCell, ResNetBasicblock, ReLUConvBN)
and register their parameters in the order lib/nn/model.c adds layers, so
model.parameters() is the C engine's parameter order:
  stem conv, stem BN (gamma, beta);
  per stage: [reduction: conv_a conv, BN; conv_b conv, BN; shortcut 1x1 conv]
             then N cells, each edge j<-i for j = 1..3, i < j (the arch
             string's order): ReLU-Conv-BN edges add conv, BN;
  last BN; linear weight, bias.
BN running statistics are flattened the same way (per BN: mean, then var),
matching the C state block.

Each case is computed in float64 from float32 parameters and inputs, then
rounded to float32: the stored values are the exact answer to float32
precision, so the C test's error is only the C engine's own.

File layout (little-endian): "XFGOLD01", float32 1.0 (byte-order check),
int32 C, N, batch, cin, hw, classes, arch length, the arch string (no NUL),
int64 nparams, nstate, then
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


def make(name, arch, C, N, batch, cin, hw, classes, seed, out_dir):
    torch.manual_seed(seed)
    model = TinyNetwork(arch, C, N, classes, cin)
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
        f.write(b'XFGOLD01')
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
        make(*case, out_dir)


if __name__ == '__main__':
    sys.exit(main())
