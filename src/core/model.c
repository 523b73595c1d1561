/*
 * model.c
 *	  The model: configuration defaults and checks, the parameter block and
 *	  its Keras-style initialisation, the training blocks (gradients, Adam
 *	  moments, activations), one forward/backward step over a packed batch,
 *	  single-sequence inference, and the deterministic random generator.
 *
 * Layout (llm.c style): the six parameter tensors emb (V,E), Wx (E,G),
 * Wh (H,G), b (G), Wd (H,K), bd (K) live in ONE block, in that order;
 * gradients and the Adam moments m, v are blocks with the same layout, so
 * Adam and the gradient norm are flat loops.  Activations are one block
 * sized for (maxB, maxT) tokens, laid out by tc_model_train_prepare.
 *
 * Not here: tokenizing (tokenizer.c), serialisation (format.c), the
 * epoch loop, shuffling and clipping policy (trainer.c), the Adam
 * arithmetic (adam.c).  Nothing here prints, aborts or talks to
 * PostgreSQL.
 *
 * Memory: every block comes from the allocator given to tc_model_create
 * (copied into the model) and is owned by the model until tc_model_free,
 * which also frees the vocabulary.  The label array and its strings are
 * one allocation.  Gradients, moments and activations exist only after
 * tc_model_train_prepare; the inference tables (TcInfer, one block) only
 * after tc_model_prepare_infer; tc_model_infer allocates nothing.
 *
 * Fast paths (kernels.h): tc_model_batch packs Wh once per batch into the
 * activation block and runs the LSTM through tc_lstm_forward_fast /
 * backward_fast on tc_kernels_threads() threads, which also share the
 * zeroing and scatter of the embedding gradient (by ranges of token ids,
 * so the bits do not depend on the thread count); tc_model_infer uses the
 * AVX2 step kernel when the inference tables exist.  Both fall back to
 * the reference loops without AVX2/FMA or when forced.
 */
#include <math.h>
#include <string.h>

#include "textclf/kernels.h"
#include "textclf/model.h"

/* ---------------------------------------------------------------------
 * Random numbers: xoshiro256** (Blackman & Vigna, 2018) seeded through
 * splitmix64, so a seed gives the same stream on every platform.
 * ---------------------------------------------------------------------
 */

/* splitmix64 finaliser: a bijective 64-bit mix. */
uint64_t
tc_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

/* Seed the four state words from consecutive splitmix64 outputs. */
void
tc_rng_seed(TcRng *r, uint64_t seed)
{
	uint64_t	z = seed;

	for (int i = 0; i < 4; i++)
	{
		z += UINT64_C(0x9e3779b97f4a7c15);
		r->s[i] = tc_mix64(z);
	}
}

/* Rotate left. */
static inline uint64_t
tc_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Next 64 random bits (xoshiro256**). */
uint64_t
tc_rng_next(TcRng *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = tc_rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = tc_rotl(s[3], 45);
	return result;
}

