/*-------------------------------------------------------------------------
 *
 * zendesk_fdw.h
 *		  Private declarations for zendesk_fdw.
 *
 * A page flows one way through the extension:
 *
 *   http.c (HTTP response) -> page.c (parsed page) -> row_map.c (rows)
 *       -> fdw_scan.c (foreign scan slots) or sync_worker.c (upserts)
 *
 * export.c drives that flow for one incremental export stream; it is the
 * only code that knows how cursor and time-based exports advance.
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef ZENDESK_FDW_H
#define ZENDESK_FDW_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

struct json_object;

/* ------------------------------------------------------------------------
 * option.c: option names, validation, and the resolved per-server options
 * ------------------------------------------------------------------------
 */

/* Defaults, also documented in README.md */
#define ZD_DEFAULT_CONNECT_TIMEOUT_MS	10000
#define ZD_DEFAULT_REQUEST_TIMEOUT_MS	60000
#define ZD_DEFAULT_PAGE_SIZE			1000
#define ZD_DEFAULT_MAX_RETRIES			5
#define ZD_DEFAULT_MAX_RESPONSE_BYTES	(256 * 1024 * 1024)

/* Everything needed to talk to one Zendesk account as one role. */
typedef struct ZdServerOptions
{
	char	   *base_url;		/* "https://sub.zendesk.com" or the url option,
								 * without trailing slash */
	char	   *subdomain;		/* NULL when url is used */
	int			connect_timeout_ms;
	int			request_timeout_ms;
	int			page_size;		/* per_page for exports, 1..1000 */
	int			max_retries;
	int64		max_response_bytes;
	int64		start_date;		/* epoch seconds: first export start */
	char	   *sync_schema;	/* NULL: the server's name */

	/* credentials, from the user mapping only; never printed */
	char	   *email;
	char	   *api_token;
	char	   *oauth_token;
} ZdServerOptions;

extern ZdServerOptions *zd_get_server_options(Oid serverid, Oid userid,
											  bool need_credentials);
extern char *zd_column_key(Oid relid, AttrNumber attnum, const char *attname);
extern char *zd_table_resource_name(Oid relid);
extern double zd_table_rows_estimate(Oid relid);

#define ZD_DEFAULT_ROWS_ESTIMATE	10000

/* ------------------------------------------------------------------------
 * zendesk_fdw.c: GUCs and module entry points
 * ------------------------------------------------------------------------
 */
extern int	zd_holdback_seconds;	/* zendesk_fdw.holdback, default 61 */
extern int	zd_max_retry_wait_seconds;	/* cap on Retry-After waits */
extern int	zd_recovery_overlap_seconds;	/* zendesk_fdw.recovery_overlap */
extern int	zd_sync_runs_retention_days;	/* zendesk_fdw.sync_runs_retention */
extern int	zd_sync_progress_pages; /* zendesk_fdw.sync_progress_pages */

/* ------------------------------------------------------------------------
 * connection.c and http.c: one libcurl easy handle per (server, user),
 * reused across pages (connection.c); GET with retries (http.c)
 * ------------------------------------------------------------------------
 */
/*
 * json-c's verdict on a body (page.c's zd_json_tokenize): the tree, or the
 * error and where it stopped.  done is false when no parser could be made.
 */
typedef struct ZdJsonParse
{
	bool		done;
	struct json_object *root;	/* NULL on error */
	int			jerr;			/* enum json_tokener_error */
	size_t		end;			/* bytes consumed */
} ZdJsonParse;

typedef struct ZdHttpResponse
{
	long		status;			/* HTTP status; 0 never returned to callers */
	char	   *body;			/* NUL-terminated; owned by the connection,
								 * valid until the next request */
	size_t		body_len;
	char		content_type[128];
	/* rate-limit information seen on the response, -1 when absent */
	int			ratelimit_remaining;
	int			ratelimit_reset;
	char		effective_url[1024];	/* URL of the final response, no
										 * credentials */
	/* the body parsed ahead on the fetch thread, or NULL; see page.c */
	ZdJsonParse *preparsed;
	/* the request's credentials, NULL-terminated (or NULL): never quoted */
	char	   *const *secrets;
} ZdHttpResponse;

typedef struct ZdConnection ZdConnection;

/*
 * Get the connection for a server and user, creating it on first use.  The
 * connection is cached for the life of the backend (keep-alive).
 */
