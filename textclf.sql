/*
 * textclf.sql
 *	  The single source of the install script; the Makefile copies it to
 *	  textclf--<default_version>.sql.  Upgrade scripts are separate files,
 *	  textclf--A--B.sql, frozen once released.
 *
 * Objects land in two places (see DESIGN.md):
 *	 - the user-facing type and functions go into the schema CREATE EXTENSION
 *	   targets (default public), so predict() works without search_path
 *	   changes; the control file therefore has no schema line and the
 *	   extension is not relocatable;
 *	 - the model registry lives in schema textclf, created here as a member
 *	   of the extension (CREATE EXTENSION fails if a schema of that name
 *	   already exists, rather than adopting objects someone else owns).
 * Every function states its volatility and parallel safety explicitly and
 * has a COMMENT ON.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION textclf" to load this file. \quit

CREATE SCHEMA textclf;
COMMENT ON SCHEMA textclf IS 'textclf model registry: model versions, deployments, training logs';

/* ---- informational functions ---- */

CREATE FUNCTION textclf_version() RETURNS text
	AS 'MODULE_PATHNAME', 'textclf_version'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION textclf_version() IS 'version of the loaded textclf library';

/* ---- the classifier type ---- */

CREATE TYPE classifier;

CREATE FUNCTION classifier_in(cstring) RETURNS classifier
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION classifier_out(classifier) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION classifier_recv(internal) RETURNS classifier
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION classifier_send(classifier) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE classifier (
	INPUT = classifier_in,
	OUTPUT = classifier_out,
	RECEIVE = classifier_recv,
	SEND = classifier_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = external
);
COMMENT ON TYPE classifier IS 'a trained text classifier: tokenizer settings, vocabulary, labels and weights';

CREATE FUNCTION classifier(bytea) RETURNS classifier
	AS 'MODULE_PATHNAME', 'classifier_from_bytea'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION classifier(bytea) IS 'checks a serialized model and makes it a classifier';
CREATE FUNCTION bytea(classifier) RETURNS bytea
	AS 'MODULE_PATHNAME', 'classifier_to_bytea'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION bytea(classifier) IS 'the serialized model (see docs/model-format.md)';
CREATE CAST (bytea AS classifier) WITH FUNCTION classifier(bytea);
CREATE CAST (classifier AS bytea) WITH FUNCTION bytea(classifier);

