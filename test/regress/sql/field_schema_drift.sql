--
-- Zendesk adds, removes and nests fields without notice (field case F28).
-- A sync after the change needs no DDL: new keys are kept in data (nested
-- objects whole), typed columns that now have a value get it, keys that
-- disappeared become NULL, and a column the table declares but no payload
-- ever carries reads as NULL, in the local table and in a foreign table.
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_drift', $$start_date '2023-11-13 18:26:40+00'$$);
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(1, 1699950000, '{"forum_topic_id": 5, "via": {"channel": "web"}}'),
                                           zd_ticket(2, 1699950001, '{"forum_topic_id": 6, "via": {"channel": "email"}}')),
              'RFIx', true));
SELECT stream, status, records FROM zendesk_sync('field_drift', ARRAY['tickets']);
SELECT id, forum_topic_id, custom_status_id, from_messaging_channel, via FROM field_drift.tickets ORDER BY id;
-- a column added by hand, which no payload carries
ALTER TABLE field_drift.tickets ADD COLUMN satisfaction_probability numeric;

-- run 2: custom_status_id and from_messaging_channel appear, via grows a
-- nested source, forum_topic_id is gone, and a key nobody knows appears
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT '{"channel": "any_channel", "source": {"from": {"service_info": {"name": "x"}, "supports_channelback": true,
         "registered_integration_service_name": "y"}, "to": {}, "rel": null}}' AS via2 \gset
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "RFIx"}',
  cursor_page('tickets', jsonb_build_array(
    zd_ticket(1, 1699960000, jsonb_build_object('custom_status_id', 123, 'from_messaging_channel', false,
                                                'via', :'via2'::jsonb, 'brand_new_key', jsonb_build_object('deep', jsonb_build_array(1, 'two', NULL)))),
    zd_ticket(2, 1699960001, '{"custom_status_id": 124}')), 'RFIy', true));
SELECT stream, status, records, message FROM zendesk_sync('field_drift', ARRAY['tickets']);
SELECT id, forum_topic_id, custom_status_id, from_messaging_channel, satisfaction_probability,
       via->'source'->'from'->'service_info'->>'name' AS via_source_name
FROM field_drift.tickets ORDER BY id;
SELECT id, data ? 'forum_topic_id' AS has_forum_topic_id, data->'brand_new_key' AS brand_new_key,
       data->'via' = :'via2'::jsonb AS via_whole
FROM field_drift.tickets ORDER BY id;

-- a foreign table declaring columns that never appear
CREATE FOREIGN TABLE field_drift_tickets (id bigint, custom_status_id bigint, satisfaction_probability numeric,
                                          brand_new_key jsonb, forum_topic_id bigint)
  SERVER field_drift OPTIONS (resource 'tickets');
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(1, 1699960000, '{"custom_status_id": 123, "brand_new_key": {"deep": [1]}}')), 'RFIz', true));
SELECT * FROM field_drift_tickets;

SELECT field_drop('field_drift');
SELECT field_mock_restore();
