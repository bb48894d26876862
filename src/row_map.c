/*-------------------------------------------------------------------------
 *
 * row_map.c
 *		  Convert json-c records into Datums for any tuple descriptor.
 *
 * zd_mapper_create does every catalog lookup once (per scan or per sync
 * stream); zd_mapper_fill then runs for every record with only json-c
 * lookups and direct conversions.  jsonb is built straight from the json-c
 * tree, never through text.
 *
 * PostgreSQL text cannot hold NUL and jsonb rejects \u0000, so NUL bytes in
 * strings become U+FFFD (with a WARNING per record), and every string is
 * checked as UTF-8 and converted to the server encoding.
 *
 * Portions Copyright (c) 2026, zendesk_fdw developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include <json-c/json.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/miscnodes.h"
#endif

#include "zendesk_fdw.h"

/*
 * utils/builtins.h cannot be included next to json-c: fmgrprotos.h declares
 * a SQL function json_object() that clashes with json-c's json_object
 * typedef.  Declare the few builtins used here instead (same signatures in
 * PostgreSQL 13-17).
 */
extern char *format_type_with_typemod(Oid type_oid, int32 typemod);
extern Datum numeric_in(PG_FUNCTION_ARGS);
extern Datum timestamp_scale(PG_FUNCTION_ARGS);
extern Datum timestamptz_scale(PG_FUNCTION_ARGS);
#if PG_VERSION_NUM < 140000
extern Datum int8_numeric(PG_FUNCTION_ARGS);
#endif

#ifndef pg_attribute_noreturn
#define pg_attribute_noreturn() __attribute__((noreturn))
#endif

#define ZD_SNIPPET_BYTES 100
#define ZD_REPLACEMENT "\xEF\xBF\xBD"	/* UTF-8 of U+FFFD */
#define ZD_JSON_TEXT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ZC_INPUT: the type's input function on the value's text */
typedef enum ZdConvKind
{
	ZC_NULL, ZC_INT8, ZC_INT4, ZC_INT2, ZC_FLOAT8, ZC_FLOAT4, ZC_NUMERIC,
	ZC_BOOL, ZC_TEXT, ZC_TIMESTAMPTZ, ZC_TIMESTAMP, ZC_DATE, ZC_JSONB,
	ZC_JSON, ZC_ARRAY, ZC_INPUT
} ZdConvKind;

/* Built-in types converted directly; exact OIDs, so domains keep checks */
static const struct
{
	Oid			typid;
	ZdConvKind	kind;
}			zd_direct_types[] =
{
	{INT8OID, ZC_INT8}, {INT4OID, ZC_INT4}, {INT2OID, ZC_INT2},
	{FLOAT8OID, ZC_FLOAT8}, {FLOAT4OID, ZC_FLOAT4}, {NUMERICOID, ZC_NUMERIC},
	{BOOLOID, ZC_BOOL}, {TEXTOID, ZC_TEXT}, {VARCHAROID, ZC_TEXT},
	{TIMESTAMPTZOID, ZC_TIMESTAMPTZ}, {TIMESTAMPOID, ZC_TIMESTAMP},
	{DATEOID, ZC_DATE}, {JSONBOID, ZC_JSONB}, {JSONOID, ZC_JSON}
};

typedef struct ZdConv
{
	ZdConvKind	kind;
	Oid			typid;
	int32		typmod;
	char	   *typname;		/* for messages, e.g. "bigint" */
	FmgrInfo	infunc;			/* ZC_INPUT, and strings for other kinds */
	Oid			ioparam;
	/* ZC_ARRAY only */
	struct ZdConv *elem;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
} ZdConv;

typedef struct ZdMapCol
{
	char	   *key;			/* JSON key; NULL when kind is ZC_NULL */
	bool		whole;			/* ZD_KEY_WHOLE_RECORD */
	char	   *attname;
	ZdConv		conv;
} ZdMapCol;

struct ZdRowMapper
{
	char	   *relname;
	int			natts;
	ZdMapCol   *cols;
	bool		utf8db;			/* database encoding is UTF8 */
	ZdJsonbWriter *writer;		/* jsonb columns */

