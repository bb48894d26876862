/*-------------------------------------------------------------------------
 *
 * fdw_plan.c
 *		  Planner callbacks and IMPORT FOREIGN SCHEMA for zendesk_fdw.
 *
 * What is pushed down (every pushed qual also stays in the plan's qual list
 * and is rechecked locally, so a pushdown can only save requests, never
 * change an answer; a qual that is not pushed is simply evaluated locally):
 *
 * - id = v, id IN (...), id = ANY (array), where v is a constant, a
 *   parameter, a stable expression, or (parameterized path of a nested loop)
 *   a column of the outer side: the show endpoint for one id, show_many in
 *   batches of 100 for several (show.c).  ticket_events has no show endpoint.
 * - col > v, col >= v, col = v (and v < col, ...) on a change time, where v
 *   is a date/timestamp/timestamptz constant, parameter or stable expression
 *   (now() - interval '1 hour'), evaluated at execution: the largest such
 *   bound becomes the export's start_time (never later than the hold-back
 *   allows: zd_clamp_start_time).  The columns are those whose bound is a
 *   valid start_time: tickets generated_timestamp (what the export filters
 *   on) and updated_at (generated_timestamp >= updated_at), ticket_events
 *   timestamp and created_at (the same instant), users and organizations
 *   updated_at.  The export still returns archived and deleted records.
 * - LIMIT n with no qual on the scan and nothing between the scan and the
 *   LIMIT that could drop or reorder rows: per_page = n.
 *
 * Cost model (documented in README.md, "Costs"): a request costs
 * ZD_REQUEST_COST, each record received ZD_PER_ROW_COST, and a table is
 * assumed to hold its rows_estimate option (default ZD_DEFAULT_ROWS_ESTIMATE)
 * records.  A full export is
 * ceil(rows / page_size) requests; an id lookup one request per id, or per
 * 100 ids with show_many; a parameterized lookup one request per outer row,
 * so a nested loop over a few outer rows beats a full export.  There is no
 * AnalyzeForeignTable: ANALYZE skips these tables and never spends quota.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "zendesk_fdw.h"

/* The cost model.  Documented in README.md, "Costs". */
#define ZD_REQUEST_COST		10000.0 /* one HTTP request: its startup cost */
#define ZD_PER_ROW_COST		10.0	/* receive, parse and map one record */
#define ZD_DEFAULT_ANY_IDS	10.0	/* ids assumed in id = ANY(<parameter>) */

/* pg_catalog.datetime_ops (btree), which has no OID macro */
#define ZD_DATETIME_BTREE_FAM_OID	434

/* Per-relation planning state, in baserel->fdw_private. */
typedef struct ZdRelInfo
{
	const ZdResource *res;		/* NULL: unknown resource (the scan says so) */
	Bitmapset  *id_attnos;		/* integer columns holding the record id,
								 * when the resource has a show endpoint */
	Bitmapset  *bound_attnos;	/* timestamptz columns whose lower bound is a
								 * valid start_time */
	int			page_size;
	double		table_rows;		/* table option rows_estimate */
	Cost		startup_cost;	/* of the unparameterized path */
	Cost		total_cost;
} ZdRelInfo;

/* A qual the scan can use. */
typedef struct ZdQual
{
	ZdLookupKind lookup;		/* an id qual, or ZD_LOOKUP_NONE */
	bool		is_bound;		/* a lower bound on a change time */
	Expr	   *value;			/* the side that is not our column */
	double		nids;			/* ids known at plan time, -1 unknown */
} ZdQual;

/*
 * JSON keys whose lower bound is a valid start_time for each resource's
 * export: the key the export filters on, then keys never later than it.
 */
static const struct
{
	const char *resource;
	const char *keys[3];
}			zd_bound_keys[] = {
	{"tickets", {"generated_timestamp", "updated_at", NULL}},
	{"ticket_events", {"timestamp", "created_at", NULL}},
	{"users", {"updated_at", NULL}},
	{"organizations", {"updated_at", NULL}},
};

