--
-- predict: predict() and predict_proba() by model name (deployed version or
-- 'name@N') and by classifier value, tokenize(), deployment changes seen by
-- the next query, drop_model_version(), drop_model() and list_models().
--
-- Probabilities depend on the BLAS kernel in their last digits: they are
-- compared with each other, with thresholds or after coarse rounding.
--
SET extra_float_digits = 0;
SET textclf.progress = off;
\set opts '{"epochs": 5, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200, "max_len": 20, "seed": 1, "learning_rate": 0.05, "deploy": "always"}'

CREATE TABLE pr_docs AS
SELECT i,
       (ARRAY['alpha', 'beta', 'gamma', 'delta'])[1 + i % 4] || ' ' ||
       CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END || ' ' ||
       (ARRAY['red', 'green', 'blue'])[1 + (i * 7) % 3] AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label
  FROM generate_series(1, 200) i;
-- the same texts with the labels swapped, for a second version
CREATE TABLE pr_flipped AS
SELECT body, CASE WHEN label = 'pos' THEN 'neg' ELSE 'pos' END AS label FROM pr_docs;
CREATE TABLE pr_three AS
SELECT i,
       (ARRAY['one', 'two', 'three', 'four', 'five'])[1 + i % 5] || ' ' ||
       (ARRAY['goal match team', 'vote election senate', 'code software chip'])[1 + i % 3]
         || ' ' || (ARRAY['today', 'news'])[1 + i % 2] AS body,
       (ARRAY['sports', 'politics', 'tech'])[1 + i % 3] AS topic
  FROM generate_series(1, 300) i;

SELECT model_name, version, labels
  FROM train_classifier('pr', 'pr_docs', 'body', 'label', :'opts');
SELECT model_name, version, labels
  FROM train_classifier('pr3', 'pr_three', 'body', 'topic', :'opts');

-- by name
SELECT predict('pr', 'alpha good nice red') AS pos,
       predict('pr', 'beta bad awful blue') AS neg;
SELECT array_length(p, 1) AS n, p[1] < 0.1 AS neg_low, p[2] > 0.9 AS pos_high
  FROM predict_proba('pr', 'good nice') p;
-- probabilities sum to 1 and follow classifier_labels' order
SELECT round(sum(p)::numeric, 2) AS total
  FROM unnest(predict_proba('pr', 'gamma good nice green')) p;
SELECT round(sum(p)::numeric, 2) AS total
  FROM unnest(predict_proba('pr3', 'one vote election news')) p;
SELECT classifier_labels(model) FROM textclf.models WHERE model_name = 'pr3';
SELECT t.body,
       (SELECT classifier_labels(m.model) FROM textclf.models m
         WHERE m.model_name = 'pr3')[
         (SELECT o FROM unnest(predict_proba('pr3', t.body)) WITH ORDINALITY u(p, o)
           ORDER BY p DESC LIMIT 1)] AS most_probable,
       predict('pr3', t.body) AS predicted
  FROM (VALUES ('goal match team'), ('vote election senate'),
               ('code software chip')) t(body);
-- over the whole table: the argmax of predict_proba is what predict says
SELECT count(*) AS disagreements
  FROM pr_three t,
       LATERAL (SELECT o FROM unnest(predict_proba('pr3', t.body)) WITH ORDINALITY u(p, o)
                 ORDER BY p DESC LIMIT 1) a
 WHERE (ARRAY['politics', 'sports', 'tech'])[a.o] <> predict('pr3', t.body);
SELECT avg((predict('pr3', body) = topic)::int) > 0.9 AS accurate FROM pr_three;

-- by value: the same answers as by name
SELECT predict(m.model, 'alpha good nice red') AS pos,
       predict_proba(m.model, 'alpha good nice red') = predict_proba('pr', 'alpha good nice red')
         AS same_proba,
       predict_proba(m.model, '') = predict_proba('pr', '') AS same_proba_empty
  FROM textclf.models m WHERE m.model_name = 'pr' AND m.version = 1;
