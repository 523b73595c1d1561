--
-- train_small: train_classifier() on tiny inline data sets: text, boolean
-- and integer labels, three classes, varchar and char(n) texts, NULLs,
-- version numbering, the stored options, metrics and training log, awkward
-- identifiers, and a view as the source.
--
-- Losses and accuracies depend on the BLAS kernel in their last digits, so
-- they are only compared with thresholds.
--
SET extra_float_digits = 0;
SET textclf.progress = off;
SET textclf.threads = 1;
\set opts '{"epochs": 5, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200, "max_len": 20, "seed": 1, "learning_rate": 0.05, "deploy": "always"}'

-- two classes, told apart by two words each, plus noise words
CREATE TABLE ts_docs AS
SELECT i,
       (ARRAY['alpha', 'beta', 'gamma', 'delta'])[1 + i % 4] || ' ' ||
       CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END || ' ' ||
       (ARRAY['red', 'green', 'blue'])[1 + (i * 7) % 3] AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label,
       i % 2 = 0 AS flag,
       CASE WHEN i % 2 = 0 THEN 10 ELSE 2 END AS code
  FROM generate_series(1, 200) i;

-- the result row: its columns and types
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a
 WHERE a.attrelid = 'textclf.training_result'::regclass AND a.attnum > 0
 ORDER BY a.attnum;

-- text labels, in text order
SELECT model_name, version, labels, train_rows, validation_rows, epochs,
       train_loss < 0.5 AS train_loss_low, train_accuracy > 0.9 AS train_acc_high,
       validation_loss < 0.5 AS val_loss_low, validation_accuracy > 0.9 AS val_acc_high,
       seconds >= 0 AS seconds_ok
  FROM train_classifier('ts_text', 'ts_docs', 'body', 'label', :'opts');
SELECT predict('ts_text', 'good nice') AS pos, predict('ts_text', 'bad awful') AS neg;
SELECT avg((predict('ts_text', body) = label)::int) > 0.9 AS accurate FROM ts_docs;

-- retraining numbers the versions 1, 2, 3; the newest is deployed
SELECT version FROM train_classifier('ts_text', 'ts_docs', 'body', 'label',
       '{"deploy": "always", "epochs": 3, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200,
         "max_len": 20, "seed": 2, "learning_rate": 0.05, "batch_size": 16}');
SELECT version FROM train_classifier('ts_text', 'ts_docs', 'body', 'label',
       '{"deploy": "always", "epochs": 2, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200,
         "max_len": 20, "seed": 3, "learning_rate": 0.05, "validation_fraction": 0}');
SELECT model_name, version, owner = current_user AS owner_is_me, source_relation,
       text_column, label_column, labels, deployed
  FROM textclf.versions WHERE model_name = 'ts_text' ORDER BY version;

-- the options are stored resolved, defaults included
SELECT options FROM textclf.versions WHERE model_name = 'ts_text' AND version = 1;
SELECT version, options -> 'epochs' AS epochs, options -> 'seed' AS seed,
       options -> 'batch_size' AS batch_size,
       options -> 'validation_fraction' AS validation_fraction
  FROM textclf.versions WHERE model_name = 'ts_text' ORDER BY version;

-- metrics: counts exactly, losses by threshold
SELECT version, metrics -> 'train_rows' AS train_rows,
       metrics -> 'validation_rows' AS validation_rows,
       metrics -> 'skipped_rows' AS skipped_rows,
       metrics -> 'epochs_run' AS epochs_run,
       (metrics ->> 'best_epoch')::int BETWEEN 1 AND (metrics ->> 'epochs_run')::int
         AS best_epoch_ok,
       (metrics ->> 'train_accuracy')::float8 > 0.9 AS train_acc_high,
       jsonb_typeof(metrics -> 'validation_loss') AS validation_loss_type,
       (metrics ->> 'seconds')::float8 >= 0 AS seconds_ok
  FROM textclf.versions WHERE model_name = 'ts_text' ORDER BY version;
SELECT DISTINCT jsonb_object_keys(metrics) AS metric
  FROM textclf.versions WHERE model_name = 'ts_text' ORDER BY 1;

-- one training_log row per epoch; without validation its columns are NULL
SELECT version, epoch, loss > 0 AS loss_positive,
       accuracy BETWEEN 0 AND 1 AS accuracy_ok,
       validation_loss IS NULL AS no_val_loss,
       validation_accuracy IS NULL AS no_val_accuracy,
       seconds >= 0 AS seconds_ok
  FROM textclf.training_log WHERE model_name = 'ts_text' ORDER BY version, epoch;
