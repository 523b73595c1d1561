/*
 * blas.c
 *	  The core's single doorway to BLAS: row-major single-precision GEMM
 *	  through cblas, and a plain-loop GEMM kept beside it as the algorithmic
 *	  reference (llm.c's matmul_forward_naive) and as a switchable fallback.
 *
 * This is the only file that includes <cblas.h> or calls cblas_* /
 * openblas_*.  It does not pick a thread count by itself: OpenBLAS keeps
 * its own default until tc_blas_set_threads is called from the owning
 * thread (the server calls it on first use in a backend, never in
 * _PG_init).
 *
 * Degenerate shapes (M, N or K of zero) are handled here so that cblas
 * never sees a leading dimension below one, which would make its xerbla
 * print to stderr.
 *
 * Loading: built with TC_BLAS_DLOPEN (the server build), OpenBLAS is not
 * linked but opened with dlopen on first use, in the calling process.  A
 * library that is preloaded into the postmaster (shared_preload_libraries)
 * must not start threads there: Debian's pthread OpenBLAS starts its thread
 * pool when it is loaded, the postmaster would then fork backends from a
 * multi-threaded process, and signals meant for the postmaster could land
 * on a BLAS thread.  Opening it lazily keeps OpenBLAS out of the postmaster
 * altogether; OPENBLAS_NUM_THREADS=1 is set (unless already set) before the
 * first open so that no pool is started until threads are asked for.  If
 * the library cannot be opened, tc_sgemm falls back to the plain loops.
 *
 * Memory: none allocated.
 */
#include <stdlib.h>
#include <cblas.h>
#ifdef TC_BLAS_DLOPEN
#include <dlfcn.h>
#endif

#include "textclf/kernels.h"

#ifdef TC_BLAS_DLOPEN
typedef void (*TcSgemmFn) (const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
						   const enum CBLAS_TRANSPOSE, const blasint,
						   const blasint, const blasint, const float,
						   const float *, const blasint, const float *,
						   const blasint, const float, float *,
						   const blasint);
typedef void (*TcSetThreadsFn) (int);

static int	tc_blas_state = 0;	/* 0 not tried, 1 loaded, -1 failed */
static TcSgemmFn tc_blas_sgemm = NULL;
static TcSetThreadsFn tc_blas_set_num_threads = NULL;

/* Open OpenBLAS on first use; false when it is not available. */
static bool
tc_blas_load(void)
{
	void	   *h;

	if (tc_blas_state != 0)
		return tc_blas_state > 0;
	tc_blas_state = -1;
	setenv("OPENBLAS_NUM_THREADS", "1", 0);
	h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		h = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		return false;
	tc_blas_sgemm = (TcSgemmFn) dlsym(h, "cblas_sgemm");
	tc_blas_set_num_threads = (TcSetThreadsFn) dlsym(h, "openblas_set_num_threads");
	if (tc_blas_sgemm == NULL || tc_blas_set_num_threads == NULL)
		return false;
	tc_blas_state = 1;
	return true;
}
#define cblas_sgemm tc_blas_sgemm
#define openblas_set_num_threads tc_blas_set_num_threads
#else
/* Linked directly (tests, the CSV harness): always available. */
static inline bool
tc_blas_load(void)
{
	return true;
}
#endif

/* When true, tc_sgemm runs the plain loops (tests only). */
static bool tc_blas_naive = false;

/* C (M,N) = beta * C, honouring BLAS's "beta == 0 overwrites" rule. */
static void
tc_scale_c(int M, int N, float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++)
	{
		float	   *c = C + (size_t) i * ldc;

		if (beta == 0.0f)
		{
			for (int j = 0; j < N; j++)
				c[j] = 0.0f;
		}
		else if (beta != 1.0f)
		{
			for (int j = 0; j < N; j++)
				c[j] *= beta;
		}
	}
}

/* C (M,N) = alpha op(A) (M,K) op(B) (K,N) + beta C by plain loops. */
void
tc_sgemm_naive(bool transA, bool transB, int M, int N, int K,
			   float alpha, const float *A, int lda,
			   const float *B, int ldb, float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++)
	{
		for (int j = 0; j < N; j++)
		{
			float		acc = 0.0f;
			float	   *c = C + (size_t) i * ldc + j;

			for (int k = 0; k < K; k++)
			{
				float		a = transA ? A[(size_t) k * lda + i] : A[(size_t) i * lda + k];
				float		b = transB ? B[(size_t) j * ldb + k] : B[(size_t) k * ldb + j];

				acc += a * b;
			}
			/* beta == 0 ignores C's old content, as BLAS does */
			*c = (beta == 0.0f) ? alpha * acc : alpha * acc + beta * *c;
		}
	}
}

