/*
 * registry.c
 *	  Lookups of the extension's own catalog objects: the schema the
 *	  extension was installed in (where the classifier type and the
 *	  user-facing functions live) and the OID of the classifier type.
 *
 * The registry tables themselves are in the fixed schema "textclf" and are
 * always named schema-qualified in SPI text.  Results are cached for the
 * life of the backend, reset when the extension is dropped and re-created
 * (the cached OIDs are checked against the catalogs before use).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "glue.h"

static Oid	CachedTypeOid = InvalidOid;

/* Read the pg_extension row of textclf: its schema and its owner. */
static void
ExtensionRow(Oid *nsp, Oid *owner)
{
	Oid			ext = get_extension_oid("textclf", true);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (!OidIsValid(ext))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"textclf\" is not installed"),
				 errhint("Run CREATE EXTENSION textclf.")));
	*nsp = *owner = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		*nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
		*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(*owner))
		elog(ERROR, "extension textclf has no pg_extension row");
}

/* The namespace the extension is installed in. */
Oid
TcExtensionSchema(void)
{
	Oid			nsp,
				owner;

	ExtensionRow(&nsp, &owner);
	return nsp;
}

/* The OID of type classifier in the extension's schema. */
Oid
TcClassifierTypeOid(void)
{
	if (OidIsValid(CachedTypeOid) &&
		SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(CachedTypeOid)))
		return CachedTypeOid;
	CachedTypeOid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									CStringGetDatum("classifier"),
									ObjectIdGetDatum(TcExtensionSchema()));
	if (!OidIsValid(CachedTypeOid))
		elog(ERROR, "type classifier of extension textclf is missing");
	return CachedTypeOid;
}

/* The role that owns the extension (and its registry tables). */
Oid
TcExtensionOwner(void)
{
	Oid			nsp,
				owner;

	ExtensionRow(&nsp, &owner);
	return owner;
}

/*
 * Run the registry's own reads and writes as the extension's owner, so that
 * ordinary roles need no privileges on the registry tables: the caller's
 * identity is recorded explicitly, and the caller's own rights were checked
 * before.  TcRegistryEnd restores the caller; an ERROR in between restores
 * it through transaction (or subtransaction) abort.
 *
 * Only fixed, fully schema-qualified statements with parameters run in
 * between (docs/security.md).  As a second line of defence the switch is a
 * security-restricted operation (no SET ROLE, no temporary objects, as in
 * VACUUM or REFRESH MATERIALIZED VIEW) and search_path is pg_catalog,
 * pg_temp, so that nothing the caller put on the path can be picked up even
 * by a statement that forgot a qualification.
 */
void
TcRegistryBegin(TcRegistryUser *save)
{
	GetUserIdAndSecContext(&save->userid, &save->sec);
	SetUserIdAndSecContext(TcExtensionOwner(),
						   save->sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

/* Back to the caller's identity and search_path. */
void
TcRegistryEnd(const TcRegistryUser *save)
{
	AtEOXact_GUC(true, save->nestlevel);
	SetUserIdAndSecContext(save->userid, save->sec);
}

/*
 * Check that the current user may manage model_name (owner of its versions,
 * a member of the owner role, or a superuser); raise otherwise.  Runs the
 * lookup as the extension owner.  Returns false when the model (or the
 * version, when version > 0) does not exist.
 */
static bool
CheckModelOwner(text *model_name, int32 version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {PointerGetDatum(model_name), Int32GetDatum(version)};
	TcRegistryUser save;
	Oid			caller = GetUserId();
	int			ret;
	bool		found;

	TcRegistryBegin(&save);
	/*
	 * Not read-only (so, under READ COMMITTED, a fresh snapshot): callers
	 * check under the model's advisory lock and must see what the previous
	 * holder committed, e.g. the first version of a name trained
	 * concurrently by another role.  Parallel workers (export_model is
	 * parallel safe) cannot take snapshots and use the query's.
	 */
	ret = SPI_execute_with_args("SELECT DISTINCT m.owner FROM textclf.models m "
								"WHERE m.model_name OPERATOR(pg_catalog.=) $1 "
								"AND ($2 OPERATOR(pg_catalog.=) 0 OR "
								"m.version OPERATOR(pg_catalog.=) $2)",
								2, types, values, NULL, IsInParallelMode(), 0);
	TcRegistryEnd(&save);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the textclf registry");
	found = SPI_processed > 0;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *owner = SPI_getvalue(SPI_tuptable->vals[i],
										 SPI_tuptable->tupdesc, 1);
		Oid			ownerid = get_role_oid(owner, true);

		if (!superuser_arg(caller) &&
			(!OidIsValid(ownerid) || !has_privs_of_role(caller, ownerid)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of model \"%s\"",
							text_to_cstring(model_name))));
	}
	return found;
}