static bool
is_bound_key(const ZdResource *res, const char *key)
{
	for (int i = 0; i < lengthof(zd_bound_keys); i++)
	{
		if (strcmp(zd_bound_keys[i].resource, res->name) != 0)
			continue;
		for (int k = 0; zd_bound_keys[i].keys[k] != NULL; k++)
			if (strcmp(zd_bound_keys[i].keys[k], key) == 0)
				return true;
	}
	return false;
}

static bool
is_int_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID;
}

static bool
is_time_type(Oid typid)
{
	return typid == TIMESTAMPTZOID || typid == TIMESTAMPOID || typid == DATEOID;
}

/* A plain column of this relation, among attnos. */
static bool
is_rel_column(Node *node, RelOptInfo *baserel, Bitmapset *attnos)
{
	Var		   *var;

	if (node == NULL || !IsA(node, Var))
		return false;
	var = (Var *) node;
	return var->varno == baserel->relid && var->varlevelsup == 0 &&
		var->varattno > 0 && bms_is_member(var->varattno, attnos);
}

/*
 * Can the scan evaluate this value when it starts?  It must not depend on
 * the scanned row, must give the same answer for every row (no volatile
 * functions), must not contain subplans, and may refer to other relations
 * only when the path is parameterized by them (they become nestloop
 * parameters).  Constants, parameters and stable expressions qualify.
 */
static bool
value_is_pushable(PlannerInfo *root, RelOptInfo *baserel, Node *value,
				  Relids allowed_outer)
{
	Relids		varnos;

	if (contain_volatile_functions(value) || contain_subplans(value))
		return false;
#if PG_VERSION_NUM >= 140000
	varnos = pull_varnos(root, value);
#else
	varnos = pull_varnos(value);
#endif
	if (bms_is_member(baserel->relid, varnos))
		return false;
	return bms_is_subset(varnos, allowed_outer);
}

/* ids in an array value known at plan time, or -1 */
static double
array_value_nids(Node *arr)
{
	if (IsA(arr, Const))
	{
		Const	   *c = (Const *) arr;
		ArrayType  *a;

		if (c->constisnull)
			return 0;
		a = DatumGetArrayTypeP(c->constvalue);
		return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	}
	if (IsA(arr, ArrayExpr) && !((ArrayExpr *) arr)->multidims)
		return list_length(((ArrayExpr *) arr)->elements);
	return -1;
}

/*
 * Is clause (of this relation, evaluable once outer rels in allowed_outer
 * are known) one the scan can push?  Fills *q.
 */
static bool
classify_qual(PlannerInfo *root, RelOptInfo *baserel, ZdRelInfo *ri,
			  Expr *clause, Relids allowed_outer, ZdQual *q)
{
	memset(q, 0, sizeof(ZdQual));
	q->nids = -1;

	if (ri->res == NULL)
		return false;

	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;
		Node	   *left = linitial(op->args);
		Node	   *right = lsecond(op->args);
		Node	   *col;
		Node	   *val;
		bool		col_left;
		int			strategy;

		/* id = value, value = id */
		if (is_rel_column(left, baserel, ri->id_attnos) ||
			is_rel_column(right, baserel, ri->id_attnos))
		{
			col_left = is_rel_column(left, baserel, ri->id_attnos);
			col = col_left ? left : right;
			val = col_left ? right : left;
			if (get_op_opfamily_strategy(op->opno, INTEGER_BTREE_FAM_OID) !=
				BTEqualStrategyNumber ||
				!is_int_type(exprType(col)) || !is_int_type(exprType(val)) ||
				!value_is_pushable(root, baserel, val, allowed_outer))
				return false;
			q->lookup = ZD_LOOKUP_ID_EQ;
			q->value = (Expr *) val;
			q->nids = 1;
			return true;
		}

		/* change_time > value, >=, =, and value < change_time, <=, = */
		if (is_rel_column(left, baserel, ri->bound_attnos) ||
			is_rel_column(right, baserel, ri->bound_attnos))
		{
			col_left = is_rel_column(left, baserel, ri->bound_attnos);
			col = col_left ? left : right;
			val = col_left ? right : left;
			strategy = get_op_opfamily_strategy(op->opno, ZD_DATETIME_BTREE_FAM_OID);
			if (!(strategy == BTEqualStrategyNumber ||
				  (col_left && (strategy == BTGreaterStrategyNumber ||
								strategy == BTGreaterEqualStrategyNumber)) ||
				  (!col_left && (strategy == BTLessStrategyNumber ||
								 strategy == BTLessEqualStrategyNumber))))
				return false;
			if (exprType(col) != TIMESTAMPTZOID || !is_time_type(exprType(val)) ||
				!value_is_pushable(root, baserel, val, allowed_outer))
				return false;
			q->is_bound = true;
			q->value = (Expr *) val;
			return true;
		}
		return false;
	}

	/* id = ANY (array), which is also what id IN (...) becomes */
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;
		Node	   *scalar = linitial(sa->args);
		Node	   *arr = lsecond(sa->args);

		if (!sa->useOr || !is_rel_column(scalar, baserel, ri->id_attnos) ||
			get_op_opfamily_strategy(sa->opno, INTEGER_BTREE_FAM_OID) !=
			BTEqualStrategyNumber ||
			!is_int_type(exprType(scalar)) ||
			!is_int_type(get_element_type(exprType(arr))) ||
			!value_is_pushable(root, baserel, arr, allowed_outer))
			return false;
		q->lookup = ZD_LOOKUP_ID_ANY;
		q->value = (Expr *) arr;
		q->nids = array_value_nids(arr);
		return true;
	}
	return false;
}

