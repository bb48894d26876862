#!/usr/bin/env bash
# scripts/test.sh: build zendesk_fdw and run every test suite against a
# throwaway PostgreSQL cluster and the mock Zendesk server.
#
#   ./scripts/test.sh [--only SUITES]     SUITES: comma list of mock,regress,tap
#
# Suites, in order:
#   mock     python3 -m unittest discover -s test/mock -p 'test_*.py'
#   regress  make installcheck (pg_regress; test/regress/schedule)
#   tap      prove -v test/t/*.pl (PostgreSQL::Test::Cluster)
#
# Environment: ZD_SKIP_BUILD=1 (no make clean/make/make install),
# ZD_KEEP=1 (keep the temp dir and print where), ZD_SKIP_APT=1 (install no
# Debian packages), ZD_PG_MAJOR (PostgreSQL major version, default 15),
# ZD_PG_PORT_BASE / ZD_MOCK_PORT_BASE (first port tried for the cluster,
# 55432, and for the mock, 56432; the next free one is taken), and the other
# knobs listed in test/lib/common.sh.  Timeouts per suite (seconds):
# ZD_MOCK_TESTS_TIMEOUT (600), ZD_REGRESS_TIMEOUT (1200), ZD_TAP_TIMEOUT (2400).
#
# The last line of output is always `N passed, M failed`; the exit status
# is 0 only when M is 0 and at least one test ran.
set -euo pipefail

ZD_SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../test/lib/common.sh
source "$ZD_SCRIPT_DIR/../test/lib/common.sh"

usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

ONLY="mock,regress,tap"
while [[ $# -gt 0 ]]; do
	case "$1" in
	--only)
		[[ $# -ge 2 ]] || { usage >&2; exit 2; }
		ONLY="$2"
		shift 2
		;;
	--only=*)
		ONLY="${1#--only=}"
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		printf 'unknown argument: %s\n' "$1" >&2
		usage >&2
		exit 2
		;;
	esac
done
IFS=', ' read -r -a SUITES_WANTED <<<"$ONLY"
for s in "${SUITES_WANTED[@]}"; do
	case "$s" in
	mock | regress | tap) ;;
	*)
		printf 'unknown suite in --only: %s (expected mock, regress or tap)\n' "$s" >&2
		exit 2
		;;
	esac
