/*
 * make_seeds.c
 *	  Writes the seed corpus of fuzz_format.c: a few small valid models.
 *
 *	  make_seeds DIR   writes DIR/model-3class-word.bin,
 *	                   DIR/model-2class-char-oov.bin, DIR/model-empty-vocab.bin
 *	                   and DIR/text-mixed.txt (a tokenizer seed)
 *
 * The models are tiny (V <= 60, E = 4, H = 3) so the fuzzer mutates
 * structure, not kilobytes of weights.  It does not train anything.
 *
 * Memory: malloc, freed before exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textclf/format.h"

/* malloc hook. */
static void *
seed_alloc(void *ctx, size_t n)
{
	(void) ctx;
	return malloc(n ? n : 1);
}

/* free hook. */
static void
seed_free(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

static const TcAllocator seed_allocator = {seed_alloc, seed_free, NULL};

/* Build one model and write its blob to dir/name; returns 0 on success. */
static int
write_seed(const char *dir, const char *name, int vocab_size, int nclasses,
		   const char *const *labels, const char *const *words, size_t nwords,
		   bool use_oov, int mode, bool lowercase)
{
	TcConfig	cfg;
	TcModel    *m;
	TcError		err;
	size_t		lens[64];
	size_t		size;
	unsigned char *buf;
	char		path[4096];
	FILE	   *f;
	int			rc = 1;

	tc_config_default(&cfg);
	cfg.vocab_size = vocab_size;
	cfg.max_len = 32;
	cfg.embedding_dim = 4;
	cfg.hidden_size = 3;
	cfg.num_classes = nclasses;
	cfg.use_oov = use_oov;
	cfg.tok.mode = mode;
	cfg.tok.lowercase = lowercase;
	cfg.threshold = 0.5f;
	m = tc_model_create(&seed_allocator, &cfg, labels, &err);
	if (m == NULL)
	{
		fprintf(stderr, "make_seeds: %s\n", err.msg);
		return 1;
	}
	tc_model_init(m, 1234);
	for (size_t i = 0; i < nwords; i++)
		lens[i] = strlen(words[i]);
	m->vocab = tc_vocab_from_words(&seed_allocator, words, lens, nwords,
								   vocab_size, use_oov, &err);
	if (m->vocab == NULL)
	{
		fprintf(stderr, "make_seeds: %s\n", err.msg);
		tc_model_free(m);
		return 1;
	}
	size = tc_model_serialized_size(m);
	buf = malloc(size);
	if (tc_model_serialize(m, buf, size, NULL, &err) != TC_OK)
		fprintf(stderr, "make_seeds: %s\n", err.msg);
	else
	{
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		f = fopen(path, "wb");
		if (f != NULL && fwrite(buf, 1, size, f) == size && fclose(f) == 0)
		{
			printf("%s: %zu bytes\n", path, size);
			rc = 0;
		}
		else
			fprintf(stderr, "make_seeds: could not write \"%s\"\n", path);
	}
	free(buf);
	tc_model_free(m);
	return rc;
}

/* Write text (a tokenizer seed) to dir/name; returns 0 on success. */
static int
write_text(const char *dir, const char *name, const char *text)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(text, 1, strlen(text), f) != strlen(text) ||
		fclose(f) != 0)
	{
		fprintf(stderr, "make_seeds: could not write \"%s\"\n", path);
		return 1;
	}
	printf("%s: %zu bytes\n", path, strlen(text));
	return 0;
}

/* Write the seeds into argv[1]. */
int
main(int argc, char **argv)
{
	static const char *const labels3[] = {"neg", "pos", "neutr\xC3\xA9"};
	static const char *const labels2[] = {"spam", "\xE6\xAD\xA3\xE5\xB8\xB8"};
	static const char *const words[] = {
		"good", "fine", "bad", "the", "caf\xC3\xA9", "\xE4\xB8\xAD",
		"\xE6\x96\x87", "movie", "it's", "not", "great", "awful", "a",
		"\xF0\x9F\x98\x80", "plot", "acting", "boring", "fun", "zz",
		"\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"
	};
	static const char *const labels4[] = {"a", "b", "c", "d"};
	static const char *const chars[] = {
		"a", "e", "t", "o", "\xC3\xA9", "\xE4\xB8\xAD", "n", "s"
	};
	int			rc = 0;

	if (argc != 2)
	{
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 2;
	}
	rc |= write_seed(argv[1], "model-3class-word.bin", 60, 3, labels3, words,
					 20, false, TC_TOK_WORD, true);
	rc |= write_seed(argv[1], "model-2class-char-oov.bin", 12, 2, labels2,
					 chars, 8, true, TC_TOK_CHAR, false);
	rc |= write_seed(argv[1], "model-empty-vocab.bin", 5, 4, labels4, NULL,
					 0, false, TC_TOK_WORD, true);
	rc |= write_text(argv[1], "text-mixed.txt",
					 "Great movie, it's NOT boring! caf\xC3\xA9 abc\xE4\xB8\xAD"
					 "\xE6\x96\x87" "def \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5"
					 "\xD1\x82\t\xE3\x81\x82\xE3\x82\xA2 \xF0\x9F\x98\x80 \xC0\xAF\xFF"
					 " end\n");
	return rc;
}
