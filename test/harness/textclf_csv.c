/*
 * textclf_csv.c
 *	  Command-line harness: train the textclf core on a CSV file outside
 *	  PostgreSQL and report accuracy on a test CSV.  For tests and
 *	  benchmarks, not a product.
 *
 *	  textclf-csv --train FILE.csv[.gz] [--test FILE.csv[.gz]] [options]
 *
 * Files are RFC 4180 CSV with a header row; .gz files are read through
 * "gzip -dc".  The whole file is read into memory (this is a test tool), and
 * a row source and an in-memory spill store feed the core's trainer: the
 * same trainer the server drives through SPI.
 *
 * Output: one line per epoch, then "test_accuracy X" and "test_rows N" when
 * a test file is given.  With --save FILE the model is written in the
 * serialized format.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "textclf/format.h"
#include "textclf/trainer.h"

typedef struct Csv
{
	char	  **texts;
	char	  **labels;
	size_t		n;
	size_t		cap;
} Csv;

typedef struct CsvSource
{
	const Csv  *csv;
	size_t		pos;
} CsvSource;

static void *
xmalloc(void *ctx, size_t n)
{
	(void) ctx;
	return malloc(n ? n : 1);
}

static void
xfree(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

static const TcAllocator heap = {xmalloc, xfree, NULL};

/* Exit with a message. */
static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "textclf-csv: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

