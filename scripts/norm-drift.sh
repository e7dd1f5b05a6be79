#!/bin/sh
# Checkpoints of one run at consecutive steps, then scripts/norm_drift.py on
# them: how fast the trace norm's subgradient moves in training.
#   scripts/norm-drift.sh RUN_DIR [STEPS...]   (default steps: +1 +2 +3 +5 +10)
# RUN_DIR is a finished or interrupted `tnmtl train --out` folder; it is
# copied, never changed.  Run from the repository root (data paths in the
# run's configuration are relative to it).
set -eu
run=$1
shift
[ $# -gt 0 ] || set -- 1 2 3 5 10
tmp=$(mktemp -d /tmp/tnmtl-drift-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp -r "$run" "$tmp/run"
step0=$(/usr/bin/python3 -c "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; print(json.loads(f.read(n))['__metadata__']['step'])" "$tmp/run/checkpoint.safetensors")
cp "$tmp/run/checkpoint.safetensors" "$tmp/ck0"
list="$tmp/ck0"
for d in "$@"; do
    build/tnmtl train --resume "$tmp/run" --steps $((step0 + d)) --quiet > /dev/null
    cp "$tmp/run/checkpoint.safetensors" "$tmp/ck$d"
    list="$list $tmp/ck$d"
done
/usr/bin/python3 scripts/norm_drift.py $list
