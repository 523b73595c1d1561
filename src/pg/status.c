/*
 * status.c
 *	  The one place that turns a core TcStatus into an ereport.
 *
 * The core fills a TcError (status, message, optional hint); this file maps
 * the status to a SQLSTATE following the house style:
 *	 invalid option            -> INVALID_PARAMETER_VALUE
 *	 corrupt model bytes       -> INVALID_BINARY_REPRESENTATION
 *	 other format version      -> FEATURE_NOT_SUPPORTED
 *	 size limits, too many classes -> PROGRAM_LIMIT_EXCEEDED
 *	 NaN/Inf, diverged loss    -> DATA_EXCEPTION
 *	 no rows, one class        -> INVALID_PARAMETER_VALUE / DATA_EXCEPTION
 *	 out of memory             -> OUT_OF_MEMORY
 */
#include "postgres.h"

#include "glue.h"

/* Raise err as an ERROR with the SQLSTATE of its status. */
void
TcReportError(const TcError *err)
{
	int			code;

	switch (err->status)
	{
		case TC_ERR_NOMEM:
			code = ERRCODE_OUT_OF_MEMORY;
			break;
		case TC_ERR_INVALID_ARG:
			code = ERRCODE_INVALID_PARAMETER_VALUE;
			break;
		case TC_ERR_FORMAT:
			code = ERRCODE_INVALID_BINARY_REPRESENTATION;
			break;
		case TC_ERR_VERSION:
			code = ERRCODE_FEATURE_NOT_SUPPORTED;
			break;
		case TC_ERR_LIMIT:
			code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		case TC_ERR_DATA:
			code = ERRCODE_DATA_EXCEPTION;
			break;
		case TC_ERR_NO_DATA:
			code = ERRCODE_DATA_EXCEPTION;
			break;
		case TC_ERR_CLASSES:
			code = ERRCODE_DATA_EXCEPTION;
			break;
		case TC_ERR_CANCELLED:
			code = ERRCODE_QUERY_CANCELED;
			break;
		case TC_ERR_IO:
		default:
			code = ERRCODE_INTERNAL_ERROR;
			break;
	}
	ereport(ERROR,
			(errcode(code),
			 errmsg_internal("%s", err->msg),
			 err->hint[0] ? errhint("%s", err->hint) : 0));
	pg_unreachable();
}
