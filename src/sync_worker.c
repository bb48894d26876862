/*-------------------------------------------------------------------------
 *
 * sync_worker.c
 *		  The zendesk_sync background worker: runs incremental exports into
 *		  local tables, one transaction per page.
 *
 * The recovery model rests on one rule: a page's upserts and the stream's
 * checkpoint (cursor or start_time, in zendesk_sync_state) commit in the
 * same transaction.  A crash at any instant therefore leaves the checkpoint
 * at the last page whose rows are committed, and the next run re-reads at
 * most one page, which the version-guarded upserts make harmless.
 *
 * A stream that fails is recorded as failed (message = error, detail and
 * hint) and the next stream runs, except after a 401: the credentials would
 * be refused again, so the remaining streams are marked failed without a
 * request.  A rejected stored cursor restarts from the newest synced change
 * minus recovery_overlap; with no such point and no start_date the stream
 * fails with "reset required" rather than exporting everything again.
 *
 * The worker connects as the role that called zendesk_sync(), so it reads
 * that role's user mapping and writes the local tables with its privileges.
 * Only the extension's own state tables are written as the extension owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/table.h"
#include "access/xact.h"
#include "common/base64.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "zendesk_fdw.h"

/* One worker's context: what every stream of the run shares. */
typedef struct SyncRun
{
	ZdSyncRequest req;
	char	   *server_name;
	NameData	server_nd;		/* the same, as a name parameter */
	char	   *ext_schema;		/* quoted */
	List	   *secrets;		/* credentials as they could be echoed back */
	Oid			ext_owner;
	MemoryContext cxt;
	char	   *auth_error;		/* credentials rejected: skip later streams */
} SyncRun;

/* One stream of the run. */
typedef struct StreamSync
{
	SyncRun    *run;
	int			index;			/* into zd_resources */
	const ZdResource *res;
	MemoryContext cxt;			/* lives for the stream */

	ZdUpsert   *upsert;

	int			pages;
	int64		records;
	StringInfoData message;		/* notes for the run row */

	/* newest change committed so far, stored or by this run: the recovery point */
	bool		has_high_water;
	int64		high_water;
} StreamSync;

static TimestampTz
epoch_to_timestamptz(int64 epoch)
{
	return (TimestampTz) ((epoch - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)
						  * USECS_PER_SEC);
}

