/*
 * test_fixture_full.c
 *	  The whole model against PyTorch at the reference sizes: reads
 *	  test/fixtures/lstm_full.bin (written by test/fixtures/gen_fixtures.py,
 *	  in float64 from a Keras-style initialisation: E 16, H 128, K 4 with
 *	  softmax, 32 sequences of 1..100 tokens with many ties and repeated
 *	  tokens, padding id 0 among them), then
 *	   - runs the first batch through tc_model_batch and compares the
 *		 logits, the loss and every gradient;
 *	   - walks batches of DIFFERENT sizes (32, 32, 7, 32, 32, 7) through
 *		 tc_model_batch + tc_adam_step and compares the loss before each
 *		 step, the gradients of the last (small, short) batch and the final
 *		 parameters: state left over from a previous, larger batch (stale
 *		 packing arrays, gradients not zeroed, Adam moments) shows here.
 *	  test_fixture.c covers the small shapes; this one covers the fast
 *	  kernels' real tile shapes (16 blocks of 8 units forward, 4 of 32
 *	  backward) and their thread split.
 *
 * Each of four paths is checked: fast kernels on 1 and 2 threads, and the
 * reference kernels with the naive loops (1 thread) and with cblas (2
 * threads).
 *
 * Tolerances are relative to each tensor's scale (at this initialisation
 * the gradients are ~1e-4, so a fixed absolute bound would prove nothing):
 * |ours - torch| <= 1e-5 max|torch| + 1e-4 |torch| for logits and
 * gradients, 1e-5 for losses.  The final parameters move by about lr per
 * step, and Adam divides by sqrt(v), so a gradient element that is zero up
 * to rounding may step either way: they must agree to 1e-5 except for at
 * most 0.1% of the elements, and to 2 lr nbatch everywhere.
 *
 * Memory: the file is read into one malloc'd buffer; models come from
 * tc_test_alloc; all freed before exit.
 */
#include "tc_test.h"
#include "textclf/kernels.h"
#include "textclf/model.h"

#define FF_MAGIC	0x46464354u
#define FF_VERSION	1u

/* Read cursor over the fixture bytes. */
typedef struct FfReader
{
	const unsigned char *p;
	size_t		left;
	int			bad;
} FfReader;

/* Copy the next n 4-byte values into dst (NULL: skip); false when truncated. */
static int
ff_array(FfReader *r, void *dst, size_t n)
{
	size_t		bytes = tc_mul_size(n, 4);

	if (r->bad || bytes > r->left)
	{
		r->bad = 1;
		return 0;
	}
	if (dst != NULL)
		memcpy(dst, r->p, bytes);
	r->p += bytes;
	r->left -= bytes;
	return 1;
}

/* The recorded case. */
typedef struct FfCase
{
	int32_t		V,
				E,
				H,
				K,
				nseq,
				nbatch;
	TcAdam		adam;
	int		   *lens;			/* (nseq) */
	int32_t    *tokens;			/* (sum lens) */
	const int32_t **seqs;		/* (nseq) */
	int32_t    *targets;		/* (nseq) */
	int32_t    *bsizes;			/* (nbatch) */
	float	   *params;			/* (P) */
	float	   *logits;			/* (bsizes[0],K) */
	float		loss;
	float	   *grads;			/* (P) first batch */
	float	   *losses;			/* (nbatch) */
	float	   *grads_last;		/* (P) last batch */
	float	   *final;			/* (P) after nbatch steps */
	size_t		P;
} FfCase;

