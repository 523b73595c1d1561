/*
 * test_tokenizer.c
 *	  Unit tests of the tokenizer, the Unicode tables and the vocabulary.
 *
 * Checks Keras-compatible word splitting on English (expected tokens were
 * computed with a Python reimplementation of Keras's
 * text_to_word_sequence: lower, translate filters to ' ', split(' '), drop
 * empty), Unicode lower-casing (also exhaustively, against a checksum of
 * Python's mapping), Unicode white space, CJK / kana / Hangul splitting,
 * emoji, long words, invalid UTF-8 (random fuzzing), char mode, and the
 * vocabulary: ordering, vocab_size cut, OOV, text_to_ids truncation,
 * loading from words, growth to 200,000 words and allocation failures.
 *
 * Emoji are ordinary word characters: a run of emoji (with variation
 * selectors and zero-width joiners) is one word, and an emoji glued to
 * letters is part of that word ("I ❤️ 😀😀" -> i, ❤️, 😀😀).
 *
 * With "--keras FILE" it instead compares against the expectations written
 * by tools/keras_tokenize_check.py (one text per line: hex of the text, a
 * tab, hex of the tokens joined by 0x1F).
 *
 * Memory: everything comes from malloc via tc_test_alloc or the failing
 * allocator below and is freed before exit (LeakSanitizer checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tc_test.h"
#include "textclf/tokenizer.h"

/* Tokens of one text joined by '|', plus validity checks on every token. */
typedef struct Collect
{
	char		out[1 << 16];
	size_t		olen;
	size_t		ntok;
	bool		overflow;
	bool		bad;			/* empty, too long or invalid UTF-8 token */
} Collect;

/* Strict UTF-8 check, written independently of the tokenizer's decoder. */
static bool
valid_utf8(const unsigned char *s, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		uint32_t	cp;
		size_t		k;

		if (s[i] < 0x80)
		{
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0)
		{
			k = 1;
			cp = s[i] & 0x1F;
		}
		else if ((s[i] & 0xF0) == 0xE0)
		{
			k = 2;
			cp = s[i] & 0x0F;
		}
		else if ((s[i] & 0xF8) == 0xF0)
		{
			k = 3;
			cp = s[i] & 0x07;
		}
		else
			return false;
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++)
		{
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
			(k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
			(cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k + 1;
	}
	return true;
}

/* Token callback: append tok to c->out and check it. */
static void
collect_fn(void *arg, const char *tok, size_t len)
{
	Collect    *c = arg;

	if (len == 0 || len > TC_MAX_TOKEN_BYTES ||
		!valid_utf8((const unsigned char *) tok, len))
		c->bad = true;
	if (c->olen + len + 2 > sizeof(c->out))
	{
		c->overflow = true;
		return;
	}
	if (c->ntok > 0)
		c->out[c->olen++] = '|';
	memcpy(c->out + c->olen, tok, len);
	c->olen += len;
	c->out[c->olen] = '\0';
	c->ntok++;
}

/* Tokenize text with opts into c. */
static size_t
run_tok(const TcTokOptions *opts, const char *text, size_t len, Collect *c)
{
	c->olen = 0;
	c->ntok = 0;
	c->out[0] = '\0';
	c->overflow = false;
	c->bad = false;
	return tc_tokenize(opts, text, len, collect_fn, c);
}

static Collect coll;

/* Check that text tokenizes (with opts) to the '|'-joined expected list. */
static void
check_tokens(const char *name, const TcTokOptions *opts, const char *text,
			 const char *expected)
{
	size_t		n = run_tok(opts, text, strlen(text), &coll);

	tc_check(n == coll.ntok && !coll.bad && !coll.overflow &&
			 strcmp(coll.out, expected) == 0,
			 "%s: expected [%s] got [%s] (%zu tokens)", name, expected,
			 coll.out, n);
}

/* English sentences and their Keras text_to_word_sequence tokens. */
static const char *const keras_cases[][2] = {
	{"Hello, World! It's a test.",
	 "hello|world|it's|a|test"},
	{"Don't stop-believing... (ok?)",
	 "don't|stop|believing|ok"},
	{"  leading and trailing  ",
	 "leading|and|trailing"},
	{"tabs\tand\nnewlines\n\nhere",
	 "tabs|and|newlines|here"},
	{"email me at john.doe@example.com or call 555-1234!",
	 "email|me|at|john|doe|example|com|or|call|555|1234"},
	{"C++ and C# are 'languages'",
	 "c|and|c|are|'languages'"},
	{"$100 off!!! 50% discount #deal",
	 "100|off|50|discount|deal"},
	{"it's   multiple    spaces",
	 "it's|multiple|spaces"},
	{"URL: http://www.example.com/path?x=1&y=2",
	 "url|http|www|example|com|path|x|1|y|2"},
	{"UPPER lower MiXeD",
	 "upper|lower|mixed"},
	{"a_b a-b a.b a/b a\\b a|b a~b a^b a`b",
	 "a|b|a|b|a|b|a|b|a|b|a|b|a|b|a|b|a|b"},
	{"O'Neil's rock'n'roll ''quoted''",
	 "o'neil's|rock'n'roll|''quoted''"},
	{"numbers 1,000.50 and 3.14159",
	 "numbers|1|000|50|and|3|14159"},
	{"<html><body>tag</body></html>",
	 "html|body|tag|body|html"},
	{"{json: [1, 2, 3]}",
	 "json|1|2|3"},
	{"FREE entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121",
	 "free|entry|in|2|a|wkly|comp|to|win|fa|cup|final|tkts|21st|may|2005|text|fa|to|87121"},
	{"Ok lar... Joking wif u oni...",
	 "ok|lar|joking|wif|u|oni"},
	{"U dun say so early hor... U c already then say...",
	 "u|dun|say|so|early|hor|u|c|already|then|say"},
	{"Nah I don't think he goes to usf, he lives around here though",
	 "nah|i|don't|think|he|goes|to|usf|he|lives|around|here|though"},
	{"WINNER!! As a valued network customer you have been selected to receivea \xc2\xa3" "900 prize reward!",
	 "winner|as|a|valued|network|customer|you|have|been|selected|to|receivea|\xc2\xa3" "900|prize|reward"},
	{"Had your mobile 11 months or more? U R entitled to Update to the latest colour mobiles",
	 "had|your|mobile|11|months|or|more|u|r|entitled|to|update|to|the|latest|colour|mobiles"},
	{"'",
	 "'"},
	{"...!!!???",
	 ""},
	{"x=y+z*2",
	 "x|y|z|2"},
	{"semi;colon:colon\"quote\"",
	 "semi|colon|colon|quote"},
	{"trailing apostrophe' 'leading",
	 "trailing|apostrophe'|'leading"},
	{"ALL CAPS SHOUTING",
	 "all|caps|shouting"},
	{"I HAVE A DATE ON SUNDAY WITH WILL!!",
	 "i|have|a|date|on|sunday|with|will"},
	{"Wat time do u wan 2 meet me later?",
	 "wat|time|do|u|wan|2|meet|me|later"},
	{"Lol no ouch but wish i'd stayed out a bit longer",
	 "lol|no|ouch|but|wish|i'd|stayed|out|a|bit|longer"},
	{"K.:)k:)good:)study well.",
	 "k|k|good|study|well"},
	{"(@_@) ^_^ ;-) <3 :-P",
	 "3|p"},
	{"yes!!!no???maybe...",
	 "yes|no|maybe"},
	{"Sorry, I'll call later",
	 "sorry|i'll|call|later"},
	{"100% free*** call 09061701461 now!!",
	 "100|free|call|09061701461|now"},
};

/* Keras defaults on English. */
static void
test_keras_english(void)
{
	TcTokOptions o;

	tc_tok_options_default(&o);
	tc_check(o.mode == TC_TOK_WORD && o.lowercase, "default options");
	for (size_t i = 0; i < sizeof(keras_cases) / sizeof(keras_cases[0]); i++)
	{
		char		name[64];

		snprintf(name, sizeof(name), "keras case %zu", i);
		check_tokens(name, &o, keras_cases[i][0], keras_cases[i][1]);
	}
	/* NULL options mean the defaults */
	check_tokens("NULL opts", NULL, "Hello, World!", "hello|world");
	/* beyond Keras: every ASCII control and white space separates */
	check_tokens("ascii controls", &o, "a\rb\vc\fd\x01" "e\x7f" "f\x1b" "g",
				 "a|b|c|d|e|f|g");
}

/* FNV-1a 64 over the 4 little-endian bytes of tolower(cp), all code points. */
static uint64_t
lower_checksum(void)
{
	uint64_t	h = 0xcbf29ce484222325ULL;

	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++)
	{
		uint32_t	v = tc_unicode_tolower(cp);

		for (int k = 0; k < 4; k++)
		{
			h ^= (v >> (8 * k)) & 0xFF;
			h *= 0x100000001b3ULL;
		}
	}
	return h;
}

