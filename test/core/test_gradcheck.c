/*
 * test_gradcheck.c
 *	  Finite-difference gradient checks of every layer, the loss and the
 *	  whole model (tc_model_batch) on small random shapes.
 *
 * Each layer is reduced to a scalar with the "loss = sum(out * dout)" trick
 * (llm.c doc/layernorm): dout is random, fixed, and the analytic gradient
 * of that scalar is exactly the layer's backward applied to dout.  The
 * scalar is accumulated in double; the layers themselves compute in float,
 * so the central difference uses eps = 1e-2 (the perturbation actually
 * applied, after rounding to float, is what divides the difference), which
 * keeps truncation error (~eps^2) and float round-off (~1e-7 / eps) both
 * near 1e-5.  An entry passes when
 *	 |analytic - numeric| <= GC_ATOL + GC_RTOL * max(|analytic|, |numeric|)
 * with GC_RTOL = 1e-2 and GC_ATOL = 1e-5.  A wrong gate, transpose or
 * sign gives errors of order one, far above that.
 *
 * Shapes: B = 3 with lengths {5, 3, 0} (an empty sequence), E = 4, H = 3,
 * V = 7, and K = 1 (sigmoid) and K = 3 (softmax); plus a batch with tied
 * lengths and the whole model on an unsorted batch {3, 0, 5}.
 *
 * Memory: malloc through tc_test_alloc / plain malloc, freed at the end.
 */
#include "tc_test.h"
#include "textclf/model.h"

#define GC_EPS	1e-2
#define GC_RTOL 1e-2
#define GC_ATOL 1e-5

typedef double (*GcLossFn) (void *ctx);

/* Random floats (n) uniform in [-scale, scale). */
static void
fill_rand(TcRng *r, float *p, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (2.0f * tc_rng_uniform(r) - 1.0f) * scale;
}

/* sum(a (n) * b (n)) in double. */
static double
dot(const float *a, const float *b, size_t n)
{
	double		s = 0.0;

	for (size_t i = 0; i < n; i++)
		s += (double) a[i] * (double) b[i];
	return s;
}

/*
 * Compare grad (n) with central differences of f over param (n), for all
 * entries (or every entry listed in idx, nidx of them); one tc_check.
 */
static void
gc_check(const char *name, float *param, const float *grad, size_t n,
		 const size_t *idx, size_t nidx, GcLossFn f, void *ctx)
{
	size_t		count = idx ? nidx : n;
	double		worst = -1.0;
	size_t		worst_i = 0;
	double		worst_a = 0.0;
	double		worst_n = 0.0;
	int			ok = 1;

	for (size_t c = 0; c < count; c++)
	{
		size_t		i = idx ? idx[c] : c;
		float		save = param[i];
		float		plus = save + (float) GC_EPS;
		float		minus = save - (float) GC_EPS;
		double		lp;
		double		lm;
		double		num;
		double		an = grad[i];
		double		err;
		double		tol;

		param[i] = plus;
		lp = f(ctx);
		param[i] = minus;
		lm = f(ctx);
		param[i] = save;
		num = (lp - lm) / ((double) plus - (double) minus);
		err = fabs(an - num);
		tol = GC_ATOL + GC_RTOL * fmax(fabs(an), fabs(num));
		if (!(err <= tol))
			ok = 0;
		if (err / tol > worst || isnan(err))
		{
			worst = isnan(err) ? INFINITY : err / tol;
			worst_i = i;
			worst_a = an;
			worst_n = num;
		}
	}
	tc_check(ok, "gradcheck %s (%zu entries; worst [%zu] analytic %.6g numeric %.6g, %.2f of tolerance)",
			 name, count, worst_i, worst_a, worst_n, worst);
}

/* ---- embedding ---- */

typedef struct EmbCtx
{
	int			N, E, V;
	int32_t    *tokens;
	float	   *emb, *out, *dout;
} EmbCtx;

/* sum(out * dout) of the embedding forward */
static double
emb_loss(void *p)
{
	EmbCtx	   *c = p;

	tc_embedding_forward(c->out, c->tokens, c->emb, c->N, c->E);
	return dot(c->out, c->dout, (size_t) c->N * c->E);
}

