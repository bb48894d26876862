--
-- Time-based pages overlap (field case F04): start_time is inclusive, so
-- the records on a page's last second come again at the start of the next
-- page, and the last record of a sync comes again at the start of the next
-- sync.  The local table never holds two rows for one id, never hits a
-- unique violation, and a re-read changes nothing.  A copy that differs
-- wins when its change time is newer, or equal and fetched later.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_dups', $$start_date '2023-11-03 08:26:40+00'$$);  -- 1699000000

-- page 1: 1000 organizations, the last three (998-1000) on second 1699100000
SELECT mock_script('/incremental/organizations', '{"start_time": "1699000000"}',
  time_page('organizations',
            (SELECT jsonb_agg(zd_org(i, CASE WHEN i >= 998 THEN 1699100000 ELSE 1699000000 + i * 100 END) ORDER BY i)
             FROM generate_series(1, 1000) i), 1699100000, false));
-- page 2: 998-1000 again (identical), then 1001-1200
SELECT mock_script('/incremental/organizations', '{"start_time": "1699100000"}',
  time_page('organizations',
            (SELECT jsonb_agg(zd_org(i, CASE WHEN i <= 1000 THEN 1699100000 ELSE 1699100000 + (i - 1000) * 500 END) ORDER BY i)
             FROM generate_series(998, 1200) i), 1699200000, true));
SELECT stream, status, pages, records, message FROM zendesk_sync('field_dups', ARRAY['organizations']);
SELECT count(*) AS rows, count(DISTINCT id) AS ids, min(id), max(id) FROM field_dups.organizations;
SELECT status, start_time AS checkpoint FROM field_state('field_dups', 'organizations');

-- the next sync starts on the boundary second and gets org 1200 again
SELECT now() AS before \gset
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/organizations', '{"start_time": "1699200000"}',
  time_page('organizations', jsonb_build_array(zd_org(1200, 1699200000)), 1699200000, true));
SELECT stream, status, pages, message FROM zendesk_sync('field_dups', ARRAY['organizations']);
SELECT query->>'start_time' AS start_time FROM mock_requests();
SELECT count(*) AS rows, count(*) FILTER (WHERE synced_at > :'before') AS changed FROM field_dups.organizations;

-- copies that differ: org 5002 changed within its second (same updated_at,
-- fetched later), org 5001 changed later (newer updated_at)
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT zendesk_sync_reset('field_dups', 'organizations', to_timestamp(1698000000));
SELECT mock_script('/incremental/organizations', '{"start_time": "1698000000"}',
  time_page('organizations', jsonb_build_array(zd_org(5001, 1698000100), zd_org(5002, 1698000200), zd_org(5003, 1698000200)),
            1698000200, false));
SELECT mock_script('/incremental/organizations', '{"start_time": "1698000200"}',
  time_page('organizations', jsonb_build_array(zd_org(5002, 1698000200, '{"name": "Org 5002, renamed in the same second"}'),
                                               zd_org(5003, 1698000200), zd_org(5004, 1698000300),
                                               zd_org(5001, 1698000400, '{"name": "Org 5001, renamed later"}')),
            1698000400, true));
SELECT stream, status, pages, records FROM zendesk_sync('field_dups', ARRAY['organizations']);
SELECT id, name, updated_at = to_timestamp(1698000400) AS newest FROM field_dups.organizations WHERE id > 5000 ORDER BY id;
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM field_dups.organizations;

-- a foreign scan drops identical repeats too: 1200 distinct rows
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock_script('/incremental/organizations', '{"start_time": "1699000000"}',
  time_page('organizations',
            (SELECT jsonb_agg(zd_org(i, CASE WHEN i >= 998 THEN 1699100000 ELSE 1699000000 + i * 100 END) ORDER BY i)
             FROM generate_series(1, 1000) i), 1699100000, false));
SELECT mock_script('/incremental/organizations', '{"start_time": "1699100000"}',
  time_page('organizations',
            (SELECT jsonb_agg(zd_org(i, CASE WHEN i <= 1000 THEN 1699100000 ELSE 1699100000 + (i - 1000) * 500 END) ORDER BY i)
             FROM generate_series(998, 1200) i), 1699200000, true));
CREATE FOREIGN TABLE field_dups_orgs (id bigint, name text) SERVER field_dups OPTIONS (resource 'organizations');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM field_dups_orgs;

SELECT field_drop('field_dups');
SELECT field_mock_restore();
