#!/usr/bin/env bash
# test/campaign/run.sh: the long fault campaign (not part of CI).
#
#   test/campaign/run.sh [--schedules N] [--first-seed S] [--seed S ...] [--build]
#
# Defaults: 300 schedules, seeds 1001..1300 (CI's test/t/200_fault_campaign.pl
# runs seeds 1..30).  `--seed S` replays one schedule exactly (the seed that a
# failure prints).  --build runs `make && make install` first; otherwise the
# installed zendesk_fdw is used.  Runs as the postgres user when called as
# root, in a throwaway cluster and a private mock.  The whole output is also
# written to test/campaign/out/campaign-<date>.log; the last lines are the
# campaign's figures and `N passed, M failed`.
set -euo pipefail

ZD_SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../lib/common.sh
source "$ZD_SCRIPT_DIR/../lib/common.sh"

ARGS=()
BUILD=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--build) BUILD=1; shift ;;
	--schedules | --first-seed | --seed)
		[[ $# -ge 2 ]] || { sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 2; }
		ARGS+=("$1" "$2"); shift 2 ;;
	-h | --help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) printf 'unknown argument: %s\n' "$1" >&2; exit 2 ;;
	esac
done

zd_init campaign
trap 'zd_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
zd_pg_paths
if [[ -n "$BUILD" ]]; then
	ZD_SKIP_APT=1 zd_build
fi
zd_make_tmp
zd_prepare_worktree

# A private snapshot of the installed extension: the campaign runs for an
# hour, and the install in $(pg_config --pkglibdir) is shared with anyone
# who runs `make install` meanwhile.  postgres finds its lib and share
# directories relative to its own path, so a copy of the server binaries
# next to a copy of the extension's files (and links to everything else)
# keeps the whole run on one build.
zd_stage "snapshot"
BINDIR="$ZD_PG_BINDIR"
PKGLIB="$("$ZD_PG_CONFIG" --pkglibdir)"
SHARE="$("$ZD_PG_CONFIG" --sharedir)"
REL="$ZD_TMP/pg"
mkdir -p "$REL$BINDIR" "$REL$PKGLIB" "$REL$SHARE/extension"
for b in postgres initdb pg_ctl; do cp "$BINDIR/$b" "$REL$BINDIR/"; done
for f in "$PKGLIB"/*; do [[ "$(basename "$f")" == zendesk_fdw.so ]] || ln -s "$f" "$REL$PKGLIB/"; done
cp "$PKGLIB/zendesk_fdw.so" "$REL$PKGLIB/"
for f in "$SHARE"/*; do [[ "$(basename "$f")" == extension ]] || ln -s "$f" "$REL$SHARE/"; done
for f in "$SHARE"/extension/*; do
	case "$(basename "$f")" in
	zendesk_fdw*) cp "$f" "$REL$SHARE/extension/" ;;
	*) ln -s "$f" "$REL$SHARE/extension/" ;;
	esac
done
if [[ -n "$ZD_IS_ROOT" ]]; then chown -R "$ZD_RUN_USER:" "$REL"; fi
zd_log "zendesk_fdw snapshot: $(md5sum <"$REL$PKGLIB/zendesk_fdw.so" | cut -c1-12) ($(date -r "$PKGLIB/zendesk_fdw.so" '+%F %T'))"
mkdir -p "$ZD_ROOT/test/campaign/out"
OUT="$ZD_ROOT/test/campaign/out/campaign-$(date +%Y%m%d-%H%M%S).log"
tapdir="$ZD_TMP/tap"
mkdir -p "$tapdir/data"
if [[ -n "$ZD_IS_ROOT" ]]; then chown -R "$ZD_RUN_USER:" "$tapdir"; fi
zd_log "fault campaign: ${ARGS[*]:-300 schedules}; output also in $OUT"
rc=0
(
	cd "$ZD_WORK" && zd_run env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE PATH="$REL$BINDIR:$ZD_RUN_PATH" \
		ZD_MOCK="$ZD_WORK/test/mock/zendesk_mock.py" ZD_PYTHON="$ZD_PYTHON" \
		PG_REGRESS="$ZD_PG_REGRESS" PG_CONFIG="$ZD_PG_CONFIG" \
		TESTDIR="$tapdir" TESTDATADIR="$tapdir/data" \
		perl -I "$ZD_PGXS_PERL" -I test/lib -I test/campaign test/campaign/run.pl "${ARGS[@]}"
) 2>&1 </dev/null | tee "$OUT" || rc=$?
# the verdict is the last line (the TAP exit status can be disturbed by the
# servers' shutdown at the end of the run)
if grep -qE '^[0-9]+ passed, 0 failed$' "$OUT" && ! grep -qE '^[0-9]+ passed, [1-9][0-9]* failed$' "$OUT"; then
	exit 0
fi
exit $((rc == 0 ? 1 : rc))