/* Of two id quals, is a the cheaper lookup? */
static bool
lookup_is_better(const ZdQual *a, const ZdQual *b)
{
	if (b->lookup == ZD_LOOKUP_NONE)
		return true;
	if (a->nids < 0)
		return false;
	return b->nids < 0 || a->nids < b->nids;
}

/* requests and records of an id lookup */
static void
lookup_cost(const ZdQual *q, double *requests, double *records)
{
	double		nids = q->nids >= 0 ? q->nids : ZD_DEFAULT_ANY_IDS;

	if (q->lookup == ZD_LOOKUP_ID_EQ || nids <= 1)
		*requests = 1;
	else
		*requests = ceil(nids / ZD_SHOW_MANY_MAX);
	*records = nids;
}

/* the best id lookup among a list of RestrictInfos */
static bool
best_lookup(PlannerInfo *root, RelOptInfo *baserel, ZdRelInfo *ri,
			List *rinfos, Relids allowed_outer, ZdQual *best)
{
	ListCell   *lc;

	memset(best, 0, sizeof(ZdQual));
	foreach(lc, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		ZdQual		q;

		if (!rinfo->pseudoconstant &&
			classify_qual(root, baserel, ri, rinfo->clause, allowed_outer, &q) &&
			q.lookup != ZD_LOOKUP_NONE && lookup_is_better(&q, best))
			*best = q;
	}
	return best->lookup != ZD_LOOKUP_NONE;
}

void
zdGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	ZdRelInfo  *ri = palloc0(sizeof(ZdRelInfo));
	ForeignTable *table = GetForeignTable(foreigntableid);
	ZdServerOptions *opts;
	Relation	rel;
	TupleDesc	tupdesc;
	List	   *bounds = NIL;
	ListCell   *lc;
	ZdQual		best;
	double		rows;
	double		requests;
	double		records;

	baserel->fdw_private = ri;

	/* validates the resource early, so a broken table fails at plan time */
	ri->res = zd_resource_by_name(zd_table_resource_name(foreigntableid));
	opts = zd_get_server_options(table->serverid, GetUserId(), false);
	ri->page_size = Max(opts->page_size, 1);
	ri->table_rows = zd_table_rows_estimate(foreigntableid);

	/* which columns hold the id and the change times, by their JSON key */
	rel = table_open(foreigntableid, NoLock);
	tupdesc = RelationGetDescr(rel);
	for (int i = 0; ri->res != NULL && i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		char	   *key;

		if (att->attisdropped)
			continue;
		key = zd_column_key(foreigntableid, att->attnum, NameStr(att->attname));
		if (strcmp(key, "id") == 0 && is_int_type(att->atttypid) &&
			zd_resource_has_show(ri->res))
			ri->id_attnos = bms_add_member(ri->id_attnos, att->attnum);
		else if (att->atttypid == TIMESTAMPTZOID && is_bound_key(ri->res, key))
			ri->bound_attnos = bms_add_member(ri->bound_attnos, att->attnum);
	}
	table_close(rel, NoLock);

	/* the usual default selectivities: foreign tables have no statistics */
	rows = ri->table_rows *
		clauselist_selectivity(root, baserel->baserestrictinfo, 0, JOIN_INNER, NULL);

	if (best_lookup(root, baserel, ri, baserel->baserestrictinfo,
					baserel->lateral_relids, &best))
	{
		lookup_cost(&best, &requests, &records);
		rows = Min(rows, records);	/* ids are unique */
	}
	else
	{
		foreach(lc, baserel->baserestrictinfo)
		{
			RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
			ZdQual		q;

			if (!rinfo->pseudoconstant &&
				classify_qual(root, baserel, ri, rinfo->clause,
							  baserel->lateral_relids, &q) && q.is_bound)
				bounds = lappend(bounds, rinfo);
		}
		records = ri->table_rows *
			clauselist_selectivity(root, bounds, 0, JOIN_INNER, NULL);
		records = Max(records, 1);
		requests = Max(ceil(records / ri->page_size), 1);
	}

	baserel->tuples = ri->table_rows;
	baserel->rows = clamp_row_est(rows);
	ri->startup_cost = ZD_REQUEST_COST + baserel->baserestrictcost.startup;
	ri->total_cost = requests * ZD_REQUEST_COST + records * ZD_PER_ROW_COST +
		records * baserel->baserestrictcost.per_tuple +
		baserel->rows * cpu_tuple_cost + baserel->baserestrictcost.startup;
}

