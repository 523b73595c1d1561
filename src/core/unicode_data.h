/*
 * unicode_data.h
 *	  Private interface between the tokenizer and its generated Unicode
 *	  tables (src/core/unicode_data.c, written by tools/gen_unicode.py).
 *
 * Not part of the core's public API: only src/core/tokenizer.c and the
 * generated file include it.  The tables are constant; nothing allocates.
 */
#ifndef TEXTCLF_UNICODE_DATA_H
#define TEXTCLF_UNICODE_DATA_H

#include "textclf/tokenizer.h"

/* What a non-ASCII code point is to the word splitter. */
typedef enum TcUnicodeClass
{
	TC_UC_WORD = 0,				/* part of a word */
	TC_UC_SPACE = 1,			/* Unicode White_Space: a separator */
	TC_UC_CONTROL = 2,			/* C1 control (Cc): a separator */
	TC_UC_SOLO = 3				/* Han, kana or Hangul: a token of its own */
} TcUnicodeClass;

/* Class of a code point >= 0x80 (ASCII is classified by the tokenizer). */
TcUnicodeClass tc_unicode_class(uint32_t cp);

#endif							/* TEXTCLF_UNICODE_DATA_H */
