/*
 * train.c
 *	  train_classifier(): stream a relation through SPI into the core's
 *	  trainer and store the model as a new version in the registry.
 *
 * Flow (see docs/architecture.md):
 *	 1. check options, the relation, its columns and the caller's SELECT
 *		privilege (the function runs as the caller), and that an existing
 *		model of that name is the caller's (registry.c's owner rule);
 *	 2. read the label set in the column type's own order (one DISTINCT
 *		query);
 *	 3. the core's tc_train pulls rows through a row source backed by an
 *		SPI cursor, fetched in chunks; both of its passes and the label
 *		query run read-only, so they see the same snapshot; id sequences
 *		are spilled to a temporary BufFile;
 *	 4. the model is serialized into a classifier value and inserted as the
 *		next version, with its per-epoch log, and deployed, all in the
 *		caller's transaction: an ERROR, a cancel or a crash leaves nothing.
 *
 * Memory: everything the core allocates lives in the "textclf train"
 * context, a child of the caller's context, deleted before returning; each
 * fetched chunk of rows lives in "textclf train rows", reset per fetch.
 * The BufFile is owned by the resource owner, so an abort removes it.
 * Identifiers are quoted, values are parameters, and every object in the
 * SQL text is schema-qualified.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "storage/buffile.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/array.h"

#include "textclf/format.h"
#include "textclf/trainer.h"
#include "glue.h"
#include "model_type.h"
#include "pg_textclf.h"

PG_FUNCTION_INFO_V1(train_classifier);

/* Options as given and resolved. */
typedef struct TrainOptions
{
	TcConfig	cfg;
	TcTrainOptions opts;
	char	   *class_weight_json;	/* NULL, "balanced" or an object */
	Jsonb	   *class_weight_obj;
	bool		balanced;
	int			deploy;			/* DEPLOY_IF_BETTER, _ALWAYS or _NEVER */
	int			deploy_metric;	/* METRIC_ACCURACY or METRIC_LOG_LOSS */
	bool		warm_start;
	const char *arch_key;		/* an architecture option given, if any */
} TrainOptions;

#define DEPLOY_IF_BETTER	0
#define DEPLOY_ALWAYS		1
#define DEPLOY_NEVER		2
#define METRIC_ACCURACY		0
#define METRIC_LOG_LOSS		1

static const char *const DeployNames[] = {"if_better", "always", "never"};
static const char *const MetricNames[] = {"accuracy", "log_loss"};

/* The SPI-cursor row source. */
typedef struct SpiSource
{
	SPIPlanPtr	plan;
	Portal		portal;
	MemoryContext rowcxt;		/* reset per fetch */
	bool		convert;		/* database encoding is not UTF-8 */
	long		rows;
} SpiSource;

/* The BufFile spill store. */
typedef struct FileSpill
{
	BufFile    *file;
	bool		writing;
} FileSpill;

/* What the epoch callback collects. */
typedef struct TrainProgress
{
	const char *model_name;
	TcEpochStats *epochs;		/* (max epochs) */
	int			nepochs;
	int			maxepochs;
} TrainProgress;

/* ---- options ---- */

static const char *const OptionNames[] = {
	"epochs", "batch_size", "max_len", "vocab_size", "embedding_dim",
	"hidden_size", "learning_rate", "validation_fraction", "seed", "threads",
	"patience", "clip_norm", "dropout", "ema_momentum", "tokenizer", "lowercase",
	"oov_token", "threshold", "class_weight", "beta1", "beta2", "epsilon",
	"deploy", "deploy_metric", "warm_start", NULL
};

/* Options that fix the architecture or tokenizer (taken from a warm start). */
static const char *const ArchOptionNames[] = {
	"max_len", "vocab_size", "embedding_dim", "hidden_size", "tokenizer",
	"lowercase", "oov_token", NULL
};

static void OptionTypeError(const char *key, const char *what) pg_attribute_noreturn();

/* Index of a JSON string value among names, or -1. */
static int
JsonChoice(const char *key, JsonbValue *v, const char *const *names, int n,
		   const char *what)
{
	if (v->type == jbvString)
		for (int i = 0; i < n; i++)
			if (strlen(names[i]) == (size_t) v->val.string.len &&
				memcmp(names[i], v->val.string.val, v->val.string.len) == 0)
				return i;
	OptionTypeError(key, what);
	return -1;
}

/* ERROR for an option of the wrong type. */
static void
OptionTypeError(const char *key, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"%s\" must be %s", key, what)));
}

/* A JSON number as double. */
static double
JsonNumber(const char *key, JsonbValue *v)
{
	if (v->type != jbvNumeric)
		OptionTypeError(key, "a number");
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8,
											  NumericGetDatum(v->val.numeric)));
}

/* A JSON integer within [lo, hi]. */
static int64
JsonInteger(const char *key, JsonbValue *v, int64 lo, int64 hi)
{
	double		d = JsonNumber(key, v);

	if (d != floor(d))
		OptionTypeError(key, "an integer");
	if (d < (double) lo || d > (double) hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be between " INT64_FORMAT " and " INT64_FORMAT,
						key, lo, hi)));
	return (int64) d;
}

/* A JSON number within [lo, hi]. */
static double
JsonRange(const char *key, JsonbValue *v, double lo, double hi)
{
	double		d = JsonNumber(key, v);

	if (!(d >= lo && d <= hi))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be between %g and %g", key, lo, hi)));
	return d;
}

/* A JSON boolean. */
static bool
JsonBool(const char *key, JsonbValue *v)
{
	if (v->type != jbvBool)
		OptionTypeError(key, "a boolean");
	return v->val.boolean;
}

