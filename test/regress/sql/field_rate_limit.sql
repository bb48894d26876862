--
-- Rate limits (field cases F09, F10).  A 429 on page 2 of a cursor export
-- is retried with the same cursor after Retry-After; a 429 with a text
-- body and no Retry-After is no parse error and waits the default backoff
-- (capped here by zendesk_fdw.max_retry_wait); a 429 that never ends fails
-- the run with a rate-limit error after the retry budget, the checkpoint
-- on page 1, and a rerun completes.  When the export budget header says
-- remaining=0 the next request waits for the reset: no 429 at all.
-- Cancelling the sync during a wait ends it at once, checkpoint kept.
--
SET client_min_messages = warning;
SET zendesk_fdw.max_retry_wait = 2;
SELECT field_mock_reset('{"tickets": 1500, "users": 0, "organizations": 0}');
SELECT field_server('field_rate', $$page_size '1000'$$);

-- F09: 429 with Retry-After on the first cursor request
SELECT mock('POST', '/__mock/faults', '{"kind": "429", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"},
       "retry_after": 2, "content_type": "application/json",
       "body": "{\"error\":\"APIRateLimitExceeded\",\"description\":\"Number of allowed incremental export API requests per minute exceeded\"}"}') IS NOT NULL AS armed;
SELECT stream, status, pages, records, message FROM zendesk_sync('field_rate', ARRAY['tickets']);
SELECT seq - min(seq) OVER () + 1 AS request, status, query ? 'start_time' AS by_time,
       query->>'cursor' = lag(query->>'cursor') OVER (ORDER BY seq) AS same_cursor_as_before,
       CASE WHEN lag(status) OVER (ORDER BY seq) = 429 THEN t - lag(t) OVER (ORDER BY seq) >= 2 END AS waited_retry_after
FROM mock_request_times() ORDER BY seq;
SELECT * FROM compare_with_account('tickets', 'field_rate');

-- F10: two 429s with a text/plain body and no Retry-After, then success
SELECT zendesk_sync_reset('field_rate', 'tickets');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "429", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"},
       "retry_after": null, "body": "Number of allowed API requests per minute exceeded: 0", "times": 2}') IS NOT NULL AS armed;
SELECT stream, status, pages, records, message FROM zendesk_sync('field_rate', ARRAY['tickets']);
SELECT seq - min(seq) OVER () + 1 AS request, status, query ? 'start_time' AS by_time,
       query->>'cursor' = lag(query->>'cursor') OVER (ORDER BY seq) AS same_cursor_as_before,
       CASE WHEN lag(status) OVER (ORDER BY seq) = 429 THEN t - lag(t) OVER (ORDER BY seq) >= 2 END AS waited_backoff
FROM mock_request_times() ORDER BY seq;
SELECT * FROM compare_with_account('tickets', 'field_rate');

-- F10: 429 forever; max_retries 1 is the budget.  The run fails with a
-- rate-limit error, the checkpoint is page 1's cursor, a rerun completes.
ALTER SERVER field_rate OPTIONS (ADD max_retries '1');
SELECT zendesk_sync_reset('field_rate', 'tickets');
TRUNCATE field_rate.tickets;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "429", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"},
       "retry_after": null, "body": "Number of allowed API requests per minute exceeded: 0", "times": -1}') IS NOT NULL AS armed;
SELECT stream, status, pages, records, message ~ '^Zendesk rate limit still exceeded \(HTTP 429\) for GET .* after 2 attempts' AS says_rate_limit
FROM zendesk_sync('field_rate', ARRAY['tickets']);
SELECT count(*) FILTER (WHERE status = 429) AS rate_limited, count(*) AS requests FROM mock_requests();
SELECT f.status, f.cursor = (SELECT query->>'cursor' FROM mock_requests() WHERE status = 429 LIMIT 1) AS checkpoint_is_page_1
FROM field_state('field_rate', 'tickets') f;
SELECT count(*) AS rows FROM field_rate.tickets;
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT stream, status, pages, records FROM zendesk_sync('field_rate', ARRAY['tickets']);
SELECT * FROM compare_with_account('tickets', 'field_rate');
ALTER SERVER field_rate OPTIONS (DROP max_retries);

-- proactive pacing: page 1 says the export budget is used up and resets in
-- 2 s; the next request waits for it
SELECT zendesk_sync_reset('field_rate', 'tickets');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "headers", "path": "/incremental/tickets/cursor", "query": {"start_time": "*"},
       "headers": {"zendesk-ratelimit-incremental-exports": "total=10; remaining=0; resets=2"}}') IS NOT NULL AS armed;
SELECT stream, status, pages FROM zendesk_sync('field_rate', ARRAY['tickets']);
SELECT seq - min(seq) OVER () + 1 AS request, status,
       CASE WHEN seq = min(seq) OVER () + 1 THEN t - lag(t) OVER (ORDER BY seq) >= 2 END AS waited_for_reset
FROM mock_request_times() ORDER BY seq;
-- and against a mock that enforces 2 export requests per 2-second window:
-- 6 pages, every window used up, not one 429
ALTER SERVER field_rate OPTIONS (SET page_size '250');
SELECT zendesk_sync_reset('field_rate', 'tickets');
SELECT mock('POST', '/__mock/config', '{"rate_limit": 2, "rate_window": 2}') IS NOT NULL AS limited;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, records FROM zendesk_sync('field_rate', ARRAY['tickets']);
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 429) AS rate_limited FROM mock_requests();
SELECT * FROM compare_with_account('tickets', 'field_rate');
SELECT mock('POST', '/__mock/config', '{"rate_limit": 0}') IS NOT NULL AS unlimited;
ALTER SERVER field_rate OPTIONS (SET page_size '1000');

-- pg_cancel_backend during a long Retry-After wait: the sync ends at once,
-- the checkpoint stays on page 1
SET zendesk_fdw.max_retry_wait = 60;
SELECT zendesk_sync_reset('field_rate', 'tickets');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "429", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"},
       "retry_after": 50, "times": -1}') IS NOT NULL AS armed;
SELECT stream, status FROM zendesk_sync('field_rate', ARRAY['tickets'], wait => false);
-- the request for page 2 goes out while page 1 is written (prefetch), so
-- its 429 can come before page 1's checkpoint: wait for both
SELECT wait_for($$EXISTS (SELECT 1 FROM mock_requests() WHERE status = 429)
                  AND (SELECT cursor FROM field_state('field_rate', 'tickets')) IS NOT NULL$$);
SELECT clock_timestamp() AS t0 \gset
SELECT pg_cancel_backend(pid) FROM sync_workers();
SELECT wait_for($$NOT EXISTS (SELECT 1 FROM sync_workers())$$);
SELECT clock_timestamp() - :'t0'::timestamptz < interval '10 seconds' AS ended_promptly;
SELECT f.status, f.last_error, f.cursor = (SELECT query->>'cursor' FROM mock_requests() WHERE status = 429 LIMIT 1) AS checkpoint_is_page_1
FROM field_state('field_rate', 'tickets') f;
SELECT count(*) AS requests FROM mock_requests();
RESET zendesk_fdw.max_retry_wait;

SELECT field_drop('field_rate');
SELECT field_mock_restore();
