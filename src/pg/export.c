/*
 * export.c
 *	  export_model() and import_model(): a model version as one JSON
 *	  document, with its options, labels, vocabulary (word -> id) and every
 *	  tensor under the name and in the layout Keras gives it, and the way
 *	  back, so that a model trained elsewhere is served by predict().
 *
 * The document (docs/export-format.md):
 *	 {"format": "textclf-keras", "format_version": 1,
 *	  "model_name": ..., "version": ...,
 *	  "labels": [...], "options": {vocab_size, max_len, embedding_dim,
 *	  hidden_size, tokenizer, lowercase, oov_token, threshold},
 *	  "vocabulary": {"word": id, ...},
 *	  "weights": {"embedding": (V,E), "lstm/kernel": (E,4H),
 *				  "lstm/recurrent_kernel": (H,4H), "lstm/bias": (4H),
 *				  "dense/kernel": (H,K), "dense/bias": (K)}}
 * as nested arrays, row-major, LSTM gates in Keras's order i, f, c, o:
 * exactly TcParams' layouts (include/textclf/model.h), so both directions
 * copy floats without reordering.  Floats are printed with "%.9g", which
 * gives back the same float32 when read (through a double, as jsonb and
 * Python do: 9 significant digits are far closer than half a float ulp).
 *
 * What this file deliberately does not do: convert between frameworks
 * (PyTorch's transposes and split biases are documented, not produced), or
 * accept a Keras word_index as is (ids must be the model's: consecutive
 * from 1, or from 2 with the out-of-vocabulary token, below vocab_size).
 * import_model deploys the version it stores, unconditionally, with reason
 * 'imported': the document carries no validation metric to compare.
 *
 * Memory: the decoded or built model lives in a "textclf export" context,
 * a child of the caller's, deleted before returning; the document text is
 * built in the caller's context.  Numbers are converted in a scratch
 * context reset every few thousand elements.  Registry reads and writes
 * run as the extension owner (TcRegistryBegin/End); export checks the
 * caller against the model's owner first (weights are private), import
 * records the caller as the owner of the new version.
 */
#include "postgres.h"

#include <math.h>

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "textclf/format.h"
#include "glue.h"
#include "model_type.h"
#include "pg_textclf.h"

PG_FUNCTION_INFO_V1(export_model);
PG_FUNCTION_INFO_V1(import_model);

#define TC_EXPORT_FORMAT		"textclf-keras"
#define TC_EXPORT_VERSION		1
/* numbers converted between resets of the scratch context */
#define TC_IMPORT_RESET_EVERY	4096

/* The tensor names, in TcParams block order. */
static const char *const TensorNames[TC_NUM_PARAMS] = {
	"embedding", "lstm/kernel", "lstm/recurrent_kernel", "lstm/bias",
	"dense/kernel", "dense/bias"
};

/* Top-level keys of the document. */
static const char *const DocKeys[] = {
	"format", "format_version", "model_name", "version", "labels",
	"options", "vocabulary", "weights", NULL
};

/* Keys of "options". */
static const char *const OptionKeys[] = {
	"vocab_size", "max_len", "embedding_dim", "hidden_size", "tokenizer",
	"lowercase", "oov_token", "threshold", NULL
};

/* Rows and columns of tensor i for cfg (cols 0: a vector of rows floats). */
static void
TensorShape(const TcConfig *cfg, int i, int *rows, int *cols)
{
	int			G = 4 * cfg->hidden_size;
	int			K = cfg->num_classes == 2 ? 1 : cfg->num_classes;

	switch (i)
	{
		case 0:
			*rows = cfg->vocab_size;
			*cols = cfg->embedding_dim;
			break;
		case 1:
			*rows = cfg->embedding_dim;
			*cols = G;
			break;
		case 2:
			*rows = cfg->hidden_size;
			*cols = G;
			break;
		case 3:
			*rows = G;
			*cols = 0;
			break;
		case 4:
			*rows = cfg->hidden_size;
			*cols = K;
			break;
		default:
			*rows = K;
			*cols = 0;
			break;
	}
}

