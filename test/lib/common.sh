# shellcheck shell=bash
# test/lib/common.sh: shared by scripts/test.sh and scripts/demo.sh.
#
# Source it from a bash script that runs under `set -euo pipefail`, then call
# zd_init "<kind>".  It provides: package installation (zd_ensure_packages),
# the build (zd_build), a temp dir and a copy of the tree the PostgreSQL user
# can use (zd_make_tmp, zd_prepare_worktree), a throwaway cluster
# (zd_start_cluster / zd_stop_cluster), the mock Zendesk server
# (zd_start_mock / zd_stop_mock), and zd_cleanup for an EXIT trap.
#
# PostgreSQL refuses to run as root, so when the caller is root every server
# and test runs as the `postgres` system user (via setpriv, which execs, so
# the pid of a background command is the pid of the program itself).
#
# Environment knobs (all optional):
#   ZD_SKIP_BUILD=1      skip `make clean; make; make install`
#   ZD_SKIP_APT=1        do not check/install Debian packages
#   ZD_KEEP=1            keep the temp dir (and, in demo.sh, the servers)
#   ZD_PG_MAJOR=15       PostgreSQL major version
#   ZD_PG_CONFIG         pg_config to use (/usr/lib/postgresql/$ZD_PG_MAJOR/bin/pg_config)
#   ZD_PG_PORT_BASE      first port tried for PostgreSQL (55432)
#   ZD_MOCK_PORT_BASE    first port tried for the mock (56432)
#   ZD_MOCK_ARGS         extra arguments for the mock (word-split)
#   ZD_MOCK_READY_TIMEOUT seconds to wait for the mock's ready line (30)
#   ZD_PG_CONF           extra lines appended to postgresql.conf
#   ZD_TMPDIR            parent of the temp dir (/tmp; keep it short: the
#                        unix socket path must stay under 107 bytes)

ZD_PG_MAJOR="${ZD_PG_MAJOR:-15}"
ZD_PACKAGES=(
	"postgresql-${ZD_PG_MAJOR}" "postgresql-server-dev-${ZD_PG_MAJOR}"
	libcurl4-openssl-dev libjson-c-dev "postgresql-${ZD_PG_MAJOR}-cron"
	libipc-run-perl python3 curl make gcc pkg-config
	clang-14 libclang-rt-14-dev llvm-14
)
ZD_READY_RE='zendesk mock listening on http://[^[:space:]]+'

# ---------------------------------------------------------------- messages

zd_log() { printf '==> %s\n' "$*"; }
zd_warn() { printf 'WARNING: %s\n' "$*" >&2; }
zd_die() {
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}
# zd_stage NAME: what the script is doing now (reported if it dies).
zd_stage() { ZD_STAGE="$1"; }

# zd_tail FILE N TITLE: print the last N lines of FILE under a heading.
zd_tail() {
	local file="$1" n="$2" title="$3"
	if [[ -s "$file" ]]; then
		printf -- '---- %s (last %s lines of %s) ----\n' "$title" "$n" "$file"
		tail -n "$n" -- "$file" || true
		printf -- '---- end of %s ----\n' "$title"
	else
		printf -- '---- %s: %s is missing or empty ----\n' "$title" "$file"
	fi
}

# ---------------------------------------------------------------- setup

# zd_init KIND: compute paths and the user that runs servers and tests.
zd_init() {
	ZD_KIND="$1"
	ZD_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
	ZD_STAGE="init"
	ZD_TMP=""
	ZD_WORK=""
	ZD_PG_STARTED=""
	ZD_MOCK_PID=""
	ZD_MOCK_URL=""
	ZD_USED_PORTS=" "
	ZD_RUN_ID="zdfdw-$$-$(date +%s%N)"
	ZD_PG_CONFIG="${ZD_PG_CONFIG:-/usr/lib/postgresql/${ZD_PG_MAJOR}/bin/pg_config}"
	if [[ "$(id -u)" -eq 0 ]]; then
		ZD_IS_ROOT=1
		ZD_RUN_USER=postgres
		ZD_SUDO=()
	else
		ZD_IS_ROOT=""
		ZD_RUN_USER="$(id -un)"
		if command -v sudo >/dev/null 2>&1; then
			ZD_SUDO=(sudo)
		else
			ZD_SUDO=()
		fi
	fi
	export PYTHONDONTWRITEBYTECODE=1
}

