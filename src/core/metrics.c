/*
 * metrics.c
 *	  Classification metrics (see metrics.h), with scikit-learn's
 *	  definitions: precision, recall and F1 are 0 when undefined; the log
 *	  loss clips probabilities at 1e-15; ROC AUC is the Mann-Whitney
 *	  statistic with ties counted as one half.
 */
#include <math.h>
#include <string.h>

#include "textclf/metrics.h"

/* Start accumulating. */
TcStatus
tc_metrics_init(TcMetrics *m, const TcAllocator *a, int K, TcError *err)
{
	memset(m, 0, sizeof(*m));
	m->a = a;
	m->K = K;
	m->confusion = tc_alloc_array(a, tc_mul_size(K, K), sizeof(long));
	if (m->confusion == NULL)
		return tc_error(err, TC_ERR_NOMEM, "out of memory for metrics");
	return TC_OK;
}

/* Add one row. */
TcStatus
tc_metrics_add(TcMetrics *m, const float *probs, int truth, int predicted,
			   TcError *err)
{
	double		p = probs[truth];

	m->rows++;
	if (truth == predicted)
		m->correct++;
	m->confusion[(size_t) truth * m->K + predicted]++;
	m->log_loss_sum += -log(p > 1e-15 ? (p < 1.0 - 1e-15 ? p : 1.0 - 1e-15) : 1e-15);
	if (m->K == 2)
	{
		if ((size_t) (m->rows - 1) == m->cap)
		{
			size_t		ncap = m->cap ? m->cap * 2 : 1024;
			float	   *s = tc_alloc_array(m->a, ncap, sizeof(float));
			unsigned char *l = tc_alloc_array(m->a, ncap, 1);

			if (s == NULL || l == NULL)
			{
				tc_free(m->a, s);
				tc_free(m->a, l);
				return tc_error(err, TC_ERR_NOMEM, "out of memory for ROC AUC scores");
			}
			if (m->cap)
			{
				memcpy(s, m->scores, m->cap * sizeof(float));
				memcpy(l, m->positive, m->cap);
			}
			tc_free(m->a, m->scores);
			tc_free(m->a, m->positive);
			m->scores = s;
			m->positive = l;
			m->cap = ncap;
		}
		m->scores[m->rows - 1] = probs[1];
		m->positive[m->rows - 1] = (unsigned char) (truth == 1);
	}
	return TC_OK;
}

/* Sort scores ascending, carrying labels (heap sort: no recursion, no malloc). */
static void
sort_scores(float *s, unsigned char *l, size_t n)
{
	for (size_t start = n / 2; start-- > 0;)
	{
		size_t		root = start;

		for (;;)
		{
			size_t		child = 2 * root + 1;

			if (child >= n)
				break;
			if (child + 1 < n && s[child + 1] > s[child])
				child++;
			if (s[root] >= s[child])
				break;
			{
				float		ts = s[root];
				unsigned char tl = l[root];

				s[root] = s[child];
				l[root] = l[child];
				s[child] = ts;
				l[child] = tl;
			}
			root = child;
		}
	}
	for (size_t end = n; end-- > 1;)
	{
		size_t		root = 0;
		float		ts = s[0];
		unsigned char tl = l[0];

		s[0] = s[end];
		l[0] = l[end];
		s[end] = ts;
		l[end] = tl;
		for (;;)
		{
			size_t		child = 2 * root + 1;

			if (child >= end)
				break;
			if (child + 1 < end && s[child + 1] > s[child])
				child++;
			if (s[root] >= s[child])
				break;
			ts = s[root];
			tl = l[root];
			s[root] = s[child];
			l[root] = l[child];
			s[child] = ts;
			l[child] = tl;
			root = child;
		}
	}
}

/* ROC AUC from scores: average rank of positives (ties share ranks). */
static double
roc_auc(float *s, unsigned char *l, size_t n)
{
	double		npos = 0,
				rank_sum = 0;

	sort_scores(s, l, n);
	for (size_t i = 0; i < n;)
	{
		size_t		j = i;
		double		avg_rank;
		double		pos_in_tie = 0;

		while (j < n && s[j] == s[i])
		{
			pos_in_tie += l[j];
			j++;
		}
		avg_rank = (double) (i + 1 + j) / 2.0;	/* ranks i+1 .. j */
		rank_sum += pos_in_tie * avg_rank;
		npos += pos_in_tie;
		i = j;
	}
	if (npos == 0 || npos == (double) n)
		return NAN;
	return (rank_sum - npos * (npos + 1) / 2.0) / (npos * ((double) n - npos));
}

/* Compute the summary. */
TcStatus
tc_metrics_summarize(TcMetrics *m, TcMetricsSummary *s, TcError *err)
{
	int			K = m->K;
	long		total_support = 0;

	memset(s, 0, sizeof(*s));
	s->per_class = tc_alloc_array(m->a, K, sizeof(TcClassMetrics));
	if (s->per_class == NULL)
		return tc_error(err, TC_ERR_NOMEM, "out of memory for metrics");
	s->rows = m->rows;
	s->accuracy = m->rows ? (double) m->correct / m->rows : NAN;
	s->log_loss = m->rows ? m->log_loss_sum / m->rows : NAN;
	for (int k = 0; k < K; k++)
	{
		long		tp = m->confusion[(size_t) k * K + k];
		long		pred = 0,
					sup = 0;
		TcClassMetrics *c = &s->per_class[k];

		for (int j = 0; j < K; j++)
		{
			pred += m->confusion[(size_t) j * K + k];
			sup += m->confusion[(size_t) k * K + j];
		}
		c->support = sup;
		c->precision = pred ? (double) tp / pred : 0.0;
		c->recall = sup ? (double) tp / sup : 0.0;
		c->f1 = (c->precision + c->recall) > 0 ?
			2 * c->precision * c->recall / (c->precision + c->recall) : 0.0;
		s->macro.precision += c->precision / K;
		s->macro.recall += c->recall / K;
		s->macro.f1 += c->f1 / K;
		s->weighted.precision += c->precision * sup;
		s->weighted.recall += c->recall * sup;
		s->weighted.f1 += c->f1 * sup;
		total_support += sup;
	}
	s->macro.support = s->weighted.support = total_support;
	if (total_support > 0)
	{
		s->weighted.precision /= total_support;
		s->weighted.recall /= total_support;
		s->weighted.f1 /= total_support;
	}
	s->roc_auc = (K == 2 && m->rows > 0) ?
		roc_auc(m->scores, m->positive, (size_t) m->rows) : NAN;
	return TC_OK;
}

/* Free the accumulator. */
void
tc_metrics_free(TcMetrics *m)
{
	tc_free(m->a, m->confusion);
	tc_free(m->a, m->scores);
	tc_free(m->a, m->positive);
	memset(m, 0, sizeof(*m));
}
