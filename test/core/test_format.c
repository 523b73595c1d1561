/*
 * test_format.c
 *	  Unit tests of the serialized model format (src/core/format.c).
 *
 * Builds small models (with non-ASCII labels and words), checks that
 * serialize -> deserialize -> serialize is bit-exact, that the content id is
 * stable and content-sensitive, and then attacks the reader: every
 * truncation, every single-byte change without fixing the checksum,
 * thousands of random mutations WITH the content id and checksum fixed (so
 * they reach the parser), another format version, and huge counts, which
 * must fail without any large allocation (a counting allocator refuses
 * anything above 64 MB and records the largest request).
 *
 * It does not test the numerics of the model (test_model does).
 *
 * Memory: every model comes from the counting allocator, which also checks
 * that nothing leaks.
 */
#include "tc_test.h"

#include "textclf/format.h"

/* Bytes before the body, and the checksum's size. */
#define HDR			24
#define SUMLEN		8
#define ALLOC_LIMIT ((size_t) 64 * 1024 * 1024)

/* A malloc allocator that counts live bytes and refuses big requests. */
typedef struct CountingAlloc
{
	size_t		live;			/* bytes allocated and not yet freed */
	size_t		largest;		/* largest request seen */
	size_t		limit;			/* requests above this fail */
	long		failures;		/* refused requests */
} CountingAlloc;

/* Allocation with a 16-byte size prefix. */
static void *
counting_alloc(void *ctx, size_t n)
{
	CountingAlloc *c = ctx;
	unsigned char *p;

	if (n > c->largest)
		c->largest = n;
	if (n > c->limit || c->live + n > c->limit)
	{
		c->failures++;
		return NULL;
	}
	p = malloc(n + 16);
	if (p == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	c->live += n;
	return p + 16;
}

/* Free of counting_alloc memory. */
static void
counting_free(void *ctx, void *ptr)
{
	CountingAlloc *c = ctx;
	unsigned char *p = (unsigned char *) ptr - 16;
	size_t		n;

	memcpy(&n, p, sizeof(n));
	c->live -= n;
	free(p);
}

static CountingAlloc counter = {0, 0, ALLOC_LIMIT, 0};
static const TcAllocator calloc_ = {counting_alloc, counting_free, &counter};

/* Little-endian helpers for building hostile blobs. */
static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/* Store v little-endian at p. */
static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
	p[2] = (unsigned char) (v >> 16);
	p[3] = (unsigned char) (v >> 24);
}

/* Store v little-endian at p. */
static void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t) v);
	put32(p + 4, (uint32_t) (v >> 32));
}

/* Recompute the content id and the checksum of a (mutated) blob. */
static void
fix_hashes(unsigned char *buf, size_t size)
{
	if (size < HDR + SUMLEN)
		return;
	put64(buf + 16, tc_hash64(buf + HDR, size - HDR - SUMLEN));
	put64(buf + size - SUMLEN, tc_hash64(buf, size - SUMLEN));
}

/* xorshift64* for the mutation loop (deterministic). */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/*
 * A small model: V = vocab_size, E = 4, H = 3, the given labels, nwords
 * words (ids 1.. or 2.. with use_oov).
 */
static TcModel *
make_model(int vocab_size, int nclasses, const char *const *labels,
		   const char *const *words, size_t nwords, bool use_oov, int mode,
		   uint64_t seed)
{
	TcConfig	cfg;
	TcModel    *m;
	TcError		err;
	size_t	   *lens;

	tc_config_default(&cfg);
	cfg.vocab_size = vocab_size;
	cfg.max_len = 20;
	cfg.embedding_dim = 4;
	cfg.hidden_size = 3;
	cfg.num_classes = nclasses;
	cfg.use_oov = use_oov;
	cfg.tok.mode = mode;
	cfg.threshold = 0.375f;
	memset(&err, 0, sizeof(err));
	m = tc_model_create(&calloc_, &cfg, labels, &err);
	if (m == NULL)
	{
		printf("# tc_model_create: %s\n", err.msg);
		return NULL;
	}
	tc_model_init(m, seed);
	lens = malloc(sizeof(size_t) * (nwords ? nwords : 1));
	for (size_t i = 0; i < nwords; i++)
		lens[i] = strlen(words[i]);
	m->vocab = tc_vocab_from_words(&calloc_, words, lens, nwords, vocab_size,
								   use_oov, &err);
	free(lens);
	if (m->vocab == NULL)
	{
		printf("# tc_vocab_from_words: %s\n", err.msg);
		tc_model_free(m);
		return NULL;
	}
	return m;
}

