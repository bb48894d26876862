--
-- IMPORT FOREIGN SCHEMA creates one typed foreign table per resource.
--
CREATE SCHEMA zd;
IMPORT FOREIGN SCHEMA zendesk FROM SERVER zendesk INTO zd;
SELECT c.relname, ft.ftoptions
FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
WHERE c.relnamespace = 'zd'::regnamespace ORDER BY 1;
\d zd.tickets
\d zd.ticket_events
-- ids are bigint, times timestamptz, lists arrays, nested objects jsonb
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = 'zd' AND column_name IN ('id', 'updated_at', 'tags', 'collaborator_ids', 'via', 'data', 'domain_names', 'timestamp')
ORDER BY 1, 2;

-- LIMIT TO / EXCEPT
CREATE SCHEMA zd_some;
IMPORT FOREIGN SCHEMA zendesk LIMIT TO (users, organizations) FROM SERVER zendesk INTO zd_some;
IMPORT FOREIGN SCHEMA zendesk EXCEPT (users, organizations, tickets) FROM SERVER zendesk INTO zd_some;
SELECT relname FROM pg_class WHERE relnamespace = 'zd_some'::regnamespace ORDER BY 1;
DROP SCHEMA zd_some CASCADE;

-- only the remote schema "zendesk" exists
IMPORT FOREIGN SCHEMA public FROM SERVER zendesk INTO zd;
