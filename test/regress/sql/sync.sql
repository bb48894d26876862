--
-- zendesk_sync(): incremental exports into local tables, checked against
-- the mock's own record of the account after every run.
--
-- progress NOTICEs carry timestamps of the generated account; TAP tests check them
SET client_min_messages = warning;
ALTER SERVER zendesk OPTIONS (ADD page_size '50');

-- first run: every stream, several pages each, local tables created
SELECT stream, status, pages > 1 AS several_pages, records, message FROM zendesk_sync('zendesk');
SELECT * FROM compare_with_account('tickets')
UNION ALL SELECT * FROM compare_with_account('ticket_events')
UNION ALL SELECT * FROM compare_with_account('users')
UNION ALL SELECT * FROM compare_with_account('organizations');
SELECT stream, status, cursor IS NOT NULL AS has_cursor, start_time IS NOT NULL AS has_start_time,
       high_water IS NOT NULL AS has_high_water, last_error, target_schema
FROM zendesk_sync_state ORDER BY stream;
-- the local tables: typed columns, data, synced_at, primary key on id
\d zendesk.organizations
-- high_water comes from the records, not the local clock
SELECT s.high_water = (SELECT max(generated_timestamp) FROM zendesk.tickets) AS tickets_high_water_from_records
FROM zendesk_sync_state s WHERE stream = 'tickets';

-- second run with no changes: one request per stream, no row rewritten
SELECT now() AS before \gset
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, records, message FROM zendesk_sync('zendesk');
SELECT path, count(*) AS requests, bool_and(query ? 'cursor') AS by_cursor
FROM mock_requests() GROUP BY path ORDER BY path;
SELECT (SELECT count(*) FROM zendesk.tickets WHERE synced_at > :'before') AS tickets_rewritten,
       (SELECT count(*) FROM zendesk.ticket_events WHERE synced_at > :'before') AS events_rewritten,
       (SELECT count(*) FROM zendesk.organizations WHERE synced_at > :'before') AS orgs_rewritten;

-- a ticket updated between runs is updated in place; a deleted one stays
-- as status 'deleted'; a new one arrives; a user deactivated is inactive
SELECT extract(epoch FROM now())::bigint - 10 AS at \gset
SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'update', 'id', 1, 'at', :at,
       'changes', '{"subject": "Changed between runs", "status": "pending"}'::jsonb)) IS NOT NULL AS updated;
SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'delete', 'id', 2, 'at', :at)) IS NOT NULL AS deleted;
SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'create', 'id', 990001, 'at', :at,
       'changes', '{"subject": "Brand new"}'::jsonb)) IS NOT NULL AS created;
SELECT mock('POST', '/__mock/mutate/users', jsonb_build_object('op', 'delete', 'id',
       (SELECT min(id) FROM zendesk.users WHERE active), 'at', :at)) IS NOT NULL AS user_deleted;
SELECT stream, status, records, message FROM zendesk_sync('zendesk');
SELECT id, subject, status FROM zendesk.tickets WHERE id IN (1, 2, 990001) ORDER BY id;
SELECT * FROM compare_with_account('tickets')
UNION ALL SELECT * FROM compare_with_account('ticket_events')
UNION ALL SELECT * FROM compare_with_account('users')
UNION ALL SELECT * FROM compare_with_account('organizations');

-- an older copy never overwrites a newer row
UPDATE zendesk.tickets SET generated_timestamp = generated_timestamp + interval '1 day',
       subject = 'newer local copy', data = jsonb_set(data, '{subject}', '"newer local copy"') WHERE id = 1;
SELECT zendesk_sync_reset('zendesk', 'tickets');
SELECT stream, status FROM zendesk_sync('zendesk', ARRAY['tickets']);
SELECT subject FROM zendesk.tickets WHERE id = 1;
UPDATE zendesk.tickets t SET generated_timestamp = to_timestamp((a.record->>'generated_timestamp')::bigint)
FROM mock_account('tickets') a WHERE a.id = t.id AND t.id = 1;
SELECT zendesk_sync_reset('zendesk', 'tickets');
SELECT stream, status FROM zendesk_sync('zendesk', ARRAY['tickets']);
SELECT * FROM compare_with_account('tickets');

