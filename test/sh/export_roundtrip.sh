#!/usr/bin/env bash
#
# export_roundtrip.sh: export_model() / import_model() against an
# independent rebuild.  In a scratch database of the private cluster
# (PGHOST/PGPORT/PGUSER from tools/test.sh), train a model on the real SMS
# spam data and run test/export/check_export.py: a NumPy float64 rebuild of
# the exported model must give predict_proba's probabilities within 1e-5 on
# 1,000 real texts, and import_model(export_model(m)) must give back the
# same bytes and the same scores.  Prints "ok - ..." / "not ok - ..." lines
# (test/sh protocol of tools/test.sh).  Needs Debian's python3-numpy
# (installed by tools/setup.sh).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export TEXTCLF_DATASETS=${TEXTCLF_DATASETS:-$here/../shared/datasets}
db=textclf_export_roundtrip
py=/usr/bin/python3

if ! "$py" -c 'import numpy' 2>/dev/null; then
	echo "not ok - $py with numpy (apt-get install python3-numpy)"
	exit 1
fi
if ! psql -X -q -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
	! psql -X -q -d "$db" -c "CREATE EXTENSION textclf" >/dev/null; then
	echo "not ok - create database $db with the textclf extension"
	exit 1
fi
PGDATABASE=$db "$py" "$here/test/export/check_export.py"
rc=$?
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null
exit $rc
