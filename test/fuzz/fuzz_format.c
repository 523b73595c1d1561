/*
 * fuzz_format.c
 *	  libFuzzer harness for the core's model reader and tokenizer.
 *
 * Each input is handed, as bytes, to tc_model_deserialize and
 * tc_model_validate_bytes (which must agree), first as it is and then with
 * its content id and checksum recomputed (libFuzzer cannot fix a checksum
 * by mutation, so without this it would never get past it); an accepted
 * model must
 * serialize back to exactly the same bytes and must run inference on ids
 * from the input.  The same bytes, read as text, go through tc_tokenize and
 * tc_vocab_count_text in word and char mode, with and without
 * lower-casing.  Any crash, sanitizer report, disagreement, or allocation
 * out of proportion to the input size aborts the run.
 *
 * Build and run with test/fuzz/run.sh (clang -fsanitize=fuzzer,address,
 * undefined); the seed corpus in test/fuzz/corpus comes from make_seeds.c.
 *
 * It does not fuzz training (tc_model_batch) or the PostgreSQL glue.
 *
 * Memory: everything comes from a small malloc allocator that counts live
 * bytes; whatever an iteration allocates it must free (checked).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "textclf/format.h"

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
		abort();				/* reader allocated before checking a count */
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
	unsigned char *p = (unsigned char *) ptr - 16;
	size_t		n;

	memcpy(&n, p, sizeof(n));
	f->live -= n;
	free(p);
}

static const TcAllocator fuzz_allocator = {fuzz_alloc, fuzz_free, &fuzz_state};

/* Token callback: touch every byte so ASan checks the token's range. */
static void
touch_token(void *arg, const char *tok, size_t len)
{
	size_t	   *sum = arg;

	if (len == 0 || len > TC_MAX_TOKEN_BYTES)
		abort();
	for (size_t i = 0; i < len; i++)
		*sum += (unsigned char) tok[i];
}

/*
 * With all_modes, tokenize and count data in every mode; then run model m
 * (if any) on the ids of data.
 */
static void
fuzz_text(const uint8_t *data, size_t size, const TcModel *m, bool all_modes)
{
	for (int mode = TC_TOK_WORD; all_modes && mode <= TC_TOK_CHAR; mode++)
		for (int lower = 0; lower <= 1; lower++)
		{
			TcTokOptions opts;
			TcVocab    *v;
			TcError		err;
			size_t		sum = 0;

			opts.mode = mode;
			opts.lowercase = lower != 0;
			tc_tokenize(&opts, (const char *) data, size, touch_token, &sum);
			v = tc_vocab_create(&fuzz_allocator, &err);
			if (v == NULL)
				continue;
			if (tc_vocab_count_text(v, &opts, (const char *) data, size,
									&err) == TC_OK &&
				tc_vocab_finalize(v, 20, mode == TC_TOK_CHAR, &err) == TC_OK)
			{
				int32_t		ids[16];
				int			n = tc_text_to_ids(v, &opts, (const char *) data,
											   size, 16, ids);

				if (n < 0 || n > 16)
					abort();
			}
			tc_vocab_free(v);
		}

	if (m != NULL)
	{
		int32_t		ids[64];	/* (T) */
		float	   *probs = malloc(sizeof(float) * (size_t) m->cfg.num_classes);	/* (num_classes) */
		float	   *work = malloc(sizeof(float) * tc_model_infer_work_floats(m));
		int			n = tc_text_to_ids(m->vocab, &m->cfg.tok, (const char *) data,
									   size, 64, ids);

		for (int t = 0; t < n; t++)
			if (ids[t] < 1 || ids[t] >= m->cfg.vocab_size)
				abort();		/* an id outside the embedding */
		tc_model_infer(m, ids, n, probs, work);
		(void) tc_model_decide(m, probs, m->cfg.threshold);
		free(probs);
		free(work);
	}
}

/* Store v little-endian at p. */
static void
store_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

/*
 * Load data as a model and check every promise of the reader: the two
 * entry points agree, a rejection is clean, an acceptance re-serializes to
 * the same bytes.  Then tokenize data (all_modes: in every mode) and run
 * the model on it.
 */
static void
fuzz_blob(const uint8_t *data, size_t size, bool all_modes)
{
	TcModel    *m = NULL;
	TcError		err;
	TcError		err2;
	TcStatus	st;
	TcStatus	st2;

	memset(&err, 0, sizeof(err));
	st = tc_model_deserialize(&fuzz_allocator, data, size, &m, &err);
	st2 = tc_model_validate_bytes(data, size, &err2);
	if (st != st2)
		abort();
	if (st != TC_OK)
	{
		if (m != NULL || err.msg[0] == '\0' || err.status != st ||
			(st != TC_ERR_FORMAT && st != TC_ERR_VERSION))
			abort();
	}
	else
	{
		size_t		n = tc_model_serialized_size(m);
		unsigned char *buf = malloc(n);
		uint64_t	id = 0;

		if (n != size ||
			tc_model_serialize(m, buf, n, &id, &err) != TC_OK ||
			memcmp(buf, data, n) != 0 || id != tc_model_blob_id(data))
			abort();
		free(buf);
	}

	fuzz_text(data, size, m, all_modes);
	tc_model_free(m);
	if (fuzz_state.live != 0)
		abort();				/* leak */
}

/*
 * libFuzzer entry point.  The input is tried as is (which exercises the
 * header and checksum checks) and, when it is long enough, once more with
 * its content id and checksum recomputed, so that mutations reach the
 * parser behind the checksum.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_state.live = 0;
	fuzz_state.bound = 64 * size + (1 << 20);
	fuzz_blob(data, size, true);
	if (size >= 32)
	{
		unsigned char *copy = malloc(size);

		memcpy(copy, data, size);
		store_u64(copy + 16, tc_hash64(copy + 24, size - 32));
		store_u64(copy + size - 8, tc_hash64(copy, size - 8));
		if (memcmp(copy, data, size) != 0)
			fuzz_blob(copy, size, false);
		free(copy);
	}
	return 0;
}
