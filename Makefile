# tnmtl - build the library, the CLI, the tests and the benchmarks.
#
#   make                 library (static + shared), CLI, tests, benchmarks
#   make test            build and run the test suite
#   make install PREFIX=/usr/local [DESTDIR=...]
#                        headers, libtnmtl.a, libtnmtl.so.X.Y.Z + links, CLI, tnmtl.pc
#   make examples        examples/*.c against the static library (build/examples/)
#   make SANITIZE=1 test build and test with AddressSanitizer + UBSan (build-asan/)
#   make mpi             the CLI for mpirun, tasks split over processes (build-mpi/tnmtl;
#                        needs mpicc: Debian libopenmpi-dev); the plain build needs no MPI
#   make mpi-test        build it and run tests/test_mpi against it (mpirun -np 1, 2, 3)
#   make bench-eig-mpi   build-mpi/bench/bench_eig_mpi: the eigensolver replicated, broadcast
#                        or ScaLAPACK (needs Debian libscalapack-openmpi-dev; not in make,
#                        make mpi or CI; scripts/bench-eig-mpi.sh runs it)
#   make fuzz            libFuzzer harnesses tests/fuzz/fuzz_*.c (clang, build-fuzz/)
#   make fuzz-smoke      run each harness briefly over its corpus; fails on a finding
#
# Every src/*.c is part of the library, every cli/*.c part of the CLI,
# every tests/test_*.c one test program, every bench/bench_*.c one benchmark
# (but bench_eig_mpi.c, which needs MPI and ScaLAPACK: make bench-eig-mpi),
# every examples/*.c one example program (public headers only).

PREFIX  ?= /usr/local
# The version's single source is include/tnmtl/version.h; the soname is libtnmtl.so.MAJOR.
version_part = $(shell sed -n 's/^.define TNMTL_VERSION_$(1)  *\([0-9][0-9]*\).*/\1/p' include/tnmtl/version.h)
VERSION := $(call version_part,MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME  := libtnmtl.so.$(call version_part,MAJOR)
CC      ?= cc
BUILD   ?= build
OPT     ?= -O3 -march=x86-64-v2 -mtune=generic
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes
CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE
ALL_CFLAGS = -std=c11 $(WARN) -fPIC $(CFLAGS) $(XCFLAGS)

PKGS    := openblas libzip libpng libcjson zlib libjpeg
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lopenblas -lzip -lpng16 -lcjson -lz -ljpeg) -llapacke -lm -lpthread
CPPFLAGS += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
TESTLIBS := -lcmocka

