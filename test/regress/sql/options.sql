--
-- Option validation: every mistake is rejected at CREATE/ALTER time with
-- a SQLSTATE-bearing error and a hint, never at query time.
--
\set VERBOSITY default

-- a server needs exactly one of subdomain / url
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw;
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', url 'http://127.0.0.1:1');
-- subdomain is one DNS label
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme.evil.example');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain '-acme');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain '');
-- url: http(s) only, no credentials, no query
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url 'ftp://example.com');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url 'https://me:secret@example.com');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url 'https://example.com/?x=1');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url 'https://');
-- unknown options list the valid ones
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', colour 'red');
-- credentials belong in the user mapping
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', api_token 'abc');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', password 'abc');
-- bounds and types
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', page_size '5000');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', page_size 'ten');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', request_timeout '0');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', start_date 'last tuesday');
CREATE SERVER bad FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'acme', start_date 'infinity');
SELECT count(*) AS bad_servers FROM pg_foreign_server WHERE srvname = 'bad';

-- a valid server with every tuning option
CREATE SERVER acme FOREIGN DATA WRAPPER zendesk_fdw
  OPTIONS (subdomain 'Acme-Support', connect_timeout '5', request_timeout '30',
           page_size '100', max_retries '3', max_response_size '1048576',
           start_date '2024-01-01 00:00:00+00', sync_schema 'acme_data');
-- ALTER sees the resulting option list
ALTER SERVER acme OPTIONS (ADD url 'http://127.0.0.1:1');
ALTER SERVER acme OPTIONS (DROP subdomain);
ALTER SERVER acme OPTIONS (SET page_size '1001');
ALTER SERVER acme OPTIONS (SET page_size '1000');

-- user mappings: email + api_token, or oauth_token
CREATE USER MAPPING FOR CURRENT_USER SERVER acme OPTIONS (email 'admin@example.com');
CREATE USER MAPPING FOR CURRENT_USER SERVER acme OPTIONS (api_token 'abc');
CREATE USER MAPPING FOR CURRENT_USER SERVER acme
  OPTIONS (email 'admin@example.com', api_token 'abc', oauth_token 'def');
CREATE USER MAPPING FOR CURRENT_USER SERVER acme OPTIONS (email 'not-an-address', api_token 'abc');
-- a bad token value is rejected without being echoed
CREATE USER MAPPING FOR CURRENT_USER SERVER acme OPTIONS (email 'admin@example.com', api_token 'has a space');
CREATE USER MAPPING FOR CURRENT_USER SERVER acme OPTIONS (oauth_token 'abc', subdomain 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER acme OPTIONS (email 'admin@example.com', api_token 'super-secret-token');

-- foreign tables need a known resource
CREATE FOREIGN TABLE ft_bad (id bigint) SERVER acme;
CREATE FOREIGN TABLE ft_bad (id bigint) SERVER acme OPTIONS (resource 'tikets');
CREATE FOREIGN TABLE ft_bad (id bigint) SERVER acme OPTIONS (resource 'tickets', api_token 'abc');
CREATE FOREIGN TABLE ft_bad (id bigint OPTIONS (colour 'red')) SERVER acme OPTIONS (resource 'tickets');
CREATE FOREIGN TABLE ft_bad (id bigint OPTIONS (key '')) SERVER acme OPTIONS (resource 'tickets');
CREATE FOREIGN TABLE ft_ok (id bigint OPTIONS (key 'id'), title text OPTIONS (key 'subject'))
  SERVER acme OPTIONS (resource 'tickets');
ALTER FOREIGN TABLE ft_ok OPTIONS (SET resource 'groups');
ALTER FOREIGN TABLE ft_ok OPTIONS (DROP resource);
-- the wrapper itself takes no options
ALTER FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (ADD subdomain 'acme');

-- a non-superuser may not point a server at an arbitrary URL, and cannot
-- read another role's user mapping
CREATE ROLE regress_zd_user LOGIN;
GRANT USAGE ON FOREIGN DATA WRAPPER zendesk_fdw TO regress_zd_user;
GRANT USAGE ON FOREIGN SERVER acme TO regress_zd_user;
SET ROLE regress_zd_user;
CREATE SERVER mine FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url 'http://127.0.0.1:1');
CREATE SERVER mine FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain 'mine');
SELECT srvname, usename = session_user AS owner_mapping, umoptions FROM pg_user_mappings WHERE srvname = 'acme';
SELECT count(*) AS readable FROM pg_user_mapping;
RESET ROLE;
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'acme';

DROP SERVER mine;
DROP FOREIGN TABLE ft_ok;
DROP USER MAPPING FOR CURRENT_USER SERVER acme;
REVOKE USAGE ON FOREIGN SERVER acme FROM regress_zd_user;
REVOKE USAGE ON FOREIGN DATA WRAPPER zendesk_fdw FROM regress_zd_user;
DROP SERVER acme;
DROP ROLE regress_zd_user;
