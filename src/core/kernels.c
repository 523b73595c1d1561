/*
 * kernels.c
 *	  AVX2/FMA kernels of the LSTM recurrence and the gate activations, the
 *	  run-time switch between them and the plain reference, and the core's
 *	  worker threads (see kernels.h).
 *
 * Packed weights.  The step kernels read the recurrent kernel from panels
 * laid out for them, so that every load is a contiguous, aligned 32-byte
 * vector:
 *	 forward panel, per block of 8 hidden units u0..u0+7 (ceil(H/8) blocks):
 *	   K rows of 32 floats: [i(u0..u0+7) f(..) g(..) o(..)] of row k of W,
 *	   so one block yields all four gates of 8 units, and the activations
 *	   and the cell update run on registers (no (G) buffer round trip);
 *	 backward panel, per block of 32 hidden units (ceil(H/32) blocks):
 *	   G rows of 32 floats: Wh[u0..u0+31][g], i.e. Wh^T, for dh = dz Wh^T.
 * Units past H are zero-padded; the epilogues load and store partial
 * blocks with masks, so any H works.  Each kernel computes an (R rows) x
 * (32 columns) tile with R <= 3 (12 accumulators), reusing every weight
 * vector for R rows.
 *
 * Activations: exp(y) = 2^n (1 + p(r)), y = n ln2 + r with |r| <= ln2/2
 * (Cody-Waite split of ln2), p(r) = e^r - 1 by its Taylor polynomial of
 * degree 7 (truncation < 2e-8 relative).  sigmoid(x) = 1 / (1 + exp(-x)),
 * tanh(|x|) = -expm1(-2|x|) / (2 + expm1(-2|x|)) with expm1 = 2^n p +
 * (2^n - 1), exact in relative terms near 0.  Inputs are clamped to
 * [-87, 88] before exp (NaN propagates).
 *
 * Not here: the GEMMs over whole batches (blas.c), the batch bookkeeping
 * (lstm.c, model.c).  The reference path stays in lstm.c and model.c.
 *
 * Memory: nothing from the caller's allocator; panels are caller-owned.
 * The helper threads of tc_run_parallel (a persistent pool, started on
 * first use) get their stacks from pthreads and live until process exit.
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "textclf/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TC_HAVE_X86 1
#define TC_AVX2 __attribute__((target("avx2,fma")))
#define TC_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#else
#define TC_HAVE_X86 0
#endif

static int	tc_fast_state = -1;	/* -1 unknown, 0 no, 1 yes */
static bool tc_force_ref = false;
static int	tc_nthreads = 1;

/* Does the CPU have avx2 and fma? (cached) */
bool
tc_kernels_fast_available(void)
{
	if (tc_fast_state < 0)
	{
#if TC_HAVE_X86
		__builtin_cpu_init();
		tc_fast_state = (__builtin_cpu_supports("avx2") &&
						 __builtin_cpu_supports("fma")) ? 1 : 0;
#else
		tc_fast_state = 0;
#endif
	}
	return tc_fast_state == 1;
}

/* Will the fast kernels run? */
bool
tc_kernels_use_fast(void)
{
	return !tc_force_ref && tc_kernels_fast_available();
}

/* Force the reference kernels on or off. */
void
tc_kernels_force_reference(bool force)
{
	tc_force_ref = force;
}

/* Number of worker threads for training (clamped to 1..64). */
void
tc_kernels_set_threads(int n)
{
	tc_nthreads = n < 1 ? 1 : (n > TC_MAX_THREADS ? TC_MAX_THREADS : n);
}

/* Current number of worker threads. */
int
tc_kernels_threads(void)
{
	return tc_nthreads;
}

/* ---------------------------------------------------------------------
 * Worker threads
 * ---------------------------------------------------------------------
 */

/*
 * A small persistent pool: helper threads are started on first use (with
 * every signal blocked, so that signal handlers, e.g. the server's, only
 * ever run on the calling thread) and then wait on a condition variable
 * for the next job; they live until the process exits.  Keeping them
 * avoids creating threads (and OpenBLAS's per-thread buffers) four times
 * per batch.  One caller at a time: the core runs jobs only from the
 * thread that owns the model, and tasks never start jobs themselves.
 */
static struct
{
	pthread_mutex_t mu;
	pthread_cond_t go;			/* a new job (gen changed) */
	pthread_cond_t done;		/* pending reached zero */
	int			alive;			/* helpers 1 .. alive are running */
	bool		failed;			/* a helper could not be started */
	long		gen;			/* job number */
	TcTaskFn	fn;
	void	   *arg;
	int			n;				/* threads of the current job */
	int			pending;		/* helpers still running it */
	pthread_t	th[TC_MAX_THREADS];
	int			cap;			/* tests: helpers usable (0: no limit) */
}			tc_pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
	.go = PTHREAD_COND_INITIALIZER,
.done = PTHREAD_COND_INITIALIZER};

/* Helper thread tid (intptr) of the pool: run the shares of tid. */
static void *
tc_pool_main(void *p)
{
	int			tid = (int) (intptr_t) p;
	long		seen = 0;

	pthread_mutex_lock(&tc_pool.mu);
	for (;;)
	{
		TcTaskFn	fn;
		void	   *arg;
		int			n;

		while (tc_pool.gen == seen)
			pthread_cond_wait(&tc_pool.go, &tc_pool.mu);
		seen = tc_pool.gen;
		if (tid >= tc_pool.n)
			continue;
		fn = tc_pool.fn;
		arg = tc_pool.arg;
		n = tc_pool.n;
		pthread_mutex_unlock(&tc_pool.mu);
		fn(arg, tid, n);
		pthread_mutex_lock(&tc_pool.mu);
		if (--tc_pool.pending == 0)
			pthread_cond_signal(&tc_pool.done);
	}
	return NULL;
}

