#!/bin/sh
# The library as an outside program sees it (CI runs it after the tests):
# `make install` into a temporary prefix, then each example of examples/
# copied out of the tree, built with `pkg-config --cflags --libs tnmtl`
# against the shared library and with `--static` against libtnmtl.a, run,
# and its output checked:
#   norm_only     LAF/Tucker/TT of a rank-one tensor are 15/45/30, the
#                 subgradients W/15 per term; the hand-written descent lowers f
#   train_arrays  mean test accuracy above 0.6 (chance 1/3), the sharing
#                 report relates the tasks within each group more than across
#   resume        continues the checkpoint at its step and reproduces
#                 exactly the test loss of the same training in one go
# Also: the version of tnmtl.pc, TNMTL_VERSION and tnmtl_version() agree,
# and `make install DESTDIR=...` stages the same files under DESTDIR.
#   scripts/check-install.sh        (builds what is missing; about 10 s once built)
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "check-install: FAIL: $*" >&2; fails=$((fails + 1)); }

prefix=$tmp/prefix
make -s install PREFIX="$prefix" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; echo "check-install: make install failed" >&2; exit 1; }
make -s install PREFIX=/usr/local DESTDIR="$tmp/stage" > "$tmp/stage.log" 2>&1 || { cat "$tmp/stage.log"; fail "make install DESTDIR=..."; }
(cd "$prefix" && find . ! -type d | sort) > "$tmp/files"
(cd "$tmp/stage/usr/local" 2>/dev/null && find . ! -type d | sort) > "$tmp/staged" || true
cmp -s "$tmp/files" "$tmp/staged" || fail "make install DESTDIR=$tmp/stage PREFIX=/usr/local installs other files than PREFIX=$prefix"
grep -q '^prefix=/usr/local$' "$tmp/stage/usr/local/lib/pkgconfig/tnmtl.pc" 2>/dev/null || fail "staged tnmtl.pc does not say prefix=/usr/local"
echo "installed: $(tr '\n' ' ' < "$tmp/files")"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
part() { sed -n "s/^#define TNMTL_VERSION_$1  *\([0-9][0-9]*\).*/\1/p" include/tnmtl/version.h; }
version="$(part MAJOR).$(part MINOR).$(part PATCH)"
pcversion=$(pkg-config --modversion tnmtl)
[ "$pcversion" = "$version" ] || fail "tnmtl.pc says version $pcversion, include/tnmtl/version.h $version"
lib=$prefix/lib
[ "$(readlink "$lib/libtnmtl.so")" = "libtnmtl.so.$(part MAJOR)" ] && [ "$(readlink "$lib/libtnmtl.so.$(part MAJOR)")" = "libtnmtl.so.$version" ] &&
    [ -f "$lib/libtnmtl.so.$version" ] || fail "installed links: want libtnmtl.so -> libtnmtl.so.$(part MAJOR) -> libtnmtl.so.$version"

