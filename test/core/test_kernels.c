/*
 * test_kernels.c
 *	  The fast (AVX2/FMA) kernels against their plain references: the
 *	  vectorised sigmoid and tanh against double precision, the LSTM
 *	  forward and backward through the step kernels against
 *	  tc_lstm_forward / tc_lstm_backward on random shapes (H not a
 *	  multiple of 8 included, 1 to 3 threads), the core's split products
 *	  against tc_sgemm, the fast inference path (folded and unfolded
 *	  embedding) against the reference path, and determinism.
 *
 * Tolerances:
 *	 activations: |fast - exact| <= 1e-6 |exact| (sigmoid for |x| <= 80,
 *	   where the result is a normal float; tanh everywhere), measured max
 *	   about 2.5e-7;
 *	 LSTM caches and gradients: |fast - ref| <= 2e-5 + 2e-4 |ref| (inputs
 *	   U(-1,1), weights U(-0.5,0.5): sums of up to 4H terms, summed in a
 *	   different order and with ~2e-7 activation error);
 *	 inference probabilities: 1e-5 + 1e-4 relative, as test_model.c uses
 *	   between tc_model_infer and tc_model_batch.
 * Each fast check is skipped (reported as ok with a note) on a CPU
 * without avx2 and fma.
 *
 * Memory: malloc / tc_test_alloc, freed before exit.
 */
#include "tc_test.h"
#include "textclf/kernels.h"
#include "textclf/model.h"

#define LSTM_ATOL 2e-5
#define LSTM_RTOL 2e-4

/* Random floats (n) in [-scale, scale). */
static void
fill_rand(TcRng *r, float *p, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (2.0f * tc_rng_uniform(r) - 1.0f) * scale;
}

/* Vectorised activations against double precision, and the reference switch. */
static void
test_activations(TcRng *r)
{
	int			n = 200003;
	float	   *x = malloc(sizeof(float) * n);
	float	   *y = malloc(sizeof(float) * n);
	float	   *z = malloc(sizeof(float) * n);
	double		ws = 0.0;
	double		wt = 0.0;
	int			ok = 1;

	for (int i = 0; i < n; i++)
		x[i] = -90.0f + 180.0f * (float) i / (float) (n - 1);
	/* tiny and moderate magnitudes of both signs, and random ones */
	for (int i = 0; i < 3000; i++)
		x[i] = ldexpf(1.0f + 0.001f * (float) i, -40 + i % 40) * ((i & 1) ? 1.0f : -1.0f);
	fill_rand(r, x + 3000, 20000, 10.0f);
	x[n - 1] = 0.0f;

	tc_sigmoid_vec(y, x, (size_t) n);
	tc_tanh_vec(z, x, (size_t) n);
	for (int i = 0; i < n; i++)
	{
		double		s = 1.0 / (1.0 + exp(-(double) x[i]));
		double		t = tanh((double) x[i]);
		double		es = fabs((double) y[i] - s) / s;
		double		et = (t != 0.0) ? fabs((double) z[i] - t) / fabs(t) : fabs((double) z[i]);

		if (fabsf(x[i]) <= 80.0f && es > ws)
			ws = es;
		if (et > wt)
			wt = et;
		ok &= y[i] >= 0.0f && y[i] <= 1.0f && z[i] >= -1.0f && z[i] <= 1.0f;
	}
	tc_check(ws <= 1e-6, "sigmoid: max relative error %.3g (|x| <= 80)", ws);
	tc_check(wt <= 1e-6, "tanh: max relative error %.3g", wt);
	tc_check(ok && z[n - 1] == 0.0f && !signbit(z[n - 1]) &&
			 fabsf(y[n - 1] - 0.5f) <= 1e-7f,
			 "activations stay in range; tanh(0) = +0, sigmoid(0) = 0.5");
	{
		float		nan3[3] = {NAN, 1.0f, -INFINITY};
		float		o[3];

		tc_sigmoid_vec(o, nan3, 3);
		tc_check(isnan(o[0]) && o[2] == 0.0f && fabsf(o[1] - 0.7310586f) < 1e-6f,
				 "sigmoid: NaN propagates, -inf gives 0");
		tc_tanh_vec(o, nan3, 3);
		tc_check(isnan(o[0]) && o[2] == -1.0f, "tanh: NaN propagates, -inf gives -1");
	}

	/* the reference switch gives libm's values exactly */
	tc_kernels_force_reference(true);
	tc_sigmoid_vec(y, x, 1000);
	tc_tanh_vec(z, x, 1000);
	tc_kernels_force_reference(false);
	ok = 1;
	for (int i = 0; i < 1000; i++)
		ok &= y[i] == tc_sigmoidf(x[i]) && z[i] == tanhf(x[i]);
	tc_check(ok, "forced reference: tc_sigmoidf and tanhf bit for bit");
	free(x);
	free(y);
	free(z);
}

