/*
 * lstm.c
 *	  Single-layer LSTM over a packed batch (PyTorch PackedSequence layout,
 *	  see layers.h), forward and backward, plus the packing helper and the
 *	  activations.
 *
 * Gate order is i, f, g, o, as in torch.nn.LSTM (weight_ih_l0 rows) and
 * Keras's LSTM kernel columns; the parameters use Keras's layout
 * Wx (E,G), Wh (H,G), b (G) (PyTorch's b_ih + b_hh folded into one).
 *
 * Forward: the input projection of all N tokens is one GEMM (x Wx + b);
 * then, per step t, the recurrent GEMM adds h(t-1) Wh to the first bs[t]
 * rows, which are exactly the sequences still running (longest first).
 * Backward: the gate gradients of every step are computed first (one small
 * GEMM per step carries dh back through Wh), then dWx = x^T dG,
 * dx = dG Wx^T and dWh = hprev^T dG are single GEMMs, db the column sums.
 *
 * Deliberately not here: padding, masks, bidirectional or stacked layers,
 * dropout, initial states other than zero.  tc_lstm_forward/backward are
 * the plain reference kernels.  tc_lstm_forward_fast/backward_fast (end of
 * file, declared in kernels.h) compute the same thing with the AVX2 step
 * kernels of kernels.c: per step one fused kernel for the active rows
 * (gates = z + h Wh, activations, cell update on registers; backward the
 * elementwise gate gradients and dh = dz Wh^T), the sequences split across
 * the core's threads without any barrier (they are independent through
 * the recurrence) in shares that follow the speeds of the threads' CPUs
 * (see "Sharing the recurrence by CPU speed" below).  Each thread projects
 * the rows of its share just before each step; after the backward
 * recurrence each thread forms dWx, dWh, db and dx from the rows of a
 * fixed even share (laid out thread by thread, see lstm_backward_task),
 * and the other threads' partial gradients are added at the end.  One
 * thread uses the packed layout and whole-batch products.
 * test/core/test_kernels.c checks them against the reference.
 *
 * Memory: none allocated.  Backward uses the caller's work buffer of
 * tc_lstm_work_floats() floats:  dG (N,G) | hprev (N,H) | dh (B,H) | dc (B,H);
 * the fast backward needs tc_lstm_fast_work_floats(), which adds x/dx
 * (N,E) and the partial gradients of threads 2.. n; the fast versions also
 * read Wh packed by tc_lstm_pack (caller-owned).
 */
#include <math.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "textclf/kernels.h"

/* 1 / (1 + exp(-x)), without overflow for large |x|. */
float
tc_sigmoidf(float x)
{
	if (x >= 0.0f)
		return 1.0f / (1.0f + expf(-x));
	else
	{
		float		e = expf(x);

		return e / (1.0f + e);
	}
}

/* Fill p from lens (B, non-increasing); bs (max len) and off (max len + 1). */
void
tc_pack_init(TcPack *p, int B, const int *lens, int *bs, int *off)
{
	int			T = (B > 0) ? lens[0] : 0;
	int			b = B;

	/* bs[t] = number of sequences with length > t; lens is non-increasing */
	for (int t = 0; t < T; t++)
	{
		while (b > 0 && lens[b - 1] <= t)
			b--;
		bs[t] = b;
	}
	off[0] = 0;
	for (int t = 0; t < T; t++)
		off[t + 1] = off[t] + bs[t];

	p->B = B;
	p->T = T;
	p->N = off[T];
	p->lens = lens;
	p->bs = bs;
	p->off = off;
}

/* Floats of scratch tc_lstm_backward needs: dG (N,G), hprev (N,H), dh and dc (B,H). */
size_t
tc_lstm_work_floats(int N, int B, int H)
{
	size_t		G = 4 * (size_t) H;

	return (size_t) N * G + (size_t) N * H + 2 * (size_t) B * H;
}

/* gates (N,G) = x (N,E) Wx (E,G) + b (G): the input projection of every token. */
static void
lstm_input_projection(float *gates, const float *x, const float *Wx,
					  const float *b, int N, int E, int G)
{
	for (int n = 0; n < N; n++)
		memcpy(gates + (size_t) n * G, b, sizeof(float) * (size_t) G);
	tc_sgemm(false, false, N, G, E, 1.0f, x, E, Wx, G, 1.0f, gates, G);
}

