#!/usr/bin/env bash
#
# layering.sh: the ML core (src/core, include/textclf) must not depend on
# PostgreSQL: no server headers, no palloc/ereport/elog calls, no printing
# or exiting.  Prints one "ok" / "not ok" line per rule (test/sh protocol of
# tools/test.sh).  Comments may mention the words; only code is checked, so
# comments are stripped first (roughly: /* ... */ blocks).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1

files=$(ls src/core/*.c src/core/*.h include/textclf/*.h 2>/dev/null)

# code of the core with /* */ comments removed, as "file:line: text"
code()
{
	for f in $files; do
		perl -0777 -pe 's{/\*.*?\*/}{ my $c = $&; $c =~ s/[^\n]//g; $c }gse' "$f" |
			awk -v f="$f" '{ print f ":" NR ": " $0 }'
	done
}

# check NAME REGEX: ok when no code line matches
check()
{
	local hits
	hits=$(code | grep -E "$2")
	if [ -z "$hits" ]; then
		echo "ok - core has no $1"
	else
		echo "not ok - core has no $1"
		printf '%s\n' "$hits" | sed 's/^/#   /'
	fi
}

check "PostgreSQL headers" '#[[:space:]]*include[[:space:]]*[<"](postgres|postgres_ext|fmgr|miscadmin|utils/|access/|catalog/|executor/|nodes/)'
check "palloc/ereport/elog calls" '\b(palloc0?|repalloc|pfree|ereport|elog|MemoryContext[A-Za-z]*)[[:space:]]*\('
check "printing, exiting or aborting" '\b(printf|fprintf|puts|perror|exit|_Exit|abort|longjmp|assert)[[:space:]]*\('
