#!/usr/bin/env bash
# scripts/sanitize.sh: the pg_regress suite once, with zendesk_fdw built with
# AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer.
#
#   ./scripts/sanitize.sh            (not part of CI; about 2-4 minutes)
#
# How:
#   1. a copy of the tree is built with gcc -fsanitize=address,undefined
#      (PGXS, COPT) and installed with DESTDIR into a private prefix: the
#      shared install in /usr/lib/postgresql is left alone;
#   2. a relocated copy of the PostgreSQL server binaries (postgres finds
#      its lib and share directories relative to its own path) sees the
#      sanitized zendesk_fdw.so and its control and SQL files, and the
#      stock libraries for everything else;
#   3. that server runs with libasan in LD_PRELOAD (PostgreSQL itself is
#      not instrumented) and ASAN_OPTIONS/UBSAN_OPTIONS log_path set, so
#      every report lands in a file per process; the mock is started as in
#      scripts/test.sh and `make installcheck` runs the pg_regress suite;
#   4. every report is classified: it counts against the extension when
#      one of its frames is in zendesk_fdw.so (for a leak: the allocation
#      stack); the others (PostgreSQL's own allocations, libraries) are
#      counted and listed, but do not fail the run.
#
# Limits: only the extension's code is instrumented.  Its reads and writes
# of malloc'd memory (json-c, libcurl buffers) get ASan's redzones; palloc'd
# chunks inside PostgreSQL's memory context blocks do not (PostgreSQL is not
# built with sanitizer annotations).
#
# The last lines are the verdict: `sanitize: PASS ...` or `sanitize: FAIL ...`,
# then `N passed, M failed` for the pg_regress tests; the exit status is 0
# only on PASS.
set -euo pipefail

ZD_SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../test/lib/common.sh
source "$ZD_SCRIPT_DIR/../test/lib/common.sh"

zd_init sanitize
trap 'zd_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
T0=$SECONDS
zd_pg_paths
zd_make_tmp
zd_prepare_worktree
if [[ -z "$ZD_IS_ROOT" ]]; then
	# not root: build in a copy anyway, the tree's own objects stay as they are
	ZD_WORK="$ZD_TMP/work"
	mkdir -p "$ZD_WORK"
	tar -C "$ZD_ROOT" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./test/regress/out -cf - . | tar -C "$ZD_WORK" -xf -
fi

# ------------------------------------------------------------ 1. build
zd_stage "sanitized build"
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize=alignment -fno-sanitize-recover=undefined -g -O1"
zd_log "building zendesk_fdw with $SAN_FLAGS"
make -C "$ZD_WORK" --no-print-directory PG_CONFIG="$ZD_PG_CONFIG" clean >/dev/null
make -C "$ZD_WORK" --no-print-directory -j"$(nproc)" PG_CONFIG="$ZD_PG_CONFIG" COPT="$SAN_FLAGS" \
	>"$ZD_TMP/log/build.log" 2>&1 || { tail -n 40 "$ZD_TMP/log/build.log"; zd_die "sanitized build failed"; }
INST="$ZD_TMP/inst"
make -C "$ZD_WORK" --no-print-directory PG_CONFIG="$ZD_PG_CONFIG" DESTDIR="$INST" install \
	>>"$ZD_TMP/log/build.log" 2>&1 || zd_die "make install DESTDIR=$INST failed"
ldd "$(find "$INST" -name zendesk_fdw.so)" | grep -q libasan ||
	zd_die "the sanitized zendesk_fdw.so does not link libasan"

