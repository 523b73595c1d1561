/*
 * acl.c
 *	  Who may use a model by name: grant_model() and revoke_model(), which
 *	  record grants in textclf.model_grants, and the check that predict(),
 *	  predict_proba(), tokenize() and evaluate() by name run once per query
 *	  (TcCheckModelUse, called from ResolveModel in predict.c).
 *
 * A model may be used by name by a superuser, by a role with the
 * privileges of one of the owners of its versions (the owner, or a member
 * of the owner role), by a role with the privileges of a grantee role, and
 * by everyone when it is granted to PUBLIC (grantee OID 0, shown as '-').
 * Grants follow the role's OID, like PostgreSQL's own ACLs: they survive a
 * rename and pg_dump (regrole is dumped as the name); a dropped role's
 * grant matches nobody and can be revoked by OID.  Only an owner (or a
 * superuser) grants and revokes; grants are removed with the model's last
 * version, so that a model of the same name trained later by someone else
 * does not inherit them.
 *
 * What this file deliberately does not do: give access to the weights (a
 * grant allows scoring, never reading textclf.models or export_model(),
 * which stay owner-only), grant options, or per-version grants.  The
 * classifier-value forms of predict() need no check: the caller already
 * holds the value.
 *
 * Memory: everything is palloc'd in the caller's context or SPI's, which
 * the caller releases, except the saved plan of the check (one per
 * backend, in the plan cache).  Registry statements run as the extension owner
 * (TcRegistryBegin/End in registry.c) and are fixed, schema-qualified,
 * with parameters.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "glue.h"

PG_FUNCTION_INFO_V1(grant_model);
PG_FUNCTION_INFO_V1(grant_model_role);
PG_FUNCTION_INFO_V1(revoke_model);
PG_FUNCTION_INFO_V1(revoke_model_role);

/*
 * The statement of TcCheckModelUse, prepared once per backend (the plan
 * cache re-plans it after DDL on the registry, with the search_path it was
 * prepared under: TcRegistryBegin's).
 */
static SPIPlanPtr UsePlan = NULL;

/*
 * Raise 42501 unless the current user may use model_name (without '@N') by
 * name.  Returns quietly when the model does not exist: the caller reports
 * that.  The caller is connected to SPI.
 */
void
TcCheckModelUse(const char *model_name)
{
	Oid			caller = GetUserId();
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	TcRegistryUser save;
	bool		exists = false;
	bool		allowed = false;
	int			ret;

	if (superuser_arg(caller))
		return;
	values[0] = CStringGetTextDatum(model_name);
	TcRegistryBegin(&save);
	if (UsePlan == NULL)
	{
		/* kept for the backend: parsing and planning cost more than running */
		SPIPlanPtr	plan = SPI_prepare("SELECT o.owner, NULL::pg_catalog.regrole "
									   "FROM (SELECT DISTINCT m.owner FROM textclf.models m "
									   "      WHERE m.model_name OPERATOR(pg_catalog.=) $1) o "
									   "UNION ALL "
									   "SELECT NULL, g.grantee FROM textclf.model_grants g "
									   "WHERE g.model_name OPERATOR(pg_catalog.=) $1",
									   1, types);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the textclf grant check: %s",
				 SPI_result_code_string(SPI_result));
		UsePlan = plan;
	}
	ret = SPI_execute_plan(UsePlan, values, NULL, true, 0);
	TcRegistryEnd(&save);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the textclf registry: %s",
			 SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed && !allowed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		grantee = SPI_getbinval(tup, desc, 2, &isnull);

		if (isnull)
		{
			/* an owner row */
			char	   *owner = SPI_getvalue(tup, desc, 1);
			Oid			ownerid = get_role_oid(owner, true);

			exists = true;
			if (OidIsValid(ownerid) && has_privs_of_role(caller, ownerid))
				allowed = true;
		}
		else if (!OidIsValid(DatumGetObjectId(grantee)) ||
				 has_privs_of_role(caller, DatumGetObjectId(grantee)))
			allowed = true;		/* PUBLIC, or a role the caller acts as */
	}
	if (SPI_tuptable != NULL)
		SPI_freetuptable(SPI_tuptable);
	/* no version: no model (its grants went with it), reported by the caller */
	if (!exists || allowed)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for model \"%s\"", model_name),
			 errhint("The model's owner can allow it with: SELECT grant_model(%s, %s);",
					 quote_literal_cstr(model_name),
					 quote_literal_cstr(quote_identifier(GetUserNameFromId(caller,
																		   false))))));
}

