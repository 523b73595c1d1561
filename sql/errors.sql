--
-- errors: every error of the SQL API with its SQLSTATE, that a failed
-- training leaves nothing behind (no registry rows, no memory context), and
-- a model value of another format version.
--
-- pg_temp.err runs a statement and shows SQLSTATE: message | detail (the
-- CONTEXT and file/line of verbose errors would not be stable).
--
SET extra_float_digits = 0;
SET textclf.progress = off;
\set VERBOSITY default
\set SHOW_CONTEXT never
\set opts '{"epochs": 2, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200, "max_len": 20, "seed": 1}'

CREATE FUNCTION pg_temp.err(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM ||
           CASE WHEN detail <> '' THEN ' | ' || detail ELSE '' END;
END
$$;
-- textclf's own memory contexts alive in this backend
CREATE VIEW err_contexts AS
SELECT count(*) AS train_contexts FROM pg_backend_memory_contexts
 WHERE name LIKE 'textclf train%';

CREATE TABLE err_docs AS
SELECT i,
       (ARRAY['alpha', 'beta', 'gamma', 'delta'])[1 + i % 4] || ' ' ||
       CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label,
       i::float8 / 2 AS score, i AS n, 'same'::text AS one_label,
       now() AS ts
  FROM generate_series(1, 100) i;
CREATE TABLE err_empty (body text, label text);
CREATE TABLE err_nulls AS SELECT NULL::text AS body, label FROM err_docs;
CREATE TABLE err_many AS
SELECT 'word' || i AS body, 'class' || i AS label FROM generate_series(1, 1001) i;
CREATE SEQUENCE err_seq;
CREATE INDEX err_docs_idx ON err_docs (i);

-- a good model to compare with, and the registry's size from here on
SELECT version FROM train_classifier('err_ok', 'err_docs', 'body', 'label', :'opts');
SELECT * FROM err_contexts;
SELECT count(*) AS models_before FROM textclf.models \gset

-- unknown model (42704)
SELECT pg_temp.err($$SELECT predict('err_nosuch', 'x')$$);
SELECT pg_temp.err($$SELECT predict_proba('err_nosuch', 'x')$$);
SELECT pg_temp.err($$SELECT tokenize('err_nosuch', 'x')$$);
SELECT pg_temp.err($$SELECT predict('err_ok@2', 'x')$$);
SELECT pg_temp.err($$SELECT predict('err_ok@0', 'x')$$);
SELECT pg_temp.err($$SELECT predict('', 'x')$$);
SELECT pg_temp.err($$SELECT drop_model('err_nosuch')$$);
SELECT pg_temp.err($$SELECT drop_model_version('err_nosuch', 1)$$);
SELECT pg_temp.err($$SELECT drop_model_version('err_ok', 2)$$);
SELECT pg_temp.err($$SELECT drop_model_version('err_ok', 0)$$);
SELECT pg_temp.err($$SELECT drop_model_version('err_ok', -1)$$);
-- the same without the helper: message and hint
SELECT predict('err_nosuch', 'x');

-- unknown relation (42P01, from the regclass cast), wrong kind (42809)
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_nosuch', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'nosuch_schema.t', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 0, 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_seq', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs_idx', 'body', 'label')$$);
-- unknown column (42703); names are case-sensitive; system columns (22023)
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'nosuch', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'body', 'nosuch')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'Body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'ctid', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'body', 'xmin')$$);
-- wrong text column type, wrong label column type (42804)
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'n', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'ts', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'body', 'score')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'body', 'ts')$$);
-- fewer than two classes, no rows, too many classes
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'body', 'one_label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_empty', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_nulls', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_many', 'body', 'label')$$);
SELECT * FROM err_contexts;
-- every row goes to validation
CREATE TABLE err_three AS SELECT * FROM err_docs WHERE i <= 3;
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_three', 'body', 'label',
    '{"validation_fraction": 0.9, "epochs": 1, "hidden_size": 8, "embedding_dim": 4}')$$);
SELECT * FROM err_contexts;

