/*-------------------------------------------------------------------------
 *
 * http.c
 *		  GET requests against the Zendesk API: retries, redirects, rate
 *		  limits.  The handle and its transfers are connection.c's.
 *
 * Retries say why in the log (rate limit vs. transient server error).  An
 * export page that the server fails to build (500/502/504) is asked for
 * again with half the per_page; a 504 (gateway timeout) does so at once and
 * without using up the retry budget, since per_page only halves to 1.  The
 * Date header of every response gives the server's clock (see
 * zd_connection_clock_skew).  Messages name the origin and the path only,
 * never a credential.
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "connection.h"

#define ZD_MAX_REDIRECTS		5
#define ZD_DEFAULT_429_WAIT_S	60
#define ZD_SNIPPET_BYTES		200
#define ZD_WAIT_CAP				Max(zd_max_retry_wait_seconds, 0)

/* ------------------------------------------------------------------------
 * Waits and messages
 * ------------------------------------------------------------------------
 */

/* Set by the sync worker to show its waits in pg_stat_activity. */
void		(*zd_wait_hook) (long ms, const char *why) = NULL;

/* A wait worth telling the user about: through the hook, then sleep. */
static void
zd_wait(long ms, const char *why)
{
	if (zd_wait_hook)
		zd_wait_hook(ms, why);
	zd_sleep_ms(ms);
	if (zd_wait_hook)
		zd_wait_hook(-1, NULL);
}

void
zd_sleep_ms(long ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	CHECK_FOR_INTERRUPTS();
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		remaining;

		if (now >= deadline)
			break;
		remaining = (long) ((deadline - now + 999) / 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(remaining, 1000L), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Path and query of an absolute URL, for messages. */
static const char *
zd_url_path(const char *url)
{
	const char *p = strstr(url, "://");

	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	return *p ? p : "/";
}

/*
 * An HTTP status the caller cannot use, as an ERROR with the start of the
 * body (Zendesk's error object says what was wrong).
 */
void
zd_http_status_error(const ZdHttpResponse *resp, const char *request)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Zendesk returned HTTP %ld for GET %s", resp->status, request),
			 errdetail("Response body: %s", zd_body_printable(resp, 0, 200))));
}

/* First bytes of the body, printable and redacted, for messages. */
static char *
zd_body_snippet(const ZdConnection *conn)
{
	ZdHttpResponse r;

	memset(&r, 0, sizeof(r));
	r.body = conn->body;
	r.body_len = conn->body_len;
	r.secrets = conn->secrets;
	return zd_body_printable(&r, 0, ZD_SNIPPET_BYTES);
}

/* 1, 2, 4 ... seconds before attempt number 'next' (2 is the first retry) */
static int
zd_backoff_seconds(int next)
{
	return Min(1 << Min(Max(next - 2, 0), 30), ZD_WAIT_CAP);
}

static bool
zd_transport_retryable(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_PARTIAL_FILE:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_BAD_CONTENT_ENCODING:	/* e.g. truncated gzip stream */
			return true;
		default:
			return false;
	}
}

/*
 * Export pacing.  Zendesk limits incremental exports per minute and reports
 * the remaining budget on every export response.  When a successful export
 * response says the budget is 0, we remember when it resets and the next
 * export request waits until then, so a normal run never sees a 429.  Other
 * endpoints have their own, larger limits and are not paced here.
 */
static void
zd_pace_exports(ZdConnection *conn, const char *path, bool before)
{
	TimestampTz now = GetCurrentTimestamp();
	int			reset = conn->resp.ratelimit_reset;

	if (before && conn->export_pace_until > now)
	{
		long		ms = (long) ((conn->export_pace_until - now + 999) / 1000);

		ereport(LOG,
				(errmsg("zendesk_fdw: export rate limit used up, waiting %ld ms before GET %s",
						ms, path)));
		zd_wait(ms, "export rate limit");
	}
	conn->export_pace_until = 0;
	/* after a response; one second of slack as resets are whole seconds */
	if (!before && conn->resp.ratelimit_remaining == 0 && reset >= 0)
		conn->export_pace_until =
			TimestampTzPlusMilliseconds(now, (Min(reset, ZD_WAIT_CAP) + 1) * 1000L);
}

/*
 * Halve the per_page parameter of the current URL (export requests carry
 * one).  False when there is none or it is already 1.
 */
static bool
zd_shrink_per_page(ZdConnection *conn, int *old_pp, int *new_pp)
{
	char	   *q = strchr(conn->url.data, '?');
	char	   *p;
	char	   *end;
	long		v;
	char	   *rest;

	if (q == NULL)
		return false;
	for (p = q; (p = strstr(p, "per_page=")) != NULL; p++)
		if (p[-1] == '?' || p[-1] == '&')
			break;
	if (p == NULL)
		return false;
	p += strlen("per_page=");
	v = strtol(p, &end, 10);
	if (end == p || v <= 1 || v > INT_MAX)
		return false;
	*old_pp = (int) v;
	*new_pp = (int) (v / 2);
	rest = pstrdup(end);
	conn->url.len = (int) (p - conn->url.data);
	conn->url.data[conn->url.len] = '\0';
	appendStringInfo(&conn->url, "%d%s", *new_pp, rest);
	pfree(rest);
	return true;
}