extern ZdConnection *zd_get_connection(Oid serverid, Oid userid);
extern const ZdServerOptions *zd_connection_options(ZdConnection *conn);

/*
 * GET base_url + path_and_query.  Retries 429 (Retry-After), 5xx, timeouts
 * and connection failures up to max_retries with interruptible waits.
 * Export requests (/incremental/) retried after 500/502/504 ask for half
 * the per_page (a 504 does so at once and outside the retry budget);
 * effective_url shows the per_page that was answered.  Reports 401/403 as
 * ERRORs.  Any other status (2xx, other 4xx) is returned to the caller to
 * interpret.  The response lives until the next request on the same
 * connection.
 */
extern ZdHttpResponse *zd_http_get(ZdConnection *conn, const char *path_and_query);

/*
 * Send GET base_url + path_and_query now and leave the answer on its way:
 * the next zd_http_get of the same path collects it (with the usual
 * retries); any other request abandons it.  Nothing is sent while export
 * pacing asks to wait.  The response of the previous request must not be
 * used after this call (its buffer is reused).
 */
extern void zd_http_prefetch(ZdConnection *conn, const char *path_and_query);

/* ERROR for a status the caller cannot use, with the start of the body */
extern void zd_http_status_error(const ZdHttpResponse *resp,
								 const char *request) pg_attribute_noreturn();

/*
 * Called before a wait the user should hear about (rate limit, retry), and
 * with ms = -1 after it.  The sync worker shows it in pg_stat_activity.
 */
extern void (*zd_wait_hook) (long ms, const char *why);

/* Interruptible sleep on the process latch; CHECK_FOR_INTERRUPTS inside. */
extern void zd_sleep_ms(long ms);

/*
 * Server clock minus local clock (seconds), from the Date header of the last
 * response on this connection; false before any response had one.
 */
extern bool zd_connection_clock_skew(ZdConnection *conn, int64 *skew);

/* ------------------------------------------------------------------------
 * fetch_thread.c: one helper thread for work that touches no PostgreSQL
 * state (receiving and parsing the next export page)
 * ------------------------------------------------------------------------
 */
typedef void (*ZdFetchJob) (void *arg);

/* Run job(arg) on the helper thread; false if it is busy or cannot start. */
extern bool zd_fetch_thread_start(ZdFetchJob job, void *arg);
/* Wait for the job to end, servicing interrupts (an ERROR leaves it running) */
extern void zd_fetch_thread_wait(void);
/* Ask the job to stop and wait for it (within about 100 ms); no-op if none */
extern void zd_fetch_thread_stop(void);
/* For the job: has it been asked to stop? */
extern bool zd_fetch_thread_stopping(void);
/*
 * Free a json-c tree nobody uses any more: on the thread's next job in a
 * process that uses the thread, at once in any other.
 */
extern void zd_fetch_thread_free_json(struct json_object *tree);

/* ------------------------------------------------------------------------
 * resource.c: the four Zendesk resources and their columns
 * ------------------------------------------------------------------------
 */
typedef enum ZdExportKind
{
	ZD_EXPORT_CURSOR,			/* incremental/<x>/cursor.json */
	ZD_EXPORT_TIME				/* incremental/<x>.json with start_time */
} ZdExportKind;

typedef struct ZdColumnDef
{
	const char *name;			/* column name, also the JSON key */
	const char *sqltype;		/* SQL type as written in DDL */
} ZdColumnDef;

typedef struct ZdResource
{
	const char *name;			/* "tickets", also the table name */
	const char *records_key;	/* array key in export responses */
	ZdExportKind kind;
	const char *export_path;	/* "/api/v2/incremental/tickets/cursor.json" */
	const char *export_params;	/* extra query, e.g. "include=comment_events" */
	const char *show_path;		/* "/api/v2/tickets/%s.json" or NULL */
	const char *show_key;		/* "ticket" */
	const char *version_column; /* column telling which copy is newer */
	const char *change_time_key;	/* JSON key of the record's change time */
	bool		change_time_is_epoch;	/* integer epoch vs ISO string */
	const ZdColumnDef *columns;
	int			ncolumns;
} ZdResource;

extern const ZdResource *zd_resource_by_name(const char *name);	/* NULL if
																 * unknown */
extern const ZdResource *const zd_resources[];
extern const int zd_nresources;
extern char *zd_resource_names_list(void);	/* "tickets, users, ..." for
											 * hints */
extern char *zd_resource_column_ddl(const ZdResource *res, bool foreign);

