#!/usr/bin/env bash
# Builds a preset with one progress line instead of the compiler's chatter
# (make demo's first screen is the demo); the whole log is kept in
# BUILD_DIR/build.log and printed if the build fails.
set -uo pipefail
PRESET=${1:-dev}
DIR=${2:-build}
mkdir -p "$DIR"
LOG="$DIR/build.log"
cmake --build --preset "$PRESET" > "$LOG" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  pct=$(grep -o '^\[ *[0-9]*%\]' "$LOG" 2>/dev/null | tail -n1 | tr -d '[] ')
  printf '\rbuilding sagalab (%s preset)... %s   ' "$PRESET" "${pct:-0%}"
  sleep 1
done
wait "$pid"; rc=$?
if [ $rc -ne 0 ]; then
  printf '\rthe build failed; its log (%s):\n' "$LOG"
  cat "$LOG"
  exit $rc
fi
printf '\rbuilt sagalab (%s preset)                  \n' "$PRESET"