/* Serialize m into a new malloc'd buffer; NULL on failure. */
static unsigned char *
serialize(const TcModel *m, size_t *size, uint64_t *id)
{
	TcError		err;
	unsigned char *buf;

	*size = tc_model_serialized_size(m);
	buf = malloc(*size);
	if (tc_model_serialize(m, buf, *size, id, &err) != TC_OK)
	{
		printf("# serialize: %s\n", err.msg);
		free(buf);
		return NULL;
	}
	return buf;
}

/* True when every part of a and b that the format stores is equal. */
static bool
models_equal(const TcModel *a, const TcModel *b)
{
	int32_t		limit;

	if (a->cfg.vocab_size != b->cfg.vocab_size ||
		a->cfg.max_len != b->cfg.max_len ||
		a->cfg.embedding_dim != b->cfg.embedding_dim ||
		a->cfg.hidden_size != b->cfg.hidden_size ||
		a->cfg.num_classes != b->cfg.num_classes ||
		a->cfg.tok.mode != b->cfg.tok.mode ||
		a->cfg.tok.lowercase != b->cfg.tok.lowercase ||
		a->cfg.use_oov != b->cfg.use_oov ||
		memcmp(&a->cfg.threshold, &b->cfg.threshold, sizeof(float)) != 0 ||
		a->K != b->K || a->num_params != b->num_params)
		return false;
	for (int i = 0; i < a->cfg.num_classes; i++)
		if (strcmp(a->labels[i], b->labels[i]) != 0)
			return false;
	limit = tc_vocab_id_limit(a->vocab);
	if (limit != tc_vocab_id_limit(b->vocab) ||
		tc_vocab_size(a->vocab) != tc_vocab_size(b->vocab))
		return false;
	for (int32_t id = 0; id < limit; id++)
	{
		size_t		la = 0;
		size_t		lb = 0;
		const char *wa = tc_vocab_word(a->vocab, id, &la);
		const char *wb = tc_vocab_word(b->vocab, id, &lb);

		if ((wa == NULL) != (wb == NULL) || la != lb ||
			(wa && memcmp(wa, wb, la) != 0))
			return false;
	}
	for (int i = 0; i < TC_NUM_PARAMS; i++)
		if (a->param_sizes[i] != b->param_sizes[i])
			return false;
	return memcmp(a->params_memory, b->params_memory,
				  a->num_params * sizeof(float)) == 0;
}

/* Offset of the vocabulary count in a blob (walks the labels). */
static size_t
vocab_count_offset(const unsigned char *buf)
{
	size_t		pos = HDR + 28;
	uint32_t	n = get32(buf + pos);

	pos += 4;
	for (uint32_t i = 0; i < n; i++)
		pos += 4 + get32(buf + pos);
	return pos;
}

/* Offset of word i's length field. */
static size_t
word_offset(const unsigned char *buf, uint32_t i)
{
	size_t		pos = vocab_count_offset(buf) + 4;

	for (uint32_t k = 0; k < i; k++)
		pos += 4 + get32(buf + pos);
	return pos;
}

/* Offset of the weights count (u64). */
static size_t
weights_count_offset(const unsigned char *buf)
{
	return word_offset(buf, get32(buf + vocab_count_offset(buf)));
}

/*
 * Deserialize and validate a (hostile) blob with the counting allocator.
 * Returns the status (equal for both calls, else reported); *ok_clean is
 * false when a rejection lacks a message, leaks, or touches a large
 * allocation.
 */
static TcStatus
load(const unsigned char *buf, size_t size, TcModel **out, TcError *err,
	 bool *ok_clean)
{
	TcStatus	st;
	TcStatus	st2;
	TcError		err2;
	size_t		live_before = counter.live;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	st = tc_model_deserialize(&calloc_, buf, size, out, err);
	st2 = tc_model_validate_bytes(buf, size, &err2);
	*ok_clean = true;
	if (st != st2)
	{
		printf("# deserialize says %d (%s) but validate says %d (%s)\n",
			   st, err->msg, st2, err2.msg);
		*ok_clean = false;
	}
	if (st != TC_OK)
	{
		if (*out != NULL || err->msg[0] == '\0' || err->status != st ||
			counter.live != live_before || st == TC_ERR_NOMEM)
			*ok_clean = false;
	}
	else if (*out == NULL)
		*ok_clean = false;
	return st;
}

