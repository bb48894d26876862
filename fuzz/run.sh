#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [--corpus DIR] [--keep]: fuzz the response parser and
# the JSON-to-row mapping (src/page.c, src/row_map.c) for SECONDS (default 60).
#
#   fuzz/run.sh 60                  CI: a bounded run (test/t/210_fuzz.pl)
#   fuzz/run.sh 3600 --corpus fuzz/corpus   by hand: keep the corpus between runs
#
# How: fuzz/build.sh builds zd_fuzz.so (page.c, row_map.c, jsonb_write.c, resource.c, fetch_thread.c and
# fuzz/zd_fuzz.c with -fsanitize=fuzzer-no-link,address,undefined); a
# throwaway cluster runs with clang's ASan runtime in LD_PRELOAD; the SQL
# function zd_fuzz_run() hands one backend to libFuzzer (see zd_fuzz.c for
# why the target runs inside a real backend).  First a planted heap overflow
# must be reported (the pipeline's selftest), the fixtures' export pages must
# go through the target without an ERROR, and every file of
# fuzz/regressions/ is replayed; then the fuzzer starts from the seed corpus
# (fuzz/make_seeds.py: the fixtures and the bad-input shapes).
#
# A crash, a sanitizer report, or an internal error (SQLSTATE XX000) on
# bad input is a finding: its input is copied to fuzz/crashes/ (add it to
# fuzz/regressions/ with the fix).  The last lines give the executions,
# time, corpus size and crashes, then `fuzz: PASS` or `fuzz: FAIL`; the exit
# status is 0 only for PASS.
set -euo pipefail

ZD_FUZZ_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../test/lib/common.sh
source "$ZD_FUZZ_DIR/../test/lib/common.sh"

SECS=60
CORPUS=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--corpus) CORPUS="$(mkdir -p "$2" && cd "$2" && pwd -P)"; shift 2 ;;
	--keep) export ZD_KEEP=1; shift ;;
	-h | --help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	[0-9]*) SECS="$1"; shift ;;
	*) printf 'unknown argument: %s\n' "$1" >&2; exit 2 ;;
	esac
done

zd_init fuzz
trap 'zd_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
zd_pg_paths
zd_make_tmp