/* Uniform float in [0, 1) from the top 24 bits. */
float
tc_rng_uniform(TcRng *r)
{
	return (float) (tc_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n), unbiased by rejection; 0 when n is 0. */
uint64_t
tc_rng_below(TcRng *r, uint64_t n)
{
	uint64_t	limit;
	uint64_t	x;

	if (n == 0)
		return 0;
	/* reject the lowest (2^64 mod n) values so every residue is equally likely */
	limit = (0 - n) % n;
	do
		x = tc_rng_next(r);
	while (x < limit);
	return x % n;
}

/* Standard normal deviate (Box-Muller on two 53-bit uniforms, in double). */
double
tc_rng_normal(TcRng *r)
{
	/* u1 in (0, 1] so that log(u1) is finite */
	double		u1 = ((double) (tc_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
	double		u2 = (double) (tc_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);

	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}

/* ---------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------
 */

/* The reference model: Keras Tokenizer(10000), maxlen 100, Embedding 16, LSTM 128. */
void
tc_config_default(TcConfig *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vocab_size = 10000;
	cfg->max_len = 100;
	cfg->embedding_dim = 16;
	cfg->hidden_size = 128;
	cfg->num_classes = 0;		/* filled in from the data */
	cfg->tok.mode = TC_TOK_WORD;
	cfg->tok.lowercase = true;
	cfg->use_oov = false;
	cfg->threshold = 0.5f;
}

/* Check one integer option against [lo, hi]. */
static TcStatus
tc_check_range(const char *name, int32_t value, int32_t lo, int32_t hi,
			   TcStatus status, TcError *err)
{
	if (value < lo || value > hi)
		return tc_error(err, status, "\"%s\" must be between %d and %d",
						name, (int) lo, (int) hi);
	return TC_OK;
}

/*
 * Check every field of cfg.  num_classes may be 0 (not known yet: the
 * trainer fills it in from the data); otherwise it must lie in
 * [2, TC_MAX_CLASSES].
 */
TcStatus
tc_config_validate(const TcConfig *cfg, TcError *err)
{
	TcStatus	st;
	int32_t		min_vocab = cfg->use_oov ? 3 : 2;

	if ((st = tc_check_range("vocab_size", cfg->vocab_size, min_vocab,
							 TC_MAX_VOCAB, TC_ERR_INVALID_ARG, err)) != TC_OK)
		return st;
	if ((st = tc_check_range("max_len", cfg->max_len, 1, TC_MAX_MAX_LEN,
							 TC_ERR_INVALID_ARG, err)) != TC_OK)
		return st;
	if ((st = tc_check_range("embedding_dim", cfg->embedding_dim, 1,
							 TC_MAX_EMBED, TC_ERR_INVALID_ARG, err)) != TC_OK)
		return st;
	if ((st = tc_check_range("hidden_size", cfg->hidden_size, 1,
							 TC_MAX_HIDDEN, TC_ERR_INVALID_ARG, err)) != TC_OK)
		return st;
	if (cfg->num_classes != 0 &&
		(st = tc_check_range("num_classes", cfg->num_classes, 2,
							 TC_MAX_CLASSES, TC_ERR_CLASSES, err)) != TC_OK)
		return st;
	if (cfg->tok.mode != TC_TOK_WORD && cfg->tok.mode != TC_TOK_CHAR)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"unrecognized tokenizer mode: %d", cfg->tok.mode);
	if (!(cfg->threshold > 0.0f && cfg->threshold < 1.0f))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"threshold\" must be greater than 0 and less than 1");
	return TC_OK;
}

/* Dense outputs for num_classes: 1 (sigmoid) for two classes, else one per class. */
static int
tc_dense_units(int32_t num_classes)
{
	return num_classes == 2 ? 1 : (int) num_classes;
}

/* Floats of emb, Wx, Wh, b, Wd, bd for cfg. */
void
tc_param_sizes(const TcConfig *cfg, size_t sizes[TC_NUM_PARAMS])
{
	size_t		V = (size_t) cfg->vocab_size;
	size_t		E = (size_t) cfg->embedding_dim;
	size_t		H = (size_t) cfg->hidden_size;
	size_t		G = 4 * H;
	size_t		K = (size_t) tc_dense_units(cfg->num_classes);

	sizes[0] = V * E;			/* emb (V,E) */
	sizes[1] = E * G;			/* Wx (E,G) */
	sizes[2] = H * G;			/* Wh (H,G) */
	sizes[3] = G;				/* b (G) */
	sizes[4] = H * K;			/* Wd (H,K) */
	sizes[5] = K;				/* bd (K) */
}

/* Point the six tensors of t into block (laid out as sizes). */
static void
tc_point_params(TcParams *t, float *block, const size_t sizes[TC_NUM_PARAMS])
{
	float	  **ptrs[TC_NUM_PARAMS];
	float	   *p = block;

	ptrs[0] = &t->emb;
	ptrs[1] = &t->Wx;
	ptrs[2] = &t->Wh;
	ptrs[3] = &t->b;
	ptrs[4] = &t->Wd;
	ptrs[5] = &t->bd;
	for (int i = 0; i < TC_NUM_PARAMS; i++)
	{
		*ptrs[i] = p;
		p += sizes[i];
	}
}

/* ---------------------------------------------------------------------
 * Creation and destruction
 * ---------------------------------------------------------------------
 */

/* Copy labels (num_classes strings, NULL = all empty) into one allocation. */
static TcStatus
tc_copy_labels(TcModel *m, const char *const *labels, TcError *err)
{
	int			n = m->cfg.num_classes;
	size_t		bytes = tc_mul_size((size_t) n, sizeof(char *));
	char	   *text;

	for (int i = 0; i < n; i++)
	{
		size_t		len = labels ? strlen(labels[i]) : 0;

		if (len > TC_MAX_LABEL_BYTES)
			return tc_error(err, TC_ERR_LIMIT,
							"label is too long (%zu bytes, the maximum is %d)",
							len, TC_MAX_LABEL_BYTES);
		bytes = tc_add_size(bytes, len + 1);
	}
	m->labels = tc_alloc(&m->alloc, bytes);
	if (m->labels == NULL)
		return tc_error(err, TC_ERR_NOMEM, "out of memory");
	text = (char *) (m->labels + n);
	for (int i = 0; i < n; i++)
	{
		size_t		len = labels ? strlen(labels[i]) : 0;

		if (len > 0)
			memcpy(text, labels[i], len);
		text[len] = '\0';
		m->labels[i] = text;
		text += len + 1;
	}
	return TC_OK;
}

/* A model with zeroed parameters, copied labels (num_classes) and no vocabulary. */
TcModel *
tc_model_create(const TcAllocator *a, const TcConfig *cfg,
				const char *const *labels, TcError *err)
{
	TcModel    *m;

	if (tc_config_validate(cfg, err) != TC_OK)
		return NULL;
	if (cfg->num_classes < 2)
	{
		tc_error(err, TC_ERR_CLASSES, "at least two classes are required");
		return NULL;
	}
	m = tc_alloc0(a, sizeof(TcModel));
	if (m == NULL)
	{
		tc_error(err, TC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	m->alloc = *a;
	m->cfg = *cfg;
	m->K = tc_dense_units(cfg->num_classes);
	tc_param_sizes(cfg, m->param_sizes);
	m->num_params = 0;
	for (int i = 0; i < TC_NUM_PARAMS; i++)
		m->num_params = tc_add_size(m->num_params, m->param_sizes[i]);

	if (tc_copy_labels(m, labels, err) != TC_OK)
	{
		tc_model_free(m);
		return NULL;
	}
	m->params_memory = tc_alloc_array(a, m->num_params, sizeof(float));
	if (m->params_memory == NULL)
	{
		tc_error(err, TC_ERR_NOMEM, "out of memory");
		tc_error_hint(err, "The model needs %zu parameters.", m->num_params);
		tc_model_free(m);
		return NULL;
	}
	tc_point_params(&m->params, m->params_memory, m->param_sizes);
	return m;
}

/* Release every block of m, its labels and its vocabulary. */
void
tc_model_free(TcModel *m)
{
	TcAllocator a;

	if (m == NULL)
		return;
	a = m->alloc;
	if (m->vocab != NULL)
		tc_vocab_free(m->vocab);
	tc_free(&a, m->labels);
	tc_free(&a, m->params_memory);
	tc_free(&a, m->grads_memory);
	tc_free(&a, m->m_memory);
	tc_free(&a, m->v_memory);
	tc_free(&a, m->acts_memory);
	tc_free(&a, m->infer);
	tc_free(&a, m);
}

/* ---------------------------------------------------------------------
 * Initialisation (Keras defaults)
 * ---------------------------------------------------------------------
 */

/* p (n) ~ U(-limit, limit). */
static void
tc_fill_uniform(TcRng *r, float *p, size_t n, double limit)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (float) ((2.0 * (double) tc_rng_uniform(r) - 1.0) * limit);
}

/*
 * Wh (H,G) with orthonormal rows, as keras.initializers.Orthogonal does for
 * a (H,G) kernel: QR of a (G,H) standard normal matrix, q *= sign(diag(r)),
 * transposed.  Column j of that q is row j of Wh, so modified Gram-Schmidt
 * runs over the rows of Wh (its r has a positive diagonal, which is what the
 * sign correction produces from any QR).  The current row is kept in
 * double; finished rows are stored as floats.
 */
static void
tc_fill_orthogonal(TcRng *r, float *Wh, int H)
{
	int			G = 4 * H;
	double		v[4 * TC_MAX_HIDDEN];	/* current row, double */

	for (int j = 0; j < H; j++)
	{
		float	   *row = Wh + (size_t) j * G;
		double		norm = 0.0;

		for (int i = 0; i < G; i++)
			v[i] = tc_rng_normal(r);
		for (int k = 0; k < j; k++)
		{
			const float *q = Wh + (size_t) k * G;
			double		dot = 0.0;

			for (int i = 0; i < G; i++)
				dot += v[i] * (double) q[i];
			for (int i = 0; i < G; i++)
				v[i] -= dot * (double) q[i];
		}
		for (int i = 0; i < G; i++)
			norm += v[i] * v[i];
		norm = sqrt(norm);
		/* a zero norm has probability zero; keep the row finite regardless */
		if (!(norm > 0.0))
			norm = 1.0;
		for (int i = 0; i < G; i++)
			row[i] = (float) (v[i] / norm);
	}
}

/*
 * Keras initialisers from seed: Embedding uniform(-0.05, 0.05), LSTM kernel
 * glorot_uniform (fan_in E, fan_out G), recurrent kernel orthogonal, bias
 * zeros with unit_forget_bias (f slice [H, 2H) = 1), Dense kernel
 * glorot_uniform (fan_in H, fan_out K), Dense bias zeros.  Draw order:
 * emb, Wx, Wh, Wd from one stream.
 */
void
tc_model_init(TcModel *m, uint64_t seed)
{
	TcRng		r;
	int			E = m->cfg.embedding_dim;
	int			H = m->cfg.hidden_size;
	int			G = 4 * H;
	int			K = m->K;

	tc_rng_seed(&r, seed);
	tc_fill_uniform(&r, m->params.emb, m->param_sizes[0], 0.05);
	tc_fill_uniform(&r, m->params.Wx, m->param_sizes[1],
					sqrt(6.0 / (double) (E + G)));
	tc_fill_orthogonal(&r, m->params.Wh, H);
	for (int j = 0; j < G; j++)
		m->params.b[j] = (j >= H && j < 2 * H) ? 1.0f : 0.0f;
	tc_fill_uniform(&r, m->params.Wd, m->param_sizes[4],
					sqrt(6.0 / (double) (H + K)));
	for (int k = 0; k < K; k++)
		m->params.bd[k] = 0.0f;
	m->adam_t = 0;
	tc_model_drop_infer(m);
	if (m->m_memory != NULL)
	{
		memset(m->m_memory, 0, sizeof(float) * m->num_params);
		memset(m->v_memory, 0, sizeof(float) * m->num_params);
	}
}

/* ---------------------------------------------------------------------
 * Training
 * ---------------------------------------------------------------------
 */

/*
 * Bytes of the activation block for batches of up to (maxB, maxT): the
 * layout tc_model_train_prepare carves up (saturates at SIZE_MAX).
 */
static size_t
tc_acts_bytes(size_t E, size_t H, size_t K, int maxB, int maxT, int threads)
{
	size_t		G = 4 * H;
	size_t		B = (size_t) maxB;
	size_t		N = B * (size_t) maxT;
	size_t		work;
	size_t		nfloat;
	size_t		nint;

	work = tc_lstm_fast_work_floats((int) N, maxB, (int) E, (int) H, threads);
	work = tc_add_size(work, tc_lstm_packed_floats((int) H));
	/* x, dx (N,E); gates (N,G); cs, hs (N,H); hlast, dhlast, mask (B,H); 3 x (B,K); weights (B) */
	nfloat = tc_mul_size(N, tc_add_size(2 * E, tc_add_size(G, 2 * H)));
	nfloat = tc_add_size(nfloat, tc_mul_size(B, 3 * H + 3 * K + 1));
	nfloat = tc_add_size(nfloat, work);
	/* tokens (N); targets, lens, order (B); bs (T); off (T+1) */
	nint = N + 3 * B + 2 * (size_t) maxT + 1;
	return tc_add_size(tc_mul_size(nfloat, sizeof(float)),
					   tc_mul_size(nint, sizeof(int32_t)));
}

/*
 * Memory estimate of a model of cfg (see model.h): parameters, their
 * serialized copies and the inference tables; with batch > 0 also the
 * gradients, both Adam moments, the trainer's best-weights copy, its
 * moving average of the weights and the live copy, the activations for
 * (batch, max_len) and the trainer's batch buffers.
 */
size_t
tc_model_memory_estimate(const TcConfig *cfg, int batch, int threads)
{
	TcConfig	c = *cfg;
	size_t		sizes[TC_NUM_PARAMS];
	size_t		nparams = 0;
	size_t		pbytes;
	size_t		total;
	size_t		E = (size_t) cfg->embedding_dim;
	size_t		H = (size_t) cfg->hidden_size;
	size_t		K;
	size_t		T = (size_t) cfg->max_len;
	size_t		proj;

	if (c.num_classes < 2)
		c.num_classes = 2;		/* not known yet: the smallest head */
	K = (size_t) tc_dense_units(c.num_classes);
	tc_param_sizes(&c, sizes);
	for (int i = 0; i < TC_NUM_PARAMS; i++)
		nparams = tc_add_size(nparams, sizes[i]);
	pbytes = tc_mul_size(nparams, sizeof(float));

	/* parameters, the serialized blob and the classifier value made from it */
	total = tc_mul_size(pbytes, 3);
	/* inference tables: the panel and, when small, the folded projection */
	total = tc_add_size(total, tc_mul_size(tc_lstm_infer_panel_floats((int) E, (int) H),
										   sizeof(float)));
	proj = tc_mul_size(tc_mul_size((size_t) c.vocab_size, 4 * H), sizeof(float));
	if (proj <= TC_INFER_FOLD_MAX_BYTES)
		total = tc_add_size(total, proj);
	if (batch <= 0)
		return total;

	/*
	 * gradients, Adam's two moments, the early-stopping copy, and the
	 * moving average of the weights with the live copy kept beside it
	 */
	total = tc_add_size(total, tc_mul_size(pbytes, 6));
	total = tc_add_size(total, tc_acts_bytes(E, H, K, batch, (int) T, threads));
	/* trainer: batch ids (B,T), per-row arrays (B), probs (B,K), ids (T) */
	total = tc_add_size(total,
						tc_mul_size(tc_add_size(tc_mul_size((size_t) batch, T),
												tc_add_size(tc_mul_size((size_t) batch, 6 + K),
															T)),
									sizeof(float)));
	return total;
}

/*
 * Allocate gradients and Adam moments (once, zeroed) and the activation
 * block for batches of up to maxB sequences of up to maxT tokens (again
 * only when larger than the current one).
 */
TcStatus
tc_model_train_prepare(TcModel *m, int maxB, int maxT, TcError *err)
{
	const TcAllocator *a = &m->alloc;
	size_t		E = (size_t) m->cfg.embedding_dim;
	size_t		H = (size_t) m->cfg.hidden_size;
	size_t		G = 4 * H;
	size_t		K = (size_t) m->K;
	size_t		B;
	size_t		N;
	float	   *f;
	int		   *ip;
	TcActs	   *ac = &m->acts;
	int			threads = tc_kernels_threads();

	if (maxB < 1 || maxB > TC_MAX_BATCH)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"batch_size\" must be between 1 and %d", TC_MAX_BATCH);
	if (maxT < 1 || maxT > TC_MAX_MAX_LEN)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"\"max_len\" must be between 1 and %d", TC_MAX_MAX_LEN);

	if (m->grads_memory == NULL)
	{
		m->grads_memory = tc_alloc_array(a, m->num_params, sizeof(float));
		m->m_memory = tc_alloc_array(a, m->num_params, sizeof(float));
		m->v_memory = tc_alloc_array(a, m->num_params, sizeof(float));
		if (m->grads_memory == NULL || m->m_memory == NULL ||
			m->v_memory == NULL)
		{
			tc_free(a, m->grads_memory);
			tc_free(a, m->m_memory);
			tc_free(a, m->v_memory);
			m->grads_memory = m->m_memory = m->v_memory = NULL;
			return tc_error(err, TC_ERR_NOMEM, "out of memory");
		}
		tc_point_params(&m->grads, m->grads_memory, m->param_sizes);
		m->adam_t = 0;
	}

	if (threads < 1)
		threads = 1;
	if (m->acts_memory != NULL && maxB <= m->maxB && maxT <= m->maxT &&
		threads <= m->acts_threads)
		return TC_OK;
	if (m->acts_memory != NULL)
	{
		/* grow: keep the larger of the old and new bounds */
		if (maxB < m->maxB)
			maxB = m->maxB;
		if (maxT < m->maxT)
			maxT = m->maxT;
		if (threads < m->acts_threads)
			threads = m->acts_threads;
		tc_free(a, m->acts_memory);
		m->acts_memory = NULL;
		memset(ac, 0, sizeof(*ac));
	}

	B = (size_t) maxB;
	N = B * (size_t) maxT;
	m->acts_memory = tc_alloc(a, tc_acts_bytes(E, H, K, maxB, maxT, threads));
	if (m->acts_memory == NULL)
		return tc_error(err, TC_ERR_NOMEM,
						"out of memory for a batch of %d sequences of %d tokens",
						maxB, maxT);
	m->maxB = maxB;
	m->maxT = maxT;
	m->acts_threads = threads;

	f = (float *) m->acts_memory;
	ac->x = f;					/* (N,E) */
	f += N * E;
	ac->gates = f;				/* (N,G) */
	f += N * G;
	ac->cs = f;					/* (N,H) */
	f += N * H;
	ac->hs = f;					/* (N,H) */
	f += N * H;
	ac->hlast = f;				/* (B,H) */
	f += B * H;
	ac->logits = f;				/* (B,K) */
	f += B * K;
	ac->probs = f;				/* (B,K) */
	f += B * K;
	ac->dlogits = f;			/* (B,K) */
	f += B * K;
	ac->dhlast = f;				/* (B,H) */
	f += B * H;
	ac->mask = f;				/* (B,H) */
	f += B * H;
	ac->dx = f;					/* (N,E) */
	f += N * E;
	ac->weights = f;			/* (B) */
	f += B;
	ac->work = f;				/* lstm backward scratch */
	f += tc_lstm_fast_work_floats((int) N, maxB, (int) E, (int) H, threads);
	ac->packed = f;				/* tc_lstm_packed_floats(H) */
	f += tc_lstm_packed_floats((int) H);
	ac->tokens = (int32_t *) f; /* (N) */
	ac->targets = ac->tokens + N;	/* (B) */
	ip = (int *) (ac->targets + B);
	ac->lens = ip;				/* (B) */
	ip += B;
	ac->order = ip;				/* (B) */
	ip += B;
	ac->bs = ip;				/* (T) */
	ip += maxT;
	ac->off = ip;				/* (T+1) */
	return TC_OK;
}

