--
-- A sync that dies mid-way resumes from its checkpoint (field case F26): the
-- rows of a page and the cursor after it commit in one transaction, so a
-- worker terminated during a request or in the middle of a page's upserts
-- leaves exactly the committed pages and their cursor; the rerun asks for
-- that cursor (never the original start_time) and ends with every ticket
-- once.
--
SET client_min_messages = warning;
SELECT field_mock_reset('{"tickets": 1000, "users": 0, "organizations": 0}');
SELECT field_server('field_crash', $$page_size '250'$$);
-- the cursor the mock gives after the n-th ticket of the export
CREATE TEMP TABLE export_order AS
  SELECT row_number() OVER (ORDER BY (record->>'generated_timestamp')::bigint, id) AS n, id,
         encode(convert_to(format('%s.0||%s|', record->>'generated_timestamp', id), 'UTF8'), 'base64') AS cursor_after
  FROM mock_account('tickets');

-- killed while page 3 is being requested
SELECT mock('POST', '/__mock/faults', '{"kind": "slow", "path": "/incremental/tickets/cursor", "after": 2, "delay": 30}') IS NOT NULL AS armed;
SELECT stream, status FROM zendesk_sync('field_crash', ARRAY['tickets'], wait => false);
SELECT wait_for($$(SELECT pages = 2 FROM zendesk_sync_state WHERE server = 'field_crash' AND stream = 'tickets')
                  AND (SELECT count(*) = 3 FROM mock_requests())$$);
SELECT pg_terminate_backend(pid) FROM sync_workers();
SELECT wait_for($$NOT EXISTS (SELECT 1 FROM sync_workers())$$);
SELECT f.status, f.cursor = (SELECT cursor_after FROM export_order WHERE n = 500) AS checkpoint_is_c2,
       (SELECT count(*) FROM field_crash.tickets) AS rows
FROM field_state('field_crash', 'tickets') f;
SELECT mock('DELETE', '/__mock/faults') IS NOT NULL AS cleared;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, records, message IS NULL AS clean_rerun FROM zendesk_sync('field_crash', ARRAY['tickets']);
SELECT seq - min(seq) OVER () + 1 AS request, query ? 'start_time' AS by_time,
       query->>'cursor' = (SELECT cursor_after FROM export_order WHERE n = 500) AS from_c2
FROM mock_requests() ORDER BY seq LIMIT 1;
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM field_crash.tickets;
SELECT * FROM compare_with_account('tickets', 'field_crash');

-- killed in the middle of page 3's upserts (a trigger holds the 600th row)
SELECT zendesk_sync_reset('field_crash', 'tickets');
TRUNCATE field_crash.tickets;
CREATE FUNCTION field_crash_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(60);
  RETURN NEW;
END
$$;
SELECT id AS held FROM export_order WHERE n = 600 \gset
CREATE TRIGGER hold BEFORE INSERT ON field_crash.tickets FOR EACH ROW
  WHEN (NEW.id = :held) EXECUTE FUNCTION field_crash_hold();
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status FROM zendesk_sync('field_crash', ARRAY['tickets'], wait => false);
SELECT wait_for($$EXISTS (SELECT 1 FROM sync_workers() WHERE wait_event = 'PgSleep')$$);
SELECT pg_terminate_backend(pid) FROM sync_workers();
SELECT wait_for($$NOT EXISTS (SELECT 1 FROM sync_workers())$$);
-- page 3's first 99 upserts are gone with its transaction; pages 1-2 and C2 stay
SELECT f.status, f.cursor = (SELECT cursor_after FROM export_order WHERE n = 500) AS checkpoint_is_c2,
       (SELECT count(*) FROM field_crash.tickets) AS rows,
       (SELECT count(*) FROM field_crash.tickets t JOIN export_order o USING (id) WHERE o.n > 500) AS rows_past_checkpoint
FROM field_state('field_crash', 'tickets') f;
DROP TRIGGER hold ON field_crash.tickets;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, records, message IS NULL AS clean_rerun FROM zendesk_sync('field_crash', ARRAY['tickets']);
SELECT query ? 'start_time' AS by_time,
       query->>'cursor' = (SELECT cursor_after FROM export_order WHERE n = 500) AS from_c2
FROM mock_requests() ORDER BY seq LIMIT 1;
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM field_crash.tickets;
SELECT * FROM compare_with_account('tickets', 'field_crash');

SELECT field_drop('field_crash');
DROP FUNCTION field_crash_hold();
SELECT field_mock_restore();
