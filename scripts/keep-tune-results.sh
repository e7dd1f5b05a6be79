#!/bin/sh
# Copies the summary of every finished tune of scripts/omniglot-tune.sh from
# RUN_DIR into KEEP_DIR, small enough to commit (results/): per seed and
# method its stdout JSON (choice, validation, test), tune.json (options) and
# trials.csv (every evaluation with its seconds), which is all that
# scripts/omniglot_tune_table.py reads, with and without --cost.  Checkpoints
# stay behind.  A tune still running (its JSON not yet written) is skipped.
#   scripts/keep-tune-results.sh RUN_DIR KEEP_DIR
set -eu
[ $# -eq 2 ] || { echo "usage: $0 RUN_DIR KEEP_DIR" >&2; exit 2; }
run=$1
keep=$2
[ -d "$run" ] || { echo "$0: $run: no such directory" >&2; exit 2; }
mkdir -p "$keep"
n=0
for json in "$run"/seed*-*.json; do
    [ -e "$json" ] || continue
    name=$(basename "$json" .json)
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit("test" not in d)' "$json" 2>/dev/null ||
        continue # running, or failed: nothing final to keep
    mkdir -p "$keep/$name"
    cp "$json" "$keep/$name.json"
    cp "$run/$name/tune.json" "$run/$name/trials.csv" "$keep/$name/"
    n=$((n + 1))
done
echo "kept $n finished tunes in $keep"