/* Round trip, content id and validation of a good model. */
static void
test_round_trip(const char *name, TcModel *m)
{
	size_t		size1;
	size_t		size2;
	uint64_t	id1 = 0;
	uint64_t	id2 = 0;
	uint64_t	id3 = 0;
	unsigned char *b1 = serialize(m, &size1, &id1);
	unsigned char *b2 = NULL;
	unsigned char *b3;
	TcModel    *m2 = NULL;
	TcError		err;
	TcStatus	st;
	float		saved;

	tc_check(b1 != NULL, "%s: serialize", name);
	if (b1 == NULL)
		return;
	tc_check(size1 >= TC_FORMAT_MIN_SIZE && memcmp(b1, "TEXTCLF\0", 8) == 0 &&
			 get32(b1 + 8) == TC_FORMAT_VERSION,
			 "%s: header (%zu bytes)", name, size1);
	tc_check(tc_model_validate_bytes(b1, size1, &err) == TC_OK,
			 "%s: validate_bytes accepts the blob", name);
	tc_check(tc_model_blob_id(b1) == id1, "%s: blob id is the returned id",
			 name);
	st = tc_model_deserialize(&calloc_, b1, size1, &m2, &err);
	tc_check(st == TC_OK && m2 != NULL, "%s: deserialize (%s)", name,
			 st == TC_OK ? "ok" : err.msg);
	if (m2 == NULL)
	{
		free(b1);
		return;
	}
	tc_check(models_equal(m, m2), "%s: every field survives the round trip",
			 name);
	tc_check_tensor("round-tripped weights", m2->params_memory,
					m->params_memory, m->num_params, 0.0, 0.0);
	tc_check(m2->grads_memory == NULL && m2->m_memory == NULL &&
			 m2->acts_memory == NULL,
			 "%s: loaded model holds parameters only", name);
	b2 = serialize(m2, &size2, &id2);
	tc_check(b2 != NULL && size2 == size1 && memcmp(b1, b2, size1) == 0 &&
			 id2 == id1,
			 "%s: serialize(deserialize(x)) is bit-exact", name);

	/* content id: stable, and sensitive to one weight */
	b3 = serialize(m, &size2, &id3);
	tc_check(b3 != NULL && id3 == id1, "%s: content id is stable", name);
	free(b3);
	saved = m->params_memory[m->num_params / 2];
	m->params_memory[m->num_params / 2] = saved + 1e-6f;
	b3 = serialize(m, &size2, &id3);
	tc_check(b3 != NULL && id3 != id1,
			 "%s: content id changes when one weight changes", name);
	free(b3);
	m->params_memory[m->num_params / 2] = saved;

	/* id excludes the header: same content, same id */
	tc_check(tc_hash64(b1 + HDR, size1 - HDR - SUMLEN) == id1,
			 "%s: content id is tc_hash64 of [24, total - 8)", name);

	tc_model_free(m2);
	free(b1);
	free(b2);
}

/* Every prefix of the blob is rejected with TC_ERR_FORMAT. */
static void
test_truncations(const unsigned char *blob, size_t size)
{
	int			bad = 0;

	for (size_t n = 0; n < size; n++)
	{
		unsigned char *copy = malloc(n ? n : 1);
		TcModel    *m;
		TcError		err;
		bool		clean;
		TcStatus	st;

		memcpy(copy, blob, n);
		st = load(copy, n, &m, &err, &clean);
		if (st != TC_ERR_FORMAT || !clean)
		{
			if (bad++ < 5)
				printf("# truncation to %zu: status %d (%s)\n", n, st, err.msg);
			if (st == TC_OK)
				tc_model_free(m);
		}
		free(copy);
	}
	tc_check(bad == 0, "every truncation 0..%zu rejected with TC_ERR_FORMAT",
			 size - 1);
}

/* Every single-byte change (checksum not fixed) is rejected. */
static void
test_byte_changes(const unsigned char *blob, size_t size)
{
	static const unsigned char deltas[] = {0x01, 0x80, 0xFF};
	unsigned char *copy = malloc(size);
	int			bad = 0;
	long		tried = 0;

	for (size_t i = 0; i < size; i++)
		for (size_t d = 0; d < sizeof(deltas); d++)
		{
			TcModel    *m;
			TcError		err;
			bool		clean;
			TcStatus	st;
			TcStatus	want = (i >= 8 && i < 12) ? TC_ERR_VERSION :
				TC_ERR_FORMAT;

			memcpy(copy, blob, size);
			copy[i] ^= deltas[d];
			st = load(copy, size, &m, &err, &clean);
			tried++;
			if (st != want || !clean)
			{
				if (bad++ < 5)
					printf("# byte %zu ^ 0x%02x: status %d (%s)\n", i,
						   deltas[d], st, err.msg);
				if (st == TC_OK)
					tc_model_free(m);
			}
		}
	free(copy);
	tc_check(bad == 0, "all %ld single-byte changes without checksum fix rejected",
			 tried);
}

/*
 * Random mutations with the hashes fixed: each result is either a valid
 * model that round-trips bit-exactly, or a clean rejection.
 */
