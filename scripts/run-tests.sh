#!/bin/sh
# Runs each test program given on the command line from the repository root,
# prints its output and its wall time, and ends with the slowest programs and
# one summary line "N passed, N failed" (CI keeps to a time budget: .ci/run).
set -u
passed=0
failed=0
failed_names=""
times=""
for t in "$@"; do
    name=$(basename "$t")
    echo "=== $name"
    t0=$(date +%s.%N)
    if "$t"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names="$failed_names $name"
    fi
    s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    echo "--- $name: $s s"
    times="$times$s $name
"
done
echo "slowest:"
printf '%s' "$times" | sort -rn | head -n 5 | sed 's/^/  /'
[ -n "$failed_names" ] && echo "failed programs:$failed_names"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