/* Start helpers up to want - 1 (called with the pool lock held). */
static void
tc_pool_grow(int want)
{
	sigset_t	all;
	sigset_t	old;
	pthread_attr_t attr;
	bool		have_attr;

	if (tc_pool.failed || tc_pool.alive >= want - 1)
		return;
	have_attr = pthread_attr_init(&attr) == 0;
	if (have_attr)
		pthread_attr_setstacksize(&attr, 256 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (tc_pool.alive < want - 1)
	{
		int			tid = tc_pool.alive + 1;

		if (pthread_create(&tc_pool.th[tid], have_attr ? &attr : NULL,
						   tc_pool_main, (void *) (intptr_t) tid) != 0)
		{
			tc_pool.failed = true;
			break;
		}
		tc_pool.alive = tid;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (have_attr)
		pthread_attr_destroy(&attr);
}

/* For tests: use at most n helpers, as if no more could be started (0: all). */
void
tc_kernels_limit_helpers(int n)
{
	pthread_mutex_lock(&tc_pool.mu);
	tc_pool.cap = n < 0 ? 0 : n;
	pthread_mutex_unlock(&tc_pool.mu);
}

/*
 * Run fn on n threads: the caller is thread 0, pool helpers 1 .. n-1;
 * shares of helpers that could not be started run on the caller.  Returns
 * when every share is done.
 */
void
tc_run_parallel(int nthreads, TcTaskFn fn, void *arg)
{
	int			helpers;

	if (nthreads > TC_MAX_THREADS)
		nthreads = TC_MAX_THREADS;
	if (nthreads <= 1)
	{
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&tc_pool.mu);
	tc_pool_grow(nthreads);
	helpers = tc_pool.alive < nthreads - 1 ? tc_pool.alive : nthreads - 1;
	if (tc_pool.cap > 0 && helpers > tc_pool.cap)
		helpers = tc_pool.cap;
	tc_pool.fn = fn;
	tc_pool.arg = arg;
	tc_pool.n = helpers + 1;
	tc_pool.pending = helpers;
	tc_pool.gen++;
	pthread_cond_broadcast(&tc_pool.go);
	pthread_mutex_unlock(&tc_pool.mu);

	/* with fewer helpers than asked, the shares are re-cut for helpers + 1 */
	fn(arg, 0, helpers + 1);

	pthread_mutex_lock(&tc_pool.mu);
	while (tc_pool.pending > 0)
		pthread_cond_wait(&tc_pool.done, &tc_pool.mu);
	pthread_mutex_unlock(&tc_pool.mu);
}

/* ---------------------------------------------------------------------
 * Packing
 * ---------------------------------------------------------------------
 */

/* p rounded up to a 32-byte boundary (buffers carry 8 floats of slack). */
static inline float *
tc_align32(const float *p)
{
	uintptr_t	a = ((uintptr_t) p + 31) & ~(uintptr_t) 31;

	return (float *) a;
}

/*
 * Blocks [ub0, ub1) of the forward panel (ceil(H/8), K0 + K1, 32) from
 * W0 (K0,G) then W1 (K1,G); W0 may be NULL with K0 = 0.
 */
static void
tc_pack_gate_panel(float *dst, const float *W0, int K0, const float *W1,
				   int K1, int H, int ub0, int ub1)
{
	int			G = 4 * H;
	int			K = K0 + K1;

	for (int ub = ub0; ub < ub1; ub++)
		for (int k = 0; k < K; k++)
		{
			const float *w = (k < K0) ? W0 + (size_t) k * G :
				W1 + (size_t) (k - K0) * G;
			float	   *d = dst + ((size_t) ub * K + k) * 32;

			for (int q = 0; q < 4; q++)
				for (int j = 0; j < 8; j++)
				{
					int			u = ub * 8 + j;

					d[q * 8 + j] = (u < H) ? w[q * H + u] : 0.0f;
				}
		}
}

/* Floats of the training panels: forward (H rows) + backward (G rows), + slack. */
size_t
tc_lstm_packed_floats(int H)
{
	size_t		nub = (size_t) (H + 7) / 8;
	size_t		nhb = (size_t) (H + 31) / 32;

	return nub * (size_t) H * 32 + nhb * 4 * (size_t) H * 32 + 8;
}

/* Arguments of tc_pack_task. */
typedef struct PackTask
{
	float	   *packed;			/* tc_lstm_packed_floats(H) */
	const float *Wh;			/* (H,G) */
	int			H;
} PackTask;

/*
 * Share tid of n of tc_lstm_pack: blocks [ub0, ub1) of the forward panel
 * and rows [g0, g1) of every block of the backward panel (pure copies).
 */
static void
tc_pack_task(void *arg, int tid, int n)
{
	PackTask   *a = arg;
	int			H = a->H;
	int			G = 4 * H;
	int			nub = (H + 7) / 8;
	int			nhb = (H + 31) / 32;
	int			ub0 = (int) ((long long) nub * tid / n);
	int			ub1 = (int) ((long long) nub * (tid + 1) / n);
	int			g0 = (int) ((long long) G * tid / n);
	int			g1 = (int) ((long long) G * (tid + 1) / n);
	float	   *f = tc_align32(a->packed);
	float	   *bp = f + (size_t) nub * H * 32;

	tc_pack_gate_panel(f, NULL, 0, a->Wh, H, H, ub0, ub1);
	for (int hb = 0; hb < nhb; hb++)
		for (int g = g0; g < g1; g++)
		{
			float	   *d = bp + ((size_t) hb * G + g) * 32;

			for (int j = 0; j < 32; j++)
			{
				int			u = hb * 32 + j;

				d[j] = (u < H) ? a->Wh[(size_t) u * G + g] : 0.0f;
			}
		}
}

/*
 * Pack Wh (H,G) into the forward and backward panels, split across the
 * core's threads (tc_kernels_threads); the same bytes at any count.
 */
void
tc_lstm_pack(float *packed, const float *Wh, int H)
{
	PackTask	task;

	task.packed = packed;
	task.Wh = Wh;
	task.H = H;
	tc_run_parallel(tc_kernels_threads(), tc_pack_task, &task);
}

/* Floats of the inference panel (E + H rows), + slack. */
size_t
tc_lstm_infer_panel_floats(int E, int H)
{
	return (size_t) ((H + 7) / 8) * (size_t) (E + H) * 32 + 8;
}

/* Pack Wx (E,G) over Wh (H,G) into the inference panel. */
void
tc_lstm_infer_pack(float *panel, const float *Wx, const float *Wh, int E,
				   int H)
{
	tc_pack_gate_panel(tc_align32(panel), Wx, E, Wh, H, H, 0, (H + 7) / 8);
}

#if TC_HAVE_X86

/* ---------------------------------------------------------------------
 * AVX2 building blocks
 * ---------------------------------------------------------------------
 */

/* -1 for the first n of 8 lanes (n in 0..8) */
static const int32_t tc_mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
0, 0, 0, 0, 0, 0, 0, 0};

/* Lane mask of the first n lanes. */
TC_AVX2_INLINE __m256i
v_mask(int n)
{
	return _mm256_loadu_si256((const __m256i *) (tc_mask_tab + 8 - n));
}

/* Load n (1..8) floats from p, zeros after. */
TC_AVX2_INLINE __m256
v_load(const float *p, int n)
{
	if (n >= 8)
		return _mm256_loadu_ps(p);
	return _mm256_maskload_ps(p, v_mask(n));
}

/* Store the first n (1..8) lanes of v to p. */
TC_AVX2_INLINE void
v_store(float *p, __m256 v, int n)
{
	if (n >= 8)
		_mm256_storeu_ps(p, v);
	else
		_mm256_maskstore_ps(p, v_mask(n), v);
}

/* s = 2^n and p = e^r - 1 with y = n ln2 + r (y clamped to [-87, 88]). */
TC_AVX2_INLINE void
v_exp_parts(__m256 y, __m256 *s, __m256 *p)
{
	__m256		n;
	__m256		r;
	__m256		q;

	/* operand order keeps NaN: max/min return the second operand on NaN */
	y = _mm256_min_ps(_mm256_set1_ps(88.0f),
					  _mm256_max_ps(_mm256_set1_ps(-87.0f), y));
	n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(1.44269504088896341f)),
						_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), y);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	q = _mm256_set1_ps(1.0f / 5040.0f);
	q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 720.0f));
	q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 120.0f));
	q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 24.0f));
	q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 6.0f));
	q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.5f));
	*p = _mm256_fmadd_ps(q, _mm256_mul_ps(r, r), r);
	*s = _mm256_castsi256_ps(_mm256_slli_epi32(
								 _mm256_add_epi32(_mm256_cvtps_epi32(n),
												  _mm256_set1_epi32(127)), 23));
}