/* hlast (B,H) = h (from hs (N,H)) at each sequence's last step, zero if empty. */
static void
lstm_gather_hlast(float *hlast, const float *hs, const TcPack *p, int H)
{
	for (int s = 0; s < p->B; s++)
	{
		int			len = p->lens[s];

		if (len > 0)
			memcpy(hlast + (size_t) s * H,
				   hs + ((size_t) p->off[len - 1] + s) * H,
				   sizeof(float) * (size_t) H);
		else
			memset(hlast + (size_t) s * H, 0, sizeof(float) * (size_t) H);
	}
}

/*
 * The parameter gradients from the gate gradients dG (N,G), as single
 * GEMMs over all N rows: dWx (E,G) += x^T dG, dx (N,E) = dG Wx^T (when not
 * NULL), dWh (H,G) += hprev^T dG with hprev (N,H) scratch filled from hs
 * (N,H) shifted by one step, db (G) += column sums of dG.
 */
static void
lstm_param_grads(float *dx, float *dWx, float *dWh, float *db,
				 const float *dG, float *hprev, const float *hs,
				 const float *x, const float *Wx, const TcPack *p, int E,
				 int H)
{
	int			G = 4 * H;
	int			N = p->N;
	int			T = p->T;

	tc_sgemm(true, false, E, G, N, 1.0f, x, E, dG, G, 1.0f, dWx, G);
	if (dx != NULL)
		tc_sgemm(false, true, N, E, G, 1.0f, dG, G, Wx, G, 0.0f, dx, E);

	/* rows of step 0 have h(-1) = 0: only rows from off[1] on contribute */
	if (T > 1)
	{
		size_t		r0 = (size_t) p->off[1];

		for (int t = 1; t < T; t++)
			memcpy(hprev + (size_t) p->off[t] * H,
				   hs + (size_t) p->off[t - 1] * H,
				   sizeof(float) * (size_t) p->bs[t] * H);
		tc_sgemm(true, false, H, G, N - (int) r0, 1.0f, hprev + r0 * H, H,
				 dG + r0 * G, G, 1.0f, dWh, G);
	}

	for (int n = 0; n < N; n++)
	{
		const float *dz = dG + (size_t) n * G;

		for (int j = 0; j < G; j++)
			db[j] += dz[j];
	}
}

/*
 * hlast (B,H), caches gates (N,G) / cs (N,H) / hs (N,H) (read by
 * tc_lstm_backward) from x (N,E), Wx (E,G), Wh (H,G), b (G).
 */
void
tc_lstm_forward(float *hlast, float *gates, float *cs, float *hs,
				const float *x, const float *Wx, const float *Wh,
				const float *b, const TcPack *p, int E, int H)
{
	int			G = 4 * H;
	int			N = p->N;

	lstm_input_projection(gates, x, Wx, b, N, E, G);

	for (int t = 0; t < p->T; t++)
	{
		int			bt = p->bs[t];
		size_t		row0 = (size_t) p->off[t];

		/* recurrent part: the first bt rows of step t-1 are the same sequences */
		if (t > 0)
			tc_sgemm(false, false, bt, G, H, 1.0f,
					 hs + (size_t) p->off[t - 1] * H, H, Wh, G,
					 1.0f, gates + row0 * G, G);

		for (int s = 0; s < bt; s++)
		{
			float	   *z = gates + (row0 + s) * G;
			float	   *c = cs + (row0 + s) * H;
			float	   *h = hs + (row0 + s) * H;
			const float *cprev = (t > 0) ? cs + ((size_t) p->off[t - 1] + s) * H : NULL;

			for (int j = 0; j < H; j++)
			{
				float		ig = tc_sigmoidf(z[j]);
				float		fg = tc_sigmoidf(z[H + j]);
				float		gg = tanhf(z[2 * H + j]);
				float		og = tc_sigmoidf(z[3 * H + j]);
				float		cc = ig * gg + (cprev ? fg * cprev[j] : 0.0f);

				z[j] = ig;
				z[H + j] = fg;
				z[2 * H + j] = gg;
				z[3 * H + j] = og;
				c[j] = cc;
				h[j] = og * tanhf(cc);
			}
		}
	}

	lstm_gather_hlast(hlast, hs, p, H);
}

/*
 * dx (N,E) (overwritten, may be NULL); dWx (E,G), dWh (H,G), db (G)
 * accumulated; from dhlast (B,H), the forward caches gates (N,G), cs (N,H),
 * hs (N,H), x (N,E) and Wx (E,G), Wh (H,G); work as tc_lstm_work_floats.
 */
