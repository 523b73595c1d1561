/*
 * test_fixture.c
 *	  The whole model against PyTorch: reads test/fixtures/lstm_small.bin
 *	  (written by test/fixtures/gen_fixtures.py, llm.c test_gpt2.c style),
 *	  loads the recorded parameters, runs tc_model_batch and compares the
 *	  logits, the loss and every gradient, then takes 10 Adam steps and
 *	  compares the loss before each one with the hand-written Keras-epsilon
 *	  Adam of the generator.
 *
 * Usage: test_fixture [path]   (default test/fixtures/lstm_small.bin,
 * relative to the repository root, the cwd of make core-check).  Every
 * tensor must satisfy |ours - torch| <= 1e-5 + 1e-4 |torch|.  Each case is
 * run twice: with tc_sgemm on cblas and the fast (AVX2) kernels, and with
 * the naive loops and the reference kernels.
 *
 * The file is little-endian; this test reads it with memcpy and so assumes
 * a little-endian host (like every platform we build on).
 *
 * Memory: the file is read into one malloc'd buffer; models come from
 * tc_test_alloc; all freed before exit.
 */
#include "tc_test.h"
#include "textclf/kernels.h"
#include "textclf/model.h"

#define FX_MAGIC	0x58464354u
#define FX_VERSION	1u
#define FX_ATOL		1e-5
#define FX_RTOL		1e-4

/* Read cursor over the fixture bytes. */
typedef struct FxReader
{
	const unsigned char *p;
	size_t		left;
	int			bad;
} FxReader;

