/*
 * trainer.c
 *	  Mini-batch training of a model from a row source (see trainer.h for the
 *	  phases).
 *
 * The trainer does not know where rows come from (an SPI cursor in the
 * server, a CSV file in the harness) nor where the id sequences are kept
 * between passes (a BufFile, or memory): both are interfaces.  It does not
 * print; progress goes out through callbacks.
 *
 * Memory: everything is allocated from the caller's allocator.  Besides the
 * model and the vocabulary, the trainer holds one 64-bit spill offset per
 * row, one batch of id sequences, and (with early stopping) one copy of the
 * parameters.  Everything but the returned model is freed before return,
 * on success and on failure.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "textclf/trainer.h"

#define TC_ROWS_PER_FETCH 256

/* An append-only array of 64-bit spill offsets. */
typedef struct OffsetList
{
	uint64_t   *items;
	size_t		n;
	size_t		cap;
} OffsetList;

/* The label set while it is collected: a small open-addressing table. */
typedef struct LabelSet
{
	char	  **names;			/* (n) NUL-terminated, in insertion order */
	size_t	   *lens;			/* (n) */
	int			n;
	int			cap;			/* names/lens capacity */
	int		   *slots;			/* (nslots) index + 1, 0 = empty */
	int			nslots;
} LabelSet;

typedef struct Trainer
{
	const TcAllocator *a;
	TcConfig	cfg;
	TcTrainOptions opts;
	TcRowSource *src;
	TcSpill    *spill;
	const TcTrainCallbacks *cb;
	TcError    *err;

	TcVocab    *vocab;
	LabelSet	labels;
	TcRow	   *rows;			/* (TC_ROWS_PER_FETCH) fetch buffer */
	int32_t    *ids;			/* (max_len) tokenizer output */
	OffsetList	train;
	OffsetList	val;
	long	   *class_counts;	/* (num_classes) training rows per class */
	float	   *class_w;		/* (num_classes) per-class loss weights */
	long		skipped;
	TcModel    *model;

	/* one batch read back from the spill */
	int32_t    *batch_ids;		/* (batch_size, max_len) */
	const int32_t **seqs;		/* (batch_size) */
	int		   *lens;			/* (batch_size) */
	int32_t    *targets;		/* (batch_size) */
	float	   *weights;		/* (batch_size) */
	float	   *probs;			/* (batch_size, num_classes or 1) */
	float	   *best_params;	/* (num_params) early-stopping copy */
	float	   *ema_params;		/* (num_params) moving average of the weights */
	float	   *live_params;	/* (num_params) trained weights while the
								 * average is validated */
} Trainer;

/* Seconds on a monotonic clock. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Fill the reference training options. */
void
tc_train_options_default(TcTrainOptions *o)
{
	memset(o, 0, sizeof(*o));
	o->epochs = 10;
	o->batch_size = 32;
	o->adam.lr = 1e-3f;
	o->adam.beta1 = 0.9f;
	o->adam.beta2 = 0.999f;
	o->adam.eps = 1e-7f;
	o->validation_fraction = 0.1;
	o->seed = 42;
	o->patience = 3;
	o->clip_norm = 0.0f;
	o->dropout = 0.5f;
	o->ema_momentum = 0.99f;
	o->class_weight_mode = 0;
	o->class_weights = NULL;
	o->threads = 1;
}

/* Validate training options; the message names the option. */
static TcStatus
check_options(const TcTrainOptions *o, TcError *err)
{
	if (o->epochs < 1 || o->epochs > 10000)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"epochs\" must be between 1 and 10000");
	if (o->batch_size < 1 || o->batch_size > TC_MAX_BATCH)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"batch_size\" must be between 1 and %d", TC_MAX_BATCH);
	if (!(o->adam.lr > 0.0f && o->adam.lr <= 10.0f))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"learning_rate\" must be greater than 0 and at most 10");
	if (!(o->adam.beta1 >= 0.0f && o->adam.beta1 < 1.0f) ||
		!(o->adam.beta2 >= 0.0f && o->adam.beta2 < 1.0f))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"Adam betas must be in [0, 1)");
	if (!(o->adam.eps > 0.0f && o->adam.eps < 1.0f))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"epsilon\" must be greater than 0 and less than 1");
	if (!(o->validation_fraction >= 0.0 && o->validation_fraction < 1.0))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"validation_fraction\" must be at least 0 and less than 1");
	if (o->patience < 0 || o->patience > 10000)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"patience\" must be between 0 and 10000");
	if (!(o->clip_norm >= 0.0f) || isinf(o->clip_norm))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"clip_norm\" must be a finite number, 0 or more");
	if (!(o->dropout >= 0.0f && o->dropout < 1.0f))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"dropout\" must be at least 0 and less than 1");
	if (!(o->ema_momentum >= 0.0f && o->ema_momentum < 1.0f))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"ema_momentum\" must be at least 0 and less than 1");
	if (o->threads < 1 || o->threads > 64)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"threads\" must be between 1 and 64");
	if (o->class_weight_mode < 0 || o->class_weight_mode > 2 ||
		(o->class_weight_mode == 2 && o->class_weights == NULL))
		return tc_error(err, TC_ERR_INVALID_ARG, "invalid class weights");
	return TC_OK;
}