static int64
timestamptz_to_epoch(TimestampTz ts)
{
	return (int64) (ts / USECS_PER_SEC) +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

static void
note(StreamSync *ss, const char *fmt,...) pg_attribute_printf(2, 3);

static void
note(StreamSync *ss, const char *fmt,...)
{
	va_list		ap;
	MemoryContext old = MemoryContextSwitchTo(ss->cxt);
	char		buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (ss->message.len > 0)
		appendStringInfoString(&ss->message, "; ");
	appendStringInfoString(&ss->message, buf);
	MemoryContextSwitchTo(old);
}

/*
 * Run a statement on the extension's state tables as the extension owner.
 * The switch is undone by transaction abort if the statement fails.
 */
static void
exec_as_owner(SyncRun *run, const char *sql, int nargs, Oid *argtypes,
			  Datum *args, const char *nulls, int expected)
{
	Oid			save_userid;
	int			save_sec;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(run->ext_owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	rc = SPI_execute_with_args(sql, nargs, argtypes, args, nulls, false, 0);
	if (rc != expected)
		elog(ERROR, "zendesk_sync: state statement failed (%s): %s",
			 SPI_result_code_string(rc), sql);
	SetUserIdAndSecContext(save_userid, save_sec);
}

static void
begin_tx(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
}

static void
begin_spi(void)
{
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
end_spi_and_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* The stream in progress, for mark_terminated() and report_wait(). */
static StreamSync *current_stream = NULL;

static void report_activity(StreamSync *ss, const char *what);

/*
 * zd_wait_hook: the worker's pg_stat_activity says what it waits for, and
 * zendesk_sync() passes that on to its caller as a NOTICE.
 */
static void
report_wait(long ms, const char *why)
{
	char		what[128];

	if (current_stream == NULL)
		return;
	if (ms < 0)
	{
		report_activity(current_stream, "fetching");
		return;
	}
	snprintf(what, sizeof(what), "waiting %ld s (%s)", (ms + 999) / 1000, why);
	report_activity(current_stream, what);
}

static void
report_activity(StreamSync *ss, const char *what)
{
	char		buf[256];

	snprintf(buf, sizeof(buf), "zendesk_sync %s: %s %s, page %d, " INT64_FORMAT " records",
			 ss->run->server_name, ss->res->name, what, ss->pages, ss->records);
	pgstat_report_activity(STATE_RUNNING, buf);
}

/*
 * Create the schema and table when missing (as the calling role).  *created
 * tells the caller that the table holds nothing yet.
 */
static Oid
ensure_local_table(StreamSync *ss, bool *created)
{
	const char *schema = NameStr(ss->run->req.target_schema);
	Oid			nspid = get_namespace_oid(schema, true);
	Oid			relid = InvalidOid;

	if (!OidIsValid(nspid))
	{
		if (SPI_execute(psprintf("CREATE SCHEMA IF NOT EXISTS %s", quote_identifier(schema)),
						false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not create schema \"%s\"", schema);
		CommandCounterIncrement();
		nspid = get_namespace_oid(schema, false);
	}
	else
		relid = get_relname_relid(ss->res->name, nspid);

	*created = !OidIsValid(relid);
	if (!OidIsValid(relid))
	{
		if (SPI_execute(psprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n)",
								 quote_identifier(schema),
								 quote_identifier(ss->res->name),
								 zd_resource_column_ddl(ss->res, false)),
						false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not create table \"%s.%s\"", schema, ss->res->name);
		CommandCounterIncrement();
		relid = get_relname_relid(ss->res->name, nspid);
	}
	return relid;
}

typedef struct StreamState
{
	char	   *cursor;
	bool		has_start_time;
	int64		start_time;
	bool		has_high_water;
	int64		high_water;
} StreamState;

/*
 * First transaction of a stream: local table, state row, run row.  A state
 * row still "running" belongs to a worker that died (we hold the stream
 * lock), so its run is marked failed.
 */
static void
start_stream(StreamSync *ss, StreamState *st, const char *base_url)
{
	SyncRun    *run = ss->run;
	Oid			argtypes[4] = {NAMEOID, TEXTOID, INT8OID, NAMEOID};
	Datum		args[4];
	const char *S = run->ext_schema;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	char	   *status;
	char	   *old_schema;
	int64		old_run;
	bool		old_run_null;
	bool		created;
	bool		other_server;
	char	   *old_url;

	args[0] = NameGetDatum(&run->server_nd);
	args[1] = CStringGetTextDatum(ss->res->name);
	args[2] = Int64GetDatum(run->req.run_id);
	args[3] = NameGetDatum(&run->req.target_schema);

	ss->upsert = zd_upsert_prepare(ss->res, ensure_local_table(ss, &created), ss->cxt);

	exec_as_owner(run, psprintf("INSERT INTO %s.zendesk_sync_state (server, stream) VALUES ($1, $2) "
								"ON CONFLICT DO NOTHING", S),
				  2, argtypes, args, NULL, SPI_OK_INSERT);
	exec_as_owner(run, psprintf("SELECT cursor, start_time, high_water, status, run_id, target_schema, server_url "
								"FROM %s.zendesk_sync_state WHERE server = $1 AND stream = $2 FOR UPDATE", S),
				  2, argtypes, args, NULL, SPI_OK_SELECT);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	d = SPI_getbinval(tup, desc, 1, &isnull);
	st->cursor = isnull ? NULL : MemoryContextStrdup(ss->cxt, TextDatumGetCString(d));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	st->has_start_time = !isnull;
	st->start_time = isnull ? 0 : timestamptz_to_epoch(DatumGetTimestampTz(d));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	st->has_high_water = !isnull;
	st->high_water = isnull ? 0 : timestamptz_to_epoch(DatumGetTimestampTz(d));
	status = SPI_getvalue(tup, desc, 4);
	d = SPI_getbinval(tup, desc, 5, &old_run_null);
	old_run = old_run_null ? 0 : DatumGetInt64(d);
	old_schema = SPI_getvalue(tup, desc, 6);
	old_url = SPI_getvalue(tup, desc, 7);
	other_server = old_url != NULL && strcmp(old_url, base_url) != 0;

	/*
	 * The position belongs to the table it filled.  A table created just now
	 * (first run, or dropped by hand) or a different target schema starts
	 * over from start_date, or it would only get the changes from here on.
	 */
	if ((created || other_server ||
		 (old_schema && strcmp(old_schema, NameStr(run->req.target_schema)) != 0)) &&
		(st->cursor || st->has_start_time || st->has_high_water))
	{
		note(ss, "%s: full export from start_date",
			 created ? "local table was missing" :
			 other_server ? "the server now points at another account" :
			 "target schema changed");
		st->cursor = NULL;
		st->has_start_time = st->has_high_water = false;
		exec_as_owner(run, psprintf("UPDATE %s.zendesk_sync_state SET cursor = NULL, start_time = NULL, "
									"high_water = NULL WHERE server = $1 AND stream = $2", S),
					  2, argtypes, args, NULL, SPI_OK_UPDATE);
	}

	/* we hold the stream lock: any run still "running" is a dead worker's */
	exec_as_owner(run, psprintf(ZD_FAIL_STALE_RUNS_SQL, S), 2, argtypes, args, NULL, SPI_OK_UPDATE);
	if (strcmp(status, "running") == 0 && !old_run_null)
		note(ss, "resumed after run " INT64_FORMAT " was interrupted", old_run);

	exec_as_owner(run, psprintf("UPDATE %s.zendesk_sync_state SET status = 'running', pages = 0, records = 0, "
								"last_started_at = now(), last_error = NULL, run_id = $3, target_schema = $4, "
								"server_url = %s WHERE server = $1 AND stream = $2", S,
								quote_literal_cstr(base_url)),
				  4, argtypes, args, NULL, SPI_OK_UPDATE);
	exec_as_owner(run, psprintf("INSERT INTO %s.zendesk_sync_runs (run_id, server, stream, status) "
								"VALUES ($3, $1, $2, 'running')", S),
				  3, argtypes, args, NULL, SPI_OK_INSERT);
	{
		Oid			t2[2] = {NAMEOID, INT4OID};
		Datum		a2[2] = {args[0], Int32GetDatum(run->req.runs_retention_days)};

		exec_as_owner(run, psprintf("DELETE FROM %s.zendesk_sync_runs WHERE server = $1 "
									"AND started_at < now() - make_interval(days => $2)", S),
					  2, t2, a2, NULL, SPI_OK_DELETE);
	}
}

/*
 * Upsert one page and move the checkpoint, in the caller's transaction.
 */
static void
apply_page(StreamSync *ss, ZdExport *exp)
{
	SyncRun    *run = ss->run;
	ZdPage	   *page = &exp->page;
	bool		has_high = false;
	int64		high = 0;
	int64		n;

	n = zd_upsert_page(ss->upsert, exp, ss->pages + 1, &high, &has_high);

	/* the checkpoint, in the same transaction as the rows above */
	{
		Oid			argtypes[6] = {NAMEOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID};
		Datum		args[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		Oid			rtypes[4] = {INT8OID, TEXTOID, INT8OID, INT4OID};
		Datum		rargs[4];

		args[0] = NameGetDatum(&run->server_nd);
		args[1] = CStringGetTextDatum(ss->res->name);
		if (ss->res->kind == ZD_EXPORT_CURSOR && exp->cursor)
			args[2] = CStringGetTextDatum(exp->cursor);
		else
			nulls[2] = 'n';
		/* the position export.c vetted, which is page->end_time */
		if (ss->res->kind == ZD_EXPORT_TIME && page->has_end_time)
			args[3] = TimestampTzGetDatum(epoch_to_timestamptz(exp->start_time));
		else
			nulls[3] = 'n';
		if (has_high)
		{
			args[4] = TimestampTzGetDatum(epoch_to_timestamptz(high));
			/* a cursor rejected later in this run restarts from here */
			if (!ss->has_high_water || high > ss->high_water)
				ss->high_water = high;
			ss->has_high_water = true;
		}
		else
			nulls[4] = 'n';
		args[5] = Int64GetDatum(n);
		exec_as_owner(run, psprintf("UPDATE %s.zendesk_sync_state SET cursor = coalesce($3, cursor), "
									"start_time = greatest(start_time, $4), high_water = greatest(high_water, $5), "
									"pages = pages + 1, records = records + $6 "
									"WHERE server = $1 AND stream = $2", run->ext_schema),
					  6, argtypes, args, nulls, SPI_OK_UPDATE);

		rargs[0] = Int64GetDatum(run->req.run_id);
		rargs[1] = args[1];
		rargs[2] = Int64GetDatum(n);
		rargs[3] = Int32GetDatum(1);
		exec_as_owner(run, psprintf("UPDATE %s.zendesk_sync_runs SET pages = pages + $4, records = records + $3 "
									"WHERE run_id = $1 AND stream = $2", run->ext_schema),
					  4, rtypes, rargs, NULL, SPI_OK_UPDATE);
	}
	ss->pages++;
	ss->records += n;
}

/*
 * Remember the user mapping's credentials, raw and as the Basic header
 * encodes them, so that no stored message can carry them: a proxy or an
 * error page may echo the request's headers back in its body.
 */
static void
remember_secret(SyncRun *run, const char *secret)
{
	ListCell   *lc;

	foreach(lc, run->secrets)
		if (strcmp(lfirst(lc), secret) == 0)
			return;
	run->secrets = lappend(run->secrets, pstrdup(secret));
}

/* At each stream's start: a mapping changed during the run adds its own. */
static void
remember_secrets(SyncRun *run, const ZdServerOptions *opts)
{
	MemoryContext old = MemoryContextSwitchTo(run->cxt);

	if (opts->api_token)
	{
		char	   *raw = psprintf("%s/token:%s", opts->email, opts->api_token);
		int			len = pg_b64_enc_len(strlen(raw));
		char	   *enc = palloc0(len + 1);

		remember_secret(run, opts->api_token);
		if (pg_b64_encode(raw, strlen(raw), enc, len) > 0)
			remember_secret(run, enc);
	}
	if (opts->oauth_token)
		remember_secret(run, opts->oauth_token);
	MemoryContextSwitchTo(old);
}

static char *
redact_secrets(SyncRun *run, const char *msg)
{
	StringInfoData buf;
	ListCell   *lc;
	char	   *cur = pstrdup(msg);

	foreach(lc, run->secrets)
	{
		const char *secret = lfirst(lc);
		size_t		slen = strlen(secret);
		const char *p = cur,
				   *hit;

		if (slen < 4)
			continue;
		initStringInfo(&buf);
		while ((hit = strstr(p, secret)) != NULL)
		{
			appendBinaryStringInfo(&buf, p, hit - p);
			appendStringInfoString(&buf, "[redacted]");
			p = hit + slen;
		}
		appendStringInfoString(&buf, p);
		cur = buf.data;
	}
	return cur;
}

/* Mark the stream's outcome in the state and run rows. */
static void
finish_stream(StreamSync *ss, bool ok, const char *error)
{
	SyncRun    *run = ss->run;
	Oid			argtypes[5] = {NAMEOID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	const char *message = ok ? (ss->message.len ? ss->message.data : NULL) :
		(ss->message.len ? psprintf("%s; %s", error, ss->message.data) : error);

	args[0] = NameGetDatum(&run->server_nd);
	args[1] = CStringGetTextDatum(ss->res->name);
	args[2] = Int64GetDatum(run->req.run_id);
	args[3] = CStringGetTextDatum(ok ? "ok" : "failed");
	if (message)
		args[4] = CStringGetTextDatum(redact_secrets(run, message));
	else
		nulls[4] = 'n';

	begin_tx();
	begin_spi();
	/* upserts: a stream that failed before its first commit has no rows yet */
	exec_as_owner(run, psprintf("INSERT INTO %s.zendesk_sync_state AS s (server, stream, status, run_id, last_error, "
								"last_success_at, last_started_at) "
								"VALUES ($1, $2, $4, $3, CASE WHEN $4 = 'ok' THEN NULL ELSE $5 END, "
								"CASE WHEN $4 = 'ok' THEN now() END, now()) "
								"ON CONFLICT (server, stream) DO UPDATE SET status = $4, run_id = $3, "
								"last_success_at = CASE WHEN $4 = 'ok' THEN now() ELSE s.last_success_at END, "
								"last_error = CASE WHEN $4 = 'ok' THEN NULL ELSE $5 END", run->ext_schema),
				  5, argtypes, args, nulls, SPI_OK_INSERT);
	exec_as_owner(run, psprintf("INSERT INTO %s.zendesk_sync_runs AS r (run_id, server, stream, status, finished_at, message) "
								"VALUES ($3, $1, $2, $4, clock_timestamp(), $5) "
								"ON CONFLICT (run_id, stream) DO UPDATE SET status = $4, "
								"finished_at = clock_timestamp(), message = $5", run->ext_schema),
				  5, argtypes, args, nulls, SPI_OK_INSERT);
	end_spi_and_commit();
}

static void
sync_stream(StreamSync *ss)
{
	SyncRun    *run = ss->run;
	const ZdResource *res = ss->res;
	StreamState st;
	ZdServerOptions *opts;
	ZdConnection *conn;
	ZdExport	exp;
	char	   *cursor = NULL;
	int64		start;
	int64		start_date;
	int			page_size;
	bool		recovered = false;

	report_activity(ss, "starting");
	begin_tx();
	begin_spi();
	opts = zd_get_server_options(run->req.serverid, run->req.userid, true);
	remember_secrets(run, opts);
	start_stream(ss, &st, opts->base_url);
	ss->has_high_water = st.has_high_water;
	ss->high_water = st.high_water;
	conn = zd_get_connection(run->req.serverid, run->req.userid);
	/* opts dies with this transaction: keep what later pages need */
	start_date = opts->start_date;
	page_size = opts->page_size;
	start = start_date;
	if (res->kind == ZD_EXPORT_CURSOR)
	{
		if (st.cursor)
			cursor = st.cursor;
		else if (st.has_high_water)
		{
			/* the cursor was lost (set to NULL by hand, or never stored) */
			start = st.high_water - zd_recovery_overlap_seconds;
			note(ss, "no stored cursor: resumed from " INT64_FORMAT " (newest synced change minus recovery_overlap)",
				 start);
		}
		else if (st.has_start_time)
			start = st.start_time;
	}
	else if (st.has_start_time)
		start = st.start_time;
	end_spi_and_commit();

	zd_export_init(&exp, conn, res, cursor, start, page_size, ss->cxt);
	exp.prefetch = true;		/* every page is read: ask ahead */

	for (;;)
	{
		ZdPageResult r;

		CHECK_FOR_INTERRUPTS();
		report_activity(ss, "fetching");
		/* the request needs catalog access for its error messages */
		begin_tx();
		r = zd_export_next_page(&exp);
		if (r == ZD_PAGE_DONE)
		{
			CommitTransactionCommand();
			break;
		}
		if (r == ZD_PAGE_CURSOR_REJECTED)
		{
			if (recovered)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Zendesk rejected the %s export cursor again (HTTP %d) after recovery",
								res->name, exp.rejected_status)));

			/*
			 * Without a recovery point (no record synced yet) the only place
			 * to restart is start_date.  Unless start_date was set, that is
			 * a full export from 1970: never start one silently.
			 */
			if (!ss->has_high_water && start_date <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Zendesk rejected the stored %s export cursor (HTTP %d) and there is no recovery point: reset required",
								res->name, exp.rejected_status),
						 errdetail("No record of this stream has been synced yet, so there is no newest change to restart from."),
						 errhint("Run SELECT zendesk_sync_reset('%s', '%s', <start time>) to choose where the export restarts, or set the server option start_date.",
								 run->server_name, res->name)));
			recovered = true;
			start = ss->has_high_water ? ss->high_water - zd_recovery_overlap_seconds : start_date;
			note(ss, "stored cursor rejected (HTTP %d): restarted from " INT64_FORMAT " (%s)",
				 exp.rejected_status, start,
				 ss->has_high_water ? "newest synced change minus recovery_overlap" : "start_date");
			ereport(WARNING,
					(errmsg("zendesk_sync %s: %s cursor rejected with HTTP %d; restarting from the timestamp " INT64_FORMAT,
							run->server_name, res->name, exp.rejected_status, start)));
			zd_export_end(&exp);
			zd_export_init(&exp, conn, res, NULL, start, page_size, ss->cxt);
			exp.prefetch = true;
			CommitTransactionCommand();
			continue;
		}
		report_activity(ss, "writing");
		begin_spi();
		apply_page(ss, &exp);
		end_spi_and_commit();
	}
	if (exp.too_recent)
		note(ss, "Zendesk refused the start time as too recent: nothing new");
	zd_export_end(&exp);
	finish_stream(ss, true, NULL);
}

