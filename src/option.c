/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Validation of zendesk_fdw options, and resolution of the options
 *		  that apply to one server and user.
 *
 * Every option is described once in zd_options[]: where it may appear, what
 * kind of value it takes and its bounds.  The validator rejects bad values at
 * CREATE/ALTER time so that queries never fail on configuration mistakes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_attribute.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "zendesk_fdw.h"

typedef enum ZdOptionKind
{
	ZD_OPT_SUBDOMAIN,
	ZD_OPT_URL,
	ZD_OPT_INT,					/* integer within [min, max] */
	ZD_OPT_TIMESTAMP,			/* a timestamptz literal */
	ZD_OPT_IDENTIFIER,			/* a schema name */
	ZD_OPT_EMAIL,
	ZD_OPT_SECRET,				/* a credential; only in user mappings */
	ZD_OPT_RESOURCE,
	ZD_OPT_STRING
} ZdOptionKind;

typedef struct ZdOption
{
	const char *name;
	Oid			context;		/* catalog where it may appear */
	ZdOptionKind kind;
	int64		min;
	int64		max;
} ZdOption;

static const ZdOption zd_options[] = {
	/* server */
	{"subdomain", ForeignServerRelationId, ZD_OPT_SUBDOMAIN, 0, 0},
	{"url", ForeignServerRelationId, ZD_OPT_URL, 0, 0},
	{"connect_timeout", ForeignServerRelationId, ZD_OPT_INT, 1, 600},
	{"request_timeout", ForeignServerRelationId, ZD_OPT_INT, 1, 3600},
	{"page_size", ForeignServerRelationId, ZD_OPT_INT, 1, 1000},
	{"max_retries", ForeignServerRelationId, ZD_OPT_INT, 0, 20},
	{"max_response_size", ForeignServerRelationId, ZD_OPT_INT, 1024, INT64CONST(1024) * 1024 * 1024},
	{"start_date", ForeignServerRelationId, ZD_OPT_TIMESTAMP, 0, 0},
	{"sync_schema", ForeignServerRelationId, ZD_OPT_IDENTIFIER, 0, 0},
	/* user mapping */
	{"email", UserMappingRelationId, ZD_OPT_EMAIL, 0, 0},
	{"api_token", UserMappingRelationId, ZD_OPT_SECRET, 0, 0},
	{"oauth_token", UserMappingRelationId, ZD_OPT_SECRET, 0, 0},
	/* foreign table */
	{"resource", ForeignTableRelationId, ZD_OPT_RESOURCE, 0, 0},
	{"rows_estimate", ForeignTableRelationId, ZD_OPT_INT, 1, INT64CONST(1000000000000)},
	/* column */
	{"key", AttributeRelationId, ZD_OPT_STRING, 0, 0},
};

/* Names that look like credentials, refused outside user mappings. */
static const char *const credential_like[] = {
	"email", "api_token", "oauth_token", "token", "password", "user",
	"username", "secret", "api_key", "apikey"
};

PG_FUNCTION_INFO_V1(zendesk_fdw_validator);

static char *option_value(List *options, const char *name);

static const char *
context_name(Oid context)
{
	switch (context)
	{
		case ForeignDataWrapperRelationId:
			return "foreign-data wrapper";
		case ForeignServerRelationId:
			return "server";
		case UserMappingRelationId:
			return "user mapping";
		case ForeignTableRelationId:
			return "foreign table";
		case AttributeRelationId:
			return "column";
	}
	return "object";
}

static char *
valid_options_list(Oid context)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < (int) lengthof(zd_options); i++)
		if (zd_options[i].context == context)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
							 zd_options[i].name);
	return buf.data;
}

static bool
is_credential_like(const char *name)
{
	for (int i = 0; i < (int) lengthof(credential_like); i++)
		if (pg_strcasecmp(name, credential_like[i]) == 0)
			return true;
	return false;
}

/* A DNS label: letters, digits and inner hyphens, 1..63 characters. */
static bool
is_dns_label(const char *s)
{
	size_t		len = strlen(s);

	if (len < 1 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char) s[i]) && s[i] != '-')
			return false;
	return true;
}

/*
 * http(s)://host[:port][/path], no userinfo, query or fragment.  Returns
 * NULL when valid, else the reason.
 */
static const char *
url_problem(const char *url)
{
	const char *rest;
	const char *slash;

	if (pg_strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else if (pg_strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else
		return "only http:// and https:// URLs are supported";
	slash = strchr(rest, '/');
	if ((slash ? slash - rest : (long) strlen(rest)) == 0)
		return "the URL has no host";
	if (memchr(rest, '@', slash ? slash - rest : strlen(rest)))
		return "credentials in the URL are not allowed; use a user mapping";
	if (strpbrk(url, "?#"))
		return "the URL may not have a query or fragment";
	for (const char *p = url; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == '\\')
			return "the URL contains spaces or control characters";
	return NULL;
}

static int64
parse_int_option(const ZdOption *opt, const char *value)
{
	char	   *end;
	int64		v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < opt->min || v > opt->max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
				 errhint("Use an integer from " INT64_FORMAT " to " INT64_FORMAT ".",
						 opt->min, opt->max)));
	return v;
}

