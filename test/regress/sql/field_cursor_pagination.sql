--
-- A cursor export sends start_time on its first request only and then
-- follows after_cursor (field case F02): no later request carries a
-- start_time computed from the clock, the checkpoint is the cursor (not a
-- wall-clock time), and a change held back by Zendesk's one-minute rule is
-- picked up by a later run through the stored cursor.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_cursor', $$start_date '2023-11-13 18:26:40+00'$$);  -- 1699900000

SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  cursor_page('tickets', zd_tickets(1, 1000, 1699900000, 1699950000), 'QzE+Lw==', false));
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "QzE+Lw=="}',
  cursor_page('tickets', zd_tickets(1001, 1500, 1699950001, 1699990000), 'QzI+Lw==', true));
SELECT stream, status, pages, records, message FROM zendesk_sync('field_cursor', ARRAY['tickets']);
-- exactly [start_time=1699900000], [cursor=C1]
SELECT seq - min(seq) OVER () + 1 AS request, query, status FROM mock_requests() ORDER BY seq;
SELECT count(*) AS rows, count(DISTINCT id) AS ids, min(id), max(id) FROM field_cursor.tickets;
SELECT status, cursor, high_water FROM field_state('field_cursor', 'tickets');

-- the next run asks for C2 only
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "QzI+Lw=="}',
  cursor_page('tickets', '[]', 'QzI+Lw==', true));
SELECT stream, status, pages, records FROM zendesk_sync('field_cursor', ARRAY['tickets']);
SELECT query FROM mock_requests();
SELECT field_drop('field_cursor');

-- the one-minute hold-back, with the mock's own cursors: a ticket changed
-- 30 s ago is not exported yet; two minutes later the stored cursor finds it
SELECT field_mock_reset();
SELECT mock('POST', '/__mock/config', '{"holdback": 60}') IS NOT NULL AS holdback_60;
SELECT (mock('GET', '/__mock/clock')->>'now')::bigint AS now \gset
SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'create', 'id', 1500, 'at', :now - 600)) IS NOT NULL AS created;
SELECT field_server('field_cursor', $$start_date '2023-11-13 18:26:40+00'$$);
SELECT stream, status, records FROM zendesk_sync('field_cursor', ARRAY['tickets']);
SELECT cursor AS c2 FROM field_state('field_cursor', 'tickets') \gset
SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'create', 'id', 1501, 'at', :now - 30)) IS NOT NULL AS created;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, records FROM zendesk_sync('field_cursor', ARRAY['tickets']);
SELECT query ? 'start_time' AS by_time, query->>'cursor' = :'c2' AS by_stored_cursor FROM mock_requests();
SELECT id FROM field_cursor.tickets ORDER BY id;
SELECT cursor = :'c2' AS checkpoint_unchanged FROM field_state('field_cursor', 'tickets');
SELECT mock('POST', '/__mock/clock', '{"advance": 120}') IS NOT NULL AS advanced;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, records FROM zendesk_sync('field_cursor', ARRAY['tickets']);
SELECT query ? 'start_time' AS by_time, query->>'cursor' = :'c2' AS by_stored_cursor FROM mock_requests();
SELECT id FROM field_cursor.tickets ORDER BY id;
SELECT * FROM compare_with_account('tickets', 'field_cursor');

SELECT field_drop('field_cursor');
SELECT field_mock_restore();
