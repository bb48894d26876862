/*-------------------------------------------------------------------------
 *
 * upsert.c
 *		  Version-guarded upserts of export records into a local table.
 *
 * The statement is built from the local table as it is (users may add
 * columns) and kept across the per-page transactions.  It never regresses a
 * row: an existing row is updated only when the incoming version
 * (generated_timestamp for tickets, updated_at otherwise) is newer, or equal
 * with different data, so replays after a crash and the repeated records of
 * time-based exports write nothing.
 *
 * A page is written with few statements: its records are converted into
 * one array of parameters, then inserted with multi-row
 * INSERT ... VALUES (...), (...) ... ON CONFLICT statements whose sizes are
 * powers of two (a page of 1000 is 512 + 256 + 128 + 64 + 32 + 8 rows).
 * Each size is prepared once per stream with a generic plan, so the cost
 * per record is the executor's and the table's, not planning or executor
 * start-up.  One statement must not meet the same id twice ("ON CONFLICT DO
 * UPDATE command cannot affect row a second time"), and a time-based page
 * may hold one id twice, so a page keeps one record per id: the one that
 * applying the page's records one by one would have left (see keep_newer).
 *
 * Memory holds one page of converted rows: the conversion garbage of each
 * record goes to a context reset per record.  The jsonb columns other than
 * data are cut out of data's jsonb rather than built a second time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "zendesk_fdw.h"

/*
 * Largest statement, in rows.  Larger batches gain little (the statement's
 * start-up is already spread over hundreds of rows) and cost more to plan.
 */
#define ZD_UPSERT_MAX_BATCH		512
/* PostgreSQL's limit on parameters in one statement (protocol: uint16) */
#define ZD_UPSERT_MAX_PARAMS	65535
/* log2 of the largest possible batch, + 1: the number of plan sizes */
#define ZD_UPSERT_NSIZES		10

struct ZdUpsert
{
	const ZdResource *res;
	ZdRowMapper *mapper;
	TupleDesc	tupdesc;
	char	   *qualname;

	/* params are the table's columns listed in param_att, in that order */
	int			nparams;
	int		   *param_att;
	Oid		   *argtypes;
	int			id_param;
	int			version_param;	/* -1: the table has no version column */
	int			data_param;		/* -1: no data column */

	/* statement text around the VALUES rows */
	char	   *sql_head;		/* INSERT INTO ... (cols) VALUES */
	char	   *sql_tail;		/* ON CONFLICT ... WHERE <guard> */

	/* plans[k]: 2^k rows, prepared on first use; max_batch = 2^(nsizes-1) */
	SPIPlanPtr	plans[ZD_UPSERT_NSIZES];
	int			nsizes;

	/*
	 * One record per id needs ids and versions that can be compared: a
	 * bigint (or integer) id, and a version type with a btree comparison.
	 * Otherwise every record is its own statement, in page order.
	 */
	bool		batched;
	FmgrInfo   *version_cmp;	/* btree comparison of the version column */
	FmgrInfo   *data_eq;		/* equality of the data column */
	Oid			version_collation;
	Oid			data_collation;

	MemoryContext cxt;			/* the stream's: plans' owner, buffers */
	MemoryContext page_cxt;		/* reset per page: the page's Datums */
	MemoryContext record_cxt;	/* reset per record: conversion garbage */
	Datum	   *values;			/* one record, natts */
	bool	   *isnull;
	int16	   *typlen;			/* per param, to copy a record's Datums */
	bool	   *typbyval;

	/*
	 * jsonb columns other than data (via, custom_fields, child_events, ...)
	 * hold values that data holds too: they are cut out of data's jsonb
	 * instead of being built again from the JSON tree.  slice_key[p] is the
	 * JSON key of param p, or NULL.
	 */
	char	  **slice_key;
	int			nslices;
};

