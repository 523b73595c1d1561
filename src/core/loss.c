/*
 * loss.c
 *	  Output activation fused with cross-entropy, forward and backward in
 *	  one pass: sigmoid + binary cross-entropy for K == 1, softmax +
 *	  categorical cross-entropy for K >= 2.
 *
 * Both are computed from the logits in double, in the numerically stable
 * forms PyTorch uses (BCEWithLogitsLoss, log_softmax):
 *	 K == 1:  l = max(z, 0) - z y + log1p(exp(-|z|))
 *	 K >= 2:  l = log(sum_k exp(z_k - max z)) - (z_y - max z)
 * The loss is sum(w_b l_b) / B (Keras's class_weight convention), so
 * dlogits = w_b (p - onehot(y)) / B.
 *
 * It does not check targets or weights: tc_model_batch validates targets,
 * and weights are the trainer's business.
 *
 * Memory: none allocated; outputs are caller-owned.
 */
#include <math.h>

#include "textclf/layers.h"

/*
 * probs (B,K) and dlogits (B,K) (either may be NULL) from logits (B,K),
 * targets (B) and weights (B, NULL = 1); returns the mean weighted loss.
 */
double
tc_xent_forward_backward(float *probs, float *dlogits, const float *logits,
						 const int32_t *targets, const float *weights,
						 int B, int K)
{
	double		total = 0.0;

	if (B <= 0)
		return 0.0;

	for (int b = 0; b < B; b++)
	{
		const float *z = logits + (size_t) b * K;
		double		w = weights ? (double) weights[b] : 1.0;
		int			y = targets[b];

		if (K == 1)
		{
			double		zz = z[0];
			double		p;
			double		l;

			/* stable sigmoid and log-sigmoid */
			if (zz >= 0.0)
				p = 1.0 / (1.0 + exp(-zz));
			else
			{
				double		e = exp(zz);

				p = e / (1.0 + e);
			}
			l = (zz > 0.0 ? zz : 0.0) - zz * (double) y + log1p(exp(-fabs(zz)));
			total += w * l;
			if (probs)
				probs[b] = (float) p;
			if (dlogits)
				dlogits[b] = (float) (w * (p - (double) y) / B);
		}
		else
		{
			double		zmax = z[0];
			double		sum = 0.0;

			for (int k = 1; k < K; k++)
				if (z[k] > zmax)
					zmax = z[k];
			for (int k = 0; k < K; k++)
				sum += exp((double) z[k] - zmax);
			total += w * (log(sum) - ((double) z[y] - zmax));
			for (int k = 0; k < K; k++)
			{
				double		p = exp((double) z[k] - zmax) / sum;

				if (probs)
					probs[(size_t) b * K + k] = (float) p;
				if (dlogits)
					dlogits[(size_t) b * K + k] =
						(float) (w * (p - (k == y ? 1.0 : 0.0)) / B);
			}
		}
	}
	return total / B;
}