/* The shape of tensor i as text, e.g. "(16, 512)" or "(512)". */
static char *
ShapeText(int rows, int cols)
{
	return cols > 0 ? psprintf("(%d, %d)", rows, cols) : psprintf("(%d)", rows);
}

/* ---- export ---- */

/* Append a UTF-8 string of the model as a JSON string in the server encoding. */
static void
AppendModelString(StringInfo s, const char *utf8, size_t len)
{
	char	   *conv = pg_any_to_server(utf8, (int) len, PG_UTF8);

	if (conv == utf8)
		conv = pnstrdup(utf8, len);
	escape_json(s, conv);
	pfree(conv);
}

/* Append floats p (n) as a JSON array, each printed to round-trip float32. */
static void
AppendFloats(StringInfo s, const float *p, int n)
{
	appendStringInfoChar(s, '[');
	for (int j = 0; j < n; j++)
	{
		if (j > 0)
			appendStringInfoString(s, ", ");
		appendStringInfo(s, "%.9g", (double) p[j]);
	}
	appendStringInfoChar(s, ']');
}

/* Append tensor p, (rows,cols) or (rows) when cols is 0, as nested arrays. */
static void
AppendTensor(StringInfo s, const float *p, int rows, int cols)
{
	if (cols == 0)
	{
		AppendFloats(s, p, rows);
		return;
	}
	appendStringInfoChar(s, '[');
	for (int r = 0; r < rows; r++)
	{
		if (r > 0)
			appendStringInfoString(s, ", ");
		AppendFloats(s, p + (size_t) r * cols, cols);
		if ((r & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	appendStringInfoChar(s, ']');
}

/* The export document of model m (version of model_name) as JSON text. */
static char *
ExportJson(const TcModel *m, const char *model_name, int32 version)
{
	const TcConfig *cfg = &m->cfg;
	const float *tensors[TC_NUM_PARAMS] = {
		m->params.emb, m->params.Wx, m->params.Wh, m->params.b,
		m->params.Wd, m->params.bd
	};
	int32		first_id = cfg->use_oov ? 2 : 1;
	int32		limit = tc_vocab_id_limit(m->vocab);
	bool		first = true;
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"format\": \"%s\", \"format_version\": %d, "
					 "\"model_name\": ", TC_EXPORT_FORMAT, TC_EXPORT_VERSION);
	escape_json(&s, model_name);
	appendStringInfo(&s, ", \"version\": %d, \"labels\": [", version);
	for (int k = 0; k < cfg->num_classes; k++)
	{
		if (k > 0)
			appendStringInfoString(&s, ", ");
		AppendModelString(&s, m->labels[k], strlen(m->labels[k]));
	}
	appendStringInfo(&s,
					 "], \"options\": {\"vocab_size\": %d, \"max_len\": %d, "
					 "\"embedding_dim\": %d, \"hidden_size\": %d, "
					 "\"tokenizer\": \"%s\", \"lowercase\": %s, "
					 "\"oov_token\": %s, \"threshold\": %.9g}, \"vocabulary\": {",
					 cfg->vocab_size, cfg->max_len, cfg->embedding_dim,
					 cfg->hidden_size,
					 cfg->tok.mode == TC_TOK_CHAR ? "char" : "word",
					 cfg->tok.lowercase ? "true" : "false",
					 cfg->use_oov ? "true" : "false", (double) cfg->threshold);
	for (int32 id = first_id; id < limit; id++)
	{
		size_t		len;
		const char *w = tc_vocab_word(m->vocab, id, &len);

		if (w == NULL)
			continue;
		if (!first)
			appendStringInfoString(&s, ", ");
		first = false;
		AppendModelString(&s, w, len);
		appendStringInfo(&s, ": %d", id);
	}
	appendStringInfoString(&s, "}, \"weights\": {");
	for (int i = 0; i < TC_NUM_PARAMS; i++)
	{
		int			rows,
					cols;

		TensorShape(cfg, i, &rows, &cols);
		appendStringInfo(&s, "%s\"%s\": ", i > 0 ? ", " : "", TensorNames[i]);
		AppendTensor(&s, tensors[i], rows, cols);
	}
	appendStringInfoString(&s, "}}");
	return s.data;
}

/*
 * Read the serialized bytes of a version of model_name (the deployed one
 * when *version is 0; *version is set to the one found) and decode them
 * with allocator a.  The caller is connected to SPI and has checked the
 * owner.
 */
static TcModel *
ReadVersion(const char *name, int32 *version, const TcAllocator *a)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	TcRegistryUser save;
	int			ret;
	bool		isnull;
	Classifier *c;
	TcModel    *m;
	TcError		err;
	TcStatus	st;
	uint64		id;

	TcRegistryBegin(&save);
	*version = TcResolveVersion(name, *version, &id, "Name the version to export.");
	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(*version);
	ret = SPI_execute_with_args("SELECT m.model FROM textclf.models m "
								"WHERE m.model_name OPERATOR(pg_catalog.=) $1 "
								"AND m.version OPERATOR(pg_catalog.=) $2",
								2, types, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "model \"%s\" version %d vanished", name, *version);
	c = DatumGetClassifierP(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	TcRegistryEnd(&save);
	st = tc_model_deserialize(a, c->data, ClassifierSize(c), &m, &err);
	TcCheck(st, &err);
	return m;
}

/* export_model(model_name text, version integer DEFAULT NULL) RETURNS jsonb */
Datum
export_model(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *at;
	int32		version = 0;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext cxt;
	TcAllocator alloc;
	TcModel    *m;
	char	   *json;
	Datum		result;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
	{
		version = PG_GETARG_INT32(1);
		if (version <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("version must be a positive number")));
	}
	/* 'name@N' pins a version, as in predict() */
	at = strrchr(name, '@');
	if (at != NULL && at[1] != '\0')
	{
		char	   *end;
		long		v = strtol(at + 1, &end, 10);

		if (*end == '\0' && v > 0 && v <= PG_INT32_MAX)
		{
			if (version > 0 && version != (int32) v)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("model name \"%s\" and version %d disagree",
								name, version)));
			*at = '\0';
			version = (int32) v;
		}
	}

	cxt = AllocSetContextCreate(callcxt, "textclf export",
								ALLOCSET_DEFAULT_SIZES);
	tc_pg_allocator(&alloc, cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* the weights are private to the model's owner */
	TcCheckModelOwner(cstring_to_text(name));
	m = ReadVersion(name, &version, &alloc);
	SPI_finish();

	MemoryContextSwitchTo(callcxt);
	json = ExportJson(m, name, version);
	MemoryContextDelete(cxt);
	result = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	pfree(json);
	PG_RETURN_DATUM(result);
}