/* Parse the whole file into c; false (and a failed check) when malformed. */
static int
ff_load(FfReader *r, FfCase *c)
{
	int32_t		hdr[6];
	float		hp[4];
	uint32_t	mv[2];
	size_t		ntok = 0;
	TcConfig	cfg;
	size_t		sizes[TC_NUM_PARAMS];

	if (!ff_array(r, mv, 2) || mv[0] != FF_MAGIC || mv[1] != FF_VERSION ||
		!ff_array(r, hdr, 6) || !ff_array(r, hp, 4))
		return 0;
	c->V = hdr[0];
	c->E = hdr[1];
	c->H = hdr[2];
	c->K = hdr[3];
	c->nseq = hdr[4];
	c->nbatch = hdr[5];
	c->adam.lr = hp[0];
	c->adam.beta1 = hp[1];
	c->adam.beta2 = hp[2];
	c->adam.eps = hp[3];
	if (c->V < 2 || c->E < 1 || c->H < 1 || c->K < 2 || c->nseq < 1 ||
		c->nseq > 4096 || c->nbatch < 1 || c->nbatch > 100)
		return 0;
	c->lens = malloc(sizeof(int) * c->nseq);
	c->targets = malloc(sizeof(int32_t) * c->nseq);
	c->seqs = malloc(sizeof(int32_t *) * c->nseq);
	c->bsizes = malloc(sizeof(int32_t) * c->nbatch);
	if (!ff_array(r, c->lens, (size_t) c->nseq))
		return 0;
	for (int s = 0; s < c->nseq; s++)
	{
		if (c->lens[s] < 1 || c->lens[s] > TC_MAX_MAX_LEN)
			return 0;
		ntok += (size_t) c->lens[s];
	}
	c->tokens = malloc(sizeof(int32_t) * ntok);
	if (!ff_array(r, c->tokens, ntok) ||
		!ff_array(r, c->targets, (size_t) c->nseq) ||
		!ff_array(r, c->bsizes, (size_t) c->nbatch))
		return 0;
	for (int s = 0, o = 0; s < c->nseq; s++)
	{
		c->seqs[s] = c->tokens + o;
		o += c->lens[s];
	}
	for (int i = 0; i < c->nbatch; i++)
		if (c->bsizes[i] < 1 || c->bsizes[i] > c->nseq)
			return 0;

	tc_config_default(&cfg);
	cfg.vocab_size = c->V;
	cfg.embedding_dim = c->E;
	cfg.hidden_size = c->H;
	cfg.num_classes = c->K;
	tc_param_sizes(&cfg, sizes);
	c->P = 0;
	for (int t = 0; t < TC_NUM_PARAMS; t++)
		c->P += sizes[t];
	c->params = malloc(sizeof(float) * c->P);
	c->logits = malloc(sizeof(float) * (size_t) c->bsizes[0] * c->K);
	c->grads = malloc(sizeof(float) * c->P);
	c->losses = malloc(sizeof(float) * c->nbatch);
	c->grads_last = malloc(sizeof(float) * c->P);
	c->final = malloc(sizeof(float) * c->P);
	return ff_array(r, c->params, c->P) &&
		ff_array(r, c->logits, (size_t) c->bsizes[0] * c->K) &&
		ff_array(r, &c->loss, 1) &&
		ff_array(r, c->grads, c->P) &&
		ff_array(r, c->losses, (size_t) c->nbatch) &&
		ff_array(r, c->grads_last, c->P) &&
		ff_array(r, c->final, c->P);
}

/* Free what ff_load allocated. */
static void
ff_free(FfCase *c)
{
	free(c->lens);
	free(c->tokens);
	free(c->seqs);
	free(c->targets);
	free(c->bsizes);
	free(c->params);
	free(c->logits);
	free(c->grads);
	free(c->losses);
	free(c->grads_last);
	free(c->final);
}

/* Each of the six tensors of ours (P) against ref (P), scale-relative. */
static void
ff_check_grads(const TcModel *m, const float *ours, const float *ref,
			   const char *what, const char *tag)
{
	const char *pnames[TC_NUM_PARAMS] = {"emb", "Wx", "Wh", "b", "Wd", "bd"};
	size_t		off = 0;

	for (int t = 0; t < TC_NUM_PARAMS; t++)
	{
		size_t		n = m->param_sizes[t];
		double		scale = 0.0;
		char		name[200];

		for (size_t i = 0; i < n; i++)
			if (fabs(ref[off + i]) > scale)
				scale = fabs(ref[off + i]);
		snprintf(name, sizeof(name), "full [%s] %s %s (max |torch| %.3g)",
				 tag, what, pnames[t], scale);
		tc_check_tensor(name, ours + off, ref + off, n, 1e-5 * scale, 1e-4);
		off += n;
	}
}

/* Final parameters: 1e-5 except for <= 0.1% of elements, 2 lr nbatch everywhere. */
static void
ff_check_final(const TcModel *m, const FfCase *c, const char *tag)
{
	size_t		nbad = 0;
	double		worst = 0.0;
	double		bound = 2.0 * c->adam.lr * c->nbatch;

	for (size_t i = 0; i < c->P; i++)
	{
		double		d = fabs((double) m->params_memory[i] - c->final[i]);

		if (!(d <= 1e-5))
			nbad++;
		if (!(d <= worst))
			worst = d;
	}
	tc_check(nbad * 1000 <= c->P && worst <= bound,
			 "full [%s] parameters after %d Adam steps: %zu of %zu differ by > 1e-5, worst %.3g (bound %.3g)",
			 tag, c->nbatch, nbad, c->P, worst, bound);
}