/* Append one offset, growing the list by doubling. */
static TcStatus
offsets_push(Trainer *tr, OffsetList *l, uint64_t off)
{
	if (l->n == l->cap)
	{
		size_t		ncap = l->cap ? l->cap * 2 : 4096;
		uint64_t   *items = tc_alloc(tr->a, tc_mul_size(ncap, sizeof(uint64_t)));

		if (items == NULL)
			return tc_error(tr->err, TC_ERR_NOMEM,
							"out of memory for %zu row offsets", ncap);
		if (l->n)
			memcpy(items, l->items, l->n * sizeof(uint64_t));
		tc_free(tr->a, l->items);
		l->items = items;
		l->cap = ncap;
	}
	l->items[l->n++] = off;
	return TC_OK;
}

/* Hash of a label's bytes. */
static uint64_t
label_hash(const char *s, size_t len)
{
	uint64_t	h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char) s[i]) * 1099511628211ULL;
	return tc_mix64(h);
}

/* Index of a label, or -1. */
static int
labels_find(const LabelSet *ls, const char *s, size_t len)
{
	uint64_t	h;
	int			slot;

	if (ls->nslots == 0)
		return -1;
	h = label_hash(s, len);
	slot = (int) (h & (uint64_t) (ls->nslots - 1));
	while (ls->slots[slot] != 0)
	{
		int			i = ls->slots[slot] - 1;

		if (ls->lens[i] == len && memcmp(ls->names[i], s, len) == 0)
			return i;
		slot = (slot + 1) & (ls->nslots - 1);
	}
	return -1;
}

/* Add a label (if new); more than TC_MAX_CLASSES is an error. */
static TcStatus
labels_add(Trainer *tr, const char *s, size_t len)
{
	LabelSet   *ls = &tr->labels;
	uint64_t	h;
	int			slot;
	char	   *copy;

	if (labels_find(ls, s, len) >= 0)
		return TC_OK;
	if (len > TC_MAX_LABEL_BYTES)
		return tc_error(tr->err, TC_ERR_LIMIT,
						"label is %zu bytes long, more than the limit of %d",
						len, TC_MAX_LABEL_BYTES);
	if (ls->n >= TC_MAX_CLASSES)
	{
		tc_error(tr->err, TC_ERR_LIMIT,
				 "more than %d distinct labels", TC_MAX_CLASSES);
		tc_error_hint(tr->err, "A classifier supports at most %d classes.",
					  TC_MAX_CLASSES);
		return TC_ERR_LIMIT;
	}
	if (ls->slots == NULL)
	{
		ls->nslots = 4096;		/* > 2 * TC_MAX_CLASSES, so it never fills */
		ls->cap = TC_MAX_CLASSES;
		ls->slots = tc_alloc_array(tr->a, ls->nslots, sizeof(int));
		ls->names = tc_alloc_array(tr->a, ls->cap, sizeof(char *));
		ls->lens = tc_alloc_array(tr->a, ls->cap, sizeof(size_t));
		if (!ls->slots || !ls->names || !ls->lens)
			return tc_error(tr->err, TC_ERR_NOMEM, "out of memory for labels");
	}
	copy = tc_alloc(tr->a, len + 1);
	if (copy == NULL)
		return tc_error(tr->err, TC_ERR_NOMEM, "out of memory for labels");
	memcpy(copy, s, len);
	copy[len] = '\0';
	ls->names[ls->n] = copy;
	ls->lens[ls->n] = len;
	h = label_hash(s, len);
	slot = (int) (h & (uint64_t) (ls->nslots - 1));
	while (ls->slots[slot] != 0)
		slot = (slot + 1) & (ls->nslots - 1);
	ls->slots[slot] = ls->n + 1;
	ls->n++;
	return TC_OK;
}

/* Rebuild the label hash slots after the names were reordered. */
static void
labels_rehash(LabelSet *ls)
{
	if (ls->slots == NULL)
		return;
	memset(ls->slots, 0, sizeof(int) * ls->nslots);
	for (int i = 0; i < ls->n; i++)
	{
		int			slot = (int) (label_hash(ls->names[i], ls->lens[i]) &
								  (uint64_t) (ls->nslots - 1));

		while (ls->slots[slot] != 0)
			slot = (slot + 1) & (ls->nslots - 1);
		ls->slots[slot] = i + 1;
	}
}

