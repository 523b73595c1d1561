/*
 * metrics.h
 *	  Classification metrics accumulated one prediction at a time: accuracy,
 *	  log loss, the confusion matrix, per-class precision / recall / F1 with
 *	  support, macro and weighted averages, and ROC AUC for two classes.
 *
 * Everything but ROC AUC is a fixed-size accumulator; ROC AUC keeps one
 * (score, label) pair per row (5 bytes a row), sorted at the end.
 */
#ifndef TEXTCLF_METRICS_H
#define TEXTCLF_METRICS_H

#include "textclf/textclf.h"

typedef struct TcMetrics
{
	const TcAllocator *a;
	int			K;				/* classes */
	long		rows;
	long		correct;
	double		log_loss_sum;	/* sum of -log(max(p_true, 1e-15)) */
	long	   *confusion;		/* (K,K): row = true class, column = predicted */
	/* two classes: scores of the positive class, for ROC AUC */
	float	   *scores;			/* (rows) */
	unsigned char *positive;	/* (rows) */
	size_t		cap;
} TcMetrics;

typedef struct TcClassMetrics
{
	double		precision;
	double		recall;
	double		f1;
	long		support;
} TcClassMetrics;

typedef struct TcMetricsSummary
{
	long		rows;
	double		accuracy;
	double		log_loss;
	TcClassMetrics *per_class;	/* (K) */
	TcClassMetrics macro;
	TcClassMetrics weighted;
	double		roc_auc;		/* NaN unless two classes with both present */
} TcMetricsSummary;

/* Start accumulating for K classes. */
TcStatus	tc_metrics_init(TcMetrics *m, const TcAllocator *a, int K,
							TcError *err);
/* Add one row: probs (K) of the model, the true class, the predicted class. */
TcStatus	tc_metrics_add(TcMetrics *m, const float *probs, int truth,
						   int predicted, TcError *err);
/* Compute the summary; s->per_class is allocated from the metrics' allocator. */
TcStatus	tc_metrics_summarize(TcMetrics *m, TcMetricsSummary *s,
								 TcError *err);
/* Free the accumulator (and nothing of a summary). */
void		tc_metrics_free(TcMetrics *m);

#endif							/* TEXTCLF_METRICS_H */
