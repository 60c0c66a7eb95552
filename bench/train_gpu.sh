#!/bin/sh
# GPU training-speed benchmark, for the GPU machine (shared/GPU.md): the
# engine's CUDA backend (build/bench/train_gpu: fp32 and tf32, eager and
# with the step recorded as a CUDA graph) next to PyTorch on the same work
# (shared/bench/torch_nb201_bench.py: the NAS-Bench-201 network C 16 N 5,
# 32x32x3, batch B, SGD steps; eager and CUDA-graph modes), alternating
# runs. Prints a Markdown table: median
# images/s of each mode (min-max in brackets) and each engine mode's ratio
# to PyTorch's eager fp32 (fp32cl) and to its strongest mode in the run.
# Environment: BUILD (build), TORCH_BENCH (the torch script; default
# ../shared/bench/torch_nb201_bench.py, else $BUILD/bench/torch_nb201_bench.py),
# PYTHON (python3), BENCH_B (256), BENCH_STEPS (64), BENCH_REPS (3),
# TORCH_MODES (fp32cl,bf16cl,graph_fp32cl,graph_bf16cl),
# ENGINE_MODES (fp32,tf32,graph_fp32,graph_tf32),
# GPU_LIBS (a folder of bench/gpu_libs.sh: on the engine's library path
# only, so that PyTorch keeps the machine's own libraries).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
py=${PYTHON:-python3}
B=${BENCH_B:-256}
steps=${BENCH_STEPS:-64}
reps=${BENCH_REPS:-3}
tmodes=${TORCH_MODES:-fp32cl,bf16cl,graph_fp32cl,graph_bf16cl}
emodes=${ENGINE_MODES:-fp32,tf32,graph_fp32,graph_tf32}
engine=$build/bench/train_gpu
torch_bench=${TORCH_BENCH:-$top/../shared/bench/torch_nb201_bench.py}
[ -f "$torch_bench" ] || torch_bench=$build/bench/torch_nb201_bench.py

[ -x "$engine" ] || { echo "bench: '$engine' missing: run 'make build/bench/train_gpu' (a CUDA build)" >&2; exit 1; }
[ -f "$torch_bench" ] || { echo "bench: torch_nb201_bench.py missing (TORCH_BENCH=...)" >&2; exit 1; }
"$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null ||
    { echo "bench: '$py' cannot import torch with CUDA" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
range() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }

# run NAME COMMAND...: one run; appends "mode img_per_s" lines to NAME.rates
run() {
    name=$1
    shift
    "$@" >"$work/out" 2>"$work/err" || {
        cat "$work/err" >&2
        echo "bench: '$*' failed" >&2
        exit 1
    }
    sed "s/^/$name: /" "$work/out" >&2
    sed -n 's/.*"mode": *"\([a-z0-9_]*\)".*"img_per_s": *\([0-9.]*\).*/\1 \2/p' "$work/out" >>"$work/$name.rates"
}

i=0
while [ "$i" -lt "$reps" ]; do
    run engine env LD_LIBRARY_PATH="${GPU_LIBS:+$GPU_LIBS:}${LD_LIBRARY_PATH:-}" \
        "$engine" --batch "$B" --steps "$steps" --modes "$emodes"
    run torch "$py" "$torch_bench" --B "$B" --steps "$steps" --modes "$tmodes"
    i=$((i + 1))
done

rates() { awk -v m="$2" '$1 == m {print $2}' "$work/$1.rates"; }
modes() { awk '{print $1}' "$work/$1.rates" | awk '!seen[$0]++'; }

best=0
bestm=
for m in $(modes torch); do
    t=$(rates torch "$m" | median)
    if awk -v t="$t" -v b="$best" 'BEGIN {exit !(t > b)}'; then best=$t; bestm=$m; fi
done
eager=$(rates torch fp32cl | median)

echo "| batch $B, $steps steps | images/s | / PyTorch fp32cl | / PyTorch best ($bestm) |"
echo "|---|---|---|---|"
for m in $(modes engine); do
    e=$(rates engine "$m" | median)
    printf '| engine %s | %s (%s) | %s | %s |\n' "$m" "$e" "$(rates engine "$m" | range)" \
        "$(awk -v e="$e" -v t="${eager:-0}" 'BEGIN {if (t > 0) printf "%.2fx", e / t; else print "-"}')" \
        "$(awk -v e="$e" -v t="$best" 'BEGIN {printf "%.2fx", e / t}')"
done
for m in $(modes torch); do
    printf '| PyTorch %s | %s (%s) | | |\n' "$m" "$(rates torch "$m" | median)" "$(rates torch "$m" | range)"
done
echo
echo "Medians of $reps alternating runs (min-max in brackets); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)."