	/* state of the record being filled, for messages */
	struct json_object *record;
	int			curcol;			/* -1 outside a column */
	bool		reporting;		/* our own ERROR: skip the context line */
	int			nuls_whole;		/* NULs replaced in whole-record columns */
	int			nuls_cols;		/* NULs replaced in all other columns */
};

static Datum zd_convert(ZdRowMapper *m, ZdConv *cv, struct json_object *val,
						int elemidx, int *nuls);
static Datum zd_jsonb(ZdRowMapper *m, struct json_object *obj, int *nuls);

/* ---- messages ---- */

static char *
zd_value_snippet(struct json_object *val)
{
	size_t		len;
	const char *s = json_object_to_json_string_length(val, ZD_JSON_TEXT_FLAGS, &len);

	return zd_printable(s, len, ZD_SNIPPET_BYTES);
}

/* "record id 123" or "record without an id" */
static char *
zd_record_desc(struct json_object *record)
{
	int64		id;

	if (record != NULL && zd_record_id(record, &id))
		return psprintf("record id " INT64_FORMAT, id);
	return pstrdup("record without an id");
}

/* Context line for errors raised inside conversions (input functions). */
static void
zd_mapper_errcontext(void *arg)
{
	ZdRowMapper *m = (ZdRowMapper *) arg;

	if (m->reporting || m->curcol < 0)
		return;
	errcontext("converting Zendesk %s, column \"%s\" of \"%s\"",
			   zd_record_desc(m->record), m->cols[m->curcol].attname,
			   m->relname);
}

static void pg_attribute_noreturn()
zd_conv_error(ZdRowMapper *m, ZdConv *cv, struct json_object *val,
			  int elemidx, const char *detail)
{
	char	   *expected = cv->typname;

	if (elemidx >= 0)
		expected = psprintf("%s in array element %d", cv->typname, elemidx + 1);
	m->reporting = true;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("cannot convert Zendesk value for column \"%s\" of \"%s\" (%s): expected %s, got %s %s",
					m->cols[m->curcol].attname, m->relname,
					zd_record_desc(m->record), expected,
					zd_json_type_noun(val), zd_value_snippet(val)),
			 detail ? errdetail_internal("%s", detail) : 0));
	pg_unreachable();
}

static void pg_attribute_noreturn()
zd_bad_utf8(ZdRowMapper *m, const char *s, int len)
{
	bool		incol = (m != NULL && m->curcol >= 0);

	if (incol)
		m->reporting = true;
	ereport(ERROR,
			(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
			 incol ?
			 errmsg("Zendesk value for column \"%s\" of \"%s\" (%s) is not valid UTF-8",
					m->cols[m->curcol].attname, m->relname,
					zd_record_desc(m->record)) :
			 errmsg("Zendesk JSON value is not valid UTF-8"),
			 errdetail("The string (%d bytes, invalid bytes shown as '?'): %s",
					   len, zd_printable(s, len, ZD_SNIPPET_BYTES))));
	pg_unreachable();
}

/* ---- strings ---- */

/*
 * Make a json-c string (UTF-8, may hold NULs) fit for the server: NUL ->
 * U+FFFD (counted in *nuls), verified as UTF-8, converted to the server
 * encoding.  May return s itself (json-c strings are NUL-terminated).
 */
char *
zd_clean_string(ZdRowMapper *m, const char *s, int len, int *outlen, int *nuls)
{
	const char *nul = (len > 0) ? memchr(s, '\0', len) : NULL;
	char	   *res;

	if (nul != NULL)
	{
		StringInfoData buf;
		const char *p = s;
		const char *e = s + len;

		initStringInfo(&buf);
		do
		{
			appendBinaryStringInfo(&buf, p, nul - p);
			appendBinaryStringInfo(&buf, ZD_REPLACEMENT, 3);
			(*nuls)++;
			p = nul + 1;
		} while (p < e && (nul = memchr(p, '\0', e - p)) != NULL);
		appendBinaryStringInfo(&buf, p, e - p);
		s = buf.data;
		len = buf.len;
	}

	/*
	 * Verify first for a message naming the column; in a UTF8 database that
	 * is all pg_any_to_server would do, so skip it there.
	 */
	if (!pg_verify_mbstr(PG_UTF8, s, len, true))
		zd_bad_utf8(m, s, len);
	if (m ? m->utf8db : GetDatabaseEncoding() == PG_UTF8)
	{
		*outlen = len;
		return unconstify(char *, s);
	}
	res = pg_any_to_server(s, len, PG_UTF8);
	*outlen = (res == s) ? len : (int) strlen(res);
	return res;
}

