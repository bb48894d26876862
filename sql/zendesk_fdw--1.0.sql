/* zendesk_fdw--1.0.sql */

\echo Use "CREATE EXTENSION zendesk_fdw" to load this file. \quit

CREATE FUNCTION zendesk_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION zendesk_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER zendesk_fdw
  HANDLER zendesk_fdw_handler
  VALIDATOR zendesk_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER zendesk_fdw IS 'Zendesk Support API (tickets, ticket events, users, organizations)';

/*
 * Sync state: one row per (server, stream).  The worker updates a row in the
 * same transaction as the page of records it describes, so the row is never
 * ahead of the data; it doubles as the progress view of a running sync.
 */
CREATE TABLE zendesk_sync_state (
  server          name NOT NULL,
  stream          text NOT NULL
                  CHECK (stream IN ('tickets', 'ticket_events', 'users', 'organizations')),
  cursor          text,
  start_time      timestamptz,
  high_water      timestamptz,
  status          text NOT NULL DEFAULT 'never run'
                  CHECK (status IN ('never run', 'running', 'ok', 'failed')),
  pages           bigint NOT NULL DEFAULT 0,
  records         bigint NOT NULL DEFAULT 0,
  last_started_at timestamptz,
  last_success_at timestamptz,
  last_error      text,
  target_schema   name,
  run_id          bigint,
  server_url      text,
  PRIMARY KEY (server, stream)
);

COMMENT ON TABLE zendesk_sync_state IS 'Checkpoint and progress of each zendesk_sync() stream';
COMMENT ON COLUMN zendesk_sync_state.cursor IS 'after_cursor of the last committed page (cursor exports)';
COMMENT ON COLUMN zendesk_sync_state.start_time IS 'start_time of the next request (time-based exports)';
COMMENT ON COLUMN zendesk_sync_state.high_water IS 'newest change time among committed records, from the records themselves';
COMMENT ON COLUMN zendesk_sync_state.pages IS 'pages committed by the current or last run';
COMMENT ON COLUMN zendesk_sync_state.records IS 'records committed by the current or last run';
COMMENT ON COLUMN zendesk_sync_state.server_url IS 'the account the position belongs to (the server''s base URL): a server pointed at another account starts over';

/* Run history, pruned to zendesk_fdw.sync_runs_retention days by each run. */
CREATE TABLE zendesk_sync_runs (
  run_id      bigint NOT NULL,
  server      name NOT NULL,
  stream      text NOT NULL,
  status      text NOT NULL
              CHECK (status IN ('running', 'ok', 'failed', 'already running')),
  pages       integer NOT NULL DEFAULT 0,
  records     bigint NOT NULL DEFAULT 0,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  message     text,
  PRIMARY KEY (run_id, stream)
);
CREATE INDEX zendesk_sync_runs_server_started ON zendesk_sync_runs (server, started_at);

CREATE SEQUENCE zendesk_sync_run_id_seq;

SELECT pg_catalog.pg_extension_config_dump('zendesk_sync_state', '');
SELECT pg_catalog.pg_extension_config_dump('zendesk_sync_runs', '');
SELECT pg_catalog.pg_extension_config_dump('zendesk_sync_run_id_seq', '');

/*
 * Only the extension's C code writes these tables (as the extension owner);
 * everyone may read them.
 */
REVOKE ALL ON zendesk_sync_state, zendesk_sync_runs, zendesk_sync_run_id_seq FROM PUBLIC;
GRANT SELECT ON zendesk_sync_state, zendesk_sync_runs TO PUBLIC;

CREATE FUNCTION zendesk_sync(
  server name,
  streams text[] DEFAULT NULL,
  target_schema name DEFAULT NULL,
  wait boolean DEFAULT true)
RETURNS TABLE (stream text, status text, pages integer, records bigint,
               started_at timestamptz, finished_at timestamptz, message text)
AS 'MODULE_PATHNAME', 'zendesk_sync'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION zendesk_sync(name, text[], name, boolean) IS
  'Run Zendesk incremental exports into local tables in a background worker';

CREATE FUNCTION zendesk_sync_reset(
  server name,
  stream text DEFAULT NULL,
  start_time timestamptz DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'zendesk_sync_reset'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION zendesk_sync_reset(name, text, timestamptz) IS
  'Forget the sync position of a server''s streams so the next sync re-exports from start_time (NULL: from start_date)';