/* Arguments of tc_emb_grad_task. */
typedef struct EmbGradTask
{
	float	   *demb;			/* (V,E) */
	const float *dx;			/* (N,E) */
	const int32_t *tokens;		/* (N) */
	int			N;
	int			V;
	int			E;
} EmbGradTask;

/*
 * Embedding gradient of thread tid of n: zero the rows [v0, v1) of demb,
 * then add the rows of dx whose token lies there.  Each row receives its
 * additions in token order, as in tc_embedding_backward, so the result is
 * the same bits at any thread count.
 */
static void
tc_emb_grad_task(void *arg, int tid, int n)
{
	EmbGradTask *a = arg;
	int			v0 = (int) ((long long) a->V * tid / n);
	int			v1 = (int) ((long long) a->V * (tid + 1) / n);
	int			E = a->E;

	memset(a->demb + (size_t) v0 * E, 0,
		   sizeof(float) * (size_t) (v1 - v0) * E);
	for (int i = 0; i < a->N; i++)
	{
		int32_t		id = a->tokens[i];
		float	   *d;
		const float *g;

		if (id < v0 || id >= v1)
			continue;
		d = a->demb + (size_t) id * E;
		g = a->dx + (size_t) i * E;
		for (int e = 0; e < E; e++)
			d[e] += g[e];
	}
}

