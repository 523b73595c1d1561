/*
 * test_memory_estimate.c
 *	  Tests of tc_model_memory_estimate: it covers what a model really
 *	  allocates, grows with every dimension, and saturates instead of
 *	  overflowing on the largest legal configurations.
 *
 * "Covers" is measured with a counting allocator around tc_model_create,
 * tc_model_train_prepare and tc_model_prepare_infer for a few
 * configurations.  It does not run the trainer (its buffers are counted
 * by formula only).
 *
 * Memory: the counting allocator wraps malloc; every model is freed.
 */
#include <stdint.h>

#include "tc_test.h"
#include "textclf/model.h"
#include "textclf/kernels.h"

/* Bytes currently and at most allocated through the counting allocator. */
typedef struct Counter
{
	size_t		live;
	size_t		peak;
} Counter;

/* malloc that counts, with a size prefix. */
static void *
count_alloc(void *ctx, size_t n)
{
	Counter    *c = ctx;
	unsigned char *p = malloc(n + 16);

	if (p == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	c->live += n;
	if (c->live > c->peak)
		c->peak = c->live;
	return p + 16;
}

/* free for count_alloc. */
static void
count_free(void *ctx, void *ptr)
{
	Counter    *c = ctx;
	unsigned char *p = (unsigned char *) ptr - 16;
	size_t		n;

	memcpy(&n, p, sizeof(n));
	c->live -= n;
	free(p);
}

/* Peak bytes of creating, preparing for training and for inference. */
static size_t
measured_peak(const TcConfig *cfg, int batch)
{
	Counter		c = {0, 0};
	TcAllocator a = {count_alloc, count_free, &c};
	const char *labels[3] = {"a", "b", "c"};
	TcError		err;
	TcModel    *m = tc_model_create(&a, cfg, labels, &err);

	if (m == NULL)
		return SIZE_MAX;
	tc_model_init(m, 1);
	if (tc_model_train_prepare(m, batch, cfg->max_len, &err) != TC_OK ||
		tc_model_prepare_infer(m, &err) != TC_OK)
	{
		tc_model_free(m);
		return SIZE_MAX;
	}
	tc_model_free(m);
	return c.peak;
}

int
main(void)
{
	TcConfig	cfg;
	TcConfig	big;
	size_t		base;
	size_t		infer;
	static const int configs[][6] = {
		/* V, T, E, H, classes, batch */
		{50, 10, 4, 3, 2, 2},
		{1000, 100, 16, 128, 2, 32},
		{300, 37, 9, 33, 3, 7},
		{5000, 64, 32, 64, 3, 128},
	};

	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
	{
		size_t		est;
		size_t		got;

		tc_config_default(&cfg);
		cfg.vocab_size = configs[i][0];
		cfg.max_len = configs[i][1];
		cfg.embedding_dim = configs[i][2];
		cfg.hidden_size = configs[i][3];
		cfg.num_classes = configs[i][4];
		est = tc_model_memory_estimate(&cfg, configs[i][5], 1);
		got = measured_peak(&cfg, configs[i][5]);
		tc_check(got != SIZE_MAX && est >= got,
				 "config %zu: estimate %zu covers the measured peak %zu",
				 i, est, got);
		tc_check(est <= 8 * got + (1 << 20),
				 "config %zu: estimate %zu is not wildly above %zu", i, est, got);
	}

	/* on three threads: partial gradient sums for two more threads */
	tc_config_default(&cfg);
	cfg.num_classes = 2;
	tc_kernels_set_threads(3);
	{
		size_t		est = tc_model_memory_estimate(&cfg, 32, 3);
		size_t		got = measured_peak(&cfg, 32);

		tc_check(got != SIZE_MAX && est >= got,
				 "3 threads: estimate %zu covers the measured peak %zu", est, got);
		tc_check(est > tc_model_memory_estimate(&cfg, 32, 1),
				 "3 threads: the estimate grows with threads");
	}
	tc_kernels_set_threads(1);

	tc_config_default(&cfg);
	base = tc_model_memory_estimate(&cfg, 32, 1);
	infer = tc_model_memory_estimate(&cfg, 0, 1);
	tc_check(infer < base, "inference (%zu) needs less than training (%zu)",
			 infer, base);
	tc_check(base > 1024 * 1024, "the default model needs more than 1 MB (%zu)",
			 base);
	tc_check(base < 1024 * 1024 * 1024, "the default model needs less than 1 GB");

	big = cfg;
	big.vocab_size *= 2;
	tc_check(tc_model_memory_estimate(&big, 32, 1) > base, "grows with vocab_size");
	big = cfg;
	big.hidden_size *= 2;
	tc_check(tc_model_memory_estimate(&big, 32, 1) > base, "grows with hidden_size");
	big = cfg;
	big.max_len *= 2;
	tc_check(tc_model_memory_estimate(&big, 32, 1) > base, "grows with max_len");
	tc_check(tc_model_memory_estimate(&cfg, 64, 1) > base, "grows with batch");
	cfg.num_classes = 0;
	tc_check(tc_model_memory_estimate(&cfg, 32, 1) == base,
			 "num_classes 0 counts as 2");

	/* the example and the largest legal configuration */
	tc_config_default(&big);
	big.vocab_size = 2000000;
	big.embedding_dim = 1024;
	tc_check(tc_model_memory_estimate(&big, 32, 1) > (size_t) 8000000000u,
			 "2,000,000 x 1024 needs more than 8 GB");
	big.max_len = TC_MAX_MAX_LEN;
	big.hidden_size = TC_MAX_HIDDEN;
	big.num_classes = TC_MAX_CLASSES;
	tc_check(tc_model_memory_estimate(&big, TC_MAX_BATCH, 1) >
			 tc_model_memory_estimate(&big, 32, 1),
			 "the largest configuration does not wrap around");
	return tc_test_done();
}
