/*-------------------------------------------------------------------------
 *
 * zd_fuzz.c
 *		  libFuzzer target for the response parser and the JSON-to-row
 *		  mapping of zendesk_fdw, run inside a real PostgreSQL backend.
 *
 * Built only by fuzz/build.sh, never into zendesk_fdw.so: a separate module
 * (zd_fuzz.so) made of this file plus src/page.c, src/row_map.c, src/jsonb_write.c and
 * src/resource.c compiled with -fsanitize=fuzzer-no-link,address,undefined.
 *
 * SELECT zd_fuzz_run(args text[], tables regclass[], log text) hands the
 * backend to LLVMFuzzerRunDriver: libFuzzer parses args like a command line
 * (corpus directory, -max_total_time=..., -artifact_prefix=...) and calls
 * zd_fuzz_one() for every input.  When the run is over libFuzzer calls
 * exit(0), which ends the backend through PostgreSQL's atexit hook (a clean
 * exit: the caller sees its connection close).  A crash, a sanitizer report
 * or an abort() below makes libFuzzer write the input as crash-<sha1> under
 * the artifact prefix and exit with a non-zero code.
 *
 * One input: byte 0 picks the resource (bits 0-1) and the Content-Type
 * (bits 2-3); the rest is the HTTP body.  The input goes through
 *
 *   zd_page_parse (which runs zd_json_parse_body)
 *   for each record: zd_record_id, zd_record_change_time,
 *                    zd_mapper_fill for the resource's foreign table and
 *                    (each in its own subtransaction, as they reject most
 *                    values) for tables of unusual column types named
 *                    after Zendesk keys; every non-null Datum
 *                    printed by its type's output function (a malformed
 *                    jsonb, numeric or array would fail or crash there),
 *                    zd_json_to_jsonb of the record
 *
 * inside a subtransaction that is always rolled back.  An ERROR is the
 * expected answer to bad input; an ERROR with SQLSTATE XX000 (an elog(),
 * "cannot happen") or XX001 is reported as a finding through abort().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include <json-c/json.h>

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "zendesk_fdw.h"

PG_MODULE_MAGIC;

/*
 * utils/builtins.h clashes with json-c (see row_map.c): declare the two
 * builtins used here.
 */
extern char *text_to_cstring(const text *t);
extern text *cstring_to_text(const char *s);

extern int	LLVMFuzzerRunDriver(int *argc, char ***argv,
								int (*cb) (const uint8_t *data, size_t size));

PGDLLEXPORT Datum zd_fuzz_run(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum zd_fuzz_one_sql(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum zd_fuzz_column_ddl(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(zd_fuzz_run);
PG_FUNCTION_INFO_V1(zd_fuzz_one_sql);
PG_FUNCTION_INFO_V1(zd_fuzz_column_ddl);

#define ZD_FUZZ_MAX_INPUT	(1024 * 1024)
#define ZD_FUZZ_MAX_TABLES	16	/* 4 resources + tables of unusual types */

typedef struct FuzzTable
{
	TupleDesc	tupdesc;
	ZdRowMapper *mapper;
	FmgrInfo   *out;			/* output function per attribute */
} FuzzTable;

static FuzzTable fuzz_tables[ZD_FUZZ_MAX_TABLES];
static int	fuzz_ntables = 0;
static MemoryContext fuzz_cxt = NULL;
static uint64 fuzz_inputs = 0;
static uint64 fuzz_errors = 0;
static char fuzz_last_error[512];	/* message of the last ERROR caught */
static bool fuzz_selftest = false;	/* --zd-selftest: see zd_fuzz_one */

#define ZD_SELFTEST_MAGIC "ZDFUZZ-SELFTEST"

static const char *const content_types[4] = {
	"application/json; charset=utf-8", "text/html", "", "text/plain"
};

/* mapper and output functions of one table (in TopMemoryContext) */
static void
fuzz_prepare_table(FuzzTable *ft, Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	TupleDesc	desc = CreateTupleDescCopy(RelationGetDescr(rel));
	char	  **keys = palloc0(sizeof(char *) * Max(desc->natts, 1));

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);

		if (att->attisdropped || strcmp(name, "synced_at") == 0)
			continue;
		keys[i] = pstrdup(strcmp(name, "data") == 0 ? ZD_KEY_WHOLE_RECORD : name);
	}
	ft->tupdesc = desc;
	ft->mapper = zd_mapper_create(desc, keys, RelationGetRelationName(rel));
	ft->out = palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			outfn;
		bool		varlena;

		if (att->attisdropped)
			continue;
		getTypeOutputInfo(att->atttypid, &outfn, &varlena);
		fmgr_info_cxt(outfn, &ft->out[i], TopMemoryContext);
	}
	MemoryContextSwitchTo(old);
	relation_close(rel, AccessShareLock);
}