/* Buffers of one LSTM run. */
typedef struct LstmRun
{
	float	   *hlast, *gates, *cs, *hs, *dx, *dWx, *dWh, *db, *work;
} LstmRun;

/* Allocate a run for N tokens, B sequences; gradients zeroed. */
static void
run_alloc(LstmRun *o, int N, int B, int E, int H)
{
	int			G = 4 * H;

	o->hlast = malloc(sizeof(float) * ((size_t) B * H + 1));
	o->gates = malloc(sizeof(float) * ((size_t) N * G + 1));
	o->cs = malloc(sizeof(float) * ((size_t) N * H + 1));
	o->hs = malloc(sizeof(float) * ((size_t) N * H + 1));
	o->dx = malloc(sizeof(float) * ((size_t) N * E + 1));
	o->dWx = calloc((size_t) E * G, sizeof(float));
	o->dWh = calloc((size_t) H * G, sizeof(float));
	o->db = calloc((size_t) G, sizeof(float));
	o->work = malloc(sizeof(float) * (tc_lstm_fast_work_floats(N, B, E, H, 3) + 1));
}

/* Release a run. */
static void
run_free(LstmRun *o)
{
	free(o->hlast);
	free(o->gates);
	free(o->cs);
	free(o->hs);
	free(o->dx);
	free(o->dWx);
	free(o->dWh);
	free(o->db);
	free(o->work);
}

/* Do two runs agree bit for bit on every output? */
static int
run_identical(const LstmRun *a, const LstmRun *b, int N, int B, int E, int H)
{
	size_t		G = 4 * (size_t) H;

	return memcmp(a->hlast, b->hlast, sizeof(float) * B * H) == 0 &&
		memcmp(a->gates, b->gates, sizeof(float) * N * G) == 0 &&
		memcmp(a->cs, b->cs, sizeof(float) * N * H) == 0 &&
		memcmp(a->hs, b->hs, sizeof(float) * N * H) == 0 &&
		memcmp(a->dx, b->dx, sizeof(float) * N * E) == 0 &&
		memcmp(a->dWx, b->dWx, sizeof(float) * E * G) == 0 &&
		memcmp(a->dWh, b->dWh, sizeof(float) * H * G) == 0 &&
		memcmp(a->db, b->db, sizeof(float) * G) == 0;
}