/* text datum (cstring_to_text_with_len lives in builtins.h, see above) */
static text *
zd_make_text(const char *s, int len)
{
	text	   *t = (text *) palloc(len + VARHDRSZ);

	SET_VARSIZE(t, len + VARHDRSZ);
	memcpy(VARDATA(t), s, len);
	return t;
}

/* The value's text: a string's content, else its JSON text; cleaned. */
static char *
zd_value_text(ZdRowMapper *m, struct json_object *val, int *outlen, int *nuls)
{
	const char *s;
	size_t		len;

	if (json_object_is_type(val, json_type_string))
		return zd_clean_string(m, json_object_get_string(val),
							   json_object_get_string_len(val), outlen, nuls);
	s = json_object_to_json_string_length(val, ZD_JSON_TEXT_FLAGS, &len);
	return zd_clean_string(m, s, (int) len, outlen, nuls);
}

/* ---- Scalars ---- */

/* true (and *big set) when a json-c int holds a uint64 above INT64_MAX */
static bool
zd_json_uint64_big(struct json_object *v, uint64 *big)
{
	if (json_object_get_int64(v) != PG_INT64_MAX)
		return false;
	*big = json_object_get_uint64(v);
	return *big > (uint64) PG_INT64_MAX;
}

/* A string holding only [+-]digits, as Zendesk child events send some ids */
static bool
zd_parse_int64_str(const char *s, int len, int64 *out, bool *range)
{
	const char *d = (len > 0 && (*s == '-' || *s == '+')) ? s + 1 : s;
	char	   *end;

	/* strtol would skip leading spaces and stop at an embedded NUL */
	if (d >= s + len || *d < '0' || *d > '9')
		return false;
	errno = 0;
	*out = (int64) strtoll(s, &end, 10);	/* long long: 64-bit on all PG platforms */
	*range = (errno == ERANGE);
	return end == s + len && !*range;
}

/* JSON integer, integral number, or integer string -> int64 */
static bool
zd_json_int64(struct json_object *v, int64 *out, bool *range)
{
	uint64		big;

	*range = false;
	if (json_object_is_type(v, json_type_int))
	{
		/*
		 * json-c saturates integers beyond 64 bits to INT64_MIN or
		 * UINT64_MAX without telling: treat those values as out of range,
		 * so a too-large id never becomes another record's id.
		 */
		*range = zd_json_uint64_big(v, &big);
		*out = json_object_get_int64(v);
		if (*out == PG_INT64_MIN)
			*range = true;
		return !*range;
	}
	if (json_object_is_type(v, json_type_double))
	{
		/* 2.0 or 1e3 are fine, 1.5 is not */
		double		d = json_object_get_double(v);

		if (!isfinite(d) || d != floor(d))
			return false;
		*range = (d < -9223372036854775808.0 || d >= 9223372036854775808.0);
		*out = *range ? 0 : (int64) d;
		return !*range;
	}
	if (json_object_is_type(v, json_type_string))
		return zd_parse_int64_str(json_object_get_string(v),
								  json_object_get_string_len(v), out, range);
	return false;
}

static Numeric
zd_int64_numeric(int64 v)
{
#if PG_VERSION_NUM >= 140000
	return int64_to_numeric(v);
#else
	return DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(v)));
#endif
}