# A user copies the examples out of the tree and builds them.
mkdir "$tmp/src"
cp examples/*.c examples/*.h "$tmp/src/"
cat > "$tmp/src/version.c" <<'C'
#include <stdio.h>
#include <tnmtl.h>
int main(void) { printf("%s %s\n", TNMTL_VERSION, tnmtl_version()); return 0; }
C
cflags="-std=c11 -Wall -Wextra -pedantic -Werror -O2"
shared_libs=$(pkg-config --libs tnmtl)
static_libs=$(pkg-config --static --libs tnmtl | sed 's/-ltnmtl\b/-l:libtnmtl.a/')
for src in "$tmp"/src/*.c; do
    name=$(basename "$src" .c)
    $CC $cflags $(pkg-config --cflags tnmtl) -o "$tmp/$name.shared" "$src" $shared_libs || { fail "$name does not build (shared)"; continue; }
    $CC $cflags $(pkg-config --cflags tnmtl) -o "$tmp/$name.static" "$src" $static_libs || { fail "$name does not build (static)"; continue; }
    readelf -d "$tmp/$name.shared" | grep -q "NEEDED.*\[libtnmtl.so.$(part MAJOR)\]" || fail "$name.shared does not need libtnmtl.so.$(part MAJOR)"
    ! readelf -d "$tmp/$name.static" | grep -q 'NEEDED.*libtnmtl' || fail "$name.static needs libtnmtl.so"
done
# the shared builds find the library in the prefix only through LD_LIBRARY_PATH
export LD_LIBRARY_PATH="$lib"
export OPENBLAS_NUM_THREADS=1
ldd "$tmp/norm_only.shared" | grep -q "libtnmtl.so.$(part MAJOR) => $lib/" || fail "norm_only.shared does not load $lib/libtnmtl.so.$(part MAJOR)"

# Runs $1.$2 in $tmp with the remaining arguments; output in $tmp/$1.$2.out.
run() {
    ex=$1 kind=$2
    shift 2
    (cd "$tmp" && "./$ex.$kind" "$@" > "$ex.$kind.out" 2> "$ex.$kind.err") || { cat "$tmp/$ex.$kind.err" >&2; fail "$ex.$kind $* exited with $?"; }
}
for kind in shared static; do
    run version $kind
    [ "$(cat "$tmp/version.$kind.out")" = "$version $version" ] || fail "version.$kind: TNMTL_VERSION and tnmtl_version() say '$(cat "$tmp/version.$kind.out")', tnmtl.pc $version"

    run norm_only $kind
    out=$tmp/norm_only.$kind.out
    awk 'BEGIN { want["laf"] = 15; want["tucker"] = 45; want["tt"] = 30; g["laf"] = 0.12; g["tucker"] = 0.36; g["tt"] = 0.24 }
         $1 in want { n++; d = $3 - want[$1]; e = $NF - g[$1]; if (d < -1e-4 || d > 1e-4 || e < -1e-5 || e > 1e-5) bad = bad " " $1 }
         $1 == "step" { f[++m] = $4 }
         END { if (n != 3 || bad != "" || m < 2 || !(f[m] < f[1] - 1)) { print "norms" bad ", steps " m ", f " f[1] " -> " f[m]; exit 1 } }' "$out" ||
        { cat "$out"; fail "norm_only.$kind: want LAF 15, Tucker 45, TT 30, subgradients 0.12/0.36/0.24 at [0][1][0], f decreasing"; }

    run train_arrays $kind half.$kind.st 300
    out=$tmp/train_arrays.$kind.out
    awk '/^mean test accuracy/ { acc = $4 }
         /^  [ab][0-9]:/ { s = substr($1, 1, 1); for (t = 2; t <= NF; t++) { o = (t - 2 < 3) ? "a" : "b"; if (t - 2 == r) continue;
                                                     if (s == o) { w += $t; nw++ } else { x += $t; nx++ } } r++ }
         END { if (!(acc > 0.6) || nw != 12 || nx != 18 || !(w / nw > x / nx + 0.2)) { print "accuracy " acc ", relatedness within " w / nw ", across " x / nx; exit 1 } }' "$out" ||
        { cat "$out"; fail "train_arrays.$kind: want mean test accuracy > 0.6 and the groups in the relatedness matrix"; }
    grep -q "^saved half.$kind.st at step 300$" "$out" || fail "train_arrays.$kind did not save at step 300"
    cp "$out" "$tmp/half.$kind.out"

    run resume $kind half.$kind.st 600
    run train_arrays $kind full.$kind.st 600
    cp "$tmp/train_arrays.$kind.out" "$tmp/full.$kind.out"
    out=$tmp/resume.$kind.out
    grep -q "^loaded half.$kind.st at step 300$" "$out" && grep -q "^step 400/600" "$out" && grep -q "^saved half.$kind.st at step 600$" "$out" ||
        { cat "$out"; fail "resume.$kind: want loaded at step 300, steps 301..600, saved at step 600"; }
    a=$(grep '^test loss' "$out" || true)
    b=$(grep '^test loss' "$tmp/full.$kind.out" || true)
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "resume.$kind: 300 + 300 steps gave '$a', 600 steps in one go '$b'"
    echo "$kind: norm_only $(awk '$1 == "tucker" {print "Tucker", $3}' "$tmp/norm_only.$kind.out");" \
         "train_arrays 300 steps: $(grep '^mean test accuracy' "$tmp/half.$kind.out");" \
         "resume 300 -> 600: $a (600 in one go: $b)"
done
grep -v '^saved' "$tmp/full.shared.out" > "$tmp/full.shared.cmp"
grep -v '^saved' "$tmp/full.static.out" > "$tmp/full.static.cmp"
cmp -s "$tmp/full.shared.cmp" "$tmp/full.static.cmp" || fail "train_arrays: the shared and static builds print different results"

[ "$fails" -eq 0 ] || { echo "check-install: $fails check(s) failed" >&2; exit 1; }
echo "check-install: all passed (version $version)"
