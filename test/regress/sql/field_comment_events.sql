--
-- Comment bodies arrive only with include=comment_events (field case F21):
-- every ticket_events request carries it, so the Comment child events with
-- their body are stored, and a later run never replaces them with the
-- body-less form.  Variant: the comment side-load failing (500) at
-- per_page 1000 but working at 500: the page is asked again smaller and the
-- sync completes.
--
SET client_min_messages = warning;
SET zendesk_fdw.max_retry_wait = 2;
SELECT field_mock_reset('{"tickets": 20, "users": 0, "organizations": 0, "events_per_ticket": 2}');
SELECT field_server('field_comments');
SELECT (mock('GET', '/__mock/clock')->>'now')::bigint AS now \gset
SELECT (mock('POST', '/__mock/mutate/tickets', jsonb_build_object('op', 'update', 'id', min(id), 'at', :now - 30,
        'changes', '{"status": "pending"}'::jsonb, 'comment', '{"body": "Please reset", "public": false}'::jsonb))->>'event_id')::bigint AS event_id
FROM mock_account('tickets') \gset
SELECT stream, status, records FROM zendesk_sync('field_comments', ARRAY['ticket_events']);
SELECT count(*) AS requests, bool_and(query->>'include' = 'comment_events') AS all_with_comment_events FROM mock_requests();
SELECT c->>'event_type' AS event_type, c->>'body' AS body, c->>'html_body' AS html_body, c->'public' AS public
FROM field_comments.ticket_events e, jsonb_array_elements(e.child_events) c
WHERE e.id = :event_id AND c->>'event_type' = 'Comment';
SELECT count(*) FILTER (WHERE c->>'event_type' = 'Comment') AS comments,
       count(*) FILTER (WHERE c->>'event_type' = 'Comment' AND c->>'body' IS NOT NULL) AS with_body,
       count(*) FILTER (WHERE c ? 'comment_present') AS body_less_form
FROM field_comments.ticket_events e, jsonb_array_elements(e.child_events) c;
SELECT * FROM compare_with_account('ticket_events', 'field_comments');

-- a later run (the boundary event comes again) keeps the bodies
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status FROM zendesk_sync('field_comments', ARRAY['ticket_events']);
SELECT bool_and(query->>'include' = 'comment_events') AS with_comment_events FROM mock_requests();
SELECT count(*) FILTER (WHERE c->>'event_type' = 'Comment' AND c->>'body' IS NOT NULL) AS with_body
FROM field_comments.ticket_events e, jsonb_array_elements(e.child_events) c;

-- the comment side-load fails with 500 at per_page 1000 and works at 500
SELECT zendesk_sync_reset('field_comments', 'ticket_events');
TRUNCATE field_comments.ticket_events;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "500", "path": "/incremental/ticket_events", "query": {"include": "comment_events"},
       "min_per_page": 1000, "times": -1}') IS NOT NULL AS armed;
SELECT stream, status, records FROM zendesk_sync('field_comments', ARRAY['ticket_events']);
SELECT seq - min(seq) OVER () + 1 AS request, status, query->>'per_page' AS per_page, query->>'include' AS include
FROM mock_requests() ORDER BY seq;
SELECT * FROM compare_with_account('ticket_events', 'field_comments');

SELECT field_drop('field_comments');
SELECT field_mock_restore();