/* ---- import ---- */

/* Raise the error of a malformed document (22023). */
static void
DocError(const char *msg, const char *detail) pg_attribute_noreturn();

static void
DocError(const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg_internal("%s", msg),
			 detail ? errdetail_internal("%s", detail) : 0,
			 errhint("See docs/export-format.md for the layout export_model() writes.")));
	pg_unreachable();
}

/* The value under key in object container (NULL when absent). */
static JsonbValue *
GetKey(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
}

/* The value under a key that must be present. */
static JsonbValue *
NeedKey(JsonbContainer *obj, const char *where, const char *key)
{
	JsonbValue *v = GetKey(obj, key);

	if (v == NULL)
		DocError(psprintf("%s has no key \"%s\"", where, key), NULL);
	return v;
}

/* Check that every key of object container is in names. */
static void
CheckKeys(JsonbContainer *obj, const char *where, const char *const *names)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (int i = 0; names[i]; i++)
			if (strlen(names[i]) == (size_t) v.val.string.len &&
				memcmp(names[i], v.val.string.val, v.val.string.len) == 0)
				known = true;
		if (!known)
			DocError(psprintf("unrecognized key \"%.*s\" in %s",
							  v.val.string.len, v.val.string.val, where),
					 NULL);
	}
}

/* True when v is a JSON object (a nested container, not a scalar). */
static bool
IsObject(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

/* True when v is a JSON array. */
static bool
IsArray(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
		!JsonContainerIsScalar(v->val.binary.data);
}

/* A JSON number as double (NaN when it is not a number). */
static double
NumberValue(const JsonbValue *v)
{
	if (v->type != jbvNumeric)
		return NAN;
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											  NumericGetDatum(v->val.numeric)));
}