/* Embedding: scatter-add gradient, repeated tokens included. */
static void
test_embedding(TcRng *r)
{
	EmbCtx		c;
	int32_t		tokens[8] = {3, 1, 3, 0, 6, 3, 1, 5};
	float	   *demb;

	c.N = 8;
	c.E = 4;
	c.V = 7;
	c.tokens = tokens;
	c.emb = malloc(sizeof(float) * c.V * c.E);
	c.out = malloc(sizeof(float) * c.N * c.E);
	c.dout = malloc(sizeof(float) * c.N * c.E);
	demb = calloc((size_t) c.V * c.E, sizeof(float));
	fill_rand(r, c.emb, (size_t) c.V * c.E, 1.0f);
	fill_rand(r, c.dout, (size_t) c.N * c.E, 1.0f);
	tc_embedding_forward(c.out, tokens, c.emb, c.N, c.E);
	tc_embedding_backward(demb, c.dout, tokens, c.N, c.E);
	gc_check("embedding demb", c.emb, demb, (size_t) c.V * c.E, NULL, 0,
			 emb_loss, &c);
	free(c.emb);
	free(c.out);
	free(c.dout);
	free(demb);
}

/* ---- LSTM ---- */

typedef struct LstmCtx
{
	TcPack		pack;
	int			bs[16], off[17];
	int			E, H;
	float	   *x, *Wx, *Wh, *b;
	float	   *hlast, *gates, *cs, *hs, *dh;
} LstmCtx;

/* sum(hlast * dh) of the LSTM forward */
static double
lstm_loss(void *p)
{
	LstmCtx    *c = p;

	tc_lstm_forward(c->hlast, c->gates, c->cs, c->hs, c->x, c->Wx, c->Wh,
					c->b, &c->pack, c->E, c->H);
	return dot(c->hlast, c->dh, (size_t) c->pack.B * c->H);
}

/* LSTM over a packed batch with the given (non-increasing) lengths. */
static void
test_lstm(TcRng *r, const char *tag, int B, const int *lens, int E, int H)
{
	LstmCtx		c;
	int			G = 4 * H;
	int			N;
	float	   *dx, *dWx, *dWh, *db, *work, *dWx2;
	char		name[128];

	memset(&c, 0, sizeof(c));
	tc_pack_init(&c.pack, B, lens, c.bs, c.off);
	N = c.pack.N;
	c.E = E;
	c.H = H;
	c.x = malloc(sizeof(float) * N * E);
	c.Wx = malloc(sizeof(float) * E * G);
	c.Wh = malloc(sizeof(float) * H * G);
	c.b = malloc(sizeof(float) * G);
	c.hlast = malloc(sizeof(float) * B * H);
	c.gates = malloc(sizeof(float) * N * G);
	c.cs = malloc(sizeof(float) * N * H);
	c.hs = malloc(sizeof(float) * N * H);
	c.dh = malloc(sizeof(float) * B * H);
	dx = malloc(sizeof(float) * N * E);
	dWx = calloc((size_t) E * G, sizeof(float));
	dWx2 = calloc((size_t) E * G, sizeof(float));
	dWh = calloc((size_t) H * G, sizeof(float));
	db = calloc((size_t) G, sizeof(float));
	work = malloc(sizeof(float) * tc_lstm_work_floats(N, B, H));
	fill_rand(r, c.x, (size_t) N * E, 1.0f);
	fill_rand(r, c.Wx, (size_t) E * G, 0.7f);
	fill_rand(r, c.Wh, (size_t) H * G, 0.7f);
	fill_rand(r, c.b, (size_t) G, 0.5f);
	fill_rand(r, c.dh, (size_t) B * H, 1.0f);

	lstm_loss(&c);
	tc_lstm_backward(dx, dWx, dWh, db, c.dh, c.gates, c.cs, c.hs, c.x,
					 c.Wx, c.Wh, &c.pack, E, H, work);
	snprintf(name, sizeof(name), "lstm %s dx", tag);
	gc_check(name, c.x, dx, (size_t) N * E, NULL, 0, lstm_loss, &c);
	snprintf(name, sizeof(name), "lstm %s dWx", tag);
	gc_check(name, c.Wx, dWx, (size_t) E * G, NULL, 0, lstm_loss, &c);
	snprintf(name, sizeof(name), "lstm %s dWh", tag);
	gc_check(name, c.Wh, dWh, (size_t) H * G, NULL, 0, lstm_loss, &c);
	snprintf(name, sizeof(name), "lstm %s db", tag);
	gc_check(name, c.b, db, (size_t) G, NULL, 0, lstm_loss, &c);

	/* empty sequences end with a zero state */
	for (int s = 0; s < B; s++)
		if (lens[s] == 0)
		{
			int			zero = 1;

			for (int j = 0; j < H; j++)
				zero &= c.hlast[(size_t) s * H + j] == 0.0f;
			tc_check(zero, "lstm %s: empty sequence %d has zero hlast", tag, s);
		}

	/* backward accumulates into parameter grads and accepts dx == NULL */
	lstm_loss(&c);
	memcpy(dWx2, dWx, sizeof(float) * E * G);
	tc_lstm_backward(NULL, dWx2, dWh, db, c.dh, c.gates, c.cs, c.hs, c.x,
					 c.Wx, c.Wh, &c.pack, E, H, work);
	for (int i = 0; i < E * G; i++)
		dWx[i] *= 2.0f;
	snprintf(name, sizeof(name), "lstm %s: backward adds into dWx (twice = 2x)", tag);
	tc_check_tensor(name, dWx2, dWx, (size_t) E * G, 1e-6, 1e-5);

	free(c.x);
	free(c.Wx);
	free(c.Wh);
	free(c.b);
	free(c.hlast);
	free(c.gates);
	free(c.cs);
	free(c.hs);
	free(c.dh);
	free(dx);
	free(dWx);
	free(dWx2);
	free(dWh);
	free(db);
	free(work);
}

