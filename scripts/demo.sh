#!/usr/bin/env bash
# scripts/demo.sh: build and install zendesk_fdw, start a throwaway cluster,
# and sync a Zendesk account into local tables with zendesk_sync().
#
#   ./scripts/demo.sh
#
# Account: if ZENDESK_SUBDOMAIN, ZENDESK_EMAIL and ZENDESK_API_TOKEN are all
# set, the real account (the token is never printed); otherwise the mock
# Zendesk server (test/mock/zendesk_mock.py) with ZD_DEMO_MOCK_ARGS
# (default: --tickets 500 --users 100 --organizations 30) and, at the end,
# a check that each local table's data column equals the mock's account.
#
# Environment: ZD_SKIP_BUILD=1, ZD_KEEP=1 (leave the cluster, and the mock,
# running and print how to connect), ZD_SKIP_APT=1, ZD_SYNC_TIMEOUT (seconds
# for zendesk_sync, default 900), and the knobs in test/lib/common.sh.
set -euo pipefail

ZD_SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../test/lib/common.sh
source "$ZD_SCRIPT_DIR/../test/lib/common.sh"

case "${1:-}" in
-h | --help)
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
	exit 0
	;;
"") ;;
*)
	printf 'unknown argument: %s (see --help)\n' "$1" >&2
	exit 2
	;;
esac

DB=zendesk_demo
MODE=mock
if [[ -n "${ZENDESK_SUBDOMAIN:-}" && -n "${ZENDESK_EMAIL:-}" && -n "${ZENDESK_API_TOKEN:-}" ]]; then
	MODE=real
fi
FINISHED=""
KEEP_RUNNING=""
T_START=$SECONDS

on_exit() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ -z "$FINISHED" ]]; then
		printf '\nERROR: demo failed during: %s (exit %s)\n' "${ZD_STAGE:-?}" "$rc" >&2
		rc=$((rc == 0 ? 1 : rc))
		if [[ -n "$ZD_TMP" ]]; then
			zd_tail "$ZD_PG_LOG" 60 "server log"
			[[ "$MODE" == mock ]] && zd_tail "$ZD_MOCK_LOG" 40 "mock log"
		fi
	fi
	if [[ -n "$KEEP_RUNNING" && "$rc" -eq 0 ]]; then
		zd_log "ZD_KEEP=1: the cluster is still running; connect with:"
		printf '    psql -h 127.0.0.1 -p %s -U postgres %s\n' "$ZD_PG_PORT" "$DB"
		[[ -n "$ZD_IS_ROOT" ]] &&
			printf '  or: runuser -u postgres -- %s/psql -h %s -p %s %s\n' "$ZD_PG_BINDIR" "$ZD_SOCK" "$ZD_PG_PORT" "$DB"
		printf '  stop it with: runuser -u %s -- %s/pg_ctl -D %s stop\n' "$ZD_RUN_USER" "$ZD_PG_BINDIR" "$ZD_PGDATA"
		if [[ -n "$ZD_MOCK_PID" ]]; then
			printf '  the mock is still running at %s: stop it with: kill %s\n' "$ZD_MOCK_URL" "$ZD_MOCK_PID"
		fi
		printf '  files (data, logs): %s\n' "$ZD_TMP"
	else
		zd_cleanup
	fi
	printf 'demo %s in %ss\n' "$([[ "$rc" -eq 0 ]] && echo finished || echo FAILED)" "$((SECONDS - T_START))"
	exit "$rc"
}

zd_init demo
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

zd_ensure_packages
zd_pg_paths
zd_build
zd_make_tmp
zd_prepare_worktree
zd_start_cluster
if [[ "$MODE" == mock ]]; then
	read -r -a DEMO_MOCK_ARGS <<<"${ZD_DEMO_MOCK_ARGS:---tickets 500 --users 100 --organizations 30}"
	zd_start_mock --holdback 1 "${DEMO_MOCK_ARGS[@]}"
