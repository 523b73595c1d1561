/*
 * model_type.h
 *	  The classifier varlena type: one serialized model (see
 *	  include/textclf/format.h) behind a varlena header.
 *
 * A classifier value is immutable and self-contained.  Its bytes are
 * checked by the input functions (text and binary), so a stored value is a
 * valid model; code that decodes it checks again all the same.
 */
#ifndef MODEL_TYPE_H
#define MODEL_TYPE_H

#include "fmgr.h"

typedef struct Classifier
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	unsigned char data[FLEXIBLE_ARRAY_MEMBER];	/* the serialized model */
} Classifier;

#define ClassifierSize(c)		(VARSIZE(c) - VARHDRSZ)
#define DatumGetClassifierP(x)	((Classifier *) PG_DETOAST_DATUM(x))
#define PG_GETARG_CLASSIFIER_P(n) DatumGetClassifierP(PG_GETARG_DATUM(n))
#define PG_RETURN_CLASSIFIER_P(x) PG_RETURN_POINTER(x)

/* Build a classifier value from a serialized model (copied). */
extern Classifier *ClassifierFromBytes(const unsigned char *buf, size_t size);

#endif							/* MODEL_TYPE_H */
