/*
 * test_trainer.c
 *	  The trainer on synthetic data: it learns a separable task, is
 *	  deterministic for a seed, splits validation rows deterministically,
 *	  skips NULL rows, keeps the moving average of the weights without
 *	  changing the training, stops when a callback says so, and refuses data
 *	  with fewer than two classes or no rows.
 */
#include "tc_test.h"
#include "textclf/format.h"
#include "textclf/trainer.h"

typedef struct Synth
{
	int			n;				/* rows */
	int			pos;
	int			classes;
	int			null_every;		/* every k-th row has a NULL label (0 = none) */
	int			noise;			/* percent of rows whose label is shuffled */
	char		text[256];
	char		label[32];
} Synth;

static const char *const words[] = {"red", "green", "blue", "cyan"};

/* Row i: class i % classes; its text contains that class's colour word. */
static void
synth_row(Synth *s, int i, TcRow *r)
{
	int			k = i % s->classes;
	unsigned	h = (unsigned) i * 2654435761u;
	int			lk = ((h >> 3) % 100 < (unsigned) s->noise) ? (int) ((h >> 12) % s->classes) : k;

	snprintf(s->text, sizeof(s->text), "the w%u and %s then w%u, w%u!",
			 h % 50, words[k], (h >> 8) % 50, (h >> 16) % 50);
	snprintf(s->label, sizeof(s->label), "class_%d", lk);
	r->text = s->text;
	r->text_len = strlen(s->text);
	r->label = (s->null_every && i % s->null_every == 0) ? NULL : s->label;
	r->label_len = strlen(s->label);
}

static TcStatus
synth_rewind(void *ctx, TcError *err)
{
	(void) err;
	((Synth *) ctx)->pos = 0;
	return TC_OK;
}

/* One row per call, so that the pointers stay valid. */
static TcStatus
synth_next(void *ctx, TcRow *rows, int max, int *n, TcError *err)
{
	Synth	   *s = ctx;

	(void) err;
	(void) max;
	*n = 0;
	if (s->pos >= s->n)
		return TC_OK;
	synth_row(s, s->pos++, rows);
	*n = 1;
	return TC_OK;
}

static int	epochs_seen;

static TcStatus
count_epoch(void *arg, const TcEpochStats *s)
{
	(void) arg;
	(void) s;
	epochs_seen++;
	return TC_OK;
}

/* per-epoch statistics of the last training that used record_epoch */
static TcEpochStats recorded[16];

static TcStatus
record_epoch(void *arg, const TcEpochStats *s)
{
	(void) arg;
	if (s->epoch >= 1 && s->epoch <= 16)
		recorded[s->epoch - 1] = *s;
	return TC_OK;
}

static TcStatus
stop_at_batch_3(void *arg, const TcBatchStats *s)
{
	(void) arg;
	return s->batch >= 3 ? TC_ERR_CANCELLED : TC_OK;
}

/* Train on synthetic data; returns the status and fills model/result. */
static TcStatus
train_synth(Synth *s, const TcTrainOptions *o, const TcTrainCallbacks *cb,
			TcModel **m, TcTrainResult *res, TcError *err)
{
	TcConfig	cfg;
	TcRowSource src = {s, synth_rewind, synth_next};
	TcMemSpill *ms = tc_mem_spill_create(&tc_test_alloc);
	TcSpill		spill;
	TcStatus	st;

	tc_config_default(&cfg);
	cfg.vocab_size = 100;
	cfg.max_len = 12;
	cfg.embedding_dim = 8;
	cfg.hidden_size = 16;
	tc_mem_spill_bind(ms, &spill);
	st = tc_train(&tc_test_alloc, &cfg, o, NULL, 0, &src, &spill, cb, m, res,
				  err);
	tc_mem_spill_free(ms);
	return st;
}

/* Free the validation metrics a successful training returned. */
static void
free_result(TcTrainResult *res)
{
	if (res->val_metrics.confusion)
		tc_metrics_free(&res->val_metrics);
}

/* Serialize a model into a malloc'd buffer. */
static unsigned char *
blob(const TcModel *m, size_t *size)
{
	TcError		err;
	unsigned char *b;

	*size = tc_model_serialized_size(m);
	b = malloc(*size);
	if (tc_model_serialize(m, b, *size, NULL, &err) != TC_OK)
	{
		free(b);
		return NULL;
	}
	return b;
}