/*
 * Inverted dropout on hlast (B,H), in place: draw the mask (0 with
 * probability m->dropout, else 1 / (1 - m->dropout)) and apply it.  The
 * dense layer then sees the dropped state, and the backward pass multiplies
 * dhlast by the same mask.  A row with no tokens has h = 0 either way.
 */
static void
dropout_forward(TcModel *m, int B, int H)
{
	TcActs	   *ac = &m->acts;
	float		keep = 1.0f / (1.0f - m->dropout);

	for (size_t i = 0; i < (size_t) B * H; i++)
	{
		ac->mask[i] = (tc_rng_uniform(&m->dropout_rng) < m->dropout) ? 0.0f : keep;
		ac->hlast[i] *= ac->mask[i];
	}
}

/*
 * Forward over B sequences seqs[b] (lens_in[b] ids each), in packed order
 * (stable sort by length, longest first); with train, zero the gradients
 * and run the backward pass.  probs_out (B,K) in the caller's order.
 * targets (B) may be NULL when not training (the loss is then 0).
 */
TcStatus
tc_model_batch(TcModel *m, const int32_t *const *seqs, const int *lens_in,
			   const int32_t *targets, const float *weights, int B,
			   bool train, double *loss, float *probs_out, TcError *err)
{
	TcActs	   *ac = &m->acts;
	TcPack		pack;
	int			E = m->cfg.embedding_dim;
	int			H = m->cfg.hidden_size;
	int			K = m->K;
	int			V = m->cfg.vocab_size;
	int			ncls = (K == 1) ? 2 : K;
	int		   *count;
	double		l;
	bool		fast = tc_kernels_use_fast();
	int			threads = tc_kernels_threads();

	if (threads > m->acts_threads)
		threads = m->acts_threads;
	*loss = 0.0;
	if (m->acts_memory == NULL || (train && m->grads_memory == NULL))
		return tc_error(err, TC_ERR_INVALID_ARG,
						"model is not prepared for training");
	if (B < 1 || B > m->maxB)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"batch of %d sequences is outside [1, %d]", B, m->maxB);
	if (train && targets == NULL)
		return tc_error(err, TC_ERR_INVALID_ARG,
						"training needs targets");
	for (int b = 0; b < B; b++)
	{
		if (lens_in[b] < 0 || lens_in[b] > m->maxT)
			return tc_error(err, TC_ERR_LIMIT,
							"sequence of %d tokens is longer than the prepared maximum %d",
							lens_in[b], m->maxT);
		if (targets != NULL && (targets[b] < 0 || targets[b] >= ncls))
			return tc_error(err, TC_ERR_INVALID_ARG,
							"target %d is outside [0, %d)", (int) targets[b],
							ncls);
	}

	/*
	 * Stable counting sort by length, longest first; off (maxT + 1 ints)
	 * serves as the bucket array before it is filled by tc_pack_init.
	 */
	count = ac->off;
	memset(count, 0, sizeof(int) * ((size_t) m->maxT + 1));
	for (int b = 0; b < B; b++)
		count[lens_in[b]]++;
	{
		int			start = 0;

		for (int len = m->maxT; len >= 0; len--)
		{
			int			c = count[len];

			count[len] = start;
			start += c;
		}
	}
	for (int b = 0; b < B; b++)
		ac->order[count[lens_in[b]]++] = b;
	for (int s = 0; s < B; s++)
	{
		int			b = ac->order[s];

		ac->lens[s] = lens_in[b];
		ac->targets[s] = targets ? targets[b] : 0;
		ac->weights[s] = weights ? weights[b] : 1.0f;
	}
	tc_pack_init(&pack, B, ac->lens, ac->bs, ac->off);

	/* packed tokens: step t of sequence s goes to row off[t] + s */
	for (int t = 0; t < pack.T; t++)
	{
		int32_t    *row = ac->tokens + pack.off[t];

		for (int s = 0; s < pack.bs[t]; s++)
		{
			int32_t		id = seqs[ac->order[s]][t];

			if (id < 0 || id >= V)
				return tc_error(err, TC_ERR_INVALID_ARG,
								"token id %d is outside [0, %d)", (int) id, V);
			row[s] = id;
		}
	}

	/* forward */
	tc_embedding_forward(ac->x, ac->tokens, m->params.emb, pack.N, E);
	if (fast)
		tc_lstm_pack(ac->packed, m->params.Wh, H);
	tc_lstm_forward_fast(ac->hlast, ac->gates, ac->cs, ac->hs, ac->x,
						 m->params.Wx, m->params.Wh, m->params.b, &pack, E, H,
						 fast ? ac->packed : NULL, threads);
	if (train && m->dropout > 0.0f)
		dropout_forward(m, B, H);
	tc_dense_forward(ac->logits, ac->hlast, m->params.Wd, m->params.bd,
					 B, H, K);
	l = tc_xent_forward_backward(ac->probs, train ? ac->dlogits : NULL,
								 ac->logits, ac->targets,
								 weights ? ac->weights : NULL, B, K);
	*loss = targets ? l : 0.0;

	/* backward */
	if (train)
	{
		EmbGradTask et;

		/* emb's gradient (first in the block) is zeroed by tc_emb_grad_task */
		memset(m->grads_memory + m->param_sizes[0], 0,
			   sizeof(float) * (m->num_params - m->param_sizes[0]));
		tc_dense_backward(ac->dhlast, m->grads.Wd, m->grads.bd, ac->dlogits,
						  ac->hlast, m->params.Wd, B, H, K);
		if (m->dropout > 0.0f)
			for (size_t i = 0; i < (size_t) B * H; i++)
				ac->dhlast[i] *= ac->mask[i];
		tc_lstm_backward_fast(ac->dx, m->grads.Wx, m->grads.Wh, m->grads.b,
							  ac->dhlast, ac->gates, ac->cs, ac->hs, ac->x,
							  m->params.Wx, m->params.Wh, &pack, E, H,
							  fast ? ac->packed : NULL, threads, ac->work);
		et.demb = m->grads.emb;
		et.dx = ac->dx;
		et.tokens = ac->tokens;
		et.N = pack.N;
		et.V = V;
		et.E = E;
		tc_run_parallel(fast ? threads : 1, tc_emb_grad_task, &et);
	}

	if (probs_out != NULL)
		for (int s = 0; s < B; s++)
			memcpy(probs_out + (size_t) ac->order[s] * K,
				   ac->probs + (size_t) s * K, sizeof(float) * (size_t) K);
	return TC_OK;
}

