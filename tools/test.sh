#!/usr/bin/env bash
#
# test.sh: THE test command of textclf.  As root on Debian 12:
#
#   tools/test.sh               setup (packages, make, make install), then
#                               every test suite
#   tools/test.sh --no-setup    skip tools/setup.sh: no apt, no build of the
#                               extension, no make install (developers who
#                               ran "make && sudo make install" themselves)
#
# Suites, in order, all of them run even when an earlier one fails:
#   1. make core-check      C unit tests of src/core under ASan + UBSan
#   2. make installcheck    pg_regress (sql/, expected/) against a private
#                           cluster started by tools/pgcluster.sh
#   3. TAP (test/t/*.pl)    make prove_installcheck, run as the postgres OS
#                           user in a copy of the tree it owns (the TAP
#                           tests initdb their own clusters, which root
#                           cannot do, in a directory the tree's owner may
#                           not let postgres write)
#   4. test/sh/*.sh         extra shell tests, given PGHOST/PGPORT/PGUSER of
#                           the private cluster; they print ok/not ok lines
#
# The last line of output is "N passed, N failed": core checks, pg_regress
# test files, TAP assertions and shell-test lines.  A suite that breaks
# without reporting a failure (a build error, a crash, a TAP script that
# dies) counts as one failure.  Exits non-zero when anything failed or
# nothing ran.  The private cluster is stopped on exit, whatever happens;
# it is deleted after a clean run and kept (with its log) after a failure.
#
# Environment: TEXTCLF_DATASETS (default: ../shared/datasets beside the
# checkout) is exported to TAP and shell tests.  PG_CFLAGS, OPTFLAGS and
# MAKEFLAGS reach every make (e.g. MAKEFLAGS=CORE_SRCS=... for a partial
# core).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO" || exit 1

setup=1
for arg in "$@"; do
	case "$arg" in
		--no-setup) setup=0 ;;
		-h|--help)
			sed -n '2,34p' "$0"
			exit 0
			;;
		*)
			echo "test.sh: unrecognized option: $arg" >&2
			exit 2
			;;
	esac
done

if [ "$(id -u)" -eq 0 ]; then
	PGOSUSER=postgres
else
	PGOSUSER=$(id -un)
	if [ "$setup" -eq 1 ]; then
		echo "test.sh: run as root (sudo tools/test.sh), or use --no-setup" >&2
		exit 2
	fi
fi

PGCLUSTER=$REPO/tools/pgcluster.sh
PGDIR=$("$PGCLUSTER" dir)
TAPDIR=$PGDIR/tap

passed=0
failed=0
summary=()
cluster_up=0
cleaned=0

# run a command as the server's OS user
as_pg()
{
	if [ "$(id -un)" = "$PGOSUSER" ]; then
		"$@"
	else
		(cd / && runuser -u "$PGOSUSER" -- "$@")
	fi
}

# record the result of one suite
tally()
{
	passed=$((passed + $2))
	failed=$((failed + $3))
	summary+=("$(printf '%-12s %4d passed, %d failed' "$1:" "$2" "$3")")
	echo "# $1: $2 passed, $3 failed"
}

banner()
{
	echo
	echo "########## $* ##########"
}

