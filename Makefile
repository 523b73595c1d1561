# textclf: PGXS build of the extension, plus the pure-C core's own tests.
#
#   make / make install          build and install the extension
#   make installcheck            pg_regress tests against a running server
#   make prove_installcheck      TAP tests (test/t)
#   make core-check              core unit tests with plain cc (no pg_config
#                                needed), under AddressSanitizer and UBSan
#   make harness                 build/textclf-csv, the CSV training harness

EXTENSION = textclf
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = textclf
CORE_SRCS = src/core/common.c src/core/unicode_data.c src/core/tokenizer.c \
	src/core/blas.c src/core/embedding.c src/core/lstm.c src/core/dense.c \
	src/core/loss.c src/core/adam.c src/core/model.c src/core/format.c \
	src/core/trainer.c src/core/kernels.c src/core/metrics.c
PG_SRCS = $(sort $(wildcard src/pg/*.c))
OBJS = $(CORE_SRCS:.c=.o) $(PG_SRCS:.c=.o)

DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*--*.sql))

BLAS_INC = /usr/include/x86_64-linux-gnu/openblas-pthread
# The server build opens OpenBLAS lazily with dlopen (see src/core/blas.c),
# so that a preloaded textclf never starts BLAS threads in the postmaster.
PG_CPPFLAGS = -Iinclude -Isrc/pg -I$(BLAS_INC) -DTC_BLAS_DLOPEN
SHLIB_LINK = -lm -ldl

# Portable by default; override for a tuned build (OPTFLAGS=-march=native).
OPTFLAGS =
# Hot loops start on fixed boundaries, so that an unrelated change that
# moves code around does not move the kernels' speed by a few percent
# (measured: single-row inference 4,450 vs 4,750 rows/s from placement alone).
ALIGNFLAGS = -falign-functions=64 -falign-loops=32
PG_CFLAGS += $(OPTFLAGS) $(ALIGNFLAGS) -fno-math-errno -fno-trapping-math

TESTS = $(sort $(wildcard sql/*.sql))
REGRESS = $(patsubst sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

EXTRA_CLEAN = build

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: rebuild every object when a
# header changes, so that no object sees an old struct layout.
$(OBJS): $(wildcard include/textclf/*.h src/pg/*.h src/core/*.h)

$(EXTENSION)--$(EXTVERSION).sql: $(EXTENSION).sql $(EXTENSION).control
	cp $< $@

prove_installcheck:
	rm -rf $(CURDIR)/tmp_check
	cd $(srcdir) && TESTDIR='$(CURDIR)' PATH="$(bindir):$$PATH" PGPORT='6$(DEF_PGPORT)' \
	  PG_REGRESS='$(top_builddir)/src/test/regress/pg_regress' \
	  $(PROVE) $(PG_PROVE_FLAGS) $(PROVE_FLAGS) $(if $(PROVE_TESTS),$(PROVE_TESTS),test/t/*.pl)

# ---- the core, built with plain cc: no PostgreSQL headers or libraries ----

CORE_CC ?= cc
CORE_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -I$(BLAS_INC) -g
CORE_SAN = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
CORE_LIBS = -lopenblas -lm
CORE_TESTS = $(patsubst test/core/%.c,build/%,$(sort $(wildcard test/core/test_*.c)))
CORE_HDRS = $(wildcard include/textclf/*.h) $(wildcard test/core/*.h)

# a test that no longer builds must not leave its old binary behind
build/%: test/core/%.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p build
	@rm -f $@
	$(CORE_CC) $(CORE_CFLAGS) $(CORE_SAN) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

build/textclf-csv: test/harness/textclf_csv.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p build
	$(CORE_CC) $(CORE_CFLAGS) -O2 $(OPTFLAGS) $(ALIGNFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

harness: build/textclf-csv

# micro-benchmark of the numerical core (optimized, not sanitized)
build/bench_core: test/bench/bench_core.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p build
	$(CORE_CC) $(CORE_CFLAGS) -O2 -fno-math-errno -fno-trapping-math $(OPTFLAGS) $(ALIGNFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS) -lpthread

bench-core: build/bench_core
	build/bench_core

core-build: $(CORE_TESTS)

# Build what builds (-k), then run every test: one that failed to build is
# missing and counts as a failure, without hiding the results of the others.
core-check:
	@$(MAKE) --no-print-directory -k core-build || true
	@test/run_core_tests.sh $(CORE_TESTS)

# libFuzzer run of the core's model reader (FUZZ_SECONDS, default 60)
fuzz:
	test/fuzz/run.sh $(FUZZ_SECONDS)

.PHONY: core-check core-build harness bench-core prove_installcheck fuzz
