/*
 * tokenizer.h
 *	  Text -> tokens -> ids, compatible with Keras's Tokenizer defaults.
 *
 * Word mode (the default) follows keras.preprocessing.text.Tokenizer:
 *	 - lower-case with the core's own Unicode simple case mapping (never the
 *	   C library's locale, so a model tokenizes alike in every database);
 *	 - the Keras default filter characters !"#$%&()*+,-./:;<=>?@[\]^_`{|}~
 *	   plus tab and newline become separators;
 *	 - split on every Unicode White_Space code point (Keras splits on ' '
 *	   only) and on C0/C1 control characters;
 *	 - beyond Keras: every Han, Hiragana, Katakana and Hangul code point is a
 *	   token of its own, so text written without spaces is split into
 *	   characters; mixed scripts work ("abc中文def" -> abc 中 文 def);
 *	 - invalid UTF-8 bytes are separators; a token longer than
 *	   TC_MAX_TOKEN_BYTES is cut to its first TC_MAX_TOKEN_BYTES bytes (on a
 *	   code point boundary).
 * Char mode (Keras char_level=True) makes every code point a token
 * (after lower-casing when asked), except white space and control characters.
 *
 * The vocabulary (TcVocab) counts words in a hash table whose memory grows
 * with distinct words, not with texts.  tc_vocab_finalize keeps the
 * vocab_size - 1 most frequent words (ties: first seen first) and gives them
 * ids 1.. in that order; id 0 is padding.  With use_oov, id 1 is the
 * out-of-vocabulary token and words get ids 2.. (Keras's oov_token).
 */
#ifndef TEXTCLF_TOKENIZER_H
#define TEXTCLF_TOKENIZER_H

#include "textclf/textclf.h"

#define TC_MAX_TOKEN_BYTES 256

typedef enum TcTokMode
{
	TC_TOK_WORD = 0,
	TC_TOK_CHAR = 1
} TcTokMode;

typedef struct TcTokOptions
{
	int			mode;			/* TcTokMode */
	bool		lowercase;		/* default true */
} TcTokOptions;

/* Called once per token; tok is not NUL-terminated and valid only during the call. */
typedef void (*TcTokenFn) (void *arg, const char *tok, size_t len);

/* Default options: word mode, lower-case. */
void		tc_tok_options_default(TcTokOptions *opts);

/* Map a code point to its simple lower-case form (Unicode 14). */
uint32_t	tc_unicode_tolower(uint32_t cp);

/*
 * Split text (len bytes of UTF-8, need not be NUL-terminated or valid) into
 * tokens, calling fn for each.  Never allocates.  Returns the number of
 * tokens.
 */
size_t		tc_tokenize(const TcTokOptions *opts, const char *text, size_t len,
						TcTokenFn fn, void *arg);

typedef struct TcVocab TcVocab;

/* Create an empty vocabulary for counting. */
TcVocab    *tc_vocab_create(const TcAllocator *a, TcError *err);
/* Free a vocabulary and all its words. */
void		tc_vocab_free(TcVocab *v);
/* Tokenize text and add one to the count of each token. */
TcStatus	tc_vocab_count_text(TcVocab *v, const TcTokOptions *opts,
								const char *text, size_t len, TcError *err);
/* Add n to the count of one word (first call for a word fixes its rank among ties). */
TcStatus	tc_vocab_add(TcVocab *v, const char *word, size_t len, uint64_t n,
						 TcError *err);
/* Number of distinct words counted so far (before finalize) or kept (after). */
size_t		tc_vocab_size(const TcVocab *v);

/*
 * Keep the vocab_size - 1 (or vocab_size - 2 with use_oov) most frequent
 * words, ties broken by first occurrence, give them ids, and drop the rest.
 */
TcStatus	tc_vocab_finalize(TcVocab *v, int vocab_size, bool use_oov,
							  TcError *err);

/*
 * Build a finalized vocabulary from words already in id order (as stored in
 * a model): words[i] gets id first_id + i.  Duplicate words are an error.
 */
TcVocab    *tc_vocab_from_words(const TcAllocator *a, const char *const *words,
								const size_t *lens, size_t n, int vocab_size,
								bool use_oov, TcError *err);

/* Id of word after finalize: 0 if absent (1 if use_oov). */
int32_t		tc_vocab_lookup(const TcVocab *v, const char *word, size_t len);
/* Word with the given id after finalize (NULL if none); sets *len. */
const char *tc_vocab_word(const TcVocab *v, int32_t id, size_t *len);
/* Largest id in use plus one (<= vocab_size). */
int32_t		tc_vocab_id_limit(const TcVocab *v);

/*
 * Tokenize text and map it to ids (dropping words outside the vocabulary,
 * or mapping them to the OOV id), keeping the LAST max_len ids (Keras's
 * truncating='pre').  ids must hold max_len entries.  Returns the count.
 */
int			tc_text_to_ids(const TcVocab *v, const TcTokOptions *opts,
						   const char *text, size_t len, int max_len,
						   int32_t *ids);

#endif							/* TEXTCLF_TOKENIZER_H */
