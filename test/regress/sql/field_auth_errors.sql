--
-- Credentials and permissions (field case F24).  401 (bad API token, or an
-- expired OAuth token) and 403 (exports need an admin) are configuration
-- errors: no retry, a SQLSTATE of their own (28000, 42501), no secret in
-- any message, checkpoint and local rows untouched.  A 401 stops the whole
-- run after one request; a 403 on one resource fails that stream only.
--
SET client_min_messages = warning;
SELECT field_mock_reset('{"tickets": 30, "users": 10, "organizations": 5, "events_per_ticket": 1}');
SELECT field_server('field_auth', $$page_size '1000'$$);
SELECT stream, status, records FROM zendesk_sync('field_auth');
CREATE TEMP TABLE auth_before AS
  SELECT stream, cursor, start_time, high_water FROM zendesk_sync_state WHERE server = 'field_auth';
CREATE FOREIGN TABLE field_auth_tickets (id bigint) SERVER field_auth OPTIONS (resource 'tickets');
SELECT now() AS before \gset

-- (a) a wrong API token: 401 with WWW-Authenticate Basic and "Couldn't authenticate you"
ALTER USER MAPPING FOR CURRENT_USER SERVER field_auth OPTIONS (SET api_token 'wrong-secret-token');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, message LIKE '%wrong-secret-token%' AS leaks_token,
       message ~ '^(not attempted: )?Zendesk rejected the credentials of user mapping for server "field_auth"' AS says_credentials,
       message ~ 'Couldn''t authenticate you' AS shows_zendesk_error
FROM zendesk_sync('field_auth');
SELECT count(*) AS requests, min(status) AS status FROM mock_requests();
SELECT try('SELECT * FROM field_auth_tickets');
-- (b) an expired OAuth token: 401 invalid_token
ALTER USER MAPPING FOR CURRENT_USER SERVER field_auth OPTIONS (DROP email, DROP api_token, ADD oauth_token 'super-secret-token');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, message LIKE '%super-secret-token%' AS leaks_token,
       message ~ '^Zendesk rejected the credentials .*invalid_token' AS says_credentials
FROM zendesk_sync('field_auth');
SELECT count(*) AS requests, min(status) AS status FROM mock_requests();
SELECT try('SELECT * FROM field_auth_tickets');
ALTER USER MAPPING FOR CURRENT_USER SERVER field_auth OPTIONS (DROP oauth_token, ADD email 'admin@example.com', ADD api_token 'test-token');

-- (c) not an admin: every export is 403 while /users/me works
SELECT mock('POST', '/__mock/config', '{"forbidden_prefixes": ["incremental"]}') IS NOT NULL AS forbidden;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, message ~ '^Zendesk refused access to .*HTTP 403.*Hint: Incremental exports require a Zendesk admin' AS says_admin
FROM zendesk_sync('field_auth');
SELECT path, count(*) AS requests, min(status) AS status FROM mock_requests() GROUP BY path ORDER BY path;
SELECT try('SELECT * FROM field_auth_tickets');

-- nothing of the above moved a checkpoint or wrote a row
SELECT s.stream, s.cursor IS NOT DISTINCT FROM b.cursor AND s.start_time IS NOT DISTINCT FROM b.start_time
       AND s.high_water IS NOT DISTINCT FROM b.high_water AS checkpoint_unchanged, s.status
FROM zendesk_sync_state s JOIN auth_before b USING (stream) WHERE s.server = 'field_auth' ORDER BY stream;
SELECT (SELECT count(*) FROM field_auth.tickets WHERE synced_at > :'before') +
       (SELECT count(*) FROM field_auth.users WHERE synced_at > :'before') +
       (SELECT count(*) FROM field_auth.organizations WHERE synced_at > :'before') +
       (SELECT count(*) FROM field_auth.ticket_events WHERE synced_at > :'before') AS rows_written;
-- no secret anywhere in the state or the history
SELECT count(*) AS leaks FROM zendesk_sync_runs
WHERE server = 'field_auth' AND (message LIKE '%secret-token%' OR message LIKE '%test-token%');

-- (d) 403 on organizations only (a plan-gated resource): the other streams
-- complete and are committed
SELECT mock('POST', '/__mock/config', '{"forbidden_prefixes": ["incremental/organizations"]}') IS NOT NULL AS forbidden;
SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'update', 'id',
       (SELECT min(id) FROM field_auth.tickets), 'changes', '{"subject": "Changed while orgs are forbidden"}'::jsonb)) IS NOT NULL AS changed;
SELECT mock('POST', '/__mock/clock', '{"advance": 5}') IS NOT NULL AS advanced;
SELECT stream, status, message ~ '^Zendesk refused access to /api/v2/incremental/organizations' AS says_403
FROM zendesk_sync('field_auth');
SELECT subject FROM field_auth.tickets WHERE id = (SELECT min(id) FROM field_auth.tickets);
SELECT * FROM compare_with_account('tickets', 'field_auth')
UNION ALL SELECT * FROM compare_with_account('ticket_events', 'field_auth')
UNION ALL SELECT * FROM compare_with_account('users', 'field_auth');

SELECT field_drop('field_auth');
SELECT field_mock_restore();
