/*-------------------------------------------------------------------------
 *
 * upsert.c
 *		  Version-guarded upserts of export records into a local table.
 *
 * The statement is built once per stream from the local table as it is
 * (users may add columns) and kept across the per-page transactions.  It
 * never regresses a row: an existing row is updated only when the incoming
 * version (generated_timestamp for tickets, updated_at otherwise) is newer,
 * or equal with different data, so replays after a crash and the repeated
 * records of time-based exports write nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "zendesk_fdw.h"

struct ZdUpsert
{
	const ZdResource *res;
	ZdRowMapper *mapper;
	TupleDesc	tupdesc;
	SPIPlanPtr	plan;
	/* params are the table's columns listed in param_att */
	int			nparams;
	int		   *param_att;
	int			id_param;
	Datum	   *values;
	bool	   *isnull;
	Datum	   *params;
	char	   *param_nulls;
	MemoryContext record_cxt;	/* reset per record */
};

/*
 * Build the mapper and the upsert for the local table as it is now (users
 * may have added columns).  The upsert never regresses a row: it updates
 * only when the incoming version is newer, or equal with different data.
 */
ZdUpsert *
zd_upsert_prepare(const ZdResource *res, Oid relid, MemoryContext cxt)
{
	ZdUpsert   *up = MemoryContextAllocZero(cxt, sizeof(ZdUpsert));
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	const char *qualname = psprintf("%s.%s",
									quote_identifier(get_namespace_name(RelationGetNamespace(rel))),
									quote_identifier(RelationGetRelationName(rel)));
	MemoryContext old = MemoryContextSwitchTo(cxt);
	StringInfoData cols,
				vals,
				sets,
				sql;
	char	  **keys;
	Oid		   *argtypes;
	bool		has_synced_at = false,
				has_data = false,
				has_version = false;
	const char *version = res->version_column;

	up->id_param = -1;
	up->tupdesc = CreateTupleDescCopy(desc);
	keys = palloc0(sizeof(char *) * desc->natts);
	up->param_att = palloc(sizeof(int) * desc->natts);
	argtypes = palloc(sizeof(Oid) * desc->natts);
	initStringInfo(&cols);
	initStringInfo(&vals);
	initStringInfo(&sets);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);
		const char *q = quote_identifier(name);

		if (att->attisdropped || att->attgenerated)
			continue;
		if (strcmp(name, "synced_at") == 0)
		{
			has_synced_at = true;
			continue;
		}
		keys[i] = strcmp(name, "data") == 0 ? ZD_KEY_WHOLE_RECORD : pstrdup(name);
		has_data |= strcmp(name, "data") == 0;
		has_version |= strcmp(name, version) == 0;
		if (strcmp(name, "id") == 0)
			up->id_param = up->nparams;

		argtypes[up->nparams] = att->atttypid;
		up->param_att[up->nparams++] = i;
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", q);
		appendStringInfo(&vals, "%s$%d", vals.len ? ", " : "", up->nparams);
		if (strcmp(name, "id") != 0)
			appendStringInfo(&sets, "%s%s = EXCLUDED.%s", sets.len ? ", " : "", q, q);
	}
	if (has_synced_at)
		appendStringInfo(&sets, "%ssynced_at = now()", sets.len ? ", " : "");

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s AS t (%s) VALUES (%s) ON CONFLICT (id) DO UPDATE SET %s WHERE ",
					 qualname, cols.data, vals.data, sets.data);
	if (has_version)
	{
		const char *v = quote_identifier(version);

		appendStringInfo(&sql, "t.%s < EXCLUDED.%s OR t.%s IS NULL", v, v, v);
		if (has_data)
			appendStringInfo(&sql, " OR (t.%s IS NOT DISTINCT FROM EXCLUDED.%s AND t.data IS DISTINCT FROM EXCLUDED.data)",
							 v, v);
	}
	else
		appendStringInfoString(&sql, has_data ? "t.data IS DISTINCT FROM EXCLUDED.data" : "true");

	up->mapper = zd_mapper_create(up->tupdesc, keys, RelationGetRelationName(rel));
	up->values = palloc(sizeof(Datum) * desc->natts);
	up->isnull = palloc(sizeof(bool) * desc->natts);
	up->params = palloc(sizeof(Datum) * up->nparams);
	up->param_nulls = palloc(up->nparams);
	MemoryContextSwitchTo(old);

	if (up->id_param < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table %s has no column \"id\"", qualname),
				 errhint("zendesk_sync upserts by id; drop the table to have it recreated.")));
	up->plan = SPI_prepare(sql.data, up->nparams, argtypes);
	if (up->plan == NULL)
		elog(ERROR, "zendesk_sync: could not prepare upsert: %s",
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(up->plan);
	up->res = res;
	up->record_cxt = AllocSetContextCreate(cxt, "zendesk_sync record", ALLOCSET_DEFAULT_SIZES);
	table_close(rel, AccessShareLock);
	return up;
}

/*
 * Upsert the page's records, skipping the repeats of a time-based page
 * boundary.  Runs in the caller's transaction with SPI connected.  Returns
 * the number of records applied and their newest change time.
 */
int64
zd_upsert_page(ZdUpsert *up, ZdExport *exp, int pageno, int64 *newest,
			   bool *has_newest)
{
	ZdPage	   *page = &exp->page;
	int64		n = 0;

	for (int i = 0; i < page->nrecords; i++)
	{
		struct json_object *rec = zd_page_record(page, i);
		MemoryContext old;
		int64		ts;
		int			rc;

		if (zd_export_is_repeat(exp, rec))
			continue;
		MemoryContextReset(up->record_cxt);
		old = MemoryContextSwitchTo(up->record_cxt);
		zd_mapper_fill(up->mapper, rec, up->values, up->isnull);
		MemoryContextSwitchTo(old);
		for (int p = 0; p < up->nparams; p++)
		{
			up->params[p] = up->values[up->param_att[p]];
			up->param_nulls[p] = up->isnull[up->param_att[p]] ? 'n' : ' ';
		}
		if (up->param_nulls[up->id_param] == 'n')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("Zendesk %s record #%d of page %d has no id",
							up->res->name, i + 1, pageno)));
		rc = SPI_execute_plan(up->plan, up->params, up->param_nulls, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "zendesk_sync: upsert failed: %s", SPI_result_code_string(rc));
		if (zd_record_change_time(up->res, rec, &ts) && (!*has_newest || ts > *newest))
		{
			*newest = ts;
			*has_newest = true;
		}
		n++;
	}

	return n;
}

void
zd_upsert_free(ZdUpsert *up)
{
	if (up->plan)
		SPI_freeplan(up->plan);
	up->plan = NULL;
}
