/*-------------------------------------------------------------------------
 *
 * jsonb_write.c
 *		  Write a json-c value as jsonb, straight into jsonb's binary format.
 *
 * The usual way (pushJsonbValue, then JsonbValueToJsonb) builds a tree of
 * JsonbValues, sorts every object's keys with qsort and walks the tree again
 * to serialize it: a fifth of the sync worker's CPU.  Here the json-c tree is
 * serialized in one walk, laid out exactly as convertToJsonb lays it out
 * (jsonb_util.c), so the result is the same jsonb, byte for byte (the
 * regression tests compare it with PostgreSQL's own jsonb_in).
 *
 * An object's keys must be stored sorted (shorter first, then bytewise).
 * Zendesk sends the objects of one kind with the same keys in the same
 * order, so the writer remembers the sorted order of recent key sequences
 * ("shapes") and sorts only an object whose keys it has not seen.
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include <json-c/json.h>

#include "miscadmin.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "zendesk_fdw.h"

#define ZD_JSON_TEXT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* remembered key orders; a ticket has about ten kinds of objects */
#define ZD_SHAPES			32
/* objects with more keys are sorted every time (none in Zendesk's API) */
#define ZD_SHAPE_MAX_KEYS	256

typedef struct ZdKey
{
	const char *s;				/* as stored in jsonb (cleaned) */
	int			len;
} ZdKey;

/* One key sequence: raw keys in arrival order, and the order to store them */
typedef struct ZdShape
{
	int			nkeys;			/* 0: unused slot */
	char	  **raw;			/* json-c's keys, in arrival order */
	int		   *rawlen;
	ZdKey	   *keys;			/* cleaned keys, in arrival order */
	int		   *order;			/* arrival positions in storage order;
								 * duplicates left out */
	int			nstored;		/* entries of order */
} ZdShape;

struct ZdJsonbWriter
{
	MemoryContext cxt;			/* shapes live here */
	ZdShape		shapes[ZD_SHAPES];
	int			next_victim;	/* round-robin replacement */
};

typedef struct WriteState
{
	ZdJsonbWriter *w;
	ZdRowMapper *m;				/* for messages; may be NULL */
	int		   *nuls;
	StringInfo	buf;
} WriteState;

static void write_value(WriteState *ws, struct json_object *v, JEntry *je,
						int level);

ZdJsonbWriter *
zd_jsonb_writer_create(void)
{
	ZdJsonbWriter *w = palloc0(sizeof(ZdJsonbWriter));

	w->cxt = CurrentMemoryContext;
	return w;
}

/* Pad the buffer to a 4-byte boundary; the padding counts as data. */
static int
pad_to_int(StringInfo buf)
{
	int			pad = INTALIGN(buf->len) - buf->len;

	if (pad > 0)
	{
		enlargeStringInfo(buf, pad);
		memset(buf->data + buf->len, 0, pad);
		buf->len += pad;
	}
	return pad;
}

/* Room for n bytes at the end of the buffer; returns their offset. */
static int
reserve(StringInfo buf, int n)
{
	int			off = buf->len;

	enlargeStringInfo(buf, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return off;
}

static void
too_big(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("Zendesk JSON value is too large for jsonb"),
			 errdetail("jsonb holds at most %d bytes in one object or array.",
					   JENTRY_OFFLENMASK)));
}

static void
write_string(WriteState *ws, const char *s, int len, JEntry *je)
{
	int			outlen;
	char	   *out = zd_clean_string(ws->m, s, len, &outlen, ws->nuls);

	if (outlen > JENTRY_OFFLENMASK)
		too_big();
	appendBinaryStringInfo(ws->buf, out, outlen);
	*je = JENTRY_ISSTRING | outlen;
}

static void
write_numeric(WriteState *ws, Numeric num, JEntry *je)
{
	int			numlen = VARSIZE_ANY(num);
	int			pad = pad_to_int(ws->buf);

	appendBinaryStringInfo(ws->buf, (char *) num, numlen);
	*je = JENTRY_ISNUMERIC | (pad + numlen);
}