/* Parse the options document into defaults overridden by its keys. */
static void
ParseOptions(Jsonb *jb, TrainOptions *o)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	memset(o, 0, sizeof(*o));
	tc_config_default(&o->cfg);
	tc_train_options_default(&o->opts);
	o->opts.threads = textclf_threads;

	if (jb == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object"),
				 errhint("Pass options as '{\"epochs\": 3}'::jsonb.")));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			bool		known = false;

			key = pnstrdup(v.val.string.val, v.val.string.len);
			for (int i = 0; OptionNames[i]; i++)
				if (strcmp(key, OptionNames[i]) == 0)
					known = true;
			if (!known)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unrecognized option \"%s\"", key),
						 errhint("Valid options are epochs, batch_size, max_len, vocab_size, embedding_dim, hidden_size, learning_rate, validation_fraction, seed, threads, patience, clip_norm, dropout, ema_momentum, tokenizer, lowercase, oov_token, threshold, class_weight, beta1, beta2, epsilon, deploy, deploy_metric and warm_start.")));
			for (int i = 0; ArchOptionNames[i]; i++)
				if (strcmp(key, ArchOptionNames[i]) == 0)
					o->arch_key = ArchOptionNames[i];
			continue;
		}
		if (tok != WJB_VALUE || key == NULL)
			continue;
		if (strcmp(key, "epochs") == 0)
			o->opts.epochs = (int) JsonInteger(key, &v, 1, 10000);
		else if (strcmp(key, "batch_size") == 0)
			o->opts.batch_size = (int) JsonInteger(key, &v, 1, TC_MAX_BATCH);
		else if (strcmp(key, "max_len") == 0)
			o->cfg.max_len = (int) JsonInteger(key, &v, 1, TC_MAX_MAX_LEN);
		else if (strcmp(key, "vocab_size") == 0)
			o->cfg.vocab_size = (int) JsonInteger(key, &v, 2, TC_MAX_VOCAB);
		else if (strcmp(key, "embedding_dim") == 0)
			o->cfg.embedding_dim = (int) JsonInteger(key, &v, 1, TC_MAX_EMBED);
		else if (strcmp(key, "hidden_size") == 0)
			o->cfg.hidden_size = (int) JsonInteger(key, &v, 1, TC_MAX_HIDDEN);
		else if (strcmp(key, "learning_rate") == 0)
		{
			o->opts.adam.lr = (float) JsonRange(key, &v, 0, 10);
			if (o->opts.adam.lr <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"learning_rate\" must be greater than 0")));
		}
		else if (strcmp(key, "validation_fraction") == 0)
		{
			o->opts.validation_fraction = JsonRange(key, &v, 0, 1);
			if (o->opts.validation_fraction >= 1.0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"validation_fraction\" must be less than 1")));
		}
		else if (strcmp(key, "seed") == 0)
			o->opts.seed = (uint64) JsonInteger(key, &v, 0, PG_INT64_MAX);
		else if (strcmp(key, "threads") == 0)
			o->opts.threads = (int) JsonInteger(key, &v, 1, 64);
		else if (strcmp(key, "patience") == 0)
			o->opts.patience = (int) JsonInteger(key, &v, 0, 10000);
		else if (strcmp(key, "clip_norm") == 0)
			o->opts.clip_norm = (float) JsonRange(key, &v, 0, 1e6);
		else if (strcmp(key, "dropout") == 0)
			o->opts.dropout = (float) JsonRange(key, &v, 0, 0.95);
		else if (strcmp(key, "ema_momentum") == 0)
			o->opts.ema_momentum = (float) JsonRange(key, &v, 0, 0.9999);
		else if (strcmp(key, "tokenizer") == 0)
		{
			if (v.type != jbvString)
				OptionTypeError(key, "\"word\" or \"char\"");
			if (v.val.string.len == 4 && memcmp(v.val.string.val, "word", 4) == 0)
				o->cfg.tok.mode = TC_TOK_WORD;
			else if (v.val.string.len == 4 && memcmp(v.val.string.val, "char", 4) == 0)
				o->cfg.tok.mode = TC_TOK_CHAR;
			else
				OptionTypeError(key, "\"word\" or \"char\"");
		}
		else if (strcmp(key, "lowercase") == 0)
			o->cfg.tok.lowercase = JsonBool(key, &v);
		else if (strcmp(key, "oov_token") == 0)
			o->cfg.use_oov = JsonBool(key, &v);
		else if (strcmp(key, "threshold") == 0)
		{
			o->cfg.threshold = (float) JsonRange(key, &v, 0, 1);
			if (o->cfg.threshold <= 0 || o->cfg.threshold >= 1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"threshold\" must be greater than 0 and less than 1")));
		}
		else if (strcmp(key, "beta1") == 0)
			o->opts.adam.beta1 = (float) JsonRange(key, &v, 0, 0.999999);
		else if (strcmp(key, "beta2") == 0)
			o->opts.adam.beta2 = (float) JsonRange(key, &v, 0, 0.999999);
		else if (strcmp(key, "epsilon") == 0)
		{
			o->opts.adam.eps = (float) JsonRange(key, &v, 1e-12, 1);
		}
		else if (strcmp(key, "deploy") == 0)
			o->deploy = JsonChoice(key, &v, DeployNames, 3,
								   "\"if_better\", \"always\" or \"never\"");
		else if (strcmp(key, "deploy_metric") == 0)
			o->deploy_metric = JsonChoice(key, &v, MetricNames, 2,
										  "\"accuracy\" or \"log_loss\"");
		else if (strcmp(key, "warm_start") == 0)
			o->warm_start = JsonBool(key, &v);
		else if (strcmp(key, "class_weight") == 0)
		{
			if (v.type == jbvString && v.val.string.len == 8 &&
				memcmp(v.val.string.val, "balanced", 8) == 0)
				o->balanced = true;
			else if (v.type == jbvBinary)
			{
				/* an object {"label": weight, ...}, resolved against the labels */
				JsonbValue *copy = palloc(sizeof(JsonbValue));

				*copy = v;
				o->class_weight_obj = JsonbValueToJsonb(copy);
				if (!JB_ROOT_IS_OBJECT(o->class_weight_obj))
					OptionTypeError(key, "\"balanced\" or an object of label weights");
			}
			else
				OptionTypeError(key, "\"balanced\" or an object of label weights");
		}
	}
}