/* Next n bytes (NULL, and the reader marked bad, when truncated). */
static const void *
fx_take(FxReader *r, size_t n)
{
	const void *p = r->p;

	if (r->bad || n > r->left)
	{
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

/* Next 32-bit integer (0 when truncated). */
static int32_t
fx_i32(FxReader *r)
{
	const void *p = fx_take(r, 4);
	int32_t		v = 0;

	if (p)
		memcpy(&v, p, 4);
	return v;
}

/* Next float (0 when truncated). */
static float
fx_f32(FxReader *r)
{
	const void *p = fx_take(r, 4);
	float		v = 0.0f;

	if (p)
		memcpy(&v, p, 4);
	return v;
}

/* Copy the next n floats (or int32s) into dst; false when truncated. */
static int
fx_array(FxReader *r, void *dst, size_t n)
{
	const void *p = fx_take(r, tc_mul_size(n, 4));

	if (p == NULL)
		return 0;
	memcpy(dst, p, n * 4);
	return 1;
}

/* Run one case, with tc_sgemm on cblas (naive = false) or the loops. */
static int
run_case(FxReader *r, int ci, bool naive)
{
	const char *pnames[TC_NUM_PARAMS] = {"emb", "Wx", "Wh", "b", "Wd", "bd"};
	int32_t		V = fx_i32(r), E = fx_i32(r), H = fx_i32(r), K = fx_i32(r);
	int32_t		B = fx_i32(r), nsteps = fx_i32(r);
	TcAdam		adam;
	TcConfig	cfg;
	TcError		err;
	TcModel    *m = NULL;
	int		   *lens = NULL;
	int32_t    *tokens = NULL, *targets = NULL;
	const int32_t **seqs = NULL;
	float	   *weights = NULL, *ref_logits = NULL, *ref_grads = NULL;
	float	   *ref_losses = NULL, *logits = NULL, *losses = NULL;
	float		ref_loss, loss_f;
	double		loss;
	int			maxlen = 1;
	size_t		ntok = 0;
	const char *tag = naive ? "naive, reference kernels" : "cblas, fast kernels";
	int			ok = 0;

	adam.lr = fx_f32(r);
	adam.beta1 = fx_f32(r);
	adam.beta2 = fx_f32(r);
	adam.eps = fx_f32(r);
	if (r->bad || B < 1 || B > 64 || K < 1 || nsteps < 0 || nsteps > 100)
	{
		tc_check(0, "case %d: sane header", ci);
		return 0;
	}
	lens = malloc(sizeof(int) * B);
	targets = malloc(sizeof(int32_t) * B);
	weights = malloc(sizeof(float) * B);
	seqs = malloc(sizeof(int32_t *) * B);
	if (!fx_array(r, lens, (size_t) B))
		goto done;
	for (int b = 0; b < B; b++)
	{
		if (lens[b] < 0 || lens[b] > 1000)
			goto done;
		ntok += (size_t) lens[b];
		if (lens[b] > maxlen)
			maxlen = lens[b];
	}
	tokens = malloc(sizeof(int32_t) * (ntok + 1));
	if (!fx_array(r, tokens, ntok) || !fx_array(r, targets, (size_t) B) ||
		!fx_array(r, weights, (size_t) B))
		goto done;
	{
		size_t		o = 0;

		for (int b = 0; b < B; b++)
		{
			seqs[b] = tokens + o;
			o += (size_t) lens[b];
		}
	}

	tc_config_default(&cfg);
	cfg.vocab_size = V;
	cfg.embedding_dim = E;
	cfg.hidden_size = H;
	cfg.max_len = maxlen;
	cfg.num_classes = (K == 1) ? 2 : K;
	m = tc_model_create(&tc_test_alloc, &cfg, NULL, &err);
	if (m == NULL || m->K != K)
	{
		tc_check(0, "case %d: model created", ci);
		goto done;
	}
	if (tc_model_train_prepare(m, B, maxlen, &err) != TC_OK)
	{
		tc_check(0, "case %d: train_prepare: %s", ci, err.msg);
		goto done;
	}
	ref_logits = malloc(sizeof(float) * B * K);
	ref_grads = malloc(sizeof(float) * m->num_params);
	ref_losses = malloc(sizeof(float) * (nsteps + 1));
	logits = malloc(sizeof(float) * B * K);
	losses = malloc(sizeof(float) * (nsteps + 1));
	if (!fx_array(r, m->params_memory, m->num_params) ||
		!fx_array(r, ref_logits, (size_t) B * K))
		goto done;
	ref_loss = fx_f32(r);
	if (!fx_array(r, ref_grads, m->num_params) ||
		!fx_array(r, ref_losses, (size_t) nsteps))
		goto done;

	tc_blas_use_naive(naive);
	tc_kernels_force_reference(naive);
	if (tc_model_batch(m, seqs, lens, targets, weights, B, true, &loss, NULL,
					   &err) != TC_OK)
	{
		tc_check(0, "case %d: batch: %s", ci, err.msg);
		goto done;
	}
	/* logits are kept in packed order; put them back in the caller's */
	for (int s = 0; s < B; s++)
		memcpy(logits + (size_t) m->acts.order[s] * K,
			   m->acts.logits + (size_t) s * K, sizeof(float) * K);
	{
		char		name[160];
		size_t		off = 0;

		snprintf(name, sizeof(name), "fixture K=%d [%s] logits", K, tag);
		tc_check_tensor(name, logits, ref_logits, (size_t) B * K, FX_ATOL, FX_RTOL);
		loss_f = (float) loss;
		snprintf(name, sizeof(name), "fixture K=%d [%s] loss", K, tag);
		tc_check_tensor(name, &loss_f, &ref_loss, 1, FX_ATOL, FX_RTOL);
		for (int t = 0; t < TC_NUM_PARAMS; t++)
		{
			snprintf(name, sizeof(name), "fixture K=%d [%s] grad %s", K, tag,
					 pnames[t]);
			tc_check_tensor(name, m->grads_memory + off, ref_grads + off,
							m->param_sizes[t], FX_ATOL, FX_RTOL);
			off += m->param_sizes[t];
		}

		/* the optimizer: loss before each of nsteps Adam steps */
		for (int s = 0; s < nsteps; s++)
		{
			if (tc_model_batch(m, seqs, lens, targets, weights, B, true,
							   &loss, NULL, &err) != TC_OK)
				goto done;
			losses[s] = (float) loss;
			tc_adam_step(m, &adam);
		}
		snprintf(name, sizeof(name),
				 "fixture K=%d [%s] losses over %d Adam steps (%.6f -> %.6f)",
				 K, tag, nsteps, (double) losses[0], (double) losses[nsteps - 1]);
		tc_check_tensor(name, losses, ref_losses, (size_t) nsteps, FX_ATOL, FX_RTOL);
		tc_check(m->adam_t == nsteps, "fixture K=%d [%s] adam_t = %ld", K, tag,
				 m->adam_t);
	}
	ok = 1;

done:
	if (!ok && r->bad)
		tc_check(0, "case %d: fixture file truncated", ci);
	tc_blas_use_naive(false);
	tc_kernels_force_reference(false);
	tc_model_free(m);
	free(lens);
	free(tokens);
	free(targets);
	free(weights);
	free(seqs);
	free(ref_logits);
	free(ref_grads);
	free(ref_losses);
	free(logits);
	free(losses);
	return ok;
}

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "test/fixtures/lstm_small.bin";
	FILE	   *f = fopen(path, "rb");
	unsigned char *buf;
	long		size;
	FxReader	r;
	uint32_t	hdr[3];

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
	if (!fx_array(&r, hdr, 3) || hdr[0] != FX_MAGIC || hdr[1] != FX_VERSION)
	{
		tc_check(0, "%s: magic and version %u (regenerate with /usr/bin/python3 test/fixtures/gen_fixtures.py)",
				 path, FX_VERSION);
		free(buf);
		return tc_test_done();
	}
	tc_check(hdr[2] >= 1, "%s: %u cases", path, hdr[2]);
	for (int path = 0; path < 2; path++)
	{
		r.p = buf + 12;
		r.left = (size_t) size - 12;
		for (uint32_t c = 0; c < hdr[2]; c++)
			if (!run_case(&r, (int) c, path == 1))
				break;
	}
	tc_check(r.left == 0, "whole fixture consumed (%zu bytes left)", r.left);
	free(buf);
	return tc_test_done();
}
