/*
 * kernels.h
 *	  Hand-written kernels for the hot fixed-shape paths of the core: the
 *	  LSTM recurrence (one step for a group of rows, forward and backward)
 *	  and the gate activations, in AVX2/FMA, plus the core's own worker
 *	  threads for training.
 *
 * Every fast kernel keeps a plain reference beside it (the loops of
 * lstm.c, libm's expf/tanhf) and is chosen at run time: the fast path runs
 * only when the CPU reports avx2 and fma (__builtin_cpu_supports) and the
 * reference has not been forced with tc_kernels_force_reference(true).
 * The kernels are compiled with __attribute__((target("avx2,fma"))), so
 * the rest of the core builds for any x86-64 (no -march flag).
 *
 * Accuracy of the fast activations (exp by Cody-Waite reduction and a
 * degree-7 polynomial, expm1 form for tanh): relative error below 1e-6
 * against double precision wherever the result is a normal float.  The
 * fast LSTM agrees with the reference to about 1e-6 relative (float
 * summation order differs); test/core/test_kernels.c states the bounds.
 * Each path is deterministic: same inputs and thread count, same bits.
 *
 * Threads: tc_blas_set_threads(n) also sets the number of the core's own
 * worker threads.  Training splits the sequences of a packed batch across
 * them (no barrier: sequences are independent through the recurrence), in
 * shares that follow the measured speed of each thread's CPU; each thread
 * projects and back-propagates its share, then forms the weight gradients
 * of a fixed even share (so the bits do not depend on the speeds), and the
 * partial gradients are summed at the end.
 * Other products are split by columns or rows; OpenBLAS then stays
 * single-threaded.  The helpers (a persistent pool, see tc_run_parallel)
 * run with every signal blocked, compute only on memory the caller
 * allocated (and OpenBLAS's own buffers, in the products), and never call
 * back.  Inference is single-threaded.
 *
 * Memory: nothing here allocates; packed weights live in buffers the
 * caller sizes with tc_lstm_packed_floats / tc_lstm_infer_panel_floats.
 */
#ifndef TEXTCLF_KERNELS_H
#define TEXTCLF_KERNELS_H

#include "textclf/layers.h"

/* True when the CPU supports the fast kernels (avx2 and fma). */
bool		tc_kernels_fast_available(void);
/* True when the fast kernels will run: available and not forced off. */
bool		tc_kernels_use_fast(void);
/* Force the reference kernels (true) or allow the fast ones (false); for tests. */
void		tc_kernels_force_reference(bool force);

/* Most threads of the core's pool (the caller included). */
#define TC_MAX_THREADS 64

/* Worker threads for training (1..TC_MAX_THREADS); set through tc_blas_set_threads. */
void		tc_kernels_set_threads(int n);
int			tc_kernels_threads(void);

/* Work function of tc_run_parallel: thread tid of nthreads. */
typedef void (*TcTaskFn) (void *arg, int tid, int nthreads);
/*
 * Run fn(arg, tid, n) for tid = 0 .. n-1 and return when all are done:
 * tid 0 on the calling thread, the others on a persistent pool of helper
 * threads started on first use (signals blocked; they wait on a condition
 * variable between jobs and live until the process exits).  If fewer
 * helpers could be started, n shrinks accordingly, so fn must cut its
 * shares from the n it is given.  One caller at a time; fn must not call
 * tc_run_parallel.
 */
void		tc_run_parallel(int nthreads, TcTaskFn fn, void *arg);
/* For tests: use at most n helpers, as if no more could be started (0: all). */
void		tc_kernels_limit_helpers(int n);

/*
 * tc_sgemm (blas.c) split across `threads` of the core's threads, by
 * columns of C (or rows when M > N); the slices run single-threaded
 * products concurrently.
 */
void		tc_sgemm_threads(int threads, bool transA, bool transB, int M,
							 int N, int K, float alpha, const float *A,
							 int lda, const float *B, int ldb, float beta,
							 float *C, int ldc);

/* y (n) += x (n).  Fast path when enabled. */
void		tc_vec_add(float *y, const float *x, size_t n);

/* ---- activations ---- */

/* y (n) = sigmoid(x (n)); y may equal x.  Fast path when enabled. */
void		tc_sigmoid_vec(float *y, const float *x, size_t n);
/* y (n) = tanh(x (n)); y may equal x.  Fast path when enabled. */
void		tc_tanh_vec(float *y, const float *x, size_t n);

/* ---- LSTM, training (lstm.c) ---- */

