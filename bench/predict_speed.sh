#!/bin/sh
# Speed of xfer-predict (issue goals: fit on 50,000 stored runs in under 60 s
# on the 2-core machine; score 50,000 archs a second or more). A synthetic
# meta-dataset (gen-fixtures --meta-runs: BENCH_TASKS tasks x BENCH_ARCHS nb201
# archs) is imported, fitted with the default model, and every arch of the
# space (15,625) is scored, BENCH_SCORE_REPS times over. Prints wall and CPU
# seconds of each step and a Markdown row for bench/RESULTS.md.
# Environment: BENCH_TASKS (10), BENCH_ARCHS (5000), BENCH_SCORE_REPS (4),
# BIN (bin), BUILD (build).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$top/bin}
build=${BUILD:-$top/build}
tasks=${BENCH_TASKS:-10}
archs=${BENCH_ARCHS:-5000}
reps=${BENCH_SCORE_REPS:-4}
[ -x "$bin/xfer-predict" ] || { echo "bench: '$bin/xfer-predict' missing: run 'make'" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing: run 'make deps'" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
"$build/tests/gen-fixtures" --meta-runs "$work/runs.jsonl" "$tasks" "$archs"
"$bin/xfer-ingest" --db "$work/x.db" runs "$work/runs.jsonl" >/dev/null
runs=$(sqlite3 "$work/x.db" "SELECT count(*) FROM runs WHERE status = 'done'")
/usr/bin/time -f "%e %U %S" -o "$work/fit.time" "$bin/xfer-predict" --db "$work/x.db" fit --space nb201 \
    >/dev/null 2>"$work/fit.log"
read fit_wall fit_user fit_sys <"$work/fit.time"
i=0
: >"$work/score.times"
while [ "$i" -lt "$reps" ]; do
    /usr/bin/time -f "%e %U %S" -a -o "$work/score.times" "$bin/xfer-predict" --db "$work/x.db" score \
        --dataset syn0 --sample 15625 >"$work/scores.jsonl" 2>/dev/null
    i=$((i + 1))
done
n=$(wc -l <"$work/scores.jsonl")
best=$(sort -n "$work/score.times" | head -n 1)
set -- $best
awk -v r="$runs" -v t="$tasks" -v fw="$fit_wall" -v fu="$fit_user" -v fs="$fit_sys" -v n="$n" -v sw="$1" -v k="$reps" \
    'BEGIN { printf "| %d runs, %d tasks | fit %.1f s wall, %.1f s CPU | score %d archs: %.3f s wall (best of %d), %.0f archs/s |\n",
             r, t, fw, fu + fs, n, sw, k, n / sw }'
grep "epoch" "$work/fit.log" | tail -n 1