/* numeric from text known to be a valid JSON number */
static Numeric
zd_text_numeric(const char *s)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/* Run the type input function; on PG 16+ soft errors get our message. */
static Datum
zd_input(ZdRowMapper *m, ZdConv *cv, char *str, struct json_object *val,
		 int elemidx)
{
#if PG_VERSION_NUM >= 160000
	ErrorSaveContext escontext = {T_ErrorSaveContext};
	Datum		result;

	escontext.details_wanted = true;
	if (!InputFunctionCallSafe(&cv->infunc, str, cv->ioparam, cv->typmod,
							   (Node *) &escontext, &result))
		zd_conv_error(m, cv, val, elemidx,
					  escontext.error_data ? escontext.error_data->message : NULL);
	return result;
#else
	return InputFunctionCall(&cv->infunc, str, cv->ioparam, cv->typmod);
#endif
}

/* Seconds (and micros) since 1970 from an epoch integer or ISO string */
static bool
zd_json_epoch(struct json_object *v, int64 *secs, int32 *usecs)
{
	bool		ok;
	bool		range;

	*usecs = 0;
	if (json_object_is_type(v, json_type_int))
		return zd_json_int64(v, secs, &range);
	if (json_object_is_type(v, json_type_string))
	{
		const char *s = json_object_get_string(v);

		if ((int) strlen(s) != json_object_get_string_len(v))
			return false;		/* embedded NUL */
		*secs = zd_parse_iso_timestamp_epoch(s, &ok);
		if (!ok)
			return false;
		/* the parser checked the shape: a fraction starts at s[19] */
		if (s[16] == ':' && (s[19] == '.' || s[19] == ','))
		{
			const char *p = s + 20;
			int			n;

			for (n = 0; n < 6; n++)	/* 6 digits, zero-padded */
				*usecs = *usecs * 10 + ((*p >= '0' && *p <= '9') ? *p++ - '0' : 0);
		}
		return true;
	}
	return false;
}