/*
 * Raise unless the current user may add versions to model_name: the same
 * rule as for dropping it; a model that does not exist yet is anyone's.
 * Returns whether it exists.  The caller is connected to SPI.
 */
bool
TcCheckModelOwner(text *model_name)
{
	return CheckModelOwner(model_name, 0);
}

/* Delete versions of a model (all when version is 0); returns the count. */
static uint64
DeleteVersions(text *model_name, int32 version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {PointerGetDatum(model_name), Int32GetDatum(version)};
	TcRegistryUser save;
	int			ret;
	uint64		n;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot drop a model during recovery"),
				 errhint("Drop it on the primary server; replicas follow its registry.")));
	if (!CheckModelOwner(model_name, version))
	{
		if (version > 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("version %d of model \"%s\" does not exist",
							version, text_to_cstring(model_name))));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist",
						text_to_cstring(model_name))));
	}
	TcRegistryBegin(&save);
	ret = SPI_execute_with_args("DELETE FROM textclf.models m "
								"WHERE m.model_name OPERATOR(pg_catalog.=) $1 "
								"AND ($2 OPERATOR(pg_catalog.=) 0 OR "
								"m.version OPERATOR(pg_catalog.=) $2)",
								2, types, values, NULL, false, 0);
	TcRegistryEnd(&save);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "could not delete from the textclf registry");
	n = SPI_processed;
	/* a model gone with its last version takes its grants along (acl.c) */
	TcForgetModelGrants(model_name);
	return n;
}

PG_FUNCTION_INFO_V1(drop_model);
PG_FUNCTION_INFO_V1(drop_model_version);

/* drop_model(model_name text) RETURNS integer */
Datum
drop_model(PG_FUNCTION_ARGS)
{
	uint64		n;

	SPI_connect();
	n = DeleteVersions(PG_GETARG_TEXT_PP(0), 0);
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}

/* drop_model_version(model_name text, version integer) RETURNS boolean */
Datum
drop_model_version(PG_FUNCTION_ARGS)
{
	int32		version = PG_GETARG_INT32(1);

	if (version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version must be a positive number")));
	SPI_connect();
	DeleteVersions(PG_GETARG_TEXT_PP(0), version);
	SPI_finish();
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(deploy_version);
PG_FUNCTION_INFO_V1(rollback_model);

/* Lock a model's deployment history against concurrent deploys and rollbacks. */
static void
LockDeployments(text *model_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(model_name)};

	if (SPI_execute_with_args("SELECT pg_catalog.pg_advisory_xact_lock("
							  "pg_catalog.hashtext('textclf.deployments'), "
							  "pg_catalog.hashtext($1))",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the deployments of a model");
}

/*
 * deploy(model_name text, version integer) RETURNS boolean: make version the
 * deployed one (owner only).  Transactional: a rollback of the caller's
 * transaction leaves the previous deployment in place.
 */
Datum
deploy_version(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	int32		version = PG_GETARG_INT32(1);
	Oid			types[3] = {TEXTOID, INT4OID, TEXTOID};
	Datum		values[3];
	TcRegistryUser save;
	int			ret;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot deploy a model during recovery"),
				 errhint("Deploy on the primary server; replicas follow its registry.")));
	SPI_connect();
	if (version <= 0 || !CheckModelOwner(name, version))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("version %d of model \"%s\" does not exist",
						version, text_to_cstring(name))));
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(version);
	values[2] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	TcRegistryBegin(&save);
	LockDeployments(name);
	ret = SPI_execute_with_args("INSERT INTO textclf.deployments (model_name, "
								"version, deployed_by, reason) VALUES ($1, $2, "
								"$3::pg_catalog.name, 'deploy()')",
								3, types, values, NULL, false, 0);
	TcRegistryEnd(&save);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not deploy the model");
	SPI_finish();
	PG_RETURN_BOOL(true);
}

/*
 * rollback(model_name text) RETURNS integer: undo the latest deployment
 * still in force (it stays in the history, marked rolled_back), so the one
 * before it is deployed again; returns that version.  Repeated calls walk
 * further back.
 */
