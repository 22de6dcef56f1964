#!/usr/bin/env bash
# The simulator's speed on one core (--jobs 1): sagas/s and peak RSS for runs of
# 1,000 / 100,000 / 1,000,000 sagas, with the fixed default mix and with seed 7's
# swarm mix. Usage: benchmarks/simulate.sh [sagactl] [largest run]
set -euo pipefail
SAGACTL=${1:-build/bin/sagactl}
LARGEST=${2:-1000000}
run() {  # mix-args sagas -> "sagas/s peak-KB"
  local out
  out=$( { /usr/bin/time -f "rss %M" "$SAGACTL" simulate --seed 7 --sagas "$2" --jobs 1 $1 >/dev/null; } 2>&1 )
  echo "$(grep -o '([0-9]* sagas/s)' <<<"$out" | tr -dc 0-9) $(grep -o 'rss [0-9]*' <<<"$out" | tr -dc 0-9)"
}
printf "| mix | sagas | sagas/s | peak RSS |\n|---|---|---|---|\n"
for mix in "--mix fixed" "--mix swarm"; do
  for n in 1000 100000 "$LARGEST"; do
    best=0; rss=0
    reps=$([ "$n" -le 1000 ] && echo 5 || echo 1)
    for _ in $(seq "$reps"); do
      read -r rate kb < <(run "$mix" "$n")
      if [ "$rate" -gt "$best" ]; then best=$rate; rss=$kb; fi
    done
    printf "| %s | %s | %s | %s MB |\n" "${mix#--mix }" "$n" "$best" "$((rss / 1024))"
  done
done
