#!/bin/sh
# Ingest benchmark: time and peak memory of `xfer-ingest add` on the real
# Fashion-MNIST (Debian's dataset-fashion-mnist) and on a generated
# CIFAR-10-sized tarball (60,000 32x32x3 images of noise, in the official
# layout), next to peers measured in the same run: decompressing the same
# input (gzip -dc > /dev/null, the floor of any reader) and unpacking the
# tarball to disk (tar xzf, what a user does without this tool).
# Goals: Fashion-MNIST under 3 s, CIFAR-10 under 6 s, peak memory under
# twice the stored size. Prints a Markdown table for bench/RESULTS.md.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$top/build/bench}
reps=${BENCH_REPS:-3}
mkdir -p "$work"
fmnist=/usr/share/datasets/fashion-mnist
tarball=$work/cifar-10-binary.tar.gz
[ -d "$fmnist" ] || { echo "bench: $fmnist missing: run 'make deps'" >&2; exit 1; }
[ -f "$tarball" ] || "$top/build/tests/gen-fixtures" --cifar10-tarball "$tarball" 10000

# median of the numbers on stdin
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# measure NAME COMMAND...: prints "seconds peak_kb" (medians over reps)
measure() {
    : >"$work/t"
    i=0
    while [ $i -lt "$reps" ]; do
        rm -rf "$work/db" && mkdir -p "$work/db"
        /usr/bin/time -f "%e %M" -o "$work/one" "$@" >/dev/null 2>"$work/err" || {
            cat "$work/err" >&2
            exit 1
        }
        cat "$work/one" >>"$work/t"
        i=$((i + 1))
    done
    echo "$(cut -d' ' -f1 "$work/t" | median) $(cut -d' ' -f2 "$work/t" | median)"
}

row() { # LABEL GOAL_S SOURCE...
    label=$1 goal=$2
    shift 2
    set -- $(measure "$top/bin/xfer-ingest" --db "$work/db/x.db" add "$@" --name t) "$@"
    secs=$1 kb=$2
    shift 2
    stored=$(stat -c %s "$work"/db/x.db.tasks/*.xtask)
    zcat=$(measure sh -c "for f in $*; do if [ -d \"\$f\" ]; then cat \"\$f\"/*; else cat \"\$f\"; fi; done | gzip -dc >/dev/null")
    untar=-
    case "$1" in *.tar.gz) untar="$(measure tar -C "$work/db" -xzf "$1" | cut -d' ' -f1) s" ;; esac
    ratio=$(awk -v k="$kb" -v s="$stored" 'BEGIN {printf "%.2f", k * 1024 / s}')
    printf '| %s | %s s (goal < %s s) | %s MiB | %s MiB | %sx (goal < 2x) | %s s | %s |\n' "$label" "$secs" "$goal" \
        "$((kb / 1024))" "$((stored / 1048576))" "$ratio" "${zcat%% *}" "$untar"
}

echo "| input | xfer-ingest add | peak RSS | stored | peak / stored | peer: gzip -dc | peer: tar xzf |"
echo "|---|---|---|---|---|---|---|"
row "Fashion-MNIST (IDX gz, 70,000 28x28x1)" 3 "$fmnist"
row "CIFAR-10-sized tarball (60,000 32x32x3)" 6 "$tarball"
