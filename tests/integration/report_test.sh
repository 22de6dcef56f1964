#!/usr/bin/env bash
# The HTML report in headless Chromium (tests/integration/scenario_test.cpp, hidden [.chromium]
# case): skipped (exit 77, with the reason) where Debian's chromium is not installed.
set -euo pipefail
bin="$1"
if ! command -v chromium >/dev/null; then
  echo "SKIP: no chromium on PATH (apt-get install chromium)"
  exit 77
fi
exec "$bin/integration_tests" "[.chromium]"
