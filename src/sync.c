/*-------------------------------------------------------------------------
 *
 * sync.c
 *		  zendesk_sync() and zendesk_sync_reset(): the SQL face of the sync.
 *
 * zendesk_sync() checks what it can up front (server, privileges, user
 * mapping, streams, target schema), starts one dynamic background worker
 * that connects as the calling role, and with wait => true follows the
 * worker's progress through zendesk_sync_state (NOTICEs) until it exits,
 * then returns the run's rows from zendesk_sync_runs.  The worker commits
 * every page, so the caller reads committed state only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "commands/dbcommands.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

#include "zendesk_fdw.h"

PG_FUNCTION_INFO_V1(zendesk_sync);
PG_FUNCTION_INFO_V1(zendesk_sync_reset);

/* field4 of our advisory locktags, so they never meet user advisory locks */
#define ZD_LOCK_FIELD4 0x5A44

static void
stream_locktag(LOCKTAG *tag, Oid serverid, int stream)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, serverid, (uint32) stream,
						 ZD_LOCK_FIELD4);
}

/*
 * One sync per (server, stream): the worker holds a session-level lock while
 * it runs the stream, released at exit even if the worker is killed.  Others
 * only test it, with transaction-level locks that an error cannot leak.
 * Never waits.
 */
bool
zd_stream_lock(Oid serverid, int stream, bool session)
{
	LOCKTAG		tag;

	stream_locktag(&tag, serverid, stream);
	return LockAcquire(&tag, ExclusiveLock, session, true) != LOCKACQUIRE_NOT_AVAIL;
}

void
zd_stream_unlock(Oid serverid, int stream, bool session)
{
	LOCKTAG		tag;

	stream_locktag(&tag, serverid, stream);
	LockRelease(&tag, ExclusiveLock, session);
}

static void
extension_info(Oid *schema, Oid *owner)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("zendesk_fdw"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"zendesk_fdw\" is not installed in this database")));
	*schema = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

Oid
zd_extension_schema(void)
{
	Oid			schema,
				owner;

	extension_info(&schema, &owner);
	return schema;
}

Oid
zd_extension_owner(void)
{
	Oid			schema,
				owner;

	extension_info(&schema, &owner);
	return owner;
}

static ForeignServer *
server_for_sync(Name servername)
{
	ForeignServer *server = GetForeignServerByName(NameStr(*servername), false);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	AclResult	aclresult;

	if (strcmp(fdw->fdwname, "zendesk_fdw") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" does not use the zendesk_fdw foreign-data wrapper",
						server->servername)));
#if PG_VERSION_NUM >= 160000
	aclresult = object_aclcheck(ForeignServerRelationId, server->serverid,
								GetUserId(), ACL_USAGE);
#else
	aclresult = pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE);
#endif
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);
	return server;
}

/* streams text[] -> bitmask over zd_resources; NULL means all */
static int32
streams_mask(ArrayType *streams)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int32		mask = 0;

	if (streams == NULL)
		return (1 << zd_nresources) - 1;
	deconstruct_array(streams, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;
		int			found = -1;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("streams may not contain NULL")));
		name = TextDatumGetCString(elems[i]);
		for (int r = 0; r < zd_nresources; r++)
			if (strcmp(zd_resources[r]->name, name) == 0)
				found = r;
		if (found < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown stream \"%s\"", name),
					 errhint("Valid streams are: %s.", zd_resource_names_list())));
		mask |= 1 << found;
	}
	if (mask == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("streams is empty"),
				 errhint("Pass NULL to sync every stream.")));
	return mask;
}

/*
 * Fail before starting a worker when the role could not write the local
 * tables anyway: the worker would only report the same error later.
 */
static void
check_target_schema(const char *schema, int32 mask)
{
	Oid			nspid = get_namespace_oid(schema, true);
	AclResult	aclresult;

	if (!OidIsValid(nspid))
	{
#if PG_VERSION_NUM >= 160000
		aclresult = object_aclcheck(DatabaseRelationId, MyDatabaseId, GetUserId(), ACL_CREATE);
#else
		aclresult = pg_database_aclcheck(MyDatabaseId, GetUserId(), ACL_CREATE);
#endif
		if (aclresult != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to create schema \"%s\" for the synced tables", schema),
					 errhint("Create the schema and grant this role CREATE on it, or pass target_schema.")));
		return;
	}
	for (int r = 0; r < zd_nresources; r++)
	{
		AclMode		mode = ACL_USAGE;

		if (!(mask & (1 << r)))
			continue;
		if (!OidIsValid(get_relname_relid(zd_resources[r]->name, nspid)))
			mode |= ACL_CREATE;
#if PG_VERSION_NUM >= 160000
		aclresult = object_aclcheck(NamespaceRelationId, nspid, GetUserId(), mode);
#else
		aclresult = pg_namespace_aclcheck(nspid, GetUserId(), mode);
#endif
		if (aclresult != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for schema \"%s\", where zendesk_sync writes table \"%s\"",
							schema, zd_resources[r]->name),
					 errhint("GRANT USAGE, CREATE ON SCHEMA %s TO %s, or pass another target_schema.",
							 quote_identifier(schema),
							 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
	}
}