/* Bytewise comparison of two labels (shorter prefix first). */
static int
label_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int			c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/* Sort labels bytewise (insertion sort: at most TC_MAX_CLASSES). */
static void
labels_sort(LabelSet *ls)
{
	for (int i = 1; i < ls->n; i++)
	{
		char	   *name = ls->names[i];
		size_t		len = ls->lens[i];
		int			j = i - 1;

		while (j >= 0 && label_cmp(ls->names[j], ls->lens[j], name, len) > 0)
		{
			ls->names[j + 1] = ls->names[j];
			ls->lens[j + 1] = ls->lens[j];
			j--;
		}
		ls->names[j + 1] = name;
		ls->lens[j + 1] = len;
	}
	labels_rehash(ls);
}

/* Is row ordinal i (0-based) a validation row for this seed? */
bool
tc_is_validation_row(uint64_t seed, uint64_t i, double fraction)
{
	uint64_t	h;

	if (fraction <= 0.0)
		return false;
	h = tc_mix64(seed ^ tc_mix64(i + 0x9E3779B97F4A7C15ULL));
	return (double) (h >> 11) * (1.0 / 9007199254740992.0) < fraction;
}

/* Pass 1: count words of training rows, collect labels. */
static TcStatus
pass_count(Trainer *tr, bool collect_labels)
{
	TcStatus	st;
	uint64_t	ordinal = 0;
	int			n;

	if ((st = tr->src->rewind(tr->src->ctx, tr->err)) != TC_OK)
		return st;
	for (;;)
	{
		if ((st = tr->src->next(tr->src->ctx, tr->rows, TC_ROWS_PER_FETCH,
								&n, tr->err)) != TC_OK)
			return st;
		if (n == 0)
			break;
		for (int i = 0; i < n; i++, ordinal++)
		{
			const TcRow *r = &tr->rows[i];

			if (r->text == NULL || r->label == NULL)
				continue;
			if (collect_labels &&
				(st = labels_add(tr, r->label, r->label_len)) != TC_OK)
				return st;
			if (!tc_is_validation_row(tr->opts.seed, ordinal,
								   tr->opts.validation_fraction) &&
				(st = tc_vocab_count_text(tr->vocab, &tr->cfg.tok, r->text,
										  r->text_len, tr->err)) != TC_OK)
				return st;
		}
		if (tr->cb && tr->cb->on_rows &&
			(st = tr->cb->on_rows(tr->cb->arg, (long) ordinal)) != TC_OK)
			return tc_error(tr->err, st, "training was stopped");
	}
	return TC_OK;
}

/* Pass 2: tokenize every row and spill (label, length, ids). */
static TcStatus
pass_spill(Trainer *tr)
{
	TcStatus	st;
	uint64_t	ordinal = 0;
	int			n;

	if ((st = tr->src->rewind(tr->src->ctx, tr->err)) != TC_OK)
		return st;
	for (;;)
	{
		if ((st = tr->src->next(tr->src->ctx, tr->rows, TC_ROWS_PER_FETCH,
								&n, tr->err)) != TC_OK)
			return st;
		if (n == 0)
			break;
		for (int i = 0; i < n; i++, ordinal++)
		{
			const TcRow *r = &tr->rows[i];
			int32_t		head[2];
			uint64_t	off;
			uint64_t	dummy;
			int			label;
			bool		val;

			if (r->text == NULL || r->label == NULL)
			{
				tr->skipped++;
				continue;
			}
			label = labels_find(&tr->labels, r->label, r->label_len);
			if (label < 0)
				return tc_error(tr->err, TC_ERR_DATA,
								"label \"%.*s\" is not in the label set",
								(int) (r->label_len > 64 ? 64 : r->label_len),
								r->label);
			head[0] = label;
			head[1] = tc_text_to_ids(tr->vocab, &tr->cfg.tok, r->text,
									 r->text_len, tr->cfg.max_len, tr->ids);
			if ((st = tr->spill->write(tr->spill->ctx, head, sizeof(head),
									   &off, tr->err)) != TC_OK)
				return st;
			if (head[1] > 0 &&
				(st = tr->spill->write(tr->spill->ctx, tr->ids,
									   sizeof(int32_t) * head[1], &dummy,
									   tr->err)) != TC_OK)
				return st;
			val = tc_is_validation_row(tr->opts.seed, ordinal,
									tr->opts.validation_fraction);
			if ((st = offsets_push(tr, val ? &tr->val : &tr->train, off)) != TC_OK)
				return st;
			if (!val)
				tr->class_counts[label]++;
		}
		if (tr->cb && tr->cb->on_rows &&
			(st = tr->cb->on_rows(tr->cb->arg, (long) ordinal)) != TC_OK)
			return tc_error(tr->err, st, "training was stopped");
	}
	return TC_OK;
}

