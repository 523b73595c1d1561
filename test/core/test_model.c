/*
 * test_model.c
 *	  The model's bookkeeping: configuration defaults and checks, parameter
 *	  sizes, labels, deterministic Keras-style initialisation (orthonormal
 *	  recurrent kernel, forget bias), the random generator, batch packing
 *	  (caller's order, empty sequences, errors), inference against the
 *	  batch path, decisions, gradient norm/scale and one Adam update against
 *	  a double-precision transcription of the formula.
 *
 * Memory: models come from tc_test_alloc and are freed; the sanitizers
 * of make core-check catch leaks and overruns.
 */
#include "tc_test.h"
#include "textclf/model.h"

/* A small model with the given classes, initialised from seed. */
static TcModel *
small_model(int num_classes, uint64_t seed, int H)
{
	TcConfig	cfg;
	TcError		err;
	TcModel    *m;

	tc_config_default(&cfg);
	cfg.vocab_size = 50;
	cfg.embedding_dim = 8;
	cfg.hidden_size = H;
	cfg.max_len = 10;
	cfg.num_classes = num_classes;
	m = tc_model_create(&tc_test_alloc, &cfg, NULL, &err);
	if (m != NULL)
		tc_model_init(m, seed);
	return m;
}

/* Defaults, range checks and their messages. */
static void
test_config(void)
{
	TcConfig	cfg;
	TcError		err;
	size_t		sizes[TC_NUM_PARAMS];

	tc_config_default(&cfg);
	tc_check(cfg.vocab_size == 10000 && cfg.max_len == 100 &&
			 cfg.embedding_dim == 16 && cfg.hidden_size == 128 &&
			 cfg.tok.mode == TC_TOK_WORD && cfg.tok.lowercase &&
			 !cfg.use_oov && cfg.threshold == 0.5f && cfg.num_classes == 0,
			 "config defaults");
	tc_check(tc_config_validate(&cfg, &err) == TC_OK,
			 "defaults validate (num_classes 0 = not known yet)");
	cfg.hidden_size = 0;
	tc_check(tc_config_validate(&cfg, &err) == TC_ERR_INVALID_ARG &&
			 strcmp(err.msg, "\"hidden_size\" must be between 1 and 2048") == 0,
			 "hidden_size 0 rejected: %s", err.msg);
	tc_config_default(&cfg);
	cfg.vocab_size = TC_MAX_VOCAB + 1;
	tc_check(tc_config_validate(&cfg, &err) == TC_ERR_INVALID_ARG &&
			 strstr(err.msg, "\"vocab_size\"") != NULL,
			 "vocab_size too large rejected: %s", err.msg);
	tc_config_default(&cfg);
	cfg.num_classes = 1;
	tc_check(tc_config_validate(&cfg, &err) == TC_ERR_CLASSES,
			 "one class rejected: %s", err.msg);
	tc_config_default(&cfg);
	cfg.threshold = NAN;
	tc_check(tc_config_validate(&cfg, &err) == TC_ERR_INVALID_ARG,
			 "NaN threshold rejected: %s", err.msg);
	tc_config_default(&cfg);
	cfg.tok.mode = 7;
	tc_check(tc_config_validate(&cfg, &err) == TC_ERR_INVALID_ARG,
			 "tokenizer mode 7 rejected: %s", err.msg);

	tc_config_default(&cfg);
	cfg.num_classes = 2;
	tc_param_sizes(&cfg, sizes);
	tc_check(sizes[0] == 160000 && sizes[1] == 16 * 512 &&
			 sizes[2] == 128 * 512 && sizes[3] == 512 && sizes[4] == 128 &&
			 sizes[5] == 1, "reference model parameter sizes");
	cfg.num_classes = 0;
	tc_check(tc_model_create(&tc_test_alloc, &cfg, NULL, &err) == NULL &&
			 err.status == TC_ERR_CLASSES,
			 "create needs at least two classes: %s", err.msg);
}

