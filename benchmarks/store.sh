#!/usr/bin/env bash
# The stack end to end with the services on SQLite (each its own file,
# synchronous=FULL) and on one PostgreSQL server (a local one that
# tests/integration/postgres_test.sh starts: fsync off there, so this compares
# the stores' round trips and locking, not the disks), one orchestrator, in the
# same run: `sagactl bench` at concurrency 32.
#
#   benchmarks/store.sh BUILD_BIN_DIR          SECONDS_EACH (default 10)
set -euo pipefail
BIN=$(readlink -f "${1:-build/bin}")
if [ -z "${SAGALAB_TEST_PG_URL:-}" ]; then
  exec "$(dirname "$0")/../tests/integration/postgres_test.sh" "$BIN" "$0" "$BIN"
fi
SECS=${SECONDS_EACH:-10}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
echo '{"LAPTOP":10000000,"MOUSE":10000000,"TECLADO":10000000,"AURICULARES":10000000,"MONITOR":10000000}' > "$WORK/stock.json"
for store in sqlite "$SAGALAB_TEST_PG_URL"; do
  rm -rf "$WORK/stack"; mkdir "$WORK/stack"
  extra=(); [ "$store" = sqlite ] || extra=(--store "$store")
  (cd "$WORK/stack" && "$BIN/sagactl" up --fresh --base-port 0 --stock "$WORK/stock.json" "${extra[@]}" > /dev/null)
  out=$(cd "$WORK/stack" && "$BIN/sagactl" bench --duration "$SECS" --concurrency 32 --json || true)
  (cd "$WORK/stack" && "$BIN/sagactl" down > /dev/null)
  echo "$out" | jq -c --arg store "${store%%://*}" '{store: $store, per_second: (.per_second|floor), errors,
    p50: .latency_ms.p50, p99: .latency_ms.p99, verify}'
done