/* ---- dense ---- */

typedef struct DenseCtx
{
	int			B, H, K;
	float	   *in, *W, *b, *out, *dout;
} DenseCtx;

/* sum(out * dout) of the dense forward */
static double
dense_loss(void *p)
{
	DenseCtx   *c = p;

	tc_dense_forward(c->out, c->in, c->W, c->b, c->B, c->H, c->K);
	return dot(c->out, c->dout, (size_t) c->B * c->K);
}

/* Dense layer: din, dW, db. */
static void
test_dense(TcRng *r, int K)
{
	DenseCtx	c;
	float	   *din, *dW, *db;
	char		name[64];

	c.B = 3;
	c.H = 4;
	c.K = K;
	c.in = malloc(sizeof(float) * c.B * c.H);
	c.W = malloc(sizeof(float) * c.H * K);
	c.b = malloc(sizeof(float) * K);
	c.out = malloc(sizeof(float) * c.B * K);
	c.dout = malloc(sizeof(float) * c.B * K);
	din = malloc(sizeof(float) * c.B * c.H);
	dW = calloc((size_t) c.H * K, sizeof(float));
	db = calloc((size_t) K, sizeof(float));
	fill_rand(r, c.in, (size_t) c.B * c.H, 1.0f);
	fill_rand(r, c.W, (size_t) c.H * K, 1.0f);
	fill_rand(r, c.b, (size_t) K, 1.0f);
	fill_rand(r, c.dout, (size_t) c.B * K, 1.0f);
	dense_loss(&c);
	tc_dense_backward(din, dW, db, c.dout, c.in, c.W, c.B, c.H, K);
	snprintf(name, sizeof(name), "dense K=%d din", K);
	gc_check(name, c.in, din, (size_t) c.B * c.H, NULL, 0, dense_loss, &c);
	snprintf(name, sizeof(name), "dense K=%d dW", K);
	gc_check(name, c.W, dW, (size_t) c.H * K, NULL, 0, dense_loss, &c);
	snprintf(name, sizeof(name), "dense K=%d db", K);
	gc_check(name, c.b, db, (size_t) K, NULL, 0, dense_loss, &c);
	free(c.in);
	free(c.W);
	free(c.b);
	free(c.out);
	free(c.dout);
	free(din);
	free(dW);
	free(db);
}

/* ---- loss ---- */

typedef struct LossCtx
{
	int			B, K;
	float	   *logits;
	const int32_t *targets;
	const float *weights;
} LossCtx;

/* the mean weighted cross-entropy itself */
static double
xent_loss(void *p)
{
	LossCtx    *c = p;

	return tc_xent_forward_backward(NULL, NULL, c->logits, c->targets,
									c->weights, c->B, c->K);
}

