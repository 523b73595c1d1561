--
-- security: who may use a model by name (grant_model / revoke_model, the
-- check in predict, predict_proba, tokenize and evaluate), what a grantee
-- still may not do (read the weights, export, drop, deploy, roll back,
-- retrain, grant), group and PUBLIC grants, superusers, grants dropped with
-- the model, and search_path tricks that must not redirect the extension's
-- internal statements (docs/security.md).
--
SET extra_float_digits = 0;
SET textclf.progress = off;
\set VERBOSITY default
\set SHOW_CONTEXT never
\set opts '{"epochs": 3, "hidden_size": 8, "embedding_dim": 4, "vocab_size": 200, "max_len": 20, "seed": 1, "learning_rate": 0.05, "deploy": "always"}'

\getenv abs_srcdir PG_ABS_SRCDIR
\set err_sql :abs_srcdir '/sql/include/err.sql'
\i :err_sql

CREATE ROLE regress_textclf_owner;
CREATE ROLE regress_textclf_user;			-- no grant
CREATE ROLE regress_textclf_readers;		-- a group role
CREATE ROLE regress_textclf_carol IN ROLE regress_textclf_readers;
CREATE ROLE regress_textclf_noinh NOINHERIT IN ROLE regress_textclf_readers;
CREATE ROLE regress_textclf_mallory;

CREATE TABLE sec_docs AS
SELECT i,
       (ARRAY['alpha', 'beta', 'gamma', 'delta'])[1 + i % 4] || ' ' ||
       CASE WHEN i % 2 = 0 THEN 'good nice' ELSE 'bad awful' END AS body,
       CASE WHEN i % 2 = 0 THEN 'pos' ELSE 'neg' END AS label
  FROM generate_series(1, 200) i;
GRANT SELECT ON sec_docs TO PUBLIC;

-- the owner trains two versions; v2 is deployed
SET ROLE regress_textclf_owner;
SELECT model_name, version
  FROM train_classifier('sec_m', 'sec_docs', 'body', 'label', :'opts');
SELECT model_name, version
  FROM train_classifier('sec_m', 'sec_docs', 'body', 'label', :'opts');
SELECT predict('sec_m', 'good nice') AS owner_predicts;
SELECT grantee, granted_by FROM textclf.model_grants WHERE model_name = 'sec_m';
RESET ROLE;

-- ---- without a grant: 42501 for every use by name ----
SET ROLE regress_textclf_user;
SELECT predict('sec_m', 'good nice');
SELECT pg_temp.err($$SELECT predict('sec_m', 'good nice')$$);
SELECT pg_temp.err($$SELECT predict('sec_m@1', 'good nice')$$);
SELECT pg_temp.err($$SELECT predict('sec_m', 'good nice', 0.5)$$);
SELECT pg_temp.err($$SELECT predict_proba('sec_m', 'good nice')$$);
SELECT pg_temp.err($$SELECT tokenize('sec_m', 'good nice')$$);
SELECT pg_temp.err($$SELECT evaluate('sec_m', 'sec_docs', 'body', 'label')$$);
-- a missing model is still reported as missing
SELECT pg_temp.err($$SELECT predict('sec_nothing', 'good nice')$$);
-- what describes a model stays readable; the weights do not
SELECT model_name, version, owner, labels, deployed
  FROM textclf.versions WHERE model_name = 'sec_m' ORDER BY version;
SELECT pg_temp.err('SELECT model FROM textclf.models');
-- nor may he grant himself access
SELECT pg_temp.err($$SELECT grant_model('sec_m', 'regress_textclf_user')$$);
SELECT pg_temp.err($$SELECT grant_model('sec_m', 'public')$$);
SELECT pg_temp.err($$INSERT INTO textclf.model_grants (model_name, grantee, granted_by)
    VALUES ('sec_m', 'regress_textclf_user', 'regress_textclf_owner')$$);
RESET ROLE;

