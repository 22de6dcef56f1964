#!/usr/bin/env bash
# Two or more builds of the stack under the same closed loop, interleaved in
# rounds (this VM's speed drifts by a third between minutes: only figures taken
# side by side compare). Each program with its default flags (synchronous=FULL),
# a large stock, no faults. Per run: sagas/s, p50/p99, CPU seconds per 1,000
# sagas of the five programs, the bytes they passed to write(2) per saga
# (`wchar` in /proc/PID/io: SQLite's WAL frames and checkpoints, log lines),
# the group commits per saga (each one fsync; from their /metrics),
# context switches per saga (system-wide, from /proc/stat) and the share of
# CPU time the hypervisor stole during the run.
#
#   benchmarks/stack-rounds.sh STACK_BIN_DIR [STACK_BIN_DIR ...]
#
# The first directory's sagactl measures every build. CONCURRENCY (32),
# ROUNDS (3), SECONDS_EACH (8).
set -euo pipefail
DIRS=(); for d in "$@"; do DIRS+=("$(readlink -f "$d")"); done
[ ${#DIRS[@]} -gt 0 ] || { echo "usage: $0 STACK_BIN_DIR [STACK_BIN_DIR ...]" >&2; exit 2; }
BENCH=${DIRS[0]}/sagactl
C=${CONCURRENCY:-32}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
echo '{"LAPTOP":10000000,"MOUSE":10000000,"TECLADO":10000000,"AURICULARES":10000000,"MONITOR":10000000}' > "$WORK/stock.json"
cpu_line() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
switches() { awk '/^ctxt/{print $2}' /proc/stat; }
commits() { local n=0 c; for f in "$WORK"/stack/.sagalab/run/*.port; do
  c=$(curl -s "http://127.0.0.1:$(cat "$f")/metrics" | awk '/^sagalab_group_commit_batch_size_count/{print $2}')
  n=$((n + ${c:-0})); done; echo $n; }
written() { local n=0; for p in $PIDS; do n=$((n + $(awk '/^wchar/{print $2}' "/proc/$p/io"))); done; echo $n; }
for r in $(seq "${ROUNDS:-3}"); do
  for d in "${DIRS[@]}"; do
    rm -rf "$WORK/stack"; mkdir "$WORK/stack"
    PIDS=$(cd "$WORK/stack" && "$d/sagactl" up --fresh --base-port 0 --stock "$WORK/stock.json" | grep -o 'pid [0-9]*' | cut -d' ' -f2)
    c0=$(switches); s0=$(cpu_line); w0=$(written)
    out=$(cd "$WORK/stack" && "$BENCH" bench --duration "${SECONDS_EACH:-8}" --concurrency "$C" --json --no-verify || true)
    c1=$(switches); s1=$(cpu_line); w1=$(written); commits=$(commits)
    (cd "$WORK/stack" && "$d/sagactl" down > /dev/null)
    steal=$(echo "$s0 $s1" | awk '{printf "%.3f", ($3-$1)/($4-$2)}')
    echo "$out" | jq -c --arg d "$d" --arg r "$r" --argjson cs $((c1 - c0)) --argjson steal "$steal" --argjson w $((w1 - w0)) --argjson commits "$commits" \
      '(.requests + 0.0001) as $n
       | {round: $r, bin: $d, concurrency, per_second: (.per_second|floor), p50: (.latency_ms.p50|floor),
          p99: (.latency_ms.p99|floor), errors, cpu_s_per_1000: (.cpu_s_per_1000|add*1000|round/1000),
          commits_per_saga: ($commits / $n | .*100|round/100), kb_written_per_saga: ($w / 1024 / $n | .*10|round/10),
          switches_per_saga: ($cs / $n | .*10|round/10), steal: $steal, peak_rss_mb: ([.peak_rss_kb[]]|max/1024|floor)}'
  done
done