done
wants() { [[ " ${SUITES_WANTED[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------- results

SUITES=()             # suites in the order they ran
declare -A S_PASS S_FAIL S_SKIP S_TIME S_NOTE
TAP_FAILED_FILES=()
FINISHED=""
T_START=$SECONDS

# record SUITE PASS FAIL SKIP SECONDS NOTE
record() {
	SUITES+=("$1")
	S_PASS[$1]=$2
	S_FAIL[$1]=$3
	S_SKIP[$1]=$4
	S_TIME[$1]=$5
	S_NOTE[$1]=$6
}

print_summary() {
	local s total_pass=0 total_fail=0 total_skip=0 extra
	printf '\n==================== summary ====================\n'
	for s in "${SUITES[@]}"; do
		extra=""
		[[ "${S_SKIP[$s]}" -gt 0 ]] && extra=", ${S_SKIP[$s]} skipped"
		printf '%-8s %4d passed, %d failed%s  (%ss)%s\n' "$s:" "${S_PASS[$s]}" "${S_FAIL[$s]}" "$extra" \
			"${S_TIME[$s]}" "${S_NOTE[$s]:+  -- ${S_NOTE[$s]}}"
		total_pass=$((total_pass + S_PASS[$s]))
		total_fail=$((total_fail + S_FAIL[$s]))
		total_skip=$((total_skip + S_SKIP[$s]))
	done
	printf 'total time %ss\n' "$((SECONDS - T_START))"
	if ((total_pass + total_fail == 0)); then
		printf 'ERROR: no test ran\n'
	fi
	TOTAL_PASS=$total_pass
	TOTAL_FAIL=$total_fail
}

print_failure_details() {
	local diffs="$ZD_WORK/test/regress/out/regression.diffs" f base log
	if [[ -n "$ZD_WORK" && -s "$diffs" ]]; then
		printf -- '---- %s (first 300 lines) ----\n' "$diffs"
		head -n 300 -- "$diffs" || true
		printf -- '---- end of regression.diffs ----\n'
	fi
	for f in "${TAP_FAILED_FILES[@]}"; do
		base="$(basename -- "$f" .pl)"
		log="$ZD_TMP/tap/tmp_check/log/regress_log_$base"
		[[ -s "$log" ]] && zd_tail "$log" 80 "TAP log of $f"
	done
	if [[ -n "$ZD_TMP" ]]; then
		zd_tail "$ZD_PG_LOG" 60 "server log"
		zd_tail "$ZD_MOCK_LOG" 40 "mock log"
	fi
}

on_exit() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ -z "$FINISHED" ]]; then
		local why="failed"
		((rc == 130 || rc == 143)) && why="interrupted by a signal"
		record "setup" 0 1 0 "$((SECONDS - T_START))" "$why during: ${ZD_STAGE:-?} (exit $rc)"
	fi
	local s failed=0
	for s in "${SUITES[@]}"; do failed=$((failed + S_FAIL[$s])); done
	# Stop the servers first, so their logs are complete when shown.
	zd_stop_mock
	zd_stop_cluster
	zd_stop_leftovers
	# A setup failure has already shown the log that explains it.
	if ((failed > 0)) && [[ -n "$FINISHED" ]]; then
		print_failure_details
	fi
	zd_cleanup
	print_summary
	# Nothing may be printed after this line.
	printf '%d passed, %d failed\n' "$TOTAL_PASS" "$TOTAL_FAIL"
	if ((TOTAL_FAIL == 0 && TOTAL_PASS > 0)); then
		exit 0
	fi
	exit 1
}

# ---------------------------------------------------------------- suites

# run_logged OUTFILE CMD...: run CMD as the test user in $ZD_WORK, output to
# the terminal and OUTFILE; sets RC.  It runs in the background and we
# `wait` for it, so that INT/TERM interrupt the wait and the EXIT trap
# (which stops whatever still runs) fires at once.
run_logged() {
	local out="$1"
	shift
	set +e
	(
		set -o pipefail
		(cd "$ZD_WORK" && zd_run "$@") 2>&1 </dev/null | tee "$out"
	) &
	wait "$!"
	RC=$?
	set -e
}

suite_mock() {
	zd_stage "mock unit tests"
	local t0=$SECONDS out="$ZD_TMP/log/mock-unittest.out"
	if ! compgen -G "$ZD_WORK/test/mock/test_*.py" >/dev/null; then
		record mock 0 0 0 0 "no test/mock/test_*.py found"
		return 0
	fi
	zd_log "suite mock: python3 -m unittest discover -s test/mock -p 'test_*.py'"
	run_logged "$out" timeout -k 10 "${ZD_MOCK_TESTS_TIMEOUT:-600}" \
		"$ZD_PYTHON" -m unittest discover -s test/mock -p 'test_*.py' -v
	local ran status fail=0 skip=0 pass note="" n key items=()
	ran="$(grep -E '^Ran [0-9]+ tests? in ' "$out" | tail -n 1 | awk '{print $2}' || true)"
	status="$(grep -E '^(OK|FAILED)( \(.*\))?[[:space:]]*$' "$out" | tail -n 1 || true)"
	if [[ -z "$ran" ]]; then
		record mock 0 1 0 "$((SECONDS - t0))" "unittest did not finish (exit $RC)"
		return 0
	fi
	# e.g. "FAILED (failures=1, errors=2, skipped=3, expected failures=1,
	# unexpected successes=1)" or "OK (skipped=1)"
	local counts item
	counts="${status#*(}"
	[[ "$counts" == "$status" ]] && counts=""
	counts="${counts%)*}"
	IFS=',' read -r -a items <<<"$counts"
	for item in "${items[@]}"; do
		item="${item# }"
		key="${item%%=*}"
		n="${item##*=}"
		[[ "$n" =~ ^[0-9]+$ ]] || continue
		case "$key" in
		failures | errors | 'unexpected successes') fail=$((fail + n)) ;;
		skipped | 'expected failures') skip=$((skip + n)) ;;
		esac
	done
	pass=$((ran - fail - skip))
	((pass >= 0)) || pass=0
	if ((RC != 0 && fail == 0)); then
		fail=1
		note="unittest exited $RC"
	fi
	((ran > 0)) || note="unittest found no tests"
	record mock "$pass" "$fail" "$skip" "$((SECONDS - t0))" "$note"
}