/* Global L2 norm of the gradient block (accumulated in double). */
double
tc_grad_norm(const TcModel *m)
{
	double		sum = 0.0;

	if (m->grads_memory == NULL)
		return 0.0;
	for (size_t i = 0; i < m->num_params; i++)
		sum += (double) m->grads_memory[i] * (double) m->grads_memory[i];
	return sqrt(sum);
}

/* Multiply every gradient by s. */
void
tc_grad_scale(TcModel *m, float s)
{
	if (m->grads_memory == NULL)
		return;
	for (size_t i = 0; i < m->num_params; i++)
		m->grads_memory[i] *= s;
}

/* ---------------------------------------------------------------------
 * Inference
 * ---------------------------------------------------------------------
 */

/*
 * Fast-path tables: the inference panel (tc_lstm_infer_panel_floats) and,
 * when folded, P (V,G) = emb Wx + b.  Allocated as one block after this
 * header.
 */
typedef struct TcInfer
{
	float	   *panel;			/* Wx over Wh, packed (kernels.h) */
	float	   *proj;			/* (V,G) folded input projection, or NULL */
} TcInfer;

/* Free the inference tables of m (they are stale once parameters change). */
void
tc_model_drop_infer(TcModel *m)
{
	if (m->infer != NULL)
	{
		tc_free(&m->alloc, m->infer);
		m->infer = NULL;
	}
}