/* An integer option or key within [lo, hi]. */
static int32
IntegerValue(const JsonbValue *v, const char *what, int32 lo, int32 hi)
{
	double		d = NumberValue(v);

	if (isnan(d) || d != floor(d))
		DocError(psprintf("%s must be an integer", what), NULL);
	if (d < lo || d > hi)
		DocError(psprintf("%s must be between %d and %d", what, lo, hi), NULL);
	return (int32) d;
}

/* A string value converted to UTF-8 (the model's encoding); sets *len. */
static char *
Utf8Value(const JsonbValue *v, size_t *len)
{
	char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
	char	   *conv = pg_server_to_any(s, v->val.string.len, PG_UTF8);

	*len = (conv == s) ? (size_t) v->val.string.len : strlen(conv);
	return conv;
}

/* Parse "options" into cfg (num_classes already set). */
static void
ParseImportOptions(JsonbValue *ov, TcConfig *cfg)
{
	JsonbContainer *o;
	JsonbValue *v;
	TcError		err;

	if (!IsObject(ov))
		DocError("key \"options\" must be a JSON object", NULL);
	o = ov->val.binary.data;
	CheckKeys(o, "\"options\"", OptionKeys);
	cfg->use_oov = false;
	if ((v = GetKey(o, "oov_token")) != NULL)
	{
		if (v->type != jbvBool)
			DocError("option \"oov_token\" must be a boolean", NULL);
		cfg->use_oov = v->val.boolean;
	}
	cfg->vocab_size = IntegerValue(NeedKey(o, "\"options\"", "vocab_size"),
								   "option \"vocab_size\"",
								   cfg->use_oov ? 3 : 2, TC_MAX_VOCAB);
	cfg->max_len = IntegerValue(NeedKey(o, "\"options\"", "max_len"),
								"option \"max_len\"", 1, TC_MAX_MAX_LEN);
	cfg->embedding_dim = IntegerValue(NeedKey(o, "\"options\"", "embedding_dim"),
									  "option \"embedding_dim\"", 1,
									  TC_MAX_EMBED);
	cfg->hidden_size = IntegerValue(NeedKey(o, "\"options\"", "hidden_size"),
									"option \"hidden_size\"", 1,
									TC_MAX_HIDDEN);
	if ((v = GetKey(o, "tokenizer")) != NULL)
	{
		if (v->type == jbvString && v->val.string.len == 4 &&
			memcmp(v->val.string.val, "word", 4) == 0)
			cfg->tok.mode = TC_TOK_WORD;
		else if (v->type == jbvString && v->val.string.len == 4 &&
				 memcmp(v->val.string.val, "char", 4) == 0)
			cfg->tok.mode = TC_TOK_CHAR;
		else
			DocError("option \"tokenizer\" must be \"word\" or \"char\"", NULL);
	}
	if ((v = GetKey(o, "lowercase")) != NULL)
	{
		if (v->type != jbvBool)
			DocError("option \"lowercase\" must be a boolean", NULL);
		cfg->tok.lowercase = v->val.boolean;
	}
	if ((v = GetKey(o, "threshold")) != NULL)
	{
		double		t = NumberValue(v);

		if (!(t > 0.0 && t < 1.0) || !((float) t > 0.0f && (float) t < 1.0f))
			DocError("option \"threshold\" must be a number greater than 0 and less than 1",
					 NULL);
		cfg->threshold = (float) t;
	}
	if (tc_config_validate(cfg, &err) != TC_OK)
		DocError(err.msg, NULL);
}

