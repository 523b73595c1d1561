/*
 * format.c
 *	  Reading and writing the serialized model (layout in format.h).
 *
 * The writer emits every field with explicit little-endian byte helpers
 * (never a memcpy of a struct), so a blob is the same on every platform.
 * The reader is a bounds-checked cursor: every read first checks the bytes
 * that remain, every count is checked against the limits in model.h and
 * against the remaining bytes before anything is allocated, and the first
 * failure becomes a TC_ERR_FORMAT (or TC_ERR_VERSION) with a message in
 * PostgreSQL's style.  Checking happens in one pass (CheckBlob) that never
 * allocates from the blob's numbers; tc_model_deserialize then builds the
 * model from the already checked bytes.
 *
 * What this file deliberately does not do: it does not interpret the
 * weights (model.c does), does not tokenize, and does not compress.
 *
 * Memory: tc_model_validate_bytes allocates nothing (its duplicate-word
 * check uses a fixed table on the stack and, for that reason, covers
 * vocabularies of up to DEDUP_STACK_WORDS words only; see below).
 * tc_model_deserialize allocates
 * the new model and a few temporary arrays from the caller's allocator;
 * the caller owns the model and frees it with tc_model_free.
 * tc_model_serialize writes into the caller's buffer and allocates only a
 * temporary hash table for its self-check, from the model's allocator.
 */
#include <math.h>
#include <string.h>

#include "textclf/format.h"

/* FNV-1a 64 constants (http://www.isthe.com/chongo/tech/comp/fnv/) */
#define FNV_OFFSET_BASIS	UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME			UINT64_C(0x00000100000001b3)

/* Offsets and sizes of the fixed parts of a blob. */
#define OFF_VERSION			8
#define OFF_FLAGS			12
#define OFF_CONTENT_ID		16
#define OFF_BODY			24
#define CONFIG_BYTES		28
#define CHECKSUM_BYTES		8

/*
 * Without an allocator (tc_model_validate_bytes) duplicate words are looked
 * for with a table of DEDUP_STACK_SLOTS entries (64 kB) on the stack, in
 * passes of DEDUP_STACK_SLOTS / 2 words each over the whole vocabulary; the
 * work grows with the square of the word count, so it is done only up to
 * DEDUP_STACK_WORDS words (64 passes, a fraction of a second).  Larger
 * vocabularies are checked for duplicates by tc_model_deserialize, which
 * has an allocator and needs one pass.
 */
#define DEDUP_STACK_SLOTS	8192
#define DEDUP_STACK_WORDS	262144

/* Where the variable sections of a checked blob start. */
typedef struct BlobLayout
{
	TcConfig	cfg;
	size_t		labels_pos;		/* first label's length field */
	size_t		words_pos;		/* first vocabulary word's length field */
	size_t		nwords;
	size_t		weights_pos;	/* first float */
	size_t		nweights;
} BlobLayout;

/* A read cursor over buf[pos, end). */
typedef struct Reader
{
	const unsigned char *buf;
	size_t		pos;
	size_t		end;
} Reader;

/* A write cursor over buf[pos, cap); overflow is remembered, not written. */
typedef struct Writer
{
	unsigned char *buf;
	size_t		pos;
	size_t		cap;
	bool		overflow;
} Writer;

/* ---- hashing ---- */

/* splitmix64 finaliser (Steele, Lea, Flood 2014), applied after FNV-1a. */
static inline uint64_t
HashFinish(uint64_t h)
{
	h ^= h >> 30;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	return h;
}

