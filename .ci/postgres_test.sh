#!/usr/bin/env bash
# Test of .ci/postgres.sh: servers started from two checkouts, and two runs
# in one checkout, do not stop each other; "stop" stops only its own server.
#
#   bash .ci/postgres_test.sh
#
# A second checkout is simulated by a copy of the script in a temporary
# directory. TMPDIR points into that directory too, so the test touches no
# file outside it and this checkout's .ci/.state.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/sda-pg-test.XXXXXX")"
chmod 755 "$scratch"
export TMPDIR="$scratch"
other="$scratch/other-checkout"
mkdir -p "$other/.ci"
cp .ci/postgres.sh "$other/.ci/postgres.sh"

find_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/psql" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	dirname "$(command -v psql)"
}

# Every server the test started, by its directory, for the cleanup.
started=()
cleanup() {
	local dir
	for dir in "${started[@]}"; do
		if [ -d "$dir/data" ]; then
			if [ "$(id -u)" = 0 ]; then
				runuser -u postgres -- "$(find_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
			else
				"$(find_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
			fi
		fi
	done
	rm -rf -- "$scratch"
	# This checkout's record of the servers the test started.
	for dir in "${started[@]}"; do
		[ -f "$repo/.ci/.state/postgres" ] && sed -i "\|^$dir\$|d" "$repo/.ci/.state/postgres"
	done
	return 0
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# start CHECKOUT prints the export lines of a server started from CHECKOUT.
start() {
	(cd "$1" && bash .ci/postgres.sh start)
}

# value NAME EXPORTS prints the value of "export NAME='...'" in EXPORTS.
value() {
	sed -n "s/^export $1='\(.*\)'\$/\1/p" <<<"$2"
}

# up DSN succeeds when a server answers at DSN.
up() {
	"$(find_bin)/psql" "$1" -Atc 'SELECT 1' >/dev/null 2>&1
}

a="$(start "$repo")"
dsn_a="$(value SDA_TEST_POSTGRES_DSN "$a")" dir_a="$(value SDA_TEST_POSTGRES_DIR "$a")"
started+=("$dir_a")
[ -n "$dsn_a" ] && [ -n "$dir_a" ] || fail "start printed no DSN or directory: $a"
up "$dsn_a" || fail "server A does not answer after its start"

b="$(start "$other")"
dsn_b="$(value SDA_TEST_POSTGRES_DSN "$b")" dir_b="$(value SDA_TEST_POSTGRES_DIR "$b")"
started+=("$dir_b")
up "$dsn_b" || fail "server B does not answer after its start"
up "$dsn_a" || fail "starting a server from another checkout stopped this checkout's server"

# A second run in this checkout (a developer's shell and CI).
c="$(start "$repo")"
dsn_c="$(value SDA_TEST_POSTGRES_DSN "$c")" dir_c="$(value SDA_TEST_POSTGRES_DIR "$c")"
started+=("$dir_c")
up "$dsn_c" || fail "server C does not answer after its start"
up "$dsn_a" || fail "a second start in one checkout stopped the first run's server"
up "$dsn_b" || fail "a start in this checkout stopped the other checkout's server"

# Each run stops its own server, named by the environment of its start.
(cd "$other" && SDA_TEST_POSTGRES_DIR="$dir_b" bash .ci/postgres.sh stop)
up "$dsn_b" && fail "stop left server B running"
[ -e "$dir_b" ] && fail "stop left B's directory $dir_b"
up "$dsn_a" || fail "stopping B stopped A"
up "$dsn_c" || fail "stopping B stopped C"

SDA_TEST_POSTGRES_DIR="$dir_c" bash .ci/postgres.sh stop
up "$dsn_c" && fail "stop left server C running"
up "$dsn_a" || fail "stopping C stopped A"

# Without the environment, stop takes the server started last from this
# checkout and not yet stopped: A.
(unset SDA_TEST_POSTGRES_DIR; bash .ci/postgres.sh stop)
up "$dsn_a" && fail "stop without the environment left server A running"
[ -e "$dir_a" ] && fail "stop left A's directory $dir_a"

# stop refuses a directory that is not one of its servers.
mkdir "$scratch/not-a-server"
if SDA_TEST_POSTGRES_DIR="$scratch/not-a-server" bash .ci/postgres.sh stop 2>/dev/null; then
	fail "stop accepted a directory it did not create"
fi
[ -d "$scratch/not-a-server" ] || fail "stop deleted a directory it did not create"

echo "postgres.sh: isolation test passed"