static void
write_scalar(WriteState *ws, struct json_object *v, JEntry *je)
{
	switch (json_object_get_type(v))
	{
		case json_type_null:
			*je = JENTRY_ISNULL;
			break;
		case json_type_boolean:
			*je = json_object_get_boolean(v) ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
			break;
		case json_type_int:
			write_numeric(ws, DatumGetNumeric(zd_json_int_numeric(v)), je);
			break;
		case json_type_double:
			{
				/* json-c keeps the parsed text: 12.50, 0.0, -1e3 stay exact */
				const char *txt = json_object_to_json_string_ext(v, ZD_JSON_TEXT_FLAGS);

				/*
				 * Decided by the text, not the double: 1e400 overflows a
				 * double but is a JSON number (jsonb keeps it as numeric);
				 * NaN/Infinity are json-c's extensions, stored as strings.
				 */
				const char *digits = (txt[0] == '-') ? txt + 1 : txt;

				if (!isdigit((unsigned char) digits[0]))
					write_string(ws, txt, (int) strlen(txt), je);
				else
					write_numeric(ws, DatumGetNumeric(zd_json_text_numeric(txt)), je);
				break;
			}
		case json_type_string:
			write_string(ws, json_object_get_string(v),
						 json_object_get_string_len(v), je);
			break;
		default:
			elog(ERROR, "unexpected json-c type %d", (int) json_object_get_type(v));
	}
}

/*
 * Store child i's JEntry: every JB_OFFSET_STRIDE'th holds the end offset
 * instead of the length, as convertJsonbArray/Object do.
 */
static void
store_jentry(StringInfo buf, int jentry_off, int i, JEntry je, int *totallen)
{
	*totallen += JBE_OFFLENFLD(je);
	if (*totallen > JENTRY_OFFLENMASK)
		too_big();
	if ((i % JB_OFFSET_STRIDE) == 0)
		je = (je & JENTRY_TYPEMASK) | *totallen | JENTRY_HAS_OFF;
	memcpy(buf->data + jentry_off + i * sizeof(JEntry), &je, sizeof(JEntry));
}

static void
write_array(WriteState *ws, struct json_object *v, JEntry *je, int level,
			bool scalar_wrapper)
{
	StringInfo	buf = ws->buf;
	int			base = buf->len;
	int			n = scalar_wrapper ? 1 : (int) json_object_array_length(v);
	uint32		header;
	int			jentries;
	int			totallen = 0;

	pad_to_int(buf);
	header = n | JB_FARRAY | (scalar_wrapper ? JB_FSCALAR : 0);
	appendBinaryStringInfo(buf, (char *) &header, sizeof(uint32));
	jentries = reserve(buf, sizeof(JEntry) * n);
	for (int i = 0; i < n; i++)
	{
		JEntry		child;
		struct json_object *e = scalar_wrapper ? v : json_object_array_get_idx(v, i);

		if (e == NULL)
			child = JENTRY_ISNULL;
		else
			write_value(ws, e, &child, level + 1);
		store_jentry(buf, jentries, i, child, &totallen);
	}
	totallen = buf->len - base;
	if (totallen > JENTRY_OFFLENMASK)
		too_big();
	*je = JENTRY_ISCONTAINER | totallen;
}

/* jsonb's key order: shorter first, then bytewise */
static int
key_cmp(const ZdKey *a, const ZdKey *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->s, b->s, a->len);
}

/*
 * Fill shape->order with the storage order of shape->keys: sorted, and of
 * equal keys only the last one (as jsonb keeps the last value).  Insertion
 * sort: objects are small, and it is stable, so "last" is well defined.
 */