/* Parse "labels": 2 to TC_MAX_CLASSES unique non-empty strings, as UTF-8. */
static char **
ParseLabels(JsonbValue *lv, int *nlabels)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	  **labels;
	int			n = 0;
	int			count;

	if (!IsArray(lv))
		DocError("key \"labels\" must be a JSON array of strings", NULL);
	count = JsonContainerSize(lv->val.binary.data);
	if (count < 2 || count > TC_MAX_CLASSES)
		DocError(psprintf("key \"labels\" must hold between 2 and %d labels",
						  TC_MAX_CLASSES),
				 psprintf("It holds %d.", count));
	labels = palloc0(sizeof(char *) * (count + 1));
	it = JsonbIteratorInit(lv->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		size_t		len;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvString)
			DocError("key \"labels\" must be a JSON array of strings",
					 psprintf("Label %d is not a string.", n));
		labels[n] = Utf8Value(&v, &len);
		if (len == 0 || len > TC_MAX_LABEL_BYTES)
			DocError(psprintf("label %d must be between 1 and %d bytes long",
							  n, TC_MAX_LABEL_BYTES), NULL);
		for (int j = 0; j < n; j++)
			if (strcmp(labels[j], labels[n]) == 0)
				DocError(psprintf("key \"labels\" holds \"%.*s\" twice",
								  v.val.string.len, v.val.string.val),
						 NULL);
		n++;
	}
	*nlabels = n;
	return labels;
}

/*
 * Parse "vocabulary" ({"word": id}) into a finalized vocabulary for cfg:
 * ids must be first_id, first_id + 1, ... without gaps or repeats, below
 * vocab_size.
 */
static TcVocab *
ParseVocabulary(JsonbValue *vv, const TcConfig *cfg, const TcAllocator *a)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int32		first_id = cfg->use_oov ? 2 : 1;
	int			n;
	const char **words;
	size_t	   *lens;
	char	   *word = NULL;
	size_t		wlen = 0;
	JsonbValue	key;
	TcVocab    *vocab;
	TcError		err;

	if (!IsObject(vv))
		DocError("key \"vocabulary\" must be a JSON object of word ids", NULL);
	n = JsonContainerSize(vv->val.binary.data);
	if (n > cfg->vocab_size - first_id)
		DocError(psprintf("key \"vocabulary\" holds %d words, more than vocab_size %d allows",
						  n, cfg->vocab_size),
				 psprintf("Ids run from %d to vocab_size - 1%s.", first_id,
						  cfg->use_oov ? "; id 1 is the out-of-vocabulary token and has no word" : ""));
	words = palloc0(sizeof(char *) * (n > 0 ? n : 1));
	lens = palloc0(sizeof(size_t) * (n > 0 ? n : 1));
	memset(&key, 0, sizeof(key));
	it = JsonbIteratorInit(vv->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int32		id;
		double		d;

		if (tok == WJB_KEY)
		{
			key = v;
			word = Utf8Value(&v, &wlen);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		d = NumberValue(&v);
		if (isnan(d) || d != floor(d))
			DocError(psprintf("vocabulary id of word \"%.*s\" must be an integer",
							  key.val.string.len, key.val.string.val), NULL);
		if (d < first_id || d >= cfg->vocab_size)
			DocError(psprintf("vocabulary id %.0f of word \"%.*s\" is out of range",
							  d, key.val.string.len, key.val.string.val),
					 psprintf("Ids run from %d to vocab_size - 1 = %d%s.",
							  first_id, cfg->vocab_size - 1,
							  cfg->use_oov ? "; id 1 is the out-of-vocabulary token and has no word" : ""));
		id = (int32) d;
		if (id - first_id >= n)
			DocError(psprintf("vocabulary ids must be consecutive from %d",
							  first_id),
					 psprintf("There are %d words, but word \"%.*s\" has id %d.",
							  n, key.val.string.len, key.val.string.val, id));
		if (words[id - first_id] != NULL)
			DocError(psprintf("vocabulary id %d is given to two words", id),
					 psprintf("Words \"%s\" and \"%.*s\" have it.",
							  words[id - first_id], key.val.string.len,
							  key.val.string.val));
		if (wlen == 0 || wlen > TC_MAX_TOKEN_BYTES)
			DocError(psprintf("vocabulary word with id %d must be between 1 and %d bytes long",
							  id, TC_MAX_TOKEN_BYTES), NULL);
		words[id - first_id] = word;
		lens[id - first_id] = wlen;
	}
	vocab = tc_vocab_from_words(a, words, lens, (size_t) n, cfg->vocab_size,
								cfg->use_oov, &err);
	if (vocab == NULL)
	{
		if (err.status == TC_ERR_NOMEM)
			TcReportError(&err);
		DocError(err.msg, NULL);
	}
	return vocab;
}

