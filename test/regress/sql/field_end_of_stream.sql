--
-- end_of_stream is the only stop signal (field case F01): the last page of
-- a time-based export still has a next_page and the last page of a cursor
-- export still has an after_cursor.  One request per sync; the checkpoint
-- is the last end_time / after_cursor; a server that keeps returning the
-- same position with end_of_stream false is stopped with "no progress".
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_eos', $$start_date '2023-11-14 19:26:40+00'$$);  -- 1699990000

-- time-based (organizations): the final page has next_page and end_of_stream true;
-- asking again for start_time=end_time returns the boundary record forever
SELECT mock_script('/incremental/organizations', '{"start_time": "1699990000"}',
  time_page('organizations', '[{"id": 101, "name": "Org 101", "updated_at": "2023-11-14T20:50:00Z"},
                               {"id": 102, "name": "Org 102", "updated_at": "2023-11-14T21:56:40Z"}]', 1699999000, true));
SELECT mock_script('/incremental/organizations', '{"start_time": "1699999000"}',
  time_page('organizations', '[{"id": 102, "name": "Org 102", "updated_at": "2023-11-14T21:56:40Z"}]', 1699999000, true));
SELECT stream, status, pages, records, message FROM zendesk_sync('field_eos', ARRAY['organizations']);
SELECT count(*) AS requests, min(query->>'start_time') AS start_time FROM mock_requests();
SELECT id, name FROM field_eos.organizations ORDER BY id;
SELECT status, start_time AS checkpoint FROM field_state('field_eos', 'organizations');
-- the next run: one request from the checkpoint, nothing rewritten
SELECT now() AS before \gset
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, message FROM zendesk_sync('field_eos', ARRAY['organizations']);
SELECT count(*) AS requests, min(query->>'start_time') AS start_time FROM mock_requests();
SELECT count(*) AS rows, count(*) FILTER (WHERE synced_at > :'before') AS rewritten FROM field_eos.organizations;

-- cursor (tickets): the final page has an after_cursor; it is stored as it
-- is (+ / = included) and the next run asks for it
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699990000"}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(101, 1699995000), zd_ticket(102, 1699999000)), 'Zm9v+YmFy/MQ==', true));
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "Zm9v+YmFy/MQ=="}',
  cursor_page('tickets', '[]', 'Zm9v+YmFy/MQ==', true));
SELECT stream, status, pages, records, message FROM zendesk_sync('field_eos', ARRAY['tickets']);
SELECT count(*) AS requests FROM mock_requests();
SELECT id, status FROM field_eos.tickets ORDER BY id;
SELECT status, cursor FROM field_state('field_eos', 'tickets');
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, records FROM zendesk_sync('field_eos', ARRAY['tickets']);
SELECT query FROM mock_requests();

-- defence in depth: the same after_cursor again with end_of_stream false
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "Zm9v+YmFy/MQ=="}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(103, 1699999500)), 'Zm9v+YmFy/MQ==', false));
SELECT stream, status, message FROM zendesk_sync('field_eos', ARRAY['tickets']);
SELECT count(*) AS requests FROM mock_requests();
SELECT status, cursor, last_error ~ 'no progress' AS says_no_progress FROM field_state('field_eos', 'tickets');
SELECT count(*) AS rows FROM field_eos.tickets;

-- a cursor that comes back after one step (A -> B -> A) is a loop too
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "Zm9v+YmFy/MQ=="}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(104, 1699999600)), 'QkJC/Qg==', false));
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "QkJC/Qg=="}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(105, 1699999700)), 'Zm9v+YmFy/MQ==', false));
SELECT stream, status, message FROM zendesk_sync('field_eos', ARRAY['tickets']);
SELECT count(*) AS requests FROM mock_requests();
SELECT status, cursor, last_error ~ 'no progress' AS says_no_progress FROM field_state('field_eos', 'tickets');
-- page A -> B was committed with its checkpoint; the looping page was not
SELECT id FROM field_eos.tickets ORDER BY id;

-- time-based: next_page equal to the request, end_of_stream false
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/organizations', '{"start_time": "1699999000"}',
  time_page('organizations', '[{"id": 102, "name": "Org 102", "updated_at": "2023-11-14T21:56:40Z"}]', 1699999000, false));
SELECT stream, status, message FROM zendesk_sync('field_eos', ARRAY['organizations']);
SELECT count(*) AS requests FROM mock_requests();
SELECT status, start_time AS checkpoint, last_error ~ 'no progress' AS says_no_progress
FROM field_state('field_eos', 'organizations');

-- a foreign scan stops on end_of_stream as well: one request
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/organizations', '{"start_time": "1699990000"}',
  time_page('organizations', '[{"id": 101, "name": "Org 101", "updated_at": "2023-11-14T20:50:00Z"},
                               {"id": 102, "name": "Org 102", "updated_at": "2023-11-14T21:56:40Z"}]', 1699999000, true));
CREATE FOREIGN TABLE field_eos_orgs (id bigint, name text) SERVER field_eos OPTIONS (resource 'organizations');
SELECT * FROM field_eos_orgs ORDER BY id;
SELECT count(*) AS requests FROM mock_requests();

SELECT field_drop('field_eos');
SELECT field_mock_restore();