# ------------------------------------------------------ 2. relocated server
zd_stage "relocated server"
BINDIR="$ZD_PG_BINDIR"
PKGLIB="$("$ZD_PG_CONFIG" --pkglibdir)"
SHARE="$("$ZD_PG_CONFIG" --sharedir)"
REL="$ZD_TMP/pg"
mkdir -p "$REL$BINDIR" "$REL$PKGLIB" "$REL$SHARE"
for b in postgres initdb pg_ctl; do cp "$BINDIR/$b" "$REL$BINDIR/"; done
for f in "$PKGLIB"/*; do ln -s "$f" "$REL$PKGLIB/"; done
for f in "$SHARE"/*; do [[ "$(basename "$f")" == extension ]] || ln -s "$f" "$REL$SHARE/"; done
mkdir -p "$REL$SHARE/extension"
for f in "$SHARE"/extension/*; do ln -s "$f" "$REL$SHARE/extension/"; done
rm -f "$REL$PKGLIB/zendesk_fdw.so" "$REL$SHARE"/extension/zendesk_fdw*
cp "$INST$PKGLIB/zendesk_fdw.so" "$REL$PKGLIB/"
cp "$INST$SHARE"/extension/zendesk_fdw* "$REL$SHARE/extension/"

# the LD_PRELOAD stub explained in fuzz/asan_swift_stub.c
gcc -shared -fPIC -O2 -o "$ZD_TMP/asan_swift_stub.so" "$ZD_ROOT/fuzz/asan_swift_stub.c"
LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBASAN="$(readlink -f "$LIBASAN")"
[[ -f "$LIBASAN" ]] || zd_die "libasan not found (apt-get install libasan8)"
mkdir -p "$ZD_TMP/san"
if [[ -n "$ZD_IS_ROOT" ]]; then chown -R "$ZD_RUN_USER:" "$ZD_TMP"; fi

(cd "$ZD_TMP" && zd_run "$REL$BINDIR/initdb" -D "$ZD_PGDATA" -U postgres -A trust -E UTF8 --no-locale --no-sync \
	>"$ZD_TMP/log/initdb.log" 2>&1) || { cat "$ZD_TMP/log/initdb.log"; zd_die "initdb failed"; }
{
	printf "listen_addresses = '127.0.0.1'\n"
	printf "unix_socket_directories = '%s'\n" "$ZD_SOCK"
	printf 'max_worker_processes = 32\nfsync = off\nshared_buffers = 128MB\n'
} >>"$ZD_PGDATA/postgresql.conf"
PORT="$(zd_free_port "${ZD_PG_PORT_BASE:-55532}")"
SAN_ENV=(LD_PRELOAD="$LIBASAN $ZD_TMP/asan_swift_stub.so"
	ASAN_OPTIONS="log_path=$ZD_TMP/san/asan:detect_leaks=1:exitcode=0:allocator_may_return_null=1:detect_odr_violation=0"
	LSAN_OPTIONS="log_path=$ZD_TMP/san/lsan"
	UBSAN_OPTIONS="log_path=$ZD_TMP/san/ubsan:print_stacktrace=1")
(cd "$ZD_TMP" && zd_run env "${SAN_ENV[@]}" "$REL$BINDIR/pg_ctl" -D "$ZD_PGDATA" -l "$ZD_PG_LOG" \
	-o "-p $PORT" -w -t 120 start >"$ZD_TMP/log/pg_ctl.log" 2>&1) ||
	{ zd_tail "$ZD_PG_LOG" 40 "server log"; zd_die "the sanitized server did not start"; }
ZD_PG_STARTED=1
export PGHOST="$ZD_SOCK" PGPORT="$PORT" PGUSER=postgres
zd_psql -qAt -d postgres -c "SELECT 'server ' || version()" >/dev/null
zd_log "server with libasan preloaded: port $PORT, reports in $ZD_TMP/san"

# ------------------------------------------------------ 3. the suite
zd_start_mock --holdback 1 --rate-limit 0
zd_stage "pg_regress"
OUT="$ZD_TMP/log/regress.out"
set +e
(cd "$ZD_WORK" && zd_run env ZD_MOCK_URL="$ZD_MOCK_URL" PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres \
	timeout -k 30 2400 make --no-print-directory installcheck PG_CONFIG="$ZD_PG_CONFIG" \
	PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres) >"$OUT" 2>&1 </dev/null
set -e
PASS="$(grep -cE '^(test|    ) +[^ ]+ +\.\.\. +ok( |$)' "$OUT" || true)"
FAILN="$(grep -cE '^(test|    ) +[^ ]+ +\.\.\. +FAILED' "$OUT" || true)"
SCHEDULED="$(grep -vE '^[[:space:]]*(#|$)' "$ZD_WORK/test/regress/schedule" | wc -w)"
if ((PASS + FAILN < SCHEDULED)); then FAILN=$((FAILN + SCHEDULED - PASS - FAILN)); fi
grep -E '^(test|    ) +[^ ]+ +\.\.\. ' "$OUT" || true
zd_stop_mock
# a fast shutdown: every backend exits through exit(), so LeakSanitizer runs
(cd "$ZD_TMP" && zd_run "$REL$BINDIR/pg_ctl" -D "$ZD_PGDATA" -m fast -w -t 120 stop >/dev/null 2>&1) || true
ZD_PG_STARTED=""

# ------------------------------------------------------ 4. the reports
zd_stage "reports"
OURS=0
OTHERS=0
KINDS=""
shopt -s nullglob
for f in "$ZD_TMP"/san/*; do
	# one file per process; a file may hold several reports (leaks)
	n_ours="$(awk '
		/^==[0-9]+==ERROR: / && !/LeakSanitizer/ || /^[^ ].*runtime error: / || /^(Direct|Indirect) leak of / {
			if (rep != "") { print (ours ? "ours" : "other") "\t" head }
			rep = $0; head = $0; ours = 0
		}
		/zendesk_fdw\.so/ { ours = 1 }
		{ if (rep != "") rep = rep "\n" $0 }
		END { if (rep != "") print (ours ? "ours" : "other") "\t" head }
	' "$f")"
	[[ -n "$n_ours" ]] || continue
	while IFS=$'\t' read -r who head; do
		if [[ "$who" == ours ]]; then
			OURS=$((OURS + 1))
			printf -- '---- report attributed to zendesk_fdw.so (%s) ----\n' "$f"
			cat "$f"
		else
			OTHERS=$((OTHERS + 1))
			KINDS+="$(printf '%s' "$head" | sed -E 's/^==[0-9]+==//; s/ of [0-9]+ byte.*//; s/ on address.*//' | cut -c1-80)"$'\n'
		fi
	done <<<"$n_ours"
