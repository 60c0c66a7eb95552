#!/bin/sh
# How well the metadata transfers, on the project's own meta-dataset
# (data/meta/: nb201 cells trained by xfer-train-meta on tasks derived from
# Fashion-MNIST and a generated colour task). For every task held out:
#   - xfer-predict eval: Spearman, Kendall tau and top-5%/10% precision of the
#     transfer predictor at k = 0, 5, 10, 20, 50 target evaluations against
#     params, FLOPs, single source tasks and a target-only surrogate;
#   - xfer-search bench: best accuracy found after every evaluation by xfer,
#     rea and random with the table evaluator (BENCH_REPEATS seeded searches
#     of BENCH_BUDGET evaluations), regret against the task's best.
#   - the curve ranker's early termination over the task's stored curves:
#     time saved and regret at each delta, and the most it saves below 0.2
#     points of regret.
# Writes every table (Markdown), the JSON lines, CSV and SVG plots into OUT.
# Environment: META (data/meta/nb201-cheap6.jsonl.gz), OUT (bench/out/transfer),
# BENCH_REPEATS (10), BENCH_BUDGET (100), BENCH_EVAL_REPEATS (5), BIN (bin).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$top/bin}
meta=${META:-$top/data/meta/nb201-cheap6.jsonl.gz}
out=${OUT:-$top/bench/out/transfer}
reps=${BENCH_REPEATS:-10}
budget=${BENCH_BUDGET:-100}
ereps=${BENCH_EVAL_REPEATS:-5}
[ -x "$bin/xfer-search" ] || { echo "bench: '$bin/xfer-search' missing: run 'make'" >&2; exit 1; }
[ -f "$meta" ] || { echo "bench: '$meta' missing" >&2; exit 1; }
mkdir -p "$out"
db=$out/meta.db
rm -f "$db" "$db-wal" "$db-shm"
"$bin/xfer-ingest" --db "$db" runs "$meta" >&2
tasks=$(sqlite3 "$db" "SELECT DISTINCT d.name FROM runs r JOIN datasets d ON d.id = r.dataset_id
    WHERE r.status = 'done' ORDER BY d.name")
: >"$out/eval.jsonl"
: >"$out/search.jsonl"
for t in $tasks; do
    echo "bench: holding out $t" >&2
    "$bin/xfer-predict" --db "$db" eval --holdout "$t" --repeats "$ereps" >"$out/eval-$t.txt"
    "$bin/xfer-predict" --db "$db" eval --holdout "$t" --repeats "$ereps" --json >>"$out/eval.jsonl"
    "$bin/xfer-search" --db "$db" bench --target "$t" --budget "$budget" --repeats "$reps" \
        --optimizer xfer,rea,random --json --csv "$out/search-$t.csv" --svg "$out/search-$t.svg" >"$out/search-$t.jsonl"
    sed "s/^{/{\"target\":\"$t\",/" "$out/search-$t.jsonl" >>"$out/search.jsonl"
done
# summary: Spearman per method and k, one row per held-out task
echo "### Spearman's rho of each method on the held-out task (mean over $ereps draws of the k evaluations)"
echo
ks=$(sed -n 's/.*"k":\([0-9]*\),.*/\1/p' "$out/eval.jsonl" | sort -nu | tr '\n' ' ')
for t in $tasks; do
    for k in $ks; do
        printf '%s k=%s' "$t" "$k"
        for m in xfer xfer-tuned target-only best-source source-oracle params flops; do
            v=$(grep "\"holdout\":\"$t\",\"method\":\"$m\",\"k\":$k," "$out/eval.jsonl" | sed 's/.*"spearman":\([-0-9.na]*\).*/\1/')
            printf ' %s=%s' "$m" "${v:--}"
        done
        echo
    done
done | awk 'BEGIN { print "| task | k | xfer | xfer-tuned | target-only | best-source | source-oracle | params | flops |"
                    print "|---|---|---|---|---|---|---|---|---|" }
            { split($2, k, "="); row = "| " $1 " | " k[2]
              for (i = 3; i <= NF; i++) { split($i, v, "="); row = row " | " v[2] }
              print row " |" }'
echo
echo "### Best validation accuracy found after 10, 25, 50 and $budget evaluations (mean over $reps searches; regret in points)"
echo
echo "| task | optimizer | best@10 | best@25 | best@50 | best@$budget | regret@10 | regret@$budget | evals to reach xfer's best@10 |"
echo "|---|---|---|---|---|---|---|---|---|"
for t in $tasks; do
    f=$out/search-$t.jsonl
    x10=$(grep '"optimizer":"xfer","evaluations":10,' "$f" | sed 's/.*"mean_best":\([0-9.]*\).*/\1/')
    for o in xfer rea random; do
        row="| $t | $o"
        for n in 10 25 50 "$budget"; do
            v=$(grep "\"optimizer\":\"$o\",\"evaluations\":$n," "$f" | sed 's/.*"mean_best":\([0-9.]*\).*/\1/')
            row="$row | ${v:--}"
        done
        for n in 10 "$budget"; do
            v=$(grep "\"optimizer\":\"$o\",\"evaluations\":$n," "$f" | sed 's/.*"mean_regret":\([0-9.]*\).*/\1/')
            row="$row | $(awk -v r="${v:-0}" 'BEGIN { printf "%.2f", 100 * r }')"
        done
        reach=$(awk -v x="$x10" -v o="\"optimizer\":\"$o\"," 'index($0, o) {
            split($0, a, "\"evaluations\":"); split(a[2], b, ","); split($0, c, "\"mean_best\":"); split(c[2], d, ",")
            if (d[1] + 0 >= x - 1e-9) { print b[1]; exit } }' "$f")
        echo "$row | ${reach:->$budget} |"
    done
done
echo
echo "### Early termination by the curve ranker (time saved, regret in points; mean over $ereps orders)"
echo
deltas=$(sed -n 's/.*"method":"ranker","delta":\([0-9.e-]*\),.*/\1/p' "$out/eval.jsonl" | sort -gu | tr '\n' ' ')
hdr="| held out |"
sep="|---|"
for d in $deltas; do hdr="$hdr delta $d |"; sep="$sep---|"; done
echo "$hdr curve-below-best | most saved at regret < 0.2 |"
echo "$sep---|---|"
for t in $tasks; do
    row="| $t |"
    for d in $deltas; do
        v=$(grep "\"holdout\":\"$t\",\"method\":\"ranker\",\"delta\":$d," "$out/eval.jsonl" |
            sed 's/.*"time_saved":\([0-9.]*\),"regret":\([0-9.]*\),.*/\1x, \2/')
        row="$row ${v:--} |"
    done
    v=$(grep "\"holdout\":\"$t\",\"method\":\"curve-below-best\"" "$out/eval.jsonl" |
        sed 's/.*"time_saved":\([0-9.]*\),"regret":\([0-9.]*\),.*/\1x, \2/')
    best=$(grep "\"holdout\":\"$t\",\"method\":\"ranker\"" "$out/eval.jsonl" |
        sed 's/.*"delta":\([0-9.e-]*\),"time_saved":\([0-9.]*\),"regret":\([0-9.]*\),.*/\1 \2 \3/' |
        awk '$3 < 0.2 && $2 > s { s = $2; r = $3; d = $1 } END { if (s) printf "%.2fx at %.3f (delta %s)", s, r, d }')
    echo "$row ${v:--} | ${best:--} |"
done