void
tc_lstm_backward(float *dx, float *dWx, float *dWh, float *db,
				 const float *dhlast, const float *gates, const float *cs,
				 const float *hs, const float *x, const float *Wx,
				 const float *Wh, const TcPack *p, int E, int H, float *work)
{
	int			G = 4 * H;
	int			N = p->N;
	int			T = p->T;
	float	   *dG = work;		/* (N,G) gradient w.r.t. the gate pre-activations */
	float	   *hprev = dG + (size_t) N * G;	/* (N,H) h(t-1) of every row */
	float	   *dh = hprev + (size_t) N * H;	/* (B,H) running dL/dh */
	float	   *dc = dh + (size_t) p->B * H;	/* (B,H) running dL/dc */

	for (int t = T - 1; t >= 0; t--)
	{
		int			bt = p->bs[t];
		int			bnext = (t + 1 < T) ? p->bs[t + 1] : 0;
		size_t		row0 = (size_t) p->off[t];

		/* sequences whose last step is t join here with their dhlast */
		for (int s = bnext; s < bt; s++)
		{
			memcpy(dh + (size_t) s * H, dhlast + (size_t) s * H,
				   sizeof(float) * (size_t) H);
			memset(dc + (size_t) s * H, 0, sizeof(float) * (size_t) H);
		}

		for (int s = 0; s < bt; s++)
		{
			const float *a = gates + (row0 + s) * G;
			const float *c = cs + (row0 + s) * H;
			const float *cprev = (t > 0) ? cs + ((size_t) p->off[t - 1] + s) * H : NULL;
			float	   *dz = dG + (row0 + s) * G;
			float	   *dhs = dh + (size_t) s * H;
			float	   *dcs = dc + (size_t) s * H;

			for (int j = 0; j < H; j++)
			{
				float		ig = a[j];
				float		fg = a[H + j];
				float		gg = a[2 * H + j];
				float		og = a[3 * H + j];
				float		tc = tanhf(c[j]);
				float		dcc = dcs[j] + dhs[j] * og * (1.0f - tc * tc);
				float		cp = cprev ? cprev[j] : 0.0f;

				dz[j] = dcc * gg * ig * (1.0f - ig);
				dz[H + j] = dcc * cp * fg * (1.0f - fg);
				dz[2 * H + j] = dcc * ig * (1.0f - gg * gg);
				dz[3 * H + j] = dhs[j] * tc * og * (1.0f - og);
				dcs[j] = dcc * fg;
			}
		}

		/* carry dh back to step t-1: dh = dG_t Wh^T */
		if (t > 0)
			tc_sgemm(false, true, bt, H, G, 1.0f, dG + row0 * G, G, Wh, G,
					 0.0f, dh, H);
	}

	lstm_param_grads(dx, dWx, dWh, db, dG, hprev, hs, x, Wx, p, E, H);
}

/* ---------------------------------------------------------------------
 * Fast path: the recurrence through the AVX2 step kernels of kernels.c,
 * the sequences of the batch split across the core's worker threads.
 * ---------------------------------------------------------------------
 */

/* Shared arguments of the forward and backward recurrence tasks. */
typedef struct LstmTask
{
	const TcPack *p;
	int			H;
	const float *packed;		/* tc_lstm_pack(Wh) */
	float	   *gates;			/* (N,G) */
	float	   *cs;				/* (N,H) */
	float	   *hs;				/* (N,H) */
	const float *dhlast;		/* (B,H) backward only */
	float	   *dG;				/* (N,G) backward only */
	float	   *dh;				/* (B,H) backward only */
	float	   *dc;				/* (B,H) backward only */
	float	   *hprev;			/* (N,H) backward only: h(t-1) of every row */
	/* parameter-gradient task */
	const float *x;				/* (N,E) */
	const float *Wx;			/* (E,G) */
	const float *b;				/* (G) forward only */
	float	   *dx;				/* (N,E) or NULL */
	float	   *dWx;			/* (E,G) */
	float	   *dWh;			/* (H,G) */
	float	   *db;				/* (G) */
	float	   *xg;				/* (N,E) backward only: x, then dx, thread-major */
	float	   *priv;			/* backward only: threads 1.. n-1's partial sums */
	int			n;				/* threads of the backward tasks */
	int			E;
	/* filled by each recurrence task, for lstm_share_learn */
	double		secs[TC_MAX_THREADS];	/* wall time of its recurrence */
	long long	toks[TC_MAX_THREADS];	/* tokens of its share */
	int			cpu[TC_MAX_THREADS];	/* CPU it ran on; -1: moved or unknown */
} LstmTask;

