#!/usr/bin/env bash
#
# fuzz_bounded.sh: the bounded fuzz run of the test command: every libFuzzer
# target of test/fuzz/run.sh (the model reader, the tokenizer and
# vocabulary) for FUZZ_SECONDS seconds each (default 30), under ASan and
# UBSan.  Prints one "ok" / "not ok" line per target with the number of
# inputs executed (test/sh protocol of tools/test.sh).  A crash, sanitizer
# report, leak or timeout is "not ok", with the tail of the log and the
# reproducer left in build/fuzz-artifacts/.  The longer run is
# "make fuzz FUZZ_SECONDS=N" (see README, Contributing).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1

secs=${FUZZ_SECONDS:-30}
CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "not ok - fuzz: $CLANG not found (tools/setup.sh installs clang and libclang-rt-14-dev)"
	exit 0
fi

mkdir -p build
total=0
for target in format tokenizer; do
	log=build/fuzz-$target.log
	FUZZ_TARGETS=$target test/fuzz/run.sh "$secs" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "ok - fuzz $target: $execs inputs in ${secs} s, no crash, leak or sanitizer report"
		total=$((total + execs))
	else
		echo "not ok - fuzz $target (exit status $rc, ${execs:-0} inputs): see $log"
		tail -n 40 "$log" | sed 's/^/#   /'
	fi
done
echo "# fuzzed $total inputs in total"
