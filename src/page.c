/*-------------------------------------------------------------------------
 *
 * page.c
 *		  Parse a Zendesk response body into a json-c tree and pick the
 *		  paging fields of an incremental export page out of it.
 *
 * json-c allocates with malloc, so every tree we hand out is tied to a
 * PostgreSQL memory context by a reset callback: resetting or deleting the
 * context (including on ERROR) frees the tree.
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include <json-c/json.h>

#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "zendesk_fdw.h"

/* json-c's nesting limit; Zendesk payloads nest about 6 levels deep */
#define ZD_JSON_MAX_DEPTH		64

/* how much of a bad body to show in errdetail */
#define ZD_BODY_SNIPPET_BYTES	200

static void zd_json_free_callback(void *arg);
static const char *zd_value_snippet(struct json_object *obj);
static bool zd_is_json_ws(char c);
static int	zd_count_bad_surrogates(const char *s, size_t len);

/* MemoryContextCallback: drop the json-c tree with its owning context. */
static void
zd_json_free_callback(void *arg)
{
	zd_fetch_thread_free_json((struct json_object *) arg);
}

static bool
zd_is_json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Make up to max bytes of s safe to print in a message: control characters
 * and invalid UTF-8 become '?', the cut falls on a character boundary, and
 * non-ASCII is replaced too when the database encoding is not UTF-8 (the
 * message text must be valid in the server encoding).
 */
char *
zd_printable(const char *s, size_t len, size_t max)
{
	StringInfoData buf;
	bool		utf8db = (GetDatabaseEncoding() == PG_UTF8);
	size_t		i = 0;

	initStringInfo(&buf);
	while (i < len && i < max)
	{
		const unsigned char *p = (const unsigned char *) s + i;
		int			l;

		if (*p < 0x80)
		{
			appendStringInfoChar(&buf, (*p < 0x20 || *p == 0x7f) ? '?' : (char) *p);
			i++;
			continue;
		}
		l = pg_utf_mblen(p);
		if (i + l > max)
			break;				/* would split a character */
		if (l > 1 && i + l <= len && pg_utf8_islegal(p, l))
		{
			if (utf8db)
				appendBinaryStringInfo(&buf, (const char *) p, l);
			else
				appendStringInfoChar(&buf, '?');
			i += l;
		}
		else
		{
			appendStringInfoChar(&buf, '?');
			i++;
		}
	}
	if (i < len)
		appendStringInfoString(&buf, "...");
	return buf.data;
}

char *
zd_body_printable(const ZdHttpResponse *resp, size_t start, size_t max)
{
	const char *body = resp->body ? resp->body : "";
	size_t		len = resp->body ? resp->body_len : 0;
	char	   *cur;
	size_t		curlen;
	size_t		curstart;
	size_t		window;
	char	   *out;

	start = Min(start, len);
	if (resp->secrets == NULL || resp->secrets[0] == NULL)
		return zd_printable(body + start, len - start, max);

	/*
	 * Redact everything up to well past the snippet's end, from byte 0 so a
	 * secret that straddles start is caught too; start moves with the
	 * replacements before it.  Only error paths come here.
	 */
	window = Min(len, start + max + 4096);
	cur = palloc(window + 1);	/* not pnstrdup: a body may hold NULs */
	memcpy(cur, body, window);
	cur[window] = '\0';
	curlen = window;
	curstart = start;
	for (int i = 0; resp->secrets[i] != NULL; i++)
	{
		const char *secret = resp->secrets[i];
		size_t		slen = strlen(secret);
		StringInfoData buf;
		size_t		pos = 0;
		size_t		newstart = curstart;
		const char *hit;

		if (slen < 4)
			continue;
		initStringInfo(&buf);
		while (pos < curlen &&
			   (hit = memmem(cur + pos, curlen - pos, secret, slen)) != NULL)
		{
			size_t		at = hit - cur;

			appendBinaryStringInfo(&buf, cur + pos, at - pos);
			if (at + slen <= curstart)
				newstart -= slen - strlen("[redacted]");
			else if (at < curstart)
				newstart = buf.len;	/* start fell inside it */
			appendStringInfoString(&buf, "[redacted]");
			pos = at + slen;
		}
		appendBinaryStringInfo(&buf, cur + pos, curlen - pos);
		cur = buf.data;
		curlen = buf.len;
		curstart = Min(newstart, curlen);
	}
	out = zd_printable(cur + curstart, curlen - curstart, max);
	/* the window may end before the body does */
	if (window < len && curlen - curstart <= max)
		out = psprintf("%s...", out);
	return out;
}

