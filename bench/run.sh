#!/usr/bin/env bash
# bench/run.sh: the zendesk_fdw benchmark (not a test; see bench/README.md).
#
#   bench/run.sh [--tickets N] [--skip STEPS] [--out FILE]
#
# Builds and installs the extension (unless ZD_SKIP_BUILD=1), starts a
# throwaway PostgreSQL cluster and the mock Zendesk server with a large
# account (default 100,000 tickets, 300,000 ticket events, 20,000 users,
# 2,000 organizations), installs the Node.js comparison client (npm ci in
# bench/node), and runs bench/bench.py, which measures:
#   1. zendesk_sync from scratch (records/s per stream, requests, worker
#      peak memory and CPU);
#   2. COPY of the same records as typed rows (the floor), and the mock's
#      own serving time;
#   3. a Node.js script (node-zendesk + pg), careful and common modes;
#   4. an incremental sync after 1% of the tickets changed;
#   5. live queries on the foreign tables;
#   and, on a 10,000-ticket account, the worker's memory again and a short
#   sync under a 10-requests-per-window rate limit.
#
# Options: --tickets N (users N/5, events 3 per ticket, organizations N/50),
# --skip node_common,node_careful,live,small,rate, --out FILE (markdown
# report, default /tmp/zendesk_fdw-bench-<time>.md; the JSON goes beside).
# Environment: ZD_SKIP_BUILD=1, ZD_KEEP=1, ZD_SKIP_APT=1 and the knobs of
# test/lib/common.sh.  Takes about 15 minutes on 2 cores.
set -euo pipefail

ZD_SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../test/lib/common.sh
source "$ZD_SCRIPT_DIR/../test/lib/common.sh"

TICKETS=100000
SKIP=""
OUT="/tmp/zendesk_fdw-bench-$(date -u +%Y%m%d-%H%M%S).md"
ARGS=("$@")
while [[ $# -gt 0 ]]; do
	case "$1" in
	--tickets) TICKETS="$2"; shift 2 ;;
	--skip) SKIP="$2"; shift 2 ;;
	--out) OUT="$2"; shift 2 ;;
	-h | --help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) printf 'unknown argument: %s (see --help)\n' "$1" >&2; exit 2 ;;
	esac
done
USERS=$((TICKETS / 5))
ORGS=$((TICKETS / 50 > 20 ? TICKETS / 50 : 20))

zd_init bench
ZD_PACKAGES+=(nodejs npm)
trap 'rc=$?; set +e; zd_cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

zd_ensure_packages
zd_pg_paths
if [[ "${ZD_SKIP_BUILD:-}" == 1 ]]; then
	zd_log "ZD_SKIP_BUILD=1: using the installed extension"
else
	zd_build
fi

zd_stage "npm ci"
if [[ ! -d "$ZD_SCRIPT_DIR/node/node_modules/node-zendesk" || ! -d "$ZD_SCRIPT_DIR/node/node_modules/pg" ]]; then
	(cd "$ZD_SCRIPT_DIR/node" && npm ci --no-audit --no-fund) || zd_die "npm ci in bench/node failed"
fi

zd_make_tmp
# The mock runs as the server user from a copy of what it needs (not of the
# whole tree, which other work may be changing under us).
zd_stage "work tree"
ZD_WORK="$ZD_TMP/work"
mkdir -p "$ZD_WORK"
tar -C "$ZD_ROOT" --exclude='__pycache__' -cf - test/mock test/fixtures | tar -C "$ZD_WORK" -xf - ||
	zd_die "copying the mock to $ZD_WORK failed"
if [[ -n "$ZD_IS_ROOT" ]]; then chown -R "$ZD_RUN_USER:" "$ZD_WORK"; fi
# The same settings as the test clusters (fsync off), plus room for the
# data: no checkpoint forced by WAL volume in the middle of a measurement.
ZD_PG_CONF="${ZD_PG_CONF:-}
shared_buffers = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min
work_mem = 16MB"
zd_start_cluster
ZD_MOCK_READY_TIMEOUT=120 zd_start_mock --holdback 1 --rate-limit 0 --tickets "$TICKETS" --users "$USERS" \
	--organizations "$ORGS" --events-per-ticket 3

zd_stage "benchmark"
mkdir -p "$ZD_TMP/bench"
chmod 755 "$ZD_TMP/bench"
PM_PID="$(head -n 1 "$ZD_PGDATA/postmaster.pid")"
"$ZD_PYTHON" "$ZD_SCRIPT_DIR/bench.py" \
	--mock-url "$ZD_MOCK_URL" --mock-pid "$ZD_MOCK_PID" --postmaster-pid "$PM_PID" \
	--pg-url "postgres://postgres@127.0.0.1:$ZD_PG_PORT/bench" \
	--workdir "$ZD_TMP/bench" --tickets "$TICKETS" --users "$USERS" --organizations "$ORGS" \
	--skip "$SKIP" --out "$OUT" --command "bench/run.sh${ARGS[*]:+ ${ARGS[*]}}"
zd_log "report: $OUT (figures: ${OUT%.md}.json)"
