#!/usr/bin/env bash
# Every figure of the second speed round's targets (issue #28), from one run of
# one build, as one table: measured, target, met or not. The stack with each
# program's default flags (synchronous=FULL), a large stock, no faults, under
# `sagactl bench` at concurrency 32 and 256 (ROUNDS runs each, the best and the
# range), the ceiling (a minimal cpp-httplib server under the same client), and
# the simulator on one core (`taskset -c 0`, `--jobs 1`, seed 7, fixed mix):
# 2,000 and 1,000,000 sagas with the in-memory saga log (a flat cost per saga
# keeps the two within 20%), 200,000 with the real SQLite log.
#
#   benchmarks/targets.sh [BIN_DIR]        (default build/bin; ROUNDS 3, SECONDS_EACH 10)
#
# Prints one JSON line per run as it goes (to stderr) and the table at the end.
set -euo pipefail
BIN=$(readlink -f "${1:-build/bin}")
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_EACH:-10}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
echo '{"LAPTOP":10000000,"MOUSE":10000000,"TECLADO":10000000,"AURICULARES":10000000,"MONITOR":10000000}' > "$WORK/stock.json"
steal_line() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

stack_run() {  # concurrency -> one JSON line
  rm -rf "$WORK/stack"; mkdir "$WORK/stack"
  (cd "$WORK/stack" && "$BIN/sagactl" up --fresh --base-port 0 --stock "$WORK/stock.json" > /dev/null)
  local s0 s1 out
  s0=$(steal_line)
  out=$(cd "$WORK/stack" && "$BIN/sagactl" bench --duration "$SECS" --concurrency "$1" --json --no-verify || true)
  s1=$(steal_line)
  (cd "$WORK/stack" && "$BIN/sagactl" down > /dev/null)
  echo "$out" | jq -c --arg steal "$(echo "$s0 $s1" | awk '{printf "%.3f", ($3-$1)/($4-$2)}')" \
    '{concurrency, per_second: (.per_second|floor), errors, p99: (.latency_ms.p99 * 10 | round / 10), steal: ($steal|tonumber),
      peak_rss_mb: ([.peak_rss_kb[]] | max / 1024 | floor)}'
}

sim_run() {  # sagas saga-log -> one JSON line
  local out
  out=$( { /usr/bin/time -f "rss %M" taskset -c 0 "$BIN/sagactl" simulate --seed 7 --sagas "$1" --jobs 1 \
           --mix fixed --saga-log "$2" >/dev/null; } 2>&1 )
  jq -nc --argjson n "$1" --arg log "$2" --argjson rate "$(grep -o '([0-9]* sagas/s)' <<<"$out" | tr -dc 0-9)" \
    --argjson kb "$(grep -o 'rss [0-9]*' <<<"$out" | tr -dc 0-9)" \
    '{sagas: $n, saga_log: $log, per_second: $rate, peak_rss_mb: ($kb / 1024 | floor)}'
}

: > "$WORK/runs"
for r in $(seq "$ROUNDS"); do
  for c in 32 256; do stack_run "$c" | tee -a "$WORK/runs" >&2; done
  for spec in "2000 memory" "1000000 memory" "200000 sqlite"; do
    # shellcheck disable=SC2086
    sim_run $spec | tee -a "$WORK/runs" >&2
  done
done
"$BIN/echo_server" 64 > "$WORK/port" & pid=$!
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
"$BIN/sagactl" bench --raw-url "http://127.0.0.1:$(cat "$WORK/port")/" --duration "$SECS" --concurrency 32 --json |
  jq -c '{ceiling: (.per_second / 6 | floor)}' | tee -a "$WORK/runs" >&2
kill "$pid"; wait "$pid" 2>/dev/null || true

jq -rs '
  def range(f): (map(f) | "\(min)-\(max)");
  def mark(ok): if ok then "met" else "not met" end;
  (map(select(.concurrency == 32))) as $c32 | (map(select(.concurrency == 256))) as $c256 |
  (map(select(.ceiling)) | .[0].ceiling) as $ceil |
  ($c32 | max_by(.per_second)) as $b32 | ($c256 | max_by(.per_second)) as $b256 |
  (map(select(.saga_log == "memory" and .sagas == 2000)) | max_by(.per_second)) as $s2k |
  (map(select(.saga_log == "memory" and .sagas == 1000000)) | max_by(.per_second)) as $s1m |
  (map(select(.saga_log == "sqlite")) | max_by(.per_second)) as $sql |
  (map(select(.concurrency)) | map(.peak_rss_mb) | max) as $rss |
  "| figure | measured (best run; range) | target | |",
  "|---|---|---|---|",
  "| stack c32, sagas/s | \($b32.per_second) (\($c32 | range(.per_second))) | >= 2,000 | \(mark($b32.per_second >= 2000)) |",
  "| stack c32, p99 ms (of the best run) | \($b32.p99) (\($c32 | range(.p99))) | < 25 | \(mark($b32.p99 < 25)) |",
  "| stack c256, sagas/s | \($b256.per_second) (\($c256 | range(.per_second))) | >= 2,000 | \(mark($b256.per_second >= 2000)) |",
  "| stack c256, p99 ms | \($b256.p99) (\($c256 | range(.p99))) | < 150 | \(mark($b256.p99 < 150)) |",
  "| stack c256, errors (all runs) | \($c256 | map(.errors) | add) | 0 | \(mark(($c256 | map(.errors) | add) == 0)) |",
  "| share of the loopback ceiling (\($ceil) sagas/s) | \(($b32.per_second / $ceil * 100 | round) / 100) | >= 0.25 | \(mark($b32.per_second / $ceil >= 0.25)) |",
  "| simulator, one core, memory log, 1,000,000 sagas/s | \($s1m.per_second) | >= 100,000 | \(mark($s1m.per_second >= 100000)) |",
  "| simulator, one core, SQLite log, 200,000 sagas/s | \($sql.per_second) | >= 30,000 | \(mark($sql.per_second >= 30000)) |",
  "| simulator, 2,000 vs 1,000,000 sagas | \($s2k.per_second) vs \($s1m.per_second) | within 20% | \(mark(($s2k.per_second - $s1m.per_second | fabs) <= 0.2 * $s2k.per_second)) |",
  "| peak RSS per program (stack, all runs) | \($rss) MB | <= 15 MB | \(mark($rss <= 15)) |",
  "| steal during the stack runs | \(map(select(.concurrency)) | range(.steal)) | | |"
' "$WORK/runs"