fi

# ---------------------------------------------------------------- set up
zd_stage "create extension, server and user mapping"
zd_psql -q -d postgres -c "CREATE DATABASE $DB"
if [[ "$MODE" == real ]]; then
	zd_log "using the real Zendesk account ${ZENDESK_SUBDOMAIN}.zendesk.com as ${ZENDESK_EMAIL}"
	# The token reaches psql only through its environment (\getenv), never a
	# command line; terse errors and log_min_error_statement = panic keep
	# the statement that holds it out of the output and the server log.
	zd_psql -q -d "$DB" <<'SQL'
\getenv zd_subdomain ZENDESK_SUBDOMAIN
\getenv zd_email ZENDESK_EMAIL
\getenv zd_token ZENDESK_API_TOKEN
CREATE EXTENSION zendesk_fdw;
CREATE SERVER zendesk FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (subdomain :'zd_subdomain');
SET log_min_error_statement = panic;
\set VERBOSITY terse
CREATE USER MAPPING FOR CURRENT_USER SERVER zendesk OPTIONS (email :'zd_email', api_token :'zd_token');
\set VERBOSITY default
\unset zd_token
RESET log_min_error_statement;
SQL
else
	zd_log "using the mock Zendesk at $ZD_MOCK_URL"
	zd_psql -q -d "$DB" -v "mock_url=$ZD_MOCK_URL" <<'SQL'
CREATE EXTENSION zendesk_fdw;
CREATE SERVER zendesk FOREIGN DATA WRAPPER zendesk_fdw OPTIONS (url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zendesk
  OPTIONS (email 'admin@example.com', api_token 'test-token');
SQL
fi

# ---------------------------------------------------------------- sync
zd_stage "zendesk_sync"
zd_log "running zendesk_sync('zendesk') (bounded by ${ZD_SYNC_TIMEOUT:-900}s)"
T_SYNC=$SECONDS
HOLDBACK_SQL=""
[[ "$MODE" == mock ]] && HOLDBACK_SQL="SET zendesk_fdw.holdback = 2;"
zd_psql -q -d "$DB" -v "holdback_sql=$HOLDBACK_SQL" -v "sync_ms=$((${ZD_SYNC_TIMEOUT:-900} * 1000))" <<'SQL'
SET search_path = public, zendesk_fdw;
:holdback_sql
SET statement_timeout = :sync_ms;
\pset footer off
\echo '== zendesk_sync(''zendesk'') =='
CREATE TEMP TABLE demo_sync AS SELECT * FROM zendesk_sync('zendesk');
RESET statement_timeout;
SELECT stream, status, pages, records, finished_at - started_at AS took, message
  FROM demo_sync ORDER BY stream;
\echo '== rows per local table (schema zendesk) =='
SELECT c.relname AS "table",
       (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname),
                           false, true, '')))[1]::text::bigint AS "rows"
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'zendesk' AND c.relkind IN ('r', 'p')
 ORDER BY 1;
\echo '== a few tickets =='
SELECT id, subject, status, updated_at FROM zendesk.tickets ORDER BY id LIMIT 5;
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM demo_sync WHERE status IS DISTINCT FROM 'ok') THEN
    RAISE EXCEPTION 'zendesk_sync reported streams that did not finish ok: %',
      (SELECT string_agg(stream || ' ' || coalesce(status, 'NULL'), ', ') FROM demo_sync
        WHERE status IS DISTINCT FROM 'ok');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM demo_sync) THEN
    RAISE EXCEPTION 'zendesk_sync returned no streams';
  END IF;
END $$;
SQL
zd_log "sync took $((SECONDS - T_SYNC))s"

