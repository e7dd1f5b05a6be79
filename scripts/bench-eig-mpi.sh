#!/bin/sh
# The trace norm's eigenproblem on P processes (issue 18, docs/performance.md,
# "Eigensolver: replicated, broadcast or ScaLAPACK"): bench/bench_eig_mpi.c
# under mpirun for each size n of the Gram matrix, in three configurations:
#   P = 1, 1 thread;  P = 1, 2 threads;  P = 2, 1 thread per process
# (OPENBLAS_NUM_THREADS; this script is written for a 2-core machine).  Each
# run alternates the variants (replicated dsyevd, solved once and broadcast,
# ScaLAPACK pdsyevd) over BENCH_REPS rounds and prints its check lines; the
# Markdown rows of every run are printed together at the end.
#   scripts/bench-eig-mpi.sh [N...]       (default: 500 1000 1936 4000)
#   BENCH_REPS=5 BENCH_NB=64              (rounds per run, ScaLAPACK block size)
# Needs Debian libscalapack-openmpi-dev.  Run it on an otherwise idle machine.
set -eu
cd "$(dirname "$0")/.."
sizes=${*:-500 1000 1936 4000}
reps=${BENCH_REPS:-5}
nb=${BENCH_NB:-64}
make bench-eig-mpi >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mpi() { mpirun --allow-run-as-root --oversubscribe -np "$@"; }
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')," \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset)}"
for n in $sizes; do
    for conf in "1 1" "1 2" "2 1"; do
        P=${conf% *}
        threads=${conf#* }
        OPENBLAS_NUM_THREADS=$threads mpi "$P" -x OPENBLAS_NUM_THREADS build-mpi/bench/bench_eig_mpi \
            -n "$n" -nb "$nb" -reps "$reps" > "$out/run.txt"
        grep -v '^|' "$out/run.txt"
        grep '^| [0-9]' "$out/run.txt" >> "$out/rows.txt"
    done
done
echo
echo "| n | P | threads | result on every process | variant | median s | ratio to replicated | stages (median s) |"
echo "|---|---|---|---|---|---|---|---|"
cat "$out/rows.txt"