/* Per-class weights from an object {"label": weight}; every label needed. */
static float *
ResolveClassWeights(Jsonb *obj, char **labels, int nlabels)
{
	float	   *w = palloc(sizeof(float) * nlabels);

	for (int k = 0; k < nlabels; k++)
	{
		JsonbValue	kv;
		JsonbValue *v;

		kv.type = jbvString;
		kv.val.string.val = labels[k];
		kv.val.string.len = strlen(labels[k]);
		v = findJsonbValueFromContainer(&obj->root, JB_FOBJECT, &kv);
		if (v == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"class_weight\" has no weight for label \"%s\"",
							labels[k])));
		w[k] = (float) JsonRange("class_weight", v, 0, 1e6);
	}
	/* and no weight for a label that does not exist */
	{
		JsonbIterator *it = JsonbIteratorInit(&obj->root);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			bool		found = false;

			if (tok != WJB_KEY)
				continue;
			for (int k = 0; k < nlabels; k++)
				if (strlen(labels[k]) == (size_t) v.val.string.len &&
					memcmp(labels[k], v.val.string.val, v.val.string.len) == 0)
					found = true;
			if (!found)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"class_weight\" names label \"%.*s\", which is not in the data",
								v.val.string.len, v.val.string.val)));
		}
	}
	return w;
}

/* The resolved options as a JSON object (stored with the version). */
static char *
OptionsJson(const TrainOptions *o)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s,
					 "{\"epochs\": %d, \"batch_size\": %d, \"max_len\": %d, "
					 "\"vocab_size\": %d, \"embedding_dim\": %d, \"hidden_size\": %d, "
					 "\"learning_rate\": %.9g, \"beta1\": %.9g, \"beta2\": %.9g, "
					 "\"epsilon\": %.9g, \"validation_fraction\": %.9g, "
					 "\"seed\": " UINT64_FORMAT ", \"threads\": %d, \"patience\": %d, "
					 "\"clip_norm\": %.9g, \"dropout\": %.9g, \"ema_momentum\": %.9g, \"tokenizer\": \"%s\", \"lowercase\": %s, "
					 "\"oov_token\": %s, \"threshold\": %.9g",
					 o->opts.epochs, o->opts.batch_size, o->cfg.max_len,
					 o->cfg.vocab_size, o->cfg.embedding_dim, o->cfg.hidden_size,
					 o->opts.adam.lr, o->opts.adam.beta1, o->opts.adam.beta2,
					 o->opts.adam.eps, o->opts.validation_fraction,
					 o->opts.seed, o->opts.threads, o->opts.patience,
					 o->opts.clip_norm, o->opts.dropout, o->opts.ema_momentum,
					 o->cfg.tok.mode == TC_TOK_CHAR ? "char" : "word",
					 o->cfg.tok.lowercase ? "true" : "false",
					 o->cfg.use_oov ? "true" : "false", o->cfg.threshold);
	appendStringInfo(&s, ", \"deploy\": \"%s\", \"deploy_metric\": \"%s\", "
					 "\"warm_start\": %s", DeployNames[o->deploy],
					 MetricNames[o->deploy_metric],
					 o->warm_start ? "true" : "false");
	if (o->balanced)
		appendStringInfoString(&s, ", \"class_weight\": \"balanced\"");
	else if (o->class_weight_obj)
		appendStringInfo(&s, ", \"class_weight\": %s",
						 JsonbToCString(NULL, &o->class_weight_obj->root,
										VARSIZE(o->class_weight_obj)));
	appendStringInfoChar(&s, '}');
	return s.data;
}

/* ---- relation and columns ---- */

/* Check the relation, the caller's privilege and the column types. */
void
TcCheckSource(Oid relid, Name textcol, Name labelcol, char **qualrel,
			const char **qtext, const char **qlabel)
{
	char	   *relname = get_rel_name(relid);
	char		relkind;
	AttrNumber	tatt,
				latt;
	Oid			ttype,
				ltype;
	char		tcat;
	bool		tpref;

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_VIEW &&
		relkind != RELKIND_MATVIEW && relkind != RELKIND_FOREIGN_TABLE &&
		relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot train on \"%s\"", relname),
				 errdetail("Only tables, views, materialized views and foreign tables can be read.")));
	tatt = get_attnum(relid, NameStr(*textcol));
	if (tatt == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						NameStr(*textcol), relname)));
	latt = get_attnum(relid, NameStr(*labelcol));
	if (latt == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						NameStr(*labelcol), relname)));
	if (tatt < 0 || latt < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot train on a system column")));

	/* the function runs as the caller: SELECT on the table or both columns */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		(pg_attribute_aclcheck(relid, tatt, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		 pg_attribute_aclcheck(relid, latt, GetUserId(), ACL_SELECT) != ACLCHECK_OK))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", relname)));

	ttype = get_atttype(relid, tatt);
	get_type_category_preferred(getBaseType(ttype), &tcat, &tpref);
	if (tcat != TYPCATEGORY_STRING)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" is of type %s, not a text type",
						NameStr(*textcol), format_type_be(ttype)),
				 errhint("The text column must be text, varchar or char; cast it in a view.")));
	ltype = getBaseType(get_atttype(relid, latt));
	get_type_category_preferred(ltype, &tcat, &tpref);
	if (tcat != TYPCATEGORY_STRING && ltype != BOOLOID && ltype != INT2OID &&
		ltype != INT4OID && ltype != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label column \"%s\" is of type %s",
						NameStr(*labelcol), format_type_be(ltype)),
				 errhint("The label column must be text, boolean or an integer type.")));

	*qualrel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										  relname);
	*qtext = quote_identifier(NameStr(*textcol));
	*qlabel = quote_identifier(NameStr(*labelcol));
}

