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
 * dropout, initial states other than zero.  These are the plain reference
 * kernels; tuned versions, if any, must be tested against them.
 *
 * Memory: none allocated.  Backward uses the caller's work buffer of
 * tc_lstm_work_floats() floats:  dG (N,G) | hprev (N,H) | dh (B,H) | dc (B,H).
 */
#include <math.h>
#include <string.h>

#include "textclf/layers.h"

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

	/* input projection of every token at once: gates = x Wx + b */
	for (int n = 0; n < N; n++)
		memcpy(gates + (size_t) n * G, b, sizeof(float) * (size_t) G);
	tc_sgemm(false, false, N, G, E, 1.0f, x, E, Wx, G, 1.0f, gates, G);

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

	/* final hidden state of each sequence (zero for an empty one) */
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

	/* parameter gradients as single GEMMs over all N rows */
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