-- a 429 in the middle of a cursor export: the same cursor is asked again
SELECT zendesk_sync_reset('zendesk', 'users');
ALTER SERVER zendesk OPTIONS (SET page_size '10');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "429", "path": "/api/v2/incremental/users", "after": 1, "retry_after": 1}') IS NOT NULL AS armed;
SELECT stream, status, pages, message FROM zendesk_sync('zendesk', ARRAY['users']);
SELECT row_number() OVER (ORDER BY seq) AS request, status, query ? 'start_time' AS by_time,
       query->>'cursor' = lag(query->>'cursor') OVER (ORDER BY seq) AS same_cursor_as_before
FROM mock_requests() ORDER BY seq LIMIT 4;
ALTER SERVER zendesk OPTIONS (SET page_size '50');
SELECT * FROM compare_with_account('users');

-- a rejected cursor: restart from the newest synced change minus
-- recovery_overlap, no duplicates, the run says so
UPDATE zendesk_sync_state SET cursor = 'bm90IGEgY3Vyc29y+/==' WHERE server = 'zendesk' AND stream = 'tickets';
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, message ~ 'cursor rejected \(HTTP 400\)' AS says_rejected FROM zendesk_sync('zendesk', ARRAY['tickets']);
SELECT row_number() OVER (ORDER BY seq) AS request, status, query ? 'cursor' AS by_cursor,
       to_timestamp((query->>'start_time')::bigint) =
         (SELECT max(generated_timestamp) FROM zendesk.tickets) - interval '5 minutes' AS from_high_water_minus_overlap
FROM mock_requests() ORDER BY seq LIMIT 2;
SELECT cursor <> 'bm90IGEgY3Vyc29y+/==' AS new_cursor FROM zendesk_sync_state WHERE stream = 'tickets';
SELECT * FROM compare_with_account('tickets');
-- a lost cursor (set to NULL by hand) recovers the same way
UPDATE zendesk_sync_state SET cursor = NULL WHERE server = 'zendesk' AND stream = 'tickets';
SELECT stream, status, message ~ 'no stored cursor' AS says_lost FROM zendesk_sync('zendesk', ARRAY['tickets']);
SELECT * FROM compare_with_account('tickets');

-- one sync per stream at a time: a second call answers at once
SELECT mock('POST', '/__mock/faults', '{"kind": "slow", "path": "/api/v2/incremental/organizations", "delay": 3}') IS NOT NULL AS armed;
SELECT stream, status FROM zendesk_sync('zendesk', ARRAY['organizations'], wait => false);
SELECT wait_for($$(SELECT status = 'running' FROM zendesk_sync_state WHERE stream = 'organizations')$$);
SELECT stream, status, message FROM zendesk_sync('zendesk', ARRAY['organizations', 'users']);
SELECT stream, status FROM zendesk_sync('zendesk', ARRAY['organizations'], wait => false);
SELECT try($$SELECT zendesk_sync_reset('zendesk', 'organizations')$$);
SELECT wait_for($$(SELECT status <> 'running' FROM zendesk_sync_state WHERE stream = 'organizations')$$);
SELECT status FROM zendesk_sync_state WHERE stream = 'organizations';

-- a worker terminated mid-run: the next run resumes from the checkpoint
SELECT zendesk_sync_reset('zendesk', 'tickets');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "slow", "path": "/api/v2/incremental/tickets", "after": 2, "delay": 30}') IS NOT NULL AS armed;
SELECT stream, status FROM zendesk_sync('zendesk', ARRAY['tickets'], wait => false);
SELECT wait_for($$(SELECT pages = 2 FROM zendesk_sync_state WHERE stream = 'tickets')
                  AND (SELECT count(*) = 3 FROM mock_requests())$$);
SELECT cursor AS checkpoint FROM zendesk_sync_state WHERE stream = 'tickets' \gset
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'zendesk_fdw sync';
SELECT wait_for($$NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'zendesk_fdw sync')$$);
-- the worker records its own termination; the checkpoint stays
SELECT status, pages, cursor = :'checkpoint' AS checkpoint_kept, last_error ~ '^terminated' AS says_terminated
FROM zendesk_sync_state WHERE stream = 'tickets';
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, message FROM zendesk_sync('zendesk', ARRAY['tickets']);
SELECT query->>'cursor' = :'checkpoint' AS resumed_from_checkpoint FROM mock_requests() ORDER BY seq LIMIT 1;
SELECT run_id IS NOT NULL, status, message FROM zendesk_sync_runs
WHERE stream = 'tickets' AND status = 'failed' ORDER BY started_at DESC LIMIT 1;
SELECT * FROM compare_with_account('tickets');