/* JSON type as a noun for messages */
const char *
zd_json_type_noun(struct json_object *obj)
{
	switch (json_object_get_type(obj))
	{
		case json_type_null:
			return "null";
		case json_type_boolean:
			return "boolean";
		case json_type_double:
			return "number";
		case json_type_int:
			return "integer";
		case json_type_object:
			return "object";
		case json_type_array:
			return "array";
		case json_type_string:
			return "string";
	}
	return "value";
}

/* A value's JSON text, shortened and printable, for messages */
static const char *
zd_value_snippet(struct json_object *obj)
{
	size_t		len;
	const char *s;

	s = json_object_to_json_string_length(obj,
										  JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
										  &len);
	return zd_printable(s, len, 100);
}

/* 4 hex digits at p (bounded by e) */
static bool
zd_hex4(const char *p, const char *e, unsigned *v)
{
	*v = 0;
	if (e - p < 4)
		return false;
	for (int i = 0; i < 4; i++)
	{
		char		c = p[i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned) (c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned) (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned) (c - 'A' + 10);
		else
			return false;
	}
	return true;
}

/*
 * Count \u escapes that are not valid UTF-16: a high surrogate not followed
 * by a low one, or a lone low surrogate.  json-c turns each into U+FFFD
 * without telling; we say so in a WARNING.
 */
static int
zd_count_bad_surrogates(const char *s, size_t len)
{
	const char *p = s;
	const char *e = s + len;
	int			n = 0;
	unsigned	v,
				w;

	while (p < e && (p = memchr(p, '\\', e - p)) != NULL)
	{
		if (p + 1 >= e)
			break;
		if (p[1] != 'u' || !zd_hex4(p + 2, e, &v))
		{
			p += 2;				/* any other escape, including \\ */
			continue;
		}
		if (v >= 0xD800 && v <= 0xDBFF)
		{
			if (e - p >= 12 && p[6] == '\\' && p[7] == 'u' &&
				zd_hex4(p + 8, e, &w) && w >= 0xDC00 && w <= 0xDFFF)
			{
				p += 12;		/* a valid pair */
				continue;
			}
			n++;
		}
		else if (v >= 0xDC00 && v <= 0xDFFF)
			n++;
		p += 6;
	}
	return n;
}

void
zd_json_tokenize(const char *body, size_t len, ZdJsonParse *out)
{
	struct json_tokener *tok = json_tokener_new_ex(ZD_JSON_MAX_DEPTH);

	memset(out, 0, sizeof(ZdJsonParse));
	if (tok == NULL || len > (size_t) INT_MAX)
	{
		if (tok != NULL)
			json_tokener_free(tok);
		return;
	}

	/*
	 * Strict mode rejects trailing commas, leading zeros and single quotes;
	 * trailing characters are checked by the caller so the message can say
	 * so.
	 */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	out->root = json_tokener_parse_ex(tok, body, (int) len);
	out->jerr = (int) json_tokener_get_error(tok);
	out->end = json_tokener_get_parse_end(tok);
	out->done = true;
	json_tokener_free(tok);
}

