#!/usr/bin/env bash
# The stack end to end, each program with its default flags (synchronous=FULL),
# a large stock, no faults: `sagactl bench` at concurrency 32 and 256, then the
# ceiling (a minimal cpp-httplib server under the same client) in the same run.
#
#   benchmarks/stack.sh BENCH_SAGACTL [STACK_BIN_DIR ...]
#
# BENCH_SAGACTL measures; each STACK_BIN_DIR (default: the one holding
# BENCH_SAGACTL) provides the five programs, so that two builds (before and
# after a change) are measured in the same run. SECONDS_EACH (default 10).
set -euo pipefail
BENCH=$(readlink -f "$1"); shift
DIRS=("$@"); [ ${#DIRS[@]} -gt 0 ] || DIRS=("$(dirname "$BENCH")")
SECS=${SECONDS_EACH:-10}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
echo '{"LAPTOP":10000000,"MOUSE":10000000,"TECLADO":10000000,"AURICULARES":10000000,"MONITOR":10000000}' > "$WORK/stock.json"
for d in "${DIRS[@]}"; do
  bin=$(readlink -f "$d")
  for c in 32 256; do
    rm -rf "$WORK/stack"; mkdir "$WORK/stack"
    (cd "$WORK/stack" && "$bin/sagactl" up --fresh --base-port 0 --stock "$WORK/stock.json" > /dev/null)
    out=$(cd "$WORK/stack" && "$BENCH" bench --duration "$SECS" --concurrency "$c" --json --no-verify || true)
    (cd "$WORK/stack" && "$bin/sagactl" down > /dev/null)
    echo "$out" | jq -c --arg bin "$bin" '{bin: $bin, concurrency, per_second: (.per_second|floor), errors,
      p50: .latency_ms.p50, p99: .latency_ms.p99, max: .latency_ms.max, peak_rss_mb: (.peak_rss_kb|map_values(./1024|floor)),
      cpu_s_per_1000: (.cpu_s_per_1000|map_values(.*1000|round/1000))}'
  done
done
ECHO=$(dirname "$BENCH")/echo_server
if [ -x "$ECHO" ]; then
  "$ECHO" 64 > "$WORK/port" & pid=$!
  for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  "$BENCH" bench --raw-url "http://127.0.0.1:$(cat "$WORK/port")/" --duration "$SECS" --concurrency 32 --json |
    jq -c '{ceiling: "echo_server", concurrency, per_second: (.per_second|floor), per_saga_6_exchanges: (.per_second/6|floor), p50: .latency_ms.p50, p99: .latency_ms.p99}'
  kill "$pid"; wait "$pid" 2>/dev/null || true
fi
