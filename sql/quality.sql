--
-- quality: evaluate(), multi-class training, early stopping, class
-- weights, the char tokenizer and lower-casing, the decision threshold,
-- determinism, dropout, the moving average of the weights, and the error
-- for a diverged (NaN) loss.
--
-- Figures that depend on the BLAS kernel in their last digits are compared
-- with thresholds only.
--
SET extra_float_digits = 0;
SET textclf.progress = off;
SET textclf.threads = 1;
\set opts '{"epochs": 8, "patience": 0, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 100, "max_len": 12, "seed": 3, "learning_rate": 0.05}'

-- three topics, one cue word each, plus shared noise
CREATE TABLE q_docs AS
SELECT i,
       (ARRAY['the', 'a', 'this', 'one'])[1 + i % 4] || ' ' ||
       (ARRAY['goal match team', 'vote law party', 'cpu code chip'])[1 + i % 3] || ' ' ||
       (ARRAY['today', 'now', 'again'])[1 + (i * 7) % 3] AS body,
       (ARRAY['sport', 'politics', 'tech'])[1 + i % 3] AS topic
  FROM generate_series(1, 300) i;

-- a three-class softmax model: labels in text order, probabilities per class
SELECT labels, epochs, validation_accuracy > 0.9 AS val_acc_high
  FROM train_classifier('q3', 'q_docs', 'body', 'topic', :'opts');
SELECT predict('q3', 'the goal match team now') AS sport,
       predict('q3', 'a vote law party today') AS politics,
       predict('q3', 'this cpu code chip again') AS tech;
SELECT array_length(predict_proba('q3', 'goal'), 1) AS classes,
       round(((SELECT sum(p) FROM unnest(predict_proba('q3', 'goal')) p))::numeric, 4) AS total;

-- evaluate(): every key, consistent counts, the confusion matrix in label order
SELECT e ->> 'rows' AS rows,
       (e ->> 'accuracy')::float8 > 0.9 AS accurate,
       (e ->> 'log_loss')::float8 < 0.5 AS low_log_loss,
       e -> 'labels' AS labels,
       jsonb_array_length(e -> 'confusion_matrix') AS cm_rows,
       (SELECT sum(x::int) FROM jsonb_array_elements(e -> 'confusion_matrix') r,
               jsonb_array_elements_text(r) x) AS cm_total,
       (e -> 'per_class' -> 'tech' ->> 'support') AS tech_support,
       (e -> 'macro_avg' ->> 'f1')::float8 > 0.9 AS macro_f1_high,
       (e -> 'weighted_avg' ->> 'support') AS weighted_support,
       e ? 'roc_auc' AS has_auc
  FROM evaluate('q3', 'q_docs', 'body', 'topic') e;
-- the same for the classifier value, and the validation metrics stored with the version
SELECT evaluate(m.model, 'q_docs', 'body', 'topic') = evaluate('q3', 'q_docs', 'body', 'topic') AS same
  FROM textclf.models m WHERE m.model_name = 'q3';
SELECT (metrics -> 'validation' ->> 'rows')::int = (metrics ->> 'validation_rows')::int AS val_rows_match,
       jsonb_array_length(metrics -> 'validation' -> 'confusion_matrix') AS cm_rows
  FROM textclf.versions WHERE model_name = 'q3';

-- rows with NULLs or unknown labels are skipped and counted
CREATE TABLE q_eval AS SELECT body, topic FROM q_docs WHERE i <= 30;
INSERT INTO q_eval VALUES (NULL, 'tech'), ('goal', NULL), ('goal team', 'weather');
SELECT e ->> 'rows' AS rows, e ->> 'skipped_rows' AS skipped,
       e ->> 'unknown_label_rows' AS unknown
  FROM evaluate('q3', 'q_eval', 'body', 'topic') e;

-- two classes: ROC AUC, and an imbalanced set with class weights
CREATE TABLE q_imb AS
SELECT i, CASE WHEN i % 10 = 0 THEN 'rare signal ' ELSE 'common words ' END ||
          (ARRAY['x', 'y', 'z'])[1 + i % 3] AS body,
       i % 10 = 0 AS rare
  FROM generate_series(1, 400) i;
SELECT labels, validation_accuracy > 0.9 AS val_acc_high
  FROM train_classifier('q_bal', 'q_imb', 'body', 'rare',
                        '{"epochs": 6, "patience": 0, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 50, "max_len": 8, "seed": 1, "learning_rate": 0.05, "class_weight": "balanced"}');
