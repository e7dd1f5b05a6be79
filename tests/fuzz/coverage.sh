#!/bin/sh
# Source line coverage that each harness's inputs reach in the files it
# targets: builds the harnesses with clang's coverage instrumentation into
# build-fuzz/cov/ and replays the seed corpus plus what a long run found.
#   tests/fuzz/coverage.sh [EXTRA_CORPUS_ROOT]   (default build-fuzz/long)
set -eu
cd "$(dirname "$0")/../.."
extra=${1:-build-fuzz/long}
B=build-fuzz/cov
mkdir -p $B/obj
PKGS="openblas libzip libpng libcjson zlib"
CPP="-Iinclude -Isrc -Icli -D_GNU_SOURCE $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -llapacke -lm -lpthread"
FLAGS="-std=c11 -g -O1 -fprofile-instr-generate -fcoverage-mapping"
objs=""
for c in src/*.c cli/run.c cli/cli_util.c; do
    o=$B/obj/$(echo "$c" | tr / _).o
    [ "$o" -nt "$c" ] || clang $FLAGS $CPP -fsanitize=fuzzer-no-link -c "$c" -o "$o"
    objs="$objs $o"
done
files() {
    case $1 in
    npy) echo src/npy.c src/norm.c ;;
    csv) echo src/csv.c src/dataset.c ;;
    arch) echo src/net.c src/resources.c src/mtl.c ;;
    checkpoint) echo src/safetensors.c src/checkpoint.c cli/run.c ;;
    npz) echo src/omniglot.c src/zipread.c ;;
    pngzip) echo src/omniglot.c src/zipread.c ;;
    image) echo src/image.c ;;
    arrays) echo src/npz.c src/npy.c src/zipread.c ;;
    esac
}
for n in npy csv arch checkpoint npz pngzip image arrays; do
    clang $FLAGS $CPP -fsanitize=fuzzer tests/fuzz/fuzz_$n.c $objs $LIBS -o $B/fuzz_$n
    dirs="tests/fuzz/corpus/$n"
    [ -d "$extra/$n" ] && dirs="$dirs $extra/$n"
    [ -d tests/fuzz/regress/$n ] && dirs="$dirs tests/fuzz/regress/$n"
    rm -f $B/$n.profraw
    OPENBLAS_NUM_THREADS=1 LLVM_PROFILE_FILE=$B/$n.profraw $B/fuzz_$n -runs=0 $dirs > $B/$n.log 2>&1
    llvm-profdata merge -sparse $B/$n.profraw -o $B/$n.profdata
    echo "== fuzz_$n ($(ls $dirs | wc -l) inputs)"
    llvm-cov report $B/fuzz_$n -instr-profile=$B/$n.profdata $(files $n) | sed -n '1p;3,$p' |
        awk '{print $1, "lines", $8, $10, "branches", $11, $13}'
done