/*
 * The worker connects as the current role.  Before PostgreSQL 17 a
 * background worker cannot connect as a role without LOGIN, so say so here
 * rather than let the worker die at startup.
 */
static void
check_role_can_connect(void)
{
#if PG_VERSION_NUM < 170000
	HeapTuple	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	bool		canlogin;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for role %u", GetUserId());
	canlogin = ((Form_pg_authid) GETSTRUCT(tup))->rolcanlogin;
	ReleaseSysCache(tup);
	if (!canlogin)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("zendesk_sync cannot run as role \"%s\", which cannot log in",
						GetUserNameFromId(GetUserId(), false)),
				 errdetail("The sync worker connects as the current role."),
				 errhint("Call zendesk_sync() as a role with LOGIN (SET ROLE to a NOLOGIN role works from PostgreSQL 17).")));
#endif
}

static Tuplestorestate *
begin_result(FunctionCallInfo fcinfo, TupleDesc *tupdesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcxt;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("zendesk_sync must be called in a context that accepts a set, e.g. SELECT * FROM zendesk_sync(...)")));
	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	*tupdesc = BlessTupleDesc(CreateTupleDescCopy(*tupdesc));
	store = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = *tupdesc;
	MemoryContextSwitchTo(oldcxt);
	return store;
}

static void
put_result(Tuplestorestate *store, TupleDesc tupdesc, const char *stream,
		   const char *status, Datum *rest, bool *restnulls)
{
	Datum		values[7];
	bool		nulls[7] = {false};

	values[0] = CStringGetTextDatum(stream);
	values[1] = CStringGetTextDatum(status);
	for (int i = 2; i < 7; i++)
	{
		values[i] = rest ? rest[i - 2] : (Datum) 0;
		nulls[i] = rest ? restnulls[i - 2] : true;
	}
	tuplestore_putvalues(store, tupdesc, values, nulls);
}

/*
 * Progress while waiting: a NOTICE when a stream starts, every
 * zendesk_fdw.sync_progress_pages pages, and when it ends.  Reads committed
 * state with a fresh snapshot each time; a stream that starts and ends
 * between two looks still gets both lines.
 */
typedef struct ProgressSeen
{
	bool		started[8];
	bool		finished[8];
	int			pages[8];
	char		last_wait[256]; /* the worker's last reported wait */
} ProgressSeen;

/*
 * A wait of the worker (rate limit, retry backoff) as a NOTICE, once per
 * wait: its pg_stat_activity entry says "... waiting N s (why) ...".
 */
static void
report_wait(pid_t worker_pid, ProgressSeen *seen)
{
	const char *activity = pgstat_get_backend_current_activity(worker_pid, true);
	const char *prefix = "zendesk_sync ";

	if (activity == NULL || strstr(activity, " waiting ") == NULL)
	{
		seen->last_wait[0] = '\0';
		return;
	}
	if (strncmp(activity, seen->last_wait, sizeof(seen->last_wait) - 1) == 0)
		return;
	strlcpy(seen->last_wait, activity, sizeof(seen->last_wait));
	if (strncmp(activity, prefix, strlen(prefix)) == 0)
		activity += strlen(prefix);
	ereport(NOTICE, (errmsg("zendesk_sync: %s", activity)));
}

/*
 * SPI_connect and read the rows of one run from a state table, with a fresh
 * snapshot so the worker's latest commits are visible.  The caller ends
 * with PopActiveSnapshot() and SPI_finish().
 */
static void
select_run_rows(const char *columns, const char *table, int64 run_id)
{
	char	   *sql = psprintf("SELECT %s FROM %s.%s WHERE run_id = $1", columns,
							   quote_identifier(get_namespace_name(zd_extension_schema())),
							   table);
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(run_id)};

	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", table);
}

