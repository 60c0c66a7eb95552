#!/bin/sh
# Runs every tests/cli/t*.sh with fresh fixtures and a scratch directory,
# and prints "N passed, N failed". Exit status 1 if anything failed.
# Arguments, if any, pick scripts by name prefix: `run.sh t08 t10`.
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$top/bin}
GEN=${GEN:-$top/build/tests/gen-fixtures}
work=$(mktemp -d /tmp/xfer-cli.XXXXXX)
FX=$work/fixtures
TOP=$top
export BIN FX GEN TOP
"$GEN" "$FX" || { echo "cli: generating fixtures failed"; exit 1; }
pass=0
fail=0
ran=0
for t in "$top"/tests/cli/t*.sh; do
    name=$(basename "$t" .sh)
    if [ $# -gt 0 ]; then
        pick=0
        for a in "$@"; do
            case $name in "$a"*) pick=1 ;; esac
        done
        [ $pick -eq 1 ] || continue
    fi
    ran=$((ran + 1))
    T=$work/$name
    mkdir -p "$T"
    (cd "$T" && T=$T name=$name sh -c ". '$top/tests/cli/lib.sh'; . '$t'; finish")
    if [ -f "$T/counts" ]; then
        read p f <"$T/counts"
    else
        p=0 f=1
        echo "FAIL [$name] the script stopped early"
    fi
    echo "cli $name: $p passed, $f failed"
    pass=$((pass + p))
    fail=$((fail + f))
done
rm -rf "$work"
if [ $ran -eq 0 ]; then
    echo "cli: no script matches: $*"
    exit 1
fi
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