/* Raise a shape error for tensor name of shape (rows, cols). */
static void
ShapeError(const char *name, int rows, int cols, const char *detail)
	pg_attribute_noreturn();

static void
ShapeError(const char *name, int rows, int cols, const char *detail)
{
	DocError(psprintf("weights \"%s\" must have shape %s", name,
					  ShapeText(rows, cols)),
			 detail);
}

/*
 * Read tensor name from v into dst, (rows,cols) or (rows) when cols is 0:
 * nested arrays of exactly that shape, finite float32 numbers only.
 * Number conversions allocate in scratch, reset every
 * TC_IMPORT_RESET_EVERY numbers (the iterator must not live there).
 */
static void
ReadTensor(JsonbValue *v, const char *name, int rows, int cols, float *dst,
		   MemoryContext scratch)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			rank = cols > 0 ? 2 : 1;
	int			depth = 0;
	int			row = 0;
	size_t		n = 0;
	MemoryContext old;

	if (!IsArray(v))
		ShapeError(name, rows, cols, "It is not a JSON array.");
	/* the iterator lives in the caller's context, numbers in scratch */
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, false)) != WJB_DONE)
	{
		double		d;
		float		f;

		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
				depth++;
				if (depth > rank)
					ShapeError(name, rows, cols,
							   psprintf("It nests arrays %d deep.", depth));
				if (depth == 1 && e.val.array.nElems != rows)
					ShapeError(name, rows, cols,
							   psprintf("It has %d %s.", e.val.array.nElems,
										rank == 2 ? "rows" : "elements"));
				if (depth == 2 && e.val.array.nElems != cols)
					ShapeError(name, rows, cols,
							   psprintf("Row %d has %d elements.", row,
										e.val.array.nElems));
				break;
			case WJB_END_ARRAY:
				if (depth == 2)
				{
					row++;
					CHECK_FOR_INTERRUPTS();
				}
				depth--;
				break;
			case WJB_ELEM:
				if (depth != rank)
					ShapeError(name, rows, cols,
							   psprintf("Row %d is not an array.", row));
				if (e.type != jbvNumeric)
					DocError(psprintf("weights \"%s\" must hold only numbers",
									  name),
							 rank == 2 ?
							 psprintf("Row %d, column %d is not a number.",
									  row, (int) (n - (size_t) row * cols)) :
							 psprintf("Element %zu is not a number.", n));
				old = MemoryContextSwitchTo(scratch);
				d = NumberValue(&e);
				MemoryContextSwitchTo(old);
				f = (float) d;
				if (!isfinite(f))
					DocError(psprintf("weights \"%s\" must hold only finite 32-bit floats",
									  name),
							 rank == 2 ?
							 psprintf("Row %d, column %d is %g.", row,
									  (int) (n - (size_t) row * cols), d) :
							 psprintf("Element %zu is %g.", n, d));
				dst[n++] = f;
				if (n % TC_IMPORT_RESET_EVERY == 0)
					MemoryContextReset(scratch);
				break;
			default:
				/* an object inside the array */
				ShapeError(name, rows, cols,
						   "It holds a JSON object where a number belongs.");
		}
	}
	MemoryContextReset(scratch);
	Assert(n == (size_t) rows * (cols > 0 ? cols : 1));
}