-- invalid options (22023)
SELECT pg_temp.err(format('SELECT train_classifier(%L, %L, %L, %L, %L)',
                          'err_x', 'err_docs', 'body', 'label', o))
  FROM (VALUES ('{"epochz": 1}'), ('{"Epochs": 1}'), ('{"epochs": "5"}'),
               ('{"epochs": null}'), ('{"epochs": true}'), ('{"epochs": 1.5}'),
               ('{"epochs": 0}'), ('{"epochs": 10001}'), ('{"batch_size": 0}'),
               ('{"max_len": 0}'), ('{"vocab_size": 1}'), ('{"embedding_dim": 0}'),
               ('{"hidden_size": 100000}'), ('{"learning_rate": 0}'),
               ('{"learning_rate": -1}'), ('{"learning_rate": "fast"}'),
               ('{"validation_fraction": 1}'), ('{"validation_fraction": -0.1}'),
               ('{"seed": -1}'), ('{"threads": 0}'), ('{"threads": 65}'),
               ('{"patience": -1}'), ('{"clip_norm": -1}'),
               ('{"dropout": -0.1}'), ('{"dropout": 0.96}'), ('{"dropout": "half"}'),
               ('{"ema_momentum": -0.1}'), ('{"ema_momentum": 1}'),
               ('{"tokenizer": "bpe"}'), ('{"tokenizer": 1}'),
               ('{"lowercase": 1}'), ('{"oov_token": "yes"}'),
               ('{"threshold": 0}'), ('{"threshold": 1}'), ('{"beta1": 1}'),
               ('{"epsilon": 0}'), ('{"class_weight": 5}'),
               ('{"class_weight": "even"}'), ('{"class_weight": [1, 2]}'),
               ('{"class_weight": {"pos": 1}}'),
               ('{"class_weight": {"pos": 1, "neg": 1, "other": 1}}'),
               ('{"class_weight": {"pos": 1, "neg": -1}}'),
               ('[1, 2]'), ('"epochs"'), ('5'), ('null')) v(o);
SELECT * FROM err_contexts;
-- an unknown option's hint lists the valid ones
SELECT train_classifier('err_x', 'err_docs', 'body', 'label', '{"epochz": 1}');
SELECT train_classifier('err_x', 'err_docs', 'body', 'label', '[]');
-- options that are not JSON at all fail in the jsonb cast (22P02)
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'body', 'label', 'epochs=5')$$);

