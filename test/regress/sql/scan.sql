--
-- Foreign scans over the mock account: results equal the account record
-- for record and field for field, scans stream page by page, and EXPLAIN
-- shows the request without credentials.
--
-- the first tickets are the real recorded fixture tickets
SELECT id, subject, status, updated_at FROM zd.tickets ORDER BY id LIMIT 5;

-- LIMIT 5 over a streamed scan costs one request
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT count(*) AS rows FROM (SELECT id FROM zd.tickets LIMIT 5) five;
SELECT path, query->>'per_page' AS per_page, query ? 'start_time' AS has_start_time, status
FROM mock_requests();

-- every resource: the same ids as the account, each exactly once, and the
-- whole record (data) equal to the account's
SELECT * FROM compare_with_account('tickets', 'zd')
UNION ALL SELECT * FROM compare_with_account('ticket_events', 'zd')
UNION ALL SELECT * FROM compare_with_account('users', 'zd')
UNION ALL SELECT * FROM compare_with_account('organizations', 'zd');
-- and each id exactly once
SELECT (SELECT count(*) - count(DISTINCT id) FROM zd.tickets) AS dup_tickets,
       (SELECT count(*) - count(DISTINCT id) FROM zd.ticket_events) AS dup_events,
       (SELECT count(*) - count(DISTINCT id) FROM zd.users) AS dup_users,
       (SELECT count(*) - count(DISTINCT id) FROM zd.organizations) AS dup_orgs;

-- typed columns agree with the JSON they came from, field for field
SELECT count(*) AS typed_mismatches
FROM zd.tickets t JOIN mock_account('tickets') a USING (id)
WHERE t.subject IS DISTINCT FROM a.record->>'subject'
   OR t.status IS DISTINCT FROM a.record->>'status'
   OR t.updated_at IS DISTINCT FROM (a.record->>'updated_at')::timestamptz
   OR t.generated_timestamp IS DISTINCT FROM to_timestamp((a.record->>'generated_timestamp')::bigint)
   OR t.requester_id IS DISTINCT FROM (a.record->>'requester_id')::bigint
   OR t.assignee_id IS DISTINCT FROM (a.record->>'assignee_id')::bigint
   OR t.tags IS DISTINCT FROM ARRAY(SELECT jsonb_array_elements_text(a.record->'tags'))
   OR t.collaborator_ids IS DISTINCT FROM ARRAY(SELECT jsonb_array_elements_text(a.record->'collaborator_ids')::bigint)
   OR t.via IS DISTINCT FROM a.record->'via'
   OR t.custom_fields IS DISTINCT FROM a.record->'custom_fields'
   OR t.is_public IS DISTINCT FROM (a.record->>'is_public')::boolean;

-- deleted records stay visible in their deleted state
SELECT count(*) > 0 AS has_deleted_tickets FROM zd.tickets WHERE status = 'deleted';
SELECT count(*) > 0 AS has_inactive_users FROM zd.users WHERE NOT active;
SELECT count(*) > 0 AS has_deleted_orgs FROM zd.organizations WHERE deleted_at IS NOT NULL;
-- custom field values keep their JSON types ("007" stays a string)
SELECT count(*) > 0 AS has_string_007
FROM zd.tickets, jsonb_array_elements(custom_fields) f WHERE f->'value' = '"007"';

-- comment bodies arrive with the ticket events (include=comment_events)
SELECT count(*) > 0 AS has_comment_bodies
FROM zd.ticket_events, jsonb_array_elements(child_events) c
WHERE c->>'event_type' = 'Comment' AND c->>'body' IS NOT NULL;

-- a column option can name another JSON key; absent keys read as NULL
CREATE FOREIGN TABLE zd.ticket_titles (
  id bigint,
  title text OPTIONS (key 'subject'),
  satisfaction_probability numeric,
  everything jsonb OPTIONS (key '*')
) SERVER zendesk OPTIONS (resource 'tickets');
SELECT t.id, t.title = f.subject AS same_title, t.satisfaction_probability, t.everything = f.data AS same_record
FROM zd.ticket_titles t JOIN zd.tickets f USING (id) ORDER BY id LIMIT 3;

-- a value that does not fit its column is an error naming table, column, id and value
CREATE FOREIGN TABLE zd.bad_types (id bigint, subject integer) SERVER zendesk OPTIONS (resource 'tickets');
SELECT * FROM zd.bad_types;
DROP FOREIGN TABLE zd.bad_types;

-- EXPLAIN shows the resource and the request, never the credentials
EXPLAIN (COSTS OFF) SELECT id FROM zd.tickets;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, subject FROM zd.tickets WHERE status = 'open';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.ticket_events;

-- a prepared statement keeps working once the plan is generic (> 5 runs)
PREPARE open_tickets AS SELECT count(*) FROM zd.tickets WHERE status = $1;
EXECUTE open_tickets('open');
EXECUTE open_tickets('open');
EXECUTE open_tickets('open');
EXECUTE open_tickets('open');
EXECUTE open_tickets('open');
EXECUTE open_tickets('open');
EXECUTE open_tickets('open');
SELECT (SELECT count(*) FROM zd.tickets WHERE status = 'open') =
       (SELECT count(*) FROM mock_account('tickets') WHERE record->>'status' = 'open') AS same_as_account;
DEALLOCATE open_tickets;

-- joins and rescans: each ticket event's ticket exists
SELECT count(*) AS orphan_events
FROM zd.ticket_events e LEFT JOIN zd.tickets t ON t.id = e.ticket_id WHERE t.id IS NULL;