done
if ((OTHERS > 0)); then
	zd_log "$OTHERS report(s) outside zendesk_fdw.so (PostgreSQL or libraries; not counted), by kind:"
	printf '%s' "$KINDS" | sort | uniq -c | sort -rn | head -n 20
fi
CRASH=0
if grep -qE 'terminated by signal|was terminated by exception|PANIC' "$ZD_PG_LOG"; then
	CRASH=1
	grep -E 'terminated by signal|PANIC' "$ZD_PG_LOG" | head
fi
if ((FAILN > 0)); then
	zd_tail "$ZD_WORK/test/regress/out/regression.diffs" 80 "regression.diffs"
fi
printf 'sanitize: pg_regress %d passed, %d failed in %ds; reports in zendesk_fdw.so: %d; elsewhere: %d; server crashes: %d\n' \
	"$PASS" "$FAILN" "$((SECONDS - T0))" "$OURS" "$OTHERS" "$CRASH"
if ((OURS == 0 && FAILN == 0 && CRASH == 0 && PASS > 0)); then
	printf 'sanitize: PASS: no AddressSanitizer, LeakSanitizer or UBSan report from the extension'"'"'s own code\n'
	RC=0
else
	printf 'sanitize: FAIL\n'
	RC=1
fi
printf '%d passed, %d failed\n' "$PASS" "$FAILN"
exit "$RC"