/* The distinct labels in the label column type's order, as text. */
static char **
ReadLabels(const char *qualrel, const char *qtext, const char *qlabel,
		   int *nlabels, MemoryContext keep)
{
	StringInfoData q;
	int			ret;
	char	  **labels;

	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT s.l::pg_catalog.text FROM (SELECT DISTINCT %s AS l FROM %s "
					 "WHERE %s IS NOT NULL AND %s IS NOT NULL) s ORDER BY s.l LIMIT %d",
					 qlabel, qualrel, qtext, qlabel, TC_MAX_CLASSES + 1);
	ret = SPI_execute(q.data, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read labels: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("relation %s has no rows to train on", qualrel),
				 errdetail("No row has both a non-NULL text and a non-NULL label.")));
	if (SPI_processed > TC_MAX_CLASSES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("label column %s has more than %d distinct values",
						qlabel, TC_MAX_CLASSES),
				 errhint("A classifier supports at most %d classes; is this the right label column?",
						 TC_MAX_CLASSES)));
	if (SPI_processed < 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("label column %s has only one distinct value",
						qlabel),
				 errhint("A classifier needs rows of at least two classes.")));
	labels = MemoryContextAlloc(keep, sizeof(char *) * SPI_processed);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *l = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (GetDatabaseEncoding() != PG_UTF8)
			l = pg_server_to_any(l, strlen(l), PG_UTF8);
		if (strlen(l) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("label column %s contains an empty string", qlabel),
					 errhint("Use NULL for rows without a label.")));
		if (strlen(l) > TC_MAX_LABEL_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a label is longer than %d bytes", TC_MAX_LABEL_BYTES)));
		labels[i] = MemoryContextStrdup(keep, l);
	}
	*nlabels = (int) SPI_processed;
	SPI_freetuptable(SPI_tuptable);
	return labels;
}

/* ---- the row source ---- */

static TcStatus
SpiRewind(void *ctx, TcError *err)
{
	SpiSource  *s = ctx;

	if (s->portal)
		SPI_cursor_close(s->portal);
	/* read_only: the same snapshot as the label query, for both passes */
	s->portal = SPI_cursor_open(NULL, s->plan, NULL, NULL, true);
	s->rows = 0;
	return TC_OK;
}

/* A text datum as UTF-8 bytes, copied into the current context. */
static const char *
DatumText(Datum d, bool convert, size_t *len)
{
	text	   *t = DatumGetTextPP(d);
	const char *s = VARDATA_ANY(t);
	int			n = VARSIZE_ANY_EXHDR(t);

	char	   *copy;

	if (convert)
	{
		char	   *c = pg_server_to_any(s, n, PG_UTF8);

		if (c != s)
		{
			*len = strlen(c);
			return c;
		}
	}
	/* copy: the tuple (and a short-header datum in it) is freed after the fetch */
	copy = palloc(n + 1);
	memcpy(copy, s, n);
	copy[n] = '\0';
	*len = n;
	return copy;
}

static TcStatus
SpiNext(void *ctx, TcRow *rows, int max, int *n, TcError *err)
{
	SpiSource  *s = ctx;
	MemoryContext old;
	SPITupleTable *tt;

	CHECK_FOR_INTERRUPTS();
	MemoryContextReset(s->rowcxt);
	SPI_cursor_fetch(s->portal, true, max);
	tt = SPI_tuptable;
	old = MemoryContextSwitchTo(s->rowcxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		tnull,
					lnull;
		Datum		td = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &tnull);
		Datum		ld = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &lnull);

		rows[i].text = tnull ? NULL : DatumText(td, s->convert, &rows[i].text_len);
		rows[i].label = lnull ? NULL : DatumText(ld, s->convert, &rows[i].label_len);
		if (tnull)
			rows[i].text_len = 0;
		if (lnull)
			rows[i].label_len = 0;
	}
	MemoryContextSwitchTo(old);
	*n = (int) SPI_processed;
	s->rows += SPI_processed;
	SPI_freetuptable(tt);
	return TC_OK;
}

/* ---- the BufFile spill store ---- */

static TcStatus
SpillWrite(void *ctx, const void *buf, size_t n, uint64_t *offset, TcError *err)
{
	FileSpill  *f = ctx;
	int			fileno;
	off_t		off;

	if (!f->writing)
	{
		BufFileSeek(f->file, 0, 0, SEEK_END);
		f->writing = true;
	}
	BufFileTell(f->file, &fileno, &off);
	*offset = ((uint64_t) fileno << 32) | (uint64_t) off;
	BufFileWrite(f->file, (void *) buf, n);
	return TC_OK;
}