-- errors: unknown server, stream, and a role without a user mapping or rights
SELECT try($$SELECT * FROM zendesk_sync('nope')$$);
SELECT try($$SELECT * FROM zendesk_sync('zendesk', ARRAY['tickets', 'groups'])$$);
SELECT try($$SELECT * FROM zendesk_sync('zendesk', ARRAY[]::text[])$$);
SELECT try($$SELECT * FROM zendesk_sync(NULL)$$);
CREATE ROLE regress_zd_syncer LOGIN;
GRANT USAGE ON FOREIGN SERVER zendesk TO regress_zd_syncer;
SET ROLE regress_zd_syncer;
SELECT try($$SELECT * FROM zendesk_sync('zendesk')$$);
RESET ROLE;
CREATE USER MAPPING FOR regress_zd_syncer SERVER zendesk OPTIONS (email 'admin@example.com', api_token 'test-token');
SET ROLE regress_zd_syncer;
SELECT try($$SELECT * FROM zendesk_sync('zendesk')$$);
SELECT try($$SELECT * FROM zendesk_sync('zendesk', target_schema => 'brand_new_schema')$$);
-- the state tables are read-only for everyone but the extension
SELECT try($$UPDATE zendesk_sync_state SET cursor = NULL$$);
SELECT count(*) > 0 AS can_read_state FROM zendesk_sync_state;
RESET ROLE;
-- a role that cannot log in cannot host the worker (before PostgreSQL 17)
CREATE ROLE regress_zd_nologin NOLOGIN;
GRANT USAGE ON FOREIGN SERVER zendesk TO regress_zd_nologin;
CREATE USER MAPPING FOR regress_zd_nologin SERVER zendesk OPTIONS (email 'admin@example.com', api_token 'test-token');
SET ROLE regress_zd_nologin;
SELECT try($$SELECT * FROM zendesk_sync('zendesk', ARRAY['users'], target_schema => 'pg_temp')$$);
RESET ROLE;
DROP USER MAPPING FOR regress_zd_nologin SERVER zendesk;
REVOKE USAGE ON FOREIGN SERVER zendesk FROM regress_zd_nologin;
DROP ROLE regress_zd_nologin;
-- with CREATE on its own schema the role syncs as itself
CREATE SCHEMA regress_zd_own AUTHORIZATION regress_zd_syncer;
SET ROLE regress_zd_syncer;
SELECT stream, status, message FROM zendesk_sync('zendesk', ARRAY['organizations'], target_schema => 'regress_zd_own');
RESET ROLE;
SELECT tableowner FROM pg_tables WHERE schemaname = 'regress_zd_own';
SELECT * FROM compare_with_account('organizations', 'regress_zd_own');
DROP SCHEMA regress_zd_own CASCADE;
DROP USER MAPPING FOR regress_zd_syncer SERVER zendesk;
REVOKE USAGE ON FOREIGN SERVER zendesk FROM regress_zd_syncer;
DROP ROLE regress_zd_syncer;

-- a local table dropped by hand is rebuilt by a full export
DROP TABLE zendesk.users;
SELECT stream, status, message FROM zendesk_sync('zendesk', ARRAY['users']);
SELECT * FROM compare_with_account('users');

-- wait => true cannot see its worker's commits from REPEATABLE READ
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT * FROM zendesk_sync('zendesk')$$);
ROLLBACK;

-- the run history is pruned to zendesk_fdw.sync_runs_retention days
INSERT INTO zendesk_sync_runs (run_id, server, stream, status, started_at)
VALUES (-1, 'zendesk', 'users', 'ok', now() - interval '400 days');
SET zendesk_fdw.sync_runs_retention = 365;
SELECT stream, status FROM zendesk_sync('zendesk', ARRAY['users']);
SELECT count(*) AS old_runs_left FROM zendesk_sync_runs WHERE run_id = -1;

-- state and history are dumped by pg_dump
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'zendesk_fdw';
