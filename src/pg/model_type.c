/*
 * model_type.c
 *	  Input/output of the classifier type: text (base64 of the serialized
 *	  model), binary send/receive (the raw bytes), casts to and from bytea,
 *	  and a few accessors.
 *
 * Every entry point that accepts bytes runs the core's full check
 * (tc_model_validate_bytes: lengths, counts, limits, checksum, finite
 * weights), so a malformed or corrupted value is a clean ERROR and a stored
 * value is always a valid model.  Nothing here is cached; predict.c owns the
 * decoded-model cache.
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "textclf/format.h"
#include "glue.h"
#include "model_type.h"

/* Largest serialized model accepted: its text form must fit in 1 GB. */
#define TC_MAX_BLOB_SIZE	((size_t) 700 * 1024 * 1024)

PG_FUNCTION_INFO_V1(classifier_in);
PG_FUNCTION_INFO_V1(classifier_out);
PG_FUNCTION_INFO_V1(classifier_recv);
PG_FUNCTION_INFO_V1(classifier_send);
PG_FUNCTION_INFO_V1(classifier_from_bytea);
PG_FUNCTION_INFO_V1(classifier_to_bytea);
PG_FUNCTION_INFO_V1(classifier_labels);
PG_FUNCTION_INFO_V1(classifier_content_id);
PG_FUNCTION_INFO_V1(classifier_info);

/* Copy serialized bytes into a new classifier value. */
Classifier *
ClassifierFromBytes(const unsigned char *buf, size_t size)
{
	Classifier *c;

	if (size > TC_MAX_BLOB_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model is too large: %zu bytes", size),
				 errdetail("A classifier value holds at most %zu bytes.",
						   TC_MAX_BLOB_SIZE)));
	c = (Classifier *) palloc(VARHDRSZ + size);
	SET_VARSIZE(c, VARHDRSZ + size);
	memcpy(c->data, buf, size);
	return c;
}

/* Bytes of s to quote in a message: at most 32, whole characters only. */
static int
QuoteLen(const char *s)
{
	return pg_mbcliplen(s, (int) strlen(s), 32);
}

/*
 * Check bytes that claim to be a model; raise with the SQLSTATE the house
 * style asks of a type input (syntax) or a version mismatch.
 */
static void
CheckModelBytes(const unsigned char *buf, size_t size, bool text_input,
				const char *literal)
{
	TcError		err;
	TcStatus	st;

	if (size > TC_MAX_BLOB_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("classifier value is too large: %zu bytes", size)));
	st = tc_model_validate_bytes(buf, size, &err);
	if (st == TC_OK)
		return;
	if (st == TC_ERR_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unsupported classifier format"),
				 errdetail_internal("%s", err.msg),
				 errhint("Retrain the model with this version of textclf, or install the textclf version that wrote it.")));
	if (st == TC_ERR_NOMEM)
		TcReportError(&err);
	if (text_input)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s: \"%.*s%s\"",
						"classifier", QuoteLen(literal), literal,
						strlen(literal) > 32 ? "..." : ""),
				 errdetail_internal("%s", err.msg)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid binary data for type %s", "classifier"),
			 errdetail_internal("%s", err.msg)));
}

/* classifier_in(cstring): base64 text -> classifier */
Datum
classifier_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	size_t		len = strlen(str);
	int			declen;
	int			n;
	char	   *buf;
	char	   *packed;
	size_t		plen = 0;
	Classifier *c;

	/* trim surrounding white space, as other input functions do */
	while (len > 0 && isspace((unsigned char) str[len - 1]))
		len--;
	while (len > 0 && isspace((unsigned char) *str))
	{
		str++;
		len--;
	}
	if (len == 0 || len > (size_t) pg_b64_enc_len((int) TC_MAX_BLOB_SIZE))
		ereport(ERROR,
				(errcode(len ? ERRCODE_PROGRAM_LIMIT_EXCEEDED :
						 ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s: \"%.*s\"",
						"classifier", QuoteLen(str), str),
				 errdetail(len ? "The value is too long." :
						   "The value is empty.")));
	/* drop inner white space too: encode(bytea, 'base64') breaks lines */
	packed = palloc(len + 1);
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char) str[i]))
			packed[plen++] = str[i];
	packed[plen] = '\0';
	declen = pg_b64_dec_len((int) plen);
	buf = palloc(declen);
	n = pg_b64_decode(packed, (int) plen, buf, declen);
	pfree(packed);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s: \"%.*s%s\"",
						"classifier", QuoteLen(str), str, len > 32 ? "..." : ""),
				 errdetail("The value is not valid base64.")));
	CheckModelBytes((unsigned char *) buf, (size_t) n, true, str);
	c = ClassifierFromBytes((unsigned char *) buf, (size_t) n);
	pfree(buf);
	PG_RETURN_CLASSIFIER_P(c);
}

