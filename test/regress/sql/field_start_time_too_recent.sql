--
-- start_time too recent, in the server's future, or missing (field case
-- F08).  Zendesk refuses a start_time within its last minute (422 "Too
-- recent start_time", or 400 StartTimeTooRecent): that means nothing new,
-- not a failure, and is not retried in a loop.  A local clock ahead of
-- Zendesk's is corrected with the server's Date header, so no checkpoint
-- lands in the server's future.  Without any start, start_time=0 is sent.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT mock('POST', '/__mock/config', '{"holdback": 60}') IS NOT NULL AS holdback_60;
SELECT field_server('field_recent', $$start_date '2023-11-13 18:26:40+00'$$);
SELECT stream, status, records FROM zendesk_sync('field_recent', ARRAY['organizations']);

-- (A) a stored checkpoint 20 s ago by the server's clock
SELECT (mock('GET', '/__mock/clock')->>'now')::bigint AS now \gset
SELECT zendesk_sync_reset('field_recent', 'organizations', to_timestamp(:now - 20));
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, records, message FROM zendesk_sync('field_recent', ARRAY['organizations']);
SELECT status, (query->>'start_time')::bigint = :now - 20 AS asked_for_checkpoint FROM mock_requests();
SELECT status, start_time = :now - 20 AS checkpoint_unchanged, last_error FROM field_state('field_recent', 'organizations');
-- the same as 400 StartTimeTooRecent
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "status", "status": 400, "path": "/incremental/organizations",
       "body": {"error": "StartTimeTooRecent", "description": "start_time is too recent"}}') IS NOT NULL AS armed;
SELECT stream, status, pages, records, message FROM zendesk_sync('field_recent', ARRAY['organizations']);
SELECT status, fault FROM mock_requests();
SELECT status, start_time = :now - 20 AS checkpoint_unchanged FROM field_state('field_recent', 'organizations');
-- other 400s are still errors
SELECT mock('POST', '/__mock/faults', '{"kind": "status", "status": 400, "path": "/incremental/organizations",
       "body": {"error": "InvalidValue", "description": "start_time is not a valid integer"}}') IS NOT NULL AS armed;
SELECT stream, status, message ~ '^Zendesk returned HTTP 400 .*InvalidValue' AS says_400 FROM zendesk_sync('field_recent', ARRAY['organizations']);
SELECT field_drop('field_recent');

-- (B) the local clock is 300 s ahead of Zendesk's, and the configured start
-- is "the last 2 minutes" by the local clock: in the server's future
SET zendesk_fdw.holdback = 61;
SELECT mock('POST', '/__mock/clock', '{"set_offset": -300}') IS NOT NULL AS server_behind;
SELECT field_server('field_recent', format('start_date %L', now() - interval '2 minutes'));
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, records, message FROM zendesk_sync('field_recent', ARRAY['tickets', 'organizations']);
SELECT (mock('GET', '/__mock/clock')->>'now')::bigint AS now \gset
-- tickets: refused once, then capped by the server's clock; organizations:
-- capped from the start (the Date header is known by then)
SELECT path, status, (query->>'start_time')::bigint > :now AS in_server_future,
       (query->>'start_time')::bigint BETWEEN :now - 70 AND :now - 60 AS within_server_holdback
FROM mock_requests() ORDER BY seq;
SELECT s.stream, f.status, f.cursor IS NULL AS no_cursor,
       coalesce(f.start_time <= :now - 60, true) AS start_time_not_in_server_future,
       coalesce(f.high_water <= :now - 60, true) AS high_water_not_in_server_future
FROM unnest(ARRAY['organizations', 'tickets']) s(stream), field_state('field_recent', s.stream) f ORDER BY 1;
RESET zendesk_fdw.holdback;
SELECT field_drop('field_recent');
SELECT mock('POST', '/__mock/clock', '{"set_offset": 0}') IS NOT NULL AS clock_back;

-- (C) no state and no start_date: the first request still has start_time
SELECT field_server('field_recent');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, message FROM zendesk_sync('field_recent', ARRAY['tickets', 'organizations']);
SELECT path, query->>'start_time' AS start_time, status FROM mock_requests() ORDER BY seq;

SELECT field_drop('field_recent');
SELECT field_mock_restore();
