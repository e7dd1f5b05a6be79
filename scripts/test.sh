#!/bin/sh
# Installs what is missing, builds, and runs the whole test suite.
#   scripts/test.sh            release build + tests
#   scripts/test.sh --asan     also the suite under AddressSanitizer + UBSan
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j2 all
make test
make python-test
if [ "${1:-}" = "--asan" ]; then
    make -j2 SANITIZE=1 tests build-asan/tnmtl
    TNMTL_CLI="$PWD/build-asan/tnmtl" scripts/run-tests.sh build-asan/tests/test_*
fi