/* ------------------------------------------------------------------------
 * page.c: a parsed export response
 * ------------------------------------------------------------------------
 */
typedef struct ZdPage
{
	struct json_object *root;	/* freed when the page's context is reset */
	struct json_object *records;	/* array inside root */
	int			nrecords;
	bool		end_of_stream;
	char	   *after_cursor;	/* cursor exports; NULL when absent */
	bool		has_end_time;	/* time exports */
	int64		end_time;
	char	   *next_page;		/* time exports; NULL when absent */
} ZdPage;

/*
 * Parse a response body into *page, allocating in CurrentMemoryContext and
 * registering a reset callback on it that frees the json-c tree.  Errors
 * (not JSON, HTML, wrong shape) name the resource and the request.
 */
extern void zd_page_parse(ZdPage *page, const ZdResource *res,
						  const ZdHttpResponse *resp, const char *request);

/*
 * Parse a JSON body whose top-level value is an object, returning the tree
 * and registering its release on CurrentMemoryContext.  Used by zd_page_parse
 * and by show/show_many reads.
 */
extern struct json_object *zd_json_parse_body(const ZdHttpResponse *resp,
											  const char *what,
											  const char *request);

/*
 * json-c's strict, depth-limited parse of body, as zd_json_parse_body does
 * it.  Calls nothing of PostgreSQL, so the fetch thread can run it.
 */
extern void zd_json_tokenize(const char *body, size_t len, ZdJsonParse *out);

extern int64 zd_parse_iso_timestamp_epoch(const char *s, bool *ok);

/* For messages: up to max bytes of s made printable; a JSON type's name */
extern char *zd_printable(const char *s, size_t len, size_t max);

/*
 * zd_printable of the response body from byte start, with resp->secrets
 * replaced by [redacted] first (a proxy or an error page may echo the
 * Authorization header; redacting before the cut leaves no half secret).
 */
extern char *zd_body_printable(const ZdHttpResponse *resp, size_t start,
							   size_t max);
extern const char *zd_json_type_noun(struct json_object *obj);

/* ------------------------------------------------------------------------
 * row_map.c: JSON record -> Datums for any tuple descriptor
 * ------------------------------------------------------------------------
 */
#define ZD_KEY_WHOLE_RECORD "*"

typedef struct ZdRowMapper ZdRowMapper;

/*
 * keys[i] is the JSON key for attribute i, ZD_KEY_WHOLE_RECORD for the whole
 * record as jsonb, or NULL to always yield NULL (dropped columns, synced_at).
 * relname is used in error messages.
 */
extern ZdRowMapper *zd_mapper_create(TupleDesc tupdesc, char **keys,
									 const char *relname);

/* Fill values/nulls for one record; allocations in CurrentMemoryContext. */
extern void zd_mapper_fill(ZdRowMapper *mapper, struct json_object *record,
						   Datum *values, bool *nulls);

/* jsonb Datum for any json-c value (used for the whole record and nested) */
extern Datum zd_json_to_jsonb(struct json_object *obj);

/*
 * A json-c string made fit for the server: NUL -> U+FFFD (counted in
 * *nuls), checked as UTF-8, converted to the server encoding.  m names the
 * column in errors and may be NULL.
 */
extern char *zd_clean_string(ZdRowMapper *m, const char *s, int len,
							 int *outlen, int *nuls);
/* numeric Datums of a json-c integer (any size) and of a JSON number's text */
extern Datum zd_json_int_numeric(struct json_object *v);
extern Datum zd_json_text_numeric(const char *s);

/* ------------------------------------------------------------------------
 * jsonb_write.c: json-c value -> jsonb, in jsonb's binary format directly
 * ------------------------------------------------------------------------
 */
typedef struct ZdJsonbWriter ZdJsonbWriter;

/* A writer remembers key orders; it lives in CurrentMemoryContext. */
extern ZdJsonbWriter *zd_jsonb_writer_create(void);
/* jsonb Datum of v (strings cleaned as zd_clean_string; m may be NULL) */
extern Datum zd_jsonb_write(ZdJsonbWriter *w, struct json_object *v,
							ZdRowMapper *m, int *nuls);

/* The record's id as int64 for messages; false when absent */
extern bool zd_record_id(struct json_object *record, int64 *id);

/* Change time (epoch seconds) of a record; false when absent/unparsable */
extern bool zd_record_change_time(const ZdResource *res,
								  struct json_object *record, int64 *epoch);

