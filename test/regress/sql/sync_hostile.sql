--
-- Hostile answers found by attacking the sync: each is refused or made
-- harmless, and the checkpoint never moves to a place that loses data.
--
\getenv mock_url ZD_MOCK_URL
SET client_min_messages = warning;
CREATE SERVER regress_zd_hostile FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_zd_hostile
  OPTIONS (email 'admin@example.com', api_token 'test-token');
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT stream, status FROM zendesk_sync('regress_zd_hostile', ARRAY['organizations'], 'regress_zd_hostile');
SELECT start_time AS checkpoint FROM zendesk_sync_state
WHERE server = 'regress_zd_hostile' AND stream = 'organizations' \gset

-- an end_time in the server's future would become a checkpoint from which
-- every later run sees nothing: the page is refused, the checkpoint stays
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations",
  "body": "{\"organizations\": [{\"id\": 9001, \"updated_at\": \"2025-10-17T15:39:41Z\"}], \"next_page\": null, \"count\": 1, \"end_of_stream\": false, \"end_time\": 4102444800}"}') IS NOT NULL AS armed;
SELECT stream, status, message ~ 'end_time 4102444800, after the server''s own clock' AS says_future
FROM zendesk_sync('regress_zd_hostile', ARRAY['organizations'], 'regress_zd_hostile');
SELECT start_time = :'checkpoint' AS checkpoint_kept,
       (SELECT count(*) FROM regress_zd_hostile.organizations WHERE id = 9001) AS rows_from_refused_page
FROM zendesk_sync_state WHERE server = 'regress_zd_hostile' AND stream = 'organizations';

-- an id beyond 64 bits is an error, never a clamped id that another
-- record could share
SELECT mock('POST', '/__mock/faults', '{"kind": "json_body", "path": "/api/v2/incremental/organizations",
  "body": "{\"organizations\": [{\"id\": -9223372036854775809}], \"end_of_stream\": true, \"end_time\": 1}"}') IS NOT NULL AS armed;
SELECT stream, status, message ~ 'column "id"' AS names_id_column
FROM zendesk_sync('regress_zd_hostile', ARRAY['organizations'], 'regress_zd_hostile');
SELECT count(*) AS clamped_ids FROM regress_zd_hostile.organizations WHERE id = -9223372036854775808;

-- a proxy echoing the request's headers cannot put the credentials into
-- the state tables, which every role may read
SELECT mock('POST', '/__mock/faults', jsonb_build_object('kind', 'status', 'status', 400,
  'path', '/api/v2/incremental/organizations', 'content_type', 'text/plain',
  'body', 'echo: Authorization: Basic ' || encode(convert_to('admin@example.com/token:test-token', 'UTF8'), 'base64')
          || ' token test-token')) IS NOT NULL AS armed;
SELECT stream, status FROM zendesk_sync('regress_zd_hostile', ARRAY['organizations'], 'regress_zd_hostile');
SELECT last_error ~ '\[redacted\]' AS redacted,
       strpos(last_error, 'test-token') = 0 AS no_token,
       strpos(last_error, encode(convert_to('admin@example.com/token:test-token', 'UTF8'), 'base64')) = 0 AS no_basic
FROM zendesk_sync_state WHERE server = 'regress_zd_hostile' AND stream = 'organizations';

-- the same echo just past the 200-byte cut of the quoted body: redacted
-- before the cut, so no part of it is stored
SELECT mock('POST', '/__mock/faults', jsonb_build_object('kind', 'status', 'status', 400,
  'path', '/api/v2/incremental/organizations', 'content_type', 'text/plain',
  'body', repeat('x', 170) || ' Authorization: Basic '
          || encode(convert_to('admin@example.com/token:test-token', 'UTF8'), 'base64'))) IS NOT NULL AS armed;
SELECT stream, status FROM zendesk_sync('regress_zd_hostile', ARRAY['organizations'], 'regress_zd_hostile');
SELECT substring(last_error FROM 'Basic (.{0,11})') AS after_basic,
       strpos(last_error, left(encode(convert_to('admin@example.com/token:test-token', 'UTF8'), 'base64'), 8)) = 0 AS no_part_of_basic
FROM zendesk_sync_state WHERE server = 'regress_zd_hostile' AND stream = 'organizations';

-- and a live scan quotes the body redacted too
SELECT mock('POST', '/__mock/faults', jsonb_build_object('kind', 'status', 'status', 400,
  'path', '/api/v2/incremental/organizations', 'content_type', 'text/plain',
  'body', 'echo: Authorization: Basic ' || encode(convert_to('admin@example.com/token:test-token', 'UTF8'), 'base64')
          || ' token test-token')) IS NOT NULL AS armed;
CREATE TEMP TABLE scan_error (msg text, detail text);
DO $$
DECLARE
  msg text;
  detail text;
BEGIN
  PERFORM count(*) FROM zd.organizations;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
  INSERT INTO scan_error VALUES (msg, detail);
END $$;
SELECT msg, detail ~ '\[redacted\]' AS redacted, strpos(detail, 'test-token') = 0 AS no_token,
       strpos(detail, left(encode(convert_to('admin@example.com/token:test-token', 'UTF8'), 'base64'), 8)) = 0 AS no_basic
FROM scan_error;

-- a server dropped and created again under the same name but pointing at
-- another account does not inherit the old position (one pointing at the
-- same account, as after pg_dump and restore, keeps it: a TAP test checks)
DROP SERVER regress_zd_hostile CASCADE;
SELECT replace(:'mock_url', '127.0.0.1', 'localhost') AS other_url \gset
CREATE SERVER regress_zd_hostile FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url :'other_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_zd_hostile
  OPTIONS (email 'admin@example.com', api_token 'test-token');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, message FROM zendesk_sync('regress_zd_hostile', ARRAY['organizations'], 'regress_zd_hostile');
SELECT (query->>'start_time')::bigint AS first_start_time FROM mock_requests() ORDER BY seq LIMIT 1;
SELECT * FROM compare_with_account('organizations', 'regress_zd_hostile');

DROP SERVER regress_zd_hostile CASCADE;
DROP SCHEMA regress_zd_hostile CASCADE;
DELETE FROM zendesk_sync_state WHERE server = 'regress_zd_hostile';