static int64
parse_timestamp_option(const char *name, const char *value)
{
	TimestampTz ts;

	/* timestamptz_in reports malformed input itself */
	ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												 CStringGetDatum(value),
												 ObjectIdGetDatum(InvalidOid),
												 Int32GetDatum(-1)));
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
				 errhint("Use a finite timestamp such as '2024-01-01 00:00:00+00'.")));
	/* to Unix epoch seconds */
	return (int64) (ts / USECS_PER_SEC) +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

static void
validate_value(const ZdOption *opt, const char *value)
{
	const char *problem;

	switch (opt->kind)
	{
		case ZD_OPT_SUBDOMAIN:
			if (!is_dns_label(value))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"subdomain\": \"%s\"", value),
						 errdetail("A subdomain is one DNS label: letters, digits and inner hyphens, at most 63 characters."),
						 errhint("For https://acme.zendesk.com use subdomain 'acme'.")));
			break;
		case ZD_OPT_URL:
			if (!superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a superuser may set option \"url\""),
						 errhint("Use option \"subdomain\" to reach https://<subdomain>.zendesk.com.")));
			if ((problem = url_problem(value)) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"url\": %s", problem)));
			break;
		case ZD_OPT_INT:
			(void) parse_int_option(opt, value);
			break;
		case ZD_OPT_TIMESTAMP:
			(void) parse_timestamp_option(opt->name, value);
			break;
		case ZD_OPT_IDENTIFIER:
			if (value[0] == '\0' || strlen(value) >= NAMEDATALEN)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
						 errhint("Use a schema name of 1 to %d bytes.", NAMEDATALEN - 1)));
			break;
		case ZD_OPT_EMAIL:
			if (strchr(value, '@') == NULL || strpbrk(value, " \t\r\n:") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"email\""),
						 errhint("Use the e-mail address of the Zendesk user the API token belongs to.")));
			break;
		case ZD_OPT_SECRET:
			/* never echo the value */
			if (value[0] == '\0' || strpbrk(value, " \t\r\n") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"%s\"", opt->name),
						 errdetail("The value is empty or contains white space.")));
			break;
		case ZD_OPT_RESOURCE:
			if (zd_resource_by_name(value) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"resource\": \"%s\"", value),
						 errhint("Valid resources are: %s.", zd_resource_names_list())));
			break;
		case ZD_OPT_STRING:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" may not be empty", opt->name)));
			break;
	}
}

/*
 * The validator: each option known for this catalog, each value valid, and
 * the combinations that only make sense together.
 */
Datum
zendesk_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	bool		has_subdomain = false,
				has_url = false,
				has_email = false,
				has_api_token = false,
				has_oauth = false,
				has_resource = false;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const ZdOption *opt = NULL;
		char	   *value = defGetString(def);

		for (int i = 0; i < (int) lengthof(zd_options); i++)
			if (zd_options[i].context == catalog &&
				strcmp(zd_options[i].name, def->defname) == 0)
				opt = &zd_options[i];

		if (opt == NULL)
		{
			if (catalog != UserMappingRelationId && is_credential_like(def->defname))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("option \"%s\" is not allowed on a %s",
								def->defname, context_name(catalog)),
						 errhint("Credentials belong in a user mapping: CREATE USER MAPPING FOR CURRENT_USER SERVER ... OPTIONS (email '...', api_token '...').")));
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for a zendesk_fdw %s",
							def->defname, context_name(catalog)),
					 valid_options_list(catalog)[0] != '\0' ?
					 errhint("Valid options in this context are: %s.",
							 valid_options_list(catalog)) :
					 errhint("There are no valid options in this context.")));
		}
		validate_value(opt, value);

		has_subdomain |= strcmp(opt->name, "subdomain") == 0;
		has_url |= strcmp(opt->name, "url") == 0;
		has_email |= strcmp(opt->name, "email") == 0;
		has_api_token |= strcmp(opt->name, "api_token") == 0;
		has_oauth |= strcmp(opt->name, "oauth_token") == 0;
		has_resource |= strcmp(opt->name, "resource") == 0;
	}

	if (catalog == ForeignServerRelationId && has_subdomain == has_url)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg(has_url ? "options \"subdomain\" and \"url\" cannot be used together"
						: "a zendesk_fdw server needs option \"subdomain\" or \"url\""),
				 errhint("For https://acme.zendesk.com use OPTIONS (subdomain 'acme').")));

	if (catalog == UserMappingRelationId)
	{
		if (has_oauth && (has_email || has_api_token))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("use either \"oauth_token\" or \"email\" with \"api_token\", not both")));
		if (has_email != has_api_token)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("options \"email\" and \"api_token\" must be given together"),
					 errhint("Zendesk API tokens authenticate as <email>/token.")));
	}

	if (catalog == ForeignTableRelationId && !has_resource)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a zendesk_fdw foreign table needs option \"resource\""),
				 errhint("Valid resources are: %s. IMPORT FOREIGN SCHEMA zendesk creates the tables for you.",
						 zd_resource_names_list())));

	PG_RETURN_VOID();
}