/* Read rows [from, from + B) of list into the batch buffers. */
static TcStatus
read_batch(Trainer *tr, const OffsetList *l, size_t from, int B)
{
	TcStatus	st;

	for (int b = 0; b < B; b++)
	{
		int32_t		head[2];
		int32_t    *dst = tr->batch_ids + (size_t) b * tr->cfg.max_len;
		uint64_t	off = l->items[from + b];

		if ((st = tr->spill->read(tr->spill->ctx, off, head, sizeof(head),
								  tr->err)) != TC_OK)
			return st;
		if (head[0] < 0 || head[0] >= tr->labels.n ||
			head[1] < 0 || head[1] > tr->cfg.max_len)
			return tc_error(tr->err, TC_ERR_IO, "spilled row is corrupt");
		if (head[1] > 0 &&
			(st = tr->spill->read(tr->spill->ctx, off + sizeof(head), dst,
								  sizeof(int32_t) * head[1], tr->err)) != TC_OK)
			return st;
		tr->seqs[b] = dst;
		tr->lens[b] = head[1];
		tr->targets[b] = head[0];
		tr->weights[b] = tr->class_w ? tr->class_w[head[0]] : 1.0f;
	}
	return TC_OK;
}

/* Number of correct predictions among B rows of probs. */
static int
count_correct(const Trainer *tr, int B)
{
	int			correct = 0;
	int			K = tr->model->cfg.num_classes;

	for (int b = 0; b < B; b++)
	{
		float		p2[2];
		const float *p;

		if (tr->model->K == 1)
		{
			p2[1] = tr->probs[b];
			p2[0] = 1.0f - p2[1];
			p = p2;
		}
		else
			p = tr->probs + (size_t) b * K;
		if (tc_model_decide(tr->model, p, tr->model->cfg.threshold) == tr->targets[b])
			correct++;
	}
	return correct;
}

/* Mean loss and accuracy over the validation rows (no gradients). */
static TcStatus
evaluate_validation(Trainer *tr, double *loss, double *acc)
{
	TcStatus	st;
	double		sum = 0.0;
	long		correct = 0;
	int			bsz = tr->opts.batch_size;

	*loss = NAN;
	*acc = NAN;
	if (tr->val.n == 0)
		return TC_OK;
	for (size_t from = 0; from < tr->val.n; from += bsz)
	{
		int			B = (int) (tr->val.n - from < (size_t) bsz ? tr->val.n - from : (size_t) bsz);
		double		l;

		if ((st = read_batch(tr, &tr->val, from, B)) != TC_OK)
			return st;
		for (int b = 0; b < B; b++)
			tr->weights[b] = 1.0f;
		if ((st = tc_model_batch(tr->model, tr->seqs, tr->lens, tr->targets,
								 NULL, B, false, &l, tr->probs,
								 tr->err)) != TC_OK)
			return st;
		sum += l * B;
		correct += count_correct(tr, B);
		if (tr->cb && tr->cb->on_rows &&
			(st = tr->cb->on_rows(tr->cb->arg, (long) from)) != TC_OK)
			return tc_error(tr->err, st, "training was stopped");
	}
	*loss = sum / (double) tr->val.n;
	*acc = (double) correct / (double) tr->val.n;
	return TC_OK;
}

/* Metrics of the current weights on the validation rows. */
static TcStatus
validation_metrics(Trainer *tr, TcMetrics *mt)
{
	TcStatus	st;
	int			bsz = tr->opts.batch_size;
	int			C = tr->model->cfg.num_classes;
	int			K = tr->model->K;

	if ((st = tc_metrics_init(mt, tr->a, C, tr->err)) != TC_OK)
		return st;
	for (size_t from = 0; from < tr->val.n; from += bsz)
	{
		int			B = (int) (tr->val.n - from < (size_t) bsz ? tr->val.n - from : (size_t) bsz);
		double		l;

		if ((st = read_batch(tr, &tr->val, from, B)) != TC_OK ||
			(st = tc_model_batch(tr->model, tr->seqs, tr->lens, tr->targets,
								 NULL, B, false, &l, tr->probs,
								 tr->err)) != TC_OK)
			return st;
		for (int b = 0; b < B; b++)
		{
			float		p2[2];
			const float *p;

			if (K == 1)
			{
				p2[1] = tr->probs[b];
				p2[0] = 1.0f - p2[1];
				p = p2;
			}
			else
				p = tr->probs + (size_t) b * C;
			if ((st = tc_metrics_add(mt, p, tr->targets[b],
									 tc_model_decide(tr->model, p,
													 tr->model->cfg.threshold),
									 tr->err)) != TC_OK)
				return st;
		}
		if (tr->cb && tr->cb->on_rows &&
			(st = tr->cb->on_rows(tr->cb->arg, (long) from)) != TC_OK)
			return tc_error(tr->err, st, "training was stopped");
	}
	return TC_OK;
}

/* Per-class loss weights from the options and the class counts. */
static TcStatus
setup_class_weights(Trainer *tr)
{
	int			K = tr->labels.n;

	if (tr->opts.class_weight_mode == 0)
		return TC_OK;
	tr->class_w = tc_alloc_array(tr->a, K, sizeof(float));
	if (tr->class_w == NULL)
		return tc_error(tr->err, TC_ERR_NOMEM, "out of memory");
	for (int k = 0; k < K; k++)
	{
		if (tr->opts.class_weight_mode == 2)
			tr->class_w[k] = tr->opts.class_weights[k];
		else
		{
			/* scikit-learn's "balanced": n_samples / (n_classes * count) */
			tr->class_w[k] = tr->class_counts[k] > 0 ?
				(float) ((double) tr->train.n / ((double) K * tr->class_counts[k])) :
				0.0f;
		}
	}
	return TC_OK;
}

