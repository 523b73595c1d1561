--
-- export: export_model() and import_model().  The document's keys, options
-- and tensor shapes; the import round trip (same bytes, same scores), a
-- hand-edited document served by predict; one malformed document per line;
-- and who may export and import.  The NumPy rebuild on real data is
-- test/export/check_export.py (run by test/sh/export_roundtrip.sh).
--
SET extra_float_digits = 0;
SET textclf.progress = off;
SET textclf.threads = 1;
\set opts '{"epochs": 3, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 50, "max_len": 20, "seed": 1, "learning_rate": 0.05}'

CREATE TABLE ex_docs AS
SELECT i,
       (ARRAY['alpha', 'beta', 'gamma', 'delta'])[1 + i % 4] || ' ' ||
       CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END || ' ' ||
       (ARRAY['red', 'green', 'blue'])[1 + (i * 7) % 3] AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label,
       (ARRAY['one', 'two', 'three'])[1 + i % 3] AS three
  FROM generate_series(1, 120) i;
SELECT version FROM train_classifier('ex_model', 'ex_docs', 'body', 'label', :'opts');
CREATE TABLE ex_doc AS SELECT export_model('ex_model') AS d;

-- the document: keys, header, options, labels
SELECT k FROM ex_doc, jsonb_object_keys(d) k ORDER BY k;
SELECT d -> 'format' AS format, d -> 'format_version' AS format_version,
       d -> 'model_name' AS model_name, d -> 'version' AS version,
       d -> 'labels' AS labels
  FROM ex_doc;
SELECT d -> 'options' AS options FROM ex_doc;
-- every tensor in Keras's shape: (V,E) (E,4H) (H,4H) (4H) (H,K) (K), K = 1
SELECT k AS tensor, jsonb_array_length(d -> 'weights' -> k) AS dim0,
       CASE jsonb_typeof(d -> 'weights' -> k -> 0)
            WHEN 'array' THEN jsonb_array_length(d -> 'weights' -> k -> 0) END AS dim1,
       (SELECT count(DISTINCT CASE jsonb_typeof(r)
                              WHEN 'array' THEN jsonb_array_length(r) ELSE 0 END)
          FROM jsonb_array_elements(d -> 'weights' -> k) r) AS row_lengths
  FROM ex_doc, jsonb_object_keys(d -> 'weights') k ORDER BY k;
-- every element a number
SELECT count(*) AS numbers,
       count(*) FILTER (WHERE jsonb_typeof(x) = 'number') AS all_numbers
  FROM ex_doc, jsonb_each(d -> 'weights') t(k, v),
       LATERAL jsonb_path_query(v, 'strict $.**') x
 WHERE jsonb_typeof(x) <> 'array';
-- the vocabulary: word -> id, ids 1, 2, ... below vocab_size; padding id 0 has no word
SELECT count(*) AS words, min(v::int) AS min_id, max(v::int) AS max_id,
       count(DISTINCT v) AS distinct_ids
  FROM ex_doc, jsonb_each_text(d -> 'vocabulary') AS e(w, v);
SELECT w FROM ex_doc, jsonb_each_text(d -> 'vocabulary') AS e(w, v) ORDER BY w;
-- the version argument, 'name@N', and the deployed version are the same here
SELECT export_model('ex_model', 1) = d AS by_version,
       export_model('ex_model@1') = d AS by_pin,
       export_model('ex_model', NULL) = d AS by_null
  FROM ex_doc;

-- the round trip: same bytes (content id), same probabilities on every row
SELECT import_model('ex_copy', d) AS version FROM ex_doc;
SELECT a.content_id = b.content_id AS same_bytes
  FROM textclf.versions a, textclf.versions b
 WHERE a.model_name = 'ex_model' AND b.model_name = 'ex_copy';
SELECT count(*) FILTER (WHERE predict_proba('ex_model', body)
                        IS DISTINCT FROM predict_proba('ex_copy', body)) AS proba_differ,
       count(*) FILTER (WHERE predict('ex_model', body) = predict('ex_copy', body)) AS same_label
  FROM ex_docs;
SELECT (export_model('ex_copy') - 'model_name' - 'version') =
       (d - 'model_name' - 'version') AS same_document,
       export_model('ex_copy') -> 'model_name' AS model_name
  FROM ex_doc;
