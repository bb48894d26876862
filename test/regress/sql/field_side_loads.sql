--
-- Side-loaded users (field case F29) are per page: a user repeats on many
-- pages in different versions, and only the users a page refers to are
-- there, some maybe missing.  zendesk_fdw ignores side-loads on ticket
-- pages (tickets are stored whatever the users array says; no foreign-key
-- coupling) and takes users from their own export, where the newest copy
-- of a user wins and users absent from a page are never deleted locally.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_side', $$start_date '2023-11-13 18:26:40+00'$$);
-- ticket pages that carry users side-loads, one user missing (503)
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  '{"tickets": ' || jsonb_build_array(zd_ticket(1, 1699900100, '{"requester_id": 501}'), zd_ticket(2, 1699900200, '{"requester_id": 502}'),
                                       zd_ticket(3, 1699900300, '{"requester_id": 501}'))::text ||
  ', "users": [{"id": 501, "name": "A. Test", "updated_at": "2023-11-13T18:26:40Z"}, {"id": 502, "name": "B. Test", "updated_at": "2023-11-13T18:26:40Z"}]' ||
  ', "after_cursor": "U0wx", "before_cursor": null, "after_url": null, "before_url": null, "end_of_stream": false}');
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "U0wx"}',
  '{"tickets": ' || jsonb_build_array(zd_ticket(4, 1699900400, '{"requester_id": 501}'), zd_ticket(5, 1699900500, '{"requester_id": 503}'))::text ||
  ', "users": [{"id": 501, "name": "A. Test-Renamed", "updated_at": "2023-11-14T08:20:00Z"}]' ||
  ', "after_cursor": "U0wy", "before_cursor": null, "after_url": null, "before_url": null, "end_of_stream": true}');
SELECT stream, status, records FROM zendesk_sync('field_side', ARRAY['tickets']);
SELECT id, requester_id, data ? 'users' AS has_users_key FROM field_side.tickets ORDER BY id;
SELECT to_regclass('field_side.users') AS users_table_from_side_loads;

-- the users export: 501 twice in two versions, 502 once; a local user 600
-- that the export does not mention stays
SELECT mock_script('/incremental/users/cursor', '{"start_time": "1699900000"}',
  cursor_page('users', '[{"id": 501, "name": "A. Test", "updated_at": "2023-11-13T18:26:40Z"},
                          {"id": 502, "name": "B. Test", "updated_at": "2023-11-13T18:26:40Z"}]', 'VUwx', false));
SELECT mock_script('/incremental/users/cursor', '{"cursor": "VUwx"}',
  cursor_page('users', '[{"id": 501, "name": "A. Test-Renamed", "updated_at": "2023-11-14T08:20:00Z"}]', 'VUwy', true));
SELECT stream, status, records FROM zendesk_sync('field_side', ARRAY['users']);
INSERT INTO field_side.users (id, name, data) VALUES (600, 'Local only', '{"id": 600}');
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/users/cursor', '{"cursor": "VUwy"}', cursor_page('users', '[]', 'VUwy', true));
SELECT stream, status, records FROM zendesk_sync('field_side', ARRAY['users']);
SELECT id, name, count(*) OVER (PARTITION BY id) AS copies FROM field_side.users ORDER BY id;

SELECT field_drop('field_side');
SELECT field_mock_restore();