/*
 * One step of the moving average of the weights, avg = mu avg + (1 - mu) w,
 * after the step-th Adam step (0-based).  mu ramps up as in TensorFlow's
 * ExponentialMovingAverage with num_updates, min(momentum, (1 + step) /
 * (10 + step)), so that a short training keeps an average of its recent
 * weights rather than of its starting point.
 */
static void
ema_update(float *avg, const float *w, size_t n, float momentum, long step)
{
	double		ramp = (1.0 + (double) step) / (10.0 + (double) step);
	float		k = 1.0f - (float) (ramp < momentum ? ramp : momentum);

	for (size_t i = 0; i < n; i++)
		avg[i] += k * (w[i] - avg[i]);
}

/* The epoch loop: shuffle, batches, Adam, validation, early stopping. */
static TcStatus
run_epochs(Trainer *tr, TcTrainResult *res)
{
	TcStatus	st;
	TcModel    *m = tr->model;
	TcRng		rng;
	int			bsz = tr->opts.batch_size;
	double		best_val = INFINITY;
	int			since_best = 0;
	bool		have_best = false;
	long		ema_steps = 0;
	long		batches = (long) ((tr->train.n + bsz - 1) / bsz);

	tc_rng_seed(&rng, tc_mix64(tr->opts.seed ^ 0x53485546464c45ULL));
	/* a stream of its own: the row order does not depend on the dropout */
	m->dropout = tr->opts.dropout;
	tc_rng_seed(&m->dropout_rng, tc_mix64(tr->opts.seed ^ 0x44524f504f5554ULL));
	if (tr->opts.patience > 0 && tr->val.n > 0)
	{
		tr->best_params = tc_alloc_array(tr->a, m->num_params, sizeof(float));
		if (tr->best_params == NULL)
			return tc_error(tr->err, TC_ERR_NOMEM,
							"out of memory for the best weights");
	}
	if (tr->opts.ema_momentum > 0.0f)
	{
		tr->ema_params = tc_alloc_array(tr->a, m->num_params, sizeof(float));
		tr->live_params = tc_alloc_array(tr->a, m->num_params, sizeof(float));
		if (tr->ema_params == NULL || tr->live_params == NULL)
			return tc_error(tr->err, TC_ERR_NOMEM,
							"out of memory for the moving average of the weights");
		memcpy(tr->ema_params, m->params_memory, m->num_params * sizeof(float));
	}

	for (int epoch = 1; epoch <= tr->opts.epochs; epoch++)
	{
		TcEpochStats es;
		double		t0 = now_seconds();
		double		sum = 0.0;
		long		correct = 0;
		long		done = 0;

		/* Fisher-Yates shuffle of the training rows */
		for (size_t i = tr->train.n; i > 1; i--)
		{
			size_t		j = (size_t) tc_rng_below(&rng, i);
			uint64_t	t = tr->train.items[i - 1];

			tr->train.items[i - 1] = tr->train.items[j];
			tr->train.items[j] = t;
		}

		for (long bi = 0; bi < batches; bi++)
		{
			size_t		from = (size_t) bi * bsz;
			int			B = (int) (tr->train.n - from < (size_t) bsz ? tr->train.n - from : (size_t) bsz);
			double		loss;

			if ((st = read_batch(tr, &tr->train, from, B)) != TC_OK)
				return st;
			if ((st = tc_model_batch(m, tr->seqs, tr->lens, tr->targets,
									 tr->class_w ? tr->weights : NULL, B,
									 true, &loss, tr->probs,
									 tr->err)) != TC_OK)
				return st;
			if (tr->opts.debug_nan_batch > 0 &&
				(long) (epoch - 1) * batches + bi + 1 == tr->opts.debug_nan_batch)
				loss = NAN;
			if (!isfinite(loss))
			{
				tc_error(tr->err, TC_ERR_DATA,
						 "training loss became %s in epoch %d, batch %ld",
						 isnan(loss) ? "NaN" : "infinite", epoch, bi + 1);
				tc_error_hint(tr->err,
							  "Lower the learning rate or set \"clip_norm\".");
				return TC_ERR_DATA;
			}
			if (tr->opts.clip_norm > 0.0f)
			{
				double		norm = tc_grad_norm(m);

				if (norm > tr->opts.clip_norm)
					tc_grad_scale(m, (float) (tr->opts.clip_norm / norm));
			}
			tc_adam_step(m, &tr->opts.adam);
			if (tr->ema_params)
				ema_update(tr->ema_params, m->params_memory, m->num_params,
						   tr->opts.ema_momentum, ema_steps++);
			sum += loss * B;
			correct += count_correct(tr, B);
			done += B;
			if (tr->cb && tr->cb->on_batch)
			{
				TcBatchStats bs;

				bs.epoch = epoch;
				bs.batch = bi + 1;
				bs.batches = batches;
				bs.rows_done = done;
				bs.loss = sum / (double) done;
				if ((st = tr->cb->on_batch(tr->cb->arg, &bs)) != TC_OK)
					return tc_error(tr->err, st, "training was stopped");
			}
		}

		memset(&es, 0, sizeof(es));
		es.epoch = epoch;
		es.loss = sum / (double) done;
		es.accuracy = (double) correct / (double) done;
		/* validate (and keep) the average; training goes on from the live weights */
		if (tr->ema_params)
		{
			memcpy(tr->live_params, m->params_memory, m->num_params * sizeof(float));
			memcpy(m->params_memory, tr->ema_params, m->num_params * sizeof(float));
		}
		if ((st = evaluate_validation(tr, &es.val_loss, &es.val_accuracy)) != TC_OK)
			return st;
		es.seconds = now_seconds() - t0;
		es.rows_per_sec = es.seconds > 0 ? (double) done / es.seconds : 0.0;
		if (tr->val.n > 0 && !isfinite(es.val_loss))
		{
			tc_error(tr->err, TC_ERR_DATA,
					 "validation loss became %s in epoch %d",
					 isnan(es.val_loss) ? "NaN" : "infinite", epoch);
			tc_error_hint(tr->err,
						  "Lower the learning rate or set \"clip_norm\".");
			return TC_ERR_DATA;
		}

		res->epochs_run = epoch;
		if (tr->val.n == 0 || es.val_loss < best_val)
		{
			best_val = tr->val.n ? es.val_loss : best_val;
			since_best = 0;
			es.best = true;
			res->best_epoch = epoch;
			res->final = es;
			if (tr->best_params)
			{
				memcpy(tr->best_params, m->params_memory,
					   m->num_params * sizeof(float));
				have_best = true;
			}
		}
		else
			since_best++;

		if (tr->cb && tr->cb->on_epoch &&
			(st = tr->cb->on_epoch(tr->cb->arg, &es)) != TC_OK)
			return tc_error(tr->err, st, "training was stopped");

		if (tr->opts.patience > 0 && tr->val.n > 0 &&
			since_best >= tr->opts.patience)
			break;
		if (tr->ema_params && epoch < tr->opts.epochs)
			memcpy(m->params_memory, tr->live_params, m->num_params * sizeof(float));
	}

	/* Keras's EarlyStopping(restore_best_weights=True) */
	if (have_best)
		memcpy(m->params_memory, tr->best_params, m->num_params * sizeof(float));
	return TC_OK;
}

