/*
 * bench_core.c
 *	  Micro-benchmark of the numerical core on the reference model
 *	  (V 10,000, E 16, H 128, Dense 1 sigmoid, Adam): training samples/s on
 *	  synthetic 100-token sequences in batches of 32 at one and two threads,
 *	  and single-row inference rows/s at 100 tokens, each through the
 *	  reference kernels and through the fast (AVX2/FMA) kernels.
 *
 * Usage: bench_core [train_batches [infer_rows [repeats]]]
 * Each figure is the median of `repeats` timed runs (the machine may be
 * shared and noisy): samples (rows) per wall-clock second, and per second
 * of the process's CPU time, which is steadier under other load but does
 * not show a speed-up from threads.  It deliberately does not read data or tokenize: the
 * token ids are drawn from the core's own generator.
 *
 * Memory: plain malloc through a local allocator; freed before exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "textclf/model.h"
#include "textclf/kernels.h"

#define BENCH_B		32
#define BENCH_T		100
#define BENCH_MAXR	15

/* malloc for the core */
static void *
bench_malloc(void *ctx, size_t n)
{
	(void) ctx;
	return malloc(n ? n : 1);
}

/* free for the core */
static void
bench_free(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

static const TcAllocator bench_alloc = {bench_malloc, bench_free, NULL};

/* Seconds on the monotonic clock. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* Seconds of CPU time used by the whole process (all threads). */
static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* CPU seconds of the last timed run (process CPU time). */
static double last_cpu;

/* Median of v (n), sorting v in place. */
static double
median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--)
		{
			double		t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The reference model, initialised from a fixed seed. */
static TcModel *
make_model(void)
{
	TcConfig	cfg;
	TcError		err;
	TcModel    *m;

	tc_config_default(&cfg);
	cfg.num_classes = 2;
	m = tc_model_create(&bench_alloc, &cfg, NULL, &err);
	if (m == NULL)
	{
		fprintf(stderr, "bench_core: %s\n", err.msg);
		exit(1);
	}
	tc_model_init(m, 1);
	return m;
}

/* Samples/s of `batches` training steps (batch + Adam) at `threads`. */
static double
bench_train(int threads, int batches, const int32_t *tokens,
			const int32_t *targets)
{
	TcModel    *m = make_model();
	TcError		err;
	TcAdam		adam = {1e-3f, 0.9f, 0.999f, 1e-7f};
	const int32_t *seqs[BENCH_B];
	int			lens[BENCH_B];
	double		loss;
	double		t0;
	double		t1;

	tc_blas_set_threads(threads);
	if (tc_model_train_prepare(m, BENCH_B, BENCH_T, &err) != TC_OK)
	{
		fprintf(stderr, "bench_core: %s\n", err.msg);
		exit(1);
	}
	for (int b = 0; b < BENCH_B; b++)
		lens[b] = BENCH_T;
	/* one warm-up step */
	for (int b = 0; b < BENCH_B; b++)
		seqs[b] = tokens + (size_t) b * BENCH_T;
	tc_model_batch(m, seqs, lens, targets, NULL, BENCH_B, true, &loss, NULL, &err);
	tc_adam_step(m, &adam);
	t0 = now();
	last_cpu = cpu_now();
	for (int i = 0; i < batches; i++)
	{
		for (int b = 0; b < BENCH_B; b++)
			seqs[b] = tokens + ((size_t) (i % 8) * BENCH_B + b) * BENCH_T;
		if (tc_model_batch(m, seqs, lens, targets + (i % 8) * BENCH_B, NULL,
						   BENCH_B, true, &loss, NULL, &err) != TC_OK)
		{
			fprintf(stderr, "bench_core: %s\n", err.msg);
			exit(1);
		}
		tc_adam_step(m, &adam);
	}
	t1 = now();
	last_cpu = cpu_now() - last_cpu;
	tc_model_free(m);
	tc_blas_set_threads(1);
	return (double) batches * BENCH_B / (t1 - t0);
}

/* Rows/s of single-row inference over `rows` 100-token rows. */
static double
bench_infer(int rows, const int32_t *tokens, float *checksum)
{
	TcModel    *m = make_model();
	TcError		err;
	float	   *work = malloc(sizeof(float) * tc_model_infer_work_floats(m));
	float		probs[2];
	double		t0;
	double		t1;
	float		sum = 0.0f;

	if (tc_model_prepare_infer(m, &err) != TC_OK)
	{
		fprintf(stderr, "bench_core: %s\n", err.msg);
		exit(1);
	}
	tc_model_infer(m, tokens, BENCH_T, probs, work);
	t0 = now();
	last_cpu = cpu_now();
	for (int i = 0; i < rows; i++)
	{
		tc_model_infer(m, tokens + (size_t) (i % 256) * BENCH_T, BENCH_T,
					   probs, work);
		sum += probs[1];
	}
	t1 = now();
	last_cpu = cpu_now() - last_cpu;
	*checksum = sum;
	free(work);
	tc_model_free(m);
	return (double) rows / (t1 - t0);
}

int
main(int argc, char **argv)
{
	int			batches = argc > 1 ? atoi(argv[1]) : 20;
	int			rows = argc > 2 ? atoi(argv[2]) : 2000;
	int			repeats = argc > 3 ? atoi(argv[3]) : 5;
	int32_t    *tokens = malloc(sizeof(int32_t) * 256 * BENCH_T);
	int32_t		targets[8 * BENCH_B];
	TcRng		r;
	double		v[BENCH_MAXR];
	double		c[BENCH_MAXR];
	double		load[3] = {0, 0, 0};
	FILE	   *f = fopen("/proc/loadavg", "r");

	if (repeats < 1)
		repeats = 1;
	if (repeats > BENCH_MAXR)
		repeats = BENCH_MAXR;
	tc_rng_seed(&r, 2024);
	for (int i = 0; i < 256 * BENCH_T; i++)
		tokens[i] = 1 + (int32_t) tc_rng_below(&r, 9999);
	for (int i = 0; i < 8 * BENCH_B; i++)
		targets[i] = (int32_t) tc_rng_below(&r, 2);

	printf("# reference model V=10000 E=16 H=128 K=1, B=%d, T=%d; median of %d runs\n",
		   BENCH_B, BENCH_T, repeats);
	printf("# fast kernels available: %s\n", tc_kernels_fast_available() ? "yes (avx2+fma)" : "no");
	if (f != NULL)
	{
		if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) == 3)
			printf("# load average before the run: %.2f (wall-clock figures are only meaningful when it is low)\n",
				   load[0]);
		fclose(f);
	}
	for (int path = 0; path < 2; path++)
	{
		const char *name = path == 0 ? "reference" : "fast";

		tc_kernels_force_reference(path == 0);
		if (path == 1 && !tc_kernels_fast_available())
			break;
		for (int threads = 1; threads <= 2; threads++)
		{
			for (int i = 0; i < repeats; i++)
			{
				int			nb = path == 0 ? (batches + 3) / 4 : batches;

				v[i] = bench_train(threads, nb, tokens, targets);
				c[i] = (double) nb * BENCH_B / last_cpu;
			}
			printf("train %-9s threads=%d  %8.1f samples/s  (per CPU second: %.1f)\n",
				   name, threads, median(v, repeats), median(c, repeats));
			fflush(stdout);
		}
		for (int i = 0; i < repeats; i++)
		{
			float		cs;

			int			nr = path == 0 ? (rows + 9) / 10 : rows;

			v[i] = bench_infer(nr, tokens, &cs);
			c[i] = (double) nr / last_cpu;
		}
		printf("infer %-9s threads=1  %8.1f rows/s     (per CPU second: %.1f; 100 tokens, batch 1)\n",
			   name, median(v, repeats), median(c, repeats));
		fflush(stdout);
	}
	tc_kernels_force_reference(false);
	free(tokens);
	return 0;
}