CREATE FUNCTION classifier_labels(classifier) RETURNS text[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION classifier_labels(classifier) IS 'the labels of a classifier, in class order';
CREATE FUNCTION classifier_content_id(classifier) RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION classifier_content_id(classifier) IS 'the content hash identifying a classifier, in hex';
CREATE FUNCTION classifier_info(classifier) RETURNS jsonb
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION classifier_info(classifier) IS 'dimensions and tokenizer settings of a classifier';

/* ---- the registry (schema textclf) ---- */

-- One row per model version, never changed once written.
CREATE TABLE textclf.models (
	model_name		text NOT NULL,
	version			integer NOT NULL CHECK (version > 0),
	owner			name NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	source_relation	text,
	text_column		name,
	label_column	name,
	options			jsonb NOT NULL,
	labels			text[] NOT NULL,
	metrics			jsonb,
	content_id		bigint NOT NULL,
	model			@extschema@.classifier NOT NULL,
	PRIMARY KEY (model_name, version)
);
COMMENT ON TABLE textclf.models IS 'model versions: immutable rows holding the trained classifier';

-- Which version of a model is deployed: the newest row per model_name.
-- Kept apart from the versions; the rows are the deployment history.
CREATE TABLE textclf.deployments (
	id				bigserial PRIMARY KEY,
	model_name		text NOT NULL,
	version			integer NOT NULL,
	deployed_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	deployed_by		name NOT NULL,
	reason			text,
	rolled_back		boolean NOT NULL DEFAULT false,
	FOREIGN KEY (model_name, version) REFERENCES textclf.models ON DELETE CASCADE
);
CREATE INDEX deployments_model_idx ON textclf.deployments (model_name, id);
COMMENT ON TABLE textclf.deployments IS 'deployment history; the newest row of a model not rolled back names its deployed version';

-- One row per training epoch.
CREATE TABLE textclf.training_log (
	model_name			text NOT NULL,
	version				integer NOT NULL,
	epoch				integer NOT NULL,
	loss				float8,
	accuracy			float8,
	validation_loss		float8,
	validation_accuracy	float8,
	seconds				float8,
	logged_at			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (model_name, version, epoch),
	FOREIGN KEY (model_name, version) REFERENCES textclf.models ON DELETE CASCADE
);
COMMENT ON TABLE textclf.training_log IS 'per-epoch metrics of each training run';

-- The last version number given to each model name, so that numbers are
-- never reused, even after versions (or the whole model) were dropped.
CREATE TABLE textclf.version_counters (
	model_name		text PRIMARY KEY,
	last_version	integer NOT NULL
);
COMMENT ON TABLE textclf.version_counters IS 'last version number used per model name';

-- Who besides the owner may use a model by name (predict, predict_proba,
-- tokenize, evaluate): grant_model() and revoke_model() write it; grantee
-- 0 (shown as '-') is PUBLIC.  Never the weights (docs/security.md).
CREATE TABLE textclf.model_grants (
	model_name		text NOT NULL,
	grantee			regrole NOT NULL,
	granted_by		name NOT NULL,
	granted_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (model_name, grantee)
);
COMMENT ON TABLE textclf.model_grants IS 'roles allowed to use a model by name besides its owner; grantee ''-'' (0) is PUBLIC';

-- Versions are immutable.
CREATE FUNCTION textclf.forbid_update() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	RAISE EXCEPTION 'model versions cannot be changed'
		USING ERRCODE = 'object_not_in_prerequisite_state',
			  HINT = 'Train a new version instead.';
END
$$;
CREATE TRIGGER models_immutable BEFORE UPDATE ON textclf.models
	FOR EACH ROW EXECUTE FUNCTION textclf.forbid_update();

SELECT pg_catalog.pg_extension_config_dump('textclf.models', '');
SELECT pg_catalog.pg_extension_config_dump('textclf.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('textclf.deployments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('textclf.training_log', '');
SELECT pg_catalog.pg_extension_config_dump('textclf.version_counters', '');
SELECT pg_catalog.pg_extension_config_dump('textclf.model_grants', '');

-- The registry is written by the extension's functions only; everyone may
-- read what describes a model, but not its weights (textclf.models.model).
REVOKE ALL ON textclf.models, textclf.deployments, textclf.training_log,
	textclf.version_counters, textclf.model_grants FROM PUBLIC;
GRANT USAGE ON SCHEMA textclf TO PUBLIC;

CREATE VIEW textclf.versions AS
	SELECT m.model_name, m.version, m.owner, m.created_at, m.source_relation,
		   m.text_column, m.label_column, m.options, m.labels, m.metrics,
		   pg_catalog.lpad(pg_catalog.to_hex(m.content_id), 16, '0') AS content_id,
		   (m.version OPERATOR(pg_catalog.=) d.version) AS deployed
	FROM textclf.models m
	LEFT JOIN LATERAL (
		SELECT dd.version FROM textclf.deployments dd
		WHERE dd.model_name OPERATOR(pg_catalog.=) m.model_name
		  AND NOT dd.rolled_back
		ORDER BY dd.id DESC LIMIT 1) d ON true;
COMMENT ON VIEW textclf.versions IS 'every model version, without its weights';
GRANT SELECT ON textclf.versions, textclf.deployments, textclf.training_log,
	textclf.model_grants TO PUBLIC;

/* ---- training ---- */

CREATE TYPE textclf.training_result AS (
	model_name			text,
	version				integer,
	labels				text[],
	train_rows			bigint,
	validation_rows		bigint,
	epochs				integer,
	train_loss			float8,
	train_accuracy		float8,
	validation_loss		float8,
	validation_accuracy	float8,
	seconds				float8,
	deployed			boolean,
	deploy_reason		text
);

CREATE FUNCTION train_classifier(model_name text, relation regclass,
								 text_column name, label_column name,
								 options jsonb DEFAULT '{}')
	RETURNS textclf.training_result
	AS 'MODULE_PATHNAME', 'train_classifier'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION train_classifier(text, regclass, name, name, jsonb) IS
	'trains a classifier on a table''s text and label columns and stores it as the next version';

/* ---- prediction ---- */

CREATE FUNCTION predict(model_name text, input text) RETURNS text
	AS 'MODULE_PATHNAME', 'predict_name'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION predict(text, text) IS
	'predicted label of input by the deployed version of a model (or ''name@N'' for version N)';

CREATE FUNCTION predict_proba(model_name text, input text) RETURNS float8[]
	AS 'MODULE_PATHNAME', 'predict_proba_name'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION predict_proba(text, text) IS
	'class probabilities of input, in the order of the model''s labels';

CREATE FUNCTION predict(model classifier, input text) RETURNS text
	AS 'MODULE_PATHNAME', 'predict_classifier'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION predict(classifier, text) IS 'predicted label of input by a classifier value';

CREATE FUNCTION predict_proba(model classifier, input text) RETURNS float8[]
	AS 'MODULE_PATHNAME', 'predict_proba_classifier'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION predict_proba(classifier, text) IS
	'class probabilities of input by a classifier value, in label order';

CREATE FUNCTION predict(model_name text, input text, threshold float8) RETURNS text
	AS 'MODULE_PATHNAME', 'predict_name_threshold'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION predict(text, text, float8) IS
	'predicted label of a two-class model, positive when its probability is at least threshold';

CREATE FUNCTION predict(model classifier, input text, threshold float8) RETURNS text
	AS 'MODULE_PATHNAME', 'predict_classifier_threshold'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION predict(classifier, text, float8) IS
	'predicted label of a two-class classifier value at the given decision threshold';

/* ---- evaluation ---- */

CREATE FUNCTION evaluate(model_name text, relation regclass, text_column name,
						 label_column name) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'evaluate_name'
	LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION evaluate(text, regclass, name, name) IS
	'accuracy, log loss, per-class precision/recall/F1, averages, confusion matrix and ROC AUC of a model on a relation';

CREATE FUNCTION evaluate(model classifier, relation regclass, text_column name,
						 label_column name) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'evaluate_classifier'
	LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION evaluate(classifier, regclass, name, name) IS
	'the metrics of evaluate() for a classifier value';

CREATE FUNCTION tokenize(model_name text, input text) RETURNS text[]
	AS 'MODULE_PATHNAME', 'tokenize_name'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tokenize(text, text) IS
	'the tokens of input that the model sees (in its vocabulary, last max_len kept)';

/* ---- export and import ---- */

CREATE FUNCTION export_model(model_name text, version integer DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'export_model'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION export_model(text, integer) IS
	'a model version (default: the deployed one) as JSON: options, labels, vocabulary and every tensor, named and laid out as Keras does (docs/export-format.md); owner only';

CREATE FUNCTION import_model(model_name text, model jsonb) RETURNS integer
	AS 'MODULE_PATHNAME', 'import_model'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION import_model(text, jsonb) IS
	'stores a model given in the export_model() JSON layout as the next version of model_name and deploys it; returns the version';

/* ---- the registry's functions ---- */

CREATE FUNCTION list_models()
	RETURNS TABLE (model_name text, deployed_version integer,
				   latest_version integer, versions bigint, labels text[],
				   owner name, created_at timestamptz, metrics jsonb)
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT c.model_name, dm.version, c.latest, c.n, l.labels, l.owner,
		   l.created_at, COALESCE(dm.metrics, l.metrics)
	FROM (SELECT v.model_name, count(*) AS n, max(v.version) AS latest
		  FROM textclf.versions v GROUP BY v.model_name) c
	JOIN textclf.versions l
	  ON l.model_name = c.model_name AND l.version = c.latest
	LEFT JOIN textclf.versions dm
	  ON dm.model_name = c.model_name AND dm.deployed
	ORDER BY c.model_name
	$$;
COMMENT ON FUNCTION list_models() IS 'one row per model: deployed and latest version, labels, metrics of the deployed version';

CREATE FUNCTION deploy(model_name text, version integer) RETURNS boolean
	AS 'MODULE_PATHNAME', 'deploy_version'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION deploy(text, integer) IS
	'deploys a version of a model (its owner only); predict() by name uses it from the next query';

CREATE FUNCTION rollback(model_name text) RETURNS integer
	AS 'MODULE_PATHNAME', 'rollback_model'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION rollback(text) IS
	'undoes the latest deployment of a model; returns the version deployed again';

CREATE FUNCTION drop_model(model_name text) RETURNS integer
	AS 'MODULE_PATHNAME', 'drop_model'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION drop_model(text) IS 'drops every version of a model; returns how many';

CREATE FUNCTION drop_model_version(model_name text, version integer) RETURNS boolean
	AS 'MODULE_PATHNAME', 'drop_model_version'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION drop_model_version(text, integer) IS
	'drops one version of a model; if it was deployed, the previously deployed version is deployed again';

/* ---- who may use a model (docs/security.md) ---- */

CREATE FUNCTION grant_model(model_name text, grantee text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'grant_model'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION grant_model(text, text) IS
	'lets a role (or ''public'': every role) use a model by name in predict(), predict_proba(), tokenize() and evaluate(), without reading its weights; owner only; false if already granted';

CREATE FUNCTION grant_model(model_name text, grantee regrole) RETURNS boolean
	AS 'MODULE_PATHNAME', 'grant_model_role'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION grant_model(text, regrole) IS
	'grant_model() for a regrole value';

CREATE FUNCTION revoke_model(model_name text, grantee text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'revoke_model'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION revoke_model(text, text) IS
	'withdraws a grant of grant_model() from the next query on; owner only; false if there was none';

CREATE FUNCTION revoke_model(model_name text, grantee regrole) RETURNS boolean
	AS 'MODULE_PATHNAME', 'revoke_model_role'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION revoke_model(text, regrole) IS
	'revoke_model() for a regrole value';

/* ---- scheduled retraining (pg_cron) ---- */

/*
 * schedule_retraining() stores a pg_cron job named 'textclf:<model>' whose
 * command calls textclf.run_scheduled_retraining(); pg_cron runs it as the
 * role that scheduled it (cron.job.username), in this database.  pg_cron
 * lives in one database only (cron.database_name): from any other database
 * these functions raise an ERROR whose HINT is the cron.schedule_in_database()
 * call to run there.  Everything is PL/pgSQL, SECURITY INVOKER: the caller
 * needs USAGE on schema cron, and pg_cron's own rules apply.  The cron
 * schema may not exist, so every reference to it is dynamic SQL.
 */

-- The SQL command of the retraining job: every value a quoted literal.
CREATE FUNCTION textclf.retraining_command(model_name text, relation regclass,
										   text_column name, label_column name,
										   options jsonb DEFAULT '{}')
	RETURNS text
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	v_rel		text;
	v_temp		boolean;
BEGIN
	IF model_name IS NULL OR relation IS NULL OR text_column IS NULL
		OR label_column IS NULL THEN
		RAISE EXCEPTION 'model_name, relation, text_column and label_column must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'
		   OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname),
		   c.relpersistence OPERATOR(pg_catalog.=) 't'
	  INTO v_rel, v_temp
	  FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	 WHERE c.oid OPERATOR(pg_catalog.=) relation;
	IF v_rel IS NULL THEN
		RAISE EXCEPTION 'relation with OID % does not exist', relation::oid
			USING ERRCODE = 'undefined_table';
	END IF;
	IF v_temp THEN
		RAISE EXCEPTION 'cannot schedule retraining on temporary table "%"',
			(SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relation)
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'The job runs in its own session, which cannot see this session''s temporary tables.';
	END IF;
	RETURN pg_catalog.format(
		'SELECT textclf.run_scheduled_retraining(%L, %L::pg_catalog.regclass, %L, %L, %L::pg_catalog.jsonb)',
		model_name, v_rel, text_column, label_column,
		COALESCE(options, '{}'::pg_catalog.jsonb));
END
$$;
COMMENT ON FUNCTION textclf.retraining_command(text, regclass, name, name, jsonb) IS
	'the SQL command a retraining job of schedule_retraining() runs';

-- Raise the ERROR (with a HINT) when pg_cron cannot schedule jobs here;
-- cron_call is the statement to run in cron.database_name instead.
CREATE FUNCTION textclf.check_pg_cron(cron_call text)
	RETURNS void
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	v_crondb	text;
	v_known		boolean := true;
	v_have_ext	boolean;
	v_as_me		text := pg_catalog.format(' as role %s: %s',
										  pg_catalog.quote_ident(current_user), cron_call);
BEGIN
	SELECT EXISTS (SELECT FROM pg_catalog.pg_extension e
				   WHERE e.extname OPERATOR(pg_catalog.=) 'pg_cron')
	  INTO v_have_ext;
	-- only superusers and pg_read_all_settings may read cron.database_name
	BEGIN
		v_crondb := pg_catalog.current_setting('cron.database_name', true);
	EXCEPTION WHEN insufficient_privilege THEN
		v_known := false;
	END;
	IF v_known AND (v_crondb IS NULL OR v_crondb OPERATOR(pg_catalog.=) '') THEN
		RAISE EXCEPTION 'pg_cron is not installed'
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Scheduled retraining runs as a pg_cron job; the pg_cron library is not loaded.',
				  HINT = 'Install pg_cron (Debian: postgresql-15-cron), set shared_preload_libraries = ''pg_cron'' in postgresql.conf (cron.database_name names the database of the jobs, default postgres), restart the server and run CREATE EXTENSION pg_cron in that database.';
	END IF;
	IF v_known AND v_crondb OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN
		RAISE EXCEPTION 'pg_cron schedules jobs from database "%", not from "%"',
			v_crondb, pg_catalog.current_database()
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'pg_cron''s job table lives only in the database named by cron.database_name.',
				  HINT = 'Run this in database ' OPERATOR(pg_catalog.||)
						 pg_catalog.quote_ident(v_crondb) OPERATOR(pg_catalog.||) v_as_me;
	END IF;
	IF NOT v_have_ext AND v_known THEN
		RAISE EXCEPTION 'extension "pg_cron" is not installed in database "%"', v_crondb
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Run CREATE EXTENSION pg_cron as a superuser (pg_cron must be in shared_preload_libraries), then GRANT USAGE ON SCHEMA cron to the roles that schedule retraining.';
	END IF;
	IF NOT v_have_ext THEN
		-- pg_cron is loaded (the setting exists) but not created here
		RAISE EXCEPTION 'extension "pg_cron" is not installed in database "%"',
			pg_catalog.current_database()
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'pg_cron schedules jobs only from the database named by cron.database_name, which this role may not read.',
				  HINT = 'If that is this database, a superuser runs CREATE EXTENSION pg_cron here. Otherwise run this in that database'
						 OPERATOR(pg_catalog.||) v_as_me;
	END IF;
	IF NOT pg_catalog.has_schema_privilege('cron', 'USAGE') THEN
		RAISE EXCEPTION 'permission denied for schema cron'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = pg_catalog.format('A superuser can run: GRANT USAGE ON SCHEMA cron TO %I;', current_user);
	END IF;
END
$$;
COMMENT ON FUNCTION textclf.check_pg_cron(text) IS
	'raises an error with a hint when pg_cron cannot schedule jobs from this database';

CREATE FUNCTION schedule_retraining(model_name text, cron_schedule text,
									relation regclass, text_column name,
									label_column name, options jsonb DEFAULT '{}')
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY INVOKER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	v_job		text := 'textclf:' OPERATOR(pg_catalog.||) model_name;
	v_cmd		text;
	v_other		text;
	v_jobid		bigint;
BEGIN
	IF model_name IS NULL OR cron_schedule IS NULL THEN
		RAISE EXCEPTION 'model_name and cron_schedule must not be NULL'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF model_name OPERATOR(pg_catalog.=) '' OR pg_catalog.strpos(model_name, '@') OPERATOR(pg_catalog.>) 0 THEN
		RAISE EXCEPTION 'invalid model name "%"', model_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A model name is not empty and has no "@".';
	END IF;
	IF pg_catalog.octet_length(v_job) OPERATOR(pg_catalog.>) 63 THEN
		RAISE EXCEPTION 'model name "%" is too long to schedule', model_name
			USING ERRCODE = 'name_too_long',
				  DETAIL = 'The pg_cron job name "textclf:<model name>" must fit in 63 bytes.';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
				   WHERE a.attrelid OPERATOR(pg_catalog.=) relation
					 AND a.attname OPERATOR(pg_catalog.=) text_column
					 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) THEN
		RAISE EXCEPTION 'column "%" of relation % does not exist', text_column, relation
			USING ERRCODE = 'undefined_column';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
				   WHERE a.attrelid OPERATOR(pg_catalog.=) relation
					 AND a.attname OPERATOR(pg_catalog.=) label_column
					 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) THEN
		RAISE EXCEPTION 'column "%" of relation % does not exist', label_column, relation
			USING ERRCODE = 'undefined_column';
	END IF;
	v_cmd := textclf.retraining_command(model_name, relation, text_column,
										label_column, options);
	PERFORM textclf.check_pg_cron(pg_catalog.format(
		'SELECT cron.schedule_in_database(%L, %L, %L, %L, %L); (pg_cron >= 1.4; by default only a superuser may call cron.schedule_in_database)',
		v_job, cron_schedule, v_cmd, pg_catalog.current_database(), current_user));
	-- a job of this name scheduled (by schedule_in_database) for another
	-- database would be overwritten by cron.schedule: refuse
	EXECUTE 'SELECT j.database FROM cron.job j
			  WHERE j.jobname OPERATOR(pg_catalog.=) $1
				AND j.username OPERATOR(pg_catalog.=) $2
				AND j.database OPERATOR(pg_catalog.<>) pg_catalog.current_database()'
		INTO v_other USING v_job, current_user::text;
	IF v_other IS NOT NULL THEN
		RAISE EXCEPTION 'pg_cron job "%" of role "%" already runs in database "%"',
			v_job, current_user, v_other
			USING ERRCODE = 'duplicate_object',
				  HINT = pg_catalog.format('Remove it first: SELECT cron.unschedule(%L);', v_job);
	END IF;
	-- pg_cron replaces the job of the same name and role
	EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO v_jobid
		USING v_job, cron_schedule, v_cmd;
	RETURN v_jobid;
END
$$;
COMMENT ON FUNCTION schedule_retraining(text, text, regclass, name, name, jsonb) IS
	'schedules train_classifier() as the pg_cron job ''textclf:<model_name>'', run as the calling role; returns the job id';

CREATE FUNCTION unschedule_retraining(model_name text)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY INVOKER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	v_job		text := 'textclf:' OPERATOR(pg_catalog.||) model_name;
	v_jobid		bigint;
	v_done		boolean;
BEGIN
	PERFORM textclf.check_pg_cron(pg_catalog.format('SELECT cron.unschedule(%L);', v_job));
	EXECUTE 'SELECT j.jobid FROM cron.job j
			  WHERE j.jobname OPERATOR(pg_catalog.=) $1
				AND j.username OPERATOR(pg_catalog.=) $2
				AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()'
		INTO v_jobid USING v_job, current_user::text;
	IF v_jobid IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT cron.unschedule($1)' INTO STRICT v_done USING v_jobid;
	RETURN v_done;
END
$$;
COMMENT ON FUNCTION unschedule_retraining(text) IS
	'removes the pg_cron job of schedule_retraining() for a model (of the calling role); false if there was none';

-- What the job runs: train_classifier() unless a run of the same model
-- holds the advisory lock, in which case it skips with a NOTICE (NULL).
CREATE FUNCTION textclf.run_scheduled_retraining(model_name text, relation regclass,
												 text_column name, label_column name,
												 options jsonb DEFAULT '{}')
	RETURNS textclf.training_result
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY INVOKER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	v_result	textclf.training_result;
BEGIN
	IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('textclf.retrain'),
												pg_catalog.hashtext(model_name)) THEN
		RAISE NOTICE 'retraining of model "%" is already running; skipped', model_name;
		-- a pg_cron job's NOTICEs reach no client: say it in the server log
		RAISE LOG 'textclf: scheduled retraining of model "%" skipped: already running', model_name;
		RETURN NULL;
	END IF;
	SELECT * INTO v_result
	  FROM @extschema@.train_classifier(model_name, relation, text_column, label_column,
										COALESCE(options, '{}'::pg_catalog.jsonb));
	RAISE LOG 'textclf: scheduled retraining of model "%" stored version % (%)',
		model_name, v_result.version,
		CASE WHEN v_result.deployed THEN 'deployed: ' ELSE '' END
		OPERATOR(pg_catalog.||) COALESCE(v_result.deploy_reason, '');
	RETURN v_result;
END
$$;
COMMENT ON FUNCTION textclf.run_scheduled_retraining(text, regclass, name, name, jsonb) IS
	'trains the next version of a model unless a scheduled run of it is already running (then a NOTICE and NULL)';

/* ---- live training progress ---- */

-- Backed by shared memory that exists only when textclf is in
-- shared_preload_libraries; otherwise the function returns no rows.  Rows
-- of other roles' trainings are shown only to members of those roles and of
-- pg_read_all_stats (superusers see all).
CREATE FUNCTION textclf.training_progress_rows(
	OUT pid integer, OUT datid oid, OUT userid oid, OUT model_name text,
	OUT phase text, OUT epoch integer, OUT epochs integer, OUT batch bigint,
	OUT batches bigint, OUT rows_done bigint, OUT rows_total bigint,
	OUT loss float8, OUT rows_per_sec float8, OUT started timestamptz,
	OUT elapsed interval, OUT eta interval)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'training_progress_rows'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION textclf.training_progress_rows() IS
	'one row per running train_classifier() the caller may see (needs shared_preload_libraries = ''textclf'')';

CREATE VIEW textclf.training_progress AS
	SELECT p.pid, d.datname AS database,
		   pg_catalog.pg_get_userbyid(p.userid) AS username, p.model_name,
		   p.phase, p.epoch, p.epochs, p.batch, p.batches, p.rows_done,
		   p.rows_total, p.loss, p.rows_per_sec, p.elapsed, p.eta, p.started
	FROM textclf.training_progress_rows() p
	LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) p.datid;
COMMENT ON VIEW textclf.training_progress IS
	'live progress of running trainings (needs shared_preload_libraries = ''textclf'')';
GRANT SELECT ON textclf.training_progress TO PUBLIC;