/* Read one CSV field into a malloc'd string; returns the char after it. */
static int
read_field(FILE *f, char **out)
{
	size_t		cap = 64,
				len = 0;
	char	   *buf = malloc(cap);
	int			c = fgetc(f);
	int			quoted = (c == '"');

	if (quoted)
		c = fgetc(f);
	for (;;)
	{
		if (c == EOF)
			break;
		if (quoted)
		{
			if (c == '"')
			{
				c = fgetc(f);
				if (c != '"')
				{
					/* end of quoted part: read up to the separator */
					while (c != ',' && c != '\n' && c != EOF)
						c = fgetc(f);
					break;
				}
			}
		}
		else if (c == ',' || c == '\n')
			break;
		if (len + 2 > cap)
			buf = realloc(buf, cap *= 2);
		buf[len++] = (char) c;
		c = fgetc(f);
	}
	if (!quoted && len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	*out = buf;
	return c;
}

/* Load the text and label columns of a CSV file. */
static void
load_csv(const char *path, const char *text_col, const char *label_col,
		 Csv *csv)
{
	FILE	   *f;
	char		cmd[4096];
	int			is_gz = strlen(path) > 3 && strcmp(path + strlen(path) - 3, ".gz") == 0;
	int			ncols = 0,
				ti = -1,
				li = -1;
	int			c;

	memset(csv, 0, sizeof(*csv));
	if (is_gz)
	{
		snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", path);
		f = popen(cmd, "r");
	}
	else
		f = fopen(path, "r");
	if (f == NULL)
		die("could not open \"%s\"", path);
	/* header */
	do
	{
		char	   *name;

		c = read_field(f, &name);
		if (strcmp(name, text_col) == 0)
			ti = ncols;
		if (strcmp(name, label_col) == 0)
			li = ncols;
		ncols++;
		free(name);
	} while (c == ',');
	if (ti < 0 || li < 0)
		die("\"%s\" lacks the text or label column", path);
	for (;;)
	{
		char	   *text = NULL,
				   *label = NULL;
		int			col = 0;
		int			any = 0;

		do
		{
			char	   *field;

			c = read_field(f, &field);
			if (c == EOF && col == 0 && field[0] == '\0')
			{
				free(field);
				break;
			}
			any = 1;
			if (col == ti)
				text = field;
			else if (col == li)
				label = field;
			else
				free(field);
			col++;
		} while (c == ',');
		if (!any)
			break;
		if (text && label)
		{
			if (csv->n == csv->cap)
			{
				csv->cap = csv->cap ? csv->cap * 2 : 1024;
				csv->texts = realloc(csv->texts, csv->cap * sizeof(char *));
				csv->labels = realloc(csv->labels, csv->cap * sizeof(char *));
			}
			csv->texts[csv->n] = text;
			csv->labels[csv->n] = label;
			csv->n++;
		}
		else
		{
			free(text);
			free(label);
		}
		if (c == EOF)
			break;
	}
	if (is_gz)
		pclose(f);
	else
		fclose(f);
}

static TcStatus
src_rewind(void *ctx, TcError *err)
{
	(void) err;
	((CsvSource *) ctx)->pos = 0;
	return TC_OK;
}

static TcStatus
src_next(void *ctx, TcRow *rows, int max, int *n, TcError *err)
{
	CsvSource  *s = ctx;
	int			k = 0;

	(void) err;
	while (k < max && s->pos < s->csv->n)
	{
		rows[k].text = s->csv->texts[s->pos];
		rows[k].text_len = strlen(s->csv->texts[s->pos]);
		rows[k].label = s->csv->labels[s->pos];
		rows[k].label_len = strlen(s->csv->labels[s->pos]);
		k++;
		s->pos++;
	}
	*n = k;
	return TC_OK;
}

static TcStatus
on_epoch(void *arg, const TcEpochStats *s)
{
	(void) arg;
	printf("epoch %d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f "
		   "%.1fs %.0f rows/s%s\n",
		   s->epoch, s->loss, s->accuracy, s->val_loss, s->val_accuracy,
		   s->seconds, s->rows_per_sec, s->best ? " *" : "");
	fflush(stdout);
	return TC_OK;
}

/* Accuracy of the model on a CSV. */
static double
test_accuracy(const TcModel *m, const Csv *csv)
{
	int32_t    *ids = malloc(sizeof(int32_t) * m->cfg.max_len);
	float	   *work = malloc(sizeof(float) * tc_model_infer_work_floats(m));
	float	   *probs = malloc(sizeof(float) * m->cfg.num_classes);
	size_t		correct = 0;

	for (size_t i = 0; i < csv->n; i++)
	{
		int			n = tc_text_to_ids(m->vocab, &m->cfg.tok, csv->texts[i],
									   strlen(csv->texts[i]), m->cfg.max_len,
									   ids);
		int			k;

		tc_model_infer(m, ids, n, probs, work);
		k = tc_model_decide(m, probs, m->cfg.threshold);
		if (strcmp(m->labels[k], csv->labels[i]) == 0)
			correct++;
	}
	free(ids);
	free(work);
	free(probs);
	return csv->n ? (double) correct / (double) csv->n : NAN;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: textclf-csv --train FILE [--test FILE] [--text-col text] [--label-col label]\n"
			"       [--epochs N] [--batch N] [--max-len N] [--vocab N] [--embed N] [--hidden N]\n"
			"       [--lr X] [--val X] [--seed N] [--patience N] [--clip X] [--dropout X] [--ema-momentum X] [--threads N]\n"
			"       [--tokenizer word|char] [--no-lowercase] [--save FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *train_path = NULL,
			   *test_path = NULL,
			   *save_path = NULL;
	const char *text_col = "text",
			   *label_col = "label";
	TcConfig	cfg;
	TcTrainOptions opts;
	TcTrainCallbacks cb = {NULL, NULL, on_epoch, NULL};
	TcTrainResult res;
	TcError		err;
	TcModel    *model;
	TcMemSpill *ms;
	TcSpill		spill;
	TcRowSource src;
	CsvSource	cs;
	Csv			train,
				test;
	double		t0;
	struct timespec ts;

	tc_config_default(&cfg);
	tc_train_options_default(&opts);
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-lowercase") == 0)
		{
			cfg.tok.lowercase = false;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--train") == 0)
			train_path = v;
		else if (strcmp(a, "--test") == 0)
			test_path = v;
		else if (strcmp(a, "--save") == 0)
			save_path = v;
		else if (strcmp(a, "--text-col") == 0)
			text_col = v;
		else if (strcmp(a, "--label-col") == 0)
			label_col = v;
		else if (strcmp(a, "--epochs") == 0)
			opts.epochs = atoi(v);
		else if (strcmp(a, "--batch") == 0)
			opts.batch_size = atoi(v);
		else if (strcmp(a, "--max-len") == 0)
			cfg.max_len = atoi(v);
		else if (strcmp(a, "--vocab") == 0)
			cfg.vocab_size = atoi(v);
		else if (strcmp(a, "--embed") == 0)
			cfg.embedding_dim = atoi(v);
		else if (strcmp(a, "--hidden") == 0)
			cfg.hidden_size = atoi(v);
		else if (strcmp(a, "--lr") == 0)
			opts.adam.lr = (float) atof(v);
		else if (strcmp(a, "--val") == 0)
			opts.validation_fraction = atof(v);
		else if (strcmp(a, "--seed") == 0)
			opts.seed = strtoull(v, NULL, 10);
		else if (strcmp(a, "--patience") == 0)
			opts.patience = atoi(v);
		else if (strcmp(a, "--clip") == 0)
			opts.clip_norm = (float) atof(v);
		else if (strcmp(a, "--dropout") == 0)
			opts.dropout = (float) atof(v);
		else if (strcmp(a, "--ema-momentum") == 0)
			opts.ema_momentum = (float) atof(v);
		else if (strcmp(a, "--threads") == 0)
			opts.threads = atoi(v);
		else if (strcmp(a, "--tokenizer") == 0)
			cfg.tok.mode = strcmp(v, "char") == 0 ? TC_TOK_CHAR : TC_TOK_WORD;
		else
			usage();
	}
	if (train_path == NULL)
		usage();

	load_csv(train_path, text_col, label_col, &train);
	if (test_path)
		load_csv(test_path, text_col, label_col, &test);
	printf("train rows %zu%s%zu\n", train.n, test_path ? ", test rows " : "",
		   test_path ? test.n : (size_t) 0);

	cs.csv = &train;
	cs.pos = 0;
	src.ctx = &cs;
	src.rewind = src_rewind;
	src.next = src_next;
	ms = tc_mem_spill_create(&heap);
	tc_mem_spill_bind(ms, &spill);

	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec + ts.tv_nsec * 1e-9;
	if (tc_train(&heap, &cfg, &opts, NULL, 0, &src, &spill, &cb, &model, &res,
				 &err) != TC_OK)
	{
		fprintf(stderr, "textclf-csv: %s\n", err.msg);
		if (err.hint[0])
			fprintf(stderr, "hint: %s\n", err.hint);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("trained: %ld train rows, %ld validation rows, %d epochs (best %d), "
		   "%.1f s\n", res.rows_train, res.rows_val, res.epochs_run,
		   res.best_epoch, ts.tv_sec + ts.tv_nsec * 1e-9 - t0);
	tc_mem_spill_free(ms);

	if (test_path)
	{
		printf("test_rows %zu\n", test.n);
		/* fast inference tables (the reference path runs if this fails) */
		(void) tc_model_prepare_infer(model, &err);
		printf("test_accuracy %.4f\n", test_accuracy(model, &test));
	}
	if (save_path)
	{
		size_t		size = tc_model_serialized_size(model);
		unsigned char *buf = malloc(size);
		FILE	   *f;

		if (tc_model_serialize(model, buf, size, NULL, &err) != TC_OK)
			die("%s", err.msg);
		f = fopen(save_path, "wb");
		if (f == NULL || fwrite(buf, 1, size, f) != size || fclose(f) != 0)
			die("could not write \"%s\"", save_path);
		free(buf);
	}
	tc_model_free(model);
	return 0;
}
