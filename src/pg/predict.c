/*
 * predict.c
 *	  Inline scoring: predict() and predict_proba() for a model name (the
 *	  deployed version, or a pinned one as 'name@3') and for a classifier
 *	  value, plus tokenize().
 *
 * Per query, the name is resolved once, after checking that the current
 * user may use the model (acl.c: owner, grantee or superuser; resolved
 * again when the user changes).  The result is kept in fn_extra,
 * allocated in fn_mcxt; the decoded weights come from the backend-wide
 * cache (cache.c) keyed by content id, so a query over many rows pays the
 * load once and a later query picks up a newly deployed version.  Per row:
 * convert to UTF-8 if needed, tokenize, run the model; nothing is allocated
 * besides the result datum.  Nothing is written, so these functions work on
 * hot standbys and in parallel workers.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "textclf/format.h"
#include "glue.h"
#include "model_type.h"

PG_FUNCTION_INFO_V1(predict_name);
PG_FUNCTION_INFO_V1(predict_proba_name);
PG_FUNCTION_INFO_V1(predict_classifier);
PG_FUNCTION_INFO_V1(predict_proba_classifier);
PG_FUNCTION_INFO_V1(tokenize_name);
PG_FUNCTION_INFO_V1(predict_name_threshold);
PG_FUNCTION_INFO_V1(predict_classifier_threshold);

/* What a predict call remembers for the rest of its query. */
typedef struct PredictState
{
	text	   *name;			/* model name argument, copied (name forms) */
	uint64		content_id;
	TcCachedModel *cm;
	uint64		generation;		/* TcCacheGeneration() when cm was taken */
	Oid			userid;			/* the user checked by ResolveModel (name forms) */
} PredictState;

/* Tokenize t for model m into ids (max_len entries); returns the count. */
int
TcTextToIds(const TcModel *m, text *t, int32 *ids)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	char	   *conv = NULL;
	int			n;

	if (GetDatabaseEncoding() != PG_UTF8)
	{
		conv = pg_server_to_any(s, len, PG_UTF8);
		if (conv != s)
		{
			s = conv;
			len = strlen(conv);
		}
		else
			conv = NULL;
	}
	n = tc_text_to_ids(m->vocab, &m->cfg.tok, s, len, m->cfg.max_len, ids);
	if (conv)
		pfree(conv);
	return n;
}

/* Split "name@N" into a name and a version (0 when not pinned). */
static void
ParseModelName(text *arg, char **name, int32 *version)
{
	char	   *s = text_to_cstring(arg);
	char	   *at = strrchr(s, '@');

	*version = 0;
	if (at != NULL && at[1] != '\0')
	{
		char	   *end;
		long		v = strtol(at + 1, &end, 10);

		if (*end == '\0' && v > 0 && v <= PG_INT32_MAX)
		{
			*at = '\0';
			*version = (int32) v;
		}
	}
	*name = s;
}

/*
 * Resolve a model name to its deployed (or pinned) version and load it into
 * the cache.  Reads the registry through SPI, which is allowed in parallel
 * workers and on standbys (read only).
 */
static TcCachedModel *
ResolveModel(text *arg, uint64 *content_id)
{
	char	   *name;
	int32		version;
	Oid			argtypes[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	bool		isnull;
	int			ret;
	uint64		id;
	TcCachedModel *cm;
	TcRegistryUser save;

	ParseModelName(arg, &name, &version);
	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(version);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* owner, grantee or superuser; a missing model is reported below */
	TcCheckModelUse(name);
	TcRegistryBegin(&save);
	version = TcResolveVersion(name, version, &id,
							   psprintf("Train it again, or pin a version as '%s@N'.",
										name));
	cm = TcCacheLookup(id);
	if (cm == NULL)
	{
		Datum		d;
		Classifier *c;

		values[1] = Int32GetDatum(version);
		ret = SPI_execute_with_args("SELECT m.model FROM textclf.models m "
									"WHERE m.model_name OPERATOR(pg_catalog.=) $1 "
									"AND m.version OPERATOR(pg_catalog.=) $2",
									2, argtypes, values, NULL, true, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "model \"%s\" version %d vanished", name, version);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						  &isnull);
		if (isnull)
			elog(ERROR, "model \"%s\" version %d has no weights", name, version);
		c = DatumGetClassifierP(d);
		cm = TcCacheLoad(c->data, ClassifierSize(c));
	}
	TcRegistryEnd(&save);
	SPI_finish();
	*content_id = id;
	return cm;
}