/* 1 / d for d in [1, 1e38]: reciprocal estimate and one Newton step (~2e-7 relative) */
TC_AVX2_INLINE __m256
v_recip(__m256 d)
{
	__m256		r = _mm256_rcp_ps(d);

	return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(1.0f)), r);
}

/* sigmoid(x) = 1 / (1 + exp(-x)) */
TC_AVX2_INLINE __m256
v_sigmoid(__m256 x)
{
	__m256		s;
	__m256		p;
	__m256		one = _mm256_set1_ps(1.0f);

	v_exp_parts(_mm256_sub_ps(_mm256_setzero_ps(), x), &s, &p);
	/* the Newton step can overshoot 1 by an ulp: clamp (NaN stays NaN) */
	return _mm256_min_ps(one, v_recip(_mm256_add_ps(one, _mm256_fmadd_ps(s, p, s))));
}

/* tanh(x) = sign(x) (-expm1(-2|x|)) / (2 + expm1(-2|x|)) */
TC_AVX2_INLINE __m256
v_tanh(__m256 x)
{
	__m256		sign = _mm256_set1_ps(-0.0f);
	__m256		a = _mm256_andnot_ps(sign, x);
	__m256		s;
	__m256		p;
	__m256		em1;
	__m256		t;

	v_exp_parts(_mm256_mul_ps(a, _mm256_set1_ps(-2.0f)), &s, &p);
	em1 = _mm256_fmadd_ps(s, p, _mm256_sub_ps(s, _mm256_set1_ps(1.0f)));
	t = _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), em1),
					  v_recip(_mm256_add_ps(_mm256_set1_ps(2.0f), em1)));
	/* tanh(a) rounds to 1 for a > 9.01; the Newton step may stop an ulp short */
	t = _mm256_blendv_ps(t, _mm256_set1_ps(1.0f),
						 _mm256_cmp_ps(a, _mm256_set1_ps(9.1f), _CMP_GT_OQ));
	return _mm256_or_ps(t, _mm256_and_ps(x, sign));
}

/* y (n) += x (n), AVX2 */
static TC_AVX2 void
tc_vec_add_avx2(float *y, const float *x, size_t n)
{
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i),
											  _mm256_loadu_ps(x + i)));
	for (; i < n; i++)
		y[i] += x[i];
}

/* y (n) = sigmoid(x (n)), AVX2 */
static TC_AVX2 void
tc_sigmoid_vec_avx2(float *y, const float *x, size_t n)
{
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, v_sigmoid(_mm256_loadu_ps(x + i)));
	if (i < n)
		v_store(y + i, v_sigmoid(v_load(x + i, (int) (n - i))), (int) (n - i));
}

