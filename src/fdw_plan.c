/*-------------------------------------------------------------------------
 *
 * fdw_plan.c
 *		  Planner callbacks and IMPORT FOREIGN SCHEMA for zendesk_fdw.
 *
 * Every request costs far more than any local work, so the cost model is a
 * high startup cost per scan plus a per-row cost.  All quals are evaluated
 * locally; the scan reads the incremental export, which also sees archived
 * and deleted records that list endpoints omit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "foreign/fdwapi.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "zendesk_fdw.h"

/* Documented in README.md, "Costs". */
#define ZD_STARTUP_COST		10000.0
#define ZD_PER_ROW_COST		1.0
#define ZD_DEFAULT_ROWS		1000.0

void
zdGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	/* validates the resource early, so a broken table fails at plan time */
	(void) zd_table_resource_name(foreigntableid);
	baserel->rows = ZD_DEFAULT_ROWS;
}

void
zdGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	Cost		startup = ZD_STARTUP_COST;
	Cost		total = startup + baserel->rows * ZD_PER_ROW_COST;

	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
#if PG_VERSION_NUM >= 180000
									 0,
#endif
									 startup, total, NIL, NULL, NULL,
#if PG_VERSION_NUM >= 170000
									 NIL,
#endif
									 NIL));
}

ForeignScan *
zdGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				 ForeignPath *best_path, List *tlist, List *scan_clauses,
				 Plan *outer_plan)
{
	/* nothing is pushed down: every qual is checked locally */
	scan_clauses = extract_actual_clauses(scan_clauses, false);

	return make_foreignscan(tlist, scan_clauses, baserel->relid, NIL, NIL,
							NIL, NIL, outer_plan);
}

/*
 * IMPORT FOREIGN SCHEMA zendesk: one foreign table per resource, with the
 * columns from resource.c.
 */
List *
zdImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	List	   *commands = NIL;
	ForeignServer *server = GetForeignServer(serverOid);

	if (strcmp(stmt->remote_schema, "zendesk") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("schema \"%s\" does not exist on a Zendesk server",
						stmt->remote_schema),
				 errhint("Use IMPORT FOREIGN SCHEMA zendesk FROM SERVER %s INTO ...",
						 quote_identifier(server->servername))));

	for (int i = 0; i < zd_nresources; i++)
	{
		const ZdResource *res = zd_resources[i];
		bool		wanted = true;
		ListCell   *lc;

		if (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO)
		{
			wanted = false;
			foreach(lc, stmt->table_list)
				if (strcmp(((RangeVar *) lfirst(lc))->relname, res->name) == 0)
					wanted = true;
		}
		else if (stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT)
		{
			foreach(lc, stmt->table_list)
				if (strcmp(((RangeVar *) lfirst(lc))->relname, res->name) == 0)
					wanted = false;
		}
		if (!wanted)
			continue;

		commands = lappend(commands,
						   psprintf("CREATE FOREIGN TABLE %s (\n%s\n) SERVER %s OPTIONS (resource %s)",
									quote_identifier(res->name),
									zd_resource_column_ddl(res, true),
									quote_identifier(server->servername),
									quote_literal_cstr(res->name)));
	}
	return commands;
}
