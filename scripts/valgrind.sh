#!/bin/sh
# Runs the CLI's main paths under valgrind (memcheck): every run must end
# without memory errors and without definite or indirect leaks.
#   scripts/valgrind.sh [OUT_DIR]       (after `make`; needs valgrind)
# Prints one line per command: its exit code, valgrind's error count, time.
set -u
cd "$(dirname "$0")/.."
T=${1:-/tmp/tnmtl-valgrind}
rm -rf "$T"
mkdir -p "$T"
export OPENBLAS_NUM_THREADS=1
VG="valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
OG=../shared/data/omniglot
fail=0
n=0
check() {   # check EXPECTED_EXIT ARGS...
    want=$1
    shift
    n=$((n + 1))
    log="$T/vg$n.log"
    s=$(date +%s)
    $VG build/tnmtl "$@" > "$T/out$n.txt" 2> "$log"
    rc=$?
    errs=$(grep -c '^==[0-9]*== ' "$log")
    echo "exit $rc (want $want), valgrind lines $errs, $(( $(date +%s) - s )) s: tnmtl $*"
    if [ "$rc" -ne "$want" ] || [ "$errs" -ne 0 ]; then
        fail=1
        grep '^==' "$log" | head -30
    fi
}
/usr/bin/python3 -c "import numpy as np; np.save('$T/w.npy', np.random.RandomState(0).randn(4, 3, 5).astype(np.float32))"
check 0 train --data synthetic --arch conv4x5,pool2,fc16 --method tucker --steps 3 --batch 4 --threads 2 --quiet --out "$T/run"
check 0 eval --model "$T/run"
check 0 train --resume "$T/run" --steps 5 --quiet
check 0 compare --data synthetic --arch conv4x5,pool2,fc16 --steps 2 --methods stl,ud,laf,tucker,tt --quiet --out "$T/cmp"
check 0 train --data csv:../shared/data/school/school.csv --regression --method laf --steps 3 --quiet
check 0 norm --method tucker "$T/w.npy" --grad "$T/g.npy"
check 0 norm --method tt "$T/w.npy"
check 0 norm --method laf "$T/w.npy" --gamma 0.5
check 0 omniglot-info "$OG/images_background_small1.zip" --size 28 --first 2
check 0 omniglot-info "$OG" --alphabets Latin --size 14
check 0 train --data "omniglot:$OG/images_background_small1.zip" --alphabets 2 --size 28 --steps 2 --batch 5 --quiet
check 3 train --data synthetic --method laf --act none --optim sgd --lr 10 --steps 20 --quiet --out "$T/div"
check 2 train --data synthetic --arch fc1000,fc1000000,fc1000,fc1000000,fc1000 --steps 1 --quiet
check 2 norm --method tucker "$T/missing.npy"
echo "valgrind: $n commands, $([ $fail -eq 0 ] && echo all clean || echo FAILURES)"
exit $fail
