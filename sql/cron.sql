--
-- cron: schedule_retraining() and unschedule_retraining() where pg_cron is
-- not installed (the regression cluster does not preload it): a clear error
-- with a hint; the checks of the arguments made before pg_cron is asked;
-- the job command textclf.retraining_command() builds (every value a
-- quoted literal, the relation schema-qualified); and the job's wrapper
-- textclf.run_scheduled_retraining(), which trains like train_classifier().
--
-- The job itself running under pg_cron, and the wrapper skipping while
-- another session holds the model's advisory lock (the lock is re-entrant
-- within one session), are tested by test/t/020_cron.pl.
--
SET textclf.progress = off;
SET textclf.threads = 1;
\set SHOW_CONTEXT never
\set opts '{"epochs": 2, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200, "max_len": 20, "seed": 1}'

CREATE TABLE cr_docs AS
SELECT i,
       CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END || ' ' ||
       (ARRAY['red', 'green', 'blue'])[1 + i % 3] AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label
  FROM generate_series(1, 100) i;

-- the functions and their properties
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel,
       p.prosecdef, p.prorettype::regtype, p.proconfig
  FROM pg_proc p
 WHERE p.proname IN ('schedule_retraining', 'unschedule_retraining',
                     'run_scheduled_retraining', 'retraining_command')
 ORDER BY 1::text;

-- no pg_cron: an error with a hint on how to install it
SELECT schedule_retraining('cr', '0 3 * * *', 'cr_docs', 'body', 'label', :'opts');
SELECT unschedule_retraining('cr');
-- SQLSTATE 0A000 (feature_not_supported)
\set VERBOSITY sqlstate
SELECT schedule_retraining('cr', '0 3 * * *', 'cr_docs', 'body', 'label');
\set VERBOSITY default

-- the arguments are checked first
SELECT schedule_retraining('', '* * * * *', 'cr_docs', 'body', 'label');
SELECT schedule_retraining('a@b', '* * * * *', 'cr_docs', 'body', 'label');
SELECT schedule_retraining(repeat('x', 56), '* * * * *', 'cr_docs', 'body', 'label');
SELECT schedule_retraining('cr', NULL, 'cr_docs', 'body', 'label');
SELECT schedule_retraining('cr', '* * * * *', 'cr_docs', 'nobody', 'label');
SELECT schedule_retraining('cr', '* * * * *', 'cr_docs', 'body', 'nolabel');
CREATE TEMP TABLE cr_temp AS SELECT * FROM cr_docs;
SELECT schedule_retraining('cr', '* * * * *', 'cr_temp', 'body', 'label');
SELECT unschedule_retraining(NULL);

-- the job command: quoted literals, a schema-qualified relation
CREATE SCHEMA "Cr Schema";
CREATE TABLE "Cr Schema"."It's" ("the text" text, "the label" text);
SELECT textclf.retraining_command('it''s', '"Cr Schema"."It''s"', 'the text',
                                  'the label', '{"seed": 1, "note": "a''b %s"}');
SELECT textclf.retraining_command('cr', 'cr_docs', 'body', 'label');
SELECT textclf.retraining_command('cr', 'cr_docs', 'body', 'label', NULL);

-- the wrapper trains (and the lock it takes is held by this session only
-- for the transaction: a second call trains again)
SELECT model_name, version, labels, train_rows + validation_rows AS rows
  FROM textclf.run_scheduled_retraining('cr', 'cr_docs', 'body', 'label', :'opts');
SELECT model_name, version
  FROM textclf.run_scheduled_retraining('cr', 'public.cr_docs'::regclass, 'body', 'label', :'opts');
SELECT count(*) AS advisory_locks_left FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- its options reach train_classifier, errors included
SELECT version FROM textclf.run_scheduled_retraining('cr', 'cr_docs', 'body', 'label', '{"epochs": "x"}');
SELECT version, options -> 'epochs' AS epochs FROM textclf.versions
 WHERE model_name = 'cr' ORDER BY version;
-- run as the command of a job
DO $$
BEGIN
	EXECUTE textclf.retraining_command('cr', 'cr_docs', 'body', 'label',
		'{"epochs": 1, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200, "max_len": 20, "seed": 3}');
END
$$;
SELECT version, options -> 'epochs' AS epochs FROM textclf.versions
 WHERE model_name = 'cr' ORDER BY version;

SELECT drop_model('cr');
DROP TABLE cr_docs, cr_temp;
DROP SCHEMA "Cr Schema" CASCADE;