/* Fast LSTM (1..3 threads) against the reference on one packed shape. */
static void
test_lstm_shape(TcRng *r, int B, const int *lens, int E, int H)
{
	TcPack		p;
	int		   *bs = malloc(sizeof(int) * (lens[0] + 1));
	int		   *off = malloc(sizeof(int) * (lens[0] + 2));
	int			N;
	int			G = 4 * H;
	float	   *x, *Wx, *Wh, *b, *dhlast, *packed;
	LstmRun		ref, fast[3];
	char		tag[96];

	tc_pack_init(&p, B, lens, bs, off);
	N = p.N;
	x = malloc(sizeof(float) * ((size_t) N * E + 1));
	Wx = malloc(sizeof(float) * E * G);
	Wh = malloc(sizeof(float) * H * G);
	b = malloc(sizeof(float) * G);
	dhlast = malloc(sizeof(float) * B * H);
	packed = malloc(sizeof(float) * tc_lstm_packed_floats(H));
	fill_rand(r, x, (size_t) N * E, 1.0f);
	fill_rand(r, Wx, (size_t) E * G, 0.5f);
	fill_rand(r, Wh, (size_t) H * G, 0.5f);
	fill_rand(r, b, (size_t) G, 0.5f);
	fill_rand(r, dhlast, (size_t) B * H, 1.0f);
	snprintf(tag, sizeof(tag), "B=%d N=%d E=%d H=%d", B, N, E, H);

	run_alloc(&ref, N, B, E, H);
	tc_lstm_forward(ref.hlast, ref.gates, ref.cs, ref.hs, x, Wx, Wh, b, &p, E, H);
	tc_lstm_backward(ref.dx, ref.dWx, ref.dWh, ref.db, dhlast, ref.gates,
					 ref.cs, ref.hs, x, Wx, Wh, &p, E, H, ref.work);

	tc_lstm_pack(packed, Wh, H);
	for (int th = 1; th <= 3; th++)
	{
		LstmRun    *o = &fast[th - 1];
		char		name[160];

		run_alloc(o, N, B, E, H);
		tc_lstm_forward_fast(o->hlast, o->gates, o->cs, o->hs, x, Wx, Wh, b,
							 &p, E, H, packed, th);
		tc_lstm_backward_fast(o->dx, o->dWx, o->dWh, o->db, dhlast, o->gates,
							  o->cs, o->hs, x, Wx, Wh, &p, E, H, packed, th,
							  o->work);
		if (th > 1)
			continue;
#define CMP(field, n) \
		snprintf(name, sizeof(name), "fast lstm %s: " #field " == reference", tag); \
		tc_check_tensor(name, o->field, ref.field, (size_t) (n), LSTM_ATOL, LSTM_RTOL)
		CMP(hlast, B * H);
		CMP(gates, N * G);
		CMP(cs, N * H);
		CMP(hs, N * H);
		CMP(dx, N * E);
		CMP(dWx, E * G);
		CMP(dWh, H * G);
		CMP(db, G);
#undef CMP
	}
	/*
	 * Across thread counts the split products (input projection, dWx,
	 * dWh, dx) may round differently: compare within tolerance.
	 */
	for (int th = 2; th <= 3; th++)
	{
		char		name[160];

		snprintf(name, sizeof(name), "fast lstm %s: %d threads == 1 thread (dWh)", tag, th);
		tc_check_tensor(name, fast[th - 1].dWh, fast[0].dWh, (size_t) H * G,
						LSTM_ATOL, LSTM_RTOL);
		snprintf(name, sizeof(name), "fast lstm %s: %d threads == 1 thread (dWx)", tag, th);
		tc_check_tensor(name, fast[th - 1].dWx, fast[0].dWx, (size_t) E * G,
						LSTM_ATOL, LSTM_RTOL);
		snprintf(name, sizeof(name), "fast lstm %s: %d threads == 1 thread (db)", tag, th);
		tc_check_tensor(name, fast[th - 1].db, fast[0].db, (size_t) G,
						LSTM_ATOL, LSTM_RTOL);
		snprintf(name, sizeof(name), "fast lstm %s: %d threads == 1 thread (hlast)", tag, th);
		tc_check_tensor(name, fast[th - 1].hlast, fast[0].hlast, (size_t) B * H,
						LSTM_ATOL, LSTM_RTOL);
		snprintf(name, sizeof(name), "fast lstm %s: %d threads == 1 thread (dx)", tag, th);
		tc_check_tensor(name, fast[th - 1].dx, fast[0].dx, (size_t) N * E,
						LSTM_ATOL, LSTM_RTOL);
	}
	for (int th = 1; th <= 2; th++)
	{
		LstmRun		again;

		run_alloc(&again, N, B, E, H);
		tc_lstm_forward_fast(again.hlast, again.gates, again.cs, again.hs, x,
							 Wx, Wh, b, &p, E, H, packed, th);
		tc_lstm_backward_fast(again.dx, again.dWx, again.dWh, again.db,
							  dhlast, again.gates, again.cs, again.hs, x, Wx,
							  Wh, &p, E, H, packed, th, again.work);
		tc_check(run_identical(&fast[th - 1], &again, N, B, E, H),
				 "fast lstm %s: deterministic at %d thread(s) (two runs, same bits)",
				 tag, th);
		run_free(&again);
	}

	/*
	 * The recurrence is shared by the speeds of the threads' CPUs; any
	 * shares, even ones that leave a thread nothing, give the same bits.
	 */
	for (int th = 2; th <= 3; th++)
	{
		static const double shares[3][3] = {{1, 5, 1}, {6, 1, 0.2}, {1, 0.01, 30}};

		for (int i = 0; i < 3; i++)
		{
			LstmRun		again;

			run_alloc(&again, N, B, E, H);
			tc_lstm_set_shares(shares[i], th);
			tc_lstm_forward_fast(again.hlast, again.gates, again.cs, again.hs,
								 x, Wx, Wh, b, &p, E, H, packed, th);
			tc_lstm_backward_fast(again.dx, again.dWx, again.dWh, again.db,
								  dhlast, again.gates, again.cs, again.hs, x,
								  Wx, Wh, &p, E, H, packed, th, again.work);
			tc_lstm_set_shares(NULL, 0);
			tc_check(run_identical(&fast[th - 1], &again, N, B, E, H),
					 "fast lstm %s: %d threads, shares %g:%g:%g, same bits",
					 tag, th, shares[i][0], shares[i][1], shares[i][2]);
			run_free(&again);
		}
	}
	/*
	 * Three threads asked, but the pool has only one helper: the job runs
	 * on two threads and must give the two-thread result (the scratch is
	 * poisoned, so partial sums of a third thread that never ran show).
	 */
	if (B >= 3)
	{
		LstmRun		cut;

		run_alloc(&cut, N, B, E, H);
		for (size_t i = 0; i < tc_lstm_fast_work_floats(N, B, E, H, 3); i++)
			cut.work[i] = NAN;
		tc_kernels_limit_helpers(1);
		tc_lstm_forward_fast(cut.hlast, cut.gates, cut.cs, cut.hs, x, Wx, Wh,
							 b, &p, E, H, packed, 3);
		tc_lstm_backward_fast(cut.dx, cut.dWx, cut.dWh, cut.db, dhlast,
							  cut.gates, cut.cs, cut.hs, x, Wx, Wh, &p, E, H,
							  packed, 3, cut.work);
		tc_kernels_limit_helpers(0);
		tc_check(run_identical(&fast[1], &cut, N, B, E, H),
				 "fast lstm %s: 3 threads asked, 1 helper available == 2 threads",
				 tag);
		run_free(&cut);
	}

	run_free(&ref);
	for (int i = 0; i < 3; i++)
		run_free(&fast[i]);
	free(bs);
	free(off);
	free(x);
	free(Wx);
	free(Wh);
	free(b);
	free(dhlast);
	free(packed);
}

/* Random non-increasing lengths (B) in [0, maxT] with lens[0] = maxT. */
static void
random_lens(TcRng *r, int *lens, int B, int maxT)
{
	for (int s = 0; s < B; s++)
		lens[s] = (int) tc_rng_below(r, (uint64_t) maxT + 1);
	lens[0] = maxT;
	for (int i = 1; i < B; i++)
		for (int j = i; j > 0 && lens[j - 1] < lens[j]; j--)
		{
			int			t = lens[j];

			lens[j] = lens[j - 1];
			lens[j - 1] = t;
		}
}

/* The LSTM on fixed and random shapes. */
static void
test_lstm(TcRng *r)
{
	int			l1[5] = {6, 4, 4, 1, 0};
	int			l2[1] = {9};
	int			l3[4] = {3, 0, 0, 0};
	int			l4[2] = {0, 0};
	int			lens[40];
	int			Hs[4] = {3, 13, 40, 64};

	test_lstm_shape(r, 5, l1, 4, 8);
	test_lstm_shape(r, 1, l2, 3, 5);
	test_lstm_shape(r, 5, l1, 16, 128);
	/* threads whose sequences are all empty; a batch with no token at all */
	test_lstm_shape(r, 4, l3, 5, 16);
	test_lstm_shape(r, 2, l4, 5, 16);
	for (int i = 0; i < 4; i++)
	{
		int			B = 1 + (int) tc_rng_below(r, 40);
		int			E = 1 + (int) tc_rng_below(r, 20);

		random_lens(r, lens, B, 1 + (int) tc_rng_below(r, 12));
		test_lstm_shape(r, B, lens, E, Hs[i]);
	}
	/* the reference size with a full batch of unequal lengths (units cut across threads) */
	random_lens(r, lens, 32, 24);
	test_lstm_shape(r, 32, lens, 16, 128);
	random_lens(r, lens, 31, 24);
	test_lstm_shape(r, 31, lens, 16, 96);
}

/* The split product against tc_sgemm, every transpose, 1 to 3 threads. */
static void
test_sgemm_threads(TcRng *r)
{
	int			shapes[3][3] = {{200, 70, 33}, {16, 512, 300}, {37, 5, 130}};

	for (int s = 0; s < 3; s++)
		for (int tr = 0; tr < 4; tr++)
			for (int th = 2; th <= 3; th++)
			{
				int			M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
				bool		ta = tr & 1, tb = tr & 2;
				float	   *A = malloc(sizeof(float) * M * K);
				float	   *Bm = malloc(sizeof(float) * K * N);
				float	   *C1 = malloc(sizeof(float) * M * N);
				float	   *C2 = malloc(sizeof(float) * M * N);
				char		name[128];

				fill_rand(r, A, (size_t) M * K, 1.0f);
				fill_rand(r, Bm, (size_t) K * N, 1.0f);
				fill_rand(r, C1, (size_t) M * N, 1.0f);
				memcpy(C2, C1, sizeof(float) * M * N);
				tc_sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, Bm, tb ? K : N,
						 1.0f, C1, N);
				tc_sgemm_threads(th, ta, tb, M, N, K, 0.5f, A, ta ? M : K, Bm,
								 tb ? K : N, 1.0f, C2, N);
				snprintf(name, sizeof(name), "sgemm_threads %c%c M=%d N=%d K=%d threads=%d",
						 ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, th);
				tc_check_tensor(name, C2, C1, (size_t) M * N, 1e-5, 1e-5);
				free(A);
				free(Bm);
				free(C1);
				free(C2);
			}
}

