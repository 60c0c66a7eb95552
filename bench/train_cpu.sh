#!/bin/sh
# CPU training-speed benchmark: the engine (build/bench/train_cpu) next to
# PyTorch on the same work (shared/bench/torch_nb201_cpu_bench.py: the
# NAS-Bench-201 network at C 16 N 5 and C 8 N 1, batch 64 of 32x32x3, SGD
# steps), both with the same thread count, alternating runs. Prints a
# Markdown table for bench/RESULTS.md: median images/s of each (min-max in
# brackets), the ratio engine / PyTorch, and each process's peak RSS
# (/usr/bin/time; one process runs both networks). Needs PyTorch for
# /usr/bin/python3 (Debian's python3-torch; not in `make deps`).
# Environment: BENCH_THREADS (2), BENCH_REPS (3), BUILD (build),
# SHARED (../shared from the repository root), PYTHON (/usr/bin/python3).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$top/../shared}
build=${BUILD:-$top/build}
threads=${BENCH_THREADS:-2}
reps=${BENCH_REPS:-3}
py=${PYTHON:-/usr/bin/python3}
engine=$build/bench/train_cpu
torch_bench=$shared/bench/torch_nb201_cpu_bench.py

[ -x "$engine" ] || { echo "bench: '$engine' missing: run 'make bench-train'" >&2; exit 1; }
[ -f "$torch_bench" ] || { echo "bench: '$torch_bench' missing (SHARED=...)" >&2; exit 1; }
"$py" -c 'import torch' 2>/dev/null || { echo "bench: '$py' cannot import torch (apt-get install python3-torch)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing: run 'make deps'" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# median of the numbers on stdin
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# "min-max" of the numbers on stdin
range() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }

# run NAME COMMAND...: one run; appends "C N img_per_s" lines to NAME.rates
# and the peak RSS (KiB) to NAME.mem; the JSON lines go to stderr as a log
run() {
    name=$1
    shift
    /usr/bin/time -f %M -o "$work/mem" "$@" >"$work/out" 2>"$work/err" || {
        cat "$work/err" >&2
        echo "bench: '$*' failed" >&2
        exit 1
    }
    sed "s/^/$name: /" "$work/out" >&2
    sed -n 's/.*"C": *\([0-9]*\), *"N": *\([0-9]*\),.*"img_per_s": *\([0-9.]*\).*/\1 \2 \3/p' "$work/out" >>"$work/$name.rates"
    tail -n 1 "$work/mem" >>"$work/$name.mem"
}

i=0
while [ "$i" -lt "$reps" ]; do
    run engine "$engine" "$threads"
    run torch "$py" "$torch_bench" "$threads"
    i=$((i + 1))
done

rates() { # NAME C N: the rates of that network, one a line
    awk -v c="$2" -v n="$3" '$1 == c && $2 == n {print $3}' "$work/$1.rates"
}

echo "| network (batch 64, 32x32x3, $threads threads) | engine img/s | PyTorch img/s | engine / PyTorch |"
echo "|---|---|---|---|"
for cn in "16 5" "8 1"; do
    set -- $cn
    [ -n "$(rates engine "$1" "$2")" ] && [ -n "$(rates torch "$1" "$2")" ] || {
        echo "bench: no result for C $1 N $2" >&2
        exit 1
    }
    e=$(rates engine "$1" "$2" | median)
    t=$(rates torch "$1" "$2" | median)
    printf '| C %s N %s | %s (%s) | %s (%s) | %sx |\n' "$1" "$2" "$e" "$(rates engine "$1" "$2" | range)" \
        "$t" "$(rates torch "$1" "$2" | range)" "$(awk -v e="$e" -v t="$t" 'BEGIN {printf "%.2f", e / t}')"
done
em=$(median <"$work/engine.mem")
tm=$(median <"$work/torch.mem")
printf '| peak RSS, one process running both | %s MiB | %s MiB | %sx |\n' "$((em / 1024))" "$((tm / 1024))" \
    "$(awk -v e="$em" -v t="$tm" 'BEGIN {printf "%.2f", e / t}')"
echo
echo "Medians of $reps alternating runs (min-max in brackets); $(nproc) CPUs: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)."
