--
-- model_type: the classifier type's text form (base64), its binary form
-- (COPY ... FORMAT binary, the bytea casts), malformed input, and the
-- accessors classifier_labels, classifier_content_id and classifier_info.
--
-- Weights depend on floating-point details of the BLAS kernel, so nothing
-- here prints a weight, a probability or the base64 text of a trained model;
-- the first characters of that text include the content id, so errors about
-- values derived from a trained model go through a helper that hides the
-- literal.
--
SET extra_float_digits = 0;
SET textclf.progress = off;
\set VERBOSITY default

CREATE TABLE mt_docs AS
SELECT i,
       (ARRAY['alpha', 'beta', 'gamma', 'delta'])[1 + i % 4] || ' ' ||
       CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END || ' ' ||
       (ARRAY['red', 'green', 'blue'])[1 + (i * 7) % 3] AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label
  FROM generate_series(1, 200) i;

SELECT model_name, version, labels, train_rows, validation_rows, epochs
  FROM train_classifier('mt', 'mt_docs', 'body', 'label',
       '{"epochs": 5, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200,
         "max_len": 20, "seed": 1, "learning_rate": 0.05}');

CREATE TEMP TABLE mt_model AS
SELECT model FROM textclf.models WHERE model_name = 'mt' AND version = 1;

-- text form: out(in(x)) = x, and it is plain base64 (no line breaks)
SELECT model::text::classifier::text = model::text AS text_round_trip,
       model::text ~ '^[A-Za-z0-9+/]+={0,2}$' AS is_base64,
       length(model::text) % 4 AS len_mod_4
  FROM mt_model;
-- white space is ignored, around and inside: encode(bytea, 'base64')
-- breaks its lines
SELECT (E' \n' || model::text || E'\t ')::classifier::text = model::text AS trimmed,
       position(E'\n' in encode(model::bytea, 'base64')) > 0 AS encode_breaks_lines,
       encode(model::bytea, 'base64')::classifier::text = model::text AS from_encode
  FROM mt_model;

-- bytea casts: the serialized model, starting with the magic "TEXTCLF\0"
SELECT model::bytea::classifier::text = model::text AS bytea_round_trip,
       substr(model::bytea, 1, 8) AS magic,
       get_byte(model::bytea, 8) AS format_version,
       length(model::bytea) = (classifier_info(model) ->> 'bytes')::int AS length_matches,
       decode(model::text, 'base64') = model::bytea AS text_is_base64_of_bytes
  FROM mt_model;

-- binary COPY (classifier_send / classifier_recv) through a server file
SELECT '/tmp/textclf_regress_model_type_' || pg_backend_pid() || '.bin' AS copyfile,
       'rm -f /tmp/textclf_regress_model_type_' || pg_backend_pid() || '.bin' AS rmcmd
\gset
CREATE TEMP TABLE mt_out (id int, m classifier);
INSERT INTO mt_out SELECT 1, model FROM mt_model;
COPY mt_out TO :'copyfile' (FORMAT binary);
CREATE TEMP TABLE mt_in (id int, m classifier);
COPY mt_in FROM :'copyfile' (FORMAT binary);
SELECT i.id, i.m::text = o.m::text AS same_value,
       classifier_content_id(i.m) = classifier_content_id(o.m) AS same_id,
       predict_proba(i.m, 'alpha good nice red') = predict_proba(o.m, 'alpha good nice red')
         AS same_proba_pos,
       predict_proba(i.m, 'beta bad awful blue') = predict_proba(o.m, 'beta bad awful blue')
         AS same_proba_neg,
       predict(i.m, 'good nice') AS pos, predict(i.m, 'bad awful') AS neg
  FROM mt_in i JOIN mt_out o USING (id);
-- the same file layout with bytes that are not a model: receive rejects
-- them (a truncated header, then another format version)
CREATE TEMP TABLE mt_raw (id int, m bytea);
INSERT INTO mt_raw VALUES (2, '\x54455854434c46000100000000000000');
COPY mt_raw TO :'copyfile' (FORMAT binary);
COPY mt_in FROM :'copyfile' (FORMAT binary);
UPDATE mt_raw SET m = '\x54455854434c4600ffffffff';
COPY mt_raw TO :'copyfile' (FORMAT binary);
COPY mt_in FROM :'copyfile' (FORMAT binary);
SELECT count(*) FROM mt_in;
COPY (SELECT 1 WHERE false) TO PROGRAM :'rmcmd';
SELECT pg_stat_file(:'copyfile', true) IS NULL AS file_removed;

-- malformed text input: one clean ERROR each
SELECT ''::classifier;
SELECT '   '::classifier;
SELECT 'x'::classifier;
SELECT '!!!'::classifier;
SELECT 'QUJD QUJD'::classifier;
-- a long literal is quoted in part, never cutting a character in two
SELECT ('x' || repeat('é', 40))::classifier;
SELECT 'QUJD'::classifier;
SELECT 'VEVYVENMRgA='::classifier;
SELECT encode('garbage that is not a model', 'base64')::classifier;
-- the magic number, then format version 2
SELECT encode(decode('TEXTCLF', 'escape') || '\x000200000000000000'::bytea, 'base64')::classifier;
-- malformed bytea input
SELECT ''::bytea::classifier;
SELECT '\x00'::bytea::classifier;
SELECT 'garbage that is not a model'::bytea::classifier;