/* Build m->infer from the current parameters (see model.h). */
TcStatus
tc_model_prepare_infer(TcModel *m, TcError *err)
{
	int			V = m->cfg.vocab_size;
	int			E = m->cfg.embedding_dim;
	int			H = m->cfg.hidden_size;
	int			G = 4 * H;
	size_t		npanel = tc_lstm_infer_panel_floats(E, H);
	size_t		nproj = tc_mul_size((size_t) V, (size_t) G);
	bool		fold = tc_mul_size(nproj, sizeof(float)) <= TC_INFER_FOLD_MAX_BYTES;
	size_t		bytes;
	TcInfer    *inf;
	const TcParams *P = &m->params;

	tc_model_drop_infer(m);
	if (!tc_kernels_fast_available())
		return TC_OK;
	bytes = tc_add_size(sizeof(TcInfer),
						tc_mul_size(tc_add_size(npanel, fold ? nproj : 0),
									sizeof(float)));
	inf = tc_alloc(&m->alloc, bytes);
	if (inf == NULL)
		return tc_error(err, TC_ERR_NOMEM,
						"out of memory for the inference tables");
	inf->panel = (float *) (inf + 1);
	inf->proj = fold ? inf->panel + npanel : NULL;
	tc_lstm_infer_pack(inf->panel, P->Wx, P->Wh, E, H);
	/* row by row, as in the head: scoring never loads OpenBLAS */
	if (fold)
		for (int v = 0; v < V; v++)
			tc_dense_forward_row(inf->proj + (size_t) v * G,
								 P->emb + (size_t) v * E, P->Wx, P->b, E, G);
	m->infer = inf;
	return TC_OK;
}

