#!/bin/sh
# Installs the Debian packages tnmtl needs to build and test.
# As root it runs apt-get; otherwise it prints the command to run.
# (chromium: tests/test_report.c renders `tnmtl report`'s page headless.)
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --dev    also python3-torch/numpy (reference scripts,
#                                    benchmarks) and clang (fuzzing)
#   scripts/install-deps.sh --fuzz   also clang and libFuzzer (make fuzz, CI)
#   scripts/install-deps.sh --torch  also python3-torch (the Python package's PyTorch tests, CI)
set -eu
PKGS="build-essential pkg-config libopenblas-dev liblapacke-dev libzip-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev libcjson-dev libcmocka-dev python3 python3-numpy chromium"
PKGS="$PKGS python3-dev python3-setuptools python3-pytest"   # the Python package (python/)
PKGS="$PKGS libopenmpi-dev openmpi-bin"   # make mpi, make mpi-test (tests/test_mpi.c)
if [ "${1:-}" = "--dev" ]; then
    PKGS="$PKGS python3-torch clang libclang-rt-14-dev valgrind time"
fi
if [ "${1:-}" = "--torch" ]; then
    PKGS="$PKGS python3-torch"
fi
if [ "${1:-}" = "--fuzz" ]; then
    PKGS="$PKGS clang libclang-rt-14-dev"
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "tnmtl needs these Debian packages:$missing" >&2
    echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