/* classifier_out(classifier): base64 text */
Datum
classifier_out(PG_FUNCTION_ARGS)
{
	Classifier *c = PG_GETARG_CLASSIFIER_P(0);
	int			size = (int) ClassifierSize(c);
	int			enclen = pg_b64_enc_len(size);
	char	   *out = palloc(enclen + 1);
	int			n;

	n = pg_b64_encode((const char *) c->data, size, out, enclen);
	if (n < 0)
		elog(ERROR, "could not encode classifier value");
	out[n] = '\0';
	PG_FREE_IF_COPY(c, 0);
	PG_RETURN_CSTRING(out);
}

/* classifier_recv(internal): the raw serialized bytes */
Datum
classifier_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			n = buf->len - buf->cursor;
	const char *bytes = pq_getmsgbytes(buf, n);

	CheckModelBytes((const unsigned char *) bytes, (size_t) n, false, NULL);
	PG_RETURN_CLASSIFIER_P(ClassifierFromBytes((const unsigned char *) bytes,
											   (size_t) n));
}

/* classifier_send(classifier): the raw serialized bytes */
Datum
classifier_send(PG_FUNCTION_ARGS)
{
	Classifier *c = PG_GETARG_CLASSIFIER_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, (const char *) c->data, (int) ClassifierSize(c));
	PG_FREE_IF_COPY(c, 0);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* bytea -> classifier, checked like input */
Datum
classifier_from_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	size_t		n = VARSIZE_ANY_EXHDR(b);

	CheckModelBytes((const unsigned char *) VARDATA_ANY(b), n, false, NULL);
	PG_RETURN_CLASSIFIER_P(ClassifierFromBytes((const unsigned char *) VARDATA_ANY(b), n));
}

/* classifier -> bytea (the serialized model) */
Datum
classifier_to_bytea(PG_FUNCTION_ARGS)
{
	Classifier *c = PG_GETARG_CLASSIFIER_P(0);
	bytea	   *b = (bytea *) palloc(VARSIZE(c));

	memcpy(b, c, VARSIZE(c));
	PG_RETURN_BYTEA_P(b);
}

/* Decode a classifier argument through the backend cache. */
static TcCachedModel *
ClassifierModel(Classifier *c)
{
	return TcCacheLoad(c->data, ClassifierSize(c));
}

/* classifier_labels(classifier) RETURNS text[] */
Datum
classifier_labels(PG_FUNCTION_ARGS)
{
	Classifier *c = PG_GETARG_CLASSIFIER_P(0);
	TcCachedModel *cm = ClassifierModel(c);
	int			K = cm->model->cfg.num_classes;
	Datum	   *elems = palloc(sizeof(Datum) * K);

	for (int k = 0; k < K; k++)
		elems[k] = CStringGetTextDatum(cm->model->labels[k]);
	PG_FREE_IF_COPY(c, 0);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, K, TEXTOID, -1, false,
										  TYPALIGN_INT));
}

/* classifier_content_id(classifier) RETURNS text: the content hash, hex */
Datum
classifier_content_id(PG_FUNCTION_ARGS)
{
	Classifier *c = PG_GETARG_CLASSIFIER_P(0);
	char		hex[17];

	if (ClassifierSize(c) < TC_FORMAT_MIN_SIZE)
		elog(ERROR, "classifier value is too short");
	snprintf(hex, sizeof(hex), "%016llx",
			 (unsigned long long) tc_model_blob_id(c->data));
	PG_FREE_IF_COPY(c, 0);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/* classifier_info(classifier) RETURNS jsonb-compatible text of the config */
Datum
classifier_info(PG_FUNCTION_ARGS)
{
	Classifier *c = PG_GETARG_CLASSIFIER_P(0);
	TcCachedModel *cm = ClassifierModel(c);
	const TcConfig *cfg = &cm->model->cfg;
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s,
					 "{\"format_version\": %d, \"vocab_size\": %d, \"max_len\": %d, "
					 "\"embedding_dim\": %d, \"hidden_size\": %d, \"classes\": %d, "
					 "\"tokenizer\": \"%s\", \"lowercase\": %s, \"oov_token\": %s, "
					 "\"threshold\": %g, \"vocabulary_words\": %zu, "
					 "\"parameters\": %zu, \"bytes\": %zu}",
					 TC_FORMAT_VERSION, cfg->vocab_size, cfg->max_len,
					 cfg->embedding_dim, cfg->hidden_size, cfg->num_classes,
					 cfg->tok.mode == TC_TOK_CHAR ? "char" : "word",
					 cfg->tok.lowercase ? "true" : "false",
					 cfg->use_oov ? "true" : "false", cfg->threshold,
					 tc_vocab_size(cm->model->vocab), cm->model->num_params,
					 (size_t) ClassifierSize(c));
	PG_FREE_IF_COPY(c, 0);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}