/* Labels are copied; K follows the class count. */
static void
test_create(void)
{
	TcConfig	cfg;
	TcError		err;
	char		a[] = "negative";
	const char *labels3[3] = {"a", "", "c\xc3\xa9"};
	const char *labels2[2] = {a, "positive"};
	TcModel    *m;

	tc_config_default(&cfg);
	cfg.num_classes = 2;
	m = tc_model_create(&tc_test_alloc, &cfg, labels2, &err);
	a[0] = 'X';
	tc_check(m != NULL && m->K == 1 && strcmp(m->labels[0], "negative") == 0 &&
			 strcmp(m->labels[1], "positive") == 0 && m->vocab == NULL &&
			 m->grads_memory == NULL && m->acts_memory == NULL,
			 "two classes: K = 1, labels copied, no training blocks");
	tc_model_free(m);
	cfg.num_classes = 3;
	m = tc_model_create(&tc_test_alloc, &cfg, labels3, &err);
	tc_check(m != NULL && m->K == 3 && strcmp(m->labels[2], "c\xc3\xa9") == 0 &&
			 m->labels[1][0] == '\0' &&
			 m->params.bd + 3 == m->params_memory + m->num_params &&
			 m->params.Wx == m->params.emb + m->param_sizes[0],
			 "three classes: K = 3, one parameter block in order");
	tc_model_free(m);
	tc_model_free(NULL);
}

/* Same seed same bytes; orthonormal Wh rows; Keras biases and ranges. */
static void
test_init(void)
{
	TcModel    *a = small_model(2, 99, 16);
	TcModel    *b = small_model(2, 99, 16);
	TcModel    *c = small_model(2, 100, 16);
	int			H = 16, G = 64, E = 8;
	double		worst = 0.0;
	int			ok = 1;
	double		lim = sqrt(6.0 / (E + G));

	tc_check(memcmp(a->params_memory, b->params_memory,
					sizeof(float) * a->num_params) == 0,
			 "init: same seed, identical bytes");
	tc_check(memcmp(a->params_memory, c->params_memory,
					sizeof(float) * a->num_params) != 0,
			 "init: different seed, different parameters");
	for (int i = 0; i < H; i++)
		for (int j = 0; j < H; j++)
		{
			double		d = 0.0;

			for (int k = 0; k < G; k++)
				d += (double) a->params.Wh[i * G + k] * a->params.Wh[j * G + k];
			d -= (i == j) ? 1.0 : 0.0;
			if (fabs(d) > worst)
				worst = fabs(d);
		}
	tc_check(worst < 1e-5, "init: Wh rows orthonormal (max |Wh Wh^T - I| = %.3g)", worst);
	for (int j = 0; j < G; j++)
		ok &= a->params.b[j] == ((j >= H && j < 2 * H) ? 1.0f : 0.0f);
	tc_check(ok && a->params.bd[0] == 0.0f, "init: bias zero except forget gate 1");
	ok = 1;
	for (size_t i = 0; i < a->param_sizes[0]; i++)
		ok &= fabsf(a->params.emb[i]) <= 0.05f;
	for (size_t i = 0; i < a->param_sizes[1]; i++)
		ok &= fabs(a->params.Wx[i]) <= lim;
	for (size_t i = 0; i < a->param_sizes[4]; i++)
		ok &= fabs(a->params.Wd[i]) <= sqrt(6.0 / (H + 1));
	tc_check(ok, "init: emb within 0.05, Wx and Wd within their Glorot limits");
	tc_model_free(a);
	tc_model_free(b);
	tc_model_free(c);
}

