/*-------------------------------------------------------------------------
 *
 * http.c
 *		  GET requests against the Zendesk API with libcurl.
 *
 * One curl easy handle per (server, user) lives as long as the backend, so
 * TCP/TLS connections are kept alive between pages.  The handle is reset
 * before every request and configured from scratch.  It runs in a multi
 * handle of its own, so a request can be started before its answer is
 * needed: the sync worker asks for the next export page before it writes
 * the current one (zd_http_prefetch), and Zendesk builds the page while
 * PostgreSQL writes.  A prefetched request is just a head start for the
 * zd_http_get of the same URL; any other request abandons it.
 *
 * Retries say why in the log (rate limit vs. transient server error).  An
 * export page that the server fails to build (500/502/504) is asked for
 * again with half the per_page; a 504 (gateway timeout) does so at once and
 * without using up the retry budget, since per_page only halves to 1.  The
 * Date header of every response gives the server's clock (see
 * zd_connection_clock_skew).
 *
 * Rules that keep libcurl safe inside a backend:
 *	- curl callbacks never palloc, elog or CHECK_FOR_INTERRUPTS: a longjmp out
 *	  of libcurl would corrupt it.  They copy bytes and set flags only; errors
 *	  are raised after curl_multi_perform() has returned.
 *	- the Authorization header lives only in a malloc'd curl_slist and never
 *	  reaches a message; messages name the origin and the path only.
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <stdint.h>

#include <curl/curl.h>

#include "common/base64.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "zendesk_fdw.h"

#define ZD_USER_AGENT			"zendesk_fdw/1.0"
#define ZD_MAX_REDIRECTS		5
#define ZD_DEFAULT_429_WAIT_S	60
#define ZD_BODY_INITIAL_BYTES	(64 * 1024)
/* a buffer grown by one unusually large page is not kept forever */
#define ZD_BODY_KEEP_BYTES		(64 * 1024 * 1024)
#define ZD_SNIPPET_BYTES		200
#define ZD_WAIT_CAP				Max(zd_max_retry_wait_seconds, 0)

typedef struct ZdConnKey
{
	Oid			serverid;
	Oid			userid;
} ZdConnKey;

struct ZdConnection
{
	ZdConnKey	key;			/* hash key, must be first */
	bool		valid;			/* false: re-read options before use */
	CURL	   *curl;
	MemoryContext cxt;			/* strings of opts etc.; reset on reload */
	ZdServerOptions opts;		/* copy; credentials are not kept here */
	char	   *server_name;
	char	   *origin;			/* "scheme://host[:port]" of base_url */
	struct curl_slist *headers; /* Accept + Authorization (malloc'd) */
	StringInfoData url;			/* URL of the current request */
	CURLM	   *multi;			/* runs curl; owns the kept-alive connections */
	bool		attached;		/* curl is in multi: a transfer is running */
	char	   *prefetch_url;	/* malloc'd: the URL a running prefetch asks
								 * for; NULL when none */

	/* body of the current response, malloc'd and reused across requests */
	char	   *body;
	size_t		body_len;
	size_t		body_cap;
	size_t		body_max;
	bool		body_too_large;
	bool		body_oom;

	/*
	 * The header callback fills resp.content_type and resp.ratelimit_* (the
	 * generic ratelimit-* headers) directly; -1 means absent.
	 */
	ZdHttpResponse resp;
	int			retry_after;
	int			export_remaining;	/* zendesk-ratelimit-incremental-exports */
	int			export_reset;

	time_t		server_date;	/* Date header of the response, -1 absent */

	char		errbuf[CURL_ERROR_SIZE];
	TimestampTz export_pace_until;	/* 0: no pending export pacing */

	/*
	 * Server clock minus local clock in seconds, from the Date header of the
	 * last response that had one.  Zendesk judges start_time by its own
	 * clock, so a local clock running ahead must not push start_time into
	 * the server's future.
	 */
	bool		clock_skew_known;
	int64		clock_skew;
};

static HTAB *zd_conn_hash = NULL;

/* ------------------------------------------------------------------------
 * curl callbacks and their helpers: no palloc, no elog.
 * ------------------------------------------------------------------------
 */

/*
 * Non-negative integer after key ("" for the whole value) or -1.  An
 * HTTP-date Retry-After starts with a weekday name and so gives -1.
 */
