#!/usr/bin/python3
#
# gen_unicode.py
#	  Generate src/core/unicode_data.c: the Unicode tables of the tokenizer.
#
# Run with Debian's Python from the repository root:
#
#	  /usr/bin/python3 tools/gen_unicode.py
#
# It writes two tables and the two functions that search them:
#	- the simple lower-case mapping (one code point -> one code point) as
#	  sorted runs "lo..hi (every stride-th code point) maps to cp + delta",
#	  read by tc_unicode_tolower() with a binary search after an ASCII fast
#	  path;
#	- the non-ASCII code point classes the word splitter needs (White_Space,
#	  control characters, and the Han / kana / Hangul code points that are
#	  tokens of their own) as sorted, disjoint ranges, read by
#	  tc_unicode_class().
# The lower-case mapping comes from Python's unicodedata (str.lower() when it
# yields a single code point; the few code points whose full lower-case form
# is longer use their simple mapping from UnicodeData.txt, listed below).
# White_Space and the script blocks are not exposed by unicodedata, so they
# are listed here from PropList.txt and Blocks.txt of Unicode 14.
#
# The script checks every table it writes against the mapping it came from
# over all of U+0000..U+10FFFF before writing.

import os
import sys
import unicodedata

UNICODE_VERSION = "14.0.0"

# Code points whose full lower-case mapping has several code points, with
# their simple (one code point) mapping from UnicodeData.txt field 13.
SIMPLE_LOWER_EXCEPTIONS = {
	0x0130: 0x0069,		# LATIN CAPITAL LETTER I WITH DOT ABOVE -> i
}

# PropList.txt White_Space (Unicode 14), non-ASCII part.  ASCII is handled
# by the tokenizer's own byte table.
WHITE_SPACE = [
	(0x0085, 0x0085), (0x00A0, 0x00A0), (0x1680, 0x1680),
	(0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F),
	(0x205F, 0x205F), (0x3000, 0x3000),
]

# Blocks whose every code point is a token of its own (Blocks.txt).
SOLO_BLOCKS = [
	(0x1100, 0x11FF),		# Hangul Jamo
	(0x3040, 0x309F),		# Hiragana
	(0x30A0, 0x30FF),		# Katakana
	(0x3130, 0x318F),		# Hangul Compatibility Jamo
	(0x31F0, 0x31FF),		# Katakana Phonetic Extensions
	(0x3400, 0x4DBF),		# CJK Unified Ideographs Extension A
	(0x4E00, 0x9FFF),		# CJK Unified Ideographs
	(0xA960, 0xA97F),		# Hangul Jamo Extended-A
	(0xAC00, 0xD7AF),		# Hangul Syllables
	(0xD7B0, 0xD7FF),		# Hangul Jamo Extended-B
	(0xF900, 0xFAFF),		# CJK Compatibility Ideographs
	(0xFF65, 0xFF9F),		# Halfwidth Katakana
	(0xFFA0, 0xFFDC),		# Halfwidth Hangul
	(0x1AFF0, 0x1AFFF),		# Kana Extended-B
	(0x1B000, 0x1B0FF),		# Kana Supplement
	(0x1B100, 0x1B12F),		# Kana Extended-A
	(0x1B130, 0x1B16F),		# Small Kana Extension
	(0x20000, 0x2A6DF),		# CJK Unified Ideographs Extension B
	(0x2A700, 0x2B73F),		# CJK Unified Ideographs Extension C
	(0x2B740, 0x2B81F),		# CJK Unified Ideographs Extension D
	(0x2B820, 0x2CEAF),		# CJK Unified Ideographs Extension E
	(0x2CEB0, 0x2EBEF),		# CJK Unified Ideographs Extension F
	(0x2F800, 0x2FA1F),		# CJK Compatibility Ideographs Supplement
	(0x30000, 0x3134F),		# CJK Unified Ideographs Extension G
]

# Class numbers: must match TcUnicodeClass in src/core/unicode_data.h.
UC_WORD, UC_SPACE, UC_CONTROL, UC_SOLO = 0, 1, 2, 3
UC_NAMES = {UC_SPACE: "TC_UC_SPACE", UC_CONTROL: "TC_UC_CONTROL",
			UC_SOLO: "TC_UC_SOLO"}

MAX_CP = 0x10FFFF