static void
test_mutations(const unsigned char *blob, size_t size, int rounds,
			   uint64_t seed)
{
	static const uint32_t interesting[] = {
		0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 1000, 1001,
		1024, 1025, 2000000, 2000001, 0x7fffffff, 0x80000000, 0xfffffffe,
		0xffffffff
	};
	size_t		cap = size + 64;
	unsigned char *buf = malloc(cap);
	int			bad = 0;
	long		accepted = 0;
	long		rejected = 0;
	long		by_status[16] = {0};
	uint64_t	s = seed;

	for (int round = 0; round < rounds; round++)
	{
		size_t		n = size;
		int			nmut = 1 + (int) (rnd(&s) % 3);
		TcModel    *m;
		TcError		err;
		bool		clean;
		TcStatus	st;

		memcpy(buf, blob, size);
		for (int k = 0; k < nmut; k++)
		{
			/* mutate only the hashed body [24, n - 8) */
			size_t		body = n - HDR - SUMLEN;
			size_t		pos = HDR + (size_t) (rnd(&s) % (body ? body : 1));
			int			kind = (int) (rnd(&s) % 6);

			switch (kind)
			{
				case 0:			/* bit flip */
					buf[pos] ^= (unsigned char) (1u << (rnd(&s) % 8));
					break;
				case 1:			/* byte set */
					buf[pos] = (unsigned char) rnd(&s);
					break;
				case 2:			/* 32-bit interesting value */
					if (pos + 4 <= n - SUMLEN)
						put32(buf + pos, interesting[rnd(&s) %
													 (sizeof(interesting) /
													  sizeof(interesting[0]))]);
					break;
				case 3:			/* small insertion */
					{
						size_t		len = 1 + (size_t) (rnd(&s) % 8);

						if (n + len > cap)
							break;
						memmove(buf + pos + len, buf + pos, n - pos);
						for (size_t j = 0; j < len; j++)
							buf[pos + j] = (unsigned char) rnd(&s);
						n += len;
					}
					break;
				case 4:			/* small deletion */
					{
						size_t		len = 1 + (size_t) (rnd(&s) % 8);

						if (pos + len > n - SUMLEN)
							break;
						memmove(buf + pos, buf + pos + len, n - pos - len);
						n -= len;
					}
					break;
				default:		/* byte from the blob elsewhere */
					buf[pos] = blob[rnd(&s) % size];
					break;
			}
		}
		fix_hashes(buf, n);
		st = load(buf, n, &m, &err, &clean);
		if ((int) st < 16)
			by_status[st]++;
		if (st == TC_OK && clean)
		{
			size_t		size2 = 0;
			uint64_t	id2 = 0;
			unsigned char *b2 = serialize(m, &size2, &id2);
			TcModel    *m3 = NULL;

			accepted++;
			if (b2 == NULL || size2 != n || memcmp(b2, buf, n) != 0 ||
				tc_model_deserialize(&calloc_, b2, size2, &m3, &err) != TC_OK)
			{
				if (bad++ < 5)
					printf("# round %d: accepted mutant does not round-trip\n",
						   round);
			}
			tc_model_free(m3);
			tc_model_free(m);
			free(b2);
		}
		else if (!clean)
		{
			if (bad++ < 5)
				printf("# round %d: unclean result, status %d (%s)\n", round,
					   st, err.msg);
			if (st == TC_OK)
				tc_model_free(m);
		}
		else
			rejected++;
	}
	free(buf);
	printf("# %d mutations: %ld accepted, %ld rejected (format %ld, version %ld)\n",
		   rounds, accepted, rejected, by_status[TC_ERR_FORMAT],
		   by_status[TC_ERR_VERSION]);
	tc_check(bad == 0 && accepted + rejected == rounds,
			 "%d random mutations with fixed checksums: valid or cleanly rejected",
			 rounds);
	tc_check(accepted > 0 && rejected > 0,
			 "mutations hit both outcomes (%ld accepted)", accepted);
}

/*
 * Patch a copy of blob with fn, fix the hashes, load it and check the
 * status and (when want_msg is not NULL) the start of the message.
 */
static void
expect_reject(const char *name, const unsigned char *blob, size_t size,
			  void (*fn) (unsigned char *buf, size_t *size, void *arg),
			  void *arg, bool fix, TcStatus want, const char *want_msg)
{
	unsigned char *buf = malloc(size + 64);
	size_t		n = size;
	TcModel    *m;
	TcError		err;
	bool		clean;
	TcStatus	st;
	size_t		largest_before = counter.largest;

	memcpy(buf, blob, size);
	fn(buf, &n, arg);
	if (fix)
		fix_hashes(buf, n);
	counter.largest = 0;
	st = load(buf, n, &m, &err, &clean);
	tc_check(st == want && clean &&
			 (want_msg == NULL || strstr(err.msg, want_msg) != NULL),
			 "%s: status %d, \"%s\" (largest allocation %zu bytes)", name, st,
			 err.msg, counter.largest);
	if (st == TC_OK)
		tc_model_free(m);
	if (counter.largest < largest_before)
		counter.largest = largest_before;
	free(buf);
}