SELECT (e ->> 'roc_auc')::float8 > 0.95 AS auc_high,
       (e -> 'per_class' -> 'true' ->> 'recall')::float8 > 0.9 AS rare_recall_high
  FROM evaluate('q_bal', 'q_imb', 'body', 'rare') e;
SELECT options -> 'class_weight' AS class_weight FROM textclf.versions WHERE model_name = 'q_bal';
SELECT version FROM train_classifier('q_bal', 'q_imb', 'body', 'rare',
                        '{"epochs": 2, "hidden_size": 4, "embedding_dim": 4, "vocab_size": 50, "max_len": 8, "class_weight": {"false": 1, "true": 9}}');
SELECT options -> 'class_weight' AS class_weight FROM textclf.versions
 WHERE model_name = 'q_bal' AND version = 2;

-- the decision threshold: stored with the model, overridable per call
SELECT predict('q_bal', 'rare signal x', 0.000001) AS low_threshold,
       predict('q_bal', 'rare signal x', 0.999999) AS high_threshold;
SELECT version FROM train_classifier('q_thr', 'q_imb', 'body', 'rare',
                        '{"epochs": 2, "hidden_size": 4, "embedding_dim": 4, "vocab_size": 50, "max_len": 8, "threshold": 0.999999}');
SELECT predict('q_thr', 'common words x') AS common,
       (classifier_info(model) ->> 'threshold')::float8 > 0.99 AS stored
  FROM textclf.models WHERE model_name = 'q_thr';
SELECT predict('q3', 'goal', 0.5);

-- early stopping: noisy labels overfit, training stops and keeps the best epoch
CREATE TABLE q_noisy AS
SELECT i, 'w' || (i % 37) || ' w' || (i % 11) || ' w' || (i % 5) AS body,
       (hashtext(i::text) % 2 = 0) AS label
  FROM generate_series(1, 300) i;
SELECT epochs < 40 AS stopped_early
  FROM train_classifier('q_es', 'q_noisy', 'body', 'label',
                        '{"epochs": 40, "patience": 2, "hidden_size": 16, "embedding_dim": 8, "vocab_size": 60, "max_len": 5, "seed": 2, "learning_rate": 0.05, "validation_fraction": 0.3}') t;
-- the kept epoch is the one before the last two, and has the lowest validation loss
SELECT (v.metrics ->> 'best_epoch')::int = (v.metrics ->> 'epochs_run')::int - 2 AS kept_best,
       (SELECT min(l.validation_loss) FROM textclf.training_log l
         WHERE l.model_name = 'q_es') =
       (SELECT l.validation_loss FROM textclf.training_log l
         WHERE l.model_name = 'q_es' AND l.epoch = (v.metrics ->> 'best_epoch')::int) AS best_is_lowest,
       abs((v.metrics ->> 'validation_loss')::float8 -
           (SELECT l.validation_loss FROM textclf.training_log l
             WHERE l.model_name = 'q_es' AND l.epoch = (v.metrics ->> 'best_epoch')::int)) < 1e-6 AS metrics_of_best
  FROM textclf.versions v WHERE v.model_name = 'q_es';
SELECT count(*) = (SELECT epochs FROM textclf.versions v, LATERAL (SELECT (metrics ->> 'epochs_run')::int AS epochs) x
                    WHERE v.model_name = 'q_es') AS one_log_row_per_epoch
  FROM textclf.training_log WHERE model_name = 'q_es';

-- the char tokenizer, lowercase off: replayed by predict and tokenize
CREATE TABLE q_chars AS
SELECT i, CASE WHEN i % 2 = 0 THEN 'Xq' ELSE 'xQ' END || repeat('k', i % 4) AS body,
       CASE WHEN i % 2 = 0 THEN 'upper' ELSE 'lower' END AS label
  FROM generate_series(1, 200) i;
SELECT validation_accuracy > 0.9 AS val_acc_high
  FROM train_classifier('q_char', 'q_chars', 'body', 'label',
                        '{"epochs": 10, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 20, "max_len": 8, "seed": 1, "learning_rate": 0.05, "tokenizer": "char", "lowercase": false}');
SELECT tokenize('q_char', 'Xqk') AS tokens,
       predict('q_char', 'Xqkk') AS upper, predict('q_char', 'xQk') AS lower;
