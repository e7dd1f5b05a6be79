#!/bin/sh
# The paper's Omniglot protocol with every method tuned on validation
# (issue 14): per seed, `tnmtl tune` over STL (weight decay), UD-MTL (shared depth),
# LAF/Tucker/TT (gamma 1e-4..1, 9 values), the same budget per method, on 2
# validation drawings per character taken from the 18 non-training ones
# (training set unchanged: 2 per character; docs/results.md).  One tune per
# method and seed, so each method's tuned test accuracy is in
# OUT/seedS-METHOD.json ("test") and the chosen gamma in its "chosen".
# Killed or stopped, the same command resumes.  KEEP=DIR also keeps each
# finished tune's summary in DIR (scripts/keep-tune-results.sh, e.g. a folder
# of results/) and skips the tunes already kept there, so that the experiment
# resumes on another machine, or after its run folders are lost.
#   scripts/omniglot-tune.sh [SEEDS] [OUT_DIR] [METHODS]
#   (defaults "0 1 2 3 4 5 6 7 8 9", runs/omniglot-tune, "stl ud laf tucker tt")
# BATCH=0 trains full-batch (all training drawings every step) instead of the
# default 10 drawings per alphabet per step (docs/results.md, "Full batch").
# THREADS=N passes --threads N (results do not depend on it).
# WD_FROM=DIR trains every method but STL with the weight decay that STL's
# tune of the same seed chose, DIR/seedS-stl.json (e.g.
# results/omniglot-tune-full-batch-stl-wd): the norms' gamma searched on top of it.
set -eu
cd "$(dirname "$0")/.."
seeds=${1:-0 1 2 3 4 5 6 7 8 9}
out=${2:-runs/omniglot-tune}
methods=${3:-stl ud laf tucker tt}
data=${TNMTL_SHARED_DATA:-../shared/data}/omniglot
batch=${BATCH:-10}
keep=${KEEP:-}
threads=${THREADS:-}
wd_from=${WD_FROM:-}
make -j2 cli >/dev/null
mkdir -p "$out"
for s in $seeds; do
    for m in $methods; do
        wd=
        if [ -n "$wd_from" ] && [ "$m" != stl ]; then
            wd=$(python3 -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))["chosen"]["weight_decay"]))' \
                "$wd_from/seed$s-stl.json") ||
                { echo "$0: $wd_from/seed$s-stl.json: no STL weight decay chosen for seed $s" >&2; exit 2; }
        fi
        if [ -n "$keep" ] && [ -f "$keep/seed$s-$m.json" ]; then
            # the kept tune's batch and fixed weight decay (0: none) must be this one's
            kept=$(python3 -c 'import json, sys; o = json.load(open(sys.argv[1]))["options"]
print(o["batch"], repr(float(o.get("weight_decay", 0))))' "$keep/seed$s-$m/tune.json")
            want="$batch $(python3 -c 'import sys; print(repr(float(sys.argv[1])))' "${wd:-0}")"
            [ "$kept" = "$want" ] || { echo "$0: $keep/seed$s-$m was tuned with batch and weight decay $kept," \
                "not $want" >&2; exit 2; }
            echo "seed $s $m: kept in $keep" >&2
            continue
        fi
        build/tnmtl tune --data "omniglot:$data" --batch "$batch" --steps 400 --seed "$s" --methods "$m" \
            ${threads:+--threads "$threads"} ${wd:+--weight-decay "$wd"} --out "$out/seed$s-$m" > "$out/seed$s-$m.json"
        [ -z "$keep" ] || scripts/keep-tune-results.sh "$out" "$keep" > /dev/null
    done
done
