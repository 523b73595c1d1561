--
-- hostile: texts and labels that try to break the tokenizer, the trainer
-- and predict (issue 7, "Hostile and broken input"), and the memory limit
-- (textclf.max_model_memory) that refuses oversized models up front.
--
-- Every case is either accepted or a clean ERROR with a proper SQLSTATE;
-- pg_temp.err shows "SQLSTATE: message".  Timings are checked against
-- generous bounds (the 10 MB text), never printed.
--
SET extra_float_digits = 0;
SET textclf.progress = off;
\set VERBOSITY default
\set SHOW_CONTEXT never
\set opts '{"epochs": 1, "hidden_size": 4, "embedding_dim": 3, "vocab_size": 100, "max_len": 16, "seed": 7, "validation_fraction": 0}'

\getenv abs_srcdir PG_ABS_SRCDIR
\set err_sql :abs_srcdir '/sql/include/err.sql'
\i :err_sql

-- hostile texts, each with a label
CREATE TABLE hostile_texts (name text, body text, label text);
INSERT INTO hostile_texts VALUES
  ('empty', '', 'a'),
  ('spaces', E'   \t\n\r\f' || chr(11) || '  ', 'b'),
  ('unicode spaces', U&'\00A0\1680\2000\2001\2002\200A\2028\2029\202F\205F\3000', 'a'),
  ('controls', (SELECT string_agg(chr(c), '') FROM generate_series(1, 31) c) ||
               (SELECT string_agg(chr(c), '') FROM generate_series(127, 159) c), 'b'),
  ('hebrew', 'שָׁלוֹם עוֹלָם, מה שלומך?', 'a'),
  ('arabic', 'مرحبا بالعالم، كيف حالك؟', 'b'),
  ('rtl marks', U&'abc \202Eevil\202C \200Fx\200E \2067iso\2069', 'a'),
  ('combining', U&'e\0301\0301\0301 a\0308\0323 Z\0351\0352\0353\0354\0355\0356\0357\0358', 'b'),
  ('zalgo', 'x' || repeat(U&'\0300', 1000) || ' y', 'a'),
  ('emoji zwj', U&'\+01F469\200D\+01F469\200D\+01F467\200D\+01F466 \+01F3F3\FE0F\200D\+01F308 \+01F44D\+01F3FD', 'b'),
  ('bom and specials', U&'\FEFFbom \FFFD\FFFE\FFFF \+0FFFFF \+10FFFF', 'a'),
  ('cjk mixed', 'abc中文def한국어ひらがなカタカナ', 'b'),
  ('long word', repeat('x', 100000), 'a'),
  ('long words', repeat(repeat('é', 300) || ' ', 300), 'b');
-- every 241st code point of each of the 17 planes (U+0001 .. U+10FFFF, no
-- surrogates; noncharacters and unassigned ones included): 17 texts
INSERT INTO hostile_texts
SELECT 'plane ' || p,
       string_agg(chr(cp), '' ORDER BY cp),
       CASE WHEN p % 2 = 0 THEN 'a' ELSE 'b' END
  FROM (SELECT p, p * 65536 + k AS cp
          FROM generate_series(0, 16) p, generate_series(1, 65535, 241) k) s
 WHERE cp NOT BETWEEN 55296 AND 57343
 GROUP BY p;
SELECT count(*) AS texts, sum(length(body)) AS code_points FROM hostile_texts;

-- training on them works
SELECT version, labels, train_rows FROM train_classifier('hostile', 'hostile_texts', 'body', 'label', :'opts');
SELECT version, labels FROM train_classifier('hostile_char', 'hostile_texts', 'body', 'label',
       (:'opts'::jsonb || '{"tokenizer": "char", "lowercase": false, "oov_token": true}'));

-- predict and tokenize on every text: a label, probabilities summing to 1
SELECT name,
       predict('hostile', body) IN ('a', 'b') AS word_ok,
       predict('hostile_char', body) IN ('a', 'b') AS char_ok,
       abs(1 - (SELECT sum(p) FROM unnest(predict_proba('hostile', body)) p)) < 1e-5 AS proba_ok,
       cardinality(tokenize('hostile', body)) AS word_tokens,
       cardinality(tokenize('hostile_char', body)) AS char_tokens
  FROM hostile_texts ORDER BY name;

-- what the tokenizer makes of right-to-left text, combining marks and emoji
SELECT name, tokenize('hostile', body) FROM hostile_texts
 WHERE name IN ('hebrew', 'arabic', 'rtl marks', 'combining', 'emoji zwj', 'cjk mixed', 'empty', 'spaces', 'controls')
 ORDER BY name;
SELECT tokenize('hostile_char', U&'\+01F469\200D\+01F467 e\0301 שׁ');

-- NULL input: NULL out (the functions are strict)
SELECT predict('hostile', NULL) IS NULL AS null_predict,
       predict_proba('hostile', NULL) IS NULL AS null_proba,
       tokenize('hostile', NULL) IS NULL AS null_tokenize;

