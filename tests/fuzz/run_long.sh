#!/bin/sh
# Runs libFuzzer harnesses for a while, at most two at a time, one job each:
#   tests/fuzz/run_long.sh SECONDS NAME...    (after `make fuzz`)
# New inputs go to build-fuzz/long/NAME/, findings to build-fuzz/long/artifacts/,
# the output to build-fuzz/long/NAME.log (last lines: the final stats).
set -u
cd "$(dirname "$0")/../.."
secs=$1
shift
mkdir -p build-fuzz/long/artifacts
run() {
    n=$1
    mkdir -p build-fuzz/long/$n
    extra=""
    [ -d tests/fuzz/regress/$n ] && extra=tests/fuzz/regress/$n
    OPENBLAS_NUM_THREADS=1 build-fuzz/fuzz_$n -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix=build-fuzz/long/artifacts/$n- \
        build-fuzz/long/$n tests/fuzz/corpus/$n $extra > build-fuzz/long/$n.log 2>&1
    echo "$n: exit $? $(grep -E '^stat::number_of_executed_units' build-fuzz/long/$n.log)"
}
while [ $# -gt 0 ]; do
    a=$1; shift
    if [ $# -gt 0 ]; then
        b=$1; shift
        run "$a" & run "$b"; wait
    else
        run "$a"
    fi
done
