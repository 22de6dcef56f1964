#!/usr/bin/env bash
# Mutation testing of the harness: each patch in tests/mutants/ plants one
# realistic saga bug in a copy of the tree (a git worktree under
# build-mutants/, never the real sources), which is built there and judged by
# the detectors: a `sagactl simulate` campaign, the unit tests and, with
# SCENARIOS=1, the scenario suite. Prints a table (also written to
# build-mutants/mutants.md) and the kill score.
#
#   scripts/mutants.sh                 every mutant, 60 s campaigns
#   scripts/mutants.sh 19 21           only the mutants whose number or name matches
#   SIM_SECONDS=20 SCENARIOS=1 scripts/mutants.sh
#   REPLAY=1 scripts/mutants.sh 10 22   each caught failure shrunk to a scenario, which must
#                                      fail on the mutant's real stack and pass on build/'s
#                                      (the unmutated tree: run `make build` first)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIM_SECONDS=${SIM_SECONDS:-60}
SCENARIOS=${SCENARIOS:-0}
REPLAY=${REPLAY:-0}
OUT=$ROOT/build-mutants
TREE=$OUT/tree
BUILD=$OUT/build
mkdir -p "$OUT"
HEAD=$(git rev-parse HEAD)
# shellcheck source=scripts/mutant-replay.sh
source "$ROOT/scripts/mutant-replay.sh"

if [ ! -e "$TREE/.git" ]; then
  git worktree add --detach -f "$TREE" "$HEAD" >/dev/null 2>&1 || { echo "mutants: cannot create a worktree in $TREE" >&2; exit 2; }
fi
git -C "$TREE" checkout -q -f --detach "$HEAD"
targets=(sagactl unit_tests)
{ [ "$SCENARIOS" = 1 ] || [ "$REPLAY" = 1 ]; } && targets+=(orquestador ms-catalogo ms-compras ms-pagos ms-inventario)
if [ "$REPLAY" = 1 ] && [ ! -x "$ROOT/build/bin/orquestador" ]; then
  echo "mutants: REPLAY=1 replays each scenario on the unmutated build too: run 'make build' first" >&2; exit 2
fi
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  echo "== configuring the mutant build (once)"
  cmake -S "$TREE" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSAGALAB_BUILD_TESTS=ON >/dev/null || exit 2
fi

patches=()
for p in tests/mutants/*.patch; do
  if [ $# -eq 0 ]; then patches+=("$p"); continue; fi
  for want in "$@"; do [[ "$(basename "$p")" == *"$want"* ]] && patches+=("$p") && break; done
done
[ ${#patches[@]} -gt 0 ] || { echo "mutants: no patch matches $*" >&2; exit 2; }

# A patch may name its module's own detector ("Detector: unit_tests [saga-log]"; "postgresql"
# first runs it on a PostgreSQL that tests/integration/postgres_test.sh starts): it is judged by
# that alone, not by the simulator (which does not run the HTTP client, the proxy or check).
run_detector() {  # detector words -> caught | escaped | skipped (...)
  local pg=0 bin rc
  if [ "$1" = postgresql ]; then pg=1; shift; fi
  bin=$1; shift
  if [ "$pg" = 1 ]; then
    "$ROOT/tests/integration/postgres_test.sh" "$BUILD/bin" "$BUILD/bin/$bin" "$@" >"$DETECTOR_LOG" 2>&1
  else
    "$BUILD/bin/$bin" "$@" >"$DETECTOR_LOG" 2>&1
  fi
  rc=$?
  case $rc in
    0) echo escaped ;;
    77) echo "skipped ($(grep -m1 SKIPPED "$DETECTOR_LOG" | cut -c1-60))" ;;
    *) echo caught ;;
  esac
}
table="| mutant | class | simulator (seed, seconds) | unit tests | module's tests | scenarios | shrunk replay | killed |\n|---|---|---|---|---|---|---|---|\n"
killed=0
total=0
for p in "${patches[@]}"; do
  name=$(basename "$p" .patch)
  cls=$(sed -n 's/^Class: //p' "$p")
  detector=$(sed -n 's/^Detector: //p' "$p")
  git -C "$TREE" checkout -q -f --detach "$HEAD"
  if ! git -C "$TREE" apply "$ROOT/$p"; then
    echo "== $name: does not apply (regenerate with tests/mutants/make_patches.py)"; continue
  fi
  echo "== $name: building"
  want=("${targets[@]}")
  [[ "$detector" == *integration_tests* ]] && want+=(integration_tests)
  if ! cmake --build "$BUILD" -j2 --target "${want[@]}" >"$OUT/$name.build.log" 2>&1; then
    echo "   does not build (see $OUT/$name.build.log)"; continue
  fi
  total=$((total + 1))
  if [ -n "$detector" ]; then
    DETECTOR_LOG=$OUT/$name.detector.log
    # shellcheck disable=SC2086  # the detector's words: a binary and its Catch tags
    mod=$(run_detector $detector)
    k=no
    [ "$mod" = caught ] && k=yes && killed=$((killed + 1))
    [[ "$mod" == skipped* ]] && total=$((total - 1))
    echo "   $detector: $mod"
    table+="| $name | $cls | – | – | $mod | – | – | $k |\n"
    continue
  fi
  sim="escaped"
  t0=$(date +%s%N)
  if (cd "$OUT" && "$BUILD/bin/sagactl" --json simulate --duration "${SIM_SECONDS}s" --sagas 1000 --no-shrink >"$OUT/$name.sim.json" 2>/dev/null); then
    :
  else
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    seed=$(sed -n 's/^    "seed": \([0-9]*\),*$/\1/p' "$OUT/$name.sim.json" | head -1)
    sim="seed ${seed:-?}, $((ms / 1000)).$(( (ms % 1000) / 100 )) s"
  fi
  replay="not run"
  if [ "$REPLAY" = 1 ] && [ "$sim" != escaped ]; then
    mkdir -p "$OUT/$name.replay"
    replay=$(replay_caught "$OUT/$name.replay" "$BUILD/bin/sagactl" "$ROOT/build/bin/sagactl" "${seed:-1}")
  fi
  unit="escaped"
  "$BUILD/bin/unit_tests" "~[defects]" >"$OUT/$name.unit.log" 2>&1 || unit="caught"
  scen="not run"
  if [ "$SCENARIOS" = 1 ]; then
    scen="escaped"
    if ! (cd "$OUT" && "$BUILD/bin/sagactl" run "$TREE/scenarios" >"$OUT/$name.scenarios.log" 2>&1); then
      scen=$(grep -o '✘ [a-z0-9_-]*' "$OUT/$name.scenarios.log" | head -3 | sed 's/✘ //' | paste -sd, -)
      [ -n "$scen" ] || scen="caught"
    fi
  fi
  k=no
  if [ "$sim" != escaped ] || [ "$unit" != escaped ] || { [ "$scen" != escaped ] && [ "$scen" != "not run" ]; }; then
    k=yes; killed=$((killed + 1))
  fi
  echo "   simulator: $sim; unit tests: $unit; scenarios: $scen; replay: $replay"
  table+="| $name | $cls | $sim | $unit | – | $scen | $replay | $k |\n"
done
git -C "$TREE" checkout -q -f --detach "$HEAD"
printf "%b\nkilled %d of %d\n" "$table" "$killed" "$total" | tee "$OUT/mutants.md"
[ "$killed" = "$total" ]
