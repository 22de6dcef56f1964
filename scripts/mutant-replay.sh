# Sourced by scripts/mutants.sh and scripts/mutant-sample.sh: a caught mutant's
# seed shrunk to a scenario, run on the mutant's stack and on the clean one.
#
#   replay_caught DIR MUTANT_SAGACTL CLEAN_SAGACTL SEED
#
# Runs in DIR (where the logs go). Prints one line: "fails with it, passes without"
# (what a true catch looks like), another pair, or "no script (why)"; returns 0
# only for "fails with it, passes without".
replay_caught() {
  local dir=$1 mutant=$2 clean=$3 seed=${4:-1}
  local scen=$dir/replay.yaml
  rm -f "$scen"
  # The caught seed again, shrunk to the fewest faults, written as a scenario.
  (cd "$dir" && "$mutant" --json simulate --seed "$seed" --sagas 1000 --scenario-out "$scen" \
    >"$dir/shrink.json" 2>"$dir/shrink.err")
  if [ ! -s "$scen" ]; then
    local why
    why=$(jq -r '.fallo.reduccion // empty' "$dir/shrink.json" 2>/dev/null)
    echo "no script (${why:-not shrunk})"
    return 1
  fi
  local with=fails without=passes
  (cd "$dir" && "$mutant" run "$scen" >"$dir/replay-mutant.log" 2>&1) && with=passes
  (cd "$dir" && "$clean" run "$scen" >"$dir/replay-clean.log" 2>&1) || without=fails
  echo "$with with it, $without without"
  [ "$with/$without" = "fails/passes" ]
}
