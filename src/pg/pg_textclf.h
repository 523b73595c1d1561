/*
 * pg_textclf.h
 *	  Shared declarations of the PostgreSQL glue: the GUC variables, the
 *	  PG_VERSION_NUM shims and a TcAllocator backed by a MemoryContext.
 *
 * Only src/pg includes this header, and every .c file that does starts with
 * #include "postgres.h".  The ML core (src/core, include/textclf) never sees
 * it.
 *
 * Memory: tc_pg_allocator binds the core's allocator to a MemoryContext the
 * caller owns.  Allocations are "huge" (over 1 GB allowed) and NO_OOM, so
 * the core sees NULL when memory runs out and reports TC_ERR_NOMEM instead
 * of having an ERROR longjmp through it; deleting or resetting the context
 * releases everything the core allocated in it.
 */
#ifndef PG_TEXTCLF_H
#define PG_TEXTCLF_H

#include "utils/memutils.h"

#include "textclf/textclf.h"

/* GUC variables, defined in textclf.c */
extern int	textclf_threads;			/* textclf.threads */
extern int	textclf_model_cache_size;	/* textclf.model_cache_size, in kB */
extern bool textclf_progress;			/* textclf.progress */
extern int	textclf_test_nan_batch;		/* textclf.test_nan_at_batch */
extern int	textclf_max_model_memory;	/* textclf.max_model_memory, in kB */

struct TcConfig;

/*
 * ERROR (PROGRAM_LIMIT_EXCEEDED) when a model of cfg is estimated to need
 * more than textclf.max_model_memory: training with batch rows per step
 * on `threads` threads, or (batch 0) holding it for inference; what is
 * "training" or "importing".  Defined in textclf.c.
 */
extern void TcCheckModelMemory(const struct TcConfig *cfg, int batch,
							   int threads, const char *what);

/* alloc hook of tc_pg_allocator: NULL, never an ERROR, on failure */
static inline void *
tc_pg_alloc(void *ctx, size_t size)
{
	if (size > MaxAllocHugeSize)
		return NULL;
	return MemoryContextAllocExtended((MemoryContext) ctx, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

/* free hook of tc_pg_allocator */
static inline void
tc_pg_free(void *ctx, void *ptr)
{
	if (ptr != NULL)
		pfree(ptr);
}

/* Fill *a with an allocator that takes its memory from cxt. */
static inline void
tc_pg_allocator(TcAllocator *a, MemoryContext cxt)
{
	a->alloc = tc_pg_alloc;
	a->free = tc_pg_free;
	a->ctx = (void *) cxt;
}

#endif							/* PG_TEXTCLF_H */
