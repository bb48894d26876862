--
-- List endpoints miss archived (and deleted) tickets, ignore start_time and
-- cap offset paging; only the incremental export sees everything (field
-- case F15, full-scan part; filter pushdown is tested elsewhere).  A full
-- scan of the tickets foreign table and a sync both read the export: all
-- 47 tickets, the 5 archived ones included, and no list, search or offset
-- page request is ever made.
--
SET client_min_messages = warning;
SELECT field_mock_reset('{"tickets": 47, "users": 0, "organizations": 0}');
SELECT field_server('field_archived');
-- archive five closed tickets: gone from /tickets, still in the export
SELECT array_agg(id) AS archived FROM (SELECT id FROM mock_account('tickets') ORDER BY id OFFSET 25 LIMIT 5) a \gset
SELECT count(*) AS archived FROM (
  SELECT mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'update', 'id', id, 'archived', true,
              'changes', '{"status": "closed"}'::jsonb))
  FROM unnest(:'archived'::bigint[]) id) m;
SELECT mock('POST', '/__mock/clock', '{"advance": 5}') IS NOT NULL AS advanced;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
CREATE FOREIGN TABLE field_archived_tickets (id bigint, status text) SERVER field_archived OPTIONS (resource 'tickets');
SELECT count(*) AS tickets, count(*) FILTER (WHERE id = ANY (:'archived')) AS archived_included,
       count(*) FILTER (WHERE id = ANY (:'archived') AND status = 'closed') AS archived_closed
FROM field_archived_tickets;
SELECT stream, status, records FROM zendesk_sync('field_archived', ARRAY['tickets']);
SELECT count(*) AS tickets, count(*) FILTER (WHERE id = ANY (:'archived')) AS archived_included FROM field_archived.tickets;
SELECT * FROM compare_with_account('tickets', 'field_archived');
-- only the export was asked; no list, search or page= request
SELECT DISTINCT path, query ? 'page' AS offset_page FROM mock_requests() ORDER BY path;

SELECT field_drop('field_archived');
SELECT field_mock_restore();
