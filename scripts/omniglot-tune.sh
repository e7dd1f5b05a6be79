#!/bin/sh
# The paper's Omniglot protocol with every method tuned on validation
# (issue 14): per seed, `tnmtl tune` over STL (steps), UD-MTL (shared depth),
# LAF/Tucker/TT (gamma 1e-4..1, 9 values), the same budget per method, on 2
# validation drawings per character taken from the 18 non-training ones
# (training set unchanged: 2 per character; docs/results.md).  One tune per
# method and seed, so each method's tuned test accuracy is in
# OUT/seedS-METHOD.json ("test") and the chosen gamma in its "chosen".
# Killed or stopped, the same command resumes.
#   scripts/omniglot-tune.sh [SEEDS] [OUT_DIR] [METHODS]
#   (defaults "0 1 2 3 4 5 6 7 8 9", runs/omniglot-tune, "stl ud laf tucker tt")
# BATCH=0 trains full-batch (all training drawings every step) instead of the
# default 10 drawings per alphabet per step (docs/results.md, "Full batch").
set -eu
cd "$(dirname "$0")/.."
seeds=${1:-0 1 2 3 4 5 6 7 8 9}
out=${2:-runs/omniglot-tune}
methods=${3:-stl ud laf tucker tt}
data=${TNMTL_SHARED_DATA:-../shared/data}/omniglot
batch=${BATCH:-10}
make -j2 cli >/dev/null
mkdir -p "$out"
for s in $seeds; do
    for m in $methods; do
        build/tnmtl tune --data "omniglot:$data" --batch "$batch" --steps 400 --seed "$s" --methods "$m" \
            --out "$out/seed$s-$m" > "$out/seed$s-$m.json"
    done
done
