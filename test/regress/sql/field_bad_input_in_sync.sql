--
-- Bad input in the sync path ("Bad input and limits" of issue 4): a body
-- that is not JSON, HTML with status 200, JSON cut short, JSON of the wrong
-- shape (records key missing, records not an array, records not objects,
-- end_of_stream a string), a field of the wrong type, nesting too deep, a
-- body over max_response_size.  Each ends the stream with a clear
-- last_error; the backend survives; the checkpoint does not move past the
-- bad page and the local tables do not change.  \u0000 and invalid UTF-16
-- surrogates are replaced with U+FFFD (with a WARNING) and the row stored.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_bad', $$start_date '2023-11-13 18:26:40+00'$$);
SELECT mock_script('/incremental/organizations', '{"start_time": "1699900000"}',
  time_page('organizations', jsonb_build_array(zd_org(1, 1699900100), zd_org(2, 1699950000)), 1699950000, true));
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(1, 1699900100), zd_ticket(2, 1699950000)), 'QkFE', true));
SELECT stream, status, records FROM zendesk_sync('field_bad', ARRAY['tickets', 'organizations']);
CREATE TEMP TABLE bad_before AS
  SELECT stream, cursor, start_time FROM zendesk_sync_state WHERE server = 'field_bad';
CREATE TEMP TABLE bad_rows_before AS
  SELECT 'tickets' AS stream, md5(string_agg(data::text || synced_at, ',' ORDER BY id)) AS h FROM field_bad.tickets
  UNION ALL SELECT 'organizations', md5(string_agg(data::text || synced_at, ',' ORDER BY id)) FROM field_bad.organizations;

-- serve body as the next page of both streams, sync, and report
CREATE FUNCTION bad_page(body text) RETURNS TABLE (stream text, status text, last_error text,
                                                   checkpoint_unchanged boolean, rows_unchanged boolean)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mock('DELETE', '/__mock/faults');
  PERFORM mock_script('/incremental/organizations', '{"start_time": "1699950000"}', body, 1);
  PERFORM mock_script('/incremental/tickets/cursor', '{"cursor": "QkFE"}', replace(body, 'organizations', 'tickets'), 1);
  PERFORM count(*) FROM zendesk_sync('field_bad', ARRAY['tickets', 'organizations']);
  RETURN QUERY
    SELECT s.stream, s.status, s.last_error,
           s.cursor IS NOT DISTINCT FROM b.cursor AND s.start_time IS NOT DISTINCT FROM b.start_time,
           r.h = (CASE s.stream WHEN 'tickets' THEN (SELECT md5(string_agg(data::text || synced_at, ',' ORDER BY id)) FROM field_bad.tickets)
                                ELSE (SELECT md5(string_agg(data::text || synced_at, ',' ORDER BY id)) FROM field_bad.organizations) END)
    FROM zendesk_sync_state s JOIN bad_before b USING (stream) JOIN bad_rows_before r USING (stream)
    WHERE s.server = 'field_bad' ORDER BY 1;
END
$$;

-- not JSON at all
SELECT * FROM bad_page('Service Unavailable: back soon');
-- an HTML page with status 200
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('POST', '/__mock/faults', '{"kind": "html_200", "path": "/incremental", "times": 2}') IS NOT NULL AS armed;
SELECT stream, status, message ~ '^Zendesk returned an HTML page instead of JSON \(HTTP 200\)' AS says_html
FROM zendesk_sync('field_bad', ARRAY['tickets', 'organizations']);
SELECT count(*) AS unchanged FROM zendesk_sync_state s JOIN bad_before b USING (stream)
WHERE s.server = 'field_bad' AND s.cursor IS NOT DISTINCT FROM b.cursor AND s.start_time IS NOT DISTINCT FROM b.start_time;
-- JSON cut short
SELECT * FROM bad_page('{"organizations": [{"id": 3, "name": "Org 3", "updated_at": "2023-11-14T');
-- records key missing
SELECT * FROM bad_page('{"count": 1, "end_time": 1699960000, "end_of_stream": true, "after_cursor": "QkFF"}');
-- records not an array, records not objects
SELECT * FROM bad_page('{"organizations": {"id": 3}, "end_time": 1699960000, "end_of_stream": true, "after_cursor": "QkFF"}');
SELECT * FROM bad_page('{"organizations": [3, "x"], "end_time": 1699960000, "end_of_stream": true, "after_cursor": "QkFF"}');
-- end_of_stream a string
SELECT * FROM bad_page('{"organizations": [{"id": 3, "updated_at": "2023-11-14T21:56:40Z", "generated_timestamp": 1699999000}], "end_time": 1699999000, "end_of_stream": "yes", "after_cursor": "QkFF"}');
-- a field of the wrong type on the second record: the first is not kept either
SELECT * FROM bad_page('{"organizations": [{"id": 3, "name": "fine", "updated_at": "2023-11-14T21:56:40Z", "generated_timestamp": 1699999000},
                                          {"id": 4, "group_id": "abc", "requester_id": "abc", "updated_at": "2023-11-14T21:56:41Z", "generated_timestamp": 1699999001}],
                        "end_time": 1699999001, "end_of_stream": true, "after_cursor": "QkFF"}');
