/*
 * model.h
 *	  The model: configuration, one block each of parameters, gradients,
 *	  Adam moments and activations (llm.c style), initialisation, a training
 *	  step on a packed batch, Adam, and single-sequence inference.
 *
 * Architecture: Embedding(V, E) -> LSTM(H) -> Dense(K) -> sigmoid (two
 * classes, K = 1) or softmax (K = classes).
 *
 * Memory: every block comes from the TcAllocator given to tc_model_create;
 * gradients, Adam moments and activations are allocated on first use
 * (tc_model_train_prepare), so a model loaded only for inference holds the
 * parameters alone.
 */
#ifndef TEXTCLF_MODEL_H
#define TEXTCLF_MODEL_H

#include "textclf/textclf.h"
#include "textclf/tokenizer.h"
#include "textclf/layers.h"

/* Hard limits checked by tc_config_validate (and by the format reader). */
#define TC_MAX_VOCAB		2000000
#define TC_MAX_MAX_LEN		10000
#define TC_MAX_EMBED		1024
#define TC_MAX_HIDDEN		2048
#define TC_MAX_CLASSES		1000
#define TC_MAX_LABEL_BYTES	1024
#define TC_MAX_BATCH		4096

/* Architecture and tokenizer settings: everything predict needs. */
typedef struct TcConfig
{
	int32_t		vocab_size;		/* V: embedding rows, incl. padding id 0 */
	int32_t		max_len;		/* tokens kept per text (the last ones) */
	int32_t		embedding_dim;	/* E */
	int32_t		hidden_size;	/* H */
	int32_t		num_classes;	/* labels; K = 1 when 2, else num_classes */
	TcTokOptions tok;			/* tokenizer mode and lower-casing */
	bool		use_oov;		/* id 1 = out-of-vocabulary */
	float		threshold;		/* two classes: positive when p >= threshold */
} TcConfig;

/* State of the random stream (xoshiro256**; functions at the end). */
typedef struct TcRng
{
	uint64_t	s[4];
} TcRng;

/* Parameter tensors, in block order; Keras layouts. */
#define TC_NUM_PARAMS 6
typedef struct TcParams
{
	float	   *emb;			/* (V,E) embedding */
	float	   *Wx;				/* (E,G) lstm/kernel */
	float	   *Wh;				/* (H,G) lstm/recurrent_kernel */
	float	   *b;				/* (G) lstm/bias */
	float	   *Wd;				/* (H,K) dense/kernel */
	float	   *bd;				/* (K) dense/bias */
} TcParams;

/* Activations of one training step, sized for (maxB, maxT). */
typedef struct TcActs
{
	int32_t    *tokens;			/* (N) packed token ids */
	float	   *x;				/* (N,E) embedded tokens */
	float	   *gates;			/* (N,G) activated gates */
	float	   *cs;				/* (N,H) cell states */
	float	   *hs;				/* (N,H) hidden states */
	float	   *hlast;			/* (B,H) final hidden state */
	float	   *logits;			/* (B,K) */
	float	   *probs;			/* (B,K) */
	float	   *dlogits;		/* (B,K) */
	float	   *dhlast;			/* (B,H) */
	float	   *mask;			/* (B,H) dropout: 0 or 1 / (1 - rate) */
	float	   *dx;				/* (N,E) */
	float	   *work;			/* lstm backward scratch */
	float	   *packed;			/* Wh packed for the fast kernels
								 * (tc_lstm_packed_floats(H)) */
	int		   *lens;			/* (B) */
	int		   *bs;				/* (T) */
	int		   *off;			/* (T+1) */
	int		   *order;			/* (B) caller's index of each packed sequence */
	int32_t    *targets;		/* (B) targets in packed order */
	float	   *weights;		/* (B) sample weights in packed order */
} TcActs;

