/*
 * embedding.c
 *	  Embedding lookup (forward) and its scatter-add gradient (backward).
 *
 * Token ids are trusted here: the caller (tc_model_batch) checks that every
 * id lies in [0, V) before packing.  Id 0 (padding) is an ordinary row, as
 * in Keras's Embedding without mask_zero: padding is never fed anyway,
 * because batches are packed.
 *
 * Memory: none allocated; outputs are caller-owned.
 */
#include <string.h>

#include "textclf/layers.h"

/* out (N,E) = emb (V,E) rows selected by tokens (N). */
void
tc_embedding_forward(float *out, const int32_t *tokens, const float *emb,
					 int N, int E)
{
	for (int n = 0; n < N; n++)
		memcpy(out + (size_t) n * E, emb + (size_t) tokens[n] * E,
			   sizeof(float) * (size_t) E);
}

/* demb (V,E) += dout (N,E) scattered over the rows named by tokens (N). */
void
tc_embedding_backward(float *demb, const float *dout, const int32_t *tokens,
					  int N, int E)
{
	for (int n = 0; n < N; n++)
	{
		float	   *d = demb + (size_t) tokens[n] * E;
		const float *g = dout + (size_t) n * E;

		for (int e = 0; e < E; e++)
			d[e] += g[e];
	}
}
