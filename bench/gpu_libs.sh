#!/bin/sh
# Copies into DIR the shared libraries that the programs BIN... load and the
# GPU machine lacks (shared/GPU.md), for the device tool to carry with them:
# everything ldd resolves here except the C and C++ runtimes, CUDA's own
# libraries and cuDNN (the machine has newer ones), and what the machine
# has (SQLite, zlib, libpng, OpenBLAS with its Fortran runtime).
# Usage: gpu_libs.sh DIR BIN...; then run with LD_LIBRARY_PATH=DIR there.
set -eu
[ $# -ge 2 ] || { echo "usage: gpu_libs.sh DIR BIN..." >&2; exit 2; }
dir=$1
shift
mkdir -p "$dir"
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libstdc\+\+|libgcc_s|libcud|libcublas|libsqlite3|libz\.|libpng16|libopenblas|libgfortran|libquadmath)'
for bin in "$@"; do
    [ -x "$bin" ] || { echo "gpu_libs: '$bin' is not a program" >&2; exit 1; }
    ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
        if ! echo "$name" | grep -Eq "$skip"; then
            cp -L "$path" "$dir/$name"
        fi
    done
done
du -sh "$dir" | sed 's/^/gpu_libs: /' >&2
