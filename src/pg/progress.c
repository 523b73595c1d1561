/*
 * progress.c
 *	  Live training progress in shared memory: every running
 *	  train_classifier() owns a slot that other sessions read through
 *	  textclf.training_progress_rows() and the view textclf.training_progress.
 *
 * Only when textclf is in shared_preload_libraries: _PG_init (through
 * TcProgressInit) defines textclf.max_trainings and installs the shmem
 * request and startup hooks; the slots live in one ShmemInitStruct block.
 * Without preloading there is no block, the view is empty and training
 * works as before (its per-epoch NOTICE does not depend on this file).
 *
 * Slots: a backend claims a free slot with a compare-and-swap on its owner
 * field (no lock), then is the only writer of its data.  Writes follow the
 * changecount protocol of pgstat_report_activity (odd while writing, inside
 * a critical section of plain stores); readers copy a slot and retry until
 * the count was even and unchanged.  A slot is released when the training
 * context is deleted (a memory context callback: the normal end, and the
 * memory cleanup after an error), at the abort of the (sub)transaction that
 * claimed it (an error or a cancel), and at backend exit; releasing twice
 * is harmless.  A crashed backend needs nothing: the postmaster
 * reinitialises shared memory on a crash restart.
 *
 * Phases are inferred from the core's callbacks: rows reported from pass 1
 * ('reading'), a row count that starts again marks pass 2 ('tokenizing'),
 * batches mean 'training', rows reported after batches are the validation
 * passes ('validating'), and train.c sets 'storing' after tc_train.
 *
 * It deliberately does not start threads or touch BLAS, keeps no history
 * (finished runs are in textclf.training_log) and never raises an ERROR
 * from the training callbacks.
 *
 * Memory: the shared block is allocated once by the postmaster; the
 * per-backend state is static; the callback record lives in the training
 * context; the SRF's tuples live in the caller's tuplestore.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "textclf/trainer.h"
#include "glue.h"

PG_FUNCTION_INFO_V1(training_progress_rows);

#define TC_PROGRESS_NAME_LEN (NAMEDATALEN * 4)
#define TC_PROGRESS_COLS 16

/* textclf.max_trainings: progress slots (only defined when preloaded) */
static int	textclf_max_trainings = 64;

static const char *const PhaseNames[] = {
	"reading", "tokenizing", "training", "validating", "storing"
};

/* What a slot shows; copied as a whole by readers. */
typedef struct ProgressData
{
	int			pid;			/* 0: the slot is free */
	Oid			dbid;
	Oid			userid;
	int			phase;			/* TcPhase */
	int			epoch;			/* 0 before the first batch */
	int			epochs;			/* maximum */
	int64		batch;			/* 1-based within the epoch */
	int64		batches;		/* per epoch */
	int64		rows_done;		/* in the pass or the epoch */
	int64		rows_total;		/* -1: unknown */
	double		loss;			/* running mean of the epoch; NaN: none */
	double		rows_per_sec;	/* NaN: none */
	double		sec_per_batch;	/* whole training so far; 0: unknown */
	TimestampTz started;
	TimestampTz epoch_started;	/* start of the pass or the epoch */
	TimestampTz updated;		/* last batch or epoch end */
	char		model_name[TC_PROGRESS_NAME_LEN];
} ProgressData;

typedef struct ProgressSlot
{
	pg_atomic_uint32 owner;		/* pid of the owner, 0: free */
	uint32		changecount;	/* odd while the owner writes */
	ProgressData d;
} ProgressSlot;

typedef struct ProgressShared
{
	int			nslots;
	ProgressSlot slots[FLEXIBLE_ARRAY_MEMBER];
} ProgressShared;

/* NULL unless the library was preloaded */
static ProgressShared *Progress = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* This backend's training being reported. */
static struct
{
	volatile ProgressSlot *slot;	/* NULL: not reporting */
	uint64		generation;		/* bumped per claim */
	SubTransactionId subid;		/* subtransaction that claimed */
	int			batch_size;
	int			phase;
	long		last_rows;		/* last on_rows count */
	long		train_rows;		/* rows per epoch, once an epoch ended */
	TimestampTz last_event;		/* last callback */
	TimestampTz train_start;	/* start of epoch 1 */
	TimestampTz first_batch;	/* end of the first batch (BLAS warm-up) */
	bool		callbacks;		/* exit and xact callbacks registered */
} My;

/* Memory context callback record: releases the claim it was made for. */
typedef struct ProgressReset
{
	MemoryContextCallback cb;
	uint64		generation;
} ProgressReset;