-- nesting deeper than the parser allows
SELECT * FROM bad_page('{"organizations": [{"id": 3, "details": ' || repeat('[', 500) || repeat(']', 500) || '}], "end_time": 1699999000, "end_of_stream": true, "after_cursor": "QkFF"}');
-- a body over max_response_size
ALTER SERVER field_bad OPTIONS (ADD max_response_size '2048');
SELECT * FROM bad_page('{"organizations": [{"id": 3, "details": "' || repeat('x', 5000) || '", "updated_at": "2023-11-14T21:56:40Z", "generated_timestamp": 1699999000}], "end_time": 1699999000, "end_of_stream": true, "after_cursor": "QkFF"}');
ALTER SERVER field_bad OPTIONS (DROP max_response_size);
-- the backend is fine and the next good page is stored
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/organizations', '{"start_time": "1699950000"}',
  time_page('organizations', jsonb_build_array(zd_org(2, 1699950000), zd_org(3, 1699960000)), 1699960000, true));
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "QkFE"}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(3, 1699960000)), 'QkFF', true));
SELECT stream, status, records FROM zendesk_sync('field_bad', ARRAY['tickets', 'organizations']);
SELECT stream, cursor, extract(epoch FROM start_time)::bigint AS start_time FROM zendesk_sync_state WHERE server = 'field_bad' ORDER BY stream;

-- \u0000 and invalid surrogates: replaced with U+FFFD, the rows stored
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/organizations', '{"start_time": "1699960000"}',
  '{"organizations": [{"id": 4, "name": "a\u0000b", "notes": "lone \ud800 high, lone \udc00 low, pair \ud83d\ude00", "updated_at": "2023-11-14T21:56:40Z"}],
    "count": 1, "end_time": 1699999000, "end_of_stream": true}');
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "QkFF"}',
  '{"tickets": [{"id": 4, "subject": "x\u0000y\u0000z", "description": "bad \udfff surrogate", "generated_timestamp": 1699999000}],
    "after_cursor": "QkFG", "end_of_stream": true}');
SELECT stream, status, records FROM zendesk_sync('field_bad', ARRAY['tickets', 'organizations']);
SELECT id, name = E'a\uFFFDb' AS name_replaced, data->>'name' = E'a\uFFFDb' AS data_replaced,
       notes = E'lone \uFFFD high, lone \uFFFD low, pair \U0001F600' AS surrogates_replaced
FROM field_bad.organizations WHERE id = 4;
SELECT id, subject = E'x\uFFFDy\uFFFDz' AS subject_replaced, description = E'bad \uFFFD surrogate' AS surrogate_replaced
FROM field_bad.tickets WHERE id = 4;
-- a foreign scan shows the WARNINGs
CREATE FOREIGN TABLE field_bad_orgs (id bigint, name text, notes text) SERVER field_bad OPTIONS (resource 'organizations');
ALTER SERVER field_bad OPTIONS (SET start_date '2023-11-14 05:06:40+00');  -- 1699938400
SELECT mock_script('/incremental/organizations', '{"start_time": "1699938400"}',
  '{"organizations": [{"id": 4, "name": "a\u0000b", "notes": "lone \ud800 high", "updated_at": "2023-11-14T21:56:40Z"}],
    "count": 1, "end_time": 1699999000, "end_of_stream": true}');
SELECT id, name = E'a\uFFFDb' AS name_replaced, notes = E'lone \uFFFD high' AS notes_replaced FROM field_bad_orgs;

DROP FUNCTION bad_page(text);
SELECT field_drop('field_bad');
SELECT field_mock_restore();
