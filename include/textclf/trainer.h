/*
 * trainer.h
 *	  The trainer: pulls (text, label) rows from a row source, builds the
 *	  vocabulary and label set, spills id sequences to a store, and runs
 *	  mini-batch epochs with Adam.
 *
 * Phases:
 *	 1. pass 1 over the source: decide train / validation per row from the
 *		seed and the row's ordinal, count the words of training rows,
 *		collect labels (unless given);
 *	 2. pass 2: tokenize every row to ids, append (label, length, ids) to the
 *		spill store, remember one 64-bit offset per row;
 *	 3. epochs: shuffle the training rows, read each batch back from the
 *		store, forward, backward, clip, Adam; evaluate validation rows.
 * Memory is bounded by the vocabulary being counted plus about 12 bytes per
 * row; the sequences themselves live in the spill store (a BufFile in the
 * server, memory in the tests).
 *
 * Callbacks: on_batch is called after every mini-batch and on_epoch after
 * every epoch.  They may return a non-TC_OK status to stop training.  The
 * server's callbacks may also raise an ERROR (longjmp); the trainer holds no
 * resource besides allocator memory across callbacks, so that is safe.
 */
#ifndef TEXTCLF_TRAINER_H
#define TEXTCLF_TRAINER_H

#include "textclf/metrics.h"
#include "textclf/model.h"

/* One row handed out by a row source; pointers valid until the next call. */
typedef struct TcRow
{
	const char *text;
	size_t		text_len;
	const char *label;
	size_t		label_len;
} TcRow;

typedef struct TcRowSource
{
	void	   *ctx;
	/* Start again from the first row (the same rows, in the same order). */
	TcStatus	(*rewind) (void *ctx, TcError *err);
	/* Fill up to max rows into rows[]; *n = 0 at the end. */
	TcStatus	(*next) (void *ctx, TcRow *rows, int max, int *n, TcError *err);
} TcRowSource;

typedef struct TcSpill
{
	void	   *ctx;
	/* Append n bytes; *offset receives where they start. */
	TcStatus	(*write) (void *ctx, const void *buf, size_t n,
						  uint64_t *offset, TcError *err);
	/* Read n bytes at offset. */
	TcStatus	(*read) (void *ctx, uint64_t offset, void *buf, size_t n,
						 TcError *err);
} TcSpill;

/* Training options (architecture lives in TcConfig). */
typedef struct TcTrainOptions
{
	int			epochs;			/* maximum epochs */
	int			batch_size;
	TcAdam		adam;
	double		validation_fraction;	/* [0, 1) */
	uint64_t	seed;
	int			patience;		/* early stopping: 0 = off */
	float		clip_norm;		/* 0 = off */
	float		dropout;		/* on the LSTM's final state, in training;
								 * [0, 1), 0 = off */
	float		ema_momentum;	/* momentum of the moving average of the
								 * weights that is validated and kept,
								 * [0, 1), 0 = off */
	int			class_weight_mode;	/* 0 none, 1 balanced, 2 explicit */
	const float *class_weights; /* (num_classes) when explicit */
	int			threads;		/* BLAS threads */
	long		debug_nan_batch;	/* testing hook: report a NaN loss at this
									 * global batch number (0 = off) */

	/*
	 * Warm start: begin from this model's vocabulary and weights instead of
	 * counting words and initialising.  Its architecture and tokenizer
	 * settings replace those of the TcConfig passed to tc_train (the
	 * threshold excepted), and the label set must be its labels, in its
	 * order.  NULL for a fresh model.
	 */
	const TcModel *warm_start;
} TcTrainOptions;

typedef struct TcEpochStats
{
	int			epoch;			/* 1-based */
	double		loss;			/* mean training loss */
	double		accuracy;
	double		val_loss;		/* NaN when there are no validation rows */
	double		val_accuracy;
	double		seconds;		/* wall time of the epoch */
	double		rows_per_sec;
	bool		best;			/* best validation loss so far */
} TcEpochStats;

typedef struct TcBatchStats
{
	int			epoch;
	long		batch;			/* 1-based within the epoch */
	long		batches;		/* per epoch */
	long		rows_done;		/* in this epoch */
	double		loss;			/* running mean this epoch */
} TcBatchStats;

typedef struct TcTrainCallbacks
{
	void	   *arg;
	TcStatus	(*on_batch) (void *arg, const TcBatchStats *s);
	TcStatus	(*on_epoch) (void *arg, const TcEpochStats *s);
	/* every 1024 rows read in passes 1 and 2 */
	TcStatus	(*on_rows) (void *arg, long rows);
} TcTrainCallbacks;

typedef struct TcTrainResult
{
	long		rows_train;
	long		rows_val;
	long		rows_skipped;	/* texts or labels that were NULL */
	int			epochs_run;
	int			best_epoch;
	TcEpochStats final;			/* stats of the kept epoch */
	/*
	 * Metrics of the kept weights on the validation rows (K = 0 when there
	 * are none); the caller summarizes and frees it.
	 */
	TcMetrics	val_metrics;
} TcTrainResult;

/* Default training options (the reference: batch 32, Adam 1e-3, ...). */
void		tc_train_options_default(TcTrainOptions *o);

/*
 * Train a model.  cfg gives the architecture (num_classes is filled in);
 * labels, when not NULL, fixes the label set and order (nlabels entries),
 * otherwise labels are collected and sorted bytewise.  On success *out is
 * the trained model (allocated from a).
 */
TcStatus	tc_train(const TcAllocator *a, const TcConfig *cfg,
					 const TcTrainOptions *opts,
					 const char *const *labels, int nlabels,
					 TcRowSource *src, TcSpill *spill,
					 const TcTrainCallbacks *cb,
					 TcModel **out, TcTrainResult *result, TcError *err);

/*
 * Is the row at this ordinal (0-based, counting every row the source hands
 * out, NULLs included) a validation row for seed and fraction?  The trainer
 * uses exactly this rule, so callers can find the validation rows again.
 */
bool		tc_is_validation_row(uint64_t seed, uint64_t ordinal,
								 double fraction);

/* A spill store kept in memory (tests, the CSV harness). */
typedef struct TcMemSpill TcMemSpill;
TcMemSpill *tc_mem_spill_create(const TcAllocator *a);
void		tc_mem_spill_free(TcMemSpill *s);
void		tc_mem_spill_bind(TcMemSpill *s, TcSpill *spill);

#endif							/* TEXTCLF_TRAINER_H */