/* Local clock in whole Unix seconds */
static int64
zd_local_epoch(void)
{
	return (int64) (GetCurrentTimestamp() / USECS_PER_SEC) +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

ZdHttpResponse *
zd_http_get(ZdConnection *conn, const char *path_and_query)
{
	const ZdServerOptions *o = &conn->opts;
	bool		is_export = strstr(path_and_query, "/incremental/") != NULL;
	int			max_attempts = Max(o->max_retries, 0) + 1;
	int			attempt = 1;
	int			hops = 0;
	int			aborted = 0;
	int			shrunk_to = 0;
	bool		prefetched;

	zd_set_url(conn, path_and_query);

	/* the request may be on its way already (it was paced then) */
	prefetched = conn->attached && conn->prefetch_url != NULL &&
		strcmp(conn->prefetch_url, conn->url.data) == 0;
	if (!prefetched)
		zd_transfer_abandon(conn);
	if (is_export && !prefetched)
		zd_pace_exports(conn, path_and_query, true);

	for (;;)
	{
		CURLcode	rc;
		long		status = 0;
		int			wait_s;
		const char *path;
		char	   *target = NULL;
		int			old_pp,
					new_pp;

		CHECK_FOR_INTERRUPTS();
		if (!prefetched)
			zd_transfer_start(conn);
		prefetched = false;
		rc = zd_transfer_finish(conn);
		path = zd_url_path(conn->url.data);

		if (rc == CURLE_ABORTED_BY_CALLBACK)
		{
			/* raises the cancel/terminate error; if not, just try again */
			CHECK_FOR_INTERRUPTS();
			/* never spin: an interrupt that stays pending is an error */
			if (++aborted > 3)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("could not GET %s from Zendesk at %s: transfer aborted repeatedly",
								path, conn->origin)));
			continue;
		}
		if (conn->body_too_large || rc == CURLE_FILESIZE_EXCEEDED)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("response from Zendesk exceeds max_response_size (" INT64_FORMAT " bytes)",
							o->max_response_bytes),
					 errdetail("Request: GET %s", path),
					 errhint("Raise the server option \"max_response_size\".")));
		if (conn->body_oom)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Failed while receiving %zu bytes from Zendesk.",
							   conn->body_len)));

		if (rc == CURLE_OK)
			curl_easy_getinfo(conn->curl, CURLINFO_RESPONSE_CODE, &status);
		if (rc != CURLE_OK || status == 0)
		{
			const char *err = conn->errbuf[0] ? conn->errbuf :
				rc != CURLE_OK ? curl_easy_strerror(rc) : "no HTTP status received";

			if ((rc != CURLE_OK && !zd_transport_retryable(rc)) ||
				attempt >= max_attempts)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
						 errmsg("could not GET %s from Zendesk at %s: %s",
								path, conn->origin, err),
						 errdetail("Gave up after %d attempt(s).", attempt)));
			wait_s = zd_backoff_seconds(attempt + 1);
			ereport(LOG,
					(errmsg("zendesk_fdw: GET %s failed: %s, retrying in %d s (attempt %d of %d)",
							path, err, wait_s, attempt + 1, max_attempts)));
			zd_wait(wait_s * 1000L, "retry after a failed request");
			attempt++;
			continue;
		}

		/* Zendesk judges start_time by its own clock: remember the skew */
		if (conn->server_date != (time_t) -1)
		{
			conn->clock_skew = (int64) conn->server_date - zd_local_epoch();
			conn->clock_skew_known = true;
		}

		if (status == 401)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("Zendesk rejected the credentials of user mapping for server \"%s\"",
							conn->server_name),
					 errdetail("GET %s returned HTTP 401: %s", path, zd_body_snippet(conn)),
					 errhint("Check the email and api_token (or oauth_token) options of the user mapping.")));
		if (status == 403)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("Zendesk refused access to %s", path),
					 errdetail("HTTP 403: %s", zd_body_snippet(conn)),
					 errhint("Incremental exports require a Zendesk admin; check the role of the user in the user mapping.")));

		/*
		 * A gateway timeout on an export means the page took too long to
		 * build (large records): ask for the same position with half the
		 * records at once.  This does not use up the retry budget, as
		 * per_page halves every time and so soon reaches 1.
		 */
		if (status == 504 && is_export && zd_shrink_per_page(conn, &old_pp, &new_pp))
		{
			shrunk_to = new_pp;
			wait_s = conn->retry_after >= 0 ? Min(conn->retry_after, ZD_WAIT_CAP) : 0;
			ereport(LOG,
					(errmsg("zendesk_fdw: GET %s: gateway timeout (HTTP 504), retrying the same position with per_page %d instead of %d",
							path, new_pp, old_pp)));
			if (wait_s > 0)
				zd_wait(wait_s * 1000L, "retry after a failed request");
			continue;
		}

		if (status == 429 || status == 500 || status == 502 ||
			status == 503 || status == 504)
		{
			const char *kind = status == 429 ? "rate limit" :
				"transient server error";

			if (attempt >= max_attempts)
			{
				if (status == 429)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_ERROR),
							 errmsg("Zendesk rate limit still exceeded (HTTP 429) for GET %s after %d attempts",
									path_and_query, attempt),
							 errdetail("Response body starts with: %s", zd_body_snippet(conn)),
							 errhint("Raise the server option max_retries, or sync less often: incremental exports allow about 10 requests per minute.")));
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("Zendesk returned HTTP %ld for GET %s after %d attempts",
								status, path_and_query, attempt),
						 shrunk_to > 0 ?
						 errdetail("Zendesk server error (transient); per_page was reduced to %d. Response body starts with: %s",
								   shrunk_to, zd_body_snippet(conn)) :
						 errdetail("Zendesk server error (transient). Response body starts with: %s",
								   zd_body_snippet(conn))));
			}
			if (conn->retry_after >= 0)
				wait_s = Min(conn->retry_after, ZD_WAIT_CAP);
			else if (status == 429)
				wait_s = Min(ZD_DEFAULT_429_WAIT_S, ZD_WAIT_CAP);
			else
				wait_s = zd_backoff_seconds(attempt + 1);

			/*
			 * A server error while building an export page may be its size:
			 * the retry asks for the same position with half the records.
			 * Rate limits and 503 (unavailable) say nothing about size.
			 */
			if (is_export && (status == 500 || status == 502 || status == 504) &&
				zd_shrink_per_page(conn, &old_pp, &new_pp))
			{
				shrunk_to = new_pp;
				ereport(LOG,
						(errmsg("zendesk_fdw: GET %s returned %ld (%s), retrying in %d s with per_page %d instead of %d (attempt %d of %d)",
								path, status, kind, wait_s, new_pp, old_pp,
								attempt + 1, max_attempts)));
			}
			else
				ereport(LOG,
						(errmsg("zendesk_fdw: GET %s returned %ld (%s), retrying in %d s (attempt %d of %d)",
								path, status, kind, wait_s, attempt + 1, max_attempts)));
			zd_wait(wait_s * 1000L, status == 429 ? "HTTP 429, rate limit" : "server error, retry");
			attempt++;
			continue;
		}

		/* curl resolves a relative Location against the request URL */
		if ((status == 301 || status == 302 || status == 303 ||
			 status == 307 || status == 308) &&
			curl_easy_getinfo(conn->curl, CURLINFO_REDIRECT_URL, &target) == CURLE_OK &&
			target != NULL)
		{
			size_t		olen = strlen(conn->origin);

			/*
			 * Same origin means the same scheme://host[:port] spelling
			 * followed by the path: stricter than needed (":443" is refused)
			 * but never looser; userinfo ("https://host@elsewhere/") fails
			 * too.  The target is not printed: a foreign URL may hold secrets.
			 */
			if (pg_strncasecmp(target, conn->origin, olen) != 0 ||
				(target[olen] != '\0' && strchr("/?#", target[olen]) == NULL))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("redirect to another origin refused"),
						 errdetail("GET %s was redirected away from %s.",
								   path, conn->origin)));
			if (++hops > ZD_MAX_REDIRECTS)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("too many redirects from Zendesk for GET %s", path),
						 errdetail("At most %d redirects are followed.", ZD_MAX_REDIRECTS)));
			target = pstrdup(target);	/* curl owns the original */
			resetStringInfo(&conn->url);
			appendStringInfoString(&conn->url, target);
			pfree(target);
			continue;
		}

		/* Everything else is the caller's to interpret. */
		conn->resp.status = status;
		conn->resp.body = conn->body;
		conn->resp.body_len = conn->body_len;
		/* the export-specific budget is the one exports are held to */
		if (conn->export_remaining >= 0)
			conn->resp.ratelimit_remaining = conn->export_remaining;
		if (conn->export_reset >= 0)
			conn->resp.ratelimit_reset = conn->export_reset;
		strlcpy(conn->resp.effective_url, conn->url.data,
				sizeof(conn->resp.effective_url));
		conn->resp.preparsed = conn->fetch_parse.done ? &conn->fetch_parse : NULL;
		conn->resp.secrets = conn->secrets;
		if (is_export && status >= 200 && status < 300)
			zd_pace_exports(conn, path, false);
		return &conn->resp;
	}
}