/* y (n) = tanh(x (n)), AVX2 */
static TC_AVX2 void
tc_tanh_vec_avx2(float *y, const float *x, size_t n)
{
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, v_tanh(_mm256_loadu_ps(x + i)));
	if (i < n)
		v_store(y + i, v_tanh(v_load(x + i, (int) (n - i))), (int) (n - i));
}

/* ---------------------------------------------------------------------
 * LSTM forward step
 * ---------------------------------------------------------------------
 */

/*
 * Epilogue of one row of a forward tile: gates z (G, Keras layout, at
 * unit u0) get the products a0..a3, then the activations and the cell
 * update; n (1..8) units are valid.
 */
TC_AVX2_INLINE void
fwd_epilogue(float *z, float *c, float *h, const float *cprev, __m256 a0,
			 __m256 a1, __m256 a2, __m256 a3, int n, int H)
{
	__m256		ig = v_sigmoid(_mm256_add_ps(v_load(z, n), a0));
	__m256		fg = v_sigmoid(_mm256_add_ps(v_load(z + H, n), a1));
	__m256		gg = v_tanh(_mm256_add_ps(v_load(z + 2 * H, n), a2));
	__m256		og = v_sigmoid(_mm256_add_ps(v_load(z + 3 * H, n), a3));
	__m256		cc = _mm256_mul_ps(ig, gg);

	if (cprev != NULL)
		cc = _mm256_fmadd_ps(fg, v_load(cprev, n), cc);
	v_store(z, ig, n);
	v_store(z + H, fg, n);
	v_store(z + 2 * H, gg, n);
	v_store(z + 3 * H, og, n);
	v_store(c, cc, n);
	v_store(h, _mm256_mul_ps(og, v_tanh(cc)), n);
}

/* acc0..acc3 += x * (w0..w3): one row of a tile, one input */
#define TC_FMA4(acc, x) \
	do { \
		acc##0 = _mm256_fmadd_ps((x), w0, acc##0); \
		acc##1 = _mm256_fmadd_ps((x), w1, acc##1); \
		acc##2 = _mm256_fmadd_ps((x), w2, acc##2); \
		acc##3 = _mm256_fmadd_ps((x), w3, acc##3); \
	} while (0)

/* w0..w3 = the 32 floats of row k of panel block pb */
#define TC_LOADW(pb, k) \
	const float *w_ = (pb) + (size_t) (k) * 32; \
	__m256		w0 = _mm256_load_ps(w_); \
	__m256		w1 = _mm256_load_ps(w_ + 8); \
	__m256		w2 = _mm256_load_ps(w_ + 16); \
	__m256		w3 = _mm256_load_ps(w_ + 24)

/*
 * Forward tile of 3 rows x one 8-unit block u0: hprev (3,H) times the
 * block's panel pb (H,32), then the epilogue.  gates (3,G) in/out, c, h
 * (3,H) out, cprev (3,H) or NULL (with hprev NULL: step 0).
 */
static TC_AVX2 void
fwd_tile3(float *gates, float *c, float *h, const float *cprev,
		  const float *hprev, const float *pb, int u0, int H)
{
	int			G = 4 * H;
	int			n = H - u0 < 8 ? H - u0 : 8;
	__m256		a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	__m256		b0 = a0, b1 = a0, b2 = a0, b3 = a0;
	__m256		c0 = a0, c1 = a0, c2 = a0, c3 = a0;

	if (hprev != NULL)
	{
		const float *h0 = hprev;
		const float *h1 = hprev + H;
		const float *h2 = hprev + 2 * H;

		for (int k = 0; k < H; k++)
		{
			TC_LOADW(pb, k);
			TC_FMA4(a, _mm256_broadcast_ss(h0 + k));
			TC_FMA4(b, _mm256_broadcast_ss(h1 + k));
			TC_FMA4(c, _mm256_broadcast_ss(h2 + k));
		}
	}
	fwd_epilogue(gates + u0, c + u0, h + u0, cprev ? cprev + u0 : NULL,
				 a0, a1, a2, a3, n, H);
	fwd_epilogue(gates + G + u0, c + H + u0, h + H + u0,
				 cprev ? cprev + H + u0 : NULL, b0, b1, b2, b3, n, H);
	fwd_epilogue(gates + 2 * G + u0, c + 2 * H + u0, h + 2 * H + u0,
				 cprev ? cprev + 2 * H + u0 : NULL, c0, c1, c2, c3, n, H);
}

/* fwd_tile3 for 2 rows */
static TC_AVX2 void
fwd_tile2(float *gates, float *c, float *h, const float *cprev,
		  const float *hprev, const float *pb, int u0, int H)
{
	int			G = 4 * H;
	int			n = H - u0 < 8 ? H - u0 : 8;
	__m256		a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	__m256		b0 = a0, b1 = a0, b2 = a0, b3 = a0;

	if (hprev != NULL)
	{
		const float *h0 = hprev;
		const float *h1 = hprev + H;

		for (int k = 0; k < H; k++)
		{
			TC_LOADW(pb, k);
			TC_FMA4(a, _mm256_broadcast_ss(h0 + k));
			TC_FMA4(b, _mm256_broadcast_ss(h1 + k));
		}
	}
	fwd_epilogue(gates + u0, c + u0, h + u0, cprev ? cprev + u0 : NULL,
				 a0, a1, a2, a3, n, H);
	fwd_epilogue(gates + G + u0, c + H + u0, h + H + u0,
				 cprev ? cprev + H + u0 : NULL, b0, b1, b2, b3, n, H);
}