# ---------------------------------------------------------------- check (mock)
if [[ "$MODE" == mock ]]; then
	zd_stage "compare local tables with the mock's account"
	zd_log "comparing each local table's data column with the mock's account (GET /__mock/account/<stream>)"
	mapfile -t TABLES < <(zd_psql -At -d "$DB" -c "
		SELECT c.relname FROM pg_class c
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'data' AND NOT a.attisdropped
		 WHERE n.nspname = 'zendesk' AND c.relkind IN ('r', 'p')
		 ORDER BY 1")
	[[ ${#TABLES[@]} -gt 0 ]] || zd_die "zendesk_sync created no local table with a data column in schema zendesk"
	mkdir -p "$ZD_TMP/account"
	[[ -n "$ZD_IS_ROOT" ]] && chown "$ZD_RUN_USER:" "$ZD_TMP/account"
	BAD=0
	COMPARED=0
	for t in "${TABLES[@]}"; do
		dump="$ZD_TMP/account/$t.json"
		code="$(cd "$ZD_TMP" && zd_run curl -s --max-time 60 -o "$dump" -w '%{http_code}' \
			"$ZD_MOCK_URL/__mock/account/$t" || true)"
		if [[ "$code" == 404 ]]; then
			printf '%s: no account dump in the mock (404), not compared\n' "$t"
			continue
		fi
		if [[ "$code" != 200 ]]; then
			printf '%s: GET /__mock/account/%s failed (HTTP %s)\n' "$t" "$t" "${code:-none}"
			BAD=$((BAD + 1))
			continue
		fi
		# The dump may be a JSON array of records, or an object holding that
		# array under the stream's name (or as its only array).
		res="$(zd_psql -At -F ' ' -d "$DB" -v "file=$dump" -v "stream=$t" <<'SQL'
WITH src AS (SELECT pg_read_file(:'file')::jsonb AS j),
arr AS (
  SELECT CASE
           WHEN jsonb_typeof(j) = 'array' THEN j
           WHEN jsonb_typeof(j -> :'stream') = 'array' THEN j -> :'stream'
           WHEN jsonb_typeof(j) = 'object'
                AND (SELECT count(*) FROM jsonb_each(j) e WHERE jsonb_typeof(e.value) = 'array') = 1
             THEN (SELECT e.value FROM jsonb_each(j) e WHERE jsonb_typeof(e.value) = 'array')
         END AS a
    FROM src),
acc AS (SELECT e AS data FROM arr, jsonb_array_elements(arr.a) AS e),
loc AS (SELECT data FROM zendesk.:"stream")
SELECT (SELECT a IS NOT NULL FROM arr),
       (SELECT count(*) FROM loc),
       (SELECT count(*) FROM acc),
       (SELECT count(*) FROM acc FULL JOIN loc ON acc.data -> 'id' = loc.data -> 'id'
         WHERE acc.data IS NULL OR loc.data IS NULL OR acc.data <> loc.data);
SQL
		)" || {
			printf '%s: comparison query failed\n' "$t"
			BAD=$((BAD + 1))
			continue
		}
		read -r understood nlocal naccount nmismatch <<<"$res"
		if [[ "$understood" != t ]]; then
			printf '%s: the account dump is not a JSON array of records (see %s)\n' "$t" "$dump"
			BAD=$((BAD + 1))
			continue
		fi
		rel="="
		[[ "$nlocal" == "$naccount" ]] || rel="!="
		printf '%s: local %s %s account %s, mismatches %s\n' "$t" "$nlocal" "$rel" "$naccount" "$nmismatch"
		COMPARED=$((COMPARED + 1))
		if [[ "$rel" != "=" || "$nmismatch" != 0 ]]; then
			BAD=$((BAD + 1))
		fi
	done
	((COMPARED > 0)) || zd_die "no stream could be compared with the mock's account"
	((BAD == 0)) || zd_die "$BAD stream(s) differ from the mock's account"
	zd_log "all $COMPARED compared streams match the mock's account"
fi

if [[ "${ZD_KEEP:-}" == 1 ]]; then
	KEEP_RUNNING=1
fi
FINISHED=1
exit 0