/*
 * Floats of work tc_model_infer needs: the reference path uses z (G),
 * h (H), c (H), logits (K); the fast one two input vectors (E+H), c (H)
 * and logits (K).
 */
size_t
tc_model_infer_work_floats(const TcModel *m)
{
	size_t		E = (size_t) m->cfg.embedding_dim;
	size_t		H = (size_t) m->cfg.hidden_size;
	size_t		ref = 4 * H + 2 * H + (size_t) m->K;
	size_t		fast = 2 * (E + H) + H + (size_t) m->K;

	return ref > fast ? ref : fast;
}

/* Probabilities (num_classes) from the final hidden state h (H); logits (K) scratch. */
static void
tc_infer_head(const TcModel *m, const float *h, float *logits, float *probs)
{
	int32_t		zero = 0;
	int			H = m->cfg.hidden_size;
	int			K = m->K;

	tc_dense_forward_row(logits, h, m->params.Wd, m->params.bd, H, K);
	if (K == 1)
	{
		float		p;

		tc_xent_forward_backward(&p, NULL, logits, &zero, NULL, 1, 1);
		probs[0] = 1.0f - p;
		probs[1] = p;
	}
	else
		tc_xent_forward_backward(probs, NULL, logits, &zero, NULL, 1, K);
}

/*
 * The fast path of tc_model_infer: per token gates = P[id] + h Wh (folded)
 * or b + [x h] [Wx; Wh], activations and cell update fused in the step
 * kernel; two input vectors [x | h] alternate so that h is never read and
 * written by the same step.
 */
