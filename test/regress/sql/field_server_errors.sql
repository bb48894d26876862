--
-- 5xx in the middle of a sync (field case F12): 503 with Retry-After and an
-- HTML body, then 500 with JSON, then 502 with an empty body, then success.
-- Every retry asks for the same cursor, the Retry-After wait is kept, and
-- all rows arrive once.  With a retry budget of 2 the run fails, pages 1-2
-- stay committed with their checkpoint, and a rerun completes.
--
SET client_min_messages = warning;
SET zendesk_fdw.max_retry_wait = 2;
SELECT field_mock_reset('{"tickets": 1500, "users": 0, "organizations": 0}');
SELECT field_server('field_5xx', $$page_size '500'$$);

-- pages 1 (start_time) and 2 (cursor C1) succeed; page 3 (cursor C2) fails
-- three times; the retries after the 500 and the 502 ask for half as many
-- records (a server error may be the size of the page; not so a 503)
SELECT mock('POST', '/__mock/faults', '[
  {"kind": "503", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"}, "after": 1, "retry_after": 1},
  {"kind": "500", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"}, "after": 2,
   "body": {"error": "InternalError"}},
  {"kind": "502", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"}, "after": 3}]') IS NOT NULL AS armed;
SELECT stream, status, records, message FROM zendesk_sync('field_5xx', ARRAY['tickets']);
SELECT seq - min(seq) OVER () + 1 AS request, status, fault, query ? 'start_time' AS by_time,
       query->>'per_page' AS per_page,
       query->>'cursor' = lag(query->>'cursor') OVER (ORDER BY seq) AS same_cursor_as_before,
       CASE WHEN lag(status) OVER (ORDER BY seq) >= 500 THEN t - lag(t) OVER (ORDER BY seq) >= 1 END AS waited
FROM mock_request_times() ORDER BY seq LIMIT 6;
SELECT * FROM compare_with_account('tickets', 'field_5xx');

-- retry budget 2: 503, 500, 502 use it up; the run fails on page 3
ALTER SERVER field_5xx OPTIONS (ADD max_retries '2');
SELECT zendesk_sync_reset('field_5xx', 'tickets');
TRUNCATE field_5xx.tickets;
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '[
  {"kind": "503", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"}, "after": 1, "retry_after": 1},
  {"kind": "500", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"}, "after": 2,
   "body": {"error": "InternalError"}},
  {"kind": "502", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"}, "after": 3}]') IS NOT NULL AS armed;
SELECT stream, status, pages, records, message ~ '^Zendesk returned HTTP 502 for GET .* after 3 attempts' AS says_502
FROM zendesk_sync('field_5xx', ARRAY['tickets']);
SELECT count(*) AS requests, count(*) FILTER (WHERE status >= 500) AS server_errors FROM mock_requests();
-- the checkpoint is C2, the cursor the failing requests asked for
SELECT f.status, f.cursor = (SELECT query->>'cursor' FROM mock_requests() WHERE status = 503) AS checkpoint_is_c2
FROM field_state('field_5xx', 'tickets') f;
SELECT count(*) AS rows FROM field_5xx.tickets;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, records FROM zendesk_sync('field_5xx', ARRAY['tickets']);
SELECT count(*) AS requests, bool_and(query ? 'cursor') AS by_cursor FROM mock_requests();
SELECT * FROM compare_with_account('tickets', 'field_5xx');

SELECT field_drop('field_5xx');
SELECT field_mock_restore();