static void
report_progress(int64 run_id, ProgressSeen *seen)
{
	select_run_rows("stream, status, pages, records, high_water",
					"zendesk_sync_state", run_id);
	/* in stream order, whatever order the rows come in */
	for (int r = 0; r < zd_nresources; r++)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			char	   *stream = SPI_getvalue(tup, desc, 1);
			char	   *status;
			int			pages;
			char	   *records;
			char	   *reached;

			if (strcmp(stream, zd_resources[r]->name) != 0)
				continue;
			status = SPI_getvalue(tup, desc, 2);
			pages = atoi(SPI_getvalue(tup, desc, 3));
			records = SPI_getvalue(tup, desc, 4);
			reached = SPI_getvalue(tup, desc, 5);
			if (!reached)
				reached = "(no records yet)";

			if (!seen->started[r])
			{
				seen->started[r] = true;
				ereport(NOTICE, (errmsg("zendesk_sync: %s started", stream)));
			}
			if (seen->finished[r])
				continue;
			if (strcmp(status, "running") != 0)
			{
				seen->finished[r] = true;
				ereport(NOTICE,
						(errmsg("zendesk_sync: %s %s: %d pages, %s records, changes up to %s",
								stream, strcmp(status, "ok") == 0 ? "finished" : status,
								pages, records, reached)));
			}
			else if (pages >= seen->pages[r] + zd_sync_progress_pages)
			{
				seen->pages[r] = pages;
				ereport(NOTICE,
						(errmsg("zendesk_sync: %s: %d pages, %s records, changes up to %s",
								stream, pages, records, reached)));
			}
		}
	}
	PopActiveSnapshot();
	SPI_finish();
}

static void
wait_for_worker(BackgroundWorkerHandle *handle, int64 run_id)
{
	ProgressSeen seen;

	memset(&seen, 0, sizeof(seen));

	PG_TRY();
	{
		for (;;)
		{
			pid_t		pid;
			BgwHandleStatus status = GetBackgroundWorkerPid(handle, &pid);

			if (status == BGWH_STOPPED)
				break;
			if (status == BGWH_POSTMASTER_DIED)
				ereport(ERROR,
						(errcode(ERRCODE_ADMIN_SHUTDOWN),
						 errmsg("postmaster exited during zendesk_sync")));
			report_progress(run_id, &seen);
			report_wait(pid, &seen);
			/* the worker's exit sets our latch (bgw_notify_pid) */
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		report_progress(run_id, &seen);
	}
	PG_CATCH();
	{
		/* a cancelled caller stops its sync; committed pages stay */
		TerminateBackgroundWorker(handle);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* Rows of zendesk_sync_runs for one run, in stream order. */
static void
return_run_rows(Tuplestorestate *store, TupleDesc tupdesc, int64 run_id,
				int32 mask)
{
	select_run_rows("stream, status, pages, records, started_at, finished_at, message",
					"zendesk_sync_runs", run_id);

	for (int r = 0; r < zd_nresources; r++)
	{
		bool		found = false;

		if (!(mask & (1 << r)))
			continue;
		for (uint64 i = 0; i < SPI_processed && !found; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum		rest[5];
			bool		restnulls[5];
			char	   *status;

			if (strcmp(SPI_getvalue(tup, desc, 1), zd_resources[r]->name) != 0)
				continue;
			found = true;
			status = SPI_getvalue(tup, desc, 2);
			for (int c = 0; c < 5; c++)
				rest[c] = SPI_getbinval(tup, desc, c + 3, &restnulls[c]);
			/* a row still "running" means the worker died mid-stream */
			if (strcmp(status, "running") == 0)
			{
				status = "failed";
				rest[4] = CStringGetTextDatum("the sync worker exited before finishing this stream; see the server log");
				restnulls[4] = false;
			}
			/* copy out of SPI memory via the tuplestore */
			put_result(store, tupdesc, zd_resources[r]->name, status, rest, restnulls);
		}
		if (!found)
		{
			Datum		rest[5] = {0};
			bool		restnulls[5] = {true, true, true, true, false};

			rest[4] = CStringGetTextDatum("the sync worker exited before starting this stream; see the server log");
			put_result(store, tupdesc, zd_resources[r]->name, "failed", rest, restnulls);
		}
	}
	PopActiveSnapshot();
	SPI_finish();
}

Datum
zendesk_sync(PG_FUNCTION_ARGS)
{
	ForeignServer *server;
	ArrayType  *streams = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);
	bool		wait = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
	ZdServerOptions *opts;
	ZdSyncRequest req;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	const char *schema;
	int32		mask;
	pid_t		pid;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server must not be NULL")));
	if (wait && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("zendesk_sync(wait => true) cannot run in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("It reports what its worker commits, which such a transaction cannot see."),
				 errhint("Run it in READ COMMITTED, or pass wait => false.")));

	server = server_for_sync(PG_GETARG_NAME(0));
	mask = streams_mask(streams);
	check_role_can_connect();
	/* fails with "user mapping not found" before any worker starts */
	opts = zd_get_server_options(server->serverid, GetUserId(), true);
	schema = !PG_ARGISNULL(2) ? NameStr(*PG_GETARG_NAME(2)) :
		opts->sync_schema ? opts->sync_schema : server->servername;
	check_target_schema(schema, mask);
	store = begin_result(fcinfo, &tupdesc);

	memset(&req, 0, sizeof(req));
	req.dbid = MyDatabaseId;
	req.userid = GetUserId();
	req.serverid = server->serverid;
	req.streams_mask = mask;
	req.holdback = zd_holdback_seconds;
	req.recovery_overlap = zd_recovery_overlap_seconds;
	req.max_retry_wait = zd_max_retry_wait_seconds;
	req.runs_retention_days = zd_sync_runs_retention_days;
	namestrcpy(&req.target_schema, schema);
	req.run_id = nextval_internal(get_relname_relid("zendesk_sync_run_id_seq",
													zd_extension_schema()),
								  false);

	/* wait => false: say which streams a running sync already holds */
	if (!wait)
	{
		for (int r = 0; r < zd_nresources; r++)
		{
			if (!(mask & (1 << r)))
				continue;
			if (zd_stream_lock(server->serverid, r, false))
			{
				zd_stream_unlock(server->serverid, r, false);
				put_result(store, tupdesc, zd_resources[r]->name, "started", NULL, NULL);
			}
			else
				put_result(store, tupdesc, zd_resources[r]->name, "already running", NULL, NULL);
		}
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "zendesk_fdw");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "zendesk_sync_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "zendesk_fdw sync of server %s",
			 server->servername);
	snprintf(worker.bgw_type, BGW_MAXLEN, "zendesk_fdw sync");
	worker.bgw_notify_pid = MyProcPid;
	memcpy(worker.bgw_extra, &req, sizeof(req));
	StaticAssertStmt(sizeof(ZdSyncRequest) <= BGW_EXTRALEN, "ZdSyncRequest too large");

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a zendesk_sync background worker"),
				 errhint("Raise max_worker_processes; every running zendesk_sync uses one worker.")));

	if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_POSTMASTER_DIED)
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("postmaster exited while starting zendesk_sync")));

	if (wait)
	{
		wait_for_worker(handle, req.run_id);
		return_run_rows(store, tupdesc, req.run_id, mask);
	}
	return (Datum) 0;
}

