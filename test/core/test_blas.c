/*
 * test_blas.c
 *	  tc_sgemm (cblas) against tc_sgemm_naive (plain loops), and the LSTM
 *	  layer run through either path.
 *
 * Shapes cover all four transpose combinations, odd sizes, leading
 * dimensions larger than the rows, alpha != 1, beta in {0, 1, 0.5}, and
 * the degenerate K = 0 (C = beta C, without calling cblas).  With beta = 0
 * C starts as NaN, which BLAS must ignore.  Inputs are U(-1, 1), so with
 * K <= 67 the two summation orders differ by a few float ulps of sums of
 * order sqrt(K); the tolerance is |a - b| <= 1e-5 + 1e-5 |b|.
 *
 * Memory: plain malloc, freed before exit.
 */
#include "tc_test.h"
#include "textclf/model.h"

#define BLAS_ATOL 1e-5
#define BLAS_RTOL 1e-5

/* Random floats (n) in [-1, 1). */
static void
fill_rand(TcRng *r, float *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = 2.0f * tc_rng_uniform(r) - 1.0f;
}

/* One product shape through both paths. */
static void
check_gemm(TcRng *r, bool ta, bool tb, int M, int N, int K, float alpha,
		   float beta)
{
	/* op(A) is (M,K): A is stored (K,M) when transposed; pad leading dims by 3 */
	int			lda = (ta ? M : K) + 3;
	int			ldb = (tb ? K : N) + 3;
	int			ldc = N + 3;
	size_t		arows = (size_t) (ta ? K : M);
	size_t		brows = (size_t) (tb ? N : K);
	float	   *A = malloc(sizeof(float) * (arows * lda + 1));
	float	   *Bm = malloc(sizeof(float) * (brows * ldb + 1));
	float	   *C1 = malloc(sizeof(float) * ((size_t) M * ldc + 1));
	float	   *C2 = malloc(sizeof(float) * ((size_t) M * ldc + 1));
	char		name[160];

	fill_rand(r, A, arows * lda);
	fill_rand(r, Bm, brows * ldb);
	fill_rand(r, C1, (size_t) M * ldc);
	if (beta == 0.0f)
		for (size_t i = 0; i < (size_t) M * ldc; i++)
			C1[i] = NAN;
	memcpy(C2, C1, sizeof(float) * (size_t) M * ldc);

	tc_blas_use_naive(false);
	tc_sgemm(ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, C1, ldc);
	tc_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, C2, ldc);
	/* compare only the (M,N) window; the padding columns are untouched */
	for (int i = 0; i < M; i++)
		for (int j = N; j < ldc; j++)
			C1[(size_t) i * ldc + j] = C2[(size_t) i * ldc + j] = 0.0f;
	snprintf(name, sizeof(name),
			 "sgemm %c%c M=%d N=%d K=%d alpha=%g beta=%g cblas == naive",
			 ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, beta);
	tc_check_tensor(name, C1, C2, (size_t) M * ldc, BLAS_ATOL, BLAS_RTOL);
	free(A);
	free(Bm);
	free(C1);
	free(C2);
}

/* K = 0: C = beta C through both paths. */
static void
check_k0(void)
{
	float		C[6] = {1, 2, 3, 4, 5, 6};
	float		D[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
	float		one = 1.0f;
	int			ok = 1;

	tc_sgemm(false, false, 2, 3, 0, 1.0f, &one, 1, &one, 3, 0.5f, C, 3);
	tc_sgemm(false, false, 2, 3, 0, 1.0f, &one, 1, &one, 3, 0.0f, D, 3);
	for (int i = 0; i < 6; i++)
		ok &= C[i] == 0.5f * (float) (i + 1) && D[i] == 0.0f;
	tc_check(ok, "sgemm K=0 gives beta*C (and 0 for beta=0, ignoring NaN)");
}

/* LSTM forward/backward with tc_sgemm routed to cblas and to the naive loops. */
static void
check_lstm_paths(TcRng *r)
{
	int			lens[4] = {7, 5, 5, 2};
	int			bs[7], off[8];
	TcPack		p;
	int			E = 5, H = 6, G = 24, B = 4, N;
	float	   *x, *Wx, *Wh, *b, *dh;
	float	   *out[2][8];		/* hlast gates cs hs dx dWx dWh db, per path */
	size_t		sz[8];
	float	   *work;
	const char *names[8] = {"hlast", "gates", "cs", "hs", "dx", "dWx", "dWh", "db"};

	tc_pack_init(&p, B, lens, bs, off);
	N = p.N;
	tc_check(N == 19 && p.T == 7 && bs[0] == 4 && bs[2] == 3 && bs[5] == 1 &&
			 off[7] == 19 && off[3] == 11,
			 "tc_pack_init: N=%d T=%d bs[2]=%d off[3]=%d", N, p.T, bs[2], off[3]);
	sz[0] = (size_t) B * H;
	sz[1] = (size_t) N * G;
	sz[2] = sz[3] = (size_t) N * H;
	sz[4] = (size_t) N * E;
	sz[5] = (size_t) E * G;
	sz[6] = (size_t) H * G;
	sz[7] = (size_t) G;
	x = malloc(sizeof(float) * N * E);
	Wx = malloc(sizeof(float) * E * G);
	Wh = malloc(sizeof(float) * H * G);
	b = malloc(sizeof(float) * G);
	dh = malloc(sizeof(float) * B * H);
	work = malloc(sizeof(float) * tc_lstm_work_floats(N, B, H));
	fill_rand(r, x, (size_t) N * E);
	fill_rand(r, Wx, (size_t) E * G);
	fill_rand(r, Wh, (size_t) H * G);
	fill_rand(r, b, (size_t) G);
	fill_rand(r, dh, (size_t) B * H);
	for (int path = 0; path < 2; path++)
	{
		for (int i = 0; i < 8; i++)
			out[path][i] = calloc(sz[i], sizeof(float));
		tc_blas_use_naive(path == 1);
		tc_lstm_forward(out[path][0], out[path][1], out[path][2], out[path][3],
						x, Wx, Wh, b, &p, E, H);
		tc_lstm_backward(out[path][4], out[path][5], out[path][6], out[path][7],
						 dh, out[path][1], out[path][2], out[path][3], x, Wx,
						 Wh, &p, E, H, work);
	}
	tc_blas_use_naive(false);
	for (int i = 0; i < 8; i++)
	{
		char		name[64];

		snprintf(name, sizeof(name), "lstm %s: cblas path == naive path", names[i]);
		tc_check_tensor(name, out[0][i], out[1][i], sz[i], 1e-5, 1e-4);
		free(out[0][i]);
		free(out[1][i]);
	}
	free(x);
	free(Wx);
	free(Wh);
	free(b);
	free(dh);
	free(work);
}

int
main(void)
{
	TcRng		r;
	int			shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {13, 1, 9}, {1, 17, 11},
	{33, 17, 29}, {64, 96, 67}, {5, 512, 128}};

	tc_rng_seed(&r, 2024);
	tc_blas_set_threads(1);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (int t = 0; t < 4; t++)
			check_gemm(&r, t & 1, t & 2, shapes[s][0], shapes[s][1],
					   shapes[s][2], s % 2 ? 1.0f : 1.5f,
					   t == 0 ? 0.0f : (t == 3 ? 0.5f : 1.0f));
	check_gemm(&r, true, true, 9, 11, 7, -0.75f, 0.0f);
	check_k0();
	check_lstm_paths(&r);
	return tc_test_done();
}
