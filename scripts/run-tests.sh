#!/bin/sh
# Runs each test program given on the command line from the repository root,
# prints its output, and ends with one summary line "N passed, N failed".
set -u
passed=0
failed=0
failed_names=""
for t in "$@"; do
    name=$(basename "$t")
    echo "=== $name"
    if "$t"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names="$failed_names $name"
    fi
done
[ -n "$failed_names" ] && echo "failed programs:$failed_names"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