static void
sort_shape(ZdShape *sh)
{
	int			n = 0;

	for (int i = 0; i < sh->nkeys; i++)
	{
		int			j = n;

		while (j > 0 && key_cmp(&sh->keys[sh->order[j - 1]], &sh->keys[i]) > 0)
		{
			sh->order[j] = sh->order[j - 1];
			j--;
		}
		if (j > 0 && key_cmp(&sh->keys[sh->order[j - 1]], &sh->keys[i]) == 0)
		{
			/* a repeated key: the later value replaces the earlier */
			memmove(&sh->order[j], &sh->order[j + 1], (n - j) * sizeof(int));
			sh->order[j - 1] = i;
			continue;
		}
		sh->order[j] = i;
		n++;
	}
	sh->nstored = n;
}

/*
 * The shape of an object whose raw keys are raw[0..n-1]: a remembered one,
 * or a new one (which replaces the oldest slot).
 */
static ZdShape *
find_shape(WriteState *ws, const char **raw, const int *rawlen, int n,
		   ZdShape *scratch)
{
	ZdJsonbWriter *w = ws->w;
	ZdShape    *sh;
	MemoryContext old;

	/* {} needs no order; an unused slot (nkeys 0) must never match it */
	if (n == 0)
		return scratch;

	if (n <= ZD_SHAPE_MAX_KEYS)
	{
		for (int s = 0; s < ZD_SHAPES; s++)
		{
			int			i;

			sh = &w->shapes[s];
			if (sh->nkeys != n)
				continue;
			for (i = 0; i < n; i++)
				if (sh->rawlen[i] != rawlen[i] ||
					memcmp(sh->raw[i], raw[i], rawlen[i]) != 0)
					break;
			if (i == n)
				return sh;
		}
	}

	/* not seen: clean the keys and sort them */
	if (n > ZD_SHAPE_MAX_KEYS)
		sh = scratch;			/* palloc'd in the caller's context */
	else
	{
		sh = &w->shapes[w->next_victim];
		w->next_victim = (w->next_victim + 1) % ZD_SHAPES;
		for (int i = 0; i < sh->nkeys; i++)
		{
			if (sh->keys[i].s != sh->raw[i])
				pfree(unconstify(char *, sh->keys[i].s));
			pfree(sh->raw[i]);
		}
		if (sh->nkeys > 0)
		{
			pfree(sh->raw);
			pfree(sh->rawlen);
			pfree(sh->keys);
			pfree(sh->order);
		}

		/*
		 * Unused until complete: a key that is not UTF-8 raises an ERROR
		 * below, and a caller that catches it may use this writer again.
		 */
		memset(sh, 0, sizeof(ZdShape));
	}
	old = MemoryContextSwitchTo(sh == scratch ? CurrentMemoryContext : w->cxt);
	sh->raw = palloc(sizeof(char *) * Max(n, 1));
	sh->rawlen = palloc(sizeof(int) * Max(n, 1));
	sh->keys = palloc(sizeof(ZdKey) * Max(n, 1));
	sh->order = palloc(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		int			outlen;
		char	   *out = zd_clean_string(ws->m, raw[i], rawlen[i], &outlen, ws->nuls);

		sh->raw[i] = pnstrdup(raw[i], rawlen[i]);
		sh->rawlen[i] = rawlen[i];
		sh->keys[i].s = (out == raw[i]) ? sh->raw[i] : pnstrdup(out, outlen);
		sh->keys[i].len = outlen;
		if (outlen > JENTRY_OFFLENMASK)
			too_big();
	}
	MemoryContextSwitchTo(old);
	sh->nkeys = n;
	sort_shape(sh);
	return sh;
}