static TcStatus
SpillRead(void *ctx, uint64_t offset, void *buf, size_t n, TcError *err)
{
	FileSpill  *f = ctx;

	f->writing = false;
	if (BufFileSeek(f->file, (int) (offset >> 32),
					(off_t) (offset & 0xFFFFFFFF), SEEK_SET) != 0)
		return tc_error(err, TC_ERR_IO, "could not seek in the temporary file of training rows");
	if (BufFileRead(f->file, buf, n) != n)
		return tc_error(err, TC_ERR_IO, "could not read the temporary file of training rows");
	return TC_OK;
}

/* ---- callbacks ---- */

static TcStatus
OnBatch(void *arg, const TcBatchStats *s)
{
	CHECK_FOR_INTERRUPTS();
	TcProgressBatch(s);
	return TC_OK;
}

static TcStatus
OnRows(void *arg, long rows)
{
	CHECK_FOR_INTERRUPTS();
	TcProgressRows(rows);
	return TC_OK;
}

/* Format a metric that may be NaN. */
static char *
Metric(double x)
{
	return isnan(x) ? pstrdup("-") : psprintf("%.4f", x);
}

static TcStatus
OnEpoch(void *arg, const TcEpochStats *s)
{
	TrainProgress *p = arg;

	CHECK_FOR_INTERRUPTS();
	TcProgressEpoch(s);
	if (p->nepochs < p->maxepochs)
		p->epochs[p->nepochs++] = *s;
	if (textclf_progress)
		ereport(NOTICE,
				(errmsg("model \"%s\" epoch %d: loss %s, accuracy %s, validation loss %s, validation accuracy %s, %.0f rows/s%s",
						p->model_name, s->epoch, Metric(s->loss),
						Metric(s->accuracy), Metric(s->val_loss),
						Metric(s->val_accuracy), s->rows_per_sec,
						s->best ? "" : " (no improvement)")));
	return TC_OK;
}

/* JSON number or null. */
static char *
JsonNum(double x)
{
	return isfinite(x) ? psprintf("%.9g", x) : pstrdup("null");
}

/* A C string as a JSON string literal. */
static char *
JsonString(const char *str)
{
	StringInfoData s;

	initStringInfo(&s);
	escape_json(&s, str);
	return s.data;
}