-- with this learning rate the loss falls during training
SELECT l1.version, l5.loss < l1.loss AS loss_fell
  FROM textclf.training_log l1
  JOIN textclf.training_log l5 USING (model_name, version)
 WHERE l1.model_name = 'ts_text' AND l1.epoch = 1
   AND l5.epoch = (SELECT max(epoch) FROM textclf.training_log x
                    WHERE x.model_name = 'ts_text' AND x.version = l1.version)
 ORDER BY 1;
-- the result row of a run without validation
SELECT train_rows, validation_rows, validation_loss IS NULL AS no_val_loss,
       validation_accuracy IS NULL AS no_val_accuracy
  FROM train_classifier('ts_text', 'ts_docs', 'body', 'label',
       '{"deploy": "always", "epochs": 1, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200,
         "max_len": 20, "seed": 1, "validation_fraction": 0}');

-- boolean labels: false before true
SELECT model_name, version, labels, train_rows + validation_rows AS rows
  FROM train_classifier('ts_bool', 'ts_docs', 'body', 'flag', :'opts');
SELECT predict('ts_bool', 'good nice') AS t, predict('ts_bool', 'bad awful') AS f;

-- integer labels: in integer order, 2 before 10
SELECT model_name, version, labels
  FROM train_classifier('ts_int', 'ts_docs', 'body', 'code', :'opts');
SELECT predict('ts_int', 'good nice') AS ten, predict('ts_int', 'bad awful') AS two;
-- smallint and bigint work too, negative numbers first
CREATE TABLE ts_ints AS
SELECT body, (CASE WHEN label = 'pos' THEN -5 ELSE 3 END)::smallint AS s,
       (CASE WHEN label = 'pos' THEN 10000000000 ELSE 9 END)::bigint AS b
  FROM ts_docs;
SELECT labels FROM train_classifier('ts_int2', 'ts_ints', 'body', 's', :'opts');
SELECT labels FROM train_classifier('ts_int8', 'ts_ints', 'body', 'b', :'opts');

-- three classes: softmax over three outputs
CREATE TABLE ts_three AS
SELECT i,
       (ARRAY['one', 'two', 'three', 'four', 'five'])[1 + i % 5] || ' ' ||
       (ARRAY['goal match team', 'vote election senate', 'code software chip'])[1 + i % 3]
         || ' ' || (ARRAY['today', 'news'])[1 + i % 2] AS body,
       (ARRAY['sports', 'politics', 'tech'])[1 + i % 3] AS topic
  FROM generate_series(1, 300) i;
SELECT model_name, version, labels, train_rows, validation_rows,
       train_accuracy > 0.9 AS train_acc_high
  FROM train_classifier('ts_three', 'ts_three', 'body', 'topic', :'opts');
SELECT m.model IS NOT NULL AS stored, classifier_info(m.model) -> 'classes' AS classes,
       classifier_info(m.model) -> 'parameters' AS parameters
  FROM textclf.models m WHERE m.model_name = 'ts_three';
-- parameters: dense 8x3 plus bias on top of the same embedding and LSTM
SELECT 200 * 4 + 4 * 8 * (4 + 8) + 4 * 8 + 8 * 3 + 3 AS expected_parameters;
SELECT predict('ts_three', 'goal team') AS sports,
       predict('ts_three', 'election vote') AS politics,
       predict('ts_three', 'software chip') AS tech;
SELECT avg((predict('ts_three', body) = topic)::int) > 0.9 AS accurate FROM ts_three;

-- varchar and char(n) text columns (char's padding is not a token)
CREATE TABLE ts_chars AS
SELECT body::varchar(60) AS v, body::char(60) AS c, label::varchar(10) AS l,
       label::char(3) AS lc
  FROM ts_docs;
SELECT model_name, labels, train_rows
  FROM train_classifier('ts_varchar', 'ts_chars', 'v', 'l', :'opts');
SELECT model_name, labels, train_rows
  FROM train_classifier('ts_char', 'ts_chars', 'c', 'lc', :'opts');
SELECT predict('ts_varchar', 'good nice') AS pos, predict('ts_char', 'bad awful') AS neg;
-- a domain over text is a text type too
CREATE DOMAIN ts_text_domain AS text CHECK (VALUE <> '');
CREATE TABLE ts_domain AS SELECT body::ts_text_domain AS d, label FROM ts_docs;
SELECT model_name, labels
  FROM train_classifier('ts_domain', 'ts_domain', 'd', 'label', :'opts');

-- rows with a NULL text or label are skipped, with a NOTICE
CREATE TABLE ts_nulls AS
SELECT CASE WHEN i % 20 = 1 THEN NULL ELSE body END AS body,
       CASE WHEN i % 25 = 2 THEN NULL ELSE label END AS label
  FROM ts_docs;
SELECT count(*) FILTER (WHERE body IS NULL OR label IS NULL) AS null_rows,
       count(*) AS all_rows
  FROM ts_nulls;
SELECT model_name, labels, train_rows, validation_rows
  FROM train_classifier('ts_nulls', 'ts_nulls', 'body', 'label', :'opts');
SELECT metrics -> 'skipped_rows' AS skipped_rows
  FROM textclf.versions WHERE model_name = 'ts_nulls';
-- an empty text is a text, not a NULL: trained on, not skipped
CREATE TABLE ts_empty AS
SELECT CASE WHEN i % 10 = 0 THEN '' ELSE body END AS body, label
  FROM ts_docs;
SELECT train_rows + validation_rows AS rows
  FROM train_classifier('ts_empty', 'ts_empty', 'body', 'label', :'opts');

-- awkward identifiers: quotes, semicolons, mixed case, spaces
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Weird ""Tab;le"" DROP" (
    "Body; DROP TABLE ts_docs; --" text,
    "La""bel" text,
    "CamelCase" text
);
INSERT INTO "Odd Schema"."Weird ""Tab;le"" DROP"
SELECT body, label, upper(body) FROM ts_docs;
SELECT model_name, version, labels, train_rows
  FROM train_classifier('Weird "model"; name', '"Odd Schema"."Weird ""Tab;le"" DROP"',
                        'Body; DROP TABLE ts_docs; --', 'La"bel', :'opts');
