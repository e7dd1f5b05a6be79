#!/bin/sh
# Trace-norm speed: tnmtl (bench/bench_norm.c) against PyTorch
# (bench/bench_norm_torch.py) on the four Omniglot layer tensors, T = 50,
# value + subgradient.  The two alternate, ROUNDS times (each program: one
# warm-up, then one timed evaluation per layer and method), so both see the
# same load of a shared machine; the table shows the median over rounds and
# the ratio of the medians.  Usage: scripts/bench-norm.sh [ROUNDS]  (default 5)
set -eu
rounds=${1:-5}
cd "$(dirname "$0")/.."
make -s build/bench/bench_norm >/dev/null
tmp=$(mktemp -d /tmp/tnmtl-bench-norm-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
i=1
while [ "$i" -le "$rounds" ]; do
    OPENBLAS_NUM_THREADS=2 build/bench/bench_norm 1 >> "$tmp/c.txt"
    /usr/bin/python3 bench/bench_norm_torch.py 1 >> "$tmp/torch.txt"
    i=$((i + 1))
done
median() { # "layer method seconds" lines -> "layer method median" in first-seen order
    awk '{ k = $1 " " $2; if (!(k in n)) order[++m] = k; v[k, ++n[k]] = $3 }
         END { for (j = 1; j <= m; j++) { k = order[j]; c = n[k]
                   for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++)
                       if (v[k, b] < v[k, a]) { t = v[k, a]; v[k, a] = v[k, b]; v[k, b] = t }
                   med = c % 2 ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
                   print k, med } }' "$1"
}
median "$tmp/c.txt" > "$tmp/c.med"
median "$tmp/torch.txt" > "$tmp/torch.med"
echo "Trace norms, value + subgradient: median of $rounds alternating rounds (seconds;"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d))"
echo
echo "| layer | method | tnmtl | PyTorch | PyTorch / tnmtl |"
echo "|---|---|---:|---:|---:|"
awk 'NR == FNR { t[$1 " " $2] = $3; next }
     ($1 " " $2) in t { printf "| %s | %s | %.4f | %.4f | %.1fx |\n", $1, $2, $3, t[$1 " " $2], t[$1 " " $2] / $3 }' \
    "$tmp/torch.med" "$tmp/c.med"