/* Loss: dlogits against differences; value against a direct formula. */
static void
test_loss(TcRng *r, int K)
{
	LossCtx		c;
	int32_t		targets[4] = {1, 0, 1, 0};
	float		weights[4] = {1.0f, 0.5f, 2.0f, 1.5f};
	float		logits[4 * 3];
	float		dlogits[4 * 3];
	float		probs[4 * 3];
	double		loss;
	double		ref = 0.0;
	char		name[64];

	if (K == 3)
	{
		targets[1] = 2;
		targets[3] = 1;
	}
	c.B = 4;
	c.K = K;
	c.logits = logits;
	c.targets = targets;
	c.weights = weights;
	fill_rand(r, logits, (size_t) 4 * K, 3.0f);
	loss = tc_xent_forward_backward(probs, dlogits, logits, targets, weights,
									4, K);
	snprintf(name, sizeof(name), "xent K=%d dlogits", K);
	gc_check(name, logits, dlogits, (size_t) 4 * K, NULL, 0, xent_loss, &c);

	for (int b = 0; b < 4; b++)
	{
		if (K == 1)
		{
			double		p = 1.0 / (1.0 + exp(-(double) logits[b]));

			ref += weights[b] * -(targets[b] ? log(p) : log(1.0 - p));
		}
		else
		{
			double		s = 0.0;

			for (int k = 0; k < K; k++)
				s += exp((double) logits[b * K + k]);
			ref += weights[b] * -log(exp((double) logits[b * K + targets[b]]) / s);
		}
	}
	ref /= 4;
	tc_check(fabs(loss - ref) <= 1e-9 + 1e-9 * fabs(ref),
			 "xent K=%d value %.10g matches the direct formula %.10g", K, loss, ref);

	/* extreme logits: finite loss, probabilities in [0, 1] */
	for (int i = 0; i < 4 * K; i++)
		logits[i] = (i % 2) ? 200.0f : -200.0f;
	loss = tc_xent_forward_backward(probs, dlogits, logits, targets, weights,
									4, K);
	{
		int			ok = isfinite(loss);

		for (int i = 0; i < 4 * K; i++)
			ok &= probs[i] >= 0.0f && probs[i] <= 1.0f && isfinite(dlogits[i]);
		tc_check(ok, "xent K=%d stable at logits +-200 (loss %.6g)", K, loss);
	}
}

/* ---- whole model ---- */

typedef struct ModelCtx
{
	TcModel    *m;
	const int32_t *const *seqs;
	const int  *lens;
	const int32_t *targets;
	const float *weights;
	int			B;
	TcRng		mask_rng;		/* with dropout: the stream of every call */
} ModelCtx;

/*
 * tc_model_batch loss; without dropout an inference pass, with dropout a
 * training pass that draws the same mask every time (its gradients are
 * overwritten, the caller keeps its own copy).
 */
static double
model_loss(void *p)
{
	ModelCtx   *c = p;
	double		loss = NAN;
	TcError		err;
	bool		train = c->m->dropout > 0.0f;

	c->m->dropout_rng = c->mask_rng;
	if (tc_model_batch(c->m, c->seqs, c->lens, c->targets, c->weights, c->B,
					   train, &loss, NULL, &err) != TC_OK)
		return NAN;
	return loss;
}

/*
 * Every parameter tensor of a model through tc_model_batch; with dropout
 * > 0, through the training pass with one fixed dropout mask.
 */
