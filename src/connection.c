/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  Connections to Zendesk: one libcurl handle per (server, user) and
 *		  the transfers it runs.
 *
 * One curl easy handle per (server, user) lives as long as the backend, so
 * TCP/TLS connections are kept alive between pages.  The handle is reset
 * before every request and configured from scratch.  It runs in a multi
 * handle of its own, so a request can be started before its answer is
 * needed: the sync worker asks for the next export page before it writes
 * the current one (zd_http_prefetch), and Zendesk builds the page while
 * PostgreSQL writes.  The fetch thread (fetch_thread.c) receives that
 * answer and parses its body meanwhile (fetch_job).  A prefetched request
 * is just a head start for the zd_http_get of the same URL; any other
 * request abandons it.
 *
 * Rules that keep libcurl safe inside a backend:
 *	- curl callbacks never palloc, elog or CHECK_FOR_INTERRUPTS: a longjmp out
 *	  of libcurl would corrupt it.  They copy bytes and set flags only; errors
 *	  are raised after curl_multi_perform() has returned.  (They also run on
 *	  the fetch thread, which must not call PostgreSQL at all.)
 *	- the Authorization header lives only in a malloc'd curl_slist and never
 *	  reaches a message.
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common/base64.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "connection.h"

#define ZD_USER_AGENT			"zendesk_fdw/1.0"
#define ZD_BODY_INITIAL_BYTES	(64 * 1024)
/* a buffer grown beyond this is given back before the next request */
#define ZD_BODY_KEEP_BYTES		(64 * 1024 * 1024)
/* larger prefetched bodies are parsed by the main thread (see fetch_job) */
#define ZD_PARSE_AHEAD_MAX_BYTES	(32 * 1024 * 1024)

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

static void
zd_free_secrets(ZdConnection *conn)
{
	for (int i = 0; conn->secrets[i] != NULL; i++)
	{
		explicit_bzero(conn->secrets[i], strlen(conn->secrets[i]));
		free(conn->secrets[i]);
		conn->secrets[i] = NULL;
	}
}