static bool
zd_epoch_to_timestamp(int64 secs, int32 usecs, int64 *ts)
{
	const int64 shift = (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
		SECS_PER_DAY * USECS_PER_SEC;
	int64		r;

	if (pg_mul_s64_overflow(secs, USECS_PER_SEC, &r) ||
		pg_add_s64_overflow(r, usecs, &r) ||
		pg_sub_s64_overflow(r, shift, &r))
		return false;
	*ts = r;
	return IS_VALID_TIMESTAMP(r);
}

static Datum
zd_convert_time(ZdRowMapper *m, ZdConv *cv, struct json_object *val,
				int elemidx, int *nuls)
{
	int64		secs;
	int32		usecs;
	int64		ts;

	if (!zd_json_epoch(val, &secs, &usecs))
	{
		int			len;

		/* other spellings ("2024-02-07", "... +0000") via the input function */
		if (json_object_is_type(val, json_type_string))
			return zd_input(m, cv, zd_value_text(m, val, &len, nuls), val, elemidx);
		zd_conv_error(m, cv, val, elemidx, NULL);
	}

	if (cv->kind == ZC_DATE)
	{
		int64		days = secs / SECS_PER_DAY - (secs % SECS_PER_DAY < 0 ? 1 : 0);

		days -= POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE;
		if (days < PG_INT32_MIN || days > PG_INT32_MAX || !IS_VALID_DATE((int32) days))
			zd_conv_error(m, cv, val, elemidx, "date out of range");
		return DateADTGetDatum((DateADT) days);
	}

	/* timestamp without time zone gets the UTC wall-clock time */
	if (!zd_epoch_to_timestamp(secs, usecs, &ts))
		zd_conv_error(m, cv, val, elemidx, "timestamp out of range");
	if (cv->typmod >= 0)
		return DirectFunctionCall2(cv->kind == ZC_TIMESTAMPTZ ? timestamptz_scale : timestamp_scale,
								   Int64GetDatum(ts), Int32GetDatum(cv->typmod));
	return cv->kind == ZC_TIMESTAMPTZ ? TimestampTzGetDatum(ts) : TimestampGetDatum(ts);
}

static Datum
zd_convert_array(ZdRowMapper *m, ZdConv *cv, struct json_object *val, int *nuls)
{
	ZdConv	   *ecv = cv->elem;
	size_t		n;
	size_t		i;
	Datum	   *elems;
	bool	   *enulls;
	int			dims[1];
	int			lbs[1];

	if (!json_object_is_type(val, json_type_array))
		zd_conv_error(m, cv, val, -1, NULL);
	n = json_object_array_length(val);
	if (n == 0)
		return PointerGetDatum(construct_empty_array(ecv->typid));

	elems = palloc(n * sizeof(Datum));
	enulls = palloc(n * sizeof(bool));
	for (i = 0; i < n; i++)
	{
		struct json_object *e = json_object_array_get_idx(val, i);

		enulls[i] = (e == NULL);
		elems[i] = e ? zd_convert(m, ecv, e, (int) i, nuls) : (Datum) 0;
	}
	dims[0] = (int) n;
	lbs[0] = 1;
	return PointerGetDatum(construct_md_array(elems, enulls, 1, dims, lbs,
											  ecv->typid, cv->elmlen,
											  cv->elmbyval, cv->elmalign));
}

/*
 * One non-null JSON value -> Datum of cv's type.  elemidx >= 0 when
 * converting an array element (for messages).
 */
static Datum
zd_convert(ZdRowMapper *m, ZdConv *cv, struct json_object *val, int elemidx,
		   int *nuls)
{
	int64		i64;
	bool		range;
	int			len;
	char	   *s;

	switch (cv->kind)
	{
		case ZC_INT8:
		case ZC_INT4:
		case ZC_INT2:
			if (!zd_json_int64(val, &i64, &range))
				zd_conv_error(m, cv, val, elemidx,
							  range ? "value out of range for type bigint" : NULL);
			if (cv->kind == ZC_INT8)
				return Int64GetDatum(i64);
			if (cv->kind == ZC_INT4)
			{
				if (i64 < PG_INT32_MIN || i64 > PG_INT32_MAX)
					zd_conv_error(m, cv, val, elemidx, "value out of range for type integer");
				return Int32GetDatum((int32) i64);
			}
			if (i64 < PG_INT16_MIN || i64 > PG_INT16_MAX)
				zd_conv_error(m, cv, val, elemidx, "value out of range for type smallint");
			return Int16GetDatum((int16) i64);

		case ZC_FLOAT8:
		case ZC_FLOAT4:
			{
				double		d;
				uint64		big;

				if (json_object_is_type(val, json_type_string))
					return zd_input(m, cv, zd_value_text(m, val, &len, nuls), val, elemidx);
				if (json_object_is_type(val, json_type_int))
					d = zd_json_uint64_big(val, &big) ? (double) big :
						(double) json_object_get_int64(val);
				else if (json_object_is_type(val, json_type_double))
					d = json_object_get_double(val);
				else
					zd_conv_error(m, cv, val, elemidx, NULL);
				if (cv->kind == ZC_FLOAT8)
					return Float8GetDatum(d);
				/* same checks as the float8 -> float4 cast */
				if ((isinf((float4) d) && !isinf(d)) || ((float4) d == 0.0f && d != 0.0))
					zd_conv_error(m, cv, val, elemidx, "value out of range for type real");
				return Float4GetDatum((float4) d);
			}

		case ZC_NUMERIC:
			if (json_object_is_type(val, json_type_int))
			{
				uint64		big;

				if (cv->typmod < 0 && !zd_json_uint64_big(val, &big))
					return NumericGetDatum(zd_int64_numeric(json_object_get_int64(val)));
			}
			else if (!json_object_is_type(val, json_type_double) &&
					 !json_object_is_type(val, json_type_string))
				zd_conv_error(m, cv, val, elemidx, NULL);
			/* numbers keep json-c's original text, so "12.50" stays 12.50 */
			return zd_input(m, cv, zd_value_text(m, val, &len, nuls), val, elemidx);

		case ZC_BOOL:
			if (json_object_is_type(val, json_type_boolean))
				return BoolGetDatum(json_object_get_boolean(val) != 0);
			if (json_object_is_type(val, json_type_string))
			{
				/* compare with the length: json-c strings may hold NULs */
				s = unconstify(char *, json_object_get_string(val));
				len = json_object_get_string_len(val);
				if (len == 4 && memcmp(s, "true", 4) == 0)
					return BoolGetDatum(true);
				if (len == 5 && memcmp(s, "false", 5) == 0)
					return BoolGetDatum(false);
			}
			zd_conv_error(m, cv, val, elemidx, NULL);

		case ZC_TEXT:
		case ZC_JSON:
			/* json: json-c's serialization is valid JSON text */
			if (cv->kind == ZC_JSON)
			{
				size_t		jlen;
				const char *js = json_object_to_json_string_length(val, ZD_JSON_TEXT_FLAGS, &jlen);

				s = zd_clean_string(m, js, (int) jlen, &len, nuls);
			}
			else
				s = zd_value_text(m, val, &len, nuls);
			return PointerGetDatum(zd_make_text(s, len));

		case ZC_TIMESTAMPTZ:
		case ZC_TIMESTAMP:
		case ZC_DATE:
			return zd_convert_time(m, cv, val, elemidx, nuls);

		case ZC_JSONB:
			return zd_jsonb(m, val, nuls);

		case ZC_ARRAY:
			return zd_convert_array(m, cv, val, nuls);

		case ZC_INPUT:
			return zd_input(m, cv, zd_value_text(m, val, &len, nuls), val, elemidx);

		case ZC_NULL:
			break;
	}
	elog(ERROR, "unexpected conversion kind %d", (int) cv->kind);
	return (Datum) 0;			/* keep compiler quiet */
}

/* ---- jsonb: written by jsonb_write.c ---- */

Datum
zd_json_int_numeric(struct json_object *v)
{
	uint64		big;

	if (zd_json_uint64_big(v, &big))
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), UINT64_FORMAT, big);
		return NumericGetDatum(zd_text_numeric(buf));
	}
	return NumericGetDatum(zd_int64_numeric(json_object_get_int64(v)));
}

