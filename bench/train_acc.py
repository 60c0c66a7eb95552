"""Accuracy-parity driver, the PyTorch half of bench/train_acc.sh (the engine's
half is bench/train_acc.c): trains the same NAS-Bench-201 network with the
same recipe on the same stored task file and prints one JSON line.

Usage: train_acc.py TASKFILE MEAN STD SEED EPOCHS [C N [ARCH]]
(one channel; MEAN and STD the dataset's, pixels / 255; C 8, N 1 by default).

The network is tests/golden/make_golden.py's TinyNetwork (which mirrors the
engine layer for layer), with PyTorch's default initialisation. Recipe as
the engine's: batch 64, last partial batch dropped, SGD lr 0.1 momentum 0.9
Nesterov weight decay 5e-4 on every parameter, cosine to 0 stepped per
iteration, random crop with zero padding 2 (padding in pixel space, then
normalised), no flip, no label smoothing; evaluation in eval mode. One
thread. The data order and crops come from numpy's generator (the engine
uses its own): runs agree in distribution, not bit for bit.

The task file (lib/data/taskfile.h): a 64-byte header "XFERTASK" u32
version, height, width, channels, classes, label_bytes, u64 n_train,
n_valid, n_test, reserved; then per split labels u16[n], images u8[n][H][W][C].
"""
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'golden'))
from make_golden import TinyNetwork  # noqa: E402

DEFAULT_ARCH = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
BATCH, LR, MOMENTUM, WD, PAD = 64, 0.1, 0.9, 5e-4, 2


def read_task(path):
    """{'train'|'valid'|'test': (labels int64 (n,), images uint8 (n, C, H, W))}, classes."""
    raw = np.fromfile(path, dtype=np.uint8)
    magic = raw[:8].tobytes()
    version, h, w, c, classes, lb = struct.unpack_from('<6I', raw, 8)
    counts = struct.unpack_from('<3Q', raw, 32)
    if magic != b'XFERTASK' or version != 1 or lb != 2:
        sys.exit(f"train_acc.py: '{path}': not a version 1 task file")
    off, splits = 64, {}
    for name, n in zip(('train', 'valid', 'test'), counts):
        labels = raw[off:off + 2 * n].view('<u2').astype(np.int64)
        off += 2 * n
        images = raw[off:off + n * h * w * c].reshape(n, h, w, c).transpose(0, 3, 1, 2)
        off += n * h * w * c
        splits[name] = (labels, np.ascontiguousarray(images))
    if off != raw.size:
        sys.exit(f"train_acc.py: '{path}': size {raw.size} does not match its header ({off})")
    return splits, classes


def evaluate(model, labels, images, mean, std):
    if len(labels) == 0:
        return -1.0
    model.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(labels), BATCH):
            x = (torch.from_numpy(images[i:i + BATCH]).float() / 255.0 - mean) / std
            right += (model(x).argmax(1).numpy() == labels[i:i + BATCH]).sum()
    return right / len(labels)


def main():
    if len(sys.argv) not in range(6, 10):
        sys.exit('usage: train_acc.py TASKFILE MEAN STD SEED EPOCHS [C N [ARCH]]')
    path, mean, std, seed, epochs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    C, N = (int(sys.argv[6]), int(sys.argv[7])) if len(sys.argv) > 7 else (8, 1)
    arch = sys.argv[8] if len(sys.argv) > 8 else DEFAULT_ARCH
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    splits, classes = read_task(path)
    ytr, xtr = splits['train']
    n, cin, h, w = xtr.shape
    model = TinyNetwork(arch, C, N, classes, cin)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WD)
    spe = n // BATCH
    total = epochs * spe
    if spe == 0:
        sys.exit(f'train_acc.py: {n} training images are fewer than one batch of {BATCH}')
    # zero padding in pixel space, normalised once: the pad value is (0 - mean) / std
    padded = np.pad((xtr.astype(np.float32) / 255.0 - mean) / std, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)),
                    constant_values=(0.0 - mean) / std).astype(np.float32)
    t0, step = time.monotonic(), 0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(n)
        loss_sum = correct = 0.0
        te = time.monotonic()
        for b in range(spe):
            idx = order[b * BATCH:(b + 1) * BATCH]
            dy = rng.integers(0, 2 * PAD + 1, BATCH)
            dx = rng.integers(0, 2 * PAD + 1, BATCH)
            x = np.stack([padded[i, :, y0:y0 + h, x0:x0 + w] for i, y0, x0 in zip(idx, dy, dx)])
            x, y = torch.from_numpy(x), torch.from_numpy(ytr[idx])
            lr = 0.5 * LR * (1.0 + math.cos(math.pi * step / total))
            for g in opt.param_groups:
                g['lr'] = lr
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item()
            correct += (logits.argmax(1) == y).sum().item()
        va = evaluate(model, *splits['valid'], mean, std)
        print(f'train_acc.py: epoch {epoch + 1} loss {loss_sum / spe:.4f} train {correct / (spe * BATCH):.4f} '
              f'valid {va:.4f} lr {lr:.4f} {time.monotonic() - te:.1f}s', file=sys.stderr)
    test_acc = evaluate(model, *splits['test'], mean, std)
    valid_acc = evaluate(model, *splits['valid'], mean, std)
    print(f'{{"engine":"pytorch","seed":{seed},"epochs":{epochs},"C":{C},"N":{N},"valid_acc":{valid_acc:.4f},'
          f'"test_acc":{test_acc:.4f},"seconds":{time.monotonic() - t0:.1f}}}')


if __name__ == '__main__':
    main()