static void
fuzz_map_record(FuzzTable *ft, struct json_object *rec)
{
	int			natts = ft->tupdesc->natts;
	Datum	   *values = palloc0(sizeof(Datum) * Max(natts, 1));
	bool	   *nulls = palloc0(sizeof(bool) * Max(natts, 1));

	zd_mapper_fill(ft->mapper, rec, values, nulls);
	for (int i = 0; i < natts; i++)
		if (!nulls[i] && !TupleDescAttr(ft->tupdesc, i)->attisdropped)
			(void) OutputFunctionCall(&ft->out[i], values[i]);
}

/* An ERROR caught on bad input must not be an internal one. */
static void
fuzz_check_error(ErrorData *edata)
{
	fuzz_errors++;
	snprintf(fuzz_last_error, sizeof(fuzz_last_error), "%s: %s",
			 unpack_sql_state(edata->sqlerrcode), edata->message);
	if (edata->sqlerrcode == ERRCODE_INTERNAL_ERROR ||
		edata->sqlerrcode == ERRCODE_DATA_CORRUPTED ||
		edata->sqlerrcode == ERRCODE_INDEX_CORRUPTED)
	{
		fprintf(stderr, "zd_fuzz: internal error (SQLSTATE %s) on bad input: %s\n",
				unpack_sql_state(edata->sqlerrcode), edata->message);
		abort();
	}
}

/* One record into a table of unusual types, in its own subtransaction. */
static void
fuzz_unusual(FuzzTable *ft, struct json_object *rec)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fuzz_map_record(ft, rec);
		MemoryContextSwitchTo(cxt);
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		fuzz_check_error(edata);
		fuzz_errors--;			/* expected: not the input's error */
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/*
 * jsonb_write.c lays jsonb out itself: it must be byte for byte what
 * PostgreSQL's jsonb_in makes of the same JSON text, or every later jsonb
 * operation on the stored value could go wrong.  A difference aborts, which
 * libFuzzer reports as a crash with the input.  Values jsonb_in refuses
 * (\u0000, NaN) or changes (a NUL replaced by U+FFFD) are not compared.
 */
static void
fuzz_check_jsonb_layout(struct json_object *rec, Datum jb)
{
	const char *txt = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
													 JSON_C_TO_STRING_NOSLASHESCAPE);
	Datum		ref;

	if (strstr(txt, "\\u0000") != NULL || strstr(txt, "NaN") != NULL ||
		strstr(txt, "Infinity") != NULL)
		return;
	ref = OidInputFunctionCall(F_JSONB_IN, unconstify(char *, txt), JSONBOID, -1);
	if (VARSIZE(DatumGetPointer(ref)) != VARSIZE(DatumGetPointer(jb)) ||
		memcmp(DatumGetPointer(ref), DatumGetPointer(jb), VARSIZE(DatumGetPointer(jb))) != 0)
	{
		fprintf(stderr, "zd_fuzz: jsonb written for %s differs from jsonb_in's\n", txt);
		abort();
	}
}

/* One input through the parser and the mappers; ERRORs propagate. */
static void
fuzz_process(const uint8_t *data, size_t size)
{
	ZdHttpResponse resp;
	ZdPage		page;
	const ZdResource *res;
	char	   *body;

	memset(&resp, 0, sizeof(resp));
	res = zd_resources[data[0] & 3];
	strlcpy(resp.content_type, content_types[(data[0] >> 2) & 3],
			sizeof(resp.content_type));
	resp.status = 200;
	resp.ratelimit_remaining = -1;
	resp.ratelimit_reset = -1;
	/* bodies are NUL-terminated (http.c guarantees it) */
	body = palloc(size);
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	resp.body = body;
	resp.body_len = size - 1;
	strlcpy(resp.effective_url, "http://fuzz.invalid/", sizeof(resp.effective_url));

	zd_page_parse(&page, res, &resp, "/fuzz");
	for (int i = 0; i < page.nrecords; i++)
	{
		struct json_object *rec = json_object_array_get_idx(page.records, i);
		int64		id;
		int64		ts;
		Datum		jb;

		(void) zd_record_id(rec, &id);
		(void) zd_record_change_time(res, rec, &ts);
		for (int t = 0; t < zd_nresources; t++)
			if (zd_resources[t] == res)
				fuzz_map_record(&fuzz_tables[t], rec);
		jb = zd_json_to_jsonb(rec);
		(void) OidOutputFunctionCall(F_JSONB_OUT, jb);
		fuzz_check_jsonb_layout(rec, jb);
	}

	/*
	 * The unusual types reject most real values (that is their point), so
	 * each record gets its own try: one refusal must not hide the others.
	 */
	for (int i = 0; i < page.nrecords; i++)
		for (int t = zd_nresources; t < fuzz_ntables; t++)
			fuzz_unusual(&fuzz_tables[t], json_object_array_get_idx(page.records, i));
}

