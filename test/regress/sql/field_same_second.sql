--
-- 1000+ records sharing one second (field case F05).  A time-based export
-- cannot page past them (end_time == start_time, identical next_page): the
-- sync stops at once with "stuck at timestamp", writes nothing twice and
-- keeps its checkpoint.  Tickets use the cursor export, which orders by
-- (time, id) and is not affected: 2500 tickets in one second all arrive.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_second', $$start_date '2023-11-03 08:26:40+00'$$);  -- 1699000000

-- a first run ends with the checkpoint on second 1699100000
SELECT mock_script('/incremental/ticket_events', '{"start_time": "1699000000"}',
  time_page('ticket_events', jsonb_build_array(zd_event(1, 1, 1699050000), zd_event(2, 2, 1699100000)), 1699100000, true));
SELECT stream, status, records FROM zendesk_sync('field_second', ARRAY['ticket_events']);
SELECT status, start_time AS checkpoint FROM field_state('field_second', 'ticket_events');

-- then a bulk update stamps 1000+ events with that second: the page is
-- full, end_time equals start_time, and it is the same on every call
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/ticket_events', '{"start_time": "1699100000"}',
  time_page('ticket_events', (SELECT jsonb_agg(zd_event(i, i, 1699100000) ORDER BY i) FROM generate_series(2, 1001) i),
            1699100000, false));
SELECT stream, status, pages, records, message ~ '^Zendesk ticket_events export is stuck at timestamp 1699100000' AS says_stuck
FROM zendesk_sync('field_second', ARRAY['ticket_events']);
SELECT count(*) AS requests FROM mock_requests();
SELECT status, start_time AS checkpoint, last_error FROM field_state('field_second', 'ticket_events');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM field_second.ticket_events;
-- a foreign scan says the same
CREATE FOREIGN TABLE field_second_events (id bigint) SERVER field_second OPTIONS (resource 'ticket_events');
ALTER SERVER field_second OPTIONS (SET start_date '2023-11-04 12:13:20+00');  -- 1699100000
SELECT try('SELECT count(*) FROM field_second_events');
-- with a smaller page size the hint says to raise it
ALTER SERVER field_second OPTIONS (ADD page_size '500');
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/ticket_events', '{"start_time": "1699100000"}',
  time_page('ticket_events', (SELECT jsonb_agg(zd_event(i, i, 1699100000) ORDER BY i) FROM generate_series(2, 501) i),
            1699100000, false));
SELECT stream, status, message FROM zendesk_sync('field_second', ARRAY['ticket_events']);
ALTER SERVER field_second OPTIONS (DROP page_size);

-- tickets: 2500 tickets in one second through the cursor export
SELECT field_mock_reset();
SELECT mock('POST', '/__mock/mutate/tickets', '{"op": "bulk_same_second", "count": 2500, "at": 1699100000}')->'count' AS touched;
SELECT stream, status, pages, records FROM zendesk_sync('field_second', ARRAY['tickets']);
SELECT path, count(*) AS requests FROM mock_requests() GROUP BY path;
SELECT count(*) AS rows, count(DISTINCT id) AS ids,
       count(*) FILTER (WHERE generated_timestamp = to_timestamp(1699100000)) AS on_that_second
FROM field_second.tickets;
SELECT * FROM compare_with_account('tickets', 'field_second');

SELECT field_drop('field_second');
SELECT field_mock_restore();
