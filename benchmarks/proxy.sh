#!/usr/bin/env bash
# What `sagactl proxy` adds per hop: `sagactl bench --raw-url` against the
# ceiling server (benchmarks/echo_server.cpp) directly, then through the proxy
# without and with recording, at concurrency 1 (latency alone) and 32 (under
# load), in the same run.
#
#   benchmarks/proxy.sh BUILD_BIN_DIR        SECONDS_EACH (default 10)
set -euo pipefail
BIN=$(readlink -f "${1:-build/bin}")
SECS=${SECONDS_EACH:-10}
WORK=$(mktemp -d)
pids=()
# The proxies start inside $(...), a subshell: their pids come back through files.
cleanup() {
  for f in "$WORK"/*.pid; do [ -e "$f" ] && pids+=("$(cat "$f")"); done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
"$BIN/echo_server" 64 > "$WORK/echo.port" & pids+=($!)
for _ in $(seq 50); do [ -s "$WORK/echo.port" ] && break; sleep 0.1; done
ECHO="http://127.0.0.1:$(cat "$WORK/echo.port")"
start_proxy() {  # $1: name, $2: extra flags
  "$BIN/sagactl" proxy --quiet --port 0 --port-file "$WORK/$1.admin" --upstream "echo=127.0.0.1:0->$ECHO" $2 \
    > "$WORK/$1.log" 2>&1 &
  echo $! > "$WORK/$1.pid"
  for _ in $(seq 100); do [ -s "$WORK/$1.admin" ] && break; sleep 0.05; done
  local admin="http://127.0.0.1:$(cat "$WORK/$1.admin")"
  for _ in $(seq 100); do curl -sf "$admin/health" > /dev/null && break; sleep 0.05; done
  curl -s "$admin/admin/upstreams" | jq -r '"http://127.0.0.1:\(.upstreams[0].port)/"'
}
PLAIN=$(start_proxy plain "")
RECORDING=$(start_proxy recording "--record $WORK/exchanges.jsonl")
for c in 1 32; do
  for target in "direct $ECHO/" "proxy $PLAIN" "proxy+record $RECORDING"; do
    set -- $target
    "$BIN/sagactl" bench --raw-url "$2" --duration "$SECS" --concurrency "$c" --json |
      jq -c --arg via "$1" '{via: $via, concurrency, per_second: (.per_second|floor), p50: .latency_ms.p50, p99: .latency_ms.p99}'
  done
done
echo "recorded exchanges: $(wc -l < "$WORK/exchanges.jsonl")"