/* Patch: u32 at offset (arg[0]) := arg[1]. */
static void
patch_u32(unsigned char *buf, size_t *size, void *arg)
{
	const size_t *a = arg;

	(void) size;
	put32(buf + a[0], (uint32_t) a[1]);
}

/* Patch: u64 at offset (arg[0]) := arg[1]. */
static void
patch_u64(unsigned char *buf, size_t *size, void *arg)
{
	const size_t *a = arg;

	(void) size;
	put64(buf + a[0], (uint64_t) a[1]);
}

/* Patch: byte at offset arg[0] := arg[1]. */
static void
patch_u8(unsigned char *buf, size_t *size, void *arg)
{
	const size_t *a = arg;

	(void) size;
	buf[a[0]] = (unsigned char) a[1];
}

/* Patch: copy arg[2] bytes from offset arg[0] to offset arg[1]. */
static void
patch_copy(unsigned char *buf, size_t *size, void *arg)
{
	const size_t *a = arg;

	(void) size;
	memmove(buf + a[1], buf + a[0], a[2]);
}

/* Patch: insert 4 zero bytes before the checksum. */
static void
patch_trailing(unsigned char *buf, size_t *size, void *arg)
{
	(void) arg;
	memmove(buf + *size - SUMLEN + 4, buf + *size - SUMLEN, SUMLEN);
	memset(buf + *size - SUMLEN, 0, 4);
	*size += 4;
}

/*
 * Patch: set V = arg[0] and E = arg[1] and make the weights count match the
 * new configuration (a valid header for a model of many gigabytes whose
 * weights are missing).
 */
static void
patch_huge_config(unsigned char *buf, size_t *size, void *arg)
{
	const size_t *a = arg;
	size_t		wpos = weights_count_offset(buf);
	TcConfig	cfg;
	size_t		sizes[TC_NUM_PARAMS];
	uint64_t	total = 0;

	(void) size;
	tc_config_default(&cfg);
	cfg.vocab_size = (int32_t) a[0];
	cfg.embedding_dim = (int32_t) a[1];
	cfg.hidden_size = (int32_t) get32(buf + HDR + 12);
	cfg.num_classes = (int32_t) get32(buf + HDR + 16);
	tc_param_sizes(&cfg, sizes);
	for (int i = 0; i < TC_NUM_PARAMS; i++)
		total += sizes[i];
	put32(buf + HDR, (uint32_t) a[0]);
	put32(buf + HDR + 8, (uint32_t) a[1]);
	put64(buf + wpos, total);
}

/* No patch. */
static void
patch_none(unsigned char *buf, size_t *size, void *arg)
{
	(void) buf;
	(void) size;
	(void) arg;
}