# zd_ensure_packages: install the Debian packages that are missing.
zd_ensure_packages() {
	zd_stage "packages"
	if [[ "${ZD_SKIP_APT:-}" == 1 ]]; then
		zd_log "ZD_SKIP_APT=1: not checking Debian packages"
		return 0
	fi
	command -v dpkg-query >/dev/null 2>&1 ||
		zd_die "dpkg-query not found: these scripts need Debian (or Ubuntu); install by hand: ${ZD_PACKAGES[*]}"
	local missing=() p st
	for p in "${ZD_PACKAGES[@]}"; do
		st="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
		[[ "$st" == ii* ]] || missing+=("$p")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		zd_log "all ${#ZD_PACKAGES[@]} required Debian packages are installed"
		return 0
	fi
	local apt=()
	if [[ -n "$ZD_IS_ROOT" ]]; then
		apt=()
	elif [[ ${#ZD_SUDO[@]} -gt 0 ]]; then
		apt=("${ZD_SUDO[@]}" env DEBIAN_FRONTEND=noninteractive)
	else
		printf 'ERROR: missing Debian packages and no root or sudo to install them.\n' >&2
		printf 'Install them as root with:\n  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends %s\n' "${missing[*]}" >&2
		exit 1
	fi
	zd_log "installing missing Debian packages: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive "${apt[@]}" apt-get update </dev/null ||
		zd_die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive "${apt[@]}" apt-get install -y --no-install-recommends "${missing[@]}" </dev/null ||
		zd_die "apt-get install failed for: ${missing[*]}"
	for p in "${missing[@]}"; do
		st="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
		[[ "$st" == ii* ]] || zd_die "package $p is still not installed after apt-get install"
	done
}

# zd_pg_paths: locate pg_config and the PGXS test tooling.
zd_pg_paths() {
	[[ -x "$ZD_PG_CONFIG" ]] ||
		zd_die "$ZD_PG_CONFIG not found: is postgresql-server-dev-${ZD_PG_MAJOR} installed?"
	ZD_PG_BINDIR="$("$ZD_PG_CONFIG" --bindir)"
	local pgxs_mk
	pgxs_mk="$("$ZD_PG_CONFIG" --pgxs)"
	ZD_PGXS_SRC="$(cd -- "$(dirname -- "$pgxs_mk")/.." && pwd -P)"
	ZD_PGXS_PERL="$ZD_PGXS_SRC/test/perl"
	ZD_PG_REGRESS="$ZD_PGXS_SRC/test/regress/pg_regress"
	[[ -x "$ZD_PG_BINDIR/initdb" ]] || zd_die "initdb not found in $ZD_PG_BINDIR: is postgresql-${ZD_PG_MAJOR} installed?"
	# PATH for everything run as the server/test user: no per-user dirs of
	# root (e.g. /root/.pyenv) that postgres could not read.
	if [[ -n "$ZD_IS_ROOT" ]]; then
		ZD_RUN_PATH="$ZD_PG_BINDIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		local home
		home="$(getent passwd "$ZD_RUN_USER" | cut -d: -f6)"
		[[ -n "$home" ]] || zd_die "system user $ZD_RUN_USER does not exist (postgresql-common creates it)"
		ZD_RUN_PREFIX=(setpriv "--reuid=$ZD_RUN_USER" "--regid=$ZD_RUN_USER" --init-groups --
			env "HOME=$home" "USER=$ZD_RUN_USER" "LOGNAME=$ZD_RUN_USER" "PATH=$ZD_RUN_PATH"
			"ZD_RUN_ID=$ZD_RUN_ID")
	else
		ZD_RUN_PATH="$ZD_PG_BINDIR:$PATH"
		ZD_RUN_PREFIX=(env "PATH=$ZD_RUN_PATH" "ZD_RUN_ID=$ZD_RUN_ID")
	fi
	ZD_PYTHON="$(PATH="$ZD_RUN_PATH" command -v python3 || true)"
	[[ -n "$ZD_PYTHON" ]] || zd_die "python3 not found in $ZD_RUN_PATH"
}

# zd_run CMD...: run CMD as the server/test user (postgres when root), with
# ZD_RUN_ID in its environment (see zd_stop_leftovers).  The caller's cwd
# must be readable by that user.
zd_run() { "${ZD_RUN_PREFIX[@]}" "$@"; }

# zd_build: make clean; make; make install (unless ZD_SKIP_BUILD=1).
zd_build() {
	zd_stage "build"
	if [[ "${ZD_SKIP_BUILD:-}" == 1 ]]; then
		zd_log "ZD_SKIP_BUILD=1: skipping make clean / make / make install"
		return 0
	fi
	local t0=$SECONDS jobs
	jobs="$(nproc 2>/dev/null || echo 2)"
	zd_log "building in $ZD_ROOT (make clean; make; make install)"
	make -C "$ZD_ROOT" --no-print-directory PG_CONFIG="$ZD_PG_CONFIG" clean </dev/null ||
		zd_die "make clean failed"
	make -C "$ZD_ROOT" --no-print-directory -j"$jobs" PG_CONFIG="$ZD_PG_CONFIG" </dev/null ||
		zd_die "make failed (warnings are errors: -Werror)"
	local install=()
	if [[ -z "$ZD_IS_ROOT" ]] && ! [[ -w "$("$ZD_PG_CONFIG" --pkglibdir)" && -w "$("$ZD_PG_CONFIG" --sharedir)/extension" ]]; then
		[[ ${#ZD_SUDO[@]} -gt 0 ]] ||
			zd_die "make install needs write access to $("$ZD_PG_CONFIG" --pkglibdir): run as root or install sudo"
		install=("${ZD_SUDO[@]}")
	fi
	"${install[@]}" make -C "$ZD_ROOT" --no-print-directory PG_CONFIG="$ZD_PG_CONFIG" install </dev/null ||
		zd_die "make install failed"
	zd_log "build and install took $((SECONDS - t0))s"
}

# zd_make_tmp: create $ZD_TMP (owned by the run user) with log/ sock/.
zd_make_tmp() {
	zd_stage "temp dir"
	local parent="${ZD_TMPDIR:-/tmp}"
	ZD_TMP="$(mktemp -d "$parent/zdfdw-$ZD_KIND.XXXXXX")" || zd_die "mktemp -d in $parent failed"
	chmod 755 "$ZD_TMP"
	mkdir -p "$ZD_TMP/log" "$ZD_TMP/sock"
	if [[ -n "$ZD_IS_ROOT" ]]; then
		chown -R "$ZD_RUN_USER:" "$ZD_TMP"
	fi
	chmod 700 "$ZD_TMP/sock"
	ZD_SOCK="$ZD_TMP/sock"
	ZD_PGDATA="$ZD_TMP/data"
	ZD_PG_LOG="$ZD_TMP/log/postgresql.log"
	ZD_MOCK_LOG="$ZD_TMP/log/mock.log"
	if (( ${#ZD_SOCK} + 20 > 107 )); then
		zd_die "socket dir path $ZD_SOCK is too long for a unix socket: set ZD_TMPDIR to a shorter dir"
	fi
	zd_log "temp dir: $ZD_TMP"
}

# zd_prepare_worktree: $ZD_WORK is where tests run.  As root: a copy of the
# tree (without .git and build output) owned by the run user, since postgres
# may not be able to read or write the caller's tree.  Otherwise: the tree.
zd_prepare_worktree() {
	zd_stage "work tree"
	if [[ -z "$ZD_IS_ROOT" ]]; then
		ZD_WORK="$ZD_ROOT"
		return 0
	fi
	ZD_WORK="$ZD_TMP/work"
	mkdir -p "$ZD_WORK"
	tar -C "$ZD_ROOT" \
		--exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./test/regress/out --exclude=./tmp_check --exclude=./results \
		--exclude='__pycache__' -cf - . | tar -C "$ZD_WORK" -xf - ||
		zd_die "copying $ZD_ROOT to $ZD_WORK failed"
	chown -R "$ZD_RUN_USER:" "$ZD_WORK"
	zd_log "running as $ZD_RUN_USER in a copy of the tree: $ZD_WORK"
}

# ---------------------------------------------------------------- ports

# zd_port_free PORT: true if nothing listens on 127.0.0.1:PORT and we did
# not hand PORT out already in this run.
zd_port_free() {
	[[ "$ZD_USED_PORTS" != *" $1 "* ]] || return 1
	"$ZD_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# As servers do: a port held only by TIME_WAIT connections counts as free.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
' "$1"
}

# zd_free_port BASE: print the first free port in [BASE, BASE+500).
zd_free_port() {
	local p="$1" end=$(($1 + 500))
	while ((p < end)); do
		if zd_port_free "$p"; then
			printf '%s\n' "$p"
			return 0
		fi
		p=$((p + 1))
	done
	zd_die "no free TCP port in [$1, $end) on 127.0.0.1"
}

# ---------------------------------------------------------------- PostgreSQL

# zd_start_cluster: initdb + start a throwaway cluster in $ZD_PGDATA.
# Sets and exports PGHOST (socket dir), PGPORT, PGUSER=postgres.
zd_start_cluster() {
	zd_stage "cluster start"
	local t0=$SECONDS
	(cd "$ZD_TMP" && zd_run initdb -D "$ZD_PGDATA" -U postgres -A trust -E UTF8 --no-locale --no-sync \
		>"$ZD_TMP/log/initdb.log" 2>&1) || {
		zd_tail "$ZD_TMP/log/initdb.log" 50 "initdb output"
		zd_die "initdb failed"
	}
	{
		printf '\n# added by test/lib/common.sh\n'
		printf "listen_addresses = '127.0.0.1'\n"
		printf "unix_socket_directories = '%s'\n" "$ZD_SOCK"
		printf 'max_worker_processes = 32\n'
		printf 'logging_collector = off\n'
		printf 'fsync = off\n'
		printf 'shared_buffers = 128MB\n'
		if [[ -n "${ZD_PG_CONF:-}" ]]; then
			printf '%s\n' "$ZD_PG_CONF"
		fi
	} >>"$ZD_PGDATA/postgresql.conf"
	local attempt port base="${ZD_PG_PORT_BASE:-55432}"
	for attempt in 1 2 3 4 5; do
		port="$(zd_free_port "$base")"
		ZD_USED_PORTS+="$port "
		rm -f -- "$ZD_PG_LOG" # pg_ctl creates it as the run user
		if (cd "$ZD_TMP" && zd_run pg_ctl -D "$ZD_PGDATA" -l "$ZD_PG_LOG" -o "-p $port" -w -t 60 start \
			>"$ZD_TMP/log/pg_ctl.log" 2>&1 </dev/null); then
			ZD_PG_STARTED=1
			break
		fi
		if grep -qE 'could not bind|Address already in use|could not create any TCP/IP sockets' "$ZD_PG_LOG"; then
			zd_warn "port $port was taken before PostgreSQL could bind it (attempt $attempt); trying another"
			base=$((port + 1))
			continue
		fi
		cat "$ZD_TMP/log/pg_ctl.log" >&2 || true
		zd_tail "$ZD_PG_LOG" 50 "server log"
		zd_die "PostgreSQL did not start"
	done
	[[ -n "$ZD_PG_STARTED" ]] || zd_die "PostgreSQL did not start after 5 attempts (ports kept being taken)"
	export PGHOST="$ZD_SOCK" PGPORT="$port" PGUSER=postgres
	ZD_PG_PORT="$port"
	(cd "$ZD_TMP" && zd_run psql -X -q -At -d postgres -c 'SELECT 1' >/dev/null) ||
		zd_die "PostgreSQL started but does not accept connections on $ZD_SOCK port $port"
	zd_log "PostgreSQL $ZD_PG_MAJOR running as $ZD_RUN_USER: port $port, socket dir $ZD_SOCK, log $ZD_PG_LOG ($((SECONDS - t0))s)"
}

# zd_stop_cluster [quiet]: stop our cluster, and any cluster a TAP test left
# running under $ZD_TMP (only ours: they live in our temp dir).
zd_stop_cluster() {
	[[ -n "$ZD_TMP" && -d "$ZD_TMP" ]] || return 0
	local pidfile dir
	while IFS= read -r -d '' pidfile; do
		dir="$(dirname -- "$pidfile")"
		[[ "$dir" == "$ZD_PGDATA" ]] && continue
		zd_warn "stopping a leftover test cluster in $dir"
		(cd "$ZD_TMP" && zd_run pg_ctl -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1) || true
	done < <(find "$ZD_TMP" -name postmaster.pid -print0 2>/dev/null)
	if [[ -n "$ZD_PG_STARTED" ]]; then
		if ! (cd "$ZD_TMP" && zd_run pg_ctl -D "$ZD_PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1); then
			zd_warn "fast shutdown failed; trying immediate"
			(cd "$ZD_TMP" && zd_run pg_ctl -D "$ZD_PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1) || true
		fi
		ZD_PG_STARTED=""
	fi
}

# zd_psql ARGS...: psql as the run user against the throwaway cluster.
zd_psql() { (cd "$ZD_TMP" && zd_run psql -X -v ON_ERROR_STOP=1 "$@"); }

# ---------------------------------------------------------------- mock

# zd_start_mock ARGS...: start test/mock/zendesk_mock.py (from $ZD_WORK)
# on a free port with ARGS (plus $ZD_MOCK_ARGS); wait (bounded) for its
# ready line.  Sets and exports ZD_MOCK_URL and ZD_MOCK (script path).
zd_start_mock() {
	zd_stage "mock start"
	local script="$ZD_WORK/test/mock/zendesk_mock.py"
	[[ -f "$script" ]] || zd_die "mock server $script not found"
	local extra=()
	if [[ -n "${ZD_MOCK_ARGS:-}" ]]; then
		read -r -a extra <<<"$ZD_MOCK_ARGS"
	fi
	local timeout="${ZD_MOCK_READY_TIMEOUT:-30}" attempt port base="${ZD_MOCK_PORT_BASE:-56432}" line deadline
	for attempt in 1 2 3 4 5; do
		port="$(zd_free_port "$base")"
		ZD_USED_PORTS+="$port "
		: >"$ZD_MOCK_LOG"
		(cd "$ZD_WORK" && exec "${ZD_RUN_PREFIX[@]}" PYTHONUNBUFFERED=1 "$ZD_PYTHON" -u "$script" \
			--port "$port" "$@" "${extra[@]}") >>"$ZD_MOCK_LOG" 2>&1 </dev/null &
		ZD_MOCK_PID=$!
		line=""
		deadline=$((SECONDS + timeout))
		while ((SECONDS < deadline)); do
			line="$(grep -m1 -oE "$ZD_READY_RE" "$ZD_MOCK_LOG" || true)"
			[[ -n "$line" ]] && break
			kill -0 "$ZD_MOCK_PID" 2>/dev/null || break
			sleep 0.1
		done
		if [[ -n "$line" ]]; then
			break
		fi
		if ! kill -0 "$ZD_MOCK_PID" 2>/dev/null; then
			wait "$ZD_MOCK_PID" 2>/dev/null || true
			ZD_MOCK_PID=""
			if grep -qiE 'address already in use|errno 98' "$ZD_MOCK_LOG"; then
				zd_warn "mock port $port was taken (attempt $attempt); trying another"
				base=$((port + 1))
				continue
			fi
			zd_tail "$ZD_MOCK_LOG" 50 "mock log"
			zd_die "the mock exited before printing its ready line ('zendesk mock listening on http://HOST:PORT')"
		fi
		zd_tail "$ZD_MOCK_LOG" 50 "mock log"
		zd_die "the mock printed no ready line within ${timeout}s (ZD_MOCK_READY_TIMEOUT)"
	done
	[[ -n "$line" ]] || zd_die "the mock did not start after 5 attempts"
	local url="${line#zendesk mock listening on }"
	url="${url%/}"
	url="${url/\/\/0.0.0.0:/\/\/127.0.0.1:}"
	# The ready line says it listens; check that the control API answers.
	local ok="" i
	for ((i = 0; i < 50; i++)); do
		if curl -sf --max-time 5 -o /dev/null "$url/__mock/health"; then
			ok=1
			break
		fi
		kill -0 "$ZD_MOCK_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [[ -z "$ok" ]]; then
		zd_tail "$ZD_MOCK_LOG" 50 "mock log"
		zd_die "the mock at $url does not answer GET /__mock/health"
	fi
	export ZD_MOCK_URL="$url" ZD_MOCK="$script" ZD_PYTHON
	zd_log "mock Zendesk at $ZD_MOCK_URL (pid $ZD_MOCK_PID, log $ZD_MOCK_LOG)"
}

# zd_stop_mock: TERM the mock we started, KILL after 10s.
zd_stop_mock() {
	[[ -n "$ZD_MOCK_PID" ]] || return 0
	local pid="$ZD_MOCK_PID" i
	ZD_MOCK_PID=""
	kill -TERM "$pid" 2>/dev/null || {
		wait "$pid" 2>/dev/null || true
		return 0
	}
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		zd_warn "mock (pid $pid) ignored SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# zd_stop_leftovers: TERM (then KILL) every process of this run that is
# still there: a test runner interrupted by a signal, a private mock that a
# dying TAP test could not stop...  A process is ours if it carries
# ZD_RUN_ID=<this run> in its environment (zd_run puts it there and children
# inherit it) or names our temp dir on its command line; both are unique to
# this run.
zd_stop_leftovers() {
	local pids=() d pid i
	for d in /proc/[0-9]*; do
		pid="${d#/proc/}"
		[[ "$pid" != "$$" && "$pid" != "$BASHPID" ]] || continue
		if grep -qzxF -- "ZD_RUN_ID=$ZD_RUN_ID" "$d/environ" 2>/dev/null ||
			{ [[ -n "$ZD_TMP" ]] && tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF -- "$ZD_TMP/"; }; then
			pids+=("$pid")
		fi
	done
	[[ ${#pids[@]} -gt 0 ]] || return 0
	zd_warn "stopping leftover processes of this run: ${pids[*]}"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	local alive
	for ((i = 0; i < 50; i++)); do
		alive=()
		for pid in "${pids[@]}"; do
			if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
		done
		[[ ${#alive[@]} -gt 0 ]] || return 0
		pids=("${alive[@]}")
		sleep 0.1
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
}

# zd_cleanup: stop servers and remove the temp dir unless ZD_KEEP=1.
zd_cleanup() {
	zd_stop_mock
	zd_stop_cluster
	zd_stop_leftovers
	if [[ -n "$ZD_TMP" && -d "$ZD_TMP" ]]; then
		if [[ "${ZD_KEEP:-}" == 1 ]]; then
			zd_log "ZD_KEEP=1: kept $ZD_TMP (data: $ZD_PGDATA, logs: $ZD_TMP/log, work tree: ${ZD_WORK:-n/a})"
		else
			rm -rf -- "$ZD_TMP"
		fi
	fi
}
