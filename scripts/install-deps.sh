#!/usr/bin/env bash
# Installs the Debian 12 packages sagalab builds and tests with.
# Idempotent and quiet when everything is already present.
set -euo pipefail

PACKAGES=(
  build-essential
  cmake
  pkg-config
  libcli11-dev
  libboost-dev
  libcpp-httplib-dev
  nlohmann-json3-dev
  catch2
  libsqlite3-dev
  libjemalloc-dev
  libyaml-cpp-dev
  libssl-dev
  zlib1g-dev
  libbrotli-dev
  prometheus-cpp-dev
  libpqxx-dev
)
# Only for the tests on a developer or CI machine, not for building the image:
# docker-compose validates docker-compose.yml, xmllint the JUnit output, clang and its
# runtime build the libFuzzer targets and the sanitizer pass (llvm: the unversioned
# llvm-symbolizer, which turns ASan's addresses into file:line); curl is for people
# trying the API; postgresql is the server the PostgreSQL tests start
# (tests/integration/postgres_test.sh); python3-flask runs the foreign Flask saga that
# `sagactl check` is tested on (tests/fixtures/shop_saga.py); chromium renders the HTML
# scenario report headless (tests/integration/report_test.sh).
TEST_PACKAGES=(
  postgresql
  docker-compose
  libxml2-utils
  clang
  libclang-rt-14-dev
  llvm
  curl
  jq
  python3-flask
  chromium
)

# --list prints the build packages (deploy/Dockerfile's build stage installs exactly these).
if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi
PACKAGES+=("${TEST_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "sagalab: installing Debian packages: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