/* Free everything the trainer holds except the model. */
static void
trainer_cleanup(Trainer *tr)
{
	const TcAllocator *a = tr->a;

	for (int i = 0; i < tr->labels.n; i++)
		tc_free(a, tr->labels.names[i]);
	tc_free(a, tr->labels.names);
	tc_free(a, tr->labels.lens);
	tc_free(a, tr->labels.slots);
	tc_free(a, tr->rows);
	tc_free(a, tr->ids);
	tc_free(a, tr->train.items);
	tc_free(a, tr->val.items);
	tc_free(a, tr->class_counts);
	tc_free(a, tr->class_w);
	tc_free(a, tr->batch_ids);
	tc_free(a, tr->seqs);
	tc_free(a, tr->lens);
	tc_free(a, tr->targets);
	tc_free(a, tr->weights);
	tc_free(a, tr->probs);
	tc_free(a, tr->best_params);
	tc_free(a, tr->ema_params);
	tc_free(a, tr->live_params);
	if (tr->vocab)
		tc_vocab_free(tr->vocab);
}

/* A copy of a finalized vocabulary (for a warm start). */
static TcVocab *
copy_vocab(const TcAllocator *a, const TcModel *from, TcError *err)
{
	int32_t		first = from->cfg.use_oov ? 2 : 1;
	int32_t		limit = tc_vocab_id_limit(from->vocab);
	size_t		n = limit > first ? (size_t) (limit - first) : 0;
	const char **words = tc_alloc_array(a, n ? n : 1, sizeof(char *));
	size_t	   *lens = tc_alloc_array(a, n ? n : 1, sizeof(size_t));
	TcVocab    *v = NULL;

	if (words && lens)
	{
		for (size_t i = 0; i < n; i++)
			words[i] = tc_vocab_word(from->vocab, first + (int32_t) i, &lens[i]);
		v = tc_vocab_from_words(a, (const char *const *) words, lens, n,
								from->cfg.vocab_size, from->cfg.use_oov, err);
	}
	else
		tc_error(err, TC_ERR_NOMEM, "out of memory");
	tc_free(a, words);
	tc_free(a, lens);
	return v;
}

