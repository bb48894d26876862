--
-- Custom field values of every JSON type (field case F17): null, numeric
-- strings, leading zeros, booleans, arrays, dates as strings, big integers.
-- The jsonb columns round-trip exactly ("007" stays a string, arrays keep
-- their order), SQL over them does not fail on the array/bool/null values,
-- and a later update replaces the values (no stale ones).
--
SET client_min_messages = warning;
SELECT field_mock_reset();
SELECT field_server('field_cf', $$start_date '2023-11-13 18:26:40+00'$$);
SELECT '[{"id": 360000000001, "value": null}, {"id": 360000000002, "value": "10517014"},
         {"id": 360000000003, "value": "007"}, {"id": 360000000004, "value": true},
         {"id": 360000000005, "value": ["opt_a", "opt_b"]}, {"id": 360000000006, "value": "2024-02-29"},
         {"id": 360000000007, "value": "12.50"}, {"id": 360000000008, "value": 12345678901234}]' AS cf1 \gset
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699900000"}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(1, 1699950000,
    jsonb_build_object('custom_fields', :'cf1'::jsonb, 'fields', :'cf1'::jsonb))), 'Q0YxLw==', true));
SELECT stream, status, records FROM zendesk_sync('field_cf', ARRAY['tickets']);
SELECT custom_fields = :'cf1'::jsonb AS exact, fields = :'cf1'::jsonb AS fields_exact,
       data->'custom_fields' = :'cf1'::jsonb AS in_data
FROM field_cf.tickets WHERE id = 1;
-- every value as the JSON type it was sent as, and as text
SELECT (cf->>'id')::bigint AS field, jsonb_typeof(cf->'value') AS type, cf->>'value' AS text_value, cf->'value' AS json_value
FROM field_cf.tickets, jsonb_array_elements(custom_fields) cf ORDER BY 1;
-- a typed projection that does not fail on the other types
SELECT (cf->>'id')::bigint AS field,
       CASE WHEN jsonb_typeof(cf->'value') IN ('number', 'string') AND cf->>'value' ~ '^-?[0-9]+(\.[0-9]+)?$'
            THEN (cf->>'value')::numeric END AS as_numeric
FROM field_cf.tickets, jsonb_array_elements(custom_fields) cf ORDER BY 1;
-- the foreign table shows the same
CREATE FOREIGN TABLE field_cf_tickets (id bigint, custom_fields jsonb, fields jsonb) SERVER field_cf OPTIONS (resource 'tickets');
SELECT custom_fields = :'cf1'::jsonb AS exact, fields = :'cf1'::jsonb AS fields_exact FROM field_cf_tickets;

-- run 2: field 5 becomes ["opt_b"], field 4 becomes false
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT jsonb_set(jsonb_set(:'cf1'::jsonb, '{4,value}', '["opt_b"]'), '{3,value}', 'false') AS cf2 \gset
SELECT mock_script('/incremental/tickets/cursor', '{"cursor": "Q0YxLw=="}',
  cursor_page('tickets', jsonb_build_array(zd_ticket(1, 1699960000,
    jsonb_build_object('custom_fields', :'cf2'::jsonb, 'fields', :'cf2'::jsonb))), 'Q0YyLw==', true));
SELECT stream, status, records FROM zendesk_sync('field_cf', ARRAY['tickets']);
SELECT custom_fields = :'cf2'::jsonb AS replaced, fields = :'cf2'::jsonb AS fields_replaced,
       custom_fields->3->'value' AS field_4, custom_fields->4->'value' AS field_5
FROM field_cf.tickets WHERE id = 1;
SELECT count(*) AS rows FROM field_cf.tickets;

SELECT field_drop('field_cf');
SELECT field_mock_restore();