-- a 10 MB text: predict, predict_proba and tokenize in bounded time
CREATE TEMP TABLE big AS SELECT repeat('lorem ipsum dolor sit amet ', 388362) AS body;
SELECT octet_length(body) >= 10000000 AS ten_mb FROM big;
SELECT clock_timestamp() AS t0 \gset
SELECT predict('hostile', body) IN ('a', 'b') AS ok FROM big;
SELECT predict('hostile_char', body) IN ('a', 'b') AS ok FROM big;
SELECT cardinality(predict_proba('hostile', body)) AS k FROM big;
SELECT cardinality(tokenize('hostile', body)) AS tokens FROM big;
SELECT cardinality(tokenize('hostile_char', body)) AS tokens FROM big;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '30 seconds' AS fast_enough;
-- and training with 10 MB texts among the rows
INSERT INTO hostile_texts SELECT 'ten mb', body, 'a' FROM big;
INSERT INTO hostile_texts SELECT 'ten mb char', repeat('ab', 5000000), 'b';
SELECT clock_timestamp() AS t0 \gset
SELECT version, train_rows FROM train_classifier('hostile', 'hostile_texts', 'body', 'label', :'opts');
SELECT version, train_rows FROM train_classifier('hostile_char', 'hostile_texts', 'body', 'label',
       (:'opts'::jsonb || '{"tokenizer": "char"}'));
SELECT clock_timestamp() - :'t0'::timestamptz < interval '60 seconds' AS fast_enough;

-- labels: NULL rows are skipped (with a NOTICE), an empty label is an
-- error, and more than 1000 distinct labels is PROGRAM_LIMIT_EXCEEDED
CREATE TABLE hostile_labels (body text, label text);
INSERT INTO hostile_labels SELECT 'text ' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE (i % 2)::text END
  FROM generate_series(1, 30) i;
SELECT version, train_rows FROM train_classifier('hostile_nulls', 'hostile_labels', 'body', 'label', :'opts');
INSERT INTO hostile_labels VALUES ('empty label', '');
SELECT pg_temp.err($$SELECT train_classifier('hostile_empty', 'hostile_labels', 'body', 'label', '{"epochs": 1}')$$);
CREATE TABLE hostile_many (body text, label text);
INSERT INTO hostile_many SELECT 'w' || i, 'class' || i FROM generate_series(1, 5000) i;
SELECT pg_temp.err($$SELECT train_classifier('hostile_many', 'hostile_many', 'body', 'label', '{"epochs": 1}')$$);
DELETE FROM hostile_many WHERE substr(label, 6)::int > 1000;
SELECT version, cardinality(labels) AS classes
  FROM train_classifier('hostile_many', 'hostile_many', 'body', 'label', :'opts');
CREATE TABLE hostile_long_label AS SELECT 'x' AS body, repeat('l', 2000) AS label UNION ALL SELECT 'y', 'short';
SELECT pg_temp.err($$SELECT train_classifier('hostile_long', 'hostile_long_label', 'body', 'label', '{"epochs": 1}')$$);

-- the memory limit: refused before any row is read (reading this view fails)
CREATE FUNCTION pg_temp.boom() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a row was read';
END
$$;
CREATE VIEW hostile_boom AS SELECT pg_temp.boom() AS body, 'x'::text AS label;
SHOW textclf.max_model_memory;
SELECT pg_temp.err($$SELECT train_classifier('hostile_huge', 'hostile_boom', 'body', 'label',
       '{"vocab_size": 2000000, "embedding_dim": 1024}')$$);
SELECT pg_temp.err($$SELECT train_classifier('hostile_huge', 'hostile_boom', 'body', 'label',
       '{"max_len": 10000, "batch_size": 4096, "hidden_size": 2048}')$$);
-- the whole report, with its DETAIL and HINT (the SQLSTATE is checked above)
SELECT train_classifier('hostile_huge', 'hostile_boom', 'body', 'label',
       '{"vocab_size": 2000000, "embedding_dim": 1024}');
-- within the limit, the view is read (and fails)
SELECT pg_temp.err($$SELECT train_classifier('hostile_huge', 'hostile_boom', 'body', 'label', '{}')$$);
-- a small limit refuses the default model, the tiny one still trains
SET textclf.max_model_memory = '1MB';
SELECT pg_temp.err($$SELECT train_classifier('hostile_huge', 'hostile_texts', 'body', 'label', '{}')$$);
CREATE TABLE hostile_small AS SELECT name AS body, label FROM hostile_texts WHERE length(body) < 1000;
SELECT version FROM train_classifier('hostile_small', 'hostile_small', 'body', 'label', :'opts');
RESET textclf.max_model_memory;
SELECT pg_temp.err($$SET textclf.max_model_memory = '100kB'$$);
SELECT count(*) AS huge_versions FROM textclf.models WHERE model_name = 'hostile_huge';
-- import_model applies the limit too (to holding the model), before
-- reading the vocabulary and weights
SELECT pg_temp.err($$SELECT import_model('hostile_imp',
       jsonb_set(jsonb_set(export_model('hostile_small'), '{options,vocab_size}', '2000000'),
                 '{options,embedding_dim}', '1024'))$$);

SELECT drop_model(m) FROM unnest(ARRAY['hostile', 'hostile_char', 'hostile_nulls', 'hostile_many', 'hostile_small']) m;