-- the imported version: owned by the caller, deployed, no source, metrics say imported
SELECT version, owner = current_user AS owner_is_me, source_relation, text_column,
       label_column, labels, metrics, deployed, options = (SELECT d -> 'options' FROM ex_doc) AS options_kept
  FROM textclf.versions WHERE model_name = 'ex_copy';
SELECT model_name, version, reason, deployed_by = current_user AS by_me
  FROM textclf.deployments WHERE model_name = 'ex_copy' ORDER BY id;
-- importing again adds a version and deploys it; a hand-edited tensor is served
SELECT import_model('ex_copy', jsonb_set(d, '{weights,dense/bias,0}', '100')) AS version
  FROM ex_doc;
SELECT version, deployed FROM textclf.versions WHERE model_name = 'ex_copy' ORDER BY version;
SELECT predict('ex_copy', 'bad awful') AS forced_pos,
       (predict_proba('ex_copy', 'bad awful'))[2] > 0.999 AS sure,
       predict('ex_copy@1', 'bad awful') AS v1;
-- export follows the deployed version, also after a rollback
SELECT export_model('ex_copy') -> 'version' AS deployed_v2;
SELECT rollback('ex_copy') AS rolled_back_to;
SELECT export_model('ex_copy') -> 'version' AS deployed_v1,
       export_model('ex_copy', 2) -> 'weights' -> 'dense/bias' AS v2_bias;

-- three classes with the out-of-vocabulary token: softmax dense (H,3), ids from 2
SELECT version FROM train_classifier('ex_three', 'ex_docs', 'body', 'three',
       '{"epochs": 1, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 50,
         "max_len": 20, "seed": 1, "oov_token": true, "tokenizer": "word"}');
SELECT d -> 'labels' AS labels, d -> 'options' -> 'oov_token' AS oov,
       jsonb_array_length(d -> 'weights' -> 'dense/kernel' -> 0) AS k,
       jsonb_array_length(d -> 'weights' -> 'dense/bias') AS bias,
       (SELECT min(v::int) FROM jsonb_each_text(d -> 'vocabulary') e(w, v)) AS min_id
  FROM (SELECT export_model('ex_three') AS d) s;
SELECT import_model('ex_three_copy', export_model('ex_three')) AS version;
SELECT a.content_id = b.content_id AS same_bytes
  FROM textclf.versions a, textclf.versions b
 WHERE a.model_name = 'ex_three' AND b.model_name = 'ex_three_copy';
SELECT count(*) FILTER (WHERE predict_proba('ex_three', body || ' unseen')
                        IS DISTINCT FROM predict_proba('ex_three_copy', body || ' unseen')) AS proba_differ
  FROM ex_docs;

-- errors: nothing to export
SELECT export_model('ex_nothing');
SELECT export_model('ex_model', 7);
SELECT export_model('ex_model', 0);
SELECT export_model(NULL);

