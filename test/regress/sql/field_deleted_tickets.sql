--
-- Deleted tickets stay in the export as status "deleted" (field case F16).
-- The local row becomes status 'deleted' (a soft delete, not left 'open',
-- not removed), its ticket events are kept, the other tickets of the page
-- are stored, and no per-ticket request (which would answer 404) is made.
--
SET client_min_messages = warning;
SELECT field_mock_reset('{"tickets": 50, "users": 0, "organizations": 0, "events_per_ticket": 3}');
SELECT field_server('field_deleted');
SELECT stream, status, records FROM zendesk_sync('field_deleted', ARRAY['tickets', 'ticket_events']);
-- an open ticket with events, and the two tickets after it by id
SELECT min(t.id) AS victim FROM field_deleted.tickets t
WHERE t.status = 'open' AND (SELECT count(*) FROM field_deleted.ticket_events e WHERE e.ticket_id = t.id) >= 3 \gset
SELECT array_agg(id) AS next_two FROM (SELECT id FROM field_deleted.tickets WHERE id > :victim ORDER BY id LIMIT 2) n \gset
SELECT count(*) AS events_before FROM field_deleted.ticket_events WHERE ticket_id = :victim \gset
SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'delete', 'id', :victim)) IS NOT NULL AS deleted;
SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'update', 'id', id, 'changes', '{"priority": "high"}'::jsonb)) IS NOT NULL AS updated
FROM unnest(:'next_two'::bigint[]) id;
SELECT mock('POST', '/__mock/clock', '{"advance": 5}') IS NOT NULL AS advanced;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, message FROM zendesk_sync('field_deleted', ARRAY['tickets', 'ticket_events']);
SELECT status, data->>'status' AS data_status FROM field_deleted.tickets WHERE id = :victim;
SELECT count(*) >= :events_before AS events_kept FROM field_deleted.ticket_events WHERE ticket_id = :victim;
SELECT count(*) AS others_updated FROM field_deleted.tickets WHERE id = ANY (:'next_two') AND priority = 'high';
SELECT * FROM compare_with_account('tickets', 'field_deleted')
UNION ALL SELECT * FROM compare_with_account('ticket_events', 'field_deleted');
-- only the exports were asked: nothing per ticket
SELECT DISTINCT path FROM mock_requests() ORDER BY path;
-- a full foreign scan (the export, OFFSET 0 keeps the filter local) shows it as deleted too
CREATE FOREIGN TABLE field_deleted_tickets (id bigint, status text) SERVER field_deleted OPTIONS (resource 'tickets');
SELECT status FROM (SELECT * FROM field_deleted_tickets OFFSET 0) t WHERE id = :victim;

SELECT field_drop('field_deleted');
SELECT field_mock_restore();
