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

#include "textclf/kernels.h"
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

/* One thread's share of an Adam step over the whole parameter block. */
typedef struct AdamTask
{
	TcModel    *m;
	const TcAdam *adam;
} AdamTask;

/* Adam over slice tid of n of the parameter block (element-wise: same bits at any n). */
static void
tc_adam_task(void *arg, int tid, int n)
{
	AdamTask   *a = arg;
	TcModel    *m = a->m;
	size_t		lo = (m->num_params / (size_t) n) * (size_t) tid;
	size_t		hi = (tid == n - 1) ? m->num_params :
		(m->num_params / (size_t) n) * (size_t) (tid + 1);

	tc_adam_update(m->params_memory + lo, m->grads_memory + lo,
				   m->m_memory + lo, m->v_memory + lo, hi - lo, m->adam_t,
				   a->adam);
}

/*
 * One Adam step over every parameter of m (grads must be filled), split
 * across the core's threads (kernels.h) when there are several.
 */
void
tc_adam_step(TcModel *m, const TcAdam *adam)
{
	AdamTask	task;

	if (m->grads_memory == NULL)
		return;
	m->adam_t++;
	tc_model_drop_infer(m);		/* the parameters change: tables go stale */
	task.m = m;
	task.adam = adam;
	tc_run_parallel(tc_kernels_use_fast() ? tc_kernels_threads() : 1,
					tc_adam_task, &task);
}
