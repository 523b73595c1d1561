/*
 * tc_test.h
 *	  Tiny test support for the core's unit tests: a malloc allocator and
 *	  TAP-style checks.  Each check prints "ok - name" or "not ok - name";
 *	  tc_test_done() prints the totals and returns the exit code, non-zero
 *	  on any failure.  test/run_core_tests.sh counts the lines.
 */
#ifndef TC_TEST_H
#define TC_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textclf/textclf.h"

static int	tc_test_passed = 0;
static int	tc_test_failed = 0;

static inline void *
tc_test_malloc(void *ctx, size_t n)
{
	(void) ctx;
	return malloc(n ? n : 1);
}

static inline void
tc_test_mfree(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

static const TcAllocator tc_test_alloc = {tc_test_malloc, tc_test_mfree, NULL};

/* Record one named check. */
static inline void
tc_check(int cond, const char *fmt,...)
{
	va_list		ap;

	printf(cond ? "ok - " : "not ok - ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (cond)
		tc_test_passed++;
	else
		tc_test_failed++;
}

/* |a - b| <= atol + rtol * |b| for every element; prints the worst one. */
static inline int
tc_check_tensor(const char *name, const float *a, const float *b, size_t n,
				double atol, double rtol)
{
	size_t		worst = 0;
	double		worst_excess = -1e300;
	int			ok = 1;

	for (size_t i = 0; i < n; i++)
	{
		double		d = fabs((double) a[i] - (double) b[i]);
		double		tol = atol + rtol * fabs((double) b[i]);

		if (!(d <= tol))
			ok = 0;
		if (d - tol > worst_excess || isnan(d))
		{
			worst_excess = isnan(d) ? 1e300 : d - tol;
			worst = i;
		}
	}
	tc_check(ok, "%s (%zu values; worst [%zu] %.8g vs %.8g)", name, n, worst,
			 n ? (double) a[worst] : 0.0, n ? (double) b[worst] : 0.0);
	return ok;
}

/* Print totals; returns the process exit code. */
static inline int
tc_test_done(void)
{
	printf("# %d passed, %d failed\n", tc_test_passed, tc_test_failed);
	return tc_test_failed ? 1 : 0;
}

#endif							/* TC_TEST_H */