/*
 * Cut the batch into n contiguous ranges of sequences: range k is
 * [rb[k], rb[k+1]) and holds about N * w[k] / sum(w) tokens (w NULL: N / n
 * each).  Lengths are non-increasing, so earlier ranges hold fewer, longer
 * sequences.
 */
static void
lstm_cut(const TcPack *p, int n, const long long *w, int *rb)
{
	long long	total = 0;
	long long	acc = 0;
	long long	cum = 0;
	int			s = 0;

	for (int k = 0; k < n; k++)
		total += w ? w[k] : 1;
	rb[0] = 0;
	for (int k = 1; k < n; k++)
	{
		long long	want;

		acc += w ? w[k - 1] : 1;
		want = (long long) p->N * acc / total;
		while (s < p->B && cum < want)
			cum += p->lens[s++];
		rb[k] = s;
	}
	rb[n] = p->B;
}

/* Sequences [*lo, *hi) of thread tid of n in the even split. */
static void
lstm_seq_range(const TcPack *p, int tid, int n, int *lo, int *hi)
{
	int			rb[TC_MAX_THREADS + 1];

	lstm_cut(p, n, NULL, rb);
	*lo = rb[tid];
	*hi = rb[tid + 1];
}

/*
 * Sharing the recurrence by CPU speed.  The vCPUs of a shared machine are
 * not equally fast (which one is slower changes within seconds), and a
 * batch waits for its slowest thread.  So the recurrences (forward, and
 * backward down to dG) give each thread a share of the tokens in
 * proportion to the measured speed of the CPU it is expected to run on:
 * speeds are kept per CPU, not per thread, because the threads change
 * CPUs whenever they sleep and wake between jobs.  The caller's CPU is
 * known when it starts a job; a helper is expected on the CPU it last
 * ran on, or on the caller's previous one when the caller has taken it.
 *
 * That keeps the bits: a row of the recurrence is computed the same way
 * whichever thread takes it and however the rows are grouped (the step
 * kernels' tiles and tc_proj_rows keep one accumulation order per row),
 * and the products that sum over rows (dWx, dWh, db) keep the even token
 * split of lstm_seq_range: the backward recurrence writes each row into
 * the block of the thread that owns it there (lstm_backward_task).  One
 * thread: no change at all.
 */
#define TC_SHARE_CPUS 256

static struct
{
	bool		fixed;			/* tests: weights set by tc_lstm_set_shares */
	int			nfixed;
	double		w[TC_MAX_THREADS];	/* this job's weight per thread */
	int			last[TC_MAX_THREADS];	/* CPU each thread last ran on */
	double		speed[TC_SHARE_CPUS];	/* per CPU, relative; 0: unknown */
}			tc_share;

void
tc_lstm_set_shares(const double *w, int n)
{
	tc_share.fixed = false;
	if (w == NULL || n < 1 || n > TC_MAX_THREADS)
		return;
	for (int k = 0; k < n; k++)
		tc_share.w[k] = w[k] > 0.0 ? w[k] : 1.0;
	tc_share.nfixed = n;
	tc_share.fixed = true;
}

/* The CPU of the calling thread, or -1. */
static int
lstm_cpu(void)
{
	int			c = sched_getcpu();

	return (c >= 0 && c < TC_SHARE_CPUS) ? c : -1;
}

/*
 * Set the weights of a job of n threads (called by the caller before the
 * job starts; the tasks only read them): the speed of each thread's
 * expected CPU, 1 where unknown.
 */
static void
lstm_share_plan(int n)
{
	int			me;
	int			prev;

	if (tc_share.fixed)
		return;
	me = lstm_cpu();
	prev = tc_share.last[0];
	for (int k = 0; k < n; k++)
	{
		int			c = k == 0 ? me : tc_share.last[k];

		if (k > 0 && c == me && me >= 0)
			c = prev;			/* the caller took this helper's CPU */
		tc_share.w[k] = (c >= 0 && tc_share.speed[c] > 0.0) ?
			tc_share.speed[c] : 1.0;
	}
}

/*
 * Recurrence ranges of n threads: thread k takes sequences [rb[k], rb[k+1])
 * holding about N * w_k / sum(w) tokens of the job's weights.  Equal
 * weights give exactly the even split of lstm_seq_range.
 */
static void
lstm_rec_bounds(const TcPack *p, int n, int *rb)
{
	long long	w[TC_MAX_THREADS];
	bool		use = !tc_share.fixed || tc_share.nfixed == n;

	for (int k = 0; k < n; k++)
	{
		w[k] = use ? (long long) (tc_share.w[k] * 1024.0 + 0.5) : 1024;
		if (w[k] < 1)
			w[k] = 1;
	}
	lstm_cut(p, n, w, rb);
}

