--
-- lifecycle: the deploy option ("if_better" deciding both ways, "always",
-- "never"), deploy(), rollback(), the deployment history, pinned versions,
-- and warm starts.
--
SET extra_float_digits = 0;
SET textclf.progress = off;
SET textclf.threads = 1;
\set good '{"epochs": 6, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 100, "max_len": 8, "seed": 1, "learning_rate": 0.05, "validation_fraction": 0.3}'
\set bad '{"epochs": 1, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 100, "max_len": 8, "seed": 1, "learning_rate": 0.00001, "validation_fraction": 0.3}'

CREATE TABLE lc_docs AS
SELECT i, (ARRAY['the', 'a', 'one'])[1 + i % 3] || ' ' ||
          CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label
  FROM generate_series(1, 200) i;

-- the first version is deployed: nothing was
SELECT version, deployed, deploy_reason FROM train_classifier('lc', 'lc_docs', 'body', 'label', :'bad');
-- a better one is deployed (if_better is the default) ...
SELECT version, deployed, deploy_reason LIKE 'validation accuracy % beats % of version 1 on % rows' AS beats
  FROM train_classifier('lc', 'lc_docs', 'body', 'label', :'good');
-- ... a worse one is not, and says why
SELECT version, deployed, deploy_reason LIKE 'not deployed: validation accuracy % does not beat % of version 2 on % rows' AS does_not_beat
  FROM train_classifier('lc', 'lc_docs', 'body', 'label', :'bad');
-- the metric may be the log loss
SELECT version, deployed, deploy_reason LIKE 'not deployed: validation log_loss % does not beat %' AS by_log_loss
  FROM train_classifier('lc', 'lc_docs', 'body', 'label',
                        jsonb_set(:'bad'::jsonb, '{deploy_metric}', '"log_loss"'));
-- "never" and "always"
SELECT version, deployed, deploy_reason
  FROM train_classifier('lc', 'lc_docs', 'body', 'label', jsonb_set(:'good'::jsonb, '{deploy}', '"never"'));
SELECT version, deployed, deploy_reason
  FROM train_classifier('lc', 'lc_docs', 'body', 'label', jsonb_set(:'bad'::jsonb, '{deploy}', '"always"'));
-- without validation rows there is nothing to compare: not deployed
SELECT version, deployed, deploy_reason
  FROM train_classifier('lc', 'lc_docs', 'body', 'label', jsonb_set(:'good'::jsonb, '{validation_fraction}', '0'));
SELECT options ->> 'deploy' AS deploy FROM textclf.versions WHERE model_name = 'lc' AND version = 7;

SELECT version, regexp_replace(reason, '[0-9][0-9.]*', 'N', 'g') AS reason, rolled_back
  FROM textclf.deployments WHERE model_name = 'lc' ORDER BY id;
SELECT version FROM textclf.versions WHERE model_name = 'lc' AND deployed;

-- rollback: back to the previously deployed version, then further back
SELECT rollback('lc');
SELECT version FROM textclf.versions WHERE model_name = 'lc' AND deployed;
SELECT rollback('lc');
SELECT rollback('lc');
SELECT version, regexp_replace(reason, '[0-9][0-9.]*', 'N', 'g') AS reason, rolled_back
  FROM textclf.deployments WHERE model_name = 'lc' ORDER BY id;

-- deploy() any version; it is transactional
SELECT deploy('lc', 2);
BEGIN;
SELECT deploy('lc', 5);
SELECT version FROM textclf.versions WHERE model_name = 'lc' AND deployed;
ROLLBACK;
SELECT version FROM textclf.versions WHERE model_name = 'lc' AND deployed;
SELECT deploy('lc', 99);
SELECT deploy('nope', 1);
SELECT rollback('nope');

-- a pinned version scores with that version, deployed or not
SELECT predict('lc@2', 'good nice') AS v2, predict('lc@4', 'good nice') IS NOT NULL AS v4_works;

-- warm start: from the deployed version's vocabulary and weights, same
-- classes; a tiny learning rate keeps what version 2 knew
SELECT version, labels, validation_accuracy > 0.9 AS still_good
  FROM train_classifier('lc', 'lc_docs', 'body', 'label',
                        '{"warm_start": true, "epochs": 1, "learning_rate": 0.00001, "validation_fraction": 0.3, "deploy": "never"}');
SELECT (options ->> 'warm_start')::boolean AS warm_start,
       (options ->> 'hidden_size')::int AS hidden_size,
       (options ->> 'vocab_size')::int AS vocab_size
  FROM textclf.versions WHERE model_name = 'lc' AND version = 8;
-- only the deployed version's rows' classes: a new label is an error
CREATE VIEW lc_more AS SELECT body, label FROM lc_docs
  UNION ALL SELECT 'something else', 'other';
SELECT version FROM train_classifier('lc', 'lc_more', 'body', 'label', '{"warm_start": true}');
-- the architecture comes from the warm-start model
SELECT version FROM train_classifier('lc', 'lc_docs', 'body', 'label', '{"warm_start": true, "max_len": 50}');
-- a model with nothing deployed cannot warm start
SELECT version FROM train_classifier('lc_new', 'lc_docs', 'body', 'label', '{"warm_start": true}');
SELECT version FROM train_classifier('lc', 'lc_docs', 'body', 'label', '{"deploy": "sometimes"}');

SELECT drop_model('lc');
DROP VIEW lc_more;
DROP TABLE lc_docs;
