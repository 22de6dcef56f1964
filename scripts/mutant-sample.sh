#!/usr/bin/env bash
# A few mutants per CI run, rotating by day: each patch in tests/mutants/ that
# changes .cpp files only is applied to copies of those files (never to the
# sources), the copies are compiled with the build's own compile commands, and
# sagactl is linked again from the build's objects with the mutated ones in
# front. The simulator must catch each within SIM_SECONDS (a patch with a
# Detector line: that module's own tests, linked the same way); a mutant that
# escapes, or a patch that no longer applies, fails the run.
#
#   scripts/mutant-sample.sh BUILD_DIR            2 mutants, chosen by the day (UTC)
#   scripts/mutant-sample.sh BUILD_DIR 10 26      these mutants (number or name)
#   COUNT=3 SIM_SECONDS=30 scripts/mutant-sample.sh BUILD_DIR
#   KEEP=1 ...                     keeps each mutant's binaries and logs (the path is printed)
#   REPLAY=1 scripts/mutant-sample.sh BUILD_DIR 04 09    also link the stack's programs with the
#       mutant, shrink the caught seed to a scenario and run it with `sagactl run` on the
#       mutant's stack (it must fail) and on BUILD_DIR's (it must pass)
#
# A whole mutant build of the tree is `make mutants` (scripts/mutants.sh).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:?usage: mutant-sample.sh BUILD_DIR [MUTANT...]}" && pwd)
shift
COUNT=${COUNT:-2}
SIM_SECONDS=${SIM_SECONDS:-60}
REPLAY=${REPLAY:-0}
CC_JSON=$BUILD/compile_commands.json
# shellcheck source=scripts/mutant-replay.sh
source "$ROOT/scripts/mutant-replay.sh"
# Where each program's link command is.
declare -A LINKS=([sagactl]=cli/CMakeFiles/sagactl.dir)
if [ "$REPLAY" = 1 ]; then
  LINKS[orquestador]=orchestrator/CMakeFiles/orquestador.dir
  for s in catalogo compras pagos inventario; do LINKS[ms-$s]=services/CMakeFiles/ms-$s.dir; done
fi
for f in "$CC_JSON" "$BUILD/bin/sagactl" "${LINKS[@]/#/$BUILD/}"; do
  [ -e "$f" ] || { echo "mutant-sample: $f is missing: build the tree first (make build)" >&2; exit 2; }
done