ifeq ($(SANITIZE),1)
  BUILD   := build-asan
  OPT     := -O1
  XCFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC   := $(sort $(wildcard src/*.c))
CLI_SRC   := $(sort $(wildcard cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_UTIL := $(sort $(filter-out $(TEST_SRC),$(wildcard tests/*.c)))
# bench_eig_mpi.c needs MPI and ScaLAPACK: built only by `make bench-eig-mpi`
BENCH_SRC := $(sort $(filter-out bench/bench_eig_mpi.c,$(wildcard bench/bench_*.c)))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_UOBJ := $(TEST_UTIL:%.c=$(BUILD)/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

STATIC := $(BUILD)/libtnmtl.a
SHARED := $(BUILD)/libtnmtl.so
SHARED_REAL := $(BUILD)/libtnmtl.so.$(VERSION)
# exported from the shared library: the tnmtl_ names of the public headers only
EXPORTS := $(BUILD)/libtnmtl.map
CLI    := $(BUILD)/tnmtl

.PHONY: all lib cli tests bench examples test install clean fuzz fuzz-smoke
all: lib cli tests bench examples
lib: $(STATIC) $(SHARED)
cli: $(CLI)
tests: $(TEST_BIN)
bench: $(BENCH_BIN)
examples: $(EXAMPLE_BIN)

$(BUILD)/%.o: %.c $(wildcard include/tnmtl/*.h include/*.h src/*.h cli/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(EXPORTS): include/tnmtl.h $(wildcard include/tnmtl/*.h)
	@mkdir -p $(dir $@)
	{ echo '{ global:'; grep -oh 'tnmtl_[A-Za-z0-9_]*' $^ | sort -u | sed 's/$$/;/'; echo 'local: *; };'; } > $@

$(SHARED_REAL): $(LIB_OBJ) $(EXPORTS)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--version-script=$(EXPORTS) -o $@ $(LIB_OBJ) $(LIBS)

$(SHARED): $(SHARED_REAL)
	ln -sf $(notdir $<) $(BUILD)/$(SONAME) && ln -sf $(SONAME) $@

$(CLI): $(CLI_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UOBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_UOBJ) $(STATIC) $(LIBS) $(TESTLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)

$(BUILD)/examples/%: examples/%.c $(wildcard examples/*.h) $(wildcard include/tnmtl/*.h include/*.h) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) -Iinclude -std=c11 -Wall -Wextra -pedantic $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)

# Tests run from the repository root; they find shared data in ../shared/data
# (override with TNMTL_SHARED_DATA) and the CLI in $(CLI) (TNMTL_CLI).
test: $(TEST_BIN) $(CLI)
	@TNMTL_CLI=$(abspath $(CLI)) scripts/run-tests.sh $(TEST_BIN)

install: lib cli
	install -d $(DESTDIR)$(PREFIX)/include/tnmtl $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/tnmtl.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/tnmtl/*.h $(DESTDIR)$(PREFIX)/include/tnmtl/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SHARED_REAL)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libtnmtl.so
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' scripts/tnmtl.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tnmtl.pc

# ---- fuzzing: clang + libFuzzer + ASan/UBSan, everything in build-fuzz/ ----
# Each tests/fuzz/fuzz_NAME.c is one harness; its seed corpus is
# tests/fuzz/corpus/NAME/ and the inputs of fixed findings tests/fuzz/regress/NAME/.
FUZZ_CC    ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_OPT   := -O1
FUZZ_FLAGS = -std=c11 $(WARN) -g $(FUZZ_OPT) -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined -DTNMTL_PORTABLE_KERNELS
# The layer kernels, whose macro-made loops clang's UBSan takes minutes to
# optimise (227 s of the fuzz build's 300 s), at -O0: the same checks, and the
# harnesses (parsers) hardly run them.
$(FUZZ_BUILD)/src/layers.o: FUZZ_OPT := -O0
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB   := $(FUZZ_BUILD)/libtnmtl.a
FUZZ_CLI_OBJ := $(FUZZ_BUILD)/cli/run.o $(FUZZ_BUILD)/cli/cli_util.o
# -runs and -max_total_time per harness (whichever comes first)
FUZZ_SMOKE_RUNS ?= 5000
FUZZ_SMOKE_TIME ?= 20

fuzz: $(FUZZ_BIN)
.SECONDARY: $(FUZZ_CLI_OBJ)

$(FUZZ_BUILD)/%.o: %.c $(wildcard include/tnmtl/*.h include/*.h src/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIB): $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_LIB) $(FUZZ_CLI_OBJ)
	$(FUZZ_CC) $(CPPFLAGS) -Icli $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CLI_OBJ) $(FUZZ_LIB) $(LIBS)

# New inputs go to a scratch folder, never into the committed corpus.
fuzz-smoke: $(FUZZ_BIN)
	@set -e; rm -rf $(FUZZ_BUILD)/smoke; mkdir -p $(FUZZ_BUILD)/smoke/artifacts; \
	for b in $(FUZZ_BIN); do \
	    n=$${b#$(FUZZ_BUILD)/fuzz_}; mkdir -p $(FUZZ_BUILD)/smoke/$$n; \
	    echo "=== fuzz_$$n"; \
	    OPENBLAS_NUM_THREADS=1 $$b -runs=$(FUZZ_SMOKE_RUNS) -max_total_time=$(FUZZ_SMOKE_TIME) -timeout=10 \
	        -rss_limit_mb=2048 -artifact_prefix=$(FUZZ_BUILD)/smoke/artifacts/$$n- -print_final_stats=1 \
	        $(FUZZ_BUILD)/smoke/$$n tests/fuzz/corpus/$$n $$(test -d tests/fuzz/regress/$$n && echo tests/fuzz/regress/$$n) \
	        > $(FUZZ_BUILD)/smoke/$$n.log 2>&1 || { tail -40 $(FUZZ_BUILD)/smoke/$$n.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' $(FUZZ_BUILD)/smoke/$$n.log | tr '\n' ' '; echo; \
	done; echo "fuzz-smoke: all harnesses passed"

clean:
	rm -rf build build-asan build-fuzz build-mpi

# ---- MPI: the same sources built with mpicc and TNMTL_MPI (tnmtl/dist.h) ----
MPICC ?= mpicc
.PHONY: mpi mpi-test
# Only the sources that test TNMTL_MPI (every source when a header does) are
# compiled again; the MPI build copies the release build's other objects.
MPI_HDR_USES := $(shell grep -lE '^[[:space:]]*\#[[:space:]]*(if|ifdef|elif).*TNMTL_MPI' include/*.h include/tnmtl/*.h src/*.h cli/*.h)
MPI_SRC := $(if $(MPI_HDR_USES),$(LIB_SRC) $(CLI_SRC),$(shell grep -l TNMTL_MPI $(LIB_SRC) $(CLI_SRC)))
MPI_SHARED_OBJ := $(filter-out $(MPI_SRC:%.c=build/%.o),$(LIB_SRC:%.c=build/%.o) $(CLI_SRC:%.c=build/%.o))
ifeq ($(BUILD),build-mpi)
$(MPI_SHARED_OBJ:build/%=build-mpi/%): build-mpi/%: build/%
	@mkdir -p $(dir $@)
	cp $< $@
endif
mpi:
	@command -v $(MPICC) >/dev/null || { echo "make mpi needs $(MPICC) (Debian: libopenmpi-dev openmpi-bin)" >&2; exit 1; }
	+$(MAKE) $(MPI_SHARED_OBJ)
	+$(MAKE) BUILD=build-mpi CC=$(MPICC) XCFLAGS="$(XCFLAGS) -DTNMTL_MPI" build-mpi/tnmtl
mpi-test: mpi $(BUILD)/tests/test_mpi $(CLI)
	TNMTL_CLI=$(abspath $(CLI)) TNMTL_MPI_CLI=$(abspath build-mpi/tnmtl) $(BUILD)/tests/test_mpi

# The eigensolver benchmark (bench/bench_eig_mpi.c, issue 18): the MPI build's
# library, linked with ScaLAPACK (BLACS included in Debian's).
SCALAPACK_LIBS ?= -lscalapack-openmpi
.PHONY: bench-eig-mpi
bench-eig-mpi:
	@command -v $(MPICC) >/dev/null || { echo "make bench-eig-mpi needs $(MPICC) (Debian: libopenmpi-dev openmpi-bin)" >&2; exit 1; }
	@mkdir -p build-mpi && printf 'void pdsyevd_(void);\nint main(void) { pdsyevd_(); return 0; }\n' | \
	    $(MPICC) -x c - -o build-mpi/scalapack-check $(SCALAPACK_LIBS) 2>/dev/null || \
	    { echo "make bench-eig-mpi needs ScaLAPACK for Open MPI (Debian: apt-get install libscalapack-openmpi-dev; or set SCALAPACK_LIBS)" >&2; exit 1; }
	@rm -f build-mpi/scalapack-check
	+$(MAKE) BUILD=build-mpi CC=$(MPICC) XCFLAGS="$(XCFLAGS) -DTNMTL_MPI" build-mpi/bench/bench_eig_mpi
$(BUILD)/bench/bench_eig_mpi: $(BUILD)/bench/bench_eig_mpi.o $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(SCALAPACK_LIBS) $(LIBS)

# ---- the Python package (python/): extension built in place, pytest suite ----
# Debian's interpreter (its numpy, pytest and torch), whatever python3 is first on PATH.
PYTHON ?= /usr/bin/python3
.PHONY: python python-test
# The CLI objects the extension links (one implementation of a run's options,
# folders, checkpoints and evaluation); setup.py asks for them and the link flags.
# (every CLI module but the program, its subcommands and tune's search)
PY_CLI_OBJ := $(filter-out $(BUILD)/cli/main.o $(BUILD)/cli/cmd_%.o $(BUILD)/cli/tune_%.o,$(CLI_OBJ))
.PHONY: print-python-link
print-python-link:
	@echo $(STATIC) $(PY_CLI_OBJ); echo $(LIBS)
python: $(STATIC) $(PY_CLI_OBJ)
	+cd python && TNMTL_BUILD=$(BUILD) $(PYTHON) setup.py -q build_ext --inplace
python-test: python $(CLI)
	TNMTL_CLI=$(abspath $(CLI)) $(PYTHON) -m pytest -q -p no:cacheprovider python/tests