SELECT classifier_info(model) ->> 'tokenizer' AS tokenizer,
       classifier_info(model) ->> 'lowercase' AS lowercase
  FROM textclf.models WHERE model_name = 'q_char';

-- determinism: same data, options and seed at one thread give the same bytes
SELECT version FROM train_classifier('q_det', 'q_docs', 'body', 'topic', :'opts');
SELECT version FROM train_classifier('q_det', 'q_docs', 'body', 'topic', :'opts');
SELECT count(DISTINCT model::bytea) AS distinct_models, count(*) AS versions
  FROM textclf.models WHERE model_name = 'q_det';
SELECT version FROM train_classifier('q_det', 'q_docs', 'body', 'topic',
       jsonb_set(:'opts'::jsonb, '{seed}', '4'));
SELECT count(DISTINCT model::bytea) AS distinct_models FROM textclf.models WHERE model_name = 'q_det';

-- dropout on the LSTM's last state (0.5 by default, so q_det above used
-- it): training only, from its own random stream, so a seed still gives one
-- model; 0 turns it off and gives another model; the stored options record
-- it, and the model learns the cue words either way
\set dopts '{"epochs": 8, "patience": 0, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 100, "max_len": 12, "seed": 3, "learning_rate": 0.05, "dropout": 0}'
SELECT version FROM train_classifier('q_drop', 'q_docs', 'body', 'topic', :'dopts');
SELECT version FROM train_classifier('q_drop', 'q_docs', 'body', 'topic', :'dopts');
SELECT count(DISTINCT model::bytea) AS distinct_models, count(*) AS versions
  FROM textclf.models WHERE model_name = 'q_drop';
SELECT (SELECT model::bytea FROM textclf.models WHERE model_name = 'q_drop' AND version = 1) <>
       (SELECT model::bytea FROM textclf.models WHERE model_name = 'q_det' AND version = 1)
       AS differs_from_default_dropout;
SELECT model_name, options -> 'dropout' AS dropout FROM textclf.versions
 WHERE model_name IN ('q_drop', 'q_det') AND version = 1 ORDER BY model_name;
SELECT (evaluate('q_drop', 'q_docs', 'body', 'topic') ->> 'accuracy')::float8 > 0.9 AS learns_without,
       (evaluate('q_det', 'q_docs', 'body', 'topic') ->> 'accuracy')::float8 > 0.9 AS learns_with;

-- the moving average of the weights (ema_momentum, 0.99 by default, so
-- q_drop above used it): the average is validated and kept, while training
-- goes on from the live weights, so the training losses are those of a run
-- without it, epoch by epoch; 0 turns it off and gives another model
SELECT version FROM train_classifier('q_ema', 'q_docs', 'body', 'topic',
       jsonb_set(:'dopts'::jsonb, '{ema_momentum}', '0'));
SELECT count(*) AS epochs,
       count(*) FILTER (WHERE a.loss = b.loss) AS same_training_loss,
       count(*) FILTER (WHERE a.validation_loss <> b.validation_loss) AS other_validation_loss
  FROM textclf.training_log a JOIN textclf.training_log b USING (epoch)
 WHERE a.model_name = 'q_drop' AND a.version = 1
   AND b.model_name = 'q_ema' AND b.version = 1;
SELECT (SELECT model::bytea FROM textclf.models WHERE model_name = 'q_ema' AND version = 1) <>
       (SELECT model::bytea FROM textclf.models WHERE model_name = 'q_drop' AND version = 1)
       AS differs_from_default_ema;
SELECT model_name, options -> 'ema_momentum' AS ema_momentum FROM textclf.versions
 WHERE model_name IN ('q_drop', 'q_ema') AND version = 1 ORDER BY model_name;
SELECT (evaluate('q_ema', 'q_docs', 'body', 'topic') ->> 'accuracy')::float8 > 0.9 AS learns_without;

-- a NaN loss is a clean error with a hint, and stores nothing
SET textclf.test_nan_at_batch = 2;
SELECT version FROM train_classifier('q_nan', 'q_docs', 'body', 'topic', :'opts');
RESET textclf.test_nan_at_batch;
SELECT count(*) FROM textclf.models WHERE model_name = 'q_nan';

-- clean up
SELECT drop_model(m) FROM unnest(ARRAY['q3', 'q_bal', 'q_thr', 'q_es', 'q_char', 'q_det', 'q_drop', 'q_ema']) m;
DROP TABLE q_docs, q_eval, q_imb, q_noisy, q_chars;
