/*
 * test_metrics.c
 *	  The metrics accumulator against scikit-learn 1.2 (Debian), on the
 *	  fixed examples below: accuracy, log_loss, roc_auc_score (with tied
 *	  scores) and precision_recall_fscore_support (per class, macro,
 *	  weighted, zero_division=0).  Expected values were printed by sklearn.
 */
#include "tc_test.h"
#include "textclf/metrics.h"

static const int ybin[40] = {0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0,
0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1};
static const float pbin[40] = {0.28f, 0.69f, 0.44f, 0.16f, 0.54f, 0.78f, 0.31f, 0.22f,
	0.39f, 0.94f, 0.98f, 0.67f, 0.9f, 0.85f, 0.38f, 0.09f, 0.65f, 0.56f, 0.36f, 0.23f,
	0.41f, 0.47f, 0.27f, 0.29f, 0.46f, 0.86f, 0.59f, 0.28f, 0.28f, 0.45f, 0.21f, 0.2f,
0.51f, 0.09f, 0.48f, 0.36f, 0.71f, 0.75f, 0.69f, 0.69f};

static const int y3[10] = {0, 1, 2, 2, 1, 0, 2, 1, 1, 0};
static const float p3[10][3] = {{0.236f, 0.555f, 0.209f}, {0.464f, 0.215f, 0.321f},
	{0.016f, 0.071f, 0.913f}, {0.105f, 0.472f, 0.423f}, {0.453f, 0.227f, 0.32f},
	{0.189f, 0.206f, 0.605f}, {0.403f, 0.258f, 0.339f}, {0.199f, 0.051f, 0.75f},
{0.363f, 0.247f, 0.39f}, {0.065f, 0.551f, 0.384f}};

/* |a - b| <= 1e-5 */
static int
near(double a, double b)
{
	return fabs(a - b) <= 1e-5;
}

int
main(void)
{
	TcMetrics	m;
	TcMetricsSummary s;
	TcError		err;

	/* two classes */
	tc_check(tc_metrics_init(&m, &tc_test_alloc, 2, &err) == TC_OK, "init binary");
	for (int i = 0; i < 40; i++)
	{
		float		pr[2] = {1.0f - pbin[i], pbin[i]};

		tc_metrics_add(&m, pr, ybin[i], pbin[i] >= 0.5f ? 1 : 0, &err);
	}
	tc_check(tc_metrics_summarize(&m, &s, &err) == TC_OK, "summarize binary");
	tc_check(s.rows == 40 && near(s.accuracy, 0.525), "accuracy %.6f", s.accuracy);
	tc_check(near(s.log_loss, 0.8868839221685778), "log loss %.8f", s.log_loss);
	tc_check(near(s.roc_auc, 0.49242424242424243), "roc auc with ties %.8f", s.roc_auc);
	tc_check(near(s.per_class[0].precision, 0.56521739) &&
			 near(s.per_class[1].precision, 0.47058824), "precision per class");
	tc_check(near(s.per_class[0].recall, 0.59090909) &&
			 near(s.per_class[1].recall, 0.44444444), "recall per class");
	tc_check(near(s.per_class[0].f1, 0.57777778) && near(s.per_class[1].f1, 0.45714286),
			 "f1 per class");
	tc_check(s.per_class[0].support == 22 && s.per_class[1].support == 18, "support");
	tc_check(near(s.macro.precision, 0.5179028132992327) &&
			 near(s.macro.recall, 0.5176767676767677) &&
			 near(s.macro.f1, 0.5174603174603175), "macro averages");
	tc_check(near(s.weighted.precision, 0.5226342710997443) &&
			 near(s.weighted.recall, 0.525) &&
			 near(s.weighted.f1, 0.5234920634920635), "weighted averages");
	tc_free(&tc_test_alloc, s.per_class);
	tc_metrics_free(&m);

	/* three classes, one never predicted right */
	tc_metrics_init(&m, &tc_test_alloc, 3, &err);
	for (int i = 0; i < 10; i++)
	{
		int			best = 0;

		for (int k = 1; k < 3; k++)
			if (p3[i][k] > p3[i][best])
				best = k;
		tc_metrics_add(&m, p3[i], y3[i], best, &err);
	}
	tc_metrics_summarize(&m, &s, &err);
	tc_check(near(s.accuracy, 0.1) && near(s.log_loss, 1.5270676517857418),
			 "3 classes: accuracy and log loss (%.8f)", s.log_loss);
	tc_check(near(s.per_class[2].precision, 0.25) &&
			 near(s.per_class[2].recall, 0.33333333) &&
			 near(s.per_class[2].f1, 0.28571429) && s.per_class[0].precision == 0.0,
			 "3 classes: per class, undefined precision is 0");
	tc_check(near(s.macro.f1, 0.09523809523809525) &&
			 near(s.weighted.precision, 0.075) && near(s.weighted.f1, 0.08571428571428572),
			 "3 classes: macro and weighted");
	tc_check(isnan(s.roc_auc), "no ROC AUC for 3 classes");
	tc_check(m.confusion[2 * 3 + 2] == 1 && m.confusion[0 * 3 + 1] == 2,
			 "confusion matrix rows are true classes");
	tc_free(&tc_test_alloc, s.per_class);
	tc_metrics_free(&m);

	/* AUC with one class only is undefined */
	tc_metrics_init(&m, &tc_test_alloc, 2, &err);
	{
		float		pr[2] = {0.3f, 0.7f};

		tc_metrics_add(&m, pr, 1, 1, &err);
		tc_metrics_add(&m, pr, 1, 1, &err);
	}
	tc_metrics_summarize(&m, &s, &err);
	tc_check(isnan(s.roc_auc) && s.accuracy == 1.0, "AUC undefined with one class present");
	tc_free(&tc_test_alloc, s.per_class);
	tc_metrics_free(&m);

	/* many rows: the score buffer grows */
	tc_metrics_init(&m, &tc_test_alloc, 2, &err);
	for (int i = 0; i < 100000; i++)
	{
		float		p = (float) ((i * 7919) % 1000) / 1000.0f;
		float		pr[2] = {1 - p, p};
		int			y = p > 0.3f;	/* perfectly separable at 0.3 */

		tc_metrics_add(&m, pr, y, p >= 0.5f, &err);
	}
	tc_metrics_summarize(&m, &s, &err);
	tc_check(s.rows == 100000 && near(s.roc_auc, 1.0), "100,000 rows: AUC %.6f", s.roc_auc);
	tc_free(&tc_test_alloc, s.per_class);
	tc_metrics_free(&m);
	return tc_test_done();
}
