#!/usr/bin/env bash
# A scenario through a real Traefik in front of the local stack. Needs a
# `traefik` binary on PATH; without one it exits 77, which CTest reports as skipped.
set -euo pipefail
BIN=$1
command -v traefik >/dev/null 2>&1 || { echo "traefik is not on PATH: skipped"; exit 77; }
DIR=$(mktemp -d)
S="$BIN/sagactl --stack-dir $DIR"
trap '$S down >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
$S up --base-port 0 --gateway traefik
$S --gateway traefik buy --user traefik --product laptop
$S --gateway traefik inject-fault pagos --action commit-then-error --endpoint transaccion --times 5
set +e; $S --gateway traefik buy --user traefik --product mouse; rc=$?; set -e
[ "$rc" = 1 ] || { echo "expected the second purchase to be compensated (exit 1), got $rc"; exit 1; }
$S --gateway traefik faults clear
$S --gateway traefik verify