/* Fast inference (prepared) against the reference path on random rows. */
static void
test_infer(TcRng *r, int V, int E, int H, int classes)
{
	TcConfig	cfg;
	TcError		err;
	TcModel    *m;
	float	   *work;
	float		pf[8], pr[8];
	int32_t		ids[60];
	float		worst = 0.0f;
	int			ok = 1;
	int			same = 1;
	char		tag[96];

	tc_config_default(&cfg);
	cfg.vocab_size = V;
	cfg.embedding_dim = E;
	cfg.hidden_size = H;
	cfg.num_classes = classes;
	m = tc_model_create(&tc_test_alloc, &cfg, NULL, &err);
	if (m == NULL)
	{
		tc_check(0, "infer model created: %s", err.msg);
		return;
	}
	tc_model_init(m, 3);
	/* larger weights than Keras's init, so that states saturate somewhere */
	fill_rand(r, m->params.Wx, m->param_sizes[1], 0.4f);
	fill_rand(r, m->params.Wh, m->param_sizes[2], 0.3f);
	fill_rand(r, m->params.b, m->param_sizes[3], 0.3f);
	fill_rand(r, m->params.emb, m->param_sizes[0] < 100000 ? m->param_sizes[0] : 100000, 1.0f);
	work = malloc(sizeof(float) * tc_model_infer_work_floats(m));
	tc_check(tc_model_prepare_infer(m, &err) == TC_OK &&
			 (m->infer != NULL) == tc_kernels_fast_available(),
			 "prepare_infer V=%d E=%d H=%d", V, E, H);
	snprintf(tag, sizeof(tag), "V=%d E=%d H=%d C=%d (%s)", V, E, H, classes,
			 (size_t) V * 4 * H * sizeof(float) <= TC_INFER_FOLD_MAX_BYTES ?
			 "folded" : "unfolded");
	for (int row = 0; row < 40; row++)
	{
		int			n = row == 0 ? 0 : (int) tc_rng_below(r, 61);

		for (int t = 0; t < n; t++)
			ids[t] = (int32_t) tc_rng_below(r, (uint64_t) (V < 100000 ? V : 100000));
		if (row == 1 && n > 0)
			ids[0] = V + 5;		/* out of range: read as id 0 on both paths */
		tc_model_infer(m, ids, n, pf, work);
		tc_kernels_force_reference(true);
		tc_model_infer(m, ids, n, pr, work);
		tc_kernels_force_reference(false);
		for (int k = 0; k < classes; k++)
		{
			float		d = fabsf(pf[k] - pr[k]);

			if (d > worst)
				worst = d;
			ok &= d <= 1e-5f + 1e-4f * fabsf(pr[k]);
		}
		{
			float		again[8];

			tc_model_infer(m, ids, n, again, work);
			same &= memcmp(again, pf, sizeof(float) * classes) == 0;
		}
	}
	tc_check(ok, "fast infer %s == reference (worst |diff| %.3g)", tag, (double) worst);
	tc_check(same, "fast infer %s deterministic", tag);

	/* an Adam step drops the (now stale) tables */
	tc_model_train_prepare(m, 1, 4, &err);
	{
		TcAdam		adam = {1e-3f, 0.9f, 0.999f, 1e-7f};

		tc_adam_step(m, &adam);
	}
	tc_check(m->infer == NULL, "adam step drops the inference tables %s", tag);
	free(work);
	tc_model_free(m);
}