-- values derived from the trained model (the literal is hidden, see above)
CREATE FUNCTION pg_temp.bad_input(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    det text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || regexp_replace(msg, '"[^"]*"', '"..."') || ' | ' || det;
END
$$;
-- truncated text, at a base64 group boundary and inside the header
SELECT pg_temp.bad_input('SELECT substr(model::text, 1, 1000)::classifier FROM mt_model');
SELECT pg_temp.bad_input('SELECT substr(model::text, 1, 40)::classifier FROM mt_model');
SELECT pg_temp.bad_input('SELECT substr(model::text, 1, length(model::text) - 12)::classifier FROM mt_model');
-- truncated in the middle of a base64 group
SELECT pg_temp.bad_input('SELECT substr(model::text, 1, 1001)::classifier FROM mt_model');
-- one character changed: in the magic, in the weights, in the checksum
SELECT pg_temp.bad_input($q$SELECT overlay(model::text placing
    CASE WHEN substr(model::text, 1, 1) = 'A' THEN 'B' ELSE 'A' END from 1)::classifier
    FROM mt_model$q$);
SELECT pg_temp.bad_input($q$SELECT overlay(model::text placing
    CASE WHEN substr(model::text, 3000, 1) = 'A' THEN 'B' ELSE 'A' END from 3000)::classifier
    FROM mt_model$q$);
SELECT pg_temp.bad_input($q$SELECT overlay(model::text placing
    CASE WHEN substr(model::text, length(model::text) - 4, 1) = 'A' THEN 'B' ELSE 'A' END
    from length(model::text) - 4)::classifier FROM mt_model$q$);
-- a character that is not base64
SELECT pg_temp.bad_input($q$SELECT overlay(model::text placing '*' from 500)::classifier
    FROM mt_model$q$);
-- the same corruptions through the bytea cast
SELECT pg_temp.bad_input($q$SELECT substr(model::bytea, 1, 100)::classifier FROM mt_model$q$);
SELECT pg_temp.bad_input($q$SELECT set_byte(model::bytea, 2000,
    (get_byte(model::bytea, 2000) + 1) % 256)::classifier FROM mt_model$q$);
SELECT pg_temp.bad_input($q$SELECT (model::bytea || '\x00'::bytea)::classifier FROM mt_model$q$);
-- and the unchanged value passes the same helper
SELECT pg_temp.bad_input('SELECT model::text::classifier FROM mt_model');

-- accessors
SELECT classifier_labels(model) FROM mt_model;
SELECT classifier_info(model) - 'bytes' - 'parameters' AS info,
       (classifier_info(model) ->> 'parameters')::int AS parameters,
       (classifier_info(model) ->> 'bytes')::int = length(model::bytea) AS bytes_ok
  FROM mt_model;
-- parameters: embedding 200x4, LSTM 4x8 gates over 4+8 inputs plus bias,
-- dense 8x1 plus bias (two classes share one sigmoid output)
SELECT 200 * 4 + 4 * 8 * (4 + 8) + 4 * 8 + 8 * 1 + 1 AS expected_parameters;
SELECT classifier_content_id(t.model) ~ '^[0-9a-f]{16}$' AS hex16,
       classifier_content_id(t.model) = lpad(to_hex(m.content_id), 16, '0') AS matches_registry,
       classifier_content_id(t.model) = v.content_id AS matches_versions_view
  FROM mt_model t, textclf.models m
  JOIN textclf.versions v USING (model_name, version)
 WHERE m.model_name = 'mt' AND m.version = 1;
-- the content id depends on the weights, not on where the value came from
SELECT count(DISTINCT classifier_content_id(m)) FROM
  (SELECT model AS m FROM mt_model
   UNION ALL SELECT model::text::classifier FROM mt_model
   UNION ALL SELECT model::bytea::classifier FROM mt_model) s;
-- NULLs: every function is strict
SELECT classifier_labels(NULL) IS NULL AS labels_null,
       classifier_info(NULL) IS NULL AS info_null,
       classifier_content_id(NULL) IS NULL AS id_null,
       NULL::bytea::classifier IS NULL AS cast_null;

-- a classifier column in a user table, stored and compared by its text
CREATE TABLE mt_store (name text PRIMARY KEY, m classifier);
INSERT INTO mt_store SELECT 'copy', model FROM mt_model;
SELECT name, s.m::text = mt_model.model::text AS same,
       predict(s.m, 'alpha good nice') AS pos
  FROM mt_store s, mt_model;

DROP TABLE mt_store;
SELECT drop_model('mt');
DROP TABLE mt_docs;