/* Seconds of a monotonic clock. */
static double
lstm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* Tokens of sequences [lo, hi). */
static long long
lstm_tokens(const TcPack *p, int lo, int hi)
{
	long long	c = 0;

	for (int s = lo; s < hi; s++)
		c += p->lens[s];
	return c;
}

/* Start of a recurrence task: its share and its CPU. */
static double
lstm_task_begin(LstmTask *a, int tid, int n, int *lo, int *hi)
{
	int			rb[TC_MAX_THREADS + 1];

	lstm_rec_bounds(a->p, n, rb);
	*lo = rb[tid];
	*hi = rb[tid + 1];
	a->toks[tid] = lstm_tokens(a->p, *lo, *hi);
	a->cpu[tid] = lstm_cpu();
	return lstm_now();
}

/* End of a recurrence task: its time; its CPU unknown if it moved. */
static void
lstm_task_end(LstmTask *a, int tid, double t0)
{
	a->secs[tid] = lstm_now() - t0;
	if (lstm_cpu() != a->cpu[tid])
		a->cpu[tid] = -1;
}

/*
 * Learn from a recurrence job of n threads: where every thread stayed on
 * one CPU of its own and had enough to time, the CPUs' speeds move a
 * quarter of the way towards the shares their tokens per second would
 * have earned (keeping the sum of the speeds of the CPUs involved, but no
 * lower than a fifth of an even share; a CPU seen for the first time
 * starts at the mean of the others, or 1).
 */
static void
lstm_share_learn(const LstmTask *a, int n)
{
	double		r[TC_MAX_THREADS];
	double		rsum = 0.0;
	double		ssum = 0.0;
	double		known = 0.0;
	int			nknown = 0;

	if (n < 2 || tc_share.fixed)
		return;
	for (int k = 0; k < n; k++)
		if (a->cpu[k] >= 0)
			tc_share.last[k] = a->cpu[k];
	for (int k = 0; k < n; k++)
	{
		if (a->cpu[k] < 0 || a->toks[k] < 64 || a->secs[k] < 1e-5)
			return;
		for (int j = 0; j < k; j++)
			if (a->cpu[j] == a->cpu[k])
				return;
		r[k] = (double) a->toks[k] / a->secs[k];
		rsum += r[k];
		if (tc_share.speed[a->cpu[k]] > 0.0)
		{
			known += tc_share.speed[a->cpu[k]];
			nknown++;
		}
	}
	for (int k = 0; k < n; k++)
	{
		double	   *sp = &tc_share.speed[a->cpu[k]];

		if (*sp <= 0.0)
			*sp = nknown > 0 ? known / nknown : 1.0;
		ssum += *sp;
	}
	for (int k = 0; k < n; k++)
	{
		double	   *sp = &tc_share.speed[a->cpu[k]];

		*sp = 0.75 * *sp + 0.25 * ssum * r[k] / rsum;
		/* at least a fifth of an even share, so no thread is starved */
		if (*sp < 0.2 * ssum / n)
			*sp = 0.2 * ssum / n;
	}
}

/* Forward recurrence of one thread's sequences. */
static void
lstm_forward_task(void *arg, int tid, int n)
{
	LstmTask   *a = arg;
	const TcPack *p = a->p;
	int			H = a->H;
	int			G = 4 * H;
	int			lo;
	int			hi;
	double		t0 = lstm_task_begin(a, tid, n, &lo, &hi);

	for (int t = 0; t < p->T; t++)
	{
		int			end = hi < p->bs[t] ? hi : p->bs[t];
		size_t		row = (size_t) p->off[t] + lo;
		size_t		prow = (t > 0) ? (size_t) p->off[t - 1] + lo : 0;

		if (end <= lo)
			break;
		/*
		 * several threads: each projects its own rows, just before use, by
		 * a kernel whose rows do not depend on the rows around them
		 */
		if (n > 1)
			tc_proj_rows(a->gates + row * G, a->x + row * a->E, a->Wx, a->b,
						 end - lo, a->E, G);
		tc_lstm_fwd_rows(a->gates + row * G, a->cs + row * H, a->hs + row * H,
						 t > 0 ? a->cs + prow * H : NULL,
						 t > 0 ? a->hs + prow * H : NULL,
						 end - lo, a->packed, H);
	}
	lstm_task_end(a, tid, t0);
}

