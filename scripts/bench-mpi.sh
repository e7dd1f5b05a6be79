#!/bin/sh
# Distributed training on this machine (issue 18, docs/performance.md,
# "Distributed training"): the MPI build under mpirun -np 1 and -np 2 on the
# synthetic data with many tasks, per method, and for the norm methods also
# P = 2 with --dist-norm split.  Prints one line per run:
#   tasks method processes  seconds/step  speed-up vs P=1  kB received/step/process
# Weak scaling is read across rows: T tasks on 1 process against 2T on 2.
#   scripts/bench-mpi.sh [TASKS...]        (default: 100 200 400)
# Each figure is the difference of a run of BENCH_STEPS (default 40) steps and
# one of 10, per step: the steady state, without start-up (data, workspaces)
# and without the end of training (the whole model gathered once).
# Run it on an otherwise idle machine.
set -eu
cd "$(dirname "$0")/.."
tasks=${*:-100 200 400}
steps=${BENCH_STEPS:-40}
make -j2 cli >/dev/null
make mpi >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# --bind-to none: Open MPI would bind -np 1 to one core (and each of 2 processes to one)
mpi() { mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$@"; }
field() { sed -n "s/^	\"$1\":	\([0-9.e+-]*\),*$/\1/p" "$2" | head -1; }
printf "%-6s %-7s %-12s %12s %9s %14s\n" tasks method processes "s/step" speed-up "kB/step/proc"
for T in $tasks; do
    for m in stl ud laf tucker tt; do
        one=""
        for conf in "1" "2" "2 split"; do
            P=${conf%% *}
            extra=""
            case "$conf" in *split) [ "$m" = stl ] || [ "$m" = ud ] && continue; extra="--dist-norm split" ;; esac
            for n in 10 "$steps"; do
                mpi "$P" build-mpi/tnmtl train --data "synthetic:tasks=$T" --method "$m" --steps "$n" --batch 16 \
                    --quiet $extra > "$out/r$n.json"
            done
            s0=$(field train_seconds "$out/r10.json"); s1=$(field train_seconds "$out/r$steps.json")
            b0=$(field received_bytes_per_step "$out/r10.json"); b1=$(field received_bytes_per_step "$out/r$steps.json")
            per=$(echo "($s1 - $s0) / ($steps - 10)" | bc -l)
            bytes=$(echo "(${b1:-0} * $steps - ${b0:-0} * 10) / ($steps - 10)" | bc -l)
            [ -z "$one" ] && one=$per
            printf "%-6s %-7s %-12s %12.4f %9.2f %14.1f\n" "$T" "$m" "$conf" "$per" "$(echo "$one / $per" | bc -l)" \
                "$(echo "$bytes / 1000" | bc -l)"
        done
    done
done
