/*
 * dense.c
 *	  Fully connected output layer: out = in W + b, Keras kernel layout
 *	  (H,K), and its backward pass.
 *
 * The output activation lives in loss.c (sigmoid / softmax fused with the
 * cross-entropy), not here.
 *
 * Memory: none allocated; outputs are caller-owned.
 */
#include "textclf/layers.h"

/* out (B,K) = in (B,H) W (H,K) + b (K). */
void
tc_dense_forward(float *out, const float *in, const float *W, const float *b,
				 int B, int H, int K)
{
	for (int i = 0; i < B; i++)
		for (int k = 0; k < K; k++)
			out[(size_t) i * K + k] = b[k];
	tc_sgemm(false, false, B, K, H, 1.0f, in, H, W, K, 1.0f, out, K);
}

/* out (K) = in (H) W (H,K) + b (K), one row without BLAS (see layers.h). */
void
tc_dense_forward_row(float *out, const float *in, const float *W,
					 const float *b, int H, int K)
{
	for (int k = 0; k < K; k++)
		out[k] = b[k];
	for (int j = 0; j < H; j++)
	{
		float		x = in[j];
		const float *w = W + (size_t) j * K;

		for (int k = 0; k < K; k++)
			out[k] += x * w[k];
	}
}

/*
 * din (B,H) = dout (B,K) W^T (overwritten; skipped when NULL);
 * dW (H,K) += in^T dout; db (K) += column sums of dout.
 */
void
tc_dense_backward(float *din, float *dW, float *db, const float *dout,
				  const float *in, const float *W, int B, int H, int K)
{
	if (din != NULL)
		tc_sgemm(false, true, B, H, K, 1.0f, dout, K, W, K, 0.0f, din, H);
	tc_sgemm(true, false, H, K, B, 1.0f, in, H, dout, K, 1.0f, dW, K);
	for (int i = 0; i < B; i++)
		for (int k = 0; k < K; k++)
			db[k] += dout[(size_t) i * K + k];
}