/* Floats of the packed copy of Wh that the fast training kernels read. */
size_t		tc_lstm_packed_floats(int H);
/*
 * Pack Wh (H,G) into packed (tc_lstm_packed_floats) for the fast kernels,
 * on tc_kernels_threads() threads (tc_run_parallel: not from a task).
 */
void		tc_lstm_pack(float *packed, const float *Wh, int H);

/*
 * tc_lstm_forward with the fast kernels (same arguments and results up to
 * rounding), packed = tc_lstm_pack(Wh); falls back to the reference when
 * the fast kernels are off.  Runs the recurrence on `threads` threads.
 */
void		tc_lstm_forward_fast(float *hlast, float *gates, float *cs,
								 float *hs, const float *x, const float *Wx,
								 const float *Wh, const float *b,
								 const TcPack *p, int E, int H,
								 const float *packed, int threads);
/*
 * tc_lstm_backward with the fast kernels; see tc_lstm_forward_fast.  work
 * holds tc_lstm_fast_work_floats(N, B, E, H, threads) floats.
 */
void		tc_lstm_backward_fast(float *dx, float *dWx, float *dWh,
								  float *db, const float *dhlast,
								  const float *gates, const float *cs,
								  const float *hs, const float *x,
								  const float *Wx, const float *Wh,
								  const TcPack *p, int E, int H,
								  const float *packed, int threads,
								  float *work);
/*
 * For tests: share the recurrence between n threads by the fixed weights
 * w (n) instead of by the measured speeds of their CPUs; w NULL goes back
 * to measuring.  The results do not depend on the shares (see lstm.c).
 */
void		tc_lstm_set_shares(const double *w, int n);

/* Floats of scratch tc_lstm_backward_fast needs on up to `threads` threads. */
size_t		tc_lstm_fast_work_floats(int N, int B, int E, int H, int threads);

/*
 * Input projection z (R,G) = b (G) + x (R,E) Wx (E,G) of R rows (kernels.c,
 * fast path only): each output is one chain of FMAs from b over the inputs
 * in order, so a row's result does not depend on the rows around it.
 */
void		tc_proj_rows(float *z, const float *x, const float *Wx,
						 const float *b, int R, int E, int G);

/*
 * Forward of one step for R consecutive packed rows (kernels.c):
 * gates	(R,G)	in: x Wx + b; out: activated gates i, f, g, o
 * c, h		(R,H)	out: cell and hidden states
 * cprev, hprev	(R,H)	states of the same sequences at the previous step,
 *					both NULL at step 0
 * packed	tc_lstm_pack(Wh)
 */
void		tc_lstm_fwd_rows(float *gates, float *c, float *h,
							 const float *cprev, const float *hprev, int R,
							 const float *packed, int H);

/*
 * Backward of one step for R consecutive packed rows (kernels.c):
 * dz		(R,G)	out: gradient w.r.t. the gate pre-activations
 * dh, dc	(R,H)	in: dL/dh, dL/dc at this step; out: at the previous
 *					step (dh only when carry, dh = dz Wh^T; dc = dc * f)
 * gates	(R,G), c (R,H)	forward caches of this step
 * cprev	(R,H)	cell states of the previous step, NULL at step 0
 */
void		tc_lstm_bwd_rows(float *dz, float *dh, float *dc,
							 const float *gates, const float *c,
							 const float *cprev, int R, const float *packed,
							 int H, bool carry);

/* ---- LSTM, one row at a time (inference, kernels.c) ---- */

/* Floats of the inference panel of an LSTM with E inputs and H units. */
size_t		tc_lstm_infer_panel_floats(int E, int H);
/* Pack Wx (E,G) over Wh (H,G) into panel (tc_lstm_infer_panel_floats). */
void		tc_lstm_infer_pack(float *panel, const float *Wx, const float *Wh,
							   int E, int H);

/*
 * One LSTM step of one sequence with the fast kernels:
 *	 z = zin + u[0:K] W[k0:k0+K]  (W = Wx over Wh, as packed in panel)
 *	 c = f * c + i * g;  hout = o * tanh(c)
 * zin	(G)		pre-activations before the product (b, or b + x Wx)
 * u	(K)		inputs of the packed rows k0 .. k0+K-1 (x then h, or h)
 * c	(H)		cell state, updated in place (zero it for the first step)
 * hout	(H)		new hidden state; must not overlap u
 * Only call when tc_kernels_use_fast() is true.
 */
void		tc_lstm_infer_step(float *hout, float *c, const float *zin,
							   const float *u, int K, int k0,
							   const float *panel, int E, int H);

#endif							/* TEXTCLF_KERNELS_H */