/* Targeted hostile blobs: each must fail with the right status. */
static void
test_hostile(const unsigned char *blob, size_t size)
{
	size_t		vc = vocab_count_offset(blob);
	size_t		w0 = word_offset(blob, 0);
	size_t		w1 = word_offset(blob, 1);
	size_t		wc = weights_count_offset(blob);
	size_t		a[3];
	TcError		err;
	unsigned char *buf;

	a[0] = 8;
	a[1] = 2;
	expect_reject("format version 2", blob, size, patch_u32, a, false,
				  TC_ERR_VERSION, "version 2");
	buf = malloc(size);
	memcpy(buf, blob, size);
	put32(buf + 8, 2);
	fix_hashes(buf, size);
	tc_check(tc_model_validate_bytes(buf, size, &err) == TC_ERR_VERSION &&
			 strcmp(err.hint, "Retrain the model or upgrade textclf.") == 0,
			 "version 2 with fixed checksum: TC_ERR_VERSION with hint \"%s\"",
			 err.hint);
	free(buf);
	a[0] = 0;
	a[1] = 'X';
	expect_reject("wrong magic", blob, size, patch_u8, a, true,
				  TC_ERR_FORMAT, "magic");
	a[0] = size - 1;
	a[1] = blob[size - 1] ^ 1;
	expect_reject("checksum byte", blob, size, patch_u8, a, false,
				  TC_ERR_FORMAT, "model checksum mismatch");
	a[0] = 16;
	a[1] = blob[16] ^ 1;
	expect_reject("content id byte, checksum fixed over it", blob, size,
				  patch_u8, a, false, TC_ERR_FORMAT, NULL);
	{
		/* content id wrong but checksum right */
		unsigned char *b = malloc(size);

		memcpy(b, blob, size);
		b[16] ^= 1;
		put64(b + size - SUMLEN, tc_hash64(b, size - SUMLEN));
		tc_check(tc_model_validate_bytes(b, size, &err) == TC_ERR_FORMAT &&
				 strstr(err.msg, "content id") != NULL,
				 "wrong content id under a good checksum: \"%s\"", err.msg);
		free(b);
	}
	a[0] = 12;
	a[1] = 1;
	expect_reject("nonzero flags", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "flags");
	a[0] = vc;
	a[1] = 3000000;
	expect_reject("3000000 vocabulary words", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT,
				  "model declares 3000000 vocabulary words, more than the limit of 2000000");
	a[1] = 0x80000000u;
	expect_reject("2^31 vocabulary words", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "vocabulary words");
	a[1] = 0xffffffffu;
	expect_reject("2^32-1 vocabulary words", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "vocabulary words");
	a[1] = get32(blob + HDR) - 0;	/* = V, one more than allowed */
	expect_reject("V vocabulary words", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "allows at most");
	a[0] = HDR + 28;
	a[1] = 0x80000000u;
	expect_reject("2^31 labels", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "labels");
	a[0] = HDR + 32;
	a[1] = 0xffffffffu;
	expect_reject("label length 2^32-1", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "length");
	a[1] = 0;
	expect_reject("label length 0", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "length");
	a[0] = w0;
	a[1] = 0x80000000u;
	expect_reject("word length 2^31", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "length");
	a[1] = TC_MAX_TOKEN_BYTES + 1;
	expect_reject("word length 257", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "length");
	a[0] = wc;
	a[1] = (size_t) 1 << 62;
	expect_reject("2^62 weights", blob, size, patch_u64, a, true,
				  TC_ERR_FORMAT, "weights");
	a[1] = SIZE_MAX;
	expect_reject("2^64-1 weights", blob, size, patch_u64, a, true,
				  TC_ERR_FORMAT, "weights");
	a[0] = TC_MAX_VOCAB;
	a[1] = TC_MAX_EMBED;
	expect_reject("8 GB configuration with the weights missing", blob, size,
				  patch_huge_config, a, true, TC_ERR_FORMAT, "truncated");
	tc_check(counter.largest < ALLOC_LIMIT && counter.failures == 0,
			 "no allocation above 64 MB was attempted (largest %zu bytes, %ld refused)",
			 counter.largest, counter.failures);
	a[0] = HDR;
	a[1] = TC_MAX_VOCAB + 1;
	expect_reject("vocab_size above the limit", blob, size, patch_u32, a,
				  true, TC_ERR_FORMAT, "more than the limit");
	a[0] = HDR + 8;
	a[1] = 0;
	expect_reject("embedding_dim 0", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "embedding_dim");
	a[0] = HDR + 16;
	a[1] = 1;
	expect_reject("one class", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "classes");
	a[0] = HDR + 20;
	a[1] = 2;
	expect_reject("tokenizer mode 2", blob, size, patch_u8, a, true,
				  TC_ERR_FORMAT, "tokenizer mode");
	a[0] = HDR + 21;
	expect_reject("lowercase byte 2", blob, size, patch_u8, a, true,
				  TC_ERR_FORMAT, "lowercase");
	a[0] = HDR + 22;
	expect_reject("use_oov byte 2", blob, size, patch_u8, a, true,
				  TC_ERR_FORMAT, "use_oov");
	a[0] = HDR + 23;
	a[1] = 1;
	expect_reject("reserved config byte", blob, size, patch_u8, a, true,
				  TC_ERR_FORMAT, "reserved");
	a[0] = HDR + 24;
	a[1] = 0x3f800000u;			/* 1.0f */
	expect_reject("threshold 1", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "threshold");
	a[1] = 0x7fc00000u;			/* NaN */
	expect_reject("threshold NaN", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "threshold");
	a[1] = 0;
	expect_reject("threshold 0", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "threshold");
	a[0] = wc + 8 + 4 * 5;
	a[1] = 0x7fc00000u;
	expect_reject("NaN weight", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "model weight 5 is not finite");
	a[1] = 0xff800000u;
	expect_reject("-Inf weight", blob, size, patch_u32, a, true,
				  TC_ERR_FORMAT, "not finite");
	expect_reject("trailing bytes", blob, size, patch_trailing, NULL, true,
				  TC_ERR_FORMAT, "trailing");
	/* words 0 and 1 have the same length: make word 1 equal to word 0 */
	a[0] = w0;
	a[1] = w1;
	a[2] = w1 - w0;
	expect_reject("duplicate vocabulary word", blob, size, patch_copy, a,
				  true, TC_ERR_FORMAT, "duplicate");
	{
		/* labels 0 and 1 ("neg", "pos") have the same length */
		size_t		l0 = HDR + 32;
		size_t		l1 = l0 + 4 + get32(blob + l0);

		a[0] = l0;
		a[1] = l1;
		a[2] = l1 - l0;
		expect_reject("duplicate label", blob, size, patch_copy, a, true,
					  TC_ERR_FORMAT, "equal");
	}
	a[0] = w0 + 4;
	a[1] = 0xC0;				/* overlong start byte */
	expect_reject("invalid UTF-8 in a word", blob, size, patch_u8, a, true,
				  TC_ERR_FORMAT, "UTF-8");
	a[1] = 0;
	expect_reject("zero byte in a word", blob, size, patch_u8, a, true,
				  TC_ERR_FORMAT, "zero byte");
	a[0] = HDR + 36;
	a[1] = 0xFF;
	expect_reject("invalid UTF-8 in a label", blob, size, patch_u8, a, true,
				  TC_ERR_FORMAT, "UTF-8");
	expect_reject("the unmodified blob", blob, size, patch_none, NULL, false,
				  TC_OK, NULL);
	tc_check(tc_model_validate_bytes(NULL, 0, &err) == TC_ERR_FORMAT,
			 "NULL buffer rejected");
}