static void
test_model(int num_classes, float dropout)
{
	TcConfig	cfg;
	TcError		err;
	TcModel    *m;
	ModelCtx	c;
	int32_t		s0[3] = {2, 5, 1};
	int32_t		s2[5] = {6, 2, 2, 3, 4};
	const int32_t *seqs[3] = {s0, NULL, s2};
	int			lens[3] = {3, 0, 5};
	int32_t		targets[3] = {1, 0, 1};
	float		weights[3] = {1.0f, 0.7f, 1.3f};
	double		loss;
	float	   *grads;
	const char *names[TC_NUM_PARAMS] = {"emb", "Wx", "Wh", "b", "Wd", "bd"};
	size_t		offset = 0;
	TcStatus	st;
	TcRng		r;

	tc_config_default(&cfg);
	cfg.vocab_size = 7;
	cfg.embedding_dim = 4;
	cfg.hidden_size = 3;
	cfg.max_len = 5;
	cfg.num_classes = num_classes;
	if (num_classes == 3)
		targets[1] = 2;
	m = tc_model_create(&tc_test_alloc, &cfg, NULL, &err);
	tc_check(m != NULL, "model (%d classes) created", num_classes);
	if (m == NULL)
		return;
	tc_model_init(m, 42);
	/* larger weights than Keras's init so that every path carries gradient */
	tc_rng_seed(&r, 7);
	fill_rand(&r, m->params_memory, m->num_params, 0.6f);
	st = tc_model_train_prepare(m, 3, 5, &err);
	tc_check(st == TC_OK, "train_prepare");
	m->dropout = dropout;
	tc_rng_seed(&c.mask_rng, 99);
	m->dropout_rng = c.mask_rng;
	st = tc_model_batch(m, seqs, lens, targets, weights, 3, true, &loss, NULL,
						&err);
	tc_check(st == TC_OK && isfinite(loss), "model batch (loss %.6g)", loss);
	grads = malloc(sizeof(float) * m->num_params);
	memcpy(grads, m->grads_memory, sizeof(float) * m->num_params);
	if (dropout > 0.0f)
	{
		int			zeros = 0,
					kept = 0;
		double		eval_loss,
					eval_loss0;

		/* 3 rows x 3 units, each 0 or 1 / (1 - rate) */
		for (int i = 0; i < 3 * 3; i++)
		{
			zeros += m->acts.mask[i] == 0.0f;
			kept += m->acts.mask[i] == 1.0f / (1.0f - dropout);
		}
		tc_check(zeros > 0 && kept > 0 && zeros + kept == 9,
				 "dropout %.2f: mask has %d zeros and %d kept units of 9",
				 dropout, zeros, kept);
		/* inference ignores the dropout setting */
		st = tc_model_batch(m, seqs, lens, targets, weights, 3, false,
							&eval_loss, NULL, &err);
		m->dropout = 0.0f;
		st |= tc_model_batch(m, seqs, lens, targets, weights, 3, false,
							 &eval_loss0, NULL, &err);
		m->dropout = dropout;
		tc_check(st == TC_OK && eval_loss == eval_loss0 && eval_loss != loss,
				 "dropout %.2f: inference loss %.9g == without dropout %.9g, "
				 "training loss %.9g differs", dropout, eval_loss, eval_loss0,
				 loss);
	}

	c.m = m;
	c.seqs = seqs;
	c.lens = lens;
	c.targets = targets;
	c.weights = weights;
	c.B = 3;
	for (int t = 0; t < TC_NUM_PARAMS; t++)
	{
		char		name[64];

		snprintf(name, sizeof(name), "model K=%d dropout %.2f %s", m->K,
				 dropout, names[t]);
		gc_check(name, m->params_memory + offset, grads + offset,
				 m->param_sizes[t], NULL, 0, model_loss, &c);
		offset += m->param_sizes[t];
	}

	/* embedding rows of tokens absent from the batch get no gradient */
	{
		int			ok = 1;

		for (int e = 0; e < 4; e++)
			ok &= m->grads.emb[0 * 4 + e] == 0.0f;
		tc_check(ok, "model K=%d: unused embedding row 0 has zero gradient", m->K);
	}
	free(grads);
	tc_model_free(m);
}

int
main(void)
{
	TcRng		r;
	int			lens_a[3] = {5, 3, 0};
	int			lens_b[4] = {4, 4, 2, 1};
	int			lens_c[2] = {1, 1};

	tc_rng_seed(&r, 12345);
	test_embedding(&r);
	test_lstm(&r, "B=3 {5,3,0}", 3, lens_a, 4, 3);
	test_lstm(&r, "B=4 {4,4,2,1}", 4, lens_b, 2, 5);
	test_lstm(&r, "B=2 {1,1}", 2, lens_c, 3, 2);
	test_dense(&r, 1);
	test_dense(&r, 3);
	test_loss(&r, 1);
	test_loss(&r, 3);
	test_model(2, 0.0f);
	test_model(3, 0.0f);
	test_model(2, 0.5f);
	test_model(3, 0.3f);
	return tc_test_done();
}