static int
zd_header_int(const char *s, const char *key)
{
	const char *p = strstr(s, key);
	char	   *end;
	long		v;

	if (p == NULL)
		return -1;
	p += strlen(key);
	v = strtol(p, &end, 10);
	return (end == p || v < 0 || v > INT_MAX) ? -1 : (int) v;
}

static void
zd_reset_headers(ZdConnection *conn)
{
	conn->resp.content_type[0] = '\0';
	conn->resp.ratelimit_remaining = conn->resp.ratelimit_reset = -1;
	conn->retry_after = conn->export_remaining = conn->export_reset = -1;
	conn->server_date = (time_t) -1;
}

static size_t
zd_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	ZdConnection *conn = (ZdConnection *) userdata;
	size_t		n = size * nmemb;

	if (n > conn->body_max || conn->body_len > conn->body_max - n)
	{
		conn->body_too_large = true;
		return 0;				/* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (conn->body_len + n + 1 > conn->body_cap)
	{
		size_t		newcap = conn->body_cap;
		char	   *newbuf;

		while (newcap < conn->body_len + n + 1)
			newcap *= 2;
		if ((newbuf = realloc(conn->body, newcap)) == NULL)
		{
			conn->body_oom = true;
			return 0;
		}
		conn->body = newbuf;
		conn->body_cap = newcap;
	}
	memcpy(conn->body + conn->body_len, ptr, n);
	conn->body_len += n;
	return n;
}

static size_t
zd_header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
	ZdConnection *conn = (ZdConnection *) userdata;
	size_t		n = size * nitems;
	char		line[512];
	size_t		len = Min(n, sizeof(line) - 1);
	char	   *value;

	memcpy(line, ptr, len);
	line[len] = '\0';
	while (len > 0 && strchr("\r\n \t", line[len - 1]) != NULL)
		line[--len] = '\0';

	/* A status line starts a new response (100-continue, proxy CONNECT). */
	if (strncmp(line, "HTTP/", 5) == 0)
	{
		zd_reset_headers(conn);
		return n;
	}
	if ((value = strchr(line, ':')) == NULL)
		return n;
	*value++ = '\0';
	while (*value == ' ' || *value == '\t')
		value++;

	if (pg_strcasecmp(line, "content-type") == 0)
		strlcpy(conn->resp.content_type, value, sizeof(conn->resp.content_type));
	else if (pg_strcasecmp(line, "retry-after") == 0)
		conn->retry_after = zd_header_int(value, "");
	else if (pg_strcasecmp(line, "date") == 0)
		conn->server_date = curl_getdate(value, NULL);	/* pure parser */
	else if (pg_strcasecmp(line, "ratelimit-remaining") == 0)
		conn->resp.ratelimit_remaining = zd_header_int(value, "");
	else if (pg_strcasecmp(line, "ratelimit-reset") == 0)
		conn->resp.ratelimit_reset = zd_header_int(value, "");
	else if (pg_strcasecmp(line, "zendesk-ratelimit-incremental-exports") == 0)
	{
		conn->export_remaining = zd_header_int(value, "remaining=");
		conn->export_reset = zd_header_int(value, "resets=");
	}
	return n;
}

/*
 * Called by libcurl about once a second even while no data flows.  It only
 * reads the interrupt flags; the interrupt itself is serviced by
 * CHECK_FOR_INTERRUPTS() after curl_multi_perform() returns.  Flags that
 * ProcessInterrupts() would leave pending (interrupts held off) are ignored,
 * or abort and retry would spin.
 */
static int
zd_progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	if (InterruptHoldoffCount != 0 || CritSectionCount != 0)
		return 0;
	if (ProcDiePending)
		return 1;
	return (QueryCancelPending && QueryCancelHoldoffCount == 0) ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * Connection cache
 * ------------------------------------------------------------------------
 */

/* Any change to a server or user mapping: re-read options at next use. */
static void
zd_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	ZdConnection *conn;

	if (zd_conn_hash == NULL)
		return;
	hash_seq_init(&scan, zd_conn_hash);
	while ((conn = (ZdConnection *) hash_seq_search(&scan)) != NULL)
		conn->valid = false;
}

/* Wipe the Authorization header before giving the list back to malloc. */
static void
zd_free_headers(struct curl_slist *list)
{
	for (struct curl_slist *s = list; s != NULL; s = s->next)
		explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(list);
}

