/*
 * glue.h
 *	  Declarations shared by the glue files: turning core statuses into
 *	  ereport, the backend-wide model cache, and the extension's schema.
 */
#ifndef TEXTCLF_GLUE_H
#define TEXTCLF_GLUE_H

#include "textclf/model.h"

/* status.c: raise the core's error as an ERROR (never returns). */
extern void TcReportError(const TcError *err) pg_attribute_noreturn();
/* status.c: raise for a non-OK status, else do nothing. */
static inline void
TcCheck(TcStatus st, const TcError *err)
{
	if (st != TC_OK)
		TcReportError(err);
}

/* cache.c: a decoded model held by the backend-wide cache. */
typedef struct TcCachedModel
{
	uint64		content_id;
	TcModel    *model;
	float	   *work;			/* (tc_model_infer_work_floats) */
	int32	   *ids;			/* (max_len) */
	float	   *probs;			/* (num_classes) */
	size_t		bytes;			/* memory charged to the cache */
} TcCachedModel;

/* Look a model up by content id; NULL when it is not cached. */
extern TcCachedModel *TcCacheLookup(uint64 content_id);
/* Decode a serialized model and add it to the cache (or return the cached one). */
extern TcCachedModel *TcCacheLoad(const unsigned char *buf, size_t size);
/* Counter bumped whenever an entry leaves the cache. */
extern uint64 TcCacheGeneration(void);

/* predict.c: resolve a model name ('name' or 'name@N') and load it */
extern TcCachedModel *TcResolveModelName(text *name);
/* train.c: check relation, columns and SELECT privilege; quote names */
extern void TcCheckSource(Oid relid, Name textcol, Name labelcol,
						  char **qualrel, const char **qtext,
						  const char **qlabel);
/* evaluate.c: metrics as a JSON object (labels in UTF-8) */
struct TcMetrics;
extern char *TcMetricsJson(struct TcMetrics *m, char **labels, long skipped,
						   long unknown);

/* predict.c helpers shared with evaluate/tokenize */
extern int	TcTextToIds(const TcModel *m, text *t, int32 *ids);

/* registry.c: OID of the extension's schema (where its type lives). */
extern Oid	TcExtensionSchema(void);
/* registry.c: OID of the classifier type. */
extern Oid	TcClassifierTypeOid(void);

/* registry.c: the extension's owner, and running registry SQL as it. */
typedef struct TcRegistryUser
{
	Oid			userid;
	int			sec;
	int			nestlevel;		/* GUC nest level of the search_path set */
} TcRegistryUser;
extern Oid	TcExtensionOwner(void);
extern void TcRegistryBegin(TcRegistryUser *save);
extern void TcRegistryEnd(const TcRegistryUser *save);
/*
 * registry.c: raise unless the current user may manage a model's versions;
 * returns whether the model exists.
 */
extern bool TcCheckModelOwner(text *model_name);

/* acl.c: raise 42501 unless the current user may use a model by name. */
extern void TcCheckModelUse(const char *model_name);
/* acl.c: remove the grants of a model that has no version left. */
extern void TcForgetModelGrants(text *model_name);

/* progress.c: live training progress in shared memory (when preloaded) */
typedef enum TcPhase
{
	TC_PHASE_READING,
	TC_PHASE_TOKENIZING,
	TC_PHASE_TRAINING,
	TC_PHASE_VALIDATING,
	TC_PHASE_STORING
} TcPhase;
struct TcBatchStats;
struct TcEpochStats;
extern void TcProgressInit(void);
extern void TcProgressBegin(MemoryContext cxt, const char *model_name,
							int epochs, int batch_size);
extern void TcProgressRows(long rows);
extern void TcProgressBatch(const struct TcBatchStats *b);
extern void TcProgressEpoch(const struct TcEpochStats *e);
extern void TcProgressPhase(TcPhase phase);
extern void TcProgressEnd(void);

/* registry.c: shared by train_classifier and import_model */
#define TC_MAX_MODEL_NAME 200
extern void TcCheckModelName(const char *name);
extern int32 TcBeginNewVersion(const char *name, TcRegistryUser *save);
extern Datum TcLabelsArray(char **labels, int nlabels);
/*
 * registry.c: the version a model name resolves to (the version given when
 * > 0, else the deployed one) and its content id; raises 42704 when there
 * is none, with no_deployed_hint as the hint of "has no deployed version".
 * Call between TcRegistryBegin and TcRegistryEnd, inside SPI.
 */
extern int32 TcResolveVersion(const char *name, int32 version,
							  uint64 *content_id, const char *no_deployed_hint);

#endif							/* TEXTCLF_GLUE_H */
