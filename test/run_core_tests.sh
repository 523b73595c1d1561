#!/usr/bin/env bash
# Runs each core test binary given as an argument, echoes its output, and
# sums the "ok - " / "not ok - " lines.  A binary that exits non-zero without
# printing a failure (a sanitizer abort, a crash) counts as one failure.
# Writes the totals to build/core-results.txt and exits non-zero on failure.
set -u
passed=0
failed=0
for t in "$@"; do
	echo "# running $t"
	out=$("$t" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | grep -c '^ok - ')
	f=$(printf '%s\n' "$out" | grep -c '^not ok - ')
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $t exited with status $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done
mkdir -p build
echo "$passed $failed" > build/core-results.txt
echo "core: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
