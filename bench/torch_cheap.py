# PyTorch peer of one xfer-train-meta 'cheap' run on shapes16: NB201 C 8 N 1,
# 16x16x3, 6 classes, batch 64, SGD Nesterov lr 0.1 cosine, wd 5e-4, 12 epochs
# of 3600 training images (56 steps) and an evaluation of 1200 each epoch,
# fp32 eager, data already on the GPU (no loader, no augmentation: cheaper
# than the engine's host-side input path). Prints {"runs": N, "seconds": S}.
# Usage: python3 bench/torch_cheap.py N (torch_nb201_bench.py, for its Net,
# beside this file, in ../shared/bench or in TORCH_BENCH_DIR).
import json, os, sys, time, torch, torch.nn.functional as F
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.environ.get('TORCH_BENCH_DIR', here), here, os.path.join(here, '..', '..', 'shared', 'bench')]
from torch_nb201_bench import Net
arch = '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|'
def one_run(seed):
    torch.manual_seed(seed)
    m = Net(arch, C=8, N=1, classes=6).cuda()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 12)
    x = torch.randn(3600, 3, 16, 16, device='cuda'); y = torch.randint(0, 6, (3600,), device='cuda')
    xv = torch.randn(1200, 3, 16, 16, device='cuda'); yv = torch.randint(0, 6, (1200,), device='cuda')
    for ep in range(12):
        m.train()
        perm = torch.randperm(3600, device='cuda')
        for i in range(56):
            idx = perm[i * 64:(i + 1) * 64]
            loss = F.cross_entropy(m(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        sched.step()
        m.eval()
        with torch.no_grad():
            acc = sum(int((m(xv[j:j + 256]).argmax(1) == yv[j:j + 256]).sum()) for j in range(0, 1200, 256))
    return acc / 1200
n = int(sys.argv[1])
one_run(99)  # warm-up: CUDA context, cuDNN plans
t = time.perf_counter()
for s in range(n): one_run(s)
torch.cuda.synchronize()
print(json.dumps({"runs": n, "seconds": time.perf_counter() - t}))