/* Generator ranges and moments. */
static void
test_rng(void)
{
	TcRng		r;
	int			hits[10] = {0};
	double		s = 0.0, s2 = 0.0;
	int			ok = 1;
	int			n = 200000;
	TcRng		r2;

	tc_rng_seed(&r, 1);
	tc_rng_seed(&r2, 1);
	tc_check(tc_rng_next(&r) == tc_rng_next(&r2) && tc_mix64(1) != tc_mix64(2),
			 "rng: reproducible from seed");
	for (int i = 0; i < 10000; i++)
	{
		uint64_t	k = tc_rng_below(&r, 10);
		float		u = tc_rng_uniform(&r);

		ok &= k < 10 && u >= 0.0f && u < 1.0f;
		if (k < 10)
			hits[k]++;
	}
	for (int k = 0; k < 10; k++)
		ok &= hits[k] > 800;
	tc_check(ok && tc_rng_below(&r, 0) == 0, "rng: below(10) and uniform in range, all values drawn");
	for (int i = 0; i < n; i++)
	{
		double		x = tc_rng_normal(&r);

		s += x;
		s2 += x * x;
	}
	s /= n;
	s2 = s2 / n - s * s;
	tc_check(fabs(s) < 0.01 && fabs(s2 - 1.0) < 0.02,
			 "rng: normal mean %.4f variance %.4f", s, s2);
}

/* Batch in any order == inference per sequence; errors. */
static void
test_batch_infer(int num_classes)
{
	TcModel    *m = small_model(num_classes, 5, 12);
	TcError		err;
	int32_t		s0[3] = {4, 9, 2};
	int32_t		s2[6] = {1, 2, 3, 4, 5, 6};
	int32_t		s3[3] = {49, 0, 7};
	const int32_t *seqs[4] = {s0, NULL, s2, s3};
	const int32_t *rseqs[4] = {s3, s2, NULL, s0};
	int			lens[4] = {3, 0, 6, 3};
	int			rlens[4] = {3, 6, 0, 3};
	int32_t		targets[4] = {1, 0, 1, 0};
	int32_t		rtargets[4] = {0, 1, 0, 1};
	float		probs[4 * 3], rprobs[4 * 3], ip[4 * 3];
	float	   *work;
	double		loss, rloss;
	int			K, C;
	int32_t		bad[1] = {50};
	const int32_t *badseqs[1] = {bad};
	int			badlen[1] = {1};
	int			longlen[1] = {11};
	TcStatus	st;

	if (m == NULL)
	{
		tc_check(0, "model");
		return;
	}
	K = m->K;
	C = num_classes;
	st = tc_model_batch(m, seqs, lens, targets, NULL, 4, false, &loss, probs, &err);
	tc_check(st == TC_ERR_INVALID_ARG, "batch before train_prepare is an error: %s", err.msg);
	tc_model_train_prepare(m, 4, 10, &err);
	st = tc_model_batch(m, seqs, lens, targets, NULL, 4, true, &loss, probs, &err);
	tc_check(st == TC_OK, "C=%d batch with an empty sequence", C);
	st = tc_model_batch(m, rseqs, rlens, rtargets, NULL, 4, true, &rloss, rprobs, &err);
	tc_check(st == TC_OK && fabs(loss - rloss) <= 1e-6 * fabs(loss),
			 "C=%d batch loss independent of order (%.8f vs %.8f)", C, loss, rloss);
	{
		int			perm[4] = {3, 2, 1, 0};
		float		back[4 * 3];

		for (int b = 0; b < 4; b++)
			memcpy(back + b * K, rprobs + perm[b] * K, sizeof(float) * K);
		tc_check_tensor("batch probs in the caller's order (permuted batch)",
						back, probs, (size_t) 4 * K, 1e-6, 1e-5);
	}

	work = malloc(sizeof(float) * tc_model_infer_work_floats(m));
	for (int b = 0; b < 4; b++)
	{
		float		p[3];

		tc_model_infer(m, seqs[b], lens[b], p, work);
		if (K == 1)
			ip[b] = p[1];
		else
			memcpy(ip + b * K, p, sizeof(float) * K);
		if (K == 1)
			tc_check(fabsf(p[0] + p[1] - 1.0f) < 1e-6f &&
					 tc_model_decide(m, p, 0.5f) == (p[1] >= 0.5f) &&
					 tc_model_decide(m, p, 0.0f) == 1 &&
					 tc_model_decide(m, p, 1.01f) == 0,
					 "two-class infer gives {1-p, p}; decide uses the threshold");
	}
	tc_check_tensor("tc_model_infer == tc_model_batch probs", ip, probs,
					(size_t) 4 * K, 1e-5, 1e-4);
	if (K > 1)
	{
		float		p[3] = {0.2f, 0.5f, 0.3f};

		tc_check(tc_model_decide(m, p, 0.5f) == 1, "decide is argmax for C classes");
	}

	/* no targets: probabilities only */
	st = tc_model_batch(m, seqs, lens, NULL, NULL, 4, false, &loss, rprobs, &err);
	tc_check(st == TC_OK && loss == 0.0 && memcmp(rprobs, probs, sizeof(float) * 4 * K) == 0,
			 "batch without targets gives the same probs");

	/* gradient norm and scaling */
	{
		double		n1, n2;

		tc_model_batch(m, seqs, lens, targets, NULL, 4, true, &loss, NULL, &err);
		n1 = tc_grad_norm(m);
		tc_grad_scale(m, 0.5f);
		n2 = tc_grad_norm(m);
		tc_check(n1 > 0.0 && fabs(n2 - 0.5 * n1) <= 1e-6 * n1,
				 "grad norm %.6g halves under scale 0.5", n1);
	}

	st = tc_model_batch(m, badseqs, badlen, targets, NULL, 1, true, &loss, NULL, &err);
	tc_check(st == TC_ERR_INVALID_ARG, "token id outside the vocabulary: %s", err.msg);
	st = tc_model_batch(m, badseqs, longlen, targets, NULL, 1, true, &loss, NULL, &err);
	tc_check(st == TC_ERR_LIMIT, "sequence longer than maxT: %s", err.msg);
	{
		int32_t		t9[1] = {9};

		st = tc_model_batch(m, seqs, lens, t9, NULL, 1, true, &loss, NULL, &err);
		tc_check(st == TC_ERR_INVALID_ARG, "target out of range: %s", err.msg);
	}
	st = tc_model_batch(m, seqs, lens, targets, NULL, 5, true, &loss, NULL, &err);
	tc_check(st == TC_ERR_INVALID_ARG, "batch larger than prepared: %s", err.msg);
	/* growing the activation block keeps working */
	st = tc_model_train_prepare(m, 8, 20, &err);
	tc_check(st == TC_OK && m->maxB == 8 && m->maxT == 20, "train_prepare grows");
	st = tc_model_batch(m, seqs, lens, targets, NULL, 4, false, &rloss, rprobs, &err);
	tc_check(st == TC_OK && memcmp(rprobs, probs, sizeof(float) * 4 * K) == 0,
			 "same probs after growing");
	free(work);
	tc_model_free(m);
}