/* Insert the version, its epoch log and its deployment; returns the version. */
static int32
StoreVersion(const char *name, const char *qualrel, Name textcol,
			 Name labelcol, const char *options_json, char **labels,
			 int nlabels, const char *metrics_json, uint64 content_id,
			 Classifier *value, const TrainProgress *prog, bool deploy,
			 const char *reason)
{
	Oid			types[11] = {TEXTOID, TEXTOID, NAMEOID, NAMEOID, TEXTOID,
	TEXTARRAYOID, TEXTOID, INT8OID, TcClassifierTypeOid(), INT4OID, TEXTOID};
	Datum		values[11];
	TcRegistryUser save;
	int			ret;
	int32		version;

	values[0] = CStringGetTextDatum(name);
	values[10] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	version = TcBeginNewVersion(name, &save);

	values[1] = CStringGetTextDatum(qualrel);
	values[2] = NameGetDatum(textcol);
	values[3] = NameGetDatum(labelcol);
	values[4] = CStringGetTextDatum(options_json);
	values[5] = TcLabelsArray(labels, nlabels);
	values[6] = CStringGetTextDatum(metrics_json);
	values[7] = Int64GetDatum((int64) content_id);
	values[8] = PointerGetDatum(value);
	values[9] = Int32GetDatum(version);
	ret = SPI_execute_with_args("INSERT INTO textclf.models (model_name, version, "
								"owner, source_relation, text_column, label_column, "
								"options, labels, metrics, content_id, model) VALUES "
								"($1, $10, $11::pg_catalog.name, $2, $3, $4, "
								"$5::pg_catalog.jsonb, $6, $7::pg_catalog.jsonb, $8, $9)",
								11, types, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not store the model: %s", SPI_result_code_string(ret));

	for (int e = 0; e < prog->nepochs; e++)
	{
		const TcEpochStats *s = &prog->epochs[e];
		Oid			lt[8] = {TEXTOID, INT4OID, INT4OID, FLOAT8OID, FLOAT8OID,
		FLOAT8OID, FLOAT8OID, FLOAT8OID};
		Datum		lv[8];
		char		ln[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		lv[0] = values[0];
		lv[1] = Int32GetDatum(version);
		lv[2] = Int32GetDatum(s->epoch);
		lv[3] = Float8GetDatum(s->loss);
		lv[4] = Float8GetDatum(s->accuracy);
		lv[5] = Float8GetDatum(s->val_loss);
		lv[6] = Float8GetDatum(s->val_accuracy);
		lv[7] = Float8GetDatum(s->seconds);
		if (isnan(s->val_loss))
			ln[5] = ln[6] = 'n';
		ret = SPI_execute_with_args("INSERT INTO textclf.training_log (model_name, "
									"version, epoch, loss, accuracy, validation_loss, "
									"validation_accuracy, seconds) VALUES ($1, $2, $3, "
									"$4, $5, $6, $7, $8)",
									8, lt, lv, ln, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "could not store the training log");
	}

	values[1] = Int32GetDatum(version);
	if (deploy)
	{
		Oid			dt[4] = {TEXTOID, INT4OID, TEXTOID, TEXTOID};
		Datum		dv[4] = {values[0], values[1], values[10],
		CStringGetTextDatum(reason)};

		ret = SPI_execute_with_args("INSERT INTO textclf.deployments (model_name, "
									"version, deployed_by, reason) VALUES ($1, $2, "
									"$3::pg_catalog.name, $4)",
									4, dt, dv, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "could not deploy the model");
	}
	TcRegistryEnd(&save);
	return version;
}

/* The deployed version of a model (0 when none), read as the registry owner. */
static int32
DeployedVersion(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	TcRegistryUser save;
	bool		isnull;
	int			ret;
	int32		v = 0;

	TcRegistryBegin(&save);
	ret = SPI_execute_with_args("SELECT d.version FROM textclf.deployments d "
								"WHERE d.model_name OPERATOR(pg_catalog.=) $1 "
								"AND NOT d.rolled_back ORDER BY d.id DESC LIMIT 1",
								1, types, values, NULL, true, 1);
	TcRegistryEnd(&save);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the textclf registry");
	if (SPI_processed == 1)
		v = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	return v;
}

/* One model's score on the validation rows. */
typedef struct Score
{
	const TcModel *model;
	int		   *label_map;		/* (training labels) -> model class, or -1 */
	int32	   *ids;			/* (max_len) */
	float	   *work;
	float	   *probs;
	long		correct;
	double		log_loss;
} Score;

/* Prepare a Score for model, mapping the training labels to its classes. */
static void
ScoreInit(Score *sc, const TcModel *model, char **labels, int nlabels)
{
	memset(sc, 0, sizeof(*sc));
	sc->model = model;
	sc->label_map = palloc(sizeof(int) * nlabels);
	for (int i = 0; i < nlabels; i++)
	{
		sc->label_map[i] = -1;
		for (int k = 0; k < model->cfg.num_classes; k++)
			if (strcmp(labels[i], model->labels[k]) == 0)
				sc->label_map[i] = k;
	}
	sc->ids = palloc(sizeof(int32) * model->cfg.max_len);
	sc->work = palloc(sizeof(float) * tc_model_infer_work_floats(model));
	sc->probs = palloc(sizeof(float) * model->cfg.num_classes);
}

/* Score one validation row (truth: index into the training labels). */
static void
ScoreRow(Score *sc, const TcRow *r, int truth)
{
	int			n = tc_text_to_ids(sc->model->vocab, &sc->model->cfg.tok,
								   r->text, r->text_len,
								   sc->model->cfg.max_len, sc->ids);
	int			k = sc->label_map[truth];
	double		p;

	tc_model_infer(sc->model, sc->ids, n, sc->probs, sc->work);
	if (k >= 0 && tc_model_decide(sc->model, sc->probs,
								  sc->model->cfg.threshold) == k)
		sc->correct++;
	p = k >= 0 ? sc->probs[k] : 0.0;
	sc->log_loss += -log(p > 1e-15 ? p : 1e-15);
}

/*
 * Score the new and the deployed model on the same validation rows (the
 * trainer's rule, tc_is_validation_row, finds them again in the same
 * snapshot).  Fills each Score; returns the number of rows.
 */
static long
CompareOnValidation(TcRowSource *src, const TrainOptions *o, char **labels,
					int nlabels, Score *fresh, Score *deployed)
{
	TcRow		rows[256];
	uint64		ordinal = 0;
	long		nrows = 0;
	TcError		err;
	int			n;

	TcCheck(src->rewind(src->ctx, &err), &err);
	for (;;)
	{
		TcCheck(src->next(src->ctx, rows, 256, &n, &err), &err);
		if (n == 0)
			break;
		for (int i = 0; i < n; i++, ordinal++)
		{
			int			truth = -1;

			if (rows[i].text == NULL || rows[i].label == NULL ||
				!tc_is_validation_row(o->opts.seed, ordinal,
									  o->opts.validation_fraction))
				continue;
			for (int k = 0; k < nlabels; k++)
				if (strlen(labels[k]) == rows[i].label_len &&
					memcmp(labels[k], rows[i].label, rows[i].label_len) == 0)
					truth = k;
			if (truth < 0)
				continue;
			CHECK_FOR_INTERRUPTS();	/* two inferences a row: check each */
			ScoreRow(fresh, &rows[i], truth);
			ScoreRow(deployed, &rows[i], truth);
			nrows++;
		}
	}
	return nrows;
}

/*
 * Decide whether the new model is deployed, and why (the reason is stored
 * with the deployment and returned to the caller).
 */
static bool
DecideDeploy(const char *name, const TrainOptions *o, TcModel *model,
			 TcRowSource *src, char **labels, int nlabels, char **reason)
{
	int32		current;
	TcCachedModel *cm;
	Score		fresh,
				old;
	long		n;
	double		mf,
				mo;
	bool		better;
	TcError		err;

	if (o->deploy == DEPLOY_ALWAYS)
	{
		*reason = pstrdup("deploy is \"always\"");
		return true;
	}
	if (o->deploy == DEPLOY_NEVER)
	{
		*reason = pstrdup("deploy is \"never\"");
		return false;
	}
	current = DeployedVersion(name);
	if (current == 0)
	{
		*reason = pstrdup("no version was deployed");
		return true;
	}
	if (o->opts.validation_fraction <= 0)
	{
		*reason = psprintf("not deployed: no validation rows to compare with version %d",
						   current);
		return false;
	}
	cm = TcResolveModelName(cstring_to_text(psprintf("%s@%d", name, current)));
	TcCheck(tc_model_prepare_infer(model, &err), &err);
	ScoreInit(&fresh, model, labels, nlabels);
	ScoreInit(&old, cm->model, labels, nlabels);
	n = CompareOnValidation(src, o, labels, nlabels, &fresh, &old);
	if (n == 0)
	{
		*reason = psprintf("not deployed: no validation rows to compare with version %d",
						   current);
		return false;
	}
	if (o->deploy_metric == METRIC_LOG_LOSS)
	{
		mf = fresh.log_loss / n;
		mo = old.log_loss / n;
		better = mf < mo;
	}
	else
	{
		mf = (double) fresh.correct / n;
		mo = (double) old.correct / n;
		better = mf > mo;
	}
	*reason = psprintf("%svalidation %s %.4f %s %.4f of version %d on %ld rows",
					   better ? "" : "not deployed: ",
					   MetricNames[o->deploy_metric], mf,
					   better ? "beats" : "does not beat", mo, current, n);
	return better;
}

/*
 * Replace the training labels by those of the warm-start model (in its
 * order), after checking that the data has no label the model lacks.
 */
static char **
WarmStartLabels(const TcModel *m, char **labels, int nlabels, int *nout,
				const char *name, MemoryContext keep)
{
	char	  **out;

	for (int i = 0; i < nlabels; i++)
	{
		bool		found = false;

		for (int k = 0; k < m->cfg.num_classes; k++)
			if (strcmp(labels[i], m->labels[k]) == 0)
				found = true;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("label \"%s\" is not a class of model \"%s\"",
							labels[i], name),
					 errdetail("A warm start keeps the deployed version's classes."),
					 errhint("Train without \"warm_start\" to learn new classes.")));
	}
	out = MemoryContextAlloc(keep, sizeof(char *) * m->cfg.num_classes);
	for (int k = 0; k < m->cfg.num_classes; k++)
		out[k] = MemoryContextStrdup(keep, m->labels[k]);
	*nout = m->cfg.num_classes;
	return out;
}