-- errors: one malformed document per line (22023 unless said otherwise)
SELECT import_model('ex_bad', NULL);
SELECT import_model(NULL, d) FROM ex_doc;
SELECT import_model('', d) FROM ex_doc;
SELECT import_model('ex@bad', d) FROM ex_doc;
SELECT import_model('ex_bad', '[1, 2]');
SELECT import_model('ex_bad', '"textclf-keras"');
SELECT import_model('ex_bad', d - 'vocabulary') FROM ex_doc;
SELECT import_model('ex_bad', d - 'weights') FROM ex_doc;
SELECT import_model('ex_bad', d || '{"extra": 1}') FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{format}', '"keras"')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{format_version}', '2')) FROM ex_doc;  -- 0A000
SELECT import_model('ex_bad', jsonb_set(d, '{labels}', '["neg", "neg"]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{labels}', '["neg"]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{labels}', '["neg", 1]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{labels}', '["neg", ""]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{labels}', '"neg,pos"')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options}', '[]')) FROM ex_doc;
SELECT import_model('ex_bad', d #- '{options,vocab_size}') FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,epochs}', '3')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,hidden_size}', '0')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,max_len}', '2.5')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,vocab_size}', '3000000')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,tokenizer}', '"byte"')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,lowercase}', '"yes"')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,threshold}', '1')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,hidden_size}', '9')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{vocabulary}', '["good"]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{vocabulary,good}', '0')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{vocabulary,good}', '50')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{vocabulary,good}', '1.5')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{vocabulary,good}', '"1"')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{vocabulary,good}', d -> 'vocabulary' -> 'bad')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{vocabulary,zebra}', '40')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{options,oov_token}', 'true')) FROM ex_doc;
SELECT import_model('ex_bad', d #- '{weights,lstm/bias}') FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,lstm/gates}', '[]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,lstm/kernel}', (d -> 'weights' -> 'lstm/kernel') - 0)) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,embedding,3}', '[1, 2, 3]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,embedding,3}', '7')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,lstm/bias,0}', '[1]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,lstm/bias}', '{"0": 1}')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,dense/kernel}', '[1, 2, 3, 4, 5, 6, 7, 8]')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,dense/bias,0}', '"NaN"')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,dense/bias,0}', 'null')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,dense/bias,0}', '1e39')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,lstm/recurrent_kernel,2,5}', '-1e400')) FROM ex_doc;
SELECT import_model('ex_bad', jsonb_set(d, '{weights,dense/bias}', '[0.5, 0.5]')) FROM ex_doc;
-- the SQLSTATEs of a few of them
CREATE FUNCTION ex_sqlstate(doc jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM import_model('ex_bad', doc);
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
SELECT ex_sqlstate(d - 'vocabulary') AS missing_key,
       ex_sqlstate(jsonb_set(d, '{weights,embedding,3}', '[1, 2, 3]')) AS wrong_shape,
       ex_sqlstate(jsonb_set(d, '{weights,dense/bias,0}', '"NaN"')) AS nan,
       ex_sqlstate(jsonb_set(d, '{weights,dense/bias,0}', '1e39')) AS inf,
       ex_sqlstate(jsonb_set(d, '{labels}', '["neg", "neg"]')) AS duplicate_labels,
       ex_sqlstate(jsonb_set(d, '{vocabulary,good}', '0')) AS bad_id,
       ex_sqlstate(jsonb_set(d, '{format_version}', '2')) AS newer_format
  FROM ex_doc;
-- nothing was stored by the failures, and no version number was used up
SELECT count(*) AS ex_bad_versions FROM textclf.versions WHERE model_name = 'ex_bad';
SELECT import_model('ex_bad', d) AS first_version FROM ex_doc;

-- privileges: the weights are the owner's; a non-owner can neither export
-- nor add versions (42501), even when granted the use of the model
CREATE ROLE regress_textclf_ex_alice;
CREATE ROLE regress_textclf_ex_bob;
GRANT SELECT ON ex_doc TO regress_textclf_ex_alice, regress_textclf_ex_bob;
SET ROLE regress_textclf_ex_alice;
SELECT import_model('ex_alice', d) AS version FROM ex_doc;
SELECT export_model('ex_alice') -> 'model_name' AS alice_exports;
SELECT export_model('ex_model');
SELECT grant_model('ex_alice', 'regress_textclf_ex_bob') AS granted;
RESET ROLE;
SET ROLE regress_textclf_ex_bob;
SELECT export_model('ex_alice');
SELECT export_model('ex_alice', 1);
SELECT import_model('ex_alice', d) FROM ex_doc;
SELECT predict('ex_alice', 'good nice') AS bob_predicts;
DO $$
BEGIN
	PERFORM export_model('ex_alice');
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'export by a non-owner: SQLSTATE %', SQLSTATE;
END
$$;
RESET ROLE;
-- a member of the owner's role may export; so may a superuser
GRANT regress_textclf_ex_alice TO regress_textclf_ex_bob;
SET ROLE regress_textclf_ex_bob;
SELECT export_model('ex_alice') -> 'version' AS member_exports;
RESET ROLE;
SELECT export_model('ex_alice') -> 'model_name' AS superuser_exports;
SELECT owner FROM textclf.versions WHERE model_name = 'ex_alice';

-- clean up
SELECT drop_model(m) FROM unnest(ARRAY['ex_model', 'ex_copy', 'ex_three',
       'ex_three_copy', 'ex_bad', 'ex_alice']) m;
DROP FUNCTION ex_sqlstate(jsonb);
DROP TABLE ex_doc, ex_docs;
DROP ROLE regress_textclf_ex_alice;
DROP ROLE regress_textclf_ex_bob;
