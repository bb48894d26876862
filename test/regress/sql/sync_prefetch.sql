--
-- The worker asks for the next export page before it writes the current one,
-- so Zendesk builds page 2 while page 1 is written.  A trigger holds page 1's
-- write until the test lets go: the order is observed, not timed.  A page
-- that fails while its successor is on the way leaves the connection fit for
-- the next stream.
--
SET client_min_messages = warning;
SELECT field_mock_reset('{"tickets": 1500, "users": 40, "organizations": 0}');
SELECT field_server('sync_prefetch', $$page_size '1000'$$);
SELECT stream, status, pages, records FROM zendesk_sync('sync_prefetch', ARRAY['tickets']);
SELECT zendesk_sync_reset('sync_prefetch', 'tickets');
TRUNCATE sync_prefetch.tickets;

CREATE FUNCTION sync_prefetch_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_lock_shared(4242);
  PERFORM pg_advisory_unlock_shared(4242);
  RETURN NULL;
END $$;
CREATE TRIGGER hold BEFORE INSERT ON sync_prefetch.tickets
  FOR EACH STATEMENT EXECUTE FUNCTION sync_prefetch_hold();

SELECT pg_advisory_lock(4242);
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status FROM zendesk_sync('sync_prefetch', ARRAY['tickets'], wait => false);
-- page 1's write waits on the lock, and page 2 has been asked for already
SELECT wait_for($$EXISTS (SELECT 1 FROM sync_workers() WHERE wait_event = 'advisory')$$);
SELECT wait_for($$(SELECT count(*) FROM mock_requests()) = 2$$);
SELECT seq - min(seq) OVER () + 1 AS request, status, query ? 'start_time' AS by_time,
       query ? 'cursor' AS by_cursor
FROM mock_requests() ORDER BY seq;
SELECT f.cursor IS NULL AS page_1_not_committed FROM field_state('sync_prefetch', 'tickets') f;
SELECT pg_advisory_unlock(4242);
SELECT wait_for($$NOT EXISTS (SELECT 1 FROM sync_workers())$$);
-- the answer that was on its way served page 2: no third request
SELECT count(*) AS requests FROM mock_requests();
SELECT stream, status, pages, records FROM zendesk_sync_runs
WHERE server = 'sync_prefetch' ORDER BY run_id DESC LIMIT 1;
SELECT * FROM compare_with_account('tickets', 'sync_prefetch');

-- page 1 of tickets fails while page 2 is on its way; the users stream that
-- follows on the same connection starts afresh and completes
DROP TRIGGER hold ON sync_prefetch.tickets;
CREATE FUNCTION sync_prefetch_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'refused by a trigger';
END $$;
CREATE TRIGGER fail BEFORE INSERT ON sync_prefetch.tickets
  FOR EACH STATEMENT EXECUTE FUNCTION sync_prefetch_fail();
SELECT zendesk_sync_reset('sync_prefetch', 'tickets');
TRUNCATE sync_prefetch.tickets;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT stream, status, pages, records, message
FROM zendesk_sync('sync_prefetch', ARRAY['tickets', 'users']);
SELECT path ~ 'tickets' AS tickets, status, count(*) AS requests
FROM mock_requests() GROUP BY 1, 2 ORDER BY 1, 2;
SELECT * FROM compare_with_account('users', 'sync_prefetch');

DROP FUNCTION sync_prefetch_hold() CASCADE;
DROP FUNCTION sync_prefetch_fail() CASCADE;
SELECT field_drop('sync_prefetch');
SELECT field_mock_restore();
