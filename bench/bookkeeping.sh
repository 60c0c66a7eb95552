#!/bin/sh
# Bookkeeping overhead of xfer-train-meta: short runs trained through the
# queue, with the worker's own timers around everything that is not
# training (claims and queue counts, the curve point and the checkpoint of
# every epoch, results, the heartbeat thread, the JSON lines). Prints the
# work summary of each setting and a Markdown row for bench/RESULTS.md.
# The task is noise (CIFAR-10 format, 5 batches of BENCH_PER images);
# accuracies do not matter here, only where the time goes.
# Environment: BENCH_RUNS (12), BENCH_PER (400), BENCH_THREADS (2), BIN (bin),
# BUILD (build).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$top/bin}
build=${BUILD:-$top/build}
runs=${BENCH_RUNS:-12}
per=${BENCH_PER:-400}
threads=${BENCH_THREADS:-2}
[ -x "$bin/xfer-train-meta" ] || { echo "bench: '$bin/xfer-train-meta' missing: run 'make'" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
"$build/tests/gen-fixtures" --cifar10-tarball "$work/c.tar.gz" "$per"
"$bin/xfer-ingest" --db "$work/x.db" add "$work/c.tar.gz" --name noise >/dev/null 2>&1
echo "| protocol | runs | epochs a run | wall s | bookkeeping |"
echo "|---|---|---|---|---|"
for setting in "tiny epochs=3" "cheap epochs=4" "cheap epochs=12"; do
    set -- $setting
    db=$work/$1-$2.db
    cp "$work/x.db" "$db" && cp -r "$work/x.db.tasks" "$db.tasks"
    "$bin/xfer-train-meta" --db "$db" plan --dataset noise --protocol "$1" --set "$2" --sample "$runs" --seed 5 2>/dev/null
    "$bin/xfer-train-meta" --db "$db" work --threads "$threads" >/dev/null 2>"$work/err"
    line=$(grep "of which" "$work/err")
    wall=$(echo "$line" | sed 's/.*: \([0-9.]*\) s, of which.*/\1/')
    pct=$(echo "$line" | sed 's/.*of which \([0-9.]*\)%.*/\1/')
    echo "| $1 | $runs | ${2#epochs=} | $wall | $pct% |"
done
