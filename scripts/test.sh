#!/bin/sh
# Installs what is missing, builds, and runs the whole test suite.
#   scripts/test.sh            release build + tests (+ Python package, MPI build)
#   scripts/test.sh --asan     also the suite under AddressSanitizer + UBSan
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
timed() { # a step and its wall time
    t0=$(date +%s)
    "$@"
    echo "[test.sh] $* : $(( $(date +%s) - t0 )) s"
}
timed make -j2 all
timed make test
timed make python-test
timed make mpi-test   # the MPI build under mpirun -np 1, 2, 3 against the one-process CLI
if [ "${1:-}" = "--asan" ]; then
    timed make -j2 SANITIZE=1 tests build-asan/tnmtl
    TNMTL_CLI="$PWD/build-asan/tnmtl" timed scripts/run-tests.sh build-asan/tests/test_*
fi
