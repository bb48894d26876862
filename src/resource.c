/*-------------------------------------------------------------------------
 *
 * resource.c
 *		  The Zendesk resources zendesk_fdw exposes: their export endpoints
 *		  and their typed columns.
 *
 * These definitions are the single source for IMPORT FOREIGN SCHEMA and for
 * the local tables the sync creates, so both always have the same columns.
 * Each column is named after its JSON key; `data` holds the whole record so
 * fields Zendesk adds later are reachable without DDL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "zendesk_fdw.h"

#define LENGTH(a) ((int) lengthof(a))

static const ZdColumnDef ticket_columns[] = {
	{"id", "bigint"},
	{"url", "text"},
	{"external_id", "text"},
	{"via", "jsonb"},
	{"created_at", "timestamptz"},
	{"updated_at", "timestamptz"},
	{"generated_timestamp", "timestamptz"},
	{"type", "text"},
	{"subject", "text"},
	{"raw_subject", "text"},
	{"description", "text"},
	{"priority", "text"},
	{"status", "text"},
	{"custom_status_id", "bigint"},
	{"recipient", "text"},
	{"requester_id", "bigint"},
	{"submitter_id", "bigint"},
	{"assignee_id", "bigint"},
	{"organization_id", "bigint"},
	{"group_id", "bigint"},
	{"problem_id", "bigint"},
	{"forum_topic_id", "bigint"},
	{"collaborator_ids", "bigint[]"},
	{"follower_ids", "bigint[]"},
	{"email_cc_ids", "bigint[]"},
	{"followup_ids", "bigint[]"},
	{"sharing_agreement_ids", "bigint[]"},
	{"has_incidents", "boolean"},
	{"is_public", "boolean"},
	{"allow_channelback", "boolean"},
	{"allow_attachments", "boolean"},
	{"from_messaging_channel", "boolean"},
	{"due_at", "timestamptz"},
	{"tags", "text[]"},
	{"custom_fields", "jsonb"},
	{"fields", "jsonb"},
	{"satisfaction_rating", "jsonb"},
	{"ticket_form_id", "bigint"},
	{"brand_id", "bigint"},
	{"encoded_id", "text"},
	{"data", "jsonb"},
};

static const ZdColumnDef ticket_event_columns[] = {
	{"id", "bigint"},
	{"ticket_id", "bigint"},
	{"timestamp", "timestamptz"},
	{"created_at", "timestamptz"},
	{"updater_id", "bigint"},
	{"via", "text"},
	{"system", "jsonb"},
	{"metadata", "jsonb"},
	{"event_type", "text"},
	{"child_events", "jsonb"},
	{"data", "jsonb"},
};

static const ZdColumnDef user_columns[] = {
	{"id", "bigint"},
	{"url", "text"},
	{"name", "text"},
	{"email", "text"},
	{"created_at", "timestamptz"},
	{"updated_at", "timestamptz"},
	{"time_zone", "text"},
	{"iana_time_zone", "text"},
	{"phone", "text"},
	{"shared_phone_number", "boolean"},
	{"photo", "jsonb"},
	{"locale_id", "bigint"},
	{"locale", "text"},
	{"organization_id", "bigint"},
	{"role", "text"},
	{"role_type", "integer"},
	{"custom_role_id", "bigint"},
	{"verified", "boolean"},
	{"external_id", "text"},
	{"tags", "text[]"},
	{"alias", "text"},
	{"active", "boolean"},
	{"shared", "boolean"},
	{"shared_agent", "boolean"},
	{"last_login_at", "timestamptz"},
	{"two_factor_auth_enabled", "boolean"},
	{"signature", "text"},
	{"details", "text"},
	{"notes", "text"},
	{"moderator", "boolean"},
	{"ticket_restriction", "text"},
	{"only_private_comments", "boolean"},
	{"restricted_agent", "boolean"},
	{"suspended", "boolean"},
	{"chat_only", "boolean"},
	{"default_group_id", "bigint"},
	{"report_csv", "boolean"},
	{"user_fields", "jsonb"},
	{"permanently_deleted", "boolean"},
	{"data", "jsonb"},
};

static const ZdColumnDef organization_columns[] = {
	{"id", "bigint"},
	{"url", "text"},
	{"name", "text"},
	{"shared_tickets", "boolean"},
	{"shared_comments", "boolean"},
	{"external_id", "text"},
	{"created_at", "timestamptz"},
	{"updated_at", "timestamptz"},
	{"domain_names", "text[]"},
	{"details", "text"},
	{"notes", "text"},
	{"group_id", "bigint"},
	{"tags", "text[]"},
	{"organization_fields", "jsonb"},
	{"deleted_at", "timestamptz"},
	{"data", "jsonb"},
};

/*
 * Tickets and users have cursor exports (no duplicates, no stuck pages);
 * ticket events and organizations only have time-based ones.  Ticket events
 * ask for comment_events, without which comment bodies never arrive.
 */