/* UTF-8 edge cases in a word: surrogates, overlongs, beyond U+10FFFF. */
static void
test_utf8(const char *const *labels)
{
	static const char *const cases[] = {
		"\xED\xA0\x80",			/* U+D800, a surrogate */
		"\xE0\x80\x80",			/* overlong NUL */
		"\xF4\x90\x80\x80",		/* U+110000 */
		"\xC3",					/* truncated sequence */
		"\x80",					/* lone continuation */
		"\xF8\x88\x80\x80\x80"	/* 5-byte form */
	};
	static const char *const good[] = {
		"\xF0\x9F\x98\x80",		/* U+1F600 */
		"\xEF\xBF\xBF",			/* U+FFFF */
		"\xF4\x8F\xBF\xBF",		/* U+10FFFF */
		"\xC2\x80"				/* U+0080 */
	};
	TcModel    *m;
	size_t		size;
	uint64_t	id;
	unsigned char *blob;
	int			bad = 0;

	m = make_model(10, 2, labels, good, 4, false, TC_TOK_WORD, 3);
	blob = m ? serialize(m, &size, &id) : NULL;
	tc_check(blob != NULL, "edge-of-range UTF-8 words serialize");
	if (blob == NULL)
	{
		tc_model_free(m);
		return;
	}
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		/* replace word 0 (4 bytes) by the case padded with 'a' */
		size_t		w0 = word_offset(blob, 0);
		size_t		len = strlen(cases[c]);
		unsigned char *b = malloc(size + 16);
		TcError		err;

		memcpy(b, blob, size);
		if (len <= 4)
		{
			memset(b + w0 + 4, 'a', 4);
			memcpy(b + w0 + 4 + (4 - len), cases[c], len);
		}
		else
		{
			memmove(b + w0 + 4 + len, b + w0 + 8, size - (w0 + 8));
			memcpy(b + w0 + 4, cases[c], len);
			put32(b + w0, (uint32_t) len);
		}
		fix_hashes(b, size + (len > 4 ? len - 4 : 0));
		if (tc_model_validate_bytes(b, size + (len > 4 ? len - 4 : 0), &err) !=
			TC_ERR_FORMAT || strstr(err.msg, "UTF-8") == NULL)
			bad++;
		free(b);
	}
	tc_check(bad == 0, "invalid UTF-8 forms rejected in vocabulary words");
	free(blob);
	tc_model_free(m);
}

/*
 * A vocabulary larger than the stack table of tc_model_validate_bytes, so
 * its duplicate check runs in several blocks; a duplicate far apart is
 * found by both entry points.
 */
static void
test_big_vocab(const char *const *labels)
{
	enum
	{
		NW = 20000
	};
	char	  **words = malloc(sizeof(char *) * NW);
	char	   *text = malloc((size_t) NW * 16);
	TcModel    *m;
	unsigned char *blob;
	size_t		size;
	uint64_t	id;
	TcError		err;
	size_t		a[3];

	for (int i = 0; i < NW; i++)
	{
		words[i] = text + (size_t) i * 16;
		snprintf(words[i], 16, "w%05u", (unsigned int) i % 100000u);
	}
	m = make_model(NW + 1, 2, labels, (const char *const *) words, NW, false,
				   TC_TOK_WORD, 11);
	blob = m ? serialize(m, &size, &id) : NULL;
	tc_check(blob != NULL &&
			 tc_model_validate_bytes(blob, size, &err) == TC_OK,
			 "20000-word vocabulary serializes and validates");
	if (blob != NULL)
	{
		/* word 19999 := word 3 */
		a[0] = word_offset(blob, 3);
		a[1] = word_offset(blob, 19999);
		a[2] = 10;
		expect_reject("duplicate words 3 and 19999 of 20000", blob, size,
					  patch_copy, a, true, TC_ERR_FORMAT,
					  "vocabulary word 19999 is a duplicate");
		a[0] = word_offset(blob, 12000);
		a[1] = word_offset(blob, 12001);
		expect_reject("duplicate words 12000 and 12001 of 20000", blob, size,
					  patch_copy, a, true, TC_ERR_FORMAT,
					  "vocabulary word 12001 is a duplicate");
	}
	free(blob);
	tc_model_free(m);
	free(words);
	free(text);
}

