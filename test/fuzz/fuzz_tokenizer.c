/*
 * fuzz_tokenizer.c
 *	  libFuzzer harness for the core's tokenizer and vocabulary.
 *
 * Input layout: byte 0 holds flags (bit 0: char mode, bit 1: lower-case,
 * bit 2: OOV token), byte 1 the vocabulary size (2 + byte), byte 2 max_len
 * (1 + byte); the rest is split at its first NUL into a training text,
 * whose tokens are counted, and a query text (the whole rest when there
 * is no NUL).  Every token of the query text is also added with tc_vocab_add
 * (count from byte 0), so vocabularies near and past vocab_size are both
 * reached.  Then it checks what callers rely on:
 *	 - tc_tokenize returns the number of callbacks, each token is 1 ..
 *	   TC_MAX_TOKEN_BYTES bytes and lies within the text (ASan checks each
 *	   byte), and tokenizing twice gives the same tokens;
 *	 - after tc_vocab_finalize: id_limit <= vocab_size, every id has a word
 *	   that looks up to the same id, and a lookup of any query token is 0
 *	   (or the OOV id) or a valid id;
 *	 - tc_text_to_ids equals the last max_len non-zero lookups of the
 *	   tokens, in order (a differential check of the ring buffer);
 *	 - tc_vocab_from_words on the finalized words (as the format reader
 *	   builds it) gives the same ids.
 * Any violation aborts, which libFuzzer reports as a crash.
 *
 * It does not fuzz the model format (fuzz_format.c) or training.
 *
 * Memory: a counting malloc allocator; whatever an iteration allocates it
 * must free (checked), and no single request may exceed a bound
 * proportional to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "textclf/tokenizer.h"

/* Live bytes and the per-input allocation bound of the fuzz allocator. */
typedef struct FuzzAlloc
{
	size_t		live;
	size_t		bound;			/* a single request above this is a bug */
} FuzzAlloc;

static FuzzAlloc fuzz_state;

