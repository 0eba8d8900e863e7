#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server for the policy/sqlstore tests.
#
#   eval "$(bash .ci/postgres.sh)"      # start; prints export SDA_TEST_POSTGRES_DSN=... and SDA_TEST_POSTGRES_DIR=...
#   bash .ci/postgres.sh stop           # stop the server started above and delete its files
#
# The server listens on 127.0.0.1 on a free port, keeps its data in a fresh temporary
# directory, and runs as a non-root user (postgres, or the invoking user when not root).
# Its state directory is recorded in ${SDA_TEST_POSTGRES_STATE:-${TMPDIR:-/tmp}/sda-test-postgres.dir}
# so that "stop" finds it without the environment of the start.
# All diagnostics go to stderr; stdout carries only the export lines.
set -euo pipefail

state_file="${SDA_TEST_POSTGRES_STATE:-${TMPDIR:-/tmp}/sda-test-postgres.dir}"

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

stop() {
	[ -f "$state_file" ] || { echo "postgres.sh: nothing to stop ($state_file missing)" >&2; return 0; }
	local dir bin
	dir="$(cat "$state_file")"
	bin="$(find_bin)"
	if [ -d "$dir/data" ]; then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
	fi
	case "$dir" in
	*/sda-pg.*) rm -rf -- "$dir" ;;
	esac
	rm -f -- "$state_file"
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
	if [ -f "$state_file" ]; then
		stop
	fi

	local dir port
	dir="$(mktemp -d "${TMPDIR:-/tmp}/sda-pg.XXXXXX")"
	chmod 755 "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$dir"
	fi
	# A free port: ask the kernel for one, then release it for the server.
	port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000)))"

	as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	echo "$dir" >"$state_file"
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >&2 || { cat "$dir/server.log" >&2; exit 1; }

	echo "export SDA_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
	echo "export SDA_TEST_POSTGRES_DIR='$dir'"
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
