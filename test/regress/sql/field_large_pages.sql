--
-- 504 "upstream request timeout" on pages of very large records (field case
-- F13): retrying the same request is pointless, so after a 504 the same
-- cursor is asked again with half the per_page, at once, down to what the
-- gateway can build; the page size grows back after a run of good pages.
-- Multi-megabyte descriptions are stored byte for byte.
--
SET client_min_messages = warning;
SET zendesk_fdw.max_retry_wait = 2;
SELECT field_mock_reset('{"tickets": 30, "users": 0, "organizations": 0}');
SELECT (mock('GET', '/__mock/clock')->>'now')::bigint AS now \gset
-- six tickets get 3 MB descriptions (multibyte text, quotes, backslashes,
-- newlines); they are the newest changes, so the last pages of the export
SELECT count(*) AS updated FROM (
  SELECT mock_post('/__mock/mutate/tickets', jsonb_build_object('op', 'update', 'id', id, 'at', :now - 600,
           'changes', jsonb_build_object('description',
             'ticket ' || id || ': ' || repeat(E'Zendesk \u00fc\u20ac\U0001F600 "quoted" \\ back\nslash ' || id || ' ', 75000))))
  FROM (SELECT id FROM mock_account('tickets') ORDER BY id LIMIT 6) t) u;
SELECT count(*) AS big, min(octet_length(record->>'description')) > 3000000 AS over_3mb
FROM mock_account('tickets') WHERE length(record->>'description') > 1000000;

-- any cursor request with per_page >= 4 times out at the gateway
SELECT field_server('field_large', $$page_size '8'$$);
SELECT mock('POST', '/__mock/faults', '{"kind": "504", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"},
       "min_per_page": 4, "times": -1}') IS NOT NULL AS armed;
SELECT stream, status, records, message FROM zendesk_sync('field_large', ARRAY['tickets']);
-- after each 504: the same cursor, half the per_page, no wait needed;
-- after 5 good pages the page size doubles again (and times out again here)
SELECT seq - min(seq) OVER () + 1 AS request, status, (query->>'per_page')::int AS per_page,
       query ? 'start_time' AS by_time,
       query->>'cursor' = lag(query->>'cursor') OVER (ORDER BY seq) AS same_cursor_as_before
FROM mock_request_times() ORDER BY seq;
SELECT count(*) FILTER (WHERE r.status = 504) AS timeouts,
       bool_and(n.query->>'cursor' = r.query->>'cursor' AND (n.query->>'per_page')::int * 2 = (r.query->>'per_page')::int)
         FILTER (WHERE r.status = 504) AS each_504_retried_same_cursor_half_page
FROM mock_requests() r LEFT JOIN mock_requests() n ON n.seq = r.seq + 1;
-- byte for byte
SELECT * FROM compare_with_account('tickets', 'field_large');
SELECT count(*) AS big_rows,
       bool_and(length(t.description) = length(a.record->>'description')) AS same_length,
       bool_and(md5(t.description) = md5(a.record->>'description')) AS same_md5
FROM field_large.tickets t JOIN mock_account('tickets') a USING (id)
WHERE length(a.record->>'description') > 1000000;

-- a 504 at per_page 1 cannot shrink further: it uses the retry budget and fails
ALTER SERVER field_large OPTIONS (SET page_size '1', ADD max_retries '1');
SELECT zendesk_sync_reset('field_large', 'tickets');
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "504", "path": "/incremental/tickets/cursor", "times": -1}') IS NOT NULL AS armed;
SELECT stream, status, message ~ '^Zendesk returned HTTP 504 for GET .* after 2 attempts' AS says_504 FROM zendesk_sync('field_large', ARRAY['tickets']);
SELECT count(*) AS requests FROM mock_requests();

SELECT field_drop('field_large');
SELECT field_mock_restore();