/* Resolve a model name for callers outside this file (evaluate). */
TcCachedModel *
TcResolveModelName(text *name)
{
	uint64		id;

	return ResolveModel(name, &id);
}

/* The cached model for a name-taking call, resolved once per query. */
static TcCachedModel *
ModelForName(FunctionCallInfo fcinfo, text *name)
{
	PredictState *ps = (PredictState *) fcinfo->flinfo->fn_extra;

	if (ps != NULL && ps->name != NULL && ps->userid == GetUserId() &&
		VARSIZE_ANY_EXHDR(ps->name) == VARSIZE_ANY_EXHDR(name) &&
		memcmp(VARDATA_ANY(ps->name), VARDATA_ANY(name),
			   VARSIZE_ANY_EXHDR(name)) == 0)
	{
		if (ps->generation == TcCacheGeneration())
			return ps->cm;
		ps->cm = TcCacheLookup(ps->content_id);
		if (ps->cm == NULL)
			ps->cm = ResolveModel(name, &ps->content_id);
		ps->generation = TcCacheGeneration();
		return ps->cm;
	}
	if (ps == NULL)
		ps = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									sizeof(PredictState));
	else if (ps->name != NULL)
		pfree(ps->name);
	fcinfo->flinfo->fn_extra = ps;
	ps->name = NULL;
	ps->userid = GetUserId();
	ps->cm = ResolveModel(name, &ps->content_id);
	ps->name = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
										   VARSIZE_ANY(name));
	memcpy(ps->name, name, VARSIZE_ANY(name));
	ps->generation = TcCacheGeneration();
	return ps->cm;
}

/* The cached model for a classifier argument. */
static TcCachedModel *
ModelForValue(FunctionCallInfo fcinfo, int argno)
{
	PredictState *ps = (PredictState *) fcinfo->flinfo->fn_extra;
	Datum		d = PG_GETARG_DATUM(argno);
	Classifier *head;
	uint64		id;
	TcCachedModel *cm;

	/* read only the header to find the content id; detoast all on a miss */
	head = (Classifier *) PG_DETOAST_DATUM_SLICE(d, 0, TC_FORMAT_MIN_SIZE);
	if (ClassifierSize(head) < TC_FORMAT_MIN_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary data for type %s", "classifier")));
	id = tc_model_blob_id(head->data);
	if (ps != NULL && ps->content_id == id &&
		ps->generation == TcCacheGeneration())
		return ps->cm;
	cm = TcCacheLookup(id);
	if (cm == NULL)
	{
		Classifier *c = DatumGetClassifierP(d);

		cm = TcCacheLoad(c->data, ClassifierSize(c));
	}
	if (ps == NULL)
	{
		ps = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									sizeof(PredictState));
		fcinfo->flinfo->fn_extra = ps;
	}
	ps->content_id = id;
	ps->cm = cm;
	ps->generation = TcCacheGeneration();
	return cm;
}

/* Run the model on one text; fills cm->probs. */
static void
Score(TcCachedModel *cm, text *input)
{
	int			n = TcTextToIds(cm->model, input, cm->ids);

	tc_model_infer(cm->model, cm->ids, n, cm->probs, cm->work);
}

/* The predicted label as text, deciding two classes at threshold. */
static Datum
LabelResultAt(TcCachedModel *cm, float threshold)
{
	int			k = tc_model_decide(cm->model, cm->probs, threshold);
	const char *label = cm->model->labels[k];

	if (GetDatabaseEncoding() != PG_UTF8)
		label = pg_any_to_server(label, strlen(label), PG_UTF8);
	return CStringGetTextDatum(label);
}

/* The predicted label with the model's own threshold. */
static Datum
LabelResult(TcCachedModel *cm)
{
	return LabelResultAt(cm, cm->model->cfg.threshold);
}

