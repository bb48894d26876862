/*-------------------------------------------------------------------------
 *
 * fdw_scan.c
 *		  Executor callbacks for zendesk_fdw foreign scans.
 *
 * A scan streams: it holds one response (an export page, or a show /
 * show_many response) in a context reset per fetch, and asks for the next one
 * only when the executor wants a row the current one does not have, so
 * LIMIT 5 costs one request.
 *
 * What the planner pushed (fdw_plan.c) is evaluated when the scan starts and
 * again on every rescan (a nested loop's parameter changes): the id values
 * of a lookup, or the lower bounds that become the export's start_time.  A
 * NULL value can match nothing, so the scan then returns no row without a
 * request.  Every pushed qual is still rechecked by the plan's quals.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "zendesk_fdw.h"

typedef struct ZdScanState
{
	const ZdResource *res;
	ZdConnection *conn;			/* NULL for EXPLAIN without ANALYZE */
	ZdRowMapper *mapper;
	int64		start_date;		/* the server's start_date option */
	int			per_page;
	char	   *request_desc;	/* for EXPLAIN */

	/* what the planner pushed */
	ZdLookupKind lookup;
	List	   *value_states;	/* ExprState per fdw_exprs entry */
	List	   *value_types;	/* their result types (OID list) */
	List	   *pushed;			/* positions in plan.qual, for EXPLAIN */

	/* this (re)scan */
	bool		started;
	bool		no_rows;		/* a pushed value was NULL */
	ZdExport	exp;			/* lookup == ZD_LOOKUP_NONE */
	ZdShowReader show;			/* otherwise */
	bool		reading;		/* exp or show initialized */
	int			next_record;	/* index into the current response */
	MemoryContext scan_cxt;		/* evaluated values; reset per (re)scan */
	MemoryContext tuple_cxt;	/* reset per row */
	long		requests;
} ZdScanState;

/* "start_time=<bound>" in place of the option's start time, for EXPLAIN */
static char *
describe_bounded_export(const ZdResource *res, int per_page)
{
	char	   *desc = zd_export_describe(res, NULL, 0, per_page);
	const char *needle = "start_time=0";
	char	   *at = strstr(desc, needle);

	if (at == NULL)
		return desc;
	return psprintf("%.*sstart_time=<pushed lower bound>%s",
					(int) (at - desc), desc, at + strlen(needle));
}

void
zdBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	ForeignTable *table = GetForeignTable(relid);
	ZdScanState *st = palloc0(sizeof(ZdScanState));
	ZdServerOptions *opts;
	char	  **keys;
	Oid			userid;
	int			plan_per_page;
	ListCell   *lc;

	node->fdw_state = st;
	st->res = zd_resource_by_name(zd_table_resource_name(relid));
	if (st->res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("foreign table \"%s\" has an unknown resource",
						RelationGetRelationName(rel))));

	/* the checkAsUser of the scan, as postgres_fdw does */
#if PG_VERSION_NUM >= 160000
	userid = OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
	{
		RangeTblEntry *rte = exec_rt_fetch(fsplan->scan.scanrelid,
										   node->ss.ps.state);

		userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	}
#endif

	st->lookup = (ZdLookupKind) intVal(list_nth(fsplan->fdw_private, ZD_PRIV_LOOKUP));
	plan_per_page = intVal(list_nth(fsplan->fdw_private, ZD_PRIV_PER_PAGE));
	st->pushed = (List *) list_nth(fsplan->fdw_private, ZD_PRIV_PUSHED);

	opts = zd_get_server_options(table->serverid, userid, false);
	st->start_date = opts->start_date;
	st->per_page = opts->page_size;
	if (plan_per_page > 0)
		st->per_page = Min(plan_per_page, opts->page_size);

	if (st->lookup != ZD_LOOKUP_NONE)
		st->request_desc = zd_show_describe(st->res, st->lookup == ZD_LOOKUP_ID_ANY);
	else if (fsplan->fdw_exprs != NIL)
		st->request_desc = describe_bounded_export(st->res, st->per_page);
	else
		st->request_desc = zd_export_describe(st->res, NULL, st->start_date,
											  st->per_page);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	foreach(lc, fsplan->fdw_exprs)
	{
		Expr	   *expr = (Expr *) lfirst(lc);

		st->value_states = lappend(st->value_states,
								   ExecInitExpr(expr, (PlanState *) node));
		st->value_types = lappend_oid(st->value_types, exprType((Node *) expr));
	}

	st->conn = zd_get_connection(table->serverid, userid);

	keys = palloc0(sizeof(char *) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped)
			keys[i] = zd_column_key(relid, att->attnum, NameStr(att->attname));
	}
	st->mapper = zd_mapper_create(tupdesc, keys, RelationGetRelationName(rel));
	st->scan_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										 "zendesk_fdw scan",
										 ALLOCSET_SMALL_SIZES);
	st->tuple_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										  "zendesk_fdw tuple",
										  ALLOCSET_DEFAULT_SIZES);
}