/*
 * Backward recurrence of thread tid's share of the sequences (see
 * lstm_rec_bounds).  It writes the rows of dG, h(t-1) and x into the
 * thread-major layout of the even split (lstm_seq_range), where range f's
 * sequences hold the rows after those of ranges 0 .. f-1, step by step in
 * increasing t, each step's rows in sequence order (one thread: the packed
 * layout itself).  Each row goes to the contiguous block of the thread
 * that owns its sequence there, which lstm_param_task reads.  With equal
 * shares that is the thread's own block (data written by another core is
 * slow to read); otherwise the sequences between the two splits go into a
 * neighbour's block.
 */
static void
lstm_backward_task(void *arg, int tid, int n)
{
	LstmTask   *a = arg;
	const TcPack *p = a->p;
	int			H = a->H;
	int			E = a->E;
	int			G = 4 * H;
	int			lo;
	int			hi;
	int			f0 = n;			/* the even split's ranges f0 .. f1 */
	int			f1 = -1;		/* overlap [lo, hi) */
	int			fb[TC_MAX_THREADS + 1];	/* range f: [fb[f], fb[f+1]) */
	size_t		base[TC_MAX_THREADS];	/* its first row */
	size_t		before[TC_MAX_THREADS];	/* its rows at steps < t */
	size_t		rows = 0;
	double		t0 = lstm_task_begin(a, tid, n, &lo, &hi);

	lstm_cut(p, n, NULL, fb);
	for (int f = 0; f < n; f++)
	{
		base[f] = rows;
		before[f] = (size_t) lstm_tokens(p, fb[f], fb[f + 1]);
		rows += before[f];
		if (fb[f + 1] > lo && fb[f] < hi)
		{
			if (f0 > f)
				f0 = f;
			f1 = f;
		}
	}
	for (int t = p->T - 1; t >= 0 && lo < hi; t--)
	{
		int			end = hi < p->bs[t] ? hi : p->bs[t];
		int			bnext = (t + 1 < p->T) ? p->bs[t + 1] : 0;

		for (int f = f0; f <= f1; f++)
		{
			int			fend = fb[f + 1] < p->bs[t] ? fb[f + 1] : p->bs[t];

			if (fend > fb[f])
				before[f] -= (size_t) (fend - fb[f]);
		}
		if (end <= lo)
			continue;
		/* sequences whose last step is t join here with their dhlast */
		for (int s = (bnext > lo ? bnext : lo); s < end; s++)
		{
			memcpy(a->dh + (size_t) s * H, a->dhlast + (size_t) s * H,
				   sizeof(float) * (size_t) H);
			memset(a->dc + (size_t) s * H, 0, sizeof(float) * (size_t) H);
		}
		for (int f = f0; f <= f1; f++)
		{
			int			slo = lo > fb[f] ? lo : fb[f];
			int			shi = end < fb[f + 1] ? end : fb[f + 1];
			size_t		row = (size_t) p->off[t] + slo;
			size_t		trow = base[f] + before[f] + (size_t) (slo - fb[f]);

			if (shi <= slo)
				continue;
			/* h(t-1) of these rows, for dWh = hprev^T dG; x, for dWx = x^T dG */
			if (t > 0)
				memcpy(a->hprev + trow * H,
					   a->hs + ((size_t) p->off[t - 1] + slo) * H,
					   sizeof(float) * (size_t) (shi - slo) * H);
			memcpy(a->xg + trow * E, a->x + row * E,
				   sizeof(float) * (size_t) (shi - slo) * E);
			tc_lstm_bwd_rows(a->dG + trow * G, a->dh + (size_t) slo * H,
							 a->dc + (size_t) slo * H, a->gates + row * G,
							 a->cs + row * H,
							 t > 0 ? a->cs + ((size_t) p->off[t - 1] + slo) * H : NULL,
							 shi - slo, a->packed, H, t > 0);
		}
	}
	lstm_task_end(a, tid, t0);
}

/* Rows [lo, hi) of thread tid of n, out of total, in multiples of 16. */
static void
lstm_slice(int total, int tid, int n, int *lo, int *hi)
{
	*lo = (int) (((long long) total * tid / n) & ~15LL);
	*hi = (tid == n - 1) ? total :
		(int) (((long long) total * (tid + 1) / n) & ~15LL);
}