static ForeignPath *
make_path(PlannerInfo *root, RelOptInfo *baserel, double rows,
		  Cost startup, Cost total, Relids required_outer)
{
	return create_foreignscan_path(root, baserel, NULL, rows,
#if PG_VERSION_NUM >= 180000
								   0,
#endif
								   startup, total, NIL, required_outer,
								   NULL,
#if PG_VERSION_NUM >= 170000
								   NIL,
#endif
								   NIL);
}

/* generate_implied_equalities_for_column callback: our id column */
static bool
ec_member_is_id(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				EquivalenceMember *em, void *arg)
{
	ZdRelInfo  *ri = (ZdRelInfo *) arg;

	return is_rel_column((Node *) em->em_expr, rel, ri->id_attnos);
}

/* param path info for a join clause that gives an id lookup, or NULL */
static ParamPathInfo *
id_join_ppi(PlannerInfo *root, RelOptInfo *baserel, ZdRelInfo *ri,
			RestrictInfo *rinfo)
{
	Relids		required_outer;
	ZdQual		q;

	required_outer = bms_union(rinfo->clause_relids, baserel->lateral_relids);
	required_outer = bms_del_member(required_outer, baserel->relid);
	if (bms_is_empty(required_outer) ||
		!classify_qual(root, baserel, ri, rinfo->clause, required_outer, &q) ||
		q.lookup == ZD_LOOKUP_NONE)
		return NULL;
	return get_baserel_parampathinfo(root, baserel, required_outer);
}

void
zdGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	ZdRelInfo  *ri = (ZdRelInfo *) baserel->fdw_private;
	List	   *ppis = NIL;
	ListCell   *lc;

	/* the plain scan: an id lookup, a bounded export or the whole export */
	add_path(baserel, (Path *)
			 make_path(root, baserel, baserel->rows, ri->startup_cost,
					   ri->total_cost, baserel->lateral_relids));

	if (ri->id_attnos == NULL)
		return;

	/*
	 * Parameterized paths: id = <outer column> looks up one record per outer
	 * row, which a nested loop over a few rows prefers to a whole export.
	 * The clauses come from joininfo and, for simple equalities, from the
	 * equivalence classes (as in postgres_fdw).
	 */
	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		ParamPathInfo *ppi;

		if (!join_clause_is_movable_to(rinfo, baserel))
			continue;
		ppi = id_join_ppi(root, baserel, ri, rinfo);
		if (ppi)
			ppis = list_append_unique_ptr(ppis, ppi);
	}
	if (baserel->has_eclass_joins)
	{
		List	   *clauses = generate_implied_equalities_for_column(root, baserel,
																	 ec_member_is_id,
																	 ri,
																	 baserel->lateral_referencers);

		foreach(lc, clauses)
		{
			ParamPathInfo *ppi = id_join_ppi(root, baserel, ri,
											 lfirst_node(RestrictInfo, lc));

			if (ppi)
				ppis = list_append_unique_ptr(ppis, ppi);
		}
	}

	foreach(lc, ppis)
	{
		ParamPathInfo *ppi = (ParamPathInfo *) lfirst(lc);
		List	   *rinfos = list_concat_copy(baserel->baserestrictinfo,
											  ppi->ppi_clauses);
		ZdQual		best;
		double		requests;
		double		records;
		double		rows;

		if (!best_lookup(root, baserel, ri, rinfos, ppi->ppi_req_outer, &best))
			continue;
		lookup_cost(&best, &requests, &records);
		rows = clamp_row_est(Min(ppi->ppi_rows, records));
		add_path(baserel, (Path *)
				 make_path(root, baserel, rows,
						   ZD_REQUEST_COST + baserel->baserestrictcost.startup,
						   requests * ZD_REQUEST_COST + records * ZD_PER_ROW_COST +
						   rows * cpu_tuple_cost + baserel->baserestrictcost.startup,
						   ppi->ppi_req_outer));
	}
}

