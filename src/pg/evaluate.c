/*
 * evaluate.c
 *	  evaluate(): score every row of a relation with a model and report
 *	  accuracy, log loss, per-class precision / recall / F1, macro and
 *	  weighted averages, the confusion matrix and (two classes) ROC AUC, as
 *	  jsonb.  Also the JSON form of metrics that train_classifier stores
 *	  with each version.
 *
 * Rows stream through an SPI cursor in chunks, as in training; memory is
 * the metrics accumulator (fixed size, plus 5 bytes a row for ROC AUC).
 * Rows with a NULL text or label are skipped, and so are rows whose label
 * the model does not know; both are counted in the result.  Nothing is
 * written.
 */
#include "postgres.h"

#include <math.h>

#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "textclf/metrics.h"
#include "glue.h"
#include "model_type.h"
#include "pg_textclf.h"

PG_FUNCTION_INFO_V1(evaluate_name);
PG_FUNCTION_INFO_V1(evaluate_classifier);

#define EVAL_FETCH 1000

/* Append a JSON number, or null for NaN / Inf. */
static void
AppendNumber(StringInfo s, double x)
{
	if (isfinite(x))
		appendStringInfo(s, "%.9g", x);
	else
		appendStringInfoString(s, "null");
}

/* Append {"precision": .., "recall": .., "f1": .., "support": ..}. */
static void
AppendClass(StringInfo s, const TcClassMetrics *c)
{
	appendStringInfoString(s, "{\"precision\": ");
	AppendNumber(s, c->precision);
	appendStringInfoString(s, ", \"recall\": ");
	AppendNumber(s, c->recall);
	appendStringInfoString(s, ", \"f1\": ");
	AppendNumber(s, c->f1);
	appendStringInfo(s, ", \"support\": %ld}", c->support);
}

/*
 * The metrics as a JSON object (text).  labels are UTF-8; they are
 * converted to the database encoding for the document.
 */
char *
TcMetricsJson(TcMetrics *m, char **labels, long skipped, long unknown)
{
	TcMetricsSummary sum;
	TcError		err;
	StringInfoData s;
	int			K = m->K;

	TcCheck(tc_metrics_summarize(m, &sum, &err), &err);
	initStringInfo(&s);
	appendStringInfo(&s, "{\"rows\": %ld, \"accuracy\": ", sum.rows);
	AppendNumber(&s, sum.accuracy);
	appendStringInfoString(&s, ", \"log_loss\": ");
	AppendNumber(&s, sum.log_loss);
	if (K == 2)
	{
		appendStringInfoString(&s, ", \"roc_auc\": ");
		AppendNumber(&s, sum.roc_auc);
	}
	appendStringInfoString(&s, ", \"labels\": [");
	for (int k = 0; k < K; k++)
	{
		if (k)
			appendStringInfoString(&s, ", ");
		escape_json(&s, pg_any_to_server(labels[k], strlen(labels[k]), PG_UTF8));
	}
	appendStringInfoString(&s, "], \"per_class\": {");
	for (int k = 0; k < K; k++)
	{
		if (k)
			appendStringInfoString(&s, ", ");
		escape_json(&s, pg_any_to_server(labels[k], strlen(labels[k]), PG_UTF8));
		appendStringInfoString(&s, ": ");
		AppendClass(&s, &sum.per_class[k]);
	}
	appendStringInfoString(&s, "}, \"macro_avg\": ");
	AppendClass(&s, &sum.macro);
	appendStringInfoString(&s, ", \"weighted_avg\": ");
	AppendClass(&s, &sum.weighted);
	appendStringInfoString(&s, ", \"confusion_matrix\": [");
	for (int i = 0; i < K; i++)
	{
		appendStringInfoString(&s, i ? ", [" : "[");
		for (int j = 0; j < K; j++)
			appendStringInfo(&s, j ? ", %ld" : "%ld", m->confusion[(size_t) i * K + j]);
		appendStringInfoChar(&s, ']');
	}
	appendStringInfo(&s, "], \"skipped_rows\": %ld, \"unknown_label_rows\": %ld}",
					 skipped, unknown);
	pfree(sum.per_class);
	return s.data;
}