zd_stage "build"
ASAN_PRELOAD="$(PG_CONFIG="$ZD_PG_CONFIG" "$ZD_FUZZ_DIR/build.sh" "$ZD_TMP/build" 2>"$ZD_TMP/log/build.log" | tail -n 1)" || {
	cat "$ZD_TMP/log/build.log" >&2
	zd_die "fuzz/build.sh failed"
}
mkdir -p "$ZD_TMP/artifacts" "$ZD_TMP/replay"
[[ -n "$CORPUS" ]] || CORPUS="$ZD_TMP/corpus"
mkdir -p "$CORPUS"
cp "$ZD_FUZZ_DIR/json.dict" "$ZD_TMP/json.dict"
"$ZD_PYTHON" "$ZD_FUZZ_DIR/make_seeds.py" "$CORPUS" "$ZD_TMP/fixture_pages.txt" >/dev/null
REGRESSIONS=0
for f in "$ZD_FUZZ_DIR"/regressions/*; do
	[[ -f "$f" && "$f" != *.md ]] || continue
	cp "$f" "$ZD_TMP/replay/"
	REGRESSIONS=$((REGRESSIONS + 1))
done
CORPUS_BEFORE="$(find "$CORPUS" -type f | wc -l)"
if [[ -n "$ZD_IS_ROOT" ]]; then chown -R "$ZD_RUN_USER:" "$ZD_TMP" "$CORPUS"; fi

zd_stage "cluster"
(cd "$ZD_TMP" && zd_run initdb -D "$ZD_TMP/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
	>"$ZD_TMP/log/initdb.log" 2>&1) || { cat "$ZD_TMP/log/initdb.log" >&2; zd_die "initdb failed"; }
cat >>"$ZD_TMP/data/postgresql.conf" <<EOC
listen_addresses = ''
unix_socket_directories = '$ZD_SOCK'
fsync = off
shared_buffers = 32MB
max_connections = 10
EOC
PORT="$(zd_free_port "${ZD_PG_PORT_BASE:-57432}")"
export PGHOST="$ZD_SOCK" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
# the ASan runtime must come first: LD_PRELOAD into the (uninstrumented)
# server; PostgreSQL's own allocations are not leak-checked
SAN_ENV=(LD_PRELOAD="$ASAN_PRELOAD"
	ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:symbolize=1:handle_abort=1"
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
(cd "$ZD_TMP" && zd_run env "${SAN_ENV[@]}" pg_ctl -D "$ZD_TMP/data" -l "$ZD_TMP/log/postgresql.log" \
	-o "-p $PORT" -w -t 60 start >/dev/null) || { zd_tail "$ZD_TMP/log/postgresql.log" 40 "server log"; zd_die "the ASan cluster did not start"; }
ZD_PG_STARTED=1
ZD_PGDATA="$ZD_TMP/data"
ZD_PG_LOG="$ZD_TMP/log/postgresql.log"

SO="$ZD_TMP/build/zd_fuzz.so"
zd_psql -q <<EOSQL >/dev/null
CREATE FUNCTION zd_fuzz_run(text[], regclass[], text) RETURNS int AS '$SO' LANGUAGE C STRICT;
CREATE FUNCTION zd_fuzz_one_sql(bytea, regclass[]) RETURNS text AS '$SO' LANGUAGE C STRICT;
CREATE FUNCTION zd_fuzz_column_ddl(text) RETURNS text AS '$SO' LANGUAGE C STRICT;
DO \$\$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['tickets', 'ticket_events', 'users', 'organizations'] LOOP
    EXECUTE format('CREATE TABLE %I (%s)', 'fz_' || r, zd_fuzz_column_ddl(r));
  END LOOP;
END \$\$;
-- unusual column types under real Zendesk keys: every conversion path
-- (each table is tried on its own: most real values fail one of them)
CREATE TYPE fz_priority AS ENUM ('low', 'normal', 'high', 'urgent');
CREATE DOMAIN fz_positive AS bigint CHECK (VALUE > 0);
CREATE TABLE fz_u_int (id int4, assignee_id int2, requester_id fz_positive, organization_id numeric,
  locale_id int2, updater_id numeric(20,0), ticket_id fz_positive, brand_id float4);
CREATE TABLE fz_u_text (subject varchar(8), status char(3), type name, time_zone varchar(5),
  url text, description text, name text, event_type varchar);
CREATE TABLE fz_u_misc (priority fz_priority, external_id uuid, is_public bool, active bool,
  verified bool, has_incidents bool, role fz_priority, locale char(5));
CREATE TABLE fz_u_array (tags varchar(3)[], collaborator_ids int4[], follower_ids numeric[],
  fields jsonb[], custom_fields json[], child_events text[], email_cc_ids int2[], sharing_agreement_ids date[]);
CREATE TABLE fz_u_time (created_at date, updated_at timestamp(0), generated_timestamp timestamptz(2),
  timestamp timestamp, due_at date, deleted_at timestamptz(0), last_login_at time, created timestamptz);
CREATE TABLE fz_u_json (via json, satisfaction_rating jsonb, custom_fields jsonb, child_events json,
  fields text, tags text, data jsonb, id text);
EOSQL
TABLES="ARRAY['fz_tickets', 'fz_ticket_events', 'fz_users', 'fz_organizations', 'fz_u_int', 'fz_u_text', 'fz_u_misc', 'fz_u_array', 'fz_u_time', 'fz_u_json']::regclass[]"

# run_fuzzer LOG ARGS...: one backend runs libFuzzer with ARGS; it ends the
# backend when done, so psql reports a lost connection: that is expected.
run_fuzzer() {
	local log="$1" arr="" a
	shift
	for a in "$@"; do arr+="${arr:+, }'${a//\'/\'\'}'"; done
	zd_psql -q -c "SET client_min_messages = error; SET log_min_messages = fatal" \
		-c "SELECT zd_fuzz_run(ARRAY[$arr]::text[], $TABLES, '$log')" >/dev/null 2>&1 || true
}

FAIL=()
zd_stage "selftest"
# the pipeline must see a crash: a built-in input reads past a malloc'd
# buffer when --zd-selftest is given, and ASan must report it
mkdir -p "$ZD_TMP/selftest"
printf '\000ZDFUZZ-SELFTEST' >"$ZD_TMP/selftest/input"
if [[ -n "$ZD_IS_ROOT" ]]; then chown -R "$ZD_RUN_USER:" "$ZD_TMP/selftest"; fi
run_fuzzer "$ZD_TMP/log/selftest.log" --zd-selftest "$ZD_TMP/selftest/input"
if grep -q 'AddressSanitizer: heap-buffer-overflow' "$ZD_TMP/log/selftest.log"; then
	zd_log "selftest: a planted heap overflow was reported"
else
	FAIL+=("selftest: a planted heap overflow was not detected")
	zd_tail "$ZD_TMP/log/selftest.log" 30 "selftest output"
fi
# that backend died without cleaning up: the server restarts; wait for it
ok=""
for ((i = 0; i < 300; i++)); do
	if zd_psql -qAt -c 'SELECT 1' >/dev/null 2>&1; then ok=1; break; fi
	sleep 0.2
done
[[ -n "$ok" ]] || zd_die "the server did not come back after the selftest"
# the server log is checked for crashes from here on
LOG_OFFSET="$(stat -c %s "$ZD_TMP/log/postgresql.log")"

zd_stage "sanity"
# the fixtures' export pages must go through the whole target without an
# ERROR: a harness that rejects everything would fuzz nothing
NFIX=0
arr=""
while IFS= read -r n; do
	[[ -n "$n" ]] || continue
	arr+="${arr:+, }'$CORPUS/$n'"
	NFIX=$((NFIX + 1))
done <"$ZD_TMP/fixture_pages.txt"
zd_psql -qAt -c "SET client_min_messages = error" \
	-c "SELECT f, zd_fuzz_one_sql(pg_read_binary_file(f), $TABLES) FROM unnest(ARRAY[$arr]::text[]) f" \
	>"$ZD_TMP/log/fixture_pages.out"
CLEAN="$(grep -c '|$' "$ZD_TMP/log/fixture_pages.out" || true)"
grep -v '|$' "$ZD_TMP/log/fixture_pages.out" || true
zd_log "$CLEAN of $NFIX fixture export pages parsed and mapped without an error"
if ((NFIX == 0 || CLEAN != NFIX)); then
	FAIL+=("only $CLEAN of $NFIX fixture export pages went through the target without an error")
fi

zd_stage "replay"
if ((REGRESSIONS > 0)); then
	zd_log "replaying $REGRESSIONS regression input(s) from fuzz/regressions/"
	run_fuzzer "$ZD_TMP/log/replay.log" -artifact_prefix="$ZD_TMP/artifacts/" "$ZD_TMP"/replay/*
	ran="$(grep -c '^Running: ' "$ZD_TMP/log/replay.log" || true)"
	if ! grep -q '^Executed .* in ' "$ZD_TMP/log/replay.log" || ((ran != REGRESSIONS)) ||
		grep -qE 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:|zd_fuzz: internal error' "$ZD_TMP/log/replay.log"; then
		FAIL+=("a regression input failed ($ran of $REGRESSIONS replayed)")
		tail -n 60 "$ZD_TMP/log/replay.log"
	fi
fi

zd_stage "fuzz"
zd_log "fuzzing for ${SECS}s (corpus $CORPUS: $CORPUS_BEFORE inputs)"
t0=$SECONDS
run_fuzzer "$ZD_TMP/log/fuzz.log" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=4096 \
	-max_len=65536 -print_final_stats=1 -dict="$ZD_TMP/json.dict" \
	-artifact_prefix="$ZD_TMP/artifacts/" "$CORPUS"
elapsed=$((SECONDS - t0))
LOG="$ZD_TMP/log/fuzz.log"
runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -n 1)"
speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG" | tail -n 1)"
newu="$(sed -n 's/^stat::new_units_added: *//p' "$LOG" | tail -n 1)"
cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$LOG" | tail -n 1 || true)"
CORPUS_AFTER="$(find "$CORPUS" -type f | wc -l)"
CRASHES="$(find "$ZD_TMP/artifacts" -type f | wc -l)"
if grep -qE 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:|zd_fuzz: internal error|==[0-9]+==ERROR' "$LOG"; then
	FAIL+=("the fuzzer reported a finding")
	grep -nE -A40 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:|zd_fuzz: internal error|==[0-9]+==ERROR' "$LOG" | head -n 80