-- a value from a user table, over many rows
CREATE TEMP TABLE pr_saved AS
SELECT model FROM textclf.models WHERE model_name = 'pr' AND version = 1;
SELECT count(*) FILTER (WHERE predict(s.model, d.body) = predict('pr', d.body)) AS agree,
       count(*) AS total
  FROM pr_docs d, pr_saved s;

-- NULL in, NULL out
SELECT predict('pr', NULL) IS NULL AS a, predict(NULL::text, 'good') IS NULL AS b,
       predict_proba('pr', NULL) IS NULL AS c, predict_proba(NULL::text, 'x') IS NULL AS d,
       predict(NULL::classifier, 'good') IS NULL AS e,
       predict_proba(NULL::classifier, 'good') IS NULL AS f,
       tokenize('pr', NULL) IS NULL AS g, tokenize(NULL, 'good') IS NULL AS h;
SELECT (SELECT predict(model, NULL) FROM pr_saved) IS NULL AS value_null_text;

-- an empty text (or one of unknown words only) still gets an answer
SELECT predict('pr', '') IN ('neg', 'pos') AS has_label,
       array_length(predict_proba('pr', ''), 1) AS n,
       round((SELECT sum(p) FROM unnest(predict_proba('pr', '')) p)::numeric, 2) AS total,
       predict_proba('pr', '') = predict_proba('pr', 'zzz qqq') AS unknown_is_empty;

-- predict in WHERE, GROUP BY and ORDER BY
SELECT count(*) BETWEEN 90 AND 110 AS about_half
  FROM pr_docs WHERE predict('pr', body) = 'pos';
SELECT avg((predict('pr', body) = label)::int) > 0.9 AS accurate FROM pr_docs;
SELECT predict('pr3', body) AS topic, count(*) BETWEEN 90 AND 110 AS about_a_third
  FROM pr_three GROUP BY 1 ORDER BY 1;
SELECT body FROM (VALUES ('bad awful'), ('good nice')) t(body)
 ORDER BY (predict_proba('pr', body))[2] DESC;

-- in parallel workers (the functions are PARALLEL SAFE and read the
-- registry through SPI there too)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM pr_docs WHERE predict('pr', body) = label;
SELECT avg((predict('pr', body) = label)::int) > 0.9 AS accurate_in_parallel
  FROM pr_docs;
SET force_parallel_mode = regress;
SELECT predict('pr', 'good nice') AS pos, tokenize('pr', 'Good nice') AS tokens,
       round((SELECT sum(p) FROM unnest(predict_proba('pr', 'bad')) p)::numeric, 2) AS total;
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- tokenize: lower-cased, punctuation split off, only vocabulary words
SELECT tokenize('pr', 'Alpha, GOOD unknownword nice! red.');
SELECT tokenize('pr', '');
SELECT tokenize('pr', 'zzz qqq');
-- only the last max_len (20) tokens are kept
SELECT tokenize('pr', repeat('alpha beta gamma delta good nice bad awful red green blue ', 2));
SELECT array_length(tokenize('pr', repeat('good ', 50)), 1) AS kept;
-- with an OOV token, unknown words become [UNK]
SELECT version FROM train_classifier('pr_oov', 'pr_docs', 'body', 'label',
       '{"deploy": "always", "epochs": 1, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200,
         "max_len": 20, "seed": 1, "oov_token": true}');
SELECT tokenize('pr_oov', 'Alpha zzz nice');
-- a tokenizer keeping case
SELECT version FROM train_classifier('pr_case', 'pr_docs', 'body', 'label',
       '{"deploy": "always", "epochs": 1, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200,
         "max_len": 20, "seed": 1, "lowercase": false}');
SELECT tokenize('pr_case', 'Alpha alpha GOOD good');
-- character tokens
SELECT version FROM train_classifier('pr_char', 'pr_docs', 'body', 'label',
       '{"deploy": "always", "epochs": 1, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200,
         "max_len": 6, "seed": 1, "tokenizer": "char"}');
SELECT tokenize('pr_char', 'Good!');
SELECT tokenize('pr_char', 'awful red');

