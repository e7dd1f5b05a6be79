#!/bin/sh
# Trace-norm speed: tnmtl (bench/bench_norm.c) against PyTorch
# (bench/bench_norm_torch.py) on the four Omniglot layer tensors, T = 50,
# value + subgradient, median of REPS, in one run; prints a Markdown table
# with the ratios.  Usage: scripts/bench-norm.sh [REPS]   (default 5)
set -eu
reps=${1:-5}
cd "$(dirname "$0")/.."
make -s build/bench/bench_norm >/dev/null
tmp=$(mktemp -d /tmp/tnmtl-bench-norm-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
OPENBLAS_NUM_THREADS=2 build/bench/bench_norm "$reps" > "$tmp/c.txt"
/usr/bin/python3 bench/bench_norm_torch.py "$reps" > "$tmp/torch.txt"
echo "Trace norms, value + subgradient, median of $reps (seconds; $(nproc) cores, $(date -u +%Y-%m-%d))"
echo
echo "| layer | method | tnmtl | PyTorch | PyTorch / tnmtl |"
echo "|---|---|---:|---:|---:|"
awk 'NR == FNR { t[$1 " " $2] = $3; next }
     ($1 " " $2) in t { printf "| %s | %s | %.4f | %.4f | %.1fx |\n", $1, $2, $3, t[$1 " " $2], t[$1 " " $2] / $3 }' \
    "$tmp/torch.txt" "$tmp/c.txt"
echo
echo "Values (tnmtl vs PyTorch, different random draws of the same distribution):"
paste "$tmp/c.txt" "$tmp/torch.txt" | awk 'NF == 8 { printf "  %-6s %-7s %.6g  %.6g\n", $1, $2, $4, $8 }'