/* Runs in zd_load_options' temporary context; secrets are wiped after use. */
static struct curl_slist *
zd_build_headers(const ZdServerOptions *o)
{
	StringInfoData auth;
	struct curl_slist *list;
	struct curl_slist *full = NULL;

	initStringInfo(&auth);
	if (o->oauth_token != NULL && o->oauth_token[0] != '\0')
		appendStringInfo(&auth, "Authorization: Bearer %s", o->oauth_token);
	else if (o->email != NULL && o->api_token != NULL)
	{
		/* API token auth: Basic base64("<email>/token:<api_token>") */
		char	   *raw = psprintf("%s/token:%s", o->email, o->api_token);
		int			rawlen = strlen(raw);
		int			enclen = pg_b64_enc_len(rawlen);
		char	   *enc = palloc(enclen + 1);
		int			n;

		/* void *: the source is const uint8 * from PG 18 on */
		n = pg_b64_encode((void *) raw, rawlen, enc, enclen);
		if (n < 0)
			elog(ERROR, "zendesk_fdw: could not base64-encode the credentials");
		enc[n] = '\0';
		appendStringInfo(&auth, "Authorization: Basic %s", enc);
		explicit_bzero(raw, rawlen);
		explicit_bzero(enc, n);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("user mapping has no Zendesk credentials"),
				 errhint("Set email and api_token, or oauth_token, on the user mapping.")));

	list = curl_slist_append(NULL, "Accept: application/json");
	if (list != NULL)
		full = curl_slist_append(list, auth.data);
	explicit_bzero(auth.data, auth.len);
	if (full == NULL)
	{
		zd_free_headers(list);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	return full;
}

static void zd_transfer_abandon(ZdConnection *conn);

/* (Re)read options; on ERROR the entry stays invalid and is retried. */
static void
zd_load_options(ZdConnection *conn)
{
	MemoryContext tmpcxt;
	MemoryContext oldcxt;
	ZdServerOptions *o;
	ForeignServer *server;
	const char *sep;
	struct curl_slist *headers;

	/* a running transfer uses the headers that are about to be freed */
	zd_transfer_abandon(conn);

	/* the fetched options hold the credentials: free them all at once */
	tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "zendesk_fdw options",
								   ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(tmpcxt);
	o = zd_get_server_options(conn->key.serverid, conn->key.userid, true);
	server = GetForeignServer(conn->key.serverid);
	if (o->base_url == NULL || (sep = strstr(o->base_url, "://")) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid Zendesk base URL for server \"%s\"",
						server->servername)));
	headers = zd_build_headers(o);
	MemoryContextSwitchTo(oldcxt);

	zd_free_headers(conn->headers);
	conn->headers = headers;

	MemoryContextReset(conn->cxt);
	conn->opts = *o;
	conn->opts.base_url = MemoryContextStrdup(conn->cxt, o->base_url);
	if (o->subdomain)
		conn->opts.subdomain = MemoryContextStrdup(conn->cxt, o->subdomain);
	if (o->sync_schema)
		conn->opts.sync_schema = MemoryContextStrdup(conn->cxt, o->sync_schema);
	conn->opts.email = conn->opts.api_token = conn->opts.oauth_token = NULL;
	conn->server_name = MemoryContextStrdup(conn->cxt, server->servername);
	sep += 3;
	sep += strcspn(sep, "/?#");
	conn->origin = MemoryContextAlloc(conn->cxt, sep - o->base_url + 1);
	strlcpy(conn->origin, o->base_url, sep - o->base_url + 1);
	MemoryContextDelete(tmpcxt);

	conn->valid = true;
}

