#!/bin/sh
# Accuracy parity: the engine (build/bench/train_acc) and PyTorch
# (bench/train_acc.py) train the same NAS-Bench-201 network with the same
# recipe on the same stored Fashion-MNIST task, for several seeds; prints a
# Markdown table of both engines' validation and test accuracies and
# seconds per seed, then mean and standard deviation per engine. Data order
# and crops differ between engines, so they should agree within the
# seed-to-seed spread, not bit for bit. One thread each.
# Environment: FMNIST (/usr/share/datasets/fashion-mnist, IDX files),
# LIMIT (300 images per class, 10% to validation; the test split is whole),
# EPOCHS (3), SEEDS ("1 2 3"), NB_C (8), NB_N (1), BUILD (build),
# PYTHON (/usr/bin/python3, with Debian's python3-torch).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
py=${PYTHON:-/usr/bin/python3}
src=${FMNIST:-/usr/share/datasets/fashion-mnist}
limit=${LIMIT:-300}
epochs=${EPOCHS:-3}
seeds=${SEEDS:-1 2 3}
nb_c=${NB_C:-8}
nb_n=${NB_N:-1}
engine=$build/bench/train_acc
ingest=${INGEST:-$top/bin/xfer-ingest}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

[ -x "$engine" ] || { echo "bench: '$engine' missing: run 'make $engine'" >&2; exit 1; }
[ -x "$ingest" ] || { echo "bench: '$ingest' missing: run 'make'" >&2; exit 1; }
[ -d "$src" ] || { echo "bench: '$src' missing (FMNIST=...)" >&2; exit 1; }
"$py" -c 'import torch, numpy' 2>/dev/null || { echo "bench: '$py' cannot import torch and numpy (apt-get install python3-torch)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

"$ingest" --db "$work/db" add "$src" --name fmnist --limit-per-class "$limit" >/dev/null
"$ingest" --db "$work/db" show fmnist --json >"$work/show.json"
set -- $("$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["path"], d["mean"][0], d["std"][0], d["n_train"], d["n_valid"], d["n_test"])' "$work/show.json")
task=$work/$1 mean=$2 std=$3
info="$4 train, $5 valid, $6 test images"

# run NAME COMMAND...: one run, its JSON line appended to NAME.jsonl; the
# per-epoch progress goes to stderr
run() {
    name=$1
    shift
    "$@" >"$work/out" 2>"$work/err" || {
        cat "$work/err" >&2
        echo "bench: '$*' failed" >&2
        exit 1
    }
    sed "s/^/$name: /" "$work/err" >&2
    cat "$work/out" >>"$work/$name.jsonl"
}

for s in $seeds; do
    run engine "$engine" "$task" "$mean" "$std" "$s" "$epochs" "$nb_c" "$nb_n"
    run torch "$py" "$top/bench/train_acc.py" "$task" "$mean" "$std" "$s" "$epochs" "$nb_c" "$nb_n"
done

# field NAME KEY: KEY of each of NAME's runs, one a line
field() { sed -n "s/.*\"$2\": *\([0-9.-]*\).*/\1/p" "$work/$1.jsonl"; }
# mean +- sample standard deviation of the numbers on stdin
# (printf format FMT)
stats() { awk -v f="$1" '{s += $1; q += $1 * $1; n++} END {m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; if (v < 0) v = 0; printf f " ± " f, m, sqrt(v)}'; }

echo "| seed | xfernas valid | xfernas test | PyTorch valid | PyTorch test | xfernas s | PyTorch s |"
echo "|---|---|---|---|---|---|---|"
paste "$work/engine.jsonl" "$work/torch.jsonl" | while IFS="$(printf '\t')" read -r e t; do
    g() { echo "$1" | sed -n "s/.*\"$2\": *\([0-9.-]*\).*/\1/p"; }
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(g "$e" seed)" "$(g "$e" valid_acc)" "$(g "$e" test_acc)" \
        "$(g "$t" valid_acc)" "$(g "$t" test_acc)" "$(g "$e" seconds)" "$(g "$t" seconds)"
done
printf '| mean ± std | %s | %s | %s | %s | %s | %s |\n' "$(field engine valid_acc | stats %.4f)" \
    "$(field engine test_acc | stats %.4f)" "$(field torch valid_acc | stats %.4f)" "$(field torch test_acc | stats %.4f)" \
    "$(field engine seconds | stats %.1f)" "$(field torch seconds | stats %.1f)"
echo
echo "Fashion-MNIST, $limit images per class ($info); NAS-Bench-201 C $nb_c N $nb_n, $epochs epochs," \
    "batch 64, SGD 0.1 Nesterov, cosine, crop pad 2; 1 thread each;" \
    "$(getconf _NPROCESSORS_ONLN) CPUs: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)."
