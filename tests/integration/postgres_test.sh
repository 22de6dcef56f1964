#!/usr/bin/env bash
# The tests on PostgreSQL: starts a real server (initdb and pg_ctl from
# Debian's postgresql package, in a temporary directory, on a free port; as the
# postgres user when run as root, since PostgreSQL refuses to run as root),
# runs the store, domain and saga-log suites and the replica tests (services,
# orchestrators killed -9 in turn, `sagactl up --replicas`) against it with
# SAGALAB_TEST_PG_URL set, and stops exactly that server.
# Exit 77 (skipped, the reason printed) when no server can start here.
#
#   tests/integration/postgres_test.sh BIN_DIR              the tests
#   tests/integration/postgres_test.sh BIN_DIR COMMAND ...  COMMAND instead, with SAGALAB_TEST_PG_URL set
#                                                            (benchmarks/store.sh uses it)
set -uo pipefail
BIN=$(readlink -f "$1")
skip() { echo "SKIPPED: $*"; exit 77; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || skip "no PostgreSQL server here (apt-get install postgresql)"
DIR=$(mktemp -d /tmp/sagalab-pg-XXXXXX)
chmod 755 "$DIR"
AS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || skip "running as root and no postgres user to run the server as"
  chown postgres "$DIR"
  AS=(runuser -u postgres --)
fi
started=0
stop() {
  [ "$started" = 1 ] && "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1
  rm -rf "$DIR"
}
trap stop EXIT
"${AS[@]}" "$PGBIN/initdb" -D "$DIR/data" -U sagalab --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1 ||
  skip "initdb failed: $(tail -3 "$DIR/initdb.log")"
# A port drawn at random; the server refuses one in use, and another is drawn.
for _ in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 20000))
  # fsync off: these tests are about concurrency, not the server's own durability.
  if "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
       -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null 2>&1; then
    started=1
    break
  fi
done
[ "$started" = 1 ] || skip "the server did not start: $(tail -5 "$DIR/server.log" 2>/dev/null)"
export SAGALAB_TEST_PG_URL="postgresql://sagalab@127.0.0.1:$PORT/postgres"
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on port $PORT"
if [ $# -gt 1 ]; then
  shift
  "$@"
  exit $?
fi
rc=0
"$BIN/unit_tests" "[domain],[saga-log],[postgresql]" || rc=1
"$BIN/integration_tests" "[postgresql]" || rc=1
exit $rc