struct json_object *
zd_json_parse_body(const ZdHttpResponse *resp, const char *what,
				   const char *request)
{
	const char *body = resp->body ? resp->body : "";
	size_t		len = resp->body ? resp->body_len : 0;
	size_t		start = 0;
	size_t		end;
	const char *nul;
	MemoryContextCallback *cb;
	ZdJsonParse parse;
	struct json_object *root;
	enum json_tokener_error jerr;

	/* Allocate before parsing: a palloc failure afterwards would leak. */
	cb = palloc(sizeof(MemoryContextCallback));

	while (start < len && zd_is_json_ws(body[start]))
		start++;
	if (start == len)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("Zendesk returned an empty response (HTTP %ld) for GET %s",
						resp->status, request),
				 errdetail("An empty body is not a valid %s.", what)));

	/* An HTML page is a proxy, a maintenance page or a wrong url/subdomain. */
	if (pg_strncasecmp(resp->content_type, "text/html", 9) == 0 ||
		body[start] == '<')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("Zendesk returned an HTML page instead of JSON (HTTP %ld) for GET %s",
						resp->status, request),
				 errdetail("Expected a %s; the body (%zu bytes, Content-Type \"%s\") begins with: %s",
						   what, len, resp->content_type,
						   zd_body_printable(resp, start,
											   ZD_BODY_SNIPPET_BYTES)),
				 errhint("Check the server's subdomain or url option; a proxy or a maintenance page may also answer with HTML.")));

	/* json_tokener_parse_ex takes an int length */
	if (len > (size_t) INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_LENGTH_OR_BUFFER_LENGTH),
				 errmsg("Zendesk response for GET %s is too large to parse (%zu bytes)",
						request, len)));

	/*
	 * A raw NUL byte is never valid JSON (inside strings it must be written
	 * \u0000), and json-c treats it as end of input, so reject it here with
	 * an exact position rather than a misleading "end of data".
	 */
	nul = memchr(body, '\0', len);
	if (nul != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("Zendesk returned malformed JSON for GET %s: unexpected NUL byte at byte %zu",
						request, (size_t) (nul - body)),
				 errdetail("The %s (%zu bytes) begins with: %s", what, len,
						   zd_body_printable(resp, 0, ZD_BODY_SNIPPET_BYTES))));

	/* the fetch thread may have parsed this very body already */
	if (resp->preparsed != NULL && resp->preparsed->done)
	{
		parse = *resp->preparsed;
		resp->preparsed->done = false;
		resp->preparsed->root = NULL;	/* ours now */
	}
	else
		zd_json_tokenize(body, len, &parse);
	if (!parse.done)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not create a JSON parser.")));
	root = parse.root;
	jerr = (enum json_tokener_error) parse.jerr;
	end = parse.end;

	if (root == NULL || jerr != json_tokener_success)
	{
		const char *why;

		json_object_put(root);	/* NULL-safe */
		if (jerr == json_tokener_error_depth)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
					 errmsg("Zendesk returned JSON nested deeper than %d levels for GET %s (at byte %zu)",
							ZD_JSON_MAX_DEPTH, request, end),
					 errdetail("The %s (%zu bytes) begins with: %s", what, len,
							   zd_body_printable(resp, 0, ZD_BODY_SNIPPET_BYTES))));

		/* "continue" after the whole body means it stopped mid-value */
		if (jerr == json_tokener_continue)
			why = "unexpected end of data";
		else
			why = json_tokener_error_desc(jerr);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("Zendesk returned malformed JSON for GET %s: %s at byte %zu",
						request, why, end),
				 errdetail("The %s (%zu bytes) begins with: %s", what, len,
						   zd_body_printable(resp, 0, ZD_BODY_SNIPPET_BYTES))));
	}

	/* One value only: anything but whitespace after it is garbage. */
	while (end < len && zd_is_json_ws(body[end]))
		end++;
	if (end < len)
	{
		json_object_put(root);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_STRING_FORMAT),
				 errmsg("Zendesk returned malformed JSON for GET %s: unexpected data after the JSON value at byte %zu",
						request, end),
				 errdetail("The %s (%zu bytes) continues with: %s", what, len,
						   zd_body_printable(resp, end,
											   ZD_BODY_SNIPPET_BYTES))));
	}

	if (!json_object_is_type(root, json_type_object))
	{
		const char *tname = zd_json_type_noun(root);
		char	   *snippet = zd_body_printable(resp, 0, ZD_BODY_SNIPPET_BYTES);

		json_object_put(root);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Zendesk returned a JSON %s instead of an object for GET %s",
						tname, request),
				 errdetail("The %s (%zu bytes) begins with: %s", what, len,
						   snippet)));
	}

	cb->func = zd_json_free_callback;
	cb->arg = root;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);

	/* documented handling: U+FFFD, and a WARNING so it is not silent */
	{
		int			bad = zd_count_bad_surrogates(body, len);

		if (bad > 0)
			ereport(WARNING,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("Zendesk response for GET %s contained %d invalid UTF-16 surrogate escape(s); replaced with U+FFFD",
							request, bad)));
	}
	return root;
}

