--
-- A stored cursor that Zendesk rejects (field case F27): stale, corrupt, or
-- of an old format.  One failed cursor request, then a start_time at or
-- before the newest synced change (minus zendesk_fdw.recovery_overlap), no
-- duplicates, the new cursor stored, the run message and the log say so.
-- Without any recovery point the sync fails with "reset required" instead
-- of silently exporting everything from 1970.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_reject', $$start_date '2023-11-13 18:26:40+00'$$);  -- 1699900000 > R on purpose

-- a first run stores 20 tickets up to R = 1699800000 and the cursor C_stale
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  cursor_page('tickets', zd_tickets(1, 20, 1699799430, 1699800000), 'C_stale', true));
SELECT stream, status, records FROM zendesk_sync('field_reject', ARRAY['tickets']);
SELECT cursor, high_water AS r FROM field_state('field_reject', 'tickets');

-- the cursor is now rejected; the export from R - overlap repeats the 20
-- stored tickets and brings 5 new ones
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "bad_cursor", "path": "/incremental/tickets/cursor", "query": {"cursor": "C_stale"}, "times": -1}') IS NOT NULL AS armed;
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "*"}',
  cursor_page('tickets', zd_tickets(1, 25, 1699799430, 1699800150), 'RDE+', true));
SELECT stream, status, records, message FROM zendesk_sync('field_reject', ARRAY['tickets']);
SELECT seq - min(seq) OVER () + 1 AS request, status, query->>'cursor' AS cursor,
       (query->>'start_time')::bigint AS start_time,
       (query->>'start_time')::bigint <= 1699800000 AS at_or_before_r
FROM mock_requests() ORDER BY seq;
SELECT status, cursor, high_water FROM field_state('field_reject', 'tickets');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM field_reject.tickets;

-- a corrupt cursor (truncated, not valid base64) behaves the same
UPDATE zendesk_sync_state SET cursor = 'bm90IGJhc2U2N' WHERE server = 'field_reject' AND stream = 'tickets';
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "bad_cursor", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"}, "times": -1}') IS NOT NULL AS armed;
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "*"}',
  cursor_page('tickets', zd_tickets(21, 26, 1699799850, 1699800200), 'RDI+', true));
SELECT stream, status, records, message FROM zendesk_sync('field_reject', ARRAY['tickets']);
SELECT seq - min(seq) OVER () + 1 AS request, status, query->>'cursor' AS cursor,
       (query->>'start_time')::bigint AS start_time
FROM mock_requests() ORDER BY seq;
SELECT status, cursor, high_water FROM field_state('field_reject', 'tickets');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM field_reject.tickets;

-- no recovery point (nothing synced yet) and no start_date: reset required
SELECT field_drop('field_reject');
SELECT field_server('field_reject');
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "0"}', cursor_page('tickets', '[]', 'RTA+', true));
SELECT stream, status, records FROM zendesk_sync('field_reject', ARRAY['tickets']);
SELECT cursor, high_water FROM field_state('field_reject', 'tickets');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "bad_cursor", "path": "/incremental/tickets/cursor", "query": {"cursor": "*"}, "times": -1}') IS NOT NULL AS armed;
SELECT stream, status, message FROM zendesk_sync('field_reject', ARRAY['tickets']);
SELECT count(*) AS requests, bool_and(query ? 'cursor') AS by_cursor FROM mock_requests();
SELECT status, cursor FROM field_state('field_reject', 'tickets');
-- with a configured start_date, that is where it restarts
ALTER SERVER field_reject OPTIONS (ADD start_date '2023-11-13 18:26:40+00');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(30, 1699950000)), 'RTE+', true));
SELECT stream, status, records, message FROM zendesk_sync('field_reject', ARRAY['tickets']);
SELECT seq - min(seq) OVER () + 1 AS request, status, query->>'start_time' AS start_time FROM mock_requests() ORDER BY seq;
SELECT status, cursor FROM field_state('field_reject', 'tickets');

-- a cursor rejected in the middle of a stream's first run: the pages this
-- run committed are the recovery point, not "reset required" (found by an
-- attack run: the recovery point was read once, at the stream's start)
SELECT field_drop('field_reject');
SELECT field_mock_restore();
SELECT field_server('field_reject', $$page_size '20'$$);
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "bad_cursor", "path": "/api/v2/incremental/tickets", "after": 3}') IS NOT NULL AS armed;
SELECT stream, status, message ~ 'cursor rejected \(HTTP \d+\): restarted from \d+ \(newest synced change minus recovery_overlap\)' AS recovered
FROM zendesk_sync('field_reject', ARRAY['tickets']);
SELECT * FROM compare_with_account('tickets', 'field_reject');

SELECT field_drop('field_reject');
SELECT field_mock_restore();
