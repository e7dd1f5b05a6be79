# tnmtl - build the library, the CLI, the tests and the benchmarks.
#
#   make                 library (static + shared), CLI, tests, benchmarks
#   make test            build and run the test suite
#   make install PREFIX=/usr/local
#   make SANITIZE=1 test build and test with AddressSanitizer + UBSan (build-asan/)
#   make fuzz            libFuzzer harnesses tests/fuzz/fuzz_*.c (clang, build-fuzz/)
#   make fuzz-smoke      run each harness briefly over its corpus; fails on a finding
#
# Every src/*.c is part of the library, every cli/*.c part of the CLI,
# every tests/test_*.c one test program, every bench/bench_*.c one benchmark.

PREFIX  ?= /usr/local
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
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_UOBJ := $(TEST_UTIL:%.c=$(BUILD)/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

STATIC := $(BUILD)/libtnmtl.a
SHARED := $(BUILD)/libtnmtl.so
CLI    := $(BUILD)/tnmtl

.PHONY: all lib cli tests bench test install clean fuzz fuzz-smoke
all: lib cli tests bench
lib: $(STATIC) $(SHARED)
cli: $(CLI)
tests: $(TEST_BIN)
bench: $(BENCH_BIN)

$(BUILD)/%.o: %.c $(wildcard include/tnmtl/*.h include/*.h src/*.h cli/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LIBS)

$(CLI): $(CLI_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UOBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_UOBJ) $(STATIC) $(LIBS) $(TESTLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)

# Tests run from the repository root; they find shared data in ../shared/data
# (override with TNMTL_SHARED_DATA) and the CLI in $(CLI) (TNMTL_CLI).
test: $(TEST_BIN) $(CLI)
	@TNMTL_CLI=$(abspath $(CLI)) scripts/run-tests.sh $(TEST_BIN)

install: lib cli
	install -d $(DESTDIR)$(PREFIX)/include/tnmtl $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/tnmtl.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/tnmtl/*.h $(DESTDIR)$(PREFIX)/include/tnmtl/
	install -m 644 $(STATIC) $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' scripts/tnmtl.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tnmtl.pc

# ---- fuzzing: clang + libFuzzer + ASan/UBSan, everything in build-fuzz/ ----
# Each tests/fuzz/fuzz_NAME.c is one harness; its seed corpus is
# tests/fuzz/corpus/NAME/ and the inputs of fixed findings tests/fuzz/regress/NAME/.
FUZZ_CC    ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_FLAGS := -std=c11 $(WARN) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined -DTNMTL_PORTABLE_KERNELS
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
	rm -rf build build-asan build-fuzz