/* The writer's own checks. */
static void
test_writer_checks(TcModel *m)
{
	size_t		size = tc_model_serialized_size(m);
	unsigned char *buf = malloc(size + 1);
	TcError		err;
	float		saved = m->params_memory[3];
	char	   *saved_label = m->labels[1];

	tc_check(tc_model_serialize(m, buf, size - 1, NULL, &err) ==
			 TC_ERR_INVALID_ARG,
			 "serialize refuses a short buffer: \"%s\"", err.msg);
	tc_check(tc_model_serialize(m, buf, size + 1, NULL, &err) ==
			 TC_ERR_INVALID_ARG,
			 "serialize refuses a buffer of the wrong size");
	m->params_memory[3] = NAN;
	tc_check(tc_model_serialize(m, buf, size, NULL, &err) == TC_ERR_DATA,
			 "serialize refuses a NaN weight: \"%s\"", err.msg);
	m->params_memory[3] = saved;
	m->labels[1] = m->labels[0];
	tc_check(tc_model_serialize(m, buf, tc_model_serialized_size(m), NULL,
								&err) == TC_ERR_INVALID_ARG,
			 "serialize refuses a model it could not load again: \"%s\"",
			 err.msg);
	m->labels[1] = saved_label;
	tc_check(tc_model_serialize(m, buf, size, NULL, &err) == TC_OK,
			 "serialize works again once fixed");
	free(buf);
}

/* Run every test. */
int
main(void)
{
	static const char *const labels3[] = {"neg", "pos", "neutr\xC3\xA9"};
	static const char *const labels2[] = {"spam", "\xE6\xAD\xA3\xE5\xB8\xB8"};
	static const char *const words[] = {
		"good", "fine", "bad", "the", "caf\xC3\xA9", "\xE4\xB8\xAD",
		"\xE6\x96\x87", "movie", "it's", "not", "great", "awful", "a",
		"\xF0\x9F\x98\x80", "plot", "acting", "boring", "fun", "zz",
		"\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"
	};
	size_t		nwords = sizeof(words) / sizeof(words[0]);
	TcModel    *m3;
	TcModel    *m2;
	TcModel    *m0;
	unsigned char *blob;
	unsigned char *blob2;
	size_t		size;
	size_t		size2;
	uint64_t	id;

	tc_check(tc_hash64("", 0) == UINT64_C(0xf52a15e9a9b5e89b) &&
			 tc_hash64("textclf", 7) == UINT64_C(0x6beafe5089d2564c),
			 "tc_hash64 matches the FNV-1a + splitmix64 reference values");

	m3 = make_model(50, 3, labels3, words, nwords, false, TC_TOK_WORD, 42);
	m2 = make_model(40, 2, labels2, words, 12, true, TC_TOK_CHAR, 7);
	m0 = make_model(5, 2, labels2, NULL, 0, false, TC_TOK_WORD, 1);
	tc_check(m3 != NULL && m2 != NULL && m0 != NULL, "test models built");
	if (m3 == NULL || m2 == NULL || m0 == NULL)
		return tc_test_done();
	m2->cfg.tok.lowercase = false;

	test_round_trip("3 classes, word mode", m3);
	test_round_trip("2 classes, char mode, oov", m2);
	test_round_trip("empty vocabulary", m0);

	blob = serialize(m3, &size, &id);
	blob2 = serialize(m2, &size2, &id);
	if (blob == NULL || blob2 == NULL)
		return tc_test_done();
	printf("# blob sizes: %zu and %zu bytes\n", size, size2);
	test_truncations(blob, size);
	test_byte_changes(blob, size);
	test_hostile(blob, size);
	test_mutations(blob, size, 16000, 1);
	test_mutations(blob2, size2, 4000, 2);
	test_utf8(labels2);
	test_big_vocab(labels2);
	test_writer_checks(m3);

	free(blob);
	free(blob2);
	tc_model_free(m3);
	tc_model_free(m2);
	tc_model_free(m0);
	tc_check(counter.live == 0, "no memory leaked (%zu bytes live)",
			 counter.live);
	return tc_test_done();
}
