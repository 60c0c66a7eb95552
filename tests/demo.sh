#!/bin/sh
# The main job as far as it is built: ingest the real Fashion-MNIST from
# Debian's dataset-fashion-mnist package into demo/xfer.db and show the
# stored task. Later issues extend it to training, fitting and searching.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
src=/usr/share/datasets/fashion-mnist
db=${XFER_DB:-$top/demo/xfer.db}
if [ ! -d "$src" ]; then
    echo "demo: $src is missing: run 'make deps' (as root) first" >&2
    exit 1
fi
mkdir -p "$(dirname "$db")"
echo "demo: ingesting Fashion-MNIST from $src into $db" >&2
"$top/bin/xfer-ingest" --db "$db" add "$src" --name fashion-mnist >/dev/null
"$top/bin/xfer-ingest" --db "$db" list
echo
"$top/bin/xfer-ingest" --db "$db" show fashion-mnist
