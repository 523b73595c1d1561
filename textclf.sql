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
	FOREIGN KEY (model_name, version) REFERENCES textclf.models ON DELETE CASCADE
);
CREATE INDEX deployments_model_idx ON textclf.deployments (model_name, id);
COMMENT ON TABLE textclf.deployments IS 'deployment history; the newest row of a model names its deployed version';

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

-- The registry is written by the extension's functions only; everyone may
-- read what describes a model, but not its weights (textclf.models.model).
REVOKE ALL ON textclf.models, textclf.deployments, textclf.training_log,
	textclf.version_counters FROM PUBLIC;
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
		ORDER BY dd.id DESC LIMIT 1) d ON true;
COMMENT ON VIEW textclf.versions IS 'every model version, without its weights';
GRANT SELECT ON textclf.versions, textclf.deployments, textclf.training_log TO PUBLIC;

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
	seconds				float8
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

CREATE FUNCTION drop_model(model_name text) RETURNS integer
	AS 'MODULE_PATHNAME', 'drop_model'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION drop_model(text) IS 'drops every version of a model; returns how many';

CREATE FUNCTION drop_model_version(model_name text, version integer) RETURNS boolean
	AS 'MODULE_PATHNAME', 'drop_model_version'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION drop_model_version(text, integer) IS
	'drops one version of a model; if it was deployed, the previously deployed version is deployed again';
