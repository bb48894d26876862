/*-------------------------------------------------------------------------
 *
 * export.c
 *		  One Zendesk incremental export stream, read page by page.
 *
 * This is the only code that knows how the two kinds of export advance:
 * cursor exports send start_time once and then only cursor=<after_cursor>;
 * time-based exports send start_time=<end_time of the previous page>.  Both
 * stop on end_of_stream and nothing else, and both refuse to loop on a page
 * that does not move the position (a server that returns the same or an
 * earlier cursor, end_time not past start_time, 1000+ records sharing one
 * second in a time-based export), under a hard page budget.
 *
 * start_time is capped by Zendesk's clock (its Date header) once known, and
 * a start_time Zendesk refuses as too recent means "nothing new".  When
 * http.c had to halve per_page after a gateway timeout, the smaller page is
 * kept for the next requests and grows back after a run of good pages.
 *
 * Each page lives in page_cxt, which is reset before the next request, so a
 * scan or a sync holds one page in memory however large the account is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <json.h>

#include "common/hashfn.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "zendesk_fdw.h"

/*
 * Hard budget of one export (I4): 10 million pages is far beyond any real
 * account, and stops a server that keeps handing out new cursors forever.
 */
#define ZD_EXPORT_MAX_PAGES		10000000
/* how far past the server's clock an end_time may be (clock resolution) */
#define ZD_END_TIME_SLACK		60
/* consecutive empty pages without end_of_stream before we call it a loop */
#define ZD_MAX_EMPTY_PAGES		3
/* good pages at a reduced per_page before trying twice as many again */
#define ZD_GROW_AFTER_PAGES		5

/* Unix epoch seconds of the local clock */
static int64
epoch_now(void)
{
	TimestampTz now = GetCurrentTimestamp();

	return (int64) (now / USECS_PER_SEC) +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

/*
 * Zendesk refuses a start_time within the last minute and never returns
 * records from it; zendesk_fdw.holdback (default 61 s) keeps us clear of
 * that edge.  Moving start_time back only re-reads records, which the
 * upserts and the boundary dedup absorb.
 */
int64
zd_clamp_start_time(int64 start_time)
{
	int64		latest = epoch_now() - zd_holdback_seconds;

	if (start_time > latest)
		start_time = latest;
	if (start_time < 0)
		start_time = 0;
	return start_time;
}

/* path?query for the next request; allocated in CurrentMemoryContext */
static char *
build_request(const ZdResource *res, const char *cursor, int64 start_time,
			  int per_page)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, res->export_path);
	if (cursor != NULL)
	{
		/* the cursor is opaque base64: escape what a query string needs */
		appendStringInfoString(&buf, "?cursor=");
		for (const char *p = cursor; *p; p++)
		{
			unsigned char c = (unsigned char) *p;

			if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
				appendStringInfoChar(&buf, c);
			else
				appendStringInfo(&buf, "%%%02X", c);
		}
	}
	else
		appendStringInfo(&buf, "?start_time=" INT64_FORMAT, start_time);
	appendStringInfo(&buf, "&per_page=%d", per_page);
	if (res->export_params)
		appendStringInfo(&buf, "&%s", res->export_params);
	return buf.data;
}

/* What EXPLAIN shows: the first request, with a clamped start time. */
char *
zd_export_describe(const ZdResource *res, const char *cursor,
				   int64 start_time, int per_page)
{
	return psprintf("GET %s", build_request(res, cursor,
											cursor ? 0 : zd_clamp_start_time(start_time),
											per_page));
}

void
zd_export_init(ZdExport *exp, ZdConnection *conn, const ZdResource *res,
			   const char *cursor, int64 start_time, int per_page,
			   MemoryContext parent)
{
	memset(exp, 0, sizeof(ZdExport));
	exp->conn = conn;
	exp->res = res;
	exp->per_page = per_page;
	exp->max_per_page = per_page;
	exp->page_cxt = AllocSetContextCreate(parent, "zendesk_fdw export page",
										  ALLOCSET_DEFAULT_SIZES);
	exp->state_cxt = AllocSetContextCreate(parent, "zendesk_fdw export state",
										   ALLOCSET_SMALL_SIZES);
	exp->cursor = cursor ? MemoryContextStrdup(exp->state_cxt, cursor) : NULL;
	exp->start_time = start_time;
}

void
zd_export_end(ZdExport *exp)
{
	if (exp->page_cxt)
		MemoryContextDelete(exp->page_cxt);
	if (exp->state_cxt)
		MemoryContextDelete(exp->state_cxt);
	exp->page_cxt = exp->state_cxt = NULL;
}