typedef struct TcModel
{
	TcAllocator alloc;
	TcConfig	cfg;
	int			K;				/* dense outputs: 1 or num_classes */
	/* label names, in class order (the model's labels) */
	char	  **labels;			/* (num_classes) NUL-terminated */
	TcVocab    *vocab;			/* finalized vocabulary */

	size_t		param_sizes[TC_NUM_PARAMS];
	size_t		num_params;		/* total floats */
	float	   *params_memory;	/* one block */
	TcParams	params;			/* pointers into params_memory */

	/* training state, NULL until tc_model_train_prepare */
	float	   *grads_memory;
	TcParams	grads;
	float	   *m_memory;		/* Adam first moment */
	float	   *v_memory;		/* Adam second moment */
	long		adam_t;			/* Adam steps taken */
	int			maxB;
	int			maxT;
	int			acts_threads;	/* threads the activation block is sized for */
	void	   *acts_memory;
	TcActs		acts;

	/*
	 * Dropout on the LSTM's final state, in training batches only (the
	 * trainer sets both): each unit of each row is zeroed with probability
	 * dropout and the others are scaled by 1 / (1 - dropout), so inference
	 * needs no change.  The masks come from dropout_rng, drawn in packed
	 * order on the calling thread, so they do not depend on threads.
	 */
	float		dropout;		/* [0, 1); 0 = off */
	TcRng		dropout_rng;

	/* inference tables, NULL until tc_model_prepare_infer */
	struct TcInfer *infer;
} TcModel;

/* Adam hyperparameters (Keras defaults: 1e-3, 0.9, 0.999, 1e-7). */
typedef struct TcAdam
{
	float		lr;
	float		beta1;
	float		beta2;
	float		eps;
} TcAdam;

/* Fill cfg with the reference model's defaults (labels count left 0). */
void		tc_config_default(TcConfig *cfg);
/* Check every field for range; message names the offending option. */
TcStatus	tc_config_validate(const TcConfig *cfg, TcError *err);
/* Sizes of the six parameter tensors in floats. */
void		tc_param_sizes(const TcConfig *cfg, size_t sizes[TC_NUM_PARAMS]);

/*
 * Create a model with allocated (uninitialised) parameters.  Takes
 * ownership of nothing: labels are copied; vocab may be NULL and set later
 * (the model then owns it).
 */
TcModel    *tc_model_create(const TcAllocator *a, const TcConfig *cfg,
							const char *const *labels, TcError *err);
/* Free the model, its vocabulary and every block. */
void		tc_model_free(TcModel *m);

/*
 * Keras-style initialisation from seed: embeddings U(-0.05, 0.05),
 * Glorot-uniform Wx and Wd, orthogonal Wh, zero biases except the forget
 * gate's (1).  Same seed, same floats, bit for bit.
 */
void		tc_model_init(TcModel *m, uint64_t seed);

/*
 * Estimated peak bytes for a model of cfg (validated; num_classes 0 counts
 * as 2): with batch = 0, holding it for inference (parameters, inference
 * tables, a serialized copy); with batch > 0, training it with that batch
 * size on `threads` threads (adding gradients, two Adam moments, the
 * best-weights copy and the activations for (batch, max_len), whose
 * backward scratch holds a partial sum of the LSTM's weight gradients per
 * thread but the first).  The vocabulary's words are not
 * counted: they depend on the data.  Saturates at SIZE_MAX; allocates
 * nothing, so the server can refuse a configuration before any allocation.
 */
size_t		tc_model_memory_estimate(const TcConfig *cfg, int batch,
									 int threads);

/*
 * Allocate grads, Adam moments and activations for batches up to (maxB,
 * maxT) on tc_kernels_threads() threads (a step run on more threads than
 * the block was prepared for uses the prepared number).
 */
TcStatus	tc_model_train_prepare(TcModel *m, int maxB, int maxT,
								   TcError *err);