/* Continue an FNV-1a 64 state over n bytes. */
static inline uint64_t
FnvUpdate(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* 64-bit content hash: FNV-1a 64 over the bytes, then splitmix64's mix. */
uint64_t
tc_hash64(const void *data, size_t len)
{
	return HashFinish(FnvUpdate(FNV_OFFSET_BASIS,
								(const unsigned char *) data, len));
}

/*
 * Compute both hashes of a blob of total >= OFF_BODY + CHECKSUM_BYTES bytes
 * in one pass (two independent FNV chains, which also run in parallel in
 * the CPU): the content id over [24, total - 8) and the checksum over
 * [0, total - 8).  Equal to tc_hash64 over those ranges.
 */
static void
BlobHashes(const unsigned char *buf, size_t total, uint64_t *content_id,
		   uint64_t *checksum)
{
	uint64_t	hid = FNV_OFFSET_BASIS;
	uint64_t	hsum = FnvUpdate(FNV_OFFSET_BASIS, buf, OFF_BODY);
	size_t		end = total - CHECKSUM_BYTES;

	for (size_t i = OFF_BODY; i < end; i++)
	{
		hid ^= buf[i];
		hid *= FNV_PRIME;
		hsum ^= buf[i];
		hsum *= FNV_PRIME;
	}
	*content_id = HashFinish(hid);
	*checksum = HashFinish(hsum);
}

/* ---- little-endian byte helpers ---- */

/* Load a little-endian u32 from p. */
static inline uint32_t
LoadU32(const unsigned char *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/* Load a little-endian u64 from p. */
static inline uint64_t
LoadU64(const unsigned char *p)
{
	return (uint64_t) LoadU32(p) | ((uint64_t) LoadU32(p + 4) << 32);
}

/* Store v little-endian at p. */
static inline void
StoreU32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
	p[2] = (unsigned char) (v >> 16);
	p[3] = (unsigned char) (v >> 24);
}

/* Store v little-endian at p. */
static inline void
StoreU64(unsigned char *p, uint64_t v)
{
	StoreU32(p, (uint32_t) v);
	StoreU32(p + 4, (uint32_t) (v >> 32));
}

/* Bits of a float (binary32). */
static inline uint32_t
FloatBits(float f)
{
	uint32_t	u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

/* Float with the given binary32 bits. */
static inline float
BitsFloat(uint32_t u)
{
	float		f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* True when binary32 bits u encode a finite value (not Inf or NaN). */
static inline bool
BitsFinite(uint32_t u)
{
	return (u & UINT32_C(0x7f800000)) != UINT32_C(0x7f800000);
}

/* Reserve n bytes in w; NULL (and overflow set) when they do not fit. */
static unsigned char *
WriteSpace(Writer *w, size_t n)
{
	unsigned char *p;

	if (w->overflow || w->cap - w->pos < n)
	{
		w->overflow = true;
		return NULL;
	}
	p = w->buf + w->pos;
	w->pos += n;
	return p;
}

/* Append one byte. */
static void
PutU8(Writer *w, uint8_t v)
{
	unsigned char *p = WriteSpace(w, 1);

	if (p)
		p[0] = v;
}

/* Append a little-endian u32. */
static void
PutU32(Writer *w, uint32_t v)
{
	unsigned char *p = WriteSpace(w, 4);

	if (p)
		StoreU32(p, v);
}

/* Append a little-endian u64. */
static void
PutU64(Writer *w, uint64_t v)
{
	unsigned char *p = WriteSpace(w, 8);

	if (p)
		StoreU64(p, v);
}

/* Append a float as its binary32 bits, little-endian. */
static void
PutF32(Writer *w, float v)
{
	PutU32(w, FloatBits(v));
}

/* Append n raw bytes. */
static void
PutBytes(Writer *w, const void *src, size_t n)
{
	unsigned char *p = WriteSpace(w, n);

	if (p && n > 0)
		memcpy(p, src, n);
}

/* Bytes left to read. */
static inline size_t
ReaderLeft(const Reader *r)
{
	return r->end - r->pos;
}

/* Read one byte; false when none remains. */
static inline bool
GetU8(Reader *r, uint8_t *v)
{
	if (ReaderLeft(r) < 1)
		return false;
	*v = r->buf[r->pos++];
	return true;
}

/* Read a little-endian u32; false when fewer than 4 bytes remain. */
static inline bool
GetU32(Reader *r, uint32_t *v)
{
	if (ReaderLeft(r) < 4)
		return false;
	*v = LoadU32(r->buf + r->pos);
	r->pos += 4;
	return true;
}

/* Read a little-endian u64; false when fewer than 8 bytes remain. */
static inline bool
GetU64(Reader *r, uint64_t *v)
{
	if (ReaderLeft(r) < 8)
		return false;
	*v = LoadU64(r->buf + r->pos);
	r->pos += 8;
	return true;
}

/* Skip n bytes; false when fewer remain. */
static inline bool
Skip(Reader *r, size_t n)
{
	if (ReaderLeft(r) < n)
		return false;
	r->pos += n;
	return true;
}

/* ---- checks ---- */

/* Strict UTF-8 (RFC 3629): no overlongs, surrogates or code points > U+10FFFF. */
static bool
Utf8Valid(const unsigned char *s, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		unsigned int c = s[i];
		size_t		need;
		uint32_t	cp;
		uint32_t	min;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
		{
			need = 1;
			cp = c & 0x1F;
			min = 0x80;
		}
		else if (c >= 0xE0 && c <= 0xEF)
		{
			need = 2;
			cp = c & 0x0F;
			min = 0x800;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		}
		else
			return false;
		if (n - i - 1 < need)
			return false;
		for (size_t k = 1; k <= need; k++)
		{
			unsigned int b = s[i + k];

			if ((b & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (b & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += need + 1;
	}
	return true;
}

/* The common "ran out of bytes" error. */
static TcStatus
Truncated(TcError *err)
{
	return tc_error(err, TC_ERR_FORMAT, "model data is truncated");
}

/*
 * Check one length-prefixed string at the cursor (what names it in
 * messages, e.g. "label"; index is its position) and advance past it.
 */
static TcStatus
CheckString(Reader *r, const char *what, size_t index, uint32_t max_bytes,
			TcError *err)
{
	uint32_t	len;
	const unsigned char *s;

	if (!GetU32(r, &len))
		return Truncated(err);
	if (len == 0 || len > max_bytes)
		return tc_error(err, TC_ERR_FORMAT,
						"model %s %zu has length %u, outside the range 1 to %u",
						what, index, len, max_bytes);
	if (ReaderLeft(r) < len)
		return Truncated(err);
	s = r->buf + r->pos;
	if (memchr(s, 0, len) != NULL)
		return tc_error(err, TC_ERR_FORMAT,
						"model %s %zu contains a zero byte", what, index);
	if (!Utf8Valid(s, len))
		return tc_error(err, TC_ERR_FORMAT,
						"model %s %zu is not valid UTF-8", what, index);
	r->pos += len;
	return TC_OK;
}

/*
 * Look for two equal words among the n (already checked) length-prefixed
 * words starting at buf[pos].  table (slots entries, a power of two) is
 * scratch: words are entered in blocks of slots / 2 and every later word
 * is looked up against the block, so any table size gives an exact answer
 * (one pass when slots >= 2n).  An entry holds the high 32 bits of the
 * word's hash (compared first, so the blob is touched only on a likely
 * match) and the word's offset + 1 relative to pos; the vocabulary section
 * is below 2^32 bytes (TC_MAX_VOCAB words of at most 4 + TC_MAX_TOKEN_BYTES
 * bytes).  Returns true and the index of the later word of a pair in *dup.
 */
static bool
FindDuplicateWord(const unsigned char *buf, size_t pos, size_t n,
				  uint64_t *table, size_t slots, size_t *dup)
{
	size_t		block = slots / 2;
	size_t		mask = slots - 1;

	for (size_t start = 0; start < n; start += block)
	{
		size_t		off = 0;

		memset(table, 0, slots * sizeof(uint64_t));
		for (size_t i = 0; i < n; i++)
		{
			const unsigned char *w = buf + pos + off;
			uint32_t	len = LoadU32(w);

			if (i >= start)
			{
				uint64_t	h = tc_hash64(w + 4, len);
				uint64_t	tag = h & UINT64_C(0xffffffff00000000);
				size_t		slot = (size_t) h & mask;

				while (table[slot] != 0)
				{
					uint64_t	e = table[slot];

					if ((e & UINT64_C(0xffffffff00000000)) == tag)
					{
						const unsigned char *o = buf + pos + (uint32_t) e - 1;

						if (LoadU32(o) == len &&
							memcmp(o + 4, w + 4, len) == 0)
						{
							*dup = i;
							return true;
						}
					}
					slot = (slot + 1) & mask;
				}
				if (i < start + block)
					table[slot] = tag | ((uint64_t) off + 1);
			}
			off += 4 + (size_t) len;
		}
	}
	return false;
}

/*
 * Check every byte of a blob and record where its sections start.  With a
 * (may be NULL) the duplicate-word check takes a one-pass table from it;
 * without, it uses a fixed table on the stack, for vocabularies of up to
 * DEDUP_STACK_WORDS words.  Nothing is allocated from a count before that
 * count has been checked against the limits and against the bytes that
 * remain.
 */
static TcStatus
CheckBlob(const unsigned char *buf, size_t size, const TcAllocator *a,
		  BlobLayout *lay, TcError *err)
{
	Reader		r;
	uint32_t	u32;
	uint64_t	u64;
	uint32_t	dims[5];
	uint8_t		bytes[4];
	uint64_t	id_calc;
	uint64_t	sum_calc;
	size_t		sizes[TC_NUM_PARAMS];
	size_t		expected;
	size_t		label_pos[TC_MAX_CLASSES];
	int64_t		max_words;
	float		threshold;
	TcError		inner;
	TcStatus	st;
	static const char *const dim_names[5] = {
		"vocabulary size", "max_len", "embedding_dim", "hidden_size",
		"number of classes"
	};
	static const uint32_t dim_limits[5] = {
		TC_MAX_VOCAB, TC_MAX_MAX_LEN, TC_MAX_EMBED, TC_MAX_HIDDEN,
		TC_MAX_CLASSES
	};

	memset(lay, 0, sizeof(*lay));
	if (buf == NULL)
		return tc_error(err, TC_ERR_FORMAT, "model data is missing");

	/* header: magic, version, then the checksums over everything */
	if (size < 8)
		return Truncated(err);
	if (memcmp(buf, TC_FORMAT_MAGIC, 8) != 0)
		return tc_error(err, TC_ERR_FORMAT,
						"model data does not start with the textclf magic number");
	if (size < OFF_FLAGS)
		return Truncated(err);
	u32 = LoadU32(buf + OFF_VERSION);
	if (u32 != TC_FORMAT_VERSION)
	{
		tc_error(err, TC_ERR_VERSION,
				 "model format version %u is not supported, this textclf reads version %d",
				 u32, TC_FORMAT_VERSION);
		tc_error_hint(err, "Retrain the model or upgrade textclf.");
		return TC_ERR_VERSION;
	}
	if (size < TC_FORMAT_MIN_SIZE)
		return Truncated(err);
	BlobHashes(buf, size, &id_calc, &sum_calc);
	if (LoadU64(buf + size - CHECKSUM_BYTES) != sum_calc)
		return tc_error(err, TC_ERR_FORMAT, "model checksum mismatch");
	if (LoadU64(buf + OFF_CONTENT_ID) != id_calc)
		return tc_error(err, TC_ERR_FORMAT, "model content id mismatch");
	u32 = LoadU32(buf + OFF_FLAGS);
	if (u32 != 0)
		return tc_error(err, TC_ERR_FORMAT,
						"model flags are 0x%x, expected zero", u32);

	r.buf = buf;
	r.pos = OFF_BODY;
	r.end = size - CHECKSUM_BYTES;

	/* config */
	for (int i = 0; i < 5; i++)
	{
		if (!GetU32(&r, &dims[i]))
			return Truncated(err);
		if (dims[i] > dim_limits[i])
			return tc_error(err, TC_ERR_FORMAT,
							"model declares %s %u, more than the limit of %u",
							dim_names[i], dims[i], dim_limits[i]);
	}
	for (int i = 0; i < 4; i++)
		if (!GetU8(&r, &bytes[i]))
			return Truncated(err);
	if (!GetU32(&r, &u32))
		return Truncated(err);
	threshold = BitsFloat(u32);
	if (bytes[0] != TC_TOK_WORD && bytes[0] != TC_TOK_CHAR)
		return tc_error(err, TC_ERR_FORMAT,
						"model declares unrecognized tokenizer mode %u",
						bytes[0]);
	if (bytes[1] > 1)
		return tc_error(err, TC_ERR_FORMAT,
						"model lowercase flag is %u, expected 0 or 1", bytes[1]);
	if (bytes[2] > 1)
		return tc_error(err, TC_ERR_FORMAT,
						"model use_oov flag is %u, expected 0 or 1", bytes[2]);
	if (bytes[3] != 0)
		return tc_error(err, TC_ERR_FORMAT,
						"model reserved config byte is %u, expected zero",
						bytes[3]);
	if (!isfinite(threshold) || !(threshold > 0.0f && threshold < 1.0f))
		return tc_error(err, TC_ERR_FORMAT,
						"model threshold %g is outside the open interval (0, 1)",
						(double) threshold);
	if (dims[4] < 2)
		return tc_error(err, TC_ERR_FORMAT,
						"model must have at least 2 classes, but it declares %u",
						dims[4]);

	memset(&lay->cfg, 0, sizeof(lay->cfg));
	lay->cfg.vocab_size = (int32_t) dims[0];
	lay->cfg.max_len = (int32_t) dims[1];
	lay->cfg.embedding_dim = (int32_t) dims[2];
	lay->cfg.hidden_size = (int32_t) dims[3];
	lay->cfg.num_classes = (int32_t) dims[4];
	lay->cfg.tok.mode = bytes[0];
	lay->cfg.tok.lowercase = bytes[1] != 0;
	lay->cfg.use_oov = bytes[2] != 0;
	lay->cfg.threshold = threshold;
	memset(&inner, 0, sizeof(inner));
	if (tc_config_validate(&lay->cfg, &inner) != TC_OK)
		return tc_error(err, TC_ERR_FORMAT,
						"model has an invalid configuration: %s", inner.msg);

	/* labels */
	if (!GetU32(&r, &u32))
		return Truncated(err);
	if (u32 != dims[4])
		return tc_error(err, TC_ERR_FORMAT,
						"model declares %u labels but %u classes", u32, dims[4]);
	lay->labels_pos = r.pos;
	for (size_t i = 0; i < dims[4]; i++)
	{
		label_pos[i] = r.pos;
		st = CheckString(&r, "label", i, TC_MAX_LABEL_BYTES, err);
		if (st != TC_OK)
			return st;
		for (size_t j = 0; j < i; j++)
		{
			uint32_t	len = LoadU32(buf + label_pos[i]);

			if (LoadU32(buf + label_pos[j]) == len &&
				memcmp(buf + label_pos[i] + 4, buf + label_pos[j] + 4,
					   len) == 0)
				return tc_error(err, TC_ERR_FORMAT,
								"model labels %zu and %zu are equal", j, i);
		}
	}

	/* vocabulary */
	if (!GetU32(&r, &u32))
		return Truncated(err);
	if (u32 > TC_MAX_VOCAB)
		return tc_error(err, TC_ERR_FORMAT,
						"model declares %u vocabulary words, more than the limit of %d",
						u32, TC_MAX_VOCAB);
	max_words = (int64_t) dims[0] - 1 - (bytes[2] ? 1 : 0);
	if (max_words < 0)
		max_words = 0;
	if ((int64_t) u32 > max_words)
		return tc_error(err, TC_ERR_FORMAT,
						"model declares %u vocabulary words, but its vocabulary size %u allows at most %lld",
						u32, dims[0], (long long) max_words);
	/* each word takes at least 5 bytes: check before walking them */
	if ((size_t) u32 > ReaderLeft(&r) / 5)
		return Truncated(err);
	lay->words_pos = r.pos;
	lay->nwords = u32;
	for (size_t i = 0; i < lay->nwords; i++)
	{
		st = CheckString(&r, "vocabulary word", i, TC_MAX_TOKEN_BYTES, err);
		if (st != TC_OK)
			return st;
	}
	if (lay->nwords > 1 && (a != NULL || lay->nwords <= DEDUP_STACK_WORDS))
	{
		uint64_t	stack_table[DEDUP_STACK_SLOTS];
		uint64_t   *table = stack_table;
		size_t		slots = DEDUP_STACK_SLOTS;
		size_t		dup = 0;
		bool		found;

		if (a != NULL)
		{
			/* one pass: at least 2n slots; n <= ReaderLeft / 5 bounds it */
			slots = 16;
			while (slots < 2 * lay->nwords)
				slots *= 2;
			table = tc_alloc(a, tc_mul_size(slots, sizeof(uint64_t)));
			if (table == NULL)
				return tc_error(err, TC_ERR_NOMEM,
								"out of memory checking %zu vocabulary words",
								lay->nwords);
		}
		found = FindDuplicateWord(buf, lay->words_pos, lay->nwords, table,
								  slots, &dup);
		if (table != stack_table)
			tc_free(a, table);
		if (found)
			return tc_error(err, TC_ERR_FORMAT,
							"model vocabulary word %zu is a duplicate", dup);
	}

	/* weights */
	if (!GetU64(&r, &u64))
		return Truncated(err);
	tc_param_sizes(&lay->cfg, sizes);
	expected = 0;
	for (int i = 0; i < TC_NUM_PARAMS; i++)
		expected = tc_add_size(expected, sizes[i]);
	if (u64 != (uint64_t) expected)
		return tc_error(err, TC_ERR_FORMAT,
						"model declares %llu weights, but its configuration needs %zu",
						(unsigned long long) u64, expected);
	if (ReaderLeft(&r) / 4 < expected)
		return Truncated(err);
	if (ReaderLeft(&r) - expected * 4 != 0)
		return tc_error(err, TC_ERR_FORMAT,
						"model data has %zu trailing bytes",
						ReaderLeft(&r) - expected * 4);
	lay->weights_pos = r.pos;
	lay->nweights = expected;
	for (size_t i = 0; i < expected; i++)
	{
		if (!BitsFinite(LoadU32(buf + r.pos + 4 * i)))
			return tc_error(err, TC_ERR_FORMAT,
							"model weight %zu is not finite", i);
	}
	if (!Skip(&r, expected * 4))
		return Truncated(err);
	return TC_OK;
}

/* ---- public API ---- */

/* Bytes tc_model_serialize writes for m (SIZE_MAX on overflow). */
size_t
tc_model_serialized_size(const TcModel *m)
{
	size_t		total = OFF_BODY + CONFIG_BYTES + 4 + 4 + 8 + CHECKSUM_BYTES;

	for (int i = 0; i < m->cfg.num_classes; i++)
		total = tc_add_size(total, 4 + strlen(m->labels[i]));
	if (m->vocab != NULL)
	{
		int32_t		first = m->cfg.use_oov ? 2 : 1;
		int32_t		limit = tc_vocab_id_limit(m->vocab);

		for (int32_t id = first; id < limit; id++)
		{
			size_t		len = 0;

			if (tc_vocab_word(m->vocab, id, &len) != NULL)
				total = tc_add_size(total, 4 + len);
		}
	}
	total = tc_add_size(total, tc_mul_size(m->num_params, 4));
	return total;
}

/*
 * Write m into buf (exactly tc_model_serialized_size(m) bytes), then check
 * the result with the reader, so that a model that could not be loaded
 * again (a label too long, a NaN weight, ...) is refused here and not
 * discovered at predict time.
 */
TcStatus
tc_model_serialize(const TcModel *m, unsigned char *buf, size_t size,
				   uint64_t *content_id, TcError *err)
{
	size_t		need;
	Writer		w;
	int32_t		first;
	int32_t		limit;
	uint32_t	nwords;
	uint64_t	id;
	uint64_t	sum;
	BlobLayout	lay;
	TcError		inner;
	TcStatus	st;

	if (m == NULL || buf == NULL)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"no model or buffer to serialize");
	st = tc_config_validate(&m->cfg, err);
	if (st != TC_OK)
		return st;
	need = tc_model_serialized_size(m);
	if (need == SIZE_MAX || size != need)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"model buffer has %zu bytes, but the model needs %zu",
						size, need);
	for (size_t i = 0; i < m->num_params; i++)
		if (!isfinite(m->params_memory[i]))
			return tc_error(err, TC_ERR_DATA,
							"model weight %zu is not finite", i);

	first = m->cfg.use_oov ? 2 : 1;
	limit = m->vocab != NULL ? tc_vocab_id_limit(m->vocab) : first;
	nwords = limit > first ? (uint32_t) (limit - first) : 0;
	if (m->vocab != NULL && tc_vocab_size(m->vocab) != nwords)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"model vocabulary is not finalized");

	w.buf = buf;
	w.pos = 0;
	w.cap = size;
	w.overflow = false;

	/* header; the content id is filled in below */
	PutBytes(&w, TC_FORMAT_MAGIC, 8);
	PutU32(&w, TC_FORMAT_VERSION);
	PutU32(&w, 0);
	PutU64(&w, 0);

	/* config */
	PutU32(&w, (uint32_t) m->cfg.vocab_size);
	PutU32(&w, (uint32_t) m->cfg.max_len);
	PutU32(&w, (uint32_t) m->cfg.embedding_dim);
	PutU32(&w, (uint32_t) m->cfg.hidden_size);
	PutU32(&w, (uint32_t) m->cfg.num_classes);
	PutU8(&w, (uint8_t) m->cfg.tok.mode);
	PutU8(&w, m->cfg.tok.lowercase ? 1 : 0);
	PutU8(&w, m->cfg.use_oov ? 1 : 0);
	PutU8(&w, 0);
	PutF32(&w, m->cfg.threshold);

	/* labels */
	PutU32(&w, (uint32_t) m->cfg.num_classes);
	for (int i = 0; i < m->cfg.num_classes; i++)
	{
		size_t		len = strlen(m->labels[i]);

		if (len > UINT32_MAX)
			return tc_error(err, TC_ERR_INVALID_ARG,
							"model label %d is too long", i);
		PutU32(&w, (uint32_t) len);
		PutBytes(&w, m->labels[i], len);
	}

	/* vocabulary, in id order */
	PutU32(&w, nwords);
	for (uint32_t i = 0; i < nwords; i++)
	{
		size_t		len = 0;
		const char *word = tc_vocab_word(m->vocab, first + (int32_t) i, &len);

		if (word == NULL)
			return tc_error(err, TC_ERR_INVALID_ARG,
							"model vocabulary has no word for id %d",
							first + (int32_t) i);
		if (len > UINT32_MAX)
			return tc_error(err, TC_ERR_INVALID_ARG,
							"model vocabulary word %u is too long", i);
		PutU32(&w, (uint32_t) len);
		PutBytes(&w, word, len);
	}

	/* weights, in TcParams block order (one block) */
	PutU64(&w, (uint64_t) m->num_params);
	for (size_t i = 0; i < m->num_params; i++)
		PutF32(&w, m->params_memory[i]);

	if (w.overflow || w.pos != size - CHECKSUM_BYTES)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"model changed size while it was serialized");
	PutU64(&w, 0);

	id = tc_hash64(buf + OFF_BODY, size - OFF_BODY - CHECKSUM_BYTES);
	StoreU64(buf + OFF_CONTENT_ID, id);
	sum = tc_hash64(buf, size - CHECKSUM_BYTES);
	StoreU64(buf + size - CHECKSUM_BYTES, sum);

	memset(&inner, 0, sizeof(inner));
	st = CheckBlob(buf, size, &m->alloc, &lay, &inner);
	if (st == TC_ERR_NOMEM)
		return tc_error(err, st, "%s", inner.msg);
	if (st != TC_OK)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"could not serialize model: %s", inner.msg);
	if (content_id != NULL)
		*content_id = id;
	return TC_OK;
}

/* Parse and check a blob, then build a parameters-only model from a. */
TcStatus
tc_model_deserialize(const TcAllocator *a, const unsigned char *buf,
					 size_t size, TcModel **out, TcError *err)
{
	BlobLayout	lay;
	TcStatus	st;
	TcModel    *m;
	Reader		r;
	char	  **labels;
	char	   *label_bytes;
	size_t		label_total;
	const char **words;
	size_t	   *lens;
	TcVocab    *vocab;
	TcError		inner;
	uint32_t	len;

	*out = NULL;
	st = CheckBlob(buf, size, a, &lay, err);
	if (st != TC_OK)
		return st;

	/* labels as NUL-terminated copies (bounded by the checked blob) */
	r.buf = buf;
	r.pos = lay.labels_pos;
	r.end = size - CHECKSUM_BYTES;
	label_total = 0;
	for (int i = 0; i < lay.cfg.num_classes; i++)
	{
		len = LoadU32(buf + r.pos);
		label_total += (size_t) len + 1;
		r.pos += 4 + (size_t) len;
	}
	labels = tc_alloc_array(a, (size_t) lay.cfg.num_classes, sizeof(char *));
	label_bytes = tc_alloc(a, label_total);
	if (labels == NULL || label_bytes == NULL)
	{
		tc_free(a, labels);
		tc_free(a, label_bytes);
		return tc_error(err, TC_ERR_NOMEM, "out of memory loading model");
	}
	r.pos = lay.labels_pos;
	label_total = 0;
	for (int i = 0; i < lay.cfg.num_classes; i++)
	{
		len = LoadU32(buf + r.pos);
		labels[i] = label_bytes + label_total;
		memcpy(labels[i], buf + r.pos + 4, len);
		labels[i][len] = '\0';
		label_total += (size_t) len + 1;
		r.pos += 4 + (size_t) len;
	}
	memset(&inner, 0, sizeof(inner));
	m = tc_model_create(a, &lay.cfg, (const char *const *) labels, &inner);
	tc_free(a, labels);
	tc_free(a, label_bytes);
	if (m == NULL)
		return tc_error(err, inner.status != TC_OK ? inner.status :
						TC_ERR_NOMEM, "%s",
						inner.msg[0] ? inner.msg : "out of memory loading model");
	if (m->num_params != lay.nweights)
	{
		tc_model_free(m);
		return tc_error(err, TC_ERR_FORMAT,
						"model holds %zu weights, but its configuration needs %zu",
						lay.nweights, m->num_params);
	}

	/* vocabulary: words point into buf, tc_vocab_from_words copies them */
	words = tc_alloc_array(a, lay.nwords, sizeof(char *));
	lens = tc_alloc_array(a, lay.nwords, sizeof(size_t));
	if (words == NULL || lens == NULL)
	{
		tc_free(a, words);
		tc_free(a, lens);
		tc_model_free(m);
		return tc_error(err, TC_ERR_NOMEM, "out of memory loading model");
	}
	r.pos = lay.words_pos;
	for (size_t i = 0; i < lay.nwords; i++)
	{
		lens[i] = LoadU32(buf + r.pos);
		words[i] = (const char *) buf + r.pos + 4;
		r.pos += 4 + lens[i];
	}
	memset(&inner, 0, sizeof(inner));
	vocab = tc_vocab_from_words(a, words, lens, lay.nwords,
								lay.cfg.vocab_size, lay.cfg.use_oov, &inner);
	tc_free(a, words);
	tc_free(a, lens);
	if (vocab == NULL)
	{
		tc_model_free(m);
		if (inner.status == TC_ERR_NOMEM)
			return tc_error(err, TC_ERR_NOMEM, "%s", inner.msg);
		return tc_error(err, TC_ERR_FORMAT,
						"model has an invalid vocabulary: %s", inner.msg);
	}
	m->vocab = vocab;

	/* weights (already checked finite) */
	for (size_t i = 0; i < lay.nweights; i++)
		m->params_memory[i] = BitsFloat(LoadU32(buf + lay.weights_pos + 4 * i));

	*out = m;
	return TC_OK;
}

/* Run every check of tc_model_deserialize without building anything. */
TcStatus
tc_model_validate_bytes(const unsigned char *buf, size_t size, TcError *err)
{
	BlobLayout	lay;

	return CheckBlob(buf, size, NULL, &lay, err);
}

/* Content id stored in a checked blob. */
uint64_t
tc_model_blob_id(const unsigned char *buf)
{
	return LoadU64(buf + OFF_CONTENT_ID);
}
