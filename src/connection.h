/*-------------------------------------------------------------------------
 *
 * connection.h
 *		  The connection to Zendesk, shared by connection.c (the handle, its
 *		  transfers and the fetch thread's job) and http.c (requests,
 *		  retries, pacing).  Nothing else includes it: the rest of the
 *		  extension sees ZdConnection as opaque (zendesk_fdw.h).
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef ZD_CONNECTION_H
#define ZD_CONNECTION_H

#include <curl/curl.h>

#include "zendesk_fdw.h"

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

	/*
	 * A prefetch runs on the fetch thread (fetch_job) while fetch_running:
	 * until it is joined, the thread alone uses curl, multi, the body and
	 * the header fields.  fetch_done: it ran the transfer to its end, with
	 * result fetch_rc; fetch_parse: its parse of the body, until taken.
	 */
	bool		fetch_running;
	bool		fetch_done;
	CURLcode	fetch_rc;
	ZdJsonParse fetch_parse;

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

	/*
	 * The credentials as a body could echo them (token, Basic value,
	 * OAuth token): malloc'd, NULL-terminated, wiped on reload.  Quoted
	 * bodies are redacted with them (ZdHttpResponse.secrets).
	 */
	char	   *secrets[4];
};

/* Set conn->url to base_url + path_and_query */
extern void zd_set_url(ZdConnection *conn, const char *path_and_query);

/*
 * One transfer of conn->url at a time: start sends the request, finish runs
 * it to its end (waiting for the fetch thread if it has it) and returns
 * curl's result, abandon stops it.  The answer is in conn->body and the
 * header fields until the next start.
 */
extern void zd_transfer_start(ZdConnection *conn);
extern CURLcode zd_transfer_finish(ZdConnection *conn);
extern void zd_transfer_abandon(ZdConnection *conn);

#endif							/* ZD_CONNECTION_H */