/*
 * Delete the grants of model_name if no version of it is left.  Takes the
 * model's advisory lock first, the one grant_model() holds, so that a grant
 * racing with the drop is either seen and deleted here or finds no model.
 * The caller is connected to SPI and has checked ownership.
 */
void
TcForgetModelGrants(text *model_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(model_name)};
	TcRegistryUser save;
	int			ret;

	TcRegistryBegin(&save);
	ret = SPI_execute_with_args("SELECT pg_catalog.pg_advisory_xact_lock("
								"pg_catalog.hashtext('textclf.models'), "
								"pg_catalog.hashtext($1))",
								1, types, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not lock the model");
	ret = SPI_execute_with_args("DELETE FROM textclf.model_grants g "
								"WHERE g.model_name OPERATOR(pg_catalog.=) $1 "
								"AND NOT EXISTS (SELECT FROM textclf.models m "
								"  WHERE m.model_name OPERATOR(pg_catalog.=) $1)",
								1, types, values, NULL, false, 0);
	TcRegistryEnd(&save);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "could not delete from the textclf registry");
}

/*
 * The grantee given as text: 'public' (any case, unquoted) is PUBLIC
 * (InvalidOid); anything else is read as regrole reads it (an identifier,
 * double-quoted to keep case, or a numeric OID).
 */
static Oid
GranteeFromText(text *arg)
{
	char	   *s = text_to_cstring(arg);

	if (pg_strcasecmp(s, "public") == 0)
		return InvalidOid;
	return DatumGetObjectId(DirectFunctionCall1(regrolein, CStringGetDatum(s)));
}

/*
 * Check the caller may change the grants of model_name (lock, ownership,
 * existence).  The caller is connected to SPI.
 */
static void
CheckGrantor(text *model_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(model_name)};

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change the grants of a model during recovery")));
	/* as the caller: the lock of train_classifier(), import and drop */
	if (SPI_execute_with_args("SELECT pg_catalog.pg_advisory_xact_lock("
							  "pg_catalog.hashtext('textclf.models'), "
							  "pg_catalog.hashtext($1))",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the model");
	if (!TcCheckModelOwner(model_name))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist",
						text_to_cstring(model_name)),
				 errhint("See list_models().")));
}

/* Add (or remove) the grant of model_name to grantee; returns whether it changed. */
static bool
ChangeGrant(text *model_name, Oid grantee, bool grant)
{
	Oid			types[3] = {TEXTOID, REGROLEOID, TEXTOID};
	Datum		values[3];
	TcRegistryUser save;
	int			ret;
	bool		changed;

	if (grant && OidIsValid(grantee) &&
		!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(grantee)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", grantee)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	CheckGrantor(model_name);
	values[0] = PointerGetDatum(model_name);
	values[1] = ObjectIdGetDatum(grantee);
	values[2] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	TcRegistryBegin(&save);
	if (grant)
		ret = SPI_execute_with_args("INSERT INTO textclf.model_grants "
									"(model_name, grantee, granted_by) "
									"VALUES ($1, $2, $3::pg_catalog.name) "
									"ON CONFLICT (model_name, grantee) DO NOTHING",
									3, types, values, NULL, false, 0);
	else
		ret = SPI_execute_with_args("DELETE FROM textclf.model_grants g "
									"WHERE g.model_name OPERATOR(pg_catalog.=) $1 "
									"AND g.grantee OPERATOR(pg_catalog.=) $2",
									2, types, values, NULL, false, 0);
	TcRegistryEnd(&save);
	if (ret != (grant ? SPI_OK_INSERT : SPI_OK_DELETE))
		elog(ERROR, "could not change the grants of model \"%s\"",
			 text_to_cstring(model_name));
	changed = SPI_processed > 0;
	SPI_finish();
	return changed;
}

/* grant_model(model_name text, grantee text) RETURNS boolean */
Datum
grant_model(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ChangeGrant(PG_GETARG_TEXT_PP(0),
							   GranteeFromText(PG_GETARG_TEXT_PP(1)), true));
}

/* grant_model(model_name text, grantee regrole) RETURNS boolean */
Datum
grant_model_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ChangeGrant(PG_GETARG_TEXT_PP(0), PG_GETARG_OID(1), true));
}

/* revoke_model(model_name text, grantee text) RETURNS boolean */
Datum
revoke_model(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ChangeGrant(PG_GETARG_TEXT_PP(0),
							   GranteeFromText(PG_GETARG_TEXT_PP(1)), false));
}

/* revoke_model(model_name text, grantee regrole) RETURNS boolean */
Datum
revoke_model_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ChangeGrant(PG_GETARG_TEXT_PP(0), PG_GETARG_OID(1), false));
}
