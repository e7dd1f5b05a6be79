#!/bin/sh
# One full-batch training step of the paper's Omniglot model (50 tasks,
# 105x105, 2 drawings per character for training: 3246 images), tnmtl
# (bench/bench_train.c) against PyTorch (bench/bench_train_torch.py), for
# STL, LAF, Tucker and TT.  The two alternate per method and round
# (tnmtl m, PyTorch m, next method, ... ROUNDS times), STEPS timed steps per
# process after one warm-up step, so both see the same load of a shared
# machine; the table shows medians over every timed step of every round.
#
#   scripts/bench-train.sh [ROUNDS] [STEPS] [METHODS]   (default 3 2 "stl laf tucker tt")
#
# Columns: seconds per step (wall), PyTorch / tnmtl, CPU seconds per step
# of each process (all threads; on a shared machine the fairer figure: a
# process gets about the same CPU share whatever its threads), the regulariser alone
# (value + subgradient, timed separately) as a share of the step, GFLOP/s of
# the data part's multiply-adds over the whole step (bench_util.h explains
# the counts; the norms' flops are not counted): those tnmtl executes (its
# pooled convs' backward runs over the argmax pixels only, its 3x3 ones
# forward as Winograd), also as a share of the 2048^3 cblas_sgemm rate
# measured between tnmtl's steps, and both sides' as dense convolutions (the
# same work for both); peak resident memory of each process (both load the
# whole Omniglot npz first).
set -eu
rounds=${1:-3}
steps=${2:-2}
methods=${3:-stl laf tucker tt}
cd "$(dirname "$0")/.."
make -s build/bench/bench_train >/dev/null
tmp=$(mktemp -d /tmp/tnmtl-bench-train-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
load0=$(cut -d' ' -f1-3 /proc/loadavg)
i=1
while [ "$i" -le "$rounds" ]; do
    for m in $methods; do
        build/bench/bench_train --method "$m" --steps "$steps" >> "$tmp/all.txt"
        /usr/bin/python3 bench/bench_train_torch.py --method "$m" --steps "$steps" >> "$tmp/all.txt"
    done
    i=$((i + 1))
done
echo "Training step, Omniglot 50 tasks x 105x105, full batch (3246 images): medians over"
echo "$rounds alternating rounds x $steps steps; $(nproc) cores, load average $load0 at the start,"
echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end, $(date -u +%Y-%m-%d)"
echo
echo "| method | tnmtl s/step | PyTorch s/step | PyTorch / tnmtl | CPU s/step tnmtl | CPU s/step PyTorch | CPU ratio | reg share tnmtl | reg share PyTorch | tnmtl GFLOP/s executed | % of sgemm | tnmtl GFLOP/s as dense | PyTorch GFLOP/s as dense | peak MB tnmtl | peak MB PyTorch |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
# "side method key value" lines -> medians (maxima for maxrss_mb) per side, method, key
awk -v methods="$methods" '
    { k = $1 " " $2 " " $3; v[k, ++n[k]] = $4 }
    function med(k,    c, a, b, t) {
        c = n[k]; if (!c) return -1
        for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++)
            if (v[k, b] < v[k, a]) { t = v[k, a]; v[k, a] = v[k, b]; v[k, b] = t }
        return c % 2 ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
    }
    function top(k,    c, a, m) { m = 0; for (a = 1; a <= n[k]; a++) if (v[k, a] > m) m = v[k, a]; return m }
    END {
        nm = split(methods, ms, " ")
        for (i = 1; i <= nm; i++) {
            m = ms[i]
            cs = med("c " m " step"); ts = med("torch " m " step")
            cc = med("c " m " step_cpu"); tc = med("torch " m " step_cpu")
            cr = med("c " m " reg"); tr = med("torch " m " reg")
            fl = med("c " m " flop"); fx = med("c " m " flop_exec"); s = med("c " m " sgemm")
            printf "| %s | %.3f | %.3f | %.1fx | %.3f | %.3f | %.1fx | %.1f%% | %.1f%% | %.1f | %.1f%% | %.1f | %.1f | %.0f | %.0f |\n",
                m, cs, ts, ts / cs, cc, tc, tc / cc, 100 * cr / cs, 100 * tr / ts, fx / cs * 1e-9, 100 * fx / cs * 1e-9 / s,
                fl / cs * 1e-9, fl / ts * 1e-9, top("c " m " maxrss_mb"), top("torch " m " maxrss_mb")
            all = all sprintf("%s: sgemm %.1f GFLOP/s, regulariser alone tnmtl %.3f s, PyTorch %.3f s; loss tnmtl %s PyTorch %s\n",
                m, s, cr, tr, med("c " m " loss"), med("torch " m " loss"))
        }
        printf "\n%s", all
    }' "$tmp/all.txt"