/*
 * Optional string member: NULL when absent or JSON null.  Cursors and URLs
 * end up in catalogs and requests, so they must be valid UTF-8 without NULs.
 */
static char *
zd_page_string(struct json_object *root, const char *key,
			   const char *request)
{
	struct json_object *v;
	const char *s;
	int			len;

	if (!json_object_object_get_ex(root, key, &v) || v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_string))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("\"%s\" in the Zendesk response for GET %s is a JSON %s (%s), expected a string or null",
						key, request, zd_json_type_noun(v), zd_value_snippet(v))));
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if (!pg_verify_mbstr(PG_UTF8, s, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("\"%s\" in the Zendesk response for GET %s is not valid UTF-8 text",
						key, request),
				 errdetail("Value: %s", zd_value_snippet(v))));
	return pstrdup(s);
}

void
zd_page_parse(ZdPage *page, const ZdResource *res,
			  const ZdHttpResponse *resp, const char *request)
{
	char		what[NAMEDATALEN + 32];
	struct json_object *root;
	struct json_object *records;
	struct json_object *v;
	size_t		n;
	size_t		i;

	snprintf(what, sizeof(what), "%s export page", res->name);
	memset(page, 0, sizeof(ZdPage));
	root = zd_json_parse_body(resp, what, request);
	page->root = root;

	/* the records array */
	if (!json_object_object_get_ex(root, res->records_key, &records) ||
		records == NULL)
	{
		StringInfoData keys;
		struct json_object_iterator it = json_object_iter_begin(root);
		struct json_object_iterator itend = json_object_iter_end(root);
		int			nkeys = 0;

		/* list what it does have: usually tells what went wrong */
		initStringInfo(&keys);
		while (!json_object_iter_equal(&it, &itend) && nkeys < 20)
		{
			const char *k = json_object_iter_peek_name(&it);

			appendStringInfo(&keys, "%s\"%s\"", nkeys > 0 ? ", " : "",
							 zd_printable(k, strlen(k), 64));
			nkeys++;
			json_object_iter_next(&it);
		}
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Zendesk response for GET %s has no \"%s\" array",
						request, res->records_key),
				 nkeys > 0 ?
				 errdetail("The %s has these keys: %s.", what, keys.data) :
				 errdetail("The %s is an empty object.", what)));
	}
	if (!json_object_is_type(records, json_type_array))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("\"%s\" in the Zendesk response for GET %s is a JSON %s, expected an array",
						res->records_key, request, zd_json_type_noun(records)),
				 errdetail("Value: %s", zd_value_snippet(records))));

	n = json_object_array_length(records);
	for (i = 0; i < n; i++)
	{
		struct json_object *rec = json_object_array_get_idx(records, i);

		if (!json_object_is_type(rec, json_type_object))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("element %zu of \"%s\" in the Zendesk response for GET %s is a JSON %s, expected an object",
							i, res->records_key, request, zd_json_type_noun(rec)),
					 errdetail("Value: %s", zd_value_snippet(rec))));
	}
	page->records = records;
	page->nrecords = (int) n;

	page->after_cursor = zd_page_string(root, "after_cursor", request);
	page->next_page = zd_page_string(root, "next_page", request);

	/* end_time: integer epoch, or null/absent */
	if (json_object_object_get_ex(root, "end_time", &v) && v != NULL)
	{
		if (!json_object_is_type(v, json_type_int) ||
			(json_object_get_int64(v) == PG_INT64_MAX &&
			 json_object_get_uint64(v) > (uint64) PG_INT64_MAX))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("\"end_time\" in the Zendesk response for GET %s is a JSON %s (%s), expected an integer or null",
							request, zd_json_type_noun(v), zd_value_snippet(v))));
		page->has_end_time = true;
		page->end_time = json_object_get_int64(v);
	}

	/* end_of_stream: boolean; JSON null counts as absent */
	if (json_object_object_get_ex(root, "end_of_stream", &v) && v != NULL)
	{
		if (!json_object_is_type(v, json_type_boolean))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("\"end_of_stream\" in the Zendesk response for GET %s is a JSON %s (%s), expected a boolean",
							request, zd_json_type_noun(v), zd_value_snippet(v))));
		page->end_of_stream = json_object_get_boolean(v) ? true : false;
	}
	else if (res->kind == ZD_EXPORT_CURSOR)
	{
		/* without it a cursor export cannot know when to stop */
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Zendesk response for GET %s has no \"end_of_stream\" boolean",
						request),
				 errdetail("Cursor-based exports must say whether the stream has ended.")));
	}
	else
	{
		/* 2019-era time exports have no end_of_stream: next_page null ends */
		page->end_of_stream = (page->next_page == NULL);
	}
}

