/*-------------------------------------------------------------------------
 *
 * fdw_scan.c
 *		  Executor callbacks for zendesk_fdw foreign scans.
 *
 * A scan streams: it holds one export page (in the export's page context,
 * reset per fetch) and asks for the next page only when the executor wants
 * a row the current page does not have, so LIMIT 5 costs one request.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "zendesk_fdw.h"

typedef struct ZdScanState
{
	const ZdResource *res;
	ZdConnection *conn;			/* NULL for EXPLAIN without ANALYZE */
	ZdRowMapper *mapper;
	int64		start_time;
	int			per_page;
	char	   *request_desc;	/* for EXPLAIN */

	ZdExport	exp;
	bool		started;
	int			next_record;	/* index into exp.page.records */
	MemoryContext tuple_cxt;	/* reset per row */
	long		requests;
} ZdScanState;

void
zdBeginForeignScan(ForeignScanState *node, int eflags)
{
	Relation	rel = node->ss.ss_currentRelation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	ForeignTable *table = GetForeignTable(relid);
	ZdScanState *st = palloc0(sizeof(ZdScanState));
	ZdServerOptions *opts;
	char	  **keys;
	Oid			userid;

	node->fdw_state = st;
	st->res = zd_resource_by_name(zd_table_resource_name(relid));
	if (st->res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("foreign table \"%s\" has an unknown resource",
						RelationGetRelationName(rel))));

	/* the checkAsUser of the scan, as postgres_fdw does */
#if PG_VERSION_NUM >= 160000
	userid = OidIsValid(((ForeignScan *) node->ss.ps.plan)->checkAsUser) ?
		((ForeignScan *) node->ss.ps.plan)->checkAsUser : GetUserId();
#else
	{
		RangeTblEntry *rte = exec_rt_fetch(((ForeignScan *) node->ss.ps.plan)->scan.scanrelid,
										   node->ss.ps.state);

		userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	}
#endif

	opts = zd_get_server_options(table->serverid, userid, false);
	st->start_time = opts->start_date;
	st->per_page = opts->page_size;
	st->request_desc = zd_export_describe(st->res, NULL, st->start_time,
										  st->per_page);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	st->conn = zd_get_connection(table->serverid, userid);

	keys = palloc0(sizeof(char *) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped)
			keys[i] = zd_column_key(relid, att->attnum, NameStr(att->attname));
	}
	st->mapper = zd_mapper_create(tupdesc, keys, RelationGetRelationName(rel));
	st->tuple_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										  "zendesk_fdw tuple",
										  ALLOCSET_DEFAULT_SIZES);
}

static void
start_export(ForeignScanState *node)
{
	ZdScanState *st = (ZdScanState *) node->fdw_state;

	zd_export_init(&st->exp, st->conn, st->res, NULL, st->start_time,
				   st->per_page, node->ss.ps.state->es_query_cxt);
	st->started = true;
	st->next_record = 0;
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
		start_export(node);

	for (;;)
	{
		while (st->next_record >= st->exp.page.nrecords)
		{
			ZdPageResult r = zd_export_next_page(&st->exp);

			if (r == ZD_PAGE_DONE)
				return slot;
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
			break;
	}

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

	if (st->started)
		zd_export_end(&st->exp);
	st->started = false;
}

void
zdEndForeignScan(ForeignScanState *node)
{
	ZdScanState *st = (ZdScanState *) node->fdw_state;

	if (st && st->started)
		zd_export_end(&st->exp);
}

void
zdExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ZdScanState *st = (ZdScanState *) node->fdw_state;

	ExplainPropertyText("Zendesk resource", st->res->name, es);
	if (es->verbose)
		ExplainPropertyText("Zendesk request", st->request_desc, es);
	if (es->analyze)
		ExplainPropertyInteger("Zendesk requests", NULL, st->requests, es);
}