Datum
zd_json_text_numeric(const char *s)
{
	return NumericGetDatum(zd_text_numeric(s));
}

static Datum
zd_jsonb(ZdRowMapper *m, struct json_object *obj, int *nuls)
{
	return zd_jsonb_write(m->writer, obj, m, nuls);
}

Datum
zd_json_to_jsonb(struct json_object *obj)
{
	int			nuls = 0;
	Datum		result = zd_jsonb_write(zd_jsonb_writer_create(), obj, NULL, &nuls);

	if (nuls > 0)
		ereport(WARNING,
				(errmsg("Zendesk JSON value contained %d NUL character(s) (\\u0000); replaced with U+FFFD",
						nuls)));
	return result;
}

/* ---- The mapper ---- */

static void
zd_conv_init(ZdConv *cv, Oid typid, int32 typmod, MemoryContext cxt,
			 bool allow_array)
{
	Oid			infunc;
	Oid			elemtype;
	int			i;

	cv->typid = typid;
	cv->typmod = typmod;
	cv->typname = format_type_with_typemod(typid, typmod);
	getTypeInputInfo(typid, &infunc, &cv->ioparam);
	fmgr_info_cxt(infunc, &cv->infunc, cxt);

	cv->kind = ZC_INPUT;		/* bpchar, name, uuid, enums, domains, ... */
	for (i = 0; i < lengthof(zd_direct_types); i++)
		if (zd_direct_types[i].typid == typid)
			cv->kind = zd_direct_types[i].kind;
	/* varchar(n) needs varcharin's length check */
	if (typid == VARCHAROID && typmod >= 0)
		cv->kind = ZC_INPUT;

	elemtype = allow_array ? get_element_type(typid) : InvalidOid;
	if (cv->kind == ZC_INPUT && OidIsValid(elemtype))
	{
		cv->kind = ZC_ARRAY;
		cv->elem = palloc0(sizeof(ZdConv));
		/* an array column's typmod applies to its elements */
		zd_conv_init(cv->elem, elemtype, typmod, cxt, false);
		get_typlenbyvalalign(elemtype, &cv->elmlen, &cv->elmbyval,
							 &cv->elmalign);
	}
}