/* Input projection gates = x Wx + b of one thread's slice of rows. */
static void
lstm_projection_task(void *arg, int tid, int n)
{
	LstmTask   *a = arg;
	int			G = 4 * a->H;
	int			lo;
	int			hi;

	lstm_slice(a->p->N, tid, n, &lo, &hi);
	if (hi > lo)
		lstm_input_projection(a->gates + (size_t) lo * G,
							  a->x + (size_t) lo * a->E, a->Wx, a->b,
							  hi - lo, a->E, G);
}

/*
 * Parameter gradients of one thread's rows (thread-major, see
 * lstm_backward_task): thread 0 adds its products to dWx, dWh and db,
 * thread k > 0 writes them to its partial block of priv (summed by
 * lstm_reduce_task); dx of its rows through xg.  Rows of step 0 have
 * h(-1) = 0 and are left out of dWh.
 */
static void
lstm_param_task(void *arg, int tid, int n)
{
	LstmTask   *a = arg;
	const TcPack *p = a->p;
	int			H = a->H;
	int			E = a->E;
	int			G = 4 * H;
	int			lo;
	int			hi;
	size_t		base;
	size_t		count;
	size_t		first;			/* rows of step 0 */
	float	   *dWx = a->dWx;
	float	   *dWh = a->dWh;
	float	   *db = a->db;
	float		beta = 1.0f;
	const float *dG;

	/*
	 * the partial sums lstm_reduce_task adds: n, which is less than asked
	 * when the pool could not start every helper
	 */
	if (tid == 0)
		a->n = n;
	lstm_seq_range(p, tid, n, &lo, &hi);
	base = (size_t) lstm_tokens(p, 0, lo);
	count = (size_t) lstm_tokens(p, lo, hi);
	/* count > 0: a sequence of this thread has a step 0 (so p->T >= 1) */
	first = 0;
	if (count > 0)
		first = (size_t) ((hi < p->bs[0] ? hi : p->bs[0]) - lo);
	if (tid > 0)
	{
		dWx = a->priv + (size_t) (tid - 1) * (size_t) (E + H + 1) * G;
		dWh = dWx + (size_t) E * G;
		db = dWh + (size_t) H * G;
		beta = 0.0f;
		memset(db, 0, sizeof(float) * (size_t) G);
		if (count == 0)
		{
			memset(dWx, 0, sizeof(float) * (size_t) (E + H) * G);
			return;
		}
	}
	if (count == 0)
		return;
	dG = a->dG + base * G;
	tc_sgemm(true, false, E, G, (int) count, 1.0f, a->xg + base * E, E, dG, G,
			 beta, dWx, G);
	if (count > first)
		tc_sgemm(true, false, H, G, (int) (count - first), 1.0f,
				 a->hprev + (base + first) * H, H, dG + first * G, G, beta,
				 dWh, G);
	else if (tid > 0)
		memset(dWh, 0, sizeof(float) * (size_t) H * G);
	for (size_t r = 0; r < count; r++)
		tc_vec_add(db, dG + r * G, (size_t) G);
	if (a->dx == NULL)
		return;
	/* dx of these rows, thread-major in xg (x is no longer needed there) */
	tc_sgemm(false, true, (int) count, E, G, 1.0f, dG, G, a->Wx, G, 0.0f,
			 a->xg + base * E, E);
	{
		size_t		trow = base;

		for (int t = 0; t < p->T; t++)
		{
			int			end = hi < p->bs[t] ? hi : p->bs[t];

			if (end <= lo)
				break;
			memcpy(a->dx + ((size_t) p->off[t] + lo) * E, a->xg + trow * E,
				   sizeof(float) * (size_t) (end - lo) * E);
			trow += (size_t) (end - lo);
		}
	}
}

/* Add the partial sums of threads 1 .. a->n - 1 to one slice of a gradient. */
static void
lstm_reduce_slice(float *grad, const LstmTask *a, size_t offset, int lo,
				  int hi)
{
	size_t		block = (size_t) (a->E + a->H + 1) * 4 * (size_t) a->H;

	for (int k = 1; k < a->n; k++)
		tc_vec_add(grad + lo, a->priv + (size_t) (k - 1) * block + offset + lo,
				   (size_t) (hi - lo));
}

/*
 * The backward recurrence and then the parameter gradients of a single
 * thread (several threads run them as two jobs: with unequal shares a
 * thread's products read rows that another thread wrote).
 */
static void
lstm_backward_params_task(void *arg, int tid, int n)
{
	lstm_backward_task(arg, tid, n);
	lstm_param_task(arg, tid, n);
}