-- ---- a grant to the role ----
SET ROLE regress_textclf_owner;
SELECT grant_model('sec_m', 'regress_textclf_user') AS granted;
SELECT grant_model('sec_m', 'regress_textclf_user') AS granted_again;
SELECT grant_model('sec_m', 'regress_textclf_user'::regrole) AS granted_as_regrole;
SELECT model_name, grantee, granted_by FROM textclf.model_grants
 WHERE model_name = 'sec_m' ORDER BY grantee::text;
RESET ROLE;
SET ROLE regress_textclf_user;
SELECT predict('sec_m', 'good nice') AS pos, predict('sec_m@1', 'bad awful') AS neg,
       array_length(predict_proba('sec_m', 'good nice'), 1) AS nprobs,
       predict('sec_m', 'good nice', 0.5) AS at_half,
       tokenize('sec_m', 'good nice') AS tokens;
SELECT jsonb_typeof(evaluate('sec_m', 'sec_docs', 'body', 'label') -> 'accuracy') AS accuracy;
-- in a parallel worker too
SET force_parallel_mode = on;
SELECT count(predict('sec_m', body)) AS parallel_rows FROM sec_docs;
RESET force_parallel_mode;
-- the grant allows scoring, nothing else: not the weights,
SELECT pg_temp.err('SELECT model FROM textclf.models');
SELECT pg_temp.err('SELECT count(*) FROM textclf.models');
SELECT pg_temp.err($$SELECT export_model('sec_m')$$);
SELECT pg_temp.err($$SELECT export_model('sec_m', 1)$$);
-- not the model's management,
SELECT pg_temp.err($$SELECT drop_model('sec_m')$$);
SELECT pg_temp.err($$SELECT drop_model_version('sec_m', 1)$$);
SELECT pg_temp.err($$SELECT deploy('sec_m', 1)$$);
SELECT pg_temp.err($$SELECT rollback('sec_m')$$);
SELECT pg_temp.err($$SELECT train_classifier('sec_m', 'sec_docs', 'body', 'label')$$);
-- not its grants,
SELECT pg_temp.err($$SELECT grant_model('sec_m', 'regress_textclf_mallory')$$);
SELECT pg_temp.err($$SELECT revoke_model('sec_m', 'regress_textclf_user')$$);
-- and the registry stays read-only
SELECT pg_temp.err($$UPDATE textclf.model_grants SET grantee = 'regress_textclf_mallory'$$);
SELECT pg_temp.err('DELETE FROM textclf.model_grants');
SELECT pg_temp.err('TRUNCATE textclf.model_grants');
SELECT pg_temp.err($$INSERT INTO textclf.deployments (model_name, version, deployed_by)
    VALUES ('sec_m', 1, 'x')$$);
SELECT pg_temp.err($$UPDATE textclf.version_counters SET last_version = 0$$);
RESET ROLE;
SELECT version, deployed FROM textclf.versions WHERE model_name = 'sec_m' ORDER BY version;

-- ---- revoke: from the next query on ----
SET ROLE regress_textclf_owner;
SELECT revoke_model('sec_m', 'regress_textclf_user') AS revoked;
SELECT revoke_model('sec_m', 'regress_textclf_user') AS revoked_again;
RESET ROLE;
SET ROLE regress_textclf_user;
SELECT pg_temp.err($$SELECT predict('sec_m', 'good nice')$$);
RESET ROLE;