/* Shared memory needed for the slots. */
static Size
ProgressShmemSize(void)
{
	return add_size(offsetof(ProgressShared, slots),
					mul_size(textclf_max_trainings, sizeof(ProgressSlot)));
}

#if PG_VERSION_NUM >= 150000
/* shmem_request_hook: reserve the slots. */
static void
ProgressShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(ProgressShmemSize());
}
#endif

/* shmem_startup_hook: create (or attach to) the slots. */
static void
ProgressShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Progress = ShmemInitStruct("textclf training progress",
							   ProgressShmemSize(), &found);
	if (!found)
	{
		Progress->nslots = textclf_max_trainings;
		for (int i = 0; i < Progress->nslots; i++)
		{
			pg_atomic_init_u32(&Progress->slots[i].owner, 0);
			Progress->slots[i].changecount = 0;
			memset(&Progress->slots[i].d, 0, sizeof(ProgressData));
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called by _PG_init: when preloading, the setting and the shmem hooks. */
void
TcProgressInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("textclf.max_trainings",
							gettext_noop("Sets the number of concurrent trainings whose progress is shown in textclf.training_progress."),
							gettext_noop("Needs textclf in shared_preload_libraries; further trainings run without live progress."),
							&textclf_max_trainings,
							64,
							1,
							1024,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ProgressShmemRequest;
#else
	RequestAddinShmemSpace(ProgressShmemSize());
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ProgressShmemStartup;
}

/* Begin a write of the own slot (a critical section: plain stores only). */
#define BEGIN_WRITE(s) \
	do { \
		START_CRIT_SECTION(); \
		(s)->changecount++; \
		pg_write_barrier(); \
	} while (0)

/* End a write of the own slot. */
#define END_WRITE(s) \
	do { \
		pg_write_barrier(); \
		(s)->changecount++; \
		END_CRIT_SECTION(); \
	} while (0)

/* Seconds from a to b. */
static double
Seconds(TimestampTz a, TimestampTz b)
{
	return (double) (b - a) / 1e6;
}

/* Release the slot this backend holds, if any. */
static void
ProgressRelease(void)
{
	volatile ProgressSlot *s = My.slot;

	if (s == NULL)
		return;
	My.slot = NULL;
	BEGIN_WRITE(s);
	s->d.pid = 0;
	END_WRITE(s);
	pg_atomic_write_u32(&((ProgressSlot *) s)->owner, 0);
	pg_memory_barrier();
}

/* Memory context callback: the training context is going away. */
static void
ProgressContextGone(void *arg)
{
	ProgressReset *r = arg;

	if (r->generation == My.generation)
		ProgressRelease();
}

/* Transaction abort: the training that claimed the slot is over. */
static void
ProgressXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		ProgressRelease();
}

/* Subtransaction abort of the subtransaction that claimed the slot. */
static void
ProgressSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && My.slot != NULL &&
		mySubid == My.subid)
		ProgressRelease();
}

/* Backend exit. */
static void
ProgressExit(int code, Datum arg)
{
	ProgressRelease();
}

/*
 * Claim a slot for a training of model_name (up to epochs epochs of
 * batch_size rows) that allocates in cxt; the slot is released when cxt is
 * deleted or reset at the latest.  Does nothing without preloading.
 */
void
TcProgressBegin(MemoryContext cxt, const char *model_name, int epochs,
				int batch_size)
{
	volatile ProgressSlot *s = NULL;
	ProgressReset *r;
	TimestampTz now;
	int			len;

	if (Progress == NULL)
		return;
	ProgressRelease();			/* a nested training takes over */
	for (int i = 0; i < Progress->nslots && s == NULL; i++)
	{
		uint32		expected = 0;

		if (pg_atomic_read_u32(&Progress->slots[i].owner) == 0 &&
			pg_atomic_compare_exchange_u32(&Progress->slots[i].owner,
										   &expected, (uint32) MyProcPid))
			s = &Progress->slots[i];
	}
	if (s == NULL)
	{
		ereport(NOTICE,
				(errmsg("training of model \"%s\" is not shown in textclf.training_progress",
						model_name),
				 errdetail("All %d progress slots are in use.", Progress->nslots),
				 errhint("Raise textclf.max_trainings (needs a restart).")));
		return;
	}
	if (!My.callbacks)
	{
		before_shmem_exit(ProgressExit, (Datum) 0);
		RegisterXactCallback(ProgressXactCallback, NULL);
		RegisterSubXactCallback(ProgressSubXactCallback, NULL);
		My.callbacks = true;
	}

	now = GetCurrentTimestamp();
	len = pg_mbcliplen(model_name, strlen(model_name), TC_PROGRESS_NAME_LEN - 1);
	My.generation++;
	My.subid = GetCurrentSubTransactionId();
	My.batch_size = batch_size;
	My.phase = TC_PHASE_READING;
	My.last_rows = 0;
	My.train_rows = 0;
	My.last_event = now;
	My.train_start = 0;
	My.first_batch = 0;

	BEGIN_WRITE(s);
	s->d.pid = MyProcPid;
	s->d.dbid = MyDatabaseId;
	s->d.userid = GetUserId();
	s->d.phase = TC_PHASE_READING;
	s->d.epoch = 0;
	s->d.epochs = epochs;
	s->d.batch = 0;
	s->d.batches = 0;
	s->d.rows_done = 0;
	s->d.rows_total = -1;
	s->d.loss = NAN;
	s->d.rows_per_sec = NAN;
	s->d.sec_per_batch = 0;
	s->d.started = now;
	s->d.epoch_started = now;
	s->d.updated = now;
	memcpy((char *) s->d.model_name, model_name, len);
	s->d.model_name[len] = '\0';
	END_WRITE(s);
	My.slot = s;

	r = MemoryContextAlloc(cxt, sizeof(ProgressReset));
	r->generation = My.generation;
	r->cb.func = ProgressContextGone;
	r->cb.arg = r;
	MemoryContextRegisterResetCallback(cxt, &r->cb);
}

