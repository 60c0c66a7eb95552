#!/bin/sh
# Runs each fuzzer for FUZZ_SECONDS on a corpus seeded with the generated
# fixtures (valid, truncated and corrupt files). Crashes are kept in
# build/fuzz/crash-<fuzzer>/ and fail the run.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/fuzz
secs=${FUZZ_SECONDS:-60}
seeds=$out/seeds
rm -rf "$seeds"
"$top/build/tests/gen-fixtures" "$seeds" || exit 1
# which fixtures seed which fuzzer
pattern() {
    case "$1" in
    fuzz_idx) echo "idx/*/*ubyte*" ;;
    fuzz_cifar) echo "cifar/*/*.bin" ;;
    fuzz_archive) echo "cifar/*.tar.gz png/*.tar.gz png/*.zip npy/*.npz" ;;
    fuzz_npy) echo "npy/*.npy npy/*/*.npy" ;;
    fuzz_svhn) echo "svhn/*.mat svhn/*/*.mat" ;;
    fuzz_png) echo "png/*/*.png png/*/*/*.png png/*/*/*/*.png" ;;
    fuzz_csv) echo "bench/*.csv bench/*.csv.gz" ;;
    fuzz_runs) echo "bench/*.jsonl" ;;
    fuzz_space) echo "space/*" ;;
    esac
}
status=0
for bin in "$@"; do
    name=$(basename "$bin")
    corpus=$out/corpus-$name
    crash=$out/crash-$name
    mkdir -p "$corpus" "$crash"
    for p in $(pattern "$name"); do
        for f in $seeds/$p; do
            [ -f "$f" ] && cp "$f" "$corpus/seed-$(echo "${f#$seeds/}" | tr / _)"
        done
    done
    if "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len=1048576 \
        -print_final_stats=0 -artifact_prefix="$crash/" "$corpus" >"$out/$name.log" 2>&1; then
        echo "fuzz $name: ${secs}s, $(ls "$corpus" | wc -l) inputs in the corpus, no crash"
    else
        echo "fuzz $name: FAILED (see $out/$name.log and $crash/)"
        tail -30 "$out/$name.log"
        status=1
    fi
done
exit $status