/*
 * train_classifier(model_name text, relation regclass, text_column name,
 *					label_column name, options jsonb DEFAULT '{}')
 */
Datum
train_classifier(PG_FUNCTION_ARGS)
{
	char	   *model_name;
	Oid			relid;
	Name		textcol,
				labelcol;
	Jsonb	   *options;
	TrainOptions o;
	char	   *qualrel;
	const char *qtext,
			   *qlabel;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext traincxt;
	TcAllocator alloc;
	TcError		err;
	TcModel    *model;
	TcTrainResult res;
	TcTrainCallbacks cb;
	TrainProgress prog;
	SpiSource	src;
	FileSpill	fspill;
	TcRowSource rsrc;
	TcSpill		spill;
	TcStatus	st;
	char	  **labels;
	int			nlabels;
	float	   *class_w = NULL;
	StringInfoData q;
	size_t		size;
	unsigned char *blob;
	uint64		content_id;
	Classifier *value;
	char	   *metrics;
	char	   *val_json;
	char	   *options_json;
	int32		version;
	TupleDesc	tupdesc;
	Datum		outv[13];
	bool		outn[13];
	bool		deploy;
	char	   *reason;
	TcCachedModel *warm = NULL;
	Datum	   *ldatums;
	instr_time	start,
				duration;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("model name, relation and column names must not be NULL")));
	model_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	relid = PG_GETARG_OID(1);
	textcol = PG_GETARG_NAME(2);
	labelcol = PG_GETARG_NAME(3);
	options = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot train a model during recovery"),
				 errhint("Train on the primary server; replicas receive the model with the registry.")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	TcCheckModelName(model_name);
	ParseOptions(options, &o);
	o.opts.debug_nan_batch = textclf_test_nan_batch;
	{
		TcConfig	c = o.cfg;

		c.num_classes = 2;
		st = tc_config_validate(&c, &err);
		TcCheck(st, &err);
		/* refuse an oversized model before reading any row */
		TcCheckModelMemory(&c, o.opts.batch_size, o.opts.threads, "training");
	}
	TcCheckSource(relid, textcol, labelcol, &qualrel, &qtext, &qlabel);
	INSTR_TIME_SET_CURRENT(start);

	traincxt = AllocSetContextCreate(callcxt, "textclf train",
									 ALLOCSET_DEFAULT_SIZES);
	tc_pg_allocator(&alloc, traincxt);
	/* live progress slot, released when traincxt goes (progress.c) */
	TcProgressBegin(traincxt, model_name, o.opts.epochs, o.opts.batch_size);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* fail before training, not only when storing (checked again there) */
	TcCheckModelOwner(cstring_to_text(model_name));
	labels = ReadLabels(qualrel, qtext, qlabel, &nlabels, traincxt);
	if (o.warm_start)
	{
		if (o.arch_key)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" cannot be combined with \"warm_start\"",
							o.arch_key),
					 errdetail("A warm start keeps the architecture and tokenizer of the deployed version.")));
		warm = TcResolveModelName(cstring_to_text(model_name));
		labels = WarmStartLabels(warm->model, labels, nlabels, &nlabels,
								 model_name, traincxt);
		o.opts.warm_start = warm->model;
		o.cfg = warm->model->cfg;
	}
	{
		/* again with the real label count (and a warm start's architecture) */
		TcConfig	c = o.cfg;

		c.num_classes = nlabels;
		TcCheckModelMemory(&c, o.opts.batch_size, o.opts.threads, "training");
	}
	if (o.class_weight_obj)
	{
		class_w = ResolveClassWeights(o.class_weight_obj, labels, nlabels);
		o.opts.class_weight_mode = 2;
		o.opts.class_weights = class_w;
	}
	else if (o.balanced)
		o.opts.class_weight_mode = 1;

	memset(&src, 0, sizeof(src));
	initStringInfo(&q);
	appendStringInfo(&q, "SELECT %s::pg_catalog.text, %s::pg_catalog.text FROM %s",
					 qtext, qlabel, qualrel);
	src.plan = SPI_prepare(q.data, 0, NULL);
	if (src.plan == NULL)
		elog(ERROR, "could not prepare the training query: %s",
			 SPI_result_code_string(SPI_result));
	src.rowcxt = AllocSetContextCreate(traincxt, "textclf train rows",
									   ALLOCSET_DEFAULT_SIZES);
	src.convert = (GetDatabaseEncoding() != PG_UTF8);
	rsrc.ctx = &src;
	rsrc.rewind = SpiRewind;
	rsrc.next = SpiNext;

	{
		MemoryContext old = MemoryContextSwitchTo(traincxt);

		fspill.file = BufFileCreateTemp(false);
		fspill.writing = true;
		MemoryContextSwitchTo(old);
	}
	spill.ctx = &fspill;
	spill.write = SpillWrite;
	spill.read = SpillRead;

	prog.model_name = model_name;
	prog.maxepochs = o.opts.epochs;
	prog.nepochs = 0;
	prog.epochs = MemoryContextAllocZero(traincxt,
										 sizeof(TcEpochStats) * o.opts.epochs);
	cb.arg = &prog;
	cb.on_batch = OnBatch;
	cb.on_epoch = OnEpoch;
	cb.on_rows = OnRows;

	if (o.opts.warm_start)		/* no word-count pass: one pass over the rows */
		TcProgressPhase(TC_PHASE_TOKENIZING);
	st = tc_train(&alloc, &o.cfg, &o.opts, (const char *const *) labels,
				  nlabels, &rsrc, &spill, &cb, &model, &res, &err);
	BufFileClose(fspill.file);
	if (st != TC_OK)
		TcReportError(&err);
	TcProgressPhase(TC_PHASE_STORING);
	deploy = DecideDeploy(model_name, &o, model, &rsrc, labels, nlabels,
						  &reason);
	reason = MemoryContextStrdup(callcxt, reason);	/* outlives SPI_finish */
	if (src.portal)
		SPI_cursor_close(src.portal);
	if (res.rows_skipped > 0)
		ereport(NOTICE,
				(errmsg("skipped %ld rows with a NULL text or label",
						res.rows_skipped)));

	/* serialize into a classifier value */
	size = tc_model_serialized_size(model);
	blob = MemoryContextAllocHuge(traincxt, size);
	st = tc_model_serialize(model, blob, size, &content_id, &err);
	TcCheck(st, &err);
	value = ClassifierFromBytes(blob, size);

	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	options_json = OptionsJson(&o);
	val_json = res.val_metrics.confusion ?
		TcMetricsJson(&res.val_metrics, labels, 0, 0) : pstrdup("null");
	metrics = psprintf("{\"train_loss\": %s, \"train_accuracy\": %s, "
					   "\"validation_loss\": %s, \"validation_accuracy\": %s, "
					   "\"train_rows\": %ld, \"validation_rows\": %ld, "
					   "\"skipped_rows\": %ld, \"epochs_run\": %d, \"best_epoch\": %d, "
					   "\"seconds\": %.3f, \"validation\": %s, "
					   "\"deployed\": %s, \"deploy_reason\": %s}",
					   JsonNum(res.final.loss), JsonNum(res.final.accuracy),
					   JsonNum(res.final.val_loss), JsonNum(res.final.val_accuracy),
					   res.rows_train, res.rows_val, res.rows_skipped,
					   res.epochs_run, res.best_epoch,
					   INSTR_TIME_GET_DOUBLE(duration), val_json,
					   deploy ? "true" : "false", JsonString(reason));
	version = StoreVersion(model_name, qualrel, textcol, labelcol, options_json,
						   labels, nlabels, metrics, content_id, value, &prog,
						   deploy, reason);
	SPI_finish();

	if (textclf_progress)
		ereport(NOTICE,
				(errmsg("model \"%s\" version %d trained on %ld rows (%ld for validation) in %.1f s: validation accuracy %s; %s%s",
						model_name, version, res.rows_train, res.rows_val,
						INSTR_TIME_GET_DOUBLE(duration),
						Metric(res.final.val_accuracy),
						deploy ? "deployed: " : "", reason)));

	/* the result row, built in the caller's context */
	MemoryContextSwitchTo(callcxt);
	ldatums = palloc(sizeof(Datum) * nlabels);
	for (int i = 0; i < nlabels; i++)
		ldatums[i] = CStringGetTextDatum(labels[i]);
	memset(outn, 0, sizeof(outn));
	outv[0] = CStringGetTextDatum(model_name);
	outv[1] = Int32GetDatum(version);
	outv[2] = PointerGetDatum(construct_array(ldatums, nlabels, TEXTOID, -1,
											  false, TYPALIGN_INT));
	outv[3] = Int64GetDatum(res.rows_train);
	outv[4] = Int64GetDatum(res.rows_val);
	outv[5] = Int32GetDatum(res.epochs_run);
	outv[6] = Float8GetDatum(res.final.loss);
	outv[7] = Float8GetDatum(res.final.accuracy);
	outv[8] = Float8GetDatum(res.final.val_loss);
	outv[9] = Float8GetDatum(res.final.val_accuracy);
	outv[10] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(duration));
	outn[8] = outn[9] = (res.rows_val == 0);
	outv[11] = BoolGetDatum(deploy);
	outv[12] = CStringGetTextDatum(reason);
	MemoryContextDelete(traincxt);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, outv, outn)));
}
