/*
 * cache.c
 *	  The backend-wide cache of decoded models, keyed by content id.
 *
 * A model version is immutable and its content id is a hash of its bytes,
 * so an entry never goes stale: deploying another version only changes which
 * id a name resolves to.  The cache is bounded by textclf.model_cache_size;
 * the least recently used entries leave first, but the entry just loaded
 * always stays, so one model larger than the bound still works.
 *
 * Memory: each entry lives in its own MemoryContext under "textclf model
 * cache" (a child of TopMemoryContext), so dropping an entry is one
 * MemoryContextDelete.  Callers keep TcCachedModel pointers only within one
 * query and check TcCacheGeneration() before reusing one across calls.
 * The cache is per backend (and per parallel worker); nothing is shared.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "textclf/format.h"
#include "glue.h"
#include "pg_textclf.h"

typedef struct CacheEntry
{
	TcCachedModel cm;			/* first: callers get &entry->cm */
	MemoryContext cxt;
	uint64		last_used;
} CacheEntry;

static MemoryContext CacheContext = NULL;
static CacheEntry **Entries = NULL; /* (NumEntries) */
static int	NumEntries = 0;
static int	MaxEntries = 0;
static uint64 Tick = 0;
static uint64 Generation = 0;
static size_t TotalBytes = 0;
static CacheEntry *LastHit = NULL;

/* Counter bumped whenever an entry is evicted. */
uint64
TcCacheGeneration(void)
{
	return Generation;
}

/* Find a cached model by content id. */
TcCachedModel *
TcCacheLookup(uint64 content_id)
{
	if (LastHit != NULL && LastHit->cm.content_id == content_id)
	{
		LastHit->last_used = ++Tick;
		return &LastHit->cm;
	}
	for (int i = 0; i < NumEntries; i++)
	{
		if (Entries[i]->cm.content_id == content_id)
		{
			LastHit = Entries[i];
			LastHit->last_used = ++Tick;
			return &LastHit->cm;
		}
	}
	return NULL;
}

/* Evict least recently used entries (never keep) until the bound holds. */
static void
EvictFor(size_t incoming, CacheEntry *keep)
{
	size_t		limit = (size_t) textclf_model_cache_size * 1024;

	while (NumEntries > 0 && TotalBytes + incoming > limit)
	{
		int			victim = -1;

		for (int i = 0; i < NumEntries; i++)
			if (Entries[i] != keep &&
				(victim < 0 || Entries[i]->last_used < Entries[victim]->last_used))
				victim = i;
		if (victim < 0)
			break;
		TotalBytes -= Entries[victim]->cm.bytes;
		if (LastHit == Entries[victim])
			LastHit = NULL;
		MemoryContextDelete(Entries[victim]->cxt);
		Entries[victim] = Entries[--NumEntries];
		Generation++;
	}
}

/* Decode a serialized model into the cache, or return the cached copy. */
TcCachedModel *
TcCacheLoad(const unsigned char *buf, size_t size)
{
	TcCachedModel *hit;
	MemoryContext cxt;
	CacheEntry *e;
	TcAllocator a;
	TcError		err;
	TcModel    *m;
	TcStatus	st;

	if (size < TC_FORMAT_MIN_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary data for type %s", "classifier"),
				 errdetail("The value is too short.")));
	hit = TcCacheLookup(tc_model_blob_id(buf));
	if (hit != NULL)
		return hit;

	if (CacheContext == NULL)
		CacheContext = AllocSetContextCreate(TopMemoryContext,
											 "textclf model cache",
											 ALLOCSET_DEFAULT_SIZES);
	cxt = AllocSetContextCreate(CacheContext, "textclf model",
								ALLOCSET_DEFAULT_SIZES);
	tc_pg_allocator(&a, cxt);
	st = tc_model_deserialize(&a, buf, size, &m, &err);
	if (st == TC_OK)
		st = tc_model_prepare_infer(m, &err);	/* fast-path tables, once */
	if (st != TC_OK)
	{
		MemoryContextDelete(cxt);
		TcReportError(&err);
	}
	e = MemoryContextAllocZero(cxt, sizeof(CacheEntry));
	e->cxt = cxt;
	e->cm.model = m;
	e->cm.content_id = tc_model_blob_id(buf);
	e->cm.work = MemoryContextAllocHuge(cxt, sizeof(float) * tc_model_infer_work_floats(m));
	e->cm.ids = MemoryContextAlloc(cxt, sizeof(int32) * m->cfg.max_len);
	e->cm.probs = MemoryContextAlloc(cxt, sizeof(float) * m->cfg.num_classes);
	e->cm.bytes = MemoryContextMemAllocated(cxt, true);
	e->last_used = ++Tick;

	EvictFor(e->cm.bytes, NULL);
	if (NumEntries == MaxEntries)
	{
		int			nmax = MaxEntries ? MaxEntries * 2 : 8;

		Entries = Entries ?
			repalloc(Entries, sizeof(CacheEntry *) * nmax) :
			MemoryContextAlloc(CacheContext, sizeof(CacheEntry *) * nmax);
		MaxEntries = nmax;
	}
	Entries[NumEntries++] = e;
	TotalBytes += e->cm.bytes;
	LastHit = e;
	return &e->cm;
}