def lower_map():
	"""Return {cp: lower} for every code point whose simple lower differs."""
	m = {}
	for cp in range(MAX_CP + 1):
		if 0xD800 <= cp <= 0xDFFF:
			continue
		low = chr(cp).lower()
		if len(low) == 1:
			if ord(low) != cp:
				m[cp] = ord(low)
		elif cp in SIMPLE_LOWER_EXCEPTIONS:
			m[cp] = SIMPLE_LOWER_EXCEPTIONS[cp]
		else:
			sys.exit("gen_unicode.py: U+%04X lowers to %d code points and has "
					 "no simple mapping listed" % (cp, len(low)))
	return m


def lower_runs(m):
	"""Group the mapping into runs (lo, hi, delta, stride)."""
	runs = []
	for cp in sorted(m):
		delta = m[cp] - cp
		if runs:
			lo, hi, d, stride = runs[-1]
			if d == delta:
				if stride == 1 and cp == hi + 1:
					runs[-1] = (lo, cp, d, 1)
					continue
				# a stride-2 run may only skip code points that map to
				# themselves, so runs never overlap
				if (stride == 2 or lo == hi) and cp == hi + 2 \
						and (hi + 1) not in m:
					runs[-1] = (lo, cp, d, 2)
					continue
		runs.append((cp, cp, delta, 1))
	return [(lo, hi, d, 1 if lo == hi else s) for lo, hi, d, s in runs]


def class_ranges():
	"""Sorted disjoint (lo, hi, class) ranges of non-word code points >= 0x80."""
	cls = {}
	for cp in range(0x80, MAX_CP + 1):
		if unicodedata.category(chr(cp)) == "Cc":
			cls[cp] = UC_CONTROL
	for lo, hi in WHITE_SPACE:
		for cp in range(lo, hi + 1):
			cls[cp] = UC_SPACE
	for lo, hi in SOLO_BLOCKS:
		for cp in range(lo, hi + 1):
			assert cp not in cls, "U+%04X in two classes" % cp
			cls[cp] = UC_SOLO
	# sanity: our White_Space agrees with str.isspace() outside ASCII
	for cp in range(0x80, MAX_CP + 1):
		if chr(cp).isspace() != (cls.get(cp) == UC_SPACE):
			sys.exit("gen_unicode.py: White_Space list disagrees with "
					 "str.isspace() at U+%04X" % cp)
	ranges = []
	for cp in sorted(cls):
		c = cls[cp]
		if ranges and ranges[-1][2] == c and ranges[-1][1] == cp - 1:
			ranges[-1] = (ranges[-1][0], cp, c)
		else:
			ranges.append((cp, cp, c))
	return ranges, cls


def check_runs(runs, m):
	"""Simulate the C lookup over every code point."""
	table = {}
	for lo, hi, d, s in runs:
		for cp in range(lo, hi + 1, s):
			assert cp not in table
			table[cp] = cp + d
	assert table == m, "lower-case runs do not reproduce the mapping"
	for i in range(1, len(runs)):
		assert runs[i - 1][1] < runs[i][0], "runs overlap"