/*
 * Build a model from an export document, every part checked; allocates
 * from a (in CurrentMemoryContext's child cxt).  Returns the model and its
 * labels; *options_json receives the resolved options for the registry.
 */
static TcModel *
ModelFromJson(Jsonb *doc, const TcAllocator *a, MemoryContext cxt,
			  char ***labels_out, int *nlabels, char **options_json)
{
	JsonbContainer *root = &doc->root;
	JsonbValue *v;
	JsonbValue *wv;
	TcConfig	cfg;
	TcModel    *m;
	TcError		err;
	char	  **labels;
	float	   *tensors[TC_NUM_PARAMS];
	MemoryContext scratch;
	int32		format_version;

	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		DocError("model must be a JSON object", NULL);
	CheckKeys(root, "the model document", DocKeys);

	v = NeedKey(root, "the model document", "format");
	if (v->type != jbvString || v->val.string.len != strlen(TC_EXPORT_FORMAT) ||
		memcmp(v->val.string.val, TC_EXPORT_FORMAT, v->val.string.len) != 0)
		DocError("key \"format\" must be \"" TC_EXPORT_FORMAT "\"", NULL);
	v = NeedKey(root, "the model document", "format_version");
	format_version = IntegerValue(v, "key \"format_version\"", 1,
								  PG_INT32_MAX);
	if (format_version != TC_EXPORT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unsupported model document format_version %d",
						format_version),
				 errhint("This version of textclf reads format_version %d.",
						 TC_EXPORT_VERSION)));

	tc_config_default(&cfg);
	labels = ParseLabels(NeedKey(root, "the model document", "labels"),
						 nlabels);
	cfg.num_classes = *nlabels;
	ParseImportOptions(NeedKey(root, "the model document", "options"), &cfg);
	/* refuse an oversized model before allocating it */
	TcCheckModelMemory(&cfg, 0, 1, "importing");

	m = tc_model_create(a, &cfg, (const char *const *) labels, &err);
	if (m == NULL)
		TcReportError(&err);
	m->vocab = ParseVocabulary(NeedKey(root, "the model document",
									   "vocabulary"), &cfg, a);

	wv = NeedKey(root, "the model document", "weights");
	if (!IsObject(wv))
		DocError("key \"weights\" must be a JSON object of tensors", NULL);
	{
		static const char *const names[TC_NUM_PARAMS + 1] = {
			"embedding", "lstm/kernel", "lstm/recurrent_kernel", "lstm/bias",
			"dense/kernel", "dense/bias", NULL
		};

		CheckKeys(wv->val.binary.data, "\"weights\"", names);
	}
	tensors[0] = m->params.emb;
	tensors[1] = m->params.Wx;
	tensors[2] = m->params.Wh;
	tensors[3] = m->params.b;
	tensors[4] = m->params.Wd;
	tensors[5] = m->params.bd;
	scratch = AllocSetContextCreate(cxt, "textclf import numbers",
									ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < TC_NUM_PARAMS; i++)
	{
		int			rows,
					cols;

		TensorShape(&cfg, i, &rows, &cols);
		ReadTensor(NeedKey(wv->val.binary.data, "\"weights\"",
						   TensorNames[i]),
				   TensorNames[i], rows, cols, tensors[i], scratch);
	}
	MemoryContextDelete(scratch);

	*labels_out = labels;
	*options_json = psprintf("{\"vocab_size\": %d, \"max_len\": %d, "
							 "\"embedding_dim\": %d, \"hidden_size\": %d, "
							 "\"tokenizer\": \"%s\", \"lowercase\": %s, "
							 "\"oov_token\": %s, \"threshold\": %.9g}",
							 cfg.vocab_size, cfg.max_len, cfg.embedding_dim,
							 cfg.hidden_size,
							 cfg.tok.mode == TC_TOK_CHAR ? "char" : "word",
							 cfg.tok.lowercase ? "true" : "false",
							 cfg.use_oov ? "true" : "false",
							 (double) cfg.threshold);
	return m;
}