/* Text of a plan for nrows rows; allocated in CurrentMemoryContext. */
static char *
build_sql(ZdUpsert *up, int nrows)
{
	StringInfoData sql;
	int			p = 1;

	initStringInfo(&sql);
	appendStringInfoString(&sql, up->sql_head);
	for (int r = 0; r < nrows; r++)
	{
		appendStringInfoString(&sql, r > 0 ? ", (" : " (");
		for (int c = 0; c < up->nparams; c++)
			appendStringInfo(&sql, c > 0 ? ", $%d" : "$%d", p++);
		appendStringInfoChar(&sql, ')');
	}
	appendStringInfoString(&sql, up->sql_tail);
	return sql.data;
}

/* The plan for 2^k rows, prepared on first use and kept for the stream. */
static SPIPlanPtr
plan_for(ZdUpsert *up, int k)
{
	if (up->plans[k] == NULL)
	{
		int			nrows = 1 << k;
		MemoryContext old = MemoryContextSwitchTo(up->page_cxt);
		Oid		   *argtypes = palloc(sizeof(Oid) * up->nparams * nrows);
		char	   *sql;
		SPIPlanPtr	plan;

		for (int r = 0; r < nrows; r++)
			memcpy(argtypes + r * up->nparams, up->argtypes, sizeof(Oid) * up->nparams);
		sql = build_sql(up, nrows);
		MemoryContextSwitchTo(old);

		/*
		 * A generic plan from the first execution on: a custom plan would
		 * plan the statement again for every call.
		 */
		plan = SPI_prepare_cursor(sql, up->nparams * nrows, argtypes,
								  CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL)
			elog(ERROR, "zendesk_sync: could not prepare upsert: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "zendesk_sync: could not keep the upsert plan");
		up->plans[k] = plan;
	}
	return up->plans[k];
}

/*
 * Build the mapper and the statement text for the local table as it is now
 * (users may have added columns).
 */
ZdUpsert *
zd_upsert_prepare(const ZdResource *res, Oid relid, MemoryContext cxt)
{
	ZdUpsert   *up = MemoryContextAllocZero(cxt, sizeof(ZdUpsert));
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	StringInfoData cols,
				sets,
				sql;
	char	  **keys;
	bool		has_synced_at = false;
	const char *version = res->version_column;
	int			max_rows;

	up->res = res;
	up->cxt = cxt;
	up->id_param = up->version_param = up->data_param = -1;
	up->qualname = psprintf("%s.%s",
							quote_identifier(get_namespace_name(RelationGetNamespace(rel))),
							quote_identifier(RelationGetRelationName(rel)));
	up->tupdesc = CreateTupleDescCopy(desc);
	keys = palloc0(sizeof(char *) * desc->natts);
	up->param_att = palloc(sizeof(int) * desc->natts);
	up->argtypes = palloc(sizeof(Oid) * desc->natts);
	up->typlen = palloc(sizeof(int16) * desc->natts);
	up->typbyval = palloc(sizeof(bool) * desc->natts);
	initStringInfo(&cols);
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
		if (strcmp(name, "id") == 0)
			up->id_param = up->nparams;
		if (strcmp(name, "data") == 0)
			up->data_param = up->nparams;
		if (strcmp(name, version) == 0)
			up->version_param = up->nparams;

		up->argtypes[up->nparams] = att->atttypid;
		up->typlen[up->nparams] = att->attlen;
		up->typbyval[up->nparams] = att->attbyval;
		up->param_att[up->nparams++] = i;
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", q);
		if (strcmp(name, "id") != 0)
			appendStringInfo(&sets, "%s%s = EXCLUDED.%s", sets.len ? ", " : "", q, q);
	}
	if (has_synced_at)
		appendStringInfo(&sets, "%ssynced_at = now()", sets.len ? ", " : "");

	up->slice_key = palloc0(sizeof(char *) * Max(up->nparams, 1));
	if (up->data_param >= 0 && up->argtypes[up->data_param] == JSONBOID)
	{
		for (int p = 0; p < up->nparams; p++)
		{
			int			a = up->param_att[p];

			if (p == up->data_param || up->argtypes[p] != JSONBOID)
				continue;
			up->slice_key[p] = keys[a];
			keys[a] = NULL;		/* the mapper leaves it NULL */
			up->nslices++;
		}
	}

	if (up->id_param < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table %s has no column \"id\"", up->qualname),
				 errhint("zendesk_sync upserts by id; drop the table to have it recreated.")));

	up->sql_head = psprintf("INSERT INTO %s AS t (%s) VALUES", up->qualname, cols.data);
	initStringInfo(&sql);
	appendStringInfo(&sql, " ON CONFLICT (id) DO UPDATE SET %s WHERE ", sets.data);
	if (up->version_param >= 0)
	{
		const char *v = quote_identifier(version);

		appendStringInfo(&sql, "t.%s < EXCLUDED.%s OR t.%s IS NULL", v, v, v);
		if (up->data_param >= 0)
			appendStringInfo(&sql, " OR (t.%s IS NOT DISTINCT FROM EXCLUDED.%s AND t.data IS DISTINCT FROM EXCLUDED.data)",
							 v, v);
	}
	else
		appendStringInfoString(&sql, up->data_param >= 0 ? "t.data IS DISTINCT FROM EXCLUDED.data" : "true");
	up->sql_tail = sql.data;

	/*
	 * Batching needs ids to tell duplicates apart and a way to pick the
	 * record that applying them one by one would leave.
	 */
	{
		Oid			idtype = up->argtypes[up->id_param];

		up->batched = (idtype == INT8OID || idtype == INT4OID || idtype == INT2OID);
	}
	if (up->batched && up->version_param >= 0)
	{
		Form_pg_attribute att = TupleDescAttr(desc, up->param_att[up->version_param]);
		TypeCacheEntry *tc = lookup_type_cache(att->atttypid, TYPECACHE_CMP_PROC_FINFO);

		if (OidIsValid(tc->cmp_proc_finfo.fn_oid))
		{
			up->version_cmp = palloc(sizeof(FmgrInfo));
			fmgr_info_copy(up->version_cmp, &tc->cmp_proc_finfo, cxt);
			up->version_collation = att->attcollation;
		}
		else
			up->batched = false;
	}
	if (up->batched && up->data_param >= 0)
	{
		Form_pg_attribute att = TupleDescAttr(desc, up->param_att[up->data_param]);
		TypeCacheEntry *tc = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR_FINFO);

		if (OidIsValid(tc->eq_opr_finfo.fn_oid))
		{
			up->data_eq = palloc(sizeof(FmgrInfo));
			fmgr_info_copy(up->data_eq, &tc->eq_opr_finfo, cxt);
			up->data_collation = att->attcollation;
		}
		else
			up->batched = false;
	}

	/* batch sizes 1, 2, 4, ... up to the largest that fits */
	max_rows = up->batched ? Min(ZD_UPSERT_MAX_BATCH, ZD_UPSERT_MAX_PARAMS / up->nparams) : 1;
	up->nsizes = 1;
	while (up->nsizes < ZD_UPSERT_NSIZES && (1 << up->nsizes) <= max_rows)
		up->nsizes++;

	up->mapper = zd_mapper_create(up->tupdesc, keys, RelationGetRelationName(rel));
	up->values = palloc(sizeof(Datum) * desc->natts);
	up->isnull = palloc(sizeof(bool) * desc->natts);
	up->page_cxt = AllocSetContextCreate(cxt, "zendesk_sync page rows", ALLOCSET_DEFAULT_SIZES);

	/*
	 * Converting a record leaves garbage (jsonb is built through a tree of
	 * JsonbValues) several times the size of its Datums: it goes to a
	 * context reset per record, whose first block is kept across resets.
	 */
	up->record_cxt = AllocSetContextCreate(cxt, "zendesk_sync record",
										   256 * 1024, 256 * 1024, ALLOCSET_DEFAULT_MAXSIZE);
	MemoryContextSwitchTo(old);

	table_close(rel, AccessShareLock);
	return up;
}

