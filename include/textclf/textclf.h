/*
 * textclf.h
 *	  Common definitions of the textclf ML core: status codes, the error
 *	  buffer, the allocator hooks and the dimension legend.
 *
 * The core (src/core, include/textclf) has no PostgreSQL dependency.  It
 * never prints, exits, aborts or longjmps by itself: every fallible function
 * returns a TcStatus and fills a caller-supplied TcError with a message in
 * PostgreSQL's style (lower case, no final period).  It takes all of its
 * memory from a TcAllocator that the caller hands in (palloc in the server,
 * malloc in tests).
 *
 * Dimension letters, used in every shape comment of the core:
 *	 B	sequences in a batch
 *	 T	tokens per sequence (at most max_len)
 *	 N	tokens in a packed batch (sum of the B sequence lengths)
 *	 E	embedding width
 *	 H	LSTM hidden width
 *	 G	4 * H, the four LSTM gates i, f, g (cell candidate), o
 *	 V	vocabulary size (embedding rows, id 0 is padding)
 *	 K	output units of the dense layer: 1 for two classes (sigmoid),
 *		else the number of classes (softmax)
 */
#ifndef TEXTCLF_TEXTCLF_H
#define TEXTCLF_TEXTCLF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define TC_VERSION_STRING "0.1.0"

typedef enum TcStatus
{
	TC_OK = 0,
	TC_ERR_NOMEM,				/* the allocator returned NULL */
	TC_ERR_INVALID_ARG,			/* bad hyperparameter or option */
	TC_ERR_FORMAT,				/* corrupt or truncated model bytes */
	TC_ERR_VERSION,				/* unsupported model format version */
	TC_ERR_LIMIT,				/* a size limit would be exceeded */
	TC_ERR_DATA,				/* NaN/Inf in data or a diverged loss */
	TC_ERR_NO_DATA,				/* no usable training rows */
	TC_ERR_CLASSES,				/* fewer than two classes, or too many */
	TC_ERR_IO,					/* a row source or spill store failed */
	TC_ERR_CANCELLED			/* a callback asked to stop */
} TcStatus;

#define TC_ERRMSG_LEN 256

/* Error detail filled by a failing core function. */
typedef struct TcError
{
	TcStatus	status;
	char		msg[TC_ERRMSG_LEN];
	char		hint[TC_ERRMSG_LEN];	/* empty when there is none */
} TcError;

/*
 * Allocator hooks.  alloc returns uninitialized memory, or NULL when out of
 * memory; free may be NULL (memory is then released by the owner of the
 * allocator, e.g. by deleting a MemoryContext).
 */
typedef struct TcAllocator
{
	void	   *(*alloc) (void *ctx, size_t size);
	void		(*free) (void *ctx, void *ptr);
	void	   *ctx;
} TcAllocator;

/* Record an error; returns status so callers can "return tc_error(...)". */
TcStatus	tc_error(TcError *err, TcStatus status, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
/* Add a hint to the error last recorded in err. */
void		tc_error_hint(TcError *err, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Allocate n bytes (NULL on overflow or failure). */
void	   *tc_alloc(const TcAllocator *a, size_t n);
/* Allocate n zeroed bytes (NULL on overflow or failure). */
void	   *tc_alloc0(const TcAllocator *a, size_t n);
/* Allocate count * size bytes, zeroed, checking the product for overflow. */
void	   *tc_alloc_array(const TcAllocator *a, size_t count, size_t size);
/* Release memory from tc_alloc*; NULL is fine. */
void		tc_free(const TcAllocator *a, void *p);

/* a * b, or SIZE_MAX when it overflows */
static inline size_t
tc_mul_size(size_t a, size_t b)
{
	if (a != 0 && b > SIZE_MAX / a)
		return SIZE_MAX;
	return a * b;
}

/* a + b, or SIZE_MAX when it overflows */
static inline size_t
tc_add_size(size_t a, size_t b)
{
	if (b > SIZE_MAX - a)
		return SIZE_MAX;
	return a + b;
}

#endif							/* TEXTCLF_TEXTCLF_H */