/* Accuracy of m over the synthetic rows. */
static double
synth_accuracy(const TcModel *m, Synth *s)
{
	int32_t		ids[64];
	float		work_probs[16];
	float	   *work = malloc(sizeof(float) * tc_model_infer_work_floats(m));
	int			correct = 0;

	for (int i = 0; i < s->n; i++)
	{
		TcRow		r;
		int			n;

		synth_row(s, i, &r);
		n = tc_text_to_ids(m->vocab, &m->cfg.tok, r.text, r.text_len,
						   m->cfg.max_len, ids);
		tc_model_infer(m, ids, n, work_probs, work);
		if (tc_model_decide(m, work_probs, 0.5f) == i % s->classes)
			correct++;
	}
	free(work);
	return (double) correct / s->n;
}

int
main(void)
{
	TcTrainOptions o;
	TcTrainCallbacks cb = {NULL, NULL, count_epoch, NULL};
	TcTrainResult res,
				res2;
	TcError		err;
	TcModel    *m = NULL,
			   *m2 = NULL;
	Synth		s;
	TcStatus	st;
	size_t		n1,
				n2;
	unsigned char *b1,
			   *b2;

	tc_train_options_default(&o);
	o.epochs = 8;
	o.patience = 0;
	o.batch_size = 16;
	o.adam.lr = 1e-2f;
	o.validation_fraction = 0.2;

	/* two classes: learns, deterministic */
	memset(&s, 0, sizeof(s));
	s.n = 400;
	s.classes = 2;
	epochs_seen = 0;
	st = train_synth(&s, &o, &cb, &m, &res, &err);
	tc_check(st == TC_OK, "binary training succeeds (%s)", st ? err.msg : "ok");
	if (st != TC_OK)
		return tc_test_done();
	tc_check(epochs_seen == 8 && res.epochs_run == 8, "epoch callback runs each epoch");
	tc_check(res.rows_train + res.rows_val == 400 && res.rows_val > 40 &&
			 res.rows_val < 120, "validation split near 20%% (%ld of 400)",
			 res.rows_val);
	tc_check(m->K == 1 && m->cfg.num_classes == 2, "two classes give a sigmoid output");
	tc_check(strcmp(m->labels[0], "class_0") == 0 &&
			 strcmp(m->labels[1], "class_1") == 0, "labels sorted");
	tc_check(res.final.val_accuracy > 0.95, "validation accuracy %.3f > 0.95",
			 res.final.val_accuracy);
	tc_check(synth_accuracy(m, &s) > 0.95, "inference agrees with training");
	{
		TcMetricsSummary ms;

		tc_check(tc_metrics_summarize(&res.val_metrics, &ms, &err) == TC_OK &&
				 ms.rows == res.rows_val &&
				 fabs(ms.accuracy - res.final.val_accuracy) < 1e-12 &&
				 ms.per_class[0].support + ms.per_class[1].support == res.rows_val &&
				 ms.roc_auc > 0.95,
				 "validation metrics of the kept weights (accuracy %.4f, AUC %.4f)",
				 ms.accuracy, ms.roc_auc);
		tc_free(&tc_test_alloc, ms.per_class);
		free_result(&res);
	}

	/* a warm start keeps the vocabulary and weights it starts from */
	{
		TcTrainOptions w = o;
		TcModel    *mw = NULL;
		TcTrainResult rw;
		const char *const labs[2] = {"class_0", "class_1"};
		TcConfig	cfg;
		TcRowSource src = {&s, synth_rewind, synth_next};
		TcMemSpill *ms = tc_mem_spill_create(&tc_test_alloc);
		TcSpill		spill;

		tc_config_default(&cfg);	/* replaced by the warm-start model's */
		tc_mem_spill_bind(ms, &spill);
		w.warm_start = m;
		w.epochs = 1;
		w.adam.lr = 1e-7f;
		st = tc_train(&tc_test_alloc, &cfg, &w, labs, 2, &src, &spill, NULL,
					  &mw, &rw, &err);
		tc_mem_spill_free(ms);
		tc_check(st == TC_OK && mw->cfg.hidden_size == m->cfg.hidden_size &&
				 tc_vocab_size(mw->vocab) == tc_vocab_size(m->vocab) &&
				 synth_accuracy(mw, &s) > 0.95,
				 "warm start keeps vocabulary and weights (%s)", st ? err.msg : "ok");
		if (st == TC_OK)
		{
			free_result(&rw);
			tc_model_free(mw);
		}
		w.adam.lr = 1e-2f;
		st = tc_train(&tc_test_alloc, &cfg, &w, NULL, 0, &src, &spill, NULL,
					  &mw, &rw, &err);
		tc_check(st == TC_ERR_INVALID_ARG, "warm start without its labels is refused");
	}

	st = train_synth(&s, &o, NULL, &m2, &res2, &err);
	free_result(&res2);
	b1 = blob(m, &n1);
	b2 = blob(m2, &n2);
	tc_check(st == TC_OK && b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0,
			 "same data and seed give a bit-identical model");
	tc_check(res.rows_val == res2.rows_val &&
			 res.final.loss == res2.final.loss, "same seed, same split and loss");
	free(b2);
	tc_model_free(m2);
	o.seed = 7;
	st = train_synth(&s, &o, NULL, &m2, &res2, &err);
	free_result(&res2);
	b2 = blob(m2, &n2);
	tc_check(st == TC_OK && b2 && (n1 != n2 || memcmp(b1, b2, n1) != 0),
			 "another seed gives another model");
	free(b1);
	free(b2);
	tc_model_free(m2);
	tc_model_free(m);
	o.seed = 42;

	/*
	 * The moving average of the weights is what is validated and kept;
	 * training goes on from the live weights, so the training losses are
	 * those of a run without it, bit for bit.
	 */
	{
		TcTrainOptions e = o;
		TcTrainCallbacks rc = {NULL, NULL, record_epoch, NULL};
		TcEpochStats plain[8];
		bool		same_loss = true;
		bool		val_differs = false;

		e.epochs = 6;
		e.ema_momentum = 0.0f;
		st = train_synth(&s, &e, &rc, &m, &res, &err);
		tc_check(st == TC_OK, "training without ema_momentum succeeds (%s)",
				 st ? err.msg : "ok");
		if (st != TC_OK)
			return tc_test_done();
		free_result(&res);
		memcpy(plain, recorded, sizeof(plain));
		b1 = blob(m, &n1);
		tc_model_free(m);
		e.ema_momentum = 0.9f;
		st = train_synth(&s, &e, &rc, &m, &res, &err);
		free_result(&res);
		tc_check(st == TC_OK, "training with ema_momentum succeeds (%s)",
				 st ? err.msg : "ok");
		if (st == TC_OK)
		{
			for (int i = 0; i < 6; i++)
			{
				same_loss &= recorded[i].loss == plain[i].loss;
				val_differs |= recorded[i].val_loss != plain[i].val_loss;
			}
			tc_check(same_loss, "ema_momentum leaves the training losses as they were "
					 "(epoch 6: %.9g and %.9g)", recorded[5].loss, plain[5].loss);
			tc_check(val_differs, "the average is what is validated (epoch 1: %.9g, "
					 "without %.9g)", recorded[0].val_loss, plain[0].val_loss);
			b2 = blob(m, &n2);
			tc_check(b1 && b2 && (n1 != n2 || memcmp(b1, b2, n1) != 0) &&
					 synth_accuracy(m, &s) > 0.95,
					 "the average is kept, and it has learned (accuracy %.3f)",
					 synth_accuracy(m, &s));
			free(b2);
			tc_model_free(m);
		}
		free(b1);

		/*
		 * A short training keeps an average of its recent weights: after
		 * two epochs (42 steps) its validation loss is near that of the last
		 * weights.  A plain 0.99 average would still hold two thirds of the
		 * initial weights.
		 */
		e.epochs = 2;
		e.ema_momentum = 0.0f;
		st = train_synth(&s, &e, NULL, &m, &res, &err);
		free_result(&res);
		if (st == TC_OK)
		{
			double		plain_loss = res.final.val_loss;

			tc_model_free(m);
			e.ema_momentum = 0.99f;
			st = train_synth(&s, &e, NULL, &m, &res, &err);
			free_result(&res);
			tc_check(st == TC_OK && res.final.val_loss < 2.0 * plain_loss,
					 "two epochs: validation loss of the average %.4f, of the last "
					 "weights %.4f", res.final.val_loss, plain_loss);
			if (st == TC_OK)
				tc_model_free(m);
		}
		else
			tc_check(false, "two epochs train (%s)", err.msg);

		e.ema_momentum = 1.0f;
		st = train_synth(&s, &e, NULL, &m, &res, &err);
		tc_check(st == TC_ERR_INVALID_ARG && strstr(err.msg, "ema_momentum"),
				 "ema_momentum 1 is refused: %s", err.msg);
		e.ema_momentum = -0.1f;
		st = train_synth(&s, &e, NULL, &m, &res, &err);
		tc_check(st == TC_ERR_INVALID_ARG, "ema_momentum -0.1 is refused");
	}

	/* four classes, softmax */
	s.classes = 4;
	st = train_synth(&s, &o, NULL, &m, &res, &err);
	free_result(&res);
	tc_check(st == TC_OK && m->K == 4, "four classes give a softmax output");
	if (st == TC_OK)
	{
		tc_check(synth_accuracy(m, &s) > 0.9, "four-class accuracy %.3f > 0.9",
				 synth_accuracy(m, &s));
		tc_model_free(m);
	}

	/* NULL labels are skipped and counted */
	s.classes = 2;
	s.null_every = 10;
	st = train_synth(&s, &o, NULL, &m, &res, &err);
	free_result(&res);
	tc_check(st == TC_OK && res.rows_skipped == 40 &&
			 res.rows_train + res.rows_val == 360, "NULL labels skipped (%ld)",
			 res.rows_skipped);
	if (st == TC_OK)
		tc_model_free(m);
	s.null_every = 0;

	/* early stopping keeps the best epoch (noisy labels make it overfit) */
	s.noise = 40;
	o.patience = 1;
	o.epochs = 50;
	o.adam.lr = 5e-2f;
	st = train_synth(&s, &o, NULL, &m, &res, &err);
	free_result(&res);
	tc_check(st == TC_OK && res.epochs_run < 50 &&
			 res.best_epoch == res.epochs_run - 1,
			 "early stopping (ran %d, best %d)", res.epochs_run, res.best_epoch);
	if (st == TC_OK)
		tc_model_free(m);
	s.noise = 0;
	o.patience = 0;
	o.epochs = 3;
	o.adam.lr = 1e-2f;

	/* a callback stops training */
	cb.on_batch = stop_at_batch_3;
	st = train_synth(&s, &o, &cb, &m, &res, &err);
	tc_check(st == TC_ERR_CANCELLED && m == NULL, "a callback stops training");
	cb.on_batch = NULL;

	/* a NaN loss is a clean error with a hint, and no model */
	o.debug_nan_batch = 5;
	st = train_synth(&s, &o, NULL, &m, &res, &err);
	tc_check(st == TC_ERR_DATA && m == NULL && strstr(err.msg, "NaN") &&
			 strstr(err.hint, "learning rate"), "NaN loss: %s", err.msg);
	o.debug_nan_batch = 0;

	/* one class only */
	s.classes = 1;
	st = train_synth(&s, &o, NULL, &m, &res, &err);
	tc_check(st == TC_ERR_CLASSES && err.hint[0] != '\0',
			 "one class is refused: %s", err.msg);

	/* no rows */
	s.classes = 2;
	s.n = 0;
	st = train_synth(&s, &o, NULL, &m, &res, &err);
	tc_check(st == TC_ERR_CLASSES || st == TC_ERR_NO_DATA,
			 "an empty source is refused: %s", err.msg);

	/* bad options */
	s.n = 100;
	o.batch_size = 0;
	st = train_synth(&s, &o, NULL, &m, &res, &err);
	tc_check(st == TC_ERR_INVALID_ARG && strstr(err.msg, "batch_size"),
			 "batch_size 0 is refused: %s", err.msg);
	o.batch_size = 16;
	o.validation_fraction = 1.0;
	st = train_synth(&s, &o, NULL, &m, &res, &err);
	tc_check(st == TC_ERR_INVALID_ARG, "validation_fraction 1 is refused");

	return tc_test_done();
}
