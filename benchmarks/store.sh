#!/usr/bin/env bash
# The stack end to end on SQLite (every program its own file, synchronous=FULL)
# and on one PostgreSQL server (a local one that tests/integration/postgres_test.sh
# starts: fsync off there, so this compares the stores' round trips and locking,
# not the disks), in the same run: `sagactl bench` at concurrency 32 against
#   - SQLite, one orchestrator;
#   - PostgreSQL (the services' data and the saga log), one orchestrator;
#   - PostgreSQL, two orchestrators (`sagactl up --replicas 2`: two lanes, each
#     an orchestrator on its own replica of every service; concurrency 16 each).
# Then the take-over: two orchestrators under load, one frozen (SIGSTOP: it
# stops renewing its leases, and its supervisor does not restart it), the time
# until the other reports taking its sagas over, and whether every saga ends and
# verify passes once the frozen one wakes (its stale writes must be refused).
#
#   benchmarks/store.sh BUILD_BIN_DIR          SECONDS_EACH (default 10), LEASE_MS (default 2000)
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
BIN=$(readlink -f "${1:-build/bin}")
if [ -z "${SAGALAB_TEST_PG_URL:-}" ]; then
  exec "$(dirname "$0")/../tests/integration/postgres_test.sh" "$BIN" "$0" "$BIN"
fi
SECS=${SECONDS_EACH:-10}
LEASE=${LEASE_MS:-2000}
WORK=$(mktemp -d); chmod 711 "$WORK"
S="$BIN/sagactl --stack-dir $WORK/stack"
trap '$S down >/dev/null 2>&1; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
echo '{"LAPTOP":10000000,"MOUSE":10000000,"TECLADO":10000000,"AURICULARES":10000000,"MONITOR":10000000}' > "$WORK/stock.json"
fresh_db() {  # a database of its own per configuration
  PGOPTIONS="-c client_min_messages=warning" psql "$SAGALAB_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS bench_$1" -c "CREATE DATABASE bench_$1" >/dev/null
  echo "${SAGALAB_TEST_PG_URL%/*}/bench_$1"
}
lane() {  # the five URLs of replica N (status --json)
  $S status --json | jq -r --arg sfx "$1" '.programs[] | select(.program | test("^(orquestador|ms-[a-z]+)" + $sfx + "$"))
    | "--" + (.program | sub($sfx + "$"; "")) + "-url " + .url' | tr '\n' ' '
}
report() { jq -c --arg c "$1" '{config: $c, per_second: (.per_second|floor), errors, p50: .latency_ms.p50, p99: .latency_ms.p99, verify}'; }
up() { rm -rf "$WORK/stack"; $S up --fresh --base-port 0 --stock "$WORK/stock.json" --orchestrator-arg=--quiet \
         --orchestrator-arg=--lease-ms=$LEASE "$@" > /dev/null; }

if [ -z "${ONLY_TAKEOVER:-}" ]; then
up
$S bench --duration "$SECS" --concurrency 32 --json | report "sqlite, 1 orchestrator"
$S down > /dev/null

up --store "$(fresh_db one)"
$S bench --duration "$SECS" --concurrency 32 --json | report "postgresql, 1 orchestrator"
$S down > /dev/null

up --store "$(fresh_db two)" --replicas 2
L1=$(lane ""); L2=$(lane "-2")
$BIN/sagactl $L1 bench --duration "$SECS" --concurrency 16 --no-verify --json > "$WORK/a.json" &
$BIN/sagactl $L2 bench --duration "$SECS" --concurrency 16 --no-verify --json > "$WORK/b.json"
wait
v=$($S verify --json >/dev/null && echo passes || echo FAILS)
jq -sc --arg v "$v" '{config: "postgresql, 2 orchestrators", per_second: ((.[0].per_second + .[1].per_second)|floor),
  errors: (.[0].errors + .[1].errors), p50: [.[0].latency_ms.p50, .[1].latency_ms.p50], p99: [.[0].latency_ms.p99, .[1].latency_ms.p99],
  verify: $v}' "$WORK/a.json" "$WORK/b.json"
else
  up --store "$(fresh_db two)" --replicas 2
fi

# Take-over: load on lane 1 and lane 2, then orquestador-2 frozen.
L2=$(lane "-2"); PID2=$($S status --json | jq -r '.programs[] | select(.program == "orquestador-2") | .pid')
$BIN/sagactl $L2 bench --duration 6 --concurrency 16 --no-verify --json > /dev/null 2>&1 &
sleep 3
T0=$(date +%s%3N); kill -STOP "$PID2"
wait || true
took() { (grep '"took-over"' "$WORK/stack/logs/orquestador.log" || true) |
         jq -R 'fromjson? // empty' | jq -s --argjson t0 "$T0" "map(select(.ts >= \$t0)) | $1"; }
for _ in $(seq 1 600); do [ "$(took length)" -gt 0 ] && break; sleep 0.05; done
T1=$(took '.[0].ts // 0')
N=$(took 'map(.sagas) | add // 0')
[ "$T1" -gt 0 ] || T1=$T0  # none: reported as 0 sagas taken
kill -CONT "$PID2"
v=$($S verify --wait-ms 30000 --json >/dev/null && echo passes || echo FAILS)
dropped=$(grep -c '"saga-dropped"' "$WORK/stack/logs/orquestador-2.log" || true)
echo "{\"takeover\": {\"lease_ms\": $LEASE, \"frozen_to_took_over_ms\": $((T1 - T0)), \"sagas_taken\": $N, \"stale_writes_refused\": $dropped, \"verify\": \"$v\"}}"
$S down > /dev/null
