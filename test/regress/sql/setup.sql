--
-- Shared setup for the regression suite: a helper that drives the mock
-- Zendesk server's control API, the server and user mapping used by the
-- later tests.  The mock's URL comes from the environment (ZD_MOCK_URL).
--
\getenv mock_url ZD_MOCK_URL
CREATE TABLE zd_test_config (mock_url text NOT NULL);
INSERT INTO zd_test_config VALUES (:'mock_url');

-- mock(method, path, body): call the mock's control API, return its JSON.
-- curl -f turns an HTTP error into a failed COPY, so a broken control call
-- fails the test instead of passing silently.
CREATE FUNCTION mock(method text, path text, body jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  url text := (SELECT mock_url FROM zd_test_config) || path;
  cmd text;
  result text;
BEGIN
  IF body IS NULL THEN
    cmd := format('curl -sS -f -X %s %s', method, quote_literal(url));
  ELSE
    cmd := format('echo %s | base64 -d | curl -sS -f -X %s -H "Content-Type: application/json" --data-binary @- %s',
                  replace(encode(convert_to(body::text, 'UTF8'), 'base64'), E'\n', ''),
                  method, quote_literal(url));
  END IF;
  IF to_regclass('pg_temp.mock_out') IS NULL THEN
    CREATE TEMP TABLE mock_out (line text);
  END IF;
  TRUNCATE mock_out;
  EXECUTE format($f$COPY mock_out FROM PROGRAM %L WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')$f$, cmd);
  SELECT string_agg(line, E'\n') INTO result FROM mock_out;
  RETURN result::jsonb;
END
$$;

-- the requests the mock served since the last clear, as rows
CREATE FUNCTION mock_requests()
RETURNS TABLE (seq int, path text, query jsonb, status int, fault text)
LANGUAGE sql AS $$
  SELECT (r->>'seq')::int, r->>'path', r->'query', (r->>'status')::int, r->>'fault'
  FROM jsonb_array_elements(mock('GET', '/__mock/requests')) r
  ORDER BY 1
$$;

-- the mock's own record of the account for one resource
CREATE FUNCTION mock_account(resource text)
RETURNS TABLE (id bigint, record jsonb)
LANGUAGE sql AS $$
  SELECT (r->>'id')::bigint, r
  FROM jsonb_array_elements(mock('GET', '/__mock/account/' || resource)) r
$$;

-- run a statement, report SQLSTATE and message instead of failing
CREATE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SELECT mock('POST', '/__mock/reset', '{"tickets": 120, "users": 40, "organizations": 12, "events_per_ticket": 2, "seed": 1}') IS NOT NULL AS reset;

CREATE SERVER zendesk FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zendesk
  OPTIONS (email 'admin@example.com', api_token 'test-token');

-- the mock holds back 1 s; the product default (61 s) would wait minutes
ALTER DATABASE :"DBNAME" SET zendesk_fdw.holdback = 2;
ALTER DATABASE :"DBNAME" SET zendesk_fdw.max_retry_wait = 2;

-- compare a local (synced) table with the mock's account, record by record
CREATE FUNCTION compare_with_account(res text, target_schema text DEFAULT 'zendesk')
RETURNS TABLE (resource text, local_rows bigint, account_rows bigint,
               missing bigint, extra bigint, different bigint)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format($q$
    WITH a AS MATERIALIZED (SELECT * FROM mock_account(%1$L)),
         l AS MATERIALIZED (SELECT id, data FROM %2$I.%1$I)
    SELECT %1$L::text,
           (SELECT count(*) FROM l), (SELECT count(*) FROM a),
           (SELECT count(*) FROM a WHERE NOT EXISTS (SELECT 1 FROM l WHERE l.id = a.id)),
           (SELECT count(*) FROM l WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.id = l.id)),
           (SELECT count(*) FROM a JOIN l USING (id) WHERE l.data IS DISTINCT FROM a.record)
  $q$, res, target_schema);
END
$$;

-- poll (bounded) until a condition holds; fails loudly instead of hanging
CREATE FUNCTION wait_for(cond text, timeout interval DEFAULT '30 seconds')
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + timeout;
  ok boolean;
BEGIN
  LOOP
    EXECUTE 'SELECT (' || cond || ')' INTO ok;
    IF ok THEN RETURN true; END IF;
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION 'timed out waiting for: %', cond;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
END
$$;
