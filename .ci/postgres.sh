#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server for the policy/sqlstore tests.
#
#   eval "$(bash .ci/postgres.sh start)"   # start; prints export SDA_TEST_POSTGRES_DSN=... and SDA_TEST_POSTGRES_DIR=...
#   bash .ci/postgres.sh stop              # stop the server started above and delete its files
#   bash .ci/postgres.sh stop-all          # stop every server started from this checkout
#
# Every start makes a new server: it listens on 127.0.0.1 on a free port,
# keeps its data and its Unix socket in a fresh temporary directory, and
# runs as a non-root user (postgres, or the invoking user when not root).
# Starts never stop a server, so that several runs on one machine (a
# developer's, CI's, other checkouts') do not disturb each other.
#
# "stop" stops the server named by SDA_TEST_POSTGRES_DIR, which the start
# exported; without it, the server started last from this checkout that is
# not yet stopped. The servers started from this checkout are listed in
# .ci/.state/postgres (ignored by git). stop deletes only directories that
# this script created (they hold a marker file).
# All diagnostics go to stderr; stdout carries only the export lines.
set -euo pipefail

state_dir="$(cd "$(dirname "$0")" && pwd)/.state"
state_file="$state_dir/postgres"
marker=sda-test-postgres

find_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
		return 0
	fi
	return 1
}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# forget DIR removes DIR from this checkout's list of servers.
forget() {
	local dir="$1" rest
	[ -f "$state_file" ] || return 0
	rest="$(grep -vxF -- "$dir" "$state_file" || true)"
	if [ -n "$rest" ]; then
		printf '%s\n' "$rest" >"$state_file"
	else
		rm -f -- "$state_file"
	fi
}

# stop_dir DIR stops the server in DIR and deletes DIR, if this script made it.
stop_dir() {
	local dir="$1" bin
	case "$dir" in
	/*/sda-pg.*) ;;
	*) echo "postgres.sh: $dir is not a server directory of this script; not stopping it" >&2; return 1 ;;
	esac
	if [ ! -d "$dir" ]; then
		echo "postgres.sh: $dir no longer exists" >&2
		forget "$dir"
		return 0
	fi
	if [ ! -f "$dir/$marker" ]; then
		echo "postgres.sh: $dir has no $marker marker; not stopping it" >&2
		return 1
	fi
	if [ -d "$dir/data" ] && bin="$(find_bin)"; then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
	fi
	rm -rf -- "$dir"
	forget "$dir"
}

stop() {
	local dir="${SDA_TEST_POSTGRES_DIR:-}"
	if [ -z "$dir" ]; then
		if [ ! -s "$state_file" ]; then
			echo "postgres.sh: nothing to stop (SDA_TEST_POSTGRES_DIR is unset and no server of this checkout is listed in $state_file)" >&2
			return 0
		fi
		dir="$(tail -n 1 "$state_file")"
	fi
	stop_dir "$dir"
}

stop_all() {
	local dir status=0
	[ -s "$state_file" ] || return 0
	while read -r dir; do
		stop_dir "$dir" || status=1
	done < <(cat "$state_file")
	return "$status"
}

# free_port prints a TCP port that is free on 127.0.0.1 now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

start() {
	local bin
	if ! bin="$(find_bin)"; then
		echo "postgres.sh: PostgreSQL not found; installing Debian's postgresql" >&2
		if [ "$(id -u)" = 0 ]; then
			apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
		else
			sudo apt-get update >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
		fi
		bin="$(find_bin)"
	fi
	if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
		useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres >&2
	fi

	local dir port attempt
	dir="$(mktemp -d "${TMPDIR:-/tmp}/sda-pg.XXXXXX")"
	dir="$(cd "$dir" && pwd)"
	echo "started by .ci/postgres.sh from $(cd "$(dirname "$0")/.." && pwd)" >"$dir/$marker"
	chmod 755 "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$dir"
	fi
	mkdir -p "$state_dir"
	echo "$dir" >>"$state_file"

	as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; stop_dir "$dir"; exit 1; }
	# The port is free when chosen but may be taken before the server binds
	# it (another run starting at the same time): then try another one.
	for attempt in 1 2 3 4 5; do
		port="$(free_port)"
		if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			start >&2; then
			echo "export SDA_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
			echo "export SDA_TEST_POSTGRES_DIR='$dir'"
			return 0
		fi
		echo "postgres.sh: the server did not start on port $port (attempt $attempt)" >&2
	done
	cat "$dir/server.log" >&2
	stop_dir "$dir"
	exit 1
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
stop-all) stop_all ;;
*) echo "usage: $0 [start|stop|stop-all]" >&2; exit 2 ;;
esac