SELECT model_name, version, labels, train_rows
  FROM train_classifier('Weird "model"; name', '"Odd Schema"."Weird ""Tab;le"" DROP"',
                        'CamelCase', 'La"bel', :'opts');
SELECT model_name, version, source_relation, text_column, label_column
  FROM textclf.versions WHERE model_name = 'Weird "model"; name' ORDER BY version;
SELECT count(*) AS ts_docs_still_there FROM ts_docs;
-- upper-case training text is lower-cased, so both versions agree
SELECT predict('Weird "model"; name@1', 'GOOD NICE') AS v1,
       predict('Weird "model"; name', 'good nice') AS v2;

-- a view (and a materialized view) as the source
CREATE VIEW ts_view AS
SELECT 'x ' || body AS t, upper(label) AS l FROM ts_docs WHERE i <= 100;
SELECT model_name, labels, train_rows + validation_rows AS rows
  FROM train_classifier('ts_view', 'ts_view', 't', 'l', :'opts');
SELECT source_relation FROM textclf.versions WHERE model_name = 'ts_view';
CREATE MATERIALIZED VIEW ts_matview AS SELECT body, flag FROM ts_docs WHERE i > 100;
SELECT model_name, labels, train_rows + validation_rows AS rows
  FROM train_classifier('ts_matview', 'ts_matview', 'body', 'flag', :'opts');

-- the same seed and data give the same model
SELECT version FROM train_classifier('ts_seed', 'ts_docs', 'body', 'label', :'opts');
SELECT version FROM train_classifier('ts_seed', 'ts_docs', 'body', 'label', :'opts');
SELECT count(DISTINCT content_id) AS distinct_models
  FROM textclf.versions WHERE model_name = 'ts_seed';
SELECT a.content_id = b.content_id AS same_as_ts_text_v1
  FROM textclf.versions a, textclf.versions b
 WHERE a.model_name = 'ts_seed' AND a.version = 1
   AND b.model_name = 'ts_text' AND b.version = 1;

-- training inside a transaction that rolls back leaves nothing
BEGIN;
SELECT version FROM train_classifier('ts_rollback', 'ts_docs', 'body', 'label', :'opts');
SELECT count(*) FROM textclf.versions WHERE model_name = 'ts_rollback';
ROLLBACK;
SELECT count(*) FROM textclf.versions WHERE model_name = 'ts_rollback';
SELECT count(*) FROM textclf.training_log WHERE model_name = 'ts_rollback';

SELECT model_name, deployed_version, latest_version, versions, labels
  FROM list_models() WHERE model_name LIKE 'ts\_%' OR model_name LIKE 'Weird%';

-- clean up
SELECT model_name, drop_model(model_name)
  FROM (SELECT DISTINCT model_name FROM textclf.versions
         WHERE model_name LIKE 'ts\_%' OR model_name LIKE 'Weird%') s
 ORDER BY 1;
SELECT count(*) AS left_over FROM textclf.training_log
 WHERE model_name LIKE 'ts\_%' OR model_name LIKE 'Weird%';
SELECT count(*) AS left_over FROM textclf.deployments
 WHERE model_name LIKE 'ts\_%' OR model_name LIKE 'Weird%';
DROP SCHEMA "Odd Schema" CASCADE;
DROP MATERIALIZED VIEW ts_matview;
DROP VIEW ts_view;
DROP TABLE ts_docs, ts_ints, ts_three, ts_chars, ts_domain, ts_nulls, ts_empty;
DROP DOMAIN ts_text_domain;