static void
tc_model_infer_fast(const TcModel *m, const int32_t *ids, int n,
					float *probs, float *work)
{
	const TcInfer *inf = m->infer;
	int			E = m->cfg.embedding_dim;
	int			H = m->cfg.hidden_size;
	int			G = 4 * H;
	int			V = m->cfg.vocab_size;
	float	   *cur = work;		/* (E+H) [x | h] of this step */
	float	   *next = cur + E + H; /* (E+H) [x | h] of the next step */
	float	   *c = next + E + H;	/* (H) cell state */
	float	   *logits = c + H; /* (K) */

	memset(cur + E, 0, sizeof(float) * (size_t) H);
	memset(c, 0, sizeof(float) * (size_t) H);
	for (int t = 0; t < n; t++)
	{
		int32_t		id = (ids[t] >= 0 && ids[t] < V) ? ids[t] : 0;
		float	   *swap;

		if (inf->proj != NULL)
			tc_lstm_infer_step(next + E, c, inf->proj + (size_t) id * G,
							   cur + E, t > 0 ? H : 0, E, inf->panel, E, H);
		else
		{
			memcpy(cur, m->params.emb + (size_t) id * E,
				   sizeof(float) * (size_t) E);
			tc_lstm_infer_step(next + E, c, m->params.b, cur,
							   t > 0 ? E + H : E, 0, inf->panel, E, H);
		}
		swap = cur;
		cur = next;
		next = swap;
	}
	tc_infer_head(m, cur + E, logits, probs);
}

/*
 * probs (num_classes) for the id sequence ids (n, may be 0), one token at
 * a time with work (tc_model_infer_work_floats).  Ids outside [0, V) are
 * read as the padding id 0; they cannot come from the model's vocabulary,
 * so this only keeps memory access in bounds.
 */
void
tc_model_infer(const TcModel *m, const int32_t *ids, int n, float *probs,
			   float *work)
{
	int			E = m->cfg.embedding_dim;
	int			H = m->cfg.hidden_size;
	int			G = 4 * H;
	int			V = m->cfg.vocab_size;
	const TcParams *P = &m->params;
	float	   *z = work;		/* (G) gate pre-activations, then gates */
	float	   *h = z + G;		/* (H) hidden state */
	float	   *c = h + H;		/* (H) cell state */
	float	   *logits = c + H; /* (K) */

	if (m->infer != NULL && tc_kernels_use_fast())
	{
		tc_model_infer_fast(m, ids, n, probs, work);
		return;
	}
	memset(h, 0, sizeof(float) * (size_t) H);
	memset(c, 0, sizeof(float) * (size_t) H);
	for (int t = 0; t < n; t++)
	{
		int32_t		id = (ids[t] >= 0 && ids[t] < V) ? ids[t] : 0;

		memcpy(z, P->b, sizeof(float) * (size_t) G);
		tc_sgemm(false, false, 1, G, E, 1.0f, P->emb + (size_t) id * E, E,
				 P->Wx, G, 1.0f, z, G);
		if (t > 0)
			tc_sgemm(false, false, 1, G, H, 1.0f, h, H, P->Wh, G, 1.0f, z, G);
		for (int j = 0; j < H; j++)
		{
			float		ig = tc_sigmoidf(z[j]);
			float		fg = tc_sigmoidf(z[H + j]);
			float		gg = tanhf(z[2 * H + j]);
			float		og = tc_sigmoidf(z[3 * H + j]);

			c[j] = fg * c[j] + ig * gg;
			h[j] = og * tanhf(c[j]);
		}
	}
	tc_infer_head(m, h, logits, probs);
}

/* Predicted class: argmax, or for two classes 1 iff p >= threshold. */
int
tc_model_decide(const TcModel *m, const float *probs, float threshold)
{
	int			best = 0;

	if (m->K == 1)
		return probs[1] >= threshold ? 1 : 0;
	for (int k = 1; k < m->cfg.num_classes; k++)
		if (probs[k] > probs[best])
			best = k;
	return best;
}
