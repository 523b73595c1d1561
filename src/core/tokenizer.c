/*
 * tokenizer.c
 *	  Text -> tokens (Keras Tokenizer semantics plus Unicode word breaking
 *	  for CJK), the vocabulary hash table, and text -> id sequences.
 *
 * Tokenizing decodes UTF-8 itself (strictly: overlong forms, surrogates,
 * code points above U+10FFFF and stray bytes are separators), lower-cases
 * with the generated simple case mapping of unicode_data.c, and builds each
 * token in a fixed stack buffer, so it never allocates and never depends on
 * the C library's locale.  Every token it hands out is valid UTF-8, nonempty
 * and at most TC_MAX_TOKEN_BYTES long.
 *
 * The vocabulary is an open-addressing hash table (linear probing, power of
 * two size, doubled at 70% load) over an array of entries kept in first-seen
 * order; the word bytes are copied into arena chunks.  Memory therefore grows
 * with the number of distinct words only.  Finalizing sorts the entries
 * (stable merge sort by count, so ties stay in first-seen order), copies the
 * kept words into one exact-size chunk with a fresh table, and frees the
 * counting structures, so a finalized vocabulary is compact.
 *
 * Deliberately not done here: Unicode normalization (NFC/NFKC), full case
 * mapping or the final-sigma rule (Python's str.lower() has them, so a
 * word-final "Σ" lowers to "σ" here and to "ς" in Keras), and splitting on
 * Unicode punctuation beyond the Keras filter set.
 *
 * Memory: a TcVocab and everything it points to comes from the allocator
 * given to tc_vocab_create / tc_vocab_from_words and is released by
 * tc_vocab_free.  Strings returned by tc_vocab_word point into the
 * finalized vocabulary and live as long as it does.  Tokens handed to a
 * TcTokenFn live in tc_tokenize's stack buffer, valid only during the call.
 */
#include <string.h>

#include "textclf/tokenizer.h"
#include "unicode_data.h"

/* Returned by the decoder for a byte that does not start valid UTF-8. */
#define TC_BAD_CP			0xFFFFFFFFu

/* ASCII byte classes. */
#define TC_ASCII_WORD		0	/* letter, digit, apostrophe */
#define TC_ASCII_FILTER		1	/* a Keras filter character: word separator */
#define TC_ASCII_SPACE		2	/* space or control: always a separator */

/*
 * Keras's default filters are every ASCII punctuation character except the
 * apostrophe, plus tab and newline (which are controls here anyway).
 */
static const unsigned char tc_ascii_class[128] = {
	/* 0x00 - 0x1F: C0 controls (tab, newline, ...) */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* space ! " # $ % & ' ( ) * + , - . / */
	2, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0 - 9 : ; < = > ? */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1,
	/* @ A - O */
	1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* P - Z [ \ ] ^ _ */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1,
	/* ` a - o */
	1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* p - z { | } ~ DEL */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2
};

/* What the splitter does with one code point. */
typedef enum TcCpAction
{
	TC_CP_WORD,					/* append to the current word */
	TC_CP_SEP,					/* end the current word */
	TC_CP_SOLO					/* end the current word; be a token alone */
} TcCpAction;

/* Default options: word mode, lower-case. */
void
tc_tok_options_default(TcTokOptions *opts)
{
	opts->mode = TC_TOK_WORD;
	opts->lowercase = true;
}

/*
 * Decode one code point from s[0..n) (n >= 1).  Returns the bytes consumed;
 * *cp is TC_BAD_CP (one byte consumed) for anything that is not the
 * shortest UTF-8 form of a scalar value.
 */
