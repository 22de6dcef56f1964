#!/usr/bin/env bash
# The Flask shop tests (tests/integration/shop_test.cpp, hidden [.shop] cases):
# skipped (exit 77, with the reason) where Python 3 or Flask is missing.
set -euo pipefail
bin="$1"
if ! command -v python3 >/dev/null; then
  echo "SKIP: no python3 on PATH (scripts/install-deps.sh installs python3-flask)"
  exit 77
fi
if ! python3 -c 'import flask' 2>/dev/null; then
  echo "SKIP: $(command -v python3) has no flask module (scripts/install-deps.sh installs python3-flask)"
  exit 77
fi
exec "$bin/integration_tests" "[.shop]"
