/*-------------------------------------------------------------------------
 *
 * show.c
 *		  Read records by id: GET /api/v2/<resource>/<id>.json for one id,
 *		  GET /api/v2/<resource>/show_many.json?ids=... for several.
 *
 * These serve the id lookups a foreign scan pushes down (id = ..., id IN
 * (...), id = ANY (...), and the parameter of a nested loop join).  The
 * bodies go through the same parser as export pages (zd_json_parse_body) and
 * the records through the same mapper, so a looked-up row is built exactly
 * like an exported one.
 *
 * What differs from the export, and is documented for users:
 * - show responses carry no generated_timestamp (tickets), so that column
 *   reads as NULL;
 * - a deleted ticket or organization is "not found" (404 RecordNotFound, or
 *   left out of show_many), so it yields no row where a full scan shows it
 *   in its deleted state;
 * - an id that does not exist is simply no row: 404 RecordNotFound is not an
 *   error here.  Any other 404 (a wrong url, an unknown subdomain) still is.
 *
 * Like an export, a reader holds one response in memory: its context is
 * reset before every request.
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json-c/json.h>

#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "zendesk_fdw.h"

#define ZD_SHOW_ID_PLACEHOLDER "%lld"

/*
 * Split res->show_path ("/api/v2/tickets/%lld.json") around its id
 * placeholder.  False when the resource has no show endpoint.
 */
static bool
show_path_parts(const ZdResource *res, char **prefix, const char **suffix)
{
	const char *ph;

	if (res->show_path == NULL || res->show_key == NULL)
		return false;
	ph = strstr(res->show_path, ZD_SHOW_ID_PLACEHOLDER);
	if (ph == NULL)
		return false;
	*prefix = pnstrdup(res->show_path, ph - res->show_path);
	*suffix = ph + strlen(ZD_SHOW_ID_PLACEHOLDER);
	return true;
}

bool
zd_resource_has_show(const ZdResource *res)
{
	char	   *prefix;
	const char *suffix;

	if (!show_path_parts(res, &prefix, &suffix))
		return false;
	pfree(prefix);
	return true;
}

/* What EXPLAIN shows: the request with a placeholder for the id(s). */
char *
zd_show_describe(const ZdResource *res, bool many)
{
	char	   *prefix;
	const char *suffix;

	if (!show_path_parts(res, &prefix, &suffix))
		return NULL;
	if (many)
		return psprintf("GET %sshow_many%s?ids=<at most %d ids a request>",
						prefix, suffix, ZD_SHOW_MANY_MAX);
	return psprintf("GET %s<id>%s", prefix, suffix);
}

void
zd_show_init(ZdShowReader *rd, ZdConnection *conn, const ZdResource *res,
			 const int64 *ids, int nids, MemoryContext parent)
{
	memset(rd, 0, sizeof(ZdShowReader));
	rd->conn = conn;
	rd->res = res;
	rd->state_cxt = AllocSetContextCreate(parent, "zendesk_fdw show state",
										  ALLOCSET_SMALL_SIZES);
	rd->page_cxt = AllocSetContextCreate(parent, "zendesk_fdw show response",
										 ALLOCSET_DEFAULT_SIZES);
	rd->nids = nids;
	if (nids > 0)
	{
		rd->ids = MemoryContextAlloc(rd->state_cxt, sizeof(int64) * nids);
		memcpy(rd->ids, ids, sizeof(int64) * nids);
	}
}

void
zd_show_end(ZdShowReader *rd)
{
	if (rd->page_cxt)
		MemoryContextDelete(rd->page_cxt);
	if (rd->state_cxt)
		MemoryContextDelete(rd->state_cxt);
	rd->page_cxt = rd->state_cxt = NULL;
	rd->records = NULL;
	rd->single = NULL;
	rd->nrecords = 0;
}

/*
 * A 404 whose body says RecordNotFound means "no such record" (or a deleted
 * ticket or organization); anything else is an error.
 */