/*
 * fwd_tile3 for 1 row.  The same accumulation order as the 2- and 3-row
 * tiles (one chain per gate), so a row's result never depends on how the
 * rows were grouped, nor therefore on the thread count.
 */
static TC_AVX2 void
fwd_tile1(float *gates, float *c, float *h, const float *cprev,
		  const float *hprev, const float *pb, int u0, int H)
{
	int			n = H - u0 < 8 ? H - u0 : 8;
	__m256		a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;

	if (hprev != NULL)
	{
		for (int k = 0; k < H; k++)
		{
			TC_LOADW(pb, k);
			TC_FMA4(a, _mm256_broadcast_ss(hprev + k));
		}
	}
	fwd_epilogue(gates + u0, c + u0, h + u0, cprev ? cprev + u0 : NULL,
				 a0, a1, a2, a3, n, H);
}

/*
 * fwd_tile1 over two consecutive 8-unit blocks (panel blocks pb and
 * pb + H * 32, units u0 .. u0 + 15; H - u0 > 8): eight independent FMA
 * chains instead of four, which a lone row needs to keep the FMA units
 * busy (four chains wait on the FMA latency).  Each output keeps the
 * accumulation order of fwd_tile1, so the results are the same bits.
 */
static TC_AVX2 void
fwd_tile1x2(float *gates, float *c, float *h, const float *cprev,
			const float *hprev, const float *pb, int u0, int H)
{
	const float *pb2 = pb + (size_t) H * 32;
	int			n2 = H - u0 - 8 < 8 ? H - u0 - 8 : 8;
	__m256		a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	__m256		b0 = a0, b1 = a0, b2 = a0, b3 = a0;

	if (hprev != NULL)
	{
		for (int k = 0; k < H; k++)
		{
			__m256		x = _mm256_broadcast_ss(hprev + k);

			{
				TC_LOADW(pb, k);
				TC_FMA4(a, x);
			}
			{
				TC_LOADW(pb2, k);
				TC_FMA4(b, x);
			}
		}
	}
	fwd_epilogue(gates + u0, c + u0, h + u0, cprev ? cprev + u0 : NULL,
				 a0, a1, a2, a3, 8, H);
	fwd_epilogue(gates + u0 + 8, c + u0 + 8, h + u0 + 8,
				 cprev ? cprev + u0 + 8 : NULL, b0, b1, b2, b3, n2, H);
}

/*
 * Forward step of R rows: blocks outer (panel block stays in L1), rows
 * inner, in tiles of 3 rows.  A remainder of 2 rows takes fwd_tile2 per
 * block; a remainder of 1 row takes fwd_tile1x2 per pair of blocks.
 */
static TC_AVX2 void
tc_lstm_fwd_rows_avx2(float *gates, float *c, float *h, const float *cprev,
					  const float *hprev, int R, const float *packed, int H)
{
	const float *panel = tc_align32(packed);
	int			G = 4 * H;
	int			nub = (H + 7) / 8;
	int			R3 = R - R % 3;

	for (int ub = 0; ub < nub; ub++)
	{
		const float *pb = panel + (size_t) ub * H * 32;
		int			u0 = ub * 8;
		int			r = R3;

		for (int t = 0; t < R3; t += 3)
			fwd_tile3(gates + (size_t) t * G, c + (size_t) t * H,
					  h + (size_t) t * H,
					  cprev ? cprev + (size_t) t * H : NULL,
					  hprev ? hprev + (size_t) t * H : NULL, pb, u0, H);
		if (R - r == 2)
			fwd_tile2(gates + (size_t) r * G, c + (size_t) r * H,
					  h + (size_t) r * H,
					  cprev ? cprev + (size_t) r * H : NULL,
					  hprev ? hprev + (size_t) r * H : NULL, pb, u0, H);
		else if (R - r == 1)
		{
			/* the lone row covers this block and the next one */
			if (ub + 1 < nub && (ub & 1) == 0)
				fwd_tile1x2(gates + (size_t) r * G, c + (size_t) r * H,
							h + (size_t) r * H,
							cprev ? cprev + (size_t) r * H : NULL,
							hprev ? hprev + (size_t) r * H : NULL, pb, u0, H);
			else if ((ub & 1) == 0)
				fwd_tile1(gates + (size_t) r * G, c + (size_t) r * H,
						  h + (size_t) r * H,
						  cprev ? cprev + (size_t) r * H : NULL,
						  hprev ? hprev + (size_t) r * H : NULL, pb, u0, H);
		}
	}
}

/* ---------------------------------------------------------------------
 * Input projection of a step's rows
 * ---------------------------------------------------------------------
 */

/* Lanes of the four vectors of a 32-column block starting at c0 of G. */
#define TC_COLS32(c0, G, n0, n1, n2, n3) \
	int			nc_ = (G) - (c0) < 32 ? (G) - (c0) : 32; \
	int			n0 = nc_ < 8 ? nc_ : 8; \
	int			n1 = nc_ <= 8 ? 0 : (nc_ < 16 ? nc_ - 8 : 8); \
	int			n2 = nc_ <= 16 ? 0 : (nc_ < 24 ? nc_ - 16 : 8); \
	int			n3 = nc_ <= 24 ? 0 : nc_ - 24

/* acc0..acc3 = the 32 (n0..n3) floats of p */
#define TC_LOAD4(acc, p) \
	__m256		acc##0 = v_load((p), n0); \
	__m256		acc##1 = v_load((p) + 8, n1); \
	__m256		acc##2 = v_load((p) + 16, n2); \
	__m256		acc##3 = v_load((p) + 24, n3)