/* ------------------------------------------------------------------------
 * export.c: one incremental export stream, page by page
 * ------------------------------------------------------------------------
 */
typedef enum ZdPageResult
{
	ZD_PAGE_OK,					/* export->page holds a page */
	ZD_PAGE_DONE,				/* the previous page ended the stream */
	ZD_PAGE_CURSOR_REJECTED		/* a cursor request got a 4xx */
} ZdPageResult;

typedef struct ZdExport
{
	ZdConnection *conn;
	const ZdResource *res;
	int			per_page;

	/* position */
	char	   *cursor;			/* cursor exports, NULL before the first page */
	int64		start_time;		/* time exports, or the first cursor request */
	bool		done;

	/* the current page; its memory is reset on every fetch */
	MemoryContext page_cxt;
	MemoryContext state_cxt;	/* position and boundary ids */
	ZdPage		page;
	char	   *request;		/* path+query of the last request (in
								 * page_cxt) */
	int			rejected_status;	/* HTTP status when CURSOR_REJECTED */
	int			pages;

	/* time exports: ids on the previous page's last second (repeats) */
	int64	   *boundary_ids;
	uint64	   *boundary_hashes;	/* of each boundary record's JSON */
	int			nboundary;
	int64		boundary_time;

	/* per_page shrinks after gateway timeouts and grows back (export.c) */
	int			max_per_page;
	int			good_pages;

	/* no-progress guards (export.c) */
	char	   *recent_cursors[8];	/* cursors requested last, in state_cxt */
	int			nrecent;
	int			empty_pages;	/* consecutive empty pages, stream not ended */
	bool		has_last_start;
	int64		last_start;		/* start_time of the last time request */

	bool		too_recent;		/* Zendesk refused start_time as too recent:
								 * nothing new to export */
	bool		prefetch;		/* ask for the next page as soon as a page is
								 * parsed (callers that read every page) */
} ZdExport;

extern void zd_export_init(ZdExport *exp, ZdConnection *conn,
						   const ZdResource *res, const char *cursor,
						   int64 start_time, int per_page,
						   MemoryContext parent);
extern ZdPageResult zd_export_next_page(ZdExport *exp);
extern bool zd_export_is_repeat(ZdExport *exp, struct json_object *record);
extern struct json_object *zd_page_record(const ZdPage *page, int i);
extern char *zd_export_describe(const ZdResource *res, const char *cursor,
								int64 start_time, int per_page);
extern int64 zd_clamp_start_time(int64 start_time);
extern void zd_export_end(ZdExport *exp);

/* ------------------------------------------------------------------------
 * fdw_plan.c, fdw_scan.c: the FDW callbacks
 * ------------------------------------------------------------------------
 */
struct PlannerInfo;
struct RelOptInfo;
struct ForeignPath;
struct ForeignScan;
struct Plan;
struct ForeignScanState;
struct TupleTableSlot;
struct ExplainState;
struct ImportForeignSchemaStmt;

extern void zdGetForeignRelSize(struct PlannerInfo *root,
								struct RelOptInfo *baserel, Oid foreigntableid);
extern void zdGetForeignPaths(struct PlannerInfo *root,
							  struct RelOptInfo *baserel, Oid foreigntableid);
extern struct ForeignScan *zdGetForeignPlan(struct PlannerInfo *root,
											struct RelOptInfo *baserel,
											Oid foreigntableid,
											struct ForeignPath *best_path,
											List *tlist, List *scan_clauses,
											struct Plan *outer_plan);
extern void zdBeginForeignScan(struct ForeignScanState *node, int eflags);
extern struct TupleTableSlot *zdIterateForeignScan(struct ForeignScanState *node);
extern void zdReScanForeignScan(struct ForeignScanState *node);
extern void zdEndForeignScan(struct ForeignScanState *node);
extern void zdExplainForeignScan(struct ForeignScanState *node,
								 struct ExplainState *es);
extern List *zdImportForeignSchema(struct ImportForeignSchemaStmt *stmt,
								   Oid serverOid);

/* ------------------------------------------------------------------------
 * sync.c (the SQL functions) and sync_worker.c (the background worker)
 * ------------------------------------------------------------------------
 */

/* upsert.c: version-guarded upserts into a local table */
typedef struct ZdUpsert ZdUpsert;

extern ZdUpsert *zd_upsert_prepare(const ZdResource *res, Oid relid,
								   MemoryContext cxt);