/* C (M,N) = alpha op(A) (M,K) op(B) (K,N) + beta C through cblas_sgemm. */
void
tc_sgemm(bool transA, bool transB, int M, int N, int K,
		 float alpha, const float *A, int lda,
		 const float *B, int ldb, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0)
	{
		tc_scale_c(M, N, beta, C, ldc);
		return;
	}
	if (tc_blas_naive || !tc_blas_load())
	{
		tc_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb,
					   beta, C, ldc);
		return;
	}
	cblas_sgemm(CblasRowMajor,
				transA ? CblasTrans : CblasNoTrans,
				transB ? CblasTrans : CblasNoTrans,
				M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Route tc_sgemm to the plain loops (true) or to cblas (false). */
void
tc_blas_use_naive(bool naive)
{
	tc_blas_naive = naive;
}

/*
 * Set the number of OpenBLAS threads (values below 1 mean 1), and of the
 * core's own worker threads (kernels.h), which run the LSTM recurrence.
 */
void
tc_blas_set_threads(int n)
{
	/*
	 * With the fast kernels the core splits its products across its own
	 * threads (tc_sgemm_threads), and OpenBLAS stays single-threaded: its
	 * pool threads busy-wait after each call and would steal the cores
	 * from the recurrence.
	 */
	if (tc_blas_load())
		openblas_set_num_threads((n < 1 || tc_kernels_use_fast()) ? 1 : n);
	tc_kernels_set_threads(n);
}

/* One slice of a product split across threads. */
typedef struct SgemmTask
{
	bool		transA;
	bool		transB;
	int			M;
	int			N;
	int			K;
	float		alpha;
	const float *A;
	int			lda;
	const float *B;
	int			ldb;
	float		beta;
	float	   *C;
	int			ldc;
	bool		by_cols;		/* split N (else M) */
} SgemmTask;

/* Thread tid's slice: columns (or rows) rounded to multiples of 16. */
static void
tc_sgemm_task(void *arg, int tid, int n)
{
	SgemmTask  *a = arg;
	int			total = a->by_cols ? a->N : a->M;
	int			lo = (int) (((long long) total * tid / n) & ~15LL);
	int			hi = (tid == n - 1) ? total :
		(int) (((long long) total * (tid + 1) / n) & ~15LL);

	if (hi <= lo)
		return;
	if (a->by_cols)
		tc_sgemm(a->transA, a->transB, a->M, hi - lo, a->K, a->alpha,
				 a->A, a->lda,
				 a->transB ? a->B + (size_t) lo * a->ldb : a->B + lo, a->ldb,
				 a->beta, a->C + lo, a->ldc);
	else
		tc_sgemm(a->transA, a->transB, hi - lo, a->N, a->K, a->alpha,
				 a->transA ? a->A + lo : a->A + (size_t) lo * a->lda, a->lda,
				 a->B, a->ldb, a->beta, a->C + (size_t) lo * a->ldc, a->ldc);
}

/*
 * tc_sgemm split across `threads` of the core's threads (kernels.h), by
 * columns of C when N is the larger dimension, else by rows; each slice
 * is an independent single-threaded product.
 */
void
tc_sgemm_threads(int threads, bool transA, bool transB, int M, int N, int K,
				 float alpha, const float *A, int lda, const float *B,
				 int ldb, float beta, float *C, int ldc)
{
	SgemmTask	t;
	int			big = N > M ? N : M;

	if (threads <= 1 || big < 64)
	{
		tc_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	t.transA = transA;
	t.transB = transB;
	t.M = M;
	t.N = N;
	t.K = K;
	t.alpha = alpha;
	t.A = A;
	t.lda = lda;
	t.B = B;
	t.ldb = ldb;
	t.beta = beta;
	t.C = C;
	t.ldc = ldc;
	t.by_cols = N >= M;
	tc_run_parallel(threads, tc_sgemm_task, &t);
}
