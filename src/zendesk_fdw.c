/*-------------------------------------------------------------------------
 *
 * zendesk_fdw.c
 *		  Module entry points: settings, and the foreign data wrapper
 *		  handler that wires the planner and executor callbacks together.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "utils/guc.h"

#include "zendesk_fdw.h"

PG_MODULE_MAGIC;

int			zd_holdback_seconds = 61;
int			zd_max_retry_wait_seconds = 120;
int			zd_recovery_overlap_seconds = 300;
int			zd_sync_runs_retention_days = 90;
int			zd_sync_progress_pages = 10;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("zendesk_fdw.holdback",
							"Never asks Zendesk for changes newer than this many seconds.",
							"Zendesk rejects a start_time within the last minute and holds back the last minute of changes.",
							&zd_holdback_seconds, 61, 0, 3600,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("zendesk_fdw.max_retry_wait",
							"Longest single wait before retrying a Zendesk request.",
							"Caps Retry-After and the exponential backoff of 5xx retries.",
							&zd_max_retry_wait_seconds, 120, 1, 3600,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("zendesk_fdw.recovery_overlap",
							"How far before the newest synced change a sync restarts when its cursor is lost or rejected.",
							NULL,
							&zd_recovery_overlap_seconds, 300, 0, 86400 * 7,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("zendesk_fdw.sync_runs_retention",
							"Days of history kept in zendesk_sync_runs.",
							NULL,
							&zd_sync_runs_retention_days, 90, 1, 36500,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("zendesk_fdw.sync_progress_pages",
							"zendesk_sync() reports progress every this many pages.",
							NULL,
							&zd_sync_progress_pages, 10, 1, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("zendesk_fdw");
#else
	EmitWarningsOnPlaceholders("zendesk_fdw");
#endif
}

PG_FUNCTION_INFO_V1(zendesk_fdw_handler);

Datum
zendesk_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = zdGetForeignRelSize;
	routine->GetForeignPaths = zdGetForeignPaths;
	routine->GetForeignPlan = zdGetForeignPlan;
	routine->BeginForeignScan = zdBeginForeignScan;
	routine->IterateForeignScan = zdIterateForeignScan;
	routine->ReScanForeignScan = zdReScanForeignScan;
	routine->EndForeignScan = zdEndForeignScan;
	routine->ExplainForeignScan = zdExplainForeignScan;
	routine->ImportForeignSchema = zdImportForeignSchema;

	PG_RETURN_POINTER(routine);
}
