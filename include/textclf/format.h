/*
 * format.h
 *	  The serialized model: one self-describing, versioned binary blob.
 *
 * Layout (all integers little-endian, floats IEEE-754 binary32 LE):
 *	 offset  size
 *	 0		 8	 magic "TEXTCLF\0"
 *	 8		 4	 format version (TC_FORMAT_VERSION)
 *	 12		 4	 flags, reserved, must be zero
 *	 16		 8	 content id: tc_hash64 of bytes [24, total - 8)
 *	 24		 .	 config: vocab_size, max_len, embedding_dim, hidden_size,
 *				 num_classes (5 x u32), tok mode (u8), lowercase (u8),
 *				 use_oov (u8), reserved (u8, zero), threshold (f32)
 *	 .		 .	 labels: count (u32) then for each: length (u32), bytes
 *	 .		 .	 vocabulary: count (u32) then for each word in id order:
 *				 length (u32), bytes
 *	 .		 .	 weights: count (u64) then that many floats, in TcParams
 *				 block order (emb, Wx, Wh, b, Wd, bd)
 *	 total-8 8	 checksum: tc_hash64 of bytes [0, total - 8)
 *
 * The reader trusts nothing: every length, count and offset is checked
 * against the bytes that remain and against the limits in model.h, and
 * weights must be finite.  A corrupt value is an error, never a crash or an
 * out-of-bounds read.
 */
#ifndef TEXTCLF_FORMAT_H
#define TEXTCLF_FORMAT_H

#include "textclf/model.h"

#define TC_FORMAT_MAGIC		"TEXTCLF\0"
#define TC_FORMAT_VERSION	1
#define TC_FORMAT_MIN_SIZE	(24 + 28 + 4 + 4 + 8 + 8)

/* 64-bit content hash (FNV-1a 64 followed by a splitmix finaliser). */
uint64_t	tc_hash64(const void *data, size_t len);

/* Bytes tc_model_serialize will write for m. */
size_t		tc_model_serialized_size(const TcModel *m);

/*
 * Serialize m into buf (of tc_model_serialized_size(m) bytes).  Returns
 * TC_OK; fills *content_id when not NULL.
 */
TcStatus	tc_model_serialize(const TcModel *m, unsigned char *buf,
							   size_t size, uint64_t *content_id,
							   TcError *err);

/*
 * Parse and check a blob; on success *out is a new model (parameters only,
 * no training state) allocated from a.  TC_ERR_FORMAT for corrupt bytes,
 * TC_ERR_VERSION for another format version.
 */
TcStatus	tc_model_deserialize(const TcAllocator *a, const unsigned char *buf,
								 size_t size, TcModel **out, TcError *err);

/*
 * Check a blob without building a model or allocating: the same checks as
 * deserialize, except that duplicate vocabulary words are looked for only
 * in vocabularies of up to 262144 words (the check needs memory to be fast;
 * deserialize always makes it).
 */
TcStatus	tc_model_validate_bytes(const unsigned char *buf, size_t size,
									TcError *err);

/* Content id stored in a blob already checked by tc_model_validate_bytes. */
uint64_t	tc_model_blob_id(const unsigned char *buf);

#endif							/* TEXTCLF_FORMAT_H */
