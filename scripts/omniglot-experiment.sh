#!/bin/sh
# The paper's Omniglot experiment (Yang & Hospedales 2016, method.md): one
# task per alphabet (50), per character 10% of the drawings for training and
# 90% for testing, the paper's network at 105x105 with tanh, gamma = 0.01;
# STL, UD-MTL (conv1-3 shared) and TNRMTL-LAF/Tucker/TT over seeds.
# Optimiser: Adam, lr 1e-3, 400 steps of 10 training images per task; the
# data term is the SUM of the 50 task losses (with their mean, gamma = 0.01 is
# 50x stronger and Tucker collapses: docs/results.md).
#   scripts/omniglot-experiment.sh [SEEDS] [OUT_DIR]   (default 0-9, runs/omniglot-sum)
# Killed or stopped, the same command resumes: finished runs are read back,
# the unfinished one continues from its last checkpoint.
set -eu
cd "$(dirname "$0")/.."
seeds=${1:-0-9}
out=${2:-runs/omniglot-sum}
data=${TNMTL_SHARED_DATA:-../shared/data}/omniglot
make -j2 cli >/dev/null
mkdir -p "$(dirname "$out")"
/usr/bin/time -v build/tnmtl compare --data "omniglot:$data" --methods stl,ud,laf,tucker,tt \
    --seeds "$seeds" --batch 10 --steps 400 --task-loss sum --out "$out" 2> "$out.log.err" | tee "$out.table.md"
grep -E "Maximum resident|Elapsed" "$out.log.err" || true