-- a cached resolution is not reused by another role in the same transaction
CREATE FUNCTION pg_temp.p(t text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN predict('sec_m', t);
END
$$;
BEGIN;
SET LOCAL ROLE regress_textclf_owner;
SELECT pg_temp.p('good nice') AS as_owner;
SET LOCAL ROLE regress_textclf_user;
SELECT pg_temp.err($$SELECT pg_temp.p('good nice')$$) AS as_user;
ROLLBACK;

-- ---- a grant to a group role: its members (who inherit) may predict ----
SET ROLE regress_textclf_owner;
SELECT grant_model('sec_m', 'regress_textclf_readers') AS granted;
RESET ROLE;
SET ROLE regress_textclf_carol;
SELECT predict('sec_m', 'good nice') AS member_predicts;
SELECT pg_temp.err($$SELECT export_model('sec_m')$$);
-- a grantee follows its role through a rename (grants are by OID)
RESET ROLE;
ALTER ROLE regress_textclf_readers RENAME TO regress_textclf_readers2;
SELECT grantee FROM textclf.model_grants WHERE model_name = 'sec_m';
SET ROLE regress_textclf_carol;
SELECT predict('sec_m', 'good nice') AS member_predicts_after_rename;
RESET ROLE;
ALTER ROLE regress_textclf_readers2 RENAME TO regress_textclf_readers;
-- a NOINHERIT member has the group's rights only after SET ROLE, as for tables
SET ROLE regress_textclf_noinh;
SELECT pg_temp.err($$SELECT predict('sec_m', 'good nice')$$);
SET ROLE regress_textclf_readers;
SELECT current_user, predict('sec_m', 'good nice') AS as_the_group;
-- a non-member still may not
SET ROLE regress_textclf_user;
SELECT pg_temp.err($$SELECT predict('sec_m', 'good nice')$$);
RESET ROLE;

-- ---- PUBLIC: every role ----
SET ROLE regress_textclf_owner;
SELECT grant_model('sec_m', 'PUBLIC') AS granted;
SELECT grantee FROM textclf.model_grants WHERE model_name = 'sec_m' ORDER BY grantee::text;
RESET ROLE;
SET ROLE regress_textclf_user;
SELECT predict('sec_m', 'good nice') AS public_predicts;
SELECT pg_temp.err($$SELECT export_model('sec_m')$$);
RESET ROLE;
SET ROLE regress_textclf_owner;
SELECT revoke_model('sec_m', 'public') AS revoked;
SELECT revoke_model('sec_m', 'regress_textclf_readers'::regrole) AS revoked;
SELECT count(*) AS grants_left FROM textclf.model_grants WHERE model_name = 'sec_m';
RESET ROLE;
SET ROLE regress_textclf_user;
SELECT pg_temp.err($$SELECT predict('sec_m', 'good nice')$$);
RESET ROLE;

-- ---- errors of grant_model and revoke_model ----
SELECT pg_temp.err($$SELECT grant_model('sec_nothing', 'regress_textclf_user')$$);
SELECT pg_temp.err($$SELECT grant_model('sec_m', 'regress_textclf_nobody')$$);
SELECT pg_temp.err($$SELECT grant_model('sec_m', '"PUBLIC"')$$);
SELECT grant_model('sec_m', NULL::text) IS NULL AS strict;

-- ---- a superuser may always use a model ----
SELECT current_setting('is_superuser') AS superuser,
       predict('sec_m', 'good nice') AS superuser_predicts;

-- ---- grants go with the model's last version ----
SET ROLE regress_textclf_owner;
SELECT version FROM train_classifier('sec_tmp', 'sec_docs', 'body', 'label', :'opts');
SELECT grant_model('sec_tmp', 'regress_textclf_carol'), grant_model('sec_tmp', 'public');
SELECT drop_model('sec_tmp');
SELECT count(*) AS grants_left FROM textclf.model_grants WHERE model_name = 'sec_tmp';
SELECT version FROM train_classifier('sec_tmp2', 'sec_docs', 'body', 'label', :'opts');
SELECT grant_model('sec_tmp2', 'regress_textclf_carol');
SELECT drop_model_version('sec_tmp2', 1);
SELECT count(*) AS grants_left FROM textclf.model_grants WHERE model_name = 'sec_tmp2';
RESET ROLE;
-- so the next model of that name, someone else's, starts with no grants
SET ROLE regress_textclf_mallory;
SELECT version FROM train_classifier('sec_tmp', 'sec_docs', 'body', 'label', :'opts');
SET ROLE regress_textclf_carol;
SELECT pg_temp.err($$SELECT predict('sec_tmp', 'good nice')$$);
RESET ROLE;
SELECT drop_model('sec_tmp');

-- ---- search_path tricks ----
-- Mallory owns a schema of look-alikes of what textclf's statements use:
-- operators =, >, + on text, integer, bigint and oid, functions now(),
-- hashtext(), pg_advisory_xact_lock(), max(), count(*), lpad(), to_hex(),
-- domains named name and jsonb, and tables named like the registry's (also
-- as temporary tables, which come first on any path).  Each look-alike
-- behaves like the original but logs who ran it; none may ever run.
CREATE SCHEMA regress_evil AUTHORIZATION regress_textclf_mallory;
SET ROLE regress_textclf_mallory;
CREATE TABLE regress_evil.fired (who name, what text);
GRANT INSERT, SELECT ON regress_evil.fired TO PUBLIC;
GRANT USAGE ON SCHEMA regress_evil TO PUBLIC;
CREATE FUNCTION regress_evil.trap(what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_evil.fired VALUES (current_user, what);
    RETURN true;
END
$$;
CREATE FUNCTION regress_evil.eq(a text, b text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_evil.trap('text = text') AND a OPERATOR(pg_catalog.=) b $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_evil.eq);
CREATE FUNCTION regress_evil.eq(a integer, b integer) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_evil.trap('int = int') AND a OPERATOR(pg_catalog.=) b $$;
CREATE OPERATOR regress_evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_evil.eq);
CREATE FUNCTION regress_evil.eq(a bigint, b bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_evil.trap('bigint = bigint') AND a OPERATOR(pg_catalog.=) b $$;
CREATE OPERATOR regress_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_evil.eq);
CREATE FUNCTION regress_evil.eq(a oid, b oid) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_evil.trap('oid = oid') AND a OPERATOR(pg_catalog.=) b $$;
CREATE OPERATOR regress_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = regress_evil.eq);
CREATE FUNCTION regress_evil.gt(a integer, b integer) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_evil.trap('int > int') AND a OPERATOR(pg_catalog.>) b $$;
CREATE OPERATOR regress_evil.> (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_evil.gt);
CREATE FUNCTION regress_evil.plus(a integer, b integer) RETURNS integer LANGUAGE sql
    AS $$ SELECT CASE WHEN regress_evil.trap('int + int') THEN a OPERATOR(pg_catalog.+) b END $$;
