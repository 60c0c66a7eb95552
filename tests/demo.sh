#!/bin/sh
# The main job: a strong NAS-Bench-201 cell for Fashion-MNIST found with a
# handful of trainings, thanks to prebuilt metadata.
#   1. ingest the real Fashion-MNIST (Debian's dataset-fashion-mnist) as the
#      target task (16x16, 300 training images a class, a quarter kept for
#      validation: small enough for a 2-core CPU);
#   2. import the prebuilt meta-dataset shipped in data/meta/ (nb201 cells
#      trained by xfer-train-meta on other tasks; see data/meta/README.md);
#   3. fit the transfer predictor on it (xfer-predict fit);
#   4. search with DEMO_BUDGET trainings (xfer-search run --optimizer xfer),
#      and, for comparison, DEMO_BUDGET random cells trained the same way;
#   5. print both best cells with their measured validation accuracy.
# Everything lands in demo/xfer.db (XFER_DB overrides); a second `make demo`
# reuses what is there (finished searches are printed, not repeated).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
src=/usr/share/datasets/fashion-mnist
meta=$top/data/meta/nb201-cheap6.jsonl.gz
db=${XFER_DB:-$top/demo/xfer.db}
budget=${DEMO_BUDGET:-10}
threads=${DEMO_THREADS:-2}
bin=$top/bin
if [ ! -d "$src" ]; then
    echo "demo: $src is missing: run 'make deps' (as root) first" >&2
    exit 1
fi
mkdir -p "$(dirname "$db")" "$top/demo/fashion-mnist-train"
# the training files only: the 10,000 test images would cost every run more
# than its training on this machine
ln -sf "$src/train-images-idx3-ubyte.gz" "$src/train-labels-idx1-ubyte.gz" "$top/demo/fashion-mnist-train/"
t0=$(date +%s)
step() { echo "demo: [$(( $(date +%s) - t0 ))s] $*" >&2; }

step "1/5 ingesting Fashion-MNIST from $src as the target task"
if ! "$bin/xfer-ingest" --db "$db" show fashion-mnist >/dev/null 2>&1; then
    "$bin/xfer-ingest" --db "$db" add "$top/demo/fashion-mnist-train" --name fashion-mnist --resize 16x16 \
        --limit-per-class 300 --valid-fraction 0.25 --seed 1 >/dev/null
fi
step "2/5 importing the prebuilt metadata ($meta)"
"$bin/xfer-ingest" --db "$db" runs "$meta" >&2
step "3/5 fitting the transfer predictor on the source tasks"
"$bin/xfer-predict" --db "$db" fit --space nb201 --target fashion-mnist >&2
step "4/5 searching: $budget trainings proposed by the transfer predictor"
"$bin/xfer-search" --db "$db" run --target fashion-mnist --space nb201 --budget "$budget" --optimizer xfer \
    --device auto --threads "$threads" >"$top/demo/xfer.jsonl"
step "5/5 for comparison: $budget random cells, trained the same way"
"$bin/xfer-search" --db "$db" run --target fashion-mnist --space nb201 --budget "$budget" --optimizer random \
    --device auto --threads "$threads" >"$top/demo/random.jsonl"
step "done"
acc() { sed -n 's/.*"valid_acc":\([0-9.]*\).*/\1/p' "$1" | head -n 1; }
arch() { sed -n 's/.*"arch":"\([^"]*\)".*/\1/p' "$1" | head -n 1; }
echo
echo "Fashion-MNIST (16x16, 2250 training images), $budget trainings each, 6 epochs a training:"
printf '  transfer search: %s  validation accuracy %s\n' "$(arch "$top/demo/xfer.jsonl")" "$(acc "$top/demo/xfer.jsonl")"
printf '  best random:     %s  validation accuracy %s\n' "$(arch "$top/demo/random.jsonl")" "$(acc "$top/demo/random.jsonl")"
echo "(every training is a run in $db: 'xfer-train-meta --db $db status'; the searches' steps are in its"
echo " searches and search_steps tables)"