static void
write_object(WriteState *ws, struct json_object *v, JEntry *je, int level)
{
	StringInfo	buf = ws->buf;
	int			base = buf->len;
	int			n = json_object_object_length(v);
	const char *rawbuf[64];
	int			rawlenbuf[64];
	struct json_object *valbuf[64];
	const char **raw = n <= 64 ? rawbuf : palloc(sizeof(char *) * n);
	int		   *rawlen = n <= 64 ? rawlenbuf : palloc(sizeof(int) * n);
	struct json_object **vals = n <= 64 ? valbuf : palloc(sizeof(void *) * n);
	ZdShape		scratch;
	ZdShape    *sh;
	int			orderbuf[64];
	int		   *order;
	int			nstored;
	uint32		header;
	int			jentries;
	int			totallen = 0;
	int			i = 0;
	struct json_object_iterator it = json_object_iter_begin(v);
	struct json_object_iterator itend = json_object_iter_end(v);

	while (!json_object_iter_equal(&it, &itend) && i < n)
	{
		/* json-c keys are C strings: a \u0000 in a key truncated it */
		raw[i] = json_object_iter_peek_name(&it);
		rawlen[i] = (int) strlen(raw[i]);
		vals[i] = json_object_iter_peek_value(&it);
		i++;
		json_object_iter_next(&it);
	}
	n = i;
	memset(&scratch, 0, sizeof(scratch));
	sh = find_shape(ws, raw, rawlen, n, &scratch);

	pad_to_int(buf);
	header = sh->nstored | JB_FOBJECT;
	appendBinaryStringInfo(buf, (char *) &header, sizeof(uint32));
	jentries = reserve(buf, sizeof(JEntry) * sh->nstored * 2);

	/* the keys, then the values, as convertJsonbObject stores them */
	for (i = 0; i < sh->nstored; i++)
	{
		const ZdKey *k = &sh->keys[sh->order[i]];

		appendBinaryStringInfo(buf, k->s, k->len);
		store_jentry(buf, jentries, i, JENTRY_ISSTRING | k->len, &totallen);
	}

	/*
	 * Writing a value can put new shapes in the cache and so evict (and
	 * free) this object's shape: the values go by a copy of its order.
	 */
	nstored = sh->nstored;
	order = nstored <= 64 ? orderbuf : palloc(sizeof(int) * nstored);
	if (nstored > 0)			/* {} may match an unused slot: order NULL */
		memcpy(order, sh->order, sizeof(int) * nstored);
	for (i = 0; i < nstored; i++)
	{
		JEntry		child;
		struct json_object *val = vals[order[i]];

		if (val == NULL)
			child = JENTRY_ISNULL;
		else
			write_value(ws, val, &child, level + 1);
		store_jentry(buf, jentries, i + nstored, child, &totallen);
	}
	if (order != orderbuf)
		pfree(order);
	if (vals != valbuf)
	{
		pfree(raw);
		pfree(rawlen);
		pfree(vals);
	}
	totallen = buf->len - base;
	if (totallen > JENTRY_OFFLENMASK)
		too_big();
	*je = JENTRY_ISCONTAINER | totallen;
}

static void
write_value(WriteState *ws, struct json_object *v, JEntry *je, int level)
{
	check_stack_depth();
	if (json_object_is_type(v, json_type_object))
		write_object(ws, v, je, level);
	else if (json_object_is_type(v, json_type_array))
		write_array(ws, v, je, level, false);
	else
		write_scalar(ws, v, je);
}

Datum
zd_jsonb_write(ZdJsonbWriter *w, struct json_object *v, ZdRowMapper *m,
			   int *nuls)
{
	StringInfoData buf;
	WriteState	ws;
	JEntry		je;

	ws.w = w;
	ws.m = m;
	ws.nuls = nuls;
	ws.buf = &buf;
	initStringInfo(&buf);
	reserve(&buf, VARHDRSZ);
	if (v == NULL)
		write_array(&ws, NULL, &je, 0, true);	/* never: callers skip NULL */
	else if (json_object_is_type(v, json_type_object))
		write_object(&ws, v, &je, 0);
	else if (json_object_is_type(v, json_type_array))
		write_array(&ws, v, &je, 0, false);
	else
		write_array(&ws, v, &je, 0, true);	/* a scalar is a 1-element raw
											 * scalar array */
	SET_VARSIZE(buf.data, buf.len);
	return PointerGetDatum(buf.data);
}
