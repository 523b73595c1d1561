/*
 * adam.c
 *	  Adam with Keras's epsilon convention ("epsilon hat", Kingma & Ba
 *	  section 2 final paragraph; tf.keras.optimizers.Adam):
 *		lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *		m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *		p -= lr_t * m / (sqrt(v) + eps)
 * PyTorch's torch.optim.Adam adds eps to the bias-corrected sqrt(v_hat)
 * instead; the two differ while v is tiny, and we follow Keras.
 *
 * Because params, grads, m and v share one layout (model.h), a step is one
 * flat loop over the whole block.  No weight decay, no amsgrad: the
 * reference model uses neither.
 *
 * Memory: none allocated; all blocks belong to the model.
 */
#include <math.h>

#include "textclf/model.h"

/* p (n) -= Adam step for gradient g (n), moments mom (n) and vel (n), step t >= 1. */
void
tc_adam_update(float *p, const float *g, float *mom, float *vel, size_t n,
			   long t, const TcAdam *adam)
{
	double		bc1 = 1.0 - pow((double) adam->beta1, (double) t);
	double		bc2 = 1.0 - pow((double) adam->beta2, (double) t);
	float		lr_t = (float) ((double) adam->lr * sqrt(bc2) / bc1);
	float		b1 = adam->beta1;
	float		b2 = adam->beta2;
	float		eps = adam->eps;

	for (size_t i = 0; i < n; i++)
	{
		float		gi = g[i];
		float		mi = b1 * mom[i] + (1.0f - b1) * gi;
		float		vi = b2 * vel[i] + (1.0f - b2) * gi * gi;

		mom[i] = mi;
		vel[i] = vi;
		p[i] -= lr_t * mi / (sqrtf(vi) + eps);
	}
}

/* One Adam step over every parameter of m (grads must be filled). */
void
tc_adam_step(TcModel *m, const TcAdam *adam)
{
	if (m->grads_memory == NULL)
		return;
	m->adam_t++;
	tc_model_drop_infer(m);		/* the parameters change: tables go stale */
	tc_adam_update(m->params_memory, m->grads_memory, m->m_memory,
				   m->v_memory, m->num_params, m->adam_t, adam);
}