/* A training step through tc_model_batch: fast path == reference path. */
static void
test_model_batch(TcRng *r)
{
	TcConfig	cfg;
	TcError		err;
	TcModel    *m;
	int32_t		tok[6 * 20];
	const int32_t *seqs[6];
	int			lens[6] = {20, 3, 17, 0, 20, 9};
	int32_t		targets[6] = {1, 0, 1, 1, 0, 0};
	float	   *gref;
	double		lf, lr;

	tc_config_default(&cfg);
	cfg.vocab_size = 100;
	cfg.embedding_dim = 6;
	cfg.hidden_size = 24;
	cfg.num_classes = 2;
	m = tc_model_create(&tc_test_alloc, &cfg, NULL, &err);
	tc_model_init(m, 11);
	tc_model_train_prepare(m, 6, 20, &err);
	for (int i = 0; i < 6 * 20; i++)
		tok[i] = (int32_t) tc_rng_below(r, 100);
	for (int s = 0; s < 6; s++)
		seqs[s] = tok + s * 20;
	gref = malloc(sizeof(float) * m->num_params);
	tc_kernels_force_reference(true);
	tc_model_batch(m, seqs, lens, targets, NULL, 6, true, &lr, NULL, &err);
	memcpy(gref, m->grads_memory, sizeof(float) * m->num_params);
	tc_kernels_force_reference(false);
	tc_model_batch(m, seqs, lens, targets, NULL, 6, true, &lf, NULL, &err);
	tc_check(fabs(lf - lr) <= 1e-6 * fabs(lr),
			 "tc_model_batch loss fast %.9f reference %.9f", lf, lr);
	tc_check_tensor("tc_model_batch gradients fast == reference",
					m->grads_memory, gref, m->num_params, LSTM_ATOL, LSTM_RTOL);
	free(gref);
	tc_model_free(m);
}

int
main(void)
{
	TcRng		r;

	tc_rng_seed(&r, 777);
	if (!tc_kernels_fast_available())
	{
		tc_check(1, "# SKIP no avx2+fma on this CPU: only the reference runs");
		return tc_test_done();
	}
	test_activations(&r);
	test_lstm(&r);
	test_sgemm_threads(&r);
	test_infer(&r, 50, 8, 16, 2);
	test_infer(&r, 37, 5, 13, 3);
	test_infer(&r, 20000, 4, 8, 2);
	test_model_batch(&r);
	return tc_test_done();
}