suite_regress() {
	zd_stage "pg_regress"
	local t0=$SECONDS out="$ZD_TMP/log/regress.out" schedule="$ZD_WORK/test/regress/schedule"
	local scheduled=0
	if [[ -f "$schedule" ]]; then
		scheduled="$(grep -vE '^[[:space:]]*(#|$)' "$schedule" | wc -w)"
	fi
	if ((scheduled == 0)); then
		record regress 0 0 0 0 "no tests listed in test/regress/schedule"
		return 0
	fi
	zd_log "suite regress: make installcheck ($scheduled tests from test/regress/schedule)"
	rm -rf -- "$ZD_WORK/test/regress/out"
	run_logged "$out" env ZD_MOCK_URL="$ZD_MOCK_URL" PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres \
		timeout -k 30 "${ZD_REGRESS_TIMEOUT:-1200}" \
		make --no-print-directory installcheck PG_CONFIG="$ZD_PG_CONFIG" \
		PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres
	# pg_regress 15 prints one line per test:
	#   "test NAME                        ... ok           12 ms"
	#   "test NAME                        ... FAILED       12 ms"
	#   "test NAME                        ... failed (ignored) ..."
	local pass fail skip seen note=""
	pass="$(grep -cE '^(test|    ) +[^ ]+ +\.\.\. +ok( |$)' "$out" || true)"
	fail="$(grep -cE '^(test|    ) +[^ ]+ +\.\.\. +FAILED' "$out" || true)"
	skip="$(grep -cE '^(test|    ) +[^ ]+ +\.\.\. +failed \(ignored\)' "$out" || true)"
	seen=$((pass + fail + skip))
	if ((seen < scheduled)); then
		# pg_regress stopped early (setup failure, crash, timeout).
		fail=$((fail + scheduled - seen))
		note="$((scheduled - seen)) of $scheduled scheduled tests did not run (make exit $RC)"
	elif ((RC != 0 && fail == 0)); then
		fail=1
		note="make installcheck exited $RC"
	fi
	((RC == 124 || RC == 137)) && note="timed out after ${ZD_REGRESS_TIMEOUT:-1200}s; $note"
	# When the tests ran in a copy of the tree, bring their output home so
	# results/ and regression.diffs are where a developer looks for them.
	if [[ "$ZD_WORK" != "$ZD_ROOT" && -d "$ZD_WORK/test/regress/out" ]]; then
		if rm -rf -- "$ZD_ROOT/test/regress/out" 2>/dev/null &&
			cp -R --no-preserve=ownership -- "$ZD_WORK/test/regress/out" "$ZD_ROOT/test/regress/out" 2>/dev/null; then
			zd_log "pg_regress output copied to $ZD_ROOT/test/regress/out"
		fi
	fi
	record regress "$pass" "$fail" "$skip" "$((SECONDS - t0))" "$note"
}