/*
 * Insert an imported version of name and deploy it, under the same
 * advisory lock and version counter as train_classifier; returns the
 * version.  The caller is connected to SPI.
 */
static int32
StoreImported(const char *name, const char *options_json, char **labels,
			  int nlabels, uint64 content_id, Classifier *value)
{
	Oid			types[8] = {TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTARRAYOID,
	INT8OID, TcClassifierTypeOid(), TEXTOID};
	Datum		values[8];
	TcRegistryUser save;
	int			ret;
	int32		version;

	values[0] = CStringGetTextDatum(name);
	values[3] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	version = TcBeginNewVersion(name, &save);
	values[1] = Int32GetDatum(version);
	values[2] = CStringGetTextDatum(options_json);
	values[4] = TcLabelsArray(labels, nlabels);
	values[5] = Int64GetDatum((int64) content_id);
	values[6] = PointerGetDatum(value);
	values[7] = CStringGetTextDatum("{\"imported\": true}");
	ret = SPI_execute_with_args("INSERT INTO textclf.models (model_name, version, "
								"owner, options, labels, metrics, content_id, model) "
								"VALUES ($1, $2, $4::pg_catalog.name, "
								"$3::pg_catalog.jsonb, $5, $8::pg_catalog.jsonb, $6, $7)",
								8, types, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not store the model: %s",
			 SPI_result_code_string(ret));
	{
		Oid			dt[3] = {TEXTOID, INT4OID, TEXTOID};
		Datum		dv[3] = {values[0], values[1], values[3]};

		ret = SPI_execute_with_args("INSERT INTO textclf.deployments (model_name, "
									"version, deployed_by, reason) VALUES ($1, $2, "
									"$3::pg_catalog.name, 'imported')",
									3, dt, dv, NULL, false, 0);
	}
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not deploy the model");
	TcRegistryEnd(&save);
	return version;
}

/* import_model(model_name text, model jsonb) RETURNS integer */
Datum
import_model(PG_FUNCTION_ARGS)
{
	char	   *name;
	Jsonb	   *doc;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext cxt;
	TcAllocator alloc;
	TcModel    *m;
	TcError		err;
	TcStatus	st;
	char	  **labels;
	int			nlabels;
	char	   *options_json;
	size_t		size;
	unsigned char *blob;
	uint64		content_id;
	Classifier *value;
	int32		version;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name and model must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TcCheckModelName(name);
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot import a model during recovery"),
				 errhint("Import on the primary server; replicas receive the model with the registry.")));
	doc = PG_GETARG_JSONB_P(1);

	cxt = AllocSetContextCreate(callcxt, "textclf import",
								ALLOCSET_DEFAULT_SIZES);
	tc_pg_allocator(&alloc, cxt);
	MemoryContextSwitchTo(cxt);
	m = ModelFromJson(doc, &alloc, cxt, &labels, &nlabels, &options_json);

	size = tc_model_serialized_size(m);
	blob = MemoryContextAllocHuge(cxt, size);
	st = tc_model_serialize(m, blob, size, &content_id, &err);
	TcCheck(st, &err);
	/* a last guard: what is stored must read back */
	st = tc_model_validate_bytes(blob, size, &err);
	TcCheck(st, &err);
	value = ClassifierFromBytes(blob, size);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	version = StoreImported(name, options_json, labels, nlabels, content_id,
							value);
	SPI_finish();
	MemoryContextSwitchTo(callcxt);
	MemoryContextDelete(cxt);
	PG_RETURN_INT32(version);
}
