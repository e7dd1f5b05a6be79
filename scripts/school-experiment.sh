#!/bin/sh
# School (139 exam-score regression tasks, 28 features): a linear model per
# school.  LAF on the one linear layer is classic matrix trace-norm multi-task
# regression; compare it with independent per-task regression (STL), one
# pooled model (UD sharing the layer) and Tucker, over 10 seeds and a gamma
# sweep, with gamma chosen on the validation part.
#   scripts/school-experiment.sh [OUT_DIR]      (default runs/school)
set -eu
cd "$(dirname "$0")/.."
out=${1:-runs/school}
data=${TNMTL_SHARED_DATA:-../shared/data}/school/school.csv
mkdir -p "$out"
for g in 0.01 0.03 0.1 0.3; do
    echo "## gamma $g"
    echo
    build/tnmtl compare --data "csv:$data" --regression --methods stl,ud,laf,tucker --seeds 0-9 \
        --lr 0.05 --steps 2000 --val-frac 0.25 --gamma "$g" --quiet --out "$out/gamma$g" | tail -n +4
    echo
done | tee "$out/summary.md"