/* tc_adam_update against the formula in double. */
static void
test_adam(void)
{
	TcAdam		ad = {1e-3f, 0.9f, 0.999f, 1e-7f};
	float		p[4] = {0.5f, -1.0f, 2.0f, 0.0f};
	float		g[4] = {0.1f, -0.02f, 0.0f, 3.0f};
	float		mo[4] = {0}, ve[4] = {0};
	double		rp[4], rm[4] = {0}, rv[4] = {0};
	float		rpf[4];

	for (int i = 0; i < 4; i++)
		rp[i] = p[i];
	for (long t = 1; t <= 3; t++)
	{
		double		lr_t = 1e-3 * sqrt(1.0 - pow(0.999, t)) / (1.0 - pow(0.9, t));

		tc_adam_update(p, g, mo, ve, 4, t, &ad);
		for (int i = 0; i < 4; i++)
		{
			rm[i] = 0.9 * rm[i] + 0.1 * g[i];
			rv[i] = 0.999 * rv[i] + 0.001 * (double) g[i] * g[i];
			rp[i] -= lr_t * rm[i] / (sqrt(rv[i]) + 1e-7);
		}
	}
	for (int i = 0; i < 4; i++)
		rpf[i] = (float) rp[i];
	tc_check_tensor("adam: 3 steps match the Keras formula in double", p, rpf, 4,
					1e-7, 1e-6);
}

int
main(void)
{
	test_config();
	test_create();
	test_init();
	test_rng();
	test_batch_infer(2);
	test_batch_infer(3);
	test_adam();
	return tc_test_done();
}
