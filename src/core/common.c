/*
 * common.c
 *	  Error recording and allocation helpers shared by the whole core.
 *
 * Nothing here prints or aborts; memory comes from the caller's allocator.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "textclf/textclf.h"

/* Record status and a formatted message in err (which may be NULL). */
TcStatus
tc_error(TcError *err, TcStatus status, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return status;
	err->status = status;
	err->hint[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return status;
}

/* Attach a hint to the last recorded error. */
void
tc_error_hint(TcError *err, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

/* Allocate n bytes from a; NULL when n is SIZE_MAX (an overflowed size). */
void *
tc_alloc(const TcAllocator *a, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	return a->alloc(a->ctx, n ? n : 1);
}

/* Allocate n zeroed bytes. */
void *
tc_alloc0(const TcAllocator *a, size_t n)
{
	void	   *p = tc_alloc(a, n);

	if (p)
		memset(p, 0, n);
	return p;
}

/* Allocate count * size zeroed bytes, with an overflow check. */
void *
tc_alloc_array(const TcAllocator *a, size_t count, size_t size)
{
	return tc_alloc0(a, tc_mul_size(count, size));
}

/* Release p (no-op when the allocator has no free hook). */
void
tc_free(const TcAllocator *a, void *p)
{
	if (p != NULL && a->free != NULL)
		a->free(a->ctx, p);
}