/*
 * Would the version guard let record b overwrite a row holding record a?
 * The guard is: a.v < b.v OR a.v IS NULL OR (a.v IS NOT DISTINCT FROM b.v
 * AND a.data IS DISTINCT FROM b.data).
 */
static bool
overwrites(ZdUpsert *up, const Datum *a, const char *an, const Datum *b, const char *bn)
{
	if (up->version_param >= 0)
	{
		int			v = up->version_param;
		int			c;

		if (an[v] == 'n')
			return true;
		if (bn[v] == 'n')
			return false;
		c = DatumGetInt32(FunctionCall2Coll(up->version_cmp, up->version_collation, a[v], b[v]));
		if (c != 0)
			return c < 0;
		if (up->data_param < 0)
			return false;		/* the same version, and no data to compare */
	}
	if (up->data_param >= 0)
	{
		int			d = up->data_param;

		if (an[d] == 'n' || bn[d] == 'n')
			return an[d] != bn[d];
		return !DatumGetBool(FunctionCall2Coll(up->data_eq, up->data_collation, a[d], b[d]));
	}
	/* no version, no data: the guard is "true", the later record wins */
	return true;
}

static int64
id_value(ZdUpsert *up, Datum d)
{
	switch (up->argtypes[up->id_param])
	{
		case INT8OID:
			return DatumGetInt64(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt16(d);
	}
}

/*
 * Keep one record per id, in place: rows[0..n) (params in rows, nulls in
 * nulls, nparams each) become the records that applying them one by one
 * would leave, in the order of their first occurrence.  Returns the count.
 *
 * Applying a then b leaves what applying only the one that overwrites the
 * other leaves: if b overwrites a (newer, or equal with other data), b's
 * version is at least a's, so any row a could overwrite b can too; if it
 * does not, any row that a could not overwrite b cannot either.  Equal data
 * gives equal rows either way.  Folding left to right extends it to any
 * number of duplicates.
 */
static int
keep_newer(ZdUpsert *up, Datum *rows, char *nulls, int n)
{
	int			np = up->nparams;
	int			size = 16;
	int		   *slots;
	int			out = 0;

	while (size < 2 * n)
		size <<= 1;
	slots = palloc(sizeof(int) * size);
	memset(slots, -1, sizeof(int) * size);

	for (int i = 0; i < n; i++)
	{
		Datum	   *row = rows + (size_t) i * np;
		char	   *rn = nulls + (size_t) i * np;
		int64		id = id_value(up, row[up->id_param]);
		uint32		h = (uint32) (((uint64) id * UINT64CONST(0x9E3779B97F4A7C15)) >> 32);
		int			s = h & (size - 1);

		while (slots[s] >= 0 &&
			   id_value(up, rows[(size_t) slots[s] * np + up->id_param]) != id)
			s = (s + 1) & (size - 1);

		if (slots[s] < 0)
		{
			/* first occurrence: move down to the next free place */
			if (out != i)
			{
				memcpy(rows + (size_t) out * np, row, sizeof(Datum) * np);
				memcpy(nulls + (size_t) out * np, rn, np);
			}
			slots[s] = out++;
		}
		else
		{
			Datum	   *kept = rows + (size_t) slots[s] * np;
			char	   *keptn = nulls + (size_t) slots[s] * np;

			if (overwrites(up, kept, keptn, row, rn))
			{
				memcpy(kept, row, sizeof(Datum) * np);
				memcpy(keptn, rn, np);
			}
		}
	}
	pfree(slots);
	return out;
}

static void
execute(ZdUpsert *up, int k, Datum *params, char *nulls)
{
	int			rc = SPI_execute_plan(plan_for(up, k), params, nulls, false, 0);

	if (rc != SPI_OK_INSERT)
		elog(ERROR, "zendesk_sync: upsert failed: %s", SPI_result_code_string(rc));
}

/*
 * The jsonb columns other than data, cut out of data (a JSON null or a
 * missing key is SQL NULL, as the mapper makes it).  The slice is the same
 * jsonb that converting the value on its own gives: data's nested values
 * went through the same conversion.  Allocates in CurrentMemoryContext.
 */
static void
slice_columns(ZdUpsert *up, Jsonb *data, Datum *row, char *rn)
{
	for (int p = 0; p < up->nparams; p++)
	{
		const char *key = up->slice_key[p];
		JsonbValue	buf;
		JsonbValue *v;

		if (key == NULL)
			continue;
		v = JB_ROOT_IS_OBJECT(data) ?
			getKeyJsonValueFromContainer(&data->root, key, strlen(key), &buf) : NULL;
		if (v == NULL || v->type == jbvNull)
		{
			rn[p] = 'n';
			row[p] = (Datum) 0;
		}
		else
		{
			rn[p] = ' ';
			row[p] = JsonbPGetDatum(JsonbValueToJsonb(v));
		}
	}
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
	int			np = up->nparams;
	int			n = 0;
	int			done;
	Datum	   *rows;
	char	   *nulls;
	MemoryContext old;

	MemoryContextReset(up->page_cxt);
	rows = MemoryContextAlloc(up->page_cxt, sizeof(Datum) * np * Max(page->nrecords, 1));
	nulls = MemoryContextAlloc(up->page_cxt, np * Max(page->nrecords, 1));

	/* every record into params, in page order (errors name the record) */
	for (int i = 0; i < page->nrecords; i++)
	{
		struct json_object *rec = zd_page_record(page, i);
		Datum	   *row = rows + (size_t) n * np;
		char	   *rn = nulls + (size_t) n * np;
		int64		ts;

		if (zd_export_is_repeat(exp, rec))
			continue;
		MemoryContextReset(up->record_cxt);
		old = MemoryContextSwitchTo(up->record_cxt);
		zd_mapper_fill(up->mapper, rec, up->values, up->isnull);
		MemoryContextSwitchTo(up->page_cxt);
		for (int p = 0; p < np; p++)
		{
			int			a = up->param_att[p];

			rn[p] = up->isnull[a] ? 'n' : ' ';
			row[p] = (up->isnull[a] || up->typbyval[p]) ? up->values[a] :
				datumCopy(up->values[a], false, up->typlen[p]);
		}
		if (up->nslices > 0 && rn[up->data_param] != 'n')
			slice_columns(up, DatumGetJsonbP(row[up->data_param]), row, rn);
		MemoryContextSwitchTo(old);
		if (rn[up->id_param] == 'n')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("Zendesk %s record #%d of page %d has no id",
							up->res->name, i + 1, pageno)));
		if (zd_record_change_time(up->res, rec, &ts) && (!*has_newest || ts > *newest))
		{
			*newest = ts;
			*has_newest = true;
		}
		n++;
	}
	MemoryContextReset(up->record_cxt);

	if (!up->batched)
	{
		for (int i = 0; i < n; i++)
			execute(up, 0, rows + (size_t) i * np, nulls + (size_t) i * np);
		return n;
	}

	/* one record per id, then the largest statements that fit */
	{
		int			left = keep_newer(up, rows, nulls, n);

		done = 0;
		for (int k = up->nsizes - 1; k >= 0; k--)
		{
			while (left - done >= (1 << k))
			{
				execute(up, k, rows + (size_t) done * np, nulls + (size_t) done * np);
				done += 1 << k;
			}
		}
	}

	return n;
}

void
zd_upsert_free(ZdUpsert *up)
{
	for (int k = 0; k < ZD_UPSERT_NSIZES; k++)
	{
		if (up->plans[k])
			SPI_freeplan(up->plans[k]);
		up->plans[k] = NULL;
	}
}