/* Unicode simple lower-casing, pointwise and exhaustively. */
static void
test_lowercase(void)
{
	TcTokOptions o;
	static const uint32_t pairs[][2] = {
		{'A', 'a'}, {'z', 'z'}, {'@', '@'}, {0xC9, 0xE9}, {0xDF, 0xDF},
		{0x130, 0x69}, {0x131, 0x131}, {0x178, 0xFF}, {0x1E9E, 0xDF},
		{0x3A3, 0x3C3}, {0x3C2, 0x3C2}, {0x391, 0x3B1}, {0x410, 0x430},
		{0x42F, 0x44F}, {0x401, 0x451}, {0x212A, 'k'}, {0x2126, 0x3C9},
		{0xFF21, 0xFF41}, {0x10400, 0x10428}, {0x2C00, 0x2C30},
		{0x1E00, 0x1E01}, {0x1E01, 0x1E01}, {0x24B6, 0x24D0},
		{0x4E2D, 0x4E2D}, {0x10FFFF, 0x10FFFF}, {0xD800, 0xD800},
		{0x110000, 0x110000},
	};
	bool		ok = true;

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
	{
		if (tc_unicode_tolower(pairs[i][0]) != pairs[i][1])
		{
			tc_check(false, "tolower(U+%04X) = U+%04X, expected U+%04X",
					 (unsigned) pairs[i][0],
					 (unsigned) tc_unicode_tolower(pairs[i][0]),
					 (unsigned) pairs[i][1]);
			ok = false;
		}
	}
	tc_check(ok, "tolower pointwise (%zu code points)",
			 sizeof(pairs) / sizeof(pairs[0]));
	/* checksum computed by Python 3.11 (Unicode 14) with the same loop */
	tc_check(lower_checksum() == 0x6cf600dc2f3082c6ULL,
			 "tolower matches Python's simple lower-case mapping on all code points");

	tc_tok_options_default(&o);
	check_tokens("latin-1", &o, "\xc3\x89T\xc3\x89 CAF\xc3\x89",
				 "\xc3\xa9t\xc3\xa9|caf\xc3\xa9");
	check_tokens("greek", &o, "\xce\x91\xce\x92\xce\x93 \xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91",
				 "\xce\xb1\xce\xb2\xce\xb3|\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1");
	/* simple mapping: a final capital sigma lowers to σ, not ς as in Python */
	check_tokens("final sigma", &o, "\xce\x9f\xce\x94\xce\x9f\xce\xa3",
				 "\xce\xbf\xce\xb4\xce\xbf\xcf\x83");
	check_tokens("cyrillic", &o,
				 "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2, \xd0\x9c\xd0\xb8\xd1\x80!",
				 "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82|\xd0\xbc\xd0\xb8\xd1\x80");
	check_tokens("turkish dotted I", &o, "\xc4\xb0STANBUL",
				 "istanbul");
	check_tokens("full-width latin", &o, "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3",
				 "\xef\xbd\x81\xef\xbd\x82\xef\xbd\x83");
	o.lowercase = false;
	check_tokens("lowercase=false", &o, "Hello, W\xc3\x96RLD \xc4\xb0",
				 "Hello|W\xc3\x96RLD|\xc4\xb0");
}