/* Sum the partial gradients: one slice of dWx, dWh and db per thread. */
static void
lstm_reduce_task(void *arg, int tid, int n)
{
	LstmTask   *a = arg;
	int			G = 4 * a->H;
	int			lo;
	int			hi;

	lstm_slice(a->E * G, tid, n, &lo, &hi);
	lstm_reduce_slice(a->dWx, a, 0, lo, hi);
	lstm_slice(a->H * G, tid, n, &lo, &hi);
	lstm_reduce_slice(a->dWh, a, (size_t) a->E * G, lo, hi);
	lstm_slice(G, tid, n, &lo, &hi);
	lstm_reduce_slice(a->db, a, (size_t) (a->E + a->H) * G, lo, hi);
}

/*
 * Floats of scratch tc_lstm_backward_fast needs on up to `threads` threads:
 * the reference's, x/dx in the thread-major layout (N,E) and the partial
 * sums of dWx, dWh and db of every thread but the first.
 */
size_t
tc_lstm_fast_work_floats(int N, int B, int E, int H, int threads)
{
	size_t		G = 4 * (size_t) H;
	int			n = threads < B ? threads : B;

	if (n < 1)
		n = 1;
	return tc_lstm_work_floats(N, B, H) + (size_t) N * E +
		(size_t) (n - 1) * ((size_t) E + H + 1) * G;
}

/*
 * tc_lstm_forward through the fast kernels; packed (tc_lstm_packed_floats)
 * holds tc_lstm_pack(Wh).  The reference runs when the fast kernels are off.
 */
void
tc_lstm_forward_fast(float *hlast, float *gates, float *cs, float *hs,
					 const float *x, const float *Wx, const float *Wh,
					 const float *b, const TcPack *p, int E, int H,
					 const float *packed, int threads)
{
	LstmTask	task;

	if (!tc_kernels_use_fast() || packed == NULL)
	{
		tc_lstm_forward(hlast, gates, cs, hs, x, Wx, Wh, b, p, E, H);
		return;
	}
	memset(&task, 0, sizeof(task));
	task.p = p;
	task.H = H;
	task.E = E;
	task.packed = packed;
	task.gates = gates;
	task.cs = cs;
	task.hs = hs;
	task.x = x;
	task.Wx = Wx;
	task.b = b;
	/* one recurrence thread: the projection first, as one product */
	if (p->B < 2 || threads < 2)
		tc_run_parallel(threads, lstm_projection_task, &task);
	{
		int			n = p->B < threads ? p->B : threads;

		if (n > 1)
			lstm_share_plan(n);
		tc_run_parallel(n, lstm_forward_task, &task);
		lstm_share_learn(&task, n);
	}
	lstm_gather_hlast(hlast, hs, p, H);
}

/* tc_lstm_backward through the fast kernels; see tc_lstm_forward_fast. */
void
tc_lstm_backward_fast(float *dx, float *dWx, float *dWh, float *db,
					  const float *dhlast, const float *gates,
					  const float *cs, const float *hs, const float *x,
					  const float *Wx, const float *Wh, const TcPack *p,
					  int E, int H, const float *packed, int threads,
					  float *work)
{
	LstmTask	task;
	size_t		N = (size_t) p->N;
	size_t		G = 4 * (size_t) H;

	if (!tc_kernels_use_fast() || packed == NULL)
	{
		tc_lstm_backward(dx, dWx, dWh, db, dhlast, gates, cs, hs, x, Wx, Wh,
						 p, E, H, work);
		return;
	}
	memset(&task, 0, sizeof(task));
	task.p = p;
	task.H = H;
	task.packed = packed;
	task.gates = (float *) gates;
	task.cs = (float *) cs;
	task.dhlast = dhlast;
	task.dG = work;
	task.dh = work + N * G + N * H;
	task.dc = task.dh + (size_t) p->B * H;
	task.hprev = work + N * G;
	task.hs = (float *) hs;
	task.E = E;
	task.x = x;
	task.Wx = Wx;
	task.dx = dx;
	task.dWx = dWx;
	task.dWh = dWh;
	task.db = db;
	task.n = p->B < threads ? p->B : threads;
	if (task.n < 1)
		task.n = 1;
	task.xg = task.dc + (size_t) p->B * H;
	task.priv = task.xg + N * (size_t) E;
	if (task.n < 2)
	{
		lstm_backward_params_task(&task, 0, 1);
		return;
	}
	lstm_share_plan(task.n);
	tc_run_parallel(task.n, lstm_backward_task, &task);
	lstm_share_learn(&task, task.n);
	tc_run_parallel(task.n, lstm_param_task, &task);
	tc_run_parallel(threads, lstm_reduce_task, &task);
}