# stop everything we started; idempotent, also run from the EXIT trap
cleanup()
{
	local pidfile
	[ "$cleaned" -eq 0 ] || return 0
	cleaned=1
	# postmasters left behind by an interrupted TAP run
	for pidfile in "$TAPDIR"/tmp_check/t_*/pgdata/postmaster.pid; do
		[ -f "$pidfile" ] || continue
		as_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$(dirname "$pidfile")" \
			-m immediate -s stop >/dev/null 2>&1 || true
	done
	if [ "$cluster_up" -eq 1 ]; then
		"$PGCLUSTER" stop </dev/null || true
		cluster_up=0
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- 0. setup: packages, build, install ----

setup_ok=1
if [ "$setup" -eq 1 ]; then
	banner "setup: tools/setup.sh"
	if ! "$REPO/tools/setup.sh" </dev/null; then
		echo "not ok - tools/setup.sh (packages, build or install) failed"
		tally setup 0 1
		setup_ok=0
	fi
else
	so=$(pg_config --pkglibdir 2>/dev/null)/textclf.so
	if [ ! -f "$so" ]; then
		echo "# warning: $so is not installed: run make && make install"
	elif [ -n "$(find src include textclf.sql textclf.control -newer "$so" -print -quit 2>/dev/null)" ]; then
		echo "# warning: sources are newer than the installed $so: run make && make install"
	fi
fi

# ---- 1. core unit tests ----

banner "core: make core-check"
rm -f build/core-results.txt
make core-check </dev/null
rc=$?
cp=0
cf=0
if [ -s build/core-results.txt ]; then
	read -r cp cf <build/core-results.txt
fi
if [ "$rc" -ne 0 ] && [ "$cf" -eq 0 ]; then
	echo "not ok - make core-check exited with status $rc"
	cf=1
fi
tally core "$cp" "$cf"

# ---- the private cluster ----

if [ "$setup_ok" -eq 1 ]; then
	banner "private cluster: tools/pgcluster.sh"
	"$PGCLUSTER" destroy </dev/null
	if pgenv=$("$PGCLUSTER" start </dev/null); then
		cluster_up=1
		eval "$pgenv"
		echo "$pgenv"
	else
		echo "not ok - could not start the private cluster"
		tally cluster 0 1
	fi
fi

# ---- 2. pg_regress ----

if [ "$cluster_up" -eq 1 ]; then
	banner "pg_regress: make installcheck"
	rm -f regression.diffs regression.out
	out=$(make installcheck </dev/null 2>&1)
	rc=$?
	printf '%s\n' "$out"
	rp=$(printf '%s\n' "$out" | grep -cE '\.\.\. ok( |$)')
	rf=$(printf '%s\n' "$out" | grep -ciE '\.\.\. failed')
	if [ -s regression.diffs ] && [ "$rc" -ne 0 ]; then
		echo "---------- regression.diffs ----------"
		cat regression.diffs
		echo "--------------------------------------"
	fi
	if [ "$rc" -ne 0 ] && [ "$rf" -eq 0 ]; then
		echo "not ok - make installcheck exited with status $rc"
		rf=1
	fi
	tally pg_regress "$rp" "$rf"
fi

# ---- 3. TAP ----

DATASETS=${TEXTCLF_DATASETS:-$REPO/../shared/datasets}
if [ -d "$DATASETS" ]; then
	DATASETS=$(cd "$DATASETS" && pwd -P)
else
	echo "# warning: no datasets at $DATASETS"
fi

shopt -s nullglob
taps=(test/t/*.pl)
shells=(test/sh/*.sh)
shopt -u nullglob

if [ "${#taps[@]}" -eq 0 ]; then
	banner "TAP: no test/t/*.pl"
	tally TAP 0 0
elif [ "$setup_ok" -eq 1 ]; then
	banner "TAP: make prove_installcheck as $PGOSUSER in $TAPDIR"
	tapdata=$DATASETS
	as_pg rm -rf "$TAPDIR"
	as_pg mkdir -p "$TAPDIR"
	tar -C "$REPO" --exclude=./.git --exclude=./build --exclude=./results \
		--exclude=./tmp_check -cf - . | as_pg tar -C "$TAPDIR" -xf -
	if [ -d "$DATASETS" ] && ! as_pg test -r "$DATASETS/README.md" -a -x "$DATASETS"; then
		echo "# $PGOSUSER cannot read $DATASETS: copying it to $PGDIR/datasets"
		as_pg rm -rf "$PGDIR/datasets"
		as_pg mkdir -p "$PGDIR/datasets"
		tar -C "$DATASETS" -cf - . | as_pg tar -C "$PGDIR/datasets" -xf -
		tapdata=$PGDIR/datasets
	fi
	out=$(as_pg env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
		TEXTCLF_DATASETS="$tapdata" \
		make -C "$TAPDIR" prove_installcheck PROVE_FLAGS=-v </dev/null 2>&1)
	rc=$?
	printf '%s\n' "$out"
	# per test file: its "ok N" / "not ok N" lines; a file prove calls
	# failed (Dubious, bad plan, died) without a "not ok" line counts once
	res=$(printf '%s\n' "$out" | awk '
		function flush() {
			if (cur != "") {
				f = notok
				if (bad && f == 0)
					f = 1
				P += ok; F += f
				if (f) badfiles = badfiles " " cur
			}
			cur = ""
		}
		/^Test Summary Report/ || /^Files=[0-9]+/ { flush(); done = 1 }
		done { next }
		/^[^ #].*\.pl \.+ ?$/ { flush(); cur = $1; ok = 0; notok = 0; bad = 0; next }
		/^not ok [0-9]+/ { if ($0 ~ /# *TODO/) ok++; else notok++; next }
		/^ok [0-9]+/ { ok++; next }
		/^Dubious/ || /^Failed [0-9]+\/[0-9]+ subtests/ || /^No subtests run/ || /^Parse errors/ { bad = 1 }
		END { flush(); printf "%d %d%s\n", P, F, badfiles }')
	read -r tp tf badfiles <<<"$res"
	for f in $badfiles; do
		log=$TAPDIR/tmp_check/log/regress_log_$(basename "$f" .pl)
		if [ -f "$log" ]; then
			echo "---------- tail of $log ----------"
			tail -n 60 "$log"
		fi
	done
	if [ "$rc" -ne 0 ] && [ "$tf" -eq 0 ]; then
		echo "not ok - make prove_installcheck exited with status $rc"
		tf=1
	fi
	tally TAP "$tp" "$tf"
fi

# ---- 4. shell tests ----

if [ "${#shells[@]}" -gt 0 ]; then
	banner "shell tests: test/sh/*.sh"
	sp=0
	sf=0
	for t in "${shells[@]}"; do
		echo "# running $t"
		out=$(TEXTCLF_DATASETS="$DATASETS" TEXTCLF_REPO="$REPO" \
			bash "$t" </dev/null 2>&1)
		rc=$?
		printf '%s\n' "$out"
		p=$(printf '%s\n' "$out" | grep -c '^ok ')
		f=$(printf '%s\n' "$out" | grep -c '^not ok ')
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "not ok - $t exited with status $rc"
			f=1
		fi
		sp=$((sp + p))
		sf=$((sf + f))
	done
	tally shell "$sp" "$sf"
fi

# ---- summary ----

cleanup
if [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then
	"$PGCLUSTER" destroy </dev/null >/dev/null 2>&1
	as_pg rm -rf "$TAPDIR" 2>/dev/null
elif [ -d "$PGDIR" ]; then
	echo "# kept for inspection: $PGDIR (server.log, tap/tmp_check/log)"
fi

banner "summary"
for line in "${summary[@]}"; do
	echo "# $line"
done
[ "$passed" -gt 0 ] || echo "# nothing ran"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