static int
zd_fuzz_one(const uint8_t *data, size_t size)
{
	MemoryContext old;
	ResourceOwner owner = CurrentResourceOwner;

	if (size < 1 || size > ZD_FUZZ_MAX_INPUT)
		return -1;				/* not added to the corpus */
	fuzz_inputs++;

	/*
	 * The pipeline's own test (fuzz/run.sh, --zd-selftest): this input reads
	 * past a malloc'd buffer, and the run must report it as a crash.
	 */
	if (fuzz_selftest && size > strlen(ZD_SELFTEST_MAGIC) &&
		memcmp(data + 1, ZD_SELFTEST_MAGIC, strlen(ZD_SELFTEST_MAGIC)) == 0)
	{
		char	   *buf = malloc(8);
		volatile char c;

		memcpy(buf, "selftes", 8);
		c = buf[8 + (data[0] & 1)];	/* heap-buffer-overflow */
		free(buf);
		(void) c;
	}

	old = MemoryContextSwitchTo(fuzz_cxt);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(fuzz_cxt);
	PG_TRY();
	{
		fuzz_process(data, size);
		MemoryContextSwitchTo(fuzz_cxt);
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(fuzz_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		fuzz_check_error(edata);
	}
	PG_END_TRY();
	CurrentResourceOwner = owner;
	MemoryContextSwitchTo(old);
	MemoryContextReset(fuzz_cxt);
	return 0;
}

static void
fuzz_setup(ArrayType *tables)
{
	Datum	   *elems;
	bool	   *enulls;
	int			n;

	if (fuzz_ntables > 0)
		return;					/* set up once per backend */
	deconstruct_array(tables, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, &enulls, &n);
	if (n < 4 || n > ZD_FUZZ_MAX_TABLES)
		ereport(ERROR,
				(errmsg("zd_fuzz: expected 4 to %d tables (tickets, ticket_events, users, organizations, then tables of unusual types), got %d",
						ZD_FUZZ_MAX_TABLES, n)));
	for (int i = 0; i < n; i++)
		fuzz_prepare_table(&fuzz_tables[i], DatumGetObjectId(elems[i]));
	fuzz_ntables = n;
	if (fuzz_cxt == NULL)
		fuzz_cxt = AllocSetContextCreate(TopMemoryContext, "zd_fuzz input",
										 ALLOCSET_DEFAULT_SIZES);
}

/*
 * zd_fuzz_run(args text[], tables regclass[], log text): run libFuzzer
 * with args (argv[1..]); its output goes to the file log.  Does not return:
 * libFuzzer ends the process.
 */
Datum
zd_fuzz_run(PG_FUNCTION_ARGS)
{
	ArrayType  *args = PG_GETARG_ARRAYTYPE_P(0);
	char	   *logpath = text_to_cstring(PG_GETARG_TEXT_PP(2));
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	int			argc;
	char	  **argv;
	int			fd;

	fuzz_setup(PG_GETARG_ARRAYTYPE_P(1));
	deconstruct_array(args, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	argv = MemoryContextAllocZero(TopMemoryContext, sizeof(char *) * (n + 2));
	argv[0] = MemoryContextStrdup(TopMemoryContext, "zd_fuzz");
	argc = 1;
	for (int i = 0; i < n; i++)
	{
		char	   *a = text_to_cstring((text *) DatumGetPointer(elems[i]));

		if (strcmp(a, "--zd-selftest") == 0)
			fuzz_selftest = true;
		else
			argv[argc++] = MemoryContextStrdup(TopMemoryContext, a);
	}

	fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		ereport(ERROR, (errmsg("zd_fuzz: could not open %s: %m", logpath)));
	fflush(stderr);
	dup2(fd, 2);
	close(fd);

	PG_RETURN_INT32(LLVMFuzzerRunDriver(&argc, &argv, zd_fuzz_one));
}

/*
 * zd_fuzz_one_sql(input bytea, tables regclass[]): one input, as the fuzzer
 * runs it, without libFuzzer; returns NULL when it went through without an
 * ERROR, else "SQLSTATE: message" of the ERROR.
 */
Datum
zd_fuzz_one_sql(PG_FUNCTION_ARGS)
{
	bytea	   *input = PG_GETARG_BYTEA_PP(0);
	uint64		before;

	fuzz_setup(PG_GETARG_ARRAYTYPE_P(1));
	before = fuzz_errors;
	zd_fuzz_one((const uint8_t *) VARDATA_ANY(input), VARSIZE_ANY_EXHDR(input));
	if (fuzz_errors == before)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(fuzz_last_error));
}

/* zd_fuzz_column_ddl(resource text): the foreign table columns' DDL */
Datum
zd_fuzz_column_ddl(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const ZdResource *res = zd_resource_by_name(name);

	if (res == NULL)
		ereport(ERROR, (errmsg("zd_fuzz: unknown resource \"%s\"", name)));
	PG_RETURN_TEXT_P(cstring_to_text(zd_resource_column_ddl(res, true)));
}