Datum
rollback_model(PG_FUNCTION_ARGS)
{
	text	   *name = PG_GETARG_TEXT_PP(0);
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(name)};
	TcRegistryUser save;
	int			ret;
	bool		isnull;
	int32		version;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot roll back a model during recovery"),
				 errhint("Roll back on the primary server; replicas follow its registry.")));
	SPI_connect();
	if (!CheckModelOwner(name, 0))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", text_to_cstring(name))));
	TcRegistryBegin(&save);
	LockDeployments(name);
	ret = SPI_execute_with_args("SELECT d.id FROM textclf.deployments d "
								"WHERE d.model_name OPERATOR(pg_catalog.=) $1 "
								"AND NOT d.rolled_back ORDER BY d.id DESC LIMIT 2",
								1, types, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the deployments");
	if (SPI_processed < 2)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model \"%s\" has no earlier deployment to roll back to",
						text_to_cstring(name)),
				 errhint("Deploy a version with deploy().")));
	{
		Oid			t[1] = {INT8OID};
		Datum		v[1];

		v[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							 &isnull);
		ret = SPI_execute_with_args("UPDATE textclf.deployments d SET rolled_back = true "
									"WHERE d.id OPERATOR(pg_catalog.=) $1",
									1, t, v, NULL, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "could not roll back the deployment");
	}
	ret = SPI_execute_with_args("SELECT d.version FROM textclf.deployments d "
								"WHERE d.model_name OPERATOR(pg_catalog.=) $1 "
								"AND NOT d.rolled_back ORDER BY d.id DESC LIMIT 1",
								1, types, values, NULL, false, 0);
	TcRegistryEnd(&save);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the deployments");
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT32(version);
}

/* Check a new model name: non-empty, not too long, no '@'. */
void
TcCheckModelName(const char *name)
{
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must not be empty")));
	if (strlen(name) > TC_MAX_MODEL_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("model name is longer than %d bytes", TC_MAX_MODEL_NAME)));
	if (strchr(name, '@') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name \"%s\" contains \"@\"", name),
				 errhint("\"@\" separates a model name from a version, as in 'name@3'.")));
}

/*
 * Start storing a new version of name, as train_classifier and
 * import_model do: take the model's advisory lock, check (as the caller,
 * under the lock) that the caller may add versions, forget stale grants of
 * a name that has no version yet, switch to the registry's owner and take
 * the next version number, which is never reused.  Returns the version;
 * the caller inserts its rows and then calls TcRegistryEnd(save).  The
 * caller is connected to SPI.
 */
int32
TcBeginNewVersion(const char *name, TcRegistryUser *save)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	bool		isnull;
	int			ret;

	ret = SPI_execute_with_args("SELECT pg_catalog.pg_advisory_xact_lock("
								"pg_catalog.hashtext('textclf.models'), "
								"pg_catalog.hashtext($1))",
								1, types, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not lock model \"%s\"", name);
	if (!TcCheckModelOwner(DatumGetTextPP(values[0])))
		TcForgetModelGrants(DatumGetTextPP(values[0]));	/* a new model: none */
	TcRegistryBegin(save);
	ret = SPI_execute_with_args("INSERT INTO textclf.version_counters AS c "
								"(model_name, last_version) VALUES ($1, 1) "
								"ON CONFLICT (model_name) DO UPDATE SET last_version = "
								"c.last_version OPERATOR(pg_catalog.+) 1 "
								"RETURNING c.last_version",
								1, types, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not number the new version");
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/* A text[] of UTF-8 labels, converted to the database encoding. */
Datum
TcLabelsArray(char **labels, int nlabels)
{
	Datum	   *d = palloc(sizeof(Datum) * (nlabels > 0 ? nlabels : 1));

	for (int i = 0; i < nlabels; i++)
		d[i] = CStringGetTextDatum(pg_any_to_server(labels[i], strlen(labels[i]),
													PG_UTF8));
	return PointerGetDatum(construct_array(d, nlabels, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * The version that name resolves to: version itself when > 0, else the one
 * deployed (the newest deployment that was not rolled back).  Sets
 * *content_id.  The three ways to find nothing get their own message.
 */
int32
TcResolveVersion(const char *name, int32 version, uint64 *content_id,
				 const char *no_deployed_hint)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	bool		isnull;
	int			ret;

	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(version);
	ret = SPI_execute_with_args("SELECT m.content_id, m.version "
								"FROM textclf.models m "
								"WHERE m.model_name OPERATOR(pg_catalog.=) $1 "
								"AND m.version OPERATOR(pg_catalog.=) "
								"CASE WHEN $2 OPERATOR(pg_catalog.>) 0 THEN $2 "
								"ELSE (SELECT d.version FROM textclf.deployments d "
								"      WHERE d.model_name OPERATOR(pg_catalog.=) $1 "
								"      AND NOT d.rolled_back "
								"      ORDER BY d.id DESC LIMIT 1) END",
								2, types, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the textclf registry: %s",
			 SPI_result_code_string(ret));
	if (SPI_processed == 0)
	{
		ret = SPI_execute_with_args("SELECT 1 FROM textclf.models m "
									"WHERE m.model_name OPERATOR(pg_catalog.=) $1",
									1, types, values, NULL, true, 1);
		if (ret != SPI_OK_SELECT || SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" does not exist", name),
					 errhint("Train it with train_classifier(), or see list_models().")));
		if (version > 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("version %d of model \"%s\" does not exist",
							version, name)));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" has no deployed version", name),
				 errhint("%s", no_deployed_hint)));
	}
	*content_id = (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc,
													   1, &isnull));
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 2, &isnull));
}
