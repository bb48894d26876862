--
-- generated_timestamp, not updated_at, is what the ticket export filters on
-- and what moves on system updates (field case F22).  Tickets whose
-- updated_at is older than the checkpoint (or null) are upserted with the
-- new payload, the newest change (high_water) comes from
-- generated_timestamp and never goes back to an updated_at, and a null
-- updated_at does not crash anything.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_gts', $$start_date '2023-11-08 00:00:00+00'$$);  -- 1699401600
-- run 1: tickets 77 and 78 as they were, checkpoint at 1699500000
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699401600"}',
  cursor_page('tickets', jsonb_build_array(
    zd_ticket(77, 1699401600, '{"satisfaction_rating": {"score": "unoffered"}}'),
    zd_ticket(78, 1699500000)), 'R1RTMQ==', true));
SELECT stream, status, records FROM zendesk_sync('field_gts', ARRAY['tickets']);
SELECT cursor, high_water FROM field_state('field_gts', 'tickets');

-- run 2: 77 changed by the system (satisfaction_rating) with updated_at
-- unchanged and before the checkpoint; 78 arrives with a null updated_at
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "R1RTMQ=="}',
  cursor_page('tickets', jsonb_build_array(
    zd_ticket(77, 1699600000, '{"updated_at": "2023-11-08T00:00:00Z", "satisfaction_rating": {"score": "good"}}'),
    zd_ticket(78, 1699600001, '{"updated_at": null, "subject": "System update"}')), 'R1RTMg==', true));
SELECT stream, status, records, message FROM zendesk_sync('field_gts', ARRAY['tickets']);
SELECT id, extract(epoch FROM updated_at)::bigint AS updated_at, extract(epoch FROM generated_timestamp)::bigint AS generated_timestamp,
       satisfaction_rating, subject
FROM field_gts.tickets ORDER BY id;
-- the checkpoint: the new cursor, and the newest change from generated_timestamp
SELECT cursor, high_water, high_water <> 1699401600 AS not_from_updated_at FROM field_state('field_gts', 'tickets');
-- the same copy again (a replay) changes nothing; an older copy never wins
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "R1RTMg=="}',
  cursor_page('tickets', jsonb_build_array(
    zd_ticket(77, 1699500000, '{"satisfaction_rating": {"score": "bad"}}'),
    zd_ticket(78, 1699600001, '{"updated_at": null, "subject": "System update"}')), 'R1RTMw==', true));
SELECT now() AS before \gset
SELECT stream, status FROM zendesk_sync('field_gts', ARRAY['tickets']);
SELECT id, satisfaction_rating, synced_at > :'before' AS rewritten FROM field_gts.tickets ORDER BY id;
SELECT cursor, high_water FROM field_state('field_gts', 'tickets');

SELECT field_drop('field_gts');
SELECT field_mock_restore();