/*
 * Forward (and with dlogits, backward) over one batch of B sequences.
 * seqs[b] points to lens_in[b] ids; the function sorts and packs them.
 * With train = true, gradients are zeroed and filled (call tc_adam_step
 * after).  probs_out (B,K), in the caller's order, may be NULL.
 * Returns the mean (weighted) loss in *loss.
 */
TcStatus	tc_model_batch(TcModel *m, const int32_t *const *seqs,
						   const int *lens_in, const int32_t *targets,
						   const float *weights, int B, bool train,
						   double *loss, float *probs_out, TcError *err);

/* Global L2 norm of the gradients. */
double		tc_grad_norm(const TcModel *m);
/* Scale the gradients by s. */
void		tc_grad_scale(TcModel *m, float s);

/*
 * One Adam step with Keras's epsilon convention:
 *	 lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *	 m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *	 p -= lr_t * m / (sqrt(v) + eps)
 */
void		tc_adam_step(TcModel *m, const TcAdam *adam);
/* Flat Adam update over n floats (t = step number, from 1). */
void		tc_adam_update(float *p, const float *g, float *mom, float *vel,
						   size_t n, long t, const TcAdam *adam);

/*
 * Build the tables of the fast inference path (kernels.h) from the
 * current parameters, once per loaded model (the server's model cache
 * calls it after decoding): Wx over Wh packed for the AVX2 step kernel,
 * so that a step is gates = b + [x h] [Wx; Wh] with the activations and
 * the cell update fused; and, only when it is at most
 * TC_INFER_FOLD_MAX_BYTES (small vocabularies: it must stay in cache),
 * the embedding folded into the input projection, P (V,G) = emb Wx + b,
 * so that a step is gates = P[id] + h Wh.  (For the reference model P
 * would be 20 MB and measured 25% slower than the packed Wx: every token
 * then misses the cache.)  One allocation from the model's allocator,
 * owned by the model (freed by tc_model_free).  Changing the parameters makes the tables
 * stale: tc_model_init and tc_adam_step drop them (tc_model_infer then
 * runs the reference path until this is called again); code writing
 * params_memory directly must call this again.  Without AVX2/FMA it does
 * nothing and returns TC_OK.  Returns TC_ERR_NOMEM on allocation failure
 * (the model stays usable on the reference path).
 */
#ifndef TC_INFER_FOLD_MAX_BYTES
#define TC_INFER_FOLD_MAX_BYTES (1024 * 1024)
#endif
TcStatus	tc_model_prepare_infer(TcModel *m, TcError *err);
/* Free the inference tables, if any (the model keeps working). */
void		tc_model_drop_infer(TcModel *m);

/*
 * Inference on one id sequence (length n, may be 0).  probs (num_classes)
 * receives one probability per class (for two classes: 1 - p, p).
 * work must hold tc_model_infer_work_floats(m) floats.  Single-threaded,
 * allocation-free and deterministic; uses the fast kernels when
 * tc_model_prepare_infer has run (and they are enabled), else the plain
 * reference loops.
 */
void		tc_model_infer(const TcModel *m, const int32_t *ids, int n,
						   float *probs, float *work);
size_t		tc_model_infer_work_floats(const TcModel *m);
/* Index of the predicted class for probs (threshold for two classes). */
int			tc_model_decide(const TcModel *m, const float *probs,
							float threshold);

/* ---- rng (model.c): deterministic across platforms ---- */
void		tc_rng_seed(TcRng *r, uint64_t seed);
uint64_t	tc_rng_next(TcRng *r);
/* uniform in [0, 1) with 24 random bits */
float		tc_rng_uniform(TcRng *r);
/* uniform integer in [0, n) */
uint64_t	tc_rng_below(TcRng *r, uint64_t n);
/* standard normal (Box-Muller, double) */
double		tc_rng_normal(TcRng *r);
/* 64-bit mix of x (splitmix64 finaliser); used for hashing seeds and rows */
uint64_t	tc_mix64(uint64_t x);

#endif							/* TEXTCLF_MODEL_H */