/* ------------------------------------------------------------------------
 * ISO 8601 timestamps, without ereport (callers decide what failure means)
 * ------------------------------------------------------------------------
 */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64
zd_days_from_civil(int64 y, int m, int d)
{
	int64		era;
	int64		yoe;
	int64		doy;
	int64		doe;

	y -= (m <= 2);
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Parse exactly n digits at *p, advancing it. */
static bool
zd_digits(const char **p, int n, int *out)
{
	int			v = 0;

	while (n-- > 0)
	{
		if (**p < '0' || **p > '9')
			return false;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return true;
}

/*
 * YYYY-MM-DDTHH:MM[:SS[.frac]](Z|+HH[:MM]|-HH[:MM]) -> epoch seconds (floor)
 * and microseconds 0..999999 (fraction digits beyond 6 are truncated).
 * No ereport: callers decide what a failure means.
 */
static bool
zd_parse_iso(const char *s, int64 *secs, int32 *usecs)
{
	const char *p = s;
	int			y,
				mo,
				d,
				h,
				mi,
				sec = 0;
	int32		us = 0;
	int			off = 0;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			dim;

	if (s == NULL)
		return false;
	if (!zd_digits(&p, 4, &y) || *p++ != '-' ||
		!zd_digits(&p, 2, &mo) || *p++ != '-' ||
		!zd_digits(&p, 2, &d))
		return false;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!zd_digits(&p, 2, &h) || *p++ != ':' || !zd_digits(&p, 2, &mi))
		return false;
	if (*p == ':')
	{
		p++;
		if (!zd_digits(&p, 2, &sec))
			return false;
		if (*p == '.' || *p == ',')
		{
			int			ndig = 0;

			p++;
			if (*p < '0' || *p > '9')
				return false;
			while (*p >= '0' && *p <= '9')
			{
				if (ndig < 6)
					us = us * 10 + (*p - '0');
				ndig++;
				p++;
			}
			for (; ndig < 6; ndig++)
				us *= 10;
		}
	}

	/* zone designator is required: a local time would be ambiguous */
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			sign = (*p == '-') ? -1 : 1;
		int			oh,
					om = 0;

		p++;
		if (!zd_digits(&p, 2, &oh))
			return false;
		if (*p == ':')
		{
			p++;
			if (!zd_digits(&p, 2, &om))
				return false;
		}
		else if (*p >= '0' && *p <= '9')
		{
			if (!zd_digits(&p, 2, &om))
				return false;
		}
		if (oh > 23 || om > 59)
			return false;
		off = sign * (oh * 3600 + om * 60);
	}
	else
		return false;
	if (*p != '\0')
		return false;

	if (mo < 1 || mo > 12 || d < 1)
		return false;
	dim = mdays[mo - 1];
	if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		dim = 29;
	/* second 60 (leap second) rolls over like PostgreSQL does */
	if (d > dim || h > 23 || mi > 59 || sec > 60)
		return false;

	*secs = zd_days_from_civil(y, mo, d) * SECS_PER_DAY +
		h * 3600 + mi * 60 + sec - off;
	*usecs = us;
	return true;
}

int64
zd_parse_iso_timestamp_epoch(const char *s, bool *ok)
{
	int64		secs;
	int32		usecs;

	*ok = zd_parse_iso(s, &secs, &usecs);
	return *ok ? secs : 0;
}
