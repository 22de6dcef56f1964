#!/usr/bin/env bash
# The guided demo: start the local stack, buy, break ms-pagos so that it
# commits a payment but answers 500, buy again, watch the saga compensate,
# verify every invariant, show the timeline, stop the stack.
set -euo pipefail
BIN=${1:-build/bin}
SAGACTL="$BIN/sagactl --stack-dir .sagalab-demo"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
trap '$SAGACTL down >/dev/null 2>&1 || true' EXIT

say "Starting the orchestrator and the four services as local processes (free ports, fresh data)"
$SAGACTL up --fresh --base-port 0 --orchestrator-arg=--backoff-base-ms=20

say "1. A purchase with every service healthy: the saga runs its five steps and completes"
$SAGACTL buy --user ana --product "Laptop Gamer"

say "2. Breaking ms-pagos: it will charge the card, then answer 500 (commit-then-error)"
$SAGACTL inject-fault pagos --action commit-then-error --endpoint transaccion --name demo-pagos-ambiguo

say "3. A second purchase: the charge's outcome is unknown, so the orchestrator retries with the same"
echo "   idempotency key (no double charge), gives up, refunds it, releases the stock and cancels the purchase"
set +e
OUT=$($SAGACTL --json buy --user bruno --product "Mouse Inalámbrico")
RC=$?
set -e
SAGA=$(printf '%s' "$OUT" | sed -n 's/.*"saga_id": "\([^"]*\)".*/\1/p' | head -n1)
echo "   saga $SAGA ended with exit status $RC (1 = compensated)"

say "4. The saga's timeline: every attempt, the faults that hit it, and the compensations"
$SAGACTL show "$SAGA"

say "5. Healing ms-pagos, then verifying every invariant across the five programs"
$SAGACTL faults clear pagos
$SAGACTL verify

say "Stopping the stack"
$SAGACTL down
trap - EXIT
printf '\nWhat happened: one saga completed; the other hit an ambiguous payment, was compensated in\n'
printf 'reverse order (refund, release stock, cancel purchase), and every invariant still holds.\n'