suite_tap() {
	zd_stage "TAP tests"
	local t0=$SECONDS out="$ZD_TMP/log/tap.out" files=() f
	for f in "$ZD_WORK"/test/t/*.pl; do
		if [[ -f "$f" ]]; then files+=("test/t/${f##*/}"); fi
	done
	if [[ ${#files[@]} -eq 0 ]]; then
		record tap 0 0 0 0 "no test/t/*.pl found"
		return 0
	fi
	local tapdir="$ZD_TMP/tap"
	mkdir -p "$tapdir/data"
	if [[ -n "$ZD_IS_ROOT" ]]; then chown -R "$ZD_RUN_USER:" "$tapdir"; fi
	zd_log "suite tap: prove -v ${files[*]}"
	run_logged "$out" env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
		ZD_MOCK_URL="$ZD_MOCK_URL" ZD_MOCK="$ZD_MOCK" ZD_PYTHON="$ZD_PYTHON" \
		PG_REGRESS="$ZD_PG_REGRESS" PG_CONFIG="$ZD_PG_CONFIG" \
		TESTDIR="$tapdir" TESTDATADIR="$tapdir/data" \
		timeout -k 30 "${ZD_TAP_TIMEOUT:-2400}" \
		prove -v -I "$ZD_PGXS_PERL" -I test/lib "${files[@]}"
	# Count top-level TAP lines (subtests are indented and summarised by
	# their own top-level line):  "ok N", "ok N # skip", "not ok N",
	# "not ok N # TODO" (an expected failure: counted as skipped).
	local pass=0 fail=0 skip=0 note="" line file failed
	while IFS= read -r line; do
		if [[ "$line" =~ ^ok\ [0-9]+ ]]; then
			if [[ "$line" =~ \#[[:space:]]*[Ss][Kk][Ii][Pp] ]]; then
				skip=$((skip + 1))
			else
				pass=$((pass + 1))
			fi
		elif [[ "$line" =~ ^not\ ok\ [0-9]+ ]]; then
			if [[ "$line" =~ \#[[:space:]]*TODO ]]; then
				skip=$((skip + 1))
			else
				fail=$((fail + 1))
			fi
		elif [[ "$line" =~ ^(test/t/[^ ]+\.pl)\ \.+\ skipped: ]]; then
			skip=$((skip + 1))
		fi
	done <"$out"
	# prove's "Test Summary Report" names each file with something to say.
	# A file that died or exited non-zero without a failed assertion
	# (Wstat not 0, "Failed: 0"), or whose plan was wrong ("Parse errors"),
	# counts as one more failure; one listed only for "TODO passed" does not.
	file=""
	counted=""
	while IFS= read -r line; do
		if [[ "$line" =~ ^(test/t/[^ ]+\.pl)\ +\(Wstat:\ ([0-9]+)\ .*\ Failed:\ ([0-9]+)\)$ ]]; then
			file="${BASH_REMATCH[1]}"
			wstat="${BASH_REMATCH[2]}"
			failed="${BASH_REMATCH[3]}"
			counted=""
			if ((failed > 0 || wstat != 0)); then
				TAP_FAILED_FILES+=("$file")
			fi
			if ((failed == 0 && wstat != 0)); then
				fail=$((fail + 1))
				counted=1
				note+="${note:+; }$file died (wait status $wstat)"
			fi
		elif [[ -n "$file" && -z "$counted" && "$line" =~ ^\ +Parse\ errors: ]]; then
			TAP_FAILED_FILES+=("$file")
			fail=$((fail + 1))
			counted=1
			note+="${note:+; }$file broke its plan"
		fi
	done <"$out"
	if ((RC != 0 && fail == 0)); then
		fail=1
		note+="${note:+; }prove exited $RC"
	fi
	((RC == 124 || RC == 137)) && note="timed out after ${ZD_TAP_TIMEOUT:-2400}s; $note"
	record tap "$pass" "$fail" "$skip" "$((SECONDS - t0))" "$note"
}

# ---------------------------------------------------------------- main

zd_init test
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

zd_log "zendesk_fdw tests in $ZD_ROOT (suites: ${SUITES_WANTED[*]}; running as $(id -un))"
zd_ensure_packages
zd_pg_paths
if wants regress || wants tap; then
	zd_build
fi
zd_make_tmp
zd_prepare_worktree
if wants regress || wants tap; then
	zd_start_cluster
	zd_start_mock --holdback 1 --rate-limit 0
fi

# (not `wants X && suite_X`: set -e does not apply inside a function called
# from an && list, and an error in a suite must not go unnoticed)
if wants mock; then suite_mock; fi
if wants regress; then suite_regress; fi
if wants tap; then suite_tap; fi

FINISHED=1
exit 0