/* Keep what a response body must never show of the credentials in o. */
static void
zd_set_secrets(ZdConnection *conn, const ZdServerOptions *o,
			   const struct curl_slist *headers)
{
	int			n = 0;

	zd_free_secrets(conn);
	if (o->api_token != NULL && o->api_token[0] != '\0')
		conn->secrets[n++] = strdup(o->api_token);
	if (o->oauth_token != NULL && o->oauth_token[0] != '\0')
		conn->secrets[n++] = strdup(o->oauth_token);
	/* the header's value: the Basic encoding, or the bearer token again */
	for (const struct curl_slist *h = headers; h != NULL; h = h->next)
	{
		const char *v = h->data;

		if (pg_strncasecmp(v, "Authorization: ", 15) != 0)
			continue;
		v = strchr(v + 15, ' ');
		if (v != NULL && v[1] != '\0')
			conn->secrets[n++] = strdup(v + 1);
	}
	Assert(n < lengthof(conn->secrets));
	for (int i = 0; i < n; i++)
		if (conn->secrets[i] == NULL)
		{
			/* out of memory: keep the ones we have, in order */
			for (int j = i + 1; j < n; j++)
				conn->secrets[j - 1] = conn->secrets[j];
			conn->secrets[--n] = NULL;
			i--;
		}
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

static void zd_forget_parse(ZdConnection *conn);

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
	zd_forget_parse(conn);

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
	zd_set_secrets(conn, o, headers);

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
 * Transfers
 * ------------------------------------------------------------------------
 */

/* The message names the option only, never its value. */
#define ZD_SETOPT(h, opt, val) \
	do { \
		CURLcode	setopt_rc_ = curl_easy_setopt((h), (opt), (val)); \
		if (setopt_rc_ != CURLE_OK) \
			elog(ERROR, "zendesk_fdw: curl_easy_setopt(%s) failed: %s", \
				 #opt, curl_easy_strerror(setopt_rc_)); \
	} while (0)

static CURLMcode
zd_multi_poll(CURLM *multi, int timeout_ms)
{
#if LIBCURL_VERSION_NUM >= 0x074200		/* 7.66.0 */
	return curl_multi_poll(multi, NULL, 0, timeout_ms, NULL);
#else
	return curl_multi_wait(multi, NULL, 0, timeout_ms, NULL);
#endif
}

/* Free a parse of the fetch thread that nobody took. */
static void
zd_forget_parse(ZdConnection *conn)
{
	json_object_put(conn->fetch_parse.root);	/* NULL-safe */
	memset(&conn->fetch_parse, 0, sizeof(ZdJsonParse));
}

/*
 * Stop a running transfer, if any (its connection is closed by curl).  The
 * body buffer and the header fields then belong to the next transfer.
 */
void
zd_transfer_abandon(ZdConnection *conn)
{
	if (conn->fetch_running)
	{
		zd_fetch_thread_stop();
		conn->fetch_running = false;
	}
	conn->fetch_done = false;
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
void
zd_transfer_start(ZdConnection *conn)
{
	CURL	   *h = conn->curl;
	const ZdServerOptions *o = &conn->opts;
	CURLMcode	mc;
	int			running;

	zd_transfer_abandon(conn);
	zd_forget_parse(conn);

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
CURLcode
zd_transfer_finish(ZdConnection *conn)
{
	CURLcode	rc = CURLE_GOT_NOTHING;
	CURLMcode	mc = CURLM_OK;
	CURLMsg    *msg;
	int			running = 1;
	int			left;
	size_t		len;

	Assert(conn->attached);
	if (conn->fetch_running)
	{
		/* an ERROR here leaves it running: the next abandon stops it */
		zd_fetch_thread_wait();
		conn->fetch_running = false;
	}
	if (conn->fetch_done)
		rc = conn->fetch_rc;	/* the thread read curl's verdict */
	else
	{
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		for (;;)
		{
			mc = curl_multi_perform(conn->multi, &running);
			if (mc != CURLM_OK || running == 0)
				break;
			mc = zd_multi_poll(conn->multi, 1000);
			if (mc != CURLM_OK)
				break;
		}
		pgstat_report_wait_end();

		while ((msg = curl_multi_info_read(conn->multi, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == conn->curl)
				rc = msg->data.result;
	}
	zd_transfer_abandon(conn);
	if (mc != CURLM_OK)
		elog(ERROR, "zendesk_fdw: libcurl failed: %s", curl_multi_strerror(mc));

	conn->body[conn->body_len] = '\0';
	len = strlen(conn->errbuf);
	while (len > 0 && strchr("\r\n ", conn->errbuf[len - 1]) != NULL)
		conn->errbuf[--len] = '\0';
	return rc;
}

void
zd_set_url(ZdConnection *conn, const char *path_and_query)
{
	resetStringInfo(&conn->url);
	appendStringInfoString(&conn->url, conn->opts.base_url);
	if (path_and_query[0] != '/')
		appendStringInfoChar(&conn->url, '/');
	appendStringInfoString(&conn->url, path_and_query);
}

/*
 * The fetch thread's job: run the prefetched transfer to its end and parse
 * a body that looks like a JSON object, so that page N+1 is received and
 * parsed while page N is written.  Only curl, the malloc'd body and json-c
 * are used here (see fetch_thread.c).  Anything unusual (an error status, a
 * non-JSON body, a stop request) is left to zd_http_get, which then works
 * exactly as without the thread.
 */
static void
fetch_job(void *arg)
{
	ZdConnection *conn = (ZdConnection *) arg;
	CURLMcode	mc = CURLM_OK;
	CURLMsg    *msg;
	int			running = 1;
	int			left;
	long		status = 0;
	size_t		i = 0;

	while (!zd_fetch_thread_stopping())
	{
		mc = curl_multi_perform(conn->multi, &running);
		if (mc != CURLM_OK || running == 0)
			break;
		if ((mc = zd_multi_poll(conn->multi, 100)) != CURLM_OK)
			break;
	}
	if (mc != CURLM_OK || running != 0)
		return;					/* the main thread goes on with it */

	conn->fetch_rc = CURLE_GOT_NOTHING;
	while ((msg = curl_multi_info_read(conn->multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == conn->curl)
			conn->fetch_rc = msg->data.result;
	conn->fetch_done = true;

	if (conn->fetch_rc != CURLE_OK || conn->body_len > ZD_PARSE_AHEAD_MAX_BYTES ||
		zd_fetch_thread_stopping() ||
		curl_easy_getinfo(conn->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
		status != 200)
		return;
	while (i < conn->body_len && strchr(" \t\r\n", conn->body[i]) != NULL &&
		   conn->body[i] != '\0')
		i++;
	if (i < conn->body_len && conn->body[i] == '{')
		zd_json_tokenize(conn->body, conn->body_len, &conn->fetch_parse);
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
	{
		zd_transfer_abandon(conn);	/* no memory: just no head start */
		return;
	}
	/* if the thread cannot start, zd_http_get runs the transfer as usual */
	conn->fetch_running = zd_fetch_thread_start(fetch_job, conn);
}

bool
zd_connection_clock_skew(ZdConnection *conn, int64 *skew)
{
	if (conn == NULL || !conn->clock_skew_known)
		return false;
	*skew = conn->clock_skew;
	return true;
}

