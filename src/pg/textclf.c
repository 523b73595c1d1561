/*
 * textclf.c
 *	  Entry point of the textclf extension: the module magic, _PG_init and
 *	  textclf_version().
 *
 * _PG_init only registers the textclf.* settings and reserves their prefix
 * (and, when preloaded, lets progress.c request its shared memory).
 * It deliberately does not touch OpenBLAS, start threads or allocate
 * anything lasting: when the library is preloaded, _PG_init runs in the
 * postmaster, and whatever it started would be inherited, broken, by every
 * forked backend (see DESIGN.md, "Threads, processes and scale").  BLAS is
 * set up lazily, on first use in each backend, by the code that uses it.
 *
 * Memory: the GUC machinery owns the settings' storage; nothing else here
 * allocates.
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "textclf/model.h"
#include "glue.h"
#include "pg_textclf.h"

PG_MODULE_MAGIC;

/* textclf.threads: threads a training uses, per backend */
int			textclf_threads = 1;

/* textclf.model_cache_size: decoded models cached per backend, in kB */
int			textclf_model_cache_size = 256 * 1024;

/* textclf.progress: a NOTICE per training epoch */
bool		textclf_progress = true;

/* textclf.max_model_memory: estimated memory a model may need, in kB */
int			textclf_max_model_memory = 1024 * 1024;

/*
 * textclf.test_nan_at_batch: a testing hook that makes training report a
 * NaN loss at the given batch, to exercise the divergence error.  Superuser
 * only and hidden from SHOW ALL.
 */
int			textclf_test_nan_batch = 0;

void		_PG_init(void);

/* Register the textclf.* settings and reserve the prefix. */
void
_PG_init(void)
{
	DefineCustomIntVariable("textclf.threads",
							gettext_noop("Sets the number of threads a training uses."),
							gettext_noop("Valid range is 1 .. 64.  Only the backend's own thread calls into the server; the others do numerical work and sleep between trainings."),
							&textclf_threads,
							1,
							1,
							64,
							PGC_USERSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("textclf.model_cache_size",
							gettext_noop("Sets the maximum memory for decoded models cached by each backend."),
							gettext_noop("Least recently used models are evicted first.  Zero keeps no decoded model between queries."),
							&textclf_model_cache_size,
							256 * 1024,
							0,
							MAX_KILOBYTES,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("textclf.max_model_memory",
							gettext_noop("Sets the maximum estimated memory of a model to train or import."),
							gettext_noop("train_classifier and import_model refuse, before allocating anything, a configuration whose parameters, gradients, optimizer state and batch buffers are estimated to need more."),
							&textclf_max_model_memory,
							1024 * 1024,
							1024,
							MAX_KILOBYTES,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL,
							NULL,
							NULL);

	DefineCustomBoolVariable("textclf.progress",
							 gettext_noop("Reports training progress as a NOTICE after each epoch."),
							 NULL,
							 &textclf_progress,
							 true,
							 PGC_USERSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomIntVariable("textclf.test_nan_at_batch",
							gettext_noop("Testing hook: report a NaN training loss at this batch."),
							gettext_noop("Zero (the default) turns it off."),
							&textclf_test_nan_batch,
							0,
							0,
							INT_MAX,
							PGC_SUSET,
							GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							NULL,
							NULL,
							NULL);

	/* live training progress: shared memory, only when preloaded */
	TcProgressInit();

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("textclf");
#else
	EmitWarningsOnPlaceholders("textclf");
#endif
}

/*
 * Refuse, with PROGRAM_LIMIT_EXCEEDED, a model of cfg whose estimated memory
 * (tc_model_memory_estimate: training with batch rows per step, or holding
 * it for inference when batch is 0) exceeds textclf.max_model_memory.
 * what names the operation in the message ("training", "importing").
 */
void
TcCheckModelMemory(const TcConfig *cfg, int batch, int threads,
				   const char *what)
{
	size_t		need = tc_model_memory_estimate(cfg, batch, threads);
	uint64		limit = (uint64) textclf_max_model_memory * 1024;

	if ((uint64) need <= limit)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("%s this model would need about %.0f MB of memory, over the limit of %.0f MB",
					what, ceil((double) need / (1024.0 * 1024.0)),
					floor((double) limit / (1024.0 * 1024.0))),
			 batch > 0 ?
			 errdetail("vocab_size %d, embedding_dim %d, hidden_size %d, max_len %d, batch_size %d.",
					   cfg->vocab_size, cfg->embedding_dim, cfg->hidden_size,
					   cfg->max_len, batch) :
			 errdetail("vocab_size %d, embedding_dim %d, hidden_size %d.",
					   cfg->vocab_size, cfg->embedding_dim, cfg->hidden_size),
			 batch > 0 ?
			 errhint("Lower vocab_size, embedding_dim, hidden_size, max_len or batch_size, or have a superuser raise \"textclf.max_model_memory\".") :
			 errhint("A superuser can raise \"textclf.max_model_memory\".")));
}

PG_FUNCTION_INFO_V1(textclf_version);

/* SQL textclf_version(): the version of the loaded library */
Datum
textclf_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(TC_VERSION_STRING));
}
