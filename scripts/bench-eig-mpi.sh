#!/bin/sh
# The trace norm's eigenproblem on P processes (issue 18, docs/performance.md,
# "Eigensolver: replicated, broadcast or ScaLAPACK"): bench/bench_eig_mpi.c
# under mpirun for each size n of the Gram matrix, in three configurations:
#   P = 1, 1 thread;  P = 1, 2 threads;  P = 2, 1 thread per process
# (OPENBLAS_NUM_THREADS; this script is written for a 2-core machine).  Each
# run alternates the variants (replicated dsyevd, solved once and broadcast,
# ScaLAPACK pdsyevd) over BENCH_REPS rounds and prints its output as it
# comes; the Markdown rows of every run are printed together at the end.
# Time: one round at n = 1936 takes about 10 s with P = 2 on this machine,
# and more than 8x that at n = 4000.  Processes are
# not bound to cores (--bind-to none: Open MPI 4 binds -np 1 and -np 2 to one
# core each, which would leave a single process one core for its 2 threads).
#   scripts/bench-eig-mpi.sh [N...]       (default: 500 1000 1936 4000)
#   BENCH_REPS=5 BENCH_NB=64              (rounds per run, ScaLAPACK block size)
#   BENCH_CONFIGS="1:1 1:2 2:1"           (processes:threads per process)
# Needs Debian libscalapack-openmpi-dev.  Run it on an otherwise idle machine.
set -eu
cd "$(dirname "$0")/.."
sizes=${*:-500 1000 1936 4000}
reps=${BENCH_REPS:-5}
nb=${BENCH_NB:-64}
configs=${BENCH_CONFIGS:-1:1 1:2 2:1}
make bench-eig-mpi >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mpi() { mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$@"; }
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')," \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset)}"
for n in $sizes; do
    for conf in $configs; do
        P=${conf%:*}
        threads=${conf#*:}
        { OPENBLAS_NUM_THREADS=$threads mpi "$P" -x OPENBLAS_NUM_THREADS build-mpi/bench/bench_eig_mpi \
              -n "$n" -nb "$nb" -reps "$reps"; echo $? > "$out/rc"; } | tee "$out/run.txt"
        [ "$(cat "$out/rc")" = 0 ] || { echo "bench-eig-mpi: n $n, P $P failed" >&2; exit 1; }
        grep '^| [0-9]' "$out/run.txt" >> "$out/rows.txt"
    done
done
echo
echo "| n | P | threads | result on every process | variant | median s | ratio to replicated | stages (median s) |"
echo "|---|---|---|---|---|---|---|---|"
cat "$out/rows.txt"