/* malloc with a size prefix; aborts on a request out of proportion. */
static void *
fuzz_alloc(void *ctx, size_t n)
{
	FuzzAlloc  *f = ctx;
	unsigned char *p;

	if (n > f->bound)
		abort();
	p = malloc(n + 16);
	if (p == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	f->live += n;
	return p + 16;
}

/* free for fuzz_alloc. */
static void
fuzz_free(void *ctx, void *ptr)
{
	FuzzAlloc  *f = ctx;
	unsigned char *p;
	size_t		n;

	if (ptr == NULL)
		return;
	p = (unsigned char *) ptr - 16;
	memcpy(&n, p, sizeof(n));
	f->live -= n;
	free(p);
}

static const TcAllocator fuzz_allocator = {fuzz_alloc, fuzz_free, &fuzz_state};

/* Tokens of one text, copied out: offsets into one byte buffer. */
typedef struct TokList
{
	size_t		n;
	size_t		cap;
	size_t	   *off;			/* (cap) start of token i in bytes */
	size_t	   *len;			/* (cap) */
	unsigned char *bytes;
	size_t		nbytes;
	size_t		bytes_cap;
	const TcVocab *v;			/* with lookups: the vocabulary */
} TokList;

/* Token callback: check the token and append it to the TokList. */
static void
collect_token(void *arg, const char *tok, size_t len)
{
	TokList    *l = arg;

	if (len == 0 || len > TC_MAX_TOKEN_BYTES)
		abort();
	if (l->n == l->cap)
	{
		l->cap = l->cap ? 2 * l->cap : 64;
		l->off = realloc(l->off, sizeof(size_t) * l->cap);
		l->len = realloc(l->len, sizeof(size_t) * l->cap);
	}
	if (l->nbytes + len > l->bytes_cap)
	{
		l->bytes_cap = 2 * (l->nbytes + len);
		l->bytes = realloc(l->bytes, l->bytes_cap);
	}
	if (l->off == NULL || l->len == NULL || l->bytes == NULL)
		abort();
	memcpy(l->bytes + l->nbytes, tok, len);	/* ASan checks the range */
	l->off[l->n] = l->nbytes;
	l->len[l->n] = len;
	l->nbytes += len;
	l->n++;
}

/* Free a TokList's buffers. */
static void
toklist_free(TokList *l)
{
	free(l->off);
	free(l->len);
	free(l->bytes);
	memset(l, 0, sizeof(*l));
}

/* Tokenize text into l, checking the count and determinism. */
static void
tokenize_checked(const TcTokOptions *opts, const char *text, size_t size,
				 TokList *l)
{
	TokList		again;
	size_t		n;

	memset(l, 0, sizeof(*l));
	n = tc_tokenize(opts, text, size, collect_token, l);
	if (n != l->n)
		abort();
	memset(&again, 0, sizeof(again));
	tc_tokenize(opts, text, size, collect_token, &again);
	if (again.n != l->n || again.nbytes != l->nbytes ||
		(l->nbytes > 0 && memcmp(again.bytes, l->bytes, l->nbytes) != 0))
		abort();
	toklist_free(&again);
}

/* Check every id of a finalized vocabulary against its word. */
static void
check_vocab(const TcVocab *v, int vocab_size, bool use_oov)
{
	int32_t		limit = tc_vocab_id_limit(v);
	int32_t		first = use_oov ? 2 : 1;

	if (limit > vocab_size || (limit != 0 && limit < first))
		abort();
	for (int32_t id = first; id < limit; id++)
	{
		size_t		len;
		const char *w = tc_vocab_word(v, id, &len);

		if (w == NULL || len == 0 || len > TC_MAX_TOKEN_BYTES ||
			tc_vocab_lookup(v, w, len) != id)
			abort();
	}
}

/* Run one input through tokenizer and vocabulary; see the file header. */
static void
fuzz_one(const uint8_t *data, size_t size)
{
	TcTokOptions opts;
	bool		use_oov;
	int			vocab_size;
	int			max_len;
	const char *train;
	size_t		train_len;
	const char *query;
	size_t		query_len;
	const uint8_t *nul;
	TokList		qt;
	TcVocab    *v;
	TcVocab    *v2 = NULL;
	TcError		err;
	int32_t    *ids;
	int32_t    *want;
	size_t		nwant = 0;
	int			n;

	if (size < 3)
		return;
	opts.mode = (data[0] & 1) ? TC_TOK_CHAR : TC_TOK_WORD;
	opts.lowercase = (data[0] & 2) != 0;
	use_oov = (data[0] & 4) != 0;
	vocab_size = 2 + data[1] + (use_oov ? 1 : 0);
	max_len = 1 + data[2];
	data += 3;
	size -= 3;
	nul = memchr(data, 0, size);
	if (nul != NULL)
	{
		train = (const char *) data;
		train_len = (size_t) (nul - data);
		query = (const char *) nul + 1;
		query_len = size - train_len - 1;
	}
	else
	{
		train = query = (const char *) data;
		train_len = query_len = size;
	}

	tokenize_checked(&opts, query, query_len, &qt);

	v = tc_vocab_create(&fuzz_allocator, &err);
	if (v == NULL)
		abort();
	if (tc_vocab_count_text(v, &opts, train, train_len, &err) != TC_OK)
		abort();
	for (size_t i = 0; i < qt.n && i < 64; i++)
		if (tc_vocab_add(v, (const char *) qt.bytes + qt.off[i], qt.len[i],
						 1 + (data[0] >> 3), &err) != TC_OK)
			abort();
	if (tc_vocab_finalize(v, vocab_size, use_oov, &err) != TC_OK)
		abort();
	check_vocab(v, vocab_size, use_oov);

	/* text_to_ids == the last max_len non-zero lookups, in order */
	ids = malloc(sizeof(int32_t) * (size_t) max_len);	/* (max_len) */
	want = malloc(sizeof(int32_t) * (qt.n ? qt.n : 1)); /* (tokens) */
	for (size_t i = 0; i < qt.n; i++)
	{
		int32_t		id = tc_vocab_lookup(v, (const char *) qt.bytes + qt.off[i],
										 qt.len[i]);

		if (id < 0 || id >= tc_vocab_id_limit(v) + (use_oov ? 2 : 1))
			abort();
		if (id != 0)
			want[nwant++] = id;
	}
	n = tc_text_to_ids(v, &opts, query, query_len, max_len, ids);
	if (n < 0 || n > max_len || (size_t) n != (nwant < (size_t) max_len ? nwant : (size_t) max_len))
		abort();
	if (n > 0 && memcmp(ids, want + (nwant - (size_t) n), sizeof(int32_t) * (size_t) n) != 0)
		abort();

	/* rebuilt from its words, as the model reader does: the same ids */
	{
		int32_t		first = use_oov ? 2 : 1;
		int32_t		limit = tc_vocab_id_limit(v);
		size_t		nw = limit > first ? (size_t) (limit - first) : 0;
		const char **words = malloc(sizeof(char *) * (nw ? nw : 1));
		size_t	   *lens = malloc(sizeof(size_t) * (nw ? nw : 1));

		for (size_t i = 0; i < nw; i++)
			words[i] = tc_vocab_word(v, first + (int32_t) i, &lens[i]);
		v2 = tc_vocab_from_words(&fuzz_allocator, words, lens, nw, vocab_size,
								 use_oov, &err);
		if (v2 == NULL)
			abort();
		for (size_t i = 0; i < qt.n; i++)
			if (tc_vocab_lookup(v2, (const char *) qt.bytes + qt.off[i], qt.len[i]) !=
				tc_vocab_lookup(v, (const char *) qt.bytes + qt.off[i], qt.len[i]))
				abort();
		free(words);
		free(lens);
	}

	tc_vocab_free(v2);
	tc_vocab_free(v);
	free(ids);
	free(want);
	toklist_free(&qt);
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_state.live = 0;
	fuzz_state.bound = 256 * size + (1 << 20);
	fuzz_one(data, size);
	if (fuzz_state.live != 0)
		abort();				/* leak */
	return 0;
}
