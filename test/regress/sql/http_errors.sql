\getenv mock_url ZD_MOCK_URL
--
-- HTTP failures: every one is a clear error with a SQLSTATE, or a retry
-- that ends in the right rows; none crashes the backend or leaks a secret.
--
SET client_min_messages = warning;
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;

-- 401: wrong token; no retry, SQLSTATE 28000, no secret in the message
CREATE SERVER zendesk_badauth FOREIGN DATA WRAPPER zendesk_fdw
  OPTIONS (url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zendesk_badauth
  OPTIONS (email 'admin@example.com', api_token 'wrong-secret-token');
CREATE FOREIGN TABLE badauth_tickets (id bigint) SERVER zendesk_badauth OPTIONS (resource 'tickets');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT try('SELECT * FROM badauth_tickets');
SELECT count(*) AS requests FROM mock_requests();
-- OAuth bearer tokens work, and a bad one is a 401 too
ALTER USER MAPPING FOR CURRENT_USER SERVER zendesk_badauth
  OPTIONS (DROP email, DROP api_token, ADD oauth_token 'test-oauth');
SELECT count(*) > 0 AS bearer_ok FROM badauth_tickets;
ALTER USER MAPPING FOR CURRENT_USER SERVER zendesk_badauth OPTIONS (SET oauth_token 'expired-oauth');
SELECT try('SELECT * FROM badauth_tickets');
DROP SERVER zendesk_badauth CASCADE;

-- a role without a user mapping gets a clear error
CREATE ROLE regress_zd_nomap;
GRANT USAGE ON SCHEMA zd TO regress_zd_nomap;
GRANT SELECT ON zd.tickets TO regress_zd_nomap;
SET ROLE regress_zd_nomap;
SELECT try('SELECT * FROM zd.tickets');
RESET ROLE;
REVOKE ALL ON zd.tickets FROM regress_zd_nomap;
REVOKE ALL ON SCHEMA zd FROM regress_zd_nomap;
DROP ROLE regress_zd_nomap;

-- 403 (not an admin): no retry, SQLSTATE 42501
SELECT mock('POST', '/__mock/config', '{"forbidden_prefixes": ["/api/v2/incremental/organizations"]}') IS NOT NULL AS set;
SELECT try('SELECT * FROM zd.organizations');
SELECT mock('POST', '/__mock/config', '{"forbidden_prefixes": []}') IS NOT NULL AS set;

-- 429 with Retry-After, then success: same request again, right rows
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "429", "path": "/api/v2/incremental/users", "retry_after": 1}') IS NOT NULL AS armed;
SELECT count(*) = (SELECT count(*) FROM mock_account('users')) AS all_users FROM zd.users;
SELECT status, fault, query->>'start_time' AS start_time FROM mock_requests();

-- 429 with no Retry-After and a text body: the default wait, then success
SELECT mock('POST', '/__mock/faults', '{"kind": "429", "path": "/api/v2/incremental/users", "retry_after": null}') IS NOT NULL AS armed;
SELECT count(*) = (SELECT count(*) FROM mock_account('users')) AS all_users FROM zd.users;

-- 503 (HTML), 500, 502 in a row, then success
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '[{"kind": "503", "path": "/api/v2/incremental/organizations", "retry_after": 1},
                                        {"kind": "500", "path": "/api/v2/incremental/organizations"},
                                        {"kind": "502", "path": "/api/v2/incremental/organizations"}]') IS NOT NULL AS armed;
SELECT count(*) = (SELECT count(*) FROM mock_account('organizations')) AS all_orgs FROM zd.organizations;
SELECT status, fault FROM mock_requests();

-- a body cut short or a reset connection is retried
SELECT mock('POST', '/__mock/faults', '[{"kind": "truncated", "path": "/api/v2/incremental/organizations"},
                                        {"kind": "reset", "path": "/api/v2/incremental/organizations"}]') IS NOT NULL AS armed;
SELECT count(*) = (SELECT count(*) FROM mock_account('organizations')) AS all_orgs FROM zd.organizations;

-- retries are bounded: a server that keeps failing is an error
ALTER SERVER zendesk OPTIONS (ADD max_retries '1');
SELECT mock('POST', '/__mock/faults', '{"kind": "500", "path": "/api/v2/incremental/organizations", "times": 2}') IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');
ALTER SERVER zendesk OPTIONS (DROP max_retries);

-- an HTML page with status 200 is an error, not a parse crash
SELECT mock('POST', '/__mock/faults', '{"kind": "html_200", "path": "/api/v2/incremental/organizations"}') IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');

-- malformed and wrongly shaped JSON: errors that say what and where
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "{\"organizations\": [ {\"id\": 1,"}') IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "{\"organizations\": \"x\", \"end_of_stream\": true}"}') IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "{\"organizations\": [], \"end_of_stream\": \"yes\"}"}') IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "{\"organizations\": [1, 2], \"end_of_stream\": true}"}') IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "[1, 2]"}') IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');
-- a wrongly typed field names the table, column, record and value
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "{\"organizations\": [{\"id\": 7, \"group_id\": \"abc\"}], \"end_of_stream\": true, \"end_time\": 1}"}') IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');
-- deep nesting is refused, not a stack overflow
SELECT mock('POST', '/__mock/faults', jsonb_build_object('kind', 'json_body', 'path', '/api/v2/incremental/organizations',
       'body', '{"organizations": [{"id": 1, "details": ' || repeat('[', 5000) || repeat(']', 5000) || '}], "end_of_stream": true}')) IS NOT NULL AS armed;
SELECT try('SELECT * FROM zd.organizations');
-- \u0000 cannot live in PostgreSQL text: replaced with U+FFFD, with a warning
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "{\"organizations\": [{\"id\": 9, \"name\": \"a\\u0000b\"}], \"end_of_stream\": true, \"end_time\": 1}"}') IS NOT NULL AS armed;
SELECT id, name, name = E'a\uFFFDb' AS replaced, data->>'name' = E'a\uFFFDb' AS replaced_in_data FROM zd.organizations;
-- the backend is still fine
SELECT count(*) = (SELECT count(*) FROM mock_account('organizations')) AS all_orgs FROM zd.organizations;

-- cancellation: statement_timeout ends a slow response and a rate-limit wait
SET zendesk_fdw.max_retry_wait = 60;
SELECT mock('POST', '/__mock/faults', '{"kind": "slow", "path": "/api/v2/incremental/organizations", "delay": 30}') IS NOT NULL AS armed;
SET statement_timeout = '1s';
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM zd.organizations;
RESET statement_timeout;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '10 seconds' AS cancelled_promptly;
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "429", "path": "/api/v2/incremental/organizations", "retry_after": 50}') IS NOT NULL AS armed;
SET statement_timeout = '1s';
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM zd.organizations;
RESET statement_timeout;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '10 seconds' AS cancelled_promptly;
RESET zendesk_fdw.max_retry_wait;
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT count(*) = (SELECT count(*) FROM mock_account('organizations')) AS all_orgs FROM zd.organizations;
