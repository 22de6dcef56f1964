# Sourced by scripts/mutants.sh and scripts/mutant-sample.sh: a caught mutant's
# seed shrunk to a scenario, run on the mutant's stack and on the clean one.
#
#   replay_caught DIR MUTANT_SAGACTL CLEAN_SAGACTL SEED
#
# Runs in DIR (where the logs go). Prints one line: "fails with it, passes without"
# (what a true catch looks like, status 0), another pair (status 1: the script does
# not tell the mutant from the clean tree), or "no script (why)" (status 2: the
# failure has no scenario form, which tests/mutants/README.md explains per mutant).
replay_caught() {
  local dir=$1 mutant=$2 clean=$3 seed=${4:-1}
  local scen=$dir/replay.yaml
  rm -f "$scen"
  # The caught seed again, shrunk to the fewest faults, written as a scenario.
  (cd "$dir" && "$mutant" --json simulate --seed "$seed" --sagas 1000 --scenario-out "$scen" \
    >"$dir/shrink.json" 2>"$dir/shrink.err")
  if [ ! -s "$scen" ]; then
    local why
    why=$(jq -r '.failure.shrink // empty' "$dir/shrink.json" 2>/dev/null)
    echo "no script (${why:-not shrunk})"
    return 2
  fi
  local with=fails without=passes
  (cd "$dir" && "$mutant" run "$scen" >"$dir/replay-mutant.log" 2>&1) && with=passes
  (cd "$dir" && "$clean" run "$scen" >"$dir/replay-clean.log" 2>&1) || without=fails
  echo "$with with it, $without without"
  [ "$with/$without" = "fails/passes" ]
}