/* an integer Datum of type typid as int64 */
static int64
int_datum(Datum d, Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			Assert(typid == INT8OID);
			return DatumGetInt64(d);
	}
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Unix epoch second at or before a date/timestamp/timestamptz value (floor,
 * as start_time is inclusive): a valid start_time for "col > v" and
 * "col >= v".  -infinity gives 0, +infinity a value the clamp brings down.
 */
static int64
bound_epoch(Datum d, Oid typid)
{
	TimestampTz ts;
	int64		secs;

	if (typid == DATEOID)
		ts = DatumGetTimestampTz(DirectFunctionCall1(date_timestamptz, d));
	else if (typid == TIMESTAMPOID)
		ts = DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, d));
	else
		ts = DatumGetTimestampTz(d);

	if (TIMESTAMP_IS_NOBEGIN(ts))
		return 0;
	if (TIMESTAMP_IS_NOEND(ts))
		return PG_INT64_MAX / 2;
	secs = ts / USECS_PER_SEC;
	if (ts % USECS_PER_SEC < 0)
		secs--;
	return secs + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

/*
 * Evaluate the pushed values and open the export or the show reader.  Sets
 * st->no_rows when a value is NULL (or an id list is empty): then nothing can
 * match and no request is made.
 */
static void
start_scan(ForeignScanState *node)
{
	ZdScanState *st = (ZdScanState *) node->fdw_state;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext query_cxt = node->ss.ps.state->es_query_cxt;
	MemoryContext oldcxt;
	int64		start_time = st->start_date;
	int64	   *ids = NULL;
	int			nids = 0;
	ListCell   *lc_state;
	ListCell   *lc_type;

	MemoryContextReset(st->scan_cxt);
	st->started = true;
	st->no_rows = false;
	st->next_record = 0;

	oldcxt = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	forboth(lc_state, st->value_states, lc_type, st->value_types)
	{
		ExprState  *state = (ExprState *) lfirst(lc_state);
		Oid			typid = lfirst_oid(lc_type);
		bool		isnull;
		Datum		value = ExecEvalExpr(state, econtext, &isnull);

		if (isnull)
		{
			st->no_rows = true;
			break;
		}
		if (st->lookup == ZD_LOOKUP_ID_EQ)
		{
			ids = MemoryContextAlloc(st->scan_cxt, sizeof(int64));
			ids[0] = int_datum(value, typid);
			nids = 1;
		}
		else if (st->lookup == ZD_LOOKUP_ID_ANY)
		{
			ArrayType  *arr = DatumGetArrayTypeP(value);
			Oid			elemtype = ARR_ELEMTYPE(arr);
			int16		typlen;
			bool		typbyval;
			char		typalign;
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
			deconstruct_array(arr, elemtype, typlen, typbyval, typalign,
							  &elems, &nulls, &n);
			ids = MemoryContextAlloc(st->scan_cxt, sizeof(int64) * Max(n, 1));
			for (int i = 0; i < n; i++)
				if (!nulls[i])	/* id = NULL is never true */
					ids[nids++] = int_datum(elems[i], elemtype);
			/* each id once, so no row comes twice and batches are full */
			if (nids > 1)
			{
				int			m = 1;

				qsort(ids, nids, sizeof(int64), cmp_int64);
				for (int i = 1; i < nids; i++)
					if (ids[i] != ids[m - 1])
						ids[m++] = ids[i];
				nids = m;
			}
			if (nids == 0)
				st->no_rows = true;
		}
		else
			start_time = Max(start_time, bound_epoch(value, typid));
	}
	MemoryContextSwitchTo(oldcxt);
	ResetExprContext(econtext);

	if (st->no_rows)
		return;
	if (st->lookup != ZD_LOOKUP_NONE)
		zd_show_init(&st->show, st->conn, st->res, ids, nids, query_cxt);
	else
		zd_export_init(&st->exp, st->conn, st->res, NULL, start_time,
					   st->per_page, query_cxt);
	st->reading = true;
}