-- a new version is deployed and the next query uses it; 'name@N' pins one
PREPARE pr_pos AS SELECT predict('pr', 'alpha good nice red');
EXECUTE pr_pos;
SELECT version, labels
  FROM train_classifier('pr', 'pr_flipped', 'body', 'label', :'opts');
SELECT predict('pr', 'alpha good nice red') AS deployed_v2,
       predict('pr@1', 'alpha good nice red') AS pinned_v1,
       predict('pr@2', 'alpha good nice red') AS pinned_v2;
EXECUTE pr_pos;
SELECT predict_proba('pr', 'good nice') = predict_proba('pr@2', 'good nice') AS deployed_is_v2,
       predict_proba('pr', 'good nice') <> predict_proba('pr@1', 'good nice') AS differs_from_v1;
-- both versions in one query
SELECT body, predict('pr@1', body) AS v1, predict('pr@2', body) AS v2
  FROM (VALUES ('good nice'), ('bad awful')) t(body);
SELECT tokenize('pr@1', 'Good Nice') AS v1_tokens;
SELECT model_name, version, deployed FROM textclf.versions
 WHERE model_name = 'pr' ORDER BY version;

-- dropping a version that is not deployed leaves the deployment alone
SELECT version FROM train_classifier('pr', 'pr_flipped', 'body', 'label',
       '{"deploy": "always", "epochs": 5, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200,
         "max_len": 20, "seed": 3, "learning_rate": 0.05}');
SELECT predict('pr', 'alpha good nice red') AS deployed_v3;
SELECT drop_model_version('pr', 2);
SELECT model_name, version, deployed FROM textclf.versions
 WHERE model_name = 'pr' ORDER BY version;
SELECT predict('pr', 'alpha good nice red') AS still_v3;
SELECT predict('pr@2', 'good nice');
-- dropping the deployed version deploys the one deployed before it that
-- still exists (version 2 is gone, so version 1)
SELECT drop_model_version('pr', 3);
SELECT predict('pr', 'alpha good nice red') AS back_to_v1;
EXECUTE pr_pos;
SELECT model_name, version, deployed FROM textclf.versions
 WHERE model_name = 'pr' ORDER BY version;
SELECT model_name, version, reason FROM textclf.deployments
 WHERE model_name = 'pr' ORDER BY id;
-- a dropped version cannot be dropped again, nor an unknown one
SELECT drop_model_version('pr', 3);
SELECT drop_model_version('pr', 7);

SELECT model_name, deployed_version, latest_version, versions, labels,
       owner = current_user AS owner_is_me,
       created_at IS NOT NULL AS has_created_at,
       (metrics ->> 'train_rows')::int AS train_rows
  FROM list_models() WHERE model_name LIKE 'pr%';

-- drop_model drops every version; the name is then unknown
SELECT drop_model('pr');
SELECT predict('pr', 'good nice');
SELECT predict('pr@1', 'good nice');
SELECT count(*) FROM textclf.training_log WHERE model_name = 'pr';
SELECT count(*) FROM textclf.deployments WHERE model_name = 'pr';
-- the value saved before still works: it does not depend on the registry
SELECT predict(model, 'alpha good nice red') FROM pr_saved;
SELECT model_name, deployed_version, latest_version, versions, labels
  FROM list_models() WHERE model_name LIKE 'pr%';
-- version numbers are never reused: training 'pr' again after dropping it
-- gives the next number, so an old 'pr@N' never names another model
SELECT version FROM train_classifier('pr', 'pr_docs', 'body', 'label',
  '{"deploy": "always", "epochs": 1, "hidden_size": 4, "embedding_dim": 4, "vocab_size": 50, "max_len": 10, "seed": 1, "threads": 1}');
SELECT drop_model('pr');

-- clean up
SELECT drop_model('pr3'), drop_model('pr_oov'),
       drop_model('pr_case'), drop_model('pr_char');
SELECT count(*) FROM list_models() WHERE model_name LIKE 'pr%';
DEALLOCATE pr_pos;
DROP TABLE pr_docs, pr_flipped, pr_three;