fi
if [[ -z "$runs" ]] || ! grep -q '^Done [0-9]* runs in ' "$LOG"; then
	FAIL+=("the fuzzer did not finish normally")
	zd_tail "$LOG" 40 "fuzzer output"
	zd_tail "$ZD_TMP/log/postgresql.log" 40 "server log"
fi
((CRASHES == 0)) || FAIL+=("$CRASHES crash input(s)")
if ((CRASHES > 0)); then
	mkdir -p "$ZD_FUZZ_DIR/crashes" 2>/dev/null && cp "$ZD_TMP"/artifacts/* "$ZD_FUZZ_DIR/crashes/" 2>/dev/null &&
		zd_log "crash inputs copied to $ZD_FUZZ_DIR/crashes/" || zd_log "crash inputs: $ZD_TMP/artifacts (ZD_KEEP=1 keeps them)"
fi
# the server must have survived everything (a crash restart shows here)
if tail -c +"$((LOG_OFFSET + 1))" "$ZD_TMP/log/postgresql.log" |
	grep -E 'terminated by signal|PANIC|was terminated by exception|reinitializing'; then
	FAIL+=("the server log shows a crash")
fi

printf 'fuzz: %s executions in %ss (%s/s), %s, corpus %s -> %s inputs (%s new), %s crash(es), %s regression input(s) replayed\n' \
	"${runs:-0}" "$elapsed" "${speed:-0}" "${cov:-cov: ?}" "$CORPUS_BEFORE" "$CORPUS_AFTER" "${newu:-0}" "$CRASHES" "$REGRESSIONS"
if ((${#FAIL[@]} > 0)); then
	printf 'fuzz: FAIL: %s\n' "${FAIL[*]}"
	exit 1
fi
printf 'fuzz: PASS\n'
