--
-- Qual pushdown: id lookups read the show / show_many endpoints, lower
-- bounds on change times become the export's start_time, a small LIMIT asks
-- for a small page.  Every pushed qual is also rechecked locally, so the
-- answers equal the account's; the tests count the requests the mock served.
--
\getenv mock_url ZD_MOCK_URL

-- the foreign scan's numbers from EXPLAIN ANALYZE: rows it returned, rows
-- its Filter removed (returned + removed = records received), requests
CREATE FUNCTION scan_stats(q text)
RETURNS TABLE (rows_returned bigint, rows_removed bigint, requests bigint)
LANGUAGE plpgsql AS $$
DECLARE
  plan json;
  node jsonb;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) ' || q INTO plan;
  SELECT n INTO node
  FROM jsonb_path_query(plan::jsonb, '$.** ? (@."Node Type" == "Foreign Scan")') n LIMIT 1;
  RETURN QUERY SELECT (node->>'Actual Rows')::bigint,
                      coalesce((node->>'Rows Removed by Filter')::bigint, 0),
                      (node->>'Zendesk requests')::bigint;
END
$$;

-- the ticket ids GET /api/v2/tickets lists (it leaves out archived and
-- deleted tickets), read with curl and the test credentials
CREATE FUNCTION listed_ticket_ids() RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  page int := 1;
  body jsonb;
  url text;
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS api_out (line text);
  LOOP
    url := (SELECT mock_url FROM zd_test_config) || '/api/v2/tickets.json?per_page=100&page=' || page;
    TRUNCATE api_out;
    EXECUTE format($f$COPY api_out FROM PROGRAM %L WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')$f$,
                   format('curl -sS -f -u %s %s', quote_literal('admin@example.com/token:test-token'),
                          quote_literal(url)));
    SELECT string_agg(line, E'\n')::jsonb INTO body FROM api_out;
    RETURN QUERY SELECT (t->>'id')::bigint FROM jsonb_array_elements(body->'tickets') t;
    EXIT WHEN body->>'next_page' IS NULL OR page >= 20;
    page := page + 1;
  END LOOP;
END
$$;

-- id = const: one request to the show endpoint; the row is the account's,
-- except generated_timestamp, which show responses do not carry (NULL)
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
CREATE TEMP TABLE t42 AS SELECT * FROM zd.tickets WHERE id = 42;
SELECT path, status FROM mock_requests();
SELECT t.id, t.subject, t.status, t.generated_timestamp,
       t.data = a.record - 'generated_timestamp' AS same_data_but_generated_timestamp,
       a.record ? 'generated_timestamp' AS account_has_generated_timestamp
FROM t42 t JOIN mock_account('tickets') a USING (id);
-- the typed columns equal those of the full scan, generated_timestamp aside
SELECT to_jsonb(t) - 'generated_timestamp' - 'data' = to_jsonb(f) - 'generated_timestamp' - 'data' AS same_columns,
       t.data = f.data - 'generated_timestamp' AS same_data,
       f.generated_timestamp IS NOT NULL AS export_has_generated_timestamp
FROM t42 t JOIN zd.tickets f ON f.id + 0 = t.id;
-- users and organizations have show endpoints too
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT u.data = a.record AS same_user
FROM zd.users u JOIN mock_account('users') a USING (id)
WHERE u.id = (SELECT min(id) FROM mock_account('users'));
SELECT o.data = a.record AS same_organization
FROM zd.organizations o JOIN mock_account('organizations') a USING (id)
WHERE o.id = (SELECT min(id) FROM mock_account('organizations') WHERE record->>'deleted_at' IS NULL);
SELECT regexp_replace(path, '/[0-9]+\.json$', '/<id>.json') AS path, status FROM mock_requests() ORDER BY seq;

-- a missing id is no row and no error (the show endpoint answers 404)
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT count(*) AS rows FROM zd.tickets WHERE id = 999999;
SELECT path, status FROM mock_requests();

-- id IN (150 ids): show_many in 2 batches (100 + 50); missing ids are
-- left out.  Deleted tickets are "not found" for the show endpoints, so a
-- lookup does not return them (a full scan shows them as status deleted).
SELECT string_agg(id::text, ',' ORDER BY id) AS ids150
FROM (SELECT id FROM mock_account('tickets')
      UNION ALL SELECT 990000 + g FROM generate_series(1, 150 - (SELECT count(*) FROM mock_account('tickets'))) g) s
\gset
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
CREATE TEMP TABLE many AS SELECT id, data FROM zd.tickets WHERE id IN (:ids150);
SELECT path, array_length(string_to_array(query->>'ids', ','), 1) AS ids, status
FROM mock_requests() ORDER BY seq;
SELECT (SELECT count(*) FROM many) > 100 AS over_100_rows,
       (SELECT count(*) FROM many) =
       (SELECT count(*) FROM mock_account('tickets') WHERE record->>'status' <> 'deleted') AS same_as_account_not_deleted,
       (SELECT count(*) FROM many m JOIN mock_account('tickets') a USING (id)
         WHERE m.data IS DISTINCT FROM a.record - 'generated_timestamp') AS mismatches;
