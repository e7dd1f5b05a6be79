#!/bin/sh
# Installs what is missing, builds, and runs the main job: STL, UD-MTL and
# the three trace-norm methods on the embedded synthetic multi-task problem,
# then prints the comparison table and the sharing of each layer.
# Extra arguments go to `tnmtl compare` (e.g. --seeds 0-4).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j2 lib cli >/dev/null
exec build/tnmtl compare --data synthetic --out runs/demo "$@"