static void
end_reading(ZdScanState *st)
{
	if (!st->reading)
		return;
	if (st->lookup != ZD_LOOKUP_NONE)
		zd_show_end(&st->show);
	else
		zd_export_end(&st->exp);
	st->reading = false;
}

/* the next record of a lookup, or NULL when there is none */
static struct json_object *
next_show_record(ZdScanState *st)
{
	while (st->next_record >= st->show.nrecords)
	{
		if (!zd_show_next(&st->show))
			return NULL;
		st->requests++;
		st->next_record = 0;
	}
	return zd_show_record(&st->show, st->next_record++);
}

/* the next record of the export, or NULL at its end */
static struct json_object *
next_export_record(ZdScanState *st)
{
	for (;;)
	{
		struct json_object *record;

		while (st->next_record >= st->exp.page.nrecords)
		{
			ZdPageResult r = zd_export_next_page(&st->exp);

			if (r == ZD_PAGE_DONE)
				return NULL;
			/* a scan never sends a cursor of its own, but be explicit */
			if (r == ZD_PAGE_CURSOR_REJECTED)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Zendesk rejected the export cursor (HTTP %d)",
								st->exp.rejected_status)));
			st->requests++;
			st->next_record = 0;
		}
		record = zd_page_record(&st->exp.page, st->next_record++);
		/* a time-based page repeats the previous page's last second */
		if (!zd_export_is_repeat(&st->exp, record))
			return record;
	}
}

TupleTableSlot *
zdIterateForeignScan(ForeignScanState *node)
{
	ZdScanState *st = (ZdScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	struct json_object *record;
	MemoryContext oldcxt;

	ExecClearTuple(slot);
	if (!st->started)
		start_scan(node);
	if (st->no_rows)
		return slot;

	if (st->lookup != ZD_LOOKUP_NONE)
		record = next_show_record(st);
	else
		record = next_export_record(st);
	if (record == NULL)
		return slot;

	MemoryContextReset(st->tuple_cxt);
	oldcxt = MemoryContextSwitchTo(st->tuple_cxt);
	zd_mapper_fill(st->mapper, record, slot->tts_values, slot->tts_isnull);
	MemoryContextSwitchTo(oldcxt);
	return ExecStoreVirtualTuple(slot);
}

void
zdReScanForeignScan(ForeignScanState *node)
{
	ZdScanState *st = (ZdScanState *) node->fdw_state;

	/* values are evaluated again: a nested loop's parameter may have moved */
	end_reading(st);
	st->started = false;
}

void
zdEndForeignScan(ForeignScanState *node)
{
	ZdScanState *st = (ZdScanState *) node->fdw_state;

	if (st)
		end_reading(st);
}

/*
 * The pushed quals as SQL.  They are members of plan.qual, which EXPLAIN has
 * just shown as "Filter": show_scan_qual() runs before this callback and
 * leaves es->deparse_cxt set up for this plan node and its ancestors, so
 * nestloop parameters print as the outer columns they stand for.  (Nothing
 * pushed means nothing to print; plan.qual is never empty otherwise.)
 */
static char *
describe_pushed(ForeignScanState *node, ZdScanState *st, ExplainState *es)
{
	List	   *qual = node->ss.ps.plan->qual;
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, st->pushed)
	{
		int			position = intVal(lfirst(lc));

		if (position < 0 || position >= list_length(qual))
			continue;
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? " AND " : "",
						 deparse_expression((Node *) list_nth(qual, position),
											es->deparse_cxt, true, false));
	}
	return buf.data;
}

void
zdExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ZdScanState *st = (ZdScanState *) node->fdw_state;

	ExplainPropertyText("Zendesk resource", st->res->name, es);
	if (es->verbose)
	{
		if (st->pushed != NIL && node->ss.ps.plan->qual != NIL)
			ExplainPropertyText("Zendesk pushed", describe_pushed(node, st, es), es);
		ExplainPropertyText("Zendesk request", st->request_desc, es);
	}
	if (es->analyze)
		ExplainPropertyInteger("Zendesk requests", NULL, st->requests, es);
}