/* Check a per-call threshold for the model. */
static float
CheckThreshold(TcCachedModel *cm, double t)
{
	if (cm->model->cfg.num_classes != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a decision threshold applies to two-class models only"),
				 errdetail("The model has %d classes; it predicts the most probable one.",
						   cm->model->cfg.num_classes)));
	if (!(t > 0.0 && t < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("threshold must be greater than 0 and less than 1")));
	return (float) t;
}

/* The class probabilities as float8[]. */
static Datum
ProbaResult(TcCachedModel *cm)
{
	int			K = cm->model->cfg.num_classes;
	Datum		elems[TC_MAX_CLASSES];

	for (int k = 0; k < K; k++)
		elems[k] = Float8GetDatum((double) cm->probs[k]);
	return PointerGetDatum(construct_array(elems, K, FLOAT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* predict(model_name text, input text) RETURNS text */
Datum
predict_name(PG_FUNCTION_ARGS)
{
	TcCachedModel *cm;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	cm = ModelForName(fcinfo, PG_GETARG_TEXT_PP(0));
	Score(cm, PG_GETARG_TEXT_PP(1));
	PG_RETURN_DATUM(LabelResult(cm));
}

/* predict_proba(model_name text, input text) RETURNS float8[] */
Datum
predict_proba_name(PG_FUNCTION_ARGS)
{
	TcCachedModel *cm;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	cm = ModelForName(fcinfo, PG_GETARG_TEXT_PP(0));
	Score(cm, PG_GETARG_TEXT_PP(1));
	PG_RETURN_DATUM(ProbaResult(cm));
}

/* predict(classifier, text) RETURNS text */
Datum
predict_classifier(PG_FUNCTION_ARGS)
{
	TcCachedModel *cm;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	cm = ModelForValue(fcinfo, 0);
	Score(cm, PG_GETARG_TEXT_PP(1));
	PG_RETURN_DATUM(LabelResult(cm));
}

/* predict_proba(classifier, text) RETURNS float8[] */
Datum
predict_proba_classifier(PG_FUNCTION_ARGS)
{
	TcCachedModel *cm;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	cm = ModelForValue(fcinfo, 0);
	Score(cm, PG_GETARG_TEXT_PP(1));
	PG_RETURN_DATUM(ProbaResult(cm));
}

/* predict(model_name text, input text, threshold float8) RETURNS text */
Datum
predict_name_threshold(PG_FUNCTION_ARGS)
{
	TcCachedModel *cm;
	float		t;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	cm = ModelForName(fcinfo, PG_GETARG_TEXT_PP(0));
	t = CheckThreshold(cm, PG_GETARG_FLOAT8(2));
	Score(cm, PG_GETARG_TEXT_PP(1));
	PG_RETURN_DATUM(LabelResultAt(cm, t));
}

/* predict(classifier, input text, threshold float8) RETURNS text */
Datum
predict_classifier_threshold(PG_FUNCTION_ARGS)
{
	TcCachedModel *cm;
	float		t;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	cm = ModelForValue(fcinfo, 0);
	t = CheckThreshold(cm, PG_GETARG_FLOAT8(2));
	Score(cm, PG_GETARG_TEXT_PP(1));
	PG_RETURN_DATUM(LabelResultAt(cm, t));
}

/* tokenize(model_name text, input text) RETURNS text[]: the tokens kept */
Datum
tokenize_name(PG_FUNCTION_ARGS)
{
	TcCachedModel *cm;
	int			n;
	Datum	   *elems;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	cm = ModelForName(fcinfo, PG_GETARG_TEXT_PP(0));
	n = TcTextToIds(cm->model, PG_GETARG_TEXT_PP(1), cm->ids);
	elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	for (int i = 0; i < n; i++)
	{
		size_t		len;
		const char *w = tc_vocab_word(cm->model->vocab, cm->ids[i], &len);

		if (w == NULL)
			elems[i] = CStringGetTextDatum("[UNK]");
		else
		{
			char	   *conv = pg_any_to_server(w, (int) len, PG_UTF8);

			elems[i] = PointerGetDatum(cstring_to_text_with_len(conv,
																conv == w ? (int) len : (int) strlen(conv)));
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false,
										  TYPALIGN_INT));
}