def main():
	if unicodedata.unidata_version != UNICODE_VERSION:
		sys.exit("gen_unicode.py: need Unicode %s tables, Python has %s" %
				 (UNICODE_VERSION, unicodedata.unidata_version))
	m = lower_map()
	runs = lower_runs(m)
	check_runs(runs, m)
	ranges, _ = class_ranges()
	for lo, hi, d, s in runs:
		assert 0 <= lo + d <= MAX_CP and -0x7FFFFFFF < d < 0x7FFFFFFF

	out = []
	w = out.append
	w("/*")
	w(" * unicode_data.c")
	w(" *\t  Unicode %s tables of the tokenizer: simple lower-case mapping and" %
	  UNICODE_VERSION)
	w(" *\t  the code point classes of the word splitter.")
	w(" *")
	w(" * generated by tools/gen_unicode.py; do not edit.")
	w(" *")
	w(" * The tables are constant data; nothing here allocates.  Case mapping is")
	w(" * the simple (one to one) mapping, without locale or context (no final")
	w(" * sigma rule).")
	w(" */")
	w("#include \"unicode_data.h\"")
	w("")
	w("/* Code points lo..hi, every stride-th from lo, lower-case to cp + delta. */")
	w("typedef struct TcLowerRun")
	w("{")
	w("\tuint32_t\tlo;")
	w("\tuint32_t\thi;")
	w("\tint32_t\t\tdelta;")
	w("\tuint32_t\tstride;\t\t/* 1, or 2 for alternating upper/lower */")
	w("} TcLowerRun;")
	w("")
	w("/* Non-ASCII code points lo..hi are of class cls; all others are words. */")
	w("typedef struct TcClassRange")
	w("{")
	w("\tuint32_t\tlo;")
	w("\tuint32_t\thi;")
	w("\tuint32_t\tcls;\t\t\t/* TcUnicodeClass */")
	w("} TcClassRange;")
	w("")
	w("/* %d runs covering %d mapped code points */" % (len(runs), len(m)))
	w("static const TcLowerRun tc_lower_runs[] = {")
	for lo, hi, d, s in runs:
		w("\t{0x%04X, 0x%04X, %d, %d}," % (lo, hi, d, s))
	w("};")
	w("")
	w("static const TcClassRange tc_class_ranges[] = {")
	for lo, hi, c in ranges:
		w("\t{0x%04X, 0x%04X, %s}," % (lo, hi, UC_NAMES[c]))
	w("};")
	w("")
	w("#define TC_LOWER_RUNS (sizeof(tc_lower_runs) / sizeof(tc_lower_runs[0]))")
	w("#define TC_CLASS_RANGES (sizeof(tc_class_ranges) / sizeof(tc_class_ranges[0]))")
	w("")
	w("/* Map a code point to its simple lower-case form (Unicode %s). */" %
	  UNICODE_VERSION)
	w("uint32_t")
	w("tc_unicode_tolower(uint32_t cp)")
	w("{")
	w("\tsize_t\t\tlo = 0;")
	w("\tsize_t\t\thi = TC_LOWER_RUNS;")
	w("")
	w("\tif (cp < 0x80)")
	w("\t\treturn (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;")
	w("\tif (cp < tc_lower_runs[0].lo || cp > tc_lower_runs[TC_LOWER_RUNS - 1].hi)")
	w("\t\treturn cp;")
	w("\t/* find the last run with lo <= cp */")
	w("\twhile (hi - lo > 1)")
	w("\t{")
	w("\t\tsize_t\t\tmid = lo + (hi - lo) / 2;")
	w("")
	w("\t\tif (tc_lower_runs[mid].lo <= cp)")
	w("\t\t\tlo = mid;")
	w("\t\telse")
	w("\t\t\thi = mid;")
	w("\t}")
	w("\tif (cp <= tc_lower_runs[lo].hi &&")
	w("\t\t(cp - tc_lower_runs[lo].lo) % tc_lower_runs[lo].stride == 0)")
	w("\t\treturn (uint32_t) ((int64_t) cp + tc_lower_runs[lo].delta);")
	w("\treturn cp;")
	w("}")
	w("")
	w("/* Class of a non-ASCII code point (cp >= 0x80) for the word splitter. */")
	w("TcUnicodeClass")
	w("tc_unicode_class(uint32_t cp)")
	w("{")
	w("\tsize_t\t\tlo = 0;")
	w("\tsize_t\t\thi = TC_CLASS_RANGES;")
	w("")
	w("\tif (cp < tc_class_ranges[0].lo || cp > tc_class_ranges[TC_CLASS_RANGES - 1].hi)")
	w("\t\treturn TC_UC_WORD;")
	w("\twhile (hi - lo > 1)")
	w("\t{")
	w("\t\tsize_t\t\tmid = lo + (hi - lo) / 2;")
	w("")
	w("\t\tif (tc_class_ranges[mid].lo <= cp)")
	w("\t\t\tlo = mid;")
	w("\t\telse")
	w("\t\t\thi = mid;")
	w("\t}")
	w("\tif (cp <= tc_class_ranges[lo].hi)")
	w("\t\treturn (TcUnicodeClass) tc_class_ranges[lo].cls;")
	w("\treturn TC_UC_WORD;")
	w("}")

	root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
	path = os.path.join(root, "src", "core", "unicode_data.c")
	with open(path, "w", encoding="ascii") as f:
		f.write("\n".join(out) + "\n")
	print("wrote %s: %d lower-case runs (%d code points), %d class ranges" %
		  (path, len(runs), len(m), len(ranges)))


if __name__ == "__main__":
	main()