static inline size_t
tc_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned int c = s[0];
	unsigned int lo = 0x80;
	unsigned int hi = 0xBF;

	if (c < 0x80)
	{
		*cp = c;
		return 1;
	}
	if (c < 0xC2 || c > 0xF4)
		goto bad;				/* continuation, overlong lead, or > U+10FFFF */
	if (c < 0xE0)
	{
		if (n < 2 || (s[1] & 0xC0) != 0x80)
			goto bad;
		*cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
		return 2;
	}
	if (c < 0xF0)
	{
		if (c == 0xE0)
			lo = 0xA0;			/* no overlong 3-byte forms */
		else if (c == 0xED)
			hi = 0x9F;			/* no surrogates */
		if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
			goto bad;
		*cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
		return 3;
	}
	if (c == 0xF0)
		lo = 0x90;				/* no overlong 4-byte forms */
	else if (c == 0xF4)
		hi = 0x8F;				/* nothing above U+10FFFF */
	if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 ||
		(s[3] & 0xC0) != 0x80)
		goto bad;
	*cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) |
		((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
	return 4;

bad:
	*cp = TC_BAD_CP;
	return 1;
}

/* Encode a scalar value cp into out (room for 4 bytes); returns the length. */
static inline size_t
tc_utf8_encode(uint32_t cp, char *out)
{
	unsigned char *o = (unsigned char *) out;

	if (cp < 0x80)
	{
		o[0] = (unsigned char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		o[0] = (unsigned char) (0xC0 | (cp >> 6));
		o[1] = (unsigned char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		o[0] = (unsigned char) (0xE0 | (cp >> 12));
		o[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char) (0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char) (0xF0 | (cp >> 18));
	o[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char) (0x80 | (cp & 0x3F));
	return 4;
}

/* Split text into tokens, calling fn (if not NULL) for each; no allocation. */
size_t
tc_tokenize(const TcTokOptions *opts, const char *text, size_t len,
			TcTokenFn fn, void *arg)
{
	const unsigned char *s = (const unsigned char *) text;
	char		buf[TC_MAX_TOKEN_BYTES + 4];	/* current token, lower-cased */
	size_t		blen = 0;
	bool		full = false;	/* current token was cut */
	size_t		ntok = 0;
	size_t		i = 0;
	bool		lower = opts ? opts->lowercase : true;
	bool		charmode = opts ? opts->mode == TC_TOK_CHAR : false;

	if (text == NULL)
		return 0;

	while (i < len)
	{
		uint32_t	cp;
		TcCpAction	act;
		size_t		n;

		if (s[i] < 0x80)
		{
			unsigned int cls = tc_ascii_class[s[i]];

			cp = s[i++];
			if (cls == TC_ASCII_SPACE)
				act = TC_CP_SEP;
			else if (charmode)
				act = TC_CP_SOLO;
			else
				act = (cls == TC_ASCII_WORD) ? TC_CP_WORD : TC_CP_SEP;
		}
		else
		{
			i += tc_utf8_decode(s + i, len - i, &cp);
			if (cp == TC_BAD_CP)
				act = TC_CP_SEP;
			else
			{
				TcUnicodeClass ucls = tc_unicode_class(cp);

				if (ucls == TC_UC_SPACE || ucls == TC_UC_CONTROL)
					act = TC_CP_SEP;
				else if (charmode || ucls == TC_UC_SOLO)
					act = TC_CP_SOLO;
				else
					act = TC_CP_WORD;
			}
		}

		if (act == TC_CP_WORD)
		{
			if (full)
				continue;
			if (lower)
				cp = tc_unicode_tolower(cp);
			/* buf has 4 spare bytes past TC_MAX_TOKEN_BYTES */
			n = tc_utf8_encode(cp, buf + blen);
			if (blen + n <= TC_MAX_TOKEN_BYTES)
				blen += n;
			else
				full = true;
			continue;
		}

		/* a separator or a solo code point ends the current word */
		if (blen > 0)
		{
			if (fn)
				fn(arg, buf, blen);
			ntok++;
		}
		blen = 0;
		full = false;

		if (act == TC_CP_SOLO)
		{
			if (lower)
				cp = tc_unicode_tolower(cp);
			n = tc_utf8_encode(cp, buf);
			if (fn)
				fn(arg, buf, n);
			ntok++;
		}
	}
	if (blen > 0)
	{
		if (fn)
			fn(arg, buf, blen);
		ntok++;
	}
	return ntok;
}

/* ---------------------------------------------------------------------
 * Vocabulary
 * ---------------------------------------------------------------------
 */

/* Default arena chunk size; bigger words get a chunk of their own. */
#define TC_ARENA_CHUNK		(64 * 1024)

/* One distinct word. */
typedef struct TcWordEntry
{
	const char *word;			/* into an arena chunk, not NUL-terminated */
	size_t		len;
	uint64_t	hash;
	uint64_t	count;
} TcWordEntry;

/* Arena chunk holding word bytes; the bytes follow the header. */
typedef struct TcArenaChunk
{
	struct TcArenaChunk *next;
	size_t		used;
	size_t		size;
	char		data[];
} TcArenaChunk;

struct TcVocab
{
	TcAllocator alloc;
	TcWordEntry *words;			/* (nwords) first-seen order; id order after
								 * finalize */
	size_t		nwords;
	size_t		words_cap;
	size_t	   *slots;			/* (nslots) 1 + index into words, 0 = empty */
	size_t		nslots;			/* a power of two */
	TcArenaChunk *chunks;		/* head is the chunk being filled */
	bool		finalized;
	bool		use_oov;
	int32_t		first_id;		/* id of words[0]: 1, or 2 with use_oov */
};

/* Deterministic 64-bit hash: FNV-1a followed by the splitmix64 finaliser. */
static inline uint64_t
tc_word_hash(const char *word, size_t len)
{
	const unsigned char *p = (const unsigned char *) word;
	uint64_t	h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
	{
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* Free a list of arena chunks. */
static void
tc_arena_free(const TcAllocator *a, TcArenaChunk *c)
{
	while (c)
	{
		TcArenaChunk *next = c->next;

		tc_free(a, c);
		c = next;
	}
}

/* Copy len bytes into the vocabulary's arena; NULL when out of memory. */
static const char *
tc_arena_copy(TcVocab *v, const char *word, size_t len)
{
	TcArenaChunk *c = v->chunks;
	char	   *dst;

	if (c == NULL || c->size - c->used < len)
	{
		size_t		size = len > TC_ARENA_CHUNK / 4 ? len : TC_ARENA_CHUNK;

		c = tc_alloc(&v->alloc,
					 tc_add_size(offsetof(TcArenaChunk, data), size));
		if (c == NULL)
			return NULL;
		c->used = 0;
		c->size = size;
		if (size == len && v->chunks != NULL)
		{
			/* a big word: keep filling the current chunk afterwards */
			c->next = v->chunks->next;
			v->chunks->next = c;
		}
		else
		{
			c->next = v->chunks;
			v->chunks = c;
		}
	}
	dst = c->data + c->used;
	if (len > 0)
		memcpy(dst, word, len);
	c->used += len;
	return dst;
}

/* Slot of word in the table, or of the empty slot where it would go. */
static inline size_t
tc_vocab_probe(const TcVocab *v, const char *word, size_t len, uint64_t h)
{
	size_t		mask = v->nslots - 1;
	size_t		idx = (size_t) h & mask;

	while (v->slots[idx] != 0)
	{
		const TcWordEntry *e = &v->words[v->slots[idx] - 1];

		if (e->hash == h && e->len == len &&
			(len == 0 || memcmp(e->word, word, len) == 0))
			break;
		idx = (idx + 1) & mask;
	}
	return idx;
}

/* Smallest power-of-two table keeping n words under 70% load (at least 16). */
static size_t
tc_slots_for(size_t n)
{
	size_t		s = 16;

	while (s / 10 * 7 < n + 1)
	{
		if (s > SIZE_MAX / 4)
			return SIZE_MAX;
		s *= 2;
	}
	return s;
}

/* Rebuild the slot table with nslots slots from the entries. */
static TcStatus
tc_vocab_rehash(TcVocab *v, size_t nslots, TcError *err)
{
	size_t	   *slots;

	if (nslots == SIZE_MAX ||
		(slots = tc_alloc_array(&v->alloc, nslots, sizeof(size_t))) == NULL)
		return tc_error(err, TC_ERR_NOMEM,
						"out of memory growing the vocabulary to %zu words",
						v->nwords);
	tc_free(&v->alloc, v->slots);
	v->slots = slots;
	v->nslots = nslots;
	for (size_t i = 0; i < v->nwords; i++)
	{
		size_t		mask = nslots - 1;
		size_t		idx = (size_t) v->words[i].hash & mask;

		while (slots[idx] != 0)
			idx = (idx + 1) & mask;
		slots[idx] = i + 1;
	}
	return TC_OK;
}

/* Create an empty vocabulary for counting. */
TcVocab *
tc_vocab_create(const TcAllocator *a, TcError *err)
{
	TcVocab    *v = tc_alloc0(a, sizeof(TcVocab));

	if (v == NULL)
	{
		tc_error(err, TC_ERR_NOMEM, "out of memory creating a vocabulary");
		return NULL;
	}
	v->alloc = *a;
	v->first_id = 1;
	v->words_cap = 64;
	v->words = tc_alloc_array(a, v->words_cap, sizeof(TcWordEntry));
	v->nslots = tc_slots_for(v->words_cap);
	v->slots = tc_alloc_array(a, v->nslots, sizeof(size_t));
	if (v->words == NULL || v->slots == NULL)
	{
		tc_vocab_free(v);
		tc_error(err, TC_ERR_NOMEM, "out of memory creating a vocabulary");
		return NULL;
	}
	return v;
}

/* Free a vocabulary and all its words. */
void
tc_vocab_free(TcVocab *v)
{
	TcAllocator a;

	if (v == NULL)
		return;
	a = v->alloc;
	tc_arena_free(&a, v->chunks);
	tc_free(&a, v->words);
	tc_free(&a, v->slots);
	tc_free(&a, v);
}

/* Add n to word's count, inserting it (copied) when new. */
static TcStatus
tc_vocab_add_hashed(TcVocab *v, const char *word, size_t len, uint64_t h,
					uint64_t n, TcError *err)
{
	size_t		idx = tc_vocab_probe(v, word, len, h);
	TcWordEntry *e;

	if (v->slots[idx] != 0)
	{
		e = &v->words[v->slots[idx] - 1];
		e->count = (e->count > UINT64_MAX - n) ? UINT64_MAX : e->count + n;
		return TC_OK;
	}

	/* a new word: make room in the entry array and the table first */
	if (v->nwords == v->words_cap)
	{
		size_t		cap = tc_mul_size(v->words_cap, 2);
		TcWordEntry *words = tc_alloc(&v->alloc,
									  tc_mul_size(cap, sizeof(TcWordEntry)));

		if (words == NULL)
			return tc_error(err, TC_ERR_NOMEM,
							"out of memory growing the vocabulary to %zu words",
							v->nwords + 1);
		memcpy(words, v->words, v->nwords * sizeof(TcWordEntry));
		tc_free(&v->alloc, v->words);
		v->words = words;
		v->words_cap = cap;
	}
	if (v->nslots / 10 * 7 < v->nwords + 1)
	{
		TcStatus	st = tc_vocab_rehash(v, tc_mul_size(v->nslots, 2), err);

		if (st != TC_OK)
			return st;
		idx = tc_vocab_probe(v, word, len, h);
	}

	e = &v->words[v->nwords];
	e->word = tc_arena_copy(v, word, len);
	if (e->word == NULL)
		return tc_error(err, TC_ERR_NOMEM,
						"out of memory storing vocabulary word %zu",
						v->nwords + 1);
	e->len = len;
	e->hash = h;
	e->count = n;
	v->slots[idx] = ++v->nwords;
	return TC_OK;
}

/* Add n to the count of one word (first call fixes its rank among ties). */
TcStatus
tc_vocab_add(TcVocab *v, const char *word, size_t len, uint64_t n,
			 TcError *err)
{
	if (v->finalized)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"cannot add words to a finalized vocabulary");
	if (len == 0 || word == NULL)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"vocabulary words must not be empty");
	return tc_vocab_add_hashed(v, word, len, tc_word_hash(word, len), n, err);
}

/* State of tc_vocab_count_text's token callback. */
typedef struct TcCountState
{
	TcVocab    *v;
	TcError    *err;
	TcStatus	status;			/* first failure; later tokens are ignored */
} TcCountState;

/* Token callback: count one occurrence. */
static void
tc_count_token(void *arg, const char *tok, size_t len)
{
	TcCountState *st = arg;

	if (st->status == TC_OK)
		st->status = tc_vocab_add_hashed(st->v, tok, len,
										  tc_word_hash(tok, len), 1, st->err);
}

/* Tokenize text and add one to the count of each token. */
TcStatus
tc_vocab_count_text(TcVocab *v, const TcTokOptions *opts,
					const char *text, size_t len, TcError *err)
{
	TcCountState st;

	if (v->finalized)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"cannot count words into a finalized vocabulary");
	st.v = v;
	st.err = err;
	st.status = TC_OK;
	tc_tokenize(opts, text, len, tc_count_token, &st);
	return st.status;
}

/* Number of distinct words counted so far (before finalize) or kept (after). */
size_t
tc_vocab_size(const TcVocab *v)
{
	return v->nwords;
}

/*
 * Stable bottom-up merge sort of idx[0..n) by words[idx].count descending;
 * tmp has room for n entries.  Equal counts keep their order, which is
 * first-seen order since idx starts as 0..n-1.
 */
static void
tc_sort_by_count(const TcWordEntry *words, size_t *idx, size_t *tmp, size_t n)
{
	size_t	   *src = idx;
	size_t	   *dst = tmp;

	for (size_t width = 1; width < n; width = (width > n / 2) ? n : width * 2)
	{
		for (size_t lo = 0; lo < n; lo += 2 * width)
		{
			size_t		mid = (width < n - lo) ? lo + width : n;
			size_t		hi = (2 * width < n - lo) ? lo + 2 * width : n;
			size_t		a = lo,
						b = mid,
						k = lo;

			while (a < mid && b < hi)
			{
				/* take from the right run only when strictly more frequent */
				if (words[src[b]].count > words[src[a]].count)
					dst[k++] = src[b++];
				else
					dst[k++] = src[a++];
			}
			while (a < mid)
				dst[k++] = src[a++];
			while (b < hi)
				dst[k++] = src[b++];
		}
		{
			size_t	   *t = src;

			src = dst;
			dst = t;
		}
	}
	if (src != idx)
		memcpy(idx, src, n * sizeof(size_t));
}

/*
 * Replace v's contents by the words words[order[0..k)] (in that order),
 * stored compactly: one exact arena chunk, an exact entry array and a fresh
 * table.  On failure v is unchanged.
 */
static TcStatus
tc_vocab_compact(TcVocab *v, const size_t *order, size_t k, TcError *err)
{
	size_t		bytes = 0;
	TcArenaChunk *chunk;
	TcWordEntry *words;
	size_t		nslots = tc_slots_for(k);
	size_t	   *slots;

	for (size_t i = 0; i < k; i++)
		bytes = tc_add_size(bytes, v->words[order[i]].len);
	chunk = tc_alloc(&v->alloc,
					 tc_add_size(offsetof(TcArenaChunk, data), bytes));
	words = tc_alloc_array(&v->alloc, k, sizeof(TcWordEntry));
	slots = (nslots == SIZE_MAX) ? NULL :
		tc_alloc_array(&v->alloc, nslots, sizeof(size_t));
	if (chunk == NULL || words == NULL || slots == NULL)
	{
		tc_free(&v->alloc, chunk);
		tc_free(&v->alloc, words);
		tc_free(&v->alloc, slots);
		return tc_error(err, TC_ERR_NOMEM,
						"out of memory finalizing a vocabulary of %zu words", k);
	}
	chunk->next = NULL;
	chunk->size = bytes;
	chunk->used = 0;
	for (size_t i = 0; i < k; i++)
	{
		const TcWordEntry *e = &v->words[order[i]];

		words[i] = *e;
		words[i].word = chunk->data + chunk->used;
		memcpy(chunk->data + chunk->used, e->word, e->len);
		chunk->used += e->len;
	}

	tc_arena_free(&v->alloc, v->chunks);
	tc_free(&v->alloc, v->words);
	v->chunks = chunk;
	v->words = words;
	v->nwords = k;
	v->words_cap = k;
	tc_free(&v->alloc, v->slots);
	v->slots = slots;
	v->nslots = nslots;
	for (size_t i = 0; i < k; i++)
	{
		size_t		idx = tc_vocab_probe(v, words[i].word, words[i].len,
										 words[i].hash);

		slots[idx] = i + 1;
	}
	return TC_OK;
}

/* Check vocab_size against use_oov; returns the first word id via *first_id. */
static TcStatus
tc_vocab_check_size(int vocab_size, bool use_oov, int32_t *first_id,
					TcError *err)
{
	int32_t		first = use_oov ? 2 : 1;

	if (vocab_size < first)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"vocab_size must be at least %d%s, not %d", (int) first,
						use_oov ? " with an out-of-vocabulary token" : "",
						vocab_size);
	*first_id = first;
	return TC_OK;
}

/* Keep the most frequent words (ties: first seen), give them ids, drop the rest. */
TcStatus
tc_vocab_finalize(TcVocab *v, int vocab_size, bool use_oov, TcError *err)
{
	int32_t		first_id = 1;
	size_t		k;
	size_t	   *order;
	size_t	   *tmp;
	TcStatus	st;

	if (v->finalized)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"vocabulary is already finalized");
	st = tc_vocab_check_size(vocab_size, use_oov, &first_id, err);
	if (st != TC_OK)
		return st;
	k = (size_t) (vocab_size - first_id);
	if (k > v->nwords)
		k = v->nwords;

	order = tc_alloc_array(&v->alloc, v->nwords, sizeof(size_t));
	tmp = tc_alloc_array(&v->alloc, v->nwords, sizeof(size_t));
	if (order == NULL || tmp == NULL)
	{
		tc_free(&v->alloc, order);
		tc_free(&v->alloc, tmp);
		return tc_error(err, TC_ERR_NOMEM,
						"out of memory sorting a vocabulary of %zu words",
						v->nwords);
	}
	for (size_t i = 0; i < v->nwords; i++)
		order[i] = i;
	tc_sort_by_count(v->words, order, tmp, v->nwords);
	tc_free(&v->alloc, tmp);

	st = tc_vocab_compact(v, order, k, err);
	tc_free(&v->alloc, order);
	if (st != TC_OK)
		return st;
	v->finalized = true;
	v->use_oov = use_oov;
	v->first_id = first_id;
	return TC_OK;
}

/* Build a finalized vocabulary from words in id order; duplicates are an error. */
TcVocab *
tc_vocab_from_words(const TcAllocator *a, const char *const *words,
					const size_t *lens, size_t n, int vocab_size,
					bool use_oov, TcError *err)
{
	int32_t		first_id = 1;
	TcVocab    *v;
	TcArenaChunk *chunk;
	size_t		bytes = 0;

	if (tc_vocab_check_size(vocab_size, use_oov, &first_id, err) != TC_OK)
		return NULL;
	if (n > 0 && (words == NULL || lens == NULL))
	{
		tc_error(err, TC_ERR_INVALID_ARG, "vocabulary word list is missing");
		return NULL;
	}
	if (n > (size_t) (vocab_size - first_id))
	{
		tc_error(err, TC_ERR_FORMAT,
				 "vocabulary has %zu words, more than vocab_size %d allows",
				 n, vocab_size);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
	{
		if (lens[i] == 0 || words[i] == NULL)
		{
			tc_error(err, TC_ERR_FORMAT, "vocabulary word %zu is empty", i);
			return NULL;
		}
		bytes = tc_add_size(bytes, lens[i]);
	}

	v = tc_alloc0(a, sizeof(TcVocab));
	if (v == NULL)
	{
		tc_error(err, TC_ERR_NOMEM, "out of memory loading a vocabulary");
		return NULL;
	}
	v->alloc = *a;
	v->words_cap = n;
	v->words = tc_alloc_array(a, n, sizeof(TcWordEntry));
	v->nslots = tc_slots_for(n);
	v->slots = (v->nslots == SIZE_MAX) ? NULL :
		tc_alloc_array(a, v->nslots, sizeof(size_t));
	chunk = tc_alloc(a, tc_add_size(offsetof(TcArenaChunk, data), bytes));
	if (v->words == NULL || v->slots == NULL || chunk == NULL)
	{
		tc_free(a, chunk);
		tc_vocab_free(v);
		tc_error(err, TC_ERR_NOMEM,
				 "out of memory loading a vocabulary of %zu words", n);
		return NULL;
	}
	chunk->next = NULL;
	chunk->size = bytes;
	chunk->used = 0;
	v->chunks = chunk;

	for (size_t i = 0; i < n; i++)
	{
		uint64_t	h = tc_word_hash(words[i], lens[i]);
		size_t		idx = tc_vocab_probe(v, words[i], lens[i], h);
		TcWordEntry *e = &v->words[i];

		if (v->slots[idx] != 0)
		{
			tc_error(err, TC_ERR_FORMAT,
					 "duplicate word in vocabulary at ids %d and %d",
					 (int) (first_id + (int32_t) (v->slots[idx] - 1)),
					 (int) (first_id + (int32_t) i));
			tc_vocab_free(v);
			return NULL;
		}
		e->word = chunk->data + chunk->used;
		memcpy(chunk->data + chunk->used, words[i], lens[i]);
		chunk->used += lens[i];
		e->len = lens[i];
		e->hash = h;
		e->count = 0;
		v->slots[idx] = ++v->nwords;
	}
	v->finalized = true;
	v->use_oov = use_oov;
	v->first_id = first_id;
	return v;
}

/* Id of word after finalize: 0 if absent (1 if use_oov). */
int32_t
tc_vocab_lookup(const TcVocab *v, const char *word, size_t len)
{
	size_t		idx;
	int32_t		absent = v->use_oov ? 1 : 0;

	if (!v->finalized || (len > 0 && word == NULL))
		return absent;
	idx = tc_vocab_probe(v, word, len, tc_word_hash(word, len));
	if (v->slots[idx] == 0)
		return absent;
	return v->first_id + (int32_t) (v->slots[idx] - 1);
}

/* Word with the given id after finalize (NULL for 0, OOV, or unused ids). */
const char *
tc_vocab_word(const TcVocab *v, int32_t id, size_t *len)
{
	if (!v->finalized || id < v->first_id ||
		(size_t) (id - v->first_id) >= v->nwords)
	{
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = v->words[id - v->first_id].len;
	return v->words[id - v->first_id].word;
}

/* Largest id in use plus one (0 before finalize). */
int32_t
tc_vocab_id_limit(const TcVocab *v)
{
	if (!v->finalized)
		return 0;
	return v->first_id + (int32_t) v->nwords;
}

/* State of tc_text_to_ids's token callback: ids is a ring of max_len. */
typedef struct TcIdsState
{
	const TcVocab *v;
	int32_t    *ids;
	size_t		max_len;
	size_t		count;			/* ids produced, including overwritten ones */
} TcIdsState;

/* Token callback: look the token up and push its id into the ring. */
static void
tc_ids_token(void *arg, const char *tok, size_t len)
{
	TcIdsState *st = arg;
	int32_t		id = tc_vocab_lookup(st->v, tok, len);

	if (id == 0)
		return;
	st->ids[st->count % st->max_len] = id;
	st->count++;
}

/* Reverse ids[lo..hi). */
static void
tc_reverse_ids(int32_t *ids, size_t lo, size_t hi)
{
	while (hi > lo + 1)
	{
		int32_t		t = ids[lo];

		ids[lo] = ids[hi - 1];
		ids[hi - 1] = t;
		lo++;
		hi--;
	}
}

/* Tokenize text to ids, keeping the last max_len (truncating='pre'). */
int
tc_text_to_ids(const TcVocab *v, const TcTokOptions *opts,
			   const char *text, size_t len, int max_len, int32_t *ids)
{
	TcIdsState	st;

	if (max_len <= 0 || ids == NULL)
		return 0;
	st.v = v;
	st.ids = ids;
	st.max_len = (size_t) max_len;
	st.count = 0;
	tc_tokenize(opts, text, len, tc_ids_token, &st);
	if (st.count <= st.max_len)
		return (int) st.count;

	/* the oldest kept id sits at count % max_len: rotate it to the front */
	{
		size_t		start = st.count % st.max_len;

		tc_reverse_ids(ids, 0, start);
		tc_reverse_ids(ids, start, st.max_len);
		tc_reverse_ids(ids, 0, st.max_len);
	}
	return max_len;
}
