#!/usr/bin/env bash
#
# setup.sh: install what textclf needs on Debian 12, then build and install
# the extension.  Run as root from anywhere:
#
#   tools/setup.sh              build dependencies, make, make install
#   tools/setup.sh --python     also the Python packages of the fixture and
#                               benchmark scripts (torch, numpy, sklearn,
#                               fasttext, matplotlib: large)
#   tools/setup.sh --no-build   packages only
#
# Idempotent: when dpkg says every package is installed, apt-get is not run
# at all, so a second run costs only the (incremental) build.  Extra make
# settings come from the environment, e.g. PG_CFLAGS or OPTFLAGS.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

# python3-numpy (small): test/export/check_export.py, run by the test suite
PKGS=(postgresql-15 postgresql-server-dev-15 libopenblas-dev libipc-run-perl
	build-essential clang libclang-rt-14-dev perl postgresql-15-cron
	python3-numpy)
PY_PKGS=(python3-torch python3-numpy python3-sklearn fasttext
	python3-matplotlib)

python=0
build=1
for arg in "$@"; do
	case "$arg" in
		--python) python=1 ;;
		--no-build) build=0 ;;
		-h|--help)
			sed -n '2,15p' "$0"
			exit 0
			;;
		*)
			echo "setup.sh: unrecognized option: $arg" >&2
			exit 2
			;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "setup.sh: must run as root (it installs packages and the extension)" >&2
	exit 1
fi

wanted=("${PKGS[@]}")
[ "$python" -eq 0 ] || wanted+=("${PY_PKGS[@]}")

missing=()
for p in "${wanted[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	echo "setup.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
else
	echo "setup.sh: packages already installed"
fi

if [ "$build" -eq 1 ]; then
	cd "$REPO"
	make -j"$(nproc)"
	make install
fi