static void
record_already_running(SyncRun *run, const ZdResource *res)
{
	Oid			argtypes[3] = {NAMEOID, TEXTOID, INT8OID};
	Datum		args[3];

	args[0] = NameGetDatum(&run->server_nd);
	args[1] = CStringGetTextDatum(res->name);
	args[2] = Int64GetDatum(run->req.run_id);
	begin_tx();
	begin_spi();
	exec_as_owner(run, psprintf("INSERT INTO %s.zendesk_sync_runs (run_id, server, stream, status, finished_at, message) "
								"VALUES ($3, $1, $2, 'already running', now(), "
								"'another zendesk_sync is running this stream; nothing was done')",
								run->ext_schema),
				  3, argtypes, args, NULL, SPI_OK_INSERT);
	end_spi_and_commit();
}


/*
 * pg_terminate_backend, a cancelled caller and a shutdown end the worker
 * with FATAL, which skips the PG_CATCH below.  Record the stream as failed
 * on the way out (PostgreSQL's temp-table cleanup runs a transaction in its
 * exit callback the same way), so the state never says "running" for a
 * worker that is gone.  A kill -9 or a crash runs nothing: the next run
 * marks such a stream failed.
 */
static void
mark_terminated(int code, Datum arg)
{
	StreamSync *ss = current_stream;

	if (ss == NULL)
		return;
	current_stream = NULL;
	AbortOutOfAnyTransaction();
	PG_TRY();
	{
		finish_stream(ss, false, "terminated: the sync worker was stopped "
					  "(pg_terminate_backend, a cancelled caller or a shutdown); "
					  "the next run resumes from the last committed page");
	}
	PG_CATCH();
	{
		/* best effort: the next run marks the stream failed instead */
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
	}
	PG_END_TRY();
}

