#!/usr/bin/env bash
# Builds the libFuzzer harnesses of the core into build/fuzz_<target> and
# runs each for a bounded time on a copy of the seed corpus (test/fuzz/corpus
# is never modified).  Targets: format (fuzz_format.c: the model reader, and
# the tokenizer on the same bytes) and tokenizer (fuzz_tokenizer.c: the
# tokenizer and vocabulary, word and char modes, count, lookup and
# text_to_ids).  Exits non-zero on any crash, sanitizer report, leak or
# timeout.
#
#   test/fuzz/run.sh [SECONDS]     fuzz each target for SECONDS (default 60)
#   test/fuzz/run.sh seeds         regenerate test/fuzz/corpus with make_seeds
#
# Environment: CLANG (default clang), FUZZ_MAX_LEN (default 16384),
# FUZZ_TARGETS (default "format tokenizer").  The core sources are read
# from CORE_SRCS in the Makefile.  A crash leaves its input in
# build/fuzz-artifacts/; libFuzzer's final stats (stat::number_of_executed_units)
# are printed per target.
set -eu
cd "$(dirname "$0")/../.."

CLANG=${CLANG:-clang}
BLAS_INC=/usr/include/x86_64-linux-gnu/openblas-pthread
# CORE_SRCS of the Makefile (a backslash-continued assignment)
CORE_SRCS=$(awk '/^CORE_SRCS[ \t]*=/ { f = 1 } f { print; if ($0 !~ /\\$/) exit }' Makefile |
	sed -e 's/^CORE_SRCS[ \t]*=//' -e 's/\\//g' | tr -s ' \t\n' ' ')
CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude -I$BLAS_INC -g -O1"
mkdir -p build

if [ "${1:-}" = "seeds" ]; then
	cc $CFLAGS -o build/make_seeds test/fuzz/make_seeds.c $CORE_SRCS -lopenblas -lm
	mkdir -p test/fuzz/corpus
	build/make_seeds test/fuzz/corpus
	exit 0
fi

SECONDS_TO_RUN=${1:-60}
MAX_LEN=${FUZZ_MAX_LEN:-16384}

work=build/fuzz-corpus
mkdir -p build/fuzz-artifacts
export OPENBLAS_NUM_THREADS=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for target in ${FUZZ_TARGETS:-format tokenizer}; do
	echo "# fuzz target $target for $SECONDS_TO_RUN s"
	$CLANG $CFLAGS -fno-omit-frame-pointer \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o build/fuzz_$target test/fuzz/fuzz_$target.c $CORE_SRCS -lopenblas -lm -lpthread

	rm -rf "$work"
	mkdir -p "$work"
	cp test/fuzz/corpus/* "$work"/

	build/fuzz_$target "$work" \
		-max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -timeout=10 \
		-rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
		-artifact_prefix=build/fuzz-artifacts/$target-
done