static const ZdResource tickets = {
	"tickets", "tickets", ZD_EXPORT_CURSOR,
	"/api/v2/incremental/tickets/cursor.json", NULL,
	"/api/v2/tickets/%lld.json", "ticket",
	"generated_timestamp", "generated_timestamp", true,
	ticket_columns, LENGTH(ticket_columns)
};

static const ZdResource ticket_events = {
	"ticket_events", "ticket_events", ZD_EXPORT_TIME,
	"/api/v2/incremental/ticket_events.json", "include=comment_events",
	NULL, NULL,
	"timestamp", "timestamp", true,
	ticket_event_columns, LENGTH(ticket_event_columns)
};

static const ZdResource users = {
	"users", "users", ZD_EXPORT_CURSOR,
	"/api/v2/incremental/users/cursor.json", NULL,
	"/api/v2/users/%lld.json", "user",
	"updated_at", "updated_at", false,
	user_columns, LENGTH(user_columns)
};

static const ZdResource organizations = {
	"organizations", "organizations", ZD_EXPORT_TIME,
	"/api/v2/incremental/organizations.json", NULL,
	"/api/v2/organizations/%lld.json", "organization",
	"updated_at", "updated_at", false,
	organization_columns, LENGTH(organization_columns)
};

/* Sync order: tickets first, the stream users care about most. */
const ZdResource *const zd_resources[] = {
	&tickets, &ticket_events, &users, &organizations
};
const int	zd_nresources = LENGTH(zd_resources);

const ZdResource *
zd_resource_by_name(const char *name)
{
	for (int i = 0; i < zd_nresources; i++)
		if (strcmp(zd_resources[i]->name, name) == 0)
			return zd_resources[i];
	return NULL;
}

char *
zd_resource_names_list(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < zd_nresources; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", zd_resources[i]->name);
	return buf.data;
}

/*
 * Column list for CREATE (FOREIGN) TABLE, with quoted names.  Local tables
 * add synced_at and the primary key.
 */
/*
 * Local tables store the values that TOAST compresses (a ticket's data is
 * 2-5 kB) with lz4 where the server has it: pglz was a fifth of the sync
 * worker's CPU (bench/README.md), lz4 a twentieth, and reads decompress
 * faster too.
 */
static const char *
zd_column_compression(const char *sqltype)
{
#if PG_VERSION_NUM >= 140000 && defined(USE_LZ4)
	if (strcmp(sqltype, "jsonb") == 0 || strcmp(sqltype, "text") == 0)
		return " COMPRESSION lz4";
#endif
	return "";
}

char *
zd_resource_column_ddl(const ZdResource *res, bool foreign)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < res->ncolumns; i++)
		appendStringInfo(&buf, "%s%s %s%s%s",
						 i > 0 ? ",\n  " : "  ",
						 quote_identifier(res->columns[i].name),
						 res->columns[i].sqltype,
						 (!foreign && strcmp(res->columns[i].name, "id") == 0) ?
						 " NOT NULL" : "",
						 !foreign ? zd_column_compression(res->columns[i].sqltype) : "");
	if (!foreign)
		appendStringInfoString(&buf,
							   ",\n  synced_at timestamptz NOT NULL DEFAULT now()"
							   ",\n  PRIMARY KEY (id)");
	return buf.data;
}