static bool
is_record_not_found(const ZdHttpResponse *resp, const char *request)
{
	struct json_object *root;
	struct json_object *err;

	if (resp->status != 404)
		return false;
	root = zd_json_parse_body(resp, "Zendesk error response", request);
	return json_object_object_get_ex(root, "error", &err) && err != NULL &&
		json_object_is_type(err, json_type_string) &&
		strcmp(json_object_get_string(err), "RecordNotFound") == 0;
}

static void
check_record_object(struct json_object *rec, const char *where,
					const char *request)
{
	if (rec == NULL || !json_object_is_type(rec, json_type_object))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("%s in the Zendesk response for GET %s is not a JSON object",
						where, request)));
}

/*
 * Request the next id (or the next batch of at most ZD_SHOW_MANY_MAX ids).
 * False when every id has been requested.  On true, rd->nrecords records are
 * available (possibly 0: none of the ids exists).
 */
bool
zd_show_next(ZdShowReader *rd)
{
	const ZdResource *res = rd->res;
	ZdHttpResponse *resp;
	MemoryContext oldcxt;
	StringInfoData buf;
	char	   *prefix;
	const char *suffix;
	struct json_object *root;
	int			batch;

	if (rd->next_id >= rd->nids)
		return false;

	MemoryContextReset(rd->page_cxt);
	rd->records = NULL;
	rd->single = NULL;
	rd->nrecords = 0;
	oldcxt = MemoryContextSwitchTo(rd->page_cxt);

	if (!show_path_parts(res, &prefix, &suffix))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Zendesk resource \"%s\" has no show endpoint", res->name)));

	initStringInfo(&buf);
	if (rd->nids == 1)
	{
		/* one id: the show endpoint */
		batch = 1;
		appendStringInfo(&buf, "%s" INT64_FORMAT "%s", prefix,
						 rd->ids[rd->next_id], suffix);
	}
	else
	{
		batch = Min(rd->nids - rd->next_id, ZD_SHOW_MANY_MAX);
		appendStringInfo(&buf, "%sshow_many%s?ids=", prefix, suffix);
		for (int i = 0; i < batch; i++)
			appendStringInfo(&buf, "%s" INT64_FORMAT, i > 0 ? "," : "",
							 rd->ids[rd->next_id + i]);
	}
	rd->request = buf.data;
	rd->next_id += batch;
	rd->requests++;

	resp = zd_http_get(rd->conn, rd->request);

	if (resp->status != 200)
	{
		if (is_record_not_found(resp, rd->request))
		{
			MemoryContextSwitchTo(oldcxt);
			return true;		/* no such record: no row */
		}
		zd_http_status_error(resp, rd->request);
	}

	root = zd_json_parse_body(resp, "Zendesk show response", rd->request);
	if (rd->nids == 1)
	{
		struct json_object *rec;

		if (!json_object_object_get_ex(root, res->show_key, &rec) || rec == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("Zendesk response for GET %s has no \"%s\" object",
							rd->request, res->show_key)));
		check_record_object(rec, psprintf("\"%s\"", res->show_key),
							rd->request);
		rd->single = rec;
		rd->nrecords = 1;
	}
	else
	{
		struct json_object *arr;

		if (!json_object_object_get_ex(root, res->records_key, &arr) ||
			arr == NULL || !json_object_is_type(arr, json_type_array))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("Zendesk response for GET %s has no \"%s\" array",
							rd->request, res->records_key)));
		rd->records = arr;
		rd->nrecords = (int) json_object_array_length(arr);
		for (int i = 0; i < rd->nrecords; i++)
			check_record_object(json_object_array_get_idx(arr, i),
								psprintf("element %d of \"%s\"", i, res->records_key),
								rd->request);
	}

	MemoryContextSwitchTo(oldcxt);
	return true;
}

struct json_object *
zd_show_record(const ZdShowReader *rd, int i)
{
	Assert(i >= 0 && i < rd->nrecords);
	if (rd->single)
		return rd->single;
	return json_object_array_get_idx(rd->records, i);
}
