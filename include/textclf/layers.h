/*
 * layers.h
 *	  Forward / backward pairs of the model's layers over flat float arrays.
 *
 * Argument order follows llm.c: outputs first, then caches, then inputs and
 * parameters, then dimensions.  Backward functions ADD (+=) into parameter
 * gradients, so the caller zeroes them once per step; gradients with respect
 * to inputs are overwritten.
 *
 * Batches are packed the way PyTorch's PackedSequence is: the B sequences
 * are sorted by length, longest first; bs[t] is the number of sequences
 * longer than t (non-increasing in t) and off[t] = bs[0] + ... + bs[t-1].
 * The token of sequence b (b < bs[t]) at step t lives in row off[t] + b of
 * every (N, .) array.  Sequences start at step 0 and run over their own
 * length: no work is spent on padding.  A sequence of length 0 has a zero
 * final state.
 *
 * Every kernel here is the plain reference version; matrix products go
 * through tc_sgemm (blas.c).  Tuned versions (AVX2 step kernels, fast
 * activations, threads) are declared in kernels.h and tested against
 * these.
 */
#ifndef TEXTCLF_LAYERS_H
#define TEXTCLF_LAYERS_H

#include "textclf/textclf.h"

/* Shape of a packed batch (see above). */
typedef struct TcPack
{
	int			B;				/* sequences */
	int			T;				/* longest length, = number of steps */
	int			N;				/* total tokens = off[T] */
	const int  *lens;			/* (B) lengths, non-increasing */
	const int  *bs;				/* (T) active sequences per step */
	const int  *off;			/* (T+1) first packed row of each step */
} TcPack;

/*
 * Build bs and off from non-increasing lens.  bs needs room for max(lens)
 * entries and off for max(lens) + 1.
 */
void		tc_pack_init(TcPack *p, int B, const int *lens, int *bs, int *off);

/* ---- blas.c: the only file that calls cblas ---- */

/*
 * C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C, row-major, with
 * leading dimensions lda, ldb, ldc.  transA/transB select op = transpose.
 */
void		tc_sgemm(bool transA, bool transB, int M, int N, int K,
					 float alpha, const float *A, int lda,
					 const float *B, int ldb, float beta, float *C, int ldc);
/* The same product computed by plain loops: the algorithmic reference. */
void		tc_sgemm_naive(bool transA, bool transB, int M, int N, int K,
						   float alpha, const float *A, int lda,
						   const float *B, int ldb, float beta, float *C,
						   int ldc);
/* Route tc_sgemm to the naive loops (true) or to cblas (false); for tests. */
void		tc_blas_use_naive(bool naive);
/*
 * Set the number of BLAS threads and of the core's own training threads
 * (kernels.h); call from the owning thread only.
 */
void		tc_blas_set_threads(int n);

/* ---- embedding.c ---- */

/* out (N,E) = emb[tokens[n]] (emb is (V,E)). */
void		tc_embedding_forward(float *out, const int32_t *tokens,
								 const float *emb, int N, int E);
/* demb (V,E) += scatter of dout (N,E) over tokens. */
void		tc_embedding_backward(float *demb, const float *dout,
								  const int32_t *tokens, int N, int E);

/* ---- lstm.c ---- */

/*
 * LSTM over a packed batch, zero initial state, PyTorch/Keras gate order
 * i, f, g, o:
 *	 z = x Wx + h_prev Wh + b;  i = s(z_i) f = s(z_f) g = tanh(z_g) o = s(z_o)
 *	 c = f * c_prev + i * g;    h = o * tanh(c)
 * hlast	(B,H)	out: h at each sequence's last step (zero for length 0)
 * gates	(N,G)	cache: activated gates i, f, g, o   (read by backward)
 * cs		(N,H)	cache: cell states                  (read by backward)
 * hs		(N,H)	cache: hidden states                (read by backward)
 * x		(N,E)	inputs
 * Wx (E,G), Wh (H,G), b (G)	parameters, Keras layout
 */
void		tc_lstm_forward(float *hlast, float *gates, float *cs, float *hs,
							const float *x, const float *Wx, const float *Wh,
							const float *b, const TcPack *p, int E, int H);

/*
 * Backward of tc_lstm_forward.
 * dx		(N,E)	out (overwritten); may be NULL when not needed
 * dWx (E,G), dWh (H,G), db (G)		accumulated
 * dhlast	(B,H)	gradient of the loss w.r.t. hlast
 * work		scratch of tc_lstm_work_floats(N, B, H) floats
 */
void		tc_lstm_backward(float *dx, float *dWx, float *dWh, float *db,
							 const float *dhlast, const float *gates,
							 const float *cs, const float *hs, const float *x,
							 const float *Wx, const float *Wh,
							 const TcPack *p, int E, int H, float *work);
/* Floats of scratch tc_lstm_backward needs. */
size_t		tc_lstm_work_floats(int N, int B, int H);

/* ---- dense.c ---- */

/* out (B,K) = in (B,H) W (H,K) + b (K). */
void		tc_dense_forward(float *out, const float *in, const float *W,
							 const float *b, int B, int H, int K);
/*
 * out (K) = in (H) W (H,K) + b (K) for one row, in plain loops (b, then
 * each in[j] W[j,:] added in j order): inference, which never loads BLAS.
 */
void		tc_dense_forward_row(float *out, const float *in, const float *W,
								 const float *b, int H, int K);
/* din (B,H) = dout W^T (overwritten, may be NULL); dW += in^T dout; db += sum dout. */
void		tc_dense_backward(float *din, float *dW, float *db,
							  const float *dout, const float *in,
							  const float *W, int B, int H, int K);

/* ---- loss.c ---- */

/*
 * Output activation + cross-entropy, mean over the batch.
 * K == 1: sigmoid + binary cross-entropy, target in {0, 1}.
 * K >= 2: softmax + categorical cross-entropy, target in [0, K).
 * probs	(B,K)	out: sigmoid / softmax outputs (may be NULL)
 * dlogits	(B,K)	out: gradient of the mean loss (may be NULL)
 * logits	(B,K)	in
 * targets	(B)		class index (0/1 for K == 1)
 * weights	(B)		per-sample weights (NULL = all 1); the loss is
 *					sum(w_b * l_b) / B, as Keras does with class_weight
 * Returns the mean loss (double).
 */
double		tc_xent_forward_backward(float *probs, float *dlogits,
									 const float *logits,
									 const int32_t *targets,
									 const float *weights, int B, int K);

/* ---- activations (lstm.c) ---- */

/* 1 / (1 + exp(-x)) */
float		tc_sigmoidf(float x);

#endif							/* TEXTCLF_LAYERS_H */
