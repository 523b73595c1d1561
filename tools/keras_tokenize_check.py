#!/usr/bin/python3
#
# keras_tokenize_check.py
#	  Compare the core tokenizer with Keras's text_to_word_sequence on real
#	  English texts.
#
# Usage (from the repository root, after make core-build):
#
#	  /usr/bin/python3 tools/keras_tokenize_check.py build/test_tokenizer \
#		  [CSV.gz] [LIMIT]
#
# Takes the first LIMIT (default 500) texts of the "text" column of CSV.gz
# (default /work/shared/datasets/sms_spam_train.csv.gz) that Keras and the
# core must split alike: ASCII only, and no control characters besides tab
# and newline (Keras splits on ' ' only, the core on every white space and
# control character).  The expected tokens come from a reimplementation of
# keras.preprocessing.text.text_to_word_sequence with the default filters
# and lower=True, split=' ': lower, translate the filters to ' ', split on
# ' ', drop empty strings.  They are written to a temporary file (hex of the
# text, a tab, hex of the tokens joined by 0x1F) and checked by running the
# test binary with "--keras FILE"; its exit status is ours.
#
# Keras itself is not needed (nor installed here); the reimplementation is
# the few lines of text_to_word_sequence.

import csv
import gzip
import os
import subprocess
import sys
import tempfile

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
DEFAULT_CSV = "/work/shared/datasets/sms_spam_train.csv.gz"


def text_to_word_sequence(text, filters=KERAS_FILTERS, lower=True, split=" "):
	"""keras.preprocessing.text.text_to_word_sequence (Keras 2.x)."""
	if lower:
		text = text.lower()
	text = text.translate(str.maketrans({c: split for c in filters}))
	return [w for w in text.split(split) if w]


def comparable(text):
	"""True when Keras and the core should agree on text."""
	return all(32 <= ord(c) < 127 or c in "\t\n" for c in text)


def main():
	if len(sys.argv) < 2:
		sys.exit("usage: keras_tokenize_check.py TEST_BINARY [CSV.gz] [LIMIT]")
	binary = sys.argv[1]
	path = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_CSV
	limit = int(sys.argv[3]) if len(sys.argv) > 3 else 500

	rows = []
	with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
		for rec in csv.DictReader(f):
			text = rec["text"]
			if not comparable(text):
				continue
			toks = text_to_word_sequence(text)
			rows.append("%s\t%s\n" % (text.encode().hex(),
									  "\x1f".join(toks).encode().hex()))
			if len(rows) >= limit:
				break

	fd, tmp = tempfile.mkstemp(prefix="keras_tokens_", suffix=".txt")
	try:
		with os.fdopen(fd, "w") as out:
			out.writelines(rows)
		print("# %d texts from %s" % (len(rows), path))
		sys.stdout.flush()
		rc = subprocess.call([binary, "--keras", tmp])
	finally:
		os.unlink(tmp)
	sys.exit(rc)


if __name__ == "__main__":
	main()