/* Rows read so far in a pass over the data (the core's on_rows). */
void
TcProgressRows(long rows)
{
	volatile ProgressSlot *s = My.slot;
	TimestampTz now;
	TimestampTz pass_start;

	if (s == NULL)
		return;
	now = GetCurrentTimestamp();
	if (My.phase == TC_PHASE_STORING)
		return;
	if (My.phase == TC_PHASE_TRAINING || My.phase == TC_PHASE_VALIDATING)
	{
		/* rows of the validation passes: only the phase changes */
		if (My.phase == TC_PHASE_TRAINING)
		{
			My.phase = TC_PHASE_VALIDATING;
			BEGIN_WRITE(s);
			s->d.phase = TC_PHASE_VALIDATING;
			END_WRITE(s);
		}
		My.last_event = now;
		return;
	}
	pass_start = s->d.epoch_started;
	if (My.phase == TC_PHASE_READING && rows <= My.last_rows)
	{
		/* the count starts again: pass 2, over as many rows as pass 1 */
		My.phase = TC_PHASE_TOKENIZING;
		pass_start = My.last_event;
		BEGIN_WRITE(s);
		s->d.phase = TC_PHASE_TOKENIZING;
		s->d.rows_total = My.last_rows;
		s->d.epoch_started = pass_start;
		END_WRITE(s);
	}
	My.last_rows = rows;
	My.last_event = now;
	BEGIN_WRITE(s);
	s->d.rows_done = rows;
	s->d.rows_per_sec = now > pass_start ? rows / Seconds(pass_start, now) : NAN;
	s->d.updated = now;
	END_WRITE(s);
}

/* A training batch is done (the core's on_batch). */
void
TcProgressBatch(const struct TcBatchStats *b)
{
	volatile ProgressSlot *s = My.slot;
	TimestampTz now;
	TimestampTz epoch_start;
	int64		done_total;
	int64		rows_total;

	if (s == NULL)
		return;
	now = GetCurrentTimestamp();
	epoch_start = s->d.epoch_started;
	if (My.phase != TC_PHASE_TRAINING)
	{
		if (My.train_start == 0)
		{
			/* the first batch: training began at the last pass's end */
			My.train_start = My.last_event;
			epoch_start = My.last_event;
		}
		My.phase = TC_PHASE_TRAINING;
	}
	if (b->batch == b->batches)
		My.train_rows = b->rows_done;
	/* rounded up to whole batches until the first epoch ends */
	rows_total = My.train_rows > 0 ? My.train_rows :
		(int64) b->batches * My.batch_size;
	done_total = (int64) (b->epoch - 1) * b->batches + b->batch;
	if (My.first_batch == 0)
		My.first_batch = now;
	My.last_event = now;

	BEGIN_WRITE(s);
	s->d.phase = TC_PHASE_TRAINING;
	s->d.epoch = b->epoch;
	s->d.batch = b->batch;
	s->d.batches = b->batches;
	s->d.rows_done = b->rows_done;
	s->d.rows_total = rows_total;
	s->d.loss = b->loss;
	s->d.rows_per_sec = now > epoch_start ?
		b->rows_done / Seconds(epoch_start, now) : NAN;
	/* the rate after the first batch, which also opens and warms up BLAS */
	s->d.sec_per_batch = done_total > 1 ?
		Seconds(My.first_batch, now) / (done_total - 1) :
		Seconds(My.train_start, now);
	s->d.epoch_started = epoch_start;
	s->d.updated = now;
	END_WRITE(s);
}