-- duplicates and NULLs in the list: each id asked for once
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT id FROM zd.tickets WHERE id = ANY ('{5,1,NULL,5,2}'::bigint[]) ORDER BY id;
SELECT path, query->>'ids' AS ids FROM mock_requests();
-- ticket events have no show endpoint: id = ... is checked locally
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.ticket_events WHERE id = 1;

-- id = $1 in a prepared statement: one request per execution, also once
-- the plan is generic
PREPARE ticket_by_id(bigint) AS SELECT id, subject FROM zd.tickets WHERE id = $1;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
EXECUTE ticket_by_id(1);
EXECUTE ticket_by_id(2);
EXECUTE ticket_by_id(5);
EXECUTE ticket_by_id(42);
EXECUTE ticket_by_id(1);
EXECUTE ticket_by_id(2);
EXECUTE ticket_by_id(999999);
SELECT path, status FROM mock_requests() ORDER BY seq;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE ticket_by_id(1);
-- a NULL parameter matches nothing: no row, no request
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
EXECUTE ticket_by_id(NULL);
SELECT count(*) AS requests FROM mock_requests();
DEALLOCATE ticket_by_id;

-- a nested loop join looks up each outer row: a parameterized scan
EXPLAIN (VERBOSE, COSTS OFF)
SELECT v.i, t.subject FROM (VALUES (1), (2), (5)) v(i) JOIN zd.tickets t ON t.id = v.i;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT v.i, t.subject FROM (VALUES (1), (2), (5)) v(i) JOIN zd.tickets t ON t.id = v.i ORDER BY 1;
SELECT path, status FROM mock_requests() ORDER BY seq;
-- rows_estimate tells the planner how large the account is: with a tiny
-- table one full export beats three lookups, so the join hashes instead
ALTER FOREIGN TABLE zd.tickets OPTIONS (ADD rows_estimate '5');
EXPLAIN (COSTS OFF)
SELECT v.i, t.subject FROM (VALUES (1), (2), (5)) v(i) JOIN zd.tickets t ON t.id = v.i;
ALTER FOREIGN TABLE zd.tickets OPTIONS (DROP rows_estimate);
ALTER FOREIGN TABLE zd.tickets OPTIONS (ADD rows_estimate 'many');
-- a semi join (IN (subquery)) is looked up the same way
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT id FROM zd.tickets WHERE id IN (SELECT 1 UNION SELECT 999999) ORDER BY id;
SELECT path, status FROM mock_requests() ORDER BY seq;

-- updated_at > constant: start_time is that time; the rows are exactly the
-- account's with updated_at after it, from fewer records than the account
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
CREATE TEMP TABLE recent AS SELECT id FROM zd.tickets WHERE updated_at > '2025-06-01';
SELECT path, (query->>'start_time')::bigint = extract(epoch FROM timestamptz '2025-06-01')::bigint AS start_time_is_bound,
       query->>'per_page' AS per_page
FROM mock_requests();
SELECT (SELECT count(*) FROM recent) > 0 AS has_rows,
       (SELECT count(*) FROM (SELECT id FROM recent
                              EXCEPT SELECT id FROM mock_account('tickets')
                                     WHERE (record->>'updated_at')::timestamptz > '2025-06-01') x) AS extra,
       (SELECT count(*) FROM (SELECT id FROM mock_account('tickets')
                                WHERE (record->>'updated_at')::timestamptz > '2025-06-01'
                              EXCEPT SELECT id FROM recent) x) AS missing;
SELECT rows_returned + rows_removed < (SELECT count(*) FROM mock_account('tickets')) AS fewer_records_than_account,
       requests
FROM scan_stats($$SELECT id FROM zd.tickets WHERE updated_at > '2025-06-01'$$);

-- F15: a pushed-down updated_at filter still returns archived tickets,
-- which GET /api/v2/tickets leaves out (the bound is an initplan parameter)
CREATE TEMP TABLE archived AS
SELECT a.id, (a.record->>'updated_at')::timestamptz AS updated_at
FROM mock_account('tickets') a
WHERE a.record->>'status' <> 'deleted' AND a.id NOT IN (SELECT listed_ticket_ids());
SELECT count(*) > 0 AS account_has_archived_tickets FROM archived;
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
CREATE TEMP TABLE since_archived AS
SELECT id FROM zd.tickets WHERE updated_at >= (SELECT min(updated_at) FROM archived);
SELECT path, (query->>'start_time')::bigint = (SELECT extract(epoch FROM min(updated_at))::bigint FROM archived) AS start_time_is_bound
FROM mock_requests();
SELECT (SELECT count(*) FROM archived WHERE id NOT IN (SELECT id FROM since_archived)) AS archived_missing,
       (SELECT count(*) FROM since_archived) =
       (SELECT count(*) FROM mock_account('tickets')
         WHERE (record->>'updated_at')::timestamptz >= (SELECT min(updated_at) FROM archived)) AS same_count_as_account;