CREATE OPERATOR regress_evil.+ (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_evil.plus);
CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT CASE WHEN regress_evil.trap('now()') THEN pg_catalog.now() END $$;
CREATE FUNCTION regress_evil.hashtext(t text) RETURNS integer LANGUAGE sql
    AS $$ SELECT CASE WHEN regress_evil.trap('hashtext()') THEN pg_catalog.hashtext(t) END $$;
CREATE FUNCTION regress_evil.pg_advisory_xact_lock(a integer, b integer) RETURNS void
    LANGUAGE sql AS $$ SELECT regress_evil.trap('pg_advisory_xact_lock()'); $$;
CREATE FUNCTION regress_evil.lpad(t text, n integer, f text) RETURNS text LANGUAGE sql
    AS $$ SELECT CASE WHEN regress_evil.trap('lpad()') THEN pg_catalog.lpad(t, n, f) END $$;
CREATE FUNCTION regress_evil.to_hex(n bigint) RETURNS text LANGUAGE sql
    AS $$ SELECT CASE WHEN regress_evil.trap('to_hex()') THEN pg_catalog.to_hex(n) END $$;
CREATE FUNCTION regress_evil.bigger(a integer, b integer) RETURNS integer LANGUAGE sql
    AS $$ SELECT CASE WHEN regress_evil.trap('max()') THEN pg_catalog.int4larger(a, b) END $$;
CREATE AGGREGATE regress_evil.max(integer) (SFUNC = regress_evil.bigger, STYPE = integer);
CREATE FUNCTION regress_evil.inc(n bigint) RETURNS bigint LANGUAGE sql
    AS $$ SELECT CASE WHEN regress_evil.trap('count(*)') THEN n OPERATOR(pg_catalog.+) 1 END $$;