/* Run the case on one path: fast or reference kernels, naive loops, threads. */
static void
run_path(const FfCase *c, bool fast, bool naive, int threads)
{
	TcConfig	cfg;
	TcError		err;
	TcModel    *m;
	char		tag[80];
	char		name[200];
	int			maxB = 0;
	int			maxT = 0;
	int			start = 0;
	float	   *logits = malloc(sizeof(float) * (size_t) c->bsizes[0] * c->K);
	float	   *losses = malloc(sizeof(float) * c->nbatch);
	double		loss;
	float		loss_f;

	snprintf(tag, sizeof(tag), "%s kernels, %s, %d thread%s",
			 fast ? "fast" : "reference", naive ? "naive loops" : "cblas",
			 threads, threads == 1 ? "" : "s");
	for (int i = 0; i < c->nbatch; i++)
		if (c->bsizes[i] > maxB)
			maxB = c->bsizes[i];
	for (int s = 0; s < c->nseq; s++)
		if (c->lens[s] > maxT)
			maxT = c->lens[s];

	tc_config_default(&cfg);
	cfg.vocab_size = c->V;
	cfg.embedding_dim = c->E;
	cfg.hidden_size = c->H;
	cfg.max_len = maxT;
	cfg.num_classes = c->K;
	m = tc_model_create(&tc_test_alloc, &cfg, NULL, &err);
	if (m == NULL || m->num_params != c->P ||
		tc_model_train_prepare(m, maxB, maxT, &err) != TC_OK)
	{
		tc_check(0, "full [%s]: model prepared", tag);
		tc_model_free(m);
		free(logits);
		free(losses);
		return;
	}
	memcpy(m->params_memory, c->params, sizeof(float) * c->P);
	tc_blas_use_naive(naive);
	tc_kernels_force_reference(!fast);
	tc_blas_set_threads(threads);

	/* the first batch: logits, loss, every gradient */
	if (tc_model_batch(m, c->seqs, c->lens, c->targets, NULL, c->bsizes[0],
					   true, &loss, NULL, &err) != TC_OK)
	{
		tc_check(0, "full [%s]: batch: %s", tag, err.msg);
		goto done;
	}
	for (int s = 0; s < c->bsizes[0]; s++)
		memcpy(logits + (size_t) m->acts.order[s] * c->K,
			   m->acts.logits + (size_t) s * c->K, sizeof(float) * c->K);
	snprintf(name, sizeof(name), "full [%s] logits", tag);
	tc_check_tensor(name, logits, c->logits, (size_t) c->bsizes[0] * c->K,
					1e-5, 1e-4);
	loss_f = (float) loss;
	snprintf(name, sizeof(name), "full [%s] loss", tag);
	tc_check_tensor(name, &loss_f, &c->loss, 1, 1e-5, 0.0);
	ff_check_grads(m, m->grads_memory, c->grads, "grad", tag);

	/* batches of different sizes, one Adam step after each */
	for (int i = 0; i < c->nbatch; i++)
	{
		int			B = c->bsizes[i];

		if (start + B > c->nseq)
			start = 0;
		if (tc_model_batch(m, c->seqs + start, c->lens + start,
						   c->targets + start, NULL, B, true, &loss, NULL,
						   &err) != TC_OK)
		{
			tc_check(0, "full [%s]: batch %d: %s", tag, i, err.msg);
			goto done;
		}
		losses[i] = (float) loss;
		if (i == c->nbatch - 1)
			ff_check_grads(m, m->grads_memory, c->grads_last,
						   "grad of the last batch", tag);
		tc_adam_step(m, &c->adam);
		start = (start + B) % c->nseq;
	}
	snprintf(name, sizeof(name),
			 "full [%s] losses of %d batches of different sizes", tag,
			 c->nbatch);
	tc_check_tensor(name, losses, c->losses, (size_t) c->nbatch, 1e-5, 0.0);
	ff_check_final(m, c, tag);

done:
	tc_blas_use_naive(false);
	tc_kernels_force_reference(false);
	tc_blas_set_threads(1);
	tc_model_free(m);
	free(logits);
	free(losses);
}

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "test/fixtures/lstm_full.bin";
	FILE	   *f = fopen(path, "rb");
	unsigned char *buf;
	long		size;
	FfReader	r;
	FfCase		c;

	memset(&c, 0, sizeof(c));
	if (f == NULL)
	{
		tc_check(0, "open %s (run from the repository root, or regenerate with /usr/bin/python3 test/fixtures/gen_fixtures.py)", path);
		return tc_test_done();
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(size > 0 ? (size_t) size : 1);
	if (size <= 0 || fread(buf, 1, (size_t) size, f) != (size_t) size)
		size = 0;
	fclose(f);
	r.p = buf;
	r.left = (size_t) size;
	r.bad = 0;
	if (!ff_load(&r, &c) || r.left != 0)
		tc_check(0, "%s: a well-formed fixture, version %u (regenerate with /usr/bin/python3 test/fixtures/gen_fixtures.py)",
				 path, FF_VERSION);
	else
	{
		if (tc_kernels_fast_available())
		{
			run_path(&c, true, false, 1);
			run_path(&c, true, false, 2);
		}
		run_path(&c, false, true, 1);
		run_path(&c, false, false, 2);
	}
	ff_free(&c);
	free(buf);
	return tc_test_done();
}
