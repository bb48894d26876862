--
-- jsonb columns are written straight in jsonb's binary format (jsonb_write.c):
-- the result must be exactly what PostgreSQL's own jsonb input makes of the
-- same JSON (key order, offsets every 32 entries, numeric padding, nesting,
-- numbers kept as written: 12.50 stays 12.50)
--
SELECT mock('POST', '/__mock/faults', $fault${"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "{\"organizations\": [{\"id\": 11, \"updated_at\": \"2025-01-02T03:04:05Z\", \"name\": \"layout one\", \"zz\": 0, \"zz\": 1, \"ab\": \"x\", \"b\": [0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0, 10.5, 12.0, 13.5, 15.0, 16.5, 18.0, 19.5, 21.0, 22.5, 24.0, 25.5, 27.0, 28.5, 30.0, 31.5, 33.0, 34.5, 36.0, 37.5, 39.0, 40.5, 42.0, 43.5, 45.0, 46.5, 48.0, 49.5, 51.0, 52.5, 54.0, 55.5, 57.0, 58.5], \"aa\": {\"y\": null, \"x\": [], \"w\": {}}, \"many\": {\"k40\": 40, \"k39\": 39, \"k38\": 38, \"k37\": 37, \"k36\": 36, \"k35\": 35, \"k34\": 34, \"k33\": 33, \"k32\": 32, \"k31\": 31, \"k30\": 30, \"k29\": 29, \"k28\": 28, \"k27\": 27, \"k26\": 26, \"k25\": 25, \"k24\": 24, \"k23\": 23, \"k22\": 22, \"k21\": 21, \"k20\": 20, \"k19\": 19, \"k18\": 18, \"k17\": 17, \"k16\": 16, \"k15\": 15, \"k14\": 14, \"k13\": 13, \"k12\": 12, \"k11\": 11, \"k10\": 10, \"k09\": 9, \"k08\": 8, \"k07\": 7, \"k06\": 6, \"k05\": 5, \"k04\": 4, \"k03\": 3, \"k02\": 2, \"k01\": 1}, \"num\": 12.50, \"neg\": -3, \"e\": 1e3, \"t\": true, \"f\": false, \"n\": null, \"big\": 18446744073709551615, \"ünï\": \"cödé\", \"nested\": [[1, [2, {\"x\": [], \"é\": \"a\"}]]], \"tags\": [\"b\", \"a\"], \"s\": \"with \\\"quotes\\\" and \\\\ and \\n\"}, {\"id\": 12, \"updated_at\": \"2025-01-02T03:04:05Z\", \"name\": \"layout two\", \"zz\": \"now a string\", \"ab\": \"x\", \"b\": [0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0, 10.5, 12.0, 13.5, 15.0, 16.5, 18.0, 19.5, 21.0, 22.5, 24.0, 25.5, 27.0, 28.5, 30.0, 31.5, 33.0, 34.5, 36.0, 37.5, 39.0, 40.5, 42.0, 43.5, 45.0, 46.5, 48.0, 49.5, 51.0, 52.5, 54.0, 55.5, 57.0, 58.5], \"aa\": {\"y\": null, \"x\": [], \"w\": {}}, \"many\": {\"k01\": 1, \"k02\": 2}, \"num\": 12.50, \"neg\": -3, \"e\": 1e3, \"t\": true, \"f\": false, \"n\": null, \"big\": 18446744073709551615, \"ünï\": \"cödé\", \"nested\": [[1, [2, {\"x\": [], \"é\": \"a\"}]]], \"tags\": [\"b\", \"a\"], \"s\": \"with \\\"quotes\\\" and \\\\ and \\n\"}, {\"s\": \"with \\\"quotes\\\" and \\\\ and \\n\", \"tags\": [\"b\", \"a\"], \"nested\": [[1, [2, {\"x\": [], \"é\": \"a\"}]]], \"ünï\": \"cödé\", \"big\": 18446744073709551615, \"n\": null, \"f\": false, \"t\": true, \"e\": 1e3, \"neg\": -3, \"num\": 12.50, \"many\": {\"k40\": 40, \"k39\": 39, \"k38\": 38, \"k37\": 37, \"k36\": 36, \"k35\": 35, \"k34\": 34, \"k33\": 33, \"k32\": 32, \"k31\": 31, \"k30\": 30, \"k29\": 29, \"k28\": 28, \"k27\": 27, \"k26\": 26, \"k25\": 25, \"k24\": 24, \"k23\": 23, \"k22\": 22, \"k21\": 21, \"k20\": 20, \"k19\": 19, \"k18\": 18, \"k17\": 17, \"k16\": 16, \"k15\": 15, \"k14\": 14, \"k13\": 13, \"k12\": 12, \"k11\": 11, \"k10\": 10, \"k09\": 9, \"k08\": 8, \"k07\": 7, \"k06\": 6, \"k05\": 5, \"k04\": 4, \"k03\": 3, \"k02\": 2, \"k01\": 1}, \"aa\": {\"y\": null, \"x\": [], \"w\": {}}, \"b\": [0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0, 10.5, 12.0, 13.5, 15.0, 16.5, 18.0, 19.5, 21.0, 22.5, 24.0, 25.5, 27.0, 28.5, 30.0, 31.5, 33.0, 34.5, 36.0, 37.5, 39.0, 40.5, 42.0, 43.5, 45.0, 46.5, 48.0, 49.5, 51.0, 52.5, 54.0, 55.5, 57.0, 58.5], \"ab\": \"x\", \"zz\": 1, \"name\": \"layout three\", \"updated_at\": \"2025-01-02T03:04:05Z\", \"id\": 13}], \"end_of_stream\": true, \"end_time\": 1, \"count\": 3}"}$fault$) IS NOT NULL AS armed;
CREATE TEMP TABLE layout AS SELECT id, name, data FROM zd.organizations;
SELECT id, name,
       data::text = (data::text::jsonb)::text AS same_text,
       data = data::text::jsonb AS same_value,
       pg_column_size(data) = pg_column_size(data::text::jsonb) AS same_size
FROM layout ORDER BY id;
SELECT id, data->'zz' AS zz, data->'many'->'k33' AS k33, data->'many'->'k01' AS k01,
       data->'b'->39 AS b39, data->'big' AS big, data->'num' AS num, data->'e' AS e,
       data->'ünï' AS unicode_key, data#>'{nested,0,1,1,é}' AS deep,
       data->'aa' AS aa, data->'n' AS n, data ? 'ab' AS has_ab
FROM layout ORDER BY id;
-- containment and path queries use the binary layout
SELECT count(*) FILTER (WHERE data @> '{"many": {"k40": 40}}') AS contains_k40,
       count(*) FILTER (WHERE data @> '{"tags": ["a"]}') AS contains_tag,
       count(*) FILTER (WHERE data @? '$.b[*] ? (@ == 58.5)') AS path_match
FROM layout;
SELECT (SELECT array_agg(k ORDER BY n) FROM jsonb_object_keys(data) WITH ORDINALITY AS x(k, n)) AS stored_key_order
FROM layout WHERE id = 13;
-- An object's remembered key order must outlive the writing of its values:
-- here 40 nested objects of new shapes evict every remembered shape, the
-- enclosing record's included, before its later values b and c are written
-- (found by the fuzzer: those values were written by the evicting shape's
-- order; the record came out short)
CREATE TEMP TABLE evicting AS
SELECT json_build_object('id', 14, 'updated_at', '2025-01-02T03:04:05Z', 'name', 'evicts its own shape',
         'a', (SELECT json_agg(json_build_object('s' || g, g)) FROM generate_series(1, 40) g),
         'b', 2, 'c', json_build_object('d', 3)) AS rec;
SELECT mock('POST', '/__mock/faults', jsonb_build_object('kind', 'json_body',
         'path', '/api/v2/incremental/organizations',
         'body', json_build_object('organizations', json_build_array(rec),
                                   'end_of_stream', true, 'end_time', 1, 'count', 1)::text)) IS NOT NULL AS armed
FROM evicting;
SELECT o.id, o.data = e.rec::jsonb AS same_value, o.data::text = e.rec::jsonb::text AS same_text,
       pg_column_size(o.data) = pg_column_size(e.rec::jsonb) AS same_size,
       o.data->'b' AS b, o.data#>'{c,d}' AS c_d, o.data#>'{a,39,s40}' AS a_39_s40,
       (SELECT count(*) FROM jsonb_object_keys(o.data)) AS nkeys
FROM zd.organizations o, evicting e;
-- A JSON number beyond a double's range is still a number (jsonb_in keeps it
-- as numeric); only json-c's NaN/Infinity are not (found by the fuzzer)
SELECT mock('POST', '/__mock/faults', $fault${"kind": "json_body", "path": "/api/v2/incremental/organizations", "body": "{\"organizations\": [{\"id\": 15, \"updated_at\": \"2025-01-02T03:04:05Z\", \"name\": \"beyond double\", \"neg\": -1e32300, \"pos\": 1E+400, \"tiny\": 1e-400}], \"end_of_stream\": true, \"end_time\": 1, \"count\": 1}"}$fault$) IS NOT NULL AS armed;
SELECT id, data = '{"id": 15, "updated_at": "2025-01-02T03:04:05Z", "name": "beyond double", "neg": -1e32300, "pos": 1E+400, "tiny": 1e-400}'::jsonb AS same_value,
       jsonb_typeof(data->'neg') AS neg_type, jsonb_typeof(data->'pos') AS pos_type,
       (data->>'pos')::numeric = 1e400 AS pos_value, (data->>'tiny')::numeric = 1e-400 AS tiny_value
FROM zd.organizations;