/* An epoch is done, validation included (the core's on_epoch). */
void
TcProgressEpoch(const struct TcEpochStats *e)
{
	volatile ProgressSlot *s = My.slot;
	TimestampTz now;

	if (s == NULL)
		return;
	now = GetCurrentTimestamp();
	My.last_event = now;
	BEGIN_WRITE(s);
	s->d.epoch = e->epoch;
	s->d.loss = e->loss;
	s->d.rows_per_sec = e->rows_per_sec;
	s->d.epoch_started = now;
	s->d.updated = now;
	END_WRITE(s);
}

/* Set the phase explicitly (train.c: TC_PHASE_STORING after tc_train). */
void
TcProgressPhase(TcPhase phase)
{
	volatile ProgressSlot *s = My.slot;

	if (s == NULL)
		return;
	My.phase = phase;
	BEGIN_WRITE(s);
	s->d.phase = phase;
	s->d.updated = GetCurrentTimestamp();
	END_WRITE(s);
}

/* The training is over: release the slot (also done by the callbacks). */
void
TcProgressEnd(void)
{
	ProgressRelease();
}

/* Copy slot i consistently; false when it is free. */
static bool
ReadSlot(int i, ProgressData *out)
{
	volatile ProgressSlot *s = &Progress->slots[i];

	for (;;)
	{
		uint32		before = s->changecount;
		uint32		after;

		pg_read_barrier();
		memcpy(out, (const ProgressData *) &s->d, sizeof(ProgressData));
		pg_read_barrier();
		after = s->changecount;
		if (before == after && (before & 1) == 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	return out->pid != 0;
}

/* An interval of usecs microseconds. */
static Datum
IntervalDatum(int64 usecs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = usecs;
	return IntervalPGetDatum(iv);
}

/*
 * textclf.training_progress_rows(): one row per running training this user
 * may see: their own, those of roles whose privileges they have, or all
 * with pg_read_all_stats.  No rows without preloading.
 */
Datum
training_progress_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			me = GetUserId();
	bool		all;

	InitMaterializedSRF(fcinfo, 0);
	if (Progress == NULL)
		return (Datum) 0;
	all = has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);

	for (int i = 0; i < Progress->nslots; i++)
	{
		ProgressData d;
		Datum		v[TC_PROGRESS_COLS];
		bool		n[TC_PROGRESS_COLS];
		TimestampTz now;
		bool		in_epochs;

		if (!ReadSlot(i, &d))
			continue;
		if (!all && d.userid != me && !has_privs_of_role(me, d.userid))
			continue;
		now = GetCurrentTimestamp();
		in_epochs = (d.epoch > 0);
		memset(n, 0, sizeof(n));
		v[0] = Int32GetDatum(d.pid);
		v[1] = ObjectIdGetDatum(d.dbid);
		v[2] = ObjectIdGetDatum(d.userid);
		v[3] = CStringGetTextDatum(d.model_name);
		v[4] = CStringGetTextDatum(d.phase >= 0 && d.phase <= TC_PHASE_STORING ?
								   PhaseNames[d.phase] : "unknown");
		v[5] = Int32GetDatum(d.epoch);
		n[5] = !in_epochs;
		v[6] = Int32GetDatum(d.epochs);
		v[7] = Int64GetDatum(d.batch);
		n[7] = !in_epochs;
		v[8] = Int64GetDatum(d.batches);
		n[8] = !in_epochs;
		v[9] = Int64GetDatum(d.rows_done);
		v[10] = Int64GetDatum(d.rows_total);
		n[10] = (d.rows_total < 0);
		v[11] = Float8GetDatum(d.loss);
		n[11] = isnan(d.loss);
		v[12] = Float8GetDatum(d.rows_per_sec);
		n[12] = isnan(d.rows_per_sec);
		v[13] = TimestampTzGetDatum(d.started);
		v[14] = IntervalDatum(Max(now - d.started, 0));
		/* eta: the batches left in this and the remaining epochs */
		if ((d.phase == TC_PHASE_TRAINING || d.phase == TC_PHASE_VALIDATING) &&
			d.sec_per_batch > 0)
		{
			int64		left = (d.batches - d.batch) +
				(int64) (d.epochs - d.epoch) * d.batches;
			double		secs = d.sec_per_batch * left - Seconds(d.updated, now);

			v[15] = IntervalDatum((int64) (Max(secs, 0.0) * 1e6));
		}
		else
			n[15] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}