/* Index of a UTF-8 label among the model's, or -1. */
static int
LabelIndex(const TcModel *model, const char *label, size_t len)
{
	for (int k = 0; k < model->cfg.num_classes; k++)
		if (strlen(model->labels[k]) == len &&
			memcmp(model->labels[k], label, len) == 0)
			return k;
	return -1;
}

/* Stream the relation through the model and return the metrics as jsonb. */
static Datum
Evaluate(TcCachedModel *cm, Oid relid, Name textcol, Name labelcol)
{
	char	   *qualrel;
	const char *qtext,
			   *qlabel;
	StringInfoData q;
	SPIPlanPtr	plan;
	Portal		portal;
	TcMetrics	mt;
	TcAllocator alloc;
	TcError		err;
	MemoryContext evalcxt,
				rowcxt,
				old;
	long		skipped = 0,
				unknown = 0;
	bool		convert = (GetDatabaseEncoding() != PG_UTF8);
	TcModel    *model = cm->model;
	char	   *json;
	Datum		result;

	TcCheckSource(relid, textcol, labelcol, &qualrel, &qtext, &qlabel);
	evalcxt = AllocSetContextCreate(CurrentMemoryContext, "textclf evaluate",
									ALLOCSET_DEFAULT_SIZES);
	rowcxt = AllocSetContextCreate(evalcxt, "textclf evaluate rows",
								   ALLOCSET_DEFAULT_SIZES);
	tc_pg_allocator(&alloc, evalcxt);
	TcCheck(tc_metrics_init(&mt, &alloc, model->cfg.num_classes, &err), &err);

	initStringInfo(&q);
	appendStringInfo(&q, "SELECT %s::pg_catalog.text, %s::pg_catalog.text FROM %s",
					 qtext, qlabel, qualrel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(q.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the evaluation query: %s",
			 SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		SPITupleTable *tt;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, EVAL_FETCH);
		if (SPI_processed == 0)
			break;
		tt = SPI_tuptable;
		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		tnull,
						lnull;
			Datum		td = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &tnull);
			Datum		ld = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &lnull);
			text	   *lt;
			const char *l;
			int			llen;
			int			truth;
			int			n;

			/* a row can take milliseconds (a long LSTM): check every row */
			CHECK_FOR_INTERRUPTS();
			if (tnull || lnull)
			{
				skipped++;
				continue;
			}
			lt = DatumGetTextPP(ld);
			l = VARDATA_ANY(lt);
			llen = VARSIZE_ANY_EXHDR(lt);
			if (convert)
			{
				l = pg_server_to_any(l, llen, PG_UTF8);
				llen = strlen(l);
			}
			truth = LabelIndex(model, l, llen);
			if (truth < 0)
			{
				unknown++;
				continue;
			}
			n = TcTextToIds(model, DatumGetTextPP(td), cm->ids);
			tc_model_infer(model, cm->ids, n, cm->probs, cm->work);
			TcCheck(tc_metrics_add(&mt, cm->probs, truth,
								   tc_model_decide(model, cm->probs,
												   model->cfg.threshold),
								   &err), &err);
		}
		MemoryContextSwitchTo(old);
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	SPI_finish();

	if (mt.rows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("relation %s has no rows to evaluate", qualrel),
				 errdetail("%ld rows had a NULL text or label and %ld a label the model does not know.",
						   skipped, unknown)));
	json = TcMetricsJson(&mt, model->labels, skipped, unknown);
	result = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	MemoryContextDelete(evalcxt);
	return result;
}

/* evaluate(model_name text, relation regclass, text_column name, label_column name) */
Datum
evaluate_name(PG_FUNCTION_ARGS)
{
	TcCachedModel *cm = TcResolveModelName(PG_GETARG_TEXT_PP(0));

	PG_RETURN_DATUM(Evaluate(cm, PG_GETARG_OID(1), PG_GETARG_NAME(2),
							 PG_GETARG_NAME(3)));
}

/* evaluate(model classifier, relation regclass, text_column name, label_column name) */
Datum
evaluate_classifier(PG_FUNCTION_ARGS)
{
	Classifier *c = PG_GETARG_CLASSIFIER_P(0);
	TcCachedModel *cm = TcCacheLoad(c->data, ClassifierSize(c));

	PG_RETURN_DATUM(Evaluate(cm, PG_GETARG_OID(1), PG_GETARG_NAME(2),
							 PG_GETARG_NAME(3)));
}