static void
run_stream(SyncRun *run, int index)
{
	StreamSync *ss;
	MemoryContext cxt;

	if (!zd_stream_lock(run->req.serverid, index, true))
	{
		record_already_running(run, zd_resources[index]);
		return;
	}

	cxt = AllocSetContextCreate(run->cxt, "zendesk_sync stream", ALLOCSET_DEFAULT_SIZES);
	ss = MemoryContextAllocZero(cxt, sizeof(StreamSync));
	ss->run = run;
	ss->index = index;
	ss->res = zd_resources[index];
	ss->cxt = cxt;
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		initStringInfo(&ss->message);
		MemoryContextSwitchTo(old);
	}

	/*
	 * Zendesk rejected the credentials on an earlier stream: the same
	 * credentials would fail here too, so do not send another request.
	 */
	if (run->auth_error)
	{
		finish_stream(ss, false, psprintf("not attempted: %s", run->auth_error));
		zd_stream_unlock(run->req.serverid, index, true);
		MemoryContextDelete(cxt);
		return;
	}

	current_stream = ss;
	PG_TRY();
	{
		sync_stream(ss);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *msg;

		current_stream = NULL;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		msg = edata->detail ? psprintf("%s (%s)", edata->message, edata->detail)
			: pstrdup(edata->message);
		/* the hint says what to do (e.g. that exports need an admin) */
		if (edata->hint)
			msg = psprintf("%s Hint: %s", msg, edata->hint);
		msg = redact_secrets(run, msg);
		ereport(LOG,
				(errmsg("zendesk_sync %s: stream %s failed: %s",
						run->server_name, ss->res->name, msg)));
		if (edata->sqlerrcode == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
			run->auth_error = MemoryContextStrdup(run->cxt, edata->message);
		finish_stream(ss, false, msg);
	}
	PG_END_TRY();
	current_stream = NULL;

	if (ss->upsert)
		zd_upsert_free(ss->upsert);
	zd_stream_unlock(run->req.serverid, index, true);
	MemoryContextDelete(cxt);
}