static const ZdOption *
find_option(const char *name)
{
	for (int i = 0; i < (int) lengthof(zd_options); i++)
		if (strcmp(zd_options[i].name, name) == 0)
			return &zd_options[i];
	return NULL;
}

/*
 * Resolve the options for a server and user.  Credentials are only read
 * when needed, so EXPLAIN without ANALYZE works without a user mapping.
 */
ZdServerOptions *
zd_get_server_options(Oid serverid, Oid userid, bool need_credentials)
{
	ForeignServer *server = GetForeignServer(serverid);
	ZdServerOptions *o = palloc0(sizeof(ZdServerOptions));
	ListCell   *lc;

	o->connect_timeout_ms = ZD_DEFAULT_CONNECT_TIMEOUT_MS;
	o->request_timeout_ms = ZD_DEFAULT_REQUEST_TIMEOUT_MS;
	o->page_size = ZD_DEFAULT_PAGE_SIZE;
	o->max_retries = ZD_DEFAULT_MAX_RETRIES;
	o->max_response_bytes = ZD_DEFAULT_MAX_RESPONSE_BYTES;
	o->start_date = 0;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		char	   *value = defGetString(def);
		const ZdOption *opt = find_option(def->defname);

		if (strcmp(def->defname, "subdomain") == 0)
		{
			o->subdomain = pstrdup(value);
			for (char *p = o->subdomain; *p; p++)
				*p = pg_tolower((unsigned char) *p);
			o->base_url = psprintf("https://%s.zendesk.com", o->subdomain);
		}
		else if (strcmp(def->defname, "url") == 0)
		{
			int			len = strlen(value);

			while (len > 0 && value[len - 1] == '/')
				len--;
			o->base_url = pnstrdup(value, len);
		}
		else if (strcmp(def->defname, "connect_timeout") == 0)
			o->connect_timeout_ms = (int) parse_int_option(opt, value) * 1000;
		else if (strcmp(def->defname, "request_timeout") == 0)
			o->request_timeout_ms = (int) parse_int_option(opt, value) * 1000;
		else if (strcmp(def->defname, "page_size") == 0)
			o->page_size = (int) parse_int_option(opt, value);
		else if (strcmp(def->defname, "max_retries") == 0)
			o->max_retries = (int) parse_int_option(opt, value);
		else if (strcmp(def->defname, "max_response_size") == 0)
			o->max_response_bytes = parse_int_option(opt, value);
		else if (strcmp(def->defname, "start_date") == 0)
			o->start_date = parse_timestamp_option(def->defname, value);
		else if (strcmp(def->defname, "sync_schema") == 0)
			o->sync_schema = pstrdup(value);
	}
	if (o->base_url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has neither option \"subdomain\" nor \"url\"",
						server->servername)));

	if (need_credentials)
	{
		UserMapping *um = GetUserMapping(userid, serverid);

		o->email = option_value(um->options, "email");
		o->api_token = option_value(um->options, "api_token");
		o->oauth_token = option_value(um->options, "oauth_token");
		if (o->oauth_token == NULL && (o->email == NULL || o->api_token == NULL))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("the user mapping for server \"%s\" has no Zendesk credentials",
							server->servername),
					 errhint("ALTER USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (ADD email '...', ADD api_token '...').",
							 quote_identifier(server->servername))));
	}
	return o;
}

/* The value of option name in a list of DefElems, or NULL. */
static char *
option_value(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, name) == 0)
			return defGetString(def);
	}
	return NULL;
}

/*
 * The JSON key of a foreign table column: its "key" option, else the whole
 * record for a column named "data", else the column's name.
 */
char *
zd_column_key(Oid relid, AttrNumber attnum, const char *attname)
{
	char	   *key = option_value(GetForeignColumnOptions(relid, attnum), "key");

	if (key != NULL)
		return key;
	if (strcmp(attname, "data") == 0)
		return ZD_KEY_WHOLE_RECORD;
	return pstrdup(attname);
}

char *
zd_table_resource_name(Oid relid)
{
	char	   *resource = option_value(GetForeignTable(relid)->options, "resource");

	if (resource == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" has no option \"resource\"",
						get_rel_name(relid))));
	return resource;
}

/* The planner's idea of a table's size: its rows_estimate option. */
double
zd_table_rows_estimate(Oid relid)
{
	char	   *value = option_value(GetForeignTable(relid)->options, "rows_estimate");

	if (value == NULL)
		return ZD_DEFAULT_ROWS_ESTIMATE;
	return (double) parse_int_option(find_option("rows_estimate"), value);
}