/* Hash of a record's JSON text: tells an identical repeat from a change. */
static uint64
record_hash(struct json_object *rec)
{
	size_t		len;
	const char *s = json_object_to_json_string_length(rec, JSON_C_TO_STRING_PLAIN, &len);

	return hash_bytes_extended((const unsigned char *) s, (int) len, 0);
}

/*
 * Remember the records that sit on the page's last second: a time-based
 * export starts the next page at that second again (start_time is
 * inclusive), so those records come twice.
 */
static void
remember_boundary(ZdExport *exp)
{
	ZdPage	   *page = &exp->page;
	int			n = 0;

	if (exp->boundary_ids)
		pfree(exp->boundary_ids);
	if (exp->boundary_hashes)
		pfree(exp->boundary_hashes);
	exp->boundary_ids = NULL;
	exp->boundary_hashes = NULL;
	exp->nboundary = 0;
	if (!page->has_end_time || page->nrecords == 0)
		return;

	exp->boundary_ids = MemoryContextAlloc(exp->state_cxt,
										   sizeof(int64) * page->nrecords);
	exp->boundary_hashes = MemoryContextAlloc(exp->state_cxt,
											  sizeof(uint64) * page->nrecords);
	for (int i = 0; i < page->nrecords; i++)
	{
		struct json_object *rec = json_object_array_get_idx(page->records, i);
		int64		ts,
					id;

		if (zd_record_change_time(exp->res, rec, &ts) &&
			ts == page->end_time && zd_record_id(rec, &id))
		{
			exp->boundary_ids[n] = id;
			exp->boundary_hashes[n] = record_hash(rec);
			n++;
		}
	}
	exp->nboundary = n;
	exp->boundary_time = page->end_time;
}

/*
 * True when a record of the current page is a repeat of one the previous
 * page already delivered: same id, same change time and same content.  A
 * copy that differs (changed within the same second) is not a repeat, so
 * the later-fetched copy wins.
 */
bool
zd_export_is_repeat(ZdExport *exp, struct json_object *record)
{
	int64		id,
				ts;

	if (exp->nboundary == 0 || !zd_record_id(record, &id) ||
		!zd_record_change_time(exp->res, record, &ts) ||
		ts != exp->boundary_time)
		return false;
	for (int i = 0; i < exp->nboundary; i++)
		if (exp->boundary_ids[i] == id)
			return exp->boundary_hashes[i] == record_hash(record);
	return false;
}

/* Record i of a page (callers need not include json-c). */
struct json_object *
zd_page_record(const ZdPage *page, int i)
{
	return json_object_array_get_idx(page->records, i);
}

/*
 * The start_time to send: zd_clamp_start_time, but by the server's clock
 * once a response has told us what it is.  Zendesk refuses a start_time in
 * its own last minute, so a local clock running ahead of Zendesk's must not
 * carry start_time into the server's future (and one running behind need
 * not hold us back).
 */
static int64
clamp_for_server(ZdExport *exp, int64 start_time)
{
	int64		skew = 0;
	int64		latest;

	(void) zd_connection_clock_skew(exp->conn, &skew);
	latest = epoch_now() + skew - zd_holdback_seconds;
	if (start_time > latest)
		start_time = latest;
	return Max(start_time, 0);
}

/* Case-insensitive search in the first bytes of a response body */
static bool
body_mentions(const ZdHttpResponse *resp, const char *what)
{
	size_t		n = Min(resp->body_len, (size_t) 4096);
	size_t		wl = strlen(what);

	for (size_t i = 0; i + wl <= n; i++)
		if (pg_strncasecmp(resp->body + i, what, wl) == 0)
			return true;
	return false;
}

/*
 * Zendesk's answer to a start_time within its last minute (or in its
 * future): 422 "Too recent start_time" (historically InvalidValue) or 400
 * StartTimeTooRecent.
 */
static bool
start_time_too_recent(const ZdHttpResponse *resp)
{
	return (resp->status == 400 || resp->status == 422) &&
		(body_mentions(resp, "Too recent start_time") ||
		 body_mentions(resp, "StartTimeTooRecent"));
}

/* per_page of the request that was answered (http.c may have halved it) */
static int
answered_per_page(const ZdHttpResponse *resp, int asked)
{
	const char *q = strchr(resp->effective_url, '?');
	const char *p;

	for (p = q; p != NULL && (p = strstr(p, "per_page=")) != NULL; p++)
		if (p[-1] == '?' || p[-1] == '&')
		{
			long		v = strtol(p + strlen("per_page="), NULL, 10);

			return (v >= 1 && v < asked) ? (int) v : asked;
		}
	return asked;
}

