#!/usr/bin/env bash
# Builds the libFuzzer harness for the core's model reader into
# build/fuzz_format and runs it for a bounded time on a copy of the seed
# corpus (test/fuzz/corpus is never modified).  Exits non-zero on any crash,
# sanitizer report, leak or timeout.
#
#   test/fuzz/run.sh [SECONDS]     fuzz for SECONDS (default 60)
#   test/fuzz/run.sh seeds         regenerate test/fuzz/corpus with make_seeds
#
# Environment: CLANG (default clang), FUZZ_MAX_LEN (default 16384).
# A crash leaves its input in build/fuzz-artifacts/.
set -eu
cd "$(dirname "$0")/../.."

CLANG=${CLANG:-clang}
BLAS_INC=/usr/include/x86_64-linux-gnu/openblas-pthread
CORE_SRCS="src/core/common.c src/core/unicode_data.c src/core/tokenizer.c \
	src/core/blas.c src/core/embedding.c src/core/lstm.c src/core/dense.c \
	src/core/loss.c src/core/adam.c src/core/model.c src/core/format.c"
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

$CLANG $CFLAGS -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-o build/fuzz_format test/fuzz/fuzz_format.c $CORE_SRCS -lopenblas -lm

work=build/fuzz-corpus
rm -rf "$work"
mkdir -p "$work" build/fuzz-artifacts
cp test/fuzz/corpus/* "$work"/

export OPENBLAS_NUM_THREADS=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
build/fuzz_format "$work" \
	-max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -timeout=10 \
	-rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
	-artifact_prefix=build/fuzz-artifacts/