-- model names: '@', empty, too long
SELECT pg_temp.err($$SELECT train_classifier('err@1', 'err_docs', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err@', 'err_docs', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('', 'err_docs', 'body', 'label')$$);
SELECT pg_temp.err(format('SELECT train_classifier(%L, %L, %L, %L)',
                          repeat('m', 201), 'err_docs', 'body', 'label'));

-- NULL arguments: training refuses them (22004), the rest is strict
SELECT pg_temp.err($$SELECT train_classifier(NULL, 'err_docs', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', NULL, 'body', 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', NULL, 'label')$$);
SELECT pg_temp.err($$SELECT train_classifier('err_x', 'err_docs', 'body', NULL)$$);
SELECT drop_model(NULL) IS NULL AS drop_null,
       drop_model_version(NULL, 1) IS NULL AS drop_version_null_name,
       drop_model_version('err_ok', NULL) IS NULL AS drop_version_null_version,
       predict(NULL::text, NULL) IS NULL AS predict_null;

-- failed trainings left no version, no log row and no memory context
SELECT count(*) - :models_before AS new_models FROM textclf.models;
SELECT count(*) AS stray_log_rows FROM textclf.training_log WHERE model_name LIKE 'err\_x%';
SELECT * FROM err_contexts;
-- also after an error outside a subtransaction, and after a success
SELECT train_classifier('err_x', 'err_docs', 'body', 'one_label');
SELECT * FROM err_contexts;
SELECT version FROM train_classifier('err_ok', 'err_docs', 'body', 'label', :'opts');
SELECT * FROM err_contexts;
SELECT count(*) - :models_before AS new_models FROM textclf.models;
-- a failure after a successful training in the same transaction rolls
-- both back
BEGIN;
SELECT version FROM train_classifier('err_ok', 'err_docs', 'body', 'label', :'opts');
SELECT train_classifier('err_ok', 'err_docs', 'body', 'one_label');
ROLLBACK;
SELECT max(version) FROM textclf.versions WHERE model_name = 'err_ok';

-- the registry refuses changes to a version, even from a superuser
UPDATE textclf.models SET labels = '{a,b}' WHERE model_name = 'err_ok';

-- a model value of another format version: set the 4-byte little-endian
-- version at offset 8 to 2 and recompute the checksum (tc_hash64 of the
-- bytes before it: FNV-1a 64 then splitmix64's finaliser, written here in
-- SQL: numeric holds the 64-bit state, bit(64) does the xors and shifts)
CREATE FUNCTION pg_temp.u64_bits(x numeric) RETURNS bit(64)
LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE WHEN x >= 9223372036854775808 THEN x - 18446744073709551616
                 ELSE x END)::bigint::bit(64)
$$;
CREATE FUNCTION pg_temp.bits_u64(x bit(64)) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x::bigint < 0 THEN x::bigint::numeric + 18446744073709551616
                ELSE x::bigint::numeric END
$$;
-- tc_hash64 of the bytes [lo, hi) of b
CREATE FUNCTION pg_temp.tc_hash64(b bytea, lo int, hi int) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    two64 CONSTANT numeric := 18446744073709551616;
    h numeric := 14695981039346656037;      -- FNV offset basis
    low int;
    x bit(64);
BEGIN
    FOR i IN lo .. hi - 1 LOOP
        low := mod(h, 256)::int;
        h := mod((h - low + (low # get_byte(b, i))) * 1099511628211, two64);
    END LOOP;
    x := pg_temp.u64_bits(h);
    x := x # (x >> 30);
    x := pg_temp.u64_bits(mod(pg_temp.bits_u64(x) * 13787848793156543929, two64));
    x := x # (x >> 27);
    x := pg_temp.u64_bits(mod(pg_temp.bits_u64(x) * 10723151780598845931, two64));
    x := x # (x >> 31);
    RETURN pg_temp.bits_u64(x);
END
$$;
-- the little-endian u64 at offset off of b
CREATE FUNCTION pg_temp.le64(b bytea, off int) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT sum(get_byte(b, off + k)::numeric * 256::numeric ^ k)
      FROM generate_series(0, 7) k
$$;
-- b with the little-endian u64 v written at offset off
CREATE FUNCTION pg_temp.set_le64(b bytea, off int, v numeric) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    FOR k IN 0 .. 7 LOOP
        b := set_byte(b, off + k, mod(trunc(v / 256::numeric ^ k), 256)::int);
    END LOOP;
    RETURN b;
END
$$;
-- b with its checksum recomputed
CREATE FUNCTION pg_temp.reseal(b bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_temp.set_le64(b, length(b) - 8, pg_temp.tc_hash64(b, 0, length(b) - 8))
$$;
CREATE TEMP TABLE err_blob AS
SELECT model::bytea AS b FROM textclf.models WHERE model_name = 'err_ok' AND version = 1;
-- the SQL hash agrees with the stored content id and checksum
SELECT pg_temp.tc_hash64(b, 24, length(b) - 8) = pg_temp.le64(b, 16) AS content_id_ok,
       lpad(to_hex(pg_temp.u64_bits(pg_temp.tc_hash64(b, 24, length(b) - 8))::bigint), 16, '0')
         = classifier_content_id(b::classifier) AS content_id_hex_ok,
       pg_temp.tc_hash64(b, 0, length(b) - 8) = pg_temp.le64(b, length(b) - 8) AS checksum_ok,
       pg_temp.reseal(b) = b AS reseal_is_identity
  FROM err_blob;
-- format version 2, correctly sealed: 0A000 from the bytea cast and the
-- text input alike
UPDATE err_blob SET b = pg_temp.reseal(set_byte(b, 8, 2));
SELECT get_byte(b, 8) AS version_byte FROM err_blob;
SELECT pg_temp.err('SELECT b::classifier FROM err_blob');
SELECT pg_temp.err($$SELECT encode(b, 'base64')::classifier FROM err_blob$$);
SELECT b::classifier FROM err_blob;
-- version 1 again, sealed: a valid model once more
UPDATE err_blob SET b = pg_temp.reseal(set_byte(b, 8, 1));
SELECT pg_temp.err('SELECT b::classifier FROM err_blob');
-- non-zero flags (sealed) and a wrong content id (sealed): 22P03
SELECT pg_temp.err('SELECT pg_temp.reseal(set_byte(b, 12, 1))::classifier FROM err_blob');
SELECT pg_temp.err('SELECT pg_temp.reseal(set_byte(b, 16, get_byte(b, 16) # 1))::classifier FROM err_blob');
-- zero classes (sealed, content id recomputed): 22P03
SELECT pg_temp.err($$SELECT pg_temp.reseal(pg_temp.set_le64(set_byte(b, 40, 0), 16,
    pg_temp.tc_hash64(set_byte(b, 40, 0), 24, length(b) - 8)))::classifier FROM err_blob$$);

-- clean up
SELECT drop_model('err_ok');
SELECT count(*) - (:models_before - 1) AS left_over FROM textclf.models;
DROP VIEW err_contexts;
DROP TABLE err_docs, err_empty, err_nulls, err_many, err_three;
DROP SEQUENCE err_seq;