extern int64 zd_upsert_page(ZdUpsert *up, ZdExport *exp, int pageno,
							int64 *newest, bool *has_newest);
extern void zd_upsert_free(ZdUpsert *up);

/* What zendesk_sync() hands its worker, in bgw_extra. */
typedef struct ZdSyncRequest
{
	Oid			dbid;
	Oid			userid;
	Oid			serverid;
	int32		streams_mask;	/* bit i: zd_resources[i] */
	int64		run_id;
	/* the caller's settings, which a worker does not inherit */
	int32		holdback;
	int32		recovery_overlap;
	int32		max_retry_wait;
	int32		runs_retention_days;
	NameData	target_schema;
} ZdSyncRequest;

/*
 * Runs of ($1 server, $2 stream) still marked running belong to a worker
 * that is gone, once the caller holds the stream's lock: mark them failed.
 * %s is the extension's schema.
 */
#define ZD_FAIL_STALE_RUNS_SQL \
	"UPDATE %s.zendesk_sync_runs SET status = 'failed', finished_at = now(), " \
	"message = 'interrupted: the sync worker ended before finishing this stream' " \
	"WHERE server = $1 AND stream = $2 AND status = 'running'"

extern bool zd_stream_lock(Oid serverid, int stream, bool session);
extern void zd_stream_unlock(Oid serverid, int stream, bool session);
extern Oid	zd_extension_schema(void);
extern Oid	zd_extension_owner(void);

PGDLLEXPORT void zendesk_sync_worker_main(Datum arg);

/* ------------------------------------------------------------------------
 * show.c: records by id (show and show_many), for pushed-down id lookups
 * ------------------------------------------------------------------------
 */
#define ZD_SHOW_MANY_MAX	100	/* ids per show_many request */

typedef struct ZdShowReader
{
	ZdConnection *conn;
	const ZdResource *res;
	int64	   *ids;			/* in state_cxt */
	int			nids;
	int			next_id;		/* first id not yet requested */
	MemoryContext state_cxt;
	MemoryContext page_cxt;		/* the current response; reset per request */
	struct json_object *single; /* show: the record, or NULL */
	struct json_object *records;	/* show_many: the array, or NULL */
	int			nrecords;		/* records of the current response */
	char	   *request;		/* path+query of the last request */
	int			requests;
} ZdShowReader;

/* true when the resource has a show endpoint (show_path/show_key) */
extern bool zd_resource_has_show(const ZdResource *res);
/* one id: GET show_path; several: show_many in batches of ZD_SHOW_MANY_MAX */
extern void zd_show_init(ZdShowReader *rd, ZdConnection *conn,
						 const ZdResource *res, const int64 *ids, int nids,
						 MemoryContext parent);
/* next request; false when all ids were requested; 404 RecordNotFound: 0 records */
extern bool zd_show_next(ZdShowReader *rd);
extern struct json_object *zd_show_record(const ZdShowReader *rd, int i);
extern void zd_show_end(ZdShowReader *rd);
/* "GET /api/v2/tickets/<id>.json" or the show_many form, for EXPLAIN */
extern char *zd_show_describe(const ZdResource *res, bool many);

/*
 * Plan -> scan hand-over (fdw_plan.c -> fdw_scan.c).  ForeignScan.fdw_exprs
 * holds the pushed values: the id value (ZD_LOOKUP_ID_EQ: an integer;
 * ZD_LOOKUP_ID_ANY: an integer array) first when there is a lookup, else the
 * lower bounds (date/timestamp/timestamptz) for start_time.
 * ForeignScan.fdw_private is a list indexed by ZdFdwPrivateIndex.
 */
typedef enum ZdLookupKind
{
	ZD_LOOKUP_NONE = 0,			/* incremental export */
	ZD_LOOKUP_ID_EQ,			/* show endpoint, one id */
	ZD_LOOKUP_ID_ANY			/* show_many, batches of ZD_SHOW_MANY_MAX */
} ZdLookupKind;

typedef enum ZdFdwPrivateIndex
{
	ZD_PRIV_LOOKUP = 0,			/* Integer: ZdLookupKind */
	ZD_PRIV_PER_PAGE,			/* Integer: per_page from a LIMIT, 0 = option */
	ZD_PRIV_PUSHED,				/* List of Integer: positions in plan.qual of
								 * the pushed quals (for EXPLAIN) */
	ZD_PRIV_COUNT
} ZdFdwPrivateIndex;

#endif							/* ZENDESK_FDW_H */