CREATE AGGREGATE regress_evil.count(*) (SFUNC = regress_evil.inc, STYPE = bigint, INITCOND = '0');
CREATE DOMAIN regress_evil.name AS pg_catalog.text CHECK (regress_evil.trap('domain name'));
CREATE DOMAIN regress_evil.jsonb AS pg_catalog.text CHECK (regress_evil.trap('domain jsonb'));
CREATE TABLE regress_evil.models (model_name text, version integer);
CREATE TABLE regress_evil.deployments (model_name text, version integer);
CREATE TABLE regress_evil.model_grants (model_name text, grantee oid);
CREATE TABLE regress_evil.version_counters (model_name text, last_version integer);
CREATE TABLE regress_evil.versions (model_name text, version integer);
-- the look-alikes are live: in a query of Mallory's own they do run
SET search_path = regress_evil, pg_catalog, public;
SELECT 'a'::text = 'a'::text AS own_query, now() IS NOT NULL AS own_now;
RESET search_path;
SELECT who, what FROM regress_evil.fired;
TRUNCATE regress_evil.fired;
RESET ROLE;

-- Mallory, with her schema (and temporary look-alikes) before pg_catalog,
-- trains, uses and manages a model of her own and tries the others'
SET ROLE regress_textclf_mallory;
CREATE TEMP TABLE models (model_name text, version integer);
CREATE TEMP TABLE deployments (model_name text, version integer);
SET search_path = regress_evil, pg_catalog, public;
SELECT model_name, version, labels
  FROM train_classifier('sec_evil', 'sec_docs', 'body', 'label', :'opts');
SELECT model_name, version
  FROM train_classifier('sec_evil', 'sec_docs', 'body', 'label', :'opts');
SELECT predict('sec_evil', 'good nice') AS pos, predict('sec_evil@1', 'bad awful') AS neg,
       predict_proba('sec_evil', 'good nice') IS NOT NULL AS proba,
       tokenize('sec_evil', 'good nice') AS tokens;
SELECT jsonb_typeof(evaluate('sec_evil', 'sec_docs', 'body', 'label') -> 'accuracy') AS accuracy;
SELECT deploy('sec_evil', 1) AS deployed, rollback('sec_evil') AS rolled_back_to;
SELECT grant_model('sec_evil', 'regress_textclf_carol') AS granted,
       revoke_model('sec_evil', 'regress_textclf_carol') AS revoked,
       grant_model('sec_evil', 'public') AS granted_public;
SELECT export_model('sec_evil') -> 'version' AS exported;
SELECT model_name, deployed_version, latest_version, versions
  FROM list_models() WHERE model_name LIKE 'sec%';
SELECT drop_model_version('sec_evil', 1) AS dropped;
SELECT pg_temp.err($$SELECT predict('sec_m', 'good nice')$$);
SELECT pg_temp.err($$SELECT drop_model('sec_m')$$);
SELECT pg_temp.err($$SELECT grant_model('sec_m', 'regress_textclf_mallory')$$);
RESET search_path;
RESET ROLE;
-- a superuser with the same path: the same results
SET search_path = regress_evil, pg_catalog, public;
SELECT predict('sec_evil', 'good nice') AS pos, predict('sec_m', 'bad awful') AS neg;
SELECT deploy('sec_m', 1) AS deployed, rollback('sec_m') AS rolled_back_to;
SELECT grant_model('sec_m', 'regress_textclf_user') AS granted,
       revoke_model('sec_m', 'regress_textclf_user') AS revoked;
SELECT drop_model('sec_evil') AS dropped;
RESET search_path;
-- nothing of Mallory's ran, as anyone
SELECT count(*) AS trap_calls FROM regress_evil.fired;
SELECT who, what FROM regress_evil.fired;
SELECT model_name, version, deployed FROM textclf.versions
 WHERE model_name LIKE 'sec%' ORDER BY model_name, version;
SELECT count(*) AS grants_left FROM textclf.model_grants WHERE model_name LIKE 'sec%';

-- clean up
SELECT drop_model('sec_m');
DROP TABLE pg_temp.models, pg_temp.deployments;
SET client_min_messages = warning;
DROP SCHEMA regress_evil CASCADE;
RESET client_min_messages;
DROP TABLE sec_docs;
DROP ROLE regress_textclf_owner;
DROP ROLE regress_textclf_user;
DROP ROLE regress_textclf_carol;
DROP ROLE regress_textclf_noinh;
DROP ROLE regress_textclf_readers;
DROP ROLE regress_textclf_mallory;