/* Allocate the per-batch buffers. */
static TcStatus
alloc_buffers(Trainer *tr)
{
	int			B = tr->opts.batch_size;
	int			K = tr->labels.n;

	tr->batch_ids = tc_alloc_array(tr->a, tc_mul_size(B, tr->cfg.max_len),
								   sizeof(int32_t));
	tr->seqs = tc_alloc_array(tr->a, B, sizeof(int32_t *));
	tr->lens = tc_alloc_array(tr->a, B, sizeof(int));
	tr->targets = tc_alloc_array(tr->a, B, sizeof(int32_t));
	tr->weights = tc_alloc_array(tr->a, B, sizeof(float));
	tr->probs = tc_alloc_array(tr->a, tc_mul_size(B, K), sizeof(float));
	if (!tr->batch_ids || !tr->seqs || !tr->lens || !tr->targets ||
		!tr->weights || !tr->probs)
		return tc_error(tr->err, TC_ERR_NOMEM, "out of memory for a batch");
	return TC_OK;
}

/* Train a model; see trainer.h. */
TcStatus
tc_train(const TcAllocator *a, const TcConfig *cfg,
		 const TcTrainOptions *opts, const char *const *labels, int nlabels,
		 TcRowSource *src, TcSpill *spill, const TcTrainCallbacks *cb,
		 TcModel **out, TcTrainResult *result, TcError *err)
{
	Trainer		tr;
	TcStatus	st;

	*out = NULL;
	memset(result, 0, sizeof(*result));
	memset(&tr, 0, sizeof(tr));
	tr.a = a;
	tr.cfg = *cfg;
	tr.opts = *opts;
	tr.src = src;
	tr.spill = spill;
	tr.cb = cb;
	tr.err = err;

	if ((st = check_options(opts, err)) != TC_OK)
		return st;
	if (opts->warm_start)
	{
		const TcConfig *wc = &opts->warm_start->cfg;
		float		threshold = tr.cfg.threshold;

		if (labels == NULL || nlabels != wc->num_classes)
			return tc_error(err, TC_ERR_INVALID_ARG,
							"a warm start needs the label set of its model");
		tr.cfg = *wc;
		tr.cfg.threshold = threshold;
	}
	tr.cfg.num_classes = 2;		/* validated for real once labels are known */
	if ((st = tc_config_validate(&tr.cfg, err)) != TC_OK)
		return st;
	tc_blas_set_threads(opts->threads);

	tr.rows = tc_alloc_array(a, TC_ROWS_PER_FETCH, sizeof(TcRow));
	tr.ids = tc_alloc_array(a, tr.cfg.max_len, sizeof(int32_t));
	tr.vocab = tc_vocab_create(a, err);
	if (!tr.rows || !tr.ids || !tr.vocab)
	{
		st = tr.vocab ? tc_error(err, TC_ERR_NOMEM, "out of memory") : err->status;
		goto done;
	}

	/* a given label set, in the caller's order */
	for (int i = 0; labels && i < nlabels; i++)
		if ((st = labels_add(&tr, labels[i], strlen(labels[i]))) != TC_OK)
			goto done;

	if (opts->warm_start)
	{
		/* the vocabulary of the model we start from; no counting pass */
		tc_vocab_free(tr.vocab);
		tr.vocab = copy_vocab(a, opts->warm_start, err);
		if (tr.vocab == NULL)
		{
			st = err->status;
			goto done;
		}
	}
	else if ((st = pass_count(&tr, labels == NULL)) != TC_OK)
		goto done;
	if (labels == NULL)
		labels_sort(&tr.labels);
	if (tr.labels.n < 2)
	{
		st = tc_error(err, TC_ERR_CLASSES,
					  "training data has %d distinct label%s, at least 2 are needed",
					  tr.labels.n, tr.labels.n == 1 ? "" : "s");
		tc_error_hint(err, "A classifier needs rows of at least two classes.");
		goto done;
	}
	tr.cfg.num_classes = tr.labels.n;
	if (!opts->warm_start &&
		(st = tc_vocab_finalize(tr.vocab, tr.cfg.vocab_size, tr.cfg.use_oov,
								err)) != TC_OK)
		goto done;
	tr.class_counts = tc_alloc_array(a, tr.labels.n, sizeof(long));
	if (tr.class_counts == NULL)
	{
		st = tc_error(err, TC_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((st = pass_spill(&tr)) != TC_OK)
		goto done;
	if (tr.train.n == 0)
	{
		st = tc_error(err, TC_ERR_NO_DATA, "no rows to train on");
		if (tr.val.n > 0)
			tc_error_hint(err, "Lower \"validation_fraction\" or add rows.");
		goto done;
	}
	result->rows_train = (long) tr.train.n;
	result->rows_val = (long) tr.val.n;
	result->rows_skipped = tr.skipped;

	tr.model = tc_model_create(a, &tr.cfg, (const char *const *) tr.labels.names, err);
	if (tr.model == NULL)
	{
		st = err->status;
		goto done;
	}
	tr.model->vocab = tr.vocab;
	tr.vocab = NULL;			/* the model owns it now */
	tc_model_init(tr.model, opts->seed);
	if (opts->warm_start)
	{
		if (opts->warm_start->num_params != tr.model->num_params)
		{
			st = tc_error(err, TC_ERR_INVALID_ARG,
						  "the warm-start model's shape does not match");
			goto done;
		}
		memcpy(tr.model->params_memory, opts->warm_start->params_memory,
			   tr.model->num_params * sizeof(float));
	}
	if ((st = tc_model_train_prepare(tr.model, opts->batch_size,
									 tr.cfg.max_len, err)) != TC_OK)
		goto done;
	if ((st = alloc_buffers(&tr)) != TC_OK)
		goto done;
	if ((st = setup_class_weights(&tr)) != TC_OK)
		goto done;
	st = run_epochs(&tr, result);
	tr.model->dropout = 0.0f;	/* a training setting, not the model's */
	if (st == TC_OK && tr.val.n > 0)
		st = validation_metrics(&tr, &result->val_metrics);

done:
	trainer_cleanup(&tr);
	if (st != TC_OK)
	{
		if (tr.model)
			tc_model_free(tr.model);
		if (result->val_metrics.confusion)
			tc_metrics_free(&result->val_metrics);
		return st;
	}
	*out = tr.model;
	return TC_OK;
}

/* ---- a spill store in memory ---- */

struct TcMemSpill
{
	const TcAllocator *a;
	unsigned char **chunks;		/* (nchunks) of TC_MEM_SPILL_CHUNK bytes */
	size_t		nchunks;
	size_t		cap;
	uint64_t	size;			/* bytes written */
};

#define TC_MEM_SPILL_CHUNK ((size_t) 1 << 20)

/* Create an empty in-memory spill store. */
TcMemSpill *
tc_mem_spill_create(const TcAllocator *a)
{
	TcMemSpill *s = tc_alloc0(a, sizeof(TcMemSpill));

	if (s)
		s->a = a;
	return s;
}

/* Free the store and its chunks. */
void
tc_mem_spill_free(TcMemSpill *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nchunks; i++)
		tc_free(s->a, s->chunks[i]);
	tc_free(s->a, s->chunks);
	tc_free(s->a, s);
}

/* Append bytes, adding 1 MB chunks as needed. */
static TcStatus
mem_spill_write(void *ctx, const void *buf, size_t n, uint64_t *offset,
				TcError *err)
{
	TcMemSpill *s = ctx;
	const unsigned char *p = buf;

	*offset = s->size;
	while (n > 0)
	{
		size_t		in_chunk = (size_t) (s->size % TC_MEM_SPILL_CHUNK);
		size_t		take = TC_MEM_SPILL_CHUNK - in_chunk;

		if (in_chunk == 0 && s->size / TC_MEM_SPILL_CHUNK == s->nchunks)
		{
			if (s->nchunks == s->cap)
			{
				size_t		ncap = s->cap ? s->cap * 2 : 16;
				unsigned char **c = tc_alloc_array(s->a, ncap, sizeof(*c));

				if (c == NULL)
					return tc_error(err, TC_ERR_NOMEM, "out of memory for the spill store");
				if (s->nchunks)
					memcpy(c, s->chunks, s->nchunks * sizeof(*c));
				tc_free(s->a, s->chunks);
				s->chunks = c;
				s->cap = ncap;
			}
			s->chunks[s->nchunks] = tc_alloc(s->a, TC_MEM_SPILL_CHUNK);
			if (s->chunks[s->nchunks] == NULL)
				return tc_error(err, TC_ERR_NOMEM, "out of memory for the spill store");
			s->nchunks++;
		}
		if (take > n)
			take = n;
		memcpy(s->chunks[s->size / TC_MEM_SPILL_CHUNK] + in_chunk, p, take);
		p += take;
		n -= take;
		s->size += take;
	}
	return TC_OK;
}

/* Read bytes back. */
static TcStatus
mem_spill_read(void *ctx, uint64_t offset, void *buf, size_t n, TcError *err)
{
	TcMemSpill *s = ctx;
	unsigned char *p = buf;

	if (offset > s->size || n > s->size - offset)
		return tc_error(err, TC_ERR_IO, "read past the end of the spill store");
	while (n > 0)
	{
		size_t		in_chunk = (size_t) (offset % TC_MEM_SPILL_CHUNK);
		size_t		take = TC_MEM_SPILL_CHUNK - in_chunk;

		if (take > n)
			take = n;
		memcpy(p, s->chunks[offset / TC_MEM_SPILL_CHUNK] + in_chunk, take);
		p += take;
		n -= take;
		offset += take;
	}
	return TC_OK;
}

/* Point a TcSpill interface at s. */
void
tc_mem_spill_bind(TcMemSpill *s, TcSpill *spill)
{
	spill->ctx = s;
	spill->write = mem_spill_write;
	spill->read = mem_spill_read;
}
