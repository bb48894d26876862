--
-- Merged tickets (field case F30): the source ticket is closed and tagged
-- closed_by_merge, not deleted; both tickets re-appear in the export.  The
-- source stays, status closed, tag kept; the target is updated; nothing is
-- invented (no solved or resolution time the payload does not carry).
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_merge', $$start_date '2023-11-13 18:26:40+00'$$);
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(7, 1699900100, '{"tags": ["billing"]}'),
                                           zd_ticket(9, 1699900200, '{"tags": ["billing"], "comment_count": 1}')), 'TUcx', true));
SELECT mock_script('/incremental/ticket_events', '{"start_time": "1699900000"}',
  time_page('ticket_events', jsonb_build_array(zd_event(70, 7, 1699900100), zd_event(90, 9, 1699900200)), 1699900200, true));
SELECT stream, status, records FROM zendesk_sync('field_merge', ARRAY['tickets', 'ticket_events']);

-- ticket 7 merged into 9
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT zd_ticket(7, 1699950000, '{"status": "closed", "tags": ["billing", "closed_by_merge"]}') AS t7,
       zd_ticket(9, 1699950001, '{"tags": ["billing"], "comment_count": 2}') AS t9 \gset
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "TUcx"}',
  cursor_page('tickets', jsonb_build_array(:'t7'::jsonb, :'t9'::jsonb), 'TUcy', true));
SELECT mock_script('/incremental/ticket_events', '{"start_time": "1699900200"}',
  time_page('ticket_events', jsonb_build_array(zd_event(90, 9, 1699900200),
    zd_event(71, 7, 1699950000, '{"child_events": [{"id": 711, "event_type": "Change", "field_name": "status", "status": "closed", "previous_value": "open"}]}')),
    1699950000, true));
SELECT stream, status, records FROM zendesk_sync('field_merge', ARRAY['tickets', 'ticket_events']);
SELECT id, status, tags, data->'comment_count' AS comment_count FROM field_merge.tickets ORDER BY id;
SELECT (SELECT data FROM field_merge.tickets WHERE id = 7) = :'t7'::jsonb AS t7_exactly_as_sent,
       (SELECT data FROM field_merge.tickets WHERE id = 9) = :'t9'::jsonb AS t9_exactly_as_sent;
SELECT id, ticket_id, child_events->0->>'previous_value' AS previous, child_events->0->>'status' AS status
FROM field_merge.ticket_events ORDER BY id;
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM field_merge.tickets;

SELECT field_drop('field_merge');
SELECT field_mock_restore();