/*
 * per_page for LIMIT n: only when the scan's rows go straight to the LIMIT,
 * so that the first n rows the export returns are all the query needs: no
 * qual on the scan, no ORDER BY, no other relation (root->limit_tuples is
 * already -1 with grouping, aggregates, DISTINCT, window functions or set
 * returning functions).  Any other case keeps the server's page_size; the
 * scan streams, so a LIMIT stops paging early whatever per_page is.
 */
static int
limit_per_page(PlannerInfo *root, RelOptInfo *baserel, ZdRelInfo *ri,
			   List *local_exprs)
{
	Relids		top = baserel->top_parent_relids ? baserel->top_parent_relids :
		baserel->relids;

	if (local_exprs != NIL || root->limit_tuples < 1 ||
		root->limit_tuples >= ri->page_size ||
		root->parse->sortClause != NIL ||
		!bms_equal(root->all_baserels, top))
		return 0;
	return (int) ceil(root->limit_tuples);
}

ForeignScan *
zdGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				 ForeignPath *best_path, List *tlist, List *scan_clauses,
				 Plan *outer_plan)
{
	ZdRelInfo  *ri = (ZdRelInfo *) baserel->fdw_private;
	Relids		allowed_outer = PATH_REQ_OUTER(&best_path->path);
	List	   *local_exprs = NIL;
	List	   *bound_values = NIL;
	List	   *bound_positions = NIL;
	List	   *fdw_exprs;
	List	   *pushed;
	ZdQual		best;
	int			best_position = -1;
	int			per_page = 0;
	ListCell   *lc;

	memset(&best, 0, sizeof(ZdQual));

	/*
	 * Every qual is checked locally (plan.qual); the pushable ones are also
	 * handed to the scan.  With an id lookup the bounds are not needed.
	 */
	foreach(lc, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		ZdQual		q;
		int			position;

		if (rinfo->pseudoconstant)
			continue;			/* a gating Result checks those */
		local_exprs = lappend(local_exprs, rinfo->clause);
		position = list_length(local_exprs) - 1;
		if (!classify_qual(root, baserel, ri, rinfo->clause, allowed_outer, &q))
			continue;
		if (q.lookup != ZD_LOOKUP_NONE)
		{
			if (lookup_is_better(&q, &best))
			{
				best = q;
				best_position = position;
			}
		}
		else if (q.is_bound)
		{
			bound_values = lappend(bound_values, copyObject(q.value));
			bound_positions = lappend(bound_positions, makeInteger(position));
		}
	}

	if (best_position >= 0)
	{
		fdw_exprs = list_make1(copyObject(best.value));
		pushed = list_make1(makeInteger(best_position));
	}
	else
	{
		fdw_exprs = bound_values;
		pushed = bound_positions;
		per_page = limit_per_page(root, baserel, ri, local_exprs);
	}

	return make_foreignscan(tlist, local_exprs, baserel->relid, fdw_exprs,
							list_make3(makeInteger(best.lookup),
									   makeInteger(per_page), pushed),
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
