/*-------------------------------------------------------------------------
 *
 * export.c
 *		  One Zendesk incremental export stream, read page by page.
 *
 * This is the only code that knows how the two kinds of export advance:
 * cursor exports send start_time once and then only cursor=<after_cursor>;
 * time-based exports send start_time=<end_time of the previous page>.  Both
 * stop on end_of_stream and nothing else, and both refuse to loop on a page
 * that does not move the position (a server that returns the same cursor,
 * or 1000+ records sharing one second in a time-based export).
 *
 * Each page lives in page_cxt, which is reset before the next request, so a
 * scan or a sync holds one page in memory however large the account is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <json.h>

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "zendesk_fdw.h"

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

/*
 * Remember the ids of the records that sit on the page's last second: a
 * time-based export starts the next page at that second again (start_time
 * is inclusive), so those records come twice.
 */
static void
remember_boundary(ZdExport *exp)
{
	ZdPage	   *page = &exp->page;
	int			n = 0;

	if (exp->boundary_ids)
		pfree(exp->boundary_ids);
	exp->boundary_ids = NULL;
	exp->nboundary = 0;
	if (!page->has_end_time || page->nrecords == 0)
		return;

	exp->boundary_ids = MemoryContextAlloc(exp->state_cxt,
										   sizeof(int64) * page->nrecords);
	for (int i = 0; i < page->nrecords; i++)
	{
		struct json_object *rec = json_object_array_get_idx(page->records, i);
		int64		ts,
					id;

		if (zd_record_change_time(exp->res, rec, &ts) &&
			ts == page->end_time && zd_record_id(rec, &id))
			exp->boundary_ids[n++] = id;
	}
	exp->nboundary = n;
	exp->boundary_time = page->end_time;
}

/*
 * True when a record of the current page is a repeat of one the previous
 * page already delivered (same id, same change time).  A record changed in
 * between has a newer change time and is not a repeat.
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
			return true;
	return false;
}

/* Record i of a page (callers need not include json-c). */
struct json_object *
zd_page_record(const ZdPage *page, int i)
{
	return json_object_array_get_idx(page->records, i);
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

	if (exp->done)
		return ZD_PAGE_DONE;

	/* boundary ids must survive the reset of the previous page */
	if (res->kind == ZD_EXPORT_TIME && exp->pages > 0)
		remember_boundary(exp);

	MemoryContextReset(exp->page_cxt);
	memset(page, 0, sizeof(ZdPage));
	oldcxt = MemoryContextSwitchTo(exp->page_cxt);

	if (res->kind == ZD_EXPORT_CURSOR && exp->cursor != NULL)
		request_cursor = pstrdup(exp->cursor);
	else
		request_start = zd_clamp_start_time(exp->start_time);
	request = build_request(res, request_cursor, request_start, exp->per_page);
	exp->request = request;

	resp = zd_http_get(exp->conn, request);

	if (resp->status >= 400 && request_cursor != NULL &&
		resp->status != 401 && resp->status != 403 && resp->status != 429)
	{
		/* the caller decides how to recover from a rejected cursor */
		exp->rejected_status = (int) resp->status;
		MemoryContextSwitchTo(oldcxt);
		return ZD_PAGE_CURSOR_REJECTED;
	}
	if (resp->status != 200)
	{
		char	   *snippet = pnstrdup(resp->body, Min(resp->body_len, 200));

		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Zendesk returned HTTP %ld for GET %s", resp->status, request),
				 errdetail("Response body: %s", snippet)));
	}

	zd_page_parse(page, res, resp, request);
	exp->pages++;

	if (res->kind == ZD_EXPORT_CURSOR)
	{
		/* a response without a cursor keeps the position we had */
		if (page->after_cursor != NULL)
		{
			if (!page->end_of_stream && page->nrecords > 0 &&
				request_cursor != NULL &&
				strcmp(page->after_cursor, request_cursor) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Zendesk %s export did not advance: the response repeats cursor \"%s\"",
								res->name, request_cursor),
						 errdetail("end_of_stream is false, so following the cursor would loop forever.")));
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
			if (page->end_time <= request_start)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Zendesk %s export is stuck at timestamp " INT64_FORMAT,
								res->name, request_start),
						 errdetail("More than %d records share that second, so a time-based export cannot page past it.",
								   page->nrecords),
						 errhint("Raise the server option page_size (up to 1000) and retry.")));
		}
		if (page->has_end_time)
			exp->start_time = page->end_time;
	}

	if (page->end_of_stream)
		exp->done = true;

	MemoryContextSwitchTo(oldcxt);
	return ZD_PAGE_OK;
}