ZdConnection *
zd_get_connection(Oid serverid, Oid userid)
{
	ZdConnKey	key;
	ZdConnection *conn;
	bool		found;

	if (zd_conn_hash == NULL)
	{
		HASHCTL		ctl;

		/* once per process */
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
					 errmsg("could not initialize libcurl")));
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(ZdConnKey);
		ctl.entrysize = sizeof(ZdConnection);
		ctl.hcxt = TopMemoryContext;
		zd_conn_hash = hash_create("zendesk_fdw connections", 8, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, zd_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, zd_inval_callback, (Datum) 0);
	}

	memset(&key, 0, sizeof(key));
	key.serverid = serverid;
	key.userid = userid;
	conn = (ZdConnection *) hash_search(zd_conn_hash, &key, HASH_ENTER, &found);
	if (!found)
		memset((char *) conn + sizeof(ZdConnKey), 0,
			   sizeof(ZdConnection) - sizeof(ZdConnKey));

	/* Each piece is created lazily, so an ERROR halfway is harmless. */
	if (conn->cxt == NULL)
		conn->cxt = AllocSetContextCreate(TopMemoryContext, "zendesk_fdw connection",
										  ALLOCSET_SMALL_SIZES);
	if (conn->url.data == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&conn->url);
		MemoryContextSwitchTo(oldcxt);
	}
	if (conn->curl == NULL && (conn->curl = curl_easy_init()) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	if (conn->multi == NULL && (conn->multi = curl_multi_init()) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	if (!conn->valid)
		zd_load_options(conn);
	return conn;
}

const ZdServerOptions *
zd_connection_options(ZdConnection *conn)
{
	return &conn->opts;
}

/* ------------------------------------------------------------------------
 * Requests
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
			 errdetail("Response body: %s",
					   zd_printable(resp->body ? resp->body : "", resp->body_len, 200))));
}

/* First bytes of the body, printable, for messages. */
static char *
zd_body_snippet(const ZdConnection *conn)
{
	return zd_printable(conn->body, conn->body_len, ZD_SNIPPET_BYTES);
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

/* The message names the option only, never its value. */
#define ZD_SETOPT(h, opt, val) \
	do { \
		CURLcode	setopt_rc_ = curl_easy_setopt((h), (opt), (val)); \
		if (setopt_rc_ != CURLE_OK) \
			elog(ERROR, "zendesk_fdw: curl_easy_setopt(%s) failed: %s", \
				 #opt, curl_easy_strerror(setopt_rc_)); \
	} while (0)

/*
 * Stop a running transfer, if any (its connection is closed by curl).  The
 * body buffer and the header fields then belong to the next transfer.
 */
static void
zd_transfer_abandon(ZdConnection *conn)
{
	if (conn->attached)
	{
		(void) curl_multi_remove_handle(conn->multi, conn->curl);
		conn->attached = false;
	}
	if (conn->prefetch_url != NULL)
	{
		free(conn->prefetch_url);
		conn->prefetch_url = NULL;
	}
}

/*
 * Start a transfer of conn->url: configure the handle and let curl send the
 * request.  The answer is collected by zd_transfer_finish.
 */
static void
zd_transfer_start(ZdConnection *conn)
{
	CURL	   *h = conn->curl;
	const ZdServerOptions *o = &conn->opts;
	CURLMcode	mc;
	int			running;

	zd_transfer_abandon(conn);

	if (conn->body != NULL && conn->body_cap > ZD_BODY_KEEP_BYTES)
	{
		free(conn->body);
		conn->body = NULL;
	}
	if (conn->body == NULL)
	{
		if ((conn->body = malloc(ZD_BODY_INITIAL_BYTES)) == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		conn->body_cap = ZD_BODY_INITIAL_BYTES;
	}
	conn->body_len = 0;
	conn->body_too_large = conn->body_oom = false;
	conn->body_max = o->max_response_bytes > 0 ?
		(size_t) Min(o->max_response_bytes, (int64) (SIZE_MAX / 4)) : SIZE_MAX / 4;
	zd_reset_headers(conn);
	conn->errbuf[0] = '\0';

	curl_easy_reset(h);
	ZD_SETOPT(h, CURLOPT_URL, conn->url.data);
	ZD_SETOPT(h, CURLOPT_HTTPGET, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500		/* 7.85.0 */
	ZD_SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
	ZD_SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	ZD_SETOPT(h, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
	ZD_SETOPT(h, CURLOPT_REDIR_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* zd_http_get follows redirects itself, within base_url's origin only */
	ZD_SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	ZD_SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
	ZD_SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
	ZD_SETOPT(h, CURLOPT_ACCEPT_ENCODING, "");
	ZD_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long) o->connect_timeout_ms);
	ZD_SETOPT(h, CURLOPT_TIMEOUT_MS, (long) o->request_timeout_ms);
	ZD_SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	ZD_SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	ZD_SETOPT(h, CURLOPT_USERAGENT, ZD_USER_AGENT);
	ZD_SETOPT(h, CURLOPT_HTTPHEADER, conn->headers);
	ZD_SETOPT(h, CURLOPT_ERRORBUFFER, conn->errbuf);
	/* fail early when Content-Length already says too much */
	ZD_SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) conn->body_max);
	ZD_SETOPT(h, CURLOPT_WRITEFUNCTION, zd_write_cb);
	ZD_SETOPT(h, CURLOPT_WRITEDATA, (void *) conn);
	ZD_SETOPT(h, CURLOPT_HEADERFUNCTION, zd_header_cb);
	ZD_SETOPT(h, CURLOPT_HEADERDATA, (void *) conn);
	ZD_SETOPT(h, CURLOPT_XFERINFOFUNCTION, zd_progress_cb);
	ZD_SETOPT(h, CURLOPT_XFERINFODATA, (void *) conn);
	ZD_SETOPT(h, CURLOPT_NOPROGRESS, 0L);

	if ((mc = curl_multi_add_handle(conn->multi, h)) != CURLM_OK)
		elog(ERROR, "zendesk_fdw: curl_multi_add_handle failed: %s",
			 curl_multi_strerror(mc));
	conn->attached = true;
	/* connects (or reuses the kept-alive connection) and sends */
	if ((mc = curl_multi_perform(conn->multi, &running)) != CURLM_OK)
	{
		zd_transfer_abandon(conn);
		elog(ERROR, "zendesk_fdw: curl_multi_perform failed: %s",
			 curl_multi_strerror(mc));
	}
}

/*
 * Run the started transfer to its end.  curl is driven here, in plain code:
 * the progress callback only asks it to abort on a pending interrupt, and
 * signals cut the poll short, so a cancel is seen at once.
 */
static CURLcode
zd_transfer_finish(ZdConnection *conn)
{
	CURLcode	rc = CURLE_GOT_NOTHING;
	CURLMcode	mc = CURLM_OK;
	CURLMsg    *msg;
	int			running = 1;
	int			left;
	size_t		len;

	Assert(conn->attached);
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	for (;;)
	{
		mc = curl_multi_perform(conn->multi, &running);
		if (mc != CURLM_OK || running == 0)
			break;
#if LIBCURL_VERSION_NUM >= 0x074200		/* 7.66.0 */
		mc = curl_multi_poll(conn->multi, NULL, 0, 1000, NULL);
#else
		mc = curl_multi_wait(conn->multi, NULL, 0, 1000, NULL);
#endif
		if (mc != CURLM_OK)
			break;
	}
	pgstat_report_wait_end();

	while ((msg = curl_multi_info_read(conn->multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == conn->curl)
			rc = msg->data.result;
	zd_transfer_abandon(conn);
	if (mc != CURLM_OK)
		elog(ERROR, "zendesk_fdw: libcurl failed: %s", curl_multi_strerror(mc));

	conn->body[conn->body_len] = '\0';
	len = strlen(conn->errbuf);
	while (len > 0 && strchr("\r\n ", conn->errbuf[len - 1]) != NULL)
		conn->errbuf[--len] = '\0';
	return rc;
}

/* Set conn->url to base_url + path_and_query */
static void
zd_set_url(ZdConnection *conn, const char *path_and_query)
{
	resetStringInfo(&conn->url);
	appendStringInfoString(&conn->url, conn->opts.base_url);
	if (path_and_query[0] != '/')
		appendStringInfoChar(&conn->url, '/');
	appendStringInfoString(&conn->url, path_and_query);
}

void
zd_http_prefetch(ZdConnection *conn, const char *path_and_query)
{
	zd_transfer_abandon(conn);

	/* a paced export waits in zd_http_get, where the wait is reported */
	if (strstr(path_and_query, "/incremental/") != NULL &&
		conn->export_pace_until > GetCurrentTimestamp())
		return;
	zd_set_url(conn, path_and_query);
	zd_transfer_start(conn);
	conn->prefetch_url = strdup(conn->url.data);
	if (conn->prefetch_url == NULL)
		zd_transfer_abandon(conn);	/* no memory: just no head start */
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

bool
zd_connection_clock_skew(ZdConnection *conn, int64 *skew)
{
	if (conn == NULL || !conn->clock_skew_known)
		return false;
	*skew = conn->clock_skew;
	return true;
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
		if (is_export && status >= 200 && status < 300)
			zd_pace_exports(conn, path, false);
		return &conn->resp;
	}
}