void
zendesk_sync_worker_main(Datum arg)
{
	SyncRun		run;
	Oid			ext_schema;
	uint32		flags = 0;

	memset(&run, 0, sizeof(run));
	memcpy(&run.req, MyBgworkerEntry->bgw_extra, sizeof(ZdSyncRequest));

#ifdef __GLIBC__

	/*
	 * json-c mallocs every value of a page and frees them all at once; with
	 * glibc's fastbins that ends in malloc_consolidate, which took an eighth
	 * of this worker's CPU (bench/README.md).  The worker is a process of its
	 * own, so it turns fastbins off for itself.
	 */
	(void) mallopt(M_MXFAST, 0);
#endif

	/* SIGTERM (pg_terminate_backend) becomes FATAL at the next interrupt check */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
#if PG_VERSION_NUM >= 170000
	flags |= BGWORKER_BYPASS_ROLELOGINCHECK;
#endif
	BackgroundWorkerInitializeConnectionByOid(run.req.dbid, run.req.userid, flags);
	before_shmem_exit(mark_terminated, (Datum) 0);
	zd_wait_hook = report_wait;

	/* the caller's settings */
	zd_holdback_seconds = run.req.holdback;
	zd_recovery_overlap_seconds = run.req.recovery_overlap;
	zd_max_retry_wait_seconds = run.req.max_retry_wait;
	zd_sync_runs_retention_days = run.req.runs_retention_days;

	run.cxt = AllocSetContextCreate(TopMemoryContext, "zendesk_sync", ALLOCSET_DEFAULT_SIZES);
	run.auth_error = NULL;

	begin_tx();
	{
		MemoryContext old = MemoryContextSwitchTo(run.cxt);

		run.server_name = pstrdup(GetForeignServer(run.req.serverid)->servername);
		namestrcpy(&run.server_nd, run.server_name);
		ext_schema = zd_extension_schema();
		run.ext_schema = pstrdup(quote_identifier(get_namespace_name(ext_schema)));
		run.ext_owner = zd_extension_owner();
		MemoryContextSwitchTo(old);
	}
	CommitTransactionCommand();

	for (int r = 0; r < zd_nresources; r++)
		if (run.req.streams_mask & (1 << r))
			run_stream(&run, r);

	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