# The candidates: patches that change .cpp files only (a header would need every includer rebuilt).
candidates=()
for p in "$ROOT"/tests/mutants/*.patch; do
  grep '^+++ b/' "$p" | grep -qv '\.cpp$' || candidates+=("$p")
done
picked=()
if [ $# -gt 0 ]; then
  for want in "$@"; do
    for p in "${candidates[@]}"; do [[ "$(basename "$p")" == *"$want"* ]] && picked+=("$p") && break; done
  done
else
  day=$(( $(date -u +%s) / 86400 ))
  for ((k = 0; k < COUNT; k++)); do picked+=("${candidates[$(( (day * COUNT + k) % ${#candidates[@]} ))]}"); done
fi
[ ${#picked[@]} -gt 0 ] || { echo "mutant-sample: no mutant matches $*" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sagalab-mutant.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "mutant-sample: the mutants' binaries and logs stay in $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
failed=0
for p in "${picked[@]}"; do
  name=$(basename "$p" .patch)
  dir=$WORK/$name
  mkdir -p "$dir/src"
  files=$(sed -n 's|^+++ b/||p' "$p")
  for f in $files; do mkdir -p "$dir/src/$(dirname "$f")" && cp "$ROOT/$f" "$dir/src/$f"; done
  if ! (cd "$dir/src" && git apply "$p" 2>"$dir/apply.log"); then
    echo "✘ $name: the patch no longer applies (regenerate it with tests/mutants/make_patches.py)"; cat "$dir/apply.log"
    failed=1; continue
  fi
  objects=()
  for f in $files; do
    entry=$(jq -c --arg f "$ROOT/$f" '.[] | select(.file == $f)' "$CC_JSON" | head -1)
    [ -n "$entry" ] || { echo "✘ $name: $f is not in $CC_JSON"; failed=1; continue 2; }
    cdir=$(jq -r .directory <<<"$entry")
    obj=$dir/$(basename "$f").o
    # The build's command, on the mutated copy, into our object; a mutant may warn.
    cmd=$(jq -r .command <<<"$entry" | sed -e "s| -o [^ ]*| -o $obj|" -e "s| -c [^ ]*| -c $dir/src/$f|" -e 's| -Werror||')
    if ! (cd "$cdir" && eval "$cmd") >"$dir/build.log" 2>&1; then
      echo "✘ $name: does not compile"; tail -20 "$dir/build.log"; failed=1; continue 2
    fi
    objects+=("$obj")
  done
  # The build's link of each program: the mutated objects come first, so the
  # archives' originals are never pulled in.
  mkdir -p "$dir/bin"
  link_prog() {  # program, its CMake target directory
    local link
    link=$(sed -E -e "s| -o [^ ]*| -o $dir/bin/$1|" -e "s|(\"?CMakeFiles/[^ ]*\.dir/[^ ]*\.cpp\.o\"?)|\1 ${objects[*]}|" "$2/link.txt")
    (cd "$2/../.." && eval "$link") >"$dir/link.log" 2>&1 || { echo "✘ $name: $1 does not link"; tail -20 "$dir/link.log"; return 1; }
  }
  # A patch that names its module's own tests (Detector: a test binary and its Catch tags;
  # "postgresql" first: on a PostgreSQL that postgres_test.sh starts) is judged by them.
  read -r -a detector <<<"$(sed -n 's/^Detector: //p' "$p")"
  if [ ${#detector[@]} -gt 0 ]; then
    pg=0
    [ "${detector[0]}" = postgresql ] && pg=1 && detector=("${detector[@]:1}")
    prog=${detector[0]}
    link_prog "$prog" "$BUILD/tests/CMakeFiles/$prog.dir" || { failed=1; continue; }
    start=$(date +%s%N)
    if [ "$pg" = 1 ]; then
      "$ROOT/tests/integration/postgres_test.sh" "$BUILD/bin" "$dir/bin/$prog" "${detector[@]:1}" >"$dir/detector.log" 2>&1
    else
      "$dir/bin/$prog" "${detector[@]:1}" >"$dir/detector.log" 2>&1
    fi
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    case $rc in
      0) echo "✘ $name: escaped its module's tests (${detector[*]})"; failed=1 ;;
      77) echo "- $name: not judged: $(grep -m1 SKIPPED "$dir/detector.log")" ;;
      *) echo "✔ $name: caught by ${detector[*]} ($((ms / 1000)).$(( (ms % 1000) / 100 )) s: $(grep -m1 -o '[^ ]*_test\.cpp:[0-9]*' "$dir/detector.log"))" ;;
    esac
    continue
  fi
  for prog in "${!LINKS[@]}"; do
    link_prog "$prog" "$BUILD/${LINKS[$prog]}" || { failed=1; continue 2; }
  done
  start=$(date +%s%N)
  if (cd "$dir" && bin/sagactl --json simulate --duration "${SIM_SECONDS}s" --sagas 1000 --no-shrink >"$dir/sim.json" 2>"$dir/sim.err"); then
    echo "✘ $name: escaped a ${SIM_SECONDS} s simulator campaign"; failed=1; continue
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  seed=$(jq -r '.failure.seed // empty' "$dir/sim.json" 2>/dev/null)
  what=$(jq -r '.failure.violations[0] | if (.rule // "") != "" then "rule " + .rule else "invariant " + (.invariant | tostring) end' "$dir/sim.json" 2>/dev/null)
  line="✔ $name: caught by the simulator (seed ${seed:-?}, $((ms / 1000)).$(( (ms % 1000) / 100 )) s, ${what:-see $dir/sim.json})"
  if [ "$REPLAY" = 1 ]; then
    replay=$(replay_caught "$dir" "$dir/bin/sagactl" "$BUILD/bin/sagactl" "${seed:-1}")
    [ $? != 1 ] || failed=1  # a script that does not tell them apart; no script at all is not a failure
    line+="; replay: $replay"
  fi
  echo "$line"
done
exit $failed