/* Unicode white space and controls. */
static void
test_spaces(void)
{
	TcTokOptions o;

	tc_tok_options_default(&o);
	check_tokens("unicode spaces", &o,
				 "a\xc2\xa0" "b\xe2\x80\x83" "c\xe3\x80\x80" "d\xe1\x9a\x80"
				 "e\xe2\x80\xa8" "f\xe2\x81\x9f" "g\xc2\x85" "h\xe2\x80\x8a"
				 "i\xe2\x80\xaf" "j\xe2\x80\x80" "k\xe2\x80\xa9" "l",
				 "a|b|c|d|e|f|g|h|i|j|k|l");
	check_tokens("C1 controls", &o, "a\xc2\x80" "b\xc2\x9f" "c", "a|b|c");
	/* not White_Space in Unicode: zero width space, BOM stay in the word */
	check_tokens("zero width space is not a space", &o,
				 "a\xe2\x80\x8b" "b \xef\xbb\xbf" "c",
				 "a\xe2\x80\x8b" "b|\xef\xbb\xbf" "c");
	check_tokens("empty", &o, "", "");
	check_tokens("whitespace only", &o, " \t\n\r \xe3\x80\x80\xc2\xa0  ", "");
	check_tokens("filters only", &o, "!!! ... ???", "");
	tc_check(tc_tokenize(&o, NULL, 0, collect_fn, &coll) == 0, "NULL text");
	tc_check(tc_tokenize(&o, "a b c", 5, NULL, NULL) == 3,
			 "NULL callback still counts");
}

