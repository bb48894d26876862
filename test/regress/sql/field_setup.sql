--
-- Helpers for the field_* tests: the real-world failure cases of
-- the field cases of real Zendesk sync failures (F01..F30, see docs/reliability.md), each replayed against the mock.
--
-- Every field test uses a server of its own (so its zendesk_sync_state rows
-- and its local schema start empty), resets the mock to the data it needs,
-- and puts the mock back to the setup account when it ends.
--
SET client_min_messages = warning;

-- POST a control request whose body may be larger than a command line:
-- the body goes to curl on stdin through COPY TO PROGRAM.
CREATE FUNCTION mock_post(path text, body jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  url text := (SELECT mock_url FROM zd_test_config) || path;
BEGIN
  IF to_regclass('pg_temp.mock_post_body') IS NULL THEN
    CREATE TEMP TABLE mock_post_body (b text);
  END IF;
  TRUNCATE mock_post_body;
  INSERT INTO mock_post_body VALUES (body::text);
  -- csv with control characters as delimiter and quote: the JSON goes out as it is
  EXECUTE format($f$COPY (SELECT b FROM pg_temp.mock_post_body) TO PROGRAM %L
                    WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')$f$,
                 'curl -sS -f -o /dev/null -X POST -H "Content-Type: application/json" --data-binary @- '
                 || quote_literal(url));
END
$$;

-- script one answer of the mock: requests to path whose query contains
-- query get body (JSON text, sent as it is) for times requests (-1: all)
CREATE FUNCTION mock_script(path text, query jsonb, body text, times int DEFAULT -1)
RETURNS void LANGUAGE sql AS $$
  SELECT mock_post('/__mock/faults', jsonb_build_object('kind', 'json_body', 'path', path,
                   'query', query, 'times', times, 'body', body))
$$;

-- a minimal ticket as the exports send it (field-cases.md conventions)
CREATE FUNCTION zd_ticket(id bigint, ts bigint, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', id, 'status', 'open', 'subject', 'Ticket ' || id,
           'updated_at', to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'generated_timestamp', ts, 'custom_fields', '[]'::jsonb) || extra
$$;

-- tickets first..last, generated_timestamp spread from ts0 to ts1
CREATE FUNCTION zd_tickets(first bigint, last bigint, ts0 bigint, ts1 bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_agg(zd_ticket(i, ts0 + (ts1 - ts0) * (i - first) / greatest(last - first, 1)) ORDER BY i)
  FROM generate_series(first, last) i
$$;

-- a minimal organization (time-based export, change time updated_at)
CREATE FUNCTION zd_org(id bigint, ts bigint, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', id, 'name', 'Org ' || id,
           'updated_at', to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) || extra
$$;

-- a minimal ticket event (audit) at epoch ts
CREATE FUNCTION zd_event(id bigint, ticket_id bigint, ts bigint, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', id, 'ticket_id', ticket_id, 'timestamp', ts,
           'created_at', to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'updater_id', 501, 'via', 'Web form', 'event_type', 'Audit', 'child_events', '[]'::jsonb) || extra
$$;

-- a cursor export page
CREATE FUNCTION cursor_page(res text, records jsonb, after_cursor text, eos boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(res, records,
           'after_url', 'https://acme.zendesk.com/api/v2/incremental/' || res || '/cursor.json?cursor=' || after_cursor,
           'before_url', NULL, 'after_cursor', after_cursor, 'before_cursor', NULL,
           'end_of_stream', eos)::text
$$;

-- a time-based export page
CREATE FUNCTION time_page(res text, records jsonb, end_time bigint, eos boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(res, records, 'count', jsonb_array_length(records),
           'end_time', end_time, 'end_of_stream', eos,
           'next_page', 'https://acme.zendesk.com/api/v2/incremental/' || res || '.json?start_time=' || end_time)::text
$$;

-- a server of the test's own, with the test credentials
CREATE FUNCTION field_server(name text, options text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url %L%s)',
                 name, (SELECT mock_url FROM zd_test_config),
                 CASE WHEN options = '' THEN '' ELSE ', ' || options END);
  EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I OPTIONS (email %L, api_token %L)',
                 name, 'admin@example.com', 'test-token');
END
$$;

-- drop the server, its local tables and its sync state
CREATE FUNCTION field_drop(name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DROP SERVER %I CASCADE', name);
  EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', name);
  DELETE FROM zendesk_sync_state WHERE server = name;
  DELETE FROM zendesk_sync_runs WHERE server = name;
END
$$;

-- an empty mock account (or the given one), no faults, empty request log
CREATE FUNCTION field_mock_reset(account jsonb DEFAULT '{"tickets": 0, "users": 0, "organizations": 0}')
RETURNS boolean LANGUAGE sql AS $$
  SELECT mock('POST', '/__mock/reset', account) IS NOT NULL
$$;

-- back to the account of setup.sql, for the tests that follow
CREATE FUNCTION field_mock_restore() RETURNS boolean LANGUAGE sql AS $$
  SELECT field_mock_reset('{"tickets": 120, "users": 40, "organizations": 12, "events_per_ticket": 2, "seed": 1}')
$$;

-- the checkpoint of one stream, times as epoch seconds
CREATE FUNCTION field_state(srv text, strm text)
RETURNS TABLE (status text, cursor text, start_time bigint, high_water bigint, last_error text)
LANGUAGE sql AS $$
  SELECT status, cursor, extract(epoch FROM start_time)::bigint, extract(epoch FROM high_water)::bigint, last_error
  FROM zendesk_sync_state WHERE server = srv AND stream = strm
$$;

-- requests with their exact time on the mock clock
CREATE FUNCTION mock_request_times()
RETURNS TABLE (seq int, path text, query jsonb, status int, fault text, t double precision)
LANGUAGE sql AS $$
  SELECT (r->>'seq')::int, r->>'path', r->'query', (r->>'status')::int, r->>'fault',
         (r->>'time_float')::double precision
  FROM jsonb_array_elements(mock('GET', '/__mock/requests')) r
  ORDER BY 1
$$;

-- the running sync workers, read afresh (pg_stat_activity is otherwise a
-- snapshot for the whole transaction, so wait_for would never see a change)
CREATE FUNCTION sync_workers() RETURNS TABLE (pid int, wait_event text)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_stat_clear_snapshot();
  RETURN QUERY SELECT a.pid, a.wait_event::text FROM pg_stat_activity a
               WHERE a.backend_type = 'zendesk_fdw sync';
END
$$;

-- the helpers work: a scripted answer is served as it is
SELECT field_mock_reset();
SELECT field_server('field_setup_check', $$start_date '2023-11-13 00:00:00+00'$$);
SELECT mock_script('/incremental/tickets/cursor', '{"start_time": "1699833600"}',
                   cursor_page('tickets', jsonb_build_array(zd_ticket(1, 1699900000)), 'Zm9v+YmFy/MQ==', true));
CREATE FOREIGN TABLE field_setup_tickets (id bigint, generated_timestamp bigint, subject text)
  SERVER field_setup_check OPTIONS (resource 'tickets');
SELECT * FROM field_setup_tickets;
SELECT path, query, status, fault FROM mock_requests();
SELECT field_drop('field_setup_check');
SELECT field_mock_restore();
