#!/usr/bin/env bash
# The CSV harness trains the core on the real SMS spam data with the
# reference settings (vocab 10,000, max_len 100, embedding 16, LSTM 128,
# batch 32, 3 epochs) and must reach 0.97 accuracy on the test split.
# Prints "ok - ..." / "not ok - ..." lines.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
data=${TEXTCLF_DATASETS:-$here/../shared/datasets}
bin=$here/build/textclf-csv
if [ ! -x "$bin" ]; then
	make -C "$here" -s harness >/dev/null || { echo "not ok - build the CSV harness"; exit 1; }
fi
if [ ! -f "$data/sms_spam_train.csv.gz" ]; then
	echo "not ok - sms_spam dataset not found in $data"
	exit 1
fi
out=$("$bin" --train "$data/sms_spam_train.csv.gz" --test "$data/sms_spam_test.csv.gz" \
	--epochs 3 --vocab 10000 --max-len 100 --embed 16 --hidden 128 --batch 32 2>&1)
echo "$out" | sed 's/^/# /'
acc=$(echo "$out" | awk '/^test_accuracy/ {print $2}')
if [ -n "$acc" ] && awk -v a="$acc" 'BEGIN {exit !(a >= 0.97)}'; then
	echo "ok - harness sms_spam test accuracy $acc >= 0.97"
else
	echo "not ok - harness sms_spam test accuracy ${acc:-none} >= 0.97"
	exit 1
fi
