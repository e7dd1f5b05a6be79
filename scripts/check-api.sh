#!/bin/sh
# API hygiene of the built library (CI runs it after the tests):
#   - every symbol the libraries export starts with tnmtl_, and the shared
#     library exports exactly the functions the public headers declare;
#   - each public header alone, and tnmtl.h, compile as C11 and as C++ with
#     -Wall -Wextra -pedantic -Werror, and tnmtl.h includes every header;
#   - the shared library's soname is libtnmtl.so.MAJOR of tnmtl/version.h;
#   - the tutorial in tnmtl.h compiles as written and runs.
#   scripts/check-api.sh [BUILD_DIR]      (default build; run `make lib` first)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
CC=${CC:-cc}
CXX=${CXX:-g++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "check-api: FAIL: $*" >&2; fails=$((fails + 1)); }

so=$build/libtnmtl.so
a=$build/libtnmtl.a
[ -f "$so" ] && [ -f "$a" ] || { echo "check-api: $so or $a missing; run make lib" >&2; exit 2; }

# --- exported symbols ---
nm -D --defined-only "$so" | awk '{print $NF}' | sort -u > "$tmp/so.syms"
nm -g --defined-only "$a" | awk 'NF == 3 {print $3}' | sort -u > "$tmp/a.syms"
for lib in so a; do
    bad=$(grep -v '^tnmtl_' "$tmp/$lib.syms" || true)
    [ -z "$bad" ] || fail "libtnmtl.$lib exports symbols without the tnmtl_ prefix:" $bad
done
# functions declared in the public headers, outside comments: "tnmtl_name("
# but not "tnmtl_status (*callback)(" (a function-pointer type)
for h in include/tnmtl.h include/tnmtl/*.h; do
    sed -e 's|/\*.*\*/||g' -e '/\/\*/,/\*\//d' -e 's|//.*||' "$h"
done | grep -o 'tnmtl_[a-z0-9_]* *(\([^*]\|$\)' | sed 's/ *(.*$//' | sort -u > "$tmp/decl"
extra=$(comm -23 "$tmp/so.syms" "$tmp/decl")
missing=$(comm -13 "$tmp/so.syms" "$tmp/decl")
[ -z "$extra" ] || fail "libtnmtl.so exports functions no public header declares (internal ones must stay hidden):" $extra
[ -z "$missing" ] || fail "public headers declare functions libtnmtl.so does not export:" $missing
echo "symbols: libtnmtl.so exports $(wc -l < "$tmp/so.syms") functions (those of the public headers), libtnmtl.a $(wc -l < "$tmp/a.syms") globals, all tnmtl_"

# --- headers as C11 and C++ ---
n=0
for h in include/tnmtl.h include/tnmtl/*.h; do
    inc=${h#include/}
    grep -q "^#include \"$inc\"" include/tnmtl.h || [ "$inc" = tnmtl.h ] || fail "tnmtl.h does not include $inc"
    printf '#include <%s>\n#include <%s>\nint main(void) { return 0; }\n' "$inc" "$inc" > "$tmp/h.c"
    cp "$tmp/h.c" "$tmp/h.cpp"
    $CC -std=c11 -Wall -Wextra -pedantic -Werror -Iinclude -c "$tmp/h.c" -o "$tmp/h.o" || fail "$inc as C11"
    for std in c++11 c++17; do
        $CXX -std=$std -Wall -Wextra -pedantic -Werror -Iinclude -c "$tmp/h.cpp" -o "$tmp/h.o" || fail "$inc as $std"
    done
    n=$((n + 1))
done
echo "headers: $n compile alone (twice, include guards) as C11, C++11 and C++17 without warnings"

# --- soname and version ---
part() { sed -n "s/^#define TNMTL_VERSION_$1  *\([0-9][0-9]*\).*/\1/p" include/tnmtl/version.h; }
version="$(part MAJOR).$(part MINOR).$(part PATCH)"
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libtnmtl.so.$(part MAJOR)" ] || fail "soname of $so is '$soname', expected libtnmtl.so.$(part MAJOR)"
[ -f "$build/libtnmtl.so.$version" ] || fail "$build/libtnmtl.so.$version missing"
grep -q '^Version: @VERSION@$' scripts/tnmtl.pc.in || fail "scripts/tnmtl.pc.in must take its version from the header (@VERSION@)"
echo "version: $version, soname $soname"

# --- the tutorial of tnmtl.h, compiled as written and run ---
sed -n '/^ \* Tutorial:/,/^ \*\//p' include/tnmtl.h | sed -e '1d;$d' -e 's/^ \*   //' -e 's/^ \*$//' > "$tmp/tutorial.c"
cat > "$tmp/my_data.c" <<'C'
#include <stdint.h>
/* 4 related tasks: y = [w_t . x > 0], w_t = w + 0.3 * (task's own direction) */
void my_data(float *x, int *y, int64_t *begin)
{
    const float w[5] = {1, -1, 0.5f, 0, 0.8f};
    unsigned s = 1;
    for (int t = 0; t <= 4; t++) begin[t] = 200 * t;
    for (int i = 0; i < 800; i++) {
        float dot = 0;
        for (int j = 0; j < 5; j++) {
            s = s * 1103515245u + 12345u;
            x[i * 5 + j] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
            dot += (w[j] + (j == i / 200 ? 0.3f : 0.0f)) * x[i * 5 + j];
        }
        y[i] = dot > 0;
    }
}
C
if $CC -std=c11 -Wall -Wextra -pedantic -Werror -Iinclude -o "$tmp/tutorial" "$tmp/tutorial.c" "$tmp/my_data.c" \
        "$a" $(pkg-config --libs openblas libzip libpng libcjson zlib) -llapacke -lm -lpthread; then
    if (cd "$tmp" && OPENBLAS_NUM_THREADS=1 ./tutorial > out.txt); then
        low=$(awk '/test accuracy/ && $NF < 0.75' "$tmp/out.txt")
        grep -q 'checkpoint at step 300' "$tmp/out.txt" && [ "$(grep -c 'test accuracy' "$tmp/out.txt")" -eq 4 ] &&
            [ -z "$low" ] || { cat "$tmp/out.txt"; fail "tutorial output: every task's test accuracy >= 0.75 (chance 0.5), checkpoint at step 300"; }
        echo "tutorial: compiles and runs; $(grep -c 'test accuracy' "$tmp/out.txt") tasks, accuracies" \
            $(awk '/test accuracy/ {print $NF}' "$tmp/out.txt")
    else
        fail "the tutorial program failed"
    fi
else
    fail "the tutorial in include/tnmtl.h does not compile"
fi

[ "$fails" -eq 0 ] || { echo "check-api: $fails check(s) failed" >&2; exit 1; }
echo "check-api: all passed"