-- generated_timestamp >= now() - interval '1 hour': the stable expression is
-- evaluated when the scan starts; start_time is about an hour ago
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT count(*) AS rows FROM zd.tickets WHERE generated_timestamp >= now() - interval '1 hour';
SELECT path, abs((query->>'start_time')::bigint - (extract(epoch FROM now()) - 3600)) < 120 AS start_time_an_hour_ago
FROM mock_requests();
-- a bound in the future is clamped: never later than the hold-back allows
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT count(*) AS rows FROM zd.tickets WHERE updated_at > now() + interval '1 day';
SELECT path, (query->>'start_time')::bigint BETWEEN extract(epoch FROM now())::bigint - 120
                                               AND extract(epoch FROM now())::bigint - 2 AS start_time_held_back
FROM mock_requests();

-- the other resources: ticket_events created_at / timestamp, users and
-- organizations updated_at; rows equal the account's
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
WITH c AS (
  SELECT (SELECT count(*) FROM zd.ticket_events WHERE created_at >= '2025-10-01') AS events,
         (SELECT count(*) FROM mock_account('ticket_events')
           WHERE (record->>'created_at')::timestamptz >= '2025-10-01') AS account_events,
         (SELECT count(*) FROM zd.ticket_events WHERE '2025-10-01'::date <= "timestamp") AS events_by_timestamp,
         (SELECT count(*) FROM zd.users WHERE updated_at >= '2025-01-01') AS users,
         (SELECT count(*) FROM mock_account('users')
           WHERE (record->>'updated_at')::timestamptz >= '2025-01-01') AS account_users,
         (SELECT count(*) FROM zd.organizations WHERE updated_at >= '2025-01-01') AS organizations,
         (SELECT count(*) FROM mock_account('organizations')
           WHERE (record->>'updated_at')::timestamptz >= '2025-01-01') AS account_organizations)
SELECT events > 0 AND events = account_events AND events_by_timestamp = account_events AS events_ok,
       users > 0 AND users = account_users AS users_ok,
       organizations > 0 AND organizations = account_organizations AS organizations_ok
FROM c;
SELECT path, to_timestamp((query->>'start_time')::bigint) AS start_time FROM mock_requests() ORDER BY seq;

-- a qual that cannot be pushed is checked locally; with a pushable one,
-- only that one is pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.tickets WHERE subject LIKE '%x%';
SELECT (SELECT count(*) FROM zd.tickets WHERE subject LIKE '%a%') =
       (SELECT count(*) FROM mock_account('tickets') WHERE record->>'subject' LIKE '%a%') AS like_same_as_account;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM zd.tickets WHERE updated_at > '2025-06-01' AND subject LIKE '%a%' AND (id = 1 OR id = 2);
SELECT (SELECT count(*) FROM zd.tickets WHERE updated_at > '2025-06-01' AND subject LIKE '%a%') =
       (SELECT count(*) FROM mock_account('tickets')
         WHERE record->>'subject' LIKE '%a%' AND (record->>'updated_at')::timestamptz > '2025-06-01') AS mixed_same_as_account;
SELECT array_agg(id ORDER BY id) AS or_ids FROM zd.tickets WHERE id = 1 OR id = 2;
-- volatile values are not pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.tickets WHERE updated_at > clock_timestamp() - interval '1 day';

-- LIMIT 3 straight over the scan asks for per_page=3, one request; with a
-- local qual or an ORDER BY the page size stays
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
SELECT count(*) AS rows FROM (SELECT id FROM zd.tickets LIMIT 3) s;
SELECT count(*) AS rows FROM (SELECT id FROM zd.tickets LIMIT 2 OFFSET 2) s;
SELECT count(*) AS rows FROM (SELECT id FROM zd.tickets WHERE subject LIKE '%a%' LIMIT 3) s;
SELECT count(*) AS rows FROM (SELECT id FROM zd.tickets ORDER BY id LIMIT 3) s;
SELECT path, query->>'per_page' AS per_page FROM mock_requests() ORDER BY seq;

-- EXPLAIN VERBOSE shows what was pushed and the request, never credentials
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.tickets WHERE id = 42;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.tickets WHERE id IN (1, 2, 3);
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.tickets WHERE updated_at > '2025-06-01';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.users WHERE updated_at >= now() - interval '1 hour';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zd.tickets LIMIT 3;

-- ANALYZE never spends API quota: the tables are skipped, no request
SELECT mock('DELETE', '/__mock/requests') IS NOT NULL AS cleared;
ANALYZE zd.tickets;
SELECT count(*) AS requests FROM mock_requests();

DROP FUNCTION scan_stats(text);
DROP FUNCTION listed_ticket_ids();