ZdRowMapper *
zd_mapper_create(TupleDesc tupdesc, char **keys, const char *relname)
{
	ZdRowMapper *m = palloc0(sizeof(ZdRowMapper));
	int			i;

	m->relname = pstrdup(relname ? relname : "?");
	m->natts = tupdesc->natts;
	m->cols = palloc0(sizeof(ZdMapCol) * Max(m->natts, 1));
	m->utf8db = (GetDatabaseEncoding() == PG_UTF8);
	m->curcol = -1;
	m->writer = zd_jsonb_writer_create();

	for (i = 0; i < m->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		ZdMapCol   *col = &m->cols[i];

		col->attname = pstrdup(NameStr(att->attname));
		if (att->attisdropped || keys == NULL || keys[i] == NULL)
		{
			col->conv.kind = ZC_NULL;
			continue;
		}
		col->key = pstrdup(keys[i]);
		col->whole = (strcmp(keys[i], ZD_KEY_WHOLE_RECORD) == 0);
		zd_conv_init(&col->conv, att->atttypid, att->atttypmod,
					 CurrentMemoryContext, true);
	}
	return m;
}

void
zd_mapper_fill(ZdRowMapper *mapper, struct json_object *record,
			   Datum *values, bool *nulls)
{
	ZdRowMapper *m = mapper;
	ErrorContextCallback errcb;
	int			nuls;
	int			i;

	if (!json_object_is_type(record, json_type_object))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Zendesk record for \"%s\" is a JSON %s, expected an object",
						m->relname, zd_json_type_noun(record))));

	m->record = record;
	m->reporting = false;
	m->nuls_whole = 0;
	m->nuls_cols = 0;
	errcb.callback = zd_mapper_errcontext;
	errcb.arg = m;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	for (i = 0; i < m->natts; i++)
	{
		ZdMapCol   *col = &m->cols[i];
		struct json_object *val;

		values[i] = (Datum) 0;
		nulls[i] = true;
		if (col->conv.kind == ZC_NULL)
			continue;
		if (col->whole)
			val = record;
		else if (!json_object_object_get_ex(record, col->key, &val) || val == NULL)
			continue;			/* absent or JSON null */
		m->curcol = i;
		values[i] = zd_convert(m, &col->conv, val, -1,
							   col->whole ? &m->nuls_whole : &m->nuls_cols);
		nulls[i] = false;
	}
	m->curcol = -1;
	error_context_stack = errcb.previous;

	/*
	 * The whole-record column sees every NUL once; the other columns see
	 * disjoint keys.  The larger count is the record's count.
	 */
	nuls = Max(m->nuls_whole, m->nuls_cols);
	if (nuls > 0)
		ereport(WARNING,
				(errmsg("Zendesk %s of \"%s\" contained %d NUL character(s) (\\u0000); replaced with U+FFFD",
						zd_record_desc(record), m->relname, nuls)));
}

bool
zd_record_id(struct json_object *record, int64 *id)
{
	struct json_object *v;
	bool		range;

	if (!json_object_object_get_ex(record, "id", &v) || v == NULL)
		return false;
	if (!json_object_is_type(v, json_type_int) &&
		!json_object_is_type(v, json_type_string))
		return false;
	return zd_json_int64(v, id, &range);
}

bool
zd_record_change_time(const ZdResource *res, struct json_object *record,
					  int64 *epoch)
{
	struct json_object *v;
	int32		usecs;

	if (res->change_time_key == NULL ||
		!json_object_object_get_ex(record, res->change_time_key, &v) || v == NULL)
		return false;

	/* accept either spelling whatever change_time_is_epoch says */
	if (res->change_time_is_epoch && json_object_is_type(v, json_type_string))
	{
		bool		range;

		if (zd_parse_int64_str(json_object_get_string(v),
							   json_object_get_string_len(v), epoch, &range))
			return true;
	}
	return zd_json_epoch(v, epoch, &usecs);
}