/* store acc0..acc3 to the 32 (n0..n3) floats of p */
#define TC_STORE4(p, acc) \
	do { \
		v_store((p), acc##0, n0); \
		v_store((p) + 8, acc##1, n1); \
		v_store((p) + 16, acc##2, n2); \
		v_store((p) + 24, acc##3, n3); \
	} while (0)

/*
 * z (R,G) = b + x (R,E) Wx (E,G): each output one FMA chain from b over
 * k = 0 .. E-1 in order, so a row's result does not depend on how many
 * rows come with it (OpenBLAS's does: it depends on where the row falls
 * in its tiles).  Tiles of 3 rows x 32 columns (12 chains); a remainder
 * row takes the same chains alone.
 */
static TC_AVX2 void
tc_proj_rows_avx2(float *z, const float *x, const float *Wx, const float *b,
				  int R, int E, int G)
{
	int			r = 0;

	for (; r + 3 <= R; r += 3)
	{
		const float *x0 = x + (size_t) r * E;

		for (int c0 = 0; c0 < G; c0 += 32)
		{
			TC_COLS32(c0, G, n0, n1, n2, n3);
			TC_LOAD4(a, b + c0);
			__m256		e0 = a0, e1 = a1, e2 = a2, e3 = a3;
			__m256		f0 = a0, f1 = a1, f2 = a2, f3 = a3;

			for (int k = 0; k < E; k++)
			{
				TC_LOAD4(w, Wx + (size_t) k * G + c0);

				TC_FMA4(a, _mm256_broadcast_ss(x0 + k));
				TC_FMA4(e, _mm256_broadcast_ss(x0 + E + k));
				TC_FMA4(f, _mm256_broadcast_ss(x0 + 2 * E + k));
			}
			TC_STORE4(z + (size_t) r * G + c0, a);
			TC_STORE4(z + (size_t) (r + 1) * G + c0, e);
			TC_STORE4(z + (size_t) (r + 2) * G + c0, f);
		}
	}
	for (; r < R; r++)
	{
		const float *x0 = x + (size_t) r * E;

		for (int c0 = 0; c0 < G; c0 += 32)
		{
			TC_COLS32(c0, G, n0, n1, n2, n3);
			TC_LOAD4(a, b + c0);

			for (int k = 0; k < E; k++)
			{
				TC_LOAD4(w, Wx + (size_t) k * G + c0);

				TC_FMA4(a, _mm256_broadcast_ss(x0 + k));
			}
			TC_STORE4(z + (size_t) r * G + c0, a);
		}
	}
}

#undef TC_COLS32
#undef TC_LOAD4
#undef TC_STORE4

/* ---------------------------------------------------------------------
 * LSTM backward step
 * ---------------------------------------------------------------------
 */

/* Elementwise backward of one row: dz (G) from dh, dc (H) (dc updated). */
static TC_AVX2 void
bwd_elem_row(float *dz, const float *dh, float *dc, const float *a,
			 const float *c, const float *cprev, int H)
{
	__m256		one = _mm256_set1_ps(1.0f);

	for (int u0 = 0; u0 < H; u0 += 8)
	{
		int			n = H - u0 < 8 ? H - u0 : 8;
		__m256		ig = v_load(a + u0, n);
		__m256		fg = v_load(a + H + u0, n);
		__m256		gg = v_load(a + 2 * H + u0, n);
		__m256		og = v_load(a + 3 * H + u0, n);
		__m256		tc = v_tanh(v_load(c + u0, n));
		__m256		dhv = v_load(dh + u0, n);
		__m256		dcc = _mm256_fmadd_ps(_mm256_mul_ps(dhv, og),
										  _mm256_fnmadd_ps(tc, tc, one),
										  v_load(dc + u0, n));
		__m256		cp = cprev ? v_load(cprev + u0, n) : _mm256_setzero_ps();

		v_store(dz + u0, _mm256_mul_ps(_mm256_mul_ps(dcc, gg),
									   _mm256_mul_ps(ig, _mm256_sub_ps(one, ig))), n);
		v_store(dz + H + u0, _mm256_mul_ps(_mm256_mul_ps(dcc, cp),
										   _mm256_mul_ps(fg, _mm256_sub_ps(one, fg))), n);
		v_store(dz + 2 * H + u0, _mm256_mul_ps(_mm256_mul_ps(dcc, ig),
											   _mm256_fnmadd_ps(gg, gg, one)), n);
		v_store(dz + 3 * H + u0, _mm256_mul_ps(_mm256_mul_ps(dhv, tc),
											   _mm256_mul_ps(og, _mm256_sub_ps(one, og))), n);
		v_store(dc + u0, _mm256_mul_ps(dcc, fg), n);
	}
}

/* Store acc0..acc3 (32 units from u0) into the row dh (H). */
TC_AVX2_INLINE void
bwd_store(float *dh, __m256 a0, __m256 a1, __m256 a2, __m256 a3, int u0,
		  int H)
{
	v_store(dh + u0, a0, H - u0);
	if (H - u0 > 8)
		v_store(dh + u0 + 8, a1, H - u0 - 8);
	if (H - u0 > 16)
		v_store(dh + u0 + 16, a2, H - u0 - 16);
	if (H - u0 > 24)
		v_store(dh + u0 + 24, a3, H - u0 - 24);
}

/* Tile of 3 rows x 32 units u0.. of dh (3,H) = dz (3,G) Wh^T (panel pb (G,32)). */
static TC_AVX2 void
bwd_tile3(float *dh, const float *dz, const float *pb, int u0, int H)
{
	int			G = 4 * H;
	const float *d0 = dz;
	const float *d1 = dz + G;
	const float *d2 = dz + 2 * G;
	__m256		a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	__m256		b0 = a0, b1 = a0, b2 = a0, b3 = a0;
	__m256		c0 = a0, c1 = a0, c2 = a0, c3 = a0;

	for (int g = 0; g < G; g++)
	{
		TC_LOADW(pb, g);
		TC_FMA4(a, _mm256_broadcast_ss(d0 + g));
		TC_FMA4(b, _mm256_broadcast_ss(d1 + g));
		TC_FMA4(c, _mm256_broadcast_ss(d2 + g));
	}
	bwd_store(dh, a0, a1, a2, a3, u0, H);
	bwd_store(dh + H, b0, b1, b2, b3, u0, H);
	bwd_store(dh + 2 * H, c0, c1, c2, c3, u0, H);
}

/* bwd_tile3 for 2 rows */
static TC_AVX2 void
bwd_tile2(float *dh, const float *dz, const float *pb, int u0, int H)
{
	int			G = 4 * H;
	const float *d0 = dz;
	const float *d1 = dz + G;
	__m256		a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	__m256		b0 = a0, b1 = a0, b2 = a0, b3 = a0;

	for (int g = 0; g < G; g++)
	{
		TC_LOADW(pb, g);
		TC_FMA4(a, _mm256_broadcast_ss(d0 + g));
		TC_FMA4(b, _mm256_broadcast_ss(d1 + g));
	}
	bwd_store(dh, a0, a1, a2, a3, u0, H);
	bwd_store(dh + H, b0, b1, b2, b3, u0, H);
}

/* bwd_tile3 for 1 row (same accumulation order, see fwd_tile1) */
static TC_AVX2 void
bwd_tile1(float *dh, const float *dz, const float *pb, int u0, int H)
{
	int			G = 4 * H;
	__m256		a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;

	for (int g = 0; g < G; g++)
	{
		TC_LOADW(pb, g);
		TC_FMA4(a, _mm256_broadcast_ss(dz + g));
	}
	bwd_store(dh, a0, a1, a2, a3, u0, H);
}

/*
 * bwd_tile1 over two consecutive 32-unit blocks (panel blocks pb and
 * pb + G * 32, units u0 .. u0 + 63; H - u0 > 32): eight FMA chains, the
 * same accumulation order per output as bwd_tile1 (see fwd_tile1x2).
 */
static TC_AVX2 void
bwd_tile1x2(float *dh, const float *dz, const float *pb, int u0, int H)
{
	int			G = 4 * H;
	const float *pb2 = pb + (size_t) G * 32;
	__m256		a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	__m256		b0 = a0, b1 = a0, b2 = a0, b3 = a0;

	for (int g = 0; g < G; g++)
	{
		__m256		x = _mm256_broadcast_ss(dz + g);

		{
			TC_LOADW(pb, g);
			TC_FMA4(a, x);
		}
		{
			TC_LOADW(pb2, g);
			TC_FMA4(b, x);
		}
	}
	bwd_store(dh, a0, a1, a2, a3, u0, H);
	bwd_store(dh, b0, b1, b2, b3, u0 + 32, H);
}

/*
 * Backward step of R rows: elementwise, then (carry) dh = dz Wh^T in
 * tiles of 3 rows; remainders as in tc_lstm_fwd_rows_avx2.
 */
static TC_AVX2 void
tc_lstm_bwd_rows_avx2(float *dz, float *dh, float *dc, const float *gates,
					  const float *c, const float *cprev, int R,
					  const float *packed, int H, bool carry)
{
	int			G = 4 * H;
	int			nhb = (H + 31) / 32;
	const float *bp = tc_align32(packed) + (size_t) ((H + 7) / 8) * H * 32;

	for (int r = 0; r < R; r++)
		bwd_elem_row(dz + (size_t) r * G, dh + (size_t) r * H,
					 dc + (size_t) r * H, gates + (size_t) r * G,
					 c + (size_t) r * H,
					 cprev ? cprev + (size_t) r * H : NULL, H);
	if (!carry)
		return;
	for (int hb = 0; hb < nhb; hb++)
	{
		const float *pb = bp + (size_t) hb * G * 32;
		int			r = 0;

		for (; r + 3 <= R; r += 3)
			bwd_tile3(dh + (size_t) r * H, dz + (size_t) r * G, pb, hb * 32, H);
		if (R - r == 2)
			bwd_tile2(dh + (size_t) r * H, dz + (size_t) r * G, pb, hb * 32, H);
		else if (R - r == 1 && (hb & 1) == 0)
		{
			/* the lone row covers this block and the next one */
			if (hb + 1 < nhb)
				bwd_tile1x2(dh + (size_t) r * H, dz + (size_t) r * G, pb,
							hb * 32, H);
			else
				bwd_tile1(dh + (size_t) r * H, dz + (size_t) r * G, pb,
						  hb * 32, H);
		}
	}
}

/* ---------------------------------------------------------------------
 * Inference step
 * ---------------------------------------------------------------------
 */

/*
 * One row: two accumulator sets (even and odd k) hide the FMA latency;
 * zin (G), u (K), c (H) in place, hout (H).
 */
static TC_AVX2 void
tc_lstm_infer_step_avx2(float *hout, float *c, const float *zin,
						const float *u, int K, int k0, const float *panel,
						int E, int H)
{
	const float *pan = tc_align32(panel);
	int			Kp = E + H;
	int			nub = (H + 7) / 8;

	for (int ub = 0; ub < nub; ub++)
	{
		const float *pb = pan + ((size_t) ub * Kp + k0) * 32;
		int			u0 = ub * 8;
		int			n = H - u0 < 8 ? H - u0 : 8;
		__m256		a0 = _mm256_setzero_ps();
		__m256		a1 = _mm256_setzero_ps();
		__m256		a2 = _mm256_setzero_ps();
		__m256		a3 = _mm256_setzero_ps();
		__m256		b0 = _mm256_setzero_ps();
		__m256		b1 = _mm256_setzero_ps();
		__m256		b2 = _mm256_setzero_ps();
		__m256		b3 = _mm256_setzero_ps();
		int			k = 0;
		__m256		ig;
		__m256		fg;
		__m256		gg;
		__m256		og;
		__m256		cc;

		for (; k + 2 <= K; k += 2)
		{
			const float *w = pb + (size_t) k * 32;
			__m256		x0 = _mm256_broadcast_ss(u + k);
			__m256		x1 = _mm256_broadcast_ss(u + k + 1);

			a0 = _mm256_fmadd_ps(x0, _mm256_load_ps(w), a0);
			a1 = _mm256_fmadd_ps(x0, _mm256_load_ps(w + 8), a1);
			a2 = _mm256_fmadd_ps(x0, _mm256_load_ps(w + 16), a2);
			a3 = _mm256_fmadd_ps(x0, _mm256_load_ps(w + 24), a3);
			b0 = _mm256_fmadd_ps(x1, _mm256_load_ps(w + 32), b0);
			b1 = _mm256_fmadd_ps(x1, _mm256_load_ps(w + 40), b1);
			b2 = _mm256_fmadd_ps(x1, _mm256_load_ps(w + 48), b2);
			b3 = _mm256_fmadd_ps(x1, _mm256_load_ps(w + 56), b3);
		}
		if (k < K)
		{
			const float *w = pb + (size_t) k * 32;
			__m256		x0 = _mm256_broadcast_ss(u + k);

			a0 = _mm256_fmadd_ps(x0, _mm256_load_ps(w), a0);
			a1 = _mm256_fmadd_ps(x0, _mm256_load_ps(w + 8), a1);
			a2 = _mm256_fmadd_ps(x0, _mm256_load_ps(w + 16), a2);
			a3 = _mm256_fmadd_ps(x0, _mm256_load_ps(w + 24), a3);
		}
		ig = v_sigmoid(_mm256_add_ps(v_load(zin + u0, n), _mm256_add_ps(a0, b0)));
		fg = v_sigmoid(_mm256_add_ps(v_load(zin + H + u0, n), _mm256_add_ps(a1, b1)));
		gg = v_tanh(_mm256_add_ps(v_load(zin + 2 * H + u0, n), _mm256_add_ps(a2, b2)));
		og = v_sigmoid(_mm256_add_ps(v_load(zin + 3 * H + u0, n), _mm256_add_ps(a3, b3)));
		cc = _mm256_fmadd_ps(fg, v_load(c + u0, n), _mm256_mul_ps(ig, gg));
		v_store(c + u0, cc, n);
		v_store(hout + u0, _mm256_mul_ps(og, v_tanh(cc)), n);
	}
}

#endif							/* TC_HAVE_X86 */

/* ---------------------------------------------------------------------
 * Dispatch
 * ---------------------------------------------------------------------
 */

/* y (n) += x (n) */
void
tc_vec_add(float *y, const float *x, size_t n)
{
#if TC_HAVE_X86
	if (tc_kernels_use_fast())
	{
		tc_vec_add_avx2(y, x, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

/* y (n) = sigmoid(x (n)) */
void
tc_sigmoid_vec(float *y, const float *x, size_t n)
{
#if TC_HAVE_X86
	if (tc_kernels_use_fast())
	{
		tc_sigmoid_vec_avx2(y, x, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		y[i] = tc_sigmoidf(x[i]);
}

/* y (n) = tanh(x (n)) */
void
tc_tanh_vec(float *y, const float *x, size_t n)
{
#if TC_HAVE_X86
	if (tc_kernels_use_fast())
	{
		tc_tanh_vec_avx2(y, x, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		y[i] = tanhf(x[i]);
}

/* Input projection of R rows (fast path only; see kernels.h). */
void
tc_proj_rows(float *z, const float *x, const float *Wx, const float *b, int R,
			 int E, int G)
{
#if TC_HAVE_X86
	tc_proj_rows_avx2(z, x, Wx, b, R, E, G);
#else
	(void) z, (void) x, (void) Wx, (void) b, (void) R, (void) E, (void) G;
#endif
}

/* Forward step of R rows (fast path only; see kernels.h). */
void
tc_lstm_fwd_rows(float *gates, float *c, float *h, const float *cprev,
				 const float *hprev, int R, const float *packed, int H)
{
#if TC_HAVE_X86
	tc_lstm_fwd_rows_avx2(gates, c, h, cprev, hprev, R, packed, H);
#else
	(void) gates, (void) c, (void) h, (void) cprev, (void) hprev;
	(void) R, (void) packed, (void) H;
#endif
}

/* Backward step of R rows (fast path only; see kernels.h). */
void
tc_lstm_bwd_rows(float *dz, float *dh, float *dc, const float *gates,
				 const float *c, const float *cprev, int R,
				 const float *packed, int H, bool carry)
{
#if TC_HAVE_X86
	tc_lstm_bwd_rows_avx2(dz, dh, dc, gates, c, cprev, R, packed, H, carry);
#else
	(void) dz, (void) dh, (void) dc, (void) gates, (void) c, (void) cprev;
	(void) R, (void) packed, (void) H, (void) carry;
#endif
}

/* One inference step (fast path only; see kernels.h). */
void
tc_lstm_infer_step(float *hout, float *c, const float *zin, const float *u,
				   int K, int k0, const float *panel, int E, int H)
{
#if TC_HAVE_X86
	tc_lstm_infer_step_avx2(hout, c, zin, u, K, k0, panel, E, H);
#else
	(void) hout, (void) c, (void) zin, (void) u, (void) K, (void) k0;
	(void) panel, (void) E, (void) H;
#endif
}