/*
 * zendesk_sync_reset(server, stream, start_time): forget the position so
 * the next sync exports again from start_time (NULL: the start_date option).
 * Local rows stay; the upserts make the re-export harmless.
 */
Datum
zendesk_sync_reset(PG_FUNCTION_ARGS)
{
	ForeignServer *server;
	char	   *stream = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		mask;
	Oid			save_userid;
	int			save_sec_context;
	char	   *sql;
	Oid			argtypes[3] = {NAMEOID, TEXTOID, TIMESTAMPTZOID};
	Datum		args[3];
	char		argnulls[3] = {' ', ' ', ' '};
	int			count = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server must not be NULL")));
	server = server_for_sync(PG_GETARG_NAME(0));
	if (stream != NULL)
	{
		Datum		d = CStringGetTextDatum(stream);

		mask = streams_mask(construct_array(&d, 1, TEXTOID, -1, false, TYPALIGN_INT));
	}
	else
		mask = (1 << zd_nresources) - 1;

	sql = psprintf("UPDATE %s.zendesk_sync_state SET cursor = NULL, high_water = NULL, "
				   "start_time = $3, status = CASE status WHEN 'running' THEN 'failed' ELSE status END "
				   "WHERE server = $1 AND stream = $2",
				   quote_identifier(get_namespace_name(zd_extension_schema())));
	args[0] = NameGetDatum(PG_GETARG_NAME(0));
	args[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	argnulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';

	/* state tables belong to the extension owner; write them as that role */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SPI_connect();
	for (int r = 0; r < zd_nresources; r++)
	{
		if (!(mask & (1 << r)))
			continue;
		if (!zd_stream_lock(server->serverid, r, false))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("a zendesk_sync of stream \"%s\" is running on server \"%s\"",
							zd_resources[r]->name, server->servername),
					 errhint("Wait for it to finish or stop it with pg_terminate_backend().")));
		args[1] = CStringGetTextDatum(zd_resources[r]->name);
		SetUserIdAndSecContext(zd_extension_owner(),
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		if (SPI_execute_with_args(psprintf(ZD_FAIL_STALE_RUNS_SQL,
										   quote_identifier(get_namespace_name(zd_extension_schema()))),
								  2, argtypes, args, argnulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update zendesk_sync_runs");
		if (SPI_execute_with_args(sql, 3, argtypes, args, argnulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not reset zendesk_sync_state");
		SetUserIdAndSecContext(save_userid, save_sec_context);
		count += (int) SPI_processed;
	}
	SPI_finish();
	PG_RETURN_INT32(count);
}