/* Chinese, Japanese, Korean, mixed scripts and emoji. */
static void
test_cjk(void)
{
	TcTokOptions o;

	tc_tok_options_default(&o);
	check_tokens("chinese", &o,
				 "\xe6\x88\x91\xe7\x88\xb1\xe5\x8c\x97\xe4\xba\xac",
				 "\xe6\x88\x91|\xe7\x88\xb1|\xe5\x8c\x97|\xe4\xba\xac");
	/* full-width punctuation is not a filter: it becomes a word of its own */
	check_tokens("chinese punctuation", &o,
				 "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82",
				 "\xe4\xbd\xa0|\xe5\xa5\xbd|\xef\xbc\x8c|\xe4\xb8\x96|\xe7\x95\x8c|\xe3\x80\x82");
	check_tokens("mixed scripts", &o, "abc\xe4\xb8\xad\xe6\x96\x87" "def",
				 "abc|\xe4\xb8\xad|\xe6\x96\x87|def");
	check_tokens("mixed scripts upper", &o, "ABC\xe4\xb8\xad" "DEF GHI",
				 "abc|\xe4\xb8\xad|def|ghi");
	check_tokens("hiragana katakana", &o,
				 "\xe3\x81\xb2\xe3\x82\x89\xe3\x82\xab\xe3\x82\xbf\xe3\x83\xbc",
				 "\xe3\x81\xb2|\xe3\x82\x89|\xe3\x82\xab|\xe3\x82\xbf|\xe3\x83\xbc");
	check_tokens("halfwidth katakana", &o, "\xef\xbd\xb6\xef\xbe\x80",
				 "\xef\xbd\xb6|\xef\xbe\x80");
	check_tokens("katakana phonetic ext", &o, "x\xe3\x87\xb0y",
				 "x|\xe3\x87\xb0|y");
	check_tokens("japanese with kanji", &o,
				 "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc\xe3\x81\xb8",
				 "\xe6\x9d\xb1|\xe4\xba\xac|\xe3\x82\xbf|\xe3\x83\xaf|\xe3\x83\xbc|\xe3\x81\xb8");
	check_tokens("korean", &o,
				 "\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94 \xec\x84\xb8\xea\xb3\x84!",
				 "\xec\x95\x88|\xeb\x85\x95|\xed\x95\x98|\xec\x84\xb8|\xec\x9a\x94|\xec\x84\xb8|\xea\xb3\x84");
	check_tokens("hangul compatibility jamo", &o,
				 "\xe3\x85\x8b\xe3\x85\x8b\xe3\x85\x8b",
				 "\xe3\x85\x8b|\xe3\x85\x8b|\xe3\x85\x8b");
	check_tokens("hangul jamo", &o, "\xe1\x84\x80\xe1\x85\xa1",
				 "\xe1\x84\x80|\xe1\x85\xa1");
	check_tokens("CJK extension B and compatibility", &o,
				 "a\xf0\xa0\x80\x80\xef\xa4\x80" "b\xf0\xb0\x80\x80",
				 "a|\xf0\xa0\x80\x80|\xef\xa4\x80|b|\xf0\xb0\x80\x80");
	check_tokens("extension A", &o, "\xe3\x90\x80\xe3\x90\x81",
				 "\xe3\x90\x80|\xe3\x90\x81");
	/* emoji are word characters: a run of them is one word */
	check_tokens("emoji", &o,
				 "I \xe2\x9d\xa4\xef\xb8\x8f \xf0\x9f\x98\x80\xf0\x9f\x98\x80!",
				 "i|\xe2\x9d\xa4\xef\xb8\x8f|\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
	check_tokens("emoji glued to a word", &o,
				 "Great\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d",
				 "great\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d");
	check_tokens("emoji zwj sequence", &o,
				 "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb,ok",
				 "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb|ok");
}

/* Char mode (Keras char_level=True, minus spaces and controls). */
static void
test_char_mode(void)
{
	TcTokOptions o;

	tc_tok_options_default(&o);
	o.mode = TC_TOK_CHAR;
	check_tokens("char mode", &o, "Hi, \xe4\xb8\xad\xc3\x89!\t\xf0\x9f\x98\x80",
				 "h|i|,|\xe4\xb8\xad|\xc3\xa9|!|\xf0\x9f\x98\x80");
	check_tokens("char mode spaces", &o, " \xc2\xa0\xe3\x80\x80\n\x01\xc2\x80", "");
	check_tokens("char mode invalid bytes", &o, "a\xff" "b\xc0\xaf" "c",
				 "a|b|c");
	o.lowercase = false;
	check_tokens("char mode no lower", &o, "AbC", "A|b|C");
}

/* Invalid UTF-8: every bad byte is a separator. */
static void
test_invalid_utf8(void)
{
	TcTokOptions o;
	unsigned char buf[64];
	uint64_t	rng = 0x9E3779B97F4A7C15ULL;
	size_t		bad = 0;

	tc_tok_options_default(&o);
	check_tokens("stray continuation", &o, "ab\x80" "cd", "ab|cd");
	check_tokens("overlong slash", &o, "a\xc0\xaf" "b", "a|b");
	check_tokens("overlong 3-byte", &o, "a\xe0\x80\xaf" "b", "a|b");
	check_tokens("overlong 4-byte", &o, "a\xf0\x80\x80\xaf" "b", "a|b");
	check_tokens("surrogate", &o, "a\xed\xa0\x80" "b", "a|b");
	check_tokens("above U+10FFFF", &o, "a\xf4\x90\x80\x80" "b\xf5\x80\x80\x80" "c",
				 "a|b|c");
	check_tokens("truncated sequence", &o, "ab\xe4\xb8", "ab");
	check_tokens("truncated then ascii", &o, "ab\xe4" "cd", "ab|cd");
	check_tokens("fe ff", &o, "\xfe" "a\xff", "a");
	check_tokens("max code point", &o, "a\xf4\x8f\xbf\xbf", "a\xf4\x8f\xbf\xbf");

	/* random byte strings, biased towards UTF-8 lead and continuation bytes */
	for (int round = 0; round < 20000; round++)
	{
		size_t		n = 0;
		size_t		got;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		n = (size_t) (rng % sizeof(buf));
		for (size_t i = 0; i < n; i++)
		{
			unsigned int r;

			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			r = (unsigned int) (rng >> 24);
			switch (r % 4)
			{
				case 0:
					buf[i] = (unsigned char) ('a' + (r >> 8) % 26);
					break;
				case 1:
					buf[i] = (unsigned char) (0x80 | ((r >> 8) & 0x3F));
					break;
				case 2:
					buf[i] = (unsigned char) (0xC0 | ((r >> 8) & 0x3F));
					break;
				default:
					buf[i] = (unsigned char) (r >> 8);
					break;
			}
		}
		o.mode = (round & 1) ? TC_TOK_CHAR : TC_TOK_WORD;
		o.lowercase = (round & 2) == 0;
		got = run_tok(&o, (const char *) buf, n, &coll);
		if (coll.bad || got != coll.ntok)
			bad++;
	}
	tc_check(bad == 0, "20000 random byte strings: every token valid UTF-8, "
			 "nonempty, <= %d bytes (%zu bad)", TC_MAX_TOKEN_BYTES, bad);
}

/* Counting callback for big texts. */
typedef struct BigCount
{
	size_t		ntok;
	size_t		maxlen;
	size_t		bytes;
	bool		bad;
} BigCount;

/* Token callback: tally tokens and check each. */
static void
big_fn(void *arg, const char *tok, size_t len)
{
	BigCount   *b = arg;

	b->ntok++;
	b->bytes += len;
	if (len > b->maxlen)
		b->maxlen = len;
	if (len == 0 || len > TC_MAX_TOKEN_BYTES ||
		!valid_utf8((const unsigned char *) tok, len))
		b->bad = true;
}

/* Long words are cut at a code point boundary; 1 MB texts. */
static void
test_long(void)
{
	TcTokOptions o;
	size_t		big = 1024 * 1024;
	char	   *text = malloc(big + 16);
	BigCount	b;
	size_t		n;
	char		expect[TC_MAX_TOKEN_BYTES + 1];
	int			i;

	tc_tok_options_default(&o);
	if (text == NULL)
	{
		tc_check(false, "malloc for the long text tests");
		return;
	}

	/* one word of 1 MB */
	memset(text, 'A', big);
	n = run_tok(&o, text, big, &coll);
	memset(expect, 'a', TC_MAX_TOKEN_BYTES);
	expect[TC_MAX_TOKEN_BYTES] = '\0';
	tc_check(n == 1 && strcmp(coll.out, expect) == 0 && !coll.bad,
			 "1 MB word is one token cut to %d bytes (got %zu tokens, %zu bytes)",
			 TC_MAX_TOKEN_BYTES, n, coll.olen);

	/* cut on a code point boundary: "aa" + 3-byte euro signs */
	text[0] = 'a';
	text[1] = 'a';
	for (i = 0; i < 200; i++)
		memcpy(text + 2 + 3 * i, "\xe2\x82\xac", 3);
	memcpy(text + 2 + 3 * 200, " NEXT", 5);
	n = run_tok(&o, text, 2 + 3 * 200 + 5, &coll);
	tc_check(n == 2 && coll.olen == 254 + 1 + 4 && !coll.bad &&
			 strcmp(coll.out + 255, "next") == 0,
			 "long word cut at a code point boundary (254 bytes), next word intact");

	/* 4-byte code points fill exactly 256 bytes */
	for (i = 0; i < 100; i++)
		memcpy(text + 4 * i, "\xf0\x9f\x98\x80", 4);
	n = run_tok(&o, text, 400, &coll);
	tc_check(n == 1 && coll.olen == 256 && !coll.bad,
			 "emoji word cut to 64 code points");

	/* lower-casing changes the length: U+023A (2 bytes) -> U+2C65 (3 bytes) */
	for (i = 0; i < 200; i++)
		memcpy(text + 2 * i, "\xc8\xba", 2);
	n = run_tok(&o, text, 400, &coll);
	tc_check(n == 1 && coll.olen == 255 && !coll.bad,
			 "cut applies to the lower-cased bytes (got %zu)", coll.olen);

	/* 1 MB of many words */
	{
		size_t		len = 0;
		size_t		words = 0;

		while (len + 16 < big)
		{
			len += (size_t) snprintf(text + len, 16, "Word%zu, ", words % 5000);
			words++;
		}
		memset(&b, 0, sizeof(b));
		n = tc_tokenize(&o, text, len, big_fn, &b);
		tc_check(n == words && b.ntok == words && !b.bad,
				 "1 MB of words: %zu tokens (expected %zu)", n, words);

		/* and counted into a vocabulary */
		{
			TcError		err;
			TcVocab    *v = tc_vocab_create(&tc_test_alloc, &err);

			tc_check(v && tc_vocab_count_text(v, &o, text, len, &err) == TC_OK &&
					 tc_vocab_size(v) == 5000,
					 "1 MB text counted: 5000 distinct words");
			if (v)
			{
				tc_check(tc_vocab_finalize(v, 100, false, &err) == TC_OK &&
						 tc_vocab_size(v) == 99 &&
						 tc_vocab_lookup(v, "word0", 5) == 1 &&
						 tc_vocab_lookup(v, "word98", 6) == 99 &&
						 tc_vocab_lookup(v, "word99", 6) == 0,
						 "1 MB vocabulary: equal counts keep first-seen order");
				tc_vocab_free(v);
			}
		}
	}
	free(text);
}

/* Find id of a word given as a C string. */
static int32_t
lookup(const TcVocab *v, const char *w)
{
	return tc_vocab_lookup(v, w, strlen(w));
}

/* Vocabulary ordering, vocab_size cut, OOV, lookups. */
static void
test_vocab_basic(void)
{
	TcTokOptions o;
	TcError		err;
	TcVocab    *v;
	size_t		len;
	const char *w;

	tc_tok_options_default(&o);
	v = tc_vocab_create(&tc_test_alloc, &err);
	tc_check(v != NULL, "vocab create");
	if (v == NULL)
		return;
	tc_check(tc_vocab_count_text(v, &o, "d c B a", 7, &err) == TC_OK &&
			 tc_vocab_count_text(v, &o, "b a b, A! e", 11, &err) == TC_OK,
			 "count texts");
	tc_check(tc_vocab_size(v) == 5, "5 distinct words before finalize");
	tc_check(tc_vocab_add(v, "e", 1, 1, &err) == TC_OK, "add word");
	tc_check(tc_vocab_add(v, "", 0, 1, &err) == TC_ERR_INVALID_ARG,
			 "adding an empty word is an error");
	tc_check(tc_vocab_id_limit(v) == 0 && lookup(v, "b") == 0,
			 "no ids before finalize");
	tc_check(tc_vocab_finalize(v, 0, false, &err) == TC_ERR_INVALID_ARG,
			 "vocab_size 0 rejected: %s", err.msg);
	tc_check(tc_vocab_finalize(v, 1, true, &err) == TC_ERR_INVALID_ARG,
			 "vocab_size 1 with oov rejected");
	tc_check(tc_vocab_finalize(v, 100, false, &err) == TC_OK, "finalize");
	/* first seen: d c b a e; counts d1 c1 b3 a3 e2 -> b a e d c */
	tc_check(lookup(v, "b") == 1 && lookup(v, "a") == 2 && lookup(v, "e") == 3 &&
			 lookup(v, "d") == 4 && lookup(v, "c") == 5,
			 "ids by count desc, ties first seen (b=%d a=%d e=%d d=%d c=%d)",
			 lookup(v, "b"), lookup(v, "a"), lookup(v, "e"), lookup(v, "d"),
			 lookup(v, "c"));
	tc_check(lookup(v, "z") == 0 && lookup(v, "B") == 0 &&
			 tc_vocab_lookup(v, "", 0) == 0, "absent words -> 0");
	w = tc_vocab_word(v, 3, &len);
	tc_check(w && len == 1 && w[0] == 'e', "tc_vocab_word(3) = e");
	tc_check(tc_vocab_word(v, 0, &len) == NULL && len == 0 &&
			 tc_vocab_word(v, 6, &len) == NULL &&
			 tc_vocab_word(v, -1, NULL) == NULL, "tc_vocab_word out of range");
	tc_check(tc_vocab_id_limit(v) == 6 && tc_vocab_size(v) == 5, "id limit 6");
	tc_check(tc_vocab_finalize(v, 100, false, &err) == TC_ERR_INVALID_ARG &&
			 tc_vocab_add(v, "x", 1, 1, &err) == TC_ERR_INVALID_ARG &&
			 tc_vocab_count_text(v, &o, "x", 1, &err) == TC_ERR_INVALID_ARG,
			 "a finalized vocabulary cannot change");
	tc_vocab_free(v);

	/* vocab_size cut: keep vocab_size - 1 */
	v = tc_vocab_create(&tc_test_alloc, &err);
	if (v == NULL)
		return;
	tc_vocab_count_text(v, &o, "d c b a e b a b a e", 19, &err);
	tc_check(tc_vocab_finalize(v, 3, false, &err) == TC_OK &&
			 tc_vocab_size(v) == 2 && lookup(v, "b") == 1 &&
			 lookup(v, "a") == 2 && lookup(v, "e") == 0 &&
			 tc_vocab_id_limit(v) == 3,
			 "vocab_size 3 keeps the 2 most frequent");
	tc_vocab_free(v);

	/* use_oov: id 1 is OOV, words from 2, vocab_size - 2 words */
	v = tc_vocab_create(&tc_test_alloc, &err);
	if (v == NULL)
		return;
	tc_vocab_count_text(v, &o, "d c b a e b a b a e", 19, &err);
	tc_check(tc_vocab_finalize(v, 4, true, &err) == TC_OK &&
			 tc_vocab_size(v) == 2 && lookup(v, "b") == 2 &&
			 lookup(v, "a") == 3 && lookup(v, "e") == 1 &&
			 lookup(v, "zzz") == 1 && tc_vocab_id_limit(v) == 4 &&
			 tc_vocab_word(v, 1, NULL) == NULL,
			 "use_oov: oov=1, words 2..vocab_size-1");
	{
		int32_t		ids[8];
		int			n = tc_text_to_ids(v, &o, "B x a b", 7, 8, ids);

		tc_check(n == 4 && ids[0] == 2 && ids[1] == 1 && ids[2] == 3 &&
				 ids[3] == 2, "text_to_ids maps unknown words to OOV");
	}
	tc_vocab_free(v);

	/* an empty vocabulary */
	v = tc_vocab_create(&tc_test_alloc, &err);
	if (v == NULL)
		return;
	tc_check(tc_vocab_finalize(v, 10, false, &err) == TC_OK &&
			 tc_vocab_size(v) == 0 && tc_vocab_id_limit(v) == 1 &&
			 lookup(v, "a") == 0, "empty vocabulary");
	tc_vocab_free(v);
	tc_vocab_free(NULL);
}

/* tc_text_to_ids keeps the last max_len ids (truncating='pre'). */
static void
test_text_to_ids(void)
{
	TcTokOptions o;
	TcError		err;
	TcVocab    *v;
	const char *words[] = {"w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7",
	"w8", "w9"};
	size_t		lens[10];
	char		text[1024];
	uint64_t	rng = 12345;
	size_t		bad = 0;

	tc_tok_options_default(&o);
	for (int i = 0; i < 10; i++)
		lens[i] = 2;
	/* w0..w7 get ids 1..8; w8, w9 are absent */
	v = tc_vocab_from_words(&tc_test_alloc, words, lens, 8, 9, false, &err);
	tc_check(v != NULL, "from_words for text_to_ids");
	if (v == NULL)
		return;
	{
		int32_t		ids[4] = {0, 0, 0, 0};
		int			n = tc_text_to_ids(v, &o, "w0 w1 w8 w2 w3 w4 w9 w5", 23, 4, ids);

		tc_check(n == 4 && ids[0] == 3 && ids[1] == 4 && ids[2] == 5 &&
				 ids[3] == 6, "keeps the last 4 known ids in order");
		n = tc_text_to_ids(v, &o, "W1 w9 w2", 8, 4, ids);
		tc_check(n == 2 && ids[0] == 2 && ids[1] == 3, "short text");
		n = tc_text_to_ids(v, &o, "", 0, 4, ids);
		tc_check(n == 0, "empty text -> 0 ids");
		n = tc_text_to_ids(v, &o, "w1 w2", 5, 0, ids);
		tc_check(n == 0, "max_len 0 -> 0 ids");
	}

	/* random texts against a naive reference */
	for (int round = 0; round < 2000; round++)
	{
		int32_t		all[200];
		int32_t		ids[64];
		int			nall = 0;
		size_t		tl = 0;
		int			nw,
					max_len,
					n;

		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		nw = (int) ((rng >> 33) % 150);
		max_len = 1 + (int) ((rng >> 20) % 64);
		for (int i = 0; i < nw; i++)
		{
			int			k;

			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			k = (int) ((rng >> 33) % 10);
			tl += (size_t) snprintf(text + tl, sizeof(text) - tl, "w%d ", k);
			if (k < 8)
				all[nall++] = k + 1;
		}
		n = tc_text_to_ids(v, &o, text, tl, max_len, ids);
		if (n != (nall < max_len ? nall : max_len))
			bad++;
		else
		{
			for (int i = 0; i < n; i++)
				if (ids[i] != all[nall - n + i])
				{
					bad++;
					break;
				}
		}
	}
	tc_check(bad == 0, "2000 random texts: text_to_ids equals the last max_len "
			 "ids (%zu bad)", bad);
	tc_vocab_free(v);
}

/* tc_vocab_from_words: round trip and rejection of bad input. */
static void
test_from_words(void)
{
	TcTokOptions o;
	TcError		err;
	TcVocab    *v;
	TcVocab    *w;
	const char *words[16];
	size_t		lens[16];
	size_t		n;
	bool		ok = true;
	const char *t = "the cat sat on the mat \xe4\xb8\xad\xe6\x96\x87 the cat "
		"\xc3\xa9t\xc3\xa9 on";

	tc_tok_options_default(&o);
	for (int oov = 0; oov < 2; oov++)
	{
		v = tc_vocab_create(&tc_test_alloc, &err);
		if (v == NULL)
			return;
		tc_vocab_count_text(v, &o, t, strlen(t), &err);
		tc_check(tc_vocab_finalize(v, 8, oov != 0, &err) == TC_OK, "finalize (oov %d)", oov);
		n = tc_vocab_size(v);
		for (size_t i = 0; i < n; i++)
			words[i] = tc_vocab_word(v, (int32_t) i + (oov ? 2 : 1), &lens[i]);
		w = tc_vocab_from_words(&tc_test_alloc, words, lens, n, 8, oov != 0, &err);
		ok = w != NULL && tc_vocab_size(w) == n &&
			tc_vocab_id_limit(w) == tc_vocab_id_limit(v);
		for (size_t i = 0; ok && i < n; i++)
			ok = tc_vocab_lookup(w, words[i], lens[i]) ==
				tc_vocab_lookup(v, words[i], lens[i]);
		ok = ok && lookup(w, "dog") == (oov ? 1 : 0);
		tc_check(ok, "from_words round trip (oov %d, %zu words)", oov, n);
		tc_vocab_free(w);
		tc_vocab_free(v);
	}

	words[0] = "a";
	words[1] = "b";
	words[2] = "a";
	lens[0] = lens[1] = lens[2] = 1;
	memset(&err, 0, sizeof(err));
	v = tc_vocab_from_words(&tc_test_alloc, words, lens, 3, 10, false, &err);
	tc_check(v == NULL && err.status == TC_ERR_FORMAT,
			 "duplicate words rejected: %s", err.msg);
	v = tc_vocab_from_words(&tc_test_alloc, words, lens, 2, 2, false, &err);
	tc_check(v == NULL && err.status == TC_ERR_FORMAT,
			 "too many words for vocab_size rejected: %s", err.msg);
	v = tc_vocab_from_words(&tc_test_alloc, words, lens, 2, 3, true, &err);
	tc_check(v == NULL && err.status == TC_ERR_FORMAT,
			 "too many words for vocab_size with oov rejected");
	lens[1] = 0;
	v = tc_vocab_from_words(&tc_test_alloc, words, lens, 2, 10, false, &err);
	tc_check(v == NULL && err.status == TC_ERR_FORMAT, "empty word rejected");
	v = tc_vocab_from_words(&tc_test_alloc, words, lens, 0, 1, false, &err);
	tc_check(v != NULL && tc_vocab_size(v) == 0 && tc_vocab_id_limit(v) == 1,
			 "zero words");
	tc_vocab_free(v);
}

/* A vocabulary of 200,000 distinct words (growth and ordering). */
static void
test_vocab_growth(void)
{
	TcError		err;
	TcVocab    *v = tc_vocab_create(&tc_test_alloc, &err);
	const size_t nw = 200000;
	char		word[32];
	size_t		bad = 0;
	size_t		group_start[8];
	int			len;

	if (v == NULL)
	{
		tc_check(false, "vocab create");
		return;
	}
	/* word i gets count 1 + i % 7, then each word once more */
	for (size_t i = 0; i < nw; i++)
	{
		len = snprintf(word, sizeof(word), "w%zu", i);
		if (tc_vocab_add(v, word, (size_t) len, 1 + i % 7, &err) != TC_OK)
			bad++;
	}
	for (size_t i = 0; i < nw; i++)
	{
		len = snprintf(word, sizeof(word), "w%zu", i);
		if (tc_vocab_add(v, word, (size_t) len, 1, &err) != TC_OK)
			bad++;
	}
	tc_check(bad == 0 && tc_vocab_size(v) == nw, "200000 distinct words added");
	tc_check(tc_vocab_finalize(v, (int) nw + 1, false, &err) == TC_OK &&
			 tc_vocab_size(v) == nw, "finalize keeps all 200000");

	/*
	 * Expected id: groups by count 8 (i%7==6) down to 2 (i%7==0), each in
	 * index order.
	 */
	{
		size_t		per[7];
		size_t		acc = 1;

		for (int r = 0; r < 7; r++)
			per[r] = nw / 7 + ((size_t) r < nw % 7 ? 1 : 0);
		for (int r = 6; r >= 0; r--)
		{
			group_start[r] = acc;
			acc += per[r];
		}
	}
	bad = 0;
	for (size_t i = 0; i < nw; i++)
	{
		int32_t		expect = (int32_t) (group_start[i % 7] + i / 7);

		len = snprintf(word, sizeof(word), "w%zu", i);
		if (tc_vocab_lookup(v, word, (size_t) len) != expect)
			bad++;
	}
	tc_check(bad == 0, "200000 ids by count then first seen (%zu bad)", bad);
	tc_vocab_free(v);

	/* cut down to 1000 of them */
	v = tc_vocab_create(&tc_test_alloc, &err);
	if (v == NULL)
		return;
	for (size_t i = 0; i < nw; i++)
	{
		len = snprintf(word, sizeof(word), "w%zu", i);
		tc_vocab_add(v, word, (size_t) len, (i % 1000 == 999) ? 5 : 1, &err);
	}
	bad = 0;
	if (tc_vocab_finalize(v, 201, false, &err) != TC_OK || tc_vocab_size(v) != 200)
		bad++;
	for (size_t i = 0; i < nw; i++)
	{
		int32_t		expect = (i % 1000 == 999) ? (int32_t) (i / 1000 + 1) : 0;

		len = snprintf(word, sizeof(word), "w%zu", i);
		if (tc_vocab_lookup(v, word, (size_t) len) != expect)
			bad++;
	}
	tc_check(bad == 0, "vocab_size cut on 200000 words (%zu bad)", bad);
	tc_vocab_free(v);
}

/* An allocator that fails after a given number of allocations. */
typedef struct FailCtx
{
	int			left;
	size_t		live;
} FailCtx;

static void *
fail_alloc(void *ctx, size_t n)
{
	FailCtx    *f = ctx;

	if (f->left-- <= 0)
		return NULL;
	f->live++;
	return malloc(n);
}

static void
fail_free(void *ctx, void *p)
{
	FailCtx    *f = ctx;

	f->live--;
	free(p);
}

/* Every allocation failure is TC_ERR_NOMEM, and nothing leaks. */
static void
test_alloc_failure(void)
{
	TcTokOptions o;
	FailCtx		f;
	TcAllocator a = {fail_alloc, fail_free, &f};
	size_t		bad = 0;
	int			succeeded = 0;
	char		text[4096];
	size_t		tl = 0;

	tc_tok_options_default(&o);
	for (int i = 0; i < 300; i++)
		tl += (size_t) snprintf(text + tl, sizeof(text) - tl, "x%d ", i);
	for (int budget = 0; budget < 40; budget++)
	{
		TcError		err;
		TcVocab    *v;
		TcStatus	st = TC_OK;

		f.left = budget;
		f.live = 0;
		memset(&err, 0, sizeof(err));
		v = tc_vocab_create(&a, &err);
		if (v == NULL)
			st = err.status;
		else
		{
			st = tc_vocab_count_text(v, &o, text, tl, &err);
			if (st == TC_OK)
				st = tc_vocab_finalize(v, 100, false, &err);
			if (st == TC_OK)
			{
				succeeded++;
				if (tc_vocab_size(v) != 99 || lookup(v, "x0") != 1)
					bad++;
			}
			tc_vocab_free(v);
		}
		if ((st != TC_OK && st != TC_ERR_NOMEM) ||
			(st != TC_OK && err.status != TC_ERR_NOMEM) || f.live != 0)
			bad++;
	}
	tc_check(bad == 0 && succeeded > 0,
			 "allocation failures give TC_ERR_NOMEM and leak nothing "
			 "(%d budgets succeeded)", succeeded);

	bad = 0;
	for (int budget = 0; budget < 5; budget++)
	{
		TcError		err;
		const char *words[] = {"a", "b"};
		size_t		lens[] = {1, 1};
		TcVocab    *v;

		f.left = budget;
		f.live = 0;
		v = tc_vocab_from_words(&a, words, lens, 2, 10, false, &err);
		if (v == NULL && err.status != TC_ERR_NOMEM)
			bad++;
		tc_vocab_free(v);
		if (f.live != 0)
			bad++;
	}
	tc_check(bad == 0, "from_words allocation failures");
}

/* Decode a hex string into out (room for strlen(hex)/2 bytes). */
static size_t
unhex(const char *hex, size_t n, char *out)
{
	size_t		k = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
	{
		unsigned int b;

		if (sscanf(hex + i, "%2x", &b) != 1)
			break;
		out[k++] = (char) b;
	}
	return k;
}

/* Compare with Keras tokens written by tools/keras_tokenize_check.py. */
static int
keras_file_check(const char *path)
{
	FILE	   *fp = fopen(path, "r");
	static char line[1 << 20];
	static char text[1 << 19];
	static char expect[1 << 19];
	size_t		nlines = 0;
	size_t		mismatches = 0;
	TcTokOptions o;

	tc_tok_options_default(&o);
	if (fp == NULL)
	{
		tc_check(false, "open %s", path);
		return tc_test_done();
	}
	while (fgets(line, sizeof(line), fp))
	{
		char	   *tab = strchr(line, '\t');
		size_t		tlen,
					elen;

		if (tab == NULL)
			continue;
		tlen = unhex(line, (size_t) (tab - line), text);
		elen = unhex(tab + 1, strcspn(tab + 1, "\n"), expect);
		for (size_t i = 0; i < elen; i++)
			if (expect[i] == 0x1F)
				expect[i] = '|';
		expect[elen] = '\0';
		run_tok(&o, text, tlen, &coll);
		nlines++;
		if (strcmp(coll.out, expect) != 0)
		{
			mismatches++;
			if (mismatches <= 5)
				printf("# mismatch: expected [%s] got [%s]\n", expect, coll.out);
		}
	}
	fclose(fp);
	tc_check(nlines > 0 && mismatches == 0,
			 "%zu texts tokenize as Keras does (%zu mismatches)", nlines,
			 mismatches);
	return tc_test_done();
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--keras") == 0)
		return keras_file_check(argv[2]);
	(void) tc_check_tensor;
	test_keras_english();
	test_lowercase();
	test_spaces();
	test_cjk();
	test_char_mode();
	test_invalid_utf8();
	test_long();
	test_vocab_basic();
	test_text_to_ids();
	test_from_words();
	test_vocab_growth();
	test_alloc_failure();
	return tc_test_done();
}