static void pg_attribute_noreturn()
no_progress(ZdExport *exp, const char *request, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Zendesk %s export made no progress: %s",
					exp->res->name, why),
			 errdetail("Request: GET %s", request),
			 errhint("The position was not advanced; the next run starts again from the last committed page.")));
	pg_unreachable();
}

/*
 * Ask for the page after the current one now, so Zendesk builds it while
 * the caller writes this one.  Only the request that zd_export_next_page
 * will make next is sent (the same computation, without its errors); if
 * that turns out different after all, connection.c drops the head start.
 */
static void
prefetch_next(ZdExport *exp)
{
	int64		start;

	if (exp->res->kind == ZD_EXPORT_CURSOR && exp->cursor != NULL)
	{
		zd_http_prefetch(exp->conn, build_request(exp->res, exp->cursor, 0,
												  exp->per_page));
		return;
	}
	start = clamp_for_server(exp, exp->start_time);
	if (start < exp->start_time ||
		(exp->has_last_start && start <= exp->last_start))
		return;					/* caught up, or an error to raise later */
	zd_http_prefetch(exp->conn, build_request(exp->res, NULL, start,
											  exp->per_page));
}

ZdPageResult
zd_export_next_page(ZdExport *exp)
{
	const ZdResource *res = exp->res;
	ZdHttpResponse *resp;
	ZdPage	   *page = &exp->page;
	MemoryContext oldcxt;
	char	   *request;
	int64		request_start = 0;
	char	   *request_cursor = NULL;
	bool		recapped = false;
	int			asked;

	if (exp->done)
		return ZD_PAGE_DONE;

	/* hard budget: no export legitimately needs this many pages */
	if (exp->pages >= ZD_EXPORT_MAX_PAGES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Zendesk %s export stopped after %d pages without reaching end_of_stream",
						res->name, exp->pages)));

	/* boundary ids must survive the reset of the previous page */
	if (res->kind == ZD_EXPORT_TIME && exp->pages > 0)
		remember_boundary(exp);

	MemoryContextReset(exp->page_cxt);
	memset(page, 0, sizeof(ZdPage));
	oldcxt = MemoryContextSwitchTo(exp->page_cxt);

	if (res->kind == ZD_EXPORT_CURSOR && exp->cursor != NULL)
		request_cursor = pstrdup(exp->cursor);
	else
	{
		request_start = clamp_for_server(exp, exp->start_time);

		/*
		 * The previous page ended at a second we may not ask for yet (it is
		 * within the hold-back): we have caught up.  The checkpoint is that
		 * page's end_time, so the next run continues from there.
		 */
		if (exp->pages > 0 && request_start < exp->start_time)
		{
			exp->done = true;
			MemoryContextSwitchTo(oldcxt);
			return ZD_PAGE_DONE;
		}
		if (exp->has_last_start && request_start <= exp->last_start)
			no_progress(exp, build_request(res, NULL, request_start, exp->per_page),
						psprintf("the next start_time " INT64_FORMAT " does not move past the previous one (" INT64_FORMAT ")",
								 request_start, exp->last_start));
	}

	for (;;)
	{
		asked = exp->per_page;
		request = build_request(res, request_cursor, request_start, asked);
		exp->request = request;

		resp = zd_http_get(exp->conn, request);

		if (request_cursor == NULL && start_time_too_recent(resp))
		{
			/* the answer carried Zendesk's clock: try once by that clock */
			int64		capped = clamp_for_server(exp, exp->start_time);

			if (!recapped && capped < request_start)
			{
				ereport(LOG,
						(errmsg("zendesk_fdw: Zendesk refused start_time " INT64_FORMAT " of the %s export as too recent; retrying with " INT64_FORMAT " by the server's clock",
								request_start, res->name, capped)));
				request_start = capped;
				recapped = true;
				continue;
			}

			/* nothing has changed since start_time that Zendesk would show */
			ereport(LOG,
					(errmsg("zendesk_fdw: Zendesk refused start_time " INT64_FORMAT " of the %s export as too recent (HTTP %ld): nothing new to export",
							request_start, res->name, resp->status)));
			exp->too_recent = true;
			exp->done = true;
			MemoryContextSwitchTo(oldcxt);
			return ZD_PAGE_DONE;
		}
		break;
	}

	if (resp->status >= 400 && request_cursor != NULL &&
		resp->status != 401 && resp->status != 403 && resp->status != 429)
	{
		/* the caller decides how to recover from a rejected cursor */
		exp->rejected_status = (int) resp->status;
		MemoryContextSwitchTo(oldcxt);
		return ZD_PAGE_CURSOR_REJECTED;
	}
	if (resp->status != 200)
		zd_http_status_error(resp, request);

	zd_page_parse(page, res, resp, request);
	exp->pages++;

	/*
	 * A gateway timeout made http.c ask for fewer records: keep the smaller
	 * page for the next requests, and grow back after a run of good pages.
	 */
	asked = answered_per_page(resp, asked);
	if (asked < exp->per_page)
	{
		exp->per_page = asked;
		exp->good_pages = 0;
	}
	else if (exp->per_page < exp->max_per_page &&
			 ++exp->good_pages >= ZD_GROW_AFTER_PAGES)
	{
		exp->per_page = Min(exp->per_page * 2, exp->max_per_page);
		exp->good_pages = 0;
	}

	if (!page->end_of_stream && page->nrecords == 0)
	{
		if (++exp->empty_pages >= ZD_MAX_EMPTY_PAGES)
			no_progress(exp, request,
						psprintf("%d pages in a row had no records but end_of_stream was false",
								 exp->empty_pages));
	}
	else
		exp->empty_pages = 0;

	if (res->kind == ZD_EXPORT_CURSOR)
	{
		/* a response without a cursor keeps the position we had */
		if (page->after_cursor != NULL)
		{
			if (!page->end_of_stream)
			{
				/* the same cursor again (or an earlier one): a loop */
				if (request_cursor != NULL &&
					strcmp(page->after_cursor, request_cursor) == 0)
					no_progress(exp, request,
								psprintf("the response repeats cursor \"%s\" with end_of_stream false",
										 request_cursor));
				for (int i = 0; i < Min(exp->nrecent, (int) lengthof(exp->recent_cursors)); i++)
					if (strcmp(page->after_cursor, exp->recent_cursors[i]) == 0)
						no_progress(exp, request,
									psprintf("the response returns to the earlier cursor \"%s\" with end_of_stream false",
											 page->after_cursor));
			}
			if (request_cursor != NULL)
			{
				/* a ring of the last cursors requested */
				int			slot = exp->nrecent % lengthof(exp->recent_cursors);

				if (exp->recent_cursors[slot] != NULL)
					pfree(exp->recent_cursors[slot]);
				exp->recent_cursors[slot] = MemoryContextStrdup(exp->state_cxt, request_cursor);
				exp->nrecent++;
			}
			if (exp->cursor)
				pfree(exp->cursor);
			exp->cursor = MemoryContextStrdup(exp->state_cxt, page->after_cursor);
		}
		else if (!page->end_of_stream)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Zendesk %s export page has no after_cursor but end_of_stream is false",
							res->name),
					 errdetail("Request: GET %s", request)));
	}
	else
	{
		exp->has_last_start = true;
		exp->last_start = request_start;
		if (!page->end_of_stream)
		{
			if (!page->has_end_time)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Zendesk %s export page has no end_time but end_of_stream is false",
								res->name),
						 errdetail("Request: GET %s", request)));

			/*
			 * More records share the start second than a page holds: the
			 * next page would be this one again.  Skipping ahead would lose
			 * records, so stop and say why.
			 */
			if (page->end_time == request_start && page->nrecords >= asked)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Zendesk %s export is stuck at timestamp " INT64_FORMAT,
								res->name, request_start),
						 errdetail("At least %d records share that second, so a time-based export cannot page past it.",
								   page->nrecords),
						 asked < 1000 ?
						 errhint("Raise the server option page_size (up to 1000) and retry.") :
						 errhint("Zendesk's time-based %s export cannot get past more than 1000 changes in one second; the checkpoint stays at " INT64_FORMAT ".",
								 res->name, request_start)));
			if (page->end_time <= request_start)
				no_progress(exp, request,
							psprintf("end_time " INT64_FORMAT " does not move past start_time " INT64_FORMAT " and end_of_stream is false",
									 page->end_time, request_start));
		}
		if (page->has_end_time)
		{
			int64		skew = 0;
			int64		server_now;

			/*
			 * end_time becomes the checkpoint.  One in the server's future
			 * would make every later run ask for nothing and report ok while
			 * changes pile up unseen, so refuse the page instead.
			 */
			(void) zd_connection_clock_skew(exp->conn, &skew);
			server_now = epoch_now() + skew;
			if (page->end_time > server_now + ZD_END_TIME_SLACK)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("Zendesk %s export returned end_time " INT64_FORMAT ", after the server's own clock (" INT64_FORMAT ")",
								res->name, page->end_time, server_now),
						 errdetail("Request: GET %s", request),
						 errhint("The page is not applied and the checkpoint stays where it was.")));
			exp->start_time = page->end_time;
		}
	}

	if (page->end_of_stream)
		exp->done = true;
	else if (exp->prefetch)
		prefetch_next(exp);

	MemoryContextSwitchTo(oldcxt);
	return ZD_PAGE_OK;
}
