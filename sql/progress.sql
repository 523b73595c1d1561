--
-- progress: textclf.training_progress shows running trainings only when
-- textclf is in shared_preload_libraries.  This cluster does not preload
-- it: the view and its function return no rows, for everyone, and a
-- training still works.  test/t/030_progress.pl tests the preloaded case.
--
SET textclf.progress = off;
SELECT * FROM textclf.training_progress;
SELECT count(*) FROM textclf.training_progress_rows();
-- the columns of the view and their types
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a
 WHERE a.attrelid = 'textclf.training_progress'::regclass AND a.attnum > 0
 ORDER BY a.attnum;
-- everyone may read it
CREATE ROLE regress_progress_reader;
SET ROLE regress_progress_reader;
SELECT count(*) FROM textclf.training_progress;
RESET ROLE;
DROP ROLE regress_progress_reader;
-- textclf.max_trainings exists only when preloaded
SHOW textclf.max_trainings;
-- a training works without the shared memory, and leaves no row
CREATE TABLE progress_docs AS
SELECT CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label
  FROM generate_series(1, 100) i;
SELECT model_name, version FROM train_classifier('progress_m', 'progress_docs',
  'body', 'label', '{"epochs": 2, "hidden_size": 4, "embedding_dim": 4, "max_len": 8}');
SELECT count(*) FROM textclf.training_progress;
SELECT drop_model('progress_m');
DROP TABLE progress_docs;
