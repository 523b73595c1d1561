--
-- privileges: training needs SELECT on the source (table or both columns)
-- and makes the caller the owner of the model; the registry is written only
-- by the extension's functions; textclf.models (the weights) is not
-- readable by ordinary roles while textclf.versions is; only the owner (or
-- a member of the owner's role, or a superuser) may drop a model.
--
SET extra_float_digits = 0;
SET textclf.progress = off;
\set VERBOSITY default
\set SHOW_CONTEXT never
\set opts '{"epochs": 5, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200, "max_len": 20, "seed": 1, "learning_rate": 0.05, "deploy": "always"}'

\getenv abs_srcdir PG_ABS_SRCDIR
\set err_sql :abs_srcdir '/sql/include/err.sql'
\i :err_sql

CREATE ROLE regress_textclf_alice;
CREATE ROLE regress_textclf_bob;
CREATE ROLE regress_textclf_team;
GRANT regress_textclf_team TO regress_textclf_bob;

CREATE TABLE priv_docs AS
SELECT i,
       (ARRAY['alpha', 'beta', 'gamma', 'delta'])[1 + i % 4] || ' ' ||
       CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label,
       i AS secret
  FROM generate_series(1, 200) i;

-- without SELECT: 42501, and nothing is stored
SET ROLE regress_textclf_alice;
SELECT pg_temp.err($$SELECT train_classifier('priv_alice', 'priv_docs', 'body', 'label')$$);
SELECT count(*) FROM textclf.versions WHERE model_name = 'priv_alice';
RESET ROLE;

-- SELECT on one of the two columns is not enough, on both it is
GRANT SELECT (body, secret) ON priv_docs TO regress_textclf_alice;
SET ROLE regress_textclf_alice;
SELECT pg_temp.err($$SELECT train_classifier('priv_alice', 'priv_docs', 'body', 'label')$$);
RESET ROLE;
GRANT SELECT (label) ON priv_docs TO regress_textclf_alice;
SET ROLE regress_textclf_alice;
SELECT model_name, version, labels
  FROM train_classifier('priv_alice', 'priv_docs', 'body', 'label', :'opts');
RESET ROLE;
REVOKE SELECT (body, label, secret) ON priv_docs FROM regress_textclf_alice;

-- with SELECT on the table: trains and owns the model
GRANT SELECT ON priv_docs TO regress_textclf_alice;
SET ROLE regress_textclf_alice;
SELECT model_name, version, labels
  FROM train_classifier('priv_alice', 'priv_docs', 'body', 'label', :'opts');
SELECT current_user, predict('priv_alice', 'good nice') AS pos,
       predict('priv_alice@1', 'bad awful') AS neg;
-- the registry's descriptive parts are readable
SELECT model_name, version, owner, source_relation, labels, deployed
  FROM textclf.versions WHERE model_name = 'priv_alice' ORDER BY version;
SELECT model_name, version, deployed_by, reason
  FROM textclf.deployments WHERE model_name = 'priv_alice' ORDER BY id;
SELECT count(*) AS log_rows FROM textclf.training_log WHERE model_name = 'priv_alice';
SELECT model_name, deployed_version, latest_version, owner
  FROM list_models() WHERE model_name LIKE 'priv%';
-- the weights are not
SELECT pg_temp.err('SELECT model FROM textclf.models');
SELECT pg_temp.err('SELECT count(*) FROM textclf.models');
-- and nothing in the registry is writable
SELECT pg_temp.err($$INSERT INTO textclf.models (model_name, version, owner, options,
    labels, content_id, model) SELECT 'priv_fake', 1, 'x', '{}', '{a,b}', 0,
    NULL::classifier$$);
SELECT pg_temp.err($$UPDATE textclf.models SET owner = 'regress_textclf_bob'$$);
SELECT pg_temp.err('DELETE FROM textclf.models');
SELECT pg_temp.err('TRUNCATE textclf.models');
SELECT pg_temp.err($$INSERT INTO textclf.deployments (model_name, version, deployed_by)
    VALUES ('priv_alice', 1, 'x')$$);
SELECT pg_temp.err('DELETE FROM textclf.deployments');
SELECT pg_temp.err('UPDATE textclf.training_log SET loss = 0');
SELECT pg_temp.err('DELETE FROM textclf.training_log');
SELECT pg_temp.err($$CREATE TABLE textclf.mine (x int)$$);
RESET ROLE;

-- another role may predict once the owner grants it (more in security.sql),
-- but not drop the model or one of its versions
GRANT SELECT ON priv_docs TO regress_textclf_bob;
SET ROLE regress_textclf_bob;
SELECT pg_temp.err($$SELECT predict('priv_alice', 'good nice')$$);
SET ROLE regress_textclf_alice;
SELECT grant_model('priv_alice', 'regress_textclf_bob');
SET ROLE regress_textclf_bob;
SELECT predict('priv_alice', 'good nice') AS bob_predicts;
SELECT pg_temp.err($$SELECT drop_model('priv_alice')$$);
SELECT pg_temp.err($$SELECT drop_model_version('priv_alice', 1)$$);
-- nor add a version to it (which would be deployed under her name)
SELECT pg_temp.err($$SELECT train_classifier('priv_alice', 'priv_docs', 'body', 'label')$$);
-- a model of his own is fine
SELECT model_name, version
  FROM train_classifier('priv_bob', 'priv_docs', 'body', 'label', :'opts');
RESET ROLE;
SELECT model_name, version, owner, deployed FROM textclf.versions
 WHERE model_name LIKE 'priv%' ORDER BY model_name, version;
SELECT predict('priv_alice', 'good nice') AS still_alices;

-- a model trained under a group role: members of that role may drop it
SET ROLE regress_textclf_team;
SELECT pg_temp.err($$SELECT train_classifier('priv_group', 'priv_docs', 'body', 'label')$$);
RESET ROLE;
GRANT SELECT ON priv_docs TO regress_textclf_team;
SET ROLE regress_textclf_team;
SELECT model_name, version
  FROM train_classifier('priv_group', 'priv_docs', 'body', 'label', :'opts');
SET ROLE regress_textclf_alice;
SELECT pg_temp.err($$SELECT train_classifier('priv_group', 'priv_docs', 'body', 'label')$$);
SELECT pg_temp.err($$SELECT drop_model('priv_group')$$);
SET ROLE regress_textclf_bob;
SELECT model_name, version
  FROM train_classifier('priv_group', 'priv_docs', 'body', 'label', :'opts');
SELECT drop_model_version('priv_group', 1) AS bob_drops_team_version;
RESET ROLE;
SELECT version, owner, deployed FROM textclf.versions WHERE model_name = 'priv_group';
SET ROLE regress_textclf_bob;
SELECT drop_model('priv_group') AS bob_drops_team_model;
RESET ROLE;

-- the owner drops her own versions, then the model
SET ROLE regress_textclf_alice;
SELECT drop_model_version('priv_alice', 1);
SELECT version, deployed FROM textclf.versions WHERE model_name = 'priv_alice';
SELECT drop_model('priv_alice');
RESET ROLE;
-- a superuser may drop anyone's model, and add a version to it
SELECT version FROM train_classifier('priv_bob', 'priv_docs', 'body', 'label', :'opts');
SELECT version, CASE WHEN owner = current_user THEN 'the superuser' ELSE owner END
         AS owner, deployed
  FROM textclf.versions WHERE model_name = 'priv_bob' ORDER BY version;
SELECT drop_model('priv_bob');
SELECT count(*) FROM textclf.versions WHERE model_name LIKE 'priv%';

-- clean up
DROP TABLE priv_docs;
DROP ROLE regress_textclf_alice;
DROP ROLE regress_textclf_bob;
DROP ROLE regress_textclf_team;
